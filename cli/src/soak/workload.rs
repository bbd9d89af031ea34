//! The soak workload (issue 13, point 4): seeded cycles of TCP connections opened, loaded and
//! closed (graceful from either side, abortive, with data still queued), UDP flows, shaped
//! flows (a sending flowspec, `SIO_SET_QOS`, CHECKLIST §1.8), multicast joins and leaves
//! (`IP_ADD_MEMBERSHIP`/`IP_DROP_MEMBERSHIP`, RFC 1112/2236), and rooted multipoint sessions
//! (RMP, docs/rmp.md), across several hosts on one switch; after each cycle it measures what
//! the engines hold (sockets, smoltcp sockets, port bindings, orphans, queued frames) and the
//! process's live heap bytes.
//!
//! One file for two users: `ws2 soak` (real time on threaded stacks, or `--virtual`) and
//! `tests/tests/soak.rs` (virtual time on `ws2_tests::sim::Sim`), which includes it by path.
//! So it uses nothing but `ws2_stack`'s public Winsock face and asks its [`Env`] to move time:
//! every socket is nonblocking and every wait is [`Env::run_until`].
//!
//! "Flat" ([`judge`]): once everything is closed and the background closes have finished, the
//! socket, binding and orphan counts are exactly those before the first cycle, nothing is
//! queued, and the live heap exceeds its figure after the warm-up cycles by at most a stated
//! slack.
#![allow(dead_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::fmt;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use ws2_stack::winsock::*;
use ws2_stack::{split_seed, EngineStats, WsaError};

// ---- the live-heap gauge ----------------------------------------------------------------

static LIVE: AtomicI64 = AtomicI64::new(0);

/// The system allocator, counting the bytes allocated and not yet freed: a deterministic gauge
/// of the heap (RSS also moves with the allocator's own caching). Installed with
/// `#[global_allocator]` by the binary that runs the workload.
#[derive(Debug)]
pub(crate) struct Counting;

// SAFETY: every call is forwarded unchanged to `System`; only a counter is added.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract is `System::alloc`'s.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            LIVE.fetch_add(layout.size() as i64, Ordering::Relaxed);
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as `alloc`.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            LIVE.fetch_add(layout.size() as i64, Ordering::Relaxed);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from this allocator, i.e. from `System`, with `layout`.
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size() as i64, Ordering::Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: as `dealloc` and `alloc`.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            LIVE.fetch_add(new_size as i64 - layout.size() as i64, Ordering::Relaxed);
        }
        p
    }
}

/// Heap bytes allocated through [`Counting`] and not freed (0 if it is not installed).
pub(crate) fn live_bytes() -> i64 {
    LIVE.load(Ordering::Relaxed)
}

// ---- what the workload runs on -----------------------------------------------------------

/// The network the workload runs on: its hosts and how time moves.
pub(crate) trait Env {
    /// Moves time (virtual or real) until `done` holds, checking it at every step, or until
    /// `limit` has passed; whether `done` held.
    fn run_until(&mut self, limit: Duration, done: &mut dyn FnMut() -> bool) -> bool;
    /// Time since the start (virtual or wall).
    fn elapsed(&self) -> Duration;
    /// Frames the switch has forwarded so far.
    fn frames(&self) -> u64;
}

/// Runs `env` for `d`.
pub(crate) fn run_for(env: &mut dyn Env, d: Duration) {
    env.run_until(d, &mut || false);
}

/// How one cycle is shaped.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Shape {
    /// Idle time after each cycle: from, to (drawn uniformly).
    pub(crate) idle: (Duration, Duration),
    /// Most bytes one TCP connection carries each way.
    pub(crate) max_stream: usize,
    /// A deliberate leak, for the test that shows the soak catches one: heap bytes kept
    /// every cycle (0: none).
    pub(crate) leak_bytes: usize,
    /// A deliberate leak: one UDP socket left open every cycle.
    pub(crate) leak_socket: bool,
    /// Whether the switch loses frames (the environment's impairment): datagrams may then be
    /// lost (those that arrive are still checked, in order), and an abortive close's RST too.
    pub(crate) lossy: bool,
}

/// The addresses of the soak's hosts: 10.77.0.1, 10.77.0.2, …
pub(crate) fn host_addr(i: usize) -> Ipv4Addr {
    Ipv4Addr::new(10, 77, 0, 1 + i as u8)
}

/// The TCP port every host listens on for the whole run.
const TCP_PORT: u16 = 7000;
/// The listeners' backlog: more than a cycle's connections to one host.
const BACKLOG: i32 = 16;
/// The first multicast port; group `g` uses `MCAST_PORT + g`.
const MCAST_PORT: u16 = 7100;
/// The RMP root's port.
const RMP_ROOT_PORT: u16 = 7200;
/// A leaf's listening port for invitations.
const RMP_LEAF_PORT: u16 = 7201;
/// Groups drawn from (joins and leaves move between them).
const GROUPS: u64 = 8;
/// How long a lossy run waits for datagrams that may have been lost.
const LOSSY_WAIT: Duration = Duration::from_secs(5);
/// How long one step of a cycle may take before the soak calls it stuck.
const STEP_LIMIT: Duration = Duration::from_secs(60);

/// What a cycle fails with.
pub(crate) type Fail = String;

/// Counts over the whole run.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Totals {
    /// Cycles completed.
    pub(crate) cycles: u64,
    /// TCP connections opened (connected and accepted).
    pub(crate) tcp_opened: u64,
    /// TCP connections closed (both ends' sockets closed).
    pub(crate) tcp_closed: u64,
    /// Of which abortive.
    pub(crate) tcp_aborted: u64,
    /// Of which shaped by a sending flowspec.
    pub(crate) tcp_shaped: u64,
    /// Stream bytes delivered and checked.
    pub(crate) tcp_bytes: u64,
    /// Unicast UDP datagrams delivered (shaped ones included).
    pub(crate) udp_datagrams: u64,
    /// Datagrams (unicast and multicast copies) lost on a lossy switch.
    pub(crate) datagrams_lost: u64,
    /// UDP datagrams that went through a shaped socket.
    pub(crate) shaped_datagrams: u64,
    /// Multicast datagrams delivered to member sockets.
    pub(crate) mcast_datagrams: u64,
    /// Group joins (IP_ADD_MEMBERSHIP).
    pub(crate) joins: u64,
    /// Group leaves (IP_DROP_MEMBERSHIP or closing a member socket).
    pub(crate) leaves: u64,
    /// RMP sessions (a root and its invited leaves) set up and torn down.
    pub(crate) rmp_sessions: u64,
    /// RMP leaves invited.
    pub(crate) rmp_leaves: u64,
    /// RMP messages delivered to leaves.
    pub(crate) rmp_messages: u64,
    /// RMP invitations that failed on a lossy switch (the root's `FD_CONNECT` with an error).
    pub(crate) rmp_invites_failed: u64,
}

/// What the engines hold and the heap at one moment, summed over the hosts.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Figures {
    /// Winsock sockets in the tables.
    pub(crate) sockets: u64,
    /// smoltcp sockets (tables, listen pools, orphans).
    pub(crate) smoltcp: u64,
    /// Port bindings.
    pub(crate) ports: u64,
    /// Closed connections finishing in the background.
    pub(crate) orphans: u64,
    /// Frames queued: shaper and link backlog.
    pub(crate) queued: u64,
    /// Closed sockets the engines gave up on after their lifetime (a count since the start,
    /// not a level: on a lossless LAN every close should finish by itself).
    pub(crate) expired: u64,
    /// Live heap bytes ([`live_bytes`]).
    pub(crate) live: i64,
}

impl Figures {
    /// The counts that must come back exactly (everything but the heap).
    pub(crate) fn counts(&self) -> (u64, u64, u64, u64, u64) {
        (
            self.sockets,
            self.smoltcp,
            self.ports,
            self.orphans,
            self.queued,
        )
    }
}

impl fmt::Display for Figures {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "sockets {} smoltcp {} ports {} orphans {} queued {} expired {} live {:.1} KiB",
            self.sockets,
            self.smoltcp,
            self.ports,
            self.orphans,
            self.queued,
            self.expired,
            self.live as f64 / 1024.0
        )
    }
}

/// A counter-based stream of the run's seed (`split_seed`), so a seed replays a run.
#[derive(Debug)]
struct Draw {
    seed: u64,
    n: u64,
}

impl Draw {
    fn next(&mut self) -> u64 {
        self.n += 1;
        split_seed(self.seed, self.n)
    }

    /// Uniform in `0..n` (n > 0).
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// Uniform in `lo..=hi`.
    fn within(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }

    /// Two different hosts of `n`.
    fn pair(&mut self, n: usize) -> (usize, usize) {
        let a = self.below(n as u64) as usize;
        let b = (a + 1 + self.below(n as u64 - 1) as usize) % n;
        (a, b)
    }
}

/// The byte at `offset` of stream `n`: every stream's bytes are checked on arrival.
fn pattern(n: u64, offset: usize) -> u8 {
    (offset as u64)
        .wrapping_mul(131)
        .wrapping_add(n.wrapping_mul(7)) as u8
        ^ (offset >> 8) as u8
}

/// The soak: its hosts, their listeners and the counts so far.
pub(crate) struct Workload {
    hosts: Vec<(Winsock, Ipv4Addr)>,
    listeners: Vec<SOCKET>,
    draw: Draw,
    shape: Shape,
    /// Counts so far.
    pub(crate) totals: Totals,
    streams: u64,
    /// What [`Shape::leak_bytes`] and [`Shape::leak_socket`] keep.
    leaked: (Vec<Vec<u8>>, Vec<SOCKET>),
}

impl fmt::Debug for Workload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Workload")
            .field("hosts", &self.hosts.len())
            .field("totals", &self.totals)
            .finish_non_exhaustive()
    }
}

fn ctx<T>(r: Result<T, WsaError>, what: &str) -> Result<T, Fail> {
    r.map_err(|e| format!("{what}: {e:?}"))
}

fn sa(addr: SocketAddrV4) -> SOCKADDR_IN {
    SOCKADDR_IN::new(addr)
}

fn nonblocking(ws: &Winsock, s: SOCKET) -> Result<(), Fail> {
    let mut on = 1u32;
    ctx(ws.ioctlsocket(s, FIONBIO, Some(&mut on)), "FIONBIO")
}

fn udp_socket(ws: &Winsock, at: SocketAddrV4) -> Result<SOCKET, Fail> {
    let s = ctx(ws.socket(AF_INET, SOCK_DGRAM, 0), "socket(UDP)")?;
    ctx(ws.bind(s, Some(&sa(at)), SOCKADDR_IN_LEN), "bind(UDP)")?;
    nonblocking(ws, s)?;
    Ok(s)
}

fn local_name(ws: &Winsock, s: SOCKET) -> Result<SocketAddrV4, Fail> {
    let mut name = SOCKADDR_IN::default();
    let mut len = SOCKADDR_IN_LEN;
    ctx(
        ws.getsockname(s, Some(&mut name), Some(&mut len)),
        "getsockname",
    )?;
    Ok(name.to_socket_addr())
}

/// Whether `select` finds `s` writable now (a nonblocking connect has completed).
fn writable(ws: &Winsock, s: SOCKET) -> bool {
    let mut w = FD_SET::default();
    FD_SET(s, &mut w);
    let t = TIMEVAL {
        tv_sec: 0,
        tv_usec: 0,
    };
    matches!(ws.select(0, None, Some(&mut w), None, Some(&t)), Ok(1))
}

fn close(ws: &Winsock, s: SOCKET) -> Result<(), Fail> {
    ctx(ws.closesocket(s), "closesocket")
}

/// A sending flowspec of `rate` bytes/s and a bucket of `bucket` bytes (CHECKLIST §1.8).
fn sending(rate: i32, bucket: i32) -> QOS {
    let mut q = QOS::default();
    q.SendingFlowspec.LevelOfGuarantee = GuaranteedService;
    q.SendingFlowspec.TokenRate = rate;
    q.SendingFlowspec.TokenBucketSize = bucket;
    q.SendingFlowspec.PeakBandwidth = -1;
    q
}

fn set_qos(ws: &Winsock, s: SOCKET, q: &QOS) -> Result<(), Fail> {
    let mut ret = 0;
    ctx(
        ws.WSAIoctl(
            s,
            SIO_SET_QOS,
            &q.to_bytes(),
            &mut [],
            Some(&mut ret),
            None,
            None,
        )
        .map(|_| ()),
        "SIO_SET_QOS",
    )
}

fn membership(ws: &Winsock, s: SOCKET, group: Ipv4Addr, join: bool) -> Result<(), Fail> {
    let m = IP_MREQ {
        imr_multiaddr: group.octets(),
        imr_interface: Ipv4Addr::UNSPECIFIED.octets(),
    };
    let opt = if join {
        IP_ADD_MEMBERSHIP
    } else {
        IP_DROP_MEMBERSHIP
    };
    let bytes = m.as_bytes();
    ctx(
        ws.setsockopt(s, IPPROTO_IP, opt, Some(&bytes[..]), bytes.len() as i32),
        "IP_ADD/DROP_MEMBERSHIP",
    )
}

/// Runs `env` until `f` answers other than `WSAEWOULDBLOCK` (within [`STEP_LIMIT`]).
fn done<T>(
    env: &mut dyn Env,
    what: &str,
    mut f: impl FnMut() -> Result<T, WsaError>,
) -> Result<T, Fail> {
    let mut r = None;
    env.run_until(STEP_LIMIT, &mut || {
        r = match f() {
            Err(WsaError::WSAEWOULDBLOCK) => None,
            other => Some(other),
        };
        r.is_some()
    });
    match r {
        Some(r) => ctx(r, what),
        None => Err(format!("{what}: still WSAEWOULDBLOCK after {STEP_LIMIT:?}")),
    }
}

/// One TCP connection of a cycle.
struct Conn {
    client: usize,
    server: usize,
    c: SOCKET,
    s: SOCKET,
    /// Stream number (the data pattern's seed) of client → server; server → client is +1.
    n: u64,
    up: usize,
    down: usize,
    /// Bytes sent and received (checked) in each direction.
    sent_up: usize,
    got_up: usize,
    sent_down: usize,
    got_down: usize,
}

/// Sends what `want` still lacks of stream `n` on `s`; `Err` on a failure.
fn pump_send(ws: &Winsock, s: SOCKET, n: u64, sent: &mut usize, want: usize) -> Result<(), Fail> {
    let mut buf = [0u8; 16 * 1024];
    while *sent < want {
        let k = (want - *sent).min(buf.len());
        for (i, b) in buf[..k].iter_mut().enumerate() {
            *b = pattern(n, *sent + i);
        }
        match ws.send(s, &buf[..k], 0) {
            Ok(m) => *sent += m as usize,
            Err(WsaError::WSAEWOULDBLOCK) => break,
            Err(e) => return Err(format!("send: {e:?}")),
        }
    }
    Ok(())
}

/// Reads what `s` holds of stream `n`, checking every byte.
fn pump_recv(ws: &Winsock, s: SOCKET, n: u64, got: &mut usize) -> Result<(), Fail> {
    let mut buf = [0u8; 16 * 1024];
    loop {
        match ws.recv(s, &mut buf, 0) {
            Ok(0) => return Ok(()),
            Ok(m) => {
                for (i, &b) in buf[..m as usize].iter().enumerate() {
                    if b != pattern(n, *got + i) {
                        return Err(format!("stream {n}: wrong byte at offset {}", *got + i));
                    }
                }
                *got += m as usize;
            }
            Err(WsaError::WSAEWOULDBLOCK) => return Ok(()),
            Err(e) => return Err(format!("recv: {e:?}")),
        }
    }
}

impl Workload {
    /// The soak on `hosts` (each with its address), drawing from `seed`: opens one TCP listener
    /// per host, kept for the whole run.
    pub(crate) fn new(
        hosts: Vec<(Winsock, Ipv4Addr)>,
        seed: u64,
        shape: Shape,
    ) -> Result<Workload, Fail> {
        let mut listeners = Vec::new();
        for (ws, addr) in &hosts {
            let l = ctx(ws.socket(AF_INET, SOCK_STREAM, 0), "socket(listener)")?;
            ctx(
                ws.bind(
                    l,
                    Some(&sa(SocketAddrV4::new(*addr, TCP_PORT))),
                    SOCKADDR_IN_LEN,
                ),
                "bind(listener)",
            )?;
            ctx(ws.listen(l, BACKLOG), "listen")?;
            nonblocking(ws, l)?;
            listeners.push(l);
        }
        Ok(Workload {
            hosts,
            listeners,
            draw: Draw { seed, n: 0 },
            shape,
            totals: Totals::default(),
            streams: 0,
            leaked: (Vec::new(), Vec::new()),
        })
    }

    /// Each host's engine counters.
    pub(crate) fn engine_stats(&self) -> Vec<EngineStats> {
        self.hosts
            .iter()
            .map(|(ws, _)| ws.stack().stats())
            .collect()
    }

    /// What the engines hold now, summed, with the live heap.
    pub(crate) fn figures(&self) -> Figures {
        let mut f = Figures {
            live: live_bytes(),
            ..Figures::default()
        };
        for s in self.engine_stats() {
            f.sockets += s.sockets;
            f.smoltcp += s.smoltcp_sockets;
            f.ports += s.ports;
            f.orphans += s.orphans;
            f.queued += s.shaper_queued + s.tx_backlog;
            f.expired += s.orphans_expired;
        }
        f
    }

    /// One cycle: TCP, UDP, a shaped flow, multicast, RMP, then the idle time.
    pub(crate) fn cycle(&mut self, env: &mut dyn Env) -> Result<(), Fail> {
        self.tcp(env).map_err(|e| format!("TCP: {e}"))?;
        self.udp(env).map_err(|e| format!("UDP: {e}"))?;
        self.shaped(env).map_err(|e| format!("shaped flow: {e}"))?;
        self.multicast(env).map_err(|e| format!("multicast: {e}"))?;
        self.rmp(env).map_err(|e| format!("RMP: {e}"))?;
        let (lo, hi) = self.shape.idle;
        let idle = lo + Duration::from_millis(self.draw.below((hi - lo).as_millis() as u64 + 1));
        run_for(env, idle);
        if self.shape.leak_bytes > 0 {
            self.leaked.0.push(vec![1; self.shape.leak_bytes]);
        }
        if self.shape.leak_socket {
            let (ws, addr) = &self.hosts[0];
            self.leaked
                .1
                .push(udp_socket(ws, SocketAddrV4::new(*addr, 0))?);
        }
        self.totals.cycles += 1;
        Ok(())
    }

    /// Runs until every background close has finished and nothing is queued (at most
    /// `limit`, or until `stop` holds): whether the counts reached `target`.
    pub(crate) fn settle(
        &self,
        env: &mut dyn Env,
        target: &Figures,
        limit: Duration,
        stop: &dyn Fn() -> bool,
    ) -> bool {
        env.run_until(limit, &mut || {
            stop() || self.figures().counts() == target.counts()
        });
        self.figures().counts() == target.counts()
    }

    /// Closes the listeners.
    pub(crate) fn close_listeners(&mut self) -> Result<(), Fail> {
        for (l, (ws, _)) in self.listeners.drain(..).zip(&self.hosts) {
            close(ws, l)?;
        }
        Ok(())
    }

    /// 2–8 connections between random hosts, a quarter of them shaped, each carrying up to
    /// `max_stream` bytes each way, then closed each in one of four ways.
    fn tcp(&mut self, env: &mut dyn Env) -> Result<(), Fail> {
        let k = self.draw.within(2, 8);
        let mut conns = Vec::new();
        for _ in 0..k {
            let (client, server) = self.draw.pair(self.hosts.len());
            let (cw, _) = &self.hosts[client];
            let (sw, saddr) = &self.hosts[server];
            let l = self.listeners[server];
            let c = ctx(cw.socket(AF_INET, SOCK_STREAM, 0), "socket")?;
            nonblocking(cw, c)?;
            if self.draw.below(4) == 0 {
                // 1.25 MB/s, a 16 KiB bucket: shaped, yet done within the cycle.
                set_qos(cw, c, &sending(1_250_000, 16 * 1024))?;
                self.totals.tcp_shaped += 1;
            }
            let to = SocketAddrV4::new(*saddr, TCP_PORT);
            match cw.connect(c, Some(&sa(to)), SOCKADDR_IN_LEN) {
                Err(WsaError::WSAEWOULDBLOCK) | Ok(()) => {}
                Err(e) => return Err(format!("connect: {e:?}")),
            }
            let s = done(env, "accept", || sw.accept(l, None, None))?;
            nonblocking(sw, s)?;
            if !env.run_until(STEP_LIMIT, &mut || writable(cw, c)) {
                return Err("the connect never completed at the client".into());
            }
            self.totals.tcp_opened += 1;
            let max = self.shape.max_stream as u64;
            let n = self.streams;
            self.streams += 2;
            conns.push(Conn {
                client,
                server,
                c,
                s,
                n,
                up: self.draw.below(max + 1) as usize,
                down: self.draw.below(max + 1) as usize,
                sent_up: 0,
                got_up: 0,
                sent_down: 0,
                got_down: 0,
            });
        }
        // Every connection's data both ways at once.
        let hosts = &self.hosts;
        let mut failed = None;
        let moved = env.run_until(STEP_LIMIT * 4, &mut || {
            let mut all = true;
            for x in conns.iter_mut() {
                let (cw, sw) = (&hosts[x.client].0, &hosts[x.server].0);
                let r = pump_send(cw, x.c, x.n, &mut x.sent_up, x.up)
                    .and_then(|()| pump_send(sw, x.s, x.n + 1, &mut x.sent_down, x.down))
                    .and_then(|()| pump_recv(sw, x.s, x.n, &mut x.got_up))
                    .and_then(|()| pump_recv(cw, x.c, x.n + 1, &mut x.got_down));
                if let Err(e) = r {
                    failed = Some(e);
                    return true;
                }
                all &= x.got_up == x.up && x.got_down == x.down;
            }
            all
        });
        if let Some(e) = failed {
            return Err(e);
        }
        if !moved {
            return Err(format!("streams not delivered within {:?}", STEP_LIMIT * 4));
        }
        for x in &conns {
            self.totals.tcp_bytes += (x.up + x.down) as u64;
        }
        for x in conns {
            let name =
                local_name(&self.hosts[x.client].0, x.c).map_or_else(|e| e, |a| a.to_string());
            let (server, at) = (self.hosts[x.server].1, env.elapsed());
            self.close_conn(env, x)
                .map_err(|e| format!("{name} -> {server}:{TCP_PORT} (closing from {at:?}): {e}"))?;
            self.totals.tcp_closed += 1;
        }
        Ok(())
    }

    /// Closes one connection: client first, server first, abortive, or both at once with data
    /// still queued.
    fn close_conn(&mut self, env: &mut dyn Env, x: Conn) -> Result<(), Fail> {
        let (cw, sw) = (&self.hosts[x.client].0, &self.hosts[x.server].0);
        let mut buf = [0u8; 2048];
        match self.draw.below(4) {
            0 => {
                close(cw, x.c)?;
                let r = done(env, "recv of the FIN", || sw.recv(x.s, &mut buf, 0))?;
                if r != 0 {
                    return Err(format!("{r} bytes after the peer's close"));
                }
                close(sw, x.s)
            }
            1 => {
                close(sw, x.s)?;
                let r = done(env, "recv of the FIN", || cw.recv(x.c, &mut buf, 0))?;
                if r != 0 {
                    return Err(format!("{r} bytes after the peer's close"));
                }
                close(cw, x.c)
            }
            2 => {
                let linger = [1u16.to_ne_bytes(), 0u16.to_ne_bytes()].concat();
                ctx(
                    cw.setsockopt(x.c, SOL_SOCKET, SO_LINGER, Some(&linger), 4),
                    "SO_LINGER",
                )?;
                close(cw, x.c)?;
                // The RST arrives: the next recv fails (WSAECONNRESET) or reads the end.
                let mut came = false;
                env.run_until(STEP_LIMIT, &mut || {
                    came = !matches!(sw.recv(x.s, &mut buf, 0), Err(WsaError::WSAEWOULDBLOCK));
                    came
                });
                if !came && !self.shape.lossy {
                    return Err("the RST of an abortive close never came".into());
                }
                self.totals.tcp_aborted += 1;
                close(sw, x.s)
            }
            _ => {
                let mut sent = 0;
                pump_send(cw, x.c, 0, &mut sent, 8 * 1024)?;
                sent = 0;
                pump_send(sw, x.s, 0, &mut sent, 8 * 1024)?;
                close(cw, x.c)?;
                close(sw, x.s)
            }
        }
    }

    /// 1–3 UDP socket pairs, each 1–16 datagrams of 1–1400 bytes one way and one back.
    fn udp(&mut self, env: &mut dyn Env) -> Result<(), Fail> {
        for _ in 0..self.draw.within(1, 3) {
            let (i, j) = self.draw.pair(self.hosts.len());
            let n = self.draw.within(1, 16) as usize;
            let sizes: Vec<usize> = (0..n).map(|_| self.draw.within(1, 1400) as usize).collect();
            self.datagrams(env, i, j, &sizes, None)?;
        }
        Ok(())
    }

    /// One UDP flow shaped by a sending flowspec: 16–64 kB/s, about half a second of data.
    fn shaped(&mut self, env: &mut dyn Env) -> Result<(), Fail> {
        let (i, j) = self.draw.pair(self.hosts.len());
        let rate = self.draw.within(16, 64) as i32 * 1000;
        let n = (rate / 2 / 500) as usize;
        let sizes = vec![500; n];
        self.datagrams(env, i, j, &sizes, Some(rate))?;
        self.totals.shaped_datagrams += n as u64;
        Ok(())
    }

    /// Datagrams of `sizes` from host `i` to host `j` (shaped to `rate` if given), all
    /// checked on arrival, one answer back, both sockets closed.
    fn datagrams(
        &mut self,
        env: &mut dyn Env,
        i: usize,
        j: usize,
        sizes: &[usize],
        rate: Option<i32>,
    ) -> Result<(), Fail> {
        let (iw, ia) = &self.hosts[i];
        let (jw, ja) = &self.hosts[j];
        let u = udp_socket(iw, SocketAddrV4::new(*ia, 0))?;
        let v = udp_socket(jw, SocketAddrV4::new(*ja, 0))?;
        if let Some(rate) = rate {
            set_qos(iw, u, &sending(rate, 1500))?;
        }
        let to = local_name(jw, v)?;
        let (mut sent, mut got, mut next) = (0, 0, 0);
        let mut buf = vec![0u8; 2048];
        let mut failed = None;
        let lossy = self.shape.lossy;
        let limit = if lossy { LOSSY_WAIT } else { STEP_LIMIT };
        let ok = env.run_until(limit, &mut || {
            while sent < sizes.len() {
                let d = vec![sent as u8; sizes[sent]];
                match iw.sendto(u, &d, 0, Some(&sa(to)), SOCKADDR_IN_LEN) {
                    Ok(_) => sent += 1,
                    Err(WsaError::WSAEWOULDBLOCK) => break,
                    Err(e) => {
                        failed = Some(format!("sendto: {e:?}"));
                        return true;
                    }
                }
            }
            loop {
                match jw.recv(v, &mut buf, 0) {
                    Ok(k) => {
                        // Datagram i carries i in every byte; lost ones may be skipped.
                        let i = usize::from(buf[0]);
                        let wrong = i >= sizes.len() || k as usize != sizes[i];
                        if wrong || (i != next && !lossy) || i < next {
                            failed = Some(format!("datagram {i} ({k} bytes) after {next}"));
                            return true;
                        }
                        next = i + 1;
                        got += 1;
                    }
                    Err(WsaError::WSAEWOULDBLOCK) => break,
                    Err(e) => {
                        failed = Some(format!("recv: {e:?}"));
                        return true;
                    }
                }
            }
            got == sizes.len()
        });
        if let Some(e) = failed {
            return Err(e);
        }
        if !ok && !lossy {
            return Err(format!("{got} of {} datagrams arrived", sizes.len()));
        }
        let back = local_name(iw, u)?;
        ctx(
            jw.sendto(v, b"back", 0, Some(&sa(back)), SOCKADDR_IN_LEN),
            "sendto(back)",
        )?;
        let mut answer = None;
        env.run_until(limit, &mut || {
            answer = match iw.recv(u, &mut buf, 0) {
                Err(WsaError::WSAEWOULDBLOCK) => None,
                r => Some(r),
            };
            answer.is_some()
        });
        match answer {
            Some(Ok(4)) => got += 1,
            None if lossy => {}
            other => return Err(format!("the answer: {other:?}")),
        }
        self.totals.udp_datagrams += got as u64;
        self.totals.datagrams_lost += (sizes.len() + 1 - got) as u64;
        close(iw, u)?;
        close(jw, v)
    }

    /// One of [`GROUPS`] groups: 1 to all-but-one hosts join (IP_ADD_MEMBERSHIP), another sends
    /// 1–8 datagrams, every member gets each; then each member leaves, by IP_DROP_MEMBERSHIP or
    /// by closing its socket.
    fn multicast(&mut self, env: &mut dyn Env) -> Result<(), Fail> {
        let g = self.draw.below(GROUPS);
        let group = Ipv4Addr::new(239, 255, 77, 1 + g as u8);
        let port = MCAST_PORT + g as u16;
        let n = self.hosts.len();
        let sender = self.draw.below(n as u64) as usize;
        let members: Vec<usize> = (0..n)
            .filter(|&h| h != sender)
            .filter(|_| self.draw.below(3) != 0)
            .collect();
        let members = if members.is_empty() {
            vec![(sender + 1) % n]
        } else {
            members
        };
        let mut socks = Vec::new();
        for &h in &members {
            let ws = &self.hosts[h].0;
            let s = udp_socket(ws, SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, port))?;
            membership(ws, s, group, true)?;
            self.totals.joins += 1;
            socks.push(s);
        }
        let (sw, sa_) = &self.hosts[sender];
        let tx = udp_socket(sw, SocketAddrV4::new(*sa_, 0))?;
        let count = self.draw.within(1, 8) as usize;
        let to = SocketAddrV4::new(group, port);
        let mut sent = 0;
        let mut got = vec![0usize; members.len()];
        let mut next = vec![0usize; members.len()];
        let mut buf = [0u8; 256];
        let hosts = &self.hosts;
        let mut failed = None;
        let lossy = self.shape.lossy;
        let limit = if lossy { LOSSY_WAIT } else { STEP_LIMIT };
        let ok = env.run_until(limit, &mut || {
            while sent < count {
                match sw.sendto(tx, &[sent as u8; 100], 0, Some(&sa(to)), SOCKADDR_IN_LEN) {
                    Ok(_) => sent += 1,
                    Err(WsaError::WSAEWOULDBLOCK) => break,
                    Err(e) => {
                        failed = Some(format!("sendto(group): {e:?}"));
                        return true;
                    }
                }
            }
            for (k, (&h, &s)) in members.iter().zip(&socks).enumerate() {
                while let Ok(m) = hosts[h].0.recv(s, &mut buf, 0) {
                    let i = usize::from(buf[0]);
                    if m != 100 || i >= count || i < next[k] || (i != next[k] && !lossy) {
                        failed = Some(format!("member {h}: datagram {i} after {}", next[k]));
                        return true;
                    }
                    next[k] = i + 1;
                    got[k] += 1;
                }
            }
            got.iter().all(|&x| x == count)
        });
        if let Some(e) = failed {
            return Err(e);
        }
        if !ok && !lossy {
            return Err(format!("{count} sent to {group}, members got {got:?}"));
        }
        let delivered: usize = got.iter().sum();
        self.totals.mcast_datagrams += delivered as u64;
        self.totals.datagrams_lost += (count * members.len() - delivered) as u64;
        close(sw, tx)?;
        for (&h, &s) in members.iter().zip(&socks) {
            let ws = &self.hosts[h].0;
            if self.draw.below(2) == 0 {
                membership(ws, s, group, false)?;
            }
            close(ws, s)?;
            self.totals.leaves += 1;
        }
        Ok(())
    }

    /// A rooted multipoint session (docs/rmp.md): a root on one host invites 1–3 leaves, each
    /// listening for the invitation; the root sends 1–4 messages that every leaf receives; then
    /// everything closes, the root or the leaves first.
    fn rmp(&mut self, env: &mut dyn Env) -> Result<(), Fail> {
        let n = self.hosts.len();
        let root_host = self.draw.below(n as u64) as usize;
        let leaves: Vec<usize> = (0..n)
            .filter(|&h| h != root_host)
            .take(self.draw.within(1, (n - 1).min(3) as u64) as usize)
            .collect();
        let (rw, ra) = &self.hosts[root_host];
        let root = rmp_socket(rw, WSA_FLAG_MULTIPOINT_C_ROOT | WSA_FLAG_MULTIPOINT_D_ROOT)?;
        ctx(
            rw.bind(
                root,
                Some(&sa(SocketAddrV4::new(*ra, RMP_ROOT_PORT))),
                SOCKADDR_IN_LEN,
            ),
            "bind(c_root)",
        )?;
        let _ = nonblocking(rw, root);
        let mut sessions = Vec::new(); // (leaf host, listener, accepted, root's c_leaf)
        for &h in &leaves {
            let (lw, la) = &self.hosts[h];
            let lst = rmp_socket(lw, WSA_FLAG_MULTIPOINT_C_LEAF | WSA_FLAG_MULTIPOINT_D_LEAF)?;
            let at = SocketAddrV4::new(*la, RMP_LEAF_PORT);
            ctx(lw.bind(lst, Some(&sa(at)), SOCKADDR_IN_LEN), "bind(c_leaf)")?;
            ctx(lw.listen(lst, 4), "listen(c_leaf)")?;
            let _ = nonblocking(lw, lst);
            let c_leaf = ctx(
                rw.WSAJoinLeaf(
                    root,
                    Some(&sa(at)),
                    SOCKADDR_IN_LEN,
                    None,
                    None,
                    None,
                    None,
                    JL_BOTH,
                ),
                "WSAJoinLeaf",
            )?;
            let ev = ctx(rw.WSACreateEvent(), "WSACreateEvent")?;
            ctx(rw.WSAEventSelect(c_leaf, ev, FD_CONNECT), "WSAEventSelect")?;
            // The root's FD_CONNECT (0 or the join's error) and the leaf's accepted socket.
            let mut connected = None;
            let mut acc = None;
            env.run_until(STEP_LIMIT, &mut || {
                let mut ne = WSANETWORKEVENTS::default();
                if connected.is_none()
                    && rw.WSAEnumNetworkEvents(c_leaf, ev, Some(&mut ne)).is_ok()
                    && ne.lNetworkEvents & FD_CONNECT != 0
                {
                    connected = Some(ne.iErrorCode[FD_CONNECT_BIT]);
                }
                if acc.is_none() {
                    acc = match lw.accept(lst, None, None) {
                        Err(WsaError::WSAEWOULDBLOCK) => None,
                        r => Some(r),
                    };
                }
                connected.is_some_and(|e| e != 0) || (connected.is_some() && acc.is_some())
            });
            let _ = rw.WSACloseEvent(ev);
            match (connected, acc) {
                (Some(0), Some(Ok(acc))) => {
                    let _ = nonblocking(lw, acc);
                    self.totals.rmp_leaves += 1;
                    sessions.push((h, lst, acc, c_leaf));
                }
                // On a lossy switch an invitation may still fail (its join timeout, or a
                // lost FIN/RST racing the close); a lossy run counts these.
                (Some(e), acc) if e != 0 && self.shape.lossy => {
                    self.totals.rmp_invites_failed += 1;
                    if let Some(Ok(a)) = acc {
                        close(lw, a)?;
                    }
                    close(rw, c_leaf)?;
                    close(lw, lst)?;
                }
                other => return Err(format!("invitation of host {h}: {other:?}")),
            }
        }
        let messages = self.draw.within(1, 4) as usize;
        let mut buf = vec![0u8; 4096];
        for m in 0..messages {
            if sessions.is_empty() {
                break;
            }
            let msg = vec![m as u8; 64 + 100 * m];
            let k = done(env, "send(root)", || rw.send(root, &msg, 0))?;
            if k as usize != msg.len() {
                return Err(format!("root sent {k} of {}", msg.len()));
            }
            for &(h, _, acc, _) in &sessions {
                let lw = &self.hosts[h].0;
                let k = done(env, "recv(leaf)", || lw.recv(acc, &mut buf, 0))?;
                if buf[..k as usize] != msg[..] {
                    return Err(format!("leaf on host {h}: message {m} wrong ({k} bytes)"));
                }
                self.totals.rmp_messages += 1;
            }
        }
        let leaves_first = self.draw.below(2) == 0;
        if !leaves_first {
            close(rw, root)?;
        }
        for &(h, lst, acc, c_leaf) in &sessions {
            let lw = &self.hosts[h].0;
            close(lw, acc)?;
            close(lw, lst)?;
            close(rw, c_leaf)?;
        }
        if leaves_first {
            close(rw, root)?;
        }
        self.totals.rmp_sessions += 1;
        Ok(())
    }
}

fn rmp_socket(ws: &Winsock, flags: u32) -> Result<SOCKET, Fail> {
    ctx(
        ws.WSASocket(
            AF_INET,
            SOCK_RDM,
            IPPROTO_RMP,
            None,
            0,
            flags | WSA_FLAG_OVERLAPPED,
        ),
        "WSASocket(RMP)",
    )
}

/// The live-heap reference: the highest figure at a quiet moment (every cycle's sockets gone,
/// the counts those of the start) in the cycles just after the warm-up. The heap moves a little
/// with what happened to be in flight (buffer pools, queue capacities), so the reference is a
/// maximum over several quiet moments, not one sample.
#[derive(Debug, Clone)]
pub(crate) struct Reference {
    start: Figures,
    warmup: u64,
    window: u64,
    /// The reference so far (`None` before the warm-up ends).
    pub(crate) live: Option<i64>,
    /// Quiet moments it was taken from.
    pub(crate) samples: u64,
    /// (cycle, live heap) at the quiet moments of the last `window` cycles.
    recent: std::collections::VecDeque<(u64, i64)>,
}

impl Reference {
    /// Quiet moments of cycles `warmup + 1 ..= warmup + window` count, against `start`.
    pub(crate) fn new(start: Figures, warmup: u64, window: u64) -> Reference {
        Reference {
            start,
            warmup,
            window,
            live: None,
            samples: 0,
            recent: std::collections::VecDeque::new(),
        }
    }

    /// Whether cycle `cycle` is the last of the warm-up (the caller then settles and
    /// [`sample`](Self::sample)s, so there is at least one quiet moment).
    pub(crate) fn warmup_ends(&self, cycle: u64) -> bool {
        cycle == self.warmup
    }

    /// Notes the figures `f` at the end of cycle `cycle`.
    pub(crate) fn sample(&mut self, cycle: u64, f: &Figures) {
        while self
            .recent
            .front()
            .is_some_and(|&(c, _)| c + self.window <= cycle)
        {
            self.recent.pop_front();
        }
        if cycle < self.warmup || f.counts() != self.start.counts() {
            return;
        }
        if cycle <= self.warmup + self.window {
            self.live = Some(self.live.map_or(f.live, |l| l.max(f.live)));
            self.samples += 1;
        }
        self.recent.push_back((cycle, f.live));
    }

    /// The heap figure the end is judged by: the lowest of `end` and the quiet moments of the
    /// last `window` cycles — what the heap comes back to, not where one sample happened to
    /// catch it (a leak raises the floor as much as the peaks).
    pub(crate) fn end_live(&self, end: &Figures) -> i64 {
        self.recent.iter().map(|&(_, l)| l).fold(end.live, i64::min)
    }
}

/// Whether the run stayed flat: `end` (everything closed and settled) has exactly the counts of
/// `start` (before the first cycle), no engine gave up on a close, and the live heap at the end
/// ([`Reference::end_live`]) exceeds the reference by at most `slack` bytes.
pub(crate) fn judge(
    start: &Figures,
    reference: &Reference,
    end: &Figures,
    slack: i64,
) -> Result<(), Fail> {
    if end.counts() != start.counts() {
        return Err(format!(
            "counts did not come back: start ({start}), end ({end})"
        ));
    }
    if end.expired != start.expired {
        return Err(format!(
            "{} closed sockets never finished and were given up",
            end.expired - start.expired
        ));
    }
    let Some(warm) = reference.live else {
        return Err("no reference: the run ended before its warm-up".into());
    };
    let growth = reference.end_live(end) - warm;
    if growth > slack {
        return Err(format!(
            "live heap grew by {growth} bytes over the reference (slack {slack}): end ({end})"
        ));
    }
    Ok(())
}
