//! CHECKLIST Part 2 group D: `WSAAccept` and its condition function (§1.3, D-30), with the
//! socket-group requests of §1.9.

use std::cell::Cell;
use std::thread;
use std::time::Duration;

use ws2_stack::winsock::*;
use ws2_stack::WsaError;
use ws2_tests::*;

/// A listener on B at `port` with one client from A connected (handshake done).
fn offered(seed: u64, port: u16) -> (Winsock, Winsock, SOCKET, SOCKET) {
    let (a, b) = two_hosts(seed);
    let l = listener(&b, at(B, port), 4);
    let c = new_socket(&a, SOCK_STREAM);
    connect(&a, c, at(B, port)).expect("connect");
    (a, b, l, c)
}

/// A condition function that asks for group `g` and accepts.
#[allow(clippy::type_complexity)]
fn grouping(
    g: u32,
) -> impl FnMut(
    Option<&WSABUF>,
    Option<&WSABUF>,
    Option<&mut QOS>,
    Option<&mut QOS>,
    Option<&WSABUF>,
    Option<&mut WSABUF>,
    &mut u32,
    usize,
) -> i32 {
    move |_, _, _, _, _, _, out, _| {
        *out = g;
        CF_ACCEPT
    }
}

#[allow(clippy::type_complexity)]
fn verdict(
    v: i32,
) -> impl FnMut(
    Option<&WSABUF>,
    Option<&WSABUF>,
    Option<&mut QOS>,
    Option<&mut QOS>,
    Option<&WSABUF>,
    Option<&mut WSABUF>,
    &mut u32,
    usize,
) -> i32 {
    move |_, _, _, _, _, _, _, _| v
}

/// Conformance: 81, 98 — CF_ACCEPT gives a connected socket; without a condition function
/// WSAAccept is accept.
#[test]
fn accept_and_plain() {
    let (a, b, l, c) = offered(810, 8100);
    let mut f = verdict(CF_ACCEPT);
    let s = b
        .WSAAccept(l, None, None, Some(&mut f), 0)
        .expect("CF_ACCEPT");
    send_all(&a, c, b"hi");
    assert_eq!(recv_exact(&b, s, 2), b"hi");
    let c2 = new_socket(&a, SOCK_STREAM);
    connect(&a, c2, at(B, 8100)).unwrap();
    let s2 = b.WSAAccept(l, None, None, None, 0).expect("plain accept");
    assert_eq!(peer_name(&b, s2).unwrap().ip(), &A);
}

/// Conformance: 82, 83, 97 — CF_REJECT fails WSAECONNREFUSED, the caller's connection is reset,
/// and addr is filled anyway.
#[test]
fn reject_resets_the_caller() {
    let (a, b, l, c) = offered(820, 8200);
    let mut f = verdict(CF_REJECT);
    let mut from = SOCKADDR_IN::default();
    let mut len = SOCKADDR_IN_LEN;
    assert_wsa_error(
        b.WSAAccept(l, Some(&mut from), Some(&mut len), Some(&mut f), 0),
        WsaError::WSAECONNREFUSED,
    );
    assert_eq!(from.to_socket_addr(), local_name(&a, c).unwrap());
    let mut buf = [0u8; 4];
    let r = retry(Duration::from_secs(5), || {
        set_nonblocking(&a, c, true);
        a.recv(c, &mut buf, 0)
    });
    assert_eq!(r, Err(WsaError::WSAECONNRESET));
}

/// Conformance: 84, 85 — CF_DEFER fails WSATRY_AGAIN, keeps the request for the next
/// WSAAccept, and does not re-post FD_ACCEPT.
#[test]
fn defer_keeps_the_request() {
    let (a, b, l, c) = offered(840, 8400);
    let ev = b.WSACreateEvent().unwrap();
    b.WSAEventSelect(l, ev, FD_ACCEPT).unwrap();
    assert_eq!(
        b.WSAWaitForMultipleEvents(&[ev], false, 5000, false),
        Ok(WSA_WAIT_EVENT_0)
    );
    let mut ne = WSANETWORKEVENTS::default();
    b.WSAEnumNetworkEvents(l, ev, Some(&mut ne)).unwrap();
    let mut f = verdict(CF_DEFER);
    assert_wsa_error(
        b.WSAAccept(l, None, None, Some(&mut f), 0),
        WsaError::WSATRY_AGAIN,
    );
    assert_eq!(
        b.WSAWaitForMultipleEvents(&[ev], false, 300, false),
        Ok(WSA_WAIT_TIMEOUT),
        "no new FD_ACCEPT after WSATRY_AGAIN"
    );
    let mut g = verdict(CF_ACCEPT);
    let s = b
        .WSAAccept(l, None, None, Some(&mut g), 0)
        .expect("offered again");
    assert_eq!(peer_name(&b, s).unwrap(), local_name(&a, c).unwrap());
}

/// Conformance: 86 — any other return value is WSAEINVAL.
#[test]
fn other_verdicts_are_invalid() {
    let (_a, b, l, _c) = offered(860, 8600);
    let mut f = verdict(7);
    assert_wsa_error(
        b.WSAAccept(l, None, None, Some(&mut f), 0),
        WsaError::WSAEINVAL,
    );
}

/// Conformance: 87, 88, 89 — the function runs on the calling thread with the caller's and the
/// local address, the callback data, no caller data and lpCalleeData.len 0.
#[test]
fn condition_function_arguments() {
    let (a, b, l, c) = offered(880, 8800);
    let me = thread::current().id();
    let seen = Cell::new(false);
    let mut f = |caller: Option<&WSABUF>,
                 data: Option<&WSABUF>,
                 sqos: Option<&mut QOS>,
                 gqos: Option<&mut QOS>,
                 callee: Option<&WSABUF>,
                 callee_data: Option<&mut WSABUF>,
                 _g: &mut u32,
                 cb: usize| {
        assert_eq!(thread::current().id(), me, "same thread");
        let caller = SOCKADDR_IN::from_bytes(caller.unwrap().data()).unwrap();
        assert_eq!(caller.to_socket_addr(), local_name(&a, c).unwrap());
        let callee = SOCKADDR_IN::from_bytes(callee.unwrap().data()).unwrap();
        assert_eq!(callee.to_socket_addr(), at(B, 8800));
        assert!(data.is_none() && sqos.is_none() && gqos.is_none());
        assert_eq!(callee_data.unwrap().len, 0);
        assert_eq!(cb, 0xfeed);
        seen.set(true);
        CF_ACCEPT
    };
    b.WSAAccept(l, None, None, Some(&mut f), 0xfeed)
        .expect("accepted");
    assert!(seen.get());
}

/// Conformance: 93, 94 — *g = SG_UNCONSTRAINED_GROUP makes a new group; an existing id joins it.
#[test]
fn condition_function_groups() {
    let (a, b, l, _c) = offered(930, 9300);
    let mut f = grouping(SG_UNCONSTRAINED_GROUP);
    let s = b.WSAAccept(l, None, None, Some(&mut f), 0).unwrap();
    let gid = get_int(&b, s, SOL_SOCKET, SO_GROUP_ID).unwrap() as u32;
    assert_ne!(gid, 0);
    let c2 = new_socket(&a, SOCK_STREAM);
    connect(&a, c2, at(B, 9300)).unwrap();
    let mut join = grouping(gid);
    let s2 = b.WSAAccept(l, None, None, Some(&mut join), 0).unwrap();
    assert_eq!(
        get_int(&b, s2, SOL_SOCKET, SO_GROUP_ID).unwrap() as u32,
        gid
    );
}

/// Conformance: 95, 96 — a constrained group whose peer differs, or an unknown group id, is
/// WSAEINVAL.
#[test]
fn condition_function_bad_groups() {
    let (_a, b, l, _c) = offered(950, 9500);
    // A constrained group on B whose destination is another host (10.0.0.9).
    let other = b
        .WSASocket(AF_INET, SOCK_STREAM, 0, None, SG_CONSTRAINED_GROUP, 0)
        .unwrap();
    set_nonblocking(&b, other, true);
    let _ = connect(&b, other, at(std::net::Ipv4Addr::new(10, 0, 0, 9), 1));
    let gid = get_int(&b, other, SOL_SOCKET, SO_GROUP_ID).unwrap() as u32;
    let mut f = grouping(gid);
    assert_wsa_error(
        b.WSAAccept(l, None, None, Some(&mut f), 0),
        WsaError::WSAEINVAL,
    );
    let (_a2, b2, l2, _c2) = offered(960, 9600);
    let mut unknown = grouping(0x7fff_0000);
    assert_wsa_error(
        b2.WSAAccept(l2, None, None, Some(&mut unknown), 0),
        WsaError::WSAEINVAL,
    );
}

/// Conformance: 100 — a non-blocking listener with nothing queued is WSAEWOULDBLOCK.
#[test]
fn nonblocking_empty_queue() {
    let (_a, b) = two_hosts(1000);
    let l = listener(&b, at(B, 10000), 4);
    set_nonblocking(&b, l, true);
    let mut f = verdict(CF_ACCEPT);
    assert_wsa_error(
        b.WSAAccept(l, None, None, Some(&mut f), 0),
        WsaError::WSAEWOULDBLOCK,
    );
}

/// Conformance: 92 — the condition function sees the caller's flowspecs (here from a caller on
/// the in-process LAN, the only place TCP can carry them) and what it leaves in `lpSQOS` is
/// granted to the accepted socket; without caller QoS `lpSQOS` is NULL (see
/// `condition_function_arguments`).
#[test]
fn condition_function_negotiates_qos() {
    let (a, b) = two_hosts(920);
    let l = listener(&b, at(B, 9200), 4);
    let c = new_socket(&a, SOCK_STREAM);
    let mut name = WSABUF::new(b"G711".to_vec());
    let mut g711 = QOS::default();
    a.WSAGetQOSByName(c, Some(&mut name), Some(&mut g711))
        .unwrap();
    a.WSAConnect(
        c,
        Some(&sa(at(B, 9200))),
        SOCKADDR_IN_LEN,
        None,
        None,
        Some(&g711),
        None,
    )
    .expect("WSAConnect with lpSQOS");
    let seen = Cell::new(0);
    let mut f = |_: Option<&WSABUF>,
                 _: Option<&WSABUF>,
                 sqos: Option<&mut QOS>,
                 _: Option<&mut QOS>,
                 _: Option<&WSABUF>,
                 _: Option<&mut WSABUF>,
                 _: &mut u32,
                 _: usize| {
        let q = sqos.expect("the caller's flowspecs");
        seen.set(q.SendingFlowspec.TokenRate);
        q.SendingFlowspec.TokenRate = 20_000;
        q.SendingFlowspec.PeakBandwidth = 20_000;
        CF_ACCEPT
    };
    let s = b
        .WSAAccept(l, None, None, Some(&mut f), 0)
        .expect("accepted");
    assert_eq!(seen.get(), g711.SendingFlowspec.TokenRate);
    let mut out = vec![0u8; 256];
    let mut n = 0;
    b.WSAIoctl(s, SIO_GET_QOS, &[], &mut out, Some(&mut n), None, None)
        .unwrap();
    let granted = QOS::from_bytes(&out[..n as usize]).unwrap();
    assert_eq!(
        granted.SendingFlowspec.TokenRate, 20_000,
        "the negotiated flowspec"
    );
}
