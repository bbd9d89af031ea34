//! CHECKLIST Part 2 group Q: rooted multipoint through the Winsock face, over RMP (docs/rmp.md,
//! D-18, D-19), plus the `WSASocket` role rules that need a rooted entry (43–45). Sessions run
//! on an in-process [`VirtualSwitch`] with 2–5 stacks: the root is host A (10.0.0.1), leaves are
//! B, C, D (10.0.0.2–4).
//!
//! Also here, beyond the numbered behaviours: the non-rooted data plane (`IPPROTO_RMP_RELAY`),
//! `CF_DEFER` at both kinds of listener, disconnect data, bad input from plain TCP clients and
//! hand-made RMP peers, a 256-leaf session, and per-leaf QoS on a root's `WSAJoinLeaf`. Keepalive
//! (crash detection by a pulled cable, a deferred request outliving the dead interval, a silent
//! TCP client dropped after it) runs on virtual time in `sim_rmp.rs`.
//!
//! Every call that may block runs either nonblocking under [`retry`] or on its own thread under
//! [`bounded`], so a stack that misbehaves fails a test instead of hanging it. The hand-made
//! peers encode RMP themselves from docs/rmp.md §2–§3 (this crate does not depend on
//! `ws2_multipoint`), which also checks the spec against the engine.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::thread;
use std::time::{Duration, Instant};

use ws2_stack::winsock::*;
use ws2_stack::WsaError;
use ws2_tap::VirtualSwitch;
use ws2_tests::*;

/// How long something that must happen may take.
const WAIT: Duration = Duration::from_secs(5);
/// How long to watch for something that must not happen.
const QUIET: Duration = Duration::from_millis(300);
/// Hosts C and D.
const C: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 3);
const D: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 4);
/// A root on the rooted-data entry: c_root + d_root.
const ROOT: u32 = WSA_FLAG_MULTIPOINT_C_ROOT | WSA_FLAG_MULTIPOINT_D_ROOT;
/// A root on the non-rooted-data entry: c_root + d_leaf (D_ROOT needs a rooted data plane, 41).
const RELAY_ROOT: u32 = WSA_FLAG_MULTIPOINT_C_ROOT | WSA_FLAG_MULTIPOINT_D_LEAF;
/// A leaf: c_leaf + d_leaf.
const LEAF: u32 = WSA_FLAG_MULTIPOINT_C_LEAF | WSA_FLAG_MULTIPOINT_D_LEAF;

// ---- hosts and sockets ----------------------------------------------------------------------

/// The address of host `n` (1 = A, 2 = B, …).
fn host_ip(n: u8) -> Ipv4Addr {
    Ipv4Addr::new(10, 0, 0, n)
}

/// `n` started hosts 10.0.0.1.. on a new switch.
fn lan(seed: u64, n: u8) -> (VirtualSwitch, Vec<Winsock>) {
    let switch = VirtualSwitch::new(seed);
    let hosts = (1..=n)
        .map(|i| started(&stack_on(&switch, config(host_ip(i)))))
        .collect();
    (switch, hosts)
}

/// `WSASocket(AF_INET, SOCK_RDM, protocol, NULL, 0, flags | WSA_FLAG_OVERLAPPED)`.
fn rmp_socket(ws: &Winsock, protocol: i32, flags: u32) -> Result<SOCKET, WsaError> {
    ws.WSASocket(
        AF_INET,
        SOCK_RDM,
        protocol,
        None,
        0,
        flags | WSA_FLAG_OVERLAPPED,
    )
}

/// The root's flags for `protocol`'s entry.
fn root_flags(protocol: i32) -> u32 {
    if protocol == IPPROTO_RMP_RELAY {
        RELAY_ROOT
    } else {
        ROOT
    }
}

/// A c_root socket on `protocol`'s entry, bound to `addr`, not listening.
#[track_caller]
fn root(ws: &Winsock, protocol: i32, addr: SocketAddrV4) -> SOCKET {
    let s = rmp_socket(ws, protocol, root_flags(protocol)).expect("WSASocket(c_root)");
    bind(ws, s, addr).expect("bind c_root");
    s
}

/// A c_root bound to `addr` and listening for leaf requests.
#[track_caller]
fn listening_root(ws: &Winsock, protocol: i32, addr: SocketAddrV4) -> SOCKET {
    let s = root(ws, protocol, addr);
    ws.listen(s, 16).expect("listen on c_root");
    s
}

/// A c_leaf/d_leaf socket on `protocol`'s entry.
#[track_caller]
fn leaf(ws: &Winsock, protocol: i32) -> SOCKET {
    rmp_socket(ws, protocol, LEAF).expect("WSASocket(c_leaf)")
}

/// A c_leaf bound to `addr` and listening for invitations.
#[track_caller]
fn listening_leaf(ws: &Winsock, protocol: i32, addr: SocketAddrV4) -> SOCKET {
    let s = leaf(ws, protocol);
    bind(ws, s, addr).expect("bind c_leaf");
    ws.listen(s, 16).expect("listen on c_leaf");
    s
}

/// `WSAJoinLeaf(s, to, NULL, NULL, NULL, NULL, flags)`.
fn join(ws: &Winsock, s: SOCKET, to: SocketAddrV4, flags: u32) -> Result<SOCKET, WsaError> {
    join_leaf_to(ws, s, to, flags)
}

/// Runs `f` on its own thread and returns what it returned; fails the test instead of hanging
/// when `f` is still running after `limit`.
#[track_caller]
fn bounded<T: Send + 'static>(
    limit: Duration,
    what: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> T {
    let t = thread::spawn(f);
    if !wait_until(limit, || t.is_finished()) {
        panic!("{what}: still blocked after {limit:?}");
    }
    t.join()
        .unwrap_or_else(|_| panic!("{what}: the thread panicked"))
}

/// `accept` on a listening RMP socket, blocking or not, bounded by `WAIT`.
#[track_caller]
fn accept_one(ws: &Winsock, l: SOCKET) -> SOCKET {
    let w = ws.clone();
    bounded(WAIT * 2, "accept", move || {
        retry(WAIT, || w.accept(l, None, None))
    })
    .expect("accept of a join request")
}

/// A root's blocking invitation of the leaf listening at `to` on `leaf`, which accepts with
/// plain `accept`: (the root's new c_leaf socket, the leaf's accepted socket).
#[track_caller]
fn invite(
    root_ws: &Winsock,
    c_root: SOCKET,
    leaf_ws: &Winsock,
    listener: SOCKET,
    to: SocketAddrV4,
) -> (SOCKET, SOCKET) {
    let r = root_ws.clone();
    let t = thread::spawn(move || join(&r, c_root, to, JL_BOTH));
    let accepted = accept_one(leaf_ws, listener);
    assert!(wait_until(WAIT, || t.is_finished()), "invitation completes");
    let c_leaf = t
        .join()
        .expect("join thread")
        .expect("WSAJoinLeaf at the root");
    assert_ne!(c_leaf, c_root);
    (c_leaf, accepted)
}

/// A leaf's blocking request to join the root listening at `to` on `root_ws`, which admits it
/// with plain `accept`: the root's c_leaf socket for it.
#[track_caller]
fn request(
    leaf_ws: &Winsock,
    s: SOCKET,
    root_ws: &Winsock,
    c_root: SOCKET,
    to: SocketAddrV4,
) -> SOCKET {
    let w = leaf_ws.clone();
    let t = thread::spawn(move || join(&w, s, to, JL_BOTH));
    let c_leaf = accept_one(root_ws, c_root);
    assert!(wait_until(WAIT, || t.is_finished()), "request completes");
    assert_eq!(t.join().expect("join thread"), Ok(s), "the same descriptor");
    c_leaf
}

// ---- messages and events ------------------------------------------------------------------

/// The next message on `s` within `WAIT`: (payload, sender). Makes `s` nonblocking.
#[track_caller]
fn next_msg(ws: &Winsock, s: SOCKET) -> (Vec<u8>, SocketAddrV4) {
    try_nonblocking(ws, s);
    let mut buf = vec![0u8; 70_000];
    let (n, from) = retry(WAIT, || recvfrom(ws, s, &mut buf, 0)).expect("recvfrom");
    (buf[..n as usize].to_vec(), from)
}

/// Asserts that nothing arrives on `s` for `QUIET`.
#[track_caller]
fn assert_quiet(ws: &Winsock, s: SOCKET, why: &str) {
    thread::sleep(QUIET);
    try_nonblocking(ws, s);
    let mut buf = [0u8; 2048];
    match recvfrom(ws, s, &mut buf, 0) {
        Err(WsaError::WSAEWOULDBLOCK) => {}
        Ok((n, from)) => panic!(
            "{why}: got {:?} from {from}",
            String::from_utf8_lossy(&buf[..n as usize])
        ),
        Err(e) => panic!("{why}: expected WSAEWOULDBLOCK, got {e:?}"),
    }
}

/// `send(s, data)`, retried while the links are full.
#[track_caller]
fn send_msg(ws: &Winsock, s: SOCKET, data: &[u8]) {
    let n = retry(WAIT, || ws.send(s, data, 0)).expect("send");
    assert_eq!(n as usize, data.len(), "a whole message");
}

/// An event selecting `events` on `s`.
#[track_caller]
fn select_events(ws: &Winsock, s: SOCKET, events: i32) -> WSAEVENT {
    let ev = ws.WSACreateEvent().expect("WSACreateEvent");
    ws.WSAEventSelect(s, ev, events).expect("WSAEventSelect");
    ev
}

/// Asserts that `event` is not recorded on `s` during `QUIET`.
#[track_caller]
fn assert_no_event(ws: &Winsock, s: SOCKET, ev: WSAEVENT, event: i32, why: &str) {
    let _ = ws.WSAWaitForMultipleEvents(&[ev], false, QUIET.as_millis() as u32, false);
    let ne = network_events(ws, s, ev);
    assert_eq!(ne.lNetworkEvents & event, 0, "{why}: {ne:?}");
}

/// A `WSAAccept` condition function answering `verdict` and recording what it saw.
#[derive(Default, Debug, Clone)]
struct Seen {
    calls: usize,
    caller_data: Option<Vec<u8>>,
    sqos: Option<QOS>,
    caller: Option<SocketAddrV4>,
}

/// `WSAAccept(l)` with a condition function that answers `verdict`, leaves `callee` as callee
/// data and records what it saw.
fn wsa_accept(
    ws: &Winsock,
    l: SOCKET,
    verdict: i32,
    callee: &[u8],
    seen: &mut Seen,
) -> Result<SOCKET, WsaError> {
    let mut cond = |caller: Option<&WSABUF>,
                    caller_data: Option<&WSABUF>,
                    sqos: Option<&mut QOS>,
                    _gqos: Option<&mut QOS>,
                    _callee_id: Option<&WSABUF>,
                    callee_data: Option<&mut WSABUF>,
                    _g: &mut u32,
                    _cb: usize| {
        seen.calls += 1;
        seen.caller = caller
            .and_then(|b| SOCKADDR_IN::from_bytes(b.data()))
            .map(|a| a.to_socket_addr());
        seen.caller_data = caller_data.map(|b| b.data().to_vec());
        seen.sqos = sqos.map(|q| q.clone());
        if let Some(out) = callee_data {
            out.buf[..callee.len()].copy_from_slice(callee);
            out.len = callee.len() as u32;
        }
        verdict
    };
    ws.WSAAccept(l, None, None, Some(&mut cond), 0)
}

/// `wsa_accept` retried until a request is there (the listener is made nonblocking).
#[track_caller]
fn wsa_accept_next(
    ws: &Winsock,
    l: SOCKET,
    verdict: i32,
    callee: &[u8],
    seen: &mut Seen,
) -> Result<SOCKET, WsaError> {
    try_nonblocking(ws, l);
    retry(WAIT, || wsa_accept(ws, l, verdict, callee, seen))
}

// ---- RMP by hand (docs/rmp.md §2–§3) --------------------------------------------------------

/// One message: the 10-byte header ("RM", version 1, type, flags 0, length) and `body`.
fn rmp_msg(ty: u8, body: &[u8]) -> Vec<u8> {
    let mut m = vec![b'R', b'M', 1, ty, 0, 0];
    m.extend_from_slice(&(body.len() as u32).to_be_bytes());
    m.extend_from_slice(body);
    m
}

/// HELLO from a leaf (role 2) on `plane` (1 rooted, 2 non-rooted), versions 1..=1.
fn hello_leaf(plane: u8) -> Vec<u8> {
    rmp_msg(1, &[1, 1, 2, plane])
}

/// A leaf-request JOIN with `JL_BOTH`, no caller data, no flowspecs.
fn join_request() -> Vec<u8> {
    rmp_msg(2, &[2, 4, 0, 0, 0])
}

/// The message types in `bytes` (whole messages only).
fn message_types(mut bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while bytes.len() >= 10 && bytes[..2] == *b"RM" {
        let len = u32::from_be_bytes([bytes[6], bytes[7], bytes[8], bytes[9]]) as usize;
        if bytes.len() < 10 + len {
            break;
        }
        out.push(bytes[3]);
        bytes = &bytes[10 + len..];
    }
    out
}

/// A plain TCP client on `ws` connected to `to`.
#[track_caller]
fn tcp_client(ws: &Winsock, to: SocketAddrV4) -> SOCKET {
    let c = new_socket(ws, SOCK_STREAM);
    connect(ws, c, to).expect("TCP connect to the RMP listener");
    c
}

/// Everything `c` receives until the peer closes the connection (or resets it), within
/// `limit`; `None` if it is still open then.
fn read_until_closed(ws: &Winsock, c: SOCKET, limit: Duration) -> Option<Vec<u8>> {
    try_nonblocking(ws, c);
    let end = Instant::now() + limit;
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match ws.recv(c, &mut buf, 0) {
            Ok(0) => return Some(got),
            Ok(n) => got.extend_from_slice(&buf[..n as usize]),
            Err(WsaError::WSAEWOULDBLOCK) => {
                if Instant::now() >= end {
                    return None;
                }
                thread::sleep(Duration::from_millis(5));
            }
            Err(_) => return Some(got),
        }
    }
}

// ---- WSASocket roles (43–45) ----------------------------------------------------------------

/// Conformance: 43 — `WSASocket` with both `WSA_FLAG_MULTIPOINT_C_ROOT` and `WSA_FLAG_MULTIPOINT_C_LEAF` (or both data-plane flags) fails with `WSAEINVAL`, on both RMP entries.
#[test]
fn both_control_roles_fail() {
    let (_sw, h) = lan(4300, 1);
    for protocol in [IPPROTO_RMP, IPPROTO_RMP_RELAY, 0] {
        for flags in [
            WSA_FLAG_MULTIPOINT_C_ROOT | WSA_FLAG_MULTIPOINT_C_LEAF | WSA_FLAG_MULTIPOINT_D_LEAF,
            WSA_FLAG_MULTIPOINT_C_ROOT | WSA_FLAG_MULTIPOINT_C_LEAF | WSA_FLAG_MULTIPOINT_D_ROOT,
            WSA_FLAG_MULTIPOINT_C_LEAF | WSA_FLAG_MULTIPOINT_D_ROOT | WSA_FLAG_MULTIPOINT_D_LEAF,
        ] {
            assert_wsa_error(rmp_socket(&h[0], protocol, flags), WsaError::WSAEINVAL);
        }
    }
}

/// Conformance: 44 — `WSASocket` with any multipoint flag on an entry lacking `XP1_SUPPORT_MULTIPOINT` (TCP, raw ICMP) fails with `WSAEINVAL`, even the roles the RMP entries accept.
#[test]
fn multipoint_flags_on_tcp_fail() {
    let (_sw, h) = lan(4400, 1);
    for (ty, protocol) in [
        (SOCK_STREAM, IPPROTO_TCP),
        (SOCK_STREAM, 0),
        (SOCK_RAW, IPPROTO_ICMP),
    ] {
        for flags in [
            ROOT,
            LEAF,
            RELAY_ROOT,
            WSA_FLAG_MULTIPOINT_C_LEAF | WSA_FLAG_MULTIPOINT_D_ROOT,
        ] {
            assert_wsa_error(
                h[0].WSASocket(AF_INET, ty, protocol, None, 0, flags),
                WsaError::WSAEINVAL,
            );
        }
    }
}

/// Conformance: 45 — all four role combinations (c_root/d_root, c_root/d_leaf, c_leaf/d_root, c_leaf/d_leaf) can be created on the entry whose control and data planes are both rooted; on the non-rooted-data entry the d_root ones fail (41).
#[test]
fn four_role_combinations_on_the_rooted_entry() {
    let (_sw, h) = lan(4500, 1);
    let combos = [
        (
            WSA_FLAG_MULTIPOINT_C_ROOT | WSA_FLAG_MULTIPOINT_D_ROOT,
            true,
        ),
        (
            WSA_FLAG_MULTIPOINT_C_ROOT | WSA_FLAG_MULTIPOINT_D_LEAF,
            false,
        ),
        (
            WSA_FLAG_MULTIPOINT_C_LEAF | WSA_FLAG_MULTIPOINT_D_ROOT,
            true,
        ),
        (
            WSA_FLAG_MULTIPOINT_C_LEAF | WSA_FLAG_MULTIPOINT_D_LEAF,
            false,
        ),
    ];
    for protocol in [IPPROTO_RMP, 0] {
        for (flags, _) in combos {
            let s = rmp_socket(&h[0], protocol, flags)
                .unwrap_or_else(|e| panic!("protocol {protocol}, {flags:#x}: {e:?}"));
            assert_eq!(get_int(&h[0], s, SOL_SOCKET, SO_TYPE), Ok(SOCK_RDM));
            h[0].closesocket(s).expect("closesocket");
        }
    }
    for (flags, d_root) in combos {
        let r = rmp_socket(&h[0], IPPROTO_RMP_RELAY, flags);
        if d_root {
            assert_wsa_error(r, WsaError::WSAEINVAL);
        } else {
            h[0].closesocket(r.expect("non-rooted data: d_leaf roles"))
                .expect("closesocket");
        }
    }
}

// ---- joining: root-initiated (417–423) -------------------------------------------------------

/// Conformance: 417 — `WSAJoinLeaf` on a c_root socket with a leaf's address returns a new socket distinct from the c_root socket, connected to that leaf.
#[test]
fn root_join_returns_a_new_socket() {
    let (_sw, h) = lan(41700, 2);
    let r = root(&h[0], IPPROTO_RMP, at(A, 41700));
    let l = listening_leaf(&h[1], IPPROTO_RMP, at(B, 41701));
    let (c_leaf, _accepted) = invite(&h[0], r, &h[1], l, at(B, 41701));
    assert_ne!(c_leaf, r, "a new descriptor");
    assert_eq!(peer_name(&h[0], c_leaf), Ok(at(B, 41701)), "the leaf");
    assert_eq!(get_int(&h[0], c_leaf, SOL_SOCKET, SO_TYPE), Ok(SOCK_RDM));
}

/// Conformance: 418 — the invited leaf's listening c_leaf socket receives `FD_ACCEPT`, and its `WSAAccept` returns a connected c_leaf socket (peer: the root) that receives the root's data.
#[test]
fn invited_leaf_gets_fd_accept() {
    let (_sw, h) = lan(41800, 2);
    let r = root(&h[0], IPPROTO_RMP, at(A, 41800));
    let l = listening_leaf(&h[1], IPPROTO_RMP, at(B, 41801));
    let ev = select_events(&h[1], l, FD_ACCEPT);
    let w = h[0].clone();
    let t = thread::spawn(move || join(&w, r, at(B, 41801), JL_BOTH));
    let ne = wait_network_event(&h[1], l, ev, FD_ACCEPT, WAIT);
    assert_eq!(ne.iErrorCode[FD_ACCEPT_BIT], 0);
    let mut seen = Seen::default();
    let s = wsa_accept_next(&h[1], l, CF_ACCEPT, b"", &mut seen).expect("WSAAccept");
    assert_ne!(s, l);
    assert_eq!(seen.caller.map(|a| *a.ip()), Some(A), "the root calls");
    let c_leaf =
        bounded(WAIT, "root join", move || t.join().expect("thread")).expect("WSAJoinLeaf");
    assert_eq!(peer_name(&h[1], s).map(|a| *a.ip()), Ok(A));
    send_msg(&h[0], r, b"to the invited leaf");
    assert_eq!(next_msg(&h[1], s).0, b"to the invited leaf");
    let _ = c_leaf;
}

/// Conformance: 419 — the root's (nonblocking) join signals `FD_CONNECT` on the new c_leaf socket only once the invited leaf has accepted.
#[test]
fn root_gets_fd_connect_once_accepted() {
    let (_sw, h) = lan(41900, 2);
    let r = root(&h[0], IPPROTO_RMP, at(A, 41900));
    try_nonblocking(&h[0], r);
    let l = listening_leaf(&h[1], IPPROTO_RMP, at(B, 41901));
    let c_leaf = join(&h[0], r, at(B, 41901), JL_BOTH).expect("nonblocking WSAJoinLeaf");
    assert_ne!(c_leaf, r);
    let ev = select_events(&h[0], c_leaf, FD_CONNECT);
    assert_no_event(&h[0], c_leaf, ev, FD_CONNECT, "before the leaf accepted");
    let _s = accept_one(&h[1], l);
    let ne = wait_network_event(&h[0], c_leaf, ev, FD_CONNECT, WAIT);
    assert_eq!(ne.iErrorCode[FD_CONNECT_BIT], 0, "FD_CONNECT error");
}

/// Conformance: 420 — if the invited leaf's condition function returns `CF_REJECT`, the root's blocking join fails with `WSAECONNREFUSED`, and a nonblocking join's `FD_CONNECT` carries `WSAECONNREFUSED`.
#[test]
fn leaf_reject_refuses_the_join() {
    let (_sw, h) = lan(42000, 2);
    let r = root(&h[0], IPPROTO_RMP, at(A, 42000));
    let l = listening_leaf(&h[1], IPPROTO_RMP, at(B, 42001));
    // Blocking.
    let w = h[0].clone();
    let t = thread::spawn(move || {
        let r = join(&w, r, at(B, 42001), JL_BOTH);
        (r, WSAGetLastError())
    });
    let mut seen = Seen::default();
    assert_wsa_error(
        wsa_accept_next(&h[1], l, CF_REJECT, b"", &mut seen),
        WsaError::WSAECONNREFUSED,
    );
    let (res, last) = bounded(WAIT, "blocking join", move || t.join().expect("thread"));
    assert_eq!(res, Err(WsaError::WSAECONNREFUSED), "blocking join");
    assert_eq!(last, WsaError::WSAECONNREFUSED.0, "WSAGetLastError");
    // Nonblocking.
    try_nonblocking(&h[0], r);
    let c_leaf = join(&h[0], r, at(B, 42001), JL_BOTH).expect("nonblocking WSAJoinLeaf");
    let ev = select_events(&h[0], c_leaf, FD_CONNECT);
    assert_wsa_error(
        wsa_accept_next(&h[1], l, CF_REJECT, b"", &mut seen),
        WsaError::WSAECONNREFUSED,
    );
    let ne = wait_network_event(&h[0], c_leaf, ev, FD_CONNECT, WAIT);
    assert_eq!(
        ne.iErrorCode[FD_CONNECT_BIT],
        WsaError::WSAECONNREFUSED.0,
        "FD_CONNECT error"
    );
    assert_eq!(seen.calls, 2);
}

/// Conformance: 421 — the c_leaf socket returned to the root inherits the c_root socket's `WSAAsyncSelect` registration: its `FD_CONNECT` and `FD_CLOSE` are posted to the same window and message with `wParam` the new socket.
#[test]
fn root_c_leaf_inherits_async_select() {
    let (_sw, h) = lan(42100, 2);
    let r = root(&h[0], IPPROTO_RMP, at(A, 42100));
    let q = MessageQueue::new();
    const WM_SOCK: u32 = 0x0400 + 21;
    h[0].WSAAsyncSelect(r, q.hwnd(), WM_SOCK, FD_CONNECT | FD_CLOSE | FD_READ)
        .expect("WSAAsyncSelect");
    let l = listening_leaf(&h[1], IPPROTO_RMP, at(B, 42101));
    let c_leaf = join(&h[0], r, at(B, 42101), JL_BOTH).expect("nonblocking WSAJoinLeaf");
    let s = accept_one(&h[1], l);
    let wait_for = |event: i32| {
        let end = Instant::now() + WAIT;
        while let Some(m) = q.GetMessage(Some(end.saturating_duration_since(Instant::now()))) {
            if m.wParam == c_leaf && i32::from(WSAGETSELECTEVENT(m.lParam)) == event {
                assert_eq!((m.hwnd, m.message), (q.hwnd(), WM_SOCK));
                return i32::from(WSAGETSELECTERROR(m.lParam));
            }
        }
        panic!("no message for event {event:#x} on the c_leaf socket");
    };
    assert_eq!(wait_for(FD_CONNECT), 0, "FD_CONNECT on the c_leaf socket");
    h[1].closesocket(s).expect("the leaf leaves");
    assert_eq!(wait_for(FD_CLOSE), 0, "FD_CLOSE on the c_leaf socket");
}

/// Conformance: 422 — the c_leaf socket returned to the root does not inherit the c_root socket's group ID (`SO_GROUP_ID` 0).
#[test]
fn root_c_leaf_has_no_group() {
    let (_sw, h) = lan(42200, 2);
    let r = h[0]
        .WSASocket(
            AF_INET,
            SOCK_RDM,
            IPPROTO_RMP,
            None,
            SG_UNCONSTRAINED_GROUP,
            ROOT | WSA_FLAG_OVERLAPPED,
        )
        .expect("WSASocket(c_root, SG_UNCONSTRAINED_GROUP)");
    bind(&h[0], r, at(A, 42200)).expect("bind");
    let g = get_int(&h[0], r, SOL_SOCKET, SO_GROUP_ID).expect("SO_GROUP_ID");
    assert_ne!(g, 0, "the c_root is in a group");
    let l = listening_leaf(&h[1], IPPROTO_RMP, at(B, 42201));
    let (c_leaf, _s) = invite(&h[0], r, &h[1], l, at(B, 42201));
    assert_eq!(get_int(&h[0], c_leaf, SOL_SOCKET, SO_GROUP_ID), Ok(0));
    assert_eq!(get_int(&h[0], r, SOL_SOCKET, SO_GROUP_ID), Ok(g));
}

/// Conformance: 423 — a c_root socket in listen mode can still call `WSAJoinLeaf` and still send and receive multipoint data: a requesting leaf and an invited leaf share the session.
#[test]
fn listening_root_can_invite_and_exchange_data() {
    let (_sw, h) = lan(42300, 3);
    let r = listening_root(&h[0], IPPROTO_RMP, at(A, 42300));
    let asker = leaf(&h[1], IPPROTO_RMP);
    let _c1 = request(&h[1], asker, &h[0], r, at(A, 42300));
    let l = listening_leaf(&h[2], IPPROTO_RMP, at(C, 42301));
    let (_c2, invited) = invite(&h[0], r, &h[2], l, at(C, 42301));
    send_msg(&h[0], r, b"root to all");
    assert_eq!(next_msg(&h[1], asker).0, b"root to all");
    assert_eq!(next_msg(&h[2], invited).0, b"root to all");
    send_msg(&h[1], asker, b"from the asker");
    send_msg(&h[2], invited, b"from the invited");
    let mut got = [next_msg(&h[0], r), next_msg(&h[0], r)];
    got.sort();
    assert_eq!(got[0].0, b"from the asker");
    assert_eq!(*got[0].1.ip(), B);
    assert_eq!(got[1].0, b"from the invited");
    assert_eq!(*got[1].1.ip(), C);
}

// ---- joining: leaf-initiated (424–429) -------------------------------------------------------

/// Conformance: 424 — a leaf-initiated `WSAJoinLeaf` on a c_leaf socket with the root's address returns the same descriptor (blocking and nonblocking).
#[test]
fn leaf_join_returns_the_same_socket() {
    let (_sw, h) = lan(42400, 3);
    let r = listening_root(&h[0], IPPROTO_RMP, at(A, 42400));
    let s = leaf(&h[1], IPPROTO_RMP);
    let _ = request(&h[1], s, &h[0], r, at(A, 42400));
    let t = leaf(&h[2], IPPROTO_RMP);
    try_nonblocking(&h[2], t);
    assert_eq!(join(&h[2], t, at(A, 42400), JL_BOTH), Ok(t), "nonblocking");
    let _ = accept_one(&h[0], r);
    send_msg(&h[0], r, b"both");
    assert_eq!(next_msg(&h[1], s).0, b"both");
    assert_eq!(next_msg(&h[2], t).0, b"both");
}

/// Conformance: 425 — a leaf-initiated join makes the root's listening c_root socket receive `FD_ACCEPT`, and `accept` there returns a c_leaf socket for that leaf.
#[test]
fn leaf_request_raises_fd_accept_at_the_root() {
    let (_sw, h) = lan(42500, 2);
    let r = listening_root(&h[0], IPPROTO_RMP, at(A, 42500));
    let ev = select_events(&h[0], r, FD_ACCEPT);
    assert_no_event(&h[0], r, ev, FD_ACCEPT, "no request yet");
    let s = leaf(&h[1], IPPROTO_RMP);
    try_nonblocking(&h[1], s);
    assert_eq!(join(&h[1], s, at(A, 42500), JL_BOTH), Ok(s));
    let ne = wait_network_event(&h[0], r, ev, FD_ACCEPT, WAIT);
    assert_eq!(ne.iErrorCode[FD_ACCEPT_BIT], 0);
    let c_leaf = accept_one(&h[0], r);
    assert_ne!(c_leaf, r);
    assert_eq!(peer_name(&h[0], c_leaf).map(|a| *a.ip()), Ok(B));
    assert_eq!(get_int(&h[0], c_leaf, SOL_SOCKET, SO_TYPE), Ok(SOCK_RDM));
}

/// Conformance: 426 — the leaf receives `FD_CONNECT` once the root has admitted it: not while the root's `WSAAccept` defers (`CF_DEFER` → `WSATRY_AGAIN`), then with error 0 when a later `WSAAccept` accepts the same request.
#[test]
fn leaf_gets_fd_connect_once_admitted() {
    let (_sw, h) = lan(42600, 2);
    let r = listening_root(&h[0], IPPROTO_RMP, at(A, 42600));
    let s = leaf(&h[1], IPPROTO_RMP);
    let ev = select_events(&h[1], s, FD_CONNECT | FD_READ);
    let caller = WSABUF::new(b"leaf 426".to_vec());
    assert_eq!(
        h[1].WSAJoinLeaf(
            s,
            Some(&sa(at(A, 42600))),
            SOCKADDR_IN_LEN,
            Some(&caller),
            None,
            None,
            None,
            JL_BOTH
        ),
        Ok(s)
    );
    let mut first = Seen::default();
    assert_wsa_error(
        wsa_accept_next(&h[0], r, CF_DEFER, b"", &mut first),
        WsaError::WSATRY_AGAIN,
    );
    assert_eq!(first.caller_data.as_deref(), Some(&b"leaf 426"[..]));
    assert_no_event(&h[1], s, ev, FD_CONNECT, "while the root defers");
    let mut second = Seen::default();
    let c_leaf = wsa_accept_next(&h[0], r, CF_ACCEPT, b"", &mut second).expect("WSAAccept");
    assert_eq!(second.caller_data, first.caller_data, "the same request");
    assert_eq!(second.caller, first.caller, "the same request");
    let ne = wait_network_event(&h[1], s, ev, FD_CONNECT, WAIT);
    assert_eq!(ne.iErrorCode[FD_CONNECT_BIT], 0, "FD_CONNECT error");
    send_msg(&h[1], s, b"admitted");
    let (m, from) = next_msg(&h[0], r);
    assert_eq!(m, b"admitted");
    assert_eq!(
        Ok(from),
        peer_name(&h[0], c_leaf),
        "recvfrom names the leaf"
    );
}

/// Conformance: 427 — a listening c_leaf socket refuses ordinary point-to-point connection requests: a plain TCP client that sends garbage is disconnected without an `FD_ACCEPT`, and a root's invitation still works afterwards.
#[test]
fn listening_leaf_refuses_plain_tcp() {
    let (_sw, h) = lan(42700, 3);
    let l = listening_leaf(&h[1], IPPROTO_RMP, at(B, 42700));
    let ev = select_events(&h[1], l, FD_ACCEPT);
    let c = tcp_client(&h[2], at(B, 42700));
    send_all(&h[2], c, b"GET / HTTP/1.0\r\n\r\n");
    let got = read_until_closed(&h[2], c, WAIT).expect("the leaf closes the connection");
    assert!(
        !message_types(&got).contains(&3),
        "no ACCEPT for a plain client: {got:?}"
    );
    assert_no_event(
        &h[1],
        l,
        ev,
        FD_ACCEPT,
        "a plain TCP client is no join request",
    );
    // A real invitation is still served.
    let r = root(&h[0], IPPROTO_RMP, at(A, 42701));
    let w = h[0].clone();
    let t = thread::spawn(move || join(&w, r, at(B, 42700), JL_BOTH));
    wait_network_event(&h[1], l, ev, FD_ACCEPT, WAIT);
    let s = accept_one(&h[1], l);
    bounded(WAIT, "invite", move || t.join().expect("thread")).expect("WSAJoinLeaf");
    send_msg(&h[0], r, b"still works");
    assert_eq!(next_msg(&h[1], s).0, b"still works");
}

/// Conformance: 428 — a second `WSAJoinLeaf` on a c_root while its previous nonblocking join is still outstanding fails with `WSAEALREADY`; once the first completes the second succeeds.
#[test]
fn second_root_join_while_outstanding_fails() {
    let (_sw, h) = lan(42800, 3);
    let r = root(&h[0], IPPROTO_RMP, at(A, 42800));
    try_nonblocking(&h[0], r);
    let l1 = listening_leaf(&h[1], IPPROTO_RMP, at(B, 42801));
    let l2 = listening_leaf(&h[2], IPPROTO_RMP, at(C, 42802));
    let c1 = join(&h[0], r, at(B, 42801), JL_BOTH).expect("first WSAJoinLeaf");
    let ev = select_events(&h[0], c1, FD_CONNECT);
    // The leaf has not accepted: the first join is outstanding.
    assert_wsa_error(join(&h[0], r, at(C, 42802), JL_BOTH), WsaError::WSAEALREADY);
    let _s1 = accept_one(&h[1], l1);
    let ne = wait_network_event(&h[0], c1, ev, FD_CONNECT, WAIT);
    assert_eq!(ne.iErrorCode[FD_CONNECT_BIT], 0);
    let c2 = join(&h[0], r, at(C, 42802), JL_BOTH).expect("second WSAJoinLeaf");
    assert_ne!(c2, c1);
    let _s2 = accept_one(&h[2], l2);
}

/// Conformance: 429 — a root adds several leaves by calling `WSAJoinLeaf` repeatedly (blocking, each after the previous completes), each getting its own c_leaf socket.
#[test]
fn root_adds_several_leaves() {
    let (_sw, h) = lan(42900, 4);
    let r = root(&h[0], IPPROTO_RMP, at(A, 42900));
    let mut c_leaves = Vec::new();
    let mut accepted = Vec::new();
    for (i, ip) in [B, C, D].into_iter().enumerate() {
        let l = listening_leaf(&h[i + 1], IPPROTO_RMP, at(ip, 42901));
        let (c, s) = invite(&h[0], r, &h[i + 1], l, at(ip, 42901));
        assert!(!c_leaves.contains(&c), "a new socket each time");
        assert_eq!(peer_name(&h[0], c), Ok(at(ip, 42901)));
        c_leaves.push(c);
        accepted.push(s);
    }
    send_msg(&h[0], r, b"three leaves");
    for (i, s) in accepted.iter().enumerate() {
        assert_eq!(next_msg(&h[i + 1], *s).0, b"three leaves");
    }
}

// ---- data (430, 431, non-rooted plane) -------------------------------------------------------

/// A root on `protocol`'s entry at A with leaves on B, C and D (invited), and the leaves'
/// sockets: (hosts, c_root, root-side c_leaf sockets, leaf sockets).
fn session_of_three(
    seed: u64,
    protocol: i32,
) -> (
    VirtualSwitch,
    Vec<Winsock>,
    SOCKET,
    Vec<SOCKET>,
    Vec<SOCKET>,
) {
    let (sw, h) = lan(seed, 4);
    let port = (seed % 50_000) as u16 + 10_000;
    let r = root(&h[0], protocol, at(A, port));
    let (mut c_leaves, mut leaves) = (Vec::new(), Vec::new());
    for (i, ip) in [B, C, D].into_iter().enumerate() {
        let l = listening_leaf(&h[i + 1], protocol, at(ip, port + 1));
        let (c, s) = invite(&h[0], r, &h[i + 1], l, at(ip, port + 1));
        c_leaves.push(c);
        leaves.push(s);
    }
    (sw, h, r, c_leaves, leaves)
}

/// Conformance: 430 — data sent on a d_root socket is received by every leaf in the session, whole and in order.
#[test]
fn root_data_reaches_every_leaf() {
    let (_sw, h, r, _c, leaves) = session_of_three(43000, IPPROTO_RMP);
    for i in 0..10u8 {
        send_msg(&h[0], r, &[i; 100]);
    }
    for (n, s) in leaves.iter().enumerate() {
        for i in 0..10u8 {
            let (m, from) = next_msg(&h[n + 1], *s);
            assert_eq!(m, [i; 100], "leaf {n}, message {i}");
            assert_eq!(*from.ip(), A, "from the root");
        }
    }
}

/// Conformance: 431 — data sent by a d_leaf in a rooted data plane is received by the d_root (`recvfrom` names the leaf) and by no other leaf.
#[test]
fn rooted_leaf_data_reaches_only_the_root() {
    let (_sw, h, r, c_leaves, leaves) = session_of_three(43100, IPPROTO_RMP);
    send_msg(&h[1], leaves[0], b"from B");
    let (m, from) = next_msg(&h[0], r);
    assert_eq!(m, b"from B");
    assert_eq!(
        Ok(from),
        peer_name(&h[0], c_leaves[0]),
        "recvfrom names the leaf"
    );
    assert_eq!(*from.ip(), B);
    assert_quiet(&h[2], leaves[1], "leaf C must not see B's data");
    assert_quiet(&h[3], leaves[2], "leaf D must not see B's data");
    assert_quiet(&h[1], leaves[0], "B must not get its own data back");
}

/// Non-rooted data plane (`IPPROTO_RMP_RELAY`, docs/rmp.md §6): a leaf's message reaches the
/// root and every other receiving leaf (naming the originating leaf), never the sender; root
/// data still reaches every leaf.
#[test]
fn non_rooted_leaf_data_is_relayed() {
    let (_sw, h, r, _c, leaves) = session_of_three(43110, IPPROTO_RMP_RELAY);
    send_msg(&h[1], leaves[0], b"B to everyone");
    let (m, from) = next_msg(&h[0], r);
    assert_eq!(
        (m.as_slice(), *from.ip()),
        (&b"B to everyone"[..], B),
        "at the root"
    );
    for n in [1, 2] {
        let (m, from) = next_msg(&h[n + 1], leaves[n]);
        assert_eq!(m, b"B to everyone", "leaf {n}");
        assert_eq!(
            *from.ip(),
            B,
            "leaf {n}: recvfrom names the originating leaf"
        );
    }
    assert_quiet(&h[1], leaves[0], "never back to the sender");
    send_msg(&h[0], r, b"root");
    for (n, s) in leaves.iter().enumerate() {
        assert_eq!(next_msg(&h[n + 1], *s).0, b"root", "leaf {n}");
    }
}

/// `SIO_MULTIPOINT_LOOPBACK` on RMP (docs/decisions.md): off by default, a leaf of the
/// non-rooted plane does not read its own data; turned on, it does — once, from itself — while
/// the other leaves still get exactly one copy.
#[test]
fn multipoint_loopback_on_a_leaf() {
    let (_sw, h, r, _c, leaves) = session_of_three(43130, IPPROTO_RMP_RELAY);
    send_msg(&h[1], leaves[0], b"off");
    assert_eq!(next_msg(&h[0], r).0, b"off");
    assert_quiet(&h[1], leaves[0], "loopback is off by default");
    let mut n = 0;
    h[1].WSAIoctl(
        leaves[0],
        SIO_MULTIPOINT_LOOPBACK,
        &1i32.to_ne_bytes(),
        &mut [],
        Some(&mut n),
        None,
        None,
    )
    .expect("SIO_MULTIPOINT_LOOPBACK on an RMP leaf");
    send_msg(&h[1], leaves[0], b"on");
    let (m, from) = next_msg(&h[1], leaves[0]);
    assert_eq!((m.as_slice(), *from.ip()), (&b"on"[..], B), "its own copy");
    assert_quiet(&h[1], leaves[0], "one copy only");
    assert_eq!(next_msg(&h[2], leaves[1]).0, b"off");
    assert_eq!(next_msg(&h[2], leaves[1]).0, b"on");
    assert_quiet(&h[2], leaves[1], "the others get one copy each");
}

/// Non-rooted plane: a `JL_SENDER_ONLY` leaf gets no relayed data, and a `JL_RECEIVER_ONLY`
/// leaf may not send (refused locally).
#[test]
fn relay_respects_join_roles() {
    let (_sw, h) = lan(43120, 4);
    let r = listening_root(&h[0], IPPROTO_RMP_RELAY, at(A, 43120));
    let roles = [JL_BOTH, JL_SENDER_ONLY, JL_RECEIVER_ONLY];
    let mut leaves = Vec::new();
    for (i, flags) in roles.into_iter().enumerate() {
        let s = leaf(&h[i + 1], IPPROTO_RMP_RELAY);
        try_nonblocking(&h[i + 1], s);
        assert_eq!(join(&h[i + 1], s, at(A, 43120), flags), Ok(s));
        let _ = accept_one(&h[0], r);
        leaves.push(s);
    }
    // Wait until every leaf is admitted (its join done: sends are allowed for the senders).
    send_msg(&h[2], leaves[1], b"sender-only speaks");
    assert_eq!(next_msg(&h[0], r).0, b"sender-only speaks");
    assert_eq!(next_msg(&h[1], leaves[0]).0, b"sender-only speaks");
    assert_eq!(next_msg(&h[3], leaves[2]).0, b"sender-only speaks");
    send_msg(&h[1], leaves[0], b"both speaks");
    assert_eq!(next_msg(&h[3], leaves[2]).0, b"both speaks");
    assert_quiet(&h[2], leaves[1], "a sender-only leaf receives nothing");
    assert!(
        h[3].send(leaves[2], b"receiver-only", 0).is_err(),
        "a receiver-only leaf may not send"
    );
}

// ---- teardown (432–435) ---------------------------------------------------------------------

/// Conformance: 432 — `closesocket` on the c_root delivers `FD_CLOSE` to every c_leaf socket at the root and to the c_leaf sockets at all remote leaves (whose `recv` then returns 0).
#[test]
fn closing_the_c_root_closes_every_leaf() {
    let (_sw, h, r, c_leaves, leaves) = session_of_three(43200, IPPROTO_RMP);
    let root_evs: Vec<_> = c_leaves
        .iter()
        .map(|c| select_events(&h[0], *c, FD_CLOSE))
        .collect();
    let leaf_evs: Vec<_> = leaves
        .iter()
        .enumerate()
        .map(|(n, s)| select_events(&h[n + 1], *s, FD_CLOSE))
        .collect();
    h[0].closesocket(r).expect("closesocket(c_root)");
    for (c, ev) in c_leaves.iter().zip(&root_evs) {
        wait_network_event(&h[0], *c, *ev, FD_CLOSE, WAIT);
    }
    for (n, (s, ev)) in leaves.iter().zip(&leaf_evs).enumerate() {
        let ne = wait_network_event(&h[n + 1], *s, *ev, FD_CLOSE, WAIT);
        assert_eq!(ne.iErrorCode[FD_CLOSE_BIT], 0, "leaf {n}: a graceful end");
        let mut buf = [0u8; 16];
        assert_eq!(h[n + 1].recv(*s, &mut buf, 0), Ok(0), "leaf {n}: recv 0");
    }
}

/// Conformance: 433 — `shutdown(SD_SEND)` on the c_root likewise delivers `FD_CLOSE` to every associated c_leaf socket, at the root and at the leaves.
#[test]
fn shutdown_of_the_c_root_closes_every_leaf() {
    let (_sw, h, r, c_leaves, leaves) = session_of_three(43300, IPPROTO_RMP);
    let root_evs: Vec<_> = c_leaves
        .iter()
        .map(|c| select_events(&h[0], *c, FD_CLOSE))
        .collect();
    let leaf_evs: Vec<_> = leaves
        .iter()
        .enumerate()
        .map(|(n, s)| select_events(&h[n + 1], *s, FD_CLOSE))
        .collect();
    h[0].shutdown(r, SD_SEND)
        .expect("shutdown(c_root, SD_SEND)");
    for (c, ev) in c_leaves.iter().zip(&root_evs) {
        wait_network_event(&h[0], *c, *ev, FD_CLOSE, WAIT);
    }
    for (n, (s, ev)) in leaves.iter().zip(&leaf_evs).enumerate() {
        wait_network_event(&h[n + 1], *s, *ev, FD_CLOSE, WAIT);
    }
}

/// Conformance: 434 — `closesocket` on a root-side c_leaf socket delivers `FD_CLOSE` to that remote leaf's socket only; the other leaves keep receiving.
#[test]
fn closing_a_root_side_c_leaf_drops_one_leaf() {
    let (_sw, h, r, c_leaves, leaves) = session_of_three(43400, IPPROTO_RMP);
    let evs: Vec<_> = leaves
        .iter()
        .enumerate()
        .map(|(n, s)| select_events(&h[n + 1], *s, FD_CLOSE | FD_READ))
        .collect();
    h[0].closesocket(c_leaves[0])
        .expect("closesocket(c_leaf for B)");
    wait_network_event(&h[1], leaves[0], evs[0], FD_CLOSE, WAIT);
    for n in [1, 2] {
        assert_no_event(&h[n + 1], leaves[n], evs[n], FD_CLOSE, "another leaf");
    }
    send_msg(&h[0], r, b"after B left");
    for n in [1, 2] {
        assert_eq!(next_msg(&h[n + 1], leaves[n]).0, b"after B left");
    }
}

/// Conformance: 435 — a remote leaf calling `closesocket` delivers `FD_CLOSE` on the root's c_leaf socket for it; the other leaves remain in the session (they still receive, and the root still hears them).
#[test]
fn a_leaf_leaving_keeps_the_others() {
    let (_sw, h, r, c_leaves, leaves) = session_of_three(43500, IPPROTO_RMP);
    let evs: Vec<_> = c_leaves
        .iter()
        .map(|c| select_events(&h[0], *c, FD_CLOSE))
        .collect();
    h[1].closesocket(leaves[0]).expect("the leaf on B leaves");
    let ne = wait_network_event(&h[0], c_leaves[0], evs[0], FD_CLOSE, WAIT);
    assert_eq!(ne.iErrorCode[FD_CLOSE_BIT], 0, "a graceful leave");
    for n in [1, 2] {
        assert_no_event(
            &h[0],
            c_leaves[n],
            evs[n],
            FD_CLOSE,
            "another leaf's c_leaf",
        );
    }
    send_msg(&h[0], r, b"two left");
    for n in [1, 2] {
        assert_eq!(next_msg(&h[n + 1], leaves[n]).0, b"two left");
    }
    send_msg(&h[3], leaves[2], b"D still here");
    assert_eq!(next_msg(&h[0], r).0, b"D still here");
}

// ---- connect and disconnect data (436) --------------------------------------------------------

/// Conformance: 436 — `WSAJoinLeaf` with caller data delivers it to the peer's condition function and returns the callee data in `lpCalleeData`: a root's blocking invitation, and a leaf's nonblocking request (callee data read after `FD_CONNECT`).
#[test]
fn connect_data_both_ways() {
    let (_sw, h) = lan(43600, 3);
    // Root-initiated, blocking.
    let r = listening_root(&h[0], IPPROTO_RMP, at(A, 43600));
    let l = listening_leaf(&h[1], IPPROTO_RMP, at(B, 43601));
    let w = h[0].clone();
    let t = thread::spawn(move || {
        let caller = WSABUF::new(b"root calling".to_vec());
        let mut callee = WSABUF::zeroed(64);
        let s = w.WSAJoinLeaf(
            r,
            Some(&sa(at(B, 43601))),
            SOCKADDR_IN_LEN,
            Some(&caller),
            Some(&mut callee),
            None,
            None,
            JL_BOTH,
        );
        (s, callee.data().to_vec())
    });
    let mut seen = Seen::default();
    wsa_accept_next(&h[1], l, CF_ACCEPT, b"leaf answers", &mut seen).expect("WSAAccept");
    assert_eq!(seen.caller_data.as_deref(), Some(&b"root calling"[..]));
    let (s, callee) = bounded(WAIT, "invite", move || t.join().expect("thread"));
    s.expect("WSAJoinLeaf");
    assert_eq!(callee, b"leaf answers", "lpCalleeData");
    // Leaf-initiated, nonblocking.
    let s = leaf(&h[2], IPPROTO_RMP);
    let ev = select_events(&h[2], s, FD_CONNECT);
    let caller = WSABUF::new(b"leaf asking".to_vec());
    assert_eq!(
        h[2].WSAJoinLeaf(
            s,
            Some(&sa(at(A, 43600))),
            SOCKADDR_IN_LEN,
            Some(&caller),
            None,
            None,
            None,
            JL_BOTH
        ),
        Ok(s)
    );
    let mut seen = Seen::default();
    wsa_accept_next(&h[0], r, CF_ACCEPT, b"root admits", &mut seen).expect("WSAAccept");
    assert_eq!(seen.caller_data.as_deref(), Some(&b"leaf asking"[..]));
    let ne = wait_network_event(&h[2], s, ev, FD_CONNECT, WAIT);
    assert_eq!(ne.iErrorCode[FD_CONNECT_BIT], 0);
    let mut callee = WSABUF::zeroed(64);
    h[2].rmp_callee_data(s, &mut callee)
        .expect("rmp_callee_data");
    assert_eq!(callee.data(), b"root admits");
}

/// `CF_DEFER` at a listening c_leaf (root invitation): `WSATRY_AGAIN`, the root's join stays
/// outstanding, and a later `WSAAccept` accepts the same request.
#[test]
fn defer_at_a_listening_leaf() {
    let (_sw, h) = lan(43610, 2);
    let r = root(&h[0], IPPROTO_RMP, at(A, 43610));
    try_nonblocking(&h[0], r);
    let l = listening_leaf(&h[1], IPPROTO_RMP, at(B, 43611));
    let caller = WSABUF::new(b"invitation".to_vec());
    let c_leaf = h[0]
        .WSAJoinLeaf(
            r,
            Some(&sa(at(B, 43611))),
            SOCKADDR_IN_LEN,
            Some(&caller),
            None,
            None,
            None,
            JL_BOTH,
        )
        .expect("nonblocking WSAJoinLeaf");
    let ev = select_events(&h[0], c_leaf, FD_CONNECT);
    let mut first = Seen::default();
    assert_wsa_error(
        wsa_accept_next(&h[1], l, CF_DEFER, b"", &mut first),
        WsaError::WSATRY_AGAIN,
    );
    assert_eq!(first.caller_data.as_deref(), Some(&b"invitation"[..]));
    assert_no_event(&h[0], c_leaf, ev, FD_CONNECT, "while the leaf defers");
    let mut second = Seen::default();
    let s = wsa_accept_next(&h[1], l, CF_ACCEPT, b"", &mut second).expect("WSAAccept");
    assert_eq!(second.caller_data, first.caller_data, "the same request");
    let ne = wait_network_event(&h[0], c_leaf, ev, FD_CONNECT, WAIT);
    assert_eq!(ne.iErrorCode[FD_CONNECT_BIT], 0);
    send_msg(&h[0], r, b"deferred, then accepted");
    assert_eq!(next_msg(&h[1], s).0, b"deferred, then accepted");
}

/// `CF_REJECT` at a listening c_root: the leaf's blocking request fails `WSAECONNREFUSED`, a
/// nonblocking one gets `FD_CONNECT` with `WSAECONNREFUSED`.
#[test]
fn root_reject_refuses_the_request() {
    let (_sw, h) = lan(43630, 3);
    let r = listening_root(&h[0], IPPROTO_RMP, at(A, 43630));
    let s = leaf(&h[1], IPPROTO_RMP);
    let w = h[1].clone();
    let t = thread::spawn(move || join(&w, s, at(A, 43630), JL_BOTH));
    let mut seen = Seen::default();
    assert_wsa_error(
        wsa_accept_next(&h[0], r, CF_REJECT, b"", &mut seen),
        WsaError::WSAECONNREFUSED,
    );
    let res = bounded(WAIT, "blocking request", move || t.join().expect("thread"));
    assert_eq!(res, Err(WsaError::WSAECONNREFUSED));
    let s2 = leaf(&h[2], IPPROTO_RMP);
    let ev = select_events(&h[2], s2, FD_CONNECT);
    assert_eq!(join(&h[2], s2, at(A, 43630), JL_BOTH), Ok(s2));
    assert_wsa_error(
        wsa_accept_next(&h[0], r, CF_REJECT, b"", &mut seen),
        WsaError::WSAECONNREFUSED,
    );
    let ne = wait_network_event(&h[2], s2, ev, FD_CONNECT, WAIT);
    assert_eq!(ne.iErrorCode[FD_CONNECT_BIT], WsaError::WSAECONNREFUSED.0);
}

/// `WSASendDisconnect` with data at a leaf: the root's c_leaf socket for it gets `FD_CLOSE`
/// and `WSARecvDisconnect` there returns the data; the leaf may send no more.
#[test]
fn disconnect_data_from_a_leaf() {
    let (_sw, h, r, c_leaves, leaves) = session_of_three(43640, IPPROTO_RMP);
    let ev = select_events(&h[0], c_leaves[0], FD_CLOSE);
    let bye = WSABUF::new(b"leaf B says bye".to_vec());
    h[1].WSASendDisconnect(leaves[0], Some(&bye))
        .expect("WSASendDisconnect");
    assert!(
        h[1].send(leaves[0], b"too late", 0).is_err(),
        "no sends after it"
    );
    let ne = wait_network_event(&h[0], c_leaves[0], ev, FD_CLOSE, WAIT);
    assert_eq!(ne.iErrorCode[FD_CLOSE_BIT], 0);
    let mut got = WSABUF::zeroed(64);
    h[0].WSARecvDisconnect(c_leaves[0], Some(&mut got))
        .expect("WSARecvDisconnect");
    assert_eq!(got.data(), b"leaf B says bye");
    // The others stay.
    send_msg(&h[0], r, b"still on");
    assert_eq!(next_msg(&h[2], leaves[1]).0, b"still on");
}

/// `WSASendDisconnect` with data on a root-side c_leaf socket: that leaf gets `FD_CLOSE` and
/// reads the data with `WSARecvDisconnect`; the other leaves stay.
#[test]
fn disconnect_data_from_the_root() {
    let (_sw, h, r, c_leaves, leaves) = session_of_three(43650, IPPROTO_RMP);
    let ev = select_events(&h[1], leaves[0], FD_CLOSE);
    let bye = WSABUF::new(b"root drops B".to_vec());
    h[0].WSASendDisconnect(c_leaves[0], Some(&bye))
        .expect("WSASendDisconnect on a c_leaf");
    let ne = wait_network_event(&h[1], leaves[0], ev, FD_CLOSE, WAIT);
    assert_eq!(ne.iErrorCode[FD_CLOSE_BIT], 0);
    let mut got = WSABUF::zeroed(64);
    h[1].WSARecvDisconnect(leaves[0], Some(&mut got))
        .expect("WSARecvDisconnect");
    assert_eq!(got.data(), b"root drops B");
    send_msg(&h[0], r, b"C and D");
    assert_eq!(next_msg(&h[2], leaves[1]).0, b"C and D");
    assert_eq!(next_msg(&h[3], leaves[2]).0, b"C and D");
}

// ---- bad input ------------------------------------------------------------------------------

/// A root at A with two leaves (B, C) that asked to join, and a listening c_root: (hosts,
/// c_root, c_leaf sockets, leaf sockets). Host D is left for the intruder.
fn requested_session(
    seed: u64,
    port: u16,
) -> (
    VirtualSwitch,
    Vec<Winsock>,
    SOCKET,
    Vec<SOCKET>,
    Vec<SOCKET>,
) {
    let (sw, h) = lan(seed, 4);
    let r = listening_root(&h[0], IPPROTO_RMP, at(A, port));
    let (mut c_leaves, mut leaves) = (Vec::new(), Vec::new());
    for i in [1, 2] {
        let s = leaf(&h[i], IPPROTO_RMP);
        c_leaves.push(request(&h[i], s, &h[0], r, at(A, port)));
        leaves.push(s);
    }
    (sw, h, r, c_leaves, leaves)
}

/// The session of [`requested_session`] still works both ways.
#[track_caller]
fn session_still_works(h: &[Winsock], r: SOCKET, leaves: &[SOCKET], tag: &str) {
    let msg = format!("still fine after {tag}");
    send_msg(&h[0], r, msg.as_bytes());
    for (n, s) in leaves.iter().enumerate() {
        assert_eq!(next_msg(&h[n + 1], *s).0, msg.as_bytes(), "leaf {n}");
    }
    send_msg(&h[2], leaves[1], b"leaf C speaks");
    assert_eq!(next_msg(&h[0], r).0, b"leaf C speaks");
}

/// A plain TCP client that connects to a listening c_root and sends garbage is refused (the
/// connection is closed, no `FD_ACCEPT`), and the session's leaves are unaffected.
#[test]
fn plain_tcp_client_at_the_root_is_refused() {
    let (_sw, h, r, _c, leaves) = requested_session(44600, 44600);
    let ev = select_events(&h[0], r, FD_ACCEPT);
    let c = tcp_client(&h[3], at(A, 44600));
    send_all(&h[3], c, &[0xde; 64]);
    let got = read_until_closed(&h[3], c, WAIT).expect("the root closes the connection");
    let types = message_types(&got);
    assert!(!types.contains(&3), "no ACCEPT: {types:?}");
    assert_no_event(&h[0], r, ev, FD_ACCEPT, "garbage is no join request");
    session_still_works(&h, r, &leaves, "a plain TCP client");
}

/// A hand-made RMP leaf on plain TCP, admitted by the root, then misbehaving with `bad`: its
/// connection is closed (a REJECT before the close), its c_leaf socket gets `FD_CLOSE`, and
/// the rest of the session carries on.
#[track_caller]
fn admitted_intruder_is_dropped(seed: u64, bad: &[u8], what: &str) {
    let port = seed as u16;
    let (_sw, h, r, _c, leaves) = requested_session(seed, port);
    let c = tcp_client(&h[3], at(A, port));
    send_all(&h[3], c, &[hello_leaf(1), join_request()].concat());
    let c_leaf = accept_one(&h[0], r);
    assert_eq!(peer_name(&h[0], c_leaf).map(|a| *a.ip()), Ok(D));
    let ev = select_events(&h[0], c_leaf, FD_CLOSE);
    // The intruder is in: it gets the root's data like the others.
    send_msg(&h[0], r, b"welcome");
    for (n, s) in leaves.iter().enumerate() {
        assert_eq!(next_msg(&h[n + 1], *s).0, b"welcome");
    }
    send_all(&h[3], c, bad);
    let got = read_until_closed(&h[3], c, WAIT)
        .unwrap_or_else(|| panic!("{what}: the root keeps the connection open"));
    let types = message_types(&got);
    assert!(
        types.starts_with(&[1, 3]),
        "{what}: HELLO, ACCEPT first: {types:?}"
    );
    assert_eq!(types.last(), Some(&4), "{what}: REJECT last: {types:?}");
    wait_network_event(&h[0], c_leaf, ev, FD_CLOSE, WAIT);
    session_still_works(&h, r, &leaves, what);
    assert_quiet(&h[1], leaves[0], "nothing of the intruder's reached a leaf");
}

/// A hand-made leaf that sends RELAYED (only the root may) is dropped.
#[test]
fn leaf_sending_relayed_is_dropped() {
    // RELAYED: origin leaf id 7, no address, payload.
    let bad = rmp_msg(6, &[0, 0, 0, 7, 0, b'x', b'y']);
    admitted_intruder_is_dropped(44620, &bad, "RELAYED from a leaf");
}

/// A hand-made leaf announcing a DATA longer than the 65,536-byte maximum is dropped at the
/// header, before any body is sent.
#[test]
fn oversized_message_is_dropped() {
    let mut bad = vec![b'R', b'M', 1, 5, 0, 0];
    bad.extend_from_slice(&(65_537u32).to_be_bytes());
    admitted_intruder_is_dropped(44630, &bad, "an oversized DATA");
}

/// A hand-made leaf that sends DATA before its JOIN (after HELLO) is dropped without ever
/// being offered to the application.
#[test]
fn data_before_join_is_dropped() {
    let (_sw, h, r, _c, leaves) = requested_session(44640, 44640);
    let ev = select_events(&h[0], r, FD_ACCEPT);
    let c = tcp_client(&h[3], at(A, 44640));
    send_all(&h[3], c, &[hello_leaf(1), rmp_msg(5, b"early")].concat());
    let got = read_until_closed(&h[3], c, WAIT).expect("the root closes the connection");
    let types = message_types(&got);
    assert!(!types.contains(&3), "no ACCEPT: {types:?}");
    assert_eq!(types.last(), Some(&4), "REJECT: {types:?}");
    assert_no_event(&h[0], r, ev, FD_ACCEPT, "never offered");
    let mut buf = [0u8; 64];
    try_nonblocking(&h[0], r);
    match recvfrom(&h[0], r, &mut buf, 0) {
        Err(WsaError::WSAEWOULDBLOCK) => {}
        other => panic!("the early DATA must not be delivered: {other:?}"),
    }
    session_still_works(&h, r, &leaves, "DATA before JOIN");
}

/// A hand-made peer that claims the wrong data plane or the root's role in HELLO is refused.
#[test]
fn mismatched_hello_is_refused() {
    let (_sw, h, r, _c, leaves) = requested_session(44650, 44650);
    for (hello, what) in [
        (hello_leaf(2), "non-rooted plane at a rooted root"),
        (rmp_msg(1, &[1, 1, 1, 1]), "a second root"),
        (rmp_msg(1, &[2, 3, 2, 1]), "no common version"),
    ] {
        let c = tcp_client(&h[3], at(A, 44650));
        send_all(&h[3], c, &[hello, join_request()].concat());
        let got = read_until_closed(&h[3], c, WAIT).unwrap_or_else(|| panic!("{what}: closed"));
        let types = message_types(&got);
        assert!(!types.contains(&3), "{what}: no ACCEPT: {types:?}");
        assert_eq!(types.last(), Some(&4), "{what}: REJECT: {types:?}");
        h[3].closesocket(c).expect("closesocket");
    }
    session_still_works(&h, r, &leaves, "mismatched HELLOs");
}

// ---- scale and QoS --------------------------------------------------------------------------

/// 256 leaves in one session (4 stacks × 64 leaf sockets, each leaf-requested): the root sends
/// 200 messages of 1 KiB with sequence numbers, and every leaf gets every message, in order.
#[test]
fn two_hundred_fifty_six_leaves() {
    const PER_HOST: usize = 64;
    const MESSAGES: u32 = 200;
    let started_at = Instant::now();
    let (_sw, h) = lan(25600, 5);
    let r = root(&h[0], IPPROTO_RMP, at(A, 25600));
    h[0].listen(r, SOMAXCONN).expect("listen");
    // Requests from every leaf at once; the root admits them as they come.
    let mut leaves: Vec<Vec<SOCKET>> = Vec::new();
    for ws in &h[1..] {
        let mut mine = Vec::new();
        for _ in 0..PER_HOST {
            let s = leaf(ws, IPPROTO_RMP);
            try_nonblocking(ws, s);
            assert_eq!(join(ws, s, at(A, 25600), JL_RECEIVER_ONLY), Ok(s));
            mine.push(s);
        }
        leaves.push(mine);
    }
    try_nonblocking(&h[0], r);
    let mut admitted = 0;
    let end = Instant::now() + Duration::from_secs(20);
    while admitted < 4 * PER_HOST {
        match h[0].accept(r, None, None) {
            Ok(_) => admitted += 1,
            Err(WsaError::WSAEWOULDBLOCK) if Instant::now() < end => {
                thread::sleep(Duration::from_millis(1))
            }
            Err(e) => panic!("accept {admitted}: {e:?}"),
        }
    }
    // A leaf may not have read its ACCEPT yet; the messages wait for it in order.
    let readers: Vec<_> = h[1..]
        .iter()
        .zip(leaves)
        .map(|(ws, mine)| {
            let ws = ws.clone();
            thread::spawn(move || {
                let mut next = vec![0u32; mine.len()];
                let mut buf = vec![0u8; 2048];
                let end = Instant::now() + Duration::from_secs(40);
                while next.iter().any(|&n| n < MESSAGES) {
                    let mut progress = false;
                    for (i, &s) in mine.iter().enumerate() {
                        while next[i] < MESSAGES {
                            match ws.recv(s, &mut buf, 0) {
                                Ok(n) => {
                                    assert_eq!(n, 1024, "leaf {i}: a whole message");
                                    let seq = u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]);
                                    assert_eq!(seq, next[i], "leaf {i}: in order");
                                    assert!(
                                        buf[4..1024].iter().all(|&b| b == seq as u8),
                                        "leaf {i}: payload of {seq}"
                                    );
                                    next[i] += 1;
                                    progress = true;
                                }
                                Err(WsaError::WSAEWOULDBLOCK) => break,
                                // The root admitted the leaf; the leaf has not read the
                                // ACCEPT yet (its join is still under way).
                                Err(WsaError::WSAENOTCONN) if next[i] == 0 => break,
                                Err(e) => panic!("leaf {i}: recv {e:?} after {}", next[i]),
                            }
                        }
                    }
                    if !progress {
                        if Instant::now() > end {
                            let short = next.iter().filter(|&&n| n < MESSAGES).count();
                            panic!("{short} leaves short of {MESSAGES} messages: {next:?}");
                        }
                        thread::sleep(Duration::from_millis(1));
                    }
                }
                next.len()
            })
        })
        .collect();
    let mut msg = vec![0u8; 1024];
    for seq in 0..MESSAGES {
        msg[..4].copy_from_slice(&seq.to_be_bytes());
        msg[4..].fill(seq as u8);
        let n = retry(Duration::from_secs(20), || h[0].send(r, &msg, 0)).expect("send");
        assert_eq!(n, 1024);
    }
    let mut total = 0;
    for t in readers {
        total += t.join().expect("a reader failed");
    }
    assert_eq!(total, 4 * PER_HOST);
    assert!(
        started_at.elapsed() < Duration::from_secs(30),
        "took {:?}",
        started_at.elapsed()
    );
}

/// `SIO_GET_QOS` decoded.
#[track_caller]
fn get_qos(ws: &Winsock, s: SOCKET) -> QOS {
    let mut out = vec![0u8; 1024];
    let mut n = 0;
    ws.WSAIoctl(s, SIO_GET_QOS, &[], &mut out, Some(&mut n), None, None)
        .expect("SIO_GET_QOS");
    QOS::from_bytes(&out[..n as usize]).expect("a whole QOS")
}

/// Per-leaf QoS: the root's `WSAJoinLeaf` with `lpSQOS` (the G711 template from
/// `WSAGetQOSByName`) gives the returned c_leaf socket that QoS (`SIO_GET_QOS`), the leaf's
/// condition function sees the flowspec, and another leaf joined without QoS has none.
#[test]
fn per_leaf_qos_from_the_root() {
    let (_sw, h) = lan(41510, 3);
    let r = root(&h[0], IPPROTO_RMP, at(A, 41510));
    let mut g711 = QOS::default();
    let mut name = WSABUF::new(b"G711".to_vec());
    assert_eq!(
        h[0].WSAGetQOSByName(r, Some(&mut name), Some(&mut g711)),
        Ok(true)
    );
    let l = listening_leaf(&h[1], IPPROTO_RMP, at(B, 41511));
    let w = h[0].clone();
    let q = g711.clone();
    let t = thread::spawn(move || {
        w.WSAJoinLeaf(
            r,
            Some(&sa(at(B, 41511))),
            SOCKADDR_IN_LEN,
            None,
            None,
            Some(&q),
            None,
            JL_BOTH,
        )
    });
    let mut seen = Seen::default();
    wsa_accept_next(&h[1], l, CF_ACCEPT, b"", &mut seen).expect("WSAAccept");
    let c_leaf = bounded(WAIT, "invite with QoS", move || t.join().expect("thread"))
        .expect("WSAJoinLeaf with lpSQOS");
    let sqos = seen.sqos.expect("the condition function sees lpSQOS");
    assert_eq!(
        sqos.SendingFlowspec.TokenRate,
        g711.SendingFlowspec.TokenRate
    );
    assert_eq!(
        sqos.SendingFlowspec.TokenBucketSize,
        g711.SendingFlowspec.TokenBucketSize
    );
    assert_eq!(
        sqos.SendingFlowspec.LevelOfGuarantee,
        g711.SendingFlowspec.LevelOfGuarantee
    );
    let got = get_qos(&h[0], c_leaf);
    assert_eq!(
        got.SendingFlowspec.TokenRate,
        g711.SendingFlowspec.TokenRate
    );
    assert_eq!(
        got.SendingFlowspec.TokenBucketSize,
        g711.SendingFlowspec.TokenBucketSize
    );
    assert_eq!(
        got.SendingFlowspec.PeakBandwidth,
        g711.SendingFlowspec.PeakBandwidth
    );
    assert_eq!(
        got.SendingFlowspec.LevelOfGuarantee,
        g711.SendingFlowspec.LevelOfGuarantee
    );
    // A second leaf without QoS: its c_leaf socket has none.
    let l2 = listening_leaf(&h[2], IPPROTO_RMP, at(C, 41512));
    let (c2, _s2) = invite(&h[0], r, &h[2], l2, at(C, 41512));
    assert_ne!(
        get_qos(&h[0], c2).SendingFlowspec.TokenRate,
        g711.SendingFlowspec.TokenRate,
        "QoS is per leaf"
    );
}

// ---- more joining and teardown edges -------------------------------------------------------

/// A root's invitation to an address where no leaf listens fails `WSAECONNREFUSED` (blocking)
/// or with `FD_CONNECT` carrying it (nonblocking); the c_root can invite again afterwards.
#[test]
fn invitation_to_nobody_is_refused() {
    let (_sw, h) = lan(42010, 2);
    let r = root(&h[0], IPPROTO_RMP, at(A, 42010));
    let w = h[0].clone();
    let res = bounded(WAIT * 2, "blocking invite to a closed port", move || {
        join(&w, r, at(B, 42011), JL_BOTH)
    });
    assert_eq!(res, Err(WsaError::WSAECONNREFUSED));
    try_nonblocking(&h[0], r);
    let c = join(&h[0], r, at(B, 42011), JL_BOTH).expect("nonblocking WSAJoinLeaf");
    let ev = select_events(&h[0], c, FD_CONNECT);
    let ne = wait_network_event(&h[0], c, ev, FD_CONNECT, WAIT);
    assert_eq!(ne.iErrorCode[FD_CONNECT_BIT], WsaError::WSAECONNREFUSED.0);
    let l = listening_leaf(&h[1], IPPROTO_RMP, at(B, 42012));
    let c2 = join(&h[0], r, at(B, 42012), JL_BOTH).expect("a later invitation");
    let ev2 = select_events(&h[0], c2, FD_CONNECT);
    let _s = accept_one(&h[1], l);
    let ne = wait_network_event(&h[0], c2, ev2, FD_CONNECT, WAIT);
    assert_eq!(ne.iErrorCode[FD_CONNECT_BIT], 0);
}

/// At a leaf, a second `WSAJoinLeaf` while the first is outstanding is `WSAEALREADY`, and once
/// joined `WSAEISCONN`.
#[test]
fn leaf_join_twice() {
    let (_sw, h) = lan(42810, 2);
    let r = listening_root(&h[0], IPPROTO_RMP, at(A, 42810));
    let s = leaf(&h[1], IPPROTO_RMP);
    let ev = select_events(&h[1], s, FD_CONNECT);
    assert_eq!(join(&h[1], s, at(A, 42810), JL_BOTH), Ok(s));
    assert_wsa_error(join(&h[1], s, at(A, 42810), JL_BOTH), WsaError::WSAEALREADY);
    let _c = accept_one(&h[0], r);
    wait_network_event(&h[1], s, ev, FD_CONNECT, WAIT);
    assert_wsa_error(join(&h[1], s, at(A, 42810), JL_BOTH), WsaError::WSAEISCONN);
}

/// `WSASendDisconnect` is a half close (docs/rmp.md §6: the *sender* sends no more DATA): a
/// leaf that sent DISCONNECT still receives the root's data until the root ends its side.
#[test]
fn leaf_half_close_still_receives() {
    let (_sw, h, r, c_leaves, leaves) = session_of_three(43660, IPPROTO_RMP);
    let ev = select_events(&h[0], c_leaves[0], FD_CLOSE);
    h[1].WSASendDisconnect(leaves[0], None)
        .expect("WSASendDisconnect");
    wait_network_event(&h[0], c_leaves[0], ev, FD_CLOSE, WAIT);
    send_msg(&h[0], r, b"after B's half close");
    assert_eq!(next_msg(&h[2], leaves[1]).0, b"after B's half close");
    assert_eq!(
        next_msg(&h[1], leaves[0]).0,
        b"after B's half close",
        "B only stopped sending"
    );
}

/// docs/rmp.md §4: a leaf of the rooted-data entry asking a root of the non-rooted-data entry
/// is refused at HELLO (REJECT(mismatch)): `WSAECONNREFUSED`, not a time-out; the root never
/// sees a request.
#[test]
fn plane_mismatch_is_refused() {
    let (_sw, h) = lan(43140, 2);
    let r = listening_root(&h[0], IPPROTO_RMP_RELAY, at(A, 43140));
    let l = leaf(&h[1], IPPROTO_RMP);
    let started = std::time::Instant::now();
    assert_eq!(
        join(&h[1], l, at(A, 43140), JL_BOTH),
        Err(WsaError::WSAECONNREFUSED)
    );
    assert!(started.elapsed() < WAIT, "refused at once, not timed out");
    try_nonblocking(&h[0], r);
    assert_eq!(
        h[0].accept(r, None, None),
        Err(WsaError::WSAEWOULDBLOCK),
        "no request reaches the root"
    );
}
