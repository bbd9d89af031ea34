//! The LAN a fuzz run attacks: three ws2 stacks on one `VirtualSwitch` and virtual time
//! (`ws2_tests::sim`), with the fuzz frames injected into host A's link only.
//!
//! - **A** (10.0.0.1) is the fuzzed stack. Its applications: a TCP listener with one accepted
//!   connection from B (the *target* connection, which frames spoofed from B hit, sequence
//!   numbers taken from what A last sent on it), a reference connection from C, a UDP socket
//!   connected to a closed port of B (so ICMP errors have a datagram to quote), a UDP socket
//!   that joined a multicast group, and for the RMP target a c_root with C as a leaf and B
//!   speaking raw RMP over TCP.
//! - **B** (10.0.0.2) is the peer whose address the fuzzer may forge.
//! - **C** (10.0.0.3) holds the *reference* connection. The fuzzer can never name it: every
//!   occurrence of C's address in a fuzz frame is rewritten before A sees the frame, so what
//!   reaches A can neither forge C nor quote C's datagrams, and must leave A ↔ C working.
//!
//! The attacker's frames carry their own Ethernet source (never B's or C's: the switch would
//! learn it) and go straight into A's receive queue, so B and C never see them.

use std::collections::VecDeque;
use std::io;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::os::fd::{AsRawFd, RawFd};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use ws2_stack::winsock::*;
use ws2_stack::WsaError;
use ws2_tap::{Impairments, Link, LinkStats, SwitchPort};
use ws2_tests::sim::Sim;
use ws2_tests::{at, bind, config, connect, new_socket, set_nonblocking, try_nonblocking};

use crate::packet::{ETH_IPV4, ETH_LEN, MAX_FRAME};

/// The fuzzed host.
pub const A: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
/// The peer whose address the fuzzer may forge.
pub const B: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
/// The reference peer, never named by a fuzz frame.
pub const C: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 3);
/// What an occurrence of C's address in a fuzz frame becomes: a host nobody is.
pub const NOT_C: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 99);
/// The attacker's own address.
pub const ATTACKER: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 66);
/// The attacker's Ethernet address (the source of every fuzz frame).
pub const ATTACKER_MAC: [u8; 6] = [0x02, 0x66, 0x66, 0x66, 0x66, 0x66];
/// The multicast group A's UDP socket joined.
pub const GROUP: Ipv4Addr = Ipv4Addr::new(239, 1, 2, 3);

/// A's listener for B (the target connection) and for SYNs from anywhere.
pub const TARGET_PORT: u16 = 5001;
/// A's listener for C (the reference connection).
pub const REF_PORT: u16 = 5002;
/// A's UDP socket, connected to B's closed [`B_CLOSED_PORT`].
pub const UDP_PORT: u16 = 5003;
/// A's c_root for the RMP target.
pub const RMP_PORT: u16 = 5004;
/// The port of A's multicast socket.
pub const MCAST_PORT: u16 = 5005;
/// A UDP port nothing on B listens on.
pub const B_CLOSED_PORT: u16 = 9;

/// The Ethernet address a ws2 stack derives from its address.
pub fn mac(ip: Ipv4Addr) -> [u8; 6] {
    ws2_tests::mac_of(ip)
}

/// What A last sent on the target connection (RFC 9293 §3.3.1 send and receive sequence
/// variables, as seen on the wire).
#[derive(Clone, Copy, Debug, Default)]
pub struct SeqView {
    /// B's port of the target connection.
    pub b_port: u16,
    /// The sequence number after A's last segment (A's SND.NXT).
    pub a_next: u32,
    /// A's last acknowledgment (A's RCV.NXT).
    pub a_ack: u32,
}

/// What the harness and A's link share: frames to inject, and what A sent.
#[derive(Debug, Default)]
pub struct Shared {
    queue: VecDeque<Vec<u8>>,
    last_now: Option<Instant>,
    /// The target connection as A's segments show it, once A has sent on it.
    pub seq: Option<SeqView>,
    /// The last few IPv4 datagrams A sent (for ICMP errors to quote), newest last.
    pub sent: VecDeque<Vec<u8>>,
}

/// How many of A's datagrams [`Shared::sent`] keeps.
const KEEP_SENT: usize = 8;

fn lock(s: &Mutex<Shared>) -> MutexGuard<'_, Shared> {
    s.lock().unwrap_or_else(|e| e.into_inner())
}

/// A's link: frames the harness injects first, then the switch port; every frame A sends is
/// looked at on its way to the switch.
struct FuzzLink {
    port: SwitchPort,
    shared: Arc<Mutex<Shared>>,
}

impl std::fmt::Debug for FuzzLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FuzzLink")
            .field("port", &self.port)
            .finish_non_exhaustive()
    }
}

impl AsRawFd for FuzzLink {
    fn as_raw_fd(&self) -> RawFd {
        self.port.as_raw_fd()
    }
}

impl Link for FuzzLink {
    fn recv(&mut self, buf: &mut [u8], now: Instant) -> io::Result<Option<usize>> {
        let injected = {
            let mut s = lock(&self.shared);
            s.last_now = Some(now);
            s.queue.pop_front()
        };
        if let Some(f) = injected {
            let n = f.len().min(buf.len());
            buf[..n].copy_from_slice(&f[..n]);
            return Ok(Some(n));
        }
        self.port.recv(buf, now)
    }

    fn send(&mut self, frame: &[u8], now: Instant) -> io::Result<()> {
        observe(&mut lock(&self.shared), frame);
        self.port.send(frame, now)
    }

    fn poll_at(&self) -> Option<Instant> {
        let s = lock(&self.shared);
        let inner = self.port.poll_at();
        match (s.queue.is_empty(), s.last_now) {
            (false, Some(now)) => Some(inner.map_or(now, |t| t.min(now))),
            _ => inner,
        }
    }

    fn stats(&self) -> LinkStats {
        self.port.stats()
    }
}

/// Records A's outgoing IPv4 datagrams and its segments on the target connection.
fn observe(s: &mut Shared, frame: &[u8]) {
    if frame.len() < ETH_LEN + 20 || u16::from_be_bytes([frame[12], frame[13]]) != ETH_IPV4 {
        return;
    }
    let ip = &frame[ETH_LEN..];
    let hl = usize::from(ip[0] & 0x0f) * 4;
    let total = usize::from(u16::from_be_bytes([ip[2], ip[3]])).min(ip.len());
    if hl < 20 || total < hl {
        return;
    }
    if s.sent.len() == KEEP_SENT {
        s.sent.pop_front();
    }
    s.sent.push_back(ip[..total].to_vec());
    let (src, dst) = (&ip[12..16], &ip[16..20]);
    if ip[9] != 6 || src != A.octets() || dst != B.octets() || total < hl + 20 {
        return;
    }
    let t = &ip[hl..total];
    if u16::from_be_bytes([t[0], t[1]]) != TARGET_PORT {
        return;
    }
    let seq = u32::from_be_bytes([t[4], t[5], t[6], t[7]]);
    let ack = u32::from_be_bytes([t[8], t[9], t[10], t[11]]);
    let thl = usize::from(t[12] >> 4) * 4;
    let flags = t[13];
    let len = t.len().saturating_sub(thl) as u32
        + u32::from(flags & crate::packet::SYN != 0)
        + u32::from(flags & crate::packet::FIN != 0);
    s.seq = Some(SeqView {
        b_port: u16::from_be_bytes([t[2], t[3]]),
        a_next: seq.wrapping_add(len),
        a_ack: ack,
    });
}

/// Makes a fuzz frame safe to deliver without false alarms: the attacker's Ethernet source,
/// no mention of C's address anywhere past the Ethernet header, at most [`MAX_FRAME`] bytes.
pub fn sanitise(frame: &mut Vec<u8>) {
    frame.truncate(MAX_FRAME);
    if frame.len() < ETH_LEN {
        frame.resize(ETH_LEN, 0);
    }
    frame[6..12].copy_from_slice(&ATTACKER_MAC);
    let c = C.octets();
    let mut i = ETH_LEN;
    while i + 4 <= frame.len() {
        if frame[i..i + 4] == c {
            frame[i + 3] = NOT_C.octets()[3];
        }
        i += 1;
    }
}

/// The RMP part of the LAN: A's c_root, C's leaf socket and B's raw TCP connection to the root.
#[derive(Debug)]
pub struct RmpSide {
    /// A's c_root.
    pub root: SOCKET,
    /// C's leaf socket in the session.
    pub c_leaf: SOCKET,
    /// B's plain TCP connection to A's c_root port, over which the fuzzer speaks RMP.
    pub b_raw: SOCKET,
    /// Bytes for `b_raw` not yet taken by B's stack.
    pub b_out: Vec<u8>,
    /// Sockets the root accepted (leaf requests), kept open.
    pub accepted: Vec<SOCKET>,
}

/// The whole LAN and its sockets.
pub struct Lan {
    pub sim: Sim,
    pub a: Winsock,
    pub b: Winsock,
    pub c: Winsock,
    pub shared: Arc<Mutex<Shared>>,
    /// A's listener on [`TARGET_PORT`].
    pub a_listen: SOCKET,
    /// A's end of the target connection.
    pub a_target: SOCKET,
    /// B's end of the target connection.
    pub b_target: SOCKET,
    /// A's end of the reference connection.
    pub a_ref: SOCKET,
    /// C's end of the reference connection.
    pub c_ref: SOCKET,
    /// A's UDP socket connected to B's closed port.
    pub a_udp: SOCKET,
    /// A's UDP socket in [`GROUP`].
    pub a_mcast: SOCKET,
    /// Connections A's listener accepted during the run, kept open.
    pub a_accepted: Vec<SOCKET>,
    pub rmp: Option<RmpSide>,
}

impl std::fmt::Debug for Lan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lan")
            .field("sim", &self.sim)
            .finish_non_exhaustive()
    }
}

/// How long a setup step may take in virtual time.
const SETUP: Duration = Duration::from_secs(10);
/// The most connections A keeps from its listener (then it closes what it accepts).
const KEEP_ACCEPTED: usize = 32;

/// A nonblocking listener on `ws` at `addr`.
fn listener(ws: &Winsock, addr: SocketAddrV4) -> SOCKET {
    let l = new_socket(ws, SOCK_STREAM);
    bind(ws, l, addr).expect("bind");
    ws.listen(l, 16).expect("listen");
    set_nonblocking(ws, l, true);
    l
}

/// Connects `ws` to `to` (where `l` on `server` listens) and accepts: (client, accepted).
fn pair(
    sim: &mut Sim,
    ws: &Winsock,
    server: &Winsock,
    l: SOCKET,
    to: SocketAddrV4,
) -> (SOCKET, SOCKET) {
    let s = new_socket(ws, SOCK_STREAM);
    set_nonblocking(ws, s, true);
    assert_eq!(connect(ws, s, to), Err(WsaError::WSAEWOULDBLOCK));
    assert!(
        sim.run_until(SETUP, |_| ws2_tests::poll_one(ws, s, 0).1),
        "setup: the connect to {to} completes"
    );
    let mut got = None;
    assert!(
        sim.run_until(SETUP, |_| {
            got = server.accept(l, None, None).ok();
            got.is_some()
        }),
        "setup: the connection to {to} is accepted"
    );
    let t = got.expect("accepted");
    set_nonblocking(server, t, true);
    (s, t)
}

/// `WSASocket(AF_INET, SOCK_RDM, protocol, …, flags | WSA_FLAG_OVERLAPPED)`.
fn rmp_socket(ws: &Winsock, protocol: i32, flags: u32) -> SOCKET {
    ws.WSASocket(
        AF_INET,
        SOCK_RDM,
        protocol,
        None,
        0,
        flags | WSA_FLAG_OVERLAPPED,
    )
    .expect("WSASocket(RMP)")
}

impl Lan {
    /// Builds the LAN with its connections established; `rmp_protocol` adds the RMP session
    /// on that catalog entry (`IPPROTO_RMP` or `IPPROTO_RMP_RELAY`).
    pub fn new(seed: u64, rmp_protocol: Option<i32>) -> Lan {
        let mut sim = Sim::new(seed);
        let shared = Arc::new(Mutex::new(Shared::default()));
        let a_stack = {
            let shared = shared.clone();
            sim.host_on(config(A), Impairments::default(), move |port| {
                Box::new(FuzzLink { port, shared }) as Box<dyn Link>
            })
        };
        let a = sim.winsock(&a_stack);
        let b_stack = sim.host(config(B));
        let b = sim.winsock(&b_stack);
        let c_stack = sim.host(config(C));
        let c = sim.winsock(&c_stack);

        let a_listen = listener(&a, at(A, TARGET_PORT));
        let (b_target, a_target) = pair(&mut sim, &b, &a, a_listen, at(A, TARGET_PORT));
        let l_ref = listener(&a, at(A, REF_PORT));
        let (c_ref, a_ref) = pair(&mut sim, &c, &a, l_ref, at(A, REF_PORT));
        a.closesocket(l_ref).expect("close the reference listener");

        let a_udp = new_socket(&a, SOCK_DGRAM);
        bind(&a, a_udp, at(A, UDP_PORT)).expect("bind udp");
        connect(&a, a_udp, at(B, B_CLOSED_PORT)).expect("connect udp");
        try_nonblocking(&a, a_udp);
        let a_mcast = new_socket(&a, SOCK_DGRAM);
        bind(&a, a_mcast, at(Ipv4Addr::UNSPECIFIED, MCAST_PORT)).expect("bind mcast");
        let mreq = IP_MREQ {
            imr_multiaddr: GROUP.octets(),
            imr_interface: Ipv4Addr::UNSPECIFIED.octets(),
        };
        let bytes = mreq.as_bytes();
        a.setsockopt(
            a_mcast,
            IPPROTO_IP,
            IP_ADD_MEMBERSHIP,
            Some(&bytes[..]),
            bytes.len() as i32,
        )
        .expect("IP_ADD_MEMBERSHIP");
        try_nonblocking(&a, a_mcast);

        let rmp = rmp_protocol.map(|p| rmp_session(&mut sim, &a, &b, &c, p));
        let mut lan = Lan {
            sim,
            a,
            b,
            c,
            shared,
            a_listen,
            a_target,
            b_target,
            a_ref,
            c_ref,
            a_udp,
            a_mcast,
            a_accepted: Vec::new(),
            rmp,
        };
        // A speaks on the target connection and sends a datagram, so the fuzzer has sequence
        // numbers and a datagram of A's to work from.
        lan.a_sends_target(16, false);
        let _ = lan.a.send(lan.a_udp, b"ws2-fuzz udp", 0);
        lan.sim.run_for(Duration::from_millis(50));
        lan.apps();
        lan
    }

    /// The shared state (injection queue, what A sent).
    pub fn shared(&self) -> MutexGuard<'_, Shared> {
        lock(&self.shared)
    }

    /// Delivers `frame` to A (after [`sanitise`]) and lets the LAN settle at this instant.
    pub fn inject(&mut self, mut frame: Vec<u8>) {
        sanitise(&mut frame);
        self.shared().queue.push_back(frame);
        self.sim.run_for(Duration::ZERO);
        // Frames the driver has not read yet (it reads a batch per step) are read now.
        let mut rounds = 0;
        while !self.shared().queue.is_empty() && rounds < 64 {
            self.sim.run_for(Duration::from_micros(1));
            rounds += 1;
        }
        self.shared().queue.clear();
    }

    /// What every application on the LAN does between fuzz frames: A reads all its sockets
    /// (urgent data too) and accepts on its listener, B reads the target connection, the RMP
    /// root accepts and reads, B pushes pending raw RMP bytes.
    pub fn apps(&mut self) {
        let mut buf = vec![0u8; 70_000];
        let a = &self.a;
        for _ in 0..8 {
            match a.recv(self.a_target, &mut buf, 0) {
                Ok(n) if n > 0 => continue,
                _ => break,
            }
        }
        let _ = a.recv(self.a_target, &mut buf[..16], MSG_OOB);
        for s in [self.a_udp, self.a_mcast] {
            for _ in 0..16 {
                if a.recv(s, &mut buf, 0).is_err() {
                    break;
                }
            }
        }
        while let Ok(s) = a.accept(self.a_listen, None, None) {
            if self.a_accepted.len() < KEEP_ACCEPTED {
                set_nonblocking(a, s, true);
                self.a_accepted.push(s);
            } else {
                let _ = a.closesocket(s);
            }
        }
        for &s in &self.a_accepted {
            let _ = a.recv(s, &mut buf, 0);
        }
        for _ in 0..8 {
            if !matches!(self.b.recv(self.b_target, &mut buf, 0), Ok(n) if n > 0) {
                break;
            }
        }
        if let Some(r) = &mut self.rmp {
            while let Ok(s) = a.accept(r.root, None, None) {
                if r.accepted.len() < KEEP_ACCEPTED {
                    try_nonblocking(a, s);
                    r.accepted.push(s);
                } else {
                    let _ = a.closesocket(s);
                }
            }
            for _ in 0..16 {
                if a.recv(r.root, &mut buf, 0).is_err() {
                    break;
                }
            }
            if !r.b_out.is_empty() {
                if let Ok(n) = self.b.send(r.b_raw, &r.b_out, 0) {
                    r.b_out.drain(..n as usize);
                }
            }
            let _ = self.b.recv(r.b_raw, &mut buf, 0);
            let _ = self.c.recv(r.c_leaf, &mut buf, 0);
        }
    }

    /// A sends `len` bytes on the target connection (as urgent data if `oob`).
    pub fn a_sends_target(&mut self, len: usize, oob: bool) {
        let data = vec![0x5a; len];
        let _ = self
            .a
            .send(self.a_target, &data, if oob { MSG_OOB } else { 0 });
    }

    /// Runs the LAN for `d` of virtual time, the applications looking in after it.
    pub fn wait(&mut self, d: Duration) {
        self.sim.run_for(d);
        self.apps();
    }

    /// The reference connection still moves data both ways within `limit` of virtual time.
    pub fn reference_is_alive(&mut self, limit: Duration) -> Result<(), String> {
        let data: Vec<u8> = (0..8192u32).map(|i| (i * 7 + 3) as u8).collect();
        let c_got = transfer(
            &mut self.sim,
            (&self.a, self.a_ref),
            (&self.c, self.c_ref),
            &data,
            limit,
        );
        if c_got != data {
            return Err(format!(
                "A → C moved {} of {} bytes in {limit:?} (or changed them)",
                c_got.len(),
                data.len()
            ));
        }
        let a_got = transfer(
            &mut self.sim,
            (&self.c, self.c_ref),
            (&self.a, self.a_ref),
            &data,
            limit,
        );
        if a_got != data {
            return Err(format!(
                "C → A moved {} of {} bytes in {limit:?} (or changed them)",
                a_got.len(),
                data.len()
            ));
        }
        if let Some(r) = &self.rmp {
            let (root, c_leaf) = (r.root, r.c_leaf);
            let msg = b"ws2-fuzz root to C";
            if !rmp_delivers(
                &mut self.sim,
                (&self.a, root),
                (&self.c, c_leaf),
                msg,
                None,
                limit,
            ) {
                return Err(format!(
                    "the root's message did not reach leaf C in {limit:?}"
                ));
            }
            let msg = b"ws2-fuzz C to the root";
            if !rmp_delivers(
                &mut self.sim,
                (&self.c, c_leaf),
                (&self.a, root),
                msg,
                Some(C),
                limit,
            ) {
                return Err(format!(
                    "leaf C's message did not reach the root in {limit:?}"
                ));
            }
        }
        Ok(())
    }
}

/// Sends `data` from `from` to `to` (non-blocking stream sockets), reading as it goes;
/// returns what arrived within `limit`.
fn transfer(
    sim: &mut Sim,
    (wa, sa): (&Winsock, SOCKET),
    (wb, sb): (&Winsock, SOCKET),
    data: &[u8],
    limit: Duration,
) -> Vec<u8> {
    let (mut sent, mut got) = (0, Vec::new());
    let mut buf = vec![0u8; 16 * 1024];
    sim.run_until(limit, |_| {
        while sent < data.len() {
            match wa.send(sa, &data[sent..], 0) {
                Ok(n) if n > 0 => sent += n as usize,
                _ => break,
            }
        }
        while got.len() < data.len() {
            match wb.recv(sb, &mut buf, 0) {
                Ok(n) if n > 0 => got.extend_from_slice(&buf[..n as usize]),
                _ => break,
            }
        }
        got.len() >= data.len()
    });
    got
}

/// Sends the RMP message `msg` on `from` until taken and runs until `to` reads it (skipping
/// other messages; from `sender` if given) or `limit` passes.
fn rmp_delivers(
    sim: &mut Sim,
    (wa, sa): (&Winsock, SOCKET),
    (wb, sb): (&Winsock, SOCKET),
    msg: &[u8],
    sender: Option<Ipv4Addr>,
    limit: Duration,
) -> bool {
    let mut sent = false;
    let mut buf = vec![0u8; 70_000];
    sim.run_until(limit, |_| {
        if !sent {
            sent = wa.send(sa, msg, 0).is_ok();
        }
        while let Ok((n, from)) = ws2_tests::recvfrom(wb, sb, &mut buf, 0) {
            if &buf[..n as usize] == msg && sender.is_none_or(|ip| *from.ip() == ip) {
                return true;
            }
        }
        false
    })
}

/// A's c_root at [`RMP_PORT`] with C joined as a leaf, and B's raw TCP connection to it.
fn rmp_session(sim: &mut Sim, a: &Winsock, b: &Winsock, c: &Winsock, protocol: i32) -> RmpSide {
    // The non-rooted entry's root is d_leaf (docs/rmp.md §1).
    let d_root = if protocol == IPPROTO_RMP_RELAY {
        WSA_FLAG_MULTIPOINT_D_LEAF
    } else {
        WSA_FLAG_MULTIPOINT_D_ROOT
    };
    let root = rmp_socket(a, protocol, WSA_FLAG_MULTIPOINT_C_ROOT | d_root);
    bind(a, root, at(A, RMP_PORT)).expect("bind c_root");
    a.listen(root, 16).expect("listen on c_root");
    try_nonblocking(a, root);
    let leaf = rmp_socket(
        c,
        protocol,
        WSA_FLAG_MULTIPOINT_C_LEAF | WSA_FLAG_MULTIPOINT_D_LEAF,
    );
    let ev = c.WSACreateEvent().expect("WSACreateEvent");
    c.WSAEventSelect(leaf, ev, FD_CONNECT)
        .expect("WSAEventSelect");
    assert_eq!(
        ws2_tests::join_leaf_to(c, leaf, at(A, RMP_PORT), JL_BOTH),
        Ok(leaf),
        "setup: C's join starts"
    );
    let mut accepted = Vec::new();
    assert!(
        sim.run_until(SETUP, |_| {
            if let Ok(s) = a.accept(root, None, None) {
                accepted.push(s);
            }
            !accepted.is_empty()
        }),
        "setup: the root accepts C"
    );
    let mut connected = false;
    assert!(
        sim.run_until(SETUP, |_| {
            connected |= ws2_tests::network_events(c, leaf, ev).lNetworkEvents & FD_CONNECT != 0;
            connected
        }),
        "setup: C's join completes"
    );
    let b_raw = new_socket(b, SOCK_STREAM);
    set_nonblocking(b, b_raw, true);
    assert_eq!(
        connect(b, b_raw, at(A, RMP_PORT)),
        Err(WsaError::WSAEWOULDBLOCK)
    );
    assert!(
        sim.run_until(SETUP, |_| ws2_tests::poll_one(b, b_raw, 0).1),
        "setup: B's raw connection to the root completes"
    );
    RmpSide {
        root,
        c_leaf: leaf,
        b_raw,
        b_out: Vec::new(),
        accepted,
    }
}
