//! CHECKLIST Part 2 group N (QoS and token-bucket shaping) at the API level: the QoS ioctls
//! (`SIO_SET_QOS`, `SIO_GET_QOS`, `SIO_SET_GROUP_QOS`, `SIO_GET_GROUP_QOS`), `WSAGetQOSByName`,
//! `WSAConnect`'s `lpSQOS`/`lpGQOS` and caller/callee data (group E 125–133), flowspec
//! validation and admission (D-12..D-15, D-27), and how a shaped socket's sends behave
//! (blocking, nonblocking, overlapped). Rate and burst measurements are in `qos_shaping.rs`.
//!
//! Timing: the shaped sends use rates of a few kB/s and small buckets, so a wait is hundreds
//! of milliseconds or more and the bounds are generous both ways.

use std::thread;
use std::time::{Duration, Instant};

use ws2_stack::winsock::*;
use ws2_stack::WsaError;
use ws2_tap::VirtualSwitch;
use ws2_tests::*;

/// Generous bound for anything that should happen "soon".
const LONG: Duration = Duration::from_secs(10);

// ---- helpers ------------------------------------------------------------------------------

/// Host A with `capacity` bytes/s reservable (D-14), and host B with the default.
fn hosts_with_capacity(seed: u64, capacity: u64) -> (Winsock, Winsock) {
    let mut ca = config(A);
    ca.qos_capacity = capacity;
    two_hosts_on(&VirtualSwitch::new(seed), ca, config(B))
}

/// `WSAIoctl(code)` with `input` and an output buffer of `out_len` bytes (filled with 0xAA so
/// untouched bytes show): `(bytes returned, output)`.
fn ioctl(
    ws: &Winsock,
    s: SOCKET,
    code: u32,
    input: &[u8],
    out_len: usize,
) -> Result<(u32, Vec<u8>), WsaError> {
    let mut out = vec![0xAA; out_len];
    let mut n = 0xDEAD_BEEF;
    ws.WSAIoctl(s, code, input, &mut out, Some(&mut n), None, None)?;
    Ok((n, out))
}

/// A get ioctl (`SIO_GET_QOS` or `SIO_GET_GROUP_QOS`) decoded; the byte count must be the
/// whole QOS.
#[track_caller]
fn get(ws: &Winsock, s: SOCKET, code: u32) -> QOS {
    let (n, out) = ioctl(ws, s, code, &[], 1024).expect("get QoS ioctl");
    let q = QOS::from_bytes(&out[..n as usize]).expect("a whole QOS");
    assert_eq!(n as usize, q.encoded_len(), "bytes returned = the QOS");
    q
}

#[track_caller]
fn get_qos(ws: &Winsock, s: SOCKET) -> QOS {
    get(ws, s, SIO_GET_QOS)
}

#[track_caller]
fn get_group_qos(ws: &Winsock, s: SOCKET) -> QOS {
    get(ws, s, SIO_GET_GROUP_QOS)
}

fn set_qos(ws: &Winsock, s: SOCKET, q: &QOS) -> Result<(), WsaError> {
    ioctl(ws, s, SIO_SET_QOS, &q.to_bytes(), 0).map(|_| ())
}

fn set_group_qos(ws: &Winsock, s: SOCKET, q: &QOS) -> Result<(), WsaError> {
    ioctl(ws, s, SIO_SET_GROUP_QOS, &q.to_bytes(), 0).map(|_| ())
}

/// A QOS whose sending flowspec asks for `rate` bytes/s with a `bucket`-byte bucket at level
/// `g`; everything else default.
fn sending(rate: i32, bucket: i32, g: GUARANTEE) -> QOS {
    let mut q = QOS::default();
    q.SendingFlowspec.TokenRate = rate;
    q.SendingFlowspec.TokenBucketSize = bucket;
    q.SendingFlowspec.LevelOfGuarantee = g;
    q
}

/// `q` as the provider reports it back: `NetworkAvailability` is the provider's (1: up).
fn as_reported(q: &QOS) -> QOS {
    let mut r = q.clone();
    r.SendingFlowspec.NetworkAvailability = 1;
    r.ReceivingFlowspec.NetworkAvailability = 1;
    r
}

/// The spec's default flowspec (§Default Values), with the provider's `NetworkAvailability`.
#[track_caller]
fn assert_default_flowspec(f: &FLOWSPEC, what: &str) {
    assert_eq!(
        (
            f.TokenRate,
            f.TokenBucketSize,
            f.PeakBandwidth,
            f.Latency,
            f.DelayVariation
        ),
        (-1, -1, -1, -1, -1),
        "{what}: rates, sizes and delays not specified"
    );
    assert_eq!(f.LevelOfGuarantee, BestEffortService, "{what}");
    assert_eq!(f.CostOfCall, 0, "{what}");
    assert_eq!(f.NetworkAvailability, 1, "{what}: the link is up");
}

#[track_caller]
fn assert_default_qos(q: &QOS, what: &str) {
    assert_default_flowspec(&q.SendingFlowspec, what);
    assert_default_flowspec(&q.ReceivingFlowspec, what);
    assert!(q.ProviderSpecific.is_empty(), "{what}: no provider part");
}

/// `WSASocket(AF_INET, type, 0, NULL, g, flags)`.
#[track_caller]
fn wsa_socket(ws: &Winsock, r#type: i32, g: u32, flags: u32) -> SOCKET {
    ws.WSASocket(AF_INET, r#type, 0, None, g, flags)
        .expect("WSASocket")
}

#[track_caller]
fn group_id(ws: &Winsock, s: SOCKET) -> u32 {
    get_int(ws, s, SOL_SOCKET, SO_GROUP_ID).expect("SO_GROUP_ID") as u32
}

/// `WSAConnect(s, addr, caller, callee, sqos, gqos)`.
fn wsa_connect(
    ws: &Winsock,
    s: SOCKET,
    addr: std::net::SocketAddrV4,
    caller: Option<&WSABUF>,
    callee: Option<&mut WSABUF>,
    sqos: Option<&QOS>,
    gqos: Option<&QOS>,
) -> Result<(), WsaError> {
    ws.WSAConnect(
        s,
        Some(&sa(addr)),
        SOCKADDR_IN_LEN,
        caller,
        callee,
        sqos,
        gqos,
    )
}

/// `WSAGetQOSByName(s, name, qos)` with `name` as a WSABUF of its bytes.
fn qos_by_name(ws: &Winsock, s: SOCKET, name: &[u8], out: &mut QOS) -> Result<bool, WsaError> {
    let mut buf = WSABUF::new(name.to_vec());
    ws.WSAGetQOSByName(s, Some(&mut buf), Some(out))
}

/// A receiver thread on `ws`/`s` that reads until `n` bytes arrived or the stream ends.
fn reader(ws: &Winsock, s: SOCKET, n: usize) -> thread::JoinHandle<Vec<u8>> {
    let ws = ws.clone();
    thread::spawn(move || {
        set_int(&ws, s, SOL_SOCKET, SO_RCVTIMEO, 20_000).unwrap();
        recv_exact(&ws, s, n)
    })
}

/// Nonblocking sends of `chunk` until `WSAEWOULDBLOCK` (at most `max` bytes offered): the
/// bytes accepted.
#[track_caller]
fn send_until_would_block(ws: &Winsock, s: SOCKET, data: &[u8], max: usize) -> usize {
    let mut sent = 0;
    while sent < max {
        match ws.send(s, &data[sent..(sent + 4096).min(data.len())], 0) {
            Ok(n) => sent += n as usize,
            Err(WsaError::WSAEWOULDBLOCK) => return sent,
            Err(e) => panic!("send failed: {e:?}"),
        }
    }
    panic!("no WSAEWOULDBLOCK after {sent} bytes: the send was not shaped");
}

/// Waits up to `ms` for `ev`, then `WSAEnumNetworkEvents`: the events recorded (0 if none).
fn events_within(ws: &Winsock, s: SOCKET, ev: WSAEVENT, ms: u32) -> i32 {
    if ws.WSAWaitForMultipleEvents(&[ev], false, ms, false) != Ok(WSA_WAIT_EVENT_0) {
        return 0;
    }
    let mut ne = WSANETWORKEVENTS::default();
    ws.WSAEnumNetworkEvents(s, ev, Some(&mut ne))
        .expect("WSAEnumNetworkEvents");
    ne.lNetworkEvents
}

// ---- 352–360: the ioctls and validation ---------------------------------------------------

/// Conformance: 352 — `SIO_GET_QOS` on a new socket returns the default flowspec in both directions (−1 everywhere, `BestEffortService`, `CostOfCall` 0).
#[test]
fn new_socket_reports_default_qos() {
    let (a, _b) = two_hosts(35200);
    let sockets = [
        new_socket(&a, SOCK_STREAM),
        new_socket(&a, SOCK_DGRAM),
        wsa_socket(&a, SOCK_STREAM, 0, WSA_FLAG_OVERLAPPED),
        wsa_socket(&a, SOCK_DGRAM, SG_UNCONSTRAINED_GROUP, 0),
        udp_bound(&a, at(A, 35200)),
    ];
    for s in sockets {
        assert_default_qos(&get_qos(&a, s), "new socket");
        // The raw layout, independently of `QOS::from_bytes`: eight int32 per direction,
        // then the provider-specific length 0.
        let (n, out) = ioctl(&a, s, SIO_GET_QOS, &[], 100).expect("SIO_GET_QOS");
        assert_eq!(n, 68);
        let word = |i: usize| i32::from_ne_bytes(out[4 * i..4 * i + 4].try_into().unwrap());
        for dir in [0, 8] {
            for field in 0..5 {
                assert_eq!(word(dir + field), -1, "field {field} of direction {dir}");
            }
            assert_eq!(word(dir + 5), 0, "BestEffortService is 0");
            assert_eq!(word(dir + 6), 0, "CostOfCall");
        }
        assert_eq!(word(16), 0, "ProviderSpecific.len");
        assert!(out[68..].iter().all(|&b| b == 0xAA), "nothing past the QOS");
    }
}

/// Conformance: 353 — `SIO_SET_QOS` followed by `SIO_GET_QOS` returns the accepted sending and receiving flowspecs.
#[test]
fn set_then_get_returns_the_flowspecs() {
    let (a, _b) = two_hosts(35300);
    for ty in [SOCK_STREAM, SOCK_DGRAM] {
        let s = new_socket(&a, ty);
        let q = QOS {
            SendingFlowspec: FLOWSPEC {
                TokenRate: 50_000,
                TokenBucketSize: 6_000,
                PeakBandwidth: 100_000,
                Latency: 20_000,
                DelayVariation: 5_000,
                LevelOfGuarantee: ControlledLoadService,
                CostOfCall: 0,
                NetworkAvailability: 1,
            },
            ReceivingFlowspec: FLOWSPEC {
                TokenRate: 7_000,
                TokenBucketSize: 3_000,
                PeakBandwidth: -1,
                Latency: 90_000,
                DelayVariation: -1,
                LevelOfGuarantee: PredictiveService,
                CostOfCall: 0,
                NetworkAvailability: 1,
            },
            ProviderSpecific: b"provider bytes".to_vec(),
        };
        set_qos(&a, s, &q).expect("SIO_SET_QOS");
        assert_eq!(get_qos(&a, s), q, "the request comes back as granted");
        // A second request replaces the first (renegotiation), both directions.
        let q2 = sending(9_000, 2_000, GuaranteedService);
        set_qos(&a, s, &q2).expect("renegotiate");
        assert_eq!(get_qos(&a, s), as_reported(&q2));
        // Back to the defaults.
        set_qos(&a, s, &QOS::default()).expect("defaults");
        assert_default_qos(&get_qos(&a, s), "after setting the defaults");
    }
}

/// Conformance: 354 — `SIO_GET_QOS` (and `SIO_GET_GROUP_QOS`) with an output buffer smaller than the QOS fails with `WSAEFAULT`.
#[test]
fn get_qos_short_output_is_efault() {
    let (a, _b) = two_hosts(35400);
    let s = new_socket(&a, SOCK_DGRAM);
    for len in [0, 4, 32, 67] {
        assert_wsa_error(ioctl(&a, s, SIO_GET_QOS, &[], len), WsaError::WSAEFAULT);
        assert_wsa_error(
            ioctl(&a, s, SIO_GET_GROUP_QOS, &[], len),
            WsaError::WSAEFAULT,
        );
    }
    assert_eq!(ioctl(&a, s, SIO_GET_QOS, &[], 68).unwrap().0, 68);
    // The buffer must hold the provider-specific part too (§1.8.3).
    let mut q = sending(10_000, 3_000, BestEffortService);
    q.ProviderSpecific = vec![1, 2, 3, 4, 5, 6, 7, 8, 9, 10];
    set_qos(&a, s, &q).unwrap();
    for len in [68, 77] {
        let r = ioctl(&a, s, SIO_GET_QOS, &[], len);
        assert_wsa_error(r, WsaError::WSAEFAULT);
    }
    let (n, out) = ioctl(&a, s, SIO_GET_QOS, &[], 78).unwrap();
    assert_eq!(n, 78);
    assert_eq!(QOS::from_bytes(&out).unwrap(), as_reported(&q));
    // No lpcbBytesReturned is WSAEFAULT as well.
    let mut out = [0u8; 256];
    assert_wsa_error(
        a.WSAIoctl(s, SIO_GET_QOS, &[], &mut out, None, None, None),
        WsaError::WSAEFAULT,
    );
}

/// Conformance: 355 — `SIO_SET_QOS` (and `SIO_SET_GROUP_QOS`) with an input buffer smaller than the QOS fails with `WSAEFAULT` and changes nothing.
#[test]
fn set_qos_short_input_is_efault() {
    let (a, _b) = two_hosts(35500);
    let s = new_socket(&a, SOCK_STREAM);
    let q = sending(10_000, 3_000, BestEffortService);
    let bytes = q.to_bytes();
    for len in [0, 4, 32, 64, 67] {
        assert_wsa_error(
            ioctl(&a, s, SIO_SET_QOS, &bytes[..len], 0),
            WsaError::WSAEFAULT,
        );
    }
    // A provider-specific length that announces more bytes than the buffer holds.
    let mut with_extra = q.clone();
    with_extra.ProviderSpecific = vec![9; 16];
    let long = with_extra.to_bytes();
    assert_wsa_error(
        ioctl(&a, s, SIO_SET_QOS, &long[..long.len() - 1], 0),
        WsaError::WSAEFAULT,
    );
    assert_default_qos(&get_qos(&a, s), "after refused requests");
    // The group twin, from a group's creator.
    let c = wsa_socket(&a, SOCK_STREAM, SG_UNCONSTRAINED_GROUP, 0);
    assert_wsa_error(
        ioctl(&a, c, SIO_SET_GROUP_QOS, &bytes[..67], 0),
        WsaError::WSAEFAULT,
    );
    assert_default_qos(&get_group_qos(&a, c), "group QoS after a short request");
    // The whole buffer, with bytes after the QOS, is fine.
    let mut padded = long.clone();
    padded.extend_from_slice(&[0xEE; 8]);
    ioctl(&a, s, SIO_SET_QOS, &padded, 0).expect("trailing bytes are ignored");
    assert_eq!(get_qos(&a, s), as_reported(&with_extra));
}

/// Conformance: 356 — `SIO_SET_QOS` asking for `GuaranteedService` (or another reserved level) beyond the provider's capacity fails with `WSAEOPNOTSUPP`, keeping the previous grant.
#[test]
fn reservation_beyond_capacity_is_opnotsupp() {
    // On the default stack: more than 75% of a gigabit.
    let (a, _b) = two_hosts(35600);
    let s = new_socket(&a, SOCK_DGRAM);
    assert_wsa_error(
        set_qos(&a, s, &sending(i32::MAX, -1, GuaranteedService)),
        WsaError::WSAEOPNOTSUPP,
    );
    assert_wsa_error(
        set_qos(&a, s, &sending(93_750_001, -1, GuaranteedService)),
        WsaError::WSAEOPNOTSUPP,
    );
    assert_default_qos(&get_qos(&a, s), "nothing granted");

    // A small link: 100,000 B/s reservable.
    let (a, _b) = hosts_with_capacity(35601, 100_000);
    let s1 = new_socket(&a, SOCK_DGRAM);
    let s2 = new_socket(&a, SOCK_STREAM);
    let s3 = new_socket(&a, SOCK_DGRAM);
    assert_wsa_error(
        set_qos(&a, s1, &sending(100_001, 4_000, GuaranteedService)),
        WsaError::WSAEOPNOTSUPP,
    );
    let g60 = sending(60_000, 4_000, GuaranteedService);
    set_qos(&a, s1, &g60).expect("60,000 of 100,000 fits");
    for level in [GuaranteedService, PredictiveService, ControlledLoadService] {
        assert_wsa_error(
            set_qos(&a, s2, &sending(60_000, 4_000, level)),
            WsaError::WSAEOPNOTSUPP,
        );
    }
    assert_default_qos(&get_qos(&a, s2), "refused: the socket keeps its QoS");
    let c40 = sending(40_000, 4_000, ControlledLoadService);
    set_qos(&a, s2, &c40).expect("the remaining 40,000 fits");
    assert_wsa_error(
        set_qos(&a, s3, &sending(1, 4_000, PredictiveService)),
        WsaError::WSAEOPNOTSUPP,
    );
    // A renegotiation beyond what is left fails and keeps the previous grant.
    assert_wsa_error(
        set_qos(&a, s1, &sending(70_000, 4_000, GuaranteedService)),
        WsaError::WSAEOPNOTSUPP,
    );
    assert_eq!(get_qos(&a, s1), as_reported(&g60));
    // Closing a socket gives its reservation back.
    a.closesocket(s1).unwrap();
    set_qos(&a, s3, &sending(60_000, 4_000, PredictiveService)).expect("freed by the close");
    assert_eq!(get_qos(&a, s2), as_reported(&c40));
}

/// Conformance: 357 — `SIO_SET_QOS` with `BestEffortService` is always accepted, even when the link's reservable capacity is used up.
#[test]
fn best_effort_is_always_accepted() {
    let (a, _b) = hosts_with_capacity(35700, 50_000);
    let full = new_socket(&a, SOCK_DGRAM);
    let g = sending(50_000, 4_000, GuaranteedService);
    set_qos(&a, full, &g).expect("uses the whole capacity");
    for (i, rate) in [-1, 0, 1_000, 1_000_000, i32::MAX].into_iter().enumerate() {
        let ty = if i % 2 == 0 { SOCK_DGRAM } else { SOCK_STREAM };
        let s = new_socket(&a, ty);
        let q = sending(rate, -1, BestEffortService);
        set_qos(&a, s, &q).expect("best effort is never refused");
        assert_eq!(get_qos(&a, s), as_reported(&q));
    }
    // The defaults themselves, and best effort replacing a reservation, which frees it.
    let s = new_socket(&a, SOCK_STREAM);
    set_qos(&a, s, &QOS::default()).expect("defaults");
    set_qos(&a, full, &sending(200_000, -1, BestEffortService)).expect("downgrade");
    set_qos(&a, s, &sending(50_000, 4_000, GuaranteedService)).expect("capacity freed");
}

/// Conformance: 358 — a flowspec with `CostOfCall` ≠ 0, in either direction, is rejected with `WSAEINVAL`.
#[test]
fn cost_of_call_must_be_zero() {
    let (a, _b) = two_hosts(35800);
    let s = new_socket(&a, SOCK_DGRAM);
    let creator = wsa_socket(&a, SOCK_DGRAM, SG_UNCONSTRAINED_GROUP, 0);
    for cost in [1, -1, 100, i32::MIN] {
        let mut q = sending(10_000, 3_000, BestEffortService);
        q.SendingFlowspec.CostOfCall = cost;
        assert_wsa_error(set_qos(&a, s, &q), WsaError::WSAEINVAL);
        assert_wsa_error(set_group_qos(&a, creator, &q), WsaError::WSAEINVAL);
        let mut q = QOS::default();
        q.ReceivingFlowspec.CostOfCall = cost;
        assert_wsa_error(set_qos(&a, s, &q), WsaError::WSAEINVAL);
        assert_wsa_error(
            wsa_connect(&a, s, at(B, 35800), None, None, Some(&q), None),
            WsaError::WSAEINVAL,
        );
    }
    assert_default_qos(&get_qos(&a, s), "nothing was accepted");
    assert_default_qos(&get_group_qos(&a, creator), "group QoS unchanged");
    assert_wsa_error(peer_name(&a, s), WsaError::WSAENOTCONN);
}

/// Conformance: 359 — `SIO_SET_QOS` with a negative value other than −1 in a rate, size or delay field is rejected with `WSAEINVAL`; −1 and 0 are accepted.
#[test]
fn negative_values_other_than_minus_one_are_invalid() {
    let (a, _b) = two_hosts(35900);
    let s = new_socket(&a, SOCK_STREAM);
    type Field = fn(&mut FLOWSPEC) -> &mut i32;
    let fields: [(&str, Field); 5] = [
        ("TokenRate", |f| &mut f.TokenRate),
        ("TokenBucketSize", |f| &mut f.TokenBucketSize),
        ("PeakBandwidth", |f| &mut f.PeakBandwidth),
        ("Latency", |f| &mut f.Latency),
        ("DelayVariation", |f| &mut f.DelayVariation),
    ];
    for (name, field) in fields {
        for receiving in [false, true] {
            for bad in [-2, -1000, i32::MIN] {
                let mut q = QOS::default();
                let f = if receiving {
                    &mut q.ReceivingFlowspec
                } else {
                    &mut q.SendingFlowspec
                };
                *field(f) = bad;
                let r = set_qos(&a, s, &q);
                assert!(
                    r == Err(WsaError::WSAEINVAL),
                    "{name} = {bad} (receiving: {receiving}): {r:?}"
                );
                assert_eq!(WSAGetLastError(), WsaError::WSAEINVAL.0);
            }
            for good in [-1, 0, 12_345] {
                // Keep the coupling rules satisfied: a peak at least the rate.
                let mut q = QOS::default();
                let f = if receiving {
                    &mut q.ReceivingFlowspec
                } else {
                    &mut q.SendingFlowspec
                };
                *field(f) = good;
                if name == "TokenRate" && good > 0 {
                    f.TokenBucketSize = 2_000;
                }
                set_qos(&a, s, &q).unwrap_or_else(|e| panic!("{name} = {good}: {e:?}"));
                assert_eq!(get_qos(&a, s), as_reported(&q), "{name} = {good}");
            }
        }
    }
}

/// Conformance: 358, 359 — the other malformed flowspecs are `WSAEINVAL` too: an undefined `LevelOfGuarantee`, `PeakBandwidth` below `TokenRate`, and a reserved level with no `TokenRate` (D-13, D-14).
#[test]
fn malformed_flowspecs_are_invalid() {
    let (a, _b) = two_hosts(35901);
    let s = new_socket(&a, SOCK_DGRAM);
    for raw in [4, 5, -1, 100, i32::MAX, i32::MIN] {
        for receiving in [false, true] {
            let mut q = sending(10_000, 3_000, BestEffortService);
            let f = if receiving {
                &mut q.ReceivingFlowspec
            } else {
                &mut q.SendingFlowspec
            };
            f.LevelOfGuarantee = GUARANTEE::from_raw(raw);
            assert_wsa_error(set_qos(&a, s, &q), WsaError::WSAEINVAL);
        }
    }
    let mut q = sending(10_000, 3_000, BestEffortService);
    q.SendingFlowspec.PeakBandwidth = 9_999;
    assert_wsa_error(set_qos(&a, s, &q), WsaError::WSAEINVAL);
    q.SendingFlowspec.PeakBandwidth = 10_000;
    set_qos(&a, s, &q).expect("peak = rate is a constant-rate flow");
    for level in [ControlledLoadService, PredictiveService, GuaranteedService] {
        assert_wsa_error(
            set_qos(&a, s, &sending(-1, 3_000, level)),
            WsaError::WSAEINVAL,
        );
    }
    assert_eq!(
        get_qos(&a, s),
        as_reported(&q),
        "the last good request stays"
    );
}

/// Conformance: 360 — the `NetworkAvailability` supplied in `SIO_SET_QOS` is ignored and `SIO_GET_QOS` reports the provider's value.
#[test]
fn network_availability_is_read_only() {
    let (a, _b) = two_hosts(36000);
    let s = new_socket(&a, SOCK_DGRAM);
    for v in [0, 1, 2, -1, -77, i32::MAX, i32::MIN] {
        let mut q = sending(20_000, 4_000, BestEffortService);
        q.SendingFlowspec.NetworkAvailability = v;
        q.ReceivingFlowspec.NetworkAvailability = v;
        set_qos(&a, s, &q).unwrap_or_else(|e| panic!("NetworkAvailability {v}: {e:?}"));
        let got = get_qos(&a, s);
        assert_eq!(got.SendingFlowspec.NetworkAvailability, 1, "supplied {v}");
        assert_eq!(got.ReceivingFlowspec.NetworkAvailability, 1, "supplied {v}");
        assert_eq!(got, as_reported(&q));
    }
}

// ---- 364–370: what shaping does to sends ---------------------------------------------------

/// Conformance: 364 — with `TokenRate` = `TokenBucketSize` = −1 no rate limiting is applied, even to a socket that has a QoS with other fields set.
#[test]
fn minus_one_means_no_rate_limit() {
    let (a, b) = two_hosts(36400);
    let (c, s) = tcp_pair(&a, &b, 36400);
    // A QoS, but no rate: latency and a bucket size alone limit nothing.
    let mut q = sending(-1, -1, BestEffortService);
    q.SendingFlowspec.Latency = 10_000;
    q.SendingFlowspec.PeakBandwidth = -1;
    set_qos(&a, c, &q).expect("SIO_SET_QOS");
    // 1 MB: at even 100 kB/s this would take 10 s.
    let data = pattern(1 << 20, 364);
    let rx = reader(&b, s, data.len());
    let start = Instant::now();
    send_all(&a, c, &data);
    let got = rx.join().unwrap();
    let took = start.elapsed();
    assert!(got == data, "all data arrived in order");
    assert!(took < LONG, "1 MB took {took:?}: rate limited");

    // A datagram above the bucket size is not refused (no WSAEMSGSIZE without a rate): a
    // TokenBucketSize alone limits nothing.
    let tx = udp_bound(&a, at(A, 36401));
    let rx = udp_bound(&b, at(B, 36401));
    let mut q = sending(-1, 500, BestEffortService);
    q.SendingFlowspec.Latency = 10_000;
    set_qos(&a, tx, &q).expect("SIO_SET_QOS");
    let big = pattern(1_400, 3641);
    for _ in 0..20 {
        assert_eq!(sendto(&a, tx, &big, at(B, 36401)), Ok(1_400));
    }
    let mut buf = vec![0u8; 2_000];
    for i in 0..20 {
        assert!(wait_readable(&b, rx, 5_000), "datagram {i}");
        let (n, _) = recvfrom(&b, rx, &mut buf, 0).unwrap();
        assert_eq!(&buf[..n as usize], &big[..]);
    }
}

/// Conformance: 366 — a blocking `send` that exceeds the available credit waits for credit and then succeeds, rather than failing.
#[test]
fn blocking_tcp_send_waits_for_credit() {
    let (a, b) = two_hosts(36600);
    let (c, s) = tcp_pair(&a, &b, 36600);
    set_qos(&a, c, &sending(4_000, 2_000, BestEffortService)).expect("SIO_SET_QOS");
    let data = pattern(10_000, 366);
    let rx = reader(&b, s, data.len());
    let start = Instant::now();
    // One send call: it must take all 10,000 bytes, waiting as credit accrues.
    let n = a.send(c, &data, 0).expect("a blocking send does not fail");
    let took = start.elapsed();
    assert_eq!(n, 10_000, "a blocking send takes everything");
    // 2,000 bytes of bucket and at most a few frames held in the stack leave 4,000+ bytes
    // that can only go at 4,000 B/s.
    assert!(
        took >= Duration::from_millis(500),
        "the send returned after {took:?}: it did not wait for credit"
    );
    let got = rx.join().unwrap();
    assert!(got == data, "all data arrived in order");
}

/// Conformance: 366 — a blocking UDP `sendto` beyond the credit waits and then succeeds.
#[test]

fn blocking_udp_sendto_waits_for_credit() {
    let (a, b) = two_hosts(36610);
    let tx = udp_bound(&a, at(A, 36610));
    let rx = udp_bound(&b, at(B, 36610));
    set_qos(&a, tx, &sending(2_000, 2_000, BestEffortService)).expect("SIO_SET_QOS");
    let count = 10;
    let receiver = {
        let b = b.clone();
        thread::spawn(move || {
            set_int(&b, rx, SOL_SOCKET, SO_RCVTIMEO, 15_000).unwrap();
            let mut buf = [0u8; 2_000];
            let mut got = Vec::new();
            while got.len() < count {
                match b.recv(rx, &mut buf, 0) {
                    Ok(n) => got.push(buf[..n as usize].to_vec()),
                    Err(e) => panic!("recv after {} datagrams: {e:?}", got.len()),
                }
            }
            got
        })
    };
    let start = Instant::now();
    for i in 0..count {
        let d = vec![i as u8; 1_000];
        assert_eq!(
            sendto(&a, tx, &d, at(B, 36610)),
            Ok(1_000),
            "datagram {i}: a blocking sendto waits instead of failing"
        );
    }
    let took = start.elapsed();
    // 10 × 1,042 frame bytes at 2,000 B/s after a 2,000-byte bucket: the sender can hold only
    // a few frames' worth in the stack, so it must wait well over a second for the rest.
    assert!(
        took >= Duration::from_millis(700),
        "10 datagrams were accepted in {took:?}: nothing waited for credit"
    );
    let got = receiver.join().unwrap();
    for (i, d) in got.iter().enumerate() {
        assert_eq!(d, &vec![i as u8; 1_000], "datagram {i} intact and in order");
    }
}

/// Conformance: 366 — the one UDP send that fails instead of waiting for credit is a datagram that could never conform, larger than the bucket: `WSAEMSGSIZE` at once (D-13).
#[test]
fn datagram_larger_than_the_bucket_is_emsgsize() {
    let (a, b) = two_hosts(36620);
    let tx = udp_bound(&a, at(A, 36620));
    let rx = udp_bound(&b, at(B, 36620));
    set_qos(&a, tx, &sending(2_000, 1_000, BestEffortService)).unwrap();
    // 958 bytes of payload make a 1,000-byte frame: that fits.
    assert_eq!(sendto(&a, tx, &[1u8; 958], at(B, 36620)), Ok(958));
    assert!(wait_readable(&b, rx, 5_000));
    let mut buf = [0u8; 2_000];
    assert_eq!(recvfrom(&b, rx, &mut buf, 0).unwrap().0, 958);
    let start = Instant::now();
    assert_wsa_error(
        sendto(&a, tx, &[1u8; 1_000], at(B, 36620)),
        WsaError::WSAEMSGSIZE,
    );
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "refused without waiting"
    );
    assert_wsa_error(
        sendto(&a, tx, &[1u8; 959], at(B, 36620)),
        WsaError::WSAEMSGSIZE,
    );
    // Connected, with send, alike.
    connect(&a, tx, at(B, 36620)).unwrap();
    assert_wsa_error(a.send(tx, &[1u8; 1_200], 0), WsaError::WSAEMSGSIZE);
    // A TokenRate without a bucket gets a bucket of at least one full frame (D-13).
    set_qos(&a, tx, &sending(2_000, -1, BestEffortService)).unwrap();
    assert_eq!(a.send(tx, &[2u8; 1_472], 0), Ok(1_472));
    assert!(wait_readable(&b, rx, 5_000));
    assert_eq!(recvfrom(&b, rx, &mut buf, 0).unwrap().0, 1_472);
}

/// Conformance: 367 — a nonblocking `send` with no credit fails with `WSAEWOULDBLOCK`, and `FD_WRITE` follows when credit becomes available (TCP).
#[test]
fn nonblocking_tcp_send_would_block_then_fd_write() {
    let (a, b) = two_hosts(36700);
    let (c, s) = tcp_pair(&a, &b, 36700);
    set_qos(&a, c, &sending(4_000, 2_000, BestEffortService)).expect("SIO_SET_QOS");
    let ev = a.WSACreateEvent().unwrap();
    a.WSAEventSelect(c, ev, FD_WRITE).unwrap();
    assert_eq!(
        events_within(&a, c, ev, 5_000) & FD_WRITE,
        FD_WRITE,
        "a connected socket is writable at registration"
    );
    let data = pattern(64 * 1024, 367);
    let rx = reader(&b, s, data.len());
    // Unshaped, the 64 KiB send buffer would take all of it; shaped, a few kB at most.
    let first = send_until_would_block(&a, c, &data, data.len());
    assert!(
        first < 16 * 1024,
        "{first} bytes accepted before WSAEWOULDBLOCK"
    );
    let mut sent = first;
    let mut rounds = 0;
    while sent < 12 * 1024 {
        let got = events_within(&a, c, ev, 10_000);
        assert_eq!(got & FD_WRITE, FD_WRITE, "FD_WRITE after WSAEWOULDBLOCK");
        let n = send_until_would_block(&a, c, &data[sent..], data.len() - sent);
        assert!(n > 0, "FD_WRITE came but the send still would block");
        sent += n;
        rounds += 1;
    }
    assert!(rounds >= 2, "credit came in steps");
    a.WSAEventSelect(c, 0, 0).unwrap();
    set_nonblocking(&a, c, false);
    set_qos(&a, c, &QOS::default()).unwrap();
    send_all(&a, c, &data[sent..]);
    assert!(rx.join().unwrap() == data);
}

/// Conformance: 367 — a nonblocking UDP `sendto` with no credit fails with `WSAEWOULDBLOCK`, and `FD_WRITE` follows when it can succeed again.
#[test]

fn nonblocking_udp_sendto_would_block_then_fd_write() {
    let (a, b) = two_hosts(36710);
    let tx = udp_bound(&a, at(A, 36710));
    let _rx = udp_bound(&b, at(B, 36710));
    set_qos(&a, tx, &sending(2_000, 2_000, BestEffortService)).expect("SIO_SET_QOS");
    let ev = a.WSACreateEvent().unwrap();
    a.WSAEventSelect(tx, ev, FD_WRITE).unwrap();
    assert_eq!(events_within(&a, tx, ev, 5_000) & FD_WRITE, FD_WRITE);
    let d = [5u8; 1_000];
    let mut accepted = 0;
    loop {
        match sendto(&a, tx, &d, at(B, 36710)) {
            Ok(_) => accepted += 1,
            Err(WsaError::WSAEWOULDBLOCK) => break,
            Err(e) => panic!("sendto: {e:?}"),
        }
        assert!(
            accepted < 32,
            "no WSAEWOULDBLOCK after {accepted} datagrams"
        );
    }
    assert_eq!(WSAGetLastError(), WsaError::WSAEWOULDBLOCK.0);
    // FD_WRITE must mean "a send can succeed now" (with some slack for a frame in flight).
    for round in 0..3 {
        let got = events_within(&a, tx, ev, 10_000);
        assert_eq!(got & FD_WRITE, FD_WRITE, "round {round}: FD_WRITE");
        let r = retry(Duration::from_millis(300), || {
            sendto(&a, tx, &d, at(B, 36710))
        });
        assert_eq!(r, Ok(1_000), "round {round}: the send after FD_WRITE");
        // Fill again.
        while sendto(&a, tx, &d, at(B, 36710)).is_ok() {}
    }
}

/// Conformance: 368 — an overlapped `WSASend` exceeding the available credit pends and completes once the shaped data has been released to the transport.
#[test]
fn overlapped_send_pends_until_credit() {
    let (a, b) = two_hosts(36800);
    let l = listener(&b, at(B, 36800), 2);
    let c = wsa_socket(&a, SOCK_STREAM, 0, WSA_FLAG_OVERLAPPED);
    connect(&a, c, at(B, 36800)).unwrap();
    let s = b.accept(l, None, None).unwrap();
    set_qos(&a, c, &sending(4_000, 2_000, BestEffortService)).expect("SIO_SET_QOS");
    let data = pattern(12_000, 368);
    let rx = reader(&b, s, data.len());
    let ev = a.WSACreateEvent().unwrap();
    let ov = WSAOVERLAPPED::new(ev);
    let mut bufs = [WSABUF::new(data.clone())];
    let mut n = 0;
    let start = Instant::now();
    assert_wsa_error(
        a.WSASend(c, &mut bufs, Some(&mut n), 0, Some(&ov), None),
        WsaError::WSA_IO_PENDING,
    );
    let (mut bytes, mut flags) = (0, 0);
    assert_wsa_error(
        a.WSAGetOverlappedResult(c, &ov, &mut bytes, false, &mut flags),
        WsaError::WSA_IO_INCOMPLETE,
    );
    assert_eq!(
        a.WSAWaitForMultipleEvents(&[ev], false, 20_000, false),
        Ok(WSA_WAIT_EVENT_0),
        "the completion signals the event"
    );
    let took = start.elapsed();
    a.WSAGetOverlappedResult(c, &ov, &mut bytes, false, &mut flags)
        .expect("the send completed");
    assert_eq!(bytes, 12_000);
    assert!(
        took >= Duration::from_millis(700),
        "completed after {took:?}: before the shaper could have released the data"
    );
    assert!(rx.join().unwrap() == data);
}

/// Conformance: 369 — shaping applies per direction: a `ReceivingFlowspec` limit does not throttle the socket's sends.
#[test]
fn receiving_flowspec_does_not_throttle_sends() {
    let (a, b) = two_hosts(36900);
    let (c, s) = tcp_pair(&a, &b, 36900);
    let mut q = QOS::default();
    q.ReceivingFlowspec.TokenRate = 2_000;
    q.ReceivingFlowspec.TokenBucketSize = 2_000;
    q.ReceivingFlowspec.LevelOfGuarantee = GuaranteedService;
    set_qos(&a, c, &q).expect("SIO_SET_QOS");
    set_qos(&b, s, &q).expect("SIO_SET_QOS on the receiver");
    // 512 KiB: at 2,000 B/s this would take over four minutes.
    let data = pattern(512 * 1024, 369);
    let rx = reader(&b, s, data.len());
    let start = Instant::now();
    send_all(&a, c, &data);
    assert!(rx.join().unwrap() == data);
    assert!(start.elapsed() < LONG, "took {:?}", start.elapsed());

    // A datagram larger than the receiving bucket is not refused either, nor held back.
    let tx = udp_bound(&a, at(A, 36901));
    let urx = udp_bound(&b, at(B, 36901));
    let mut q = QOS::default();
    q.ReceivingFlowspec.TokenRate = 100;
    q.ReceivingFlowspec.TokenBucketSize = 500;
    set_qos(&a, tx, &q).unwrap();
    for _ in 0..8 {
        assert_eq!(sendto(&a, tx, &[3u8; 1_400], at(B, 36901)), Ok(1_400));
    }
    let mut buf = [0u8; 2_000];
    for i in 0..8 {
        assert!(wait_readable(&b, urx, 5_000), "datagram {i}");
        assert_eq!(recvfrom(&b, urx, &mut buf, 0).unwrap().0, 1_400);
    }
}

/// Conformance: 370 — changing QoS with `SIO_SET_QOS` on a connected socket takes effect for subsequent sends (renegotiation), both tighter and looser.
#[test]
fn renegotiation_applies_to_later_sends() {
    let (a, b) = two_hosts(37000);
    let (c, s) = tcp_pair(&a, &b, 37000);
    let data = pattern(600 * 1024, 370);
    let rx = reader(&b, s, data.len());
    // Unshaped: 256 KiB goes through at once.
    send_all(&a, c, &data[..256 * 1024]);
    let mut sent = 256 * 1024;
    // Tighter: wait until what was queued has left, then nonblocking sends take a few kB.
    set_qos(&a, c, &sending(4_000, 2_000, BestEffortService)).expect("tighten");
    set_nonblocking(&a, c, true);
    // What smoltcp still held from the unshaped phase can keep the buffer busy a moment.
    let taken = send_until_would_block(&a, c, &data[sent..], data.len() - sent);
    sent += taken;
    thread::sleep(Duration::from_millis(300));
    let more = send_until_would_block(&a, c, &data[sent..], data.len() - sent);
    sent += more;
    assert!(
        taken + more < 20 * 1024,
        "{} bytes accepted in ~300 ms at 4,000 B/s",
        taken + more
    );
    // Looser: the rest (over 300 KiB) goes at once.
    let q = sending(10_000_000, 1_000_000, BestEffortService);
    set_qos(&a, c, &q).expect("loosen");
    assert_eq!(get_qos(&a, c), as_reported(&q));
    set_nonblocking(&a, c, false);
    let start = Instant::now();
    send_all(&a, c, &data[sent..]);
    assert!(rx.join().unwrap() == data, "all data, in order");
    assert!(start.elapsed() < LONG, "took {:?}", start.elapsed());
}

// ---- 371–374: group QoS --------------------------------------------------------------------

/// Conformance: 371 — `SIO_SET_GROUP_QOS` from a socket that did not create its group (or is in no group) fails with `WSAENOPROTOOPT`.
#[test]
fn group_qos_only_from_the_creator() {
    let (a, _b) = two_hosts(37100);
    let creator = wsa_socket(&a, SOCK_STREAM, SG_UNCONSTRAINED_GROUP, 0);
    let g = group_id(&a, creator);
    let member = wsa_socket(&a, SOCK_DGRAM, g, 0);
    let loner = new_socket(&a, SOCK_DGRAM);
    let q = sending(30_000, 5_000, BestEffortService);
    for s in [member, loner] {
        assert_wsa_error(set_group_qos(&a, s, &q), WsaError::WSAENOPROTOOPT);
    }
    assert_default_qos(&get_group_qos(&a, member), "unchanged by the refusal");
    set_group_qos(&a, creator, &q).expect("the creator may");
    assert_eq!(get_group_qos(&a, member), as_reported(&q));
    // The creator's own socket QoS is not touched by the group's.
    assert_default_qos(&get_qos(&a, creator), "socket QoS");
    // Once the creator is gone nobody may set it.
    a.closesocket(creator).unwrap();
    assert_wsa_error(
        set_group_qos(&a, member, &QOS::default()),
        WsaError::WSAENOPROTOOPT,
    );
    assert_eq!(get_group_qos(&a, member), as_reported(&q));
    // Also in a constrained group.
    let k = wsa_socket(&a, SOCK_STREAM, SG_CONSTRAINED_GROUP, 0);
    let km = wsa_socket(&a, SOCK_STREAM, group_id(&a, k), 0);
    assert_wsa_error(set_group_qos(&a, km, &q), WsaError::WSAENOPROTOOPT);
    set_group_qos(&a, k, &q).expect("constrained group's creator");
}

/// Conformance: 372 — `SIO_SET_GROUP_QOS` from the group creator limits the aggregate send rate of all group members to the group's `TokenRate`.
#[test]
fn group_qos_limits_the_aggregate() {
    let (a, b) = two_hosts(37200);
    let creator = wsa_socket(&a, SOCK_DGRAM, SG_UNCONSTRAINED_GROUP, 0);
    let g = group_id(&a, creator);
    let member = wsa_socket(&a, SOCK_DGRAM, g, 0);
    bind(&a, creator, at(A, 37200)).unwrap();
    bind(&a, member, at(A, 37201)).unwrap();
    let rx = udp_bound(&b, at(B, 37200));
    let rate = 8_000;
    let bucket = 2_000;
    set_group_qos(&a, creator, &sending(rate, bucket, BestEffortService)).expect("group QoS");
    // Neither member has a rate of its own.
    assert_default_qos(&get_qos(&a, member), "member");
    let per_member = 6;
    let frame = 1_000 + 8 + 20 + 14;
    let total = 2 * per_member;
    let receiver = {
        let b = b.clone();
        thread::spawn(move || {
            set_int(&b, rx, SOL_SOCKET, SO_RCVTIMEO, 15_000).unwrap();
            let mut buf = [0u8; 2_000];
            let mut from = Vec::new();
            for _ in 0..total {
                let (_, src) = recvfrom(&b, rx, &mut buf, 0).expect("datagram");
                from.push(src.port());
            }
            (Instant::now(), from)
        })
    };
    let start = Instant::now();
    for _ in 0..per_member {
        for s in [creator, member] {
            assert_eq!(sendto(&a, s, &[1u8; 1_000], at(B, 37200)), Ok(1_000));
        }
    }
    let (last, from) = receiver.join().unwrap();
    let took = last.duration_since(start);
    // B + R·T bounds what leaves: 12 frames need T ≥ (12 × 1,042 − 2,000) / 8,000 ≈ 1.3 s.
    let min = Duration::from_secs_f64((total * frame - bucket as usize) as f64 / rate as f64);
    assert!(
        took >= min.mul_f64(0.8),
        "12 datagrams of two members arrived in {took:?}; the group's rate allows no less than {min:?}"
    );
    assert!(took < LONG, "took {took:?}");
    assert_eq!(from.iter().filter(|&&p| p == 37200).count(), per_member);
    assert_eq!(from.iter().filter(|&&p| p == 37201).count(), per_member);
}

/// Conformance: 373 — `SIO_GET_GROUP_QOS` on a socket not in a group succeeds with both flowspecs zero-filled and no provider-specific part (D-12).
#[test]
fn group_qos_outside_a_group_is_zero_filled() {
    let (a, b) = two_hosts(37300);
    let (c, s) = tcp_pair(&a, &b, 37300);
    let sockets = [
        (&a, new_socket(&a, SOCK_STREAM)),
        (&a, new_socket(&a, SOCK_DGRAM)),
        (&a, wsa_socket(&a, SOCK_DGRAM, 0, 0)),
        (&a, c),
        (&b, s),
    ];
    for (ws, sock) in sockets {
        let (n, out) = ioctl(ws, sock, SIO_GET_GROUP_QOS, &[], 128).expect("SIO_GET_GROUP_QOS");
        assert_eq!(n, 68, "a QOS without provider-specific bytes");
        assert!(out[..68].iter().all(|&b| b == 0), "zero-filled: {out:?}");
        assert_eq!(QOS::from_bytes(&out).unwrap(), QOS::zeroed());
    }
    // In a group without a group QoS the flowspecs are the defaults, not zeros.
    let creator = wsa_socket(&a, SOCK_DGRAM, SG_UNCONSTRAINED_GROUP, 0);
    assert_default_qos(&get_group_qos(&a, creator), "group without a QoS");
}

/// Conformance: 374, 132 — `WSAConnect` with `lpGQOS` from the group creator sets the group QoS reported by `SIO_GET_GROUP_QOS`; from another member it is ignored.
#[test]
fn wsa_connect_sets_group_qos_from_the_creator() {
    let (a, b) = two_hosts(37400);
    let l = listener(&b, at(B, 37400), 4);
    let creator = wsa_socket(&a, SOCK_STREAM, SG_UNCONSTRAINED_GROUP, 0);
    let g = group_id(&a, creator);
    let member = wsa_socket(&a, SOCK_STREAM, g, 0);
    let observer = wsa_socket(&a, SOCK_DGRAM, g, 0);
    // From a member that did not create the group: ignored, and the connect succeeds.
    let ignored = sending(7_000, 3_000, BestEffortService);
    wsa_connect(&a, member, at(B, 37400), None, None, None, Some(&ignored))
        .expect("WSAConnect from a member");
    b.accept(l, None, None).unwrap();
    assert_default_qos(&get_group_qos(&a, observer), "a member's lpGQOS is ignored");
    // From the creator: the group QoS every member reads.
    let mut gq = sending(50_000, 8_000, GuaranteedService);
    gq.ReceivingFlowspec.Latency = 40_000;
    gq.ProviderSpecific = b"grp".to_vec();
    wsa_connect(&a, creator, at(B, 37400), None, None, None, Some(&gq))
        .expect("WSAConnect from the creator");
    b.accept(l, None, None).unwrap();
    for s in [creator, member, observer] {
        assert_eq!(get_group_qos(&a, s), as_reported(&gq));
    }
    // lpGQOS does not touch the socket's own QoS.
    assert_default_qos(&get_qos(&a, creator), "the creator's socket QoS");
    // A UDP creator's WSAConnect (QoS to one peer) sets the group QoS too.
    let uc = wsa_socket(&a, SOCK_DGRAM, SG_UNCONSTRAINED_GROUP, 0);
    let uq = sending(20_000, 4_000, BestEffortService);
    wsa_connect(&a, uc, at(B, 37401), None, None, None, Some(&uq)).expect("UDP WSAConnect");
    assert_eq!(get_group_qos(&a, uc), as_reported(&uq));
}

// ---- 375–377: WSAGetQOSByName --------------------------------------------------------------

/// Conformance: 375 — `WSAGetQOSByName` with a known template name ("G711" and the other D-15 names, any case) fills a QOS with the template values.
#[test]
fn qos_by_name_fills_the_template() {
    let (a, _b) = two_hosts(37500);
    let s = new_socket(&a, SOCK_DGRAM);
    let mut q = QOS::default();
    assert_eq!(qos_by_name(&a, s, b"G711", &mut q), Ok(true));
    // The documented G.711 template (docs/decisions.md, qos/src/templates.rs).
    let g711 = FLOWSPEC {
        TokenRate: 10_900,
        TokenBucketSize: 436,
        PeakBandwidth: 10_900,
        Latency: 110_000,
        DelayVariation: 20_000,
        LevelOfGuarantee: GuaranteedService,
        CostOfCall: 0,
        NetworkAvailability: 1,
    };
    assert_eq!(q.SendingFlowspec, g711);
    assert_eq!(q.ReceivingFlowspec, g711);
    assert!(q.ProviderSpecific.is_empty());
    // Case is ignored, a trailing NUL is allowed (a C string with its terminator).
    for name in [&b"g711"[..], b"G711\0", b"g711\0garbage"] {
        let mut other = QOS::zeroed();
        assert_eq!(qos_by_name(&a, s, name, &mut other), Ok(true));
        assert_eq!(other, q, "{:?}", String::from_utf8_lossy(name));
    }
    // Every template is a valid request this provider accepts, and reads back unchanged.
    for name in [
        "G711", "G723.1", "G729", "GSM6.10", "H261QCIF", "H261CIF", "H263QCIF", "H263CIF",
    ] {
        let mut t = QOS::zeroed();
        assert_eq!(
            qos_by_name(&a, s, name.as_bytes(), &mut t),
            Ok(true),
            "{name}"
        );
        assert!(t.SendingFlowspec.TokenRate > 0, "{name}");
        assert_ne!(
            t.SendingFlowspec.LevelOfGuarantee, BestEffortService,
            "{name}"
        );
        let sock = new_socket(&a, SOCK_DGRAM);
        set_qos(&a, sock, &t).unwrap_or_else(|e| panic!("{name}: {e:?}"));
        assert_eq!(get_qos(&a, sock), as_reported(&t), "{name}");
    }
}

/// Conformance: 376 — `WSAGetQOSByName` with an unknown name returns FALSE with `WSAEINVAL` (D-27) and leaves the QOS alone.
#[test]
fn qos_by_name_unknown_is_einval() {
    let (a, _b) = two_hosts(37600);
    let s = new_socket(&a, SOCK_STREAM);
    for name in [
        &b"G.711"[..],
        b"G711 ",
        b" G711",
        b"G7111",
        b"H264",
        b"nonsense",
        b"\xff\xfe",
    ] {
        let mut q = sending(1, 2, BestEffortService);
        let before = q.clone();
        assert_wsa_error(qos_by_name(&a, s, name, &mut q), WsaError::WSAEINVAL);
        assert_eq!(
            q,
            before,
            "{:?} left the QOS alone",
            String::from_utf8_lossy(name)
        );
    }
}

/// Conformance: 377, 21 — `WSAGetQOSByName`, the QoS ioctls and `WSAConnect` on a non-socket or a closed socket fail with `WSAENOTSOCK`.
#[test]
fn qos_calls_on_non_sockets_are_enotsock() {
    let (a, _b) = two_hosts(37700);
    let closed = new_socket(&a, SOCK_DGRAM);
    a.closesocket(closed).unwrap();
    let creator = wsa_socket(&a, SOCK_STREAM, SG_UNCONSTRAINED_GROUP, 0);
    a.closesocket(creator).unwrap();
    let q = QOS::default();
    for s in [closed, creator, INVALID_SOCKET, 0, 123_456] {
        let mut out = QOS::default();
        assert_wsa_error(qos_by_name(&a, s, b"G711", &mut out), WsaError::WSAENOTSOCK);
        assert_eq!(out, QOS::default());
        for code in [SIO_SET_QOS, SIO_SET_GROUP_QOS] {
            assert_wsa_error(ioctl(&a, s, code, &q.to_bytes(), 0), WsaError::WSAENOTSOCK);
        }
        for code in [SIO_GET_QOS, SIO_GET_GROUP_QOS] {
            assert_wsa_error(ioctl(&a, s, code, &[], 256), WsaError::WSAENOTSOCK);
        }
        assert_wsa_error(
            wsa_connect(&a, s, at(B, 37700), None, None, Some(&q), Some(&q)),
            WsaError::WSAENOTSOCK,
        );
    }
}

/// Conformance: 375 — `WSAGetQOSByName` with an empty name enumerates the template names into `lpQOSName` (NUL-separated, empty name last); too small a buffer, or no `lpQOSName`/`lpQOS`, is `WSAEFAULT`.
#[test]
fn qos_by_name_enumeration_and_bad_buffers() {
    let (a, _b) = two_hosts(37601);
    let s = new_socket(&a, SOCK_DGRAM);
    let expected: Vec<u8> = {
        let mut v = Vec::new();
        for n in [
            "G711", "G723.1", "G729", "GSM6.10", "H261QCIF", "H261CIF", "H263QCIF", "H263CIF",
        ] {
            v.extend_from_slice(n.as_bytes());
            v.push(0);
        }
        v.push(0);
        v
    };
    let mut name = WSABUF::zeroed(256);
    assert_eq!(a.WSAGetQOSByName(s, Some(&mut name), None), Ok(true));
    assert_eq!(name.len as usize, expected.len());
    assert_eq!(&name.buf[..expected.len()], &expected[..]);
    // Each listed name is a template.
    for n in expected.split(|&b| b == 0).filter(|n| !n.is_empty()) {
        let mut q = QOS::default();
        assert_eq!(qos_by_name(&a, s, n, &mut q), Ok(true));
    }
    // Exactly big enough works; one byte less is WSAEFAULT and writes nothing.
    let mut exact = WSABUF::zeroed(expected.len());
    assert_eq!(a.WSAGetQOSByName(s, Some(&mut exact), None), Ok(true));
    assert_eq!(exact.buf, expected);
    for len in [0, 1, 10, expected.len() - 1] {
        let mut small = WSABUF::zeroed(len);
        assert_wsa_error(
            a.WSAGetQOSByName(s, Some(&mut small), None),
            WsaError::WSAEFAULT,
        );
        assert!(small.buf.iter().all(|&b| b == 0), "nothing written");
    }
    // No name at all, or a known name with nowhere to put the QOS.
    let mut q = QOS::default();
    assert_wsa_error(
        a.WSAGetQOSByName(s, None, Some(&mut q)),
        WsaError::WSAEFAULT,
    );
    let mut g711 = WSABUF::new(b"G711".to_vec());
    assert_wsa_error(
        a.WSAGetQOSByName(s, Some(&mut g711), None),
        WsaError::WSAEFAULT,
    );
}

/// Conformance: 353 — every socket type of this provider supports QoS (TCP, UDP, listening, accepted, raw ICMP): `SIO_SET_QOS` is granted and read back; there is no QoS-less configuration, so 379's `WSAENOPROTOOPT` cannot arise.
#[test]
fn qos_ioctls_are_supported_on_every_socket_type() {
    let (a, b) = two_hosts(37900);
    let (c, s) = tcp_pair(&a, &b, 37900);
    let l = listener(&a, at(A, 37901), 1);
    let raw = a.socket(AF_INET, SOCK_RAW, IPPROTO_ICMP).expect("raw ICMP");
    let q = sending(10_000, 3_000, BestEffortService);
    for (ws, sock) in [
        (&a, new_socket(&a, SOCK_STREAM)),
        (&a, new_socket(&a, SOCK_DGRAM)),
        (&a, c),
        (&b, s),
        (&a, l),
        (&a, raw),
    ] {
        set_qos(ws, sock, &q).expect("SIO_SET_QOS");
        assert_eq!(get_qos(ws, sock), as_reported(&q));
    }
}

// ---- WSAConnect (group E 125–133) ----------------------------------------------------------

/// Conformance: 130 — `WSAConnect` with an `lpSQOS` the provider cannot admit fails with `WSAEOPNOTSUPP` without connecting; a scaled-down retry succeeds.
#[test]
fn wsa_connect_with_unadmittable_qos_fails() {
    let (a, b) = hosts_with_capacity(13000, 100_000);
    let l = listener(&b, at(B, 13000), 4);
    set_nonblocking(&b, l, true);
    let c = new_socket(&a, SOCK_STREAM);
    let too_much = sending(150_000, 8_000, GuaranteedService);
    assert_wsa_error(
        wsa_connect(&a, c, at(B, 13000), None, None, Some(&too_much), None),
        WsaError::WSAEOPNOTSUPP,
    );
    assert_wsa_error(peer_name(&a, c), WsaError::WSAENOTCONN);
    thread::sleep(Duration::from_millis(200));
    assert_would_block(b.accept(l, None, None));
    assert_default_qos(&get_qos(&a, c), "nothing granted");
    // The application scales down and retries on the same socket.
    let fits = sending(80_000, 8_000, GuaranteedService);
    wsa_connect(&a, c, at(B, 13000), None, None, Some(&fits), None).expect("retry");
    assert_eq!(peer_name(&a, c), Ok(at(B, 13000)));
    assert_eq!(get_qos(&a, c), as_reported(&fits));
    // The same on a UDP socket (QoS to one designated peer).
    let u = new_socket(&a, SOCK_DGRAM);
    assert_wsa_error(
        wsa_connect(&a, u, at(B, 13001), None, None, Some(&too_much), None),
        WsaError::WSAEOPNOTSUPP,
    );
    assert_wsa_error(peer_name(&a, u), WsaError::WSAENOTCONN);
}

/// Conformance: 131, 133 — `WSAConnect`'s `lpSQOS` overrides an earlier `SIO_SET_QOS`; without one, `SIO_GET_QOS` after a connection attempt (successful or refused) reports provider flowspecs (the defaults when nothing is known).
#[test]
fn wsa_connect_sqos_overrides_ioctl_qos() {
    let (a, b) = two_hosts(13100);
    let l = listener(&b, at(B, 13100), 4);
    for ty in [SOCK_STREAM, SOCK_DGRAM] {
        let c = new_socket(&a, ty);
        let early = sending(5_000, 2_000, BestEffortService);
        set_qos(&a, c, &early).unwrap();
        let mut later = sending(60_000, 6_000, PredictiveService);
        later.ReceivingFlowspec.TokenRate = 1_000;
        wsa_connect(&a, c, at(B, 13100), None, None, Some(&later), None).expect("WSAConnect");
        assert_eq!(get_qos(&a, c), as_reported(&later), "type {ty}");
        if ty == SOCK_STREAM {
            b.accept(l, None, None).unwrap();
        }
    }
    // No lpSQOS: the defaults after a successful and after a refused attempt.
    let ok = new_socket(&a, SOCK_STREAM);
    wsa_connect(&a, ok, at(B, 13100), None, None, None, None).unwrap();
    assert_default_qos(&get_qos(&a, ok), "after a successful connect");
    let refused = new_socket(&a, SOCK_STREAM);
    assert_wsa_error(
        wsa_connect(&a, refused, at(B, 13199), None, None, None, None),
        WsaError::WSAECONNREFUSED,
    );
    assert_default_qos(&get_qos(&a, refused), "after a refused connect");
}

/// Conformance: 125, 126, 127, 128 — `WSAConnect` caller/callee data: UDP ignores both; TCP refuses caller data with `WSAEPROTONOSUPPORT`, sets `lpCalleeData->len` to 0, and accepts NULL for both.
#[test]
fn wsa_connect_caller_and_callee_data() {
    let (a, b) = two_hosts(12500);
    let l = listener(&b, at(B, 12500), 4);
    let caller = WSABUF::new(b"hello, callee".to_vec());
    // TCP: no connect data.
    let c = new_socket(&a, SOCK_STREAM);
    assert_wsa_error(
        wsa_connect(&a, c, at(B, 12500), Some(&caller), None, None, None),
        WsaError::WSAEPROTONOSUPPORT,
    );
    assert_wsa_error(peer_name(&a, c), WsaError::WSAENOTCONN);
    // An empty caller buffer is no data.
    let empty = WSABUF::new(Vec::new());
    let mut callee = WSABUF::zeroed(64);
    wsa_connect(
        &a,
        c,
        at(B, 12500),
        Some(&empty),
        Some(&mut callee),
        None,
        None,
    )
    .expect("WSAConnect");
    assert_eq!(callee.len, 0, "the peer returned no data");
    b.accept(l, None, None).unwrap();
    let c2 = new_socket(&a, SOCK_STREAM);
    wsa_connect(&a, c2, at(B, 12500), None, None, None, None).expect("NULL callee data");
    b.accept(l, None, None).unwrap();
    // UDP: caller data is ignored, the connect works.
    let u = udp_bound(&a, at(A, 12501));
    let rx = udp_bound(&b, at(B, 12501));
    let mut callee = WSABUF::zeroed(16);
    wsa_connect(
        &a,
        u,
        at(B, 12501),
        Some(&caller),
        Some(&mut callee),
        None,
        None,
    )
    .expect("UDP ignores connect data");
    assert_eq!(peer_name(&a, u), Ok(at(B, 12501)));
    assert_eq!(a.send(u, b"dgram", 0), Ok(5));
    assert!(wait_readable(&b, rx, 5_000));
    let mut buf = [0u8; 64];
    let (n, from) = recvfrom(&b, rx, &mut buf, 0).unwrap();
    assert_eq!(
        &buf[..n as usize],
        b"dgram",
        "only the datagram, no caller data"
    );
    assert_eq!(from, at(A, 12501));
}

/// Conformance: 356 — a group's reservation is admitted like a socket's: a group
/// GuaranteedService beyond the capacity fails WSAEOPNOTSUPP, and a dissolved group gives its
/// reservation back.
#[test]
fn group_reservations_are_admitted_and_freed() {
    let (a, _b) = hosts_with_capacity(35610, 100_000);
    let creator = wsa_socket(&a, SOCK_DGRAM, SG_UNCONSTRAINED_GROUP, 0);
    assert_wsa_error(
        set_group_qos(&a, creator, &sending(200_000, 10_000, GuaranteedService)),
        WsaError::WSAEOPNOTSUPP,
    );
    set_group_qos(&a, creator, &sending(80_000, 10_000, GuaranteedService))
        .expect("fits the capacity");
    let other = new_socket(&a, SOCK_DGRAM);
    assert_wsa_error(
        set_qos(&a, other, &sending(50_000, 10_000, GuaranteedService)),
        WsaError::WSAEOPNOTSUPP,
    );
    a.closesocket(creator).unwrap();
    set_qos(&a, other, &sending(50_000, 10_000, GuaranteedService))
        .expect("the dissolved group's reservation was released");
}
