//! Time on one clock for the whole pipeline.
//!
//! Every frame and audio sample is stamped with a [`Timestamp`]: microseconds since the Unix epoch,
//! read from a clock that never goes backwards. [`MonotonicClock`] reads the wall clock once at
//! start and then advances with `Instant`, so a wall-clock step (NTP, DST, a user changing the
//! date) cannot reorder or overlap captures, while stored times still read as calendar times.
//! Tests use [`ManualClock`] to drive time explicitly (mini-redis style testable time).

use std::ops::{Add, Sub};
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// Microseconds since the Unix epoch on the pipeline's monotonic clock.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Timestamp(pub i64);

impl Timestamp {
    pub const fn from_micros(us: i64) -> Self {
        Self(us)
    }

    pub fn from_secs_f64(s: f64) -> Self {
        Self((s * 1e6).round() as i64)
    }

    pub const fn from_millis(ms: i64) -> Self {
        Self(ms * 1000)
    }

    pub const fn micros(self) -> i64 {
        self.0
    }

    pub const fn millis(self) -> i64 {
        self.0.div_euclid(1000)
    }

    pub fn secs_f64(self) -> f64 {
        self.0 as f64 / 1e6
    }

    /// Signed distance `self - earlier` in seconds.
    pub fn secs_since(self, earlier: Timestamp) -> f64 {
        (self.0 - earlier.0) as f64 / 1e6
    }
}

impl Add<Duration> for Timestamp {
    type Output = Timestamp;
    fn add(self, d: Duration) -> Timestamp {
        Timestamp(self.0 + d.as_micros() as i64)
    }
}

impl Sub<Duration> for Timestamp {
    type Output = Timestamp;
    fn sub(self, d: Duration) -> Timestamp {
        Timestamp(self.0 - d.as_micros() as i64)
    }
}

/// A source of [`Timestamp`]s.
pub trait Clock: Send + Sync {
    fn now(&self) -> Timestamp;
}

/// Wall time read once, then advanced by the monotonic `Instant`.
#[derive(Clone, Debug)]
pub struct MonotonicClock {
    anchor_instant: Instant,
    anchor_wall_us: i64,
}

impl MonotonicClock {
    pub fn new() -> Self {
        let wall = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        Self {
            anchor_instant: Instant::now(),
            anchor_wall_us: wall.as_micros() as i64,
        }
    }

    /// The timestamp at which a given `Instant` happened (or will happen).
    pub fn at(&self, instant: Instant) -> Timestamp {
        let us = match instant.checked_duration_since(self.anchor_instant) {
            Some(after) => after.as_micros() as i64,
            None => -(self.anchor_instant.duration_since(instant).as_micros() as i64),
        };
        Timestamp(self.anchor_wall_us + us)
    }

    /// The `Instant` at which a timestamp falls, for sleeping until it.
    pub fn instant_of(&self, t: Timestamp) -> Instant {
        let offset = t.0 - self.anchor_wall_us;
        if offset >= 0 {
            self.anchor_instant + Duration::from_micros(offset as u64)
        } else {
            self.anchor_instant
                .checked_sub(Duration::from_micros(offset.unsigned_abs()))
                .unwrap_or(self.anchor_instant)
        }
    }
}

impl Default for MonotonicClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for MonotonicClock {
    fn now(&self) -> Timestamp {
        self.at(Instant::now())
    }
}

/// A clock that moves only when told to; for tests.
#[derive(Debug, Default)]
pub struct ManualClock(AtomicI64);

impl ManualClock {
    pub fn new(start: Timestamp) -> Self {
        Self(AtomicI64::new(start.0))
    }

    pub fn advance(&self, d: Duration) {
        self.0.fetch_add(d.as_micros() as i64, Ordering::SeqCst);
    }

    pub fn set(&self, t: Timestamp) {
        self.0.store(t.0, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        Timestamp(self.0.load(Ordering::SeqCst))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn monotonic_clock_round_trips_instants() {
        let clock = MonotonicClock::new();
        let later = Instant::now() + Duration::from_millis(1500);
        let t = clock.at(later);
        let back = clock.instant_of(t);
        let diff = if back > later {
            back - later
        } else {
            later - back
        };
        assert!(diff < Duration::from_micros(2));
        assert!(clock.now() <= t);
    }

    #[test]
    fn manual_clock_moves_only_when_told() {
        let clock = ManualClock::new(Timestamp::from_millis(1000));
        assert_eq!(clock.now(), Timestamp::from_millis(1000));
        clock.advance(Duration::from_millis(250));
        assert_eq!(clock.now().millis(), 1250);
    }

    #[test]
    fn millis_round_towards_negative_infinity() {
        assert_eq!(Timestamp(-1).millis(), -1);
        assert_eq!(Timestamp(1999).millis(), 1);
    }
}
