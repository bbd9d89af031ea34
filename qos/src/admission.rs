//! Admission control: non-best-effort flows reserve their `TokenRate` against a link's
//! reservable capacity (CHECKLIST §1.8.4, D-14).
//!
//! Heads up! Before working on this file read D-14 ("sum of admitted `TokenRate`s of
//! non-best-effort flows must not exceed it, else `WSAEOPNOTSUPP`; `BestEffortService` never
//! rejected") and the `FD_QOS` rules in CHECKLIST §1.8.1. The model is the RSVP/IntServ one
//! (RFC 2210–2212: a flow's token-bucket rate is what the link sets aside for it), without
//! signalling: one link, one pool, first come first served.
//!
//! Units are counted frame bytes per second, the same bytes the shaper charges
//! ([`crate::bucket::ethernet_frame_len`]). Capacity is kept below the nominal link speed so
//! that best-effort traffic, ARP, IGMP and TCP acknowledgements always have room.

use std::fmt;

use crate::scheduler::{Class, FlowId};

/// The share of a link's nominal speed that may be reserved: 75%, the rest stays for best
/// effort and control traffic (the default of Cisco IOS `ip rsvp bandwidth`).
pub const fn reservable(nominal: u64) -> u64 {
    nominal / 4 * 3
}

/// One gigabit per second in bytes per second.
pub const GIGABIT: u64 = 125_000_000;

/// Default reservable capacity of the in-process virtual switch: 75% of a nominal 1 Gbit/s.
/// The switch moves frames at memory speed (about 5 Gbit/s of TCP measured, docs/benchmarks.md)
/// but shares the CPU with everything else; 1 Gbit/s is a speed it sustains with margin, so a
/// guarantee made against it holds.
pub const VIRTUAL_SWITCH_CAPACITY: u64 = reservable(GIGABIT);

/// Default reservable capacity of a TAP device: 75% of a nominal 1 Gbit/s. The kernel reports
/// a fake 10 Mbit/s for TUN/TAP; real throughput is the host's (3–4 Gbit/s measured), so the
/// same 1 Gbit/s nominal as the switch is used.
pub const TAP_CAPACITY: u64 = reservable(GIGABIT);

/// Default reservable capacity of a raw packet socket on a NIC: 75% of 1 Gbit/s Ethernet.
/// The engine should prefer the interface's real speed (`/sys/class/net/IF/speed`, Mbit/s)
/// through [`reservable`] and [`Admission::set_capacity`] when it knows it.
pub const RAW_CAPACITY: u64 = reservable(GIGABIT);

/// The kind of link a stack runs on, for its default capacity.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LinkKind {
    /// The in-process (or `ws2 switch`) virtual LAN.
    VirtualSwitch,
    /// A TAP device.
    Tap,
    /// A raw `AF_PACKET` socket on an existing interface.
    Raw,
}

impl LinkKind {
    /// The default reservable capacity in bytes/s.
    pub const fn default_capacity(self) -> u64 {
        match self {
            Self::VirtualSwitch => VIRTUAL_SWITCH_CAPACITY,
            Self::Tap => TAP_CAPACITY,
            Self::Raw => RAW_CAPACITY,
        }
    }
}

/// Why a reservation was refused; every variant is `WSAEOPNOTSUPP` at the Winsock face
/// ("flow specifications … cannot be satisfied").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AdmissionError {
    /// The requested `TokenRate` is more than the capacity still available.
    InsufficientCapacity {
        /// Bytes/s requested.
        requested: u64,
        /// Bytes/s available to this flow (its current grant included).
        available: u64,
    },
    /// A non-best-effort class without a `TokenRate` (−1): there is nothing to reserve, and
    /// an unlimited flow cannot be guaranteed.
    UnspecifiedRate,
}

impl fmt::Display for AdmissionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InsufficientCapacity {
                requested,
                available,
            } => write!(
                f,
                "token rate {requested} B/s exceeds the {available} B/s still reservable"
            ),
            Self::UnspecifiedRate => f.write_str("a guaranteed class needs a token rate"),
        }
    }
}

impl std::error::Error for AdmissionError {}

/// The reservations on one link.
#[derive(Clone, Debug)]
pub struct Admission {
    capacity: u64,
    reserved: u64,
    /// Grants in admission order (first come, first kept).
    grants: Vec<(FlowId, u64)>,
}

impl Admission {
    /// A link with `capacity` bytes/s reservable and nothing reserved.
    pub fn new(capacity: u64) -> Self {
        Self {
            capacity,
            reserved: 0,
            grants: Vec::new(),
        }
    }

    /// A link of `kind` with its default capacity.
    pub fn for_link(kind: LinkKind) -> Self {
        Self::new(kind.default_capacity())
    }

    /// Reservable capacity in bytes/s.
    pub fn capacity(&self) -> u64 {
        self.capacity
    }

    /// Bytes/s still reservable.
    pub fn available(&self) -> u64 {
        self.capacity.saturating_sub(self.reserved)
    }

    /// Bytes/s reserved by all flows.
    pub fn reserved(&self) -> u64 {
        self.reserved
    }

    /// The bytes/s granted to `flow`, if it holds a reservation.
    pub fn grant(&self, flow: FlowId) -> Option<u64> {
        self.grants.iter().find(|g| g.0 == flow).map(|g| g.1)
    }

    /// Admit `flow` at `class` with `token_rate` bytes/s (`None` = `-1`). Best effort is always
    /// admitted and reserves nothing (any earlier grant of the flow is released). A flow that
    /// already holds a grant renegotiates: the new rate must fit beside the others, and on
    /// failure the old grant stays.
    pub fn reserve(
        &mut self,
        flow: FlowId,
        class: Class,
        token_rate: Option<u64>,
    ) -> Result<(), AdmissionError> {
        if class == Class::BestEffort {
            self.release(flow);
            return Ok(());
        }
        let requested = token_rate.ok_or(AdmissionError::UnspecifiedRate)?;
        let current = self.grant(flow).unwrap_or(0);
        let available = self.available() + current;
        if requested > available {
            return Err(AdmissionError::InsufficientCapacity {
                requested,
                available,
            });
        }
        self.reserved = self.reserved - current + requested;
        match self.grants.iter_mut().find(|g| g.0 == flow) {
            Some(g) => g.1 = requested,
            None => self.grants.push((flow, requested)),
        }
        Ok(())
    }

    /// Give back `flow`'s reservation; returns what it held.
    pub fn release(&mut self, flow: FlowId) -> Option<u64> {
        let k = self.grants.iter().position(|g| g.0 == flow)?;
        let (_, rate) = self.grants.remove(k);
        self.reserved -= rate;
        Some(rate)
    }

    /// Change the reservable capacity (link speed changed; 0 when the link is down). Grants
    /// are kept in admission order while they fit; the later ones that no longer fit are
    /// revoked and returned, so the engine can downgrade those flows and raise `FD_QOS`.
    pub fn set_capacity(&mut self, capacity: u64) -> Vec<FlowId> {
        self.capacity = capacity;
        let mut kept = 0u64;
        let mut revoked = Vec::new();
        self.grants.retain(|&(flow, rate)| {
            if kept + rate <= capacity {
                kept += rate;
                true
            } else {
                revoked.push(flow);
                false
            }
        });
        self.reserved = kept;
        revoked
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn best_effort_always_admitted_and_free() {
        let mut a = Admission::new(1000);
        for flow in 0..100 {
            assert_eq!(a.reserve(flow, Class::BestEffort, Some(1_000_000)), Ok(()));
            assert_eq!(a.reserve(flow + 100, Class::BestEffort, None), Ok(()));
        }
        assert_eq!(a.available(), 1000);
        let mut zero = Admission::new(0);
        assert_eq!(zero.reserve(1, Class::BestEffort, Some(1)), Ok(()));
    }

    #[test]
    fn reservations_must_fit() {
        let mut a = Admission::new(1000);
        assert_eq!(a.reserve(1, Class::Guaranteed, Some(600)), Ok(()));
        assert_eq!(
            a.reserve(2, Class::Predictive, Some(500)),
            Err(AdmissionError::InsufficientCapacity {
                requested: 500,
                available: 400
            })
        );
        assert_eq!(a.reserve(2, Class::ControlledLoad, Some(400)), Ok(()));
        assert_eq!(a.available(), 0);
        assert_eq!(
            a.reserve(3, Class::Guaranteed, None),
            Err(AdmissionError::UnspecifiedRate)
        );
        assert_eq!(a.release(1), Some(600));
        assert_eq!(a.release(1), None);
        assert_eq!(a.available(), 600);
    }

    #[test]
    fn renegotiation_replaces_or_keeps_the_grant() {
        let mut a = Admission::new(1000);
        a.reserve(1, Class::Guaranteed, Some(600)).unwrap();
        a.reserve(2, Class::Guaranteed, Some(300)).unwrap();
        // Up to 700 fits (its own 600 counts as available).
        assert_eq!(a.reserve(1, Class::Guaranteed, Some(700)), Ok(()));
        assert_eq!(a.reserved(), 1000);
        assert!(a.reserve(1, Class::Guaranteed, Some(701)).is_err());
        assert_eq!(a.grant(1), Some(700));
        // Down to best effort releases it.
        a.reserve(1, Class::BestEffort, Some(700)).unwrap();
        assert_eq!(a.grant(1), None);
        assert_eq!(a.available(), 700);
    }

    #[test]
    fn shrinking_capacity_revokes_latest_grants() {
        let mut a = Admission::new(1000);
        for (flow, rate) in [(1, 400), (2, 300), (3, 200), (4, 100)] {
            a.reserve(flow, Class::Guaranteed, Some(rate)).unwrap();
        }
        assert_eq!(a.set_capacity(800), vec![3]);
        assert_eq!(a.reserved(), 800);
        assert_eq!(a.grant(4), Some(100));
        assert_eq!(a.set_capacity(0), vec![1, 2, 4]);
        assert_eq!(a.available(), 0);
        assert!(a.set_capacity(2000).is_empty());
        assert_eq!(a.available(), 2000);
    }

    #[test]
    fn defaults_per_link_kind() {
        assert_eq!(reservable(GIGABIT), 93_750_000);
        for kind in [LinkKind::VirtualSwitch, LinkKind::Tap, LinkKind::Raw] {
            let a = Admission::for_link(kind);
            assert_eq!(a.capacity(), kind.default_capacity());
            assert!(a.capacity() > 0);
        }
    }
}
