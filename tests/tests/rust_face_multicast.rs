//! IP multicast on the Rust face (`ws2_stack::net::UdpSocket`): `join_multicast_v4` /
//! `leave_multicast_v4`, the [`MulticastMembership`] guard, the multicast TTL and loopback
//! options, and source-specific joins, named and behaving as `std::net::UdpSocket`'s, on an
//! in-process network. The Winsock face's behaviours (CHECKLIST group P) are in
//! `winsock_multicast.rs`; the methods here drive the same Deering options.
//!
//! What goes on the wire is read from a bare switch port (the "watcher"), to which the switch
//! floods every multicast frame.

use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::thread;
use std::time::Duration;

use ws2_stack::net::{MulticastMembership, UdpSocket};
use ws2_stack::{Stack, WsaError};
use ws2_tap::{SwitchPort, VirtualSwitch};
use ws2_tests::capture::{drain, sniff};
use ws2_tests::wire::{joins, leaves};
use ws2_tests::*;

/// How long something that must happen may take.
const WAIT: Duration = Duration::from_secs(5);
/// How long to watch for something that must not happen.
const QUIET: Duration = Duration::from_millis(300);
/// A third host on the LAN.
const C: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 3);
const ANY: Ipv4Addr = Ipv4Addr::UNSPECIFIED;

fn group(n: u8) -> Ipv4Addr {
    Ipv4Addr::new(239, 7, 0, n)
}

fn v4(ip: Ipv4Addr, port: u16) -> SocketAddr {
    SocketAddr::from((ip, port))
}

/// Hosts A, B and C on one switch, and a watcher plugged in after them.
fn lan(seed: u64) -> (VirtualSwitch, Stack, Stack, Stack, SwitchPort) {
    let switch = VirtualSwitch::new(seed);
    let a = stack_on(&switch, config(A));
    let b = stack_on(&switch, config(B));
    let c = stack_on(&switch, config(C));
    let watcher = switch.port();
    (switch, a, b, c, watcher)
}

/// The next datagram on `s`, waiting up to `WAIT`.
#[track_caller]
fn next_from(s: &UdpSocket) -> (Vec<u8>, SocketAddr) {
    s.set_nonblocking(false).expect("blocking");
    s.set_read_timeout(Some(WAIT)).expect("read timeout");
    let mut buf = [0u8; 2048];
    let (n, from) = s.recv_from(&mut buf).expect("a datagram within 5 s");
    (buf[..n].to_vec(), from)
}

/// Asserts that nothing arrives on `s` for `QUIET`.
#[track_caller]
fn assert_quiet(s: &UdpSocket, why: &str) {
    thread::sleep(QUIET);
    s.set_nonblocking(true).expect("nonblocking");
    let mut buf = [0u8; 2048];
    match s.recv_from(&mut buf) {
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
            assert_eq!(WsaError::from_io(&e), Some(WsaError::WSAEWOULDBLOCK));
        }
        Ok((n, from)) => panic!(
            "{why}: got {:?} from {from}",
            String::from_utf8_lossy(&buf[..n])
        ),
        Err(e) => panic!("{why}: {e}"),
    }
    s.set_nonblocking(false).expect("blocking");
}

/// The IP TTL of `frame` if it is UDP carrying exactly `payload` (Ethernet padding aside).
fn udp_ttl(frame: &[u8], payload: &[u8]) -> Option<u8> {
    let h = ws2_tests::wire::ipv4_headers(frame)?;
    let body = frame.get(h.payload..h.payload + h.seq_len as usize)?;
    (h.proto == 17 && body == payload).then(|| frame[14 + 8])
}

/// `join_multicast_v4` makes the socket receive the group's datagrams (and the stack report
/// the membership); `leave_multicast_v4` ends both.
#[test]
fn join_and_leave_multicast_v4() {
    let (_sw, a, b, _c, mut watcher) = lan(7100);
    let g = group(1);
    let rx = UdpSocket::bind(&a, "0.0.0.0:7100").expect("bind");
    let tx = UdpSocket::bind(&b, "10.0.0.2:7101").expect("bind");
    rx.join_multicast_v4(&g, &ANY).expect("join_multicast_v4");
    assert_eq!(a.multicast_groups(), vec![g]);
    assert!(
        sniff(&mut watcher, WAIT, |f| joins(f, g)).is_some(),
        "a report"
    );
    tx.send_to(b"hello group", v4(g, 7100)).expect("send_to");
    assert_eq!(next_from(&rx), (b"hello group".to_vec(), v4(B, 7101)));
    rx.leave_multicast_v4(&g, &ANY).expect("leave_multicast_v4");
    assert!(
        sniff(&mut watcher, WAIT, |f| leaves(f, g)).is_some(),
        "a leave"
    );
    assert!(wait_until(WAIT, || a.multicast_groups().is_empty()));
    tx.send_to(b"after leaving", v4(g, 7100)).expect("send_to");
    assert_quiet(&rx, "after leave_multicast_v4");
    // The interface may be named by its address; a non-multicast group is refused.
    rx.join_multicast_v4(&g, &A).expect("join on 10.0.0.1");
    tx.send_to(b"again", v4(g, 7100)).expect("send_to");
    assert_eq!(next_from(&rx).0, b"again");
    assert!(rx.join_multicast_v4(&B, &ANY).is_err(), "a unicast group");
}

/// The [`MulticastMembership`] guard keeps the membership while it lives and leaves when
/// dropped; another socket's membership of the same group outlives it.
#[test]
fn membership_guard_leaves_on_drop() {
    let (_sw, a, b, _c, mut watcher) = lan(7110);
    let g = group(2);
    let rx = UdpSocket::bind(&a, "0.0.0.0:7110").expect("bind");
    let tx = UdpSocket::bind(&b, "10.0.0.2:7111").expect("bind");
    let guard: MulticastMembership<'_> = rx.membership(g).expect("membership");
    assert_eq!(guard.group(), g);
    assert_eq!(a.multicast_groups(), vec![g]);
    tx.send_to(b"while held", v4(g, 7110)).expect("send_to");
    assert_eq!(next_from(&rx).0, b"while held");
    drop(guard);
    assert!(
        sniff(&mut watcher, WAIT, |f| leaves(f, g)).is_some(),
        "a leave"
    );
    assert!(wait_until(WAIT, || a.multicast_groups().is_empty()));
    tx.send_to(b"after the drop", v4(g, 7110)).expect("send_to");
    assert_quiet(&rx, "after the guard was dropped");
    // Two sockets, two guards: dropping one keeps the group for the other.
    let other = UdpSocket::bind(&a, "0.0.0.0:7112").expect("bind");
    let first = rx.membership(g).expect("membership");
    let second = other.membership(g).expect("membership");
    drop(first);
    assert_eq!(a.multicast_groups(), vec![g]);
    tx.send_to(b"to the other", v4(g, 7112)).expect("send_to");
    assert_eq!(next_from(&other).0, b"to the other");
    drop(second);
    assert!(wait_until(WAIT, || a.multicast_groups().is_empty()));
}

/// `set_multicast_ttl_v4`/`multicast_ttl_v4` (default 1) set the TTL on the wire; 0 keeps
/// datagrams on the host; values above 255 are refused.
#[test]
fn multicast_ttl_v4() {
    let (_sw, a, b, _c, mut watcher) = lan(7120);
    let g = group(3);
    let s = UdpSocket::bind(&a, "0.0.0.0:7120").expect("bind");
    let local = UdpSocket::bind(&a, "0.0.0.0:7121").expect("bind");
    local.join_multicast_v4(&g, &ANY).expect("join");
    let remote = UdpSocket::bind(&b, "0.0.0.0:7121").expect("bind");
    remote.join_multicast_v4(&g, &ANY).expect("join");
    assert_eq!(s.multicast_ttl_v4().expect("multicast_ttl_v4"), 1);
    s.send_to(b"ttl default", v4(g, 7121)).expect("send_to");
    let f = sniff(&mut watcher, WAIT, |f| udp_ttl(f, b"ttl default").is_some()).expect("sent");
    assert_eq!(udp_ttl(&f, b"ttl default"), Some(1));
    s.set_multicast_ttl_v4(9).expect("set_multicast_ttl_v4");
    assert_eq!(s.multicast_ttl_v4().expect("multicast_ttl_v4"), 9);
    s.send_to(b"ttl nine", v4(g, 7121)).expect("send_to");
    let f = sniff(&mut watcher, WAIT, |f| udp_ttl(f, b"ttl nine").is_some()).expect("sent");
    assert_eq!(udp_ttl(&f, b"ttl nine"), Some(9));
    assert_eq!(next_from(&remote).0, b"ttl default");
    assert_eq!(next_from(&remote).0, b"ttl nine");
    // TTL 0: the local member gets it, nothing goes out.
    s.set_multicast_ttl_v4(0).expect("TTL 0");
    assert_eq!(s.multicast_ttl_v4().expect("multicast_ttl_v4"), 0);
    drain(&mut watcher);
    s.send_to(b"host only", v4(g, 7121)).expect("send_to");
    assert_eq!(next_from(&local).0, b"ttl default");
    assert_eq!(next_from(&local).0, b"ttl nine");
    assert_eq!(next_from(&local).0, b"host only");
    assert!(
        sniff(&mut watcher, QUIET, |f| udp_ttl(f, b"host only").is_some()).is_none(),
        "TTL 0 put the datagram on the wire"
    );
    assert_quiet(&remote, "TTL 0 reached another host");
    let e = s.set_multicast_ttl_v4(256).expect_err("TTL 256");
    assert_eq!(e.kind(), io::ErrorKind::InvalidInput, "{e}");
    assert_eq!(s.multicast_ttl_v4().expect("multicast_ttl_v4"), 0);
}

/// `set_multicast_loop_v4`/`multicast_loop_v4` (default on) decide whether a member hears its
/// own datagrams; other members on the host hear them either way.
#[test]
fn multicast_loop_v4() {
    let (_sw, a, _b, _c, _w) = lan(7130);
    let g = group(4);
    let s = UdpSocket::bind(&a, "0.0.0.0:7130").expect("bind");
    let other = UdpSocket::bind(&a, "0.0.0.0:7131").expect("bind");
    s.join_multicast_v4(&g, &ANY).expect("join");
    other.join_multicast_v4(&g, &ANY).expect("join");
    assert!(s.multicast_loop_v4().expect("multicast_loop_v4"));
    s.send_to(b"loop on", v4(g, 7130)).expect("send_to");
    assert_eq!(next_from(&s), (b"loop on".to_vec(), v4(A, 7130)));
    s.set_multicast_loop_v4(false)
        .expect("set_multicast_loop_v4");
    assert!(!s.multicast_loop_v4().expect("multicast_loop_v4"));
    s.send_to(b"loop off", v4(g, 7130)).expect("send_to");
    s.send_to(b"to the other", v4(g, 7131)).expect("send_to");
    assert_eq!(next_from(&other).0, b"to the other");
    assert_quiet(&s, "loop off");
    s.set_multicast_loop_v4(true)
        .expect("set_multicast_loop_v4");
    assert!(s.multicast_loop_v4().expect("multicast_loop_v4"));
    s.send_to(b"loop on again", v4(g, 7130)).expect("send_to");
    assert_eq!(next_from(&s).0, b"loop on again");
}

/// A source-specific join receives the group only from the named sources; adding and dropping
/// sources changes that, and dropping the last leaves the group.
#[test]
fn source_specific_join_filters_senders() {
    let (_sw, a, b, c, _w) = lan(7140);
    let g = group(5);
    let rx = UdpSocket::bind(&a, "0.0.0.0:7140").expect("bind");
    let from_b = UdpSocket::bind(&b, "10.0.0.2:7141").expect("bind");
    let from_c = UdpSocket::bind(&c, "10.0.0.3:7142").expect("bind");
    rx.join_source_multicast_v4(&g, &B, &ANY)
        .expect("join_source_multicast_v4");
    assert_eq!(a.multicast_groups(), vec![g]);
    // C's datagram is filtered out; the quiet period after B's arrival gives it time to show.
    from_c.send_to(b"from c", v4(g, 7140)).expect("send_to");
    from_b.send_to(b"from b", v4(g, 7140)).expect("send_to");
    assert_eq!(next_from(&rx), (b"from b".to_vec(), v4(B, 7141)));
    assert_quiet(&rx, "a source that was not named");
    // Add C, drop B.
    rx.join_source_multicast_v4(&g, &C, &ANY).expect("add C");
    from_c.send_to(b"c admitted", v4(g, 7140)).expect("send_to");
    assert_eq!(next_from(&rx), (b"c admitted".to_vec(), v4(C, 7142)));
    rx.leave_source_multicast_v4(&g, &B, &ANY).expect("drop B");
    from_b.send_to(b"b dropped", v4(g, 7140)).expect("send_to");
    from_c.send_to(b"c still", v4(g, 7140)).expect("send_to");
    assert_eq!(next_from(&rx).0, b"c still");
    assert_quiet(&rx, "a dropped source");
    rx.leave_source_multicast_v4(&g, &C, &ANY).expect("drop C");
    assert!(wait_until(WAIT, || a.multicast_groups().is_empty()));
    // A plain (any-source) member on another socket of the same host hears both meanwhile.
    let any = UdpSocket::bind(&a, "0.0.0.0:7143").expect("bind");
    let _m = any.membership(g).expect("membership");
    from_b.send_to(b"b to any", v4(g, 7143)).expect("send_to");
    from_c.send_to(b"c to any", v4(g, 7143)).expect("send_to");
    // Two senders on two hosts: either may arrive first.
    let mut heard = vec![next_from(&any).0, next_from(&any).0];
    heard.sort();
    assert_eq!(heard, vec![b"b to any".to_vec(), b"c to any".to_vec()]);
}
