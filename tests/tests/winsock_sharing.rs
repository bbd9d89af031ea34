//! CHECKLIST §1.12 `WSADuplicateSocket`, §1.2 `WSASocket` with `lpProtocolInfo`, and the
//! catalog-entry options `SO_PROTOCOL_INFO` and `PVD_CONFIG` (§1.13).

use std::time::Duration;

use ws2_stack::winsock::*;
use ws2_stack::WsaError;
use ws2_tests::*;

/// How long a notification may take.
const WAIT: Duration = Duration::from_secs(5);
/// How long to watch for a notification that must not come.
const QUIET: Duration = Duration::from_millis(200);

fn protocol_info(ws: &Winsock, s: SOCKET) -> WSAPROTOCOL_INFO {
    let mut buf = vec![0u8; WSAPROTOCOL_INFO_LEN as usize];
    let mut len = buf.len() as i32;
    ws.getsockopt(s, SOL_SOCKET, SO_PROTOCOL_INFO, Some(&mut buf), &mut len)
        .expect("SO_PROTOCOL_INFO");
    WSAPROTOCOL_INFO::from_bytes(&buf[..len as usize]).expect("layout")
}

fn duplicate(ws: &Winsock, s: SOCKET) -> WSAPROTOCOL_INFO {
    let mut info = WSAPROTOCOL_INFO::default();
    ws.WSADuplicateSocket(s, std::process::id(), Some(&mut info))
        .expect("WSADuplicateSocket");
    info
}

fn redeem(ws: &Winsock, info: &WSAPROTOCOL_INFO) -> Result<SOCKET, WsaError> {
    ws.WSASocket(
        FROM_PROTOCOL_INFO,
        FROM_PROTOCOL_INFO,
        FROM_PROTOCOL_INFO,
        Some(info),
        0,
        0,
    )
}

/// Conformance: 31 — `WSASocket(FROM_PROTOCOL_INFO ×3, &info)` creates a socket whose `SO_PROTOCOL_INFO` and `SO_TYPE` match `info`.
#[test]
fn from_protocol_info_creates_that_entry() {
    let (a, _b) = two_hosts(31);
    let mut buf = vec![WSAPROTOCOL_INFO::default(); 8];
    let mut len = (buf.len() as u32) * WSAPROTOCOL_INFO_LEN;
    let n = a
        .WSAEnumProtocols(None, Some(&mut buf), &mut len)
        .expect("enum");
    for info in &buf[..n as usize] {
        let s = redeem(&a, info).expect("WSASocket");
        let got = protocol_info(&a, s);
        assert_eq!(got.dwCatalogEntryId, info.dwCatalogEntryId);
        assert_eq!(get_int(&a, s, SOL_SOCKET, SO_TYPE), Ok(info.iSocketType));
        a.closesocket(s).unwrap();
    }
}

/// Conformance: 32 — `WSASocket` with `lpProtocolInfo` = NULL picks the first catalog entry matching (af, type, protocol).
#[test]
fn null_info_picks_first_match() {
    let (a, _b) = two_hosts(32);
    let s = a
        .WSASocket(AF_INET, SOCK_RDM, IPPROTO_RMP_RELAY, None, 0, 0)
        .unwrap();
    assert_eq!(protocol_info(&a, s).iProtocol, IPPROTO_RMP_RELAY);
    let s = a
        .WSASocket(AF_INET, SOCK_DGRAM, IPPROTO_UDP, None, 0, 0)
        .unwrap();
    assert_eq!(protocol_info(&a, s).iProtocol, IPPROTO_UDP);
}

/// Conformance: 446 — `getsockopt(SO_PROTOCOL_INFO)` returns the catalog entry the socket was created from (same `dwCatalogEntryId`).
#[test]
fn protocol_info_is_the_creating_entry() {
    let (a, _b) = two_hosts(446);
    let s = a
        .WSASocket(AF_INET, SOCK_RDM, IPPROTO_RMP, None, 0, 0)
        .unwrap();
    let info = protocol_info(&a, s);
    assert_eq!(info.iProtocol, IPPROTO_RMP);
    assert_eq!(info.protocol_name(), "ws2 RMP [rooted data]");
    // The wide layout carries the same entry with a UTF-16 name.
    let mut buf = vec![0u8; 2048];
    let mut len = buf.len() as i32;
    a.getsockopt(s, SOL_SOCKET, SO_PROTOCOL_INFOW, Some(&mut buf), &mut len)
        .unwrap();
    assert!(len > WSAPROTOCOL_INFO_LEN as i32);
}

/// Conformance: 447 — `socket(AF_INET, SOCK_STREAM, 0)` selects the entry flagged `PFL_MATCHES_PROTOCOL_ZERO`.
#[test]
fn protocol_zero_picks_flagged_entry() {
    let (a, _b) = two_hosts(447);
    let s = a.socket(AF_INET, SOCK_STREAM, 0).unwrap();
    let info = protocol_info(&a, s);
    assert_ne!(info.dwProviderFlags & PFL_MATCHES_PROTOCOL_ZERO, 0);
    assert_eq!(info.iProtocol, IPPROTO_TCP);
}

/// Conformance: 479 — `getsockopt(SO_PROTOCOL_INFO)` with a buffer smaller than `WSAPROTOCOL_INFO` fails with `WSAEFAULT`.
#[test]
fn protocol_info_short_buffer() {
    let (a, _b) = two_hosts(479);
    let s = new_socket(&a, SOCK_STREAM);
    let mut buf = vec![0u8; WSAPROTOCOL_INFO_LEN as usize - 1];
    let mut len = buf.len() as i32;
    assert_wsa_error(
        a.getsockopt(s, SOL_SOCKET, SO_PROTOCOL_INFO, Some(&mut buf), &mut len),
        WsaError::WSAEFAULT,
    );
}

/// Conformance: 480 — `getsockopt(PVD_CONFIG)` returns the provider's opaque blob and `setsockopt(PVD_CONFIG)` accepts a blob of the same format.
#[test]
fn pvd_config_round_trip() {
    let (a, _b) = two_hosts(480);
    let s = new_socket(&a, SOCK_DGRAM);
    let mut buf = [0u8; 64];
    let mut len = buf.len() as i32;
    a.getsockopt(s, SOL_SOCKET, PVD_CONFIG, Some(&mut buf), &mut len)
        .unwrap();
    assert_eq!(len as usize, PVD_CONFIG_LEN);
    assert_eq!(buf[..4], PVD_CONFIG_MAGIC);
    a.setsockopt(s, SOL_SOCKET, PVD_CONFIG, Some(&buf[..8]), 8)
        .unwrap();
    assert_wsa_error(
        a.setsockopt(s, SOL_SOCKET, PVD_CONFIG, Some(&[0u8; 8]), 8),
        WsaError::WSAEINVAL,
    );
    assert_wsa_error(
        a.setsockopt(s, SOL_SOCKET, PVD_CONFIG, Some(&buf[..4]), 4),
        WsaError::WSAEFAULT,
    );
}

/// Conformance: 450 — `WSADuplicateSocket` then `WSASocket(FROM_PROTOCOL_INFO…)` yields a second descriptor on which `recv` returns data sent to the original connection.
#[test]
fn duplicate_receives() {
    let (a, b) = two_hosts(450);
    let (c, s) = tcp_pair(&a, &b, 4500);
    let info = duplicate(&b, s);
    let s2 = redeem(&b, &info).expect("redeem");
    assert_ne!(s2, s);
    a.send(c, b"shared", 0).unwrap();
    assert_eq!(recv_exact(&b, s2, 6), b"shared");
}

/// Conformance: 451 — An option set through one descriptor of a shared socket is read back through the other.
#[test]
fn options_are_shared() {
    let (a, _b) = two_hosts(451);
    let s = new_socket(&a, SOCK_STREAM);
    let s2 = redeem(&a, &duplicate(&a, s)).unwrap();
    set_int(&a, s, SOL_SOCKET, SO_KEEPALIVE, 1).unwrap();
    assert_eq!(get_int(&a, s2, SOL_SOCKET, SO_KEEPALIVE), Ok(1));
}

/// Conformance: 452 — Closing one descriptor of a shared TCP socket leaves the connection open and usable through the other.
#[test]
fn close_one_descriptor() {
    let (a, b) = two_hosts(452);
    let (c, s) = tcp_pair(&a, &b, 4520);
    let s2 = redeem(&b, &duplicate(&b, s)).unwrap();
    b.closesocket(s).unwrap();
    assert_wsa_error(b.send(s, b"x", 0), WsaError::WSAENOTSOCK);
    b.send(s2, b"still", 0).unwrap();
    assert_eq!(recv_exact(&a, c, 5), b"still");
}

/// Conformance: 453 — Closing the last descriptor of a shared socket closes the underlying connection.
#[test]
fn close_last_descriptor() {
    let (a, b) = two_hosts(453);
    let (c, s) = tcp_pair(&a, &b, 4530);
    let s2 = redeem(&b, &duplicate(&b, s)).unwrap();
    b.closesocket(s).unwrap();
    b.closesocket(s2).unwrap();
    let mut buf = [0u8; 8];
    assert_eq!(a.recv(c, &mut buf, 0), Ok(0), "the peer sees the close");
}

/// Conformance: 454 — `WSASocket` with a duplicated `WSAPROTOCOL_INFO` ignores its `g` and `dwFlags` arguments.
#[test]
fn duplicate_ignores_g_and_flags() {
    let (a, _b) = two_hosts(454);
    let s = new_socket(&a, SOCK_STREAM);
    let info = duplicate(&a, s);
    let s2 = a
        .WSASocket(
            FROM_PROTOCOL_INFO,
            FROM_PROTOCOL_INFO,
            FROM_PROTOCOL_INFO,
            Some(&info),
            0xdead_beef,
            0x8000,
        )
        .expect("g and dwFlags ignored");
    assert_eq!(get_int(&a, s2, SOL_SOCKET, SO_GROUP_ID), Ok(0));
}

/// Conformance: 455 — Using the same duplicated `WSAPROTOCOL_INFO` a second time fails (`WSAEINVAL`, D-11).
#[test]
fn duplicate_is_one_shot() {
    let (a, _b) = two_hosts(455);
    let s = new_socket(&a, SOCK_STREAM);
    let info = duplicate(&a, s);
    redeem(&a, &info).unwrap();
    assert_wsa_error(redeem(&a, &info), WsaError::WSAEINVAL);
}

/// Conformance: 456 — `WSAEventSelect` through one descriptor cancels a `WSAEventSelect` registration made through another descriptor of the same socket.
#[test]
fn event_select_is_per_socket() {
    let (a, b) = two_hosts(456);
    let (c, s) = tcp_pair(&a, &b, 4560);
    let s2 = redeem(&b, &duplicate(&b, s)).unwrap();
    let e1 = b.WSACreateEvent().unwrap();
    let e2 = b.WSACreateEvent().unwrap();
    b.WSAEventSelect(s, e1, FD_READ).unwrap();
    b.WSAEventSelect(s2, e2, FD_READ).unwrap();
    a.send(c, b"ping", 0).unwrap();
    assert_eq!(
        b.WSAWaitForMultipleEvents(&[e2], false, 5000, false),
        Ok(WSA_WAIT_EVENT_0)
    );
    assert_eq!(
        b.WSAWaitForMultipleEvents(&[e1], false, 0, false),
        Ok(WSA_WAIT_TIMEOUT),
        "the first registration was replaced"
    );
}

/// Conformance: 457 — `WSADuplicateSocket` on a non-socket fails with `WSAENOTSOCK`.
#[test]
fn duplicate_non_socket() {
    let (a, _b) = two_hosts(457);
    let mut info = WSAPROTOCOL_INFO::default();
    assert_wsa_error(
        a.WSADuplicateSocket(12345, std::process::id(), Some(&mut info)),
        WsaError::WSAENOTSOCK,
    );
}

/// Conformance: 456 — `WSAEventSelect` through one descriptor cancels a `WSAAsyncSelect` registration made through another descriptor of the same socket.
#[test]
fn event_select_cancels_async_select_of_other_descriptor() {
    let (a, b) = two_hosts(4561);
    let (c, s) = tcp_pair(&a, &b, 4561);
    let s2 = redeem(&b, &duplicate(&b, s)).unwrap();
    let q = MessageQueue::new();
    b.WSAAsyncSelect(s, q.hwnd(), 0x401, FD_READ).unwrap();
    let e = b.WSACreateEvent().unwrap();
    b.WSAEventSelect(s2, e, FD_READ).unwrap();
    a.send(c, b"ping", 0).unwrap();
    assert_eq!(
        b.WSAWaitForMultipleEvents(&[e], false, 5000, false),
        Ok(WSA_WAIT_EVENT_0)
    );
    assert_eq!(
        q.GetMessage(Some(Duration::from_millis(200))),
        None,
        "the WSAAsyncSelect registration was replaced"
    );
}

/// Conformance: 257 — Each notification message carries `wParam` = the socket: through a duplicated descriptor, the descriptor registered with.
#[test]
fn async_select_through_duplicate() {
    let (a, b) = two_hosts(4562);
    let (c, s) = tcp_pair(&a, &b, 4562);
    let s2 = redeem(&b, &duplicate(&b, s)).unwrap();
    let q = MessageQueue::new();
    b.WSAAsyncSelect(s2, q.hwnd(), 0x402, FD_READ).unwrap();
    a.send(c, b"abcd", 0).unwrap();
    let m = q.GetMessage(Some(WAIT)).expect("FD_READ");
    assert_eq!(
        (m.wParam, m.message),
        (s2, 0x402),
        "wParam is the duplicate"
    );
    assert_eq!(i32::from(WSAGETSELECTEVENT(m.lParam)), FD_READ);
    assert_eq!(
        q.GetMessage(Some(QUIET)),
        None,
        "no new FD_READ before a recv"
    );
    // A recv through the duplicate re-enables FD_READ; data remains, so another follows.
    let mut buf = [0u8; 2];
    assert_eq!(b.recv(s2, &mut buf, 0), Ok(2));
    let m = q
        .GetMessage(Some(WAIT))
        .expect("FD_READ after a partial recv");
    assert_eq!(m.wParam, s2);
    assert_eq!(i32::from(WSAGETSELECTEVENT(m.lParam)), FD_READ);
    assert_eq!(b.recv(s2, &mut buf, 0), Ok(2));
    assert_eq!(&buf, b"cd");
}

/// A `recv` through a duplicated descriptor re-enables the `WSAEventSelect` registration made
/// through it (CHECKLIST 260 on a shared socket).
#[test]
fn event_select_rearmed_through_duplicate() {
    let (a, b) = two_hosts(4563);
    let (c, s) = tcp_pair(&a, &b, 4563);
    let s2 = redeem(&b, &duplicate(&b, s)).unwrap();
    let e = b.WSACreateEvent().unwrap();
    b.WSAEventSelect(s2, e, FD_READ).unwrap();
    a.send(c, b"abcd", 0).unwrap();
    assert_eq!(
        b.WSAWaitForMultipleEvents(&[e], false, 5000, false),
        Ok(WSA_WAIT_EVENT_0)
    );
    let mut ev = WSANETWORKEVENTS::default();
    b.WSAEnumNetworkEvents(s2, e, Some(&mut ev)).unwrap();
    assert_eq!(ev.lNetworkEvents, FD_READ);
    let mut buf = [0u8; 2];
    assert_eq!(b.recv(s2, &mut buf, 0), Ok(2));
    assert_eq!(
        b.WSAWaitForMultipleEvents(&[e], false, 5000, false),
        Ok(WSA_WAIT_EVENT_0),
        "data remains: the recv re-enabled FD_READ"
    );
    b.WSAEnumNetworkEvents(s2, e, Some(&mut ev)).unwrap();
    assert_eq!(ev.lNetworkEvents, FD_READ);
}

/// `select` reports a duplicated descriptor readable when data arrives on its socket, and
/// returns that descriptor in the set.
#[test]
fn select_on_duplicate() {
    let (a, b) = two_hosts(4564);
    let (c, s) = tcp_pair(&a, &b, 4564);
    let s2 = redeem(&b, &duplicate(&b, s)).unwrap();
    a.send(c, b"data", 0).unwrap();
    assert!(
        wait_readable(&b, s, 5000),
        "the first descriptor is readable"
    );
    let mut set = fd_set(&[s2]);
    let t = timeval_ms(0);
    assert_eq!(b.select(0, Some(&mut set), None, None, Some(&t)), Ok(1));
    assert!(FD_ISSET(s2, &set), "the duplicate is in the readable set");
}
