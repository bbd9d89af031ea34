//! Tier 3, TCP urgent data with the Linux kernel as peer, both directions, inline and out of
//! line (issue 7 acceptance; CHECKLIST §1.15, D-21, D-22). The kernel's own sockets use
//! `send(MSG_OOB)`, `recv(MSG_OOB)`, `SO_OOBINLINE`, `ioctl(SIOCATMARK)` and `poll(POLLPRI)`;
//! the kernel recognises an urgent byte only from URG and the BSD urgent pointer on the wire,
//! so a byte it receives with `MSG_OOB` proves what the stack sent (496, 506).
//!
//! Needs root and `/dev/net/tun` (see `ws2_tests::netns::require_netns`). Every packet stays
//! inside the test's namespace, networks 10.77.70.0/24 and 10.77.71.0/24.

use std::io::{self, Read, Write};
use std::net::SocketAddrV4;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use ws2_stack::winsock::*;
use ws2_stack::WsaError;
use ws2_tests::netns::{require_netns, KernelPeer};
use ws2_tests::{
    assert_wsa_error, at, bind, connect, new_socket, poll_one, set_int, started, wait_until,
};

/// How long something that must happen may take.
const WAIT: Duration = Duration::from_secs(10);
/// How long to watch for something that must not happen.
const QUIET: Duration = Duration::from_millis(300);
/// A `wMsg`.
const WM_SOCK: u32 = 0x0400 + 9;
/// Linux's `SIOCATMARK` (`<linux/sockios.h>`; the libc crate does not export it).
const LINUX_SIOCATMARK: libc::c_ulong = 0x8905;

// ---- the kernel's side --------------------------------------------------------------------

/// `send(fd, data, MSG_OOB)` on a kernel socket: the last byte is urgent.
fn kernel_send_oob(sock: &std::net::TcpStream, data: &[u8]) {
    // SAFETY: the fd is open for the call; `data` is valid for `data.len()` bytes.
    #[allow(unsafe_code)]
    let n = unsafe {
        libc::send(
            sock.as_raw_fd(),
            data.as_ptr().cast(),
            data.len(),
            libc::MSG_OOB,
        )
    };
    assert_eq!(
        n,
        data.len() as isize,
        "send(MSG_OOB): {}",
        io::Error::last_os_error()
    );
}

/// `recv(fd, 1 byte, MSG_OOB)` on a kernel socket, retried while the kernel says it has not
/// arrived yet.
fn kernel_recv_oob(sock: &std::net::TcpStream) -> io::Result<u8> {
    let end = Instant::now() + WAIT;
    loop {
        let mut b = 0u8;
        // SAFETY: the fd is open for the call; `b` is one writable byte.
        #[allow(unsafe_code)]
        let n = unsafe {
            libc::recv(
                sock.as_raw_fd(),
                (&mut b as *mut u8).cast(),
                1,
                libc::MSG_OOB | libc::MSG_DONTWAIT,
            )
        };
        if n == 1 {
            return Ok(b);
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::WouldBlock || Instant::now() > end {
            return Err(e);
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// `setsockopt(SO_OOBINLINE, 1)` on a kernel socket.
fn kernel_oobinline(sock: &std::net::TcpStream) {
    let one: libc::c_int = 1;
    // SAFETY: the fd is open for the call; `one` is a valid int whose size is passed.
    #[allow(unsafe_code)]
    let rc = unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_OOBINLINE,
            (&one as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    assert_eq!(rc, 0, "SO_OOBINLINE: {}", io::Error::last_os_error());
}

/// `ioctl(SIOCATMARK)` on a kernel socket (Linux: whether the read position is at the mark).
fn kernel_at_mark(sock: &std::net::TcpStream) -> bool {
    let mut v: libc::c_int = -1;
    // SAFETY: the fd is open for the call; SIOCATMARK writes one int to `v`.
    #[allow(unsafe_code)]
    let rc = unsafe {
        libc::ioctl(
            sock.as_raw_fd(),
            LINUX_SIOCATMARK,
            &mut v as *mut libc::c_int,
        )
    };
    assert_eq!(rc, 0, "SIOCATMARK: {}", io::Error::last_os_error());
    v == 1
}

/// Whether `poll` reports urgent data (POLLPRI) on a kernel socket within `WAIT`.
fn kernel_pollpri(sock: &std::net::TcpStream) -> bool {
    let mut p = libc::pollfd {
        fd: sock.as_raw_fd(),
        events: libc::POLLPRI,
        revents: 0,
    };
    // SAFETY: `p` is one valid pollfd.
    #[allow(unsafe_code)]
    let n = unsafe { libc::poll(&mut p, 1, WAIT.as_millis() as libc::c_int) };
    n == 1 && p.revents & libc::POLLPRI != 0
}

/// Reads exactly `n` bytes from a kernel socket, each call's result kept.
fn kernel_read(mut sock: &std::net::TcpStream, n: usize) -> Vec<Vec<u8>> {
    let mut calls = Vec::new();
    let mut total = 0;
    while total < n {
        let mut buf = [0u8; 256];
        let want = (n - total).min(buf.len());
        let got = sock.read(&mut buf[..want]).expect("kernel read");
        assert!(got > 0, "kernel: connection closed early");
        total += got;
        calls.push(buf[..got].to_vec());
    }
    calls
}

// ---- the stack's side ---------------------------------------------------------------------

/// `SIOCATMARK` on a ws2 socket.
fn at_mark(ws: &Winsock, s: SOCKET) -> bool {
    let mut v = 7u32;
    ws.ioctlsocket(s, SIOCATMARK, Some(&mut v))
        .expect("ioctlsocket(SIOCATMARK)");
    v == 1
}

/// Plain receives on a (possibly non-blocking) ws2 socket until `n` bytes came.
fn ws_read(ws: &Winsock, s: SOCKET, n: usize) -> Vec<Vec<u8>> {
    let mut calls = Vec::new();
    let mut total = 0;
    let end = Instant::now() + WAIT;
    while total < n {
        let mut buf = [0u8; 256];
        let want = (n - total).min(buf.len());
        match ws.recv(s, &mut buf[..want], 0) {
            Ok(got) if got > 0 => {
                total += got as usize;
                calls.push(buf[..got as usize].to_vec());
            }
            Err(WsaError::WSAEWOULDBLOCK) if Instant::now() < end => {
                std::thread::sleep(Duration::from_millis(2));
            }
            other => panic!("recv: {other:?} after {total} bytes"),
        }
    }
    calls
}

/// The FD_ events posted to `q` until it has been quiet for `QUIET`.
fn events(q: &MessageQueue) -> Vec<i32> {
    let mut out = Vec::new();
    let mut wait = WAIT;
    while let Some(m) = q.GetMessage(Some(wait)) {
        out.push(i32::from(WSAGETSELECTEVENT(m.lParam)));
        wait = QUIET;
    }
    out
}

/// Conformance: issue 7 acceptance (urgent data from the kernel) — out of line: exceptfds and `FD_OOB` (not `FD_READ`), `SIOCATMARK` FALSE until `recv(MSG_OOB)` took the kernel's urgent byte, plain receives "AB" then "CD"; inline (stack listening, accepting): `FD_READ` and never `FD_OOB`, receives "AB", "X", "CD" with `SIOCATMARK` moving past the mark; urgent data sent before `accept` is kept.
#[test]
fn kernel_sends_urgent_data() {
    if require_netns().is_some() {
        return;
    }
    let peer = KernelPeer::new("ws2-oobk", 70).expect("set up namespace, TAP and stack");
    let ws = started(&peer.stack);

    // Out of line: the stack connects to a kernel listener.
    let server = SocketAddrV4::new(peer.kernel_ip, 7001);
    let listener = peer
        .ns
        .enter_thread(|| std::net::TcpListener::bind(server))
        .unwrap()
        .expect("kernel bind");
    let c = new_socket(&ws, SOCK_STREAM);
    connect(&ws, c, server).expect("stack connects");
    let (mut k, _) = listener.accept().expect("kernel accepts");
    let q = MessageQueue::new();
    ws.WSAAsyncSelect(c, q.hwnd(), WM_SOCK, FD_OOB)
        .expect("WSAAsyncSelect");
    kernel_send_oob(&k, b"X");
    assert_eq!(events(&q), [FD_OOB], "FD_OOB for the urgent byte alone");
    assert!(!at_mark(&ws, c), "urgent data pending");
    let (r, _, e) = poll_one(&ws, c, 0);
    assert!(e && !r, "exceptional, not readable");
    let mut one = [0u8; 1];
    assert_eq!(ws.recv(c, &mut one, MSG_OOB), Ok(1));
    assert_eq!(one[0], b'X');
    assert!(at_mark(&ws, c), "read");
    ws.WSAAsyncSelect(c, q.hwnd(), WM_SOCK, FD_READ | FD_OOB)
        .expect("WSAAsyncSelect");
    assert!(
        q.GetMessage(Some(QUIET)).is_none(),
        "no FD_READ for the urgent byte"
    );
    k.write_all(b"AB").unwrap();
    kernel_send_oob(&k, b"Y");
    k.write_all(b"CD").unwrap();
    assert!(
        wait_until(WAIT, || poll_one(&ws, c, 20).2),
        "exceptional again"
    );
    assert!(wait_until(WAIT, || {
        let mut n = 0u32;
        ws.ioctlsocket(c, FIONREAD, Some(&mut n)).unwrap();
        n >= 4
    }));
    assert!(!at_mark(&ws, c));
    let calls = ws_read(&ws, c, 4);
    assert_eq!(calls[0], b"AB", "never across the mark");
    assert_eq!(
        calls.concat(),
        b"ABCD",
        "the urgent byte is not in the stream"
    );
    assert!(!at_mark(&ws, c), "the urgent byte is still unread");
    assert_eq!(ws.recv(c, &mut one, MSG_OOB), Ok(1));
    assert_eq!(one[0], b'Y', "jumps the queue");
    assert!(at_mark(&ws, c));
    assert_wsa_error(ws.recv(c, &mut one, MSG_OOB), WsaError::WSAEINVAL);
    ws.closesocket(c).unwrap();

    // Inline: the kernel connects to the stack's listener.
    let l = new_socket(&ws, SOCK_STREAM);
    bind(&ws, l, at(peer.stack_ip, 7002)).unwrap();
    ws.listen(l, 4).unwrap();
    let kernel = std::thread::scope(|scope| {
        let t = scope.spawn(|| {
            peer.ns.enter_thread(|| {
                std::net::TcpStream::connect_timeout(&at(peer.stack_ip, 7002).into(), WAIT)
            })
        });
        let s = ws.accept(l, None, None).expect("stack accepts");
        (s, t.join().unwrap().unwrap().expect("kernel connects"))
    });
    let (s, k2) = kernel;
    set_int(&ws, s, SOL_SOCKET, SO_OOBINLINE, 1).unwrap();
    // A fresh queue: the first connection's notifications stay out of it.
    let q = MessageQueue::new();
    ws.WSAAsyncSelect(s, q.hwnd(), WM_SOCK, FD_READ | FD_OOB)
        .expect("WSAAsyncSelect");
    (&k2).write_all(b"AB").unwrap();
    kernel_send_oob(&k2, b"X");
    (&k2).write_all(b"CD").unwrap();
    assert!(wait_until(WAIT, || !at_mark(&ws, s)), "the mark arrived");
    assert!(wait_until(WAIT, || {
        let mut n = 0u32;
        ws.ioctlsocket(s, FIONREAD, Some(&mut n)).unwrap();
        n >= 5
    }));
    let seen = events(&q);
    assert!(seen.contains(&FD_READ), "FD_READ: {seen:?}");
    assert!(!seen.contains(&FD_OOB), "never FD_OOB inline: {seen:?}");
    let (r, _, e) = poll_one(&ws, s, 0);
    assert!(r && !e, "readable, not exceptional");
    assert_wsa_error(ws.recv(s, &mut one, MSG_OOB), WsaError::WSAEINVAL);
    assert_eq!(ws_read(&ws, s, 2), [b"AB".to_vec()]);
    assert!(!at_mark(&ws, s));
    let mut buf = [0u8; 64];
    assert_eq!(ws.recv(s, &mut buf, 0), Ok(1), "the urgent byte alone");
    assert_eq!(buf[0], b'X');
    assert!(at_mark(&ws, s));
    assert_eq!(ws_read(&ws, s, 2).concat(), b"CD");
    let events = events(&q);
    assert!(!events.contains(&FD_OOB), "never FD_OOB inline: {events:?}");
    drop(k);

    // Out of line, everything sent while the connection waits in the stack's backlog.
    let l = new_socket(&ws, SOCK_STREAM);
    bind(&ws, l, at(peer.stack_ip, 7003)).unwrap();
    ws.listen(l, 4).unwrap();
    let k3 = peer
        .ns
        .enter_thread(|| {
            std::net::TcpStream::connect_timeout(&at(peer.stack_ip, 7003).into(), WAIT)
        })
        .unwrap()
        .expect("kernel connects");
    (&k3).write_all(b"AB").unwrap();
    kernel_send_oob(&k3, b"X");
    (&k3).write_all(b"CD").unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let s3 = ws.accept(l, None, None).expect("stack accepts");
    assert!(!at_mark(&ws, s3), "urgent data pending");
    assert!(poll_one(&ws, s3, 0).2, "exceptional");
    assert_eq!(ws.recv(s3, &mut one, MSG_OOB), Ok(1));
    assert_eq!(one[0], b'X');
    assert!(at_mark(&ws, s3));
    assert_eq!(ws_read(&ws, s3, 4).concat(), b"ABCD");
}

/// Conformance: 496, 506 — `send(MSG_OOB)` of one byte sets URG with the BSD urgent pointer: the kernel sees POLLPRI and reads exactly that byte with `recv(MSG_OOB)`, out of line (the stack connecting) and inline (the stack accepting), with the kernel's `SIOCATMARK` at the right place.
#[test]
fn stack_sends_urgent_data() {
    if require_netns().is_some() {
        return;
    }
    let peer = KernelPeer::new("ws2-oobs", 71).expect("set up namespace, TAP and stack");
    let ws = started(&peer.stack);

    // Out of line: the stack connects to a kernel listener.
    let server = SocketAddrV4::new(peer.kernel_ip, 7101);
    let listener = peer
        .ns
        .enter_thread(|| std::net::TcpListener::bind(server))
        .unwrap()
        .expect("kernel bind");
    let c = new_socket(&ws, SOCK_STREAM);
    connect(&ws, c, server).expect("stack connects");
    let (k, _) = listener.accept().expect("kernel accepts");
    k.set_read_timeout(Some(WAIT)).unwrap();
    assert_eq!(ws.send(c, b"AB", 0), Ok(2));
    assert_eq!(ws.send(c, b"X", MSG_OOB), Ok(1));
    assert_eq!(ws.send(c, b"CD", 0), Ok(2));
    assert!(kernel_pollpri(&k), "the kernel saw URG");
    assert_eq!(kernel_recv_oob(&k).expect("kernel recv(MSG_OOB)"), b'X');
    let calls = kernel_read(&k, 4);
    assert_eq!(calls.concat(), b"ABCD", "out of line: not in the stream");
    // A larger urgent send: only its last byte is urgent, after a full segment's worth.
    let filler = vec![b'.'; 5000];
    let mut sent = 0;
    while sent < filler.len() {
        sent += ws.send(c, &filler[sent..], 0).unwrap() as usize;
    }
    assert_eq!(ws.send(c, b"qrZ", MSG_OOB), Ok(3));
    assert!(kernel_pollpri(&k));
    assert_eq!(kernel_recv_oob(&k).unwrap(), b'Z');
    let data = kernel_read(&k, 5002).concat();
    assert!(data[..5000].iter().all(|&b| b == b'.'));
    assert_eq!(&data[5000..], b"qr");
    ws.closesocket(c).unwrap();

    // Inline: the kernel connects to the stack's listener; the accepted socket sends.
    let l = new_socket(&ws, SOCK_STREAM);
    bind(&ws, l, at(peer.stack_ip, 7102)).unwrap();
    ws.listen(l, 4).unwrap();
    let (s, k2) = std::thread::scope(|scope| {
        let t = scope.spawn(|| {
            peer.ns.enter_thread(|| {
                std::net::TcpStream::connect_timeout(&at(peer.stack_ip, 7102).into(), WAIT)
            })
        });
        let s = ws.accept(l, None, None).expect("stack accepts");
        (s, t.join().unwrap().unwrap().expect("kernel connects"))
    });
    k2.set_read_timeout(Some(WAIT)).unwrap();
    kernel_oobinline(&k2);
    assert_eq!(ws.send(s, b"AB", 0), Ok(2));
    assert_eq!(ws.send(s, b"X", MSG_OOB), Ok(1));
    assert_eq!(ws.send(s, b"CD", 0), Ok(2));
    assert!(kernel_pollpri(&k2), "the kernel saw URG");
    // Linux stops a read at the mark and then says it is there.
    let mut got = 0;
    let end = Instant::now() + WAIT;
    while got < 5 && Instant::now() < end {
        let mut n: libc::c_int = 0;
        // SAFETY: the fd is open; FIONREAD writes one int.
        #[allow(unsafe_code)]
        unsafe {
            libc::ioctl(k2.as_raw_fd(), libc::FIONREAD, &mut n as *mut libc::c_int)
        };
        got = n;
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(kernel_read(&k2, 2).concat(), b"AB");
    assert!(kernel_at_mark(&k2), "the kernel is at the mark after AB");
    assert_eq!(
        kernel_read(&k2, 3).concat(),
        b"XCD",
        "inline: the urgent byte in place"
    );
    let mut probe = [0u8; 1];
    k2.set_nonblocking(true).unwrap();
    assert!((&k2).read(&mut probe).is_err(), "nothing more");
    ws.closesocket(s).unwrap();
    ws.closesocket(l).unwrap();
}
