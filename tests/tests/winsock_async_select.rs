//! CHECKLIST Part 2 groups I (blocking-mode interplay) and J: `WSAAsyncSelect`,
//! `WSAEventSelect` and `WSAEnumNetworkEvents` (Part 1 §1.6.1, §1.6.3–§1.6.5, D-20, D-34).
//!
//! Waits for things that must happen are generous (5 s); checks that nothing more arrives use a
//! short quiet period. Every network is an in-process `VirtualSwitch`.

use std::thread;
use std::time::{Duration, Instant};

use ws2_stack::winsock::*;
use ws2_stack::WsaError;
use ws2_tests::*;

/// How long something that must happen may take.
const WAIT: Duration = Duration::from_secs(5);
/// How long to watch for something that must not happen.
const QUIET: Duration = Duration::from_millis(250);
/// `WAIT` in milliseconds, for `WSAWaitForMultipleEvents`.
const WAIT_MS: u32 = 5000;
/// A `wMsg` (`WM_USER` + n).
const WM_SOCK: u32 = 0x0400 + 1;
/// Another `wMsg`.
const WM_SOCK2: u32 = 0x0400 + 2;

// ---- helpers --------------------------------------------------------------------------------

/// The event of a notification.
fn event_of(m: &MSG) -> i32 {
    i32::from(WSAGETSELECTEVENT(m.lParam))
}

/// The error of a notification.
fn error_of(m: &MSG) -> i32 {
    i32::from(WSAGETSELECTERROR(m.lParam))
}

/// The next message, waiting up to `WAIT`.
#[track_caller]
fn next_msg(q: &MessageQueue, what: &str) -> MSG {
    q.GetMessage(Some(WAIT))
        .unwrap_or_else(|| panic!("no message within {WAIT:?}: expected {what}"))
}

/// The next message, which must be `event` for `s` with `wMsg` and `error`.
#[track_caller]
fn expect_msg(q: &MessageQueue, s: SOCKET, wmsg: u32, event: i32, error: i32) -> MSG {
    let m = next_msg(q, &format!("event {event:#x} for socket {s}"));
    assert_eq!(m.hwnd, q.hwnd(), "posted to the registered window");
    assert_eq!(m.wParam, s, "wParam is the socket");
    assert_eq!(m.message, wmsg, "the registered wMsg");
    assert_eq!(
        (event_of(&m), error_of(&m)),
        (event, error),
        "(event, error) of the notification"
    );
    m
}

/// Every message that arrives until the queue has been quiet for `QUIET`.
fn drain_quiet(q: &MessageQueue) -> Vec<MSG> {
    let mut out = Vec::new();
    while let Some(m) = q.GetMessage(Some(QUIET)) {
        out.push(m);
    }
    out
}

/// Asserts that no message arrives for `QUIET`.
#[track_caller]
fn assert_quiet(q: &MessageQueue, why: &str) {
    let got: Vec<(usize, i32, i32)> = drain_quiet(q)
        .iter()
        .map(|m| (m.wParam, event_of(m), error_of(m)))
        .collect();
    assert!(
        got.is_empty(),
        "{why}: unexpected (socket, event, error) {got:?}"
    );
}

/// Whether `ev` is signaled within `ms`.
fn signaled(ws: &Winsock, ev: WSAEVENT, ms: u32) -> bool {
    match ws.WSAWaitForMultipleEvents(&[ev], false, ms, false) {
        Ok(WSA_WAIT_EVENT_0) => true,
        Ok(WSA_WAIT_TIMEOUT) => false,
        other => panic!("WSAWaitForMultipleEvents: {other:?}"),
    }
}

/// Sends `data` from the peer and waits until all of it is queued at `s` (`FIONREAD`), so
/// whatever notification its arrival causes has been produced.
#[track_caller]
fn deliver(from: &Winsock, c: SOCKET, to: &Winsock, s: SOCKET, data: &[u8]) {
    let before = fionread(to, s) as usize;
    send_all(from, c, data);
    assert!(
        wait_until(WAIT, || fionread(to, s) as usize >= before + data.len()),
        "data arrived"
    );
}

/// A `recv` on `s` must not block but fail `WSAEWOULDBLOCK` (also in that thread's
/// `WSAGetLastError`): runs it on a thread and, if it is still waiting after `WAIT`, unblocks
/// it by sending a byte from the peer and fails.
#[track_caller]
fn assert_recv_would_block(ws: &Winsock, s: SOCKET, peer: &Winsock, pc: SOCKET) {
    let w = ws.clone();
    let t = thread::spawn(move || {
        let mut buf = [0u8; 16];
        let r = w.recv(s, &mut buf, 0);
        (r, WSAGetLastError())
    });
    if !wait_until(WAIT, || t.is_finished()) {
        send_all(peer, pc, b"!");
        let _ = t.join();
        panic!("recv blocked: the socket is in blocking mode");
    }
    let (r, last) = t.join().expect("recv thread");
    assert_eq!(r, Err(WsaError::WSAEWOULDBLOCK));
    assert_eq!(last, WsaError::WSAEWOULDBLOCK.0);
}

/// The socket blocks: a `recv` waits until the peer sends.
#[track_caller]
fn assert_blocks(ws: &Winsock, s: SOCKET, peer: &Winsock, pc: SOCKET) {
    let w = ws.clone();
    let started = Instant::now();
    let t = thread::spawn(move || {
        let mut buf = [0u8; 16];
        w.recv(s, &mut buf, 0)
    });
    thread::sleep(Duration::from_millis(300));
    assert!(!t.is_finished(), "recv waits for data on a blocking socket");
    send_all(peer, pc, b"wake");
    assert_eq!(t.join().expect("recv thread"), Ok(4));
    assert!(started.elapsed() >= Duration::from_millis(250));
}

/// Sends from a registered (non-blocking) socket until a send fails `WSAEWOULDBLOCK`;
/// returns the bytes queued.
#[track_caller]
fn fill_send_buffer(ws: &Winsock, c: SOCKET) -> usize {
    let chunk = vec![0x5au8; 16 * 1024];
    let mut total = 0usize;
    loop {
        match ws.send(c, &chunk, 0) {
            Ok(n) => total += n as usize,
            Err(WsaError::WSAEWOULDBLOCK) => return total,
            Err(e) => panic!("send: {e:?}"),
        }
        assert!(total < 64 << 20, "the send buffer never filled");
    }
}

// ---- §1.6.1: blocking mode ------------------------------------------------------------------

/// Conformance: 226 — `WSAAsyncSelect(s, h, m, 0)` still switches `s` to nonblocking mode.
#[test]
fn async_select_zero_mask_makes_nonblocking() {
    let (a, b) = two_hosts(226);
    let (c, s) = tcp_pair(&a, &b, 22600);
    let q = MessageQueue::new();
    b.WSAAsyncSelect(s, q.hwnd(), WM_SOCK, 0)
        .expect("WSAAsyncSelect(0)");
    assert_recv_would_block(&b, s, &a, c);
    // A nonblocking connect reports WSAEWOULDBLOCK too.
    let l = listener(&b, at(B, 22601), 4);
    let c2 = new_socket(&a, SOCK_STREAM);
    a.WSAAsyncSelect(c2, q.hwnd(), WM_SOCK, 0)
        .expect("WSAAsyncSelect(0)");
    assert_would_block(connect(&a, c2, at(B, 22601)));
    let _ = l;
    assert_quiet(&q, "an empty mask asks for nothing");
}

/// Conformance: 227 — `WSAEventSelect(s, ev, FD_READ)` switches `s` to nonblocking mode.
#[test]
fn event_select_makes_nonblocking() {
    let (a, b) = two_hosts(227);
    let (c, s) = tcp_pair(&a, &b, 22700);
    let ev = b.WSACreateEvent().expect("event");
    b.WSAEventSelect(s, ev, FD_READ).expect("WSAEventSelect");
    assert_recv_would_block(&b, s, &a, c);
}

/// Conformance: 228 — `ioctlsocket(FIONBIO, 0)` while a `WSAAsyncSelect` or `WSAEventSelect` registration is active fails with `WSAEINVAL`.
#[test]
fn fionbio_off_while_registered_fails() {
    let (a, b) = two_hosts(228);
    let (c, s) = tcp_pair(&a, &b, 22800);
    let (c2, s2) = tcp_pair(&a, &b, 22801);
    let q = MessageQueue::new();
    b.WSAAsyncSelect(s, q.hwnd(), WM_SOCK, FD_READ)
        .expect("WSAAsyncSelect");
    let ev = b.WSACreateEvent().expect("event");
    b.WSAEventSelect(s2, ev, FD_READ).expect("WSAEventSelect");
    for (sock, peer) in [(s, c), (s2, c2)] {
        let mut off = 0u32;
        assert_wsa_error(
            b.ioctlsocket(sock, FIONBIO, Some(&mut off)),
            WsaError::WSAEINVAL,
        );
        // Still nonblocking; FIONBIO nonzero stays allowed.
        assert_recv_would_block(&b, sock, &a, peer);
        let mut on = 1u32;
        b.ioctlsocket(sock, FIONBIO, Some(&mut on))
            .expect("FIONBIO 1 while registered");
    }
}

/// Conformance: 229 — after cancelling the registration with an event mask of 0, `ioctlsocket(FIONBIO, 0)` succeeds and the socket blocks again.
#[test]
fn fionbio_off_after_cancel_blocks_again() {
    let (a, b) = two_hosts(229);
    let (c, s) = tcp_pair(&a, &b, 22900);
    let (c2, s2) = tcp_pair(&a, &b, 22901);
    let q = MessageQueue::new();
    b.WSAAsyncSelect(s, q.hwnd(), WM_SOCK, FD_READ | FD_CLOSE)
        .expect("WSAAsyncSelect");
    b.WSAAsyncSelect(s, q.hwnd(), WM_SOCK, 0).expect("cancel");
    let ev = b.WSACreateEvent().expect("event");
    b.WSAEventSelect(s2, ev, FD_READ).expect("WSAEventSelect");
    // hEventObject is ignored when cancelling.
    b.WSAEventSelect(s2, 0, 0).expect("cancel");
    for (sock, peer) in [(s, c), (s2, c2)] {
        let mut off = 0u32;
        b.ioctlsocket(sock, FIONBIO, Some(&mut off))
            .expect("FIONBIO 0 after cancel");
        assert_blocks(&b, sock, &a, peer);
    }
}

/// Conformance: 249 — calling `select` does not consume or suppress a pending `WSAAsyncSelect`/`WSAEventSelect` indication.
#[test]
fn select_leaves_indications_alone() {
    let (a, b) = two_hosts(249);
    let (c, s) = tcp_pair(&a, &b, 24900);
    let (c2, s2) = tcp_pair(&a, &b, 24901);
    let q = MessageQueue::new();
    b.WSAAsyncSelect(s, q.hwnd(), WM_SOCK, FD_READ)
        .expect("WSAAsyncSelect");
    let ev = b.WSACreateEvent().expect("event");
    b.WSAEventSelect(s2, ev, FD_READ).expect("WSAEventSelect");
    send_all(&a, c, b"async");
    send_all(&a, c2, b"event");
    assert!(wait_readable(&b, s, 5000), "select sees the data");
    assert!(wait_readable(&b, s2, 5000), "select sees the data");
    assert_eq!(poll_one(&b, s, 0), (true, true, false));
    assert_eq!(poll_one(&b, s2, 0), (true, true, false));
    expect_msg(&q, s, WM_SOCK, FD_READ, 0);
    assert!(signaled(&b, ev, 0), "select did not reset the event");
    assert_eq!(network_events(&b, s2, ev).lNetworkEvents, FD_READ);
    // select is not a re-enabling function: no new FD_READ while the data stays unread.
    for _ in 0..3 {
        assert!(wait_readable(&b, s, 0) && wait_readable(&b, s2, 0));
    }
    assert_quiet(&q, "select does not re-enable FD_READ");
    assert!(!signaled(&b, ev, 300));
    assert_eq!(network_events(&b, s2, ev).lNetworkEvents, 0);
}

// ---- §1.6.3/§1.6.4: registration ------------------------------------------------------------

/// Conformance: 252 — a second `WSAAsyncSelect` replaces the first: after `(m1, FD_READ)` then `(m2, FD_WRITE)` only `FD_WRITE` notifications arrive, with `m2`.
#[test]
fn second_async_select_replaces_first() {
    let (a, b) = two_hosts(252);
    let (c, s) = tcp_pair(&a, &b, 25200);
    let q = MessageQueue::new();
    b.WSAAsyncSelect(s, q.hwnd(), WM_SOCK, FD_READ)
        .expect("first");
    assert_quiet(&q, "no data yet");
    b.WSAAsyncSelect(s, q.hwnd(), WM_SOCK2, FD_WRITE)
        .expect("second");
    expect_msg(&q, s, WM_SOCK2, FD_WRITE, 0);
    deliver(&a, c, &b, s, b"data for nobody");
    assert_quiet(&q, "FD_READ is no longer selected");
    // The second registration is the live one: a would-block send re-arms FD_WRITE, with m2.
    fill_send_buffer(&b, s);
    let mut sink = vec![0u8; 1 << 20];
    let drain = thread::spawn(move || {
        while let Ok(n) = a.recv(c, &mut sink, 0) {
            if n == 0 {
                break;
            }
        }
    });
    let m = next_msg(&q, "FD_WRITE after WSAEWOULDBLOCK");
    assert_eq!((m.message, event_of(&m)), (WM_SOCK2, FD_WRITE));
    b.closesocket(s).expect("close");
    drain.join().expect("drain");
}

/// Conformance: 253 — `WSAEventSelect` replaces a previous `WSAAsyncSelect` (no more messages) and vice versa.
#[test]
fn event_select_and_async_select_replace_each_other() {
    let (a, b) = two_hosts(253);
    let (c, s) = tcp_pair(&a, &b, 25300);
    let q = MessageQueue::new();
    let ev = b.WSACreateEvent().expect("event");
    // WSAAsyncSelect, then WSAEventSelect.
    b.WSAAsyncSelect(s, q.hwnd(), WM_SOCK, FD_READ)
        .expect("WSAAsyncSelect");
    b.WSAEventSelect(s, ev, FD_READ).expect("WSAEventSelect");
    deliver(&a, c, &b, s, b"one");
    assert!(signaled(&b, ev, WAIT_MS), "the event registration is live");
    assert_eq!(network_events(&b, s, ev).lNetworkEvents, FD_READ);
    assert_quiet(&q, "WSAEventSelect replaced WSAAsyncSelect");
    let mut buf = [0u8; 16];
    assert_eq!(b.recv(s, &mut buf, 0), Ok(3));
    // WSAEventSelect, then WSAAsyncSelect.
    b.WSAAsyncSelect(s, q.hwnd(), WM_SOCK, FD_READ)
        .expect("WSAAsyncSelect");
    deliver(&a, c, &b, s, b"two");
    expect_msg(&q, s, WM_SOCK, FD_READ, 0);
    assert!(
        !signaled(&b, ev, 300),
        "WSAAsyncSelect replaced WSAEventSelect"
    );
    assert_eq!(
        network_events(&b, s, ev).lNetworkEvents,
        0,
        "nothing recorded"
    );
}

/// Conformance: 254 — `WSAEventSelect` with a second event object replaces the first; only the second is signalled afterwards.
#[test]
fn second_event_object_replaces_first() {
    let (a, b) = two_hosts(254);
    let (c, s) = tcp_pair(&a, &b, 25400);
    let ev1 = b.WSACreateEvent().expect("event");
    let ev2 = b.WSACreateEvent().expect("event");
    b.WSAEventSelect(s, ev1, FD_READ).expect("first");
    b.WSAEventSelect(s, ev2, FD_READ).expect("second");
    send_all(&a, c, b"x");
    assert!(signaled(&b, ev2, WAIT_MS), "the second event is signalled");
    assert!(!signaled(&b, ev1, 0), "the first event is not");
    assert_eq!(network_events(&b, s, ev2).lNetworkEvents, FD_READ);
    let mut buf = [0u8; 4];
    assert_eq!(b.recv(s, &mut buf, 0), Ok(1));
    send_all(&a, c, b"y");
    assert!(signaled(&b, ev2, WAIT_MS));
    assert!(!signaled(&b, ev1, 0), "still only the second");
}

/// Conformance: 255 — `WSAAsyncSelect` with a window handle that does not exist fails with `WSAEINVAL`.
#[test]
fn async_select_with_no_window_fails() {
    let (a, b) = two_hosts(255);
    let (_c, s) = tcp_pair(&a, &b, 25500);
    assert_wsa_error(
        b.WSAAsyncSelect(s, 0, WM_SOCK, FD_READ),
        WsaError::WSAEINVAL,
    );
    assert_wsa_error(
        b.WSAAsyncSelect(s, 0xdead_beef, WM_SOCK, FD_READ),
        WsaError::WSAEINVAL,
    );
    let destroyed = MessageQueue::new();
    let h = destroyed.hwnd();
    drop(destroyed);
    assert_wsa_error(
        b.WSAAsyncSelect(s, h, WM_SOCK, FD_WRITE),
        WsaError::WSAEINVAL,
    );
}

/// Conformance: 256 — messages already queued when `WSAAsyncSelect(s, h, 0, 0)` or `closesocket` is called are still delivered afterwards.
#[test]
fn queued_messages_survive_cancel_and_close() {
    let (a, b) = two_hosts(256);
    let (_c, s) = tcp_pair(&a, &b, 25600);
    let (c2, s2) = tcp_pair(&a, &b, 25601);
    let q = MessageQueue::new();
    // FD_WRITE holds at once: it is queued by the registration itself.
    b.WSAAsyncSelect(s, q.hwnd(), WM_SOCK, FD_WRITE)
        .expect("WSAAsyncSelect");
    b.WSAAsyncSelect(s, q.hwnd(), 0, 0).expect("cancel");
    // Data already queued: FD_READ is queued by the registration; then the socket is closed.
    deliver(&a, c2, &b, s2, b"queued");
    b.WSAAsyncSelect(s2, q.hwnd(), WM_SOCK2, FD_READ)
        .expect("WSAAsyncSelect");
    b.closesocket(s2).expect("close");
    expect_msg(&q, s, WM_SOCK, FD_WRITE, 0);
    expect_msg(&q, s2, WM_SOCK2, FD_READ, 0);
    assert_quiet(&q, "nothing after cancel and close");
}

/// Conformance: 257 — each notification message carries `wParam` = the socket, exactly one event in `WSAGETSELECTEVENT(lParam)` and the error in `WSAGETSELECTERROR(lParam)`.
#[test]
fn messages_carry_socket_one_event_and_error() {
    let (a, b) = two_hosts(257);
    let (c, s) = tcp_pair(&a, &b, 25700);
    deliver(&a, c, &b, s, b"hello");
    let q = MessageQueue::new();
    b.WSAAsyncSelect(s, q.hwnd(), WM_SOCK, FD_READ | FD_WRITE | FD_CONNECT)
        .expect("WSAAsyncSelect");
    let mut got = drain_quiet(&q);
    assert_eq!(got.len(), 3, "one message per event: {got:?}");
    for m in &got {
        assert_eq!((m.hwnd, m.message, m.wParam), (q.hwnd(), WM_SOCK, s));
        assert_eq!(event_of(m).count_ones(), 1, "exactly one event per message");
        assert_eq!(error_of(m), 0);
        assert_eq!(m.lParam, WSAMAKESELECTREPLY(WSAGETSELECTEVENT(m.lParam), 0));
    }
    got.sort_by_key(event_of);
    let events: Vec<i32> = got.iter().map(event_of).collect();
    assert_eq!(events, [FD_READ, FD_WRITE, FD_CONNECT]);
    // The error travels in the high word: a refused connect.
    let r = new_socket(&a, SOCK_STREAM);
    a.WSAAsyncSelect(r, q.hwnd(), WM_SOCK2, FD_CONNECT)
        .expect("WSAAsyncSelect");
    assert_would_block(connect(&a, r, at(B, 25709)));
    let m = expect_msg(&q, r, WM_SOCK2, FD_CONNECT, WsaError::WSAECONNREFUSED.0);
    assert_eq!(
        m.lParam,
        WSAMAKESELECTREPLY(FD_CONNECT as u16, WsaError::WSAECONNREFUSED.0 as u16)
    );
}

// ---- §1.6.5: FD_READ ------------------------------------------------------------------------

/// Conformance: 258 — registering `FD_READ` while data is already queued produces an `FD_READ` immediately.
#[test]
fn read_registered_with_data_queued() {
    let (a, b) = two_hosts(258);
    let (c, s) = tcp_pair(&a, &b, 25800);
    let (c2, s2) = tcp_pair(&a, &b, 25801);
    deliver(&a, c, &b, s, b"already here");
    deliver(&a, c2, &b, s2, b"already here");
    let q = MessageQueue::new();
    b.WSAAsyncSelect(s, q.hwnd(), WM_SOCK, FD_READ)
        .expect("WSAAsyncSelect");
    expect_msg(&q, s, WM_SOCK, FD_READ, 0);
    let ev = b.WSACreateEvent().expect("event");
    b.WSAEventSelect(s2, ev, FD_READ).expect("WSAEventSelect");
    assert!(signaled(&b, ev, WAIT_MS));
    let ne = network_events(&b, s2, ev);
    assert_eq!(ne.lNetworkEvents, FD_READ);
    assert_eq!(ne.iErrorCode[FD_READ_BIT], 0);
    // The same holds for a datagram socket.
    let u = udp_bound(&b, at(B, 25802));
    let tx = udp_bound(&a, at(A, 25803));
    sendto(&a, tx, b"dgram", at(B, 25802)).expect("sendto");
    assert!(wait_until(WAIT, || fionread(&b, u) == 5));
    b.WSAAsyncSelect(u, q.hwnd(), WM_SOCK2, FD_READ)
        .expect("WSAAsyncSelect");
    expect_msg(&q, u, WM_SOCK2, FD_READ, 0);
}

/// Conformance: 259 — after `FD_READ` is delivered, further arriving data produces no new `FD_READ` until a receive function is called.
#[test]
fn read_not_reposted_until_recv() {
    let (a, b) = two_hosts(259);
    let (c, s) = tcp_pair(&a, &b, 25900);
    let q = MessageQueue::new();
    b.WSAAsyncSelect(s, q.hwnd(), WM_SOCK, FD_READ)
        .expect("WSAAsyncSelect");
    assert_quiet(&q, "no data yet");
    send_all(&a, c, b"first");
    expect_msg(&q, s, WM_SOCK, FD_READ, 0);
    deliver(&a, c, &b, s, b"second");
    deliver(&a, c, &b, s, b"third");
    assert_quiet(&q, "no FD_READ before a recv");
    let mut buf = [0u8; 4];
    assert_eq!(b.recv(s, &mut buf, 0), Ok(4));
    expect_msg(&q, s, WM_SOCK, FD_READ, 0);
    // The same with the event model.
    let (c2, s2) = tcp_pair(&a, &b, 25901);
    let ev = b.WSACreateEvent().expect("event");
    b.WSAEventSelect(s2, ev, FD_READ).expect("WSAEventSelect");
    send_all(&a, c2, b"first");
    assert!(signaled(&b, ev, WAIT_MS));
    assert_eq!(network_events(&b, s2, ev).lNetworkEvents, FD_READ);
    deliver(&a, c2, &b, s2, b"second");
    assert!(!signaled(&b, ev, 300), "no FD_READ before a recv");
    assert_eq!(network_events(&b, s2, ev).lNetworkEvents, 0);
    assert_eq!(b.recv(s2, &mut buf, 0), Ok(4));
    assert!(signaled(&b, ev, WAIT_MS), "the recv re-enabled FD_READ");
    assert_eq!(network_events(&b, s2, ev).lNetworkEvents, FD_READ);
}

/// Conformance: 260 — with 100 bytes queued, one `recv` of 50 bytes after `FD_READ` produces exactly one new `FD_READ`.
#[test]
fn read_is_level_triggered() {
    let (a, b) = two_hosts(260);
    let (c, s) = tcp_pair(&a, &b, 26000);
    let data = pattern(100, 260);
    deliver(&a, c, &b, s, &data);
    let q = MessageQueue::new();
    b.WSAAsyncSelect(s, q.hwnd(), WM_SOCK, FD_READ)
        .expect("WSAAsyncSelect");
    expect_msg(&q, s, WM_SOCK, FD_READ, 0);
    assert_quiet(&q, "one FD_READ for the queued data");
    let mut buf = [0u8; 50];
    assert_eq!(b.recv(s, &mut buf, 0), Ok(50));
    assert_eq!(&buf[..], &data[..50]);
    expect_msg(&q, s, WM_SOCK, FD_READ, 0);
    assert_quiet(&q, "exactly one new FD_READ");
    assert_eq!(b.recv(s, &mut buf, 0), Ok(50));
    assert_eq!(&buf[..], &data[50..]);
    assert_quiet(&q, "no data remains, no FD_READ");
}

/// Conformance: 261 — a `recv` with `MSG_PEEK` re-enables `FD_READ` and, since data remains, another `FD_READ` follows.
#[test]
fn peek_reenables_read() {
    let (a, b) = two_hosts(261);
    let (c, s) = tcp_pair(&a, &b, 26100);
    let q = MessageQueue::new();
    b.WSAAsyncSelect(s, q.hwnd(), WM_SOCK, FD_READ)
        .expect("WSAAsyncSelect");
    send_all(&a, c, b"peek me");
    expect_msg(&q, s, WM_SOCK, FD_READ, 0);
    let mut buf = [0u8; 16];
    assert_eq!(b.recv(s, &mut buf, MSG_PEEK), Ok(7));
    expect_msg(&q, s, WM_SOCK, FD_READ, 0);
    assert_quiet(&q, "one FD_READ per re-enable");
    // recvfrom with MSG_PEEK too, and with the event model.
    let ev = b.WSACreateEvent().expect("event");
    b.WSAEventSelect(s, ev, FD_READ).expect("WSAEventSelect");
    assert!(signaled(&b, ev, WAIT_MS));
    assert_eq!(network_events(&b, s, ev).lNetworkEvents, FD_READ);
    assert!(!signaled(&b, ev, 0));
    assert_eq!(b.recvfrom(s, &mut buf, MSG_PEEK, None, None), Ok(7));
    assert!(signaled(&b, ev, WAIT_MS), "peeking re-enabled FD_READ");
    assert_eq!(network_events(&b, s, ev).lNetworkEvents, FD_READ);
}

/// Conformance: 262 — a `recv` that fails (with `WSAEWOULDBLOCK` or any other error) still re-enables `FD_READ`.
#[test]
fn failing_recv_reenables_read() {
    let (a, b) = two_hosts(262);
    let (c, s) = tcp_pair(&a, &b, 26200);
    let q = MessageQueue::new();
    b.WSAAsyncSelect(s, q.hwnd(), WM_SOCK, FD_READ)
        .expect("WSAAsyncSelect");
    send_all(&a, c, b"abc");
    expect_msg(&q, s, WM_SOCK, FD_READ, 0);
    // FD_READ is now disabled and data is queued: a recv that fails re-enables it, and the
    // remaining data posts it again.
    let mut buf = [0u8; 16];
    assert_wsa_error(b.recv(s, &mut buf, 0x4000_0000), WsaError::WSAEINVAL);
    expect_msg(&q, s, WM_SOCK, FD_READ, 0);
    // The tolerant application of §1.6.3: it read the data before handling the message, so
    // the recv for the message fails WSAEWOULDBLOCK; that recv re-enables FD_READ as well.
    assert_eq!(b.recv(s, &mut buf, 0), Ok(3));
    let stale = drain_quiet(&q);
    assert!(stale.iter().all(|m| event_of(m) == FD_READ));
    assert_would_block(b.recv(s, &mut buf, 0));
    assert_quiet(&q, "no data, no FD_READ");
    send_all(&a, c, b"more");
    expect_msg(&q, s, WM_SOCK, FD_READ, 0);
}

/// Conformance: 263 — a `WSARecv` (overlapped or not) re-enables `FD_READ`.
#[test]
fn wsarecv_reenables_read() {
    let (a, b) = two_hosts(263);
    let (c, s) = tcp_pair(&a, &b, 26300);
    let q = MessageQueue::new();
    b.WSAAsyncSelect(s, q.hwnd(), WM_SOCK, FD_READ)
        .expect("WSAAsyncSelect");
    send_all(&a, c, &pattern(30, 263));
    expect_msg(&q, s, WM_SOCK, FD_READ, 0);
    // Non-overlapped WSARecv of 10 of the 30 bytes.
    let mut bufs = [WSABUF::zeroed(10)];
    let (mut n, mut flags) = (0u32, 0u32);
    b.WSARecv(s, &mut bufs, Some(&mut n), Some(&mut flags), None, None)
        .expect("WSARecv");
    assert_eq!(n, 10);
    expect_msg(&q, s, WM_SOCK, FD_READ, 0);
    // Overlapped WSARecv of 10 more: data is there, it completes at once; 10 bytes remain.
    let ov = WSAOVERLAPPED::new(0);
    let mut bufs = [WSABUF::zeroed(10)];
    let mut flags = 0u32;
    match b.WSARecv(s, &mut bufs, None, Some(&mut flags), Some(&ov), None) {
        Ok(()) | Err(WsaError::WSA_IO_PENDING) => {}
        Err(e) => panic!("overlapped WSARecv: {e:?}"),
    }
    expect_msg(&q, s, WM_SOCK, FD_READ, 0);
    assert!(wait_until(WAIT, || !ov.is_pending()));
    assert_eq!(ov.take_received().len(), 10);
    // WSARecvFrom as well.
    let mut bufs = [WSABUF::zeroed(5)];
    let (mut n, mut flags) = (0u32, 0u32);
    b.WSARecvFrom(
        s,
        &mut bufs,
        Some(&mut n),
        Some(&mut flags),
        None,
        None,
        None,
        None,
    )
    .expect("WSARecvFrom");
    assert_eq!(n, 5);
    expect_msg(&q, s, WM_SOCK, FD_READ, 0);
    assert_quiet(&q, "one FD_READ per re-enable");
}

// ---- FD_WRITE -------------------------------------------------------------------------------

/// Conformance: 264 — `FD_WRITE` is delivered once when a TCP connection completes, after `FD_CONNECT`.
#[test]
fn write_after_connect_once() {
    let (a, b) = two_hosts(264);
    let l = listener(&b, at(B, 26400), 4);
    let c = new_socket(&a, SOCK_STREAM);
    let q = MessageQueue::new();
    a.WSAAsyncSelect(
        c,
        q.hwnd(),
        WM_SOCK,
        FD_CONNECT | FD_WRITE | FD_READ | FD_CLOSE,
    )
    .expect("WSAAsyncSelect");
    assert_quiet(&q, "an unconnected stream socket cannot send");
    assert_would_block(connect(&a, c, at(B, 26400)));
    expect_msg(&q, c, WM_SOCK, FD_CONNECT, 0);
    expect_msg(&q, c, WM_SOCK, FD_WRITE, 0);
    let s = retry(WAIT, || b.accept(l, None, None)).expect("accept");
    assert_eq!(a.send(c, b"hello", 0), Ok(5));
    assert_eq!(recv_exact(&b, s, 5), b"hello");
    assert_quiet(&q, "FD_WRITE once");
    // The event model records FD_CONNECT and FD_WRITE with error 0.
    let c2 = new_socket(&a, SOCK_STREAM);
    let ev = a.WSACreateEvent().expect("event");
    a.WSAEventSelect(c2, ev, FD_CONNECT | FD_WRITE)
        .expect("WSAEventSelect");
    assert_would_block(connect(&a, c2, at(B, 26400)));
    assert!(signaled(&a, ev, WAIT_MS));
    let mut seen = 0;
    let end = Instant::now() + WAIT;
    while seen != FD_CONNECT | FD_WRITE && Instant::now() < end {
        if signaled(&a, ev, 100) {
            let ne = network_events(&a, c2, ev);
            assert_eq!(ne.lNetworkEvents & seen, 0, "each event once");
            assert_eq!(ne.iErrorCode[FD_CONNECT_BIT], 0);
            assert_eq!(ne.iErrorCode[FD_WRITE_BIT], 0);
            seen |= ne.lNetworkEvents;
        }
    }
    assert_eq!(seen, FD_CONNECT | FD_WRITE);
    assert!(!signaled(&a, ev, 300), "nothing more");
}

/// Conformance: 265 — `FD_WRITE` is delivered on an accepted socket once the connection is established.
#[test]
fn write_on_accepted_socket() {
    let (a, b) = two_hosts(265);
    let l = listener(&b, at(B, 26500), 4);
    let q = MessageQueue::new();
    b.WSAAsyncSelect(l, q.hwnd(), WM_SOCK, FD_ACCEPT | FD_WRITE)
        .expect("WSAAsyncSelect");
    assert_quiet(&q, "a listening socket has nothing to send");
    let c = new_socket(&a, SOCK_STREAM);
    connect(&a, c, at(B, 26500)).expect("connect");
    expect_msg(&q, l, WM_SOCK, FD_ACCEPT, 0);
    let s = b.accept(l, None, None).expect("accept");
    // The accepted socket inherited the registration: FD_WRITE, with the listener's wMsg.
    expect_msg(&q, s, WM_SOCK, FD_WRITE, 0);
    assert_quiet(&q, "one FD_WRITE");
    assert_eq!(b.send(s, b"hi", 0), Ok(2));
    assert_eq!(recv_exact(&a, c, 2), b"hi");
    assert_quiet(&q, "a successful send posts nothing");
}

/// Conformance: 266 — `FD_WRITE` is delivered when a UDP socket is bound.
#[test]
fn write_on_datagram_bind() {
    let (_a, b) = two_hosts(266);
    let q = MessageQueue::new();
    let u = new_socket(&b, SOCK_DGRAM);
    b.WSAAsyncSelect(u, q.hwnd(), WM_SOCK, FD_WRITE)
        .expect("WSAAsyncSelect");
    // An unbound datagram socket can already send (sendto binds it): that FD_WRITE may come
    // at registration; no more follow by themselves.
    let _ = drain_quiet(&q);
    assert_quiet(&q, "no FD_WRITE flood");
    bind(&b, u, at(B, 26600)).expect("bind");
    expect_msg(&q, u, WM_SOCK, FD_WRITE, 0);
    assert_quiet(&q, "one FD_WRITE for the bind");
    // The event model.
    let u2 = new_socket(&b, SOCK_DGRAM);
    let ev = b.WSACreateEvent().expect("event");
    b.WSAEventSelect(u2, ev, FD_WRITE).expect("WSAEventSelect");
    let _ = network_events(&b, u2, ev);
    assert!(!signaled(&b, ev, 300));
    bind(&b, u2, at(B, 26601)).expect("bind");
    assert!(signaled(&b, ev, WAIT_MS), "bind produced FD_WRITE");
    let ne = network_events(&b, u2, ev);
    assert_eq!(ne.lNetworkEvents, FD_WRITE);
    assert_eq!(ne.iErrorCode[FD_WRITE_BIT], 0);
}

/// Conformance: 267 — registering `FD_WRITE` on a connected socket with send space produces `FD_WRITE` immediately.
#[test]
fn write_registered_when_sendable() {
    let (a, b) = two_hosts(267);
    let (c, s) = tcp_pair(&a, &b, 26700);
    let q = MessageQueue::new();
    b.WSAAsyncSelect(s, q.hwnd(), WM_SOCK, FD_WRITE)
        .expect("WSAAsyncSelect");
    expect_msg(&q, s, WM_SOCK, FD_WRITE, 0);
    assert_quiet(&q, "one FD_WRITE");
    let ev = a.WSACreateEvent().expect("event");
    a.WSAEventSelect(c, ev, FD_WRITE).expect("WSAEventSelect");
    assert!(signaled(&a, ev, WAIT_MS));
    assert_eq!(network_events(&a, c, ev).lNetworkEvents, FD_WRITE);
    // A connected datagram socket too.
    let u = udp_bound(&b, at(B, 26701));
    connect(&b, u, at(A, 26702)).expect("connect");
    b.WSAAsyncSelect(u, q.hwnd(), WM_SOCK2, FD_WRITE)
        .expect("WSAAsyncSelect");
    expect_msg(&q, u, WM_SOCK2, FD_WRITE, 0);
}

/// Conformance: 268 — a successful `send` after `FD_WRITE` does not produce another `FD_WRITE`.
#[test]
fn successful_send_posts_no_write() {
    let (a, b) = two_hosts(268);
    let (c, s) = tcp_pair(&a, &b, 26800);
    let q = MessageQueue::new();
    b.WSAAsyncSelect(s, q.hwnd(), WM_SOCK, FD_WRITE)
        .expect("WSAAsyncSelect");
    expect_msg(&q, s, WM_SOCK, FD_WRITE, 0);
    let data = pattern(4000, 268);
    for chunk in data.chunks(1000) {
        assert_eq!(b.send(s, chunk, 0), Ok(1000));
    }
    // The peer reads and acknowledges everything: send space frees up again.
    assert_eq!(recv_exact(&a, c, data.len()), data);
    assert_quiet(&q, "no FD_WRITE after successful sends");
    // Datagram sends neither.
    let u = udp_bound(&b, at(B, 26801));
    // A bound receiver: a port unreachable from A would fail a later sendto WSAECONNRESET.
    let _sink = udp_bound(&a, at(A, 26802));
    b.WSAAsyncSelect(u, q.hwnd(), WM_SOCK2, FD_WRITE)
        .expect("WSAAsyncSelect");
    expect_msg(&q, u, WM_SOCK2, FD_WRITE, 0);
    for _ in 0..5 {
        assert_eq!(sendto(&b, u, b"dgram", at(A, 26802)), Ok(5));
    }
    assert_quiet(&q, "no FD_WRITE after successful sendto");
}

/// Conformance: 269 — after a `send` fails with `WSAEWOULDBLOCK`, exactly one `FD_WRITE` is delivered once send space becomes available.
#[test]
fn would_block_send_rearms_write_once() {
    let (a, b) = two_hosts(269);
    let (c, s) = tcp_pair(&a, &b, 26900);
    let q = MessageQueue::new();
    a.WSAAsyncSelect(c, q.hwnd(), WM_SOCK, FD_WRITE)
        .expect("WSAAsyncSelect");
    expect_msg(&q, c, WM_SOCK, FD_WRITE, 0);
    let queued = fill_send_buffer(&a, c);
    assert!(queued > 0);
    // The peer drains everything; the first freed space posts FD_WRITE, once.
    let got = recv_exact(&b, s, queued);
    assert_eq!(got.len(), queued);
    expect_msg(&q, c, WM_SOCK, FD_WRITE, 0);
    assert_quiet(&q, "exactly one FD_WRITE");
    // Sends are possible again, as the FD_WRITE said; once more for the event model.
    assert_eq!(a.send(c, b"again", 0), Ok(5));
    assert_eq!(recv_exact(&b, s, 5), b"again");
    let ev = a.WSACreateEvent().expect("event");
    a.WSAEventSelect(c, ev, FD_WRITE).expect("WSAEventSelect");
    assert!(signaled(&a, ev, WAIT_MS));
    assert_eq!(network_events(&a, c, ev).lNetworkEvents, FD_WRITE);
    let queued = fill_send_buffer(&a, c);
    assert_eq!(recv_exact(&b, s, queued).len(), queued);
    assert!(signaled(&a, ev, WAIT_MS), "FD_WRITE after WSAEWOULDBLOCK");
    assert_eq!(network_events(&a, c, ev).lNetworkEvents, FD_WRITE);
    assert!(!signaled(&a, ev, 300), "once");
}

// ---- FD_ACCEPT ------------------------------------------------------------------------------

/// Conformance: 270 — registering `FD_ACCEPT` on a listening socket that already has a pending connection produces `FD_ACCEPT` immediately.
#[test]
fn accept_registered_with_pending_connection() {
    let (a, b) = two_hosts(270);
    let l = listener(&b, at(B, 27000), 4);
    let c = new_socket(&a, SOCK_STREAM);
    connect(&a, c, at(B, 27000)).expect("connect");
    assert!(wait_readable(&b, l, 5000), "the connection is pending");
    let q = MessageQueue::new();
    b.WSAAsyncSelect(l, q.hwnd(), WM_SOCK, FD_ACCEPT)
        .expect("WSAAsyncSelect");
    expect_msg(&q, l, WM_SOCK, FD_ACCEPT, 0);
    assert_quiet(&q, "one FD_ACCEPT");
    let ev = b.WSACreateEvent().expect("event");
    b.WSAEventSelect(l, ev, FD_ACCEPT).expect("WSAEventSelect");
    assert!(signaled(&b, ev, WAIT_MS));
    let ne = network_events(&b, l, ev);
    assert_eq!(ne.lNetworkEvents, FD_ACCEPT);
    assert_eq!(ne.iErrorCode[FD_ACCEPT_BIT], 0);
}

/// Conformance: 271 — with two pending connections, `accept`ing one produces another `FD_ACCEPT`.
#[test]
fn accept_reposts_while_connections_remain() {
    let (a, b) = two_hosts(271);
    let l = listener(&b, at(B, 27100), 4);
    for _ in 0..2 {
        let c = new_socket(&a, SOCK_STREAM);
        connect(&a, c, at(B, 27100)).expect("connect");
    }
    assert!(wait_readable(&b, l, 5000));
    let q = MessageQueue::new();
    b.WSAAsyncSelect(l, q.hwnd(), WM_SOCK, FD_ACCEPT)
        .expect("WSAAsyncSelect");
    expect_msg(&q, l, WM_SOCK, FD_ACCEPT, 0);
    assert_quiet(&q, "one FD_ACCEPT for two pending connections");
    b.accept(l, None, None).expect("first accept");
    expect_msg(&q, l, WM_SOCK, FD_ACCEPT, 0);
    assert_quiet(&q, "one FD_ACCEPT per accept");
    b.accept(l, None, None).expect("second accept");
    assert_quiet(&q, "nothing left to accept");
    // A failing accept re-enables too: the next connection posts FD_ACCEPT.
    assert_would_block(b.accept(l, None, None));
    let c = new_socket(&a, SOCK_STREAM);
    connect(&a, c, at(B, 27100)).expect("connect");
    expect_msg(&q, l, WM_SOCK, FD_ACCEPT, 0);
}

/// Conformance: 272 — a second connection arriving before `accept` is called does not produce a second `FD_ACCEPT`.
#[test]
fn no_second_accept_before_accept_call() {
    let (a, b) = two_hosts(272);
    let l = listener(&b, at(B, 27200), 4);
    let q = MessageQueue::new();
    b.WSAAsyncSelect(l, q.hwnd(), WM_SOCK, FD_ACCEPT)
        .expect("WSAAsyncSelect");
    assert_quiet(&q, "nothing pending");
    let c1 = new_socket(&a, SOCK_STREAM);
    connect(&a, c1, at(B, 27200)).expect("connect");
    expect_msg(&q, l, WM_SOCK, FD_ACCEPT, 0);
    let c2 = new_socket(&a, SOCK_STREAM);
    connect(&a, c2, at(B, 27200)).expect("connect");
    assert_quiet(&q, "no second FD_ACCEPT before accept");
    // Both really are pending.
    b.accept(l, None, None).expect("accept 1");
    b.accept(l, None, None).expect("accept 2");
    // The event model.
    let ev = b.WSACreateEvent().expect("event");
    b.WSAEventSelect(l, ev, FD_ACCEPT).expect("WSAEventSelect");
    let c3 = new_socket(&a, SOCK_STREAM);
    connect(&a, c3, at(B, 27200)).expect("connect");
    assert!(signaled(&b, ev, WAIT_MS));
    assert_eq!(network_events(&b, l, ev).lNetworkEvents, FD_ACCEPT);
    let c4 = new_socket(&a, SOCK_STREAM);
    connect(&a, c4, at(B, 27200)).expect("connect");
    assert!(!signaled(&b, ev, 300), "no second FD_ACCEPT before accept");
    assert_eq!(network_events(&b, l, ev).lNetworkEvents, 0);
}

// ---- FD_CONNECT -----------------------------------------------------------------------------

/// Conformance: 273 — registering `FD_CONNECT` on an already connected socket produces `FD_CONNECT` immediately.
#[test]
fn connect_registered_when_connected() {
    let (a, b) = two_hosts(273);
    let (c, _s) = tcp_pair(&a, &b, 27300);
    let q = MessageQueue::new();
    a.WSAAsyncSelect(c, q.hwnd(), WM_SOCK, FD_CONNECT)
        .expect("WSAAsyncSelect");
    expect_msg(&q, c, WM_SOCK, FD_CONNECT, 0);
    assert_quiet(&q, "one FD_CONNECT");
    let ev = a.WSACreateEvent().expect("event");
    a.WSAEventSelect(c, ev, FD_CONNECT).expect("WSAEventSelect");
    assert!(signaled(&a, ev, WAIT_MS));
    let ne = network_events(&a, c, ev);
    assert_eq!(ne.lNetworkEvents, FD_CONNECT);
    assert_eq!(ne.iErrorCode[FD_CONNECT_BIT], 0);
}

/// Conformance: 274 — `FD_CONNECT` is delivered at most once per connection attempt (no re-enabling function).
#[test]
fn connect_is_one_shot() {
    let (a, b) = two_hosts(274);
    let l = listener(&b, at(B, 27400), 4);
    let c = new_socket(&a, SOCK_STREAM);
    let q = MessageQueue::new();
    a.WSAAsyncSelect(c, q.hwnd(), WM_SOCK, FD_CONNECT | FD_READ)
        .expect("WSAAsyncSelect");
    assert_would_block(connect(&a, c, at(B, 27400)));
    expect_msg(&q, c, WM_SOCK, FD_CONNECT, 0);
    let s = retry(WAIT, || b.accept(l, None, None)).expect("accept");
    // Traffic and every re-enabling call there is: no FD_CONNECT again.
    let mut buf = [0u8; 16];
    for round in 0..3u8 {
        send_all(&b, s, &[round; 4]);
        expect_msg(&q, c, WM_SOCK, FD_READ, 0);
        assert_eq!(a.recv(c, &mut buf, 0), Ok(4));
        assert_eq!(a.send(c, &[round], 0), Ok(1));
        assert_would_block(a.recv(c, &mut buf, 0));
    }
    assert_quiet(&q, "FD_CONNECT once");
    // A failed attempt also reports once.
    let r = new_socket(&a, SOCK_STREAM);
    let ev = a.WSACreateEvent().expect("event");
    a.WSAEventSelect(r, ev, FD_CONNECT).expect("WSAEventSelect");
    assert_would_block(connect(&a, r, at(B, 27409)));
    assert!(signaled(&a, ev, WAIT_MS));
    assert_eq!(network_events(&a, r, ev).lNetworkEvents, FD_CONNECT);
    assert!(!signaled(&a, ev, 300), "FD_CONNECT once for the failure");
    assert_eq!(network_events(&a, r, ev).lNetworkEvents, 0);
}

// ---- FD_CLOSE -------------------------------------------------------------------------------

/// Conformance: 275 — when the peer closes gracefully while unread data is queued, `FD_CLOSE` is delivered only after the application has read all the data.
#[test]
fn close_waits_for_unread_data() {
    let (a, b) = two_hosts(275);
    let (c, s) = tcp_pair(&a, &b, 27500);
    let q = MessageQueue::new();
    b.WSAAsyncSelect(s, q.hwnd(), WM_SOCK, FD_READ | FD_CLOSE)
        .expect("WSAAsyncSelect");
    let data = pattern(100, 275);
    send_all(&a, c, &data);
    a.closesocket(c).expect("graceful close");
    expect_msg(&q, s, WM_SOCK, FD_READ, 0);
    assert_quiet(&q, "no FD_CLOSE while data is unread");
    let mut buf = [0u8; 60];
    assert_eq!(b.recv(s, &mut buf, 0), Ok(60));
    expect_msg(&q, s, WM_SOCK, FD_READ, 0);
    assert_quiet(&q, "40 bytes remain: still no FD_CLOSE");
    assert_eq!(b.recv(s, &mut buf, 0), Ok(40));
    expect_msg(&q, s, WM_SOCK, FD_CLOSE, 0);
    assert_quiet(&q, "FD_CLOSE once, no FD_READ for the closure");
    assert_eq!(b.recv(s, &mut buf, 0), Ok(0));
    // The event model.
    let (c2, s2) = tcp_pair(&a, &b, 27501);
    let ev = b.WSACreateEvent().expect("event");
    b.WSAEventSelect(s2, ev, FD_CLOSE).expect("WSAEventSelect");
    send_all(&a, c2, b"unread");
    a.closesocket(c2).expect("graceful close");
    assert!(wait_until(WAIT, || fionread(&b, s2) == 6));
    assert!(!signaled(&b, ev, 300), "no FD_CLOSE while data is unread");
    assert_eq!(b.recv(s2, &mut buf, 0), Ok(6));
    assert!(signaled(&b, ev, WAIT_MS));
    let ne = network_events(&b, s2, ev);
    assert_eq!(ne.lNetworkEvents, FD_CLOSE);
    assert_eq!(ne.iErrorCode[FD_CLOSE_BIT], 0);
}

/// Conformance: 276 — when the peer closes gracefully with no data queued, `FD_CLOSE` arrives with error 0 and no `FD_READ` is generated for the closure.
#[test]
fn graceful_close_without_data() {
    let (a, b) = two_hosts(276);
    let (c, s) = tcp_pair(&a, &b, 27600);
    let q = MessageQueue::new();
    b.WSAAsyncSelect(s, q.hwnd(), WM_SOCK, FD_READ | FD_CLOSE)
        .expect("WSAAsyncSelect");
    assert_quiet(&q, "nothing yet");
    a.closesocket(c).expect("graceful close");
    expect_msg(&q, s, WM_SOCK, FD_CLOSE, 0);
    assert_quiet(&q, "closure is not FD_READ");
    let mut buf = [0u8; 4];
    assert_eq!(b.recv(s, &mut buf, 0), Ok(0));
    assert_quiet(&q, "recv after the close re-enables no FD_READ for it");
    // shutdown(SD_SEND) at the peer is a graceful close as well.
    let (c2, s2) = tcp_pair(&a, &b, 27601);
    let ev = b.WSACreateEvent().expect("event");
    b.WSAEventSelect(s2, ev, FD_READ | FD_CLOSE)
        .expect("WSAEventSelect");
    a.shutdown(c2, SD_SEND).expect("shutdown");
    assert!(signaled(&b, ev, WAIT_MS));
    let ne = network_events(&b, s2, ev);
    assert_eq!(ne.lNetworkEvents, FD_CLOSE);
    assert_eq!(ne.iErrorCode[FD_CLOSE_BIT], 0);
}

/// Conformance: 277 — when the peer resets the connection, `FD_CLOSE` arrives with error `WSAECONNRESET`.
#[test]
fn reset_posts_close_with_connreset() {
    let (a, b) = two_hosts(277);
    let (c, s) = tcp_pair(&a, &b, 27700);
    let q = MessageQueue::new();
    b.WSAAsyncSelect(s, q.hwnd(), WM_SOCK, FD_READ | FD_CLOSE)
        .expect("WSAAsyncSelect");
    set_linger(&a, c, 1, 0);
    a.closesocket(c).expect("abortive close");
    expect_msg(&q, s, WM_SOCK, FD_CLOSE, WsaError::WSAECONNRESET.0);
    assert_quiet(&q, "FD_CLOSE once");
    let (c2, s2) = tcp_pair(&a, &b, 27701);
    let ev = b.WSACreateEvent().expect("event");
    b.WSAEventSelect(s2, ev, FD_CLOSE).expect("WSAEventSelect");
    set_linger(&a, c2, 1, 0);
    a.closesocket(c2).expect("abortive close");
    assert!(signaled(&b, ev, WAIT_MS));
    let ne = network_events(&b, s2, ev);
    assert_eq!(ne.lNetworkEvents, FD_CLOSE);
    assert_eq!(ne.iErrorCode[FD_CLOSE_BIT], WsaError::WSAECONNRESET.0);
}

/// Conformance: 278 — after local `shutdown(SD_SEND)`, `FD_CLOSE` arrives when the peer's FIN has been received and no data remains.
#[test]
fn close_after_local_shutdown_and_peer_fin() {
    let (a, b) = two_hosts(278);
    let (c, s) = tcp_pair(&a, &b, 27800);
    let q = MessageQueue::new();
    b.WSAAsyncSelect(s, q.hwnd(), WM_SOCK, FD_READ | FD_CLOSE)
        .expect("WSAAsyncSelect");
    b.shutdown(s, SD_SEND).expect("shutdown");
    let mut buf = [0u8; 16];
    assert_eq!(a.recv(c, &mut buf, 0), Ok(0), "the peer saw our FIN");
    assert_quiet(&q, "no FD_CLOSE before the peer's FIN");
    send_all(&a, c, b"last words");
    a.shutdown(c, SD_SEND).expect("peer shutdown");
    expect_msg(&q, s, WM_SOCK, FD_READ, 0);
    assert_quiet(&q, "no FD_CLOSE while data remains");
    assert_eq!(b.recv(s, &mut buf, 0), Ok(10));
    expect_msg(&q, s, WM_SOCK, FD_CLOSE, 0);
    assert_quiet(&q, "FD_CLOSE once");
}

/// Conformance: 279 — registering `FD_CLOSE` on a socket whose connection is already closed produces `FD_CLOSE` immediately.
#[test]
fn close_registered_after_closure() {
    let (a, b) = two_hosts(279);
    let (c, s) = tcp_pair(&a, &b, 27900);
    a.closesocket(c).expect("graceful close");
    let mut buf = [0u8; 4];
    assert_eq!(b.recv(s, &mut buf, 0), Ok(0), "the FIN arrived");
    let q = MessageQueue::new();
    b.WSAAsyncSelect(s, q.hwnd(), WM_SOCK, FD_CLOSE)
        .expect("WSAAsyncSelect");
    expect_msg(&q, s, WM_SOCK, FD_CLOSE, 0);
    assert_quiet(&q, "FD_CLOSE once");
    // A reset connection reports its error on registration.
    let (c2, s2) = tcp_pair(&a, &b, 27901);
    set_linger(&a, c2, 1, 0);
    a.closesocket(c2).expect("abortive close");
    assert!(wait_readable(&b, s2, 5000), "the RST arrived");
    let ev = b.WSACreateEvent().expect("event");
    b.WSAEventSelect(s2, ev, FD_CLOSE).expect("WSAEventSelect");
    assert!(signaled(&b, ev, WAIT_MS));
    let ne = network_events(&b, s2, ev);
    assert_eq!(ne.lNetworkEvents, FD_CLOSE);
    assert_eq!(ne.iErrorCode[FD_CLOSE_BIT], WsaError::WSAECONNRESET.0);
}

/// Conformance: 280 — `FD_CLOSE` is never delivered for a UDP socket.
#[test]
fn no_close_for_datagrams() {
    let (a, b) = two_hosts(280);
    let peer = udp_bound(&a, at(A, 28001));
    let u = udp_bound(&b, at(B, 28000));
    let q = MessageQueue::new();
    b.WSAAsyncSelect(u, q.hwnd(), WM_SOCK, FD_ALL_EVENTS)
        .expect("WSAAsyncSelect");
    connect(&b, u, at(A, 28001)).expect("connect");
    sendto(&a, peer, b"ping", at(B, 28000)).expect("sendto");
    assert!(wait_until(WAIT, || fionread(&b, u) == 4));
    let mut buf = [0u8; 8];
    assert_eq!(b.recv(u, &mut buf, 0), Ok(4));
    // The peer goes away; our datagrams to it are answered by ICMP port unreachable.
    a.closesocket(peer).expect("close peer");
    for _ in 0..3 {
        let _ = b.send(u, b"anyone?", 0);
        thread::sleep(Duration::from_millis(50));
        let _ = b.recv(u, &mut buf, 0);
    }
    let mut seen: Vec<i32> = drain_quiet(&q).iter().map(event_of).collect();
    seen.sort_unstable();
    seen.dedup();
    assert!(!seen.contains(&FD_CLOSE), "FD_CLOSE on UDP: {seen:?}");
    assert!(seen.contains(&FD_READ), "the registration worked: {seen:?}");
    // The event model, after shutdown as well.
    let ev = b.WSACreateEvent().expect("event");
    b.WSAEventSelect(u, ev, FD_CLOSE).expect("WSAEventSelect");
    b.shutdown(u, SD_BOTH).expect("shutdown");
    assert!(!signaled(&b, ev, 300));
    assert_eq!(network_events(&b, u, ev).lNetworkEvents, 0);
}

// ---- WSAEnumNetworkEvents -------------------------------------------------------------------

/// Conformance: 288 — `WSAEnumNetworkEvents` returns the recorded events in `lNetworkEvents` with per-event errors at `iErrorCodes[FD_xxx_BIT]` and clears the record, so an immediate second call returns 0 events.
#[test]
fn enum_reports_and_clears() {
    let (a, b) = two_hosts(288);
    let (c, s) = tcp_pair(&a, &b, 28800);
    let ev = b.WSACreateEvent().expect("event");
    b.WSAEventSelect(s, ev, FD_READ | FD_WRITE | FD_CLOSE)
        .expect("WSAEventSelect");
    deliver(&a, c, &b, s, b"data");
    assert!(signaled(&b, ev, WAIT_MS));
    let ne = network_events(&b, s, ev);
    assert_eq!(ne.lNetworkEvents, FD_READ | FD_WRITE);
    assert_eq!(ne.iErrorCode, [0; FD_MAX_EVENTS]);
    let again = network_events(&b, s, ev);
    assert_eq!(again.lNetworkEvents, 0, "the record was cleared");
    assert_eq!(again.iErrorCode, [0; FD_MAX_EVENTS]);
    // An event with an error: the error is at its bit, the others stay 0.
    set_linger(&a, c, 1, 0);
    a.closesocket(c).expect("abortive close");
    assert!(signaled(&b, ev, WAIT_MS));
    let ne = network_events(&b, s, ev);
    assert_eq!(ne.lNetworkEvents & FD_CLOSE, FD_CLOSE);
    let mut expected = [0; FD_MAX_EVENTS];
    expected[FD_CLOSE_BIT] = WsaError::WSAECONNRESET.0;
    assert_eq!(ne.iErrorCode, expected);
    assert_eq!(network_events(&b, s, ev).lNetworkEvents, 0);
}

/// Conformance: 289 — `WSAEnumNetworkEvents` with a non-NULL `hEventObject` leaves that event nonsignaled.
#[test]
fn enum_with_event_resets_it() {
    let (a, b) = two_hosts(289);
    let (c, s) = tcp_pair(&a, &b, 28900);
    let ev = b.WSACreateEvent().expect("event");
    b.WSAEventSelect(s, ev, FD_READ).expect("WSAEventSelect");
    send_all(&a, c, b"x");
    assert!(signaled(&b, ev, WAIT_MS));
    assert_eq!(network_events(&b, s, ev).lNetworkEvents, FD_READ);
    assert!(!signaled(&b, ev, 0), "the event was reset");
    // Even with nothing recorded, the named event is reset.
    b.WSASetEvent(ev).expect("set");
    assert_eq!(network_events(&b, s, ev).lNetworkEvents, 0);
    assert!(!signaled(&b, ev, 0));
}

/// Conformance: 290 — `WSAEnumNetworkEvents` with a NULL `hEventObject` leaves the associated event signaled.
#[test]
fn enum_without_event_leaves_it_signaled() {
    let (a, b) = two_hosts(290);
    let (c, s) = tcp_pair(&a, &b, 29000);
    let ev = b.WSACreateEvent().expect("event");
    b.WSAEventSelect(s, ev, FD_READ).expect("WSAEventSelect");
    send_all(&a, c, b"x");
    assert!(signaled(&b, ev, WAIT_MS));
    assert_eq!(network_events(&b, s, 0).lNetworkEvents, FD_READ);
    assert!(signaled(&b, ev, 0), "still signaled");
    assert_eq!(network_events(&b, s, 0).lNetworkEvents, 0, "but cleared");
    assert!(signaled(&b, ev, 0));
}

/// Conformance: 291 — a failing `WSAEnumNetworkEvents` (e.g. invalid `lpNetworkEvents`) neither clears the record nor resets the event.
#[test]
fn failing_enum_clears_and_resets_nothing() {
    let (a, b) = two_hosts(291);
    let (c, s) = tcp_pair(&a, &b, 29100);
    let ev = b.WSACreateEvent().expect("event");
    b.WSAEventSelect(s, ev, FD_READ).expect("WSAEventSelect");
    send_all(&a, c, b"x");
    assert!(signaled(&b, ev, WAIT_MS));
    // NULL lpNetworkEvents.
    assert_wsa_error(b.WSAEnumNetworkEvents(s, ev, None), WsaError::WSAEFAULT);
    assert!(signaled(&b, ev, 0), "not reset");
    // An hEventObject that is not an event.
    let closed = b.WSACreateEvent().expect("event");
    b.WSACloseEvent(closed).expect("close");
    let mut ne = WSANETWORKEVENTS::default();
    assert_wsa_error(
        b.WSAEnumNetworkEvents(s, closed, Some(&mut ne)),
        WsaError::WSAEINVAL,
    );
    assert_eq!(ne, WSANETWORKEVENTS::default(), "nothing written");
    assert!(signaled(&b, ev, 0), "not reset");
    let ne = network_events(&b, s, ev);
    assert_eq!(ne.lNetworkEvents, FD_READ, "the record survived");
    assert!(!signaled(&b, ev, 0));
}

/// Conformance: 292 — a network event occurring right after `WSAEnumNetworkEvents` returns sets the event object again (no lost wake-up).
#[test]
fn no_lost_wakeup_after_enum() {
    let (a, b) = two_hosts(292);
    let (c, s) = tcp_pair(&a, &b, 29200);
    let ev = b.WSACreateEvent().expect("event");
    b.WSAEventSelect(s, ev, FD_READ | FD_CLOSE)
        .expect("WSAEventSelect");
    // Right after the reset, within the same call sequence: a recv that leaves data behind
    // re-enables FD_READ, which signals again at once.
    deliver(&a, c, &b, s, b"0123456789");
    assert!(signaled(&b, ev, WAIT_MS));
    assert_eq!(network_events(&b, s, ev).lNetworkEvents, FD_READ);
    let mut one = [0u8; 1];
    assert_eq!(b.recv(s, &mut one, 0), Ok(1));
    assert!(signaled(&b, ev, WAIT_MS), "re-signaled after the enum");
    let mut buf = [0u8; 64];
    assert_eq!(b.recv(s, &mut buf, 0), Ok(9));
    let _ = network_events(&b, s, ev);
    // A sender racing the receiver's wait/enum/recv loop: every arrival must wake it.
    const ROUNDS: usize = 200;
    let sender = thread::spawn(move || {
        for i in 0..ROUNDS {
            send_all(&a, c, &[i as u8]);
            if i % 7 == 0 {
                thread::sleep(Duration::from_millis(1));
            }
        }
        a.closesocket(c).expect("close");
    });
    let mut got = Vec::new();
    let mut closed = false;
    while !closed {
        assert!(
            signaled(&b, ev, WAIT_MS),
            "lost wake-up after {} bytes",
            got.len()
        );
        let ne = network_events(&b, s, ev);
        closed = ne.lNetworkEvents & FD_CLOSE != 0;
        loop {
            match b.recv(s, &mut buf, 0) {
                Ok(0) => break,
                Ok(n) => got.extend_from_slice(&buf[..n as usize]),
                Err(WsaError::WSAEWOULDBLOCK) => break,
                Err(e) => panic!("recv: {e:?}"),
            }
        }
    }
    sender.join().expect("sender");
    let want: Vec<u8> = (0..ROUNDS).map(|i| i as u8).collect();
    assert_eq!(got, want);
}

/// Conformance: 293 — `WSAEventSelect(s, ev, 0)` stops all recording and signalling for `s`.
#[test]
fn event_select_zero_stops_everything() {
    let (a, b) = two_hosts(293);
    let (c, s) = tcp_pair(&a, &b, 29300);
    let ev = b.WSACreateEvent().expect("event");
    b.WSAEventSelect(s, ev, FD_READ | FD_CLOSE)
        .expect("WSAEventSelect");
    b.WSAEventSelect(s, ev, 0).expect("cancel");
    deliver(&a, c, &b, s, b"data");
    a.closesocket(c).expect("close");
    let mut buf = [0u8; 8];
    assert_eq!(b.recv(s, &mut buf, 0), Ok(4));
    assert!(wait_readable(&b, s, 5000), "the close arrived");
    assert!(!signaled(&b, ev, 300), "nothing signalled");
    assert_eq!(
        network_events(&b, s, ev).lNetworkEvents,
        0,
        "nothing recorded"
    );
}

/// Conformance: 294 — calling `WSAEventSelect` again clears events recorded under the previous registration.
#[test]
fn event_select_again_clears_record() {
    let (a, b) = two_hosts(294);
    let (c, s) = tcp_pair(&a, &b, 29400);
    let ev = b.WSACreateEvent().expect("event");
    b.WSAEventSelect(s, ev, FD_READ | FD_WRITE)
        .expect("WSAEventSelect");
    deliver(&a, c, &b, s, b"data");
    assert!(signaled(&b, ev, WAIT_MS));
    // New registration with events whose conditions do not hold: the old record is gone.
    b.WSAEventSelect(s, ev, FD_CLOSE | FD_ACCEPT)
        .expect("WSAEventSelect");
    let ne = network_events(&b, s, ev);
    assert_eq!(ne.lNetworkEvents, 0, "FD_READ|FD_WRITE were cleared");
    assert_eq!(ne.iErrorCode, [0; FD_MAX_EVENTS]);
    // A re-registration keeps only what it raises itself.
    b.WSAEventSelect(s, ev, FD_READ).expect("WSAEventSelect");
    b.WSAEventSelect(s, ev, FD_READ | FD_CLOSE)
        .expect("WSAEventSelect");
    assert_eq!(
        network_events(&b, s, ev).lNetworkEvents,
        FD_READ,
        "the new registration's FD_READ only"
    );
    // Recorded under WSAEventSelect, then replaced by WSAAsyncSelect, then back: gone too.
    let q = MessageQueue::new();
    let mut buf = [0u8; 2];
    assert_eq!(b.recv(s, &mut buf, 0), Ok(2));
    b.WSAAsyncSelect(s, q.hwnd(), WM_SOCK, FD_CLOSE)
        .expect("WSAAsyncSelect");
    b.WSAEventSelect(s, ev, FD_CLOSE).expect("WSAEventSelect");
    assert_eq!(network_events(&b, s, ev).lNetworkEvents, 0);
}

/// Conformance: 295 — `WSAEnumNetworkEvents` reports `FD_CONNECT` with `WSAECONNREFUSED` in `iErrorCodes[FD_CONNECT_BIT]` for a refused nonblocking connect.
#[test]
fn enum_reports_refused_connect() {
    let (a, b) = two_hosts(295);
    let c = new_socket(&a, SOCK_STREAM);
    let ev = a.WSACreateEvent().expect("event");
    a.WSAEventSelect(c, ev, FD_CONNECT | FD_WRITE | FD_READ | FD_CLOSE)
        .expect("WSAEventSelect");
    assert_would_block(connect(&a, c, at(B, 29500)));
    assert!(signaled(&a, ev, WAIT_MS));
    let ne = network_events(&a, c, ev);
    assert_eq!(ne.lNetworkEvents, FD_CONNECT, "no FD_WRITE for a failure");
    assert_eq!(ne.iErrorCode[FD_CONNECT_BIT], WsaError::WSAECONNREFUSED.0);
    assert!(!signaled(&a, ev, 300));
    // The socket may connect again: that attempt reports its own FD_CONNECT, error 0.
    let _l = listener(&b, at(B, 29501), 4);
    assert_would_block(connect(&a, c, at(B, 29501)));
    assert!(signaled(&a, ev, WAIT_MS));
    let mut seen = WSANETWORKEVENTS::default();
    let end = Instant::now() + WAIT;
    while seen.lNetworkEvents & FD_CONNECT == 0 && Instant::now() < end {
        if signaled(&a, ev, 100) {
            let ne = network_events(&a, c, ev);
            seen.lNetworkEvents |= ne.lNetworkEvents;
            seen.iErrorCode[FD_CONNECT_BIT] |= ne.iErrorCode[FD_CONNECT_BIT];
        }
    }
    assert_eq!(seen.lNetworkEvents & FD_CONNECT, FD_CONNECT);
    assert_eq!(seen.iErrorCode[FD_CONNECT_BIT], 0);
}

/// Conformance: 296 — several network events that occur between two `WSAEnumNetworkEvents` calls are all reported together in one `lNetworkEvents` mask.
#[test]
fn enum_reports_events_together() {
    let (a, b) = two_hosts(296);
    let (c, s) = tcp_pair(&a, &b, 29600);
    let ev = b.WSACreateEvent().expect("event");
    b.WSAEventSelect(s, ev, FD_READ | FD_WRITE | FD_CONNECT | FD_CLOSE)
        .expect("WSAEventSelect");
    assert!(signaled(&b, ev, WAIT_MS));
    // FD_CONNECT and FD_WRITE at registration, FD_READ when data arrives: no enum between.
    deliver(&a, c, &b, s, b"data");
    let ne = network_events(&b, s, ev);
    assert_eq!(ne.lNetworkEvents, FD_CONNECT | FD_WRITE | FD_READ);
    assert_eq!(ne.iErrorCode, [0; FD_MAX_EVENTS]);
}

// ---- bad input ------------------------------------------------------------------------------

/// `WSAEventSelect` with an event handle that is not an open event fails `WSAEINVAL` (§1.6.4
/// "invalid parameter") and installs nothing.
#[test]
fn event_select_with_bad_event_handle() {
    let (a, b) = two_hosts(3001);
    let (c, s) = tcp_pair(&a, &b, 30100);
    assert_wsa_error(b.WSAEventSelect(s, 0, FD_READ), WsaError::WSAEINVAL);
    assert_wsa_error(
        b.WSAEventSelect(s, 0x7777_7777, FD_READ),
        WsaError::WSAEINVAL,
    );
    let closed = b.WSACreateEvent().expect("event");
    b.WSACloseEvent(closed).expect("close");
    assert_wsa_error(b.WSAEventSelect(s, closed, FD_READ), WsaError::WSAEINVAL);
    // Nothing was registered: FIONBIO 0 is allowed.
    let mut off = 0u32;
    b.ioctlsocket(s, FIONBIO, Some(&mut off))
        .expect("no registration is active");
    let _ = c;
}

/// `WSAAsyncSelect` with an `hWnd` that is not a window fails `WSAEINVAL` (255) and installs
/// nothing.
#[test]
fn async_select_with_bad_window_installs_nothing() {
    let (a, b) = two_hosts(3002);
    let (_c, s) = tcp_pair(&a, &b, 30200);
    assert_wsa_error(
        b.WSAAsyncSelect(s, 0x5555_0000, WM_SOCK, FD_WRITE),
        WsaError::WSAEINVAL,
    );
    let mut off = 0u32;
    b.ioctlsocket(s, FIONBIO, Some(&mut off))
        .expect("no registration is active");
}

/// `WSAEnumNetworkEvents` with `lpNetworkEvents` NULL fails (291): the record is not cleared
/// and the event not reset — also for an event recorded at registration.
#[test]
fn enum_with_null_record_pointer() {
    let (a, b) = two_hosts(3003);
    let (_c, s) = tcp_pair(&a, &b, 30300);
    let ev = b.WSACreateEvent().expect("event");
    b.WSAEventSelect(s, ev, FD_WRITE).expect("WSAEventSelect");
    assert!(signaled(&b, ev, WAIT_MS));
    assert_wsa_error(b.WSAEnumNetworkEvents(s, ev, None), WsaError::WSAEFAULT);
    assert_wsa_error(b.WSAEnumNetworkEvents(s, 0, None), WsaError::WSAEFAULT);
    assert!(signaled(&b, ev, 0));
    assert_eq!(network_events(&b, s, ev).lNetworkEvents, FD_WRITE);
}

/// Event masks with bits no `FD_` event has fail `WSAEINVAL` (D-34) for both registrations.
#[test]
fn masks_with_unknown_bits() {
    let (a, b) = two_hosts(3004);
    let (_c, s) = tcp_pair(&a, &b, 30400);
    let q = MessageQueue::new();
    let ev = b.WSACreateEvent().expect("event");
    for mask in [1 << FD_MAX_EVENTS, 1 << 20, FD_READ | 1 << 30, -1, i32::MIN] {
        assert_wsa_error(
            b.WSAAsyncSelect(s, q.hwnd(), WM_SOCK, mask),
            WsaError::WSAEINVAL,
        );
        assert_wsa_error(b.WSAEventSelect(s, ev, mask), WsaError::WSAEINVAL);
    }
    assert_quiet(&q, "nothing registered");
    assert!(!signaled(&b, ev, 0));
    // Every defined bit is accepted.
    b.WSAAsyncSelect(s, q.hwnd(), WM_SOCK, FD_ALL_EVENTS)
        .expect("all events");
    b.WSAEventSelect(s, ev, FD_ALL_EVENTS).expect("all events");
}

/// `WSAAsyncSelect`, `WSAEventSelect` and `WSAEnumNetworkEvents` on a closed socket or on
/// `INVALID_SOCKET` fail `WSAENOTSOCK`.
#[test]
fn calls_on_a_closed_socket() {
    let (a, b) = two_hosts(3005);
    let (_c, s) = tcp_pair(&a, &b, 30500);
    let q = MessageQueue::new();
    let ev = b.WSACreateEvent().expect("event");
    b.WSAEventSelect(s, ev, FD_READ).expect("WSAEventSelect");
    b.closesocket(s).expect("close");
    for sock in [s, INVALID_SOCKET] {
        assert_wsa_error(
            b.WSAAsyncSelect(sock, q.hwnd(), WM_SOCK, FD_READ),
            WsaError::WSAENOTSOCK,
        );
        assert_wsa_error(b.WSAEventSelect(sock, ev, FD_READ), WsaError::WSAENOTSOCK);
        let mut ne = WSANETWORKEVENTS::default();
        assert_wsa_error(
            b.WSAEnumNetworkEvents(sock, ev, Some(&mut ne)),
            WsaError::WSAENOTSOCK,
        );
    }
    // The event object itself stays valid after closesocket.
    b.WSASetEvent(ev).expect("event still open");
    b.WSACloseEvent(ev).expect("close event");
    // Another application's socket is not a socket of this one.
    let theirs = new_socket(&a, SOCK_STREAM);
    assert_wsa_error(
        b.WSAEventSelect(theirs, b.WSACreateEvent().unwrap(), FD_READ),
        WsaError::WSAENOTSOCK,
    );
}

/// Before `WSAStartup` all three calls fail `WSANOTINITIALISED`.
#[test]
fn calls_before_startup() {
    let (a, _b) = two_hosts(3006);
    let s = new_socket(&a, SOCK_STREAM);
    let ev = a.WSACreateEvent().expect("event");
    let q = MessageQueue::new();
    let fresh = Winsock::new(a.stack().clone());
    assert_wsa_error(
        fresh.WSAAsyncSelect(s, q.hwnd(), WM_SOCK, FD_READ),
        WsaError::WSANOTINITIALISED,
    );
    assert_wsa_error(
        fresh.WSAEventSelect(s, ev, FD_READ),
        WsaError::WSANOTINITIALISED,
    );
    let mut ne = WSANETWORKEVENTS::default();
    assert_wsa_error(
        fresh.WSAEnumNetworkEvents(s, ev, Some(&mut ne)),
        WsaError::WSANOTINITIALISED,
    );
    assert_wsa_error(fresh.WSACreateEvent(), WsaError::WSANOTINITIALISED);
    // After the last WSACleanup, again.
    let mut data = WSADATA::default();
    assert_eq!(fresh.WSAStartup(MAKEWORD(2, 2), Some(&mut data)), 0);
    fresh.WSACleanup().expect("cleanup");
    assert_wsa_error(
        fresh.WSAEventSelect(s, ev, FD_READ),
        WsaError::WSANOTINITIALISED,
    );
}
