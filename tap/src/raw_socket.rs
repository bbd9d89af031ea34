//! [`RawSocket`]: an `AF_PACKET`/`SOCK_RAW` socket on an existing interface, for running the
//! stack on a real NIC or one end of a veth pair.
//!
//! Contract in short (in full on [`RawSocket`]): non-blocking, readable while a frame is queued,
//! never a `poll_at`; the interface's own transmissions (`PACKET_OUTGOING`) are skipped; a frame
//! longer than the caller's buffer is dropped and counted in `rx_dropped`.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::time::Instant;

use crate::{sys, Link, LinkStats};

/// An `AF_PACKET` link on one existing interface, in promiscuous mode.
///
/// # Contract
/// - **Readiness.** The descriptor is non-blocking and readable while a frame is queued; `recv`
///   answers `Ok(None)` on `EAGAIN`. [`Link::poll_at`] is always `None`.
/// - **What is received.** Every frame the interface sees (`ETH_P_ALL`), in promiscuous mode for
///   as long as the socket is open, *except* frames the interface transmits (`PACKET_OUTGOING`):
///   those are skipped, so the stack never hears its own sends, nor other local senders' frames.
/// - **Dropped.** A frame longer than the caller's buffer is discarded and counted in
///   [`LinkStats::rx_dropped`]. The kernel drops frames when the socket's receive buffer is full.
/// - **Sending.** One `send` per frame on the bound interface; `EAGAIN`/`ENOBUFS` come back as
///   errors (`EAGAIN` as [`io::ErrorKind::WouldBlock`]).
///
/// # Platform notes
/// - Frames from a veth peer or a local sender often carry *unfinished* checksums (checksum
///   offload: the kernel leaves them for a NIC that is not there). Turn the peer's offloads off
///   (`ethtool -K PEER tx off`) so the stack sees finished checksums. `PACKET_AUXDATA` would say
///   which frames are affected; this link does not read it.
/// - VLAN tags stripped by the NIC (`rxvlan`) are not put back into the frame.
/// - Needs `CAP_NET_RAW`. The socket belongs to the network namespace of the thread that opens
///   it; use [`in_namespace`](crate::in_namespace) for another one.
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
        Ok(RawSocket {
            fd,
            ifname: ifname.to_owned(),
            mtu,
            stats: LinkStats::default(),
        })
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
            return Err(io::Error::new(
                io::ErrorKind::WriteZero,
                "packet socket took part of a frame",
            ));
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testns::{recv_matching, NetNs, ANSWER, SILENCE};

    /// A broadcast frame with the local-experimental EtherType 0x88b5, tagged.
    fn probe(tag: u8, len: usize) -> Vec<u8> {
        let mut f = vec![tag; len];
        f[..6].copy_from_slice(&[0xff; 6]);
        f[6..12].copy_from_slice(&[2, 0, 0, 0x77, 0, 0xa]);
        f[12..14].copy_from_slice(&[0x88, 0xb5]);
        f
    }

    fn is_probe(f: &[u8]) -> bool {
        f.len() >= 14 && f[12..14] == [0x88, 0xb5]
    }

    #[test]
    fn veth_pair_in_a_namespace() {
        let Some(ns) = NetNs::create_or_skip() else {
            return;
        };
        ns.quiet();
        ns.ip(&[
            "link", "add", "ws2va", "type", "veth", "peer", "name", "ws2vb",
        ]);
        ns.ip(&["link", "set", "ws2va", "up"]);
        ns.ip(&["link", "set", "ws2vb", "up"]);
        let (mut a, mut b) = crate::in_namespace(&ns.name, || {
            Ok((RawSocket::open("ws2va")?, RawSocket::open("ws2vb")?))
        })
        .unwrap();
        assert_eq!(a.ifname(), "ws2va");
        assert_eq!(a.mtu(), 1500);

        let sent = probe(1, 60);
        a.send(&sent, Instant::now()).unwrap();
        assert_eq!(
            recv_matching(&mut b, 1518, ANSWER, is_probe).unwrap(),
            Some(sent)
        );
        // Our own transmission is PACKET_OUTGOING on `a`: never handed back.
        assert_eq!(
            recv_matching(&mut a, 1518, SILENCE, is_probe).unwrap(),
            None
        );

        // Too long for the buffer: dropped and counted.
        a.send(&probe(2, 1000), Instant::now()).unwrap();
        assert_eq!(recv_matching(&mut b, 100, SILENCE, is_probe).unwrap(), None);
        assert!(b.stats().rx_dropped >= 1);
    }

    #[test]
    fn unknown_or_bad_interface_names_are_errors() {
        assert_eq!(
            RawSocket::open("a-name-far-too-long").unwrap_err().kind(),
            io::ErrorKind::InvalidInput
        );
        assert!(RawSocket::open("ws2-nonexist").is_err());
    }
}
