//! The engine's API: the operations the Winsock face calls, one method of [`Engine`] per
//! operation, grouped as the face groups them.
//!
//! Contract (issue 12, item 3): a Winsock call locks the engine once (`Stack::with`,
//! `Stack::with_quiet`, or once per attempt in `Stack::block_on`) and calls one method here;
//! the method takes engine types (`SocketId`, `SocketAddrV4`, byte slices, `Duration`, the
//! enums below) and returns `Result<_, WsaError>` with the spec's codes. Nothing outside
//! `engine/` reads or writes a field of `Engine` or `Sock`: those are private to the engine.
//!
//! [`Engine`]: super::Engine

mod async_ops;
pub(crate) mod options;
mod sockets;

pub(crate) use async_ops::OvKind;
pub(crate) use sockets::{
    Attempt, Close, Destination, NewSocket, RecvCall, RecvFlags, SendAttempt, SendFlags, SendWait,
    Shutdown,
};
