//! The engine: one `Stack` is one network node, driven by one owner thread.
//!
//! Read first: DESIGN.md "stack: the engine". Each pass of the owner thread
//! 1. reads a bounded batch of frames from the link, notes what smoltcp does not report
//!    ([`frames::observe`]) and queues them for smoltcp;
//! 2. polls the smoltcp `Interface`; egress frames for this node go back into its own receive
//!    queue (local delivery), the rest to the link — a frame the link refuses is kept, never
//!    dropped;
//! 3. maintains listen pools and closing sockets;
//! 4. wakes every application thread waiting on the stack (one condition variable) and sleeps
//!    on the link's descriptor, the waker and the next deadline (smoltcp's `poll_at` and the
//!    link's own).
//!
//! Application threads lock the core briefly through [`Stack::with`] and [`Stack::block_on`];
//! nothing waits while holding the lock.

mod async_io;
mod device;
mod frames;
mod groups;
pub(crate) mod multicast;
mod qos;
pub(crate) mod rmp;
pub(crate) mod socket;
mod sys;
mod tcp;
mod udp;
mod urgent;

use std::collections::{HashMap, HashSet, VecDeque};
use std::io;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use smoltcp::iface::{Config, Interface, SocketHandle, SocketSet};
use smoltcp::socket::tcp as stcp;
use smoltcp::wire::{EthernetAddress, HardwareAddress, IpCidr, Ipv4Address};
use ws2_tap::{Link, LinkStats};

use crate::config::StackConfig;
use crate::error::WsaError;
pub(crate) use async_io::{gather, scatter, OvOp};
use device::QueueDevice;
use frames::Observed;
pub(crate) use groups::group_error;
pub use socket::Proto;
pub(crate) use socket::SocketId;
use socket::{Ports, State};
pub(crate) use socket::{Sock, State as SockState};
pub(crate) use udp::{MAX_RAW_PAYLOAD, MAX_UDP_PAYLOAD};

/// A new socket with the stack's defaults.
pub(crate) fn new_sock(proto: Proto, core: &Core) -> Sock {
    Sock::new(proto, core.config.tcp_buffer)
}

/// Frames read from the link in one pass before smoltcp runs (bounded work per pass).
const RX_BATCH: usize = 128;
/// How long the owner thread naps when smoltcp asks for an immediate poll that achieves
/// nothing.
const IDLE_NAP: Duration = Duration::from_micros(500);
/// How often the engine scans its connections (tail-loss probe, lone FINs).
const PROBE_SCAN: Duration = Duration::from_millis(2);
/// Probes per stall before the engine leaves recovery to smoltcp's RTO.
const MAX_PROBES: u8 = 32;
/// The longest a probe waits (Linux's minimum RTO).
const MAX_PROBE_WAIT: Duration = Duration::from_millis(200);
/// How often the owner thread asks the link whether it has carrier (`NetworkAvailability`).
const CARRIER_CHECK: Duration = Duration::from_millis(250);
/// How long a dropped stack keeps running to finish its connections' closes.
const DRAIN_TIME: Duration = Duration::from_secs(2);
/// How long a closed TCP connection may keep finishing in the background.
const ORPHAN_LIFETIME: Duration = Duration::from_secs(120);

/// Counters of the engine (not of any one socket).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct EngineStats {
    /// Passes of the owner thread.
    pub passes: u64,
    /// Frames delivered inside the stack without touching the link.
    pub local_frames: u64,
    /// Frames dropped on ingress because they were malformed (shorter than an Ethernet header).
    pub rx_malformed: u64,
    /// Errors returned by the link (other than "would block").
    pub link_errors: u64,
    /// Closed TCP connections still finishing in the background.
    pub orphans: u64,
    /// Sockets in the table.
    pub sockets: u64,
    /// smoltcp sockets alive (table, listen pools and orphans).
    pub smoltcp_sockets: u64,
    /// (transport, port) bindings held.
    pub ports: u64,
    /// Frames waiting for the link to take them.
    pub tx_backlog: u64,
    /// Frames read from or written to the link.
    pub frames_moved: u64,
    /// Tail-loss probes sent (see `Core::probe_stalled`).
    pub tail_probes: u64,
    /// Passes after which smoltcp asked for an immediate poll without anything having moved.
    pub idle_naps: u64,
    /// Frames waiting in the QoS shaper.
    pub shaper_queued: u64,
    /// Queued frames a renegotiated flowspec could never let through, dropped.
    pub shaper_dropped: u64,
    /// IGMP reports and leaves sent.
    pub igmp_sent: u64,
    /// IGMP queries received.
    pub igmp_received: u64,
    /// Multicast datagrams copied to member sockets.
    pub mcast_delivered: u64,
    /// Multicast datagrams dropped: a member's queue full, malformed, or fragmented.
    pub mcast_dropped: u64,
}

/// A smoltcp socket whose Winsock socket was closed, finishing its close in the background.
#[derive(Debug)]
struct Orphan {
    handle: SocketHandle,
    /// The port binding it keeps until it is gone (so a new socket cannot collide with it).
    port: Option<(Proto, u16, SocketId)>,
    since: Instant,
}

/// Everything the owner thread and the API calls share, behind one mutex.
pub(crate) struct Core {
    pub(crate) iface: Interface,
    pub(crate) sockets: SocketSet<'static>,
    device: QueueDevice,
    /// The link's counters as of the last pass (the link itself belongs to the owner thread).
    link_stats: LinkStats,
    pub(crate) table: HashMap<SocketId, Sock>,
    next_id: SocketId,
    pub(crate) ports: Ports,
    /// Socket groups (CHECKLIST §1.9), keyed by socket id; ids drawn process-wide.
    pub(crate) groups: groups::Groups,
    /// The egress shaper and admission control (`qos`).
    pub(crate) qos: qos::QosEngine,
    /// IGMP and multicast membership (`multicast`).
    pub(crate) mcast: multicast::Multicast,
    /// RMP sockets with a listener or a link, pumped every pass (`rmp`).
    rmp_socks: HashSet<SocketId>,
    /// The TCP sockets RMP sockets own (never handed to the Winsock face).
    rmp_hidden: HashSet<SocketId>,
    /// The last RMP pump handed bytes to TCP.
    rmp_moved: bool,
    /// Scratch space the RMP pump reads TCP into.
    rmp_buf: Vec<u8>,
    /// Frames of flows that were removed, leaving unshaped on the next pass.
    qos_bypass: Vec<Vec<u8>>,
    /// Queued frames that could never conform after a renegotiation, dropped.
    qos_dropped: u64,
    /// Shaped datagram sockets flushed by `SIO_FLUSH`, whose shaper queue the pass drops.
    qos_flush: Vec<SocketId>,
    /// TCP connections by (local, remote), to attribute an observed RST.
    pub(crate) conns: HashMap<(SocketAddrV4, SocketAddrV4), SocketId>,
    /// TCP urgent data: sequence numbers of pending accepts, sockets sending urgent data.
    urgent: urgent::Tracker,
    listeners: HashSet<SocketId>,
    /// Sockets after `shutdown(SD_RECEIVE)`, checked every pass (D-35).
    recv_shut: HashSet<SocketId>,
    orphans: Vec<Orphan>,
    /// Sockets with a notification registration or overlapped operations (`async_io`).
    watched: HashSet<SocketId>,
    /// `watched.len()`, readable without the lock (calls skip re-arming when it is 0).
    watched_count: Arc<AtomicUsize>,
    pub(crate) config: StackConfig,
    mac: [u8; 6],
    epoch: Instant,
    pub(crate) now: Instant,
    last_probe_scan: Instant,
    /// Whether the last probe scan saw a connection with data in flight.
    in_flight: bool,
    /// Set by API calls that gave smoltcp something to act on (data queued or consumed, a
    /// socket opened or closed); the caller then wakes the owner thread.
    pub(crate) wake: bool,
    stats: EngineStats,
}

impl std::fmt::Debug for Core {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Core")
            .field("sockets", &self.table.len())
            .finish_non_exhaustive()
    }
}

impl Core {
    fn new(config: StackConfig) -> Core {
        let mac = config.hardware_addr();
        let mut device = QueueDevice::new(config.mtu);
        let epoch = Instant::now();
        let mut iface_config = Config::new(HardwareAddress::Ethernet(EthernetAddress(mac)));
        iface_config.random_seed =
            u64::from_le_bytes([mac[0], mac[1], mac[2], mac[3], mac[4], mac[5], 0x57, 0x32]);
        let seed = iface_config.random_seed ^ (u64::from(std::process::id()) << 32);
        let mut iface = Interface::new(iface_config, &mut device, smoltcp::time::Instant::ZERO);
        iface.update_ip_addrs(|addrs| {
            for cidr in &config.addrs {
                let _ = addrs.push(IpCidr::new(cidr.addr.into(), cidr.prefix));
            }
            let _ = addrs.push(IpCidr::new(Ipv4Address::new(127, 0, 0, 1).into(), 8));
        });
        if let Some(gw) = config.gateway {
            let _ = iface.routes_mut().add_default_ipv4_route(gw);
        }
        Core {
            iface,
            sockets: SocketSet::new(Vec::new()),
            device,
            link_stats: LinkStats::default(),
            table: HashMap::new(),
            next_id: 1,
            ports: Ports::starting_at(
                epoch.elapsed().subsec_nanos() as u16
                    ^ std::process::id() as u16
                    ^ u16::from_le_bytes([mac[4], mac[5]]),
            ),
            groups: groups::Groups::new(),
            qos: qos::QosEngine::new(config.mtu, config.qos_capacity, config.link_rate, epoch),
            mcast: multicast::Multicast::new(
                config.mtu,
                config.igmp_version,
                config
                    .addrs
                    .first()
                    .map_or(Ipv4Addr::UNSPECIFIED, |c| c.addr),
                seed ^ u64::from(epoch.elapsed().subsec_nanos()) << 20,
            ),
            rmp_socks: HashSet::new(),
            rmp_hidden: HashSet::new(),
            rmp_moved: false,
            rmp_buf: Vec::new(),
            qos_bypass: Vec::new(),
            qos_dropped: 0,
            qos_flush: Vec::new(),
            conns: HashMap::new(),
            urgent: urgent::Tracker::default(),
            listeners: HashSet::new(),
            recv_shut: HashSet::new(),
            orphans: Vec::new(),
            watched: HashSet::new(),
            watched_count: Arc::default(),
            config,
            mac,
            epoch,
            now: epoch,
            wake: false,
            last_probe_scan: epoch,
            in_flight: false,
            stats: EngineStats::default(),
        }
    }

    pub(crate) fn smol_now(&self) -> smoltcp::time::Instant {
        smoltcp::time::Instant::from_micros(
            self.now.saturating_duration_since(self.epoch).as_micros() as i64,
        )
    }

    /// Whether `ip` is one of this node's own addresses (127.0.0.0/8 included).
    pub(crate) fn is_own(&self, ip: Ipv4Addr) -> bool {
        ip.is_loopback() || self.config.addrs.iter().any(|c| c.addr == ip)
    }

    /// The source address for packets to `dst`: the loopback address for 127.0.0.0/8, the
    /// address itself for our own, else the address on `dst`'s network (or the first one).
    pub(crate) fn source_for(&self, dst: Ipv4Addr) -> Ipv4Addr {
        if dst.is_loopback() {
            return Ipv4Addr::LOCALHOST;
        }
        if self.is_own(dst) {
            return dst;
        }
        let first = self.config.addrs[0].addr;
        self.config
            .addrs
            .iter()
            .find(|c| c.contains(dst))
            .map_or(first, |c| c.addr)
    }

    /// Whether `ip` can be reached: local, on a connected network, or through the gateway.
    pub(crate) fn routable(&self, ip: Ipv4Addr) -> bool {
        self.is_own(ip)
            || ip.is_broadcast()
            || ip.is_multicast()
            || self.config.addrs.iter().any(|c| c.contains(ip))
            || self.config.gateway.is_some()
    }

    /// Whether `ip` is a broadcast address for this node (limited or directed).
    pub(crate) fn is_broadcast(&self, ip: Ipv4Addr) -> bool {
        ip.is_broadcast()
            || self
                .config
                .addrs
                .iter()
                .any(|c| c.prefix < 31 && c.broadcast() == ip)
    }

    // ---- the socket table -------------------------------------------------------------

    pub(crate) fn insert(&mut self, sock: Sock) -> Result<SocketId, WsaError> {
        if self.table.len() >= self.config.max_sockets {
            return Err(WsaError::WSAEMFILE);
        }
        let id = self.next_id;
        self.next_id += 1;
        self.table.insert(id, sock);
        Ok(id)
    }

    pub(crate) fn sock(&mut self, id: SocketId) -> Result<&mut Sock, WsaError> {
        self.table.get_mut(&id).ok_or(WsaError::WSAENOTSOCK)
    }

    pub(crate) fn tcp(&mut self, h: SocketHandle) -> &mut stcp::Socket<'static> {
        self.sockets.get_mut::<stcp::Socket>(h)
    }

    /// Hands a smoltcp socket that no Winsock socket owns any more to the background.
    fn orphan(&mut self, handle: SocketHandle, port: Option<(Proto, u16, SocketId)>) {
        self.orphans.push(Orphan {
            handle,
            port,
            since: self.now,
        });
    }

    /// Removes a socket from the table and releases what it holds. TCP connections close as
    /// their linger options say: `abortive` sends RST, otherwise FIN in the background.
    pub(crate) fn remove(&mut self, id: SocketId, abortive: bool) {
        let Some(mut sock) = self.table.remove(&id) else {
            return;
        };
        Core::ov_abort(
            std::mem::take(&mut sock.ov_recv),
            std::mem::take(&mut sock.ov_send),
        );
        // Closing the last member ends a socket group (CHECKLIST §1.5, §1.9).
        if let Some(d) = self.groups.leave(id).filter(|d| d.dissolved) {
            self.qos_group_dissolved(d.group.get());
        }
        self.qos_forget(id);
        self.mcast_forget(id);
        if let Some(rmp) = sock.rmp.take() {
            self.rmp_close(id, *rmp);
        }
        self.watched.remove(&id);
        self.watched_count
            .store(self.watched.len(), Ordering::Relaxed);
        self.listeners.remove(&id);
        self.recv_shut.remove(&id);
        if let (Some(l), Some(r)) = (sock.local, sock.peer) {
            if sock.proto == Proto::Tcp && self.conns.get(&(l, r)) == Some(&id) {
                self.conns.remove(&(l, r));
            }
        }
        let port = sock
            .bound
            .filter(|_| sock.holds_port)
            .map(|b| (sock.proto, b.port(), id));
        match sock.state {
            State::Idle => {
                if let Some((p, port, id)) = port {
                    self.ports.release(p, port, id);
                }
            }
            State::Listening(l) => {
                for h in l.pool {
                    let s = self.tcp(h);
                    if s.is_listening() {
                        self.sockets.remove(h);
                    } else {
                        s.abort();
                        self.orphan(h, None);
                    }
                }
                if let Some((p, port, id)) = port {
                    self.ports.release(p, port, id);
                }
            }
            State::Connecting(h) | State::Connected(h) => {
                let s = self.tcp(h);
                if abortive || sock.reset {
                    s.abort();
                } else {
                    s.close();
                }
                s.set_timeout(Some(smoltcp::time::Duration::from_secs(60)));
                self.orphan(h, port);
            }
            State::Datagram(h) => {
                self.sockets.remove(h);
                if let Some((p, port, id)) = port {
                    self.ports.release(p, port, id);
                }
            }
        }
    }

    /// Keeps enforcing `shutdown(SD_RECEIVE)` on a TCP socket from now on.
    pub(crate) fn watch_recv_shutdown(&mut self, id: SocketId) {
        if self.table.get(&id).is_some_and(|s| s.proto == Proto::Tcp) {
            self.recv_shut.insert(id);
            self.tcp_enforce_recv_shutdown(id);
        }
    }

    /// Starts a lingering close: FIN after the queued data, the socket stays in the table
    /// until the caller removes it.
    pub(crate) fn tcp_close_gracefully(&mut self, id: SocketId) {
        if let Some(Sock {
            state: State::Connected(h),
            shut_send,
            ..
        }) = self.table.get_mut(&id)
        {
            *shut_send = true;
            let h = *h;
            self.tcp(h).close();
        }
    }

    // ---- the pass -----------------------------------------------------------------------

    /// One pass of the owner thread, under the lock: takes the frames read from the link
    /// (`rx`), runs smoltcp, and leaves the frames for the link in `out`. Returns how long
    /// smoltcp may sleep and whether the tail-loss probe fed it anything.
    fn pass(
        &mut self,
        now: Instant,
        rx: &mut Vec<Vec<u8>>,
        out: &mut VecDeque<Vec<u8>>,
    ) -> (Option<Duration>, bool) {
        self.now = now;
        self.stats.passes += 1;
        for frame in rx.drain(..) {
            self.ingress(frame);
        }
        let igmp_at = self.mcast_pass(out);
        // Local delivery can feed smoltcp again; a few rounds finish a local exchange of
        // ARP, SYN, SYN-ACK and ACK in one pass.
        // A datagram being fragmented gets one fragment per poll (see `device`): up to 48 polls
        // carry the largest (65,535 bytes at 1,500 bytes a fragment).
        for round in 0..48 {
            let t = self.smol_now();
            self.device.hold = false;
            self.iface.poll(t, &mut self.device, &mut self.sockets);
            self.flush(out);
            if (self.device.rx.is_empty() || round >= 8) && !self.device.fragmenting {
                break;
            }
        }
        // RMP reads what TCP received and may answer at once: one more poll sends it.
        self.rmp_moved = false;
        let rmp_at = self.rmp_pass();
        if self.rmp_moved {
            let t = self.smol_now();
            self.device.hold = false;
            self.iface.poll(t, &mut self.device, &mut self.sockets);
            self.flush(out);
        }
        let probed = self.maintain();
        self.update_watched();
        self.qos_flush_pending();
        let release = self.qos_release(out);
        let mut delay = if self.device.rx.is_empty() && !probed {
            let t = self.smol_now();
            self.iface
                .poll_delay(t, &self.sockets)
                .map(|d| Duration::from_micros(d.total_micros()))
        } else {
            Some(Duration::ZERO)
        };
        for at in [release, igmp_at, rmp_at].into_iter().flatten() {
            let d = at.saturating_duration_since(self.now);
            delay = Some(delay.map_or(d, |x| x.min(d)));
        }
        if self.in_flight && self.config.tail_probe.is_some() {
            delay = Some(delay.map_or(PROBE_SCAN, |d| d.min(PROBE_SCAN)));
        }
        (delay, probed)
    }

    fn ingress(&mut self, frame: Vec<u8>) {
        if frame.len() < 14 {
            self.stats.rx_malformed += 1;
            self.device.recycle(frame);
            return;
        }
        if self.mcast_ingress(&frame) {
            self.device.recycle(frame);
            return;
        }
        match frames::observe(&frame) {
            Some(Observed::Tcp { local, remote, seg }) => {
                let id = self.conns.get(&(local, remote)).copied();
                if let Some(id) = id {
                    if let Some(s) = self.table.get_mut(&id) {
                        s.reset |= seg.rst;
                        s.acks.observe(seg, self.now);
                    }
                }
                self.urg_ingress(&frame, local, remote, id, &seg);
            }
            Some(Observed::PortUnreachable { local }) => {
                let ids: Vec<_> = self.ports.holders(Proto::Udp, local.port()).collect();
                for id in ids {
                    if let Some(s) = self.table.get_mut(&id) {
                        s.icmp_unreachable = true;
                    }
                }
            }
            None => {}
        }
        // SIO_ENABLE_CIRCULAR_QUEUEING: room is made before smoltcp sees the datagram.
        self.udp_circular_ingress(&frame);
        self.device.rx.push_back(frame);
    }

    /// Sorts what smoltcp produced: frames for ourselves go back in, the rest to `out` for the
    /// link.
    fn flush(&mut self, out: &mut VecDeque<Vec<u8>>) {
        while let Some(mut frame) = self.device.tx.pop_front() {
            self.urg_egress(&mut frame);
            let local = {
                let addrs = &self.config.addrs;
                frames::is_local(&frame, self.mac, |ip| {
                    ip.is_loopback() || addrs.iter().any(|c| c.addr == ip)
                })
            };
            if local {
                self.stats.local_frames += 1;
                self.ingress(frame);
            } else {
                self.qos_egress(frame, out);
            }
        }
    }

    /// Listen pools and background closes.
    fn maintain(&mut self) -> bool {
        // The scans over every connection run at most every PROBE_SCAN, not on every pass.
        let mut probed = false;
        if self.now.saturating_duration_since(self.last_probe_scan) >= PROBE_SCAN {
            self.last_probe_scan = self.now;
            probed = self.probe_stalled();
            self.rearm_lone_fins();
        }
        let listeners: Vec<SocketId> = self.listeners.iter().copied().collect();
        for id in listeners {
            self.maintain_listener(id);
        }
        let shut: Vec<SocketId> = self.recv_shut.iter().copied().collect();
        for id in shut {
            self.tcp_enforce_recv_shutdown(id);
        }
        let now = self.now;
        let mut i = 0;
        while i < self.orphans.len() {
            let o = &self.orphans[i];
            let s = self.sockets.get_mut::<stcp::Socket>(o.handle);
            let expired = now.saturating_duration_since(o.since) > ORPHAN_LIFETIME;
            if s.state() == stcp::State::Closed || expired {
                let o = self.orphans.swap_remove(i);
                self.sockets.remove(o.handle);
                if let Some((p, port, id)) = o.port {
                    self.ports.release(p, port, id);
                }
            } else {
                i += 1;
            }
        }
        probed
    }

    /// The tail-loss probe (DESIGN: loss recovery above smoltcp). smoltcp follows RFC 6298's
    /// one-second minimum RTO, and without SACK a loss it cannot fast-retransmit — the last
    /// segments of a burst, or a second hole in one window — stalls the connection for that
    /// second. When a connection has data in flight and no acknowledgment has advanced for
    /// `StackConfig::tail_probe` (doubling per probe, up to 200 ms), the engine repeats the
    /// peer's last ACK to smoltcp (see the loop below for why four times),
    /// which then retransmits its oldest unacknowledged segment (RFC 5681 §3.2), much as RACK-TLP
    /// (RFC 8985 §7) probes after a probe timeout. At most 32 probes per stall; the RTO
    /// remains the fallback. Returns whether it fed smoltcp anything.
    fn probe_stalled(&mut self) -> bool {
        let Some(pto) = self.config.tail_probe else {
            return false;
        };
        self.in_flight = false;
        let mut probes = Vec::new();
        for (&(local, remote), &id) in &self.conns {
            let shaped = self.qos.shaper.contains_flow(id);
            let Some(sock) = self.table.get_mut(&id) else {
                continue;
            };
            let State::Connected(h) = sock.state else {
                continue;
            };
            let s = self.sockets.get::<stcp::Socket>(h);
            // A zero window is flow control, not loss: smoltcp's zero-window probe handles it.
            // A shaped socket's segments wait in the shaper by design: no probe for them.
            let busy = !shaped
                && s.send_queue() > 0
                && sock.acks.window > 0
                && matches!(s.state(), stcp::State::Established | stcp::State::CloseWait);
            let acks = &mut sock.acks;
            if !busy {
                acks.stall_since = self.now;
                acks.probes = 0;
                continue;
            }
            self.in_flight = true;
            let (Some(ack), Some(seq)) = (acks.ack, acks.seq_end) else {
                continue;
            };
            // Each probe of one stall waits twice as long as the one before.
            let wait = (pto * (1u32 << acks.probes.min(8))).min(MAX_PROBE_WAIT);
            if acks.probes < MAX_PROBES
                && self.now.saturating_duration_since(acks.stall_since) >= wait
            {
                acks.probes += 1;
                acks.stall_since = self.now;
                probes.push((local, remote, seq, ack, acks.window));
            }
        }
        for &(local, remote, seq, ack, window) in &probes {
            self.stats.tail_probes += 1;
            // smoltcp fast-retransmits when its duplicate count reaches exactly three, and only
            // a non-duplicate resets the count — so after a lost retransmission more duplicates
            // would never trigger again. The first ACK carries a window one unit smaller (a
            // window update to smoltcp: the count restarts), the three after it repeat it.
            let window = window.saturating_sub(1).max(1);
            for _ in 0..4 {
                self.device
                    .rx
                    .push_back(frames::dup_ack(self.mac, local, remote, seq, ack, window));
            }
        }
        !probes.is_empty()
    }

    /// Whether every background close got its data and FIN acknowledged (or died).
    fn closes_delivered(&self) -> bool {
        self.orphans.iter().all(|o| {
            let s = self.sockets.get::<stcp::Socket>(o.handle);
            s.send_queue() == 0
                && matches!(
                    s.state(),
                    stcp::State::FinWait2
                        | stcp::State::TimeWait
                        | stcp::State::Closed
                        | stcp::State::Listen
                )
        })
    }

    fn stats(&self) -> EngineStats {
        EngineStats {
            orphans: self.orphans.len() as u64,
            sockets: self.table.len() as u64,
            smoltcp_sockets: self.sockets.iter().count() as u64,
            ports: self.ports.len() as u64,
            shaper_queued: self.qos.shaper.total_queued_packets() as u64,
            shaper_dropped: self.qos_dropped,
            igmp_sent: self.mcast.host.stats().reports_sent + self.mcast.host.stats().leaves_sent,
            igmp_received: self.mcast.host.stats().queries_received,
            mcast_delivered: self.mcast.delivered,
            mcast_dropped: self.mcast.dropped,
            ..self.stats
        }
    }
}

struct Inner {
    core: Mutex<Core>,
    /// The core's count of watched sockets.
    watched: Arc<AtomicUsize>,
    /// Notified after every pass of the owner thread.
    changed: Condvar,
    waker: sys::Waker,
    shutdown: AtomicBool,
}

/// Stops the owner thread when the last `Stack` clone goes away.
struct Owner {
    inner: Arc<Inner>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Drop for Owner {
    fn drop(&mut self) {
        self.inner.shutdown.store(true, Ordering::SeqCst);
        self.inner.waker.wake();
        if let Some(t) = self.thread.lock().unwrap_or_else(|e| e.into_inner()).take() {
            let _ = t.join();
        }
    }
}

/// One network node: a link, addresses, smoltcp and the socket table, run by one owner thread.
///
/// `Stack` is a cheap handle; clones share the node, and the owner thread stops when the last
/// clone is dropped.
///
/// # Examples
/// ```
/// use ws2_stack::{Stack, StackConfig};
/// use ws2_tap::VirtualSwitch;
///
/// let switch = VirtualSwitch::new(1);
/// let stack = Stack::new(StackConfig::new("10.0.0.1/24".parse()?), switch.port())?;
/// assert_eq!(stack.config().addrs[0].to_string(), "10.0.0.1/24");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct Stack {
    inner: Arc<Inner>,
    _owner: Arc<Owner>,
}

impl std::fmt::Debug for Stack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stack")
            .field("addrs", &self.config().addrs)
            .finish_non_exhaustive()
    }
}

impl Stack {
    /// Starts a node on `link` with `config`. Fails if `config` has no address or the waker
    /// cannot be made.
    pub fn new(config: StackConfig, link: impl Link + 'static) -> io::Result<Stack> {
        Stack::from_box(config, Box::new(link))
    }

    /// [`Stack::new`] for a link chosen at run time.
    pub fn from_box(config: StackConfig, link: Box<dyn Link>) -> io::Result<Stack> {
        if config.addrs.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "a stack needs an address",
            ));
        }
        let core = Core::new(config);
        let inner = Arc::new(Inner {
            watched: core.watched_count.clone(),
            core: Mutex::new(core),
            changed: Condvar::new(),
            waker: sys::Waker::new()?,
            shutdown: AtomicBool::new(false),
        });
        let thread_inner = inner.clone();
        let thread = std::thread::Builder::new()
            .name("ws2-stack".into())
            .spawn(move || run(&thread_inner, link))?;
        let owner = Arc::new(Owner {
            inner: inner.clone(),
            thread: Mutex::new(Some(thread)),
        });
        Ok(Stack {
            inner,
            _owner: owner,
        })
    }

    /// The configuration the stack runs with.
    pub fn config(&self) -> StackConfig {
        self.lock().config.clone()
    }

    /// Engine counters.
    pub fn stats(&self) -> EngineStats {
        self.lock().stats()
    }

    /// The link's counters.
    pub fn link_stats(&self) -> LinkStats {
        self.lock().link_stats
    }

    /// The multicast groups the interface is a member of (the merged state of every socket's
    /// memberships, RFC 3376 §3.2).
    pub fn multicast_groups(&self) -> Vec<Ipv4Addr> {
        self.lock().mcast_groups()
    }

    fn lock(&self) -> MutexGuard<'_, Core> {
        // A panic while holding the lock is a bug already reported; keep serving.
        self.inner.core.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs `f` on the core and wakes the owner thread to act on what it changed.
    pub(crate) fn with<R>(&self, f: impl FnOnce(&mut Core) -> R) -> R {
        let mut core = self.lock();
        core.now = Instant::now();
        core.wake = true;
        let r = f(&mut core);
        core.wake = false;
        drop(core);
        self.inner.waker.wake();
        r
    }

    /// Sets the bandwidth QoS reservations may use on the link, in bytes/s (D-14). Grants that
    /// no longer fit are revoked (those sockets fall back to best effort) and their owners get
    /// `FD_QOS`.
    pub fn set_qos_capacity(&self, bytes_per_second: u64) {
        self.with(|core| core.qos_set_capacity(bytes_per_second));
    }

    /// Declares the link usable or not (carrier up or down): `NetworkAvailability` in every
    /// flowspec follows, and every socket gets `FD_QOS` (group members `FD_GROUP_QOS`).
    pub fn set_link_available(&self, available: bool) {
        self.with(|core| core.qos_set_available(available));
    }

    /// Whether any socket has a notification registration or overlapped operations.
    pub(crate) fn any_watched(&self) -> bool {
        self.inner.watched.load(Ordering::Relaxed) > 0
    }

    /// Runs `f` on the core without waking the owner thread (for calls that only read, or act
    /// on the socket table alone).
    pub(crate) fn with_quiet<R>(&self, f: impl FnOnce(&mut Core) -> R) -> R {
        let mut core = self.lock();
        core.now = Instant::now();
        let r = f(&mut core);
        let wake = std::mem::take(&mut core.wake);
        drop(core);
        if wake {
            self.inner.waker.wake();
        }
        r
    }

    /// Runs `f` until it returns `Some`, waiting for the owner thread between tries; `None` if
    /// `deadline` passes first.
    pub(crate) fn block_on<R>(
        &self,
        deadline: Option<Instant>,
        mut f: impl FnMut(&mut Core) -> Option<R>,
    ) -> Option<R> {
        let mut core = self.lock();
        loop {
            core.now = Instant::now();
            let done = f(&mut core);
            if std::mem::take(&mut core.wake) {
                self.inner.waker.wake();
            }
            if let Some(r) = done {
                return Some(r);
            }
            let wait = match deadline {
                Some(d) => {
                    let left = d.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return None;
                    }
                    left.min(Duration::from_millis(200))
                }
                None => Duration::from_millis(200),
            };
            core = match self.inner.changed.wait_timeout(core, wait) {
                Ok((g, _)) => g,
                Err(e) => e.into_inner().0,
            };
        }
    }
}

/// The owner thread. Link I/O happens outside the core's lock, so application threads copy data
/// while frames move.
fn run(inner: &Inner, mut link: Box<dyn Link>) {
    // Shaped frames leave on deadlines tens of microseconds apart: wake on time.
    sys::set_timer_slack(1_000);
    let fds = [link.as_raw_fd(), inner.waker.as_raw_fd()];
    let mut rx: Vec<Vec<u8>> = Vec::with_capacity(RX_BATCH);
    let mut out: VecDeque<Vec<u8>> = VecDeque::new();
    let mut spare: Vec<Vec<u8>> = Vec::new();
    let (mut moved, mut errors) = (0u64, 0u64);
    let mut drain_until: Option<Instant> = None;
    // The link's carrier, checked every CARRIER_CHECK: NetworkAvailability follows it.
    let (mut carrier, mut carrier_checked) = (None, Instant::now());
    // Frames the link accepted in all, and whether a multicast join waits to hear of them.
    let mut link_sent = 0u64;
    let joins_waiting = inner
        .core
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .mcast
        .waiting
        .clone();
    loop {
        if inner.shutdown.load(Ordering::SeqCst) {
            let mut core = inner.core.lock().unwrap_or_else(|e| e.into_inner());
            let until = *drain_until.get_or_insert_with(|| {
                // The last handle is gone: close every socket gracefully, so queued data and
                // FINs still reach the peers, for at most DRAIN_TIME.
                // RMP sockets first: their last words (DISCONNECT, END) go into the hidden TCP
                // sockets, which close after them.
                let (hidden, visible): (Vec<SocketId>, Vec<SocketId>) = core
                    .table
                    .keys()
                    .copied()
                    .partition(|id| core.rmp_hidden.contains(id));
                for id in visible.into_iter().chain(hidden) {
                    core.remove(id, false);
                }
                Instant::now() + DRAIN_TIME
            });
            if core.closes_delivered() && core.device.tx.is_empty() && out.is_empty() {
                break;
            }
            if Instant::now() >= until {
                // Out of time: reset what is left, in one last pass.
                let orphans: Vec<SocketHandle> = core.orphans.iter().map(|o| o.handle).collect();
                for h in orphans {
                    core.tcp(h).abort();
                }
                core.pass(Instant::now(), &mut rx, &mut out);
                drop(core);
                while let Some(f) = out.pop_front() {
                    let _ = link.send(&f, Instant::now());
                }
                break;
            }
        }
        let now = Instant::now();
        let mtu = link.mtu();
        for _ in 0..RX_BATCH {
            let mut buf = spare.pop().unwrap_or_default();
            buf.resize(mtu + 32, 0);
            match link.recv(&mut buf, now) {
                Ok(Some(n)) => {
                    buf.truncate(n);
                    rx.push(buf);
                }
                Ok(None) => {
                    spare.push(buf);
                    break;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(_) => {
                    errors += 1;
                    break;
                }
            }
        }
        if now.saturating_duration_since(carrier_checked) >= CARRIER_CHECK {
            carrier_checked = now;
            let up = link.carrier();
            if up.is_some() && up != carrier {
                carrier = up;
                let mut core = inner.core.lock().unwrap_or_else(|e| e.into_inner());
                core.qos_set_available(up.unwrap_or(true));
            }
        }
        let read = rx.len() as u64;
        let (mut delay, probed) = {
            let mut core = inner.core.lock().unwrap_or_else(|e| e.into_inner());
            core.stats.frames_moved += moved + read;
            core.stats.link_errors += errors;
            core.stats.tx_backlog = out.len() as u64;
            core.link_stats = link.stats();
            (moved, errors) = (0, 0);
            core.pass(now, &mut rx, &mut out)
        };
        inner.changed.notify_all();
        let mut sent = 0u64;
        while let Some(frame) = out.pop_front() {
            match link.send(&frame, now) {
                Ok(()) => {
                    sent += 1;
                    if spare.len() < 256 {
                        spare.push(frame);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    out.push_front(frame);
                    break;
                }
                // A frame the link failed on (too long, device gone) would fail again.
                Err(_) => errors += 1,
            }
        }
        moved += sent;
        link_sent += sent;
        if joins_waiting.load(Ordering::Relaxed) {
            inner
                .core
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .mcast_link_progress(link_sent);
            inner.changed.notify_all();
        }
        if let Some(at) = link.poll_at() {
            let d = at.saturating_duration_since(now);
            delay = Some(delay.map_or(d, |x| x.min(d)));
        }
        if delay == Some(Duration::ZERO) && read + sent == 0 && !probed {
            // smoltcp asked to be polled at once but this pass moved no frame: a socket that
            // believes it can send while its dispatch declines would make this a busy loop.
            // Application calls wake the thread anyway, so a short nap loses nothing.
            inner
                .core
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .stats
                .idle_naps += 1;
            delay = Some(IDLE_NAP);
        }
        if !out.is_empty() {
            // The link refused frames: try again soon rather than wait for ingress.
            delay = Some(delay.map_or(Duration::from_millis(1), |x| {
                x.min(Duration::from_millis(1))
            }));
        }
        if delay == Some(Duration::ZERO) {
            continue;
        }
        let timeout = delay.map_or(Duration::from_millis(500), |d| {
            d.min(Duration::from_millis(500))
        });
        match sys::wait_readable(&fds, Some(timeout)) {
            Ok([_, woken]) => {
                if woken {
                    inner.waker.drain();
                }
            }
            Err(_) => std::thread::sleep(Duration::from_millis(1)),
        }
    }
}
