//! IPv4 reassembly for every datagram this node receives, unicast and multicast alike.
//!
//! Heads up! Before working on this file read RFC 791 §3.2 ("Fragmentation and reassembly": the
//! fields, the buffer identifier (source, destination, protocol, identification), the timer),
//! RFC 815 (the hole-descriptor algorithm used here), RFC 1122 §3.3.2 (the reassembly timeout,
//! "the remaining lifetime of the datagram or 60–120 s"; Linux uses 30 s), and RFC 5722 §4 /
//! Linux `ip_fragment.c` (overlapping fragments discard the datagram).
//!
//! Ingress runs this before anything reads a transport header (`pipeline`: the second stage,
//! after the link layer), so a port, flag or checksum is only ever read from a whole datagram.
//! smoltcp's own reassembly (one slot per interface) never sees a fragment.
//!
//! One slot per datagram being reassembled, keyed by (source, destination, protocol,
//! identification). A slot holds the first fragment's Ethernet and IP headers, ONE contiguous
//! payload buffer grown to the furthest octet received, and the RFC 815 hole list. Bounds
//! (docs/decisions.md, "A hostile LAN"):
//! - [`MEMORY_CAP`] octets held in all (kernel `ipfrag_high_thresh` 4 MiB), counting each
//!   slot's buffer capacity, holes and a fixed overhead. Past it, the oldest slot of the source
//!   holding most memory goes first, so one flooding source cannot push out others' datagrams.
//! - [`MAX_PER_SOURCE`] slots per source address (its own oldest goes for a new one) and
//!   [`MAX_SLOTS`] in all.
//! - [`TIMEOUT`] from a slot's first fragment (kernel `ipfrag_time` 30 s).
//! - [`MAX_HOLES`] holes per datagram (tiny fragments with gaps cannot grow the list).
//!
//! Cost per fragment: a hash lookup and a scan of its datagram's holes (at most [`MAX_HOLES`]);
//! the time-out scan runs only once the oldest slot may have expired; choosing a victim scans the
//! slots (at most [`MAX_SLOTS`]) and happens only when a bound is hit.
//!
//! Overlap policy: a fragment wholly inside octets already held is a duplicate and is dropped
//! (the first copy wins; nothing received is ever rewritten); a fragment that covers both held
//! and missing octets, a second last fragment that disagrees about the length, or data past
//! the length, discards the whole datagram, as Linux does for IPv4 since 4.19 (RFC 5722's rule).
//! A non-last fragment whose length is not a multiple of 8, an empty one, or one that would
//! make the datagram longer than 65,535 octets is dropped on its own.
//!
//! A completed datagram leaves as one Ethernet frame: the first fragment's headers (options
//! included), Total Length set, More Fragments and Fragment Offset cleared (Don't Fragment
//! kept), header checksum recomputed.

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use smoltcp::wire::{Ipv4Packet, ETHERNET_HEADER_LEN};

/// Octets all slots may hold together (kernel `ipfrag_high_thresh`).
pub(crate) const MEMORY_CAP: usize = 4 * 1024 * 1024;
/// How long a datagram may take to arrive whole (kernel `ipfrag_time`).
pub(crate) const TIMEOUT: Duration = Duration::from_secs(30);
/// Datagrams in reassembly from one source at most.
pub(crate) const MAX_PER_SOURCE: usize = 64;
/// Datagrams in reassembly at most.
pub(crate) const MAX_SLOTS: usize = 1024;
/// Holes one datagram may have.
pub(crate) const MAX_HOLES: usize = 64;
/// What a slot costs beyond its buffers (bookkeeping, charged against [`MEMORY_CAP`]).
const SLOT_OVERHEAD: usize = 256;
/// The largest IPv4 datagram.
const MAX_DATAGRAM: usize = 65_535;

type Key = (Ipv4Addr, Ipv4Addr, u8, u16);

/// What became of a fragment.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Held; the datagram is not whole yet.
    Held,
    /// The datagram is whole: one Ethernet frame.
    Complete(Vec<u8>),
    /// Dropped (malformed, duplicate, or its datagram discarded).
    Dropped,
}

#[derive(Debug)]
struct Slot {
    since: Instant,
    /// The first fragment's Ethernet and IP headers, once it arrived.
    header: Option<Vec<u8>>,
    /// Payload octets from offset 0.
    data: Vec<u8>,
    /// Missing ranges (RFC 815); the last ends at `u32::MAX` until the length is known.
    holes: Vec<(u32, u32)>,
    /// The payload's length, from the last fragment.
    total: Option<usize>,
    /// What the slot is charged against [`MEMORY_CAP`] (its `cost` when last counted).
    charged: usize,
}

impl Slot {
    fn cost(&self) -> usize {
        SLOT_OVERHEAD
            + self.header.as_ref().map_or(0, Vec::capacity)
            + self.data.capacity()
            + self.holes.capacity() * 8
    }
}

/// Counters of the reassembler.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ReassemblyStats {
    pub(crate) completed: u64,
    /// Fragments dropped on their own, and datagrams discarded (overlap, time-out, eviction).
    pub(crate) dropped: u64,
}

/// The reassembly slots (see the module docs).
#[derive(Debug, Default)]
pub(crate) struct Reassembler {
    slots: HashMap<Key, Slot>,
    /// Slots per source address.
    per_source: HashMap<Ipv4Addr, usize>,
    /// No slot times out before this (checked against the clock instead of scanning).
    next_expiry: Option<Instant>,
    held: usize,
    pub(crate) stats: ReassemblyStats,
}

impl Reassembler {
    /// Octets held in all slots.
    pub(crate) fn held_bytes(&self) -> usize {
        self.held
    }

    /// Datagrams in reassembly.
    pub(crate) fn slots(&self) -> usize {
        self.slots.len()
    }

    /// When the oldest slot times out (or a little earlier, after a completion).
    pub(crate) fn poll_at(&self) -> Option<Instant> {
        self.next_expiry
    }

    /// Drops datagrams older than [`TIMEOUT`]; scans only once the oldest may have expired.
    pub(crate) fn expire(&mut self, now: Instant) {
        if self.next_expiry.is_none_or(|t| now < t) {
            return;
        }
        let old: Vec<Key> = self
            .slots
            .iter()
            .filter(|(_, s)| now.saturating_duration_since(s.since) >= TIMEOUT)
            .map(|(k, _)| *k)
            .collect();
        for k in old {
            self.discard(&k);
        }
        self.next_expiry = self.slots.values().map(|s| s.since + TIMEOUT).min();
    }

    /// Takes a slot out, keeping the counts.
    fn take(&mut self, key: &Key) -> Option<Slot> {
        let s = self.slots.remove(key)?;
        self.held -= s.charged;
        if let Some(n) = self.per_source.get_mut(&key.0) {
            *n -= 1;
            if *n == 0 {
                self.per_source.remove(&key.0);
            }
        }
        Some(s)
    }

    fn discard(&mut self, key: &Key) {
        if self.take(key).is_some() {
            self.stats.dropped += 1;
        }
    }

    /// The oldest slot of `src`, or of the source holding most memory.
    fn victim(&self, src: Option<Ipv4Addr>) -> Option<Key> {
        let src = src.or_else(|| {
            let mut by_src: HashMap<Ipv4Addr, usize> = HashMap::new();
            for (k, s) in &self.slots {
                *by_src.entry(k.0).or_default() += s.cost();
            }
            by_src
                .into_iter()
                .max_by_key(|&(ip, n)| (n, ip))
                .map(|x| x.0)
        })?;
        self.slots
            .iter()
            .filter(|(k, _)| k.0 == src)
            .min_by_key(|(k, s)| (s.since, **k))
            .map(|(k, _)| *k)
    }

    /// Adds one fragment: `frame` is a whole Ethernet frame whose IPv4 datagram is a fragment
    /// (More Fragments set or a non-zero offset), header already checked.
    pub(crate) fn push(&mut self, now: Instant, frame: &[u8]) -> Outcome {
        let Some(ip) = frame
            .get(ETHERNET_HEADER_LEN..)
            .and_then(|b| Ipv4Packet::new_checked(b).ok())
        else {
            self.stats.dropped += 1;
            return Outcome::Dropped;
        };
        let (more, offset) = (ip.more_frags(), usize::from(ip.frag_offset()));
        let hl = usize::from(ip.header_len());
        let payload = ip.payload();
        let end = offset + payload.len();
        if payload.is_empty()
            || (more && !payload.len().is_multiple_of(8))
            || hl + end > MAX_DATAGRAM
        {
            self.stats.dropped += 1;
            return Outcome::Dropped;
        }
        let key: Key = (
            ip.src_addr(),
            ip.dst_addr(),
            u8::from(ip.next_header()),
            ip.ident(),
        );
        self.expire(now);
        if !self.slots.contains_key(&key) {
            let from_src = self.per_source.get(&key.0).copied().unwrap_or(0);
            if from_src >= MAX_PER_SOURCE {
                if let Some(k) = self.victim(Some(key.0)) {
                    self.discard(&k);
                }
            }
            if self.slots.len() >= MAX_SLOTS {
                if let Some(k) = self.victim(None) {
                    self.discard(&k);
                }
            }
            let slot = Slot {
                since: now,
                header: None,
                data: Vec::new(),
                holes: vec![(0, u32::MAX)],
                total: None,
                charged: 0,
            };
            self.slots.insert(key, slot);
            *self.per_source.entry(key.0).or_default() += 1;
            self.next_expiry.get_or_insert(now + TIMEOUT);
        }
        let Some(slot) = self.slots.get_mut(&key) else {
            return Outcome::Dropped;
        };
        let verdict = fill(slot, offset, end, more, payload);
        match verdict {
            Fill::Discard => {
                self.discard(&key);
                return Outcome::Dropped;
            }
            Fill::Duplicate => {
                self.stats.dropped += 1;
                return Outcome::Held;
            }
            Fill::Filled => {}
        }
        if offset == 0 {
            slot.header = Some(frame[..ETHERNET_HEADER_LEN + hl].to_vec());
        }
        let cost = slot.cost();
        self.held = self.held - slot.charged + cost;
        slot.charged = cost;
        if slot.holes.is_empty() && slot.header.is_some() {
            let Some(slot) = self.take(&key) else {
                return Outcome::Dropped;
            };
            self.stats.completed += 1;
            return Outcome::Complete(assemble(slot));
        }
        // Over the cap: the heaviest source's oldest datagrams go until it fits.
        while self.held > MEMORY_CAP {
            match self.victim(None) {
                Some(k) => self.discard(&k),
                None => break,
            }
        }
        if self.slots.contains_key(&key) {
            Outcome::Held
        } else {
            Outcome::Dropped
        }
    }
}

enum Fill {
    Filled,
    Duplicate,
    Discard,
}

/// Puts `payload` at `offset..end` into `slot` by the hole list (RFC 815 steps 1–8, with the
/// overlap policy of the module docs).
fn fill(slot: &mut Slot, offset: usize, end: usize, more: bool, payload: &[u8]) -> Fill {
    let (s, e) = (offset as u32, end as u32);
    if let Some(total) = slot.total {
        if end > total || (!more && end != total) {
            return Fill::Discard;
        }
    }
    let hit = slot.holes.iter().position(|&(hs, he)| hs <= s && e <= he);
    let Some(i) = hit else {
        // Not inside one hole: a duplicate if it touches no hole at all, else an overlap.
        let touches = slot.holes.iter().any(|&(hs, he)| s < he && hs < e);
        return if touches {
            Fill::Discard
        } else if !more && slot.total.is_none() {
            // A last fragment over held octets that says the datagram ends there.
            Fill::Discard
        } else {
            Fill::Duplicate
        };
    };
    let (hs, he) = slot.holes.remove(i);
    if hs < s {
        slot.holes.push((hs, s));
    }
    if e < he && more {
        slot.holes.push((e, he));
    }
    if !more {
        // The length is known: no hole (or data) may lie past it.
        if slot.data.len() > end || slot.holes.iter().any(|&(_, he)| he > e && he != u32::MAX) {
            return Fill::Discard;
        }
        slot.holes.retain(|&(hs, _)| hs < e);
        for h in &mut slot.holes {
            h.1 = h.1.min(e);
        }
        slot.total = Some(end);
    }
    if slot.holes.len() > MAX_HOLES {
        return Fill::Discard;
    }
    if slot.data.len() < end {
        slot.data.reserve_exact(end - slot.data.len());
        slot.data.resize(end, 0);
    }
    slot.data[offset..end].copy_from_slice(payload);
    Fill::Filled
}

/// The whole datagram as one Ethernet frame (see the module docs).
fn assemble(slot: Slot) -> Vec<u8> {
    let header = slot.header.unwrap_or_default();
    let mut frame = header;
    frame.extend_from_slice(&slot.data);
    let total = frame.len() - ETHERNET_HEADER_LEN;
    let mut ip = Ipv4Packet::new_unchecked(&mut frame[ETHERNET_HEADER_LEN..]);
    ip.set_total_len(total as u16);
    ip.set_more_frags(false);
    ip.set_frag_offset(0);
    ip.fill_checksum();
    frame
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::wire::Frame;
    use smoltcp::wire::IpProtocol;

    const SRC: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
    const DST: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);

    /// A UDP datagram of `len` payload octets, cut into fragments of `mtu` octets of payload.
    fn fragments(src: Ipv4Addr, id: u16, data: &[u8], size: usize) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        let mut at = 0;
        while at < data.len() {
            let n = size.min(data.len() - at);
            let more = at + n < data.len();
            let mut f = vec![0u8; 14 + 20 + n];
            f[..6].copy_from_slice(&[2, 0, 0, 0, 0, 2]);
            f[6..12].copy_from_slice(&[2, 0, 0, 0, 0, 1]);
            f[12..14].copy_from_slice(&[0x08, 0x00]);
            let mut ip = Ipv4Packet::new_unchecked(&mut f[14..]);
            ip.set_version(4);
            ip.set_header_len(20);
            ip.set_total_len((20 + n) as u16);
            ip.set_ident(id);
            ip.clear_flags();
            ip.set_more_frags(more);
            ip.set_frag_offset(at as u16);
            ip.set_hop_limit(64);
            ip.set_next_header(IpProtocol::Udp);
            ip.set_src_addr(src);
            ip.set_dst_addr(DST);
            ip.fill_checksum();
            f[34..].copy_from_slice(&data[at..at + n]);
            out.push(f);
            at += n;
        }
        out
    }

    fn data(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i % 251) as u8).collect()
    }

    #[test]
    fn any_order_makes_one_checked_datagram() {
        // RFC 791 §3.2: fragments may arrive in any order.
        let t = Instant::now();
        let d = data(3000);
        let mut frags = fragments(SRC, 7, &d, 1480);
        frags.reverse();
        let mut r = Reassembler::default();
        assert_eq!(r.push(t, &frags[0]), Outcome::Held);
        assert_eq!(r.push(t, &frags[1]), Outcome::Held);
        assert!(r.held_bytes() > 0);
        let Outcome::Complete(whole) = r.push(t, &frags[2]) else {
            panic!("whole")
        };
        let f = Frame::parse(&whole[..]);
        let ip = f.ipv4().unwrap();
        assert_eq!(usize::from(ip.total_len()), 3020);
        assert!(f.fragment().is_none());
        assert!(f.ipv4_checksum_ok());
        assert_eq!(ip.payload(), &d[..]);
        assert_eq!((r.slots(), r.held_bytes()), (0, 0));
    }

    #[test]
    fn one_lone_fragment_blocks_nothing() {
        // The old single slot: one never-completed fragment held up every other datagram.
        let t = Instant::now();
        let mut r = Reassembler::default();
        let lone = &fragments(Ipv4Addr::new(10, 0, 0, 66), 1, &data(16), 8)[0];
        assert_eq!(r.push(t, lone), Outcome::Held);
        for id in 0..10 {
            let frags = fragments(SRC, id, &data(2000), 1480);
            assert_eq!(r.push(t, &frags[0]), Outcome::Held);
            assert!(matches!(r.push(t, &frags[1]), Outcome::Complete(_)));
        }
        assert_eq!(r.slots(), 1);
    }

    #[test]
    fn duplicates_are_dropped_and_overlaps_discard_the_datagram() {
        let t = Instant::now();
        let d = data(3000);
        let frags = fragments(SRC, 9, &d, 1480);
        let mut r = Reassembler::default();
        assert_eq!(r.push(t, &frags[0]), Outcome::Held);
        // An exact duplicate: dropped, the datagram still completes with the first copy.
        let mut dup = frags[0].clone();
        dup[40] ^= 0xff;
        assert_eq!(r.push(t, &dup), Outcome::Held);
        assert_eq!(r.push(t, &frags[1]), Outcome::Held);
        let Outcome::Complete(whole) = r.push(t, &frags[2]) else {
            panic!()
        };
        assert_eq!(&whole[34..], &d[..], "nothing already held is rewritten");
        // A fragment straddling held and missing octets discards the datagram (Linux, RFC 5722).
        let frags = fragments(SRC, 10, &d, 1480);
        let straddle = fragments(SRC, 10, &d[..2000], 1000);
        assert_eq!(r.push(t, &frags[0]), Outcome::Held);
        assert_eq!(r.push(t, &straddle[1]), Outcome::Dropped);
        assert_eq!((r.slots(), r.held_bytes()), (0, 0));
        assert_eq!(
            r.push(t, &frags[1]),
            Outcome::Held,
            "a new slot, never completing"
        );
        // Two last fragments that disagree about the length.
        let short = fragments(SRC, 11, &d[..2000], 1480);
        let long = fragments(SRC, 11, &d, 1480);
        assert_eq!(r.push(t, &short[1]), Outcome::Held);
        assert_eq!(r.push(t, &long[2]), Outcome::Dropped);
    }

    #[test]
    fn bad_fragments_are_dropped_alone() {
        let t = Instant::now();
        let mut r = Reassembler::default();
        let mut odd = fragments(SRC, 1, &data(3000), 1481)[0].clone();
        assert_eq!(r.push(t, &odd), Outcome::Dropped, "middle fragment not ×8");
        odd.truncate(20);
        assert_eq!(r.push(t, &odd), Outcome::Dropped);
        // Past 65,535 octets.
        let mut far = fragments(SRC, 2, &data(16), 8)[1].clone();
        Ipv4Packet::new_unchecked(&mut far[14..]).set_frag_offset(65_528);
        assert_eq!(r.push(t, &far), Outcome::Dropped);
        // Empty.
        let mut empty = fragments(SRC, 3, &data(16), 8)[0].clone();
        empty.truncate(34);
        Ipv4Packet::new_unchecked(&mut empty[14..]).set_total_len(20);
        assert_eq!(r.push(t, &empty), Outcome::Dropped);
        assert_eq!(r.slots(), 0);
    }

    #[test]
    fn memory_stays_under_the_cap_and_slots_time_out() {
        // Kernel ipfrag_high_thresh 4 MiB, ipfrag_time 30 s. Each never-completed datagram
        // holds its first fragment and its last (64 KiB of buffer, the worst case).
        let t = Instant::now();
        let mut r = Reassembler::default();
        for i in 0..200u32 {
            let src = Ipv4Addr::from(u32::from(SRC) + i % 7);
            let frags = fragments(src, i as u16, &data(65_000), 1480);
            r.push(t, &frags[0]);
            r.push(t, frags.last().unwrap());
            assert!(r.held_bytes() <= MEMORY_CAP, "{}", r.held_bytes());
        }
        assert!(r.slots() >= 50, "{} slots", r.slots());
        assert!(r.slots() <= 7 * MAX_PER_SOURCE);
        // A datagram from another source still completes.
        let frags = fragments(Ipv4Addr::new(10, 9, 9, 9), 1, &data(4000), 1480);
        for f in &frags[..2] {
            assert_eq!(r.push(t, f), Outcome::Held);
        }
        assert!(matches!(r.push(t, &frags[2]), Outcome::Complete(_)));
        // All expire after ipfrag_time.
        assert_eq!(r.poll_at(), Some(t + TIMEOUT));
        r.expire(t + TIMEOUT - Duration::from_millis(1));
        assert!(r.slots() > 0);
        r.expire(t + TIMEOUT);
        assert_eq!((r.slots(), r.held_bytes()), (0, 0));
        assert!(r.per_source.is_empty());
        assert_eq!(r.poll_at(), None);
    }

    #[test]
    fn one_source_is_limited() {
        let t = Instant::now();
        let mut r = Reassembler::default();
        for id in 0..1000u16 {
            r.push(t, &fragments(SRC, id, &data(16), 8)[0]);
        }
        assert_eq!(r.slots(), MAX_PER_SOURCE);
        assert_eq!(r.per_source.get(&SRC), Some(&MAX_PER_SOURCE));
        // Tiny fragments with gaps cannot grow a hole list without bound.
        let d = data(8 * 400);
        let frags = fragments(DST, 1, &d, 8);
        for f in frags.iter().step_by(2) {
            r.push(t, f);
        }
        assert!(r.slots.values().all(|s| s.holes.len() <= MAX_HOLES));
    }

    proptest::proptest! {
        #[test]
        fn garbage_never_panics(
            bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200),
            offset in 0u16..8192,
            more in proptest::prelude::any::<bool>(),
        ) {
            let t = Instant::now();
            let mut r = Reassembler::default();
            let _ = r.push(t, &bytes);
            let mut f = fragments(SRC, 1, &data(64), 16)[1].clone();
            let mut ip = Ipv4Packet::new_unchecked(&mut f[14..]);
            ip.set_frag_offset(offset * 8);
            ip.set_more_frags(more);
            let _ = r.push(t, &f);
            let _ = r.push(t, &fragments(SRC, 1, &data(64), 16)[0]);
            proptest::prop_assert!(r.held_bytes() <= MEMORY_CAP);
        }
    }
}
