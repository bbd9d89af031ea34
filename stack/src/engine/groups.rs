//! Socket groups in the engine (CHECKLIST §1.9): the core's [`GroupTable`] keyed by socket id,
//! and the mapping of its errors to Windows Sockets codes.
//!
//! Membership is decided when a socket is created (`WSASocket`'s `g`); accepted sockets start
//! outside any group (they do not inherit the listener's, CHECKLIST 72); `Engine::remove` (every
//! `closesocket`, `WSACleanup` and the stack's own shutdown) leaves the group, which dissolves
//! with its last member.

use std::net::{IpAddr, SocketAddrV4};

use ws2_groups::{GroupError, GroupRequest, GroupTable};

use super::{Engine, Proto, SocketId, State};
use crate::error::WsaError;

/// The core's group table.
pub(crate) type Groups = GroupTable<SocketId>;

/// The Windows Sockets code for a group rule violation (CHECKLIST §1.2, §1.3, §1.9, D-26).
pub(crate) fn group_error(e: GroupError) -> WsaError {
    match e {
        GroupError::NotInGroup => WsaError::WSAENOPROTOOPT,
        GroupError::IdsExhausted => WsaError::WSAENOBUFS,
        GroupError::UnknownGroup(_)
        | GroupError::ConnectionOrientedOnly
        | GroupError::AlreadyInGroup(_)
        | GroupError::NegativePriority(_)
        | GroupError::DestinationMismatch { .. } => WsaError::WSAEINVAL,
    }
}

impl Engine {
    /// Carries out `WSASocket`'s `g` for the new socket `id`: 0 does nothing,
    /// `SG_UNCONSTRAINED_GROUP`/`SG_CONSTRAINED_GROUP` create a group with `id` as its creator,
    /// anything else joins that group of this stack.
    pub(crate) fn group_apply(&mut self, id: SocketId, g: u32) -> Result<(), WsaError> {
        let proto = self.sock(id)?.proto;
        self.groups
            .apply(GroupRequest::from_g(g), id, proto == Proto::Tcp)
            .map(drop)
            .map_err(group_error)
    }

    /// Checks a TCP connect of `id` to `remote` against its constrained group and, if allowed,
    /// records it as the socket's destination (the first member to connect fixes the group's).
    pub(crate) fn group_connect(
        &mut self,
        id: SocketId,
        remote: SocketAddrV4,
    ) -> Result<(), WsaError> {
        // Only connections that exist (or are being made) constrain: a member whose connect
        // was refused or timed out, and is back to unconnected, no longer holds a destination.
        if let Some(g) = self.groups.group_of(id) {
            for (m, _) in self.groups.members(g) {
                let live = self
                    .table
                    .get(&m)
                    .is_some_and(|s| matches!(s.state, State::Connecting(_) | State::Connected(_)));
                if m != id && !live {
                    self.groups.disconnect(m);
                }
            }
        }
        self.groups
            .connect(id, IpAddr::V4(*remote.ip()))
            .map_err(group_error)
    }

    /// Forgets `id`'s group destination: its connect failed before it started.
    pub(crate) fn group_connect_failed(&mut self, id: SocketId) {
        self.groups.disconnect(id);
    }
}
