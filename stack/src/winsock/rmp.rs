//! Rooted multipoint on the Winsock face (CHECKLIST §1.10.3–§1.10.4, Part 2 group Q, D-18,
//! D-19): the two RMP catalog entries' sockets, `WSAJoinLeaf` at a root and at a leaf,
//! `accept`/`WSAAccept` of join requests, and disconnect data.
//!
//! Read first: docs/rmp.md (the protocol, which this project defines) and `engine/rmp.rs`.

use std::net::SocketAddrV4;

use ws2_multipoint::rmp::wire::MAX_USER_DATA;
use ws2_multipoint::rmp::JoinFlags;

use super::accept::{CF_ACCEPT, CF_DEFER, CF_REJECT, LPCONDITIONPROC};
use super::names::write_name;
use super::{record, types::*, Winsock, JL_BOTH, JL_RECEIVER_ONLY, JL_SENDER_ONLY, QOS, WSABUF};
use crate::engine::rmp::JoinArgs;
use crate::engine::SocketId;
use crate::error::WsaError;
use crate::notify::fd::FD_ACCEPT;

/// The "RMP rooted data" entry's protocol (`SOCK_RDM`): rooted control and data planes, like
/// ATM point-to-multipoint and ST-II. A project-defined number (docs/rmp.md §1).
pub const IPPROTO_RMP: i32 = 0x524d;
/// The "RMP non-rooted data" entry's protocol (`SOCK_RDM`): rooted control, non-rooted data
/// (T.120 style: the root relays every leaf's data to the other leaves).
pub const IPPROTO_RMP_RELAY: i32 = 0x524e;

/// Copies `data` into a value-result buffer: `len` is the room on the way in and the bytes
/// copied on the way out (`WSAEFAULT` if they do not fit).
fn fill(buf: &mut WSABUF, data: &[u8]) -> Result<(), WsaError> {
    if data.len() > buf.len as usize || data.len() > buf.buf.len() {
        return Err(WsaError::WSAEFAULT);
    }
    buf.buf[..data.len()].copy_from_slice(data);
    buf.len = data.len() as u32;
    Ok(())
}

/// `JL_*` flags as the protocol's join flags.
pub(super) fn join_flags(dw: u32) -> Option<JoinFlags> {
    match dw {
        JL_SENDER_ONLY => Some(JoinFlags::SenderOnly),
        JL_RECEIVER_ONLY => Some(JoinFlags::ReceiverOnly),
        JL_BOTH => Some(JoinFlags::Both),
        _ => None,
    }
}

impl Winsock {
    /// `WSAJoinLeaf` on an RMP socket (CHECKLIST §1.10.3): a c_root invites the leaf at `to`
    /// and gets a new c_leaf socket for it (Q 417), a c_leaf asks the root at `to` for
    /// admittance and gets itself back (Q 424). Blocking: returns once the peer accepted
    /// (`WSAECONNREFUSED` if it refused); non-blocking: `FD_CONNECT` on the returned socket then.
    /// Caller data (≤ 4,096 bytes) and the flowspecs travel in the JOIN; `lpCalleeData` gets
    /// the peer's answer when the call completes (blocking) — afterwards through
    /// [`Winsock::rmp_callee_data`].
    #[allow(clippy::too_many_arguments)]
    pub(super) fn rmp_join_leaf(
        &self,
        s: SOCKET,
        id: SocketId,
        to: SocketAddrV4,
        caller: Option<&WSABUF>,
        callee: Option<&mut WSABUF>,
        sqos: Option<&QOS>,
        gqos: Option<&QOS>,
        flags: JoinFlags,
        nonblocking: bool,
    ) -> Result<SOCKET, WsaError> {
        let caller_data = caller.map(|b| b.data().to_vec()).unwrap_or_default();
        if caller_data.len() > MAX_USER_DATA {
            return Err(WsaError::WSAEFAULT);
        }
        let args = JoinArgs {
            to,
            flags,
            caller_data,
            sqos: sqos.map(|q| q.to_bytes()),
            gqos: gqos.map(|q| q.to_bytes()),
        };
        let owner = self.stack.with(|core| core.rmp_join(id, args))?;
        let socket = if owner == id { s } else { self.adopt(owner) };
        // The flowspec applies to the socket that carries the leaf's traffic.
        self.connect_qos(owner, sqos, gqos)?;
        if nonblocking {
            return Ok(socket);
        }
        let r = self
            .block(Some(owner), None, |core| core.rmp_join_result(owner))
            .unwrap_or(Err(WsaError::WSAEINTR));
        if let Err(e) = r {
            if owner != id {
                // The invitation's socket is of no use; the caller never saw it.
                self.session().sockets.remove(&(owner as SOCKET));
                self.stack.with(|core| core.remove(owner, true));
            }
            return Err(e);
        }
        if let Some(callee) = callee {
            self.fill_callee(owner, callee)?;
        }
        Ok(socket)
    }

    /// Copies a completed join's callee data into `callee` (`WSAEFAULT` if it does not fit).
    fn fill_callee(&self, id: SocketId, callee: &mut WSABUF) -> Result<(), WsaError> {
        let data = self.stack.with_quiet(|core| core.rmp_callee_data(id))?;
        fill(callee, &data)
    }

    /// The callee data of a non-blocking `WSAJoinLeaf` on `s`, valid after its `FD_CONNECT`
    /// (CHECKLIST §1.10.3: "lpCalleeData … valid when the join completes").
    pub fn rmp_callee_data(&self, s: SOCKET, callee: &mut WSABUF) -> Result<(), WsaError> {
        let id = record(self.check(s))?;
        record(self.fill_callee(id, callee))
    }

    /// `WSAAccept` on a listening RMP socket: the condition function sees the joiner's address,
    /// caller data and flowspecs; `CF_ACCEPT` sends ACCEPT with what it left in
    /// `lpCalleeData`, `CF_REJECT` refuses (the joiner's `WSAJoinLeaf` fails
    /// `WSAECONNREFUSED`), `CF_DEFER` keeps the request waiting (`WSATRY_AGAIN`).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn rmp_wsaaccept(
        &self,
        s: SOCKET,
        id: SocketId,
        nonblocking: bool,
        addr: Option<&mut SOCKADDR>,
        addrlen: Option<&mut i32>,
        condition: LPCONDITIONPROC,
        dwCallbackData: usize,
    ) -> Result<SOCKET, WsaError> {
        let (local, remote, request) =
            self.next_offer(s, id, nonblocking, |core| core.rmp_pending(id))?;
        if addr.is_some() {
            let _ = write_name(remote, addr, addrlen);
        }
        let caller = WSABUF::new(SOCKADDR_IN::new(remote).to_bytes().to_vec());
        let callee = WSABUF::new(SOCKADDR_IN::new(local).to_bytes().to_vec());
        let caller_data = WSABUF::new(request.caller_data.clone());
        // Room for 4,096 bytes in `buf`; the function sets `len` to what it wrote (0: none).
        let mut callee_data = WSABUF::zeroed(MAX_USER_DATA);
        callee_data.len = 0;
        let mut sqos = request
            .sqos
            .as_deref()
            .and_then(|b| QOS::from_bytes(b).ok());
        let mut gqos = request
            .gqos
            .as_deref()
            .and_then(|b| QOS::from_bytes(b).ok());
        let mut g = 0u32;
        let verdict = condition(
            Some(&caller),
            (!request.caller_data.is_empty()).then_some(&caller_data),
            sqos.as_mut(),
            gqos.as_mut(),
            Some(&callee),
            Some(&mut callee_data),
            &mut g,
            dwCallbackData,
        );
        let r = match verdict {
            CF_ACCEPT => {
                let n = (callee_data.len as usize).min(callee_data.buf.len());
                let answer = callee_data.buf[..n].to_vec();
                self.stack
                    .with(|core| core.rmp_accept_joiner(id, &answer, sqos))
                    .map(|new| self.adopt(new))
            }
            CF_REJECT => {
                self.stack.with(|core| core.rmp_reject(id));
                Err(WsaError::WSAECONNREFUSED)
            }
            CF_DEFER => return Err(WsaError::WSATRY_AGAIN),
            _ => Err(WsaError::WSAEINVAL),
        };
        self.rearm(s, FD_ACCEPT);
        r
    }

    /// `WSASendDisconnect` (CHECKLIST §1.5): no more sends from this socket. On RMP the data
    /// (≤ 4,096 bytes) travels to the peer in DISCONNECT, which gets `FD_CLOSE` and reads it
    /// with `WSARecvDisconnect`; on a c_root it ends the session. TCP carries no disconnect
    /// data: there it is `shutdown(SD_SEND)` (FIN; `WSAENOTCONN` when not connected, CHECKLIST
    /// 216, 218), and any non-NULL `lpOutboundDisconnectData` is `WSAENOPROTOOPT` (217). It
    /// never waits for the peer, whatever `SO_LINGER` says (222).
    pub fn WSASendDisconnect(
        &self,
        s: SOCKET,
        lpOutboundDisconnectData: Option<&WSABUF>,
    ) -> Result<(), WsaError> {
        let id = record(self.check(s))?;
        let data = lpOutboundDisconnectData
            .map(|b| b.data().to_vec())
            .unwrap_or_default();
        let is_rmp = record(
            self.stack
                .with_quiet(|core| core.rmp_send_disconnect_data(id, &data)),
        )?;
        if !is_rmp {
            // The spec's test is the pointer, not the length: the provider has no
            // disconnect data at all (no XP1_DISCONNECT_DATA).
            if lpOutboundDisconnectData.is_some() {
                return record(Err(WsaError::WSAENOPROTOOPT));
            }
            return self.shutdown(s, SD_SEND);
        }
        Ok(())
    }

    /// `WSARecvDisconnect` (CHECKLIST §1.5): no more receives; on RMP, copies the disconnect
    /// data the peer sent into `lpInboundDisconnectData` (`len` 0 if none; `WSAEFAULT` if it
    /// does not fit, CHECKLIST 220, 221). TCP has none; there it only refuses further receives
    /// (`WSAESHUTDOWN`), unlike `shutdown(SD_RECEIVE)` without resetting the connection when
    /// data keeps arriving (219; D-35 is `shutdown`'s rule), and it is `WSAENOTCONN` on an
    /// unconnected socket. It never waits, whatever `SO_LINGER` says (222).
    pub fn WSARecvDisconnect(
        &self,
        s: SOCKET,
        lpInboundDisconnectData: Option<&mut WSABUF>,
    ) -> Result<(), WsaError> {
        let id = record(self.check(s))?;
        let data = record(self.stack.with(|core| core.recv_disconnect(id)))?;
        if let Some(buf) = lpInboundDisconnectData {
            record(fill(buf, &data))?;
        }
        Ok(())
    }
}
