//! Sockets per person and per address over all instances. Each instance counts its own
//! sockets in `parlor:sockets:<instance>` (`p:<principal>`, `a:<address>`); a socket opens only
//! if the sums over the live instances stay within the caps (one script counts, sums and
//! takes the count back when over). A closed socket's place is given back by a background
//! task (a socket's end never waits for Redis); a stopped instance's counts go with the sweep.
//! The instance keeps its own counts too, and writes them again when Redis forgot them
//! (restarted empty).

use std::{
    collections::HashMap,
    sync::{Arc, LazyLock, Mutex},
};

use redis::{aio::ConnectionManager, RedisResult, Script};
use tokio::sync::mpsc;

use super::{instance_name, scripts::ALIVE, Cluster};
use crate::server::{auth::PrincipalId, socket_caps::CapReached};

fn counts_key(instance: crate::server::hub::InstanceId) -> String {
    format!("parlor:sockets:{}", instance_name(instance))
}

/// KEYS: this instance's counts, alive; ARGV: principal field, address field, principal
/// cap, address cap, this instance. 0 taken; 1 over the principal cap, 2 over the address
/// cap (nothing counted).
static TAKE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('HINCRBY', KEYS[1], ARGV[1], 1)
redis.call('HINCRBY', KEYS[1], ARGV[2], 1)
local p, a = 0, 0
local function add(key)
  p = p + (tonumber(redis.call('HGET', key, ARGV[1])) or 0)
  a = a + (tonumber(redis.call('HGET', key, ARGV[2])) or 0)
end
add(KEYS[1])
for _, instance in ipairs(redis.call('ZRANGEBYSCORE', KEYS[2], now, '+inf')) do
  if instance ~= ARGV[5] then add('parlor:sockets:' .. instance) end
end
local over = 0
if p > tonumber(ARGV[3]) then over = 1 elseif a > tonumber(ARGV[4]) then over = 2 end
if over > 0 then
  redis.call('HINCRBY', KEYS[1], ARGV[1], -1)
  redis.call('HINCRBY', KEYS[1], ARGV[2], -1)
end
return over",
    )
});

/// KEYS: this instance's counts; ARGV: principal field, address field. Gives a place back.
static GIVE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
for i = 1, 2 do
  if redis.call('HINCRBY', KEYS[1], ARGV[i], -1) <= 0 then redis.call('HDEL', KEYS[1], ARGV[i]) end
end
return 0",
    )
});

fn fields(who: PrincipalId, address: &str) -> (String, String) {
    (format!("p:{}", who.key()), format!("a:{address}"))
}

/// What the giver does, in order.
pub(super) enum Change {
    /// A socket of this principal from this address closed.
    Give(PrincipalId, String),
    /// Redis forgot this instance's counts: write them again.
    Recount,
}

/// This instance's counts as it put them in Redis (`p:…` and `a:…` fields).
pub(super) type Counts = Arc<Mutex<HashMap<String, i64>>>;

fn count(counts: &Counts, field: String, by: i64) {
    let mut counts = counts.lock().unwrap_or_else(|e| e.into_inner());
    let n = counts.entry(field).or_default();
    *n += by;
    if *n <= 0 {
        counts.retain(|_, n| *n > 0);
    }
}

/// A place for a socket over all instances; dropping it gives the place back.
#[derive(Debug)]
pub struct SharedSlot {
    give: mpsc::UnboundedSender<Change>,
    who: PrincipalId,
    address: String,
}

impl Drop for SharedSlot {
    fn drop(&mut self) {
        let _ = self
            .give
            .send(Change::Give(self.who, std::mem::take(&mut self.address)));
    }
}

impl Cluster {
    /// Takes a place for a socket of `who` from `address` within the caps over all instances.
    pub async fn take_socket(
        &self,
        who: PrincipalId,
        address: &str,
        per_principal: u32,
        per_address: u32,
    ) -> RedisResult<Result<SharedSlot, CapReached>> {
        let mut redis = self.redis.clone();
        let (principal, addr) = fields(who, address);
        let over: i64 = TAKE
            .key(counts_key(self.origin()))
            .key(ALIVE)
            .arg(&principal)
            .arg(&addr)
            .arg(per_principal)
            .arg(per_address)
            .arg(instance_name(self.origin()))
            .invoke_async(&mut redis)
            .await?;
        Ok(match over {
            0 => Ok({
                count(&self.sockets_counted, principal, 1);
                count(&self.sockets_counted, addr, 1);
                SharedSlot {
                    give: self.sockets_given.clone(),
                    who,
                    address: address.to_string(),
                }
            }),
            1 => Err(CapReached::Principal),
            _ => Err(CapReached::Address),
        })
    }
}

/// Gives back the places of closed sockets, in the order they closed, and writes this
/// instance's counts again when asked.
pub(super) async fn giver(
    mut redis: ConnectionManager,
    key: String,
    counts: Counts,
    mut changes: mpsc::UnboundedReceiver<Change>,
) {
    while let Some(change) = changes.recv().await {
        let result: RedisResult<()> = match change {
            Change::Give(who, address) => {
                let (principal, addr) = fields(who, &address);
                count(&counts, principal.clone(), -1);
                count(&counts, addr.clone(), -1);
                GIVE.key(&key)
                    .arg(principal)
                    .arg(addr)
                    .invoke_async::<i64>(&mut redis)
                    .await
                    .map(drop)
            }
            Change::Recount => {
                let now: Vec<(String, i64)> = counts
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .iter()
                    .map(|(field, n)| (field.clone(), *n))
                    .collect();
                let mut pipe = redis::pipe();
                pipe.atomic().del(&key).ignore();
                if !now.is_empty() {
                    pipe.hset_multiple(&key, &now).ignore();
                }
                pipe.query_async(&mut redis).await
            }
        };
        if let Err(error) = result {
            tracing::warn!(%error, "keeping this instance's socket counts in Redis failed");
        }
    }
}

impl Cluster {
    /// Writes this instance's socket counts to Redis again (it forgot them).
    pub fn recount_sockets(&self) {
        let _ = self.sockets_given.send(Change::Recount);
    }
}

pub(super) fn own_key(cluster: &Cluster) -> String {
    counts_key(cluster.origin())
}
