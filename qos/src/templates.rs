//! `WSAGetQOSByName`'s templates: a QOS for each well-known media flow.
//!
//! Heads up! Before working on this file read Windows Sockets 2 §"QOS Templates" and the
//! `WSAGetQOSByName` reference entry (`shared/spec/003_…`), CHECKLIST §1.8.3 and decision D-15.
//! The spec leaves the values "up to each service provider" and Windows' own are not public, so
//! every number here is derived from the codec's rate and packetisation, and the arithmetic is
//! below. A test recomputes each `TokenRate` from these inputs.
//!
//! # What is counted
//!
//! Rates and sizes count Ethernet-frame bytes, as tc does: per packet the media payload, the
//! RTP header (12), UDP (8), IPv4 without options (20), and the Ethernet header (14) plus FCS
//! (4) — 58 bytes of overhead for audio, 62 for video (which adds a 4-byte RTP payload header).
//! Preamble, start delimiter and inter-frame gap (20 bytes of line time per frame) are *not*
//! counted: they are not frame bytes and tc does not see them. The FCS is counted even though a
//! frame handed to a TAP or an `AF_PACKET` socket carries none (the NIC adds it), so a shaper
//! that counts frames without FCS sees these rates 4 bytes per packet generous — headroom, never
//! starvation. No frame here is below Ethernet's 64-byte minimum; the derivation pads to it
//! anyway.
//!
//! # Audio: `GuaranteedService`
//!
//! Voice codecs are constant-rate and the call's quality needs exactly their rate, no more:
//! the spec's case for guaranteed service ("a precisely known quality of service but would not
//! benefit from better service"). Per codec, with bit rate `R` and packet time `T`:
//! - payload = ⌈R·T / 8⌉ bytes, one packet per `T`; frame = payload + 58 bytes;
//! - `TokenRate` = ⌈frame / T⌉ bytes/s;
//! - `PeakBandwidth` = `TokenRate`: the spec says "in constant rate applications, the TokenRate
//!   is equal to the PeakBandwidth";
//! - `TokenBucketSize` = 2 frames: the spec's "small variations" of a constant-rate flow, here
//!   one packet late and the next on time, leaving back to back;
//! - `DelayVariation` = `T` (a one-packet de-jitter buffer at the receiver);
//! - `Latency` = 150 ms − 2·`T`: ITU-T G.114's 150 ms one-way mouth-to-ear budget, less one
//!   packet time of packetisation at the sender and the receiver's one-packet buffer.
//!
//! | name | R (bit/s) | T (ms) | payload | frame | packets/s | `TokenRate` | `TokenBucketSize` | `PeakBandwidth` | `Latency` µs | `DelayVariation` µs |
//! |---|---|---|---|---|---|---|---|---|---|---|
//! | G711 | 64 000 | 20 | 160 | 218 | 50 | 218·50 = 10 900 | 436 | 10 900 | 110 000 | 20 000 |
//! | G723.1 | 6 300 | 30 | ⌈23.625⌉ = 24 | 82 | 33⅓ | ⌈82·33⅓⌉ = 2 734 | 164 | 2 734 | 90 000 | 30 000 |
//! | G729 | 8 000 | 20 | 20 | 78 | 50 | 78·50 = 3 900 | 156 | 3 900 | 110 000 | 20 000 |
//! | GSM6.10 | 13 200 | 20 | 33 | 91 | 50 | 91·50 = 4 550 | 182 | 4 550 | 110 000 | 20 000 |
//!
//! G.711 is 64 kbit/s PCM; G.723.1 is taken at its 6.3 kbit/s rate, whose 30 ms frame is 24
//! bytes (189 bits rounded up to whole bytes, as the codec does); G.729 is 8 kbit/s with two
//! 10 ms frames per packet; GSM 06.10 is 13.2 kbit/s as RTP carries it (RFC 3551: 33-byte
//! frames every 20 ms). 20 ms is the usual RTP packet time (RFC 3551), 30 ms G.723.1's frame.
//!
//! # Video: `PredictiveService`
//!
//! The spec names video as predictive service's application ("applications that can
//! accommodate or adapt to some variation in service quality, such as video"): the rate is
//! reserved, the delay bound is highly reliable but not guaranteed, and an encoder can adapt.
//! Controlled load would reserve nothing firmer than an unloaded network, so video would get no
//! rate it can count on.
//!
//! With bit rate `R`, `F` pictures/s and the largest coded picture `Pmax`, packets of at most
//! 1 500 − 20 − 8 − 12 − 4 = 1 456 bytes of video (the 4-byte payload header is RFC 4587's for
//! H.261, RFC 2190 mode A's for H.263), and 62 bytes of overhead per packet:
//! - packets per picture = ⌈(R / 8F) / 1 456⌉ for the average picture;
//! - `TokenRate` = R/8 + F · packets per picture · 62;
//! - `TokenBucketSize` = `Pmax` + ⌈`Pmax` / 1 456⌉ · 62: the spec's "largest typical frame size
//!   in video applications", taken as the largest picture the Recommendation allows, so an
//!   intra picture never waits on the bucket. H.261 §5.2 caps a coded picture at 64 Kibit
//!   (QCIF) and 256 Kibit (CIF); H.263's `BPPmaxKb` minimums (its Table 1) are the same;
//! - `PeakBandwidth` = `TokenBucketSize` · F: a largest picture may leave within one picture
//!   period;
//! - `DelayVariation` = ⌈1/F⌉ (a one-picture de-jitter buffer), `Latency` = ⌊150 ms − 2/F⌋ (the
//!   G.114 budget as for audio, less one picture of capture and one of buffering).
//!
//! | name | R (bit/s) | F | packets/picture | `TokenRate` | `Pmax` bytes | `TokenBucketSize` | `PeakBandwidth` | `Latency` µs | `DelayVariation` µs |
//! |---|---|---|---|---|---|---|---|---|---|
//! | H261QCIF | 64 000 | 15 | ⌈533⅓/1456⌉ = 1 | 8 000 + 15·62 = 8 930 | 8 192 | 8 192 + 6·62 = 8 564 | 128 460 | 16 666 | 66 667 |
//! | H261CIF | 384 000 | 30 | ⌈1600/1456⌉ = 2 | 48 000 + 60·62 = 51 720 | 32 768 | 32 768 + 23·62 = 34 194 | 1 025 820 | 83 333 | 33 334 |
//! | H263QCIF | 64 000 | 15 | 1 | 8 930 | 8 192 | 8 564 | 128 460 | 16 666 | 66 667 |
//! | H263CIF | 128 000 | 15 | ⌈1066⅔/1456⌉ = 1 | 16 000 + 15·62 = 16 930 | 32 768 | 34 194 | 512 910 | 16 666 | 66 667 |
//!
//! The rates: H.261 is "p × 64 kbit/s" and its Recommendation pairs p = 1 or 2 with QCIF
//! videophones and p ≥ 6 with CIF videoconferencing, so H261QCIF takes p = 1 (64 kbit/s) and
//! H261CIF p = 6 (384 kbit/s). H.263 was made for lower rates; its templates take the smallest
//! level of H.263 Annex X that carries the format — level 10 (QCIF, 64 kbit/s, 15 pictures/s)
//! and level 20 (CIF at 15 pictures/s, 128 kbit/s) — and that level's rate cap. QCIF pictures
//! come at 15/s, CIF at 30/s for H.261; the 29.97 Hz picture clock is rounded up to 30 (so 15),
//! which rounds the rate up by 0.1 %.
//!
//! # Both directions
//!
//! Each template fills `SendingFlowspec` and `ReceivingFlowspec` alike: these are
//! conversational media (H.323 calls), symmetric by nature. `ProviderSpecific` is empty, and
//! `NetworkAvailability` is the default's (the stack overwrites it with the link's state).

use crate::flowspec::{Flowspec, Guarantee, Qos};

/// RTP fixed header (RFC 3550 §5.1), bytes.
const RTP_HEADER: u32 = 12;
/// UDP header (RFC 768), bytes.
const UDP_HEADER: u32 = 8;
/// IPv4 header without options (RFC 791), bytes.
const IPV4_HEADER: u32 = 20;
/// Ethernet header: destination, source, EtherType (IEEE 802.3), bytes.
const ETHERNET_HEADER: u32 = 14;
/// Ethernet frame check sequence, bytes.
const ETHERNET_FCS: u32 = 4;
/// Ethernet's smallest frame, FCS included, bytes.
const ETHERNET_MIN_FRAME: u32 = 64;
/// Ethernet's largest IP packet, bytes.
const ETHERNET_MTU: u32 = 1500;
/// The RTP payload header of H.261 (RFC 4587 §4.1) and H.263 mode A (RFC 2190 §5.1), bytes.
const VIDEO_PAYLOAD_HEADER: u32 = 4;
/// ITU-T G.114's one-way delay budget, µs.
const DELAY_BUDGET_US: u32 = 150_000;
/// Microseconds per second.
const US_PER_S: u64 = 1_000_000;

/// How a template's media flow is made, the inputs of its derivation.
#[derive(Clone, Copy, Debug)]
enum Media {
    /// A constant-rate voice codec: one packet every `packet_time_us`.
    Audio {
        /// Codec bit rate, bit/s.
        bit_rate: u32,
        /// Packet time, µs.
        packet_time_us: u32,
    },
    /// A video codec: `pictures_per_s` pictures, each split into Ethernet-sized RTP packets.
    Video {
        /// Codec bit rate, bit/s.
        bit_rate: u32,
        /// Pictures per second.
        pictures_per_s: u32,
        /// The largest coded picture the Recommendation allows, bits.
        max_picture_bits: u32,
    },
}

/// The templates, in the order [`template_names`] lists them. Inputs are explained in the
/// module docs.
const TEMPLATES: [(&str, Media); 8] = [
    (
        "G711",
        Media::Audio {
            bit_rate: 64_000,
            packet_time_us: 20_000,
        },
    ),
    (
        "G723.1",
        Media::Audio {
            bit_rate: 6_300,
            packet_time_us: 30_000,
        },
    ),
    (
        "G729",
        Media::Audio {
            bit_rate: 8_000,
            packet_time_us: 20_000,
        },
    ),
    (
        "GSM6.10",
        Media::Audio {
            bit_rate: 13_200,
            packet_time_us: 20_000,
        },
    ),
    (
        "H261QCIF",
        Media::Video {
            bit_rate: 64_000,
            pictures_per_s: 15,
            max_picture_bits: 64 * 1024,
        },
    ),
    (
        "H261CIF",
        Media::Video {
            bit_rate: 384_000,
            pictures_per_s: 30,
            max_picture_bits: 256 * 1024,
        },
    ),
    (
        "H263QCIF",
        Media::Video {
            bit_rate: 64_000,
            pictures_per_s: 15,
            max_picture_bits: 64 * 1024,
        },
    ),
    (
        "H263CIF",
        Media::Video {
            bit_rate: 128_000,
            pictures_per_s: 15,
            max_picture_bits: 256 * 1024,
        },
    ),
];

/// The names [`template`] knows, in a fixed order: G711, G723.1, G729, GSM6.10, H261QCIF,
/// H261CIF, H263QCIF, H263CIF (D-15). `WSAGetQOSByName` with an empty name enumerates these.
pub fn template_names() -> &'static [&'static str] {
    const NAMES: [&str; TEMPLATES.len()] = {
        let mut names = [""; TEMPLATES.len()];
        let mut i = 0;
        while i < TEMPLATES.len() {
            names[i] = TEMPLATES[i].0;
            i += 1;
        }
        names
    };
    &NAMES
}

/// The QOS of the template called `name`, compared without regard to ASCII case ("g711"
/// finds "G711", D-15), or `None` for a name that is not a template (`WSAGetQOSByName`
/// returns FALSE). Values and their derivation are in the module docs; the QOS passes
/// [`Qos::validate`].
pub fn template(name: &str) -> Option<Qos> {
    let (_, media) = TEMPLATES
        .iter()
        .find(|(known, _)| known.eq_ignore_ascii_case(name))?;
    let flowspec = derive(*media);
    Some(Qos {
        SendingFlowspec: flowspec,
        ReceivingFlowspec: flowspec,
        ProviderSpecific: Vec::new(),
    })
}

/// A derived value as a flowspec field: every template value is far below `i32::MAX`; were one
/// not, it would read "not specified" rather than wrap.
fn field(value: u64) -> i32 {
    i32::try_from(value).unwrap_or(Flowspec::NOT_SPECIFIED)
}

/// The flowspec a media flow needs (arithmetic in the module docs).
fn derive(media: Media) -> Flowspec {
    let l2_l3_l4 =
        u64::from(RTP_HEADER + UDP_HEADER + IPV4_HEADER + ETHERNET_HEADER + ETHERNET_FCS);
    let budget = u64::from(DELAY_BUDGET_US);
    match media {
        Media::Audio {
            bit_rate,
            packet_time_us,
        } => {
            let (rate, t) = (u64::from(bit_rate), u64::from(packet_time_us).max(1));
            let payload = (rate * t).div_ceil(8 * US_PER_S);
            let frame = (payload + l2_l3_l4).max(u64::from(ETHERNET_MIN_FRAME));
            let token_rate = (frame * US_PER_S).div_ceil(t);
            Flowspec {
                TokenRate: field(token_rate),
                TokenBucketSize: field(2 * frame),
                PeakBandwidth: field(token_rate),
                Latency: field(budget.saturating_sub(2 * t)),
                DelayVariation: field(t),
                LevelOfGuarantee: Guarantee::GuaranteedService,
                ..Flowspec::DEFAULT
            }
        }
        Media::Video {
            bit_rate,
            pictures_per_s,
            max_picture_bits,
        } => {
            let (rate, f) = (u64::from(bit_rate), u64::from(pictures_per_s).max(1));
            let chunk = u64::from(
                ETHERNET_MTU - IPV4_HEADER - UDP_HEADER - RTP_HEADER - VIDEO_PAYLOAD_HEADER,
            );
            let per_packet = l2_l3_l4 + u64::from(VIDEO_PAYLOAD_HEADER);
            let packets_per_picture = rate.div_ceil(8 * f * chunk);
            let token_rate = rate.div_ceil(8) + f * packets_per_picture * per_packet;
            let max_picture = u64::from(max_picture_bits).div_ceil(8);
            let bucket = max_picture + max_picture.div_ceil(chunk) * per_packet;
            Flowspec {
                TokenRate: field(token_rate),
                TokenBucketSize: field(bucket),
                PeakBandwidth: field(bucket * f),
                Latency: field((budget * f).saturating_sub(2 * US_PER_S) / f),
                DelayVariation: field(US_PER_S.div_ceil(f)),
                LevelOfGuarantee: Guarantee::PredictiveService,
                ..Flowspec::DEFAULT
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each template's `TokenRate`, recomputed by hand from the inputs the module docs state,
    /// independently of `derive`: (payload + RTP 12 + UDP 8 + IPv4 20 + Ethernet 14 + FCS 4)
    /// per packet, times packets per second.
    #[test]
    fn token_rates_recomputed_from_documented_inputs() {
        let overhead = 12 + 8 + 20 + 14 + 4;
        let expected: [(&str, i32); 8] = [
            // 64 kbit/s · 20 ms = 160 bytes, 50 packets/s.
            ("G711", (64_000 / 8 / 50 + overhead) * 50),
            // 6.3 kbit/s · 30 ms = 23.625 → 24 bytes, 100/3 packets/s, rounded up.
            ("G723.1", ((24 + overhead) * 100 + 2) / 3),
            // 8 kbit/s · 20 ms = 20 bytes, 50 packets/s.
            ("G729", (8_000 / 8 / 50 + overhead) * 50),
            // 13.2 kbit/s · 20 ms = 33 bytes, 50 packets/s.
            ("GSM6.10", (33 + overhead) * 50),
            // 8 000 bytes/s in 15 one-packet pictures, 4-byte payload header each.
            ("H261QCIF", 64_000 / 8 + 15 * (4 + overhead)),
            // 48 000 bytes/s in 30 pictures of 1 600 bytes = 2 packets each.
            ("H261CIF", 384_000 / 8 + 30 * 2 * (4 + overhead)),
            ("H263QCIF", 64_000 / 8 + 15 * (4 + overhead)),
            // 16 000 bytes/s in 15 pictures of 1 067 bytes = 1 packet each.
            ("H263CIF", 128_000 / 8 + 15 * (4 + overhead)),
        ];
        for (name, token_rate) in expected {
            let q = template(name).unwrap();
            assert_eq!(q.SendingFlowspec.TokenRate, token_rate, "{name}");
        }
        // The numbers the module docs' tables print.
        let rates: Vec<i32> = expected.iter().map(|(_, r)| *r).collect();
        assert_eq!(
            rates,
            [10_900, 2_734, 3_900, 4_550, 8_930, 51_720, 8_930, 16_930]
        );
    }

    /// The whole table, as the module docs print it: `TokenBucketSize`, `PeakBandwidth`,
    /// `Latency`, `DelayVariation` and the service type.
    #[test]
    fn template_table() {
        let g = Guarantee::GuaranteedService;
        let p = Guarantee::PredictiveService;
        let table: [(&str, i32, i32, i32, i32, Guarantee); 8] = [
            ("G711", 436, 10_900, 110_000, 20_000, g),
            ("G723.1", 164, 2_734, 90_000, 30_000, g),
            ("G729", 156, 3_900, 110_000, 20_000, g),
            ("GSM6.10", 182, 4_550, 110_000, 20_000, g),
            ("H261QCIF", 8_564, 128_460, 16_666, 66_667, p),
            ("H261CIF", 34_194, 1_025_820, 83_333, 33_334, p),
            ("H263QCIF", 8_564, 128_460, 16_666, 66_667, p),
            ("H263CIF", 34_194, 512_910, 16_666, 66_667, p),
        ];
        for (name, bucket, peak, latency, jitter, level) in table {
            let f = template(name).unwrap().SendingFlowspec;
            assert_eq!(
                (
                    f.TokenBucketSize,
                    f.PeakBandwidth,
                    f.Latency,
                    f.DelayVariation,
                    f.LevelOfGuarantee
                ),
                (bucket, peak, latency, jitter, level),
                "{name}"
            );
            assert_eq!(f.CostOfCall, 0, "{name}");
        }
    }

    #[test]
    fn every_template_is_valid_and_symmetric() {
        for name in template_names() {
            let q = template(name).unwrap();
            assert_eq!(q.validate(), Ok(()), "{name}");
            assert_eq!(q.SendingFlowspec, q.ReceivingFlowspec, "{name}");
            assert!(q.ProviderSpecific.is_empty(), "{name}");
            let f = q.SendingFlowspec;
            // A frame and its successor fit the bucket; the peak is never below the rate.
            assert!(f.PeakBandwidth >= f.TokenRate, "{name}");
            assert!(f.Latency > 0 && f.DelayVariation > 0, "{name}");
        }
    }

    #[test]
    fn names_are_the_d15_list_and_lookup_ignores_case() {
        assert_eq!(
            template_names(),
            ["G711", "G723.1", "G729", "GSM6.10", "H261QCIF", "H261CIF", "H263QCIF", "H263CIF"]
        );
        assert_eq!(template("g711"), template("G711"));
        assert_eq!(template("h263cif"), template("H263CIF"));
        assert_eq!(template("gsm6.10"), template("GSM6.10"));
        assert!(template("G711").is_some());
    }

    #[test]
    fn unknown_names_find_nothing() {
        for name in ["", "G.711", "G711 ", "G7111", "H264", "G72", "\u{0130}G711"] {
            assert_eq!(template(name), None, "{name:?}");
        }
    }

    /// Audio uses exactly the constant-rate relations the module docs claim.
    #[test]
    fn audio_relations_hold() {
        for name in ["G711", "G723.1", "G729", "GSM6.10"] {
            let f = template(name).unwrap().SendingFlowspec;
            assert_eq!(f.PeakBandwidth, f.TokenRate, "{name}");
            assert_eq!(f.Latency, 150_000 - 2 * f.DelayVariation, "{name}");
            // Two frames of at least Ethernet's minimum.
            assert!(f.TokenBucketSize >= 2 * 64, "{name}");
            assert_eq!(f.TokenBucketSize % 2, 0, "{name}");
        }
    }
}
