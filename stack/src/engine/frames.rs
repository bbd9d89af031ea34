//! What the engine reads in frames on their way past smoltcp.
//!
//! - Local delivery: an egress frame for one of this node's own addresses (or 127.0.0.0/8) goes
//!   back into the node's own receive queue instead of onto the link, ARP for them included, so
//!   a Winsock application can reach itself (smoltcp does not do this by itself).
//! - Observations smoltcp does not report: an incoming TCP RST (so a refused connect is
//!   `WSAECONNREFUSED`, a reset connection `WSAECONNRESET`, not a time-out) and an ICMP port
//!   unreachable for a UDP datagram we sent (`WSAECONNRESET` on that socket's next call, as the
//!   `recv` reference describes). RFC 792 (ICMP), RFC 9293 §3.1 (the TCP header).
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
    /// A TCP segment with RST for the connection `local` ↔ `remote`.
    TcpReset { local: SocketAddrV4, remote: SocketAddrV4 },
    /// ICMP port unreachable for a UDP datagram sent from `local`.
    PortUnreachable { local: SocketAddrV4 },
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
            tcp.rst().then(|| Observed::TcpReset {
                local: SocketAddrV4::new(ip.dst_addr(), tcp.dst_port()),
                remote: SocketAddrV4::new(ip.src_addr(), tcp.src_port()),
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
            Some(Observed::PortUnreachable { local: SocketAddrV4::new(inner.src_addr(), udp.src_port()) })
        }
        _ => None,
    }
}

/// Whether an egress frame is for this node itself.
pub(crate) fn is_local(frame: &[u8], mac: [u8; 6], is_own: impl Fn(Ipv4Addr) -> bool) -> bool {
    let Ok(eth) = EthernetFrame::new_checked(frame) else { return false };
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
        let mut ip = vec![0x45, 0, (total >> 8) as u8, total as u8, 0, 0, 0x40, 0, 64, proto, 0, 0];
        ip.extend_from_slice(&src);
        ip.extend_from_slice(&dst);
        f.extend_from_slice(&ip);
        f.extend_from_slice(payload);
        f
    }

    #[test]
    fn sees_tcp_rst() {
        // src port 80, dst port 4000, data offset 5, flags RST|ACK.
        let mut tcp = vec![0, 80, 0x0f, 0xa0, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x14, 0, 0, 0, 0, 0, 0];
        let f = eth_ipv4(6, [10, 0, 0, 1], [10, 0, 0, 2], &tcp);
        assert_eq!(
            observe(&f),
            Some(Observed::TcpReset {
                local: "10.0.0.2:4000".parse().unwrap(),
                remote: "10.0.0.1:80".parse().unwrap()
            })
        );
        tcp[13] = 0x10; // plain ACK
        assert_eq!(observe(&eth_ipv4(6, [10, 0, 0, 1], [10, 0, 0, 2], &tcp)), None);
    }

    #[test]
    fn sees_port_unreachable() {
        let quoted = eth_ipv4(17, [10, 0, 0, 2], [10, 0, 0, 1], &[0x0f, 0xa0, 0, 53, 0, 8, 0, 0]);
        let mut icmp = vec![3, 3, 0, 0, 0, 0, 0, 0];
        icmp.extend_from_slice(&quoted[14..]);
        let f = eth_ipv4(1, [10, 0, 0, 1], [10, 0, 0, 2], &icmp);
        assert_eq!(
            observe(&f),
            Some(Observed::PortUnreachable { local: "10.0.0.2:4000".parse().unwrap() })
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
