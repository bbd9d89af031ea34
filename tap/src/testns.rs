//! Test support: a network namespace of the test's own, deleted on drop, and frame helpers.
//!
//! Network safety: everything these tests configure lives inside the namespace they create; the
//! root namespace gets no interface, address or route.

use std::io;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::Link;

/// A namespace `ws2tap-<pid>-<n>`, deleted (with everything in it) on drop.
pub(crate) struct NetNs {
    pub(crate) name: String,
}

impl NetNs {
    /// Makes a namespace, or prints `SKIP: <reason>` and returns `None` when this machine
    /// cannot (not root, no `/dev/net/tun`, no `ip`). With `WS2_REQUIRE_NETNS=1` a skip is a
    /// failure.
    pub(crate) fn create_or_skip() -> Option<NetNs> {
        static N: AtomicUsize = AtomicUsize::new(0);
        let name = format!(
            "ws2tap-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        let reason = if !std::path::Path::new("/dev/net/tun").exists() {
            "no /dev/net/tun".to_owned()
        } else {
            match Command::new("ip").args(["netns", "add", &name]).output() {
                Ok(out) if out.status.success() => return Some(NetNs { name }),
                Ok(out) => format!(
                    "`ip netns add` failed (not root?): {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                ),
                Err(e) => format!("cannot run `ip`: {e}"),
            }
        };
        if std::env::var("WS2_REQUIRE_NETNS").is_ok_and(|v| v == "1") {
            panic!("WS2_REQUIRE_NETNS=1 but {reason}");
        }
        println!("SKIP: {reason}");
        None
    }

    /// Runs `ip -n NS args…`, returning stdout; panics with stderr on failure.
    pub(crate) fn ip(&self, args: &[&str]) -> String {
        self.try_ip(args)
            .unwrap_or_else(|e| panic!("ip -n {} {args:?}: {e}", self.name))
    }

    /// Runs `ip -n NS args…`: stdout, or stderr as the error.
    pub(crate) fn try_ip(&self, args: &[&str]) -> Result<String, String> {
        let out = Command::new("ip")
            .args(["-n", &self.name])
            .args(args)
            .output()
            .map_err(|e| e.to_string())?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    }

    /// Turns IPv6 off in the namespace, so the kernel sends no unasked-for frames.
    pub(crate) fn quiet(&self) {
        for key in [
            "net.ipv6.conf.all.disable_ipv6=1",
            "net.ipv6.conf.default.disable_ipv6=1",
        ] {
            let _ = Command::new("ip")
                .args(["netns", "exec", &self.name, "sysctl", "-qw", key])
                .status();
        }
    }
}

/// Long enough for any frame the kernel answers with.
pub(crate) const ANSWER: Duration = Duration::from_secs(3);
/// Long enough to believe a frame is not coming.
pub(crate) const SILENCE: Duration = Duration::from_millis(500);

impl Drop for NetNs {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

/// Receives from `link` (with a `buf_len` buffer) for up to `wait` until a frame satisfies `want`.
/// (`Link` promises only a raw descriptor, so this naps instead of polling it.)
pub(crate) fn recv_matching<L: Link>(
    link: &mut L,
    buf_len: usize,
    wait: Duration,
    want: impl Fn(&[u8]) -> bool,
) -> io::Result<Option<Vec<u8>>> {
    let mut buf = vec![0u8; buf_len];
    let deadline = Instant::now() + wait;
    while Instant::now() < deadline {
        while let Some(n) = link.recv(&mut buf, Instant::now())? {
            if want(&buf[..n]) {
                return Ok(Some(buf[..n].to_vec()));
            }
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    Ok(None)
}
