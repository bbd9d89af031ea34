//! Engine operations for the Winsock face: see the module docs of `api`.
//!
//! This file: socket options and `ioctlsocket` (CHECKLIST §1.13, §1.14.1), the QoS ioctls and
//! the QoS part of `WSAConnect` (§1.8.3, §1.3), and `WSAJoinLeaf`, the multipoint ioctls and
//! the Deering options on the UDP entry (§1.10). The face reads the caller's buffers
//! (`optval`, ioctl inputs, `QOS` layouts) and passes what they hold as the types below.
//!
//! Some checks come before the face's reading of a buffer in the spec's order (the option's
//! transport, the socket being multipoint, QoS being supported): there the face passes what it
//! read as a [`Read`], and the engine reports a reading error only after those checks.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::Duration;

use ws2_multipoint::igmp::{FilterMode, SourceFilter};
use ws2_qos::Qos;

use super::super::groups::group_error;
use super::super::lifecycle::{Proto, SocketId, State};
use super::super::multicast::JoinRole;
use super::super::udp::{MAX_RAW_PAYLOAD, MAX_UDP_PAYLOAD};
use super::super::Engine;
use crate::error::WsaError;
use crate::notify::fd::{FD_GROUP_QOS, FD_QOS};

/// What the face read from a caller's buffer, or the error reading it gave (`WSAEFAULT` for a
/// short buffer, `WSAEINVAL` for a value out of range), reported by the engine after the checks
/// the spec puts first.
pub(crate) type Read<T> = Result<T, WsaError>;

/// Smallest and largest `SO_RCVBUF`/`SO_SNDBUF` the provider grants.
const BUFFER_RANGE: (usize, usize) = (4 * 1024, 16 * 1024 * 1024);

/// A socket option `getsockopt` reads from the engine (CHECKLIST §1.13.2; the Deering options
/// of the Protocol-Specific Annex for `IP_MULTICAST_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SockOpt {
    /// `SO_ACCEPTCONN`.
    AcceptConn,
    /// `SO_BROADCAST`.
    Broadcast,
    /// `SO_CONNECT_TIME`.
    ConnectTime,
    /// `SO_DEBUG`.
    Debug,
    /// `SO_DONTLINGER`.
    DontLinger,
    /// `SO_DONTROUTE`.
    DontRoute,
    /// `SO_ERROR` (get and clear).
    Error,
    /// `SO_GROUP_ID`.
    GroupId,
    /// `SO_GROUP_PRIORITY`.
    GroupPriority,
    /// `SO_KEEPALIVE`.
    KeepAlive,
    /// `SO_LINGER`.
    Linger,
    /// `SO_MAX_MSG_SIZE`.
    MaxMsgSize,
    /// `SO_OOBINLINE`.
    OobInline,
    /// `SO_RCVBUF`.
    RcvBuf,
    /// `SO_RCVTIMEO`.
    RcvTimeo,
    /// `SO_REUSEADDR`.
    ReuseAddr,
    /// `SO_SNDBUF`.
    SndBuf,
    /// `SO_SNDTIMEO`.
    SndTimeo,
    /// `SO_TYPE`.
    Type,
    /// `TCP_NODELAY` (TCP sockets only).
    NoDelay,
    /// `IP_MULTICAST_IF` (UDP sockets only).
    MulticastIf,
    /// `IP_MULTICAST_TTL` (UDP sockets only).
    MulticastTtl,
    /// `IP_MULTICAST_LOOP` (UDP sockets only).
    MulticastLoop,
}

/// The value of a [`SockOpt`], for the face to encode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OptValue {
    /// A BOOL option.
    Bool(bool),
    /// An int option (`SO_ERROR`, `SO_GROUP_PRIORITY`).
    Int(i32),
    /// A buffer size in bytes (`SO_RCVBUF`, `SO_SNDBUF`).
    Bytes(usize),
    /// `SO_LINGER`: `l_onoff` and `l_linger` (seconds).
    Linger {
        /// `l_onoff`.
        on: bool,
        /// `l_linger`, seconds.
        secs: u16,
    },
    /// `SO_CONNECT_TIME`: how long the connection has been up; `None` when not connected.
    ConnectedFor(Option<Duration>),
    /// `SO_TYPE`: the socket's transport.
    Transport(Proto),
    /// `SO_MAX_MSG_SIZE`: the largest message; `None` for streams (no limit).
    MaxMessage(Option<usize>),
    /// `SO_GROUP_ID`: the group's id, 0 outside a group.
    Group(u32),
    /// `SO_RCVTIMEO`/`SO_SNDTIMEO` (zero = none).
    Timeout(Duration),
    /// `IP_MULTICAST_TTL`.
    Ttl(u8),
    /// `IP_MULTICAST_IF` (unspecified = the default).
    Interface(Ipv4Addr),
}

/// How a source-specific request changes a socket's filter for a group (RFC 3678 §4.1.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SourceChange {
    /// `IP_ADD_SOURCE_MEMBERSHIP`: receive the group from this source too.
    Add,
    /// `IP_DROP_SOURCE_MEMBERSHIP`: stop receiving it from this source.
    Drop,
    /// `IP_BLOCK_SOURCE`: an any-source member stops hearing this source.
    Block,
    /// `IP_UNBLOCK_SOURCE`: undoes [`SourceChange::Block`].
    Unblock,
}

/// A socket option `setsockopt` sets, with the value the face read from `optval`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SetOpt {
    /// `SO_BROADCAST`.
    Broadcast(bool),
    /// `SO_DEBUG`.
    Debug(bool),
    /// `SO_DONTROUTE`.
    DontRoute(bool),
    /// `SO_OOBINLINE`.
    OobInline(bool),
    /// `SO_REUSEADDR`.
    ReuseAddr(bool),
    /// `SO_KEEPALIVE`.
    KeepAlive(bool),
    /// `SO_DONTLINGER`: TRUE ≡ `SO_LINGER` with `l_onoff` = 0.
    DontLinger(bool),
    /// `SO_LINGER`: `l_onoff` and `l_linger` (seconds).
    Linger {
        /// `l_onoff`.
        on: bool,
        /// `l_linger`, seconds.
        secs: u16,
    },
    /// `SO_RCVBUF`: the size asked for, in bytes.
    RcvBuf(usize),
    /// `SO_SNDBUF`: the size asked for, in bytes.
    SndBuf(usize),
    /// `SO_RCVTIMEO` (zero = none).
    RcvTimeo(Duration),
    /// `SO_SNDTIMEO` (zero = none).
    SndTimeo(Duration),
    /// `SO_GROUP_PRIORITY`.
    GroupPriority(i32),
    /// `TCP_NODELAY`.
    NoDelay(bool),
    /// `IP_MULTICAST_IF`: the source address of multicast sends.
    MulticastIf(Ipv4Addr),
    /// `IP_MULTICAST_TTL`.
    MulticastTtl(u8),
    /// `IP_MULTICAST_LOOP`.
    MulticastLoop(bool),
    /// `IP_ADD_MEMBERSHIP` (`join`) or `IP_DROP_MEMBERSHIP`, any source.
    Membership {
        /// The group (a multicast address: the face checks).
        group: Ipv4Addr,
        /// The interface's address (0.0.0.0 = the default).
        interface: Ipv4Addr,
        /// Join (true) or leave.
        join: bool,
    },
    /// The source-specific options (`IP_ADD_SOURCE_MEMBERSHIP` … `IP_UNBLOCK_SOURCE`).
    SourceMembership {
        /// The group (a multicast address: the face checks).
        group: Ipv4Addr,
        /// The source.
        source: Ipv4Addr,
        /// The interface's address (0.0.0.0 = the default).
        interface: Ipv4Addr,
        /// What the request does.
        change: SourceChange,
    },
}

/// Which QoS a QoS ioctl reads or sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum QosOf {
    /// The socket's (`SIO_GET_QOS`, `SIO_SET_QOS`).
    Socket,
    /// The socket's group's (`SIO_GET_GROUP_QOS`, `SIO_SET_GROUP_QOS`).
    Group,
}

/// The flowspecs a `WSAConnect` or `WSAJoinLeaf` asks for: `lpSQOS` for the socket, `lpGQOS` for
/// its group (applied only when the socket created the group).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct QosRequest<'a> {
    /// `lpSQOS`.
    pub(crate) socket: Option<&'a Qos>,
    /// `lpGQOS`.
    pub(crate) group: Option<&'a Qos>,
}

impl QosRequest<'_> {
    /// Whether either flowspec was given.
    pub(crate) fn any(&self) -> bool {
        self.socket.is_some() || self.group.is_some()
    }
}

/// What `WSAConnect` learnt before connecting ([`Engine::wsaconnect_begin`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ConnectBegun {
    /// The socket is connectionless (its connect data and `lpCalleeData` are ignored).
    pub(crate) connectionless: bool,
    /// The TCP socket's local address for the caller's flowspecs to be offered under (the face
    /// leaves them for a listener of this process), when flowspecs and a callee were given.
    pub(crate) offer_from: Option<SocketAddrV4>,
}

/// A `WSAJoinLeaf` request on the multipoint entries ([`Engine::join_leaf_begin`]).
#[derive(Debug, Clone, Copy)]
pub(crate) struct JoinLeaf<'a> {
    /// The session (for IP multicast: the group and port).
    pub(crate) to: SocketAddrV4,
    /// Sender only, or receiving too.
    pub(crate) role: JoinRole,
    /// `lpCallerData` holds bytes.
    pub(crate) caller_data: bool,
    /// `lpSQOS`, `lpGQOS`.
    pub(crate) qos: QosRequest<'a>,
}

/// How a `WSAJoinLeaf` goes on after [`Engine::join_leaf_begin`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum JoinBegun {
    /// An RMP socket: the face carries on with rooted multipoint (docs/rmp.md); nothing was
    /// done yet.
    Rmp {
        /// The socket is non-blocking.
        nonblocking: bool,
    },
    /// An IP multicast socket: the request passed its checks and its flowspecs were applied
    /// (the face then empties `lpCalleeData`); `joined` is the join's own outcome: whether it
    /// is complete already (else FD_CONNECT follows once the report has left).
    Multicast {
        /// The socket is non-blocking.
        nonblocking: bool,
        /// The join's outcome.
        joined: Result<bool, WsaError>,
    },
}

/// `SIO_MULTIPOINT_LOOPBACK` or `SIO_MULTICAST_SCOPE`, with the value the face read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MultipointIoctl {
    /// `SIO_MULTIPOINT_LOOPBACK`.
    Loopback(Read<bool>),
    /// `SIO_MULTICAST_SCOPE` (the face checks the range 0–255).
    Scope(Read<u8>),
}

/// The filter a source-specific request leaves the socket with, or the error it gets: a
/// source may be added to an INCLUDE filter or blocked in an EXCLUDE one, not mixed
/// (RFC 3678 §4.1.3's rules, `WSAEINVAL` where Linux says `EINVAL`).
fn source_change(
    current: Option<SourceFilter>,
    change: SourceChange,
    source: Ipv4Addr,
) -> Result<SourceFilter, WsaError> {
    let mode = current.as_ref().map(|f| f.mode);
    let mut f = current.unwrap_or_else(|| SourceFilter::include([]));
    let (want, add) = match change {
        SourceChange::Add => (FilterMode::Include, true),
        SourceChange::Drop => (FilterMode::Include, false),
        SourceChange::Block => (FilterMode::Exclude, true),
        SourceChange::Unblock => (FilterMode::Exclude, false),
    };
    match (mode, want) {
        (None, FilterMode::Include) if add => {}
        (Some(m), w) if m == w => {}
        _ => return Err(WsaError::WSAEINVAL),
    }
    let changed = if add {
        f.sources.insert(source)
    } else {
        f.sources.remove(&source)
    };
    if !changed {
        return Err(if add {
            WsaError::WSAEADDRINUSE
        } else {
            WsaError::WSAEADDRNOTAVAIL
        });
    }
    Ok(f)
}

impl Engine {
    /// `getsockopt` of an option the engine keeps (CHECKLIST §1.13.2). `consume`: the caller's
    /// buffer takes the value, so `SO_ERROR` is cleared as it is read. `TCP_NODELAY` on another
    /// transport than TCP, and the `IP_MULTICAST_*` options on another than UDP, are
    /// `WSAENOPROTOOPT`; so is `SO_GROUP_PRIORITY` outside a group (D-26).
    pub(crate) fn sockopt_get(
        &mut self,
        id: SocketId,
        opt: SockOpt,
        consume: bool,
    ) -> Result<OptValue, WsaError> {
        let now = self.now;
        let sock = self.sock(id)?;
        let o = sock.opts;
        let proto = sock.proto;
        let only = |t: Proto, v: OptValue| {
            if proto == t {
                Ok(v)
            } else {
                Err(WsaError::WSAENOPROTOOPT)
            }
        };
        Ok(match opt {
            SockOpt::AcceptConn => OptValue::Bool(matches!(sock.state, State::Listening(_))),
            SockOpt::Broadcast => OptValue::Bool(o.broadcast),
            SockOpt::Debug => OptValue::Bool(o.debug),
            SockOpt::DontLinger => OptValue::Bool(!o.linger_on),
            SockOpt::DontRoute => OptValue::Bool(o.dontroute),
            SockOpt::Error => {
                let e = sock.so_error;
                if consume {
                    sock.so_error = 0;
                }
                OptValue::Int(e)
            }
            // Only while connected (CHECKLIST 579).
            SockOpt::ConnectTime => OptValue::ConnectedFor(match sock.connected_at {
                Some(t) if matches!(sock.state, State::Connected(_)) => {
                    Some(now.saturating_duration_since(t))
                }
                _ => None,
            }),
            SockOpt::KeepAlive => OptValue::Bool(o.keepalive),
            SockOpt::Linger => OptValue::Linger {
                on: o.linger_on,
                secs: o.linger_secs,
            },
            SockOpt::OobInline => OptValue::Bool(o.oobinline),
            SockOpt::RcvBuf => OptValue::Bytes(o.rcvbuf),
            SockOpt::SndBuf => OptValue::Bytes(o.sndbuf),
            SockOpt::ReuseAddr => OptValue::Bool(o.reuse_addr),
            SockOpt::Type => OptValue::Transport(proto),
            SockOpt::MaxMsgSize => OptValue::MaxMessage(match proto {
                Proto::Udp => Some(MAX_UDP_PAYLOAD),
                Proto::RawIcmp => Some(MAX_RAW_PAYLOAD),
                Proto::Rmp => Some(ws2_multipoint::rmp::wire::MAX_PAYLOAD),
                // Meaningless for streams (CHECKLIST §1.13.2).
                Proto::Tcp => None,
            }),
            SockOpt::GroupId => OptValue::Group(self.groups.group_of(id).map_or(0, |g| g.get())),
            SockOpt::GroupPriority => OptValue::Int(self.groups.priority(id).map_err(group_error)?),
            SockOpt::RcvTimeo => OptValue::Timeout(Duration::from_millis(o.rcvtimeo_ms.into())),
            SockOpt::SndTimeo => OptValue::Timeout(Duration::from_millis(o.sndtimeo_ms.into())),
            SockOpt::NoDelay => only(Proto::Tcp, OptValue::Bool(o.nodelay))?,
            SockOpt::MulticastIf => only(Proto::Udp, OptValue::Interface(sock.mcast.interface))?,
            SockOpt::MulticastTtl => only(Proto::Udp, OptValue::Ttl(sock.mcast.scope))?,
            SockOpt::MulticastLoop => only(Proto::Udp, OptValue::Bool(sock.mcast.loopback))?,
        })
    }

    /// `setsockopt` of an option the engine keeps (CHECKLIST §1.13.2, §1.10.6). `transport`: the
    /// transport the option exists for (`TCP_NODELAY`: TCP; the IP multicast options: UDP), on
    /// any other `WSAENOPROTOOPT` whatever `optval` holds; then the face's reading of `optval`;
    /// then the option's own rules.
    pub(crate) fn sockopt_set(
        &mut self,
        id: SocketId,
        transport: Option<Proto>,
        opt: Read<SetOpt>,
    ) -> Result<(), WsaError> {
        let sock = self.sock(id)?;
        if transport.is_some_and(|t| t != sock.proto) {
            return Err(WsaError::WSAENOPROTOOPT);
        }
        let has_smoltcp_socket = !matches!(sock.state, State::Idle);
        let o = &mut sock.opts;
        match opt? {
            SetOpt::Broadcast(on) => o.broadcast = on,
            SetOpt::Debug(on) => o.debug = on,
            SetOpt::DontRoute(on) => o.dontroute = on,
            SetOpt::OobInline(on) => o.oobinline = on,
            SetOpt::ReuseAddr(on) => o.reuse_addr = on,
            SetOpt::KeepAlive(on) => {
                // Only a connection that was reset fails; a refused connect leaves an unconnected
                // socket whose options can be set like any other's (CHECKLIST 477, 116).
                if sock.reset && matches!(sock.state, State::Connected(_)) {
                    return Err(WsaError::WSAENOTCONN);
                }
                if self.tcp_timed_out(id) {
                    return Err(WsaError::WSAENETRESET);
                }
                self.sock(id)?.opts.keepalive = on;
                self.refresh_tcp_opts(id);
            }
            // FALSE lingers again with the earlier timeout.
            SetOpt::DontLinger(on) => o.linger_on = !on,
            SetOpt::Linger { on, secs } => {
                o.linger_on = on;
                o.linger_secs = secs;
            }
            // smoltcp's buffers are fixed once the socket exists (Appendix C): the request then
            // succeeds with what is already provided, which getsockopt reports.
            SetOpt::RcvBuf(size) => {
                if !has_smoltcp_socket {
                    o.rcvbuf = size.clamp(BUFFER_RANGE.0, BUFFER_RANGE.1);
                }
            }
            SetOpt::SndBuf(size) => {
                if !has_smoltcp_socket {
                    o.sndbuf = size.clamp(BUFFER_RANGE.0, BUFFER_RANGE.1);
                }
            }
            SetOpt::RcvTimeo(t) => o.rcvtimeo_ms = millis(t),
            SetOpt::SndTimeo(t) => o.sndtimeo_ms = millis(t),
            SetOpt::NoDelay(on) => {
                o.nodelay = on;
                self.refresh_tcp_opts(id);
            }
            // Non-group sockets: WSAENOPROTOOPT; negative values: WSAEINVAL (D-26).
            SetOpt::GroupPriority(p) => {
                self.groups.set_priority(id, p).map_err(group_error)?;
                // The shaper serves group members in priority order.
                self.qos_refresh_flow(id);
            }
            SetOpt::MulticastIf(ip) => {
                self.mcast_check_interface(ip)?;
                self.sock(id)?.mcast.interface = ip;
            }
            SetOpt::MulticastTtl(ttl) => sock.mcast.scope = ttl,
            SetOpt::MulticastLoop(on) => sock.mcast.loopback = on,
            SetOpt::Membership {
                group,
                interface,
                join,
            } => {
                self.mcast_check_interface(interface)?;
                let member = self.mcast_filter(id, group).is_some();
                if join {
                    if member {
                        return Err(WsaError::WSAEADDRINUSE);
                    }
                    self.mcast_set_filter(id, group, SourceFilter::any_source())?;
                } else {
                    if !member {
                        return Err(WsaError::WSAEADDRNOTAVAIL);
                    }
                    self.mcast_set_filter(id, group, SourceFilter::include([]))?;
                }
            }
            SetOpt::SourceMembership {
                group,
                source,
                interface,
                change,
            } => {
                self.mcast_check_interface(interface)?;
                let filter = source_change(self.mcast_filter(id, group), change, source)?;
                self.mcast_set_filter(id, group, filter)?;
            }
        }
        Ok(())
    }

    /// `ioctlsocket(FIONBIO)`: blocking again needs the `WSAAsyncSelect`/`WSAEventSelect`
    /// registration cancelled first (`WSAEINVAL`).
    pub(crate) fn fionbio(&mut self, id: SocketId, nonblocking: bool) -> Result<(), WsaError> {
        let sock = self.sock(id)?;
        if !nonblocking && sock.select.is_some() {
            return Err(WsaError::WSAEINVAL);
        }
        sock.nonblocking = nonblocking;
        Ok(())
    }

    /// `ioctlsocket(FIONREAD)`: a stream's readable bytes (0 unless connected), a message
    /// socket's first datagram size.
    pub(crate) fn fionread(&mut self, id: SocketId) -> Result<usize, WsaError> {
        let sock = self.sock(id)?;
        Ok(match (sock.proto, &sock.state) {
            (Proto::Tcp, State::Connected(h)) => {
                let h = *h;
                self.tcp_readable_bytes(h)
            }
            (Proto::Tcp, _) => 0,
            _ => self.dgram_first_len(id)?,
        })
    }

    /// `ioctlsocket(SIOCATMARK)` (D-21, CHECKLIST 483): TRUE unless urgent data is pending;
    /// always TRUE on message sockets.
    pub(crate) fn siocatmark(&mut self, id: SocketId) -> Result<bool, WsaError> {
        match self.sock(id)?.proto {
            Proto::Tcp => self.tcp_at_mark(id),
            _ => Ok(true),
        }
    }

    /// `SIO_SET_QOS` / `SIO_SET_GROUP_QOS` (§1.8.3): `WSAENOPROTOOPT` when the stack runs
    /// without QoS, then the face's reading of the `QOS`, then [`Engine::qos_set`] or
    /// [`Engine::group_qos_set`].
    pub(crate) fn sio_set_qos(
        &mut self,
        id: SocketId,
        of: QosOf,
        qos: Read<Qos>,
    ) -> Result<(), WsaError> {
        if !self.config.qos_support {
            return Err(WsaError::WSAENOPROTOOPT);
        }
        let qos = qos?;
        // Setting a QoS reshapes flows: the driver takes a pass.
        self.wake = true;
        match of {
            QosOf::Socket => self.qos_set(id, qos),
            QosOf::Group => self.group_qos_set(id, qos),
        }
    }

    /// `SIO_GET_QOS` / `SIO_GET_GROUP_QOS` (§1.8.3): `WSAENOPROTOOPT` when the stack runs without
    /// QoS. Reading re-enables `FD_QOS` / `FD_GROUP_QOS` (§1.6.5) when `rearm` (the descriptor
    /// is still the application's), even when it fails.
    pub(crate) fn sio_get_qos(
        &mut self,
        id: SocketId,
        of: QosOf,
        rearm: bool,
    ) -> Result<Qos, WsaError> {
        if !self.config.qos_support {
            return Err(WsaError::WSAENOPROTOOPT);
        }
        let (r, event) = match of {
            QosOf::Socket => (self.qos_get(id), FD_QOS),
            QosOf::Group => (self.group_qos_get(id), FD_GROUP_QOS),
        };
        if rearm {
            self.fd_arm(id, event);
        }
        r
    }

    /// The flowspecs of `WSAConnect` and `WSAJoinLeaf` (§1.3): the socket's, then the group's
    /// when the socket created its group (ignored otherwise).
    pub(crate) fn qos_request(
        &mut self,
        id: SocketId,
        qos: QosRequest<'_>,
    ) -> Result<(), WsaError> {
        if let Some(q) = qos.socket {
            self.wake = true;
            self.qos_set(id, q.clone())?;
        }
        if let Some(q) = qos.group {
            if self.groups.is_creator(id) {
                self.wake = true;
                self.group_qos_set(id, q.clone())?;
            }
        }
        Ok(())
    }

    /// `WSAConnect` before its connect (§1.3): TCP carries no connect data (`caller_data`:
    /// `WSAEPROTONOSUPPORT`, CHECKLIST 126; connectionless sockets ignore it, 125); the
    /// flowspecs apply ([`Engine::qos_request`]); then, for a TCP socket given flowspecs and a
    /// callee `remote`, the local address they are offered under (the socket is bound first if
    /// it has no name).
    pub(crate) fn wsaconnect_begin(
        &mut self,
        id: SocketId,
        caller_data: bool,
        qos: QosRequest<'_>,
        remote: Option<SocketAddrV4>,
    ) -> Result<ConnectBegun, WsaError> {
        let connectionless = self.sock(id)?.proto != Proto::Tcp;
        if !connectionless && caller_data {
            return Err(WsaError::WSAEPROTONOSUPPORT);
        }
        self.qos_request(id, qos)?;
        let offer_from = match remote {
            Some(remote) if !connectionless && qos.any() => {
                self.wake = true;
                self.offer_address(id, remote)
            }
            _ => None,
        };
        Ok(ConnectBegun {
            connectionless,
            offer_from,
        })
    }

    /// The local address a TCP socket will connect to `remote` from, binding it first if needed.
    fn offer_address(&mut self, id: SocketId, remote: SocketAddrV4) -> Option<SocketAddrV4> {
        if self.sock(id).ok()?.bound.is_none() {
            let any = SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0);
            self.bind_name(id, any).ok()?;
        }
        let port = self.sock(id).ok()?.bound?.port();
        Some(SocketAddrV4::new(self.source_for(*remote.ip()), port))
    }

    /// `WSAJoinLeaf` (CHECKLIST §1.10.3) up to the wait: the socket must be multipoint
    /// (`WSAEOPNOTSUPP`, D-7). An RMP socket goes on in the face. On the UDP entry (§1.10.6): no
    /// connect data (`WSAEPROTONOSUPPORT`), a multicast group (`WSAEADDRNOTAVAIL`), the
    /// flowspecs as in `WSAConnect`, then [`Engine::mcast_join`]. Other transports:
    /// `WSAEOPNOTSUPP`.
    pub(crate) fn join_leaf_begin(
        &mut self,
        id: SocketId,
        join: JoinLeaf<'_>,
    ) -> Result<JoinBegun, WsaError> {
        let sock = self.sock(id)?;
        let (proto, nonblocking) = (sock.proto, sock.nonblocking);
        if sock.rmp.is_none() && !sock.mcast.multipoint {
            return Err(WsaError::WSAEOPNOTSUPP);
        }
        if proto == Proto::Rmp {
            return Ok(JoinBegun::Rmp { nonblocking });
        }
        if proto != Proto::Udp {
            return Err(WsaError::WSAEOPNOTSUPP);
        }
        if join.caller_data {
            return Err(WsaError::WSAEPROTONOSUPPORT);
        }
        if !join.to.ip().is_multicast() {
            return Err(WsaError::WSAEADDRNOTAVAIL);
        }
        self.qos_request(id, join.qos)?;
        self.wake = true;
        Ok(JoinBegun::Multicast {
            nonblocking,
            joined: self.mcast_join(id, join.to, join.role),
        })
    }

    /// `SIO_MULTIPOINT_LOOPBACK` and `SIO_MULTICAST_SCOPE` (§1.10.5). On an RMP socket the
    /// loopback says whether it reads its own session sends (docs/rmp.md §6); otherwise both
    /// need a multipoint socket (`WSAEINVAL`, CHECKLIST 406), then the face's reading of the
    /// input (`WSAEFAULT`; a scope outside 0–255 `WSAEINVAL`, 410).
    pub(crate) fn sio_multipoint(
        &mut self,
        id: SocketId,
        op: MultipointIoctl,
    ) -> Result<(), WsaError> {
        let sock = self.sock(id)?;
        if let (Some(r), MultipointIoctl::Loopback(on)) = (sock.rmp.as_deref_mut(), op) {
            r.loopback = on?;
            return Ok(());
        }
        if !sock.mcast.multipoint {
            return Err(WsaError::WSAEINVAL);
        }
        match op {
            MultipointIoctl::Loopback(on) => sock.mcast.loopback = on?,
            MultipointIoctl::Scope(ttl) => sock.mcast.scope = ttl?,
        }
        Ok(())
    }
}

/// A timeout as the engine keeps it: whole milliseconds.
fn millis(t: Duration) -> u32 {
    u32::try_from(t.as_millis()).unwrap_or(u32::MAX)
}
