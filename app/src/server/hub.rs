//! Who is connected on this instance, and the way to reach them: every open socket of every
//! user, keyed by user id (one user, many tabs). Sending never waits: each socket has a
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
use tokio::sync::{mpsc, Notify};

use crate::protocol::ServerMsg;

/// Frames waiting for one socket's writer. Enough for bursts; a client this far behind is
/// not reading.
pub const QUEUE_DEPTH: usize = 256;

const SHARDS: usize = 32;

/// What a socket's writer is asked to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outbound {
    /// A serialised `ServerMsg` (serialised once, shared by every recipient).
    Text(Utf8Bytes),
    /// A close frame; the writer stops after it.
    Close(u16, &'static str),
}

/// A registered socket's handles.
#[derive(Clone)]
struct Conn {
    id: u64,
    token_version: i64,
    queue: mpsc::Sender<Outbound>,
    close: Arc<Notify>,
}

/// What a socket gets when it joins the hub.
pub struct Registration {
    pub conn_id: u64,
    pub queue: mpsc::Receiver<Outbound>,
    /// Notified when the hub wants this socket closed (too slow, or its session ended).
    pub close: Arc<Notify>,
    /// Whether this is the user's first socket on this instance (they just came online).
    pub first: bool,
    /// A sender for the socket's own replies.
    pub reply: mpsc::Sender<Outbound>,
}

#[derive(Default)]
pub struct Hub {
    shards: [Mutex<HashMap<i64, Vec<Conn>>>; SHARDS],
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
pub fn encode(message: &ServerMsg) -> Utf8Bytes {
    match serde_json::to_string(message) {
        Ok(text) => text.into(),
        Err(error) => {
            // Plain data with string keys cannot fail to serialise; keep going regardless.
            tracing::error!(%error, "serialising a server message failed");
            Utf8Bytes::from_static(r#"{"type":"pong"}"#)
        }
    }
}

impl Hub {
    fn shard(&self, user: i64) -> &Mutex<HashMap<i64, Vec<Conn>>> {
        &self.shards[user.rem_euclid(SHARDS as i64) as usize]
    }

    pub fn register(&self, user: i64, token_version: i64) -> Registration {
        let (queue, rx) = mpsc::channel(QUEUE_DEPTH);
        let close = Arc::new(Notify::new());
        let conn = Conn {
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            token_version,
            queue: queue.clone(),
            close: close.clone(),
        };
        let conn_id = conn.id;
        let first = {
            let mut shard = self.shard(user).lock().unwrap_or_else(|e| e.into_inner());
            let conns = shard.entry(user).or_default();
            conns.push(conn);
            conns.len() == 1
        };
        self.sockets.fetch_add(1, Ordering::Relaxed);
        Registration {
            conn_id,
            queue: rx,
            close,
            first,
            reply: queue,
        }
    }

    /// Removes a socket; returns whether it was the user's last one here (they went offline).
    pub fn unregister(&self, user: i64, conn_id: u64) -> bool {
        let mut shard = self.shard(user).lock().unwrap_or_else(|e| e.into_inner());
        let Some(conns) = shard.get_mut(&user) else {
            return false;
        };
        let before = conns.len();
        conns.retain(|c| c.id != conn_id);
        if conns.len() < before {
            self.sockets.fetch_sub(1, Ordering::Relaxed);
        }
        if conns.is_empty() {
            shard.remove(&user);
            true
        } else {
            false
        }
    }

    pub fn is_online(&self, user: i64) -> bool {
        self.shard(user)
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains_key(&user)
    }

    pub fn socket_count(&self) -> usize {
        self.sockets.load(Ordering::Relaxed)
    }

    fn conns(&self, user: i64) -> Vec<Conn> {
        self.shard(user)
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&user)
            .cloned()
            .unwrap_or_default()
    }

    /// Queues a frame for every socket of `user`. Returns how many sockets got it.
    pub fn send_frame(&self, user: i64, frame: &Utf8Bytes) -> usize {
        self.send_where(user, frame, |_| true)
    }

    /// Queues a message for one socket of `user`; whether that socket is still there.
    pub fn send_to_conn(&self, user: i64, conn_id: u64, message: &ServerMsg) -> bool {
        self.send_where(user, &encode(message), |id| id == conn_id) > 0
    }

    /// Queues a message for every socket of `user` but one.
    pub fn send_to_others(&self, user: i64, except: u64, message: &ServerMsg) {
        self.send_where(user, &encode(message), |id| id != except);
    }

    fn send_where(&self, user: i64, frame: &Utf8Bytes, pick: impl Fn(u64) -> bool) -> usize {
        let mut sent = 0;
        for conn in self.conns(user).into_iter().filter(|c| pick(c.id)) {
            match conn.queue.try_send(Outbound::Text(frame.clone())) {
                Ok(()) => sent += 1,
                Err(mpsc::error::TrySendError::Full(_)) => {
                    tracing::warn!(user, conn = conn.id, "socket queue full: closing it");
                    conn.close.notify_one();
                }
                Err(mpsc::error::TrySendError::Closed(_)) => {}
            }
        }
        sent
    }

    pub fn send_to_user(&self, user: i64, message: &ServerMsg) -> usize {
        self.send_frame(user, &encode(message))
    }

    /// Serialises once and queues for every socket of every listed user.
    pub fn send_to_users(&self, users: &[i64], message: &ServerMsg) {
        let frame = encode(message);
        for &user in users {
            self.send_frame(user, &frame);
        }
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
        for conn in self.conns(user) {
            if token_version.is_none_or(|v| conn.token_version < v) {
                conn.close.notify_one();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn every_tab_gets_events_and_presence_follows_the_last_tab() {
        let hub = Hub::default();
        let mut a = hub.register(1, 0);
        let mut b = hub.register(1, 0);
        assert!(a.first && !b.first);
        assert!(hub.is_online(1) && !hub.is_online(2));

        assert_eq!(hub.send_to_user(1, &ServerMsg::Pong), 2);
        let pong = Outbound::Text(r#"{"type":"pong"}"#.into());
        assert_eq!(a.queue.recv().await, Some(pong.clone()));
        assert_eq!(b.queue.recv().await, Some(pong));

        assert!(!hub.unregister(1, a.conn_id));
        assert!(hub.is_online(1));
        assert!(hub.unregister(1, b.conn_id));
        assert!(!hub.is_online(1));
        assert_eq!(hub.socket_count(), 0);
    }

    #[tokio::test]
    async fn a_full_queue_closes_that_socket_only() {
        let hub = Hub::default();
        let slow = hub.register(1, 0);
        let mut fast = hub.register(2, 0);
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
        let old = hub.register(1, 0);
        let new = hub.register(1, 1);
        hub.end_sessions(1, Some(1));
        tokio::time::timeout(std::time::Duration::from_secs(1), old.close.notified())
            .await
            .expect("the old session's socket is closed");
        let still_open =
            tokio::time::timeout(std::time::Duration::from_millis(50), new.close.notified()).await;
        assert!(still_open.is_err());
    }
}
