//! [`Impairments`]: what a [`VirtualSwitch`](super::VirtualSwitch) port does to the frames it
//! delivers (the order and the seeding are documented on the type), and [`Egress`], the seeded
//! per-port machine that applies them. Everything it drops or changes is counted in
//! [`SwitchStats`].

use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::SwitchStats;

/// What a switch port does to the frames it delivers. `Impairments::default()` does nothing:
/// no loss, no delay, no rate limit. Probabilities outside `0.0..=1.0` act as the nearest bound
/// (NaN as 0).
///
/// Impairments act on the *egress* side of the receiving port, after switching: a frame
/// flooded to three ports meets three independent draws. Per frame, in this order (each step
/// counted in the [`SwitchStats`](super::SwitchStats) field named in parentheses):
/// 1. **loss** — dropped (`dropped_loss`);
/// 2. **duplicate** — a second copy follows the first (`duplicated`);
/// 3. for each copy: **corrupt** — one random bit of one random byte flipped (`corrupted`);
///    **rate** — serialised behind the frames before it, or tail-dropped when the backlog would
///    pass `queue_limit_bytes` (`dropped_queue_full`); **delay** — fixed one-way latency;
///    **reorder** — an extra `reorder_delay`, so frames sent after it can arrive first
///    (`reordered`).
///
/// Every random choice comes from a `ChaCha8Rng` seeded with `switch seed ^ port index`, and a
/// draw is made only for an impairment whose probability is above zero: the same seed, ports and
/// sequence of sends give the same drops, copies, bit flips and delays.
///
/// ```
/// use std::time::Duration;
/// use ws2_tap::Impairments;
///
/// let lossy_wan = Impairments {
///     loss: 0.01,
///     delay: Duration::from_millis(20),
///     rate_bps: Some(10_000_000),
///     ..Impairments::default()
/// };
/// # let _ = lossy_wan;
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Impairments {
    /// Probability that a frame is dropped.
    pub loss: f64,
    /// Probability that a frame is delivered twice.
    pub duplicate: f64,
    /// Probability that a frame is held back an extra [`reorder_delay`](Self::reorder_delay),
    /// so that frames sent after it overtake it.
    pub reorder: f64,
    /// Extra delay of a reordered frame. Default 5 ms.
    pub reorder_delay: Duration,
    /// Probability that one random bit of one random byte of a frame is flipped.
    pub corrupt: f64,
    /// Fixed one-way delay added to every frame. Default zero. (Every delay of this struct is
    /// capped at one year.)
    pub delay: Duration,
    /// Line rate in bits per second: a frame of `len` bytes is delivered
    /// `len * 8 / rate_bps` seconds after the previous one finished (or after it was sent, if
    /// the line was idle). `None` (the default) = infinitely fast; `Some(0)` acts as 1 bit/s.
    pub rate_bps: Option<u64>,
    /// With `rate_bps`, the most bytes that may wait for the line; a frame that would pass it is
    /// tail-dropped. Default 256 KiB. Ignored without a rate.
    pub queue_limit_bytes: usize,
}

impl Default for Impairments {
    fn default() -> Impairments {
        Impairments {
            loss: 0.0,
            duplicate: 0.0,
            reorder: 0.0,
            reorder_delay: Duration::from_millis(5),
            corrupt: 0.0,
            delay: Duration::ZERO,
            rate_bps: None,
            queue_limit_bytes: 256 * 1024,
        }
    }
}

/// Longest a frame is ever held by one delay; longer settings are cut to this.
const MAX_HOLD: Duration = Duration::from_secs(365 * 24 * 3600);

/// `t + d` with `d` capped at [`MAX_HOLD`], never overflowing.
fn later(t: Instant, d: Duration) -> Instant {
    t.checked_add(d.min(MAX_HOLD)).unwrap_or(t)
}

/// The impairment state of one port: its settings, its RNG and when its line is free again.
#[derive(Debug)]
pub(super) struct Egress {
    pub(super) impairments: Impairments,
    rng: ChaCha8Rng,
    busy_until: Option<Instant>,
}

impl Egress {
    pub(super) fn new(impairments: Impairments, seed: u64) -> Egress {
        Egress {
            impairments,
            rng: ChaCha8Rng::seed_from_u64(seed),
            busy_until: None,
        }
    }

    /// True with probability `p`, drawing from the RNG only when `p > 0`.
    fn chance(&mut self, p: f64) -> bool {
        p > 0.0 && self.rng.gen::<f64>() < p
    }

    /// Applies the impairments to `frame`, sent at `now`, and hands every copy that survives to
    /// `deliver` with the time it may be received; `deliver` answers false if its queue was
    /// full. Counts everything in `stats`.
    pub(super) fn schedule(
        &mut self,
        frame: &[u8],
        now: Instant,
        stats: &mut SwitchStats,
        mut deliver: impl FnMut(Instant, Vec<u8>) -> bool,
    ) {
        if self.chance(self.impairments.loss) {
            stats.dropped_loss += 1;
            return;
        }
        let copies = if self.chance(self.impairments.duplicate) {
            stats.duplicated += 1;
            2
        } else {
            1
        };
        for _ in 0..copies {
            let mut data = frame.to_vec();
            if !data.is_empty() && self.chance(self.impairments.corrupt) {
                let byte = self.rng.gen_range(0..data.len());
                data[byte] ^= 1 << self.rng.gen_range(0..8u32);
                stats.corrupted += 1;
            }
            let mut at = now;
            if let Some(rate) = self.impairments.rate_bps {
                let rate = u128::from(rate.max(1));
                let start = self.busy_until.map_or(now, |busy| busy.max(now));
                let backlog = (start - now).as_nanos().saturating_mul(rate) / 8_000_000_000;
                if backlog + data.len() as u128 > self.impairments.queue_limit_bytes as u128 {
                    stats.dropped_queue_full += 1;
                    continue;
                }
                let nanos = (data.len() as u128 * 8 * 1_000_000_000).div_ceil(rate);
                at = later(
                    start,
                    Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX)),
                );
                self.busy_until = Some(at);
            }
            at = later(at, self.impairments.delay);
            if self.chance(self.impairments.reorder) {
                at = later(at, self.impairments.reorder_delay);
                stats.reordered += 1;
            }
            if deliver(at, data) {
                stats.forwarded += 1;
            } else {
                stats.dropped_queue_full += 1;
            }
        }
    }
}
