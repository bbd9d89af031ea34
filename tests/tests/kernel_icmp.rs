//! Tier 3, ICMP: the Linux kernel in a test namespace pings the stack over a TAP.
//!
//! Needs root and `/dev/net/tun` (see `ws2_tests::netns::require_netns`), and iputils `ping`.

use std::time::Instant;

use ws2_tests::netns::{require_netns, KernelPeer};

/// Runs `ping` in the peer's namespace against the stack and returns its output, failing the
/// test (with the output) if ping does not succeed.
fn ping(peer: &KernelPeer, extra: &[&str]) -> String {
    let target = peer.stack_ip.to_string();
    let mut args = vec!["ping", "-n", "-c", "3", "-W", "2", "-i", "0.2"];
    args.extend_from_slice(extra);
    args.push(&target);
    let out = peer
        .ns
        .command(&args)
        .output()
        .expect("run ping (iputils-ping installed?)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "ping {extra:?} {target} failed:\n{text}"
    );
    assert!(
        text.contains("3 received"),
        "ping {extra:?} lost replies:\n{text}"
    );
    text
}

/// Conformance: issue 2 acceptance — the kernel's `ping -c 3 -W 2` to the stack gets three
/// echo replies.
#[test]
fn kernel_pings_stack() {
    if require_netns().is_some() {
        return;
    }
    let peer = KernelPeer::new("ws2-icmp", 1).expect("set up namespace, TAP and stack");
    let t = Instant::now();
    ping(&peer, &[]);
    eprintln!("kernel_pings_stack: 3 pings in {:?}", t.elapsed());
}

/// Conformance: issue 2 acceptance — echo requests of the largest unfragmented size (1472
/// bytes of data) and of a size the kernel must fragment (4000 bytes) are answered in full.
#[test]
fn kernel_pings_stack_large() {
    if require_netns().is_some() {
        return;
    }
    let peer = KernelPeer::new("ws2-icmpl", 11).expect("set up namespace, TAP and stack");
    ping(&peer, &["-s", "1472", "-M", "do"]);
    ping(&peer, &["-s", "4000"]);
}
