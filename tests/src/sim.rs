//! Virtual time for in-process networks: several stacks on one [`VirtualSwitch`], each moved by
//! its [`Driver`] on one shared [`VirtualClock`] that jumps to the earliest deadline.
//!
//! Shaped like quinn-proto's test `Pair` and smoltcp's `tests/netsim.rs`: no threads, no sleeps,
//! no wall clock, so an hour of shaped traffic or IGMP timers runs in a moment and the same seed
//! replays the same run frame for frame. A run that panics prints its seed; set
//! `WS2_SIM_SEED` to that number to replay it.
//!
//! What holds the simulation to the seed: the switch's impairments are seeded from it, every
//! stack's `StackConfig::seed` is derived from it (ephemeral ports, TCP initial sequence numbers,
//! IGMP delays), and drivers run in the order the hosts were added.
//!
//! Blocking Winsock calls cannot complete here (nothing moves while the test's thread waits):
//! use non-blocking sockets and [`Sim::run_until`]. Tests of blocking calls stay on the real
//! clock.

use std::os::fd::{AsRawFd, RawFd};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use std::{fmt, io};

use ws2_stack::winsock::*;
use ws2_stack::{Clock, Driver, Stack, StackConfig, VirtualClock};
use ws2_tap::{Impairments, Link, LinkStats, PcapTee, SwitchPort, SwitchStats, VirtualSwitch};

/// Rounds of driver steps at one instant before the simulation calls it a livelock.
const MAX_ROUNDS_PER_INSTANT: usize = 10_000;

/// One host: its stack handle and the driver the simulation steps.
struct Host {
    stack: Stack,
    driver: Driver,
    /// When the driver last asked to run again.
    next: Option<Instant>,
}

/// A LAN of stacks on virtual time.
pub struct Sim {
    seed: u64,
    clock: VirtualClock,
    switch: VirtualSwitch,
    hosts: Vec<Host>,
}

impl std::fmt::Debug for Sim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sim")
            .field("seed", &self.seed)
            .field("elapsed", &self.clock.elapsed())
            .field("hosts", &self.hosts.len())
            .finish()
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "virtual-time run failed with seed {0}: replay it with WS2_SIM_SEED={0}",
                self.seed
            );
        }
    }
}

/// The seed of host `index` from the simulation's seed.
fn host_seed(seed: u64, index: usize) -> u64 {
    ws2_stack::split_seed(seed, index as u64)
}

impl Sim {
    /// An empty LAN on a clock at zero, with `seed` — or the seed `WS2_SIM_SEED` names, to
    /// replay a failed run.
    pub fn new(seed: u64) -> Sim {
        let seed = std::env::var("WS2_SIM_SEED")
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(seed);
        Sim {
            seed,
            clock: VirtualClock::new(),
            switch: VirtualSwitch::new(seed),
            hosts: Vec::new(),
        }
    }

    /// The seed this run uses.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// The shared clock.
    pub fn clock(&self) -> &VirtualClock {
        &self.clock
    }

    /// Virtual time since the start.
    pub fn elapsed(&self) -> Duration {
        self.clock.elapsed()
    }

    /// The current virtual instant (what a bare [`port`](Self::port) reads and writes at).
    pub fn now(&self) -> Instant {
        self.clock.now()
    }

    /// The switch's counters.
    pub fn switch_stats(&self) -> SwitchStats {
        self.switch.stats()
    }

    /// Adds a host with `config` on a clean port; its seed is derived from the simulation's.
    pub fn host(&mut self, config: StackConfig) -> Stack {
        self.host_with(config, Impairments::default(), None)
    }

    /// Adds a host whose arriving frames suffer `impairments`, recording its link to `pcap`
    /// (stamped with virtual time, so the same run writes the same file).
    pub fn host_with(
        &mut self,
        config: StackConfig,
        impairments: Impairments,
        pcap: Option<&Path>,
    ) -> Stack {
        let origin = self.clock.origin();
        self.host_on(config, impairments, |port| match pcap {
            Some(path) => {
                Box::new(PcapTee::with_time_origin(port, path, origin).expect("pcap file"))
            }
            None => Box::new(port),
        })
    }

    /// A bare port on the LAN with no stack behind it, for a test that speaks on the wire
    /// itself, reading and writing at [`now`](Self::now) inside [`run_until`](Self::run_until).
    /// The simulation steps no driver for it and does not wake up for frames delayed on their
    /// way to it: give it no delaying impairments.
    pub fn port(&mut self) -> SwitchPort {
        self.switch.port()
    }

    /// Adds a host whose link records every frame its stack receives, stamped with the virtual
    /// instant the stack read it: traffic "measured by the receiver".
    pub fn host_recording(&mut self, config: StackConfig) -> (Stack, Recorder) {
        let log = Recorder::default();
        let wrap = {
            let log = log.clone();
            let origin = self.clock.origin();
            move |port| Box::new(RecordingLink { port, log, origin }) as Box<dyn Link>
        };
        (self.host_on(config, Impairments::default(), wrap), log)
    }

    /// Adds a host on a switch port with `impairments`, wrapped by `wrap` into its link.
    pub fn host_on(
        &mut self,
        mut config: StackConfig,
        impairments: Impairments,
        wrap: impl FnOnce(SwitchPort) -> Box<dyn Link>,
    ) -> Stack {
        config.seed = Some(host_seed(self.seed, self.hosts.len()));
        let link = wrap(self.switch.port_with(impairments));
        let clock: Arc<dyn Clock> = Arc::new(self.clock.clone());
        let (stack, driver) = Stack::with_driver(config, link, clock).expect("stack starts");
        self.hosts.push(Host {
            stack: stack.clone(),
            driver,
            next: Some(self.clock.now()),
        });
        stack
    }

    /// A started `Winsock` application (2.2) on `stack`.
    pub fn winsock(&mut self, stack: &Stack) -> Winsock {
        let ws = Winsock::new(stack.clone());
        let mut data = WSADATA::default();
        assert_eq!(ws.WSAStartup(MAKEWORD(2, 2), Some(&mut data)), 0);
        ws
    }

    /// Steps every driver at the current instant until none wants to run now and no frame
    /// moved on the switch in a whole round; returns whether any frame moved.
    fn settle(&mut self) -> bool {
        let now = self.clock.now();
        let start = self.switch.stats().forwarded;
        for _ in 0..MAX_ROUNDS_PER_INSTANT {
            let before = self.switch.stats().forwarded;
            let mut again = false;
            for h in &mut self.hosts {
                h.next = h.driver.step();
                again |= h.next.is_some_and(|t| t <= now);
            }
            let after = self.switch.stats().forwarded;
            if !again && after == before {
                return after != start;
            }
        }
        panic!(
            "livelock: the drivers kept asking to run at {:?} of virtual time",
            self.clock.elapsed()
        );
    }

    /// The earliest instant any driver wants to run at.
    fn next_deadline(&self) -> Option<Instant> {
        self.hosts.iter().filter_map(|h| h.next).min()
    }

    /// Runs the LAN for `d` of virtual time.
    pub fn run_for(&mut self, d: Duration) {
        let end = self.clock.now() + d;
        self.run_until_instant(end, |_| false);
    }

    /// Runs the LAN until `done` holds (checked after every instant the simulation stops at)
    /// or `limit` of virtual time has passed; returns whether `done` held.
    pub fn run_until(&mut self, limit: Duration, mut done: impl FnMut(&mut Sim) -> bool) -> bool {
        let end = self.clock.now() + limit;
        self.run_until_instant(end, &mut done)
    }

    fn run_until_instant(&mut self, end: Instant, mut done: impl FnMut(&mut Sim) -> bool) -> bool {
        let mut checks_now = 0;
        loop {
            self.settle();
            if done(self) {
                return true;
            }
            // What `done` did through the API (data queued or read, sockets opened) is work for
            // now; if frames moved, the applications get to look again before time moves (a
            // reader that emptied a window makes its peer send at once).
            let moved = self.settle();
            let now = self.clock.now();
            if now >= end {
                return false;
            }
            checks_now += 1;
            if moved && checks_now < MAX_ROUNDS_PER_INSTANT {
                continue;
            }
            checks_now = 0;
            let next = self.next_deadline().map_or(end, |t| t.clamp(now, end));
            // Time always moves: a driver asking for `now` again was just stepped.
            self.clock
                .advance_to(next.max(now + Duration::from_micros(1)).min(end));
        }
    }

    /// A connected, non-blocking TCP pair on virtual time: (client on `a`, the socket `b`
    /// accepted on `listen`), through a listener that stays open. Panics if the handshake does
    /// not finish within 10 s of virtual time.
    pub fn tcp_pair(
        &mut self,
        a: &Winsock,
        b: &Winsock,
        listen: std::net::SocketAddrV4,
    ) -> (SOCKET, SOCKET) {
        let l = crate::new_socket(b, SOCK_STREAM);
        crate::bind(b, l, listen).expect("bind");
        b.listen(l, 4).expect("listen");
        crate::set_nonblocking(b, l, true);
        let c = crate::new_socket(a, SOCK_STREAM);
        crate::set_nonblocking(a, c, true);
        assert_eq!(
            crate::connect(a, c, listen),
            Err(ws2_stack::WsaError::WSAEWOULDBLOCK)
        );
        assert!(
            self.run_until(Duration::from_secs(10), |_| crate::poll_one(a, c, 0).1),
            "the connect completes"
        );
        let mut server = None;
        assert!(
            self.run_until(Duration::from_secs(1), |_| {
                server = b.accept(l, None, None).ok();
                server.is_some()
            }),
            "the listener accepts"
        );
        let s = server.expect("accepted");
        crate::set_nonblocking(b, s, true);
        (c, s)
    }

    /// Sends `data` from `c` on `a` to `s` on `b` (non-blocking sockets), reading as it goes,
    /// for at most `limit` of virtual time; returns what `s` received.
    pub fn transfer(
        &mut self,
        (a, c): (&Winsock, SOCKET),
        (b, s): (&Winsock, SOCKET),
        data: &[u8],
        limit: Duration,
    ) -> Vec<u8> {
        let (mut sent, mut got) = (0, Vec::new());
        let mut buf = vec![0u8; 64 * 1024];
        self.run_until(limit, |_| {
            while sent < data.len() {
                match a.send(c, &data[sent..], 0) {
                    Ok(n) => sent += n as usize,
                    Err(_) => break,
                }
            }
            while let Ok(n) = b.recv(s, &mut buf, 0) {
                if n == 0 {
                    break;
                }
                got.extend_from_slice(&buf[..n as usize]);
            }
            got.len() >= data.len()
        });
        got
    }

    /// Ends every host gracefully (as dropping its last handle would) and runs until all have
    /// drained or `limit` passes; returns their reports in the order the hosts were added.
    pub fn shutdown_all(&mut self, limit: Duration) -> Vec<Option<ws2_stack::DrainReport>> {
        for h in &self.hosts {
            h.stack.begin_shutdown(limit);
        }
        self.run_until(limit + Duration::from_millis(1), |sim| {
            sim.hosts.iter().all(|h| h.driver.is_finished())
        });
        self.hosts.iter().map(|h| h.driver.report()).collect()
    }
}

/// One frame as a recording host's stack read it.
#[derive(Clone, Debug)]
pub struct Rec {
    /// Virtual time since the simulation's start.
    pub at: Duration,
    /// The frame's length without FCS, as the shaper counts it.
    pub len: usize,
    /// Its first bytes: the headers and the start of the payload.
    pub head: Vec<u8>,
}

/// How many bytes of each frame a [`Recorder`] keeps.
const RECORDED_HEAD: usize = 96;

/// The frames a recording host received, shared with the test.
#[derive(Clone, Debug, Default)]
pub struct Recorder(Arc<Mutex<Vec<Rec>>>);

impl Recorder {
    /// Every frame so far, in the order the stack read them.
    pub fn frames(&self) -> Vec<Rec> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// A switch port that records what its stack receives ([`Sim::host_recording`]).
struct RecordingLink {
    port: SwitchPort,
    log: Recorder,
    origin: Instant,
}

impl fmt::Debug for RecordingLink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RecordingLink")
            .field("port", &self.port)
            .finish_non_exhaustive()
    }
}

impl AsRawFd for RecordingLink {
    fn as_raw_fd(&self) -> RawFd {
        self.port.as_raw_fd()
    }
}

impl Link for RecordingLink {
    fn recv(&mut self, buf: &mut [u8], now: Instant) -> io::Result<Option<usize>> {
        let r = self.port.recv(buf, now)?;
        if let Some(n) = r {
            let rec = Rec {
                at: now.saturating_duration_since(self.origin),
                len: n,
                head: buf[..n.min(RECORDED_HEAD)].to_vec(),
            };
            self.log
                .0
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(rec);
        }
        Ok(r)
    }

    fn send(&mut self, frame: &[u8], now: Instant) -> io::Result<()> {
        self.port.send(frame, now)
    }

    fn poll_at(&self) -> Option<Instant> {
        self.port.poll_at()
    }

    fn stats(&self) -> LinkStats {
        self.port.stats()
    }
}
