//! CHECKLIST Part 2 group C: `bind`, `listen`, `accept`, `getsockname`, `getpeername`
//! (Part 1 §1.3).

use std::net::Ipv4Addr;
use std::thread;
use std::time::{Duration, Instant};

use ws2_stack::winsock::*;
use ws2_stack::WsaError;
use ws2_tests::*;

/// Conformance: 46 — `bind` on a socket that is already bound fails with `WSAEINVAL`.
#[test]
fn bind_twice() {
    let (a, _b) = two_hosts(46);
    for ty in [SOCK_STREAM, SOCK_DGRAM] {
        let s = new_socket(&a, ty);
        bind(&a, s, at(A, 4600)).expect("first bind");
        assert_wsa_error(bind(&a, s, at(A, 4601)), WsaError::WSAEINVAL);
        assert_wsa_error(bind(&a, s, at(A, 4600)), WsaError::WSAEINVAL);
        assert_eq!(local_name(&a, s), Ok(at(A, 4600)), "the first name stays");
        a.closesocket(s).expect("close");
    }
}

/// Conformance: 47 — `bind` to an address and port already bound by another socket fails with `WSAEADDRINUSE`.
#[test]
fn bind_in_use() {
    let (a, _b) = two_hosts(47);
    for ty in [SOCK_STREAM, SOCK_DGRAM] {
        let first = new_socket(&a, ty);
        bind(&a, first, at(A, 4700)).expect("first bind");
        let second = new_socket(&a, ty);
        assert_wsa_error(bind(&a, second, at(A, 4700)), WsaError::WSAEADDRINUSE);
        // INADDR_ANY on the same port overlaps the specific address too.
        assert_wsa_error(
            bind(&a, second, at(Ipv4Addr::UNSPECIFIED, 4700)),
            WsaError::WSAEADDRINUSE,
        );
        // The failed bind left the socket unbound: another port still works.
        bind(&a, second, at(A, 4701)).expect("bind elsewhere");
        // Once the first is closed its port is free again.
        a.closesocket(first).expect("close");
        let third = new_socket(&a, ty);
        bind(&a, third, at(A, 4700)).expect("port released");
        a.closesocket(second).expect("close");
        a.closesocket(third).expect("close");
    }
}

/// Conformance: 48 — `bind` to an in-use address succeeds when `SO_REUSEADDR` was set on the socket before the `bind`.
#[test]
fn reuseaddr_before_bind() {
    let (a, _b) = two_hosts(48);
    for ty in [SOCK_STREAM, SOCK_DGRAM] {
        let first = new_socket(&a, ty);
        bind(&a, first, at(A, 4800)).expect("first bind");
        let second = new_socket(&a, ty);
        set_int(&a, second, SOL_SOCKET, SO_REUSEADDR, 1).expect("SO_REUSEADDR");
        bind(&a, second, at(A, 4800)).expect("bind with SO_REUSEADDR");
        assert_eq!(local_name(&a, second), Ok(at(A, 4800)));
        a.closesocket(first).expect("close");
        a.closesocket(second).expect("close");
    }
}

/// Conformance: 49 — setting `SO_REUSEADDR` on a socket after it is bound has no effect on later `bind` conflicts involving that socket.
#[test]
fn reuseaddr_after_bind_changes_nothing() {
    let (a, _b) = two_hosts(49);
    let first = new_socket(&a, SOCK_DGRAM);
    bind(&a, first, at(A, 4900)).expect("first bind");
    set_int(&a, first, SOL_SOCKET, SO_REUSEADDR, 1).expect("SO_REUSEADDR after bind");
    assert_eq!(
        get_int(&a, first, SOL_SOCKET, SO_REUSEADDR),
        Ok(1),
        "the value is kept"
    );
    let second = new_socket(&a, SOCK_DGRAM);
    assert_wsa_error(bind(&a, second, at(A, 4900)), WsaError::WSAEADDRINUSE);
    // Resetting it after bind does not take away what the bind got either.
    let reuser = new_socket(&a, SOCK_DGRAM);
    set_int(&a, reuser, SOL_SOCKET, SO_REUSEADDR, 1).expect("SO_REUSEADDR");
    bind(&a, reuser, at(A, 4901)).expect("bind");
    set_int(&a, reuser, SOL_SOCKET, SO_REUSEADDR, 0).expect("reset after bind");
    let third = new_socket(&a, SOCK_DGRAM);
    set_int(&a, third, SOL_SOCKET, SO_REUSEADDR, 1).expect("SO_REUSEADDR");
    bind(&a, third, at(A, 4901)).expect("the new socket's own option decides");
}

/// Conformance: 50 — `bind` with a `name` whose `sa_family` differs from the socket's address family fails with `WSAEFAULT`.
#[test]
fn bind_wrong_family() {
    let (a, _b) = two_hosts(50);
    let s = new_socket(&a, SOCK_STREAM);
    for family in [AF_UNSPEC, AF_INET6, 1, -1] {
        let mut name = sa(at(A, 5000));
        name.sin_family = family as i16;
        assert_wsa_error(a.bind(s, Some(&name), SOCKADDR_IN_LEN), WsaError::WSAEFAULT);
    }
    bind(&a, s, at(A, 5000)).expect("the socket is still unbound");
}

/// Conformance: 51 — `bind` with `namelen` smaller than `sizeof(sockaddr_in)` fails with `WSAEFAULT`.
#[test]
fn bind_short_namelen() {
    let (a, _b) = two_hosts(51);
    let s = new_socket(&a, SOCK_DGRAM);
    let name = sa(at(A, 5100));
    for len in [-1, 0, 2, 8, 15] {
        assert_wsa_error(a.bind(s, Some(&name), len), WsaError::WSAEFAULT);
    }
    assert_wsa_error(a.bind(s, None, SOCKADDR_IN_LEN), WsaError::WSAEFAULT);
    a.bind(s, Some(&name), SOCKADDR_IN_LEN)
        .expect("full length works");
}

/// Conformance: 52, 513 — `bind` with port 0 assigns a port between 1024 and 5000 that `getsockname` reports (in network byte order, family in host order).
#[test]
fn bind_port_zero_is_ephemeral() {
    let (a, _b) = two_hosts(52);
    for ty in [SOCK_STREAM, SOCK_DGRAM] {
        let s = new_socket(&a, ty);
        bind(&a, s, at(A, 0)).expect("bind");
        let mut name = SOCKADDR_IN::default();
        let mut len = SOCKADDR_IN_LEN;
        a.getsockname(s, Some(&mut name), Some(&mut len))
            .expect("getsockname");
        assert_eq!(name.sin_family, AF_INET as i16, "sin_family in host order");
        let port = ntohs(name.sin_port);
        assert!((1024..=5000).contains(&port), "port {port}");
        assert_eq!(ntohl(name.sin_addr.S_addr), u32::from(A));
    }
}

/// Conformance: 53 — two sockets bound with port 0 receive different ports.
#[test]
fn port_zero_ports_are_unique() {
    let (a, _b) = two_hosts(53);
    let mut seen = std::collections::HashSet::new();
    for _ in 0..100 {
        let s = new_socket(&a, SOCK_DGRAM);
        bind(&a, s, at(Ipv4Addr::UNSPECIFIED, 0)).expect("bind");
        assert!(
            seen.insert(local_name(&a, s).expect("name").port()),
            "duplicate port"
        );
    }
}

/// Conformance: 54 — `bind` to an IP address that is not configured on the local stack fails with `WSAEADDRNOTAVAIL`.
#[test]
fn bind_foreign_address() {
    let (a, _b) = two_hosts(54);
    let s = new_socket(&a, SOCK_STREAM);
    for ip in [B, Ipv4Addr::new(10, 0, 0, 99), Ipv4Addr::new(192, 0, 2, 1)] {
        assert_wsa_error(bind(&a, s, at(ip, 5400)), WsaError::WSAEADDRNOTAVAIL);
    }
    bind(&a, s, at(Ipv4Addr::LOCALHOST, 5400)).expect("loopback is always local");
}

/// Conformance: 55 — `bind` completes immediately on a blocking socket.
#[test]
fn bind_does_not_block() {
    let (a, _b) = two_hosts(55);
    let started = Instant::now();
    for port in 5500..5600 {
        let s = new_socket(&a, SOCK_STREAM);
        bind(&a, s, at(A, port)).expect("bind");
    }
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?} for 100 binds",
        started.elapsed()
    );
}

/// Conformance: 56 — `listen` on a socket that was never bound fails with `WSAEINVAL`.
#[test]
fn listen_unbound() {
    let (a, _b) = two_hosts(56);
    let s = new_socket(&a, SOCK_STREAM);
    assert_wsa_error(a.listen(s, 5), WsaError::WSAEINVAL);
    assert_eq!(get_int(&a, s, SOL_SOCKET, SO_ACCEPTCONN), Ok(0));
}

/// Conformance: 57 — `listen` on a `SOCK_DGRAM` socket fails with `WSAEOPNOTSUPP`.
#[test]
fn listen_datagram() {
    let (a, _b) = two_hosts(57);
    let s = udp_bound(&a, at(A, 5700));
    assert_wsa_error(a.listen(s, 5), WsaError::WSAEOPNOTSUPP);
}

/// Conformance: 58 — `listen` on a connected TCP socket fails with `WSAEISCONN`.
#[test]
fn listen_connected() {
    let (a, b) = two_hosts(58);
    let (c, s) = tcp_pair(&a, &b, 5800);
    assert_wsa_error(a.listen(c, 5), WsaError::WSAEISCONN);
    assert_wsa_error(b.listen(s, 5), WsaError::WSAEISCONN);
}

/// Conformance: 59 — `listen(s, SOMAXCONN)` succeeds and an out-of-range backlog (0, negative or huge) is silently clamped rather than rejected.
#[test]
fn backlog_is_clamped() {
    let (a, b) = two_hosts(59);
    for (i, backlog) in [SOMAXCONN, 0, -7, i32::MAX - 1, 1_000_000]
        .into_iter()
        .enumerate()
    {
        let port = 5900 + i as u16;
        let l = listener(&b, at(B, port), backlog);
        // However odd the backlog, the listener takes at least one connection.
        let c = new_socket(&a, SOCK_STREAM);
        connect(&a, c, at(B, port)).expect("connect");
        b.accept(l, None, None).expect("accept");
    }
}

/// Conformance: 60 — when the backlog is full, an additional client `connect` fails with `WSAECONNREFUSED`.
#[test]
fn full_backlog_refuses() {
    let (a, b) = two_hosts(60);
    let l = listener(&b, at(B, 6000), 2);
    for _ in 0..2 {
        let c = new_socket(&a, SOCK_STREAM);
        connect(&a, c, at(B, 6000)).expect("within the backlog");
    }
    let extra = new_socket(&a, SOCK_STREAM);
    assert_wsa_error(connect(&a, extra, at(B, 6000)), WsaError::WSAECONNREFUSED);
    // Accepting one makes room for the next attempt.
    b.accept(l, None, None).expect("accept");
    connect(&a, extra, at(B, 6000)).expect("room again");
}

/// Conformance: 61 — calling `listen` again with a smaller backlog resets and drops the pending connections that exceed it.
#[test]
fn shrinking_backlog_resets_the_excess() {
    let (a, b) = two_hosts(61);
    let l = listener(&b, at(B, 6100), 3);
    let clients: Vec<SOCKET> = (0..3)
        .map(|_| {
            let c = new_socket(&a, SOCK_STREAM);
            connect(&a, c, at(B, 6100)).expect("connect");
            c
        })
        .collect();
    b.listen(l, 1).expect("listen again, smaller");
    set_nonblocking(&b, l, true);
    let kept = b.accept(l, None, None).expect("one connection is kept");
    let kept_peer = peer_name(&b, kept).expect("peer");
    assert_would_block(b.accept(l, None, None));
    let mut buf = [0u8; 4];
    let mut reset = 0;
    for c in clients {
        set_nonblocking(&a, c, true);
        if local_name(&a, c) == Ok(kept_peer) {
            assert_would_block(a.recv(c, &mut buf, 0));
        } else {
            assert_wsa_error(
                retry(Duration::from_secs(5), || a.recv(c, &mut buf, 0)),
                WsaError::WSAECONNRESET,
            );
            reset += 1;
        }
    }
    assert_eq!(
        reset, 2,
        "the two connections beyond the new backlog were reset"
    );
}

/// Conformance: 62 — `getsockopt(SO_ACCEPTCONN)` returns FALSE before `listen` and TRUE after it.
#[test]
fn acceptconn() {
    let (a, _b) = two_hosts(62);
    let s = new_socket(&a, SOCK_STREAM);
    assert_eq!(get_int(&a, s, SOL_SOCKET, SO_ACCEPTCONN), Ok(0));
    bind(&a, s, at(A, 6200)).expect("bind");
    assert_eq!(get_int(&a, s, SOL_SOCKET, SO_ACCEPTCONN), Ok(0));
    a.listen(s, 1).expect("listen");
    assert_eq!(get_int(&a, s, SOL_SOCKET, SO_ACCEPTCONN), Ok(1));
}

/// Conformance: 63 — `accept` on a bound socket that is not listening fails with `WSAEINVAL`.
#[test]
fn accept_not_listening() {
    let (a, _b) = two_hosts(63);
    let s = new_socket(&a, SOCK_STREAM);
    bind(&a, s, at(A, 6300)).expect("bind");
    assert_wsa_error(a.accept(s, None, None), WsaError::WSAEINVAL);
}

/// Conformance: 64 — `accept` on a `SOCK_DGRAM` socket fails with `WSAEOPNOTSUPP`.
#[test]
fn accept_datagram() {
    let (a, _b) = two_hosts(64);
    let s = udp_bound(&a, at(A, 6400));
    assert_wsa_error(a.accept(s, None, None), WsaError::WSAEOPNOTSUPP);
}

/// Conformance: 65 — `accept` on a nonblocking listening socket with no pending connection fails with `WSAEWOULDBLOCK`.
#[test]
fn accept_nonblocking_empty() {
    let (a, _b) = two_hosts(65);
    let l = listener(&a, at(A, 6500), 4);
    set_nonblocking(&a, l, true);
    let started = Instant::now();
    assert_would_block(a.accept(l, None, None));
    assert!(started.elapsed() < Duration::from_millis(500));
}

/// Conformance: 66 — `accept` on a blocking listening socket blocks until a client connects and then returns a connected socket.
#[test]
fn accept_blocks_until_a_client_connects() {
    let (a, b) = two_hosts(66);
    let l = listener(&b, at(B, 6600), 4);
    let client = thread::spawn(move || {
        thread::sleep(Duration::from_millis(200));
        let c = new_socket(&a, SOCK_STREAM);
        connect(&a, c, at(B, 6600)).expect("connect");
        send_all(&a, c, b"hi");
        (a, c)
    });
    let started = Instant::now();
    let s = b.accept(l, None, None).expect("accept");
    assert!(
        started.elapsed() >= Duration::from_millis(150),
        "accept returned before the client came"
    );
    assert_eq!(recv_exact(&b, s, 2), b"hi", "a connected socket");
    let (a, c) = client.join().expect("client");
    assert_eq!(peer_name(&b, s), local_name(&a, c));
}

/// Conformance: 67 — `accept` stores the client's address in `addr` and sets `*addrlen` to 16 for `AF_INET`.
#[test]
fn accept_reports_the_client() {
    let (a, b) = two_hosts(67);
    let l = listener(&b, at(B, 6700), 4);
    let c = new_socket(&a, SOCK_STREAM);
    bind(&a, c, at(A, 6767)).expect("bind");
    connect(&a, c, at(B, 6700)).expect("connect");
    let mut addr = SOCKADDR_IN::default();
    let mut len = 100;
    b.accept(l, Some(&mut addr), Some(&mut len))
        .expect("accept");
    assert_eq!(len, 16);
    assert_eq!(addr.sin_family, AF_INET as i16);
    assert_eq!(addr.to_socket_addr(), at(A, 6767));
}

/// Conformance: 68 — `accept` with `*addrlen` smaller than the address size fails with `WSAEFAULT`.
#[test]
fn accept_short_addrlen() {
    let (a, b) = two_hosts(68);
    let l = listener(&b, at(B, 6800), 4);
    let c = new_socket(&a, SOCK_STREAM);
    connect(&a, c, at(B, 6800)).expect("connect");
    let mut addr = SOCKADDR_IN::default();
    for short in [0, 4, 15, -1] {
        let mut len = short;
        assert_wsa_error(
            b.accept(l, Some(&mut addr), Some(&mut len)),
            WsaError::WSAEFAULT,
        );
        assert_eq!(len, short, "addrlen untouched");
    }
    // The pending connection was not consumed by the failures.
    let mut len = 16;
    b.accept(l, Some(&mut addr), Some(&mut len))
        .expect("accept");
    assert_eq!(addr.to_socket_addr(), local_name(&a, c).expect("name"));
}

/// Conformance: 69 — `accept` with `addr` and `addrlen` both NULL succeeds.
#[test]
fn accept_without_address() {
    let (a, b) = two_hosts(69);
    let l = listener(&b, at(B, 6900), 4);
    let c = new_socket(&a, SOCK_STREAM);
    connect(&a, c, at(B, 6900)).expect("connect");
    let s = b.accept(l, None, None).expect("accept");
    assert_eq!(peer_name(&b, s), local_name(&a, c));
}

/// Conformance: 73 — the listening socket keeps accepting further connections after `accept` returns.
#[test]
fn listener_keeps_listening() {
    let (a, b) = two_hosts(73);
    let l = listener(&b, at(B, 7300), 2);
    for i in 0..20u8 {
        let c = new_socket(&a, SOCK_STREAM);
        connect(&a, c, at(B, 7300)).expect("connect");
        let s = b.accept(l, None, None).expect("accept");
        send_all(&a, c, &[i]);
        assert_eq!(recv_exact(&b, s, 1), [i]);
        assert_eq!(get_int(&b, l, SOL_SOCKET, SO_ACCEPTCONN), Ok(1));
        a.closesocket(c).expect("close");
        b.closesocket(s).expect("close");
    }
}

/// Conformance: 74 — calling `accept` on a socket returned by `accept` fails (it is not listening).
#[test]
fn accepted_socket_cannot_accept() {
    let (a, b) = two_hosts(74);
    let (_c, s) = tcp_pair(&a, &b, 7400);
    assert_wsa_error(b.accept(s, None, None), WsaError::WSAEINVAL);
    assert_eq!(get_int(&b, s, SOL_SOCKET, SO_ACCEPTCONN), Ok(0));
}

/// Conformance: 75, 101 — `connect` on an unbound TCP socket implicitly binds it, and `getsockname` then returns the assigned local address and port.
#[test]
fn implicit_bind_by_connect() {
    let (a, b) = two_hosts(75);
    let l = listener(&b, at(B, 7500), 1);
    let c = new_socket(&a, SOCK_STREAM);
    assert_wsa_error(local_name(&a, c), WsaError::WSAEINVAL);
    connect(&a, c, at(B, 7500)).expect("connect");
    let name = local_name(&a, c).expect("bound by connect");
    assert_eq!(*name.ip(), A, "the specific local address");
    assert!(
        (1024..=5000).contains(&name.port()),
        "an ephemeral port: {}",
        name.port()
    );
    let mut from = SOCKADDR_IN::default();
    let mut len = SOCKADDR_IN_LEN;
    b.accept(l, Some(&mut from), Some(&mut len))
        .expect("accept");
    assert_eq!(from.to_socket_addr(), name, "the peer sees the same name");
}

/// Conformance: 76 — `getsockname` on a socket that was never bound fails with `WSAEINVAL`.
#[test]
fn getsockname_unbound() {
    let (a, _b) = two_hosts(76);
    for ty in [SOCK_STREAM, SOCK_DGRAM] {
        let s = new_socket(&a, ty);
        assert_wsa_error(local_name(&a, s), WsaError::WSAEINVAL);
    }
}

/// Conformance: 77 — `getsockname` on an accepted socket returns the specific local IP address even when the listener was bound to `INADDR_ANY`.
#[test]
fn accepted_socket_has_specific_address() {
    let (a, b) = two_hosts(77);
    let l = listener(&b, at(Ipv4Addr::UNSPECIFIED, 7700), 1);
    assert_eq!(
        local_name(&b, l),
        Ok(at(Ipv4Addr::UNSPECIFIED, 7700)),
        "D-4: 0.0.0.0:port"
    );
    let c = new_socket(&a, SOCK_STREAM);
    connect(&a, c, at(B, 7700)).expect("connect");
    let s = b.accept(l, None, None).expect("accept");
    assert_eq!(local_name(&b, s), Ok(at(B, 7700)));
}

/// Conformance: 78 — `getpeername` on an unconnected TCP socket fails with `WSAENOTCONN`.
#[test]
fn getpeername_unconnected_tcp() {
    let (a, _b) = two_hosts(78);
    let s = new_socket(&a, SOCK_STREAM);
    assert_wsa_error(peer_name(&a, s), WsaError::WSAENOTCONN);
    bind(&a, s, at(A, 7800)).expect("bind");
    assert_wsa_error(peer_name(&a, s), WsaError::WSAENOTCONN);
    a.listen(s, 1).expect("listen");
    assert_wsa_error(peer_name(&a, s), WsaError::WSAENOTCONN);
}

/// Conformance: 79 — `getpeername` on a UDP socket that used only `sendto` fails with `WSAENOTCONN`.
#[test]
fn getpeername_sendto_only() {
    let (a, b) = two_hosts(79);
    let _rx = udp_bound(&b, at(B, 7900));
    let s = new_socket(&a, SOCK_DGRAM);
    sendto(&a, s, b"x", at(B, 7900)).expect("sendto");
    assert_wsa_error(peer_name(&a, s), WsaError::WSAENOTCONN);
}

/// Conformance: 80 — `getpeername` on a UDP socket connected with `connect` returns the connected address.
#[test]
fn getpeername_connected_udp() {
    let (a, _b) = two_hosts(80);
    let s = new_socket(&a, SOCK_DGRAM);
    connect(&a, s, at(B, 8000)).expect("connect");
    assert_eq!(peer_name(&a, s), Ok(at(B, 8000)));
    // sendto elsewhere does not change it (D-32).
    sendto(&a, s, b"x", at(B, 8001)).expect("sendto");
    assert_eq!(peer_name(&a, s), Ok(at(B, 8000)));
}
