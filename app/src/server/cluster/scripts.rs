//! The presence scripts: each runs atomically in Redis, so instances acting at once agree on
//! who came online or went offline. Times are Redis's own clock (`TIME`), the same for every
//! instance.

use std::sync::LazyLock;

use redis::{aio::ConnectionManager, RedisResult, Script};

use super::instance_name;
use crate::server::hub::InstanceId;

pub(super) const ALIVE: &str = "parlor:alive";

fn where_key(user: i64) -> String {
    format!("parlor:where:{user}")
}

fn users_key(instance: InstanceId) -> String {
    format!("parlor:users:{}", instance_name(instance))
}

/// Shared by the scripts: Redis's clock in milliseconds, and whether a set of instances holds
/// one that is alive (other than `except`).
const PRELUDE: &str = r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local function alive_in(set, except)
  for _, other in ipairs(redis.call('SMEMBERS', set)) do
    if other ~= except then
      local until_ = redis.call('ZSCORE', KEYS[1], other)
      if until_ and tonumber(until_) > now then return true end
    end
  end
  return false
end
"#;

/// KEYS: alive, where:<user>, users:<instance>; ARGV: instance, user. 1 when the user was on
/// no live instance before (they came online).
static ARRIVE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        "{PRELUDE}
local before = alive_in(KEYS[2], ARGV[1])
redis.call('SADD', KEYS[2], ARGV[1])
redis.call('SADD', KEYS[3], ARGV[2])
if before then return 0 else return 1 end"
    ))
});

/// KEYS and ARGV as [`ARRIVE`]. 1 when the user is on no live instance now (went offline).
static LEAVE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        "{PRELUDE}
redis.call('SREM', KEYS[2], ARGV[1])
redis.call('SREM', KEYS[3], ARGV[2])
if alive_in(KEYS[2], '') then return 0 else return 1 end"
    ))
});

/// KEYS: alive, then where:<user> of each user asked. 1 or 0 for each.
static ONLINE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        "{PRELUDE}
local out = {{}}
for i = 2, #KEYS do
  if alive_in(KEYS[i], '') then out[#out + 1] = 1 else out[#out + 1] = 0 end
end
return out"
    ))
});

/// KEYS: alive; ARGV: instance, how long it counts (ms). 1 when Redis knew the instance
/// (and still counted it alive), 0 when it is new to Redis.
static HEARTBEAT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        "{PRELUDE}
local until_ = redis.call('ZSCORE', KEYS[1], ARGV[1])
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
if until_ and tonumber(until_) > now then return 1 else return 0 end"
    ))
});

/// KEYS: alive, the strangers key; ARGV: instance, how long leadership lasts (ms). Keeps
/// (or, when there is none or it stopped, takes) the running of strangers: one instance at
/// a time. Returns that instance, then every live instance.
static LEAD: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        "{PRELUDE}
local leader = redis.call('GET', KEYS[2])
if leader then
  local until_ = redis.call('ZSCORE', KEYS[1], leader)
  if not (until_ and tonumber(until_) > now) then leader = false end
end
if (not leader) or leader == ARGV[1] then
  redis.call('SET', KEYS[2], ARGV[1], 'PX', tonumber(ARGV[2]))
  leader = ARGV[1]
end
local out = redis.call('ZRANGEBYSCORE', KEYS[1], now, '+inf')
table.insert(out, 1, leader)
return out"
    ))
});

/// KEYS: alive; ARGV: an instance that is leaving, or none. Forgets that instance, or every
/// instance whose heartbeat ran out, and returns the users who were on it and are on no live
/// instance now. Atomic: one sweeper handles each instance.
static SWEEP: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        "{PRELUDE}
local offline = {{}}
local gone = ARGV[1] and {{ARGV[1]}} or redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now)
for _, instance in ipairs(gone) do
  redis.call('ZREM', KEYS[1], instance)
  local users = 'parlor:users:' .. instance
  for _, user in ipairs(redis.call('SMEMBERS', users)) do
    local where = 'parlor:where:' .. user
    redis.call('SREM', where, instance)
    if not alive_in(where, '') then offline[#offline + 1] = user end
  end
  redis.call('DEL', users)
  -- So did its sockets.
  redis.call('DEL', 'parlor:sockets:' .. instance)
  -- The code rooms held there went with it.
  local rooms = 'parlor:rooms:' .. instance
  for _, room in ipairs(redis.call('SMEMBERS', rooms)) do redis.call('DEL', 'parlor:room:' .. room) end
  redis.call('DEL', rooms)
  -- Who was in a call held there is in none there now (the calls it kept in Redis wait for
  -- another instance to take them over).
  local suffix = '/' .. instance
  local busy = redis.call('HGETALL', 'parlor:busy')
  for i = 1, #busy, 2 do
    local value = busy[i + 1]
    if string.sub(value, -#suffix) == suffix then redis.call('HDEL', 'parlor:busy', busy[i]) end
  end
end
return offline"
    ))
});

/// Runs [`ARRIVE`] or [`LEAVE`] for `user` on `instance`: whether that changed their
/// presence over all instances.
async fn presence_change(
    script: &Script,
    redis: &mut ConnectionManager,
    instance: InstanceId,
    user: i64,
) -> RedisResult<bool> {
    let changed: i64 = script
        .key(ALIVE)
        .key(where_key(user))
        .key(users_key(instance))
        .arg(instance_name(instance))
        .arg(user)
        .invoke_async(redis)
        .await?;
    Ok(changed == 1)
}

/// `user` has a socket on `instance` now: whether they came online.
pub(super) async fn arrive(
    redis: &mut ConnectionManager,
    instance: InstanceId,
    user: i64,
) -> RedisResult<bool> {
    presence_change(&ARRIVE, redis, instance, user).await
}

/// `user` has no socket on `instance` any more: whether they went offline.
pub(super) async fn leave(
    redis: &mut ConnectionManager,
    instance: InstanceId,
    user: i64,
) -> RedisResult<bool> {
    presence_change(&LEAVE, redis, instance, user).await
}

pub(super) async fn online(redis: &mut ConnectionManager, users: &[i64]) -> RedisResult<Vec<bool>> {
    if users.is_empty() {
        return Ok(Vec::new());
    }
    let mut invocation = ONLINE.key(ALIVE);
    for &user in users {
        invocation.key(where_key(user));
    }
    let online: Vec<i64> = invocation.invoke_async(redis).await?;
    Ok(online.into_iter().map(|o| o == 1).collect())
}

/// Says `instance` is alive; whether Redis knew it (false after a Redis restart, or after
/// this instance stalled long enough to be swept).
pub(super) async fn heartbeat(
    redis: &mut ConnectionManager,
    instance: InstanceId,
    alive_for: std::time::Duration,
) -> RedisResult<bool> {
    let known: i64 = HEARTBEAT
        .key(ALIVE)
        .arg(instance_name(instance))
        .arg(alive_for.as_millis() as u64)
        .invoke_async(redis)
        .await?;
    Ok(known == 1)
}

/// Forgets stopped instances (or `leaving` now); the users who went offline with them.
pub(super) async fn sweep(
    redis: &mut ConnectionManager,
    leaving: Option<InstanceId>,
) -> RedisResult<Vec<i64>> {
    let mut invocation = SWEEP.key(ALIVE);
    if let Some(instance) = leaving {
        invocation.arg(instance_name(instance));
    }
    let offline: Vec<String> = invocation.invoke_async(redis).await?;
    Ok(offline.iter().filter_map(|u| u.parse().ok()).collect())
}

/// Keeps or takes the running of strangers (see [`LEAD`]): the instance that runs them, and
/// every live instance.
pub(super) async fn lead(
    redis: &mut ConnectionManager,
    instance: InstanceId,
    alive_for: std::time::Duration,
) -> RedisResult<(InstanceId, Vec<InstanceId>)> {
    let names: Vec<String> = LEAD
        .key(ALIVE)
        .key("parlor:strangers")
        .arg(instance_name(instance))
        .arg(alive_for.as_millis() as u64)
        .invoke_async(redis)
        .await?;
    let parse = |name: &String| u64::from_str_radix(name, 16).ok().map(InstanceId);
    let leader = names.first().and_then(parse).unwrap_or(instance);
    Ok((leader, names.iter().skip(1).filter_map(parse).collect()))
}
