//! Tests of the IGMP host machine on simulated time: `t0 = Instant::now()` only picks an epoch;
//! every instant after it is `t0 + offset`. Every packet we send is decoded with our own parser
//! and checked for TTL 1, TOS 0xc0, IHL 6 with Router Alert, and the MTU.
#![allow(clippy::disallowed_methods)] // Instant::now() picks the simulated epoch

use super::super::wire::{build_ipv4, checksum, parse_ipv4, QueryV3, ALL_SYSTEMS};
use super::*;
use proptest::prelude::*;
use std::collections::BTreeSet;

const ME: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
const OTHER: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 3);
const QUERIER: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);

fn g(n: u16) -> Ipv4Addr {
    let [hi, lo] = n.to_be_bytes();
    Ipv4Addr::new(239, 1, hi, lo)
}

fn s(n: u8) -> Ipv4Addr {
    Ipv4Addr::new(192, 0, 2, n)
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn host_with(config: HostConfig) -> Host {
    let mut h = Host::new(config, 7);
    h.set_source(ME);
    h
}

fn host() -> Host {
    host_with(HostConfig::default())
}

fn forced(v: Version) -> Host {
    host_with(HostConfig {
        force_version: Some(v),
        ..HostConfig::default()
    })
}

#[derive(Debug, Clone)]
struct Sent {
    at: Instant,
    dst: Ipv4Addr,
    msg: Message,
}

/// Decodes one of our packets, checking the IP header rules.
fn decode(p: &[u8], mtu: usize) -> (Ipv4Addr, Message) {
    assert!(p.len() <= mtu, "{} octets > MTU {mtu}", p.len());
    assert_eq!(p[0], 0x46, "IPv4, IHL 6");
    assert_eq!(p[1], 0xc0, "TOS");
    assert_eq!(p[8], 1, "TTL");
    let (info, igmp) = parse_ipv4(p).expect("our IP header parses");
    assert!(info.router_alert);
    assert_eq!(info.src, ME);
    (info.dst, Message::parse(igmp).expect("our IGMP parses"))
}

/// Polls until `None` at `now`.
fn drain(h: &mut Host, now: Instant) -> Vec<Sent> {
    let mut out = Vec::new();
    while let Some(p) = h.poll(now) {
        let (dst, msg) = decode(&p, h.config().mtu);
        out.push(Sent { at: now, dst, msg });
        assert!(out.len() < 1_000_000, "poll never returns None");
    }
    out
}

/// Runs the host's timers from `from` to `until` (inclusive).
fn run(h: &mut Host, from: Instant, until: Instant) -> Vec<Sent> {
    let mut out = Vec::new();
    let mut steps = 0;
    while let Some(at) = h.poll_at() {
        if at > until {
            break;
        }
        out.extend(drain(h, at.max(from)));
        steps += 1;
        assert!(steps < 1_000_000, "livelock");
    }
    out
}

fn records(sent: &[Sent]) -> Vec<GroupRecord> {
    sent.iter()
        .flat_map(|s| {
            assert_eq!(s.dst, ALL_V3_ROUTERS);
            match &s.msg {
                Message::V3Report { records } => records.clone(),
                other => panic!("not a v3 report: {other:?}"),
            }
        })
        .collect()
}

fn rec(t: RecordType, group: Ipv4Addr, sources: &[Ipv4Addr]) -> GroupRecord {
    GroupRecord {
        record_type: t,
        group,
        sources: sources.to_vec(),
    }
}

fn packet(src: Ipv4Addr, dst: Ipv4Addr, msg: Message) -> Vec<u8> {
    build_ipv4(src, dst, 0, &msg.to_bytes())
}

fn v1_query() -> Vec<u8> {
    let q = Query {
        max_resp_code: 0,
        group: Ipv4Addr::UNSPECIFIED,
        v3: None,
    };
    packet(QUERIER, ALL_SYSTEMS, Message::Query(q))
}

fn v2_query(group: Ipv4Addr, tenths: u8) -> Vec<u8> {
    packet(
        QUERIER,
        ALL_SYSTEMS,
        Message::Query(Query {
            max_resp_code: tenths,
            group,
            v3: None,
        }),
    )
}

fn v3_query_full(group: Ipv4Addr, code: u8, qrv: u8, qqic: u8, sources: &[Ipv4Addr]) -> Vec<u8> {
    let v3 = QueryV3 {
        s_flag: false,
        qrv,
        qqic,
        sources: sources.to_vec(),
    };
    packet(
        QUERIER,
        ALL_SYSTEMS,
        Message::Query(Query {
            max_resp_code: code,
            group,
            v3: Some(v3),
        }),
    )
}

fn v3_query(group: Ipv4Addr, code: u8, sources: &[Ipv4Addr]) -> Vec<u8> {
    v3_query_full(group, code, 2, 125, sources)
}

const ANY: Ipv4Addr = Ipv4Addr::UNSPECIFIED;

// ---- joins and leaves ----

#[test]
fn v3_join_reports_at_once_then_robustness_minus_one_more() {
    let t0 = Instant::now();
    let mut h = host();
    assert_eq!(h.version(t0), Version::V3);
    assert_eq!(
        h.set_filter(t0, 1, g(1), SourceFilter::any_source()),
        Ok(true)
    );
    assert_eq!(h.poll_at(), Some(t0));
    let first = drain(&mut h, t0);
    assert_eq!(
        records(&first),
        vec![rec(RecordType::CHANGE_TO_EXCLUDE, g(1), &[])]
    );
    let rest = run(&mut h, t0, t0 + Duration::from_secs(30));
    assert_eq!(
        records(&rest),
        vec![rec(RecordType::CHANGE_TO_EXCLUDE, g(1), &[])]
    );
    assert!(
        rest[0].at <= t0 + Duration::from_secs(1),
        "within the v3 URI"
    );
    assert_eq!(h.poll_at(), None);
    assert_eq!(h.stats().reports_sent, 2);
    assert_eq!(h.groups().collect::<Vec<_>>(), vec![g(1)]);
}

#[test]
fn unchanged_interface_state_sends_nothing() {
    let t0 = Instant::now();
    let mut h = host();
    h.set_filter(t0, 1, g(1), SourceFilter::any_source())
        .unwrap();
    run(&mut h, t0, t0 + Duration::from_secs(30));
    let t1 = t0 + Duration::from_secs(40);
    assert_eq!(
        h.set_filter(t1, 1, g(1), SourceFilter::any_source()),
        Ok(false)
    );
    assert_eq!(
        h.set_filter(t1, 2, g(1), SourceFilter::any_source()),
        Ok(false)
    );
    assert_eq!(
        h.set_filter(t1, 3, g(1), SourceFilter::include([s(1)])),
        Ok(false)
    );
    assert_eq!(h.set_filter(t1, 3, g(1), SourceFilter::none()), Ok(false));
    assert_eq!(
        h.set_filter(t1, 9, g(2), SourceFilter::none()),
        Ok(false),
        "leave unjoined"
    );
    assert_eq!(h.poll_at(), None);
    assert!(drain(&mut h, t1).is_empty());
}

#[test]
fn v2_join_repeats_within_uri_and_leave_is_sent_once() {
    let t0 = Instant::now();
    let mut h = forced(Version::V2);
    h.set_filter(t0, 1, g(1), SourceFilter::any_source())
        .unwrap();
    let first = drain(&mut h, t0);
    assert_eq!(first.len(), 1);
    assert_eq!(
        (first[0].dst, &first[0].msg),
        (g(1), &Message::V2Report { group: g(1) })
    );
    let rest = run(&mut h, t0, t0 + Duration::from_secs(60));
    assert_eq!(rest.len(), 1);
    assert_eq!(rest[0].msg, Message::V2Report { group: g(1) });
    assert!(rest[0].at <= t0 + Duration::from_secs(10));
    let t1 = t0 + Duration::from_secs(61);
    assert_eq!(h.set_filter(t1, 1, g(1), SourceFilter::none()), Ok(true));
    let leave = drain(&mut h, t1);
    assert_eq!(leave.len(), 1);
    assert_eq!(
        (leave[0].dst, &leave[0].msg),
        (ALL_ROUTERS, &Message::Leave { group: g(1) })
    );
    assert!(run(&mut h, t1, t1 + Duration::from_secs(60)).is_empty());
    assert_eq!(h.groups().count(), 0);
    assert_eq!(h.stats().leaves_sent, 1);
}

#[test]
fn v2_source_lists_are_ignored() {
    let t0 = Instant::now();
    let mut h = forced(Version::V2);
    // INCLUDE {a} is a membership in v2 mode.
    assert_eq!(
        h.set_filter(t0, 1, g(1), SourceFilter::include([s(1)])),
        Ok(true)
    );
    assert_eq!(drain(&mut h, t0)[0].msg, Message::V2Report { group: g(1) });
    run(&mut h, t0, t0 + Duration::from_secs(20));
    let t1 = t0 + Duration::from_secs(30);
    // A source change inside the membership changes the interface state but sends nothing.
    assert_eq!(
        h.set_filter(t1, 1, g(1), SourceFilter::include([s(2)])),
        Ok(true)
    );
    assert!(drain(&mut h, t1).is_empty());
    assert_eq!(h.poll_at(), None);
}

#[test]
fn v1_join_sends_v1_reports_and_leave_sends_nothing() {
    let t0 = Instant::now();
    let mut h = forced(Version::V1);
    h.set_filter(t0, 1, g(1), SourceFilter::any_source())
        .unwrap();
    let sent = run(&mut h, t0, t0 + Duration::from_secs(60));
    assert_eq!(sent.len(), 2);
    assert!(sent
        .iter()
        .all(|s| s.msg == Message::V1Report { group: g(1) } && s.dst == g(1)));
    let t1 = t0 + Duration::from_secs(61);
    assert_eq!(h.set_filter(t1, 1, g(1), SourceFilter::none()), Ok(true));
    assert!(run(&mut h, t1, t1 + Duration::from_secs(60)).is_empty());
    assert_eq!(h.groups().count(), 0);
}

#[test]
fn v3_leave_sends_to_in_empty_robustness_times() {
    let t0 = Instant::now();
    let mut h = host();
    h.set_filter(t0, 1, g(1), SourceFilter::any_source())
        .unwrap();
    run(&mut h, t0, t0 + Duration::from_secs(30));
    let t1 = t0 + Duration::from_secs(40);
    assert_eq!(h.set_filter(t1, 1, g(1), SourceFilter::none()), Ok(true));
    assert_eq!(h.groups().count(), 0);
    assert_eq!(h.interface_filter(g(1)), None);
    let first = drain(&mut h, t1);
    assert_eq!(
        records(&first),
        vec![rec(RecordType::CHANGE_TO_INCLUDE, g(1), &[])]
    );
    let rest = run(&mut h, t1, t1 + Duration::from_secs(30));
    assert_eq!(
        records(&rest),
        vec![rec(RecordType::CHANGE_TO_INCLUDE, g(1), &[])]
    );
    assert!(rest[0].at <= t1 + Duration::from_secs(1));
    assert_eq!(h.poll_at(), None);
    assert!(
        h.groups.is_empty(),
        "the group entry is gone after its retransmissions"
    );
    assert_eq!(h.stats().leaves_sent, 2);
}

#[test]
fn v3_source_list_changes_use_allow_block_and_mode_changes_use_to_in_to_ex() {
    let t0 = Instant::now();
    let mut h = host();
    let mut t = t0;
    let mut step = |h: &mut Host, f: SourceFilter| {
        t += Duration::from_secs(10);
        assert_eq!(h.set_filter(t, 1, g(1), f), Ok(true));
        records(&run(h, t, t + Duration::from_secs(5)))
    };
    use RecordType as R;
    assert_eq!(
        step(&mut h, SourceFilter::include([s(1)])),
        vec![rec(R::ALLOW_NEW_SOURCES, g(1), &[s(1)]); 2]
    );
    assert_eq!(
        step(&mut h, SourceFilter::include([s(1), s(2)])),
        vec![rec(R::ALLOW_NEW_SOURCES, g(1), &[s(2)]); 2]
    );
    assert_eq!(
        step(&mut h, SourceFilter::include([s(2)])),
        vec![rec(R::BLOCK_OLD_SOURCES, g(1), &[s(1)]); 2]
    );
    assert_eq!(
        step(&mut h, SourceFilter::exclude([s(3)])),
        vec![rec(R::CHANGE_TO_EXCLUDE, g(1), &[s(3)]); 2]
    );
    assert_eq!(
        step(&mut h, SourceFilter::exclude([s(3), s(4)])),
        vec![rec(R::BLOCK_OLD_SOURCES, g(1), &[s(4)]); 2]
    );
    assert_eq!(
        step(&mut h, SourceFilter::exclude([s(4)])),
        vec![rec(R::ALLOW_NEW_SOURCES, g(1), &[s(3)]); 2]
    );
    assert_eq!(
        step(&mut h, SourceFilter::include([s(2)])),
        vec![rec(R::CHANGE_TO_INCLUDE, g(1), &[s(2)]); 2]
    );
    assert_eq!(
        step(&mut h, SourceFilter::none()),
        vec![rec(R::BLOCK_OLD_SOURCES, g(1), &[s(2)]); 2]
    );
    assert_eq!(h.poll_at(), None);
}

#[test]
fn v3_changes_merge_with_pending_retransmissions() {
    let t0 = Instant::now();
    let mut h = host();
    // A mode change pending, then a source change: the mode record, with the new list, goes out
    // at once and robustness−1 more times; nothing else.
    h.set_filter(t0, 1, g(1), SourceFilter::any_source())
        .unwrap();
    assert_eq!(
        records(&drain(&mut h, t0)),
        vec![rec(RecordType::CHANGE_TO_EXCLUDE, g(1), &[])]
    );
    let t1 = t0 + ms(1);
    h.set_filter(t1, 1, g(1), SourceFilter::exclude([s(9)]))
        .unwrap();
    let after = run(&mut h, t1, t1 + Duration::from_secs(10));
    assert_eq!(after[0].at, t1, "immediately");
    assert_eq!(
        records(&after),
        vec![rec(RecordType::CHANGE_TO_EXCLUDE, g(1), &[s(9)]); 2]
    );

    // ALLOW(a) pending, then a is blocked: BLOCK(a) at once, and no ALLOW(a) any more.
    let g2 = g(2);
    let t2 = t0 + Duration::from_secs(20);
    h.set_filter(t2, 1, g2, SourceFilter::include([s(1), s(2)]))
        .unwrap();
    drain(&mut h, t2);
    let t3 = t2 + ms(1);
    h.set_filter(t3, 1, g2, SourceFilter::include([s(2)]))
        .unwrap();
    let after = records(&run(&mut h, t3, t3 + Duration::from_secs(10)));
    assert_eq!(
        after
            .iter()
            .filter(|r| r.record_type == RecordType::BLOCK_OLD_SOURCES)
            .count(),
        2
    );
    for r in &after {
        if r.record_type == RecordType::BLOCK_OLD_SOURCES {
            assert_eq!(r.sources, vec![s(1)]);
        } else {
            assert_eq!(r.record_type, RecordType::ALLOW_NEW_SOURCES);
            assert_eq!(r.sources, vec![s(2)], "s(1) left the ALLOW list");
        }
    }
    // s(2) was sent once before the change and once with it: one ALLOW(s2) is left.
    assert_eq!(
        after
            .iter()
            .filter(|r| r.record_type == RecordType::ALLOW_NEW_SOURCES)
            .count(),
        1
    );
}

#[test]
fn member_filters_merge_per_rfc3376_3_2() {
    let t0 = Instant::now();
    let mut h = host();
    h.set_filter(t0, 1, g(1), SourceFilter::exclude([s(1), s(2)]))
        .unwrap();
    h.set_filter(t0, 2, g(1), SourceFilter::exclude([s(2), s(3)]))
        .unwrap();
    h.set_filter(t0, 3, g(1), SourceFilter::include([s(2), s(4)]))
        .unwrap();
    assert_eq!(h.interface_filter(g(1)), Some(SourceFilter::exclude([])));
    h.set_filter(t0, 3, g(1), SourceFilter::include([s(4)]))
        .unwrap();
    assert_eq!(
        h.interface_filter(g(1)),
        Some(SourceFilter::exclude([s(2)]))
    );
    assert_eq!(
        h.member_filter(3, g(1)),
        Some(&SourceFilter::include([s(4)]))
    );
    assert_eq!(h.members_accepting(g(1), s(1)).collect::<Vec<_>>(), vec![2]);
    assert_eq!(h.members_accepting(g(1), s(2)).count(), 0);
    assert_eq!(
        h.members_accepting(g(1), s(4)).collect::<Vec<_>>(),
        vec![1, 2, 3]
    );
    assert_eq!(h.members_accepting(g(2), s(4)).count(), 0);
    h.leave_all(t0, 2);
    assert_eq!(
        h.interface_filter(g(1)),
        Some(SourceFilter::exclude([s(1), s(2)]))
    );
    h.leave_all(t0, 1);
    assert_eq!(
        h.interface_filter(g(1)),
        Some(SourceFilter::include([s(4)]))
    );
    assert_eq!(h.member_filter(1, g(1)), None);
    h.leave_all(t0, 3);
    assert_eq!(h.interface_filter(g(1)), None);
    assert_eq!(h.groups().count(), 0);
    run(&mut h, t0, t0 + Duration::from_secs(10));
    assert!(h.groups.is_empty() && h.member_groups.is_empty());
}

#[test]
fn join_errors() {
    let t0 = Instant::now();
    let mut h = host_with(HostConfig {
        max_groups: 2,
        max_sources: 2,
        ..HostConfig::default()
    });
    let any = SourceFilter::any_source();
    assert_eq!(
        h.set_filter(t0, 1, Ipv4Addr::new(10, 1, 1, 1), any.clone()),
        Err(JoinError::NotMulticast)
    );
    assert_eq!(
        h.set_filter(t0, 1, g(1), SourceFilter::include([s(1), s(2), s(3)])),
        Err(JoinError::TooManySources)
    );
    assert_eq!(h.set_filter(t0, 1, g(1), any.clone()), Ok(true));
    assert_eq!(h.set_filter(t0, 1, g(2), any.clone()), Ok(true));
    assert_eq!(
        h.set_filter(t0, 1, g(3), any.clone()),
        Err(JoinError::TooManyGroups)
    );
    assert_eq!(
        h.set_filter(t0, 2, g(2), any),
        Ok(false),
        "an existing group is fine"
    );
    assert_eq!(h.groups().count(), 2);
}

#[test]
fn all_systems_is_joined_but_never_reported() {
    let t0 = Instant::now();
    let mut h = host();
    assert_eq!(
        h.set_filter(t0, 1, ALL_SYSTEMS, SourceFilter::any_source()),
        Ok(true)
    );
    assert!(drain(&mut h, t0).is_empty());
    assert_eq!(
        h.members_accepting(ALL_SYSTEMS, s(1)).collect::<Vec<_>>(),
        vec![1]
    );
    h.receive(t0, &v3_query(ANY, 10, &[]));
    assert!(run(&mut h, t0, t0 + Duration::from_secs(2)).is_empty());
    h.set_filter(t0, 1, ALL_SYSTEMS, SourceFilter::none())
        .unwrap();
    assert!(run(&mut h, t0, t0 + Duration::from_secs(2)).is_empty());
}

// ---- queries ----

fn join_quietly(h: &mut Host, t0: Instant, groups: impl IntoIterator<Item = Ipv4Addr>) -> Instant {
    for gr in groups {
        h.set_filter(t0, 1, gr, SourceFilter::any_source()).unwrap();
    }
    run(h, t0, t0 + Duration::from_secs(30));
    assert_eq!(h.poll_at(), None);
    t0 + Duration::from_secs(31)
}

#[test]
fn v2_general_query_is_answered_per_group_at_random_within_max_resp_time() {
    let t0 = Instant::now();
    let mut h = host();
    let t1 = join_quietly(&mut h, t0, (1..=20).map(g));
    h.receive(t1, &v2_query(ANY, 100));
    assert_eq!(h.version(t1), Version::V2);
    let sent = run(&mut h, t1, t1 + Duration::from_secs(20));
    assert_eq!(sent.len(), 20);
    let mut seen = BTreeSet::new();
    for x in &sent {
        let Message::V2Report { group } = x.msg else {
            panic!("{:?}", x.msg)
        };
        assert_eq!(x.dst, group);
        assert!(x.at <= t1 + Duration::from_secs(10));
        seen.insert(group);
    }
    assert_eq!(seen.len(), 20);
    let times: BTreeSet<_> = sent.iter().map(|x| x.at).collect();
    assert!(times.len() > 10, "spread at random, not fixed");
    assert_eq!(h.stats().queries_received, 1);
}

#[test]
fn v2_running_timer_is_reset_only_if_max_resp_time_is_shorter() {
    let t0 = Instant::now();
    let mut h = forced(Version::V2);
    let t1 = join_quietly(&mut h, t0, [g(1)]);
    h.receive(t1, &v2_query(ANY, 100));
    let first = h.groups[&g(1)].response_at.unwrap();
    assert!(first <= t1 + Duration::from_secs(10));
    h.receive(t1, &v2_query(ANY, 255));
    assert_eq!(
        h.groups[&g(1)].response_at,
        Some(first),
        "longer Max Resp Time: kept"
    );
    h.receive(t1, &v2_query(g(1), 1));
    let second = h.groups[&g(1)].response_at.unwrap();
    assert!(second <= t1 + ms(100), "shorter Max Resp Time: reset");
    assert_eq!(run(&mut h, t1, t1 + Duration::from_secs(30)).len(), 1);
}

#[test]
fn v2_report_from_another_host_suppresses_ours_but_leave_is_still_sent() {
    let t0 = Instant::now();
    let mut h = forced(Version::V2);
    let t1 = join_quietly(&mut h, t0, [g(1), g(2)]);
    h.receive(t1, &v2_query(ANY, 100));
    h.receive(
        t1 + ms(1),
        &packet(OTHER, g(1), Message::V2Report { group: g(1) }),
    );
    let sent = run(&mut h, t1, t1 + Duration::from_secs(20));
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].msg, Message::V2Report { group: g(2) });
    assert_eq!(h.stats().reports_suppressed, 1);
    assert!(!h.groups[&g(1)].last_reporter);
    let t2 = t1 + Duration::from_secs(30);
    h.set_filter(t2, 1, g(1), SourceFilter::none()).unwrap();
    assert_eq!(drain(&mut h, t2)[0].msg, Message::Leave { group: g(1) });
}

#[test]
fn v1_report_also_suppresses_and_v3_mode_never_suppresses() {
    let t0 = Instant::now();
    let mut h = forced(Version::V2);
    let t1 = join_quietly(&mut h, t0, [g(1)]);
    h.receive(t1, &v2_query(ANY, 100));
    h.receive(t1, &packet(OTHER, g(1), Message::V1Report { group: g(1) }));
    assert!(run(&mut h, t1, t1 + Duration::from_secs(20)).is_empty());

    let mut h = host();
    let t1 = join_quietly(&mut h, t0, [g(1)]);
    h.receive(t1, &v3_query(ANY, 100, &[]));
    h.receive(t1, &packet(OTHER, g(1), Message::V2Report { group: g(1) }));
    let sent = records(&run(&mut h, t1, t1 + Duration::from_secs(20)));
    assert_eq!(sent, vec![rec(RecordType::MODE_IS_EXCLUDE, g(1), &[])]);
}

#[test]
fn group_specific_queries_to_all_systems_from_zero_source_are_answered() {
    let t0 = Instant::now();
    // v2
    let mut h = forced(Version::V2);
    let t1 = join_quietly(&mut h, t0, [g(1), g(2)]);
    let q = Message::Query(Query {
        max_resp_code: 10,
        group: g(1),
        v3: None,
    });
    h.receive(t1, &packet(ANY, ALL_SYSTEMS, q));
    let sent = run(&mut h, t1, t1 + Duration::from_secs(20));
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].msg, Message::V2Report { group: g(1) });
    assert!(sent[0].at <= t1 + Duration::from_secs(1));
    // v3, sent to the group this time, and to 224.0.0.1
    for dst in [g(1), ALL_SYSTEMS] {
        let mut h = host();
        let t1 = join_quietly(&mut h, t0, [g(1), g(2)]);
        let v3 = QueryV3 {
            s_flag: true,
            qrv: 2,
            qqic: 125,
            sources: vec![],
        };
        let q = Message::Query(Query {
            max_resp_code: 10,
            group: g(1),
            v3: Some(v3),
        });
        h.receive(t1, &packet(ANY, dst, q));
        let sent = run(&mut h, t1, t1 + Duration::from_secs(20));
        assert_eq!(
            records(&sent),
            vec![rec(RecordType::MODE_IS_EXCLUDE, g(1), &[])]
        );
        assert!(sent[0].at <= t1 + Duration::from_secs(1));
    }
}

#[test]
fn v3_general_query_answers_every_group_with_its_current_state() {
    let t0 = Instant::now();
    let mut h = host();
    h.set_filter(t0, 1, g(1), SourceFilter::any_source())
        .unwrap();
    h.set_filter(t0, 1, g(2), SourceFilter::include([s(1), s(2)]))
        .unwrap();
    h.set_filter(t0, 1, g(3), SourceFilter::exclude([s(3)]))
        .unwrap();
    run(&mut h, t0, t0 + Duration::from_secs(30));
    let t1 = t0 + Duration::from_secs(40);
    h.receive(t1, &v3_query(ANY, 100, &[]));
    let sent = run(&mut h, t1, t1 + Duration::from_secs(30));
    assert_eq!(sent.len(), 1, "one report holds all three records");
    assert!(sent[0].at <= t1 + Duration::from_secs(10));
    assert_eq!(
        records(&sent),
        vec![
            rec(RecordType::MODE_IS_EXCLUDE, g(1), &[]),
            rec(RecordType::MODE_IS_INCLUDE, g(2), &[s(1), s(2)]),
            rec(RecordType::MODE_IS_EXCLUDE, g(3), &[s(3)]),
        ]
    );
}

#[test]
fn v3_pending_general_response_sooner_covers_later_queries() {
    let t0 = Instant::now();
    let mut h = host();
    let t1 = join_quietly(&mut h, t0, [g(1)]);
    h.receive(t1, &v3_query(ANY, 1, &[])); // within 0.1 s
    let general = h.general_at.unwrap();
    assert!(general <= t1 + ms(100));
    h.receive(t1, &v3_query(ANY, 200, &[]));
    assert_eq!(
        h.general_at,
        Some(general),
        "rule 1: the sooner response stands"
    );
    h.receive(t1, &v3_query(g(1), 200, &[]));
    assert_eq!(
        h.groups[&g(1)].response_at,
        None,
        "rule 1: no group response needed"
    );
    assert_eq!(
        records(&run(&mut h, t1, t1 + Duration::from_secs(60))).len(),
        1
    );
}

#[test]
fn v3_group_and_source_specific_queries_accumulate_sources() {
    let t0 = Instant::now();
    let mut h = host();
    h.set_filter(t0, 1, g(1), SourceFilter::include([s(1), s(2), s(3)]))
        .unwrap();
    h.set_filter(t0, 1, g(2), SourceFilter::exclude([s(1)]))
        .unwrap();
    let t1 = t0 + Duration::from_secs(30);
    run(&mut h, t0, t1);
    // INCLUDE: the queried sources we include.
    h.receive(t1, &v3_query(g(1), 10, &[s(1), s(9)]));
    h.receive(t1, &v3_query(g(1), 10, &[s(2)]));
    // EXCLUDE: the queried sources we do not exclude.
    h.receive(t1, &v3_query(g(2), 10, &[s(1), s(7)]));
    let mut sent = records(&run(&mut h, t1, t1 + Duration::from_secs(2)));
    sent.sort_by_key(|r| r.group);
    assert_eq!(
        sent,
        vec![
            rec(RecordType::MODE_IS_INCLUDE, g(1), &[s(1), s(2)]),
            rec(RecordType::MODE_IS_INCLUDE, g(2), &[s(7)]),
        ]
    );
    // Nothing wanted among the queried sources: no report at all.
    let t2 = t1 + Duration::from_secs(10);
    h.receive(t2, &v3_query(g(1), 10, &[s(9)]));
    assert!(run(&mut h, t2, t2 + Duration::from_secs(2)).is_empty());
    // A group-specific query clears the recorded list: the whole state goes out.
    let t3 = t2 + Duration::from_secs(10);
    h.receive(t3, &v3_query(g(1), 10, &[s(9)]));
    h.receive(t3, &v3_query(g(1), 10, &[]));
    h.receive(t3, &v3_query(g(1), 10, &[s(1)]));
    let sent = records(&run(&mut h, t3, t3 + Duration::from_secs(2)));
    assert_eq!(
        sent,
        vec![rec(RecordType::MODE_IS_INCLUDE, g(1), &[s(1), s(2), s(3)])]
    );
    // Queries for groups we are not in: nothing.
    h.receive(t3, &v3_query(g(5), 10, &[]));
    assert!(run(&mut h, t3, t3 + Duration::from_secs(2)).is_empty());
}

// ---- compatibility modes ----

#[test]
fn querier_present_timers_set_the_compatibility_mode() {
    let t0 = Instant::now();
    let mut h = host();
    h.receive(t0, &v1_query());
    assert_eq!(h.version(t0), Version::V1);
    assert_eq!(h.version(t0 + Duration::from_secs(259)), Version::V1);
    assert_eq!(
        h.version(t0 + Duration::from_secs(260)),
        Version::V3,
        "2 × 125 s + 10 s"
    );
    let t1 = t0 + Duration::from_secs(100);
    h.receive(t1, &v2_query(ANY, 100));
    assert_eq!(h.version(t1), Version::V1, "v1 wins while its timer runs");
    assert_eq!(h.version(t0 + Duration::from_secs(300)), Version::V2);
    assert_eq!(h.version(t1 + Duration::from_secs(260)), Version::V3);
    // A v3 query's QRV, QQIC and Max Resp Time set the timeout: 3 × 60 s + 5 s.
    let t2 = t0 + Duration::from_secs(1000);
    h.receive(t2, &v3_query_full(ANY, 50, 3, 60, &[]));
    h.receive(t2, &v2_query(ANY, 100));
    assert_eq!(h.version(t2 + Duration::from_secs(184)), Version::V2);
    assert_eq!(h.version(t2 + Duration::from_secs(185)), Version::V3);
}

#[test]
fn switching_down_cancels_pending_v3_reports_and_v1_mode_answers_with_v1_reports() {
    let t0 = Instant::now();
    let mut h = host();
    h.set_filter(t0, 1, g(1), SourceFilter::include([s(1)]))
        .unwrap();
    assert_eq!(records(&drain(&mut h, t0)).len(), 1);
    // The v3 retransmission is pending; a v1 query switches to v1 mode and cancels it.
    h.receive(t0 + ms(1), &v1_query());
    let sent = run(&mut h, t0, t0 + Duration::from_secs(30));
    assert_eq!(sent.len(), 1, "only the answer to the v1 query");
    assert_eq!(sent[0].msg, Message::V1Report { group: g(1) });
    assert!(sent[0].at <= t0 + Duration::from_secs(11));
    // Joins in v1 mode: v1 reports; after the timeout, v3 again.
    let t1 = t0 + Duration::from_secs(40);
    h.set_filter(t1, 1, g(2), SourceFilter::any_source())
        .unwrap();
    assert_eq!(drain(&mut h, t1)[0].msg, Message::V1Report { group: g(2) });
    let t2 = t0 + Duration::from_secs(300);
    h.set_filter(t2, 1, g(3), SourceFilter::any_source())
        .unwrap();
    assert_eq!(
        records(&drain(&mut h, t2)),
        vec![rec(RecordType::CHANGE_TO_EXCLUDE, g(3), &[])]
    );
}

#[test]
fn forced_version_pins_the_mode() {
    let t0 = Instant::now();
    let mut h = forced(Version::V2);
    let t1 = join_quietly(&mut h, t0, [g(1)]);
    h.receive(t1, &v1_query());
    assert_eq!(h.version(t1), Version::V2);
    h.receive(t1 + ms(1), &v3_query(ANY, 10, &[]));
    let sent = run(&mut h, t1, t1 + Duration::from_secs(20));
    assert!(sent
        .iter()
        .all(|x| x.msg == Message::V2Report { group: g(1) }));
    let mut h = forced(Version::V3);
    h.receive(t0, &v1_query());
    assert_eq!(h.version(t0), Version::V3);
}

// ---- robustness of input ----

fn without_router_alert(p: &[u8]) -> Vec<u8> {
    let mut q = vec![0x45];
    q.extend_from_slice(&p[1..20]);
    let total = (p.len() - 4) as u16;
    q[2..4].copy_from_slice(&total.to_be_bytes());
    q[10] = 0;
    q[11] = 0;
    let sum = checksum(&q);
    q[10..12].copy_from_slice(&sum.to_be_bytes());
    q.extend_from_slice(&p[24..]);
    q
}

#[test]
fn malformed_input_is_counted_and_ignored() {
    let t0 = Instant::now();
    let mut h = host();
    let t1 = join_quietly(&mut h, t0, [g(1)]);
    h.receive(t1, &[]);
    h.receive(t1, &[0x45; 40]);
    let mut bad = v2_query(ANY, 100);
    bad[30] ^= 0xff; // IGMP checksum no longer matches
    h.receive(t1, &bad);
    let mut ten = Message::Query(Query {
        max_resp_code: 100,
        group: ANY,
        v3: None,
    })
    .to_bytes();
    ten.extend_from_slice(&[0, 0]);
    ten[2..4].copy_from_slice(&[0, 0]);
    let sum = checksum(&ten);
    ten[2..4].copy_from_slice(&sum.to_be_bytes());
    h.receive(t1, &build_ipv4(QUERIER, ALL_SYSTEMS, 0, &ten));
    let q = v2_query(ANY, 100);
    h.receive(t1, &q[..q.len() - 1]);
    assert_eq!(h.stats().malformed, 5);
    assert_eq!(h.stats().queries_received, 0);
    assert_eq!(h.poll_at(), None);
    // Others' v3 reports and leaves are ignored; our own looped report too.
    let r = Message::V3Report {
        records: vec![rec(RecordType::MODE_IS_EXCLUDE, g(1), &[])],
    };
    h.receive(t1, &packet(OTHER, ALL_V3_ROUTERS, r));
    h.receive(
        t1,
        &packet(OTHER, ALL_ROUTERS, Message::Leave { group: g(1) }),
    );
    assert_eq!(h.stats().ignored, 2);
    // A general query to a group address is ignored (RFC 3376 §9.1).
    h.receive(
        t1,
        &packet(
            QUERIER,
            g(1),
            Message::Query(Query {
                max_resp_code: 10,
                group: ANY,
                v3: None,
            }),
        ),
    );
    assert_eq!(h.stats().ignored, 3);
    assert_eq!(h.poll_at(), None);
    assert_eq!(h.version(t1), Version::V3);
    // A query without Router Alert is accepted and counted.
    h.receive(t1, &without_router_alert(&v3_query(ANY, 10, &[])));
    assert_eq!(h.stats().queries_without_router_alert, 1);
    let sent = drain(&mut h, t1 + Duration::from_secs(2));
    assert_eq!(sent.len(), 1);
    let ours = packet(ME, ALL_V3_ROUTERS, sent[0].msg.clone());
    h.receive(t1, &ours);
    assert_eq!(h.stats().own_looped, 1);
}

#[test]
fn time_going_backwards_does_no_harm() {
    let t0 = Instant::now();
    let t9 = t0 + Duration::from_secs(9);
    let mut h = host();
    h.set_filter(t9, 1, g(1), SourceFilter::any_source())
        .unwrap();
    assert!(h.poll(t0).is_none(), "nothing fires before its time");
    h.receive(t0, &v2_query(ANY, 100));
    h.receive(t0, &v1_query());
    h.set_filter(t0, 1, g(2), SourceFilter::include([s(1)]))
        .unwrap();
    run(&mut h, t0, t0 + Duration::from_secs(100));
    h.receive(t0, &v3_query(ANY, 255, &[]));
    drain(&mut h, t9);
    assert_eq!(h.stats().malformed, 0);
}

// ---- scale and MTU ----

#[test]
fn five_thousand_groups_v3() {
    let t0 = Instant::now();
    let mut h = host();
    let all: BTreeSet<Ipv4Addr> = (1..=5000).map(g).collect();
    for (i, gr) in all.iter().enumerate() {
        h.set_filter(t0, i as u64 % 100, *gr, SourceFilter::any_source())
            .unwrap();
    }
    let joins = run(&mut h, t0, t0 + Duration::from_secs(30));
    let recs = records(&joins);
    assert_eq!(recs.len(), 10_000, "each group reported robustness times");
    assert!(
        joins.len() < 200,
        "records share reports ({} reports)",
        joins.len()
    );
    let t1 = t0 + Duration::from_secs(60);
    h.receive(t1, &v3_query(ANY, 100, &[]));
    let sent = run(&mut h, t1, t1 + Duration::from_secs(20));
    assert!(sent.iter().all(|x| x.at <= t1 + Duration::from_secs(10)));
    let answered: BTreeSet<Ipv4Addr> = records(&sent)
        .into_iter()
        .inspect(|r| assert_eq!(r.record_type, RecordType::MODE_IS_EXCLUDE))
        .map(|r| r.group)
        .collect();
    assert_eq!(answered, all);
    assert_eq!(sent.len(), 5000_usize.div_ceil((1500 - 24 - 8) / 8));
}

#[test]
fn five_thousand_groups_v2() {
    let t0 = Instant::now();
    let mut h = forced(Version::V2);
    let all: BTreeSet<Ipv4Addr> = (1..=5000).map(g).collect();
    for (i, gr) in all.iter().enumerate() {
        h.set_filter(t0, i as u64, *gr, SourceFilter::any_source())
            .unwrap();
    }
    assert_eq!(drain(&mut h, t0).len(), 5000);
    assert_eq!(run(&mut h, t0, t0 + Duration::from_secs(30)).len(), 5000);
    let t1 = t0 + Duration::from_secs(60);
    h.receive(t1, &v2_query(ANY, 100));
    let sent = run(&mut h, t1, t1 + Duration::from_secs(20));
    assert_eq!(sent.len(), 5000);
    assert!(sent.iter().all(|x| x.at <= t1 + Duration::from_secs(10)));
    let answered: BTreeSet<Ipv4Addr> = sent
        .iter()
        .map(|x| match x.msg {
            Message::V2Report { group } => group,
            ref other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(answered, all);
    let times: BTreeSet<Instant> = sent.iter().map(|x| x.at).collect();
    assert!(times.len() > 4000, "spread over the interval");
}

#[test]
fn reports_are_split_to_fit_the_mtu() {
    let t0 = Instant::now();
    let mut h = host_with(HostConfig {
        mtu: 576,
        ..HostConfig::default()
    });
    let sources: Vec<Ipv4Addr> = (0..300u32)
        .map(|i| Ipv4Addr::from(0x0a00_0000 + i))
        .collect();
    // One INCLUDE record of 300 sources does not fit: split into several ALLOW records.
    h.set_filter(t0, 1, g(1), SourceFilter::include(sources.iter().copied()))
        .unwrap();
    let first = drain(&mut h, t0);
    assert!(first.len() > 1);
    let got: BTreeSet<Ipv4Addr> = records(&first)
        .into_iter()
        .flat_map(|r| r.sources)
        .collect();
    assert_eq!(got.len(), 300);
    // 60 groups of 30 sources each: 128-octet records, four to a report (decode() checks the
    // MTU). g(1)'s pending retransmission rides along: 3 more records.
    let t1 = t0 + ms(1);
    for n in 10..70 {
        h.set_filter(
            t1,
            1,
            g(n),
            SourceFilter::exclude(sources[..30].iter().copied()),
        )
        .unwrap();
    }
    let sent = drain(&mut h, t1);
    let recs = records(&sent);
    let changes = recs
        .iter()
        .filter(|r| r.record_type == RecordType::CHANGE_TO_EXCLUDE);
    assert_eq!(changes.count(), 60);
    assert_eq!(recs.iter().filter(|r| r.group == g(1)).count(), 3);
    // g(1): 544 + 544 octets, then 136 + 3 × 128 in the third report; 57 more records, four
    // to a report: 15 more.
    assert_eq!(sent.len(), 18);
}

// ---- property tests ----

#[derive(Clone, Debug)]
enum Op {
    Set(u64, u16, bool, Vec<u8>),
    LeaveAll(u64),
    Receive(Vec<u8>),
    Advance(u64),
    Back(u64),
}

fn query_strategy() -> impl Strategy<Value = Vec<u8>> {
    let group = prop_oneof![Just(ANY), (0u16..4).prop_map(g)];
    prop_oneof![
        Just(v1_query()),
        (group.clone(), any::<u8>()).prop_map(|(gr, c)| v2_query(gr, c)),
        (
            group.clone(),
            any::<u8>(),
            0u8..8,
            any::<u8>(),
            proptest::collection::vec(0u8..6, 0..4)
        )
            .prop_map(|(gr, c, qrv, qqic, src)| {
                let src: Vec<_> = src.into_iter().map(s).collect();
                v3_query_full(gr, c, qrv, qqic, &src)
            }),
        (0u16..4).prop_map(|n| packet(OTHER, g(n), Message::V2Report { group: g(n) })),
    ]
}

fn op_strategy() -> impl Strategy<Value = Op> {
    prop_oneof![
        (
            0u64..4,
            0u16..4,
            any::<bool>(),
            proptest::collection::vec(0u8..6, 0..4)
        )
            .prop_map(|(m, gr, inc, src)| Op::Set(m, gr, inc, src)),
        (0u64..4).prop_map(Op::LeaveAll),
        query_strategy().prop_map(Op::Receive),
        (0u64..30_000).prop_map(Op::Advance),
        (0u64..1_000).prop_map(Op::Back),
    ]
}

/// Mutates a valid packet; with `fix`, recomputes both checksums so parsing goes deeper.
fn mutate(mut p: Vec<u8>, flips: &[(usize, u8)], cut: Option<usize>, fix: bool) -> Vec<u8> {
    for &(i, x) in flips {
        let n = p.len();
        p[i % n] ^= x;
    }
    if let Some(c) = cut {
        let keep = c % (p.len() + 1);
        p.truncate(keep);
    }
    if fix && p.len() >= 20 {
        let ihl = (usize::from(p[0] & 0xf) * 4).clamp(20, p.len());
        p[10] = 0;
        p[11] = 0;
        let sum = checksum(&p[..ihl]);
        p[10..12].copy_from_slice(&sum.to_be_bytes());
        if p.len() >= ihl + 4 {
            p[ihl + 2] = 0;
            p[ihl + 3] = 0;
            let sum = checksum(&p[ihl..]);
            p[ihl + 2..ihl + 4].copy_from_slice(&sum.to_be_bytes());
        }
    }
    p
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..120), v in 0usize..3) {
        let t0 = Instant::now();
        let mut h = match v { 0 => host(), 1 => forced(Version::V2), _ => forced(Version::V1) };
        h.set_filter(t0, 1, g(1), SourceFilter::include([s(1)])).unwrap();
        h.receive(t0, &bytes);
        run(&mut h, t0, t0 + Duration::from_secs(400));
    }

    #[test]
    fn mutated_queries_never_panic(
        q in query_strategy(),
        flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..4),
        cut in proptest::option::of(any::<usize>()),
        fix in any::<bool>(),
    ) {
        let t0 = Instant::now();
        let mut h = host();
        h.set_filter(t0, 1, g(1), SourceFilter::exclude([s(1)])).unwrap();
        h.set_filter(t0, 1, g(2), SourceFilter::include([s(2)])).unwrap();
        h.receive(t0, &mutate(q, &flips, cut, fix));
        run(&mut h, t0, t0 + Duration::from_secs(4000));
    }

    /// Any sequence of operations: no panic, every packet well-formed, and the interface state
    /// always the merge of the member filters.
    #[test]
    fn operation_sequences_keep_the_invariants(ops in proptest::collection::vec(op_strategy(), 0..40), seed in any::<u64>()) {
        let t0 = Instant::now() + Duration::from_secs(10);
        let mut h = Host::new(HostConfig { mtu: 100, ..HostConfig::default() }, seed);
        h.set_source(ME);
        let mut now = t0;
        let mut model: BTreeMap<(u16, u64), SourceFilter> = BTreeMap::new();
        for op in ops {
            match op {
                Op::Set(m, gr, inc, src) => {
                    let src = src.into_iter().map(s);
                    let f = if inc { SourceFilter::include(src) } else { SourceFilter::exclude(src) };
                    if f.is_empty_include() { model.remove(&(gr, m)); } else { model.insert((gr, m), f.clone()); }
                    h.set_filter(now, m, g(gr), f).unwrap();
                }
                Op::LeaveAll(m) => {
                    model.retain(|k, _| k.1 != m);
                    h.leave_all(now, m);
                }
                Op::Receive(p) => h.receive(now, &p),
                Op::Advance(d) => now += ms(d),
                Op::Back(d) => now = now.checked_sub(ms(d)).unwrap_or(now).max(t0),
            }
            h.check_invariants();
            drain(&mut h, now);
            h.check_invariants();
            for n in 0..4 {
                let merged = merge(model.iter().filter(|(k, _)| k.0 == n).map(|(_, f)| f));
                let expect = (!merged.is_empty_include()).then_some(merged);
                prop_assert_eq!(h.interface_filter(g(n)), expect);
            }
        }
        run(&mut h, now, now + Duration::from_secs(4000));
        h.check_invariants();
        prop_assert_eq!(h.stats().malformed, 0);
    }
}
