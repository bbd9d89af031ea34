//! ws2: a userspace TCP/IP stack with the Windows Sockets 2 API, on smoltcp.
//!
//! - [`Stack`]: one network node (a link, addresses, smoltcp, the socket table): a sans-IO
//!   engine moved by a [`Driver`] — on its own thread on the system clock, or stepped by a test
//!   on a [`VirtualClock`].
//! - [`winsock`]: the Winsock face — the spec's functions, constants and error codes.
//! - [`echo`]: echo servers on the notification models and a client swarm (used by `ws2 demo`
//!   and the acceptance tests).
//! - [`net`]: the Rust face — `TcpListener`, `TcpStream`, `UdpSocket` as in `std::net`, built on
//!   the Winsock face.
//!
//! Links (TAP, AF_PACKET, the in-process `VirtualSwitch`, Unix datagrams, pcap) are in the
//! `ws2_tap` crate.
#![deny(unsafe_code)]
#![warn(missing_docs, unreachable_pub)]
#![deny(missing_debug_implementations)]

mod config;
mod driver;
pub mod echo;
mod engine;
mod error;
pub mod net;
mod notify;
pub mod winsock;

pub use config::{parse_mac, ConfigError, Ipv4Cidr, StackConfig};
pub use driver::{Clock, DrainReport, Driver, Stack, SystemClock, VirtualClock};
pub use engine::{split_seed, Dropped, EngineStats, Proto};
pub use error::WsaError;
