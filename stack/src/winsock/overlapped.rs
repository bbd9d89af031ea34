//! Scatter/gather and overlapped I/O: `WSASend`, `WSASendTo`, `WSARecv`, `WSARecvFrom`,
//! `WSAIoctl`, `WSAGetOverlappedResult` (CHECKLIST §1.4, §1.6.6, §1.6.7, §1.14.2).
//!
//! With `lpOverlapped` `None` the calls behave as `send`/`recv` over the gathered or scattered
//! buffers (blocking or not, as the socket is). With a [`WSAOVERLAPPED`] on a socket that has the
//! overlapped attribute, the data moves into the operation: the caller's `WSABUF`s are left
//! empty and come back, filled for receives, through [`WSAOVERLAPPED::take_buffers`] once the
//! operation completed — immediately (`Ok`, the indication already given) or later
//! (`WSA_IO_PENDING`). Indications follow the §1.6.6 table: a completion routine, run by the
//! issuing thread in an alertable wait, or the `hEvent` event, or none.

use std::time::Instant;

use super::catalog::GUID;
use super::events::WSAEVENT;
use super::names::{read_name, write_name};
use super::{record, types::*, Winsock};
use crate::engine::{OvKind, OvOp, Proto, SocketId};
use crate::error::WsaError;
use crate::notify::fd::{FD_OOB, FD_READ, FD_WRITE};
use crate::notify::overlapped::{
    Completion, LPWSAOVERLAPPED_COMPLETION_ROUTINE, WSABUF, WSAOVERLAPPED,
};

/// Copies `data` into the buffers in order (scatter), `len` bytes of each at most.
fn scatter(buffers: &mut [WSABUF], mut data: &[u8]) {
    for b in buffers {
        if data.is_empty() {
            break;
        }
        let room = (b.len as usize).min(b.buf.len());
        let n = room.min(data.len());
        b.buf[..n].copy_from_slice(&data[..n]);
        data = &data[n..];
    }
}

/// The buffers' bytes, concatenated (gather).
fn gather(buffers: &[WSABUF]) -> Vec<u8> {
    buffers.iter().flat_map(|b| b.data()).copied().collect()
}

fn check_buffers(buffers: &[WSABUF]) -> Result<(), WsaError> {
    if buffers.iter().any(|b| b.len as usize > b.buf.len()) {
        return Err(WsaError::WSAEFAULT);
    }
    Ok(())
}

/// `SIO_ASSOCIATE_HANDLE`: companion interface handle (none supported: `WSAENOPROTOOPT`).
pub const SIO_ASSOCIATE_HANDLE: u32 = IOC_IN | IOC_WS2 | 1;
/// `SIO_ENABLE_CIRCULAR_QUEUEING`: a full UDP receive queue drops its oldest datagram.
pub const SIO_ENABLE_CIRCULAR_QUEUEING: u32 = IOC_VOID | IOC_WS2 | 2;
/// `SIO_FIND_ROUTE`: re-resolves the route (and neighbour) towards a `sockaddr_in`.
pub const SIO_FIND_ROUTE: u32 = IOC_OUT | IOC_WS2 | 3;
/// `SIO_GET_BROADCAST_ADDRESS`: a `sockaddr_in` to send broadcasts to.
pub const SIO_GET_BROADCAST_ADDRESS: u32 = IOC_OUT | IOC_WS2 | 5;
/// `SIO_GET_EXTENSION_FUNCTION_POINTER`: a GUID in, an [`ExtensionFunction`] out.
pub const SIO_GET_EXTENSION_FUNCTION_POINTER: u32 = IOC_INOUT | IOC_WS2 | 6;
/// `SIO_TRANSLATE_HANDLE`: companion interface handle (none supported: `WSAENOPROTOOPT`).
pub const SIO_TRANSLATE_HANDLE: u32 = IOC_INOUT | IOC_WS2 | 13;

/// The Microsoft extension GUIDs share their last 10 bytes.
const MSWSOCK_GUID_TAIL: (u16, [u8; 8]) =
    (0x11cf, [0x95, 0xca, 0x00, 0x80, 0x5f, 0x48, 0xa1, 0x92]);
/// `WSAID_TRANSMITFILE`.
pub const WSAID_TRANSMITFILE: GUID = GUID {
    Data1: 0xb536_7df0,
    Data2: 0xcbac,
    Data3: MSWSOCK_GUID_TAIL.0,
    Data4: MSWSOCK_GUID_TAIL.1,
};
/// `WSAID_ACCEPTEX`.
pub const WSAID_ACCEPTEX: GUID = GUID {
    Data1: 0xb536_7df1,
    ..WSAID_TRANSMITFILE
};
/// `WSAID_GETACCEPTEXSOCKADDRS`.
pub const WSAID_GETACCEPTEXSOCKADDRS: GUID = GUID {
    Data1: 0xb536_7df2,
    ..WSAID_TRANSMITFILE
};

/// What `SIO_GET_EXTENSION_FUNCTION_POINTER` returns. Rust has no untyped function pointers
/// to hand out safely, so the "pointer" written to the output buffer is this identifier as a
/// native-endian `usize`; the caller reads it with [`ExtensionFunction::from_bytes`] and
/// dispatches to the `Winsock` method of the same name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(usize)]
pub enum ExtensionFunction {
    /// [`Winsock::AcceptEx`].
    AcceptEx = 1,
    /// [`super::GetAcceptExSockaddrs`].
    GetAcceptExSockaddrs = 2,
    /// [`Winsock::TransmitFile`].
    TransmitFile = 3,
}

impl ExtensionFunction {
    /// The function a GUID names, if this provider has it.
    pub fn from_guid(g: &GUID) -> Option<ExtensionFunction> {
        match *g {
            WSAID_ACCEPTEX => Some(ExtensionFunction::AcceptEx),
            WSAID_GETACCEPTEXSOCKADDRS => Some(ExtensionFunction::GetAcceptExSockaddrs),
            WSAID_TRANSMITFILE => Some(ExtensionFunction::TransmitFile),
            _ => None,
        }
    }

    /// Reads the identifier `WSAIoctl` wrote to the start of `b`.
    pub fn from_bytes(b: &[u8]) -> Option<ExtensionFunction> {
        let raw = usize::from_ne_bytes(b.get(..POINTER_LEN)?.try_into().ok()?);
        [
            ExtensionFunction::AcceptEx,
            ExtensionFunction::GetAcceptExSockaddrs,
            ExtensionFunction::TransmitFile,
        ]
        .into_iter()
        .find(|f| *f as usize == raw)
    }
}

/// Size of the "function pointer" `SIO_GET_EXTENSION_FUNCTION_POINTER` writes.
const POINTER_LEN: usize = std::mem::size_of::<usize>();

impl Winsock {
    /// `WSASend` (§1.4): gathers `lpBuffers` in array order. Flags: `MSG_OOB`, `MSG_DONTROUTE`;
    /// `MSG_PARTIAL` is `WSAEOPNOTSUPP` (no partial messages here).
    pub fn WSASend(
        &self,
        s: SOCKET,
        lpBuffers: &mut [WSABUF],
        lpNumberOfBytesSent: Option<&mut u32>,
        dwFlags: i32,
        lpOverlapped: Option<&WSAOVERLAPPED>,
        lpCompletionRoutine: Option<LPWSAOVERLAPPED_COMPLETION_ROUTINE>,
    ) -> Result<(), WsaError> {
        self.WSASendTo(
            s,
            lpBuffers,
            lpNumberOfBytesSent,
            dwFlags,
            None,
            0,
            lpOverlapped,
            lpCompletionRoutine,
        )
    }

    /// `WSASendTo` (§1.4): `WSASend` to `lpTo`, which is ignored on a stream socket.
    #[allow(clippy::too_many_arguments)]
    pub fn WSASendTo(
        &self,
        s: SOCKET,
        lpBuffers: &mut [WSABUF],
        lpNumberOfBytesSent: Option<&mut u32>,
        dwFlags: i32,
        lpTo: Option<&SOCKADDR>,
        iToLen: i32,
        lpOverlapped: Option<&WSAOVERLAPPED>,
        lpCompletionRoutine: Option<LPWSAOVERLAPPED_COMPLETION_ROUTINE>,
    ) -> Result<(), WsaError> {
        let id = record(self.check(s))?;
        let r = self.wsa_send(
            id,
            lpBuffers,
            lpNumberOfBytesSent,
            dwFlags,
            lpTo,
            iToLen,
            lpOverlapped,
            lpCompletionRoutine,
        );
        if r == Err(WsaError::WSAEWOULDBLOCK) {
            self.rearm(s, FD_WRITE);
        }
        record(r)
    }

    #[allow(clippy::too_many_arguments)]
    fn wsa_send(
        &self,
        id: SocketId,
        buffers: &mut [WSABUF],
        sent: Option<&mut u32>,
        flags: i32,
        to: Option<&SOCKADDR>,
        tolen: i32,
        ov: Option<&WSAOVERLAPPED>,
        routine: Option<LPWSAOVERLAPPED_COMPLETION_ROUTINE>,
    ) -> Result<(), WsaError> {
        check_buffers(buffers)?;
        if flags & MSG_PARTIAL != 0 {
            return Err(WsaError::WSAEOPNOTSUPP);
        }
        let sock = self.stack.with_quiet(|core| core.ov_socket(id))?;
        let to = match (sock.proto, to) {
            (Proto::Tcp, _) | (_, None) => None,
            (_, Some(_)) => Some(read_name(to, tolen, WsaError::WSAEAFNOSUPPORT)?),
        };
        if ov.is_none() && routine.is_some() && !sock.overlapped {
            // D-9: a completion routine needs the overlapped attribute.
            return Err(WsaError::WSAEINVAL);
        }
        let Some(ov) = ov else {
            let Some(sent) = sent else {
                return Err(WsaError::WSAEFAULT);
            };
            let n = self.send_inner(id, to, &gather(buffers), flags)?;
            *sent = n as u32;
            return Ok(());
        };
        if flags & !(MSG_DONTROUTE) != 0 {
            // Urgent data is not sent through overlapped operations (it arrives with the OOB
            // work); unknown flags are invalid.
            return Err(if flags & MSG_OOB != 0 {
                WsaError::WSAEOPNOTSUPP
            } else {
                WsaError::WSAEINVAL
            });
        }
        let n = self.ov_start(id, OvKind::Send(to), buffers, ov, routine)?;
        if let Some(sent) = sent {
            *sent = n;
        }
        Ok(())
    }

    /// `WSARecv` (§1.4): scatters into `lpBuffers` in array order. `*lpFlags` is in/out: in,
    /// `MSG_PEEK` (non-overlapped only, D-8) or `MSG_OOB`; out, `MSG_PARTIAL` when a datagram
    /// did not fit (it then fails `WSAEMSGSIZE` and the rest is lost).
    pub fn WSARecv(
        &self,
        s: SOCKET,
        lpBuffers: &mut [WSABUF],
        lpNumberOfBytesRecvd: Option<&mut u32>,
        lpFlags: Option<&mut u32>,
        lpOverlapped: Option<&WSAOVERLAPPED>,
        lpCompletionRoutine: Option<LPWSAOVERLAPPED_COMPLETION_ROUTINE>,
    ) -> Result<(), WsaError> {
        self.WSARecvFrom(
            s,
            lpBuffers,
            lpNumberOfBytesRecvd,
            lpFlags,
            None,
            None,
            lpOverlapped,
            lpCompletionRoutine,
        )
    }

    /// `WSARecvFrom` (§1.4): `WSARecv` that also reports the sender of a datagram. For a
    /// pending operation the Rust face cannot write into `lpFrom` later: the sender is kept in
    /// the `WSAOVERLAPPED` ([`WSAOVERLAPPED::from`]) and `lpFrom` is left unchanged.
    #[allow(clippy::too_many_arguments)]
    pub fn WSARecvFrom(
        &self,
        s: SOCKET,
        lpBuffers: &mut [WSABUF],
        lpNumberOfBytesRecvd: Option<&mut u32>,
        lpFlags: Option<&mut u32>,
        lpFrom: Option<&mut SOCKADDR>,
        lpFromlen: Option<&mut i32>,
        lpOverlapped: Option<&WSAOVERLAPPED>,
        lpCompletionRoutine: Option<LPWSAOVERLAPPED_COMPLETION_ROUTINE>,
    ) -> Result<(), WsaError> {
        let id = record(self.check(s))?;
        let r = self.wsa_recv(
            id,
            lpBuffers,
            lpNumberOfBytesRecvd,
            lpFlags,
            lpFrom,
            lpFromlen,
            lpOverlapped,
            lpCompletionRoutine,
        );
        // Any receive call re-enables FD_READ and FD_OOB, even one that failed (§1.6.5).
        self.rearm(s, FD_READ | FD_OOB);
        record(r)
    }

    #[allow(clippy::too_many_arguments)]
    fn wsa_recv(
        &self,
        id: SocketId,
        buffers: &mut [WSABUF],
        received: Option<&mut u32>,
        flags: Option<&mut u32>,
        from: Option<&mut SOCKADDR>,
        fromlen: Option<&mut i32>,
        ov: Option<&WSAOVERLAPPED>,
        routine: Option<LPWSAOVERLAPPED_COMPLETION_ROUTINE>,
    ) -> Result<(), WsaError> {
        check_buffers(buffers)?;
        let Some(flags) = flags else {
            return Err(WsaError::WSAEFAULT);
        };
        let sock = self.stack.with_quiet(|core| core.ov_socket(id))?;
        let proto = sock.proto;
        if proto != Proto::Tcp && matches!(&fromlen, Some(l) if **l < SOCKADDR_IN_LEN) {
            return Err(WsaError::WSAEFAULT);
        }
        if from.is_some() && fromlen.is_none() {
            return Err(WsaError::WSAEFAULT);
        }
        if ov.is_none() && routine.is_some() && !sock.overlapped {
            // D-9: a completion routine needs the overlapped attribute.
            return Err(WsaError::WSAEINVAL);
        }
        // MSG_PARTIAL is a valid input flag (§1.4.1); it only matters for message protocols
        // with partial messages, which there are none of here.
        let in_flags = *flags & !(MSG_PARTIAL as u32);
        let Some(ov) = ov else {
            let Some(received) = received else {
                return Err(WsaError::WSAEFAULT);
            };
            let room: usize = buffers.iter().map(|b| b.len as usize).sum();
            let mut tmp = vec![0u8; room];
            let r = self.recv_inner(id, &mut tmp, in_flags as i32);
            let (n, src) = match r {
                Ok(r) => r,
                Err(WsaError::WSAEMSGSIZE) => {
                    scatter(buffers, &tmp);
                    // RMP keeps the whole message for the next read (no partial messages,
                    // CHECKLIST 185); a datagram's rest is gone, which MSG_PARTIAL says.
                    *flags = if proto == Proto::Rmp {
                        0
                    } else {
                        MSG_PARTIAL as u32
                    };
                    *received = room as u32;
                    return Err(WsaError::WSAEMSGSIZE);
                }
                Err(e) => return Err(e),
            };
            // A message-oriented connection reports the peer's graceful close as WSAEDISCON
            // (CHECKLIST 187, D-19): a zero-length message is data; the end has no sender.
            if proto == Proto::Rmp && n == 0 && src.is_some_and(|a| a.ip().is_unspecified()) {
                return Err(WsaError::WSAEDISCON);
            }
            scatter(buffers, &tmp[..n as usize]);
            *flags = 0;
            *received = n as u32;
            if let (Some(src), true, true) = (src, proto != Proto::Tcp, from.is_some()) {
                write_name(src, from, fromlen)?;
            }
            return Ok(());
        };
        if in_flags as i32 & MSG_PEEK != 0 {
            return Err(WsaError::WSAEINVAL);
        }
        if in_flags as i32 & MSG_OOB != 0 {
            return Err(if proto == Proto::Tcp {
                WsaError::WSAEINVAL
            } else {
                WsaError::WSAEOPNOTSUPP
            });
        }
        if in_flags != 0 {
            return Err(WsaError::WSAEINVAL);
        }
        let n = self.ov_start(id, OvKind::Recv, buffers, ov, routine)?;
        // Completed at once: the outputs are written now.
        if let Some(received) = received {
            *received = n;
        }
        *flags = ov.result(false, None).map_or(0, |r| r.2);
        if let (Some(src), true, true) = (ov.from(), proto != Proto::Tcp, from.is_some()) {
            write_name(src, from, fromlen)?;
        }
        Ok(())
    }

    /// Whether the socket has the overlapped attribute.
    fn has_overlapped(&self, id: SocketId) -> Result<bool, WsaError> {
        self.stack
            .with_quiet(|core| core.ov_socket(id).map(|s| s.overlapped))
    }

    /// Starts an overlapped transfer: `Ok(bytes)` if it completed at once (the indication is
    /// given already), `Err(WSA_IO_PENDING)` if it continues. What must hold first is checked
    /// by the engine ([`OvKind`]); those failures give no indication.
    fn ov_start(
        &self,
        id: SocketId,
        kind: OvKind,
        buffers: &mut [WSABUF],
        ov: &WSAOVERLAPPED,
        routine: Option<LPWSAOVERLAPPED_COMPLETION_ROUTINE>,
    ) -> Result<u32, WsaError> {
        let to = match kind {
            OvKind::Send(to) => to,
            _ => None,
        };
        let started = self.stack.with_quiet(|core| {
            core.ov_start(id, kind, || {
                if ov.is_pending() {
                    // Refused before anything changes: the event and the slot's result stay
                    // as they are.
                    return Err(WsaError::WSA_INVALID_PARAMETER);
                }
                let mut completion = self.completion(id, ov, routine)?;
                ov.begin(id)?;
                let taken = buffers.iter_mut().map(std::mem::take).collect();
                Ok(OvOp::new(completion.hold(taken), to, completion))
            })
        });
        if let Err(refused) = started {
            if let Some(op) = refused.op {
                // Not started: the caller keeps its buffers.
                let (held, completion) = op.into_parts();
                for (dst, src) in buffers.iter_mut().zip(completion.restore(held)) {
                    *dst = src;
                }
                ov.cancel_begin(Vec::new());
            }
            return Err(refused.error);
        }
        match ov.result(false, None) {
            None => Err(WsaError::WSA_IO_PENDING),
            Some((0, bytes, _)) => Ok(bytes),
            Some((e, _, _)) => Err(WsaError(e)),
        }
    }

    /// The completion indication for an operation on `id` with `ov`: its routine, or its
    /// event (reset now: a pending operation leaves it nonsignaled until completion).
    fn completion(
        &self,
        id: SocketId,
        ov: &WSAOVERLAPPED,
        routine: Option<LPWSAOVERLAPPED_COMPLETION_ROUTINE>,
    ) -> Result<Completion, WsaError> {
        let event = if routine.is_none() && ov.hEvent != 0 {
            let e = self.event_ref(ov.hEvent)?;
            e.reset();
            Some(e)
        } else {
            None
        };
        Ok(Completion::new(id, ov.clone(), event, routine))
    }

    /// `WSAIoctl` (§1.14.2): `FIONBIO` (input: a `u32`), `FIONREAD` and `SIOCATMARK` (output: a
    /// `u32`), `SIO_FLUSH` (pending overlapped sends end `WSA_OPERATION_ABORTED`). These all
    /// complete at once; with `lpOverlapped` on an overlapped socket the indication is given
    /// too. Short buffers are `WSAEFAULT`, other codes `WSAEINVAL`.
    #[allow(clippy::too_many_arguments)]
    pub fn WSAIoctl(
        &self,
        s: SOCKET,
        dwIoControlCode: u32,
        lpvInBuffer: &[u8],
        lpvOutBuffer: &mut [u8],
        lpcbBytesReturned: Option<&mut u32>,
        lpOverlapped: Option<&WSAOVERLAPPED>,
        lpCompletionRoutine: Option<LPWSAOVERLAPPED_COMPLETION_ROUTINE>,
    ) -> Result<(), WsaError> {
        let id = record(self.check(s))?;
        let Some(returned) = lpcbBytesReturned else {
            return record(Err(WsaError::WSAEFAULT));
        };
        // On a socket without the overlapped attribute both are ignored (§1.14.2).
        let (lpOverlapped, lpCompletionRoutine) =
            if lpOverlapped.is_some() && !record(self.has_overlapped(id))? {
                (None, None)
            } else {
                (lpOverlapped, lpCompletionRoutine)
            };
        let out_u32 = |out: &mut [u8], v: u32| -> Result<u32, WsaError> {
            let dst = out.get_mut(..4).ok_or(WsaError::WSAEFAULT)?;
            dst.copy_from_slice(&v.to_ne_bytes());
            Ok(4)
        };
        let n = record(match dwIoControlCode {
            c if c == FIONBIO as u32 => match lpvInBuffer.get(..4) {
                None => Err(WsaError::WSAEFAULT),
                Some(b) => {
                    let mut arg = u32::from_ne_bytes([b[0], b[1], b[2], b[3]]);
                    self.ioctlsocket(s, FIONBIO, Some(&mut arg)).map(|()| 0)
                }
            },
            c if c == FIONREAD as u32 || c == SIOCATMARK as u32 => {
                let mut arg = 0;
                self.ioctlsocket(s, c as i32, Some(&mut arg))
                    .and_then(|()| out_u32(lpvOutBuffer, arg))
            }
            SIO_FLUSH => {
                self.stack.with_quiet(|core| core.ov_flush_sends(id));
                Ok(0)
            }
            SIO_GET_BROADCAST_ADDRESS => self.broadcast_address(id, lpvOutBuffer),
            // Only unreliable message protocols queue that way (CHECKLIST 490).
            SIO_ENABLE_CIRCULAR_QUEUEING => self
                .stack
                .with_quiet(|core| core.enable_circular_queueing(id))
                .map(|()| 0),
            SIO_FIND_ROUTE => {
                let to = read_name(
                    SOCKADDR_IN::from_bytes(lpvInBuffer).as_ref(),
                    lpvInBuffer.len().min(i32::MAX as usize) as i32,
                    WsaError::WSAEAFNOSUPPORT,
                );
                to.and_then(|to| self.stack.with(|core| core.find_route(*to.ip())))
                    .map(|()| 0)
            }
            SIO_GET_EXTENSION_FUNCTION_POINTER => match GUID::from_bytes(lpvInBuffer) {
                None => Err(WsaError::WSAEFAULT),
                Some(g) => match ExtensionFunction::from_guid(&g) {
                    None => Err(WsaError::WSAEINVAL),
                    Some(f) => match lpvOutBuffer.get_mut(..POINTER_LEN) {
                        None => Err(WsaError::WSAEFAULT),
                        Some(out) => {
                            out.copy_from_slice(&(f as usize).to_ne_bytes());
                            Ok(POINTER_LEN as u32)
                        }
                    },
                },
            },
            // No companion interfaces (CHECKLIST 494).
            SIO_ASSOCIATE_HANDLE | SIO_TRANSLATE_HANDLE => Err(WsaError::WSAENOPROTOOPT),
            c => self
                .multipoint_ioctl(id, c, lpvInBuffer)
                .or_else(|| self.qos_ioctl(id as SOCKET, c, lpvInBuffer, lpvOutBuffer))
                .unwrap_or(Err(WsaError::WSAEINVAL)),
        })?;
        *returned = n;
        if let Some(ov) = lpOverlapped {
            let completion = record(self.completion(id, ov, lpCompletionRoutine))?;
            record(ov.begin(id))?;
            completion.complete(crate::notify::overlapped::Outcome {
                bytes: n,
                ..Default::default()
            });
        }
        Ok(())
    }

    /// `WSAGetOverlappedResult` (§1.6.7): `Ok` with the bytes transferred and the receive flags
    /// once the operation completed successfully; the operation's own error if it failed;
    /// `WSA_IO_INCOMPLETE` while it is pending and `fWait` is false. With `fWait` it waits for
    /// completion (a `hEvent` that is not an open event is `WSA_INVALID_HANDLE`).
    pub fn WSAGetOverlappedResult(
        &self,
        s: SOCKET,
        lpOverlapped: &WSAOVERLAPPED,
        lpcbTransfer: &mut u32,
        fWait: bool,
        lpdwFlags: &mut u32,
    ) -> Result<(), WsaError> {
        let id = record(self.check(s))?;
        if !lpOverlapped.belongs_to(id) {
            return record(Err(WsaError::WSA_INVALID_PARAMETER));
        }
        let ev: WSAEVENT = lpOverlapped.hEvent;
        if fWait && lpOverlapped.is_pending() && ev != 0 && !self.events().contains(ev) {
            return record(Err(WsaError::WSA_INVALID_HANDLE));
        }
        match lpOverlapped.result(fWait, None::<Instant>) {
            None => record(Err(WsaError::WSA_IO_INCOMPLETE)),
            Some((error, bytes, flags)) => {
                *lpdwFlags = flags;
                if error != 0 {
                    return record(Err(WsaError(error)));
                }
                *lpcbTransfer = bytes;
                Ok(())
            }
        }
    }

    /// `SIO_GET_BROADCAST_ADDRESS` (CHECKLIST 486, 487): the directed broadcast address of the
    /// stack's first network (255.255.255.255 for a /31 or /32), port 0, as a `sockaddr_in`.
    /// Datagram sockets only (`WSAEOPNOTSUPP` otherwise); a short buffer is `WSAEFAULT`.
    fn broadcast_address(&self, id: SocketId, out: &mut [u8]) -> Result<u32, WsaError> {
        let ip = self.stack.with_quiet(|core| core.broadcast_address(id))?;
        let bytes = SOCKADDR_IN::new(std::net::SocketAddrV4::new(ip, 0)).to_bytes();
        let dst = out.get_mut(..bytes.len()).ok_or(WsaError::WSAEFAULT)?;
        dst.copy_from_slice(&bytes);
        Ok(bytes.len() as u32)
    }
}
