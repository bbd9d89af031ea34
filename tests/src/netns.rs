//! Tier-3 helpers: a network namespace per test, with the Linux kernel in it as the peer.
//!
//! Read first: DESIGN.md "Testing: three tiers" (practical notes and the network-safety rule).
//!
//! - [`require_netns`] decides whether a kernel-interop test can run here (root, `/dev/net/tun`,
//!   a working `ip netns`). Without them the test prints one `SKIP: <test>: <reason>` line and
//!   returns, unless `WS2_REQUIRE_NETNS=1` (set by `.ci/run`) turns the skip into a failure.
//! - [`Netns`] owns one namespace, named `<prefix>-<pid>-<counter>`, and deletes it on `Drop`,
//!   also when the test fails or panics.
//! - [`KernelPeer`] is the usual setup: a namespace, a TAP inside it whose namespace side the
//!   kernel addresses as `A.B.C.1/24`, and a ws2 [`Stack`] as `A.B.C.2/24` on the TAP's fd.
//!
//! Network safety: nothing here gives an address or a route to an interface of the root
//! namespace. Addresses are configured with `ip -n <ns>`, kernel sockets are made by threads
//! that joined the namespace ([`Netns::enter_thread`]), and the stack's only link is the TAP.

use std::ffi::OsStr;
use std::fmt;
use std::io::{self, Read, Write};
use std::net::Ipv4Addr;
use std::path::Path;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};

use sha2::{Digest, Sha256};
use ws2_stack::{Stack, StackConfig};

/// Set to `1` to make a missing privilege a failure instead of a skip.
pub const REQUIRE_ENV: &str = "WS2_REQUIRE_NETNS";

/// Why a kernel-interop test did not run; [`require_netns`] has already printed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skip {
    /// The test's name (its thread's name under libtest).
    pub test: String,
    /// What is missing.
    pub reason: String,
}

impl fmt::Display for Skip {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SKIP: {}: {}", self.test, self.reason)
    }
}

/// `None` when this process can make network namespaces and TAP devices (root, `/dev/net/tun`,
/// `ip netns`); otherwise prints one `SKIP: <test>: <reason>` line to stderr and answers
/// `Some`. With `WS2_REQUIRE_NETNS=1` a missing requirement panics instead.
///
/// The line goes straight to the stderr descriptor, past libtest's output capture, so a
/// skipped test is visible in a plain `cargo test` run.
///
/// ```no_run
/// if ws2_tests::netns::require_netns().is_some() {
///     return;
/// }
/// ```
pub fn require_netns() -> Option<Skip> {
    let reason = missing_requirement()?;
    let test = std::thread::current()
        .name()
        .unwrap_or("<unnamed test>")
        .to_owned();
    let skip = Skip { test, reason };
    if std::env::var(REQUIRE_ENV).is_ok_and(|v| v == "1") {
        panic!("{skip} (and {REQUIRE_ENV}=1 forbids skipping)");
    }
    let _ = writeln!(io::stderr().lock(), "{skip}");
    Some(skip)
}

/// The first thing a kernel-interop test lacks here, if any.
fn missing_requirement() -> Option<String> {
    // SAFETY: geteuid has no preconditions and cannot fail.
    #[allow(unsafe_code)]
    let euid = unsafe { libc::geteuid() };
    if euid != 0 {
        return Some(format!(
            "needs root for network namespaces (euid is {euid})"
        ));
    }
    if !Path::new("/dev/net/tun").exists() {
        return Some("needs /dev/net/tun".to_owned());
    }
    match Command::new("ip").args(["netns", "list"]).output() {
        Ok(out) if out.status.success() => None,
        Ok(out) => Some(format!(
            "`ip netns list` failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )),
        Err(e) => Some(format!("cannot run `ip` (iproute2): {e}")),
    }
}

/// A network namespace made for one test (`ip netns add`), deleted on `Drop`.
#[derive(Debug)]
pub struct Netns {
    name: String,
}

impl Netns {
    /// Creates the namespace `<prefix>-<pid>-<counter>`; the pid and a per-process counter keep
    /// parallel tests and parallel test binaries apart.
    ///
    /// # Errors
    /// If `ip netns add` cannot run or fails.
    pub fn new(prefix: &str) -> io::Result<Netns> {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let name = format!("{prefix}-{}-{n}", std::process::id());
        checked(Command::new("ip").args(["netns", "add", &name]))?;
        Ok(Netns { name })
    }

    /// The namespace's name, as `ip netns` knows it.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Runs `args` inside the namespace (`ip netns exec <ns> args…`) and returns its stdout;
    /// a non-zero exit is an error carrying the command, its status and its stderr.
    pub fn run<S: AsRef<OsStr>>(&self, args: &[S]) -> io::Result<String> {
        let out = checked(&mut self.command(args))?;
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// A `Command` that runs `args` inside the namespace, for callers that want the raw
    /// [`Output`] (a command expected to fail, say).
    pub fn command<S: AsRef<OsStr>>(&self, args: &[S]) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.name]);
        cmd.args(args);
        cmd
    }

    /// Runs `f` on a fresh thread that has joined the namespace (`setns(CLONE_NEWNET)`) and
    /// returns what it made. Sockets and TAPs created there belong to the namespace and work
    /// from any thread afterwards; the calling thread never changes namespace.
    ///
    /// # Errors
    /// If the namespace cannot be joined, or `f` panicked.
    pub fn enter_thread<T, F>(&self, f: F) -> io::Result<T>
    where
        T: Send,
        F: FnOnce() -> T + Send,
    {
        ws2_tap::in_namespace(&self.name, || Ok(f()))
    }

    /// The counters of the namespace's kernel from `/proc/net/snmp` and `/proc/net/netstat`,
    /// as `("Tcp", "InErrs") -> value`.
    pub fn snmp(&self) -> io::Result<Vec<(String, String, u64)>> {
        let text = self.run(&["cat", "/proc/net/snmp", "/proc/net/netstat"])?;
        let lines: Vec<&str> = text.lines().collect();
        let mut out = Vec::new();
        // The files alternate a header line ("Tcp: RtoAlgorithm …") and a value line.
        for pair in lines.chunks(2) {
            let [head, values] = pair else { continue };
            let (Some((group, names)), Some((_, nums))) =
                (head.split_once(':'), values.split_once(':'))
            else {
                continue;
            };
            for (name, num) in names.split_whitespace().zip(nums.split_whitespace()) {
                if let Ok(v) = num.parse::<i64>() {
                    out.push((group.to_owned(), name.to_owned(), v.max(0) as u64));
                }
            }
        }
        Ok(out)
    }

    /// One counter from [`Netns::snmp`]; 0 when this kernel does not have it.
    pub fn counter(&self, group: &str, name: &str) -> io::Result<u64> {
        Ok(self
            .snmp()?
            .into_iter()
            .find(|(g, n, _)| g == group && n == name)
            .map_or(0, |(_, _, v)| v))
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        // Deleting unpins the namespace; the kernel frees it once the last fd (the TAP, a kernel
        // socket) that refers to it is closed.
        let out = Command::new("ip")
            .args(["netns", "delete", &self.name])
            .output();
        if !matches!(&out, Ok(o) if o.status.success()) {
            let _ = writeln!(
                io::stderr().lock(),
                "warning: could not delete network namespace {}: {out:?}",
                self.name
            );
        }
    }
}

/// Runs `cmd`, failing on a non-zero exit with what it printed on stderr.
fn checked(cmd: &mut Command) -> io::Result<Output> {
    let out = cmd
        .output()
        .map_err(|e| io::Error::new(e.kind(), format!("{cmd:?}: {e}")))?;
    if !out.status.success() {
        return Err(io::Error::other(format!(
            "{cmd:?} exited with {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(out)
}

/// The TAP's name inside every test namespace (namespaces keep equal names apart).
pub const TAP_NAME: &str = "ws2tap0";

/// A namespace whose kernel is on one side of a TAP and a ws2 [`Stack`] on the other.
///
/// The kernel has `<net>.1/24` on the TAP (which is up, as is `lo`); the stack runs as
/// `<net>.2/24` on the TAP's descriptor in this process.
#[derive(Debug)]
pub struct KernelPeer {
    // Field order is drop order: the stack (and with it the TAP's fd) goes before the namespace.
    /// The ws2 node.
    pub stack: Stack,
    /// The kernel's namespace.
    pub ns: Netns,
    /// The kernel's address on the TAP.
    pub kernel_ip: Ipv4Addr,
    /// The stack's address.
    pub stack_ip: Ipv4Addr,
}

impl KernelPeer {
    /// Sets up a namespace named after `prefix` on the network `10.77.<subnet>.0/24`. Give each
    /// test its own `subnet` so that a log or capture says which test a packet came from.
    ///
    /// # Errors
    /// Any failure of `ip`, of opening the TAP, or of starting the stack.
    pub fn new(prefix: &str, subnet: u8) -> io::Result<KernelPeer> {
        Self::with_config(prefix, subnet, |_| {})
    }

    /// [`KernelPeer::new`], letting `tune` adjust the stack's configuration first.
    pub fn with_config(
        prefix: &str,
        subnet: u8,
        tune: impl FnOnce(&mut StackConfig),
    ) -> io::Result<KernelPeer> {
        let kernel_ip = Ipv4Addr::new(10, 77, subnet, 1);
        let stack_ip = Ipv4Addr::new(10, 77, subnet, 2);
        let ns = Netns::new(prefix)?;
        let tap = ws2_tap::open_in_namespace(ns.name(), TAP_NAME)?;
        // Every address and route goes into the test's namespace (`ip -n`), never the root one.
        let n = ns.name();
        checked(Command::new("ip").args([
            "-n",
            n,
            "addr",
            "add",
            &format!("{kernel_ip}/24"),
            "dev",
            TAP_NAME,
        ]))?;
        checked(Command::new("ip").args(["-n", n, "link", "set", TAP_NAME, "up"]))?;
        checked(Command::new("ip").args(["-n", n, "link", "set", "lo", "up"]))?;
        let cidr = format!("{stack_ip}/24")
            .parse()
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        let mut config = StackConfig::new(cidr);
        tune(&mut config);
        let stack = Stack::new(config, tap)?;
        Ok(KernelPeer {
            stack,
            ns,
            kernel_ip,
            stack_ip,
        })
    }
}

/// The test data stream: byte `i` is `(i * 7 + 3) mod 251` (the `ws2 send` pattern), so any
/// shift, loss or duplication changes the digest.
#[derive(Debug, Clone, Default)]
pub struct Pattern {
    offset: u64,
}

impl Pattern {
    /// The stream's period in bytes.
    const PERIOD: usize = 251;

    /// Fills `buf` with the next bytes of the stream.
    pub fn fill(&mut self, buf: &mut [u8]) {
        // One period, repeated: copying is much faster than computing each byte.
        static TABLE: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
        let table = TABLE.get_or_init(|| {
            (0..Self::PERIOD * 65)
                .map(|i| ((i * 7 + 3) % Self::PERIOD) as u8)
                .collect()
        });
        let mut done = 0;
        while done < buf.len() {
            let start = (self.offset % Self::PERIOD as u64) as usize;
            let n = (buf.len() - done).min(table.len() - start);
            buf[done..done + n].copy_from_slice(&table[start..start + n]);
            done += n;
            self.offset += n as u64;
        }
    }
}

/// Writes `len` bytes of [`Pattern`] to `w` in 64 KiB writes; returns the SHA-256 (hex) of what
/// was written.
pub fn send_pattern(mut w: impl Write, len: u64) -> io::Result<String> {
    let mut pattern = Pattern::default();
    let mut hash = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut left = len;
    while left > 0 {
        let n = left.min(buf.len() as u64) as usize;
        pattern.fill(&mut buf[..n]);
        w.write_all(&buf[..n])?;
        hash.update(&buf[..n]);
        left -= n as u64;
    }
    Ok(hex(&hash.finalize()))
}

/// Reads from `r` until end of stream; returns the byte count and the SHA-256 (hex) of what
/// was read.
pub fn recv_to_end(mut r: impl Read) -> io::Result<(u64, String)> {
    let mut hash = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut total = 0u64;
    loop {
        match r.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                hash.update(&buf[..n]);
                total += n as u64;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                return Err(io::Error::new(
                    e.kind(),
                    format!("after {total} bytes: {e}"),
                ))
            }
        }
    }
    Ok((total, hex(&hash.finalize())))
}

/// The SHA-256 (hex) of `len` bytes of [`Pattern`].
pub fn pattern_sha256(len: u64) -> String {
    send_pattern(io::sink(), len).expect("writing to a sink cannot fail")
}

/// Lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
