//! CHECKLIST Part 2 group H: `shutdown` and `closesocket` with the linger options
//! (Part 1 §1.5).

use std::thread;
use std::time::{Duration, Instant};

use ws2_stack::winsock::*;
use ws2_stack::WsaError;
use ws2_tests::*;

/// Fills a connection whose peer reads nothing, without blocking: the peer's window fills, then
/// our send buffer, until sends have failed `WSAEWOULDBLOCK` for a while. Returns what was
/// queued; some of it is then still unsent (at least our send buffer's worth).
fn fill_unread(ws: &Winsock, s: SOCKET, seed: u64) -> Vec<u8> {
    let sndbuf = get_int(ws, s, SOL_SOCKET, SO_SNDBUF).expect("SO_SNDBUF") as usize;
    let data = pattern(16 << 20, seed);
    set_nonblocking(ws, s, true);
    let mut sent = 0;
    let mut blocked_since: Option<Instant> = None;
    let end = Instant::now() + Duration::from_secs(10);
    while Instant::now() < end {
        match ws.send(s, &data[sent..], 0) {
            Ok(n) => {
                sent += n as usize;
                blocked_since = None;
            }
            Err(WsaError::WSAEWOULDBLOCK) => {
                let since = *blocked_since.get_or_insert_with(Instant::now);
                if since.elapsed() > Duration::from_millis(100) {
                    break;
                }
                thread::sleep(Duration::from_millis(2));
            }
            Err(e) => panic!("send: {e:?}"),
        }
    }
    assert!(
        sent > sndbuf,
        "queued {sent} bytes, no more than the send buffer ({sndbuf})"
    );
    set_nonblocking(ws, s, false);
    data[..sent].to_vec()
}

/// Reads until the stream ends or fails; returns the data and how it ended.
fn drain(ws: &Winsock, s: SOCKET) -> (Vec<u8>, Result<(), WsaError>) {
    let mut out = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match ws.recv(s, &mut buf, 0) {
            Ok(0) => return (out, Ok(())),
            Ok(n) => out.extend_from_slice(&buf[..n as usize]),
            Err(e) => return (out, Err(e)),
        }
    }
}

/// Conformance: 196 — `closesocket` with default options returns immediately and the peer still receives all queued data followed by a FIN.
#[test]
fn default_close_is_graceful_in_the_background() {
    let (a, b) = two_hosts(196);
    let (c, s) = tcp_pair(&a, &b, 19600);
    assert_eq!(
        get_linger(&a, c),
        LINGER {
            l_onoff: 0,
            l_linger: 0
        }
    );
    let data = fill_unread(&a, c, 196);
    let started = Instant::now();
    a.closesocket(c).expect("close");
    assert!(
        started.elapsed() < Duration::from_millis(200),
        "returned at once: {:?}",
        started.elapsed()
    );
    let (got, end) = drain(&b, s);
    assert_eq!(end, Ok(()), "FIN after the data");
    assert_eq!(got.len(), data.len());
    assert!(got == data, "every queued byte arrived, in order");
}

/// Conformance: 197 — `closesocket` after `SO_LINGER {1, 0}` returns immediately and sends a RST, so the peer's `recv` fails with `WSAECONNRESET`.
#[test]
fn zero_linger_resets() {
    let (a, b) = two_hosts(197);
    let (c, s) = tcp_pair(&a, &b, 19700);
    let queued = fill_unread(&a, c, 197).len();
    set_linger(&a, c, 1, 0);
    let started = Instant::now();
    a.closesocket(c).expect("close");
    assert!(started.elapsed() < Duration::from_millis(200));
    let (got, end) = drain(&b, s);
    assert_eq!(end, Err(WsaError::WSAECONNRESET));
    assert!(got.len() < queued, "unsent data was lost, not delivered");
}

/// Conformance: 198 — `closesocket` on a blocking socket with `SO_LINGER {1, 5}` and unsent data blocks until the remaining data has been sent.
#[test]
fn linger_waits_for_delivery() {
    let (a, b) = two_hosts(198);
    let (c, s) = tcp_pair(&a, &b, 19800);
    let data = fill_unread(&a, c, 198);
    set_linger(&a, c, 1, 5);
    let reader = thread::spawn(move || {
        thread::sleep(Duration::from_millis(500));
        drain(&b, s)
    });
    let started = Instant::now();
    a.closesocket(c).expect("close");
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(400),
        "returned before the data could go: {took:?}"
    );
    assert!(
        took < Duration::from_secs(4),
        "waited for the time-out instead: {took:?}"
    );
    let (got, end) = reader.join().expect("reader");
    assert_eq!(end, Ok(()), "a graceful close");
    assert!(got == data);
}

/// Conformance: 199 — `closesocket` on a blocking socket with `SO_LINGER {1, n}` whose data cannot be delivered returns after about n seconds and the connection is reset.
#[test]
fn linger_timeout_resets() {
    let (a, b) = two_hosts(199);
    let (c, s) = tcp_pair(&a, &b, 19900);
    fill_unread(&a, c, 199);
    set_linger(&a, c, 1, 1);
    let started = Instant::now();
    a.closesocket(c).expect("close");
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(3),
        "{took:?}"
    );
    let (_, end) = drain(&b, s);
    assert_eq!(end, Err(WsaError::WSAECONNRESET));
}

/// Conformance: 200, 201 — `closesocket` on a nonblocking socket with `SO_LINGER {1, n>0}` and unsent data fails with `WSAEWOULDBLOCK`, leaves the socket valid and sends no FIN; after setting `SO_LINGER {1, 0}` the next `closesocket` succeeds.
#[test]
fn nonblocking_linger_would_block() {
    let (a, b) = two_hosts(200);
    let (c, s) = tcp_pair(&a, &b, 20000);
    let data = fill_unread(&a, c, 200);
    set_linger(&a, c, 1, 5);
    set_nonblocking(&a, c, true);
    assert_would_block(a.closesocket(c));
    assert_eq!(
        get_int(&a, c, SOL_SOCKET, SO_TYPE),
        Ok(SOCK_STREAM),
        "still a socket"
    );
    assert_eq!(
        get_linger(&a, c),
        LINGER {
            l_onoff: 1,
            l_linger: 5
        }
    );
    // No disconnect was started: the peer gets the data, then nothing (no FIN).
    set_nonblocking(&b, s, true);
    let mut got = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    let end = Instant::now() + Duration::from_secs(10);
    while got.len() < data.len() && Instant::now() < end {
        match b.recv(s, &mut buf, 0) {
            Ok(n) => {
                assert_ne!(n, 0, "a FIN arrived");
                got.extend_from_slice(&buf[..n as usize]);
            }
            Err(WsaError::WSAEWOULDBLOCK) => thread::sleep(Duration::from_millis(2)),
            Err(e) => panic!("recv: {e:?}"),
        }
    }
    assert!(got == data);
    thread::sleep(Duration::from_millis(200));
    assert_would_block(b.recv(s, &mut buf, 0));
    // The connection still works both ways.
    send_all(&b, s, b"ping");
    assert_eq!(
        retry(Duration::from_secs(5), || a.recv(c, &mut buf, 0)),
        Ok(4)
    );
    // Queue more unread data and make the close abortive instead.
    fill_unread(&a, c, 201);
    set_nonblocking(&a, c, true);
    assert_would_block(a.closesocket(c));
    set_linger(&a, c, 1, 0);
    a.closesocket(c).expect("an abortive close succeeds");
    assert_wsa_error(a.closesocket(c), WsaError::WSAENOTSOCK);
    let r = retry(Duration::from_secs(5), || loop {
        match b.recv(s, &mut buf, 0) {
            Ok(n) if n > 0 => continue,
            r => return r,
        }
    });
    assert_wsa_error(r, WsaError::WSAECONNRESET);
}

/// Conformance: 202 — any use of a descriptor after `closesocket` fails with `WSAENOTSOCK`.
#[test]
fn closed_descriptor_is_not_a_socket() {
    let (a, b) = two_hosts(202);
    let (c, _s) = tcp_pair(&a, &b, 20200);
    let u = udp_bound(&a, at(A, 20201));
    let l = listener(&a, at(A, 20202), 2);
    let fresh = new_socket(&a, SOCK_STREAM);
    let mut buf = [0u8; 8];
    for s in [c, u, l, fresh] {
        a.closesocket(s).expect("close");
        let name = sa(at(B, 1));
        let mut out = SOCKADDR_IN::default();
        let mut len = SOCKADDR_IN_LEN;
        let mut optlen = 4;
        let mut arg = 0;
        let not = WsaError::WSAENOTSOCK;
        assert_wsa_error(a.bind(s, Some(&name), SOCKADDR_IN_LEN), not);
        assert_wsa_error(a.listen(s, 1), not);
        assert_wsa_error(a.accept(s, None, None), not);
        assert_wsa_error(a.connect(s, Some(&name), SOCKADDR_IN_LEN), not);
        assert_wsa_error(a.send(s, b"x", 0), not);
        assert_wsa_error(a.sendto(s, b"x", 0, Some(&name), SOCKADDR_IN_LEN), not);
        assert_wsa_error(a.recv(s, &mut buf, 0), not);
        assert_wsa_error(a.recvfrom(s, &mut buf, 0, None, None), not);
        assert_wsa_error(a.shutdown(s, SD_BOTH), not);
        assert_wsa_error(a.getsockname(s, Some(&mut out), Some(&mut len)), not);
        assert_wsa_error(a.getpeername(s, Some(&mut out), Some(&mut len)), not);
        assert_wsa_error(
            a.getsockopt(s, SOL_SOCKET, SO_TYPE, Some(&mut buf), &mut optlen),
            not,
        );
        assert_wsa_error(
            a.setsockopt(s, SOL_SOCKET, SO_DEBUG, Some(&[1, 0, 0, 0]), 4),
            not,
        );
        assert_wsa_error(a.ioctlsocket(s, FIONBIO, Some(&mut arg)), not);
        let mut set = fd_set(&[s]);
        assert_wsa_error(
            a.select(0, Some(&mut set), None, None, Some(&timeval_ms(0))),
            not,
        );
        assert_wsa_error(a.closesocket(s), not);
    }
    // Handles are not reused: a new socket never revives a closed one.
    for _ in 0..50 {
        let n = new_socket(&a, SOCK_DGRAM);
        assert!(![c, u, l, fresh].contains(&n));
    }
}

/// Conformance: 206 — a blocking `recv` in another thread is cancelled when its socket is closed, and returns `WSAEINTR` (D-29).
#[test]
fn close_cancels_blocking_calls() {
    let (a, b) = two_hosts(206);
    let (c, _s) = tcp_pair(&a, &b, 20600);
    let l = listener(&a, at(A, 20601), 1);
    let (ra, aa) = (a.clone(), a.clone());
    let receiver = thread::spawn(move || {
        let mut buf = [0u8; 16];
        let r = ra.recv(c, &mut buf, 0);
        (r, WSAGetLastError())
    });
    let acceptor = thread::spawn(move || {
        let r = aa.accept(l, None, None);
        (r, WSAGetLastError())
    });
    thread::sleep(Duration::from_millis(200));
    a.closesocket(c).expect("close");
    a.closesocket(l).expect("close");
    let (r, last) = receiver.join().expect("receiver");
    assert_eq!(r, Err(WsaError::WSAEINTR));
    assert_eq!(last, WsaError::WSAEINTR.0);
    let (r, last) = acceptor.join().expect("acceptor");
    assert_eq!(r, Err(WsaError::WSAEINTR));
    assert_eq!(last, WsaError::WSAEINTR.0);
}

/// Conformance: 208 — after `shutdown(SD_SEND)` the local socket can still `recv` data sent by the peer.
#[test]
fn half_closed_still_receives() {
    let (a, b) = two_hosts(208);
    let (c, s) = tcp_pair(&a, &b, 20800);
    a.shutdown(c, SD_SEND).expect("shutdown");
    let mut buf = [0u8; 16];
    assert_eq!(b.recv(s, &mut buf, 0), Ok(0), "the peer sees our FIN");
    let reply = pattern(100_000, 208);
    send_all(&b, s, &reply);
    assert!(recv_exact(&a, c, reply.len()) == reply);
    b.closesocket(s).expect("close");
    assert_eq!(a.recv(c, &mut buf, 0), Ok(0));
}

/// Conformance: 209 — `shutdown(SD_RECEIVE)` on a TCP socket with unread queued data resets the connection.
#[test]
fn shutdown_receive_with_unread_data_resets() {
    let (a, b) = two_hosts(209);
    let (c, s) = tcp_pair(&a, &b, 20900);
    send_all(&a, c, b"unread");
    assert!(wait_until(Duration::from_secs(5), || fionread(&b, s) == 6));
    b.shutdown(s, SD_RECEIVE).expect("shutdown");
    let mut buf = [0u8; 16];
    assert_wsa_error(a.recv(c, &mut buf, 0), WsaError::WSAECONNRESET);
}

/// Conformance: 210 — data arriving on a TCP socket after `shutdown(SD_RECEIVE)` resets the connection.
#[test]
fn data_after_shutdown_receive_resets() {
    let (a, b) = two_hosts(210);
    let (c, s) = tcp_pair(&a, &b, 21000);
    b.shutdown(s, SD_RECEIVE).expect("shutdown");
    // Nothing was queued: the connection lives on, and B can still send.
    send_all(&b, s, b"still talking");
    assert_eq!(recv_exact(&a, c, 13), b"still talking");
    send_all(&a, c, b"late");
    let mut buf = [0u8; 16];
    assert_wsa_error(a.recv(c, &mut buf, 0), WsaError::WSAECONNRESET);
}

/// Conformance: 211 — `shutdown(SD_RECEIVE)` on UDP keeps queuing incoming datagrams and sends no ICMP error.
#[test]
fn udp_shutdown_receive_keeps_queuing() {
    let (a, b) = two_hosts(211);
    let rx = udp_bound(&b, at(B, 21100));
    b.shutdown(rx, SD_RECEIVE).expect("shutdown");
    let tx = udp_bound(&a, at(A, 21101));
    sendto(&a, tx, b"0123456789", at(B, 21100)).expect("sendto");
    assert!(
        wait_until(Duration::from_secs(5), || fionread(&b, rx) == 10),
        "queued"
    );
    let mut buf = [0u8; 16];
    assert_wsa_error(b.recv(rx, &mut buf, 0), WsaError::WSAESHUTDOWN);
    // No port unreachable came back: the sender sees no error.
    thread::sleep(Duration::from_millis(100));
    set_nonblocking(&a, tx, true);
    assert_would_block(a.recv(tx, &mut buf, 0));
    assert_eq!(sendto(&a, tx, b"more", at(B, 21100)), Ok(4));
}

/// Conformance: 212 — `shutdown` with an invalid `how` (e.g. 3) fails with `WSAEINVAL`.
#[test]
fn shutdown_bad_how() {
    let (a, b) = two_hosts(212);
    let (c, s) = tcp_pair(&a, &b, 21200);
    for how in [3, -1, 100] {
        assert_wsa_error(a.shutdown(c, how), WsaError::WSAEINVAL);
    }
    // Nothing was shut down.
    send_all(&a, c, b"ok");
    assert_eq!(recv_exact(&b, s, 2), b"ok");
}

/// Conformance: 213 — `shutdown` on an unconnected TCP socket fails with `WSAENOTCONN`.
#[test]
fn shutdown_unconnected_tcp() {
    let (a, _b) = two_hosts(213);
    let s = new_socket(&a, SOCK_STREAM);
    for how in [SD_RECEIVE, SD_SEND, SD_BOTH] {
        assert_wsa_error(a.shutdown(s, how), WsaError::WSAENOTCONN);
    }
    let l = listener(&a, at(A, 21300), 1);
    assert_wsa_error(a.shutdown(l, SD_BOTH), WsaError::WSAENOTCONN);
}

/// Conformance: 214 — `shutdown` returns immediately even with `SO_LINGER {1, n}` set.
#[test]
fn shutdown_never_lingers() {
    let (a, b) = two_hosts(214);
    let (c, s) = tcp_pair(&a, &b, 21400);
    let data = fill_unread(&a, c, 214);
    set_linger(&a, c, 1, 5);
    let started = Instant::now();
    a.shutdown(c, SD_BOTH).expect("shutdown");
    assert!(
        started.elapsed() < Duration::from_millis(200),
        "{:?}",
        started.elapsed()
    );
    let (got, end) = drain(&b, s);
    assert_eq!(end, Ok(()));
    assert!(got == data, "the queued data still went out before the FIN");
}

/// Conformance: 215, 481 — after `shutdown(SD_BOTH)` the descriptor remains valid until `closesocket`: `getsockopt` and the name calls still work.
#[test]
fn shut_down_socket_is_still_a_socket() {
    let (a, b) = two_hosts(215);
    let (c, _s) = tcp_pair(&a, &b, 21500);
    a.shutdown(c, SD_BOTH).expect("shutdown");
    assert_eq!(get_int(&a, c, SOL_SOCKET, SO_TYPE), Ok(SOCK_STREAM));
    assert_eq!(get_int(&a, c, SOL_SOCKET, SO_ERROR), Ok(0));
    assert_eq!(get_linger(&a, c).l_onoff, 0);
    assert_eq!(peer_name(&a, c), Ok(at(B, 21500)));
    assert!(local_name(&a, c).is_ok());
    set_int(&a, c, IPPROTO_TCP, TCP_NODELAY, 1).expect("setsockopt");
    let u = udp_bound(&a, at(A, 21501));
    a.shutdown(u, SD_BOTH).expect("shutdown");
    assert_eq!(get_int(&a, u, SOL_SOCKET, SO_TYPE), Ok(SOCK_DGRAM));
    a.closesocket(c).expect("close");
    a.closesocket(u).expect("close");
}
