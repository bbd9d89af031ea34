//! Event objects, `WSAEventSelect`/`WSAEnumNetworkEvents`, `WSAAsyncSelect` with a
//! [`MessageQueue`] for the window, and alertable waits (CHECKLIST §1.0.3, §1.6.3–§1.6.5,
//! §1.6.8; Part 3 #1–#3).

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{LazyLock, Mutex};
use std::time::{Duration, Instant};

use super::{record, Winsock};
use crate::error::WsaError;
use crate::notify::apc;
use crate::notify::event::{EventRef, WaitResult};
use crate::notify::fd::{Target, FD_ALL_EVENTS, FD_MAX_EVENTS, HWND, MSG};

/// `WSAEVENT`: an event handle; 0 is `WSA_INVALID_EVENT` (and NULL where a handle is optional).
pub type WSAEVENT = usize;
/// `WSA_INVALID_EVENT`: `WSACreateEvent`'s failure value.
pub const WSA_INVALID_EVENT: WSAEVENT = 0;
/// `WSA_MAXIMUM_WAIT_EVENTS`: the most events one `WSAWaitForMultipleEvents` takes.
pub const WSA_MAXIMUM_WAIT_EVENTS: usize = 64;
/// `WSA_WAIT_EVENT_0`: add the index of the signaled event.
pub const WSA_WAIT_EVENT_0: u32 = 0;
/// `WSA_WAIT_IO_COMPLETION` (= `WAIT_IO_COMPLETION`, D-28): completion routines ran.
pub const WSA_WAIT_IO_COMPLETION: u32 = 0xC0;
/// `WSA_WAIT_TIMEOUT`: the time-out elapsed.
pub const WSA_WAIT_TIMEOUT: u32 = 0x102;
/// `WSA_WAIT_FAILED`: the wait failed (see the error).
pub const WSA_WAIT_FAILED: u32 = 0xFFFF_FFFF;
/// `WSA_INFINITE`: wait for ever.
pub const WSA_INFINITE: u32 = 0xFFFF_FFFF;
/// `WAIT_IO_COMPLETION`, `SleepEx`'s value when completion routines ran.
pub const WAIT_IO_COMPLETION: u32 = 0xC0;

/// `WSANETWORKEVENTS`: what `WSAEnumNetworkEvents` reports.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WSANETWORKEVENTS {
    /// The events that occurred.
    pub lNetworkEvents: i32,
    /// Their errors, indexed by `FD_xxx_BIT`.
    pub iErrorCode: [i32; FD_MAX_EVENTS],
}

fn deadline_ms(ms: u32) -> Option<Instant> {
    (ms != WSA_INFINITE).then(|| Instant::now() + Duration::from_millis(u64::from(ms)))
}

/// `SleepEx` (Win32, CHECKLIST §1.6.8): sleeps `dwMilliseconds` (`WSA_INFINITE`: for ever); when
/// `bAlertable`, returns early with `WAIT_IO_COMPLETION` after running the thread's queued
/// completion routines. Returns 0 when the time elapsed.
pub fn SleepEx(dwMilliseconds: u32, bAlertable: bool) -> u32 {
    if apc::sleep(deadline_ms(dwMilliseconds), bAlertable) {
        WAIT_IO_COMPLETION
    } else {
        0
    }
}

// ---- windows ------------------------------------------------------------------------------

static NEXT_WINDOW: AtomicUsize = AtomicUsize::new(1);
static WINDOWS: LazyLock<Mutex<HashMap<HWND, Sender<MSG>>>> = LazyLock::new(Mutex::default);

pub(super) fn windows() -> std::sync::MutexGuard<'static, HashMap<HWND, Sender<MSG>>> {
    WINDOWS.lock().unwrap_or_else(|e| e.into_inner())
}

/// The window `WSAAsyncSelect` posts to (CHECKLIST Part 3 #1): a message queue with a window
/// handle. The application pumps it with [`MessageQueue::GetMessage`] or
/// [`MessageQueue::PeekMessage`]. Dropping it destroys the window: later `WSAAsyncSelect`s
/// naming it fail `WSAEINVAL`, and registrations that still name it post nothing.
#[derive(Debug)]
pub struct MessageQueue {
    hwnd: HWND,
    rx: Receiver<MSG>,
}

impl MessageQueue {
    /// A new window with an empty queue.
    pub fn new() -> MessageQueue {
        let (tx, rx) = channel();
        let hwnd = NEXT_WINDOW.fetch_add(1, Ordering::Relaxed);
        windows().insert(hwnd, tx);
        MessageQueue { hwnd, rx }
    }

    /// The window handle for `WSAAsyncSelect`.
    pub fn hwnd(&self) -> HWND {
        self.hwnd
    }

    /// Waits for the next message (`None`: for ever); `None` if the time-out passed.
    pub fn GetMessage(&self, timeout: Option<Duration>) -> Option<MSG> {
        match timeout {
            None => self.rx.recv().ok(),
            Some(t) => self.rx.recv_timeout(t).ok(),
        }
    }

    /// The next message if one is queued (`PeekMessage(PM_REMOVE)`).
    pub fn PeekMessage(&self) -> Option<MSG> {
        self.rx.try_recv().ok()
    }
}

impl Default for MessageQueue {
    fn default() -> Self {
        MessageQueue::new()
    }
}

impl Drop for MessageQueue {
    fn drop(&mut self) {
        windows().remove(&self.hwnd);
    }
}

impl Winsock {
    // ---- event objects --------------------------------------------------------------------

    /// `WSACreateEvent`: a manual-reset event, initially nonsignaled (`WSA_INVALID_EVENT` is
    /// never returned; failures are errors).
    pub fn WSACreateEvent(&self) -> Result<WSAEVENT, WsaError> {
        record(self.started())?;
        Ok(self.events().create())
    }

    /// `WSACloseEvent`: later use of the handle fails `WSA_INVALID_HANDLE`.
    pub fn WSACloseEvent(&self, hEvent: WSAEVENT) -> Result<(), WsaError> {
        record(self.started())?;
        record(self.events().close(hEvent))
    }

    /// `WSASetEvent`: signals the event.
    pub fn WSASetEvent(&self, hEvent: WSAEVENT) -> Result<(), WsaError> {
        record(self.started())?;
        record(self.events().set(hEvent))
    }

    /// `WSAResetEvent`: makes the event nonsignaled.
    pub fn WSAResetEvent(&self, hEvent: WSAEVENT) -> Result<(), WsaError> {
        record(self.started())?;
        record(self.events().reset(hEvent))
    }

    /// `WSAWaitForMultipleEvents` (§1.6.8): `WSA_WAIT_EVENT_0 + i` (the lowest signaled index,
    /// D-31; 0 for wait-all), `WSA_WAIT_IO_COMPLETION` after running completion routines
    /// (alertable only), or `WSA_WAIT_TIMEOUT`. `dwTimeout` is in milliseconds, `WSA_INFINITE`
    /// for ever, 0 to test. An error stands for `WSA_WAIT_FAILED`: `WSA_INVALID_PARAMETER` for
    /// 0 or more than `WSA_MAXIMUM_WAIT_EVENTS` handles, `WSA_INVALID_HANDLE` for a handle that
    /// is not an open event.
    pub fn WSAWaitForMultipleEvents(
        &self,
        lphEvents: &[WSAEVENT],
        fWaitAll: bool,
        dwTimeout: u32,
        fAlertable: bool,
    ) -> Result<u32, WsaError> {
        record(self.started())?;
        if lphEvents.is_empty() || lphEvents.len() > WSA_MAXIMUM_WAIT_EVENTS {
            return record(Err(WsaError::WSA_INVALID_PARAMETER));
        }
        let r = self
            .events()
            .wait(lphEvents, fWaitAll, deadline_ms(dwTimeout), fAlertable);
        record(r.map(|w| match w {
            WaitResult::Signaled(i) => WSA_WAIT_EVENT_0 + i as u32,
            WaitResult::IoCompletion => WSA_WAIT_IO_COMPLETION,
            WaitResult::Timeout => WSA_WAIT_TIMEOUT,
        }))
    }

    /// The event `h` as a completion target; `WSA_INVALID_HANDLE` if it is not open.
    pub(crate) fn event_ref(&self, h: WSAEVENT) -> Result<EventRef, WsaError> {
        let table = self.events();
        if !table.contains(h) {
            return Err(WsaError::WSA_INVALID_HANDLE);
        }
        Ok(EventRef { table, handle: h })
    }

    // ---- WSAEventSelect / WSAAsyncSelect --------------------------------------------------

    /// `WSAEventSelect` (§1.6.4): records `lNetworkEvents` and signals `hEventObject` as they
    /// occur, replacing any earlier `WSAEventSelect` or `WSAAsyncSelect` and clearing the
    /// record; 0 cancels. The socket becomes non-blocking; accepted sockets inherit it.
    pub fn WSAEventSelect(
        &self,
        s: super::SOCKET,
        hEventObject: WSAEVENT,
        lNetworkEvents: i32,
    ) -> Result<(), WsaError> {
        let id = record(self.check(s))?;
        if lNetworkEvents & !FD_ALL_EVENTS != 0 {
            return record(Err(WsaError::WSAEINVAL));
        }
        let target = if lNetworkEvents == 0 {
            None
        } else {
            let e = record(
                self.event_ref(hEventObject)
                    .map_err(|_| WsaError::WSAEINVAL),
            )?;
            Some((Target::Event(e), lNetworkEvents))
        };
        record(self.stack.with_quiet(|core| core.fd_register(id, target)))
    }

    /// `WSAEnumNetworkEvents` (§1.6.4): copies and clears the socket's record and, if
    /// `hEventObject` is not 0, resets that event — all at once, so an event that occurs
    /// afterwards signals again. On failure nothing is cleared or reset.
    pub fn WSAEnumNetworkEvents(
        &self,
        s: super::SOCKET,
        hEventObject: WSAEVENT,
        lpNetworkEvents: Option<&mut WSANETWORKEVENTS>,
    ) -> Result<(), WsaError> {
        let id = record(self.check(s))?;
        let Some(out) = lpNetworkEvents else {
            return record(Err(WsaError::WSAEFAULT));
        };
        let reset = if hEventObject == 0 {
            None
        } else {
            Some(record(
                self.event_ref(hEventObject)
                    .map_err(|_| WsaError::WSAEINVAL),
            )?)
        };
        let got = record(
            self.stack
                .with_quiet(|core| core.take_network_events(id, reset.as_ref())),
        )?;
        *out = WSANETWORKEVENTS {
            lNetworkEvents: got.events,
            iErrorCode: got.errors,
        };
        Ok(())
    }

    /// `WSAAsyncSelect` (§1.6.3): posts `wMsg` to the window `hWnd` once per occurring event of
    /// `lEvent` (`wParam` = `s`, the descriptor registered with, a duplicate too; `lParam` =
    /// `WSAMAKESELECTREPLY(event, error)`),
    /// replacing any earlier `WSAAsyncSelect` or `WSAEventSelect`; `lEvent = 0` cancels (messages
    /// already queued stay). The socket becomes non-blocking in every case; an `hWnd` that is
    /// not a window is `WSAEINVAL`.
    pub fn WSAAsyncSelect(
        &self,
        s: super::SOCKET,
        hWnd: HWND,
        wMsg: u32,
        lEvent: i32,
    ) -> Result<(), WsaError> {
        let id = record(self.check(s))?;
        if lEvent & !FD_ALL_EVENTS != 0 {
            return record(Err(WsaError::WSAEINVAL));
        }
        let sink = windows().get(&hWnd).cloned();
        let target = match (lEvent, sink) {
            (0, _) => None,
            (_, None) => return record(Err(WsaError::WSAEINVAL)),
            (_, Some(sink)) => Some((
                Target::Window {
                    hwnd: hWnd,
                    msg: wMsg,
                    sink: record(relay(sink, s, id))?,
                },
                lEvent,
            )),
        };
        record(self.stack.with_quiet(|core| core.fd_register(id, target)))
    }

    /// Re-enables `events` of `s`'s registration (the re-enabling calls of §1.6.5).
    /// `s` is a descriptor: a duplicate (`WSADuplicateSocket`) names its engine socket through
    /// the session, as [`Winsock::check`] resolves it; a closed descriptor re-arms nothing.
    pub(crate) fn rearm(&self, s: super::SOCKET, events: i32) {
        if !self.stack.any_watched() {
            return;
        }
        let Some(id) = self.session().sockets.get(&s).copied() else {
            return;
        };
        self.stack.with_quiet(|core| core.fd_arm(id, events));
    }
}

/// The sink a `WSAAsyncSelect` registration made through descriptor `s` of engine socket `id`
/// posts to, so that `wParam` is `s`, the descriptor the application registered with
/// (CHECKLIST §1.6.3; §1.12 for duplicates). The engine posts its socket id, which is the
/// descriptor of a socket's first descriptor (`window` itself); a duplicated descriptor gets a
/// relay thread that rewrites `wParam` and forwards to `window`, in order. The relay ends when
/// the registration is dropped (replaced, cancelled, or its socket closed) or the window is
/// destroyed. Messages it carries may trail ones posted directly by a later registration made
/// through another descriptor of the same socket.
fn relay(
    window: Sender<MSG>,
    s: super::SOCKET,
    id: crate::engine::SocketId,
) -> Result<Sender<MSG>, WsaError> {
    if s == id as super::SOCKET {
        return Ok(window);
    }
    let (tx, rx) = channel::<MSG>();
    std::thread::Builder::new()
        .name("ws2-async-select".into())
        .spawn(move || {
            for m in rx {
                let m = MSG { wParam: s, ..m };
                if window.send(m).is_err() {
                    break;
                }
            }
        })
        .map_err(|_| WsaError::WSAENOBUFS)?;
    Ok(tx)
}
