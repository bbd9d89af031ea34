//! RMP keepalive on virtual time (`ws2_tests::sim`): crash detection, a deferred request that
//! outlives the dead interval, and a silent plain TCP client dropped after it (docs/rmp.md §7:
//! PING after 1 s of silence, a peer silent for 3 s is crashed). The rest of group Q is in
//! `winsock_rmp.rs`.
//!
//! Every call is nonblocking: the root's `WSAJoinLeaf` returns its c_leaf socket at once and
//! signals `FD_CONNECT`, a leaf's returns its own socket, and `accept`/`WSAAccept` on a
//! nonblocking listener answer `WSAEWOULDBLOCK` until a request is there; the simulation runs
//! until each has happened. A host "crashes" by having its [`Cable`] pulled (no FIN, no RST).

use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::atomic::Ordering;
use std::time::Duration;

use ws2_stack::winsock::*;
use ws2_stack::WsaError;
use ws2_tap::{Impairments, Link};
use ws2_tests::sim::Sim;
use ws2_tests::*;

/// How long something that must happen may take.
const WAIT: Duration = Duration::from_secs(5);
/// How long to watch for something that must not happen.
const QUIET: Duration = Duration::from_millis(300);
/// Host C.
const C: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 3);
/// A root on the rooted-data entry: c_root + d_root.
const ROOT: u32 = WSA_FLAG_MULTIPOINT_C_ROOT | WSA_FLAG_MULTIPOINT_D_ROOT;
/// A leaf: c_leaf + d_leaf.
const LEAF: u32 = WSA_FLAG_MULTIPOINT_C_LEAF | WSA_FLAG_MULTIPOINT_D_LEAF;
/// Keepalive dead interval (docs/rmp.md §7) and the bound the brief allows for detection.
const CRASH_LIMIT: Duration = Duration::from_secs(10);

/// `WSASocket(AF_INET, SOCK_RDM, IPPROTO_RMP, NULL, 0, flags | WSA_FLAG_OVERLAPPED)`.
#[track_caller]
fn rmp_socket(ws: &Winsock, flags: u32) -> SOCKET {
    ws.WSASocket(
        AF_INET,
        SOCK_RDM,
        IPPROTO_RMP,
        None,
        0,
        flags | WSA_FLAG_OVERLAPPED,
    )
    .expect("WSASocket(RMP)")
}

/// A nonblocking c_root bound to `addr`, listening for leaf requests if `listening`.
#[track_caller]
fn root(ws: &Winsock, addr: SocketAddrV4, listening: bool) -> SOCKET {
    let s = rmp_socket(ws, ROOT);
    bind(ws, s, addr).expect("bind c_root");
    if listening {
        ws.listen(s, 16).expect("listen on c_root");
    }
    try_nonblocking(ws, s);
    s
}

/// A nonblocking c_leaf bound to `addr` and listening for invitations.
#[track_caller]
fn listening_leaf(ws: &Winsock, addr: SocketAddrV4) -> SOCKET {
    let s = rmp_socket(ws, LEAF);
    bind(ws, s, addr).expect("bind c_leaf");
    ws.listen(s, 16).expect("listen on c_leaf");
    try_nonblocking(ws, s);
    s
}

/// `WSAJoinLeaf(s, to, NULL, NULL, NULL, NULL, JL_BOTH)`.
fn join(ws: &Winsock, s: SOCKET, to: SocketAddrV4) -> Result<SOCKET, WsaError> {
    join_leaf_to(ws, s, to, JL_BOTH)
}

/// An event selecting `events` on `s`.
#[track_caller]
fn select_events(ws: &Winsock, s: SOCKET, events: i32) -> WSAEVENT {
    let ev = ws.WSACreateEvent().expect("WSACreateEvent");
    ws.WSAEventSelect(s, ev, events).expect("WSAEventSelect");
    ev
}

/// Runs `sim` until `s` has recorded `event` on `ev`, up to `limit`; returns everything
/// recorded by then (each event's error as last recorded). Panics if `event` does not come.
#[track_caller]
fn run_until_event(
    sim: &mut Sim,
    ws: &Winsock,
    s: SOCKET,
    ev: WSAEVENT,
    event: i32,
    limit: Duration,
) -> WSANETWORKEVENTS {
    let mut seen = WSANETWORKEVENTS::default();
    let came = sim.run_until(limit, |_| {
        let ne = network_events(ws, s, ev);
        seen.lNetworkEvents |= ne.lNetworkEvents;
        for (i, e) in ne.iErrorCode.iter().enumerate() {
            if ne.lNetworkEvents & (1 << i) != 0 {
                seen.iErrorCode[i] = *e;
            }
        }
        seen.lNetworkEvents & event != 0
    });
    assert!(came, "no event {event:#x} within {limit:?}; saw {seen:?}");
    seen
}

/// Asserts that `event` is not recorded on `s` during `QUIET`.
#[track_caller]
fn assert_no_event(sim: &mut Sim, ws: &Winsock, s: SOCKET, ev: WSAEVENT, event: i32, why: &str) {
    sim.run_for(QUIET);
    let ne = network_events(ws, s, ev);
    assert_eq!(ne.lNetworkEvents & event, 0, "{why}: {ne:?}");
}

/// `accept` on a nonblocking listening RMP socket, run until a request is there.
#[track_caller]
fn accept_one(sim: &mut Sim, ws: &Winsock, l: SOCKET) -> SOCKET {
    let mut got = None;
    sim.run_until(WAIT, |_| {
        got = match ws.accept(l, None, None) {
            Err(WsaError::WSAEWOULDBLOCK) => None,
            r => Some(r),
        };
        got.is_some()
    });
    got.unwrap_or_else(|| panic!("no join request within {WAIT:?}"))
        .expect("accept of a join request")
}

/// A root's nonblocking invitation of the leaf listening at `to` on `leaf`, which accepts with
/// plain `accept`: (the root's new c_leaf socket, once connected; the leaf's accepted socket).
#[track_caller]
fn invite(
    sim: &mut Sim,
    root_ws: &Winsock,
    c_root: SOCKET,
    leaf_ws: &Winsock,
    listener: SOCKET,
    to: SocketAddrV4,
) -> (SOCKET, SOCKET) {
    let c_leaf = join(root_ws, c_root, to).expect("nonblocking WSAJoinLeaf at the root");
    assert_ne!(c_leaf, c_root);
    let ev = select_events(root_ws, c_leaf, FD_CONNECT);
    let accepted = accept_one(sim, leaf_ws, listener);
    let ne = run_until_event(sim, root_ws, c_leaf, ev, FD_CONNECT, WAIT);
    assert_eq!(ne.iErrorCode[FD_CONNECT_BIT], 0, "invitation completes");
    (c_leaf, accepted)
}

/// `send(s, data)`, run until the links take it.
#[track_caller]
fn send_msg(sim: &mut Sim, ws: &Winsock, s: SOCKET, data: &[u8]) {
    let mut sent = None;
    sim.run_until(WAIT, |_| {
        sent = match ws.send(s, data, 0) {
            Err(WsaError::WSAEWOULDBLOCK) => None,
            r => Some(r),
        };
        sent.is_some()
    });
    let n = sent
        .unwrap_or_else(|| panic!("send still blocked after {WAIT:?}"))
        .expect("send");
    assert_eq!(n as usize, data.len(), "a whole message");
}

/// The next message on `s` within `WAIT`: (payload, sender). Makes `s` nonblocking.
#[track_caller]
fn next_msg(sim: &mut Sim, ws: &Winsock, s: SOCKET) -> (Vec<u8>, SocketAddrV4) {
    try_nonblocking(ws, s);
    let mut buf = vec![0u8; 70_000];
    let mut got = None;
    sim.run_until(WAIT, |_| {
        got = match recvfrom(ws, s, &mut buf, 0) {
            Err(WsaError::WSAEWOULDBLOCK) => None,
            r => Some(r),
        };
        got.is_some()
    });
    let (n, from) = got
        .unwrap_or_else(|| panic!("no message within {WAIT:?}"))
        .expect("recvfrom");
    (buf[..n as usize].to_vec(), from)
}

/// A `WSAAccept` condition function answering `verdict` and recording how often it ran.
fn wsa_accept(
    ws: &Winsock,
    l: SOCKET,
    verdict: i32,
    calls: &mut usize,
) -> Result<SOCKET, WsaError> {
    let mut cond = |_caller: Option<&WSABUF>,
                    _caller_data: Option<&WSABUF>,
                    _sqos: Option<&mut QOS>,
                    _gqos: Option<&mut QOS>,
                    _callee_id: Option<&WSABUF>,
                    _callee_data: Option<&mut WSABUF>,
                    _g: &mut u32,
                    _cb: usize| {
        *calls += 1;
        verdict
    };
    ws.WSAAccept(l, None, None, Some(&mut cond), 0)
}

/// `wsa_accept` on a nonblocking listener, run until a request is there.
#[track_caller]
fn wsa_accept_next(
    sim: &mut Sim,
    ws: &Winsock,
    l: SOCKET,
    verdict: i32,
    calls: &mut usize,
) -> Result<SOCKET, WsaError> {
    let mut got = None;
    sim.run_until(WAIT, |_| {
        got = match wsa_accept(ws, l, verdict, calls) {
            Err(WsaError::WSAEWOULDBLOCK) => None,
            r => Some(r),
        };
        got.is_some()
    });
    got.unwrap_or_else(|| panic!("no join request within {WAIT:?}"))
}

/// A host at `ip` whose cable the test can pull, and the switch that pulls it.
fn host_on_cable(
    sim: &mut Sim,
    ip: Ipv4Addr,
) -> (Winsock, std::sync::Arc<std::sync::atomic::AtomicBool>) {
    let mut pull = None;
    let stack = sim.host_on(config(ip), Impairments::default(), |port| {
        let (cable, p) = Cable::on(port);
        pull = Some(p);
        Box::new(cable) as Box<dyn Link>
    });
    (sim.winsock(&stack), pull.expect("the cable was made"))
}

/// A leaf whose host vanishes (its cable pulled: no FIN, no RST) is detected by keepalive: the
/// root's c_leaf socket gets `FD_CLOSE` with `WSAECONNABORTED` within 10 s (not before the
/// dead interval), and the other leaves stay in the session.
#[test]
fn crashed_leaf_is_detected() {
    let mut sim = Sim::new(43700);
    let a = sim.host(config(A));
    let a = sim.winsock(&a);
    let (b, pull) = host_on_cable(&mut sim, B);
    let c = sim.host(config(C));
    let c = sim.winsock(&c);
    let r = root(&a, at(A, 43700), false);
    let lb = listening_leaf(&b, at(B, 43701));
    let lc = listening_leaf(&c, at(C, 43701));
    let (cb, _sb) = invite(&mut sim, &a, r, &b, lb, at(B, 43701));
    let (cc, sc) = invite(&mut sim, &a, r, &c, lc, at(C, 43701));
    let ev_b = select_events(&a, cb, FD_CLOSE);
    let ev_c = select_events(&a, cc, FD_CLOSE);
    pull.store(true, Ordering::SeqCst);
    let pulled = sim.elapsed();
    let ne = run_until_event(&mut sim, &a, cb, ev_b, FD_CLOSE, CRASH_LIMIT);
    let after = sim.elapsed() - pulled;
    eprintln!("crashed leaf detected {after:?} after the cable was pulled");
    assert_eq!(
        ne.iErrorCode[FD_CLOSE_BIT],
        WsaError::WSAECONNABORTED.0,
        "after {after:?}"
    );
    assert!(
        after >= Duration::from_secs(2),
        "not before the dead interval: {after:?}"
    );
    assert_no_event(&mut sim, &a, cc, ev_c, FD_CLOSE, "the leaf on C is alive");
    send_msg(&mut sim, &a, r, b"C carries on");
    assert_eq!(next_msg(&mut sim, &c, sc).0, b"C carries on");
}

/// A root whose host vanishes is detected by its leaves: `FD_CLOSE` with `WSAECONNABORTED`.
#[test]
fn crashed_root_is_detected() {
    let mut sim = Sim::new(43710);
    let (a, pull) = host_on_cable(&mut sim, A);
    let b = sim.host(config(B));
    let b = sim.winsock(&b);
    let r = root(&a, at(A, 43710), false);
    let lb = listening_leaf(&b, at(B, 43711));
    let (_cb, sb) = invite(&mut sim, &a, r, &b, lb, at(B, 43711));
    let ev = select_events(&b, sb, FD_CLOSE);
    pull.store(true, Ordering::SeqCst);
    let pulled = sim.elapsed();
    let ne = run_until_event(&mut sim, &b, sb, ev, FD_CLOSE, CRASH_LIMIT);
    eprintln!(
        "crashed root detected {:?} after the cable was pulled",
        sim.elapsed() - pulled
    );
    assert_eq!(ne.iErrorCode[FD_CLOSE_BIT], WsaError::WSAECONNABORTED.0);
}

/// A deferred request outlives the keepalive dead interval (3 s, docs/rmp.md §5 step 2): the
/// root defers for 4 s, then accepts, and the leaf is admitted.
#[test]
fn deferred_request_survives_keepalive() {
    let mut sim = Sim::new(43620);
    let a = sim.host(config(A));
    let a = sim.winsock(&a);
    let b = sim.host(config(B));
    let b = sim.winsock(&b);
    let r = root(&a, at(A, 43620), true);
    let s = rmp_socket(&b, LEAF);
    let ev = select_events(&b, s, FD_CONNECT | FD_CLOSE);
    assert_eq!(join(&b, s, at(A, 43620)), Ok(s));
    let mut calls = 0;
    assert_wsa_error(
        wsa_accept_next(&mut sim, &a, r, CF_DEFER, &mut calls),
        WsaError::WSATRY_AGAIN,
    );
    sim.run_for(Duration::from_secs(4));
    wsa_accept_next(&mut sim, &a, r, CF_ACCEPT, &mut calls).expect("WSAAccept after 4 s");
    let ne = run_until_event(&mut sim, &b, s, ev, FD_CONNECT, WAIT);
    assert_eq!(ne.iErrorCode[FD_CONNECT_BIT], 0, "{ne:?}");
    assert_eq!(ne.lNetworkEvents & FD_CLOSE, 0, "{ne:?}");
}

/// The message types in `bytes` (whole messages only): each RMP message is a 10-byte header
/// ("RM", version, type, flags, 32-bit length) and its body (docs/rmp.md §2).
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

/// A TCP client that connects and says nothing is dropped after the dead interval (within
/// 10 s, without an ACCEPT), and the session of two leaves that asked to join carries on.
#[test]
fn silent_tcp_client_is_dropped() {
    let mut sim = Sim::new(44610);
    let h: Vec<Winsock> = (1..=4u8)
        .map(|n| {
            let s = sim.host(config(Ipv4Addr::new(10, 0, 0, n)));
            sim.winsock(&s)
        })
        .collect();
    let r = root(&h[0], at(A, 44610), true);
    let mut leaves = Vec::new();
    for w in &h[1..3] {
        let s = rmp_socket(w, LEAF);
        let ev = select_events(w, s, FD_CONNECT);
        assert_eq!(join(w, s, at(A, 44610)), Ok(s), "the same descriptor");
        accept_one(&mut sim, &h[0], r);
        let ne = run_until_event(&mut sim, w, s, ev, FD_CONNECT, WAIT);
        assert_eq!(ne.iErrorCode[FD_CONNECT_BIT], 0, "request completes");
        leaves.push(s);
    }
    // The silent client on D.
    let c = new_socket(&h[3], SOCK_STREAM);
    set_nonblocking(&h[3], c, true);
    assert_would_block(connect(&h[3], c, at(A, 44610)));
    assert!(
        sim.run_until(WAIT, |_| poll_one(&h[3], c, 0).1),
        "TCP connect to the RMP listener"
    );
    let connected = sim.elapsed();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let closed = sim.run_until(CRASH_LIMIT, |_| loop {
        match h[3].recv(c, &mut buf, 0) {
            Ok(0) => return true,
            Ok(n) => got.extend_from_slice(&buf[..n as usize]),
            Err(WsaError::WSAEWOULDBLOCK) => return false,
            Err(_) => return true,
        }
    });
    eprintln!(
        "silent client dropped {:?} after it connected",
        sim.elapsed() - connected
    );
    assert!(closed, "dropped within 10 s");
    assert!(!message_types(&got).contains(&3), "no ACCEPT");
    // The session still works both ways.
    let msg = b"still fine after a silent client";
    send_msg(&mut sim, &h[0], r, msg);
    for (n, s) in leaves.iter().enumerate() {
        assert_eq!(next_msg(&mut sim, &h[n + 1], *s).0, msg, "leaf {n}");
    }
    send_msg(&mut sim, &h[2], leaves[1], b"leaf C speaks");
    assert_eq!(next_msg(&mut sim, &h[0], r).0, b"leaf C speaks");
}

/// A root's invitation whose TCP handshake takes longer than the dead interval (the leaf's host
/// unreachable for 3.5 s: ARP and SYN retransmissions) still completes: keepalive runs from the
/// connection's first sign of life, the SYN-ACK, not from the `WSAJoinLeaf` call (docs/rmp.md §7;
/// the join timeout, §5.3, bounds the wait). Found by the lossy soak (docs/reliability.md).
#[test]
fn slow_handshake_does_not_kill_an_invitation() {
    let mut sim = Sim::new(43720);
    let a = sim.host(config(A));
    let a = sim.winsock(&a);
    let (b, pull) = host_on_cable(&mut sim, B);
    let r = root(&a, at(A, 43720), false);
    let lb = listening_leaf(&b, at(B, 43721));
    pull.store(true, Ordering::SeqCst);
    let c_leaf = join(&a, r, at(B, 43721)).expect("nonblocking WSAJoinLeaf at the root");
    let ev = select_events(&a, c_leaf, FD_CONNECT);
    sim.run_for(Duration::from_millis(3500));
    pull.store(false, Ordering::SeqCst);
    let sb = accept_one(&mut sim, &b, lb);
    let ne = run_until_event(&mut sim, &a, c_leaf, ev, FD_CONNECT, CRASH_LIMIT);
    assert_eq!(
        ne.iErrorCode[FD_CONNECT_BIT],
        0,
        "invitation completes after {:?}",
        sim.elapsed()
    );
    send_msg(&mut sim, &a, r, b"late but alive");
    assert_eq!(next_msg(&mut sim, &b, sb).0, b"late but alive");
}
