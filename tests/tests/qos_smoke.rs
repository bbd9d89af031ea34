//! Smoke checks of QoS shaping end to end (the conformance tests are in winsock_qos.rs).

use std::time::{Duration, Instant};

use ws2_stack::winsock::*;
use ws2_tests::*;

fn shaped(ws: &Winsock, s: SOCKET, rate: i32, bucket: i32) {
    let mut q = QOS::default();
    q.SendingFlowspec.TokenRate = rate;
    q.SendingFlowspec.TokenBucketSize = bucket;
    let mut ret = 0;
    ws.WSAIoctl(
        s,
        SIO_SET_QOS,
        &q.to_bytes(),
        &mut [],
        Some(&mut ret),
        None,
        None,
    )
    .expect("SIO_SET_QOS");
}

/// Conformance: 361 — bulk UDP offered above the token rate arrives at the token rate.
#[test]
fn udp_is_shaped_to_the_token_rate() {
    let (a, b) = two_hosts(4001);
    let rx = udp_bound(&b, at(B, 4001));
    let tx = udp_bound(&a, at(A, 4002));
    let rate = 125_000;
    shaped(&a, tx, rate, 3000);
    let payload = vec![7u8; 1000];
    let frame = 1000 + 8 + 20 + 14;
    let sender = {
        let a = a.clone();
        std::thread::spawn(move || {
            let end = Instant::now() + Duration::from_secs(3);
            while Instant::now() < end {
                a.sendto(tx, &payload, 0, Some(&sa(at(B, 4001))), SOCKADDR_IN_LEN)
                    .expect("blocking sendto waits for credit");
            }
        })
    };
    let mut buf = [0u8; 2000];
    let mut got = 0usize;
    set_int(&b, rx, SOL_SOCKET, SO_RCVTIMEO, 1000).unwrap();
    let mut first = None;
    let mut last = Instant::now();
    while let Ok(n) = b.recv(rx, &mut buf, 0) {
        first.get_or_insert(Instant::now());
        got += n as usize;
        last = Instant::now();
    }
    sender.join().unwrap();
    let secs = last.duration_since(first.unwrap()).as_secs_f64();
    let frames = got / 1000;
    let wire_rate = ((frames - 3) * frame) as f64 / secs; // the first burst is the bucket
    assert!(
        (wire_rate - rate as f64).abs() / (rate as f64) < 0.05,
        "wire rate {wire_rate:.0} B/s against {rate}"
    );
}
