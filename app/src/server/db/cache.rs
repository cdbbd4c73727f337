//! Reads reused for a few seconds. Every request with a session cookie, and every socket
//! connecting (thousands at once after a restart), needs the user's current token version and
//! whether its session was ended; a [`ReadCache`] keeps that to one query per key per few
//! seconds. Changes made through this instance drop the entry at once (and a read that began
//! before a change is never cached after it); other instances sharing a database see changes
//! within the time to live. [`Flights`] keeps it to one query when many ask at once (a
//! person's tabs all reconnecting after a restart): the others wait for it.

use std::{
    borrow::Borrow,
    collections::HashMap,
    hash::Hash,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, Mutex,
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

/// Reads in flight, by key: while one caller reads a key, the others that want it wait for
/// that read (and then look in the cache again) instead of reading it too.
#[derive(Debug)]
pub struct Flights<K> {
    reading: Mutex<HashMap<K, Arc<tokio::sync::Notify>>>,
}

impl<K> Default for Flights<K> {
    fn default() -> Self {
        Self {
            reading: Mutex::default(),
        }
    }
}

impl<K: Eq + Hash + Clone> Flights<K> {
    /// `Some` when the caller is to read `key` (until the guard drops, others wait); `None`
    /// once the read that was under way has ended (well or not, or was given up): look again.
    pub async fn join(&self, key: &K) -> Option<Flight<'_, K>> {
        let notify = {
            let mut reading = self.reading.lock().unwrap_or_else(|e| e.into_inner());
            match reading.get(key) {
                Some(notify) => notify.clone(),
                None => {
                    reading.insert(key.clone(), Arc::default());
                    return Some(Flight {
                        flights: self,
                        key: key.clone(),
                    });
                }
            }
        };
        // Made before looking again whether that read is still under way: if it is, its end
        // (`notify_waiters`, which reaches every future made before it) cannot be missed.
        let ended = notify.notified();
        if self.is_reading(key, &notify) {
            ended.await;
        }
        None
    }

    /// Whether `notify` is still that of a read of `key` under way.
    fn is_reading(&self, key: &K, notify: &Arc<tokio::sync::Notify>) -> bool {
        let reading = self.reading.lock().unwrap_or_else(|e| e.into_inner());
        reading.get(key).is_some_and(|n| Arc::ptr_eq(n, notify))
    }
}

/// A read of one key under way; its end (the drop) lets those waiting for it go on.
pub struct Flight<'a, K: Eq + Hash> {
    flights: &'a Flights<K>,
    key: K,
}

impl<K: Eq + Hash> Drop for Flight<'_, K> {
    fn drop(&mut self) {
        let mut reading = self
            .flights
            .reading
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if let Some(notify) = reading.remove(&self.key) {
            notify.notify_waiters();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn many_asking_at_once_make_one_read_and_all_get_its_value() {
        let cache = Arc::new(ReadCache::<i64, String>::default());
        let flights = Arc::new(Flights::<i64>::default());
        let reads = Arc::new(AtomicU64::new(0));
        let askers: Vec<_> = (0..50)
            .map(|_| {
                let (cache, flights, reads) = (cache.clone(), flights.clone(), reads.clone());
                tokio::spawn(async move {
                    loop {
                        if let Some(value) = cache.get(&7) {
                            return value;
                        }
                        let Some(_flight) = flights.join(&7).await else {
                            continue;
                        };
                        let read_after = cache.changes();
                        reads.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        cache.put(7, "seven".to_string(), read_after);
                        return "seven".to_string();
                    }
                })
            })
            .collect();
        for asker in askers {
            assert_eq!(asker.await.unwrap(), "seven");
        }
        assert_eq!(reads.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_read_given_up_lets_the_next_asker_read() {
        let flights = Flights::<i64>::default();
        let first = flights.join(&7).await.expect("the first reads");
        let waiting = flights.join(&7);
        tokio::pin!(waiting);
        // The second waits while the first reads ...
        let waited = tokio::time::timeout(Duration::from_millis(50), waiting.as_mut()).await;
        assert!(waited.is_err(), "went on while the read was under way");
        // ... and goes on when it gives up (dropped, as when its request is cancelled),
        drop(first);
        assert!(waiting.await.is_none());
        // after which the next to ask reads.
        assert!(flights.join(&7).await.is_some());
        // Other keys never wait.
        let _seven = flights.join(&7).await.unwrap();
        assert!(flights.join(&8).await.is_some());
    }
}
