//! Socket groups: creation, joining, the constrained-group rules and member priorities
//! (sans-IO).
//!
//! Read first: Windows Sockets 2 §"Socket Groups", `WSASocket` and `WSAAccept` (the `g`
//! parameter), `getsockopt`/`setsockopt` (`SO_GROUP_ID`, `SO_GROUP_PRIORITY`); CHECKLIST §1.9
//! (socket groups), §1.2 (`WSASocket`'s `g`), §1.3 (`connect`/`WSAConnect`/`WSAAccept` and
//! the constrained group's `WSAEINVAL`), §1.13.2 (the two options), Part 2 group O, and
//! Appendix A D-26 (codes for `setsockopt(SO_GROUP_ID)` and negative priorities) and D-38
//! ("same address on the same host" means the same remote IP address).
//!
//! [`GroupTable`] is the whole model: it hands out group ids, keeps who is in which group with
//! which priority and who created it, enforces that constrained groups hold only
//! connection-oriented sockets all connected to one remote address, and dissolves a group when
//! its last member leaves. It knows nothing about sockets, threads or clocks: members are any
//! copyable key (the stack uses its socket id), and every rule violation is a [`GroupError`]
//! value that the stack maps to a Windows Sockets code ([`GroupError`] documents the mapping
//! the spec asks for).
//!
//! The QoS scheduler reads the table through [`GroupTable::memberships`] and
//! [`GroupTable::members`] (group id and priority per socket, in service order).
//!
//! # Examples
//! ```
//! use std::net::{IpAddr, Ipv4Addr};
//! use ws2_groups::{GroupError, GroupRequest, GroupTable, SG_CONSTRAINED_GROUP};
//!
//! let mut groups: GroupTable<u64> = GroupTable::new();
//! // Socket 1 (TCP) asks for a constrained group; socket 2 joins it by id.
//! let g = groups.apply(GroupRequest::from_g(SG_CONSTRAINED_GROUP), 1, true)?.unwrap();
//! groups.apply(GroupRequest::from_g(g.get()), 2, true)?;
//! groups.set_priority(2, 1)?;
//! assert_eq!(groups.members(g), vec![(1, 0), (2, 1)]);
//!
//! // The first connection fixes the destination; another host is refused.
//! let b = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2));
//! let c = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 3));
//! groups.connect(1, b)?;
//! assert!(matches!(groups.connect(2, c), Err(GroupError::DestinationMismatch { .. })));
//!
//! // The group dissolves with its last member.
//! groups.leave(1);
//! assert!(groups.leave(2).unwrap().dissolved);
//! assert_eq!(groups.join(g, 3, true), Err(GroupError::UnknownGroup(g)));
//! # Ok::<(), GroupError>(())
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs, unreachable_pub)]

mod table;

pub use table::{
    Departure, GroupError, GroupId, GroupInfo, GroupKind, GroupRequest, GroupTable, Membership,
    FIRST_GROUP_ID, SG_CONSTRAINED_GROUP, SG_UNCONSTRAINED_GROUP,
};
