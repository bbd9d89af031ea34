//! The frame pipeline: the stages every frame passes between the link and smoltcp, in order.
//!
//! Read first: DESIGN.md "The frame pipeline". Each frame is parsed once into a [`Frame`] (the
//! engine's one IPv4 reader, `wire`) where it enters the engine, and that view is handed to each stage of a declared, ordered list; a stage passes the
//! frame on ([`Step::Continue`]) or takes it ([`Step::Consumed`]). The lists are `Engine::INGRESS`
//! and `Engine::EGRESS`, next to `Engine::ingress` and `Engine::flush` which run them.
//!
//! **Ingress** — a frame from the link (or one of smoltcp's own, delivered locally):
//! 1. [`IngressStage::Link`]: ARP is answered and learnt from (`neighbor`); frames for another
//!    MAC address, of another EtherType, or whose IPv4 header does not check are dropped.
//! 2. [`IngressStage::Reassembly`]: a fragment joins its datagram (`reassembly`); the whole
//!    datagram goes on as one frame, so no later stage reads a transport header from a part.
//! 3. [`IngressStage::Multicast`]: IGMP goes to the host machine, multicast UDP to the member
//!    sockets (`multicast`); both are consumed, smoltcp never sees them.
//! 4. [`IngressStage::Observe`]: what smoltcp does not report — a TCP segment's RST, ACK and
//!    window, an ICMP port unreachable (`frames`) — once validated (`tcp::validate`): a RST or
//!    SYN refused by RFC 5961, or a SYN a flooded listen pool has no room for, is consumed.
//! 5. [`IngressStage::Urgent`]: initial sequence numbers, urgent pointers and urgent bytes
//!    (`urgent`).
//! 6. [`IngressStage::Circular`]: room in circular UDP receive queues (`udp`).
//!
//! What passes every stage goes into smoltcp's receive queue (smoltcp runs on `Medium::Ip`:
//! the device hands it the packet without its Ethernet header). A frame shorter than an Ethernet
//! header is counted (`rx_malformed`) and dropped before the first stage.
//!
//! **Egress** — a frame smoltcp (or the engine's own multicast and ARP code) emitted; smoltcp's
//! IPv4 packets got their next hop's Ethernet header in the device (`neighbor`), or wait there
//! for ARP:
//! 1. [`EgressStage::Urgent`]: URG and the urgent pointer written on segments of connections
//!    with urgent data in flight (`urgent`).
//! 2. [`EgressStage::Local`]: a frame for this node itself enters the ingress pipeline instead
//!    of the link (local delivery, `frames::is_local`).
//! 3. [`EgressStage::Shaper`]: a frame of a shaped socket waits in the QoS shaper (`qos`).
//!
//! What passes every stage goes to the link. Frames the shaper holds leave through
//! `Engine::qos_release`, which writes their class's DSCP into the IPv4 header (and fixes its
//! checksum) on the way out: the DSCP stage, the last before the link.

use super::wire::Frame;

/// What a stage did with a frame.
#[derive(Debug)]
pub(crate) enum Step {
    /// Hand it to the next stage.
    Continue(Frame),
    /// The stage took it: queued, delivered or dropped.
    Consumed,
}

/// A stage of the ingress pipeline (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum IngressStage {
    /// ARP, and the Ethernet filter smoltcp's `Medium::Ethernet` applied (`Engine::link_ingress`).
    Link,
    /// IPv4 reassembly (`Engine::reassemble`).
    Reassembly,
    /// IGMP and multicast UDP, taken here (`Engine::mcast_ingress`).
    Multicast,
    /// RST, ACK progress and ICMP port unreachable (`Engine::observe`).
    Observe,
    /// TCP urgent data (`Engine::urg_ingress`).
    Urgent,
    /// `SIO_ENABLE_CIRCULAR_QUEUEING` (`Engine::udp_circular_ingress`).
    Circular,
}

/// A stage of the egress pipeline (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EgressStage {
    /// The urgent pointer (`Engine::urg_egress`).
    Urgent,
    /// Frames for this node go back in (`frames::is_local`).
    Local,
    /// Frames of shaped sockets wait (`Engine::qos_egress`).
    Shaper,
}
