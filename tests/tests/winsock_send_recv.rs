//! CHECKLIST Part 2 group F: `send`, `recv`, `sendto`, `recvfrom` (Part 1 §1.4).

use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use ws2_stack::winsock::*;
use ws2_stack::WsaError;
use ws2_tap::{Link, SwitchPort, VirtualSwitch};
use ws2_tests::*;

/// Reads frames from `port` for up to `limit` and returns the first one `want` accepts.
fn sniff(port: &mut SwitchPort, limit: Duration, want: impl Fn(&[u8]) -> bool) -> Option<Vec<u8>> {
    let end = Instant::now() + limit;
    let mut buf = vec![0u8; 65536];
    while Instant::now() < end {
        match port.recv(&mut buf, Instant::now()) {
            Ok(Some(n)) if want(&buf[..n]) => return Some(buf[..n].to_vec()),
            Ok(Some(_)) => {}
            _ => thread::sleep(Duration::from_millis(1)),
        }
    }
    None
}

/// Whether `frame` is IPv4/UDP to `dst` (MAC), `ip`, `port`.
fn is_udp_to(frame: &[u8], dst: [u8; 6], ip: Ipv4Addr, port: u16) -> bool {
    frame.len() >= 14 + 20 + 8
        && frame[..6] == dst
        && frame[12..14] == [0x08, 0x00]
        && frame[14 + 9] == 17
        && frame[14 + 16..14 + 20] == ip.octets()
        && frame[14 + 20 + 2..14 + 20 + 4] == port.to_be_bytes()
}

/// Conformance: 134 — `recv` on a nonblocking TCP socket with no data fails with `WSAEWOULDBLOCK`.
#[test]
fn recv_nonblocking_empty() {
    let (a, b) = two_hosts(134);
    let (c, _s) = tcp_pair(&a, &b, 13400);
    set_nonblocking(&a, c, true);
    let mut buf = [0u8; 16];
    let started = Instant::now();
    assert_would_block(a.recv(c, &mut buf, 0));
    assert!(started.elapsed() < Duration::from_millis(500));
}

/// Conformance: 135 — `recv` on a blocking TCP socket with no data blocks until data arrives.
#[test]
fn recv_blocks_until_data() {
    let (a, b) = two_hosts(135);
    let (c, s) = tcp_pair(&a, &b, 13500);
    let sender = thread::spawn(move || {
        thread::sleep(Duration::from_millis(200));
        send_all(&b, s, b"late data");
        b
    });
    let started = Instant::now();
    let mut buf = [0u8; 64];
    let n = a.recv(c, &mut buf, 0).expect("recv");
    assert!(
        started.elapsed() >= Duration::from_millis(150),
        "returned before the data came"
    );
    assert_eq!(&buf[..n as usize], &b"late data"[..n as usize]);
    let _b = sender.join();
}

/// Conformance: 136, 231 — `recv` on a TCP socket returns min(available, len) bytes, and `FIONREAD` reports what one `recv` can return.
#[test]
fn recv_returns_what_is_there() {
    let (a, b) = two_hosts(136);
    let (c, s) = tcp_pair(&a, &b, 13600);
    let data = pattern(100, 136);
    send_all(&a, c, &data);
    assert!(
        wait_until(Duration::from_secs(5), || fionread(&b, s) == 100),
        "100 bytes queued"
    );
    let mut buf = [0u8; 1000];
    assert_eq!(b.recv(s, &mut buf[..30], 0), Ok(30));
    assert_eq!(fionread(&b, s), 70);
    assert_eq!(b.recv(s, &mut buf, 0), Ok(70), "no more than is there");
    assert_eq!(&buf[..70], &data[30..]);
    assert_eq!(fionread(&b, s), 0);
}

/// Conformance: 137, 207 — after the peer's `shutdown(SD_SEND)` or graceful close, `recv` returns all earlier data and then 0.
#[test]
fn recv_zero_after_graceful_close() {
    let (a, b) = two_hosts(137);
    let (c, s) = tcp_pair(&a, &b, 13700);
    let data = pattern(300_000, 137);
    let writer = {
        let data = data.clone();
        thread::spawn(move || {
            send_all(&a, c, &data);
            a.shutdown(c, SD_SEND).expect("shutdown");
            a
        })
    };
    assert_eq!(recv_exact(&b, s, data.len()), data);
    let mut buf = [0u8; 16];
    assert_eq!(b.recv(s, &mut buf, 0), Ok(0));
    assert_eq!(b.recv(s, &mut buf, 0), Ok(0), "and stays 0");
    let a = writer.join().expect("writer");
    // A full close on another connection reads the same way.
    let (c2, s2) = tcp_pair(&a, &b, 13701);
    send_all(&a, c2, b"last words");
    a.closesocket(c2).expect("close");
    assert_eq!(recv_exact(&b, s2, 10), b"last words");
    assert_eq!(b.recv(s2, &mut buf, 0), Ok(0));
}

/// Conformance: 138 — `recv` on a TCP socket fails with `WSAECONNRESET` after the peer's abortive close.
#[test]
fn recv_reset_after_abortive_close() {
    let (a, b) = two_hosts(138);
    let (c, s) = tcp_pair(&a, &b, 13800);
    set_linger(&a, c, 1, 0);
    a.closesocket(c).expect("close");
    let mut buf = [0u8; 16];
    assert_wsa_error(b.recv(s, &mut buf, 0), WsaError::WSAECONNRESET);
}

/// Conformance: 139 — `recv` with `len` = 0 on a TCP socket fails with `WSAEINVAL`.
#[test]
fn recv_zero_len_stream() {
    let (a, b) = two_hosts(139);
    let (c, s) = tcp_pair(&a, &b, 13900);
    send_all(&a, c, b"x");
    assert_wsa_error(b.recv(s, &mut [], 0), WsaError::WSAEINVAL);
    assert_eq!(recv_exact(&b, s, 1), b"x", "nothing was consumed");
}

/// Conformance: 141, 162 — `recv` and `send` with an undefined flag bit fail with `WSAEINVAL`.
#[test]
fn undefined_flags() {
    let (a, b) = two_hosts(141);
    let (c, s) = tcp_pair(&a, &b, 14100);
    let u = udp_bound(&a, at(A, 14101));
    let mut buf = [0u8; 16];
    for flag in [0x8, 0x10, 0x100, MSG_PARTIAL, i32::MIN] {
        assert_wsa_error(b.recv(s, &mut buf, flag), WsaError::WSAEINVAL);
        assert_wsa_error(a.send(c, b"x", flag), WsaError::WSAEINVAL);
        assert_wsa_error(
            a.recvfrom(u, &mut buf, flag, None, None),
            WsaError::WSAEINVAL,
        );
        assert_wsa_error(
            a.sendto(u, b"x", flag, Some(&sa(at(B, 1))), SOCKADDR_IN_LEN),
            WsaError::WSAEINVAL,
        );
    }
    set_nonblocking(&b, s, true);
    assert_would_block(b.recv(s, &mut buf, 0));
}

/// Conformance: 142 — `recv` on an unconnected TCP socket fails with `WSAENOTCONN`.
#[test]
fn recv_unconnected_tcp() {
    let (a, _b) = two_hosts(142);
    let s = new_socket(&a, SOCK_STREAM);
    let mut buf = [0u8; 16];
    assert_wsa_error(a.recv(s, &mut buf, 0), WsaError::WSAENOTCONN);
    bind(&a, s, at(A, 14200)).expect("bind");
    assert_wsa_error(a.recv(s, &mut buf, 0), WsaError::WSAENOTCONN);
    let l = listener(&a, at(A, 14201), 1);
    assert_wsa_error(a.recv(l, &mut buf, 0), WsaError::WSAENOTCONN);
}

/// Conformance: 143, 152 — `recv` and `recvfrom` on an unbound UDP socket fail with `WSAEINVAL`.
#[test]
fn recv_unbound_udp() {
    let (a, _b) = two_hosts(143);
    let s = new_socket(&a, SOCK_DGRAM);
    let mut buf = [0u8; 16];
    assert_wsa_error(a.recv(s, &mut buf, 0), WsaError::WSAEINVAL);
    assert_wsa_error(recvfrom(&a, s, &mut buf, 0), WsaError::WSAEINVAL);
}

/// Conformance: 144 — `recv` after `shutdown(SD_RECEIVE)` fails with `WSAESHUTDOWN`.
#[test]
fn recv_after_shutdown_receive() {
    let (a, b) = two_hosts(144);
    let (c, _s) = tcp_pair(&a, &b, 14400);
    a.shutdown(c, SD_RECEIVE).expect("shutdown");
    let mut buf = [0u8; 16];
    assert_wsa_error(a.recv(c, &mut buf, 0), WsaError::WSAESHUTDOWN);
    let u = udp_bound(&a, at(A, 14401));
    a.shutdown(u, SD_BOTH).expect("shutdown");
    assert_wsa_error(a.recv(u, &mut buf, 0), WsaError::WSAESHUTDOWN);
    assert_wsa_error(recvfrom(&a, u, &mut buf, 0), WsaError::WSAESHUTDOWN);
}

/// Conformance: 145 — `recv` with `MSG_PEEK` returns data that a following plain `recv` returns again.
#[test]
fn peek_then_read() {
    let (a, b) = two_hosts(145);
    let (c, s) = tcp_pair(&a, &b, 14500);
    send_all(&a, c, b"peekaboo");
    assert!(wait_until(Duration::from_secs(5), || fionread(&b, s) == 8));
    let mut buf = [0u8; 16];
    assert_eq!(b.recv(s, &mut buf, MSG_PEEK), Ok(8));
    assert_eq!(&buf[..8], b"peekaboo");
    assert_eq!(b.recv(s, &mut buf[..4], MSG_PEEK), Ok(4));
    let mut again = [0u8; 16];
    assert_eq!(b.recv(s, &mut again, 0), Ok(8));
    assert_eq!(&again[..8], b"peekaboo");
    // Datagrams too: the peeked datagram stays first in the queue.
    let rx = udp_bound(&b, at(B, 14501));
    let tx = udp_bound(&a, at(A, 14502));
    sendto(&a, tx, b"one", at(B, 14501)).expect("sendto");
    sendto(&a, tx, b"two", at(B, 14501)).expect("sendto");
    assert_eq!(recvfrom(&b, rx, &mut buf, MSG_PEEK), Ok((3, at(A, 14502))));
    assert_eq!(&buf[..3], b"one");
    assert_eq!(b.recv(rx, &mut buf, 0), Ok(3));
    assert_eq!(&buf[..3], b"one");
    assert_eq!(b.recv(rx, &mut buf, 0), Ok(3));
    assert_eq!(&buf[..3], b"two");
}

/// Conformance: 146 — `recv` on a UDP socket with a buffer smaller than the datagram fills the buffer, fails with `WSAEMSGSIZE`, and the next `recv` returns the next datagram.
#[test]
fn short_buffer_truncates_datagram() {
    let (a, b) = two_hosts(146);
    let rx = udp_bound(&b, at(B, 14600));
    let tx = udp_bound(&a, at(A, 14601));
    sendto(&a, tx, b"0123456789", at(B, 14600)).expect("sendto");
    sendto(&a, tx, b"next", at(B, 14600)).expect("sendto");
    let mut small = [0u8; 4];
    assert_wsa_error(b.recv(rx, &mut small, 0), WsaError::WSAEMSGSIZE);
    assert_eq!(&small, b"0123", "the buffer holds the first part");
    let mut buf = [0u8; 16];
    assert_eq!(b.recv(rx, &mut buf, 0), Ok(4), "the excess was discarded");
    assert_eq!(&buf[..4], b"next");
}

/// Conformance: 147 — `recv` on a UDP socket whose earlier datagram drew an ICMP Port Unreachable fails with `WSAECONNRESET`.
#[test]
fn port_unreachable_shows_as_reset() {
    let (a, _b) = two_hosts(147);
    let s = udp_bound(&a, at(A, 14700));
    sendto(&a, s, b"anyone there?", at(B, 14799)).expect("sendto");
    let mut buf = [0u8; 16];
    // Blocking: the ICMP error ends the wait.
    assert_wsa_error(a.recv(s, &mut buf, 0), WsaError::WSAECONNRESET);
    // It is reported once.
    set_nonblocking(&a, s, true);
    assert_would_block(a.recv(s, &mut buf, 0));
}

/// Conformance: 148, 163 — `recv` or `send` with `MSG_OOB` on a UDP socket fails with `WSAEOPNOTSUPP`.
#[test]
fn oob_on_udp() {
    let (a, _b) = two_hosts(148);
    let s = udp_bound(&a, at(A, 14800));
    connect(&a, s, at(B, 14801)).expect("connect");
    let mut buf = [0u8; 16];
    assert_wsa_error(a.recv(s, &mut buf, MSG_OOB), WsaError::WSAEOPNOTSUPP);
    assert_wsa_error(a.send(s, b"x", MSG_OOB), WsaError::WSAEOPNOTSUPP);
    assert_wsa_error(
        a.sendto(s, b"x", MSG_OOB, Some(&sa(at(B, 1))), SOCKADDR_IN_LEN),
        WsaError::WSAEOPNOTSUPP,
    );
}

/// Conformance: 149 — `recvfrom` on a UDP socket returns the sender's address and port and sets `*fromlen` to 16.
#[test]
fn recvfrom_reports_sender() {
    let (a, b) = two_hosts(149);
    let rx = udp_bound(&b, at(B, 14900));
    let tx = udp_bound(&a, at(A, 14901));
    sendto(&a, tx, b"who", at(B, 14900)).expect("sendto");
    let mut from = SOCKADDR_IN::default();
    let mut len = 64;
    let mut buf = [0u8; 16];
    assert_eq!(
        b.recvfrom(rx, &mut buf, 0, Some(&mut from), Some(&mut len)),
        Ok(3)
    );
    assert_eq!(len, 16);
    assert_eq!(from.sin_family, AF_INET as i16);
    assert_eq!(from.to_socket_addr(), at(A, 14901));
}

/// Conformance: 150 — `recvfrom` on a UDP socket with `*fromlen` < 16 fails with `WSAEFAULT`.
#[test]
fn recvfrom_short_fromlen() {
    let (a, b) = two_hosts(150);
    let rx = udp_bound(&b, at(B, 15000));
    let tx = udp_bound(&a, at(A, 15001));
    sendto(&a, tx, b"kept", at(B, 15000)).expect("sendto");
    assert!(wait_readable(&b, rx, 5000));
    let mut from = SOCKADDR_IN::default();
    let mut buf = [0u8; 16];
    for short in [0, 8, 15] {
        let mut len = short;
        assert_wsa_error(
            b.recvfrom(rx, &mut buf, 0, Some(&mut from), Some(&mut len)),
            WsaError::WSAEFAULT,
        );
    }
    assert_eq!(
        recvfrom(&b, rx, &mut buf, 0),
        Ok((4, at(A, 15001))),
        "the datagram is still there"
    );
}

/// Conformance: 151 — `recvfrom` on a connected TCP socket ignores `from` and `fromlen`.
#[test]
fn recvfrom_on_tcp_ignores_from() {
    let (a, b) = two_hosts(151);
    let (c, s) = tcp_pair(&a, &b, 15100);
    send_all(&a, c, b"stream");
    let marker = SOCKADDR_IN {
        sin_family: 77,
        sin_port: 7,
        sin_addr: IN_ADDR { S_addr: 7 },
        sin_zero: [7; 8],
    };
    let mut from = marker;
    let mut len = 3; // too short for an address, and ignored anyway
    let mut buf = [0u8; 16];
    assert_eq!(
        b.recvfrom(s, &mut buf, 0, Some(&mut from), Some(&mut len)),
        Ok(6)
    );
    assert_eq!(&buf[..6], b"stream");
    assert_eq!(from, marker, "from untouched");
    assert_eq!(len, 3, "fromlen untouched");
}

/// Conformance: 153 — `send` on an unconnected TCP socket fails with `WSAENOTCONN`.
#[test]
fn send_unconnected_tcp() {
    let (a, _b) = two_hosts(153);
    let s = new_socket(&a, SOCK_STREAM);
    assert_wsa_error(a.send(s, b"x", 0), WsaError::WSAENOTCONN);
    let l = listener(&a, at(A, 15300), 1);
    assert_wsa_error(a.send(l, b"x", 0), WsaError::WSAENOTCONN);
}

/// Conformance: 154 — `send` on an unconnected UDP socket fails with `WSAENOTCONN`.
#[test]
fn send_unconnected_udp() {
    let (a, _b) = two_hosts(154);
    let s = new_socket(&a, SOCK_DGRAM);
    assert_wsa_error(a.send(s, b"x", 0), WsaError::WSAENOTCONN);
    bind(&a, s, at(A, 15400)).expect("bind");
    assert_wsa_error(a.send(s, b"x", 0), WsaError::WSAENOTCONN);
}

/// Conformance: 155, 470 — `send` of a UDP datagram larger than `SO_MAX_MSG_SIZE` fails with `WSAEMSGSIZE` and puts nothing on the wire; one of exactly that size is accepted.
#[test]
fn datagram_too_big() {
    let (a, b) = two_hosts(155);
    let rx = udp_bound(&b, at(B, 15500));
    let s = udp_bound(&a, at(A, 15501));
    connect(&a, s, at(B, 15500)).expect("connect");
    let max = get_int(&a, s, SOL_SOCKET, SO_MAX_MSG_SIZE).expect("SO_MAX_MSG_SIZE") as usize;
    assert_eq!(max, 65_507, "65,535 − IP header − UDP header");
    // Warm up ARP so the count below sees only the datagram.
    assert_eq!(a.send(s, b"warm", 0), Ok(4));
    let mut buf = vec![0u8; 70_000];
    assert_eq!(b.recv(rx, &mut buf, 0), Ok(4));
    let frames = settled_tx_frames(&a, s);
    let big = pattern(max + 1, 155);
    assert_wsa_error(a.send(s, &big, 0), WsaError::WSAEMSGSIZE);
    assert_wsa_error(sendto(&a, s, &big, at(B, 15500)), WsaError::WSAEMSGSIZE);
    thread::sleep(Duration::from_millis(100));
    assert_eq!(settled_tx_frames(&a, s), frames, "nothing on the wire");
    // The largest size goes through, fragmented on the wire and reassembled.
    assert_eq!(a.send(s, &big[..max], 0), Ok(max as i32));
    assert_eq!(b.recv(rx, &mut buf, 0), Ok(max as i32));
    assert_eq!(&buf[..max], &big[..max]);
}

/// Conformance: 156 — `send` with `len` = 0 on a connected TCP socket returns 0.
#[test]
fn send_zero_tcp() {
    let (a, b) = two_hosts(156);
    let (c, s) = tcp_pair(&a, &b, 15600);
    assert_eq!(a.send(c, &[], 0), Ok(0));
    send_all(&a, c, b"after");
    assert_eq!(recv_exact(&b, s, 5), b"after", "no phantom bytes");
}

/// Conformance: 157, 178 — a zero-length `send` on a connected UDP socket (or `sendto`) returns 0 and transmits a zero-length datagram that `recvfrom` returns as 0 bytes.
#[test]
fn zero_length_datagram() {
    let (a, b) = two_hosts(157);
    let rx = udp_bound(&b, at(B, 15700));
    let s = udp_bound(&a, at(A, 15701));
    connect(&a, s, at(B, 15700)).expect("connect");
    assert_eq!(a.send(s, &[], 0), Ok(0));
    let mut buf = [0u8; 16];
    assert_eq!(recvfrom(&b, rx, &mut buf, 0), Ok((0, at(A, 15701))));
    let t = udp_bound(&a, at(A, 15702));
    assert_eq!(sendto(&a, t, &[], at(B, 15700)), Ok(0));
    assert_eq!(recvfrom(&b, rx, &mut buf, 0), Ok((0, at(A, 15702))));
}

/// Conformance: 158 — `send` on a nonblocking TCP socket with partially available buffer space returns a byte count between 1 and `len`.
#[test]
fn nonblocking_partial_send() {
    let (a, b) = two_hosts(158);
    let (c, s) = tcp_pair(&a, &b, 15800);
    set_nonblocking(&a, c, true);
    let data = pattern(4 << 20, 158);
    let n = a.send(c, &data, 0).expect("some of it fits") as usize;
    assert!(n >= 1 && n < data.len(), "sent {n} of {}", data.len());
    // What was accepted is exactly the start of the buffer.
    assert_eq!(recv_exact(&b, s, n), &data[..n]);
}

/// Conformance: 159 — `send` on a nonblocking TCP socket with no buffer space fails with `WSAEWOULDBLOCK`.
#[test]
fn nonblocking_send_full() {
    let (a, b) = two_hosts(159);
    let (c, s) = tcp_pair(&a, &b, 15900);
    set_nonblocking(&a, c, true);
    let chunk = vec![7u8; 64 * 1024];
    let mut total = 0usize;
    let mut blocked = false;
    let end = Instant::now() + Duration::from_secs(10);
    while Instant::now() < end {
        match a.send(c, &chunk, 0) {
            Ok(n) => total += n as usize,
            Err(e) => {
                assert_eq!(e, WsaError::WSAEWOULDBLOCK);
                assert_eq!(WSAGetLastError(), WsaError::WSAEWOULDBLOCK.0);
                blocked = true;
                // Still full a moment later: the peer is not reading.
                thread::sleep(Duration::from_millis(50));
                if matches!(a.send(c, &chunk, 0), Err(WsaError::WSAEWOULDBLOCK)) {
                    break;
                }
            }
        }
    }
    assert!(blocked, "never blocked after {total} bytes");
    assert!(total > 0);
    // Everything accepted arrives.
    assert_eq!(recv_exact(&b, s, total).len(), total);
}

/// Conformance: 160 — `send` on a blocking TCP socket whose buffers are full blocks until space is available.
#[test]
fn blocking_send_waits_for_room() {
    let (a, b) = two_hosts(160);
    let (c, s) = tcp_pair(&a, &b, 16000);
    let data = pattern(2 << 20, 160);
    let done = Arc::new(AtomicBool::new(false));
    let writer = {
        let (data, done) = (data.clone(), done.clone());
        thread::spawn(move || {
            let n = a.send(c, &data, 0);
            done.store(true, Ordering::SeqCst);
            // Keep host A alive until its send buffer has drained.
            (a, n)
        })
    };
    thread::sleep(Duration::from_millis(300));
    assert!(
        !done.load(Ordering::SeqCst),
        "send returned although the peer reads nothing"
    );
    assert_eq!(recv_exact(&b, s, data.len()), data);
    let (_a, n) = writer.join().expect("writer");
    assert_eq!(n, Ok(data.len() as i32), "all of it, at once");
}

/// Conformance: 161 — `send` after `shutdown(SD_SEND)` fails with `WSAESHUTDOWN`.
#[test]
fn send_after_shutdown_send() {
    let (a, b) = two_hosts(161);
    let (c, _s) = tcp_pair(&a, &b, 16100);
    a.shutdown(c, SD_SEND).expect("shutdown");
    assert_wsa_error(a.send(c, b"x", 0), WsaError::WSAESHUTDOWN);
    let u = udp_bound(&a, at(A, 16101));
    connect(&a, u, at(B, 16102)).expect("connect");
    a.shutdown(u, SD_SEND).expect("shutdown");
    assert_wsa_error(a.send(u, b"x", 0), WsaError::WSAESHUTDOWN);
    assert_wsa_error(sendto(&a, u, b"x", at(B, 16102)), WsaError::WSAESHUTDOWN);
}

/// Conformance: 164 — `send` with `MSG_OOB` on a TCP socket that has `SO_OOBINLINE` enabled fails with `WSAEINVAL`.
#[test]
fn oob_send_with_oobinline() {
    let (a, b) = two_hosts(164);
    let (c, _s) = tcp_pair(&a, &b, 16400);
    set_int(&a, c, SOL_SOCKET, SO_OOBINLINE, 1).expect("SO_OOBINLINE");
    assert_wsa_error(a.send(c, b"!", MSG_OOB), WsaError::WSAEINVAL);
    assert_wsa_error(a.sendto(c, b"!", MSG_OOB, None, 0), WsaError::WSAEINVAL);
}

/// Conformance: 165 — `send` with `MSG_DONTROUTE` succeeds.
#[test]
fn dontroute_send() {
    let (a, b) = two_hosts(165);
    let (c, s) = tcp_pair(&a, &b, 16500);
    assert_eq!(a.send(c, b"direct", MSG_DONTROUTE), Ok(6));
    assert_eq!(recv_exact(&b, s, 6), b"direct");
    let rx = udp_bound(&b, at(B, 16501));
    let u = udp_bound(&a, at(A, 16502));
    assert_eq!(
        a.sendto(
            u,
            b"dgram",
            MSG_DONTROUTE,
            Some(&sa(at(B, 16501))),
            SOCKADDR_IN_LEN
        ),
        Ok(5)
    );
    let mut buf = [0u8; 8];
    assert_eq!(b.recv(rx, &mut buf, 0), Ok(5));
}

/// Conformance: 166 — `send` on a UDP socket connected to a broadcast address fails with `WSAEACCES` if `SO_BROADCAST` has since been disabled.
#[test]
fn broadcast_send_after_disabling() {
    let (a, _b) = two_hosts(166);
    let s = udp_bound(&a, at(A, 16600));
    set_int(&a, s, SOL_SOCKET, SO_BROADCAST, 1).expect("SO_BROADCAST");
    connect(&a, s, at(Ipv4Addr::BROADCAST, 16601)).expect("connect");
    assert_eq!(a.send(s, b"all", 0), Ok(3));
    set_int(&a, s, SOL_SOCKET, SO_BROADCAST, 0).expect("SO_BROADCAST off");
    assert_wsa_error(a.send(s, b"all", 0), WsaError::WSAEACCES);
}

/// Conformance: 167 — `send` on a TCP socket reset by the peer fails with `WSAECONNRESET`.
#[test]
fn send_after_peer_reset() {
    let (a, b) = two_hosts(167);
    let (c, s) = tcp_pair(&a, &b, 16700);
    set_linger(&b, s, 1, 0);
    b.closesocket(s).expect("abortive close");
    set_nonblocking(&a, c, true);
    let r = retry(Duration::from_secs(5), || loop {
        match a.send(c, b"into the void", 0) {
            Ok(_) => thread::sleep(Duration::from_millis(5)),
            r => return r,
        }
    });
    assert_wsa_error(r, WsaError::WSAECONNRESET);
}

/// Conformance: 168 — `sendto` on a connected TCP socket ignores `to` and behaves like `send`.
#[test]
fn sendto_on_tcp_ignores_to() {
    let (a, b) = two_hosts(168);
    let (c, s) = tcp_pair(&a, &b, 16800);
    let elsewhere = sa(at(Ipv4Addr::new(192, 0, 2, 9), 9));
    assert_eq!(
        a.sendto(c, b"one", 0, Some(&elsewhere), SOCKADDR_IN_LEN),
        Ok(3)
    );
    assert_eq!(a.sendto(c, b"two", 0, None, 0), Ok(3));
    let mut bogus = sa(at(B, 1));
    bogus.sin_family = 99;
    assert_eq!(a.sendto(c, b"six", 0, Some(&bogus), 3), Ok(3));
    assert_eq!(recv_exact(&b, s, 9), b"onetwosix");
}

/// Conformance: 169 — `sendto` on a connected UDP socket delivers that datagram to `to` and the next `send` still goes to the connected peer.
#[test]
fn sendto_overrides_connected_peer_once() {
    let (a, b) = two_hosts(169);
    let peer = udp_bound(&b, at(B, 16900));
    let other = udp_bound(&b, at(B, 16901));
    let s = udp_bound(&a, at(A, 16902));
    connect(&a, s, at(B, 16900)).expect("connect");
    assert_eq!(sendto(&a, s, b"other", at(B, 16901)), Ok(5));
    assert_eq!(a.send(s, b"peer", 0), Ok(4));
    let mut buf = [0u8; 16];
    assert_eq!(recvfrom(&b, other, &mut buf, 0), Ok((5, at(A, 16902))));
    assert_eq!(&buf[..5], b"other");
    assert_eq!(recvfrom(&b, peer, &mut buf, 0), Ok((4, at(A, 16902))));
    assert_eq!(&buf[..4], b"peer");
}

/// Conformance: 170 — `sendto` on an unbound UDP socket implicitly binds it and `getsockname` reports a nonzero port.
#[test]
fn sendto_binds_implicitly() {
    let (a, b) = two_hosts(170);
    let rx = udp_bound(&b, at(B, 17000));
    let s = new_socket(&a, SOCK_DGRAM);
    assert_wsa_error(local_name(&a, s), WsaError::WSAEINVAL);
    sendto(&a, s, b"hi", at(B, 17000)).expect("sendto");
    let name = local_name(&a, s).expect("bound now");
    assert_ne!(name.port(), 0);
    let mut buf = [0u8; 4];
    let (_, from) = recvfrom(&b, rx, &mut buf, 0).expect("recvfrom");
    assert_eq!(from.port(), name.port(), "the datagram came from that port");
    // And it can now receive the reply there.
    sendto(&b, rx, b"yo", from).expect("reply");
    assert_eq!(a.recv(s, &mut buf, 0), Ok(2));
}

/// Conformance: 171 — `sendto` to 255.255.255.255 without `SO_BROADCAST` fails with `WSAEACCES`.
#[test]
fn broadcast_needs_so_broadcast() {
    let (a, _b) = two_hosts(171);
    let s = udp_bound(&a, at(A, 17100));
    assert_eq!(get_int(&a, s, SOL_SOCKET, SO_BROADCAST), Ok(0));
    assert_wsa_error(
        sendto(&a, s, b"all", at(Ipv4Addr::BROADCAST, 17101)),
        WsaError::WSAEACCES,
    );
    assert_wsa_error(
        sendto(&a, s, b"all", at(Ipv4Addr::new(10, 0, 0, 255), 17101)),
        WsaError::WSAEACCES,
    );
}

/// Conformance: 172 — `sendto` to `INADDR_BROADCAST` with `SO_BROADCAST` enabled succeeds and emits a broadcast frame.
#[test]
fn broadcast_frame_on_the_wire() {
    let switch = VirtualSwitch::new(172);
    let a = started(&stack_on(&switch, config(A)));
    let mut watcher = switch.port();
    let s = udp_bound(&a, at(A, 17200));
    set_int(&a, s, SOL_SOCKET, SO_BROADCAST, 1).expect("SO_BROADCAST");
    assert_eq!(
        sendto(&a, s, b"hello all", at(Ipv4Addr::BROADCAST, 17201)),
        Ok(9)
    );
    let frame = sniff(&mut watcher, Duration::from_secs(5), |f| {
        is_udp_to(f, [0xff; 6], Ipv4Addr::BROADCAST, 17201)
    });
    let frame = frame.expect("a broadcast frame");
    assert_eq!(&frame[14 + 28..], b"hello all");
}

/// Conformance: 173 — `sendto` to a multicast address succeeds on a socket that has not joined the group.
#[test]
fn multicast_send_without_membership() {
    let switch = VirtualSwitch::new(173);
    let a = started(&stack_on(&switch, config(A)));
    let mut watcher = switch.port();
    let s = udp_bound(&a, at(A, 17300));
    let group = Ipv4Addr::new(239, 1, 2, 3);
    assert_eq!(sendto(&a, s, b"to the group", at(group, 17301)), Ok(12));
    let mac = [0x01, 0x00, 0x5e, 0x01, 0x02, 0x03];
    assert!(sniff(&mut watcher, Duration::from_secs(5), |f| is_udp_to(
        f, mac, group, 17301
    ))
    .is_some());
}

/// Conformance: 174 — `sendto` with destination 0.0.0.0 fails with `WSAEDESTADDRREQ`.
#[test]
fn sendto_any_address() {
    let (a, _b) = two_hosts(174);
    let s = udp_bound(&a, at(A, 17400));
    assert_wsa_error(
        sendto(&a, s, b"x", at(Ipv4Addr::UNSPECIFIED, 9)),
        WsaError::WSAEDESTADDRREQ,
    );
}

/// Conformance: 175 — `sendto` with destination port 0 fails with `WSAEADDRNOTAVAIL`.
#[test]
fn sendto_port_zero() {
    let (a, _b) = two_hosts(175);
    let s = udp_bound(&a, at(A, 17500));
    assert_wsa_error(sendto(&a, s, b"x", at(B, 0)), WsaError::WSAEADDRNOTAVAIL);
}

/// Conformance: 176 — `sendto` with an address of another family fails with `WSAEAFNOSUPPORT`.
#[test]
fn sendto_other_family() {
    let (a, _b) = two_hosts(176);
    let s = udp_bound(&a, at(A, 17600));
    for family in [AF_UNSPEC, AF_INET6, 17] {
        let mut to = sa(at(B, 17601));
        to.sin_family = family as i16;
        assert_wsa_error(
            a.sendto(s, b"x", 0, Some(&to), SOCKADDR_IN_LEN),
            WsaError::WSAEAFNOSUPPORT,
        );
    }
}

/// Conformance: 177 — `sendto` with `tolen` < 16 fails with `WSAEFAULT`.
#[test]
fn sendto_short_tolen() {
    let (a, _b) = two_hosts(177);
    let s = udp_bound(&a, at(A, 17700));
    let to = sa(at(B, 17701));
    for len in [-1, 0, 8, 15] {
        assert_wsa_error(a.sendto(s, b"x", 0, Some(&to), len), WsaError::WSAEFAULT);
    }
    assert_wsa_error(
        a.sendto(s, b"x", 0, None, SOCKADDR_IN_LEN),
        WsaError::WSAEFAULT,
    );
}

/// Conformance: 179 — `sendto` to an unreachable network fails with `WSAENETUNREACH`.
#[test]
fn sendto_unreachable_network() {
    let (a, _b) = two_hosts(179);
    let s = udp_bound(&a, at(A, 17900));
    assert_wsa_error(
        sendto(&a, s, b"x", at(Ipv4Addr::new(192, 0, 2, 1), 9)),
        WsaError::WSAENETUNREACH,
    );
}
