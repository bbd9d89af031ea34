//! FD_QOS and FD_GROUP_QOS (CHECKLIST §1.6.5, §1.8.1): raised once per change of what was
//! granted, re-enabled by SIO_GET_QOS / SIO_GET_GROUP_QOS, and the change visible through
//! SIO_GET_QOS whether or not anyone registered for it.

use ws2_stack::winsock::*;
use ws2_tests::*;

fn get_qos(ws: &Winsock, s: SOCKET, code: u32) -> QOS {
    let mut out = vec![0u8; 256];
    let mut n = 0;
    ws.WSAIoctl(s, code, &[], &mut out, Some(&mut n), None, None)
        .expect("SIO_GET_QOS");
    QOS::from_bytes(&out[..n as usize]).expect("a QOS")
}

fn set_guaranteed(ws: &Winsock, s: SOCKET, rate: i32) {
    let mut q = QOS::default();
    q.SendingFlowspec.TokenRate = rate;
    q.SendingFlowspec.TokenBucketSize = 4000;
    q.SendingFlowspec.LevelOfGuarantee = GuaranteedService;
    let mut n = 0;
    ws.WSAIoctl(
        s,
        SIO_SET_QOS,
        &q.to_bytes(),
        &mut [],
        Some(&mut n),
        None,
        None,
    )
    .expect("SIO_SET_QOS");
}

fn events_within(ws: &Winsock, s: SOCKET, ev: WSAEVENT, ms: u32) -> i32 {
    if ws.WSAWaitForMultipleEvents(&[ev], false, ms, false) != Ok(WSA_WAIT_EVENT_0) {
        return 0;
    }
    let mut ne = WSANETWORKEVENTS::default();
    ws.WSAEnumNetworkEvents(s, ev, Some(&mut ne)).expect("enum");
    ne.lNetworkEvents
}

/// Conformance: 284, 286 — a change of NetworkAvailability raises FD_QOS once; a second change
/// raises nothing until SIO_GET_QOS has read the first.
#[test]
fn fd_qos_once_per_change_until_read() {
    let (a, _b) = two_hosts(2840);
    let s = udp_bound(&a, at(A, 28400));
    let ev = a.WSACreateEvent().unwrap();
    a.WSAEventSelect(s, ev, FD_QOS).unwrap();
    assert_eq!(events_within(&a, s, ev, 200), 0, "nothing changed yet");
    a.stack().set_link_available(false);
    assert_eq!(events_within(&a, s, ev, 5000), FD_QOS);
    a.stack().set_link_available(true);
    assert_eq!(events_within(&a, s, ev, 300), 0, "not before SIO_GET_QOS");
    let q = get_qos(&a, s, SIO_GET_QOS);
    assert_eq!(q.SendingFlowspec.NetworkAvailability, 1);
    a.stack().set_link_available(false);
    assert_eq!(
        events_within(&a, s, ev, 5000),
        FD_QOS,
        "re-enabled by SIO_GET_QOS"
    );
    assert_eq!(
        get_qos(&a, s, SIO_GET_QOS)
            .SendingFlowspec
            .NetworkAvailability,
        0
    );
}

/// Conformance: 285 — registering FD_QOS after a change that SIO_GET_QOS has not read yet
/// raises it at once.
#[test]
fn fd_qos_pending_at_registration() {
    let (a, _b) = two_hosts(2850);
    let s = udp_bound(&a, at(A, 28500));
    a.stack().set_link_available(false);
    let ev = a.WSACreateEvent().unwrap();
    a.WSAEventSelect(s, ev, FD_QOS).unwrap();
    assert_eq!(events_within(&a, s, ev, 5000), FD_QOS);
}

/// Conformance: 378 — a revoked grant is visible through SIO_GET_QOS with nobody registered for
/// FD_QOS.
#[test]
fn revoked_grant_visible_without_registration() {
    let (a, _b) = two_hosts(3780);
    let s = udp_bound(&a, at(A, 37800));
    set_guaranteed(&a, s, 100_000);
    assert_eq!(
        get_qos(&a, s, SIO_GET_QOS).SendingFlowspec.LevelOfGuarantee,
        GuaranteedService
    );
    a.stack().set_qos_capacity(10_000);
    let q = get_qos(&a, s, SIO_GET_QOS);
    assert_eq!(q.SendingFlowspec.LevelOfGuarantee, BestEffortService);
    assert_eq!(
        q.SendingFlowspec.TokenRate, 100_000,
        "the rate is still shaped"
    );
}

/// Conformance: 287 — FD_GROUP_QOS reaches a member when the creator changes the group QoS, once,
/// and again only after SIO_GET_GROUP_QOS.
#[test]
fn fd_group_qos_on_group_change() {
    let (a, _b) = two_hosts(2870);
    let creator = a
        .WSASocket(AF_INET, SOCK_DGRAM, 0, None, SG_UNCONSTRAINED_GROUP, 0)
        .unwrap();
    let g = get_int(&a, creator, SOL_SOCKET, SO_GROUP_ID).unwrap() as u32;
    let member = a.WSASocket(AF_INET, SOCK_DGRAM, 0, None, g, 0).unwrap();
    let ev = a.WSACreateEvent().unwrap();
    a.WSAEventSelect(member, ev, FD_GROUP_QOS).unwrap();
    let mut q = QOS::default();
    q.SendingFlowspec.TokenRate = 50_000;
    let set = |q: &QOS| {
        let mut n = 0;
        a.WSAIoctl(
            creator,
            SIO_SET_GROUP_QOS,
            &q.to_bytes(),
            &mut [],
            Some(&mut n),
            None,
            None,
        )
    };
    set(&q).expect("the creator sets the group QoS");
    assert_eq!(events_within(&a, member, ev, 5000), FD_GROUP_QOS);
    q.SendingFlowspec.TokenRate = 60_000;
    set(&q).unwrap();
    assert_eq!(
        events_within(&a, member, ev, 300),
        0,
        "not before SIO_GET_GROUP_QOS"
    );
    let got = get_qos(&a, member, SIO_GET_GROUP_QOS);
    assert_eq!(got.SendingFlowspec.TokenRate, 60_000);
    q.SendingFlowspec.TokenRate = 70_000;
    set(&q).unwrap();
    assert_eq!(events_within(&a, member, ev, 5000), FD_GROUP_QOS);
}
