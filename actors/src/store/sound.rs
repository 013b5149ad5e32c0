//! Sound events: stored by onset, with their webhook delivery queued in the same transaction.

use sled::transaction::ConflictableTransactionError;
use sled::Transactional;

use super::activity::{Page, TimeRange};
use super::outbox::{enqueue, NewDelivery};
use super::{decode, ms_key, Store, StoreError};
use crate::delivery::EventWebhookPayload;
use crate::events::SoundEventRecord;

/// Filters of a sound-event listing.
#[derive(Clone, Debug, Default)]
pub struct SoundEventFilter {
    /// Event kind, e.g. `clap`.
    pub label: Option<String>,
    pub source: Option<String>,
}

impl SoundEventFilter {
    fn accepts(&self, e: &SoundEventRecord) -> bool {
        self.label.as_ref().is_none_or(|l| *l == e.kind)
            && self.source.as_ref().is_none_or(|s| *s == e.source)
    }
}

fn event_key(e: &SoundEventRecord) -> Vec<u8> {
    let mut key = ms_key(e.onset_ms).to_vec();
    key.extend_from_slice(e.source.as_bytes());
    key.push(0);
    key.extend_from_slice(e.kind.as_bytes());
    key
}

impl Store {
    /// Stores a sound event and, when `webhook` is given, queues its POST; waits until both are
    /// on disk. Returns the destination queued, if any.
    pub fn put_sound_event(
        &self,
        e: &SoundEventRecord,
        webhook: Option<&str>,
    ) -> Result<Option<String>, StoreError> {
        let key = event_key(e);
        let value = serde_json::to_vec(e)?;
        let payload = serde_json::to_value(EventWebhookPayload::from(e))?;
        let destination = format!("webhook:{}", e.source);
        let idempotency_key = format!(
            "{}-event-{}-{}-{}",
            self.instance, e.source, e.kind, e.onset_ms
        );
        let queued = (&self.sound_events, &self.outbox).transaction(|(events, outbox)| {
            if events.insert(key.as_slice(), value.as_slice())?.is_some() {
                return Ok(None); // A replay of a stored event: already queued.
            }
            match webhook {
                Some(url) => {
                    enqueue(
                        outbox,
                        &NewDelivery {
                            destination: &destination,
                            url,
                            idempotency_key: &idempotency_key,
                            payload: &payload,
                            created_ms: e.onset_ms,
                        },
                    )?;
                    Ok(Some(destination.clone()))
                }
                None => Ok::<_, ConflictableTransactionError<StoreError>>(None),
            }
        })?;
        self.db.flush()?;
        Ok(queued)
    }

    /// Sound events with an onset in `range`, newest first.
    pub fn sound_events(
        &self,
        range: TimeRange,
        filter: &SoundEventFilter,
        limit: usize,
        offset: usize,
    ) -> Result<Page<SoundEventRecord>, StoreError> {
        let mut items = Vec::new();
        let mut total = 0u64;
        for item in self
            .sound_events
            .range(ms_key(range.start_ms)..ms_key(range.end_ms))
            .rev()
        {
            let (key, value) = item?;
            let Some(e) = decode::<SoundEventRecord>(&key, &value, "sound event") else {
                continue;
            };
            if !filter.accepts(&e) {
                continue;
            }
            total += 1;
            if total as usize > offset && items.len() < limit {
                items.push(e);
            }
        }
        Ok(Page { total, items })
    }

    /// The newest `limit` sound events, newest first.
    pub fn latest_sound_events(&self, limit: usize) -> Result<Vec<SoundEventRecord>, StoreError> {
        Ok(self
            .sound_events(TimeRange::all(), &SoundEventFilter::default(), limit, 0)?
            .items)
    }

    pub fn sound_event_count(&self) -> usize {
        self.sound_events.len()
    }

    /// Sound events with an onset in `range`, oldest first (for exports).
    pub fn iter_sound_events(
        &self,
        range: TimeRange,
    ) -> impl Iterator<Item = Result<SoundEventRecord, StoreError>> {
        self.sound_events
            .range(ms_key(range.start_ms)..ms_key(range.end_ms))
            .filter_map(|item| match item {
                Ok((k, v)) => decode(&k, &v, "sound event").map(Ok),
                Err(e) => Some(Err(e.into())),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(ms: i64, source: &str, kind: &str) -> SoundEventRecord {
        SoundEventRecord {
            source: source.into(),
            kind: kind.into(),
            onset_ms: ms,
            end_ms: None,
            score: 0.5,
        }
    }

    #[test]
    fn filters_and_pages_newest_first() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        for (ms, source, kind) in [
            (3_000, "mic", "clap"),
            (1_000, "mic", "clap"),
            (3_000, "mic", "speech"),
            (2_000, "vban", "clap"),
            (4_000, "mic", "applause"),
        ] {
            store
                .put_sound_event(&event(ms, source, kind), None)
                .unwrap();
        }
        let got: Vec<(i64, String)> = store
            .latest_sound_events(10)
            .unwrap()
            .into_iter()
            .map(|e| (e.onset_ms, e.kind))
            .collect();
        assert_eq!(
            got,
            vec![
                (4_000, "applause".to_string()),
                (3_000, "speech".to_string()),
                (3_000, "clap".to_string()),
                (2_000, "clap".to_string()),
                (1_000, "clap".to_string())
            ]
        );
        let claps_mic = SoundEventFilter {
            label: Some("clap".into()),
            source: Some("mic".into()),
        };
        let page = store
            .sound_events(TimeRange::all(), &claps_mic, 1, 1)
            .unwrap();
        assert_eq!(page.total, 2);
        assert_eq!(page.items[0].onset_ms, 1_000);
        let range = store
            .sound_events(
                TimeRange::new(2_000, 3_001),
                &SoundEventFilter::default(),
                10,
                0,
            )
            .unwrap();
        assert_eq!(range.total, 3);
    }

    #[test]
    fn a_webhook_is_queued_with_its_event_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let e = event(5_000, "mic", "clap");
        let q = store.put_sound_event(&e, Some("http://h/x")).unwrap();
        assert_eq!(q.as_deref(), Some("webhook:mic"));
        // The same event again (a replay) is neither stored twice nor queued twice.
        assert_eq!(store.put_sound_event(&e, Some("http://h/x")).unwrap(), None);
        let head = store.outbox_head("webhook:mic").unwrap().unwrap();
        assert_eq!(head.url, "http://h/x");
        assert_eq!(head.payload["event"], "clap");
        assert_eq!(head.payload["onset_ms"], 5_000);
        assert_eq!(store.outbox_summary().unwrap().pending, 1);
        assert_eq!(store.sound_event_count(), 1);
    }
}
