//! Name resolution (CHECKLIST §1.17; Part 2 group X, 351, 13; Part 3 #1, #12, #16, #17; D-33,
//! D-37): the 1.1 database functions, `inet_addr`/`inet_ntoa`, `WSAStringToAddress`/
//! `WSAAddressToString`, the `WSAAsyncGetXByY` calls with `WSACancelAsyncRequest`, and the
//! protocol-independent RnR calls.
//!
//! Read first: CHECKLIST §1.17 and the getXbyY → RnR mapping at its end; RFC 1035 for the DNS
//! client in `resolve/dns.rs`.
//!
//! Decisions (one line each, for docs/decisions.md):
//! - Results are owned values (D-33): `HOSTENT`/`SERVENT`/`PROTOENT` are Rust structs returned
//!   by value. The spec's "one copy per thread" is kept as well: each thread's last result of
//!   each kind stays readable through [`thread_hostent`], [`thread_servent`],
//!   [`thread_protoent`] and [`thread_inet_ntoa`] until that thread's next call of that kind;
//!   other threads never overwrite it.
//! - Data sources and order (D-37): names added with [`Winsock::add_host`] and the stack's own
//!   name, then the tables embedded from `stack/data/`, then `/etc/hosts`, `/etc/services`,
//!   `/etc/protocols` when present (read once per process; bad lines skipped), then DNS for
//!   host names and addresses if a server is set. Name matching ignores ASCII case everywhere
//!   (hosts, services, protocols, RnR query strings).
//! - Host name: `StackConfig` has none, so `gethostname` answers `ws2-<first address with
//!   dashes>` (`ws2-10-0-0-1`; `ws2-localhost` with no address), and that name resolves to every
//!   configured address of the stack (behaviours 523, 525).
//! - Dotted strings are never resolved by `gethostbyname` or sent to DNS: any name made only of
//!   digits and dots is `WSAHOST_NOT_FOUND` (522). `""` is the local host, as on Windows.
//! - DNS: [`Winsock::set_dns_server`] (per application; no `StackConfig` field) enables it; the
//!   query goes over the stack's own UDP through this Winsock face (a socket of the application,
//!   closed before the call returns). Default 2 tries of 2 s ([`Winsock::set_dns_timeouts`]).
//!   Errors: NXDOMAIN → `WSAHOST_NOT_FOUND` (authoritative or not, as BSD resolvers do); NOERROR
//!   without an address → `WSANO_DATA`; SERVFAIL or no answer at all → `WSATRY_AGAIN`; FORMERR,
//!   NOTIMP, REFUSED, TC set (no TCP fallback), a malformed answer with our id, or only
//!   unusable datagrams from the server until the last try → `WSANO_RECOVERY`. Datagrams from
//!   other addresses are ignored. A blocking lookup is a blocking call: in 1.1 mode it runs the
//!   blocking hook and `WSACancelBlockingCall` ends it with `WSAEINTR` (351).
//! - Async lookups run on a thread each (at most [`MAX_ASYNC_REQUESTS`] pending, then
//!   `WSAEWOULDBLOCK`); the completion is posted to the [`MessageQueue`] whose `hwnd` was given
//!   (not a window: `WSAEINVAL`, as `WSAAsyncSelect`). The buffer is an [`AsyncBuffer`] and gets
//!   the blob layout of [`HOSTENT::to_blob`] (offsets, not pointers). Cancelling and completing
//!   take one lock, so a successful cancel guarantees no message; the final `WSACleanup`
//!   cancels every pending request (13).
//! - RnR: one name-space provider ([`NSPROVIDER_ID`], `NS_DNS`) serves `NS_ALL`, `NS_DNS`,
//!   `NS_TCPIP_HOSTS` and `NS_TCPIP_LOCAL`. It has no containers (`LUP_CONTAINERS` →
//!   `WSANO_DATA`). `WSASetService` registers into an in-process registry that behaves as a
//!   dynamic name space (register → discoverable, deregister/delete → not; `SERVICE_MULTIPLE`
//!   adds/deletes single `CSADDR_INFO`s). Service classes live in an in-process registry.
//!   `WSAEACCES` for registrations is a per-application flag
//!   ([`Winsock::set_registration_allowed`]), not an OS privilege (Part 3 #17).
//! - RnR structures are owned Rust values whose `dwNumberOf…` counts are the `Vec` lengths; the
//!   "buffer size" of a result is the size its 32-bit C layout would take
//!   ([`WSAQUERYSET::buffer_len`]), so `WSAEFAULT` with the required size works as specified.
//! - `SVCID_INET_HOSTNAMEBYADDR` is SVCGUID.H's `SVCID_INET_HOSTADDRBYINETSTRING` GUID; the
//!   `SVCID_TCP`/`SVCID_UDP` GUIDs follow SVCGUID.H's template [bg].
//! - The obsolete 1.1 extensions (`GetAddressByName`, `EnumProtocols`, …) are thin layers in `obsolete.rs`.

mod asyncget;
mod db;
pub mod dns;
mod getxbyy;
mod rnr;

use std::collections::HashMap;
use std::net::SocketAddrV4;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

pub use asyncget::*;
pub use db::{parse_hosts, parse_protocols, parse_services, HOSTENT, PROTOENT, SERVENT};
pub use getxbyy::*;
pub use rnr::*;

use super::types::SOCKET;
use super::{WSAGetLastError, WSASetLastError, Winsock};

/// `MAXGETHOSTSTRUCT`: the buffer size recommended for `WSAAsyncGetHostByName`/`ByAddr`.
pub const MAXGETHOSTSTRUCT: usize = 1024;

/// The most `WSAAsyncGetXByY` requests one application may have pending; then
/// `WSAEWOULDBLOCK` ("cannot be scheduled now").
pub const MAX_ASYNC_REQUESTS: usize = 64;

/// Where and how DNS queries go.
#[derive(Debug, Clone, Copy)]
pub(crate) struct DnsConfig {
    pub(crate) server: SocketAddrV4,
    pub(crate) timeout: Duration,
    pub(crate) tries: u32,
}

/// The resolver state of one application (a field of its session).
#[derive(Debug, Default, Clone)]
pub(crate) struct State(Arc<Mutex<Inner>>);

#[derive(Debug, Default)]
pub(crate) struct Inner {
    pub(crate) dns_server: Option<SocketAddrV4>,
    pub(crate) dns_timeout: Option<(Duration, u32)>,
    pub(crate) hosts: Vec<HOSTENT>,
    pub(crate) requests: HashMap<usize, asyncget::Request>,
    pub(crate) lookups: HashMap<usize, Arc<rnr::Lookup>>,
    pub(crate) classes: Vec<WSASERVICECLASSINFO>,
    pub(crate) services: Vec<rnr::Registered>,
    pub(crate) registration_denied: bool,
}

impl State {
    pub(crate) fn lock(&self) -> MutexGuard<'_, Inner> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Inner {
    pub(crate) fn dns(&self) -> Option<DnsConfig> {
        let (timeout, tries) = self.dns_timeout.unwrap_or((Duration::from_secs(2), 2));
        self.dns_server.map(|server| DnsConfig {
            server,
            timeout,
            tries,
        })
    }
}

/// Cancellation of a lookup that may be waiting for DNS: sets a flag and closes the query's
/// socket, which ends its blocking receive with `WSAEINTR` (D-29).
#[derive(Debug, Default)]
pub(crate) struct Cancel {
    flag: AtomicBool,
    sock: Mutex<Option<SOCKET>>,
}

impl Cancel {
    pub(crate) fn cancelled(&self) -> bool {
        self.flag.load(Ordering::SeqCst)
    }

    fn slot(&self) -> MutexGuard<'_, Option<SOCKET>> {
        self.sock.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Remembers the query socket; `false` if the lookup was already cancelled.
    pub(crate) fn arm(&self, s: SOCKET) -> bool {
        let mut slot = self.slot();
        if self.cancelled() {
            return false;
        }
        *slot = Some(s);
        true
    }

    /// Forgets the query socket; whether it was still there (then the caller closes it).
    pub(crate) fn disarm(&self) -> bool {
        self.slot().take().is_some()
    }

    pub(crate) fn cancel(&self, ws: &Winsock) {
        let s = {
            let mut slot = self.slot();
            self.flag.store(true, Ordering::SeqCst);
            slot.take()
        };
        if let Some(s) = s {
            let _ = quietly(|| ws.closesocket(s));
        }
    }
}

/// Runs an internal Winsock call without letting its failure change the thread's last error
/// (a successful resolver call must not, behaviour 16).
pub(crate) fn quietly<T>(f: impl FnOnce() -> T) -> T {
    let saved = WSAGetLastError();
    let r = f();
    WSASetLastError(saved);
    r
}

impl Winsock {
    pub(crate) fn resolver(&self) -> State {
        self.session().resolve.clone()
    }

    /// The final `WSACleanup`: pending async lookups are cancelled without a message (13) and
    /// open RnR lookups end (`WSA_E_CANCELLED` for a blocked `WSALookupServiceNext`).
    pub(super) fn resolve_cleanup(&self) {
        let state = self.resolver();
        let (requests, lookups) = {
            let mut inner = state.lock();
            let requests: Vec<_> = inner
                .requests
                .values_mut()
                .filter_map(|r| r.cancel_pending())
                .collect();
            let lookups: Vec<_> = inner.lookups.drain().map(|(_, l)| l).collect();
            (requests, lookups)
        };
        for c in requests {
            c.cancel(self);
        }
        for l in lookups {
            l.cancel.cancel(self);
        }
    }
}
