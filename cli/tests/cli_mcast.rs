//! `ws2 mcast` between two processes on one `ws2 switch` (Unix datagrams), and its answer to
//! bad input.
//!
//! The CLI contract under test:
//! - `ws2 mcast --link unix:PATH --addr A/P --join GROUP:PORT --recv --duration S --json`
//!   joins with `WSAJoinLeaf(JL_RECEIVER_ONLY)`, says `ws2 mcast: WSAJoinLeaf(...)` on stderr
//!   once joined, receives for S seconds and prints one JSON object whose `received` holds
//!   `datagrams`, `bytes`, `lost` and per-sender entries;
//! - `ws2 mcast ... --send --rate R --duration S` sends sequence-numbered datagrams to the group
//!   at R payload bytes/s and exits 0;
//! - a `--join` address outside 224.0.0.0/4 is refused with a message naming the problem and a
//!   non-zero exit status, before any stack starts.
//!
//! All traffic stays on Unix sockets in a private temporary directory; nothing touches an
//! interface.

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::{start_switch, wait_until, Proc, TempDir, WS2};

/// Issue 5: a `ws2 mcast --send` process streams to a group for 2 s over a `ws2 switch`; a
/// `ws2 mcast --recv` process that joined first receives every datagram, with no sequence gap.
#[test]
fn cli_mcast_two_processes_over_a_switch() {
    let dir = TempDir::new("cli-mcast");
    let (switch, link) = start_switch(&dir);

    let mut recv = Proc::spawn(
        &dir,
        "recv",
        &[
            "mcast",
            "--link",
            &link,
            "--addr",
            "10.9.5.2/24",
            "--join",
            "239.1.2.3:5000",
            "--recv",
            "--duration",
            "5",
            "--json",
        ],
    );
    // Start the sender once the receiver has joined, so its first datagram already counts.
    wait_until(
        Duration::from_secs(10),
        || format!("ws2 mcast --recv never joined\n{}", recv.describe()),
        || recv.output().1.contains("WSAJoinLeaf(JL_RECEIVER_ONLY)"),
    );
    let mut send = Proc::spawn(
        &dir,
        "send",
        &[
            "mcast",
            "--link",
            &link,
            "--addr",
            "10.9.5.1/24",
            "--join",
            "239.1.2.3:5000",
            "--send",
            "--rate",
            "100000",
            "--datagram",
            "1000",
            "--duration",
            "2",
        ],
    );
    let send_status = send
        .wait_for(Duration::from_secs(20))
        .unwrap_or_else(|| panic!("ws2 mcast --send still running\n{}", send.describe()));
    assert!(
        send_status.success(),
        "ws2 mcast --send failed: {send_status}\n{}",
        send.describe()
    );
    let recv_status = recv
        .wait_for(Duration::from_secs(20))
        .unwrap_or_else(|| panic!("ws2 mcast --recv still running\n{}", recv.describe()));
    assert!(
        recv_status.success(),
        "ws2 mcast --recv failed: {recv_status}\n{}",
        recv.describe()
    );

    let out = recv.output().0;
    let report: serde_json::Value = out
        .lines()
        .rev()
        .find_map(|l| serde_json::from_str(l).ok())
        .unwrap_or_else(|| panic!("no JSON report\n{}", recv.describe()));
    let received = &report["received"];
    let datagrams = received["datagrams"].as_u64().expect("received.datagrams");
    assert!(
        datagrams > 0,
        "nothing arrived: {report}\n{}",
        send.describe()
    );
    assert_eq!(received["lost"].as_u64(), Some(0), "losses: {report}");
    assert_eq!(
        received["bytes"].as_u64(),
        Some(datagrams * 1000),
        "bytes: {report}"
    );
    let senders = received["senders"].as_array().expect("received.senders");
    assert_eq!(senders.len(), 1, "one sender: {report}");
    assert_eq!(senders[0]["addr"], "10.9.5.1:5000", "the sender: {report}");
    // The receiver joined before the sender started: it saw every datagram from the first.
    assert_eq!(senders[0]["first_seq"].as_u64(), Some(0), "{report}");
    let sent: u64 = send
        .output()
        .0
        .lines()
        .find_map(|l| {
            l.strip_prefix("sent ")?
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        })
        .unwrap_or_else(|| panic!("no `sent N datagrams` line\n{}", send.describe()));
    assert_eq!(datagrams, sent, "every datagram sent arrived: {report}");
    drop(switch);
}

/// Bad input is a clear message and a non-zero exit, not a panic.
#[test]
fn cli_mcast_rejects_bad_input() {
    let dir = TempDir::new("cli-mcast-bad");
    let link = format!("unix:{}", dir.path("none.sock").display());
    for (args, expect) in [
        (
            vec!["--join", "10.0.0.1", "--recv"],
            "10.0.0.1 is not a multicast group",
        ),
        (vec!["--join", "239.1.2.3:0", "--recv"], "not a port"),
        (
            vec!["--join", "239.1.2.3", "--send", "--source", "10.0.0.1"],
            "cannot be used with",
        ),
        (
            vec!["--join", "239.1.2.3", "--recv", "--source", "239.0.0.9"],
            "a source is the unicast address of a sender",
        ),
        (
            vec!["--join", "239.1.2.3", "--datagram", "4"],
            "datagram carries",
        ),
        (vec!["--join", "239.1.2.3", "--ttl", "300"], "300"),
    ] {
        let mut full = vec!["mcast", "--link", &link, "--addr", "10.9.6.1/24"];
        full.extend(&args);
        full.extend(["--duration", "1"]);
        let out = Command::new(WS2)
            .args(&full)
            .stdin(Stdio::null())
            .output()
            .expect("run ws2");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{full:?} succeeded");
        assert!(
            stderr.contains(expect),
            "{full:?}: stderr lacks {expect:?}:\n{stderr}"
        );
        assert!(!stderr.contains("panicked"), "{full:?} panicked:\n{stderr}");
    }
}
