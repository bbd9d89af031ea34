//! The engine's link layer: IPv4 over Ethernet and ARP, with a bounded neighbour table.
//!
//! Heads up! Before working on this file read RFC 894 (IPv4 over Ethernet), RFC 826 (ARP),
//! RFC 1122 §2.3.2.1 (ARP cache validation: "prevent ARP flooding", at most one request per
//! second per destination) and §2.3.2.2 (queue at least one packet per unresolved destination),
//! RFC 1112 §6.4 (the 01:00:5e group address mapping) and RFC 5227 (conflicting senders).
//!
//! smoltcp runs on `Medium::Ip`; this layer turns its IPv4 packets into Ethernet frames and
//! answers ARP, because smoltcp 0.14's own ARP cannot stand a hostile LAN: its cache holds 8
//! entries, any request aimed at us fills it, and its request limit is one per second for the
//! whole interface, so one silent host starves every live one (issue 13).
//!
//! The model is Linux's neighbour table (`net/core/neighbour.c`, `ip-sysctl` `neigh/*`):
//! - **Bounded**: at most [`MAX_ENTRIES`] (kernel `gc_thresh3` 1024). A new entry evicts, in
//!   order, a FAILED one, the oldest STALE one, then the oldest INCOMPLETE one; a REACHABLE
//!   entry is never evicted to make room (if nothing else can go, the packet is dropped).
//! - **Ageing**: REACHABLE for [`REACHABLE_TIME`] after a reply (kernel `base_reachable_time`
//!   30 s), then STALE: still used, and its first use sends one ARP probe unicast to the known
//!   address (kernel DELAY/PROBE folded into one); a reply makes it REACHABLE again. An unused
//!   STALE entry goes after [`STALE_TIME`] (kernel `gc_stale_time` 60 s).
//! - **Requests aimed at us** create an entry only as STALE (kernel `neigh_event_ns`), the
//!   first kind evicted; they never change a REACHABLE entry's address. Unsolicited replies
//!   create nothing (kernel `arp_accept` 0).
//! - **Per destination**: an INCOMPLETE entry sends a request every [`RETRANS_TIME`] (kernel
//!   `retrans_time` 1 s), [`MAX_PROBES`] in all (kernel `mcast_solicit` 3), then is FAILED and
//!   its queue dropped. There is no interface-wide silence: each destination has its own timer.
//!   A packet for a FAILED destination starts a new resolution (as the kernel does), at most
//!   once per [`RETRANS_TIME`].
//! - **Queue**: packets awaiting resolution wait in their entry, at most [`QUEUE_BYTES`] per
//!   neighbour (kernel `unres_qlen_bytes` 212,992; here two default send buffers), the oldest
//!   dropped first; all queues
//!   together at most [`QUEUE_BYTES_TOTAL`]. Past [`SEND_HOLD`] waiting octets a datagram
//!   socket's send to that neighbour waits (`Engine::dgram_send`'s "no room"), so a fast
//!   sender is held back as it was when smoltcp kept unresolved datagrams in its buffers.
//!
//! Next hop: our own addresses and 127.0.0.0/8 get our own MAC (local delivery picks them up),
//! multicast the RFC 1112 mapping, broadcast (limited or directed) ff:ff:ff:ff:ff:ff, an on-link
//! address itself, anything else the gateway; with no gateway the packet is dropped.

use std::collections::{HashMap, VecDeque};
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use smoltcp::wire::{
    ArpOperation, ArpPacket, ArpRepr, EthernetAddress, EthernetFrame, EthernetProtocol,
    EthernetRepr, ETHERNET_HEADER_LEN,
};

use crate::config::Ipv4Cidr as Cidr;

/// Neighbour entries at most (kernel `gc_thresh3`).
pub(crate) const MAX_ENTRIES: usize = 1024;
/// How long a reply keeps an entry REACHABLE (kernel `base_reachable_time`).
pub(crate) const REACHABLE_TIME: Duration = Duration::from_secs(30);
/// How long an unused STALE or a FAILED entry is kept (kernel `gc_stale_time`).
pub(crate) const STALE_TIME: Duration = Duration::from_secs(60);
/// Time between requests for one destination (kernel `retrans_time`).
pub(crate) const RETRANS_TIME: Duration = Duration::from_secs(1);
/// Requests for one destination before it is FAILED (kernel `mcast_solicit`).
pub(crate) const MAX_PROBES: u8 = 3;
/// Unicast probes of a STALE entry in use before it is resolved afresh by broadcast (kernel
/// `ucast_solicit`).
pub(crate) const UCAST_PROBES: u8 = 3;
/// How long after a confirmation a reply may not move a REACHABLE entry to another address
/// (kernel `locktime`, 1 s).
pub(crate) const LOCKTIME: Duration = Duration::from_secs(1);
/// Bytes of packets one unresolved neighbour may hold (kernel `unres_qlen_bytes`, 212,992:
/// one socket's largest send buffer). Here two default UDP send buffers (256 KiB each): a
/// socket fills its buffer before the first pass starts ARP, and [`SEND_HOLD`] more may follow.
pub(crate) const QUEUE_BYTES: usize = 512 * 1024;
/// Bytes waiting for one unresolved neighbour past which a datagram socket's send to it waits
/// ("no room", as a full socket buffer), so a sender faster than ARP is held back instead of
/// losing datagrams beyond [`QUEUE_BYTES`] (smoltcp's own ARP held them in the socket buffer).
pub(crate) const SEND_HOLD: usize = 64 * 1024;
/// Bytes of packets all unresolved neighbours together may hold.
pub(crate) const QUEUE_BYTES_TOTAL: usize = 4 * 1024 * 1024;

/// Where an entry is in its life (kernel NUD states, DELAY and PROBE folded into STALE).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NudState {
    /// Requests sent, no reply yet.
    Incomplete,
    /// A reply confirmed the address less than [`REACHABLE_TIME`] ago.
    Reachable,
    /// An address not (recently) confirmed: still used.
    Stale,
    /// Nobody answered [`MAX_PROBES`] requests.
    Failed,
}

#[derive(Debug)]
struct Entry {
    state: NudState,
    mac: [u8; 6],
    /// Last change of state (ageing, eviction order).
    since: Instant,
    /// Last use by an egress packet.
    used: Instant,
    /// Requests sent in this resolution.
    probes: u8,
    /// When the next request (or the failure) is due, for INCOMPLETE; the earliest next unicast
    /// probe, for STALE.
    next: Instant,
    /// IPv4 packets (without an Ethernet header, but with room for one in front) waiting.
    queue: VecDeque<Vec<u8>>,
    queued: usize,
}

/// Counters of the link layer.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct NeighborStats {
    pub(crate) requests_sent: u64,
    pub(crate) replies_sent: u64,
    /// Packets dropped: queue full, destination FAILED, no route, or no room in the table.
    pub(crate) dropped: u64,
}

/// The neighbour table and the addresses it resolves for (see the module docs).
#[derive(Debug)]
pub(crate) struct Neighbors {
    mac: [u8; 6],
    addrs: Vec<Cidr>,
    gateway: Option<Ipv4Addr>,
    table: HashMap<Ipv4Addr, Entry>,
    queued: usize,
    /// The earliest `next` of an INCOMPLETE entry (a pass is due then).
    due: Option<Instant>,
    /// When aged entries are next looked for (no pass is scheduled for it).
    gc_at: Option<Instant>,
    pub(crate) stats: NeighborStats,
}

impl Neighbors {
    pub(crate) fn new(mac: [u8; 6], addrs: Vec<Cidr>, gateway: Option<Ipv4Addr>) -> Neighbors {
        Neighbors {
            mac,
            addrs,
            gateway,
            table: HashMap::new(),
            queued: 0,
            due: None,
            gc_at: None,
            stats: NeighborStats::default(),
        }
    }

    /// Entries in the table.
    pub(crate) fn len(&self) -> usize {
        self.table.len()
    }

    /// The state and address of `ip`'s entry.
    #[cfg(test)]
    pub(crate) fn lookup(&self, ip: Ipv4Addr) -> Option<(NudState, [u8; 6])> {
        self.table.get(&ip).map(|e| (e.state, e.mac))
    }

    /// Whether a datagram to `dst` may be handed to smoltcp now: not while its next hop is
    /// being resolved with [`SEND_HOLD`] octets already waiting.
    pub(crate) fn has_room(&self, dst: Ipv4Addr) -> bool {
        let Ok(hop) = self.next_hop(dst) else {
            return true;
        };
        self.table
            .get(&hop)
            .is_none_or(|e| e.state != NudState::Incomplete || e.queued < SEND_HOLD)
    }

    /// Octets of UDP packets from local port `port` waiting for resolution, Ethernet header
    /// room included. A shaped sender's credit check (`qos_dgram_room`) counts them: they have
    /// left its socket buffer but not yet reached the shaper (conformance 365–367).
    pub(crate) fn queued_from_udp_port(&self, port: u16) -> usize {
        if self.queued == 0 {
            return 0;
        }
        let from_port = |p: &Vec<u8>| {
            let ip = p.get(ETHERNET_HEADER_LEN..).unwrap_or_default();
            let ihl = usize::from(ip.first().copied().unwrap_or(0) & 0x0f) * 4;
            ip.get(9) == Some(&17)
                && ip
                    .get(ihl..ihl + 2)
                    .is_some_and(|b| u16::from_be_bytes([b[0], b[1]]) == port)
        };
        self.table
            .values()
            .flat_map(|e| e.queue.iter())
            .filter(|p| from_port(p))
            .map(Vec::len)
            .sum()
    }

    /// Bytes of packets waiting for resolution.
    pub(crate) fn queued_bytes(&self) -> usize {
        self.queued
    }

    fn is_own(&self, ip: Ipv4Addr) -> bool {
        ip.is_loopback() || self.addrs.iter().any(|c| c.addr == ip)
    }

    fn is_broadcast(&self, ip: Ipv4Addr) -> bool {
        ip.is_broadcast()
            || self
                .addrs
                .iter()
                .any(|c| c.prefix < 31 && c.broadcast() == ip)
    }

    /// The source address for an ARP request to `hop`.
    fn source_for(&self, hop: Ipv4Addr) -> Ipv4Addr {
        self.addrs
            .iter()
            .find(|c| c.contains(hop))
            .or(self.addrs.first())
            .map_or(Ipv4Addr::UNSPECIFIED, |c| c.addr)
    }

    /// The neighbour a packet to `dst` goes to, or the MAC it goes to without one.
    fn next_hop(&self, dst: Ipv4Addr) -> Result<Ipv4Addr, Option<[u8; 6]>> {
        if self.is_own(dst) {
            return Err(Some(self.mac));
        }
        if dst.is_multicast() {
            let o = dst.octets();
            return Err(Some([0x01, 0x00, 0x5e, o[1] & 0x7f, o[2], o[3]]));
        }
        if self.is_broadcast(dst) || dst.is_unspecified() {
            return Err(Some([0xff; 6]));
        }
        if self.addrs.iter().any(|c| c.contains(dst)) {
            return Ok(dst);
        }
        self.gateway.ok_or(None)
    }

    /// An IPv4 packet for the link. `buf` holds the packet after [`ETHERNET_HEADER_LEN`] octets
    /// of room. Returns the whole Ethernet frame when the next hop is known; otherwise the
    /// packet waits (or is dropped) and any ARP request due goes to `out`.
    pub(crate) fn egress(
        &mut self,
        now: Instant,
        mut buf: Vec<u8>,
        out: &mut impl FnMut(Vec<u8>),
    ) -> Option<Vec<u8>> {
        if buf.len() < ETHERNET_HEADER_LEN + 20 {
            self.stats.dropped += 1;
            return None;
        }
        let ip = &buf[ETHERNET_HEADER_LEN..];
        let dst = Ipv4Addr::new(ip[16], ip[17], ip[18], ip[19]);
        let hop = match self.next_hop(dst) {
            Err(Some(mac)) => {
                self.frame_for(&mut buf, mac);
                return Some(buf);
            }
            Err(None) => {
                self.stats.dropped += 1;
                return None;
            }
            Ok(hop) => hop,
        };
        if !self.table.contains_key(&hop) && !self.make_room(now, false) {
            self.stats.dropped += 1;
            return None;
        }
        let mac = self.mac;
        let source = self.source_for(hop);
        let e = self.table.entry(hop).or_insert_with(|| Entry {
            state: NudState::Failed,
            mac: [0; 6],
            since: now,
            used: now,
            probes: 0,
            next: now,
            queue: VecDeque::new(),
            queued: 0,
        });
        e.used = now;
        match e.state {
            NudState::Reachable | NudState::Stale => {
                if e.state == NudState::Reachable
                    && now.saturating_duration_since(e.since) >= REACHABLE_TIME
                {
                    e.state = NudState::Stale;
                    e.since = now;
                    e.next = now;
                }
                if e.state == NudState::Stale && now >= e.next {
                    if e.probes >= UCAST_PROBES {
                        // The known address stopped answering: resolve afresh by broadcast
                        // (kernel PROBE → FAILED → INCOMPLETE), this packet waiting.
                        self.resolve(now, hop, source, buf, out);
                        return None;
                    }
                    // One unicast probe per RETRANS_TIME while STALE is in use.
                    e.probes += 1;
                    e.next = now + RETRANS_TIME;
                    out(arp_frame(mac, ArpOperation::Request, source, e.mac, hop));
                    self.stats.requests_sent += 1;
                }
                let to = e.mac;
                self.frame_for(&mut buf, to);
                Some(buf)
            }
            NudState::Failed => {
                if e.probes > 0 && now < e.next {
                    // Failed less than RETRANS_TIME ago: no new resolution yet.
                    self.stats.dropped += 1;
                    return None;
                }
                self.resolve(now, hop, source, buf, out);
                None
            }
            NudState::Incomplete => {
                self.enqueue(hop, buf);
                None
            }
        }
    }

    /// Starts resolving `hop` afresh: INCOMPLETE, the first broadcast request now, `buf`
    /// waiting for the answer.
    fn resolve(
        &mut self,
        now: Instant,
        hop: Ipv4Addr,
        source: Ipv4Addr,
        buf: Vec<u8>,
        out: &mut impl FnMut(Vec<u8>),
    ) {
        let Some(e) = self.table.get_mut(&hop) else {
            return;
        };
        e.state = NudState::Incomplete;
        e.since = now;
        e.probes = 1;
        e.next = now + RETRANS_TIME;
        let next = e.next;
        out(arp_frame(
            self.mac,
            ArpOperation::Request,
            source,
            [0xff; 6],
            hop,
        ));
        self.stats.requests_sent += 1;
        self.due = Some(self.due.map_or(next, |d| d.min(next)));
        self.enqueue(hop, buf);
    }

    /// Queues a packet on `hop`'s INCOMPLETE entry, dropping the oldest beyond the bounds.
    fn enqueue(&mut self, hop: Ipv4Addr, buf: Vec<u8>) {
        let Some(e) = self.table.get_mut(&hop) else {
            return;
        };
        let n = buf.len();
        if n > QUEUE_BYTES {
            self.stats.dropped += 1;
            return;
        }
        e.queued += n;
        self.queued += n;
        e.queue.push_back(buf);
        while e.queued > QUEUE_BYTES {
            if let Some(old) = e.queue.pop_front() {
                e.queued -= old.len();
                self.queued -= old.len();
                self.stats.dropped += 1;
            }
        }
        while self.queued > QUEUE_BYTES_TOTAL {
            // The fullest queue loses its oldest packet.
            let Some(q) = self
                .table
                .values_mut()
                .filter(|e| !e.queue.is_empty())
                .max_by_key(|e| e.queued)
            else {
                break;
            };
            if let Some(old) = q.queue.pop_front() {
                q.queued -= old.len();
                self.queued -= old.len();
                self.stats.dropped += 1;
            }
        }
    }

    /// Makes room for one more entry; `stale_only`: only FAILED and STALE entries may go (for
    /// entries created by requests aimed at us). Returns whether there is room.
    fn make_room(&mut self, now: Instant, stale_only: bool) -> bool {
        if self.table.len() < MAX_ENTRIES {
            return true;
        }
        self.expire(now);
        if self.table.len() < MAX_ENTRIES {
            return true;
        }
        let rank = |s: NudState| match s {
            NudState::Failed => Some(0),
            NudState::Stale => Some(1),
            NudState::Incomplete if !stale_only => Some(2),
            _ => None,
        };
        let victim = self
            .table
            .iter()
            .filter_map(|(ip, e)| rank(e.state).map(|r| (r, e.since, *ip)))
            .min();
        match victim {
            Some((_, _, ip)) => {
                self.remove(ip);
                true
            }
            None => false,
        }
    }

    fn remove(&mut self, ip: Ipv4Addr) {
        if let Some(e) = self.table.remove(&ip) {
            self.queued -= e.queued;
            self.stats.dropped += e.queue.len() as u64;
        }
    }

    /// Drops aged entries: STALE and FAILED ones unused for [`STALE_TIME`].
    fn expire(&mut self, now: Instant) {
        let old: Vec<Ipv4Addr> = self
            .table
            .iter()
            .filter(|(_, e)| {
                matches!(e.state, NudState::Stale | NudState::Failed)
                    && now.saturating_duration_since(e.used.max(e.since)) >= STALE_TIME
            })
            .map(|(ip, _)| *ip)
            .collect();
        for ip in old {
            self.remove(ip);
        }
    }

    /// Forgets `ip` and starts resolving it again (`SIO_FIND_ROUTE`).
    pub(crate) fn refresh(&mut self, now: Instant, ip: Ipv4Addr, out: &mut impl FnMut(Vec<u8>)) {
        self.remove(ip);
        if !self.make_room(now, false) {
            return;
        }
        let source = self.source_for(ip);
        self.table.insert(
            ip,
            Entry {
                state: NudState::Incomplete,
                mac: [0; 6],
                since: now,
                used: now,
                probes: 1,
                next: now + RETRANS_TIME,
                queue: VecDeque::new(),
                queued: 0,
            },
        );
        out(arp_frame(
            self.mac,
            ArpOperation::Request,
            source,
            [0xff; 6],
            ip,
        ));
        self.stats.requests_sent += 1;
        self.due = Some(
            self.due
                .map_or(now + RETRANS_TIME, |d| d.min(now + RETRANS_TIME)),
        );
    }

    /// When [`Neighbors::poll`] next has something to do.
    pub(crate) fn poll_at(&self) -> Option<Instant> {
        self.due
    }

    /// Retransmits due requests, fails destinations that never answered, ages entries.
    pub(crate) fn poll(&mut self, now: Instant, out: &mut impl FnMut(Vec<u8>)) {
        if self.gc_at.is_none_or(|g| now >= g) {
            self.gc_at = Some(now + RETRANS_TIME);
            self.expire(now);
        }
        if self.due.is_none_or(|d| now < d) {
            return;
        }
        let mut due: Option<Instant> = None;
        let mut failed = Vec::new();
        for (ip, e) in &mut self.table {
            if e.state != NudState::Incomplete {
                continue;
            }
            if now >= e.next {
                if e.probes >= MAX_PROBES {
                    failed.push(*ip);
                    continue;
                }
                e.probes += 1;
                e.next = now + RETRANS_TIME;
                let source = self
                    .addrs
                    .iter()
                    .find(|c| c.contains(*ip))
                    .or(self.addrs.first())
                    .map_or(Ipv4Addr::UNSPECIFIED, |c| c.addr);
                out(arp_frame(
                    self.mac,
                    ArpOperation::Request,
                    source,
                    [0xff; 6],
                    *ip,
                ));
                self.stats.requests_sent += 1;
            }
            due = Some(due.map_or(e.next, |d| d.min(e.next)));
        }
        for ip in failed {
            if let Some(e) = self.table.get_mut(&ip) {
                e.state = NudState::Failed;
                e.since = now;
                // A new resolution may start RETRANS_TIME after the failure.
                e.next = now + RETRANS_TIME;
                self.queued -= e.queued;
                self.stats.dropped += e.queue.len() as u64;
                e.queue.clear();
                e.queued = 0;
            }
        }
        self.due = due;
    }

    /// An ARP packet from the link (the Ethernet payload). Answers requests for our addresses
    /// into `out` and releases packets that waited for the sender, as whole frames, into
    /// `out` as well.
    pub(crate) fn ingress_arp(
        &mut self,
        now: Instant,
        payload: &[u8],
        out: &mut impl FnMut(Vec<u8>),
    ) {
        let Ok(arp) = ArpPacket::new_checked(payload) else {
            return;
        };
        let Ok(ArpRepr::EthernetIpv4 {
            operation,
            source_hardware_addr: sha,
            source_protocol_addr: spa,
            target_protocol_addr: tpa,
            ..
        }) = ArpRepr::parse(&arp)
        else {
            return;
        };
        let sha = sha.0;
        let for_us = self.addrs.iter().any(|c| c.addr == tpa);
        // RFC 5227 §2.1.1: a probe (sender address 0.0.0.0) for one of our addresses is
        // answered, so the prober sees the address is taken; it teaches us nothing.
        if spa.is_unspecified() && for_us && operation == ArpOperation::Request {
            if sha[0] & 1 == 0 && sha != [0; 6] {
                out(arp_frame(self.mac, ArpOperation::Reply, tpa, sha, spa));
                self.stats.replies_sent += 1;
            }
            return;
        }
        // Senders that cannot be neighbours: ourselves (RFC 5227 conflict), no address, group or
        // broadcast addresses.
        if self.is_own(spa)
            || spa.is_unspecified()
            || spa.is_multicast()
            || self.is_broadcast(spa)
            || sha[0] & 1 == 1
            || sha == [0; 6]
            || sha == self.mac
        {
            return;
        }
        match operation {
            ArpOperation::Request if for_us => {
                out(arp_frame(self.mac, ArpOperation::Reply, tpa, sha, spa));
                self.stats.replies_sent += 1;
                self.learn(now, spa, sha, false, out);
            }
            // Replies count only when aimed at one of our addresses.
            ArpOperation::Reply if for_us => self.learn(now, spa, sha, true, out),
            // Requests for others, gratuitous ARP: an entry being resolved only, so nobody on
            // the LAN can fill the table or move a known neighbour with them.
            ArpOperation::Request
                if self
                    .table
                    .get(&spa)
                    .is_some_and(|e| e.state == NudState::Incomplete) =>
            {
                self.learn(now, spa, sha, false, out);
            }
            _ => {}
        }
    }

    /// Takes `sha` as `spa`'s address: `reply` confirms it (REACHABLE); a request only makes
    /// a STALE entry (never changing a REACHABLE one), and only for an existing entry or in
    /// room that evicts no live one.
    fn learn(
        &mut self,
        now: Instant,
        spa: Ipv4Addr,
        sha: [u8; 6],
        reply: bool,
        out: &mut impl FnMut(Vec<u8>),
    ) {
        if !self.table.contains_key(&spa) {
            if reply || !self.make_room(now, true) {
                // Unsolicited replies create nothing (kernel arp_accept 0).
                return;
            }
            self.table.insert(
                spa,
                Entry {
                    state: NudState::Stale,
                    mac: sha,
                    since: now,
                    used: now - Duration::ZERO,
                    probes: 0,
                    next: now,
                    queue: VecDeque::new(),
                    queued: 0,
                },
            );
            return;
        }
        let mac = self.mac;
        let Some(e) = self.table.get_mut(&spa) else {
            return;
        };
        match (reply, e.state) {
            (true, NudState::Reachable)
                if e.mac != sha && now.saturating_duration_since(e.since) < LOCKTIME =>
            {
                // A second answer with another address right after a confirmation: the
                // first one stands (kernel locktime).
                return;
            }
            (true, _) => {
                e.state = NudState::Reachable;
                e.mac = sha;
                e.since = now;
                e.probes = 0;
            }
            (false, NudState::Reachable) if e.mac == sha => {}
            (false, NudState::Reachable) => {
                // A request claiming another address for a confirmed neighbour: kept, as the
                // kernel keeps a REACHABLE address until it is no longer confirmed.
                return;
            }
            (false, _) => {
                e.state = NudState::Stale;
                e.mac = sha;
                e.since = now;
                e.next = now;
                e.probes = 0;
            }
        }
        let queue = std::mem::take(&mut e.queue);
        self.queued -= e.queued;
        e.queued = 0;
        let to = e.mac;
        for mut buf in queue {
            write_header(&mut buf, mac, to);
            out(buf);
        }
    }

    fn frame_for(&self, buf: &mut [u8], to: [u8; 6]) {
        write_header(buf, self.mac, to);
    }
}

/// Writes an IPv4 Ethernet header into the first [`ETHERNET_HEADER_LEN`] octets of `buf`.
fn write_header(buf: &mut [u8], from: [u8; 6], to: [u8; 6]) {
    let mut f = EthernetFrame::new_unchecked(buf);
    EthernetRepr {
        src_addr: EthernetAddress(from),
        dst_addr: EthernetAddress(to),
        ethertype: EthernetProtocol::Ipv4,
    }
    .emit(&mut f);
}

/// An ARP frame from `mac`/`spa` to `tha`/`tpa` (a request goes to broadcast unless `tha` is a
/// known address: a unicast probe).
pub(crate) fn arp_frame(
    mac: [u8; 6],
    operation: ArpOperation,
    spa: Ipv4Addr,
    tha: [u8; 6],
    tpa: Ipv4Addr,
) -> Vec<u8> {
    let arp = ArpRepr::EthernetIpv4 {
        operation,
        source_hardware_addr: EthernetAddress(mac),
        source_protocol_addr: spa,
        target_hardware_addr: EthernetAddress(if tha == [0xff; 6] { [0; 6] } else { tha }),
        target_protocol_addr: tpa,
    };
    let eth = EthernetRepr {
        src_addr: EthernetAddress(mac),
        dst_addr: EthernetAddress(tha),
        ethertype: EthernetProtocol::Arp,
    };
    let mut buf = vec![0u8; eth.buffer_len() + arp.buffer_len()];
    let mut frame = EthernetFrame::new_unchecked(&mut buf[..]);
    eth.emit(&mut frame);
    arp.emit(&mut ArpPacket::new_unchecked(frame.payload_mut()));
    buf
}

#[cfg(test)]
mod tests {
    use super::*;

    const ME: [u8; 6] = [2, 0, 0, 0, 0, 1];
    const PEER: [u8; 6] = [2, 0, 0, 0, 0, 2];
    const MY_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
    const PEER_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);

    fn table() -> Neighbors {
        Neighbors::new(
            ME,
            vec![Cidr {
                addr: MY_IP,
                prefix: 16,
            }],
            Some(Ipv4Addr::new(10, 0, 0, 254)),
        )
    }

    /// An IPv4 packet to `dst` with room for an Ethernet header.
    fn packet(dst: Ipv4Addr, len: usize) -> Vec<u8> {
        let mut b = vec![0u8; ETHERNET_HEADER_LEN + len.max(20)];
        b[14] = 0x45;
        b[30..34].copy_from_slice(&dst.octets());
        b
    }

    fn arp_of(frame: &[u8]) -> ArpRepr {
        let eth = EthernetFrame::new_checked(frame).unwrap();
        assert_eq!(eth.ethertype(), EthernetProtocol::Arp);
        ArpRepr::parse(&ArpPacket::new_checked(eth.payload()).unwrap()).unwrap()
    }

    fn reply_from(ip: Ipv4Addr, mac: [u8; 6]) -> Vec<u8> {
        let f = arp_frame(mac, ArpOperation::Reply, ip, ME, MY_IP);
        f[14..].to_vec()
    }

    fn request_from(ip: Ipv4Addr, mac: [u8; 6]) -> Vec<u8> {
        let f = arp_frame(mac, ArpOperation::Request, ip, [0xff; 6], MY_IP);
        f[14..].to_vec()
    }

    #[test]
    fn resolves_queues_and_releases() {
        // RFC 1122 §2.3.2.2: the packet that started resolution waits and leaves on the reply.
        let t = Instant::now();
        let mut n = table();
        let mut out = Vec::new();
        assert!(n
            .egress(t, packet(PEER_IP, 40), &mut |f| out.push(f))
            .is_none());
        assert_eq!(out.len(), 1, "one broadcast request");
        assert_eq!(&out[0][..6], &[0xff; 6]);
        assert!(
            matches!(arp_of(&out[0]), ArpRepr::EthernetIpv4 { target_protocol_addr, .. } if target_protocol_addr == PEER_IP)
        );
        assert!(n
            .egress(t, packet(PEER_IP, 40), &mut |f| out.push(f))
            .is_none());
        assert_eq!(out.len(), 1, "no second request while one is in flight");
        assert_eq!(n.queued_bytes(), 2 * 54);
        out.clear();
        n.ingress_arp(t, &reply_from(PEER_IP, PEER), &mut |f| out.push(f));
        assert_eq!(out.len(), 2, "both queued packets leave");
        assert!(out.iter().all(|f| f[..6] == PEER && f[6..12] == ME));
        assert_eq!(n.queued_bytes(), 0);
        assert_eq!(n.lookup(PEER_IP), Some((NudState::Reachable, PEER)));
        let f = n.egress(t, packet(PEER_IP, 40), &mut |_| panic!("no request"));
        assert_eq!(&f.unwrap()[..6], &PEER);
    }

    #[test]
    fn special_destinations_need_no_resolution() {
        let t = Instant::now();
        let mut n = table();
        let mut none = |_: Vec<u8>| panic!("no ARP");
        let to = |n: &mut Neighbors, ip: Ipv4Addr, none: &mut dyn FnMut(Vec<u8>)| {
            n.egress(t, packet(ip, 20), &mut |f| none(f))
                .map(|f| f[..6].to_vec())
        };
        assert_eq!(to(&mut n, MY_IP, &mut none), Some(ME.to_vec()));
        assert_eq!(
            to(&mut n, Ipv4Addr::LOCALHOST, &mut none),
            Some(ME.to_vec())
        );
        // RFC 1112 §6.4: the low 23 bits of the group.
        assert_eq!(
            to(&mut n, Ipv4Addr::new(239, 129, 2, 3), &mut none),
            Some(vec![1, 0, 0x5e, 1, 2, 3])
        );
        assert_eq!(
            to(&mut n, Ipv4Addr::BROADCAST, &mut none),
            Some(vec![0xff; 6])
        );
        assert_eq!(
            to(&mut n, Ipv4Addr::new(10, 0, 255, 255), &mut none),
            Some(vec![0xff; 6])
        );
        // Off-link: the gateway is resolved, not the destination.
        let mut out = Vec::new();
        n.egress(t, packet(Ipv4Addr::new(8, 8, 8, 8), 20), &mut |f| {
            out.push(f)
        });
        assert!(
            matches!(arp_of(&out[0]), ArpRepr::EthernetIpv4 { target_protocol_addr, .. } if target_protocol_addr == Ipv4Addr::new(10, 0, 0, 254))
        );
    }

    #[test]
    fn three_requests_a_second_apart_then_failed() {
        // Kernel retrans_time 1 s, mcast_solicit 3; RFC 1122 §2.3.2.1 one per second per host.
        let t = Instant::now();
        let mut n = table();
        let mut out = Vec::new();
        n.egress(t, packet(PEER_IP, 40), &mut |f| out.push(f));
        for ms in [10, 500, 999] {
            n.poll(t + Duration::from_millis(ms), &mut |f| out.push(f));
        }
        assert_eq!(out.len(), 1);
        n.poll(t + RETRANS_TIME, &mut |f| out.push(f));
        n.poll(t + 2 * RETRANS_TIME, &mut |f| out.push(f));
        assert_eq!(out.len(), 3);
        assert_eq!(n.lookup(PEER_IP).unwrap().0, NudState::Incomplete);
        n.poll(t + 3 * RETRANS_TIME, &mut |f| out.push(f));
        assert_eq!(out.len(), 3, "no fourth request");
        assert_eq!(n.lookup(PEER_IP).unwrap().0, NudState::Failed);
        assert_eq!(n.queued_bytes(), 0, "the queue went with the failure");
        assert_eq!(n.poll_at(), None);
        // A packet right after the failure is dropped; a second later it starts again.
        assert!(n
            .egress(t + 3 * RETRANS_TIME, packet(PEER_IP, 40), &mut |f| out
                .push(f))
            .is_none());
        assert_eq!(out.len(), 3);
        n.egress(t + 4 * RETRANS_TIME, packet(PEER_IP, 40), &mut |f| {
            out.push(f)
        });
        assert_eq!(out.len(), 4);
        assert_eq!(n.lookup(PEER_IP).unwrap().0, NudState::Incomplete);
    }

    #[test]
    fn silent_hosts_do_not_delay_a_live_one() {
        // Per-destination timers: a thousand silent hosts each get their own requests, and a
        // live peer's request goes out at once.
        let t = Instant::now();
        let mut n = table();
        let mut out = Vec::new();
        for i in 0..1000u32 {
            let ip = Ipv4Addr::from(u32::from(Ipv4Addr::new(10, 0, 10, 0)) + i);
            n.egress(t, packet(ip, 40), &mut |f| out.push(f));
        }
        assert_eq!(out.len(), 1000);
        out.clear();
        n.egress(t, packet(PEER_IP, 40), &mut |f| out.push(f));
        assert_eq!(out.len(), 1, "the live peer's request is not held back");
        n.ingress_arp(t, &reply_from(PEER_IP, PEER), &mut |_| {});
        assert!(n.len() <= MAX_ENTRIES);
    }

    #[test]
    fn requests_aimed_at_us_make_stale_entries_that_go_first() {
        let t = Instant::now();
        let mut n = table();
        let mut out = Vec::new();
        n.egress(t, packet(PEER_IP, 40), &mut |f| out.push(f));
        n.ingress_arp(t, &reply_from(PEER_IP, PEER), &mut |_| {});
        // A flood of requests from invented senders fills the table with STALE entries.
        for i in 0..(2 * MAX_ENTRIES as u32) {
            let ip = Ipv4Addr::from(u32::from(Ipv4Addr::new(10, 0, 20, 0)) + i);
            let mut replies = 0;
            n.ingress_arp(
                t,
                &request_from(ip, [2, 1, 0, 0, (i >> 8) as u8, i as u8]),
                &mut |_| replies += 1,
            );
            assert_eq!(replies, 1, "every request for us is answered");
        }
        assert_eq!(n.len(), MAX_ENTRIES);
        assert_eq!(n.lookup(PEER_IP), Some((NudState::Reachable, PEER)));
        // A forged request cannot move a confirmed neighbour.
        n.ingress_arp(t, &request_from(PEER_IP, [2, 9, 9, 9, 9, 9]), &mut |_| {});
        assert_eq!(n.lookup(PEER_IP), Some((NudState::Reachable, PEER)));
        // A new destination evicts a STALE entry.
        let other = Ipv4Addr::new(10, 0, 0, 3);
        n.egress(t, packet(other, 40), &mut |_| {});
        assert_eq!(n.lookup(other).unwrap().0, NudState::Incomplete);
        assert_eq!(n.len(), MAX_ENTRIES);
        // Unsolicited replies create nothing.
        n.ingress_arp(
            t,
            &reply_from(Ipv4Addr::new(10, 0, 99, 1), [2, 7, 7, 7, 7, 7]),
            &mut |_| {},
        );
        assert_eq!(n.lookup(Ipv4Addr::new(10, 0, 99, 1)), None);
    }

    #[test]
    fn reachable_ages_to_stale_and_is_probed_unicast() {
        let t = Instant::now();
        let mut n = table();
        n.egress(t, packet(PEER_IP, 40), &mut |_| {});
        n.ingress_arp(t, &reply_from(PEER_IP, PEER), &mut |_| {});
        let later = t + REACHABLE_TIME;
        let mut out = Vec::new();
        let f = n.egress(later, packet(PEER_IP, 40), &mut |f| out.push(f));
        assert_eq!(
            &f.unwrap()[..6],
            &PEER,
            "a STALE entry still carries traffic"
        );
        assert_eq!(out.len(), 1);
        assert_eq!(&out[0][..6], &PEER, "the probe is unicast");
        assert_eq!(n.lookup(PEER_IP).unwrap().0, NudState::Stale);
        n.egress(later, packet(PEER_IP, 40), &mut |f| out.push(f));
        assert_eq!(out.len(), 1, "one probe per second");
        n.ingress_arp(later, &reply_from(PEER_IP, PEER), &mut |_| {});
        assert_eq!(n.lookup(PEER_IP).unwrap().0, NudState::Reachable);
        // A known address that stops answering its unicast probes is resolved afresh by
        // broadcast (kernel ucast_solicit 3, then FAILED and INCOMPLETE again).
        let mut at = later + REACHABLE_TIME;
        let mut probes = Vec::new();
        for _ in 0..UCAST_PROBES {
            assert!(n
                .egress(at, packet(PEER_IP, 40), &mut |f| probes.push(f))
                .is_some());
            at += RETRANS_TIME;
        }
        assert!(probes.iter().all(|f| f[..6] == PEER));
        assert!(n
            .egress(at, packet(PEER_IP, 40), &mut |f| probes.push(f))
            .is_none());
        assert_eq!(&probes.last().unwrap()[..6], &[0xff; 6]);
        assert_eq!(n.lookup(PEER_IP).unwrap().0, NudState::Incomplete);
        // A reply to someone else is not taken.
        let mut other = arp_frame(
            PEER,
            ArpOperation::Reply,
            PEER_IP,
            ME,
            Ipv4Addr::new(10, 0, 0, 5),
        );
        n.ingress_arp(at, &other.split_off(14), &mut |_| {});
        assert_eq!(n.lookup(PEER_IP).unwrap().0, NudState::Incomplete);
        // Unused STALE entries go after STALE_TIME.
        n.ingress_arp(
            t,
            &request_from(Ipv4Addr::new(10, 0, 0, 9), [2, 3, 3, 3, 3, 3]),
            &mut |_| {},
        );
        n.egress(t, packet(Ipv4Addr::new(10, 0, 0, 10), 40), &mut |_| {});
        for s in 1..=4 {
            n.poll(t + s * RETRANS_TIME, &mut |_| {});
        }
        assert_eq!(
            n.lookup(Ipv4Addr::new(10, 0, 0, 10)).unwrap().0,
            NudState::Failed
        );
        n.poll(t + 4 * STALE_TIME, &mut |_| {});
        assert_eq!(n.lookup(Ipv4Addr::new(10, 0, 0, 9)), None);
        assert_eq!(n.lookup(Ipv4Addr::new(10, 0, 0, 10)), None);
    }

    /// Packets held for ARP are counted per UDP source port (a shaped sender's credit).
    #[test]
    fn held_udp_packets_are_counted_by_source_port() {
        let t = Instant::now();
        let mut n = table();
        assert_eq!(n.queued_from_udp_port(5000), 0);
        let mut p = packet(PEER_IP, 1000);
        p[ETHERNET_HEADER_LEN + 9] = 17;
        p[ETHERNET_HEADER_LEN + 20..ETHERNET_HEADER_LEN + 22]
            .copy_from_slice(&5000u16.to_be_bytes());
        let len = p.len();
        assert!(n.egress(t, p, &mut |_| {}).is_none(), "held for ARP");
        assert_eq!(n.queued_from_udp_port(5000), len);
        assert_eq!(n.queued_from_udp_port(5001), 0);
    }

    #[test]
    fn the_queue_is_bounded() {
        let t = Instant::now();
        let mut n = table();
        for _ in 0..400 {
            n.egress(t, packet(PEER_IP, 1500), &mut |_| {});
        }
        assert!(n.queued_bytes() <= QUEUE_BYTES);
        assert!(n.stats.dropped > 0, "the oldest went");
        assert!(!n.has_room(PEER_IP), "a sender to PEER_IP waits");
        assert!(n.has_room(Ipv4Addr::new(10, 0, 0, 3)));
        for i in 0..400u32 {
            let ip = Ipv4Addr::from(u32::from(Ipv4Addr::new(10, 0, 30, 0)) + i);
            for _ in 0..10 {
                n.egress(t, packet(ip, 1500), &mut |_| {});
            }
        }
        assert!(n.queued_bytes() <= QUEUE_BYTES_TOTAL);
        assert!(
            n.queued_bytes() > QUEUE_BYTES_TOTAL - 2000,
            "the total cap was reached"
        );
    }

    #[test]
    fn bad_arp_never_panics_and_our_own_address_is_refused() {
        let t = Instant::now();
        let mut n = table();
        for len in 0..40 {
            n.ingress_arp(t, &vec![0xab; len], &mut |_| {});
        }
        n.ingress_arp(t, &request_from(MY_IP, PEER), &mut |_| {
            panic!("conflict: no reply")
        });
        n.ingress_arp(
            t,
            &request_from(Ipv4Addr::BROADCAST, PEER),
            &mut |_| panic!(),
        );
        assert_eq!(n.len(), 0);
        assert!(n.egress(t, vec![0; 20], &mut |_| {}).is_none());
    }
}
