//! The Winsock face: the Windows Sockets 2 functions, constants and error codes, exactly.
//!
//! Read first: CHECKLIST Part 1 (the function entries cited on each method) and Part 3 #6: a
//! [`Winsock`] is one application ("task") using one [`Stack`]; its methods carry the spec's
//! names (`WSAStartup`, `socket`, `bind`, …). Each returns `Result<_, WsaError>` and, on failure,
//! also sets the calling thread's last error for [`WSAGetLastError`] — except `WSAStartup`, which
//! returns its code directly, as the spec says.
//!
//! Pointers become references: a NULL pointer is `None`, a value-result length is `&mut i32`,
//! `struct sockaddr` is [`SOCKADDR_IN`] (the provider's only family) with an explicit `namelen`,
//! so the spec's length and family checks keep their error codes. Buffers are slices (their
//! length is the spec's `len`).
//!
//! Blocking calls wait without holding the stack, and end with `WSAEINTR` when another thread
//! closes their socket (D-29).
//!
//! # Index
//! Where each spec function the face implements lives (methods of [`Winsock`] unless free
//! functions; Win32 calls the face maps, such as `SleepEx`, included). Calls reach the engine
//! only through its API (`engine/api/`, one method per operation).
//!
//! | Function | File |
//! |---|---|
//! | `accept` | `sockets.rs` |
//! | `AcceptEx` | `mswsock.rs` |
//! | `bind` | `sockets.rs` |
//! | `closesocket` | `sockets.rs` |
//! | `connect` | `sockets.rs` |
//! | `EnumProtocols` | `obsolete.rs` |
//! | `FD_CLR` | `types.rs` |
//! | `FD_ISSET` | `types.rs` |
//! | `FD_SET` | `types.rs` |
//! | `FD_ZERO` | `types.rs` |
//! | `GetAcceptExSockaddrs` | `mswsock.rs` |
//! | `GetAddressByName` | `obsolete.rs` |
//! | `gethostbyaddr` | `resolve/getxbyy.rs` |
//! | `gethostbyname` | `resolve/getxbyy.rs` |
//! | `gethostname` | `resolve/getxbyy.rs` |
//! | GetMessage / PeekMessage (`MessageQueue`) | `events.rs` |
//! | `GetNameByType` | `obsolete.rs` |
//! | `getpeername` | `sockets.rs` |
//! | `getprotobyname` | `resolve/getxbyy.rs` |
//! | `getprotobynumber` | `resolve/getxbyy.rs` |
//! | `getservbyname` | `resolve/getxbyy.rs` |
//! | `getservbyport` | `resolve/getxbyy.rs` |
//! | `GetService` | `obsolete.rs` |
//! | `getsockname` | `sockets.rs` |
//! | `getsockopt` | `options.rs` |
//! | `GetTypeByName` | `obsolete.rs` |
//! | `htonl` | `byteorder.rs` |
//! | `htons` | `byteorder.rs` |
//! | `inet_addr` | `resolve/getxbyy.rs` |
//! | `inet_ntoa` | `resolve/getxbyy.rs` |
//! | `ioctlsocket` | `options.rs` |
//! | `IS_SVCID_NETWARE` | `resolve/rnr.rs` |
//! | `IS_SVCID_TCP` | `resolve/rnr.rs` |
//! | `IS_SVCID_UDP` | `resolve/rnr.rs` |
//! | `listen` | `sockets.rs` |
//! | `ntohl` | `byteorder.rs` |
//! | `ntohs` | `byteorder.rs` |
//! | `PORT_FROM_SVCID_TCP` | `resolve/rnr.rs` |
//! | `PORT_FROM_SVCID_UDP` | `resolve/rnr.rs` |
//! | `recv` | `sockets.rs` |
//! | `recvfrom` | `sockets.rs` |
//! | `SAPID_FROM_SVCID_NETWARE` | `resolve/rnr.rs` |
//! | `select` | `select.rs` |
//! | `send` | `sockets.rs` |
//! | `sendto` | `sockets.rs` |
//! | `SetService` | `obsolete.rs` |
//! | `setsockopt` | `options.rs` |
//! | `shutdown` | `sockets.rs` |
//! | `SleepEx` | `events.rs` |
//! | `socket` | `sockets.rs` |
//! | `TransmitFile` | `mswsock.rs` |
//! | `WSAAccept` | `accept.rs` |
//! | `WSAAddressToString` | `resolve/getxbyy.rs` |
//! | `WSAAsyncGetHostByAddr` | `resolve/asyncget.rs` |
//! | `WSAAsyncGetHostByName` | `resolve/asyncget.rs` |
//! | `WSAAsyncGetProtoByName` | `resolve/asyncget.rs` |
//! | `WSAAsyncGetProtoByNumber` | `resolve/asyncget.rs` |
//! | `WSAAsyncGetServByName` | `resolve/asyncget.rs` |
//! | `WSAAsyncGetServByPort` | `resolve/asyncget.rs` |
//! | `WSAAsyncSelect` | `events.rs` |
//! | `WSACancelAsyncRequest` | `resolve/asyncget.rs` |
//! | `WSACancelBlockingCall` | `hooks.rs` |
//! | `WSACleanup` | `mod.rs` |
//! | `WSACloseEvent` | `events.rs` |
//! | `WSAConnect` | `qos.rs` |
//! | `WSACreateEvent` | `events.rs` |
//! | `WSADuplicateSocket` | `sharing.rs` |
//! | `WSAEnumNameSpaceProviders` | `resolve/rnr.rs` |
//! | `WSAEnumNetworkEvents` | `events.rs` |
//! | `WSAEnumProtocols` | `catalog.rs` |
//! | `WSAEventSelect` | `events.rs` |
//! | `WSAGetLastError` | `mod.rs` |
//! | `WSAGetOverlappedResult` | `overlapped.rs` |
//! | `WSAGetQOSByName` | `qos.rs` |
//! | `WSAGetServiceClassInfo` | `resolve/rnr.rs` |
//! | `WSAGetServiceClassNameByServiceClassId` | `resolve/rnr.rs` |
//! | `WSAHtonl` | `byteorder.rs` |
//! | `WSAHtons` | `byteorder.rs` |
//! | `WSAInstallServiceClass` | `resolve/rnr.rs` |
//! | `WSAIoctl` | `overlapped.rs` |
//! | `WSAIsBlocking` | `hooks.rs` |
//! | `WSAJoinLeaf` | `multicast.rs` |
//! | `WSALookupServiceBegin` | `resolve/rnr.rs` |
//! | `WSALookupServiceEnd` | `resolve/rnr.rs` |
//! | `WSALookupServiceNext` | `resolve/rnr.rs` |
//! | `WSANtohl` | `byteorder.rs` |
//! | `WSANtohs` | `byteorder.rs` |
//! | `WSARecv` | `overlapped.rs` |
//! | `WSARecvDisconnect` | `rmp.rs` |
//! | `WSARecvEx` | `mswsock.rs` |
//! | `WSARecvFrom` | `overlapped.rs` |
//! | `WSARemoveServiceClass` | `resolve/rnr.rs` |
//! | `WSAResetEvent` | `events.rs` |
//! | `WSASend` | `overlapped.rs` |
//! | `WSASendDisconnect` | `rmp.rs` |
//! | `WSASendTo` | `overlapped.rs` |
//! | `WSASetBlockingHook` | `hooks.rs` |
//! | `WSASetEvent` | `events.rs` |
//! | `WSASetLastError` | `mod.rs` |
//! | `WSASetService` | `resolve/rnr.rs` |
//! | `WSASocket` | `sockets.rs` |
//! | `WSAStartup` | `mod.rs` |
//! | `WSAStringToAddress` | `resolve/getxbyy.rs` |
//! | `WSAUnhookBlockingHook` | `hooks.rs` |
//! | `WSAWaitForMultipleEvents` | `events.rs` |
#![allow(non_snake_case)]

mod accept;
mod byteorder;
mod catalog;
mod events;
mod hooks;
mod mswsock;
mod multicast;
mod names;
mod obsolete;
mod options;
mod overlapped;
mod qos;
mod resolve;
mod rmp;
mod select;
mod sharing;
mod sockets;
mod types;

use std::cell::Cell;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::engine::SocketId;
use crate::notify::event::EventTable;
use crate::Stack;

pub use crate::error::WsaError;
pub use crate::notify::fd::{
    FD_ACCEPT, FD_ACCEPT_BIT, FD_ADDRESS_LIST_CHANGE, FD_ADDRESS_LIST_CHANGE_BIT, FD_ALL_EVENTS,
    FD_CLOSE, FD_CLOSE_BIT, FD_CONNECT, FD_CONNECT_BIT, FD_GROUP_QOS, FD_GROUP_QOS_BIT,
    FD_MAX_EVENTS, FD_OOB, FD_OOB_BIT, FD_QOS, FD_QOS_BIT, FD_READ, FD_READ_BIT,
    FD_ROUTING_INTERFACE_CHANGE, FD_ROUTING_INTERFACE_CHANGE_BIT, FD_WRITE, FD_WRITE_BIT, HWND,
    MSG, WSAGETSELECTERROR, WSAGETSELECTEVENT, WSAMAKESELECTREPLY,
};
pub use crate::notify::overlapped::{LPWSAOVERLAPPED_COMPLETION_ROUTINE, WSABUF, WSAOVERLAPPED};
pub use accept::{CF_ACCEPT, CF_DEFER, CF_REJECT, LPCONDITIONPROC};
pub use byteorder::{htonl, htons, ntohl, ntohs};
pub use catalog::{
    GUID, WSAPROTOCOLCHAIN, WSAPROTOCOL_INFO, WSAPROTOCOL_INFOA, WSAPROTOCOL_INFO_LEN,
};
pub use events::*;
pub use hooks::BlockingHook;
pub use mswsock::*;
pub use multicast::*;
pub use obsolete::*;
pub use overlapped::{
    ExtensionFunction, SIO_ASSOCIATE_HANDLE, SIO_ENABLE_CIRCULAR_QUEUEING, SIO_FIND_ROUTE,
    SIO_GET_BROADCAST_ADDRESS, SIO_GET_EXTENSION_FUNCTION_POINTER, SIO_TRANSLATE_HANDLE,
    WSAID_ACCEPTEX, WSAID_GETACCEPTEXSOCKADDRS, WSAID_TRANSMITFILE,
};
pub use qos::*;
pub use resolve::*;
pub use rmp::{IPPROTO_RMP, IPPROTO_RMP_RELAY};
pub use sharing::{PVD_CONFIG_LEN, PVD_CONFIG_MAGIC, PVD_CONFIG_VERSION};
pub use types::*;

thread_local! {
    static LAST_ERROR: Cell<i32> = const { Cell::new(0) };
}

/// `WSAGetLastError`: the calling thread's last error (CHECKLIST §1.1). A successful call does
/// not reset it.
pub fn WSAGetLastError() -> i32 {
    LAST_ERROR.with(|e| e.get())
}

/// `WSASetLastError`: sets the calling thread's last error; a later failing call overrides it.
pub fn WSASetLastError(iError: i32) {
    LAST_ERROR.with(|e| e.set(iError));
}

/// Highest version this implementation negotiates (D-24).
pub const HIGHEST_VERSION: (u8, u8) = (2, 2);
/// Lowest version it accepts.
pub const LOWEST_VERSION: (u8, u8) = (1, 0);

#[derive(Debug, Default)]
struct Session {
    startups: u32,
    /// Negotiated (major, minor) of the latest successful `WSAStartup`.
    version: (u8, u8),
    /// Live descriptors and the engine socket each names. A socket's first descriptor has the
    /// engine id's value; `WSADuplicateSocket` adds more ([`sharing`]).
    sockets: HashMap<SOCKET, SocketId>,
    /// Sharing state: catalog entries, one-shot tokens, the next duplicate descriptor.
    sharing: sharing::State,
    resolve: resolve::State,
}

/// One Winsock application on a [`Stack`]; clones share it.
///
/// # Examples
/// ```
/// use ws2_stack::winsock::*;
/// use ws2_stack::{Stack, StackConfig};
/// use ws2_tap::VirtualSwitch;
///
/// let switch = VirtualSwitch::new(7);
/// let ws = Winsock::new(Stack::new(StackConfig::new("10.0.0.1/24".parse()?), switch.port())?);
/// let mut data = WSADATA::default();
/// assert_eq!(ws.WSAStartup(MAKEWORD(2, 2), Some(&mut data)), 0);
/// let s = ws.socket(AF_INET, SOCK_DGRAM, 0)?;
/// let name = SOCKADDR_IN::new("127.0.0.1:0".parse()?);
/// ws.bind(s, Some(&name), SOCKADDR_IN_LEN)?;
/// ws.closesocket(s)?;
/// ws.WSACleanup()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
pub struct Winsock {
    stack: Stack,
    session: Arc<Mutex<Session>>,
    events: Arc<EventTable>,
}

/// Sets the thread's last error when `r` failed, and passes `r` on.
fn record<T>(r: Result<T, WsaError>) -> Result<T, WsaError> {
    if let Err(e) = &r {
        WSASetLastError(e.0);
    }
    r
}

impl Winsock {
    /// A new application on `stack`; nothing works until [`Winsock::WSAStartup`].
    pub fn new(stack: Stack) -> Winsock {
        Winsock {
            stack,
            session: Arc::default(),
            events: EventTable::new(),
        }
    }

    /// The stack this application uses.
    pub fn stack(&self) -> &Stack {
        &self.stack
    }

    fn session(&self) -> MutexGuard<'_, Session> {
        self.session.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The negotiated version as (major, minor), if started.
    pub fn version(&self) -> Option<(u8, u8)> {
        let s = self.session();
        (s.startups > 0).then_some(s.version)
    }

    /// Whether the session negotiated a 1.x version (the 1.1 compatibility mode, D-2).
    fn v1_mode(&self) -> bool {
        self.session().version.0 < 2
    }

    /// This application's event objects.
    fn events(&self) -> Arc<EventTable> {
        self.events.clone()
    }

    /// Checks initialisation and, in 1.1 mode, that no blocking call is in progress on this
    /// thread (a call from the blocking hook is `WSAEINPROGRESS`).
    fn started(&self) -> Result<(), WsaError> {
        if self.session().startups == 0 {
            return Err(WsaError::WSANOTINITIALISED);
        }
        if hooks::in_blocking_call() {
            return Err(WsaError::WSAEINPROGRESS);
        }
        Ok(())
    }

    /// Checks initialisation and that `s` is one of this application's live sockets.
    fn check(&self, s: SOCKET) -> Result<SocketId, WsaError> {
        self.started()?;
        let session = self.session();
        match session.sockets.get(&s) {
            Some(&id) if s != INVALID_SOCKET => Ok(id),
            _ => Err(WsaError::WSAENOTSOCK),
        }
    }

    /// Makes engine socket `id` one of this application's sockets; its descriptor is its id.
    fn adopt(&self, id: SocketId) -> SOCKET {
        self.session().sockets.insert(id as SOCKET, id);
        id as SOCKET
    }

    /// `WSAStartup` (CHECKLIST §1.1): negotiates a version between 1.0 and 2.2 and returns 0 or
    /// the error code itself (`WSAVERNOTSUPPORTED`, `WSAEFAULT`); it never sets the last error.
    pub fn WSAStartup(&self, wVersionRequested: u16, lpWSAData: Option<&mut WSADATA>) -> i32 {
        let requested = (LOBYTE(wVersionRequested), HIBYTE(wVersionRequested));
        if requested < LOWEST_VERSION {
            return WsaError::WSAVERNOTSUPPORTED.0;
        }
        let Some(data) = lpWSAData else {
            return WsaError::WSAEFAULT.0;
        };
        if hooks::in_blocking_call() {
            // From a 1.1 blocking hook (CHECKLIST §1.7.1, 338).
            return WsaError::WSAEINPROGRESS.0;
        }
        let version = requested.min(HIGHEST_VERSION);
        *data = WSADATA {
            wVersion: MAKEWORD(version.0, version.1),
            wHighVersion: MAKEWORD(HIGHEST_VERSION.0, HIGHEST_VERSION.1),
            szDescription: "ws2 userspace Windows Sockets 2 on smoltcp".to_string(),
            szSystemStatus: "Running".to_string(),
            iMaxSockets: self.stack.config().max_sockets.min(u16::MAX as usize) as u16,
            iMaxUdpDg: crate::engine::MAX_UDP_PAYLOAD as u16,
            lpVendorInfo: 0,
        };
        let mut session = self.session();
        session.startups += 1;
        session.version = version;
        0
    }

    /// `WSACleanup` (CHECKLIST §1.1): undoes one `WSAStartup`; the last one resets and frees every
    /// socket of this application (peers see a reset).
    pub fn WSACleanup(&self) -> Result<(), WsaError> {
        record(self.started())?;
        let ids: Vec<SocketId> = {
            let mut session = self.session();
            session.startups -= 1;
            if session.startups > 0 {
                return Ok(());
            }
            session.sharing = sharing::State::default();
            let ids: HashSet<SocketId> = session.sockets.drain().map(|(_, id)| id).collect();
            ids.into_iter().collect()
        };
        hooks::clear_hook();
        self.resolve_cleanup();
        self.stack.with(|core| {
            for id in ids {
                core.remove(id, true);
            }
        });
        Ok(())
    }

    /// `WSAGetLastError`, as a method for symmetry with the other calls.
    pub fn WSAGetLastError(&self) -> i32 {
        WSAGetLastError()
    }

    /// `WSASetLastError`: fails only with `WSANOTINITIALISED`.
    pub fn WSASetLastError(&self, iError: i32) -> Result<(), WsaError> {
        record(self.started())?;
        WSASetLastError(iError);
        Ok(())
    }
}
