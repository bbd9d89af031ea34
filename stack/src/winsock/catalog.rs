//! The protocol catalog and `WSAEnumProtocols` (CHECKLIST §1.11, Part 3 #11).
//!
//! Windows keeps its catalog in the registry and loads a provider DLL per entry; this stack has
//! one provider in-process, so the catalog is a fixed table built once ([`catalog`]): TCP, UDP
//! and raw ICMP over `AF_INET`, in that (registration) order. Each entry advertises only what
//! the stack does today; the service flags say why where a flag is left out.
//!
//! The structures follow CHECKLIST §1.0.2 field for field in the ANSI layout
//! (`WSAPROTOCOL_INFOA`, 372 bytes), so buffer lengths are counted in the same bytes a Windows
//! application would count.
#![allow(non_camel_case_types)]

use std::sync::OnceLock;

use super::{record, types::*, Winsock};
use crate::error::WsaError;

/// `GUID`: a provider identifier.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct GUID {
    /// The first 4 bytes.
    pub Data1: u32,
    /// The next 2 bytes.
    pub Data2: u16,
    /// The next 2 bytes.
    pub Data3: u16,
    /// The last 8 bytes.
    pub Data4: [u8; 8],
}

/// `WSAPROTOCOLCHAIN` (CHECKLIST §1.0.2): `ChainLen` 0 = layered protocol, 1 = base protocol,
/// more = a chain whose entries list catalog ids from the top layer down to the base.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WSAPROTOCOLCHAIN {
    /// `LAYERED_PROTOCOL` (0), `BASE_PROTOCOL` (1) or the length of the chain.
    pub ChainLen: i32,
    /// Catalog entry ids of the chain; only the first `ChainLen` are meaningful.
    pub ChainEntries: [u32; MAX_PROTOCOL_CHAIN],
}

/// `WSAPROTOCOL_INFO` (ANSI layout, `WSAPROTOCOL_INFOA`): one catalog entry (CHECKLIST §1.11).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WSAPROTOCOL_INFO {
    /// `XP1_*` service flags.
    pub dwServiceFlags1: u32,
    /// Reserved.
    pub dwServiceFlags2: u32,
    /// Reserved.
    pub dwServiceFlags3: u32,
    /// Reserved.
    pub dwServiceFlags4: u32,
    /// `PFL_*` provider flags.
    pub dwProviderFlags: u32,
    /// The provider's GUID.
    pub ProviderId: GUID,
    /// Unique id of this entry.
    pub dwCatalogEntryId: u32,
    /// Base protocol, layered protocol or chain.
    pub ProtocolChain: WSAPROTOCOLCHAIN,
    /// Protocol version.
    pub iVersion: i32,
    /// The `af` value for `socket`/`WSASocket`.
    pub iAddressFamily: i32,
    /// Longest address, in bytes.
    pub iMaxSockAddr: i32,
    /// Shortest address, in bytes.
    pub iMinSockAddr: i32,
    /// The `type` value for `socket`/`WSASocket`.
    pub iSocketType: i32,
    /// The `protocol` value for `socket`/`WSASocket`.
    pub iProtocol: i32,
    /// How far above `iProtocol` the protocol numbers of this entry reach (0: no range).
    pub iProtocolMaxOffset: i32,
    /// `BIGENDIAN` or `LITTLEENDIAN`.
    pub iNetworkByteOrder: i32,
    /// `SECURITY_PROTOCOL_NONE` or a security scheme.
    pub iSecurityScheme: i32,
    /// Largest message: 0 = stream, 1 = depends on the MTU, `0xFFFF_FFFF` = no limit.
    pub dwMessageSize: u32,
    /// For the provider's own use.
    pub dwProviderReserved: u32,
    /// NUL-terminated human-readable name; see [`WSAPROTOCOL_INFO::protocol_name`].
    pub szProtocol: [u8; WSAPROTOCOL_LEN + 1],
}

/// The ANSI name of [`WSAPROTOCOL_INFO`].
pub type WSAPROTOCOL_INFOA = WSAPROTOCOL_INFO;

/// `sizeof(WSAPROTOCOL_INFOA)`: the unit `WSAEnumProtocols` counts buffer bytes in.
pub const WSAPROTOCOL_INFO_LEN: u32 = std::mem::size_of::<WSAPROTOCOL_INFO>() as u32;

impl Default for WSAPROTOCOL_INFO {
    fn default() -> Self {
        WSAPROTOCOL_INFO {
            dwServiceFlags1: 0,
            dwServiceFlags2: 0,
            dwServiceFlags3: 0,
            dwServiceFlags4: 0,
            dwProviderFlags: 0,
            ProviderId: GUID::default(),
            dwCatalogEntryId: 0,
            ProtocolChain: WSAPROTOCOLCHAIN::default(),
            iVersion: 0,
            iAddressFamily: 0,
            iMaxSockAddr: 0,
            iMinSockAddr: 0,
            iSocketType: 0,
            iProtocol: 0,
            iProtocolMaxOffset: 0,
            iNetworkByteOrder: 0,
            iSecurityScheme: 0,
            dwMessageSize: 0,
            dwProviderReserved: 0,
            szProtocol: [0; WSAPROTOCOL_LEN + 1],
        }
    }
}

impl WSAPROTOCOL_INFO {
    /// `szProtocol` up to its NUL, as text (lossy if it is not UTF-8).
    pub fn protocol_name(&self) -> String {
        let end = self
            .szProtocol
            .iter()
            .position(|&b| b == 0)
            .unwrap_or(self.szProtocol.len());
        String::from_utf8_lossy(&self.szProtocol[..end]).into_owned()
    }
}

/// `szProtocol` from `name`, cut to `WSAPROTOCOL_LEN` bytes and NUL-terminated.
fn sz_protocol(name: &str) -> [u8; WSAPROTOCOL_LEN + 1] {
    let mut out = [0u8; WSAPROTOCOL_LEN + 1];
    let n = name.len().min(WSAPROTOCOL_LEN);
    out[..n].copy_from_slice(&name.as_bytes()[..n]);
    out
}

/// First catalog entry id; the entries count up from here in registration order.
const FIRST_CATALOG_ID: u32 = 1001;

/// The provider GUID of entry `n` (made up, constant): `5753_32xx-…`, "WS2" in ASCII.
const fn provider_id(n: u8) -> GUID {
    GUID {
        Data1: 0x5753_3200 | n as u32,
        Data2: 0x7773,
        Data3: 0x0002,
        Data4: [0x77, 0x73, 0x32, 0x2d, 0x63, 0x61, 0x74, n],
    }
}

/// What distinguishes one entry from another; the rest is common to every entry.
struct Entry {
    flags: u32,
    provider_flags: u32,
    socket_type: i32,
    protocol: i32,
    message_size: u32,
    name: &'static str,
}

/// The entries in registration order.
const ENTRIES: [Entry; 5] = [
    Entry {
        // XP1_EXPEDITED_DATA: TCP urgent data (engine `urgent`, 442).
        flags: XP1_GUARANTEED_DELIVERY
            | XP1_GUARANTEED_ORDER
            | XP1_GRACEFUL_CLOSE
            | XP1_EXPEDITED_DATA
            | XP1_QOS_SUPPORTED,
        provider_flags: PFL_MATCHES_PROTOCOL_ZERO,
        socket_type: SOCK_STREAM,
        protocol: IPPROTO_TCP,
        message_size: 0, // a stream
        name: "ws2 TCP/IP [TCP]",
    },
    Entry {
        // IP multicast: non-rooted control and data planes, so both plane bits stay clear
        // (CHECKLIST §1.10.6). `WSAJoinLeaf` itself is issue 5's work.
        flags: XP1_CONNECTIONLESS
            | XP1_MESSAGE_ORIENTED
            | XP1_SUPPORT_BROADCAST
            | XP1_SUPPORT_MULTIPOINT
            | XP1_QOS_SUPPORTED,
        provider_flags: PFL_MATCHES_PROTOCOL_ZERO,
        socket_type: SOCK_DGRAM,
        protocol: IPPROTO_UDP,
        message_size: crate::engine::MAX_UDP_PAYLOAD as u32,
        name: "ws2 TCP/IP [UDP]",
    },
    Entry {
        // QoS: raw sockets are shaped like the others (SIO_SET_QOS is granted on them).
        flags: XP1_CONNECTIONLESS | XP1_MESSAGE_ORIENTED | XP1_QOS_SUPPORTED,
        provider_flags: 0,
        socket_type: SOCK_RAW,
        protocol: IPPROTO_ICMP,
        message_size: crate::engine::MAX_RAW_PAYLOAD as u32,
        name: "ws2 TCP/IP [ICMP raw]",
    },
    Entry {
        // RMP (docs/rmp.md, D-18, D-19): rooted control and rooted data (ATM / ST-II style).
        flags: RMP_FLAGS | XP1_MULTIPOINT_DATA_PLANE,
        provider_flags: PFL_MATCHES_PROTOCOL_ZERO,
        socket_type: SOCK_RDM,
        protocol: super::rmp::IPPROTO_RMP,
        message_size: ws2_multipoint::rmp::wire::MAX_PAYLOAD as u32,
        name: "ws2 RMP [rooted data]",
    },
    Entry {
        // RMP with a non-rooted data plane (T.120 style): the root relays leaves' data.
        flags: RMP_FLAGS,
        provider_flags: 0,
        socket_type: SOCK_RDM,
        protocol: super::rmp::IPPROTO_RMP_RELAY,
        message_size: ws2_multipoint::rmp::wire::MAX_PAYLOAD as u32,
        name: "ws2 RMP [non-rooted data]",
    },
];

/// What both RMP entries offer: message-oriented, reliable, ordered, graceful close, connect
/// and disconnect data, QoS per leaf, and a rooted control plane.
const RMP_FLAGS: u32 = XP1_GUARANTEED_DELIVERY
    | XP1_GUARANTEED_ORDER
    | XP1_MESSAGE_ORIENTED
    | XP1_GRACEFUL_CLOSE
    | XP1_CONNECT_DATA
    | XP1_DISCONNECT_DATA
    | XP1_QOS_SUPPORTED
    | XP1_SUPPORT_MULTIPOINT
    | XP1_MULTIPOINT_CONTROL_PLANE;

/// The catalog, in registration order: built once, never changed.
pub(crate) fn catalog() -> &'static [WSAPROTOCOL_INFO] {
    static CATALOG: OnceLock<Vec<WSAPROTOCOL_INFO>> = OnceLock::new();
    CATALOG.get_or_init(|| {
        ENTRIES
            .iter()
            .enumerate()
            .map(|(i, e)| WSAPROTOCOL_INFO {
                dwServiceFlags1: e.flags,
                dwServiceFlags2: 0,
                dwServiceFlags3: 0,
                dwServiceFlags4: 0,
                dwProviderFlags: e.provider_flags,
                ProviderId: provider_id(i as u8 + 1),
                dwCatalogEntryId: FIRST_CATALOG_ID + i as u32,
                ProtocolChain: WSAPROTOCOLCHAIN {
                    ChainLen: BASE_PROTOCOL,
                    ChainEntries: [0; MAX_PROTOCOL_CHAIN],
                },
                iVersion: 2,
                iAddressFamily: AF_INET,
                iMaxSockAddr: SOCKADDR_IN_LEN,
                iMinSockAddr: SOCKADDR_IN_LEN,
                iSocketType: e.socket_type,
                iProtocol: e.protocol,
                iProtocolMaxOffset: 0,
                iNetworkByteOrder: BIGENDIAN,
                iSecurityScheme: SECURITY_PROTOCOL_NONE,
                dwMessageSize: e.message_size,
                dwProviderReserved: 0,
                szProtocol: sz_protocol(e.name),
            })
            .collect()
    })
}

/// The first entry (in registration order) for (`af`, `type`, `protocol`); protocol 0 matches
/// only entries flagged `PFL_MATCHES_PROTOCOL_ZERO`.
#[allow(dead_code)] // for WSASocket's catalog lookup (CHECKLIST 32, 447)
pub(crate) fn find(af: i32, r#type: i32, protocol: i32) -> Option<&'static WSAPROTOCOL_INFO> {
    catalog().iter().find(|e| {
        let protocol_matches = if protocol == 0 {
            e.dwProviderFlags & PFL_MATCHES_PROTOCOL_ZERO != 0
        } else {
            (e.iProtocol..=e.iProtocol + e.iProtocolMaxOffset).contains(&protocol)
        };
        e.iAddressFamily == af && e.iSocketType == r#type && protocol_matches
    })
}

/// The entry whose `dwCatalogEntryId` is `id`.
#[allow(dead_code)] // for WSASocket with lpProtocolInfo (CHECKLIST §1.2, issue 7)
pub(crate) fn by_catalog_id(id: u32) -> Option<&'static WSAPROTOCOL_INFO> {
    catalog().iter().find(|e| e.dwCatalogEntryId == id)
}

/// Whether `WSAEnumProtocols` may return `e`: never layered protocols or hidden entries.
fn enumerable(e: &WSAPROTOCOL_INFO) -> bool {
    e.ProtocolChain.ChainLen != LAYERED_PROTOCOL && e.dwProviderFlags & PFL_HIDDEN == 0
}

impl Winsock {
    /// `WSAEnumProtocols` (CHECKLIST §1.11): copies the catalog entries, in registration order,
    /// into `lpProtocolBuffer` and returns how many it copied. Layered and `PFL_HIDDEN` entries
    /// are never returned.
    ///
    /// * `lpiProtocols`: `None` (NULL) returns every entry; otherwise only entries whose
    ///   `iProtocol` is listed. The C array is NULL-terminated; the slice may be too, and a 0
    ///   ends the list there (so `Some(&[IPPROTO_UDP, 0])` and `Some(&[IPPROTO_UDP])` are the
    ///   same filter, and `Some(&[0])` matches nothing).
    /// * `lpdwBufferLength`: in, the buffer's size in **bytes** (`WSAPROTOCOL_INFO_LEN` per
    ///   entry); out, the bytes all the requested entries need. The buffer must take them all:
    ///   otherwise `WSAENOBUFS`, with the needed size written and the buffer untouched. `None`
    ///   stands for a NULL buffer (the usual way to ask for the size).
    ///
    /// A length larger than `lpProtocolBuffer` really is (the Rust face of a bad pointer/length
    /// pair) is `WSAEINVAL` (CHECKLIST 449 †). `XP1_QOS_SUPPORTED` is cleared from every entry
    /// when the stack is configured without QoS (`StackConfig::qos_support`), since the QoS
    /// ioctls then fail.
    pub fn WSAEnumProtocols(
        &self,
        lpiProtocols: Option<&[i32]>,
        lpProtocolBuffer: Option<&mut [WSAPROTOCOL_INFO]>,
        lpdwBufferLength: &mut u32,
    ) -> Result<i32, WsaError> {
        record(self.started())?;
        let filter = lpiProtocols.map(|p| {
            let end = p.iter().position(|&x| x == 0).unwrap_or(p.len());
            &p[..end]
        });
        let qos = self.stack.config().qos_support;
        let chosen: Vec<WSAPROTOCOL_INFO> = catalog()
            .iter()
            .filter(|e| enumerable(e))
            .filter(|e| filter.is_none_or(|f| f.contains(&e.iProtocol)))
            .map(|e| {
                let mut e = *e;
                if !qos {
                    e.dwServiceFlags1 &= !XP1_QOS_SUPPORTED;
                }
                e
            })
            .collect();
        let have = lpProtocolBuffer.as_ref().map_or(0, |b| b.len());
        let have_bytes = u64::try_from(have)
            .unwrap_or(u64::MAX)
            .saturating_mul(u64::from(WSAPROTOCOL_INFO_LEN));
        if u64::from(*lpdwBufferLength) > have_bytes {
            return record(Err(WsaError::WSAEINVAL));
        }
        let need = chosen.len() as u32 * WSAPROTOCOL_INFO_LEN;
        if *lpdwBufferLength < need {
            *lpdwBufferLength = need;
            return record(Err(WsaError::WSAENOBUFS));
        }
        *lpdwBufferLength = need;
        if let Some(buf) = lpProtocolBuffer {
            buf[..chosen.len()].copy_from_slice(&chosen);
        }
        Ok(chosen.len() as i32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The ANSI layout is the 372 bytes of WINSOCK2.H's `WSAPROTOCOL_INFOA`.
    #[test]
    fn layout() {
        assert_eq!(std::mem::size_of::<GUID>(), 16);
        assert_eq!(std::mem::size_of::<WSAPROTOCOLCHAIN>(), 32);
        assert_eq!(WSAPROTOCOL_INFO_LEN, 372);
    }

    /// Ids and provider GUIDs are distinct; lookups by id and by triple find the same entries.
    #[test]
    fn lookups() {
        let c = catalog();
        for (i, e) in c.iter().enumerate() {
            assert_eq!(by_catalog_id(e.dwCatalogEntryId), Some(e));
            for f in &c[i + 1..] {
                assert_ne!(e.dwCatalogEntryId, f.dwCatalogEntryId);
                assert_ne!(e.ProviderId, f.ProviderId);
            }
        }
        assert_eq!(by_catalog_id(0), None);
        let tcp = find(AF_INET, SOCK_STREAM, 0).expect("TCP for protocol 0");
        assert_eq!(tcp.iProtocol, IPPROTO_TCP);
        assert_eq!(find(AF_INET, SOCK_STREAM, IPPROTO_TCP), Some(tcp));
        let udp = find(AF_INET, SOCK_DGRAM, 0).expect("UDP for protocol 0");
        assert_eq!(udp.iProtocol, IPPROTO_UDP);
        assert_eq!(
            find(AF_INET, SOCK_RAW, IPPROTO_ICMP).map(|e| e.protocol_name()),
            Some("ws2 TCP/IP [ICMP raw]".to_string())
        );
        assert_eq!(find(AF_INET, SOCK_RAW, 0), None, "raw has no default");
        assert_eq!(find(AF_INET, SOCK_STREAM, IPPROTO_UDP), None);
        assert_eq!(find(AF_INET6, SOCK_STREAM, 0), None);
    }

    #[test]
    fn long_names_are_cut_and_terminated() {
        let sz = sz_protocol(&"x".repeat(400));
        assert_eq!(sz[WSAPROTOCOL_LEN], 0);
        assert_eq!(sz[WSAPROTOCOL_LEN - 1], b'x');
    }
}
