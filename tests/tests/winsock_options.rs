//! CHECKLIST Part 2 groups T and U: `getsockopt`, `setsockopt` (Part 1 §1.13) and
//! `ioctlsocket(SIOCATMARK)` (§1.14.1).

use std::sync::atomic::Ordering;
use std::thread;
use std::time::{Duration, Instant};

use ws2_stack::winsock::*;
use ws2_stack::{Stack, WsaError};
use ws2_tap::{Impairments, VirtualSwitch};
use ws2_tests::*;

/// A host pair whose sessions negotiated `version`.
fn hosts_version(seed: u64, version: u16) -> (Winsock, Winsock) {
    let switch = VirtualSwitch::new(seed);
    (
        started_version(&stack_on(&switch, config(A)), version),
        started_version(&stack_on(&switch, config(B)), version),
    )
}

/// Conformance: 458 — `getsockopt` of `SO_RCVLOWAT`, `SO_RCVTIMEO`, `SO_SNDLOWAT`, `SO_SNDTIMEO` or `TCP_MAXSEG` fails with `WSAENOPROTOOPT` (a 2.0 session; 2.2 adds the two timeouts, as Windows does).
#[test]
fn bsd_options_not_gettable() {
    let (a, _b) = hosts_version(458, MAKEWORD(2, 0));
    let s = new_socket(&a, SOCK_STREAM);
    for (level, opt) in [
        (SOL_SOCKET, SO_RCVLOWAT),
        (SOL_SOCKET, SO_RCVTIMEO),
        (SOL_SOCKET, SO_SNDLOWAT),
        (SOL_SOCKET, SO_SNDTIMEO),
        (IPPROTO_TCP, TCP_MAXSEG),
    ] {
        assert_wsa_error(get_int(&a, s, level, opt), WsaError::WSAENOPROTOOPT);
    }
    // In 2.2 the low-water marks and TCP_MAXSEG stay unsupported.
    let (a, _b) = two_hosts(4580);
    let s = new_socket(&a, SOCK_STREAM);
    for (level, opt) in [
        (SOL_SOCKET, SO_RCVLOWAT),
        (SOL_SOCKET, SO_SNDLOWAT),
        (IPPROTO_TCP, TCP_MAXSEG),
    ] {
        assert_wsa_error(get_int(&a, s, level, opt), WsaError::WSAENOPROTOOPT);
    }
}

/// Conformance: 459 — `setsockopt` of `SO_ACCEPTCONN`, `SO_RCVLOWAT`, `SO_RCVTIMEO`, `SO_SNDLOWAT`, `SO_SNDTIMEO` or `SO_TYPE` fails with `WSAENOPROTOOPT` (a 2.0 session).
#[test]
fn bsd_options_not_settable() {
    let (a, _b) = hosts_version(459, MAKEWORD(2, 0));
    let s = new_socket(&a, SOCK_STREAM);
    for opt in [
        SO_ACCEPTCONN,
        SO_RCVLOWAT,
        SO_RCVTIMEO,
        SO_SNDLOWAT,
        SO_SNDTIMEO,
        SO_TYPE,
    ] {
        assert_wsa_error(set_int(&a, s, SOL_SOCKET, opt, 1), WsaError::WSAENOPROTOOPT);
    }
    // Get-only options refuse a set the same way (D-26).
    for opt in [SO_ERROR, SO_GROUP_ID, SO_MAX_MSG_SIZE] {
        assert_wsa_error(set_int(&a, s, SOL_SOCKET, opt, 1), WsaError::WSAENOPROTOOPT);
    }
    assert_eq!(
        get_int(&a, s, SOL_SOCKET, SO_TYPE),
        Ok(SOCK_STREAM),
        "unchanged"
    );
    assert_eq!(
        get_int(&a, s, SOL_SOCKET, SO_ACCEPTCONN),
        Ok(0),
        "unchanged"
    );
}

/// Conformance: 460 — `getsockopt`/`setsockopt` with an unknown level fails with `WSAEINVAL`.
#[test]
fn unknown_level() {
    let (a, _b) = two_hosts(460);
    let s = new_socket(&a, SOCK_STREAM);
    for level in [1, 0x1234, -1, 0xfffe] {
        assert_wsa_error(get_int(&a, s, level, SO_TYPE), WsaError::WSAEINVAL);
        assert_wsa_error(set_int(&a, s, level, SO_DEBUG, 1), WsaError::WSAEINVAL);
    }
}

/// Conformance: 461 — `getsockopt`/`setsockopt` with an unknown option name at `SOL_SOCKET` fails with `WSAENOPROTOOPT`.
#[test]
fn unknown_option() {
    let (a, _b) = two_hosts(461);
    let s = new_socket(&a, SOCK_DGRAM);
    for opt in [0x0200, 0x1009, 0x4000, 0x7fff_0000, -5] {
        assert_wsa_error(get_int(&a, s, SOL_SOCKET, opt), WsaError::WSAENOPROTOOPT);
        assert_wsa_error(set_int(&a, s, SOL_SOCKET, opt, 1), WsaError::WSAENOPROTOOPT);
    }
    // TCP_NODELAY is a TCP option: a UDP socket does not know it.
    assert_wsa_error(
        get_int(&a, s, IPPROTO_TCP, TCP_NODELAY),
        WsaError::WSAENOPROTOOPT,
    );
}

/// Conformance: 462 — `getsockopt` with `*optlen` smaller than the option's size fails with `WSAEFAULT`.
#[test]
fn getsockopt_short_optlen() {
    let (a, _b) = two_hosts(462);
    let s = new_socket(&a, SOCK_STREAM);
    let mut buf = [0xAAu8; 8];
    for opt in [SO_TYPE, SO_LINGER, SO_RCVBUF, SO_KEEPALIVE] {
        for short in [0, 1, 3] {
            let mut len = short;
            assert_wsa_error(
                a.getsockopt(s, SOL_SOCKET, opt, Some(&mut buf), &mut len),
                WsaError::WSAEFAULT,
            );
            assert_eq!(len, short, "optlen untouched");
        }
        let mut len = 4;
        assert_wsa_error(
            a.getsockopt(s, SOL_SOCKET, opt, None, &mut len),
            WsaError::WSAEFAULT,
        );
    }
    assert_eq!(buf, [0xAA; 8], "nothing was written");
}

/// Conformance: 463, 478 — `setsockopt` with `optlen` smaller than `sizeof(int)` for a Boolean option, or than `sizeof(struct linger)` for `SO_LINGER`, fails with `WSAEFAULT`.
#[test]
fn setsockopt_short_optlen() {
    let (a, _b) = two_hosts(463);
    let s = new_socket(&a, SOCK_STREAM);
    for opt in [
        SO_KEEPALIVE,
        SO_REUSEADDR,
        SO_DEBUG,
        SO_DONTLINGER,
        SO_BROADCAST,
        SO_LINGER,
    ] {
        for short in [0, 1, 2, 3] {
            assert_wsa_error(
                a.setsockopt(s, SOL_SOCKET, opt, Some(&[1, 1, 1, 1]), short),
                WsaError::WSAEFAULT,
            );
        }
        assert_wsa_error(
            a.setsockopt(s, SOL_SOCKET, opt, None, 4),
            WsaError::WSAEFAULT,
        );
        assert_wsa_error(
            a.setsockopt(s, SOL_SOCKET, opt, Some(&[1, 1]), 4),
            WsaError::WSAEFAULT,
        );
    }
    assert_wsa_error(
        a.setsockopt(s, IPPROTO_TCP, TCP_NODELAY, Some(&[1]), 1),
        WsaError::WSAEFAULT,
    );
    // Nothing changed.
    assert_eq!(get_int(&a, s, SOL_SOCKET, SO_KEEPALIVE), Ok(0));
    assert_eq!(
        get_linger(&a, s),
        LINGER {
            l_onoff: 0,
            l_linger: 0
        }
    );
}

/// Conformance: 464 — `getsockopt(SO_LINGER)` sets `*optlen` to `sizeof(struct linger)` and Boolean/int options set it to `sizeof(int)`.
#[test]
fn getsockopt_reports_the_size() {
    let (a, _b) = two_hosts(464);
    let s = new_socket(&a, SOCK_STREAM);
    let mut buf = [0u8; 64];
    let mut len = 64;
    a.getsockopt(s, SOL_SOCKET, SO_LINGER, Some(&mut buf), &mut len)
        .expect("SO_LINGER");
    assert_eq!(len as usize, std::mem::size_of::<LINGER>());
    for (level, opt) in [
        (SOL_SOCKET, SO_KEEPALIVE),
        (SOL_SOCKET, SO_TYPE),
        (SOL_SOCKET, SO_RCVBUF),
        (SOL_SOCKET, SO_DONTLINGER),
        (IPPROTO_TCP, TCP_NODELAY),
    ] {
        let mut len = 64;
        a.getsockopt(s, level, opt, Some(&mut buf), &mut len)
            .expect("getsockopt");
        assert_eq!(len as usize, std::mem::size_of::<i32>(), "option {opt:#x}");
    }
}

/// Conformance: 465 — on a new TCP socket `SO_DONTLINGER` reads TRUE and `SO_LINGER` reads `l_onoff` = 0.
#[test]
fn linger_defaults() {
    let (a, _b) = two_hosts(465);
    let s = new_socket(&a, SOCK_STREAM);
    assert_ne!(
        get_int(&a, s, SOL_SOCKET, SO_DONTLINGER).expect("SO_DONTLINGER"),
        0
    );
    assert_eq!(get_linger(&a, s).l_onoff, 0);
}

/// Conformance: 466, 467 — `SO_LINGER {1, 10}` makes `SO_DONTLINGER` read FALSE, `SO_DONTLINGER` TRUE makes `SO_LINGER.l_onoff` read 0, and `SO_DONTLINGER` FALSE afterwards restores the earlier `l_linger` = 10.
#[test]
fn linger_and_dontlinger_are_one_setting() {
    let (a, _b) = two_hosts(466);
    let s = new_socket(&a, SOCK_STREAM);
    set_linger(&a, s, 1, 10);
    assert_eq!(get_int(&a, s, SOL_SOCKET, SO_DONTLINGER), Ok(0));
    assert_eq!(
        get_linger(&a, s),
        LINGER {
            l_onoff: 1,
            l_linger: 10
        }
    );
    set_int(&a, s, SOL_SOCKET, SO_DONTLINGER, 1).expect("SO_DONTLINGER");
    assert_eq!(get_linger(&a, s).l_onoff, 0);
    assert_ne!(get_int(&a, s, SOL_SOCKET, SO_DONTLINGER).expect("get"), 0);
    set_int(&a, s, SOL_SOCKET, SO_DONTLINGER, 0).expect("SO_DONTLINGER off");
    assert_eq!(
        get_linger(&a, s),
        LINGER {
            l_onoff: 1,
            l_linger: 10
        }
    );
    // SO_LINGER with l_onoff = 0 is SO_DONTLINGER TRUE.
    set_linger(&a, s, 0, 3);
    assert_ne!(get_int(&a, s, SOL_SOCKET, SO_DONTLINGER).expect("get"), 0);
}

/// Conformance: 468 — a Boolean option set with the value 7 reads back as enabled (nonzero).
#[test]
fn boolean_nonzero_is_true() {
    let (a, _b) = two_hosts(468);
    let t = new_socket(&a, SOCK_STREAM);
    let u = new_socket(&a, SOCK_DGRAM);
    for (s, level, opt) in [
        (t, SOL_SOCKET, SO_KEEPALIVE),
        (t, SOL_SOCKET, SO_REUSEADDR),
        (t, SOL_SOCKET, SO_DEBUG),
        (t, SOL_SOCKET, SO_DONTROUTE),
        (t, SOL_SOCKET, SO_OOBINLINE),
        (t, IPPROTO_TCP, TCP_NODELAY),
        (u, SOL_SOCKET, SO_BROADCAST),
    ] {
        set_int(&a, s, level, opt, 7).expect("set 7");
        assert_ne!(
            get_int(&a, s, level, opt).expect("get"),
            0,
            "option {opt:#x}"
        );
        set_int(&a, s, level, opt, 0).expect("set 0");
        assert_eq!(get_int(&a, s, level, opt), Ok(0), "option {opt:#x}");
        set_int(&a, s, level, opt, -1).expect("set -1");
        assert_ne!(
            get_int(&a, s, level, opt).expect("get"),
            0,
            "option {opt:#x}"
        );
    }
}

/// Conformance: 469 — `getsockopt(SO_TYPE)` returns `SOCK_STREAM` for TCP and `SOCK_DGRAM` for UDP sockets, in any state.
#[test]
fn so_type() {
    let (a, b) = two_hosts(469);
    let (c, s) = tcp_pair(&a, &b, 46900);
    let l = listener(&a, at(A, 46901), 1);
    for (ws, sock) in [(&a, c), (&b, s), (&a, l), (&a, new_socket(&a, SOCK_STREAM))] {
        assert_eq!(get_int(ws, sock, SOL_SOCKET, SO_TYPE), Ok(SOCK_STREAM));
    }
    let u = new_socket(&a, SOCK_DGRAM);
    assert_eq!(get_int(&a, u, SOL_SOCKET, SO_TYPE), Ok(SOCK_DGRAM));
    bind(&a, u, at(A, 46902)).expect("bind");
    assert_eq!(get_int(&a, u, SOL_SOCKET, SO_TYPE), Ok(SOCK_DGRAM));
}

/// Conformance: 471, 474, 475 — defaults: `TCP_NODELAY` FALSE (Nagle enabled) on a new TCP socket, `SO_BROADCAST` FALSE on a new UDP socket, `SO_OOBINLINE` FALSE on a new TCP socket.
#[test]
fn boolean_defaults() {
    let (a, b) = two_hosts(471);
    let t = new_socket(&a, SOCK_STREAM);
    assert_eq!(get_int(&a, t, IPPROTO_TCP, TCP_NODELAY), Ok(0));
    assert_eq!(get_int(&a, t, SOL_SOCKET, SO_OOBINLINE), Ok(0));
    let u = new_socket(&a, SOCK_DGRAM);
    assert_eq!(get_int(&a, u, SOL_SOCKET, SO_BROADCAST), Ok(0));
    // And on accepted and connected sockets too.
    let (c, s) = tcp_pair(&a, &b, 47100);
    for (ws, sock) in [(&a, c), (&b, s)] {
        assert_eq!(get_int(ws, sock, IPPROTO_TCP, TCP_NODELAY), Ok(0));
        assert_eq!(get_int(ws, sock, SOL_SOCKET, SO_OOBINLINE), Ok(0));
        assert_eq!(get_int(ws, sock, SOL_SOCKET, SO_KEEPALIVE), Ok(0));
    }
}

/// Sends `count` small writes `gap` apart on a fresh connection over a 20 ms link and returns
/// how many frames host A put on the wire meanwhile.
fn small_write_frames(nodelay: bool, seed: u64) -> u64 {
    let switch = VirtualSwitch::new(seed);
    let slow = Impairments {
        delay: Duration::from_millis(20),
        ..Impairments::default()
    };
    let a = started(&stack_with(&switch, config(A), slow.clone()));
    let b = started(&stack_with(&switch, config(B), slow));
    let (c, s) = tcp_pair(&a, &b, 47200);
    set_int(&a, c, IPPROTO_TCP, TCP_NODELAY, i32::from(nodelay)).expect("TCP_NODELAY");
    let reader = thread::spawn(move || (recv_exact(&b, s, 40 * 10), b));
    thread::sleep(Duration::from_millis(100));
    let before = settled_tx_frames(&a, c);
    for i in 0..40u8 {
        send_all(&a, c, &[i; 10]);
        thread::sleep(Duration::from_millis(5));
    }
    let (got, _b) = reader.join().expect("reader");
    let expected: Vec<u8> = (0..40u8).flat_map(|i| [i; 10]).collect();
    assert_eq!(got, expected);
    settled_tx_frames(&a, c) - before
}

/// Conformance: 472 — with Nagle enabled, small sends issued while data is unacknowledged are coalesced into fewer segments; with `TCP_NODELAY` TRUE each small send is transmitted immediately.
#[test]
fn nagle_coalesces_small_writes() {
    let nagle = small_write_frames(false, 472);
    let nodelay = small_write_frames(true, 4720);
    // 40 writes 5 ms apart over a 40 ms round trip: Nagle holds each write while one is
    // unacknowledged (about one segment per round trip); TCP_NODELAY sends each at once (a
    // busy machine may still merge a pair that lands in one engine pass).
    assert!(nagle <= 20, "Nagle: {nagle} frames for 40 small writes");
    assert!(
        nodelay >= 32,
        "TCP_NODELAY: {nodelay} frames for 40 small writes"
    );
}

/// Conformance: 473 — `setsockopt(SO_RCVBUF, n)` succeeds and `getsockopt(SO_RCVBUF)` returns the size actually provided (possibly different from n), which is what the peer can fill.
#[test]
fn rcvbuf_reports_what_is_provided() {
    let (a, b) = two_hosts(473);
    let s = new_socket(&b, SOCK_STREAM);
    set_int(&b, s, SOL_SOCKET, SO_RCVBUF, 1).expect("a tiny request succeeds");
    let tiny = get_int(&b, s, SOL_SOCKET, SO_RCVBUF).expect("get");
    assert!(tiny >= 1, "granted {tiny}");
    set_int(&b, s, SOL_SOCKET, SO_RCVBUF, 16 * 1024).expect("16 KiB");
    assert_eq!(get_int(&b, s, SOL_SOCKET, SO_RCVBUF), Ok(16 * 1024));
    assert_wsa_error(
        set_int(&b, s, SOL_SOCKET, SO_RCVBUF, -1),
        WsaError::WSAEINVAL,
    );
    bind(&b, s, at(B, 47300)).expect("bind");
    b.listen(s, 1).expect("listen");
    let c = new_socket(&a, SOCK_STREAM);
    set_int(&a, c, SOL_SOCKET, SO_SNDBUF, 16 * 1024).expect("16 KiB");
    connect(&a, c, at(B, 47300)).expect("connect");
    let srv = b.accept(s, None, None).expect("accept");
    assert_eq!(
        get_int(&b, srv, SOL_SOCKET, SO_RCVBUF),
        Ok(16 * 1024),
        "inherited"
    );
    // Once the connection exists the buffers are fixed: a new request still succeeds and the
    // option reports what the socket really has.
    set_int(&b, srv, SOL_SOCKET, SO_RCVBUF, 1 << 20).expect("succeeds");
    assert_eq!(get_int(&b, srv, SOL_SOCKET, SO_RCVBUF), Ok(16 * 1024));
    // The sender can queue about its send buffer plus the receiver's buffer, no more.
    set_nonblocking(&a, c, true);
    let chunk = vec![9u8; 4096];
    let mut queued = 0usize;
    let end = Instant::now() + Duration::from_secs(5);
    while Instant::now() < end {
        match a.send(c, &chunk, 0) {
            Ok(n) => queued += n as usize,
            Err(WsaError::WSAEWOULDBLOCK) => thread::sleep(Duration::from_millis(20)),
            Err(e) => panic!("send: {e:?}"),
        }
        if queued > 1 << 20 {
            break;
        }
    }
    assert!(
        queued <= 40 * 1024,
        "queued {queued} bytes into 16 KiB + 16 KiB of buffers"
    );
    assert!(queued >= 16 * 1024, "queued only {queued} bytes");
}

/// Conformance: 476, 477 — with `SO_KEEPALIVE` enabled on a TCP connection whose peer vanishes, a blocked `recv` eventually fails with `WSAENETRESET`, later calls fail with `WSAENOTCONN`, and `setsockopt(SO_KEEPALIVE)` on the timed-out connection fails with `WSAENETRESET`.
#[test]
fn keepalive_detects_a_vanished_peer() {
    let switch = VirtualSwitch::new(476);
    let mut cfg = config(A);
    cfg.keepalive_time = Duration::from_millis(500);
    let a = started(&stack_on(&switch, cfg));
    let (cable, pull) = Cable::new(&switch);
    let b = started(&Stack::new(config(B), cable).expect("stack"));
    let (c, _s) = tcp_pair(&a, &b, 47600);
    set_int(&a, c, SOL_SOCKET, SO_KEEPALIVE, 1).expect("SO_KEEPALIVE");
    // The peer vanishes: its cable is pulled, nothing more comes from it, not even a FIN.
    pull.store(true, Ordering::SeqCst);
    let started = Instant::now();
    let mut buf = [0u8; 8];
    assert_wsa_error(a.recv(c, &mut buf, 0), WsaError::WSAENETRESET);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    assert_wsa_error(a.recv(c, &mut buf, 0), WsaError::WSAENOTCONN);
    assert_wsa_error(a.send(c, b"x", 0), WsaError::WSAENOTCONN);
    assert_wsa_error(
        set_int(&a, c, SOL_SOCKET, SO_KEEPALIVE, 1),
        WsaError::WSAENETRESET,
    );
}

/// Conformance: 477 — `setsockopt(SO_KEEPALIVE)` on a connection that was reset fails with `WSAENOTCONN`.
#[test]
fn keepalive_on_a_reset_connection() {
    let (a, b) = two_hosts(4770);
    let (c, s) = tcp_pair(&a, &b, 47700);
    set_linger(&b, s, 1, 0);
    b.closesocket(s).expect("abortive close");
    assert!(wait_readable(&a, c, 5000));
    assert_wsa_error(
        set_int(&a, c, SOL_SOCKET, SO_KEEPALIVE, 1),
        WsaError::WSAENOTCONN,
    );
}

/// Conformance: 480 — `getsockopt(PVD_CONFIG)` returns the provider's opaque configuration blob and `setsockopt(PVD_CONFIG)` accepts a blob of the same format.
#[test]
#[ignore = "PVD_CONFIG is not implemented: getsockopt/setsockopt answer WSAENOPROTOOPT"]
fn pvd_config_round_trips() {
    let (a, _b) = two_hosts(480);
    let s = new_socket(&a, SOCK_STREAM);
    let mut blob = [0u8; 256];
    let mut len = blob.len() as i32;
    a.getsockopt(s, SOL_SOCKET, PVD_CONFIG, Some(&mut blob), &mut len)
        .expect("get PVD_CONFIG");
    assert!((0..=256).contains(&len));
    a.setsockopt(s, SOL_SOCKET, PVD_CONFIG, Some(&blob[..len as usize]), len)
        .expect("set PVD_CONFIG");
}

/// Conformance: 481 — `getsockopt` works on a socket in any state: new, bound, listening, connected, reset, shut down.
#[test]
fn getsockopt_in_any_state() {
    let (a, b) = two_hosts(481);
    let fresh = new_socket(&a, SOCK_STREAM);
    let bound = new_socket(&a, SOCK_STREAM);
    bind(&a, bound, at(A, 48100)).expect("bind");
    let l = listener(&a, at(A, 48101), 1);
    let (c, s) = tcp_pair(&a, &b, 48102);
    let (c2, s2) = tcp_pair(&a, &b, 48103);
    a.shutdown(c2, SD_BOTH).expect("shutdown");
    set_linger(&b, s, 1, 0);
    b.closesocket(s).expect("reset");
    assert!(wait_readable(&a, c, 5000));
    for sock in [fresh, bound, l, c, c2] {
        for opt in [
            SO_TYPE,
            SO_ERROR,
            SO_KEEPALIVE,
            SO_RCVBUF,
            SO_SNDBUF,
            SO_REUSEADDR,
            SO_DONTLINGER,
        ] {
            assert!(
                get_int(&a, sock, SOL_SOCKET, opt).is_ok(),
                "option {opt:#x} on {sock}"
            );
        }
        let _ = get_linger(&a, sock);
    }
    // The peer of the shut-down socket saw an orderly end.
    let mut buf = [0u8; 4];
    assert_eq!(b.recv(s2, &mut buf, 0), Ok(0));
}

/// Conformance: 482 — `ioctlsocket(SIOCATMARK)` returns TRUE when no urgent data is pending.
#[test]
fn atmark_without_urgent_data() {
    let (a, b) = two_hosts(482);
    let (c, s) = tcp_pair(&a, &b, 48200);
    send_all(&a, c, b"ordinary data");
    assert!(wait_readable(&b, s, 5000));
    let mut mark = 0u32;
    b.ioctlsocket(s, SIOCATMARK, Some(&mut mark))
        .expect("SIOCATMARK");
    assert_ne!(mark, 0, "no urgent data: at the mark");
    let fresh = new_socket(&a, SOCK_STREAM);
    let mut mark = 0u32;
    a.ioctlsocket(fresh, SIOCATMARK, Some(&mut mark))
        .expect("SIOCATMARK");
    assert_ne!(mark, 0);
    assert_wsa_error(a.ioctlsocket(fresh, SIOCATMARK, None), WsaError::WSAEFAULT);
}
