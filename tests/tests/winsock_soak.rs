//! Soak: thousands of sockets opened and closed between two stacks leave nothing behind.
//!
//! 3,000 TCP connections (graceful closes from either side first, abortive closes, closes with
//! data still queued) and 3,000 UDP socket pairs, then the engine's tables — Winsock sockets,
//! smoltcp sockets, port bindings, orphans — must return to where they started once the
//! closed connections have finished in the background (TIME-WAIT is smoltcp's 10 s).

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use ws2_stack::winsock::*;
use ws2_stack::EngineStats;
use ws2_tests::*;

const TCP_CONNECTIONS: usize = 3_000;
const UDP_PAIRS: usize = 3_000;

fn tables(s: &EngineStats) -> (u64, u64, u64, u64) {
    (s.sockets, s.smoltcp_sockets, s.ports, s.orphans)
}

/// After 3,000 TCP connections and 3,000 UDP socket pairs are opened and
/// closed, every socket, smoltcp socket and port binding is released.
#[test]
fn thousands_of_sockets_leave_nothing_behind() {
    let (a, b) = two_hosts(0x50a4);
    let start = (tables(&a.stack().stats()), tables(&b.stack().stats()));
    let started = Instant::now();

    let l = listener(&b, at(Ipv4Addr::UNSPECIFIED, 6000), SOMAXCONN);
    let mut buf = [0u8; 64];
    for i in 0..TCP_CONNECTIONS {
        let c = new_socket(&a, SOCK_STREAM);
        connect(&a, c, at(B, 6000)).unwrap_or_else(|e| panic!("connect #{i}: {e:?}"));
        let s = b
            .accept(l, None, None)
            .unwrap_or_else(|e| panic!("accept #{i}: {e:?}"));
        match i % 4 {
            // Client closes first, after an exchange: the client side sits in TIME-WAIT.
            0 => {
                send_all(&a, c, b"ping");
                assert_eq!(recv_exact(&b, s, 4), b"ping");
                a.closesocket(c).expect("close");
                assert_eq!(b.recv(s, &mut buf, 0), Ok(0));
                b.closesocket(s).expect("close");
            }
            // Server closes first.
            1 => {
                b.closesocket(s).expect("close");
                assert_eq!(a.recv(c, &mut buf, 0), Ok(0));
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
                send_all(&a, c, &[i as u8; 1000]);
                send_all(&b, s, &[i as u8; 1000]);
                a.closesocket(c).expect("close");
                b.closesocket(s).expect("close");
            }
        }
    }
    b.closesocket(l).expect("close listener");
    let tcp_done = started.elapsed();

    for i in 0..UDP_PAIRS {
        let u = udp_bound(&a, at(A, 0));
        let v = udp_bound(&b, at(B, 0));
        let to = local_name(&b, v).expect("name");
        sendto(&a, u, b"dgram", to).unwrap_or_else(|e| panic!("sendto #{i}: {e:?}"));
        let (n, from) = recvfrom(&b, v, &mut buf, 0).expect("recvfrom");
        assert_eq!(n, 5);
        sendto(&b, v, b"back", from).expect("reply");
        assert_eq!(a.recv(u, &mut buf, 0), Ok(4));
        a.closesocket(u).expect("close");
        b.closesocket(v).expect("close");
    }
    let udp_done = started.elapsed();

    let at_end = (tables(&a.stack().stats()), tables(&b.stack().stats()));
    assert_eq!(
        (at_end.0 .0, at_end.1 .0),
        (0, 0),
        "no Winsock socket is left in the tables"
    );
    let settled = wait_until(Duration::from_secs(60), || {
        (tables(&a.stack().stats()), tables(&b.stack().stats())) == start
    });
    let finished = started.elapsed();
    eprintln!(
        "soak: TCP {TCP_CONNECTIONS} in {:.1} s, UDP {UDP_PAIRS} in {:.1} s; right after: A {:?} B {:?}; \
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
