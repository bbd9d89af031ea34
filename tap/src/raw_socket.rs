//! [`RawSocket`]: an `AF_PACKET`/`SOCK_RAW` socket on an existing interface, for running the
//! stack on a real NIC or one end of a veth pair.
//!
//! # Contract
//! - **Readiness.** The descriptor is non-blocking and readable while a frame is queued; `recv`
//!   answers `Ok(None)` on `EAGAIN`. [`Link::poll_at`] is always `None`.
//! - **What is received.** Every frame the interface sees (`ETH_P_ALL`), in promiscuous mode for
//!   as long as the socket is open, *except* frames the interface transmits (`PACKET_OUTGOING`):
//!   those are skipped, so the stack never hears its own sends, nor other local senders' frames.
//! - **Dropped.** A frame longer than the caller's buffer is discarded and counted in
//!   [`LinkStats::rx_dropped`]. The kernel drops frames when the socket's receive buffer is full.
//! - **Sending.** One `send` per frame on the bound interface; `EAGAIN`/`ENOBUFS` come back as
//!   errors (`EAGAIN` as [`io::ErrorKind::WouldBlock`]).
//!
//! # Platform notes
//! - Frames from a veth peer or a local sender often carry *unfinished* checksums (checksum
//!   offload: the kernel leaves them for a NIC that is not there). Turn the peer's offloads off
//!   (`ethtool -K PEER tx off`) so the stack sees finished checksums. `PACKET_AUXDATA` would say
//!   which frames are affected; this link does not read it.
//! - VLAN tags stripped by the NIC (`rxvlan`) are not put back into the frame.
//! - Needs `CAP_NET_RAW`. The socket belongs to the network namespace of the thread that opens
//!   it; use [`in_namespace`](crate::in_namespace) for another one.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::time::Instant;

use crate::{sys, Link, LinkStats};

/// An `AF_PACKET` link on one existing interface. See the [module docs](self).
#[derive(Debug)]
pub struct RawSocket {
    fd: OwnedFd,
    ifname: String,
    mtu: usize,
    stats: LinkStats,
}

impl RawSocket {
    /// Opens a raw packet socket bound to interface `ifname` (which must exist in the calling
    /// thread's network namespace), non-blocking, with the interface promiscuous. The MTU is read
    /// once, here (1500 if that fails).
    ///
    /// # Errors
    /// `InvalidInput` for a name of 16 bytes or more; `NotFound`-like `ENODEV` for an unknown
    /// interface; `PermissionDenied` without `CAP_NET_RAW`.
    pub fn open(ifname: &str) -> io::Result<RawSocket> {
        let fd = sys::packet_socket(ifname)?;
        let mtu = sys::if_mtu(fd.as_fd(), ifname).unwrap_or(1500);
        Ok(RawSocket { fd, ifname: ifname.to_owned(), mtu, stats: LinkStats::default() })
    }

    /// The interface the socket is bound to.
    pub fn ifname(&self) -> &str {
        &self.ifname
    }
}

impl Link for RawSocket {
    fn recv(&mut self, buf: &mut [u8], _now: Instant) -> io::Result<Option<usize>> {
        loop {
            match sys::recv_packet(self.fd.as_fd(), buf) {
                Ok((_, libc::PACKET_OUTGOING)) => {}
                Ok((n, _)) if n <= buf.len() => {
                    self.stats.rx_frames += 1;
                    self.stats.rx_bytes += n as u64;
                    return Ok(Some(n));
                }
                Ok(_) => self.stats.rx_dropped += 1,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(None),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    fn send(&mut self, frame: &[u8], _now: Instant) -> io::Result<()> {
        let n = sys::send(self.fd.as_fd(), frame)?;
        if n != frame.len() {
            return Err(io::Error::new(io::ErrorKind::WriteZero, "packet socket took part of a frame"));
        }
        self.stats.tx_frames += 1;
        self.stats.tx_bytes += n as u64;
        Ok(())
    }

    fn mtu(&self) -> usize {
        self.mtu
    }

    fn stats(&self) -> LinkStats {
        self.stats
    }
}

impl AsRawFd for RawSocket {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

impl AsFd for RawSocket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}
