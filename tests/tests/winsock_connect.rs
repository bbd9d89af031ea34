//! CHECKLIST Part 2 group E: `connect` on stream and datagram sockets (Part 1 §1.3).

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use ws2_stack::winsock::*;
use ws2_stack::WsaError;
use ws2_tap::VirtualSwitch;
use ws2_tests::*;

/// Conformance: 102 — `connect` of a TCP socket to address 0.0.0.0 fails with `WSAEADDRNOTAVAIL`.
#[test]
fn connect_to_any_address() {
    let (a, _b) = two_hosts(102);
    let s = new_socket(&a, SOCK_STREAM);
    assert_wsa_error(
        connect(&a, s, at(Ipv4Addr::UNSPECIFIED, 80)),
        WsaError::WSAEADDRNOTAVAIL,
    );
    assert_wsa_error(
        connect(&a, s, at(Ipv4Addr::UNSPECIFIED, 0)),
        WsaError::WSAEADDRNOTAVAIL,
    );
}

/// Conformance: 103 — `connect` on an already connected TCP socket fails with `WSAEISCONN`.
#[test]
fn connect_twice() {
    let (a, b) = two_hosts(103);
    let (c, s) = tcp_pair(&a, &b, 10300);
    assert_wsa_error(connect(&a, c, at(B, 10300)), WsaError::WSAEISCONN);
    assert_wsa_error(connect(&a, c, at(B, 10301)), WsaError::WSAEISCONN);
    assert_wsa_error(connect(&b, s, at(A, 10302)), WsaError::WSAEISCONN);
    // The connection is untouched.
    send_all(&a, c, b"ok");
    assert_eq!(recv_exact(&b, s, 2), b"ok");
}

/// Conformance: 104 — `connect` on a listening socket fails with `WSAEINVAL`.
#[test]
fn connect_listening() {
    let (a, _b) = two_hosts(104);
    let l = listener(&a, at(A, 10400), 1);
    assert_wsa_error(connect(&a, l, at(B, 10400)), WsaError::WSAEINVAL);
    assert_eq!(
        get_int(&a, l, SOL_SOCKET, SO_ACCEPTCONN),
        Ok(1),
        "still listening"
    );
}

/// Conformance: 105 — a blocking `connect` to a port with no listener fails with `WSAECONNREFUSED`.
#[test]
fn connect_refused() {
    let (a, _b) = two_hosts(105);
    let s = new_socket(&a, SOCK_STREAM);
    let started = Instant::now();
    assert_wsa_error(connect(&a, s, at(B, 10500)), WsaError::WSAECONNREFUSED);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "refused, not timed out"
    );
    // Loopback too: the stack answers itself.
    let s = new_socket(&a, SOCK_STREAM);
    assert_wsa_error(connect(&a, s, at(A, 10501)), WsaError::WSAECONNREFUSED);
}

/// Conformance: 106 — a blocking `connect` to an unreachable network fails with `WSAENETUNREACH`.
#[test]
fn connect_unreachable_network() {
    let (a, _b) = two_hosts(106);
    let s = new_socket(&a, SOCK_STREAM);
    assert_wsa_error(
        connect(&a, s, at(Ipv4Addr::new(192, 0, 2, 1), 80)),
        WsaError::WSAENETUNREACH,
    );
    assert_wsa_error(
        connect(&a, s, at(Ipv4Addr::new(10, 0, 1, 2), 80)),
        WsaError::WSAENETUNREACH,
    );
}

/// Conformance: 107 — a blocking `connect` to a silent host fails with `WSAETIMEDOUT`.
#[test]
fn connect_silent_host_times_out() {
    let switch = VirtualSwitch::new(107);
    let mut cfg = config(A);
    cfg.connect_timeout = Duration::from_secs(1);
    let a = started(&stack_on(&switch, cfg));
    let s = new_socket(&a, SOCK_STREAM);
    let started = Instant::now();
    assert_wsa_error(connect(&a, s, at(SILENT, 80)), WsaError::WSAETIMEDOUT);
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(5),
        "{took:?}"
    );
}

/// Conformance: 108 — `connect` on a nonblocking TCP socket returns `SOCKET_ERROR` with `WSAEWOULDBLOCK` (never `WSAEINPROGRESS`).
#[test]
fn nonblocking_connect_would_block() {
    let (a, b) = two_hosts(108);
    let l = listener(&b, at(B, 10800), 1);
    let s = new_socket(&a, SOCK_STREAM);
    set_nonblocking(&a, s, true);
    assert_would_block(connect(&a, s, at(B, 10800)));
    assert!(
        wait_until(Duration::from_secs(5), || poll_one(&a, s, 10).1),
        "completes"
    );
    b.accept(l, None, None).expect("accept");
}

/// Conformance: 109 — a second `connect` while a nonblocking connect is still pending fails with `WSAEALREADY`.
#[test]
fn second_connect_while_pending() {
    let (a, _b) = two_hosts(109);
    let s = new_socket(&a, SOCK_STREAM);
    set_nonblocking(&a, s, true);
    // Nobody answers SILENT, so the connect stays pending.
    assert_would_block(connect(&a, s, at(SILENT, 80)));
    assert_wsa_error(connect(&a, s, at(SILENT, 80)), WsaError::WSAEALREADY);
    assert_wsa_error(connect(&a, s, at(B, 81)), WsaError::WSAEALREADY);
}

/// Conformance: 110 — in 1.1 mode the pending-connect case fails with `WSAEINVAL` instead of `WSAEALREADY`.
#[test]
fn second_connect_while_pending_v11() {
    let switch = VirtualSwitch::new(110);
    let a = started_version(&stack_on(&switch, config(A)), MAKEWORD(1, 1));
    let s = new_socket(&a, SOCK_STREAM);
    set_nonblocking(&a, s, true);
    assert_would_block(connect(&a, s, at(SILENT, 80)));
    assert_wsa_error(connect(&a, s, at(SILENT, 80)), WsaError::WSAEINVAL);
}

/// Conformance: 111 — a nonblocking connect that succeeds makes the socket appear in `select`'s writefds.
#[test]
fn nonblocking_connect_success_is_writable() {
    let (a, b) = two_hosts(111);
    let l = listener(&b, at(B, 11100), 1);
    let s = new_socket(&a, SOCK_STREAM);
    set_nonblocking(&a, s, true);
    assert_would_block(connect(&a, s, at(B, 11100)));
    let (mut w, mut e) = (fd_set(&[s]), fd_set(&[s]));
    let t = timeval_ms(5000);
    assert_eq!(
        a.select(0, None, Some(&mut w), Some(&mut e), Some(&t)),
        Ok(1)
    );
    assert!(FD_ISSET(s, &w) && !FD_ISSET(s, &e));
    assert_eq!(get_int(&a, s, SOL_SOCKET, SO_ERROR), Ok(0));
    b.accept(l, None, None).expect("accept");
    assert_eq!(peer_name(&a, s), Ok(at(B, 11100)));
}

/// Conformance: 112 — a nonblocking connect that fails makes the socket appear in `select`'s exceptfds (and not in writefds).
#[test]
fn nonblocking_connect_failure_is_exceptional() {
    let (a, _b) = two_hosts(112);
    let s = new_socket(&a, SOCK_STREAM);
    set_nonblocking(&a, s, true);
    assert_would_block(connect(&a, s, at(B, 11200)));
    let (mut w, mut e) = (fd_set(&[s]), fd_set(&[s]));
    let t = timeval_ms(5000);
    assert_eq!(
        a.select(0, None, Some(&mut w), Some(&mut e), Some(&t)),
        Ok(1)
    );
    assert!(FD_ISSET(s, &e), "in exceptfds");
    assert!(!FD_ISSET(s, &w), "not in writefds");
    assert_eq!(
        get_int(&a, s, SOL_SOCKET, SO_ERROR),
        Ok(WsaError::WSAECONNREFUSED.0),
        "D-10"
    );
}

/// Conformance: 116 — after `connect` fails with `WSAECONNREFUSED`, calling `connect` again on the same socket to a listening port succeeds.
#[test]
fn connect_again_after_refusal() {
    let (a, b) = two_hosts(116);
    let s = new_socket(&a, SOCK_STREAM);
    assert_wsa_error(connect(&a, s, at(B, 11600)), WsaError::WSAECONNREFUSED);
    let l = listener(&b, at(B, 11600), 1);
    connect(&a, s, at(B, 11600)).expect("second attempt");
    let srv = b.accept(l, None, None).expect("accept");
    send_all(&a, s, b"again");
    assert_eq!(recv_exact(&b, srv, 5), b"again");
}

/// Conformance: 117 — `connect` on a UDP socket sets the default destination so `send` and `recv` work.
#[test]
fn udp_connect_sets_default_peer() {
    let (a, b) = two_hosts(117);
    let srv = udp_bound(&b, at(B, 11700));
    let s = new_socket(&a, SOCK_DGRAM);
    connect(&a, s, at(B, 11700)).expect("connect");
    assert_eq!(a.send(s, b"to the peer", 0), Ok(11));
    let mut buf = [0u8; 64];
    let (n, from) = recvfrom(&b, srv, &mut buf, 0).expect("recvfrom");
    assert_eq!(&buf[..n as usize], b"to the peer");
    sendto(&b, srv, b"back", from).expect("reply");
    assert_eq!(a.recv(s, &mut buf, 0), Ok(4));
    assert_eq!(&buf[..4], b"back");
}

/// Conformance: 118 — a connected UDP socket silently discards datagrams arriving from any other address.
#[test]
fn connected_udp_filters_senders() {
    let (a, b) = two_hosts(118);
    let s = udp_bound(&a, at(A, 11800));
    connect(&a, s, at(B, 11801)).expect("connect");
    let peer = udp_bound(&b, at(B, 11801));
    let stranger = udp_bound(&b, at(B, 11802));
    sendto(&b, stranger, b"stranger", at(A, 11800)).expect("sendto");
    sendto(&b, peer, b"peer", at(A, 11800)).expect("sendto");
    let mut buf = [0u8; 64];
    let (n, from) = recvfrom(&a, s, &mut buf, 0).expect("recvfrom");
    assert_eq!((&buf[..n as usize], from), (&b"peer"[..], at(B, 11801)));
    set_nonblocking(&a, s, true);
    assert_would_block(a.recv(s, &mut buf, 0));
}

/// Conformance: 119 — `connect` of a UDP socket to 0.0.0.0 disconnects it so `send` and `recv` fail with `WSAENOTCONN` while `sendto` and `recvfrom` still work.
#[test]
fn udp_connect_to_any_disconnects() {
    let (a, b) = two_hosts(119);
    let srv = udp_bound(&b, at(B, 11900));
    let s = udp_bound(&a, at(A, 11901));
    connect(&a, s, at(B, 11900)).expect("connect");
    connect(&a, s, at(Ipv4Addr::UNSPECIFIED, 0)).expect("disconnect");
    assert_wsa_error(a.send(s, b"x", 0), WsaError::WSAENOTCONN);
    let mut buf = [0u8; 16];
    assert_wsa_error(a.recv(s, &mut buf, 0), WsaError::WSAENOTCONN);
    assert_wsa_error(peer_name(&a, s), WsaError::WSAENOTCONN);
    sendto(&a, s, b"still", at(B, 11900)).expect("sendto works");
    assert_eq!(recvfrom(&b, srv, &mut buf, 0).map(|(n, _)| n), Ok(5));
    // Any sender is accepted again.
    let other = udp_bound(&b, at(B, 11902));
    sendto(&b, other, b"anyone", at(A, 11901)).expect("sendto");
    assert_eq!(recvfrom(&a, s, &mut buf, 0), Ok((6, at(B, 11902))));
}

/// Conformance: 120 — re-`connect`ing a UDP socket to a different peer discards datagrams already queued for receipt.
#[test]
fn udp_reconnect_elsewhere_discards_queue() {
    let (a, b) = two_hosts(120);
    let s = udp_bound(&a, at(A, 12000));
    connect(&a, s, at(B, 12001)).expect("connect");
    let first = udp_bound(&b, at(B, 12001));
    let second = udp_bound(&b, at(B, 12002));
    sendto(&b, first, b"queued", at(A, 12000)).expect("sendto");
    assert!(wait_readable(&a, s, 5000), "queued");
    connect(&a, s, at(B, 12002)).expect("reconnect");
    set_nonblocking(&a, s, true);
    let mut buf = [0u8; 16];
    assert_would_block(a.recv(s, &mut buf, 0));
    sendto(&b, second, b"new", at(A, 12000)).expect("sendto");
    assert_eq!(
        retry(Duration::from_secs(5), || a.recv(s, &mut buf, 0)),
        Ok(3)
    );
}

/// Conformance: 121 — re-`connect`ing a UDP socket to the same peer keeps queued datagrams.
#[test]
fn udp_reconnect_same_peer_keeps_queue() {
    let (a, b) = two_hosts(121);
    let s = udp_bound(&a, at(A, 12100));
    connect(&a, s, at(B, 12101)).expect("connect");
    let peer = udp_bound(&b, at(B, 12101));
    sendto(&b, peer, b"queued", at(A, 12100)).expect("sendto");
    assert!(wait_readable(&a, s, 5000), "queued");
    connect(&a, s, at(B, 12101)).expect("reconnect to the same peer");
    let mut buf = [0u8; 16];
    assert_eq!(a.recv(s, &mut buf, 0), Ok(6));
    assert_eq!(&buf[..6], b"queued");
}

/// Conformance: 122 — `connect` of a UDP socket to a broadcast address fails with `WSAEACCES` unless `SO_BROADCAST` is enabled.
#[test]
fn udp_connect_broadcast_needs_so_broadcast() {
    let (a, _b) = two_hosts(122);
    let s = new_socket(&a, SOCK_DGRAM);
    for bcast in [Ipv4Addr::BROADCAST, Ipv4Addr::new(10, 0, 0, 255)] {
        assert_wsa_error(connect(&a, s, at(bcast, 12200)), WsaError::WSAEACCES);
    }
    set_int(&a, s, SOL_SOCKET, SO_BROADCAST, 1).expect("SO_BROADCAST");
    connect(&a, s, at(Ipv4Addr::BROADCAST, 12200)).expect("allowed now");
    assert_eq!(peer_name(&a, s), Ok(at(Ipv4Addr::BROADCAST, 12200)));
}
