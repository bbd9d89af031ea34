//! Tier 3, on the wire without tcpdump: every frame the stack puts on the TAP is captured in
//! the test namespace (an `AF_PACKET` socket on the kernel's side) and checked field by field,
//! and the kernel's own error counters must stay at zero.
//!
//! Needs root and `/dev/net/tun` (see `ws2_tests::netns::require_netns`).

use std::io::{Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddrV4};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use ws2_stack::net::{TcpStream, UdpSocket};
use ws2_tap::{Link, RawSocket};
use ws2_tests::netns::{require_netns, KernelPeer, TAP_NAME};

/// The Internet checksum (RFC 1071) of `data` added to `sum`, before folding.
fn sum16(mut sum: u32, data: &[u8]) -> u32 {
    let mut chunks = data.chunks_exact(2);
    for c in &mut chunks {
        sum += u32::from(u16::from_be_bytes([c[0], c[1]]));
    }
    if let [last] = chunks.remainder() {
        sum += u32::from(*last) << 8;
    }
    sum
}

/// Folds a running sum; a correct checksum over data that includes it folds to 0xffff.
fn fold(mut sum: u32) -> u16 {
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum as u16
}

/// Whether the transport checksum over `segment` (which holds it) is right for the IPv4
/// pseudo-header of `src`, `dst` and `proto`.
fn transport_checksum_ok(src: Ipv4Addr, dst: Ipv4Addr, proto: u8, segment: &[u8]) -> bool {
    let mut pseudo = Vec::with_capacity(12);
    pseudo.extend_from_slice(&src.octets());
    pseudo.extend_from_slice(&dst.octets());
    pseudo.extend_from_slice(&[0, proto]);
    pseudo.extend_from_slice(&(segment.len() as u16).to_be_bytes());
    fold(sum16(sum16(0, &pseudo), segment)) == 0xffff
}

/// What the capture saw, by kind.
#[derive(Debug, Default)]
struct Seen {
    arp: usize,
    tcp: usize,
    tcp_payload: usize,
    udp: usize,
    icmp: usize,
    fragments: usize,
}

/// Checks one frame from the stack; panics with the frame in hex on the first fault.
fn check_frame(frame: &[u8], mac: [u8; 6], me: Ipv4Addr, kernel: Ipv4Addr, seen: &mut Seen) {
    let fail = |what: &str| -> ! {
        let hex: String = frame.iter().take(64).map(|b| format!("{b:02x}")).collect();
        panic!("{what}; frame ({} bytes) begins {hex}", frame.len())
    };
    if frame.len() < 14 {
        fail("frame shorter than an Ethernet header");
    }
    if frame[6..12] != mac {
        fail("Ethernet source is not the stack's MAC");
    }
    let payload = &frame[14..];
    match u16::from_be_bytes([frame[12], frame[13]]) {
        0x0806 => {
            // RFC 826: Ethernet/IPv4 ARP, sender = us.
            if payload.len() < 28 || payload[..6] != [0, 1, 8, 0, 6, 4] {
                fail("ARP header is not Ethernet/IPv4");
            }
            if payload[8..14] != mac || payload[14..18] != me.octets() {
                fail("ARP sender is not the stack");
            }
            seen.arp += 1;
        }
        0x0800 => {
            // RFC 791: the header.
            if payload.len() < 20 || payload[0] >> 4 != 4 {
                fail("not an IPv4 header");
            }
            let ihl = usize::from(payload[0] & 0x0f) * 4;
            let total = usize::from(u16::from_be_bytes([payload[2], payload[3]]));
            if ihl < 20 || total < ihl || total > payload.len() {
                fail("IPv4 header or total length out of range");
            }
            // Only padding to the 60-byte Ethernet minimum may follow the datagram.
            if total < payload.len() && frame.len() > 60 {
                fail("bytes after the IPv4 datagram in a frame over 60 bytes");
            }
            if fold(sum16(0, &payload[..ihl])) != 0xffff {
                fail("IPv4 header checksum is wrong");
            }
            if payload[8] == 0 {
                fail("TTL 0");
            }
            let src = Ipv4Addr::new(payload[12], payload[13], payload[14], payload[15]);
            let dst = Ipv4Addr::new(payload[16], payload[17], payload[18], payload[19]);
            if src != me || dst != kernel {
                fail("IPv4 addresses are not stack -> kernel");
            }
            let flags_frag = u16::from_be_bytes([payload[6], payload[7]]);
            let (more, offset) = (flags_frag & 0x2000 != 0, flags_frag & 0x1fff);
            let proto = payload[9];
            let body = &payload[ihl..total];
            if more || offset != 0 {
                seen.fragments += 1;
                if more && !body.len().is_multiple_of(8) {
                    fail("a non-final fragment is not a multiple of 8 bytes");
                }
                if offset != 0 {
                    // The transport header is in the first fragment only.
                    return;
                }
            }
            match proto {
                1 => {
                    if !more && fold(sum16(0, body)) != 0xffff {
                        fail("ICMP checksum is wrong");
                    }
                    seen.icmp += 1;
                }
                6 => {
                    if body.len() < 20 || usize::from(body[12] >> 4) * 4 < 20 {
                        fail("TCP header too short");
                    }
                    if !transport_checksum_ok(src, dst, 6, body) {
                        fail("TCP checksum is wrong");
                    }
                    seen.tcp += 1;
                    seen.tcp_payload += body.len() - usize::from(body[12] >> 4) * 4;
                }
                17 => {
                    if body.len() < 8 {
                        fail("UDP header too short");
                    }
                    let udp_len = usize::from(u16::from_be_bytes([body[4], body[5]]));
                    if !more {
                        if udp_len != body.len() {
                            fail("UDP length disagrees with the IPv4 length");
                        }
                        let zero = body[6] == 0 && body[7] == 0;
                        if !zero && !transport_checksum_ok(src, dst, 17, body) {
                            fail("UDP checksum is wrong");
                        }
                    }
                    seen.udp += 1;
                }
                _ => fail("unexpected IP protocol"),
            }
        }
        _ => fail("unexpected EtherType (IPv4 and ARP only)"),
    }
}

/// Gives the capture socket a 16 MiB receive buffer (`SO_RCVBUFFORCE`, as root), so that a
/// burst of a full TCP window is not dropped before the capture thread reads it.
fn grow_receive_buffer(capture: &RawSocket) {
    let size: libc::c_int = 16 << 20;
    // SAFETY: the fd is open for the duration of the call, and `size` is a valid `int` whose
    // size is passed alongside it.
    #[allow(unsafe_code)]
    let rc = unsafe {
        libc::setsockopt(
            capture.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVBUFFORCE,
            (&size as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    assert_eq!(
        rc,
        0,
        "setsockopt(SO_RCVBUFFORCE): {}",
        std::io::Error::last_os_error()
    );
}

/// Kernel counters that must not move while it talks to the stack.
const CLEAN_COUNTERS: &[(&str, &str)] = &[
    ("Ip", "InHdrErrors"),
    ("Ip", "InAddrErrors"),
    ("Ip", "InUnknownProtos"),
    ("Ip", "ReasmFails"),
    ("Icmp", "InErrors"),
    ("Icmp", "InCsumErrors"),
    ("Tcp", "InErrs"),
    ("Tcp", "InCsumErrors"),
    ("Udp", "InErrors"),
    ("Udp", "InCsumErrors"),
    ("Udp", "NoPorts"),
];

/// Conformance: issue 2 acceptance — every frame the stack sends during ARP, ping replies,
/// unfragmented and fragmented UDP and a TCP exchange is well formed (our MAC and addresses,
/// IPv4 header checksum, TCP/UDP/ICMP checksums, lengths, fragment sizes), and the kernel
/// counts no header, checksum or port errors.
#[test]
fn kernel_wire_frames_are_well_formed() {
    if require_netns().is_some() {
        return;
    }
    let peer = KernelPeer::new("ws2-wire", 10).expect("set up namespace, TAP and stack");
    let mac = peer.stack.config().hardware_addr();
    let mut capture = peer
        .ns
        .enter_thread(|| RawSocket::open(TAP_NAME))
        .unwrap()
        .expect("AF_PACKET capture");
    grow_receive_buffer(&capture);
    let stop = AtomicBool::new(false);

    let seen = std::thread::scope(|scope| {
        let capturer = scope.spawn(|| {
            let mut seen = Seen::default();
            let mut buf = vec![0u8; 65_536];
            let mut idle_since = None;
            loop {
                match capture
                    .recv(&mut buf, Instant::now())
                    .expect("capture recv")
                {
                    Some(n) => {
                        check_frame(&buf[..n], mac, peer.stack_ip, peer.kernel_ip, &mut seen);
                        idle_since = None;
                    }
                    // Keep draining for a moment after the traffic stops.
                    None if stop.load(Ordering::SeqCst) => match idle_since {
                        None => idle_since = Some(Instant::now()),
                        Some(t) if t.elapsed() > Duration::from_millis(200) => return seen,
                        Some(_) => std::thread::sleep(Duration::from_millis(1)),
                    },
                    None => std::thread::sleep(Duration::from_millis(1)),
                }
            }
        });

        // ICMP: the kernel pings, the stack answers (one reply fragmented).
        peer.ns
            .run(&[
                "ping",
                "-n",
                "-c",
                "2",
                "-i",
                "0.2",
                "-W",
                "2",
                &peer.stack_ip.to_string(),
            ])
            .expect("ping");
        peer.ns
            .run(&[
                "ping",
                "-n",
                "-c",
                "1",
                "-s",
                "3000",
                "-W",
                "2",
                &peer.stack_ip.to_string(),
            ])
            .expect("ping");

        // UDP, one small and one fragmented datagram.
        let kernel_udp = peer
            .ns
            .enter_thread(|| std::net::UdpSocket::bind((peer.kernel_ip, 7001)))
            .unwrap()
            .expect("kernel UDP bind");
        kernel_udp
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let udp = UdpSocket::bind(&peer.stack, (peer.stack_ip, 7002)).expect("stack UDP bind");
        let mut buf = vec![0u8; 8192];
        for len in [100, 5000] {
            udp.send_to(&vec![0x5a; len], (peer.kernel_ip, 7001))
                .expect("sendto");
            assert_eq!(kernel_udp.recv_from(&mut buf).expect("kernel recv").0, len);
        }

        // TCP: handshake, 256 KiB, close.
        let listener = peer
            .ns
            .enter_thread(|| std::net::TcpListener::bind((peer.kernel_ip, 7003)))
            .unwrap()
            .expect("kernel TCP bind");
        let mut conn = TcpStream::connect(&peer.stack, SocketAddrV4::new(peer.kernel_ip, 7003))
            .expect("connect");
        let (mut kernel_conn, _) = listener.accept().expect("accept");
        kernel_conn
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let data = vec![0xa5u8; 256 * 1024];
        // The kernel reads while the stack writes: 256 KiB is more than both buffers hold.
        let reader = std::thread::spawn(move || {
            let mut got = Vec::new();
            kernel_conn.read_to_end(&mut got).expect("kernel recv");
            (kernel_conn, got)
        });
        conn.write_all(&data).expect("stack send");
        conn.shutdown(Shutdown::Write).expect("shutdown");
        let (mut kernel_conn, got) = reader.join().expect("kernel reader");
        assert!(got == data, "TCP data arrived intact");
        kernel_conn.write_all(b"bye").expect("kernel send");
        drop(kernel_conn);
        let mut tail = Vec::new();
        conn.read_to_end(&mut tail).expect("stack recv to FIN");
        assert_eq!(tail, b"bye");
        drop(conn);
        std::thread::sleep(Duration::from_millis(100));

        stop.store(true, Ordering::SeqCst);
        capturer.join().expect("capture thread")
    });

    eprintln!("kernel_wire_frames_are_well_formed: {seen:?}");
    assert!(seen.arp >= 1, "the stack answered or sent ARP");
    assert!(seen.icmp >= 3, "three echo replies");
    assert!(seen.udp >= 2, "two UDP datagrams");
    assert!(
        seen.tcp_payload >= 256 * 1024,
        "the capture saw all 256 KiB of TCP data"
    );
    assert!(
        seen.fragments >= 4,
        "the 3000-byte echo reply and the 5000-byte datagram were fragmented"
    );

    let counters = peer.ns.snmp().expect("read the namespace's /proc/net/snmp");
    for &(group, name) in CLEAN_COUNTERS {
        let v = counters
            .iter()
            .find(|(g, n, _)| g == group && n == name)
            .map_or(0, |c| c.2);
        assert_eq!(v, 0, "kernel counter {group}:{name}");
    }
}
