//! Issue 13 item 5: every command refuses an out-of-range number with one clear line on stderr
//! and a non-zero exit, before it starts anything — the cases (`send --datagram 0`
//! looped for ever, `--qos rate=0` hung, `--mtu 0|1|67|65536` and `demo --loss 2|nan` were
//! taken, `bench shaping --secs 0` ran) and the rest of the audit of numeric options — and a
//! leaf asking a silent root to join keeps its `--duration`.
//!
//! The ranges are those of `cli/src/ranges.rs` (RFC 791's 68-octet minimum MTU; UDP's 65,507
//! payload bytes; a probability 0–1; the bench's documented 2–60 s). All traffic stays on Unix
//! sockets in a private temporary directory.

mod common;

use std::time::Duration;

use common::{start_switch, Proc, TempDir};

/// Runs `ws2 args…` and asserts it ends (within a generous 20 s), fails, and says why in
/// exactly one line on stderr that contains `expect`.
fn refused(dir: &TempDir, args: &[&str], expect: &str) {
    let mut p = Proc::spawn(dir, "ws2", args);
    let status = p
        .wait_for(Duration::from_secs(20))
        .unwrap_or_else(|| panic!("{args:?} still running after 20 s\n{}", p.describe()));
    let (_, err) = p.output();
    assert!(!status.success(), "{args:?} succeeded\n{}", p.describe());
    let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "{args:?}: not one line\n{}", p.describe());
    assert!(
        lines[0].starts_with("ws2: ") && lines[0].contains(expect),
        "{args:?}: {:?} lacks {expect:?}",
        lines[0]
    );
}

#[test]
fn every_bad_number_is_one_line_and_a_failure() {
    let dir = TempDir::new("bad-args");
    let link = format!("unix:{}", dir.path("none.sock").display());
    let stack = ["--link", link.as_str(), "--addr", "10.9.5.1/24"];
    let with_stack = |cmd: &[&'static str], rest: &[&'static str]| -> Vec<String> {
        let mut v: Vec<String> = cmd.iter().map(|s| s.to_string()).collect();
        v.extend(stack.iter().map(|s| s.to_string()));
        v.extend(rest.iter().map(|s| s.to_string()));
        v
    };
    let send = ["send"];
    let to = ["--to", "10.9.5.2:5001"];
    let mut cases: Vec<(Vec<String>, &str)> = vec![
        // The cases.
        (
            with_stack(&send, &[to[0], to[1], "--proto", "udp", "--datagram", "0"]),
            "1 to 65507",
        ),
        (
            with_stack(&send, &[to[0], to[1], "--proto", "tcp", "--qos", "rate=0"]),
            "zero TokenRate would never send",
        ),
        (
            with_stack(
                &["mcast"],
                &[
                    "--join",
                    "239.1.2.3",
                    "--send",
                    "--qos",
                    "rate=0",
                    "--duration",
                    "1",
                ],
            ),
            "zero TokenRate would never send",
        ),
        (vec!["demo".into(), "--loss".into(), "2".into()], "0 to 1"),
        (vec!["demo".into(), "--loss".into(), "nan".into()], "0 to 1"),
        (
            vec![
                "bench".into(),
                "shaping".into(),
                "--secs".into(),
                "0".into(),
            ],
            "2 to 60",
        ),
        // The rest of the audit.
        (
            with_stack(&send, &[to[0], to[1], "--qos", "bucket=0"]),
            "TokenBucketSize",
        ),
        (
            with_stack(&send, &[to[0], to[1], "--qos", "rate=1000,peak=0"]),
            "PeakBandwidth",
        ),
        (
            with_stack(&send, &[to[0], to[1], "--duration", "0"]),
            "duration",
        ),
        (
            with_stack(&send, &[to[0], to[1], "--duration", "nan"]),
            "duration",
        ),
        (
            with_stack(
                &send,
                &[to[0], to[1], "--connect-wait", "18446744073709551615"],
            ),
            "1 to 3600",
        ),
        (
            with_stack(&["recv"], &["--port", "0"]),
            "a port must be 1 to 65535",
        ),
        (
            with_stack(&["recv"], &["--port", "5001", "--idle", "0"]),
            "1 to 86400",
        ),
        (
            vec!["demo".into(), "--conference-secs".into(), "nan".into()],
            "0 (skip) to 600",
        ),
        (
            vec!["demo".into(), "--rooted-secs".into(), "-1".into()],
            "0 (skip) to 600",
        ),
        (
            vec!["demo".into(), "--async-clients".into(), "0".into()],
            "1 to 1000",
        ),
        (
            vec!["demo".into(), "--bytes".into(), "0".into()],
            "byte count",
        ),
        (
            vec!["bench".into(), "events".into(), "--runs".into(), "0".into()],
            "1 to 100",
        ),
        (
            vec![
                "bench".into(),
                "shaping".into(),
                "--secs".into(),
                "61".into(),
            ],
            "2 to 60",
        ),
        (
            with_stack(&["root"], &["--listen", "5800", "--duration", "inf"]),
            "duration",
        ),
        (
            with_stack(&["leaf"], &["--join", "10.9.5.2:5800", "--duration", "-3"]),
            "duration",
        ),
    ];
    // `--mtu` on every command that starts a stack: RFC 791's 68 up to a 65,535-byte frame.
    for mtu in ["0", "1", "67", "65522", "65536"] {
        for cmd in [
            with_stack(&send, &[to[0], to[1]]),
            with_stack(&["recv"], &["--port", "5001"]),
            with_stack(&["mcast"], &["--join", "239.1.2.3", "--duration", "1"]),
            with_stack(&["root"], &["--listen", "5800", "--duration", "1"]),
            with_stack(&["leaf"], &["--listen", "5800", "--duration", "1"]),
        ] {
            let mut args = cmd;
            args.extend(["--mtu".to_string(), mtu.to_string()]);
            cases.push((args, "the IP MTU must be 68 to 65521"));
        }
    }
    for (args, expect) in &cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        refused(&dir, &args, expect);
    }
}

/// `leaf --join` a host that never answers: `WSAJoinLeaf` would wait out TCP's connect
/// retries; the leaf gives up at its `--duration` instead, with one line and a failure.
#[test]
fn leaf_joining_a_silent_root_keeps_its_duration() {
    let dir = TempDir::new("bad-args-leaf");
    let (_switch, link) = start_switch(&dir);
    refused(
        &dir,
        &[
            "leaf",
            "--link",
            &link,
            "--addr",
            "10.9.5.1/24",
            "--join",
            "10.9.5.99:5800",
            "--duration",
            "1",
        ],
        "no answer within --duration 1 s",
    );
}

/// `root --invite` a host that never answers: the invitation gives up at `--duration` (it
/// waited out TCP's connect retries, 20 s, before), and the root says so.
#[test]
fn root_inviting_a_silent_leaf_keeps_its_duration() {
    let dir = TempDir::new("bad-args-root");
    let (_switch, link) = start_switch(&dir);
    let mut p = Proc::spawn(
        &dir,
        "root",
        &[
            "root",
            "--link",
            &link,
            "--addr",
            "10.9.5.1/24",
            "--invite",
            "10.9.5.99:5800",
            "--duration",
            "1",
        ],
    );
    let status = p
        .wait_for(Duration::from_secs(20))
        .unwrap_or_else(|| panic!("root still running after 20 s\n{}", p.describe()));
    assert!(!status.success(), "{}", p.describe());
    let (_, err) = p.output();
    assert!(
        err.contains("no answer within --duration 1 s"),
        "{}",
        p.describe()
    );
}

/// A flowspec of 1 byte/s holds every send back far longer than `--duration 1`: the send loop
/// still ends at its deadline (a blocking send waits in steps, `SO_SNDTIMEO`), and the graceful
/// drain that follows ends at a SIGINT. Before issue 13 the process sat in one blocking
/// `sendto` and no signal or deadline could end it.
#[test]
fn a_slow_flowspec_does_not_hold_a_command_past_its_duration() {
    let dir = TempDir::new("bad-args-slow");
    let (_switch, link) = start_switch(&dir);
    let mcast = [
        "mcast",
        "--link",
        &link,
        "--addr",
        "10.9.5.1/24",
        "--join",
        "239.1.2.3",
        "--send",
        "--qos",
        "rate=1",
        "--duration",
        "1",
    ];
    let send = [
        "send",
        "--link",
        &link,
        "--addr",
        "10.9.5.3/24",
        "--to",
        "10.9.5.99:5001",
        "--proto",
        "udp",
        "--qos",
        "rate=1",
        "--duration",
        "1",
    ];
    for args in [&mcast[..], &send[..]] {
        let mut p = Proc::spawn(&dir, "slow", args);
        // Past the duration (a generous margin, no timing claim): the drain is running, or
        // the send loop is stuck; a SIGINT ends the first.
        std::thread::sleep(Duration::from_secs(4));
        if p.poll().is_none() {
            p.signal(libc::SIGINT);
        }
        p.wait_for(Duration::from_secs(20))
            .unwrap_or_else(|| panic!("{args:?} stuck past its duration\n{}", p.describe()));
        let (_, err) = p.output();
        assert!(!err.contains("panicked"), "{}", p.describe());
    }
}
