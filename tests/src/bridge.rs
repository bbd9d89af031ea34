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
//!   [`QuerierLan::capture`] runs `tcpdump` ([`Capture`]) on an interface of namespace A
//!   (usually the stack's TAP) and [`crate::wire::igmp_of`] reads the IGMP messages in what it
//!   captured.
//!
//! Network safety: every address and route goes into the test's namespaces (`ip -n`); the root
//! namespace gets nothing. IPv6 is switched off inside the namespaces so that captures hold only
//! the traffic under test. Dropping the [`QuerierLan`] stops the stack and deletes all three
//! namespaces, also when the test panics.

use std::io;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::thread;
use std::time::{Duration, Instant};

use ws2_stack::{Ipv4Cidr, Stack, StackConfig};

use crate::capture::Capture;
use crate::netns::{Netns, TAP_NAME};

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

/// Runs `ip args…` in `ns`, failing with its stderr on a non-zero exit ([`Netns::run`]).
fn ip_in<S: AsRef<str>>(ns: &Netns, args: &[S]) -> io::Result<()> {
    let mut cmd = vec!["ip"];
    cmd.extend(args.iter().map(AsRef::as_ref));
    ns.run(&cmd).map(drop)
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

#[cfg(test)]
mod test {
    use super::*;

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
}
