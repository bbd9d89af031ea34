//! The Rust face (`ws2_stack::net`): `TcpListener`, `TcpStream` and `UdpSocket` behave as
//! their `std::net` namesakes on an in-process network, and errors keep their Winsock code.

use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use ws2_stack::net::{CancelHandle, TcpListener, TcpStream, UdpSocket};
use ws2_stack::{Stack, WsaError};
use ws2_tap::VirtualSwitch;
use ws2_tests::*;

fn two_stacks(seed: u64) -> (Stack, Stack) {
    let switch = VirtualSwitch::new(seed);
    (stack_on(&switch, config(A)), stack_on(&switch, config(B)))
}

fn v4(ip: Ipv4Addr, port: u16) -> SocketAddr {
    SocketAddr::from((ip, port))
}

#[track_caller]
fn assert_code<T: std::fmt::Debug>(r: io::Result<T>, kind: io::ErrorKind, code: WsaError) {
    let e = r.expect_err("an error");
    assert_eq!(e.kind(), kind, "{e}");
    assert_eq!(WsaError::from_io(&e), Some(code), "{e}");
}

/// A server echoes what a client writes; names and peers agree on both sides.
#[test]
fn tcp_echo() {
    let (a, b) = two_stacks(1);
    let listener = TcpListener::bind(&b, "10.0.0.2:7000").expect("bind");
    assert_eq!(listener.local_addr().expect("local_addr"), v4(B, 7000));
    let server = thread::spawn(move || {
        let (mut s, peer) = listener.accept().expect("accept");
        assert_eq!(s.peer_addr().expect("peer_addr"), peer);
        assert_eq!(s.local_addr().expect("local_addr"), v4(B, 7000));
        let mut buf = vec![0u8; 8192];
        loop {
            let n = s.read(&mut buf).expect("read");
            if n == 0 {
                break;
            }
            s.write_all(&buf[..n]).expect("write");
        }
    });
    // `Read`/`Write` work through `&TcpStream`: one thread writes while this one reads.
    let c = Arc::new(TcpStream::connect(&a, "10.0.0.2:7000").expect("connect"));
    assert_eq!(c.peer_addr().expect("peer_addr"), v4(B, 7000));
    assert_eq!(
        c.local_addr().expect("local_addr").ip(),
        std::net::IpAddr::V4(A)
    );
    let data = pattern(200_000, 1);
    let writer = {
        let (data, w) = (data.clone(), c.clone());
        thread::spawn(move || {
            (&*w).write_all(&data).expect("write_all");
            w.shutdown(Shutdown::Write).expect("shutdown");
        })
    };
    let mut back = Vec::new();
    (&*c).read_to_end(&mut back).expect("read_to_end");
    assert!(back == data, "echoed intact");
    writer.join().expect("writer");
    server.join().expect("server");
}

/// A refused connect is `ConnectionRefused` carrying `WSAECONNREFUSED`; binding a used port is
/// `AddrInUse`.
#[test]
fn errors_keep_their_codes() {
    let (a, b) = two_stacks(2);
    assert_code(
        TcpStream::connect(&a, "10.0.0.2:7001"),
        io::ErrorKind::ConnectionRefused,
        WsaError::WSAECONNREFUSED,
    );
    let _l = TcpListener::bind(&b, "10.0.0.2:7002").expect("bind");
    assert_code(
        TcpListener::bind(&b, "10.0.0.2:7002"),
        io::ErrorKind::AddrInUse,
        WsaError::WSAEADDRINUSE,
    );
    assert_code(
        TcpListener::bind(&b, "10.0.0.9:7003"),
        io::ErrorKind::AddrNotAvailable,
        WsaError::WSAEADDRNOTAVAIL,
    );
    assert_code(
        TcpStream::connect(&a, "192.0.2.1:80"),
        io::ErrorKind::NetworkUnreachable,
        WsaError::WSAENETUNREACH,
    );
    let u = UdpSocket::bind(&a, "10.0.0.1:0").expect("bind");
    assert_code(
        u.send(b"x"),
        io::ErrorKind::NotConnected,
        WsaError::WSAENOTCONN,
    );
    assert_code(
        u.peer_addr(),
        io::ErrorKind::NotConnected,
        WsaError::WSAENOTCONN,
    );
    let no_v4 = TcpStream::connect(&a, "[::1]:80");
    assert_eq!(
        no_v4.expect_err("IPv6 only").kind(),
        io::ErrorKind::InvalidInput
    );
}

/// Non-blocking mode: reads and accepts return `WouldBlock` (`WSAEWOULDBLOCK`) until
/// something is there.
#[test]
fn nonblocking() {
    let (a, b) = two_stacks(3);
    let listener = TcpListener::bind(&b, "10.0.0.2:7010").expect("bind");
    listener.set_nonblocking(true).expect("set_nonblocking");
    assert_code(
        listener.accept(),
        io::ErrorKind::WouldBlock,
        WsaError::WSAEWOULDBLOCK,
    );
    let mut c = TcpStream::connect(&a, "10.0.0.2:7010").expect("connect");
    let end = Instant::now() + Duration::from_secs(5);
    let (mut s, _) = loop {
        match listener.accept() {
            Ok(x) => break x,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock && Instant::now() < end => {
                thread::sleep(Duration::from_millis(2))
            }
            Err(e) => panic!("accept: {e}"),
        }
    };
    s.set_nonblocking(true).expect("set_nonblocking");
    let mut buf = [0u8; 16];
    assert_code(
        s.read(&mut buf),
        io::ErrorKind::WouldBlock,
        WsaError::WSAEWOULDBLOCK,
    );
    c.write_all(b"now").expect("write");
    let end = Instant::now() + Duration::from_secs(5);
    let n = loop {
        match s.read(&mut buf) {
            Ok(n) => break n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock && Instant::now() < end => {
                thread::sleep(Duration::from_millis(2))
            }
            Err(e) => panic!("read: {e}"),
        }
    };
    assert_eq!(&buf[..n], b"now");
}

/// Read and write timeouts: set, read back, expire with `TimedOut`; zero is `InvalidInput`.
#[test]
fn timeouts() {
    let (a, b) = two_stacks(4);
    let listener = TcpListener::bind(&b, "10.0.0.2:7020").expect("bind");
    let mut c = TcpStream::connect(&a, "10.0.0.2:7020").expect("connect");
    let (_s, _) = listener.accept().expect("accept");
    assert_eq!(c.read_timeout().expect("read_timeout"), None);
    assert_eq!(
        c.set_read_timeout(Some(Duration::ZERO))
            .expect_err("zero")
            .kind(),
        io::ErrorKind::InvalidInput
    );
    c.set_read_timeout(Some(Duration::from_millis(250)))
        .expect("set_read_timeout");
    assert_eq!(
        c.read_timeout().expect("read_timeout"),
        Some(Duration::from_millis(250))
    );
    let started = Instant::now();
    let mut buf = [0u8; 4];
    assert_code(
        c.read(&mut buf),
        io::ErrorKind::TimedOut,
        WsaError::WSAETIMEDOUT,
    );
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(240) && took < Duration::from_secs(3),
        "{took:?}"
    );
    c.set_write_timeout(Some(Duration::from_millis(300)))
        .expect("set_write_timeout");
    assert_eq!(
        c.write_timeout().expect("write_timeout"),
        Some(Duration::from_millis(300))
    );
    c.set_write_timeout(None).expect("clear");
    assert_eq!(c.write_timeout().expect("write_timeout"), None);
    let u = UdpSocket::bind(&a, "10.0.0.1:7021").expect("bind");
    u.set_read_timeout(Some(Duration::from_millis(100)))
        .expect("set_read_timeout");
    assert_eq!(
        u.read_timeout().expect("read_timeout"),
        Some(Duration::from_millis(100))
    );
    assert_code(
        u.recv_from(&mut buf),
        io::ErrorKind::TimedOut,
        WsaError::WSAETIMEDOUT,
    );
}

/// `peek` leaves the data for `read`; `nodelay` round-trips; `shutdown(Write)` ends the peer's
/// reads.
#[test]
fn peek_nodelay_shutdown() {
    let (a, b) = two_stacks(5);
    let listener = TcpListener::bind(&b, "10.0.0.2:7030").expect("bind");
    let mut c = TcpStream::connect(&a, "10.0.0.2:7030").expect("connect");
    let (mut s, _) = listener.accept().expect("accept");
    assert!(!c.nodelay().expect("nodelay"));
    c.set_nodelay(true).expect("set_nodelay");
    assert!(c.nodelay().expect("nodelay"));
    c.write_all(b"hello").expect("write");
    let mut buf = [0u8; 5];
    let end = Instant::now() + Duration::from_secs(5);
    while s.peek(&mut buf).expect("peek") < 5 && Instant::now() < end {
        thread::sleep(Duration::from_millis(2));
    }
    assert_eq!(&buf, b"hello");
    let mut again = [0u8; 5];
    s.read_exact(&mut again).expect("read");
    assert_eq!(&again, b"hello");
    c.shutdown(Shutdown::Write).expect("shutdown");
    assert_eq!(s.read(&mut buf).expect("read"), 0);
    s.write_all(b"reply").expect("the other half still works");
    c.read_exact(&mut buf).expect("read");
    assert_eq!(&buf, b"reply");
    assert!(c.take_error().expect("take_error").is_none());
}

/// Dropping a stream closes it gracefully; `set_linger(Some(0))` makes the drop a reset.
#[test]
fn drop_closes() {
    let (a, b) = two_stacks(6);
    let listener = TcpListener::bind(&b, "10.0.0.2:7040").expect("bind");
    let c = TcpStream::connect(&a, "10.0.0.2:7040").expect("connect");
    let (mut s, _) = listener.accept().expect("accept");
    (&c).write_all(b"bye").expect("write");
    drop(c);
    let mut got = Vec::new();
    s.read_to_end(&mut got).expect("graceful end");
    assert_eq!(got, b"bye");
    let c = TcpStream::connect(&a, "10.0.0.2:7040").expect("connect");
    let (mut s, _) = listener.accept().expect("accept");
    c.set_linger(Some(Duration::ZERO)).expect("set_linger");
    drop(c);
    let mut buf = [0u8; 4];
    assert_code(
        s.read(&mut buf),
        io::ErrorKind::ConnectionReset,
        WsaError::WSAECONNRESET,
    );
}

/// `incoming` yields one stream per connection, in order.
#[test]
fn incoming() {
    let (a, b) = two_stacks(7);
    let listener = TcpListener::bind(&b, "0.0.0.0:7050").expect("bind");
    let clients = thread::spawn(move || {
        for i in 0..5u8 {
            let mut c = TcpStream::connect(&a, "10.0.0.2:7050").expect("connect");
            c.write_all(&[i]).expect("write");
        }
        a
    });
    for (i, s) in listener.incoming().take(5).enumerate() {
        let mut s = s.expect("incoming");
        assert_eq!(
            s.local_addr().expect("local_addr"),
            v4(B, 7050),
            "the specific address"
        );
        let mut byte = [0u8; 1];
        s.read_exact(&mut byte).expect("read");
        assert_eq!(byte[0], i as u8);
    }
    let _a = clients.join();
}

/// UDP: `send_to`/`recv_from`, `peek_from`, `connect`/`send`/`recv`, broadcast, port 0.
#[test]
fn udp() {
    let (a, b) = two_stacks(8);
    let rx = UdpSocket::bind(&b, "10.0.0.2:7060").expect("bind");
    let tx = UdpSocket::bind(&a, "0.0.0.0:0").expect("bind");
    let port = tx.local_addr().expect("local_addr").port();
    assert!((1024..=5000).contains(&port));
    assert_eq!(tx.send_to(b"one", "10.0.0.2:7060").expect("send_to"), 3);
    let mut buf = [0u8; 16];
    let (n, from) = rx.peek_from(&mut buf).expect("peek_from");
    assert_eq!((&buf[..n], from), (&b"one"[..], v4(A, port)));
    let (n, from) = rx.recv_from(&mut buf).expect("recv_from");
    assert_eq!((&buf[..n], from), (&b"one"[..], v4(A, port)));
    rx.connect(from).expect("connect");
    assert_eq!(rx.peer_addr().expect("peer_addr"), from);
    rx.send(b"two").expect("send");
    let (n, _) = tx.recv_from(&mut buf).expect("recv_from");
    assert_eq!(&buf[..n], b"two");
    assert!(!tx.broadcast().expect("broadcast"));
    let e = tx
        .send_to(b"x", "255.255.255.255:7061")
        .expect_err("no SO_BROADCAST");
    assert_eq!(WsaError::from_io(&e), Some(WsaError::WSAEACCES));
    tx.set_broadcast(true).expect("set_broadcast");
    assert!(tx.broadcast().expect("broadcast"));
    tx.send_to(b"all", "255.255.255.255:7061")
        .expect("broadcast allowed");
    // A datagram longer than the buffer: WSAEMSGSIZE, the rest is lost.
    tx.send_to(&[5u8; 100], "10.0.0.2:7060").expect("send_to");
    let mut small = [0u8; 10];
    let e = rx.recv(&mut small).expect_err("truncated");
    assert_eq!(WsaError::from_io(&e), Some(WsaError::WSAEMSGSIZE));
    assert_eq!(small, [5u8; 10]);
    rx.set_nonblocking(true).expect("set_nonblocking");
    assert_code(
        rx.recv(&mut buf),
        io::ErrorKind::WouldBlock,
        WsaError::WSAEWOULDBLOCK,
    );
    assert!(rx.take_error().expect("take_error").is_none());
}

/// Dropping Rust-face objects frees their sockets and ports: the stack's tables return to
/// empty.
#[test]
fn drop_frees_everything() {
    let (a, b) = two_stacks(9);
    {
        let listener = TcpListener::bind(&b, "10.0.0.2:7070").expect("bind");
        let c = TcpStream::connect(&a, "10.0.0.2:7070").expect("connect");
        let (s, _) = listener.accept().expect("accept");
        let u = UdpSocket::bind(&a, "10.0.0.1:7071").expect("bind");
        assert_eq!(b.stats().sockets, 2);
        assert_eq!(a.stats().sockets, 2);
        drop((c, s, u, listener));
    }
    assert_eq!(a.stats().sockets, 0);
    assert_eq!(b.stats().sockets, 0);
    assert!(
        wait_until(Duration::from_secs(30), || {
            let (sa, sb) = (a.stats(), b.stats());
            sa.ports == 0 && sb.ports == 0 && sa.smoltcp_sockets == 0 && sb.smoltcp_sockets == 0
        }),
        "a: {:?}, b: {:?}",
        a.stats(),
        b.stats()
    );
    // The ports can be bound again.
    let _l = TcpListener::bind(&b, "10.0.0.2:7070").expect("bind again");
    let _u = UdpSocket::bind(&a, "10.0.0.1:7071").expect("bind again");
}

/// The Rust-face types can move between and be shared by threads.
#[test]
fn send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<TcpStream>();
    check::<TcpListener>();
    check::<UdpSocket>();
    check::<Stack>();
}

/// Calls `cancel` until `worker` (blocked on the handle's socket) has finished: a cancel only
/// reaches a call already blocked, so it is repeated rather than timed. False if the worker is
/// still blocked after ten seconds.
fn cancel_until_done<T>(cancel: &CancelHandle, worker: &thread::ScopedJoinHandle<'_, T>) -> bool {
    wait_until(Duration::from_secs(10), || {
        cancel.cancel().expect("cancel");
        worker.is_finished()
    })
}

/// `CancelHandle::cancel` ends a blocked `read` and a blocked `accept` with `Interrupted`
/// (`WSAEINTR`); the stream and the listener keep working afterwards.
#[test]
fn cancel_interrupts_read_and_accept() {
    let (a, b) = two_stacks(10);
    let listener = TcpListener::bind(&b, "10.0.0.2:7200").expect("bind");
    let mut client = TcpStream::connect(&a, "10.0.0.2:7200").expect("connect");
    let (server, _) = listener.accept().expect("accept");
    let (read, accepted) = thread::scope(|scope| {
        let reader = scope.spawn(|| (&server).read(&mut [0u8; 16]));
        let cancel = server.cancel_handle();
        if !cancel_until_done(&cancel, &reader) {
            client.write_all(b"unblock").expect("write");
        }
        let read = reader.join().expect("reader");
        let acceptor = scope.spawn(|| listener.accept().map(|(_, peer)| peer));
        let cancel = listener.cancel_handle();
        if !cancel_until_done(&cancel, &acceptor) {
            TcpStream::connect(&a, "10.0.0.2:7200").expect("unblock");
        }
        (read, acceptor.join().expect("acceptor"))
    });
    assert_code(read, io::ErrorKind::Interrupted, WsaError::WSAEINTR);
    assert_code(accepted, io::ErrorKind::Interrupted, WsaError::WSAEINTR);
    client.write_all(b"after").expect("write");
    let mut buf = [0u8; 5];
    (&server)
        .read_exact(&mut buf)
        .expect("the stream still reads");
    assert_eq!(&buf, b"after");
    (&server).write_all(b"back").expect("and writes");
    let mut buf = [0u8; 4];
    client.read_exact(&mut buf).expect("read");
    assert_eq!(&buf, b"back");
    let c2 = TcpStream::connect(&a, "10.0.0.2:7200").expect("connect");
    let (_s2, peer) = listener.accept().expect("the listener still accepts");
    assert_eq!(peer, c2.local_addr().expect("local_addr"));
}

/// `CancelHandle::cancel` ends a blocked `UdpSocket::recv_from` with `Interrupted`; the socket
/// still receives afterwards.
#[test]
fn cancel_interrupts_udp_receive() {
    let (a, b) = two_stacks(11);
    let rx = UdpSocket::bind(&b, "10.0.0.2:7210").expect("bind");
    let tx = UdpSocket::bind(&a, "10.0.0.1:7211").expect("bind");
    let got = thread::scope(|scope| {
        let receiver = scope.spawn(|| rx.recv_from(&mut [0u8; 16]));
        if !cancel_until_done(&rx.cancel_handle(), &receiver) {
            tx.send_to(b"unblock", "10.0.0.2:7210").expect("send_to");
        }
        receiver.join().expect("receiver")
    });
    assert_code(got, io::ErrorKind::Interrupted, WsaError::WSAEINTR);
    tx.send_to(b"after", "10.0.0.2:7210").expect("send_to");
    let mut buf = [0u8; 16];
    let (n, from) = rx.recv_from(&mut buf).expect("still receives");
    assert_eq!((&buf[..n], from), (&b"after"[..], v4(A, 7211)));
}

/// A cancelled `write` that had queued part of its buffer returns that count, not an error:
/// writing the rest gives the peer exactly the bytes written, in order.
#[test]
fn cancelled_write_reports_what_it_queued() {
    let (a, b) = two_stacks(12);
    let listener = TcpListener::bind(&b, "10.0.0.2:7220").expect("bind");
    let mut client = TcpStream::connect(&a, "10.0.0.2:7220").expect("connect");
    let (mut server, _) = listener.accept().expect("accept");
    // Far more than the send buffer and the peer's window: the peer reads nothing yet.
    let data = pattern(4 << 20, 12);
    let n = thread::scope(|scope| {
        let writer = scope.spawn(|| (&client).write(&data));
        assert!(
            cancel_until_done(&client.cancel_handle(), &writer),
            "the write ends"
        );
        writer.join().expect("writer")
    })
    .expect("a partial count");
    assert!(n > 0 && n < data.len(), "wrote {n} of {}", data.len());
    let received = thread::scope(|scope| {
        let reader = scope.spawn(|| {
            let mut got = vec![0u8; data.len()];
            server.read_exact(&mut got).map(|()| got)
        });
        client.write_all(&data[n..]).expect("write the rest");
        reader.join().expect("reader")
    })
    .expect("read");
    assert!(received == data, "the stream is intact");
}

/// A `CancelHandle` is `Clone + Send + Sync + Debug`; cancelling with nothing blocked affects no
/// later call; once the socket is closed `cancel` fails with its Winsock code.
#[test]
fn cancel_handle_basics() {
    fn check<T: Clone + Send + Sync + std::fmt::Debug + 'static>() {}
    check::<CancelHandle>();
    let (a, b) = two_stacks(13);
    let listener = TcpListener::bind(&b, "10.0.0.2:7230").expect("bind");
    let mut client = TcpStream::connect(&a, "10.0.0.2:7230").expect("connect");
    let (server, _) = listener.accept().expect("accept");
    let cancel = server.cancel_handle();
    let copy = cancel.clone();
    assert!(format!("{copy:?}").contains("CancelHandle"));
    cancel.cancel().expect("nothing blocked: a no-op");
    copy.cancel().expect("clones work too");
    let writer = thread::spawn(move || {
        thread::sleep(Duration::from_millis(50));
        client.write_all(b"later").expect("write");
        client
    });
    let mut buf = [0u8; 5];
    (&server)
        .read_exact(&mut buf)
        .expect("an earlier cancel does not reach a later read");
    assert_eq!(&buf, b"later");
    let _client = writer.join().expect("writer");
    drop(server);
    // Accepted streams share the listener's session: the socket is simply gone.
    assert_code(cancel.cancel(), io::ErrorKind::Other, WsaError::WSAENOTSOCK);
    let udp = UdpSocket::bind(&a, "10.0.0.1:7231").expect("bind");
    let cancel = udp.cancel_handle();
    drop(udp);
    assert_code(
        cancel.cancel(),
        io::ErrorKind::Other,
        WsaError::WSANOTINITIALISED,
    );
}
