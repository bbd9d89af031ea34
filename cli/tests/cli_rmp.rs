//! `ws2 root` and `ws2 leaf` between processes on one `ws2 switch` (Unix datagrams), and their
//! answer to bad input.
//!
//! The CLI contract under test:
//! - `ws2 leaf --link unix:PATH --addr A/P --listen PORT --duration S --json` says
//!   `ws2 leaf: listening on …` on stderr once it listens, admits the root's invitation with
//!   `WSAAccept`, counts what arrives until the root ends the session, and prints one JSON
//!   object whose `received` holds `messages`, `lost`, `reordered`, `in_order`, `ending` and
//!   per-sender entries;
//! - `ws2 leaf … --join IP:PORT --caller-data TEXT …` asks a listening root with `WSAJoinLeaf`;
//! - `ws2 root … --listen PORT --invite IP:PORT --duration S --json` invites and admits leaves,
//!   sends sequence-numbered messages for S seconds, ends the session and prints one JSON
//!   object with its `joins` (the leaves' user data), `sent` and what each leaf sent it;
//! - bad input is refused with a message naming the problem and a non-zero exit status,
//!   before any stack starts.
//!
//! All traffic stays on Unix sockets in a private temporary directory; nothing touches an
//! interface.

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::{start_switch, wait_until, Proc, TempDir, WS2};

/// The last line of a process's stdout that parses as JSON.
fn report(p: &Proc) -> serde_json::Value {
    p.output()
        .0
        .lines()
        .rev()
        .find_map(|l| serde_json::from_str(l).ok())
        .unwrap_or_else(|| panic!("no JSON report\n{}", p.describe()))
}

fn finished(p: &mut Proc, what: &str) {
    let status = p
        .wait_for(Duration::from_secs(30))
        .unwrap_or_else(|| panic!("{what} still running\n{}", p.describe()));
    assert!(
        status.success(),
        "{what} failed: {status}\n{}",
        p.describe()
    );
}

/// Issue 6: a root invites one leaf (root-initiated) and admits another that asks
/// (leaf-initiated), sends for 2 s and ends the session; both leaves saw messages, in order
/// with no gap, and the end of the session; the root heard the sending leaf by name.
#[test]
fn cli_rmp_root_and_leaves_over_a_switch() {
    let dir = TempDir::new("cli-rmp");
    let (switch, link) = start_switch(&dir);

    let mut invited = Proc::spawn(
        &dir,
        "invited",
        &[
            "leaf",
            "--link",
            &link,
            "--addr",
            "10.9.8.2/24",
            "--listen",
            "6000",
            "--caller-data",
            "leaf two",
            "--duration",
            "20",
            "--json",
        ],
    );
    wait_until(
        Duration::from_secs(10),
        || format!("the invited leaf never listened\n{}", invited.describe()),
        || invited.output().1.contains("ws2 leaf: listening on"),
    );
    let mut root = Proc::spawn(
        &dir,
        "root",
        &[
            "root",
            "--link",
            &link,
            "--addr",
            "10.9.8.1/24",
            "--listen",
            "5800",
            "--invite",
            "10.9.8.2:6000",
            "--caller-data",
            "the root",
            "--send-rate",
            "50000",
            "--datagram",
            "500",
            "--duration",
            "3",
            "--json",
        ],
    );
    wait_until(
        Duration::from_secs(10),
        || format!("the root never listened\n{}", root.describe()),
        || root.output().1.contains("listening on port 5800"),
    );
    let mut asking = Proc::spawn(
        &dir,
        "asking",
        &[
            "leaf",
            "--link",
            &link,
            "--addr",
            "10.9.8.3/24",
            "--join",
            "10.9.8.1:5800",
            "--caller-data",
            "leaf three",
            "--send-rate",
            "2000",
            "--datagram",
            "100",
            "--duration",
            "20",
            "--json",
        ],
    );
    finished(&mut root, "ws2 root");
    finished(&mut invited, "ws2 leaf --listen");
    finished(&mut asking, "ws2 leaf --join");

    let root_report = report(&root);
    let sent = root_report["sent"]["messages"]
        .as_u64()
        .expect("sent.messages");
    assert!(sent > 0, "the root sent nothing: {root_report}");
    let joins = root_report["joins"].as_array().expect("joins");
    assert_eq!(joins.len(), 2, "two leaves joined: {root_report}");
    let data_of = |how: &str| {
        joins
            .iter()
            .find(|j| j["how"] == how)
            .unwrap_or_else(|| panic!("no {how} join: {root_report}"))["data"]
            .clone()
    };
    assert_eq!(data_of("invite"), "leaf two", "{root_report}");
    assert_eq!(data_of("request"), "leaf three", "{root_report}");

    for (leaf, peer_data) in [(&invited, "the root"), (&asking, "the root")] {
        let r = report(leaf);
        assert_eq!(r["peer_data"], peer_data, "{r}");
        let received = &r["received"];
        let messages = received["messages"].as_u64().expect("received.messages");
        assert!(messages > 0, "nothing arrived: {r}\n{}", root.describe());
        assert_eq!(received["in_order"], true, "out of order: {r}");
        assert_eq!(received["lost"].as_u64(), Some(0), "gaps: {r}");
        assert_eq!(received["ending"], "session ended by the root", "{r}");
        let senders = received["senders"].as_array().expect("senders");
        assert_eq!(senders.len(), 1, "only the root sends: {r}");
        // Whatever it saw of the session, it saw to the end.
        assert_eq!(senders[0]["last_seq"].as_u64(), Some(sent - 1), "{r}");
    }
    // The invited leaf was in before the root's first message.
    let first = report(&invited)["received"]["senders"][0]["first_seq"].as_u64();
    assert_eq!(first, Some(0), "{}", invited.describe());

    // The root heard the asking leaf (rooted data: it alone), in order.
    let heard = &root_report["received"];
    let from_leaf = heard["leaves"].as_array().expect("received.leaves");
    assert_eq!(from_leaf.len(), 1, "one leaf sends: {root_report}");
    assert!(
        from_leaf[0]["addr"]
            .as_str()
            .is_some_and(|a| a.starts_with("10.9.8.3:")),
        "{root_report}"
    );
    assert!(from_leaf[0]["messages"].as_u64() > Some(0), "{root_report}");
    assert_eq!(heard["in_order"], true, "{root_report}");
    drop(switch);
}

/// Bad input is a clear message and a non-zero exit, not a panic.
#[test]
fn cli_rmp_rejects_bad_input() {
    let dir = TempDir::new("cli-rmp-bad");
    let link = format!("unix:{}", dir.path("none.sock").display());
    let long = "x".repeat(5000);
    for (args, expect) in [
        (vec!["root"], "a root needs leaves"),
        (vec!["root", "--invite", "10.9.9.2"], "expected IP:PORT"),
        (
            vec!["root", "--invite", "239.1.2.3:6000"],
            "RMP runs over TCP",
        ),
        (
            vec!["root", "--invite", "10.9.9.1:6000"],
            "this root's own address",
        ),
        (vec!["root", "--listen", "0"], "not a port"),
        (
            vec!["root", "--listen", "5800", "--datagram", "8"],
            "a message carries",
        ),
        (vec!["root", "--listen", "5800", "--plane", "star"], "star"),
        (vec!["leaf"], "--listen"),
        (
            vec!["leaf", "--listen", "6000", "--join", "10.9.9.2:5800"],
            "cannot be used with",
        ),
        (
            vec!["leaf", "--join", "10.9.9.2:5800", "--flags", "all"],
            "all",
        ),
        (
            vec!["leaf", "--join", "10.9.9.2:5800", "--caller-data", &long],
            "at most 4096",
        ),
        (
            vec!["leaf", "--join", "10.9.9.1:5800"],
            "this leaf's own address",
        ),
    ] {
        let mut full = vec![args[0], "--link", &link, "--addr", "10.9.9.1/24"];
        full.extend(&args[1..]);
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
    // A root on a link that does not exist: a clear error, not a hang.
    let out = Command::new(WS2)
        .args([
            "root",
            "--link",
            &link,
            "--addr",
            "10.9.9.1/24",
            "--listen",
            "5800",
            "--duration",
            "1",
        ])
        .stdin(Stdio::null())
        .output()
        .expect("run ws2");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("--link"),
        "{stderr}"
    );
}
