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

    /// Records the outcome; `event` is signalled while the slot is still locked, so whoever sees
    /// the operation complete also finds its event set (and the other way round).
    fn finish(&self, r: Outcome, event: Option<&EventRef>) {
        let mut s = self.slot();
        s.pending = false;
        s.error = r.error;
        s.bytes = r.bytes;
        s.flags = r.flags;
        s.buffers = r.buffers;
        s.from = r.from;
        if let Some(e) = event {
            e.set();
        }
        drop(s);
        self.shared.done.notify_all();
    }
}

/// How an operation ended.
#[derive(Debug, Default)]
pub(crate) struct Outcome {
    pub(crate) error: i32,
    pub(crate) bytes: u32,
    pub(crate) flags: u32,
    pub(crate) buffers: Vec<WSABUF>,
    pub(crate) from: Option<SocketAddrV4>,
}

/// How an operation tells its completion.
pub(crate) struct Completion {
    socket: u64,
    ov: WSAOVERLAPPED,
    event: Option<EventRef>,
    routine: Option<(Arc<ApcQueue>, LPWSAOVERLAPPED_COMPLETION_ROUTINE)>,
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
        }
    }

    /// Records the outcome and gives the indication.
    pub(crate) fn complete(self, outcome: Outcome) {
        let (error, bytes, flags) = (outcome.error, outcome.bytes, outcome.flags);
        self.ov.finish(outcome, self.event.as_ref());
        if let Some((queue, routine)) = self.routine {
            let ov = self.ov.clone();
            queue.push(
                self.socket,
                Box::new(move || routine(error as u32, bytes, &ov, flags)),
            );
        }
    }

    /// Records `WSA_OPERATION_ABORTED` without any indication (D-10).
    pub(crate) fn abort(self, buffers: Vec<WSABUF>) {
        self.ov.finish(
            Outcome {
                error: WsaError::WSA_OPERATION_ABORTED.0,
                buffers,
                ..Outcome::default()
            },
            None,
        );
    }
}
