//! The engine: one network node as a sans-IO state machine.
//!
//! Read first: DESIGN.md "stack: the engine and its driver". The engine reads no clock, opens no
//! descriptor and starts no thread: the driver (`crate::driver`) hands it the frames read from
//! the link with `now` ([`Engine::pass`]) and takes the frames it produced; application calls run
//! on it under the driver's lock at the clock's `now`. Each pass
//! 1. answers ARP and reassembles fragments (`neighbor`, `reassembly`), notes what smoltcp does
//!    not report about the arriving frames ([`frames::observe`]) and queues them for smoltcp
//!    (which runs on `Medium::Ip`: Ethernet and ARP are the engine's, `device`);
//! 2. polls the smoltcp `Interface`; egress frames for this node go back into its own receive
//!    queue (local delivery), the rest through the shaper to the driver;
//! 3. maintains listen pools and closing sockets;
//! 4. says when it next needs a pass (smoltcp's, the shaper's, IGMP's and RMP's deadlines).
//!
//! All randomness (ephemeral ports, TCP initial sequence numbers, IGMP delays) comes from the
//! seed the driver passes to [`Engine::new`] (`StackConfig::seed`), so the same seed on the same
//! input replays a run.

pub(crate) mod api;
mod async_io;
mod device;
mod drain;
mod frames;
mod groups;
mod lifecycle;
pub(crate) mod multicast;
mod neighbor;
mod pipeline;
mod qos;
mod reassembly;
pub(crate) mod rmp;
pub(crate) mod socket;
mod tcp;
mod udp;
mod urgent;
mod wire;

use std::collections::{BTreeMap, VecDeque};
use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use smoltcp::iface::{Config, Interface, SocketHandle, SocketSet};
use smoltcp::socket::tcp as stcp;
use smoltcp::wire::{EthernetProtocol, HardwareAddress, IpCidr, Ipv4Address};
use ws2_tap::LinkStats;

use crate::config::StackConfig;
use crate::error::WsaError;
pub(crate) use api::OvKind;
pub(crate) use async_io::OvOp;
use device::QueueDevice;
pub use drain::Dropped;
pub(crate) use groups::group_error;
pub use lifecycle::Proto;
pub(crate) use socket::Sock;
pub(crate) use socket::SocketId;
use socket::{Ports, State};
pub(crate) use udp::{MAX_RAW_PAYLOAD, MAX_UDP_PAYLOAD};

/// A new socket with the stack's defaults.
pub(crate) fn new_sock(proto: Proto, core: &Engine) -> Sock {
    Sock::new(proto, core.config.tcp_buffer, core.now)
}

/// How often the engine scans its connections (tail-loss probe, lone FINs).
const PROBE_SCAN: Duration = Duration::from_millis(2);
/// How often the engine comes back while a FIN waits for its acknowledgment.
const LONE_FIN_SCAN: Duration = Duration::from_millis(100);
/// How long a closed TCP connection may keep finishing in the background.
const ORPHAN_LIFETIME: Duration = Duration::from_secs(120);
/// How long a closed TCP connection whose data and FIN were all acknowledged (FIN-WAIT-2,
/// TIME-WAIT) keeps its buffers (issue 13; Linux's `tcp_fin_timeout`, 60 s).
const ORPHAN_FIN_TIMEOUT: Duration = Duration::from_secs(60);
/// Closed TCP connections finishing in the background at most (issue 13): past it the oldest is
/// reset, as Linux resets past `tcp_max_orphans`. With the default 64 KiB buffers each way, at
/// most 32 MiB.
pub(crate) const MAX_TCP_ORPHANS: usize = 256;

/// What a part of the engine draws random numbers for; each use gets its own stream of the
/// stack's seed, so adding a use never shifts another's numbers.
#[derive(Debug, Clone, Copy)]
enum SeedUse {
    /// smoltcp's `random_seed` (TCP initial sequence numbers).
    Smoltcp = 1,
    /// The first ephemeral port.
    EphemeralPorts = 2,
    /// IGMP report delays.
    Igmp = 3,
}

/// The seed of one use, from the stack's seed.
fn derive_seed(seed: u64, what: SeedUse) -> u64 {
    split_seed(seed, what as u64)
}

/// Stream `stream` of `seed`: SplitMix64's finaliser over both, so neighbouring seeds and
/// streams give unrelated numbers. The one mixer of the workspace: the engine's uses, the
/// driver's fresh seeds and the test simulation's per-host seeds all go through it.
pub fn split_seed(seed: u64, stream: u64) -> u64 {
    let mut z = seed ^ stream.wrapping_add(1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Counters of the engine (not of any one socket).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct EngineStats {
    /// Passes of the owner thread.
    pub passes: u64,
    /// Frames delivered inside the stack without touching the link.
    pub local_frames: u64,
    /// Frames dropped on ingress because they were malformed (shorter than an Ethernet header,
    /// or IPv4 whose header does not check).
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
    /// Tail-loss probes sent (see `Engine::probe_stalled`).
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
    /// Multicast datagrams dropped: a member's queue full or malformed.
    pub mcast_dropped: u64,
    /// Bytes RMP connections hold for TCP (docs/rmp.md §12).
    pub rmp_queued: u64,
    /// Octets held by IPv4 reassembly (at most `ipfrag_high_thresh`'s 4 MiB).
    pub reassembly_bytes: u64,
    /// Datagrams being reassembled.
    pub reassembly_slots: u64,
    /// Datagrams reassembled.
    pub reassembled: u64,
    /// Fragments dropped and datagrams discarded by reassembly.
    pub reassembly_dropped: u64,
    /// Entries in the neighbour table (at most `gc_thresh3`'s 1024).
    pub neighbors: u64,
    /// Octets of packets waiting for ARP.
    pub neighbor_queued_bytes: u64,
    /// ARP requests sent.
    pub arp_requests: u64,
    /// Packets the link layer dropped (unresolved, queue full, no route).
    pub neighbor_dropped: u64,
    /// Ingress frames for another MAC address or of an EtherType other than IPv4 and ARP.
    pub rx_foreign: u64,
    // ---- TCP and ICMP validation (issue 13, `tcp::validate`) ----
    /// RSTs and SYNs dropped before smoltcp by RFC 5961 (inexact or out-of-window RSTs, SYNs
    /// on synchronized connections).
    pub tcp_segments_refused: u64,
    /// Challenge ACKs sent (RFC 5961 §3.2, §4.2).
    pub tcp_challenge_acks: u64,
    /// Half-open pool connections forgotten to make room for a new SYN.
    pub syn_evicted: u64,
    /// SYNs dropped unanswered: the pool had no room left in their batch.
    pub syn_dropped: u64,
    /// Half-open (SYN-RECEIVED) pool connections tracked.
    pub tcp_half_open: u64,
    /// ICMP port unreachables ignored: no datagram of ours or no socket matches the quote.
    pub icmp_ignored: u64,
    /// UDP flows remembered for matching ICMP errors.
    pub udp_flows: u64,
    /// Listen-pool connections whose SYN the urgent-data tracker holds until `accept`.
    pub urgent_pre: u64,
    /// Out-of-line urgent bytes held out of the stream, over all sockets.
    pub urgent_skips: u64,
    /// TCP orphans reset because there were more than `MAX_TCP_ORPHANS`.
    pub orphans_reset: u64,
    /// Closed sockets given up unfinished: after `ORPHAN_LIFETIME`, or `ORPHAN_FIN_TIMEOUT`
    /// once our FIN was acknowledged (the soak watches it).
    pub orphans_expired: u64,
}

/// A smoltcp socket whose Winsock socket was closed, finishing its close in the background: a
/// TCP connection sending its queued data and FIN, or a datagram socket whose queued datagrams
/// have not left yet.
#[derive(Debug)]
struct Orphan {
    handle: SocketHandle,
    /// TCP (`None`) or the datagram socket's transport.
    datagram: Option<Proto>,
    /// The port binding it keeps until it is gone (so a new socket cannot collide with it).
    port: Option<(Proto, u16, SocketId)>,
    since: Instant,
}

/// Everything the owner thread and the API calls share, behind one mutex.
pub(crate) struct Engine {
    iface: Interface,
    sockets: SocketSet<'static>,
    device: QueueDevice,
    /// The link's counters as of the last pass (the link itself belongs to the owner thread).
    link_stats: LinkStats,
    table: BTreeMap<SocketId, Sock>,
    next_id: SocketId,
    ports: Ports,
    /// Socket groups (CHECKLIST §1.9), keyed by socket id; ids drawn process-wide.
    groups: groups::Groups,
    /// The egress shaper and admission control (`qos`).
    qos: qos::QosEngine,
    /// IGMP and multicast membership (`multicast`).
    mcast: multicast::Multicast,
    /// Rooted multipoint: the sockets the pass pumps and the TCP sockets they own (`rmp`).
    rmp: rmp::RmpState,
    /// TCP above smoltcp: connections by address, listen pools, receive shutdowns and the
    /// tail-loss probe's scan (`tcp`).
    streams: tcp::Streams,
    /// TCP urgent data: sequence numbers of pending accepts, sockets sending urgent data.
    urgent: urgent::Tracker,
    /// Closed sockets still finishing in the background: TCP closes, datagrams not yet sent.
    orphans: Vec<Orphan>,
    /// IPv4 reassembly of every fragmented datagram received (`reassembly`).
    frags: reassembly::Reassembler,
    /// Sockets with a notification registration or overlapped operations (`async_io`).
    watch: async_io::Watched,
    config: StackConfig,
    mac: [u8; 6],
    epoch: Instant,
    now: Instant,
    /// Set by API calls that gave smoltcp something to act on (data queued or consumed, a
    /// socket opened or closed); the caller then wakes the owner thread.
    wake: bool,
    stats: EngineStats,
    /// Set when the node ended because its link failed: every call is `WSAENETDOWN`.
    down: Option<String>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("sockets", &self.table.len())
            .finish_non_exhaustive()
    }
}

impl Engine {
    /// A node with `config`, whose randomness all comes from `seed`, started at `now`.
    pub(crate) fn new(config: StackConfig, seed: u64, now: Instant) -> Engine {
        let mac = config.hardware_addr();
        let neigh = neighbor::Neighbors::new(mac, config.addrs.clone(), config.gateway);
        let mut device = QueueDevice::new(config.mtu, neigh, now);
        let epoch = now;
        // smoltcp sees IPv4 packets; Ethernet and ARP are the engine's (`device`, `neighbor`).
        let mut iface_config = Config::new(HardwareAddress::Ip);
        // smoltcp draws TCP initial sequence numbers and its other choices from this.
        iface_config.random_seed = derive_seed(seed, SeedUse::Smoltcp);
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
        Engine {
            iface,
            sockets: SocketSet::new(Vec::new()),
            device,
            link_stats: LinkStats::default(),
            table: BTreeMap::new(),
            next_id: 1,
            ports: Ports::starting_at(derive_seed(seed, SeedUse::EphemeralPorts) as u16),
            groups: groups::Groups::new(),
            qos: qos::QosEngine::new(config.mtu, config.qos_capacity, config.link_rate, epoch),
            mcast: multicast::Multicast::new(
                config.mtu,
                config.igmp_version,
                config
                    .addrs
                    .first()
                    .map_or(Ipv4Addr::UNSPECIFIED, |c| c.addr),
                derive_seed(seed, SeedUse::Igmp),
            ),
            rmp: rmp::RmpState::default(),
            streams: tcp::Streams::new(epoch),
            frags: reassembly::Reassembler::default(),
            urgent: urgent::Tracker::default(),
            orphans: Vec::new(),
            watch: async_io::Watched::default(),
            config,
            mac,
            epoch,
            now: epoch,
            wake: false,
            stats: EngineStats::default(),
            down: None,
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
        if self.down.is_some() {
            return Err(WsaError::WSAENETDOWN);
        }
        if self.table.len() >= self.config.max_sockets {
            return Err(WsaError::WSAEMFILE);
        }
        let id = self.next_id;
        self.next_id += 1;
        self.table.insert(id, sock);
        Ok(id)
    }

    pub(crate) fn sock(&mut self, id: SocketId) -> Result<&mut Sock, WsaError> {
        if self.down.is_some() {
            return Err(WsaError::WSAENETDOWN);
        }
        self.table.get_mut(&id).ok_or(WsaError::WSAENOTSOCK)
    }

    pub(crate) fn tcp(&mut self, h: SocketHandle) -> &mut stcp::Socket<'static> {
        self.sockets.get_mut::<stcp::Socket>(h)
    }

    /// Hands a smoltcp socket that no Winsock socket owns any more to the background.
    fn orphan(&mut self, handle: SocketHandle, port: Option<(Proto, u16, SocketId)>) {
        // A graceful close queued a FIN: the pass watches for a lone one.
        self.streams.fins_pending = true;
        self.orphans.push(Orphan {
            handle,
            datagram: None,
            port,
            since: self.now,
        });
        // Bounded (issue 13): the oldest still open is reset (the pass removes it, closed).
        let live: Vec<usize> = (0..self.orphans.len())
            .filter(|&i| {
                self.orphans[i].datagram.is_none()
                    && self.tcp(self.orphans[i].handle).state() != stcp::State::Closed
            })
            .collect();
        if live.len() > MAX_TCP_ORPHANS {
            let oldest = live
                .into_iter()
                .min_by_key(|&i| self.orphans[i].since)
                .map(|i| self.orphans[i].handle);
            if let Some(h) = oldest {
                self.tcp(h).abort();
                self.stats.orphans_reset += 1;
            }
        }
    }

    /// Removes a socket from the table and releases what it holds. TCP connections close as
    /// their linger options say: `abortive` sends RST, otherwise FIN in the background.
    pub(crate) fn remove(&mut self, id: SocketId, abortive: bool) {
        let Some(mut sock) = self.table.remove(&id) else {
            return;
        };
        Engine::ov_abort(
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
        self.watch.sockets.remove(&id);
        self.watch
            .count
            .store(self.watch.sockets.len(), Ordering::Relaxed);
        self.streams.listeners.remove(&id);
        self.streams.recv_shut.remove(&id);
        if let (Some(l), Some(r)) = (sock.local, sock.peer) {
            if sock.proto == Proto::Tcp && self.streams.conns.get(&(l, r)) == Some(&id) {
                self.streams.conns.remove(&(l, r));
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
                // No smoltcp timeout: it counts from the peer's last segment, so a connection
                // idle for longer would be dropped at once, its FIN never sent (found by the
                // soak). `ORPHAN_LIFETIME` bounds the close instead.
                s.set_timeout(None);
                self.orphan(h, port);
            }
            State::Datagram(h) => {
                if !abortive && self.datagram_send_queue(sock.proto, h) > 0 {
                    // Datagrams the application handed over still leave (a graceful close).
                    self.orphans.push(Orphan {
                        handle: h,
                        datagram: Some(sock.proto),
                        port,
                        since: self.now,
                    });
                } else {
                    self.sockets.remove(h);
                    if let Some((p, port, id)) = port {
                        self.ports.release(p, port, id);
                    }
                }
            }
        }
    }

    /// Bytes a datagram socket's smoltcp buffer still holds for sending.
    fn datagram_send_queue(&self, proto: Proto, h: SocketHandle) -> usize {
        match proto {
            Proto::Udp => self
                .sockets
                .get::<smoltcp::socket::udp::Socket>(h)
                .send_queue(),
            Proto::RawIcmp => self
                .sockets
                .get::<smoltcp::socket::raw::Socket>(h)
                .send_queue(),
            Proto::Tcp | Proto::Rmp => 0,
        }
    }

    /// The smoltcp handles of the TCP connections closing in the background.
    pub(crate) fn tcp_orphans(&self) -> impl Iterator<Item = SocketHandle> + '_ {
        self.orphans
            .iter()
            .filter(|o| o.datagram.is_none())
            .map(|o| o.handle)
    }

    /// Whether an orphan has finished: a TCP connection closed, a datagram socket emptied.
    fn orphan_done(&self, o: &Orphan) -> bool {
        match o.datagram {
            Some(proto) => self.datagram_send_queue(proto, o.handle) == 0,
            None => self.sockets.get::<stcp::Socket>(o.handle).state() == stcp::State::Closed,
        }
    }

    /// Keeps enforcing `shutdown(SD_RECEIVE)` on a TCP socket from now on.
    pub(crate) fn watch_recv_shutdown(&mut self, id: SocketId) {
        if self.table.get(&id).is_some_and(|s| s.proto == Proto::Tcp) {
            self.streams.recv_shut.insert(id);
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
            self.streams.fins_pending = true;
        }
    }

    // ---- the pass -----------------------------------------------------------------------

    /// One pass of the engine at `now`, under the driver's lock: takes the frames read from the link
    /// (`rx`), runs smoltcp, and leaves the frames for the link in `out`. Returns how long
    /// smoltcp may sleep and whether the tail-loss probe fed it anything.
    pub(crate) fn pass(
        &mut self,
        now: Instant,
        rx: &mut Vec<Vec<u8>>,
        out: &mut VecDeque<Vec<u8>>,
    ) -> (Option<Duration>, bool) {
        // The driver read its clock before taking the lock; an API call in between may have
        // run at a later instant. Time in the engine never goes backwards.
        self.now = self.now.max(now);
        self.stats.passes += 1;
        self.device.now = self.now;
        for frame in rx.drain(..) {
            self.ingress(frame);
        }
        self.device.poll_neighbors();
        self.frags.expire(self.now);
        let igmp_at = self.mcast_pass(out);
        // Local delivery can feed smoltcp again; a few rounds finish a local exchange of
        // ARP, SYN, SYN-ACK and ACK in one pass.
        // A datagram being fragmented gets one fragment per poll (see `device`): up to 48 polls
        // carry the largest (65,535 bytes at 1,500 bytes a fragment).
        for round in 0..48 {
            let t = self.smol_now();
            self.device.now = self.now;
            self.device.hold = false;
            self.iface.poll(t, &mut self.device, &mut self.sockets);
            self.streams.guard.polled();
            self.flush(out);
            if (self.device.rx.is_empty() || round >= 8) && !self.device.fragmenting {
                break;
            }
        }
        // RMP reads what TCP received and may answer at once: one more poll sends it.
        self.rmp.moved = false;
        let rmp_at = self.rmp_pass();
        if self.rmp.moved {
            let t = self.smol_now();
            self.device.hold = false;
            self.iface.poll(t, &mut self.device, &mut self.sockets);
            self.streams.guard.polled();
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
        let link_at = self.device.neigh.poll_at();
        let frag_at = self.frags.poll_at();
        for at in [release, igmp_at, rmp_at, link_at, frag_at]
            .into_iter()
            .flatten()
        {
            let d = at.saturating_duration_since(self.now);
            delay = Some(delay.map_or(d, |x| x.min(d)));
        }
        if self.streams.in_flight && self.config.tail_probe.is_some() {
            delay = Some(delay.map_or(PROBE_SCAN, |d| d.min(PROBE_SCAN)));
        }
        if self.streams.fins_pending {
            // A lone FIN is re-armed by the scan, not by a smoltcp timer: come back for it (on
            // the system clock the driver's longest sleep used to cover this by chance).
            delay = Some(delay.map_or(LONE_FIN_SCAN, |d| d.min(LONE_FIN_SCAN)));
        }
        (delay, probed)
    }

    /// The ingress pipeline, in order (`pipeline`): what passes every stage goes to smoltcp.
    const INGRESS: [pipeline::IngressStage; 6] = [
        pipeline::IngressStage::Link,
        pipeline::IngressStage::Reassembly,
        pipeline::IngressStage::Multicast,
        pipeline::IngressStage::Observe,
        pipeline::IngressStage::Urgent,
        pipeline::IngressStage::Circular,
    ];

    /// The egress pipeline, in order (`pipeline`): what passes every stage goes to the link.
    const EGRESS: [pipeline::EgressStage; 3] = [
        pipeline::EgressStage::Urgent,
        pipeline::EgressStage::Local,
        pipeline::EgressStage::Shaper,
    ];

    /// A frame from the link: parsed once, then through [`Engine::INGRESS`].
    fn ingress(&mut self, frame: Vec<u8>) {
        self.ingress_frame(wire::Frame::parse(frame));
    }

    /// Runs a parsed frame through [`Engine::INGRESS`] into smoltcp's receive queue.
    fn ingress_frame(&mut self, frame: wire::Frame) {
        use pipeline::Step;
        if frame.check_len().is_err() {
            self.stats.rx_malformed += 1;
            self.device.recycle(frame.into_inner());
            return;
        }
        let mut frame = frame;
        for stage in Engine::INGRESS {
            frame = match self.ingress_stage(stage, frame) {
                Step::Continue(frame) => frame,
                Step::Consumed => return,
            };
        }
        self.device.rx.push_back(frame.into_inner());
    }

    fn ingress_stage(
        &mut self,
        stage: pipeline::IngressStage,
        frame: wire::Frame,
    ) -> pipeline::Step {
        use pipeline::{IngressStage, Step};
        match stage {
            IngressStage::Link => {
                if !self.link_ingress(&frame) {
                    self.device.recycle(frame.into_inner());
                    return Step::Consumed;
                }
            }
            IngressStage::Reassembly => {
                if frame.fragment().is_some() {
                    let whole = self.reassemble(&frame);
                    self.device.recycle(frame.into_inner());
                    return match whole {
                        Some(whole) => Step::Continue(wire::Frame::parse(whole)),
                        None => Step::Consumed,
                    };
                }
            }
            IngressStage::Multicast => {
                if self.mcast_ingress(&frame) {
                    self.device.recycle(frame.into_inner());
                    return Step::Consumed;
                }
            }
            // Validate before observing (issue 13, `tcp::validate`): a RST or SYN refused by
            // RFC 5961, or a SYN the listen pool has no room for, never reaches smoltcp.
            IngressStage::Observe => {
                if !self.tcp_validate(&frame) {
                    self.device.recycle(frame.into_inner());
                    return Step::Consumed;
                }
            }
            IngressStage::Urgent => self.urg_ingress(&frame),
            // SIO_ENABLE_CIRCULAR_QUEUEING: room is made before smoltcp sees the datagram.
            IngressStage::Circular => self.udp_circular_ingress(&frame),
        }
        Step::Continue(frame)
    }

    /// The link stage: ARP is answered here (`neighbor`), and only IPv4 for this node's MAC
    /// address (or broadcast, or a group) goes on, as smoltcp's Ethernet layer filtered before.
    /// Returns whether the frame goes on.
    fn link_ingress(&mut self, frame: &wire::Frame) -> bool {
        let Some(eth) = frame.ethernet() else {
            return false;
        };
        let dst = eth.dst_addr();
        if !dst.is_broadcast() && !dst.is_multicast() && dst.0 != self.mac {
            self.stats.rx_foreign += 1;
            return false;
        }
        match eth.ethertype() {
            EthernetProtocol::Arp => {
                let now = self.now;
                let device = &mut self.device;
                let tx = &mut device.tx;
                device.neigh.ingress_arp(now, eth.payload(), &mut |f| {
                    tx.push_back(wire::Frame::parse(f));
                });
                self.wake = true;
                false
            }
            // A datagram that does not check: smoltcp would drop it.
            EthernetProtocol::Ipv4 if frame.ipv4().is_some() => true,
            EthernetProtocol::Ipv4 => {
                self.stats.rx_malformed += 1;
                false
            }
            _ => {
                self.stats.rx_foreign += 1;
                false
            }
        }
    }

    /// The reassembly stage: a fragment for this node joins its datagram (`reassembly`);
    /// returns the whole datagram's frame once it is complete. Fragments with a bad header
    /// checksum, or for addresses not ours, are dropped (smoltcp would drop them).
    fn reassemble(&mut self, frame: &wire::Frame) -> Option<Vec<u8>> {
        let dst = frame.dst_addr()?;
        let ours = self.is_own(dst) || self.is_broadcast(dst) || dst.is_multicast();
        if !ours || !frame.ipv4_checksum_ok() {
            self.frags.stats.dropped += 1;
            return None;
        }
        match self.frags.push(self.now, frame.as_bytes()) {
            reassembly::Outcome::Complete(whole) => Some(whole),
            reassembly::Outcome::Held | reassembly::Outcome::Dropped => None,
        }
    }

    /// Sorts what smoltcp produced through [`Engine::EGRESS`]: frames for ourselves go back in,
    /// shaped ones wait, the rest go to `out` for the link.
    fn flush(&mut self, out: &mut VecDeque<Vec<u8>>) {
        use pipeline::Step;
        'frames: while let Some(mut frame) = self.device.tx.pop_front() {
            for stage in Engine::EGRESS {
                frame = match self.egress_stage(stage, frame) {
                    Step::Continue(frame) => frame,
                    Step::Consumed => continue 'frames,
                };
            }
            out.push_back(frame.into_inner());
        }
    }

    fn egress_stage(
        &mut self,
        stage: pipeline::EgressStage,
        mut frame: wire::Frame,
    ) -> pipeline::Step {
        use pipeline::{EgressStage, Step};
        match stage {
            EgressStage::Urgent => {
                self.tcp_egress_note(&frame);
                self.urg_egress(&mut frame);
            }
            EgressStage::Local => {
                let local = {
                    let addrs = &self.config.addrs;
                    frames::is_local(&frame, self.mac, |ip| {
                        ip.is_loopback() || addrs.iter().any(|c| c.addr == ip)
                    })
                };
                if local {
                    self.stats.local_frames += 1;
                    self.ingress_frame(frame);
                    return Step::Consumed;
                }
            }
            EgressStage::Shaper => match self.qos_egress(frame) {
                Some(unshaped) => frame = unshaped,
                None => return Step::Consumed,
            },
        }
        Step::Continue(frame)
    }

    /// Listen pools and background closes.
    fn maintain(&mut self) -> bool {
        // The scans over every connection run at most every PROBE_SCAN, not on every pass.
        let mut probed = false;
        if self
            .now
            .saturating_duration_since(self.streams.last_probe_scan)
            >= PROBE_SCAN
        {
            self.streams.last_probe_scan = self.now;
            probed = self.probe_stalled();
            self.rearm_lone_fins();
        }
        let listeners: Vec<SocketId> = self.streams.listeners.iter().copied().collect();
        for id in listeners {
            self.maintain_listener(id);
        }
        let shut: Vec<SocketId> = self.streams.recv_shut.iter().copied().collect();
        for id in shut {
            self.tcp_enforce_recv_shutdown(id);
        }
        let now = self.now;
        let mut i = 0;
        while i < self.orphans.len() {
            let o = &self.orphans[i];
            let age = now.saturating_duration_since(o.since);
            let acked = o.datagram.is_none() && {
                let s = self.sockets.get::<stcp::Socket>(o.handle);
                s.send_queue() == 0
                    && matches!(s.state(), stcp::State::FinWait2 | stcp::State::TimeWait)
            };
            let expired = age > ORPHAN_LIFETIME || (acked && age > ORPHAN_FIN_TIMEOUT);
            let finished = self.orphan_done(o);
            if finished || expired {
                if !finished {
                    self.stats.orphans_expired += 1;
                }
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

    /// Whether every background close got its data and FIN acknowledged (or died).
    fn closes_delivered(&self) -> bool {
        self.orphans.iter().all(|o| {
            if o.datagram.is_some() {
                return self.orphan_done(o);
            }
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

    /// Starts an API call or a pass at `now`; `wake`: the call will leave smoltcp something to
    /// act on whatever it does (the driver is woken after it).
    pub(crate) fn enter(&mut self, now: Instant, wake: bool) {
        self.now = self.now.max(now);
        self.wake = wake;
    }

    /// Whether the call just made gave smoltcp something to act on (the caller then wakes the
    /// driver); resets the mark.
    pub(crate) fn take_wake(&mut self) -> bool {
        std::mem::take(&mut self.wake)
    }

    /// The configuration the node runs with.
    pub(crate) fn config(&self) -> &StackConfig {
        &self.config
    }

    /// Takes the driver's link counters: frames moved and link errors since the last call,
    /// frames waiting for the link, and the link's own counters.
    pub(crate) fn note_link(&mut self, moved: u64, errors: u64, backlog: u64, link: LinkStats) {
        self.stats.frames_moved += moved;
        self.stats.link_errors += errors;
        self.stats.tx_backlog = backlog;
        self.link_stats = link;
    }

    /// Counts a pass after which smoltcp asked for an immediate poll without anything moving.
    pub(crate) fn note_idle_nap(&mut self) {
        self.stats.idle_naps += 1;
    }

    /// The link's counters as of the last pass.
    pub(crate) fn link_stats(&self) -> LinkStats {
        self.link_stats
    }

    /// Set while a multicast join waits to hear that the link took its report.
    pub(crate) fn mcast_joins_waiting(&self) -> Arc<AtomicBool> {
        self.mcast.waiting.clone()
    }

    /// The number of watched sockets, readable without the lock.
    pub(crate) fn watched_count(&self) -> Arc<AtomicUsize> {
        self.watch.count.clone()
    }

    pub(crate) fn stats(&self) -> EngineStats {
        EngineStats {
            orphans: self.orphans.len() as u64,
            sockets: self.table.len() as u64,
            smoltcp_sockets: self.sockets.iter().count() as u64,
            ports: self.ports.len() as u64,
            shaper_queued: self.qos.shaper.total_queued_packets() as u64,
            shaper_dropped: self.qos.dropped,
            igmp_sent: self.mcast.host.stats().reports_sent + self.mcast.host.stats().leaves_sent,
            igmp_received: self.mcast.host.stats().queries_received,
            mcast_delivered: self.mcast.delivered,
            mcast_dropped: self.mcast.dropped,
            rmp_queued: self.rmp_queued(),
            reassembly_bytes: self.frags.held_bytes() as u64,
            reassembly_slots: self.frags.slots() as u64,
            reassembled: self.frags.stats.completed,
            reassembly_dropped: self.frags.stats.dropped,
            neighbors: self.device.neigh.len() as u64,
            neighbor_queued_bytes: self.device.neigh.queued_bytes() as u64,
            arp_requests: self.device.neigh.stats.requests_sent,
            neighbor_dropped: self.device.neigh.stats.dropped,
            tcp_half_open: self.streams.guard.half_open() as u64,
            udp_flows: self.streams.guard.udp_flows() as u64,
            urgent_pre: self.urg_sizes().0 as u64,
            urgent_skips: self.urg_sizes().1 as u64,
            ..self.stats
        }
    }
}
