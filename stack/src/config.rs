//! Static configuration of one stack: MAC, addresses, gateway, MTU, limits.

use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;
use std::time::Duration;

/// An IPv4 address with its prefix length, written `A.B.C.D/P`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ipv4Cidr {
    /// The interface address.
    pub addr: Ipv4Addr,
    /// The prefix length, 0..=32.
    pub prefix: u8,
}

impl Ipv4Cidr {
    /// `addr/prefix`; `None` if the prefix is over 32.
    pub fn new(addr: Ipv4Addr, prefix: u8) -> Option<Ipv4Cidr> {
        (prefix <= 32).then_some(Ipv4Cidr { addr, prefix })
    }

    /// The network mask as an address.
    pub fn netmask(&self) -> Ipv4Addr {
        let bits = if self.prefix == 0 {
            0
        } else {
            u32::MAX << (32 - u32::from(self.prefix))
        };
        Ipv4Addr::from(bits)
    }

    /// Whether `ip` lies in this network.
    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        let mask = u32::from(self.netmask());
        u32::from(ip) & mask == u32::from(self.addr) & mask
    }

    /// The directed broadcast address of this network.
    pub fn broadcast(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.addr) | !u32::from(self.netmask()))
    }
}

impl fmt::Display for Ipv4Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// Why a configuration value did not parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError(pub String);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

impl FromStr for Ipv4Cidr {
    type Err = ConfigError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || {
            ConfigError(format!(
                "{s:?} is not an IPv4 address with prefix (A.B.C.D/P)"
            ))
        };
        let (addr, prefix) = s.split_once('/').ok_or_else(bad)?;
        let addr: Ipv4Addr = addr.parse().map_err(|_| bad())?;
        let prefix: u8 = prefix.parse().map_err(|_| bad())?;
        if addr.is_unspecified() || addr.is_multicast() || addr.is_broadcast() {
            return Err(ConfigError(format!(
                "{addr} cannot be an interface address"
            )));
        }
        Ipv4Cidr::new(addr, prefix).ok_or_else(bad)
    }
}

/// Everything a [`Stack`](crate::Stack) needs besides its link.
#[derive(Debug, Clone)]
pub struct StackConfig {
    /// The Ethernet address; `None` derives a locally administered one from the first address.
    pub mac: Option<[u8; 6]>,
    /// Interface addresses (at least one). `127.0.0.1/8` is always added for local delivery.
    pub addrs: Vec<Ipv4Cidr>,
    /// Default gateway, if any.
    pub gateway: Option<Ipv4Addr>,
    /// IP MTU of the link.
    pub mtu: usize,
    /// Most sockets open at once (`WSAEMFILE` past it).
    pub max_sockets: usize,
    /// Largest listen backlog; `SOMAXCONN` and larger values are clamped to it (D-25).
    pub max_backlog: usize,
    /// Default `SO_RCVBUF` and `SO_SNDBUF` for TCP, bytes. 65,535 keeps TCP window scaling
    /// off: with a scaled window smoltcp's receiver rounds its right edge down by up to
    /// 2^scale − 1 bytes, the sender may then send past the shrunken edge, and at a zero window
    /// the receiver drops the sender's ACKs as out of window — a stall of seconds (see
    /// docs/decisions.md). Larger buffers still work and scale the window.
    pub tcp_buffer: usize,
    /// How long a TCP connect may wait for an answer before `WSAETIMEDOUT`.
    pub connect_timeout: Duration,
    /// Idle time before TCP keep-alive probes when `SO_KEEPALIVE` is on (RFC 1122 §4.2.3.6:
    /// no less than two hours by default).
    pub keepalive_time: Duration,
    /// Tail-loss probe timeout: a connection whose acknowledgments stall this long with data in
    /// flight gets a fast retransmission instead of waiting for the one-second RTO (see
    /// docs/decisions.md). `None` leaves loss recovery to smoltcp alone.
    pub tail_probe: Option<Duration>,
    /// Ephemeral port range for port-0 binds (D-23: 1024–5000).
    pub ephemeral_ports: (u16, u16),
    /// Bandwidth, in bytes/s, that QoS requests other than best effort may reserve on the link
    /// (D-14); default 75% of a gigabit.
    pub qos_capacity: u64,
    /// Whether the provider offers QoS at all; without it the QoS ioctls fail `WSAENOPROTOOPT`
    /// (CHECKLIST 379). On by default.
    pub qos_support: bool,
    /// The link's nominal rate in bytes/s, if the shaper should pace all shaped frames to it
    /// (so priorities act even when the link itself never pushes back); `None`: no pacing.
    pub link_rate: Option<u64>,
    /// IGMP version to speak (1, 2 or 3), like Linux's `force_igmp_version`; `None` (the
    /// default) starts with IGMPv3 and follows older queriers (RFC 3376 §7.2.1).
    pub igmp_version: Option<u8>,
    /// The seed of all the node's randomness (ephemeral ports, TCP initial sequence numbers,
    /// IGMP delays). `None` (the default) draws one when the stack starts; `Stack::seed`
    /// reports it, so a run can be replayed.
    pub seed: Option<u64>,
    /// How long the graceful end may take when the last handle of a stack is dropped (shaped
    /// datagrams leaving at their rate, IGMP leaves, TCP closes); `Stack::shutdown` takes its
    /// own. Default 2 s (what a dropped stack gave its TCP closes before there was a graceful end).
    pub drain_timeout: Duration,
}

impl StackConfig {
    /// A configuration with one address and the defaults for everything else.
    pub fn new(addr: Ipv4Cidr) -> StackConfig {
        StackConfig {
            mac: None,
            addrs: vec![addr],
            gateway: None,
            mtu: 1500,
            max_sockets: 16_384,
            max_backlog: 256,
            tcp_buffer: 65_535,
            connect_timeout: Duration::from_secs(20),
            keepalive_time: Duration::from_secs(7200),
            tail_probe: Some(Duration::from_millis(5)),
            ephemeral_ports: (1024, 5000),
            qos_capacity: ws2_qos::admission::VIRTUAL_SWITCH_CAPACITY,
            link_rate: None,
            qos_support: true,
            igmp_version: None,
            seed: None,
            drain_timeout: Duration::from_secs(2),
        }
    }

    /// The configured MAC, or `02:57:32:` followed by the low three bytes of the first address.
    pub fn hardware_addr(&self) -> [u8; 6] {
        self.mac.unwrap_or_else(|| {
            let ip = self
                .addrs
                .first()
                .map(|c| c.addr.octets())
                .unwrap_or([0; 4]);
            [0x02, 0x57, 0x32, ip[1], ip[2], ip[3]]
        })
    }
}

/// Parses `aa:bb:cc:dd:ee:ff`.
pub fn parse_mac(s: &str) -> Result<[u8; 6], ConfigError> {
    let bad = || ConfigError(format!("{s:?} is not a MAC address (aa:bb:cc:dd:ee:ff)"));
    let mut out = [0u8; 6];
    let mut parts = s.split(':');
    for byte in &mut out {
        *byte = u8::from_str_radix(parts.next().ok_or_else(bad)?, 16).map_err(|_| bad())?;
    }
    if parts.next().is_some() {
        return Err(bad());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidr_parses_and_rejects() {
        let c: Ipv4Cidr = "10.0.0.2/24".parse().unwrap();
        assert_eq!(c.netmask(), Ipv4Addr::new(255, 255, 255, 0));
        assert_eq!(c.broadcast(), Ipv4Addr::new(10, 0, 0, 255));
        assert!(c.contains(Ipv4Addr::new(10, 0, 0, 77)));
        assert!(!c.contains(Ipv4Addr::new(10, 0, 1, 1)));
        for bad in [
            "10.0.0.2",
            "10.0.0.2/33",
            "x/24",
            "0.0.0.0/8",
            "224.0.0.1/4",
            "10.0.0.2/",
        ] {
            assert!(bad.parse::<Ipv4Cidr>().is_err(), "{bad}");
        }
    }

    #[test]
    fn mac_parses() {
        assert_eq!(parse_mac("02:00:00:00:00:0a").unwrap(), [2, 0, 0, 0, 0, 10]);
        assert!(parse_mac("02:00:00:00:00").is_err());
        assert!(parse_mac("02:00:00:00:00:00:01").is_err());
        assert!(parse_mac("zz:00:00:00:00:00").is_err());
    }
}
