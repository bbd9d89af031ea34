//! `WSAAccept` and its condition function (CHECKLIST §1.3 `WSAAccept`, Part 2 group D, D-30).
//!
//! The listener's oldest completed connection is offered to the condition function, on the
//! calling thread, before it becomes a socket: `CF_ACCEPT` makes the socket (with the grouping
//! asked for in `*g`), `CF_REJECT` resets the connection (`WSAECONNREFUSED`; the handshake is
//! already done, so the caller sees a reset, D-30), `CF_DEFER` leaves it queued
//! (`WSATRY_AGAIN`, and `FD_ACCEPT` stays disabled). TCP carries no connect data and no QoS
//! signalling: `lpCallerData` and `lpSQOS`/`lpGQOS` are NULL, `lpCalleeData.len` is 0.

use std::net::SocketAddrV4;

use super::sockets::write_name;
use super::{record, types::*, Winsock, QOS, WSABUF};
use crate::engine::{Proto, SocketId};
use crate::error::WsaError;
use crate::notify::fd::FD_ACCEPT;

/// `CF_ACCEPT`: accept the connection.
pub const CF_ACCEPT: i32 = 0;
/// `CF_REJECT`: refuse it.
pub const CF_REJECT: i32 = 1;
/// `CF_DEFER`: decide later; it stays queued.
pub const CF_DEFER: i32 = 2;

/// `LPCONDITIONPROC`: `(lpCallerId, lpCallerData, lpSQOS, lpGQOS, lpCalleeId, lpCalleeData, g,
/// dwCallbackData)`, returning `CF_ACCEPT`, `CF_REJECT` or `CF_DEFER`. The ids are `WSABUF`s
/// holding a `SOCKADDR_IN` ([`SOCKADDR_IN::from_bytes`]).
pub type LPCONDITIONPROC<'a> = &'a mut dyn FnMut(
    Option<&WSABUF>,
    Option<&WSABUF>,
    Option<&mut QOS>,
    Option<&mut QOS>,
    Option<&WSABUF>,
    Option<&mut WSABUF>,
    &mut u32,
    usize,
) -> i32;

impl Winsock {
    /// `WSAAccept` (§1.3): `accept` with a condition function; `addr`/`addrlen` are filled
    /// whatever the function decides. Without a function it is `accept`.
    pub fn WSAAccept(
        &self,
        s: SOCKET,
        addr: Option<&mut SOCKADDR>,
        addrlen: Option<&mut i32>,
        lpfnCondition: Option<LPCONDITIONPROC>,
        dwCallbackData: usize,
    ) -> Result<SOCKET, WsaError> {
        let Some(condition) = lpfnCondition else {
            return self.accept(s, addr, addrlen);
        };
        let id = record(self.check(s))?;
        if matches!(&addrlen, Some(l) if **l < SOCKADDR_IN_LEN)
            || (addr.is_some() && addrlen.is_none())
        {
            return record(Err(WsaError::WSAEFAULT));
        }
        let (proto, nonblocking) = record(
            self.stack
                .with_quiet(|core| core.sock(id).map(|s| (s.proto, s.nonblocking))),
        )?;
        if proto != Proto::Tcp {
            return record(Err(WsaError::WSAEOPNOTSUPP));
        }
        let pending = |core: &mut crate::engine::Core| core.tcp_pending(id).transpose();
        let offered = if nonblocking {
            self.stack
                .with_quiet(pending)
                .unwrap_or(Err(WsaError::WSAEWOULDBLOCK))
        } else {
            self.block(Some(id), None, pending)
                .unwrap_or(Err(WsaError::WSAEINTR))
        };
        let (local, remote) = match offered {
            Ok(ends) => ends,
            Err(e) => {
                if e != WsaError::WSAEINTR {
                    self.rearm(s, FD_ACCEPT);
                }
                return record(Err(e));
            }
        };
        if addr.is_some() {
            let _ = write_name(remote, addr, addrlen);
        }
        let caller = WSABUF::new(SOCKADDR_IN::new(remote).to_bytes().to_vec());
        let callee = WSABUF::new(SOCKADDR_IN::new(local).to_bytes().to_vec());
        let mut callee_data = WSABUF::default();
        let mut g = 0u32;
        let verdict = condition(
            Some(&caller),
            None,
            None,
            None,
            Some(&callee),
            Some(&mut callee_data),
            &mut g,
            dwCallbackData,
        );
        let r = match verdict {
            CF_ACCEPT => self.accept_offered(id, remote, g),
            CF_REJECT => {
                self.stack.with(|core| core.tcp_reject(id));
                Err(WsaError::WSAECONNREFUSED)
            }
            // The request stays queued and FD_ACCEPT stays disabled (§1.6.5).
            CF_DEFER => return record(Err(WsaError::WSATRY_AGAIN)),
            _ => Err(WsaError::WSAEINVAL),
        };
        self.rearm(s, FD_ACCEPT);
        record(r)
    }

    /// Takes the offered connection (the oldest) as a socket and applies `*g`.
    fn accept_offered(
        &self,
        id: SocketId,
        remote: SocketAddrV4,
        g: u32,
    ) -> Result<SOCKET, WsaError> {
        let new = self.stack.with(|core| -> Result<SocketId, WsaError> {
            let (new, got) = core.tcp_accept(id)?.ok_or(WsaError::WSAEACCES)?;
            if got != remote {
                // Another thread took the offered one; this is the next, unasked.
                core.remove(new, true);
                return Err(WsaError::WSAEACCES);
            }
            let request = ws2_groups::GroupRequest::from_g(g);
            if let Err(e) = core.groups.admit(request, new, (*remote.ip()).into()) {
                core.remove(new, true);
                return Err(crate::engine::group_error(e));
            }
            core.qos_refresh_flow(new);
            Ok(new)
        })?;
        Ok(self.adopt(new))
    }
}
