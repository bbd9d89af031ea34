//! Socket sharing (`WSADuplicateSocket`, CHECKLIST §1.12), the catalog entry each socket was
//! created from (`SO_PROTOCOL_INFO`) and the provider's `PVD_CONFIG` blob.
//!
//! Read first: CHECKLIST §1.12 `WSADuplicateSocket`, §1.2 `WSASocket` (Shared Sockets) and
//! D-11. The stack lives inside one process, so sharing is in-process: `WSADuplicateSocket`
//! fills a `WSAPROTOCOL_INFO` (the socket's catalog entry) whose `dwProviderReserved` carries a
//! one-shot token; `WSASocket(FROM_PROTOCOL_INFO, …, &info, …)` redeems it for a new
//! descriptor on the same engine socket, and a second use is `WSAEINVAL`. Every descriptor
//! names the same engine socket, so options, registrations and data are shared; the engine
//! socket closes with its last descriptor. `dwProcessId` must be this process (cross-process
//! sharing needs a stack daemon, CHECKLIST Part 3 #8).
//!
//! `PVD_CONFIG` (CHECKLIST 480) is this provider's opaque configuration, 8 bytes: the magic
//! [`PVD_CONFIG_MAGIC`] (`"WS2P"`), then [`PVD_CONFIG_VERSION`] as a little-endian `u16`, then
//! a little-endian `u16` of flags, all zero: the provider has nothing configurable yet.
//! `setsockopt` accepts exactly that (shorter is `WSAEFAULT`, anything else `WSAEINVAL`).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};

use super::catalog::{self, GUID, WSAPROTOCOL_INFO};
use super::{record, types::*, Winsock};
use crate::engine::{Proto, SocketId};
use crate::error::WsaError;

/// The first bytes of a `PVD_CONFIG` blob.
pub const PVD_CONFIG_MAGIC: [u8; 4] = *b"WS2P";
/// The blob format's version.
pub const PVD_CONFIG_VERSION: u16 = 1;
/// Length of a `PVD_CONFIG` blob.
pub const PVD_CONFIG_LEN: usize = 8;

/// Descriptors made by `WSADuplicateSocket` start here, far above any engine id.
const FIRST_DUPLICATE: SOCKET = 1 << 40;

/// Per-application sharing state.
#[derive(Debug)]
pub(super) struct State {
    /// Catalog entry each engine socket was created from (others: by protocol).
    entries: HashMap<SocketId, u32>,
    /// Unredeemed `WSADuplicateSocket` tokens.
    tokens: HashMap<u32, SocketId>,
    /// The next duplicate descriptor.
    next: SOCKET,
}

impl Default for State {
    fn default() -> State {
        State {
            entries: HashMap::new(),
            tokens: HashMap::new(),
            next: FIRST_DUPLICATE,
        }
    }
}

/// Tokens are unique in the process, so one application's token never redeems in another.
static NEXT_TOKEN: AtomicU32 = AtomicU32::new(1);

/// The catalog entry for an engine socket created without a recorded entry (accepted sockets,
/// RMP leaves): the first entry of its type.
fn entry_for(proto: Proto, relay: bool) -> Option<&'static WSAPROTOCOL_INFO> {
    match proto {
        Proto::Tcp => catalog::find(AF_INET, SOCK_STREAM, 0),
        Proto::Udp => catalog::find(AF_INET, SOCK_DGRAM, 0),
        Proto::RawIcmp => catalog::find(AF_INET, SOCK_RAW, IPPROTO_ICMP),
        Proto::Rmp if relay => catalog::find(AF_INET, SOCK_RDM, super::IPPROTO_RMP_RELAY),
        Proto::Rmp => catalog::find(AF_INET, SOCK_RDM, super::IPPROTO_RMP),
    }
}

impl GUID {
    /// The 16 bytes of the GUID as Windows lays it out in memory (little-endian fields).
    pub fn to_bytes(&self) -> [u8; 16] {
        let mut b = [0u8; 16];
        b[..4].copy_from_slice(&self.Data1.to_le_bytes());
        b[4..6].copy_from_slice(&self.Data2.to_le_bytes());
        b[6..8].copy_from_slice(&self.Data3.to_le_bytes());
        b[8..].copy_from_slice(&self.Data4);
        b
    }

    /// The GUID in the first 16 bytes of `b`, if there are 16.
    pub fn from_bytes(b: &[u8]) -> Option<GUID> {
        let b = b.get(..16)?;
        Some(GUID {
            Data1: u32::from_le_bytes([b[0], b[1], b[2], b[3]]),
            Data2: u16::from_le_bytes([b[4], b[5]]),
            Data3: u16::from_le_bytes([b[6], b[7]]),
            Data4: [b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]],
        })
    }
}

impl WSAPROTOCOL_INFO {
    /// The fixed-size fields before `szProtocol`, as `u32`s in declaration order.
    fn words(&self) -> Vec<u32> {
        let g = self.ProviderId.to_bytes();
        let mut w = vec![
            self.dwServiceFlags1,
            self.dwServiceFlags2,
            self.dwServiceFlags3,
            self.dwServiceFlags4,
            self.dwProviderFlags,
        ];
        w.extend(
            g.chunks(4)
                .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]])),
        );
        w.push(self.dwCatalogEntryId);
        w.push(self.ProtocolChain.ChainLen as u32);
        w.extend(self.ProtocolChain.ChainEntries);
        w.extend(
            [
                self.iVersion,
                self.iAddressFamily,
                self.iMaxSockAddr,
                self.iMinSockAddr,
                self.iSocketType,
                self.iProtocol,
                self.iProtocolMaxOffset,
                self.iNetworkByteOrder,
                self.iSecurityScheme,
            ]
            .map(|x| x as u32),
        );
        w.push(self.dwMessageSize);
        w.push(self.dwProviderReserved);
        w
    }

    /// The structure's bytes as `getsockopt(SO_PROTOCOL_INFOA)` returns them (the ANSI layout,
    /// [`super::WSAPROTOCOL_INFO_LEN`] bytes; the GUID in its little-endian memory layout,
    /// the other fields in host order). `wide` gives the `WSAPROTOCOL_INFOW` layout:
    /// `szProtocol` as 256 UTF-16 code units.
    pub fn to_bytes(&self, wide: bool) -> Vec<u8> {
        let mut b: Vec<u8> = self.words().iter().flat_map(|w| w.to_ne_bytes()).collect();
        if wide {
            let mut units: Vec<u16> = self.protocol_name().encode_utf16().collect();
            units.truncate(WSAPROTOCOL_LEN);
            units.resize(WSAPROTOCOL_LEN + 1, 0);
            b.extend(units.iter().flat_map(|u| u.to_ne_bytes()));
        } else {
            b.extend_from_slice(&self.szProtocol);
        }
        b
    }

    /// Reads the ANSI layout written by [`WSAPROTOCOL_INFO::to_bytes`]; `None` if short.
    pub fn from_bytes(b: &[u8]) -> Option<WSAPROTOCOL_INFO> {
        let n = WSAPROTOCOL_INFO::default().words().len();
        let fixed = b.get(..n * 4)?;
        let name = b.get(n * 4..n * 4 + WSAPROTOCOL_LEN + 1)?;
        let w: Vec<u32> = fixed
            .chunks(4)
            .map(|c| u32::from_ne_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        let guid: Vec<u8> = w[5..9].iter().flat_map(|x| x.to_le_bytes()).collect();
        let mut info = WSAPROTOCOL_INFO {
            dwServiceFlags1: w[0],
            dwServiceFlags2: w[1],
            dwServiceFlags3: w[2],
            dwServiceFlags4: w[3],
            dwProviderFlags: w[4],
            ProviderId: GUID::from_bytes(&guid)?,
            dwCatalogEntryId: w[9],
            ..Default::default()
        };
        info.ProtocolChain.ChainLen = w[10] as i32;
        info.ProtocolChain
            .ChainEntries
            .copy_from_slice(&w[11..11 + MAX_PROTOCOL_CHAIN]);
        let r = &w[11 + MAX_PROTOCOL_CHAIN..];
        info.iVersion = r[0] as i32;
        info.iAddressFamily = r[1] as i32;
        info.iMaxSockAddr = r[2] as i32;
        info.iMinSockAddr = r[3] as i32;
        info.iSocketType = r[4] as i32;
        info.iProtocol = r[5] as i32;
        info.iProtocolMaxOffset = r[6] as i32;
        info.iNetworkByteOrder = r[7] as i32;
        info.iSecurityScheme = r[8] as i32;
        info.dwMessageSize = r[9];
        info.dwProviderReserved = r[10];
        info.szProtocol.copy_from_slice(name);
        Some(info)
    }
}

/// The `PVD_CONFIG` blob (see the module docs).
pub(super) fn pvd_config() -> Vec<u8> {
    let mut b = PVD_CONFIG_MAGIC.to_vec();
    b.extend(PVD_CONFIG_VERSION.to_le_bytes());
    b.extend(0u16.to_le_bytes());
    b
}

/// Checks a blob given to `setsockopt(PVD_CONFIG)`.
pub(super) fn check_pvd_config(optval: Option<&[u8]>, optlen: i32) -> Result<(), WsaError> {
    let v = optval.ok_or(WsaError::WSAEFAULT)?;
    if optlen < PVD_CONFIG_LEN as i32 || v.len() < PVD_CONFIG_LEN {
        return Err(WsaError::WSAEFAULT);
    }
    if optlen as usize != PVD_CONFIG_LEN || v[..PVD_CONFIG_LEN] != pvd_config()[..] {
        return Err(WsaError::WSAEINVAL);
    }
    Ok(())
}

impl Winsock {
    /// Records the catalog entry engine socket `id` was created from.
    pub(super) fn record_entry(&self, id: SocketId, catalog_id: u32) {
        self.session().sharing.entries.insert(id, catalog_id);
    }

    /// The catalog entry of engine socket `id` (`SO_PROTOCOL_INFO`, `WSADuplicateSocket`).
    pub(super) fn entry_of(&self, id: SocketId) -> Result<WSAPROTOCOL_INFO, WsaError> {
        let recorded = self.session().sharing.entries.get(&id).copied();
        if let Some(e) = recorded.and_then(catalog::by_catalog_id) {
            return Ok(*e);
        }
        let kind = self.stack.with_quiet(|core| core.socket_kind(id))?;
        entry_for(kind.proto, kind.relay)
            .copied()
            .ok_or(WsaError::WSAEINVAL)
    }

    /// Redeems a `WSADuplicateSocket` token: a new descriptor on the same engine socket.
    /// A token already used, or never issued, is `WSAEINVAL` (D-11).
    pub(super) fn redeem(&self, token: u32) -> Result<SOCKET, WsaError> {
        let mut session = self.session();
        let id = session
            .sharing
            .tokens
            .remove(&token)
            .ok_or(WsaError::WSAEINVAL)?;
        if !session.sockets.values().any(|&v| v == id) {
            // Every descriptor closed before the token was used: the socket is gone.
            return Err(WsaError::WSAEINVAL);
        }
        let s = session.sharing.next;
        session.sharing.next += 1;
        session.sockets.insert(s, id);
        Ok(s)
    }

    /// Forgets descriptor `s`; `true` when it was the last one of its engine socket `id`,
    /// which the caller then closes (tokens and the recorded entry are dropped with it).
    pub(super) fn release(&self, s: SOCKET, id: SocketId) -> bool {
        let mut session = self.session();
        session.sockets.remove(&s);
        let last = !session.sockets.values().any(|&v| v == id);
        if last {
            session.sharing.entries.remove(&id);
            session.sharing.tokens.retain(|_, v| *v != id);
        }
        last
    }

    /// Whether engine socket `id` has descriptors other than `s`.
    pub(super) fn shared_elsewhere(&self, s: SOCKET, id: SocketId) -> bool {
        self.session()
            .sockets
            .iter()
            .any(|(&d, &v)| v == id && d != s)
    }

    /// `WSADuplicateSocket` (CHECKLIST §1.12, D-11): fills `lpProtocolInfo` with the socket's
    /// catalog entry and a one-shot token in `dwProviderReserved`, for
    /// `WSASocket(FROM_PROTOCOL_INFO, FROM_PROTOCOL_INFO, FROM_PROTOCOL_INFO, info, …)` in this
    /// process. `dwProcessId` other than this process's is `WSAEINVAL` (in-process only);
    /// a NULL `lpProtocolInfo` is `WSAEFAULT`; a non-socket `WSAENOTSOCK`.
    pub fn WSADuplicateSocket(
        &self,
        s: SOCKET,
        dwProcessId: u32,
        lpProtocolInfo: Option<&mut WSAPROTOCOL_INFO>,
    ) -> Result<(), WsaError> {
        let id = record(self.check(s))?;
        let Some(out) = lpProtocolInfo else {
            return record(Err(WsaError::WSAEFAULT));
        };
        if dwProcessId != std::process::id() {
            return record(Err(WsaError::WSAEINVAL));
        }
        let mut info = record(self.entry_of(id))?;
        let token = NEXT_TOKEN.fetch_add(1, Ordering::Relaxed).max(1);
        self.session().sharing.tokens.insert(token, id);
        info.dwProviderReserved = token;
        *out = info;
        Ok(())
    }
}
