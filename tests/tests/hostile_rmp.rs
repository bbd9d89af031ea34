//! A hostile peer against an RMP root on virtual time (`ws2_tests::sim`), docs/rmp.md §12 and
//! issue 13: the bounds a peer cannot push past.
//!
//! - A flood of TCP connections that never send JOIN holds at most the `listen` backlog of
//!   sockets at the root (the oldest connection without a JOIN makes room for a newcomer), a
//!   real leaf still joins during the flood, and the join deadline (30 s) frees every place
//!   the flood held — as a TCP listener holds at most its backlog and resets the rest.
//! - 20 MB of PINGs whose PONGs are never read leave at most one PONG (and one PING) queued.
//! - A leaf that stops reading but PINGs to stay alive does not stop the root's data (or, on
//!   the non-rooted plane, the relays of another leaf's data) to the other leaves; past the
//!   slow-leaf limit (1 MiB behind, or 10 s without TCP taking a byte)
//!   the root resets it and its c_leaf socket gets `FD_CLOSE` with `WSAECONNABORTED`.
//!
//! The hostile peer speaks RMP by hand over a plain TCP socket of another stack: a 10-byte
//! header ("RM", version 1, type, flags 0, 32-bit length) and a body (docs/rmp.md §2–§3).

use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::Duration;

use ws2_stack::winsock::*;
use ws2_stack::{Stack, WsaError};
use ws2_tests::sim::Sim;
use ws2_tests::*;

/// How long something that must happen may take.
const WAIT: Duration = Duration::from_secs(5);
/// Hosts C and D: honest leaves.
const C: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 3);
const D: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 4);
/// A root on the rooted-data entry: c_root + d_root.
const ROOT: u32 = WSA_FLAG_MULTIPOINT_C_ROOT | WSA_FLAG_MULTIPOINT_D_ROOT;
/// A leaf: c_leaf + d_leaf.
const LEAF: u32 = WSA_FLAG_MULTIPOINT_C_LEAF | WSA_FLAG_MULTIPOINT_D_LEAF;
/// The root's `listen` backlog.
const BACKLOG: i32 = 16;

/// One RMP message: header and body (docs/rmp.md §2).
fn msg(ty: u8, body: &[u8]) -> Vec<u8> {
    let mut m = vec![b'R', b'M', 1, ty, 0, 0];
    m.extend_from_slice(&u32::try_from(body.len()).unwrap().to_be_bytes());
    m.extend_from_slice(body);
    m
}

/// HELLO from a leaf on the rooted plane: versions 1..=1, role leaf (2), plane rooted (1).
fn hello() -> Vec<u8> {
    hello_on(1)
}

/// HELLO from a leaf on `plane` (1 rooted, 2 non-rooted).
fn hello_on(plane: u8) -> Vec<u8> {
    msg(1, &[1, 1, 2, plane])
}

/// JOIN, leaf-request (2), `JL_BOTH` (4), no QoS, no caller data.
fn join_msg() -> Vec<u8> {
    msg(2, &[2, 4, 0, 0, 0])
}

/// PING (type 9, empty).
fn ping() -> Vec<u8> {
    msg(9, &[])
}

/// `WSASocket(AF_INET, SOCK_RDM, protocol, NULL, 0, flags | WSA_FLAG_OVERLAPPED)` on
/// `protocol`'s entry (`IPPROTO_RMP` rooted, `IPPROTO_RMP_RELAY` non-rooted).
#[track_caller]
fn rmp_socket_on(ws: &Winsock, protocol: i32, flags: u32) -> SOCKET {
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

/// A nonblocking c_root bound to `addr`, listening with [`BACKLOG`].
#[track_caller]
fn listening_root(ws: &Winsock, addr: SocketAddrV4) -> SOCKET {
    listening_root_on(ws, IPPROTO_RMP, ROOT, addr)
}

/// [`listening_root`] on `protocol`'s entry with `flags`.
#[track_caller]
fn listening_root_on(ws: &Winsock, protocol: i32, flags: u32, addr: SocketAddrV4) -> SOCKET {
    let s = rmp_socket_on(ws, protocol, flags);
    bind(ws, s, addr).expect("bind c_root");
    ws.listen(s, BACKLOG).expect("listen on c_root");
    try_nonblocking(ws, s);
    s
}

/// `accept` on the nonblocking listening root, run until a request is there.
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

/// A leaf on `ws` joins the root at `to` (nonblocking); the root accepts. Returns (the leaf's
/// socket, the root's c_leaf socket for it).
#[track_caller]
fn leaf_joins(
    sim: &mut Sim,
    ws: &Winsock,
    root_ws: &Winsock,
    r: SOCKET,
    to: SocketAddrV4,
) -> (SOCKET, SOCKET) {
    leaf_joins_on(sim, IPPROTO_RMP, ws, root_ws, r, to)
}

/// [`leaf_joins`] on `protocol`'s entry.
#[track_caller]
fn leaf_joins_on(
    sim: &mut Sim,
    protocol: i32,
    ws: &Winsock,
    root_ws: &Winsock,
    r: SOCKET,
    to: SocketAddrV4,
) -> (SOCKET, SOCKET) {
    let s = rmp_socket_on(ws, protocol, LEAF);
    try_nonblocking(ws, s);
    assert_eq!(join_leaf_to(ws, s, to, JL_BOTH), Ok(s));
    let c_leaf = accept_one(sim, root_ws, r);
    // The leaf's join completes once ACCEPT is in: its receive answers "nothing yet".
    let mut buf = [0u8; 16];
    let joined = sim.run_until(WAIT, |_| {
        matches!(ws.recv(s, &mut buf, 0), Err(WsaError::WSAEWOULDBLOCK))
    });
    assert!(joined, "the leaf's join completes");
    (s, c_leaf)
}

/// `n` nonblocking TCP sockets on `ws` connecting to `to`.
fn raw_connects(ws: &Winsock, to: SocketAddrV4, n: usize) -> Vec<SOCKET> {
    (0..n)
        .map(|_| {
            let s = new_socket(ws, SOCK_STREAM);
            set_nonblocking(ws, s, true);
            match connect(ws, s, to) {
                Ok(()) | Err(WsaError::WSAEWOULDBLOCK) => {}
                Err(e) => panic!("connect: {e:?}"),
            }
            s
        })
        .collect()
}

/// Sends `bytes` on each of `socks` whose connect completed (a nonblocking connect is
/// finished once `select` finds the socket writable); returns on how many it went out.
/// Failures are ignored (a connection the root reset or refused).
fn send_each(ws: &Winsock, socks: &[SOCKET], bytes: &[u8]) -> usize {
    socks
        .iter()
        .filter(|&&s| poll_one(ws, s, 0).1 && ws.send(s, bytes, 0).is_ok())
        .count()
}

/// The root's engine: sockets in its table and smoltcp sockets alive.
fn counts(stack: &Stack) -> (u64, u64) {
    let st = stack.stats();
    (st.sockets, st.smoltcp_sockets)
}

/// 300 TCP connections to a listening root that say HELLO and PING every second but never
/// send JOIN (docs/rmp.md §12): the root holds at most its backlog (16) of them — the table
/// and smoltcp's socket set stay bounded, not 300 — a real leaf joining during the flood is
/// accepted, and at the join deadline (30 s) every place the flood held is free again.
/// A TCP listener likewise holds at most its backlog and resets the rest (the kernel's
/// `somaxconn`, Windows' `SOMAXCONN`).
#[test]
fn a_flood_of_connections_without_join_is_bounded_and_a_leaf_still_joins() {
    let mut sim = Sim::new(13_100);
    let a_stack = sim.host(config(A));
    let a = sim.winsock(&a_stack);
    let b = sim.host(config(B));
    let b = sim.winsock(&b);
    let c = sim.host(config(C));
    let c = sim.winsock(&c);
    let port = 13_100;
    let r = listening_root(&a, at(A, port));
    sim.run_for(Duration::from_millis(100));
    let (base_socks, base_smol) = counts(&a_stack);
    let mut max = (0, 0);
    let mut sample = |stack: &Stack| {
        let (s, m) = counts(stack);
        max = (max.0.max(s), max.1.max(m));
    };

    // In waves of 8, as fast as the root's TCP listen pool (16) refills; each connection
    // says HELLO as soon as its handshake is done.
    let mut flood = Vec::new();
    let mut connected = 0;
    while flood.len() < 300 {
        let wave = raw_connects(&b, at(A, port), 8.min(300 - flood.len()));
        sim.run_for(Duration::from_millis(10));
        sample(&a_stack);
        connected += send_each(&b, &wave, &hello());
        flood.extend(wave);
    }
    sim.run_for(Duration::from_millis(200));
    sample(&a_stack);
    // A connection still up has the root's HELLO to read, or nothing yet; a reset one says so.
    let mut buf = [0u8; 64];
    let mut reset = 0;
    let mut up = 0;
    for &s in &flood {
        match b.recv(s, &mut buf, 0) {
            Ok(n) if n > 0 => up += 1,
            Err(WsaError::WSAEWOULDBLOCK) => up += 1,
            Err(WsaError::WSAECONNRESET) => reset += 1,
            r => panic!("a flood connection: {r:?}"),
        }
    }
    assert_eq!(reset + up, 300);
    eprintln!(
        "of the flood's 300 connections {connected} were established, {up} are still up, \
         {reset} were reset"
    );
    assert!(
        connected > 2 * BACKLOG as usize,
        "the flood reached the root: {connected}"
    );
    assert!(
        up <= BACKLOG as usize,
        "the root keeps at most its backlog: {up}"
    );
    for _ in 0..4 {
        sim.run_for(Duration::from_millis(200));
        sample(&a_stack);
        send_each(&b, &flood, &ping());
    }
    // A real leaf joins during the flood.
    let (leaf, c_leaf) = leaf_joins(&mut sim, &c, &a, r, at(A, port));
    for _ in 0..5 {
        send_each(&b, &flood, &ping());
        sim.run_for(Duration::from_millis(200));
        sample(&a_stack);
    }
    eprintln!(
        "during the flood: {} sockets, {} smoltcp sockets at the root (base {base_socks}, \
         {base_smol}; max {:?})",
        counts(&a_stack).0,
        counts(&a_stack).1,
        max
    );
    // The table: c_root, its TCP listener, at most BACKLOG offered connections, the leaf's
    // c_leaf socket and its TCP connection. smoltcp: the listen pool (BACKLOG), the offered
    // connections, the leaf's, and a few resets on their way out.
    let backlog = BACKLOG as u64;
    assert!(
        max.0 <= base_socks + backlog + 2,
        "sockets at the root: {} (base {base_socks})",
        max.0
    );
    assert!(
        max.1 <= base_smol + backlog + 2 + 32,
        "smoltcp sockets at the root: {} (base {base_smol})",
        max.1
    );
    send_msg(&mut sim, &a, r, b"the leaf is in");
    assert_eq!(next_msg(&mut sim, &c, leaf), b"the leaf is in");

    // The survivors keep PINGing; at 30 s from their start the join deadline closes them.
    for _ in 0..35 {
        send_each(&b, &flood, &ping());
        sim.run_for(Duration::from_secs(1));
    }
    sim.run_for(Duration::from_secs(2));
    let (socks, _) = counts(&a_stack);
    assert_eq!(
        socks,
        base_socks + 2,
        "after the join deadline only the leaf's two sockets are added"
    );
    // The leaf is unharmed.
    send_msg(&mut sim, &a, c_leaf, b"still here");
    assert_eq!(next_msg(&mut sim, &c, leaf), b"still here");
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

/// The next message on `s` within `WAIT`.
#[track_caller]
fn next_msg(sim: &mut Sim, ws: &Winsock, s: SOCKET) -> Vec<u8> {
    try_nonblocking(ws, s);
    let mut buf = vec![0u8; 70_000];
    let mut got = None;
    sim.run_until(WAIT, |_| {
        got = match ws.recv(s, &mut buf, 0) {
            Err(WsaError::WSAEWOULDBLOCK) => None,
            r => Some(r),
        };
        got.is_some()
    });
    let n = got
        .unwrap_or_else(|| panic!("no message within {WAIT:?}"))
        .expect("recv");
    buf[..n as usize].to_vec()
}

/// A hostile leaf over plain TCP from `ws`: HELLO and JOIN, admitted by the root's `accept`.
/// Returns (its TCP socket, the root's c_leaf socket for it).
#[track_caller]
fn hostile_leaf(
    sim: &mut Sim,
    ws: &Winsock,
    root_ws: &Winsock,
    r: SOCKET,
    to: SocketAddrV4,
) -> (SOCKET, SOCKET) {
    hostile_leaf_on(sim, 1, ws, root_ws, r, to)
}

/// [`hostile_leaf`] on `plane` (1 rooted, 2 non-rooted).
#[track_caller]
fn hostile_leaf_on(
    sim: &mut Sim,
    plane: u8,
    ws: &Winsock,
    root_ws: &Winsock,
    r: SOCKET,
    to: SocketAddrV4,
) -> (SOCKET, SOCKET) {
    let s = raw_connects(ws, to, 1)[0];
    let mut first = hello_on(plane);
    first.extend(join_msg());
    assert!(
        sim.run_until(WAIT, |_| poll_one(ws, s, 0).1),
        "the hostile leaf's TCP connection is up"
    );
    assert_eq!(ws.send(s, &first, 0), Ok(first.len() as i32));
    let c_leaf = accept_one(sim, root_ws, r);
    (s, c_leaf)
}

/// 20 MB of PINGs from a joined leaf that never reads the PONGs (docs/rmp.md §12): the root
/// reads them all, at most one PONG (and one PING of its own) waits for TCP, and the PONGs
/// that reach the leaf are coalesced — where an answer per PING filled the leaf's window and
/// then queued 20 MB at the root. The kernel's analogue: an ICMP echo or a TCP ACK
/// is not queued without bound for a peer that does not read either.
#[test]
fn unread_pongs_to_a_ping_flood_stay_bounded() {
    let mut sim = Sim::new(13_200);
    let a_stack = sim.host(config(A));
    let a = sim.winsock(&a_stack);
    let b = sim.host(config(B));
    let b = sim.winsock(&b);
    let port = 13_200;
    let r = listening_root(&a, at(A, port));
    let (s, c_leaf) = hostile_leaf(&mut sim, &b, &a, r, at(A, port));
    let ev = a.WSACreateEvent().expect("WSACreateEvent");
    a.WSAEventSelect(c_leaf, ev, FD_CLOSE)
        .expect("WSAEventSelect");

    const TOTAL: usize = 20_000_000;
    let chunk = ping().repeat(6_400); // 64,000 bytes
    let mut sent = 0usize;
    let mut max_queued = 0u64;
    let mut closed = None;
    sim.run_until(Duration::from_secs(600), |_| {
        while sent < TOTAL {
            // A partial send leaves the rest of a PING for the next one.
            match b.send(s, &chunk[sent % chunk.len()..], 0) {
                Ok(n) => sent += n as usize,
                Err(WsaError::WSAEWOULDBLOCK) => break,
                Err(e) => panic!("the PING flood's send failed: {e:?} after {sent} bytes"),
            }
        }
        max_queued = max_queued.max(a_stack.stats().rmp_queued);
        let ne = network_events(&a, c_leaf, ev);
        if ne.lNetworkEvents & FD_CLOSE != 0 {
            closed = Some(ne.iErrorCode[FD_CLOSE_BIT]);
        }
        sent >= TOTAL || closed.is_some()
    });
    eprintln!(
        "{sent} bytes of PINGs sent; the root queued at most {max_queued} bytes; c_leaf \
         closed: {closed:?}"
    );
    assert!(
        max_queued <= 20,
        "one PONG and one PING at most, not {max_queued} bytes"
    );
    // What reached the hostile leaf: coalesced PONGs (about one per read of the PINGs), far
    // fewer than one per PING — which would have filled its 64 KiB window after 6,554 PINGs.
    let pongs = fionread(&b, s) as usize;
    eprintln!("{pongs} bytes of PONGs wait unread at the hostile leaf");
    assert!(
        pongs < 32 * 1024,
        "{pongs} bytes of PONGs for {sent} of PINGs"
    );
    // The root kept reading the whole flood: the PONGs it owed never filled anything.
    assert_eq!(closed, None, "the leaf stays");
    assert!(sent >= TOTAL);
}

/// One stalled leaf among three (docs/rmp.md §12): the hostile leaf is admitted, then PINGs
/// every 500 ms to stay alive and never reads. The root sends 3 MiB; the two honest leaves
/// receive every message in order, the stalled one falls behind and past 1 MiB queued the
/// root resets it: its c_leaf socket gets `FD_CLOSE` with `WSAECONNABORTED`.
#[test]
fn a_stalled_leaf_does_not_stop_the_others_and_is_dropped() {
    let mut sim = Sim::new(13_300);
    let a_stack = sim.host(config(A));
    let a = sim.winsock(&a_stack);
    let b = sim.host(config(B));
    let b = sim.winsock(&b);
    let c = sim.host(config(C));
    let c = sim.winsock(&c);
    let d = sim.host(config(D));
    let d = sim.winsock(&d);
    let port = 13_300;
    let r = listening_root(&a, at(A, port));
    let (lc, _) = leaf_joins(&mut sim, &c, &a, r, at(A, port));
    let (hostile, c_hostile) = hostile_leaf(&mut sim, &b, &a, r, at(A, port));
    let (ld, _) = leaf_joins(&mut sim, &d, &a, r, at(A, port));
    let ev = a.WSACreateEvent().expect("WSACreateEvent");
    a.WSAEventSelect(c_hostile, ev, FD_CLOSE)
        .expect("WSAEventSelect");

    const N: usize = 192;
    const SIZE: usize = 16 * 1024;
    let message = |i: usize| pattern(SIZE, i as u64);
    let mut sent = 0;
    let mut got = [0usize; 2];
    let mut buf = vec![0u8; 70_000];
    let mut last_ping = Duration::ZERO;
    let mut closed = None;
    let done = sim.run_until(Duration::from_secs(120), |sim| {
        if sim.elapsed() >= last_ping + Duration::from_millis(500) {
            last_ping = sim.elapsed();
            let _ = b.send(hostile, &ping(), 0);
        }
        while sent < N {
            match a.send(r, &message(sent), 0) {
                Ok(n) => {
                    assert_eq!(n as usize, SIZE);
                    sent += 1;
                }
                Err(WsaError::WSAEWOULDBLOCK) => break,
                Err(e) => panic!("the root's send failed: {e:?}"),
            }
        }
        for (k, (ws, s)) in [(&c, lc), (&d, ld)].into_iter().enumerate() {
            loop {
                match ws.recv(s, &mut buf, 0) {
                    Ok(n) => {
                        assert_eq!(buf[..n as usize], message(got[k]), "leaf {k} in order");
                        got[k] += 1;
                    }
                    Err(WsaError::WSAEWOULDBLOCK) => break,
                    Err(e) => panic!(
                        "honest leaf {k}: {e:?} at {:?}, sent {sent}, got {got:?}",
                        sim.elapsed()
                    ),
                }
            }
        }
        let ne = network_events(&a, c_hostile, ev);
        if ne.lNetworkEvents & FD_CLOSE != 0 {
            closed = Some(ne.iErrorCode[FD_CLOSE_BIT]);
        }
        got == [N, N] && closed.is_some()
    });
    eprintln!(
        "sent {sent}, honest leaves got {got:?}, stalled leaf closed {closed:?}; root queue \
         now {} bytes",
        a_stack.stats().rmp_queued
    );
    assert!(done, "sent {sent}, got {got:?}, closed {closed:?}");
    assert_eq!(closed, Some(WsaError::WSAECONNABORTED.0));
    // The stalled leaf's TCP connection was reset: its next receive reports it once the data
    // it had is read.
    let mut reset = false;
    sim.run_until(WAIT, |_| {
        reset = matches!(
            b.recv(hostile, &mut buf, 0),
            Err(WsaError::WSAECONNRESET | WsaError::WSAECONNABORTED)
        );
        reset
    });
    assert!(reset, "the stalled leaf's connection is reset");
}

/// A leaf that stops reading while the root sends only a little (under the 1 MiB limit) is
/// dropped after 10 s without TCP taking a byte from its queue (docs/rmp.md §12), and the other
/// leaf is served meanwhile.
#[test]
fn a_stalled_leaf_is_dropped_after_the_stall_time() {
    let mut sim = Sim::new(13_400);
    let a_stack = sim.host(config(A));
    let a = sim.winsock(&a_stack);
    let b = sim.host(config(B));
    let b = sim.winsock(&b);
    let c = sim.host(config(C));
    let c = sim.winsock(&c);
    let port = 13_400;
    let r = listening_root(&a, at(A, port));
    let (lc, _) = leaf_joins(&mut sim, &c, &a, r, at(A, port));
    let (hostile, c_hostile) = hostile_leaf(&mut sim, &b, &a, r, at(A, port));
    let ev = a.WSACreateEvent().expect("WSACreateEvent");
    a.WSAEventSelect(c_hostile, ev, FD_CLOSE)
        .expect("WSAEventSelect");
    // 320 KiB: more than the stalled leaf's TCP windows take, less than the 1 MiB limit.
    const N: usize = 20;
    for i in 0..N {
        send_msg(&mut sim, &a, r, &pattern(16 * 1024, i as u64));
        assert_eq!(next_msg(&mut sim, &c, lc), pattern(16 * 1024, i as u64));
    }
    let start = sim.elapsed();
    let mut closed = None;
    let mut last_ping = Duration::ZERO;
    sim.run_until(Duration::from_secs(60), |sim| {
        if sim.elapsed() >= last_ping + Duration::from_millis(500) {
            last_ping = sim.elapsed();
            let _ = b.send(hostile, &ping(), 0);
        }
        let ne = network_events(&a, c_hostile, ev);
        if ne.lNetworkEvents & FD_CLOSE != 0 {
            closed = Some(ne.iErrorCode[FD_CLOSE_BIT]);
        }
        closed.is_some()
    });
    let after = sim.elapsed() - start;
    eprintln!("stalled leaf dropped {after:?} after the last send: {closed:?}");
    assert_eq!(closed, Some(WsaError::WSAECONNABORTED.0));
    assert!(
        after >= Duration::from_secs(9),
        "not before the stall time: {after:?}"
    );
    assert_eq!(a_stack.stats().rmp_queued, 0, "its queue is gone");
    // The other leaf carries on.
    send_msg(&mut sim, &a, r, b"C carries on");
    assert_eq!(next_msg(&mut sim, &c, lc), b"C carries on");
}

/// The non-rooted plane (docs/rmp.md §6, §12): leaf C's data is relayed by the root to every
/// other receiving leaf. A hostile leaf that stops reading (and PINGs) does not hold back the
/// relays to honest leaf D nor C's sends, and is dropped past the slow-leaf limit; the root
/// reads all of C's data too.
#[test]
fn relays_go_on_past_a_stalled_leaf_which_is_dropped() {
    let mut sim = Sim::new(13_500);
    let a_stack = sim.host(config(A));
    let a = sim.winsock(&a_stack);
    let b = sim.host(config(B));
    let b = sim.winsock(&b);
    let c = sim.host(config(C));
    let c = sim.winsock(&c);
    let d = sim.host(config(D));
    let d = sim.winsock(&d);
    let port = 13_500;
    // c_root + d_leaf: D_ROOT needs the rooted data plane.
    let relay_root = WSA_FLAG_MULTIPOINT_C_ROOT | WSA_FLAG_MULTIPOINT_D_LEAF;
    let r = listening_root_on(&a, IPPROTO_RMP_RELAY, relay_root, at(A, port));
    let (lc, _) = leaf_joins_on(&mut sim, IPPROTO_RMP_RELAY, &c, &a, r, at(A, port));
    let (hostile, c_hostile) = hostile_leaf_on(&mut sim, 2, &b, &a, r, at(A, port));
    let (ld, _) = leaf_joins_on(&mut sim, IPPROTO_RMP_RELAY, &d, &a, r, at(A, port));
    let ev = a.WSACreateEvent().expect("WSACreateEvent");
    a.WSAEventSelect(c_hostile, ev, FD_CLOSE)
        .expect("WSAEventSelect");

    const N: usize = 192;
    const SIZE: usize = 16 * 1024;
    let message = |i: usize| pattern(SIZE, 1000 + i as u64);
    let mut sent = 0;
    // Messages read at the root and at D.
    let mut got = [0usize; 2];
    let mut buf = vec![0u8; 70_000];
    let mut last_ping = Duration::ZERO;
    let mut closed = None;
    let done = sim.run_until(Duration::from_secs(120), |sim| {
        if sim.elapsed() >= last_ping + Duration::from_millis(500) {
            last_ping = sim.elapsed();
            let _ = b.send(hostile, &ping(), 0);
        }
        while sent < N {
            match c.send(lc, &message(sent), 0) {
                Ok(n) => {
                    assert_eq!(n as usize, SIZE);
                    sent += 1;
                }
                Err(WsaError::WSAEWOULDBLOCK) => break,
                Err(e) => panic!("leaf C's send failed: {e:?}"),
            }
        }
        for (k, (ws, s)) in [(&a, r), (&d, ld)].into_iter().enumerate() {
            loop {
                match ws.recv(s, &mut buf, 0) {
                    Ok(n) => {
                        assert_eq!(buf[..n as usize], message(got[k]), "reader {k} in order");
                        got[k] += 1;
                    }
                    Err(WsaError::WSAEWOULDBLOCK) => break,
                    Err(e) => panic!("reader {k}: {e:?}, sent {sent}, got {got:?}"),
                }
            }
        }
        let ne = network_events(&a, c_hostile, ev);
        if ne.lNetworkEvents & FD_CLOSE != 0 {
            closed = Some(ne.iErrorCode[FD_CLOSE_BIT]);
        }
        got == [N, N] && closed.is_some()
    });
    eprintln!(
        "C sent {sent}, the root and D got {got:?}, the stalled leaf closed {closed:?}; root \
         queue now {} bytes",
        a_stack.stats().rmp_queued
    );
    assert!(done, "sent {sent}, got {got:?}, closed {closed:?}");
    assert_eq!(closed, Some(WsaError::WSAECONNABORTED.0));
}

/// The other side of the slow-leaf rule (docs/rmp.md §12): a leaf that reads, only slowly (at
/// most a 16 KiB message every 20 ms, and once the root is done, one a second), is not
/// dropped. While TCP keeps taking its bytes it paces the root, like TCP's one receiver; the
/// root's PINGs waiting unread in its TCP keep the root alive in its eyes (§7); every leaf gets
/// every message.
#[test]
fn a_leaf_that_reads_slowly_paces_the_root_and_stays() {
    let mut sim = Sim::new(13_600);
    let a_stack = sim.host(config(A));
    let a = sim.winsock(&a_stack);
    let c = sim.host(config(C));
    let c = sim.winsock(&c);
    let d = sim.host(config(D));
    let d = sim.winsock(&d);
    let port = 13_600;
    let r = listening_root(&a, at(A, port));
    let (lc, c_fast) = leaf_joins(&mut sim, &c, &a, r, at(A, port));
    let (ld, c_slow) = leaf_joins(&mut sim, &d, &a, r, at(A, port));
    let ev_fast = a.WSACreateEvent().expect("WSACreateEvent");
    a.WSAEventSelect(c_fast, ev_fast, FD_CLOSE)
        .expect("WSAEventSelect");
    let ev_slow = a.WSACreateEvent().expect("WSACreateEvent");
    a.WSAEventSelect(c_slow, ev_slow, FD_CLOSE)
        .expect("WSAEventSelect");

    const N: usize = 192;
    const SIZE: usize = 16 * 1024;
    let message = |i: usize| pattern(SIZE, 2000 + i as u64);
    let mut sent = 0;
    let mut got = [0usize; 2];
    let mut buf = vec![0u8; 70_000];
    let mut last_slow_read = Duration::ZERO;
    let done = sim.run_until(Duration::from_secs(120), |sim| {
        while sent < N {
            match a.send(r, &message(sent), 0) {
                Ok(_) => sent += 1,
                Err(WsaError::WSAEWOULDBLOCK) => break,
                Err(e) => panic!("the root's send failed: {e:?}"),
            }
        }
        for (k, (ws, s)) in [(&c, lc), (&d, ld)].into_iter().enumerate() {
            if k == 1 {
                if sim.elapsed() < last_slow_read + Duration::from_millis(20) {
                    continue;
                }
                last_slow_read = sim.elapsed();
            }
            loop {
                match ws.recv(s, &mut buf, 0) {
                    Ok(n) => {
                        assert_eq!(buf[..n as usize], message(got[k]), "leaf {k} in order");
                        got[k] += 1;
                    }
                    Err(WsaError::WSAEWOULDBLOCK) => break,
                    Err(e) => panic!("leaf {k}: {e:?}, sent {sent}, got {got:?}"),
                }
                if k == 1 {
                    break; // one message per turn
                }
            }
        }
        got == [N, N]
    });
    eprintln!(
        "sent {sent}, got {got:?} by {:?}; root queue {} bytes",
        sim.elapsed(),
        a_stack.stats().rmp_queued
    );
    assert!(done, "sent {sent}, got {got:?}");
    for (ev, s, who) in [(ev_fast, c_fast, "fast"), (ev_slow, c_slow, "slow")] {
        let ne = network_events(&a, s, ev);
        assert_eq!(
            ne.lNetworkEvents & FD_CLOSE,
            0,
            "the {who} leaf stays: {ne:?}"
        );
    }
}
