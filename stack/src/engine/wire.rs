//! The engine's one view of a frame: an Ethernet frame parsed once into a checked [`Frame`].
//!
//! Heads up! Before working on this file read RFC 894 (IPv4 over Ethernet), RFC 791 §3.1 (the
//! IPv4 header: IHL, Total Length, Identification, the flags and Fragment Offset of §3.2, the
//! Header Checksum), RFC 1071 (the Internet checksum), RFC 768 (the UDP header), RFC 9293 §3.1
//! (the TCP header) and RFC 792 (ICMP Destination Unreachable and the datagram it quotes).
//!
//! Every frame is parsed once, where it enters the engine — `Engine::ingress` for frames from the
//! link, the device's transmit token for smoltcp's own (`device`) — and the same [`Frame`] is
//! handed to every stage of the frame pipeline (`pipeline` lists them, in order): multicast
//! intercept, RST and ICMP observation, urgent data, circular queueing, local delivery, the
//! shaper and the DSCP rewrite. This is the engine's only IPv4 reader; the layers are checked
//! with smoltcp's own wire types (`EthernetFrame`, `Ipv4Packet`, `TcpPacket`, `UdpPacket`,
//! `Icmpv4Packet`), and the one Internet checksum of the workspace is smoltcp's
//! `wire::checksum` (RFC 1071), reached through those types' `verify_checksum` and
//! `fill_checksum`.
//!
//! Contract (as smoltcp's `wire`):
//! - [`Frame::parse`] never panics, whatever the bytes; a layer that does not check is absent
//!   (`None`), and after `parse` no getter panics.
//! - Only the layout (where each header starts and ends, and which headers checked) is kept;
//!   field values are read through smoltcp's views on demand, so a stage that rewrites a field
//!   (the urgent pointer, the DSCP) leaves nothing stale behind.
//! - Checks are structural (lengths, version, IHL, data offset). Checksums are verified only by
//!   the stages that act on a frame smoltcp would drop for a bad one
//!   ([`Frame::ipv4_checksum_ok`], [`Frame::tcp_checksum_ok`]).
//!
//! What counts as present:
//! - IPv4: EtherType 0x0800, version 4, IHL ≥ 5, IHL ≤ Total Length ≤ the bytes present. The
//!   datagram ends at its Total Length; bytes after it are link padding.
//! - A transport header only in a datagram's first (or only) fragment (Fragment Offset 0):
//!   TCP when its header, options included, is within the datagram; UDP when its eight octets
//!   are (a whole datagram also needs a Length field that fits); ICMP when its eight-octet
//!   header is.

use std::net::{Ipv4Addr, SocketAddrV4};

use smoltcp::wire::{
    EthernetFrame, EthernetProtocol, Icmpv4Message, Icmpv4Packet, IpProtocol, Ipv4Packet,
    TcpPacket, UdpPacket, ETHERNET_HEADER_LEN, IPV4_HEADER_LEN, UDP_HEADER_LEN,
};

/// A frame shorter than an Ethernet header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Truncated;

/// The transport header a frame's IPv4 datagram carries, as far as it checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Transport {
    /// None to read: a later fragment, another protocol, or a header that does not fit.
    None,
    /// A TCP header (options included) within the datagram.
    Tcp,
    /// A UDP header's eight octets; `whole` when the datagram is not a fragment and its Length
    /// field fits what is there (RFC 768).
    Udp { whole: bool },
    /// An ICMP message's eight-octet header.
    Icmp,
}

/// Where the IPv4 layer of a frame is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Layout {
    /// Offset of the IP payload (the transport header): the Ethernet header plus IHL × 4.
    payload: usize,
    /// End of the IPv4 datagram: the Ethernet header plus Total Length.
    end: usize,
    transport: Transport,
}

/// Where a fragment belongs in its datagram (RFC 791 §3.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Fragment {
    /// The Identification field.
    pub(crate) ident: u16,
    /// The Fragment Offset, in octets.
    pub(crate) offset: usize,
    /// More Fragments is set.
    pub(crate) more: bool,
}

/// The header fields of a TCP segment the engine keeps (RST and ACK bookkeeping, urgent data,
/// the tail-loss probe).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Segment {
    pub(crate) rst: bool,
    /// SYN is set.
    pub(crate) syn: bool,
    /// The sequence number.
    pub(crate) seq: u32,
    /// The urgent pointer, if URG is set (`urgent`).
    pub(crate) urg: Option<u16>,
    /// Sequence number just past this segment (its sequence number plus its length, SYN and FIN
    /// counting one each).
    pub(crate) seq_end: u32,
    /// The acknowledgment number, if ACK is set.
    pub(crate) ack: Option<u32>,
    /// The raw (unscaled) window field.
    pub(crate) window: u16,
}

impl Segment {
    /// Reads the fields of a checked TCP header (RFC 9293 §3.1).
    pub(crate) fn parse<T: AsRef<[u8]> + ?Sized>(tcp: &TcpPacket<&T>) -> Segment {
        let len = tcp.payload().len() as u32 + u32::from(tcp.syn()) + u32::from(tcp.fin());
        let seq = tcp.seq_number().0 as u32;
        Segment {
            rst: tcp.rst(),
            syn: tcp.syn(),
            seq,
            urg: tcp.urg().then(|| tcp.urgent_at()),
            seq_end: seq.wrapping_add(len),
            ack: tcp.ack().then(|| tcp.ack_number().0 as u32),
            window: tcp.window_len(),
        }
    }
}

/// An Ethernet frame and the layout of its IPv4 datagram, read once (see the module docs).
pub(crate) struct Frame<T: AsRef<[u8]> = Vec<u8>> {
    buffer: T,
    ipv4: Option<Layout>,
}

impl<T: AsRef<[u8]>> std::fmt::Debug for Frame<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Frame")
            .field("len", &self.buffer.as_ref().len())
            .field("ipv4", &self.ipv4)
            .finish()
    }
}

/// The IPv4 layout of `frame`, if it carries a datagram that checks.
fn layout(frame: &[u8]) -> Option<Layout> {
    let eth = EthernetFrame::new_checked(frame).ok()?;
    if eth.ethertype() != EthernetProtocol::Ipv4 {
        return None;
    }
    // new_checked: IHL ≥ 5, IHL ≤ Total Length ≤ the octets present (RFC 791 §3.1).
    let ip = Ipv4Packet::new_checked(eth.payload()).ok()?;
    if ip.version() != 4 {
        return None;
    }
    let payload = ETHERNET_HEADER_LEN + usize::from(ip.header_len());
    let end = ETHERNET_HEADER_LEN + usize::from(ip.total_len());
    let data = ip.payload();
    let first = ip.frag_offset() == 0;
    let transport = match ip.next_header() {
        _ if !first => Transport::None,
        IpProtocol::Tcp if TcpPacket::new_checked(data).is_ok() => Transport::Tcp,
        IpProtocol::Udp if data.len() >= UDP_HEADER_LEN => Transport::Udp {
            whole: !ip.more_frags() && UdpPacket::new_checked(data).is_ok(),
        },
        IpProtocol::Icmp if Icmpv4Packet::new_checked(data).is_ok() => Transport::Icmp,
        _ => Transport::None,
    };
    Some(Layout {
        payload,
        end,
        transport,
    })
}

impl<T: AsRef<[u8]>> Frame<T> {
    /// Reads the layers of `buffer` once. Never fails: what does not check is absent.
    pub(crate) fn parse(buffer: T) -> Frame<T> {
        let ipv4 = layout(buffer.as_ref());
        Frame { buffer, ipv4 }
    }

    /// Whether the frame holds at least an Ethernet header.
    pub(crate) fn check_len(&self) -> Result<(), Truncated> {
        if self.buffer.as_ref().len() < ETHERNET_HEADER_LEN {
            Err(Truncated)
        } else {
            Ok(())
        }
    }

    /// The buffer back.
    pub(crate) fn into_inner(self) -> T {
        self.buffer
    }

    /// All of the frame's octets.
    pub(crate) fn as_bytes(&self) -> &[u8] {
        self.buffer.as_ref()
    }

    /// The Ethernet header and payload, if the frame holds a header.
    pub(crate) fn ethernet(&self) -> Option<EthernetFrame<&[u8]>> {
        EthernetFrame::new_checked(self.buffer.as_ref()).ok()
    }

    /// The IPv4 datagram (up to its Total Length), if there is one.
    pub(crate) fn ipv4(&self) -> Option<Ipv4Packet<&[u8]>> {
        let l = self.ipv4?;
        Some(Ipv4Packet::new_unchecked(
            &self.buffer.as_ref()[ETHERNET_HEADER_LEN..l.end],
        ))
    }

    /// The IPv4 datagram's octets (header, options and payload, up to its Total Length).
    pub(crate) fn ip_bytes(&self) -> Option<&[u8]> {
        let l = self.ipv4?;
        Some(&self.buffer.as_ref()[ETHERNET_HEADER_LEN..l.end])
    }

    /// The IP protocol.
    pub(crate) fn protocol(&self) -> Option<IpProtocol> {
        self.ipv4().map(|ip| ip.next_header())
    }

    /// The IPv4 source address.
    pub(crate) fn src_addr(&self) -> Option<Ipv4Addr> {
        self.ipv4().map(|ip| ip.src_addr())
    }

    /// The IPv4 destination address.
    pub(crate) fn dst_addr(&self) -> Option<Ipv4Addr> {
        self.ipv4().map(|ip| ip.dst_addr())
    }

    /// Where this datagram belongs among its fragments; `None` when it is not a fragment (or
    /// not IPv4).
    pub(crate) fn fragment(&self) -> Option<Fragment> {
        let ip = self.ipv4()?;
        let (more, offset) = (ip.more_frags(), usize::from(ip.frag_offset()));
        (more || offset != 0).then_some(Fragment {
            ident: ip.ident(),
            offset,
            more,
        })
    }

    /// Whether the IPv4 header checksum is right (RFC 791 §3.1, RFC 1071).
    pub(crate) fn ipv4_checksum_ok(&self) -> bool {
        self.ipv4().is_some_and(|ip| ip.verify_checksum())
    }

    /// The transport header present (see the module docs).
    #[cfg(test)]
    pub(crate) fn transport(&self) -> Transport {
        self.ipv4.map_or(Transport::None, |l| l.transport)
    }

    /// The TCP segment, if the datagram carries a TCP header.
    pub(crate) fn tcp(&self) -> Option<TcpPacket<&[u8]>> {
        let l = self.ipv4.filter(|l| l.transport == Transport::Tcp)?;
        Some(TcpPacket::new_unchecked(
            &self.buffer.as_ref()[l.payload..l.end],
        ))
    }

    /// The UDP datagram, if the frame carries a whole one.
    pub(crate) fn udp(&self) -> Option<UdpPacket<&[u8]>> {
        let l = self
            .ipv4
            .filter(|l| l.transport == Transport::Udp { whole: true })?;
        Some(UdpPacket::new_unchecked(
            &self.buffer.as_ref()[l.payload..l.end],
        ))
    }

    /// The ICMP message, if the datagram carries one.
    pub(crate) fn icmp(&self) -> Option<Icmpv4Packet<&[u8]>> {
        let l = self.ipv4.filter(|l| l.transport == Transport::Icmp)?;
        Some(Icmpv4Packet::new_unchecked(
            &self.buffer.as_ref()[l.payload..l.end],
        ))
    }

    /// The source and destination ports of a TCP or UDP header (a UDP datagram's first fragment
    /// included).
    pub(crate) fn ports(&self) -> Option<(u16, u16)> {
        let l = self.ipv4?;
        let header = &self.buffer.as_ref()[l.payload..l.end];
        match l.transport {
            Transport::Tcp => {
                let t = TcpPacket::new_unchecked(header);
                Some((t.src_port(), t.dst_port()))
            }
            Transport::Udp { .. } => {
                let u = UdpPacket::new_unchecked(header);
                Some((u.src_port(), u.dst_port()))
            }
            Transport::Icmp | Transport::None => None,
        }
    }

    /// The source address and port (port 0 where there are none).
    pub(crate) fn src(&self) -> Option<SocketAddrV4> {
        let port = self.ports().map_or(0, |p| p.0);
        Some(SocketAddrV4::new(self.src_addr()?, port))
    }

    /// The destination address and port (port 0 where there are none).
    pub(crate) fn dst(&self) -> Option<SocketAddrV4> {
        let port = self.ports().map_or(0, |p| p.1);
        Some(SocketAddrV4::new(self.dst_addr()?, port))
    }

    /// The TCP header fields the engine keeps.
    pub(crate) fn segment(&self) -> Option<Segment> {
        self.tcp().map(|t| Segment::parse(&t))
    }

    /// Whether the IPv4 header and TCP checksums are both right (RFC 9293 §3.1: the TCP
    /// checksum covers a pseudo-header of addresses, protocol and length).
    pub(crate) fn tcp_checksum_ok(&self) -> bool {
        let (Some(ip), Some(tcp)) = (self.ipv4(), self.tcp()) else {
            return false;
        };
        ip.verify_checksum() && tcp.verify_checksum(&ip.src_addr().into(), &ip.dst_addr().into())
    }

    /// For an ICMP port unreachable (RFC 792: type 3, code 3), the UDP endpoint of ours the
    /// quoted datagram came from.
    pub(crate) fn port_unreachable(&self) -> Option<SocketAddrV4> {
        let icmp = self.icmp()?;
        if icmp.msg_type() != Icmpv4Message::DstUnreachable || icmp.msg_code() != 3 {
            return None;
        }
        // The quoted datagram is the original IP header plus the first 64 bits of its payload:
        // its Total Length says more than is there, which new_checked refuses; the header
        // fields are read once 20 octets are.
        let d = icmp.data();
        let inner = Ipv4Packet::new_checked(d)
            .ok()
            .or_else(|| (d.len() >= IPV4_HEADER_LEN).then(|| Ipv4Packet::new_unchecked(d)))?;
        if inner.next_header() != IpProtocol::Udp {
            return None;
        }
        let hl = usize::from(inner.header_len());
        if hl < IPV4_HEADER_LEN || d.len() < hl + UDP_HEADER_LEN {
            return None;
        }
        let udp = UdpPacket::new_unchecked(&d[hl..hl + UDP_HEADER_LEN]);
        Some(SocketAddrV4::new(inner.src_addr(), udp.src_port()))
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Frame<T> {
    /// The TCP segment, writable (the layout stays valid as long as the header length does).
    pub(crate) fn tcp_mut(&mut self) -> Option<TcpPacket<&mut [u8]>> {
        let l = self.ipv4.filter(|l| l.transport == Transport::Tcp)?;
        Some(TcpPacket::new_unchecked(
            &mut self.buffer.as_mut()[l.payload..l.end],
        ))
    }

    /// Writes `dscp` into the IPv4 header, keeping ECN, and fixes the header checksum (RFC 2474
    /// §3, RFC 791 §3.1). A header that already carries it is left as it is.
    pub(crate) fn set_dscp(&mut self, dscp: u8) {
        let Some(l) = self.ipv4 else { return };
        let mut ip =
            Ipv4Packet::new_unchecked(&mut self.buffer.as_mut()[ETHERNET_HEADER_LEN..l.end]);
        if ip.dscp() == dscp & 0x3f {
            return;
        }
        ip.set_dscp(dscp);
        ip.fill_checksum();
    }
}

#[cfg(test)]
mod test {
    use super::*;
    use proptest::prelude::*;
    use smoltcp::phy::ChecksumCapabilities;
    use smoltcp::wire::{
        EthernetAddress, EthernetRepr, Ipv4Repr, TcpControl, TcpRepr, TcpSeqNumber,
    };

    /// A TCP SYN-ACK from 10.0.0.1:80 to 10.0.0.2:4000 (seq 1000, ack 78, window 64240, MSS 1460;
    /// DF, TTL 64), laid out by hand from RFC 791 §3.1 and RFC 9293 §3.1, not captured; its two
    /// checksums were computed separately (a throwaway Python RFC 1071 sum), and `deconstruct`
    /// checks them with smoltcp's.
    static SYN_ACK: [u8; 58] = [
        // Ethernet: dst 02:00:00:00:00:02, src 02:00:00:00:00:01, IPv4
        0x02, 0x00, 0x00, 0x00, 0x00, 0x02, 0x02, 0x00, 0x00, 0x00, 0x00, 0x01, 0x08, 0x00,
        // IPv4: IHL 5, total 44, id 0, DF, TTL 64, TCP, checksum, 10.0.0.1 → 10.0.0.2
        0x45, 0x00, 0x00, 0x2c, 0x00, 0x00, 0x40, 0x00, 0x40, 0x06, 0x26, 0xca, 0x0a, 0x00, 0x00,
        0x01, 0x0a, 0x00, 0x00, 0x02,
        // TCP: 80 → 4000, seq 1000, ack 78, offset 6, SYN|ACK, window 64240, checksum, urgent 0
        0x00, 0x50, 0x0f, 0xa0, 0x00, 0x00, 0x03, 0xe8, 0x00, 0x00, 0x00, 0x4e, 0x60, 0x12, 0xfa,
        0xf0, 0x74, 0xfd, 0x00, 0x00, // MSS 1460
        0x02, 0x04, 0x05, 0xb4,
    ];

    /// The first fragment of a 3000-octet UDP datagram 10.0.0.1:5000 → 239.1.2.3:6000
    /// (identification 7, MF, offset 0), cut after the UDP header: the Length field (3008) says
    /// more than one fragment holds. Laid out by hand; the header checksum is left 0.
    static UDP_FIRST_FRAGMENT: [u8; 42] = [
        0x01, 0x00, 0x5e, 0x01, 0x02, 0x03, 0x02, 0x00, 0x00, 0x00, 0x00, 0x01, 0x08, 0x00, //
        0x45, 0x00, 0x00, 0x1c, 0x00, 0x07, 0x20, 0x00, 0x01, 0x11, 0x00, 0x00, 0x0a, 0x00, 0x00,
        0x01, 0xef, 0x01, 0x02, 0x03, //
        0x13, 0x88, 0x17, 0x70, 0x0b, 0xc0, 0x00, 0x00,
    ];

    fn syn_ack_repr() -> (EthernetRepr, Ipv4Repr, TcpRepr<'static>) {
        let eth = EthernetRepr {
            src_addr: EthernetAddress([2, 0, 0, 0, 0, 1]),
            dst_addr: EthernetAddress([2, 0, 0, 0, 0, 2]),
            ethertype: EthernetProtocol::Ipv4,
        };
        let tcp = TcpRepr {
            src_port: 80,
            dst_port: 4000,
            control: TcpControl::Syn,
            seq_number: TcpSeqNumber(1000),
            ack_number: Some(TcpSeqNumber(78)),
            window_len: 64240,
            window_scale: None,
            max_seg_size: Some(1460),
            sack_permitted: false,
            sack_ranges: [None; 3],
            timestamp: None,
            payload: &[],
        };
        let ip = Ipv4Repr {
            src_addr: Ipv4Addr::new(10, 0, 0, 1),
            dst_addr: Ipv4Addr::new(10, 0, 0, 2),
            next_header: IpProtocol::Tcp,
            payload_len: tcp.buffer_len(),
            hop_limit: 64,
        };
        (eth, ip, tcp)
    }

    #[test]
    fn deconstruct() {
        let f = Frame::parse(&SYN_ACK[..]);
        assert_eq!(f.check_len(), Ok(()));
        let eth = f.ethernet().unwrap();
        assert_eq!(eth.dst_addr(), EthernetAddress([2, 0, 0, 0, 0, 2]));
        assert_eq!(eth.ethertype(), EthernetProtocol::Ipv4);
        assert_eq!(f.ipv4().unwrap().total_len(), 44);
        assert_eq!(f.protocol(), Some(IpProtocol::Tcp));
        assert_eq!(f.src(), Some("10.0.0.1:80".parse().unwrap()));
        assert_eq!(f.dst(), Some("10.0.0.2:4000".parse().unwrap()));
        assert_eq!(f.fragment(), None);
        assert_eq!(f.transport(), Transport::Tcp);
        assert!(f.ipv4_checksum_ok());
        assert!(f.tcp_checksum_ok());
        assert_eq!(f.tcp().unwrap().header_len(), 24);
        assert!(f.udp().is_none() && f.icmp().is_none());
    }

    #[test]
    fn construct() {
        // Emitting the sample's Reprs gives the sample's octets.
        let (eth, ip, tcp) = syn_ack_repr();
        let mut buf = vec![0u8; eth.buffer_len() + ip.buffer_len() + tcp.buffer_len()];
        let mut e = EthernetFrame::new_unchecked(&mut buf[..]);
        eth.emit(&mut e);
        let caps = ChecksumCapabilities::default();
        let mut p = Ipv4Packet::new_unchecked(e.payload_mut());
        ip.emit(&mut p, &caps);
        tcp.emit(
            &mut TcpPacket::new_unchecked(p.payload_mut()),
            &ip.src_addr.into(),
            &ip.dst_addr.into(),
            &caps,
        );
        assert_eq!(&buf[..], &SYN_ACK[..]);
        // The view's writers: DSCP (checksum fixed) and the urgent pointer.
        let mut f = Frame::parse(buf);
        f.set_dscp(46);
        assert_eq!(f.ipv4().unwrap().dscp(), 46);
        assert!(f.ipv4_checksum_ok());
        let mut t = f.tcp_mut().unwrap();
        t.set_urg(true);
        t.set_urgent_at(9);
        t.fill_checksum(&ip.src_addr.into(), &ip.dst_addr.into());
        assert!(f.tcp_checksum_ok());
        assert_eq!(f.segment().unwrap().urg, Some(9));
    }

    #[test]
    fn parse() {
        let f = Frame::parse(&SYN_ACK[..]);
        assert_eq!(
            f.segment(),
            Some(Segment {
                rst: false,
                syn: true,
                seq: 1000,
                urg: None,
                seq_end: 1001,
                ack: Some(78),
                window: 64240,
            })
        );
        let f = Frame::parse(&UDP_FIRST_FRAGMENT[..]);
        assert_eq!(
            f.fragment(),
            Some(Fragment {
                ident: 7,
                offset: 0,
                more: true
            })
        );
        assert_eq!(f.transport(), Transport::Udp { whole: false });
        assert_eq!(f.ports(), Some((5000, 6000)));
        assert!(f.udp().is_none(), "a fragment is not a whole datagram");
        // A later fragment has no transport header.
        let mut later = UDP_FIRST_FRAGMENT;
        later[20] = 0x00;
        later[21] = 0xb9; // offset 185 × 8 = 1480, last fragment
        let f = Frame::parse(&later[..]);
        assert_eq!(
            f.fragment(),
            Some(Fragment {
                ident: 7,
                offset: 1480,
                more: false
            })
        );
        assert_eq!((f.transport(), f.ports()), (Transport::None, None));
        assert_eq!(f.dst(), Some("239.1.2.3:0".parse().unwrap()));
    }

    #[test]
    fn emit() {
        // Writing the DSCP twice or writing the one already there changes nothing else.
        let mut f = Frame::parse(SYN_ACK.to_vec());
        f.set_dscp(0);
        assert_eq!(f.as_bytes(), &SYN_ACK[..], "same DSCP: untouched");
        f.set_dscp(0x2e);
        f.set_dscp(0);
        assert_eq!(f.as_bytes(), &SYN_ACK[..]);
    }

    #[test]
    fn dscp_keeps_ecn_and_a_valid_checksum() {
        let mut f = SYN_ACK;
        f[15] = 0x01; // ECT(1), which must survive
        let mut ip = Ipv4Packet::new_unchecked(&mut f[14..]);
        ip.fill_checksum();
        let mut f = Frame::parse(f.to_vec());
        f.set_dscp(46);
        assert_eq!(f.as_bytes()[15], (46 << 2) | 0x01);
        assert!(f.ipv4_checksum_ok());
        let b = f.as_bytes();
        assert_eq!(&b[..15], &SYN_ACK[..15]);
        assert_eq!(
            &b[16..24],
            &SYN_ACK[16..24],
            "only TOS and the checksum change"
        );
        assert_eq!(&b[26..], &SYN_ACK[26..]);
    }

    #[test]
    fn port_unreachable_reads_the_quoted_datagram() {
        // ICMP 3/3 quoting a UDP datagram 10.0.0.2:4000 → 10.0.0.1:53 (header + 8 octets; the
        // quoted Total Length says 36, more than is quoted).
        let mut f = vec![
            2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00, //
            0x45, 0, 0, 56, 0, 0, 0, 0, 64, 1, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2, //
            3, 3, 0, 0, 0, 0, 0, 0, //
            0x45, 0, 0, 36, 0, 0, 0, 0, 64, 17, 0, 0, 10, 0, 0, 2, 10, 0, 0, 1, //
            0x0f, 0xa0, 0, 53, 0, 16, 0, 0,
        ];
        assert_eq!(
            Frame::parse(&f[..]).port_unreachable(),
            Some("10.0.0.2:4000".parse().unwrap())
        );
        f[35] = 1; // code 1: host unreachable
        assert_eq!(Frame::parse(&f[..]).port_unreachable(), None);
    }

    #[test]
    fn short_and_odd_frames_have_no_layers() {
        assert_eq!(Frame::parse(&[0u8; 13][..]).check_len(), Err(Truncated));
        // Every cut of the samples parses without a panic; the IPv4 layer needs all of it.
        for sample in [&SYN_ACK[..], &UDP_FIRST_FRAGMENT[..]] {
            for n in 0..sample.len() {
                let f = Frame::parse(&sample[..n]);
                assert!(f.ipv4().is_none(), "cut at {n}");
                poke(&f);
            }
        }
        // Version 6 in an IPv4 EtherType, IHL 4: not IPv4.
        let mut v6 = SYN_ACK;
        v6[14] = 0x65;
        assert!(Frame::parse(&v6[..]).ipv4().is_none());
        let mut ihl = SYN_ACK;
        ihl[14] = 0x44;
        assert!(Frame::parse(&ihl[..]).ipv4().is_none());
        // A TCP data offset beyond the datagram: IPv4, but no TCP header.
        let mut off = SYN_ACK;
        off[46] = 0xf0;
        let f = Frame::parse(&off[..]);
        assert!(f.ipv4().is_some() && f.tcp().is_none() && f.segment().is_none());
        // Link padding after the Total Length is not part of the datagram.
        let mut padded = SYN_ACK.to_vec();
        padded.extend_from_slice(&[0xee; 6]);
        let f = Frame::parse(&padded[..]);
        assert!(f.tcp_checksum_ok());
        assert_eq!(f.ip_bytes().map(<[u8]>::len), Some(44));
    }

    /// Calls every getter (none may panic).
    fn poke<T: AsRef<[u8]>>(f: &Frame<T>) {
        let _ = (f.check_len(), f.ethernet(), f.ipv4(), f.ip_bytes());
        let _ = (f.protocol(), f.src(), f.dst(), f.fragment(), f.transport());
        let _ = (f.tcp(), f.udp(), f.icmp(), f.ports(), f.segment());
        let _ = (
            f.ipv4_checksum_ok(),
            f.tcp_checksum_ok(),
            f.port_unreachable(),
        );
        let _ = format!("{f:?}");
    }

    proptest! {
        #[test]
        fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..120)) {
            let mut f = Frame::parse(bytes);
            poke(&f);
            f.set_dscp(46);
            if let Some(mut t) = f.tcp_mut() {
                t.set_urg(true);
            }
            poke(&f);
        }

        #[test]
        fn mutated_samples_never_panic(
            which in any::<bool>(),
            flips in proptest::collection::vec((0usize..64, any::<u8>()), 0..6),
            cut in 0usize..70,
        ) {
            let mut b = if which { SYN_ACK.to_vec() } else { UDP_FIRST_FRAGMENT.to_vec() };
            for (i, x) in flips {
                let n = b.len();
                b[i % n] ^= x;
            }
            b.truncate(cut);
            let mut f = Frame::parse(b);
            poke(&f);
            f.set_dscp(10);
            poke(&f);
        }
    }
}
