//! UDP and raw ICMP sockets above smoltcp.
//!
//! Read first: CHECKLIST §1.4 (`sendto`, `recvfrom`, message semantics), `connect` on
//! connectionless sockets (§1.3), and the raw-socket note in §1.2. RFC 768 (UDP), RFC 792 (ICMP).
//!
//! Message rules kept here: a datagram larger than the receive buffer fills it and the rest is
//! discarded (`WSAEMSGSIZE`); a connected UDP socket discards datagrams from anyone but its
//! peer; re-connecting to a different peer discards what was queued.
//!
//! `SIO_ENABLE_CIRCULAR_QUEUEING` (CHECKLIST 488, 489): smoltcp drops a datagram that does not
//! fit its receive buffer, which is the spec's default (the newest is lost). For a circular
//! socket [`Engine::udp_circular_ingress`] runs on every frame before smoltcp sees it and drops
//! the oldest queued datagrams until the new one (and any frames for the same port already
//! waiting in this pass) will fit. smoltcp 0.14 exposes the queued bytes but not the free
//! metadata slots or the ring's contiguous room, so "fits" is counted in bytes with room for
//! one wrap-around (free ≥ pending + 2 × size): a circular queue may drop one or two datagrams
//! more than strictly needed, and with datagrams under 128 bytes the 512 slots, not the
//! bytes, fill first and the newest is dropped as without the option. Fragmented datagrams are
//! not counted (smoltcp reassembles them later).

use std::net::{Ipv4Addr, SocketAddrV4};

use smoltcp::socket::{raw, udp};
use smoltcp::wire::{
    IpListenEndpoint, IpProtocol, IpVersion, Ipv4Packet, Ipv4Repr, UDP_HEADER_LEN,
};

use super::lifecycle::{Proto, SocketId, State};
use super::wire::Frame;
use super::Engine;
use crate::error::WsaError;

/// Largest UDP payload in one IPv4 datagram: 65,535 − 20 (IP) − 8 (UDP).
pub(crate) const MAX_UDP_PAYLOAD: usize = 65_507;
/// Largest ICMP message a raw socket sends: 65,535 − 20 (IP).
pub(crate) const MAX_RAW_PAYLOAD: usize = 65_515;
/// Datagrams a socket queues each way.
const DATAGRAM_SLOTS: usize = 512;

/// One received datagram: length copied, source, and whether it was cut short.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Received {
    pub(crate) len: usize,
    pub(crate) from: SocketAddrV4,
    pub(crate) truncated: bool,
}

impl Engine {
    /// Gives a UDP or raw socket its name and its smoltcp socket (`bind`, or implicitly on the
    /// first `sendto`/`connect`).
    pub(crate) fn dgram_bind(
        &mut self,
        id: SocketId,
        addr: SocketAddrV4,
    ) -> Result<SocketAddrV4, WsaError> {
        let name = self.bind_name(id, addr)?;
        let sock = self.sock(id)?;
        let (proto, rcv, snd) = (sock.proto, sock.opts.rcvbuf, sock.opts.sndbuf);
        let rx_meta = vec![udp::PacketMetadata::EMPTY; DATAGRAM_SLOTS];
        let tx_meta = vec![udp::PacketMetadata::EMPTY; DATAGRAM_SLOTS];
        let rx_len = rcv.max(MAX_RAW_PAYLOAD + 64);
        let tx_len = snd.max(MAX_RAW_PAYLOAD + 64);
        let h = match proto {
            Proto::Udp => {
                let mut s = udp::Socket::new(
                    udp::PacketBuffer::new(rx_meta, vec![0u8; rx_len]),
                    udp::PacketBuffer::new(tx_meta, vec![0u8; tx_len]),
                );
                let ep = IpListenEndpoint {
                    addr: (!name.ip().is_unspecified()).then(|| (*name.ip()).into()),
                    port: name.port(),
                };
                if s.bind(ep).is_err() {
                    return Err(WsaError::WSAEINVAL);
                }
                self.sockets.add(s)
            }
            Proto::RawIcmp => {
                let meta = || vec![raw::PacketMetadata::EMPTY; DATAGRAM_SLOTS];
                let s = raw::Socket::new(
                    Some(IpVersion::Ipv4),
                    Some(IpProtocol::Icmp),
                    raw::PacketBuffer::new(meta(), vec![0u8; rx_len]),
                    raw::PacketBuffer::new(meta(), vec![0u8; tx_len]),
                );
                self.sockets.add(s)
            }
            Proto::Tcp | Proto::Rmp => return Ok(name),
        };
        self.sock(id)?.state = State::Datagram(h);
        Ok(name)
    }

    /// The smoltcp socket of a datagram socket, binding it to `0.0.0.0:0` first if needed.
    pub(crate) fn dgram_handle(
        &mut self,
        id: SocketId,
    ) -> Result<smoltcp::iface::SocketHandle, WsaError> {
        if let State::Datagram(h) = self.sock(id)?.state {
            return Ok(h);
        }
        self.dgram_bind(id, SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0))?;
        self.sock(id)?.handle().ok_or(WsaError::WSAEINVAL)
    }

    /// Checks a datagram destination as `sendto` and `connect` do.
    pub(crate) fn check_destination(
        &mut self,
        id: SocketId,
        to: SocketAddrV4,
    ) -> Result<(), WsaError> {
        let proto = self.sock(id)?.proto;
        if to.ip().is_unspecified() {
            return Err(WsaError::WSAEDESTADDRREQ);
        }
        if to.port() == 0 && proto == Proto::Udp {
            return Err(WsaError::WSAEADDRNOTAVAIL);
        }
        if self.is_broadcast(*to.ip()) && !self.sock(id)?.opts.broadcast {
            return Err(WsaError::WSAEACCES);
        }
        if !self.routable(*to.ip()) {
            return Err(WsaError::WSAENETUNREACH);
        }
        Ok(())
    }

    /// Queues one datagram to `to`. `Ok(None)` = no room now.
    pub(crate) fn dgram_send(
        &mut self,
        id: SocketId,
        to: SocketAddrV4,
        data: &[u8],
    ) -> Result<Option<usize>, WsaError> {
        let sock = self.sock(id)?;
        if sock.rmp.is_some() {
            return self.rmp_send(id, data);
        }
        if sock.shut_send {
            return Err(WsaError::WSAESHUTDOWN);
        }
        if std::mem::take(&mut sock.icmp_unreachable) {
            return Err(WsaError::WSAECONNRESET);
        }
        let proto = sock.proto;
        let max = if proto == Proto::Udp {
            MAX_UDP_PAYLOAD
        } else {
            MAX_RAW_PAYLOAD
        };
        if data.len() > max {
            return Err(WsaError::WSAEMSGSIZE);
        }
        self.check_destination(id, to)?;
        if !self.qos_dgram_room(id, data.len())? {
            return Ok(None);
        }
        // Held back while the next hop is being resolved and much already waits (`neighbor`).
        if !self.device.neigh.has_room(*to.ip()) {
            return Ok(None);
        }
        let h = self.dgram_handle(id)?;
        if proto == Proto::Udp && to.ip().is_multicast() {
            return self.mcast_send(id, to, data);
        }
        let src = self.source_for(*to.ip());
        match proto {
            Proto::Udp => {
                let s = self.sockets.get_mut::<udp::Socket>(h);
                let meta = udp::UdpMetadata {
                    endpoint: (*to.ip(), to.port()).into(),
                    local_address: Some(src.into()),
                    meta: Default::default(),
                };
                match s.send_slice(data, meta) {
                    Ok(()) => {
                        self.wake = true;
                        Ok(Some(data.len()))
                    }
                    Err(udp::SendError::BufferFull) => Ok(None),
                    Err(udp::SendError::Unaddressable) => Err(WsaError::WSAEADDRNOTAVAIL),
                }
            }
            Proto::RawIcmp => {
                let repr = Ipv4Repr {
                    src_addr: src,
                    dst_addr: *to.ip(),
                    next_header: IpProtocol::Icmp,
                    payload_len: data.len(),
                    hop_limit: 64,
                };
                let s = self.sockets.get_mut::<raw::Socket>(h);
                match s.send(repr.buffer_len() + data.len()) {
                    Ok(buf) => {
                        let mut packet = Ipv4Packet::new_unchecked(buf);
                        repr.emit(&mut packet, &smoltcp::phy::ChecksumCapabilities::default());
                        packet.payload_mut().copy_from_slice(data);
                        self.wake = true;
                        Ok(Some(data.len()))
                    }
                    Err(_) => Ok(None),
                }
            }
            Proto::Tcp | Proto::Rmp => Err(WsaError::WSAEOPNOTSUPP),
        }
    }

    /// Takes (or peeks at) the next datagram into `buf`. `Ok(None)` = nothing queued. Datagrams
    /// from anyone but a connected peer are discarded on the way.
    pub(crate) fn dgram_recv(
        &mut self,
        id: SocketId,
        buf: &mut [u8],
        peek: bool,
    ) -> Result<Option<Received>, WsaError> {
        let sock = self.sock(id)?;
        if sock.rmp.is_some() {
            return self.rmp_recv(id, buf, peek);
        }
        if sock.bound.is_none() {
            return Err(WsaError::WSAEINVAL);
        }
        if sock.shut_recv {
            return Err(WsaError::WSAESHUTDOWN);
        }
        if std::mem::take(&mut sock.icmp_unreachable) {
            return Err(WsaError::WSAECONNRESET);
        }
        let (proto, peer) = (sock.proto, sock.peer);
        let h = self.dgram_handle(id)?;
        if let Some(r) = self.mcast_recv(id, buf, peek) {
            return Ok(Some(r));
        }
        loop {
            let (data, from) = match proto {
                Proto::Udp => {
                    let s = self.sockets.get_mut::<udp::Socket>(h);
                    let Ok((data, meta)) = s.peek() else {
                        return Ok(None);
                    };
                    let smoltcp::wire::IpAddress::Ipv4(ip) = meta.endpoint.addr;
                    (data, SocketAddrV4::new(ip, meta.endpoint.port))
                }
                _ => {
                    let s = self.sockets.get_mut::<raw::Socket>(h);
                    let Ok(data) = s.peek() else { return Ok(None) };
                    let src = Ipv4Packet::new_checked(data)
                        .map(|p| p.src_addr())
                        .unwrap_or(Ipv4Addr::UNSPECIFIED);
                    (data, SocketAddrV4::new(src, 0))
                }
            };
            let wanted = proto != Proto::Udp || peer.is_none_or(|p| p == from);
            let n = data.len().min(buf.len());
            let truncated = data.len() > buf.len();
            if wanted {
                buf[..n].copy_from_slice(&data[..n]);
            }
            if !peek || !wanted {
                self.dgram_discard(proto, h);
            }
            if wanted {
                return Ok(Some(Received {
                    len: n,
                    from,
                    truncated,
                }));
            }
        }
    }

    fn dgram_queued(&mut self, proto: Proto, h: smoltcp::iface::SocketHandle) -> bool {
        match proto {
            Proto::Udp => self.sockets.get::<udp::Socket>(h).can_recv(),
            _ => self.sockets.get::<raw::Socket>(h).can_recv(),
        }
    }

    fn dgram_discard(&mut self, proto: Proto, h: smoltcp::iface::SocketHandle) {
        match proto {
            Proto::Udp => drop(self.sockets.get_mut::<udp::Socket>(h).recv()),
            _ => drop(self.sockets.get_mut::<raw::Socket>(h).recv()),
        }
    }

    /// `connect` on a datagram socket: sets (or with `None` clears) the default peer;
    /// datagrams queued from elsewhere are discarded when the peer changes.
    pub(crate) fn dgram_connect(
        &mut self,
        id: SocketId,
        peer: Option<SocketAddrV4>,
    ) -> Result<(), WsaError> {
        if let Some(to) = peer {
            self.check_destination(id, to)?;
        }
        let h = self.dgram_handle(id)?;
        let sock = self.sock(id)?;
        let changed = sock.peer != peer;
        let proto = sock.proto;
        sock.peer = peer;
        sock.disconnected = peer.is_none();
        if let (true, Some(p)) = (changed, peer) {
            while self.dgram_queued(proto, h) {
                self.dgram_discard(proto, h);
            }
            self.mcast_keep_only(id, p);
        }
        Ok(())
    }

    /// Discards queued datagrams that a connected UDP socket must not see (from anyone but its
    /// peer), so that readiness, `FIONREAD` and FD_READ speak only of datagrams `recv` returns.
    fn dgram_drop_strangers(&mut self, id: SocketId) {
        let Some(sock) = self.table.get(&id) else {
            return;
        };
        let (Proto::Udp, Some(peer), State::Datagram(h)) = (sock.proto, sock.peer, &sock.state)
        else {
            return;
        };
        let s = self.sockets.get_mut::<udp::Socket>(*h);
        while let Ok((_, meta)) = s.peek() {
            let smoltcp::wire::IpAddress::Ipv4(ip) = meta.endpoint.addr;
            if SocketAddrV4::new(ip, meta.endpoint.port) == peer {
                break;
            }
            let _ = s.recv();
        }
    }

    /// Size of the first queued datagram (`FIONREAD` on a message socket).
    pub(crate) fn dgram_first_len(&mut self, id: SocketId) -> Result<usize, WsaError> {
        if self.sock(id)?.rmp.is_some() {
            return Ok(self.rmp_first_len(id));
        }
        self.dgram_drop_strangers(id);
        if let Some(n) = self.mcast_first_len(id) {
            return Ok(n);
        }
        let Some(h) = self.sock(id)?.handle() else {
            return Ok(0);
        };
        let proto = self.sock(id)?.proto;
        Ok(match proto {
            Proto::Udp => self
                .sockets
                .get_mut::<udp::Socket>(h)
                .peek()
                .map_or(0, |(d, _)| d.len()),
            _ => self
                .sockets
                .get_mut::<raw::Socket>(h)
                .peek()
                .map_or(0, |d| d.len()),
        })
    }

    /// Readiness of a datagram socket for `select`: (readable, writable).
    pub(crate) fn dgram_readiness(&mut self, id: SocketId) -> (bool, bool) {
        if self.table.get(&id).is_some_and(|s| s.rmp.is_some()) {
            let (r, w, _) = self.rmp_readiness(id);
            return (r, w);
        }
        self.dgram_drop_strangers(id);
        let Some(sock) = self.table.get(&id) else {
            return (false, false);
        };
        let State::Datagram(h) = sock.state else {
            return (false, true);
        };
        // A shaped socket is writable only while its shaper queue has room.
        let room = self.qos_dgram_room(id, 0).unwrap_or(true);
        match sock.proto {
            Proto::Udp => {
                let s = self.sockets.get::<udp::Socket>(h);
                (
                    s.can_recv() || !sock.mcast.rx.is_empty(),
                    s.can_send() && room,
                )
            }
            _ => {
                let s = self.sockets.get::<raw::Socket>(h);
                (s.can_recv(), s.can_send())
            }
        }
    }

    /// `SIO_ENABLE_CIRCULAR_QUEUEING`, a stage of the ingress pipeline: makes room for the UDP
    /// datagram in `frame` on a circular socket bound to its port by dropping that socket's
    /// oldest datagrams (see the module docs). Frames for anything else are left alone.
    pub(crate) fn udp_circular_ingress(&mut self, frame: &Frame) {
        let Some((port, len)) = udp_datagram_of(frame) else {
            return;
        };
        let circular: Vec<_> = self
            .ports
            .holders(Proto::Udp, port)
            .filter_map(|id| {
                let s = self.table.get(&id)?;
                match (s.opts.circular, &s.state) {
                    (true, State::Datagram(h)) => Some(*h),
                    _ => None,
                }
            })
            .collect();
        if circular.is_empty() {
            return;
        }
        // Frames for the same port already queued in this pass reach smoltcp first. They wait
        // as plain octets in smoltcp's queue, so they are read again here — only ever for a
        // port a circular socket holds.
        let pending: usize = self
            .device
            .rx
            .iter()
            .filter_map(|f| udp_datagram_of(&Frame::parse(&f[..])))
            .filter(|(p, _)| *p == port)
            .map(|(_, n)| n)
            .sum();
        for h in circular {
            let s = self.sockets.get_mut::<udp::Socket>(h);
            while s.payload_recv_capacity().saturating_sub(s.recv_queue()) < pending + 2 * len {
                if s.recv().is_err() {
                    break;
                }
            }
        }
    }

    /// `SIO_FIND_ROUTE` (CHECKLIST 492): forgets the link-layer address of the next hop towards
    /// `dst` and asks for it again with an ARP request (the engine's neighbour table,
    /// `neighbor`). Addresses that need no neighbour (our own, loopback, broadcast, multicast)
    /// succeed without a request.
    pub(crate) fn find_route(&mut self, dst: Ipv4Addr) -> Result<(), WsaError> {
        if !self.routable(dst) {
            return Err(WsaError::WSAENETUNREACH);
        }
        if self.is_own(dst) || dst.is_loopback() || dst.is_multicast() || self.is_broadcast(dst) {
            return Ok(());
        }
        let hop = if self.config.addrs.iter().any(|c| c.contains(dst)) {
            dst
        } else {
            self.config.gateway.ok_or(WsaError::WSAENETUNREACH)?
        };
        let now = self.now;
        let device = &mut self.device;
        let tx = &mut device.tx;
        device
            .neigh
            .refresh(now, hop, &mut |f| tx.push_back(Frame::parse(f)));
        self.wake = true;
        Ok(())
    }
}

/// The destination port and payload length of a whole (unfragmented) UDP datagram in a frame.
fn udp_datagram_of<T: AsRef<[u8]>>(frame: &Frame<T>) -> Option<(u16, usize)> {
    let udp = frame.udp()?;
    Some((
        udp.dst_port(),
        usize::from(udp.len()).saturating_sub(UDP_HEADER_LEN),
    ))
}
