//! Virtual time (`ws2_tests::sim`): the same seed gives the same run, frame for frame, and the
//! graceful end delivers what was handed over (issue 12, items 1, 5 and 6).
//!
//! The scenario: two hosts on a lossy, reordering LAN; a TCP transfer through 5% loss, shaped
//! G.711 datagrams (`WSAGetQOSByName`, CHECKLIST §1.8), then both stacks end gracefully.

use std::path::{Path, PathBuf};
use std::time::Duration;

use ws2_stack::winsock::*;
use ws2_tap::Impairments;
use ws2_tests::sim::Sim;
use ws2_tests::{at, bind, config, connect, new_socket, pattern, set_nonblocking, A, B};

/// A non-blocking UDP socket on `ws` with the G.711 flowspec (`WSAGetQOSByName`, `SIO_SET_QOS`),
/// connected to `to`; with the QOS it got.
fn g711_sender(ws: &Winsock, to: std::net::SocketAddrV4) -> (SOCKET, QOS) {
    let s = new_socket(ws, SOCK_DGRAM);
    let mut name = WSABUF::new(b"G711".to_vec());
    let mut qos = QOS::default();
    ws.WSAGetQOSByName(s, Some(&mut name), Some(&mut qos))
        .expect("G711");
    let mut n = 0;
    ws.WSAIoctl(
        s,
        SIO_SET_QOS,
        &qos.to_bytes(),
        &mut [],
        Some(&mut n),
        None,
        None,
    )
    .expect("SIO_SET_QOS");
    connect(ws, s, to).expect("connect");
    set_nonblocking(ws, s, true);
    (s, qos)
}

/// What one run produced: the bytes B received over TCP and UDP, and both hosts' captures.
#[derive(Debug, PartialEq)]
struct Outcome {
    tcp: Vec<u8>,
    udp: usize,
    pcaps: Vec<Vec<u8>>,
    elapsed: Duration,
}

fn temp(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("ws2-sim-{}-{name}.pcap", std::process::id()))
}

/// Runs the scenario with `seed`, capturing to `pcap_a` and `pcap_b`.
fn run(seed: u64, pcap_a: &Path, pcap_b: &Path) -> Outcome {
    let mut sim = Sim::new(seed);
    let lossy = Impairments {
        loss: 0.05,
        reorder: 0.02,
        reorder_delay: Duration::from_millis(1),
        delay: Duration::from_micros(200),
        ..Impairments::default()
    };
    let a = sim.host_with(config(A), lossy.clone(), Some(pcap_a));
    let b = sim.host_with(config(B), lossy, Some(pcap_b));
    let (wa, wb) = (sim.winsock(&a), sim.winsock(&b));

    // TCP: 200 kB from A to B through 5% loss.
    let (c, s) = sim.tcp_pair(&wa, &wb, at(B, 80));
    let data = pattern(200_000, seed);
    let got = sim.transfer((&wa, c), (&wb, s), &data, Duration::from_secs(120));
    assert_eq!(got.len(), data.len(), "200 kB arrive through 5% loss");
    let mut buf = vec![0u8; 16 * 1024];

    // UDP: shaped G.711 datagrams from A, read by B.
    let ub = new_socket(&wb, SOCK_DGRAM);
    bind(&wb, ub, at(B, 5004)).expect("bind");
    set_nonblocking(&wb, ub, true);
    let (ua, _) = g711_sender(&wa, at(B, 5004));
    let mut udp = 0;
    let mut queued = 0;
    sim.run_until(Duration::from_secs(5), |_| {
        while queued < 40 && wa.send(ua, &[7u8; 160], 0).is_ok() {
            queued += 1;
        }
        while let Ok(n) = wb.recv(ub, &mut buf, 0) {
            udp += n as usize;
        }
        queued == 40 && udp >= 36 * 160
    });
    sim.run_for(Duration::from_secs(1));
    while let Ok(n) = wb.recv(ub, &mut buf, 0) {
        udp += n as usize;
    }

    let reports = sim.shutdown_all(Duration::from_secs(5));
    assert!(
        reports
            .iter()
            .all(|r| r.as_ref().is_some_and(|r| r.complete)),
        "both stacks drain: {reports:?}"
    );
    let elapsed = sim.elapsed();
    drop(sim);
    Outcome {
        tcp: got,
        udp,
        pcaps: vec![
            std::fs::read(pcap_a).expect("pcap A"),
            std::fs::read(pcap_b).expect("pcap B"),
        ],
        elapsed,
    }
}

#[test]
fn the_same_seed_writes_byte_identical_captures() {
    let paths: Vec<PathBuf> = ["1a", "1b", "2a", "2b", "3a", "3b"]
        .iter()
        .map(|n| temp(n))
        .collect();
    let first = run(7, &paths[0], &paths[1]);
    let second = run(7, &paths[2], &paths[3]);
    let other = run(8, &paths[4], &paths[5]);
    for p in &paths {
        let _ = std::fs::remove_file(p);
    }
    assert_eq!(
        first.tcp,
        pattern(200_000, 7),
        "every byte arrives in order"
    );
    assert!(
        first.udp >= 30 * 160,
        "most shaped datagrams arrive through 5% loss"
    );
    assert!(
        first.pcaps[0].len() > 200_000,
        "the capture holds the transfer"
    );
    assert!(
        first == second,
        "seed 7 twice: captures of {} and {} bytes differ",
        first.pcaps[0].len(),
        second.pcaps[0].len()
    );
    assert_ne!(
        first.pcaps, other.pcaps,
        "another seed loses other frames: the comparison can fail"
    );
}

/// Issue 12 item 5: datagrams a shaped socket still holds when its application closes it and
/// the stack ends leave at the flow's rate — all 100 × 172 bytes of a G.711 stream arrive,
/// none faster than the TokenRate allows.
#[test]
fn shaped_datagrams_leave_after_close_and_shutdown() {
    let mut sim = Sim::new(12);
    let a = sim.host(config(A));
    let b = sim.host(config(B));
    let (wa, wb) = (sim.winsock(&a), sim.winsock(&b));
    let ub = new_socket(&wb, SOCK_DGRAM);
    bind(&wb, ub, at(B, 5004)).expect("bind");
    set_nonblocking(&wb, ub, true);
    let (ua, qos) = g711_sender(&wa, at(B, 5004));
    let rate = qos.SendingFlowspec.TokenRate;
    // Hand over 100 datagrams as fast as the socket takes them, then close and end the stack.
    let mut queued = 0;
    sim.run_until(Duration::from_secs(30), |_| {
        while queued < 100 && wa.send(ua, &[7u8; 172], 0).is_ok() {
            queued += 1;
        }
        queued == 100
    });
    let closed_at = sim.elapsed();
    wa.closesocket(ua).expect("closesocket");
    a.begin_shutdown(Duration::from_secs(30));
    let mut buf = [0u8; 2048];
    let mut got = 0;
    sim.run_until(Duration::from_secs(30), |_| {
        while let Ok(n) = wb.recv(ub, &mut buf, 0) {
            got += n as usize;
        }
        got == 100 * 172
    });
    assert_eq!(got, 17_200, "every byte handed over arrives");
    let report = a.drain_report().expect("A has ended");
    assert!(report.complete, "{report}");
    // 100 frames of 172 + 42 bytes at the TokenRate, less the bucket that starts full.
    let frames = 100.0 * 214.0;
    let at_rate = (frames - f64::from(qos.SendingFlowspec.TokenBucketSize)) / f64::from(rate);
    assert!(
        sim.elapsed().as_secs_f64() >= at_rate * 0.95,
        "shaped, not flushed: {:?} for {at_rate:.2} s of traffic (closed at {closed_at:?})",
        sim.elapsed()
    );
}

/// IGMP messages (type, first group record type, group) in a capture: Ethernet, IPv4 protocol
/// 2, read by hand (RFC 3376 §4.2 for v3 reports).
fn igmp_in(pcap: &[u8]) -> Vec<(u8, Option<u8>, [u8; 4])> {
    let mut out = Vec::new();
    let mut at = 24;
    while at + 16 <= pcap.len() {
        let len = u32::from_le_bytes(pcap[at + 8..at + 12].try_into().unwrap()) as usize;
        let frame = &pcap[at + 16..(at + 16 + len).min(pcap.len())];
        at += 16 + len;
        if frame.len() < 34 || frame[12..14] != [0x08, 0x00] || frame[23] != 2 {
            continue;
        }
        let igmp = &frame[14 + usize::from(frame[14] & 0x0f) * 4..];
        match igmp.first() {
            Some(0x22) if igmp.len() >= 16 => {
                out.push((0x22, Some(igmp[8]), igmp[12..16].try_into().unwrap()))
            }
            Some(&t) if igmp.len() >= 8 => out.push((t, None, igmp[4..8].try_into().unwrap())),
            _ => {}
        }
    }
    out
}

/// Issue 12 item 5: a stack that ends with a member socket still open leaves the group on the
/// wire (IGMPv3 CHANGE_TO_INCLUDE_MODE with no sources, RFC 3376 §5.1) before its driver stops,
/// so a snooping switch stops forwarding at once instead of after its membership timer.
#[test]
fn ending_a_stack_leaves_its_groups_on_the_wire() {
    let pcap = temp("leave");
    let mut sim = Sim::new(5);
    let a = sim.host_with(config(A), Impairments::default(), Some(&pcap));
    let _b = sim.host(config(B));
    let sock = ws2_stack::net::UdpSocket::bind(&a, "0.0.0.0:5000").expect("bind");
    let group = std::net::Ipv4Addr::new(239, 1, 2, 3);
    sock.join_multicast_v4(&group, &A).expect("join");
    sim.run_for(Duration::from_secs(3));
    let reports = sim.shutdown_all(Duration::from_secs(5));
    assert!(
        reports[0].as_ref().is_some_and(|r| r.complete),
        "{reports:?}"
    );
    drop(sock);
    drop(sim);
    let seen = igmp_in(&std::fs::read(&pcap).expect("capture"));
    let _ = std::fs::remove_file(&pcap);
    assert!(
        seen.iter()
            .any(|&(t, rec, g)| t == 0x22 && rec == Some(4) && g == group.octets()),
        "the join: CHANGE_TO_EXCLUDE_MODE {{}} for the group: {seen:?}"
    );
    let (t, rec, g) = *seen.last().expect("IGMP on the wire");
    assert_eq!(
        (t, rec, g),
        (0x22, Some(3), group.octets()),
        "the last IGMP message is the leave (CHANGE_TO_INCLUDE_MODE {{}}): {seen:?}"
    );
}
