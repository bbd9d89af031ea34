//! Socket creation, names, connection setup, data transfer and teardown (CHECKLIST §1.2–§1.5).

use std::net::SocketAddrV4;
use std::time::Instant;

use super::names::{read_name, write_name};
use super::{record, types::*, Winsock};
use crate::engine::api::{
    Attempt, Close, Destination, NewSocket, RecvCall, RecvFlags, SendAttempt, SendFlags, SendWait,
    Shutdown,
};
use crate::engine::{Engine, Proto, SocketId};
use crate::error::WsaError;
use crate::notify::fd::{FD_ACCEPT, FD_OOB, FD_READ, FD_WRITE};

/// A receive call's flags as the engine takes them.
fn recv_flags(flags: i32) -> RecvFlags {
    RecvFlags {
        peek: flags & MSG_PEEK != 0,
        oob: flags & MSG_OOB != 0,
        unknown: flags & !KNOWN_RECV_FLAGS != 0,
    }
}

/// The multipoint roles `dwFlags` asks for on an entry with `service` flags (§1.10.2, D-6):
/// none, or exactly one control-plane and one data-plane flag, roots only where the entry's
/// plane is rooted; `Some((c_root, d_root))`. Anything else is `WSAEINVAL`.
fn multipoint_roles(service: u32, flags: u32) -> Result<Option<(bool, bool)>, WsaError> {
    let c = flags & (WSA_FLAG_MULTIPOINT_C_ROOT | WSA_FLAG_MULTIPOINT_C_LEAF);
    let d = flags & (WSA_FLAG_MULTIPOINT_D_ROOT | WSA_FLAG_MULTIPOINT_D_LEAF);
    if c == 0 && d == 0 {
        return Ok(None);
    }
    let one = |x: u32| x.count_ones() == 1;
    let c_root = c == WSA_FLAG_MULTIPOINT_C_ROOT;
    let d_root = d == WSA_FLAG_MULTIPOINT_D_ROOT;
    if service & XP1_SUPPORT_MULTIPOINT == 0
        || !one(c)
        || !one(d)
        || (c_root && service & XP1_MULTIPOINT_CONTROL_PLANE == 0)
        || (d_root && service & XP1_MULTIPOINT_DATA_PLANE == 0)
    {
        return Err(WsaError::WSAEINVAL);
    }
    Ok(Some((c_root, d_root)))
}

const KNOWN_RECV_FLAGS: i32 = MSG_PEEK | MSG_OOB;
const KNOWN_SEND_FLAGS: i32 = MSG_OOB | MSG_DONTROUTE;

impl Winsock {
    /// `socket` (CHECKLIST §1.2): TCP, UDP or raw ICMP on `AF_INET`.
    pub fn socket(&self, af: i32, r#type: i32, protocol: i32) -> Result<SOCKET, WsaError> {
        self.WSASocket(af, r#type, protocol, None, 0, WSA_FLAG_OVERLAPPED)
    }

    /// `WSASocket` (CHECKLIST §1.2). `g` (§1.9): 0 is no group, `SG_UNCONSTRAINED_GROUP` /
    /// `SG_CONSTRAINED_GROUP` create a group with this socket as its creator, any other value
    /// joins that live group of this stack; an id naming no live group, or a constrained group
    /// for a datagram socket, is `WSAEINVAL` (CHECKLIST 36–38). Multipoint (§1.10.2): UDP
    /// sockets may be created c_leaf + d_leaf (IP multicast, non-rooted); any other role or
    /// combination is `WSAEINVAL` (D-6).
    ///
    /// `lpProtocolInfo` (CHECKLIST 31, 32, 454, 455): NULL picks the first catalog entry for
    /// (af, type, protocol). Otherwise its `dwCatalogEntryId` names the entry (unknown:
    /// `WSAEINVAL`); each of af, type and protocol that is `FROM_PROTOCOL_INFO` is taken from
    /// the structure, and the three must fit the entry (`WSAEINVAL`). A structure from
    /// `WSADuplicateSocket` (a token in `dwProviderReserved`) gives a new descriptor on the
    /// shared socket, ignoring `g` and `dwFlags`; its second use is `WSAEINVAL` (D-11).
    pub fn WSASocket(
        &self,
        af: i32,
        r#type: i32,
        protocol: i32,
        lpProtocolInfo: Option<&super::WSAPROTOCOL_INFO>,
        g: u32,
        dwFlags: u32,
    ) -> Result<SOCKET, WsaError> {
        record(self.started())?;
        let mut named = None;
        let (af, r#type, protocol) = match lpProtocolInfo {
            None => (af, r#type, protocol),
            Some(info) if info.dwProviderReserved != 0 => {
                return record(self.redeem(info.dwProviderReserved));
            }
            Some(info) => {
                let entry = record(
                    super::catalog::by_catalog_id(info.dwCatalogEntryId).ok_or(WsaError::WSAEINVAL),
                )?;
                let pick = |v: i32, from: i32| if v == FROM_PROTOCOL_INFO { from } else { v };
                let (af, t, p) = (
                    pick(af, info.iAddressFamily),
                    pick(r#type, info.iSocketType),
                    pick(protocol, info.iProtocol),
                );
                let range = entry.iProtocol..=entry.iProtocol + entry.iProtocolMaxOffset;
                if af != entry.iAddressFamily || t != entry.iSocketType || !range.contains(&p) {
                    return record(Err(WsaError::WSAEINVAL));
                }
                named = Some(entry);
                (af, t, p)
            }
        };
        let proto = record(match (af, r#type, protocol) {
            (AF_INET, SOCK_STREAM, 0 | IPPROTO_TCP) => Ok(Proto::Tcp),
            (AF_INET, SOCK_DGRAM, 0 | IPPROTO_UDP) => Ok(Proto::Udp),
            (AF_INET, SOCK_RAW, IPPROTO_ICMP) => Ok(Proto::RawIcmp),
            (AF_INET, SOCK_RDM, 0 | super::IPPROTO_RMP | super::IPPROTO_RMP_RELAY) => {
                Ok(Proto::Rmp)
            }
            (
                AF_INET,
                SOCK_STREAM | SOCK_DGRAM,
                IPPROTO_TCP | IPPROTO_UDP | IPPROTO_ICMP | IPPROTO_IGMP | IPPROTO_RAW,
            ) => Err(WsaError::WSAEPROTOTYPE),
            (AF_INET, SOCK_STREAM | SOCK_DGRAM | SOCK_RAW | SOCK_RDM, _) => {
                Err(WsaError::WSAEPROTONOSUPPORT)
            }
            (AF_INET, _, _) => Err(WsaError::WSAESOCKTNOSUPPORT),
            _ => Err(WsaError::WSAEAFNOSUPPORT),
        })?;
        let multipoint = WSA_FLAG_MULTIPOINT_C_ROOT
            | WSA_FLAG_MULTIPOINT_C_LEAF
            | WSA_FLAG_MULTIPOINT_D_ROOT
            | WSA_FLAG_MULTIPOINT_D_LEAF;
        if dwFlags & !(multipoint | WSA_FLAG_OVERLAPPED) != 0 {
            return record(Err(WsaError::WSAEINVAL));
        }
        let entry = record(
            named
                .or_else(|| super::catalog::find(af, r#type, protocol))
                .ok_or(WsaError::WSAEINVAL),
        )?;
        let roles = record(multipoint_roles(entry.dwServiceFlags1, dwFlags))?;
        // Without roles an RMP socket can take part in no session: `WSAJoinLeaf` and `listen`
        // refuse it (WSAEOPNOTSUPP), like a non-multipoint socket (D-7). A socket that cannot
        // have the group it asked for is not created.
        let new = NewSocket {
            proto,
            overlapped: dwFlags & WSA_FLAG_OVERLAPPED != 0,
            roles,
            relay: protocol == super::IPPROTO_RMP_RELAY,
            group: g,
        };
        let id = record(self.stack.with(|core| core.create_socket(new)))?;
        self.record_entry(id, entry.dwCatalogEntryId);
        Ok(self.adopt(id))
    }

    /// `bind` (CHECKLIST §1.3): port 0 picks a port in 1024–5000 (D-23).
    pub fn bind(&self, s: SOCKET, name: Option<&SOCKADDR>, namelen: i32) -> Result<(), WsaError> {
        let id = record(self.check(s))?;
        let addr = record(read_name(name, namelen, WsaError::WSAEFAULT))?;
        // Binding a datagram socket makes sends possible: FD_WRITE (§1.6.5).
        record(self.stack.with(|core| core.bind_socket(id, addr)))
    }

    /// `listen` (CHECKLIST §1.3): the backlog is clamped to [1, max] (D-25); calling it again
    /// resizes the queue and resets what no longer fits.
    pub fn listen(&self, s: SOCKET, backlog: i32) -> Result<(), WsaError> {
        let id = record(self.check(s))?;
        record(self.stack.with(|core| core.listen_socket(id, backlog)))
    }

    /// The checks `accept` and `WSAAccept` share before the engine's: a live socket and a
    /// usable `addr`/`addrlen` pair (`WSAEFAULT`). The engine then checks for a TCP or RMP
    /// socket (`WSAEOPNOTSUPP`).
    pub(super) fn accept_checks(
        &self,
        s: SOCKET,
        addr: &Option<&mut SOCKADDR>,
        addrlen: &Option<&mut i32>,
    ) -> Result<SocketId, WsaError> {
        let id = self.check(s)?;
        if matches!(addrlen, Some(l) if **l < SOCKADDR_IN_LEN)
            || (addr.is_some() && addrlen.is_none())
        {
            return Err(WsaError::WSAEFAULT);
        }
        Ok(id)
    }

    /// `accept` (CHECKLIST §1.3): the new socket has the listener's properties.
    pub fn accept(
        &self,
        s: SOCKET,
        addr: Option<&mut SOCKADDR>,
        addrlen: Option<&mut i32>,
    ) -> Result<SOCKET, WsaError> {
        let id = record(self.accept_checks(s, &addr, &addrlen))?;
        let got = match self.stack.with(|core| core.accept_first(id)) {
            Ok(Attempt::Done(got)) => Ok(got),
            Ok(Attempt::Wait(_)) => self
                .block(Some(id), None, |core| core.accept_again(id))
                .unwrap_or(Err(WsaError::WSAEINTR)),
            Err(e) => Err(e),
        };
        // accept re-enables FD_ACCEPT, whatever its result (§1.6.5).
        self.rearm(s, FD_ACCEPT);
        let (new, remote) = record(got)?;
        let socket = self.adopt(new);
        if addr.is_some() {
            let _ = write_name(remote, addr, addrlen);
        }
        Ok(socket)
    }

    /// `connect` (CHECKLIST §1.3): blocking waits for the handshake; non-blocking returns
    /// `WSAEWOULDBLOCK` and completes through `select` (writable or exceptfds) and `SO_ERROR`.
    /// On a datagram socket it sets (or with 0.0.0.0 clears) the default peer.
    pub fn connect(
        &self,
        s: SOCKET,
        name: Option<&SOCKADDR>,
        namelen: i32,
    ) -> Result<(), WsaError> {
        let id = record(self.check(s))?;
        let addr = record(read_name(name, namelen, WsaError::WSAEAFNOSUPPORT))?;
        let v1 = self.v1_mode();
        // A constrained group's connections all go to one address (CHECKLIST §1.9, 124); a
        // socket already connecting or connected gets connect's own error instead. 1.1
        // applications see WSAEINVAL for a connect already under way (CHECKLIST 110).
        let already = if v1 {
            WsaError::WSAEINVAL
        } else {
            WsaError::WSAEALREADY
        };
        if let Attempt::Done(()) = record(
            self.stack
                .with(|core| core.connect_first(id, addr, already)),
        )? {
            return Ok(());
        }
        let r = self.block(Some(id), None, |core| core.connect_again(id));
        if let Some(Err(_)) = r {
            // A blocking connect reports its failure itself; it is not pending in SO_ERROR.
            self.stack
                .with(|core| core.connect_failed_reported(id))
                .ok();
        }
        record(r.unwrap_or(Err(WsaError::WSAEINTR)))
    }

    /// `send` (CHECKLIST §1.4): on a blocking socket returns when all of `buf` is queued; on a
    /// non-blocking stream socket queues what fits (`WSAEWOULDBLOCK` if nothing does).
    pub fn send(&self, s: SOCKET, buf: &[u8], flags: i32) -> Result<i32, WsaError> {
        let id = record(self.check(s))?;
        record(self.sent(s, self.send_inner(id, None, buf, flags)))
    }

    /// A send that failed `WSAEWOULDBLOCK` re-enables `FD_WRITE` (§1.6.5).
    fn sent(&self, s: SOCKET, r: Result<i32, WsaError>) -> Result<i32, WsaError> {
        if r == Err(WsaError::WSAEWOULDBLOCK) {
            self.rearm(s, FD_WRITE);
        }
        r
    }

    /// `sendto` (CHECKLIST §1.4): `to` is ignored on a connected stream socket.
    pub fn sendto(
        &self,
        s: SOCKET,
        buf: &[u8],
        flags: i32,
        to: Option<&SOCKADDR>,
        tolen: i32,
    ) -> Result<i32, WsaError> {
        let id = record(self.check(s))?;
        // The name matters only to a datagram socket, which the engine checks first.
        let to = Destination::To(read_name(to, tolen, WsaError::WSAEAFNOSUPPORT));
        record(self.sent(s, self.send_call(id, to, buf, flags)))
    }

    pub(super) fn send_inner(
        &self,
        id: SocketId,
        to: Option<SocketAddrV4>,
        buf: &[u8],
        flags: i32,
    ) -> Result<i32, WsaError> {
        let to = to.map_or(Destination::Default, |to| Destination::To(Ok(to)));
        self.send_call(id, to, buf, flags)
    }

    /// A send: the first attempt (with the call's checks) in one engine call; a blocking socket
    /// that has to wait goes on in [`Winsock::block`].
    fn send_call(
        &self,
        id: SocketId,
        to: Destination,
        buf: &[u8],
        flags: i32,
    ) -> Result<i32, WsaError> {
        let parsed = SendFlags {
            oob: flags & MSG_OOB != 0,
            unknown: flags & !KNOWN_SEND_FLAGS != 0,
        };
        let (timeout, how) = match self
            .stack
            .with(|core| core.send_first(id, to, buf, parsed))?
        {
            SendAttempt::Done(n) => return Ok(n as i32),
            SendAttempt::Wait { timeout, how } => (timeout, how),
        };
        let deadline = timeout.map(|t| Instant::now() + t);
        let to = match how {
            SendWait::Datagram(to) => to,
            SendWait::Stream { sent } => {
                return self.send_stream(id, buf, parsed.oob, sent, deadline)
            }
        };
        self.block(Some(id), deadline, |core| {
            core.send_datagram_again(id, to, buf)
        })
        .unwrap_or(Err(WsaError::WSAETIMEDOUT))
        .map(|_| buf.len() as i32)
    }

    /// The rest of a blocking stream send whose first `sent` bytes are queued: returns when all
    /// of `buf` is.
    fn send_stream(
        &self,
        id: SocketId,
        buf: &[u8],
        oob: bool,
        mut sent: usize,
        deadline: Option<Instant>,
    ) -> Result<i32, WsaError> {
        let attempt = |core: &mut Engine| -> Option<Result<usize, WsaError>> {
            match core.send_stream_again(id, &buf[sent..], oob) {
                Err(e) => Some(Err(e)),
                Ok(n) => {
                    sent += n;
                    (sent == buf.len()).then_some(Ok(sent))
                }
            }
        };
        let r = match self.block(Some(id), deadline, attempt) {
            Some(Err(WsaError::WSAEINTR)) if sent > 0 && self.v1_mode() => {
                // A cancelled send broke the stream: reset it; from now on only closesocket
                // works (WSAECONNABORTED, CHECKLIST §1.7.3).
                self.stack.with(|core| core.tcp_abort(id));
                Err(WsaError::WSAEINTR)
            }
            // Interrupted (not closed) in 2.x mode after queueing part of `buf`: report what
            // went, so the stream stays consistent (`interrupt_blocking_calls`).
            Some(Err(WsaError::WSAEINTR))
                if sent > 0 && self.stack.with_quiet(|core| core.socket_open(id)) =>
            {
                Ok(sent)
            }
            Some(r) => r,
            None if sent > 0 => Ok(sent),
            None => Err(WsaError::WSAETIMEDOUT),
        };
        r.map(|n| n as i32)
    }

    /// `recv` (CHECKLIST §1.4): 0 means the peer closed gracefully; a datagram longer than
    /// `buf` fills it and fails `WSAEMSGSIZE` (the rest is lost).
    pub fn recv(&self, s: SOCKET, buf: &mut [u8], flags: i32) -> Result<i32, WsaError> {
        let id = record(self.check(s))?;
        let r = self.recv_checked(id, buf, flags);
        // Any receive call re-enables FD_READ and FD_OOB, even one that failed (§1.6.5).
        self.rearm(s, FD_READ | FD_OOB);
        r
    }

    fn recv_checked(&self, id: SocketId, buf: &mut [u8], flags: i32) -> Result<i32, WsaError> {
        // A datagram socket disconnected by `connect(0.0.0.0)` has no peer to receive from;
        // `recvfrom` still works (CHECKLIST §1.3 `connect`).
        let call = RecvCall {
            flags: recv_flags(flags),
            needs_peer: true,
            short_from: false,
        };
        record(self.recv_call(id, buf, call).map(|(n, _)| n))
    }

    /// `recvfrom` (CHECKLIST §1.4): also returns the sender of a datagram; `from` and `fromlen`
    /// are ignored on stream sockets.
    pub fn recvfrom(
        &self,
        s: SOCKET,
        buf: &mut [u8],
        flags: i32,
        from: Option<&mut SOCKADDR>,
        fromlen: Option<&mut i32>,
    ) -> Result<i32, WsaError> {
        let id = record(self.check(s))?;
        let r = self.recvfrom_checked(id, buf, flags, from, fromlen);
        self.rearm(s, FD_READ | FD_OOB);
        r
    }

    fn recvfrom_checked(
        &self,
        id: SocketId,
        buf: &mut [u8],
        flags: i32,
        from: Option<&mut SOCKADDR>,
        fromlen: Option<&mut i32>,
    ) -> Result<i32, WsaError> {
        let call = RecvCall {
            flags: recv_flags(flags),
            needs_peer: false,
            short_from: matches!(&fromlen, Some(l) if **l < SOCKADDR_IN_LEN),
        };
        let (n, src) = record(self.recv_call(id, buf, call))?;
        // Only datagram sockets (UDP, raw ICMP, RMP) report a sender.
        if let Some(src) = src {
            if from.is_some() {
                record(write_name(src, from, fromlen))?;
            }
        }
        Ok(n)
    }

    pub(super) fn recv_inner(
        &self,
        id: SocketId,
        buf: &mut [u8],
        flags: i32,
    ) -> Result<(i32, Option<SocketAddrV4>), WsaError> {
        let call = RecvCall {
            flags: recv_flags(flags),
            ..RecvCall::default()
        };
        self.recv_call(id, buf, call)
    }

    /// A receive: the first attempt (with the call's checks) in one engine call; a blocking
    /// socket with nothing to receive waits in [`Winsock::block`] (until `SO_RCVTIMEO`:
    /// `WSAETIMEDOUT`).
    fn recv_call(
        &self,
        id: SocketId,
        buf: &mut [u8],
        call: RecvCall,
    ) -> Result<(i32, Option<SocketAddrV4>), WsaError> {
        let got = match self.stack.with(|core| core.recv_first(id, buf, call))? {
            Attempt::Done(got) => got,
            Attempt::Wait(timeout) => self
                .block(Some(id), timeout.map(|t| Instant::now() + t), |core| {
                    core.recv_again(id, buf, call.flags)
                })
                .unwrap_or(Err(WsaError::WSAETIMEDOUT))?,
        };
        Ok((got.len as i32, got.from))
    }

    /// `shutdown` (CHECKLIST §1.5): `SD_SEND` sends FIN after queued data; `SD_RECEIVE` refuses
    /// further receives and resets a TCP connection that has or gets unread data (D-35).
    pub fn shutdown(&self, s: SOCKET, how: i32) -> Result<(), WsaError> {
        let id = record(self.check(s))?;
        if !(SD_RECEIVE..=SD_BOTH).contains(&how) {
            return record(Err(WsaError::WSAEINVAL));
        }
        let how = match how {
            SD_RECEIVE => Shutdown::Receive,
            SD_SEND => Shutdown::Send,
            _ => Shutdown::Both,
        };
        record(self.stack.with(|core| core.shutdown_socket(id, how)))
    }

    /// `closesocket` (CHECKLIST §1.5, the linger table): graceful in the background by default;
    /// `SO_LINGER {1, 0}` resets; `SO_LINGER {1, n}` waits up to n seconds on a blocking socket
    /// and resets if the data is not delivered by then; on a non-blocking socket with data still
    /// queued it fails `WSAEWOULDBLOCK` and leaves the socket open. A shared socket
    /// (`WSADuplicateSocket`) only loses this descriptor until its last one closes (452, 453).
    pub fn closesocket(&self, s: SOCKET) -> Result<(), WsaError> {
        let id = record(self.check(s))?;
        if self.shared_elsewhere(s, id) {
            self.release(s, id);
            return Ok(());
        }
        let close = record(self.stack.with(|core| core.close_socket(id)))?;
        self.release(s, id);
        if let Close::Linger(linger) = close {
            let until = Instant::now() + linger;
            // A lingering close is a blocking call: 1.1 hooks run and may cancel it (then the
            // connection is reset, as when the linger time runs out).
            let done = matches!(
                self.block(None, Some(until), |core| {
                    core.close_linger_done(id).then_some(Ok(()))
                }),
                Some(Ok(()))
            );
            self.stack.with(|core| core.close_lingered(id, done));
        }
        Ok(())
    }

    /// `getsockname` (CHECKLIST §1.3): `WSAEINVAL` before the socket has a name (D-4); a socket
    /// bound to `INADDR_ANY` reports its specific address once connected.
    pub fn getsockname(
        &self,
        s: SOCKET,
        name: Option<&mut SOCKADDR>,
        namelen: Option<&mut i32>,
    ) -> Result<(), WsaError> {
        let id = record(self.check(s))?;
        let addr = record(self.stack.with(|core| core.socket_name(id)))?;
        if name.is_none() {
            return record(Err(WsaError::WSAEFAULT));
        }
        record(write_name(addr, name, namelen))
    }

    /// `getpeername` (CHECKLIST §1.3): the peer of a connected socket (for datagram sockets, the
    /// `connect`ed address only).
    pub fn getpeername(
        &self,
        s: SOCKET,
        name: Option<&mut SOCKADDR>,
        namelen: Option<&mut i32>,
    ) -> Result<(), WsaError> {
        let id = record(self.check(s))?;
        let addr = record(self.stack.with(|core| core.peer_name(id)))?;
        if name.is_none() {
            return record(Err(WsaError::WSAEFAULT));
        }
        record(write_name(addr, name, namelen))
    }
}
