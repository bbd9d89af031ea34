//! The IGMP host machine (RFC 2236, RFC 3376) and the rooted multipoint protocol (sans-IO).
//!
//! Read first: Windows Sockets 2 §"Multipoint and Multicast Semantics", `WSAJoinLeaf`,
//! CHECKLIST §1.10, RFC 2236 and RFC 3376.
//!
//! Status: [`igmp`] holds the IGMP host machine (v1/v2/v3 with compatibility modes, source
//! filters, the codec); [`rmp`] holds the rooted multipoint protocol of issue 6 (docs/rmp.md:
//! the codec, the per-connection machine and the root's fan-out; the engine wiring is separate).
#![forbid(unsafe_code)]
#![warn(missing_docs, unreachable_pub)]
#![deny(missing_debug_implementations)]

pub mod igmp;
pub mod rmp;
