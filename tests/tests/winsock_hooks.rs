//! CHECKLIST Part 2 group M: the Windows Sockets 1.1 pseudo-blocking model — blocking hooks,
//! `WSAIsBlocking`, `WSACancelBlockingCall`, `WSAEINPROGRESS` for nested calls — and its 2.x
//! counterparts: no nesting rule, the four hook functions unavailable (D-2), blocking calls
//! ended with `WSAEINTR` by `closesocket`/`WSACleanup` from another thread (D-29) or by
//! `Winsock::interrupt_blocking_calls` (Part 1 §1.7).
//!
//! Host A always runs 2.2; host B negotiates 1.1 where a test needs the 1.1 mode. A hook runs on
//! the thread blocked in the call, so its observations go through `Rc<Cell<…>>`; peers that
//! must act while B is blocked run on their own threads and wait for the hook's signal, never
//! for a fixed time.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use ws2_stack::winsock::*;
use ws2_stack::WsaError;
use ws2_tap::VirtualSwitch;
use ws2_tests::*;

/// How long anything here waits for something that should happen at once.
const PATIENCE: Duration = Duration::from_secs(10);

/// Host A started with 2.2 and host B started with 1.1 (the 1.1 compatibility mode, D-2).
fn hosts_v11(seed: u64) -> (Winsock, Winsock) {
    let switch = VirtualSwitch::new(seed);
    let a = started(&stack_on(&switch, config(A)));
    let b = started_version(&stack_on(&switch, config(B)), MAKEWORD(1, 1));
    assert_eq!(b.version(), Some((1, 1)), "B runs in 1.1 mode");
    (a, b)
}

/// A peer thread that sends `data` on `(ws, s)` once it is told to (or after `PATIENCE`, so a
/// hook that is never called makes the test fail instead of hang). Returns the trigger.
fn send_when_told(
    ws: &Winsock,
    s: SOCKET,
    data: &'static [u8],
) -> (mpsc::Sender<()>, JoinHandle<()>) {
    let (go, told) = mpsc::channel::<()>();
    let ws = ws.clone();
    let peer = thread::spawn(move || {
        let _ = told.recv_timeout(PATIENCE);
        send_all(&ws, s, data);
    });
    (go, peer)
}

/// What calls made on a hook's thread returned, seen after the blocking call.
type Seen<T> = Rc<RefCell<Vec<T>>>;

/// A hook that cancels the blocking call the first time it runs, and counts its calls.
fn cancelling_hook(ws: &Winsock) -> (BlockingHook, Rc<Cell<u32>>, Seen<Result<(), WsaError>>) {
    let calls = Rc::new(Cell::new(0));
    let cancels = Rc::new(RefCell::new(Vec::new()));
    let (ws, c, k) = (ws.clone(), calls.clone(), cancels.clone());
    let hook: BlockingHook = Box::new(move || {
        c.set(c.get() + 1);
        if c.get() == 1 {
            k.borrow_mut().push(ws.WSACancelBlockingCall());
        }
        false
    });
    (hook, calls, cancels)
}

/// Conformance: 335 — in 1.1 mode `WSAIsBlocking` is FALSE outside any blocking call and TRUE from inside the blocking hook.
#[test]
fn is_blocking_only_inside_the_hook() {
    let (a, b) = hosts_v11(335);
    let (c, s) = tcp_pair(&a, &b, 33500);
    assert_eq!(b.WSAIsBlocking(), Ok(false), "no call in progress");
    let (go, peer) = send_when_told(&a, c, b"x");
    let seen = Rc::new(RefCell::new(Vec::new()));
    let (ws, v) = (b.clone(), seen.clone());
    b.WSASetBlockingHook(Box::new(move || {
        v.borrow_mut().push(ws.WSAIsBlocking());
        let _ = go.send(());
        false
    }))
    .expect("WSASetBlockingHook");
    let mut buf = [0u8; 4];
    assert_eq!(b.recv(s, &mut buf, 0), Ok(1));
    peer.join().expect("peer");
    let seen = seen.borrow();
    assert!(!seen.is_empty(), "the hook ran while recv waited");
    assert!(seen.iter().all(|r| *r == Ok(true)), "{seen:?}");
    assert_eq!(b.WSAIsBlocking(), Ok(false), "the call is over");
}

/// Conformance: 336 — in 1.1 mode the installed blocking hook is invoked repeatedly while a blocking `recv` waits for data.
#[test]
fn hook_runs_repeatedly_while_recv_waits() {
    let (a, b) = hosts_v11(336);
    let (c, s) = tcp_pair(&a, &b, 33600);
    let (go, peer) = send_when_told(&a, c, b"data");
    let calls = Rc::new(Cell::new(0u32));
    let n = calls.clone();
    b.WSASetBlockingHook(Box::new(move || {
        n.set(n.get() + 1);
        if n.get() == 5 {
            let _ = go.send(());
        }
        false
    }))
    .expect("WSASetBlockingHook");
    let mut buf = [0u8; 8];
    assert_eq!(b.recv(s, &mut buf, 0), Ok(4));
    assert_eq!(&buf[..4], b"data");
    peer.join().expect("peer");
    assert!(
        calls.get() >= 5,
        "the hook ran {} times before the data came",
        calls.get()
    );
}

/// Conformance: 337 — in 1.1 mode the blocking hook is not invoked for a `recv` that can complete immediately, for a nonblocking socket, or for `select` with a `{0,0}` timeout.
#[test]
fn hook_not_called_when_nothing_blocks() {
    let (a, b) = hosts_v11(337);
    let (c, s) = tcp_pair(&a, &b, 33700);
    let u = udp_bound(&b, at(B, 33701));
    send_all(&a, c, b"ready");
    assert!(
        wait_until(PATIENCE, || fionread(&b, s) == 5),
        "the data arrives"
    );
    let calls = Rc::new(Cell::new(0u32));
    let n = calls.clone();
    b.WSASetBlockingHook(Box::new(move || {
        n.set(n.get() + 1);
        false
    }))
    .expect("WSASetBlockingHook");
    let mut buf = [0u8; 8];
    // A blocking recv whose data is already there.
    assert_eq!(b.recv(s, &mut buf, 0), Ok(5));
    assert_eq!(calls.get(), 0, "recv completed immediately");
    // Nonblocking sockets.
    set_nonblocking(&b, s, true);
    assert_would_block(b.recv(s, &mut buf, 0));
    set_nonblocking(&b, u, true);
    assert_would_block(recvfrom(&b, u, &mut buf, 0));
    assert_eq!(calls.get(), 0, "nonblocking calls never wait");
    // select with a zero timeout, on sockets that are not ready.
    let mut r = fd_set(&[s, u]);
    let zero = TIMEVAL {
        tv_sec: 0,
        tv_usec: 0,
    };
    assert_eq!(b.select(0, Some(&mut r), None, None, Some(&zero)), Ok(0));
    assert_eq!(calls.get(), 0, "select {{0,0}} only polls");
    // The hook is installed and does run once a call really blocks.
    set_nonblocking(&b, s, false);
    let (go, peer) = send_when_told(&a, c, b"late");
    let n = calls.clone();
    b.WSASetBlockingHook(Box::new(move || {
        n.set(n.get() + 1);
        let _ = go.send(());
        false
    }))
    .expect("WSASetBlockingHook");
    assert_eq!(b.recv(s, &mut buf, 0), Ok(4));
    peer.join().expect("peer");
    assert!(calls.get() > 0, "a recv that waits calls the hook");
}

/// Conformance: 338 — in 1.1 mode every Winsock call from inside the blocking hook, blocking or nonblocking, on any socket, fails with `WSAEINPROGRESS`, except `WSAIsBlocking` and `WSACancelBlockingCall`.
#[test]
fn calls_from_the_hook_fail_inprogress() {
    let (a, b) = hosts_v11(338);
    let (_c, s) = tcp_pair(&a, &b, 33800);
    let u = udp_bound(&b, at(B, 33801));
    set_nonblocking(&b, u, true);
    let fresh = new_socket(&b, SOCK_STREAM);
    let results: Seen<(&'static str, Result<(), WsaError>, i32)> = Rc::default();
    let exceptions: Rc<RefCell<Vec<String>>> = Rc::default();
    let (ws, out, exc) = (b.clone(), results.clone(), exceptions.clone());
    let mut first = true;
    b.WSASetBlockingHook(Box::new(move || {
        if !std::mem::take(&mut first) {
            return false;
        }
        let note = |name: &'static str, r: Result<(), WsaError>| {
            out.borrow_mut().push((name, r, WSAGetLastError()));
        };
        let mut buf = [0u8; 8];
        let zero = TIMEVAL::default();
        note("socket", ws.socket(AF_INET, SOCK_DGRAM, 0).map(drop));
        note("bind", bind(&ws, fresh, at(B, 33802)));
        note("listen", ws.listen(fresh, 1));
        note(
            "recv (blocking, same socket)",
            ws.recv(s, &mut buf, 0).map(drop),
        );
        note(
            "recv (nonblocking, other socket)",
            ws.recv(u, &mut buf, 0).map(drop),
        );
        note(
            "sendto (nonblocking)",
            sendto(&ws, u, b"x", at(A, 9)).map(drop),
        );
        note("send", ws.send(s, b"x", 0).map(drop));
        note("ioctlsocket", {
            let mut n = 0u32;
            ws.ioctlsocket(u, FIONREAD, Some(&mut n))
        });
        note("getsockopt", get_int(&ws, s, SOL_SOCKET, SO_TYPE).map(drop));
        note("setsockopt", set_int(&ws, s, IPPROTO_TCP, TCP_NODELAY, 1));
        note("getsockname", local_name(&ws, s).map(drop));
        note("getpeername", peer_name(&ws, s).map(drop));
        note("select", {
            let mut r = fd_set(&[u]);
            ws.select(0, Some(&mut r), None, None, Some(&zero))
                .map(drop)
        });
        note("shutdown", ws.shutdown(u, SD_BOTH));
        note("WSACreateEvent", ws.WSACreateEvent().map(drop));
        note(
            "WSASetBlockingHook",
            ws.WSASetBlockingHook(Box::new(|| false)).map(drop),
        );
        note("WSAUnhookBlockingHook", ws.WSAUnhookBlockingHook());
        note("closesocket", ws.closesocket(u));
        note("WSAStartup", {
            let mut data = WSADATA::default();
            match ws.WSAStartup(MAKEWORD(1, 1), Some(&mut data)) {
                0 => Ok(()),
                code => {
                    WSASetLastError(code);
                    Err(WsaError(code))
                }
            }
        });
        // The two exceptions.
        if ws.WSAIsBlocking() != Ok(true) {
            exc.borrow_mut().push("WSAIsBlocking".into());
        }
        if let Err(e) = ws.WSACancelBlockingCall() {
            exc.borrow_mut()
                .push(format!("WSACancelBlockingCall: {e:?}"));
        }
        false
    }))
    .expect("WSASetBlockingHook");
    let mut buf = [0u8; 8];
    assert_wsa_error(b.recv(s, &mut buf, 0), WsaError::WSAEINTR);
    assert!(exceptions.borrow().is_empty(), "{:?}", exceptions.borrow());
    let results = results.borrow();
    assert_eq!(results.len(), 19, "the hook made every call");
    for (name, r, last) in results.iter() {
        assert_eq!(*r, Err(WsaError::WSAEINPROGRESS), "{name} from the hook");
        assert_eq!(*last, WsaError::WSAEINPROGRESS.0, "{name}: WSAGetLastError");
    }
    // None of them did anything: the sockets are as they were.
    assert_eq!(b.version(), Some((1, 1)));
    assert_would_block(b.recv(u, &mut buf, 0));
    assert_wsa_error(b.listen(fresh, 1), WsaError::WSAEINVAL); // still unbound
    b.closesocket(u).expect("u is still open");
    b.closesocket(fresh).expect("fresh is still open");
    b.WSACleanup().expect("one startup");
    assert_wsa_error(
        b.socket(AF_INET, SOCK_DGRAM, 0),
        WsaError::WSANOTINITIALISED,
    );
}

/// Conformance: 339 — in 1.1 mode `WSACancelBlockingCall` from the hook makes the blocked call fail with `WSAEINTR` once the hook returns.
#[test]
fn cancel_from_the_hook_ends_the_call() {
    let (a, b) = hosts_v11(339);
    let (_c, s) = tcp_pair(&a, &b, 33900);
    let u = udp_bound(&b, at(B, 33901));
    type Call = Box<dyn Fn(&Winsock) -> Result<i32, WsaError>>;
    let calls: [(&str, Call); 2] = [
        ("recv", Box::new(move |ws| ws.recv(s, &mut [0u8; 8], 0))),
        (
            "recvfrom",
            Box::new(move |ws| recvfrom(ws, u, &mut [0u8; 8], 0).map(|(n, _)| n)),
        ),
    ];
    for (what, call) in calls {
        let (hook, calls, cancels) = cancelling_hook(&b);
        b.WSASetBlockingHook(hook).expect("WSASetBlockingHook");
        assert_wsa_error(call(&b), WsaError::WSAEINTR);
        assert_eq!(
            *cancels.borrow(),
            vec![Ok(())],
            "{what}: WSACancelBlockingCall succeeded"
        );
        assert_eq!(
            calls.get(),
            1,
            "{what}: the call ended as soon as the hook returned"
        );
        assert_eq!(b.WSAIsBlocking(), Ok(false));
    }
}

/// Conformance: 340 — `WSACancelBlockingCall` with no blocking call in progress (on the calling thread) fails with `WSAEINVAL`.
#[test]
fn cancel_without_a_blocking_call_is_einval() {
    let (a, b) = hosts_v11(340);
    let (c, s) = tcp_pair(&a, &b, 34000);
    assert_wsa_error(b.WSACancelBlockingCall(), WsaError::WSAEINVAL);
    // After a blocking call has completed.
    send_all(&a, c, b"one");
    assert_eq!(recv_exact(&b, s, 3), b"one");
    assert_wsa_error(b.WSACancelBlockingCall(), WsaError::WSAEINVAL);
    // While another thread ("task") is blocked: nothing of this thread's to cancel, and the
    // other thread's call is not disturbed.
    let (blocked_tx, blocked) = mpsc::channel::<()>();
    let ws = b.clone();
    let receiver = thread::spawn(move || {
        let mut sent = false;
        ws.WSASetBlockingHook(Box::new(move || {
            if !std::mem::replace(&mut sent, true) {
                let _ = blocked_tx.send(());
            }
            false
        }))
        .expect("WSASetBlockingHook");
        let mut buf = [0u8; 8];
        ws.recv(s, &mut buf, 0).map(|n| buf[..n as usize].to_vec())
    });
    blocked
        .recv_timeout(PATIENCE)
        .expect("the receiver blocks and calls its hook");
    assert_wsa_error(b.WSACancelBlockingCall(), WsaError::WSAEINVAL);
    send_all(&a, c, b"two");
    assert_eq!(receiver.join().expect("receiver"), Ok(b"two".to_vec()));
}

/// Conformance: 341 — if the blocked operation completes before the cancellation is processed, `WSACancelBlockingCall` returns 0 and the operation returns success.
#[test]
fn completion_before_cancel_wins() {
    let (a, b) = hosts_v11(341);
    let (c, s) = tcp_pair(&a, &b, 34100);
    // A helper thread sends, then waits until the data sits in B's receive queue.
    let (go, told) = mpsc::channel::<()>();
    let (arrived_tx, arrived) = mpsc::channel::<bool>();
    let (wa, wb) = (a.clone(), b.clone());
    let helper = thread::spawn(move || {
        told.recv_timeout(PATIENCE).expect("the hook runs");
        send_all(&wa, c, b"late");
        let _ = arrived_tx.send(wait_until(PATIENCE, || fionread(&wb, s) == 4));
    });
    let cancel = Rc::new(RefCell::new(None));
    let (ws, k) = (b.clone(), cancel.clone());
    let mut first = true;
    b.WSASetBlockingHook(Box::new(move || {
        if std::mem::take(&mut first) {
            let _ = go.send(());
            assert_eq!(arrived.recv_timeout(PATIENCE), Ok(true), "the data arrives");
            *k.borrow_mut() = Some(ws.WSACancelBlockingCall());
        }
        false
    }))
    .expect("WSASetBlockingHook");
    let mut buf = [0u8; 8];
    let r = b.recv(s, &mut buf, 0);
    helper.join().expect("helper");
    assert_eq!(
        *cancel.borrow(),
        Some(Ok(())),
        "WSACancelBlockingCall returns 0"
    );
    assert_eq!(
        r,
        Ok(4),
        "the operation completed before the cancel took effect"
    );
    assert_eq!(&buf[..4], b"late");
    // Nothing was compromised: the connection goes on.
    b.WSAUnhookBlockingHook().expect("unhook");
    send_all(&b, s, b"reply");
    assert_eq!(recv_exact(&a, c, 5), b"reply");
}

/// Conformance: 342 — after a cancelled blocking `accept`, the listening socket still accepts connections normally.
#[test]
fn cancelled_accept_leaves_the_listener_working() {
    let (a, b) = hosts_v11(342);
    let l = listener(&b, at(B, 34200), 4);
    let (hook, calls, cancels) = cancelling_hook(&b);
    b.WSASetBlockingHook(hook).expect("WSASetBlockingHook");
    assert_wsa_error(b.accept(l, None, None), WsaError::WSAEINTR);
    assert_eq!((calls.get(), cancels.borrow().clone()), (1, vec![Ok(())]));
    b.WSAUnhookBlockingHook().expect("unhook");
    let c = new_socket(&a, SOCK_STREAM);
    connect(&a, c, at(B, 34200)).expect("connect");
    let mut name = SOCKADDR_IN::default();
    let mut len = SOCKADDR_IN_LEN;
    let s = b
        .accept(l, Some(&mut name), Some(&mut len))
        .expect("accept after the cancel");
    assert_eq!(
        name.to_socket_addr(),
        local_name(&a, c).expect("getsockname")
    );
    send_all(&a, c, b"hello");
    assert_eq!(recv_exact(&b, s, 5), b"hello");
    send_all(&b, s, b"back");
    assert_eq!(recv_exact(&a, c, 4), b"back");
    // A second connection to the same listener.
    let c2 = new_socket(&a, SOCK_STREAM);
    connect(&a, c2, at(B, 34200)).expect("connect");
    b.accept(l, None, None).expect("second accept");
}

/// Conformance: 343 — after a cancelled blocking `select`, the sockets involved behave exactly as before.
#[test]
fn cancelled_select_leaves_the_sockets_alone() {
    let (a, b) = hosts_v11(343);
    let (c, s) = tcp_pair(&a, &b, 34300);
    let l = listener(&b, at(B, 34301), 4);
    let (hook, calls, cancels) = cancelling_hook(&b);
    b.WSASetBlockingHook(hook).expect("WSASetBlockingHook");
    let mut r = fd_set(&[s, l]);
    assert_wsa_error(
        b.select(0, Some(&mut r), None, None, None),
        WsaError::WSAEINTR,
    );
    assert_eq!((calls.get(), cancels.borrow().clone()), (1, vec![Ok(())]));
    b.WSAUnhookBlockingHook().expect("unhook");
    // The connected socket: data arrives, select sees it, recv gets it, sends still work.
    send_all(&a, c, b"after");
    assert!(wait_readable(&b, s, 10_000), "select reports the data");
    assert_eq!(recv_exact(&b, s, 5), b"after");
    assert_eq!(poll_one(&b, s, 0), (false, true, false));
    send_all(&b, s, b"still");
    assert_eq!(recv_exact(&a, c, 5), b"still");
    // The listener: a connection makes it readable and accept takes it.
    let c2 = new_socket(&a, SOCK_STREAM);
    connect(&a, c2, at(B, 34301)).expect("connect");
    assert!(
        wait_readable(&b, l, 10_000),
        "select reports the pending connection"
    );
    b.accept(l, None, None).expect("accept");
}

/// Conformance: 344 — after cancelling a blocking TCP `send` that had transferred part of the data, the connection is reset and every later call except `closesocket` fails with `WSAECONNABORTED`.
#[test]
fn cancelled_partial_send_aborts_the_connection() {
    let (a, b) = hosts_v11(344);
    let (c, s) = tcp_pair(&a, &b, 34400);
    // Far more than B's send buffer and A's window together: A reads nothing.
    let big = pattern(4 << 20, 344);
    let (hook, calls, cancels) = cancelling_hook(&b);
    b.WSASetBlockingHook(hook).expect("WSASetBlockingHook");
    assert_wsa_error(b.send(s, &big, 0), WsaError::WSAEINTR);
    assert_eq!((calls.get(), cancels.borrow().clone()), (1, vec![Ok(())]));
    b.WSAUnhookBlockingHook().expect("unhook");
    let mut buf = [0u8; 8];
    assert_wsa_error(b.send(s, b"more", 0), WsaError::WSAECONNABORTED);
    assert_wsa_error(b.recv(s, &mut buf, 0), WsaError::WSAECONNABORTED);
    set_nonblocking(&b, s, true);
    assert_wsa_error(b.recv(s, &mut buf, 0), WsaError::WSAECONNABORTED);
    assert_wsa_error(b.send(s, b"more", 0), WsaError::WSAECONNABORTED);
    // The peer sees the reset: its reads end in an error, not a graceful 0.
    set_int(&a, c, SOL_SOCKET, SO_RCVTIMEO, 10_000).expect("SO_RCVTIMEO");
    let peer_end = (0..10_000).find_map(|_| match a.recv(c, &mut [0u8; 64 * 1024], 0) {
        Ok(n) if n > 0 => None,
        other => Some(other),
    });
    assert_eq!(peer_end, Some(Err(WsaError::WSAECONNRESET)));
    b.closesocket(s).expect("closesocket still works");
}

/// Conformance: 345 — after cancelling a blocking `connect`, the call fails with `WSAEINTR` and `closesocket` on the socket succeeds.
#[test]
fn cancelled_connect_fails_eintr() {
    let (_a, b) = hosts_v11(345);
    let s = new_socket(&b, SOCK_STREAM);
    let (hook, calls, cancels) = cancelling_hook(&b);
    b.WSASetBlockingHook(hook).expect("WSASetBlockingHook");
    assert_wsa_error(connect(&b, s, at(SILENT, 34500)), WsaError::WSAEINTR);
    assert_eq!((calls.get(), cancels.borrow().clone()), (1, vec![Ok(())]));
    b.closesocket(s)
        .expect("closesocket after the cancelled connect");
    assert_wsa_error(b.closesocket(s), WsaError::WSAENOTSOCK);
}

/// Conformance: 346 — `WSASetBlockingHook` returns the previously installed hook (the default: none) and `WSAUnhookBlockingHook` restores the default hook.
#[test]
fn set_returns_previous_and_unhook_restores_default() {
    let (a, b) = hosts_v11(346);
    let (c, s) = tcp_pair(&a, &b, 34600);
    let first = Rc::new(Cell::new(0u32));
    let second = Rc::new(Cell::new(0u32));
    let f = first.clone();
    let prev = b
        .WSASetBlockingHook(Box::new(move || {
            f.set(f.get() + 1);
            false
        }))
        .expect("WSASetBlockingHook");
    assert!(prev.is_none(), "the default hook was installed");
    let (go, peer) = send_when_told(&a, c, b"1");
    let g = second.clone();
    let prev = b
        .WSASetBlockingHook(Box::new(move || {
            g.set(g.get() + 1);
            let _ = go.send(());
            false
        }))
        .expect("WSASetBlockingHook");
    let mut prev = prev.expect("the first hook comes back");
    assert!(!prev());
    assert_eq!((first.get(), second.get()), (1, 0), "it is the first hook");
    // The second hook is the one in force.
    assert_eq!(recv_exact(&b, s, 1), b"1");
    peer.join().expect("peer");
    assert!(second.get() > 0);
    assert_eq!(first.get(), 1);
    // Hooks are per thread: another thread still has the default.
    let ws = b.clone();
    let other = thread::spawn(move || {
        let prev = ws.WSASetBlockingHook(Box::new(|| false)).expect("set");
        prev.is_none()
    });
    assert!(
        other.join().expect("other thread"),
        "another thread's hook is its own"
    );
    // Unhooking restores the default: a blocking call no longer calls the second hook, and the
    // next WSASetBlockingHook returns no previous hook.
    b.WSAUnhookBlockingHook().expect("WSAUnhookBlockingHook");
    let before = second.get();
    let wa = a.clone();
    let peer = thread::spawn(move || {
        thread::sleep(Duration::from_millis(50));
        send_all(&wa, c, b"2");
    });
    assert_eq!(recv_exact(&b, s, 1), b"2");
    peer.join().expect("peer");
    assert_eq!(second.get(), before, "the default hook is in force");
    let prev = b.WSASetBlockingHook(Box::new(|| false)).expect("set");
    assert!(prev.is_none(), "the default hook was back");
    b.WSAUnhookBlockingHook().expect("unhook");
}

static SIMPLE_HOOK_CALLS: AtomicU32 = AtomicU32::new(0);

/// Conformance: 347 — a blocking hook that simply returns FALSE is accepted and blocking calls still complete.
#[test]
fn hook_returning_false_lets_calls_complete() {
    let (a, b) = hosts_v11(347);
    let (c, s) = tcp_pair(&a, &b, 34700);
    let l = listener(&b, at(B, 34701), 4);
    let prev = b
        .WSASetBlockingHook(Box::new(|| {
            SIMPLE_HOOK_CALLS.fetch_add(1, Ordering::SeqCst);
            false
        }))
        .expect("a hook that returns FALSE is accepted");
    assert!(prev.is_none());
    // The peer acts only once the hook has run, so each call really went through the hook.
    let wa = a.clone();
    let peer = thread::spawn(move || {
        assert!(wait_until(PATIENCE, || SIMPLE_HOOK_CALLS
            .load(Ordering::SeqCst)
            > 0));
        send_all(&wa, c, b"data");
        let before = SIMPLE_HOOK_CALLS.load(Ordering::SeqCst);
        assert!(wait_until(PATIENCE, || SIMPLE_HOOK_CALLS
            .load(Ordering::SeqCst)
            > before + 2));
        let c2 = new_socket(&wa, SOCK_STREAM);
        connect(&wa, c2, at(B, 34701)).expect("connect");
        c2
    });
    assert_eq!(recv_exact(&b, s, 4), b"data", "recv completes");
    let s2 = b.accept(l, None, None).expect("accept completes");
    let c2 = peer.join().expect("peer");
    send_all(&a, c2, b"ok");
    assert_eq!(recv_exact(&b, s2, 2), b"ok");
}

/// Conformance: 348 — `WSACleanup` called from inside the blocking hook fails with `WSAEINPROGRESS` and cleans nothing up.
#[test]
fn cleanup_from_the_hook_fails() {
    let (a, b) = hosts_v11(348);
    let (_c, s) = tcp_pair(&a, &b, 34800);
    let cleanup = Rc::new(RefCell::new(None));
    let (ws, k) = (b.clone(), cleanup.clone());
    b.WSASetBlockingHook(Box::new(move || {
        if k.borrow().is_none() {
            let r = ws.WSACleanup();
            *k.borrow_mut() = Some((r, WSAGetLastError()));
            ws.WSACancelBlockingCall().expect("cancel first");
        }
        false
    }))
    .expect("WSASetBlockingHook");
    assert_wsa_error(b.recv(s, &mut [0u8; 8], 0), WsaError::WSAEINTR);
    assert_eq!(
        *cleanup.borrow(),
        Some((Err(WsaError::WSAEINPROGRESS), WsaError::WSAEINPROGRESS.0))
    );
    // Still started, the socket still open; one WSACleanup (for the one WSAStartup) now works.
    assert_eq!(get_int(&b, s, SOL_SOCKET, SO_TYPE), Ok(SOCK_STREAM));
    b.WSACleanup().expect("WSACleanup after the blocking call");
    assert_wsa_error(
        b.socket(AF_INET, SOCK_DGRAM, 0),
        WsaError::WSANOTINITIALISED,
    );
}

/// Conformance: 349 — in 2.x mode nested calls never fail `WSAEINPROGRESS`: socket calls made from a completion routine running inside an alertable `WSAWaitForMultipleEvents` succeed.
#[test]
fn no_nesting_restriction_in_2x_mode() {
    let (a, b) = two_hosts(349);
    let (c, s) = tcp_pair(&a, &b, 34900);
    let u = udp_bound(&b, at(B, 34901));
    set_nonblocking(&b, u, true);
    type Outcomes = Arc<Mutex<Vec<(&'static str, Result<(), WsaError>)>>>;
    let results: Outcomes = Arc::default();
    let (ws, out) = (b.clone(), results.clone());
    let ov = WSAOVERLAPPED::new(0);
    let mut bufs = [WSABUF::zeroed(16)];
    let mut flags = 0;
    let r = b.WSARecv(
        s,
        &mut bufs,
        None,
        Some(&mut flags),
        Some(&ov),
        Some(Box::new(move |err, n, _ov: &WSAOVERLAPPED, _f| {
            let mut out = out.lock().unwrap();
            out.push((
                "completion",
                if err == 0 && n == 3 {
                    Ok(())
                } else {
                    Err(WsaError(err as i32))
                },
            ));
            let t = ws.socket(AF_INET, SOCK_DGRAM, 0);
            out.push(("socket", t.map(drop)));
            out.push((
                "recv (nonblocking)",
                match ws.recv(u, &mut [0u8; 8], 0) {
                    Err(WsaError::WSAEWOULDBLOCK) => Ok(()),
                    r => r.map(drop),
                },
            ));
            out.push(("sendto", sendto(&ws, u, b"x", at(A, 34902)).map(drop)));
            out.push(("getsockopt", get_int(&ws, u, SOL_SOCKET, SO_TYPE).map(drop)));
            out.push(("select", {
                let mut w = fd_set(&[u]);
                ws.select(0, None, Some(&mut w), None, Some(&TIMEVAL::default()))
                    .map(drop)
            }));
            out.push(("send (blocking)", ws.send(s, b"reply", 0).map(drop)));
            if let Ok(t) = t {
                out.push(("closesocket", ws.closesocket(t)));
            }
        })),
    );
    assert_eq!(r, Err(WsaError::WSA_IO_PENDING));
    send_all(&a, c, b"abc");
    let ev = b.WSACreateEvent().expect("WSACreateEvent");
    assert_eq!(
        b.WSAWaitForMultipleEvents(&[ev], false, 10_000, true),
        Ok(WSA_WAIT_IO_COMPLETION)
    );
    let results = results.lock().unwrap();
    assert_eq!(results.len(), 8, "{results:?}");
    for (name, r) in results.iter() {
        assert_eq!(*r, Ok(()), "{name} from the completion routine");
    }
    assert_eq!(recv_exact(&a, c, 5), b"reply");
}

/// Conformance: 350 — in 2.x mode the four blocking-hook functions are unavailable: they fail with `WSAEOPNOTSUPP` (D-2).
#[test]
fn hook_functions_unavailable_in_2x_mode() {
    let switch = VirtualSwitch::new(350);
    let stack = stack_on(&switch, config(A));
    for version in [MAKEWORD(2, 0), MAKEWORD(2, 2)] {
        let ws = started_version(&stack, version);
        assert_wsa_error(
            ws.WSASetBlockingHook(Box::new(|| false)).map(drop),
            WsaError::WSAEOPNOTSUPP,
        );
        assert_wsa_error(ws.WSAUnhookBlockingHook(), WsaError::WSAEOPNOTSUPP);
        assert_wsa_error(ws.WSAIsBlocking(), WsaError::WSAEOPNOTSUPP);
        assert_wsa_error(ws.WSACancelBlockingCall(), WsaError::WSAEOPNOTSUPP);
        ws.WSACleanup().expect("WSACleanup");
    }
    // The same calls work once the application negotiates 1.1.
    let ws = started_version(&stack, MAKEWORD(1, 1));
    assert!(ws.WSASetBlockingHook(Box::new(|| false)).is_ok());
    assert_eq!(ws.WSAUnhookBlockingHook(), Ok(()));
    assert_eq!(ws.WSAIsBlocking(), Ok(false));
    assert_wsa_error(ws.WSACancelBlockingCall(), WsaError::WSAEINVAL);
}

/// Runs `call` on another thread and, after `delay`, `stop` on this one; the call's result and
/// the other thread's last error. `None` if the call had not started yet when `stop` ran (it
/// then fails `WSAENOTSOCK` or `WSANOTINITIALISED`), so the caller tries again with a longer
/// delay instead of depending on the scheduler.
fn stopped(
    call: impl FnOnce() -> Result<i32, WsaError> + Send + 'static,
    delay: Duration,
    stop: impl FnOnce(),
) -> Option<(Result<i32, WsaError>, i32)> {
    let worker = thread::spawn(move || {
        let r = call();
        (r, WSAGetLastError())
    });
    thread::sleep(delay);
    stop();
    let (r, last) = worker.join().expect("worker");
    match r {
        Err(WsaError::WSAENOTSOCK | WsaError::WSANOTINITIALISED) => None,
        r => Some((r, last)),
    }
}

/// In 2.x mode a blocking call ends with `WSAEINTR` when another thread closes its socket or
/// calls the final `WSACleanup` (D-29): a UDP `recvfrom`, a TCP `send` that had queued part of
/// its data, and an `accept`.
#[test]
fn close_and_cleanup_from_another_thread_interrupt_in_2x_mode() {
    let (a, b) = two_hosts(35201);
    let (c, s) = tcp_pair(&a, &b, 35200);
    let mut port = 35201;
    for delay in [200, 1000, 3000].map(Duration::from_millis) {
        let u = udp_bound(&b, at(B, port));
        port += 1;
        let ws = b.clone();
        let r = stopped(
            move || recvfrom(&ws, u, &mut [0u8; 8], 0).map(|(n, _)| n),
            delay,
            || b.closesocket(u).expect("closesocket"),
        );
        if let Some((r, last)) = r {
            assert_eq!(r, Err(WsaError::WSAEINTR), "recvfrom");
            assert_eq!(last, WsaError::WSAEINTR.0);
            break;
        }
        assert!(delay < Duration::from_secs(3), "recvfrom never started");
    }
    // A send much larger than both buffers, closed once its first bytes reached the peer (so
    // it is under way, and has queued part of its data).
    let ws = b.clone();
    let big = pattern(4 << 20, 35201);
    let sender = thread::spawn(move || {
        let r = ws.send(s, &big, 0);
        (r, WSAGetLastError())
    });
    assert!(
        wait_until(PATIENCE, || fionread(&a, c) > 0),
        "the send starts"
    );
    b.closesocket(s).expect("closesocket");
    assert_eq!(
        sender.join().expect("sender"),
        (Err(WsaError::WSAEINTR), WsaError::WSAEINTR.0),
        "send"
    );
    // The final WSACleanup ends a blocked accept on another thread.
    for delay in [200, 1000, 3000].map(Duration::from_millis) {
        let ws = started(a.stack());
        let l = listener(&ws, at(A, port), 1);
        port += 1;
        let w = ws.clone();
        let r = stopped(
            move || w.accept(l, None, None).map(|s| s as i32),
            delay,
            || ws.WSACleanup().expect("WSACleanup"),
        );
        if let Some((r, last)) = r {
            assert_eq!(r, Err(WsaError::WSAEINTR), "accept");
            assert_eq!(last, WsaError::WSAEINTR.0);
            return;
        }
        assert!(delay < Duration::from_secs(3), "accept never started");
    }
}

/// Interrupts `s` until the thread blocked on it has finished (the interruption only reaches a
/// call already blocked, so it is repeated rather than timed); false if it never finished.
fn interrupt_until_done<T>(ws: &Winsock, s: SOCKET, worker: &JoinHandle<T>) -> bool {
    wait_until(PATIENCE, || {
        ws.interrupt_blocking_calls(s)
            .expect("interrupt_blocking_calls");
        worker.is_finished()
    })
}

/// `Winsock::interrupt_blocking_calls` (not a spec function; the Rust face's cancellation) ends
/// a blocked `recv` and a blocked `accept` with `WSAEINTR`, and the sockets work afterwards.
#[test]
fn interrupt_ends_blocked_recv_and_accept() {
    let (a, b) = two_hosts(35301);
    let (c, s) = tcp_pair(&a, &b, 35300);
    let l = listener(&b, at(B, 35301), 4);
    // recv
    let ws = b.clone();
    let receiver = thread::spawn(move || {
        let r = ws.recv(s, &mut [0u8; 8], 0);
        (r, WSAGetLastError())
    });
    let done = interrupt_until_done(&b, s, &receiver);
    if !done {
        send_all(&a, c, b"unblock");
    }
    assert_eq!(
        receiver.join().expect("receiver"),
        (Err(WsaError::WSAEINTR), WsaError::WSAEINTR.0)
    );
    assert!(done);
    send_all(&a, c, b"after");
    assert_eq!(recv_exact(&b, s, 5), b"after", "the socket still receives");
    send_all(&b, s, b"back");
    assert_eq!(recv_exact(&a, c, 4), b"back", "and sends");
    // accept
    let ws = b.clone();
    let acceptor = thread::spawn(move || {
        let r = ws.accept(l, None, None);
        (r, WSAGetLastError())
    });
    let done = interrupt_until_done(&b, l, &acceptor);
    if !done {
        let c = new_socket(&a, SOCK_STREAM);
        connect(&a, c, at(B, 35301)).expect("connect");
    }
    assert_eq!(
        acceptor.join().expect("acceptor"),
        (Err(WsaError::WSAEINTR), WsaError::WSAEINTR.0)
    );
    assert!(done);
    let c2 = new_socket(&a, SOCK_STREAM);
    connect(&a, c2, at(B, 35301)).expect("connect");
    let s2 = b.accept(l, None, None).expect("the listener still accepts");
    send_all(&a, c2, b"new");
    assert_eq!(recv_exact(&b, s2, 3), b"new");
}

/// `interrupt_blocking_calls` reaches only calls blocked at that moment: one made afterwards
/// waits as usual; a blocked `send` that had queued part of its data returns that count (the
/// stream stays consistent); a closed socket is `WSAENOTSOCK`.
#[test]
fn interrupt_affects_only_calls_in_progress() {
    let (a, b) = two_hosts(35401);
    let (c, s) = tcp_pair(&a, &b, 35400);
    b.interrupt_blocking_calls(s)
        .expect("nothing blocked: a no-op");
    let wa = a.clone();
    let peer = thread::spawn(move || {
        thread::sleep(Duration::from_millis(50));
        send_all(&wa, c, b"later");
    });
    assert_eq!(
        recv_exact(&b, s, 5),
        b"later",
        "an earlier interrupt does not cancel it"
    );
    peer.join().expect("peer");
    // A partial send: A reads nothing until the send has been interrupted.
    let big = pattern(4 << 20, 35401);
    let (ws, data) = (b.clone(), big.clone());
    let sender = thread::spawn(move || ws.send(s, &data, 0));
    assert!(interrupt_until_done(&b, s, &sender), "the send ends");
    let n = sender
        .join()
        .expect("sender")
        .expect("a partial count, not an error") as usize;
    assert!(n > 0 && n < big.len(), "sent {n} of {}", big.len());
    // The rest follows and A receives the exact stream.
    let (ws, rest) = (b.clone(), big[n..].to_vec());
    let sender = thread::spawn(move || send_all(&ws, s, &rest));
    assert!(recv_exact(&a, c, big.len()) == big, "the stream is intact");
    sender.join().expect("sender");
    b.closesocket(s).expect("close");
    assert_wsa_error(b.interrupt_blocking_calls(s), WsaError::WSAENOTSOCK);
}
