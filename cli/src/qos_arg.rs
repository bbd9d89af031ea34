//! Command-line QoS arguments: `--qos TEMPLATE|rate=R,bucket=B,peak=P,service=S` and
//! `--group new|ID`. Bad input is a clear message (clap prints it), never a panic.

use std::fmt;
use std::str::FromStr;

use ws2_qos::{Flowspec, Guarantee, Qos};

/// A parsed `--qos`: the QOS to ask for and how the user named it (for the report lines).
#[derive(Debug, Clone)]
pub(crate) struct QosArg {
    pub(crate) qos: Qos,
    pub(crate) label: String,
}

impl QosArg {
    /// The sending flowspec's `TokenRate` in bytes/s, if one is set.
    pub(crate) fn token_rate(&self) -> Option<u64> {
        u64::try_from(self.qos.SendingFlowspec.TokenRate).ok()
    }
}

impl fmt::Display for QosArg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = &self.qos.SendingFlowspec;
        write!(
            f,
            "{} (TokenRate {}, TokenBucketSize {}, PeakBandwidth {}, {})",
            self.label,
            show(s.TokenRate),
            show(s.TokenBucketSize),
            show(s.PeakBandwidth),
            s.LevelOfGuarantee
        )
    }
}

/// A flowspec value for people: −1 reads "unspecified".
pub(crate) fn show(v: i32) -> String {
    if v < 0 {
        "unspecified".into()
    } else {
        v.to_string()
    }
}

/// Parses `--qos`: a `WSAGetQOSByName` template name (case ignored), or comma-separated
/// `key=value` pairs: `rate`, `bucket`, `peak` (bytes/s or bytes, ≥ 1, or -1 for "not
/// specified"; 0 is refused, see [`not_zero`]), `latency`, `jitter` (µs) and `service` (`best`, `controlled`, `predictive`,
/// `guaranteed`). Unset fields keep the spec's defaults; the result passes `Qos::validate`.
pub(crate) fn parse_qos(text: &str) -> Result<QosArg, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("empty QoS: give a template name or rate=R,bucket=B,peak=P,service=S".into());
    }
    if !text.contains('=') {
        let qos = ws2_qos::template(text).ok_or_else(|| {
            format!(
                "unknown QoS template {text:?}; known templates: {}; or give \
                 rate=R,bucket=B,peak=P,service=best|controlled|predictive|guaranteed",
                ws2_qos::template_names().join(", ")
            )
        })?;
        let label = ws2_qos::template_names()
            .iter()
            .find(|n| n.eq_ignore_ascii_case(text))
            .map_or_else(|| text.to_string(), |n| n.to_string());
        return Ok(QosArg { qos, label });
    }
    let mut spec = Flowspec::DEFAULT;
    let mut seen: Vec<&str> = Vec::new();
    for pair in text.split(',') {
        let pair = pair.trim();
        let (key, value) = pair
            .split_once('=')
            .ok_or_else(|| format!("{pair:?} in --qos is not key=value"))?;
        let (key, value) = (key.trim(), value.trim());
        if seen.contains(&key) {
            return Err(format!("{key} is given twice in --qos"));
        }
        seen.push(key);
        match key {
            "rate" => spec.TokenRate = not_zero(key, value)?,
            "bucket" => spec.TokenBucketSize = not_zero(key, value)?,
            "peak" => spec.PeakBandwidth = not_zero(key, value)?,
            "latency" => spec.Latency = number(key, value)?,
            "jitter" => spec.DelayVariation = number(key, value)?,
            "service" => spec.LevelOfGuarantee = service(value)?,
            other => {
                return Err(format!(
                    "unknown --qos key {other:?} (rate, bucket, peak, latency, jitter, service)"
                ))
            }
        }
    }
    let qos = Qos {
        SendingFlowspec: spec,
        ..Qos::default()
    };
    qos.validate()
        .map_err(|e| format!("--qos {text:?} is not a valid QOS: {e}"))?;
    Ok(QosArg {
        qos,
        label: text.to_string(),
    })
}

/// A flowspec number: −1 ("not specified") or 0..=2^31−1.
fn number(key: &str, value: &str) -> Result<i32, String> {
    let v: i64 = value
        .replace('_', "")
        .parse()
        .map_err(|_| format!("{key}={value:?}: not a number"))?;
    if v == -1 {
        return Ok(-1);
    }
    i32::try_from(v).ok().filter(|v| *v >= 0).ok_or_else(|| {
        format!(
            "{key}={value}: must be -1 (not specified) or 0 to {}",
            i32::MAX
        )
    })
}

/// A rate or bucket size for a command: as [`number`], but not 0. The spec lets a flowspec
/// carry 0 (D-13: "≥ 0"), and the stack takes it: a zero `TokenRate` or `PeakBandwidth` never
/// refills, so after the first bucket the flow waits until renegotiated, and a zero
/// `TokenBucketSize` holds no datagram. A command has nothing to renegotiate with, so it would
/// send nothing for ever; it refuses the value instead (docs/decisions.md, issue 13).
fn not_zero(key: &str, value: &str) -> Result<i32, String> {
    match number(key, value)? {
        0 => Err(format!(
            "{key}=0: a flow with a zero {} would never send; give at least 1, or -1 (not \
             specified) for no limit",
            match key {
                "rate" => "TokenRate",
                "bucket" => "TokenBucketSize",
                _ => "PeakBandwidth",
            }
        )),
        v => Ok(v),
    }
}

fn service(value: &str) -> Result<Guarantee, String> {
    Ok(match value.to_ascii_lowercase().as_str() {
        "best" | "besteffort" | "besteffortservice" => Guarantee::BestEffortService,
        "controlled" | "controlledload" | "controlledloadservice" => {
            Guarantee::ControlledLoadService
        }
        "predictive" | "predictiveservice" => Guarantee::PredictiveService,
        "guaranteed" | "guaranteedservice" => Guarantee::GuaranteedService,
        _ => {
            return Err(format!(
                "service={value:?}: expected best, controlled, predictive or guaranteed"
            ))
        }
    })
}

/// `--group`: `new` creates an unconstrained group with this socket, a number joins that group
/// of this stack.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum GroupArg {
    New,
    Join(u32),
}

impl GroupArg {
    /// The `g` argument of `WSASocket`.
    pub(crate) fn wsasocket_g(self) -> u32 {
        match self {
            GroupArg::New => ws2_stack::winsock::SG_UNCONSTRAINED_GROUP,
            GroupArg::Join(id) => id,
        }
    }
}

impl FromStr for GroupArg {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.eq_ignore_ascii_case("new") {
            return Ok(GroupArg::New);
        }
        match s.parse::<u32>() {
            Ok(0) => Err("group 0 means \"no group\"; give `new` or a group id".into()),
            Ok(1 | 2) => Err(format!(
                "group {s} is SG_UNCONSTRAINED_GROUP/SG_CONSTRAINED_GROUP; give `new` or an id"
            )),
            Ok(id) => Ok(GroupArg::Join(id)),
            Err(_) => Err(format!("{s:?}: expected `new` or a group id")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_and_pairs_parse() {
        let g711 = parse_qos("g711").unwrap();
        assert_eq!(g711.label, "G711");
        assert_eq!(g711.token_rate(), Some(10_900));
        let q = parse_qos("rate=125000,bucket=12500,service=guaranteed").unwrap();
        assert_eq!(q.qos.SendingFlowspec.TokenRate, 125_000);
        assert_eq!(q.qos.SendingFlowspec.TokenBucketSize, 12_500);
        assert_eq!(q.qos.SendingFlowspec.PeakBandwidth, -1);
        assert_eq!(
            q.qos.SendingFlowspec.LevelOfGuarantee,
            Guarantee::GuaranteedService
        );
    }

    #[test]
    fn bad_input_is_a_message() {
        for bad in [
            "",
            "nosuch",
            "rate=x",
            "rate=1,rate=2",
            "rate=-5",
            "rate=99999999999",
            "colour=red",
            "service=gold",
            "rate",
            "rate=100,peak=50",
            "service=guaranteed",
            "rate=0",
            "rate=0,bucket=1000",
            "bucket=0",
            "rate=1000,peak=0",
        ] {
            assert!(parse_qos(bad).is_err(), "{bad}");
        }
        assert!("0".parse::<GroupArg>().is_err());
        assert!("x".parse::<GroupArg>().is_err());
        assert_eq!("NEW".parse::<GroupArg>(), Ok(GroupArg::New));
        assert_eq!("77".parse::<GroupArg>(), Ok(GroupArg::Join(77)));
    }
}
