//! What every part of the engine names a socket by: its id, its transport and where it is in
//! its life (CHECKLIST §1.2–§1.5). A leaf module: the per-concern modules (TCP, UDP, multicast,
//! RMP, urgent data, notification) import it, and `socket.rs`, which composes their per-socket
//! state into one `Sock`, imports them — so no import runs back.

use std::collections::VecDeque;

use smoltcp::iface::SocketHandle;

/// The engine's name for a socket (the Winsock face's `SOCKET` value).
pub(crate) type SocketId = u64;

/// Transport of a socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Proto {
    /// `SOCK_STREAM` / `IPPROTO_TCP`.
    Tcp,
    /// `SOCK_DGRAM` / `IPPROTO_UDP`.
    Udp,
    /// `SOCK_RAW` / `IPPROTO_ICMP`.
    RawIcmp,
    /// The rooted multipoint protocol over TCP (docs/rmp.md): `SOCK_RDM` on the RMP entries.
    Rmp,
}

/// A listening TCP socket: a pool of `backlog` smoltcp sockets in LISTEN (smoltcp has no
/// backlog, CHECKLIST Appendix C) and the connections that completed, oldest first.
#[derive(Debug)]
pub(crate) struct Listener {
    pub(crate) backlog: usize,
    pub(crate) pool: Vec<SocketHandle>,
    pub(crate) ready: VecDeque<SocketHandle>,
}

/// Where a socket is in its life.
#[derive(Debug)]
pub(crate) enum State {
    /// Created; maybe bound (TCP), no smoltcp socket yet.
    Idle,
    /// TCP `listen` was called.
    Listening(Listener),
    /// TCP connect under way.
    Connecting(SocketHandle),
    /// TCP connection (established or later).
    Connected(SocketHandle),
    /// UDP or raw socket with its smoltcp socket.
    Datagram(SocketHandle),
}
