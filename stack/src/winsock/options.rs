//! `getsockopt`, `setsockopt` and `ioctlsocket` (CHECKLIST §1.13, §1.14.1).
//!
//! Option values travel as byte buffers (`char *optval` and its length), so the spec's size
//! rules keep their `WSAEFAULT`. Booleans are `int`: nonzero enables.

use super::{record, types::*, Winsock};
use crate::engine::{Core, Proto, SockState, SocketId};
use crate::error::WsaError;

/// Smallest and largest `SO_RCVBUF`/`SO_SNDBUF` the provider grants.
const BUFFER_RANGE: (usize, usize) = (4 * 1024, 16 * 1024 * 1024);

enum Value {
    Int(i32),
    Linger(LINGER),
}

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
            _ => match record(
                self.stack
                    .with(|core| get(core, id, level, optname, timeouts)),
            )? {
                Value::Int(i) => i.to_ne_bytes().to_vec(),
                Value::Linger(l) => [l.l_onoff.to_ne_bytes(), l.l_linger.to_ne_bytes()].concat(),
            },
        };
        let Some(out) = optval else {
            return record(Err(WsaError::WSAEFAULT));
        };
        if (*optlen as i64) < bytes.len() as i64 || out.len() < bytes.len() {
            return record(Err(WsaError::WSAEFAULT));
        }
        if optname == SO_ERROR && level == SOL_SOCKET {
            // Get and clear.
            self.stack
                .with(|core| core.sock(id).map(|s| s.so_error = 0))
                .ok();
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
        record(
            self.stack
                .with(|core| set(core, id, level, optname, optval, optlen, timeouts)),
        )
    }

    /// `SO_DEBUG` (CHECKLIST §1.13.2): on a socket with the option set, the option and
    /// control calls log what they are asked through the `log` facade, at debug level under
    /// the target `ws2::so_debug` (the application picks the logger).
    pub(super) fn so_debug(&self, id: SocketId, what: std::fmt::Arguments<'_>) {
        if log::log_enabled!(target: "ws2::so_debug", log::Level::Debug)
            && self
                .stack
                .with_quiet(|core| core.sock(id).map(|s| s.opts.debug))
                .unwrap_or(false)
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
        record(self.stack.with(|core| {
            match cmd {
                FIONBIO => {
                    let sock = core.sock(id)?;
                    // Blocking again needs the WSAAsyncSelect/WSAEventSelect cancelled first.
                    if *arg == 0 && sock.select.is_some() {
                        return Err(WsaError::WSAEINVAL);
                    }
                    sock.nonblocking = *arg != 0;
                }
                FIONREAD => {
                    let sock = core.sock(id)?;
                    *arg = match (sock.proto, &sock.state) {
                        (Proto::Tcp, SockState::Connected(h)) => {
                            let h = *h;
                            core.tcp_readable_bytes(h) as u32
                        }
                        (Proto::Tcp, _) => 0,
                        _ => core.dgram_first_len(id)? as u32,
                    };
                }
                // D-21: TRUE unless urgent data is pending (483).
                SIOCATMARK => {
                    *arg = match core.sock(id)?.proto {
                        Proto::Tcp => u32::from(core.tcp_at_mark(id)?),
                        _ => 1,
                    }
                }
                _ => return Err(WsaError::WSAEINVAL),
            }
            Ok(())
        }))
    }
}

fn get(
    core: &mut Core,
    id: SocketId,
    level: i32,
    optname: i32,
    timeouts: bool,
) -> Result<Value, WsaError> {
    let sock = core.sock(id)?;
    let o = sock.opts;
    let b = |x: bool| Ok(Value::Int(i32::from(x)));
    match (level, optname) {
        (SOL_SOCKET, SO_ACCEPTCONN) => b(matches!(sock.state, SockState::Listening(_))),
        (SOL_SOCKET, SO_BROADCAST) => b(o.broadcast),
        (SOL_SOCKET, SO_DEBUG) => b(o.debug),
        (SOL_SOCKET, SO_DONTLINGER) => b(!o.linger_on),
        (SOL_SOCKET, SO_DONTROUTE) => b(o.dontroute),
        (SOL_SOCKET, SO_ERROR) => Ok(Value::Int(sock.so_error)),
        // Seconds connected, 0xFFFFFFFF when not connected (CHECKLIST 579).
        (SOL_SOCKET, SO_CONNECT_TIME) => Ok(Value::Int(match sock.connected_at {
            Some(t) if matches!(sock.state, SockState::Connected(_)) => {
                core.now
                    .saturating_duration_since(t)
                    .as_secs()
                    .min(0x7fff_ffff) as i32
            }
            _ => -1,
        })),
        (SOL_SOCKET, SO_KEEPALIVE) => b(o.keepalive),
        (SOL_SOCKET, SO_LINGER) => Ok(Value::Linger(LINGER {
            l_onoff: u16::from(o.linger_on),
            l_linger: o.linger_secs,
        })),
        (SOL_SOCKET, SO_OOBINLINE) => b(o.oobinline),
        (SOL_SOCKET, SO_RCVBUF) => Ok(Value::Int(o.rcvbuf as i32)),
        (SOL_SOCKET, SO_SNDBUF) => Ok(Value::Int(o.sndbuf as i32)),
        (SOL_SOCKET, SO_REUSEADDR) => b(o.reuse_addr),
        (SOL_SOCKET, SO_TYPE) => Ok(Value::Int(match sock.proto {
            Proto::Tcp => SOCK_STREAM,
            Proto::Udp => SOCK_DGRAM,
            Proto::RawIcmp => SOCK_RAW,
            Proto::Rmp => SOCK_RDM,
        })),
        (SOL_SOCKET, SO_MAX_MSG_SIZE) => Ok(Value::Int(match sock.proto {
            Proto::Udp => crate::engine::MAX_UDP_PAYLOAD as i32,
            Proto::RawIcmp => crate::engine::MAX_RAW_PAYLOAD as i32,
            Proto::Rmp => ws2_multipoint::rmp::wire::MAX_PAYLOAD as i32,
            // Meaningless for streams (CHECKLIST §1.13.2); report "no limit".
            Proto::Tcp => i32::MAX,
        })),
        // GROUP is an unsigned int; its bits travel as the int's (0 for non-group sockets).
        (SOL_SOCKET, SO_GROUP_ID) => Ok(Value::Int(
            core.groups.group_of(id).map_or(0, |g| g.get() as i32),
        )),
        (SOL_SOCKET, SO_GROUP_PRIORITY) => core
            .groups
            .priority(id)
            .map(Value::Int)
            .map_err(crate::engine::group_error),
        (SOL_SOCKET, SO_RCVTIMEO) if timeouts => Ok(Value::Int(o.rcvtimeo_ms as i32)),
        (SOL_SOCKET, SO_SNDTIMEO) if timeouts => Ok(Value::Int(o.sndtimeo_ms as i32)),
        (IPPROTO_TCP, TCP_NODELAY) if sock.proto == Proto::Tcp => b(o.nodelay),
        (IPPROTO_IP, _) => super::multicast::get_option(core, id, optname)
            .unwrap_or(Err(WsaError::WSAENOPROTOOPT))
            .map(Value::Int),
        (SOL_SOCKET | IPPROTO_TCP, _) => Err(WsaError::WSAENOPROTOOPT),
        _ => Err(WsaError::WSAEINVAL),
    }
}

fn set(
    core: &mut Core,
    id: SocketId,
    level: i32,
    optname: i32,
    optval: Option<&[u8]>,
    optlen: i32,
    timeouts: bool,
) -> Result<(), WsaError> {
    if !matches!(level, SOL_SOCKET | IPPROTO_TCP | IPPROTO_IP) {
        return Err(WsaError::WSAEINVAL);
    }
    let proto = core.sock(id)?.proto;
    let has_smoltcp_socket = !matches!(core.sock(id)?.state, SockState::Idle);
    let flag = || read_int(optval, optlen).map(|v| v != 0);
    match (level, optname) {
        (SOL_SOCKET, SO_BROADCAST) => core.sock(id)?.opts.broadcast = flag()?,
        (SOL_SOCKET, SO_DEBUG) => core.sock(id)?.opts.debug = flag()?,
        (SOL_SOCKET, SO_DONTROUTE) => core.sock(id)?.opts.dontroute = flag()?,
        (SOL_SOCKET, SO_OOBINLINE) => core.sock(id)?.opts.oobinline = flag()?,
        (SOL_SOCKET, SO_REUSEADDR) => core.sock(id)?.opts.reuse_addr = flag()?,
        (SOL_SOCKET, SO_KEEPALIVE) => {
            let on = flag()?;
            let sock = core.sock(id)?;
            // Only a connection that was reset fails; a refused connect leaves an unconnected
            // socket whose options can be set like any other's (CHECKLIST 477, 116).
            if sock.reset && matches!(sock.state, SockState::Connected(_)) {
                return Err(WsaError::WSAENOTCONN);
            }
            if core.tcp_timed_out(id) {
                return Err(WsaError::WSAENETRESET);
            }
            let sock = core.sock(id)?;
            sock.opts.keepalive = on;
            core.refresh_tcp_opts(id);
        }
        (SOL_SOCKET, SO_DONTLINGER) => {
            // TRUE ≡ SO_LINGER with l_onoff = 0; FALSE lingers again with the earlier timeout.
            core.sock(id)?.opts.linger_on = !flag()?;
        }
        (SOL_SOCKET, SO_LINGER) => {
            let v = optval.ok_or(WsaError::WSAEFAULT)?;
            if optlen < 4 || v.len() < 4 {
                return Err(WsaError::WSAEFAULT);
            }
            let on = u16::from_ne_bytes([v[0], v[1]]);
            let secs = u16::from_ne_bytes([v[2], v[3]]);
            let o = &mut core.sock(id)?.opts;
            o.linger_on = on != 0;
            o.linger_secs = secs;
        }
        (SOL_SOCKET, SO_RCVBUF | SO_SNDBUF) => {
            let v = read_int(optval, optlen)?;
            if v < 0 {
                return Err(WsaError::WSAEINVAL);
            }
            // smoltcp's buffers are fixed once the socket exists (Appendix C): the request then
            // succeeds with what is already provided, which getsockopt reports.
            if !has_smoltcp_socket {
                let size = (v as usize).clamp(BUFFER_RANGE.0, BUFFER_RANGE.1);
                let o = &mut core.sock(id)?.opts;
                if optname == SO_RCVBUF {
                    o.rcvbuf = size;
                } else {
                    o.sndbuf = size;
                }
            }
        }
        (SOL_SOCKET, SO_RCVTIMEO | SO_SNDTIMEO) if timeouts => {
            let v = read_int(optval, optlen)?;
            let o = &mut core.sock(id)?.opts;
            let ms = v.max(0) as u32;
            if optname == SO_RCVTIMEO {
                o.rcvtimeo_ms = ms;
            } else {
                o.sndtimeo_ms = ms;
            }
        }
        (IPPROTO_TCP, TCP_NODELAY) if proto == Proto::Tcp => {
            core.sock(id)?.opts.nodelay = flag()?;
            core.refresh_tcp_opts(id);
        }
        // Get-only (D-26), like the other options that cannot be set.
        (SOL_SOCKET, SO_GROUP_ID) => return Err(WsaError::WSAENOPROTOOPT),
        // Non-group sockets: WSAENOPROTOOPT; negative values: WSAEINVAL (D-26).
        (SOL_SOCKET, SO_GROUP_PRIORITY) => {
            let v = read_int(optval, optlen)?;
            core.groups
                .set_priority(id, v)
                .map_err(crate::engine::group_error)?;
            // The shaper serves group members in priority order.
            core.qos_refresh_flow(id);
        }
        (IPPROTO_IP, _) => {
            return super::multicast::set_option(core, id, optname, optval, optlen)
                .unwrap_or(Err(WsaError::WSAENOPROTOOPT))
        }
        _ => return Err(WsaError::WSAENOPROTOOPT),
    }
    Ok(())
}
