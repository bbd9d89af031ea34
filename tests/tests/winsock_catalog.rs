//! CHECKLIST Part 2 group R: the protocol catalog and `WSAEnumProtocols` (Part 1 §1.11), plus
//! the catalog's agreement with what the sockets do (socket types, message sizes, QoS) and the
//! common error rows (`WSANOTINITIALISED`, `WSAEINPROGRESS` from a 1.1 blocking hook).
//!
//! The catalog has five entries: TCP, UDP, raw ICMP and the two RMP entries (SOCK_RDM, rooted
//! multipoint, docs/rmp.md; their behaviour is tested in winsock_rmp.rs).
//!
//! Not here: 446 and 447 need `getsockopt(SO_PROTOCOL_INFO)` and `WSASocket` looking entries
//! up, which belong to the options and socket-creation work. The TCP entry advertises
//! `XP1_EXPEDITED_DATA`: urgent data itself is tested in winsock_oob.rs and kernel_oob.rs.

use std::cell::RefCell;
use std::rc::Rc;

use ws2_stack::winsock::*;
use ws2_stack::WsaError;
use ws2_tap::VirtualSwitch;
use ws2_tests::*;

// ---- helpers ------------------------------------------------------------------------------

/// TCP, UDP, raw ICMP, "ws2 RMP [rooted data]" and "ws2 RMP [non-rooted data]".
const ENTRIES: u32 = 5;

/// `WSAEnumProtocols(filter, buf, &len)` with a buffer of `room` entries and `*len` = its size.
fn enum_with_room(
    ws: &Winsock,
    filter: Option<&[i32]>,
    room: usize,
) -> (Result<i32, WsaError>, u32, Vec<WSAPROTOCOL_INFO>) {
    let mut buf = vec![WSAPROTOCOL_INFO::default(); room];
    let mut len = room as u32 * WSAPROTOCOL_INFO_LEN;
    let r = ws.WSAEnumProtocols(filter, Some(&mut buf), &mut len);
    (r, len, buf)
}

/// Every entry `filter` selects, asking for the size first as an application would.
#[track_caller]
fn enumerate(ws: &Winsock, filter: Option<&[i32]>) -> Vec<WSAPROTOCOL_INFO> {
    let mut len = 0u32;
    match ws.WSAEnumProtocols(filter, None, &mut len) {
        Ok(0) => return Vec::new(),
        Ok(n) => panic!("a NULL buffer cannot take {n} entries"),
        Err(e) => assert_eq!(e, WsaError::WSAENOBUFS, "size query"),
    }
    assert_eq!(len % WSAPROTOCOL_INFO_LEN, 0, "a whole number of entries");
    let room = (len / WSAPROTOCOL_INFO_LEN) as usize;
    let (r, out_len, mut buf) = enum_with_room(ws, filter, room);
    let n = r.expect("WSAEnumProtocols with the reported size") as usize;
    assert_eq!(n, room, "exactly the reported number of entries");
    assert_eq!(out_len, len, "the needed size is reported again");
    buf.truncate(n);
    buf
}

/// The one enumerated entry for `protocol`.
#[track_caller]
fn entry(ws: &Winsock, protocol: i32) -> WSAPROTOCOL_INFO {
    let found = enumerate(ws, Some(&[protocol, 0]));
    assert_eq!(found.len(), 1, "one entry for protocol {protocol}");
    found[0]
}

fn host(seed: u64) -> Winsock {
    started(&stack_on(&VirtualSwitch::new(seed), config(A)))
}

fn has(e: &WSAPROTOCOL_INFO, flag: u32) -> bool {
    e.dwServiceFlags1 & flag != 0
}

/// `SIO_SET_QOS` on `s` with a modest best-effort sending flowspec.
fn set_qos(ws: &Winsock, s: SOCKET) -> Result<(), WsaError> {
    let mut q = QOS::default();
    q.SendingFlowspec.TokenRate = 10_000;
    q.SendingFlowspec.TokenBucketSize = 3_000;
    q.SendingFlowspec.LevelOfGuarantee = BestEffortService;
    let mut n = 0u32;
    ws.WSAIoctl(
        s,
        SIO_SET_QOS,
        &q.to_bytes(),
        &mut [],
        Some(&mut n),
        None,
        None,
    )
    .map(drop)
}

// ---- WSAEnumProtocols ---------------------------------------------------------------------

/// Conformance: 437 — `WSAEnumProtocols(NULL, buf, &len)` returns the number of entries and fills one `WSAPROTOCOL_INFO` per base protocol: TCP, UDP, raw ICMP and the two RMP entries.
#[test]
fn enumerates_every_base_protocol() {
    let ws = host(43700);
    let (r, len, buf) = enum_with_room(&ws, None, 8);
    assert_eq!(r, Ok(ENTRIES as i32), "TCP, UDP, raw ICMP, RMP ×2");
    assert_eq!(
        len,
        ENTRIES * WSAPROTOCOL_INFO_LEN,
        "out: the bytes the entries need"
    );
    let n = ENTRIES as usize;
    let names: Vec<String> = buf[..n].iter().map(|e| e.protocol_name()).collect();
    assert_eq!(
        names,
        [
            "ws2 TCP/IP [TCP]",
            "ws2 TCP/IP [UDP]",
            "ws2 TCP/IP [ICMP raw]",
            "ws2 RMP [rooted data]",
            "ws2 RMP [non-rooted data]",
        ]
    );
    for (e, (ty, proto)) in buf[..n].iter().zip([
        (SOCK_STREAM, IPPROTO_TCP),
        (SOCK_DGRAM, IPPROTO_UDP),
        (SOCK_RAW, IPPROTO_ICMP),
        (SOCK_RDM, IPPROTO_RMP),
        (SOCK_RDM, IPPROTO_RMP_RELAY),
    ]) {
        let n = e.protocol_name();
        assert_eq!((e.iSocketType, e.iProtocol), (ty, proto), "{n}");
        assert_eq!(e.iAddressFamily, AF_INET, "{n}");
        assert_eq!(
            e.ProtocolChain.ChainLen, BASE_PROTOCOL,
            "{n}: a base protocol"
        );
        assert_eq!(
            (e.iMinSockAddr, e.iMaxSockAddr),
            (16, 16),
            "{n}: sockaddr_in"
        );
        assert_eq!(e.iProtocolMaxOffset, 0, "{n}");
        assert_eq!(e.iSecurityScheme, SECURITY_PROTOCOL_NONE, "{n}");
        assert_eq!(e.iVersion, 2, "{n}");
        assert_eq!(e.dwProviderReserved, 0, "{n}");
        assert_eq!(
            (e.dwServiceFlags2, e.dwServiceFlags3, e.dwServiceFlags4),
            (0, 0, 0),
            "{n}: reserved"
        );
    }
    assert!(
        buf[n..].iter().all(|e| *e == WSAPROTOCOL_INFO::default()),
        "nothing written past the entries"
    );
    // Catalog ids and provider GUIDs tell the entries apart.
    let ids: Vec<u32> = buf[..n].iter().map(|e| e.dwCatalogEntryId).collect();
    assert_eq!(ids, [1001, 1002, 1003, 1004, 1005]);
    for i in 0..n {
        for j in i + 1..n {
            assert_ne!(buf[i].ProviderId, buf[j].ProviderId, "entries {i} and {j}");
        }
    }
}

/// Conformance: 438 — a buffer too small for every entry fails with `WSAENOBUFS`, sets `*lpdwBufferLength` to the size needed and leaves the buffer alone (no partial enumeration).
#[test]
fn too_small_a_buffer_reports_the_size() {
    let ws = host(43800);
    let need = ENTRIES * WSAPROTOCOL_INFO_LEN;
    // A NULL buffer with length 0: the usual size query.
    let mut len = 0u32;
    assert_wsa_error(
        ws.WSAEnumProtocols(None, None, &mut len),
        WsaError::WSAENOBUFS,
    );
    assert_eq!(len, need);
    // Room for all but one entry.
    let (r, len, buf) = enum_with_room(&ws, None, ENTRIES as usize - 1);
    assert_wsa_error(r, WsaError::WSAENOBUFS);
    assert_eq!(len, need);
    assert!(
        buf.iter().all(|e| *e == WSAPROTOCOL_INFO::default()),
        "no entry is written when they do not all fit"
    );
    // One byte short of every entry, in a buffer that really has room for them all.
    let mut buf = vec![WSAPROTOCOL_INFO::default(); ENTRIES as usize];
    let mut len = need - 1;
    assert_wsa_error(
        ws.WSAEnumProtocols(None, Some(&mut buf), &mut len),
        WsaError::WSAENOBUFS,
    );
    assert_eq!(len, need);
    // With a filter, the size needed is that of the filtered entries.
    let mut len = 0u32;
    assert_wsa_error(
        ws.WSAEnumProtocols(Some(&[IPPROTO_TCP, 0]), None, &mut len),
        WsaError::WSAENOBUFS,
    );
    assert_eq!(len, WSAPROTOCOL_INFO_LEN);
}

/// Conformance: 439 — a retry with a buffer of the reported size succeeds.
#[test]
fn retry_with_the_reported_size_succeeds() {
    let ws = host(43900);
    let mut len = 0u32;
    assert_wsa_error(
        ws.WSAEnumProtocols(None, None, &mut len),
        WsaError::WSAENOBUFS,
    );
    let mut buf = vec![WSAPROTOCOL_INFO::default(); (len / WSAPROTOCOL_INFO_LEN) as usize];
    assert_eq!(
        ws.WSAEnumProtocols(None, Some(&mut buf), &mut len),
        Ok(ENTRIES as i32)
    );
    assert!(buf.iter().all(|e| e.dwCatalogEntryId != 0), "all filled");
    // A larger buffer than needed works too.
    assert_eq!(
        enum_with_room(&ws, None, ENTRIES as usize + 2).0,
        Ok(ENTRIES as i32)
    );
}

/// Conformance: 440 — `lpiProtocols = {IPPROTO_UDP, 0}` returns only the UDP entry; other lists select their entries in catalog order, and the list ends at its 0.
#[test]
fn protocol_filter() {
    let ws = host(44000);
    let udp = enumerate(&ws, Some(&[IPPROTO_UDP, 0]));
    assert_eq!(udp.len(), 1);
    assert_eq!(
        (udp[0].iProtocol, udp[0].iSocketType),
        (IPPROTO_UDP, SOCK_DGRAM)
    );
    // Catalog order, whatever the order of the list.
    let two = enumerate(&ws, Some(&[IPPROTO_ICMP, IPPROTO_TCP, 0]));
    let protos: Vec<i32> = two.iter().map(|e| e.iProtocol).collect();
    assert_eq!(protos, [IPPROTO_TCP, IPPROTO_ICMP]);
    // The slice need not carry the terminator; anything after a 0 is not part of the list.
    assert_eq!(enumerate(&ws, Some(&[IPPROTO_UDP])), udp);
    assert_eq!(enumerate(&ws, Some(&[IPPROTO_UDP, 0, IPPROTO_TCP])), udp);
    // Each RMP protocol number selects its own entry.
    let rmp = enumerate(&ws, Some(&[IPPROTO_RMP_RELAY, IPPROTO_RMP, 0]));
    let names: Vec<String> = rmp.iter().map(|e| e.protocol_name()).collect();
    assert_eq!(
        names,
        ["ws2 RMP [rooted data]", "ws2 RMP [non-rooted data]"]
    );
    // An empty list, or protocols nobody provides, select nothing (and need no buffer).
    for filter in [&[0][..], &[][..], &[IPPROTO_IGMP, IPPROTO_RAW, 0][..]] {
        let mut len = 0u32;
        assert_eq!(
            ws.WSAEnumProtocols(Some(filter), None, &mut len),
            Ok(0),
            "{filter:?}"
        );
        assert_eq!(len, 0, "{filter:?}");
    }
}

/// Conformance: 441 — no enumerated entry is a layered protocol (`ChainLen` 0) or flagged `PFL_HIDDEN`.
#[test]
fn no_layered_or_hidden_entries() {
    let ws = host(44100);
    let all = enumerate(&ws, None);
    assert!(!all.is_empty());
    for e in &all {
        let n = e.protocol_name();
        assert_ne!(e.ProtocolChain.ChainLen, LAYERED_PROTOCOL, "{n}");
        assert!(
            e.ProtocolChain.ChainLen as usize <= MAX_PROTOCOL_CHAIN,
            "{n}"
        );
        assert_eq!(e.dwProviderFlags & PFL_HIDDEN, 0, "{n}");
    }
}

/// Conformance: 442 — the TCP entry: delivery, order, graceful close, expedited (urgent) data,
/// a stream.
#[test]
fn tcp_entry_attributes() {
    let ws = host(44200);
    let tcp = entry(&ws, IPPROTO_TCP);
    assert_eq!(tcp.iSocketType, SOCK_STREAM);
    for (flag, name) in [
        (XP1_GUARANTEED_DELIVERY, "XP1_GUARANTEED_DELIVERY"),
        (XP1_GUARANTEED_ORDER, "XP1_GUARANTEED_ORDER"),
        (XP1_GRACEFUL_CLOSE, "XP1_GRACEFUL_CLOSE"),
    ] {
        assert!(has(&tcp, flag), "{name}");
    }
    assert!(!has(&tcp, XP1_CONNECTIONLESS), "connection-oriented");
    assert!(!has(&tcp, XP1_MESSAGE_ORIENTED), "a byte stream");
    assert!(!has(&tcp, XP1_PSEUDO_STREAM));
    assert_eq!(tcp.dwMessageSize, 0, "0: stream, no message size");
    assert!(has(&tcp, XP1_EXPEDITED_DATA), "TCP urgent data (442)");
    assert!(!has(&tcp, XP1_SUPPORT_MULTIPOINT), "WSASocket rule 44");
}

/// Conformance: 443 — the UDP (IP multicast) entry has `XP1_CONNECTIONLESS`, `XP1_MESSAGE_ORIENTED`, `XP1_SUPPORT_BROADCAST`, `XP1_SUPPORT_MULTIPOINT` and clear `XP1_MULTIPOINT_CONTROL_PLANE`/`XP1_MULTIPOINT_DATA_PLANE` (non-rooted).
#[test]
fn udp_entry_attributes() {
    let ws = host(44300);
    let udp = entry(&ws, IPPROTO_UDP);
    for (flag, name) in [
        (XP1_CONNECTIONLESS, "XP1_CONNECTIONLESS"),
        (XP1_MESSAGE_ORIENTED, "XP1_MESSAGE_ORIENTED"),
        (XP1_SUPPORT_BROADCAST, "XP1_SUPPORT_BROADCAST"),
        (XP1_SUPPORT_MULTIPOINT, "XP1_SUPPORT_MULTIPOINT"),
    ] {
        assert!(has(&udp, flag), "{name}");
    }
    assert!(
        !has(&udp, XP1_MULTIPOINT_CONTROL_PLANE),
        "non-rooted control plane"
    );
    assert!(
        !has(&udp, XP1_MULTIPOINT_DATA_PLANE),
        "non-rooted data plane"
    );
    assert!(!has(&udp, XP1_GUARANTEED_DELIVERY) && !has(&udp, XP1_GUARANTEED_ORDER));
    assert!(!has(&udp, XP1_GRACEFUL_CLOSE));
    assert_eq!(udp.dwMessageSize, 65_507, "the largest IPv4 UDP payload");
    // The raw ICMP entry: datagrams too, but no broadcast or multipoint.
    let raw = entry(&ws, IPPROTO_ICMP);
    assert_eq!(raw.iSocketType, SOCK_RAW);
    assert!(has(&raw, XP1_CONNECTIONLESS) && has(&raw, XP1_MESSAGE_ORIENTED));
    assert!(!has(&raw, XP1_SUPPORT_BROADCAST) && !has(&raw, XP1_SUPPORT_MULTIPOINT));
    assert_eq!(raw.dwMessageSize, 65_515, "the largest IPv4 payload");
}

/// The two RMP entries (docs/rmp.md §1, D-18, D-19): reliable, ordered, message-oriented
/// multipoint with a rooted control plane, connect and disconnect data, 64 KiB messages; the
/// rooted-data entry alone sets `XP1_MULTIPOINT_DATA_PLANE`, and only it answers protocol 0.
#[test]
fn rmp_entries_attributes() {
    let ws = host(44310);
    let rooted = entry(&ws, IPPROTO_RMP);
    let relay = entry(&ws, IPPROTO_RMP_RELAY);
    for e in [&rooted, &relay] {
        let n = e.protocol_name();
        assert_eq!(e.iSocketType, SOCK_RDM, "{n}");
        for (flag, name) in [
            (XP1_SUPPORT_MULTIPOINT, "XP1_SUPPORT_MULTIPOINT"),
            (XP1_MULTIPOINT_CONTROL_PLANE, "XP1_MULTIPOINT_CONTROL_PLANE"),
            (XP1_MESSAGE_ORIENTED, "XP1_MESSAGE_ORIENTED"),
            (XP1_CONNECT_DATA, "XP1_CONNECT_DATA"),
            (XP1_DISCONNECT_DATA, "XP1_DISCONNECT_DATA"),
            (XP1_GUARANTEED_DELIVERY, "XP1_GUARANTEED_DELIVERY"),
            (XP1_GUARANTEED_ORDER, "XP1_GUARANTEED_ORDER"),
            (XP1_GRACEFUL_CLOSE, "XP1_GRACEFUL_CLOSE"),
        ] {
            assert!(has(e, flag), "{n}: {name}");
        }
        assert!(!has(e, XP1_CONNECTIONLESS), "{n}: sessions are connections");
        assert!(!has(e, XP1_SUPPORT_BROADCAST), "{n}");
        assert_eq!(e.dwMessageSize, 65_536, "{n}: MAX_PAYLOAD");
    }
    assert!(has(&rooted, XP1_MULTIPOINT_DATA_PLANE), "rooted data plane");
    assert!(
        !has(&relay, XP1_MULTIPOINT_DATA_PLANE),
        "non-rooted data plane"
    );
    assert_ne!(rooted.dwProviderFlags & PFL_MATCHES_PROTOCOL_ZERO, 0);
    assert_eq!(relay.dwProviderFlags & PFL_MATCHES_PROTOCOL_ZERO, 0);
}

/// Conformance: 444 — every entry (all IP) has `iNetworkByteOrder` = `BIGENDIAN` and at most one of `XP1_UNI_SEND`/`XP1_UNI_RECV`.
#[test]
fn byte_order_and_direction() {
    let ws = host(44400);
    for e in enumerate(&ws, None) {
        let n = e.protocol_name();
        assert_eq!(e.iNetworkByteOrder, BIGENDIAN, "{n}");
        assert!(
            !(has(&e, XP1_UNI_SEND) && has(&e, XP1_UNI_RECV)),
            "{n}: not both directions' bits"
        );
        assert!(
            !has(&e, XP1_UNI_SEND) && !has(&e, XP1_UNI_RECV),
            "{n}: every socket here sends and receives"
        );
    }
}

/// Conformance: 445 — entries with `XP1_QOS_SUPPORTED` accept `SIO_SET_QOS` on their sockets; a stack configured without QoS advertises it on no entry and its sockets fail `SIO_SET_QOS` with `WSAENOPROTOOPT`.
#[test]
fn qos_flag_matches_sio_set_qos() {
    let switch = VirtualSwitch::new(44500);
    let with = started(&stack_on(&switch, config(A)));
    let mut cfg = config(B);
    cfg.qos_support = false;
    let without = started(&stack_on(&switch, cfg));
    let mut seen_with = 0;
    for (ws, advertises) in [(&with, true), (&without, false)] {
        for e in enumerate(ws, None) {
            let n = e.protocol_name();
            assert_eq!(has(&e, XP1_QOS_SUPPORTED), advertises, "{n}");
            let s = ws
                .socket(e.iAddressFamily, e.iSocketType, e.iProtocol)
                .expect("a socket from the entry");
            if has(&e, XP1_QOS_SUPPORTED) {
                seen_with += 1;
                set_qos(ws, s).expect("SIO_SET_QOS where advertised");
            } else {
                assert_wsa_error(set_qos(ws, s), WsaError::WSAENOPROTOOPT);
            }
            ws.closesocket(s).expect("closesocket");
        }
    }
    assert_eq!(
        seen_with, ENTRIES,
        "the QoS provider advertises it on every entry"
    );
}

/// Conformance: 448 — the order of the entries is the same on every call, and for every application.
#[test]
fn order_is_stable() {
    let ws = host(44800);
    let first = enumerate(&ws, None);
    for _ in 0..5 {
        assert_eq!(enumerate(&ws, None), first);
    }
    assert_eq!(enumerate(&host(44801), None), first, "another stack");
    let other_app = started(ws.stack());
    assert_eq!(enumerate(&other_app, None), first, "another application");
}

/// Conformance: 449 — a bad `lpdwBufferLength` fails with `WSAEINVAL`: a reference cannot dangle in Rust, so the bad case left is a length larger than the buffer really is (or any length with a NULL buffer); nothing is written.
#[test]
fn length_larger_than_the_buffer_is_invalid() {
    let ws = host(44900);
    let mut buf = vec![WSAPROTOCOL_INFO::default(); 1];
    let mut len = ENTRIES * WSAPROTOCOL_INFO_LEN;
    assert_wsa_error(
        ws.WSAEnumProtocols(None, Some(&mut buf), &mut len),
        WsaError::WSAEINVAL,
    );
    assert_eq!(len, ENTRIES * WSAPROTOCOL_INFO_LEN, "left alone");
    assert_eq!(buf[0], WSAPROTOCOL_INFO::default(), "nothing written");
    let mut len = 1;
    assert_wsa_error(
        ws.WSAEnumProtocols(None, None, &mut len),
        WsaError::WSAEINVAL,
    );
    let mut len = u32::MAX;
    assert_wsa_error(
        ws.WSAEnumProtocols(None, Some(&mut buf), &mut len),
        WsaError::WSAEINVAL,
    );
}

// ---- common error rows ----------------------------------------------------------------------

/// Conformance: 1, 14 — `WSAEnumProtocols` before `WSAStartup`, and after the final `WSACleanup`, fails with `WSANOTINITIALISED` and leaves the length alone.
#[test]
fn not_initialised() {
    let ws = Winsock::new(stack_on(&VirtualSwitch::new(100), config(A)));
    let mut buf = vec![WSAPROTOCOL_INFO::default(); ENTRIES as usize];
    let mut len = ENTRIES * WSAPROTOCOL_INFO_LEN;
    assert_wsa_error(
        ws.WSAEnumProtocols(None, Some(&mut buf), &mut len),
        WsaError::WSANOTINITIALISED,
    );
    assert_eq!(len, ENTRIES * WSAPROTOCOL_INFO_LEN);
    let mut data = WSADATA::default();
    assert_eq!(ws.WSAStartup(MAKEWORD(2, 2), Some(&mut data)), 0);
    assert_eq!(ws.WSAStartup(MAKEWORD(2, 2), Some(&mut data)), 0);
    ws.WSACleanup().expect("first cleanup");
    assert_eq!(
        ws.WSAEnumProtocols(None, Some(&mut buf), &mut len),
        Ok(ENTRIES as i32),
        "still started once"
    );
    ws.WSACleanup().expect("final cleanup");
    let mut len = 0;
    assert_wsa_error(
        ws.WSAEnumProtocols(None, None, &mut len),
        WsaError::WSANOTINITIALISED,
    );
    assert_eq!(len, 0);
}

/// What calls made from a hook returned, with `WSAGetLastError` after each.
type Seen = Rc<RefCell<Vec<(Result<i32, WsaError>, i32)>>>;

/// Conformance: 338 — in 1.1 mode `WSAEnumProtocols` from inside the blocking hook fails with `WSAEINPROGRESS`.
#[test]
fn from_a_blocking_hook_is_in_progress() {
    let ws = started_version(
        &stack_on(&VirtualSwitch::new(3381), config(A)),
        MAKEWORD(1, 1),
    );
    let u = udp_bound(&ws, at(A, 33810));
    let seen: Seen = Rc::default();
    let (w, out) = (ws.clone(), seen.clone());
    ws.WSASetBlockingHook(Box::new(move || {
        let mut len = 0u32;
        let r = w.WSAEnumProtocols(None, None, &mut len);
        out.borrow_mut().push((r, WSAGetLastError()));
        let _ = w.WSACancelBlockingCall();
        false
    }))
    .expect("WSASetBlockingHook");
    let mut buf = [0u8; 8];
    assert_wsa_error(ws.recv(u, &mut buf, 0), WsaError::WSAEINTR);
    let seen = seen.borrow();
    assert!(!seen.is_empty(), "the hook ran");
    for (r, last) in seen.iter() {
        assert_eq!(*r, Err(WsaError::WSAEINPROGRESS));
        assert_eq!(*last, WsaError::WSAEINPROGRESS.0);
    }
    ws.WSAUnhookBlockingHook().expect("unhook");
    let mut len = 0u32;
    assert_wsa_error(
        ws.WSAEnumProtocols(None, None, &mut len),
        WsaError::WSAENOBUFS,
    );
}

// ---- the catalog agrees with the sockets ----------------------------------------------------

/// Every entry's (af, type, protocol) creates a socket of that type; protocol 0 creates one
/// only where an entry of that (af, type) is flagged `PFL_MATCHES_PROTOCOL_ZERO` (raw ICMP has
/// none), and at most one entry per (af, type) carries the flag (447).
#[test]
fn entries_create_their_sockets() {
    let ws = host(32);
    let all = enumerate(&ws, None);
    for e in &all {
        let n = e.protocol_name();
        let s = ws
            .socket(e.iAddressFamily, e.iSocketType, e.iProtocol)
            .unwrap_or_else(|err| panic!("{n}: {err:?}"));
        assert_eq!(
            get_int(&ws, s, SOL_SOCKET, SO_TYPE),
            Ok(e.iSocketType),
            "{n}"
        );
        ws.closesocket(s).expect("closesocket");
        let zero = ws.socket(e.iAddressFamily, e.iSocketType, 0);
        let zero_entries = all
            .iter()
            .filter(|o| (o.iAddressFamily, o.iSocketType) == (e.iAddressFamily, e.iSocketType))
            .filter(|o| o.dwProviderFlags & PFL_MATCHES_PROTOCOL_ZERO != 0)
            .count();
        assert!(zero_entries <= 1, "{n}: protocol 0 names one entry at most");
        if zero_entries == 1 {
            let z = zero.unwrap_or_else(|err| panic!("{n}, protocol 0: {err:?}"));
            assert_eq!(
                get_int(&ws, z, SOL_SOCKET, SO_TYPE),
                Ok(e.iSocketType),
                "{n}, protocol 0"
            );
            ws.closesocket(z).expect("closesocket");
        } else {
            assert!(
                zero.is_err(),
                "{n}: no entry of this type answers protocol 0"
            );
        }
    }
    let flagged: Vec<i32> = all
        .iter()
        .filter(|e| e.dwProviderFlags & PFL_MATCHES_PROTOCOL_ZERO != 0)
        .map(|e| e.iProtocol)
        .collect();
    assert_eq!(flagged, [IPPROTO_TCP, IPPROTO_UDP, IPPROTO_RMP]);
}

/// A datagram entry's `dwMessageSize` is its sockets' `SO_MAX_MSG_SIZE`.
#[test]
fn message_size_matches_so_max_msg_size() {
    let ws = host(470);
    for e in enumerate(&ws, None) {
        if !has(&e, XP1_MESSAGE_ORIENTED) {
            continue;
        }
        let s = ws
            .socket(e.iAddressFamily, e.iSocketType, e.iProtocol)
            .expect("socket");
        assert_eq!(
            get_int(&ws, s, SOL_SOCKET, SO_MAX_MSG_SIZE),
            Ok(e.dwMessageSize as i32),
            "{}",
            e.protocol_name()
        );
        ws.closesocket(s).expect("closesocket");
    }
}

/// No entry claims what this provider does not do: IFS handles (Part 3 #7), partial messages
/// (188), pseudo-streams, security; connect and disconnect data (D-19) only on the RMP
/// entries, whose JOIN/ACCEPT/DISCONNECT carry them (docs/rmp.md §3).
#[test]
fn nothing_unimplemented_is_advertised() {
    let ws = host(7);
    for e in enumerate(&ws, None) {
        let n = e.protocol_name();
        for (flag, name) in [
            (XP1_IFS_HANDLES, "XP1_IFS_HANDLES"),
            (XP1_PARTIAL_MESSAGE, "XP1_PARTIAL_MESSAGE"),
            (XP1_PSEUDO_STREAM, "XP1_PSEUDO_STREAM"),
            (XP1_INTERRUPT, "XP1_INTERRUPT"),
        ] {
            assert!(!has(&e, flag), "{n}: {name}");
        }
        let rmp = e.iSocketType == SOCK_RDM;
        assert_eq!(has(&e, XP1_CONNECT_DATA), rmp, "{n}: XP1_CONNECT_DATA");
        assert_eq!(
            has(&e, XP1_DISCONNECT_DATA),
            rmp,
            "{n}: XP1_DISCONNECT_DATA"
        );
        assert_eq!(e.iSecurityScheme, SECURITY_PROTOCOL_NONE, "{n}");
        assert!(n.len() <= WSAPROTOCOL_LEN, "{n}");
    }
}

/// The structure has the 372-byte `WSAPROTOCOL_INFOA` layout, the unit of `lpdwBufferLength`.
#[test]
fn structure_size() {
    assert_eq!(WSAPROTOCOL_INFO_LEN, 372);
    assert_eq!(
        std::mem::size_of::<WSAPROTOCOL_INFOA>(),
        WSAPROTOCOL_INFO_LEN as usize
    );
}
