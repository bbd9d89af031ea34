//! Bad input across the Winsock face: handles that are not (or no longer, or not this
//! application's) sockets, wrong address families, short lengths, missing pointers and calls
//! in the wrong state. Each must fail with the spec's code, set the last error, and change
//! nothing (CHECKLIST §1.0.1 "common error rows", §1.18).

use std::net::Ipv4Addr;

use ws2_stack::winsock::*;
use ws2_stack::WsaError;
use ws2_tests::*;

/// Runs every call that takes a socket on `s` and returns (call, error) for each.
fn socket_calls(ws: &Winsock, s: SOCKET) -> Vec<(&'static str, Result<(), WsaError>)> {
    let name = sa(at(B, 9));
    let mut buf = [0u8; 8];
    let mut out = SOCKADDR_IN::default();
    let mut len = SOCKADDR_IN_LEN;
    let mut optlen = 4;
    let mut arg = 0u32;
    let mut set = fd_set(&[s]);
    let t = timeval_ms(0);
    let unit = |r: Result<i32, WsaError>| r.map(drop);
    vec![
        ("bind", ws.bind(s, Some(&name), SOCKADDR_IN_LEN)),
        ("listen", ws.listen(s, 1)),
        ("accept", ws.accept(s, None, None).map(drop)),
        ("connect", ws.connect(s, Some(&name), SOCKADDR_IN_LEN)),
        ("send", unit(ws.send(s, b"x", 0))),
        (
            "sendto",
            unit(ws.sendto(s, b"x", 0, Some(&name), SOCKADDR_IN_LEN)),
        ),
        ("recv", unit(ws.recv(s, &mut buf, 0))),
        ("recvfrom", unit(ws.recvfrom(s, &mut buf, 0, None, None))),
        ("shutdown", ws.shutdown(s, SD_BOTH)),
        (
            "getsockname",
            ws.getsockname(s, Some(&mut out), Some(&mut len)),
        ),
        (
            "getpeername",
            ws.getpeername(s, Some(&mut out), Some(&mut len)),
        ),
        (
            "getsockopt",
            ws.getsockopt(s, SOL_SOCKET, SO_TYPE, Some(&mut buf), &mut optlen),
        ),
        (
            "setsockopt",
            ws.setsockopt(s, SOL_SOCKET, SO_DEBUG, Some(&[1, 0, 0, 0]), 4),
        ),
        ("ioctlsocket", ws.ioctlsocket(s, FIONBIO, Some(&mut arg))),
        (
            "select",
            unit(ws.select(0, Some(&mut set), None, None, Some(&t))),
        ),
        ("closesocket", ws.closesocket(s)),
    ]
}

#[track_caller]
fn assert_all_not_sockets(ws: &Winsock, s: SOCKET) {
    for (call, r) in socket_calls(ws, s) {
        assert_eq!(r, Err(WsaError::WSAENOTSOCK), "{call} on {s:#x}");
        assert_eq!(WSAGetLastError(), WsaError::WSAENOTSOCK.0, "{call}");
    }
}

/// Conformance: 21 — `INVALID_SOCKET`, values never handed out, and handles of closed sockets are not sockets: every call fails with `WSAENOTSOCK`.
#[test]
fn invalid_never_issued_and_closed_handles() {
    let (a, _b) = two_hosts(2101);
    let closed_tcp = new_socket(&a, SOCK_STREAM);
    let closed_udp = udp_bound(&a, at(A, 2101));
    a.closesocket(closed_tcp).expect("close");
    a.closesocket(closed_udp).expect("close");
    let live = new_socket(&a, SOCK_DGRAM);
    for bad in [
        INVALID_SOCKET,
        INVALID_SOCKET - 1,
        0,
        live + 1000,
        usize::MAX / 2,
        closed_tcp,
        closed_udp,
    ] {
        assert_all_not_sockets(&a, bad);
    }
    // The live socket was not disturbed by any of it.
    assert_eq!(get_int(&a, live, SOL_SOCKET, SO_TYPE), Ok(SOCK_DGRAM));
    assert_eq!(a.stack().stats().sockets, 1);
}

/// Conformance: 21 — a handle belonging to another `Winsock` application (on the same stack or another) is not a socket of this one.
#[test]
fn handles_of_another_application() {
    let (a, b) = two_hosts(2102);
    let other = started(a.stack());
    let mine = udp_bound(&a, at(A, 2102));
    let theirs = udp_bound(&other, at(A, 2103));
    assert_ne!(mine, theirs);
    assert_all_not_sockets(&other, mine);
    assert_all_not_sockets(&a, theirs);
    // Neither application's socket was touched (the closesocket attempts failed).
    assert_eq!(local_name(&a, mine), Ok(at(A, 2102)));
    assert_eq!(local_name(&other, theirs), Ok(at(A, 2103)));
    // One application's cleanup leaves the other's sockets alone.
    other.WSACleanup().expect("cleanup");
    assert_eq!(local_name(&a, mine), Ok(at(A, 2102)));
    // A handle from another host's application, not issued here.
    for _ in 0..5 {
        new_socket(&b, SOCK_STREAM);
    }
    let far = new_socket(&b, SOCK_STREAM);
    if far != mine {
        assert_all_not_sockets(&a, far);
    }
}

/// Conformance: 1, 14 — calls before `WSAStartup` and after the final `WSACleanup` fail with `WSANOTINITIALISED`, even on handles that were valid, and change nothing.
#[test]
fn not_initialised_beats_everything() {
    let (a, _b) = two_hosts(2103);
    let s = udp_bound(&a, at(A, 2104));
    a.WSACleanup().expect("cleanup");
    for (call, r) in socket_calls(&a, s) {
        assert_eq!(r, Err(WsaError::WSANOTINITIALISED), "{call}");
    }
    for bad in [INVALID_SOCKET, 0, 12345] {
        for (call, r) in socket_calls(&a, bad) {
            assert_eq!(r, Err(WsaError::WSANOTINITIALISED), "{call} on {bad:#x}");
        }
    }
    assert_wsa_error(a.socket(AF_INET6, 99, 99), WsaError::WSANOTINITIALISED);
    assert_eq!(a.stack().stats().sockets, 0);
    // The port the cleaned-up socket held is free again.
    let fresh = started(a.stack());
    udp_bound(&fresh, at(A, 2104));
}

/// Conformance: 50, 176 — a `sockaddr` of the wrong family: `bind` fails with `WSAEFAULT`, `connect` and `sendto` with `WSAEAFNOSUPPORT`.
#[test]
fn wrong_address_family() {
    let (a, _b) = two_hosts(2104);
    let t = new_socket(&a, SOCK_STREAM);
    let u = new_socket(&a, SOCK_DGRAM);
    for family in [AF_UNSPEC, AF_INET6, 0x0200, -2] {
        let mut name = sa(at(B, 2105));
        name.sin_family = family as i16;
        assert_wsa_error(a.bind(t, Some(&name), SOCKADDR_IN_LEN), WsaError::WSAEFAULT);
        assert_wsa_error(a.bind(u, Some(&name), SOCKADDR_IN_LEN), WsaError::WSAEFAULT);
        assert_wsa_error(
            a.connect(t, Some(&name), SOCKADDR_IN_LEN),
            WsaError::WSAEAFNOSUPPORT,
        );
        assert_wsa_error(
            a.connect(u, Some(&name), SOCKADDR_IN_LEN),
            WsaError::WSAEAFNOSUPPORT,
        );
        assert_wsa_error(
            a.sendto(u, b"x", 0, Some(&name), SOCKADDR_IN_LEN),
            WsaError::WSAEAFNOSUPPORT,
        );
    }
    // Nothing stuck: both sockets are still fresh.
    assert_wsa_error(local_name(&a, t), WsaError::WSAEINVAL);
    assert_wsa_error(local_name(&a, u), WsaError::WSAEINVAL);
    assert_wsa_error(peer_name(&a, u), WsaError::WSAENOTCONN);
}

/// Conformance: 51, 68, 150, 177, 462, 463 — lengths too short for the structure and missing pointers fail with `WSAEFAULT` and write nothing.
#[test]
fn short_lengths_and_missing_pointers() {
    let (a, b) = two_hosts(2105);
    let (c, s) = tcp_pair(&a, &b, 2106);
    let u = udp_bound(&a, at(A, 2107));
    let name = sa(at(B, 2108));
    let fault = WsaError::WSAEFAULT;
    for short in [i32::MIN, -1, 0, 1, 15] {
        let fresh = new_socket(&a, SOCK_STREAM);
        assert_wsa_error(a.bind(fresh, Some(&name), short), fault);
        assert_wsa_error(a.connect(fresh, Some(&name), short), fault);
        assert_wsa_error(a.sendto(u, b"x", 0, Some(&name), short), fault);
        let marker = SOCKADDR_IN {
            sin_family: 9,
            sin_port: 9,
            sin_addr: IN_ADDR { S_addr: 9 },
            sin_zero: [9; 8],
        };
        let mut out = marker;
        let mut len = short;
        assert_wsa_error(a.getsockname(c, Some(&mut out), Some(&mut len)), fault);
        assert_wsa_error(a.getpeername(c, Some(&mut out), Some(&mut len)), fault);
        assert_eq!((out, len), (marker, short), "nothing written");
        // An int option needs 4 bytes.
        let short = short.min(3);
        let mut opt = [0u8; 4];
        let mut optlen = short;
        assert_wsa_error(
            a.getsockopt(c, SOL_SOCKET, SO_TYPE, Some(&mut opt), &mut optlen),
            fault,
        );
        assert_eq!((opt, optlen), ([0; 4], short), "nothing written");
        assert_wsa_error(
            a.setsockopt(c, SOL_SOCKET, SO_KEEPALIVE, Some(&[1, 0, 0, 0]), short),
            fault,
        );
    }
    assert_eq!(
        get_int(&a, c, SOL_SOCKET, SO_KEEPALIVE),
        Ok(0),
        "no set went through"
    );
    // Missing pointers.
    let mut out = SOCKADDR_IN::default();
    let mut len = SOCKADDR_IN_LEN;
    assert_wsa_error(a.bind(u, None, SOCKADDR_IN_LEN), fault);
    assert_wsa_error(a.connect(u, None, SOCKADDR_IN_LEN), fault);
    assert_wsa_error(a.sendto(u, b"x", 0, None, SOCKADDR_IN_LEN), fault);
    assert_wsa_error(a.getsockname(c, None, Some(&mut len)), fault);
    assert_wsa_error(a.getsockname(c, Some(&mut out), None), fault);
    assert_wsa_error(a.getpeername(c, None, None), fault);
    assert_wsa_error(a.ioctlsocket(c, FIONREAD, None), fault);
    let mut optlen = 4;
    assert_wsa_error(
        a.getsockopt(c, SOL_SOCKET, SO_TYPE, None, &mut optlen),
        fault,
    );
    assert_wsa_error(a.setsockopt(c, SOL_SOCKET, SO_KEEPALIVE, None, 4), fault);
    // A buffer shorter than the length it claims is caught too.
    assert_wsa_error(
        a.setsockopt(c, SOL_SOCKET, SO_KEEPALIVE, Some(&[1]), 4),
        fault,
    );
    // recvfrom on a datagram socket with a short fromlen, and accept with one.
    let mut dlen = 8;
    let mut dbuf = [0u8; 8];
    assert_wsa_error(
        a.recvfrom(u, &mut dbuf, 0, Some(&mut out), Some(&mut dlen)),
        fault,
    );
    let l = listener(&b, at(B, 2109), 1);
    let mut alen = 4;
    assert_wsa_error(b.accept(l, Some(&mut out), Some(&mut alen)), fault);
    assert_wsa_error(b.accept(l, Some(&mut out), None), fault);
    // The connection is fine after all that.
    send_all(&a, c, b"fine");
    assert_eq!(recv_exact(&b, s, 4), b"fine");
}

/// Conformance: 56, 57, 58, 63, 64, 74, 103, 104, 142, 143, 153, 154, 213 — calls in the wrong state fail with the spec's code and leave the socket as it was.
#[test]
fn calls_in_the_wrong_state() {
    let (a, b) = two_hosts(2106);
    let fresh_tcp = new_socket(&a, SOCK_STREAM);
    let fresh_udp = new_socket(&a, SOCK_DGRAM);
    let bound_tcp = new_socket(&a, SOCK_STREAM);
    bind(&a, bound_tcp, at(A, 2110)).expect("bind");
    let l = listener(&a, at(A, 2111), 1);
    let (c, _s) = tcp_pair(&a, &b, 2112);
    let mut buf = [0u8; 8];
    let e = |r: Result<i32, WsaError>| r.map(drop);
    let cases: Vec<(&str, Result<(), WsaError>, WsaError)> = vec![
        (
            "listen unbound",
            a.listen(fresh_tcp, 1),
            WsaError::WSAEINVAL,
        ),
        (
            "listen datagram",
            a.listen(fresh_udp, 1),
            WsaError::WSAEOPNOTSUPP,
        ),
        ("listen connected", a.listen(c, 1), WsaError::WSAEISCONN),
        (
            "accept unlistened",
            a.accept(bound_tcp, None, None).map(drop),
            WsaError::WSAEINVAL,
        ),
        (
            "accept datagram",
            a.accept(fresh_udp, None, None).map(drop),
            WsaError::WSAEOPNOTSUPP,
        ),
        (
            "accept connected",
            a.accept(c, None, None).map(drop),
            WsaError::WSAEINVAL,
        ),
        (
            "connect connected",
            connect(&a, c, at(B, 2112)),
            WsaError::WSAEISCONN,
        ),
        (
            "connect listening",
            connect(&a, l, at(B, 2112)),
            WsaError::WSAEINVAL,
        ),
        (
            "recv unconnected",
            e(a.recv(bound_tcp, &mut buf, 0)),
            WsaError::WSAENOTCONN,
        ),
        (
            "recv listening",
            e(a.recv(l, &mut buf, 0)),
            WsaError::WSAENOTCONN,
        ),
        (
            "recv unbound udp",
            e(a.recv(fresh_udp, &mut buf, 0)),
            WsaError::WSAEINVAL,
        ),
        (
            "send unconnected",
            e(a.send(fresh_tcp, b"x", 0)),
            WsaError::WSAENOTCONN,
        ),
        (
            "send unconnected udp",
            e(a.send(fresh_udp, b"x", 0)),
            WsaError::WSAENOTCONN,
        ),
        (
            "shutdown unconnected",
            a.shutdown(bound_tcp, SD_SEND),
            WsaError::WSAENOTCONN,
        ),
        (
            "shutdown listening",
            a.shutdown(l, SD_RECEIVE),
            WsaError::WSAENOTCONN,
        ),
        (
            "bind bound",
            bind(&a, bound_tcp, at(A, 2113)),
            WsaError::WSAEINVAL,
        ),
        (
            "bind connected",
            bind(&a, c, at(A, 2114)),
            WsaError::WSAEINVAL,
        ),
        (
            "bind listening",
            bind(&a, l, at(A, 2115)),
            WsaError::WSAEINVAL,
        ),
    ];
    for (what, got, want) in cases {
        assert_eq!(got, Err(want), "{what}");
    }
    // Every socket is still in the state it was.
    assert_wsa_error(local_name(&a, fresh_tcp), WsaError::WSAEINVAL);
    assert_eq!(local_name(&a, bound_tcp), Ok(at(A, 2110)));
    assert_eq!(get_int(&a, l, SOL_SOCKET, SO_ACCEPTCONN), Ok(1));
    assert_eq!(peer_name(&a, c), Ok(at(B, 2112)));
    assert!(poll_one(&a, c, 0).1, "still connected and writable");
}

/// Conformance: 24, 25, 26, 27 — creation arguments out of range fail without creating anything, whatever the combination.
#[test]
fn creation_garbage() {
    let (a, _b) = two_hosts(2107);
    for af in [-1, 0, 1, 2, 23, 99] {
        for ty in [-1, 0, 1, 2, 3, 4, 5, 99] {
            for proto in [-1, 0, 1, 6, 17, 255, 999] {
                let r = a.socket(af, ty, proto);
                match r {
                    Ok(s) => {
                        assert_eq!(af, AF_INET);
                        a.closesocket(s).expect("close");
                    }
                    Err(e) => {
                        assert_eq!(WSAGetLastError(), e.0);
                        assert!(
                            [
                                WsaError::WSAEAFNOSUPPORT,
                                WsaError::WSAESOCKTNOSUPPORT,
                                WsaError::WSAEPROTONOSUPPORT,
                                WsaError::WSAEPROTOTYPE,
                            ]
                            .contains(&e),
                            "({af}, {ty}, {proto}) -> {e:?}"
                        );
                        if af != AF_INET {
                            assert_eq!(e, WsaError::WSAEAFNOSUPPORT);
                        }
                    }
                }
            }
        }
    }
    assert_eq!(a.stack().stats().sockets, 0);
    // WSASocket flags and arguments it does not know are WSAEINVAL.
    assert_wsa_error(
        a.WSASocket(AF_INET, SOCK_STREAM, 0, None, 0, 0x8000),
        WsaError::WSAEINVAL,
    );
    assert_wsa_error(
        // A WSAPROTOCOL_INFO naming no catalog entry.
        a.WSASocket(
            AF_INET,
            SOCK_STREAM,
            0,
            Some(&WSAPROTOCOL_INFO {
                dwCatalogEntryId: 0xdead,
                ..Default::default()
            }),
            0,
            0,
        ),
        WsaError::WSAEINVAL,
    );
    assert_eq!(a.stack().stats().sockets, 0);
}

/// Conformance: 102, 174, 175 — destinations that cannot be addressed: 0.0.0.0 and port 0.
#[test]
fn unaddressable_destinations() {
    let (a, _b) = two_hosts(2108);
    let t = new_socket(&a, SOCK_STREAM);
    let u = udp_bound(&a, at(A, 2116));
    assert_wsa_error(
        connect(&a, t, at(Ipv4Addr::UNSPECIFIED, 80)),
        WsaError::WSAEADDRNOTAVAIL,
    );
    assert_wsa_error(connect(&a, t, at(B, 0)), WsaError::WSAEADDRNOTAVAIL);
    assert_wsa_error(
        sendto(&a, u, b"x", at(Ipv4Addr::UNSPECIFIED, 80)),
        WsaError::WSAEDESTADDRREQ,
    );
    assert_wsa_error(sendto(&a, u, b"x", at(B, 0)), WsaError::WSAEADDRNOTAVAIL);
    // t was not implicitly bound by the failed connects.
    assert_wsa_error(local_name(&a, t), WsaError::WSAEINVAL);
}
