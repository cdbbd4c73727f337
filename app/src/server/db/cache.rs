//! Reads reused for a few seconds. Every request with a session cookie, and every socket
//! connecting (thousands at once after a restart), needs the user's current token version and
//! whether its session was ended; a [`ReadCache`] keeps that to one query per key per few
//! seconds. Changes made through this instance drop the entry at once (and a read that began
//! before a change is never cached after it); other instances sharing a database see changes
//! within the time to live.

use std::{
    borrow::Borrow,
    collections::HashMap,
    hash::Hash,
    sync::{
        atomic::{AtomicU64, Ordering},
        Mutex,
    },
    time::{Duration, Instant},
};

/// How long a read is reused.
pub const TTL: Duration = Duration::from_secs(5);
/// The most entries kept; past it, expired ones go (and if none has, all).
const MAX_ENTRIES: usize = 100_000;

#[derive(Debug)]
pub struct ReadCache<K, V> {
    entries: Mutex<HashMap<K, (V, Instant)>>,
    /// Bumped by every change: a value read before a change is not cached after it.
    changes: AtomicU64,
}

impl<K, V> Default for ReadCache<K, V> {
    fn default() -> Self {
        Self {
            entries: Mutex::default(),
            changes: AtomicU64::new(0),
        }
    }
}

impl<K: Eq + Hash, V: Clone> ReadCache<K, V> {
    /// Take this before reading, and give it to [`put`](Self::put) after.
    pub fn changes(&self) -> u64 {
        self.changes.load(Ordering::SeqCst)
    }

    pub fn get<Q>(&self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.read(key, V::clone)
    }

    /// What `read` takes from the value under `key`, without copying the rest of it.
    pub fn read<Q, T>(&self, key: &Q, read: impl FnOnce(&V) -> T) -> Option<T>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries
            .get(key)
            .filter(|(_, at)| at.elapsed() < TTL)
            .map(|(value, _)| read(value))
    }

    /// Keeps a value read after `read_after` (from [`changes`](Self::changes)), unless
    /// something changed since.
    pub fn put(&self, key: K, value: V, read_after: u64) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if self.changes() != read_after {
            return;
        }
        if entries.len() >= MAX_ENTRIES {
            entries.retain(|_, (_, at)| at.elapsed() < TTL);
            if entries.len() >= MAX_ENTRIES {
                entries.clear();
            }
        }
        entries.insert(key, (value, Instant::now()));
    }

    /// Drops `key`, and any read of it under way, after a change.
    pub fn forget(&self, key: &K) {
        self.changes.fetch_add(1, Ordering::SeqCst);
        self.entries
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(key);
    }
}
