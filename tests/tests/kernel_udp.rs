//! Tier 3, UDP: datagrams between the stack and the Linux kernel in a test namespace, over a
//! TAP.
//!
//! Needs root and `/dev/net/tun` (see `ws2_tests::netns::require_netns`).

use std::net::{SocketAddr, SocketAddrV4};
use std::time::{Duration, Instant};

use ws2_stack::net::UdpSocket;
use ws2_stack::WsaError;
use ws2_tests::netns::{require_netns, KernelPeer, Pattern};

/// How long a receiver waits for one datagram before the test calls it lost.
const RECV_TIMEOUT: Duration = Duration::from_secs(5);

/// Datagram `i` of a test run: `len` bytes of the pattern, starting at an offset that differs
/// per datagram so that a swapped pair is noticed.
fn datagram(i: usize, len: usize) -> Vec<u8> {
    let mut pattern = Pattern::default();
    pattern.fill(&mut vec![0u8; i * 17]);
    let mut buf = vec![0u8; len];
    pattern.fill(&mut buf);
    buf
}

/// A kernel UDP socket bound to `addr` inside the peer's namespace.
fn kernel_udp(peer: &KernelPeer, addr: SocketAddrV4) -> std::net::UdpSocket {
    let sock = peer
        .ns
        .enter_thread(|| std::net::UdpSocket::bind(addr))
        .unwrap()
        .expect("kernel bind");
    sock.set_read_timeout(Some(RECV_TIMEOUT)).unwrap();
    sock
}

/// Sends each of `sizes` from the stack to the kernel and back, checking every datagram's
/// length, contents and source address, in order.
fn both_ways(peer: &KernelPeer, sizes: &[usize]) {
    let kernel_addr = SocketAddrV4::new(peer.kernel_ip, 6001);
    let stack_addr = SocketAddrV4::new(peer.stack_ip, 6002);
    let kernel = kernel_udp(peer, kernel_addr);
    let stack = UdpSocket::bind(&peer.stack, stack_addr).expect("stack bind");
    stack.set_read_timeout(Some(RECV_TIMEOUT)).unwrap();
    let mut buf = vec![0u8; 70_000];

    let t = Instant::now();
    for (i, &len) in sizes.iter().enumerate() {
        let data = datagram(i, len);
        assert_eq!(
            stack.send_to(&data, kernel_addr).expect("stack sendto"),
            len
        );
        let (n, from) = kernel
            .recv_from(&mut buf)
            .unwrap_or_else(|e| panic!("kernel recv of {len} bytes: {e}"));
        assert_eq!(
            from,
            SocketAddr::V4(stack_addr),
            "source of the {len}-byte datagram"
        );
        assert_eq!(n, len, "length of datagram {i}");
        assert!(
            buf[..n] == data[..],
            "contents of the {len}-byte datagram stack -> kernel"
        );
    }
    let stack_to_kernel = t.elapsed();

    let t = Instant::now();
    for (i, &len) in sizes.iter().enumerate() {
        let data = datagram(i + 1000, len);
        assert_eq!(
            kernel.send_to(&data, stack_addr).expect("kernel sendto"),
            len
        );
        let (n, from) = stack
            .recv_from(&mut buf)
            .unwrap_or_else(|e| panic!("stack recv of {len} bytes: {e}"));
        assert_eq!(
            from,
            SocketAddr::V4(kernel_addr),
            "source of the {len}-byte datagram"
        );
        assert_eq!(n, len, "length of datagram {i}");
        assert!(
            buf[..n] == data[..],
            "contents of the {len}-byte datagram kernel -> stack"
        );
    }
    eprintln!(
        "UDP {sizes:?}: stack -> kernel {stack_to_kernel:.2?}, kernel -> stack {:.2?}",
        t.elapsed()
    );
}

/// Conformance: 149, 178 — issue 2 acceptance: datagrams of 1, 64, 512, 1000 and
/// 1472 bytes (the largest that fits one Ethernet frame) and a zero-length one go from the
/// stack to the kernel and from the kernel to the stack, each with its contents and sender
/// intact.
#[test]
fn kernel_udp_both_ways() {
    if require_netns().is_some() {
        return;
    }
    let peer = KernelPeer::new("ws2-udp", 4).expect("set up namespace, TAP and stack");
    both_ways(&peer, &[1, 64, 512, 1000, 1472, 0, 1471, 7]);
}

/// Conformance: issue 2 acceptance — datagrams larger than one frame (1473 bytes up to the
/// 65 507-byte maximum) are fragmented by the sender and reassembled by the receiver, both
/// ways.
#[test]
fn kernel_udp_fragmented_both_ways() {
    if require_netns().is_some() {
        return;
    }
    let peer = KernelPeer::new("ws2-udpf", 8).expect("set up namespace, TAP and stack");
    both_ways(&peer, &[1473, 2960, 4000, 16_000, 65_507]);
}

/// Conformance: 147 — a datagram from the stack to a kernel port with no socket draws
/// an ICMP port unreachable, and the stack socket's next `recv` fails with `WSAECONNRESET`.
#[test]
fn kernel_udp_port_unreachable() {
    if require_netns().is_some() {
        return;
    }
    let peer = KernelPeer::new("ws2-udpu", 9).expect("set up namespace, TAP and stack");
    let stack = UdpSocket::bind(&peer.stack, (peer.stack_ip, 6003)).expect("stack bind");
    stack.set_read_timeout(Some(RECV_TIMEOUT)).unwrap();
    stack
        .send_to(b"anyone there?", (peer.kernel_ip, 6999))
        .expect("sendto");
    let mut buf = [0u8; 64];
    let err = stack
        .recv_from(&mut buf)
        .expect_err("recv after ICMP port unreachable");
    assert_eq!(
        WsaError::from_io(&err),
        Some(WsaError::WSAECONNRESET),
        "{err}"
    );
}
