//! Issue 13, a hostile LAN at the link and IP layers (tier 2: VirtualSwitch, virtual time,
//! seeded). A bare switch port plays the attacker: forged ARP (RFC 826) and IPv4 fragments
//! (RFC 791 §3.2) aimed at host A.
//!
//! - Neighbours: the kernel's model (`gc_thresh3` 1024 entries, `retrans_time` 1 s,
//!   `mcast_solicit` 3, entries from requests aimed at us only STALE): a live peer is reached
//!   within 1 s while A resolves 1,000 silent hosts, forged requests neither evict nor redirect
//!   a confirmed neighbour, and the table stays under its cap. (smoltcp 0.14's own cache held 8
//!   entries and sent one request a second for the whole interface: the peer waited 30 s+.)
//! - Reassembly: several slots with a memory cap (kernel `ipfrag_high_thresh` 4 MiB): fragmented
//!   unicast and multicast datagrams pass during a flood of never-completed fragments; a lone
//!   34-byte fragment blocks nothing (smoltcp had one slot for 60 s); overlapping fragments
//!   discard their datagram, as Linux does; an exact duplicate is dropped, the first copy kept.

use std::net::Ipv4Addr;
use std::time::Duration;

use ws2_stack::winsock::*;
use ws2_stack::{Ipv4Cidr, StackConfig, WsaError};
use ws2_tap::{Link, SwitchPort};
use ws2_tests::sim::Sim;
use ws2_tests::*;

/// A third host, on the LAN but unknown to A until the test connects to it.
const C: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 3);
/// The address the attacker's IPv4 frames come from.
const EVIL: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 66);
const EVIL_MAC: [u8; 6] = [0x06, 0xee, 0, 0, 0, 0x66];
/// The reassembly memory cap the docs state (kernel `ipfrag_high_thresh`).
const FRAG_CAP: u64 = 4 * 1024 * 1024;
/// The neighbour table's cap (kernel `gc_thresh3`).
const NEIGH_CAP: u64 = 1024;

/// `ip/16`: room on the link for 1,000 silent hosts.
fn config16(ip: Ipv4Addr) -> StackConfig {
    let mut c = StackConfig::new(Ipv4Cidr::new(ip, 16).expect("prefix 16"));
    c.drain_timeout = TEST_DRAIN;
    c
}

/// RFC 1071 checksum of an IPv4 header.
fn ip_checksum(h: &[u8]) -> [u8; 2] {
    let mut sum: u32 = h
        .chunks(2)
        .map(|p| u32::from(u16::from_be_bytes([p[0], p[1]])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    (!(sum as u16)).to_be_bytes()
}

/// An ARP request (RFC 826) from `mac`/`spa` for `tpa`, broadcast.
fn arp_request(mac: [u8; 6], spa: Ipv4Addr, tpa: Ipv4Addr) -> Vec<u8> {
    let mut f = vec![0xff; 6];
    f.extend_from_slice(&mac);
    f.extend_from_slice(&[0x08, 0x06, 0, 1, 8, 0, 6, 4, 0, 1]);
    f.extend_from_slice(&mac);
    f.extend_from_slice(&spa.octets());
    f.extend_from_slice(&[0; 6]);
    f.extend_from_slice(&tpa.octets());
    f
}

/// An IPv4 fragment (RFC 791 §3.2) from `src` to `dst` (Ethernet `to`): identification `id`,
/// `payload` at octet `offset`, More Fragments `more`, protocol UDP.
fn fragment(
    to: [u8; 6],
    src: Ipv4Addr,
    dst: Ipv4Addr,
    id: u16,
    offset: usize,
    more: bool,
    payload: &[u8],
) -> Vec<u8> {
    let mut f = to.to_vec();
    f.extend_from_slice(&EVIL_MAC);
    f.extend_from_slice(&[0x08, 0x00]);
    let total = (20 + payload.len()) as u16;
    let flags = (offset / 8) as u16 | if more { 0x2000 } else { 0 };
    let mut h = vec![0x45, 0];
    h.extend_from_slice(&total.to_be_bytes());
    h.extend_from_slice(&id.to_be_bytes());
    h.extend_from_slice(&flags.to_be_bytes());
    h.extend_from_slice(&[64, 17, 0, 0]);
    h.extend_from_slice(&src.octets());
    h.extend_from_slice(&dst.octets());
    let sum = ip_checksum(&h);
    h[10..12].copy_from_slice(&sum);
    f.extend_from_slice(&h);
    f.extend_from_slice(payload);
    f
}

/// A UDP datagram (RFC 768) with no checksum: header and `data`.
fn udp(src_port: u16, dst_port: u16, data: &[u8]) -> Vec<u8> {
    let mut u = src_port.to_be_bytes().to_vec();
    u.extend_from_slice(&dst_port.to_be_bytes());
    u.extend_from_slice(&((8 + data.len()) as u16).to_be_bytes());
    u.extend_from_slice(&[0, 0]);
    u.extend_from_slice(data);
    u
}

/// Sends `frames` from the attacker's port and throws away what reached it.
fn inject(sim: &Sim, port: &mut SwitchPort, frames: &[Vec<u8>]) {
    for f in frames {
        port.send(f, sim.now()).expect("the switch takes the frame");
    }
    drain(sim, port);
}

fn drain(sim: &Sim, port: &mut SwitchPort) -> Vec<Vec<u8>> {
    let mut buf = vec![0u8; 70_000];
    let mut got = Vec::new();
    while let Ok(Some(n)) = port.recv(&mut buf, sim.now()) {
        got.push(buf[..n].to_vec());
    }
    got
}

/// The target of an ARP request in `frame`, if it is one.
fn arp_target(frame: &[u8]) -> Option<Ipv4Addr> {
    (frame.len() >= 42 && frame[12..14] == [0x08, 0x06] && frame[20..22] == [0, 1])
        .then(|| Ipv4Addr::new(frame[38], frame[39], frame[40], frame[41]))
}

fn silent(i: u32) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(Ipv4Addr::new(10, 0, 100, 0)) + i)
}

/// Issue 13 acceptance: a live peer is reached within 1 s while the stack ARPs for 1,000
/// silent hosts, and forged ARP requests aimed at it neither evict nor redirect a confirmed
/// neighbour. Kernel model: per-destination `retrans_time` 1 s and `mcast_solicit` 3, no
/// interface-wide limit; RFC 1122 §2.3.2.1 (at most one request a second per destination).
#[test]
fn a_live_peer_is_reached_while_a_thousand_silent_hosts_are_arped_for() {
    let mut sim = Sim::new(0x13a1);
    let a = sim.host(config16(A));
    let b = sim.host(config16(B));
    let c = sim.host(config16(C));
    let mut evil = sim.port();
    let (wa, wb, wc) = (sim.winsock(&a), sim.winsock(&b), sim.winsock(&c));
    // A confirmed neighbour: a connection A–B before the attack.
    let (ab, ba) = sim.tcp_pair(&wa, &wb, at(B, 7000));
    drain(&sim, &mut evil);

    // 1,000 connects to addresses nobody answers.
    let start = sim.elapsed();
    for i in 0..1000 {
        let s = new_socket(&wa, SOCK_STREAM);
        set_nonblocking(&wa, s, true);
        assert_wsa_error(connect(&wa, s, at(silent(i), 80)), WsaError::WSAEWOULDBLOCK);
    }
    // Forged requests aimed at A: 2,000 invented senders (twice the table), and B's address
    // with the attacker's MAC.
    let mut forged: Vec<Vec<u8>> = (0..2000u32)
        .map(|i| {
            let spa = Ipv4Addr::from(u32::from(Ipv4Addr::new(10, 0, 200, 0)) + i);
            let mut mac = EVIL_MAC;
            mac[3..].copy_from_slice(&i.to_be_bytes()[1..]);
            arp_request(mac, spa, A)
        })
        .collect();
    forged.push(arp_request(EVIL_MAC, B, A));
    inject(&sim, &mut evil, &forged);

    // A new live peer: its connect completes within 1 s of virtual time.
    let l = listener(&wc, at(C, 7001), 4);
    set_nonblocking(&wc, l, true);
    let ac = new_socket(&wa, SOCK_STREAM);
    set_nonblocking(&wa, ac, true);
    assert_wsa_error(connect(&wa, ac, at(C, 7001)), WsaError::WSAEWOULDBLOCK);
    let mut requests: Vec<Ipv4Addr> = Vec::new();
    let reached = sim.run_until(Duration::from_secs(1), |sim| {
        requests.extend(drain(sim, &mut evil).iter().filter_map(|f| arp_target(f)));
        poll_one(&wa, ac, 0).1
    });
    assert!(reached, "A reaches C within 1 s: {:?}", a.stats());
    // The confirmed neighbour still gets A's data (a forged request did not redirect it).
    wa.send(ab, b"still here", 0).expect("send");
    let mut buf = [0u8; 64];
    let mut got = 0;
    let moved = sim.run_until(Duration::from_secs(1), |sim| {
        requests.extend(drain(sim, &mut evil).iter().filter_map(|f| arp_target(f)));
        if let Ok(n) = wb.recv(ba, &mut buf, 0) {
            got += n as usize;
        }
        got == 10
    });
    assert!(moved, "B still gets A's data within 1 s");
    // Per destination: in the first 2.5 s every silent host was asked three times, a second
    // apart (the old interface-wide limit asked for one host a second).
    let left = (start + Duration::from_millis(2500)).saturating_sub(sim.elapsed());
    sim.run_until(left, |sim| {
        requests.extend(drain(sim, &mut evil).iter().filter_map(|f| arp_target(f)));
        false
    });
    let mut per = std::collections::HashMap::new();
    for t in &requests {
        *per.entry(*t).or_insert(0u32) += 1;
    }
    for i in 0..1000 {
        let n = per.get(&silent(i)).copied().unwrap_or(0);
        assert_eq!(n, 3, "{} was asked {n} times in 2.5 s", silent(i));
    }
    let stats = a.stats();
    assert!(
        stats.neighbors <= NEIGH_CAP,
        "the table stays under its cap: {stats:?}"
    );
    assert!(stats.arp_requests >= 3000, "{stats:?}");
}

/// Issue 13 acceptance: fragmented UDP datagrams, unicast and multicast, pass while the
/// attacker floods fragments that never complete (lone 34-byte ones, lone 42-byte ones from
/// many sources, and 64 KiB-wide ones); reassembly holds less than its cap (kernel
/// `ipfrag_high_thresh` 4 MiB) with more than 64 datagrams pending. RFC 791 §3.2.
#[test]
fn fragmented_datagrams_pass_during_a_fragment_flood() {
    let mut sim = Sim::new(0x13f2);
    let a = sim.host(config(A));
    let b = sim.host(config(B));
    let mut evil = sim.port();
    let (wa, wb) = (sim.winsock(&a), sim.winsock(&b));
    let group = Ipv4Addr::new(239, 1, 2, 3);
    let rx = new_socket(&wa, SOCK_DGRAM);
    bind(&wa, rx, at(Ipv4Addr::UNSPECIFIED, 7100)).expect("bind");
    set_nonblocking(&wa, rx, true);
    let mreq = IP_MREQ::new(group, A);
    wa.setsockopt(rx, IPPROTO_IP, IP_ADD_MEMBERSHIP, Some(&mreq.as_bytes()), 8)
        .expect("join");
    let tx = new_socket(&wb, SOCK_DGRAM);
    set_nonblocking(&wb, tx, true);
    sim.run_for(Duration::from_millis(100));
    drain(&sim, &mut evil);

    let mut flood_id = 0u16;
    let mut flood = |n: usize| -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        for _ in 0..n {
            flood_id = flood_id.wrapping_add(1);
            let id = flood_id;
            let src = Ipv4Addr::new(10, 0, 1 + (id % 50) as u8, (id % 200) as u8 + 1);
            let (to, dst) = if id.is_multiple_of(3) {
                ([1, 0, 0x5e, 1, 2, 3], group)
            } else {
                (mac_of(A), A)
            };
            match id % 4 {
                // The 34-byte lone fragment: headers only, More Fragments.
                0 => out.push(fragment(to, src, dst, id, 0, true, &[])),
                // A first fragment whose rest never comes.
                1 => out.push(fragment(to, src, dst, id, 0, true, &[0xab; 8])),
                // A last fragment 64 KiB out: the widest buffer a datagram can need.
                2 => out.push(fragment(to, EVIL, dst, id, 65_000, false, &[0xcd; 8])),
                _ => out.push(fragment(to, src, dst, id, 1480, true, &[0xef; 1480])),
            }
        }
        out
    };
    // Forty datagrams from B, alternately unicast (4,000 octets) and to the group (3,000),
    // each in fragments, with 200 flood fragments before each.
    let mut sent = Vec::new();
    let mut received = Vec::new();
    let mut buf = vec![0u8; 8192];
    for i in 0..40u8 {
        inject(&sim, &mut evil, &flood(200));
        let (to, len) = if i % 2 == 0 {
            (at(A, 7100), 4000)
        } else {
            (at(group, 7100), 3000)
        };
        let data = pattern(len, u64::from(i));
        assert_eq!(sendto(&wb, tx, &data, to), Ok(len as i32), "datagram {i}");
        sent.push(data);
        sim.run_until(Duration::from_millis(10), |sim| {
            drain(sim, &mut evil);
            while let Ok(n) = wa.recv(rx, &mut buf, 0) {
                received.push(buf[..n as usize].to_vec());
            }
            false
        });
        let held = a.stats().reassembly_bytes;
        assert!(held <= FRAG_CAP, "{held} octets held after datagram {i}");
    }
    sim.run_until(Duration::from_secs(1), |_| {
        while let Ok(n) = wa.recv(rx, &mut buf, 0) {
            received.push(buf[..n as usize].to_vec());
        }
        received.len() >= sent.len()
    });
    assert_eq!(received.len(), sent.len(), "every datagram arrives once");
    assert!(received == sent, "whole and in order");
    let stats = a.stats();
    assert!(
        stats.reassembly_slots >= 64,
        "many datagrams pending: {stats:?}"
    );
    assert!(stats.reassembly_bytes <= FRAG_CAP, "{stats:?}");
    assert!(stats.reassembled >= 40, "{stats:?}");
    // ipfrag_time: after 30 s nothing is held.
    sim.run_for(Duration::from_secs(31));
    let stats = a.stats();
    assert_eq!((stats.reassembly_slots, stats.reassembly_bytes), (0, 0));
}

/// The overlap policy (docs/decisions.md): a fragment wholly inside octets already held is a
/// duplicate, dropped, the first copy kept; one that straddles held and missing octets
/// discards the datagram (Linux for IPv4 since 4.19, RFC 5722 §4's rule). smoltcp's assembler
/// let a later fragment overwrite an earlier one.
#[test]
fn overlapping_fragments_discard_and_duplicates_keep_the_first_copy() {
    let mut sim = Sim::new(0x13f3);
    let a = sim.host(config(A));
    let mut evil = sim.port();
    let wa = sim.winsock(&a);
    let rx = udp_bound(&wa, at(A, 7200));
    set_nonblocking(&wa, rx, true);
    let to = mac_of(A);
    let dgram = udp(9, 7200, &[b'x'; 32]);
    let good = dgram.clone();
    let mut twisted = dgram.clone();
    twisted[8..24].copy_from_slice(&[b'!'; 16]);
    // Datagram 1: its first 16 octets twice (the second copy different), then the rest.
    // Datagram 2: 0..16, then a fragment covering 8..24 (straddling), then 16..40.
    let frames = vec![
        fragment(to, EVIL, A, 1, 0, true, &good[..16]),
        fragment(to, EVIL, A, 1, 0, true, &twisted[..16]),
        fragment(to, EVIL, A, 2, 0, true, &good[..16]),
        fragment(to, EVIL, A, 2, 8, true, &twisted[8..24]),
        fragment(to, EVIL, A, 1, 16, true, &good[16..32]),
        fragment(to, EVIL, A, 1, 32, false, &good[32..]),
        fragment(to, EVIL, A, 2, 16, true, &good[16..32]),
        fragment(to, EVIL, A, 2, 32, false, &good[32..]),
    ];
    inject(&sim, &mut evil, &frames);
    let mut got = Vec::new();
    let mut buf = [0u8; 256];
    sim.run_until(Duration::from_millis(500), |sim| {
        drain(sim, &mut evil);
        while let Ok(n) = wa.recv(rx, &mut buf, 0) {
            got.push(buf[..n as usize].to_vec());
        }
        false
    });
    assert_eq!(
        got,
        vec![vec![b'x'; 32]],
        "datagram 1 once, with its first copy; not 2"
    );
    let stats = a.stats();
    assert!(stats.reassembly_dropped >= 2, "{stats:?}");
    assert_eq!(stats.reassembled, 1, "{stats:?}");
}
