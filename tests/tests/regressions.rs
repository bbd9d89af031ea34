//! Regressions, named after what broke.

use std::io::{Read, Write};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use ws2_stack::net::{TcpListener, TcpStream};
use ws2_stack::winsock::*;
use ws2_stack::{Stack, StackConfig};
use ws2_tap::VirtualSwitch;
use ws2_tests::*;

/// Conformance: 137, 160 — bidirectional bulk echo with the default buffers finishes: with a
/// scaled window smoltcp's receiver shrank its right edge by rounding, the sender overran it,
/// and at a zero window the receiver dropped its ACKs, stalling echo traffic for seconds or for
/// good (docs/decisions.md, "TCP buffers").
#[test]
fn issue_2_bidirectional_echo_does_not_stall() {
    let (done_tx, done_rx) = mpsc::channel();
    thread::spawn(move || {
        let switch = VirtualSwitch::new(11);
        let server = Stack::new(
            StackConfig::new("10.0.0.1/24".parse().unwrap()),
            switch.port(),
        )
        .unwrap();
        let client = Stack::new(
            StackConfig::new("10.0.0.2/24".parse().unwrap()),
            switch.port(),
        )
        .unwrap();
        let listener = TcpListener::bind(&server, "10.0.0.1:7").unwrap();
        thread::spawn(move || {
            while let Ok((s, _)) = listener.accept() {
                thread::spawn(move || {
                    let mut buf = vec![0u8; 65536];
                    while let Ok(n @ 1..) = (&s).read(&mut buf) {
                        (&s).write_all(&buf[..n]).unwrap();
                    }
                    let _ = s.shutdown(std::net::Shutdown::Write);
                });
            }
        });
        for _round in 0..20 {
            let c = TcpStream::connect(&client, "10.0.0.1:7").unwrap();
            let total = 4 << 20;
            thread::scope(|scope| {
                scope.spawn(|| {
                    let chunk = vec![0x5au8; 32 * 1024];
                    for _ in 0..total / chunk.len() {
                        (&c).write_all(&chunk).unwrap();
                    }
                    c.shutdown(std::net::Shutdown::Write).unwrap();
                });
                let mut got = 0;
                let mut buf = vec![0u8; 65536];
                while let Ok(n @ 1..) = (&c).read(&mut buf) {
                    assert!(buf[..n].iter().all(|b| *b == 0x5a));
                    got += n;
                }
                assert_eq!(got, total);
            });
        }
        done_tx.send(()).unwrap();
    });
    // A liveness guard, not a timing assertion: 20 rounds of 4 MiB take well under a second
    // each; a stall of this kind never ends.
    done_rx
        .recv_timeout(Duration::from_secs(120))
        .expect("echo traffic stalled");
}

/// Fragmented datagrams sent back to back all arrive: smoltcp's one fragmenter is not
/// overwritten by the next datagram before the last fragment is out (engine/device.rs).
#[test]
fn back_to_back_fragmented_datagrams() {
    let (a, b) = two_hosts(7301);
    let rx = udp_bound(&b, at(B, 7301));
    let tx = udp_bound(&a, at(A, 7302));
    set_int(&b, rx, SOL_SOCKET, SO_RCVTIMEO, 2000).unwrap();
    let mut got = Vec::new();
    let mut buf = vec![0u8; 10_000];
    for round in 0..3u8 {
        for i in 0..2u8 {
            let d = vec![round * 2 + i; 4000];
            sendto(&a, tx, &d, at(B, 7301)).unwrap();
        }
        for _ in 0..2 {
            match b.recv(rx, &mut buf, 0) {
                Ok(n) => got.push((n, buf[0])),
                Err(e) => got.push((0, e.0 as u8)),
            }
        }
    }
    assert_eq!(
        got,
        vec![
            (4000, 0),
            (4000, 1),
            (4000, 2),
            (4000, 3),
            (4000, 4),
            (4000, 5)
        ]
    );
}
