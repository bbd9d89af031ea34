//! `WSAAsyncGetHostByName`/`ByAddr`, `WSAAsyncGetServByName`/`ByPort`,
//! `WSAAsyncGetProtoByName`/`ByNumber` and `WSACancelAsyncRequest` (CHECKLIST §1.17.2;
//! Part 3 #1). See the module docs of `resolve` for the decisions.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;

use super::db::{self, HOSTENT, PROTOENT, SERVENT};
use super::{Cancel, MAX_ASYNC_REQUESTS};
use crate::error::WsaError;
use crate::notify::fd::{HWND, MSG};
use crate::winsock::types::AF_INET;
use crate::winsock::{record, Winsock};

/// `HANDLE` of an asynchronous lookup; 0 is never a valid one.
pub type HANDLE = usize;

/// `WSAMAKEASYNCREPLY`: the buffer length in the low word, the error in the high word.
pub const fn WSAMAKEASYNCREPLY(buflen: u16, error: u16) -> u32 {
    (error as u32) << 16 | buflen as u32
}

/// `WSAGETASYNCBUFLEN`: the low word of a lookup's `lParam` (with `WSAENOBUFS`: the size
/// needed).
pub const fn WSAGETASYNCBUFLEN(lParam: u32) -> u16 {
    lParam as u16
}

/// `WSAGETASYNCERROR`: the high word of a lookup's `lParam` (0: success).
pub const fn WSAGETASYNCERROR(lParam: u32) -> u16 {
    (lParam >> 16) as u16
}

/// The caller's `buf`/`buflen` of a `WSAAsyncGetXByY` call: a shared byte buffer the lookup
/// fills before it posts its message (the structure plus everything it points to, pointers as
/// offsets from the buffer's start: [`HOSTENT::to_blob`]).
#[derive(Debug, Clone)]
pub struct AsyncBuffer(Arc<Mutex<Vec<u8>>>);

impl AsyncBuffer {
    /// A zeroed buffer of `buflen` bytes ([`super::MAXGETHOSTSTRUCT`] is the recommended size).
    pub fn new(buflen: usize) -> AsyncBuffer {
        AsyncBuffer(Arc::new(Mutex::new(vec![0; buflen])))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<u8>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// `buflen`.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether `buflen` is 0.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A copy of the bytes.
    pub fn to_vec(&self) -> Vec<u8> {
        self.lock().clone()
    }

    /// The `hostent` a host lookup left in the buffer.
    pub fn hostent(&self) -> Option<HOSTENT> {
        HOSTENT::from_blob(&self.lock())
    }

    /// The `servent` a service lookup left in the buffer.
    pub fn servent(&self) -> Option<SERVENT> {
        SERVENT::from_blob(&self.lock())
    }

    /// The `protoent` a protocol lookup left in the buffer.
    pub fn protoent(&self) -> Option<PROTOENT> {
        PROTOENT::from_blob(&self.lock())
    }
}

/// One asynchronous request of an application.
#[derive(Debug)]
pub(crate) enum Request {
    /// Running; cancelling sets the flag and aborts a DNS wait.
    Pending(Arc<Cancel>),
    /// Completed (message posted) or cancelled.
    Finished,
}

impl Request {
    /// Marks a pending request finished; its canceller, if it was pending.
    pub(crate) fn cancel_pending(&mut self) -> Option<Arc<Cancel>> {
        match std::mem::replace(self, Request::Finished) {
            Request::Pending(c) => Some(c),
            Request::Finished => None,
        }
    }
}

static NEXT_HANDLE: AtomicUsize = AtomicUsize::new(1);

type Work = Box<dyn FnOnce(&Winsock, &Cancel) -> Result<Vec<u8>, WsaError> + Send>;

impl Winsock {
    /// Starts `work` on its own thread; its blob (or error) is delivered into `buf` and
    /// announced to `hWnd` unless the request is cancelled first.
    fn start_async(
        &self,
        hWnd: HWND,
        wMsg: u32,
        buf: &AsyncBuffer,
        work: Work,
    ) -> Result<HANDLE, WsaError> {
        record(self.started())?;
        let sink = record(
            crate::winsock::events::windows()
                .get(&hWnd)
                .cloned()
                .ok_or(WsaError::WSAEINVAL),
        )?;
        let state = self.resolver();
        let cancel = Arc::new(Cancel::default());
        let handle = {
            let mut inner = state.lock();
            let pending = inner
                .requests
                .values()
                .filter(|r| matches!(r, Request::Pending(_)))
                .count();
            if pending >= MAX_ASYNC_REQUESTS {
                return record(Err(WsaError::WSAEWOULDBLOCK));
            }
            let h = NEXT_HANDLE.fetch_add(1, Ordering::Relaxed);
            inner.requests.insert(h, Request::Pending(cancel.clone()));
            h
        };
        let ws = self.clone();
        let buf = buf.clone();
        let worker_state = state.clone();
        let spawned = thread::Builder::new()
            .name(format!("ws2-async-lookup-{handle}"))
            .spawn(move || {
                let result = work(&ws, &cancel);
                let mut inner = worker_state.lock();
                let Some(r @ Request::Pending(_)) = inner.requests.get_mut(&handle) else {
                    return; // cancelled: no message, ever (CHECKLIST 541)
                };
                *r = Request::Finished;
                let lparam = match result {
                    Ok(blob) => {
                        let mut b = buf.lock();
                        if blob.len() > b.len() {
                            let needed = blob.len().min(usize::from(u16::MAX)) as u16;
                            WSAMAKEASYNCREPLY(needed, WsaError::WSAENOBUFS.0 as u16)
                        } else {
                            b[..blob.len()].copy_from_slice(&blob);
                            WSAMAKEASYNCREPLY(blob.len() as u16, 0)
                        }
                    }
                    Err(e) => WSAMAKEASYNCREPLY(0, e.0 as u16),
                };
                let _ = sink.send(MSG {
                    hwnd: hWnd,
                    message: wMsg,
                    wParam: handle,
                    lParam: lparam,
                });
            });
        if spawned.is_err() {
            state.lock().requests.remove(&handle);
            return record(Err(WsaError::WSAEWOULDBLOCK));
        }
        Ok(handle)
    }

    /// `WSAAsyncGetHostByName` (CHECKLIST §1.17.2): a nonzero handle at once; later `wMsg`
    /// to `hWnd` with `wParam` = the handle and `lParam` = `WSAMAKEASYNCREPLY(len, error)`.
    pub fn WSAAsyncGetHostByName(
        &self,
        hWnd: HWND,
        wMsg: u32,
        name: &str,
        buf: &AsyncBuffer,
    ) -> Result<HANDLE, WsaError> {
        let name = name.to_string();
        self.start_async(
            hWnd,
            wMsg,
            buf,
            Box::new(move |ws, c| ws.lookup_host(&name, Some(c)).map(|h| h.to_blob())),
        )
    }

    /// `WSAAsyncGetHostByAddr` (CHECKLIST §1.17.2). A `type` other than `AF_INET`
    /// (`WSAEAFNOSUPPORT`) or an `addr` shorter than `len` or 4 (`WSAEFAULT`) fails the call.
    pub fn WSAAsyncGetHostByAddr(
        &self,
        hWnd: HWND,
        wMsg: u32,
        addr: &[u8],
        len: i32,
        r#type: i32,
        buf: &AsyncBuffer,
    ) -> Result<HANDLE, WsaError> {
        record(self.started())?;
        if r#type != AF_INET {
            return record(Err(WsaError::WSAEAFNOSUPPORT));
        }
        if len < 4 || addr.len() < len as usize {
            return record(Err(WsaError::WSAEFAULT));
        }
        let a = [addr[0], addr[1], addr[2], addr[3]];
        self.start_async(
            hWnd,
            wMsg,
            buf,
            Box::new(move |ws, c| ws.lookup_addr(a, Some(c)).map(|h| h.to_blob())),
        )
    }

    /// `WSAAsyncGetServByName` (CHECKLIST §1.17.2).
    pub fn WSAAsyncGetServByName(
        &self,
        hWnd: HWND,
        wMsg: u32,
        name: &str,
        proto: Option<&str>,
        buf: &AsyncBuffer,
    ) -> Result<HANDLE, WsaError> {
        let (name, proto) = (name.to_string(), proto.map(str::to_string));
        self.start_async(
            hWnd,
            wMsg,
            buf,
            Box::new(move |_, _| {
                db::service_by_name(&name, proto.as_deref())
                    .map(|s| s.to_blob())
                    .ok_or(WsaError::WSAHOST_NOT_FOUND)
            }),
        )
    }

    /// `WSAAsyncGetServByPort` (CHECKLIST §1.17.2): `port` in network order.
    pub fn WSAAsyncGetServByPort(
        &self,
        hWnd: HWND,
        wMsg: u32,
        port: u16,
        proto: Option<&str>,
        buf: &AsyncBuffer,
    ) -> Result<HANDLE, WsaError> {
        let proto = proto.map(str::to_string);
        self.start_async(
            hWnd,
            wMsg,
            buf,
            Box::new(move |_, _| {
                db::service_by_port(port, proto.as_deref())
                    .map(|s| s.to_blob())
                    .ok_or(WsaError::WSAHOST_NOT_FOUND)
            }),
        )
    }

    /// `WSAAsyncGetProtoByName` (CHECKLIST §1.17.2).
    pub fn WSAAsyncGetProtoByName(
        &self,
        hWnd: HWND,
        wMsg: u32,
        name: &str,
        buf: &AsyncBuffer,
    ) -> Result<HANDLE, WsaError> {
        let name = name.to_string();
        self.start_async(
            hWnd,
            wMsg,
            buf,
            Box::new(move |_, _| {
                db::protocol_by_name(&name)
                    .map(|p| p.to_blob())
                    .ok_or(WsaError::WSAHOST_NOT_FOUND)
            }),
        )
    }

    /// `WSAAsyncGetProtoByNumber` (CHECKLIST §1.17.2).
    pub fn WSAAsyncGetProtoByNumber(
        &self,
        hWnd: HWND,
        wMsg: u32,
        number: i32,
        buf: &AsyncBuffer,
    ) -> Result<HANDLE, WsaError> {
        self.start_async(
            hWnd,
            wMsg,
            buf,
            Box::new(move |_, _| {
                db::protocol_by_number(number)
                    .map(|p| p.to_blob())
                    .ok_or(WsaError::WSAHOST_NOT_FOUND)
            }),
        )
    }

    /// `WSACancelAsyncRequest` (CHECKLIST §1.17.2): a pending request ends without a message;
    /// one that completed (message queued or consumed) or was cancelled is `WSAEALREADY`; 0 or
    /// a handle never returned is `WSAEINVAL`.
    pub fn WSACancelAsyncRequest(&self, hAsyncTaskHandle: HANDLE) -> Result<(), WsaError> {
        record(self.started())?;
        let state = self.resolver();
        let cancel = {
            let mut inner = state.lock();
            let Some(r) = inner.requests.get_mut(&hAsyncTaskHandle) else {
                return record(Err(WsaError::WSAEINVAL));
            };
            match r.cancel_pending() {
                Some(c) => c,
                None => return record(Err(WsaError::WSAEALREADY)),
            }
        };
        cancel.cancel(self);
        Ok(())
    }
}
