//! What the shaping tests read from captured frames (RFC 791 IPv4, RFC 768 UDP, RFC 9293 TCP
//! headers), shared by the in-process (`qos_shaping.rs`) and the kernel (`kernel_shaping.rs`)
//! measurements.

use std::net::{Ipv4Addr, SocketAddrV4};

use ws2_stack::winsock::{ControlledLoadService, GuaranteedService, PredictiveService, GUARANTEE};

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
