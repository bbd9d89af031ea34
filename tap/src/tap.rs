//! [`Tap`]: a Linux TAP interface (`/dev/net/tun`, `IFF_TAP | IFF_NO_PI`).
//!
//! # Contract
//! - **Readiness.** The descriptor is non-blocking and readable while the kernel holds a frame
//!   for us; `recv` reads one frame per call and answers `Ok(None)` once the queue is empty
//!   (`EAGAIN`). [`Link::poll_at`] is always `None`.
//! - **Sending.** One `write` per frame; the kernel takes all of it or fails. `EAGAIN` comes back
//!   as [`io::ErrorKind::WouldBlock`]; an interface that is down answers `EIO`.
//! - **Dropped.** A frame longer than the caller's buffer is read (so it leaves the queue),
//!   discarded and counted in [`LinkStats::rx_dropped`]. Nothing else is dropped by us; the kernel
//!   drops egress frames when its TAP queue (`txqueuelen`) is full, as for any interface.
//! - **Namespaces.** The interface is made in the network namespace of the *thread* that opens
//!   `/dev/net/tun`. To put it in another namespace, open it from a thread that has `setns`'d
//!   there — [`open_in_namespace`] does exactly that — and then use it from any thread.
//!
//! Opening needs `CAP_NET_ADMIN` (or a persistent TAP owned by the caller). The interface is left
//! down and without addresses: configuring it is the caller's business.

use std::fs::OpenOptions;
use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::os::unix::fs::OpenOptionsExt;
use std::time::Instant;

use crate::{netns, sys, Link, LinkStats};

/// Bytes past the caller's buffer we are ready to read so that an oversized frame is consumed
/// whole (a TAP frame is at most 64 KiB).
const OVERFLOW_LEN: usize = 65536;

/// A TAP interface: Ethernet frames to and from the kernel. See the [module docs](self).
pub struct Tap {
    fd: OwnedFd,
    name: String,
    mtu: usize,
    overflow: Box<[u8]>,
    stats: LinkStats,
}

impl Tap {
    /// Opens the TAP interface `name`, creating it if it does not exist (an empty name lets the
    /// kernel choose `tapN`; [`Tap::name`] tells which). The MTU is read once, here, with
    /// `SIOCGIFMTU` (1500 if that fails).
    ///
    /// # Errors
    /// `InvalidInput` for a name of 16 bytes or more; `NotFound` without `/dev/net/tun`;
    /// `PermissionDenied` without `CAP_NET_ADMIN`; `EBUSY` if another process holds the TAP.
    pub fn open(name: &str) -> io::Result<Tap> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
            .open("/dev/net/tun")?;
        let fd = OwnedFd::from(file);
        let name = sys::tun_set_tap(fd.as_fd(), name)?;
        let mtu = sys::inet_dgram_socket()
            .and_then(|sock| sys::if_mtu(sock.as_fd(), &name))
            .unwrap_or(1500);
        Ok(Tap {
            fd,
            name,
            mtu,
            overflow: vec![0; OVERFLOW_LEN].into_boxed_slice(),
            stats: LinkStats::default(),
        })
    }

    /// The interface's name, as the kernel knows it.
    pub fn name(&self) -> &str {
        &self.name
    }
}

/// Opens (or creates) the TAP `tap_name` inside the network namespace `ns_name` (as made by
/// `ip netns add`), from a short-lived thread that joins the namespace; the returned [`Tap`]
/// works from any thread. Needs `CAP_SYS_ADMIN` and `CAP_NET_ADMIN`.
///
/// # Errors
/// Those of [`in_namespace`](crate::in_namespace) and [`Tap::open`].
pub fn open_in_namespace(ns_name: &str, tap_name: &str) -> io::Result<Tap> {
    netns::in_namespace(ns_name, || Tap::open(tap_name))
}

impl Link for Tap {
    fn recv(&mut self, buf: &mut [u8], _now: Instant) -> io::Result<Option<usize>> {
        loop {
            match sys::read_split(self.fd.as_fd(), buf, &mut self.overflow) {
                Ok(n) if n <= buf.len() => {
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
        let n = sys::write(self.fd.as_fd(), frame)?;
        if n != frame.len() {
            // The tun driver takes whole frames; a short count would be a kernel change.
            return Err(io::Error::new(io::ErrorKind::WriteZero, "TAP took part of a frame"));
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

impl std::fmt::Debug for Tap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tap")
            .field("fd", &self.fd)
            .field("name", &self.name)
            .field("mtu", &self.mtu)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl AsRawFd for Tap {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

impl AsFd for Tap {
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.fd.as_fd()
    }
}
