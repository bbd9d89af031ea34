//! Engine operations for the Winsock face: see the module docs of `api`.
//!
//! This file serves the socket calls (CHECKLIST §1.2–§1.5: `winsock/sockets.rs`), `WSAAccept`
//! (`winsock/accept.rs`), `select` (§1.6.2), `WSAEnumNetworkEvents` (§1.6.4), the interruption
//! of blocking calls (§1.7, `winsock/hooks.rs`) and the catalog entry of a socket (§1.12,
//! `winsock/sharing.rs`). A call that may block is split in two: its first attempt
//! (`*_first`), which also makes the call's checks in the spec's order and answers
//! [`Attempt::Wait`] when a blocking socket has to wait, and the attempts made while it waits
//! (`*_again`), one per driver pass.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::Duration;

use ws2_groups::GroupRequest;
use ws2_multipoint::rmp::DataPlane;
use ws2_qos::Qos;

use super::super::lifecycle::{Proto, SocketId, State};
use super::super::rmp::RmpSock;
use super::super::{group_error, new_sock, Engine};
use crate::error::WsaError;
use crate::notify::event::EventRef;
use crate::notify::fd::{Target, FD_MAX_EVENTS, FD_WRITE};

/// What the first attempt of a call that may block found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Attempt<T> {
    /// The call completed.
    Done(T),
    /// It cannot complete yet and the socket is blocking: wait at most this long (`None`: for
    /// ever), trying again after each driver pass. A non-blocking socket gets
    /// `WSAEWOULDBLOCK` instead.
    Wait(Option<Duration>),
}

/// A new socket, as `WSASocket` asks for it (§1.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct NewSocket {
    /// The transport.
    pub(crate) proto: Proto,
    /// `WSA_FLAG_OVERLAPPED`.
    pub(crate) overlapped: bool,
    /// Multipoint roles `(c_root, d_root)` (§1.10.2), if any were asked for.
    pub(crate) roles: Option<(bool, bool)>,
    /// An RMP socket on the relay entry: its data plane is non-rooted.
    pub(crate) relay: bool,
    /// The `g` argument: 0, `SG_UNCONSTRAINED_GROUP`, `SG_CONSTRAINED_GROUP` or a group id.
    pub(crate) group: u32,
}

/// What `WSAAccept` needs to know of a listener before it asks for an offer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct AcceptMode {
    /// The listener is non-blocking.
    pub(crate) nonblocking: bool,
    /// The listener is an RMP socket (its offers are join requests).
    pub(crate) rmp: bool,
}

/// A receive call's flags, parsed by the face (`MSG_PEEK`, `MSG_OOB`, anything else).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct RecvFlags {
    /// `MSG_PEEK`: leave the data queued.
    pub(crate) peek: bool,
    /// `MSG_OOB`: the urgent byte.
    pub(crate) oob: bool,
    /// A flag the call does not know (`WSAEINVAL`).
    pub(crate) unknown: bool,
}

/// A receive call: its flags and the checks the calling function adds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct RecvCall {
    /// The flags.
    pub(crate) flags: RecvFlags,
    /// `recv` (not `recvfrom`): a datagram socket disconnected by `connect(0.0.0.0)` has no
    /// peer to receive from (`WSAENOTCONN`).
    pub(crate) needs_peer: bool,
    /// `recvfrom` with a `fromlen` too short for an address: `WSAEFAULT` on a socket that
    /// reports senders (not TCP).
    pub(crate) short_from: bool,
}

/// What one receive took.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Received {
    /// Bytes copied into the buffer.
    pub(crate) len: usize,
    /// The sender of a datagram (`None` on a stream).
    pub(crate) from: Option<SocketAddrV4>,
}

/// A send call's flags, parsed by the face (`MSG_OOB`, `MSG_DONTROUTE`, anything else).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct SendFlags {
    /// `MSG_OOB`: the last byte is urgent.
    pub(crate) oob: bool,
    /// A flag the call does not know (`WSAEINVAL`).
    pub(crate) unknown: bool,
}

/// Where a send goes: the socket's default destination, or the address `sendto` names (as the
/// face read it: an unreadable name is its error, reported only where the address matters).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Destination {
    /// `send`: the connected peer (or the multipoint session).
    Default,
    /// `sendto`: this address, ignored on a stream socket.
    To(Result<SocketAddrV4, WsaError>),
}

/// How a send that has to wait goes on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SendWait {
    /// A stream send: this many bytes of the buffer are queued already.
    Stream {
        /// Bytes queued so far.
        sent: usize,
    },
    /// A datagram to this address.
    Datagram(SocketAddrV4),
}

/// What the first attempt of a send found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SendAttempt {
    /// The call completed: this many bytes were sent (a datagram: all of it).
    Done(usize),
    /// The socket is blocking and has to wait, at most `timeout` (`None`: for ever).
    Wait {
        /// `SO_SNDTIMEO`.
        timeout: Option<Duration>,
        /// How to go on.
        how: SendWait,
    },
}

/// Which directions `shutdown` closes (§1.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Shutdown {
    /// `SD_RECEIVE`.
    Receive,
    /// `SD_SEND`.
    Send,
    /// `SD_BOTH`.
    Both,
}

impl Shutdown {
    fn send(self) -> bool {
        matches!(self, Shutdown::Send | Shutdown::Both)
    }

    fn recv(self) -> bool {
        matches!(self, Shutdown::Receive | Shutdown::Both)
    }
}

/// What `closesocket` left to do (§1.5, the linger table).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Close {
    /// The socket is gone.
    Done,
    /// A lingering close: the connection is closing gracefully; wait up to this long for its
    /// data to be delivered, then remove the socket (with a reset if it was not).
    Linger(Duration),
}

/// (readable, writable, exceptional) for one socket, as `select` defines them (§1.6.2).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Readiness {
    /// readfds.
    pub(crate) read: bool,
    /// writefds.
    pub(crate) write: bool,
    /// exceptfds.
    pub(crate) except: bool,
}

/// What `WSAEnumNetworkEvents` reports (§1.6.4).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct NetworkEvents {
    /// The events that occurred.
    pub(crate) events: i32,
    /// Their errors, indexed by `FD_xxx_BIT`.
    pub(crate) errors: [i32; FD_MAX_EVENTS],
}

/// What a socket's catalog entry depends on, for a socket created without one (§1.12).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SocketKind {
    /// The transport.
    pub(crate) proto: Proto,
    /// An RMP socket with a non-rooted data plane (the relay entry).
    pub(crate) relay: bool,
}

fn timeout(ms: u32) -> Option<Duration> {
    (ms > 0).then(|| Duration::from_millis(u64::from(ms)))
}

impl Engine {
    // ---- creation and names (§1.2, §1.3) -------------------------------------------------

    /// `WSASocket`: a new socket with the stack's defaults, its attributes, multipoint roles
    /// and group. A socket that cannot have the group it asked for is not created.
    pub(crate) fn create_socket(&mut self, new: NewSocket) -> Result<SocketId, WsaError> {
        let mut sock = new_sock(new.proto, self);
        sock.overlapped = new.overlapped;
        match (new.proto, new.roles) {
            (Proto::Rmp, Some((c_root, d_root))) => {
                let plane = if new.relay {
                    DataPlane::NonRooted
                } else {
                    DataPlane::Rooted
                };
                sock.rmp = Some(Box::new(RmpSock::new(plane, c_root, d_root)));
            }
            // Without roles an RMP socket can take part in no session: `WSAJoinLeaf` and
            // `listen` refuse it (WSAEOPNOTSUPP), like a non-multipoint socket (D-7).
            (Proto::Rmp, None) => {}
            (_, roles) => sock.mcast.multipoint = roles.is_some(),
        }
        let id = self.insert(sock)?;
        if let Err(e) = self.group_apply(id, new.group) {
            self.remove(id, true);
            return Err(e);
        }
        Ok(id)
    }

    /// `bind`: a stream (or RMP) socket takes its name; a datagram socket also gets its smoltcp
    /// socket, which makes sends possible (`FD_WRITE`, §1.6.5).
    pub(crate) fn bind_socket(&mut self, id: SocketId, addr: SocketAddrV4) -> Result<(), WsaError> {
        match self.sock(id)?.proto {
            Proto::Tcp | Proto::Rmp => self.bind_name(id, addr).map(drop),
            _ => {
                self.dgram_bind(id, addr)?;
                self.fd_arm(id, FD_WRITE);
                Ok(())
            }
        }
    }

    /// `listen`: TCP and RMP listeners; other sockets `WSAEOPNOTSUPP`.
    pub(crate) fn listen_socket(&mut self, id: SocketId, backlog: i32) -> Result<(), WsaError> {
        match self.sock(id)?.proto {
            Proto::Tcp => self.tcp_listen(id, backlog),
            Proto::Rmp => self.rmp_listen(id, backlog),
            _ => Err(WsaError::WSAEOPNOTSUPP),
        }
    }

    /// `getsockname`: the local name, `WSAEINVAL` before the socket has one (D-4).
    pub(crate) fn socket_name(&mut self, id: SocketId) -> Result<SocketAddrV4, WsaError> {
        let sock = self.sock(id)?;
        sock.local.or(sock.bound).ok_or(WsaError::WSAEINVAL)
    }

    /// `getpeername`: the peer of a connected TCP socket, the `connect`ed address of a datagram
    /// socket; `WSAENOTCONN` otherwise.
    pub(crate) fn peer_name(&mut self, id: SocketId) -> Result<SocketAddrV4, WsaError> {
        let _ = self.tcp_connect_poll(id);
        let sock = self.sock(id)?;
        match (&sock.proto, &sock.state) {
            (Proto::Tcp, State::Connected(_)) => sock.peer.ok_or(WsaError::WSAENOTCONN),
            (Proto::Tcp, _) => Err(WsaError::WSAENOTCONN),
            _ => sock.peer.ok_or(WsaError::WSAENOTCONN),
        }
    }

    /// What the catalog entry of a socket created without a recorded one depends on.
    pub(crate) fn socket_kind(&mut self, id: SocketId) -> Result<SocketKind, WsaError> {
        let s = self.sock(id)?;
        let relay = s
            .rmp
            .as_ref()
            .is_some_and(|r| r.plane == DataPlane::NonRooted);
        Ok(SocketKind {
            proto: s.proto,
            relay,
        })
    }

    /// Whether socket `id` is still open.
    pub(crate) fn socket_open(&self, id: SocketId) -> bool {
        self.table.contains_key(&id)
    }

    // ---- accept (§1.3) -------------------------------------------------------------------

    /// The first attempt of `accept`: the listener must be TCP or RMP (`WSAEOPNOTSUPP`); its
    /// oldest completed connection becomes a socket, or a non-blocking listener fails
    /// `WSAEWOULDBLOCK`.
    pub(crate) fn accept_first(
        &mut self,
        id: SocketId,
    ) -> Result<Attempt<(SocketId, SocketAddrV4)>, WsaError> {
        let nonblocking = self.accept_mode(id)?.nonblocking;
        match self.accept_again(id) {
            Some(r) => r.map(Attempt::Done),
            None if nonblocking => Err(WsaError::WSAEWOULDBLOCK),
            None => Ok(Attempt::Wait(None)),
        }
    }

    /// One more attempt of `accept`; `None` while no connection is ready, `WSAEINTR` once the
    /// listener is closed.
    pub(crate) fn accept_again(
        &mut self,
        id: SocketId,
    ) -> Option<Result<(SocketId, SocketAddrV4), WsaError>> {
        let Some(sock) = self.table.get(&id) else {
            return Some(Err(WsaError::WSAEINTR));
        };
        if sock.rmp.is_some() {
            return self.rmp_accept(id, &[]).transpose();
        }
        self.tcp_accept(id).transpose()
    }

    /// The listener checks of `WSAAccept`: TCP or RMP (`WSAEOPNOTSUPP`), and how it waits.
    pub(crate) fn accept_mode(&mut self, id: SocketId) -> Result<AcceptMode, WsaError> {
        let s = self.sock(id)?;
        if s.proto != Proto::Tcp && s.proto != Proto::Rmp {
            return Err(WsaError::WSAEOPNOTSUPP);
        }
        Ok(AcceptMode {
            nonblocking: s.nonblocking,
            rmp: s.rmp.is_some(),
        })
    }

    /// `WSAAccept`'s `CF_ACCEPT`: takes the offered connection (from `remote`, the oldest) as a
    /// socket, with the grouping `group` asks for and the flowspecs the condition function
    /// agreed to (`sqos`; `gqos` if the socket became a group's creator). If another thread
    /// took the offered one, or anything is refused, the connection is reset.
    pub(crate) fn accept_offered(
        &mut self,
        id: SocketId,
        remote: SocketAddrV4,
        group: GroupRequest,
        sqos: Option<Qos>,
        gqos: Option<Qos>,
    ) -> Result<SocketId, WsaError> {
        let (new, got) = self.tcp_accept(id)?.ok_or(WsaError::WSAEACCES)?;
        if got != remote {
            // Another thread took the offered one; this is the next, unasked.
            self.remove(new, true);
            return Err(WsaError::WSAEACCES);
        }
        if let Err(e) = self.groups.admit(group, new, (*remote.ip()).into()) {
            self.remove(new, true);
            return Err(group_error(e));
        }
        let granted = sqos
            .map_or(Ok(()), |q| self.qos_set(new, q))
            .and_then(|()| match gqos.filter(|_| self.groups.is_creator(new)) {
                Some(q) => self.group_qos_set(new, q),
                None => Ok(()),
            });
        if let Err(e) = granted {
            self.remove(new, true);
            return Err(e);
        }
        self.qos_refresh_flow(new);
        Ok(new)
    }

    // ---- connect (§1.3) ------------------------------------------------------------------

    /// The first attempt of `connect` to `addr`. A datagram socket sets (0.0.0.0: clears) its
    /// default peer and is done. A TCP connect checks the socket's constrained group (§1.9,
    /// 124; only a socket not yet connecting) and starts the handshake; `already` is the code
    /// for a connect under way (`WSAEALREADY`, or `WSAEINVAL` for 1.1 applications, 110). Then
    /// a non-blocking socket fails `WSAEWOULDBLOCK` and a blocking one waits
    /// ([`Engine::connect_again`]).
    pub(crate) fn connect_first(
        &mut self,
        id: SocketId,
        addr: SocketAddrV4,
        already: WsaError,
    ) -> Result<Attempt<()>, WsaError> {
        let sock = self.sock(id)?;
        let (proto, nonblocking) = (sock.proto, sock.nonblocking);
        if proto != Proto::Tcp {
            let peer = (!addr.ip().is_unspecified()).then_some(addr);
            self.dgram_connect(id, peer)?;
            self.fd_connect_issued(id);
            return Ok(Attempt::Done(()));
        }
        let fresh = matches!(sock.state, State::Idle);
        if fresh {
            self.group_connect(id, addr)?;
        }
        match self.tcp_connect(id, addr) {
            Err(WsaError::WSAEALREADY) => return Err(already),
            Err(e) => {
                if fresh {
                    self.group_connect_failed(id);
                }
                return Err(e);
            }
            Ok(()) => {}
        }
        self.fd_connect_issued(id);
        if nonblocking {
            return Err(WsaError::WSAEWOULDBLOCK);
        }
        Ok(Attempt::Wait(None))
    }

    /// One more attempt of a blocking `connect`: `None` while the handshake is under way.
    pub(crate) fn connect_again(&mut self, id: SocketId) -> Option<Result<(), WsaError>> {
        self.tcp_connect_poll(id)
    }

    /// A blocking connect reports its failure itself: it is not pending in `SO_ERROR`.
    pub(crate) fn connect_failed_reported(&mut self, id: SocketId) -> Result<(), WsaError> {
        self.sock(id).map(|s| s.so_error = 0)
    }

    // ---- data transfer (§1.4) ------------------------------------------------------------

    /// The first attempt of a send of `data` (§1.4; urgent data §1.15, D-5, D-22). The checks
    /// in the spec's order: the destination a datagram socket was given (`sendto`), unknown
    /// flags (`WSAEINVAL`), `MSG_OOB` (TCP with `SO_OOBINLINE` off only: `WSAEINVAL`, other
    /// sockets `WSAEOPNOTSUPP`), a buffer too long to count (`WSAEMSGSIZE`), a datagram socket
    /// without a destination (`WSAENOTCONN`). A non-blocking stream socket queues what fits
    /// (`WSAEWOULDBLOCK` if nothing does); a blocking one waits to queue all of it.
    pub(crate) fn send_first(
        &mut self,
        id: SocketId,
        to: Destination,
        data: &[u8],
        flags: SendFlags,
    ) -> Result<SendAttempt, WsaError> {
        let s = self.sock(id)?;
        let proto = s.proto;
        let to = match to {
            Destination::To(to) if proto != Proto::Tcp => Some(to?),
            _ => None,
        };
        if flags.unknown {
            return Err(WsaError::WSAEINVAL);
        }
        let s = self.sock(id)?;
        let (nonblocking, oobinline) = (s.nonblocking, s.opts.oobinline);
        let timeout = timeout(s.opts.sndtimeo_ms);
        if flags.oob {
            match proto {
                // D-5: the send tables give WSAEINVAL with SO_OOBINLINE on.
                Proto::Tcp if oobinline => return Err(WsaError::WSAEINVAL),
                Proto::Tcp => {}
                _ => return Err(WsaError::WSAEOPNOTSUPP),
            }
        }
        i32::try_from(data.len()).map_err(|_| WsaError::WSAEMSGSIZE)?;
        if proto == Proto::Tcp {
            let sent = self.send_stream_again(id, data, flags.oob)?;
            return if sent == data.len() || (nonblocking && sent > 0) {
                Ok(SendAttempt::Done(sent))
            } else if nonblocking {
                Err(WsaError::WSAEWOULDBLOCK)
            } else {
                Ok(SendAttempt::Wait {
                    timeout,
                    how: SendWait::Stream { sent },
                })
            };
        }
        let to = to
            .or(self.default_destination(id))
            .ok_or(WsaError::WSAENOTCONN)?;
        match self.send_datagram_again(id, to, data) {
            Some(r) => r.map(|_| SendAttempt::Done(data.len())),
            None if nonblocking => Err(WsaError::WSAEWOULDBLOCK),
            None => Ok(SendAttempt::Wait {
                timeout,
                how: SendWait::Datagram(to),
            }),
        }
    }

    /// The default destination `send` uses on a socket: its `connect`ed peer, else the session
    /// `WSAJoinLeaf` joined.
    fn default_destination(&mut self, id: SocketId) -> Option<SocketAddrV4> {
        let s = self.sock(id).ok()?;
        if s.rmp.is_some() {
            // RMP sends go where the socket's role says (engine/rmp.rs), not to an address.
            return Some(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0));
        }
        s.peer.or(s.mcast.session)
    }

    /// Queues what fits of `data` on a stream; with `oob`, the last byte queued is the urgent
    /// one (496). Returns the count queued (0 if nothing fits).
    pub(crate) fn send_stream_again(
        &mut self,
        id: SocketId,
        data: &[u8],
        oob: bool,
    ) -> Result<usize, WsaError> {
        let n = self.tcp_send(id, data)?;
        if oob && n > 0 {
            self.urg_mark_sent(id)?;
        }
        Ok(n)
    }

    /// One attempt to send the datagram `data` to `to`: `None` while there is no room.
    pub(crate) fn send_datagram_again(
        &mut self,
        id: SocketId,
        to: SocketAddrV4,
        data: &[u8],
    ) -> Option<Result<usize, WsaError>> {
        if !self.table.contains_key(&id) {
            return Some(Err(WsaError::WSAEINTR));
        }
        self.dgram_send(id, to, data).transpose()
    }

    /// The first attempt of a receive into `buf` (§1.4; urgent data §1.15). The checks in the
    /// spec's order: `recv` on a disconnected datagram socket (`WSAENOTCONN`), `recvfrom`'s
    /// short `fromlen` (`WSAEFAULT`), unknown flags (`WSAEINVAL`), `MSG_OOB` (TCP only:
    /// `WSAEOPNOTSUPP`; `WSAEINVAL` with `SO_OOBINLINE` on), an empty buffer on a stream
    /// (`WSAEINVAL`). A datagram longer than `buf` fills it and fails `WSAEMSGSIZE`.
    pub(crate) fn recv_first(
        &mut self,
        id: SocketId,
        buf: &mut [u8],
        call: RecvCall,
    ) -> Result<Attempt<Received>, WsaError> {
        let s = self.sock(id)?;
        if call.needs_peer && s.disconnected {
            return Err(WsaError::WSAENOTCONN);
        }
        if call.short_from && s.proto != Proto::Tcp {
            return Err(WsaError::WSAEFAULT);
        }
        let flags = call.flags;
        if flags.unknown {
            return Err(WsaError::WSAEINVAL);
        }
        let (proto, nonblocking) = (s.proto, s.nonblocking);
        let timeout = timeout(s.opts.rcvtimeo_ms);
        if flags.oob {
            if proto != Proto::Tcp {
                return Err(WsaError::WSAEOPNOTSUPP);
            }
            if s.opts.oobinline {
                return Err(WsaError::WSAEINVAL);
            }
        } else if proto == Proto::Tcp && buf.is_empty() {
            return Err(WsaError::WSAEINVAL);
        }
        match self.recv_again(id, buf, flags) {
            Some(r) => r.map(Attempt::Done),
            None if nonblocking => Err(WsaError::WSAEWOULDBLOCK),
            None => Ok(Attempt::Wait(timeout)),
        }
    }

    /// One attempt of a receive whose checks passed: the held urgent byte with `MSG_OOB`
    /// (jumping the queue, 497, 498, 504, 505), else the stream's bytes or the next datagram;
    /// `None` while there is nothing, `WSAEINTR` once the socket is closed.
    pub(crate) fn recv_again(
        &mut self,
        id: SocketId,
        buf: &mut [u8],
        flags: RecvFlags,
    ) -> Option<Result<Received, WsaError>> {
        let proto = match self.table.get(&id) {
            Some(s) => s.proto,
            None => return Some(Err(WsaError::WSAEINTR)),
        };
        let stream = |r: Result<Option<usize>, WsaError>| {
            r.transpose()
                .map(|r| r.map(|len| Received { len, from: None }))
        };
        if flags.oob {
            return stream(self.tcp_recv_oob(id, buf, flags.peek));
        }
        if proto == Proto::Tcp {
            return stream(self.tcp_recv(id, buf, flags.peek));
        }
        let got = self.dgram_recv(id, buf, flags.peek).transpose()?;
        Some(got.and_then(|got| {
            if got.truncated {
                return Err(WsaError::WSAEMSGSIZE);
            }
            Ok(Received {
                len: got.len,
                from: Some(got.from),
            })
        }))
    }

    // ---- teardown (§1.5) -----------------------------------------------------------------

    /// `shutdown`: `Send` sends FIN after queued data (an RMP socket ends its sending role);
    /// `Receive` refuses further receives and resets a TCP connection that has or gets unread
    /// data (D-35). A TCP socket that is not connected is `WSAENOTCONN`.
    pub(crate) fn shutdown_socket(&mut self, id: SocketId, how: Shutdown) -> Result<(), WsaError> {
        if self.sock(id)?.rmp.is_some() {
            if how.send() {
                self.rmp_shutdown(id, true)?;
            }
            if how.recv() {
                self.sock(id)?.shut_recv = true;
            }
            return Ok(());
        }
        let sock = self.sock(id)?;
        let connected_tcp = match (sock.proto, &sock.state) {
            (Proto::Tcp, State::Connected(h)) => Some(*h),
            (Proto::Tcp, _) => return Err(WsaError::WSAENOTCONN),
            _ => None,
        };
        if how.send() {
            sock.shut_send = true;
            if let Some(h) = connected_tcp {
                self.tcp_shutdown_send(h);
            }
        }
        if how.recv() {
            self.sock(id)?.shut_recv = true;
            self.watch_recv_shutdown(id);
        }
        Ok(())
    }

    /// `closesocket` of the socket's last descriptor, as `SO_LINGER` says: `{1, n}` with data
    /// still queued fails `WSAEWOULDBLOCK` on a non-blocking socket (the socket stays open) and
    /// starts a lingering close on a blocking one; otherwise the socket goes now, with a reset
    /// for `{1, 0}`.
    pub(crate) fn close_socket(&mut self, id: SocketId) -> Result<Close, WsaError> {
        let queued = self.tcp_send_queue(id);
        let s = self.sock(id)?;
        let (linger_on, secs, nonblocking) = (s.opts.linger_on, s.opts.linger_secs, s.nonblocking);
        if linger_on && secs > 0 && queued > 0 {
            if nonblocking {
                return Err(WsaError::WSAEWOULDBLOCK);
            }
            self.tcp_close_gracefully(id);
            return Ok(Close::Linger(Duration::from_secs(u64::from(secs))));
        }
        self.remove(id, linger_on && secs == 0);
        Ok(Close::Done)
    }

    /// Whether a lingering close has delivered its data.
    pub(crate) fn close_linger_done(&mut self, id: SocketId) -> bool {
        self.tcp_linger_done(id)
    }

    /// Ends a lingering close: the socket goes, with a reset unless its data was `delivered`.
    pub(crate) fn close_lingered(&mut self, id: SocketId, delivered: bool) {
        self.remove(id, !delivered);
    }

    // ---- select, network events, blocking calls (§1.6, §1.7) -----------------------------

    /// The readiness of each socket of `ids`, in order (a socket no longer open is ready for
    /// nothing).
    pub(crate) fn select_readiness(&mut self, ids: &[SocketId]) -> Vec<Readiness> {
        ids.iter()
            .map(|&id| {
                let (read, write, except) = match self.table.get(&id).map(|s| s.proto) {
                    Some(Proto::Tcp) => self.tcp_readiness(id),
                    Some(Proto::Rmp) => self.rmp_readiness(id),
                    Some(_) => {
                        let (r, w) = self.dgram_readiness(id);
                        (r, w, false)
                    }
                    None => (false, false, false),
                };
                Readiness {
                    read,
                    write,
                    except,
                }
            })
            .collect()
    }

    /// `WSAEnumNetworkEvents`: copies and clears the record of the socket's `WSAEventSelect`
    /// registration (nothing for a `WSAAsyncSelect` one) and resets `reset`, all at once. On
    /// failure nothing is cleared or reset.
    pub(crate) fn take_network_events(
        &mut self,
        id: SocketId,
        reset: Option<&EventRef>,
    ) -> Result<NetworkEvents, WsaError> {
        let sock = self.sock(id)?;
        let (events, errors) = match sock.select.as_mut() {
            Some(reg) if matches!(reg.target, Target::Event(_)) => reg.take_record(),
            _ => (0, [0; FD_MAX_EVENTS]),
        };
        if let Some(e) = reset {
            e.reset();
        }
        Ok(NetworkEvents { events, errors })
    }

    /// Interrupts every call blocked on the socket now (the Rust face's cancellation).
    pub(crate) fn interrupt_blocking(&mut self, id: SocketId) -> Result<(), WsaError> {
        self.sock(id)?.interrupts += 1;
        Ok(())
    }

    /// How many times the socket's blocking calls were interrupted (`None`: it is closed). A
    /// blocking call ends with `WSAEINTR` when this changes while it waits.
    pub(crate) fn interruptions(&self, id: SocketId) -> Option<u64> {
        self.table.get(&id).map(|s| s.interrupts)
    }
}
