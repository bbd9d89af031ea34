//! Issue 13 item 5, tier 3: `ws2 bench shaping` interrupted by SIGINT or SIGTERM after it made
//! its network namespaces (`ws2shp-tx-PID`, `ws2shp-rx-PID`, joined by a veth pair) removes
//! them — and with them the veths and their addresses — says so in one line and exits non-zero
//! (130, 128 + SIGINT, as a shell reports an interrupted command).
//!
//! Only the namespaces named after the bench's own pid are looked at; the test makes none.

mod common;

use std::process::Command;
use std::time::Duration;

use common::{wait_until, Proc, TempDir};
use ws2_tests::netns::require_netns;

/// The names of `ip netns list` that belong to process `pid`'s shaping bench.
fn bench_namespaces(pid: u32) -> Vec<String> {
    let out = Command::new("ip")
        .args(["netns", "list"])
        .output()
        .expect("ip netns list");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|n| *n == format!("ws2shp-tx-{pid}") || *n == format!("ws2shp-rx-{pid}"))
        .map(str::to_owned)
        .collect()
}

fn interrupted_bench_leaves_no_namespace(signal: libc::c_int) {
    let dir = TempDir::new(&format!("bench-int-{signal}"));
    let mut bench = Proc::spawn(
        &dir,
        "bench",
        &["bench", "shaping", "--runs", "1", "--secs", "2"],
    );
    let pid = bench.id();
    wait_until(
        Duration::from_secs(60),
        || format!("the bench never made its namespaces\n{}", bench.describe()),
        || bench_namespaces(pid).len() == 2,
    );
    assert!(
        bench.poll().is_none(),
        "the bench ended before the signal\n{}",
        bench.describe()
    );
    bench.signal(signal);
    let status = bench
        .wait_for(Duration::from_secs(60))
        .unwrap_or_else(|| panic!("the bench did not end\n{}", bench.describe()));
    assert_eq!(status.code(), Some(130), "{}", bench.describe());
    assert_eq!(bench_namespaces(pid), Vec::<String>::new(), "left behind");
    let (_, err) = bench.output();
    let line = err
        .lines()
        .find(|l| l.contains("interrupted"))
        .unwrap_or_else(|| panic!("no line says it was interrupted\n{}", bench.describe()));
    assert!(
        line.contains(&format!("ws2shp-tx-{pid}")) && line.contains(&format!("ws2shp-rx-{pid}")),
        "{line}"
    );
}

#[test]
fn sigint_during_bench_shaping_removes_its_namespaces() {
    if require_netns().is_some() {
        return;
    }
    interrupted_bench_leaves_no_namespace(libc::SIGINT);
}

#[test]
fn sigterm_during_bench_shaping_removes_its_namespaces() {
    if require_netns().is_some() {
        return;
    }
    interrupted_bench_leaves_no_namespace(libc::SIGTERM);
}
