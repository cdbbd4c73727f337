//! A socket's outgoing queue: bounded, sending never waits, and memory is held only while
//! frames wait. tokio's bounded channel allocates a block of 32 slots per channel up front
//! (1.5 KiB of an idle socket's ~8); here an idle socket's queue is an empty `VecDeque`, which
//! allocates nothing, and a queue that drained after a burst gives its buffer back.

use std::{
    collections::VecDeque,
    sync::{
        atomic::{AtomicBool, AtomicUsize, Ordering},
        Arc, Mutex,
    },
};

use tokio::sync::Notify;

/// Why a frame was not queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrySendError {
    /// The reader is this far behind: it is not reading.
    Full,
    /// The receiving end is gone.
    Closed,
}

struct Shared<T> {
    items: Mutex<VecDeque<T>>,
    capacity: usize,
    ready: Notify,
    senders: AtomicUsize,
    receiver_gone: AtomicBool,
}

/// The sending end; clones share the queue.
pub struct Sender<T> {
    shared: Arc<Shared<T>>,
}

/// The receiving end.
pub struct Receiver<T> {
    shared: Arc<Shared<T>>,
}

/// A queue of at most `capacity` items.
pub fn queue<T>(capacity: usize) -> (Sender<T>, Receiver<T>) {
    let shared = Arc::new(Shared {
        items: Mutex::new(VecDeque::new()),
        capacity,
        ready: Notify::new(),
        senders: AtomicUsize::new(1),
        receiver_gone: AtomicBool::new(false),
    });
    (
        Sender {
            shared: shared.clone(),
        },
        Receiver { shared },
    )
}

impl<T> Sender<T> {
    pub fn try_send(&self, item: T) -> Result<(), TrySendError> {
        if self.shared.receiver_gone.load(Ordering::Acquire) {
            return Err(TrySendError::Closed);
        }
        {
            let mut items = self.shared.items.lock().unwrap_or_else(|e| e.into_inner());
            if items.len() >= self.shared.capacity {
                return Err(TrySendError::Full);
            }
            items.push_back(item);
        }
        self.shared.ready.notify_one();
        Ok(())
    }
}

impl<T> Clone for Sender<T> {
    fn clone(&self) -> Self {
        self.shared.senders.fetch_add(1, Ordering::Relaxed);
        Self {
            shared: self.shared.clone(),
        }
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        if self.shared.senders.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.shared.ready.notify_one();
        }
    }
}

impl<T> std::fmt::Debug for Sender<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sender").finish_non_exhaustive()
    }
}

impl<T> Receiver<T> {
    /// The next item; `None` once every sender is gone and the queue is empty.
    pub async fn recv(&mut self) -> Option<T> {
        loop {
            {
                let mut items = self.shared.items.lock().unwrap_or_else(|e| e.into_inner());
                if let Some(item) = items.pop_front() {
                    if items.is_empty() && items.capacity() > 16 {
                        *items = VecDeque::new();
                    }
                    return Some(item);
                }
            }
            if self.shared.senders.load(Ordering::Acquire) == 0 {
                return None;
            }
            // A send between the check above and here leaves a permit: no wake-up is lost.
            self.shared.ready.notified().await;
        }
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        self.shared.receiver_gone.store(true, Ordering::Release);
        // What waits is never read: free it now.
        let mut items = self.shared.items.lock().unwrap_or_else(|e| e.into_inner());
        *items = VecDeque::new();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn bounded_in_order_and_closed_both_ways() {
        let (tx, mut rx) = queue(2);
        assert_eq!(tx.try_send(1), Ok(()));
        let tx2 = tx.clone();
        assert_eq!(tx2.try_send(2), Ok(()));
        assert_eq!(tx.try_send(3), Err(TrySendError::Full));
        assert_eq!(rx.recv().await, Some(1));
        assert_eq!(rx.recv().await, Some(2));
        // A receiver waiting is woken by a send from another task.
        let waiting = tokio::spawn(async move { rx.recv().await.map(|n| (n, rx)) });
        tokio::task::yield_now().await;
        tx.try_send(4).unwrap();
        let (four, mut rx) = waiting.await.unwrap().unwrap();
        assert_eq!(four, 4);
        drop((tx, tx2));
        assert_eq!(rx.recv().await, None, "every sender gone");

        let (tx, rx) = queue::<u8>(4);
        drop(rx);
        assert_eq!(tx.try_send(1), Err(TrySendError::Closed));
    }

    #[tokio::test]
    async fn a_drained_queue_gives_its_buffer_back() {
        let (tx, mut rx) = queue(1000);
        for n in 0..500 {
            tx.try_send(n).unwrap();
        }
        for _ in 0..500 {
            rx.recv().await;
        }
        assert_eq!(tx.shared.items.lock().unwrap().capacity(), 0);
    }
}
