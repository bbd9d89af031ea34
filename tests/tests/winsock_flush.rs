//! `SIO_FLUSH` on a shaped datagram socket (CHECKLIST §1.14.2, 491): what still waits in the
//! socket's shaper queue is discarded and never reaches the peer.

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use ws2_stack::winsock::*;
use ws2_stack::WsaError;
use ws2_tests::*;

const A: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
const B: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);

/// A slow sending flowspec: 8,000 B/s, a bucket of two frames.
fn slow() -> QOS {
    let mut q = QOS::default();
    q.SendingFlowspec.TokenRate = 8_000;
    q.SendingFlowspec.TokenBucketSize = 2_200;
    q.SendingFlowspec.PeakBandwidth = 1_000_000;
    q.SendingFlowspec.LevelOfGuarantee = GUARANTEE::ControlledLoadService;
    q
}

/// Sends 1,000-byte datagrams numbered from `first` until the shaper's queue is full; returns
/// how many went.
fn fill(ws: &Winsock, s: SOCKET, first: u8) -> u8 {
    let mut n = 0u8;
    loop {
        match sendto(ws, s, &[first.wrapping_add(n); 1000], at(B, 4910)) {
            Ok(_) => n += 1,
            Err(WsaError::WSAEWOULDBLOCK) => return n,
            Err(e) => panic!("sendto: {e:?}"),
        }
        assert!(n < 200, "the shaper queue is bounded");
    }
}

/// The first byte of every datagram that arrives within `wait`.
fn arrivals(ws: &Winsock, s: SOCKET, wait: Duration) -> Vec<u8> {
    let mut got = Vec::new();
    let until = Instant::now() + wait;
    let mut buf = [0u8; 2000];
    while Instant::now() < until {
        match ws.recv(s, &mut buf, 0) {
            Ok(_) => got.push(buf[0]),
            Err(WsaError::WSAEWOULDBLOCK) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => panic!("recv: {e:?}"),
        }
    }
    got
}

/// Conformance: 491 — `WSAIoctl(SIO_FLUSH)` discards queued unsent data so it never reaches the peer.
#[test]
fn flush_discards_what_waits_in_the_shaper() {
    let (a, b) = two_hosts(491);
    let rx = udp_bound(&b, at(B, 4910));
    set_nonblocking(&b, rx, true);
    let tx = udp_bound(&a, at(A, 4911));
    set_nonblocking(&a, tx, true);
    let mut n = 0;
    a.WSAIoctl(
        tx,
        SIO_SET_QOS,
        &slow().to_bytes(),
        &mut [],
        Some(&mut n),
        None,
        None,
    )
    .expect("SIO_SET_QOS");
    // Without a flush every queued datagram arrives, in time (8 kB/s).
    let sent = fill(&a, tx, 0);
    assert!(sent >= 4, "the shaper holds several datagrams ({sent})");
    let secs = Duration::from_millis(u64::from(sent) * 1000 * 1000 / 8_000 + 1500);
    let got = arrivals(&b, rx, secs);
    assert_eq!(
        got,
        (0..sent).collect::<Vec<u8>>(),
        "all of the unflushed batch"
    );
    // With a flush right after queueing, at most the bucket's worth (two frames) leaves.
    let sent = fill(&a, tx, 100);
    a.WSAIoctl(tx, SIO_FLUSH, &[], &mut [], Some(&mut n), None, None)
        .expect("SIO_FLUSH");
    let got = arrivals(&b, rx, Duration::from_millis(u64::from(sent) * 125 + 1500));
    assert!(
        got.len() <= 3 && got.len() < usize::from(sent),
        "only what had left before the flush arrives: {got:?} of {sent}"
    );
    // The socket still works, shaped as before.
    assert_eq!(
        sendto(&a, tx, &[250; 1000], at(B, 4910)).map(|_| ()),
        Ok(())
    );
    assert_eq!(arrivals(&b, rx, Duration::from_millis(800)), vec![250]);
}
