//! Where a stack's time comes from: the system's monotonic clock, or a virtual clock a test
//! moves by hand.
//!
//! The engine never reads a clock (DESIGN.md "stack: the engine and its driver"): the driver and
//! the `Stack` handle read one [`Clock`] and pass `now` to every engine call, as quinn's driver
//! reads `Runtime::now`. A [`VirtualClock`] shared by several stacks and a `VirtualSwitch` makes
//! a whole LAN run on simulated time, deterministically.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A source of monotonic time for a stack.
pub trait Clock: Send + Sync + fmt::Debug {
    /// The current instant. Never goes backwards.
    fn now(&self) -> Instant;

    /// Whether time moves by itself (the system clock) or only when a test moves it. A driver
    /// on a virtual clock has no owner thread: the test steps it.
    fn is_virtual(&self) -> bool {
        false
    }
}

/// The system's monotonic clock ([`Instant::now`]).
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Instant {
        Instant::now()
    }
}

/// A clock that moves only when told to; clones share one time.
///
/// It starts at an arbitrary instant ([`VirtualClock::origin`]) and counts nanoseconds from
/// there, so everything derived from `now - origin` (pcap stamps, logs) is the same in every run.
///
/// ```
/// use std::time::Duration;
/// use ws2_stack::{Clock, VirtualClock};
///
/// let clock = VirtualClock::new();
/// let t0 = clock.now();
/// clock.advance(Duration::from_millis(5));
/// assert_eq!(clock.now() - t0, Duration::from_millis(5));
/// assert_eq!(clock.elapsed(), Duration::from_millis(5));
/// ```
#[derive(Debug, Clone)]
pub struct VirtualClock {
    origin: Instant,
    nanos: Arc<AtomicU64>,
}

impl Default for VirtualClock {
    fn default() -> Self {
        VirtualClock::new()
    }
}

impl VirtualClock {
    /// A clock standing at its origin.
    pub fn new() -> VirtualClock {
        VirtualClock {
            origin: Instant::now(),
            nanos: Arc::default(),
        }
    }

    /// The instant the clock started at.
    pub fn origin(&self) -> Instant {
        self.origin
    }

    /// Virtual time since the origin.
    pub fn elapsed(&self) -> Duration {
        Duration::from_nanos(self.nanos.load(Ordering::SeqCst))
    }

    /// Moves the clock forward by `d`.
    pub fn advance(&self, d: Duration) {
        let d = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        self.nanos.fetch_add(d, Ordering::SeqCst);
    }

    /// Moves the clock forward to `t`; an instant in the past leaves it where it is.
    pub fn advance_to(&self, t: Instant) {
        let target =
            u64::try_from(t.saturating_duration_since(self.origin).as_nanos()).unwrap_or(u64::MAX);
        self.nanos.fetch_max(target, Ordering::SeqCst);
    }
}

impl Clock for VirtualClock {
    fn now(&self) -> Instant {
        self.origin + self.elapsed()
    }

    fn is_virtual(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn virtual_time_moves_only_forward_and_clones_share_it() {
        let c = VirtualClock::new();
        let d = c.clone();
        let t0 = c.now();
        c.advance(Duration::from_micros(7));
        assert_eq!(d.now() - t0, Duration::from_micros(7));
        d.advance_to(t0); // the past: no change
        assert_eq!(c.elapsed(), Duration::from_micros(7));
        d.advance_to(t0 + Duration::from_secs(1));
        assert_eq!(c.elapsed(), Duration::from_secs(1));
        assert!(c.is_virtual() && !SystemClock.is_virtual());
    }
}
