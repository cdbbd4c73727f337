//! Code rooms over several instances. A room lives on the instance that minted it (its
//! home, in `parlor:room:<appID>` with its TURN tag; `parlor:rooms:<instance>` lists a home's
//! rooms so a sweep of a stopped instance forgets them). Codes are claimed in Redis
//! (`parlor:code:<code>`, never two live, at most one in a hundred of the space live over all
//! instances) and redeemed there once, atomically, whatever instance is asked.
//!
//! A side whose socket lands on another instance is proxied: that instance keeps the socket
//! ([`RoomSockets`]) and forwards what it says to the home ([`super::Envelope::Room`]); the
//! home decides as for its own sockets and sends the socket's frames back
//! ([`super::Envelope::RoomFrame`]), in order through the one publisher. A proxied socket that
//! misses a mailbox frame (a full queue, a lost publish) is closed: its client reconnects and
//! says `hello`, and the mailbox sends the rest.

use std::{
    collections::HashMap,
    sync::{atomic::AtomicU64, LazyLock, Mutex},
};

use redis::{RedisResult, Script};
use tokio::sync::oneshot;

use super::{instance_channel, instance_name, Cluster, Envelope, ALL_CHANNEL};
use crate::{
    rendezvous::{AppId, Side},
    server::{
        hub::{Frame, InstanceId, Outbound, SocketRef},
        queue,
        rendezvous::{RoomOp, RoomPost},
    },
};

const CODES: &str = "parlor:codes";

fn code_key(code: &str) -> String {
    format!("parlor:code:{code}")
}

fn room_key(room: AppId) -> String {
    format!("parlor:room:{room}")
}

fn rooms_key(instance: InstanceId) -> String {
    format!("parlor:rooms:{}", instance_name(instance))
}

/// KEYS: codes, code:<code>, room:<appID>, rooms:<home>; ARGV: code, appID, home, TURN tag,
/// time to live (ms), most live codes, expiry (s). 1 claimed, 0 too many codes live, -1 the
/// code is live already.
static CLAIM: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[6]) then return 0 end
if not redis.call('SET', KEYS[2], ARGV[2] .. ' ' .. ARGV[7], 'NX', 'PX', ARGV[5]) then return -1 end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[5]), ARGV[1])
redis.call('HSET', KEYS[3], 'home', ARGV[3], 'tag', ARGV[4])
redis.call('SADD', KEYS[4], ARGV[2])
return 1",
    )
});

/// KEYS: codes, code:<code>; ARGV: code. The room and expiry (`<appID> <s>`) of a live code
/// whose room still exists, once; nothing after.
static REDEEM: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local value = redis.call('GET', KEYS[2])
if not value then return false end
redis.call('DEL', KEYS[2])
redis.call('ZREM', KEYS[1], ARGV[1])
local room = string.match(value, '^(%S+)')
if redis.call('EXISTS', 'parlor:room:' .. room) == 0 then return false end
return value",
    )
});

/// KEYS: alive; ARGV: an instance. 1 while its heartbeat counts.
static ALIVE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local until_ = redis.call('ZSCORE', KEYS[1], ARGV[1])
if until_ and tonumber(until_) > now then return 1 end
return 0",
    )
});

/// What claiming a code in Redis found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    Claimed,
    /// Too many codes are live over all instances.
    Full,
    /// Another instance holds this code now.
    Taken,
}

/// A room as Redis knows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RoomHome {
    pub home: InstanceId,
    pub turn_tag: u64,
}

impl Cluster {
    /// Claims `code` for `room` (held here) over all instances.
    pub async fn claim_code(
        &self,
        code: &str,
        room: AppId,
        turn_tag: u64,
        expires_at: u64,
        ttl: std::time::Duration,
        most_live: u64,
    ) -> RedisResult<Claim> {
        let mut redis = self.redis.clone();
        let claimed: i64 = CLAIM
            .key(CODES)
            .key(code_key(code))
            .key(room_key(room))
            .key(rooms_key(self.origin()))
            .arg(code)
            .arg(room.to_string())
            .arg(instance_name(self.origin()))
            .arg(format!("{turn_tag:016x}"))
            .arg(ttl.as_millis().max(1) as u64)
            .arg(most_live)
            .arg(expires_at)
            .invoke_async(&mut redis)
            .await?;
        Ok(match claimed {
            1 => Claim::Claimed,
            0 => Claim::Full,
            _ => Claim::Taken,
        })
    }

    /// Registers this instance's rooms (and their unredeemed codes) again, after Redis
    /// forgot them (restarted empty).
    pub async fn reclaim_rooms(
        &self,
        rooms: Vec<(AppId, Option<String>, u64, u64)>,
        most_live: u64,
    ) {
        let now = crate::server::auth::session::now_secs();
        let mut redis = self.redis.clone();
        for (room, code, turn_tag, expires_at) in rooms {
            let result = match code {
                // The time it has left (at least a second: it may be in use past it).
                Some(code) => self
                    .claim_code(
                        &code,
                        room,
                        turn_tag,
                        expires_at,
                        std::time::Duration::from_secs(expires_at.saturating_sub(now).max(1)),
                        most_live,
                    )
                    .await
                    .map(drop),
                None => {
                    redis::pipe()
                        .cmd("HSET")
                        .arg(room_key(room))
                        .arg("home")
                        .arg(instance_name(self.origin()))
                        .arg("tag")
                        .arg(format!("{turn_tag:016x}"))
                        .ignore()
                        .cmd("SADD")
                        .arg(rooms_key(self.origin()))
                        .arg(room.to_string())
                        .ignore()
                        .query_async::<()>(&mut redis)
                        .await
                }
            };
            if let Err(error) = result {
                tracing::warn!(%error, %room, "registering a room in Redis again failed");
                return;
            }
        }
    }

    /// Redeems a live code, once over all instances: its room, expiry and home. The home
    /// hears of it (its code is spent).
    pub async fn redeem_code(&self, code: &str) -> RedisResult<Option<(AppId, u64, RoomHome)>> {
        let mut redis = self.redis.clone();
        let value: Option<String> = REDEEM
            .key(CODES)
            .key(code_key(code))
            .arg(code)
            .invoke_async(&mut redis)
            .await?;
        let Some((room, expires_at)) = value.as_deref().and_then(|v| v.split_once(' ')) else {
            return Ok(None);
        };
        let (Ok(room), Ok(expires_at)) = (room.parse::<AppId>(), expires_at.parse::<u64>()) else {
            return Ok(None);
        };
        let Some(home) = self.room_home(room).await? else {
            return Ok(None);
        };
        if home.home != self.origin() {
            self.send(
                instance_channel(home.home),
                Envelope::CodeRedeemed {
                    origin: self.origin(),
                    room,
                },
            );
        }
        Ok(Some((room, expires_at, home)))
    }

    /// Where `room` lives, if it exists and its home is alive.
    pub async fn room_home(&self, room: AppId) -> RedisResult<Option<RoomHome>> {
        let mut redis = self.redis.clone();
        let (home, tag): (Option<String>, Option<String>) = redis::cmd("HMGET")
            .arg(room_key(room))
            .arg("home")
            .arg("tag")
            .query_async(&mut redis)
            .await?;
        let parse = |text: Option<String>| text.and_then(|t| u64::from_str_radix(&t, 16).ok());
        let (Some(home), Some(turn_tag)) = (parse(home), parse(tag)) else {
            return Ok(None);
        };
        let home = InstanceId(home);
        // An instance started since this one's last heartbeat is asked about in Redis.
        if !self.alive(home) && !self.alive_in_redis(home).await? {
            return Ok(None);
        }
        Ok(Some(RoomHome { home, turn_tag }))
    }

    /// Whether `instance`'s heartbeat counts, as Redis says now; learnt if so.
    async fn alive_in_redis(&self, instance: InstanceId) -> RedisResult<bool> {
        let mut redis = self.redis.clone();
        let alive: i64 = ALIVE
            .key(super::scripts::ALIVE)
            .arg(instance_name(instance))
            .invoke_async(&mut redis)
            .await?;
        if alive == 1 {
            self.live
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(instance);
        }
        Ok(alive == 1)
    }

    /// A room held here expired: Redis forgets it, and every instance its TURN tag.
    pub async fn room_gone(&self, room: AppId, turn_tag: u64) {
        let mut redis = self.redis.clone();
        let forgot = redis::pipe()
            .cmd("DEL")
            .arg(room_key(room))
            .ignore()
            .cmd("SREM")
            .arg(rooms_key(self.origin()))
            .arg(room.to_string())
            .ignore()
            .query_async::<()>(&mut redis)
            .await;
        if let Err(error) = forgot {
            tracing::warn!(%error, %room, "forgetting an expired room in Redis failed");
        }
        self.send(
            ALL_CHANNEL.to_string(),
            Envelope::RoomGone {
                origin: self.origin(),
                turn_tag,
            },
        );
    }

    /// Sends what a proxied socket (here) said to its room's home.
    pub fn forward_room(
        &self,
        home: InstanceId,
        socket: SocketRef,
        room: AppId,
        side: Side,
        op: RoomOp,
    ) {
        self.send(
            instance_channel(home),
            Envelope::Room {
                origin: self.origin(),
                socket,
                room,
                side,
                op,
            },
        );
    }

    /// The room sockets this instance proxies for other instances' rooms.
    pub fn room_sockets(&self) -> &RoomSockets {
        &self.room_sockets
    }

    /// Whether `instance` is this one or alive as of the last heartbeat (or heard since).
    pub fn alive(&self, instance: InstanceId) -> bool {
        instance == self.origin()
            || self
                .live
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .contains(&instance)
    }
}

impl RoomPost for Cluster {
    fn post(&self, to: SocketRef, seq: u64, out: Outbound) {
        let envelope = match out {
            Outbound::Text(frame) => Envelope::RoomFrame {
                origin: self.origin(),
                conn: to.conn,
                seq,
                kind: frame.kind,
                text: frame.text.to_string(),
            },
            Outbound::Close(code, reason) => Envelope::RoomClose {
                origin: self.origin(),
                conn: to.conn,
                code,
                reason,
            },
        };
        self.send(instance_channel(to.instance), envelope);
    }

    fn alive(&self, instance: InstanceId) -> bool {
        Cluster::alive(self, instance)
    }
}

/// A proxied room socket: its queue, its room's home, the last mailbox number it got, and
/// how to end it.
struct Proxied {
    queue: queue::Sender<Outbound>,
    home: InstanceId,
    last_seq: u64,
    end: Option<oneshot::Sender<&'static str>>,
}

impl Proxied {
    fn end(&mut self, why: &'static str) {
        if let Some(end) = self.end.take() {
            let _ = end.send(why);
        }
    }
}

/// The room sockets this instance holds for rooms other instances are home to.
#[derive(Default)]
pub struct RoomSockets {
    next: AtomicU64,
    sockets: Mutex<HashMap<u64, Proxied>>,
}

impl RoomSockets {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Proxied>> {
        self.sockets.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Holds a socket for a room at `home`: its connection number, and what ends it (why).
    pub fn register(
        &self,
        home: InstanceId,
        queue: queue::Sender<Outbound>,
    ) -> (u64, oneshot::Receiver<&'static str>) {
        let conn = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
        let (end, ended) = oneshot::channel();
        self.lock().insert(
            conn,
            Proxied {
                queue,
                home,
                last_seq: 0,
                end: Some(end),
            },
        );
        (conn, ended)
    }

    pub fn unregister(&self, conn: u64) {
        self.lock().remove(&conn);
    }

    /// A frame from the home for socket `conn`. A mailbox frame that is not the one after
    /// the last (one was lost) or does not fit ends the socket: the client's next `hello`
    /// gets the rest in order.
    fn frame(&self, conn: u64, seq: u64, frame: Frame) {
        let mut sockets = self.lock();
        let Some(proxied) = sockets.get_mut(&conn) else {
            return;
        };
        if seq != 0 {
            if proxied.last_seq != 0 && seq != proxied.last_seq + 1 {
                return proxied.end("mailbox_gap");
            }
            proxied.last_seq = seq;
        }
        if proxied.queue.try_send(Outbound::Text(frame)).is_err() {
            proxied.end("queue_full");
        }
    }

    /// The home closes socket `conn` (refused, or taken over).
    fn close(&self, conn: u64, code: u16, reason: &'static str) {
        if let Some(proxied) = self.lock().get_mut(&conn) {
            if proxied
                .queue
                .try_send(Outbound::Close(code, reason))
                .is_err()
            {
                proxied.end(reason);
            }
        }
    }

    /// A `hello` restarts the mailbox numbering this socket expects.
    pub fn greeted(&self, conn: u64) {
        if let Some(proxied) = self.lock().get_mut(&conn) {
            proxied.last_seq = 0;
        }
    }

    /// Ends the sockets whose room's home is gone (the room went with it).
    pub(super) fn home_gone(&self, home: InstanceId) {
        for proxied in self.lock().values_mut().filter(|p| p.home == home) {
            proxied.end("room_gone");
        }
    }

    /// Ends every socket (Redis was lost: frames may have been missed).
    pub(super) fn end_all(&self, why: &'static str) {
        for proxied in self.lock().values_mut() {
            proxied.end(why);
        }
    }

    /// How many sockets are proxied here (for tests).
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Delivers a room frame or close that arrived for a proxied socket here.
pub(super) fn arrived(sockets: &RoomSockets, envelope: Envelope) {
    match envelope {
        Envelope::RoomFrame {
            conn,
            seq,
            kind,
            text,
            ..
        } => sockets.frame(
            conn,
            seq,
            Frame {
                text: text.into(),
                kind,
            },
        ),
        Envelope::RoomClose {
            conn, code, reason, ..
        } => sockets.close(conn, code, reason),
        _ => {}
    }
}
