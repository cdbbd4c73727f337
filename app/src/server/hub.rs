//! Who is connected on this instance, and the way to reach them: every open socket of every
//! user or guest, keyed by [`PrincipalId`] (one person, many tabs). Each socket has an address
//! ([`SocketRef`]: this instance's id and a number) that another instance could route to.
//! The hub is the in-process implementation of [`Delivery`] and [`Presence`], the interfaces
//! the rest of the server uses to reach people. Sending never waits: each socket has a
//! bounded queue drained by its own writer task, and a socket whose queue is full is told to
//! close (its browser reconnects and catches up) instead of slowing anyone else down. Locks
//! are short, sharded, and never held across an await.

use std::{
    collections::HashMap,
    sync::{
        atomic::{AtomicU64, AtomicUsize, Ordering},
        Arc, Mutex,
    },
};

use axum::extract::ws::Utf8Bytes;
use tokio::sync::Notify;

use super::queue::{self, TrySendError};

use super::auth::PrincipalId;
use crate::protocol::ServerMsg;

/// Which instance of the server a socket is connected to (random per process).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct InstanceId(pub u64);

/// A socket's address: unique across instances and restarts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SocketRef {
    pub instance: InstanceId,
    pub conn: u64,
}

/// Reaching people's sockets, wherever they are connected. Sending never waits.
pub trait Delivery: Send + Sync {
    /// Queues a serialised message for every socket of `to`; how many got it.
    fn send_frame(&self, to: PrincipalId, frame: &Frame) -> usize;
    /// Queues a message for one socket of `to`; whether it is still there.
    fn send_to_socket(&self, to: PrincipalId, socket: SocketRef, message: &ServerMsg) -> bool;
    /// Queues a message for every socket of `to` but one.
    fn send_to_others(&self, to: PrincipalId, except: SocketRef, message: &ServerMsg);

    fn send_to(&self, to: PrincipalId, message: &ServerMsg) -> usize {
        self.send_frame(to, &encode(message))
    }

    /// Serialises once and queues for every socket of every listed user.
    fn send_to_users(&self, users: &[i64], message: &ServerMsg) {
        let frame = encode(message);
        for &user in users {
            self.send_frame(PrincipalId::User(user), &frame);
        }
    }

    fn send_to_user(&self, user: i64, message: &ServerMsg) -> usize {
        self.send_to(PrincipalId::User(user), message)
    }

    /// Closes the user's sockets opened with a session older than `token_version`, or all
    /// of them when `None` (account deleted).
    fn end_sessions(&self, user: i64, token_version: Option<i64>);

    /// Closes the user's sockets opened with session `session_id` (signed out).
    fn end_session(&self, user: i64, session_id: &str);
}

/// A session id (32 hex digits) as a number: what a socket keeps of it.
fn session_number(session_id: &str) -> u128 {
    u128::from_str_radix(session_id, 16).unwrap_or(0)
}

/// Whether users have a socket open anywhere (friends see each other online).
pub trait Presence: Send + Sync {
    /// For each of `users`, whether they have a socket open on any instance.
    fn online<'a>(
        &'a self,
        users: &'a [i64],
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Vec<bool>> + Send + 'a>>;

    /// `who`'s first socket on this instance opened (`here`), or their last one here closed.
    /// Returns whether the caller announces it now: they came online or went offline
    /// everywhere. (With several instances the answer comes later, and the cluster announces
    /// it.)
    fn local_change(&self, who: PrincipalId, here: bool) -> bool;

    fn is_online<'a>(
        &'a self,
        user: i64,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = bool> + Send + 'a>> {
        Box::pin(async move {
            self.online(std::slice::from_ref(&user))
                .await
                .first()
                .copied()
                .unwrap_or(false)
        })
    }
}

/// Frames waiting for one socket's writer. Enough for bursts; a client this far behind is
/// not reading.
pub const QUEUE_DEPTH: usize = 256;

const SHARDS: usize = 32;

/// A serialised `ServerMsg`, serialised once and shared by every recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub text: Utf8Bytes,
    /// Its `type`, for the writer's metrics.
    pub kind: &'static str,
}

/// What a socket's writer is asked to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outbound {
    Text(Frame),
    /// A close frame; the writer stops after it.
    Close(u16, &'static str),
}

/// A registered socket's handles.
#[derive(Clone)]
struct Conn {
    id: u64,
    token_version: i64,
    /// The session the socket was opened with (its id as a number; 0 for guests).
    session: u128,
    queue: queue::Sender<Outbound>,
    close: Arc<Notify>,
}

/// What a socket gets when it joins the hub.
pub struct Registration {
    pub socket: SocketRef,
    pub queue: queue::Receiver<Outbound>,
    /// Notified when the hub wants this socket closed (too slow, or its session ended).
    pub close: Arc<Notify>,
    /// Whether this is the principal's first socket on this instance (they just came online).
    pub first: bool,
    /// A sender for the socket's own replies.
    pub reply: queue::Sender<Outbound>,
}

pub struct Hub {
    instance: InstanceId,
    shards: [Mutex<HashMap<PrincipalId, Vec<Conn>>>; SHARDS],
    next_id: AtomicU64,
    sockets: AtomicUsize,
    shutting_down: std::sync::atomic::AtomicBool,
}

impl std::fmt::Debug for Hub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hub")
            .field("sockets", &self.socket_count())
            .finish()
    }
}

/// Serialises a message once, for any number of recipients.
pub fn encode(message: &ServerMsg) -> Frame {
    match serde_json::to_string(message) {
        Ok(text) => Frame {
            text: text.into(),
            kind: message.kind(),
        },
        Err(error) => {
            // Plain data with string keys cannot fail to serialise; keep going regardless.
            tracing::error!(%error, "serialising a server message failed");
            Frame {
                text: Utf8Bytes::from_static(r#"{"type":"pong"}"#),
                kind: "pong",
            }
        }
    }
}

impl Default for Hub {
    fn default() -> Self {
        use argon2::password_hash::rand_core::{OsRng, RngCore};
        Self {
            instance: InstanceId(OsRng.next_u64()),
            shards: Default::default(),
            next_id: AtomicU64::new(1),
            sockets: AtomicUsize::new(0),
            shutting_down: Default::default(),
        }
    }
}

impl Hub {
    fn shard(&self, who: PrincipalId) -> &Mutex<HashMap<PrincipalId, Vec<Conn>>> {
        let n = match who {
            PrincipalId::User(id) => id as u64,
            PrincipalId::Guest(g) => g.0 as u64,
        };
        &self.shards[(n % SHARDS as u64) as usize]
    }

    pub fn instance(&self) -> InstanceId {
        self.instance
    }

    /// Adds a socket of `who`; `token_version` and `session` are its session's (0 for
    /// guests).
    pub fn register(&self, who: PrincipalId, token_version: i64, session: &str) -> Registration {
        let (queue, rx) = queue::queue(QUEUE_DEPTH);
        let close = Arc::new(Notify::new());
        let conn = Conn {
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            token_version,
            session: session_number(session),
            queue: queue.clone(),
            close: close.clone(),
        };
        let socket = SocketRef {
            instance: self.instance,
            conn: conn.id,
        };
        let first = {
            let mut shard = self.shard(who).lock().unwrap_or_else(|e| e.into_inner());
            let conns = shard.entry(who).or_default();
            conns.push(conn);
            conns.len() == 1
        };
        self.sockets.fetch_add(1, Ordering::Relaxed);
        Registration {
            socket,
            queue: rx,
            close,
            first,
            reply: queue,
        }
    }

    /// Removes a socket; returns whether it was the principal's last one here (they went
    /// offline).
    pub fn unregister(&self, who: PrincipalId, socket: SocketRef) -> bool {
        let mut shard = self.shard(who).lock().unwrap_or_else(|e| e.into_inner());
        let Some(conns) = shard.get_mut(&who) else {
            return false;
        };
        let before = conns.len();
        conns.retain(|c| c.id != socket.conn);
        if conns.len() < before {
            self.sockets.fetch_sub(1, Ordering::Relaxed);
        }
        if conns.is_empty() {
            shard.remove(&who);
            true
        } else {
            false
        }
    }

    pub fn socket_count(&self) -> usize {
        self.sockets.load(Ordering::Relaxed)
    }

    fn conns(&self, who: PrincipalId) -> Vec<Conn> {
        self.shard(who)
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&who)
            .cloned()
            .unwrap_or_default()
    }

    /// Whether `who` has a socket on this instance.
    pub fn holds(&self, who: PrincipalId) -> bool {
        self.shard(who)
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains_key(&who)
    }

    /// Everyone with a socket on this instance.
    pub fn principals(&self) -> Vec<PrincipalId> {
        self.shards
            .iter()
            .flat_map(|shard| {
                shard
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .keys()
                    .copied()
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    /// Queues `frame` for `who`'s sockets here but connection `except`; how many got it.
    pub fn send_frame_except(&self, who: PrincipalId, frame: &Frame, except: Option<u64>) -> usize {
        self.send_where(who, frame, |id| Some(id) != except)
    }

    /// Queues `frame` for `who`'s socket `conn` here; whether it is still there.
    pub fn send_frame_to_conn(&self, who: PrincipalId, conn: u64, frame: &Frame) -> bool {
        self.send_where(who, frame, |id| id == conn) > 0
    }

    /// Whether `who`'s socket `socket` is still connected to this instance.
    /// [`Self::has_socket`] as the closure the strangers' matcher takes.
    pub fn reachable(&self) -> impl Fn(PrincipalId, SocketRef) -> bool + '_ {
        move |who, socket| self.has_socket(who, socket)
    }

    pub fn has_socket(&self, who: PrincipalId, socket: SocketRef) -> bool {
        self.here(socket)
            && self
                .shard(who)
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get(&who)
                .is_some_and(|conns| conns.iter().any(|c| c.id == socket.conn))
    }

    /// Whether `socket` is one of this instance's (else another instance would deliver).
    fn here(&self, socket: SocketRef) -> bool {
        socket.instance == self.instance
    }

    fn send_where(&self, who: PrincipalId, frame: &Frame, pick: impl Fn(u64) -> bool) -> usize {
        let mut sent = 0;
        for conn in self.conns(who).into_iter().filter(|c| pick(c.id)) {
            match conn.queue.try_send(Outbound::Text(frame.clone())) {
                Ok(()) => sent += 1,
                Err(TrySendError::Full) => {
                    tracing::warn!(?who, conn = conn.id, "socket queue full: closing it");
                    conn.close.notify_one();
                }
                Err(TrySendError::Closed) => {}
            }
        }
        sent
    }

    /// Asks every socket to close (the server is stopping): browsers reconnect, to this
    /// server when it is back or to another instance.
    pub fn close_all(&self) {
        self.shutting_down.store(true, Ordering::Relaxed);
        for shard in &self.shards {
            let conns: Vec<Conn> = shard
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .values()
                .flatten()
                .cloned()
                .collect();
            for conn in conns {
                conn.close.notify_one();
            }
        }
    }

    pub fn shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::Relaxed)
    }

    /// Closes the user's sockets opened with a session older than `token_version` (after
    /// "sign out everywhere" or a password change), or all of them when `None` (account
    /// deleted).
    pub fn end_sessions(&self, user: i64, token_version: Option<i64>) {
        for conn in self.conns(PrincipalId::User(user)) {
            if token_version.is_none_or(|v| conn.token_version < v) {
                conn.close.notify_one();
            }
        }
    }
}

impl Delivery for Hub {
    fn send_frame(&self, to: PrincipalId, frame: &Frame) -> usize {
        self.send_where(to, frame, |_| true)
    }

    fn send_to_socket(&self, to: PrincipalId, socket: SocketRef, message: &ServerMsg) -> bool {
        self.here(socket) && self.send_where(to, &encode(message), |id| id == socket.conn) > 0
    }

    fn send_to_others(&self, to: PrincipalId, except: SocketRef, message: &ServerMsg) {
        let except = self.here(except).then_some(except.conn);
        self.send_where(to, &encode(message), |id| Some(id) != except);
    }

    fn end_sessions(&self, user: i64, token_version: Option<i64>) {
        Hub::end_sessions(self, user, token_version);
    }

    fn end_session(&self, user: i64, session_id: &str) {
        let session = session_number(session_id);
        for conn in self.conns(PrincipalId::User(user)) {
            if session != 0 && conn.session == session {
                conn.close.notify_one();
            }
        }
    }
}

impl Presence for Hub {
    fn online<'a>(
        &'a self,
        users: &'a [i64],
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Vec<bool>> + Send + 'a>> {
        let online = users
            .iter()
            .map(|&user| self.holds(PrincipalId::User(user)))
            .collect();
        Box::pin(std::future::ready(online))
    }

    /// One instance: the first socket here is the first anywhere.
    fn local_change(&self, _who: PrincipalId, _here: bool) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::auth::GuestId;

    const ANN: PrincipalId = PrincipalId::User(1);
    const BOB: PrincipalId = PrincipalId::User(2);

    #[tokio::test]
    async fn every_tab_gets_events_and_presence_follows_the_last_tab() {
        let hub = Hub::default();
        let mut a = hub.register(ANN, 0, "");
        let mut b = hub.register(ANN, 0, "");
        assert!(a.first && !b.first);
        assert_eq!(hub.online(&[1, 2]).await, [true, false]);

        assert_eq!(hub.send_to(ANN, &ServerMsg::Pong), 2);
        let pong = Outbound::Text(Frame {
            text: r#"{"type":"pong"}"#.into(),
            kind: "pong",
        });
        assert_eq!(a.queue.recv().await, Some(pong.clone()));
        assert_eq!(b.queue.recv().await, Some(pong));

        assert!(!hub.unregister(ANN, a.socket));
        assert!(hub.is_online(1).await);
        assert!(hub.unregister(ANN, b.socket));
        assert!(!hub.is_online(1).await);
        assert_eq!(hub.socket_count(), 0);
    }

    #[tokio::test]
    async fn guests_have_sockets_but_no_presence_and_addresses_name_the_instance() {
        let hub = Hub::default();
        let guest = PrincipalId::Guest(GuestId(42));
        let mut tab = hub.register(guest, 0, "");
        assert!(tab.first);
        assert_eq!(tab.socket.instance, hub.instance());
        assert!(hub.send_to_socket(guest, tab.socket, &ServerMsg::Pong));
        assert!(tab.queue.recv().await.is_some());
        // The same connection number on another instance is not this socket.
        let elsewhere = SocketRef {
            instance: InstanceId(hub.instance().0 ^ 1),
            conn: tab.socket.conn,
        };
        assert!(!hub.send_to_socket(guest, elsewhere, &ServerMsg::Pong));
        assert!(!hub.is_online(42).await);
        assert!(hub.unregister(guest, tab.socket));
    }

    #[tokio::test]
    async fn a_full_queue_closes_that_socket_only() {
        let hub = Hub::default();
        let slow = hub.register(ANN, 0, "");
        let mut fast = hub.register(BOB, 0, "");
        for _ in 0..QUEUE_DEPTH {
            hub.send_to_users(&[1, 2], &ServerMsg::Pong);
            fast.queue.recv().await.unwrap();
        }
        // The slow socket's queue is full now: one more frame asks it to close...
        hub.send_to_users(&[1, 2], &ServerMsg::Pong);
        tokio::time::timeout(std::time::Duration::from_secs(1), slow.close.notified())
            .await
            .expect("the slow socket is told to close");
        // ...and the other one still gets everything.
        assert!(fast.queue.recv().await.is_some());
    }

    #[tokio::test]
    async fn ending_sessions_closes_only_older_sockets() {
        let hub = Hub::default();
        let old = hub.register(ANN, 0, "");
        let new = hub.register(ANN, 1, "");
        hub.end_sessions(1, Some(1));
        tokio::time::timeout(std::time::Duration::from_secs(1), old.close.notified())
            .await
            .expect("the old session's socket is closed");
        let still_open =
            tokio::time::timeout(std::time::Duration::from_millis(50), new.close.notified()).await;
        assert!(still_open.is_err());
    }
}
