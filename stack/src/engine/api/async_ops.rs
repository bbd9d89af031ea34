//! Engine operations for the Winsock face: see the module docs of `api`.
//!
//! This file holds the operations of the asynchronous and extension calls: the overlapped
//! transfers (`WSASend`/`WSARecv` with a `WSAOVERLAPPED`, CHECKLIST §1.4, §1.6.6), `WSAIoctl`'s
//! socket codes (§1.14.2), the Microsoft extensions (`AcceptEx`, `TransmitFile`, `WSARecvEx`,
//! `SO_UPDATE_ACCEPT_CONTEXT`: §1.3, §1.4, §1.13.2) and the RMP calls of the Winsock face
//! (`WSAJoinLeaf`'s callee data, `WSAAccept`, `WSASendDisconnect`/`WSARecvDisconnect`:
//! §1.5, §1.10.3). The face checks its own arguments (buffers, lengths, flags, handles) and
//! calls one method here, which checks the socket and acts under the same lock.

use std::net::{Ipv4Addr, SocketAddrV4};

use ws2_qos::Qos;

use super::super::async_io::OvOp;
use super::super::lifecycle::{Proto, SocketId, State};
use super::super::Engine;
use crate::error::WsaError;

/// What an overlapped operation is, for the checks before it starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OvKind {
    /// `WSASend`/`WSASendTo`, with `lpTo` on a datagram socket.
    Send(Option<SocketAddrV4>),
    /// `WSARecv`/`WSARecvFrom`.
    Recv,
    /// `AcceptEx` on the listening socket, onto the given accept socket.
    Accept(SocketId),
}

/// What the overlapped calls need to know about a socket before they choose their path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct OvSocket {
    /// The socket's transport.
    pub(crate) proto: Proto,
    /// Created with the overlapped attribute.
    pub(crate) overlapped: bool,
}

/// An overlapped operation that did not start (no indication is given): the error and, when
/// it had been built already, the operation, whose buffers go back to the caller.
#[derive(Debug)]
pub(crate) struct OvRefused {
    /// Why it did not start.
    pub(crate) error: WsaError,
    /// The operation, if `start` had built it.
    pub(crate) op: Option<Box<OvOp>>,
}

impl From<WsaError> for OvRefused {
    fn from(error: WsaError) -> OvRefused {
        OvRefused { error, op: None }
    }
}

impl Engine {
    /// The transport and the overlapped attribute of a socket.
    pub(crate) fn ov_socket(&mut self, id: SocketId) -> Result<OvSocket, WsaError> {
        let sock = self.sock(id)?;
        Ok(OvSocket {
            proto: sock.proto,
            overlapped: sock.overlapped,
        })
    }

    /// Starts an overlapped operation on `id`: checks what must hold for `kind` (failures give
    /// no indication), then calls `start` for the operation (the face's own checks of the
    /// `WSAOVERLAPPED`, the indication, and the buffers moved into it) and queues it. The
    /// operation may complete before this returns (its indication is given already).
    ///
    /// Checks, in order: a send or receive needs the overlapped attribute (`WSAEINVAL`); on TCP
    /// a connection (`WSAENOTCONN`) not shut down in that direction (`WSAESHUTDOWN`) nor reset
    /// (`WSAECONNRESET`); on a datagram socket a receive needs a bound socket (`WSAEINVAL`),
    /// either direction one not shut down (`WSAESHUTDOWN`), and a send without `lpTo` a peer or
    /// session (`WSAENOTCONN`). `AcceptEx` (CHECKLIST §1.3) needs a TCP listener
    /// (`WSAEOPNOTSUPP` for another transport or RMP) with the overlapped attribute, listening
    /// (`WSAEINVAL`), and an accept socket that is TCP, another socket, neither bound nor
    /// connected and not the target of another `AcceptEx` (`WSAEINVAL`).
    pub(crate) fn ov_start(
        &mut self,
        id: SocketId,
        kind: OvKind,
        start: impl FnOnce() -> Result<OvOp, WsaError>,
    ) -> Result<(), OvRefused> {
        match kind {
            OvKind::Accept(accept) => self.acceptex_check(id, accept)?,
            OvKind::Send(to) => self.ov_transfer_check(id, false, to)?,
            OvKind::Recv => self.ov_transfer_check(id, true, None)?,
        }
        let op = start()?;
        self.wake = true;
        let recv = matches!(kind, OvKind::Recv | OvKind::Accept(_));
        self.ov_submit(id, recv, op)
            .map_err(|(error, op)| OvRefused {
                error,
                op: Some(op),
            })
    }

    /// What must hold before an overlapped send or receive starts.
    fn ov_transfer_check(
        &mut self,
        id: SocketId,
        recv: bool,
        to: Option<SocketAddrV4>,
    ) -> Result<(), WsaError> {
        let sock = self.sock(id)?;
        if !sock.overlapped {
            return Err(WsaError::WSAEINVAL);
        }
        let connected = matches!(sock.state, State::Connected(_));
        match (sock.proto, connected, recv) {
            (Proto::Tcp, true, false) if sock.shut_send => Err(WsaError::WSAESHUTDOWN),
            (Proto::Tcp, true, true) if sock.shut_recv => Err(WsaError::WSAESHUTDOWN),
            (Proto::Tcp, true, _) if sock.reset => Err(WsaError::WSAECONNRESET),
            (Proto::Tcp, true, _) => Ok(()),
            (Proto::Tcp, false, _) => Err(WsaError::WSAENOTCONN),
            (_, _, true) if sock.bound.is_none() => Err(WsaError::WSAEINVAL),
            (_, _, true) if sock.shut_recv => Err(WsaError::WSAESHUTDOWN),
            (_, _, false) if sock.shut_send => Err(WsaError::WSAESHUTDOWN),
            (_, _, false) if to.is_none() && sock.peer.or(sock.mcast.session).is_none() => {
                Err(WsaError::WSAENOTCONN)
            }
            _ => Ok(()),
        }
    }

    /// What must hold before an `AcceptEx` on `listen` onto `accept` starts.
    fn acceptex_check(&mut self, listen: SocketId, accept: SocketId) -> Result<(), WsaError> {
        let l = self.sock(listen)?;
        if l.proto != Proto::Tcp || l.rmp.is_some() {
            return Err(WsaError::WSAEOPNOTSUPP);
        }
        if !l.overlapped || !matches!(l.state, State::Listening(_)) {
            return Err(WsaError::WSAEINVAL);
        }
        let a = self.sock(accept)?;
        if a.proto != Proto::Tcp
            || a.rmp.is_some()
            || a.bound.is_some()
            || !matches!(a.state, State::Idle)
            || accept == listen
        {
            return Err(WsaError::WSAEINVAL);
        }
        if self.ov_accept_target(accept) {
            return Err(WsaError::WSAEINVAL);
        }
        Ok(())
    }

    /// `TransmitFile`'s checks (CHECKLIST §1.4): a TCP socket (`WSAEOPNOTSUPP` for the
    /// datagram transports and RMP), connected (`WSAENOTCONN`), not shut down for sending
    /// (`WSAESHUTDOWN`). Returns whether the socket has the overlapped attribute.
    pub(crate) fn transmit_file_check(&mut self, id: SocketId) -> Result<bool, WsaError> {
        let sock = self.sock(id)?;
        if sock.proto != Proto::Tcp || sock.rmp.is_some() {
            return Err(WsaError::WSAEOPNOTSUPP);
        }
        if !matches!(sock.state, State::Connected(_)) {
            return Err(WsaError::WSAENOTCONN);
        }
        if sock.shut_send {
            return Err(WsaError::WSAESHUTDOWN);
        }
        Ok(sock.overlapped)
    }

    /// `WSARecvEx`'s check before it receives (CHECKLIST §1.4): a datagram socket connected
    /// to 0.0.0.0 has no peer to receive from (`WSAENOTCONN`). Returns the transport.
    pub(crate) fn recv_ex_check(&mut self, id: SocketId) -> Result<Proto, WsaError> {
        let sock = self.sock(id)?;
        if sock.disconnected {
            return Err(WsaError::WSAENOTCONN);
        }
        Ok(sock.proto)
    }

    /// `SO_UPDATE_ACCEPT_CONTEXT` (CHECKLIST §1.13.2): the `AcceptEx` socket `id` takes the
    /// options, blocking mode and registration (re-armed as for a new connection) of the
    /// listening socket `listen`. `WSAEINVAL` if `listen` is not listening or `id` is not a
    /// connected TCP socket. The buffer sizes stay (smoltcp fixed them at creation).
    pub(crate) fn update_accept_context(
        &mut self,
        id: SocketId,
        listen: SocketId,
    ) -> Result<(), WsaError> {
        let l = self.sock(listen)?;
        if !matches!(l.state, State::Listening(_)) {
            return Err(WsaError::WSAEINVAL);
        }
        let (opts, nonblocking) = (l.opts, l.nonblocking);
        let select = l.select.as_ref().map(|r| Box::new(r.inherited()));
        let sock = self.sock(id)?;
        if sock.proto != Proto::Tcp || !matches!(sock.state, State::Connected(_)) {
            return Err(WsaError::WSAEINVAL);
        }
        let (rcvbuf, sndbuf) = (sock.opts.rcvbuf, sock.opts.sndbuf);
        sock.opts = opts;
        sock.opts.rcvbuf = rcvbuf;
        sock.opts.sndbuf = sndbuf;
        sock.nonblocking = nonblocking || select.is_some();
        if select.is_some() {
            sock.select = select;
        }
        self.refresh_tcp_opts(id);
        self.fd_update(id);
        Ok(())
    }

    /// `SIO_ENABLE_CIRCULAR_QUEUEING` (CHECKLIST 490): a full receive queue drops its oldest
    /// datagram. Only unreliable message protocols queue that way; raw sockets are left out
    /// (the drop-oldest hook knows UDP only), as is RMP: `WSAEINVAL`.
    pub(crate) fn enable_circular_queueing(&mut self, id: SocketId) -> Result<(), WsaError> {
        let sock = self.sock(id)?;
        if sock.proto != Proto::Udp || sock.rmp.is_some() {
            return Err(WsaError::WSAEINVAL);
        }
        sock.opts.circular = true;
        Ok(())
    }

    /// `SIO_GET_BROADCAST_ADDRESS` (CHECKLIST 486, 487): the directed broadcast address of the
    /// stack's first network (255.255.255.255 for a /31 or /32). Datagram sockets only
    /// (`WSAEOPNOTSUPP`).
    pub(crate) fn broadcast_address(&mut self, id: SocketId) -> Result<Ipv4Addr, WsaError> {
        let sock = self.sock(id)?;
        if !matches!(sock.proto, Proto::Udp | Proto::RawIcmp) {
            return Err(WsaError::WSAEOPNOTSUPP);
        }
        Ok(self
            .config
            .addrs
            .first()
            .filter(|c| c.prefix < 31)
            .map_or(Ipv4Addr::BROADCAST, |c| c.broadcast()))
    }

    // ---- RMP -----------------------------------------------------------------------------

    /// The callee data of `id`'s completed join (CHECKLIST §1.10.3: "lpCalleeData … valid when
    /// the join completes"); empty on a socket that is not RMP.
    pub(crate) fn rmp_callee_data(&mut self, id: SocketId) -> Result<Vec<u8>, WsaError> {
        let sock = self.sock(id)?;
        Ok(sock
            .rmp
            .as_ref()
            .map(|r| r.callee_data.clone())
            .unwrap_or_default())
    }

    /// `WSAAccept` with `CF_ACCEPT` on a listening RMP socket: admits the oldest join request
    /// with `callee_data` in the ACCEPT (`WSAEACCES` if there is none any more or it could not
    /// be answered), then grants the new socket `sqos` as the condition function left it: a
    /// refused flowspec removes the new socket and is the call's error.
    pub(crate) fn rmp_accept_joiner(
        &mut self,
        id: SocketId,
        callee_data: &[u8],
        sqos: Option<Qos>,
    ) -> Result<SocketId, WsaError> {
        let (new, _) = self
            .rmp_accept(id, callee_data)?
            .ok_or(WsaError::WSAEACCES)?;
        if let Err(e) = sqos.map_or(Ok(()), |q| self.qos_set(new, q)) {
            self.remove(new, true);
            return Err(e);
        }
        self.qos_refresh_flow(new);
        Ok(new)
    }

    /// `WSASendDisconnect` on an RMP socket (CHECKLIST §1.5): DISCONNECT with `data`, or on a
    /// c_root the end of the session. `Ok(false)` (nothing done) if `id` is not an RMP socket:
    /// TCP has no disconnect data, and the face shuts its sending side down itself.
    pub(crate) fn rmp_send_disconnect_data(
        &mut self,
        id: SocketId,
        data: &[u8],
    ) -> Result<bool, WsaError> {
        if self.sock(id)?.rmp.is_none() {
            return Ok(false);
        }
        self.wake = true;
        self.rmp_send_disconnect(id, data).map(|()| true)
    }

    /// `WSARecvDisconnect` (CHECKLIST §1.5): no more receives on `id` (`WSAENOTCONN` on an
    /// unconnected TCP socket). Not `shutdown(SD_RECEIVE)`'s reset when data keeps arriving
    /// (D-35). Returns the disconnect data the peer sent (RMP; empty if none).
    pub(crate) fn recv_disconnect(&mut self, id: SocketId) -> Result<Vec<u8>, WsaError> {
        let sock = self.sock(id)?;
        if sock.proto == Proto::Tcp && !matches!(sock.state, State::Connected(_)) {
            return Err(WsaError::WSAENOTCONN);
        }
        sock.shut_recv = true;
        Ok(sock
            .rmp
            .as_ref()
            .and_then(|r| r.disconnect_data.clone())
            .unwrap_or_default())
    }
}
