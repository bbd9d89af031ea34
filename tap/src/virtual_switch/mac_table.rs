//! [`MacTable`]: a learning switch's forwarding database, `source MAC -> port`, with ageing and
//! a size cap, as IEEE 802.1D-2004 §7.9 (filtering database) and §7.9.2 (dynamic entries aged
//! out after the Ageing Time, recommended 300 s) describe it and the Linux bridge implements it
//! (`ageing_time` 300 s).
//!
//! The cap is what 802.1D leaves to the implementation: a full table learns no new source (the
//! frame is still forwarded; frames *to* that MAC are flooded, as to any unknown destination),
//! while MACs already in it keep being refreshed and may move ports. So a flood of forged
//! source MACs costs at most [`MAX_ENTRIES`] entries, and a pair learned before the flood keeps
//! its unicast path; a pair learned after it still talks, by flooding.
//!
//! Time is whatever `now` the caller passes (the switch's senders give theirs, so a
//! `VirtualSwitch` ages on virtual time).

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// A MAC address.
pub(crate) type Mac = [u8; 6];

/// How long an entry lives without a frame from its MAC: the Linux bridge's default
/// `ageing_time` and 802.1D's recommended Ageing Time.
pub(crate) const AGEING_TIME: Duration = Duration::from_secs(300);

/// Most entries a table holds. Hardware switches hold 8K–32K; the Linux bridge has no default
/// cap (`IFLA_BR_FDB_MAX_LEARNED`, 0 = unlimited). 4096 MACs are far more than any LAN this
/// project simulates and cost well under 1 MiB.
pub(crate) const MAX_ENTRIES: usize = 4096;

/// How often, in the caller's time, expired entries are swept out (an expired entry is also
/// ignored, and removed, when it is looked up).
const SWEEP_EVERY: Duration = Duration::from_secs(1);

#[derive(Debug)]
struct Entry<K> {
    port: K,
    seen: Instant,
}

/// `source MAC -> port`, aged and capped (see the module documentation).
#[derive(Debug)]
pub(crate) struct MacTable<K> {
    entries: HashMap<Mac, Entry<K>>,
    max_entries: usize,
    ageing: Duration,
    next_sweep: Option<Instant>,
    /// Sources not learned because the table was full.
    pub(crate) not_learned: u64,
}

impl<K: Clone + PartialEq> MacTable<K> {
    /// An empty table with the default cap and ageing time.
    pub(crate) fn new() -> MacTable<K> {
        MacTable::with_limits(MAX_ENTRIES, AGEING_TIME)
    }

    /// An empty table holding at most `max_entries`, each for `ageing` since last seen.
    pub(crate) fn with_limits(max_entries: usize, ageing: Duration) -> MacTable<K> {
        MacTable {
            entries: HashMap::new(),
            max_entries,
            ageing,
            next_sweep: None,
            not_learned: 0,
        }
    }

    fn expired(&self, seen: Instant, now: Instant) -> bool {
        now.checked_duration_since(seen)
            .is_some_and(|age| age >= self.ageing)
    }

    /// Removes expired entries, at most once per [`SWEEP_EVERY`] of `now`.
    fn sweep(&mut self, now: Instant) {
        if self.next_sweep.is_some_and(|t| now < t) {
            return;
        }
        self.next_sweep = now.checked_add(SWEEP_EVERY);
        let ageing = self.ageing;
        self.entries.retain(|_, e| {
            now.checked_duration_since(e.seen)
                .is_none_or(|age| age < ageing)
        });
    }

    /// Learns (or refreshes) `mac` on `port`, seen at `now`. Ignores multicast sources. A new
    /// MAC is not learned when the table is full of live entries; counted in `not_learned`.
    pub(crate) fn learn(&mut self, mac: Mac, port: &K, now: Instant) {
        if mac[0] & 1 != 0 {
            return;
        }
        self.sweep(now);
        if let Some(e) = self.entries.get_mut(&mac) {
            if e.port != *port {
                e.port = port.clone();
            }
            e.seen = e.seen.max(now);
            return;
        }
        if self.entries.len() >= self.max_entries {
            // Expired entries may linger until the next sweep; force one before refusing.
            self.next_sweep = None;
            self.sweep(now);
            if self.entries.len() >= self.max_entries {
                self.not_learned += 1;
                return;
            }
        }
        self.entries.insert(
            mac,
            Entry {
                port: port.clone(),
                seen: now,
            },
        );
    }

    /// The port `mac` was learned on, if it was and has not aged out by `now`. Multicast and
    /// broadcast destinations are never learned.
    pub(crate) fn lookup(&mut self, mac: &Mac, now: Instant) -> Option<K> {
        if mac[0] & 1 != 0 {
            return None;
        }
        let seen = self.entries.get(mac)?.seen;
        if self.expired(seen, now) {
            self.entries.remove(mac);
            return None;
        }
        self.entries.get(mac).map(|e| e.port.clone())
    }

    /// Forgets every MAC learned on `port`.
    pub(crate) fn forget_port(&mut self, port: &K) {
        self.entries.retain(|_, e| e.port != *port);
    }

    /// How many entries are held (expired ones not yet swept included).
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// How many entries the table has room for without reallocating; never far above the cap.
    pub(crate) fn capacity(&self) -> usize {
        self.entries.capacity()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mac(n: u32) -> Mac {
        let b = n.to_be_bytes();
        [2, 0, b[0], b[1], b[2], b[3]]
    }

    /// 802.1D §7.9.2: a dynamic entry is removed after the Ageing Time without frames from it.
    #[test]
    fn entry_ages_out_after_300_s() {
        let mut t: MacTable<usize> = MacTable::new();
        let t0 = Instant::now();
        t.learn(mac(1), &3, t0);
        assert_eq!(t.lookup(&mac(1), t0 + Duration::from_secs(299)), Some(3));
        assert_eq!(t.lookup(&mac(1), t0 + Duration::from_secs(300)), None);
        assert_eq!(t.len(), 0);
    }

    #[test]
    fn a_frame_refreshes_its_entry() {
        let mut t: MacTable<usize> = MacTable::new();
        let t0 = Instant::now();
        t.learn(mac(1), &3, t0);
        t.learn(mac(1), &3, t0 + Duration::from_secs(200));
        assert_eq!(t.lookup(&mac(1), t0 + Duration::from_secs(450)), Some(3));
        assert_eq!(t.lookup(&mac(1), t0 + Duration::from_secs(500)), None);
    }

    #[test]
    fn a_mac_moves_to_the_port_it_is_seen_on() {
        let mut t: MacTable<usize> = MacTable::new();
        let t0 = Instant::now();
        t.learn(mac(1), &3, t0);
        t.learn(mac(1), &4, t0);
        assert_eq!(t.lookup(&mac(1), t0), Some(4));
    }

    #[test]
    fn multicast_sources_are_not_learned() {
        let mut t: MacTable<usize> = MacTable::new();
        let t0 = Instant::now();
        t.learn([0xff; 6], &1, t0);
        t.learn([0x01, 0, 0x5e, 0, 0, 1], &1, t0);
        assert_eq!(t.len(), 0);
        assert_eq!(t.lookup(&[0xff; 6], t0), None);
    }

    /// Full: new sources are refused (and counted), known ones still refreshed and found.
    #[test]
    fn full_table_learns_no_new_source_but_keeps_old_ones() {
        let mut t: MacTable<usize> = MacTable::with_limits(4, AGEING_TIME);
        let t0 = Instant::now();
        for n in 0..4 {
            t.learn(mac(n), &(n as usize), t0);
        }
        t.learn(mac(99), &9, t0);
        assert_eq!(t.len(), 4);
        assert_eq!(t.not_learned, 1);
        assert_eq!(t.lookup(&mac(99), t0), None);
        t.learn(mac(2), &7, t0);
        assert_eq!(t.lookup(&mac(2), t0), Some(7));
    }

    /// Once the old entries age out, a full table learns again.
    #[test]
    fn full_table_learns_again_after_ageing() {
        let mut t: MacTable<usize> = MacTable::with_limits(4, AGEING_TIME);
        let t0 = Instant::now();
        for n in 0..4 {
            t.learn(mac(n), &1, t0);
        }
        let later = t0 + AGEING_TIME;
        t.learn(mac(99), &9, later);
        assert_eq!(t.lookup(&mac(99), later), Some(9));
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn forget_port_removes_only_its_macs() {
        let mut t: MacTable<usize> = MacTable::new();
        let t0 = Instant::now();
        t.learn(mac(1), &1, t0);
        t.learn(mac(2), &2, t0);
        t.forget_port(&1);
        assert_eq!(t.lookup(&mac(1), t0), None);
        assert_eq!(t.lookup(&mac(2), t0), Some(2));
    }

    /// Time going backwards (a caller's clock) never panics nor expires anything.
    #[test]
    fn earlier_now_is_harmless() {
        let mut t: MacTable<usize> = MacTable::new();
        let t0 = Instant::now() + Duration::from_secs(1000);
        t.learn(mac(1), &1, t0);
        let before = t0 - Duration::from_secs(900);
        t.learn(mac(2), &2, before);
        assert_eq!(t.lookup(&mac(1), before), Some(1));
        assert_eq!(t.lookup(&mac(2), before), Some(2));
        // Seen at `before`, 900 s before `t0`: aged out by then.
        assert_eq!(t.lookup(&mac(2), t0), None);
    }
}
