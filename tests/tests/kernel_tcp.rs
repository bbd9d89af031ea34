//! Tier 3, TCP: the Linux kernel in a test namespace is the client, the server and the
//! misbehaving peer of the stack, over a TAP.
//!
//! Needs root and `/dev/net/tun` (see `ws2_tests::netns::require_netns`).

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddrV4};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use ws2_stack::net::{TcpListener, TcpStream};
use ws2_stack::WsaError;
use ws2_tests::netns::{pattern_sha256, recv_to_end, require_netns, send_pattern, KernelPeer};

/// Bytes sent each way by the bulk tests.
const BULK: u64 = 100 * 1024 * 1024;
/// Longest any single blocking call may wait before the test calls it a hang.
const IO_TIMEOUT: Duration = Duration::from_secs(30);

/// The Windows Sockets code inside an error from the Rust face.
fn wsa(err: &io::Error) -> Option<WsaError> {
    WsaError::from_io(err)
}

/// Mebibytes per second.
fn rate(bytes: u64, took: Duration) -> f64 {
    bytes as f64 / (1024.0 * 1024.0) / took.as_secs_f64()
}

/// `SO_LINGER {on, 0}` on a kernel socket, so that closing it sends RST.
fn kernel_linger_zero(sock: &std::net::TcpStream) {
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: the fd is open for the duration of the call, and `linger` is a valid
    // `struct linger` whose size is passed alongside it.
    #[allow(unsafe_code)]
    let rc = unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&linger as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        )
    };
    assert_eq!(
        rc,
        0,
        "setsockopt(SO_LINGER): {}",
        io::Error::last_os_error()
    );
}

/// What one side of a bulk exchange saw: the digest it sent, the count and digest it
/// received, and how long receiving took.
#[derive(Debug)]
struct Exchange {
    sent: String,
    received: (u64, String),
    recv_time: Duration,
}

/// The first half of a bulk exchange: send `BULK` bytes, half-close, then read the peer's
/// `BULK` bytes to its FIN.
fn send_then_receive<S>(
    conn: S,
    shutdown: impl FnOnce(&S) -> io::Result<()>,
) -> io::Result<Exchange>
where
    for<'a> &'a S: Read + Write,
{
    let sent = send_pattern(&conn, BULK)?;
    shutdown(&conn)?;
    let t = Instant::now();
    let received = recv_to_end(&conn)?;
    Ok(Exchange {
        sent,
        received,
        recv_time: t.elapsed(),
    })
}

/// The other half: read to the peer's FIN, then send `BULK` bytes and half-close.
fn receive_then_send<S>(
    conn: S,
    shutdown: impl FnOnce(&S) -> io::Result<()>,
) -> io::Result<Exchange>
where
    for<'a> &'a S: Read + Write,
{
    let t = Instant::now();
    let received = recv_to_end(&conn)?;
    let recv_time = t.elapsed();
    let sent = send_pattern(&conn, BULK)?;
    shutdown(&conn)?;
    Ok(Exchange {
        sent,
        received,
        recv_time,
    })
}

/// Checks both halves of an exchange between the stack and the kernel and prints the rates.
fn check_exchange(test: &str, stack: &Exchange, kernel: &Exchange) {
    let expected = pattern_sha256(BULK);
    assert_eq!(stack.sent, expected, "the stack hashed what it sent");
    assert_eq!(kernel.sent, expected, "the kernel hashed what it sent");
    assert_eq!(
        kernel.received,
        (BULK, stack.sent.clone()),
        "stack -> kernel: count and SHA-256"
    );
    assert_eq!(
        stack.received,
        (BULK, kernel.sent.clone()),
        "kernel -> stack: count and SHA-256"
    );
    eprintln!(
        "{test}: stack -> kernel 100 MiB in {:.2?} ({:.0} MiB/s), kernel -> stack 100 MiB in {:.2?} ({:.0} MiB/s)",
        kernel.recv_time,
        rate(BULK, kernel.recv_time),
        stack.recv_time,
        rate(BULK, stack.recv_time),
    );
}

/// Conformance: 137, 160 — issue 2 acceptance: the stack as TCP client of a kernel server
/// sends 100 MiB with blocking sends, half-closes, and receives 100 MiB back until `recv`
/// returns 0 at the kernel's FIN; both sides' SHA-256 match.
#[test]
fn kernel_tcp_server_bulk_both_ways() {
    if require_netns().is_some() {
        return;
    }
    let peer = KernelPeer::new("ws2-tcps", 2).expect("set up namespace, TAP and stack");
    let server = SocketAddrV4::new(peer.kernel_ip, 5001);
    let listener = peer
        .ns
        .enter_thread(|| std::net::TcpListener::bind(server))
        .unwrap()
        .expect("kernel bind");
    std::thread::scope(|scope| {
        let kernel = scope.spawn(|| {
            let (conn, from) = listener.accept()?;
            assert_eq!(from.ip(), peer.stack_ip);
            conn.set_read_timeout(Some(IO_TIMEOUT))?;
            conn.set_write_timeout(Some(IO_TIMEOUT))?;
            receive_then_send(conn, |c| c.shutdown(Shutdown::Write))
        });
        let conn = TcpStream::connect(&peer.stack, server).expect("stack connects to the kernel");
        conn.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        conn.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
        let stack = send_then_receive(conn, |c| c.shutdown(Shutdown::Write)).expect("stack side");
        let kernel = kernel.join().expect("kernel thread").expect("kernel side");
        check_exchange("kernel_tcp_server_bulk_both_ways", &stack, &kernel);
    });
}

/// Conformance: 66, 137, 160 — issue 2 acceptance: a kernel TCP client connects to the
/// stack's blocking listener, sends 100 MiB and half-closes; the stack receives it until
/// `recv` returns 0 and sends 100 MiB back with blocking sends; both sides' SHA-256 match.
#[test]
fn kernel_tcp_client_bulk_both_ways() {
    if require_netns().is_some() {
        return;
    }
    let peer = KernelPeer::new("ws2-tcpc", 3).expect("set up namespace, TAP and stack");
    let server = SocketAddrV4::new(peer.stack_ip, 5002);
    let listener = TcpListener::bind(&peer.stack, server).expect("stack listens");
    std::thread::scope(|scope| {
        let kernel = scope.spawn(|| {
            let conn = peer.ns.enter_thread(|| {
                std::net::TcpStream::connect_timeout(&server.into(), IO_TIMEOUT)
            })??;
            conn.set_read_timeout(Some(IO_TIMEOUT))?;
            conn.set_write_timeout(Some(IO_TIMEOUT))?;
            send_then_receive(conn, |c| c.shutdown(Shutdown::Write))
        });
        let (conn, from) = listener.accept().expect("stack accepts");
        assert_eq!(from.ip(), peer.kernel_ip);
        conn.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        conn.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
        let stack = receive_then_send(conn, |c| c.shutdown(Shutdown::Write)).expect("stack side");
        let kernel = kernel.join().expect("kernel thread").expect("kernel side");
        check_exchange("kernel_tcp_client_bulk_both_ways", &stack, &kernel);
    });
}

/// Conformance: 196 — `closesocket` with default options right after a 4 MiB send
/// returns at once, and the kernel still receives every queued byte followed by a FIN.
#[test]
fn kernel_tcp_close_is_graceful() {
    if require_netns().is_some() {
        return;
    }
    const LEN: u64 = 4 * 1024 * 1024;
    let peer = KernelPeer::new("ws2-tcpg", 12).expect("set up namespace, TAP and stack");
    let server = SocketAddrV4::new(peer.kernel_ip, 5005);
    let listener = peer
        .ns
        .enter_thread(|| std::net::TcpListener::bind(server))
        .unwrap()
        .expect("kernel bind");
    let conn = TcpStream::connect(&peer.stack, server).expect("stack connects");
    let (kernel, _) = listener.accept().expect("kernel accepts");
    kernel.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    std::thread::scope(|scope| {
        // The kernel reads concurrently: 4 MiB is more than the two sides' buffers hold.
        let reader = scope.spawn(|| recv_to_end(&kernel));
        let sent = send_pattern(&conn, LEN).expect("stack send");
        let t = Instant::now();
        drop(conn);
        assert!(
            t.elapsed() < Duration::from_millis(100),
            "closesocket blocked for {:?}",
            t.elapsed()
        );
        let received = reader
            .join()
            .expect("kernel thread")
            .expect("kernel reads to the FIN");
        assert_eq!(
            received,
            (LEN, sent),
            "count and SHA-256 of what the kernel received"
        );
    });
}

/// Conformance: 105 — a blocking connect from the stack to a kernel port with no
/// listener fails with `WSAECONNREFUSED` (the kernel's RST), promptly rather than by time-out.
#[test]
fn kernel_tcp_connect_refused() {
    if require_netns().is_some() {
        return;
    }
    let peer = KernelPeer::new("ws2-tcpr", 5).expect("set up namespace, TAP and stack");
    let t = Instant::now();
    let err = TcpStream::connect(&peer.stack, (peer.kernel_ip, 5999))
        .expect_err("nothing listens on 5999");
    let took = t.elapsed();
    assert_eq!(wsa(&err), Some(WsaError::WSAECONNREFUSED), "{err}");
    assert_eq!(err.kind(), io::ErrorKind::ConnectionRefused);
    assert!(took < Duration::from_secs(5), "refusal took {took:?}");
    eprintln!("kernel_tcp_connect_refused: refused in {took:?}");
}

/// Conformance: 138, 167 — the kernel closes an established connection with
/// `SO_LINGER {1, 0}` (RST); the stack's next `recv` fails with `WSAECONNRESET`, and so does
/// a `send` after it.
#[test]
fn kernel_tcp_reset_by_kernel() {
    if require_netns().is_some() {
        return;
    }
    let peer = KernelPeer::new("ws2-tcpk", 6).expect("set up namespace, TAP and stack");
    let server = SocketAddrV4::new(peer.kernel_ip, 5003);
    let listener = peer
        .ns
        .enter_thread(|| std::net::TcpListener::bind(server))
        .unwrap()
        .expect("kernel bind");
    let mut conn = TcpStream::connect(&peer.stack, server).expect("stack connects");
    conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let (mut kernel, _) = listener.accept().expect("kernel accepts");
    kernel.write_all(b"hello").unwrap();
    let mut buf = [0u8; 16];
    let n = conn.read(&mut buf).expect("the greeting arrives");
    assert_eq!(&buf[..n], b"hello");

    kernel_linger_zero(&kernel);
    drop(kernel);
    let t = Instant::now();
    let err = conn.read(&mut buf).expect_err("recv after the peer's RST");
    assert_eq!(wsa(&err), Some(WsaError::WSAECONNRESET), "recv: {err}");
    assert!(
        t.elapsed() < Duration::from_secs(2),
        "the reset took {:?} to show",
        t.elapsed()
    );
    let err = conn
        .write(b"after the reset")
        .expect_err("send after the peer's RST");
    assert_eq!(wsa(&err), Some(WsaError::WSAECONNRESET), "send: {err}");
}

/// Conformance: 197 — `closesocket` on the stack after `SO_LINGER {1, 0}` resets the
/// connection: the kernel's `recv` fails with `ECONNRESET`.
#[test]
fn kernel_tcp_reset_by_stack() {
    if require_netns().is_some() {
        return;
    }
    let peer = KernelPeer::new("ws2-tcpa", 7).expect("set up namespace, TAP and stack");
    let server = SocketAddrV4::new(peer.kernel_ip, 5004);
    let listener = peer
        .ns
        .enter_thread(|| std::net::TcpListener::bind(server))
        .unwrap()
        .expect("kernel bind");
    let mut conn = TcpStream::connect(&peer.stack, server).expect("stack connects");
    let (mut kernel, _) = listener.accept().expect("kernel accepts");
    kernel
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    conn.write_all(b"hello").unwrap();
    let mut buf = [0u8; 16];
    kernel
        .read_exact(&mut buf[..5])
        .expect("the greeting arrives");
    assert_eq!(&buf[..5], b"hello");

    conn.set_linger(Some(Duration::ZERO)).unwrap();
    drop(conn);
    let err = kernel
        .read(&mut buf)
        .expect_err("recv after the stack's RST");
    assert_eq!(err.kind(), io::ErrorKind::ConnectionReset, "{err}");
}
