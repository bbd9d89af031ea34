//! CHECKLIST Part 2 group A: `WSAStartup`, `WSACleanup`, `WSAGetLastError`, `SO_ERROR`
//! (Part 1 §1.1).

use std::thread;
use std::time::Duration;

use ws2_stack::winsock::*;
use ws2_stack::WsaError;
use ws2_tap::VirtualSwitch;
use ws2_tests::*;

fn unstarted(seed: u64) -> Winsock {
    let switch = VirtualSwitch::new(seed);
    Winsock::new(stack_on(&switch, config(A)))
}

/// Every socket call `ws` offers, made on `s` (or creating one), `WSACleanup` last if
/// `cleanup`; each result's error, or `None` if it succeeded.
fn every_call(ws: &Winsock, s: SOCKET, cleanup: bool) -> Vec<(&'static str, Option<WsaError>)> {
    let name = sa(at(A, 1234));
    let mut buf = [0u8; 8];
    let mut out = SOCKADDR_IN::default();
    let mut len = SOCKADDR_IN_LEN;
    let mut optlen = 4;
    let mut arg = 0u32;
    let mut set = fd_set(&[s]);
    let t = timeval_ms(0);
    let e = |r: Result<(), WsaError>| r.err();
    let mut calls = vec![
        ("socket", ws.socket(AF_INET, SOCK_STREAM, 0).err()),
        (
            "WSASocket",
            ws.WSASocket(AF_INET, SOCK_DGRAM, 0, None, 0, 0).err(),
        ),
        ("bind", e(ws.bind(s, Some(&name), SOCKADDR_IN_LEN))),
        ("listen", e(ws.listen(s, 1))),
        ("accept", ws.accept(s, None, None).err()),
        ("connect", e(ws.connect(s, Some(&name), SOCKADDR_IN_LEN))),
        ("send", ws.send(s, b"x", 0).err()),
        (
            "sendto",
            ws.sendto(s, b"x", 0, Some(&name), SOCKADDR_IN_LEN).err(),
        ),
        ("recv", ws.recv(s, &mut buf, 0).err()),
        ("recvfrom", ws.recvfrom(s, &mut buf, 0, None, None).err()),
        ("shutdown", e(ws.shutdown(s, SD_BOTH))),
        (
            "getsockname",
            e(ws.getsockname(s, Some(&mut out), Some(&mut len))),
        ),
        (
            "getpeername",
            e(ws.getpeername(s, Some(&mut out), Some(&mut len))),
        ),
        (
            "getsockopt",
            e(ws.getsockopt(s, SOL_SOCKET, SO_TYPE, Some(&mut buf), &mut optlen)),
        ),
        (
            "setsockopt",
            e(ws.setsockopt(s, SOL_SOCKET, SO_DEBUG, Some(&[1, 0, 0, 0]), 4)),
        ),
        (
            "ioctlsocket",
            e(ws.ioctlsocket(s, FIONREAD, Some(&mut arg))),
        ),
        (
            "select",
            ws.select(0, Some(&mut set), None, None, Some(&t)).err(),
        ),
        ("closesocket", e(ws.closesocket(s))),
        ("WSASetLastError", e(ws.WSASetLastError(5))),
    ];
    if cleanup {
        calls.push(("WSACleanup", e(ws.WSACleanup())));
    }
    calls
}

/// Conformance: 1 — any socket function called before a successful `WSAStartup` fails with `WSANOTINITIALISED`.
#[test]
fn every_call_before_startup_is_not_initialised() {
    let ws = unstarted(1);
    for (call, err) in every_call(&ws, 1, true) {
        assert_eq!(err, Some(WsaError::WSANOTINITIALISED), "{call}");
        assert_eq!(WSAGetLastError(), WsaError::WSANOTINITIALISED.0, "{call}");
    }
    // A failed WSAStartup does not count as a successful one.
    let mut data = WSADATA::default();
    assert_ne!(ws.WSAStartup(MAKEWORD(0, 1), Some(&mut data)), 0);
    assert_wsa_error(
        ws.socket(AF_INET, SOCK_STREAM, 0),
        WsaError::WSANOTINITIALISED,
    );
}

/// Conformance: 2 — `WSAStartup` reports failure through its return value (the error code itself), not through `WSAGetLastError`.
#[test]
fn startup_returns_its_error_code() {
    let ws = unstarted(2);
    WSASetLastError(0);
    let mut data = WSADATA::default();
    assert_eq!(
        ws.WSAStartup(MAKEWORD(0, 9), Some(&mut data)),
        WsaError::WSAVERNOTSUPPORTED.0
    );
    assert_eq!(ws.WSAStartup(MAKEWORD(2, 2), None), WsaError::WSAEFAULT.0);
    assert_eq!(WSAGetLastError(), 0, "WSAStartup left the last error alone");
    WSASetLastError(1234);
    assert_eq!(ws.WSAStartup(MAKEWORD(2, 2), Some(&mut data)), 0);
    assert_eq!(
        WSAGetLastError(),
        1234,
        "a successful WSAStartup does not reset it either"
    );
}

/// Conformance: 3 — `WSAStartup(MAKEWORD(2,0))` succeeds with `wVersion` = 2.0 and `wHighVersion` = the implementation's highest version.
#[test]
fn startup_2_0() {
    let ws = unstarted(3);
    let mut data = WSADATA::default();
    assert_eq!(ws.WSAStartup(MAKEWORD(2, 0), Some(&mut data)), 0);
    assert_eq!(data.wVersion, MAKEWORD(2, 0));
    assert_eq!(data.wHighVersion, MAKEWORD(2, 2));
    assert_eq!(ws.version(), Some((2, 0)));
}

/// Conformance: 4 — `wVersionRequested` is decoded with the major version in the low byte and the minor version in the high byte.
#[test]
fn version_word_low_byte_is_major() {
    let ws = unstarted(4);
    let mut data = WSADATA::default();
    // 0x0102: major 2 (low byte), minor 1 (high byte).
    assert_eq!(ws.WSAStartup(0x0102, Some(&mut data)), 0);
    assert_eq!(ws.version(), Some((2, 1)));
    assert_eq!((LOBYTE(data.wVersion), HIBYTE(data.wVersion)), (2, 1));
    // 0x0201: major 1, minor 2 — a 1.x version, not 2.1.
    assert_eq!(ws.WSAStartup(0x0201, Some(&mut data)), 0);
    assert_eq!(ws.version(), Some((1, 2)));
    assert_eq!(data.wVersion, 0x0201);
    // 0x0100 is major 0, minor 1: below the lowest version, whatever a big-endian reader thinks.
    assert_eq!(
        ws.WSAStartup(0x0100, Some(&mut data)),
        WsaError::WSAVERNOTSUPPORTED.0
    );
}

/// Conformance: 5 — requesting a version higher than the highest supported succeeds with `wVersion` = `wHighVersion` = the highest supported version.
#[test]
fn startup_above_highest_gets_highest() {
    for word in [MAKEWORD(2, 3), MAKEWORD(3, 0), MAKEWORD(255, 255)] {
        let ws = unstarted(5);
        let mut data = WSADATA::default();
        assert_eq!(ws.WSAStartup(word, Some(&mut data)), 0, "{word:#06x}");
        assert_eq!(data.wVersion, MAKEWORD(2, 2), "{word:#06x}");
        assert_eq!(data.wHighVersion, MAKEWORD(2, 2), "{word:#06x}");
    }
}

/// Conformance: 6 — requesting a version lower than the lowest supported fails with `WSAVERNOTSUPPORTED`.
#[test]
fn startup_below_lowest_is_not_supported() {
    let ws = unstarted(6);
    let mut data = WSADATA::default();
    for word in [MAKEWORD(0, 0), MAKEWORD(0, 9), MAKEWORD(0, 255)] {
        assert_eq!(
            ws.WSAStartup(word, Some(&mut data)),
            WsaError::WSAVERNOTSUPPORTED.0,
            "{word:#06x}"
        );
    }
    assert_eq!(ws.version(), None, "no session was started");
    assert_eq!(
        ws.WSAStartup(MAKEWORD(1, 0), Some(&mut data)),
        0,
        "1.0 is the lowest supported"
    );
    assert_eq!(data.wVersion, MAKEWORD(1, 0));
}

/// Conformance: 7 — `WSAStartup` with an invalid `lpWSAData` fails with `WSAEFAULT`.
#[test]
fn startup_without_wsadata_is_fault() {
    let ws = unstarted(7);
    assert_eq!(ws.WSAStartup(MAKEWORD(2, 2), None), WsaError::WSAEFAULT.0);
    assert_eq!(ws.version(), None, "the failed call started nothing");
    assert_wsa_error(
        ws.socket(AF_INET, SOCK_DGRAM, 0),
        WsaError::WSANOTINITIALISED,
    );
}

/// Conformance: 8 — `WSAStartup` fills `szDescription` with printable text of at most 256 characters and still supplies values for `iMaxSockets`, `iMaxUdpDg` and `lpVendorInfo`.
#[test]
fn wsadata_contents() {
    let ws = unstarted(8);
    let mut data = WSADATA::default();
    assert_eq!(ws.WSAStartup(MAKEWORD(1, 1), Some(&mut data)), 0);
    assert!(!data.szDescription.is_empty());
    assert!(data.szDescription.chars().count() <= WSADESCRIPTION_LEN);
    assert!(
        data.szDescription.chars().all(|c| !c.is_control()),
        "{:?}",
        data.szDescription
    );
    assert!(data.szSystemStatus.chars().count() <= WSASYS_STATUS_LEN);
    assert!(data.szSystemStatus.chars().all(|c| !c.is_control()));
    assert!(
        data.iMaxSockets > 0,
        "a safe iMaxSockets for 1.1 applications"
    );
    assert!(
        data.iMaxUdpDg >= 512,
        "a safe iMaxUdpDg for 1.1 applications"
    );
    assert_eq!(data.lpVendorInfo, 0, "lpVendorInfo is a safe (null) value");
}

/// Conformance: 9 — after two successful `WSAStartup` calls, the first `WSACleanup` leaves sockets usable and only the second performs cleanup.
#[test]
fn cleanup_is_reference_counted() {
    let (a, b) = two_hosts(9);
    let mut data = WSADATA::default();
    assert_eq!(
        a.WSAStartup(MAKEWORD(2, 0), Some(&mut data)),
        0,
        "second startup"
    );
    let (c, s) = tcp_pair(&a, &b, 900);
    a.WSACleanup().expect("first cleanup");
    assert!(a.version().is_some(), "still started");
    send_all(&a, c, b"still here");
    assert_eq!(recv_exact(&b, s, 10), b"still here");
    a.WSACleanup().expect("second cleanup");
    assert_wsa_error(a.send(c, b"x", 0), WsaError::WSANOTINITIALISED);
}

/// Conformance: 10 — a `WSACleanup` without a matching successful `WSAStartup` fails with `WSANOTINITIALISED`.
#[test]
fn cleanup_without_startup() {
    let ws = unstarted(10);
    assert_wsa_error(ws.WSACleanup(), WsaError::WSANOTINITIALISED);
    let mut data = WSADATA::default();
    assert_eq!(ws.WSAStartup(MAKEWORD(2, 2), Some(&mut data)), 0);
    ws.WSACleanup().expect("matched");
    assert_wsa_error(ws.WSACleanup(), WsaError::WSANOTINITIALISED);
}

/// Conformance: 11 — the final `WSACleanup` resets and deallocates every open socket, so the peers of open TCP connections observe a reset.
#[test]
fn final_cleanup_resets_connections() {
    let (a, b) = two_hosts(11);
    let (c1, s1) = tcp_pair(&a, &b, 1100);
    let (_c2, s2) = tcp_pair(&a, &b, 1101);
    send_all(&a, c1, b"unsent?");
    let before = a.stack().stats();
    assert_eq!(before.sockets, 2);
    a.WSACleanup().expect("final cleanup");
    assert_eq!(a.stack().stats().sockets, 0, "every socket deallocated");
    let mut buf = [0u8; 64];
    for s in [s1, s2] {
        set_nonblocking(&b, s, true);
        // Data that arrived before the reset may be read first; then the reset shows.
        let r = retry(Duration::from_secs(5), || loop {
            match b.recv(s, &mut buf, 0) {
                Ok(n) if n > 0 => continue,
                r => return r,
            }
        });
        assert_wsa_error(r, WsaError::WSAECONNRESET);
    }
}

/// Conformance: 14 — after the final `WSACleanup`, socket calls made from any thread fail with `WSANOTINITIALISED`.
#[test]
fn after_final_cleanup_every_thread_is_not_initialised() {
    let (a, _b) = two_hosts(14);
    let s = udp_bound(&a, at(A, 1400));
    a.WSACleanup().expect("cleanup");
    for (call, err) in every_call(&a, s, true) {
        assert_eq!(err, Some(WsaError::WSANOTINITIALISED), "{call}");
    }
    let other = a.clone();
    thread::spawn(move || {
        for (call, err) in every_call(&other, s, true) {
            assert_eq!(
                err,
                Some(WsaError::WSANOTINITIALISED),
                "{call} on another thread"
            );
            assert_eq!(WSAGetLastError(), WsaError::WSANOTINITIALISED.0);
        }
    })
    .join()
    .expect("other thread");
    // A new WSAStartup starts afresh: the old handle is gone for good.
    let mut data = WSADATA::default();
    assert_eq!(a.WSAStartup(MAKEWORD(2, 2), Some(&mut data)), 0);
    assert_wsa_error(a.closesocket(s), WsaError::WSAENOTSOCK);
}

/// Conformance: 15 — `WSAGetLastError` returns the error of the calling thread's last failed call and is unaffected by failures in other threads.
#[test]
fn last_error_is_per_thread() {
    let (a, _b) = two_hosts(15);
    let s = new_socket(&a, SOCK_STREAM);
    assert_wsa_error(a.listen(s, 1), WsaError::WSAEINVAL);
    let other = a.clone();
    let seen = thread::spawn(move || {
        let before = WSAGetLastError();
        assert_wsa_error(other.closesocket(INVALID_SOCKET), WsaError::WSAENOTSOCK);
        before
    })
    .join()
    .expect("other thread");
    assert_eq!(seen, 0, "a new thread starts with no error");
    assert_eq!(
        WSAGetLastError(),
        WsaError::WSAEINVAL.0,
        "untouched by the other thread"
    );
    assert_eq!(a.WSAGetLastError(), WsaError::WSAEINVAL.0);
}

/// Conformance: 16 — a successful call does not change the value returned by `WSAGetLastError`.
#[test]
fn success_keeps_last_error() {
    let (a, _b) = two_hosts(16);
    assert_wsa_error(a.closesocket(12345), WsaError::WSAENOTSOCK);
    let s = new_socket(&a, SOCK_DGRAM);
    bind(&a, s, at(A, 1600)).expect("bind");
    assert_eq!(get_int(&a, s, SOL_SOCKET, SO_TYPE), Ok(SOCK_DGRAM));
    assert_eq!(WSAGetLastError(), WsaError::WSAENOTSOCK.0);
    assert_eq!(
        WSAGetLastError(),
        WsaError::WSAENOTSOCK.0,
        "reading it does not reset it"
    );
}

/// Conformance: 17 — `WSASetLastError(0)` makes `WSAGetLastError` return 0, and a subsequent failing call overrides any value set by `WSASetLastError`.
#[test]
fn set_last_error() {
    let (a, _b) = two_hosts(17);
    assert_wsa_error(a.closesocket(INVALID_SOCKET), WsaError::WSAENOTSOCK);
    a.WSASetLastError(0).expect("WSASetLastError");
    assert_eq!(WSAGetLastError(), 0);
    a.WSASetLastError(WsaError::WSAEACCES.0)
        .expect("WSASetLastError");
    assert_eq!(WSAGetLastError(), WsaError::WSAEACCES.0);
    let s = new_socket(&a, SOCK_STREAM);
    assert_wsa_error(a.listen(s, 1), WsaError::WSAEINVAL);
}

/// Conformance: 18 — `getsockopt(SO_ERROR)` returns the socket's pending error and a second call returns 0.
#[test]
fn so_error_is_get_and_clear() {
    let (a, _b) = two_hosts(18);
    let s = new_socket(&a, SOCK_STREAM);
    set_nonblocking(&a, s, true);
    assert_would_block(connect(&a, s, at(B, 1800)));
    assert!(
        wait_until(Duration::from_secs(5), || poll_one(&a, s, 0).2),
        "refusal seen"
    );
    assert_eq!(
        get_int(&a, s, SOL_SOCKET, SO_ERROR),
        Ok(WsaError::WSAECONNREFUSED.0)
    );
    assert_eq!(
        get_int(&a, s, SOL_SOCKET, SO_ERROR),
        Ok(0),
        "cleared by the first read"
    );
}

/// Conformance: 19 — a successful operation on a socket does not clear its `SO_ERROR` value.
#[test]
fn success_keeps_so_error() {
    let (a, _b) = two_hosts(19);
    let s = new_socket(&a, SOCK_STREAM);
    set_nonblocking(&a, s, true);
    assert_would_block(connect(&a, s, at(B, 1900)));
    assert!(
        wait_until(Duration::from_secs(5), || poll_one(&a, s, 0).2),
        "refusal seen"
    );
    // Successful calls on the socket in between.
    assert_eq!(get_int(&a, s, SOL_SOCKET, SO_TYPE), Ok(SOCK_STREAM));
    set_int(&a, s, SOL_SOCKET, SO_KEEPALIVE, 1).expect("setsockopt");
    assert!(local_name(&a, s).is_ok());
    set_nonblocking(&a, s, true);
    assert_eq!(
        get_int(&a, s, SOL_SOCKET, SO_ERROR),
        Ok(WsaError::WSAECONNREFUSED.0)
    );
}

/// Conformance: 20 — the per-socket `SO_ERROR` value and the per-thread `WSAGetLastError` value are independent of each other.
#[test]
fn so_error_and_last_error_are_independent() {
    let (a, _b) = two_hosts(20);
    let s = new_socket(&a, SOCK_STREAM);
    set_nonblocking(&a, s, true);
    assert_would_block(connect(&a, s, at(B, 2000)));
    assert!(
        wait_until(Duration::from_secs(5), || poll_one(&a, s, 0).2),
        "refusal seen"
    );
    a.WSASetLastError(0).expect("WSASetLastError");
    assert_eq!(
        get_int(&a, s, SOL_SOCKET, SO_ERROR),
        Ok(WsaError::WSAECONNREFUSED.0)
    );
    assert_eq!(
        WSAGetLastError(),
        0,
        "reading SO_ERROR does not set the last error"
    );
    a.WSASetLastError(WsaError::WSAEMSGSIZE.0)
        .expect("WSASetLastError");
    assert_eq!(
        get_int(&a, s, SOL_SOCKET, SO_ERROR),
        Ok(0),
        "nor the other way round"
    );
    assert_eq!(WSAGetLastError(), WsaError::WSAEMSGSIZE.0);
}

/// Conformance: 21 — passing a value that is not a socket (or a closed socket) to any socket function fails with `WSAENOTSOCK`.
#[test]
fn not_a_socket_everywhere() {
    let (a, _b) = two_hosts(21);
    let closed = new_socket(&a, SOCK_STREAM);
    a.closesocket(closed).expect("close");
    for bad in [closed, INVALID_SOCKET, 0, 987_654] {
        for (call, err) in every_call(&a, bad, false) {
            match call {
                "socket" | "WSASocket" | "WSASetLastError" => assert_eq!(err, None, "{call}"),
                _ => assert_eq!(err, Some(WsaError::WSAENOTSOCK), "{call} on {bad:#x}"),
            }
        }
    }
}
