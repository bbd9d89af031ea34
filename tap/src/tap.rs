//! [`Tap`]: a Linux TAP interface (`/dev/net/tun`, `IFF_TAP | IFF_NO_PI`), and
//! [`open_in_namespace`], which makes one inside a named network namespace.
//!
//! Contract in short (in full on [`Tap`]): non-blocking, readable while the kernel holds a frame,
//! never a `poll_at`; a frame longer than the caller's buffer is read, dropped and counted in
//! `rx_dropped`; nothing else is dropped here.

use std::fs::OpenOptions;
use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::os::unix::fs::OpenOptionsExt;
use std::time::Instant;

use crate::{netns, sys, Link, LinkStats};

/// Bytes past the caller's buffer we are ready to read so that an oversized frame is consumed
/// whole (a TAP frame is at most 64 KiB).
const OVERFLOW_LEN: usize = 65536;

/// A TAP interface: Ethernet frames to and from the kernel.
///
/// # Contract
/// - **Readiness.** The descriptor is non-blocking and readable while the kernel holds a frame
///   for us; `recv` reads one frame per call and answers `Ok(None)` once the queue is empty
///   (`EAGAIN`). [`Link::poll_at`] is always `None`.
/// - **Sending.** One `write` per frame; the kernel takes all of it or fails. `EAGAIN` comes back
///   as [`io::ErrorKind::WouldBlock`]; an interface that is down answers `EIO`.
/// - **Dropped.** A frame longer than the caller's buffer is read (so it leaves the queue),
///   discarded and counted in [`LinkStats::rx_dropped`]. Nothing else is dropped by us; the kernel
///   drops egress frames when its TAP queue (`txqueuelen`) is full, as for any interface.
/// - **Namespaces.** The interface is made in the network namespace of the *thread* that opens
///   `/dev/net/tun`. To put it in another namespace, open it from a thread that has `setns`'d
///   there — [`open_in_namespace`] does exactly that — and then use it from any thread.
///
/// Opening needs `CAP_NET_ADMIN` (or a persistent TAP owned by the caller). The interface is left
/// down and without addresses: configuring it is the caller's business.
pub struct Tap {
    fd: OwnedFd,
    name: String,
    mtu: usize,
    overflow: Box<[u8]>,
    stats: LinkStats,
    /// A socket of the TAP's network namespace, for interface ioctls (carrier).
    ctl: Option<OwnedFd>,
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
        let ctl = sys::inet_dgram_socket().ok();
        let mtu = ctl
            .as_ref()
            .and_then(|sock| sys::if_mtu(sock.as_fd(), &name).ok())
            .unwrap_or(1500);
        Ok(Tap {
            fd,
            name,
            mtu,
            overflow: vec![0; OVERFLOW_LEN].into_boxed_slice(),
            stats: LinkStats::default(),
            ctl,
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
            return Err(io::Error::new(
                io::ErrorKind::WriteZero,
                "TAP took part of a frame",
            ));
        }
        self.stats.tx_frames += 1;
        self.stats.tx_bytes += n as u64;
        Ok(())
    }

    fn mtu(&self) -> usize {
        self.mtu
    }

    fn carrier(&self) -> Option<bool> {
        let ctl = self.ctl.as_ref()?;
        sys::if_running(ctl.as_fd(), &self.name).ok()
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testns::{recv_matching, NetNs, ANSWER, SILENCE};

    const OUR_MAC: [u8; 6] = [2, 0, 0, 0x77, 0, 2];

    /// An ARP request "who has 10.200.0.1? tell 10.200.0.2" from [`OUR_MAC`].
    fn arp_request() -> Vec<u8> {
        let mut f = Vec::with_capacity(42);
        f.extend_from_slice(&[0xff; 6]);
        f.extend_from_slice(&OUR_MAC);
        f.extend_from_slice(&[0x08, 0x06]); // ARP
        f.extend_from_slice(&[0, 1, 0x08, 0, 6, 4, 0, 1]); // Ethernet/IPv4, request
        f.extend_from_slice(&OUR_MAC);
        f.extend_from_slice(&[10, 200, 0, 2]);
        f.extend_from_slice(&[0; 6]);
        f.extend_from_slice(&[10, 200, 0, 1]);
        f
    }

    #[test]
    fn opens_in_a_namespace_and_talks_to_its_kernel() {
        let Some(ns) = NetNs::create_or_skip() else {
            return;
        };
        ns.quiet();
        let mut tap = open_in_namespace(&ns.name, "ws2tap0").unwrap();
        assert_eq!(tap.name(), "ws2tap0");
        assert_eq!(tap.mtu(), 1500);
        assert!(ns.ip(&["link", "show", "ws2tap0"]).contains("ws2tap0"));
        let in_root = std::process::Command::new("ip")
            .args(["link", "show", "ws2tap0"])
            .output();
        assert!(
            !in_root.unwrap().status.success(),
            "the TAP must not be in the root namespace"
        );
        let mut buf = [0u8; 1518];
        assert_eq!(
            tap.recv(&mut buf, Instant::now()).unwrap(),
            None,
            "non-blocking"
        );

        // The kernel inside the namespace is the peer: it must answer our ARP request.
        ns.ip(&["addr", "add", "10.200.0.1/24", "dev", "ws2tap0"]);
        ns.ip(&["link", "set", "ws2tap0", "up"]);
        tap.send(&arp_request(), Instant::now()).unwrap();
        let reply = recv_matching(&mut tap, 1518, ANSWER, |f| {
            f.len() >= 42 && f[12..14] == [8, 6] && f[21] == 2
        })
        .unwrap()
        .expect("an ARP reply from the namespace's kernel");
        assert_eq!(reply[..6], OUR_MAC);
        assert_eq!(reply[28..32], [10, 200, 0, 1]);
        assert_eq!(tap.stats().tx_frames, 1);
        assert!(tap.stats().rx_frames >= 1);

        // A non-persistent TAP goes away with its descriptor.
        drop(tap);
        assert!(ns.try_ip(&["link", "show", "ws2tap0"]).is_err());
    }

    #[test]
    fn frames_longer_than_the_buffer_are_counted() {
        let Some(ns) = NetNs::create_or_skip() else {
            return;
        };
        ns.quiet();
        let mut tap = open_in_namespace(&ns.name, "ws2tap1").unwrap();
        ns.ip(&["addr", "add", "10.200.0.1/24", "dev", "ws2tap1"]);
        ns.ip(&["link", "set", "ws2tap1", "up"]);
        tap.send(&arp_request(), Instant::now()).unwrap();
        // The 42-byte ARP reply does not fit 20 bytes: read, dropped, counted.
        assert_eq!(
            recv_matching(&mut tap, 20, SILENCE, |_| true).unwrap(),
            None
        );
        assert!(tap.stats().rx_dropped >= 1);
    }

    #[test]
    fn bad_namespace_names_are_errors() {
        let err = open_in_namespace("ws2-no-such-namespace", "ws2tap0").unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
        let err = open_in_namespace("../etc", "ws2tap0").unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    }
}
