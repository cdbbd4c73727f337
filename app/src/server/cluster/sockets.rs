//! Sockets per person and per address over all instances. Each instance counts its own
//! sockets in `parlor:sockets:<instance>` (`p:<principal>`, `a:<address>`); a socket opens only
//! if the sums over the live instances stay within the caps (one script counts, sums and
//! takes the count back when over). A closed socket's place is given back by a background
//! task (a socket's end never waits for Redis); a stopped instance's counts go with the sweep.

use std::sync::LazyLock;

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

/// A place for a socket over all instances; dropping it gives the place back.
#[derive(Debug)]
pub struct SharedSlot {
    give: mpsc::UnboundedSender<(PrincipalId, String)>,
    who: PrincipalId,
    address: String,
}

impl Drop for SharedSlot {
    fn drop(&mut self) {
        let _ = self
            .give
            .send((self.who, std::mem::take(&mut self.address)));
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
            .arg(principal)
            .arg(addr)
            .arg(per_principal)
            .arg(per_address)
            .arg(instance_name(self.origin()))
            .invoke_async(&mut redis)
            .await?;
        Ok(match over {
            0 => Ok(SharedSlot {
                give: self.sockets_given.clone(),
                who,
                address: address.to_string(),
            }),
            1 => Err(CapReached::Principal),
            _ => Err(CapReached::Address),
        })
    }
}

/// Gives back the places of closed sockets, in the order they closed.
pub(super) async fn giver(
    mut redis: ConnectionManager,
    key: String,
    mut given: mpsc::UnboundedReceiver<(PrincipalId, String)>,
) {
    while let Some((who, address)) = given.recv().await {
        let (principal, addr) = fields(who, &address);
        let result: RedisResult<i64> = GIVE
            .key(&key)
            .arg(principal)
            .arg(addr)
            .invoke_async(&mut redis)
            .await;
        if let Err(error) = result {
            tracing::warn!(%error, "giving a socket's place back in Redis failed");
        }
    }
}

pub(super) fn own_key(cluster: &Cluster) -> String {
    counts_key(cluster.origin())
}
