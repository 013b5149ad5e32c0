//! Bounded queues between real-time producers (source threads) and actors.
//!
//! A camera or a sound card cannot be told to wait, so a slow consumer must lose data rather
//! than grow memory without bound. [`DropOldest`] keeps the newest `capacity` items: when it is
//! full, the oldest item is removed and counted, so the consumer always works on the freshest
//! data and the loss is visible in `/api/status`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crossbeam_channel::{Receiver, Sender, TryRecvError, TrySendError};

/// The producer's end.
#[derive(Clone, Debug)]
pub struct DropOldest<T> {
    tx: Sender<T>,
    /// A receiver kept by the producer only to evict the oldest item when the queue is full.
    evict: Receiver<T>,
    dropped: Arc<AtomicU64>,
}

/// The consumer's end.
#[derive(Clone, Debug)]
pub struct Drain<T> {
    rx: Receiver<T>,
}

/// A queue of at most `capacity` (≥ 1) items; `dropped` counts evictions.
pub fn drop_oldest<T>(capacity: usize, dropped: Arc<AtomicU64>) -> (DropOldest<T>, Drain<T>) {
    let (tx, rx) = crossbeam_channel::bounded(capacity.max(1));
    (
        DropOldest {
            tx,
            evict: rx.clone(),
            dropped,
        },
        Drain { rx },
    )
}

impl<T> DropOldest<T> {
    /// Pushes without ever blocking; evicts the oldest item when full. (The producer's own
    /// evicting receiver keeps the channel open, so a push never fails: a consumer that has gone
    /// away is noticed by the source's stop signal, not here.)
    pub fn push(&self, mut item: T) {
        loop {
            match self.tx.try_send(item) {
                Ok(()) => return,
                Err(TrySendError::Full(back)) => {
                    item = back;
                    // The consumer may have emptied the queue meanwhile; then nothing is lost.
                    if self.evict.try_recv().is_ok() {
                        self.dropped.fetch_add(1, Ordering::Relaxed);
                    }
                }
                Err(TrySendError::Disconnected(_)) => return,
            }
        }
    }

    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

impl<T> Drain<T> {
    /// Everything queued right now, oldest first.
    pub fn drain(&self) -> Vec<T> {
        let mut out = Vec::new();
        loop {
            match self.rx.try_recv() {
                Ok(item) => out.push(item),
                Err(TryRecvError::Empty) | Err(TryRecvError::Disconnected) => return out,
            }
        }
    }

    pub fn len(&self) -> usize {
        self.rx.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rx.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_newest_and_counts_the_dropped() {
        let (tx, rx) = drop_oldest(3, Arc::default());
        for i in 0..10 {
            tx.push(i);
        }
        assert_eq!(rx.drain(), vec![7, 8, 9]);
        assert_eq!(tx.dropped(), 7);
        tx.push(10);
        assert_eq!(rx.drain(), vec![10]);
        assert_eq!(tx.dropped(), 7);
    }

    #[test]
    fn a_consumer_keeping_up_loses_nothing() {
        let (tx, rx) = drop_oldest(2, Arc::default());
        let producer = std::thread::spawn(move || {
            for i in 0..10_000 {
                tx.push(i);
                if i % 2 == 1 {
                    std::thread::sleep(std::time::Duration::from_micros(50));
                }
            }
            tx.dropped()
        });
        let mut got = Vec::new();
        while got.len() < 10_000 {
            let batch = rx.drain();
            if batch.is_empty() && producer.is_finished() {
                break;
            }
            got.extend(batch);
        }
        let dropped = producer.join().unwrap();
        got.extend(rx.drain());
        // Whatever arrived is in order, and arrivals plus drops account for every item.
        assert!(got.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(got.len() as u64 + dropped, 10_000);
    }

    #[test]
    fn push_never_blocks_once_the_consumer_is_gone() {
        let (tx, rx) = drop_oldest::<u8>(1, Arc::default());
        drop(rx);
        tx.push(1);
        tx.push(2);
        assert_eq!(tx.dropped(), 1);
    }
}
