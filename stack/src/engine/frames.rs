//! What the engine reads in frames on their way past smoltcp.
//!
//! - Local delivery: an egress frame for one of this node's own addresses (or 127.0.0.0/8) goes
//!   back into the node's own receive queue instead of onto the link (they never need ARP), so
//!   a Winsock application can reach itself (smoltcp does not do this by itself).
//! - Observations smoltcp does not report: every incoming TCP segment's RST flag, sequence,
//!   acknowledgment and window (so a refused connect is `WSAECONNREFUSED`, a reset connection
//!   `WSAECONNRESET`, not a time-out, and the tail-loss probe knows when acknowledgments stopped),
//!   SYN and the urgent pointer (TCP urgent data, `urgent`)
//!   and an ICMP port unreachable for a UDP datagram we sent (`WSAECONNRESET` on that socket's
//!   next call, as the `recv` reference describes). RFC 792 (ICMP), RFC 9293 §3.1 (the TCP
//!   header).
//! - [`dup_ack`]: the duplicate acknowledgment the tail-loss probe feeds smoltcp (see
//!   `Engine::probe_stalled`); [`stale_octet`]: the out-of-window octet that makes smoltcp send
//!   the RFC 5961 challenge ACK (`tcp::validate`).
//!
//! Only what smoltcp itself would accept is observed (issue 13, "validate before observing"):
//! a TCP segment whose IPv4 header or TCP checksum is wrong (RFC 1071, RFC 9293 §3.1), an ICMP
//! message whose checksum is wrong (RFC 792), and any IPv4 fragment (More Fragments set or a
//! Fragment Offset: RFC 791 §3.2; a fragment is looked at only once the datagram is whole) are
//! "nothing observed". Whether a segment is acceptable for its connection (window, state) is
//! decided next, in `tcp::validate`. Malformed frames are simply "nothing observed"; smoltcp
//! then drops them itself. Every frame arrives here already parsed ([`Frame`], the engine's one
//! IPv4 reader).

use std::net::{Ipv4Addr, SocketAddrV4};

use smoltcp::phy::ChecksumCapabilities;
use smoltcp::wire::{
    EthernetAddress, EthernetFrame, EthernetProtocol, EthernetRepr, IpProtocol, Ipv4Packet,
    Ipv4Repr, TcpControl, TcpPacket, TcpRepr, TcpSeqNumber,
};

use super::wire::Frame;
pub(crate) use super::wire::Segment;

/// Something an ingress frame told us.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Observed {
    /// A TCP segment for the connection `local` ↔ `remote`.
    Tcp {
        local: SocketAddrV4,
        remote: SocketAddrV4,
        seg: Segment,
    },
    /// ICMP port unreachable for a UDP datagram sent from `local` to `remote` (the quoted
    /// datagram's source and destination).
    PortUnreachable {
        local: SocketAddrV4,
        remote: SocketAddrV4,
    },
}

/// Reads what the engine cares about in an ingress frame: nothing from a fragment or from a
/// frame whose checksums smoltcp would refuse (see the module docs).
pub(crate) fn observe<T: AsRef<[u8]>>(frame: &Frame<T>) -> Option<Observed> {
    if frame.fragment().is_some() || !frame.ipv4_checksum_ok() {
        return None;
    }
    if let Some(seg) = frame.segment() {
        if !frame.tcp_checksum_ok() {
            return None;
        }
        return Some(Observed::Tcp {
            local: frame.dst()?,
            remote: frame.src()?,
            seg,
        });
    }
    let (local, remote) = quoted_udp(frame)?;
    Some(Observed::PortUnreachable { local, remote })
}

/// For an ICMP port unreachable whose checksum is right (RFC 792: the checksum covers the whole
/// ICMP message), the quoted UDP datagram's (source, destination).
fn quoted_udp<T: AsRef<[u8]>>(frame: &Frame<T>) -> Option<(SocketAddrV4, SocketAddrV4)> {
    let icmp = frame.icmp()?;
    if !icmp.verify_checksum() {
        return None;
    }
    let local = frame.port_unreachable()?;
    // The quoted header and the first eight octets of its payload (the UDP ports): the
    // destination is read the way `port_unreachable` reads the source.
    let d = icmp.data();
    let inner = Ipv4Packet::new_unchecked(d);
    let hl = usize::from(inner.header_len());
    let ports = d.get(hl + 2..hl + 4)?;
    let remote = SocketAddrV4::new(inner.dst_addr(), u16::from_be_bytes([ports[0], ports[1]]));
    Some((local, remote))
}

/// A pure ACK from `remote` to `local` (as the peer last sent it: `seq`, `ack`, raw `window`),
/// addressed to `mac`. Three of these make smoltcp fast-retransmit its oldest unacknowledged
/// segment (RFC 5681 §3.2).
pub(crate) fn dup_ack(
    mac: [u8; 6],
    local: SocketAddrV4,
    remote: SocketAddrV4,
    seq: u32,
    ack: u32,
    window: u16,
) -> Vec<u8> {
    ack_segment(mac, remote, local, seq, ack, window, &[])
}

/// One octet of data from `remote` to `local` at `seq`, acknowledging `ack`, addressed to
/// `mac`: fed to smoltcp with a `seq` far outside its receive window, it makes smoltcp answer at
/// once with an ACK of its own (RFC 9293 §3.10.7.4), SND.NXT, RCV.NXT and window all right —
/// the RFC 5961 challenge ACK (`tcp::validate`).
pub(crate) fn stale_octet(
    mac: [u8; 6],
    local: SocketAddrV4,
    remote: SocketAddrV4,
    seq: u32,
    ack: u32,
    window: u16,
) -> Vec<u8> {
    ack_segment(mac, remote, local, seq, ack, window, &[0])
}

/// An ACK (`seq`, `ack`, raw `window`) carrying `payload` from `from` to `to`, in an Ethernet
/// frame to `mac` (from 02:00:00:00:00:01: it is fed to smoltcp, never sent).
fn ack_segment(
    mac: [u8; 6],
    from: SocketAddrV4,
    to: SocketAddrV4,
    seq: u32,
    ack: u32,
    window: u16,
    payload: &[u8],
) -> Vec<u8> {
    let eth = EthernetRepr {
        src_addr: EthernetAddress([0x02, 0, 0, 0, 0, 0x01]),
        dst_addr: EthernetAddress(mac),
        ethertype: EthernetProtocol::Ipv4,
    };
    let tcp = TcpRepr {
        src_port: from.port(),
        dst_port: to.port(),
        control: TcpControl::None,
        seq_number: TcpSeqNumber(seq as i32),
        ack_number: Some(TcpSeqNumber(ack as i32)),
        window_len: window,
        window_scale: None,
        max_seg_size: None,
        sack_permitted: false,
        sack_ranges: [None; 3],
        timestamp: None,
        payload,
    };
    // Identification 0, DF, TTL 64.
    let ip = Ipv4Repr {
        src_addr: *from.ip(),
        dst_addr: *to.ip(),
        next_header: IpProtocol::Tcp,
        payload_len: tcp.buffer_len(),
        hop_limit: 64,
    };
    let mut f = vec![0u8; eth.buffer_len() + ip.buffer_len() + tcp.buffer_len()];
    let mut frame = EthernetFrame::new_unchecked(&mut f[..]);
    eth.emit(&mut frame);
    let caps = ChecksumCapabilities::default();
    let mut packet = Ipv4Packet::new_unchecked(frame.payload_mut());
    ip.emit(&mut packet, &caps);
    // RFC 9293 §3.1: the checksum covers a pseudo-header of addresses, protocol and length.
    tcp.emit(
        &mut TcpPacket::new_unchecked(packet.payload_mut()),
        &ip.src_addr.into(),
        &ip.dst_addr.into(),
        &caps,
    );
    f
}

/// Whether an egress frame is for this node itself: addressed to our MAC (the neighbour layer
/// gives our own addresses and 127.0.0.0/8 our own MAC, so they never need ARP) or to one of
/// our addresses.
pub(crate) fn is_local<T: AsRef<[u8]>>(
    frame: &Frame<T>,
    mac: [u8; 6],
    is_own: impl Fn(Ipv4Addr) -> bool,
) -> bool {
    let Some(eth) = frame.ethernet() else {
        return false;
    };
    eth.dst_addr().as_bytes() == mac
        || (eth.ethertype() == EthernetProtocol::Ipv4 && frame.dst_addr().is_some_and(is_own))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eth_ipv4(proto: u8, src: [u8; 4], dst: [u8; 4], payload: &[u8]) -> Vec<u8> {
        let mut f = vec![0u8; 14];
        f[0..6].copy_from_slice(&[2, 0, 0, 0, 0, 1]);
        f[6..12].copy_from_slice(&[2, 0, 0, 0, 0, 2]);
        f[12..14].copy_from_slice(&[0x08, 0x00]);
        let total = 20 + payload.len();
        let mut ip = vec![
            0x45,
            0,
            (total >> 8) as u8,
            total as u8,
            0,
            0,
            0x40,
            0,
            64,
            proto,
            0,
            0,
        ];
        ip.extend_from_slice(&src);
        ip.extend_from_slice(&dst);
        f.extend_from_slice(&ip);
        f.extend_from_slice(payload);
        fill_checksums(&mut f);
        f
    }

    /// Sets the IPv4 header checksum and the TCP or ICMP checksum of `f`, as a sender would.
    fn fill_checksums(f: &mut [u8]) {
        let mut ip = Ipv4Packet::new_unchecked(&mut f[14..]);
        ip.fill_checksum();
        let (src, dst, proto) = (ip.src_addr(), ip.dst_addr(), ip.next_header());
        match proto {
            IpProtocol::Tcp => {
                TcpPacket::new_unchecked(ip.payload_mut()).fill_checksum(&src.into(), &dst.into())
            }
            IpProtocol::Icmp => {
                smoltcp::wire::Icmpv4Packet::new_unchecked(ip.payload_mut()).fill_checksum()
            }
            _ => {}
        }
    }

    fn rst_frame() -> Vec<u8> {
        // src port 80, dst port 4000, data offset 5, flags RST|ACK.
        let tcp = [
            0, 80, 0x0f, 0xa0, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x14, 0, 0, 0, 0, 0, 0,
        ];
        eth_ipv4(6, [10, 0, 0, 1], [10, 0, 0, 2], &tcp)
    }

    /// Issue 13: smoltcp drops a segment with a wrong checksum, and a fragment is looked at
    /// only once whole (RFC 791 §3.2): neither is observed.
    #[test]
    fn bad_checksums_and_fragments_are_not_observed() {
        assert!(observe(&Frame::parse(rst_frame())).is_some());
        let mut bad_tcp = rst_frame();
        bad_tcp[14 + 20 + 16] ^= 0x55;
        assert_eq!(observe(&Frame::parse(bad_tcp)), None);
        let mut bad_ip = rst_frame();
        bad_ip[14 + 10] ^= 0x55;
        assert_eq!(observe(&Frame::parse(bad_ip)), None);
        // More Fragments set, offset 0: the first fragment (checksums made right again).
        let mut first = rst_frame();
        first[14 + 6] = 0x20;
        fill_checksums(&mut first);
        assert!(Frame::parse(&first[..]).segment().is_some());
        assert_eq!(observe(&Frame::parse(first)), None);
    }

    #[test]
    fn sees_tcp_rst() {
        // src port 80, dst port 4000, data offset 5, flags RST|ACK.
        let mut tcp = vec![
            0, 80, 0x0f, 0xa0, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x14, 0, 0, 0, 0, 0, 0,
        ];
        let f = eth_ipv4(6, [10, 0, 0, 1], [10, 0, 0, 2], &tcp);
        let Some(Observed::Tcp { local, remote, seg }) = observe(&Frame::parse(&f[..])) else {
            panic!("not seen")
        };
        assert_eq!(local, "10.0.0.2:4000".parse().unwrap());
        assert_eq!(remote, "10.0.0.1:80".parse().unwrap());
        assert!(seg.rst);
        assert_eq!(seg.ack, Some(0));
        tcp[13] = 0x10; // plain ACK
        let Some(Observed::Tcp { seg, .. }) = observe(&Frame::parse(eth_ipv4(
            6,
            [10, 0, 0, 1],
            [10, 0, 0, 2],
            &tcp,
        ))) else {
            panic!()
        };
        assert!(!seg.rst);
        assert_eq!(seg.seq_end, 1);
    }

    #[test]
    fn sees_port_unreachable() {
        let quoted = eth_ipv4(
            17,
            [10, 0, 0, 2],
            [10, 0, 0, 1],
            &[0x0f, 0xa0, 0, 53, 0, 8, 0, 0],
        );
        let mut icmp = vec![3, 3, 0, 0, 0, 0, 0, 0];
        icmp.extend_from_slice(&quoted[14..]);
        let f = eth_ipv4(1, [10, 0, 0, 1], [10, 0, 0, 2], &icmp);
        assert_eq!(
            observe(&Frame::parse(&f[..])),
            Some(Observed::PortUnreachable {
                local: "10.0.0.2:4000".parse().unwrap(),
                remote: "10.0.0.1:53".parse().unwrap(),
            })
        );
        // RFC 792: a message whose checksum is wrong is not believed.
        let mut bad = f.clone();
        bad[14 + 20 + 2] ^= 0x55;
        assert_eq!(observe(&Frame::parse(bad)), None);
    }

    /// What `dup_ack([2, 0, 0, 0, 0, 2], 10.0.0.2:4000, 10.0.0.1:80, 77, 1000, 512)` emitted when
    /// it was written field by field (before it used smoltcp's Reprs): the Reprs must give the
    /// same octets.
    static DUP_ACK: [u8; 54] = [
        0x02, 0x00, 0x00, 0x00, 0x00, 0x02, 0x02, 0x00, 0x00, 0x00, 0x00, 0x01, 0x08, 0x00, //
        0x45, 0x00, 0x00, 0x28, 0x00, 0x00, 0x40, 0x00, 0x40, 0x06, 0x26, 0xce, 0x0a, 0x00, //
        0x00, 0x01, 0x0a, 0x00, 0x00, 0x02, 0x00, 0x50, 0x0f, 0xa0, 0x00, 0x00, 0x00, 0x4d, //
        0x00, 0x00, 0x03, 0xe8, 0x50, 0x10, 0x02, 0x00, 0x85, 0xad, 0x00, 0x00,
    ];

    #[test]
    fn dup_ack_emits_the_known_octets() {
        let (local, remote) = (
            "10.0.0.2:4000".parse().unwrap(),
            "10.0.0.1:80".parse().unwrap(),
        );
        let f = dup_ack([2, 0, 0, 0, 0, 2], local, remote, 77, 1000, 512);
        assert_eq!(&f[..], &DUP_ACK[..]);
    }

    #[test]
    fn dup_ack_parses_back() {
        let (local, remote) = (
            "10.0.0.2:4000".parse().unwrap(),
            "10.0.0.1:80".parse().unwrap(),
        );
        let f = dup_ack([2, 0, 0, 0, 0, 2], local, remote, 77, 1000, 512);
        let eth = EthernetFrame::new_checked(&f[..]).unwrap();
        let ip = Ipv4Packet::new_checked(eth.payload()).unwrap();
        assert!(ip.verify_checksum());
        let tcp = TcpPacket::new_checked(ip.payload()).unwrap();
        assert!(tcp.verify_checksum(&ip.src_addr().into(), &ip.dst_addr().into()));
        assert_eq!(
            observe(&Frame::parse(&f[..])),
            Some(Observed::Tcp {
                local,
                remote,
                seg: Segment {
                    rst: false,
                    syn: false,
                    seq: 77,
                    urg: None,
                    seq_end: 77,
                    ack: Some(1000),
                    window: 512
                }
            })
        );
    }

    #[test]
    fn garbage_observes_nothing() {
        for len in 0..80 {
            let f: Vec<u8> = (0..len).map(|i| (i * 37 + 11) as u8).collect();
            let f = Frame::parse(f);
            let _ = observe(&f);
            let _ = is_local(&f, [0; 6], |_| true);
        }
    }
}
