//! Flowspecs, token buckets, the egress scheduler and admission control (sans-IO).
//!
//! Read first: Windows Sockets 2 §"Quality of Service" and the `FLOWSPEC`/`QOS` reference
//! entries (`shared/spec/003_…`), CHECKLIST §1.8. Nothing here reads a clock or makes a syscall:
//! every entry point takes `now`.
//!
//! Status: the crate is reserved for issue 4 (QoS); the foundation issue only creates it.
#![forbid(unsafe_code)]
#![warn(missing_docs, unreachable_pub)]
