//! `WSAAccept` and its condition function (CHECKLIST §1.3 `WSAAccept`, Part 2 group D, D-30).
//!
//! The listener's oldest completed connection is offered to the condition function, on the
//! calling thread, before it becomes a socket: `CF_ACCEPT` makes the socket (with the grouping
//! asked for in `*g`), `CF_REJECT` resets the connection (`WSAECONNREFUSED`; the handshake is
//! already done, so the caller sees a reset, D-30), `CF_DEFER` leaves it queued
//! (`WSATRY_AGAIN`, and `FD_ACCEPT` stays disabled). TCP carries no connect data:
//! `lpCallerData` is NULL and `lpCalleeData.len` 0. Nor does it carry QoS: `lpSQOS`/`lpGQOS`
//! are the caller's `WSAConnect` flowspecs only when the caller is a ws2 stack of this process
//! (the in-process LAN hands them over), else NULL; what the function leaves in them is
//! granted to the accepted socket (refused: `WSAEOPNOTSUPP`, and the connection is reset).

use std::net::SocketAddrV4;

use super::names::write_name;
use super::{record, types::*, Winsock, QOS, WSABUF};
use crate::engine::SocketId;
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
        let id = record(self.accept_checks(s, &addr, &addrlen))?;
        let mode = record(self.stack.with_quiet(|core| core.accept_mode(id)))?;
        let nonblocking = mode.nonblocking;
        if mode.rmp {
            return record(self.rmp_wsaaccept(
                s,
                id,
                nonblocking,
                addr,
                addrlen,
                condition,
                dwCallbackData,
            ));
        }
        let (local, remote) =
            record(self.next_offer(s, id, nonblocking, |core| core.tcp_pending(id)))?;
        if addr.is_some() {
            let _ = write_name(remote, addr, addrlen);
        }
        let caller = WSABUF::new(SOCKADDR_IN::new(remote).to_bytes().to_vec());
        let callee = WSABUF::new(SOCKADDR_IN::new(local).to_bytes().to_vec());
        let mut callee_data = WSABUF::default();
        let mut g = 0u32;
        let (mut sqos, mut gqos) = super::qos::caller_qos(remote, local);
        let verdict = condition(
            Some(&caller),
            None,
            sqos.as_mut(),
            gqos.as_mut(),
            Some(&callee),
            Some(&mut callee_data),
            &mut g,
            dwCallbackData,
        );
        let r = match verdict {
            CF_ACCEPT => self.accept_offered(id, remote, g, sqos, gqos),
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

    /// The oldest request waiting at listener `s` (`id`), for the condition function: at once
    /// (`WSAEWOULDBLOCK` if none) or waiting for one. A failure re-enables `FD_ACCEPT`, except
    /// an interrupted wait.
    pub(super) fn next_offer<T>(
        &self,
        s: SOCKET,
        id: SocketId,
        nonblocking: bool,
        mut pending: impl FnMut(&mut crate::engine::Engine) -> Result<Option<T>, WsaError>,
    ) -> Result<T, WsaError> {
        let attempt = |core: &mut crate::engine::Engine| pending(core).transpose();
        let offered = if nonblocking {
            self.stack
                .with_quiet(attempt)
                .unwrap_or(Err(WsaError::WSAEWOULDBLOCK))
        } else {
            self.block(Some(id), None, attempt)
                .unwrap_or(Err(WsaError::WSAEINTR))
        };
        if matches!(offered, Err(e) if e != WsaError::WSAEINTR) {
            self.rearm(s, FD_ACCEPT);
        }
        offered
    }

    /// Takes the offered connection (the oldest) as a socket and applies `*g` and the
    /// flowspecs the condition function agreed to (the socket's, and the group's if `*g` made
    /// the socket a group's creator).
    fn accept_offered(
        &self,
        id: SocketId,
        remote: SocketAddrV4,
        g: u32,
        sqos: Option<QOS>,
        gqos: Option<QOS>,
    ) -> Result<SOCKET, WsaError> {
        let group = ws2_groups::GroupRequest::from_g(g);
        let new = self
            .stack
            .with(|core| core.accept_offered(id, remote, group, sqos, gqos))?;
        Ok(self.adopt(new))
    }
}
