//! [`UnixLink`] and [`UnixSwitch`]: a virtual LAN over Unix datagram sockets, one Ethernet frame
//! per datagram (the QEMU `-netdev dgram` convention), so separate unprivileged processes — and
//! VMs — can share one LAN through `ws2 switch --socket PATH`.
//!
//! Contract in short (in full on [`UnixLink`] and [`UnixSwitch`]): a link is non-blocking and
//! readable while a datagram is queued, never a `poll_at`; datagrams too long for the caller's
//! buffer or shorter than an Ethernet header are dropped and counted in `rx_dropped`; the switch
//! learns clients from source addresses and drops (and counts) frames a client has no room for.

use std::collections::HashMap;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::os::linux::net::SocketAddrExt;
use std::os::unix::fs::MetadataExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::virtual_switch::MacTable;
use crate::{sys, Link, LinkStats, SwitchStats};

/// Shortest datagram that is a frame; shorter ones only register their sender.
const MIN_FRAME_LEN: usize = 14;
/// How often the switch loop looks at its stop flag.
const STOP_CHECK: Duration = Duration::from_millis(100);

/// A [`Link`] to a [`UnixSwitch`]: Ethernet frames as Unix datagrams.
///
/// # Contract
/// - **Readiness.** The socket is non-blocking and readable while a datagram is queued; `recv`
///   answers `Ok(None)` on `EAGAIN`. [`Link::poll_at`] is always `None`.
/// - **Dropped.** A datagram longer than the caller's buffer or shorter than 14 bytes is
///   discarded and counted in [`LinkStats::rx_dropped`]. The switch drops a frame for a client
///   whose receive queue is full (counted in its [`SwitchStats::dropped_queue_full`]), as a real
///   switch drops on a congested port.
/// - **Sending.** One datagram per frame, to the switch only. A full switch queue is
///   [`io::ErrorKind::WouldBlock`]; a switch that went away is `ECONNREFUSED`.
#[derive(Debug)]
pub struct UnixLink {
    sock: UnixDatagram,
    stats: LinkStats,
}

impl UnixLink {
    /// Connects to the switch listening at `switch_path` and registers with it (one empty
    /// datagram). The local socket gets an abstract address chosen by the kernel.
    ///
    /// # Errors
    /// `NotFound` if nothing is at `switch_path`, `ConnectionRefused` if nobody listens there;
    /// errors of making the socket.
    pub fn connect(switch_path: &Path) -> io::Result<UnixLink> {
        let sock = UnixDatagram::from(sys::unix_dgram_autobind()?);
        sock.connect(switch_path)?;
        match sock.send(&[]) {
            Ok(_) => {}
            // A switch with a full queue will learn us from our first frame instead.
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
        Ok(UnixLink {
            sock,
            stats: LinkStats::default(),
        })
    }

    /// The link's own (abstract) address, as the switch sees it.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.sock.local_addr()
    }
}

impl Link for UnixLink {
    fn recv(&mut self, buf: &mut [u8], _now: Instant) -> io::Result<Option<usize>> {
        loop {
            match sys::recv_trunc(self.sock.as_fd(), buf) {
                Ok(n) if (MIN_FRAME_LEN..=buf.len()).contains(&n) => {
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
        if frame.len() < MIN_FRAME_LEN {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "frame shorter than 14 bytes",
            ));
        }
        let n = self.sock.send(frame)?;
        if n != frame.len() {
            return Err(io::Error::new(
                io::ErrorKind::WriteZero,
                "socket took part of a frame",
            ));
        }
        self.stats.tx_frames += 1;
        self.stats.tx_bytes += n as u64;
        Ok(())
    }

    fn stats(&self) -> LinkStats {
        self.stats
    }
}

impl AsRawFd for UnixLink {
    fn as_raw_fd(&self) -> RawFd {
        self.sock.as_raw_fd()
    }
}

impl AsFd for UnixLink {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.sock.as_fd()
    }
}

/// A client's address in a form that can key a map.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum ClientKey {
    Path(PathBuf),
    Abstract(Vec<u8>),
}

impl ClientKey {
    /// `None` for an unnamed sender, which cannot be answered.
    fn of(addr: &SocketAddr) -> Option<ClientKey> {
        if let Some(path) = addr.as_pathname() {
            return Some(ClientKey::Path(path.to_owned()));
        }
        addr.as_abstract_name()
            .map(|name| ClientKey::Abstract(name.to_vec()))
    }
}

#[derive(Debug)]
struct Tables {
    clients: HashMap<ClientKey, SocketAddr>,
    macs: MacTable<ClientKey>,
    stats: SwitchStats,
}

impl Default for Tables {
    fn default() -> Tables {
        Tables {
            clients: HashMap::new(),
            macs: MacTable::new(),
            stats: SwitchStats::default(),
        }
    }
}

/// The switch a [`UnixLink`] plugs into, serving a Unix datagram socket at a path.
///
/// # Registration
/// The switch answers to the *source address* of the datagrams it receives. A [`UnixLink`] binds
/// its socket to a fresh abstract address (Linux autobind) and, on connect, sends one empty
/// "hello" datagram, so the switch knows it before it sends any frame. A client bound to a
/// filesystem path (QEMU's `local=`) works the same way. Datagrams shorter than an Ethernet
/// header only register their sender.
///
/// # Switching
/// As [`VirtualSwitch`](crate::VirtualSwitch), without impairments: learn `source MAC -> client`
/// from frames with a unicast source; send a unicast frame to its learned client; flood every
/// other frame to every known client except the sender. The MAC table has the same bounds
/// (entries age out after 300 s, at most 4096; when full, new sources are not learned and
/// frames to them flood), on the real clock. A client whose address is gone
/// (`ECONNREFUSED`, `ENOENT`) is forgotten with its MACs.
///
/// ```no_run
/// use std::sync::atomic::AtomicBool;
/// use ws2_tap::UnixSwitch;
///
/// let switch = UnixSwitch::bind("/tmp/ws2.sock".as_ref())?;
/// let stop = AtomicBool::new(false); // set it from a signal handler or another thread
/// switch.run(&stop)?;
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
pub struct UnixSwitch {
    sock: UnixDatagram,
    path: PathBuf,
    /// Device and inode of the socket file we made, so drop removes only that file.
    file_id: (u64, u64),
    tables: Mutex<Tables>,
}

impl UnixSwitch {
    /// Makes the switch's socket at `path`. The file is removed when the switch is dropped.
    ///
    /// # Errors
    /// `AddrInUse` if `path` exists (remove a stale socket first); errors of making the socket.
    pub fn bind(path: &Path) -> io::Result<UnixSwitch> {
        let sock = UnixDatagram::bind(path)?;
        sock.set_nonblocking(true)?;
        let meta = std::fs::metadata(path)?;
        Ok(UnixSwitch {
            sock,
            path: path.to_owned(),
            file_id: (meta.dev(), meta.ino()),
            tables: Mutex::new(Tables::default()),
        })
    }

    /// The path the switch serves.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Switches frames until `stop` is true; the flag is checked at least every 100 ms.
    ///
    /// # Errors
    /// A failure of `poll` or `recv` on the switch's own socket; errors sending to one client
    /// only affect that client.
    pub fn run(&self, stop: &AtomicBool) -> io::Result<()> {
        self.run_until(stop, None)
    }

    /// Switches frames for `duration` (or until an error), then returns.
    pub fn run_for(&self, duration: Duration) -> io::Result<()> {
        self.run_until(
            &AtomicBool::new(false),
            Instant::now().checked_add(duration),
        )
    }

    /// Counters: `forwarded` frames sent to clients and `dropped_queue_full` frames that could
    /// not be (the client's queue was full, or another send error); the other fields stay 0.
    pub fn stats(&self) -> SwitchStats {
        self.tables
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .stats
    }

    /// How many clients the switch knows.
    pub fn client_count(&self) -> usize {
        self.tables
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clients
            .len()
    }

    fn run_until(&self, stop: &AtomicBool, deadline: Option<Instant>) -> io::Result<()> {
        let mut buf = vec![0u8; 65536];
        while !stop.load(Ordering::Relaxed) {
            let wait = match deadline {
                Some(d) => match d.checked_duration_since(Instant::now()) {
                    Some(left) => left.min(STOP_CHECK),
                    None => return Ok(()),
                },
                None => STOP_CHECK,
            };
            if !sys::poll_readable(self.sock.as_fd(), wait)? {
                continue;
            }
            loop {
                match self.sock.recv_from(&mut buf) {
                    // A datagram filling the whole buffer may have been cut: not a frame.
                    Ok((n, _)) if n == buf.len() => {}
                    Ok((n, from)) => self.switch(&buf[..n], &from),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(())
    }

    /// Registers the sender of `datagram`, learns its source MAC and forwards it.
    fn switch(&self, datagram: &[u8], from: &SocketAddr) {
        let mut tables = self.tables.lock().unwrap_or_else(PoisonError::into_inner);
        let sender = ClientKey::of(from);
        if let Some(key) = &sender {
            tables
                .clients
                .entry(key.clone())
                .or_insert_with(|| from.clone());
        }
        if datagram.len() < MIN_FRAME_LEN {
            return;
        }
        let mut dst = [0u8; 6];
        let mut src = [0u8; 6];
        dst.copy_from_slice(&datagram[..6]);
        src.copy_from_slice(&datagram[6..12]);
        let now = Instant::now();
        if let Some(key) = &sender {
            let refused = tables.macs.not_learned;
            tables.macs.learn(src, key, now);
            tables.stats.macs_not_learned += tables.macs.not_learned - refused;
        }
        let learned = tables.macs.lookup(&dst, now);
        let targets: Vec<ClientKey> = match learned.filter(|k| Some(k) != sender.as_ref()) {
            Some(k) => vec![k],
            None => tables
                .clients
                .keys()
                .filter(|k| Some(*k) != sender.as_ref())
                .cloned()
                .collect(),
        };
        for key in targets {
            let Some(addr) = tables.clients.get(&key) else {
                continue;
            };
            match self.sock.send_to_addr(datagram, addr) {
                Ok(_) => tables.stats.forwarded += 1,
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::ConnectionRefused | io::ErrorKind::NotFound
                    ) =>
                {
                    tables.clients.remove(&key);
                    tables.macs.forget_port(&key);
                }
                Err(_) => tables.stats.dropped_queue_full += 1,
            }
        }
    }
}

impl Drop for UnixSwitch {
    fn drop(&mut self) {
        let ours =
            std::fs::symlink_metadata(&self.path).is_ok_and(|m| (m.dev(), m.ino()) == self.file_id);
        if ours {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

impl AsRawFd for UnixSwitch {
    fn as_raw_fd(&self) -> RawFd {
        self.sock.as_raw_fd()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;

    use super::*;

    /// A fresh socket path under the temp dir, unique per process and call.
    fn socket_path() -> PathBuf {
        static N: AtomicUsize = AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        std::env::temp_dir().join(format!("ws2-tap-test-{}-{n}.sock", std::process::id()))
    }

    fn frame(dst: [u8; 6], src: [u8; 6], tag: u8) -> Vec<u8> {
        let mut f = vec![tag; 60];
        f[..6].copy_from_slice(&dst);
        f[6..12].copy_from_slice(&src);
        f
    }

    /// Waits up to 2 s for one frame on `link`.
    fn recv_one(link: &mut UnixLink) -> Option<Vec<u8>> {
        let mut buf = [0u8; 1518];
        let deadline = Instant::now() + Duration::from_secs(2);
        while Instant::now() < deadline {
            if let Some(n) = link.recv(&mut buf, Instant::now()).unwrap() {
                return Some(buf[..n].to_vec());
            }
            sys::poll_readable(link.as_fd(), Duration::from_millis(50)).unwrap();
        }
        None
    }

    #[test]
    fn two_links_exchange_frames_through_the_switch() {
        let path = socket_path();
        let switch = UnixSwitch::bind(&path).unwrap();
        let stop = AtomicBool::new(false);
        let (mac_a, mac_b) = ([2, 0, 0, 0, 0, 0xa], [2, 0, 0, 0, 0, 0xb]);
        std::thread::scope(|s| {
            let running = s.spawn(|| switch.run(&stop));
            let mut a = UnixLink::connect(&path).unwrap();
            let mut b = UnixLink::connect(&path).unwrap();
            let mut c = UnixLink::connect(&path).unwrap();
            let now = Instant::now();
            // Broadcast floods to everyone else; the hellos made B and C known.
            let hello = frame([0xff; 6], mac_a, 1);
            a.send(&hello, now).unwrap();
            assert_eq!(recv_one(&mut b), Some(hello.clone()));
            assert_eq!(recv_one(&mut c), Some(hello));
            // A is learned: B's answer reaches A only.
            let answer = frame(mac_a, mac_b, 2);
            b.send(&answer, now).unwrap();
            assert_eq!(recv_one(&mut a), Some(answer));
            let mut buf = [0u8; 1518];
            stop.store(true, Ordering::Relaxed);
            running.join().unwrap().unwrap();
            assert_eq!(c.recv(&mut buf, now).unwrap(), None);
            assert_eq!(b.recv(&mut buf, now).unwrap(), None);
            assert_eq!(a.stats().tx_frames, 1);
            assert_eq!(a.stats().rx_frames, 1);
        });
        assert_eq!(switch.client_count(), 3);
        assert_eq!(switch.stats().forwarded, 3);
        drop(switch);
        assert!(!path.exists(), "the socket file is removed on drop");
    }

    #[test]
    fn short_and_long_datagrams_are_counted_not_returned() {
        let path = socket_path();
        let switch = UnixDatagram::bind(&path).unwrap();
        let mut link = UnixLink::connect(&path).unwrap();
        let mut buf = [0u8; 100];
        let (_, from) = switch.recv_from(&mut buf).unwrap();
        for len in [0, 13, 101, 14] {
            switch.send_to_addr(&vec![0u8; len], &from).unwrap();
        }
        assert_eq!(link.recv(&mut buf, Instant::now()).unwrap(), Some(14));
        assert_eq!(link.stats().rx_dropped, 3);
        assert_eq!(
            link.send(&[0; 13], Instant::now()).unwrap_err().kind(),
            io::ErrorKind::InvalidInput
        );
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn connect_to_nothing_fails() {
        assert!(UnixLink::connect(&socket_path()).is_err());
    }

    #[test]
    fn run_for_returns() {
        let path = socket_path();
        let switch = UnixSwitch::bind(&path).unwrap();
        let t = Instant::now();
        switch.run_for(Duration::from_millis(150)).unwrap();
        assert!(t.elapsed() >= Duration::from_millis(150));
    }
}
