//! IP multicast: group membership per socket, IGMP on the wire, multicast datagrams both ways.
//!
//! Implements RFC 1112 §6 (host extensions: sending, receiving, the Ethernet mapping of §6.4)
//! and the socket-level service interface of RFC 3376 §2–3 (per-socket source filters merged
//! into the interface state). The IGMP messages themselves (RFC 2236, RFC 3376) come from the
//! sans-IO host machine in `ws2_multipoint::igmp`.
//!
//! Read first: CHECKLIST §1.10.6 (IP multicast mapping), D-16 (loopback defaults to TRUE), D-17
//! (scope 0 stays on this host), Appendix C (smoltcp's interface-wide table of four groups and
//! one unrepeated report, which is why smoltcp's IGMP is not used).
//!
//! Multicast UDP bypasses smoltcp both ways:
//! - **in**: a datagram to a group is copied to every member socket bound to its port (on
//!   0.0.0.0 or the group address) whose source filter accepts the sender; smoltcp would give it
//!   to one socket, and only for groups in its own table;
//! - **out**: the datagram is built here, with the socket's scope as its TTL (smoltcp's hop
//!   limit is per socket, applies to unicast too, and cannot be zero), copied to the local
//!   members first (D-16, D-17), and put through the QoS shaper like smoltcp's frames.
//!
//! Local copies: every other member socket on this host gets the datagram (they are other
//! leaves of the session); the sending socket gets its own copy only with
//! `SIO_MULTIPOINT_LOOPBACK`/`IP_MULTICAST_LOOP` on (docs/decisions.md).
//!
//! Fragmented multicast datagrams arrive here already reassembled (`reassembly`, the ingress
//! stage before this one); sent ones are fragmented here.

use std::collections::VecDeque;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use smoltcp::phy::ChecksumCapabilities;
use smoltcp::wire::{IpProtocol, Ipv4Packet, Ipv4Repr, UdpPacket, IPV4_HEADER_LEN, UDP_HEADER_LEN};
use ws2_multipoint::igmp::{self, Host, HostConfig, JoinError, SourceFilter};

use super::lifecycle::{Proto, SocketId};
use super::udp::{Received, MAX_UDP_PAYLOAD};
use super::wire::Frame;
use super::Engine;
use crate::error::WsaError;
use crate::notify::fd::FD_CONNECT;

/// Multicast datagrams one socket queues at most (its `SO_RCVBUF` bounds the bytes).
const MAX_QUEUED: usize = 512;
/// Multicast frames waiting for the next pass at most before a send would block.
const MAX_PENDING_FRAMES: usize = 1024;

/// The multicast side of one socket.
#[derive(Debug)]
pub(crate) struct MemberState {
    /// Created with `WSA_FLAG_MULTIPOINT_C_LEAF | WSA_FLAG_MULTIPOINT_D_LEAF` (§1.10.2).
    pub(crate) multipoint: bool,
    /// `SIO_MULTICAST_SCOPE` / `IP_MULTICAST_TTL`: 0 = this host only, default 1 (D-17).
    pub(crate) scope: u8,
    /// `SIO_MULTIPOINT_LOOPBACK` / `IP_MULTICAST_LOOP` (D-16: TRUE).
    pub(crate) loopback: bool,
    /// `IP_MULTICAST_IF`: the source address of multicast sends (unspecified = the default).
    pub(crate) interface: Ipv4Addr,
    /// Sessions (group addresses) joined with `WSAJoinLeaf`, receiving or not.
    pub(crate) sessions: Vec<Ipv4Addr>,
    /// The default destination `WSAJoinLeaf` gave (`send` without an address goes there).
    pub(crate) session: Option<SocketAddrV4>,
    /// A receiving `WSAJoinLeaf` whose report has not left yet: the pass number it waits for.
    pub(crate) join_pending: Option<u64>,
    /// A join finished (FD_CONNECT holds).
    pub(crate) joined: bool,
    /// Received multicast datagrams: payload and sender.
    pub(crate) rx: VecDeque<(Vec<u8>, SocketAddrV4)>,
    pub(crate) rx_bytes: usize,
}

impl Default for MemberState {
    fn default() -> MemberState {
        MemberState {
            multipoint: false,
            scope: 1,
            loopback: true,
            interface: Ipv4Addr::UNSPECIFIED,
            sessions: Vec::new(),
            session: None,
            join_pending: None,
            joined: false,
            rx: VecDeque::new(),
            rx_bytes: 0,
        }
    }
}

/// The stack's multicast state: the IGMP host machine and counters.
#[derive(Debug)]
pub(crate) struct Multicast {
    pub(crate) host: Host,
    /// Sockets with a join waiting for its report to leave: when the join was made (its report
    /// is due then), and the link's frame count that means it has left (assigned by the pass
    /// that queued the report).
    pending: Vec<(SocketId, Instant, Option<u64>)>,
    /// Frames the link has accepted since the stack started (kept by the owner thread).
    link_sent: u64,
    /// Whether `pending` has entries: the owner thread then reports link progress at once.
    pub(crate) waiting: Arc<AtomicBool>,
    /// IPv4 identification for the datagrams built here.
    ip_id: u16,
    pub(crate) delivered: u64,
    pub(crate) dropped: u64,
}

impl Multicast {
    pub(crate) fn new(mtu: usize, version: Option<u8>, source: Ipv4Addr, seed: u64) -> Multicast {
        let config = HostConfig {
            mtu,
            force_version: version.and_then(|v| match v {
                1 => Some(igmp::Version::V1),
                2 => Some(igmp::Version::V2),
                3 => Some(igmp::Version::V3),
                _ => None,
            }),
            ..HostConfig::default()
        };
        let mut host = Host::new(config, seed);
        host.set_source(source);
        Multicast {
            host,
            pending: Vec::new(),
            link_sent: 0,
            waiting: Arc::default(),
            ip_id: (seed as u16) | 1,
            delivered: 0,
            dropped: 0,
        }
    }
}

/// The error a membership change gets from the host machine.
fn join_error(e: JoinError) -> WsaError {
    match e {
        JoinError::NotMulticast => WsaError::WSAEADDRNOTAVAIL,
        JoinError::TooManyGroups | JoinError::TooManySources => WsaError::WSAENOBUFS,
    }
}

/// What a `WSAJoinLeaf` asks for (`JL_SENDER_ONLY` joins without membership).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum JoinRole {
    SenderOnly,
    Receiver,
}

impl Engine {
    /// The IP source of multicast sends from `id`.
    fn mcast_source(&self, id: SocketId, group: Ipv4Addr) -> Ipv4Addr {
        match self.table.get(&id).map(|s| s.mcast.interface) {
            Some(ip) if !ip.is_unspecified() => ip,
            _ => self.source_for(group),
        }
    }

    /// Checks the interface of an `IP_ADD_MEMBERSHIP`-style request: 0.0.0.0 or one of ours.
    pub(crate) fn mcast_check_interface(&self, ip: Ipv4Addr) -> Result<(), WsaError> {
        if ip.is_unspecified() || self.config.addrs.iter().any(|c| c.addr == ip) {
            Ok(())
        } else {
            Err(WsaError::WSAEADDRNOTAVAIL)
        }
    }

    /// A socket's source filter for `group` becomes `filter` (INCLUDE {} leaves). Returns whether
    /// the interface state changed (then IGMP will say so on the next pass).
    pub(crate) fn mcast_set_filter(
        &mut self,
        id: SocketId,
        group: Ipv4Addr,
        filter: SourceFilter,
    ) -> Result<bool, WsaError> {
        self.sock(id)?;
        let changed = self
            .mcast
            .host
            .set_filter(self.now, id, group, filter)
            .map_err(join_error)?;
        if changed {
            self.wake = true;
        }
        Ok(changed)
    }

    /// A socket's current filter for `group`, if it is a member.
    pub(crate) fn mcast_filter(&self, id: SocketId, group: Ipv4Addr) -> Option<SourceFilter> {
        self.mcast.host.member_filter(id, group).cloned()
    }

    /// `WSAJoinLeaf` on a multicast socket (§1.10.6): joins `to`'s group unless `role` is
    /// sender-only, and makes `to` the socket's default destination. The join completes
    /// (FD_CONNECT) once the first report has left, on the next pass, or at once when no report
    /// is needed. Returns whether it is complete.
    pub(crate) fn mcast_join(
        &mut self,
        id: SocketId,
        to: SocketAddrV4,
        role: JoinRole,
    ) -> Result<bool, WsaError> {
        let group = *to.ip();
        let sock = self.sock(id)?;
        if sock.mcast.join_pending.is_some() {
            return Err(WsaError::WSAEALREADY);
        }
        if sock.mcast.sessions.contains(&group) {
            return Err(WsaError::WSAEISCONN);
        }
        if sock.bound.is_none() {
            self.dgram_bind(id, SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, to.port()))?;
        }
        let changed = match role {
            JoinRole::SenderOnly => false,
            JoinRole::Receiver => self.mcast_set_filter(id, group, SourceFilter::any_source())?,
        };
        let passes = self.stats.passes;
        let sock = self.sock(id)?;
        sock.mcast.sessions.push(group);
        sock.mcast.session.get_or_insert(to);
        if changed {
            sock.mcast.join_pending = Some(passes);
            self.mcast.pending.push((id, self.now, None));
            self.mcast.waiting.store(true, Ordering::Relaxed);
            Ok(false)
        } else {
            self.mcast_join_done(id);
            Ok(true)
        }
    }

    fn mcast_join_done(&mut self, id: SocketId) {
        if let Some(s) = self.table.get_mut(&id) {
            s.mcast.join_pending = None;
            s.mcast.joined = true;
            self.fd_arm(id, FD_CONNECT);
        }
    }

    /// Whether a socket's join has completed (`None` = the socket is gone).
    pub(crate) fn mcast_join_complete(&self, id: SocketId) -> Option<bool> {
        self.table.get(&id).map(|s| s.mcast.join_pending.is_none())
    }

    /// A socket is closing: its memberships end (the interface leaves a group with its last
    /// member).
    pub(crate) fn mcast_forget(&mut self, id: SocketId) {
        self.mcast.host.leave_all(self.now, id);
        self.mcast.pending.retain(|&(p, _, _)| p != id);
        self.wake = true;
    }

    /// Groups the interface is a member of.
    pub(crate) fn mcast_groups(&self) -> Vec<Ipv4Addr> {
        self.mcast.host.groups().collect()
    }

    // ---- the pass -------------------------------------------------------------------------

    /// Puts what IGMP has to send now on the link, then completes the joins whose report has
    /// left. Returns when IGMP next needs a pass.
    pub(crate) fn mcast_pass(&mut self, out: &mut VecDeque<Vec<u8>>) -> Option<Instant> {
        while let Some(packet) = self.mcast.host.poll(self.now) {
            let Ok(ip) = Ipv4Packet::new_checked(&packet[..]) else {
                continue;
            };
            let dst = ip.dst_addr();
            let mut frame = self.device.buffer();
            frame.clear();
            self.push_ethernet(&mut frame, dst);
            frame.extend_from_slice(&packet);
            out.push_back(frame);
        }
        // A join made before this pass has its first report among the frames just queued: it
        // has left once the link took everything now in `out`. The report is due at the join's
        // own time, which can be later than this pass's `now` (the driver read its clock before
        // the call took the lock): such a join waits for a pass that has polled its report.
        let (passes, ticket) = (self.stats.passes, self.mcast.link_sent + out.len() as u64);
        let (table, now) = (&self.table, self.now);
        for (id, joined, t) in &mut self.mcast.pending {
            let joined_at = table.get(id).and_then(|s| s.mcast.join_pending);
            if t.is_none() && joined_at.is_some_and(|p| p < passes) && *joined <= now {
                *t = Some(ticket);
            }
        }
        self.mcast_link_progress(self.mcast.link_sent);
        self.mcast.host.poll_at()
    }

    /// The link has accepted `sent` frames in all: joins whose report was among them complete
    /// (FD_CONNECT; a blocking `WSAJoinLeaf` returns).
    pub(crate) fn mcast_link_progress(&mut self, sent: u64) {
        self.mcast.link_sent = sent;
        let table = &self.table;
        let mut done = Vec::new();
        self.mcast.pending.retain(|&(id, _, ticket)| {
            let gone = table
                .get(&id)
                .is_none_or(|s| s.mcast.join_pending.is_none());
            let left = ticket.is_some_and(|t| t <= sent);
            if left && !gone {
                done.push(id);
            }
            !(gone || left)
        });
        for id in done {
            self.mcast_join_done(id);
        }
        self.mcast
            .waiting
            .store(!self.mcast.pending.is_empty(), Ordering::Relaxed);
    }

    /// Ethernet header of a frame to an IPv4 multicast address (RFC 1112 §6.4).
    fn push_ethernet(&self, frame: &mut Vec<u8>, dst: Ipv4Addr) {
        frame.extend_from_slice(&igmp::multicast_mac(dst));
        frame.extend_from_slice(&self.mac);
        frame.extend_from_slice(&[0x08, 0x00]);
    }

    /// The multicast stage of the ingress pipeline: takes an arriving frame if it is IGMP (for
    /// the host machine) or multicast IPv4 (for the member sockets). Returns whether it was
    /// taken.
    pub(crate) fn mcast_ingress(&mut self, frame: &Frame) -> bool {
        let (Some(ip), Some(bytes)) = (frame.ipv4(), frame.ip_bytes()) else {
            return false;
        };
        let (proto, src, dst) = (ip.next_header(), ip.src_addr(), ip.dst_addr());
        if proto == IpProtocol::Igmp {
            self.mcast.host.receive(self.now, bytes);
            return true;
        }
        if !dst.is_multicast() {
            return false;
        }
        let udp = proto == IpProtocol::Udp;
        if !udp || !frame.ipv4_checksum_ok() {
            self.mcast.dropped += u64::from(udp);
            return true;
        }
        // Fragments were reassembled before this stage; one left here never completed.
        if frame.fragment().is_some() {
            self.mcast.dropped += 1;
            return true;
        }
        let datagram = ip.payload();
        if !self.mcast_deliver_udp(src, dst, datagram) {
            self.mcast.dropped += 1;
        }
        true
    }

    /// Checks a UDP datagram to a group (RFC 768: the Length field, the checksum when there is
    /// one) and delivers it; `false` if it is malformed.
    fn mcast_deliver_udp(&mut self, src: Ipv4Addr, dst: Ipv4Addr, udp: &[u8]) -> bool {
        let Ok(udp) = UdpPacket::new_checked(udp) else {
            return false;
        };
        if !udp.verify_checksum(&src.into(), &dst.into()) {
            return false;
        }
        let from = SocketAddrV4::new(src, udp.src_port());
        self.mcast_deliver(dst, udp.dst_port(), from, udp.payload(), None);
        true
    }

    /// Copies a datagram to `group:port` to every member socket that takes it. `sender` is the
    /// local sending socket, which gets a copy only with loopback on.
    fn mcast_deliver(
        &mut self,
        group: Ipv4Addr,
        port: u16,
        from: SocketAddrV4,
        data: &[u8],
        sender: Option<SocketId>,
    ) {
        let members: Vec<SocketId> = self
            .mcast
            .host
            .members_accepting(group, *from.ip())
            .collect();
        for id in members {
            let Some(s) = self.table.get_mut(&id) else {
                continue;
            };
            if sender == Some(id) && !s.mcast.loopback {
                continue;
            }
            let takes = s.proto == Proto::Udp
                && !s.shut_recv
                && s.bound.is_some_and(|b| {
                    b.port() == port && (b.ip().is_unspecified() || *b.ip() == group)
                })
                && s.peer.is_none_or(|p| p == from);
            if !takes {
                continue;
            }
            let room = s.opts.rcvbuf.max(MAX_UDP_PAYLOAD);
            if s.mcast.rx.len() >= MAX_QUEUED || s.mcast.rx_bytes + data.len() > room {
                self.mcast.dropped += 1;
                continue;
            }
            s.mcast.rx_bytes += data.len();
            s.mcast.rx.push_back((data.to_vec(), from));
            self.mcast.delivered += 1;
        }
    }

    /// Sends a datagram to a multicast group (`sendto`, `WSASendTo`): local members get it at
    /// once, the link unless the scope is 0. `Ok(None)` = no room now.
    pub(crate) fn mcast_send(
        &mut self,
        id: SocketId,
        to: SocketAddrV4,
        data: &[u8],
    ) -> Result<Option<usize>, WsaError> {
        let sock = self.sock(id)?;
        let port = sock.bound.map_or(0, |b| b.port());
        let scope = sock.mcast.scope;
        if scope > 0 && self.device.tx.len() >= MAX_PENDING_FRAMES {
            return Ok(None);
        }
        let group = *to.ip();
        let from = SocketAddrV4::new(self.mcast_source(id, group), port);
        self.mcast_deliver(group, to.port(), from, data, Some(id));
        if scope > 0 {
            self.mcast_frames(from, to, scope, data);
        }
        self.wake = true;
        Ok(Some(data.len()))
    }

    /// Builds the frames of one UDP datagram to a group, fragmenting it to the MTU (RFC 791
    /// §2.3: identification, More Fragments, offsets in units of eight octets), into the device's
    /// transmit queue (the next pass sends them through the shaper).
    fn mcast_frames(&mut self, from: SocketAddrV4, to: SocketAddrV4, ttl: u8, data: &[u8]) {
        let len = UDP_HEADER_LEN + data.len();
        let mut udp = vec![0u8; len];
        {
            let mut packet = UdpPacket::new_unchecked(&mut udp[..]);
            packet.set_src_port(from.port());
            packet.set_dst_port(to.port());
            packet.set_len(len as u16);
            packet.payload_mut().copy_from_slice(data);
            // RFC 768: a sum of zero is sent as all ones.
            packet.fill_checksum(&(*from.ip()).into(), &(*to.ip()).into());
        }
        self.mcast.ip_id = self.mcast.ip_id.wrapping_add(1);
        let ident = self.mcast.ip_id;
        let room = self.config.mtu.saturating_sub(IPV4_HEADER_LEN).max(8);
        let step = if udp.len() <= room { room } else { room & !7 };
        let caps = ChecksumCapabilities::default();
        let mut offset = 0;
        loop {
            let end = (offset + step).min(udp.len());
            let more = end < udp.len();
            let mut frame = self.device.buffer();
            frame.clear();
            self.push_ethernet(&mut frame, *to.ip());
            let at = frame.len();
            frame.resize(at + IPV4_HEADER_LEN, 0);
            let repr = Ipv4Repr {
                src_addr: *from.ip(),
                dst_addr: *to.ip(),
                next_header: IpProtocol::Udp,
                payload_len: end - offset,
                hop_limit: ttl,
            };
            let mut ip = Ipv4Packet::new_unchecked(&mut frame[at..]);
            repr.emit(&mut ip, &caps);
            ip.set_ident(ident);
            ip.set_dont_frag(false);
            ip.set_more_frags(more);
            ip.set_frag_offset(offset as u16);
            ip.fill_checksum();
            frame.extend_from_slice(&udp[offset..end]);
            self.device.tx.push_back(Frame::parse(frame));
            if !more {
                break;
            }
            offset = end;
        }
    }

    // ---- the receive side of a socket ------------------------------------------------------

    /// Takes (or peeks at) the next multicast datagram of a socket into `buf`.
    pub(crate) fn mcast_recv(
        &mut self,
        id: SocketId,
        buf: &mut [u8],
        peek: bool,
    ) -> Option<Received> {
        let s = self.table.get_mut(&id)?;
        let (data, from) = s.mcast.rx.front()?;
        let n = data.len().min(buf.len());
        buf[..n].copy_from_slice(&data[..n]);
        let r = Received {
            len: n,
            from: *from,
            truncated: data.len() > buf.len(),
        };
        if !peek {
            self.mcast_discard(id);
        }
        Some(r)
    }

    /// Drops a socket's next multicast datagram.
    fn mcast_discard(&mut self, id: SocketId) {
        if let Some(s) = self.table.get_mut(&id) {
            if let Some((d, _)) = s.mcast.rx.pop_front() {
                s.mcast.rx_bytes -= d.len();
            }
        }
    }

    /// Size of a socket's next multicast datagram, if any.
    pub(crate) fn mcast_first_len(&self, id: SocketId) -> Option<usize> {
        self.table.get(&id)?.mcast.rx.front().map(|(d, _)| d.len())
    }

    /// Drops queued multicast datagrams from anyone but `peer` (a `connect` changed it).
    pub(crate) fn mcast_keep_only(&mut self, id: SocketId, peer: SocketAddrV4) {
        if let Some(s) = self.table.get_mut(&id) {
            s.mcast.rx.retain(|(_, from)| *from == peer);
            s.mcast.rx_bytes = s.mcast.rx.iter().map(|(d, _)| d.len()).sum();
        }
    }
}
