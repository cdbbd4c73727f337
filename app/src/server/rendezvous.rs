//! Code rooms (`/rendezvous`): minting single-use codes, redeeming them, and the two sides of
//! each room with their mailboxes. A room lives while a side is connected and for the time to
//! live after both left; expiry is a timer per room (never a sweep over all rooms). A side is
//! held by one session at a time: the same session id takes it over at once (the old socket is
//! told to close), another is refused while it is connected. Each side's mailbox numbers what
//! it is sent from 1, keeps it until acknowledged, and re-delivers the rest in order when the
//! side says `hello` again after reconnecting: nothing lost, nothing twice.
//!
//! Decisions happen under one short lock and never wait; frames go out through each socket's
//! bounded queue, like the hub's. With several instances (`PARLOR_REDIS_URL`) a room lives on
//! the instance that minted it (its home); a side connected to another instance is held here
//! as a remote connection, whose frames go back through Redis ([`RoomPost`], see
//! [`super::cluster`]'s rooms).

use std::{
    collections::{HashMap, VecDeque},
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::extract::ws::Utf8Bytes;

use super::hub::{Frame, InstanceId, Outbound, SocketRef};
use crate::rendezvous::{AppId, Side};

/// Reaching a side's socket held by another instance (through Redis).
pub trait RoomPost: Send + Sync {
    /// Sends `out` to the socket `to` (on another instance); `seq` is the mailbox number of
    /// a `deliver` frame, 0 for any other frame.
    fn post(&self, to: SocketRef, seq: u64, out: Outbound);
    /// Whether `instance` is alive (a side held there while it is not counts as gone).
    fn alive(&self, instance: InstanceId) -> bool;
}

/// Where a connection's frames go.
#[derive(Clone)]
pub enum Out {
    /// A socket of this instance (its bounded queue).
    Local(super::queue::Sender<Outbound>),
    /// A socket another instance holds for this room.
    Remote(SocketRef),
}

/// What a side's socket on another instance asks of its room (carried out at its home).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum RoomOp {
    /// The socket opened (with its session id, if it gave one).
    Join {
        session: Option<String>,
    },
    /// A relay frame (`offer`, `answer`, `ice`, `sender_ready`) as the client wrote it.
    Relay {
        kind: String,
        text: String,
    },
    /// `send {to, payload}` (the payload serialised).
    Send {
        to: char,
        payload: String,
    },
    Delivered {
        up_to: u64,
    },
    Hello {
        up_to: u64,
    },
    /// The socket closed.
    Leave,
}

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
    out: Out,
    /// Whether this connection said `hello` (until then nothing from the mailbox goes out).
    greeted: bool,
    /// The highest sequence number sent on this connection.
    sent_up_to: u64,
    /// A delivery did not fit in the socket's queue: nothing more goes out live (order would
    /// break); the next `hello` sends the rest.
    stalled: bool,
}

impl Conn {
    /// Sends `out` to this connection's socket; false when its queue is full.
    fn push(&self, post: Option<&dyn RoomPost>, seq: u64, out: Outbound) -> bool {
        match &self.out {
            Out::Local(queue) => queue.try_send(out).is_ok(),
            Out::Remote(socket) => post.is_some_and(|post| {
                post.post(*socket, seq, out);
                true
            }),
        }
    }

    /// Whether its socket is gone with its instance.
    fn orphaned(&self, post: Option<&dyn RoomPost>) -> bool {
        match &self.out {
            Out::Local(_) => false,
            Out::Remote(socket) => !post.is_some_and(|post| post.alive(socket.instance)),
        }
    }

    /// Queues mailbox frame `seq`; false when the queue is full (the connection stalls).
    fn deliver(&mut self, post: Option<&dyn RoomPost>, seq: u64, payload: &str) -> bool {
        if self.stalled {
            return false;
        }
        if self.push(post, seq, Outbound::Text(deliver_frame(seq, payload))) {
            self.sent_up_to = seq;
            true
        } else {
            self.stalled = true;
            false
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
    /// TURN tags of live rooms other instances hold, for which this instance handed out
    /// credentials (forgotten when their home says the room is gone).
    remote_tags: std::collections::HashSet<u64>,
    next_conn: u64,
}

/// The most remote rooms' TURN tags one instance remembers.
const MAX_REMOTE_TAGS: usize = 100_000;

/// This instance's rooms.
pub struct Rooms {
    inner: Mutex<Inner>,
    ttl: Duration,
    digits: u32,
    limits: MailboxLimits,
    /// Reaching sides held by other instances; unset alone.
    post: std::sync::OnceLock<Arc<dyn RoomPost>>,
}

/// A room that expired: whether its code was never redeemed, and its TURN tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Expired {
    pub unredeemed: bool,
    pub turn_tag: u64,
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
            post: Default::default(),
        }
    }

    /// Sides may be held by other instances' sockets, reached through `post`.
    pub fn set_post(&self, post: Arc<dyn RoomPost>) {
        let _ = self.post.set(post);
    }

    fn post(&self) -> Option<&dyn RoomPost> {
        self.post.get().map(|p| p.as_ref())
    }

    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// The most codes live at once (over all instances): one in a hundred of the space, so
    /// guessing one stays hopeless.
    pub fn most_live(&self) -> u64 {
        10u64.pow(self.digits) / 100
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
        if inner.codes.len() as u64 >= self.most_live() {
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

    /// The code of `room` was redeemed through another instance.
    pub fn redeemed_elsewhere(&self, room: AppId) {
        let mut inner = self.lock();
        if let Some(code) = inner.rooms.get_mut(&room).and_then(|r| r.code.take()) {
            inner.codes.remove(&code);
        }
    }

    /// Takes back a room just minted (its code was taken on another instance meanwhile).
    pub fn discard(&self, room: AppId) {
        let mut inner = self.lock();
        if let Some(state) = inner.rooms.remove(&room) {
            inner.turn_tags.remove(&state.turn_tag);
            if let Some(code) = state.code {
                inner.codes.remove(&code);
            }
        }
    }

    /// Whether a room exists (for refusing upgrades to rooms that do not).
    pub fn exists(&self, room: AppId) -> bool {
        self.lock().rooms.contains_key(&room)
    }

    /// The tag a live room's TURN credentials are bound to.
    pub fn turn_tag(&self, room: AppId) -> Option<u64> {
        self.lock().rooms.get(&room).map(|r| r.turn_tag)
    }

    /// Whether the room with this TURN tag still exists (here, or as its home last said).
    pub fn has_turn_tag(&self, tag: u64) -> bool {
        let inner = self.lock();
        inner.turn_tags.contains(&tag) || inner.remote_tags.contains(&tag)
    }

    /// Credentials for another instance's room with this tag were handed out here.
    pub fn learn_remote_tag(&self, tag: u64) {
        let mut inner = self.lock();
        if inner.remote_tags.len() < MAX_REMOTE_TAGS {
            inner.remote_tags.insert(tag);
        }
    }

    /// Another instance's room with this tag is gone.
    pub fn forget_remote_tag(&self, tag: u64) {
        self.lock().remote_tags.remove(&tag);
    }

    /// Seats a socket of this instance on `side` of `room` with session `session`. A
    /// connected holder with the same session is replaced (told to close); with another, the
    /// seat is refused.
    pub fn join(
        &self,
        room: AppId,
        side: Side,
        session: Option<&str>,
        queue: super::queue::Sender<Outbound>,
    ) -> Result<Seat, JoinError> {
        self.seat(room, side, session, Out::Local(queue))
    }

    /// [`Self::join`] for a socket another instance holds. A refusal is sent to it as a
    /// close (`1008`, why).
    pub fn join_remote(
        &self,
        room: AppId,
        side: Side,
        session: Option<&str>,
        socket: SocketRef,
    ) -> Result<Seat, JoinError> {
        self.seat(room, side, session, Out::Remote(socket))
            .inspect_err(|refused| {
                if let Some(post) = self.post() {
                    post.post(socket, 0, Outbound::Close(1008, refused.reason()));
                }
            })
    }

    fn seat(
        &self,
        room: AppId,
        side: Side,
        session: Option<&str>,
        out: Out,
    ) -> Result<Seat, JoinError> {
        let post = self.post();
        let mut inner = self.lock();
        inner.next_conn += 1;
        let id = inner.next_conn;
        let state = inner.rooms.get_mut(&room).ok_or(JoinError::NoRoom)?;
        // While anyone is connected the room does not expire.
        state.generation += 1;
        let seat = &mut state.sides[side.index()];
        if let Some(old) = seat.conn.as_ref().filter(|c| !c.orphaned(post)) {
            let same = session.is_some() && old.session.as_deref() == session;
            if !same {
                return Err(JoinError::Busy);
            }
            old.push(post, 0, Outbound::Close(1000, "taken_over"));
        }
        seat.conn = Some(Conn {
            id,
            session: session.map(str::to_string),
            out,
            greeted: false,
            sent_up_to: 0,
            stalled: false,
        });
        if state.sides.iter().all(|s| s.conn.is_some()) {
            let full = text(&serde_json::json!({"type": "room_full"}));
            for s in &state.sides {
                if let Some(conn) = &s.conn {
                    conn.push(post, 0, Outbound::Text(full.clone()));
                }
            }
        }
        Ok(Seat {
            room,
            side,
            conn: id,
        })
    }

    /// The seat a socket on another instance holds, if it still does.
    pub fn remote_seat(&self, room: AppId, side: Side, socket: SocketRef) -> Option<Seat> {
        let inner = self.lock();
        let conn = inner.rooms.get(&room)?.sides[side.index()].conn.as_ref()?;
        matches!(conn.out, Out::Remote(s) if s == socket).then_some(Seat {
            room,
            side,
            conn: conn.id,
        })
    }

    /// `instance` is gone: the sides its sockets held are free, and rooms left empty expire
    /// after their time to live. (Only when an instance stops; never a periodic sweep.)
    pub fn drop_instance(&self, instance: InstanceId) -> Vec<ArmTimer> {
        self.drop_remote(|socket| socket.instance == instance).0
    }

    /// Redis was lost (their instances closed the sockets they proxied, whose leaving may
    /// have been lost with it): every side held by another instance's socket is free, and
    /// each such socket still there is told to reconnect.
    pub fn drop_all_remote(&self) -> Vec<ArmTimer> {
        let (timers, sockets) = self.drop_remote(|_| true);
        if let Some(post) = self.post() {
            for socket in sockets {
                post.post(socket, 0, Outbound::Close(1012, "reconnect"));
            }
        }
        timers
    }

    /// Frees the sides held by remote sockets `which` picks: timers to arm for rooms left
    /// empty, and the sockets.
    fn drop_remote(&self, which: impl Fn(SocketRef) -> bool) -> (Vec<ArmTimer>, Vec<SocketRef>) {
        let mut inner = self.lock();
        let ttl = self.ttl.as_secs();
        let (mut timers, mut sockets) = (Vec::new(), Vec::new());
        for (room, state) in inner.rooms.iter_mut() {
            let mut dropped = false;
            for side in &mut state.sides {
                if let Some(Out::Remote(socket)) = side.conn.as_ref().map(|c| &c.out) {
                    if which(*socket) {
                        sockets.push(*socket);
                        side.conn = None;
                        dropped = true;
                    }
                }
            }
            if dropped && state.sides.iter().all(|s| s.conn.is_none()) {
                state.generation += 1;
                state.expires_at = now_secs() + ttl;
                timers.push(ArmTimer {
                    room: *room,
                    generation: state.generation,
                });
            }
        }
        (timers, sockets)
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
    /// What went, if it did.
    pub fn expire(&self, timer: ArmTimer) -> Option<Expired> {
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
        Some(Expired {
            unredeemed,
            turn_tag: state.turn_tag,
        })
    }

    /// Runs `act` on the seat's room if this socket still holds its side.
    fn with_seat<T>(
        &self,
        seat: Seat,
        act: impl FnOnce(&mut Room, Option<&dyn RoomPost>) -> T,
    ) -> Option<T> {
        let post = self.post();
        let mut inner = self.lock();
        let state = inner.rooms.get_mut(&seat.room)?;
        let holds = state.sides[seat.side.index()]
            .conn
            .as_ref()
            .is_some_and(|c| c.id == seat.conn);
        holds.then(|| act(state, post))
    }

    /// Forwards a relay frame (`offer`, `answer`, `ice`, `sender_ready`) unchanged to the
    /// other side, if it is connected.
    pub fn relay(&self, seat: Seat, frame: Utf8Bytes, kind: &'static str) {
        self.with_seat(seat, |room, post| {
            if let Some(conn) = &room.sides[seat.side.other().index()].conn {
                conn.push(post, 0, Outbound::Text(Frame { text: frame, kind }));
            }
        });
    }

    /// Stores `payload` (serialised JSON) for side `to` and delivers it if that side is
    /// connected and greeted.
    pub fn send(&self, seat: Seat, to: Side, payload: &str) -> Result<(), SendError> {
        let limits = self.limits;
        self.with_seat(seat, |room, post| {
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
                conn.deliver(post, seq, payload);
            }
            Ok(())
        })
        .unwrap_or(Ok(()))
    }

    /// `delivered {upTo}`: frees this side's mailbox up to `up_to`.
    pub fn delivered(&self, seat: Seat, up_to: u64) {
        self.with_seat(seat, |room, _| {
            room.sides[seat.side.index()].mailbox.free_up_to(up_to);
        });
    }

    /// `hello {sessionId, deliveredUpTo}`: frees up to `delivered_up_to`, then delivers the
    /// rest in order (what this connection has not had yet).
    pub fn hello(&self, seat: Seat, delivered_up_to: u64) {
        self.with_seat(seat, |room, post| {
            let side = &mut room.sides[seat.side.index()];
            side.mailbox.free_up_to(delivered_up_to);
            if let Some(conn) = side.conn.as_mut() {
                conn.greeted = true;
                conn.stalled = false;
                let from = delivered_up_to.max(conn.sent_up_to);
                for (seq, payload) in side.mailbox.waiting.iter().filter(|(s, _)| *s > from) {
                    if !conn.deliver(post, *seq, payload) {
                        break;
                    }
                }
            }
        });
    }

    /// Every room here: its id, its code while unredeemed, its TURN tag and expiry (for
    /// registering them again in a Redis that forgot them; never on a timer).
    pub fn records(&self) -> Vec<(AppId, Option<String>, u64, u64)> {
        self.lock()
            .rooms
            .iter()
            .map(|(id, room)| (*id, room.code.clone(), room.turn_tag, room.expires_at))
            .collect()
    }

    /// How many rooms and live codes there are (for metrics and tests).
    pub fn counts(&self) -> (usize, usize) {
        let inner = self.lock();
        (inner.rooms.len(), inner.codes.len())
    }
}

/// Carries out what a side's socket on another instance asked (this instance is the room's
/// home): timers to arm when a leave emptied the room. A refused `send` is answered to that
/// socket with an error frame, as to a socket here.
pub fn apply_remote(
    rooms: &Rooms,
    socket: SocketRef,
    room: AppId,
    side: Side,
    op: RoomOp,
) -> Option<ArmTimer> {
    if let RoomOp::Join { session } = &op {
        let _ = rooms.join_remote(room, side, session.as_deref(), socket);
        return None;
    }
    let seat = rooms.remote_seat(room, side, socket)?;
    match op {
        RoomOp::Join { .. } => None,
        RoomOp::Relay { kind, text } => {
            let kind = match kind.as_str() {
                "offer" => "offer",
                "answer" => "answer",
                "ice" => "ice",
                _ => "sender_ready",
            };
            rooms.relay(seat, text.into(), kind);
            None
        }
        RoomOp::Send { to, payload } => {
            let to = Side::parse(&to.to_string())?;
            if let Err(SendError::MailboxFull) = rooms.send(seat, to, &payload) {
                if let Some(post) = rooms.post() {
                    post.post(socket, 0, Outbound::Text(mailbox_full()));
                }
            }
            None
        }
        RoomOp::Delivered { up_to } => {
            rooms.delivered(seat, up_to);
            None
        }
        RoomOp::Hello { up_to } => {
            rooms.hello(seat, up_to);
            None
        }
        RoomOp::Leave => rooms.leave(seat),
    }
}

/// The error frame of a refused `send`.
pub fn mailbox_full() -> Frame {
    error_frame(
        "mailbox_full",
        "The other side's mailbox is full: wait for it to read (delivered).",
    )
}

/// `{"type":"error","code":…,"message":…}`.
pub fn error_frame(code: &str, message: &str) -> Frame {
    Frame {
        text: serde_json::json!({"type": "error", "code": code, "message": message})
            .to_string()
            .into(),
        kind: "error",
    }
}

impl JoinError {
    /// The close reason a refused socket gets.
    pub fn reason(self) -> &'static str {
        match self {
            JoinError::Busy => "side_busy",
            JoinError::NoRoom => "no_room",
        }
    }
}

/// Arms a room's expiry: a code that expires unredeemed is counted, and with several
/// instances Redis and the others forget the room.
pub fn expire_later(state: &super::state::AppState, timer: ArmTimer) {
    let metrics = state.metrics.clone();
    let cluster = state.cluster.clone();
    arm(&state.rooms, timer, move |expired| {
        if expired.unredeemed {
            metrics.code_event("expired");
        }
        if let Some(cluster) = cluster {
            tokio::spawn(async move { cluster.room_gone(timer.room, expired.turn_tag).await });
        }
    });
}

/// Arms an expiry timer: after the time to live, the room goes unless re-armed or in use.
pub fn arm(rooms: &Arc<Rooms>, timer: ArmTimer, on_expired: impl FnOnce(Expired) + Send + 'static) {
    let rooms = rooms.clone();
    let ttl = rooms.ttl;
    tokio::spawn(async move {
        tokio::time::sleep(ttl).await;
        if let Some(expired) = rooms.expire(timer) {
            on_expired(expired);
        }
    });
}
