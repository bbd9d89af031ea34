//! Smoke checks of the asynchronous models end to end (the detailed conformance tests live in
//! winsock_async_select.rs, winsock_events.rs, winsock_overlapped.rs, winsock_hooks.rs).

use std::sync::{Arc, Mutex};

use ws2_stack::winsock::*;
use ws2_tests::*;

/// Conformance: 258, 288 — FD_READ recorded and signalled when data arrives; the record is
/// taken by WSAEnumNetworkEvents.
#[test]
fn event_select_sees_data() {
    let (a, b) = two_hosts(9001);
    let (c, s) = tcp_pair(&a, &b, 9001);
    let ev = b.WSACreateEvent().unwrap();
    b.WSAEventSelect(s, ev, FD_READ | FD_CLOSE).unwrap();
    assert_eq!(
        b.WSAWaitForMultipleEvents(&[ev], false, 0, false),
        Ok(WSA_WAIT_TIMEOUT)
    );
    send_all(&a, c, b"hello");
    assert_eq!(
        b.WSAWaitForMultipleEvents(&[ev], false, 5000, false),
        Ok(WSA_WAIT_EVENT_0)
    );
    let mut ne = WSANETWORKEVENTS::default();
    b.WSAEnumNetworkEvents(s, ev, Some(&mut ne)).unwrap();
    assert_eq!(ne.lNetworkEvents, FD_READ);
    let mut buf = [0u8; 16];
    assert_eq!(b.recv(s, &mut buf, 0), Ok(5));
    a.closesocket(c).unwrap();
    assert_eq!(
        b.WSAWaitForMultipleEvents(&[ev], false, 5000, false),
        Ok(WSA_WAIT_EVENT_0)
    );
    b.WSAEnumNetworkEvents(s, ev, Some(&mut ne)).unwrap();
    assert_eq!(ne.lNetworkEvents, FD_CLOSE);
    assert_eq!(ne.iErrorCode[FD_CLOSE_BIT], 0);
}

/// Conformance: 307, 322 — an overlapped receive pends, then its completion routine runs in an
/// alertable wait.
#[test]
fn completion_routine_receives() {
    let (a, b) = two_hosts(9002);
    let (c, s) = tcp_pair(&a, &b, 9002);
    let ov = WSAOVERLAPPED::new(0);
    let got = Arc::new(Mutex::new(None));
    let g = got.clone();
    let mut bufs = [WSABUF::zeroed(100)];
    let mut flags = 0;
    let r = b.WSARecv(
        s,
        &mut bufs,
        None,
        Some(&mut flags),
        Some(&ov),
        Some(Box::new(move |err, n, ov: &WSAOVERLAPPED, _f| {
            *g.lock().unwrap() = Some((err, n, ov.take_received()));
        })),
    );
    assert_eq!(r, Err(WsaError::WSA_IO_PENDING));
    send_all(&a, c, b"abc");
    let ev = b.WSACreateEvent().unwrap();
    assert_eq!(
        b.WSAWaitForMultipleEvents(&[ev], false, 5000, true),
        Ok(WSA_WAIT_IO_COMPLETION)
    );
    assert_eq!(*got.lock().unwrap(), Some((0, 3, b"abc".to_vec())));
}

use ws2_stack::WsaError;

/// Conformance: 118 — a connected UDP socket discards datagrams from other addresses before
/// anyone sees them: no FD_READ, not readable, FIONREAD 0.
#[test]
fn connected_udp_ignores_strangers_in_readiness() {
    let (a, b) = two_hosts(9003);
    let rx = udp_bound(&b, at(B, 9003));
    connect(&b, rx, at(A, 9004)).unwrap();
    let ev = b.WSACreateEvent().unwrap();
    b.WSAEventSelect(rx, ev, FD_READ).unwrap();
    let stranger = udp_bound(&a, at(A, 9005));
    let peer = udp_bound(&a, at(A, 9004));
    sendto(&a, stranger, b"nope", at(B, 9003)).unwrap();
    assert_eq!(
        b.WSAWaitForMultipleEvents(&[ev], false, 300, false),
        Ok(WSA_WAIT_TIMEOUT),
        "no FD_READ for a stranger's datagram"
    );
    assert_eq!(fionread(&b, rx), 0);
    assert!(!poll_one(&b, rx, 0).0, "not readable");
    sendto(&a, peer, b"yes", at(B, 9003)).unwrap();
    assert_eq!(
        b.WSAWaitForMultipleEvents(&[ev], false, 5000, false),
        Ok(WSA_WAIT_EVENT_0)
    );
    assert_eq!(fionread(&b, rx), 3);
}

/// Conformance: 123 — `connect` on a UDP socket completes at once and still posts FD_CONNECT.
#[test]
fn udp_connect_posts_fd_connect() {
    let (a, _b) = two_hosts(1230);
    let s = udp_bound(&a, at(A, 12300));
    let q = MessageQueue::new();
    a.WSAAsyncSelect(s, q.hwnd(), 0x401, FD_CONNECT).unwrap();
    assert_eq!(connect(&a, s, at(B, 12301)), Ok(()));
    let m = q
        .GetMessage(Some(std::time::Duration::from_secs(5)))
        .expect("FD_CONNECT");
    assert_eq!(WSAGETSELECTEVENT(m.lParam) as i32, FD_CONNECT);
    assert_eq!(WSAGETSELECTERROR(m.lParam), 0);
}

/// Conformance: 379 — a stack configured without QoS refuses the QoS ioctls with
/// WSAENOPROTOOPT.
#[test]
fn qos_ioctls_without_qos_support() {
    let switch = ws2_tap::VirtualSwitch::new(3790);
    let mut cfg = config(A);
    cfg.qos_support = false;
    let (a, _b) = two_hosts_on(&switch, cfg, config(B));
    let s = udp_bound(&a, at(A, 37900));
    let mut n = 0;
    for code in [
        SIO_SET_QOS,
        SIO_GET_QOS,
        SIO_SET_GROUP_QOS,
        SIO_GET_GROUP_QOS,
    ] {
        assert_wsa_error(
            a.WSAIoctl(
                s,
                code,
                &QOS::default().to_bytes(),
                &mut [0u8; 128],
                Some(&mut n),
                None,
                None,
            ),
            WsaError::WSAENOPROTOOPT,
        );
    }
}
