//! The engine's socket table: what a Winsock socket is above smoltcp.
//!
//! A `Sock` is created by `socket`/`WSASocket` before smoltcp knows anything about it; the
//! smoltcp socket appears when the Winsock call that needs one does (`bind` for UDP, `connect` or
//! `listen` for TCP), because smoltcp's buffers are fixed at creation (CHECKLIST Appendix C) and
//! `SO_RCVBUF`/`SO_SNDBUF` must be settable before that.
//!
//! Handles are never reused: a `SocketId` is a 64-bit counter, so a stale handle can only miss
//! (`WSAENOTSOCK`), never alias a newer socket.

use std::collections::{HashMap, VecDeque};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::Instant;

use smoltcp::iface::SocketHandle;

use super::async_io::OvOp;
pub(crate) use super::lifecycle::Proto;
pub(crate) use super::lifecycle::{Listener, SocketId, State};
use crate::error::WsaError;
use crate::notify::fd::Registration;

/// Socket options the engine keeps (CHECKLIST §1.13.2); defaults as the spec gives them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Opts {
    /// `SO_REUSEADDR` (interpreted at bind time only).
    pub(crate) reuse_addr: bool,
    /// `SO_KEEPALIVE`.
    pub(crate) keepalive: bool,
    /// `SO_LINGER`: `l_onoff`.
    pub(crate) linger_on: bool,
    /// `SO_LINGER`: `l_linger`, seconds.
    pub(crate) linger_secs: u16,
    /// `SO_RCVBUF`, bytes.
    pub(crate) rcvbuf: usize,
    /// `SO_SNDBUF`, bytes.
    pub(crate) sndbuf: usize,
    /// `SO_BROADCAST`.
    pub(crate) broadcast: bool,
    /// `TCP_NODELAY`.
    pub(crate) nodelay: bool,
    /// `SO_DEBUG`.
    pub(crate) debug: bool,
    /// `SO_DONTROUTE`.
    pub(crate) dontroute: bool,
    /// `SO_OOBINLINE`.
    pub(crate) oobinline: bool,
    /// `SO_RCVTIMEO`, milliseconds (0 = none).
    pub(crate) rcvtimeo_ms: u32,
    /// `SO_SNDTIMEO`, milliseconds (0 = none).
    pub(crate) sndtimeo_ms: u32,
    /// `SIO_ENABLE_CIRCULAR_QUEUEING` (UDP): a full receive queue drops its oldest datagram.
    pub(crate) circular: bool,
}

/// What the peer's segments last said, for the tail-loss probe.
#[derive(Debug, Clone, Copy)]
pub(crate) struct AckState {
    pub(crate) seq_end: Option<u32>,
    pub(crate) ack: Option<u32>,
    pub(crate) window: u16,
    /// Since when no acknowledgment has advanced while data was in flight.
    pub(crate) stall_since: Instant,
    pub(crate) probes: u8,
}

impl AckState {
    fn new(now: Instant) -> AckState {
        AckState {
            seq_end: None,
            ack: None,
            window: 0,
            stall_since: now,
            probes: 0,
        }
    }

    /// Takes in a peer segment: an acknowledgment that advanced ends a stall.
    pub(crate) fn observe(&mut self, seg: super::frames::Segment, now: Instant) {
        if seg.ack.is_some() && seg.ack != self.ack {
            self.stall_since = now;
            self.probes = 0;
        }
        self.seq_end = Some(seg.seq_end);
        self.ack = seg.ack.or(self.ack);
        self.window = seg.window;
    }
}

/// What our own segments of one TCP connection last said on the way out (`tcp::validate`:
/// RCV.NXT, SND.NXT, the challenge ACK's pace).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct PeerWire {
    /// SND.NXT: the end of the newest segment we sent.
    pub(crate) snd_nxt: Option<u32>,
    /// The acknowledgment number of our last segment.
    pub(crate) ack: Option<u32>,
    /// When we last sent this connection a challenge ACK.
    pub(crate) last_challenge: Option<Instant>,
}

/// One Winsock socket.
#[derive(Debug)]
pub(crate) struct Sock {
    pub(super) proto: Proto,
    pub(super) opts: Opts,
    pub(super) nonblocking: bool,
    /// Created with the overlapped attribute (`socket`, or `WSA_FLAG_OVERLAPPED`).
    pub(super) overlapped: bool,
    /// Local name from `bind` or an implicit bind (address may be unspecified).
    pub(super) bound: Option<SocketAddrV4>,
    /// Whether `bound` is registered in the port table (accepted sockets share their
    /// listener's port and hold nothing).
    pub(super) holds_port: bool,
    /// TCP: (local, remote) once connecting/connected. UDP: the `connect`ed peer.
    pub(super) local: Option<SocketAddrV4>,
    pub(super) peer: Option<SocketAddrV4>,
    pub(super) state: State,
    /// `SO_ERROR`: pending per-socket error, 0 = none.
    pub(super) so_error: i32,
    /// `shutdown(SD_SEND)` was called.
    pub(super) shut_send: bool,
    /// `shutdown(SD_RECEIVE)` was called.
    pub(super) shut_recv: bool,
    /// A TCP RST arrived for this connection.
    pub(super) reset: bool,
    /// The peer's FIN was seen (recv reported end of stream).
    pub(super) peer_fin: bool,
    /// The last connect attempt failed with this error (exceptfds until the next connect).
    pub(super) connect_failed: Option<WsaError>,
    /// UDP: an ICMP port unreachable arrived for a datagram this socket sent.
    pub(super) icmp_unreachable: bool,
    /// Datagram socket `connect`ed to 0.0.0.0: no default peer, so `send`/`recv` fail
    /// `WSAENOTCONN` while `sendto`/`recvfrom` work (CHECKLIST §1.3 `connect`, 119).
    pub(super) disconnected: bool,
    /// TCP: a keep-alive time-out was reported once as `WSAENETRESET`; later calls see
    /// `WSAENOTCONN` (CHECKLIST §1.13.2 `SO_KEEPALIVE`, 476).
    pub(super) keepalive_reported: bool,
    /// TCP: the peer's last segment, for the tail-loss probe.
    pub(super) acks: AckState,
    /// `WSAAsyncSelect`/`WSAEventSelect` registration.
    pub(super) select: Option<Box<Registration>>,
    /// Overlapped receives, in the order posted.
    pub(super) ov_recv: VecDeque<OvOp>,
    /// Overlapped sends, in the order issued.
    pub(super) ov_send: VecDeque<OvOp>,
    /// Bumped to interrupt blocking calls on this socket (the Rust face's cancellation).
    pub(super) interrupts: u64,
    /// The QoS granted to this socket (`SIO_SET_QOS`, `WSAConnect`), if any was asked for.
    pub(super) qos: Option<Box<ws2_qos::Qos>>,
    /// The QoS changed since `SIO_GET_QOS` last read it (FD_QOS).
    pub(super) qos_changed: bool,
    /// The group's QoS changed since `SIO_GET_GROUP_QOS` last read it (FD_GROUP_QOS).
    pub(super) group_qos_changed: bool,
    /// Multicast membership, options and received multicast datagrams.
    pub(super) mcast: super::multicast::MemberState,
    /// When the TCP connection was established (`SO_CONNECT_TIME`).
    pub(super) connected_at: Option<Instant>,
    /// RMP sockets: roles, links, session, received messages.
    pub(super) rmp: Option<Box<super::rmp::RmpSock>>,
    /// TCP urgent data (`urgent`).
    pub(super) urg: super::urgent::UrgState,
    /// TCP: what our segments last said (`tcp::validate`).
    pub(super) wire: PeerWire,
}

impl Sock {
    pub(crate) fn new(proto: Proto, tcp_buffer: usize, now: Instant) -> Sock {
        let (rcvbuf, sndbuf) = match proto {
            Proto::Tcp => (tcp_buffer, tcp_buffer),
            Proto::Udp | Proto::RawIcmp | Proto::Rmp => (256 * 1024, 256 * 1024),
        };
        Sock {
            proto,
            opts: Opts {
                reuse_addr: false,
                keepalive: false,
                linger_on: false,
                linger_secs: 0,
                rcvbuf,
                sndbuf,
                broadcast: false,
                nodelay: false,
                debug: false,
                dontroute: false,
                oobinline: false,
                rcvtimeo_ms: 0,
                sndtimeo_ms: 0,
                circular: false,
            },
            nonblocking: false,
            overlapped: false,
            bound: None,
            holds_port: false,
            local: None,
            peer: None,
            state: State::Idle,
            so_error: 0,
            shut_send: false,
            shut_recv: false,
            reset: false,
            peer_fin: false,
            connect_failed: None,
            icmp_unreachable: false,
            disconnected: false,
            keepalive_reported: false,
            acks: AckState::new(now),
            select: None,
            ov_recv: VecDeque::new(),
            ov_send: VecDeque::new(),
            interrupts: 0,
            qos: None,
            qos_changed: false,
            group_qos_changed: false,
            mcast: Default::default(),
            connected_at: None,
            rmp: None,
            urg: Default::default(),
            wire: Default::default(),
        }
    }

    /// The smoltcp socket, if the socket has one.
    pub(crate) fn handle(&self) -> Option<SocketHandle> {
        match &self.state {
            State::Connecting(h) | State::Connected(h) | State::Datagram(h) => Some(*h),
            State::Idle | State::Listening(_) => None,
        }
    }
}

/// Who holds which port, per transport, for `bind` conflicts and ephemeral ports.
#[derive(Debug, Default)]
pub(crate) struct Ports {
    held: HashMap<(Proto, u16), Vec<(Ipv4Addr, SocketId)>>,
    next_ephemeral: u16,
}

impl Ports {
    /// A table whose first ephemeral port is `start` (wrapped into the range on use). Starting
    /// somewhere random keeps a restarted stack from reusing the 4-tuple of a connection its
    /// peer still remembers.
    pub(crate) fn starting_at(start: u16) -> Ports {
        Ports {
            held: HashMap::new(),
            next_ephemeral: start,
        }
    }

    /// Takes `addr:port` for `id`; port 0 picks a free port in `range`. `reuse` is the binding
    /// socket's `SO_REUSEADDR`, read now because it is interpreted at bind time only.
    pub(crate) fn bind(
        &mut self,
        proto: Proto,
        addr: Ipv4Addr,
        port: u16,
        id: SocketId,
        reuse: bool,
        range: (u16, u16),
    ) -> Result<u16, WsaError> {
        let port = if port == 0 {
            self.ephemeral(proto, range)?
        } else {
            port
        };
        let holders = self.held.entry((proto, port)).or_default();
        let clash = holders
            .iter()
            .any(|(a, _)| *a == addr || a.is_unspecified() || addr.is_unspecified());
        if clash && !reuse {
            return Err(WsaError::WSAEADDRINUSE);
        }
        holders.push((addr, id));
        Ok(port)
    }

    fn ephemeral(&mut self, proto: Proto, (lo, hi): (u16, u16)) -> Result<u16, WsaError> {
        let span = (u32::from(hi.saturating_sub(lo)) + 1).min(u32::from(u16::MAX));
        for _ in 0..span {
            if self.next_ephemeral < lo || self.next_ephemeral > hi {
                self.next_ephemeral = lo + (self.next_ephemeral % span as u16);
            }
            let port = self.next_ephemeral;
            self.next_ephemeral = self.next_ephemeral.wrapping_add(1);
            if self.held.get(&(proto, port)).is_none_or(|h| h.is_empty()) {
                return Ok(port);
            }
        }
        Err(WsaError::WSAENOBUFS)
    }

    /// Releases what `id` holds on `port`.
    pub(crate) fn release(&mut self, proto: Proto, port: u16, id: SocketId) {
        if let Some(holders) = self.held.get_mut(&(proto, port)) {
            holders.retain(|(_, holder)| *holder != id);
            if holders.is_empty() {
                self.held.remove(&(proto, port));
            }
        }
    }

    /// The sockets bound to `port`.
    pub(crate) fn holders(&self, proto: Proto, port: u16) -> impl Iterator<Item = SocketId> + '_ {
        self.held
            .get(&(proto, port))
            .into_iter()
            .flatten()
            .map(|(_, id)| *id)
    }

    /// Number of (transport, port) entries held, for leak checks.
    pub(crate) fn len(&self) -> usize {
        self.held.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RANGE: (u16, u16) = (1024, 5000);

    #[test]
    fn bind_conflicts_and_reuse() {
        let mut p = Ports::default();
        let any = Ipv4Addr::UNSPECIFIED;
        let a = Ipv4Addr::new(10, 0, 0, 1);
        assert_eq!(p.bind(Proto::Tcp, a, 80, 1, false, RANGE), Ok(80));
        assert_eq!(
            p.bind(Proto::Tcp, a, 80, 2, false, RANGE),
            Err(WsaError::WSAEADDRINUSE)
        );
        assert_eq!(
            p.bind(Proto::Tcp, any, 80, 2, false, RANGE),
            Err(WsaError::WSAEADDRINUSE)
        );
        assert_eq!(
            p.bind(Proto::Udp, a, 80, 3, false, RANGE),
            Ok(80),
            "other transport"
        );
        assert_eq!(
            p.bind(Proto::Tcp, a, 80, 4, true, RANGE),
            Ok(80),
            "SO_REUSEADDR"
        );
        p.release(Proto::Tcp, 80, 1);
        p.release(Proto::Tcp, 80, 4);
        assert_eq!(p.bind(Proto::Tcp, any, 80, 5, false, RANGE), Ok(80));
    }

    #[test]
    fn ephemeral_ports_are_unique_and_in_range() {
        let mut p = Ports::default();
        let mut seen = std::collections::HashSet::new();
        for id in 0..100 {
            let port = p
                .bind(Proto::Udp, Ipv4Addr::UNSPECIFIED, 0, id, false, RANGE)
                .unwrap();
            assert!((1024..=5000).contains(&port));
            assert!(seen.insert(port));
        }
    }

    #[test]
    fn ephemeral_exhaustion_is_an_error() {
        let mut p = Ports::default();
        for id in 0..3 {
            p.bind(
                Proto::Udp,
                Ipv4Addr::UNSPECIFIED,
                0,
                id,
                false,
                (7000, 7002),
            )
            .unwrap();
        }
        assert_eq!(
            p.bind(Proto::Udp, Ipv4Addr::UNSPECIFIED, 0, 9, false, (7000, 7002)),
            Err(WsaError::WSAENOBUFS)
        );
    }
}
