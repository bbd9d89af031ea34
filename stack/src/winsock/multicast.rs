//! Multipoint and IP multicast on the Winsock face (CHECKLIST §1.10): `WSAJoinLeaf` on the
//! UDP entry (non-rooted control and data planes), `SIO_MULTIPOINT_LOOPBACK`,
//! `SIO_MULTICAST_SCOPE`, and the Deering options with source-specific membership (the
//! Protocol-Specific Annex's `IP_*` options; values as in `ws2tcpip.h`).
//!
//! Read first: CHECKLIST §1.10.3 (`WSAJoinLeaf`), §1.10.5, §1.10.6, D-7, D-16, D-17, and the
//! engine side in `engine/multicast.rs`.

use std::net::Ipv4Addr;

use super::{names::read_name, record, types::*, Winsock, QOS};
use crate::engine::api::options::{JoinBegun, JoinLeaf, MultipointIoctl, QosRequest};
use crate::engine::multicast::JoinRole;
use crate::engine::SocketId;
use crate::error::WsaError;
use crate::notify::overlapped::WSABUF;

/// `WSAJoinLeaf`: the socket only sends; no membership, no IGMP (§1.10.6).
pub const JL_SENDER_ONLY: u32 = 0x01;
/// `WSAJoinLeaf`: the socket only receives.
pub const JL_RECEIVER_ONLY: u32 = 0x02;
/// `WSAJoinLeaf`: the socket sends and receives.
pub const JL_BOTH: u32 = 0x04;

/// `SIO_MULTIPOINT_LOOPBACK` (in: BOOL): whether a socket receives its own multipoint sends.
pub const SIO_MULTIPOINT_LOOPBACK: u32 = IOC_IN | IOC_WS2 | 9;
/// `SIO_MULTICAST_SCOPE` (in: int): the IP TTL of multicast sends; 0 = this host only.
pub const SIO_MULTICAST_SCOPE: u32 = IOC_IN | IOC_WS2 | 10;

/// `IP_MULTICAST_IF` (in_addr): the interface (source address) of multicast sends.
pub const IP_MULTICAST_IF: i32 = 9;
/// `IP_MULTICAST_TTL` (int): as `SIO_MULTICAST_SCOPE`.
pub const IP_MULTICAST_TTL: i32 = 10;
/// `IP_MULTICAST_LOOP` (BOOL): as `SIO_MULTIPOINT_LOOPBACK`.
pub const IP_MULTICAST_LOOP: i32 = 11;
/// `IP_ADD_MEMBERSHIP` (`IP_MREQ`): join a group, any source.
pub const IP_ADD_MEMBERSHIP: i32 = 12;
/// `IP_DROP_MEMBERSHIP` (`IP_MREQ`): leave a group.
pub const IP_DROP_MEMBERSHIP: i32 = 13;
/// `IP_ADD_SOURCE_MEMBERSHIP` (`IP_MREQ_SOURCE`): receive the group from this source too.
pub const IP_ADD_SOURCE_MEMBERSHIP: i32 = 15;
/// `IP_DROP_SOURCE_MEMBERSHIP` (`IP_MREQ_SOURCE`): stop receiving it from this source.
pub const IP_DROP_SOURCE_MEMBERSHIP: i32 = 16;
/// `IP_BLOCK_SOURCE` (`IP_MREQ_SOURCE`): an any-source member stops hearing this source.
pub const IP_BLOCK_SOURCE: i32 = 17;
/// `IP_UNBLOCK_SOURCE` (`IP_MREQ_SOURCE`): undoes `IP_BLOCK_SOURCE`.
pub const IP_UNBLOCK_SOURCE: i32 = 18;

/// `struct ip_mreq`: addresses in network byte order, as they travel in `optval`.
#[allow(non_camel_case_types)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IP_MREQ {
    /// The group.
    pub imr_multiaddr: [u8; 4],
    /// The interface's address (0.0.0.0 = the default).
    pub imr_interface: [u8; 4],
}

impl IP_MREQ {
    /// A request for `group` on `interface`.
    pub fn new(group: Ipv4Addr, interface: Ipv4Addr) -> IP_MREQ {
        IP_MREQ {
            imr_multiaddr: group.octets(),
            imr_interface: interface.octets(),
        }
    }

    /// The 8 bytes `setsockopt` takes.
    pub fn as_bytes(&self) -> [u8; 8] {
        let mut b = [0; 8];
        b[..4].copy_from_slice(&self.imr_multiaddr);
        b[4..].copy_from_slice(&self.imr_interface);
        b
    }
}

/// `struct ip_mreq_source`: addresses in network byte order.
#[allow(non_camel_case_types)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IP_MREQ_SOURCE {
    /// The group.
    pub imr_multiaddr: [u8; 4],
    /// The source.
    pub imr_sourceaddr: [u8; 4],
    /// The interface's address (0.0.0.0 = the default).
    pub imr_interface: [u8; 4],
}

impl IP_MREQ_SOURCE {
    /// A request for (`source`, `group`) on `interface`.
    pub fn new(group: Ipv4Addr, source: Ipv4Addr, interface: Ipv4Addr) -> IP_MREQ_SOURCE {
        IP_MREQ_SOURCE {
            imr_multiaddr: group.octets(),
            imr_sourceaddr: source.octets(),
            imr_interface: interface.octets(),
        }
    }

    /// The 12 bytes `setsockopt` takes.
    pub fn as_bytes(&self) -> [u8; 12] {
        let mut b = [0; 12];
        b[..4].copy_from_slice(&self.imr_multiaddr);
        b[4..8].copy_from_slice(&self.imr_sourceaddr);
        b[8..].copy_from_slice(&self.imr_interface);
        b
    }
}

pub(super) fn addr_at(v: &[u8], at: usize) -> Ipv4Addr {
    Ipv4Addr::new(v[at], v[at + 1], v[at + 2], v[at + 3])
}

/// `optval` cut to `optlen`, at least `min` bytes long (`WSAEFAULT` otherwise).
pub(super) fn opt_bytes(optval: Option<&[u8]>, optlen: i32, min: usize) -> Result<&[u8], WsaError> {
    let v = optval.ok_or(WsaError::WSAEFAULT)?;
    let len = usize::try_from(optlen).map_err(|_| WsaError::WSAEFAULT)?;
    if len < min || v.len() < min {
        return Err(WsaError::WSAEFAULT);
    }
    Ok(&v[..min])
}

pub(super) fn int_of(v: &[u8]) -> i32 {
    i32::from_ne_bytes([v[0], v[1], v[2], v[3]])
}

/// A TTL from an int: 0–255, else `WSAEINVAL` (CHECKLIST 410).
pub(super) fn scope_of(v: i32) -> Result<u8, WsaError> {
    u8::try_from(v).map_err(|_| WsaError::WSAEINVAL)
}

impl Winsock {
    /// `WSAJoinLeaf` (CHECKLIST §1.10.3). On an RMP socket see [`Winsock::rmp_join_leaf`]
    /// (rooted multipoint, docs/rmp.md). On the UDP entry, whose control and data planes are
    /// non-rooted (IP multicast, §1.10.6): `s` must be a c_leaf/d_leaf socket (else
    /// `WSAEOPNOTSUPP`, D-7), `name` a multicast group (else `WSAEADDRNOTAVAIL`). The same
    /// socket is returned. An unbound socket is bound to 0.0.0.0 and the group's port. Unless
    /// `JL_SENDER_ONLY`, the stack joins the group: a blocking call returns once the IGMP report
    /// has been handed to the link; a non-blocking one returns at once and `FD_CONNECT` follows
    /// then. The group becomes the socket's default destination (`send`/`WSASend`).
    /// `lpSQOS`/`lpGQOS` apply as in `WSAConnect`; UDP carries no connect data
    /// (`WSAEPROTONOSUPPORT` for caller data, `lpCalleeData` comes back empty). Joining a session
    /// the socket is in is `WSAEISCONN`; a second join while one is outstanding `WSAEALREADY`.
    #[allow(clippy::too_many_arguments)]
    pub fn WSAJoinLeaf(
        &self,
        s: SOCKET,
        name: Option<&SOCKADDR>,
        namelen: i32,
        lpCallerData: Option<&WSABUF>,
        lpCalleeData: Option<&mut WSABUF>,
        lpSQOS: Option<&QOS>,
        lpGQOS: Option<&QOS>,
        dwFlags: u32,
    ) -> Result<SOCKET, WsaError> {
        let id = record(self.check(s))?;
        let to = record(read_name(name, namelen, WsaError::WSAEAFNOSUPPORT))?;
        let role = match dwFlags {
            JL_SENDER_ONLY => JoinRole::SenderOnly,
            JL_RECEIVER_ONLY | JL_BOTH => JoinRole::Receiver,
            _ => return record(Err(WsaError::WSAEINVAL)),
        };
        let join = JoinLeaf {
            to,
            role,
            caller_data: lpCallerData.is_some_and(|d| !d.data().is_empty()),
            qos: QosRequest {
                socket: lpSQOS,
                group: lpGQOS,
            },
        };
        let begun = record(self.stack.with_quiet(|core| core.join_leaf_begin(id, join)))?;
        let (nonblocking, joined) = match begun {
            JoinBegun::Rmp { nonblocking } => {
                let flags = record(super::rmp::join_flags(dwFlags).ok_or(WsaError::WSAEINVAL))?;
                return record(self.rmp_join_leaf(
                    s,
                    id,
                    to,
                    lpCallerData,
                    lpCalleeData,
                    lpSQOS,
                    lpGQOS,
                    flags,
                    nonblocking,
                ));
            }
            JoinBegun::Multicast {
                nonblocking,
                joined,
            } => (nonblocking, joined),
        };
        if let Some(callee) = lpCalleeData {
            callee.len = 0;
        }
        let done = record(joined)?;
        if !done && !nonblocking {
            let r = self.block(Some(id), None, |core| {
                core.mcast_join_complete(id)
                    .map_or(Some(Err(WsaError::WSAEINTR)), |c| c.then_some(Ok(())))
            });
            record(r.unwrap_or(Err(WsaError::WSAEINTR)))?;
        }
        Ok(s)
    }

    /// `SIO_MULTIPOINT_LOOPBACK` and `SIO_MULTICAST_SCOPE` (§1.10.5); `None` = another code.
    /// Both need a multipoint socket (`WSAEINVAL` otherwise, CHECKLIST 406) and a 4-byte input
    /// (`WSAEFAULT`); a scope outside 0–255 is `WSAEINVAL` (410).
    pub(super) fn multipoint_ioctl(
        &self,
        id: SocketId,
        code: u32,
        input: &[u8],
    ) -> Option<Result<u32, WsaError>> {
        if code != SIO_MULTIPOINT_LOOPBACK && code != SIO_MULTICAST_SCOPE {
            return None;
        }
        let value = input.get(..4).map(int_of).ok_or(WsaError::WSAEFAULT);
        let op = if code == SIO_MULTIPOINT_LOOPBACK {
            MultipointIoctl::Loopback(value.map(|v| v != 0))
        } else {
            MultipointIoctl::Scope(value.and_then(scope_of))
        };
        Some(
            self.stack
                .with_quiet(|core| core.sio_multipoint(id, op))
                .map(|()| 0),
        )
    }
}
