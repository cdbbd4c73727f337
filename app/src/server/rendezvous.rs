//! Code rooms (`/rendezvous`): minting single-use codes, redeeming them, and the two sides of
//! each room with their mailboxes. A room lives while a side is connected and for the time to
//! live after both left; expiry is a timer per room (never a sweep over all rooms). A side is
//! held by one session at a time: the same session id takes it over at once (the old socket is
//! told to close), another is refused while it is connected. Each side's mailbox numbers what
//! it is sent from 1, keeps it until acknowledged, and re-delivers the rest in order when the
//! side says `hello` again after reconnecting: nothing lost, nothing twice.
//!
//! Decisions happen under one short lock and never wait; frames go out through each socket's
//! bounded queue, like the hub's.

use std::{
    collections::{HashMap, VecDeque},
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::extract::ws::Utf8Bytes;

use super::hub::{Frame, Outbound};
use crate::rendezvous::{AppId, Side};

/// Limits of one room's mailboxes.
#[derive(Debug, Clone, Copy)]
pub struct MailboxLimits {
    /// Frames waiting for one side.
    pub frames: usize,
    /// Bytes of payload waiting for one side.
    pub bytes: usize,
}

/// Why a socket may not hold a side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JoinError {
    /// No such room (never minted, or expired).
    NoRoom,
    /// Another session holds this side and is connected.
    Busy,
}

/// Why a `send` was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendError {
    MailboxFull,
}

/// What a joined socket keeps to act on its side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Seat {
    pub room: AppId,
    pub side: Side,
    /// This connection's number, so that a socket replaced by a takeover acts no more.
    pub conn: u64,
}

struct Conn {
    id: u64,
    session: Option<String>,
    queue: super::queue::Sender<Outbound>,
    /// Whether this connection said `hello` (until then nothing from the mailbox goes out).
    greeted: bool,
    /// The highest sequence number sent on this connection.
    sent_up_to: u64,
    /// A delivery did not fit in the socket's queue: nothing more goes out live (order would
    /// break); the next `hello` sends the rest.
    stalled: bool,
}

impl Conn {
    /// Queues mailbox frame `seq`; false when the queue is full (the connection stalls).
    fn deliver(&mut self, seq: u64, payload: &str) -> bool {
        if self.stalled {
            return false;
        }
        match self
            .queue
            .try_send(Outbound::Text(deliver_frame(seq, payload)))
        {
            Ok(()) => {
                self.sent_up_to = seq;
                true
            }
            Err(_) => {
                self.stalled = true;
                false
            }
        }
    }
}

#[derive(Default)]
struct Mailbox {
    next_seq: u64,
    /// `(seq, payload)` not yet acknowledged, in order.
    waiting: VecDeque<(u64, Utf8Bytes)>,
    bytes: usize,
}

impl Mailbox {
    fn free_up_to(&mut self, up_to: u64) {
        while self.waiting.front().is_some_and(|(seq, _)| *seq <= up_to) {
            if let Some((_, payload)) = self.waiting.pop_front() {
                self.bytes -= payload.len();
            }
        }
    }
}

#[derive(Default)]
struct SideState {
    conn: Option<Conn>,
    mailbox: Mailbox,
}

struct Room {
    /// The code, while it has not been redeemed.
    code: Option<String>,
    expires_at: u64,
    sides: [SideState; 2],
    /// Bumped whenever the expiry timer is re-armed; a timer of an older generation is void.
    generation: u64,
    /// What the room's TURN credentials are bound to ([`TurnBinding::Room`]): random, and
    /// not the room's id (the secret of its two sides).
    ///
    /// [`TurnBinding::Room`]: super::turn_binding::TurnBinding::Room
    turn_tag: u64,
}

#[derive(Default)]
struct Inner {
    rooms: HashMap<AppId, Room>,
    codes: HashMap<String, AppId>,
    /// The live rooms' TURN tags.
    turn_tags: std::collections::HashSet<u64>,
    next_conn: u64,
}

/// This instance's rooms.
pub struct Rooms {
    inner: Mutex<Inner>,
    ttl: Duration,
    digits: u32,
    limits: MailboxLimits,
}

/// Something the caller must do after a decision: arm this room's expiry timer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub struct ArmTimer {
    pub room: AppId,
    pub generation: u64,
}

impl std::fmt::Debug for Rooms {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rooms").field("ttl", &self.ttl).finish()
    }
}

fn now_secs() -> u64 {
    super::auth::session::now_secs()
}

fn random_u128() -> u128 {
    use argon2::password_hash::rand_core::{OsRng, RngCore};
    let mut bytes = [0u8; 16];
    OsRng.fill_bytes(&mut bytes);
    u128::from_le_bytes(bytes)
}

fn text(value: &serde_json::Value) -> Frame {
    Frame {
        text: value.to_string().into(),
        kind: "rendezvous",
    }
}

/// `{"type":"deliver","seq":n,"payload":…}` around an already serialised payload.
fn deliver_frame(seq: u64, payload: &str) -> Frame {
    Frame {
        text: format!(r#"{{"type":"deliver","seq":{seq},"payload":{payload}}}"#).into(),
        kind: "deliver",
    }
}

impl Rooms {
    pub fn new(ttl: Duration, digits: u32, limits: MailboxLimits) -> Self {
        Self {
            inner: Mutex::default(),
            ttl,
            digits: digits.clamp(4, 8),
            limits,
        }
    }

    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A new room and its code: `(code, room, expires at)`; `None` when the code space is
    /// nearly full (a limit, not a guess). Arms the room's expiry.
    pub fn mint(&self) -> Option<(String, AppId, u64, ArmTimer)> {
        let mut inner = self.lock();
        let space = 10u64.pow(self.digits);
        // Keep codes sparse: guessing one must stay hopeless.
        if inner.codes.len() as u64 >= space / 100 {
            return None;
        }
        let code = loop {
            let n = (random_u128() % u128::from(space)) as u64;
            let code = format!("{n:0width$}", width = self.digits as usize);
            if !inner.codes.contains_key(&code) {
                break code;
            }
        };
        let room = AppId::from_random(random_u128());
        let expires_at = now_secs() + self.ttl.as_secs();
        let turn_tag = loop {
            let tag = random_u128() as u64;
            if inner.turn_tags.insert(tag) {
                break tag;
            }
        };
        inner.codes.insert(code.clone(), room);
        inner.rooms.insert(
            room,
            Room {
                code: Some(code.clone()),
                expires_at,
                sides: Default::default(),
                generation: 0,
                turn_tag,
            },
        );
        Some((
            code,
            room,
            expires_at,
            ArmTimer {
                room,
                generation: 0,
            },
        ))
    }

    /// Redeems a live code, once: its room and expiry.
    pub fn redeem(&self, code: &str) -> Option<(AppId, u64)> {
        let mut inner = self.lock();
        let room = inner.codes.remove(code)?;
        let state = inner.rooms.get_mut(&room)?;
        state.code = None;
        Some((room, state.expires_at))
    }

    /// Whether a room exists (for refusing upgrades to rooms that do not).
    pub fn exists(&self, room: AppId) -> bool {
        self.lock().rooms.contains_key(&room)
    }

    /// The tag a live room's TURN credentials are bound to.
    pub fn turn_tag(&self, room: AppId) -> Option<u64> {
        self.lock().rooms.get(&room).map(|r| r.turn_tag)
    }

    /// Whether the room with this TURN tag still exists.
    pub fn has_turn_tag(&self, tag: u64) -> bool {
        self.lock().turn_tags.contains(&tag)
    }

    /// Seats a socket on `side` of `room` with session `session`. A connected holder with the
    /// same session is replaced (told to close); with another, the seat is refused.
    pub fn join(
        &self,
        room: AppId,
        side: Side,
        session: Option<&str>,
        queue: super::queue::Sender<Outbound>,
    ) -> Result<Seat, JoinError> {
        let mut inner = self.lock();
        inner.next_conn += 1;
        let id = inner.next_conn;
        let state = inner.rooms.get_mut(&room).ok_or(JoinError::NoRoom)?;
        // While anyone is connected the room does not expire.
        state.generation += 1;
        let seat = &mut state.sides[side.index()];
        if let Some(old) = &seat.conn {
            let same = session.is_some() && old.session.as_deref() == session;
            if !same {
                return Err(JoinError::Busy);
            }
            let _ = old.queue.try_send(Outbound::Close(1000, "taken_over"));
        }
        seat.conn = Some(Conn {
            id,
            session: session.map(str::to_string),
            queue,
            greeted: false,
            sent_up_to: 0,
            stalled: false,
        });
        if state.sides.iter().all(|s| s.conn.is_some()) {
            let full = text(&serde_json::json!({"type": "room_full"}));
            for s in &state.sides {
                if let Some(conn) = &s.conn {
                    let _ = conn.queue.try_send(Outbound::Text(full.clone()));
                }
            }
        }
        Ok(Seat {
            room,
            side,
            conn: id,
        })
    }

    /// The socket of `seat` ended. When the room is then empty, its expiry is armed.
    pub fn leave(&self, seat: Seat) -> Option<ArmTimer> {
        let mut inner = self.lock();
        let ttl = self.ttl.as_secs();
        let state = inner.rooms.get_mut(&seat.room)?;
        let side = &mut state.sides[seat.side.index()];
        if side.conn.as_ref().is_some_and(|c| c.id == seat.conn) {
            side.conn = None;
        }
        if state.sides.iter().any(|s| s.conn.is_some()) {
            return None;
        }
        state.generation += 1;
        state.expires_at = now_secs() + ttl;
        Some(ArmTimer {
            room: seat.room,
            generation: state.generation,
        })
    }

    /// The expiry timer of `timer` fired: the room goes unless it was re-armed or is in use.
    /// Whether it went, and whether its code was never redeemed.
    pub fn expire(&self, timer: ArmTimer) -> Option<bool> {
        let mut inner = self.lock();
        let state = inner.rooms.get(&timer.room)?;
        if state.generation != timer.generation || state.sides.iter().any(|s| s.conn.is_some()) {
            return None;
        }
        let state = inner.rooms.remove(&timer.room)?;
        inner.turn_tags.remove(&state.turn_tag);
        let unredeemed = state.code.is_some();
        if let Some(code) = state.code {
            inner.codes.remove(&code);
        }
        Some(unredeemed)
    }

    /// Runs `act` on the seat's room if this socket still holds its side.
    fn with_seat<T>(&self, seat: Seat, act: impl FnOnce(&mut Room) -> T) -> Option<T> {
        let mut inner = self.lock();
        let state = inner.rooms.get_mut(&seat.room)?;
        let holds = state.sides[seat.side.index()]
            .conn
            .as_ref()
            .is_some_and(|c| c.id == seat.conn);
        holds.then(|| act(state))
    }

    /// Forwards a relay frame (`offer`, `answer`, `ice`, `sender_ready`) unchanged to the
    /// other side, if it is connected.
    pub fn relay(&self, seat: Seat, frame: Utf8Bytes, kind: &'static str) {
        self.with_seat(seat, |room| {
            if let Some(conn) = &room.sides[seat.side.other().index()].conn {
                let _ = conn
                    .queue
                    .try_send(Outbound::Text(Frame { text: frame, kind }));
            }
        });
    }

    /// Stores `payload` (serialised JSON) for side `to` and delivers it if that side is
    /// connected and greeted.
    pub fn send(&self, seat: Seat, to: Side, payload: &str) -> Result<(), SendError> {
        let limits = self.limits;
        self.with_seat(seat, |room| {
            let target = &mut room.sides[to.index()];
            let mailbox = &mut target.mailbox;
            if mailbox.waiting.len() >= limits.frames
                || mailbox.bytes + payload.len() > limits.bytes
            {
                return Err(SendError::MailboxFull);
            }
            mailbox.next_seq += 1;
            let seq = mailbox.next_seq;
            mailbox.waiting.push_back((seq, payload.to_string().into()));
            mailbox.bytes += payload.len();
            if let Some(conn) = target.conn.as_mut().filter(|c| c.greeted) {
                conn.deliver(seq, payload);
            }
            Ok(())
        })
        .unwrap_or(Ok(()))
    }

    /// `delivered {upTo}`: frees this side's mailbox up to `up_to`.
    pub fn delivered(&self, seat: Seat, up_to: u64) {
        self.with_seat(seat, |room| {
            room.sides[seat.side.index()].mailbox.free_up_to(up_to);
        });
    }

    /// `hello {sessionId, deliveredUpTo}`: frees up to `delivered_up_to`, then delivers the
    /// rest in order (what this connection has not had yet).
    pub fn hello(&self, seat: Seat, delivered_up_to: u64) {
        self.with_seat(seat, |room| {
            let side = &mut room.sides[seat.side.index()];
            side.mailbox.free_up_to(delivered_up_to);
            if let Some(conn) = side.conn.as_mut() {
                conn.greeted = true;
                conn.stalled = false;
                let from = delivered_up_to.max(conn.sent_up_to);
                for (seq, payload) in side.mailbox.waiting.iter().filter(|(s, _)| *s > from) {
                    if !conn.deliver(*seq, payload) {
                        break;
                    }
                }
            }
        });
    }

    /// How many rooms and live codes there are (for metrics and tests).
    pub fn counts(&self) -> (usize, usize) {
        let inner = self.lock();
        (inner.rooms.len(), inner.codes.len())
    }
}

/// Arms an expiry timer: after the time to live, the room goes unless re-armed or in use.
pub fn arm(rooms: &Arc<Rooms>, timer: ArmTimer, on_expired: impl FnOnce(bool) + Send + 'static) {
    let rooms = rooms.clone();
    let ttl = rooms.ttl;
    tokio::spawn(async move {
        tokio::time::sleep(ttl).await;
        if let Some(unredeemed) = rooms.expire(timer) {
            on_expired(unredeemed);
        }
    });
}
