//! Shared helpers for the workspace's integration tests (tier 2: in-process networks).
//!
//! Shaped like mio's `tests/util`: small functions that set up a network, make the common
//! Winsock calls and assert their outcome, so each test reads as the behaviour it checks.
//! Every network here is an in-process [`VirtualSwitch`]; nothing touches a real interface.
//!
//! Addresses: host A is `10.0.0.1/24`, host B `10.0.0.2/24` (see [`two_hosts`]).
#![allow(non_snake_case)]

use std::fmt::Debug;
use std::io;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use ws2_stack::winsock::*;
use ws2_stack::{Ipv4Cidr, Stack, StackConfig, WsaError};
use ws2_tap::{Impairments, Link, LinkStats, SwitchPort, VirtualSwitch};

/// Host A's address.
pub const A: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
/// Host B's address.
pub const B: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
/// An address on the LAN that no host answers.
pub const SILENT: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 77);

/// The Ethernet address a stack derives from its first IPv4 address (`02:57:32:` + low three
/// bytes), as `StackConfig::hardware_addr` does.
pub fn mac_of(ip: Ipv4Addr) -> [u8; 6] {
    let o = ip.octets();
    [0x02, 0x57, 0x32, o[1], o[2], o[3]]
}

/// How long a test host's graceful end may take when its last handle is dropped.
///
/// A test drops its hosts one after the other, so the last one's closes can no longer be
/// acknowledged by peers that have already ended: with the default 5 s, its drain runs to the
/// deadline (then resets) and every test with a connection open at its end took 5 s more. An
/// in-process LAN acknowledges within milliseconds; this leaves room for a loaded CI machine.
pub const TEST_DRAIN: Duration = Duration::from_secs(1);

/// The default configuration for `ip/24`, with the shorter [`TEST_DRAIN`].
pub fn config(ip: Ipv4Addr) -> StackConfig {
    let mut c = StackConfig::new(Ipv4Cidr::new(ip, 24).expect("prefix 24 is valid"));
    c.drain_timeout = TEST_DRAIN;
    c
}

/// A stack on a new port of `switch`.
pub fn stack_on(switch: &VirtualSwitch, config: StackConfig) -> Stack {
    Stack::new(config, switch.port()).expect("stack starts")
}

/// A stack on a new port of `switch` whose frames suffer `impairments` on delivery.
pub fn stack_with(switch: &VirtualSwitch, config: StackConfig, impairments: Impairments) -> Stack {
    Stack::new(config, switch.port_with(impairments)).expect("stack starts")
}

/// A `Winsock` application on `stack`, started with `WSAStartup(MAKEWORD(2,2))`.
pub fn started(stack: &Stack) -> Winsock {
    started_version(stack, MAKEWORD(2, 2))
}

/// A `Winsock` application on `stack`, started with the given version word.
pub fn started_version(stack: &Stack, version: u16) -> Winsock {
    let ws = Winsock::new(stack.clone());
    let mut data = WSADATA::default();
    assert_eq!(
        ws.WSAStartup(version, Some(&mut data)),
        0,
        "WSAStartup succeeds"
    );
    ws
}

/// Two hosts on one switch: A = 10.0.0.1/24, B = 10.0.0.2/24, each with a started `Winsock`.
pub fn two_hosts(seed: u64) -> (Winsock, Winsock) {
    let switch = VirtualSwitch::new(seed);
    two_hosts_on(&switch, config(A), config(B))
}

/// Two started hosts with the given configurations on `switch`.
pub fn two_hosts_on(switch: &VirtualSwitch, a: StackConfig, b: StackConfig) -> (Winsock, Winsock) {
    (started(&stack_on(switch, a)), started(&stack_on(switch, b)))
}

/// Asserts that `result` failed with `expected`, and that the calling thread's last error
/// (`WSAGetLastError`) says the same.
#[track_caller]
pub fn assert_wsa_error<T: Debug>(result: Result<T, WsaError>, expected: WsaError) {
    match result {
        Ok(v) => panic!("expected {expected:?}, got Ok({v:?})"),
        Err(e) => {
            assert_eq!(e, expected, "wrong error");
            assert_eq!(
                WSAGetLastError(),
                expected.0,
                "WSAGetLastError disagrees with the result"
            );
        }
    }
}

/// Asserts that `result` failed with `WSAEWOULDBLOCK` (mio's `assert_would_block`).
#[track_caller]
pub fn assert_would_block<T: Debug>(result: Result<T, WsaError>) {
    assert_wsa_error(result, WsaError::WSAEWOULDBLOCK);
}

/// `addr` as the API's `SOCKADDR_IN`.
pub fn sa(addr: SocketAddrV4) -> SOCKADDR_IN {
    SOCKADDR_IN::new(addr)
}

/// `ip:port`.
pub fn at(ip: Ipv4Addr, port: u16) -> SocketAddrV4 {
    SocketAddrV4::new(ip, port)
}

/// A new socket of `type` (`SOCK_STREAM` or `SOCK_DGRAM`).
#[track_caller]
pub fn new_socket(ws: &Winsock, r#type: i32) -> SOCKET {
    ws.socket(AF_INET, r#type, 0).expect("socket")
}

/// `bind(s, addr)`.
pub fn bind(ws: &Winsock, s: SOCKET, addr: SocketAddrV4) -> Result<(), WsaError> {
    ws.bind(s, Some(&sa(addr)), SOCKADDR_IN_LEN)
}

/// `connect(s, addr)`.
pub fn connect(ws: &Winsock, s: SOCKET, addr: SocketAddrV4) -> Result<(), WsaError> {
    ws.connect(s, Some(&sa(addr)), SOCKADDR_IN_LEN)
}

/// `sendto(s, buf, 0, addr)`.
pub fn sendto(ws: &Winsock, s: SOCKET, buf: &[u8], addr: SocketAddrV4) -> Result<i32, WsaError> {
    ws.sendto(s, buf, 0, Some(&sa(addr)), SOCKADDR_IN_LEN)
}

/// `recvfrom(s, buf, flags)` returning the byte count and the sender.
pub fn recvfrom(
    ws: &Winsock,
    s: SOCKET,
    buf: &mut [u8],
    flags: i32,
) -> Result<(i32, SocketAddrV4), WsaError> {
    let mut from = SOCKADDR_IN::default();
    let mut len = SOCKADDR_IN_LEN;
    let n = ws.recvfrom(s, buf, flags, Some(&mut from), Some(&mut len))?;
    assert_eq!(len, SOCKADDR_IN_LEN);
    Ok((n, from.to_socket_addr()))
}

/// `getsockname` as a Rust address.
pub fn local_name(ws: &Winsock, s: SOCKET) -> Result<SocketAddrV4, WsaError> {
    let mut name = SOCKADDR_IN::default();
    let mut len = SOCKADDR_IN_LEN;
    ws.getsockname(s, Some(&mut name), Some(&mut len))?;
    assert_eq!(len, SOCKADDR_IN_LEN);
    Ok(name.to_socket_addr())
}

/// `getpeername` as a Rust address.
pub fn peer_name(ws: &Winsock, s: SOCKET) -> Result<SocketAddrV4, WsaError> {
    let mut name = SOCKADDR_IN::default();
    let mut len = SOCKADDR_IN_LEN;
    ws.getpeername(s, Some(&mut name), Some(&mut len))?;
    assert_eq!(len, SOCKADDR_IN_LEN);
    Ok(name.to_socket_addr())
}

/// `ioctlsocket(FIONBIO)`.
#[track_caller]
pub fn set_nonblocking(ws: &Winsock, s: SOCKET, on: bool) {
    let mut arg = u32::from(on);
    ws.ioctlsocket(s, FIONBIO, Some(&mut arg)).expect("FIONBIO");
}

/// `ioctlsocket(FIONREAD)`.
#[track_caller]
pub fn fionread(ws: &Winsock, s: SOCKET) -> u32 {
    let mut arg = 0u32;
    ws.ioctlsocket(s, FIONREAD, Some(&mut arg))
        .expect("FIONREAD");
    arg
}

/// `getsockopt` of an `int` (or BOOL) option.
pub fn get_int(ws: &Winsock, s: SOCKET, level: i32, opt: i32) -> Result<i32, WsaError> {
    let mut buf = [0u8; 4];
    let mut len = 4;
    ws.getsockopt(s, level, opt, Some(&mut buf), &mut len)?;
    assert_eq!(len, 4, "an int option reports sizeof(int)");
    Ok(i32::from_ne_bytes(buf))
}

/// `setsockopt` of an `int` (or BOOL) option.
pub fn set_int(ws: &Winsock, s: SOCKET, level: i32, opt: i32, v: i32) -> Result<(), WsaError> {
    ws.setsockopt(s, level, opt, Some(&v.to_ne_bytes()), 4)
}

/// `getsockopt(SO_LINGER)`.
#[track_caller]
pub fn get_linger(ws: &Winsock, s: SOCKET) -> LINGER {
    let mut buf = [0u8; 4];
    let mut len = 4;
    ws.getsockopt(s, SOL_SOCKET, SO_LINGER, Some(&mut buf), &mut len)
        .expect("SO_LINGER");
    assert_eq!(len, 4, "sizeof(struct linger)");
    LINGER {
        l_onoff: u16::from_ne_bytes([buf[0], buf[1]]),
        l_linger: u16::from_ne_bytes([buf[2], buf[3]]),
    }
}

/// `setsockopt(SO_LINGER, {on, secs})`.
#[track_caller]
pub fn set_linger(ws: &Winsock, s: SOCKET, on: u16, secs: u16) {
    let bytes = [on.to_ne_bytes(), secs.to_ne_bytes()].concat();
    ws.setsockopt(s, SOL_SOCKET, SO_LINGER, Some(&bytes), 4)
        .expect("SO_LINGER");
}

/// A TCP socket on `ws` bound to `addr` and listening with `backlog`.
#[track_caller]
pub fn listener(ws: &Winsock, addr: SocketAddrV4, backlog: i32) -> SOCKET {
    let s = new_socket(ws, SOCK_STREAM);
    bind(ws, s, addr).expect("bind");
    ws.listen(s, backlog).expect("listen");
    s
}

/// A connected TCP pair: (client on `a`, accepted server socket on `b`), through a listener
/// on `b` at `B:port` that is closed again.
#[track_caller]
pub fn tcp_pair(a: &Winsock, b: &Winsock, port: u16) -> (SOCKET, SOCKET) {
    let l = listener(b, at(B, port), 4);
    let c = new_socket(a, SOCK_STREAM);
    connect(a, c, at(B, port)).expect("connect");
    let s = b.accept(l, None, None).expect("accept");
    b.closesocket(l).expect("close listener");
    (c, s)
}

/// `WSAJoinLeaf(s, to, NULL, NULL, NULL, NULL, flags)`: a join without caller data or QoS.
pub fn join_leaf_to(
    ws: &Winsock,
    s: SOCKET,
    to: SocketAddrV4,
    flags: u32,
) -> Result<SOCKET, WsaError> {
    ws.WSAJoinLeaf(
        s,
        Some(&sa(to)),
        SOCKADDR_IN_LEN,
        None,
        None,
        None,
        None,
        flags,
    )
}

/// Makes `s` non-blocking with `FIONBIO`, ignoring the answer (an event-selected socket
/// already is, and refuses it with `WSAEINVAL`).
pub fn try_nonblocking(ws: &Winsock, s: SOCKET) {
    let mut on = 1u32;
    let _ = ws.ioctlsocket(s, FIONBIO, Some(&mut on));
}

/// A UDP socket on `ws` bound to `addr`.
#[track_caller]
pub fn udp_bound(ws: &Winsock, addr: SocketAddrV4) -> SOCKET {
    let s = new_socket(ws, SOCK_DGRAM);
    bind(ws, s, addr).expect("bind");
    s
}

/// Blocking `recv` until exactly `n` bytes have arrived (or the stream ends).
#[track_caller]
pub fn recv_exact(ws: &Winsock, s: SOCKET, n: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(n);
    let mut buf = vec![0u8; 64 * 1024];
    while out.len() < n {
        let want = (n - out.len()).min(buf.len());
        let got = ws.recv(s, &mut buf[..want], 0).expect("recv");
        if got == 0 {
            break;
        }
        out.extend_from_slice(&buf[..got as usize]);
    }
    out
}

/// Blocking `send` of all of `data`.
#[track_caller]
pub fn send_all(ws: &Winsock, s: SOCKET, data: &[u8]) {
    let mut sent = 0;
    while sent < data.len() {
        sent += ws.send(s, &data[sent..], 0).expect("send") as usize;
    }
}

/// Repeats `attempt` until it returns something other than `WSAEWOULDBLOCK` or `limit` passes
/// (a `drive_bounded`-style livelock guard); panics on time-out.
#[track_caller]
pub fn retry<T>(
    limit: Duration,
    mut attempt: impl FnMut() -> Result<T, WsaError>,
) -> Result<T, WsaError> {
    let end = Instant::now() + limit;
    loop {
        match attempt() {
            Err(WsaError::WSAEWOULDBLOCK) if Instant::now() < end => {
                thread::sleep(Duration::from_millis(2))
            }
            Err(WsaError::WSAEWOULDBLOCK) => panic!("still WSAEWOULDBLOCK after {limit:?}"),
            r => return r,
        }
    }
}

/// Waits until `cond` holds, checking every few milliseconds; false if `limit` passes first.
pub fn wait_until(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + limit;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= end {
            return false;
        }
        thread::sleep(Duration::from_millis(2));
    }
}

/// A `TIMEVAL` of `ms` milliseconds.
pub fn timeval_ms(ms: i32) -> TIMEVAL {
    TIMEVAL {
        tv_sec: ms / 1000,
        tv_usec: (ms % 1000) * 1000,
    }
}

/// An `FD_SET` holding `sockets`.
pub fn fd_set(sockets: &[SOCKET]) -> FD_SET {
    let mut set = FD_SET::default();
    for &s in sockets {
        FD_SET(s, &mut set);
    }
    set
}

/// `select` on one socket: (readable, writable, exceptional) after waiting up to `ms`.
#[track_caller]
pub fn poll_one(ws: &Winsock, s: SOCKET, ms: i32) -> (bool, bool, bool) {
    let (mut r, mut w, mut e) = (fd_set(&[s]), fd_set(&[s]), fd_set(&[s]));
    let t = timeval_ms(ms);
    ws.select(0, Some(&mut r), Some(&mut w), Some(&mut e), Some(&t))
        .expect("select");
    (FD_ISSET(s, &r), FD_ISSET(s, &w), FD_ISSET(s, &e))
}

/// `select` until `s` is readable, up to `ms`; whether it became readable.
#[track_caller]
pub fn wait_readable(ws: &Winsock, s: SOCKET, ms: i32) -> bool {
    let mut r = fd_set(&[s]);
    let t = timeval_ms(ms);
    ws.select(0, Some(&mut r), None, None, Some(&t))
        .expect("select")
        == 1
}

/// Frames the stack under `ws` has put on its link so far, read once the count has stopped
/// moving. The engine copies the link's counters at the start of each pass, so a Winsock call
/// on `s` (which wakes the engine) comes first.
pub fn settled_tx_frames(ws: &Winsock, s: SOCKET) -> u64 {
    let mut last = None;
    loop {
        let _ = get_int(ws, s, SOL_SOCKET, SO_TYPE);
        thread::sleep(Duration::from_millis(30));
        let now = ws.stack().link_stats().tx_frames;
        if last == Some(now) {
            return now;
        }
        last = Some(now);
    }
}

/// A switch port whose cable a test can pull: once pulled, frames sent are dropped and frames
/// arriving are discarded, silently — the host has vanished without a FIN or a RST.
#[derive(Debug)]
pub struct Cable {
    port: SwitchPort,
    pulled: Arc<AtomicBool>,
}

impl Cable {
    /// A cable to a new port of `switch`, and the switch that pulls it (`store(true, …)`).
    pub fn new(switch: &VirtualSwitch) -> (Cable, Arc<AtomicBool>) {
        Cable::on(switch.port())
    }

    /// A cable to `port` (for example one [`sim::Sim::host_on`] hands out), and the switch
    /// that pulls it.
    pub fn on(port: SwitchPort) -> (Cable, Arc<AtomicBool>) {
        let pulled = Arc::new(AtomicBool::new(false));
        (
            Cable {
                port,
                pulled: pulled.clone(),
            },
            pulled,
        )
    }
}

impl AsRawFd for Cable {
    fn as_raw_fd(&self) -> RawFd {
        self.port.as_raw_fd()
    }
}

impl Link for Cable {
    fn recv(&mut self, buf: &mut [u8], now: Instant) -> io::Result<Option<usize>> {
        if self.pulled.load(Ordering::SeqCst) {
            while let Ok(Some(_)) = self.port.recv(buf, now) {}
            return Ok(None);
        }
        self.port.recv(buf, now)
    }

    fn send(&mut self, frame: &[u8], now: Instant) -> io::Result<()> {
        if self.pulled.load(Ordering::SeqCst) {
            return Ok(());
        }
        self.port.send(frame, now)
    }

    fn poll_at(&self) -> Option<Instant> {
        self.port.poll_at()
    }

    fn stats(&self) -> LinkStats {
        self.port.stats()
    }
}

/// Deterministic test data: `len` bytes from a seeded generator.
pub fn pattern(len: usize, seed: u64) -> Vec<u8> {
    use rand::{RngCore, SeedableRng};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let mut v = vec![0u8; len];
    rng.fill_bytes(&mut v);
    v
}

pub mod bridge;
pub mod capture;
pub mod netns;
pub mod sim;
pub mod wire;

/// `WSAEnumNetworkEvents(s, ev)`: the network events recorded for `s` now (resetting `ev`).
#[track_caller]
pub fn network_events(ws: &Winsock, s: SOCKET, ev: WSAEVENT) -> WSANETWORKEVENTS {
    let mut ne = WSANETWORKEVENTS::default();
    ws.WSAEnumNetworkEvents(s, ev, Some(&mut ne))
        .expect("WSAEnumNetworkEvents");
    ne
}

/// Waits up to `limit` until `s` has recorded `event` on `ev`; returns everything recorded by
/// then (each event's error as last recorded). Panics if `event` does not come.
#[track_caller]
pub fn wait_network_event(
    ws: &Winsock,
    s: SOCKET,
    ev: WSAEVENT,
    event: i32,
    limit: Duration,
) -> WSANETWORKEVENTS {
    let end = Instant::now() + limit;
    let mut seen = WSANETWORKEVENTS::default();
    loop {
        let ne = network_events(ws, s, ev);
        seen.lNetworkEvents |= ne.lNetworkEvents;
        for (i, e) in ne.iErrorCode.iter().enumerate() {
            if ne.lNetworkEvents & (1 << i) != 0 {
                seen.iErrorCode[i] = *e;
            }
        }
        if seen.lNetworkEvents & event != 0 {
            return seen;
        }
        let left = end.saturating_duration_since(Instant::now());
        assert!(
            !left.is_zero(),
            "no event {event:#x} within {limit:?}; saw {seen:?}"
        );
        let _ = ws.WSAWaitForMultipleEvents(&[ev], false, left.as_millis() as u32 + 1, false);
    }
}
