//! Tier-3 IP multicast helpers: a Linux bridge as the IGMP querier (RFC 2236, RFC 3376), the
//! ws2 stack behind one of its ports, and kernel group members beside it.
//!
//! Read first: DESIGN.md "Testing: three tiers", and [`crate::netns`] (namespaces, the skip
//! rule, the network-safety rule).
//!
//! [`QuerierLan`] builds this network, all of it inside namespaces the test made:
//!
//! ```text
//!   namespace "bridge" (A)                                        namespace "own" (C)
//!   ┌──────────────────────────────────────────────────────┐
//!   │ br0: snooping + querier, 10.77.N.1/24                 │
//!   │   ├── h0b ══ h0a ──┐                                   │
//!   │   │                br1: hub (no snooping)               │
//!   │   │                ├── ws2tap0 ─── ws2 stack 10.77.N.2  │
//!   │   │                └── k1a ════════════════════════════╪══ k1b 10.77.N.3  namespace "shared" (B)
//!   │   └── c0a ═════════════════════════════════════════════╪══ c0b 10.77.N.4  (C)
//!   └──────────────────────────────────────────────────────┘
//! ```
//!
//! - The stack and the *shared* kernel member (B) sit behind the same br0 port, `h0b`: for the
//!   bridge they are one port, as two hosts on a hub are. When one of them leaves, the bridge
//!   asks that port (group-specific query) whether anyone is still there.
//! - The *own* kernel member (C) has a br0 port of its own, `c0a`, for data tests: traffic the
//!   stack sends to a group reaches C only if the bridge forwards it by its mdb.
//! - [`QuerierLan::mdb`] reads the bridge's membership table (`bridge mdb show`);
//!   [`Capture`] runs `tcpdump` on an interface of namespace A (usually the stack's TAP) and
//!   [`igmp_of`] reads the IGMP messages in what it captured.
//!
//! Network safety: every address and route goes into the test's namespaces (`ip -n`); the root
//! namespace gets nothing. IPv6 is switched off inside the namespaces so that captures hold only
//! the traffic under test. Dropping the [`QuerierLan`] stops the stack and deletes all three
//! namespaces, also when the test panics.

use std::fs;
use std::io::{self, BufRead, BufReader, Read};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::PathBuf;
use std::process::{Child, ChildStderr, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use ws2_stack::{Ipv4Cidr, Stack, StackConfig};

use crate::netns::{Netns, REQUIRE_ENV, TAP_NAME};

/// The querier's bridge (snooping, querier), in namespace A.
pub const QUERIER_BRIDGE: &str = "br0";
/// The hub the stack's TAP hangs off (no snooping: floods everything), in namespace A.
pub const HUB_BRIDGE: &str = "br1";
/// The br0 port behind which the stack and the shared kernel member sit.
pub const SHARED_PORT: &str = "h0b";
/// The br0 port of the own kernel member.
pub const OWN_PORT: &str = "c0a";

/// The bridge's querier settings (`ip link set br0 type bridge …`, in centiseconds there).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Querier {
    /// `mcast_igmp_version`: 2 or 3.
    pub igmp_version: u8,
    /// `mcast_query_interval`: time between general queries.
    pub query_interval: Duration,
    /// `mcast_query_response_interval`: the Max Resp Time of general queries.
    pub query_response_interval: Duration,
    /// `mcast_last_member_count`: group-specific queries sent after a leave.
    pub last_member_count: u32,
    /// `mcast_last_member_interval`: time between them, and their Max Resp Time.
    pub last_member_interval: Duration,
}

impl Default for Querier {
    /// IGMPv3, a query each second answered within 0.4 s, two group-specific queries 0.5 s
    /// apart after a leave.
    fn default() -> Querier {
        Querier {
            igmp_version: 3,
            query_interval: Duration::from_secs(1),
            query_response_interval: Duration::from_millis(400),
            last_member_count: 2,
            last_member_interval: Duration::from_millis(500),
        }
    }
}

impl Querier {
    /// The same settings with IGMP version `v`.
    pub fn version(self, v: u8) -> Querier {
        Querier {
            igmp_version: v,
            ..self
        }
    }

    /// How long the bridge keeps a membership nobody confirms (RFC 3376 §8.4 with robustness
    /// 2: 2 × query interval + query response interval). The bridge does not derive it; the
    /// lan sets `mcast_membership_interval` to this, so that a host that stops answering
    /// queries loses its mdb entry within the test's run.
    pub fn membership_interval(&self) -> Duration {
        2 * self.query_interval + self.query_response_interval
    }

    /// How long the bridge keeps asking after the last member left (RFC 3376 §8.8: last member
    /// query count × interval).
    pub fn last_member_time(&self) -> Duration {
        self.last_member_interval * self.last_member_count
    }

    /// The `ip link … type bridge` arguments for these settings.
    ///
    /// Linux clamps `mcast_query_interval` and `mcast_startup_query_interval` to at least 1 s
    /// (`trying to set multicast query interval below minimum` in the kernel log);
    /// [`QuerierLan::new`] reads the settings back and fails on any such difference.
    fn bridge_args(&self) -> Vec<String> {
        let cs = |d: Duration| (d.as_millis() / 10).max(1).to_string();
        [
            ("mcast_snooping", "1".to_owned()),
            ("mcast_querier", "1".to_owned()),
            ("mcast_query_use_ifaddr", "1".to_owned()),
            ("mcast_igmp_version", self.igmp_version.to_string()),
            ("mcast_hash_max", "8192".to_owned()),
            ("mcast_query_interval", cs(self.query_interval)),
            (
                "mcast_query_response_interval",
                cs(self.query_response_interval),
            ),
            ("mcast_startup_query_interval", cs(self.query_interval)),
            (
                "mcast_last_member_count",
                self.last_member_count.to_string(),
            ),
            ("mcast_last_member_interval", cs(self.last_member_interval)),
            ("mcast_membership_interval", cs(self.membership_interval())),
            (
                "mcast_querier_interval",
                cs(self.membership_interval() + self.query_interval),
            ),
        ]
        .into_iter()
        .flat_map(|(k, v)| [k.to_owned(), v])
        .collect()
    }
}

/// Which kernel member (see the module's picture).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Member {
    /// Namespace B, `10.77.N.3`, behind br0's port [`SHARED_PORT`] together with the stack.
    Shared,
    /// Namespace C, `10.77.N.4`, on br0's port [`OWN_PORT`].
    Own,
}

/// A LAN with a Linux bridge as IGMP querier, the ws2 stack and two kernel members; see the
/// module documentation for the picture.
#[derive(Debug)]
pub struct QuerierLan {
    // Field order is drop order: the stack (and the TAP's fd) before the namespaces.
    /// The ws2 node, `10.77.N.2/24`, on the TAP in namespace A.
    pub stack: Stack,
    /// Namespace A: both bridges, the TAP, the querier's address.
    pub bridge_ns: Netns,
    /// Namespace B: the kernel member that shares the stack's br0 port.
    pub shared_ns: Netns,
    /// Namespace C: the kernel member on its own br0 port.
    pub own_ns: Netns,
    /// The querier's settings as last applied.
    pub querier: Querier,
    /// br0's address, the source of the queries (`10.77.N.1`).
    pub querier_ip: Ipv4Addr,
    /// The stack's address (`10.77.N.2`).
    pub stack_ip: Ipv4Addr,
    /// The shared member's address (`10.77.N.3`).
    pub shared_ip: Ipv4Addr,
    /// The own member's address (`10.77.N.4`).
    pub own_ip: Ipv4Addr,
}

impl QuerierLan {
    /// Builds the LAN on `10.77.<subnet>.0/24` with namespaces named after `prefix`; `tune`
    /// adjusts the stack's configuration (an IGMP version, say) before it starts. Returns once
    /// every link is up; the bridge's first query follows at once (startup queries).
    ///
    /// # Errors
    /// Any failure of `ip`, `sysctl`, of opening the TAP or of starting the stack.
    pub fn new(
        prefix: &str,
        subnet: u8,
        querier: Querier,
        tune: impl FnOnce(&mut StackConfig),
    ) -> io::Result<QuerierLan> {
        let ip = |host| Ipv4Addr::new(10, 77, subnet, host);
        let bridge_ns = Netns::new(&format!("{prefix}-a"))?;
        let shared_ns = Netns::new(&format!("{prefix}-b"))?;
        let own_ns = Netns::new(&format!("{prefix}-c"))?;
        for ns in [&bridge_ns, &shared_ns, &own_ns] {
            // Per namespace: no IPv6 (no MLD, no neighbour discovery in the captures).
            for key in ["all", "default"] {
                ns.run(&[
                    "sysctl",
                    "-q",
                    "-w",
                    &format!("net.ipv6.conf.{key}.disable_ipv6=1"),
                ])?;
            }
            ip_in(ns, &["link", "set", "lo", "up"])?;
        }
        let a = &bridge_ns;

        // br0: the querier; br1: a dumb hub in front of one br0 port.
        let mut br0 = vec!["link", "add", QUERIER_BRIDGE, "type", "bridge"]
            .into_iter()
            .map(str::to_owned)
            .collect::<Vec<_>>();
        br0.extend(querier.bridge_args());
        ip_in(a, &br0)?;
        check_applied(a, &querier)?;
        ip_in(
            a,
            &[
                "link",
                "add",
                HUB_BRIDGE,
                "type",
                "bridge",
                "mcast_snooping",
                "0",
            ],
        )?;

        // The stack's TAP on the hub.
        let tap = ws2_tap::open_in_namespace(a.name(), TAP_NAME)?;
        ip_in(a, &["link", "set", TAP_NAME, "master", HUB_BRIDGE])?;

        // Hub to br0.
        ip_in(
            a,
            &[
                "link",
                "add",
                "h0a",
                "type",
                "veth",
                "peer",
                "name",
                SHARED_PORT,
            ],
        )?;
        ip_in(a, &["link", "set", "h0a", "master", HUB_BRIDGE])?;
        ip_in(a, &["link", "set", SHARED_PORT, "master", QUERIER_BRIDGE])?;

        // The shared member, on the hub; the own member, on br0.
        for (here, there, ns, master, host) in [
            ("k1a", "k1b", &shared_ns, HUB_BRIDGE, 3),
            (OWN_PORT, "c0b", &own_ns, QUERIER_BRIDGE, 4),
        ] {
            ip_in(
                a,
                &[
                    "link",
                    "add",
                    here,
                    "type",
                    "veth",
                    "peer",
                    "name",
                    there,
                    "netns",
                    ns.name(),
                ],
            )?;
            ip_in(a, &["link", "set", here, "master", master])?;
            ip_in(
                ns,
                &["addr", "add", &format!("{}/24", ip(host)), "dev", there],
            )?;
            ip_in(ns, &["link", "set", there, "up"])?;
            // Multicast leaves through the only link (there is no default route).
            ip_in(ns, &["route", "add", "224.0.0.0/4", "dev", there])?;
        }

        ip_in(
            a,
            &[
                "addr",
                "add",
                &format!("{}/24", ip(1)),
                "dev",
                QUERIER_BRIDGE,
            ],
        )?;
        for dev in [
            TAP_NAME,
            "h0a",
            SHARED_PORT,
            "k1a",
            OWN_PORT,
            HUB_BRIDGE,
            QUERIER_BRIDGE,
        ] {
            ip_in(a, &["link", "set", dev, "up"])?;
        }

        let cidr = Ipv4Cidr::new(ip(2), 24).expect("prefix 24 is valid");
        let mut config = StackConfig::new(cidr);
        tune(&mut config);
        let stack = Stack::new(config, tap)?;
        Ok(QuerierLan {
            stack,
            bridge_ns,
            shared_ns,
            own_ns,
            querier,
            querier_ip: ip(1),
            stack_ip: ip(2),
            shared_ip: ip(3),
            own_ip: ip(4),
        })
    }

    /// Applies new querier settings to br0 (`ip link set br0 type bridge …`), effective from
    /// the bridge's next query.
    pub fn set_querier(&mut self, querier: Querier) -> io::Result<()> {
        let mut args = vec!["link", "set", QUERIER_BRIDGE, "type", "bridge"]
            .into_iter()
            .map(str::to_owned)
            .collect::<Vec<_>>();
        args.extend(querier.bridge_args());
        ip_in(&self.bridge_ns, &args)?;
        check_applied(&self.bridge_ns, &querier)?;
        self.querier = querier;
        Ok(())
    }

    /// br0's settings as the kernel reports them (`ip -d link show br0`), for a failure message.
    pub fn bridge_details(&self) -> String {
        self.bridge_ns
            .run(&["ip", "-d", "link", "show", QUERIER_BRIDGE])
            .unwrap_or_else(|e| e.to_string())
    }

    /// The stack's Ethernet address (`02:57:32:` and the low three bytes of its address, as
    /// `StackConfig::new` derives it).
    pub fn stack_mac(&self) -> [u8; 6] {
        crate::mac_of(self.stack_ip)
    }

    /// A member's namespace and address.
    pub fn member(&self, who: Member) -> (&Netns, Ipv4Addr) {
        match who {
            Member::Shared => (&self.shared_ns, self.shared_ip),
            Member::Own => (&self.own_ns, self.own_ip),
        }
    }

    /// A kernel UDP socket of member `who`, bound to `0.0.0.0:port` (a receiver for any group
    /// on that port), with a 5 s read timeout. Join groups with `join_multicast_v4(&group,
    /// &lan.member(who).1)`.
    pub fn kernel_socket(&self, who: Member, port: u16) -> io::Result<std::net::UdpSocket> {
        let (ns, _) = self.member(who);
        let sock = ns.enter_thread(|| {
            std::net::UdpSocket::bind(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, port))
        })??;
        sock.set_read_timeout(Some(Duration::from_secs(5)))?;
        Ok(sock)
    }

    /// br0's IPv4 memberships (`bridge mdb show`), IPv6 and router entries left out.
    pub fn mdb(&self) -> io::Result<Vec<MdbEntry>> {
        let text = self
            .bridge_ns
            .run(&["bridge", "mdb", "show", "dev", QUERIER_BRIDGE])?;
        Ok(parse_mdb(&text))
    }

    /// The groups br0 has on `port` (any source).
    pub fn groups_on(&self, port: &str) -> io::Result<Vec<Ipv4Addr>> {
        let mut groups: Vec<Ipv4Addr> = self
            .mdb()?
            .into_iter()
            .filter(|e| e.port == port)
            .map(|e| e.group)
            .collect();
        groups.sort();
        groups.dedup();
        Ok(groups)
    }

    /// Polls the mdb every 20 ms until `done` holds or `timeout` passes; returns when it held
    /// (time since the call) or `Err` with the last table read.
    pub fn wait_mdb(
        &self,
        timeout: Duration,
        done: impl Fn(&[MdbEntry]) -> bool,
    ) -> Result<Duration, Vec<MdbEntry>> {
        let start = Instant::now();
        loop {
            let table = self.mdb().expect("bridge mdb show");
            if done(&table) {
                return Ok(start.elapsed());
            }
            if start.elapsed() > timeout {
                return Err(table);
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Starts a capture of the frames on interface `dev` of namespace A that match the
    /// `tcpdump` filter `filter`.
    pub fn capture(&self, dev: &str, filter: &str) -> Capture {
        Capture::start(&self.bridge_ns, dev, filter)
    }
}

/// Reads br0's settings back (`ip -d link show br0`) and fails if the kernel changed any of
/// `querier`'s (it clamps some intervals to a minimum).
fn check_applied(ns: &Netns, querier: &Querier) -> io::Result<()> {
    let shown = ns.run(&["ip", "-d", "link", "show", QUERIER_BRIDGE])?;
    let words: Vec<&str> = shown.split_whitespace().collect();
    for pair in querier.bridge_args().chunks(2) {
        let (key, want) = (&pair[0], &pair[1]);
        let got = words.windows(2).find(|w| w[0] == key).map(|w| w[1]);
        if got.is_some_and(|g| g != want) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("br0 {key}: asked for {want}, the kernel set {got:?}"),
            ));
        }
    }
    Ok(())
}

/// Runs `ip -n <ns> args…`, failing with its stderr on a non-zero exit.
fn ip_in<S: AsRef<str>>(ns: &Netns, args: &[S]) -> io::Result<()> {
    let mut cmd = Command::new("ip");
    cmd.args(["-n", ns.name()]);
    cmd.args(args.iter().map(AsRef::as_ref));
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
    Ok(())
}

/// One IPv4 row of `bridge mdb show`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MdbEntry {
    /// The bridge port (`h0b`, `c0a`, or `br0` itself).
    pub port: String,
    /// The group.
    pub group: Ipv4Addr,
    /// The source of an (S,G) entry (IGMPv3 snooping), `None` for (*,G).
    pub source: Option<Ipv4Addr>,
}

/// The IPv4 rows of `bridge mdb show` text (`dev br0 port h0b grp 239.1.2.3 [src S] temp …`).
pub fn parse_mdb(text: &str) -> Vec<MdbEntry> {
    let mut out = Vec::new();
    for line in text.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        let after = |key: &str| {
            words
                .windows(2)
                .find(|w| w[0] == key)
                .map(|w| w[1].to_owned())
        };
        let (Some(port), Some(group)) = (after("port"), after("grp")) else {
            continue;
        };
        let Ok(group) = group.parse::<Ipv4Addr>() else {
            continue; // IPv6 or a MAC entry
        };
        let source = after("src").and_then(|s| s.parse().ok());
        out.push(MdbEntry {
            port,
            group,
            source,
        });
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Capture.

/// `tcpdump` on one interface of a namespace, writing a pcap file; stopped (and its file
/// removed) on drop, also when the test fails. Needs `tcpdump` (see [`require_tcpdump`]).
#[derive(Debug)]
pub struct Capture {
    child: Option<Child>,
    stderr: Option<BufReader<ChildStderr>>,
    path: PathBuf,
}

/// One captured frame.
#[derive(Clone, Debug)]
pub struct Frame {
    /// The kernel's capture timestamp, nanoseconds of the realtime clock.
    pub at: u64,
    /// The whole frame (Ethernet header first; the snap length covers any frame here).
    pub data: Vec<u8>,
}

impl Capture {
    /// Starts `tcpdump -i dev filter` in `ns` and returns once it listens.
    ///
    /// # Panics
    /// If `tcpdump` cannot start or exits before listening.
    pub fn start(ns: &Netns, dev: &str, filter: &str) -> Capture {
        use std::sync::atomic::{AtomicU32, Ordering};
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let path = std::env::temp_dir().join(format!(
            "ws2-bridge-{}-{}.pcap",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = fs::remove_file(&path);
        let path_arg = path.display().to_string();
        let mut child = ns
            .command(&[
                "tcpdump",
                "-i",
                dev,
                "-n",
                "-Z",
                "root",
                "-s",
                "2048",
                "-B",
                "8192",
                "--immediate-mode",
                "--time-stamp-precision=nano",
                "-w",
                &path_arg,
                filter,
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run tcpdump in the namespace");
        let mut stderr = BufReader::new(child.stderr.take().expect("piped stderr"));
        let mut cap = Capture {
            child: Some(child),
            stderr: None,
            path,
        };
        let mut line = String::new();
        loop {
            line.clear();
            let n = stderr.read_line(&mut line).expect("read tcpdump's stderr");
            assert!(n > 0, "tcpdump exited before listening");
            if line.contains("listening on") {
                break;
            }
        }
        cap.stderr = Some(stderr);
        cap
    }

    /// Stops `tcpdump` (SIGINT, so that it flushes its file) and returns the frames it wrote.
    ///
    /// # Panics
    /// If the kernel dropped frames (the capture would not be complete) or the file is not a
    /// pcap file.
    pub fn finish(mut self) -> Vec<Frame> {
        // Frames already written to the interface reach tcpdump's buffer at once; a short
        // pause lets the last ones through before the interrupt.
        thread::sleep(Duration::from_millis(50));
        let summary = self.stop();
        let dropped = summary
            .lines()
            .find_map(|l| l.strip_suffix(" packets dropped by kernel"))
            .and_then(|n| n.trim().parse::<u64>().ok());
        assert_eq!(
            dropped,
            Some(0),
            "the capture must be complete; tcpdump said: {summary}"
        );
        let bytes = fs::read(&self.path).expect("read the capture");
        read_pcap(&bytes).expect("tcpdump writes pcap")
    }

    /// Interrupts `tcpdump`, waits for it and returns the rest of its stderr.
    fn stop(&mut self) -> String {
        let Some(mut child) = self.child.take() else {
            return String::new();
        };
        let pid = libc::pid_t::try_from(child.id()).expect("pid fits pid_t");
        // SAFETY: kill has no memory-safety preconditions; `pid` is our own child, not yet
        // reaped, so the id cannot have been reused.
        #[allow(unsafe_code)]
        unsafe {
            libc::kill(pid, libc::SIGINT);
        }
        let mut rest = String::new();
        if let Some(mut e) = self.stderr.take() {
            let _ = e.read_to_string(&mut rest);
        }
        let _ = child.wait();
        rest
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        self.stop();
        let _ = fs::remove_file(&self.path);
    }
}

/// `None` when `tcpdump` runs here; otherwise prints `SKIP: <test>: needs tcpdump` and answers
/// `Some(())` (a failure instead with `WS2_REQUIRE_NETNS=1`), like
/// [`require_netns`](crate::netns::require_netns).
pub fn require_tcpdump() -> Option<()> {
    let ok = Command::new("tcpdump")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if ok {
        return None;
    }
    let test = thread::current()
        .name()
        .unwrap_or("<unnamed test>")
        .to_owned();
    if std::env::var(REQUIRE_ENV).is_ok_and(|v| v == "1") {
        panic!("{test}: needs tcpdump (and {REQUIRE_ENV}=1 forbids skipping)");
    }
    eprintln!("SKIP: {test}: needs tcpdump");
    Some(())
}

/// The records of a pcap file (link type Ethernet, either byte order, micro- or nanosecond
/// timestamps); a record cut short at the end (tcpdump interrupted mid-write) is left out.
///
/// # Errors
/// `InvalidData` for a file that is not pcap or not Ethernet.
pub fn read_pcap(b: &[u8]) -> io::Result<Vec<Frame>> {
    let bad = |what: String| io::Error::new(io::ErrorKind::InvalidData, what);
    if b.len() < 24 {
        return Err(bad(format!("pcap file of {} bytes", b.len())));
    }
    let magic = [b[0], b[1], b[2], b[3]];
    let (le, nanos) = match magic {
        [0xd4, 0xc3, 0xb2, 0xa1] => (true, false),
        [0x4d, 0x3c, 0xb2, 0xa1] => (true, true),
        [0xa1, 0xb2, 0xc3, 0xd4] => (false, false),
        [0xa1, 0xb2, 0x3c, 0x4d] => (false, true),
        _ => return Err(bad(format!("not a pcap file: magic {magic:02x?}"))),
    };
    let u32_at = |i: usize| {
        let w = [b[i], b[i + 1], b[i + 2], b[i + 3]];
        if le {
            u32::from_le_bytes(w)
        } else {
            u32::from_be_bytes(w)
        }
    };
    if u32_at(20) != 1 {
        return Err(bad(format!("link type {}, not Ethernet", u32_at(20))));
    }
    let mut out = Vec::new();
    let mut i = 24;
    while i + 16 <= b.len() {
        let (sec, frac) = (u64::from(u32_at(i)), u64::from(u32_at(i + 4)));
        let incl = u32_at(i + 8) as usize;
        if i + 16 + incl > b.len() {
            break;
        }
        out.push(Frame {
            at: sec * 1_000_000_000 + if nanos { frac } else { frac * 1000 },
            data: b[i + 16..i + 16 + incl].to_vec(),
        });
        i += 16 + incl;
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// Reading IGMP (RFC 2236, RFC 3376) and IPv4 from captured frames. An independent reader, so
// that the tests do not check the stack's IGMP against the stack's own parser.

/// RFC 3376 §4.2.12 record types.
pub const MODE_IS_INCLUDE: u8 = 1;
/// `MODE_IS_EXCLUDE`.
pub const MODE_IS_EXCLUDE: u8 = 2;
/// `CHANGE_TO_INCLUDE_MODE`.
pub const CHANGE_TO_INCLUDE: u8 = 3;
/// `CHANGE_TO_EXCLUDE_MODE`.
pub const CHANGE_TO_EXCLUDE: u8 = 4;
/// `ALLOW_NEW_SOURCES`.
pub const ALLOW_NEW_SOURCES: u8 = 5;
/// `BLOCK_OLD_SOURCES`.
pub const BLOCK_OLD_SOURCES: u8 = 6;

/// The IPv4 header fields the multicast tests look at, and where the payload starts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ip {
    /// Ethernet source.
    pub src_mac: [u8; 6],
    /// Ethernet destination.
    pub dst_mac: [u8; 6],
    /// IP source.
    pub src: Ipv4Addr,
    /// IP destination.
    pub dst: Ipv4Addr,
    /// Time to live.
    pub ttl: u8,
    /// IP protocol.
    pub proto: u8,
    /// The options field holds the Router Alert option (RFC 2113: `94 04 00 00`).
    pub router_alert: bool,
    /// The header checksum is right.
    pub header_ok: bool,
    /// Where the IP payload starts in the frame, and where it ends (IP total length).
    pub payload: std::ops::Range<usize>,
}

/// The IPv4 header of an Ethernet frame; `None` for anything else or a frame too short.
pub fn ipv4_of(frame: &[u8]) -> Option<Ip> {
    if frame.len() < 34 || frame[12..14] != [0x08, 0x00] {
        return None;
    }
    let ip = &frame[14..];
    let ihl = usize::from(ip[0] & 0x0f) * 4;
    let total = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
    if ip[0] >> 4 != 4 || ihl < 20 || ip.len() < total || total < ihl {
        return None;
    }
    let options = &ip[20..ihl];
    let mut router_alert = false;
    let mut i = 0;
    while i < options.len() {
        match options[i] {
            0 => break,
            1 => i += 1,
            kind => {
                let len = usize::from(*options.get(i + 1)?);
                if len < 2 || i + len > options.len() {
                    return None;
                }
                if kind == 0x94 && options[i..i + len] == [0x94, 0x04, 0x00, 0x00] {
                    router_alert = true;
                }
                i += len;
            }
        }
    }
    let mut src_mac = [0u8; 6];
    let mut dst_mac = [0u8; 6];
    dst_mac.copy_from_slice(&frame[0..6]);
    src_mac.copy_from_slice(&frame[6..12]);
    Some(Ip {
        src_mac,
        dst_mac,
        src: Ipv4Addr::new(ip[12], ip[13], ip[14], ip[15]),
        dst: Ipv4Addr::new(ip[16], ip[17], ip[18], ip[19]),
        ttl: ip[8],
        proto: ip[9],
        router_alert,
        header_ok: internet_checksum(&ip[..ihl]) == 0,
        payload: 14 + ihl..14 + total,
    })
}

/// The one's-complement sum of `data` (RFC 1071), folded and inverted: 0 over a block whose
/// checksum field is right.
pub fn internet_checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    for chunk in data.chunks(2) {
        let word = u16::from_be_bytes([chunk[0], *chunk.get(1).unwrap_or(&0)]);
        sum += u32::from(word);
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// One group record of an IGMPv3 report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupRecord {
    /// Record type ([`MODE_IS_INCLUDE`] …).
    pub kind: u8,
    /// Multicast address.
    pub group: Ipv4Addr,
    /// Source list.
    pub sources: Vec<Ipv4Addr>,
}

/// An IGMP message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Igmp {
    /// A membership query (0x11): version 1 (Max Resp Code 0, 8 bytes), 2 (8 bytes) or 3
    /// (12 bytes or more). `group` unspecified = general query.
    Query {
        /// 1, 2 or 3, by RFC 3376 §7.1.
        version: u8,
        /// Decoded Max Resp Time.
        max_resp: Duration,
        /// Group address (0.0.0.0 for a general query).
        group: Ipv4Addr,
        /// Sources of a group-and-source-specific query (v3).
        sources: Vec<Ipv4Addr>,
    },
    /// An IGMPv1 report (0x12).
    ReportV1(Ipv4Addr),
    /// An IGMPv2 report (0x16).
    ReportV2(Ipv4Addr),
    /// An IGMPv2 leave (0x17).
    Leave(Ipv4Addr),
    /// An IGMPv3 report (0x22).
    ReportV3(Vec<GroupRecord>),
    /// Any other type, or a message too short for its type.
    Other(u8),
}

impl Igmp {
    /// Whether this is a report of any version (v1, v2, v3) naming `group`.
    pub fn reports(&self, group: Ipv4Addr) -> bool {
        match self {
            Igmp::ReportV1(g) | Igmp::ReportV2(g) => *g == group,
            Igmp::ReportV3(records) => records.iter().any(|r| r.group == group),
            _ => false,
        }
    }

    /// Whether this is a report of any version.
    pub fn is_report(&self) -> bool {
        matches!(
            self,
            Igmp::ReportV1(_) | Igmp::ReportV2(_) | Igmp::ReportV3(_)
        )
    }
}

/// One captured IGMP frame, read.
#[derive(Clone, Debug)]
pub struct IgmpFrame {
    /// Capture timestamp, nanoseconds.
    pub at: u64,
    /// Its IPv4 header.
    pub ip: Ip,
    /// The IGMP checksum is right.
    pub checksum_ok: bool,
    /// The message.
    pub msg: Igmp,
}

/// Decodes an RFC 3376 §4.1.1 Max Resp Code (same as RFC 2236 for codes below 128) in tenths
/// of a second.
pub fn max_resp_time(code: u8) -> Duration {
    let tenths = if code < 128 {
        u32::from(code)
    } else {
        let mant = u32::from(code & 0x0f);
        let exp = u32::from((code >> 4) & 0x07);
        (mant | 0x10) << (exp + 3)
    };
    Duration::from_millis(u64::from(tenths) * 100)
}

/// The IGMP message in `frame`; `None` if it carries none.
pub fn igmp_of(frame: &Frame) -> Option<IgmpFrame> {
    let ip = ipv4_of(&frame.data)?;
    if ip.proto != 2 {
        return None;
    }
    let m = &frame.data[ip.payload.clone()];
    if m.len() < 8 {
        return None;
    }
    let addr = |i: usize| Ipv4Addr::new(m[i], m[i + 1], m[i + 2], m[i + 3]);
    let msg = match m[0] {
        0x11 if m.len() == 8 => Igmp::Query {
            version: if m[1] == 0 { 1 } else { 2 },
            max_resp: max_resp_time(m[1]),
            group: addr(4),
            sources: Vec::new(),
        },
        0x11 if m.len() >= 12 => {
            let n = usize::from(u16::from_be_bytes([m[10], m[11]]));
            let sources = (0..n)
                .map(|k| 12 + 4 * k)
                .take_while(|&i| i + 4 <= m.len())
                .map(addr)
                .collect();
            Igmp::Query {
                version: 3,
                max_resp: max_resp_time(m[1]),
                group: addr(4),
                sources,
            }
        }
        0x12 => Igmp::ReportV1(addr(4)),
        0x16 => Igmp::ReportV2(addr(4)),
        0x17 => Igmp::Leave(addr(4)),
        0x22 => {
            let count = usize::from(u16::from_be_bytes([m[6], m[7]]));
            let mut records = Vec::with_capacity(count);
            let mut i = 8;
            for _ in 0..count {
                if i + 8 > m.len() {
                    break;
                }
                let aux = usize::from(m[i + 1]) * 4;
                let n = usize::from(u16::from_be_bytes([m[i + 2], m[i + 3]]));
                if i + 8 + 4 * n + aux > m.len() {
                    break;
                }
                records.push(GroupRecord {
                    kind: m[i],
                    group: addr(i + 4),
                    sources: (0..n).map(|k| addr(i + 8 + 4 * k)).collect(),
                });
                i += 8 + 4 * n + aux;
            }
            Igmp::ReportV3(records)
        }
        t => Igmp::Other(t),
    };
    Some(IgmpFrame {
        at: frame.at,
        checksum_ok: internet_checksum(m) == 0,
        ip,
        msg,
    })
}

/// The UDP datagrams in `frames` from `src` to `dst`: (IP header, payload bytes).
pub fn udp_datagrams(
    frames: &[Frame],
    src: Option<SocketAddrV4>,
    dst: SocketAddrV4,
) -> Vec<(Ip, Vec<u8>)> {
    frames
        .iter()
        .filter_map(|f| {
            let ip = ipv4_of(&f.data)?;
            if ip.proto != 17 || ip.payload.len() < 8 {
                return None;
            }
            let u = &f.data[ip.payload.clone()];
            let sport = u16::from_be_bytes([u[0], u[1]]);
            let dport = u16::from_be_bytes([u[2], u[3]]);
            let from = SocketAddrV4::new(ip.src, sport);
            let to = SocketAddrV4::new(ip.dst, dport);
            if to != dst || src.is_some_and(|s| s != from) {
                return None;
            }
            let payload = u[8..].to_vec();
            Some((ip, payload))
        })
        .collect()
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn max_resp_codes() {
        assert_eq!(max_resp_time(4), Duration::from_millis(400));
        assert_eq!(max_resp_time(100), Duration::from_secs(10));
        // 0x80: exp 0, mant 0 -> 16 << 3 = 128 tenths.
        assert_eq!(max_resp_time(0x80), Duration::from_millis(12_800));
    }

    #[test]
    fn mdb_rows() {
        let text = "dev br0 port h0b grp 239.1.2.3 temp\n\
                    dev br0 port c0a grp 232.1.1.1 src 10.77.40.4 temp\n\
                    dev br0 port br0 grp ff02::6a temp\n\
                    router ports on br0: h0b\n";
        assert_eq!(
            parse_mdb(text),
            vec![
                MdbEntry {
                    port: "h0b".into(),
                    group: Ipv4Addr::new(239, 1, 2, 3),
                    source: None
                },
                MdbEntry {
                    port: "c0a".into(),
                    group: Ipv4Addr::new(232, 1, 1, 1),
                    source: Some(Ipv4Addr::new(10, 77, 40, 4))
                },
            ]
        );
    }

    #[test]
    fn v3_report_with_router_alert() {
        // Ethernet + IPv4 (RA option, TTL 1) + IGMPv3 report: one CHANGE_TO_EXCLUDE {} record.
        let mut f = vec![
            0x01, 0x00, 0x5e, 0x00, 0x00, 0x16, 2, 0x57, 0x32, 77, 40, 2, 8, 0,
        ];
        let mut ip = vec![
            0x46, 0xc0, 0, 40, 0, 0, 0x40, 0, 1, 2, 0, 0, 10, 77, 40, 2, 224, 0, 0, 22, 0x94, 4, 0,
            0,
        ];
        let c = internet_checksum(&ip);
        ip[10..12].copy_from_slice(&c.to_be_bytes());
        let mut igmp = vec![0x22, 0, 0, 0, 0, 0, 0, 1, 4, 0, 0, 0, 239, 1, 2, 3];
        let c = internet_checksum(&igmp);
        igmp[2..4].copy_from_slice(&c.to_be_bytes());
        f.extend(ip);
        f.extend(igmp);
        let got = igmp_of(&Frame { at: 0, data: f }).expect("an IGMP frame");
        assert!(got.ip.router_alert && got.ip.header_ok && got.checksum_ok);
        assert_eq!(got.ip.ttl, 1);
        assert_eq!(
            got.msg,
            Igmp::ReportV3(vec![GroupRecord {
                kind: CHANGE_TO_EXCLUDE,
                group: Ipv4Addr::new(239, 1, 2, 3),
                sources: vec![]
            }])
        );
    }
}
