use std::time::{Duration, Instant};

use proptest::prelude::*;

use super::mac_table::Mac;
use super::*;

const BROADCAST: Mac = [0xff; 6];

fn mac(n: u8) -> Mac {
    [2, 0, 0, 0, 0, n]
}

/// A frame from `src` to `dst` of `len` bytes, the payload numbered by `tag`.
fn frame(dst: Mac, src: Mac, len: usize, tag: u8) -> Vec<u8> {
    let mut f = vec![tag; len.max(14)];
    f[..6].copy_from_slice(&dst);
    f[6..12].copy_from_slice(&src);
    f[12..14].copy_from_slice(&[0x88, 0xb5]);
    f
}

/// Every frame `port` has for `now`.
fn drain(port: &mut SwitchPort, now: Instant) -> Vec<Vec<u8>> {
    let mut buf = [0u8; 2048];
    let mut out = Vec::new();
    while let Some(n) = port.recv(&mut buf, now).unwrap() {
        out.push(buf[..n].to_vec());
    }
    out
}

fn readable(port: &SwitchPort) -> bool {
    sys::poll_readable(port.as_fd(), Duration::ZERO).unwrap()
}

#[test]
fn learns_and_then_sends_unicast_to_one_port() {
    let switch = VirtualSwitch::new(1);
    let (mut a, mut b, mut c) = (switch.port(), switch.port(), switch.port());
    let t = Instant::now();
    // Unknown destination: flooded.
    a.send(&frame(mac(2), mac(1), 60, 1), t).unwrap();
    assert_eq!(drain(&mut b, t).len(), 1);
    assert_eq!(drain(&mut c, t).len(), 1);
    // B answers: A is learned, so only A hears it.
    b.send(&frame(mac(1), mac(2), 60, 2), t).unwrap();
    assert_eq!(drain(&mut a, t).len(), 1);
    assert!(drain(&mut c, t).is_empty());
    // Both learned: A to B reaches B only.
    a.send(&frame(mac(2), mac(1), 60, 3), t).unwrap();
    assert_eq!(drain(&mut b, t), vec![frame(mac(2), mac(1), 60, 3)]);
    assert!(drain(&mut c, t).is_empty());
    assert!(drain(&mut a, t).is_empty());
    assert_eq!(switch.stats().forwarded, 2 + 1 + 1);
}

#[test]
fn floods_broadcast_and_multicast_to_all_other_ports() {
    let switch = VirtualSwitch::new(1);
    let mut ports: Vec<_> = (0..4).map(|_| switch.port()).collect();
    let t = Instant::now();
    ports[0].send(&frame(BROADCAST, mac(1), 60, 0), t).unwrap();
    ports[0]
        .send(&frame([0x01, 0, 0x5e, 0, 0, 1], mac(1), 60, 0), t)
        .unwrap();
    assert!(drain(&mut ports[0], t).is_empty());
    for p in &mut ports[1..] {
        assert_eq!(drain(p, t).len(), 2);
    }
}

#[test]
fn dropped_port_is_forgotten() {
    let switch = VirtualSwitch::new(1);
    let (mut a, b) = (switch.port(), switch.port());
    let t = Instant::now();
    drop(b);
    assert_eq!(switch.port_count(), 1);
    let mut c = switch.port();
    // B's MAC was never learned and B is gone: the frame floods to C only.
    a.send(&frame(mac(2), mac(1), 60, 0), t).unwrap();
    assert_eq!(drain(&mut c, t).len(), 1);
}

#[test]
fn rejects_runts_and_giants() {
    let switch = VirtualSwitch::new(1);
    let mut a = switch.port();
    let t = Instant::now();
    assert_eq!(
        a.send(&[0; 13], t).unwrap_err().kind(),
        io::ErrorKind::InvalidInput
    );
    assert_eq!(
        a.send(&vec![0; 65536], t).unwrap_err().kind(),
        io::ErrorKind::InvalidInput
    );
    assert_eq!(a.stats().tx_frames, 0);
}

#[test]
fn loss_one_drops_everything_and_counts_it() {
    let switch = VirtualSwitch::new(1);
    let mut a = switch.port();
    let mut b = switch.port_with(Impairments {
        loss: 1.0,
        ..Impairments::default()
    });
    let t = Instant::now();
    for i in 0..10 {
        a.send(&frame(BROADCAST, mac(1), 60, i), t).unwrap();
    }
    assert!(drain(&mut b, t).is_empty());
    assert_eq!(switch.stats().dropped_loss, 10);
    assert_eq!(switch.stats().forwarded, 0);
    assert_eq!(a.stats().tx_frames, 10);
}

#[test]
fn duplicate_one_doubles() {
    let switch = VirtualSwitch::new(1);
    let mut a = switch.port();
    let mut b = switch.port_with(Impairments {
        duplicate: 1.0,
        ..Impairments::default()
    });
    let t = Instant::now();
    for i in 0..5 {
        a.send(&frame(BROADCAST, mac(1), 60, i), t).unwrap();
    }
    let got = drain(&mut b, t);
    assert_eq!(got.len(), 10);
    assert_eq!(got[0], got[1]);
    assert_eq!(switch.stats().duplicated, 5);
}

#[test]
fn corrupt_flips_exactly_one_bit() {
    let switch = VirtualSwitch::new(3);
    let mut a = switch.port();
    let mut b = switch.port_with(Impairments {
        corrupt: 1.0,
        ..Impairments::default()
    });
    let t = Instant::now();
    for i in 0..50 {
        let sent = frame(BROADCAST, mac(1), 100, i);
        a.send(&sent, t).unwrap();
        let got = drain(&mut b, t);
        assert_eq!(got.len(), 1);
        let flipped: u32 = sent
            .iter()
            .zip(&got[0])
            .map(|(x, y)| (x ^ y).count_ones())
            .sum();
        assert_eq!(flipped, 1);
    }
    assert_eq!(switch.stats().corrupted, 50);
}

#[test]
fn delay_holds_frames_until_poll_at() {
    let delay = Duration::from_millis(30);
    let switch = VirtualSwitch::new(1);
    let mut a = switch.port();
    let mut b = switch.port_with(Impairments {
        delay,
        ..Impairments::default()
    });
    let t0 = Instant::now();
    a.send(&frame(BROADCAST, mac(1), 60, 0), t0).unwrap();
    assert_eq!(b.poll_at(), Some(t0 + delay));
    assert!(drain(&mut b, t0).is_empty());
    assert!(drain(&mut b, t0 + delay - Duration::from_nanos(1)).is_empty());
    assert_eq!(drain(&mut b, t0 + delay).len(), 1);
    assert_eq!(b.poll_at(), None);
}

#[test]
fn reorder_lets_later_frames_pass() {
    let switch = VirtualSwitch::new(1);
    let mut a = switch.port();
    let imp = Impairments {
        reorder: 1.0,
        ..Impairments::default()
    };
    let mut b = switch.port_with(imp.clone());
    let t0 = Instant::now();
    a.send(&frame(BROADCAST, mac(1), 60, 1), t0).unwrap();
    b.set_impairments(Impairments::default());
    a.send(&frame(BROADCAST, mac(1), 60, 2), t0).unwrap();
    let tags: Vec<u8> = drain(&mut b, t0 + imp.reorder_delay)
        .iter()
        .map(|f| f[20])
        .collect();
    assert_eq!(tags, vec![2, 1]);
    assert_eq!(switch.stats().reordered, 1);
}

#[test]
fn rate_limit_spaces_deliveries() {
    // 1250 bytes at 1 Mbit/s take 10 ms on the wire.
    let switch = VirtualSwitch::new(1);
    let mut a = switch.port();
    let rate = Impairments {
        rate_bps: Some(1_000_000),
        ..Impairments::default()
    };
    let mut b = switch.port_with(rate);
    let t0 = Instant::now();
    let ms = Duration::from_millis;
    for i in 0..3 {
        a.send(&frame(BROADCAST, mac(1), 1250, i), t0).unwrap();
    }
    for i in 1..=3 {
        let due = t0 + ms(10 * i);
        assert_eq!(b.poll_at(), Some(due));
        assert!(drain(&mut b, due - Duration::from_nanos(1)).is_empty());
        assert_eq!(drain(&mut b, due).len(), 1);
    }
    // An idle line starts again from the send time.
    let t1 = t0 + ms(100);
    a.send(&frame(BROADCAST, mac(1), 1250, 9), t1).unwrap();
    assert_eq!(b.poll_at(), Some(t1 + ms(10)));
}

#[test]
fn rate_limit_tail_drops_past_the_queue_limit() {
    let switch = VirtualSwitch::new(1);
    let mut a = switch.port();
    let imp = Impairments {
        rate_bps: Some(1_000_000),
        queue_limit_bytes: 5000,
        ..Impairments::default()
    };
    let mut b = switch.port_with(imp);
    let t0 = Instant::now();
    for i in 0..10 {
        a.send(&frame(BROADCAST, mac(1), 1000, i), t0).unwrap();
    }
    assert_eq!(switch.stats().forwarded, 5);
    assert_eq!(switch.stats().dropped_queue_full, 5);
    assert_eq!(drain(&mut b, t0 + Duration::from_secs(1)).len(), 5);
}

#[test]
fn queue_holds_at_most_4096_frames() {
    let switch = VirtualSwitch::new(1);
    let mut a = switch.port();
    let mut b = switch.port();
    let t = Instant::now();
    for _ in 0..QUEUE_LIMIT_FRAMES + 10 {
        a.send(&frame(BROADCAST, mac(1), 14, 0), t).unwrap();
    }
    assert_eq!(switch.stats().dropped_queue_full, 10);
    assert_eq!(drain(&mut b, t).len(), QUEUE_LIMIT_FRAMES);
}

/// A port queues at most 4 MiB (kernel analogue: `txqueuelen` 1000 frames): 65,535-byte frames
/// that nobody reads stop at 64, not at 4096 frames (256 MiB).
#[test]
fn queue_holds_at_most_4_mib() {
    let switch = VirtualSwitch::new(1);
    let mut a = switch.port();
    let mut b = switch.port();
    let t = Instant::now();
    for _ in 0..100 {
        a.send(&frame(BROADCAST, mac(1), MAX_FRAME_LEN, 0), t)
            .unwrap();
    }
    let fit = QUEUE_LIMIT_BYTES / MAX_FRAME_LEN;
    assert_eq!(fit, 64);
    assert_eq!(switch.stats().dropped_queue_full, (100 - fit) as u64);
    // Read, the queue takes frames again.
    let mut buf = vec![0u8; MAX_FRAME_LEN];
    let mut n = 0;
    while b.recv(&mut buf, t).unwrap().is_some() {
        n += 1;
    }
    assert_eq!(n, fit);
    a.send(&frame(BROADCAST, mac(1), MAX_FRAME_LEN, 0), t)
        .unwrap();
    assert_eq!(switch.stats().forwarded, fit as u64 + 1);
}

/// Linux bridge `ageing_time` (300 s): a MAC silent that long is forgotten and its frames
/// flood again, on the switch's virtual time (the `now` its senders pass).
#[test]
fn learned_mac_ages_out_after_300_s_of_virtual_time() {
    let switch = VirtualSwitch::new(1);
    let (mut a, mut b, mut c) = (switch.port(), switch.port(), switch.port());
    let t = Instant::now();
    b.send(&frame(BROADCAST, mac(2), 60, 0), t).unwrap();
    drain(&mut a, t);
    drain(&mut c, t);
    let t1 = t + Duration::from_secs(299);
    a.send(&frame(mac(2), mac(1), 60, 1), t1).unwrap();
    assert_eq!(drain(&mut b, t1).len(), 1);
    assert!(drain(&mut c, t1).is_empty(), "still learned at 299 s");
    let t2 = t + Duration::from_secs(300);
    a.send(&frame(mac(2), mac(1), 60, 2), t2).unwrap();
    assert_eq!(drain(&mut b, t2).len(), 1);
    assert_eq!(drain(&mut c, t2).len(), 1, "aged out at 300 s: flooded");
}

/// A flood of 300,000 forged source MACs (the attack on `ws2 switch`) leaves the table
/// at its cap of 4096 entries with its allocation bounded, and a pair learned before the flood
/// still talks by unicast, while a pair that starts after it talks by flooding.
#[test]
fn mac_flood_of_300000_sources_stays_under_the_cap() {
    let switch = VirtualSwitch::new(1);
    let (mut a, mut b, mut attacker, mut c, mut d) = (
        switch.port(),
        switch.port(),
        switch.port(),
        switch.port(),
        switch.port(),
    );
    let t = Instant::now();
    a.send(&frame(mac(2), mac(1), 60, 0), t).unwrap();
    b.send(&frame(mac(1), mac(2), 60, 0), t).unwrap();
    let mut buf = [0u8; 64];
    for i in 0..300_000u32 {
        let n = i.to_be_bytes();
        let src = [0x02, 0xaa, n[0], n[1], n[2], n[3]];
        // To an unlearned unicast MAC: flooded; the queues fill and tail-drop.
        attacker.send(&frame(mac(200), src, 60, 0), t).unwrap();
        if i % 1024 == 0 {
            for p in [&mut a, &mut b, &mut c, &mut d] {
                while p.recv(&mut buf, t).unwrap().is_some() {}
            }
        }
    }
    assert!(switch.mac_count() <= mac_table::MAX_ENTRIES);
    assert!(switch.stats().macs_not_learned >= 300_000 - mac_table::MAX_ENTRIES as u64);
    assert!(
        switch.mac_capacity() <= 2 * mac_table::MAX_ENTRIES,
        "table allocation {} entries",
        switch.mac_capacity()
    );
    for p in [&mut a, &mut b, &mut c, &mut d] {
        while p.recv(&mut buf, t).unwrap().is_some() {}
    }
    // The pair learned before the flood: unicast, C hears nothing.
    a.send(&frame(mac(2), mac(1), 60, 7), t).unwrap();
    assert_eq!(drain(&mut b, t), vec![frame(mac(2), mac(1), 60, 7)]);
    assert!(drain(&mut c, t).is_empty());
    // A pair new after the flood: not learned, but its frames arrive (flooded).
    c.send(&frame(mac(4), mac(3), 60, 8), t).unwrap();
    d.send(&frame(mac(3), mac(4), 60, 9), t).unwrap();
    assert_eq!(drain(&mut d, t), vec![frame(mac(4), mac(3), 60, 8)]);
    assert_eq!(drain(&mut c, t), vec![frame(mac(3), mac(4), 60, 9)]);
}

#[test]
fn same_seed_same_drops() {
    fn run(seed: u64) -> Vec<u8> {
        let switch = VirtualSwitch::new(seed);
        let mut a = switch.port();
        let imp = Impairments {
            loss: 0.5,
            corrupt: 0.1,
            duplicate: 0.1,
            ..Impairments::default()
        };
        let mut b = switch.port_with(imp);
        let t = Instant::now();
        for i in 0..=255 {
            a.send(&frame(BROADCAST, mac(1), 60, i), t).unwrap();
        }
        drain(&mut b, t).iter().map(|f| f[30]).collect()
    }
    let first = run(42);
    assert!(
        first.len() > 50 && first.len() < 250,
        "{} frames",
        first.len()
    );
    assert_eq!(first, run(42));
    assert_ne!(first, run(43));
}

#[test]
fn too_long_for_buffer_is_counted() {
    let switch = VirtualSwitch::new(1);
    let (mut a, mut b) = (switch.port(), switch.port());
    let t = Instant::now();
    a.send(&frame(BROADCAST, mac(1), 1000, 1), t).unwrap();
    a.send(&frame(BROADCAST, mac(1), 50, 2), t).unwrap();
    let mut small = [0u8; 100];
    assert_eq!(b.recv(&mut small, t).unwrap(), Some(50));
    assert_eq!(b.stats().rx_dropped, 1);
    assert_eq!(b.stats().rx_frames, 1);
}

#[test]
fn eventfd_is_readable_until_drained() {
    let switch = VirtualSwitch::new(1);
    let (mut a, mut b) = (switch.port(), switch.port());
    let t = Instant::now();
    assert!(!readable(&b));
    a.send(&frame(BROADCAST, mac(1), 60, 1), t).unwrap();
    assert!(readable(&b));
    assert_eq!(drain(&mut b, t).len(), 1);
    assert!(!readable(&b));
    // A held frame: readiness is spent, poll_at says when.
    b.set_impairments(Impairments {
        delay: Duration::from_millis(5),
        ..Impairments::default()
    });
    a.send(&frame(BROADCAST, mac(1), 60, 2), t).unwrap();
    assert!(readable(&b));
    assert!(drain(&mut b, t).is_empty());
    assert!(!readable(&b));
    assert!(b.poll_at().is_some());
}

#[test]
fn ports_move_between_threads() {
    fn assert_send<T: Send>(_: &T) {}
    let switch = VirtualSwitch::new(1);
    let (mut a, mut b) = (switch.port(), switch.port());
    assert_send(&a);
    let t = Instant::now();
    std::thread::spawn(move || a.send(&frame(BROADCAST, mac(1), 60, 1), t).unwrap())
        .join()
        .unwrap();
    assert!(sys::poll_readable(b.as_fd(), Duration::from_secs(1)).unwrap());
    assert_eq!(drain(&mut b, t).len(), 1);
}

proptest! {
    #[test]
    fn random_frames_never_panic(
        seed in any::<u64>(),
        frames in prop::collection::vec(
            (0usize..3, prop::collection::vec(any::<u8>(), 0..2000), 0u64..50),
            0..40,
        ),
        loss in 0.0f64..1.0,
    ) {
        let switch = VirtualSwitch::new(seed);
        let imp = Impairments {
            loss,
            duplicate: 0.3,
            reorder: 0.3,
            corrupt: 0.3,
            delay: Duration::from_millis(1),
            rate_bps: Some(10_000_000),
            queue_limit_bytes: 4000,
            ..Impairments::default()
        };
        let mut ports = vec![switch.port(), switch.port_with(imp), switch.port()];
        let t0 = Instant::now();
        let mut buf = [0u8; 1518];
        for (from, bytes, ms) in frames {
            let now = t0 + Duration::from_millis(ms);
            let res = ports[from].send(&bytes, now);
            prop_assert_eq!(res.is_ok(), bytes.len() >= 14);
            for p in &mut ports {
                while let Some(n) = p.recv(&mut buf, now).unwrap() {
                    prop_assert!((14..=buf.len()).contains(&n));
                }
            }
        }
    }
}
