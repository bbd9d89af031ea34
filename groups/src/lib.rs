//! Socket groups: constrained-group rules and group QoS (sans-IO).
//!
//! Read first: Windows Sockets 2 §"Socket Groups", `WSASocket` and `WSAAccept` (the `g`
//! parameter), CHECKLIST §1.9.
//!
//! Status: reserved for issue 4 (QoS and socket groups); the foundation issue only creates it.
#![forbid(unsafe_code)]
#![warn(missing_docs, unreachable_pub)]
