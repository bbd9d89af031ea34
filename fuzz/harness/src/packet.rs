//! Frame builders for the fuzz templates: Ethernet II (IEEE 802.3 §3.2, type field), ARP
//! (RFC 826), IPv4 with options and fragments (RFC 791 §3.1, §3.2), TCP (RFC 9293 §3.1),
//! UDP (RFC 768), ICMP (RFC 792), IGMPv1/v2/v3 (RFC 1112 App. I, RFC 2236 §2, RFC 3376 §4),
//! and the Internet checksum (RFC 1071).
//!
//! Builders write well-formed headers from the fields a template picks; [`fix`] recomputes
//! lengths and checksums after byte edits so that a mutated frame can still get past them.

use std::net::Ipv4Addr;

/// EtherType IPv4.
pub const ETH_IPV4: u16 = 0x0800;
/// EtherType ARP.
pub const ETH_ARP: u16 = 0x0806;
/// Length of an Ethernet II header.
pub const ETH_LEN: usize = 14;
/// The longest frame a 1500-byte link carries without FCS (plus a VLAN tag's worth of slack).
pub const MAX_FRAME: usize = 1518;

/// The RFC 1071 one's-complement sum of `data`, folded, not yet complemented, added to `acc`.
pub fn sum(mut acc: u32, data: &[u8]) -> u32 {
    let mut chunks = data.chunks_exact(2);
    for c in &mut chunks {
        acc += u32::from(u16::from_be_bytes([c[0], c[1]]));
    }
    if let [last] = chunks.remainder() {
        acc += u32::from(*last) << 8;
    }
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    acc
}

/// The Internet checksum of `data` starting from `acc`.
pub fn checksum(acc: u32, data: &[u8]) -> u16 {
    !(sum(acc, data) as u16)
}

/// The TCP/UDP pseudo-header sum (RFC 9293 §3.1, RFC 768).
pub fn pseudo(src: [u8; 4], dst: [u8; 4], proto: u8, len: usize) -> u32 {
    let mut acc = sum(0, &src);
    acc = sum(acc, &dst);
    sum(acc, &[0, proto, (len >> 8) as u8, len as u8])
}

/// An Ethernet II header and `payload`.
pub fn eth(dst: [u8; 6], src: [u8; 6], ty: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(ETH_LEN + payload.len());
    f.extend_from_slice(&dst);
    f.extend_from_slice(&src);
    f.extend_from_slice(&ty.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// An ARP packet for Ethernet/IPv4 (RFC 826).
pub fn arp(op: u16, sha: [u8; 6], spa: Ipv4Addr, tha: [u8; 6], tpa: Ipv4Addr) -> Vec<u8> {
    let mut p = vec![0, 1, 8, 0, 6, 4];
    p.extend_from_slice(&op.to_be_bytes());
    p.extend_from_slice(&sha);
    p.extend_from_slice(&spa.octets());
    p.extend_from_slice(&tha);
    p.extend_from_slice(&tpa.octets());
    p
}

/// The fields of one IPv4 header (RFC 791 §3.1).
#[derive(Clone, Debug)]
pub struct Ip {
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    pub proto: u8,
    pub id: u16,
    pub ttl: u8,
    pub tos: u8,
    pub df: bool,
    pub mf: bool,
    /// Fragment offset in 8-byte units (13 bits).
    pub offset: u16,
    /// Options, padded with EOL to a multiple of 4 and cut at 40 bytes.
    pub options: Vec<u8>,
}

impl Ip {
    /// A plain header from `src` to `dst` for `proto`.
    pub fn new(src: Ipv4Addr, dst: Ipv4Addr, proto: u8) -> Ip {
        Ip {
            src,
            dst,
            proto,
            id: 0x5732,
            ttl: 64,
            tos: 0,
            df: false,
            mf: false,
            offset: 0,
            options: Vec::new(),
        }
    }

    /// The header followed by `payload`, with its checksum.
    pub fn packet(&self, payload: &[u8]) -> Vec<u8> {
        let mut opts = self.options.clone();
        opts.truncate(40);
        while opts.len() % 4 != 0 {
            opts.push(0);
        }
        let hl = 20 + opts.len();
        let total = (hl + payload.len()).min(0xffff);
        let mut h = Vec::with_capacity(total);
        h.push(0x40 | (hl / 4) as u8);
        h.push(self.tos);
        h.extend_from_slice(&(total as u16).to_be_bytes());
        h.extend_from_slice(&self.id.to_be_bytes());
        let frag = (u16::from(self.df) << 14) | (u16::from(self.mf) << 13) | (self.offset & 0x1fff);
        h.extend_from_slice(&frag.to_be_bytes());
        h.push(self.ttl);
        h.push(self.proto);
        h.extend_from_slice(&[0, 0]);
        h.extend_from_slice(&self.src.octets());
        h.extend_from_slice(&self.dst.octets());
        h.extend_from_slice(&opts);
        let c = checksum(0, &h);
        h[10..12].copy_from_slice(&c.to_be_bytes());
        h.extend_from_slice(&payload[..total - hl]);
        h
    }
}

/// The fields of one TCP segment (RFC 9293 §3.1).
#[derive(Clone, Debug)]
pub struct Tcp {
    pub sport: u16,
    pub dport: u16,
    pub seq: u32,
    pub ack: u32,
    /// CWR ECE URG ACK PSH RST SYN FIN, low bits.
    pub flags: u8,
    pub window: u16,
    pub urgent: u16,
    /// Options, padded with EOL to a multiple of 4 and cut at 40 bytes.
    pub options: Vec<u8>,
}

/// TCP flag bits.
pub const FIN: u8 = 0x01;
pub const SYN: u8 = 0x02;
pub const RST: u8 = 0x04;
pub const PSH: u8 = 0x08;
pub const ACK: u8 = 0x10;
pub const URG: u8 = 0x20;

impl Tcp {
    /// The segment with `payload`, checksummed for `src` → `dst`.
    pub fn segment(&self, src: Ipv4Addr, dst: Ipv4Addr, payload: &[u8]) -> Vec<u8> {
        let mut opts = self.options.clone();
        opts.truncate(40);
        while opts.len() % 4 != 0 {
            opts.push(0);
        }
        let hl = 20 + opts.len();
        let mut s = Vec::with_capacity(hl + payload.len());
        s.extend_from_slice(&self.sport.to_be_bytes());
        s.extend_from_slice(&self.dport.to_be_bytes());
        s.extend_from_slice(&self.seq.to_be_bytes());
        s.extend_from_slice(&self.ack.to_be_bytes());
        s.push(((hl / 4) as u8) << 4);
        s.push(self.flags);
        s.extend_from_slice(&self.window.to_be_bytes());
        s.extend_from_slice(&[0, 0]);
        s.extend_from_slice(&self.urgent.to_be_bytes());
        s.extend_from_slice(&opts);
        s.extend_from_slice(payload);
        let c = checksum(pseudo(src.octets(), dst.octets(), 6, s.len()), &s);
        s[16..18].copy_from_slice(&c.to_be_bytes());
        s
    }
}

/// A UDP datagram (RFC 768) with its checksum.
pub fn udp(src: Ipv4Addr, dst: Ipv4Addr, sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let len = 8 + payload.len();
    let mut d = Vec::with_capacity(len);
    d.extend_from_slice(&sport.to_be_bytes());
    d.extend_from_slice(&dport.to_be_bytes());
    d.extend_from_slice(&(len as u16).to_be_bytes());
    d.extend_from_slice(&[0, 0]);
    d.extend_from_slice(payload);
    let c = match checksum(pseudo(src.octets(), dst.octets(), 17, len), &d) {
        0 => 0xffff,
        c => c,
    };
    d[6..8].copy_from_slice(&c.to_be_bytes());
    d
}

/// An ICMP message (RFC 792): type, code, the 4-byte rest of header and `body`.
pub fn icmp(ty: u8, code: u8, rest: [u8; 4], body: &[u8]) -> Vec<u8> {
    let mut m = vec![ty, code, 0, 0];
    m.extend_from_slice(&rest);
    m.extend_from_slice(body);
    let c = checksum(0, &m);
    m[2..4].copy_from_slice(&c.to_be_bytes());
    m
}

/// An IGMP message: `head` (type, max response code, 2 checksum bytes, ...) and the rest, with
/// the checksum over the whole message (RFC 2236 §2.3, RFC 3376 §4.1.2).
pub fn igmp(mut m: Vec<u8>) -> Vec<u8> {
    if m.len() >= 4 {
        m[2] = 0;
        m[3] = 0;
        let c = checksum(0, &m);
        m[2..4].copy_from_slice(&c.to_be_bytes());
    }
    m
}

/// How much of a frame [`fix`] repairs after byte edits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fix {
    /// Nothing: the edited bytes go as they are.
    None,
    /// The IPv4 header checksum and, for an unfragmented datagram, the transport checksum.
    Checksums,
    /// The IPv4 total length from the frame's length, then the checksums.
    Lengths,
}

/// Repairs an IPv4 frame's length and checksums as `how` says; other frames are left alone.
pub fn fix(frame: &mut [u8], how: Fix) {
    if how == Fix::None || frame.len() < ETH_LEN + 20 {
        return;
    }
    if u16::from_be_bytes([frame[12], frame[13]]) != ETH_IPV4 {
        return;
    }
    let ip = &mut frame[ETH_LEN..];
    let hl = usize::from(ip[0] & 0x0f) * 4;
    if hl < 20 || hl > ip.len() {
        return;
    }
    if how == Fix::Lengths {
        let total = ip.len().min(0xffff) as u16;
        ip[2..4].copy_from_slice(&total.to_be_bytes());
    }
    let total = usize::from(u16::from_be_bytes([ip[2], ip[3]])).min(ip.len());
    ip[10] = 0;
    ip[11] = 0;
    let c = checksum(0, &ip[..hl]);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    let frag = u16::from_be_bytes([ip[6], ip[7]]);
    if frag & 0x3fff != 0 || total < hl {
        return;
    }
    let (src, dst) = (
        [ip[12], ip[13], ip[14], ip[15]],
        [ip[16], ip[17], ip[18], ip[19]],
    );
    let proto = ip[9];
    let body = &mut ip[hl..total];
    let at = match proto {
        1 | 2 => 2,
        6 => 16,
        17 => 6,
        _ => return,
    };
    if body.len() < at + 2 {
        return;
    }
    if how == Fix::Lengths && proto == 17 {
        let l = body.len() as u16;
        body[4..6].copy_from_slice(&l.to_be_bytes());
    }
    body[at] = 0;
    body[at + 1] = 0;
    let acc = match proto {
        6 | 17 => pseudo(src, dst, proto, body.len()),
        _ => 0,
    };
    let mut c = checksum(acc, body);
    if proto == 17 && c == 0 {
        c = 0xffff;
    }
    body[at..at + 2].copy_from_slice(&c.to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 1071 §3's worked example: the sum of 00 01 f2 03 f4 f5 f6 f7 is ddf2.
    #[test]
    fn rfc1071_example() {
        assert_eq!(
            sum(0, &[0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]),
            0xddf2
        );
    }

    /// A header built here checks out: its checksum over itself is zero (RFC 791 §3.1), and
    /// `fix` rewrites the same value.
    #[test]
    fn ip_checksum_verifies_and_fix_keeps_it() {
        let src = Ipv4Addr::new(10, 0, 0, 2);
        let dst = Ipv4Addr::new(10, 0, 0, 1);
        let seg = Tcp {
            sport: 1,
            dport: 2,
            seq: 3,
            ack: 4,
            flags: ACK,
            window: 100,
            urgent: 0,
            options: vec![1, 1, 1],
        }
        .segment(src, dst, b"data");
        let pkt = Ip::new(src, dst, 6).packet(&seg);
        assert_eq!(checksum(0, &pkt[..20]), 0);
        assert_eq!(
            checksum(pseudo(src.octets(), dst.octets(), 6, seg.len()), &seg),
            0
        );
        let mut f = eth([1; 6], [2; 6], ETH_IPV4, &pkt);
        let before = f.clone();
        fix(&mut f, Fix::Lengths);
        assert_eq!(f, before);
    }
}
