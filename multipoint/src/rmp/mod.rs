//! RMP, the rooted multipoint protocol over TCP: the codec ([`wire`]), one end of a root↔leaf
//! connection ([`Connection`], docs/rmp.md §4–§8) and the root's fan-out ([`RootSession`],
//! docs/rmp.md §9).
//!
//! Heads up! Before working on this module read docs/rmp.md (the protocol, which this project
//! defines: CHECKLIST D-18, D-19), CHECKLIST §1.10 and Part 2 group Q.
//!
//! Sans-IO: nothing here opens a socket or reads a clock; every input takes `now`. The engine
//! owns one [`Connection`] per TCP connection and one [`RootSession`] per c_root.
//!
//! ```
//! use std::time::Instant;
//! use ws2_multipoint::rmp::{Connection, DataPlane, Event, JoinFlags, Side};
//!
//! let now = Instant::now(); // the engine's clock; the machines never read one
//! // A leaf asks a listening root for admittance (leaf-initiated WSAJoinLeaf).
//! let mut leaf = Connection::new(Side::Leaf, true, DataPlane::Rooted, now);
//! let mut root = Connection::new(Side::Root, false, DataPlane::Rooted, now);
//! leaf.join(now, JoinFlags::Both, b"hello", None, None).unwrap();
//! let mut shuttle = |from: &mut Connection, to: &mut Connection| {
//!     let mut bytes = Vec::new();
//!     from.transmit(&mut bytes);
//!     to.receive(now, &bytes);
//! };
//! shuttle(&mut leaf, &mut root); // leaf's HELLO
//! shuttle(&mut root, &mut leaf); // root's HELLO; the leaf now sends JOIN
//! shuttle(&mut leaf, &mut root);
//! let Some(Event::JoinRequest { caller_data, .. }) = root.poll_event() else { panic!() };
//! assert_eq!(caller_data, b"hello");
//! root.accept(now, b"welcome").unwrap(); // CF_ACCEPT
//! shuttle(&mut root, &mut leaf);
//! assert_eq!(leaf.poll_event(), Some(Event::Joined { callee_data: b"welcome".to_vec() }));
//! root.send_data(now, b"to every leaf").unwrap();
//! shuttle(&mut root, &mut leaf);
//! assert_eq!(leaf.poll_event(), Some(Event::Data(b"to every leaf".to_vec())));
//! ```

pub mod conn;
pub mod session;
pub mod wire;

pub use conn::{
    CommandError, Config, Connection, Event, ProtocolError, SlowPeer, SlowPeerLimit, State,
};
pub use session::{Delivery, FanOut, FanOutError, Origin, RootSession};
pub use wire::{
    DataPlane, DecodeError, Decoder, Initiator, Join, JoinFlags, LeafId, Message, RejectReason,
    Side,
};

#[cfg(test)]
mod tests;
