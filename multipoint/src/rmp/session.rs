//! The root's view of a session and the fan-out rule: docs/rmp.md §1 (the two data planes),
//! §6 (who receives what) and §9 (fan-out at the root).
//!
//! Heads up! Before working on this file read docs/rmp.md §1, §6 and §9, and CHECKLIST §1.10.1
//! (rooted and non-rooted data planes).
//!
//! [`RootSession`] holds the leaves and their `JL_*` flags; [`RootSession::fan_out`] says who
//! receives a message. Pushing the bytes, through each leaf's [`super::Connection`], is the
//! engine's work.

use std::collections::BTreeMap;
use std::fmt;

use super::wire::{DataPlane, JoinFlags, LeafId};

/// Who sent a message into the session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Origin {
    /// The d_root.
    Root,
    /// A d_leaf, by its id.
    Leaf(LeafId),
}

/// How a message reaches one leaf.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Delivery {
    /// As DATA ([`super::Connection::send_data`]): the root's own data.
    Data,
    /// As RELAYED ([`super::Connection::relay`]): another leaf's data, non-rooted plane only.
    Relayed {
        /// The leaf that sent it.
        origin: LeafId,
    },
}

/// Who receives one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FanOut {
    /// Whether the d_root receives it (every leaf message, on both planes). The root's own data
    /// never comes back to it here: `SIO_MULTIPOINT_LOOPBACK` is local to the engine.
    pub root_receives: bool,
    /// The leaves that receive it, in id order, and how.
    pub leaves: Vec<(LeafId, Delivery)>,
}

/// Why a leaf's message cannot be fanned out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FanOutError {
    /// No such leaf in the session.
    UnknownLeaf(LeafId),
    /// The leaf joined `JL_RECEIVER_ONLY` (its connection already refuses such DATA).
    LeafMayNotSend(LeafId),
}

impl fmt::Display for FanOutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnknownLeaf(id) => write!(f, "leaf {} is not in the session", id.0),
            Self::LeafMayNotSend(id) => write!(f, "leaf {} joined receiver-only", id.0),
        }
    }
}

impl std::error::Error for FanOutError {}

/// The root's leaves and their roles, for one session (one c_root).
#[derive(Debug, Clone)]
pub struct RootSession {
    plane: DataPlane,
    leaves: BTreeMap<LeafId, JoinFlags>,
    next_id: Option<u32>,
}

impl RootSession {
    /// An empty session on `plane`.
    pub fn new(plane: DataPlane) -> Self {
        Self {
            plane,
            leaves: BTreeMap::new(),
            next_id: Some(1),
        }
    }

    /// The data plane.
    pub fn plane(&self) -> DataPlane {
        self.plane
    }

    /// Adds a leaf whose join completed; returns its id (1, 2, ...; never reused in this
    /// session), or `None` once 2³² − 1 ids have been handed out.
    pub fn add_leaf(&mut self, flags: JoinFlags) -> Option<LeafId> {
        let id = self.next_id?;
        self.next_id = id.checked_add(1);
        self.leaves.insert(LeafId(id), flags);
        Some(LeafId(id))
    }

    /// Removes a leaf (it disconnected, died, or the root closed its c_leaf); returns its flags.
    pub fn remove_leaf(&mut self, id: LeafId) -> Option<JoinFlags> {
        self.leaves.remove(&id)
    }

    /// A leaf's flags.
    pub fn flags(&self, id: LeafId) -> Option<JoinFlags> {
        self.leaves.get(&id).copied()
    }

    /// The leaves, in id order.
    pub fn leaves(&self) -> impl Iterator<Item = (LeafId, JoinFlags)> + '_ {
        self.leaves.iter().map(|(&id, &f)| (id, f))
    }

    /// How many leaves.
    pub fn len(&self) -> usize {
        self.leaves.len()
    }

    /// No leaves.
    pub fn is_empty(&self) -> bool {
        self.leaves.is_empty()
    }

    /// Who receives a message from `origin` (docs/rmp.md §9):
    /// - the root's data: DATA to every leaf that receives (not `JL_SENDER_ONLY`);
    /// - a leaf's data, rooted plane: the root only (CHECKLIST Q 431: no leaf-to-leaf traffic);
    /// - a leaf's data, non-rooted plane: the root, and RELAYED to every *other* receiving leaf.
    pub fn fan_out(&self, origin: Origin) -> Result<FanOut, FanOutError> {
        match origin {
            Origin::Root => Ok(FanOut {
                root_receives: false,
                leaves: self
                    .leaves()
                    .filter(|(_, f)| f.receives())
                    .map(|(id, _)| (id, Delivery::Data))
                    .collect(),
            }),
            Origin::Leaf(from) => {
                let flags = self.flags(from).ok_or(FanOutError::UnknownLeaf(from))?;
                if !flags.sends() {
                    return Err(FanOutError::LeafMayNotSend(from));
                }
                let leaves = match self.plane {
                    DataPlane::Rooted => Vec::new(),
                    DataPlane::NonRooted => self
                        .leaves()
                        .filter(|&(id, f)| id != from && f.receives())
                        .map(|(id, _)| (id, Delivery::Relayed { origin: from }))
                        .collect(),
                };
                Ok(FanOut {
                    root_receives: true,
                    leaves,
                })
            }
        }
    }
}
