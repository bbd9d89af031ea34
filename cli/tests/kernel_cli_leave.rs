//! Issue 12 item 5, tier 3: `ws2 mcast` leaves its group on the wire before it exits. A Linux
//! bridge with IGMP snooping and a querier (`ws2_tests::bridge::QuerierLan`) holds the group in
//! its mdb while a `ws2 mcast --recv` process is a member; after a first SIGINT ends the process
//! gracefully, the entry must be gone within the bridge's last-member query time (RFC 3376 §8.8:
//! the leave started group-specific queries nobody answered) — long before the membership
//! interval would have expired it without a leave.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ws2_tests::bridge::{Querier, QuerierLan, HUB_BRIDGE, SHARED_PORT};
use ws2_tests::netns::require_netns;

const GROUP: std::net::Ipv4Addr = std::net::Ipv4Addr::new(239, 7, 7, 7);
const CLI_TAP: &str = "ws2cli";

/// Kills the process on drop, so a failed test leaves nothing running in the namespace.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn ws2_mcast_leaves_its_group_before_exiting() {
    if require_netns().is_some() {
        return;
    }
    // Queries every 3 s: an unconfirmed membership lives 6.4 s, a left one 1 s.
    let querier = Querier {
        query_interval: Duration::from_secs(3),
        ..Querier::default()
    };
    let lan = QuerierLan::new("ws2-clileave", 91, querier, |_| {}).expect("querier LAN");
    let ns = lan.bridge_ns.name().to_owned();
    let cli = Command::new("ip")
        .args([
            "netns",
            "exec",
            &ns,
            env!("CARGO_BIN_EXE_ws2"),
            "mcast",
            "--link",
        ])
        .arg(format!("tap:{CLI_TAP}"))
        .args(["--addr", "10.77.91.9/24", "--join"])
        .arg(format!("{GROUP}:5000"))
        .args(["--recv", "--duration", "60"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("ws2 mcast starts");
    let mut cli = Killed(cli);

    // The process makes its TAP; put it on the hub in front of the querier's port.
    let start = Instant::now();
    while lan.bridge_ns.run(&["ip", "link", "show", CLI_TAP]).is_err() {
        assert!(start.elapsed() < Duration::from_secs(10), "the TAP appears");
        std::thread::sleep(Duration::from_millis(20));
    }
    lan.bridge_ns
        .run(&["ip", "link", "set", CLI_TAP, "master", HUB_BRIDGE, "up"])
        .expect("attach the TAP");
    let joined = lan.wait_mdb(Duration::from_secs(10), |t| {
        t.iter().any(|e| e.port == SHARED_PORT && e.group == GROUP)
    });
    assert!(
        joined.is_ok(),
        "the bridge learns the membership: {joined:?}"
    );

    // A first Ctrl-C: the command ends gracefully and its stack drains.
    // SAFETY: kill takes no pointers; the pid is our own child's.
    #[allow(unsafe_code)]
    let rc = unsafe { libc::kill(cli.0.id() as libc::pid_t, libc::SIGINT) };
    assert_eq!(rc, 0);
    let exit = loop {
        if let Some(status) = cli.0.try_wait().expect("wait") {
            break status;
        }
        assert!(start.elapsed() < Duration::from_secs(40), "ws2 mcast exits");
        std::thread::sleep(Duration::from_millis(10));
    };
    let exited = Instant::now();
    let mut stderr = String::new();
    use std::io::Read;
    let _ = cli
        .0
        .stderr
        .take()
        .map(|mut e| e.read_to_string(&mut stderr));
    assert!(exit.success(), "ws2 mcast exits 0: {exit}\n{stderr}");
    assert!(stderr.contains("stack drained"), "{stderr}");

    let gone = lan.wait_mdb(Duration::from_secs(10), |t| {
        !t.iter().any(|e| e.port == SHARED_PORT && e.group == GROUP)
    });
    let limit = querier.last_member_time() + Duration::from_millis(500);
    match gone {
        Ok(_) => assert!(
            exited.elapsed() <= limit + Duration::from_millis(100),
            "the mdb entry went {:?} after exit: by expiry, not by a leave (limit {limit:?})",
            exited.elapsed()
        ),
        Err(table) => panic!("the mdb entry stayed: {table:?}"),
    }
}
