//! `getsockopt`, `setsockopt` and `ioctlsocket` (CHECKLIST §1.13, §1.14.1).
//!
//! Option values travel as byte buffers (`char *optval` and its length), so the spec's size
//! rules keep their `WSAEFAULT`. Booleans are `int`: nonzero enables.

use std::time::Duration;

use super::multicast::{
    IP_ADD_MEMBERSHIP, IP_ADD_SOURCE_MEMBERSHIP, IP_BLOCK_SOURCE, IP_DROP_MEMBERSHIP,
    IP_DROP_SOURCE_MEMBERSHIP, IP_MULTICAST_IF, IP_MULTICAST_LOOP, IP_MULTICAST_TTL,
    IP_UNBLOCK_SOURCE,
};
use super::{record, types::*, Winsock};
use crate::engine::api::options::{OptValue, Read, SetOpt, SockOpt, SourceChange};
use crate::engine::{Proto, SocketId};
use crate::error::WsaError;

/// Every value the engine keeps is 4 bytes long: an int (BOOLs too), or `LINGER`'s two
/// `u_short`s.
const ENGINE_VALUE_LEN: usize = 4;

fn read_int(optval: Option<&[u8]>, optlen: i32) -> Result<i32, WsaError> {
    let v = optval.ok_or(WsaError::WSAEFAULT)?;
    if optlen < 4 || v.len() < 4 {
        return Err(WsaError::WSAEFAULT);
    }
    Ok(i32::from_ne_bytes([v[0], v[1], v[2], v[3]]))
}

impl Winsock {
    /// `getsockopt`: never-set options return their defaults; `*optlen` becomes the size
    /// written. `SO_RCVTIMEO`/`SO_SNDTIMEO` exist from version 2.2 on (milliseconds, as in
    /// Windows); the 2.0 spec lists them as unsupported, which sessions below 2.2 keep.
    pub fn getsockopt(
        &self,
        s: SOCKET,
        level: i32,
        optname: i32,
        optval: Option<&mut [u8]>,
        optlen: &mut i32,
    ) -> Result<(), WsaError> {
        let id = record(self.check(s))?;
        let timeouts = self.session().version >= (2, 2);
        self.so_debug(
            id,
            format_args!("getsockopt({s}, {level:#x}, {optname:#x})"),
        );
        let bytes: Vec<u8> = match (level, optname) {
            // The catalog entry the socket was created from (CHECKLIST 446, 479), ANSI or
            // wide layout; get-only.
            (SOL_SOCKET, SO_PROTOCOL_INFOA | SO_PROTOCOL_INFOW) => {
                record(self.entry_of(id))?.to_bytes(optname == SO_PROTOCOL_INFOW)
            }
            (SOL_SOCKET, PVD_CONFIG) => super::sharing::pvd_config(),
            _ => {
                let opt = record(get_name(level, optname, timeouts))?;
                // SO_ERROR is read and cleared when the caller's buffer takes it.
                let fits = optval.as_ref().is_some_and(|out| {
                    i64::from(*optlen) >= ENGINE_VALUE_LEN as i64 && out.len() >= ENGINE_VALUE_LEN
                });
                let value = self.stack.with(|core| core.sockopt_get(id, opt, fits));
                encode(record(value)?)
            }
        };
        let Some(out) = optval else {
            return record(Err(WsaError::WSAEFAULT));
        };
        if (*optlen as i64) < bytes.len() as i64 || out.len() < bytes.len() {
            return record(Err(WsaError::WSAEFAULT));
        }
        out[..bytes.len()].copy_from_slice(&bytes);
        *optlen = bytes.len() as i32;
        Ok(())
    }

    /// `setsockopt`: `optlen` too small is `WSAEFAULT`, bad contents `WSAEINVAL`, get-only and
    /// unknown options `WSAENOPROTOOPT`.
    pub fn setsockopt(
        &self,
        s: SOCKET,
        level: i32,
        optname: i32,
        optval: Option<&[u8]>,
        optlen: i32,
    ) -> Result<(), WsaError> {
        let id = record(self.check(s))?;
        self.so_debug(
            id,
            format_args!("setsockopt({s}, {level:#x}, {optname:#x})"),
        );
        if level == SOL_SOCKET && optname == SO_UPDATE_ACCEPT_CONTEXT {
            return record(self.update_accept_context(id, optval, optlen));
        }
        if level == SOL_SOCKET && optname == PVD_CONFIG {
            return record(super::sharing::check_pvd_config(optval, optlen));
        }
        let timeouts = self.session().version >= (2, 2);
        let (transport, opt) = record(set_value(level, optname, optval, optlen, timeouts))?;
        record(self.stack.with(|core| core.sockopt_set(id, transport, opt)))
    }

    /// `SO_DEBUG` (CHECKLIST §1.13.2): on a socket with the option set, the option and
    /// control calls log what they are asked through the `log` facade, at debug level under
    /// the target `ws2::so_debug` (the application picks the logger).
    pub(super) fn so_debug(&self, id: SocketId, what: std::fmt::Arguments<'_>) {
        if log::log_enabled!(target: "ws2::so_debug", log::Level::Debug)
            && self
                .stack
                .with_quiet(|core| core.sockopt_get(id, SockOpt::Debug, false))
                == Ok(OptValue::Bool(true))
        {
            log::debug!(target: "ws2::so_debug", "socket {id}: {what}");
        }
    }

    /// `ioctlsocket`: `FIONBIO`, `FIONREAD` (a stream's readable bytes, a datagram socket's first
    /// datagram size) and `SIOCATMARK` (TRUE: no urgent data is pending). Others: `WSAEINVAL`.
    pub fn ioctlsocket(&self, s: SOCKET, cmd: i32, argp: Option<&mut u32>) -> Result<(), WsaError> {
        let id = record(self.check(s))?;
        let Some(arg) = argp else {
            return record(Err(WsaError::WSAEFAULT));
        };
        record(match cmd {
            // Blocking again needs the WSAAsyncSelect/WSAEventSelect cancelled first.
            FIONBIO => self.stack.with(|core| core.fionbio(id, *arg != 0)),
            FIONREAD => self
                .stack
                .with(|core| core.fionread(id))
                .map(|n| *arg = n as u32),
            // D-21: TRUE unless urgent data is pending (483).
            SIOCATMARK => self
                .stack
                .with(|core| core.siocatmark(id))
                .map(|at_mark| *arg = u32::from(at_mark)),
            _ => Err(WsaError::WSAEINVAL),
        })
    }
}

/// The option `getsockopt` asks the engine for: unknown or set-only options are
/// `WSAENOPROTOOPT` at the levels the provider knows, `WSAEINVAL` at others.
fn get_name(level: i32, optname: i32, timeouts: bool) -> Result<SockOpt, WsaError> {
    Ok(match (level, optname) {
        (SOL_SOCKET, SO_ACCEPTCONN) => SockOpt::AcceptConn,
        (SOL_SOCKET, SO_BROADCAST) => SockOpt::Broadcast,
        (SOL_SOCKET, SO_DEBUG) => SockOpt::Debug,
        (SOL_SOCKET, SO_DONTLINGER) => SockOpt::DontLinger,
        (SOL_SOCKET, SO_DONTROUTE) => SockOpt::DontRoute,
        (SOL_SOCKET, SO_ERROR) => SockOpt::Error,
        (SOL_SOCKET, SO_CONNECT_TIME) => SockOpt::ConnectTime,
        (SOL_SOCKET, SO_KEEPALIVE) => SockOpt::KeepAlive,
        (SOL_SOCKET, SO_LINGER) => SockOpt::Linger,
        (SOL_SOCKET, SO_OOBINLINE) => SockOpt::OobInline,
        (SOL_SOCKET, SO_RCVBUF) => SockOpt::RcvBuf,
        (SOL_SOCKET, SO_SNDBUF) => SockOpt::SndBuf,
        (SOL_SOCKET, SO_REUSEADDR) => SockOpt::ReuseAddr,
        (SOL_SOCKET, SO_TYPE) => SockOpt::Type,
        (SOL_SOCKET, SO_MAX_MSG_SIZE) => SockOpt::MaxMsgSize,
        (SOL_SOCKET, SO_GROUP_ID) => SockOpt::GroupId,
        (SOL_SOCKET, SO_GROUP_PRIORITY) => SockOpt::GroupPriority,
        (SOL_SOCKET, SO_RCVTIMEO) if timeouts => SockOpt::RcvTimeo,
        (SOL_SOCKET, SO_SNDTIMEO) if timeouts => SockOpt::SndTimeo,
        // TCP only: the engine answers WSAENOPROTOOPT on other sockets.
        (IPPROTO_TCP, TCP_NODELAY) => SockOpt::NoDelay,
        // UDP only, likewise; membership options cannot be read.
        (IPPROTO_IP, IP_MULTICAST_IF) => SockOpt::MulticastIf,
        (IPPROTO_IP, IP_MULTICAST_TTL) => SockOpt::MulticastTtl,
        (IPPROTO_IP, IP_MULTICAST_LOOP) => SockOpt::MulticastLoop,
        (SOL_SOCKET | IPPROTO_TCP | IPPROTO_IP, _) => return Err(WsaError::WSAENOPROTOOPT),
        _ => return Err(WsaError::WSAEINVAL),
    })
}

/// A value from the engine as `getsockopt` writes it ([`ENGINE_VALUE_LEN`] bytes).
fn encode(value: OptValue) -> Vec<u8> {
    let int = match value {
        OptValue::Linger { on, secs } => {
            return [u16::from(on).to_ne_bytes(), secs.to_ne_bytes()].concat();
        }
        OptValue::Bool(b) => i32::from(b),
        OptValue::Int(i) => i,
        OptValue::Bytes(n) => n as i32,
        // Seconds connected, 0xFFFFFFFF when not connected (CHECKLIST 579).
        OptValue::ConnectedFor(t) => t.map_or(-1, |t| t.as_secs().min(0x7fff_ffff) as i32),
        OptValue::Transport(proto) => match proto {
            Proto::Tcp => SOCK_STREAM,
            Proto::Udp => SOCK_DGRAM,
            Proto::RawIcmp => SOCK_RAW,
            Proto::Rmp => SOCK_RDM,
        },
        // Meaningless for streams (CHECKLIST §1.13.2); report "no limit".
        OptValue::MaxMessage(n) => n.map_or(i32::MAX, |n| n as i32),
        // GROUP is an unsigned int; its bits travel as the int's (0 for non-group sockets).
        OptValue::Group(g) => g as i32,
        OptValue::Timeout(t) => t.as_millis() as i32,
        OptValue::Ttl(ttl) => i32::from(ttl),
        // An in_addr: the address bytes in network order.
        OptValue::Interface(ip) => i32::from_ne_bytes(ip.octets()),
    };
    int.to_ne_bytes().to_vec()
}

/// What `setsockopt` asks the engine to set: the transport the option exists for (checked by
/// the engine before the value) and the value read from `optval`, or the error reading it.
/// Unknown levels are `WSAEINVAL`; get-only and unknown options `WSAENOPROTOOPT`.
fn set_value(
    level: i32,
    optname: i32,
    optval: Option<&[u8]>,
    optlen: i32,
    timeouts: bool,
) -> Result<(Option<Proto>, Read<SetOpt>), WsaError> {
    if !matches!(level, SOL_SOCKET | IPPROTO_TCP | IPPROTO_IP) {
        return Err(WsaError::WSAEINVAL);
    }
    let int = || read_int(optval, optlen);
    let flag = || int().map(|v| v != 0);
    let opt = match (level, optname) {
        (SOL_SOCKET, SO_BROADCAST) => flag().map(SetOpt::Broadcast),
        (SOL_SOCKET, SO_DEBUG) => flag().map(SetOpt::Debug),
        (SOL_SOCKET, SO_DONTROUTE) => flag().map(SetOpt::DontRoute),
        (SOL_SOCKET, SO_OOBINLINE) => flag().map(SetOpt::OobInline),
        (SOL_SOCKET, SO_REUSEADDR) => flag().map(SetOpt::ReuseAddr),
        (SOL_SOCKET, SO_KEEPALIVE) => flag().map(SetOpt::KeepAlive),
        // TRUE ≡ SO_LINGER with l_onoff = 0; FALSE lingers again with the earlier timeout.
        (SOL_SOCKET, SO_DONTLINGER) => flag().map(SetOpt::DontLinger),
        (SOL_SOCKET, SO_LINGER) => linger(optval, optlen),
        (SOL_SOCKET, SO_RCVBUF | SO_SNDBUF) => int().and_then(|v| {
            let size = usize::try_from(v).map_err(|_| WsaError::WSAEINVAL)?;
            Ok(if optname == SO_RCVBUF {
                SetOpt::RcvBuf(size)
            } else {
                SetOpt::SndBuf(size)
            })
        }),
        (SOL_SOCKET, SO_RCVTIMEO | SO_SNDTIMEO) if timeouts => int().map(|v| {
            let t = Duration::from_millis(v.max(0) as u64);
            if optname == SO_RCVTIMEO {
                SetOpt::RcvTimeo(t)
            } else {
                SetOpt::SndTimeo(t)
            }
        }),
        (IPPROTO_TCP, TCP_NODELAY) => return Ok((Some(Proto::Tcp), flag().map(SetOpt::NoDelay))),
        // Non-group sockets: WSAENOPROTOOPT; negative values: WSAEINVAL (D-26).
        (SOL_SOCKET, SO_GROUP_PRIORITY) => int().map(SetOpt::GroupPriority),
        (IPPROTO_IP, _) => {
            let opt = multicast_value(optname, optval, optlen)?;
            return Ok((Some(Proto::Udp), opt));
        }
        // Get-only (SO_GROUP_ID: D-26) and unknown options.
        _ => return Err(WsaError::WSAENOPROTOOPT),
    };
    Ok((None, opt))
}

/// `SO_LINGER`'s `LINGER`: `l_onoff` and `l_linger`, two `u_short`s.
fn linger(optval: Option<&[u8]>, optlen: i32) -> Read<SetOpt> {
    let v = optval.ok_or(WsaError::WSAEFAULT)?;
    if optlen < 4 || v.len() < 4 {
        return Err(WsaError::WSAEFAULT);
    }
    Ok(SetOpt::Linger {
        on: u16::from_ne_bytes([v[0], v[1]]) != 0,
        secs: u16::from_ne_bytes([v[2], v[3]]),
    })
}

/// The IP multicast options `setsockopt` knows (`IP_MULTICAST_*`, the Deering membership
/// options with source-specific membership): the value read from `optval` (`WSAEFAULT` when
/// short; `WSAEINVAL` for a TTL outside 0–255 or a group that is not multicast). Other
/// `IPPROTO_IP` options: `WSAENOPROTOOPT`.
fn multicast_value(
    optname: i32,
    optval: Option<&[u8]>,
    optlen: i32,
) -> Result<Read<SetOpt>, WsaError> {
    use super::multicast::{addr_at, int_of, opt_bytes, scope_of};
    let group_of = |v: &[u8]| {
        let group = addr_at(v, 0);
        if group.is_multicast() {
            Ok(group)
        } else {
            Err(WsaError::WSAEINVAL)
        }
    };
    Ok(match optname {
        IP_MULTICAST_IF => opt_bytes(optval, optlen, 4).map(|v| SetOpt::MulticastIf(addr_at(v, 0))),
        IP_MULTICAST_TTL => opt_bytes(optval, optlen, 4)
            .and_then(|v| scope_of(int_of(v)))
            .map(SetOpt::MulticastTtl),
        IP_MULTICAST_LOOP => {
            opt_bytes(optval, optlen, 4).map(|v| SetOpt::MulticastLoop(int_of(v) != 0))
        }
        IP_ADD_MEMBERSHIP | IP_DROP_MEMBERSHIP => opt_bytes(optval, optlen, 8).and_then(|v| {
            Ok(SetOpt::Membership {
                group: group_of(v)?,
                interface: addr_at(v, 4),
                join: optname == IP_ADD_MEMBERSHIP,
            })
        }),
        IP_ADD_SOURCE_MEMBERSHIP..=IP_UNBLOCK_SOURCE => {
            let change = match optname {
                IP_ADD_SOURCE_MEMBERSHIP => SourceChange::Add,
                IP_DROP_SOURCE_MEMBERSHIP => SourceChange::Drop,
                IP_BLOCK_SOURCE => SourceChange::Block,
                _ => SourceChange::Unblock,
            };
            opt_bytes(optval, optlen, 12).and_then(|v| {
                Ok(SetOpt::SourceMembership {
                    group: group_of(v)?,
                    source: addr_at(v, 4),
                    interface: addr_at(v, 8),
                    change,
                })
            })
        }
        _ => return Err(WsaError::WSAENOPROTOOPT),
    })
}
