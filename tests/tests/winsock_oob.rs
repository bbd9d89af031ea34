//! CHECKLIST Part 2 group V and the urgent-data rows of groups H, J and U: `MSG_OOB`,
//! `SO_OOBINLINE`, `SIOCATMARK`, `FD_OOB` and exceptfds between two ws2 stacks on an in-process
//! `VirtualSwitch` (Part 1 §1.15, D-21, D-22). The Linux kernel as peer: kernel_oob.rs.

use std::time::Duration;

use ws2_stack::winsock::*;
use ws2_stack::WsaError;
use ws2_tests::*;

/// How long something that must happen may take.
const WAIT: Duration = Duration::from_secs(5);
/// How long to watch for something that must not happen.
const QUIET: Duration = Duration::from_millis(300);
/// A `wMsg`.
const WM_SOCK: u32 = 0x0400 + 7;

/// `SIOCATMARK` through `ioctlsocket`.
#[track_caller]
fn at_mark(ws: &Winsock, s: SOCKET) -> bool {
    let mut v = 7u32;
    ws.ioctlsocket(s, SIOCATMARK, Some(&mut v))
        .expect("ioctlsocket(SIOCATMARK)");
    assert!(v <= 1, "a BOOL");
    v == 1
}

/// Sends `before`, the urgent byte `urgent` with `MSG_OOB`, then `after`.
#[track_caller]
fn send_urgent(ws: &Winsock, s: SOCKET, before: &[u8], urgent: u8, after: &[u8]) {
    if !before.is_empty() {
        send_all(ws, s, before);
    }
    assert_eq!(ws.send(s, &[urgent], MSG_OOB), Ok(1), "send(MSG_OOB)");
    if !after.is_empty() {
        send_all(ws, s, after);
    }
}

/// Plain receives until `n` bytes came (each call's result kept).
#[track_caller]
fn recv_calls(ws: &Winsock, s: SOCKET, n: usize) -> Vec<Vec<u8>> {
    let mut calls = Vec::new();
    let mut total = 0;
    while total < n {
        let mut buf = [0u8; 256];
        let got = ws.recv(s, &mut buf, 0).expect("recv") as usize;
        assert!(got > 0, "connection closed early");
        total += got;
        calls.push(buf[..got].to_vec());
    }
    calls
}

/// Waits until `s` is exceptional (an urgent byte to read with `MSG_OOB`).
#[track_caller]
fn wait_exceptional(ws: &Winsock, s: SOCKET) {
    assert!(
        wait_until(WAIT, || poll_one(ws, s, 50).2),
        "never reported in exceptfds"
    );
}

/// Conformance: 247, 483, 484, 497, 498, 505 — out of line: exceptfds, `SIOCATMARK` FALSE until `recv(MSG_OOB)` took the byte ahead of unread data, TRUE after; plain receives return the data around it; a second `recv(MSG_OOB)` fails `WSAEINVAL`.
#[test]
fn out_of_line_urgent_byte() {
    let (a, b) = two_hosts(497);
    let (c, s) = tcp_pair(&a, &b, 49700);
    assert!(at_mark(&b, s), "nothing urgent yet");
    send_urgent(&a, c, b"AB", b'X', b"CD");
    wait_exceptional(&b, s);
    assert!(
        wait_until(WAIT, || fionread(&b, s) >= 4),
        "the normal data arrived"
    );
    assert!(!at_mark(&b, s), "urgent data pending (483)");
    // WSAIoctl(SIOCATMARK) writes the same BOOL (484).
    let mut out = [0xffu8; 4];
    let mut returned = 0u32;
    b.WSAIoctl(
        s,
        SIOCATMARK as u32,
        &[],
        &mut out,
        Some(&mut returned),
        None,
        None,
    )
    .expect("WSAIoctl(SIOCATMARK)");
    assert_eq!((u32::from_ne_bytes(out), returned), (0, 4));
    // The urgent byte jumps the queue: "AB" is still unread (498).
    let mut one = [0u8; 8];
    assert_eq!(b.recv(s, &mut one, MSG_OOB), Ok(1));
    assert_eq!(one[0], b'X');
    assert!(at_mark(&b, s), "TRUE once read (483)");
    let mut out = [0xffu8; 4];
    b.WSAIoctl(
        s,
        SIOCATMARK as u32,
        &[],
        &mut out,
        Some(&mut returned),
        None,
        None,
    )
    .expect("WSAIoctl(SIOCATMARK)");
    assert_eq!(u32::from_ne_bytes(out), 1);
    assert!(!poll_one(&b, s, 0).2, "no longer exceptional");
    // Plain receives never return the urgent byte (497).
    let data: Vec<u8> = recv_calls(&b, s, 4).concat();
    assert_eq!(data, b"ABCD");
    // Nothing urgent is pending any more (505).
    assert_wsa_error(b.recv(s, &mut one, MSG_OOB), WsaError::WSAEINVAL);
}

/// Conformance: 499 — out of line, a plain `recv` stops at the urgent byte's place: "AB" first, then "CD", never both in one call.
#[test]
fn plain_recv_stops_at_the_mark() {
    let (a, b) = two_hosts(499);
    let (c, s) = tcp_pair(&a, &b, 49900);
    send_urgent(&a, c, b"AB", b'X', b"CD");
    wait_exceptional(&b, s);
    assert!(wait_until(WAIT, || fionread(&b, s) >= 5), "all arrived");
    let calls = recv_calls(&b, s, 4);
    assert_eq!(calls[0], b"AB", "stops before the mark");
    assert_eq!(calls[1..].concat(), b"CD");
    let mut one = [0u8; 1];
    assert_eq!(b.recv(s, &mut one, MSG_OOB), Ok(1));
    assert_eq!(one[0], b'X', "still held after the stream passed it");
}

/// Conformance: 504 — `recv(MSG_OOB | MSG_PEEK)` returns the urgent byte without consuming it.
#[test]
fn peek_urgent_byte() {
    let (a, b) = two_hosts(504);
    let (c, s) = tcp_pair(&a, &b, 50400);
    send_urgent(&a, c, b"", b'P', b"");
    wait_exceptional(&b, s);
    let mut one = [0u8; 4];
    for _ in 0..2 {
        assert_eq!(b.recv(s, &mut one, MSG_OOB | MSG_PEEK), Ok(1));
        assert_eq!(one[0], b'P');
        assert!(!at_mark(&b, s), "a peek consumes nothing");
    }
    assert_eq!(b.recv(s, &mut one, MSG_OOB), Ok(1));
    assert_eq!(one[0], b'P');
    assert_wsa_error(b.recv(s, &mut one, MSG_OOB), WsaError::WSAEINVAL);
}

/// Conformance: 502 — out of line, a second urgent byte arriving before the first is read replaces it.
#[test]
fn newer_urgent_byte_replaces_older() {
    let (a, b) = two_hosts(502);
    let (c, s) = tcp_pair(&a, &b, 50200);
    send_urgent(&a, c, b"ab", b'1', b"cd");
    wait_exceptional(&b, s);
    send_urgent(&a, c, b"", b'2', b"ef");
    assert!(
        wait_until(WAIT, || {
            let mut one = [0u8; 1];
            b.recv(s, &mut one, MSG_OOB | MSG_PEEK) == Ok(1) && one[0] == b'2'
        }),
        "the second urgent byte replaced the first"
    );
    let mut one = [0u8; 1];
    assert_eq!(b.recv(s, &mut one, MSG_OOB), Ok(1));
    assert_eq!(one[0], b'2');
    assert_wsa_error(b.recv(s, &mut one, MSG_OOB), WsaError::WSAEINVAL);
    let data: Vec<u8> = recv_calls(&b, s, 6).concat();
    assert_eq!(data, b"abcdef", "neither urgent byte in the stream");
}

/// Conformance: 248, 500, 501 — with `SO_OOBINLINE` the urgent byte is readable, not exceptional; receives return "AB", "X", "CD"; `recv(MSG_OOB)` fails `WSAEINVAL`.
#[test]
fn inline_three_reads() {
    let (a, b) = two_hosts(501);
    let (c, s) = tcp_pair(&a, &b, 50100);
    set_int(&b, s, SOL_SOCKET, SO_OOBINLINE, 1).expect("SO_OOBINLINE");
    send_urgent(&a, c, b"AB", b'X', b"CD");
    assert!(wait_until(WAIT, || fionread(&b, s) >= 5), "all arrived");
    assert!(wait_until(WAIT, || !at_mark(&b, s)), "the mark is ahead");
    let (r, _, e) = poll_one(&b, s, 0);
    assert!(r && !e, "readable, not exceptional (248)");
    let mut one = [0u8; 4];
    assert_wsa_error(b.recv(s, &mut one, MSG_OOB), WsaError::WSAEINVAL);
    let mut buf = [0u8; 100];
    assert_eq!(b.recv(s, &mut buf, 0), Ok(2));
    assert_eq!(&buf[..2], b"AB");
    assert!(!at_mark(&b, s), "the urgent byte is still ahead");
    assert_eq!(b.recv(s, &mut buf, 0), Ok(1));
    assert_eq!(buf[0], b'X');
    assert!(at_mark(&b, s), "read past the urgent byte");
    assert_eq!(b.recv(s, &mut buf, 0), Ok(2));
    assert_eq!(&buf[..2], b"CD");
}

/// Conformance: 503, 506 — inline, neither of two urgent bytes is lost; the BSD pointer is applied the same way on both sides, so the byte marked is the one sent with `MSG_OOB`.
#[test]
fn inline_two_urgent_bytes() {
    let (a, b) = two_hosts(503);
    let (c, s) = tcp_pair(&a, &b, 50300);
    set_int(&b, s, SOL_SOCKET, SO_OOBINLINE, 1).expect("SO_OOBINLINE");
    send_urgent(&a, c, b"ab", b'1', b"cd");
    send_urgent(&a, c, b"", b'2', b"ef");
    let data: Vec<u8> = recv_calls(&b, s, 8).concat();
    assert_eq!(
        data, b"ab1cd2ef",
        "both urgent bytes in the stream, in place"
    );
    assert!(at_mark(&b, s));
}

/// Conformance: 281, 283 — out of line, urgent data raises `FD_OOB` and not `FD_READ`; a plain `recv` re-enables `FD_OOB`, re-posted while the byte is unread.
#[test]
fn fd_oob_out_of_line() {
    let (a, b) = two_hosts(281);
    let (c, s) = tcp_pair(&a, &b, 28100);
    let q = MessageQueue::new();
    b.WSAAsyncSelect(s, q.hwnd(), WM_SOCK, FD_READ | FD_OOB)
        .expect("WSAAsyncSelect");
    send_urgent(&a, c, b"", b'U', b"");
    let m = q.GetMessage(Some(WAIT)).expect("FD_OOB");
    assert_eq!(
        (m.wParam, i32::from(WSAGETSELECTEVENT(m.lParam))),
        (s, FD_OOB)
    );
    assert!(
        q.GetMessage(Some(QUIET)).is_none(),
        "no FD_READ for urgent data alone (281)"
    );
    let mut buf = [0u8; 8];
    assert_would_block(b.recv(s, &mut buf, 0));
    let m = q.GetMessage(Some(WAIT)).expect("FD_OOB again (283)");
    assert_eq!(i32::from(WSAGETSELECTEVENT(m.lParam)), FD_OOB);
    assert_eq!(b.recv(s, &mut buf, MSG_OOB), Ok(1));
    assert_eq!(buf[0], b'U');
    assert!(
        q.GetMessage(Some(QUIET)).is_none(),
        "nothing once the byte was read"
    );
}

/// Conformance: 282 — with `SO_OOBINLINE`, urgent data raises `FD_READ` and never `FD_OOB`.
#[test]
fn fd_read_inline() {
    let (a, b) = two_hosts(282);
    let (c, s) = tcp_pair(&a, &b, 28200);
    set_int(&b, s, SOL_SOCKET, SO_OOBINLINE, 1).expect("SO_OOBINLINE");
    let q = MessageQueue::new();
    b.WSAAsyncSelect(s, q.hwnd(), WM_SOCK, FD_READ | FD_OOB)
        .expect("WSAAsyncSelect");
    send_urgent(&a, c, b"", b'U', b"");
    let m = q.GetMessage(Some(WAIT)).expect("FD_READ");
    assert_eq!(i32::from(WSAGETSELECTEVENT(m.lParam)), FD_READ);
    assert!(q.GetMessage(Some(QUIET)).is_none(), "no FD_OOB");
    let mut buf = [0u8; 8];
    assert_eq!(b.recv(s, &mut buf, 0), Ok(1));
    assert_eq!(buf[0], b'U');
    assert!(q.GetMessage(Some(QUIET)).is_none(), "no FD_OOB, no FD_READ");
}

/// Conformance: 506 — a retransmitted or later segment repeats the urgent pointer; the receiver takes it once. Both directions of one connection carry urgent data, the accepted side sending too.
#[test]
fn both_directions_repeatedly() {
    let (a, b) = two_hosts(5060);
    let (c, s) = tcp_pair(&a, &b, 50600);
    for round in 0..5u8 {
        let filler = vec![b'.'; 3000];
        send_urgent(&a, c, &filler, b'a' + round, b"!");
        send_urgent(&b, s, b"x", b'A' + round, &filler);
        for (ws, sock, want) in [(&b, s, b'a' + round), (&a, c, b'A' + round)] {
            wait_exceptional(ws, sock);
            let mut one = [0u8; 1];
            assert_eq!(ws.recv(sock, &mut one, MSG_OOB), Ok(1));
            assert_eq!(one[0], want, "round {round}");
            let data: Vec<u8> = recv_calls(ws, sock, 3001).concat();
            assert!(data.iter().all(|&d| d == b'.' || d == b'!' || d == b'x'));
        }
    }
}

/// Conformance: 497, 498 — urgent data that arrives while the connection waits in the backlog is kept for the accepted socket: `recv(MSG_OOB)` returns it, plain receives return the rest; inline (the listener's `SO_OOBINLINE` inherited) it stays in the stream with its mark.
#[test]
fn urgent_data_before_accept() {
    let (a, b) = two_hosts(4970);
    for (port, inline) in [(49701, false), (49702, true)] {
        let l = listener(&b, at(B, port), 4);
        if inline {
            set_int(&b, l, SOL_SOCKET, SO_OOBINLINE, 1).expect("SO_OOBINLINE");
        }
        let c = new_socket(&a, SOCK_STREAM);
        connect(&a, c, at(B, port)).expect("connect");
        send_urgent(&a, c, b"AB", b'X', b"CD");
        std::thread::sleep(Duration::from_millis(300));
        let s = b.accept(l, None, None).expect("accept");
        assert!(!at_mark(&b, s), "urgent data pending (inline {inline})");
        if inline {
            let calls = recv_calls(&b, s, 5);
            assert_eq!(calls[0], b"AB");
            assert_eq!(calls[1], b"X");
            assert_eq!(calls[2..].concat(), b"CD");
        } else {
            assert!(poll_one(&b, s, 0).2, "exceptional");
            let mut one = [0u8; 1];
            assert_eq!(b.recv(s, &mut one, MSG_OOB), Ok(1));
            assert_eq!(one[0], b'X');
            assert_eq!(recv_calls(&b, s, 4).concat(), b"ABCD");
        }
        assert!(at_mark(&b, s));
        b.closesocket(l).unwrap();
    }
}

/// Conformance: 506 — on a link that loses, duplicates, reorders and corrupts frames, retransmitted segments carry the same urgent pointer (rewritten by sequence number) and the receiver takes each urgent byte exactly once, in both directions.
#[test]
fn urgent_data_over_a_bad_link() {
    let switch = ws2_tap::VirtualSwitch::new(5061);
    let bad = ws2_tap::Impairments {
        loss: 0.05,
        duplicate: 0.03,
        reorder: 0.05,
        corrupt: 0.02,
        ..Default::default()
    };
    let a = started(&stack_with(&switch, config(A), bad.clone()));
    let b = started(&stack_with(&switch, config(B), bad));
    let l = listener(&b, at(B, 50610), 4);
    let c = new_socket(&a, SOCK_STREAM);
    connect(&a, c, at(B, 50610)).expect("connect over the bad link");
    let s = b.accept(l, None, None).expect("accept");
    for round in 0..12u8 {
        let filler = vec![b'.'; 4000];
        let (tx, rx, sock_tx, sock_rx) = if round % 2 == 0 {
            (&a, &b, c, s)
        } else {
            (&b, &a, s, c)
        };
        send_urgent(tx, sock_tx, &filler, b'a' + round, b"!");
        assert!(
            wait_until(Duration::from_secs(30), || poll_one(rx, sock_rx, 50).2),
            "round {round}: never exceptional"
        );
        let mut one = [0u8; 1];
        assert_eq!(rx.recv(sock_rx, &mut one, MSG_OOB), Ok(1));
        assert_eq!(one[0], b'a' + round, "round {round}");
        let data: Vec<u8> = recv_calls(rx, sock_rx, 4001).concat();
        assert!(data[..4000].iter().all(|&d| d == b'.'), "round {round}");
        assert_eq!(data[4000], b'!', "round {round}");
        assert!(at_mark(rx, sock_rx));
    }
}
