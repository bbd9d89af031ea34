//! CHECKLIST Part 2 gaps of issue 7 items 1–2: notification details of connection setup and
//! teardown (what `accept` inherits, `FD_CONNECT` for nonblocking connects, what `closesocket`
//! does to a registration), `WSAAccept` of a withdrawn request, the message-oriented receive
//! rules on RMP (the catalog's reliable message protocol, docs/rmp.md, D-19), and
//! `WSASendDisconnect`/`WSARecvDisconnect` on TCP and RMP (§1.5).
//!
//! Every network is an in-process `VirtualSwitch`: host A is 10.0.0.1, host B 10.0.0.2. Waits
//! for things that must happen are generous (5 s); checks that nothing arrives use a short
//! quiet period.

use std::net::SocketAddrV4;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use ws2_stack::winsock::*;
use ws2_stack::WsaError;
use ws2_tests::*;

/// How long something that must happen may take.
const WAIT: Duration = Duration::from_secs(5);
/// How long to watch for something that must not happen.
const QUIET: Duration = Duration::from_millis(300);
/// A `wMsg` (`WM_USER` + n).
const WM_SOCK: u32 = 0x0400 + 7;

// ---- helpers --------------------------------------------------------------------------------

/// (event, error) of a `WSAAsyncSelect` notification.
fn event_error(m: &MSG) -> (i32, i32) {
    (
        i32::from(WSAGETSELECTEVENT(m.lParam)),
        i32::from(WSAGETSELECTERROR(m.lParam)),
    )
}

/// The next notification for socket `s` within `WAIT`, skipping other sockets' messages.
#[track_caller]
fn next_for(q: &MessageQueue, s: SOCKET) -> MSG {
    let end = Instant::now() + WAIT;
    loop {
        let left = end.saturating_duration_since(Instant::now());
        let m = q
            .GetMessage(Some(left))
            .unwrap_or_else(|| panic!("no notification for socket {s} within {WAIT:?}"));
        if m.wParam == s {
            return m;
        }
    }
}

/// Every notification for `s` that arrives during `QUIET`.
fn quiet_for(q: &MessageQueue, s: SOCKET) -> Vec<(i32, i32)> {
    let mut out = Vec::new();
    while let Some(m) = q.GetMessage(Some(QUIET)) {
        if m.wParam == s {
            out.push(event_error(&m));
        }
    }
    out
}

/// `WSARecv` into one buffer of `room` bytes (not overlapped): the bytes and the output flags.
fn wsa_recv(ws: &Winsock, s: SOCKET, room: usize) -> Result<(Vec<u8>, u32), WsaError> {
    let mut bufs = [WSABUF::zeroed(room)];
    let (mut n, mut flags) = (0u32, 0u32);
    ws.WSARecv(s, &mut bufs, Some(&mut n), Some(&mut flags), None, None)?;
    Ok((bufs[0].buf[..n as usize].to_vec(), flags))
}

/// Fills `c`'s send path (nonblocking) until nothing more fits: the peer is not reading.
fn fill_send_path(ws: &Winsock, c: SOCKET) -> usize {
    set_nonblocking(ws, c, true);
    let chunk = vec![0x5a; 16 * 1024];
    let mut total = 0;
    let end = Instant::now() + WAIT;
    while Instant::now() < end {
        match ws.send(c, &chunk, 0) {
            Ok(n) => total += n as usize,
            Err(WsaError::WSAEWOULDBLOCK) => {
                // Give the window a moment to close completely, then stop.
                thread::sleep(Duration::from_millis(50));
                match ws.send(c, &chunk, 0) {
                    Ok(n) => total += n as usize,
                    Err(_) => break,
                }
            }
            Err(e) => panic!("send: {e:?}"),
        }
    }
    set_nonblocking(ws, c, false);
    total
}

// ---- RMP sessions -----------------------------------------------------------------------------

/// A root on the rooted-data entry: c_root + d_root.
const ROOT: u32 = WSA_FLAG_MULTIPOINT_C_ROOT | WSA_FLAG_MULTIPOINT_D_ROOT;
/// A leaf: c_leaf + d_leaf.
const LEAF: u32 = WSA_FLAG_MULTIPOINT_C_LEAF | WSA_FLAG_MULTIPOINT_D_LEAF;

/// A one-leaf RMP session: the root at A invites the leaf listening at B:`port`, which accepts.
/// Returns (root host, leaf host, c_root, the root's c_leaf socket, the leaf's socket).
fn rmp_session(seed: u64, port: u16) -> (Winsock, Winsock, SOCKET, SOCKET, SOCKET) {
    let (a, b) = two_hosts(seed);
    let r = a
        .WSASocket(AF_INET, SOCK_RDM, IPPROTO_RMP, None, 0, ROOT)
        .expect("WSASocket(c_root)");
    bind(&a, r, at(A, port)).expect("bind c_root");
    let l = b
        .WSASocket(AF_INET, SOCK_RDM, IPPROTO_RMP, None, 0, LEAF)
        .expect("WSASocket(c_leaf)");
    bind(&b, l, at(B, port + 1)).expect("bind c_leaf");
    b.listen(l, 4).expect("listen on c_leaf");
    let a2 = a.clone();
    let to = at(B, port + 1);
    let join = thread::spawn(move || {
        a2.WSAJoinLeaf(
            r,
            Some(&sa(to)),
            SOCKADDR_IN_LEN,
            None,
            None,
            None,
            None,
            JL_BOTH,
        )
    });
    set_nonblocking(&b, l, true);
    let leaf = retry(WAIT, || b.accept(l, None, None)).expect("the leaf accepts the invitation");
    assert!(
        wait_until(WAIT, || join.is_finished()),
        "the join completes"
    );
    let c_leaf = join.join().expect("join thread").expect("WSAJoinLeaf");
    (a, b, r, c_leaf, leaf)
}

/// Blocks until `s` has a message (or its end) to read; fails the test after `WAIT`.
#[track_caller]
fn until_readable(ws: &Winsock, s: SOCKET) {
    assert!(
        wait_readable(ws, s, WAIT.as_millis() as i32),
        "socket {s} readable"
    );
}

// ---- connection setup: inheritance and FD_CONNECT -----------------------------------------

/// Conformance: 70 — a socket returned by `accept` inherits the listening socket's `WSAAsyncSelect` event mask and `wMsg`: its `FD_READ` and `FD_CLOSE` are posted to the same window with the same message, `wParam` the new socket.
#[test]
fn accepted_socket_inherits_async_select() {
    let (a, b) = two_hosts(7001);
    let q = MessageQueue::new();
    let l = listener(&b, at(B, 7001), 4);
    b.WSAAsyncSelect(l, q.hwnd(), WM_SOCK, FD_ACCEPT | FD_READ | FD_CLOSE)
        .expect("WSAAsyncSelect");
    let c = new_socket(&a, SOCK_STREAM);
    connect(&a, c, at(B, 7001)).expect("connect");
    let m = next_for(&q, l);
    assert_eq!(event_error(&m), (FD_ACCEPT, 0));
    let s = b.accept(l, None, None).expect("accept");
    send_all(&a, c, b"inherited");
    let m = next_for(&q, s);
    assert_eq!(
        (m.hwnd, m.message),
        (q.hwnd(), WM_SOCK),
        "the listener's window and wMsg"
    );
    assert_eq!(event_error(&m), (FD_READ, 0));
    assert_eq!(recv_exact(&b, s, 9), b"inherited");
    a.closesocket(c).expect("close");
    let m = next_for(&q, s);
    assert_eq!((m.message, event_error(&m)), (WM_SOCK, (FD_CLOSE, 0)));
    // The mask is the listener's: no FD_WRITE (not asked for) ever comes for `s`.
    assert!(
        !quiet_for(&q, s).iter().any(|(e, _)| *e == FD_WRITE),
        "FD_WRITE was not in the mask"
    );
}

/// Conformance: 71 — a socket returned by `accept` inherits the listening socket's `WSAEventSelect` event object and network-event mask: data arriving on it signals the listener's event and `WSAEnumNetworkEvents` on the new socket reports `FD_READ`.
#[test]
fn accepted_socket_inherits_event_select() {
    let (a, b) = two_hosts(7002);
    let ev = b.WSACreateEvent().expect("WSACreateEvent");
    let l = listener(&b, at(B, 7002), 4);
    b.WSAEventSelect(l, ev, FD_ACCEPT | FD_READ)
        .expect("WSAEventSelect");
    let c = new_socket(&a, SOCK_STREAM);
    connect(&a, c, at(B, 7002)).expect("connect");
    let ne = wait_network_event(&b, l, ev, FD_ACCEPT, WAIT);
    assert_eq!(ne.iErrorCode[FD_ACCEPT_BIT], 0);
    let s = b.accept(l, None, None).expect("accept");
    b.WSAResetEvent(ev).expect("WSAResetEvent");
    assert_eq!(network_events(&b, s, 0).lNetworkEvents, 0, "nothing yet");
    send_all(&a, c, b"x");
    assert_eq!(
        b.WSAWaitForMultipleEvents(&[ev], false, WAIT.as_millis() as u32, false),
        Ok(WSA_WAIT_EVENT_0),
        "the listener's event object is signalled for the accepted socket"
    );
    let ne = wait_network_event(&b, s, ev, FD_READ, WAIT);
    assert_eq!(ne.lNetworkEvents & FD_READ, FD_READ);
    // The accepted socket is nonblocking, as event-selected sockets are.
    let mut on = 0u32;
    assert_wsa_error(
        b.ioctlsocket(s, FIONBIO, Some(&mut on)),
        WsaError::WSAEINVAL,
    );
}

/// Conformance: 99 — `WSAAccept` fails with `WSAEACCES` when the pending request is withdrawn (the client resets) after the condition function saw it and before the acceptance.
#[test]
fn withdrawn_request_is_eacces() {
    let (a, b) = two_hosts(7003);
    let l = listener(&b, at(B, 7003), 4);
    let c = new_socket(&a, SOCK_STREAM);
    connect(&a, c, at(B, 7003)).expect("connect");
    let calls = Arc::new(Mutex::new(0));
    let seen = calls.clone();
    let mut condition = |_: Option<&WSABUF>,
                         _: Option<&WSABUF>,
                         _: Option<&mut QOS>,
                         _: Option<&mut QOS>,
                         _: Option<&WSABUF>,
                         _: Option<&mut WSABUF>,
                         _: &mut u32,
                         _: usize|
     -> i32 {
        *seen.lock().expect("lock") += 1;
        // The client withdraws while the server is deciding: SO_LINGER {1, 0} resets.
        set_linger(&a, c, 1, 0);
        a.closesocket(c).expect("closesocket");
        thread::sleep(QUIET);
        CF_ACCEPT
    };
    assert_wsa_error(
        b.WSAAccept(l, None, None, Some(&mut condition), 0),
        WsaError::WSAEACCES,
    );
    assert_eq!(*calls.lock().expect("lock"), 1, "the request was offered");
    // Nothing else is pending, and the listener still works.
    set_nonblocking(&b, l, true);
    assert_would_block(b.accept(l, None, None));
    let c2 = new_socket(&a, SOCK_STREAM);
    connect(&a, c2, at(B, 7003)).expect("connect again");
    retry(WAIT, || b.accept(l, None, None)).expect("a later request is accepted");
}

/// Conformance: 113 — a nonblocking connect that completes delivers `FD_CONNECT` with error 0 to a `WSAAsyncSelect` registration.
#[test]
fn nonblocking_connect_posts_fd_connect() {
    let (a, b) = two_hosts(7004);
    let _l = listener(&b, at(B, 7004), 4);
    let q = MessageQueue::new();
    let c = new_socket(&a, SOCK_STREAM);
    a.WSAAsyncSelect(c, q.hwnd(), WM_SOCK, FD_CONNECT)
        .expect("WSAAsyncSelect");
    assert_would_block(connect(&a, c, at(B, 7004)));
    let m = next_for(&q, c);
    assert_eq!(m.message, WM_SOCK);
    assert_eq!(event_error(&m), (FD_CONNECT, 0));
    assert_eq!(peer_name(&a, c), Ok(at(B, 7004)), "connected");
    assert!(quiet_for(&q, c).is_empty(), "one FD_CONNECT only");
}

/// Conformance: 114 — a nonblocking connect that is refused (no listener: RST) delivers `FD_CONNECT` with `WSAECONNREFUSED` in `WSAGETSELECTERROR(lParam)`.
#[test]
fn refused_connect_posts_fd_connect_error() {
    let (a, _b) = two_hosts(7005);
    let q = MessageQueue::new();
    let c = new_socket(&a, SOCK_STREAM);
    a.WSAAsyncSelect(c, q.hwnd(), WM_SOCK, FD_CONNECT | FD_CLOSE)
        .expect("WSAAsyncSelect");
    assert_would_block(connect(&a, c, at(B, 7005)));
    let m = next_for(&q, c);
    assert_eq!(
        event_error(&m),
        (FD_CONNECT, WsaError::WSAECONNREFUSED.0),
        "FD_CONNECT carries the refusal"
    );
    assert!(
        !quiet_for(&q, c).iter().any(|(e, _)| *e == FD_CLOSE),
        "a refused connect is not an FD_CLOSE"
    );
}

/// Conformance: 115 — a nonblocking connect signals the `WSAEventSelect` event and `WSAEnumNetworkEvents` reports `FD_CONNECT` with `iErrorCodes[FD_CONNECT_BIT]` = 0 on success.
#[test]
fn nonblocking_connect_signals_event() {
    let (a, b) = two_hosts(7006);
    let _l = listener(&b, at(B, 7006), 4);
    let ev = a.WSACreateEvent().expect("WSACreateEvent");
    let c = new_socket(&a, SOCK_STREAM);
    a.WSAEventSelect(c, ev, FD_CONNECT).expect("WSAEventSelect");
    assert_would_block(connect(&a, c, at(B, 7006)));
    assert_eq!(
        a.WSAWaitForMultipleEvents(&[ev], false, WAIT.as_millis() as u32, false),
        Ok(WSA_WAIT_EVENT_0),
        "the event is signalled"
    );
    let ne = wait_network_event(&a, c, ev, FD_CONNECT, WAIT);
    assert_eq!(ne.lNetworkEvents, FD_CONNECT);
    assert_eq!(ne.iErrorCode[FD_CONNECT_BIT], 0);
}

// ---- message-oriented receives (RMP) -----------------------------------------------------------

/// Conformance: 185 — on a reliable message socket without partial-message support (RMP), `WSARecv` with too small buffers fails with `WSAEMSGSIZE` and a retry with a large buffer returns the whole message; the next message follows intact.
#[test]
fn rmp_too_small_buffer_keeps_the_message() {
    let (a, b, r, _c_leaf, leaf) = rmp_session(7007, 27007);
    let first: Vec<u8> = (0..200u32).map(|i| i as u8).collect();
    assert_eq!(a.send(r, &first, 0), Ok(200));
    assert_eq!(a.send(r, b"second", 0), Ok(6));
    until_readable(&b, leaf);
    assert_wsa_error(wsa_recv(&b, leaf, 16), WsaError::WSAEMSGSIZE);
    assert_wsa_error(wsa_recv(&b, leaf, 199), WsaError::WSAEMSGSIZE);
    assert_eq!(
        fionread(&b, leaf),
        200,
        "the message is still first in line"
    );
    let (got, _) = wsa_recv(&b, leaf, 4096).expect("WSARecv with room");
    assert_eq!(got, first, "the whole message");
    until_readable(&b, leaf);
    let (got, _) = wsa_recv(&b, leaf, 4096).expect("WSARecv");
    assert_eq!(got, b"second");
}

/// Conformance: 187 — on a message-oriented connection (RMP), `WSARecv` after the peer's graceful close (`WSASendDisconnect`) fails with `WSAEDISCON`, after the messages sent before it were read; a zero-length message before it is still a message.
#[test]
fn rmp_wsarecv_after_graceful_close_is_ediscon() {
    let (a, b, _r, c_leaf, leaf) = rmp_session(7008, 27008);
    assert_eq!(a.send(c_leaf, b"last words", 0), Ok(10));
    assert_eq!(a.send(c_leaf, b"", 0), Ok(0), "a zero-length message");
    a.WSASendDisconnect(c_leaf, None)
        .expect("WSASendDisconnect");
    until_readable(&b, leaf);
    assert_eq!(wsa_recv(&b, leaf, 64).expect("first").0, b"last words");
    until_readable(&b, leaf);
    assert_eq!(wsa_recv(&b, leaf, 64).expect("zero-length").0, b"");
    until_readable(&b, leaf);
    assert_wsa_error(wsa_recv(&b, leaf, 64), WsaError::WSAEDISCON);
}

// ---- closesocket and registrations -------------------------------------------------------

/// Conformance: 204 — a socket registered with `WSAAsyncSelect(FD_CLOSE)` receives no `FD_CLOSE` as a result of its own `closesocket`, nor when the peer closes afterwards.
#[test]
fn own_closesocket_posts_no_fd_close() {
    let (a, b) = two_hosts(7009);
    let (c, s) = tcp_pair(&a, &b, 7009);
    let q = MessageQueue::new();
    a.WSAAsyncSelect(c, q.hwnd(), WM_SOCK, FD_READ | FD_CLOSE)
        .expect("WSAAsyncSelect");
    assert!(quiet_for(&q, c).is_empty(), "nothing before the close");
    a.closesocket(c).expect("closesocket");
    assert_eq!(recv_exact(&b, s, 1), b"", "the peer sees the FIN");
    b.closesocket(s).expect("peer closes");
    assert!(
        quiet_for(&q, c).is_empty(),
        "no notification for a closed socket"
    );
}

/// Conformance: 205 — after `closesocket`, the event object that was associated by `WSAEventSelect` remains valid for `WSASetEvent`, `WSAResetEvent` and `WSACloseEvent`.
#[test]
fn event_object_survives_closesocket() {
    let (a, b) = two_hosts(7010);
    let (c, _s) = tcp_pair(&a, &b, 7010);
    let ev = a.WSACreateEvent().expect("WSACreateEvent");
    a.WSAEventSelect(c, ev, FD_READ | FD_CLOSE)
        .expect("WSAEventSelect");
    a.closesocket(c).expect("closesocket");
    a.WSAResetEvent(ev)
        .expect("WSAResetEvent after closesocket");
    a.WSASetEvent(ev).expect("WSASetEvent after closesocket");
    assert_eq!(
        a.WSAWaitForMultipleEvents(&[ev], false, 0, false),
        Ok(WSA_WAIT_EVENT_0),
        "the event is still a working event"
    );
    a.WSACloseEvent(ev)
        .expect("WSACloseEvent after closesocket");
}

// ---- WSASendDisconnect / WSARecvDisconnect on TCP ------------------------------------------

/// Conformance: 216 — `WSASendDisconnect(s, NULL)` on TCP sends a FIN (the peer reads the data, then 0) and later sends fail with `WSAESHUTDOWN`; the other direction stays open.
#[test]
fn send_disconnect_sends_fin() {
    let (a, b) = two_hosts(7011);
    let (c, s) = tcp_pair(&a, &b, 7011);
    send_all(&a, c, b"before");
    a.WSASendDisconnect(c, None).expect("WSASendDisconnect");
    assert_eq!(recv_exact(&b, s, 7), b"before", "data, then the end");
    let mut buf = [0u8; 8];
    assert_eq!(b.recv(s, &mut buf, 0), Ok(0), "the FIN arrived");
    assert_wsa_error(a.send(c, b"after", 0), WsaError::WSAESHUTDOWN);
    send_all(&b, s, b"reply");
    assert_eq!(recv_exact(&a, c, 5), b"reply", "a half close");
}

/// Conformance: 217 — `WSASendDisconnect` with non-NULL disconnect data on TCP fails with `WSAENOPROTOOPT` (even with zero bytes), and the connection is untouched.
#[test]
fn send_disconnect_data_on_tcp_is_enoprotoopt() {
    let (a, b) = two_hosts(7012);
    let (c, s) = tcp_pair(&a, &b, 7012);
    let bye = WSABUF::new(b"bye".to_vec());
    assert_wsa_error(a.WSASendDisconnect(c, Some(&bye)), WsaError::WSAENOPROTOOPT);
    let empty = WSABUF::new(Vec::new());
    assert_wsa_error(
        a.WSASendDisconnect(c, Some(&empty)),
        WsaError::WSAENOPROTOOPT,
    );
    send_all(&a, c, b"still open");
    assert_eq!(recv_exact(&b, s, 10), b"still open");
}

/// Conformance: 218 — `WSASendDisconnect` on an unconnected TCP socket (fresh, bound, listening) fails with `WSAENOTCONN`.
#[test]
fn send_disconnect_unconnected_is_enotconn() {
    let (a, _b) = two_hosts(7013);
    let fresh = new_socket(&a, SOCK_STREAM);
    assert_wsa_error(a.WSASendDisconnect(fresh, None), WsaError::WSAENOTCONN);
    bind(&a, fresh, at(A, 7013)).expect("bind");
    assert_wsa_error(a.WSASendDisconnect(fresh, None), WsaError::WSAENOTCONN);
    let l = listener(&a, at(A, 7014), 4);
    assert_wsa_error(a.WSASendDisconnect(l, None), WsaError::WSAENOTCONN);
}

/// Conformance: 219 — `WSARecvDisconnect` on TCP disables further receives (`WSAESHUTDOWN`) without resetting the connection even if data keeps arriving (unlike `shutdown(SD_RECEIVE)`, D-35): the peer's sends keep succeeding and the other direction still works.
#[test]
fn recv_disconnect_does_not_reset() {
    let (a, b) = two_hosts(7015);
    let (c, s) = tcp_pair(&a, &b, 7015);
    send_all(&a, c, b"unread");
    thread::sleep(QUIET);
    b.WSARecvDisconnect(s, None).expect("WSARecvDisconnect");
    let mut buf = [0u8; 16];
    assert_wsa_error(b.recv(s, &mut buf, 0), WsaError::WSAESHUTDOWN);
    for _ in 0..5 {
        send_all(&a, c, &[7u8; 1000]);
        thread::sleep(Duration::from_millis(60));
    }
    assert_wsa_error(b.recv(s, &mut buf, 0), WsaError::WSAESHUTDOWN);
    // Not reset: both ends still send, and A still receives.
    send_all(&a, c, b"more");
    send_all(&b, s, b"from B");
    assert_eq!(recv_exact(&a, c, 6), b"from B");
    assert_eq!(
        get_int(&a, c, SOL_SOCKET, SO_ERROR),
        Ok(0),
        "no error on the sender"
    );
    // Unconnected: WSAENOTCONN.
    let fresh = new_socket(&b, SOCK_STREAM);
    assert_wsa_error(b.WSARecvDisconnect(fresh, None), WsaError::WSAENOTCONN);
}

/// Conformance: 222 — `WSARecvDisconnect` and `WSASendDisconnect` return immediately regardless of `SO_LINGER` {1, 10}, even with unsent data the peer is not reading.
#[test]
fn disconnects_ignore_linger() {
    let (a, b) = two_hosts(7016);
    let (c, s) = tcp_pair(&a, &b, 7016);
    set_linger(&a, c, 1, 10);
    let queued = fill_send_path(&a, c);
    assert!(queued > 0, "data queued");
    let t = Instant::now();
    a.WSASendDisconnect(c, None).expect("WSASendDisconnect");
    a.WSARecvDisconnect(c, None).expect("WSARecvDisconnect");
    let took = t.elapsed();
    assert!(took < Duration::from_secs(1), "took {took:?}");
    // The data still drains and the FIN follows it.
    let got = recv_exact(&b, s, queued + 1);
    assert_eq!(got.len(), queued, "all queued data, then the end");
}

/// Conformance: 223 — after the peer calls `WSASendDisconnect`, the local side gets `FD_CLOSE` (error 0) and `recv` returns 0 (TCP, and RMP with `recv`).
#[test]
fn peer_send_disconnect_is_fd_close_and_eof() {
    let (a, b) = two_hosts(7017);
    let (c, s) = tcp_pair(&a, &b, 7017);
    let q = MessageQueue::new();
    b.WSAAsyncSelect(s, q.hwnd(), WM_SOCK, FD_CLOSE)
        .expect("WSAAsyncSelect");
    a.WSASendDisconnect(c, None).expect("WSASendDisconnect");
    let m = next_for(&q, s);
    assert_eq!(event_error(&m), (FD_CLOSE, 0));
    let mut buf = [0u8; 8];
    assert_eq!(b.recv(s, &mut buf, 0), Ok(0));

    let (ra, rb, _r, c_leaf, leaf) = rmp_session(7018, 27018);
    let ev = rb.WSACreateEvent().expect("WSACreateEvent");
    rb.WSAEventSelect(leaf, ev, FD_CLOSE)
        .expect("WSAEventSelect");
    ra.WSASendDisconnect(c_leaf, None)
        .expect("WSASendDisconnect on RMP");
    let ne = wait_network_event(&rb, leaf, ev, FD_CLOSE, WAIT);
    assert_eq!(ne.iErrorCode[FD_CLOSE_BIT], 0);
    assert_eq!(rb.recv(leaf, &mut buf, 0), Ok(0), "recv: end of data");
}

// ---- disconnect data (RMP) ---------------------------------------------------------------

/// Conformance: 220 — `WSARecvDisconnect` on RMP (`XP1_DISCONNECT_DATA`) returns the peer's `WSASendDisconnect` data after `FD_CLOSE`, in both directions (the leaf's data at the root, then the root's answer at the leaf).
#[test]
fn recv_disconnect_returns_peer_data() {
    let (a, b, _r, c_leaf, leaf) = rmp_session(7019, 27019);
    let ev_root = a.WSACreateEvent().expect("WSACreateEvent");
    a.WSAEventSelect(c_leaf, ev_root, FD_CLOSE)
        .expect("WSAEventSelect");
    let ev_leaf = b.WSACreateEvent().expect("WSACreateEvent");
    b.WSAEventSelect(leaf, ev_leaf, FD_CLOSE)
        .expect("WSAEventSelect");
    b.WSASendDisconnect(leaf, Some(&WSABUF::new(b"leaf leaves".to_vec())))
        .expect("WSASendDisconnect at the leaf");
    let ne = wait_network_event(&a, c_leaf, ev_root, FD_CLOSE, WAIT);
    assert_eq!(ne.iErrorCode[FD_CLOSE_BIT], 0);
    let mut got = WSABUF::zeroed(64);
    a.WSARecvDisconnect(c_leaf, Some(&mut got))
        .expect("WSARecvDisconnect at the root");
    assert_eq!(got.data(), b"leaf leaves");
    a.WSASendDisconnect(c_leaf, Some(&WSABUF::new(b"root agrees".to_vec())))
        .expect("the answer");
    wait_network_event(&b, leaf, ev_leaf, FD_CLOSE, WAIT);
    let mut got = WSABUF::zeroed(64);
    b.WSARecvDisconnect(leaf, Some(&mut got))
        .expect("WSARecvDisconnect at the leaf");
    assert_eq!(got.data(), b"root agrees");
}

/// Conformance: 221 — `WSARecvDisconnect` with a buffer too small for the disconnect data fails with `WSAEFAULT`; one that fits then returns it.
#[test]
fn recv_disconnect_small_buffer_is_efault() {
    let (a, b, _r, c_leaf, leaf) = rmp_session(7020, 27020);
    let ev = a.WSACreateEvent().expect("WSACreateEvent");
    a.WSAEventSelect(c_leaf, ev, FD_CLOSE)
        .expect("WSAEventSelect");
    b.WSASendDisconnect(leaf, Some(&WSABUF::new(vec![9u8; 100])))
        .expect("WSASendDisconnect");
    wait_network_event(&a, c_leaf, ev, FD_CLOSE, WAIT);
    let mut small = WSABUF::zeroed(99);
    assert_wsa_error(
        a.WSARecvDisconnect(c_leaf, Some(&mut small)),
        WsaError::WSAEFAULT,
    );
    let mut room = WSABUF::zeroed(100);
    a.WSARecvDisconnect(c_leaf, Some(&mut room))
        .expect("WSARecvDisconnect");
    assert_eq!(room.data(), &[9u8; 100][..]);
}

/// A sanity check of the helper: the session's leaf socket names the root as its peer.
#[test]
fn rmp_session_helper_connects() {
    let (_a, b, _r, _c_leaf, leaf) = rmp_session(7021, 27021);
    let peer: SocketAddrV4 = peer_name(&b, leaf).expect("getpeername");
    assert_eq!(*peer.ip(), A);
}
