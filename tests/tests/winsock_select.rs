//! CHECKLIST Part 2 group I: blocking mode, `ioctlsocket(FIONBIO/FIONREAD)` and `select`
//! (Part 1 §1.6.1, §1.6.2, §1.14.1).

use std::thread;
use std::time::{Duration, Instant};

use ws2_stack::winsock::*;
use ws2_stack::WsaError;
use ws2_tests::*;

/// Conformance: 224 — a newly created socket is in blocking mode.
#[test]
fn new_sockets_block() {
    let (a, b) = two_hosts(224);
    let rx = udp_bound(&b, at(B, 22400));
    let (c, s) = tcp_pair(&a, &b, 22401);
    let (bb, b2) = (b.clone(), b.clone());
    let udp = thread::spawn(move || {
        let mut buf = [0u8; 8];
        let started = Instant::now();
        (bb.recv(rx, &mut buf, 0), started.elapsed())
    });
    let tcp = thread::spawn(move || {
        let mut buf = [0u8; 8];
        let started = Instant::now();
        (b2.recv(s, &mut buf, 0), started.elapsed())
    });
    thread::sleep(Duration::from_millis(300));
    assert!(
        !udp.is_finished() && !tcp.is_finished(),
        "a new socket's recv waits for data"
    );
    let tx = udp_bound(&a, at(A, 22402));
    sendto(&a, tx, b"udp", at(B, 22400)).expect("sendto");
    send_all(&a, c, b"tcp");
    let (r, waited) = udp.join().expect("udp");
    assert_eq!(r, Ok(3));
    assert!(waited >= Duration::from_millis(250));
    let (r, waited) = tcp.join().expect("tcp");
    assert_eq!(r, Ok(3));
    assert!(waited >= Duration::from_millis(250));
}

/// Conformance: 225 — `ioctlsocket(FIONBIO, 1)` makes a `recv` with no data fail with `WSAEWOULDBLOCK` instead of blocking, and `FIONBIO, 0` makes it block again.
#[test]
fn fionbio_switches_modes() {
    let (a, b) = two_hosts(225);
    let (c, s) = tcp_pair(&a, &b, 22500);
    let mut buf = [0u8; 8];
    let mut on = 1u32;
    b.ioctlsocket(s, FIONBIO, Some(&mut on)).expect("FIONBIO 1");
    assert_would_block(b.recv(s, &mut buf, 0));
    let mut big = 17u32;
    b.ioctlsocket(s, FIONBIO, Some(&mut big))
        .expect("any nonzero value");
    assert_would_block(b.recv(s, &mut buf, 0));
    let mut off = 0u32;
    b.ioctlsocket(s, FIONBIO, Some(&mut off))
        .expect("FIONBIO 0");
    let reader = thread::spawn(move || {
        let mut buf = [0u8; 8];
        (b.recv(s, &mut buf, 0), b)
    });
    thread::sleep(Duration::from_millis(200));
    assert!(!reader.is_finished(), "blocking again");
    send_all(&a, c, b"wake");
    assert_eq!(reader.join().expect("reader").0, Ok(4));
}

/// Conformance: 232 — `ioctlsocket(FIONREAD)` on a UDP socket with datagrams of 10 and 20 bytes queued reports 10.
#[test]
fn fionread_on_udp_is_the_first_datagram() {
    let (a, b) = two_hosts(232);
    let rx = udp_bound(&b, at(B, 23200));
    assert_eq!(fionread(&b, rx), 0);
    let tx = udp_bound(&a, at(A, 23201));
    sendto(&a, tx, &[1; 10], at(B, 23200)).expect("sendto");
    sendto(&a, tx, &[2; 20], at(B, 23200)).expect("sendto");
    assert!(wait_until(Duration::from_secs(5), || fionread(&b, rx) != 0));
    thread::sleep(Duration::from_millis(50));
    assert_eq!(fionread(&b, rx), 10);
    let mut buf = [0u8; 64];
    assert_eq!(b.recv(rx, &mut buf, 0), Ok(10));
    assert_eq!(fionread(&b, rx), 20);
}

/// Conformance: 233 — `ioctlsocket` with an unknown command fails with `WSAEINVAL`.
#[test]
fn ioctlsocket_unknown_command() {
    let (a, _b) = two_hosts(233);
    let s = new_socket(&a, SOCK_STREAM);
    let mut arg = 0u32;
    for cmd in [0, 1, 0x8004_667D_u32 as i32, 0x4004_7308, -1] {
        assert_wsa_error(a.ioctlsocket(s, cmd, Some(&mut arg)), WsaError::WSAEINVAL);
    }
}

/// Conformance: 234 — `select` with all three sets NULL fails with `WSAEINVAL`.
#[test]
fn select_without_sets() {
    let (a, _b) = two_hosts(234);
    let t = timeval_ms(0);
    assert_wsa_error(a.select(0, None, None, None, Some(&t)), WsaError::WSAEINVAL);
    assert_wsa_error(a.select(0, None, None, None, None), WsaError::WSAEINVAL);
    // Sets with nothing in them are no better.
    let (mut r, mut w) = (FD_SET::default(), FD_SET::default());
    assert_wsa_error(
        a.select(0, Some(&mut r), Some(&mut w), None, Some(&t)),
        WsaError::WSAEINVAL,
    );
}

/// Conformance: 235 — `select` with a set containing a non-socket value fails with `WSAENOTSOCK`.
#[test]
fn select_with_a_non_socket() {
    let (a, _b) = two_hosts(235);
    let good = new_socket(&a, SOCK_DGRAM);
    let closed = new_socket(&a, SOCK_DGRAM);
    a.closesocket(closed).expect("close");
    let t = timeval_ms(0);
    for bad in [closed, INVALID_SOCKET, 424_242] {
        let mut r = fd_set(&[good, bad]);
        assert_wsa_error(
            a.select(0, Some(&mut r), None, None, Some(&t)),
            WsaError::WSAENOTSOCK,
        );
        let mut e = fd_set(&[bad]);
        let mut w = fd_set(&[good]);
        assert_wsa_error(
            a.select(0, None, Some(&mut w), Some(&mut e), Some(&t)),
            WsaError::WSAENOTSOCK,
        );
    }
}

/// Conformance: 236 — `select` with a negative `tv_usec` (an invalid timeout) fails with `WSAEINVAL`.
#[test]
fn select_invalid_timeout() {
    let (a, _b) = two_hosts(236);
    let s = new_socket(&a, SOCK_DGRAM);
    for t in [
        TIMEVAL {
            tv_sec: 0,
            tv_usec: -1,
        },
        TIMEVAL {
            tv_sec: -1,
            tv_usec: 0,
        },
        TIMEVAL {
            tv_sec: 0,
            tv_usec: 1_000_000,
        },
    ] {
        let mut w = fd_set(&[s]);
        assert_wsa_error(
            a.select(0, None, Some(&mut w), None, Some(&t)),
            WsaError::WSAEINVAL,
        );
    }
}

/// Conformance: 237 — `select` with timeout `{0,0}` returns immediately.
#[test]
fn select_poll() {
    let (a, _b) = two_hosts(237);
    let s = udp_bound(&a, at(A, 23700));
    let t = TIMEVAL {
        tv_sec: 0,
        tv_usec: 0,
    };
    let started = Instant::now();
    for _ in 0..100 {
        let mut r = fd_set(&[s]);
        assert_eq!(a.select(0, Some(&mut r), None, None, Some(&t)), Ok(0));
        assert_eq!(r.fd_count, 0);
    }
    assert!(
        started.elapsed() < Duration::from_millis(500),
        "{:?} for 100 polls",
        started.elapsed()
    );
}

/// Conformance: 238 — `select` with a NULL timeout blocks until a socket becomes ready.
#[test]
fn select_forever() {
    let (a, b) = two_hosts(238);
    let rx = udp_bound(&b, at(B, 23800));
    let sender = thread::spawn(move || {
        thread::sleep(Duration::from_millis(300));
        let tx = udp_bound(&a, at(A, 23801));
        sendto(&a, tx, b"now", at(B, 23800)).expect("sendto");
        a
    });
    let started = Instant::now();
    let mut r = fd_set(&[rx]);
    assert_eq!(b.select(0, Some(&mut r), None, None, None), Ok(1));
    assert!(
        started.elapsed() >= Duration::from_millis(250),
        "{:?}",
        started.elapsed()
    );
    assert!(FD_ISSET(rx, &r));
    let _a = sender.join();
}

/// Conformance: 239 — `select` returns 0 after the timeout if nothing is ready and leaves the caller's `timeval` unchanged.
#[test]
fn select_times_out() {
    let (a, _b) = two_hosts(239);
    let s = udp_bound(&a, at(A, 23900));
    let t = TIMEVAL {
        tv_sec: 0,
        tv_usec: 300_000,
    };
    let copy = t;
    let mut r = fd_set(&[s]);
    let started = Instant::now();
    assert_eq!(a.select(0, Some(&mut r), None, None, Some(&t)), Ok(0));
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(290) && took < Duration::from_secs(2),
        "{took:?}"
    );
    assert_eq!(t, copy);
    assert_eq!(r.fd_count, 0, "the unready socket was removed");
}

/// Conformance: 240 — `select` returns the total count of ready entries across the three sets and removes unready sockets from each set.
#[test]
fn select_counts_and_filters() {
    let (a, b) = two_hosts(240);
    let (c, s) = tcp_pair(&a, &b, 24000);
    let idle = udp_bound(&b, at(B, 24001));
    let busy = udp_bound(&b, at(B, 24002));
    send_all(&a, c, b"data");
    let tx = udp_bound(&a, at(A, 24003));
    sendto(&a, tx, b"dgram", at(B, 24002)).expect("sendto");
    assert!(wait_readable(&b, s, 5000) && wait_readable(&b, busy, 5000));
    let mut r = fd_set(&[s, idle, busy]);
    let mut w = fd_set(&[s]);
    let mut e = fd_set(&[s, idle]);
    let t = timeval_ms(0);
    // s: readable and writable; busy: readable; idle: nothing; nothing exceptional.
    assert_eq!(
        b.select(0, Some(&mut r), Some(&mut w), Some(&mut e), Some(&t)),
        Ok(3)
    );
    assert_eq!(r.sockets(), [s, busy]);
    assert_eq!(w.sockets(), [s]);
    assert_eq!(e.fd_count, 0);
}

/// Conformance: 241 — `select` ignores its `nfds` argument (any value works).
#[test]
fn select_ignores_nfds() {
    let (a, b) = two_hosts(241);
    let (c, s) = tcp_pair(&a, &b, 24100);
    send_all(&a, c, b"x");
    assert!(wait_readable(&b, s, 5000));
    for nfds in [0, 1, -1, 64, i32::MAX] {
        let mut r = fd_set(&[s]);
        assert_eq!(
            b.select(nfds, Some(&mut r), None, None, Some(&timeval_ms(0))),
            Ok(1),
            "nfds {nfds}"
        );
    }
}

/// Conformance: 242 — a listening socket with a pending connection is reported readable.
#[test]
fn pending_connection_is_readable() {
    let (a, b) = two_hosts(242);
    let l = listener(&b, at(B, 24200), 2);
    assert_eq!(poll_one(&b, l, 0), (false, false, false));
    let c = new_socket(&a, SOCK_STREAM);
    connect(&a, c, at(B, 24200)).expect("connect");
    assert!(wait_readable(&b, l, 5000));
    set_nonblocking(&b, l, true);
    b.accept(l, None, None).expect("accept does not block");
    assert!(!poll_one(&b, l, 0).0, "no longer readable");
}

/// Conformance: 243 — a TCP socket with queued data is reported readable.
#[test]
fn queued_data_is_readable() {
    let (a, b) = two_hosts(243);
    let (c, s) = tcp_pair(&a, &b, 24300);
    assert!(!poll_one(&b, s, 0).0);
    send_all(&a, c, b"x");
    assert!(wait_readable(&b, s, 5000));
    let mut buf = [0u8; 4];
    assert_eq!(b.recv(s, &mut buf, 0), Ok(1));
    assert!(!poll_one(&b, s, 0).0, "read: not readable any more");
}

/// Conformance: 244 — a TCP socket whose peer closed gracefully is reported readable and the next `recv` returns 0.
#[test]
fn graceful_close_is_readable() {
    let (a, b) = two_hosts(244);
    let (c, s) = tcp_pair(&a, &b, 24400);
    a.closesocket(c).expect("close");
    assert!(wait_readable(&b, s, 5000));
    let mut buf = [0u8; 4];
    assert_eq!(b.recv(s, &mut buf, 0), Ok(0));
}

/// Conformance: 245 — a TCP socket whose peer reset is reported readable and the next `recv` fails with `WSAECONNRESET`.
#[test]
fn reset_is_readable() {
    let (a, b) = two_hosts(245);
    let (c, s) = tcp_pair(&a, &b, 24500);
    set_linger(&a, c, 1, 0);
    a.closesocket(c).expect("close");
    assert!(wait_readable(&b, s, 5000));
    let mut buf = [0u8; 4];
    assert_wsa_error(b.recv(s, &mut buf, 0), WsaError::WSAECONNRESET);
}

/// Conformance: 246 — a connected TCP socket with free send buffer space is reported writable.
#[test]
fn free_send_buffer_is_writable() {
    let (a, b) = two_hosts(246);
    let (c, s) = tcp_pair(&a, &b, 24600);
    assert_eq!(poll_one(&a, c, 0), (false, true, false));
    // Fill both windows: no longer writable until the peer reads.
    set_nonblocking(&a, c, true);
    let chunk = vec![1u8; 64 * 1024];
    let mut queued = 0usize;
    let end = Instant::now() + Duration::from_secs(10);
    while Instant::now() < end {
        match a.send(c, &chunk, 0) {
            Ok(n) => queued += n as usize,
            Err(WsaError::WSAEWOULDBLOCK) if !poll_one(&a, c, 20).1 => break,
            Err(WsaError::WSAEWOULDBLOCK) => {}
            Err(e) => panic!("send: {e:?}"),
        }
    }
    assert!(!poll_one(&a, c, 0).1, "full: not writable");
    assert_eq!(recv_exact(&b, s, queued).len(), queued);
    assert!(poll_one(&a, c, 5000).1, "writable again once the peer read");
}

/// Conformance: 250 — `FD_SET` does not add a socket twice and `FD_ISSET` reports membership correctly after `FD_CLR`; `select` accepts sets built that way.
#[test]
fn fd_set_macros() {
    let (a, _b) = two_hosts(250);
    let s1 = udp_bound(&a, at(A, 25000));
    let s2 = udp_bound(&a, at(A, 25001));
    let mut set = FD_SET::default();
    FD_SET(s1, &mut set);
    FD_SET(s1, &mut set);
    FD_SET(s2, &mut set);
    assert_eq!(set.fd_count, 2);
    assert!(FD_ISSET(s1, &set) && FD_ISSET(s2, &set));
    FD_CLR(s1, &mut set);
    assert!(!FD_ISSET(s1, &set) && FD_ISSET(s2, &set));
    assert_eq!(set.fd_count, 1);
    // Writable UDP sockets: select reports s2 once.
    assert_eq!(
        a.select(0, None, Some(&mut set), None, Some(&timeval_ms(0))),
        Ok(1)
    );
    assert_eq!(set.sockets(), [s2]);
    FD_ZERO(&mut set);
    assert!(!FD_ISSET(s2, &set));
    for s in 0..100 {
        FD_SET(s, &mut set);
    }
    assert_eq!(
        set.fd_count as usize, FD_SETSIZE,
        "adds past FD_SETSIZE are ignored"
    );
}
