//! Tier 2 (virtual time, seeded): an attacker on the LAN against a ws2 stack's TCP and ICMP
//! handling (issue 13, "validate before observing", the listen pool, closed connections).
//!
//! The victim is a ws2 stack at A. Its peer is a bare switch port (`Wire`) that speaks TCP by
//! hand, so every sequence number is known and every frame the victim sends is seen; the
//! attacker is another bare port that forges frames with the peer's IP address (and its own
//! MAC address). Frames are built with smoltcp's wire types.
//!
//! What is checked, and where the rule comes from:
//! - RFC 5961 §3.2: a RST resets only when its sequence number is exactly RCV.NXT; inside the
//!   window otherwise it draws a challenge ACK; outside the window it is dropped. A RST with a
//!   bad checksum (RFC 9293 §3.1) or in an IP fragment that never completes (RFC 791 §3.2) does
//!   nothing.
//! - RFC 5961 §4.2: a SYN on a synchronized connection draws a challenge ACK and changes
//!   nothing (the urgent-data bookkeeping keeps the peer's ISN).
//! - RFC 9293 §3.10.7.4 and RFC 6093: an urgent pointer in a segment outside the window is
//!   ignored; out-of-line urgent bytes held out of the stream are bounded.
//! - RFC 4987 §3: a listener keeps accepting during a 10,000-SYN flood from spoofed sources;
//!   half-open connections time out (Linux's `tcp_synack_retries` 5, 63 s).
//! - RFC 5927 §4.1, RFC 1122 §4.2.3.9, and the `recv` reference (`WSAECONNRESET` on a UDP
//!   socket after an ICMP port unreachable): only an ICMP error with a right checksum quoting a
//!   datagram this socket sent counts.
//! - Closed connections finishing in the background are capped (Linux's `tcp_max_orphans`).

use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::{Duration, Instant};

use smoltcp::phy::ChecksumCapabilities;
use smoltcp::wire::{
    ArpOperation, ArpPacket, ArpRepr, EthernetAddress, EthernetFrame, EthernetProtocol,
    EthernetRepr, Icmpv4Packet, IpProtocol, Ipv4Packet, Ipv4Repr, TcpPacket, TcpSeqNumber,
};
use ws2_stack::winsock::*;
use ws2_stack::{Stack, WsaError};
use ws2_tap::{Impairments, Link, SwitchPort};
use ws2_tests::sim::Sim;
use ws2_tests::{
    assert_wsa_error, at, bind, config, connect, listener, mac_of, new_socket, poll_one,
    set_nonblocking, A, B,
};

/// The peer's address and MAC (a bare port).
const P: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 9);
const P_MAC: [u8; 6] = [0x06, 0, 0, 0, 0, 0x09];
/// The attacker's own MAC (it forges the peer's IP address, not its MAC: the switch would
/// otherwise send the peer's frames to it).
const EVIL_MAC: [u8; 6] = [0x06, 0, 0, 0, 0, 0x66];

const FIN: u8 = 0x01;
const SYN: u8 = 0x02;
const RST: u8 = 0x04;
const PSH: u8 = 0x08;
const ACK: u8 = 0x10;
const URG: u8 = 0x20;

/// The peer's initial sequence number.
const PEER_ISN: u32 = 0xfff0_0000;

/// Out-of-line urgent bytes a socket holds out of the stream at most (`urgent::MAX_SKIPS`).
const MAX_SKIPS: u64 = 64;
/// Connections the urgent-data tracker holds for listen pools at most (`urgent::MAX_PRE`).
const MAX_PRE: u64 = 4096;
/// Closed connections finishing in the background at most (`MAX_TCP_ORPHANS`).
const MAX_TCP_ORPHANS: u64 = 256;

/// A TCP segment as a bare port saw it.
#[derive(Debug, Clone)]
struct Seg {
    src: SocketAddrV4,
    seq: u32,
    ack: u32,
    flags: u8,
    payload: Vec<u8>,
}

/// A TCP segment from `src` to `dst` in an Ethernet frame from `src_mac` to `dst_mac`, its
/// checksums right.
#[allow(clippy::too_many_arguments)]
fn tcp_frame(
    src_mac: [u8; 6],
    src: SocketAddrV4,
    dst: SocketAddrV4,
    seq: u32,
    ack: u32,
    flags: u8,
    urgent: u16,
    payload: &[u8],
) -> Vec<u8> {
    let tcp_len = 20 + payload.len();
    let eth = EthernetRepr {
        src_addr: EthernetAddress(src_mac),
        dst_addr: EthernetAddress(mac_of(*dst.ip())),
        ethertype: EthernetProtocol::Ipv4,
    };
    let ip = Ipv4Repr {
        src_addr: *src.ip(),
        dst_addr: *dst.ip(),
        next_header: IpProtocol::Tcp,
        payload_len: tcp_len,
        hop_limit: 64,
    };
    let mut f = vec![0u8; eth.buffer_len() + ip.buffer_len() + tcp_len];
    let mut e = EthernetFrame::new_unchecked(&mut f[..]);
    eth.emit(&mut e);
    let mut p = Ipv4Packet::new_unchecked(e.payload_mut());
    ip.emit(&mut p, &ChecksumCapabilities::default());
    let mut t = TcpPacket::new_unchecked(p.payload_mut());
    t.set_src_port(src.port());
    t.set_dst_port(dst.port());
    t.set_seq_number(TcpSeqNumber(seq as i32));
    t.set_ack_number(TcpSeqNumber(ack as i32));
    t.set_header_len(20);
    t.clear_flags();
    t.set_fin(flags & FIN != 0);
    t.set_syn(flags & SYN != 0);
    t.set_rst(flags & RST != 0);
    t.set_psh(flags & PSH != 0);
    t.set_ack(flags & ACK != 0);
    t.set_urg(flags & URG != 0);
    t.set_window_len(65535);
    t.set_urgent_at(urgent);
    t.payload_mut().copy_from_slice(payload);
    t.fill_checksum(&(*src.ip()).into(), &(*dst.ip()).into());
    f
}

/// An ICMP port unreachable from `from` quoting a UDP datagram `quoted_src` → `quoted_dst`.
fn port_unreachable(
    from: Ipv4Addr,
    to: Ipv4Addr,
    quoted_src: SocketAddrV4,
    quoted_dst: SocketAddrV4,
) -> Vec<u8> {
    let quoted_ip = Ipv4Repr {
        src_addr: *quoted_src.ip(),
        dst_addr: *quoted_dst.ip(),
        next_header: IpProtocol::Udp,
        payload_len: 8 + 5,
        hop_limit: 64,
    };
    let mut quote = vec![0u8; 20 + 8];
    quoted_ip.emit(
        &mut Ipv4Packet::new_unchecked(&mut quote[..]),
        &ChecksumCapabilities::default(),
    );
    quote[20..22].copy_from_slice(&quoted_src.port().to_be_bytes());
    quote[22..24].copy_from_slice(&quoted_dst.port().to_be_bytes());
    quote[24..26].copy_from_slice(&13u16.to_be_bytes());
    let icmp_len = 8 + quote.len();
    let eth = EthernetRepr {
        src_addr: EthernetAddress(EVIL_MAC),
        dst_addr: EthernetAddress(mac_of(to)),
        ethertype: EthernetProtocol::Ipv4,
    };
    let ip = Ipv4Repr {
        src_addr: from,
        dst_addr: to,
        next_header: IpProtocol::Icmp,
        payload_len: icmp_len,
        hop_limit: 64,
    };
    let mut f = vec![0u8; eth.buffer_len() + ip.buffer_len() + icmp_len];
    let mut e = EthernetFrame::new_unchecked(&mut f[..]);
    eth.emit(&mut e);
    let mut p = Ipv4Packet::new_unchecked(e.payload_mut());
    ip.emit(&mut p, &ChecksumCapabilities::default());
    let icmp = p.payload_mut();
    icmp[0] = 3; // Destination Unreachable
    icmp[1] = 3; // port
    icmp[8..].copy_from_slice(&quote);
    Icmpv4Packet::new_unchecked(icmp).fill_checksum();
    f
}

/// A bare switch port speaking for `ip`.
struct Wire {
    port: SwitchPort,
    mac: [u8; 6],
    ip: Ipv4Addr,
}

impl Wire {
    fn send(&mut self, frame: &[u8], now: Instant) {
        self.port.send(frame, now).expect("the switch takes it");
    }

    /// Reads what arrived by `now`, answering ARP requests for our address; returns the TCP
    /// segments for us.
    fn poll(&mut self, now: Instant) -> Vec<Seg> {
        let mut out = Vec::new();
        let mut buf = vec![0u8; 2048];
        while let Ok(Some(n)) = self.port.recv(&mut buf, now) {
            let Ok(eth) = EthernetFrame::new_checked(&buf[..n]) else {
                continue;
            };
            if eth.ethertype() == EthernetProtocol::Arp {
                let Ok(arp) = ArpPacket::new_checked(eth.payload()) else {
                    continue;
                };
                if let Ok(ArpRepr::EthernetIpv4 {
                    operation: ArpOperation::Request,
                    source_hardware_addr,
                    source_protocol_addr,
                    target_protocol_addr,
                    ..
                }) = ArpRepr::parse(&arp)
                {
                    if target_protocol_addr == self.ip {
                        let reply = ArpRepr::EthernetIpv4 {
                            operation: ArpOperation::Reply,
                            source_hardware_addr: EthernetAddress(self.mac),
                            source_protocol_addr: self.ip,
                            target_hardware_addr: source_hardware_addr,
                            target_protocol_addr: source_protocol_addr,
                        };
                        let eth = EthernetRepr {
                            src_addr: EthernetAddress(self.mac),
                            dst_addr: source_hardware_addr,
                            ethertype: EthernetProtocol::Arp,
                        };
                        let mut f = vec![0u8; eth.buffer_len() + reply.buffer_len()];
                        let mut e = EthernetFrame::new_unchecked(&mut f[..]);
                        eth.emit(&mut e);
                        reply.emit(&mut ArpPacket::new_unchecked(e.payload_mut()));
                        self.send(&f, now);
                    }
                }
                continue;
            }
            let Ok(ip) = Ipv4Packet::new_checked(eth.payload()) else {
                continue;
            };
            if ip.next_header() != IpProtocol::Tcp || ip.dst_addr() != self.ip {
                continue;
            }
            let Ok(t) = TcpPacket::new_checked(ip.payload()) else {
                continue;
            };
            let flags = u8::from(t.fin())
                | u8::from(t.syn()) << 1
                | u8::from(t.rst()) << 2
                | u8::from(t.psh()) << 3
                | u8::from(t.ack()) << 4
                | u8::from(t.urg()) << 5;
            out.push(Seg {
                src: SocketAddrV4::new(ip.src_addr(), t.src_port()),
                seq: t.seq_number().0 as u32,
                ack: t.ack_number().0 as u32,
                flags,
                payload: t.payload().to_vec(),
            });
        }
        out
    }
}

/// A victim stack at A with a connection accepted from the bare peer at P.
struct Victim {
    sim: Sim,
    stack: Stack,
    ws: Winsock,
    /// The accepted socket (non-blocking).
    s: SOCKET,
    peer: Wire,
    evil: Wire,
    /// The victim's end and the peer's end.
    v: SocketAddrV4,
    p: SocketAddrV4,
    /// The peer's next sequence number (the victim's RCV.NXT) and the victim's.
    p_nxt: u32,
    v_nxt: u32,
}

impl Victim {
    fn new(seed: u64) -> Victim {
        Victim::new_with(seed, |_, _, _| {})
    }

    /// As [`Victim::new`], running `in_backlog` (with the simulation, the attacker's port and
    /// the peer's next sequence number) between the handshake and `accept`.
    fn new_with(seed: u64, in_backlog: impl FnOnce(&mut Sim, &mut Wire, u32)) -> Victim {
        let mut sim = Sim::new(seed);
        let stack = sim.host(config(A));
        let ws = sim.winsock(&stack);
        let mut peer = Wire {
            port: sim.port(),
            mac: P_MAC,
            ip: P,
        };
        let mut evil = Wire {
            port: sim.port(),
            mac: EVIL_MAC,
            ip: P,
        };
        let (v, p) = (at(A, 80), at(P, 40_000));
        let l = listener(&ws, v, 8);
        set_nonblocking(&ws, l, true);
        let syn = tcp_frame(P_MAC, p, v, PEER_ISN, 0, SYN, 0, &[]);
        peer.send(&syn, sim.now());
        let mut synack = None;
        assert!(
            sim.run_until(Duration::from_secs(5), |sim| {
                synack = peer
                    .poll(sim.now())
                    .into_iter()
                    .find(|s| s.flags & (SYN | ACK) == SYN | ACK);
                synack.is_some()
            }),
            "the victim answers the SYN"
        );
        let synack = synack.expect("SYN-ACK");
        assert_eq!(synack.ack, PEER_ISN.wrapping_add(1));
        let (p_nxt, v_nxt) = (PEER_ISN.wrapping_add(1), synack.seq.wrapping_add(1));
        peer.send(
            &tcp_frame(P_MAC, p, v, p_nxt, v_nxt, ACK, 0, &[]),
            sim.now(),
        );
        sim.run_for(Duration::from_millis(10));
        in_backlog(&mut sim, &mut evil, p_nxt);
        let mut s = None;
        assert!(
            sim.run_until(Duration::from_secs(5), |_| {
                s = ws.accept(l, None, None).ok();
                s.is_some()
            }),
            "the victim accepts"
        );
        let s = s.expect("accepted");
        set_nonblocking(&ws, s, true);
        Victim {
            sim,
            stack,
            ws,
            s,
            peer,
            evil,
            v,
            p,
            p_nxt,
            v_nxt,
        }
    }

    /// The attacker sends `frame`; the LAN runs `d`. Returns what the peer received meanwhile.
    fn attack(&mut self, frame: &[u8], d: Duration) -> Vec<Seg> {
        let _ = self.peer.poll(self.sim.now());
        self.evil.send(frame, self.sim.now());
        let mut got = Vec::new();
        let peer = &mut self.peer;
        self.sim.run_until(d, |sim| {
            got.extend(peer.poll(sim.now()));
            false
        });
        got
    }

    /// A segment from the attacker with the peer's addresses.
    fn forged(&self, seq: u32, flags: u8, urgent: u16, payload: &[u8]) -> Vec<u8> {
        tcp_frame(
            EVIL_MAC, self.p, self.v, seq, self.v_nxt, flags, urgent, payload,
        )
    }

    /// The peer sends `data` (with URG and `urgent` if non-zero); returns once the victim
    /// acknowledged it.
    fn peer_sends(&mut self, data: &[u8], urgent: u16) {
        let flags = PSH | ACK | if urgent > 0 { URG } else { 0 };
        let f = tcp_frame(
            P_MAC, self.p, self.v, self.p_nxt, self.v_nxt, flags, urgent, data,
        );
        self.peer.send(&f, self.sim.now());
        let want = self.p_nxt.wrapping_add(data.len() as u32);
        self.p_nxt = want;
        let peer = &mut self.peer;
        assert!(
            self.sim.run_until(Duration::from_secs(5), |sim| {
                peer.poll(sim.now()).iter().any(|s| s.ack == want)
            }),
            "the victim acknowledges the peer's data"
        );
    }

    /// Everything the victim's application can read now (plain receives).
    fn read_all(&mut self) -> Result<Vec<u8>, WsaError> {
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            match self.ws.recv(self.s, &mut buf, 0) {
                Ok(0) => return Ok(got),
                Ok(n) => got.extend_from_slice(&buf[..n as usize]),
                Err(WsaError::WSAEWOULDBLOCK) => return Ok(got),
                Err(e) => return Err(e),
            }
        }
    }

    /// The connection still carries data from the peer to the application.
    #[track_caller]
    fn still_flows(&mut self, data: &[u8]) {
        self.peer_sends(data, 0);
        assert_eq!(self.read_all().as_deref(), Ok(data), "data still flows");
    }

    /// A challenge ACK among `segs`: a pure ACK from the victim acknowledging RCV.NXT.
    fn challenge_in(&self, segs: &[Seg]) -> bool {
        segs.iter().any(|s| {
            s.src == self.v
                && s.flags & (SYN | RST | FIN) == 0
                && s.flags & ACK != 0
                && s.ack == self.p_nxt
                && s.seq == self.v_nxt
                && s.payload.is_empty()
        })
    }
}

/// RFC 5961 §3.2 and issue 13: a RST with a bad checksum, one 2³⁰ outside the window and one in
/// an IP fragment that never completes do nothing; one inside the window but not at RCV.NXT
/// draws a challenge ACK and the connection lives on; only the exact one resets it.
#[test]
fn forged_resets_do_not_reset() {
    let mut v = Victim::new(1301);
    let gap = Duration::from_millis(600);

    let mut bad_sum = v.forged(v.p_nxt, RST | ACK, 0, &[]);
    let n = bad_sum.len();
    bad_sum[n - 4] ^= 0x5a; // the TCP checksum (no payload, no options)
    v.attack(&bad_sum, gap);
    v.still_flows(b"after a RST with a bad checksum");

    let far = v.forged(v.p_nxt.wrapping_add(1 << 30), RST | ACK, 0, &[]);
    let seen = v.attack(&far, gap);
    assert!(
        !v.challenge_in(&seen),
        "out of the window: dropped silently"
    );
    v.still_flows(b"after a RST 2^30 outside the window");

    let mut frag = v.forged(v.p_nxt, RST | ACK, 0, &[]);
    {
        let mut ip = Ipv4Packet::new_unchecked(&mut frag[14..]);
        ip.set_dont_frag(false);
        ip.set_more_frags(true);
        ip.set_ident(0x1313);
        ip.fill_checksum();
    }
    v.attack(&frag, gap);
    v.still_flows(b"after a RST in a fragment that never completes");

    let before = v.stack.stats().tcp_challenge_acks;
    let near = v.forged(v.p_nxt.wrapping_add(1000), RST | ACK, 0, &[]);
    let seen = v.attack(&near, gap);
    assert!(
        v.challenge_in(&seen),
        "an in-window inexact RST draws a challenge ACK: {seen:?}"
    );
    assert_eq!(v.stack.stats().tcp_challenge_acks, before + 1);
    v.still_flows(b"after an in-window RST that was not exact");

    // A RST at exactly RCV.NXT is believed (RFC 5961 §3.2), whoever sent it.
    let exact = v.forged(v.p_nxt, RST | ACK, 0, &[]);
    v.attack(&exact, gap);
    assert_wsa_error(v.read_all(), WsaError::WSAECONNRESET);
}

/// RFC 5961 §7 (Linux's `tcp_invalid_ratelimit`, 500 ms): a burst of inexact RSTs draws one
/// challenge ACK, not one each; the next comes once the interval has passed.
#[test]
fn challenge_acks_are_throttled() {
    let mut v = Victim::new(1311);
    let mut challenges = 0;
    for i in 0..10u32 {
        let rst = v.forged(v.p_nxt.wrapping_add(100 + i), RST | ACK, 0, &[]);
        let seen = v.attack(&rst, Duration::from_millis(10));
        challenges += usize::from(v.challenge_in(&seen));
    }
    assert_eq!(challenges, 1, "one challenge ACK for a burst of ten RSTs");
    v.sim.run_for(Duration::from_millis(500));
    let rst = v.forged(v.p_nxt.wrapping_add(7), RST | ACK, 0, &[]);
    let seen = v.attack(&rst, Duration::from_millis(10));
    assert!(
        v.challenge_in(&seen),
        "the interval passed: a challenge again"
    );
    assert_eq!(v.stack.stats().tcp_segments_refused, 11);
    v.still_flows(b"after eleven RSTs");
}

/// RFC 5961 §3.2 for a connection waiting in the listen pool for `accept`: an inexact RST in
/// its window is dropped and the connection is still accepted and carries data.
#[test]
fn forged_reset_in_the_backlog_does_not_reset() {
    let (v, p) = (at(A, 80), at(P, 40_000));
    let mut v = Victim::new_with(1310, |sim, evil, p_nxt| {
        for off in [1000u32, 1 << 30] {
            let rst = tcp_frame(EVIL_MAC, p, v, p_nxt.wrapping_add(off), 0, RST, 0, &[]);
            evil.send(&rst, sim.now());
            sim.run_for(Duration::from_millis(100));
        }
    });
    v.still_flows(b"accepted after two forged RSTs");
}

/// RFC 5961 §4.2: a SYN on an established connection, in the window or anywhere else, draws a
/// challenge ACK and changes nothing — the urgent-data bookkeeping keeps the peer's ISN, so an
/// urgent byte sent afterwards is found where it is.
#[test]
fn syn_on_an_established_connection_draws_a_challenge_ack() {
    let mut v = Victim::new(1302);
    v.still_flows(b"before");
    for seq in [v.p_nxt.wrapping_add(10), 0x1234_5678] {
        let syn = tcp_frame(EVIL_MAC, v.p, v.v, seq, 0, SYN, 0, &[]);
        let seen = v.attack(&syn, Duration::from_millis(600));
        assert!(v.challenge_in(&seen), "SYN at {seq:#x}: {seen:?}");
    }
    v.still_flows(b"after two SYNs");
    // "ab" then the urgent byte "c" (BSD: the pointer names the byte after it).
    v.peer_sends(b"abc", 3);
    let mut b = [0u8; 1];
    assert_eq!(v.ws.recv(v.s, &mut b, MSG_OOB), Ok(1), "recv(MSG_OOB)");
    assert_eq!(&b, b"c");
    assert_eq!(v.read_all().as_deref(), Ok(&b"ab"[..]));
}

/// RFC 9293 §3.10.7.4, RFC 6093: an urgent pointer in a segment outside the window is ignored,
/// so it cannot hide the next real urgent byte.
#[test]
fn out_of_window_urgent_pointer_is_ignored() {
    let mut v = Victim::new(1303);
    let urg = v.forged(v.p_nxt.wrapping_add(1 << 30), ACK | URG, 100, b"x");
    v.attack(&urg, Duration::from_millis(100));
    let urg = v.forged(v.p_nxt.wrapping_sub(1 << 20), ACK | URG, 50, b"y");
    v.attack(&urg, Duration::from_millis(100));
    v.peer_sends(b"def", 3);
    let mut b = [0u8; 1];
    assert_eq!(v.ws.recv(v.s, &mut b, MSG_OOB), Ok(1), "recv(MSG_OOB)");
    assert_eq!(&b, b"f");
    assert_eq!(v.read_all().as_deref(), Ok(&b"de"[..]));
}

/// Issue 13: a peer that marks every byte urgent cannot grow the list of urgent bytes held out
/// of the stream past its bound; the newest is still the one `recv(MSG_OOB)` returns, and the
/// stream keeps every byte that is not held out.
#[test]
fn urgent_bytes_held_out_of_the_stream_are_bounded() {
    let mut v = Victim::new(1304);
    let n = 1000u32;
    for i in 0..n {
        let f = tcp_frame(
            P_MAC,
            v.p,
            v.v,
            v.p_nxt.wrapping_add(i),
            v.v_nxt,
            PSH | ACK | URG,
            1,
            &[(i % 251) as u8],
        );
        v.peer.send(&f, v.sim.now());
        if i % 50 == 49 {
            v.sim.run_for(Duration::from_millis(1));
        }
    }
    let want = v.p_nxt.wrapping_add(n);
    let peer = &mut v.peer;
    assert!(v.sim.run_until(Duration::from_secs(5), |sim| peer
        .poll(sim.now())
        .iter()
        .any(|s| s.ack == want)));
    v.p_nxt = want;
    let skips = v.stack.stats().urgent_skips;
    assert!(
        (1..=MAX_SKIPS).contains(&skips),
        "{skips} urgent positions held"
    );
    let mut b = [0u8; 1];
    assert_eq!(v.ws.recv(v.s, &mut b, MSG_OOB), Ok(1));
    assert_eq!(b[0], ((n - 1) % 251) as u8, "the newest urgent byte");
    let plain = v.read_all().expect("readable");
    assert_eq!(plain.len() as u64, u64::from(n) - MAX_SKIPS);
    assert!(v.stack.stats().urgent_skips <= 1);
}

/// Spoofed SYNs: from `198.18.x.y` (no route back, so nothing answers them and no ARP is
/// needed), `count` of them, the `i`-th to `dst_port(i)`.
fn spoofed_syn(i: u32, dst: SocketAddrV4) -> Vec<u8> {
    let src = SocketAddrV4::new(
        Ipv4Addr::new(198, 18, (i >> 8) as u8, i as u8),
        1024 + (i % 50_000) as u16,
    );
    tcp_frame(EVIL_MAC, src, dst, i.wrapping_mul(7919), 0, SYN, 0, &[])
}

/// RFC 4987 §3.5 and issue 13: during a flood of 10,000 SYNs from spoofed sources (to the
/// listener and to other ports), a legitimate client's connect is accepted; afterwards
/// `send(MSG_OOB)` on the accepted socket works (the urgent-data tracker kept its ISN), and the
/// half-open and urgent-data bookkeeping stay within their bounds.
#[test]
fn listener_accepts_during_a_syn_flood() {
    let mut sim = Sim::new(1305);
    let victim = sim.host(config(A));
    let client = sim.host(config(B));
    let (wv, wc) = (sim.winsock(&victim), sim.winsock(&client));
    let mut evil = Wire {
        port: sim.port(),
        mac: EVIL_MAC,
        ip: P,
    };
    let backlog = 16;
    let l = listener(&wv, at(A, 80), backlog);
    set_nonblocking(&wv, l, true);
    let c = new_socket(&wc, SOCK_STREAM);
    set_nonblocking(&wc, c, true);
    let (mut accepted, mut connected) = (None, false);
    let total = 10_000u32;
    for chunk in 0..total / 10 {
        for k in 0..10 {
            let i = chunk * 10 + k;
            // Three of four at the listener, the rest at ports nobody listens on.
            let port = if i % 4 == 3 {
                81 + (i % 1000) as u16
            } else {
                80
            };
            evil.send(&spoofed_syn(i, at(A, port)), sim.now());
        }
        if chunk == total / 20 {
            assert_wsa_error(connect(&wc, c, at(A, 80)), WsaError::WSAEWOULDBLOCK);
        }
        sim.run_for(Duration::from_millis(10));
        let _ = evil.poll(sim.now());
        if chunk >= total / 20 {
            connected |= poll_one(&wc, c, 0).1;
            if accepted.is_none() {
                accepted = wv.accept(l, None, None).ok();
            }
        }
    }
    let stats = victim.stats();
    assert!(
        connected && accepted.is_some(),
        "the legitimate connect was accepted during the flood ({stats:?})"
    );
    assert!(stats.syn_evicted > 0, "the flood filled the pool");
    assert!(stats.tcp_half_open <= backlog as u64, "{stats:?}");
    assert!(stats.urgent_pre <= MAX_PRE, "{stats:?}");
    let s = accepted.expect("accepted");
    set_nonblocking(&wv, s, true);
    assert_eq!(
        wv.send(s, b"u", MSG_OOB),
        Ok(1),
        "send(MSG_OOB) after the flood"
    );
    let mut got = None;
    assert!(sim.run_until(Duration::from_secs(5), |_| {
        let mut b = [0u8; 1];
        got = wc.recv(c, &mut b, MSG_OOB).ok().map(|_| b[0]);
        got.is_some()
    }));
    assert_eq!(got, Some(b'u'));
}

/// Linux's `tcp_synack_retries` 5 (63 s): pool sockets half-open with hosts that never answer
/// are forgotten, so the listener takes new connections again without evicting anyone.
#[test]
fn half_open_connections_time_out() {
    let mut sim = Sim::new(1306);
    let victim = sim.host(config(A));
    let client = sim.host(config(B));
    let (wv, wc) = (sim.winsock(&victim), sim.winsock(&client));
    let mut evil = Wire {
        port: sim.port(),
        mac: EVIL_MAC,
        ip: P,
    };
    let l = listener(&wv, at(A, 80), 4);
    set_nonblocking(&wv, l, true);
    for i in 0..4 {
        evil.send(&spoofed_syn(i, at(A, 80)), sim.now());
    }
    sim.run_for(Duration::from_secs(10));
    assert_eq!(victim.stats().tcp_half_open, 4, "the pool is full");
    sim.run_for(Duration::from_secs(60));
    let stats = victim.stats();
    assert_eq!(stats.tcp_half_open, 0, "half-open past 63 s: {stats:?}");
    let c = new_socket(&wc, SOCK_STREAM);
    set_nonblocking(&wc, c, true);
    assert_wsa_error(connect(&wc, c, at(A, 80)), WsaError::WSAEWOULDBLOCK);
    assert!(sim.run_until(Duration::from_secs(5), |_| wv.accept(l, None, None).is_ok()));
    assert_eq!(victim.stats().syn_evicted, 0, "the time-out made the room");
}

/// RFC 5927 §4.1, RFC 1122 §4.2.3.9 and the `recv` reference: an ICMP port unreachable makes a
/// UDP socket's next call fail `WSAECONNRESET` only when its checksum is right and it quotes a
/// datagram this socket sent (its own address and port, to the destination it sent to).
#[test]
fn forged_icmp_port_unreachable_is_ignored() {
    let mut sim = Sim::new(1307);
    let victim = sim.host(config(A));
    let ws = sim.winsock(&victim);
    let mut peer = Wire {
        port: sim.port(),
        mac: P_MAC,
        ip: P,
    };
    let mut evil = Wire {
        port: sim.port(),
        mac: EVIL_MAC,
        ip: P,
    };
    let (me, dns) = (at(A, 5000), at(P, 53));
    // A connected socket and an unconnected one that sent to the same server.
    let s = new_socket(&ws, SOCK_DGRAM);
    bind(&ws, s, me).expect("bind");
    connect(&ws, s, dns).expect("connect");
    set_nonblocking(&ws, s, true);
    let u = new_socket(&ws, SOCK_DGRAM);
    bind(&ws, u, at(A, 5001)).expect("bind");
    set_nonblocking(&ws, u, true);
    assert_eq!(ws.send(s, b"query", 0), Ok(5));
    assert_eq!(ws2_tests::sendto(&ws, u, b"query", dns), Ok(5));
    sim.run_until(Duration::from_millis(200), |sim| {
        peer.poll(sim.now());
        false
    });
    let mut buf = [0u8; 64];
    let mut hit = |sim: &mut Sim, frame: Vec<u8>| {
        evil.send(&frame, sim.now());
        sim.run_for(Duration::from_millis(50));
    };
    let mut bad_sum = port_unreachable(P, A, me, dns);
    bad_sum[14 + 20 + 2] ^= 0x5a;
    let forged = [
        ("a bad checksum", bad_sum),
        (
            "another source port",
            port_unreachable(P, A, at(A, 5002), dns),
        ),
        (
            "another source address",
            port_unreachable(P, A, at(B, 5000), dns),
        ),
        ("another destination", port_unreachable(P, A, me, at(P, 54))),
        (
            "a never-used destination",
            port_unreachable(P, A, at(A, 5001), at(P, 99)),
        ),
    ];
    for (what, frame) in forged {
        hit(&mut sim, frame);
        for sock in [s, u] {
            assert_wsa_error(ws.recv(sock, &mut buf, 0), WsaError::WSAEWOULDBLOCK);
        }
        let _ = what;
    }
    assert!(victim.stats().icmp_ignored >= 3, "{:?}", victim.stats());
    // The genuine ones: right checksum, our address and port, the destination we sent to.
    hit(&mut sim, port_unreachable(P, A, me, dns));
    assert_wsa_error(ws.recv(s, &mut buf, 0), WsaError::WSAECONNRESET);
    assert_wsa_error(ws.recv(u, &mut buf, 0), WsaError::WSAEWOULDBLOCK);
    hit(&mut sim, port_unreachable(P, A, at(A, 5001), dns));
    assert_wsa_error(ws.recv(u, &mut buf, 0), WsaError::WSAECONNRESET);
}

/// Linux's `tcp_max_orphans`: connections closed by the application but not finished by the
/// peer (it never closes its side) are capped; the oldest are reset past the cap.
#[test]
fn closed_connections_are_capped() {
    let mut sim = Sim::new(1308);
    let victim = sim.host(config(A));
    let client = sim.host(config(B));
    let (wv, wc) = (sim.winsock(&victim), sim.winsock(&client));
    let l = listener(&wv, at(A, 80), 64);
    set_nonblocking(&wv, l, true);
    let n = MAX_TCP_ORPHANS + 44;
    let mut clients = Vec::new();
    for _ in 0..n {
        let c = new_socket(&wc, SOCK_STREAM);
        set_nonblocking(&wc, c, true);
        assert_wsa_error(connect(&wc, c, at(A, 80)), WsaError::WSAEWOULDBLOCK);
        let mut s = None;
        assert!(sim.run_until(Duration::from_secs(5), |_| {
            s = wv.accept(l, None, None).ok();
            s.is_some()
        }));
        // The victim closes; the client never does (FIN-WAIT-2 on the victim's side).
        assert_eq!(wv.closesocket(s.expect("accepted")), Ok(()));
        clients.push(c);
        sim.run_for(Duration::from_millis(5));
    }
    sim.run_for(Duration::from_millis(100));
    let stats = victim.stats();
    assert!(stats.orphans <= MAX_TCP_ORPHANS, "{stats:?}");
    assert!(stats.orphans_reset >= n - MAX_TCP_ORPHANS, "{stats:?}");
    // Linux's tcp_fin_timeout: the acknowledged ones go after 60 s.
    sim.run_for(Duration::from_secs(61));
    assert_eq!(victim.stats().orphans, 0);
    drop(clients);
}

/// Issue 13: the UDP flows remembered for matching ICMP errors stay within their bound however
/// many destinations a socket sends to (`UDP_SENT_MAX`, 1,024), and a recent one still counts.
#[test]
fn remembered_udp_flows_are_bounded() {
    let mut sim = Sim::new(1309);
    let victim = sim.host(config(A));
    let ws = sim.winsock(&victim);
    let mut peer = Wire {
        port: sim.port(),
        mac: P_MAC,
        ip: P,
    };
    let mut evil = Wire {
        port: sim.port(),
        mac: EVIL_MAC,
        ip: P,
    };
    let u = new_socket(&ws, SOCK_DGRAM);
    bind(&ws, u, at(A, 6000)).expect("bind");
    set_nonblocking(&ws, u, true);
    for port in 1..=3000u16 {
        ws2_tests::sendto(&ws, u, b"x", at(P, port)).expect("sendto");
        if port % 100 == 0 {
            sim.run_until(Duration::from_millis(20), |sim| {
                peer.poll(sim.now());
                false
            });
        }
    }
    let flows = victim.stats().udp_flows;
    assert!((1..=1024).contains(&flows), "{flows} flows remembered");
    evil.send(&port_unreachable(P, A, at(A, 6000), at(P, 3000)), sim.now());
    sim.run_for(Duration::from_millis(50));
    let mut buf = [0u8; 8];
    assert_wsa_error(ws.recv(u, &mut buf, 0), WsaError::WSAECONNRESET);
}

/// A burst of real clients, many more than the backlog, is not a SYN flood: they answer their
/// SYN-ACKs, so no handshake under way is evicted — an evicted one would reset a client that
/// already counts itself connected (`WSAECONNRESET`, as `echo_servers`' 1,000-client swarm saw).
/// The excess is refused as a full backlog is (`WSAECONNREFUSED`, Windows; conformance 60).
#[test]
fn a_burst_of_real_clients_is_not_taken_for_a_flood() {
    let mut sim = Sim::new(1310);
    let server = sim.host(config(A));
    // 20 ms until the SYN-ACK reaches a client: handshakes stay half-open while SYNs pour in.
    let slow = Impairments {
        delay: Duration::from_millis(20),
        ..Impairments::default()
    };
    let client = sim.host_with(config(B), slow, None);
    let (ws, wc) = (sim.winsock(&server), sim.winsock(&client));
    let l = listener(&ws, at(A, 80), 4);
    set_nonblocking(&ws, l, true);
    let mut clients = Vec::new();
    for _ in 0..40 {
        let c = new_socket(&wc, SOCK_STREAM);
        set_nonblocking(&wc, c, true);
        assert_wsa_error(connect(&wc, c, at(A, 80)), WsaError::WSAEWOULDBLOCK);
        clients.push(c);
        sim.run_for(Duration::from_millis(1));
    }
    let mut accepted = Vec::new();
    sim.run_until(Duration::from_millis(500), |_| {
        while let Ok(s) = ws.accept(l, None, None) {
            accepted.push(s);
        }
        false
    });
    let (mut connected, mut refused) = (0, 0);
    for &c in &clients {
        let (_, writable, failed) = poll_one(&wc, c, 0);
        if writable {
            connected += 1;
            assert_eq!(wc.send(c, b"x", 0), Ok(1), "a connected client sends");
        } else if failed {
            refused += 1;
        }
    }
    sim.run_for(Duration::from_millis(200));
    for &c in &clients {
        let mut b = [0u8; 1];
        let r = wc.recv(c, &mut b, 0);
        assert_ne!(
            r,
            Err(WsaError::WSAECONNRESET),
            "no client of the burst is reset"
        );
    }
    assert_eq!(server.stats().syn_evicted, 0, "{:?}", server.stats());
    assert!(connected >= 4, "the backlog's worth connected: {connected}");
    assert!(refused > 0, "the excess was refused");
}
