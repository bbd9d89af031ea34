//! Tier 3, rooted multipoint (issue 6, docs/rmp.md): two ws2 stacks run RMP sessions over real
//! Ethernet frames, each on a TAP that is a port of a Linux bridge inside a test namespace.
//!
//! ```text
//!   namespace ws2rmp-<pid>-<n>
//!   ┌──────────────────────────────────────────────┐
//!   │ br0 (no address, STP off)                    │
//!   │  ├── rmpa ══ fd ══ ws2 stack A 10.77.N.1/24  │  (both stacks run in this process)
//!   │  └── rmpb ══ fd ══ ws2 stack B 10.77.N.2/24  │
//!   └──────────────────────────────────────────────┘
//! ```
//!
//! - root-initiated: B's c_leaf listens, A's c_root invites it (`WSAJoinLeaf` → new c_leaf);
//! - leaf-initiated: A's c_root listens, B's c_leaf asks to join (refused once, then admitted);
//! - crash: B vanishes mid-session (its stack stopped, or its TAP set down) and A's c_leaf
//!   socket for it gets `FD_CLOSE` with `WSAECONNABORTED` (docs/rmp.md §7: dead after 3 s);
//! - wire: `tcpdump` on the bridge shows RMP framing (magic "RM") at the start of both
//!   directions of the TCP connection to the listening port.
//!
//! Needs root, `/dev/net/tun` and `ip` (see `ws2_tests::netns::require_netns`); the wire test
//! also needs `tcpdump`.
//!
//! Network safety (DESIGN.md): the bridge, both TAPs and every address live in the test's own
//! namespace; nothing in the root namespace gets an address or a route. The bridge itself has no
//! address: the only hosts are the two stacks. Each test uses its own subnet, 10.77.50–55.x, and
//! its own namespace, which `Netns` deletes on drop (also on panic).

use std::net::{Ipv4Addr, SocketAddrV4};
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use ws2_stack::winsock::*;
use ws2_stack::{Stack, WsaError};
use ws2_tests::capture::{Capture, Frame};
use ws2_tests::netns::{require_netns, Netns};
use ws2_tests::{at, bind, config, retry, sa, set_nonblocking, started};

/// Longest any single step (a join, an accept, a message) may take before the test calls it a
/// hang.
const IO_TIMEOUT: Duration = Duration::from_secs(30);
/// The bridge inside the namespace.
const BRIDGE: &str = "br0";
/// Stack A's TAP (the root in every test).
const TAP_A: &str = "rmpa";
/// Stack B's TAP (the leaf in every test).
const TAP_B: &str = "rmpb";
/// What the initiator of a join sends as caller data.
const CALLER: &[u8] = b"caller data: may I join?";
/// What the acceptor answers as callee data.
const CALLEE: &[u8] = b"callee data: welcome aboard";

/// A root role socket's creation flags.
const ROOT_FLAGS: u32 =
    WSA_FLAG_MULTIPOINT_C_ROOT | WSA_FLAG_MULTIPOINT_D_ROOT | WSA_FLAG_OVERLAPPED;
/// A leaf role socket's creation flags.
const LEAF_FLAGS: u32 =
    WSA_FLAG_MULTIPOINT_C_LEAF | WSA_FLAG_MULTIPOINT_D_LEAF | WSA_FLAG_OVERLAPPED;

/// Runs `ip -n <ns> args…`, panicking with its stderr if it fails.
#[track_caller]
fn ip(ns: &Netns, args: &[&str]) {
    let out = Command::new("ip")
        .args(["-n", ns.name()])
        .args(args)
        .output()
        .expect("run ip");
    assert!(
        out.status.success(),
        "ip -n {} {}: {}",
        ns.name(),
        args.join(" "),
        String::from_utf8_lossy(&out.stderr).trim()
    );
}

/// Whether the interface `dev` exists in `ns`.
fn link_exists(ns: &Netns, dev: &str) -> bool {
    Command::new("ip")
        .args(["-n", ns.name(), "link", "show", dev])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Two stacks on two ports of a bridge in one namespace.
struct Lan {
    // Field order is drop order: the stacks (and with them the TAPs' fds) before the namespace.
    /// Stack A's application (the root).
    a: Winsock,
    /// Stack B's application (the leaf); `None` once the test crashed it.
    b: Option<Winsock>,
    a_ip: Ipv4Addr,
    b_ip: Ipv4Addr,
    ns: Netns,
}

impl Lan {
    /// The network `10.77.<subnet>.0/24`: A is `.1`, B is `.2`.
    fn new(subnet: u8) -> Lan {
        let ns = Netns::new("ws2rmp").expect("create the namespace");
        // Best effort: without IPv6 the bridge and TAPs stay quiet (no DAD, no MLD).
        for key in ["all", "default"] {
            let _ = ns.run(&[
                "sysctl",
                "-qw",
                &format!("net.ipv6.conf.{key}.disable_ipv6=1"),
            ]);
        }
        ip(
            &ns,
            &[
                "link",
                "add",
                BRIDGE,
                "type",
                "bridge",
                "stp_state",
                "0",
                "forward_delay",
                "0",
            ],
        );
        let tap_a = ws2_tap::open_in_namespace(ns.name(), TAP_A).expect("open TAP A");
        let tap_b = ws2_tap::open_in_namespace(ns.name(), TAP_B).expect("open TAP B");
        for dev in [TAP_A, TAP_B] {
            ip(&ns, &["link", "set", dev, "master", BRIDGE]);
            ip(&ns, &["link", "set", dev, "up"]);
        }
        ip(&ns, &["link", "set", BRIDGE, "up"]);
        let a_ip = Ipv4Addr::new(10, 77, subnet, 1);
        let b_ip = Ipv4Addr::new(10, 77, subnet, 2);
        let a = Stack::new(config(a_ip), tap_a).expect("stack A starts");
        let b = Stack::new(config(b_ip), tap_b).expect("stack B starts");
        Lan {
            a: started(&a),
            b: Some(started(&b)),
            a_ip,
            b_ip,
            ns,
        }
    }

    fn b(&self) -> &Winsock {
        self.b.as_ref().expect("stack B is still running")
    }
}

/// A new RMP socket ("RMP rooted data", `SOCK_RDM`) with `flags`.
#[track_caller]
fn rmp_socket(ws: &Winsock, flags: u32) -> SOCKET {
    ws.WSASocket(AF_INET, SOCK_RDM, IPPROTO_RMP, None, 0, flags)
        .expect("WSASocket(SOCK_RDM, IPPROTO_RMP)")
}

/// `WSAJoinLeaf(s, to, CALLER, callee, JL_BOTH)`, blocking (bounded by RMP's own 30 s join
/// timeout); the socket it returned and the callee data it reported.
fn join(ws: &Winsock, s: SOCKET, to: SocketAddrV4) -> Result<(SOCKET, Vec<u8>), WsaError> {
    let caller = WSABUF::new(CALLER.to_vec());
    let mut callee = WSABUF::zeroed(4096);
    let joined = ws.WSAJoinLeaf(
        s,
        Some(&sa(to)),
        SOCKADDR_IN_LEN,
        Some(&caller),
        Some(&mut callee),
        None,
        None,
        JL_BOTH,
    )?;
    Ok((joined, callee.data().to_vec()))
}

/// What a condition function was shown.
#[derive(Debug, Default)]
struct Offer {
    caller_id: Option<SocketAddrV4>,
    caller_data: Vec<u8>,
    callee_id: Option<SocketAddrV4>,
}

/// `WSAAccept` on the non-blocking listening RMP socket `l` (retried until a join request is
/// there), with a condition function that answers `verdict` and, when accepting, [`CALLEE`].
fn accept_with(ws: &Winsock, l: SOCKET, verdict: i32) -> (Result<SOCKET, WsaError>, Offer) {
    let mut offer = Offer::default();
    let mut condition = |caller_id: Option<&WSABUF>,
                         caller_data: Option<&WSABUF>,
                         _sqos: Option<&mut QOS>,
                         _gqos: Option<&mut QOS>,
                         callee_id: Option<&WSABUF>,
                         callee_data: Option<&mut WSABUF>,
                         _g: &mut u32,
                         _cb: usize|
     -> i32 {
        let id = |b: Option<&WSABUF>| {
            b.and_then(|b| SOCKADDR_IN::from_bytes(b.data()))
                .map(|a| a.to_socket_addr())
        };
        offer.caller_id = id(caller_id);
        offer.callee_id = id(callee_id);
        offer.caller_data = caller_data.map(|b| b.data().to_vec()).unwrap_or_default();
        if verdict == CF_ACCEPT {
            let out = callee_data.expect("WSAAccept offers room for callee data");
            out.buf[..CALLEE.len()].copy_from_slice(CALLEE);
            out.len = CALLEE.len() as u32;
        }
        verdict
    };
    let r = retry(IO_TIMEOUT, || {
        ws.WSAAccept(l, None, None, Some(&mut condition), 0)
    });
    (r, offer)
}

/// A live root-initiated session between A (root) and B (leaf).
struct Session {
    /// A's c_root / d_root socket.
    root: SOCKET,
    /// A's c_leaf socket for B (what the root's `WSAJoinLeaf` returned).
    c_leaf: SOCKET,
    /// B's c_leaf socket (what B's `WSAAccept` returned).
    leaf: SOCKET,
}

/// B's c_leaf listens on `port`, A's root invites it; checks caller data, callee data and the
/// ids the condition function saw. All sockets are non-blocking afterwards.
fn invite(lan: &Lan, port: u16) -> Session {
    let (a, b) = (&lan.a, lan.b());
    let listening = rmp_socket(b, LEAF_FLAGS);
    bind(b, listening, at(lan.b_ip, port)).expect("bind the leaf");
    b.listen(listening, 4).expect("listen on the leaf");
    set_nonblocking(b, listening, true);
    let root = rmp_socket(a, ROOT_FLAGS);
    let ((joined, callee), (accepted, offer)) = thread::scope(|scope| {
        let acceptor = scope.spawn(|| accept_with(b, listening, CF_ACCEPT));
        let joined = join(a, root, at(lan.b_ip, port));
        (
            joined.expect("the root's invitation is accepted"),
            acceptor.join().expect("acceptor thread"),
        )
    });
    let leaf = accepted.expect("the leaf admits the root");
    assert_ne!(
        joined, root,
        "a root's WSAJoinLeaf returns a new c_leaf socket"
    );
    assert_eq!(offer.caller_data, CALLER, "caller data reaches the leaf");
    assert_eq!(callee, CALLEE, "callee data reaches the root");
    assert_eq!(
        offer.caller_id.map(|a| *a.ip()),
        Some(lan.a_ip),
        "the condition function's caller id names the root"
    );
    assert_eq!(
        offer.callee_id,
        Some(at(lan.b_ip, port)),
        "the condition function's callee id names the leaf's listening address"
    );
    b.closesocket(listening).expect("close the leaf's listener");
    set_nonblocking(a, root, true);
    set_nonblocking(a, joined, true);
    set_nonblocking(b, leaf, true);
    Session {
        root,
        c_leaf: joined,
        leaf,
    }
}

/// Message `i` of a test: 1 KiB, its index big-endian in front, a pattern behind.
fn msg(i: u32) -> Vec<u8> {
    let mut v = vec![0u8; 1024];
    v[..4].copy_from_slice(&i.to_be_bytes());
    for (k, b) in v[4..].iter_mut().enumerate() {
        *b = (i as usize * 31 + k * 7) as u8;
    }
    v
}

/// `send` of one message on a non-blocking socket, retried while it would block.
#[track_caller]
fn send_msg(ws: &Winsock, s: SOCKET, data: &[u8]) {
    let n = retry(IO_TIMEOUT, || ws.send(s, data, 0)).expect("send");
    assert_eq!(n as usize, data.len(), "a message is sent whole");
}

/// `recv` of one message on a non-blocking socket.
#[track_caller]
fn recv_msg(ws: &Winsock, s: SOCKET) -> Vec<u8> {
    let mut buf = vec![0u8; 70 * 1024];
    let n = retry(IO_TIMEOUT, || ws.recv(s, &mut buf, 0)).expect("recv");
    buf.truncate(n as usize);
    buf
}

/// `recvfrom` of one message on a non-blocking socket: the message and its sender.
#[track_caller]
fn recvfrom_msg(ws: &Winsock, s: SOCKET) -> (Vec<u8>, SocketAddrV4) {
    let mut buf = vec![0u8; 70 * 1024];
    let mut from = SOCKADDR_IN::default();
    let mut len = SOCKADDR_IN_LEN;
    let n = retry(IO_TIMEOUT, || {
        ws.recvfrom(s, &mut buf, 0, Some(&mut from), Some(&mut len))
    })
    .expect("recvfrom");
    assert_eq!(len, SOCKADDR_IN_LEN);
    buf.truncate(n as usize);
    (buf, from.to_socket_addr())
}

/// Registers `FD_READ | FD_CLOSE` on `s` with a new event object.
#[track_caller]
fn watch_close(ws: &Winsock, s: SOCKET) -> WSAEVENT {
    let ev = ws.WSACreateEvent().expect("WSACreateEvent");
    ws.WSAEventSelect(s, ev, FD_READ | FD_CLOSE)
        .expect("WSAEventSelect");
    ev
}

/// Waits up to `limit` for `FD_CLOSE` on `s` (registered with [`watch_close`]); its error code
/// and how long it took.
#[track_caller]
fn wait_close(ws: &Winsock, s: SOCKET, ev: WSAEVENT, limit: Duration) -> (i32, Duration) {
    let start = Instant::now();
    loop {
        let left = limit.saturating_sub(start.elapsed());
        let r = ws
            .WSAWaitForMultipleEvents(&[ev], false, left.as_millis() as u32, false)
            .expect("WSAWaitForMultipleEvents");
        let mut events = WSANETWORKEVENTS::default();
        ws.WSAEnumNetworkEvents(s, ev, Some(&mut events))
            .expect("WSAEnumNetworkEvents");
        if events.lNetworkEvents & FD_CLOSE != 0 {
            return (events.iErrorCode[FD_CLOSE_BIT], start.elapsed());
        }
        assert!(
            r != WSA_WAIT_TIMEOUT && start.elapsed() < limit,
            "no FD_CLOSE within {limit:?} (last events {:#x})",
            events.lNetworkEvents
        );
    }
}

/// 1. Root-initiated session, A (root) → B (leaf): caller and callee data, 1,000 ordered 1 KiB
///    messages root → leaf, leaf messages at the root named after B, and the root's
///    `closesocket` ending the leaf's session (`FD_CLOSE`, then `recv` 0).
#[test]
fn root_initiated_session() {
    if require_netns().is_some() {
        return;
    }
    let lan = Lan::new(50);
    let (a, b) = (&lan.a, lan.b());
    let s = invite(&lan, 7050);

    const COUNT: u32 = 1000;
    thread::scope(|scope| {
        let reader = scope.spawn(|| {
            for i in 0..COUNT {
                let got = recv_msg(b, s.leaf);
                assert_eq!(got.len(), 1024, "message {i}: one whole message per recv");
                let index = u32::from_be_bytes(got[..4].try_into().expect("4 bytes"));
                assert_eq!(index, i, "messages arrive in order");
                assert!(got == msg(i), "message {i} arrives intact");
            }
        });
        for i in 0..COUNT {
            send_msg(a, s.root, &msg(i));
        }
        reader.join().expect("the leaf reads all 1,000 messages");
    });

    // The leaf's messages reach the root's d_root socket, which names the leaf as the sender.
    for i in 0..10 {
        send_msg(b, s.leaf, &msg(10_000 + i));
    }
    for i in 0..10 {
        let (got, from) = recvfrom_msg(a, s.root);
        assert!(
            got == msg(10_000 + i),
            "leaf message {i} arrives intact, in order"
        );
        assert_eq!(
            from,
            at(lan.b_ip, 7050),
            "recvfrom on the root names the leaf"
        );
    }

    let ev = watch_close(b, s.leaf);
    a.closesocket(s.root).expect("close the root");
    let (err, took) = wait_close(b, s.leaf, ev, Duration::from_secs(10));
    assert_eq!(err, 0, "the root's closesocket ends the session gracefully");
    eprintln!("leaf saw FD_CLOSE {took:?} after the root closed");
    let mut buf = [0u8; 64];
    assert_eq!(
        b.recv(s.leaf, &mut buf, 0),
        Ok(0),
        "recv at the leaf returns 0"
    );
    b.closesocket(s.leaf).expect("close the leaf");
    a.closesocket(s.c_leaf).expect("close the root's c_leaf");
}

/// 2. Leaf-initiated session, B (leaf) → A (root listening): a join refused with `CF_REJECT`
///    fails `WSAECONNREFUSED`; the next one is accepted; data both ways; the leaf's
///    `closesocket` gives the root's c_leaf `FD_CLOSE`, and the root takes a new leaf.
#[test]
fn leaf_initiated_session() {
    if require_netns().is_some() {
        return;
    }
    let lan = Lan::new(51);
    let (a, b) = (&lan.a, lan.b());
    let port = 7051;
    let root = rmp_socket(a, ROOT_FLAGS);
    bind(a, root, at(lan.a_ip, port)).expect("bind the root");
    a.listen(root, 4).expect("listen on the root");
    set_nonblocking(a, root, true);
    let leaf = rmp_socket(b, LEAF_FLAGS);

    // Refused.
    let (joined, (accepted, offer)) = thread::scope(|scope| {
        let acceptor = scope.spawn(|| accept_with(a, root, CF_REJECT));
        let joined = join(b, leaf, at(lan.a_ip, port));
        (joined, acceptor.join().expect("acceptor thread"))
    });
    assert_eq!(
        accepted,
        Err(WsaError::WSAECONNREFUSED),
        "WSAAccept with CF_REJECT"
    );
    assert_eq!(offer.caller_data, CALLER, "caller data reaches the root");
    assert_eq!(
        joined.map(|(s, _)| s),
        Err(WsaError::WSAECONNREFUSED),
        "a refused join fails WSAECONNREFUSED"
    );

    // Admitted, on the same leaf socket.
    let (joined, (accepted, offer)) = thread::scope(|scope| {
        let acceptor = scope.spawn(|| accept_with(a, root, CF_ACCEPT));
        let joined = join(b, leaf, at(lan.a_ip, port));
        (joined, acceptor.join().expect("acceptor thread"))
    });
    let (same, callee) = joined.expect("the second join is accepted");
    let c_leaf = accepted.expect("the root admits the leaf");
    assert_eq!(same, leaf, "a leaf's WSAJoinLeaf returns the same socket");
    assert_eq!(callee, CALLEE, "callee data reaches the leaf");
    assert_eq!(offer.caller_data, CALLER, "caller data reaches the root");
    assert_eq!(offer.callee_id, Some(at(lan.a_ip, port)));
    let leaf_addr = offer
        .caller_id
        .expect("the condition function names the leaf");
    assert_eq!(*leaf_addr.ip(), lan.b_ip);
    set_nonblocking(b, leaf, true);
    set_nonblocking(a, c_leaf, true);

    for i in 0..20 {
        send_msg(a, root, &msg(i));
    }
    for i in 0..20 {
        assert!(recv_msg(b, leaf) == msg(i), "root message {i} at the leaf");
    }
    for i in 0..20 {
        send_msg(b, leaf, &msg(100 + i));
    }
    for i in 0..20 {
        let (got, from) = recvfrom_msg(a, root);
        assert!(got == msg(100 + i), "leaf message {i} at the root");
        assert_eq!(from, leaf_addr, "recvfrom on the root names the leaf");
    }

    // The leaf leaves: only its c_leaf at the root closes.
    let ev = watch_close(a, c_leaf);
    b.closesocket(leaf).expect("close the leaf");
    let (err, _) = wait_close(a, c_leaf, ev, Duration::from_secs(10));
    assert_eq!(err, 0, "a leaf's closesocket is a graceful leave");
    a.closesocket(c_leaf).expect("close the root's c_leaf");

    // The root socket is still a working root: a new leaf joins and data flows both ways.
    let leaf2 = rmp_socket(b, LEAF_FLAGS);
    let (joined, (accepted, _)) = thread::scope(|scope| {
        let acceptor = scope.spawn(|| accept_with(a, root, CF_ACCEPT));
        let joined = join(b, leaf2, at(lan.a_ip, port));
        (joined, acceptor.join().expect("acceptor thread"))
    });
    joined.expect("a new leaf joins the same root");
    let c_leaf2 = accepted.expect("the root admits the new leaf");
    set_nonblocking(b, leaf2, true);
    send_msg(a, root, &msg(500));
    assert!(
        recv_msg(b, leaf2) == msg(500),
        "root data reaches the new leaf"
    );
    send_msg(b, leaf2, &msg(501));
    let (got, from) = recvfrom_msg(a, root);
    assert!(got == msg(501), "the new leaf's data reaches the root");
    assert_eq!(*from.ip(), lan.b_ip);
    b.closesocket(leaf2).expect("close the new leaf");
    a.closesocket(c_leaf2).expect("close its c_leaf");
    a.closesocket(root).expect("close the root");
}

/// Runs a root-initiated session, proves it live, then lets `crash` make B vanish without a
/// word; A's c_leaf for B must get `FD_CLOSE` with `WSAECONNABORTED` within 10 s. Returns the
/// session and how long the root took to notice.
fn crash_case(lan: &mut Lan, port: u16, crash: impl FnOnce(&mut Lan)) -> (Session, Duration) {
    let s = invite(lan, port);
    {
        let (a, b) = (&lan.a, lan.b());
        send_msg(a, s.root, &msg(1));
        assert!(
            recv_msg(b, s.leaf) == msg(1),
            "the session is live (root → leaf)"
        );
        send_msg(b, s.leaf, &msg(2));
        assert!(
            recvfrom_msg(a, s.root).0 == msg(2),
            "the session is live (leaf → root)"
        );
    }
    let ev = watch_close(&lan.a, s.c_leaf);
    let crashed = Instant::now();
    crash(lan);
    let limit = Duration::from_secs(10).saturating_sub(crashed.elapsed());
    let (err, _) = wait_close(&lan.a, s.c_leaf, ev, limit);
    let took = crashed.elapsed();
    assert_eq!(
        WsaError(err),
        WsaError::WSAECONNABORTED,
        "a leaf that went silent is aborted"
    );
    eprintln!("root saw FD_CLOSE(WSAECONNABORTED) {took:?} after the crash");
    (s, took)
}

/// 3a. The leaf's host vanishes mid-session: its TAP goes down, then its stack is dropped (the
///     engine stops and the TAP disappears). Nothing of B's reaches A again: no DISCONNECT, no
///     FIN, no RST. The root's c_leaf gets `FD_CLOSE(WSAECONNABORTED)` within 10 s.
///
///     The link goes down first on purpose: dropping the last `Stack` handle alone is a graceful
///     exit, not a crash — the engine closes every socket and drains for up to 2 s
///     (stack/src/engine/mod.rs, `run`), so the leaf would say DISCONNECT and the root would see
///     a clean `FD_CLOSE` (error 0) at once.
#[test]
fn leaf_host_vanishes_mid_session() {
    if require_netns().is_some() {
        return;
    }
    let mut lan = Lan::new(52);
    let (s, took) = crash_case(&mut lan, 7052, |lan| {
        ip(&lan.ns, &["link", "set", TAP_B, "down"]);
        drop(lan.b.take());
        // The TAP's last fd was the stack's: the device is gone, so B really is.
        assert!(
            ws2_tests::wait_until(Duration::from_secs(3), || !link_exists(&lan.ns, TAP_B)),
            "stack B's TAP disappears with the stack"
        );
    });
    assert!(
        took >= Duration::from_secs(2),
        "not before the dead interval (3 s), took {took:?}"
    );
    // The root socket itself stays open; its session just lost the leaf.
    let a = &lan.a;
    a.closesocket(s.c_leaf).expect("close the c_leaf");
    a.closesocket(s.root).expect("close the root");
}

/// 3c. For contrast with 3a: dropping the leaf's last `Stack` handle while its link is up is a
///     graceful exit (the engine closes every socket before it stops), so the leaf leaves with
///     DISCONNECT and the root's c_leaf gets `FD_CLOSE` with no error, well before the dead
///     interval.
///
///     FAILS today in some rounds (1 to 6 of 8 per run so far), hence several rounds with
///     fresh stacks: at shutdown the engine removes its sockets in `HashMap` order
///     (stack/src/engine/mod.rs:890–893, `run`: `core.table.keys()`), hidden RMP TCP sockets
///     included. When the leaf's hidden TCP socket goes first, its FIN leaves, and the RMP
///     socket's DISCONNECT, queued afterwards by `rmp_close` → `rmp_finish_link`
///     (stack/src/engine/rmp.rs:785), fails silently in `tcp_send` on the removed socket; the
///     root sees EOF without DISCONNECT and reports `FD_CLOSE(WSAECONNRESET)` (`rmp_event`,
///     `Event::PeerClosed`, rmp.rs:967). Proposed fix: remove the sockets not in
///     `core.rmp_hidden` first, then the hidden ones (`partition` the ids); checked in a
///     scratch copy of the tree.
#[test]
fn leaf_stack_dropped_is_a_graceful_leave() {
    if require_netns().is_some() {
        return;
    }
    const ROUNDS: usize = 8;
    let mut outcomes = Vec::new();
    for round in 0..ROUNDS {
        let mut lan = Lan::new(55);
        let s = invite(&lan, 7055);
        let ev = watch_close(&lan.a, s.c_leaf);
        let dropped = Instant::now();
        drop(lan.b.take());
        let (err, _) = wait_close(&lan.a, s.c_leaf, ev, Duration::from_secs(10));
        let took = dropped.elapsed();
        outcomes.push((round, WsaError(err), took));
        lan.a.closesocket(s.c_leaf).expect("close the c_leaf");
        lan.a.closesocket(s.root).expect("close the root");
    }
    eprintln!("FD_CLOSE at the root after the leaf's stack was dropped: {outcomes:?}");
    for (round, err, took) in outcomes {
        assert_eq!(
            err,
            WsaError(0),
            "round {round}: the dropped stack's leaf should say DISCONNECT before its FIN"
        );
        assert!(
            took < Duration::from_secs(2),
            "round {round}: a graceful leave, not the 3 s dead interval: took {took:?}"
        );
    }
}

/// 3b. The leaf's TAP is set down mid-session (`ip link set … down`): B's stack still runs but
///     nothing passes. Both ends declare the other dead: `FD_CLOSE(WSAECONNABORTED)` at the
///     root's c_leaf and at the leaf within 10 s.
#[test]
fn leaf_link_down_mid_session() {
    if require_netns().is_some() {
        return;
    }
    let mut lan = Lan::new(53);
    let (s, _) = crash_case(&mut lan, 7053, |lan| {
        ip(&lan.ns, &["link", "set", TAP_B, "down"]);
    });
    let b = lan.b();
    let ev = watch_close(b, s.leaf);
    let (err, took) = wait_close(b, s.leaf, ev, Duration::from_secs(10));
    assert_eq!(
        WsaError(err),
        WsaError::WSAECONNABORTED,
        "the leaf, cut off, declares the root dead"
    );
    eprintln!("leaf saw FD_CLOSE(WSAECONNABORTED) {took:?} after the root had");
    b.closesocket(s.leaf).expect("close the leaf");
    lan.a.closesocket(s.c_leaf).expect("close the c_leaf");
    lan.a.closesocket(s.root).expect("close the root");
}

// ---- the wire ------------------------------------------------------------------------------

/// One direction of a TCP connection, as captured.
#[derive(Debug)]
struct Flow {
    from: SocketAddrV4,
    to: SocketAddrV4,
    /// The SYN's sequence number, once seen.
    isn: Option<u32>,
    /// (sequence number, payload) of every segment with data.
    segments: Vec<(u32, Vec<u8>)>,
}

impl Flow {
    /// The byte stream from the SYN on, reassembled (retransmissions overlap harmlessly);
    /// panics on a gap.
    fn stream(&self) -> Vec<u8> {
        let isn = self.isn.expect("the capture holds the SYN");
        let mut segs: Vec<(usize, &[u8])> = self
            .segments
            .iter()
            .map(|(seq, p)| (seq.wrapping_sub(isn.wrapping_add(1)) as usize, &p[..]))
            .collect();
        segs.sort_by_key(|(off, _)| *off);
        let mut out = Vec::new();
        for (off, p) in segs {
            assert!(
                off <= out.len(),
                "gap in {}→{} at byte {}",
                self.from,
                self.to,
                out.len()
            );
            if off + p.len() > out.len() {
                out.extend_from_slice(&p[out.len() - off..]);
            }
        }
        out
    }
}

/// The IPv4/TCP flows in a pcap file (Ethernet, either byte order, µs or ns stamps).
fn tcp_flows(frames: &[Frame]) -> Vec<Flow> {
    let be16 = |b: &[u8], i: usize| u16::from_be_bytes([b[i], b[i + 1]]);
    let be32 = |b: &[u8], i: usize| u32::from_be_bytes(b[i..i + 4].try_into().expect("4 bytes"));
    let mut flows: Vec<Flow> = Vec::new();
    for frame in frames {
        let f = &frame.data[..];
        if f.len() < 34 || be16(f, 12) != 0x0800 || f[23] != 6 {
            continue;
        }
        let ihl = usize::from(f[14] & 0x0f) * 4;
        let ip_end = (14 + usize::from(be16(f, 16))).min(f.len());
        let t = 14 + ihl;
        if t + 20 > ip_end {
            continue;
        }
        let src = Ipv4Addr::new(f[26], f[27], f[28], f[29]);
        let dst = Ipv4Addr::new(f[30], f[31], f[32], f[33]);
        let from = SocketAddrV4::new(src, be16(f, t));
        let to = SocketAddrV4::new(dst, be16(f, t + 2));
        let seq = be32(f, t + 4);
        let data_off = usize::from(f[t + 12] >> 4) * 4;
        let syn = f[t + 13] & 0x02 != 0;
        let payload = f.get(t + data_off..ip_end).unwrap_or_default();
        let i = match flows.iter().position(|x| x.from == from && x.to == to) {
            Some(i) => i,
            None => {
                flows.push(Flow {
                    from,
                    to,
                    isn: None,
                    segments: Vec::new(),
                });
                flows.len() - 1
            }
        };
        if syn {
            flows[i].isn = Some(seq);
        }
        if !payload.is_empty() {
            flows[i].segments.push((seq, payload.to_vec()));
        }
    }
    flows
}

/// The RMP messages (type, body) in one direction's byte stream, checking every header
/// (docs/rmp.md §2); a message cut off by the end of the capture is left out.
fn rmp_messages(stream: &[u8]) -> Vec<(u8, Vec<u8>)> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos + 10 <= stream.len() {
        let h = &stream[pos..pos + 10];
        assert_eq!(&h[..2], b"RM", "magic at byte {pos}");
        assert_eq!(h[2], 1, "framing version 1 at byte {pos}");
        assert_eq!(&h[4..6], &[0, 0], "flags 0 at byte {pos}");
        let len = u32::from_be_bytes(h[6..10].try_into().expect("4 bytes")) as usize;
        let Some(body) = stream.get(pos + 10..pos + 10 + len) else {
            break;
        };
        out.push((h[3], body.to_vec()));
        pos += 10 + len;
    }
    out
}

/// A length-prefixed field (`u16` + bytes) at the start of `b`.
fn field(b: &[u8]) -> &[u8] {
    let n = usize::from(u16::from_be_bytes([b[0], b[1]]));
    &b[2..2 + n]
}

/// 4. `tcpdump` on the bridge: the TCP connection to the leaf's listening port carries RMP from
///    its first byte, both ways ("RM", HELLO), then JOIN with the caller data, ACCEPT with the
///    callee data, DATA both ways, and END when the root closes.
#[test]
fn wire_shows_rmp_over_tcp() {
    if require_netns().is_some() {
        return;
    }
    let tcpdump = Command::new("tcpdump")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !tcpdump {
        if std::env::var(ws2_tests::netns::REQUIRE_ENV).is_ok_and(|v| v == "1") {
            panic!("wire_shows_rmp_over_tcp needs tcpdump");
        }
        eprintln!("SKIP: wire_shows_rmp_over_tcp: needs tcpdump");
        return;
    }
    let port = 7054;
    let lan = Lan::new(54);
    let cap = Capture::start(&lan.ns, BRIDGE, &format!("tcp port {port}"));
    let (a, b) = (&lan.a, lan.b());
    let s = invite(&lan, port);
    let (down, up) = (msg(1), msg(2));
    send_msg(a, s.root, &down);
    assert!(recv_msg(b, s.leaf) == down);
    send_msg(b, s.leaf, &up);
    assert!(recvfrom_msg(a, s.root).0 == up);
    let ev = watch_close(b, s.leaf);
    a.closesocket(s.root).expect("close the root");
    assert_eq!(wait_close(b, s.leaf, ev, Duration::from_secs(10)).0, 0);
    let frames = cap.finish();

    let flows = tcp_flows(&frames);
    let leaf_end = at(lan.b_ip, port);
    let initiator = flows
        .iter()
        .find(|f| f.to == leaf_end)
        .expect("the capture on the bridge holds A → B:port");
    let acceptor = flows
        .iter()
        .find(|f| f.from == leaf_end && f.to == initiator.from)
        .expect("the capture on the bridge holds B:port → A");
    assert_eq!(*initiator.from.ip(), lan.a_ip);
    assert_eq!(flows.len(), 2, "one TCP connection: {flows:?}");
    let (root_stream, leaf_stream) = (initiator.stream(), acceptor.stream());
    assert_eq!(
        &root_stream[..2],
        b"RM",
        "the root's stream starts with the RMP magic"
    );
    assert_eq!(
        &leaf_stream[..2],
        b"RM",
        "the leaf's stream starts with the RMP magic"
    );
    let quiet = |m: &Vec<(u8, Vec<u8>)>| -> Vec<(u8, Vec<u8>)> {
        // PING (9) and PONG (10) come whenever a side has been quiet for 1 s.
        m.iter()
            .filter(|(t, _)| *t != 9 && *t != 10)
            .cloned()
            .collect()
    };
    let from_root = quiet(&rmp_messages(&root_stream));
    let from_leaf = quiet(&rmp_messages(&leaf_stream));
    let types = |m: &[(u8, Vec<u8>)]| m.iter().map(|(t, _)| *t).collect::<Vec<_>>();
    eprintln!(
        "RMP on the wire: root → leaf {:?}, leaf → root {:?} ({} and {} bytes)",
        types(&from_root),
        types(&from_leaf),
        root_stream.len(),
        leaf_stream.len()
    );
    // HELLO: versions 1..=1, role (1 root, 2 leaf), plane 1 (rooted).
    assert_eq!(from_root[0], (1, vec![1, 1, 1, 1]), "the root's HELLO");
    assert_eq!(from_leaf[0], (1, vec![1, 1, 2, 1]), "the leaf's HELLO");
    // JOIN: root-invite, JL_BOTH, no flowspecs, the caller data.
    let (t, join) = &from_root[1];
    assert_eq!(*t, 2, "the root's second message is JOIN");
    assert_eq!(&join[..3], &[1, 4, 0]);
    assert_eq!(field(&join[3..]), CALLER, "JOIN carries the caller data");
    let (t, accept) = &from_leaf[1];
    assert_eq!(*t, 3, "the leaf answers ACCEPT");
    assert_eq!(field(accept), CALLEE, "ACCEPT carries the callee data");
    assert_eq!(from_root[2], (5, down), "the root's DATA");
    assert_eq!(from_leaf[2], (5, up), "the leaf's DATA");
    assert_eq!(
        from_root.last().map(|(t, _)| *t),
        Some(8),
        "the root's close sends END"
    );
    b.closesocket(s.leaf).expect("close the leaf");
    a.closesocket(s.c_leaf).expect("close the c_leaf");
}
