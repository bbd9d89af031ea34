//! Protocol-independent name resolution: `WSALookupServiceBegin`/`Next`/`End`,
//! `WSASetService`, the service class registry and `WSAEnumNameSpaceProviders`
//! (CHECKLIST §1.17.3, the getXbyY → RnR mapping, Part 3 #12, #16, #17).
#![allow(non_camel_case_types)]

use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use super::asyncget::HANDLE;
use super::db::{self, HOSTENT};
use super::Cancel;
use crate::error::WsaError;
use crate::winsock::catalog::GUID;
use crate::winsock::types::*;
use crate::winsock::{record, Winsock};

// ---- constants (Appendix D, RnR row) -------------------------------------------------------

/// `NS_ALL`: every name space.
pub const NS_ALL: u32 = 0;
/// `NS_SAP`.
pub const NS_SAP: u32 = 1;
/// `NS_NDS`.
pub const NS_NDS: u32 = 2;
/// `NS_TCPIP_LOCAL`: local names (served by our provider).
pub const NS_TCPIP_LOCAL: u32 = 10;
/// `NS_TCPIP_HOSTS`: the hosts file (served by our provider).
pub const NS_TCPIP_HOSTS: u32 = 11;
/// `NS_DNS`: our provider's name space.
pub const NS_DNS: u32 = 12;
/// `NS_NETBT`.
pub const NS_NETBT: u32 = 13;
/// `LUP_DEEP`.
pub const LUP_DEEP: u32 = 0x0001;
/// `LUP_CONTAINERS`: containers only (we have none: `WSANO_DATA`).
pub const LUP_CONTAINERS: u32 = 0x0002;
/// `LUP_NOCONTAINERS`.
pub const LUP_NOCONTAINERS: u32 = 0x0004;
/// `LUP_NEAREST`.
pub const LUP_NEAREST: u32 = 0x0008;
/// `LUP_RETURN_NAME`.
pub const LUP_RETURN_NAME: u32 = 0x0010;
/// `LUP_RETURN_TYPE`.
pub const LUP_RETURN_TYPE: u32 = 0x0020;
/// `LUP_RETURN_VERSION`.
pub const LUP_RETURN_VERSION: u32 = 0x0040;
/// `LUP_RETURN_COMMENT`.
pub const LUP_RETURN_COMMENT: u32 = 0x0080;
/// `LUP_RETURN_ADDR`.
pub const LUP_RETURN_ADDR: u32 = 0x0100;
/// `LUP_RETURN_BLOB`.
pub const LUP_RETURN_BLOB: u32 = 0x0200;
/// `LUP_RETURN_ALIASES` (the seed's `LUP_RETURN_ALIAS`).
pub const LUP_RETURN_ALIASES: u32 = 0x0400;
/// `LUP_RETURN_ALIAS`, the seed's spelling.
pub const LUP_RETURN_ALIAS: u32 = LUP_RETURN_ALIASES;
/// `LUP_RETURN_QUERY_STRING`.
pub const LUP_RETURN_QUERY_STRING: u32 = 0x0800;
/// `LUP_RETURN_ALL`.
pub const LUP_RETURN_ALL: u32 = 0x0FF0;
/// `LUP_FLUSHCACHE`.
pub const LUP_FLUSHCACHE: u32 = 0x1000;
/// `LUP_FLUSHPREVIOUS`: skip the result that did not fit.
pub const LUP_FLUSHPREVIOUS: u32 = 0x2000;
/// `LUP_RES_SERVICE`.
pub const LUP_RES_SERVICE: u32 = 0x8000;
/// `RESULT_IS_ALIAS`: this result's name is an alias.
pub const RESULT_IS_ALIAS: u32 = 0x0001;
/// `SERVICE_MULTIPLE`: the service has several `CSADDR_INFO`s.
pub const SERVICE_MULTIPLE: u32 = 0x0001;
/// `RNRSERVICE_REGISTER`.
pub const RNRSERVICE_REGISTER: i32 = 0;
/// `RNRSERVICE_DEREGISTER`.
pub const RNRSERVICE_DEREGISTER: i32 = 1;
/// `RNRSERVICE_DELETE`.
pub const RNRSERVICE_DELETE: i32 = 2;
/// `COMP_EQUAL`.
pub const COMP_EQUAL: i32 = 0;
/// `COMP_NOTLESS`.
pub const COMP_NOTLESS: i32 = 1;
/// `sizeof(WSAQUERYSETA)` in the 32-bit layout: `dwSize`'s required value.
pub const WSAQUERYSET_LEN: u32 = 60;

const SVCID_TAIL: [u8; 8] = [0xC0, 0, 0, 0, 0, 0, 0, 0x46];

const fn svcid(data1: u32, data2: u16) -> GUID {
    GUID {
        Data1: data1,
        Data2: data2,
        Data3: 0,
        Data4: SVCID_TAIL,
    }
}

/// `SVCID_HOSTNAME` (SVCGUID.H [bg]): the local host's name and addresses.
pub const SVCID_HOSTNAME: GUID = svcid(0x0002_a800, 0);
/// `SVCID_INET_HOSTADDRBYINETSTRING` [bg]: a host by its dotted address.
pub const SVCID_INET_HOSTADDRBYINETSTRING: GUID = svcid(0x0002_a801, 0);
/// `SVCID_INET_HOSTNAMEBYADDR` (the spec's name for the gethostbyaddr query; same GUID as
/// `SVCID_INET_HOSTADDRBYINETSTRING`).
pub const SVCID_INET_HOSTNAMEBYADDR: GUID = SVCID_INET_HOSTADDRBYINETSTRING;
/// `SVCID_INET_SERVICEBYNAME` [bg]: "ftp/tcp", "21/tcp" or "ftp".
pub const SVCID_INET_SERVICEBYNAME: GUID = svcid(0x0002_a802, 0);
/// `SVCID_INET_HOSTADDRBYNAME` [bg]: a host's addresses by its name.
pub const SVCID_INET_HOSTADDRBYNAME: GUID = svcid(0x0002_a803, 0);

/// `SVCID_TCP(Port)`: the class of the TCP service on `port` (host order).
pub const fn SVCID_TCP(port: u16) -> GUID {
    svcid(0x0009, port)
}
/// `SVCID_UDP(Port)`.
pub const fn SVCID_UDP(port: u16) -> GUID {
    svcid(0x000A, port)
}
/// `SVCID_NETWARE(ObjectType)`.
pub const fn SVCID_NETWARE(sap_id: u16) -> GUID {
    svcid(0x000B << 16 | sap_id as u32, 0)
}
/// `IS_SVCID_TCP`.
pub fn IS_SVCID_TCP(g: &GUID) -> bool {
    g.Data1 == 0x0009 && g.Data3 == 0 && g.Data4 == SVCID_TAIL
}
/// `IS_SVCID_UDP`.
pub fn IS_SVCID_UDP(g: &GUID) -> bool {
    g.Data1 == 0x000A && g.Data3 == 0 && g.Data4 == SVCID_TAIL
}
/// `IS_SVCID_NETWARE`.
pub fn IS_SVCID_NETWARE(g: &GUID) -> bool {
    g.Data1 >> 16 == 0x000B && g.Data2 == 0 && g.Data3 == 0 && g.Data4 == SVCID_TAIL
}
/// `PORT_FROM_SVCID_TCP`.
pub fn PORT_FROM_SVCID_TCP(g: &GUID) -> u16 {
    g.Data2
}
/// `PORT_FROM_SVCID_UDP`.
pub fn PORT_FROM_SVCID_UDP(g: &GUID) -> u16 {
    g.Data2
}
/// `SAPID_FROM_SVCID_NETWARE`.
pub fn SAPID_FROM_SVCID_NETWARE(g: &GUID) -> u16 {
    g.Data1 as u16
}

/// The one name-space provider's id ("ws2 hosts and DNS").
pub const NSPROVIDER_ID: GUID = GUID {
    Data1: 0x7773_3252,
    Data2: 0x4e53,
    Data3: 0x0001,
    Data4: *b"ws2-dns\0",
};

// ---- structures ----------------------------------------------------------------------------

/// `WSAVERSION`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WSAVERSION {
    /// The version.
    pub dwVersion: u32,
    /// `COMP_EQUAL` or `COMP_NOTLESS`.
    pub ecHow: i32,
}

/// `AFPROTOCOLS`: an (address family, protocol) pair.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AFPROTOCOLS {
    /// The family.
    pub iAddressFamily: i32,
    /// The protocol.
    pub iProtocol: i32,
}

/// `SOCKET_ADDRESS`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SOCKET_ADDRESS {
    /// The address.
    pub lpSockaddr: SOCKADDR_IN,
    /// Its length.
    pub iSockaddrLength: i32,
}

/// `CSADDR_INFO`: one complete transport address.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CSADDR_INFO {
    /// The local address (to bind).
    pub LocalAddr: SOCKET_ADDRESS,
    /// The remote address (to connect or send to).
    pub RemoteAddr: SOCKET_ADDRESS,
    /// `SOCK_STREAM`, `SOCK_DGRAM`, …
    pub iSocketType: i32,
    /// `IPPROTO_TCP`, `IPPROTO_UDP`, …
    pub iProtocol: i32,
}

impl CSADDR_INFO {
    /// A remote `addr` of protocol `proto` (TCP or UDP), local any-address.
    pub fn new(addr: SocketAddrV4, proto: i32) -> CSADDR_INFO {
        let sa = |a| SOCKET_ADDRESS {
            lpSockaddr: SOCKADDR_IN::new(a),
            iSockaddrLength: SOCKADDR_IN_LEN,
        };
        CSADDR_INFO {
            LocalAddr: sa(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0)),
            RemoteAddr: sa(addr),
            iSocketType: if proto == IPPROTO_UDP {
                SOCK_DGRAM
            } else {
                SOCK_STREAM
            },
            iProtocol: proto,
        }
    }
}

/// `WSAQUERYSET`, owned: `dwNumberOfProtocols` and `dwNumberOfCsAddrs` are the lengths of
/// `lpafpProtocols` and `lpcsaBuffer`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WSAQUERYSET {
    /// Must be [`WSAQUERYSET_LEN`] ([`Default`] sets it).
    pub dwSize: u32,
    /// The service instance name.
    pub lpszServiceInstanceName: Option<String>,
    /// The service class (required in queries).
    pub lpServiceClassId: Option<GUID>,
    /// The version.
    pub lpVersion: Option<WSAVERSION>,
    /// A comment.
    pub lpszComment: Option<String>,
    /// The name space (`NS_ALL` to ask every one).
    pub dwNameSpace: u32,
    /// Restricts to one provider.
    pub lpNSProviderId: Option<GUID>,
    /// The context.
    pub lpszContext: Option<String>,
    /// Protocol restrictions.
    pub lpafpProtocols: Vec<AFPROTOCOLS>,
    /// A query string; for `SVCID_HOSTNAME`, a service name ("ftp") for full addresses.
    pub lpszQueryString: Option<String>,
    /// Transport addresses.
    pub lpcsaBuffer: Vec<CSADDR_INFO>,
    /// `RESULT_IS_ALIAS` in results.
    pub dwOutputFlags: u32,
    /// The blob (hostent/servent with offsets).
    pub lpBlob: Option<Vec<u8>>,
}

impl Default for WSAQUERYSET {
    fn default() -> Self {
        WSAQUERYSET {
            dwSize: WSAQUERYSET_LEN,
            lpszServiceInstanceName: None,
            lpServiceClassId: None,
            lpVersion: None,
            lpszComment: None,
            dwNameSpace: NS_ALL,
            lpNSProviderId: None,
            lpszContext: None,
            lpafpProtocols: Vec::new(),
            lpszQueryString: None,
            lpcsaBuffer: Vec::new(),
            dwOutputFlags: 0,
            lpBlob: None,
        }
    }
}

fn str_len(s: &Option<String>) -> u32 {
    s.as_ref().map_or(0, |s| s.len() as u32 + 1)
}

impl WSAQUERYSET {
    /// The bytes this set takes in its 32-bit C layout: the structure, then every string,
    /// GUID, array and blob it points to (what `WSALookupServiceNext` needs in
    /// `*lpdwBufferLength`).
    pub fn buffer_len(&self) -> u32 {
        WSAQUERYSET_LEN
            + str_len(&self.lpszServiceInstanceName)
            + str_len(&self.lpszComment)
            + str_len(&self.lpszContext)
            + str_len(&self.lpszQueryString)
            + 16 * u32::from(self.lpServiceClassId.is_some())
            + 16 * u32::from(self.lpNSProviderId.is_some())
            + 8 * u32::from(self.lpVersion.is_some())
            + 8 * self.lpafpProtocols.len() as u32
            + (24 + 32) * self.lpcsaBuffer.len() as u32
            + self.lpBlob.as_ref().map_or(0, |b| 8 + b.len() as u32)
    }
}

/// `WSANAMESPACE_INFO`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WSANAMESPACE_INFO {
    /// The provider.
    pub NSProviderId: GUID,
    /// Its name space.
    pub dwNameSpace: u32,
    /// Whether it is active.
    pub fActive: bool,
    /// Its version.
    pub dwVersion: u32,
    /// Its display name.
    pub lpszIdentifier: String,
}

/// `WSANSCLASSINFO`: one name space's information about a service class.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct WSANSCLASSINFO {
    /// The value's name.
    pub lpszName: String,
    /// The name space it applies to.
    pub dwNameSpace: u32,
    /// `REG_DWORD`, `REG_SZ`, …
    pub dwValueType: u32,
    /// The value (`dwValueSize` is its length).
    pub lpValue: Vec<u8>,
}

/// `WSASERVICECLASSINFO`: a service class schema.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct WSASERVICECLASSINFO {
    /// The class id.
    pub lpServiceClassId: GUID,
    /// Its name.
    pub lpszServiceClassName: String,
    /// Per-name-space information (`dwCount` is its length).
    pub lpClassInfos: Vec<WSANSCLASSINFO>,
}

impl WSASERVICECLASSINFO {
    /// The bytes it takes in its 32-bit C layout (what `WSAGetServiceClassInfo` needs).
    pub fn buffer_len(&self) -> u32 {
        12 + 16
            + self.lpszServiceClassName.len() as u32
            + 1
            + self
                .lpClassInfos
                .iter()
                .map(|c| 20 + c.lpszName.len() as u32 + 1 + c.lpValue.len() as u32)
                .sum::<u32>()
    }
}

// ---- state ---------------------------------------------------------------------------------

/// A service instance registered with `WSASetService`.
#[derive(Debug, Clone)]
pub(crate) struct Registered {
    class: GUID,
    name: String,
    comment: Option<String>,
    addrs: Vec<CSADDR_INFO>,
}

#[derive(Debug)]
enum Deferred {
    Host(String),
    Addr([u8; 4]),
}

#[derive(Debug, Default)]
struct Cursor {
    items: Vec<WSAQUERYSET>,
    next: usize,
    /// The last `Next` failed `WSAEFAULT` (then `LUP_FLUSHPREVIOUS` skips that result).
    too_small: bool,
    deferred: Option<Deferred>,
}

/// An open `WSALookupServiceBegin` query.
#[derive(Debug)]
pub(crate) struct Lookup {
    pub(crate) cancel: Cancel,
    query: WSAQUERYSET,
    flags: u32,
    cursor: Mutex<Cursor>,
}

static NEXT_LOOKUP: AtomicUsize = AtomicUsize::new(1);

/// The service named by a `SVCID_INET_SERVICEBYNAME` instance: "ftp/tcp", "21/tcp" or "ftp".
fn service_query(q: &str) -> Option<db::SERVENT> {
    let (name, proto) = match q.split_once('/') {
        Some((n, p)) => (n, Some(p)),
        None => (q, None),
    };
    match name.parse::<u16>() {
        Ok(port) => db::service_by_port(port.to_be(), proto),
        Err(_) => db::service_by_name(name, proto),
    }
}

impl Lookup {
    /// The result sets for a host entry: the entry, then (with `LUP_RETURN_ALIASES`) one per
    /// alias flagged `RESULT_IS_ALIAS`. `port`/`proto` complete the transport addresses.
    fn host_items(&self, h: &HOSTENT, port: u16, proto: i32) -> Vec<WSAQUERYSET> {
        let f = self.flags;
        let main = WSAQUERYSET {
            lpszServiceInstanceName: (f & LUP_RETURN_NAME != 0).then(|| h.h_name.clone()),
            lpServiceClassId: (f & LUP_RETURN_TYPE != 0)
                .then_some(self.query.lpServiceClassId)
                .flatten(),
            dwNameSpace: NS_DNS,
            lpNSProviderId: Some(NSPROVIDER_ID),
            lpcsaBuffer: if f & LUP_RETURN_ADDR != 0 {
                h.addrs()
                    .into_iter()
                    .map(|a| CSADDR_INFO::new(SocketAddrV4::new(a, port), proto))
                    .collect()
            } else {
                Vec::new()
            },
            lpBlob: (f & LUP_RETURN_BLOB != 0).then(|| h.to_blob()),
            ..WSAQUERYSET::default()
        };
        let mut items = vec![main];
        if f & LUP_RETURN_ALIASES != 0 {
            items.extend(h.h_aliases.iter().map(|a| WSAQUERYSET {
                lpszServiceInstanceName: Some(a.clone()),
                dwOutputFlags: RESULT_IS_ALIAS,
                dwNameSpace: NS_DNS,
                lpNSProviderId: Some(NSPROVIDER_ID),
                ..WSAQUERYSET::default()
            }));
        }
        items
    }

    /// The port and protocol host results carry for the query's class.
    fn transport(&self, ws: &Winsock) -> (u16, i32) {
        let class = self.query.lpServiceClassId.unwrap_or_default();
        if IS_SVCID_TCP(&class) {
            return (PORT_FROM_SVCID_TCP(&class), IPPROTO_TCP);
        }
        if IS_SVCID_UDP(&class) {
            return (PORT_FROM_SVCID_UDP(&class), IPPROTO_UDP);
        }
        // SVCID_HOSTNAME with a service in the query string: its full transport address.
        if class == SVCID_HOSTNAME {
            if let Some(s) = self
                .query
                .lpszQueryString
                .as_deref()
                .and_then(service_query)
            {
                let proto = if s.s_proto.eq_ignore_ascii_case("udp") {
                    IPPROTO_UDP
                } else {
                    IPPROTO_TCP
                };
                return (s.port(), proto);
            }
        }
        let _ = ws;
        (0, IPPROTO_TCP)
    }
}

fn not_found(e: WsaError) -> WsaError {
    if e == WsaError::WSAHOST_NOT_FOUND {
        WsaError::WSASERVICE_NOT_FOUND
    } else {
        e
    }
}

impl Winsock {
    /// `WSAEnumNameSpaceProviders` (CHECKLIST §1.17.3): one provider. `*lpdwBufferLength` too
    /// small for its C layout is `WSAEFAULT` with the size needed.
    pub fn WSAEnumNameSpaceProviders(
        &self,
        lpdwBufferLength: &mut u32,
        lpnspBuffer: &mut Vec<WSANAMESPACE_INFO>,
    ) -> Result<i32, WsaError> {
        record(self.started())?;
        let info = WSANAMESPACE_INFO {
            NSProviderId: NSPROVIDER_ID,
            dwNameSpace: NS_DNS,
            fActive: true,
            dwVersion: 1,
            lpszIdentifier: "ws2 hosts, services and DNS".to_string(),
        };
        let needed = 32 + info.lpszIdentifier.len() as u32 + 1;
        if *lpdwBufferLength < needed {
            *lpdwBufferLength = needed;
            return record(Err(WsaError::WSAEFAULT));
        }
        *lpnspBuffer = vec![info];
        Ok(1)
    }

    /// `WSALookupServiceBegin` (CHECKLIST §1.17.3, the getXbyY mapping): the local sources are
    /// searched now (`WSASERVICE_NOT_FOUND`, or `WSANO_DATA` for a name without the data asked
    /// for); a host name or address only DNS can answer is asked by the first `Next`.
    pub fn WSALookupServiceBegin(
        &self,
        lpqsRestrictions: &WSAQUERYSET,
        dwControlFlags: u32,
    ) -> Result<HANDLE, WsaError> {
        record(self.started())?;
        let q = lpqsRestrictions;
        let Some(class) = q.lpServiceClassId.filter(|_| q.dwSize == WSAQUERYSET_LEN) else {
            return record(Err(WsaError::WSAEINVAL));
        };
        if q.lpNSProviderId.is_some_and(|p| p != NSPROVIDER_ID)
            || ![NS_ALL, NS_DNS, NS_TCPIP_HOSTS, NS_TCPIP_LOCAL].contains(&q.dwNameSpace)
        {
            return record(Err(WsaError::WSASERVICE_NOT_FOUND));
        }
        if dwControlFlags & LUP_CONTAINERS != 0 {
            // This name space has no containers (CHECKLIST 560).
            return record(Err(WsaError::WSANO_DATA));
        }
        let lookup = Arc::new(Lookup {
            cancel: Cancel::default(),
            query: q.clone(),
            flags: dwControlFlags,
            cursor: Mutex::default(),
        });
        let instance = q.lpszServiceInstanceName.clone().unwrap_or_default();
        let dns = self.resolver().lock().dns().is_some();
        let mut cursor = Cursor::default();
        let host_class = class == SVCID_INET_HOSTADDRBYNAME
            || class == SVCID_HOSTNAME
            || IS_SVCID_TCP(&class)
            || IS_SVCID_UDP(&class);
        if host_class {
            let (port, proto) = lookup.transport(self);
            let found = if instance.is_empty() {
                Some(self.own_host())
            } else if instance.chars().all(|c| c.is_ascii_digit() || c == '.') {
                None
            } else {
                self.local_host(&instance)
            };
            match found {
                Some(h) => cursor.items = lookup.host_items(&h, port, proto),
                None if dns && !instance.chars().all(|c| c.is_ascii_digit() || c == '.') => {
                    cursor.deferred = Some(Deferred::Host(instance))
                }
                None => return record(Err(WsaError::WSASERVICE_NOT_FOUND)),
            }
        } else if class == SVCID_INET_HOSTNAMEBYADDR {
            let addr = super::inet_addr(&instance).to_ne_bytes();
            if super::inet_addr(&instance) == INADDR_NONE && instance != "255.255.255.255" {
                return record(Err(WsaError::WSAEINVAL));
            }
            match self.local_addr(addr) {
                Some(h) => cursor.items = lookup.host_items(&h, 0, IPPROTO_TCP),
                None if dns => cursor.deferred = Some(Deferred::Addr(addr)),
                None => return record(Err(WsaError::WSASERVICE_NOT_FOUND)),
            }
        } else if class == SVCID_INET_SERVICEBYNAME {
            let Some(s) = service_query(&instance) else {
                return record(Err(WsaError::WSASERVICE_NOT_FOUND));
            };
            let f = dwControlFlags;
            let proto_class = if s.s_proto.eq_ignore_ascii_case("udp") {
                SVCID_UDP(s.port())
            } else {
                SVCID_TCP(s.port())
            };
            cursor.items.push(WSAQUERYSET {
                lpszServiceInstanceName: (f & LUP_RETURN_NAME != 0).then(|| s.s_name.clone()),
                lpServiceClassId: Some(if f & LUP_RETURN_TYPE != 0 {
                    proto_class
                } else {
                    class
                }),
                dwNameSpace: NS_DNS,
                lpNSProviderId: Some(NSPROVIDER_ID),
                lpBlob: (f & LUP_RETURN_BLOB != 0).then(|| s.to_blob()),
                ..WSAQUERYSET::default()
            });
            if f & LUP_RETURN_ALIASES != 0 {
                cursor.items.extend(s.s_aliases.iter().map(|a| WSAQUERYSET {
                    lpszServiceInstanceName: Some(a.clone()),
                    dwOutputFlags: RESULT_IS_ALIAS,
                    dwNameSpace: NS_DNS,
                    lpNSProviderId: Some(NSPROVIDER_ID),
                    ..WSAQUERYSET::default()
                }));
            }
        } else {
            let f = dwControlFlags;
            let wildcard = instance.is_empty() || instance == "*";
            let state = self.resolver();
            let inner = state.lock();
            cursor.items = inner
                .services
                .iter()
                .filter(|r| {
                    r.class == class && (wildcard || r.name.eq_ignore_ascii_case(&instance))
                })
                .map(|r| WSAQUERYSET {
                    lpszServiceInstanceName: (f & LUP_RETURN_NAME != 0).then(|| r.name.clone()),
                    lpServiceClassId: Some(r.class),
                    lpszComment: (f & LUP_RETURN_COMMENT != 0)
                        .then(|| r.comment.clone())
                        .flatten(),
                    dwNameSpace: NS_DNS,
                    lpNSProviderId: Some(NSPROVIDER_ID),
                    lpcsaBuffer: if f & LUP_RETURN_ADDR != 0 {
                        r.addrs.clone()
                    } else {
                        Vec::new()
                    },
                    ..WSAQUERYSET::default()
                })
                .collect();
            if cursor.items.is_empty() {
                return record(Err(WsaError::WSASERVICE_NOT_FOUND));
            }
        }
        *lookup.cursor.lock().unwrap_or_else(|e| e.into_inner()) = cursor;
        let h = NEXT_LOOKUP.fetch_add(1, Ordering::Relaxed);
        self.resolver().lock().lookups.insert(h, lookup);
        Ok(h)
    }

    /// `WSALookupServiceNext` (CHECKLIST §1.17.3): one result set per call, then
    /// `WSA_E_NO_MORE`. Too small a buffer is `WSAEFAULT` with the size needed; the next call
    /// with `LUP_FLUSHPREVIOUS` skips that result. A DNS question runs here (a blocking call);
    /// `WSALookupServiceEnd` from another thread ends it with `WSA_E_CANCELLED`.
    pub fn WSALookupServiceNext(
        &self,
        hLookup: HANDLE,
        dwControlFlags: u32,
        lpdwBufferLength: &mut u32,
        lpqsResults: &mut WSAQUERYSET,
    ) -> Result<(), WsaError> {
        record(self.started())?;
        let Some(lookup) = self.resolver().lock().lookups.get(&hLookup).cloned() else {
            return record(Err(WsaError::WSA_INVALID_HANDLE));
        };
        if lookup.cancel.cancelled() {
            return record(Err(WsaError::WSA_E_CANCELLED));
        }
        let mut cursor = lookup.cursor.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(d) = cursor.deferred.take() {
            let h = match d {
                Deferred::Host(name) => self.dns_host(&name, Some(&lookup.cancel)),
                Deferred::Addr(a) => self.dns_addr(a, Some(&lookup.cancel)),
            };
            if lookup.cancel.cancelled() {
                return record(Err(WsaError::WSA_E_CANCELLED));
            }
            let h = record(h.map_err(not_found))?;
            let (port, proto) = lookup.transport(self);
            cursor.items = lookup.host_items(&h, port, proto);
        }
        if cursor.too_small && dwControlFlags & LUP_FLUSHPREVIOUS != 0 {
            cursor.next += 1;
        }
        cursor.too_small = false;
        let Some(item) = cursor.items.get(cursor.next) else {
            return record(Err(WsaError::WSA_E_NO_MORE));
        };
        let needed = item.buffer_len();
        if *lpdwBufferLength < needed {
            *lpdwBufferLength = needed;
            cursor.too_small = true;
            return record(Err(WsaError::WSAEFAULT));
        }
        *lpqsResults = item.clone();
        cursor.next += 1;
        Ok(())
    }

    /// `WSALookupServiceEnd` (CHECKLIST §1.17.3): frees the handle; a `Next` blocked on it in
    /// another thread returns `WSA_E_CANCELLED` at once.
    pub fn WSALookupServiceEnd(&self, hLookup: HANDLE) -> Result<(), WsaError> {
        record(self.started())?;
        let Some(lookup) = self.resolver().lock().lookups.remove(&hLookup) else {
            return record(Err(WsaError::WSA_INVALID_HANDLE));
        };
        lookup.cancel.cancel(self);
        Ok(())
    }

    /// Whether `WSASetService` and the class registry calls are allowed (default yes); when
    /// not, they fail `WSAEACCES` (Part 3 #17).
    pub fn set_registration_allowed(&self, allowed: bool) {
        self.resolver().lock().registration_denied = !allowed;
    }

    fn registration(&self) -> Result<(), WsaError> {
        self.started()?;
        if self.resolver().lock().registration_denied {
            return Err(WsaError::WSAEACCES);
        }
        Ok(())
    }

    /// `WSASetService` (CHECKLIST §1.17.3) on the in-process registry: `RNRSERVICE_REGISTER`
    /// makes the instance discoverable (with `SERVICE_MULTIPLE` its addresses are added to those
    /// already registered, otherwise they replace them), `RNRSERVICE_DEREGISTER` makes it
    /// undiscoverable, `RNRSERVICE_DELETE` removes it or, with `SERVICE_MULTIPLE`, only the
    /// exactly matching `CSADDR_INFO`s. A missing class or instance name is `WSAEINVAL`; an
    /// unknown instance `WSASERVICE_NOT_FOUND`.
    pub fn WSASetService(
        &self,
        lpqsRegInfo: &WSAQUERYSET,
        essOperation: i32,
        dwControlFlags: u32,
    ) -> Result<(), WsaError> {
        record(self.registration())?;
        let q = lpqsRegInfo;
        let (Some(class), Some(name)) = (q.lpServiceClassId, q.lpszServiceInstanceName.clone())
        else {
            return record(Err(WsaError::WSAEINVAL));
        };
        if q.dwSize != WSAQUERYSET_LEN {
            return record(Err(WsaError::WSAEINVAL));
        }
        let multiple = dwControlFlags & SERVICE_MULTIPLE != 0;
        let state = self.resolver();
        let mut inner = state.lock();
        let at = inner
            .services
            .iter()
            .position(|r| r.class == class && r.name.eq_ignore_ascii_case(&name));
        match (essOperation, at) {
            (RNRSERVICE_REGISTER, Some(i)) => {
                let r = &mut inner.services[i];
                if multiple {
                    for a in &q.lpcsaBuffer {
                        if !r.addrs.contains(a) {
                            r.addrs.push(*a);
                        }
                    }
                } else {
                    r.addrs = q.lpcsaBuffer.clone();
                }
                r.comment = q.lpszComment.clone();
            }
            (RNRSERVICE_REGISTER, None) => inner.services.push(Registered {
                class,
                name,
                comment: q.lpszComment.clone(),
                addrs: q.lpcsaBuffer.clone(),
            }),
            (RNRSERVICE_DELETE, Some(i)) if multiple => {
                let r = &mut inner.services[i];
                r.addrs.retain(|a| !q.lpcsaBuffer.contains(a));
                if r.addrs.is_empty() {
                    inner.services.remove(i);
                }
            }
            (RNRSERVICE_DEREGISTER | RNRSERVICE_DELETE, Some(i)) => {
                inner.services.remove(i);
            }
            (RNRSERVICE_DEREGISTER | RNRSERVICE_DELETE, None) => {
                return record(Err(WsaError::WSASERVICE_NOT_FOUND));
            }
            _ => return record(Err(WsaError::WSAEINVAL)),
        }
        Ok(())
    }

    /// `WSAInstallServiceClass` (CHECKLIST §1.17.3): `WSAEALREADY` if the class id is installed.
    pub fn WSAInstallServiceClass(
        &self,
        lpServiceClassInfo: &WSASERVICECLASSINFO,
    ) -> Result<(), WsaError> {
        record(self.registration())?;
        let state = self.resolver();
        let mut inner = state.lock();
        if inner
            .classes
            .iter()
            .any(|c| c.lpServiceClassId == lpServiceClassInfo.lpServiceClassId)
        {
            return record(Err(WsaError::WSAEALREADY));
        }
        inner.classes.push(lpServiceClassInfo.clone());
        Ok(())
    }

    /// `WSARemoveServiceClass` (CHECKLIST §1.17.3): `WSATYPE_NOT_FOUND` for a class not
    /// installed, `WSAEINVAL` for no GUID.
    pub fn WSARemoveServiceClass(&self, lpServiceClassId: Option<&GUID>) -> Result<(), WsaError> {
        record(self.registration())?;
        let id = record(lpServiceClassId.ok_or(WsaError::WSAEINVAL))?;
        let state = self.resolver();
        let mut inner = state.lock();
        let before = inner.classes.len();
        inner.classes.retain(|c| c.lpServiceClassId != *id);
        if inner.classes.len() == before {
            return record(Err(WsaError::WSATYPE_NOT_FOUND));
        }
        Ok(())
    }

    /// `WSAGetServiceClassInfo` (CHECKLIST §1.17.3): the installed schema; an unknown provider
    /// or class is `WSA_INVALID_PARAMETER`, too small a buffer `WSAEFAULT` with the size needed.
    pub fn WSAGetServiceClassInfo(
        &self,
        lpProviderId: &GUID,
        lpServiceClassId: &GUID,
        lpdwBufSize: &mut u32,
        lpServiceClassInfo: &mut WSASERVICECLASSINFO,
    ) -> Result<(), WsaError> {
        record(self.started())?;
        let found = self
            .resolver()
            .lock()
            .classes
            .iter()
            .find(|c| c.lpServiceClassId == *lpServiceClassId)
            .cloned();
        let Some(info) = found.filter(|_| *lpProviderId == NSPROVIDER_ID) else {
            return record(Err(WsaError::WSA_INVALID_PARAMETER));
        };
        let needed = info.buffer_len();
        if *lpdwBufSize < needed {
            *lpdwBufSize = needed;
            return record(Err(WsaError::WSAEFAULT));
        }
        *lpServiceClassInfo = info;
        Ok(())
    }

    /// `WSAGetServiceClassNameByServiceClassId` (CHECKLIST §1.17.3): the name of an installed
    /// class, or of a `SVCID_TCP`/`SVCID_UDP` class from the services table.
    /// `*lpdwBufferLength` is in bytes with the NUL; too small is `WSAEFAULT` with the size
    /// needed; an unknown class `WSA_INVALID_PARAMETER`.
    pub fn WSAGetServiceClassNameByServiceClassId(
        &self,
        lpServiceClassId: &GUID,
        lpszServiceClassName: &mut String,
        lpdwBufferLength: &mut u32,
    ) -> Result<(), WsaError> {
        record(self.started())?;
        let g = lpServiceClassId;
        let installed = self
            .resolver()
            .lock()
            .classes
            .iter()
            .find(|c| c.lpServiceClassId == *g)
            .map(|c| c.lpszServiceClassName.clone());
        let name = installed.or_else(|| {
            let (port, proto) = if IS_SVCID_TCP(g) {
                (PORT_FROM_SVCID_TCP(g), "tcp")
            } else if IS_SVCID_UDP(g) {
                (PORT_FROM_SVCID_UDP(g), "udp")
            } else {
                return None;
            };
            db::service_by_port(port.to_be(), Some(proto)).map(|s| s.s_name)
        });
        let name = record(name.ok_or(WsaError::WSA_INVALID_PARAMETER))?;
        let needed = name.len() as u32 + 1;
        if *lpdwBufferLength < needed {
            *lpdwBufferLength = needed;
            return record(Err(WsaError::WSAEFAULT));
        }
        *lpszServiceClassName = name;
        *lpdwBufferLength = needed;
        Ok(())
    }
}
