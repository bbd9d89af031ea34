//! Constants and structures of the Winsock API, with the header spellings.
//!
//! Values are the ones CHECKLIST Appendix D gives from WINSOCK2.H 2.2.x; structures follow
//! CHECKLIST §1.0.2 field for field.
#![allow(non_camel_case_types, non_snake_case, missing_docs)]

use std::net::{Ipv4Addr, SocketAddrV4};

/// An opaque socket handle (CHECKLIST §1.0.1): any value but `INVALID_SOCKET` may be valid.
pub type SOCKET = usize;
/// Never a valid socket; what a failed creation function returns.
pub const INVALID_SOCKET: SOCKET = !0;
/// What an `int` function returns on failure.
pub const SOCKET_ERROR: i32 = -1;

pub const AF_UNSPEC: i32 = 0;
pub const AF_INET: i32 = 2;
pub const AF_INET6: i32 = 23;
pub const SOCK_STREAM: i32 = 1;
pub const SOCK_DGRAM: i32 = 2;
pub const SOCK_RAW: i32 = 3;
pub const SOCK_RDM: i32 = 4;
pub const SOCK_SEQPACKET: i32 = 5;
pub const IPPROTO_IP: i32 = 0;
pub const IPPROTO_ICMP: i32 = 1;
pub const IPPROTO_IGMP: i32 = 2;
pub const IPPROTO_TCP: i32 = 6;
pub const IPPROTO_UDP: i32 = 17;
pub const IPPROTO_RAW: i32 = 255;
pub const FROM_PROTOCOL_INFO: i32 = -1;

pub const INADDR_ANY: u32 = 0;
pub const INADDR_LOOPBACK: u32 = 0x7f00_0001;
pub const INADDR_BROADCAST: u32 = 0xffff_ffff;
pub const INADDR_NONE: u32 = 0xffff_ffff;
pub const ADDR_ANY: u32 = INADDR_ANY;
pub const SOMAXCONN: i32 = 0x7fff_ffff;
pub const FD_SETSIZE: usize = 64;

pub const SOL_SOCKET: i32 = 0xffff;
pub const SO_DEBUG: i32 = 0x0001;
pub const SO_ACCEPTCONN: i32 = 0x0002;
pub const SO_REUSEADDR: i32 = 0x0004;
pub const SO_KEEPALIVE: i32 = 0x0008;
pub const SO_DONTROUTE: i32 = 0x0010;
pub const SO_BROADCAST: i32 = 0x0020;
pub const SO_USELOOPBACK: i32 = 0x0040;
pub const SO_LINGER: i32 = 0x0080;
pub const SO_OOBINLINE: i32 = 0x0100;
pub const SO_DONTLINGER: i32 = !SO_LINGER;
pub const SO_SNDBUF: i32 = 0x1001;
pub const SO_RCVBUF: i32 = 0x1002;
pub const SO_SNDLOWAT: i32 = 0x1003;
pub const SO_RCVLOWAT: i32 = 0x1004;
pub const SO_SNDTIMEO: i32 = 0x1005;
pub const SO_RCVTIMEO: i32 = 0x1006;
pub const SO_ERROR: i32 = 0x1007;
pub const SO_TYPE: i32 = 0x1008;
pub const SO_GROUP_ID: i32 = 0x2001;
pub const SO_GROUP_PRIORITY: i32 = 0x2002;
pub const SO_MAX_MSG_SIZE: i32 = 0x2003;
pub const SO_PROTOCOL_INFOA: i32 = 0x2004;
pub const SO_PROTOCOL_INFOW: i32 = 0x2005;
pub const SO_PROTOCOL_INFO: i32 = SO_PROTOCOL_INFOA;
pub const PVD_CONFIG: i32 = 0x3001;
pub const TCP_NODELAY: i32 = 0x0001;
pub const TCP_MAXSEG: i32 = 0x0002;
pub const SO_UPDATE_ACCEPT_CONTEXT: i32 = 0x700B;
pub const SO_CONNECT_TIME: i32 = 0x700C;

pub const MSG_OOB: i32 = 0x1;
pub const MSG_PEEK: i32 = 0x2;
pub const MSG_DONTROUTE: i32 = 0x4;
pub const MSG_PARTIAL: i32 = 0x8000;

pub const SD_RECEIVE: i32 = 0;
pub const SD_SEND: i32 = 1;
pub const SD_BOTH: i32 = 2;

pub const WSA_FLAG_OVERLAPPED: u32 = 0x01;
pub const WSA_FLAG_MULTIPOINT_C_ROOT: u32 = 0x02;
pub const WSA_FLAG_MULTIPOINT_C_LEAF: u32 = 0x04;
pub const WSA_FLAG_MULTIPOINT_D_ROOT: u32 = 0x08;
pub const WSA_FLAG_MULTIPOINT_D_LEAF: u32 = 0x10;
pub const SG_UNCONSTRAINED_GROUP: u32 = 0x01;
pub const SG_CONSTRAINED_GROUP: u32 = 0x02;

pub const IOC_VOID: u32 = 0x2000_0000;
pub const IOC_OUT: u32 = 0x4000_0000;
pub const IOC_IN: u32 = 0x8000_0000;
/// `IOC_INOUT`: input and output buffers.
pub const IOC_INOUT: u32 = IOC_IN | IOC_OUT;
/// `IOC_WS2`: the Winsock 2 generic ioctl type (T == 1).
pub const IOC_WS2: u32 = 0x0800_0000;
/// `SIO_FLUSH`: discards the send queue; pending overlapped sends end `WSA_OPERATION_ABORTED`.
pub const SIO_FLUSH: u32 = IOC_VOID | IOC_WS2 | 4;
pub const FIONBIO: i32 = 0x8004_667Eu32 as i32;
pub const FIONREAD: i32 = 0x4004_667F;
pub const SIOCATMARK: i32 = 0x4004_7307;

pub const WSADESCRIPTION_LEN: usize = 256;
pub const WSASYS_STATUS_LEN: usize = 128;

/// `MAKEWORD(low, high)`: a version word has the major version in the low byte.
pub const fn MAKEWORD(low: u8, high: u8) -> u16 {
    (low as u16) | ((high as u16) << 8)
}
/// The low byte of a word (the major version of a version word).
pub const fn LOBYTE(w: u16) -> u8 {
    (w & 0xff) as u8
}
/// The high byte of a word (the minor version of a version word).
pub const fn HIBYTE(w: u16) -> u8 {
    (w >> 8) as u8
}

/// `struct in_addr`: the address in network byte order.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IN_ADDR {
    pub S_addr: u32,
}

/// `struct sockaddr_in` (16 bytes). `sin_port` and `sin_addr` are in network byte order,
/// `sin_family` in host order (CHECKLIST §1.0.1). The only family this provider has, so the API
/// takes it wherever the spec says `struct sockaddr` ([`SOCKADDR`]).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SOCKADDR_IN {
    pub sin_family: i16,
    pub sin_port: u16,
    pub sin_addr: IN_ADDR,
    pub sin_zero: [u8; 8],
}

/// `struct sockaddr`; see [`SOCKADDR_IN`].
pub type SOCKADDR = SOCKADDR_IN;

/// `sizeof(struct sockaddr_in)`.
pub const SOCKADDR_IN_LEN: i32 = 16;

impl SOCKADDR_IN {
    /// An `AF_INET` address in the API's byte order.
    pub fn new(addr: SocketAddrV4) -> SOCKADDR_IN {
        SOCKADDR_IN {
            sin_family: AF_INET as i16,
            sin_port: addr.port().to_be(),
            sin_addr: IN_ADDR {
                S_addr: u32::from_ne_bytes(addr.ip().octets()),
            },
            sin_zero: [0; 8],
        }
    }

    /// The 16 bytes of the structure as it lies in memory (for `WSABUF`s that carry an
    /// address, like `WSAAccept`'s `lpCallerId`).
    pub fn to_bytes(&self) -> [u8; 16] {
        let mut b = [0u8; 16];
        b[0..2].copy_from_slice(&self.sin_family.to_ne_bytes());
        b[2..4].copy_from_slice(&self.sin_port.to_ne_bytes());
        b[4..8].copy_from_slice(&self.sin_addr.S_addr.to_ne_bytes());
        b[8..16].copy_from_slice(&self.sin_zero);
        b
    }

    /// The structure from its 16 bytes (`None` if shorter or not `AF_INET`).
    pub fn from_bytes(b: &[u8]) -> Option<SOCKADDR_IN> {
        let b = b.get(..16)?;
        let family = i16::from_ne_bytes([b[0], b[1]]);
        (family == AF_INET as i16).then(|| SOCKADDR_IN {
            sin_family: family,
            sin_port: u16::from_ne_bytes([b[2], b[3]]),
            sin_addr: IN_ADDR {
                S_addr: u32::from_ne_bytes([b[4], b[5], b[6], b[7]]),
            },
            sin_zero: [b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]],
        })
    }

    /// The address as a Rust value.
    pub fn to_socket_addr(&self) -> SocketAddrV4 {
        SocketAddrV4::new(
            Ipv4Addr::from(self.sin_addr.S_addr.to_ne_bytes()),
            u16::from_be(self.sin_port),
        )
    }
}

impl From<SocketAddrV4> for SOCKADDR_IN {
    fn from(a: SocketAddrV4) -> Self {
        SOCKADDR_IN::new(a)
    }
}

/// `struct linger`: `l_onoff` nonzero enables lingering for `l_linger` seconds.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LINGER {
    pub l_onoff: u16,
    pub l_linger: u16,
}

/// `struct timeval` for `select`; `{0, 0}` polls.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TIMEVAL {
    pub tv_sec: i32,
    pub tv_usec: i32,
}

/// `fd_set`: an **array** of sockets with a count, not a bitmask (CHECKLIST §1.6.2).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FD_SET {
    pub fd_count: u32,
    pub fd_array: [SOCKET; FD_SETSIZE],
}

impl Default for FD_SET {
    fn default() -> Self {
        FD_SET {
            fd_count: 0,
            fd_array: [INVALID_SOCKET; FD_SETSIZE],
        }
    }
}

impl FD_SET {
    /// The sockets in the set.
    pub fn sockets(&self) -> &[SOCKET] {
        &self.fd_array[..(self.fd_count as usize).min(FD_SETSIZE)]
    }
}

/// `FD_ZERO`: empties the set.
pub fn FD_ZERO(set: &mut FD_SET) {
    set.fd_count = 0;
}

/// `FD_SET`: adds `s` unless it is there already or the set is full (then it is ignored).
pub fn FD_SET(s: SOCKET, set: &mut FD_SET) {
    let n = (set.fd_count as usize).min(FD_SETSIZE);
    if set.fd_array[..n].contains(&s) || n == FD_SETSIZE {
        return;
    }
    set.fd_array[n] = s;
    set.fd_count = n as u32 + 1;
}

/// `FD_CLR`: removes `s`, keeping the order of the others.
pub fn FD_CLR(s: SOCKET, set: &mut FD_SET) {
    let n = (set.fd_count as usize).min(FD_SETSIZE);
    if let Some(i) = set.fd_array[..n].iter().position(|x| *x == s) {
        set.fd_array.copy_within(i + 1..n, i);
        set.fd_count = n as u32 - 1;
    }
}

/// `FD_ISSET`: whether `s` is in the set.
pub fn FD_ISSET(s: SOCKET, set: &FD_SET) -> bool {
    set.sockets().contains(&s)
}

/// `WSADATA`, filled by `WSAStartup`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WSADATA {
    pub wVersion: u16,
    pub wHighVersion: u16,
    /// At most `WSADESCRIPTION_LEN` printable characters.
    pub szDescription: String,
    /// At most `WSASYS_STATUS_LEN` printable characters.
    pub szSystemStatus: String,
    /// Kept for 1.1 applications; 2.x applications ignore it.
    pub iMaxSockets: u16,
    /// Kept for 1.1 applications; 2.x applications use `SO_MAX_MSG_SIZE`.
    pub iMaxUdpDg: u16,
    /// Kept for 1.1 applications (always 0 here); 2.x applications use `PVD_CONFIG`.
    pub lpVendorInfo: usize,
}

// ---- Protocol catalog (CHECKLIST §1.11, Appendix D) -------------------------------------------
// Kept before the test module (clippy's items_after_test_module); used by `catalog.rs`.

/// `XP1_CONNECTIONLESS`: datagram service; clear means connection-oriented.
pub const XP1_CONNECTIONLESS: u32 = 0x0000_0001;
/// `XP1_GUARANTEED_DELIVERY`: all data sent is delivered.
pub const XP1_GUARANTEED_DELIVERY: u32 = 0x0000_0002;
/// `XP1_GUARANTEED_ORDER`: data arrives in the order sent, without duplicates.
pub const XP1_GUARANTEED_ORDER: u32 = 0x0000_0004;
/// `XP1_MESSAGE_ORIENTED`: message boundaries are kept.
pub const XP1_MESSAGE_ORIENTED: u32 = 0x0000_0008;
/// `XP1_PSEUDO_STREAM`: a message protocol whose receives ignore the boundaries.
pub const XP1_PSEUDO_STREAM: u32 = 0x0000_0010;
/// `XP1_GRACEFUL_CLOSE`: two-phase (graceful) close; clear means abortive close only.
pub const XP1_GRACEFUL_CLOSE: u32 = 0x0000_0020;
/// `XP1_EXPEDITED_DATA`: urgent (out-of-band) data.
pub const XP1_EXPEDITED_DATA: u32 = 0x0000_0040;
/// `XP1_CONNECT_DATA`: connect data.
pub const XP1_CONNECT_DATA: u32 = 0x0000_0080;
/// `XP1_DISCONNECT_DATA`: disconnect data.
pub const XP1_DISCONNECT_DATA: u32 = 0x0000_0100;
/// `XP1_SUPPORT_BROADCAST`: broadcast.
pub const XP1_SUPPORT_BROADCAST: u32 = 0x0000_0200;
/// `XP1_SUPPORT_MULTIPOINT` (seed: `XP1_SUPPORT_MULTIPPOINT`): multipoint; the two plane bits
/// below are meaningful.
pub const XP1_SUPPORT_MULTIPOINT: u32 = 0x0000_0400;
/// `XP1_MULTIPOINT_CONTROL_PLANE`: set = rooted control plane, clear = non-rooted.
pub const XP1_MULTIPOINT_CONTROL_PLANE: u32 = 0x0000_0800;
/// `XP1_MULTIPOINT_DATA_PLANE`: set = rooted data plane, clear = non-rooted.
pub const XP1_MULTIPOINT_DATA_PLANE: u32 = 0x0000_1000;
/// `XP1_QOS_SUPPORTED`: quality of service requests.
pub const XP1_QOS_SUPPORTED: u32 = 0x0000_2000;
/// `XP1_INTERRUPT` (seed: `XP1_RESERVED`): reserved.
pub const XP1_INTERRUPT: u32 = 0x0000_4000;
/// `XP1_RESERVED`: the seed's name for [`XP1_INTERRUPT`].
pub const XP1_RESERVED: u32 = XP1_INTERRUPT;
/// `XP1_UNI_SEND`: send-only (unidirectional); at most one of this and [`XP1_UNI_RECV`].
pub const XP1_UNI_SEND: u32 = 0x0000_8000;
/// `XP1_UNI_RECV`: receive-only (unidirectional).
pub const XP1_UNI_RECV: u32 = 0x0001_0000;
/// `XP1_IFS_HANDLES`: descriptors are OS IFS handles (never here: CHECKLIST Part 3 #7).
pub const XP1_IFS_HANDLES: u32 = 0x0002_0000;
/// `XP1_PARTIAL_MESSAGE`: `MSG_PARTIAL` is supported by `WSASend`/`WSASendTo`.
pub const XP1_PARTIAL_MESSAGE: u32 = 0x0004_0000;

/// `PFL_MULTIPLE_PROTO_ENTRIES`: one of several entries for one protocol.
pub const PFL_MULTIPLE_PROTO_ENTRIES: u32 = 0x0000_0001;
/// `PFL_RECOMMENDED_PROTO_ENTRY`: the recommended one of several entries.
pub const PFL_RECOMMENDED_PROTO_ENTRY: u32 = 0x0000_0002;
/// `PFL_HIDDEN`: never returned by `WSAEnumProtocols`.
pub const PFL_HIDDEN: u32 = 0x0000_0004;
/// `PFL_MATCHES_PROTOCOL_ZERO`: protocol 0 in `socket`/`WSASocket` matches this entry.
pub const PFL_MATCHES_PROTOCOL_ZERO: u32 = 0x0000_0008;

/// `BIGENDIAN`: `iNetworkByteOrder` of a big-endian (network order) protocol.
pub const BIGENDIAN: i32 = 0x0000;
/// `LITTLEENDIAN`: `iNetworkByteOrder` of a little-endian protocol.
pub const LITTLEENDIAN: i32 = 0x0001;
/// `SECURITY_PROTOCOL_NONE`: `iSecurityScheme` of a protocol without security.
pub const SECURITY_PROTOCOL_NONE: i32 = 0x0000;

/// `MAX_PROTOCOL_CHAIN`: length of `WSAPROTOCOLCHAIN::ChainEntries`.
pub const MAX_PROTOCOL_CHAIN: usize = 7;
/// `BASE_PROTOCOL`: `ChainLen` of a base protocol.
pub const BASE_PROTOCOL: i32 = 1;
/// `LAYERED_PROTOCOL`: `ChainLen` of a layered protocol (never enumerated).
pub const LAYERED_PROTOCOL: i32 = 0;
/// `WSAPROTOCOL_LEN`: the longest `szProtocol`, without its terminating NUL.
pub const WSAPROTOCOL_LEN: usize = 255;

// ---- end of the protocol catalog block ---------------------------------------------------------

// ---- Microsoft extensions (MSWSOCK: TransmitFile; winsock/mswsock.rs) ---------------------------

/// `TF_DISCONNECT`: a transport-level disconnect (graceful: queued data, then FIN) once all the
/// data is queued.
pub const TF_DISCONNECT: u32 = 0x01;
/// `TF_REUSE_SOCKET`: with [`TF_DISCONNECT`] only; afterwards the socket is neither bound nor
/// connected and can be `AcceptEx`'s `sAcceptSocket` again.
pub const TF_REUSE_SOCKET: u32 = 0x02;
/// `TF_WRITE_BEHIND`: return at once, the transfer going on in the background, with no
/// completion indication; not combinable with the two above.
pub const TF_WRITE_BEHIND: u32 = 0x04;
/// `TF_USE_DEFAULT_WORKER`: accepted, no effect (the transfer always runs on a ws2 thread).
pub const TF_USE_DEFAULT_WORKER: u32 = 0x00;
/// `TF_USE_SYSTEM_THREAD`: accepted, no effect (as [`TF_USE_DEFAULT_WORKER`]).
pub const TF_USE_SYSTEM_THREAD: u32 = 0x10;
/// `TF_USE_KERNEL_APC`: accepted, no effect (there is no kernel APC here).
pub const TF_USE_KERNEL_APC: u32 = 0x20;

// ---- end of the Microsoft extensions block -------------------------------------------------------

#[cfg(test)]
mod tests {
    use super::*;

    /// Conformance: 250 — FD_SET ignores duplicates and FD_ISSET is right after FD_CLR.
    #[test]
    fn fd_set_macros() {
        let mut set = FD_SET::default();
        FD_SET(5, &mut set);
        FD_SET(5, &mut set);
        FD_SET(9, &mut set);
        assert_eq!(set.fd_count, 2);
        assert!(FD_ISSET(5, &set) && FD_ISSET(9, &set));
        FD_CLR(5, &mut set);
        assert!(!FD_ISSET(5, &set) && FD_ISSET(9, &set));
        for s in 100..200 {
            FD_SET(s, &mut set);
        }
        assert_eq!(
            set.fd_count as usize, FD_SETSIZE,
            "adds past FD_SETSIZE are ignored"
        );
        FD_ZERO(&mut set);
        assert_eq!(set.fd_count, 0);
    }

    /// Conformance: 513 — sin_port in network order, sin_family in host order.
    #[test]
    fn sockaddr_byte_order() {
        let a = SOCKADDR_IN::new("1.2.3.4:8080".parse().unwrap());
        assert_eq!(a.sin_port.to_ne_bytes(), [0x1f, 0x90]);
        assert_eq!(a.sin_addr.S_addr.to_ne_bytes(), [1, 2, 3, 4]);
        assert_eq!(a.sin_family, 2);
        assert_eq!(a.to_socket_addr().to_string(), "1.2.3.4:8080");
        assert_eq!(std::mem::size_of::<SOCKADDR_IN>(), 16);
    }

    /// Conformance: 4 — the version word has the major version in the low byte.
    #[test]
    fn version_words() {
        assert_eq!(MAKEWORD(2, 2), 0x0202);
        assert_eq!(LOBYTE(MAKEWORD(1, 0)), 1);
        assert_eq!(HIBYTE(MAKEWORD(2, 1)), 1);
    }
}
