//! What the engine reads in frames on their way past smoltcp.
//!
//! - Local delivery: an egress frame for one of this node's own addresses (or 127.0.0.0/8) goes
//!   back into the node's own receive queue instead of onto the link, ARP for them included, so
//!   a Winsock application can reach itself (smoltcp does not do this by itself).
//! - Observations smoltcp does not report: every incoming TCP segment's RST flag, sequence,
//!   acknowledgment and window (so a refused connect is `WSAECONNREFUSED`, a reset connection
//!   `WSAECONNRESET`, not a time-out, and the tail-loss probe knows when acknowledgments stopped),
//!   SYN and the urgent pointer (TCP urgent data, `urgent`)
//!   and an ICMP port unreachable for a UDP datagram we sent (`WSAECONNRESET` on that socket's
//!   next call, as the `recv` reference describes). RFC 792 (ICMP), RFC 9293 §3.1 (the TCP
//!   header).
//! - [`dup_ack`]: the duplicate acknowledgment the tail-loss probe feeds smoltcp (see
//!   `Core::probe_stalled`).
//!
//! Malformed frames are simply "nothing observed"; smoltcp then drops them itself.

use std::net::{Ipv4Addr, SocketAddrV4};

use smoltcp::wire::{
    ArpOperation, ArpPacket, EthernetFrame, EthernetProtocol, Icmpv4Message, Icmpv4Packet,
    IpProtocol, Ipv4Packet, TcpPacket, UdpPacket,
};

/// Something an ingress frame told us.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Observed {
    /// A TCP segment for the connection `local` ↔ `remote`.
    Tcp {
        local: SocketAddrV4,
        remote: SocketAddrV4,
        seg: Segment,
    },
    /// ICMP port unreachable for a UDP datagram sent from `local`.
    PortUnreachable { local: SocketAddrV4 },
}

/// The header fields of an incoming TCP segment the engine keeps.
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

/// Reads what the engine cares about in an ingress frame.
pub(crate) fn observe(frame: &[u8]) -> Option<Observed> {
    let eth = EthernetFrame::new_checked(frame).ok()?;
    if eth.ethertype() != EthernetProtocol::Ipv4 {
        return None;
    }
    let ip = Ipv4Packet::new_checked(eth.payload()).ok()?;
    match ip.next_header() {
        IpProtocol::Tcp => {
            let tcp = TcpPacket::new_checked(ip.payload()).ok()?;
            let len = tcp.payload().len() as u32 + u32::from(tcp.syn()) + u32::from(tcp.fin());
            Some(Observed::Tcp {
                local: SocketAddrV4::new(ip.dst_addr(), tcp.dst_port()),
                remote: SocketAddrV4::new(ip.src_addr(), tcp.src_port()),
                seg: Segment {
                    rst: tcp.rst(),
                    syn: tcp.syn(),
                    seq: tcp.seq_number().0 as u32,
                    urg: tcp.urg().then(|| tcp.urgent_at()),
                    seq_end: tcp.seq_number().0.wrapping_add(len as i32) as u32,
                    ack: tcp.ack().then(|| tcp.ack_number().0 as u32),
                    window: tcp.window_len(),
                },
            })
        }
        IpProtocol::Icmp => {
            let icmp = Icmpv4Packet::new_checked(ip.payload()).ok()?;
            // RFC 792: destination unreachable, code 3 = port unreachable; the data is the
            // original IP header plus the first 64 bits of its payload.
            if icmp.msg_type() != Icmpv4Message::DstUnreachable || icmp.msg_code() != 3 {
                return None;
            }
            let inner = Ipv4Packet::new_checked(icmp.data()).ok().or_else(|| {
                // The quoted datagram is truncated to 8 payload bytes, which new_checked
                // rejects when the quoted total length is larger; read the header by hand.
                let d = icmp.data();
                (d.len() >= 28).then(|| Ipv4Packet::new_unchecked(d))
            })?;
            if inner.next_header() != IpProtocol::Udp {
                return None;
            }
            let hl = usize::from(inner.header_len());
            let d = icmp.data();
            if hl < 20 || d.len() < hl + 8 {
                return None;
            }
            let udp = UdpPacket::new_unchecked(&d[hl..hl + 8]);
            Some(Observed::PortUnreachable {
                local: SocketAddrV4::new(inner.src_addr(), udp.src_port()),
            })
        }
        _ => None,
    }
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
    const ETH: usize = 14;
    const IP: usize = 20;
    const TCP: usize = 20;
    let mut f = vec![0u8; ETH + IP + TCP];
    f[0..6].copy_from_slice(&mac);
    f[6..12].copy_from_slice(&[0x02, 0, 0, 0, 0, 0x01]);
    f[12..14].copy_from_slice(&[0x08, 0x00]);
    {
        let ip = &mut f[ETH..ETH + IP];
        ip[0] = 0x45;
        ip[2..4].copy_from_slice(&((IP + TCP) as u16).to_be_bytes());
        ip[6] = 0x40; // DF
        ip[8] = 64;
        ip[9] = 6;
        ip[12..16].copy_from_slice(&remote.ip().octets());
        ip[16..20].copy_from_slice(&local.ip().octets());
        let sum = checksum(ip, 0);
        ip[10..12].copy_from_slice(&sum.to_be_bytes());
    }
    {
        let tcp = &mut f[ETH + IP..];
        tcp[0..2].copy_from_slice(&remote.port().to_be_bytes());
        tcp[2..4].copy_from_slice(&local.port().to_be_bytes());
        tcp[4..8].copy_from_slice(&seq.to_be_bytes());
        tcp[8..12].copy_from_slice(&ack.to_be_bytes());
        tcp[12] = 0x50;
        tcp[13] = 0x10; // ACK
        tcp[14..16].copy_from_slice(&window.to_be_bytes());
        // RFC 9293 §3.1: the checksum covers a pseudo-header of addresses, protocol and length.
        let mut pseudo = 0u32;
        for chunk in [remote.ip().octets(), local.ip().octets()] {
            pseudo += u32::from(u16::from_be_bytes([chunk[0], chunk[1]]))
                + u32::from(u16::from_be_bytes([chunk[2], chunk[3]]));
        }
        pseudo += 6 + TCP as u32;
        let sum = checksum(tcp, pseudo);
        tcp[16..18].copy_from_slice(&sum.to_be_bytes());
    }
    f
}

/// RFC 1071 Internet checksum of `data`, starting from `initial`.
pub(crate) fn checksum(data: &[u8], initial: u32) -> u16 {
    let mut sum = initial;
    for c in data.chunks(2) {
        sum += u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]));
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// Whether an egress frame is for this node itself.
pub(crate) fn is_local(frame: &[u8], mac: [u8; 6], is_own: impl Fn(Ipv4Addr) -> bool) -> bool {
    let Ok(eth) = EthernetFrame::new_checked(frame) else {
        return false;
    };
    if eth.dst_addr().as_bytes() == mac {
        return true;
    }
    match eth.ethertype() {
        EthernetProtocol::Arp => ArpPacket::new_checked(eth.payload()).is_ok_and(|arp| {
            arp.operation() == ArpOperation::Request
                && arp.target_protocol_addr().len() == 4
                && is_own(Ipv4Addr::from(
                    <[u8; 4]>::try_from(arp.target_protocol_addr()).unwrap_or_default(),
                ))
        }),
        EthernetProtocol::Ipv4 => {
            Ipv4Packet::new_checked(eth.payload()).is_ok_and(|ip| is_own(ip.dst_addr()))
        }
        _ => false,
    }
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
        f
    }

    #[test]
    fn sees_tcp_rst() {
        // src port 80, dst port 4000, data offset 5, flags RST|ACK.
        let mut tcp = vec![
            0, 80, 0x0f, 0xa0, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x14, 0, 0, 0, 0, 0, 0,
        ];
        let f = eth_ipv4(6, [10, 0, 0, 1], [10, 0, 0, 2], &tcp);
        let Some(Observed::Tcp { local, remote, seg }) = observe(&f) else {
            panic!("not seen")
        };
        assert_eq!(local, "10.0.0.2:4000".parse().unwrap());
        assert_eq!(remote, "10.0.0.1:80".parse().unwrap());
        assert!(seg.rst);
        assert_eq!(seg.ack, Some(0));
        tcp[13] = 0x10; // plain ACK
        let Some(Observed::Tcp { seg, .. }) =
            observe(&eth_ipv4(6, [10, 0, 0, 1], [10, 0, 0, 2], &tcp))
        else {
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
            observe(&f),
            Some(Observed::PortUnreachable {
                local: "10.0.0.2:4000".parse().unwrap()
            })
        );
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
            observe(&f),
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
            let _ = observe(&f);
            let _ = is_local(&f, [0; 6], |_| true);
        }
    }
}
