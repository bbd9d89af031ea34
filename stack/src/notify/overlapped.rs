//! Overlapped operations: `WSAOVERLAPPED`, `WSABUF` and how an operation completes
//! (CHECKLIST §1.6.6, §1.6.7; Part 3 #4; spec document `002_…`).
//!
//! The Rust shape of the spec's contract "the buffers must stay valid until completion": an
//! overlapped call *moves* the data out of the caller's `WSABUF`s into the operation, and the
//! operation hands the buffers back through its [`WSAOVERLAPPED`] when it completes
//! ([`WSAOVERLAPPED::take_buffers`]). No borrowed memory outlives a call, so there is no
//! `unsafe` and no lifetime trick. A `WSAOVERLAPPED` is a cheap handle: clones name the same
//! operation slot, reusable once the operation it carried has completed.
//!
//! Completion indications (the §1.6.6 table): an event object (`hEvent`), a completion routine
//! queued to the issuing thread ([`super::apc`]), or nothing; in every case the result is kept
//! in the `WSAOVERLAPPED` for `WSAGetOverlappedResult`. Operations aborted by `closesocket` or
//! `WSACleanup` record `WSA_OPERATION_ABORTED` without any indication (D-10).

use std::net::SocketAddrV4;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Instant;

use super::apc::{self, ApcQueue};
use super::event::EventRef;
use crate::error::WsaError;

/// `WSABUF`: `len` bytes of `buf` take part in the operation (`len` may be less than
/// `buf.len()`; more is `WSAEFAULT`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WSABUF {
    /// Bytes of `buf` to send, or room to receive into.
    pub len: u32,
    /// The memory.
    pub buf: Vec<u8>,
}

impl WSABUF {
    /// A buffer whose whole content takes part.
    pub fn new(buf: Vec<u8>) -> WSABUF {
        WSABUF {
            len: buf.len() as u32,
            buf,
        }
    }

    /// `len` zeroed bytes to receive into.
    pub fn zeroed(len: usize) -> WSABUF {
        WSABUF::new(vec![0; len])
    }

    /// The bytes that take part.
    pub fn data(&self) -> &[u8] {
        &self.buf[..(self.len as usize).min(self.buf.len())]
    }
}

#[allow(non_camel_case_types)]
/// `LPWSAOVERLAPPED_COMPLETION_ROUTINE`: `(dwError, cbTransferred, lpOverlapped, dwFlags)`.
pub type LPWSAOVERLAPPED_COMPLETION_ROUTINE =
    Box<dyn FnOnce(u32, u32, &WSAOVERLAPPED, u32) + Send + 'static>;

#[derive(Debug, Default)]
struct Slot {
    /// An operation is under way.
    pending: bool,
    /// The socket of the last operation.
    socket: Option<u64>,
    /// `Internal`: 0, or the error the operation completed with.
    error: i32,
    /// `InternalHigh`: bytes transferred.
    bytes: u32,
    /// Receive flags (`MSG_PARTIAL`).
    flags: u32,
    /// The buffers, back from the operation.
    buffers: Vec<WSABUF>,
    /// `WSARecvFrom`'s source address.
    from: Option<SocketAddrV4>,
}

#[derive(Debug, Default)]
struct Shared {
    slot: Mutex<Slot>,
    done: Condvar,
}

/// `WSAOVERLAPPED`: one overlapped operation's slot. `hEvent` is the event to signal at
/// completion (0 for none), or free for the application when a completion routine is used.
#[derive(Debug, Clone, Default)]
pub struct WSAOVERLAPPED {
    /// The event signalled at completion, or application data with a completion routine.
    pub hEvent: usize,
    shared: Arc<Shared>,
}

impl WSAOVERLAPPED {
    /// A slot that signals `hEvent` (0: no event).
    pub fn new(hEvent: usize) -> WSAOVERLAPPED {
        WSAOVERLAPPED {
            hEvent,
            shared: Arc::default(),
        }
    }

    fn slot(&self) -> MutexGuard<'_, Slot> {
        self.shared.slot.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// `Internal`: `WSA_IO_PENDING` while under way, else the completion status (0 = success).
    pub fn Internal(&self) -> i32 {
        let s = self.slot();
        if s.pending {
            WsaError::WSA_IO_PENDING.0
        } else {
            s.error
        }
    }

    /// `InternalHigh`: bytes transferred by the completed operation.
    pub fn InternalHigh(&self) -> u32 {
        self.slot().bytes
    }

    /// Whether an operation is under way.
    pub fn is_pending(&self) -> bool {
        self.slot().pending
    }

    /// The buffers of the completed operation (received data in them), handed back once.
    pub fn take_buffers(&self) -> Vec<WSABUF> {
        std::mem::take(&mut self.slot().buffers)
    }

    /// The received bytes of the completed operation, concatenated (a convenience over
    /// [`WSAOVERLAPPED::take_buffers`]).
    pub fn take_received(&self) -> Vec<u8> {
        let mut s = self.slot();
        let mut left = s.bytes as usize;
        let mut out = Vec::with_capacity(left);
        for b in std::mem::take(&mut s.buffers) {
            let n = left.min(b.data().len());
            out.extend_from_slice(&b.data()[..n]);
            left -= n;
        }
        out
    }

    /// `WSARecvFrom`: where the datagram came from (filled at completion).
    pub fn from(&self) -> Option<SocketAddrV4> {
        self.slot().from
    }

    /// Whether this slot's last operation was on socket `s`.
    pub(crate) fn belongs_to(&self, s: u64) -> bool {
        self.slot().socket == Some(s)
    }

    /// Marks a new operation under way. Fails `WSA_INVALID_PARAMETER` if the slot carries one
    /// (each outstanding operation needs its own `WSAOVERLAPPED`).
    pub(crate) fn begin(&self, socket: u64) -> Result<(), WsaError> {
        let mut s = self.slot();
        if s.pending {
            return Err(WsaError::WSA_INVALID_PARAMETER);
        }
        *s = Slot {
            pending: true,
            socket: Some(socket),
            ..Slot::default()
        };
        Ok(())
    }

    /// Undoes [`WSAOVERLAPPED::begin`] for an operation that failed to start, giving the
    /// buffers back. The slot then names no operation (`WSAGetOverlappedResult` does not
    /// report one that never started as a success).
    pub(crate) fn cancel_begin(&self, buffers: Vec<WSABUF>) {
        let mut s = self.slot();
        s.pending = false;
        s.socket = None;
        s.buffers = buffers;
    }

    /// The result once complete: `(error, bytes, flags)`; `None` while pending. With `wait`,
    /// waits (until `deadline`) for completion.
    pub(crate) fn result(&self, wait: bool, deadline: Option<Instant>) -> Option<(i32, u32, u32)> {
        let mut s = self.slot();
        while s.pending && wait {
            s = match deadline {
                None => self.shared.done.wait(s).unwrap_or_else(|e| e.into_inner()),
                Some(d) => {
                    let left = d.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        break;
                    }
                    self.shared
                        .done
                        .wait_timeout(s, left)
                        .unwrap_or_else(|e| e.into_inner())
                        .0
                }
            };
        }
        (!s.pending).then_some((s.error, s.bytes, s.flags))
    }

    /// Records the outcome with the caller's `buffers`; `event` is signalled while the slot is
    /// still locked, so whoever sees the operation complete also finds its event set (and the
    /// other way round).
    fn finish(&self, r: Outcome, buffers: Vec<WSABUF>, event: Option<&EventRef>) {
        let mut s = self.slot();
        s.pending = false;
        s.error = r.error;
        s.bytes = r.bytes;
        s.flags = r.flags;
        s.buffers = buffers;
        s.from = r.from;
        if let Some(e) = event {
            e.set();
        }
        drop(s);
        self.shared.done.notify_all();
    }
}

/// How an operation ended, as the engine reports it: its buffers are plain bytes, which the
/// [`Completion`] turns back into the caller's `WSABUF`s.
#[derive(Debug, Default)]
pub(crate) struct Outcome {
    pub(crate) error: i32,
    pub(crate) bytes: u32,
    pub(crate) flags: u32,
    /// The bytes the engine held, one `Vec` per buffer it was given.
    pub(crate) buffers: Vec<Vec<u8>>,
    pub(crate) from: Option<SocketAddrV4>,
    /// An accept onto an existing socket: the connection's (local, remote) names.
    pub(crate) accepted: Option<(SocketAddrV4, SocketAddrV4)>,
}

/// How one caller `WSABUF` was split for the engine: the engine gets the bytes that take part
/// (the first `len`), the rest waits here.
#[derive(Debug, Default)]
struct Piece {
    len: u32,
    tail: Vec<u8>,
}

/// An `AcceptEx` buffer's layout (CHECKLIST §1.3, Part 3 #10): `recv_len` bytes of first data
/// (given to the engine), then a local address slot of `local_len` bytes and a remote one of
/// `remote_len`, written at completion from the names the engine reports.
#[derive(Debug, Clone, Copy)]
struct AcceptSlots {
    recv_len: usize,
    local_len: usize,
    remote_len: usize,
}

/// One address slot of an `AcceptEx` buffer (CHECKLIST Part 3 #10: our own layout): the
/// length of the address as a little-endian `u16`, then the 16 bytes of the `sockaddr_in` as
/// it lies in memory, then zeros to the slot's end. `slot` holds at least 18 bytes.
fn acceptex_encode(slot: &mut [u8], addr: SocketAddrV4) {
    let mut b = [0u8; 16];
    b[..2].copy_from_slice(&2i16.to_ne_bytes());
    b[2..4].copy_from_slice(&addr.port().to_be_bytes());
    b[4..8].copy_from_slice(&addr.ip().octets());
    slot.fill(0);
    slot[..2].copy_from_slice(&16u16.to_le_bytes());
    slot[2..18].copy_from_slice(&b);
}

/// The `sockaddr_in` bytes of an `AcceptEx` address slot, if it holds one (the inverse of
/// [`acceptex_encode`], for `GetAcceptExSockaddrs`).
pub(crate) fn acceptex_address(slot: &[u8]) -> Option<[u8; 16]> {
    let len = u16::from_le_bytes([*slot.first()?, *slot.get(1)?]);
    (len == 16).then(|| slot.get(2..18)?.try_into().ok())?
}

/// How an operation tells its completion, and how its buffers go back to the caller.
pub(crate) struct Completion {
    socket: u64,
    ov: WSAOVERLAPPED,
    event: Option<EventRef>,
    routine: Option<(Arc<ApcQueue>, LPWSAOVERLAPPED_COMPLETION_ROUTINE)>,
    /// The caller's buffers, as split by [`Completion::hold`].
    shape: Vec<Piece>,
    /// Set by [`Completion::hold_accept`].
    slots: Option<AcceptSlots>,
}
impl std::fmt::Debug for Completion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Completion")
            .field("socket", &self.socket)
            .field("event", &self.event)
            .field("routine", &self.routine.is_some())
            .finish()
    }
}

impl Completion {
    /// The indication for an operation on `socket` issued by the calling thread: the routine
    /// if there is one (then `hEvent` is the application's), else the event if any.
    pub(crate) fn new(
        socket: u64,
        ov: WSAOVERLAPPED,
        event: Option<EventRef>,
        routine: Option<LPWSAOVERLAPPED_COMPLETION_ROUTINE>,
    ) -> Completion {
        let routine = routine.map(|r| (apc::current(), r));
        Completion {
            socket,
            event: if routine.is_some() { None } else { event },
            ov,
            routine,
            shape: Vec::new(),
            slots: None,
        }
    }

    /// Takes the caller's `WSABUF`s for the engine: the bytes that take part in each (its
    /// first `len`), one `Vec` per buffer; the rest and the lengths stay here until the
    /// buffers go back.
    pub(crate) fn hold(&mut self, buffers: Vec<WSABUF>) -> Vec<Vec<u8>> {
        buffers
            .into_iter()
            .map(|WSABUF { len, mut buf }| {
                let tail = buf.split_off((len as usize).min(buf.len()));
                self.shape.push(Piece { len, tail });
                buf
            })
            .collect()
    }

    /// Takes an `AcceptEx` output buffer for the engine: its first `recv_len` bytes (room for
    /// the first data); the address slots that follow are written when the buffer goes back.
    pub(crate) fn hold_accept(
        &mut self,
        buffer: Vec<u8>,
        (recv_len, local_len, remote_len): (usize, usize, usize),
    ) -> Vec<u8> {
        self.slots = Some(AcceptSlots {
            recv_len,
            local_len,
            remote_len,
        });
        let mut buffer = buffer;
        let len = buffer.len() as u32;
        let tail = buffer.split_off(recv_len.min(buffer.len()));
        self.shape.push(Piece { len, tail });
        buffer
    }

    /// The caller's `WSABUF`s again, from the bytes the engine held, with the `AcceptEx`
    /// address slots written if the engine reports an accepted connection.
    fn release(
        &mut self,
        buffers: Vec<Vec<u8>>,
        accepted: Option<(SocketAddrV4, SocketAddrV4)>,
    ) -> Vec<WSABUF> {
        let mut shape = std::mem::take(&mut self.shape).into_iter();
        let mut out: Vec<WSABUF> = buffers
            .into_iter()
            .map(|mut buf| match shape.next() {
                Some(Piece { len, tail }) => {
                    buf.extend_from_slice(&tail);
                    WSABUF { len, buf }
                }
                None => WSABUF::new(buf),
            })
            .collect();
        if let (Some(slots), Some((local, remote)), Some(b)) =
            (self.slots, accepted, out.first_mut())
        {
            let (r, l, rl) = (slots.recv_len, slots.local_len, slots.remote_len);
            if let Some(slot) = b.buf.get_mut(r..r + l) {
                acceptex_encode(slot, local);
            }
            if let Some(slot) = b.buf.get_mut(r + l..r + l + rl) {
                acceptex_encode(slot, remote);
            }
        }
        out
    }

    /// The caller's buffers of an operation that did not start (nothing was indicated).
    pub(crate) fn restore(mut self, buffers: Vec<Vec<u8>>) -> Vec<WSABUF> {
        self.release(buffers, None)
    }

    /// Records the outcome and gives the indication.
    pub(crate) fn complete(mut self, mut outcome: Outcome) {
        let (error, bytes, flags) = (outcome.error, outcome.bytes, outcome.flags);
        let buffers = self.release(std::mem::take(&mut outcome.buffers), outcome.accepted);
        self.ov.finish(outcome, buffers, self.event.as_ref());
        if let Some((queue, routine)) = self.routine {
            let ov = self.ov.clone();
            queue.push(
                self.socket,
                Box::new(move || routine(error as u32, bytes, &ov, flags)),
            );
        }
    }

    /// Records `WSA_OPERATION_ABORTED` without any indication (D-10), handing back the
    /// buffers (with the `AcceptEx` slots if the connection was accepted already).
    pub(crate) fn abort(
        mut self,
        buffers: Vec<Vec<u8>>,
        accepted: Option<(SocketAddrV4, SocketAddrV4)>,
    ) {
        let buffers = self.release(buffers, accepted);
        self.ov.finish(
            Outcome {
                error: WsaError::WSA_OPERATION_ABORTED.0,
                ..Outcome::default()
            },
            buffers,
            None,
        );
    }
}
