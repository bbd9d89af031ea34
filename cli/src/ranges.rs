//! Range-checked parsers for every numeric option of every subcommand (issue 13, item 5): a
//! value out of range is refused before anything starts, with one line naming the range and
//! why, and a non-zero exit (clap's usage error, status 2; see `main::parse`).
//!
//! The ranges, and where each comes from:
//! - `--mtu`: 68 (RFC 791: every IPv4 module takes 68-octet datagrams unfragmented) to 65,521
//!   (the largest IP MTU whose Ethernet frame, 14 bytes more, fits the 65,535-byte frames our
//!   links carry).
//! - `--datagram` of `send`: 1 to 65,507 bytes of UDP payload (65,535 − 20 IPv4 − 8 UDP); 0
//!   would send nothing for ever.
//! - ports: 1 to 65,535 (port 0 asks for an ephemeral port nobody could reach).
//! - `--loss`: a probability, 0 to 1; NaN and infinities refused.
//! - seconds: finite, in a range per option (`--duration` more than 0 and at most a day).
//! - `bench --secs` 2 to 60 (each shaped flow needs a second of settling and one measured),
//!   `--runs` 1 to 100, `--bytes` at least 1.
//! - `--qos`: see `qos_arg` (a zero `TokenRate`, `TokenBucketSize` or `PeakBandwidth` refused).

use std::fmt::Display;
use std::str::FromStr;

/// Parses `s` as a `T` in `lo..=hi`; the error says `what` the option is and the range.
fn within<T>(s: &str, lo: T, hi: T, what: &str) -> Result<T, String>
where
    T: FromStr + PartialOrd + Display + Copy,
{
    match s.trim().parse::<T>() {
        Ok(v) if v >= lo && v <= hi => Ok(v),
        _ => Err(format!("{what} must be {lo} to {hi}")),
    }
}

/// A finite number of seconds, more than 0 (or at least 0 with `zero_ok`) and at most `hi`.
fn seconds(s: &str, zero_ok: bool, hi: f64, what: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(v) if v.is_finite() && (v > 0.0 || (zero_ok && v == 0.0)) && v <= hi => Ok(v),
        _ => Err(format!(
            "{what} must be {} {hi} seconds",
            if zero_ok {
                "0 (skip) to"
            } else {
                "more than 0 and at most"
            }
        )),
    }
}

/// Smallest IP MTU (RFC 791).
pub(crate) const MIN_MTU: usize = 68;
/// Largest IP MTU whose frame fits 65,535 bytes.
pub(crate) const MAX_MTU: usize = 65_535 - 14;

/// `--mtu`: an IP MTU.
pub(crate) fn mtu(s: &str) -> Result<usize, String> {
    within(s, MIN_MTU, MAX_MTU, "the IP MTU").map_err(|e| {
        format!("{e} (RFC 791's minimum; the largest whose Ethernet frame fits 65535 bytes)")
    })
}

/// `send --datagram`: bytes of UDP payload.
pub(crate) fn udp_payload(s: &str) -> Result<usize, String> {
    within(s, 1, 65_507, "a UDP datagram's payload, in bytes,")
        .map_err(|e| format!("{e} (0 would send nothing for ever)"))
}

/// A TCP or UDP port to listen on.
pub(crate) fn port(s: &str) -> Result<u16, String> {
    within(s, 1, 65_535, "a port")
}

/// `send --connect-wait`: seconds.
pub(crate) fn connect_wait(s: &str) -> Result<u64, String> {
    within(s, 1, 3_600, "the connect wait, in seconds,")
}

/// `recv --idle`: seconds.
pub(crate) fn idle(s: &str) -> Result<u64, String> {
    within(s, 1, 86_400, "the idle time-out, in seconds,")
}

/// `--duration` of send, mcast, root and leaf.
pub(crate) fn duration(s: &str) -> Result<f64, String> {
    seconds(s, false, 86_400.0, "the duration")
}

/// `demo --loss`: a probability.
pub(crate) fn probability(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(v) if (0.0..=1.0).contains(&v) => Ok(v),
        _ => Err("a loss probability must be 0 to 1 (0.01 is 1%)".to_string()),
    }
}

/// `demo --conference-secs`, `--multicast-secs`, `--rooted-secs`: 0 skips the part.
pub(crate) fn demo_part_secs(s: &str) -> Result<f64, String> {
    seconds(s, true, 600.0, "a demo part's length")
}

/// `demo --async-clients`.
pub(crate) fn clients(s: &str) -> Result<usize, String> {
    within(s, 1, 1_000, "the number of clients")
}

/// `bench --secs`: seconds each shaped flow is offered.
pub(crate) fn bench_secs(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(v) if (2.0..=60.0).contains(&v) => Ok(v),
        _ => Err("seconds per shaped flow must be 2 to 60".to_string()),
    }
}

/// `bench --runs`.
pub(crate) fn runs(s: &str) -> Result<usize, String> {
    within(s, 1, 100, "the number of runs")
}

/// `--bytes` of `demo` and `bench`: at least one byte, at most 1 TiB.
pub(crate) fn bytes(s: &str) -> Result<u64, String> {
    within(s, 1, 1 << 40, "the byte count")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mtu_bounds_are_rfc_791_and_the_frame_limit() {
        for bad in ["0", "1", "67", "65522", "65536", "-1", "x", ""] {
            assert!(mtu(bad).is_err(), "{bad}");
        }
        assert_eq!(mtu("68"), Ok(68));
        assert_eq!(mtu("1500"), Ok(1500));
        assert_eq!(mtu("65521"), Ok(65521));
    }

    #[test]
    fn loss_is_a_probability() {
        for bad in ["2", "-0.1", "nan", "NaN", "inf", "1.0000001"] {
            assert!(probability(bad).is_err(), "{bad}");
        }
        assert_eq!(probability("0"), Ok(0.0));
        assert_eq!(probability("1"), Ok(1.0));
    }

    #[test]
    fn seconds_are_finite_and_in_range() {
        for bad in ["0", "-1", "nan", "inf", "86401"] {
            assert!(duration(bad).is_err(), "{bad}");
        }
        assert!(demo_part_secs("0").is_ok());
        assert!(demo_part_secs("nan").is_err());
        assert!(demo_part_secs("601").is_err());
        for bad in ["0", "1.9", "60.5", "nan"] {
            assert!(bench_secs(bad).is_err(), "{bad}");
        }
        assert_eq!(bench_secs("2"), Ok(2.0));
    }

    #[test]
    fn counts_refuse_zero() {
        assert!(udp_payload("0").is_err());
        assert!(udp_payload("65508").is_err());
        assert!(runs("0").is_err());
        assert!(bytes("0").is_err());
        assert!(port("0").is_err());
        assert!(idle("0").is_err());
        assert!(connect_wait("18446744073709551615").is_err());
    }

    #[test]
    fn the_message_names_the_range() {
        let e = mtu("67").unwrap_err();
        assert!(e.contains("68 to 65521"), "{e}");
        assert!(!e.contains('\n'));
    }
}
