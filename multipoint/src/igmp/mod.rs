//! IGMP for hosts: the codec ([`wire`]), source filters ([`filter`]) and the host machine
//! ([`Host`], in `host.rs`).
//!
//! Heads up! Before working on this module read RFC 3376 (IGMPv3: §3 the service interface,
//! §4 messages, §5 host behaviour, §7 compatibility, §8 timers), RFC 2236 (IGMPv2: §2 messages,
//! §3 host behaviour, §4 v1 compatibility) and RFC 1112 (IGMPv1, Appendix I; §6.4 the
//! multicast MAC mapping). The host machine's module docs list every choice the RFCs leave
//! open.
//!
//! Sans-IO: nothing here reads a clock, opens a socket or draws entropy the caller did not seed.
//! The engine feeds received IGMP datagrams to [`Host::receive`], memberships to
//! [`Host::set_filter`], and sends what [`Host::poll`] returns, waking at [`Host::poll_at`].
//!
//! ```
//! use std::time::{Duration, Instant};
//! use ws2_multipoint::igmp::{wire, Host, HostConfig, Ipv4Addr, SourceFilter};
//!
//! let t0 = Instant::now(); // the engine's clock; the machine never reads one itself
//! let mut host = Host::new(HostConfig::default(), 42);
//! host.set_source(Ipv4Addr::new(192, 168, 1, 10));
//! let group = Ipv4Addr::new(239, 1, 2, 3);
//! assert_eq!(host.set_filter(t0, 7, group, SourceFilter::any_source()), Ok(true));
//! // The join report is due at once; send every datagram poll() returns.
//! assert_eq!(host.poll_at(), Some(t0));
//! let packet = host.poll(t0).unwrap();
//! let (ip, igmp) = wire::parse_ipv4(&packet).unwrap();
//! assert_eq!(ip.dst, wire::ALL_V3_ROUTERS);
//! assert!(matches!(wire::Message::parse(igmp), Ok(wire::Message::V3Report { .. })));
//! assert!(host.poll(t0).is_none());
//! // The repeat comes within the v3 Unsolicited Report Interval (1 s).
//! assert!(host.poll_at().unwrap() <= t0 + Duration::from_secs(1));
//! // Delivery: which sockets want a datagram from 10.0.0.5 to the group?
//! assert_eq!(host.members_accepting(group, Ipv4Addr::new(10, 0, 0, 5)).collect::<Vec<_>>(), [7]);
//! ```

pub mod filter;
mod host;
pub mod wire;

pub use filter::{FilterMode, SourceFilter};
pub use host::{Host, HostConfig, HostStats, JoinError, MemberId, Version};
pub use std::net::Ipv4Addr;

/// The Ethernet address a group maps to: 01:00:5e followed by the low 23 bits of the group
/// (RFC 1112 §6.4).
pub fn multicast_mac(group: Ipv4Addr) -> [u8; 6] {
    let o = group.octets();
    [0x01, 0x00, 0x5e, o[1] & 0x7f, o[2], o[3]]
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn mac_mapping() {
        assert_eq!(
            multicast_mac(Ipv4Addr::new(224, 0, 0, 1)),
            [1, 0, 0x5e, 0, 0, 1]
        );
        assert_eq!(
            multicast_mac(Ipv4Addr::new(239, 255, 1, 2)),
            [1, 0, 0x5e, 0x7f, 1, 2]
        );
        assert_eq!(
            multicast_mac(Ipv4Addr::new(224, 128, 1, 2)),
            [1, 0, 0x5e, 0, 1, 2]
        );
    }
}
