//! CHECKLIST Part 2 group B: `socket` and `WSASocket` (Part 1 §1.2).

use ws2_stack::winsock::*;
use ws2_stack::WsaError;
use ws2_tap::VirtualSwitch;
use ws2_tests::*;

/// Conformance: 22 — `socket(AF_INET, SOCK_STREAM, 0)` creates a TCP socket and `socket(AF_INET, SOCK_DGRAM, 0)` creates a UDP socket.
#[test]
fn stream_is_tcp_and_dgram_is_udp() {
    let (a, b) = two_hosts(22);
    let t = a.socket(AF_INET, SOCK_STREAM, 0).expect("TCP socket");
    let u = a.socket(AF_INET, SOCK_DGRAM, 0).expect("UDP socket");
    assert_eq!(get_int(&a, t, SOL_SOCKET, SO_TYPE), Ok(SOCK_STREAM));
    assert_eq!(get_int(&a, u, SOL_SOCKET, SO_TYPE), Ok(SOCK_DGRAM));
    // The explicit protocol numbers name the same transports.
    let t2 = a
        .socket(AF_INET, SOCK_STREAM, IPPROTO_TCP)
        .expect("TCP socket");
    let u2 = a
        .socket(AF_INET, SOCK_DGRAM, IPPROTO_UDP)
        .expect("UDP socket");
    assert_eq!(get_int(&a, t2, SOL_SOCKET, SO_TYPE), Ok(SOCK_STREAM));
    assert_eq!(get_int(&a, u2, SOL_SOCKET, SO_TYPE), Ok(SOCK_DGRAM));
    // And they behave as such on the wire: a stream connects, a datagram socket sends.
    let l = listener(&b, at(B, 2200), 1);
    connect(&a, t, at(B, 2200)).expect("TCP connect");
    b.accept(l, None, None).expect("accept");
    let rx = udp_bound(&b, at(B, 2201));
    sendto(&a, u, b"dgram", at(B, 2201)).expect("sendto");
    let mut buf = [0u8; 16];
    assert_eq!(recvfrom(&b, rx, &mut buf, 0).map(|(n, _)| n), Ok(5));
}

/// Conformance: 23 — a successful `socket` never returns `INVALID_SOCKET`, and a failed one always does.
#[test]
fn invalid_socket_only_on_failure() {
    let (a, _b) = two_hosts(23);
    let mut seen = std::collections::HashSet::new();
    for i in 0..200 {
        let ty = if i % 2 == 0 { SOCK_STREAM } else { SOCK_DGRAM };
        let s = a.socket(AF_INET, ty, 0).expect("socket");
        assert_ne!(s, INVALID_SOCKET);
        assert!(seen.insert(s), "handles are distinct");
    }
    // The Rust API returns `Err` where C returns INVALID_SOCKET: no handle leaks out of a
    // failure, and the failure names its cause.
    let bad = a.socket(AF_INET, SOCK_STREAM, IPPROTO_UDP);
    assert!(bad.is_err());
    assert_eq!(bad.err().map(|e| WSAGetLastError() == e.0), Some(true));
}

/// Conformance: 24 — `socket` with an unsupported address family fails with `WSAEAFNOSUPPORT`.
#[test]
fn unsupported_family() {
    let (a, _b) = two_hosts(24);
    for af in [AF_UNSPEC, AF_INET6, 1, 99, -1] {
        assert_wsa_error(a.socket(af, SOCK_STREAM, 0), WsaError::WSAEAFNOSUPPORT);
        assert_wsa_error(
            a.WSASocket(af, SOCK_DGRAM, 0, None, 0, 0),
            WsaError::WSAEAFNOSUPPORT,
        );
    }
    assert_eq!(a.stack().stats().sockets, 0, "nothing was created");
}

/// Conformance: 25 — `socket(AF_INET, SOCK_STREAM, IPPROTO_UDP)` fails with `WSAEPROTOTYPE`.
#[test]
fn protocol_of_the_wrong_type() {
    let (a, _b) = two_hosts(25);
    assert_wsa_error(
        a.socket(AF_INET, SOCK_STREAM, IPPROTO_UDP),
        WsaError::WSAEPROTOTYPE,
    );
    assert_wsa_error(
        a.socket(AF_INET, SOCK_DGRAM, IPPROTO_TCP),
        WsaError::WSAEPROTOTYPE,
    );
}

/// Conformance: 26 — `socket` with a socket type not supported in `AF_INET` fails with `WSAESOCKTNOSUPPORT` (`SOCK_RDM` is RMP's, docs/rmp.md).
#[test]
fn unsupported_socket_type() {
    let (a, _b) = two_hosts(26);
    for ty in [SOCK_SEQPACKET, 0, 42] {
        assert_wsa_error(a.socket(AF_INET, ty, 0), WsaError::WSAESOCKTNOSUPPORT);
    }
}

/// Conformance: 27 — `socket` with an unknown protocol number fails with `WSAEPROTONOSUPPORT`.
#[test]
fn unknown_protocol() {
    let (a, _b) = two_hosts(27);
    for proto in [200, 254, 1000, -5] {
        assert_wsa_error(
            a.socket(AF_INET, SOCK_STREAM, proto),
            WsaError::WSAEPROTONOSUPPORT,
        );
        assert_wsa_error(
            a.socket(AF_INET, SOCK_DGRAM, proto),
            WsaError::WSAEPROTONOSUPPORT,
        );
    }
}

/// Conformance: 28 — creating sockets beyond the configured descriptor limit fails with `WSAEMFILE`.
#[test]
fn descriptor_limit() {
    let switch = VirtualSwitch::new(28);
    let mut cfg = config(A);
    cfg.max_sockets = 8;
    let a = started(&stack_on(&switch, cfg));
    let b = started(&stack_on(&switch, config(B)));
    let sockets: Vec<SOCKET> = (0..8).map(|_| new_socket(&a, SOCK_DGRAM)).collect();
    assert_wsa_error(a.socket(AF_INET, SOCK_DGRAM, 0), WsaError::WSAEMFILE);
    assert_wsa_error(a.socket(AF_INET, SOCK_STREAM, 0), WsaError::WSAEMFILE);
    // An accept that would pass the limit fails the same way.
    a.closesocket(sockets[0]).expect("close");
    let l = listener(&a, at(A, 2800), 2);
    let c = new_socket(&b, SOCK_STREAM);
    connect(&b, c, at(A, 2800)).expect("the stack completes the handshake");
    assert_wsa_error(a.accept(l, None, None), WsaError::WSAEMFILE);
    // Closing one makes room again.
    a.closesocket(sockets[1]).expect("close");
    assert!(a.socket(AF_INET, SOCK_DGRAM, 0).is_ok());
}

/// Conformance: 35 — `WSASocket` with `g = 0` creates a socket whose `SO_GROUP_ID` is 0.
#[test]
fn no_group_means_group_id_zero() {
    let (a, _b) = two_hosts(35);
    for ty in [SOCK_STREAM, SOCK_DGRAM] {
        let s = a.WSASocket(AF_INET, ty, 0, None, 0, 0).expect("WSASocket");
        assert_eq!(get_int(&a, s, SOL_SOCKET, SO_GROUP_ID), Ok(0));
    }
}

/// Conformance: 230 — creating a socket with `WSA_FLAG_OVERLAPPED` does not make it nonblocking.
#[test]
fn overlapped_flag_keeps_blocking_mode() {
    let (a, b) = two_hosts(230);
    let l = a
        .WSASocket(AF_INET, SOCK_STREAM, 0, None, 0, WSA_FLAG_OVERLAPPED)
        .expect("WSASocket");
    bind(&a, l, at(A, 2300)).expect("bind");
    a.listen(l, 1).expect("listen");
    // A blocking accept waits for the client instead of failing WSAEWOULDBLOCK.
    let client = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(100));
        let c = new_socket(&b, SOCK_STREAM);
        connect(&b, c, at(A, 2300)).expect("connect");
        (b, c)
    });
    let started = std::time::Instant::now();
    let s = a.accept(l, None, None).expect("a blocking accept");
    assert!(
        started.elapsed() >= std::time::Duration::from_millis(50),
        "it waited"
    );
    let (b, c) = client.join().expect("client");
    // Same for recv on the accepted (overlapped, blocking) socket.
    let sender = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(100));
        send_all(&b, c, b"late");
        (b, c)
    });
    let mut buf = [0u8; 4];
    assert_eq!(a.recv(s, &mut buf, 0), Ok(4));
    let _ = sender.join();
}
