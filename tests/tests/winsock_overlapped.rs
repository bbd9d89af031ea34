//! CHECKLIST Part 2 groups L (overlapped I/O and completion routines) and G (scatter/gather):
//! `WSASend`, `WSASendTo`, `WSARecv`, `WSARecvFrom`, `WSAIoctl`, `WSAGetOverlappedResult` and
//! alertable waits (Part 1 §1.4, §1.6.6–§1.6.8, §1.14.2; D-8, D-9, D-10, D-28), plus the bad
//! input those calls must refuse.
//!
//! The Rust face moves the data of an overlapped call out of the caller's `WSABUF`s; it comes
//! back through the `WSAOVERLAPPED` (`take_buffers`/`take_received`) once the operation is done.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::{self, ThreadId};
use std::time::{Duration, Instant};

use ws2_stack::winsock::*;
use ws2_stack::WsaError;
use ws2_tests::*;

const LONG: Duration = Duration::from_secs(5);
const QUIET: Duration = Duration::from_millis(250);

/// What one completion routine was called with.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Call {
    error: u32,
    bytes: u32,
    /// `lpOverlapped->hEvent`: the application's context value.
    context: usize,
    flags: u32,
    /// The operation's data, taken from `lpOverlapped` inside the routine.
    data: Vec<u8>,
    thread: ThreadId,
}

type Log = Arc<Mutex<Vec<Call>>>;

fn log() -> Log {
    Arc::default()
}

fn calls(log: &Log) -> Vec<Call> {
    log.lock().unwrap().clone()
}

/// A completion routine that records its call in `log`.
fn recorder(log: &Log) -> Option<LPWSAOVERLAPPED_COMPLETION_ROUTINE> {
    let log = log.clone();
    Some(Box::new(move |error, bytes, ov: &WSAOVERLAPPED, flags| {
        log.lock().unwrap().push(Call {
            error,
            bytes,
            context: ov.hEvent,
            flags,
            data: ov.take_received(),
            thread: thread::current().id(),
        });
    }))
}

/// An overlapped `WSARecv` into one buffer of `len` bytes: `Ok(bytes)` if it completed at once.
fn post_recv(
    ws: &Winsock,
    s: SOCKET,
    len: usize,
    ov: &WSAOVERLAPPED,
    routine: Option<LPWSAOVERLAPPED_COMPLETION_ROUTINE>,
) -> Result<u32, WsaError> {
    let mut bufs = [WSABUF::zeroed(len)];
    let mut n = 0;
    let mut flags = 0;
    ws.WSARecv(
        s,
        &mut bufs,
        Some(&mut n),
        Some(&mut flags),
        Some(ov),
        routine,
    )
    .map(|()| n)
}

/// An overlapped `WSASend` of `data`: `Ok(bytes)` if it completed at once.
fn post_send(
    ws: &Winsock,
    s: SOCKET,
    data: &[u8],
    ov: &WSAOVERLAPPED,
    routine: Option<LPWSAOVERLAPPED_COMPLETION_ROUTINE>,
) -> Result<u32, WsaError> {
    let mut bufs = [WSABUF::new(data.to_vec())];
    let mut n = 0;
    ws.WSASend(s, &mut bufs, Some(&mut n), 0, Some(ov), routine)
        .map(|()| n)
}

/// `WSAGetOverlappedResult` as `(bytes, flags)`.
fn result(ws: &Winsock, s: SOCKET, ov: &WSAOVERLAPPED, wait: bool) -> Result<(u32, u32), WsaError> {
    let mut bytes = 0;
    let mut flags = 0;
    ws.WSAGetOverlappedResult(s, ov, &mut bytes, wait, &mut flags)
        .map(|()| (bytes, flags))
}

/// Whether `ev` is signaled now.
#[track_caller]
fn signaled(ws: &Winsock, ev: WSAEVENT) -> bool {
    match ws.WSAWaitForMultipleEvents(&[ev], false, 0, false) {
        Ok(WSA_WAIT_EVENT_0) => true,
        Ok(WSA_WAIT_TIMEOUT) => false,
        r => panic!("unexpected wait result {r:?}"),
    }
}

/// Waits (up to 5 s) until the operation in `ov` is no longer pending.
#[track_caller]
fn completes(ov: &WSAOVERLAPPED) {
    assert!(
        wait_until(LONG, || !ov.is_pending()),
        "the operation did not complete"
    );
}

/// An alertable wait on an unsignaled event of `ws`: what it returned.
fn alertable_wait(ws: &Winsock, ms: u32) -> u32 {
    let ev = ws.WSACreateEvent().unwrap();
    let r = ws.WSAWaitForMultipleEvents(&[ev], false, ms, true).unwrap();
    ws.WSACloseEvent(ev).unwrap();
    r
}

/// A TCP client on `a` created by `WSASocket` with `flags`, connected to a new listener on `b`,
/// and the accepted socket.
fn tcp_pair_flags(a: &Winsock, b: &Winsock, port: u16, flags: u32) -> (SOCKET, SOCKET) {
    let l = listener(b, at(B, port), 4);
    let c = a
        .WSASocket(AF_INET, SOCK_STREAM, 0, None, 0, flags)
        .expect("WSASocket");
    connect(a, c, at(B, port)).expect("connect");
    let s = b.accept(l, None, None).expect("accept");
    b.closesocket(l).unwrap();
    (c, s)
}

// ---- group L ------------------------------------------------------------------------------

/// Conformance: 29, 307 — an overlapped `WSARecv` on a socket made by `socket`, posted before any
/// data, returns `WSA_IO_PENDING` without touching `*lpNumberOfBytesRecvd`, and its event is
/// signaled when data arrives.
#[test]
fn recv_pends_until_data_arrives() {
    let (a, b) = two_hosts(30700);
    let (c, s) = tcp_pair(&a, &b, 30700);
    let ev = a.WSACreateEvent().unwrap();
    let ov = WSAOVERLAPPED::new(ev);
    let mut bufs = [WSABUF::zeroed(100)];
    let mut n = 777;
    let mut flags = 0;
    assert_wsa_error(
        a.WSARecv(
            c,
            &mut bufs,
            Some(&mut n),
            Some(&mut flags),
            Some(&ov),
            None,
        ),
        WsaError::WSA_IO_PENDING,
    );
    assert_eq!(n, 777, "the count is not updated for a pending operation");
    assert_eq!(ov.Internal(), WsaError::WSA_IO_PENDING.0);
    thread::sleep(QUIET);
    assert!(!signaled(&a, ev), "signaled before any data came");
    send_all(&b, s, b"hello");
    assert_eq!(
        a.WSAWaitForMultipleEvents(&[ev], false, 5000, false),
        Ok(WSA_WAIT_EVENT_0)
    );
    assert_eq!(result(&a, c, &ov, false), Ok((5, 0)));
    assert_eq!(ov.take_received(), b"hello");
}

/// Conformance: 308 — an overlapped `WSARecv` posted while data is queued returns 0 with
/// `*lpNumberOfBytesRecvd` set, and its event is already signaled when it returns.
#[test]
fn recv_with_queued_data_completes_at_once() {
    let (a, b) = two_hosts(30800);
    let (c, s) = tcp_pair(&a, &b, 30800);
    let data = pattern(42, 308);
    send_all(&a, c, &data);
    assert!(wait_until(LONG, || fionread(&b, s) == 42), "data queued");
    let ev = b.WSACreateEvent().unwrap();
    let ov = WSAOVERLAPPED::new(ev);
    let mut bufs = [WSABUF::zeroed(100)];
    let mut n = 0;
    let mut flags = 0;
    b.WSARecv(
        s,
        &mut bufs,
        Some(&mut n),
        Some(&mut flags),
        Some(&ov),
        None,
    )
    .expect("completes immediately");
    assert_eq!(n, 42);
    assert_eq!(flags, 0, "no MSG_PARTIAL for a stream");
    assert!(
        signaled(&b, ev),
        "the indication happened before the call returned"
    );
    assert_eq!(result(&b, s, &ov, false), Ok((42, 0)));
    assert_eq!(ov.take_received(), data);
}

/// Conformance: 309 — a call that pends resets a signaled `hEvent` to nonsignaled; completion
/// sets it again.
#[test]
fn pending_call_resets_event() {
    let (a, b) = two_hosts(30900);
    let (c, s) = tcp_pair(&a, &b, 30900);
    let ev = b.WSACreateEvent().unwrap();
    b.WSASetEvent(ev).unwrap();
    let ov = WSAOVERLAPPED::new(ev);
    assert_wsa_error(post_recv(&b, s, 64, &ov, None), WsaError::WSA_IO_PENDING);
    assert!(!signaled(&b, ev), "the pending call reset the event");
    send_all(&a, c, b"x");
    assert_eq!(
        b.WSAWaitForMultipleEvents(&[ev], false, 5000, false),
        Ok(WSA_WAIT_EVENT_0)
    );
    // A second pending operation on the signaled event resets it again.
    assert_wsa_error(post_recv(&b, s, 64, &ov, None), WsaError::WSA_IO_PENDING);
    assert!(!signaled(&b, ev));
    send_all(&a, c, b"y");
    assert_eq!(
        b.WSAWaitForMultipleEvents(&[ev], false, 5000, false),
        Ok(WSA_WAIT_EVENT_0)
    );
    assert_eq!(ov.take_received(), b"y");
}

/// Conformance: 310 — overlapped calls that fail with an error other than `WSA_IO_PENDING`
/// (not connected, MSG_PEEK, shut down, unbound, MSG_PARTIAL, bad WSABUF) never signal their
/// event or run their completion routine, and leave the caller's buffers alone.
#[test]
fn failed_start_gives_no_indication() {
    let (a, b) = two_hosts(31000);
    let (c, s) = tcp_pair(&a, &b, 31000);
    a.shutdown(c, SD_SEND).unwrap();
    let unconnected = new_socket(&a, SOCK_STREAM);
    let unbound = new_socket(&a, SOCK_DGRAM);
    let log = log();
    let mut events = Vec::new();
    // (application, socket, send?, flags, WSABUF len beyond the buffer?, expected)
    let cases = [
        (&a, unconnected, false, 0, false, WsaError::WSAENOTCONN),
        (&a, unconnected, true, 0, false, WsaError::WSAENOTCONN),
        (&b, s, false, MSG_PEEK, false, WsaError::WSAEINVAL),
        (&a, c, true, 0, false, WsaError::WSAESHUTDOWN),
        (&a, unbound, false, 0, false, WsaError::WSAEINVAL),
        (&b, s, true, MSG_PARTIAL, false, WsaError::WSAEOPNOTSUPP),
        (&b, s, false, 0, true, WsaError::WSAEFAULT),
        (&b, s, true, 0, true, WsaError::WSAEFAULT),
    ];
    for (ws, sock, send, flags, overlong, expected) in cases {
        for with_routine in [false, true] {
            let ev = ws.WSACreateEvent().unwrap();
            events.push((ws.clone(), ev));
            let ov = WSAOVERLAPPED::new(ev);
            let routine = if with_routine { recorder(&log) } else { None };
            let mut bufs = [WSABUF::new(vec![7u8; 32])];
            if overlong {
                bufs[0].len = 33;
            }
            let before = bufs.clone();
            let mut n = 0;
            let r = if send {
                ws.WSASend(sock, &mut bufs, Some(&mut n), flags, Some(&ov), routine)
            } else {
                let mut f = flags as u32;
                ws.WSARecv(
                    sock,
                    &mut bufs,
                    Some(&mut n),
                    Some(&mut f),
                    Some(&ov),
                    routine,
                )
            };
            assert_eq!(
                r,
                Err(expected),
                "socket {sock} send {send} flags {flags:#x} overlong {overlong}"
            );
            assert_eq!(WSAGetLastError(), expected.0);
            assert_eq!(bufs, before, "a call that did not start keeps its buffers");
            assert!(!ov.is_pending());
        }
    }
    thread::sleep(QUIET);
    for (ws, ev) in &events {
        assert!(!signaled(ws, *ev), "a failed call signaled its event");
    }
    assert_eq!(SleepEx(300, true), 0, "no completion routine was queued");
    assert!(calls(&log).is_empty());
    // The peer saw none of the refused sends.
    assert_eq!(fionread(&a, c), 0);
    set_nonblocking(&a, c, true);
    let mut buf = [0u8; 8];
    assert_would_block(a.recv(c, &mut buf, 0));
}

/// Conformance: 311 — `WSAGetOverlappedResult(fWait = FALSE)` on a pending operation fails with
/// `WSA_IO_INCOMPLETE` and leaves `*lpcbTransfer` alone.
#[test]
fn result_incomplete_while_pending() {
    let (a, b) = two_hosts(31100);
    let (c, s) = tcp_pair(&a, &b, 31100);
    let ev = b.WSACreateEvent().unwrap();
    let ov = WSAOVERLAPPED::new(ev);
    assert_wsa_error(post_recv(&b, s, 64, &ov, None), WsaError::WSA_IO_PENDING);
    for _ in 0..3 {
        let mut bytes = 555;
        let mut flags = 0;
        assert_wsa_error(
            b.WSAGetOverlappedResult(s, &ov, &mut bytes, false, &mut flags),
            WsaError::WSA_IO_INCOMPLETE,
        );
        assert_eq!(bytes, 555);
        thread::sleep(Duration::from_millis(50));
    }
    send_all(&a, c, b"done");
    assert!(wait_until(LONG, || result(&b, s, &ov, false) == Ok((4, 0))));
}

/// Conformance: 312 — `WSAGetOverlappedResult(fWait = TRUE)` blocks until the operation
/// completes and returns TRUE with its byte count, for a receive and for a send.
#[test]
fn result_waits_for_completion() {
    let (a, b) = two_hosts(31200);
    let (c, s) = tcp_pair(&a, &b, 31200);
    let ev = b.WSACreateEvent().unwrap();
    let ov = WSAOVERLAPPED::new(ev);
    assert_wsa_error(post_recv(&b, s, 64, &ov, None), WsaError::WSA_IO_PENDING);
    let sender = {
        let a = a.clone();
        thread::spawn(move || {
            thread::sleep(Duration::from_millis(300));
            send_all(&a, c, b"seven!!");
        })
    };
    let started = Instant::now();
    assert_eq!(result(&b, s, &ov, true), Ok((7, 0)));
    assert!(
        started.elapsed() >= Duration::from_millis(250),
        "returned before the data was sent"
    );
    sender.join().unwrap();
    assert_eq!(ov.take_received(), b"seven!!");

    // A send larger than both ends' buffers pends until the peer reads.
    let data = pattern(1 << 20, 312);
    let sev = a.WSACreateEvent().unwrap();
    let sov = WSAOVERLAPPED::new(sev);
    assert_wsa_error(
        post_send(&a, c, &data, &sov, None),
        WsaError::WSA_IO_PENDING,
    );
    let reader = {
        let b = b.clone();
        thread::spawn(move || {
            thread::sleep(Duration::from_millis(300));
            recv_exact(&b, s, 1 << 20)
        })
    };
    assert_eq!(result(&a, c, &sov, true), Ok((1 << 20, 0)));
    assert!(signaled(&a, sev));
    assert_eq!(reader.join().unwrap(), data);
}

/// Conformance: 313 — for an overlapped `WSARecv` that got only part of a datagram,
/// `WSAGetOverlappedResult` reports `MSG_PARTIAL` in `*lpdwFlags` (with UDP's `WSAEMSGSIZE`).
#[test]
fn result_reports_msg_partial() {
    let (a, b) = two_hosts(31300);
    let r = udp_bound(&b, at(B, 31300));
    let t = udp_bound(&a, at(A, 31301));
    let ev = b.WSACreateEvent().unwrap();
    let ov = WSAOVERLAPPED::new(ev);
    let mut bufs = [WSABUF::zeroed(16), WSABUF::zeroed(16)];
    let mut n = 0;
    let mut flags = 0;
    assert_wsa_error(
        b.WSARecv(
            r,
            &mut bufs,
            Some(&mut n),
            Some(&mut flags),
            Some(&ov),
            None,
        ),
        WsaError::WSA_IO_PENDING,
    );
    let big = pattern(100, 313);
    sendto(&a, t, &big, at(B, 31300)).unwrap();
    assert_eq!(
        b.WSAWaitForMultipleEvents(&[ev], false, 5000, false),
        Ok(WSA_WAIT_EVENT_0)
    );
    let mut bytes = 999;
    let mut rflags = 0;
    assert_wsa_error(
        b.WSAGetOverlappedResult(r, &ov, &mut bytes, false, &mut rflags),
        WsaError::WSAEMSGSIZE,
    );
    assert_eq!(rflags, MSG_PARTIAL as u32, "MSG_PARTIAL in *lpdwFlags");
    let back = ov.take_buffers();
    assert_eq!(back.len(), 2);
    assert_eq!(back[0].data(), &big[..16]);
    assert_eq!(back[1].data(), &big[16..32]);

    // A datagram that fits reports no MSG_PARTIAL.
    let ov2 = WSAOVERLAPPED::new(ev);
    assert_wsa_error(post_recv(&b, r, 200, &ov2, None), WsaError::WSA_IO_PENDING);
    sendto(&a, t, &big, at(B, 31300)).unwrap();
    assert_eq!(result(&b, r, &ov2, true), Ok((100, 0)));
}

/// Conformance: 314 — `WSAGetOverlappedResult` for an operation that completed with an error
/// returns FALSE, `WSAGetLastError` gives that error, and `*lpcbTransfer` is not updated.
#[test]
fn result_reports_operation_error() {
    let (a, b) = two_hosts(31400);
    let (c, s) = tcp_pair(&a, &b, 31400);
    let ev = b.WSACreateEvent().unwrap();
    let ov = WSAOVERLAPPED::new(ev);
    assert_wsa_error(post_recv(&b, s, 64, &ov, None), WsaError::WSA_IO_PENDING);
    set_linger(&a, c, 1, 0);
    a.closesocket(c).unwrap(); // abortive: RST
    assert_eq!(
        b.WSAWaitForMultipleEvents(&[ev], false, 5000, false),
        Ok(WSA_WAIT_EVENT_0)
    );
    for wait in [false, true] {
        let mut bytes = 4242;
        let mut flags = 0;
        assert_wsa_error(
            b.WSAGetOverlappedResult(s, &ov, &mut bytes, wait, &mut flags),
            WsaError::WSAECONNRESET,
        );
        assert_eq!(bytes, 4242, "*lpcbTransfer is not updated on failure");
    }
    assert_eq!(ov.Internal(), WsaError::WSAECONNRESET.0);
}

/// Conformance: 315 — `WSAGetOverlappedResult(fWait = TRUE)` for a pending operation whose
/// `hEvent` is not a valid event fails with `WSA_INVALID_HANDLE` instead of waiting.
#[test]
fn result_with_invalid_event() {
    let (a, b) = two_hosts(31500);
    let (c, s) = tcp_pair(&a, &b, 31500);
    let ev = b.WSACreateEvent().unwrap();
    let ov = WSAOVERLAPPED::new(ev);
    assert_wsa_error(post_recv(&b, s, 64, &ov, None), WsaError::WSA_IO_PENDING);
    // The same operation seen through a WSAOVERLAPPED whose hEvent was overwritten.
    let mut bogus = ov.clone();
    bogus.hEvent = 0x7fff_0001;
    b.WSACloseEvent(ev).unwrap();
    let (tx, rx) = mpsc::channel();
    {
        let b = b.clone();
        let ov = ov.clone();
        thread::spawn(move || {
            let closed = result(&b, s, &ov, true);
            let errs = (closed, WSAGetLastError(), result(&b, s, &bogus, true));
            tx.send(errs).unwrap();
        });
    }
    let (closed, last, overwritten) = rx
        .recv_timeout(LONG)
        .expect("WSAGetOverlappedResult did not wait on an invalid event");
    assert_eq!(closed, Err(WsaError::WSA_INVALID_HANDLE));
    assert_eq!(last, WsaError::WSA_INVALID_HANDLE.0);
    assert_eq!(overwritten, Err(WsaError::WSA_INVALID_HANDLE));
    assert!(ov.is_pending(), "the operation itself goes on");
    send_all(&a, c, b"late");
    completes(&ov);
    assert_eq!(result(&b, s, &ov, false), Ok((4, 0)));
}

/// Conformance: 183, 316 — three overlapped `WSASend`s A, B, C put A's bytes, then B's, then C's
/// on the wire, even though the WSABUF arrays were dropped as soon as each call returned
/// (`WSA_IO_PENDING`); each completes with its own count and its data back intact.
#[test]
fn sends_go_out_in_issue_order() {
    let (a, b) = two_hosts(31600);
    let (c, s) = tcp_pair(&a, &b, 31600);
    let parts = [
        pattern(100_000, 3161),
        pattern(150_000, 3162),
        pattern(50_000, 3163),
    ];
    let mut ovs = Vec::new();
    let mut outcomes = Vec::new();
    for part in &parts {
        let ev = a.WSACreateEvent().unwrap();
        let ov = WSAOVERLAPPED::new(ev);
        {
            // The array (and its buffers' handles) lives only for the call.
            let (x, y) = part.split_at(part.len() / 3);
            let mut array = vec![WSABUF::new(x.to_vec()), WSABUF::new(y.to_vec())];
            let mut n = 0;
            outcomes.push(a.WSASend(c, &mut array, Some(&mut n), 0, Some(&ov), None));
            drop(array);
        }
        ovs.push((ev, ov));
    }
    assert_eq!(
        outcomes[1],
        Err(WsaError::WSA_IO_PENDING),
        "B cannot fit in the buffers while nobody reads"
    );
    assert_eq!(outcomes[2], Err(WsaError::WSA_IO_PENDING), "C waits for B");
    let total: usize = parts.iter().map(Vec::len).sum();
    let got = recv_exact(&b, s, total);
    assert_eq!(got.len(), total);
    assert!(got[..100_000] == parts[0], "A first");
    assert!(got[100_000..250_000] == parts[1], "then B");
    assert!(got[250_000..] == parts[2], "then C");
    for ((ev, ov), part) in ovs.iter().zip(&parts) {
        assert_eq!(
            a.WSAWaitForMultipleEvents(&[*ev], false, 5000, false),
            Ok(WSA_WAIT_EVENT_0)
        );
        assert_eq!(result(&a, c, ov, false), Ok((part.len() as u32, 0)));
        let back: Vec<u8> = ov
            .take_buffers()
            .iter()
            .flat_map(|b| b.data().to_vec())
            .collect();
        assert!(back == *part, "the buffers come back unchanged");
    }
}

/// Conformance: 317 — three overlapped `WSARecv`s posted A, B, C receive consecutive portions of
/// the stream in that order.
#[test]
fn receives_fill_in_post_order() {
    let (a, b) = two_hosts(31700);
    let (c, s) = tcp_pair(&a, &b, 31700);
    let mut posted = Vec::new();
    for _ in 0..3 {
        let ev = b.WSACreateEvent().unwrap();
        let ov = WSAOVERLAPPED::new(ev);
        assert_wsa_error(post_recv(&b, s, 1000, &ov, None), WsaError::WSA_IO_PENDING);
        posted.push((ev, ov));
    }
    let data = pattern(3000, 317);
    send_all(&a, c, &data);
    let evs: Vec<WSAEVENT> = posted.iter().map(|p| p.0).collect();
    assert_eq!(
        b.WSAWaitForMultipleEvents(&evs, true, 5000, false),
        Ok(WSA_WAIT_EVENT_0),
        "all three receives complete"
    );
    let mut got = Vec::new();
    for (_, ov) in &posted {
        let part = ov.take_received();
        assert!(!part.is_empty(), "each receive got data");
        got.extend_from_slice(&part);
    }
    assert!(got.len() <= 3000);
    assert!(
        got[..] == data[..got.len()],
        "A, B, C hold consecutive portions"
    );
    let rest = recv_exact(&b, s, 3000 - got.len());
    assert!(rest[..] == data[got.len()..], "the rest follows");
}

/// Conformance: 318 — an overlapped stream `WSARecv` with a 1000-byte buffer completes with 10
/// bytes when only 10 bytes arrive.
#[test]
fn stream_recv_completes_with_what_arrived() {
    let (a, b) = two_hosts(31800);
    let (c, s) = tcp_pair(&a, &b, 31800);
    let ev = b.WSACreateEvent().unwrap();
    let ov = WSAOVERLAPPED::new(ev);
    assert_wsa_error(post_recv(&b, s, 1000, &ov, None), WsaError::WSA_IO_PENDING);
    send_all(&a, c, b"0123456789");
    assert_eq!(
        b.WSAWaitForMultipleEvents(&[ev], false, 5000, false),
        Ok(WSA_WAIT_EVENT_0)
    );
    assert_eq!(result(&b, s, &ov, false), Ok((10, 0)));
    let back = ov.take_buffers();
    assert_eq!(back[0].buf.len(), 1000);
    assert_eq!(&back[0].buf[..10], b"0123456789");
    assert!(back[0].buf[10..].iter().all(|&x| x == 0), "no bytes beyond");
}

/// Conformance: 319 — on an overlapped, blocking socket, `WSARecv` with `lpOverlapped` NULL
/// blocks until data arrives like a nonoverlapped call; a completion routine passed without a
/// `WSAOVERLAPPED` is ignored.
#[test]
fn null_overlapped_behaves_synchronously() {
    let (a, b) = two_hosts(31900);
    let (c, s) = tcp_pair(&a, &b, 31900);
    let sender = {
        let a = a.clone();
        thread::spawn(move || {
            thread::sleep(Duration::from_millis(300));
            send_all(&a, c, b"blocking");
        })
    };
    let started = Instant::now();
    let mut bufs = [WSABUF::zeroed(64)];
    let mut n = 0;
    let mut flags = 0;
    b.WSARecv(s, &mut bufs, Some(&mut n), Some(&mut flags), None, None)
        .expect("WSARecv");
    assert!(
        started.elapsed() >= Duration::from_millis(250),
        "returned before the data was sent"
    );
    assert_eq!(n, 8);
    assert_eq!(&bufs[0].buf[..8], b"blocking");
    assert_eq!(
        bufs[0].buf.len(),
        64,
        "the caller's buffer was written in place"
    );
    sender.join().unwrap();

    let log = log();
    send_all(&a, c, b"again");
    let mut bufs = [WSABUF::zeroed(64)];
    b.WSARecv(
        s,
        &mut bufs,
        Some(&mut n),
        Some(&mut flags),
        None,
        recorder(&log),
    )
    .expect("WSARecv");
    assert_eq!(n, 5);
    assert_eq!(&bufs[0].buf[..5], b"again");
    assert_eq!(SleepEx(300, true), 0, "no routine for a synchronous call");
    assert!(calls(&log).is_empty());
}

/// Conformance: 320 — with `hEvent` NULL and no routine the operation completes with no
/// notification at all, and `WSAGetOverlappedResult(fWait = FALSE)` eventually returns TRUE.
#[test]
fn completion_without_mechanism() {
    let (a, b) = two_hosts(32000);
    let (c, s) = tcp_pair(&a, &b, 32000);
    let ov = WSAOVERLAPPED::new(0);
    assert_wsa_error(post_recv(&b, s, 64, &ov, None), WsaError::WSA_IO_PENDING);
    assert_wsa_error(result(&b, s, &ov, false), WsaError::WSA_IO_INCOMPLETE);
    send_all(&a, c, b"quiet");
    assert!(
        wait_until(LONG, || result(&b, s, &ov, false) == Ok((5, 0))),
        "WSAGetOverlappedResult reports the completion"
    );
    assert_eq!(SleepEx(200, true), 0, "nothing was queued for this thread");
    assert_eq!(ov.take_received(), b"quiet");
}

/// Conformance: 321, 323 — a completion routine does not run while the issuing thread sleeps or
/// waits non-alertably, nor in another thread's alertable wait; it runs, on the issuing thread,
/// once that thread waits alertably.
#[test]
fn routine_waits_for_alertable_wait() {
    let (a, b) = two_hosts(32100);
    let (c, s) = tcp_pair(&a, &b, 32100);
    let log = log();
    let ov = WSAOVERLAPPED::new(0);
    assert_wsa_error(
        post_recv(&b, s, 64, &ov, recorder(&log)),
        WsaError::WSA_IO_PENDING,
    );
    send_all(&a, c, b"apc");
    completes(&ov);
    thread::sleep(QUIET);
    assert!(calls(&log).is_empty(), "ran without any wait");
    assert_eq!(SleepEx(250, false), 0);
    assert!(calls(&log).is_empty(), "ran in a non-alertable SleepEx");
    let ev = b.WSACreateEvent().unwrap();
    assert_eq!(
        b.WSAWaitForMultipleEvents(&[ev], false, 250, false),
        Ok(WSA_WAIT_TIMEOUT),
        "a non-alertable wait does not report I/O completion"
    );
    assert!(calls(&log).is_empty(), "ran in a non-alertable wait");
    let other = {
        let b = b.clone();
        thread::spawn(move || {
            let ev = b.WSACreateEvent().unwrap();
            (
                SleepEx(250, true),
                b.WSAWaitForMultipleEvents(&[ev], false, 250, true),
            )
        })
    };
    assert_eq!(other.join().unwrap(), (0, Ok(WSA_WAIT_TIMEOUT)));
    assert!(calls(&log).is_empty(), "ran on another thread");
    assert_eq!(
        b.WSAWaitForMultipleEvents(&[ev], false, 5000, true),
        Ok(WSA_WAIT_IO_COMPLETION)
    );
    let got = calls(&log);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].data, b"apc");
    assert_eq!(
        got[0].thread,
        thread::current().id(),
        "on the issuing thread"
    );
}

/// Conformance: 322 — one alertable wait runs every queued completion routine (of several
/// operations and sockets) and then returns `WSA_WAIT_IO_COMPLETION`.
#[test]
fn alertable_wait_runs_every_routine() {
    let (a, b) = two_hosts(32200);
    let (c, s) = tcp_pair(&a, &b, 32200);
    let ur = udp_bound(&b, at(B, 32201));
    let ut = udp_bound(&a, at(A, 32202));
    let log = log();
    let mut ovs = Vec::new();
    for i in 0..3 {
        let ov = WSAOVERLAPPED::new(100 + i);
        assert_wsa_error(
            post_recv(&b, s, 10, &ov, recorder(&log)),
            WsaError::WSA_IO_PENDING,
        );
        ovs.push(ov);
    }
    let uov = WSAOVERLAPPED::new(200);
    assert_wsa_error(
        post_recv(&b, ur, 100, &uov, recorder(&log)),
        WsaError::WSA_IO_PENDING,
    );
    ovs.push(uov);
    let data = pattern(30, 322);
    send_all(&a, c, &data);
    sendto(&a, ut, b"datagram", at(B, 32201)).unwrap();
    for ov in &ovs {
        completes(ov);
    }
    assert!(calls(&log).is_empty());
    let ev = b.WSACreateEvent().unwrap();
    assert_eq!(
        b.WSAWaitForMultipleEvents(&[ev], false, 5000, true),
        Ok(WSA_WAIT_IO_COMPLETION)
    );
    let got = calls(&log);
    assert_eq!(
        got.len(),
        4,
        "every queued routine ran in the one wait: {got:?}"
    );
    let mut contexts: Vec<usize> = got.iter().map(|c| c.context).collect();
    contexts.sort();
    assert_eq!(contexts, [100, 101, 102, 200]);
    let mut stream: Vec<&Call> = got.iter().filter(|c| c.context < 200).collect();
    stream.sort_by_key(|c| c.context);
    let joined: Vec<u8> = stream.iter().flat_map(|c| c.data.clone()).collect();
    assert_eq!(joined, data);
    let dgram = got.iter().find(|c| c.context == 200).unwrap();
    assert_eq!(dgram.data, b"datagram");
    // Nothing left: the next alertable wait sees only the event.
    b.WSASetEvent(ev).unwrap();
    assert_eq!(
        b.WSAWaitForMultipleEvents(&[ev], false, 0, true),
        Ok(WSA_WAIT_EVENT_0)
    );
}

/// Conformance: 324 — a completion routine gets the status in `dwError`, the byte count in
/// `cbTransferred`, the caller's `lpOverlapped` (its `hEvent` context and its buffers), and
/// `dwFlags` = 0 for sends; a failed receive reports its error.
#[test]
fn routine_arguments() {
    let (a, b) = two_hosts(32400);
    let (c, s) = tcp_pair(&a, &b, 32400);
    let log = log();
    let sov = WSAOVERLAPPED::new(0xC0FFEE);
    let data = pattern(3000, 324);
    let r = post_send(&a, c, &data, &sov, recorder(&log));
    assert!(
        matches!(r, Ok(3000) | Err(WsaError::WSA_IO_PENDING)),
        "send started: {r:?}"
    );
    completes(&sov);
    assert_eq!(SleepEx(5000, true), WAIT_IO_COMPLETION);
    let got = calls(&log);
    assert_eq!(got.len(), 1);
    assert_eq!(
        (got[0].error, got[0].bytes, got[0].context, got[0].flags),
        (0, 3000, 0xC0FFEE, 0)
    );
    assert_eq!(
        got[0].data, data,
        "the routine's lpOverlapped holds the operation"
    );
    assert!(
        sov.take_buffers().is_empty(),
        "the routine's lpOverlapped is the caller's: its buffers were taken there"
    );
    assert_eq!(recv_exact(&b, s, 3000), data);

    // A receive that ends with a reset reports the error and no bytes.
    let rov = WSAOVERLAPPED::new(0xBEEF);
    assert_wsa_error(
        post_recv(&a, c, 64, &rov, recorder(&log)),
        WsaError::WSA_IO_PENDING,
    );
    set_linger(&b, s, 1, 0);
    b.closesocket(s).unwrap();
    completes(&rov);
    assert_eq!(SleepEx(5000, true), WAIT_IO_COMPLETION);
    let got = calls(&log);
    assert_eq!(got.len(), 2);
    assert_eq!(
        (got[1].error, got[1].bytes, got[1].context),
        (WsaError::WSAECONNRESET.0 as u32, 0, 0xBEEF)
    );
}

/// Conformance: 325 — an overlapped `WSARecv` with a routine that completes at once returns 0
/// with the count, and the routine still runs later, in an alertable wait.
#[test]
fn immediate_completion_still_runs_routine() {
    let (a, b) = two_hosts(32500);
    let (c, s) = tcp_pair(&a, &b, 32500);
    send_all(&a, c, b"queued");
    assert!(wait_until(LONG, || fionread(&b, s) == 6));
    let log = log();
    let ov = WSAOVERLAPPED::new(0);
    assert_eq!(post_recv(&b, s, 64, &ov, recorder(&log)), Ok(6));
    assert!(
        calls(&log).is_empty(),
        "the routine does not run inside the call"
    );
    assert_eq!(SleepEx(5000, true), WAIT_IO_COMPLETION);
    let got = calls(&log);
    assert_eq!(got.len(), 1);
    assert_eq!((got[0].error, got[0].bytes), (0, 6));
    assert_eq!(got[0].data, b"queued");
}

/// Conformance: 326 — a completion routine may issue new overlapped operations on the same
/// socket: here it echoes with `WSASend` and posts the next `WSARecv`.
#[test]
fn routine_issues_new_operations() {
    let (a, b) = two_hosts(32600);
    let (c, s) = tcp_pair(&a, &b, 32600);
    let log = log();
    let issued = Arc::new(Mutex::new(Vec::new()));
    let routine: LPWSAOVERLAPPED_COMPLETION_ROUTINE = {
        let (b, log, issued) = (b.clone(), log.clone(), issued.clone());
        Box::new(move |error, bytes, ov: &WSAOVERLAPPED, _flags| {
            let got = ov.take_received();
            assert_eq!((error, bytes), (0, 4));
            let echo = WSAOVERLAPPED::new(0);
            let sent = post_send(&b, s, &[b"re:".as_slice(), &got].concat(), &echo, None);
            let next = WSAOVERLAPPED::new(7);
            let posted = post_recv(&b, s, 64, &next, recorder(&log));
            issued.lock().unwrap().push((sent, posted, next));
        })
    };
    let ov = WSAOVERLAPPED::new(0);
    assert_wsa_error(
        post_recv(&b, s, 4, &ov, Some(routine)),
        WsaError::WSA_IO_PENDING,
    );
    send_all(&a, c, b"ping");
    assert_eq!(alertable_wait(&b, 5000), WSA_WAIT_IO_COMPLETION);
    {
        let issued = issued.lock().unwrap();
        assert_eq!(issued.len(), 1, "the routine ran");
        assert_eq!(issued[0].0, Ok(7), "the echo was sent");
        assert_eq!(
            issued[0].1,
            Err(WsaError::WSA_IO_PENDING),
            "the next receive pends"
        );
    }
    assert_eq!(recv_exact(&a, c, 7), b"re:ping");
    send_all(&a, c, b"next");
    assert_eq!(alertable_wait(&b, 5000), WSA_WAIT_IO_COMPLETION);
    let got = calls(&log);
    assert_eq!(got.len(), 1);
    assert_eq!(
        (got[0].context, got[0].data.as_slice()),
        (7, b"next".as_slice())
    );
}

/// Conformance: 327 — completion routines of one socket never run nested: an operation issued
/// inside a routine that completes at once queues its routine, which an alertable wait inside
/// the first routine does not run; it runs after the first returns.
#[test]
fn routines_never_nested_per_socket() {
    let (a, b) = two_hosts(32700);
    let (c, s) = tcp_pair(&a, &b, 32700);
    send_all(&a, c, b"firstsecnd");
    assert!(wait_until(LONG, || fionread(&b, s) == 10));
    let trace = Arc::new(Mutex::new(Vec::<String>::new()));
    let depth = Arc::new(AtomicUsize::new(0));
    let second: LPWSAOVERLAPPED_COMPLETION_ROUTINE = {
        let (trace, depth) = (trace.clone(), depth.clone());
        Box::new(move |_e, _n, ov: &WSAOVERLAPPED, _f| {
            let d = depth.load(Ordering::SeqCst);
            let data = String::from_utf8(ov.take_received()).unwrap();
            trace
                .lock()
                .unwrap()
                .push(format!("second {data} depth {d}"));
        })
    };
    let first: LPWSAOVERLAPPED_COMPLETION_ROUTINE = {
        let (b, trace, depth) = (b.clone(), trace.clone(), depth.clone());
        Box::new(move |_e, _n, ov: &WSAOVERLAPPED, _f| {
            depth.fetch_add(1, Ordering::SeqCst);
            let data = String::from_utf8(ov.take_received()).unwrap();
            trace.lock().unwrap().push(format!("first {data}"));
            let next = WSAOVERLAPPED::new(0);
            let r = post_recv(&b, s, 5, &next, Some(second));
            trace.lock().unwrap().push(format!("issued {r:?}"));
            let inner = SleepEx(200, true);
            let ev = b.WSACreateEvent().unwrap();
            let inner2 = b.WSAWaitForMultipleEvents(&[ev], false, 200, true);
            trace
                .lock()
                .unwrap()
                .push(format!("inner waits {inner} {inner2:?}"));
            depth.fetch_sub(1, Ordering::SeqCst);
        })
    };
    let ov = WSAOVERLAPPED::new(0);
    assert_eq!(post_recv(&b, s, 5, &ov, Some(first)), Ok(5));
    assert_eq!(SleepEx(5000, true), WAIT_IO_COMPLETION);
    assert_eq!(
        *trace.lock().unwrap(),
        [
            "first first".to_string(),
            "issued Ok(5)".to_string(),
            format!("inner waits 0 {:?}", Ok::<u32, WsaError>(WSA_WAIT_TIMEOUT)),
            "second secnd depth 0".to_string(),
        ]
    );
}

/// Conformance: 328 — with a completion routine, `hEvent` is the application's: it may hold a
/// value that is no event, and a real event named there is neither signaled at completion nor
/// reset when the call pends.
#[test]
fn routine_leaves_hevent_alone() {
    let (a, b) = two_hosts(32800);
    let (c, s) = tcp_pair(&a, &b, 32800);
    let log = log();
    let ev = b.WSACreateEvent().unwrap();
    let ov = WSAOVERLAPPED::new(ev);
    assert_wsa_error(
        post_recv(&b, s, 64, &ov, recorder(&log)),
        WsaError::WSA_IO_PENDING,
    );
    send_all(&a, c, b"one");
    completes(&ov);
    thread::sleep(Duration::from_millis(100));
    assert!(
        !signaled(&b, ev),
        "completion with a routine does not signal hEvent"
    );
    assert_eq!(SleepEx(5000, true), WAIT_IO_COMPLETION);
    assert!(!signaled(&b, ev));

    b.WSASetEvent(ev).unwrap();
    let ov2 = WSAOVERLAPPED::new(ev);
    assert_wsa_error(
        post_recv(&b, s, 64, &ov2, recorder(&log)),
        WsaError::WSA_IO_PENDING,
    );
    assert!(
        signaled(&b, ev),
        "a pending call with a routine does not reset hEvent"
    );

    let ov3 = WSAOVERLAPPED::new(0xDEAD_BEEF);
    let mut bufs = [WSABUF::zeroed(64)];
    let mut n = 0;
    let mut flags = 0;
    // ov2 holds the first bytes; ov3 the next ones.
    assert_wsa_error(
        b.WSARecv(
            s,
            &mut bufs,
            Some(&mut n),
            Some(&mut flags),
            Some(&ov3),
            recorder(&log),
        ),
        WsaError::WSA_IO_PENDING,
    );
    send_all(&a, c, b"two");
    completes(&ov2);
    thread::sleep(Duration::from_millis(100));
    send_all(&a, c, b"three");
    completes(&ov3);
    assert_eq!(SleepEx(5000, true), WAIT_IO_COMPLETION);
    let got = calls(&log);
    assert_eq!(got.len(), 3);
    assert_eq!(got[1].data, b"two");
    assert_eq!(
        (got[2].context, got[2].data.as_slice()),
        (0xDEAD_BEEF, b"three".as_slice())
    );
}

/// Conformance: 329 — an overlapped `WSARecvFrom` that pends leaves `*lpFrom`/`*lpFromlen`
/// unchanged; the sender is filled in at completion (the Rust face keeps it in
/// `WSAOVERLAPPED::from`); one that completes at once fills `lpFrom` before returning.
#[test]
fn recvfrom_source_filled_at_completion() {
    let (a, b) = two_hosts(32900);
    let r = udp_bound(&b, at(B, 32900));
    let t = udp_bound(&a, at(A, 32901));
    let ev = b.WSACreateEvent().unwrap();
    let ov = WSAOVERLAPPED::new(ev);
    let sentinel = SOCKADDR_IN::new(at(std::net::Ipv4Addr::new(9, 9, 9, 9), 9));
    let mut from = sentinel;
    let mut fromlen = 99;
    let mut bufs = [WSABUF::zeroed(64)];
    let mut n = 0;
    let mut flags = 0;
    assert_wsa_error(
        b.WSARecvFrom(
            r,
            &mut bufs,
            Some(&mut n),
            Some(&mut flags),
            Some(&mut from),
            Some(&mut fromlen),
            Some(&ov),
            None,
        ),
        WsaError::WSA_IO_PENDING,
    );
    assert_eq!(from, sentinel, "*lpFrom unchanged while pending");
    assert_eq!(fromlen, 99, "*lpFromlen unchanged while pending");
    assert_eq!(ov.from(), None);
    sendto(&a, t, b"who", at(B, 32900)).unwrap();
    assert_eq!(result(&b, r, &ov, true), Ok((3, 0)));
    assert_eq!(ov.from(), Some(at(A, 32901)), "the sender, at completion");
    assert_eq!(ov.take_received(), b"who");

    // Completing at once: lpFrom is written by the call.
    sendto(&a, t, b"now", at(B, 32900)).unwrap();
    assert!(wait_until(LONG, || fionread(&b, r) == 3));
    let ov2 = WSAOVERLAPPED::new(ev);
    let mut bufs = [WSABUF::zeroed(64)];
    let mut fromlen = SOCKADDR_IN_LEN;
    let mut from = sentinel;
    b.WSARecvFrom(
        r,
        &mut bufs,
        Some(&mut n),
        Some(&mut flags),
        Some(&mut from),
        Some(&mut fromlen),
        Some(&ov2),
        None,
    )
    .expect("completes at once");
    assert_eq!(n, 3);
    assert_eq!(from.to_socket_addr(), at(A, 32901));
    assert_eq!(fromlen, SOCKADDR_IN_LEN);
}

/// Conformance: 203, 330 — more outstanding overlapped receives than the per-socket limit
/// (1024) fail with `WSAEWOULDBLOCK` and give no indication; `closesocket` then ends every
/// pending one with `WSA_OPERATION_ABORTED` without signalling events or running routines
/// (D-10).
#[test]
fn too_many_outstanding_then_close_aborts() {
    let (a, b) = two_hosts(33000);
    let (_c, s) = tcp_pair(&a, &b, 33000);
    let log = log();
    let ev = b.WSACreateEvent().unwrap();
    let mut ovs = Vec::new();
    for i in 0..1024 {
        let ov = WSAOVERLAPPED::new(if i == 0 { ev } else { 0 });
        let routine = if i == 1 { recorder(&log) } else { None };
        assert_wsa_error(post_recv(&b, s, 8, &ov, routine), WsaError::WSA_IO_PENDING);
        ovs.push(ov);
    }
    let extra_ev = b.WSACreateEvent().unwrap();
    let extra = WSAOVERLAPPED::new(extra_ev);
    let mut bufs = [WSABUF::new(vec![5u8; 8])];
    let mut n = 0;
    let mut flags = 0;
    assert_wsa_error(
        b.WSARecv(
            s,
            &mut bufs,
            Some(&mut n),
            Some(&mut flags),
            Some(&extra),
            None,
        ),
        WsaError::WSAEWOULDBLOCK,
    );
    assert_eq!(
        bufs[0].buf,
        vec![5u8; 8],
        "the refused call keeps its buffer"
    );
    assert!(
        result(&b, s, &extra, false).is_err(),
        "an operation that never started has no result"
    );
    let extra_log = self::log();
    assert_wsa_error(
        post_recv(&b, s, 8, &WSAOVERLAPPED::new(0), recorder(&extra_log)),
        WsaError::WSAEWOULDBLOCK,
    );
    // The other direction has its own limit.
    let sov = WSAOVERLAPPED::new(0);
    assert_eq!(post_send(&b, s, b"fine", &sov, None), Ok(4));

    b.closesocket(s).unwrap();
    thread::sleep(QUIET);
    assert!(!signaled(&b, ev), "D-10: no event for an aborted operation");
    assert!(
        !signaled(&b, extra_ev),
        "the refused call has no indication"
    );
    assert_eq!(
        SleepEx(300, true),
        0,
        "D-10: no routine for an aborted operation"
    );
    assert!(calls(&log).is_empty() && calls(&extra_log).is_empty());
    for ov in &ovs {
        assert!(!ov.is_pending());
        assert_eq!(ov.Internal(), WsaError::WSA_OPERATION_ABORTED.0);
    }
    assert_eq!(ovs[0].take_buffers().len(), 1, "the buffers come back");
    let mut bytes = 0;
    let mut f = 0;
    assert_wsa_error(
        b.WSAGetOverlappedResult(s, &ovs[0], &mut bytes, false, &mut f),
        WsaError::WSAENOTSOCK,
    );
}

/// Conformance: 12 — the final `WSACleanup` ends pending overlapped operations with
/// `WSA_OPERATION_ABORTED` without signalling their events or running their routines.
#[test]
fn cleanup_aborts_silently() {
    let (a, b) = two_hosts(33050);
    let (_c, s) = tcp_pair(&a, &b, 33050);
    let log = log();
    let ev = b.WSACreateEvent().unwrap();
    let ov1 = WSAOVERLAPPED::new(ev);
    let ov2 = WSAOVERLAPPED::new(0);
    assert_wsa_error(post_recv(&b, s, 8, &ov1, None), WsaError::WSA_IO_PENDING);
    assert_wsa_error(
        post_recv(&b, s, 8, &ov2, recorder(&log)),
        WsaError::WSA_IO_PENDING,
    );
    b.WSACleanup().unwrap();
    thread::sleep(QUIET);
    assert_eq!(SleepEx(300, true), 0);
    assert!(calls(&log).is_empty());
    assert_eq!(ov1.Internal(), WsaError::WSA_OPERATION_ABORTED.0);
    assert_eq!(ov2.Internal(), WsaError::WSA_OPERATION_ABORTED.0);
    // Event objects outlive WSACleanup (they are the process's): start again and look.
    let mut data = WSADATA::default();
    assert_eq!(b.WSAStartup(MAKEWORD(2, 2), Some(&mut data)), 0);
    assert_eq!(
        b.WSAWaitForMultipleEvents(&[ev], false, 0, false),
        Ok(WSA_WAIT_TIMEOUT),
        "D-10: the event was not signaled"
    );
}

/// Conformance: 331 — `WSAIoctl(SIO_FLUSH)` ends the queued overlapped sends with
/// `WSA_OPERATION_ABORTED`, with their normal indications (event, routine) (D-10).
#[test]
fn sio_flush_aborts_queued_sends() {
    let (a, b) = two_hosts(33100);
    let (c, _s) = tcp_pair(&a, &b, 33100);
    let log = log();
    let ev = a.WSACreateEvent().unwrap();
    let big = pattern(1 << 20, 331);
    let ov1 = WSAOVERLAPPED::new(ev);
    assert_wsa_error(post_send(&a, c, &big, &ov1, None), WsaError::WSA_IO_PENDING);
    let ov2 = WSAOVERLAPPED::new(0x5150);
    assert_wsa_error(
        post_send(&a, c, &big[..100_000], &ov2, recorder(&log)),
        WsaError::WSA_IO_PENDING,
    );
    thread::sleep(QUIET);
    assert!(
        ov1.is_pending() && ov2.is_pending(),
        "nobody reads: still queued"
    );
    let mut returned = 77;
    a.WSAIoctl(c, SIO_FLUSH, &[], &mut [], Some(&mut returned), None, None)
        .expect("SIO_FLUSH");
    assert_eq!(returned, 0);
    assert_eq!(
        a.WSAWaitForMultipleEvents(&[ev], false, 5000, false),
        Ok(WSA_WAIT_EVENT_0)
    );
    assert_wsa_error(result(&a, c, &ov1, false), WsaError::WSA_OPERATION_ABORTED);
    assert_eq!(SleepEx(5000, true), WAIT_IO_COMPLETION);
    let got = calls(&log);
    assert_eq!(got.len(), 1);
    assert_eq!(
        (got[0].error, got[0].context, got[0].flags),
        (WsaError::WSA_OPERATION_ABORTED.0 as u32, 0x5150, 0)
    );
    let back: Vec<u8> = ov1
        .take_buffers()
        .iter()
        .flat_map(|b| b.data().to_vec())
        .collect();
    assert!(back == big, "the aborted send's buffer comes back");
}

/// Conformance: 332 — an overlapped `WSAIoctl` that completes at once (here every one does, so
/// the pending half cannot occur) returns 0 with `*lpcbBytesReturned` set, its event signaled
/// or its routine queued with `cbTransferred` = output bytes and `dwFlags` = 0.
#[test]
fn overlapped_ioctl_completes_at_once() {
    let (a, b) = two_hosts(33200);
    let (c, s) = tcp_pair(&a, &b, 33200);
    send_all(&a, c, &pattern(42, 332));
    assert!(wait_until(LONG, || fionread(&b, s) == 42));
    let ev = b.WSACreateEvent().unwrap();
    let ov = WSAOVERLAPPED::new(ev);
    let mut out = [0u8; 4];
    let mut returned = 0;
    b.WSAIoctl(
        s,
        FIONREAD as u32,
        &[],
        &mut out,
        Some(&mut returned),
        Some(&ov),
        None,
    )
    .expect("completes immediately");
    assert_eq!(returned, 4);
    assert_eq!(u32::from_ne_bytes(out), 42);
    assert!(signaled(&b, ev), "the event is signaled on return");
    assert_eq!(result(&b, s, &ov, false), Ok((4, 0)));

    let log = log();
    let ov2 = WSAOVERLAPPED::new(0x10C);
    let mut out = [0u8; 4];
    let mut returned = 0;
    b.WSAIoctl(
        s,
        SIOCATMARK as u32,
        &[],
        &mut out,
        Some(&mut returned),
        Some(&ov2),
        recorder(&log),
    )
    .expect("completes immediately");
    assert_eq!(returned, 4);
    assert!(calls(&log).is_empty(), "the routine runs later");
    assert_eq!(SleepEx(5000, true), WAIT_IO_COMPLETION);
    let got = calls(&log);
    assert_eq!(got.len(), 1);
    assert_eq!(
        (got[0].error, got[0].bytes, got[0].context, got[0].flags),
        (0, 4, 0x10C, 0)
    );
}

// ---- group G ------------------------------------------------------------------------------

/// Conformance: 180 — `WSASend` with three WSABUFs sends their contents (`len` bytes of each)
/// concatenated in array order, overlapped or not.
#[test]
fn gather_send_in_array_order() {
    let (a, b) = two_hosts(18000);
    let (c, s) = tcp_pair(&a, &b, 18000);
    let mut middle = WSABUF::new(b"defXYZ".to_vec());
    middle.len = 3;
    let mut bufs = [
        WSABUF::new(b"abc".to_vec()),
        middle,
        WSABUF::new(b"ghij".to_vec()),
    ];
    let mut n = 0;
    a.WSASend(c, &mut bufs, Some(&mut n), 0, None, None)
        .unwrap();
    assert_eq!(n, 10);
    assert_eq!(recv_exact(&b, s, 10), b"abcdefghij");

    let ev = a.WSACreateEvent().unwrap();
    let ov = WSAOVERLAPPED::new(ev);
    let mut bufs = [
        WSABUF::new(b"123".to_vec()),
        WSABUF::new(Vec::new()),
        WSABUF::new(b"45678".to_vec()),
    ];
    match a.WSASend(c, &mut bufs, Some(&mut n), 0, Some(&ov), None) {
        Ok(()) => assert_eq!(n, 8),
        Err(e) => assert_eq!(e, WsaError::WSA_IO_PENDING),
    }
    assert_eq!(result(&a, c, &ov, true), Ok((8, 0)));
    assert_eq!(recv_exact(&b, s, 8), b"12345678");
}

/// Conformance: 181 — `WSARecv` with several WSABUFs fills them in array order with no holes,
/// overlapped or not, and leaves bytes past the data untouched.
#[test]
fn scatter_recv_in_array_order() {
    let (a, b) = two_hosts(18100);
    let (c, s) = tcp_pair(&a, &b, 18100);
    let data = pattern(25, 181);
    send_all(&a, c, &data);
    assert!(wait_until(LONG, || fionread(&b, s) == 25));
    let mut bufs = [
        WSABUF::new(vec![0xEE; 10]),
        WSABUF::new(vec![0xEE; 10]),
        WSABUF::new(vec![0xEE; 10]),
    ];
    let mut n = 0;
    let mut flags = 0;
    b.WSARecv(s, &mut bufs, Some(&mut n), Some(&mut flags), None, None)
        .unwrap();
    assert_eq!(n, 25);
    assert_eq!(bufs[0].buf, data[..10]);
    assert_eq!(bufs[1].buf, data[10..20]);
    assert_eq!(&bufs[2].buf[..5], &data[20..]);
    assert_eq!(&bufs[2].buf[5..], &[0xEE; 5]);

    let ev = b.WSACreateEvent().unwrap();
    let ov = WSAOVERLAPPED::new(ev);
    let mut bufs = [WSABUF::zeroed(4), WSABUF::zeroed(0), WSABUF::zeroed(6)];
    assert_wsa_error(
        b.WSARecv(
            s,
            &mut bufs,
            Some(&mut n),
            Some(&mut flags),
            Some(&ov),
            None,
        ),
        WsaError::WSA_IO_PENDING,
    );
    send_all(&a, c, b"ABCDEFGHIJ");
    assert_eq!(result(&b, s, &ov, true), Ok((10, 0)));
    let back = ov.take_buffers();
    assert_eq!(back.len(), 3);
    assert_eq!(back[0].buf, b"ABCD");
    assert!(back[1].buf.is_empty());
    assert_eq!(back[2].buf, b"EFGHIJ");
}

/// Conformance: 182 — a nonoverlapped `WSARecv` on a stream returns as soon as the available
/// data is exhausted, though its buffers are not full.
#[test]
fn stream_recv_returns_when_data_exhausted() {
    let (a, b) = two_hosts(18200);
    let (c, s) = tcp_pair(&a, &b, 18200);
    send_all(&a, c, b"0123456789");
    assert!(wait_until(LONG, || fionread(&b, s) == 10));
    let later = {
        let a = a.clone();
        thread::spawn(move || {
            thread::sleep(Duration::from_secs(1));
            send_all(&a, c, b"more");
        })
    };
    let started = Instant::now();
    let mut bufs = [
        WSABUF::zeroed(400),
        WSABUF::zeroed(400),
        WSABUF::zeroed(400),
    ];
    let mut n = 0;
    let mut flags = 0;
    b.WSARecv(s, &mut bufs, Some(&mut n), Some(&mut flags), None, None)
        .unwrap();
    assert_eq!(n, 10, "only what was there");
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "did not wait for more"
    );
    assert_eq!(&bufs[0].buf[..10], b"0123456789");
    later.join().unwrap();
}

/// Conformance: 186 — on UDP, a `WSARecv` whose buffers are smaller than the datagram fails
/// with `WSAEMSGSIZE` after filling them, and the excess is discarded: the next receive gets the
/// next datagram.
#[test]
fn udp_recv_too_small_discards_excess() {
    let (a, b) = two_hosts(18600);
    let r = udp_bound(&b, at(B, 18600));
    let t = udp_bound(&a, at(A, 18601));
    let big = pattern(100, 186);
    sendto(&a, t, &big, at(B, 18600)).unwrap();
    sendto(&a, t, b"next", at(B, 18600)).unwrap();
    assert!(wait_until(LONG, || fionread(&b, r) == 100));
    let mut bufs = [WSABUF::zeroed(20), WSABUF::zeroed(10)];
    let mut n = 0;
    let mut flags = 0;
    assert_wsa_error(
        b.WSARecv(r, &mut bufs, Some(&mut n), Some(&mut flags), None, None),
        WsaError::WSAEMSGSIZE,
    );
    assert_eq!(bufs[0].buf, big[..20]);
    assert_eq!(bufs[1].buf, big[20..30]);
    assert_eq!(flags, MSG_PARTIAL as u32);
    // The flags that came back (MSG_PARTIAL is a valid input flag) go into the next call.
    let mut bufs = [WSABUF::zeroed(200)];
    assert!(
        wait_until(LONG, || fionread(&b, r) == 4),
        "the rest is gone"
    );
    b.WSARecv(r, &mut bufs, Some(&mut n), Some(&mut flags), None, None)
        .unwrap();
    assert_eq!(n, 4);
    assert_eq!(&bufs[0].buf[..4], b"next");
}

/// Conformance: 188 — `WSASend` with `MSG_PARTIAL` fails with `WSAEOPNOTSUPP` (no protocol here
/// has `XP1_PARTIAL_MESSAGE`) and sends nothing.
#[test]
fn msg_partial_send_unsupported() {
    let (a, b) = two_hosts(18800);
    let (c, s) = tcp_pair(&a, &b, 18800);
    let u = udp_bound(&a, at(A, 18801));
    let r = udp_bound(&b, at(B, 18802));
    connect(&a, u, at(B, 18802)).unwrap();
    for sock in [c, u] {
        let mut bufs = [WSABUF::new(b"part".to_vec())];
        let mut n = 0;
        assert_wsa_error(
            a.WSASend(sock, &mut bufs, Some(&mut n), MSG_PARTIAL, None, None),
            WsaError::WSAEOPNOTSUPP,
        );
        let ov = WSAOVERLAPPED::new(0);
        assert_wsa_error(
            a.WSASend(sock, &mut bufs, Some(&mut n), MSG_PARTIAL, Some(&ov), None),
            WsaError::WSAEOPNOTSUPP,
        );
        let to = sa(at(B, 18802));
        assert_wsa_error(
            a.WSASendTo(
                sock,
                &mut bufs,
                Some(&mut n),
                MSG_PARTIAL,
                Some(&to),
                SOCKADDR_IN_LEN,
                None,
                None,
            ),
            WsaError::WSAEOPNOTSUPP,
        );
    }
    thread::sleep(QUIET);
    assert_eq!(fionread(&b, s), 0);
    assert_eq!(fionread(&b, r), 0);
}

/// Conformance: 189 — a nonoverlapped `WSASend` on a blocking TCP socket returns only when all
/// its buffers are consumed, however long the peer takes to read.
#[test]
fn blocking_wsasend_consumes_everything() {
    let (a, b) = two_hosts(18900);
    let (c, s) = tcp_pair(&a, &b, 18900);
    let data = pattern(1 << 20, 189);
    let reader = {
        let b = b.clone();
        thread::spawn(move || {
            thread::sleep(Duration::from_millis(400));
            recv_exact(&b, s, 1 << 20)
        })
    };
    let (x, rest) = data.split_at(300_000);
    let (y, z) = rest.split_at(500_000);
    let mut bufs = [
        WSABUF::new(x.to_vec()),
        WSABUF::new(y.to_vec()),
        WSABUF::new(z.to_vec()),
    ];
    let started = Instant::now();
    let mut n = 0;
    a.WSASend(c, &mut bufs, Some(&mut n), 0, None, None)
        .expect("WSASend");
    assert_eq!(n, 1 << 20, "every byte of every buffer");
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "1 MiB cannot be consumed before the peer starts reading"
    );
    assert!(reader.join().unwrap() == data);
}

/// Conformance: 190 — a nonoverlapped `WSASend` on a nonblocking TCP socket may consume only
/// part of its buffers and reports the smaller count; exactly those bytes arrive.
#[test]
fn nonblocking_wsasend_partial() {
    let (a, b) = two_hosts(19000);
    let (c, s) = tcp_pair(&a, &b, 19000);
    set_nonblocking(&a, c, true);
    let data = pattern(1 << 20, 190);
    let (x, y) = data.split_at(1 << 19);
    let mut bufs = [WSABUF::new(x.to_vec()), WSABUF::new(y.to_vec())];
    let mut n = 0;
    a.WSASend(c, &mut bufs, Some(&mut n), 0, None, None)
        .expect("some room in an empty send buffer");
    assert!(n > 0 && (n as usize) < data.len(), "partial: {n}");
    let mut sent = n as usize;
    // Fill up until the socket would block.
    loop {
        let mut bufs = [WSABUF::new(data[sent..].to_vec())];
        match a.WSASend(c, &mut bufs, Some(&mut n), 0, None, None) {
            Ok(()) => sent += n as usize,
            Err(e) => {
                assert_eq!(e, WsaError::WSAEWOULDBLOCK);
                break;
            }
        }
        if sent == data.len() {
            break;
        }
    }
    assert!(sent < data.len(), "1 MiB does not fit without a reader");
    assert!(recv_exact(&b, s, sent) == data[..sent]);
}

/// Conformance: 191 — `WSASendTo` on a connected TCP socket ignores `lpTo`/`iToLen`, even when
/// they name another host or are malformed; the data goes to the peer.
#[test]
fn sendto_on_tcp_ignores_destination() {
    let (a, b) = two_hosts(19100);
    let (c, s) = tcp_pair(&a, &b, 19100);
    let elsewhere = sa(at(SILENT, 9));
    let mut n = 0;
    let mut bufs = [WSABUF::new(b"one".to_vec())];
    a.WSASendTo(
        c,
        &mut bufs,
        Some(&mut n),
        0,
        Some(&elsewhere),
        SOCKADDR_IN_LEN,
        None,
        None,
    )
    .unwrap();
    assert_eq!(n, 3);
    let mut bufs = [WSABUF::new(b"two".to_vec())];
    a.WSASendTo(
        c,
        &mut bufs,
        Some(&mut n),
        0,
        Some(&elsewhere),
        3,
        None,
        None,
    )
    .unwrap();
    let ov = WSAOVERLAPPED::new(0);
    let mut bufs = [WSABUF::new(b"six".to_vec())];
    match a.WSASendTo(
        c,
        &mut bufs,
        Some(&mut n),
        0,
        Some(&elsewhere),
        1,
        Some(&ov),
        None,
    ) {
        Ok(()) | Err(WsaError::WSA_IO_PENDING) => {}
        Err(e) => panic!("overlapped WSASendTo failed: {e:?}"),
    }
    assert_eq!(result(&a, c, &ov, true), Ok((3, 0)));
    assert_eq!(recv_exact(&b, s, 9), b"onetwosix");
}

/// Conformance: 192 — `WSARecvFrom` on a UDP socket returns the sender in `lpFrom` with
/// `*lpFromlen` = sizeof(SOCKADDR_IN).
#[test]
fn recvfrom_reports_sender() {
    let (a, b) = two_hosts(19200);
    let r = udp_bound(&b, at(B, 19200));
    let t1 = udp_bound(&a, at(A, 19201));
    let t2 = udp_bound(&a, at(A, 19202));
    sendto(&a, t1, b"from one", at(B, 19200)).unwrap();
    for (sock, port) in [(t1, 19201), (t2, 19202)] {
        if sock == t2 {
            sendto(&a, t2, b"from two", at(B, 19200)).unwrap();
        }
        let mut bufs = [WSABUF::zeroed(64)];
        let mut n = 0;
        let mut flags = 0;
        let mut from = SOCKADDR_IN::default();
        let mut fromlen = 64;
        b.WSARecvFrom(
            r,
            &mut bufs,
            Some(&mut n),
            Some(&mut flags),
            Some(&mut from),
            Some(&mut fromlen),
            None,
            None,
        )
        .unwrap();
        assert_eq!(n, 8);
        assert_eq!(from.to_socket_addr(), at(A, port));
        assert_eq!(fromlen, SOCKADDR_IN_LEN);
    }
}

/// Conformance: 195 — `MSG_PEEK` with an overlapped `WSARecv`/`WSARecvFrom` is rejected with
/// `WSAEINVAL` (D-8) and consumes nothing, while a nonoverlapped peek works.
#[test]
fn overlapped_peek_rejected() {
    let (a, b) = two_hosts(19500);
    let (c, s) = tcp_pair(&a, &b, 19500);
    let r = udp_bound(&b, at(B, 19501));
    let t = udp_bound(&a, at(A, 19502));
    send_all(&a, c, b"peekaboo");
    sendto(&a, t, b"dgram", at(B, 19501)).unwrap();
    assert!(wait_until(LONG, || fionread(&b, s) == 8 && fionread(&b, r) == 5));
    let log = log();
    for sock in [s, r] {
        for routine in [false, true] {
            let ov = WSAOVERLAPPED::new(0);
            let mut bufs = [WSABUF::zeroed(64)];
            let mut n = 0;
            let mut flags = MSG_PEEK as u32;
            let rt = if routine { recorder(&log) } else { None };
            assert_wsa_error(
                b.WSARecv(
                    sock,
                    &mut bufs,
                    Some(&mut n),
                    Some(&mut flags),
                    Some(&ov),
                    rt,
                ),
                WsaError::WSAEINVAL,
            );
            let mut from = SOCKADDR_IN::default();
            let mut fromlen = SOCKADDR_IN_LEN;
            assert_wsa_error(
                b.WSARecvFrom(
                    sock,
                    &mut bufs,
                    Some(&mut n),
                    Some(&mut flags),
                    Some(&mut from),
                    Some(&mut fromlen),
                    Some(&ov),
                    None,
                ),
                WsaError::WSAEINVAL,
            );
        }
    }
    assert_eq!(fionread(&b, s), 8, "nothing consumed");
    assert_eq!(fionread(&b, r), 5, "nothing consumed");
    let mut bufs = [WSABUF::zeroed(64)];
    let mut n = 0;
    let mut flags = MSG_PEEK as u32;
    b.WSARecv(s, &mut bufs, Some(&mut n), Some(&mut flags), None, None)
        .expect("a nonoverlapped peek");
    assert_eq!(&bufs[0].buf[..n as usize], b"peekaboo");
    assert_eq!(fionread(&b, s), 8, "the peek left the data");
    assert_eq!(SleepEx(200, true), 0);
    assert!(calls(&log).is_empty());
}

// ---- bad input ----------------------------------------------------------------------------

/// Conformance: 30 — on sockets made by `WSASocket` without `WSA_FLAG_OVERLAPPED` (and on those
/// accepted from such a listener), `WSARecv`, `WSARecvFrom`, `WSASend` and `WSASendTo` with a
/// `WSAOVERLAPPED` or a completion routine fail with `WSAEINVAL` (D-9), while plain calls work.
#[test]
fn non_overlapped_socket_refuses_overlapped_calls() {
    let (a, b) = two_hosts(3000);
    let (c, s) = tcp_pair_flags(&a, &b, 3000, 0);
    let u = a
        .WSASocket(AF_INET, SOCK_DGRAM, 0, None, 0, 0)
        .expect("WSASocket");
    bind(&a, u, at(A, 3001)).unwrap();
    connect(&a, u, at(B, 3002)).unwrap();
    let peer_u = udp_bound(&b, at(B, 3002));
    // The accepted side of a listener made without the flag.
    let l = b.WSASocket(AF_INET, SOCK_STREAM, 0, None, 0, 0).unwrap();
    bind(&b, l, at(B, 3003)).unwrap();
    b.listen(l, 2).unwrap();
    let c2 = new_socket(&a, SOCK_STREAM);
    connect(&a, c2, at(B, 3003)).unwrap();
    let s2 = b.accept(l, None, None).unwrap();

    // Non-blocking, so that a call wrongly run synchronously fails instead of hanging.
    set_nonblocking(&a, c, true);
    set_nonblocking(&a, u, true);
    set_nonblocking(&b, s2, true);
    let log = log();
    let ev = a.WSACreateEvent().unwrap();
    let to = sa(at(B, 3002));
    for (ws, sock, hevent) in [(&a, c, ev), (&a, u, ev), (&b, s2, 0)] {
        for (with_ov, with_routine) in [(true, false), (true, true), (false, true)] {
            let ov = WSAOVERLAPPED::new(hevent);
            let ov = with_ov.then_some(&ov);
            let rt = || if with_routine { recorder(&log) } else { None };
            let mut bufs = [WSABUF::new(b"data".to_vec())];
            let mut n = 0;
            let mut flags = 0;
            assert_wsa_error(
                ws.WSARecv(sock, &mut bufs, Some(&mut n), Some(&mut flags), ov, rt()),
                WsaError::WSAEINVAL,
            );
            let mut from = SOCKADDR_IN::default();
            let mut fromlen = SOCKADDR_IN_LEN;
            assert_wsa_error(
                ws.WSARecvFrom(
                    sock,
                    &mut bufs,
                    Some(&mut n),
                    Some(&mut flags),
                    Some(&mut from),
                    Some(&mut fromlen),
                    ov,
                    rt(),
                ),
                WsaError::WSAEINVAL,
            );
            assert_wsa_error(
                ws.WSASend(sock, &mut bufs, Some(&mut n), 0, ov, rt()),
                WsaError::WSAEINVAL,
            );
            assert_wsa_error(
                ws.WSASendTo(
                    sock,
                    &mut bufs,
                    Some(&mut n),
                    0,
                    Some(&to),
                    SOCKADDR_IN_LEN,
                    ov,
                    rt(),
                ),
                WsaError::WSAEINVAL,
            );
            assert_eq!(bufs[0].buf, b"data", "buffers untouched");
        }
    }
    thread::sleep(QUIET);
    assert!(!signaled(&a, ev));
    assert_eq!(SleepEx(200, true), 0);
    assert!(calls(&log).is_empty());
    assert_eq!(fionread(&b, s), 0, "nothing was sent");
    assert_eq!(fionread(&b, peer_u), 0, "nothing was sent");

    // Plain calls work on them.
    let mut bufs = [WSABUF::new(b"plain".to_vec())];
    let mut n = 0;
    a.WSASend(c, &mut bufs, Some(&mut n), 0, None, None)
        .unwrap();
    assert_eq!(n, 5);
    let mut bufs = [WSABUF::zeroed(16)];
    let mut flags = 0;
    b.WSARecv(s, &mut bufs, Some(&mut n), Some(&mut flags), None, None)
        .unwrap();
    assert_eq!(&bufs[0].buf[..n as usize], b"plain");
    // And the same calls on a socket made by `socket` pend (29).
    let ov = WSAOVERLAPPED::new(0);
    assert_wsa_error(post_recv(&a, c2, 8, &ov, None), WsaError::WSA_IO_PENDING);
}

/// Conformance: issue 3 bad input — `WSAIoctl` on a socket without the overlapped attribute
/// ignores `lpOverlapped`/`lpCompletionRoutine` and behaves like `ioctlsocket` (§1.14.2).
#[test]
fn ioctl_on_non_overlapped_socket_ignores_overlapped() {
    let (a, b) = two_hosts(3010);
    let (c, s) = tcp_pair_flags(&a, &b, 3010, 0);
    send_all(&b, s, b"12345");
    assert!(wait_until(LONG, || fionread(&a, c) == 5));
    let log = log();
    let ev = a.WSACreateEvent().unwrap();
    let ov = WSAOVERLAPPED::new(ev);
    let mut out = [0u8; 4];
    let mut returned = 0;
    a.WSAIoctl(
        c,
        FIONREAD as u32,
        &[],
        &mut out,
        Some(&mut returned),
        Some(&ov),
        recorder(&log),
    )
    .expect("ioctl on a nonoverlapped socket");
    assert_eq!(returned, 4);
    assert_eq!(u32::from_ne_bytes(out), 5);
    assert_eq!(
        SleepEx(200, true),
        0,
        "no routine: the overlapped part is ignored"
    );
    assert!(calls(&log).is_empty());
    assert!(!signaled(&a, ev));
}

/// Conformance: issue 3 bad input — a `WSABUF` whose `len` exceeds its buffer fails with
/// `WSAEFAULT`, overlapped or not, sending or receiving, and nothing moves.
#[test]
fn wsabuf_len_beyond_buffer() {
    let (a, b) = two_hosts(3020);
    let (c, s) = tcp_pair(&a, &b, 3020);
    send_all(&a, c, b"waiting");
    assert!(wait_until(LONG, || fionread(&b, s) == 7));
    let mut bad = WSABUF::new(vec![1u8; 8]);
    bad.len = 9;
    for overlapped in [false, true] {
        let ov = WSAOVERLAPPED::new(0);
        let ov = overlapped.then_some(&ov);
        let mut bufs = [WSABUF::new(b"ok".to_vec()), bad.clone()];
        let mut n = 0;
        assert_wsa_error(
            a.WSASend(c, &mut bufs, Some(&mut n), 0, ov, None),
            WsaError::WSAEFAULT,
        );
        let to = sa(at(B, 3020));
        assert_wsa_error(
            a.WSASendTo(
                c,
                &mut bufs,
                Some(&mut n),
                0,
                Some(&to),
                SOCKADDR_IN_LEN,
                ov,
                None,
            ),
            WsaError::WSAEFAULT,
        );
        let mut flags = 0;
        assert_wsa_error(
            b.WSARecv(s, &mut bufs, Some(&mut n), Some(&mut flags), ov, None),
            WsaError::WSAEFAULT,
        );
        assert_eq!(bufs[1], bad, "buffers untouched");
    }
    thread::sleep(QUIET);
    assert_eq!(fionread(&b, s), 7, "nothing consumed, nothing sent");
}

/// Conformance: issue 3 bad input — a `WSAOVERLAPPED` that still carries a pending operation
/// cannot start another one (on the same or another socket): the call fails without touching
/// the buffers, and the first operation completes as if nothing happened.
#[test]
fn reusing_a_pending_overlapped() {
    let (a, b) = two_hosts(3030);
    let (c, s) = tcp_pair(&a, &b, 3030);
    let u = udp_bound(&b, at(B, 3031));
    let ev = b.WSACreateEvent().unwrap();
    let ov = WSAOVERLAPPED::new(ev);
    assert_wsa_error(post_recv(&b, s, 64, &ov, None), WsaError::WSA_IO_PENDING);
    for sock in [s, u] {
        let mut bufs = [WSABUF::new(b"keep".to_vec())];
        let mut n = 0;
        let mut flags = 0;
        let r = b.WSARecv(
            sock,
            &mut bufs,
            Some(&mut n),
            Some(&mut flags),
            Some(&ov),
            None,
        );
        let e = r.expect_err("a pending WSAOVERLAPPED cannot be reused");
        assert_ne!(e, WsaError::WSA_IO_PENDING);
        assert_eq!(WSAGetLastError(), e.0);
        assert_eq!(bufs[0].buf, b"keep");
        let r = b.WSASend(s, &mut bufs, Some(&mut n), 0, Some(&ov), None);
        assert!(r.is_err() && r != Err(WsaError::WSA_IO_PENDING), "{r:?}");
        assert_eq!(bufs[0].buf, b"keep");
    }
    assert!(ov.is_pending());
    send_all(&a, c, b"first");
    assert_eq!(result(&b, s, &ov, true), Ok((5, 0)));
    assert_eq!(ov.take_received(), b"first");
    // Once complete, the same WSAOVERLAPPED carries a new operation.
    assert_wsa_error(post_recv(&b, s, 64, &ov, None), WsaError::WSA_IO_PENDING);
    send_all(&a, c, b"second");
    assert_eq!(result(&b, s, &ov, true), Ok((6, 0)));
    assert_eq!(ov.take_received(), b"second");
}

/// Conformance: 321 — completion routines queued for a thread that never waits alertably stay
/// queued (other threads' alertable waits do not run them) and all run, on that thread, when it
/// finally does: nothing is lost.
#[test]
fn routines_wait_for_their_thread() {
    let (a, b) = two_hosts(3040);
    let (c, s) = tcp_pair(&a, &b, 3040);
    let log = log();
    let (ready_tx, ready_rx) = mpsc::channel();
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let worker = {
        let (b, log) = (b.clone(), log.clone());
        thread::spawn(move || {
            let ovs: Vec<WSAOVERLAPPED> = (0..3).map(WSAOVERLAPPED::new).collect();
            for ov in &ovs {
                assert_eq!(
                    post_recv(&b, s, 3, ov, recorder(&log)),
                    Err(WsaError::WSA_IO_PENDING)
                );
            }
            ready_tx.send(ovs.clone()).unwrap();
            // Busy with other things, never alertable.
            let ev = b.WSACreateEvent().unwrap();
            let _ = b.WSAWaitForMultipleEvents(&[ev], false, 200, false);
            thread::sleep(Duration::from_millis(100));
            assert_eq!(SleepEx(100, false), 0);
            go_rx.recv().unwrap();
            let r = b.WSAWaitForMultipleEvents(&[ev], false, 5000, true);
            (r, thread::current().id())
        })
    };
    let ovs = ready_rx.recv().unwrap();
    send_all(&a, c, b"abcdefghi");
    for ov in &ovs {
        completes(ov);
    }
    assert_eq!(SleepEx(250, true), 0, "not this thread's routines");
    let ev = b.WSACreateEvent().unwrap();
    assert_eq!(
        b.WSAWaitForMultipleEvents(&[ev], false, 250, true),
        Ok(WSA_WAIT_TIMEOUT)
    );
    thread::sleep(Duration::from_millis(300));
    assert!(
        calls(&log).is_empty(),
        "ran though the issuing thread never waited alertably"
    );
    go_tx.send(()).unwrap();
    let (r, worker_id) = worker.join().unwrap();
    assert_eq!(r, Ok(WSA_WAIT_IO_COMPLETION));
    let got = calls(&log);
    assert_eq!(got.len(), 3, "every routine ran: {got:?}");
    assert!(got.iter().all(|c| c.thread == worker_id && c.error == 0));
    let mut by_ctx = got.clone();
    by_ctx.sort_by_key(|c| c.context);
    let joined: Vec<u8> = by_ctx.iter().flat_map(|c| c.data.clone()).collect();
    assert_eq!(joined, b"abcdefghi");
}
