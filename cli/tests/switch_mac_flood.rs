//! Issue 13: 300,000 forged source MACs sent through `ws2 switch` took it from 3.6 to 38.5 MiB.
//! The MAC table now holds at most 4,096 entries (full: new sources are not learned, frames to
//! them flood, as bridges do), so the switch's resident memory grows by far less than the old
//! 35 MiB, and a pair learned before the flood still reaches each other.
//!
//! All traffic stays on Unix sockets in a private temporary directory.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::{start_switch, TempDir};
use ws2_tap::{Link, UnixLink};

/// The switch process's resident set, KiB (`VmRSS` of /proc/PID/status).
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

fn frame(dst: [u8; 6], src: [u8; 6], tag: u8) -> Vec<u8> {
    let mut f = vec![tag; 60];
    f[..6].copy_from_slice(&dst);
    f[6..12].copy_from_slice(&src);
    f[12..14].copy_from_slice(&[0x88, 0xb5]);
    f
}

/// Sends `f`, waiting while the switch's queue is full.
fn send(link: &mut UnixLink, f: &[u8]) {
    loop {
        match link.send(f, Instant::now()) {
            Ok(()) => return,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_micros(200))
            }
            Err(e) => panic!("send: {e}"),
        }
    }
}

/// Reads `link` until a frame equal to `want` arrives (flooded frames before it are skipped).
fn receives(link: &mut UnixLink, want: &[u8]) -> bool {
    receives_within(link, want, Duration::from_secs(10))
}

fn receives_within(link: &mut UnixLink, want: &[u8], limit: Duration) -> bool {
    let end = Instant::now() + limit;
    let mut buf = [0u8; 2048];
    while Instant::now() < end {
        match link.recv(&mut buf, Instant::now()) {
            Ok(Some(n)) if &buf[..n] == want => return true,
            Ok(Some(_)) => {}
            Ok(None) => std::thread::sleep(Duration::from_millis(1)),
            Err(e) => panic!("recv: {e}"),
        }
    }
    false
}

#[test]
fn ws2_switch_survives_300000_source_macs() {
    let dir = TempDir::new("switch-mac-flood");
    let (mut switch, link) = start_switch(&dir);
    let path = Path::new(link.strip_prefix("unix:").expect("unix link"));
    let (mac_a, mac_b) = ([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2]);
    let mut a = UnixLink::connect(path).expect("a");
    let mut b = UnixLink::connect(path).expect("b");
    let mut attacker = UnixLink::connect(path).expect("attacker");
    // The pair is learned before the flood.
    send(&mut a, &frame(mac_b, mac_a, 1));
    assert!(receives(&mut b, &frame(mac_b, mac_a, 1)));
    send(&mut b, &frame(mac_a, mac_b, 2));
    assert!(receives(&mut a, &frame(mac_a, mac_b, 2)));
    let before = rss_kib(switch.id());
    for i in 0..300_000u32 {
        let n = i.to_be_bytes();
        // To a MAC nobody has: flooded to a and b, whose queues fill and drop.
        send(
            &mut attacker,
            &frame([2, 0xee, 0, 0, 0, 9], [2, 0xaa, n[0], n[1], n[2], n[3]], 0),
        );
    }
    // The pair still talks. While the switch still floods, b's port queue may be full and
    // tail-drop a's frame (as a bridge's would): a sends again, as a transport would, while b
    // reads through what was flooded to it.
    let talks = (0..10).any(|_| {
        send(&mut a, &frame(mac_b, mac_a, 3));
        receives_within(&mut b, &frame(mac_b, mac_a, 3), Duration::from_secs(3))
    });
    assert!(talks, "a no longer reaches b");
    let after = rss_kib(switch.id());
    eprintln!("ws2 switch: {before} KiB before the flood, {after} KiB after");
    assert!(
        switch.poll().is_none(),
        "the switch died\n{}",
        switch.describe()
    );
    // 4,096 entries cost well under 1 MiB; the unbounded table grew by 35 MiB.
    assert!(
        after.saturating_sub(before) < 8 * 1024,
        "ws2 switch grew from {before} KiB to {after} KiB"
    );
}
