//! The IGMP host machine (RFC 2236, RFC 3376) and the rooted multipoint protocol (sans-IO).
//!
//! Read first: Windows Sockets 2 §"Multipoint and Multicast Semantics", `WSAJoinLeaf`,
//! CHECKLIST §1.10, RFC 2236 and RFC 3376.
//!
//! Status: reserved for issues 5 (IGMP) and 6 (rooted multipoint); the foundation issue only
//! creates it.
#![forbid(unsafe_code)]
#![warn(missing_docs, unreachable_pub)]
