//! The durable outbox: deliveries still to make, in order per destination, and what became of
//! the others (delivered, or dead-lettered with the reason).
//!
//! Invariants:
//! - An entry is created in the same transaction as the result it carries, so a stored result
//!   is never without its delivery and a delivery never without its result.
//! - Keys are `destination \0 sequence`: a prefix scan yields one destination's queue in the
//!   order its results were stored; the head blocks the ones behind it (in-order delivery).
//! - An entry leaves the outbox only in the transaction that records its fate, and a delivered
//!   one is flushed at once, so a crash can at worst repeat the last delivery (same
//!   `Idempotency-Key`), never lose one.

use serde::{Deserialize, Serialize};
use sled::transaction::{ConflictableTransactionError, TransactionalTree};
use sled::Transactional;

use super::{decode, ms_key, read_u64, Store, StoreError, META_DEAD_TOTAL, META_DELIVERED_TOTAL};

/// One delivery to make.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OutboxEntry {
    /// Store-wide sequence number: the order results were stored in.
    pub seq: u64,
    /// `external` or `webhook:<source>`: deliveries to one destination go in order.
    pub destination: String,
    /// Where it goes (for the external service the dispatcher uses the configured URL).
    pub url: String,
    /// Sent as the `Idempotency-Key` header; the same for every attempt of this result.
    pub idempotency_key: String,
    /// Unix ms the result was stored.
    pub created_ms: i64,
    /// The JSON body.
    pub payload: serde_json::Value,
    pub attempts: u32,
    /// Unix ms before which the next attempt must not start.
    pub next_attempt_ms: i64,
    pub last_error: Option<String>,
}

/// A delivery that left the outbox, with its fate.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DoneEntry {
    pub entry: OutboxEntry,
    /// Unix ms it was delivered or given up.
    pub at_ms: i64,
    /// HTTP status of the last answer, if there was one.
    pub status: Option<u16>,
    /// Why it was dead-lettered.
    pub reason: Option<String>,
}

/// Counts for `/api/outbox`.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct OutboxSummary {
    pub pending: u64,
    pub delivered: u64,
    pub dead_lettered: u64,
    /// Unix ms of the oldest pending result.
    pub oldest_pending_ms: Option<i64>,
    pub destinations: Vec<DestinationSummary>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct DestinationSummary {
    pub destination: String,
    pub pending: u64,
    pub oldest_pending_ms: Option<i64>,
    pub attempts: u32,
    pub next_attempt_ms: Option<i64>,
    pub last_error: Option<String>,
}

/// A delivery to queue with a result.
pub(crate) struct NewDelivery<'a> {
    pub destination: &'a str,
    pub url: &'a str,
    pub idempotency_key: &'a str,
    pub payload: &'a serde_json::Value,
    pub created_ms: i64,
}

fn entry_key(destination: &str, seq: u64) -> Vec<u8> {
    let mut key = Vec::with_capacity(destination.len() + 9);
    key.extend_from_slice(destination.as_bytes());
    key.push(0);
    key.extend_from_slice(&seq.to_be_bytes());
    key
}

fn destination_prefix(destination: &str) -> Vec<u8> {
    let mut key = destination.as_bytes().to_vec();
    key.push(0);
    key
}

fn done_key(at_ms: i64, seq: u64) -> [u8; 16] {
    let mut key = [0u8; 16];
    key[..8].copy_from_slice(&ms_key(at_ms));
    key[8..].copy_from_slice(&seq.to_be_bytes());
    key
}

/// Queues a delivery inside a transaction on the outbox tree.
pub(crate) fn enqueue(
    outbox: &TransactionalTree,
    d: &NewDelivery<'_>,
) -> Result<u64, ConflictableTransactionError<StoreError>> {
    let seq = outbox.generate_id()?;
    let entry = OutboxEntry {
        seq,
        destination: d.destination.to_string(),
        url: d.url.to_string(),
        idempotency_key: d.idempotency_key.to_string(),
        created_ms: d.created_ms,
        payload: d.payload.clone(),
        attempts: 0,
        next_attempt_ms: d.created_ms,
        last_error: None,
    };
    let value = serde_json::to_vec(&entry)
        .map_err(|e| ConflictableTransactionError::Abort(StoreError::from(e)))?;
    outbox.insert(entry_key(d.destination, seq), value)?;
    Ok(seq)
}

impl Store {
    /// The next delivery for `destination`, if any.
    pub fn outbox_head(&self, destination: &str) -> Result<Option<OutboxEntry>, StoreError> {
        for item in self.outbox.scan_prefix(destination_prefix(destination)) {
            let (key, value) = item?;
            match decode::<OutboxEntry>(&key, &value, "outbox entry") {
                Some(entry) => return Ok(Some(entry)),
                None => {
                    // Unreadable: it can never be delivered; dead-letter it so it does not block.
                    tracing::error!(key = ?key, destination, "dead-lettering an unreadable outbox entry");
                    let at = chrono::Utc::now().timestamp_millis();
                    self.dead_letter
                        .insert(done_key(at, self.db.generate_id()?), value.to_vec())?;
                    self.outbox.remove(key)?;
                }
            }
        }
        Ok(None)
    }

    /// Destinations with pending deliveries.
    pub fn outbox_destinations(&self) -> Result<Vec<String>, StoreError> {
        let mut out: Vec<String> = Vec::new();
        for item in self.outbox.iter().keys() {
            let key = item?;
            let Some(end) = key.iter().position(|&b| b == 0) else {
                continue;
            };
            let name = String::from_utf8_lossy(&key[..end]).to_string();
            if out.last() != Some(&name) {
                out.push(name);
            }
        }
        Ok(out)
    }

    /// Records a failed attempt that will be retried at `next_attempt_ms`.
    pub fn outbox_retry_later(
        &self,
        entry: &OutboxEntry,
        error: &str,
        next_attempt_ms: i64,
    ) -> Result<(), StoreError> {
        let mut updated = entry.clone();
        updated.attempts += 1;
        updated.next_attempt_ms = next_attempt_ms;
        updated.last_error = Some(error.to_string());
        // No flush: losing an attempt count in a crash only makes the next retry come sooner.
        self.outbox.insert(
            entry_key(&entry.destination, entry.seq),
            serde_json::to_vec(&updated)?,
        )?;
        Ok(())
    }

    /// Moves an entry out of the outbox with its fate, and waits until that is on disk.
    pub fn outbox_finish(
        &self,
        entry: &OutboxEntry,
        at_ms: i64,
        status: Option<u16>,
        dead_reason: Option<&str>,
    ) -> Result<(), StoreError> {
        let mut final_entry = entry.clone();
        final_entry.attempts += 1;
        let done = DoneEntry {
            entry: final_entry,
            at_ms,
            status,
            reason: dead_reason.map(str::to_string),
        };
        let value = serde_json::to_vec(&done)?;
        let (target, counter) = match dead_reason {
            None => (&self.delivered, META_DELIVERED_TOTAL),
            Some(_) => (&self.dead_letter, META_DEAD_TOTAL),
        };
        let key = entry_key(&entry.destination, entry.seq);
        (&self.outbox, target, &self.meta).transaction(|(outbox, target, meta)| {
            if outbox.remove(key.as_slice())?.is_none() {
                // Already finished (a second dispatcher for the same destination cannot exist,
                // but a replay after restart could find it gone): nothing to count.
                return Ok(());
            }
            target.insert(&done_key(at_ms, entry.seq), value.as_slice())?;
            let total = read_u64(meta.get(counter)?).unwrap_or(0) + 1;
            meta.insert(counter, &total.to_be_bytes())?;
            Ok::<_, ConflictableTransactionError<StoreError>>(())
        })?;
        self.db.flush()?;
        Ok(())
    }

    /// Pending, delivered and dead-lettered counts, per destination too.
    pub fn outbox_summary(&self) -> Result<OutboxSummary, StoreError> {
        let mut summary = OutboxSummary {
            delivered: read_u64(self.meta.get(META_DELIVERED_TOTAL)?).unwrap_or(0),
            dead_lettered: read_u64(self.meta.get(META_DEAD_TOTAL)?).unwrap_or(0),
            ..Default::default()
        };
        for item in self.outbox.iter() {
            let (key, value) = item?;
            let Some(entry) = decode::<OutboxEntry>(&key, &value, "outbox entry") else {
                continue;
            };
            summary.pending += 1;
            summary.oldest_pending_ms = Some(
                summary
                    .oldest_pending_ms
                    .map_or(entry.created_ms, |o| o.min(entry.created_ms)),
            );
            match summary.destinations.last_mut() {
                Some(d) if d.destination == entry.destination => d.pending += 1,
                _ => summary.destinations.push(DestinationSummary {
                    destination: entry.destination.clone(),
                    pending: 1,
                    // The first entry of a destination is its head: its state is the queue's.
                    oldest_pending_ms: Some(entry.created_ms),
                    attempts: entry.attempts,
                    next_attempt_ms: Some(entry.next_attempt_ms),
                    last_error: entry.last_error.clone(),
                }),
            }
        }
        Ok(summary)
    }

    /// The newest `limit` dead-lettered deliveries, newest first.
    pub fn dead_letters(&self, limit: usize) -> Result<Vec<DoneEntry>, StoreError> {
        let mut out = Vec::new();
        for item in self.dead_letter.iter().rev().take(limit) {
            let (key, value) = item?;
            if let Some(done) = decode(&key, &value, "dead letter") {
                out.push(done);
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::classification;
    use super::super::ExternalPolicy;
    use super::*;
    use cav_core::ActivityClass::Busy;

    fn policy(interval_s: i64) -> ExternalPolicy {
        ExternalPolicy {
            url: "http://127.0.0.1:9/in".into(),
            interval_ms: interval_s * 1000,
        }
    }

    #[test]
    fn every_window_is_queued_when_windows_are_as_long_as_the_interval() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let p = policy(300);
        for i in 0..3 {
            let c = classification(1_000 + i * 300, 1_300 + i * 300, Busy);
            let out = store.put_classification(&c, 60_000, Some(&p)).unwrap();
            assert_eq!(out.queued.as_deref(), Some("external"));
        }
        let head = store.outbox_head("external").unwrap().unwrap();
        assert_eq!(head.payload["activity"], "busy");
        assert_eq!(head.payload["window"]["start"], "1970-01-01T00:16:40.000Z");
        assert_eq!(
            head.idempotency_key,
            format!("{}-window-1000000-1300000", store.instance())
        );
        assert_eq!(store.outbox_summary().unwrap().pending, 3);
    }

    #[test]
    fn short_windows_are_queued_once_per_interval() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let p = policy(60);
        let mut queued = Vec::new();
        for i in 0..30 {
            let c = classification(i * 10, i * 10 + 10, Busy);
            if store
                .put_classification(&c, 60_000, Some(&p))
                .unwrap()
                .queued
                .is_some()
            {
                queued.push(i * 10 + 10);
            }
        }
        // Window ends 10, 70, 130, ...: one every 60 s.
        assert_eq!(queued, vec![10, 70, 130, 190, 250]);
    }

    #[test]
    fn entries_leave_in_order_and_are_counted_by_fate() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let p = policy(10);
        for i in 0..3 {
            store
                .put_classification(&classification(i * 10, i * 10 + 10, Busy), 60_000, Some(&p))
                .unwrap();
        }
        let first = store.outbox_head("external").unwrap().unwrap();
        store
            .outbox_retry_later(&first, "connection refused", 5_000)
            .unwrap();
        let again = store.outbox_head("external").unwrap().unwrap();
        assert_eq!(again.seq, first.seq, "a retried head stays the head");
        assert_eq!(again.attempts, 1);
        assert_eq!(again.last_error.as_deref(), Some("connection refused"));
        let summary = store.outbox_summary().unwrap();
        assert_eq!(
            summary.destinations[0].last_error.as_deref(),
            Some("connection refused")
        );
        store.outbox_finish(&again, 6_000, Some(200), None).unwrap();
        let second = store.outbox_head("external").unwrap().unwrap();
        assert!(second.seq > first.seq);
        store
            .outbox_finish(&second, 7_000, Some(404), Some("HTTP 404"))
            .unwrap();
        drop(store);
        let store = Store::open(dir.path()).unwrap();
        let summary = store.outbox_summary().unwrap();
        assert_eq!(
            (summary.pending, summary.delivered, summary.dead_lettered),
            (1, 1, 1)
        );
        assert_eq!(summary.oldest_pending_ms, Some(30_000));
        let dead = store.dead_letters(10).unwrap();
        assert_eq!(dead[0].reason.as_deref(), Some("HTTP 404"));
        assert_eq!(dead[0].entry.seq, second.seq);
        assert_eq!(store.outbox_destinations().unwrap(), vec!["external"]);
    }
}
