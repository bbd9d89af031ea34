//! Links that move Ethernet frames.
//!
//! A [`Link`] is anything that sends and receives whole Ethernet II frames (no preamble, no FCS)
//! and can be waited on through a file descriptor. The stack's owner thread polls the descriptor
//! and calls [`Link::recv`] until it answers `Ok(None)`, and hands every egress frame to
//! [`Link::send`].
//!
//! Backends, one file each:
//! - [`Tap`]: `/dev/net/tun` with `IFF_TAP | IFF_NO_PI`, opened (or created) by name.
//! - [`RawSocket`]: `AF_PACKET` on an existing interface.
//! - [`VirtualSwitch`]: an in-process learning switch with seeded, per-port impairments.
//! - [`UnixLink`]: one Ethernet frame per Unix datagram (the QEMU `-netdev dgram` convention),
//!   served by [`UnixSwitch`].
//! - [`PcapTee`]: wraps any link and writes every frame, both ways, to a pcap file.
//!
//! Network namespaces are per thread: [`in_namespace`] runs a constructor on a thread that has
//! joined a named namespace (and [`open_in_namespace`] opens a [`Tap`] that way); the descriptor
//! then works from any thread.
//!
//! # Contract every backend keeps
//! - Nothing panics on I/O errors or on malformed frames: errors are values.
//! - `recv` never blocks. `Ok(None)` means "nothing now"; the descriptor from
//!   [`AsRawFd::as_raw_fd`] becomes readable when that may have changed, or the time from
//!   [`Link::poll_at`] arrives.
//! - `send` either takes the whole frame or returns an error and takes nothing; an
//!   [`io::ErrorKind::WouldBlock`] error means "full now, retry later", and the caller keeps the
//!   frame. A frame is never silently lost by the link unless the link models loss on purpose (an
//!   impairment), and then it is counted.
//! - Every link is `Send`, so it can move into the stack's owner thread.
#![deny(unsafe_code)]
#![warn(missing_docs, unreachable_pub)]
#![deny(missing_debug_implementations)]

use std::io;
use std::os::fd::AsRawFd;
use std::time::Instant;

#[allow(unsafe_code)]
mod sys;

mod netns;
mod pcap;
mod raw_socket;
mod tap;
mod unix_link;
mod virtual_switch;

#[cfg(test)]
mod testns;

pub use netns::in_namespace;
pub use pcap::PcapTee;
pub use raw_socket::RawSocket;
pub use tap::{open_in_namespace, Tap};
pub use unix_link::{UnixLink, UnixSwitch};
pub use virtual_switch::{Impairments, SwitchPort, SwitchStats, VirtualSwitch};

/// Largest Ethernet frame a link carries: 14-byte header plus a 1500-byte payload, and room for
/// a VLAN tag. Backends with a larger MTU say so through [`Link::mtu`].
pub const MAX_FRAME_LEN: usize = 1518;

/// Counters every link keeps; read them with [`Link::stats`].
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct LinkStats {
    /// Frames handed to the stack by `recv`.
    pub rx_frames: u64,
    /// Bytes handed to the stack by `recv`.
    pub rx_bytes: u64,
    /// Frames accepted by `send`.
    pub tx_frames: u64,
    /// Bytes accepted by `send`.
    pub tx_bytes: u64,
    /// Frames dropped on receive because they were malformed (too short, too long).
    pub rx_dropped: u64,
}

/// A device that moves whole Ethernet frames; see the [crate documentation](crate) for the
/// contract.
pub trait Link: AsRawFd + Send + std::fmt::Debug {
    /// Copies the next received frame into `buf` and returns its length, or `Ok(None)` when no
    /// frame is ready now. `buf` must hold at least `self.mtu() + 18` bytes; a longer frame is
    /// dropped and counted in [`LinkStats::rx_dropped`]. Never blocks.
    fn recv(&mut self, buf: &mut [u8], now: Instant) -> io::Result<Option<usize>>;

    /// Sends one frame. On `Err` nothing was sent; `WouldBlock` means retry later.
    fn send(&mut self, frame: &[u8], now: Instant) -> io::Result<()>;

    /// The earliest time at which `recv` may return a frame without the descriptor having become
    /// readable (for example a frame held back by a delay impairment). `None` = only readiness.
    fn poll_at(&self) -> Option<Instant> {
        None
    }

    /// The IP MTU of the link in bytes (1500 for Ethernet).
    fn mtu(&self) -> usize {
        1500
    }

    /// Counters since the link was opened.
    fn stats(&self) -> LinkStats;

    /// Whether the link can carry frames now (interface up with carrier), if the link knows;
    /// `None` for links that are always available (the in-process ones).
    fn carrier(&self) -> Option<bool> {
        None
    }
}

/// Forwards every call to the boxed link; see also the impl for `Box<dyn Link>`.
macro_rules! forward_link {
    () => {
        fn recv(&mut self, buf: &mut [u8], now: Instant) -> io::Result<Option<usize>> {
            (**self).recv(buf, now)
        }
        fn send(&mut self, frame: &[u8], now: Instant) -> io::Result<()> {
            (**self).send(frame, now)
        }
        fn poll_at(&self) -> Option<Instant> {
            (**self).poll_at()
        }
        fn mtu(&self) -> usize {
            (**self).mtu()
        }
        fn carrier(&self) -> Option<bool> {
            (**self).carrier()
        }
        fn stats(&self) -> LinkStats {
            (**self).stats()
        }
    };
}

impl<L: Link> Link for Box<L> {
    forward_link!();
}

// std implements `AsRawFd` for `Box<T>` only when `T: Sized`, so a boxed trait object needs its
// own impls to be a `Link` (and, say, to go inside a `PcapTee`).
impl Link for Box<dyn Link> {
    forward_link!();
}

impl AsRawFd for Box<dyn Link> {
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        (**self).as_raw_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_link_is_send_and_boxes_are_links() {
        fn link<L: Link>() {}
        link::<Tap>();
        link::<RawSocket>();
        link::<SwitchPort>();
        link::<UnixLink>();
        link::<PcapTee<SwitchPort>>();
        link::<Box<SwitchPort>>();
        link::<Box<dyn Link>>();
        link::<PcapTee<Box<dyn Link>>>();
        fn send_sync<T: Send + Sync>() {}
        send_sync::<VirtualSwitch>();
        send_sync::<UnixSwitch>();
    }
}
