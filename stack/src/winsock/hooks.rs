//! The Windows Sockets 1.1 pseudo-blocking model — blocking hooks, `WSAIsBlocking`,
//! `WSACancelBlockingCall`, `WSAEINPROGRESS` for nested calls — and the interruption of blocking
//! calls in 2.x mode (CHECKLIST §1.7, D-2, D-29; spec documents `000_…`, `001_…`, `004_…`).
//!
//! A session that negotiated a 1.x version runs blocking calls as the 1.1 spec's loop: try the
//! operation; if it cannot complete, wait a little for the stack, call the thread's blocking hook
//! until it returns FALSE, try once more (an operation that completed before the cancellation
//! took effect succeeds), then honour a `WSACancelBlockingCall` with `WSAEINTR`. While a thread is
//! inside such a call, every other Winsock call it makes (from the hook) fails `WSAEINPROGRESS`,
//! except `WSAIsBlocking` and `WSACancelBlockingCall`. "Task" is the thread. In 2.x mode the four
//! hook functions fail `WSAEOPNOTSUPP` and nothing nests; a blocking call ends with `WSAEINTR`
//! when another thread closes its socket, or interrupts it (the Rust face's cancellation).

use std::cell::{Cell, RefCell};
use std::time::{Duration, Instant};

use super::{record, Winsock};
use crate::engine::{Engine, SocketId};
use crate::error::WsaError;

/// `FARPROC` of `WSASetBlockingHook`: returns TRUE while it has more to do.
pub type BlockingHook = Box<dyn FnMut() -> bool>;

thread_local! {
    static HOOK: RefCell<Option<BlockingHook>> = const { RefCell::new(None) };
    static BLOCKING: Cell<bool> = const { Cell::new(false) };
    static CANCELLED: Cell<bool> = const { Cell::new(false) };
}

/// How long a 1.1 pseudo-blocking call waits between calls of an installed hook.
const HOOK_SLICE: Duration = Duration::from_millis(5);

/// Whether the calling thread is inside a 1.1 blocking call (then only `WSAIsBlocking` and
/// `WSACancelBlockingCall` may be called).
pub(super) fn in_blocking_call() -> bool {
    BLOCKING.with(Cell::get)
}

/// Forgets the calling thread's hook (its application's last `WSACleanup`).
pub(super) fn clear_hook() {
    HOOK.with(|h| h.borrow_mut().take());
}

/// Runs the thread's hook until it returns FALSE; `false` if there is no hook (the default hook
/// has nothing to dispatch here).
fn run_hook() -> bool {
    let Some(mut hook) = HOOK.with(|h| h.borrow_mut().take()) else {
        return false;
    };
    while hook() {}
    HOOK.with(|h| {
        let mut slot = h.borrow_mut();
        // The hook cannot replace itself (that call fails WSAEINPROGRESS), so put it back.
        if slot.is_none() {
            *slot = Some(hook);
        }
    });
    true
}

/// Marks the thread as inside a blocking call until dropped.
struct InCall;

impl InCall {
    fn enter() -> InCall {
        BLOCKING.with(|b| b.set(true));
        CANCELLED.with(|c| c.set(false));
        InCall
    }
}

impl Drop for InCall {
    fn drop(&mut self) {
        BLOCKING.with(|b| b.set(false));
        CANCELLED.with(|c| c.set(false));
    }
}

impl Winsock {
    /// `WSASetBlockingHook` (1.1 mode): installs the thread's hook and returns the previous one
    /// (`None`: the default hook).
    pub fn WSASetBlockingHook(
        &self,
        lpBlockFunc: BlockingHook,
    ) -> Result<Option<BlockingHook>, WsaError> {
        record(self.hooks_available())?;
        Ok(HOOK.with(|h| h.borrow_mut().replace(lpBlockFunc)))
    }

    /// `WSAUnhookBlockingHook` (1.1 mode): restores the default hook.
    pub fn WSAUnhookBlockingHook(&self) -> Result<(), WsaError> {
        record(self.hooks_available())?;
        HOOK.with(|h| h.borrow_mut().take());
        Ok(())
    }

    /// `WSAIsBlocking` (1.1 mode): whether the thread is inside a blocking call; callable from
    /// the hook.
    pub fn WSAIsBlocking(&self) -> Result<bool, WsaError> {
        if !self.v1_mode() {
            return record(Err(WsaError::WSAEOPNOTSUPP));
        }
        Ok(in_blocking_call())
    }

    /// `WSACancelBlockingCall` (1.1 mode): the thread's blocking call ends with `WSAEINTR` as
    /// soon as the hook returns (or succeeds, if it completed first). `WSAEINVAL` if no
    /// blocking call is in progress.
    pub fn WSACancelBlockingCall(&self) -> Result<(), WsaError> {
        if self.version().is_none() {
            return record(Err(WsaError::WSANOTINITIALISED));
        }
        if !self.v1_mode() {
            return record(Err(WsaError::WSAEOPNOTSUPP));
        }
        if !in_blocking_call() {
            return record(Err(WsaError::WSAEINVAL));
        }
        CANCELLED.with(|c| c.set(true));
        Ok(())
    }

    fn hooks_available(&self) -> Result<(), WsaError> {
        self.started()?;
        if !self.v1_mode() {
            return Err(WsaError::WSAEOPNOTSUPP);
        }
        Ok(())
    }

    /// Interrupts every call blocked on `s` now: they fail `WSAEINTR` and the socket stays
    /// usable; calls made later block as usual. In 2.x mode a blocking stream `send` that had
    /// already queued part of its buffer returns that count instead, so the stream stays
    /// consistent. Not a spec function: the cancellation the Rust face offers
    /// ([`crate::net::CancelHandle`]).
    pub fn interrupt_blocking_calls(&self, s: super::SOCKET) -> Result<(), WsaError> {
        let id = record(self.check(s))?;
        record(self.stack.with(|core| core.interrupt_blocking(id)))
    }

    /// Runs a blocking call: `attempt` until it returns `Some`, waiting for the stack between
    /// tries; `None` if `deadline` passes. The call ends with `WSAEINTR` when `sock` is closed
    /// or interrupted, and in 1.1 mode runs the pseudo-blocking loop (see the module docs).
    pub(super) fn block<R>(
        &self,
        sock: Option<SocketId>,
        deadline: Option<Instant>,
        mut attempt: impl FnMut(&mut Engine) -> Option<Result<R, WsaError>>,
    ) -> Option<Result<R, WsaError>> {
        let mut generation = None;
        let mut guarded = |core: &mut Engine| {
            if let Some(id) = sock {
                let now = core.interruptions(id);
                match (generation, now) {
                    (_, None) => return Some(Err(WsaError::WSAEINTR)),
                    (None, now) => generation = Some(now),
                    (Some(g), now) if g != now => return Some(Err(WsaError::WSAEINTR)),
                    _ => {}
                }
            }
            attempt(core)
        };
        if !self.v1_mode() {
            return self.stack.block_on(deadline, guarded);
        }
        let _in_call = InCall::enter();
        let has_hook = HOOK.with(|h| h.borrow().is_some());
        loop {
            let slice = if has_hook {
                Instant::now() + HOOK_SLICE
            } else {
                Instant::now() + Duration::from_millis(200)
            };
            let until = deadline.map_or(slice, |d| d.min(slice));
            if let Some(r) = self.stack.block_on(Some(until), &mut guarded) {
                return Some(r);
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return None;
            }
            if !run_hook() {
                continue;
            }
            if let Some(r) = self.stack.with_quiet(&mut guarded) {
                return Some(r);
            }
            if CANCELLED.with(Cell::get) {
                return Some(Err(WsaError::WSAEINTR));
            }
        }
    }
}
