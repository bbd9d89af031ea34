//! What the tests read from frames on the wire, captured by `tcpdump` or read off a virtual
//! switch ([`crate::capture`]): RFC 791 IPv4, RFC 768 UDP and RFC 9293 TCP headers for the
//! shaping measurements (in-process `qos_shaping.rs`, kernel `kernel_shaping.rs`), and IGMP
//! (RFC 2236, RFC 3376) for the multicast tests (`winsock_multicast.rs`,
//! `rust_face_multicast.rs`, `kernel_multicast.rs`).

use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::Duration;

use ws2_stack::winsock::{ControlledLoadService, GuaranteedService, PredictiveService, GUARANTEE};

use crate::capture::Frame;

/// The headers of one IPv4 UDP or TCP frame (Ethernet header first).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Headers {
    /// DSCP of the IP header.
    pub dscp: u8,
    /// IP protocol (6 or 17).
    pub proto: u8,
    /// Source address and port.
    pub src: SocketAddrV4,
    /// Destination address and port.
    pub dst: SocketAddrV4,
    /// TCP sequence number (0 for UDP).
    pub seq: u32,
    /// Transport payload bytes (for TCP, SYN and FIN count one each, as in sequence space).
    pub seq_len: u32,
    /// TCP SYN flag.
    pub syn: bool,
    /// Where the transport payload starts in the frame.
    pub payload: usize,
}

/// Reads the headers of an Ethernet frame carrying IPv4 UDP or TCP; `None` for anything else
/// or a frame too short to hold them.
pub fn ipv4_headers(frame: &[u8]) -> Option<Headers> {
    if frame.len() < 34 || frame[12..14] != [0x08, 0x00] {
        return None;
    }
    let ip = &frame[14..];
    let ihl = usize::from(ip[0] & 0x0f) * 4;
    let total = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
    let proto = ip[9];
    let src_ip = Ipv4Addr::new(ip[12], ip[13], ip[14], ip[15]);
    let dst_ip = Ipv4Addr::new(ip[16], ip[17], ip[18], ip[19]);
    let l4 = ip.get(ihl..)?;
    if l4.len() < 8 {
        return None;
    }
    let sport = u16::from_be_bytes([l4[0], l4[1]]);
    let dport = u16::from_be_bytes([l4[2], l4[3]]);
    let (seq, seq_len, syn, offset) = match proto {
        6 => {
            if l4.len() < 20 {
                return None;
            }
            let seq = u32::from_be_bytes([l4[4], l4[5], l4[6], l4[7]]);
            let off = usize::from(l4[12] >> 4) * 4;
            let flags = l4[13];
            let payload = total.saturating_sub(ihl + off) as u32;
            let syn_fin = u32::from(flags & 0x02 != 0) + u32::from(flags & 0x01 != 0);
            (seq, payload + syn_fin, flags & 0x02 != 0, off)
        }
        17 => (0, total.saturating_sub(ihl + 8) as u32, false, 8),
        _ => return None,
    };
    Some(Headers {
        dscp: ip[1] >> 2,
        proto,
        src: SocketAddrV4::new(src_ip, sport),
        dst: SocketAddrV4::new(dst_ip, dport),
        seq,
        seq_len,
        syn,
        payload: (14 + ihl + offset).min(frame.len()),
    })
}

/// The most bytes in any closed interval `w_ns` long (a window anchored at each frame), for
/// frames in time order with their timestamps (ns) and counted lengths.
pub fn max_in_window<T>(
    frames: &[T],
    w_ns: u64,
    at_ns: impl Fn(&T) -> u64,
    len: impl Fn(&T) -> usize,
) -> usize {
    let (mut j, mut sum, mut best) = (0, 0usize, 0usize);
    for i in 0..frames.len() {
        while j < frames.len() && at_ns(&frames[j]).saturating_sub(at_ns(&frames[i])) <= w_ns {
            sum += len(&frames[j]);
            j += 1;
        }
        best = best.max(sum);
        sum -= len(&frames[i]);
    }
    best
}

/// Indices of the TCP segments (`(seq, seq_len)` in arrival order) whose sequence range was
/// (partly) seen before: retransmissions, as the receiver sees them.
pub fn retransmitted(segments: impl IntoIterator<Item = (u32, u32)>) -> Vec<usize> {
    let mut high: Option<u32> = None;
    let mut out = Vec::new();
    for (i, (seq, len)) in segments.into_iter().enumerate() {
        if len == 0 {
            continue;
        }
        let end = seq.wrapping_add(len);
        if high.is_some_and(|h| (seq.wrapping_sub(h) as i32) < 0) {
            out.push(i);
        }
        if high.is_none_or(|h| (end.wrapping_sub(h) as i32) > 0) {
            high = Some(end);
        }
    }
    out
}

/// The DSCP the shaper writes for a service type (`ws2_qos::Class::dscp`: EF, AF41, AF31, 0).
pub fn dscp_of(g: GUARANTEE) -> u8 {
    if g == GuaranteedService {
        46
    } else if g == PredictiveService {
        34
    } else if g == ControlledLoadService {
        26
    } else {
        0
    }
}

// ---------------------------------------------------------------------------------------------
// Reading IGMP (RFC 2236, RFC 3376) and IPv4 from frames, captured by `tcpdump` or read off a
// virtual switch. An independent reader, so that the tests do not check the stack's IGMP against
// the stack's own parser.

/// RFC 3376 §4.2.12 record types.
pub const MODE_IS_INCLUDE: u8 = 1;
/// `MODE_IS_EXCLUDE`.
pub const MODE_IS_EXCLUDE: u8 = 2;
/// `CHANGE_TO_INCLUDE_MODE`.
pub const CHANGE_TO_INCLUDE: u8 = 3;
/// `CHANGE_TO_EXCLUDE_MODE`.
pub const CHANGE_TO_EXCLUDE: u8 = 4;
/// `ALLOW_NEW_SOURCES`.
pub const ALLOW_NEW_SOURCES: u8 = 5;
/// `BLOCK_OLD_SOURCES`.
pub const BLOCK_OLD_SOURCES: u8 = 6;

/// The IPv4 header fields the multicast tests look at, and where the payload starts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ip {
    /// Ethernet source.
    pub src_mac: [u8; 6],
    /// Ethernet destination.
    pub dst_mac: [u8; 6],
    /// IP source.
    pub src: Ipv4Addr,
    /// IP destination.
    pub dst: Ipv4Addr,
    /// Time to live.
    pub ttl: u8,
    /// IP protocol.
    pub proto: u8,
    /// The options field holds the Router Alert option (RFC 2113: `94 04 00 00`).
    pub router_alert: bool,
    /// The header checksum is right.
    pub header_ok: bool,
    /// Where the IP payload starts in the frame, and where it ends (IP total length).
    pub payload: std::ops::Range<usize>,
}

/// The IPv4 header of an Ethernet frame; `None` for anything else or a frame too short.
pub fn ipv4_of(frame: &[u8]) -> Option<Ip> {
    if frame.len() < 34 || frame[12..14] != [0x08, 0x00] {
        return None;
    }
    let ip = &frame[14..];
    let ihl = usize::from(ip[0] & 0x0f) * 4;
    let total = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
    if ip[0] >> 4 != 4 || ihl < 20 || ip.len() < total || total < ihl {
        return None;
    }
    let options = &ip[20..ihl];
    let mut router_alert = false;
    let mut i = 0;
    while i < options.len() {
        match options[i] {
            0 => break,
            1 => i += 1,
            kind => {
                let len = usize::from(*options.get(i + 1)?);
                if len < 2 || i + len > options.len() {
                    return None;
                }
                if kind == 0x94 && options[i..i + len] == [0x94, 0x04, 0x00, 0x00] {
                    router_alert = true;
                }
                i += len;
            }
        }
    }
    let mut src_mac = [0u8; 6];
    let mut dst_mac = [0u8; 6];
    dst_mac.copy_from_slice(&frame[0..6]);
    src_mac.copy_from_slice(&frame[6..12]);
    Some(Ip {
        src_mac,
        dst_mac,
        src: Ipv4Addr::new(ip[12], ip[13], ip[14], ip[15]),
        dst: Ipv4Addr::new(ip[16], ip[17], ip[18], ip[19]),
        ttl: ip[8],
        proto: ip[9],
        router_alert,
        header_ok: internet_checksum(&ip[..ihl]) == 0,
        payload: 14 + ihl..14 + total,
    })
}

/// The one's-complement sum of `data` (RFC 1071), folded and inverted: 0 over a block whose
/// checksum field is right.
pub fn internet_checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    for chunk in data.chunks(2) {
        let word = u16::from_be_bytes([chunk[0], *chunk.get(1).unwrap_or(&0)]);
        sum += u32::from(word);
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// One group record of an IGMPv3 report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupRecord {
    /// Record type ([`MODE_IS_INCLUDE`] …).
    pub kind: u8,
    /// Multicast address.
    pub group: Ipv4Addr,
    /// Source list.
    pub sources: Vec<Ipv4Addr>,
}

impl GroupRecord {
    /// `CHANGE_TO_INCLUDE {}`: the sender leaves the group (RFC 3376 §5.1).
    pub fn is_leave(&self) -> bool {
        self.kind == CHANGE_TO_INCLUDE && self.sources.is_empty()
    }
}

/// An IGMP message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Igmp {
    /// A membership query (0x11): version 1 (Max Resp Code 0, 8 bytes), 2 (8 bytes) or 3
    /// (12 bytes or more). `group` unspecified = general query.
    Query {
        /// 1, 2 or 3, by RFC 3376 §7.1.
        version: u8,
        /// Decoded Max Resp Time.
        max_resp: Duration,
        /// Group address (0.0.0.0 for a general query).
        group: Ipv4Addr,
        /// Sources of a group-and-source-specific query (v3).
        sources: Vec<Ipv4Addr>,
    },
    /// An IGMPv1 report (0x12).
    ReportV1(Ipv4Addr),
    /// An IGMPv2 report (0x16).
    ReportV2(Ipv4Addr),
    /// An IGMPv2 leave (0x17).
    Leave(Ipv4Addr),
    /// An IGMPv3 report (0x22).
    ReportV3(Vec<GroupRecord>),
    /// Any other type, or a message too short for its type.
    Other(u8),
}

impl Igmp {
    /// Whether this is a report of any version (v1, v2, v3) naming `group`.
    pub fn reports(&self, group: Ipv4Addr) -> bool {
        match self {
            Igmp::ReportV1(g) | Igmp::ReportV2(g) => *g == group,
            Igmp::ReportV3(records) => records.iter().any(|r| r.group == group),
            _ => false,
        }
    }

    /// Whether this is a report of any version.
    pub fn is_report(&self) -> bool {
        matches!(
            self,
            Igmp::ReportV1(_) | Igmp::ReportV2(_) | Igmp::ReportV3(_)
        )
    }

    /// Whether this message keeps or starts a membership of `group`: a v1 or v2 report naming
    /// it, or a v3 record for it of any type but `BLOCK_OLD_SOURCES` and `CHANGE_TO_INCLUDE {}`
    /// (the v3 leave, RFC 3376 §5.1).
    pub fn joins(&self, group: Ipv4Addr) -> bool {
        match self {
            Igmp::ReportV1(g) | Igmp::ReportV2(g) => *g == group,
            Igmp::ReportV3(records) => records.iter().any(|r| {
                r.group == group
                    && (MODE_IS_INCLUDE..=ALLOW_NEW_SOURCES).contains(&r.kind)
                    && !r.is_leave()
            }),
            _ => false,
        }
    }

    /// Whether this message gives up `group`: a v2 leave naming it, or a v3
    /// `CHANGE_TO_INCLUDE {}` record for it.
    pub fn leaves(&self, group: Ipv4Addr) -> bool {
        match self {
            Igmp::Leave(g) => *g == group,
            Igmp::ReportV3(records) => records.iter().any(|r| r.group == group && r.is_leave()),
            _ => false,
        }
    }

    /// The IGMP version the message belongs to (a leave is v2's); `None` for an unknown type.
    pub fn version(&self) -> Option<u8> {
        match self {
            Igmp::Query { version, .. } => Some(*version),
            Igmp::ReportV1(_) => Some(1),
            Igmp::ReportV2(_) | Igmp::Leave(_) => Some(2),
            Igmp::ReportV3(_) => Some(3),
            Igmp::Other(_) => None,
        }
    }
}

/// An IGMP message and the IPv4 header that carried it.
#[derive(Clone, Debug)]
pub struct IgmpPacket {
    /// Its IPv4 header.
    pub ip: Ip,
    /// The IGMP checksum is right.
    pub checksum_ok: bool,
    /// The message.
    pub msg: Igmp,
}

/// One captured IGMP frame, read: an [`IgmpPacket`] and its capture timestamp.
#[derive(Clone, Debug)]
pub struct IgmpFrame {
    /// Capture timestamp, nanoseconds.
    pub at: u64,
    /// Its IPv4 header.
    pub ip: Ip,
    /// The IGMP checksum is right.
    pub checksum_ok: bool,
    /// The message.
    pub msg: Igmp,
}

/// Decodes an RFC 3376 §4.1.1 Max Resp Code (same as RFC 2236 for codes below 128) in tenths
/// of a second.
pub fn max_resp_time(code: u8) -> Duration {
    let tenths = if code < 128 {
        u32::from(code)
    } else {
        let mant = u32::from(code & 0x0f);
        let exp = u32::from((code >> 4) & 0x07);
        (mant | 0x10) << (exp + 3)
    };
    Duration::from_millis(u64::from(tenths) * 100)
}

/// The IGMP message in the captured `frame`; `None` if it carries none.
pub fn igmp_of(frame: &Frame) -> Option<IgmpFrame> {
    let IgmpPacket {
        ip,
        checksum_ok,
        msg,
    } = igmp_in(&frame.data)?;
    Some(IgmpFrame {
        at: frame.at,
        ip,
        checksum_ok,
        msg,
    })
}

/// Whether the Ethernet frame `frame` carries an IGMP message that joins `group`
/// ([`Igmp::joins`]).
pub fn joins(frame: &[u8], group: Ipv4Addr) -> bool {
    igmp_in(frame).is_some_and(|p| p.msg.joins(group))
}

/// Whether the Ethernet frame `frame` carries an IGMP message that leaves `group`
/// ([`Igmp::leaves`]).
pub fn leaves(frame: &[u8], group: Ipv4Addr) -> bool {
    igmp_in(frame).is_some_and(|p| p.msg.leaves(group))
}

/// The IGMP message in the Ethernet frame `frame`; `None` if it carries none.
pub fn igmp_in(frame: &[u8]) -> Option<IgmpPacket> {
    let ip = ipv4_of(frame)?;
    if ip.proto != 2 {
        return None;
    }
    let m = &frame[ip.payload.clone()];
    if m.len() < 8 {
        return None;
    }
    let addr = |i: usize| Ipv4Addr::new(m[i], m[i + 1], m[i + 2], m[i + 3]);
    let msg = match m[0] {
        0x11 if m.len() == 8 => Igmp::Query {
            version: if m[1] == 0 { 1 } else { 2 },
            max_resp: max_resp_time(m[1]),
            group: addr(4),
            sources: Vec::new(),
        },
        0x11 if m.len() >= 12 => {
            let n = usize::from(u16::from_be_bytes([m[10], m[11]]));
            let sources = (0..n)
                .map(|k| 12 + 4 * k)
                .take_while(|&i| i + 4 <= m.len())
                .map(addr)
                .collect();
            Igmp::Query {
                version: 3,
                max_resp: max_resp_time(m[1]),
                group: addr(4),
                sources,
            }
        }
        0x12 => Igmp::ReportV1(addr(4)),
        0x16 => Igmp::ReportV2(addr(4)),
        0x17 => Igmp::Leave(addr(4)),
        0x22 => {
            let count = usize::from(u16::from_be_bytes([m[6], m[7]]));
            let mut records = Vec::with_capacity(count);
            let mut i = 8;
            for _ in 0..count {
                if i + 8 > m.len() {
                    break;
                }
                let aux = usize::from(m[i + 1]) * 4;
                let n = usize::from(u16::from_be_bytes([m[i + 2], m[i + 3]]));
                if i + 8 + 4 * n + aux > m.len() {
                    break;
                }
                records.push(GroupRecord {
                    kind: m[i],
                    group: addr(i + 4),
                    sources: (0..n).map(|k| addr(i + 8 + 4 * k)).collect(),
                });
                i += 8 + 4 * n + aux;
            }
            Igmp::ReportV3(records)
        }
        t => Igmp::Other(t),
    };
    Some(IgmpPacket {
        checksum_ok: internet_checksum(m) == 0,
        ip,
        msg,
    })
}

/// The UDP datagrams in `frames` from `src` to `dst`: (IP header, payload bytes).
pub fn udp_datagrams(
    frames: &[Frame],
    src: Option<SocketAddrV4>,
    dst: SocketAddrV4,
) -> Vec<(Ip, Vec<u8>)> {
    frames
        .iter()
        .filter_map(|f| {
            let ip = ipv4_of(&f.data)?;
            if ip.proto != 17 || ip.payload.len() < 8 {
                return None;
            }
            let u = &f.data[ip.payload.clone()];
            let sport = u16::from_be_bytes([u[0], u[1]]);
            let dport = u16::from_be_bytes([u[2], u[3]]);
            let from = SocketAddrV4::new(ip.src, sport);
            let to = SocketAddrV4::new(ip.dst, dport);
            if to != dst || src.is_some_and(|s| s != from) {
                return None;
            }
            let payload = u[8..].to_vec();
            Some((ip, payload))
        })
        .collect()
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn max_resp_codes() {
        assert_eq!(max_resp_time(4), Duration::from_millis(400));
        assert_eq!(max_resp_time(100), Duration::from_secs(10));
        // 0x80: exp 0, mant 0 -> 16 << 3 = 128 tenths.
        assert_eq!(max_resp_time(0x80), Duration::from_millis(12_800));
    }

    #[test]
    fn v3_report_with_router_alert() {
        // Ethernet + IPv4 (RA option, TTL 1) + IGMPv3 report: one CHANGE_TO_EXCLUDE {} record.
        let mut f = vec![
            0x01, 0x00, 0x5e, 0x00, 0x00, 0x16, 2, 0x57, 0x32, 77, 40, 2, 8, 0,
        ];
        let mut ip = vec![
            0x46, 0xc0, 0, 40, 0, 0, 0x40, 0, 1, 2, 0, 0, 10, 77, 40, 2, 224, 0, 0, 22, 0x94, 4, 0,
            0,
        ];
        let c = internet_checksum(&ip);
        ip[10..12].copy_from_slice(&c.to_be_bytes());
        let mut igmp = vec![0x22, 0, 0, 0, 0, 0, 0, 1, 4, 0, 0, 0, 239, 1, 2, 3];
        let c = internet_checksum(&igmp);
        igmp[2..4].copy_from_slice(&c.to_be_bytes());
        f.extend(ip);
        f.extend(igmp);
        let got = igmp_in(&f).expect("an IGMP frame");
        assert!(got.ip.router_alert && got.ip.header_ok && got.checksum_ok);
        assert_eq!(got.ip.ttl, 1);
        assert_eq!(
            got.msg,
            Igmp::ReportV3(vec![GroupRecord {
                kind: CHANGE_TO_EXCLUDE,
                group: Ipv4Addr::new(239, 1, 2, 3),
                sources: vec![]
            }])
        );
    }
}
