//! The per-flow dual token bucket: a rate bucket (`TokenRate`, `TokenBucketSize`) and a peak
//! limiter (`PeakBandwidth` over one maximum frame), as in CHECKLIST §1.8.4 and D-13.
//!
//! Heads up! Before working on this file read the `FLOWSPEC` entry (CHECKLIST §1.8.2), RFC 2697
//! and RFC 2698 (the single- and two-rate three-colour markers: a committed bucket of depth CBS
//! refilled at CIR, a peak bucket of depth PBS refilled at PIR; we keep their "both buckets must
//! hold the packet" test and drop the colours, since a shaper delays instead of marking), and
//! Linux `tc-tbf(8)` (`rate`/`burst` plus `peakrate`/`mtu`: the peak bucket is one maximum frame
//! deep), whose semantics this follows:
//!
//! - **Bytes counted** are those of the Ethernet frame as tc counts them (`skb->len` on an
//!   Ethernet device): destination and source MAC, EtherType and the IP datagram — see
//!   [`ethernet_frame_len`]. Preamble, start delimiter, FCS, inter-frame gap and the padding
//!   of short frames to 60 bytes are *not* counted.
//! - **Both buckets start full** (D-13): the first burst is `TokenBucketSize` bytes (at most one
//!   maximum frame back to back when a peak is set), then `TokenRate`.
//! - **Credit never exceeds the depth** however long the idle time (CHECKLIST 363).
//! - A frame conforms when **each** configured bucket holds at least its length; sending it
//!   takes its length from each. A frame longer than a bucket's depth never conforms
//!   ([`TokenBucket::next_conformant`] answers `None`; the socket layer maps that to
//!   `WSAEMSGSIZE`, D-13).
//!
//! Arithmetic is exact: credit is kept in *nanobytes* (bytes × 10⁹) in an `i128`, and `elapsed
//! nanoseconds × bytes per second` is exactly nanobytes, so no rounding happens on refill and a
//! long run never drifts. The only rounding is [`TokenBucket::next_conformant`] rounding its
//! answer *up* to the next whole nanosecond, so a frame released at that instant conforms.
//! Time never goes backwards here: a `now` earlier than one already seen counts as no time.

use std::time::{Duration, Instant};

/// Bytes of an Ethernet II header: destination MAC (6), source MAC (6), EtherType (2).
pub const ETHERNET_HEADER_LEN: usize = 14;

/// The largest untagged Ethernet frame for a 1500-byte MTU, in counted bytes
/// (1500 + [`ETHERNET_HEADER_LEN`]; no FCS). The default peak-bucket depth and DRR quantum.
pub const DEFAULT_MAX_FRAME: usize = 1500 + ETHERNET_HEADER_LEN;

const NANOS_PER_SEC: i128 = 1_000_000_000;

/// The bytes a shaper charges for an IP datagram of `ip_len` bytes sent on Ethernet: the
/// datagram plus the 14-byte Ethernet II header, as tc charges `skb->len`.
///
/// Not counted: the 8-byte preamble and start delimiter, the 4-byte FCS, the 12-byte
/// inter-frame gap, an 802.1Q tag (the stack sends untagged frames), and the padding that
/// brings a short frame to 60 bytes (the NIC or the kernel adds it after the qdisc).
/// `ethernet_frame_len(20 + 8 + 172)` = 214 bytes for a G.711 20 ms RTP packet.
pub const fn ethernet_frame_len(ip_len: usize) -> usize {
    ip_len + ETHERNET_HEADER_LEN
}

/// What a bucket pair enforces, in counted (Ethernet-frame) bytes. `None` is the flowspec's
/// `-1`, "not specified".
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Shape {
    /// `TokenRate`, bytes per second; `None` = no rate limiting.
    pub token_rate: Option<u64>,
    /// `TokenBucketSize`, bytes; `None` with a rate set = D-13's default,
    /// max(`TokenRate` × 1 s, one maximum frame). Ignored without a rate.
    pub token_bucket_size: Option<u64>,
    /// `PeakBandwidth`, bytes per second, over a bucket one maximum frame deep; `None` = no
    /// peak limit.
    pub peak_bandwidth: Option<u64>,
}

impl Shape {
    /// No limit at all (all three fields `-1`).
    pub const UNLIMITED: Self = Self {
        token_rate: None,
        token_bucket_size: None,
        peak_bandwidth: None,
    };

    /// A shape from the flowspec's `int32` fields: any negative value (the spec's `-1`) is
    /// "not specified". Validation (−1 or ≥ 0, D-13) is the flowspec's job, not this one's.
    pub fn from_flowspec(token_rate: i32, token_bucket_size: i32, peak_bandwidth: i32) -> Self {
        let opt = |v: i32| u64::try_from(v).ok();
        Self {
            token_rate: opt(token_rate),
            token_bucket_size: opt(token_bucket_size),
            peak_bandwidth: opt(peak_bandwidth),
        }
    }

    /// True when neither a rate nor a peak is set: the bucket pair lets everything through.
    pub fn is_unlimited(&self) -> bool {
        self.token_rate.is_none() && self.peak_bandwidth.is_none()
    }
}

/// One bucket: depth and rate in bytes, credit in nanobytes (may go negative after a forced
/// [`TokenBucket::consume`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Meter {
    rate: u64,
    depth: u64,
    credit: i128,
}

impl Meter {
    fn full(rate: u64, depth: u64) -> Self {
        Self {
            rate,
            depth,
            credit: i128::from(depth) * NANOS_PER_SEC,
        }
    }

    fn cap(&self) -> i128 {
        i128::from(self.depth) * NANOS_PER_SEC
    }

    /// Credit after `elapsed_ns` more nanoseconds, capped at the depth.
    fn credit_after(&self, elapsed_ns: u128) -> i128 {
        let cap = self.cap();
        if self.credit >= cap {
            return cap;
        }
        // Only the part of `elapsed` that could still add credit matters; clamp before
        // multiplying so the product cannot overflow.
        let gained = i128::try_from(elapsed_ns)
            .unwrap_or(i128::MAX)
            .min(cap - self.credit)
            .saturating_mul(i128::from(self.rate));
        (self.credit + gained.min(cap - self.credit)).min(cap)
    }

    /// Nanoseconds until `credit` reaches `need` at this meter's rate; `None` if never.
    fn wait_ns(&self, credit: i128, need: i128) -> Option<u128> {
        if credit >= need {
            return Some(0);
        }
        if self.rate == 0 || need > self.cap() {
            return None;
        }
        let missing = need - credit;
        let rate = i128::from(self.rate);
        u128::try_from((missing + rate - 1) / rate).ok()
    }
}

/// A dual token bucket: a rate bucket (`TokenRate`, `TokenBucketSize`) and a peak limiter
/// (`PeakBandwidth`, one maximum frame deep). Sans-IO: every call takes `now`.
///
/// The owner checks [`conforms`](Self::conforms) and then [`consume`](Self::consume)s the
/// frame it sends, or asks [`next_conformant`](Self::next_conformant) when to come back.
#[derive(Clone, Debug)]
pub struct TokenBucket {
    shape: Shape,
    max_frame: usize,
    rate: Option<Meter>,
    peak: Option<Meter>,
    last: Instant,
}

impl TokenBucket {
    /// A full bucket pair for `shape`, at `now`. `max_frame` is the largest counted frame of
    /// the link (e.g. [`DEFAULT_MAX_FRAME`]): the peak bucket's depth and the floor of D-13's
    /// default bucket size.
    pub fn new(shape: Shape, max_frame: usize, now: Instant) -> Self {
        let (rate, peak) = Self::meters(&shape, max_frame);
        Self {
            shape,
            max_frame,
            rate,
            peak,
            last: now,
        }
    }

    fn meters(shape: &Shape, max_frame: usize) -> (Option<Meter>, Option<Meter>) {
        let frame = max_frame as u64;
        let rate = shape.token_rate.map(|r| {
            // D-13: `TokenRate` without `TokenBucketSize` → max(TokenRate × 1 s, one frame).
            let depth = shape.token_bucket_size.unwrap_or(r.max(frame));
            Meter::full(r, depth)
        });
        let peak = shape.peak_bandwidth.map(|p| Meter::full(p, frame));
        (rate, peak)
    }

    /// The shape this bucket enforces.
    pub fn shape(&self) -> Shape {
        self.shape
    }

    /// The rate bucket's depth in bytes (`TokenBucketSize` after D-13's default), or `None`
    /// without a rate.
    pub fn bucket_size(&self) -> Option<u64> {
        self.rate.map(|m| m.depth)
    }

    /// Change the shape at `now` (`SIO_SET_QOS` renegotiation): credit earned until `now` is
    /// kept, clamped to the new depths; a bucket that did not exist before starts full.
    pub fn reconfigure(&mut self, shape: Shape, max_frame: usize, now: Instant) {
        self.advance(now);
        let (mut rate, mut peak) = Self::meters(&shape, max_frame);
        for (new, old) in [(&mut rate, self.rate), (&mut peak, self.peak)] {
            if let (Some(new), Some(old)) = (new.as_mut(), old) {
                new.credit = old.credit.min(new.cap());
            }
        }
        self.shape = shape;
        self.max_frame = max_frame;
        self.rate = rate;
        self.peak = peak;
    }

    fn elapsed_ns(&self, now: Instant) -> u128 {
        now.saturating_duration_since(self.last).as_nanos()
    }

    fn advance(&mut self, now: Instant) {
        let elapsed = self.elapsed_ns(now);
        if elapsed == 0 {
            return;
        }
        for meter in [&mut self.rate, &mut self.peak].into_iter().flatten() {
            meter.credit = meter.credit_after(elapsed);
        }
        self.last = now;
    }

    /// Whether a frame of `frame_len` counted bytes may be sent at `now`: every configured
    /// bucket holds at least `frame_len` bytes of credit.
    pub fn conforms(&self, frame_len: usize, now: Instant) -> bool {
        let need = i128::from(frame_len as u64) * NANOS_PER_SEC;
        let elapsed = self.elapsed_ns(now);
        [self.rate, self.peak]
            .into_iter()
            .flatten()
            .all(|m| m.credit_after(elapsed) >= need)
    }

    /// Whether a frame of `frame_len` bytes can ever conform: it is no longer than the rate
    /// bucket and, with a peak set, no longer than one maximum frame. `false` is `WSAEMSGSIZE`.
    pub fn fits(&self, frame_len: usize) -> bool {
        let len = frame_len as u64;
        [self.rate, self.peak]
            .into_iter()
            .flatten()
            .all(|m| len <= m.depth)
    }

    /// Take `frame_len` bytes from every configured bucket at `now`. Consuming a frame that
    /// does not conform is allowed (the engine may have to send a control frame): the debt is
    /// kept, so the long-run rate stays exact.
    pub fn consume(&mut self, frame_len: usize, now: Instant) {
        self.advance(now);
        let need = i128::from(frame_len as u64) * NANOS_PER_SEC;
        for meter in [&mut self.rate, &mut self.peak].into_iter().flatten() {
            meter.credit -= need;
        }
    }

    /// The earliest instant at or after `now` at which a frame of `frame_len` bytes conforms,
    /// or `None` if it never will (longer than a bucket's depth, or a zero rate with too
    /// little credit): the caller maps `None` to `WSAEMSGSIZE`.
    pub fn next_conformant(&self, frame_len: usize, now: Instant) -> Option<Instant> {
        let need = i128::from(frame_len as u64) * NANOS_PER_SEC;
        let base = now.max(self.last);
        let elapsed = self.elapsed_ns(base);
        let mut wait = 0u128;
        for meter in [self.rate, self.peak].into_iter().flatten() {
            wait = wait.max(meter.wait_ns(meter.credit_after(elapsed), need)?);
        }
        let wait = u64::try_from(wait).ok()?;
        base.checked_add(Duration::from_nanos(wait))
    }

    /// Bytes of rate-bucket credit at `now` (0 when in debt), or `None` without a rate.
    pub fn credit(&self, now: Instant) -> Option<u64> {
        let elapsed = self.elapsed_ns(now);
        self.rate
            .map(|m| u64::try_from(m.credit_after(elapsed).max(0) / NANOS_PER_SEC).unwrap_or(0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn shape(rate: u64, bucket: u64, peak: Option<u64>) -> Shape {
        Shape {
            token_rate: Some(rate),
            token_bucket_size: Some(bucket),
            peak_bandwidth: peak,
        }
    }

    #[test]
    fn frame_len_counts_ethernet_header_only() {
        assert_eq!(ethernet_frame_len(1500), DEFAULT_MAX_FRAME);
        assert_eq!(ethernet_frame_len(200), 214);
        assert_eq!(ethernet_frame_len(28), 42); // not padded to 60
    }

    #[test]
    fn starts_full_and_first_burst_is_bucket_size() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(shape(1000, 5000, None), DEFAULT_MAX_FRAME, t0);
        let mut sent = 0;
        while b.conforms(100, t0) {
            b.consume(100, t0);
            sent += 100;
        }
        assert_eq!(sent, 5000);
        // 100 bytes at 1000 B/s: exactly 100 ms later.
        assert_eq!(b.next_conformant(100, t0), Some(t0 + ms(100)));
        assert!(!b.conforms(100, t0 + ms(99)));
        assert!(b.conforms(100, t0 + ms(100)));
    }

    #[test]
    fn credit_never_exceeds_depth() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(shape(1000, 3000, None), DEFAULT_MAX_FRAME, t0);
        b.consume(3000, t0);
        let later = t0 + Duration::from_secs(3600 * 24 * 365);
        assert_eq!(b.credit(later), Some(3000));
        assert!(b.conforms(3000, later));
        assert!(!b.conforms(3001, later));
    }

    #[test]
    fn frame_larger_than_bucket_never_conforms() {
        let t0 = Instant::now();
        let b = TokenBucket::new(shape(1_000_000, 1000, None), DEFAULT_MAX_FRAME, t0);
        assert!(!b.fits(1001));
        assert_eq!(b.next_conformant(1001, t0), None);
        assert!(!b.conforms(1001, t0 + Duration::from_secs(1_000_000)));
        // Peak depth is one maximum frame.
        let p = TokenBucket::new(
            shape(1_000_000, 100_000, Some(2_000_000)),
            DEFAULT_MAX_FRAME,
            t0,
        );
        assert!(p.fits(DEFAULT_MAX_FRAME));
        assert_eq!(p.next_conformant(DEFAULT_MAX_FRAME + 1, t0), None);
    }

    #[test]
    fn unlimited_always_conforms() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(Shape::from_flowspec(-1, -1, -1), DEFAULT_MAX_FRAME, t0);
        for _ in 0..1000 {
            assert!(b.conforms(65_535, t0));
            b.consume(65_535, t0);
        }
        assert_eq!(b.next_conformant(65_535, t0), Some(t0));
        assert_eq!(b.credit(t0), None);
    }

    #[test]
    fn default_bucket_is_one_second_or_one_frame() {
        let t0 = Instant::now();
        let b = TokenBucket::new(Shape::from_flowspec(8000, -1, -1), DEFAULT_MAX_FRAME, t0);
        assert_eq!(b.bucket_size(), Some(8000));
        let b = TokenBucket::new(Shape::from_flowspec(100, -1, -1), DEFAULT_MAX_FRAME, t0);
        assert_eq!(b.bucket_size(), Some(DEFAULT_MAX_FRAME as u64));
    }

    #[test]
    fn peak_spaces_full_frames() {
        let t0 = Instant::now();
        let peak = 151_400; // one 1514-byte frame per 10 ms
        let mut b = TokenBucket::new(
            shape(1_000_000, 1_000_000, Some(peak)),
            DEFAULT_MAX_FRAME,
            t0,
        );
        assert!(b.conforms(1514, t0));
        b.consume(1514, t0);
        assert!(!b.conforms(1514, t0 + ms(9)));
        assert_eq!(b.next_conformant(1514, t0), Some(t0 + ms(10)));
    }

    #[test]
    fn time_going_backwards_does_not_panic_or_add_credit() {
        let t0 = Instant::now() + Duration::from_secs(10);
        let mut b = TokenBucket::new(shape(1000, 1000, Some(2000)), DEFAULT_MAX_FRAME, t0);
        b.consume(1000, t0);
        let earlier = t0 - Duration::from_secs(5);
        assert!(!b.conforms(1, earlier));
        b.consume(10, earlier);
        assert_eq!(b.next_conformant(10, earlier), Some(t0 + ms(20)));
        assert!(b.conforms(10, t0 + ms(20)));
    }

    #[test]
    fn forced_consume_keeps_debt() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(shape(1000, 1000, None), DEFAULT_MAX_FRAME, t0);
        b.consume(3000, t0);
        assert_eq!(b.credit(t0), Some(0));
        assert_eq!(b.next_conformant(1000, t0), Some(t0 + ms(3000)));
    }

    #[test]
    fn reconfigure_keeps_and_clamps_credit() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(shape(1000, 10_000, None), DEFAULT_MAX_FRAME, t0);
        b.consume(4000, t0);
        b.reconfigure(shape(1000, 2000, None), DEFAULT_MAX_FRAME, t0);
        assert_eq!(b.credit(t0), Some(2000));
        b.reconfigure(shape(5000, 8000, None), DEFAULT_MAX_FRAME, t0);
        assert_eq!(b.credit(t0), Some(2000));
        assert_eq!(b.credit(t0 + ms(1000)), Some(7000));
    }

    #[test]
    fn long_run_is_exact() {
        // 3000.003 ns per byte is not a whole number of nanoseconds; the nanobyte credit
        // still makes an hour come out exact to one frame.
        let t0 = Instant::now();
        let rate = 333_333u64;
        let mut b = TokenBucket::new(shape(rate, 1514, None), DEFAULT_MAX_FRAME, t0);
        let mut now = t0;
        let mut sent: u64 = 0;
        let end = t0 + Duration::from_secs(3600);
        while now < end {
            if b.conforms(1514, now) {
                b.consume(1514, now);
                sent += 1514;
            }
            now = b.next_conformant(1514, now).unwrap();
        }
        let ideal = rate * 3600 + 1514;
        assert!(ideal - sent <= 2 * 1514, "sent {sent}, ideal {ideal}");
    }
}
