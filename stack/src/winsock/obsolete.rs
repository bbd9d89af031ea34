//! The obsolete Microsoft extensions to Windows Sockets 1.1 (CHECKLIST §1.11 `EnumProtocols`,
//! §1.17.4; issue 7 item 6): `EnumProtocols`, `GetAddressByName`, `GetTypeByName`,
//! `GetNameByType`, `GetService` and `SetService`.
//!
//! Read first: the spec's reference pages for these functions (`shared/spec/003_…`, "This
//! function is obsolete") and CHECKLIST §1.17.4, which asks for them to be documented only.
//!
//! Each is a thin layer over the Windows Sockets 2 call that replaced it, or fails with the
//! spec's error where no layer makes sense:
//! - `EnumProtocols` → [`Winsock::WSAEnumProtocols`], one [`PROTOCOL_INFO`] per catalog entry.
//! - `GetAddressByName` → `gethostbyname` (or the local any-address for `RES_SERVICE`), with the
//!   port and protocol taken from an `SVCID_TCP(port)`/`SVCID_UDP(port)` service type.
//! - `GetTypeByName` / `GetNameByType` → `getservbyname` / `getservbyport`, between a service
//!   name ("ftp", "ftp/udp") and its `SVCID_TCP`/`SVCID_UDP` type.
//! - `GetService` / `SetService` speak `NS_SERVICE_INFO`/`SERVICE_INFO`, the 1.1 registration
//!   model of SAP and NDS name spaces, which this stack does not have (CHECKLIST Part 3 #12):
//!   `GetService` finds nothing (`ERROR_SERVICE_NOT_FOUND`, "the specified name space is not in
//!   use") and `SetService` fails `ERROR_NOT_SUPPORTED`. Applications register with
//!   `WSASetService` instead.
//!
//! Errors are the Win32 codes these functions give through `GetLastError` (the same thread's
//! last error as `WSAGetLastError`), carried as [`WsaError`] values with the Win32 number.
//! Buffer sizes are counted in the 32-bit C layouts, as the rest of the Winsock face does:
//! [`PROTOCOL_INFO_LEN`] bytes per `PROTOCOL_INFO` plus its NUL-terminated name,
//! [`CSADDR_INFO_LEN`] bytes per `CSADDR_INFO` (with its two `sockaddr_in`s).

#![allow(non_camel_case_types)]

use std::net::{Ipv4Addr, SocketAddrV4};

use super::catalog::{GUID, WSAPROTOCOL_INFO, WSAPROTOCOL_INFO_LEN};
use super::resolve::{
    inet_addr, CSADDR_INFO, IS_SVCID_TCP, IS_SVCID_UDP, NS_ALL, NS_DNS, NS_TCPIP_HOSTS,
    NS_TCPIP_LOCAL, PORT_FROM_SVCID_TCP, PORT_FROM_SVCID_UDP, SOCKET_ADDRESS, SVCID_TCP, SVCID_UDP,
};
use super::{record, types::*, Winsock};
use crate::error::WsaError;

// ---- constants -----------------------------------------------------------------------------

/// `ERROR_NOT_SUPPORTED` (Win32 50): `SetService`, which no name space here supports.
pub const ERROR_NOT_SUPPORTED: WsaError = WsaError(50);
/// `ERROR_INVALID_PARAMETER` (Win32 87): a reserved `lpServiceAsyncInfo` that is not NULL.
pub const ERROR_INVALID_PARAMETER: WsaError = WsaError(87);
/// `ERROR_INSUFFICIENT_BUFFER` (Win32 122): the buffer cannot take every result.
pub const ERROR_INSUFFICIENT_BUFFER: WsaError = WsaError(122);
/// `ERROR_SERVICE_DOES_NOT_EXIST` (Win32 1060): the service type or name is unknown.
pub const ERROR_SERVICE_DOES_NOT_EXIST: WsaError = WsaError(1060);
/// `ERROR_ALREADY_REGISTERED` (Win32 1242).
pub const ERROR_ALREADY_REGISTERED: WsaError = WsaError(1242);
/// `ERROR_SERVICE_NOT_FOUND` (Win32 1243): no such service, or the name space is not in use.
pub const ERROR_SERVICE_NOT_FOUND: WsaError = WsaError(1243);

/// `NS_DEFAULT`: the default set of name spaces (the value of `NS_ALL`).
pub const NS_DEFAULT: u32 = NS_ALL;

/// `RES_SOFT_SEARCH`: a quick search (one provider here: no effect).
pub const RES_SOFT_SEARCH: u32 = 0x0001;
/// `RES_FIND_MULTIPLE`: ask every name space (one provider here: no effect).
pub const RES_FIND_MULTIPLE: u32 = 0x0002;
/// `RES_SERVICE`: the local address a service of the type should bind, not a lookup.
pub const RES_SERVICE: u32 = 0x0004;

/// `XP_CONNECTIONLESS` (`PROTOCOL_INFO.dwServiceFlags`; the same bit as `XP1_CONNECTIONLESS`).
pub const XP_CONNECTIONLESS: u32 = 0x0001;
/// `XP_GUARANTEED_DELIVERY`.
pub const XP_GUARANTEED_DELIVERY: u32 = 0x0002;
/// `XP_GUARANTEED_ORDER`.
pub const XP_GUARANTEED_ORDER: u32 = 0x0004;
/// `XP_MESSAGE_ORIENTED`.
pub const XP_MESSAGE_ORIENTED: u32 = 0x0008;
/// `XP_PSEUDO_STREAM`.
pub const XP_PSEUDO_STREAM: u32 = 0x0010;
/// `XP_GRACEFUL_CLOSE`.
pub const XP_GRACEFUL_CLOSE: u32 = 0x0020;
/// `XP_EXPEDITED_DATA`.
pub const XP_EXPEDITED_DATA: u32 = 0x0040;
/// `XP_CONNECT_DATA`.
pub const XP_CONNECT_DATA: u32 = 0x0080;
/// `XP_DISCONNECT_DATA`.
pub const XP_DISCONNECT_DATA: u32 = 0x0100;
/// `XP_SUPPORTS_BROADCAST`.
pub const XP_SUPPORTS_BROADCAST: u32 = 0x0200;
/// `XP_SUPPORTS_MULTICAST` (`XP1_SUPPORT_MULTIPOINT`'s bit).
pub const XP_SUPPORTS_MULTICAST: u32 = 0x0400;
/// The `XP1_*` bits that have an `XP_*` twin at the same position.
const XP_FROM_XP1: u32 = 0x07ff;

/// `ISOPROTO_TP4`: a protocol id `EnumProtocols` accepts (no entry here).
pub const ISOPROTO_TP4: i32 = 29;
/// `NSPROTO_IPX` (no entry here).
pub const NSPROTO_IPX: i32 = 1000;
/// `NSPROTO_SPX` (no entry here).
pub const NSPROTO_SPX: i32 = 1256;
/// `NSPROTO_SPXII` (no entry here).
pub const NSPROTO_SPXII: i32 = 1257;

/// `PROP_COMMENT` (`GetService` properties).
pub const PROP_COMMENT: u32 = 0x0000_0001;
/// `PROP_LOCALE`.
pub const PROP_LOCALE: u32 = 0x0000_0002;
/// `PROP_DISPLAY_HINT`.
pub const PROP_DISPLAY_HINT: u32 = 0x0000_0004;
/// `PROP_VERSION`.
pub const PROP_VERSION: u32 = 0x0000_0008;
/// `PROP_START_TIME`.
pub const PROP_START_TIME: u32 = 0x0000_0010;
/// `PROP_MACHINE`.
pub const PROP_MACHINE: u32 = 0x0000_0020;
/// `PROP_ADDRESSES`.
pub const PROP_ADDRESSES: u32 = 0x0000_0100;
/// `PROP_SD`.
pub const PROP_SD: u32 = 0x0000_0200;
/// `PROP_ALL`.
pub const PROP_ALL: u32 = 0x8000_0000;

/// `SERVICE_REGISTER` (`SetService` operations).
pub const SERVICE_REGISTER: u32 = 1;
/// `SERVICE_DEREGISTER`.
pub const SERVICE_DEREGISTER: u32 = 2;
/// `SERVICE_FLUSH`.
pub const SERVICE_FLUSH: u32 = 3;
/// `SERVICE_ADD_TYPE`.
pub const SERVICE_ADD_TYPE: u32 = 4;
/// `SERVICE_DELETE_TYPE`.
pub const SERVICE_DELETE_TYPE: u32 = 5;
/// `SERVICE_FLAG_DEFER`.
pub const SERVICE_FLAG_DEFER: u32 = 1;
/// `SERVICE_FLAG_HARD`.
pub const SERVICE_FLAG_HARD: u32 = 2;
/// `SET_SERVICE_PARTIAL_SUCCESS` (`SetService`'s status flag).
pub const SET_SERVICE_PARTIAL_SUCCESS: u32 = 1;

/// `sizeof(PROTOCOL_INFO)` in the 32-bit layout (seven 4-byte fields and the name pointer).
pub const PROTOCOL_INFO_LEN: u32 = 32;
/// `sizeof(CSADDR_INFO)` in the 32-bit layout (24) plus the two `sockaddr_in`s it points to.
pub const CSADDR_INFO_LEN: u32 = 24 + 2 * SOCKADDR_IN_LEN as u32;

// ---- PROTOCOL_INFO ---------------------------------------------------------------------------

/// `PROTOCOL_INFO`: what `EnumProtocols` reports for one protocol, owned.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PROTOCOL_INFO {
    /// `XP_*` flags: the entry's `XP1_*` flags that have an `XP_*` twin.
    pub dwServiceFlags: u32,
    /// `AF_INET`.
    pub iAddressFamily: i32,
    /// Longest address, in bytes.
    pub iMaxSockAddr: i32,
    /// Shortest address, in bytes.
    pub iMinSockAddr: i32,
    /// `SOCK_STREAM`, `SOCK_DGRAM`, …
    pub iSocketType: i32,
    /// `IPPROTO_TCP`, `IPPROTO_UDP`, …
    pub iProtocol: i32,
    /// Largest message, as `WSAPROTOCOL_INFO.dwMessageSize`.
    pub dwMessageSize: u32,
    /// The protocol's name (`lpProtocol`).
    pub lpProtocol: String,
}

impl PROTOCOL_INFO {
    /// The 1.1 view of a catalog entry.
    pub fn from_entry(e: &WSAPROTOCOL_INFO) -> PROTOCOL_INFO {
        PROTOCOL_INFO {
            dwServiceFlags: e.dwServiceFlags1 & XP_FROM_XP1,
            iAddressFamily: e.iAddressFamily,
            iMaxSockAddr: e.iMaxSockAddr,
            iMinSockAddr: e.iMinSockAddr,
            iSocketType: e.iSocketType,
            iProtocol: e.iProtocol,
            dwMessageSize: e.dwMessageSize,
            lpProtocol: e.protocol_name(),
        }
    }

    /// Bytes this entry takes in a C buffer: the structure and its NUL-terminated name.
    pub fn buffer_len(&self) -> u32 {
        PROTOCOL_INFO_LEN + self.lpProtocol.len() as u32 + 1
    }
}

/// `lpServiceAsyncInfo` is reserved and must be NULL: anything else is `ERROR_INVALID_PARAMETER`.
fn reserved_null(lpServiceAsyncInfo: Option<&[u8]>) -> Result<(), WsaError> {
    match lpServiceAsyncInfo {
        None => Ok(()),
        Some(_) => Err(ERROR_INVALID_PARAMETER),
    }
}

/// (`SOCK_*`, `IPPROTO_*`, port) of an `SVCID_TCP(port)`/`SVCID_UDP(port)` service type.
fn transport_of(g: &GUID) -> Option<(i32, i32, u16)> {
    if IS_SVCID_TCP(g) {
        Some((SOCK_STREAM, IPPROTO_TCP, PORT_FROM_SVCID_TCP(g)))
    } else if IS_SVCID_UDP(g) {
        Some((SOCK_DGRAM, IPPROTO_UDP, PORT_FROM_SVCID_UDP(g)))
    } else {
        None
    }
}

impl Winsock {
    /// `EnumProtocols` (obsolete; CHECKLIST §1.11): [`Winsock::WSAEnumProtocols`] in the 1.1
    /// shape. `lpiProtocols` filters as there (`None` = all; a 0 ends the list; ids without an
    /// entry here, such as [`NSPROTO_IPX`], match nothing). `lpdwBufferLength` is in bytes
    /// ([`PROTOCOL_INFO::buffer_len`] per entry); on return it holds the bytes every requested
    /// entry needs. If that is more than given, or `lpProtocolBuffer` has fewer slots than
    /// entries, the call fails `ERROR_INSUFFICIENT_BUFFER` and the buffer is untouched.
    /// Returns the number of entries written.
    pub fn EnumProtocols(
        &self,
        lpiProtocols: Option<&[i32]>,
        lpProtocolBuffer: Option<&mut [PROTOCOL_INFO]>,
        lpdwBufferLength: &mut u32,
    ) -> Result<i32, WsaError> {
        record(self.started())?;
        let mut need = 0u32;
        let n = match self.WSAEnumProtocols(lpiProtocols, None, &mut need) {
            Ok(n) => n as usize,
            Err(WsaError::WSAENOBUFS) => (need / WSAPROTOCOL_INFO_LEN) as usize,
            Err(e) => return record(Err(e)),
        };
        let mut entries = vec![WSAPROTOCOL_INFO::default(); n];
        let got = record(self.WSAEnumProtocols(lpiProtocols, Some(&mut entries), &mut need))?;
        let infos: Vec<PROTOCOL_INFO> = entries[..got as usize]
            .iter()
            .map(PROTOCOL_INFO::from_entry)
            .collect();
        let bytes: u32 = infos.iter().map(PROTOCOL_INFO::buffer_len).sum();
        let given = *lpdwBufferLength;
        *lpdwBufferLength = bytes;
        match lpProtocolBuffer {
            Some(buf) if given >= bytes && buf.len() >= infos.len() => {
                let count = infos.len() as i32;
                for (slot, info) in buf.iter_mut().zip(infos) {
                    *slot = info;
                }
                Ok(count)
            }
            _ => record(Err(ERROR_INSUFFICIENT_BUFFER)),
        }
    }

    /// `GetAddressByName` (obsolete; CHECKLIST §1.17.4): the transport addresses of service
    /// `lpServiceName` of type `lpServiceType`, a layer over `gethostbyname`.
    ///
    /// * `dwNameSpace`: `NS_DEFAULT`, `NS_DNS`, `NS_TCPIP_HOSTS` or `NS_TCPIP_LOCAL` (all served
    ///   by the one provider, as for RnR); other name spaces (`NS_SAP`, `NS_NETBT`, …) are not
    ///   installed and find nothing (0).
    /// * `lpServiceType`: `SVCID_TCP(port)` or `SVCID_UDP(port)` give the socket type, protocol
    ///   and port; any other type is `ERROR_SERVICE_DOES_NOT_EXIST`.
    /// * `lpServiceName`: a host name (or dotted address); `None` or [`RES_SERVICE`] in
    ///   `dwResolution` gives instead one `CSADDR_INFO` whose `LocalAddr` is `0.0.0.0:port`, the
    ///   address to bind. [`RES_FIND_MULTIPLE`] and [`RES_SOFT_SEARCH`] change nothing.
    /// * `lpiProtocols`: a NULL-terminated filter; a list without the type's protocol finds 0.
    /// * `lpServiceAsyncInfo`: reserved, must be `None`.
    /// * `lpCsaddrBuffer`/`lpdwBufferLength`: one `CSADDR_INFO` per address, remote address =
    ///   host address and port, [`CSADDR_INFO_LEN`] bytes each. `lpAliasBuffer`: the primary name
    ///   then the aliases, each NUL-terminated, then one more NUL (just the double NUL when the
    ///   service was not looked up by name). Each length is set to the bytes needed; if either
    ///   buffer is too small the call fails `ERROR_INSUFFICIENT_BUFFER`.
    ///
    /// Returns the number of `CSADDR_INFO`s; lookup failures are `gethostbyname`'s errors.
    #[allow(clippy::too_many_arguments)]
    pub fn GetAddressByName(
        &self,
        dwNameSpace: u32,
        lpServiceType: &GUID,
        lpServiceName: Option<&str>,
        lpiProtocols: Option<&[i32]>,
        dwResolution: u32,
        lpServiceAsyncInfo: Option<&[u8]>,
        lpCsaddrBuffer: Option<&mut [CSADDR_INFO]>,
        lpdwBufferLength: &mut u32,
        lpAliasBuffer: Option<&mut [u8]>,
        lpdwAliasBufferLength: Option<&mut u32>,
    ) -> Result<i32, WsaError> {
        record(self.started())?;
        record(reserved_null(lpServiceAsyncInfo))?;
        let Some((socktype, proto, port)) = transport_of(lpServiceType) else {
            return record(Err(ERROR_SERVICE_DOES_NOT_EXIST));
        };
        let served = matches!(
            dwNameSpace,
            NS_DEFAULT | NS_DNS | NS_TCPIP_HOSTS | NS_TCPIP_LOCAL
        );
        let wanted = lpiProtocols.is_none_or(|p| {
            let end = p.iter().position(|&x| x == 0).unwrap_or(p.len());
            p[..end].contains(&proto)
        });
        let (found, names) = match lpServiceName {
            _ if !served || !wanted => (Vec::new(), Vec::new()),
            Some(name) if dwResolution & RES_SERVICE == 0 => {
                let dotted = inet_addr(name);
                if dotted != INADDR_NONE || name == "255.255.255.255" {
                    let ip = Ipv4Addr::from(u32::from_be(dotted));
                    (
                        vec![CSADDR_INFO::new(SocketAddrV4::new(ip, port), proto)],
                        vec![],
                    )
                } else {
                    let h = record(self.gethostbyname(name))?;
                    let found = h
                        .addrs()
                        .into_iter()
                        .map(|ip| CSADDR_INFO::new(SocketAddrV4::new(ip, port), proto))
                        .collect();
                    let names = std::iter::once(h.h_name).chain(h.h_aliases).collect();
                    (found, names)
                }
            }
            _ => {
                let any = |p| SOCKET_ADDRESS {
                    lpSockaddr: SOCKADDR_IN::new(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, p)),
                    iSockaddrLength: SOCKADDR_IN_LEN,
                };
                let local = CSADDR_INFO {
                    LocalAddr: any(port),
                    RemoteAddr: any(0),
                    iSocketType: socktype,
                    iProtocol: proto,
                };
                (vec![local], Vec::new())
            }
        };
        let mut aliases: Vec<u8> = Vec::new();
        for n in &names {
            aliases.extend_from_slice(n.as_bytes());
            aliases.push(0);
        }
        aliases.push(0);
        if names.is_empty() {
            aliases.push(0);
        }
        let need = found.len() as u32 * CSADDR_INFO_LEN;
        let given = std::mem::replace(lpdwBufferLength, need);
        let csaddr_fits =
            given >= need && lpCsaddrBuffer.as_ref().map_or(0, |b| b.len()) >= found.len();
        let alias_fits = match (&lpAliasBuffer, lpdwAliasBufferLength) {
            (None, _) => true,
            (Some(buf), len) => {
                let given = len.map_or(buf.len() as u32, |l| {
                    std::mem::replace(l, aliases.len() as u32)
                });
                given as usize >= aliases.len() && buf.len() >= aliases.len()
            }
        };
        if !csaddr_fits || !alias_fits {
            return record(Err(ERROR_INSUFFICIENT_BUFFER));
        }
        if let Some(buf) = lpAliasBuffer {
            buf[..aliases.len()].copy_from_slice(&aliases);
        }
        if let Some(buf) = lpCsaddrBuffer {
            buf[..found.len()].copy_from_slice(&found);
        }
        Ok(found.len() as i32)
    }

    /// `GetTypeByName` (obsolete; CHECKLIST §1.17.4): the service type of a service name, a
    /// layer over `getservbyname`. `"ftp"` is `SVCID_TCP(21)` (TCP when the service has a TCP
    /// port, else UDP); `"name/udp"` or `"name/tcp"` names the protocol. Unknown names are
    /// `ERROR_SERVICE_DOES_NOT_EXIST`.
    pub fn GetTypeByName(
        &self,
        lpServiceName: &str,
        lpServiceType: &mut GUID,
    ) -> Result<(), WsaError> {
        record(self.started())?;
        let (name, proto) = match lpServiceName.split_once('/') {
            Some((n, p)) => (n, Some(p)),
            None => (lpServiceName, None),
        };
        let found = match proto {
            Some(p) => self.getservbyname(name, Some(p)),
            None => self
                .getservbyname(name, Some("tcp"))
                .or_else(|_| self.getservbyname(name, Some("udp"))),
        };
        let Ok(s) = found else {
            return record(Err(ERROR_SERVICE_DOES_NOT_EXIST));
        };
        *lpServiceType = if s.s_proto.eq_ignore_ascii_case("udp") {
            SVCID_UDP(s.port())
        } else if s.s_proto.eq_ignore_ascii_case("tcp") {
            SVCID_TCP(s.port())
        } else {
            return record(Err(ERROR_SERVICE_DOES_NOT_EXIST));
        };
        Ok(())
    }

    /// `GetNameByType` (obsolete; CHECKLIST §1.17.4): the name of the service of type
    /// `lpServiceType` (`SVCID_TCP(port)`/`SVCID_UDP(port)`), a layer over `getservbyport`,
    /// written NUL-terminated into `lpServiceName` (whose length is `dwNameLength`). Unknown
    /// types or ports are `ERROR_SERVICE_DOES_NOT_EXIST`; a name that does not fit is
    /// `ERROR_INSUFFICIENT_BUFFER`.
    pub fn GetNameByType(
        &self,
        lpServiceType: &GUID,
        lpServiceName: &mut [u8],
    ) -> Result<(), WsaError> {
        record(self.started())?;
        let Some((_, proto, port)) = transport_of(lpServiceType) else {
            return record(Err(ERROR_SERVICE_DOES_NOT_EXIST));
        };
        let p = if proto == IPPROTO_UDP { "udp" } else { "tcp" };
        let Ok(s) = self.getservbyport(port.to_be(), Some(p)) else {
            return record(Err(ERROR_SERVICE_DOES_NOT_EXIST));
        };
        let name = s.s_name.as_bytes();
        let Some(out) = lpServiceName.get_mut(..=name.len()) else {
            return record(Err(ERROR_INSUFFICIENT_BUFFER));
        };
        out[..name.len()].copy_from_slice(name);
        out[name.len()] = 0;
        Ok(())
    }

    /// `GetService` (obsolete; CHECKLIST §1.17.4): fails `ERROR_SERVICE_NOT_FOUND` ("the
    /// specified name space is not in use"; the C function returns 0 then). Its
    /// `NS_SERVICE_INFO` results come from 1.1 registrations (`SetService`) in SAP/NDS-style
    /// name spaces, which this stack does not provide; `lpBuffer` is left untouched and
    /// `lpdwBufferSize` set to 0. Use `WSALookupServiceBegin` instead.
    #[allow(clippy::too_many_arguments)]
    pub fn GetService(
        &self,
        dwNameSpace: u32,
        lpGuid: &GUID,
        lpServiceName: &str,
        dwProperties: u32,
        lpBuffer: Option<&mut [u8]>,
        lpdwBufferSize: &mut u32,
        lpServiceAsyncInfo: Option<&[u8]>,
    ) -> Result<i32, WsaError> {
        record(self.started())?;
        record(reserved_null(lpServiceAsyncInfo))?;
        let _ = (dwNameSpace, lpGuid, lpServiceName, dwProperties, lpBuffer);
        *lpdwBufferSize = 0;
        record(Err(ERROR_SERVICE_NOT_FOUND))
    }

    /// `SetService` (obsolete; CHECKLIST §1.17.4): fails `ERROR_NOT_SUPPORTED`. No name space
    /// here takes 1.1 `SERVICE_INFO` registrations (the spec lists no code for that case;
    /// `ERROR_NOT_SUPPORTED` is Win32's "The request is not supported"). `lpdwStatusFlags`, if
    /// given, is set to 0. Use `WSASetService` / `WSAInstallServiceClass` instead.
    pub fn SetService(
        &self,
        dwNameSpace: u32,
        dwOperation: u32,
        dwFlags: u32,
        lpServiceInfo: Option<&[u8]>,
        lpServiceAsyncInfo: Option<&[u8]>,
        lpdwStatusFlags: Option<&mut u32>,
    ) -> Result<(), WsaError> {
        record(self.started())?;
        record(reserved_null(lpServiceAsyncInfo))?;
        let _ = (dwNameSpace, dwOperation, dwFlags, lpServiceInfo);
        if let Some(f) = lpdwStatusFlags {
            *f = 0;
        }
        record(Err(ERROR_NOT_SUPPORTED))
    }
}
