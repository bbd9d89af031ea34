//! The IGMP host machine: memberships, reports, queries, compatibility modes.
//!
//! Heads up! Before working on this file read RFC 3376 §3.2 (merging socket state into
//! interface state), §5.1 (state-change reports and their retransmission), §5.2 (answering
//! queries, the five scheduling rules and the three report rules), §7.2.1 (host compatibility
//! mode), §8 (timer values: §8.1 robustness, §8.11 Unsolicited Report Interval, §8.12 Older
//! Version Querier Present Timeout); RFC 2236 §3 (host state, report suppression, leave),
//! §4 (v1 compatibility), §8.10 (Unsolicited Report Interval); RFC 1112 Appendix I.
//!
//! # Choices where the RFCs allow several
//!
//! - **Leave always sent.** RFC 2236 §3 lets a host that was not the last reporter skip the
//!   Leave Group message. We track "last reporter" but always send the leave (once, to
//!   224.0.0.2) when the interface leaves in v2 mode: snooping switches prune faster. v1 mode
//!   sends nothing on leave (IGMPv1 has no leave).
//! - **Router Alert on received queries is not required** — a deliberate departure from the
//!   RFC 3376 §9.1 SHOULD ("Hosts SHOULD ignore v2 or v3 Queries without the Router-Alert
//!   option"). IGMPv1 queriers never send it and some v2 queriers (snooping switches) omit it;
//!   a missed query ends in the router timing our membership out, a far worse failure than
//!   answering a forged query (which can only make us report). Linux hosts do not check it
//!   either; Linux bridge queriers send it. Queries without it are counted in
//!   [`HostStats::queries_without_router_alert`]. TTL is not checked.
//! - **General queries sent to a multicast address other than 224.0.0.1 are ignored** (RFC 3376
//!   §9.1 SHOULD) and counted in [`HostStats::ignored`]; unicast-addressed ones are accepted.
//! - **Query answers are spread over the first 7/8 of Max Resp Time** (uniformly random), so
//!   that they still reach the querier in time when this host is scheduled late.
//! - **Queries from 0.0.0.0 are accepted** (a Linux bridge querier without an address uses it).
//! - **Group-specific and group-and-source-specific queries are acted on whatever their IP
//!   destination** (224.0.0.1 or the group), as Linux bridges send them to 224.0.0.1.
//! - **Unsolicited reports**: sent at once, then robustness−1 more times, each after a random
//!   delay in [0, Unsolicited Report Interval] (v2: 10 s, v3: 1 s). In v1/v2 mode the repeats
//!   share the group timer with query responses (the RFC 2236 §3 "Delaying Member" timer), so
//!   hearing another host's report stops them too (RFC 2236 §3). v3 never suppresses.
//! - **Robustness** is the configured value until a v3 query carries a non-zero QRV, which is
//!   then adopted (as Linux does) for our retransmissions and for the Older Version Querier
//!   Present Timeout.
//! - **Older Version Querier Present Timeout** = Robustness × Query Interval + Query Response
//!   Interval (RFC 3376 §8.12), from the last v3 query's QRV, QQIC and Max Resp Time, or the
//!   defaults 2 × 125 s + 10 s = 260 s.
//! - **Mode switches** (in either direction, or when a Querier Present timer expires) cancel all
//!   pending response and retransmission timers (RFC 3376 §7.2.1).
//!   The switch is noticed at the next call that takes `now`.
//! - **In v1 mode** every query is treated as a v1 general query with a 10 s Max Response Time
//!   (the RFC 1112 host ignores the group field). In v2 mode a v3 query is treated as a v2 query
//!   (its sources ignored, its Max Resp Code decoded as a v3 float).
//! - **State-change merging** (RFC 3376 §5.1): a filter-mode change arms robustness
//!   transmissions of a TO_IN/TO_EX record carrying the *current* source list and drops pending
//!   ALLOW/BLOCK retransmissions (the mode record says it all). A source-list change while a
//!   mode record is still pending re-arms the mode record for robustness transmissions instead
//!   of adding ALLOW/BLOCK records: the mode record carries the new list. Otherwise each changed
//!   source gets its own counter of robustness transmissions in an ALLOW or BLOCK record, a
//!   source moving from one to the other leaving the first.
//! - **Group-and-source-specific source lists** that would grow above `max_sources` turn into a
//!   plain group-specific response (the whole current state: a superset, always safe).
//! - **One state-change timer per interface** (as Linux): all groups with pending v3
//!   state-change retransmissions go out together, in as few reports as fit the MTU, at random
//!   intervals in [0, Unsolicited Report Interval]; a new change anywhere sends at once, and
//!   that report also carries (and counts) the other groups' pending retransmissions. With
//!   thousands of groups this is tens of reports instead of thousands.
//! - **Current-state and state-change records never share a report** (as Linux).
//! - **224.0.0.1** may be joined (for delivery) but is never reported or left on the wire
//!   (RFC 3376 §5, RFC 2236 §6).
//! - **`max_groups`** counts group entries, including ones still retransmitting a v3 leave.
//! - **Our own messages looped back** are recognised by their IP source (once
//!   [`Host::set_source`] was called) and ignored.
//! - **Received v3 reports and leaves** from other hosts are checked (malformed ones counted)
//!   and otherwise ignored (RFC 3376 §5: hosts do not listen to reports).
//! - **Fixed TTL 1, TOS 0xc0, IHL 6 with Router Alert** on everything we send; DF is clear.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::fmt;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use super::filter::{difference, merge, Change, FilterMode, SourceFilter};
use super::wire::{
    build_ipv4, pack_records, parse_ipv4, GroupRecord, Ipv4Info, Message, Query, RecordType,
    ALL_ROUTERS, ALL_SYSTEMS, ALL_V3_ROUTERS, IP_HEADER_LEN,
};

/// A member of a group: a socket id of the engine.
pub type MemberId = u64;

/// An IGMP version; as host compatibility mode, the version we speak (RFC 3376 §7.2.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Version {
    /// IGMPv1 (RFC 1112).
    V1,
    /// IGMPv2 (RFC 2236).
    V2,
    /// IGMPv3 (RFC 3376).
    V3,
}

/// The host's protocol parameters and limits.
#[derive(Clone, Debug)]
pub struct HostConfig {
    /// Robustness Variable (RFC 3376 §8.1): transmissions of each unsolicited or state-change
    /// report. Default 2.
    pub robustness: u8,
    /// Unsolicited Report Interval in v1/v2 mode (RFC 2236 §8.10). Default 10 s.
    pub unsolicited_report_interval_v2: Duration,
    /// Unsolicited Report Interval in v3 mode (RFC 3376 §8.11). Default 1 s.
    pub unsolicited_report_interval_v3: Duration,
    /// Most groups the interface may be a member of. Default 65 536.
    pub max_groups: usize,
    /// Most sources in one socket's filter. Default 1024.
    pub max_sources: usize,
    /// IP MTU (octets): v3 reports are split to fit. Default 1500; values below 68 count as 68.
    pub mtu: usize,
    /// Pins the compatibility mode (like Linux `force_igmp_version`); `None` = RFC 3376 §7.2.1.
    pub force_version: Option<Version>,
}

impl Default for HostConfig {
    fn default() -> HostConfig {
        HostConfig {
            robustness: 2,
            unsolicited_report_interval_v2: Duration::from_secs(10),
            unsolicited_report_interval_v3: Duration::from_secs(1),
            max_groups: 65_536,
            max_sources: 1024,
            mtu: 1500,
            force_version: None,
        }
    }
}

/// Why [`Host::set_filter`] refused a membership.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JoinError {
    /// The interface is already in `max_groups` groups.
    TooManyGroups,
    /// The filter lists more than `max_sources` sources.
    TooManySources,
    /// The group is not in 224.0.0.0/4.
    NotMulticast,
}

impl fmt::Display for JoinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            JoinError::TooManyGroups => "too many multicast groups on the interface",
            JoinError::TooManySources => "too many sources in the filter",
            JoinError::NotMulticast => "not a multicast address",
        })
    }
}

impl std::error::Error for JoinError {}

/// Counters of what the host sent and received.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HostStats {
    /// Report datagrams sent (v1, v2 and v3; a v3 report may carry many records).
    pub reports_sent: u64,
    /// v2 Leave Group messages, plus v3 CHANGE_TO_INCLUDE({}) records, sent.
    pub leaves_sent: u64,
    /// Well-formed queries received (any version).
    pub queries_received: u64,
    /// Received datagrams dropped as malformed (IP header, length, checksum, fields).
    pub malformed: u64,
    /// Queries received without a Router Alert option (accepted anyway).
    pub queries_without_router_alert: u64,
    /// v1/v2 reports from other hosts received.
    pub reports_received: u64,
    /// Our pending v1/v2 reports cancelled by another host's report (RFC 2236 §3).
    pub reports_suppressed: u64,
    /// Well-formed messages hosts ignore: v3 reports, leaves, unknown types, general queries to
    /// a group address.
    pub ignored: u64,
    /// Our own messages looped back to us.
    pub own_looped: u64,
}

/// A timer in the deadline index.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Timer {
    /// The v3 interface timer: a pending response to a general query.
    General,
    /// A group timer: v1/v2 report (unsolicited or answering a query), or v3 response to a
    /// group(-and-source)-specific query.
    Response(Ipv4Addr),
    /// The v3 state-change (re)transmission of every group with pending changes.
    Changes,
}

/// Pending v3 state-change retransmissions of one group (RFC 3376 §5.1).
#[derive(Clone, Debug, Default)]
struct Retransmit {
    /// Reports still to carry a filter-mode-change record.
    mode_left: u8,
    /// Sources still to be sent in ALLOW records, with their counters.
    allow: BTreeMap<Ipv4Addr, u8>,
    /// Sources still to be sent in BLOCK records, with their counters.
    block: BTreeMap<Ipv4Addr, u8>,
}

impl Retransmit {
    fn is_idle(&self) -> bool {
        self.mode_left == 0 && self.allow.is_empty() && self.block.is_empty()
    }
}

/// One group's state on the interface.
#[derive(Clone, Debug)]
struct Group {
    /// Each member's socket filter (never INCLUDE {}).
    members: BTreeMap<MemberId, SourceFilter>,
    /// The merged interface state (INCLUDE {} while a v3 leave is still retransmitted).
    filter: SourceFilter,
    /// The group timer ([`Timer::Response`]).
    response_at: Option<Instant>,
    /// v3: the recorded sources of pending group-and-source-specific queries; `None` answers
    /// with the whole current state.
    response_sources: Option<BTreeSet<Ipv4Addr>>,
    /// v1/v2: unsolicited reports still to repeat after the pending one.
    unsolicited_left: u8,
    /// v1/v2: whether we sent the last report heard for the group (RFC 2236 §3 flag).
    last_reporter: bool,
    /// v3 retransmission state.
    retransmit: Retransmit,
}

impl Group {
    fn new() -> Group {
        Group {
            members: BTreeMap::new(),
            filter: SourceFilter::none(),
            response_at: None,
            response_sources: None,
            unsolicited_left: 0,
            last_reporter: false,
            retransmit: Retransmit::default(),
        }
    }

    fn is_member(&self) -> bool {
        !self.filter.is_empty_include()
    }

    fn current_state(&self, group: Ipv4Addr) -> GroupRecord {
        let record_type = match self.filter.mode {
            FilterMode::Include => RecordType::MODE_IS_INCLUDE,
            FilterMode::Exclude => RecordType::MODE_IS_EXCLUDE,
        };
        GroupRecord {
            record_type,
            group,
            sources: self.filter.sources.iter().copied().collect(),
        }
    }
}

/// Moves a timer: clears its old index entry and slot, then sets both to `at`.
fn set_timer(
    timers: &mut BTreeSet<(Instant, Timer)>,
    slot: &mut Option<Instant>,
    key: Timer,
    at: Option<Instant>,
) {
    if let Some(old) = slot.take() {
        timers.remove(&(old, key));
    }
    if let Some(at) = at {
        timers.insert((at, key));
    }
    *slot = at;
}

/// A uniformly random delay in [0, max], microsecond resolution.
fn random_delay(rng: &mut SmallRng, max: Duration) -> Duration {
    let max_us = u64::try_from(max.as_micros()).unwrap_or(u64::MAX);
    Duration::from_micros(rng.gen_range(0..=max_us))
}

/// The delay before answering a query with Max Resp Time `max`: uniformly random in
/// [0, 7/8 · max]. RFC 2236 §3 and RFC 3376 §5.2 ask for a random delay within Max Resp Time;
/// keeping the last eighth free leaves room for this host's scheduling and the link, so the
/// answer still reaches the querier in time on a busy machine.
fn response_delay(rng: &mut SmallRng, max: Duration) -> Duration {
    random_delay(rng, max * 7 / 8)
}

/// `now + d`, or `now` if that is not representable.
fn after(now: Instant, d: Duration) -> Instant {
    now.checked_add(d).unwrap_or(now)
}

/// The IGMP host machine of one interface (sans-IO).
///
/// Inputs: [`set_filter`](Host::set_filter) / [`leave_all`](Host::leave_all) (application),
/// [`receive`](Host::receive) (network). Outputs: [`poll`](Host::poll) (call until `None`)
/// at [`poll_at`](Host::poll_at). Getters take `&self`. Time is the caller's `now`; it may go
/// backwards without harm (nothing fires early or panics).
///
/// Work: every timer sits in one ordered deadline index, so `poll_at` is O(log n) and `poll`
/// touches only expired timers; a general query touches every group once.
#[derive(Debug)]
pub struct Host {
    config: HostConfig,
    rng: SmallRng,
    source: Ipv4Addr,
    ident: u16,
    groups: BTreeMap<Ipv4Addr, Group>,
    member_groups: HashMap<MemberId, BTreeSet<Ipv4Addr>>,
    timers: BTreeSet<(Instant, Timer)>,
    general_at: Option<Instant>,
    /// The v3 state-change timer ([`Timer::Changes`]).
    change_at: Option<Instant>,
    /// Groups with pending v3 state-change retransmissions.
    changing: BTreeSet<Ipv4Addr>,
    v1_querier_until: Option<Instant>,
    v2_querier_until: Option<Instant>,
    /// Robustness: the configured value, or the last non-zero QRV heard.
    robustness: u8,
    /// Query Interval: 125 s, or the last v3 QQIC heard.
    query_interval: Duration,
    /// Query Response Interval: 10 s, or the last v3 Max Resp Time heard.
    query_response_interval: Duration,
    /// The compatibility mode the pending timers belong to.
    mode: Version,
    out: VecDeque<Vec<u8>>,
    out_since: Option<Instant>,
    stats: HostStats,
}

impl Host {
    /// A host with no memberships; `seed` seeds the random report delays.
    pub fn new(mut config: HostConfig, seed: u64) -> Host {
        config.mtu = config.mtu.max(68);
        let mode = config.force_version.unwrap_or(Version::V3);
        Host {
            robustness: config.robustness.max(1),
            config,
            rng: SmallRng::seed_from_u64(seed),
            source: Ipv4Addr::UNSPECIFIED,
            ident: 0,
            groups: BTreeMap::new(),
            member_groups: HashMap::new(),
            timers: BTreeSet::new(),
            general_at: None,
            change_at: None,
            changing: BTreeSet::new(),
            v1_querier_until: None,
            v2_querier_until: None,
            query_interval: Duration::from_secs(125),
            query_response_interval: Duration::from_secs(10),
            mode,
            out: VecDeque::new(),
            out_since: None,
            stats: HostStats::default(),
        }
    }

    /// The configuration in force.
    pub fn config(&self) -> &HostConfig {
        &self.config
    }

    /// The IP source address of our messages (0.0.0.0 until set).
    pub fn set_source(&mut self, addr: Ipv4Addr) {
        self.source = addr;
    }

    /// A member's filter for `group` becomes `filter` (INCLUDE {} = leave). Merges into the
    /// interface state (RFC 3376 §3.2) and schedules the state-change / unsolicited reports or
    /// the leave.
    ///
    /// Returns `Ok(true)` when the interface state changed. Group must be 224.0.0.0/4 (else
    /// `NotMulticast`); a filter longer than `max_sources` is `TooManySources`; a new group
    /// beyond `max_groups` is `TooManyGroups`. Nothing changes on error.
    pub fn set_filter(
        &mut self,
        now: Instant,
        member: MemberId,
        group: Ipv4Addr,
        filter: SourceFilter,
    ) -> Result<bool, JoinError> {
        if !group.is_multicast() {
            return Err(JoinError::NotMulticast);
        }
        if filter.sources.len() > self.config.max_sources {
            return Err(JoinError::TooManySources);
        }
        self.sync_mode(now);
        if filter.is_empty_include() {
            let Some(g) = self.groups.get_mut(&group) else {
                return Ok(false);
            };
            if g.members.remove(&member).is_none() {
                return Ok(false);
            }
            if let Some(set) = self.member_groups.get_mut(&member) {
                set.remove(&group);
                if set.is_empty() {
                    self.member_groups.remove(&member);
                }
            }
        } else {
            if !self.groups.contains_key(&group) && self.groups.len() >= self.config.max_groups {
                return Err(JoinError::TooManyGroups);
            }
            let g = self.groups.entry(group).or_insert_with(Group::new);
            if g.members.get(&member) == Some(&filter) {
                return Ok(false);
            }
            g.members.insert(member, filter);
            self.member_groups.entry(member).or_default().insert(group);
        }
        Ok(self.refresh(now, group))
    }

    /// A member is gone (socket closed): it leaves all its groups.
    pub fn leave_all(&mut self, now: Instant, member: MemberId) {
        self.sync_mode(now);
        let Some(groups) = self.member_groups.remove(&member) else {
            return;
        };
        for group in groups {
            if let Some(g) = self.groups.get_mut(&group) {
                g.members.remove(&member);
                self.refresh(now, group);
            }
        }
    }

    /// A member's socket filter for `group`, if it is a member.
    pub fn member_filter(&self, member: MemberId, group: Ipv4Addr) -> Option<&SourceFilter> {
        self.groups.get(&group)?.members.get(&member)
    }

    /// Local members whose socket filter accepts (group, source), in member id order — for
    /// datagram delivery.
    pub fn members_accepting(
        &self,
        group: Ipv4Addr,
        source: Ipv4Addr,
    ) -> impl Iterator<Item = MemberId> + '_ {
        self.groups.get(&group).into_iter().flat_map(move |g| {
            g.members
                .iter()
                .filter(move |(_, f)| f.accepts(source))
                .map(|(m, _)| *m)
        })
    }

    /// The merged interface state for `group`; `None` = not a member.
    pub fn interface_filter(&self, group: Ipv4Addr) -> Option<SourceFilter> {
        self.groups
            .get(&group)
            .filter(|g| g.is_member())
            .map(|g| g.filter.clone())
    }

    /// The groups the interface is a member of, in address order.
    pub fn groups(&self) -> impl Iterator<Item = Ipv4Addr> + '_ {
        self.groups
            .iter()
            .filter(|(_, g)| g.is_member())
            .map(|(a, _)| *a)
    }

    /// One received IPv4 datagram carrying IGMP (the whole IP packet, header + options + IGMP).
    /// Malformed input is counted and ignored, never a panic.
    pub fn receive(&mut self, now: Instant, ip_packet: &[u8]) {
        let Ok((info, igmp)) = parse_ipv4(ip_packet) else {
            self.stats.malformed += 1;
            return;
        };
        let Ok(message) = Message::parse(igmp) else {
            self.stats.malformed += 1;
            return;
        };
        if !self.source.is_unspecified() && info.src == self.source {
            self.stats.own_looped += 1;
            return;
        }
        self.sync_mode(now);
        match message {
            Message::Query(q) => self.handle_query(now, &info, &q),
            Message::V1Report { group } | Message::V2Report { group } => self.handle_report(group),
            Message::V3Report { .. } | Message::Leave { .. } | Message::Unknown { .. } => {
                self.stats.ignored += 1
            }
        }
    }

    /// The earliest instant [`poll`](Host::poll) has something to do, if any.
    pub fn poll_at(&self) -> Option<Instant> {
        if self.out.is_empty() {
            self.timers.first().map(|(at, _)| *at)
        } else {
            self.out_since
        }
    }

    /// The next IPv4 datagram to send now (whole IP packet: TTL 1, Router Alert option, TOS
    /// 0xc0, correct header and IGMP checksums, DF clear), or `None`. Call until `None`.
    pub fn poll(&mut self, now: Instant) -> Option<Vec<u8>> {
        self.sync_mode(now);
        if self.out.is_empty() {
            self.fire_expired(now);
        }
        let packet = self.out.pop_front();
        if self.out.is_empty() {
            self.out_since = None;
        }
        packet
    }

    /// The host compatibility mode at `now` (RFC 3376 §7.2.1).
    pub fn version(&self, now: Instant) -> Version {
        if let Some(v) = self.config.force_version {
            return v;
        }
        if self.v1_querier_until.is_some_and(|t| now < t) {
            Version::V1
        } else if self.v2_querier_until.is_some_and(|t| now < t) {
            Version::V2
        } else {
            Version::V3
        }
    }

    /// The counters.
    pub fn stats(&self) -> HostStats {
        self.stats
    }

    // ---- internals ----

    /// Panics if the internal indexes disagree (tests only).
    #[cfg(test)]
    fn check_invariants(&self) {
        let mut slots = 0;
        if let Some(at) = self.general_at {
            assert!(self.timers.contains(&(at, Timer::General)));
            slots += 1;
        }
        if let Some(at) = self.change_at {
            assert!(self.timers.contains(&(at, Timer::Changes)));
            slots += 1;
        }
        assert!(
            self.changing.is_empty() || self.change_at.is_some(),
            "changes without a timer"
        );
        for (addr, g) in &self.groups {
            if let Some(at) = g.response_at {
                assert!(self.timers.contains(&(at, Timer::Response(*addr))));
                slots += 1;
            }
            assert_eq!(
                self.changing.contains(addr),
                !g.retransmit.is_idle(),
                "{addr}"
            );
            assert!(
                !g.members.is_empty() || !g.retransmit.is_idle(),
                "stale group {addr}"
            );
            assert_eq!(g.filter, merge(g.members.values()));
            for m in g.members.keys() {
                assert!(self.member_groups[m].contains(addr));
            }
        }
        assert_eq!(self.timers.len(), slots, "stale timer index entries");
        for (m, set) in &self.member_groups {
            assert!(!set.is_empty());
            for addr in set {
                assert!(self.groups[addr].members.contains_key(m));
            }
        }
    }

    /// Notices a compatibility-mode change and cancels every pending response and
    /// retransmission (RFC 3376 §7.2.1).
    fn sync_mode(&mut self, now: Instant) {
        let mode = self.version(now);
        if mode == self.mode {
            return;
        }
        self.mode = mode;
        self.timers.clear();
        self.general_at = None;
        self.change_at = None;
        self.changing.clear();
        self.groups.retain(|_, g| {
            g.response_at = None;
            g.response_sources = None;
            g.unsolicited_left = 0;
            g.retransmit = Retransmit::default();
            !g.members.is_empty()
        });
    }

    /// Re-merges a group's interface state; acts on a change. Returns whether it changed.
    fn refresh(&mut self, now: Instant, group: Ipv4Addr) -> bool {
        let Some(g) = self.groups.get_mut(&group) else {
            return false;
        };
        let new = merge(g.members.values());
        if new == g.filter {
            if g.members.is_empty() && g.retransmit.is_idle() {
                self.remove_group(group);
            }
            return false;
        }
        let old = std::mem::replace(&mut g.filter, new.clone());
        self.state_changed(now, group, &old, &new);
        true
    }

    fn remove_group(&mut self, group: Ipv4Addr) {
        if let Some(mut g) = self.groups.remove(&group) {
            set_timer(
                &mut self.timers,
                &mut g.response_at,
                Timer::Response(group),
                None,
            );
            self.changing.remove(&group);
            if self.changing.is_empty() {
                set_timer(&mut self.timers, &mut self.change_at, Timer::Changes, None);
            }
        }
    }

    /// The interface state of `group` went from `old` to `new`.
    fn state_changed(
        &mut self,
        now: Instant,
        group: Ipv4Addr,
        old: &SourceFilter,
        new: &SourceFilter,
    ) {
        let reportable = group != ALL_SYSTEMS; // RFC 3376 §5, RFC 2236 §6
        let robustness = self.robustness;
        let Some(g) = self.groups.get_mut(&group) else {
            return;
        };
        match self.mode {
            Version::V3 => {
                if reportable {
                    // RFC 3376 §5.1: build the difference and merge it with the pending report.
                    let rt = &mut g.retransmit;
                    match difference(old, new) {
                        Change::Mode(_) => {
                            *rt = Retransmit {
                                mode_left: robustness,
                                ..Retransmit::default()
                            };
                        }
                        Change::Sources { .. } if rt.mode_left > 0 => rt.mode_left = robustness,
                        Change::Sources { allow, block } => {
                            for s in allow {
                                rt.block.remove(&s);
                                rt.allow.insert(s, robustness);
                            }
                            for s in block {
                                rt.allow.remove(&s);
                                rt.block.insert(s, robustness);
                            }
                        }
                    }
                    // "each such additional change triggers the immediate transmission"
                    self.changing.insert(group);
                    let at = self.change_at.map_or(now, |t| t.min(now));
                    set_timer(
                        &mut self.timers,
                        &mut self.change_at,
                        Timer::Changes,
                        Some(at),
                    );
                }
                if !g.is_member() {
                    // No reception state left: no current-state response to give.
                    g.response_sources = None;
                    set_timer(
                        &mut self.timers,
                        &mut g.response_at,
                        Timer::Response(group),
                        None,
                    );
                }
                if g.members.is_empty() && g.retransmit.is_idle() {
                    self.remove_group(group);
                }
            }
            mode @ (Version::V1 | Version::V2) => {
                let was = !old.is_empty_include();
                let is = !new.is_empty_include();
                if !was && is && reportable {
                    // RFC 2236 §3: report at once, repeat after a short random delay.
                    g.unsolicited_left = robustness - 1;
                    g.last_reporter = true;
                    set_timer(
                        &mut self.timers,
                        &mut g.response_at,
                        Timer::Response(group),
                        Some(now),
                    );
                } else if was && !is {
                    // Choice: the leave is sent even when we were not the last reporter.
                    self.remove_group(group);
                    if mode == Version::V2 && reportable {
                        self.send(now, ALL_ROUTERS, &Message::Leave { group });
                        self.stats.leaves_sent += 1;
                    }
                }
            }
        }
    }

    fn older_querier_timeout(&self) -> Duration {
        // RFC 3376 §8.12
        self.query_interval * u32::from(self.robustness) + self.query_response_interval
    }

    fn handle_query(&mut self, now: Instant, info: &Ipv4Info, q: &Query) {
        if q.is_general() && info.dst.is_multicast() && info.dst != ALL_SYSTEMS {
            // RFC 3376 §9.1: a general query must go to 224.0.0.1.
            self.stats.ignored += 1;
            return;
        }
        self.stats.queries_received += 1;
        if !info.router_alert {
            self.stats.queries_without_router_alert += 1;
        }
        match q.version() {
            Version::V1 => self.v1_querier_until = Some(after(now, self.older_querier_timeout())),
            Version::V2 => self.v2_querier_until = Some(after(now, self.older_querier_timeout())),
            Version::V3 => {
                if let Some(v3) = &q.v3 {
                    if v3.qrv != 0 {
                        self.robustness = v3.qrv;
                    }
                }
                if let Some(qi) = q.query_interval() {
                    self.query_interval = qi;
                }
                self.query_response_interval = q.max_resp_time();
            }
        }
        self.sync_mode(now);
        match self.mode {
            // RFC 2236 §4: a v1 host answers any query as a v1 general query, within 10 s.
            Version::V1 => self.schedule_v2_responses(now, None, Duration::from_secs(10)),
            Version::V2 => {
                let group = (!q.is_general()).then_some(q.group);
                self.schedule_v2_responses(now, group, q.max_resp_time());
            }
            Version::V3 => self.schedule_v3_response(now, q),
        }
    }

    /// RFC 2236 §3: start a random timer in [0, max] per reported group; a running timer is
    /// reset only if `max` is less than its remaining time.
    fn schedule_v2_responses(&mut self, now: Instant, group: Option<Ipv4Addr>, max: Duration) {
        let timers = &mut self.timers;
        let rng = &mut self.rng;
        let mut one = |addr: Ipv4Addr, g: &mut Group| {
            if addr == ALL_SYSTEMS || !g.is_member() {
                return;
            }
            if g.response_at
                .is_some_and(|t| t.saturating_duration_since(now) <= max)
            {
                return;
            }
            let at = after(now, response_delay(rng, max));
            set_timer(timers, &mut g.response_at, Timer::Response(addr), Some(at));
        };
        match group {
            Some(addr) => {
                if let Some(g) = self.groups.get_mut(&addr) {
                    one(addr, g);
                }
            }
            None => {
                for (addr, g) in self.groups.iter_mut() {
                    one(*addr, g);
                }
            }
        }
    }

    /// RFC 3376 §5.2, the five rules for scheduling a response.
    fn schedule_v3_response(&mut self, now: Instant, q: &Query) {
        let at = after(now, response_delay(&mut self.rng, q.max_resp_time()));
        // Rule 1: a pending general response sooner than the selected delay covers it.
        if self.general_at.is_some_and(|t| t < at) {
            return;
        }
        // Rule 2: a general query (re)schedules the interface timer.
        if q.is_general() {
            set_timer(
                &mut self.timers,
                &mut self.general_at,
                Timer::General,
                Some(at),
            );
            return;
        }
        let group = q.group;
        if group == ALL_SYSTEMS {
            return;
        }
        let Some(g) = self.groups.get_mut(&group) else {
            return;
        };
        if !g.is_member() {
            return;
        }
        let sources = q.sources();
        let at = match g.response_at {
            None => {
                // Rule 3: record the queried sources, if any.
                g.response_sources =
                    (!sources.is_empty()).then(|| sources.iter().copied().collect());
                at
            }
            Some(pending) => {
                match (&mut g.response_sources, sources.is_empty()) {
                    // Rule 5: augment the recorded list.
                    (Some(list), false) => list.extend(sources.iter().copied()),
                    // Rule 4: a group-specific query, or nothing recorded: the whole state.
                    _ => g.response_sources = None,
                }
                pending.min(at)
            }
        };
        if g.response_sources
            .as_ref()
            .is_some_and(|l| l.len() > self.config.max_sources)
        {
            g.response_sources = None;
        }
        set_timer(
            &mut self.timers,
            &mut g.response_at,
            Timer::Response(group),
            Some(at),
        );
    }

    /// RFC 2236 §3: another host's report for a group cancels ours (v1/v2 mode only; RFC 3376
    /// hosts never suppress).
    fn handle_report(&mut self, group: Ipv4Addr) {
        self.stats.reports_received += 1;
        if self.mode == Version::V3 {
            return;
        }
        if let Some(g) = self.groups.get_mut(&group) {
            g.last_reporter = false;
            if g.response_at.is_some() {
                g.unsolicited_left = 0;
                set_timer(
                    &mut self.timers,
                    &mut g.response_at,
                    Timer::Response(group),
                    None,
                );
                self.stats.reports_suppressed += 1;
            }
        }
    }

    /// Fires every timer due at `now`, queueing what they send.
    fn fire_expired(&mut self, now: Instant) {
        let mut current = Vec::new();
        let mut changes = Vec::new();
        while let Some(&(at, key)) = self.timers.first() {
            if at > now {
                break;
            }
            self.timers.pop_first();
            match key {
                Timer::General => {
                    self.general_at = None;
                    // RFC 3376 §5.2 report rule 1: every group with reception state.
                    current.extend(
                        self.groups
                            .iter()
                            .filter(|(a, g)| **a != ALL_SYSTEMS && g.is_member())
                            .map(|(a, g)| g.current_state(*a)),
                    );
                }
                Timer::Response(group) => self.fire_response(now, group, &mut current),
                Timer::Changes => {
                    self.change_at = None;
                    let groups: Vec<Ipv4Addr> = self.changing.iter().copied().collect();
                    for group in groups {
                        self.fire_change(group, &mut changes);
                    }
                    if !self.changing.is_empty() {
                        let delay =
                            random_delay(&mut self.rng, self.config.unsolicited_report_interval_v3);
                        let at = Some(after(now, delay));
                        set_timer(&mut self.timers, &mut self.change_at, Timer::Changes, at);
                    }
                }
            }
        }
        self.send_records(now, current);
        self.send_records(now, changes);
    }

    fn fire_response(&mut self, now: Instant, group: Ipv4Addr, current: &mut Vec<GroupRecord>) {
        let delay = random_delay(&mut self.rng, self.config.unsolicited_report_interval_v2);
        let Some(g) = self.groups.get_mut(&group) else {
            return;
        };
        g.response_at = None;
        if !g.is_member() || group == ALL_SYSTEMS {
            return;
        }
        match self.mode {
            mode @ (Version::V1 | Version::V2) => {
                g.last_reporter = true;
                if g.unsolicited_left > 0 {
                    g.unsolicited_left -= 1;
                    set_timer(
                        &mut self.timers,
                        &mut g.response_at,
                        Timer::Response(group),
                        Some(after(now, delay)),
                    );
                }
                let message = if mode == Version::V1 {
                    Message::V1Report { group }
                } else {
                    Message::V2Report { group }
                };
                self.send(now, group, &message);
                self.stats.reports_sent += 1;
            }
            Version::V3 => match g.response_sources.take() {
                // Report rule 2: the whole current state.
                None => current.push(g.current_state(group)),
                // Report rule 3: the queried sources we want traffic from, as MODE_IS_INCLUDE.
                Some(queried) => {
                    let sources: Vec<Ipv4Addr> = queried
                        .into_iter()
                        .filter(|s| g.filter.accepts(*s))
                        .collect();
                    if !sources.is_empty() {
                        current.push(GroupRecord {
                            record_type: RecordType::MODE_IS_INCLUDE,
                            group,
                            sources,
                        });
                    }
                }
            },
        }
    }

    /// Adds a group's pending state-change records to `changes` and counts them down
    /// (RFC 3376 §5.1).
    fn fire_change(&mut self, group: Ipv4Addr, changes: &mut Vec<GroupRecord>) {
        let Some(g) = self.groups.get_mut(&group) else {
            self.changing.remove(&group);
            return;
        };
        let rt = &mut g.retransmit;
        if rt.mode_left > 0 {
            rt.mode_left -= 1;
            let record_type = match g.filter.mode {
                FilterMode::Include => RecordType::CHANGE_TO_INCLUDE,
                FilterMode::Exclude => RecordType::CHANGE_TO_EXCLUDE,
            };
            if g.filter.is_empty_include() {
                self.stats.leaves_sent += 1;
            }
            changes.push(GroupRecord {
                record_type,
                group,
                sources: g.filter.sources.iter().copied().collect(),
            });
        } else {
            // RFC 3376 §5.1: each sent report decrements the counters of the sources it carries.
            for (record_type, list) in [
                (RecordType::ALLOW_NEW_SOURCES, &mut rt.allow),
                (RecordType::BLOCK_OLD_SOURCES, &mut rt.block),
            ] {
                if list.is_empty() {
                    continue;
                }
                changes.push(GroupRecord {
                    record_type,
                    group,
                    sources: list.keys().copied().collect(),
                });
                list.retain(|_, n| {
                    *n = n.saturating_sub(1);
                    *n > 0
                });
            }
        }
        if g.retransmit.is_idle() {
            self.changing.remove(&group);
            if g.members.is_empty() {
                self.remove_group(group);
            }
        }
    }

    /// Queues v3 reports carrying `records`, split to fit the MTU (RFC 3376 §4.2.16).
    fn send_records(&mut self, now: Instant, records: Vec<GroupRecord>) {
        if records.is_empty() {
            return;
        }
        let max_payload = self.config.mtu - IP_HEADER_LEN;
        for records in pack_records(records, max_payload) {
            self.send(now, ALL_V3_ROUTERS, &Message::V3Report { records });
            self.stats.reports_sent += 1;
        }
    }

    fn send(&mut self, now: Instant, dst: Ipv4Addr, message: &Message) {
        let packet = build_ipv4(self.source, dst, self.ident, &message.to_bytes());
        self.ident = self.ident.wrapping_add(1);
        if self.out.is_empty() {
            self.out_since = Some(now);
        }
        self.out.push_back(packet);
    }
}

#[cfg(test)]
#[path = "host_tests.rs"]
mod test;
