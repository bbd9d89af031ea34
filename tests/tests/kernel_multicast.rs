//! Tier 3, IP multicast (issue 5): the stack as an IGMP host (RFC 2236, RFC 3376) behind a
//! Linux bridge that snoops and acts as the querier, with kernel group members beside it.
//!
//! The network is [`ws2_tests::bridge::QuerierLan`]: br0 (querier, 10.77.N.1) in namespace A;
//! the stack (10.77.N.2) and kernel member B (10.77.N.3) behind br0's port `h0b` through a hub;
//! kernel member C (10.77.N.4) on br0's port `c0a`. Subnets 10.77.40–49 are this file's.
//!
//! What the tests believe: the bridge's membership table (`bridge mdb show`) and `tcpdump` on
//! the stack's TAP, never the stack's own counters. Captures are taken on the TAP (namespace
//! side), so a query's timestamp is when the bridge handed it to the stack's link and a
//! report's is when the stack wrote it.
//!
//! Needs root, `/dev/net/tun`, `ip`/`bridge` (iproute2) and `tcpdump`. Run with
//! `cargo test --release -p ws2-tests --test kernel_multicast -- --test-threads=1`; the file
//! takes about two minutes, most of it the 60 s timer test.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::{Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use ws2_stack::winsock::*;
use ws2_stack::WsaError;
use ws2_tests::bridge::*;
use ws2_tests::capture::{require_tcpdump, Frame};
use ws2_tests::netns::{require_netns, TAP_NAME};
use ws2_tests::wire::*;
use ws2_tests::{at, bind, new_socket, recvfrom, sa, sendto, set_int, started};

/// One test of this file at a time, also when libtest runs tests in parallel (as `cargo test
/// --workspace` does): the timing test measures the stack's timers to 20 ms, which a
/// neighbouring test's 1,000 joins and captures on two cores would blur.
fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Sets up a [`QuerierLan`] or explains why the test cannot run (no privileges, no tcpdump).
fn lan(prefix: &str, subnet: u8, querier: Querier) -> Option<QuerierLan> {
    if require_netns().is_some() || require_tcpdump().is_some() {
        return None;
    }
    Some(QuerierLan::new(prefix, subnet, querier, |_| {}).expect("set up the querier LAN"))
}

/// The fixture itself, kernel members only: a kernel member's join shows in br0's mdb on the
/// member's own port and on the shared port, and the TAP sees br0's queries in the configured
/// version. A failure here is the test network's, not the stack's.
#[test]
fn bridge_fixture_with_kernel_members() {
    let _serial = serial();
    if require_netns().is_some() {
        return;
    }
    for version in [3, 2] {
        let Some(lan) = lan("ws2-mcfx", 40, Querier::default().version(version)) else {
            return;
        };
        let capture = lan.capture(TAP_NAME, "igmp");
        // Two groups: a Linux bridge forwards a v2 report (sent to the group) to the group's
        // other members, whose kernels then suppress their own reports (RFC 2236 §3); with one
        // group the shared port's entry would time out in v2 while C answers for both.
        let (group, other) = (Ipv4Addr::new(239, 77, 0, 1), Ipv4Addr::new(239, 77, 0, 2));
        let own = lan.kernel_socket(Member::Own, 7000).unwrap();
        own.join_multicast_v4(&other, &lan.own_ip).unwrap();
        let shared = lan.kernel_socket(Member::Shared, 7000).unwrap();
        shared.join_multicast_v4(&group, &lan.shared_ip).unwrap();
        let took = lan
            .wait_mdb(Duration::from_secs(3), |t| {
                t.iter().any(|e| e.port == OWN_PORT && e.group == other)
                    && t.iter().any(|e| e.port == SHARED_PORT && e.group == group)
            })
            .unwrap_or_else(|t| panic!("v{version}: mdb {t:?}\n{}", lan.bridge_details()));
        eprintln!("v{version}: both kernel joins in the mdb after {took:.2?}");
        // Kept through queries: longer than the membership interval (2.4 s).
        thread::sleep(Duration::from_millis(3000));
        let groups = lan.groups_on(SHARED_PORT).unwrap();
        assert_eq!(
            groups,
            vec![group],
            "v{version}: the shared member kept its entry"
        );
        let frames = capture.finish();
        let igmp: Vec<IgmpFrame> = frames.iter().filter_map(igmp_of).collect();
        let queries: Vec<&IgmpFrame> = igmp
            .iter()
            .filter(|f| matches!(f.msg, Igmp::Query { .. }) && f.ip.src == lan.querier_ip)
            .collect();
        assert!(
            queries.len() >= 2,
            "v{version}: at least two queries from {} in 2.5 s, got {igmp:#?}",
            lan.querier_ip
        );
        for q in &queries {
            let Igmp::Query {
                version: v,
                max_resp,
                ..
            } = q.msg
            else {
                unreachable!()
            };
            assert_eq!(v, version, "query version");
            assert_eq!(
                max_resp, lan.querier.query_response_interval,
                "Max Resp Time"
            );
            assert!(q.ip.router_alert && q.ip.ttl == 1 && q.checksum_ok);
        }
        // The shared member's reports reach the stack's TAP too (the hub floods them).
        assert!(
            igmp.iter()
                .any(|f| f.ip.src == lan.shared_ip && f.msg.reports(group)),
            "v{version}: the shared member's report is on the TAP: {igmp:#?}"
        );
        // Data: the own member sends, the shared member (behind the same port as the stack)
        // receives through the bridge's mdb.
        own.set_multicast_ttl_v4(1).unwrap();
        own.send_to(b"fixture", SocketAddrV4::new(group, 7000))
            .unwrap();
        let mut buf = [0u8; 64];
        let (n, from) = shared.recv_from(&mut buf).expect("kernel to kernel");
        assert_eq!(&buf[..n], b"fixture");
        assert_eq!(from, SocketAddr::V4(SocketAddrV4::new(lan.own_ip, 7000)));
    }
}

// ---------------------------------------------------------------------------------------------
// Helpers on the stack's side (the Winsock face) and on the capture.

/// Slack for a report's delay as captured on the TAP: the query is stamped when the bridge
/// writes it to the TAP, the report when the stack's write arrives; the stack's read, its timer
/// wheel and its write sit in between.
const CAPTURE_SLACK: Duration = Duration::from_millis(20);

/// A multipoint UDP socket (`WSA_FLAG_MULTIPOINT_C_LEAF | WSA_FLAG_MULTIPOINT_D_LEAF`), the IP
/// multicast entry (CHECKLIST 39).
fn multipoint_socket(ws: &Winsock) -> SOCKET {
    ws.WSASocket(
        AF_INET,
        SOCK_DGRAM,
        IPPROTO_UDP,
        None,
        0,
        WSA_FLAG_MULTIPOINT_C_LEAF | WSA_FLAG_MULTIPOINT_D_LEAF | WSA_FLAG_OVERLAPPED,
    )
    .expect("WSASocket with C_LEAF | D_LEAF")
}

/// `WSAJoinLeaf(s, group:port, …, flags)`, blocking; checks it returns `s` (CHECKLIST 394).
#[track_caller]
fn join_leaf(ws: &Winsock, s: SOCKET, group: SocketAddrV4, flags: u32) {
    let got = ws
        .WSAJoinLeaf(
            s,
            Some(&sa(group)),
            SOCKADDR_IN_LEN,
            None,
            None,
            None,
            None,
            flags,
        )
        .unwrap_or_else(|e| panic!("WSAJoinLeaf({group}, {flags:#x}): {e:?}"));
    assert_eq!(got, s, "WSAJoinLeaf returns the descriptor it was given");
}

/// `WSAIoctl(s, code, &(v as i32))` for the two multipoint ioctls.
#[track_caller]
fn ioctl_int(ws: &Winsock, s: SOCKET, code: u32, v: i32) {
    let mut n = 0u32;
    ws.WSAIoctl(
        s,
        code,
        &v.to_le_bytes(),
        &mut [0u8; 0],
        Some(&mut n),
        None,
        None,
    )
    .unwrap_or_else(|e| panic!("WSAIoctl({code:#x}, {v}): {e:?}"));
}

/// The next datagram on `s` within `wait`, or `None` (`WSAETIMEDOUT`).
fn recv_within(ws: &Winsock, s: SOCKET, wait: Duration) -> Option<(Vec<u8>, SocketAddrV4)> {
    set_int(ws, s, SOL_SOCKET, SO_RCVTIMEO, wait.as_millis() as i32).expect("SO_RCVTIMEO");
    let mut buf = [0u8; 2048];
    match recvfrom(ws, s, &mut buf, 0) {
        Ok((n, from)) => Some((buf[..n as usize].to_vec(), from)),
        Err(WsaError::WSAETIMEDOUT) => None,
        Err(e) => panic!("recvfrom: {e:?}"),
    }
}

/// The next datagram on a kernel socket within `wait`, or `None`.
fn kernel_recv_within(sock: &std::net::UdpSocket, wait: Duration) -> Option<(Vec<u8>, SocketAddr)> {
    sock.set_read_timeout(Some(wait)).unwrap();
    let mut buf = [0u8; 2048];
    match sock.recv_from(&mut buf) {
        Ok((n, from)) => Some((buf[..n].to_vec(), from)),
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ) =>
        {
            None
        }
        Err(e) => panic!("kernel recv: {e}"),
    }
}

/// The realtime clock in nanoseconds (the clock tcpdump stamps frames with).
fn wall_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_nanos() as u64
}

/// The IGMP frames in `frames` the stack sent (by Ethernet or IP source), each checked for what
/// every IGMP message of a host must carry (RFC 2236 §2, RFC 3376 §4): the stack's own
/// addresses, TTL 1, the Router Alert option, right IP and IGMP checksums, a report or leave
/// type, and the destination each type goes to (v3 reports 224.0.0.22, v2 reports the group,
/// leaves 224.0.0.2) with the matching multicast MAC.
#[track_caller]
fn stack_igmp(lan: &QuerierLan, frames: &[Frame]) -> Vec<IgmpFrame> {
    let mac = lan.stack_mac();
    let mine: Vec<IgmpFrame> = frames
        .iter()
        .filter_map(igmp_of)
        .filter(|f| f.ip.src_mac == mac || f.ip.src == lan.stack_ip)
        .collect();
    for f in &mine {
        let what = format!("stack IGMP frame {f:?}");
        assert_eq!(f.ip.src, lan.stack_ip, "{what}: IP source");
        assert_eq!(f.ip.src_mac, mac, "{what}: Ethernet source");
        assert_eq!(f.ip.ttl, 1, "{what}: TTL");
        assert!(
            f.ip.router_alert,
            "{what}: Router Alert option (94 04 00 00)"
        );
        assert!(f.ip.header_ok, "{what}: IP header checksum");
        assert!(f.checksum_ok, "{what}: IGMP checksum");
        let dst = match &f.msg {
            Igmp::ReportV3(records) => {
                assert!(!records.is_empty(), "{what}: a v3 report with no records");
                Ipv4Addr::new(224, 0, 0, 22)
            }
            Igmp::ReportV2(g) | Igmp::ReportV1(g) => *g,
            Igmp::Leave(_) => Ipv4Addr::new(224, 0, 0, 2),
            other => panic!("{what}: a host sends reports and leaves only, not {other:?}"),
        };
        assert_eq!(f.ip.dst, dst, "{what}: IP destination");
        let o = dst.octets();
        assert_eq!(
            f.ip.dst_mac,
            [0x01, 0x00, 0x5e, o[1] & 0x7f, o[2], o[3]],
            "{what}: Ethernet destination"
        );
    }
    mine
}

/// The general queries br0 sent (as captured), in order.
fn general_queries(lan: &QuerierLan, frames: &[Frame]) -> Vec<(u64, Duration, u8)> {
    frames
        .iter()
        .filter_map(igmp_of)
        .filter(|f| f.ip.src == lan.querier_ip)
        .filter_map(|f| match f.msg {
            Igmp::Query {
                version,
                max_resp,
                group,
                ..
            } if group.is_unspecified() => Some((f.at, max_resp, version)),
            _ => None,
        })
        .collect()
}

/// The records of a v3 report naming `group`.
fn records_for(msg: &Igmp, group: Ipv4Addr) -> Vec<GroupRecord> {
    match msg {
        Igmp::ReportV3(records) => records
            .iter()
            .filter(|r| r.group == group)
            .cloned()
            .collect(),
        _ => Vec::new(),
    }
}

/// Whether br0 has `group` on the stack's port.
fn on_stack_port(table: &[MdbEntry], group: Ipv4Addr) -> bool {
    table
        .iter()
        .any(|e| e.port == SHARED_PORT && e.group == group)
}

/// Sets up the LAN with a started Winsock on the stack.
fn lan_and_winsock(prefix: &str, subnet: u8, querier: Querier) -> Option<(QuerierLan, Winsock)> {
    let lan = lan(prefix, subnet, querier)?;
    let ws = started(&lan.stack);
    Some((lan, ws))
}

// ---------------------------------------------------------------------------------------------
// The acceptance tests.

/// Conformance: 394, 395 — issue 5 acceptance 1: `bridge mdb show` lists the group on the
/// stack's port within 1 s of a blocking `WSAJoinLeaf(JL_BOTH)`, whose report is on the wire
/// before the call returns, and keeps it for 10 s of queries a second (the bridge forgets a
/// membership nobody confirms after 2.4 s).
#[test]
fn join_leaf_shows_in_bridge_mdb_and_stays() {
    let _serial = serial();
    let Some((lan, ws)) = lan_and_winsock("ws2-mcjoin", 41, Querier::default()) else {
        return;
    };
    let group = Ipv4Addr::new(239, 77, 41, 1);
    let capture = lan.capture(TAP_NAME, "igmp");
    let s = multipoint_socket(&ws);
    let before = Instant::now();
    join_leaf(&ws, s, at(group, 7041), JL_BOTH);
    let returned_at = wall_ns();
    let took = lan
        .wait_mdb(Duration::from_secs(1), |t| on_stack_port(t, group))
        .map(|_| before.elapsed())
        .unwrap_or_else(|t| panic!("not in the mdb 1 s after the join: {t:?}"));
    eprintln!("mdb lists {group} on {SHARED_PORT} {took:.2?} after WSAJoinLeaf was called");

    let end = Instant::now() + Duration::from_secs(10);
    let mut polls = 0;
    while Instant::now() < end {
        let table = lan.mdb().unwrap();
        assert!(
            on_stack_port(&table, group),
            "the entry left the mdb after {:.1?}: {table:?}",
            before.elapsed()
        );
        polls += 1;
        thread::sleep(Duration::from_millis(100));
    }
    let frames = capture.finish();
    let mine = stack_igmp(&lan, &frames);
    let first = mine
        .iter()
        .find(|f| f.msg.reports(group))
        .expect("a report for the group");
    assert!(
        first.at <= returned_at,
        "the blocking join returned {} µs before its report was on the wire",
        (first.at - returned_at) / 1000
    );
    let queries = general_queries(&lan, &frames);
    let answers = mine.iter().filter(|f| f.msg.reports(group)).count();
    eprintln!(
        "{polls} mdb reads, all with the entry; {} queries, {answers} stack reports",
        queries.len()
    );
    assert!(queries.len() >= 8, "about one query a second: {queries:?}");
    assert!(
        answers > queries.len(),
        "the join's report(s) and one answer per query"
    );
    ws.closesocket(s).unwrap();
}

/// Issue 5 acceptance 2 (RFC 3376 §5.2, RFC 2236 §3): with a Max Resp Time of 0.4 s, for 60 s
/// of queries, every query is answered once, within Max Resp Time (as captured, plus a 20 ms
/// capture slack), at delays spread over the interval rather than on a fixed schedule
/// (standard deviation above 10 % of Max Resp Time, not all equal). The issue asks for a query
/// every 0.5 s; Linux clamps `mcast_query_interval` to at least 1 s, so this runs at 1 s
/// (about 60 queries).
#[test]
fn query_answers_are_random_within_max_resp_time() {
    let _serial = serial();
    let querier = Querier {
        query_interval: Duration::from_secs(1),
        query_response_interval: Duration::from_millis(400),
        ..Querier::default()
    };
    let Some((lan, ws)) = lan_and_winsock("ws2-mctime", 42, querier) else {
        return;
    };
    let groups = [Ipv4Addr::new(239, 77, 42, 1), Ipv4Addr::new(239, 77, 42, 2)];
    let sockets: Vec<SOCKET> = groups
        .iter()
        .zip(7042..)
        .map(|(&g, port)| {
            let s = multipoint_socket(&ws);
            join_leaf(&ws, s, at(g, port), JL_BOTH);
            s
        })
        .collect();
    // The joins' state-change reports (and their retransmissions) are over within a second.
    thread::sleep(Duration::from_secs(2));
    let capture = lan.capture(TAP_NAME, "igmp");
    thread::sleep(Duration::from_secs(60));
    let frames = capture.finish();
    let mine = stack_igmp(&lan, &frames);
    let queries = general_queries(&lan, &frames);
    assert!(
        queries.len() >= 55,
        "a query each second: {} queries",
        queries.len()
    );

    let mut delays = Vec::new();
    let mut late = Vec::new();
    for (i, &(at, max_resp, version)) in queries.iter().enumerate() {
        assert_eq!(version, 3);
        assert_eq!(max_resp, lan.querier.query_response_interval);
        let next = queries.get(i + 1).map_or(u64::MAX, |q| q.0);
        if next == u64::MAX
            && frames
                .last()
                .is_some_and(|f| f.at < at + max_resp.as_nanos() as u64)
        {
            break; // the capture ended before this one was due
        }
        let answers: Vec<&IgmpFrame> = mine
            .iter()
            .filter(|f| f.at >= at && f.at < next && f.msg.is_report())
            .collect();
        assert_eq!(
            answers.len(),
            1,
            "query {i} (at +{:.3} s) has one answer: {answers:#?}",
            (at - queries[0].0) as f64 / 1e9
        );
        for g in groups {
            let recs = records_for(&answers[0].msg, g);
            assert_eq!(
                recs,
                vec![GroupRecord {
                    kind: MODE_IS_EXCLUDE,
                    group: g,
                    sources: vec![]
                }],
                "query {i}: the answer says IS_EX {{}} for {g}"
            );
        }
        let delay = Duration::from_nanos(answers[0].at - at);
        if delay > max_resp + CAPTURE_SLACK {
            late.push((i, delay));
        }
        delays.push(delay.as_secs_f64());
    }
    let n = delays.len() as f64;
    let mean = delays.iter().sum::<f64>() / n;
    let sd = (delays.iter().map(|d| (d - mean).powi(2)).sum::<f64>() / n).sqrt();
    let (min, max) = delays
        .iter()
        .fold((f64::MAX, 0f64), |(lo, hi), &d| (lo.min(d), hi.max(d)));
    eprintln!(
        "{} answers: delay mean {:.0} ms, sd {:.0} ms, min {:.1} ms, max {:.1} ms",
        delays.len(),
        mean * 1e3,
        sd * 1e3,
        min * 1e3,
        max * 1e3
    );
    let mrt = lan.querier.query_response_interval.as_secs_f64();
    assert!(
        late.is_empty(),
        "{} of {} queries answered after Max Resp Time {mrt} s + {CAPTURE_SLACK:?}: {late:?}",
        late.len(),
        delays.len()
    );
    assert!(
        sd > 0.1 * mrt,
        "delays spread: sd {sd:.3} s, Max Resp Time {mrt} s"
    );
    assert!(max - min > 0.001, "not all equal: {delays:?}");
    assert!(on_stack_port(&lan.mdb().unwrap(), groups[0]));
    for s in sockets {
        ws.closesocket(s).unwrap();
    }
}

/// Conformance: 395 — issue 5 acceptance 3, IGMPv3 querier (RFC 3376 §4.2, §5.1): the stack
/// sends only v3 reports (0x22, to 224.0.0.22). An any-source join says CHANGE_TO_EXCLUDE {}
/// and its answers to queries MODE_IS_EXCLUDE {}; a source-specific join
/// (`IP_ADD_SOURCE_MEMBERSHIP`) says ALLOW_NEW_SOURCES {S} (INCLUDE {} to INCLUDE {S}) and its
/// answers MODE_IS_INCLUDE {S}. Every IGMP frame carries Router Alert and TTL 1.
#[test]
fn v3_querier_gets_v3_records() {
    let _serial = serial();
    let Some((lan, ws)) = lan_and_winsock("ws2-mcv3", 43, Querier::default()) else {
        return;
    };
    let any = Ipv4Addr::new(239, 77, 43, 1);
    let ssm = Ipv4Addr::new(232, 77, 43, 2);
    let source = lan.own_ip;
    let capture = lan.capture(TAP_NAME, "igmp");
    let s1 = multipoint_socket(&ws);
    join_leaf(&ws, s1, at(any, 7043), JL_BOTH);
    let s2 = new_socket(&ws, SOCK_DGRAM);
    bind(&ws, s2, at(Ipv4Addr::UNSPECIFIED, 7044)).unwrap();
    let mreq = IP_MREQ_SOURCE::new(ssm, source, lan.stack_ip);
    ws.setsockopt(
        s2,
        IPPROTO_IP,
        IP_ADD_SOURCE_MEMBERSHIP,
        Some(&mreq.as_bytes()),
        12,
    )
    .expect("IP_ADD_SOURCE_MEMBERSHIP");
    let joined_at = wall_ns();
    lan.wait_mdb(Duration::from_secs(2), |t| {
        on_stack_port(t, any) && on_stack_port(t, ssm)
    })
    .unwrap_or_else(|t| panic!("both groups on the stack's port: {t:?}"));
    thread::sleep(Duration::from_millis(3000));
    // The source filter works: the source's datagram arrives, another sender's does not.
    let from_source = lan.kernel_socket(Member::Own, 7045).unwrap();
    from_source.send_to(b"from S", at(ssm, 7044)).unwrap();
    let from_other = lan.kernel_socket(Member::Shared, 7045).unwrap();
    from_other.send_to(b"not from S", at(ssm, 7044)).unwrap();
    let got = recv_within(&ws, s2, Duration::from_secs(2)).expect("the source's datagram");
    assert_eq!(got, (b"from S".to_vec(), at(source, 7045)));
    assert_eq!(
        recv_within(&ws, s2, Duration::from_millis(500)),
        None,
        "a datagram from a source outside the INCLUDE filter is not delivered"
    );
    let mdb = lan.mdb().unwrap();
    let frames = capture.finish();
    let mine = stack_igmp(&lan, &frames);
    eprintln!("mdb: {mdb:?}");
    for f in &mine {
        assert!(
            matches!(f.msg, Igmp::ReportV3(_)),
            "v3 querier, v3 reports only: {f:?}"
        );
    }
    let first_any = mine
        .iter()
        .find_map(|f| records_for(&f.msg, any).into_iter().next())
        .expect("a record for the any-source group");
    assert_eq!(
        (first_any.kind, first_any.sources.as_slice()),
        (CHANGE_TO_EXCLUDE, &[][..]),
        "the any-source join's state-change record: {first_any:?}"
    );
    let first_ssm = mine
        .iter()
        .find_map(|f| records_for(&f.msg, ssm).into_iter().next())
        .expect("a record for the source-specific group");
    assert_eq!(
        (first_ssm.kind, first_ssm.sources.as_slice()),
        (ALLOW_NEW_SOURCES, &[source][..]),
        "the source-specific join's state-change record: {first_ssm:?}"
    );
    // Answers to the queries that came after both joins (and their retransmissions).
    let queries = general_queries(&lan, &frames);
    let later: Vec<_> = queries
        .iter()
        .filter(|q| q.0 > joined_at + 1_000_000_000)
        .collect();
    assert!(later.len() >= 2, "queries after the joins: {queries:?}");
    for (i, q) in later.iter().enumerate() {
        let answer = mine
            .iter()
            .find(|f| f.at >= q.0 && f.msg.is_report())
            .unwrap_or_else(|| panic!("query {i} has an answer"));
        assert_eq!(
            records_for(&answer.msg, any),
            vec![GroupRecord {
                kind: MODE_IS_EXCLUDE,
                group: any,
                sources: vec![]
            }],
            "answer to query {i}: {answer:?}"
        );
        assert_eq!(
            records_for(&answer.msg, ssm),
            vec![GroupRecord {
                kind: MODE_IS_INCLUDE,
                group: ssm,
                sources: vec![source]
            }],
            "answer to query {i}: {answer:?}"
        );
    }
    ws.closesocket(s1).unwrap();
    ws.closesocket(s2).unwrap();
}

/// Conformance: 395 — issue 5 acceptance 3, IGMPv2 querier (RFC 3376 §7.2.1, RFC 2236 §2):
/// once the stack has heard a v2 query it reports in v2 (0x16, to the group), on the join and
/// in answer to queries; never v3. Router Alert and TTL 1 on every frame.
#[test]
fn v2_querier_gets_v2_reports() {
    let _serial = serial();
    let Some((lan, ws)) = lan_and_winsock("ws2-mcv2", 44, Querier::default().version(2)) else {
        return;
    };
    let group = Ipv4Addr::new(239, 77, 44, 1);
    let capture = lan.capture(TAP_NAME, "igmp");
    // Let the stack hear a v2 query first (startup queries go out as br0 comes up).
    thread::sleep(Duration::from_millis(1200));
    let s = multipoint_socket(&ws);
    join_leaf(&ws, s, at(group, 7044), JL_BOTH);
    lan.wait_mdb(Duration::from_secs(1), |t| on_stack_port(t, group))
        .unwrap_or_else(|t| panic!("on the stack's port within 1 s: {t:?}"));
    thread::sleep(Duration::from_millis(3000));
    assert!(
        on_stack_port(&lan.mdb().unwrap(), group),
        "kept through queries"
    );
    let frames = capture.finish();
    let mine = stack_igmp(&lan, &frames);
    let queries = general_queries(&lan, &frames);
    assert!(
        queries.iter().all(|q| q.2 == 2),
        "br0 queries in v2: {queries:?}"
    );
    assert!(queries.len() >= 3, "queries: {queries:?}");
    assert!(!mine.is_empty(), "the stack reported");
    for f in &mine {
        assert_eq!(
            f.msg,
            Igmp::ReportV2(group),
            "v2 querier, v2 reports only: {f:?}"
        );
    }
    assert!(
        mine.len() >= 3,
        "the join and answers to the queries after it: {mine:#?}"
    );
    ws.closesocket(s).unwrap();
}

/// Issue 5 acceptance 4 (RFC 3376 §5.2, §6.6.3; RFC 2236 §3): the kernel member behind the
/// stack's br0 port joins the stack's group and leaves again; the bridge then asks that port
/// with group-specific queries, the stack answers each within its Max Resp Time, and the port
/// keeps the group. With a v3 querier (the kernel leaves with TO_IN {}) and a v2 querier
/// (Leave to 224.0.0.2; the query interval is 10 s there so that no general query makes the
/// kernel suppress its report and with it its Leave, RFC 2236 §6).
#[test]
fn shared_port_member_leaves_and_stack_keeps_the_port() {
    let _serial = serial();
    if require_netns().is_some() {
        return;
    }
    for version in [3, 2] {
        let querier = Querier {
            query_interval: Duration::from_secs(if version == 2 { 10 } else { 1 }),
            ..Querier::default().version(version)
        };
        let Some((lan, ws)) = lan_and_winsock("ws2-mcshr", 45, querier) else {
            return;
        };
        let group = Ipv4Addr::new(239, 77, 45, 1);
        thread::sleep(Duration::from_millis(300)); // the startup query, for the version
        let s = multipoint_socket(&ws);
        join_leaf(&ws, s, at(group, 7045), JL_BOTH);
        lan.wait_mdb(Duration::from_secs(1), |t| on_stack_port(t, group))
            .unwrap_or_else(|t| panic!("v{version}: on the stack's port: {t:?}"));
        thread::sleep(Duration::from_millis(1000));
        let capture = lan.capture(TAP_NAME, "igmp");
        let kernel = lan.kernel_socket(Member::Shared, 7045).unwrap();
        kernel.join_multicast_v4(&group, &lan.shared_ip).unwrap();
        thread::sleep(Duration::from_millis(100));
        let left_at = wall_ns();
        kernel.leave_multicast_v4(&group, &lan.shared_ip).unwrap();
        // Twice the bridge's last-member time and more: the entry must be there throughout.
        let end = Instant::now() + 2 * lan.querier.last_member_time() + Duration::from_secs(1);
        while Instant::now() < end {
            let t = lan.mdb().unwrap();
            assert!(
                on_stack_port(&t, group),
                "v{version}: the stack's port lost the group after the other member left: {t:?}"
            );
            thread::sleep(Duration::from_millis(50));
        }
        let frames = capture.finish();
        let igmp: Vec<IgmpFrame> = frames.iter().filter_map(igmp_of).collect();
        let kernel_left = igmp
            .iter()
            .any(|f| f.ip.src == lan.shared_ip && f.msg.leaves(group));
        assert!(
            kernel_left,
            "v{version}: the kernel member's leave is in the capture (fixture): {igmp:#?}"
        );
        let specific: Vec<(u64, Duration)> = igmp
            .iter()
            .filter(|f| f.ip.src == lan.querier_ip && f.at >= left_at)
            .filter_map(|f| match f.msg {
                Igmp::Query {
                    group: g, max_resp, ..
                } if g == group => Some((f.at, max_resp)),
                _ => None,
            })
            .collect();
        assert!(
            !specific.is_empty(),
            "v{version}: br0 sent group-specific queries after the leave: {igmp:#?}"
        );
        let mine = stack_igmp(&lan, &frames);
        for (i, &(at, max_resp)) in specific.iter().enumerate() {
            let answer = mine
                .iter()
                .find(|f| f.at >= at && f.msg.reports(group))
                .unwrap_or_else(|| {
                    panic!("v{version}: group-specific query {i} unanswered: {mine:#?}")
                });
            let delay = Duration::from_nanos(answer.at - at);
            eprintln!("v{version}: group-specific query {i} answered after {delay:.1?}");
            assert!(
                delay <= max_resp + CAPTURE_SLACK,
                "v{version}: answered after {delay:?}, Max Resp Time {max_resp:?}"
            );
            if version == 3 {
                assert_eq!(
                    records_for(&answer.msg, group),
                    vec![GroupRecord {
                        kind: MODE_IS_EXCLUDE,
                        group,
                        sources: vec![]
                    }],
                    "v3: the answer's record"
                );
            } else {
                assert_eq!(answer.msg, Igmp::ReportV2(group));
            }
        }
        ws.closesocket(s).unwrap();
    }
}

/// Conformance: 411 — issue 5 acceptance 5 (RFC 3376 §5.1, RFC 2236 §3): after the last local
/// member's `closesocket` the stack sends a leave (v3: CHANGE_TO_INCLUDE {} to 224.0.0.22; v2:
/// Leave to 224.0.0.2), does not answer the bridge's group-specific queries for the group, and
/// br0 drops the entry within last-member count × interval (1 s) plus 0.5 s.
#[test]
fn last_member_close_leaves_the_group() {
    let _serial = serial();
    if require_netns().is_some() {
        return;
    }
    for version in [3, 2] {
        let Some((lan, ws)) =
            lan_and_winsock("ws2-mcleave", 46, Querier::default().version(version))
        else {
            return;
        };
        let group = Ipv4Addr::new(239, 77, 46, 1);
        thread::sleep(Duration::from_millis(1200)); // a query, for the version
        let s = multipoint_socket(&ws);
        join_leaf(&ws, s, at(group, 7046), JL_BOTH);
        lan.wait_mdb(Duration::from_secs(1), |t| on_stack_port(t, group))
            .unwrap_or_else(|t| panic!("v{version}: on the stack's port: {t:?}"));
        thread::sleep(Duration::from_millis(1500));
        let capture = lan.capture(TAP_NAME, "igmp");
        let closed_at = wall_ns();
        ws.closesocket(s).unwrap();
        let limit = lan.querier.last_member_time() + Duration::from_millis(500);
        let gone = lan
            .wait_mdb(limit, |t| !on_stack_port(t, group))
            .unwrap_or_else(|t| {
                panic!("v{version}: still in the mdb {limit:?} after the close: {t:?}")
            });
        eprintln!("v{version}: mdb entry gone {gone:.2?} after closesocket");
        thread::sleep(Duration::from_millis(1000));
        let frames = capture.finish();
        let mine = stack_igmp(&lan, &frames);
        let leave = mine
            .iter()
            .position(|f| f.msg.leaves(group) && f.msg.version() == Some(version))
            .unwrap_or_else(|| panic!("v{version}: no leave in the capture: {mine:#?}"));
        assert!(mine[leave].at >= closed_at, "the leave follows the close");
        let after = &mine[leave + 1..];
        assert!(
            !after.iter().any(|f| f.msg.joins(group)),
            "v{version}: no report claiming the group after the leave (retransmitted leaves \
             only): {after:#?}"
        );
    }
}

/// Conformance: 396, 173 — issue 5 acceptance 5: a `JL_SENDER_ONLY` join puts no IGMP on the
/// wire (not at the join, not in answer to queries, not at the close) and makes no mdb entry,
/// yet datagrams the socket sends to the group reach a kernel member.
#[test]
fn sender_only_join_sends_no_igmp() {
    let _serial = serial();
    let Some((lan, ws)) = lan_and_winsock("ws2-mcsend", 47, Querier::default()) else {
        return;
    };
    let group = Ipv4Addr::new(239, 77, 47, 1);
    let member = lan.kernel_socket(Member::Own, 7047).unwrap();
    member.join_multicast_v4(&group, &lan.own_ip).unwrap();
    lan.wait_mdb(Duration::from_secs(2), |t| {
        t.iter().any(|e| e.port == OWN_PORT && e.group == group)
    })
    .unwrap_or_else(|t| panic!("the kernel member's entry: {t:?}"));
    let capture = lan.capture(TAP_NAME, "igmp or udp");
    let s = multipoint_socket(&ws);
    join_leaf(&ws, s, at(group, 7047), JL_SENDER_ONLY);
    sendto(&ws, s, b"sender only", at(group, 7047)).expect("sendto the group");
    let got =
        kernel_recv_within(&member, Duration::from_secs(3)).expect("the kernel member hears it");
    assert_eq!(got.0, b"sender only");
    assert_eq!(got.1, SocketAddr::V4(at(lan.stack_ip, 7047)));
    thread::sleep(Duration::from_millis(2500)); // two queries
    assert!(
        !on_stack_port(&lan.mdb().unwrap(), group),
        "no membership for a sender-only join"
    );
    ws.closesocket(s).unwrap();
    thread::sleep(Duration::from_millis(500));
    let frames = capture.finish();
    let mine = stack_igmp(&lan, &frames);
    assert!(mine.is_empty(), "no IGMP from the stack at all: {mine:#?}");
    assert!(
        general_queries(&lan, &frames).len() >= 2,
        "queries were asked"
    );
    let data = udp_datagrams(&frames, Some(at(lan.stack_ip, 7047)), at(group, 7047));
    assert_eq!(data.len(), 1, "the datagram is on the wire once");
    assert_eq!(data[0].0.ttl, 1, "default scope: TTL 1");
}

/// Conformance: 398, 405, 407, 408, 409, 412, 414 — issue 5 acceptance 6: multicast data both
/// ways between the stack and a kernel member on another br0 port; the wire TTL is 1 by default
/// and follows `SIO_MULTICAST_SCOPE`; scope 0 keeps a datagram off the wire yet another local
/// member socket receives it; `SIO_MULTIPOINT_LOOPBACK` decides whether the sender hears its
/// own datagram, while the other local member always does.
#[test]
fn multicast_data_both_ways_scope_and_loopback() {
    let _serial = serial();
    let Some((lan, ws)) = lan_and_winsock("ws2-mcdata", 48, Querier::default()) else {
        return;
    };
    let group = Ipv4Addr::new(239, 77, 48, 1);
    let port = 7048;
    let dst = at(group, port);
    let wait = Duration::from_secs(3);
    let quiet = Duration::from_millis(500);
    let kernel = lan.kernel_socket(Member::Own, port).unwrap();
    kernel.join_multicast_v4(&group, &lan.own_ip).unwrap();
    kernel.set_multicast_loop_v4(false).unwrap();
    let (s, other) = (multipoint_socket(&ws), multipoint_socket(&ws));
    for sock in [s, other] {
        set_int(&ws, sock, SOL_SOCKET, SO_REUSEADDR, 1).unwrap();
        join_leaf(&ws, sock, dst, JL_BOTH);
    }
    lan.wait_mdb(Duration::from_secs(2), |t| {
        on_stack_port(t, group) && t.iter().any(|e| e.port == OWN_PORT && e.group == group)
    })
    .unwrap_or_else(|t| panic!("both ports have the group: {t:?}"));
    let capture = lan.capture(TAP_NAME, "udp");

    // Kernel to stack: both member sockets receive it.
    kernel.set_multicast_ttl_v4(1).unwrap();
    kernel.send_to(b"kernel to stack", dst).unwrap();
    let from_kernel = (b"kernel to stack".to_vec(), at(lan.own_ip, port));
    assert_eq!(
        recv_within(&ws, s, wait),
        Some(from_kernel.clone()),
        "first member"
    );
    assert_eq!(
        recv_within(&ws, other, wait),
        Some(from_kernel),
        "second member"
    );

    // Stack to kernel, at scope `scope` (None = default) and loopback `loop_on`: who hears it.
    let from_stack = |m: &[u8]| (m.to_vec(), at(lan.stack_ip, port));
    let steps: [(&[u8], Option<i32>, bool); 4] = [
        (b"default scope", None, true),
        (b"scope 5", Some(5), true),
        (b"no loopback", None, false),
        (b"scope 0", Some(0), false),
    ];
    for (msg, scope, loop_on) in steps {
        let what = String::from_utf8_lossy(msg).into_owned();
        if let Some(ttl) = scope {
            ioctl_int(&ws, s, SIO_MULTICAST_SCOPE, ttl);
        }
        ioctl_int(&ws, s, SIO_MULTIPOINT_LOOPBACK, i32::from(loop_on));
        sendto(&ws, s, msg, dst).expect("sendto the group");
        let on_wire = scope != Some(0);
        let heard = kernel_recv_within(&kernel, if on_wire { wait } else { quiet });
        if on_wire {
            assert_eq!(
                heard,
                Some((msg.to_vec(), SocketAddr::V4(at(lan.stack_ip, port)))),
                "{what}: the kernel member receives it"
            );
        } else {
            assert_eq!(heard, None, "{what}: nothing reaches the kernel at scope 0");
        }
        assert_eq!(
            recv_within(&ws, other, wait),
            Some(from_stack(msg)),
            "{what}: the other local member receives it"
        );
        let own = recv_within(&ws, s, if loop_on { wait } else { quiet });
        if loop_on {
            assert_eq!(
                own,
                Some(from_stack(msg)),
                "{what}: loopback on, the sender hears it"
            );
        } else {
            assert_eq!(
                own, None,
                "{what}: loopback off, the sender does not hear it"
            );
        }
    }
    let frames = capture.finish();
    let sent = udp_datagrams(&frames, Some(at(lan.stack_ip, port)), dst);
    let ttl_of = |m: &[u8]| -> Vec<u8> {
        sent.iter()
            .filter(|(_, p)| p == m)
            .map(|(ip, _)| ip.ttl)
            .collect()
    };
    assert_eq!(
        ttl_of(b"default scope"),
        vec![1],
        "default scope: TTL 1, once"
    );
    assert_eq!(ttl_of(b"scope 5"), vec![5], "SIO_MULTICAST_SCOPE 5: TTL 5");
    assert_eq!(ttl_of(b"no loopback"), vec![5], "the scope stays 5");
    assert_eq!(
        ttl_of(b"scope 0"),
        Vec::<u8>::new(),
        "scope 0: not on the wire"
    );
    for (ip, _) in &sent {
        assert_eq!(ip.dst_mac, [0x01, 0x00, 0x5e, 77, 48, 1], "group MAC");
        assert!(ip.header_ok, "IP header checksum");
    }
    ws.closesocket(s).unwrap();
    ws.closesocket(other).unwrap();
}

/// Issue 5 acceptance 7: one socket joins 1,000 groups (`IP_ADD_MEMBERSHIP`); all 1,000 show in
/// br0's mdb on the stack's port within 5 s and are still there after two membership intervals
/// of queries, which the stack answers in reports that fit the link (RFC 3376 §4.2.16: a report
/// too big for one frame is split).
#[test]
fn thousand_groups_in_the_bridge_mdb() {
    let _serial = serial();
    let Some((lan, ws)) = lan_and_winsock("ws2-mc1k", 49, Querier::default()) else {
        return;
    };
    let groups: Vec<Ipv4Addr> = (0..1000u32)
        .map(|i| Ipv4Addr::new(239, 77, 100 + (i / 200) as u8, (i % 200 + 1) as u8))
        .collect();
    let capture = lan.capture(TAP_NAME, "igmp");
    let s = new_socket(&ws, SOCK_DGRAM);
    bind(&ws, s, at(Ipv4Addr::UNSPECIFIED, 7049)).unwrap();
    let start = Instant::now();
    for (i, g) in groups.iter().enumerate() {
        let mreq = IP_MREQ::new(*g, lan.stack_ip);
        ws.setsockopt(s, IPPROTO_IP, IP_ADD_MEMBERSHIP, Some(&mreq.as_bytes()), 8)
            .unwrap_or_else(|e| panic!("IP_ADD_MEMBERSHIP number {i} ({g}): {e:?}"));
    }
    eprintln!("1000 IP_ADD_MEMBERSHIP took {:.2?}", start.elapsed());
    let all = |t: &[MdbEntry]| {
        let on: std::collections::HashSet<Ipv4Addr> = t
            .iter()
            .filter(|e| e.port == SHARED_PORT)
            .map(|e| e.group)
            .collect();
        groups.iter().all(|g| on.contains(g))
    };
    lan.wait_mdb(Duration::from_secs(5), all)
        .unwrap_or_else(|t| {
            let n = t.iter().filter(|e| e.port == SHARED_PORT).count();
            panic!("only {n} of 1000 groups on the stack's port after 5 s")
        });
    eprintln!(
        "all 1000 groups in the mdb {:.2?} after the first join",
        start.elapsed()
    );
    thread::sleep(2 * lan.querier.membership_interval());
    let t = lan.mdb().unwrap();
    let n = t
        .iter()
        .filter(|e| e.port == SHARED_PORT && groups.contains(&e.group))
        .count();
    assert_eq!(n, 1000, "all 1000 kept through the queries");
    let frames = capture.finish();
    let mine = stack_igmp(&lan, &frames);
    for f in &frames {
        assert!(f.data.len() <= 1514, "a frame of {} bytes", f.data.len());
    }
    let queries = general_queries(&lan, &frames);
    let last = queries.iter().rev().nth(1).expect("queries");
    let answered: std::collections::HashSet<Ipv4Addr> = mine
        .iter()
        .filter(|f| f.at >= last.0)
        .flat_map(|f| match &f.msg {
            Igmp::ReportV3(r) => r.iter().map(|r| r.group).collect::<Vec<_>>(),
            _ => Vec::new(),
        })
        .collect();
    assert!(
        groups.iter().all(|g| answered.contains(g)),
        "one query's answer covers all 1000 groups ({} did)",
        answered.len()
    );
    ws.closesocket(s).unwrap();
}
