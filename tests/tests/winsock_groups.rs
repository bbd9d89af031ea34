//! CHECKLIST Part 2 group O: socket groups (Part 1 §1.9), with the `WSASocket` `g` behaviours
//! of group B (§1.2), `accept`'s group rule (72) and the constrained-group `connect` error
//! (124). `WSAAccept`'s `*g` (93–96) and group QoS (132, 385, 386) come with their features.

use std::net::Ipv4Addr;

use ws2_stack::winsock::*;
use ws2_stack::WsaError;
use ws2_tap::VirtualSwitch;
use ws2_tests::*;

/// A third host on the LAN.
const C: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 3);

/// Hosts A, B and C on one switch.
fn three_hosts(seed: u64) -> (Winsock, Winsock, Winsock) {
    let switch = VirtualSwitch::new(seed);
    let (a, b) = two_hosts_on(&switch, config(A), config(B));
    (a, b, started(&stack_on(&switch, config(C))))
}

/// `WSASocket(AF_INET, type, 0, NULL, g, 0)`.
fn grouped(ws: &Winsock, r#type: i32, g: u32) -> Result<SOCKET, WsaError> {
    ws.WSASocket(AF_INET, r#type, 0, None, g, 0)
}

/// `getsockopt(SO_GROUP_ID)` as the spec's unsigned `GROUP`.
#[track_caller]
fn group_id(ws: &Winsock, s: SOCKET) -> u32 {
    get_int(ws, s, SOL_SOCKET, SO_GROUP_ID).expect("SO_GROUP_ID") as u32
}

/// A new group of `kind` created by a new TCP socket: (socket, group id).
#[track_caller]
fn new_group(ws: &Winsock, kind: u32) -> (SOCKET, u32) {
    let s = grouped(ws, SOCK_STREAM, kind).expect("WSASocket creating a group");
    let g = group_id(ws, s);
    (s, g)
}

/// Conformance: 33 — `WSASocket` with `g = SG_UNCONSTRAINED_GROUP` creates a new group, and `getsockopt(SO_GROUP_ID)` on the socket returns a nonzero ID.
#[test]
fn unconstrained_group_is_created() {
    let (a, _b) = two_hosts(3300);
    for ty in [SOCK_STREAM, SOCK_DGRAM] {
        let s = grouped(&a, ty, SG_UNCONSTRAINED_GROUP).expect("WSASocket");
        let g = group_id(&a, s);
        assert_ne!(g, 0);
        assert!(g != SG_UNCONSTRAINED_GROUP && g != SG_CONSTRAINED_GROUP);
    }
    // A constrained group for a stream socket likewise.
    let (_, g) = new_group(&a, SG_CONSTRAINED_GROUP);
    assert_ne!(g, 0);
}

/// Conformance: 34 — `WSASocket` with `g` = an existing group ID yields a socket whose `SO_GROUP_ID` equals that ID.
#[test]
fn existing_group_is_joined() {
    let (a, _b) = two_hosts(3400);
    let (_, g) = new_group(&a, SG_UNCONSTRAINED_GROUP);
    let t = grouped(&a, SOCK_STREAM, g).expect("join with a stream socket");
    let u = grouped(&a, SOCK_DGRAM, g).expect("join with a datagram socket");
    assert_eq!(group_id(&a, t), g);
    assert_eq!(group_id(&a, u), g);
    let (_, k) = new_group(&a, SG_CONSTRAINED_GROUP);
    let t = grouped(&a, SOCK_STREAM, k).expect("join a constrained group");
    assert_eq!(group_id(&a, t), k);
}

/// Conformance: 35 — `WSASocket` with `g = 0` creates a socket whose `SO_GROUP_ID` is 0 (NULL).
#[test]
fn zero_g_is_no_group() {
    let (a, _b) = two_hosts(3500);
    // Even while groups exist.
    let _ = new_group(&a, SG_UNCONSTRAINED_GROUP);
    for ty in [SOCK_STREAM, SOCK_DGRAM] {
        let s = grouped(&a, ty, 0).expect("WSASocket");
        assert_eq!(group_id(&a, s), 0);
        assert_wsa_error(
            get_int(&a, s, SOL_SOCKET, SO_GROUP_PRIORITY),
            WsaError::WSAENOPROTOOPT,
        );
    }
}

/// Conformance: 36 — `WSASocket` with a `g` that names no existing group fails with `WSAEINVAL`.
#[test]
fn unknown_group_id_is_invalid() {
    let (a, _b) = two_hosts(3600);
    let (_, live) = new_group(&a, SG_UNCONSTRAINED_GROUP);
    for g in [3, 0xff, live.wrapping_add(1_000_000), u32::MAX] {
        for ty in [SOCK_STREAM, SOCK_DGRAM] {
            assert_wsa_error(grouped(&a, ty, g), WsaError::WSAEINVAL);
        }
    }
    assert_eq!(a.stack().stats().sockets, 1, "no socket was left behind");
}

/// Conformance: 37 — Creating a `SOCK_DGRAM` socket with `g = SG_CONSTRAINED_GROUP` fails because constrained groups may contain only connection-oriented sockets.
#[test]
fn constrained_group_refuses_datagram_creator() {
    let (a, _b) = two_hosts(3700);
    assert_wsa_error(
        grouped(&a, SOCK_DGRAM, SG_CONSTRAINED_GROUP),
        WsaError::WSAEINVAL,
    );
    assert_wsa_error(
        a.WSASocket(
            AF_INET,
            SOCK_RAW,
            IPPROTO_ICMP,
            None,
            SG_CONSTRAINED_GROUP,
            0,
        ),
        WsaError::WSAEINVAL,
    );
    assert_eq!(a.stack().stats().sockets, 0, "no socket was left behind");
}

/// Conformance: 38 — Joining a UDP socket to an existing constrained group ID fails.
#[test]
fn constrained_group_refuses_datagram_member() {
    let (a, _b) = two_hosts(3800);
    let (_, g) = new_group(&a, SG_CONSTRAINED_GROUP);
    assert_wsa_error(grouped(&a, SOCK_DGRAM, g), WsaError::WSAEINVAL);
    assert_eq!(a.stack().stats().sockets, 1);
    // The group is unharmed: stream sockets still join it.
    let t = grouped(&a, SOCK_STREAM, g).expect("stream member");
    assert_eq!(group_id(&a, t), g);
}

/// Conformance: 72 — A socket returned by `accept` does not inherit the listening socket's group ID.
#[test]
fn accepted_socket_has_no_group() {
    let (a, b) = two_hosts(7200);
    let l = grouped(&b, SOCK_STREAM, SG_UNCONSTRAINED_GROUP).expect("WSASocket");
    let g = group_id(&b, l);
    bind(&b, l, at(B, 7200)).expect("bind");
    b.listen(l, 2).expect("listen");
    let c = new_socket(&a, SOCK_STREAM);
    connect(&a, c, at(B, 7200)).expect("connect");
    let s = b.accept(l, None, None).expect("accept");
    assert_eq!(group_id(&b, s), 0);
    assert_wsa_error(
        get_int(&b, s, SOL_SOCKET, SO_GROUP_PRIORITY),
        WsaError::WSAENOPROTOOPT,
    );
    assert_eq!(group_id(&b, l), g, "the listener keeps its group");
}

/// Conformance: 124 — `connect` of a socket in a constrained group to a different address than the group's other members fails with `WSAEINVAL`.
#[test]
fn constrained_connect_elsewhere_is_invalid() {
    let (a, b, c) = three_hosts(12400);
    let lb = listener(&b, at(B, 12400), 2);
    let _lc = listener(&c, at(C, 12400), 2);
    let (s1, g) = new_group(&a, SG_CONSTRAINED_GROUP);
    connect(&a, s1, at(B, 12400)).expect("first member connects");
    b.accept(lb, None, None).expect("accept");
    let s2 = grouped(&a, SOCK_STREAM, g).expect("join");
    assert_wsa_error(connect(&a, s2, at(C, 12400)), WsaError::WSAEINVAL);
    // A non-blocking connect fails the same way at once (not WSAEWOULDBLOCK).
    set_nonblocking(&a, s2, true);
    assert_wsa_error(connect(&a, s2, at(C, 12400)), WsaError::WSAEINVAL);
    // Nothing was started: the socket is still unconnected.
    assert_wsa_error(peer_name(&a, s2), WsaError::WSAENOTCONN);
}

/// Conformance: 380 — `setsockopt(SO_GROUP_ID)` fails because the option is get-only.
#[test]
fn group_id_is_get_only() {
    let (a, _b) = two_hosts(38000);
    let (s, g) = new_group(&a, SG_UNCONSTRAINED_GROUP);
    let plain = new_socket(&a, SOCK_STREAM);
    for sock in [s, plain] {
        for v in [0, g as i32, 12345] {
            assert_wsa_error(
                set_int(&a, sock, SOL_SOCKET, SO_GROUP_ID, v),
                WsaError::WSAENOPROTOOPT,
            );
        }
    }
    assert_eq!(group_id(&a, s), g);
    assert_eq!(group_id(&a, plain), 0);
}

/// Conformance: 381 — `getsockopt(SO_GROUP_PRIORITY)` on a new group member returns 0.
#[test]
fn group_priority_defaults_to_zero() {
    let (a, _b) = two_hosts(38100);
    let (creator, g) = new_group(&a, SG_UNCONSTRAINED_GROUP);
    let member = grouped(&a, SOCK_DGRAM, g).expect("join");
    // A member joining after others changed theirs still starts at 0.
    set_int(&a, creator, SOL_SOCKET, SO_GROUP_PRIORITY, 3).expect("set");
    let late = grouped(&a, SOCK_STREAM, g).expect("join");
    assert_eq!(get_int(&a, member, SOL_SOCKET, SO_GROUP_PRIORITY), Ok(0));
    assert_eq!(get_int(&a, late, SOL_SOCKET, SO_GROUP_PRIORITY), Ok(0));
}

/// Conformance: 382 — `setsockopt(SO_GROUP_PRIORITY, 5)` on a group member is read back as 5.
#[test]
fn group_priority_round_trips() {
    let (a, _b) = two_hosts(38200);
    let (creator, g) = new_group(&a, SG_CONSTRAINED_GROUP);
    let member = grouped(&a, SOCK_STREAM, g).expect("join");
    set_int(&a, member, SOL_SOCKET, SO_GROUP_PRIORITY, 5).expect("set");
    assert_eq!(get_int(&a, member, SOL_SOCKET, SO_GROUP_PRIORITY), Ok(5));
    // Per socket: the other member keeps its own.
    assert_eq!(get_int(&a, creator, SOL_SOCKET, SO_GROUP_PRIORITY), Ok(0));
    set_int(&a, member, SOL_SOCKET, SO_GROUP_PRIORITY, 0).expect("back to highest");
    assert_eq!(get_int(&a, member, SOL_SOCKET, SO_GROUP_PRIORITY), Ok(0));
    set_int(&a, member, SOL_SOCKET, SO_GROUP_PRIORITY, i32::MAX).expect("largest");
    assert_eq!(
        get_int(&a, member, SOL_SOCKET, SO_GROUP_PRIORITY),
        Ok(i32::MAX)
    );
}

/// Conformance: 383 — `getsockopt`/`setsockopt(SO_GROUP_PRIORITY)` on a socket that is not in a group fails with `WSAENOPROTOOPT`.
#[test]
fn group_priority_needs_a_group() {
    let (a, b) = two_hosts(38300);
    let (c, s) = tcp_pair(&a, &b, 38300);
    let u = udp_bound(&a, at(A, 38300));
    for (ws, sock) in [(&a, c), (&b, s), (&a, u)] {
        assert_wsa_error(
            get_int(ws, sock, SOL_SOCKET, SO_GROUP_PRIORITY),
            WsaError::WSAENOPROTOOPT,
        );
        assert_wsa_error(
            set_int(ws, sock, SOL_SOCKET, SO_GROUP_PRIORITY, 1),
            WsaError::WSAENOPROTOOPT,
        );
        // Not being in a group is the error, whatever the value.
        assert_wsa_error(
            set_int(ws, sock, SOL_SOCKET, SO_GROUP_PRIORITY, -1),
            WsaError::WSAENOPROTOOPT,
        );
    }
}

/// Conformance: 384 — `setsockopt(SO_GROUP_PRIORITY)` with a negative value fails.
#[test]
fn negative_group_priority_is_invalid() {
    let (a, _b) = two_hosts(38400);
    let (s, _) = new_group(&a, SG_UNCONSTRAINED_GROUP);
    set_int(&a, s, SOL_SOCKET, SO_GROUP_PRIORITY, 7).expect("set");
    for v in [-1, -5, i32::MIN] {
        assert_wsa_error(
            set_int(&a, s, SOL_SOCKET, SO_GROUP_PRIORITY, v),
            WsaError::WSAEINVAL,
        );
    }
    assert_eq!(
        get_int(&a, s, SOL_SOCKET, SO_GROUP_PRIORITY),
        Ok(7),
        "unchanged"
    );
}

/// Conformance: 387 — Two sockets created in the same unconstrained group may connect to different hosts.
#[test]
fn unconstrained_members_connect_anywhere() {
    let (a, b, c) = three_hosts(38700);
    let lb = listener(&b, at(B, 38700), 2);
    let lc = listener(&c, at(C, 38700), 2);
    let (s1, g) = new_group(&a, SG_UNCONSTRAINED_GROUP);
    let s2 = grouped(&a, SOCK_STREAM, g).expect("join");
    connect(&a, s1, at(B, 38700)).expect("to B");
    connect(&a, s2, at(C, 38700)).expect("to C");
    let rb = b.accept(lb, None, None).expect("accept on B");
    let rc = c.accept(lc, None, None).expect("accept on C");
    send_all(&a, s1, b"to b");
    send_all(&a, s2, b"to c");
    assert_eq!(recv_exact(&b, rb, 4), b"to b");
    assert_eq!(recv_exact(&c, rc, 4), b"to c");
    // A datagram member may send anywhere too.
    let u = grouped(&a, SOCK_DGRAM, g).expect("datagram member");
    connect(&a, u, at(C, 38701)).expect("UDP default peer");
}

/// Conformance: 388 — The first member of a constrained group to connect fixes the group's destination, and a second member connecting to another address fails with `WSAEINVAL`.
#[test]
fn first_constrained_connect_fixes_destination() {
    let (a, b, c) = three_hosts(38800);
    let lb = listener(&b, at(B, 38800), 4);
    let _lc = listener(&c, at(C, 38800), 4);
    let (creator, g) = new_group(&a, SG_CONSTRAINED_GROUP);
    let joiner = grouped(&a, SOCK_STREAM, g).expect("join");
    // The first to connect need not be the creator: here the joiner picks C.
    connect(&a, joiner, at(C, 38800)).expect("first connect, to C");
    assert_wsa_error(connect(&a, creator, at(B, 38800)), WsaError::WSAEINVAL);
    connect(&a, creator, at(C, 38800)).expect("to C as well");
    // Members joining later are held to it too.
    let late = grouped(&a, SOCK_STREAM, g).expect("join");
    assert_wsa_error(connect(&a, late, at(B, 38800)), WsaError::WSAEINVAL);
    // Sockets outside the group are not.
    let free = new_socket(&a, SOCK_STREAM);
    connect(&a, free, at(B, 38800)).expect("ungrouped socket to B");
    b.accept(lb, None, None).expect("accept");
}

/// Conformance: 389 — A constrained group's second member connecting to the same address (different port on the same host) succeeds.
#[test]
fn constrained_members_share_a_host_not_a_port() {
    let (a, b) = two_hosts(38900);
    let l1 = listener(&b, at(B, 38900), 2);
    let l2 = listener(&b, at(B, 38901), 2);
    let (s1, g) = new_group(&a, SG_CONSTRAINED_GROUP);
    let s2 = grouped(&a, SOCK_STREAM, g).expect("join");
    connect(&a, s1, at(B, 38900)).expect("audio stream");
    connect(&a, s2, at(B, 38901)).expect("video stream, same host");
    let r1 = b.accept(l1, None, None).expect("accept 1");
    let r2 = b.accept(l2, None, None).expect("accept 2");
    send_all(&a, s1, b"a");
    send_all(&a, s2, b"v");
    assert_eq!(recv_exact(&b, r1, 1), b"a");
    assert_eq!(recv_exact(&b, r2, 1), b"v");
}

/// Conformance: 390 — Group IDs handed out for different groups are distinct.
#[test]
fn group_ids_are_distinct() {
    let switch = VirtualSwitch::new(39000);
    let (a, b) = two_hosts_on(&switch, config(A), config(B));
    // A second application on A's stack (the same provider).
    let a2 = started(a.stack());
    let mut seen = std::collections::HashSet::new();
    for i in 0..40 {
        let kind = if i % 2 == 0 {
            SG_UNCONSTRAINED_GROUP
        } else {
            SG_CONSTRAINED_GROUP
        };
        for ws in [&a, &a2, &b] {
            let (s, g) = new_group(ws, kind);
            assert!(g > SG_CONSTRAINED_GROUP, "never 0, 1 or 2");
            assert!(seen.insert(g), "{g:#x} handed out twice");
            if i % 4 == 0 {
                // Closed groups' ids are not handed out again either.
                ws.closesocket(s).expect("close");
            }
        }
    }
}

/// Conformance: 391 — After the last member of a group is closed, creating a socket with that group ID fails with `WSAEINVAL`.
#[test]
fn group_dies_with_its_last_member() {
    let (a, _b) = two_hosts(39100);
    let (creator, g) = new_group(&a, SG_UNCONSTRAINED_GROUP);
    let member = grouped(&a, SOCK_DGRAM, g).expect("join");
    a.closesocket(creator).expect("close creator");
    a.closesocket(member).expect("close last member");
    for ty in [SOCK_STREAM, SOCK_DGRAM] {
        assert_wsa_error(grouped(&a, ty, g), WsaError::WSAEINVAL);
    }
    // The same for a constrained group whose only member was connected.
    let (a, b) = two_hosts(39101);
    let l = listener(&b, at(B, 39100), 1);
    let (s, k) = new_group(&a, SG_CONSTRAINED_GROUP);
    connect(&a, s, at(B, 39100)).expect("connect");
    b.accept(l, None, None).expect("accept");
    a.closesocket(s).expect("close");
    assert_wsa_error(grouped(&a, SOCK_STREAM, k), WsaError::WSAEINVAL);
}

/// Conformance: 392 — While at least one member remains open, new sockets can still join the group by ID.
#[test]
fn group_outlives_its_creator() {
    let (a, _b) = two_hosts(39200);
    let (creator, g) = new_group(&a, SG_UNCONSTRAINED_GROUP);
    let m1 = grouped(&a, SOCK_STREAM, g).expect("join");
    a.closesocket(creator).expect("close creator");
    let m2 = grouped(&a, SOCK_DGRAM, g).expect("join after the creator left");
    a.closesocket(m1).expect("close");
    let m3 = grouped(&a, SOCK_STREAM, g).expect("join with one member left");
    for s in [m2, m3] {
        assert_eq!(group_id(&a, s), g);
    }
}

// ---- bad input and edge cases ----------------------------------------------------------------

/// `WSACleanup` leaves the groups of the application's sockets: a group shared with another
/// application on the same stack lives on, one of its own dies.
#[test]
fn cleanup_leaves_groups() {
    let switch = VirtualSwitch::new(39300);
    let stack = stack_on(&switch, config(A));
    let app1 = started(&stack);
    let app2 = started(&stack);
    let (_, shared) = new_group(&app1, SG_UNCONSTRAINED_GROUP);
    let (_, own) = new_group(&app1, SG_CONSTRAINED_GROUP);
    let other = grouped(&app2, SOCK_STREAM, shared).expect("another application joins");
    app1.WSACleanup().expect("WSACleanup");
    assert_wsa_error(grouped(&app2, SOCK_STREAM, own), WsaError::WSAEINVAL);
    let again = grouped(&app2, SOCK_DGRAM, shared).expect("the shared group lives");
    app2.closesocket(other).expect("close");
    app2.closesocket(again).expect("close");
    assert_wsa_error(grouped(&app2, SOCK_STREAM, shared), WsaError::WSAEINVAL);
}

/// A group belongs to its stack (provider): another stack's group id is not valid there.
#[test]
fn group_ids_of_another_stack_are_invalid() {
    let (a, b) = two_hosts(39400);
    let (_, g) = new_group(&a, SG_UNCONSTRAINED_GROUP);
    assert_wsa_error(grouped(&b, SOCK_STREAM, g), WsaError::WSAEINVAL);
    assert_eq!(b.stack().stats().sockets, 0);
}

/// A connect that fails (refused, or before it starts) does not fix a constrained group's
/// destination.
#[test]
fn failed_connect_does_not_fix_destination() {
    let (a, b, c) = three_hosts(39500);
    let lc = listener(&c, at(C, 39500), 2);
    let (s1, g) = new_group(&a, SG_CONSTRAINED_GROUP);
    let s2 = grouped(&a, SOCK_STREAM, g).expect("join");
    // Nothing listens on B:39500: refused.
    assert_wsa_error(connect(&a, s1, at(B, 39500)), WsaError::WSAECONNREFUSED);
    // No route (no gateway): fails before anything is sent.
    assert_wsa_error(
        connect(&a, s2, at(Ipv4Addr::new(192, 168, 9, 9), 1)),
        WsaError::WSAENETUNREACH,
    );
    connect(&a, s2, at(C, 39500)).expect("C is still allowed");
    c.accept(lc, None, None).expect("accept");
    // Now C is the destination, for the member that was refused by B as well.
    let _lb = listener(&b, at(B, 39501), 1);
    assert_wsa_error(connect(&a, s1, at(B, 39501)), WsaError::WSAEINVAL);
}

/// Connect errors of the socket's own state come first: a connected constrained member asked
/// to connect elsewhere is `WSAEISCONN`, not the group's `WSAEINVAL`.
#[test]
fn connected_member_reports_isconn() {
    let (a, b, _c) = three_hosts(39600);
    let l = listener(&b, at(B, 39600), 1);
    let (s, _) = new_group(&a, SG_CONSTRAINED_GROUP);
    connect(&a, s, at(B, 39600)).expect("connect");
    b.accept(l, None, None).expect("accept");
    assert_wsa_error(connect(&a, s, at(C, 39600)), WsaError::WSAEISCONN);
    // A listening member: listen's own WSAEINVAL.
    let (lg, _) = new_group(&a, SG_CONSTRAINED_GROUP);
    bind(&a, lg, at(A, 39601)).expect("bind");
    a.listen(lg, 1).expect("listen");
    assert_wsa_error(connect(&a, lg, at(B, 39600)), WsaError::WSAEINVAL);
}

/// Option buffers: too short or NULL is `WSAEFAULT` for both group options; stale handles
/// are `WSAENOTSOCK`.
#[test]
fn group_option_buffers() {
    let (a, _b) = two_hosts(39700);
    let (s, g) = new_group(&a, SG_UNCONSTRAINED_GROUP);
    for opt in [SO_GROUP_ID, SO_GROUP_PRIORITY] {
        let mut small = [0u8; 2];
        let mut len = 2;
        assert_wsa_error(
            a.getsockopt(s, SOL_SOCKET, opt, Some(&mut small), &mut len),
            WsaError::WSAEFAULT,
        );
        let mut len = 4;
        assert_wsa_error(
            a.getsockopt(s, SOL_SOCKET, opt, None, &mut len),
            WsaError::WSAEFAULT,
        );
    }
    assert_wsa_error(
        a.setsockopt(s, SOL_SOCKET, SO_GROUP_PRIORITY, Some(&[1, 0]), 2),
        WsaError::WSAEFAULT,
    );
    assert_wsa_error(
        a.setsockopt(s, SOL_SOCKET, SO_GROUP_PRIORITY, None, 4),
        WsaError::WSAEFAULT,
    );
    // A larger buffer is fine; the length becomes sizeof(GROUP).
    let mut big = [0xffu8; 8];
    let mut len = 8;
    a.getsockopt(s, SOL_SOCKET, SO_GROUP_ID, Some(&mut big), &mut len)
        .expect("SO_GROUP_ID");
    assert_eq!(len, 4);
    assert_eq!(u32::from_ne_bytes([big[0], big[1], big[2], big[3]]), g);
    a.closesocket(s).expect("close");
    assert_wsa_error(
        get_int(&a, s, SOL_SOCKET, SO_GROUP_ID),
        WsaError::WSAENOTSOCK,
    );
    assert_wsa_error(
        set_int(&a, s, SOL_SOCKET, SO_GROUP_PRIORITY, 1),
        WsaError::WSAENOTSOCK,
    );
}

/// Groups and `WSASocket`'s other checks: an unknown flag or a non-NULL `lpProtocolInfo` is
/// still `WSAEINVAL` with a valid `g`, and creates no group; raw sockets may be in an
/// unconstrained group.
#[test]
fn wsasocket_group_with_other_arguments() {
    let (a, _b) = two_hosts(39800);
    assert_wsa_error(
        a.WSASocket(
            AF_INET,
            SOCK_STREAM,
            0,
            None,
            SG_UNCONSTRAINED_GROUP,
            0x8000,
        ),
        WsaError::WSAEINVAL,
    );
    assert_wsa_error(
        a.WSASocket(
            AF_INET,
            SOCK_STREAM,
            0,
            // A WSAPROTOCOL_INFO naming no catalog entry.
            Some(&WSAPROTOCOL_INFO {
                dwCatalogEntryId: 0xdead,
                ..Default::default()
            }),
            SG_UNCONSTRAINED_GROUP,
            0,
        ),
        WsaError::WSAEINVAL,
    );
    assert_wsa_error(
        a.WSASocket(
            AF_INET,
            SOCK_STREAM,
            IPPROTO_UDP,
            None,
            SG_CONSTRAINED_GROUP,
            0,
        ),
        WsaError::WSAEPROTOTYPE,
    );
    assert_eq!(a.stack().stats().sockets, 0);
    let r = a
        .WSASocket(
            AF_INET,
            SOCK_RAW,
            IPPROTO_ICMP,
            None,
            SG_UNCONSTRAINED_GROUP,
            WSA_FLAG_OVERLAPPED,
        )
        .expect("raw socket in an unconstrained group");
    let g = group_id(&a, r);
    assert_ne!(g, 0);
    // Overlapped sockets join like any other.
    let o = a
        .WSASocket(AF_INET, SOCK_STREAM, 0, None, g, WSA_FLAG_OVERLAPPED)
        .expect("overlapped member");
    assert_eq!(group_id(&a, o), g);
}
