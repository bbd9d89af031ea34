//! Soak: thousands of sockets opened and closed between two stacks leave nothing behind.
//!
//! 3,000 TCP connections (graceful closes from either side first, abortive closes, closes with
//! data still queued) and 3,000 UDP socket pairs, then the engine's tables — Winsock sockets,
//! smoltcp sockets, port bindings, orphans — must return to where they started once the
//! closed connections have finished in the background (TIME-WAIT is smoltcp's 10 s). On
//! virtual time (`ws2_tests::sim`), so TIME-WAIT costs no wall time: every socket is
//! nonblocking and each call that would block runs the simulation until it completes.

use std::net::Ipv4Addr;
use std::time::Duration;

use ws2_stack::winsock::*;
use ws2_stack::{EngineStats, WsaError};
use ws2_tests::sim::Sim;
use ws2_tests::*;

/// How long one call may wait for its peer.
const WAIT: Duration = Duration::from_secs(5);

const TCP_CONNECTIONS: usize = 3_000;
const UDP_PAIRS: usize = 3_000;

fn tables(s: &EngineStats) -> (u64, u64, u64, u64) {
    (s.sockets, s.smoltcp_sockets, s.ports, s.orphans)
}

/// Runs `sim` until `f` no longer fails `WSAEWOULDBLOCK` (at most `WAIT`); returns its result.
#[track_caller]
fn done<T>(sim: &mut Sim, mut f: impl FnMut() -> Result<T, WsaError>) -> Result<T, WsaError> {
    let mut r = None;
    sim.run_until(WAIT, |_| {
        r = match f() {
            Err(WsaError::WSAEWOULDBLOCK) => None,
            other => Some(other),
        };
        r.is_some()
    });
    r.unwrap_or_else(|| panic!("still WSAEWOULDBLOCK after {WAIT:?}"))
}

/// `send` of all of `data`, running `sim` while the window is full.
#[track_caller]
fn send_all(sim: &mut Sim, ws: &Winsock, s: SOCKET, data: &[u8]) {
    let mut sent = 0;
    while sent < data.len() {
        sent += done(sim, || ws.send(s, &data[sent..], 0)).expect("send") as usize;
    }
}

/// Exactly `n` bytes from `s`, running `sim` until they are there.
#[track_caller]
fn recv_exact(sim: &mut Sim, ws: &Winsock, s: SOCKET, n: usize) -> Vec<u8> {
    let mut got = vec![0u8; n];
    let mut have = 0;
    while have < n {
        let k = done(sim, || ws.recv(s, &mut got[have..], 0)).expect("recv");
        assert!(k > 0, "the peer closed after {have} of {n} bytes");
        have += k as usize;
    }
    got
}

/// After 3,000 TCP connections and 3,000 UDP socket pairs are opened and
/// closed, every socket, smoltcp socket and port binding is released.
#[test]
fn thousands_of_sockets_leave_nothing_behind() {
    let mut sim = Sim::new(0x50a4);
    let (a, b) = (sim.host(config(A)), sim.host(config(B)));
    let (a, b) = (sim.winsock(&a), sim.winsock(&b));
    let start = (tables(&a.stack().stats()), tables(&b.stack().stats()));

    let l = listener(&b, at(Ipv4Addr::UNSPECIFIED, 6000), SOMAXCONN);
    set_nonblocking(&b, l, true);
    let mut buf = [0u8; 64];
    for i in 0..TCP_CONNECTIONS {
        let c = new_socket(&a, SOCK_STREAM);
        set_nonblocking(&a, c, true);
        assert_would_block(connect(&a, c, at(B, 6000)));
        assert!(
            sim.run_until(WAIT, |_| poll_one(&a, c, 0).1),
            "connect #{i}"
        );
        let s = done(&mut sim, || b.accept(l, None, None))
            .unwrap_or_else(|e| panic!("accept #{i}: {e:?}"));
        set_nonblocking(&b, s, true);
        match i % 4 {
            // Client closes first, after an exchange: the client side sits in TIME-WAIT.
            0 => {
                send_all(&mut sim, &a, c, b"ping");
                assert_eq!(recv_exact(&mut sim, &b, s, 4), b"ping");
                a.closesocket(c).expect("close");
                assert_eq!(done(&mut sim, || b.recv(s, &mut buf, 0)), Ok(0));
                b.closesocket(s).expect("close");
            }
            // Server closes first.
            1 => {
                b.closesocket(s).expect("close");
                assert_eq!(done(&mut sim, || a.recv(c, &mut buf, 0)), Ok(0));
                a.closesocket(c).expect("close");
            }
            // Abortive close.
            2 => {
                set_linger(&a, c, 1, 0);
                a.closesocket(c).expect("close");
                b.closesocket(s).expect("close");
            }
            // Both close at once with data still queued.
            _ => {
                send_all(&mut sim, &a, c, &[i as u8; 1000]);
                send_all(&mut sim, &b, s, &[i as u8; 1000]);
                a.closesocket(c).expect("close");
                b.closesocket(s).expect("close");
            }
        }
    }
    b.closesocket(l).expect("close listener");
    let tcp_done = sim.elapsed();

    for i in 0..UDP_PAIRS {
        let u = udp_bound(&a, at(A, 0));
        let v = udp_bound(&b, at(B, 0));
        set_nonblocking(&a, u, true);
        set_nonblocking(&b, v, true);
        let to = local_name(&b, v).expect("name");
        sendto(&a, u, b"dgram", to).unwrap_or_else(|e| panic!("sendto #{i}: {e:?}"));
        let (n, from) = done(&mut sim, || recvfrom(&b, v, &mut buf, 0)).expect("recvfrom");
        assert_eq!(n, 5);
        sendto(&b, v, b"back", from).expect("reply");
        assert_eq!(done(&mut sim, || a.recv(u, &mut buf, 0)), Ok(4));
        a.closesocket(u).expect("close");
        b.closesocket(v).expect("close");
    }
    let udp_done = sim.elapsed();

    let at_end = (tables(&a.stack().stats()), tables(&b.stack().stats()));
    assert_eq!(
        (at_end.0 .0, at_end.1 .0),
        (0, 0),
        "no Winsock socket is left in the tables"
    );
    let settled = sim.run_until(Duration::from_secs(60), |_| {
        (tables(&a.stack().stats()), tables(&b.stack().stats())) == start
    });
    let finished = sim.elapsed();
    eprintln!(
        "soak (virtual time): TCP {TCP_CONNECTIONS} in {:.1} s, UDP {UDP_PAIRS} in {:.1} s; right after: A {:?} B {:?}; \
         settled after {:.1} s more: A {:?} B {:?}",
        tcp_done.as_secs_f64(),
        (udp_done - tcp_done).as_secs_f64(),
        at_end.0,
        at_end.1,
        (finished - udp_done).as_secs_f64(),
        a.stack().stats(),
        b.stack().stats(),
    );
    assert!(
        settled,
        "tables did not return to {start:?}: A {:?} B {:?}",
        a.stack().stats(),
        b.stack().stats()
    );
}
