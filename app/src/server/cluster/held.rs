//! Friends calls kept in Redis, so that another instance takes a call over when the one
//! holding it stops: `parlor:call:<id>` holds the call ([`SharedCall`]) and its holder,
//! `parlor:calls:<instance>` the calls an instance holds. Each instance writes its own, in
//! order, from one task; taking over is one script, so exactly one instance gets each call,
//! and only once its holder's heartbeat ran out.

use std::{sync::LazyLock, time::Duration};

use redis::{aio::ConnectionManager, RedisResult, Script};
use tokio::sync::{mpsc, oneshot};

use super::{instance_name, scripts::ALIVE, Cluster, Forwarded};
use crate::{
    server::{calls::shared::SharedCall, hub::InstanceId},
    wire::CallId,
};

/// How long a kept call lasts in Redis without a change (if every instance stopped, nobody
/// takes it over and it goes by itself).
const KEPT_FOR: Duration = Duration::from_secs(24 * 3600);

fn call_key(id: CallId) -> String {
    format!("parlor:call:{id}")
}

fn held_key(instance: InstanceId) -> String {
    format!("parlor:calls:{}", instance_name(instance))
}

/// What the writer does, in the order the registry decided it.
pub(super) enum Change {
    Kept(Box<SharedCall>),
    Dropped(CallId),
    /// Everything before this is written.
    Flush(oneshot::Sender<()>),
}

/// KEYS: call, calls:<me>; ARGV: me, the call, its id, how long it lasts (ms). 0 when another
/// instance holds the call now (this one was taken for gone).
static KEEP: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local holder = redis.call('HGET', KEYS[1], 'holder')
if holder and holder ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'holder', ARGV[1], 'call', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
redis.call('SADD', KEYS[2], ARGV[3])
return 1"#,
    )
});

/// KEYS: call, calls:<me>; ARGV: me, the call's id. Forgets the call if this instance holds it.
static DROP: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
if redis.call('HGET', KEYS[1], 'holder') == ARGV[1] then redis.call('DEL', KEYS[1]) end
redis.call('SREM', KEYS[2], ARGV[2])
return 1"#,
    )
});

/// Shared by the taking scripts: Redis's clock, whether an instance's heartbeat counts, and
/// `out` followed by every live instance (so the sockets of a call taken over are judged by
/// Redis now, not by this instance's last heartbeat).
const PRELUDE: &str = r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local function alive(instance)
  local until_ = redis.call('ZSCORE', KEYS[1], instance)
  return until_ and tonumber(until_) > now
end
local function with_live(out)
  for _, instance in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], now, '+inf')) do
    out[#out + 1] = instance
  end
  return out
end
"#;

/// KEYS: alive, call, calls:<me>; ARGV: me, the call's id. Where the call is: `none`, `here`,
/// `at <holder>` (alive), or `taken <call> <live instances…>`: its holder stopped and this
/// instance holds it now.
static TAKE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        r#"{PRELUDE}
local holder = redis.call('HGET', KEYS[2], 'holder')
if not holder then return {{'none'}} end
if holder == ARGV[1] then return {{'here'}} end
if alive(holder) then return {{'at', holder}} end
redis.call('HSET', KEYS[2], 'holder', ARGV[1])
redis.call('SREM', 'parlor:calls:' .. holder, ARGV[2])
redis.call('SADD', KEYS[3], ARGV[2])
return with_live({{'taken', redis.call('HGET', KEYS[2], 'call')}})"#
    ))
});

/// KEYS: alive, calls:<gone>, calls:<me>; ARGV: me, gone. Takes over every call the stopped
/// instance `gone` still held (none while its heartbeat counts); returns how many, them, and
/// the live instances.
static TAKE_ALL: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        r#"{PRELUDE}
if alive(ARGV[2]) then return {{'0'}} end
local out = {{''}}
for _, id in ipairs(redis.call('SMEMBERS', KEYS[2])) do
  local key = 'parlor:call:' .. id
  if redis.call('HGET', key, 'holder') == ARGV[2] then
    redis.call('HSET', key, 'holder', ARGV[1])
    redis.call('SADD', KEYS[3], id)
    out[#out + 1] = redis.call('HGET', key, 'call')
  end
end
redis.call('DEL', KEYS[2])
out[1] = tostring(#out - 1)
return with_live(out)"#
    ))
});

/// Where a call is, as Redis says ([`Cluster::find_call`]).
#[derive(Debug)]
pub enum Found {
    /// No instance keeps such a call (it ended, it never was, or it is not a friends call).
    Nowhere,
    /// This instance holds it.
    Here,
    /// Another instance, alive, holds it.
    At(InstanceId),
    /// Its holder stopped: this instance holds it now, and is to take it over.
    Taken(Taken),
}

/// Calls this instance took over, and the instances alive as Redis said then.
#[derive(Debug, Default)]
pub struct Taken {
    pub calls: Vec<SharedCall>,
    pub live: Vec<InstanceId>,
}

fn parse_instance(name: &str) -> Option<InstanceId> {
    u64::from_str_radix(name, 16).ok().map(InstanceId)
}

fn decode(text: &str) -> Option<SharedCall> {
    SharedCall::decode(text)
        .inspect_err(|error| tracing::warn!(%error, "skipping a call kept in Redis"))
        .ok()
}

impl Cluster {
    /// Asks Redis where call `id` is, taking it over if its holder stopped.
    pub async fn find_call(&self, id: CallId) -> RedisResult<Found> {
        let mut redis = self.redis.clone();
        let me = self.origin();
        let answer: Vec<String> = TAKE
            .key(ALIVE)
            .key(call_key(id))
            .key(held_key(me))
            .arg(instance_name(me))
            .arg(id.to_string())
            .invoke_async(&mut redis)
            .await?;
        Ok(match answer.as_slice() {
            [what] if what == "here" => Found::Here,
            [what, holder] if what == "at" => {
                parse_instance(holder).map_or(Found::Nowhere, Found::At)
            }
            [what, call, live @ ..] if what == "taken" => match decode(call) {
                Some(call) => Found::Taken(Taken {
                    calls: vec![call],
                    live: live.iter().filter_map(|i| parse_instance(i)).collect(),
                }),
                None => Found::Nowhere,
            },
            _ => Found::Nowhere,
        })
    }

    /// Takes over the calls instance `gone` held (once its heartbeat ran out; another
    /// instance may have been first, then there are none left).
    pub async fn take_calls_of(&self, gone: InstanceId) -> RedisResult<Taken> {
        let mut redis = self.redis.clone();
        let me = self.origin();
        let answer: Vec<String> = TAKE_ALL
            .key(ALIVE)
            .key(held_key(gone))
            .key(held_key(me))
            .arg(instance_name(me))
            .arg(instance_name(gone))
            .invoke_async(&mut redis)
            .await?;
        let count: usize = answer.first().and_then(|n| n.parse().ok()).unwrap_or(0);
        let (calls, live) = answer
            .get(1..)
            .unwrap_or_default()
            .split_at(count.min(answer.len().saturating_sub(1)));
        Ok(Taken {
            calls: calls.iter().filter_map(|c| decode(c)).collect(),
            live: live.iter().filter_map(|i| parse_instance(i)).collect(),
        })
    }

    /// Keeps `calls` (held here) in Redis again (Redis forgot them).
    pub fn keep_again(&self, calls: Vec<SharedCall>) {
        for call in calls {
            let _ = self.held_here.send(Change::Kept(Box::new(call)));
        }
    }

    /// Waits (up to `within`) until what this instance said of its calls is in Redis.
    pub(super) async fn flush_calls(&self, within: Duration) {
        let (done, flushed) = oneshot::channel();
        if self.held_here.send(Change::Flush(done)).is_ok()
            && tokio::time::timeout(within, flushed).await.is_err()
        {
            tracing::warn!("keeping this instance's calls in Redis did not finish in time");
        }
    }
}

/// Writes this instance's calls to Redis in the order they changed. A call another instance
/// took over meanwhile is handed to the worker to forget.
pub(super) async fn writer(
    mut redis: ConnectionManager,
    me: InstanceId,
    forward: mpsc::UnboundedSender<Forwarded>,
    mut changes: mpsc::UnboundedReceiver<Change>,
) {
    let (name, mine) = (instance_name(me), held_key(me));
    while let Some(change) = changes.recv().await {
        let result = match change {
            Change::Kept(call) => {
                let kept: RedisResult<i64> = KEEP
                    .key(call_key(call.id))
                    .key(&mine)
                    .arg(&name)
                    .arg(call.encode())
                    .arg(call.id.to_string())
                    .arg(KEPT_FOR.as_millis() as u64)
                    .invoke_async(&mut redis)
                    .await;
                if let Ok(0) = kept {
                    tracing::warn!(call = %call.id, "another instance took this call over");
                    let _ = forward.send(Forwarded::CallLost(call.id));
                }
                kept.map(drop)
            }
            Change::Dropped(id) => DROP
                .key(call_key(id))
                .key(&mine)
                .arg(&name)
                .arg(id.to_string())
                .invoke_async::<i64>(&mut redis)
                .await
                .map(drop),
            Change::Flush(done) => {
                let _ = done.send(());
                Ok(())
            }
        };
        if let Err(error) = result {
            // Only taking the call over needs it; the call itself goes on here.
            tracing::warn!(%error, "keeping a call in Redis failed");
        }
    }
}
