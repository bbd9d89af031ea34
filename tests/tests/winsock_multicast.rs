//! CHECKLIST Part 2 group P: IP multicast through the Winsock multipoint interface (Part 1
//! §1.10): multipoint socket creation (39–42), `WSAJoinLeaf` on the non-rooted IP multicast
//! entry (393–404, 415, 416), `SIO_MULTIPOINT_LOOPBACK` and `SIO_MULTICAST_SCOPE` (405–410, D-16,
//! D-17), membership and delivery (411–414), `select` and the nonblocking join (251), and the
//! catalog entry (443). The Deering options (`IP_ADD_MEMBERSHIP` …) have no behaviour number;
//! they are checked at the end because the Rust face is built on them.
//!
//! What goes on the wire is read from a bare [`SwitchPort`] (the "watcher"): the switch floods
//! every multicast frame to all other ports, so the watcher sees each IGMP message and each
//! multicast datagram a stack sends. Waits for something that must happen are generous (5 s);
//! checks that nothing happens watch for `QUIET` and then expect `WSAEWOULDBLOCK` from a
//! nonblocking receive.
//!
//! Some checks need the join to stay outstanding: a [`Gate`] link refuses every frame with
//! `WouldBlock` while closed, so the IGMP report cannot leave the stack until the test opens it.

use std::io;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use ws2_stack::winsock::*;
use ws2_stack::{Stack, StackConfig, WsaError};
use ws2_tap::{Link, LinkStats, SwitchPort, VirtualSwitch};
use ws2_tests::capture::{drain, sniff, watch};
use ws2_tests::wire::{igmp_in, ipv4_headers, joins, leaves, IgmpPacket};
use ws2_tests::*;

/// How long something that must happen may take.
const WAIT: Duration = Duration::from_secs(5);
/// `WAIT` in milliseconds, for `WSAWaitForMultipleEvents`.
const WAIT_MS: u32 = 5000;
/// How long to watch for something that must not happen.
const QUIET: Duration = Duration::from_millis(300);
/// A third host on the LAN.
const C: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 3);
/// The flags of a socket on the IP multicast entry (§1.10.6).
const LEAF: u32 = WSA_FLAG_MULTIPOINT_C_LEAF | WSA_FLAG_MULTIPOINT_D_LEAF;

// ---- hosts, sockets, joins --------------------------------------------------------------

/// Group `n` of the administratively scoped block 239.5.0.0/16.
fn group(n: u8) -> Ipv4Addr {
    Ipv4Addr::new(239, 5, 0, n)
}

/// The Ethernet address of IPv4 multicast group `g` (RFC 1112 §6.4).
fn group_mac(g: Ipv4Addr) -> [u8; 6] {
    let o = g.octets();
    [0x01, 0x00, 0x5e, o[1] & 0x7f, o[2], o[3]]
}

/// Hosts A and B on a new switch, and a watcher port plugged in after them.
fn lan(seed: u64) -> (VirtualSwitch, Winsock, Winsock, SwitchPort) {
    lan_with(seed, config(A), config(B))
}

/// Hosts A and B with the given configurations, and a watcher port.
fn lan_with(
    seed: u64,
    a: StackConfig,
    b: StackConfig,
) -> (VirtualSwitch, Winsock, Winsock, SwitchPort) {
    let switch = VirtualSwitch::new(seed);
    let (a, b) = two_hosts_on(&switch, a, b);
    let watcher = switch.port();
    (switch, a, b, watcher)
}

/// `WSASocket(AF_INET, SOCK_DGRAM, IPPROTO_UDP, NULL, 0, flags)`.
fn wsa_udp(ws: &Winsock, flags: u32) -> Result<SOCKET, WsaError> {
    ws.WSASocket(AF_INET, SOCK_DGRAM, IPPROTO_UDP, None, 0, flags)
}

/// A new c_leaf/d_leaf UDP socket (overlapped, as `WSASocket` callers usually ask).
#[track_caller]
fn leaf(ws: &Winsock) -> SOCKET {
    wsa_udp(ws, LEAF | WSA_FLAG_OVERLAPPED).expect("WSASocket(C_LEAF | D_LEAF)")
}

/// `WSAJoinLeaf(s, to, NULL, NULL, NULL, NULL, flags)`.
fn join(ws: &Winsock, s: SOCKET, to: SocketAddrV4, flags: u32) -> Result<SOCKET, WsaError> {
    ws.WSAJoinLeaf(
        s,
        Some(&sa(to)),
        SOCKADDR_IN_LEN,
        None,
        None,
        None,
        None,
        flags,
    )
}

/// A leaf socket with `SO_REUSEADDR` (so several may share the group's port) that has joined
/// `to` with `flags` (a blocking join).
#[track_caller]
fn member(ws: &Winsock, to: SocketAddrV4, flags: u32) -> SOCKET {
    let s = leaf(ws);
    set_int(ws, s, SOL_SOCKET, SO_REUSEADDR, 1).expect("SO_REUSEADDR");
    assert_eq!(join(ws, s, to, flags), Ok(s), "WSAJoinLeaf returns s");
    s
}

/// `WSAIoctl(s, code, &value)` with an `int`/BOOL input and no output.
fn ioctl_int(ws: &Winsock, s: SOCKET, code: u32, value: i32) -> Result<(), WsaError> {
    let mut n = 0;
    ws.WSAIoctl(
        s,
        code,
        &value.to_le_bytes(),
        &mut [],
        Some(&mut n),
        None,
        None,
    )
}

/// The groups `ws`'s stack is a member of.
fn groups_of(ws: &Winsock) -> Vec<Ipv4Addr> {
    ws.stack().multicast_groups()
}

/// Waits until `ws`'s interface membership of `g` is `member`; false on time-out.
fn membership_becomes(ws: &Winsock, g: Ipv4Addr, member: bool) -> bool {
    wait_until(WAIT, || groups_of(ws).contains(&g) == member)
}

// ---- receiving ------------------------------------------------------------------------

/// Makes `s` nonblocking if it is not already (an event-selected socket already is, and
/// refuses `FIONBIO`).
fn nonblocking(ws: &Winsock, s: SOCKET) {
    let mut on = 1u32;
    let _ = ws.ioctlsocket(s, FIONBIO, Some(&mut on));
}

/// The next datagram on `s`, waiting up to `WAIT`: (payload, sender).
#[track_caller]
fn next_dgram(ws: &Winsock, s: SOCKET) -> (Vec<u8>, SocketAddrV4) {
    nonblocking(ws, s);
    let mut buf = [0u8; 2048];
    let (n, from) = retry(WAIT, || recvfrom(ws, s, &mut buf, 0)).expect("recvfrom");
    (buf[..n as usize].to_vec(), from)
}

/// Asserts that nothing arrives on `s` for `QUIET` (then a nonblocking `recvfrom` fails with
/// `WSAEWOULDBLOCK`).
#[track_caller]
fn assert_silent(ws: &Winsock, s: SOCKET, why: &str) {
    thread::sleep(QUIET);
    assert_nothing_queued(ws, s, why);
}

/// Asserts that nothing is queued on `s` now.
#[track_caller]
fn assert_nothing_queued(ws: &Winsock, s: SOCKET, why: &str) {
    nonblocking(ws, s);
    let mut buf = [0u8; 2048];
    match recvfrom(ws, s, &mut buf, 0) {
        Err(WsaError::WSAEWOULDBLOCK) => {}
        Ok((n, from)) => panic!(
            "{why}: got {:?} from {from}",
            String::from_utf8_lossy(&buf[..n as usize])
        ),
        Err(e) => panic!("{why}: expected WSAEWOULDBLOCK, got {e:?}"),
    }
}

// ---- the wire -------------------------------------------------------------------------

/// The IP TTL of `frame` if it is a UDP datagram to `to`.
fn udp_ttl_to(frame: &[u8], to: SocketAddrV4) -> Option<u8> {
    let h = ipv4_headers(frame)?;
    (h.proto == 17 && h.dst == to && frame[..6] == group_mac(*to.ip())).then(|| frame[14 + 8])
}

/// Whether `frame` is a UDP datagram carrying exactly `payload` (Ethernet padding aside).
fn carries(frame: &[u8], payload: &[u8]) -> bool {
    ipv4_headers(frame).is_some_and(|h| {
        h.proto == 17 && frame.get(h.payload..h.payload + h.seq_len as usize) == Some(payload)
    })
}

// ---- a link the test can hold back --------------------------------------------------------

/// A switch port whose sends the test can hold back: while closed, `send` refuses every frame
/// with `WouldBlock`, which the engine answers by keeping the frame and retrying, so nothing
/// the stack queues reaches the wire until the gate opens. Receiving is untouched.
#[derive(Debug)]
struct Gate {
    port: SwitchPort,
    open: Arc<AtomicBool>,
}

impl Gate {
    /// A gate (open) on a new port of `switch`, and its handle (`store(false, …)` closes it).
    fn new(switch: &VirtualSwitch) -> (Gate, Arc<AtomicBool>) {
        let open = Arc::new(AtomicBool::new(true));
        (
            Gate {
                port: switch.port(),
                open: open.clone(),
            },
            open,
        )
    }
}

impl AsRawFd for Gate {
    fn as_raw_fd(&self) -> RawFd {
        self.port.as_raw_fd()
    }
}

impl Link for Gate {
    fn recv(&mut self, buf: &mut [u8], now: Instant) -> io::Result<Option<usize>> {
        self.port.recv(buf, now)
    }

    fn send(&mut self, frame: &[u8], now: Instant) -> io::Result<()> {
        if !self.open.load(Ordering::SeqCst) {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        self.port.send(frame, now)
    }

    fn poll_at(&self) -> Option<Instant> {
        self.port.poll_at()
    }

    fn stats(&self) -> LinkStats {
        self.port.stats()
    }
}

/// Host A behind a [`Gate`] (open), host B, and a watcher.
fn gated_lan(seed: u64) -> (Winsock, Arc<AtomicBool>, Winsock, SwitchPort) {
    let switch = VirtualSwitch::new(seed);
    let (gate, open) = Gate::new(&switch);
    let a = started(&Stack::new(config(A), gate).expect("stack starts"));
    let b = started(&stack_on(&switch, config(B)));
    let watcher = switch.port();
    (a, open, b, watcher)
}

// ---- events -----------------------------------------------------------------------------

/// Waits for `ev` and returns the network events recorded for `s` (resetting `ev`).
#[track_caller]
fn next_events(ws: &Winsock, s: SOCKET, ev: WSAEVENT) -> WSANETWORKEVENTS {
    assert_eq!(
        ws.WSAWaitForMultipleEvents(&[ev], false, WAIT_MS, false),
        Ok(WSA_WAIT_EVENT_0),
        "an event within {WAIT:?}"
    );
    network_events(ws, s, ev)
}

// ---- creation (group B) -------------------------------------------------------------------

/// Conformance: 39 — `WSASocket` with `WSA_FLAG_MULTIPOINT_C_LEAF | WSA_FLAG_MULTIPOINT_D_LEAF` on the UDP multicast catalog entry succeeds.
#[test]
fn leaf_socket_on_the_udp_entry() {
    let (_sw, a, _b, _w) = lan(3900);
    for (protocol, flags) in [
        (IPPROTO_UDP, LEAF),
        (IPPROTO_UDP, LEAF | WSA_FLAG_OVERLAPPED),
        (0, LEAF),
    ] {
        let s = a
            .WSASocket(AF_INET, SOCK_DGRAM, protocol, None, 0, flags)
            .unwrap_or_else(|e| panic!("WSASocket(protocol {protocol}, {flags:#x}): {e:?}"));
        assert_eq!(get_int(&a, s, SOL_SOCKET, SO_TYPE), Ok(SOCK_DGRAM));
        a.closesocket(s).expect("closesocket");
    }
}

/// Conformance: 40 — `WSASocket` with `WSA_FLAG_MULTIPOINT_C_ROOT` on an entry whose control plane is non-rooted (IP multicast) fails with `WSAEINVAL`.
#[test]
fn c_root_on_the_udp_entry_fails() {
    let (_sw, a, _b, _w) = lan(4000);
    for flags in [
        WSA_FLAG_MULTIPOINT_C_ROOT | WSA_FLAG_MULTIPOINT_D_LEAF,
        WSA_FLAG_MULTIPOINT_C_ROOT | WSA_FLAG_MULTIPOINT_D_ROOT,
        WSA_FLAG_MULTIPOINT_C_ROOT | WSA_FLAG_MULTIPOINT_D_LEAF | WSA_FLAG_OVERLAPPED,
    ] {
        assert_wsa_error(wsa_udp(&a, flags), WsaError::WSAEINVAL);
    }
}

/// Conformance: 41, 42 — `WSASocket` with `WSA_FLAG_MULTIPOINT_D_ROOT` on the non-rooted UDP entry, or with only one of the control/data-plane flags, fails with `WSAEINVAL`.
#[test]
fn d_root_or_one_plane_flag_fails() {
    let (_sw, a, _b, _w) = lan(4100);
    // 41: a rooted data plane on IP multicast.
    assert_wsa_error(
        wsa_udp(&a, WSA_FLAG_MULTIPOINT_C_LEAF | WSA_FLAG_MULTIPOINT_D_ROOT),
        WsaError::WSAEINVAL,
    );
    // 42: a control-plane flag without a data-plane flag, and the other way round.
    for flags in [
        WSA_FLAG_MULTIPOINT_C_LEAF,
        WSA_FLAG_MULTIPOINT_D_LEAF,
        WSA_FLAG_MULTIPOINT_C_ROOT,
        WSA_FLAG_MULTIPOINT_D_ROOT,
    ] {
        assert_wsa_error(wsa_udp(&a, flags), WsaError::WSAEINVAL);
    }
    // Multipoint flags on an entry without XP1_SUPPORT_MULTIPOINT (TCP, raw ICMP).
    assert_wsa_error(
        a.WSASocket(AF_INET, SOCK_STREAM, IPPROTO_TCP, None, 0, LEAF),
        WsaError::WSAEINVAL,
    );
    assert_wsa_error(
        a.WSASocket(AF_INET, SOCK_RAW, IPPROTO_ICMP, None, 0, LEAF),
        WsaError::WSAEINVAL,
    );
}

/// Conformance: 443 — the UDP multicast entry has `XP1_CONNECTIONLESS`, `XP1_MESSAGE_ORIENTED`, `XP1_SUPPORT_BROADCAST`, `XP1_SUPPORT_MULTIPOINT` and clear `XP1_MULTIPOINT_CONTROL_PLANE`/`XP1_MULTIPOINT_DATA_PLANE`.
#[test]
fn udp_entry_is_non_rooted_multipoint() {
    let (_sw, a, _b, _w) = lan(44300);
    let mut entries = vec![WSAPROTOCOL_INFO::default(); 8];
    let mut len = 8 * WSAPROTOCOL_INFO_LEN;
    let n = a
        .WSAEnumProtocols(Some(&[IPPROTO_UDP, 0]), Some(&mut entries), &mut len)
        .expect("WSAEnumProtocols");
    let udp: Vec<&WSAPROTOCOL_INFO> = entries[..n as usize]
        .iter()
        .filter(|e| e.iSocketType == SOCK_DGRAM && e.dwServiceFlags1 & XP1_SUPPORT_MULTIPOINT != 0)
        .collect();
    assert_eq!(udp.len(), 1, "one UDP multicast entry: {entries:?}");
    let f = udp[0].dwServiceFlags1;
    for (bit, name) in [
        (XP1_CONNECTIONLESS, "XP1_CONNECTIONLESS"),
        (XP1_MESSAGE_ORIENTED, "XP1_MESSAGE_ORIENTED"),
        (XP1_SUPPORT_BROADCAST, "XP1_SUPPORT_BROADCAST"),
        (XP1_SUPPORT_MULTIPOINT, "XP1_SUPPORT_MULTIPOINT"),
    ] {
        assert_ne!(f & bit, 0, "{name} set");
    }
    assert_eq!(
        f & XP1_MULTIPOINT_CONTROL_PLANE,
        0,
        "control plane non-rooted"
    );
    assert_eq!(f & XP1_MULTIPOINT_DATA_PLANE, 0, "data plane non-rooted");
    // The entry is the one `WSASocket` uses for leaf sockets.
    let s = a
        .WSASocket(AF_INET, udp[0].iSocketType, udp[0].iProtocol, None, 0, LEAF)
        .expect("a leaf socket on the entry");
    assert_eq!(join(&a, s, at(group(1), 44300), JL_BOTH), Ok(s));
}

// ---- WSAJoinLeaf (group P) ------------------------------------------------------------

/// Conformance: 393 — `WSAJoinLeaf` on a socket created without multipoint flags fails with `WSAEOPNOTSUPP` (D-7).
#[test]
fn join_needs_a_multipoint_socket() {
    let (_sw, a, _b, mut watcher) = lan(39300);
    let to = at(group(1), 39300);
    let plain = new_socket(&a, SOCK_DGRAM);
    let overlapped = wsa_udp(&a, WSA_FLAG_OVERLAPPED).expect("WSASocket");
    let bound = udp_bound(&a, at(Ipv4Addr::UNSPECIFIED, 39300));
    let tcp = new_socket(&a, SOCK_STREAM);
    for (s, what) in [
        (plain, "socket(SOCK_DGRAM)"),
        (overlapped, "WSASocket without multipoint flags"),
        (bound, "a bound plain UDP socket"),
        (tcp, "a TCP socket"),
    ] {
        for flags in [JL_BOTH, JL_RECEIVER_ONLY, JL_SENDER_ONLY] {
            let r = join(&a, s, to, flags);
            assert!(
                r == Err(WsaError::WSAEOPNOTSUPP),
                "{what}, flags {flags}: {r:?}"
            );
            assert_eq!(WSAGetLastError(), WsaError::WSAEOPNOTSUPP.0);
        }
    }
    // Nothing was joined: no membership, no report, and the plain sockets stay unbound.
    assert!(groups_of(&a).is_empty(), "{:?}", groups_of(&a));
    assert!(
        sniff(&mut watcher, QUIET, |f| igmp_in(f).is_some()).is_none(),
        "no IGMP message"
    );
    assert_wsa_error(local_name(&a, plain), WsaError::WSAEINVAL);
}

/// Conformance: 394 — `WSAJoinLeaf` on a c_leaf/d_leaf UDP socket with a multicast group address returns the same descriptor that was passed in.
#[test]
fn join_returns_the_same_socket() {
    let (_sw, a, _b, _w) = lan(39400);
    for (i, flags) in [JL_BOTH, JL_RECEIVER_ONLY, JL_SENDER_ONLY]
        .into_iter()
        .enumerate()
    {
        let s = leaf(&a);
        let other = leaf(&a);
        let r = join(&a, s, at(group(i as u8 + 1), 39400 + i as u16), flags);
        assert_eq!(r, Ok(s), "flags {flags}");
        assert_ne!(r, Ok(other));
        // The returned descriptor is the socket itself: still open and usable.
        assert_eq!(get_int(&a, s, SOL_SOCKET, SO_TYPE), Ok(SOCK_DGRAM));
    }
}

/// Conformance: 395 — a blocking `WSAJoinLeaf` with `JL_BOTH` or `JL_RECEIVER_ONLY` emits an IGMP Membership Report for the group (in the configured IGMP version, TTL 1, to the address RFC 2236/3376 name).
#[test]
fn blocking_join_sends_a_report() {
    // None = the default: IGMPv3 until a querier says otherwise (RFC 3376 §7.2.1).
    for (i, version) in [None, Some(1u8), Some(2), Some(3)].into_iter().enumerate() {
        let mut ca = config(A);
        ca.igmp_version = version;
        let (_sw, a, _b, mut watcher) = lan_with(39500 + i as u64, ca, config(B));
        for (j, flags) in [JL_BOTH, JL_RECEIVER_ONLY].into_iter().enumerate() {
            let g = group(10 * i as u8 + j as u8 + 1);
            let s = leaf(&a);
            assert_eq!(join(&a, s, at(g, 39500 + j as u16), flags), Ok(s));
            let frame = sniff(&mut watcher, WAIT, |f| joins(f, g)).unwrap_or_else(|| {
                panic!("IGMP version {version:?}, flags {flags}: no report for {g}")
            });
            let f = igmp_in(&frame).expect("an IGMP frame");
            let want = version.unwrap_or(3);
            assert!(
                f.msg.joins(g) && f.msg.version() == Some(want),
                "IGMP version {version:?}: {f:?}"
            );
            assert!(f.checksum_ok, "IGMP checksum: {f:?}");
            assert_eq!(f.ip.ttl, 1, "IGMP goes out with TTL 1: {f:?}");
            let dst = if want == 3 {
                Ipv4Addr::new(224, 0, 0, 22)
            } else {
                g
            };
            assert_eq!(f.ip.dst, dst, "report destination: {f:?}");
            assert_eq!(f.ip.dst_mac, group_mac(dst));
            assert!(groups_of(&a).contains(&g));
        }
    }
}

/// Conformance: 395 — a blocking `WSAJoinLeaf` does not return before its IGMP report has left the stack: with the link refusing frames it stays blocked, and once the report is out it returns.
#[test]
fn blocking_join_waits_for_the_report_to_leave() {
    let (a, open, _b, mut watcher) = gated_lan(39510);
    let g = group(1);
    let s = leaf(&a);
    open.store(false, Ordering::SeqCst);
    let joiner = {
        let a = a.clone();
        thread::spawn(move || join(&a, s, at(g, 39510), JL_BOTH))
    };
    thread::sleep(QUIET);
    let early = joiner.is_finished();
    open.store(true, Ordering::SeqCst);
    assert!(
        !early,
        "WSAJoinLeaf returned while the link refused its report"
    );
    assert_eq!(joiner.join().expect("joiner"), Ok(s));
    // Switching is synchronous in the sender's `send`: a report that has left is queued at the
    // watcher already, no waiting.
    assert!(
        drain(&mut watcher).iter().any(|f| joins(f, g)),
        "the report is on the wire when WSAJoinLeaf returns"
    );
}

/// Conformance: 396 — `WSAJoinLeaf` with `JL_SENDER_ONLY` emits no IGMP message.
#[test]
fn sender_only_join_sends_no_igmp() {
    let (_sw, a, _b, mut watcher) = lan(39600);
    let g = group(1);
    let s = leaf(&a);
    assert_eq!(join(&a, s, at(g, 39600), JL_SENDER_ONLY), Ok(s));
    let igmp: Vec<IgmpPacket> = watch(&mut watcher, QUIET)
        .iter()
        .filter_map(|f| igmp_in(f))
        .collect();
    assert!(igmp.is_empty(), "IGMP after a sender-only join: {igmp:?}");
    assert!(!groups_of(&a).contains(&g), "no interface membership");
    // The watcher does see IGMP: a receiving join on another socket is reported.
    let r = leaf(&a);
    assert_eq!(join(&a, r, at(g, 39601), JL_BOTH), Ok(r));
    assert!(sniff(&mut watcher, WAIT, |f| joins(f, g)).is_some());
}

/// Conformance: 397 — after a `JL_SENDER_ONLY` join, datagrams sent to the group by other hosts are not delivered to the socket (while a receiving member on the same host and port gets them).
#[test]
fn sender_only_join_receives_nothing() {
    let (_sw, a, b, _w) = lan(39700);
    let to = at(group(1), 39700);
    let sender_only = member(&b, to, JL_SENDER_ONLY);
    let tx = udp_bound(&a, at(A, 39701));
    sendto(&a, tx, b"first", to).expect("sendto");
    assert_silent(&b, sender_only, "a sender-only leaf");
    // A receiving member on the same port gets the next one; the sender-only socket still not.
    let receiver = member(&b, to, JL_RECEIVER_ONLY);
    sendto(&a, tx, b"second", to).expect("sendto");
    assert_eq!(next_dgram(&b, receiver), (b"second".to_vec(), at(A, 39701)));
    assert_nothing_queued(&b, sender_only, "a sender-only leaf next to a member");
    // Sending is what a sender-only leaf is for.
    let rx = member(&a, to, JL_BOTH);
    sendto(&b, sender_only, b"from the sender", to).expect("sendto");
    assert_eq!(next_dgram(&a, rx).0, b"from the sender");
}

/// Conformance: 398 — after a receiving join (`JL_BOTH` or `JL_RECEIVER_ONLY`), datagrams sent to group:port by another host are delivered to the socket.
#[test]
fn receiving_join_gets_group_traffic() {
    let (_sw, a, b, _w) = lan(39800);
    for (i, flags) in [JL_BOTH, JL_RECEIVER_ONLY].into_iter().enumerate() {
        let to = at(group(i as u8 + 1), 39800 + i as u16);
        let rx = member(&b, to, flags);
        let tx = member(&a, to, JL_BOTH);
        let tx_port = local_name(&a, tx).expect("getsockname").port();
        // A blocking receive with a time-out: the datagram must wake it.
        set_int(&b, rx, SOL_SOCKET, SO_RCVTIMEO, 5000).unwrap();
        let msg = format!("to the group, flags {flags}");
        sendto(&a, tx, msg.as_bytes(), to).expect("sendto");
        let mut buf = [0u8; 256];
        let (n, from) = recvfrom(&b, rx, &mut buf, 0).expect("recvfrom");
        assert_eq!(&buf[..n as usize], msg.as_bytes());
        assert_eq!(from, at(A, tx_port));
    }
}

/// Conformance: 399 — data sent on a joined d_leaf socket (non-rooted data plane) is delivered to every other member of the group, on other hosts and on the same host.
#[test]
fn member_data_reaches_every_other_member() {
    let switch = VirtualSwitch::new(39900);
    let (a, b) = two_hosts_on(&switch, config(A), config(B));
    let c = started(&stack_on(&switch, config(C)));
    let to = at(group(1), 39900);
    let a1 = member(&a, to, JL_BOTH);
    let a2 = member(&a, to, JL_BOTH);
    let b1 = member(&b, to, JL_BOTH);
    let c1 = member(&c, to, JL_BOTH);
    sendto(&a, a1, b"from a1", to).expect("sendto");
    for (ws, s, who) in [(&a, a2, "a2"), (&b, b1, "b1"), (&c, c1, "c1")] {
        assert_eq!(
            next_dgram(ws, s),
            (b"from a1".to_vec(), at(A, 39900)),
            "{who}"
        );
    }
    sendto(&b, b1, b"from b1", to).expect("sendto");
    for (ws, s, who) in [(&a, a2, "a2"), (&c, c1, "c1")] {
        assert_eq!(
            next_dgram(ws, s),
            (b"from b1".to_vec(), at(B, 39900)),
            "{who}"
        );
    }
    // a1 hears b1 (and, loopback being on by default, its own datagram first).
    let mut heard = vec![next_dgram(&a, a1).0, next_dgram(&a, a1).0];
    heard.sort();
    assert_eq!(heard, vec![b"from a1".to_vec(), b"from b1".to_vec()]);
}

/// Conformance: 400 — `WSAJoinLeaf` on an unbound socket implicitly binds it (to 0.0.0.0 and the group's port).
#[test]
fn join_binds_an_unbound_socket() {
    let (_sw, a, b, _w) = lan(40000);
    let to = at(group(1), 40000);
    let s = leaf(&a);
    assert_wsa_error(local_name(&a, s), WsaError::WSAEINVAL);
    assert_eq!(join(&a, s, to, JL_BOTH), Ok(s));
    assert_eq!(local_name(&a, s), Ok(at(Ipv4Addr::UNSPECIFIED, 40000)));
    // The binding is real: the port is taken and the group's datagrams arrive on it.
    let other = new_socket(&a, SOCK_DGRAM);
    assert_wsa_error(
        bind(&a, other, at(Ipv4Addr::UNSPECIFIED, 40000)),
        WsaError::WSAEADDRINUSE,
    );
    let tx = udp_bound(&b, at(B, 40001));
    sendto(&b, tx, b"hello", to).expect("sendto");
    assert_eq!(next_dgram(&a, s), (b"hello".to_vec(), at(B, 40001)));
    // A sender-only join binds too (it joins no group but the socket is now addressable).
    let t = leaf(&a);
    assert_eq!(join(&a, t, at(group(2), 40002), JL_SENDER_ONLY), Ok(t));
    assert_eq!(local_name(&a, t), Ok(at(Ipv4Addr::UNSPECIFIED, 40002)));
}

/// Conformance: 401 — a nonblocking `WSAJoinLeaf` returns the descriptor at once and `WSAEventSelect` delivers `FD_CONNECT` with error 0; by then the IGMP report is on the wire.
#[test]
fn nonblocking_join_signals_fd_connect() {
    let (_sw, a, b, mut watcher) = lan(40100);
    let to = at(group(1), 40100);
    let s = leaf(&a);
    let ev = a.WSACreateEvent().expect("WSACreateEvent");
    a.WSAEventSelect(s, ev, FD_CONNECT | FD_READ)
        .expect("WSAEventSelect");
    let started = Instant::now();
    assert_eq!(join(&a, s, to, JL_BOTH), Ok(s), "a valid descriptor");
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "returned at once"
    );
    let ne = next_events(&a, s, ev);
    assert_ne!(ne.lNetworkEvents & FD_CONNECT, 0, "FD_CONNECT: {ne:?}");
    assert_eq!(ne.iErrorCode[FD_CONNECT_BIT], 0, "FD_CONNECT error");
    assert!(
        sniff(&mut watcher, WAIT, |f| joins(f, *to.ip())).is_some(),
        "the report was sent"
    );
    // The socket is usable: the group's traffic arrives and raises FD_READ.
    let tx = udp_bound(&b, at(B, 40101));
    sendto(&b, tx, b"after FD_CONNECT", to).expect("sendto");
    let ne = next_events(&a, s, ev);
    assert_ne!(ne.lNetworkEvents & FD_READ, 0, "FD_READ: {ne:?}");
    assert_eq!(next_dgram(&a, s).0, b"after FD_CONNECT");
}

/// Conformance: 401 — a nonblocking `WSAJoinLeaf` delivers `FD_CONNECT` through `WSAAsyncSelect` too (error 0, `wParam` the socket).
#[test]
fn nonblocking_join_posts_fd_connect() {
    let (_sw, a, _b, mut watcher) = lan(40110);
    let to = at(group(1), 40110);
    let s = leaf(&a);
    let q = MessageQueue::new();
    const WM_SOCK: u32 = 0x0400 + 1;
    a.WSAAsyncSelect(s, q.hwnd(), WM_SOCK, FD_CONNECT | FD_READ)
        .expect("WSAAsyncSelect");
    assert_eq!(join(&a, s, to, JL_RECEIVER_ONLY), Ok(s));
    let m = q.GetMessage(Some(WAIT)).expect("a message within 5 s");
    assert_eq!((m.hwnd, m.wParam, m.message), (q.hwnd(), s, WM_SOCK));
    assert_eq!(i32::from(WSAGETSELECTEVENT(m.lParam)), FD_CONNECT);
    assert_eq!(i32::from(WSAGETSELECTERROR(m.lParam)), 0);
    assert!(sniff(&mut watcher, WAIT, |f| joins(f, *to.ip())).is_some());
}

/// Conformance: 401 — `FD_CONNECT` for a nonblocking join means the IGMP report has been sent: while the link refuses frames the join stays incomplete, and it completes once the report is out.
#[test]
fn nonblocking_join_completes_once_the_report_left() {
    let (a, open, _b, mut watcher) = gated_lan(40120);
    let g = group(1);
    let s = leaf(&a);
    let ev = a.WSACreateEvent().expect("WSACreateEvent");
    a.WSAEventSelect(s, ev, FD_CONNECT).expect("WSAEventSelect");
    open.store(false, Ordering::SeqCst);
    // The link refuses everything, yet the nonblocking call returns at once.
    assert_eq!(join(&a, s, at(g, 40120), JL_BOTH), Ok(s));
    let early = a.WSAWaitForMultipleEvents(&[ev], false, QUIET.as_millis() as u32, false);
    let on_wire = drain(&mut watcher).iter().any(|f| joins(f, g));
    open.store(true, Ordering::SeqCst);
    assert!(!on_wire, "the gate held the report back");
    assert_eq!(
        early,
        Ok(WSA_WAIT_TIMEOUT),
        "FD_CONNECT while the report could not leave"
    );
    let ne = next_events(&a, s, ev);
    assert_ne!(ne.lNetworkEvents & FD_CONNECT, 0, "{ne:?}");
    assert_eq!(ne.iErrorCode[FD_CONNECT_BIT], 0);
    assert!(
        drain(&mut watcher).iter().any(|f| joins(f, g)),
        "the report is on the wire when FD_CONNECT is signalled"
    );
}

/// Conformance: 402 — a second `WSAJoinLeaf` on a socket while its nonblocking join is outstanding fails with `WSAEALREADY`; the first join still completes.
#[test]
fn second_join_while_outstanding_fails() {
    // The gate keeps the report (and so the join) from completing, for a stack that completes
    // the join when the report has left. The second call is made at once, without yielding.
    let (a, open, _b, _w) = gated_lan(40200);
    let to = at(group(1), 40200);
    let s = leaf(&a);
    let ev = a.WSACreateEvent().expect("WSACreateEvent");
    a.WSAEventSelect(s, ev, FD_CONNECT).expect("WSAEventSelect");
    open.store(false, Ordering::SeqCst);
    assert_eq!(join(&a, s, to, JL_BOTH), Ok(s));
    let second = join(&a, s, to, JL_BOTH);
    let second_err = WSAGetLastError();
    // If the stack completed the join before the second call (FD_CONNECT already recorded),
    // the socket is a member and WSAEISCONN is the right answer; otherwise it must be
    // WSAEALREADY. FD_CONNECT stays recorded until WSAEnumNetworkEvents takes it.
    let completed_first = network_events(&a, s, ev).lNetworkEvents & FD_CONNECT != 0;
    open.store(true, Ordering::SeqCst);
    match second {
        Err(WsaError::WSAEALREADY) => {
            assert_eq!(second_err, WsaError::WSAEALREADY.0);
            if !completed_first {
                let ne = next_events(&a, s, ev);
                assert_ne!(ne.lNetworkEvents & FD_CONNECT, 0, "{ne:?}");
                assert_eq!(ne.iErrorCode[FD_CONNECT_BIT], 0);
            }
        }
        Err(WsaError::WSAEISCONN) => assert!(
            completed_first,
            "WSAEISCONN although FD_CONNECT had not been signalled"
        ),
        other => panic!("second WSAJoinLeaf while one is outstanding: {other:?}"),
    }
    // Once complete, joining the same session again is WSAEISCONN (403).
    assert_wsa_error(join(&a, s, to, JL_BOTH), WsaError::WSAEISCONN);
}

/// Conformance: 403 — `WSAJoinLeaf` on a socket that is already a member of that session fails with `WSAEISCONN`, and the membership stays.
#[test]
fn join_twice_fails_is_conn() {
    let (_sw, a, b, _w) = lan(40300);
    let to = at(group(1), 40300);
    let s = member(&a, to, JL_BOTH);
    for flags in [JL_BOTH, JL_RECEIVER_ONLY, JL_SENDER_ONLY] {
        assert_wsa_error(join(&a, s, to, flags), WsaError::WSAEISCONN);
    }
    // A sender-only session is a session too.
    let t = member(&a, at(group(2), 40301), JL_SENDER_ONLY);
    assert_wsa_error(
        join(&a, t, at(group(2), 40301), JL_SENDER_ONLY),
        WsaError::WSAEISCONN,
    );
    let tx = udp_bound(&b, at(B, 40302));
    sendto(&b, tx, b"still a member", to).expect("sendto");
    assert_eq!(next_dgram(&a, s).0, b"still a member");
}

/// Conformance: 404 — `WSAJoinLeaf` on a c_leaf multicast socket with a non-multicast address fails with `WSAEADDRNOTAVAIL`, joining nothing.
#[test]
fn join_with_a_unicast_address_fails() {
    let (_sw, a, _b, mut watcher) = lan(40400);
    let s = leaf(&a);
    for ip in [B, A, Ipv4Addr::BROADCAST, Ipv4Addr::new(10, 0, 0, 255)] {
        for flags in [JL_BOTH, JL_SENDER_ONLY] {
            let r = join(&a, s, at(ip, 40400), flags);
            assert!(
                r == Err(WsaError::WSAEADDRNOTAVAIL),
                "{ip}, flags {flags}: {r:?}"
            );
            assert_eq!(WSAGetLastError(), WsaError::WSAEADDRNOTAVAIL.0);
        }
    }
    assert!(groups_of(&a).is_empty());
    assert!(
        sniff(&mut watcher, QUIET, |f| igmp_in(f).is_some()).is_none(),
        "no IGMP message"
    );
    // The socket is left usable: a real group can still be joined.
    assert_eq!(join(&a, s, at(group(1), 40400), JL_BOTH), Ok(s));
}

/// Conformance: 416 — `WSAJoinLeaf` with `lpCallerData` on the IP multicast entry (no connect data) fails with `WSAEPROTONOSUPPORT`, joining nothing.
#[test]
fn join_with_caller_data_fails() {
    let (_sw, a, _b, mut watcher) = lan(41600);
    let to = at(group(1), 41600);
    let s = leaf(&a);
    let caller = WSABUF::new(b"hello, session".to_vec());
    let mut callee = WSABUF::zeroed(64);
    for flags in [JL_BOTH, JL_SENDER_ONLY] {
        assert_wsa_error(
            a.WSAJoinLeaf(
                s,
                Some(&sa(to)),
                SOCKADDR_IN_LEN,
                Some(&caller),
                Some(&mut callee),
                None,
                None,
                flags,
            ),
            WsaError::WSAEPROTONOSUPPORT,
        );
    }
    assert!(groups_of(&a).is_empty());
    assert!(sniff(&mut watcher, QUIET, |f| igmp_in(f).is_some()).is_none());
    // Not half-joined: the same join without caller data succeeds (not WSAEISCONN).
    assert_eq!(join(&a, s, to, JL_BOTH), Ok(s));
}

// ---- QoS on a join (415) --------------------------------------------------------------

/// `SIO_GET_QOS` decoded.
#[track_caller]
fn get_qos(ws: &Winsock, s: SOCKET) -> QOS {
    let mut out = vec![0u8; 1024];
    let mut n = 0;
    ws.WSAIoctl(s, SIO_GET_QOS, &[], &mut out, Some(&mut n), None, None)
        .expect("SIO_GET_QOS");
    QOS::from_bytes(&out[..n as usize]).expect("a whole QOS")
}

/// A QOS whose sending flowspec asks for `rate` bytes/s with a `bucket`-byte bucket at `g`.
fn sending(rate: i32, bucket: i32, g: GUARANTEE) -> QOS {
    let mut q = QOS::default();
    q.SendingFlowspec.TokenRate = rate;
    q.SendingFlowspec.TokenBucketSize = bucket;
    q.SendingFlowspec.LevelOfGuarantee = g;
    q
}

/// `q` as the provider reports it back (`NetworkAvailability` 1: the link is up).
fn as_reported(q: &QOS) -> QOS {
    let mut r = q.clone();
    r.SendingFlowspec.NetworkAvailability = 1;
    r.ReceivingFlowspec.NetworkAvailability = 1;
    r
}

/// `WSAJoinLeaf` with `lpSQOS`.
fn join_with_qos(ws: &Winsock, s: SOCKET, to: SocketAddrV4, q: &QOS) -> Result<SOCKET, WsaError> {
    ws.WSAJoinLeaf(
        s,
        Some(&sa(to)),
        SOCKADDR_IN_LEN,
        None,
        None,
        Some(q),
        None,
        JL_BOTH,
    )
}

/// Conformance: 415 — `WSAJoinLeaf` with `lpSQOS` on the QoS-capable multicast entry sets the socket's QoS as `WSAConnect` would (read back by `SIO_GET_QOS`, overriding an earlier `SIO_SET_QOS`).
#[test]
fn join_with_sqos_sets_the_qos() {
    let (_sw, a, _b, _w) = lan(41500);
    let s = leaf(&a);
    let early = sending(5_000, 2_000, BestEffortService);
    let mut n = 0;
    a.WSAIoctl(
        s,
        SIO_SET_QOS,
        &early.to_bytes(),
        &mut [],
        Some(&mut n),
        None,
        None,
    )
    .expect("SIO_SET_QOS");
    let mut later = sending(60_000, 6_000, PredictiveService);
    later.ReceivingFlowspec.TokenRate = 1_000;
    assert_eq!(join_with_qos(&a, s, at(group(1), 41500), &later), Ok(s));
    assert_eq!(get_qos(&a, s), as_reported(&later));
}

/// Conformance: 415 — like `WSAConnect`, `WSAJoinLeaf` with an `lpSQOS` the provider cannot admit fails with `WSAEOPNOTSUPP` without joining; a scaled-down retry succeeds.
#[test]
fn join_with_unadmittable_sqos_fails() {
    let mut ca = config(A);
    ca.qos_capacity = 100_000;
    let (_sw, a, _b, mut watcher) = lan_with(41510, ca, config(B));
    let to = at(group(1), 41510);
    let s = leaf(&a);
    assert_wsa_error(
        join_with_qos(&a, s, to, &sending(150_000, 8_000, GuaranteedService)),
        WsaError::WSAEOPNOTSUPP,
    );
    assert!(groups_of(&a).is_empty(), "no membership");
    assert!(sniff(&mut watcher, QUIET, |f| igmp_in(f).is_some()).is_none());
    let fits = sending(80_000, 8_000, GuaranteedService);
    assert_eq!(join_with_qos(&a, s, to, &fits), Ok(s));
    assert_eq!(get_qos(&a, s), as_reported(&fits));
    assert!(groups_of(&a).contains(to.ip()));
}

// ---- the multipoint ioctls (405–410) ---------------------------------------------------

/// Conformance: 405 — with `SIO_MULTIPOINT_LOOPBACK` TRUE (the default, D-16) a joined socket receives its own transmissions to the group; with FALSE it does not, while the other members still do.
#[test]
fn multipoint_loopback_controls_own_copies() {
    let (_sw, a, b, _w) = lan(40500);
    let to = at(group(1), 40500);
    let s = member(&a, to, JL_BOTH);
    let local = member(&a, to, JL_BOTH);
    let remote = member(&b, to, JL_BOTH);
    sendto(&a, s, b"default", to).expect("sendto");
    assert_eq!(next_dgram(&a, s), (b"default".to_vec(), at(A, 40500)));
    ioctl_int(&a, s, SIO_MULTIPOINT_LOOPBACK, 0).expect("loopback FALSE");
    sendto(&a, s, b"off", to).expect("sendto");
    sendto(&a, s, b"off 2", to).expect("sendto");
    // The other members got both (so both were sent), the sender got neither.
    for (ws, r, who) in [(&a, local, "local member"), (&b, remote, "remote member")] {
        assert_eq!(next_dgram(ws, r).0, b"default", "{who}");
        assert_eq!(next_dgram(ws, r).0, b"off", "{who}");
        assert_eq!(next_dgram(ws, r).0, b"off 2", "{who}");
    }
    assert_silent(&a, s, "loopback FALSE");
    ioctl_int(&a, s, SIO_MULTIPOINT_LOOPBACK, 1).expect("loopback TRUE");
    sendto(&a, s, b"on again", to).expect("sendto");
    assert_eq!(next_dgram(&a, s).0, b"on again");
}

/// Conformance: 406 — `SIO_MULTIPOINT_LOOPBACK` on a socket without multipoint flags fails with `WSAEINVAL` (and so does `SIO_MULTICAST_SCOPE`).
#[test]
fn multipoint_ioctls_need_a_multipoint_socket() {
    let (_sw, a, _b, _w) = lan(40600);
    let plain = new_socket(&a, SOCK_DGRAM);
    let overlapped = wsa_udp(&a, WSA_FLAG_OVERLAPPED).expect("WSASocket");
    let tcp = new_socket(&a, SOCK_STREAM);
    for s in [plain, overlapped, tcp] {
        for on in [0, 1] {
            assert_wsa_error(
                ioctl_int(&a, s, SIO_MULTIPOINT_LOOPBACK, on),
                WsaError::WSAEINVAL,
            );
        }
        assert_wsa_error(
            ioctl_int(&a, s, SIO_MULTICAST_SCOPE, 4),
            WsaError::WSAEINVAL,
        );
    }
    // On a leaf socket both succeed, joined or not.
    let s = leaf(&a);
    ioctl_int(&a, s, SIO_MULTIPOINT_LOOPBACK, 0).expect("loopback on a leaf");
    ioctl_int(&a, s, SIO_MULTICAST_SCOPE, 4).expect("scope on a leaf");
}

/// Conformance: 407 — `SIO_MULTICAST_SCOPE` = n makes outgoing multicast datagrams carry IP TTL n.
#[test]
fn multicast_scope_sets_the_ttl() {
    let (_sw, a, _b, mut watcher) = lan(40700);
    let to = at(group(1), 40700);
    let s = member(&a, to, JL_BOTH);
    for ttl in [5u8, 255, 2, 1] {
        ioctl_int(&a, s, SIO_MULTICAST_SCOPE, i32::from(ttl)).expect("SIO_MULTICAST_SCOPE");
        let msg = format!("ttl {ttl}");
        sendto(&a, s, msg.as_bytes(), to).expect("sendto");
        let frame = sniff(&mut watcher, WAIT, |f| {
            udp_ttl_to(f, to).is_some() && carries(f, msg.as_bytes())
        })
        .unwrap_or_else(|| panic!("no datagram on the wire for scope {ttl}"));
        assert_eq!(udp_ttl_to(&frame, to), Some(ttl), "scope {ttl}");
    }
}

/// Conformance: 408 — without `SIO_MULTICAST_SCOPE`, multicast datagrams are sent with TTL 1 (joined or not, multipoint or plain socket).
#[test]
fn multicast_ttl_defaults_to_one() {
    let (_sw, a, _b, mut watcher) = lan(40800);
    let to = at(group(1), 40800);
    let joined = member(&a, to, JL_BOTH);
    let unjoined = leaf(&a);
    bind(&a, unjoined, at(A, 40801)).expect("bind");
    let plain = udp_bound(&a, at(A, 40802));
    for (s, what) in [
        (joined, "a joined leaf"),
        (unjoined, "an unjoined leaf"),
        (plain, "a plain UDP socket"),
    ] {
        sendto(&a, s, what.as_bytes(), to).expect("sendto");
        let frame = sniff(&mut watcher, WAIT, |f| {
            udp_ttl_to(f, to).is_some() && carries(f, what.as_bytes())
        })
        .unwrap_or_else(|| panic!("{what}: no datagram on the wire"));
        assert_eq!(udp_ttl_to(&frame, to), Some(1), "{what}");
    }
}

/// Conformance: 409 — with `SIO_MULTICAST_SCOPE` = 0, datagrams sent to the group reach the other member sockets on the same host and nothing is put on the wire (D-17).
#[test]
fn scope_zero_stays_on_the_host() {
    let (_sw, a, b, mut watcher) = lan(40900);
    let to = at(group(1), 40900);
    let s = member(&a, to, JL_BOTH);
    let local = member(&a, to, JL_BOTH);
    let remote = member(&b, to, JL_BOTH);
    ioctl_int(&a, s, SIO_MULTICAST_SCOPE, 0).expect("scope 0");
    drain(&mut watcher);
    sendto(&a, s, b"host only", to).expect("sendto");
    assert_eq!(next_dgram(&a, local), (b"host only".to_vec(), at(A, 40900)));
    let udp: Vec<Vec<u8>> = watch(&mut watcher, QUIET)
        .into_iter()
        .filter(|f| ipv4_headers(f).is_some_and(|h| h.proto == 17))
        .collect();
    assert!(udp.is_empty(), "UDP on the wire with scope 0: {udp:?}");
    assert_nothing_queued(&b, remote, "a member on another host, scope 0");
    // Scope 1 again: it goes out.
    ioctl_int(&a, s, SIO_MULTICAST_SCOPE, 1).expect("scope 1");
    sendto(&a, s, b"on the wire", to).expect("sendto");
    assert_eq!(next_dgram(&b, remote).0, b"on the wire");
}

/// Conformance: 410 — `SIO_MULTICAST_SCOPE` with a negative value or one above 255 fails with `WSAEINVAL` and leaves the scope as it was.
#[test]
fn multicast_scope_out_of_range() {
    let (_sw, a, _b, mut watcher) = lan(41000);
    let to = at(group(1), 41000);
    let s = member(&a, to, JL_BOTH);
    ioctl_int(&a, s, SIO_MULTICAST_SCOPE, 7).expect("scope 7");
    for bad in [-1, 256, i32::MIN, i32::MAX, 1000] {
        assert_wsa_error(
            ioctl_int(&a, s, SIO_MULTICAST_SCOPE, bad),
            WsaError::WSAEINVAL,
        );
    }
    sendto(&a, s, b"still seven", to).expect("sendto");
    let frame = sniff(&mut watcher, WAIT, |f| carries(f, b"still seven")).expect("sent");
    assert_eq!(udp_ttl_to(&frame, to), Some(7));
    // Both ends of the range are fine.
    ioctl_int(&a, s, SIO_MULTICAST_SCOPE, 0).expect("scope 0");
    ioctl_int(&a, s, SIO_MULTICAST_SCOPE, 255).expect("scope 255");
}

// ---- membership and delivery (411–414) -------------------------------------------------

/// Conformance: 411 — `closesocket` on the last local member socket of a group makes the stack leave the group (an IGMP Leave, IGMPv2 or v3) and stop delivering the group's traffic.
#[test]
fn closing_the_last_member_leaves_the_group() {
    for (i, version) in [None, Some(2u8), Some(3)].into_iter().enumerate() {
        let mut cb = config(B);
        cb.igmp_version = version;
        let (_sw, a, b, mut watcher) = lan_with(41100 + i as u64, config(A), cb);
        let g = group(1);
        let to = at(g, 41100);
        let s = member(&b, to, JL_BOTH);
        let tx = udp_bound(&a, at(A, 41101));
        sendto(&a, tx, b"member", to).expect("sendto");
        assert_eq!(next_dgram(&b, s).0, b"member", "{version:?}");
        assert!(groups_of(&b).contains(&g));
        b.closesocket(s).expect("closesocket");
        let leave = sniff(&mut watcher, WAIT, |f| leaves(f, g));
        let leave = leave.unwrap_or_else(|| panic!("IGMP {version:?}: no Leave for {g}"));
        let f = igmp_in(&leave).expect("IGMP");
        let dst = if version == Some(2) {
            Ipv4Addr::new(224, 0, 0, 2) // RFC 2236 §3: all-routers
        } else {
            Ipv4Addr::new(224, 0, 0, 22)
        };
        assert_eq!((f.ip.dst, f.ip.ttl), (dst, 1), "IGMP {version:?}: {f:?}");
        assert!(membership_becomes(&b, g, false), "{:?}", groups_of(&b));
        // The group's traffic is no longer delivered to anything on B's port.
        let plain = new_socket(&b, SOCK_DGRAM);
        set_int(&b, plain, SOL_SOCKET, SO_REUSEADDR, 1).unwrap();
        bind(&b, plain, at(Ipv4Addr::UNSPECIFIED, 41100)).expect("bind the freed port");
        sendto(&a, tx, b"after the leave", to).expect("sendto");
        assert_silent(&b, plain, "after the last member closed");
    }
}

/// Conformance: 412 — when two local sockets have joined the same group, closing one keeps the membership (no Leave) and the other keeps receiving; closing the second then leaves.
#[test]
fn closing_one_of_two_members_keeps_the_group() {
    let (_sw, a, b, mut watcher) = lan(41200);
    let g = group(1);
    let to = at(g, 41200);
    let first = member(&b, to, JL_BOTH);
    let second = member(&b, to, JL_RECEIVER_ONLY);
    b.closesocket(first).expect("closesocket");
    let leave = watch(&mut watcher, Duration::from_millis(500))
        .into_iter()
        .find(|f| leaves(f, g));
    assert!(leave.is_none(), "a Leave while a member remains: {leave:?}");
    assert!(groups_of(&b).contains(&g), "still a member");
    let tx = udp_bound(&a, at(A, 41201));
    sendto(&a, tx, b"to the survivor", to).expect("sendto");
    assert_eq!(next_dgram(&b, second).0, b"to the survivor");
    // The last member's close does leave (so the watcher would have seen the first one).
    b.closesocket(second).expect("closesocket");
    assert!(sniff(&mut watcher, WAIT, |f| leaves(f, g)).is_some());
}

/// Conformance: 413 — multicast datagrams to a group that no local socket joined are not delivered, not even to a socket bound to the port or joined to another group on it.
#[test]
fn unjoined_groups_are_not_delivered() {
    let (_sw, a, b, _w) = lan(41300);
    let (g1, g2) = (group(1), group(2));
    let joined = member(&b, at(g2, 41300), JL_BOTH);
    let bound = new_socket(&b, SOCK_DGRAM);
    set_int(&b, bound, SOL_SOCKET, SO_REUSEADDR, 1).unwrap();
    bind(&b, bound, at(Ipv4Addr::UNSPECIFIED, 41300)).expect("bind");
    let tx = udp_bound(&a, at(A, 41301));
    sendto(&a, tx, b"to g1", at(g1, 41300)).expect("sendto");
    sendto(&a, tx, b"to g2", at(g2, 41300)).expect("sendto");
    // Frames arrive in order, so once g2's datagram is here g1's would have been too.
    assert_eq!(next_dgram(&b, joined).0, b"to g2");
    assert_nothing_queued(&b, joined, "the member of another group");
    assert_silent(&b, bound, "a bound socket that joined nothing");
    assert!(!groups_of(&b).contains(&g1));
}

/// Conformance: 414 — a d_leaf multicast socket receives datagrams from non-member senders (a plain socket on another host, a host that never joined).
#[test]
fn members_hear_non_member_senders() {
    let switch = VirtualSwitch::new(41400);
    let (a, b) = two_hosts_on(&switch, config(A), config(B));
    let c = started(&stack_on(&switch, config(C)));
    let to = at(group(1), 41400);
    let rx = member(&b, to, JL_BOTH);
    let from_a = udp_bound(&a, at(A, 41401));
    let from_c = leaf(&c);
    bind(&c, from_c, at(C, 41402)).expect("bind");
    sendto(&a, from_a, b"plain socket", to).expect("sendto");
    assert_eq!(next_dgram(&b, rx), (b"plain socket".to_vec(), at(A, 41401)));
    sendto(&c, from_c, b"unjoined leaf", to).expect("sendto");
    assert_eq!(
        next_dgram(&b, rx),
        (b"unjoined leaf".to_vec(), at(C, 41402))
    );
    assert!(groups_of(&a).is_empty() && groups_of(&c).is_empty());
}

// ---- select and the nonblocking join (251) ----------------------------------------------

/// Conformance: 251 — `select` cannot be used to detect completion of a nonblocking `WSAJoinLeaf`: the socket's writability is the same while the join is outstanding as after `FD_CONNECT`, so it signals nothing.
#[test]
fn select_does_not_signal_join_completion() {
    let (a, open, _b, _w) = gated_lan(25100);
    let s = leaf(&a);
    let before = poll_one(&a, s, 0);
    let ev = a.WSACreateEvent().expect("WSACreateEvent");
    a.WSAEventSelect(s, ev, FD_CONNECT).expect("WSAEventSelect");
    open.store(false, Ordering::SeqCst);
    assert_eq!(join(&a, s, at(group(1), 25100), JL_BOTH), Ok(s));
    // While the report is held back (for a stack that completes on its departure) …
    let during = poll_one(&a, s, 0);
    let during_wait = poll_one(&a, s, 100);
    open.store(true, Ordering::SeqCst);
    let ne = next_events(&a, s, ev);
    assert_ne!(ne.lNetworkEvents & FD_CONNECT, 0, "{ne:?}");
    let after = poll_one(&a, s, 0);
    // … select says the same before, during and after: (readable, writable, exceptional).
    assert_eq!(during, after, "select changed when the join completed");
    assert_eq!(during_wait, after, "select changed when the join completed");
    assert_eq!(before, after);
    assert_eq!(
        after,
        (false, true, false),
        "an idle UDP socket is writable"
    );
}

// ---- the Deering options (no behaviour number; §1.10.6) --------------------------------

/// `setsockopt(IPPROTO_IP, opt, bytes)`.
fn set_ip(ws: &Winsock, s: SOCKET, opt: i32, bytes: &[u8]) -> Result<(), WsaError> {
    ws.setsockopt(s, IPPROTO_IP, opt, Some(bytes), bytes.len() as i32)
}

fn mreq(g: Ipv4Addr) -> IP_MREQ {
    IP_MREQ {
        imr_multiaddr: g.octets(),
        imr_interface: Ipv4Addr::UNSPECIFIED.octets(),
    }
}

fn mreq_source(g: Ipv4Addr, source: Ipv4Addr) -> IP_MREQ_SOURCE {
    IP_MREQ_SOURCE {
        imr_multiaddr: g.octets(),
        imr_sourceaddr: source.octets(),
        imr_interface: Ipv4Addr::UNSPECIFIED.octets(),
    }
}

/// `IP_ADD_MEMBERSHIP`/`IP_DROP_MEMBERSHIP` join and leave on a plain UDP socket;
/// `IP_BLOCK_SOURCE`/`IP_UNBLOCK_SOURCE` filter one sender; `IP_ADD_SOURCE_MEMBERSHIP` admits
/// only the named one.
#[test]
fn deering_membership_options() {
    let switch = VirtualSwitch::new(60001);
    let (a, b) = two_hosts_on(&switch, config(A), config(B));
    let c = started(&stack_on(&switch, config(C)));
    let mut watcher = switch.port();
    let g = group(1);
    let to = at(g, 60001);
    let s = udp_bound(&a, at(Ipv4Addr::UNSPECIFIED, 60001));
    let from_b = udp_bound(&b, at(B, 60002));
    let from_c = udp_bound(&c, at(C, 60003));
    set_ip(&a, s, IP_ADD_MEMBERSHIP, &mreq(g).as_bytes()[..]).expect("IP_ADD_MEMBERSHIP");
    assert!(sniff(&mut watcher, WAIT, |f| joins(f, g)).is_some());
    sendto(&b, from_b, b"b1", to).unwrap();
    assert_eq!(next_dgram(&a, s), (b"b1".to_vec(), at(B, 60002)));
    // Block B: C still gets through, B not (the quiet period gives B's datagram time to show).
    let block = mreq_source(g, B);
    set_ip(&a, s, IP_BLOCK_SOURCE, &block.as_bytes()[..]).expect("IP_BLOCK_SOURCE");
    sendto(&b, from_b, b"b2", to).unwrap();
    sendto(&c, from_c, b"c1", to).unwrap();
    assert_eq!(next_dgram(&a, s), (b"c1".to_vec(), at(C, 60003)));
    assert_silent(&a, s, "a blocked source");
    set_ip(&a, s, IP_UNBLOCK_SOURCE, &block.as_bytes()[..]).expect("IP_UNBLOCK_SOURCE");
    sendto(&b, from_b, b"b3", to).unwrap();
    assert_eq!(next_dgram(&a, s).0, b"b3");
    // Drop: nothing more, and the interface leaves.
    set_ip(&a, s, IP_DROP_MEMBERSHIP, &mreq(g).as_bytes()[..]).expect("IP_DROP_MEMBERSHIP");
    assert!(sniff(&mut watcher, WAIT, |f| leaves(f, g)).is_some());
    assert!(membership_becomes(&a, g, false));
    sendto(&b, from_b, b"b4", to).unwrap();
    assert_silent(&a, s, "after IP_DROP_MEMBERSHIP");
    // Source-specific: only C.
    let only_c = mreq_source(g, C);
    set_ip(&a, s, IP_ADD_SOURCE_MEMBERSHIP, &only_c.as_bytes()[..])
        .expect("IP_ADD_SOURCE_MEMBERSHIP");
    sendto(&b, from_b, b"b5", to).unwrap();
    sendto(&c, from_c, b"c2", to).unwrap();
    assert_eq!(next_dgram(&a, s).0, b"c2");
    assert_silent(&a, s, "a source outside the include list");
    set_ip(&a, s, IP_DROP_SOURCE_MEMBERSHIP, &only_c.as_bytes()[..])
        .expect("IP_DROP_SOURCE_MEMBERSHIP");
    assert!(membership_becomes(&a, g, false));
}

/// `IP_MULTICAST_TTL` and `IP_MULTICAST_LOOP` read back what was set (defaults 1 and TRUE),
/// and the TTL is the one on the wire.
#[test]
fn deering_ttl_and_loop_options() {
    let (_sw, a, _b, mut watcher) = lan(60010);
    let s = udp_bound(&a, at(A, 60010));
    assert_eq!(get_int(&a, s, IPPROTO_IP, IP_MULTICAST_TTL), Ok(1));
    assert_eq!(get_int(&a, s, IPPROTO_IP, IP_MULTICAST_LOOP), Ok(1));
    set_int(&a, s, IPPROTO_IP, IP_MULTICAST_TTL, 9).expect("IP_MULTICAST_TTL");
    set_int(&a, s, IPPROTO_IP, IP_MULTICAST_LOOP, 0).expect("IP_MULTICAST_LOOP");
    assert_eq!(get_int(&a, s, IPPROTO_IP, IP_MULTICAST_TTL), Ok(9));
    assert_eq!(get_int(&a, s, IPPROTO_IP, IP_MULTICAST_LOOP), Ok(0));
    let to = at(group(1), 60011);
    sendto(&a, s, b"ttl nine", to).unwrap();
    let frame = sniff(&mut watcher, WAIT, |f| carries(f, b"ttl nine")).expect("sent");
    assert_eq!(udp_ttl_to(&frame, to), Some(9));
    assert_wsa_error(
        set_int(&a, s, IPPROTO_IP, IP_MULTICAST_TTL, 256),
        WsaError::WSAEINVAL,
    );
    assert_eq!(get_int(&a, s, IPPROTO_IP, IP_MULTICAST_TTL), Ok(9));
}
