//! Frame templates, one family per target, each built from fields the fuzz input picks:
//! ARP (RFC 826), IPv4 options (RFC 791 §3.1, RFC 2113 router alert) and fragments (RFC 791
//! §3.2, RFC 815), TCP flags, URG and options (RFC 9293 §3.1–§3.2, RFC 7323, RFC 2018,
//! RFC 6093), ICMP errors quoting A's own datagrams (RFC 792, RFC 1122 §3.2.2), IGMPv1/v2/v3
//! queries and reports (RFC 1112, RFC 2236 §2, RFC 3376 §4.1, §4.2).
//!
//! A template knows the LAN ([`Ctx`]): sequence numbers are relative to what A last sent on
//! the target connection, quotes are A's real datagrams. `i` is the index of the frame within
//! a repeated step; templates use it to walk fragment offsets, sequence numbers, source ports
//! or addresses (a flood from many hosts).

use std::net::Ipv4Addr;

use arbitrary::Arbitrary;

use crate::lan::{self, SeqView, A, ATTACKER, B, GROUP, MCAST_PORT, TARGET_PORT, UDP_PORT};
use crate::packet::{self, Ip, Tcp, ETH_ARP, ETH_IPV4};

/// What a template may look at.
#[derive(Debug)]
pub struct Ctx {
    /// The target connection as A's last segment shows it.
    pub seq: SeqView,
    /// A's recent IPv4 datagrams, oldest first.
    pub sent: Vec<Vec<u8>>,
}

/// An IPv4 address a template names.
#[derive(Arbitrary, Clone, Copy, Debug)]
pub enum Addr {
    A,
    B,
    Attacker,
    /// 10.0.0.x, x picked.
    Host(u8),
    /// 10.0.0.(x + i): a different host for each repeat.
    Hosts(u8),
    /// 255.255.255.255.
    Broadcast,
    /// 10.0.0.255.
    SubnetBroadcast,
    /// A's group.
    Group,
    /// 224.0.0.1.
    AllHosts,
    Zero,
    Loopback,
    Other([u8; 4]),
}

impl Addr {
    /// The address for repeat `i`.
    pub fn ip(self, i: u32) -> Ipv4Addr {
        match self {
            Addr::A => A,
            Addr::B => B,
            Addr::Attacker => ATTACKER,
            Addr::Host(x) => Ipv4Addr::new(10, 0, 0, x),
            Addr::Hosts(x) => {
                let n = u32::from(x) + i;
                Ipv4Addr::new(10, 0, (n >> 8) as u8, n as u8)
            }
            Addr::Broadcast => Ipv4Addr::BROADCAST,
            Addr::SubnetBroadcast => Ipv4Addr::new(10, 0, 0, 255),
            Addr::Group => GROUP,
            Addr::AllHosts => Ipv4Addr::new(224, 0, 0, 1),
            Addr::Zero => Ipv4Addr::UNSPECIFIED,
            Addr::Loopback => Ipv4Addr::LOCALHOST,
            Addr::Other(o) => Ipv4Addr::from(o),
        }
    }
}

/// The Ethernet destination of a frame.
#[derive(Arbitrary, Clone, Copy, Debug)]
pub enum EthDst {
    /// What the IP destination calls for: A's MAC for unicast, the mapped group MAC for
    /// multicast (RFC 1112 §6.4), broadcast for broadcast.
    Natural,
    Broadcast,
    Other([u8; 6]),
}

impl EthDst {
    fn mac(self, ip: Ipv4Addr) -> [u8; 6] {
        match self {
            EthDst::Natural if ip.is_multicast() => {
                let o = ip.octets();
                [0x01, 0x00, 0x5e, o[1] & 0x7f, o[2], o[3]]
            }
            EthDst::Natural if ip.is_broadcast() || ip.octets()[3] == 255 => [0xff; 6],
            EthDst::Natural => lan::mac(A),
            EthDst::Broadcast => [0xff; 6],
            EthDst::Other(m) => m,
        }
    }
}

/// An IPv4 frame with header `ip` and `payload`, to `dst`'s Ethernet address.
fn ip_frame(dst: EthDst, ip: &Ip, payload: &[u8]) -> Vec<u8> {
    packet::eth(
        dst.mac(ip.dst),
        lan::ATTACKER_MAC,
        ETH_IPV4,
        &ip.packet(payload),
    )
}

/// A payload of `len` bytes of a recognisable pattern.
fn payload(len: usize) -> Vec<u8> {
    (0..len)
        .map(|k| (k as u8).wrapping_mul(31) ^ 0xa5)
        .collect()
}

// ---- ARP ------------------------------------------------------------------------------

/// An Ethernet address in an ARP body.
#[derive(Arbitrary, Clone, Copy, Debug)]
pub enum Mac {
    Attacker,
    A,
    B,
    Zero,
    Broadcast,
    /// 02:66:00:00:hi:lo with i added: a different host for each repeat.
    Hosts(u16),
    Other([u8; 6]),
}

impl Mac {
    fn mac(self, i: u32) -> [u8; 6] {
        match self {
            Mac::Attacker => lan::ATTACKER_MAC,
            Mac::A => lan::mac(A),
            Mac::B => lan::mac(B),
            Mac::Zero => [0; 6],
            Mac::Broadcast => [0xff; 6],
            Mac::Hosts(x) => {
                let n = u32::from(x) + i;
                [0x02, 0x66, 0, (n >> 16) as u8, (n >> 8) as u8, n as u8]
            }
            Mac::Other(m) => m,
        }
    }
}

/// The ARP target's frames: requests and replies, and what makes A resolve addresses itself
/// (a SYN or datagram from a host A has no entry for).
#[derive(Arbitrary, Debug)]
pub enum ArpTpl {
    Arp {
        /// 1 request, 2 reply, others as they are.
        op: u16,
        sha: Mac,
        spa: Addr,
        tha: Mac,
        tpa: Addr,
        dst: EthDst,
    },
    /// A SYN to A's listener from `src` (A must resolve `src` to answer).
    Syn { src: Addr, sport: u16 },
    /// A datagram to a closed port of A from `src` (A answers port unreachable).
    Udp { src: Addr, dport: u16 },
}

impl ArpTpl {
    pub fn build(&self, _ctx: &Ctx, i: u32) -> Vec<u8> {
        match *self {
            ArpTpl::Arp {
                op,
                sha,
                spa,
                tha,
                tpa,
                dst,
            } => {
                let body = packet::arp(op, sha.mac(i), spa.ip(i), tha.mac(i), tpa.ip(i));
                let to = match dst {
                    EthDst::Natural if op == 2 => lan::mac(A),
                    EthDst::Natural => [0xff; 6],
                    d => d.mac(A),
                };
                packet::eth(to, lan::ATTACKER_MAC, ETH_ARP, &body)
            }
            ArpTpl::Syn { src, sport } => {
                let src = src.ip(i);
                let seg = Tcp {
                    sport: sport.wrapping_add(i as u16),
                    dport: TARGET_PORT,
                    seq: 1000 + i,
                    ack: 0,
                    flags: packet::SYN,
                    window: 8192,
                    urgent: 0,
                    options: vec![2, 4, 5, 0xb4],
                }
                .segment(src, A, &[]);
                ip_frame(EthDst::Natural, &Ip::new(src, A, 6), &seg)
            }
            ArpTpl::Udp { src, dport } => {
                let src = src.ip(i);
                let d = packet::udp(src, A, 4000, dport, b"arp");
                ip_frame(EthDst::Natural, &Ip::new(src, A, 17), &d)
            }
        }
    }
}

// ---- IPv4 options and fragments ----------------------------------------------------------

/// One IPv4 option (RFC 791 §3.1; router alert RFC 2113).
#[derive(Arbitrary, Debug)]
pub enum IpOpt {
    Eol,
    Nop,
    RecordRoute {
        len: u8,
        ptr: u8,
    },
    Timestamp {
        len: u8,
        ptr: u8,
        flags: u8,
    },
    Lsrr {
        addrs: u8,
        ptr: u8,
    },
    Ssrr {
        addrs: u8,
        ptr: u8,
    },
    RouterAlert(u16),
    /// Any type, the given length byte and body.
    Raw {
        kind: u8,
        len: u8,
        body: Vec<u8>,
    },
}

fn ip_options(opts: &[IpOpt]) -> Vec<u8> {
    let mut o = Vec::new();
    for opt in opts {
        match opt {
            IpOpt::Eol => o.push(0),
            IpOpt::Nop => o.push(1),
            IpOpt::RecordRoute { len, ptr } => {
                o.extend_from_slice(&[7, *len, *ptr]);
                o.extend(std::iter::repeat_n(
                    0,
                    usize::from(len.saturating_sub(3)).min(36),
                ));
            }
            IpOpt::Timestamp { len, ptr, flags } => {
                o.extend_from_slice(&[68, *len, *ptr, *flags]);
                o.extend(std::iter::repeat_n(
                    0,
                    usize::from(len.saturating_sub(4)).min(36),
                ));
            }
            IpOpt::Lsrr { addrs, ptr } | IpOpt::Ssrr { addrs, ptr } => {
                let kind = if matches!(opt, IpOpt::Lsrr { .. }) {
                    131
                } else {
                    137
                };
                let n = usize::from(*addrs % 10);
                o.extend_from_slice(&[kind, (3 + 4 * n) as u8, *ptr]);
                for k in 0..n {
                    o.extend_from_slice(&[10, 0, 0, 10 + k as u8]);
                }
            }
            IpOpt::RouterAlert(v) => {
                o.extend_from_slice(&[148, 4]);
                o.extend_from_slice(&v.to_be_bytes());
            }
            IpOpt::Raw { kind, len, body } => {
                o.extend_from_slice(&[*kind, *len]);
                o.extend_from_slice(&body[..body.len().min(38)]);
            }
        }
        if o.len() >= 40 {
            break;
        }
    }
    o.truncate(40);
    o
}

/// What the datagram carries.
#[derive(Arbitrary, Clone, Copy, Debug)]
pub enum Carry {
    /// UDP to A's connected socket's port (from B's closed port, so it is A's peer), or to A's
    /// group socket, or to `port`.
    Udp { to: UdpTo, len: u16 },
    /// A TCP segment to A's listener.
    TcpSyn { sport: u16 },
    /// An ICMP echo request of `len` bytes.
    Echo { len: u16 },
    /// Any protocol number, `len` pattern bytes.
    Raw { proto: u8, len: u16 },
}

#[derive(Arbitrary, Clone, Copy, Debug)]
pub enum UdpTo {
    Connected,
    Group,
    Port(u16),
}

/// How the datagram is cut.
#[derive(Arbitrary, Clone, Copy, Debug)]
pub enum Frag {
    /// Whole, with these DF/MF bits and offset (MF or an offset makes it a lone fragment).
    Whole { df: bool, mf: bool, offset: u16 },
    /// Fragment number `i` of the datagram cut into pieces of `8 * size` bytes every
    /// `8 * step` bytes (a step below the size overlaps), in reverse order if `reverse`;
    /// the last fragment keeps MF if `open` (it never completes). Past the last piece, the
    /// next datagram (a new identification) starts.
    Pieces {
        size: u8,
        step: u8,
        reverse: bool,
        open: bool,
    },
}

/// The IPv4 target's frames.
#[derive(Arbitrary, Debug)]
pub struct Ipv4Tpl {
    pub src: Addr,
    pub dst: Addr,
    pub eth: EthDst,
    pub carry: Carry,
    pub options: Vec<IpOpt>,
    pub ttl: u8,
    pub tos: u8,
    pub id: u16,
    pub frag: Frag,
}

impl Ipv4Tpl {
    pub fn build(&self, _ctx: &Ctx, i: u32) -> Vec<u8> {
        let (src, dst) = (self.src.ip(0), self.dst.ip(0));
        let (proto, body) = match self.carry {
            Carry::Udp { to, len } => {
                let (sport, dport) = match to {
                    UdpTo::Connected => (lan::B_CLOSED_PORT, UDP_PORT),
                    UdpTo::Group => (4000, MCAST_PORT),
                    UdpTo::Port(p) => (4000, p),
                };
                (
                    17,
                    packet::udp(src, dst, sport, dport, &payload(usize::from(len) % 9000)),
                )
            }
            Carry::TcpSyn { sport } => {
                let seg = Tcp {
                    sport,
                    dport: TARGET_PORT,
                    seq: 7,
                    ack: 0,
                    flags: packet::SYN,
                    window: 1024,
                    urgent: 0,
                    options: Vec::new(),
                }
                .segment(src, dst, &[]);
                (6, seg)
            }
            Carry::Echo { len } => (
                1,
                packet::icmp(8, 0, [0, 1, 0, 1], &payload(usize::from(len) % 9000)),
            ),
            Carry::Raw { proto, len } => (proto, payload(usize::from(len) % 9000)),
        };
        let mut ip = Ip::new(src, dst, proto);
        ip.options = ip_options(&self.options);
        ip.ttl = self.ttl;
        ip.tos = self.tos;
        ip.id = self.id;
        match self.frag {
            Frag::Whole { df, mf, offset } => {
                ip.df = df;
                ip.mf = mf;
                ip.offset = offset;
                let mut body = body;
                body.truncate(1400);
                ip_frame(self.eth, &ip, &body)
            }
            Frag::Pieces {
                size,
                step,
                reverse,
                open,
            } => {
                let size = usize::from(size.max(1)).min(170) * 8;
                let step = usize::from(step.max(1)).min(170) * 8;
                let count = body.len().div_ceil(step).max(1) as u32;
                let (round, k) = (i / count, i % count);
                let k = if reverse { count - 1 - k } else { k };
                let start = (k as usize * step).min(body.len());
                let end = (start + size).min(body.len());
                ip.id = self.id.wrapping_add(round as u16);
                ip.offset = (start / 8) as u16;
                ip.mf = end < body.len() || open;
                ip_frame(self.eth, &ip, &body[start..end])
            }
        }
    }
}

// ---- TCP ------------------------------------------------------------------------------

/// One TCP option (RFC 9293 §3.2, RFC 7323, RFC 2018).
#[derive(Arbitrary, Debug)]
pub enum TcpOpt {
    Eol,
    Nop,
    Mss(u16),
    WindowScale(u8),
    SackPermitted,
    /// SACK blocks relative to A's sequence numbers.
    Sack(Vec<(i16, u16)>),
    Timestamps(u32, u32),
    /// Any kind, the given length byte and body.
    Raw {
        kind: u8,
        len: u8,
        body: Vec<u8>,
    },
}

fn tcp_options(opts: &[TcpOpt], seq: &SeqView) -> Vec<u8> {
    let mut o = Vec::new();
    for opt in opts {
        match opt {
            TcpOpt::Eol => o.push(0),
            TcpOpt::Nop => o.push(1),
            TcpOpt::Mss(m) => {
                o.extend_from_slice(&[2, 4]);
                o.extend_from_slice(&m.to_be_bytes());
            }
            TcpOpt::WindowScale(s) => o.extend_from_slice(&[3, 3, *s]),
            TcpOpt::SackPermitted => o.extend_from_slice(&[4, 2]),
            TcpOpt::Sack(blocks) => {
                let n = blocks.len().min(4);
                o.extend_from_slice(&[5, (2 + 8 * n) as u8]);
                for &(rel, len) in &blocks[..n] {
                    let left = seq.a_next.wrapping_add(rel as u32);
                    o.extend_from_slice(&left.to_be_bytes());
                    o.extend_from_slice(&left.wrapping_add(u32::from(len)).to_be_bytes());
                }
            }
            TcpOpt::Timestamps(v, e) => {
                o.extend_from_slice(&[8, 10]);
                o.extend_from_slice(&v.to_be_bytes());
                o.extend_from_slice(&e.to_be_bytes());
            }
            TcpOpt::Raw { kind, len, body } => {
                o.extend_from_slice(&[*kind, *len]);
                o.extend_from_slice(&body[..body.len().min(38)]);
            }
        }
        if o.len() >= 40 {
            break;
        }
    }
    o.truncate(40);
    o
}

/// Which connection a segment claims to belong to.
#[derive(Arbitrary, Clone, Copy, Debug)]
pub enum Conn {
    /// The target connection, forged from B.
    Target,
    /// A's listener, from `src:sport` (plus `i`: a SYN flood from many ports).
    Listener { src: Addr, sport: u16 },
    /// A port of A nothing listens on.
    Closed { src: Addr, dport: u16 },
}

/// A sequence or acknowledgment number.
#[derive(Arbitrary, Clone, Copy, Debug)]
pub enum Num {
    /// Relative to what A expects (its RCV.NXT for seq, its SND.NXT for ack).
    Near(i16),
    /// Relative, anywhere in the space (2^30 away and the like).
    Far(i32),
    Abs(u32),
}

impl Num {
    fn value(self, base: u32) -> u32 {
        match self {
            Num::Near(d) => base.wrapping_add(d as i32 as u32),
            Num::Far(d) => base.wrapping_add(d as u32),
            Num::Abs(v) => v,
        }
    }
}

/// The TCP target's segments.
#[derive(Arbitrary, Debug)]
pub struct TcpTpl {
    pub conn: Conn,
    pub flags: u8,
    pub seq: Num,
    pub ack: Num,
    pub window: u16,
    pub urgent: u16,
    pub options: Vec<TcpOpt>,
    pub len: u16,
    /// For repeats: each next segment follows the previous one in sequence space.
    pub advance: bool,
}

impl TcpTpl {
    pub fn build(&self, ctx: &Ctx, i: u32) -> Vec<u8> {
        let s = &ctx.seq;
        let len = usize::from(self.len) % 1400;
        let (src, sport, dport) = match self.conn {
            Conn::Target => (B, s.b_port, TARGET_PORT),
            Conn::Listener { src, sport } => (src.ip(i), sport.wrapping_add(i as u16), TARGET_PORT),
            Conn::Closed { src, dport } => (src.ip(i), 4000, dport),
        };
        let step = if self.advance {
            i.wrapping_mul(len as u32)
        } else {
            0
        };
        let seg = Tcp {
            sport,
            dport,
            seq: self.seq.value(s.a_ack).wrapping_add(step),
            ack: self.ack.value(s.a_next),
            flags: self.flags,
            window: self.window,
            urgent: self.urgent,
            options: tcp_options(&self.options, s),
        }
        .segment(src, A, &payload(len));
        ip_frame(EthDst::Natural, &Ip::new(src, A, 6), &seg)
    }
}

// ---- ICMP -----------------------------------------------------------------------------

/// An ICMP message type (RFC 792).
#[derive(Arbitrary, Clone, Copy, Debug)]
pub enum IcmpKind {
    /// Type 3 with `code` (port unreachable is 3, fragmentation needed 4 with the MTU).
    Unreachable {
        code: u8,
        mtu: u16,
    },
    TimeExceeded {
        code: u8,
    },
    ParameterProblem {
        pointer: u8,
    },
    SourceQuench,
    Redirect {
        code: u8,
        gateway: Addr,
    },
    Echo {
        id: u16,
        seq: u16,
    },
    EchoReply {
        id: u16,
        seq: u16,
    },
    Timestamp,
    Raw {
        ty: u8,
        code: u8,
        rest: [u8; 4],
    },
}

/// What an ICMP error quotes (RFC 792: the IP header and at least 8 bytes of the datagram).
#[derive(Arbitrary, Clone, Debug)]
pub enum Quote {
    /// One of A's own recent datagrams (`index` from the newest).
    Sent {
        index: u8,
    },
    /// A datagram A could have sent: from A to `dst` with these ports.
    Forged {
        dst: Addr,
        proto: u8,
        sport: u16,
        dport: u16,
    },
    Bytes(Vec<u8>),
}

/// The ICMP target's messages.
#[derive(Arbitrary, Debug)]
pub struct IcmpTpl {
    pub kind: IcmpKind,
    pub quote: Quote,
    /// Bytes of the quote kept past its IP header (`None`: all of it, up to 548).
    pub keep: Option<u8>,
    pub src: Addr,
    pub dst: Addr,
}

impl IcmpTpl {
    pub fn build(&self, ctx: &Ctx, i: u32) -> Vec<u8> {
        let mut quote = match &self.quote {
            Quote::Sent { index } => {
                let n = ctx.sent.len();
                if n == 0 {
                    Vec::new()
                } else {
                    ctx.sent[n - 1 - usize::from(*index) % n].clone()
                }
            }
            Quote::Forged {
                dst,
                proto,
                sport,
                dport,
            } => {
                let mut t = Vec::new();
                t.extend_from_slice(&sport.to_be_bytes());
                t.extend_from_slice(&dport.to_be_bytes());
                t.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0]);
                Ip::new(A, dst.ip(i), *proto).packet(&t)
            }
            Quote::Bytes(b) => b.clone(),
        };
        let hl = quote.first().map_or(0, |v| usize::from(v & 0x0f) * 4);
        let keep = self.keep.map_or(548, |k| hl + usize::from(k));
        quote.truncate(keep.min(548));
        let (ty, code, rest) = match self.kind {
            IcmpKind::Unreachable { code, mtu } => {
                let m = mtu.to_be_bytes();
                (3, code, [0, 0, m[0], m[1]])
            }
            IcmpKind::TimeExceeded { code } => (11, code, [0; 4]),
            IcmpKind::ParameterProblem { pointer } => (12, 0, [pointer, 0, 0, 0]),
            IcmpKind::SourceQuench => (4, 0, [0; 4]),
            IcmpKind::Redirect { code, gateway } => (5, code, gateway.ip(i).octets()),
            IcmpKind::Echo { id, seq } => {
                let (a, b) = (id.to_be_bytes(), seq.to_be_bytes());
                (8, 0, [a[0], a[1], b[0], b[1]])
            }
            IcmpKind::EchoReply { id, seq } => {
                let (a, b) = (id.to_be_bytes(), seq.to_be_bytes());
                (0, 0, [a[0], a[1], b[0], b[1]])
            }
            IcmpKind::Timestamp => (13, 0, [0, 1, 0, 1]),
            IcmpKind::Raw { ty, code, rest } => (ty, code, rest),
        };
        let msg = packet::icmp(ty, code, rest, &quote);
        let (src, dst) = (self.src.ip(i), self.dst.ip(i));
        ip_frame(EthDst::Natural, &Ip::new(src, dst, 1), &msg)
    }
}

// ---- IGMP -----------------------------------------------------------------------------

/// A group address in an IGMP message.
#[derive(Arbitrary, Clone, Copy, Debug)]
pub enum Group {
    /// A's group.
    Ours,
    Zero,
    /// 239.1.2.x.
    Near(u8),
    Other([u8; 4]),
}

impl Group {
    fn ip(self) -> Ipv4Addr {
        match self {
            Group::Ours => GROUP,
            Group::Zero => Ipv4Addr::UNSPECIFIED,
            Group::Near(x) => Ipv4Addr::new(239, 1, 2, x),
            Group::Other(o) => Ipv4Addr::from(o),
        }
    }
}

/// One group record of an IGMPv3 report (RFC 3376 §4.2.4).
#[derive(Arbitrary, Debug)]
pub struct Record {
    pub ty: u8,
    pub group: Group,
    /// Sources carried.
    pub sources: u16,
    /// Number of sources the record claims, if not the true count.
    pub claim: Option<u16>,
    pub aux_words: u8,
}

/// The IGMP message.
#[derive(Arbitrary, Debug)]
pub enum IgmpMsg {
    /// Membership query of version 1 (max response 0).
    V1Query,
    V2Query {
        max_resp: u8,
        group: Group,
    },
    /// RFC 3376 §4.1: `sources` addresses carried, `claim` the count field if different.
    V3Query {
        max_resp: u8,
        group: Group,
        s_flag: bool,
        qrv: u8,
        qqic: u8,
        sources: u16,
        claim: Option<u16>,
    },
    V1Report {
        group: Group,
    },
    V2Report {
        group: Group,
    },
    V2Leave {
        group: Group,
    },
    V3Report {
        records: Vec<Record>,
    },
    Raw(Vec<u8>),
}

/// The IGMP target's frames.
#[derive(Arbitrary, Debug)]
pub struct IgmpTpl {
    pub msg: IgmpMsg,
    pub src: Addr,
    /// `None`: what the message calls for (224.0.0.1 for queries, the group for reports and
    /// 224.0.0.2 for leaves, 224.0.0.22 for v3 reports).
    pub dst: Option<Addr>,
    pub router_alert: bool,
    pub ttl_one: bool,
}

/// `n` source addresses 10.1.x.y.
fn sources(n: u16) -> Vec<u8> {
    let mut v = Vec::with_capacity(usize::from(n) * 4);
    for k in 0..n {
        v.extend_from_slice(&[10, 1, (k >> 8) as u8, k as u8]);
    }
    v
}

impl IgmpTpl {
    pub fn build(&self, _ctx: &Ctx, i: u32) -> Vec<u8> {
        let all_hosts = Ipv4Addr::new(224, 0, 0, 1);
        let (m, natural) = match &self.msg {
            IgmpMsg::V1Query => (vec![0x11, 0, 0, 0, 0, 0, 0, 0], all_hosts),
            IgmpMsg::V2Query { max_resp, group } => {
                let mut m = vec![0x11, *max_resp, 0, 0];
                m.extend_from_slice(&group.ip().octets());
                let to = if matches!(group, Group::Zero) {
                    all_hosts
                } else {
                    group.ip()
                };
                (m, to)
            }
            IgmpMsg::V3Query {
                max_resp,
                group,
                s_flag,
                qrv,
                qqic,
                sources: n,
                claim,
            } => {
                let n = (*n).min(366);
                let mut m = vec![0x11, *max_resp, 0, 0];
                m.extend_from_slice(&group.ip().octets());
                m.push((u8::from(*s_flag) << 3) | (qrv & 7));
                m.push(*qqic);
                m.extend_from_slice(&claim.unwrap_or(n).to_be_bytes());
                m.extend_from_slice(&sources(n));
                (m, all_hosts)
            }
            IgmpMsg::V1Report { group } => {
                let mut m = vec![0x12, 0, 0, 0];
                m.extend_from_slice(&group.ip().octets());
                (m, group.ip())
            }
            IgmpMsg::V2Report { group } => {
                let mut m = vec![0x16, 0, 0, 0];
                m.extend_from_slice(&group.ip().octets());
                (m, group.ip())
            }
            IgmpMsg::V2Leave { group } => {
                let mut m = vec![0x17, 0, 0, 0];
                m.extend_from_slice(&group.ip().octets());
                (m, Ipv4Addr::new(224, 0, 0, 2))
            }
            IgmpMsg::V3Report { records } => {
                let n = records.len().min(64);
                let mut m = vec![0x22, 0, 0, 0, 0, 0];
                m.extend_from_slice(&(n as u16).to_be_bytes());
                for r in &records[..n] {
                    let s = r.sources.min(360);
                    m.push(r.ty);
                    m.push(r.aux_words % 8);
                    m.extend_from_slice(&r.claim.unwrap_or(s).to_be_bytes());
                    m.extend_from_slice(&r.group.ip().octets());
                    m.extend_from_slice(&sources(s));
                    m.extend(std::iter::repeat_n(0, usize::from(r.aux_words % 8) * 4));
                    if m.len() > 1480 {
                        break;
                    }
                }
                (m, Ipv4Addr::new(224, 0, 0, 22))
            }
            IgmpMsg::Raw(b) => (b.clone(), all_hosts),
        };
        let mut m = packet::igmp(m);
        m.truncate(1476);
        let dst = self.dst.map_or(natural, |d| d.ip(i));
        let mut ip = Ip::new(self.src.ip(i), dst, 2);
        ip.ttl = if self.ttl_one { 1 } else { 64 };
        if self.router_alert {
            ip.options = vec![148, 4, 0, 0];
        }
        ip_frame(EthDst::Natural, &ip, &m)
    }
}
