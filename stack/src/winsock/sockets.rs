//! Socket creation, names, connection setup, data transfer and teardown (CHECKLIST §1.2–§1.5).

use std::net::SocketAddrV4;
use std::time::{Duration, Instant};

use super::names::{read_name, write_name};
use super::{record, types::*, Winsock};
use crate::engine::{Proto, SocketId};
use crate::error::WsaError;
use crate::notify::fd::{FD_ACCEPT, FD_OOB, FD_READ, FD_WRITE};

fn deadline(timeout_ms: u32) -> Option<Instant> {
    (timeout_ms > 0).then(|| Instant::now() + Duration::from_millis(u64::from(timeout_ms)))
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
        let id = record(self.stack.with(|core| {
            let mut sock = crate::engine::new_sock(proto, core);
            sock.overlapped = dwFlags & WSA_FLAG_OVERLAPPED != 0;
            match (proto, roles) {
                (Proto::Rmp, Some((c_root, d_root))) => {
                    let plane = if protocol == super::IPPROTO_RMP_RELAY {
                        ws2_multipoint::rmp::DataPlane::NonRooted
                    } else {
                        ws2_multipoint::rmp::DataPlane::Rooted
                    };
                    sock.rmp = Some(Box::new(crate::engine::rmp::RmpSock::new(
                        plane, c_root, d_root,
                    )));
                }
                // Without roles an RMP socket can take part in no session: `WSAJoinLeaf` and
                // `listen` refuse it (WSAEOPNOTSUPP), like a non-multipoint socket (D-7).
                (Proto::Rmp, None) => {}
                (_, roles) => sock.mcast.multipoint = roles.is_some(),
            }
            let id = core.insert(sock)?;
            if let Err(e) = core.group_apply(id, g) {
                // A socket that cannot have the group it asked for is not created.
                core.remove(id, true);
                return Err(e);
            }
            Ok(id)
        }))?;
        self.record_entry(id, entry.dwCatalogEntryId);
        Ok(self.adopt(id))
    }

    /// `bind` (CHECKLIST §1.3): port 0 picks a port in 1024–5000 (D-23).
    pub fn bind(&self, s: SOCKET, name: Option<&SOCKADDR>, namelen: i32) -> Result<(), WsaError> {
        let id = record(self.check(s))?;
        let addr = record(read_name(name, namelen, WsaError::WSAEFAULT))?;
        record(self.stack.with(|core| match core.sock(id)?.proto {
            Proto::Tcp | Proto::Rmp => core.bind_name(id, addr).map(drop),
            _ => {
                core.dgram_bind(id, addr)?;
                // Binding a datagram socket makes sends possible: FD_WRITE (§1.6.5).
                core.fd_arm(id, FD_WRITE);
                Ok(())
            }
        }))
    }

    /// `listen` (CHECKLIST §1.3): the backlog is clamped to [1, max] (D-25); calling it again
    /// resizes the queue and resets what no longer fits.
    pub fn listen(&self, s: SOCKET, backlog: i32) -> Result<(), WsaError> {
        let id = record(self.check(s))?;
        record(self.stack.with(|core| match core.sock(id)?.proto {
            Proto::Tcp => core.tcp_listen(id, backlog),
            Proto::Rmp => core.rmp_listen(id, backlog),
            _ => Err(WsaError::WSAEOPNOTSUPP),
        }))
    }

    /// The checks `accept` and `WSAAccept` share: a live socket, a usable `addr`/`addrlen`
    /// pair (`WSAEFAULT`), a TCP socket (`WSAEOPNOTSUPP`). Returns the socket and whether it is
    /// non-blocking.
    pub(super) fn accept_checks(
        &self,
        s: SOCKET,
        addr: &Option<&mut SOCKADDR>,
        addrlen: &Option<&mut i32>,
    ) -> Result<(SocketId, bool), WsaError> {
        let id = self.check(s)?;
        if matches!(addrlen, Some(l) if **l < SOCKADDR_IN_LEN)
            || (addr.is_some() && addrlen.is_none())
        {
            return Err(WsaError::WSAEFAULT);
        }
        let (proto, nonblocking) = self
            .stack
            .with_quiet(|core| core.sock(id).map(|s| (s.proto, s.nonblocking)))?;
        if proto != Proto::Tcp && proto != Proto::Rmp {
            return Err(WsaError::WSAEOPNOTSUPP);
        }
        Ok((id, nonblocking))
    }

    /// `accept` (CHECKLIST §1.3): the new socket has the listener's properties.
    pub fn accept(
        &self,
        s: SOCKET,
        addr: Option<&mut SOCKADDR>,
        addrlen: Option<&mut i32>,
    ) -> Result<SOCKET, WsaError> {
        let (id, nonblocking) = record(self.accept_checks(s, &addr, &addrlen))?;
        let attempt =
            |core: &mut crate::engine::Core| -> Option<Result<(SocketId, SocketAddrV4), WsaError>> {
                if !core.table.contains_key(&id) {
                    return Some(Err(WsaError::WSAEINTR));
                }
                if core.sock(id).is_ok_and(|s| s.rmp.is_some()) {
                    return core.rmp_accept(id, &[]).transpose();
                }
                core.tcp_accept(id).transpose()
            };
        let got = if nonblocking {
            self.stack
                .with(attempt)
                .unwrap_or(Err(WsaError::WSAEWOULDBLOCK))
        } else {
            self.block(Some(id), None, attempt)
                .unwrap_or(Err(WsaError::WSAEINTR))
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
        let (proto, nonblocking) = record(
            self.stack
                .with(|core| core.sock(id).map(|s| (s.proto, s.nonblocking))),
        )?;
        if proto != Proto::Tcp {
            let peer = (!addr.ip().is_unspecified()).then_some(addr);
            record(self.stack.with(|core| core.dgram_connect(id, peer)))?;
            self.stack.with_quiet(|core| core.fd_connect_issued(id));
            return Ok(());
        }
        record(self.stack.with(|core| {
            // A constrained group's connections all go to one address (CHECKLIST §1.9, 124);
            // a socket already connecting or connected gets connect's own error instead.
            let fresh = matches!(core.sock(id)?.state, crate::engine::SockState::Idle);
            if fresh {
                core.group_connect(id, addr)?;
            }
            match core.tcp_connect(id, addr) {
                // 1.1 applications see WSAEINVAL for a connect already under way (CHECKLIST 110).
                Err(WsaError::WSAEALREADY) if v1 => Err(WsaError::WSAEINVAL),
                Err(e) => {
                    if fresh {
                        core.group_connect_failed(id);
                    }
                    Err(e)
                }
                r => r,
            }
        }))?;
        self.stack.with_quiet(|core| core.fd_connect_issued(id));
        if nonblocking {
            return record(Err(WsaError::WSAEWOULDBLOCK));
        }
        let r = self.block(Some(id), None, |core| core.tcp_connect_poll(id));
        if let Some(Err(_)) = r {
            // A blocking connect reports its failure itself; it is not pending in SO_ERROR.
            self.stack
                .with(|core| core.sock(id).map(|s| s.so_error = 0))
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
        let proto = record(self.stack.with(|core| core.sock(id).map(|s| s.proto)))?;
        if proto == Proto::Tcp {
            return record(self.sent(s, self.send_inner(id, None, buf, flags)));
        }
        let to = record(read_name(to, tolen, WsaError::WSAEAFNOSUPPORT))?;
        record(self.sent(s, self.send_inner(id, Some(to), buf, flags)))
    }

    pub(super) fn send_inner(
        &self,
        id: SocketId,
        to: Option<SocketAddrV4>,
        buf: &[u8],
        flags: i32,
    ) -> Result<i32, WsaError> {
        if flags & !KNOWN_SEND_FLAGS != 0 {
            return Err(WsaError::WSAEINVAL);
        }
        let (proto, nonblocking, peer, timeout, oobinline) = self.stack.with(|core| {
            let peer = super::multicast::default_destination(core, id);
            core.sock(id).map(|s| {
                (
                    s.proto,
                    s.nonblocking,
                    peer,
                    s.opts.sndtimeo_ms,
                    s.opts.oobinline,
                )
            })
        })?;
        let oob = flags & MSG_OOB != 0;
        if oob {
            match proto {
                // D-5: the send tables give WSAEINVAL with SO_OOBINLINE on.
                Proto::Tcp if oobinline => return Err(WsaError::WSAEINVAL),
                // TCP urgent data (CHECKLIST §1.15, D-22; engine `urgent`).
                Proto::Tcp => {}
                _ => return Err(WsaError::WSAEOPNOTSUPP),
            }
        }
        let len = i32::try_from(buf.len()).map_err(|_| WsaError::WSAEMSGSIZE)?;
        if proto == Proto::Tcp {
            let mut sent = 0usize;
            let mut attempt = |core: &mut crate::engine::Core| -> Option<Result<usize, WsaError>> {
                if !core.table.contains_key(&id) {
                    return Some(Err(WsaError::WSAEINTR));
                }
                match core.tcp_send(id, &buf[sent..]) {
                    Err(e) => Some(Err(e)),
                    Ok(n) => {
                        sent += n;
                        if oob && n > 0 {
                            // The last byte queued so far is the urgent one (496).
                            if let Err(e) = core.urg_mark_sent(id) {
                                return Some(Err(e));
                            }
                        }
                        (sent == buf.len() || (nonblocking && sent > 0)).then_some(Ok(sent))
                    }
                }
            };
            let r = if nonblocking {
                self.stack
                    .with(&mut attempt)
                    .unwrap_or(Err(WsaError::WSAEWOULDBLOCK))
            } else {
                match self.block(Some(id), deadline(timeout), &mut attempt) {
                    Some(Err(WsaError::WSAEINTR)) if sent > 0 && self.v1_mode() => {
                        // A cancelled send broke the stream: reset it; from now on only
                        // closesocket works (WSAECONNABORTED, CHECKLIST §1.7.3).
                        self.stack.with(|core| core.tcp_abort(id));
                        Err(WsaError::WSAEINTR)
                    }
                    // Interrupted (not closed) in 2.x mode after queueing part of `buf`: report
                    // what went, so the stream stays consistent (`interrupt_blocking_calls`).
                    Some(Err(WsaError::WSAEINTR))
                        if sent > 0
                            && self.stack.with_quiet(|core| core.table.contains_key(&id)) =>
                    {
                        Ok(sent)
                    }
                    Some(r) => r,
                    None if sent > 0 => Ok(sent),
                    None => Err(WsaError::WSAETIMEDOUT),
                }
            };
            return r.map(|n| n as i32);
        }
        let to = match to.or(peer) {
            Some(t) => t,
            None => return Err(WsaError::WSAENOTCONN),
        };
        let attempt = |core: &mut crate::engine::Core| -> Option<Result<usize, WsaError>> {
            if !core.table.contains_key(&id) {
                return Some(Err(WsaError::WSAEINTR));
            }
            core.dgram_send(id, to, buf).transpose()
        };
        let r = if nonblocking {
            self.stack
                .with(attempt)
                .unwrap_or(Err(WsaError::WSAEWOULDBLOCK))
        } else {
            self.block(Some(id), deadline(timeout), attempt)
                .unwrap_or(Err(WsaError::WSAETIMEDOUT))
        };
        r.map(|_| len)
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
        if record(
            self.stack
                .with(|core| core.sock(id).map(|s| s.disconnected)),
        )? {
            return record(Err(WsaError::WSAENOTCONN));
        }
        record(self.recv_inner(id, buf, flags).map(|(n, _)| n))
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
        let proto = record(self.stack.with(|core| core.sock(id).map(|s| s.proto)))?;
        if proto != Proto::Tcp && matches!(&fromlen, Some(l) if **l < SOCKADDR_IN_LEN) {
            return record(Err(WsaError::WSAEFAULT));
        }
        let (n, src) = record(self.recv_inner(id, buf, flags))?;
        if let (Some(src), Proto::Udp | Proto::RawIcmp | Proto::Rmp) = (src, proto) {
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
        if flags & !KNOWN_RECV_FLAGS != 0 {
            return Err(WsaError::WSAEINVAL);
        }
        let (proto, nonblocking, timeout, oobinline) = self.stack.with(|core| {
            core.sock(id)
                .map(|s| (s.proto, s.nonblocking, s.opts.rcvtimeo_ms, s.opts.oobinline))
        })?;
        let peek = flags & MSG_PEEK != 0;
        if flags & MSG_OOB != 0 {
            if proto != Proto::Tcp {
                return Err(WsaError::WSAEOPNOTSUPP);
            }
            if oobinline {
                return Err(WsaError::WSAEINVAL);
            }
            // The held urgent byte, jumping the queue (497, 498, 504, 505).
            let attempt = |core: &mut crate::engine::Core| -> Option<Result<usize, WsaError>> {
                if !core.table.contains_key(&id) {
                    return Some(Err(WsaError::WSAEINTR));
                }
                core.tcp_recv_oob(id, buf, peek).transpose()
            };
            let r = self.wait(id, nonblocking, timeout, attempt)?;
            return Ok((r as i32, None));
        }
        if proto == Proto::Tcp {
            if buf.is_empty() {
                return Err(WsaError::WSAEINVAL);
            }
            let attempt = |core: &mut crate::engine::Core| -> Option<Result<usize, WsaError>> {
                if !core.table.contains_key(&id) {
                    return Some(Err(WsaError::WSAEINTR));
                }
                core.tcp_recv(id, buf, peek).transpose()
            };
            let r = self.wait(id, nonblocking, timeout, attempt)?;
            return Ok((r as i32, None));
        }
        let got = self.wait(id, nonblocking, timeout, |core| {
            if !core.table.contains_key(&id) {
                return Some(Err(WsaError::WSAEINTR));
            }
            core.dgram_recv(id, buf, peek).transpose()
        })?;
        if got.truncated {
            return Err(WsaError::WSAEMSGSIZE);
        }
        Ok((got.len as i32, Some(got.from)))
    }

    /// Tries once (non-blocking: `WSAEWOULDBLOCK`) or waits (until `timeout_ms`, 0 = forever:
    /// then `WSAETIMEDOUT`).
    fn wait<R>(
        &self,
        id: SocketId,
        nonblocking: bool,
        timeout_ms: u32,
        attempt: impl FnMut(&mut crate::engine::Core) -> Option<Result<R, WsaError>>,
    ) -> Result<R, WsaError> {
        if nonblocking {
            let mut attempt = attempt;
            return self
                .stack
                .with(|core| attempt(core))
                .unwrap_or(Err(WsaError::WSAEWOULDBLOCK));
        }
        self.block(Some(id), deadline(timeout_ms), attempt)
            .unwrap_or(Err(WsaError::WSAETIMEDOUT))
    }

    /// `shutdown` (CHECKLIST §1.5): `SD_SEND` sends FIN after queued data; `SD_RECEIVE` refuses
    /// further receives and resets a TCP connection that has or gets unread data (D-35).
    pub fn shutdown(&self, s: SOCKET, how: i32) -> Result<(), WsaError> {
        let id = record(self.check(s))?;
        if !(SD_RECEIVE..=SD_BOTH).contains(&how) {
            return record(Err(WsaError::WSAEINVAL));
        }
        record(self.stack.with(|core| {
            if core.sock(id)?.rmp.is_some() {
                if how == SD_SEND || how == SD_BOTH {
                    core.rmp_shutdown(id, true)?;
                }
                if how == SD_RECEIVE || how == SD_BOTH {
                    core.sock(id)?.shut_recv = true;
                }
                return Ok(());
            }
            let sock = core.sock(id)?;
            let connected_tcp = match (sock.proto, &sock.state) {
                (Proto::Tcp, crate::engine::SockState::Connected(h)) => Some(*h),
                (Proto::Tcp, _) => return Err(WsaError::WSAENOTCONN),
                _ => None,
            };
            if how == SD_SEND || how == SD_BOTH {
                sock.shut_send = true;
                if let Some(h) = connected_tcp {
                    core.tcp_shutdown_send(h);
                }
            }
            if how == SD_RECEIVE || how == SD_BOTH {
                core.sock(id)?.shut_recv = true;
                core.watch_recv_shutdown(id);
            }
            Ok(())
        }))
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
        let (linger_on, secs, nonblocking, queued) = record(self.stack.with(|core| {
            let q = core.tcp_send_queue(id);
            core.sock(id)
                .map(|s| (s.opts.linger_on, s.opts.linger_secs, s.nonblocking, q))
        }))?;
        if linger_on && secs > 0 && nonblocking && queued > 0 {
            return record(Err(WsaError::WSAEWOULDBLOCK));
        }
        self.release(s, id);
        if linger_on && secs > 0 && queued > 0 {
            self.stack.with(|core| core.tcp_close_gracefully(id));
            let until = Instant::now() + Duration::from_secs(u64::from(secs));
            // A lingering close is a blocking call: 1.1 hooks run and may cancel it (then the
            // connection is reset, as when the linger time runs out).
            let done = matches!(
                self.block(None, Some(until), |core| {
                    core.tcp_linger_done(id).then_some(Ok(()))
                }),
                Some(Ok(()))
            );
            self.stack.with(|core| core.remove(id, !done));
        } else {
            self.stack
                .with(|core| core.remove(id, linger_on && secs == 0));
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
        let addr = record(self.stack.with(|core| {
            let sock = core.sock(id)?;
            sock.local.or(sock.bound).ok_or(WsaError::WSAEINVAL)
        }))?;
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
        let addr = record(self.stack.with(|core| {
            let _ = core.tcp_connect_poll(id);
            let sock = core.sock(id)?;
            match (&sock.proto, &sock.state) {
                (Proto::Tcp, crate::engine::SockState::Connected(_)) => {
                    sock.peer.ok_or(WsaError::WSAENOTCONN)
                }
                (Proto::Tcp, _) => Err(WsaError::WSAENOTCONN),
                _ => sock.peer.ok_or(WsaError::WSAENOTCONN),
            }
        }))?;
        if name.is_none() {
            return record(Err(WsaError::WSAEFAULT));
        }
        record(write_name(addr, name, namelen))
    }
}
