//! CHECKLIST Part 2 group K: event objects — `WSACreateEvent`, `WSACloseEvent`, `WSASetEvent`,
//! `WSAResetEvent`, `WSAWaitForMultipleEvents` (Part 1 §1.0.3, §1.6.8; D-28, D-31), and the bad
//! input those calls must refuse.

use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use ws2_stack::winsock::*;
use ws2_stack::WsaError;
use ws2_tap::VirtualSwitch;
use ws2_tests::*;

/// One started application on a stack of its own (events need no network).
fn app(seed: u64) -> Winsock {
    let switch = VirtualSwitch::new(seed);
    started(&stack_on(&switch, config(A)))
}

/// `WSAWaitForMultipleEvents` with timeout 0, not alertable: a non-blocking test of `events`.
#[track_caller]
fn poll(ws: &Winsock, events: &[WSAEVENT], all: bool) -> u32 {
    ws.WSAWaitForMultipleEvents(events, all, 0, false)
        .expect("wait succeeds")
}

/// Conformance: 297 — `WSACreateEvent` returns a valid handle whose event starts nonsignaled.
#[test]
fn new_event_is_nonsignaled() {
    let ws = app(29700);
    let ev = ws.WSACreateEvent().expect("WSACreateEvent");
    assert_ne!(
        ev, WSA_INVALID_EVENT,
        "a created event is not WSA_INVALID_EVENT"
    );
    assert_eq!(poll(&ws, &[ev], false), WSA_WAIT_TIMEOUT);
    assert_eq!(poll(&ws, &[ev], true), WSA_WAIT_TIMEOUT);
    // Two events are two handles, each nonsignaled.
    let ev2 = ws.WSACreateEvent().expect("WSACreateEvent");
    assert_ne!(ev, ev2);
    assert_eq!(poll(&ws, &[ev, ev2], false), WSA_WAIT_TIMEOUT);
    ws.WSACloseEvent(ev).unwrap();
    ws.WSACloseEvent(ev2).unwrap();
}

/// Conformance: 298 — an event set with `WSASetEvent` stays signaled across repeated waits
/// (manual reset) until `WSAResetEvent`; setting twice or resetting twice is harmless.
#[test]
fn manual_reset_event() {
    let ws = app(29800);
    let ev = ws.WSACreateEvent().unwrap();
    ws.WSASetEvent(ev).expect("WSASetEvent");
    for _ in 0..5 {
        assert_eq!(poll(&ws, &[ev], false), WSA_WAIT_EVENT_0);
    }
    // A wait with a time-out also returns at once and leaves the state alone.
    assert_eq!(
        ws.WSAWaitForMultipleEvents(&[ev], false, 5000, false),
        Ok(WSA_WAIT_EVENT_0)
    );
    ws.WSASetEvent(ev).expect("setting a set event");
    assert_eq!(poll(&ws, &[ev], false), WSA_WAIT_EVENT_0);
    ws.WSAResetEvent(ev).expect("WSAResetEvent");
    assert_eq!(poll(&ws, &[ev], false), WSA_WAIT_TIMEOUT);
    ws.WSAResetEvent(ev).expect("resetting a reset event");
    assert_eq!(poll(&ws, &[ev], false), WSA_WAIT_TIMEOUT);
    ws.WSASetEvent(ev).unwrap();
    assert_eq!(poll(&ws, &[ev], false), WSA_WAIT_EVENT_0);
    ws.WSACloseEvent(ev).unwrap();
}

/// Conformance: 299 — after `WSACloseEvent`, `WSASetEvent`, `WSAResetEvent`,
/// `WSAWaitForMultipleEvents` and a second `WSACloseEvent` on the handle fail with
/// `WSA_INVALID_HANDLE` (and `WSAGetLastError` says so).
#[test]
fn closed_event_is_invalid_handle() {
    let ws = app(29900);
    let ev = ws.WSACreateEvent().unwrap();
    let other = ws.WSACreateEvent().unwrap();
    ws.WSASetEvent(ev).unwrap();
    ws.WSACloseEvent(ev).expect("WSACloseEvent");
    assert_wsa_error(ws.WSASetEvent(ev), WsaError::WSA_INVALID_HANDLE);
    assert_wsa_error(ws.WSAResetEvent(ev), WsaError::WSA_INVALID_HANDLE);
    assert_wsa_error(
        ws.WSAWaitForMultipleEvents(&[ev], false, 0, false),
        WsaError::WSA_INVALID_HANDLE,
    );
    assert_wsa_error(
        ws.WSAWaitForMultipleEvents(&[ev], false, 200, true),
        WsaError::WSA_INVALID_HANDLE,
    );
    assert_wsa_error(ws.WSACloseEvent(ev), WsaError::WSA_INVALID_HANDLE);
    // Closing one event leaves the others alone.
    ws.WSASetEvent(other)
        .expect("the other event is still open");
    assert_eq!(poll(&ws, &[other], false), WSA_WAIT_EVENT_0);
    ws.WSACloseEvent(other).unwrap();
}

/// Conformance: 300 — wait-any returns `WSA_WAIT_EVENT_0 + i` for the signaled event i, and the
/// lowest index when several are signaled (D-31); waiting changes no state.
#[test]
fn wait_any_reports_lowest_signaled_index() {
    let ws = app(30000);
    let evs: Vec<WSAEVENT> = (0..6).map(|_| ws.WSACreateEvent().unwrap()).collect();
    for i in 0..evs.len() {
        ws.WSASetEvent(evs[i]).unwrap();
        assert_eq!(poll(&ws, &evs, false), WSA_WAIT_EVENT_0 + i as u32);
        ws.WSAResetEvent(evs[i]).unwrap();
    }
    ws.WSASetEvent(evs[4]).unwrap();
    ws.WSASetEvent(evs[2]).unwrap();
    ws.WSASetEvent(evs[5]).unwrap();
    assert_eq!(poll(&ws, &evs, false), WSA_WAIT_EVENT_0 + 2);
    assert_eq!(
        poll(&ws, &evs, false),
        WSA_WAIT_EVENT_0 + 2,
        "the wait did not reset the event it reported"
    );
    ws.WSASetEvent(evs[0]).unwrap();
    assert_eq!(poll(&ws, &evs, false), WSA_WAIT_EVENT_0);
    // The index is the position in the array given, not anything about the handle.
    let reversed: Vec<WSAEVENT> = evs.iter().rev().copied().collect();
    assert_eq!(
        poll(&ws, &reversed, false),
        WSA_WAIT_EVENT_0,
        "evs[5] is first"
    );
    ws.WSAResetEvent(evs[5]).unwrap();
    assert_eq!(poll(&ws, &reversed, false), WSA_WAIT_EVENT_0 + 1, "evs[4]");
    // A blocked wait-any returns the index of the event set later.
    let ws2 = ws.clone();
    let quiet: Vec<WSAEVENT> = evs[..2].to_vec();
    ws.WSAResetEvent(evs[0]).unwrap();
    let setter = thread::spawn(move || {
        thread::sleep(Duration::from_millis(200));
        ws2.WSASetEvent(quiet[1]).unwrap();
    });
    assert_eq!(
        ws.WSAWaitForMultipleEvents(&evs[..2], false, 5000, false),
        Ok(WSA_WAIT_EVENT_0 + 1)
    );
    setter.join().unwrap();
    for e in evs {
        ws.WSACloseEvent(e).unwrap();
    }
}

/// Conformance: 301 — wait-all does not return while only some of the events are signaled,
/// returns once all are, and leaves them all signaled.
#[test]
fn wait_all_needs_every_event() {
    let ws = app(30100);
    let evs: Vec<WSAEVENT> = (0..4).map(|_| ws.WSACreateEvent().unwrap()).collect();
    ws.WSASetEvent(evs[0]).unwrap();
    ws.WSASetEvent(evs[2]).unwrap();
    assert_eq!(poll(&ws, &evs, true), WSA_WAIT_TIMEOUT);
    assert_eq!(
        ws.WSAWaitForMultipleEvents(&evs, true, 250, false),
        Ok(WSA_WAIT_TIMEOUT)
    );
    // Signaled events were not consumed by the failed wait.
    assert_eq!(poll(&ws, &evs, false), WSA_WAIT_EVENT_0);

    let (tx, rx) = mpsc::channel();
    let waiter = {
        let ws = ws.clone();
        let evs = evs.clone();
        thread::spawn(move || {
            let r = ws.WSAWaitForMultipleEvents(&evs, true, WSA_INFINITE, false);
            tx.send(r).unwrap();
        })
    };
    ws.WSASetEvent(evs[1]).unwrap();
    assert!(
        rx.recv_timeout(Duration::from_millis(300)).is_err(),
        "wait-all returned with three of four events signaled"
    );
    ws.WSASetEvent(evs[3]).unwrap();
    let r = rx
        .recv_timeout(Duration::from_secs(5))
        .expect("wait-all returns once every event is signaled");
    assert_eq!(r, Ok(WSA_WAIT_EVENT_0));
    waiter.join().unwrap();
    for &e in &evs {
        assert_eq!(poll(&ws, &[e], false), WSA_WAIT_EVENT_0, "still signaled");
    }
    assert_eq!(poll(&ws, &evs, true), WSA_WAIT_EVENT_0);
    for e in evs {
        ws.WSACloseEvent(e).unwrap();
    }
}

/// Conformance: 302 — `dwTimeout = 0` tests the events and returns at once, signaled or not,
/// alertable or not.
#[test]
fn zero_timeout_returns_immediately() {
    let ws = app(30200);
    let evs: Vec<WSAEVENT> = (0..WSA_MAXIMUM_WAIT_EVENTS)
        .map(|_| ws.WSACreateEvent().unwrap())
        .collect();
    let started = Instant::now();
    for _ in 0..20 {
        assert_eq!(
            ws.WSAWaitForMultipleEvents(&evs, false, 0, false),
            Ok(WSA_WAIT_TIMEOUT)
        );
        assert_eq!(
            ws.WSAWaitForMultipleEvents(&evs, true, 0, true),
            Ok(WSA_WAIT_TIMEOUT)
        );
    }
    ws.WSASetEvent(evs[63]).unwrap();
    for _ in 0..20 {
        assert_eq!(
            ws.WSAWaitForMultipleEvents(&evs, false, 0, true),
            Ok(WSA_WAIT_EVENT_0 + 63)
        );
        assert_eq!(
            ws.WSAWaitForMultipleEvents(&evs, true, 0, false),
            Ok(WSA_WAIT_TIMEOUT)
        );
    }
    // 80 zero-timeout waits: far below one second unless a wait sleeps.
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "zero-timeout waits took {:?}",
        started.elapsed()
    );
    for e in evs {
        ws.WSACloseEvent(e).unwrap();
    }
}

/// Conformance: 303 — with nothing signaled, the wait returns `WSA_WAIT_TIMEOUT` after roughly
/// `dwTimeout` milliseconds (not before).
#[test]
fn timeout_elapses() {
    let ws = app(30300);
    let evs: Vec<WSAEVENT> = (0..3).map(|_| ws.WSACreateEvent().unwrap()).collect();
    for (ms, all, alertable) in [(300, false, false), (250, true, false), (300, false, true)] {
        let started = Instant::now();
        assert_eq!(
            ws.WSAWaitForMultipleEvents(&evs, all, ms, alertable),
            Ok(WSA_WAIT_TIMEOUT)
        );
        let took = started.elapsed();
        assert!(
            took >= Duration::from_millis(u64::from(ms)),
            "returned after {took:?}, before the {ms} ms time-out"
        );
        assert!(
            took < Duration::from_secs(5),
            "returned after {took:?} for a {ms} ms time-out"
        );
    }
    for e in evs {
        ws.WSACloseEvent(e).unwrap();
    }
}

/// Conformance: 304 — `cEvents = 0` and `cEvents = WSA_MAXIMUM_WAIT_EVENTS + 1` fail with
/// `WSA_INVALID_PARAMETER` (`WSA_WAIT_FAILED`), while exactly `WSA_MAXIMUM_WAIT_EVENTS` works.
#[test]
fn event_count_out_of_range() {
    let ws = app(30400);
    assert_eq!(WSA_MAXIMUM_WAIT_EVENTS, 64);
    assert_eq!(WSA_WAIT_FAILED, 0xFFFF_FFFF);
    assert_eq!(WSA_WAIT_IO_COMPLETION, 0xC0, "D-28");
    assert_wsa_error(
        ws.WSAWaitForMultipleEvents(&[], false, 0, false),
        WsaError::WSA_INVALID_PARAMETER,
    );
    assert_wsa_error(
        ws.WSAWaitForMultipleEvents(&[], true, WSA_INFINITE, true),
        WsaError::WSA_INVALID_PARAMETER,
    );
    let evs: Vec<WSAEVENT> = (0..WSA_MAXIMUM_WAIT_EVENTS + 1)
        .map(|_| ws.WSACreateEvent().unwrap())
        .collect();
    for &e in &evs {
        ws.WSASetEvent(e).unwrap();
    }
    // 65 signaled events: still refused, and refused at once even with an infinite time-out.
    assert_wsa_error(
        ws.WSAWaitForMultipleEvents(&evs, false, WSA_INFINITE, false),
        WsaError::WSA_INVALID_PARAMETER,
    );
    assert_wsa_error(
        ws.WSAWaitForMultipleEvents(&evs, true, 0, true),
        WsaError::WSA_INVALID_PARAMETER,
    );
    assert_eq!(
        ws.WSAWaitForMultipleEvents(&evs[..WSA_MAXIMUM_WAIT_EVENTS], true, 0, false),
        Ok(WSA_WAIT_EVENT_0)
    );
    assert_eq!(
        ws.WSAWaitForMultipleEvents(&evs[1..], false, 0, false),
        Ok(WSA_WAIT_EVENT_0)
    );
    for e in evs {
        ws.WSACloseEvent(e).unwrap();
    }
}

/// Conformance: 305 — a handle in the array that is not an open event (never created,
/// `WSA_INVALID_EVENT`, another application's, closed) fails the wait with `WSA_INVALID_HANDLE`,
/// even when another event in the array is signaled.
#[test]
fn invalid_handle_in_array() {
    let ws = app(30500);
    let ev = ws.WSACreateEvent().unwrap();
    ws.WSASetEvent(ev).unwrap();
    let foreign_app = app(30501);
    let foreign = foreign_app.WSACreateEvent().unwrap();
    let closed = ws.WSACreateEvent().unwrap();
    ws.WSACloseEvent(closed).unwrap();
    for bad in [WSA_INVALID_EVENT, 0x7fff_fff0, usize::MAX, foreign, closed] {
        for arr in [vec![bad], vec![ev, bad], vec![bad, ev]] {
            for all in [false, true] {
                assert_wsa_error(
                    ws.WSAWaitForMultipleEvents(&arr, all, 0, false),
                    WsaError::WSA_INVALID_HANDLE,
                );
            }
        }
        assert_wsa_error(
            ws.WSAWaitForMultipleEvents(&[ev, bad], false, WSA_INFINITE, true),
            WsaError::WSA_INVALID_HANDLE,
        );
    }
    // The foreign event is fine in its own application.
    foreign_app.WSASetEvent(foreign).unwrap();
    assert_eq!(poll(&foreign_app, &[foreign], false), WSA_WAIT_EVENT_0);
    ws.WSACloseEvent(ev).unwrap();
    foreign_app.WSACloseEvent(foreign).unwrap();
}

/// Conformance: 306 — `WSAWaitForMultipleEvents(WSA_INFINITE)` blocks until another thread calls
/// `WSASetEvent`, then returns that event's index.
#[test]
fn infinite_wait_ends_on_set_from_another_thread() {
    let ws = app(30600);
    let evs: Vec<WSAEVENT> = (0..3).map(|_| ws.WSACreateEvent().unwrap()).collect();
    for (target, alertable) in [(0usize, false), (2, true)] {
        let (tx, rx) = mpsc::channel();
        let waiter = {
            let ws = ws.clone();
            let evs = evs.clone();
            thread::spawn(move || {
                tx.send(ws.WSAWaitForMultipleEvents(&evs, false, WSA_INFINITE, alertable))
                    .unwrap();
            })
        };
        assert!(
            rx.recv_timeout(Duration::from_millis(250)).is_err(),
            "an infinite wait returned with nothing signaled"
        );
        ws.WSASetEvent(evs[target]).unwrap();
        let r = rx
            .recv_timeout(Duration::from_secs(5))
            .expect("the wait returns after WSASetEvent");
        assert_eq!(r, Ok(WSA_WAIT_EVENT_0 + target as u32));
        waiter.join().unwrap();
        ws.WSAResetEvent(evs[target]).unwrap();
    }
    for e in evs {
        ws.WSACloseEvent(e).unwrap();
    }
}

/// Conformance: 299 — `WSASetEvent`, `WSAResetEvent` and `WSACloseEvent` on handles that were
/// never events here (`WSA_INVALID_EVENT`, unknown values, another application's event) fail with
/// `WSA_INVALID_HANDLE` and change nothing.
#[test]
fn unknown_handles_are_invalid() {
    let ws = app(30700);
    let other = app(30701);
    let theirs = other.WSACreateEvent().unwrap();
    let mine = ws.WSACreateEvent().unwrap();
    for bad in [WSA_INVALID_EVENT, 1usize << 40, usize::MAX, theirs] {
        assert_wsa_error(ws.WSASetEvent(bad), WsaError::WSA_INVALID_HANDLE);
        assert_wsa_error(ws.WSAResetEvent(bad), WsaError::WSA_INVALID_HANDLE);
        assert_wsa_error(ws.WSACloseEvent(bad), WsaError::WSA_INVALID_HANDLE);
    }
    // The other application's event was neither set nor closed by those calls.
    assert_eq!(poll(&other, &[theirs], false), WSA_WAIT_TIMEOUT);
    other
        .WSASetEvent(theirs)
        .expect("still open in its application");
    assert_eq!(poll(&other, &[theirs], false), WSA_WAIT_EVENT_0);
    assert_eq!(poll(&ws, &[mine], false), WSA_WAIT_TIMEOUT);
    ws.WSACloseEvent(mine).unwrap();
    other.WSACloseEvent(theirs).unwrap();
}

/// Conformance: issue 3 bad input — the event calls before `WSAStartup` and after the final
/// `WSACleanup` fail with `WSANOTINITIALISED`.
#[test]
fn event_calls_need_startup() {
    let switch = VirtualSwitch::new(30800);
    let ws = Winsock::new(stack_on(&switch, config(A)));
    assert_wsa_error(ws.WSACreateEvent(), WsaError::WSANOTINITIALISED);
    assert_wsa_error(ws.WSASetEvent(1), WsaError::WSANOTINITIALISED);
    assert_wsa_error(ws.WSAResetEvent(1), WsaError::WSANOTINITIALISED);
    assert_wsa_error(ws.WSACloseEvent(1), WsaError::WSANOTINITIALISED);
    assert_wsa_error(
        ws.WSAWaitForMultipleEvents(&[1], false, 0, false),
        WsaError::WSANOTINITIALISED,
    );
    let mut data = WSADATA::default();
    assert_eq!(ws.WSAStartup(MAKEWORD(2, 2), Some(&mut data)), 0);
    let ev = ws.WSACreateEvent().unwrap();
    ws.WSACleanup().unwrap();
    assert_wsa_error(ws.WSASetEvent(ev), WsaError::WSANOTINITIALISED);
    assert_wsa_error(
        ws.WSAWaitForMultipleEvents(&[ev], false, 0, false),
        WsaError::WSANOTINITIALISED,
    );
}
