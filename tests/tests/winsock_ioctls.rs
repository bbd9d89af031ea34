//! CHECKLIST §1.14.2 `WSAIoctl` control codes and §1.16 `WSAHtonl` and friends.

use std::net::Ipv4Addr;
use std::thread;
use std::time::Duration;

use ws2_stack::winsock::*;
use ws2_stack::WsaError;
use ws2_tap::VirtualSwitch;
use ws2_tests::capture::{sniff, watch};
use ws2_tests::*;

fn ioctl(
    ws: &Winsock,
    s: SOCKET,
    code: u32,
    input: &[u8],
    out: &mut [u8],
) -> Result<u32, WsaError> {
    let mut n = 0;
    ws.WSAIoctl(s, code, input, out, Some(&mut n), None, None)
        .map(|()| n)
}

/// Conformance: 484 — `WSAIoctl(FIONBIO)` and `WSAIoctl(FIONREAD)` behave like their `ioctlsocket` counterparts.
#[test]
fn fionbio_fionread() {
    let (a, b) = two_hosts(484);
    let r = udp_bound(&b, at(B, 4840));
    ioctl(&b, r, FIONBIO as u32, &1u32.to_ne_bytes(), &mut []).unwrap();
    let mut buf = [0u8; 16];
    assert_would_block(b.recv(r, &mut buf, 0));
    let s = new_socket(&a, SOCK_DGRAM);
    sendto(&a, s, &[7; 100], at(B, 4840)).unwrap();
    let mut out = [0u8; 4];
    for _ in 0..500 {
        if fionread(&b, r) > 0 {
            break;
        }
        thread::sleep(Duration::from_millis(2));
    }
    assert_eq!(ioctl(&b, r, FIONREAD as u32, &[], &mut out), Ok(4));
    assert_eq!(u32::from_ne_bytes(out), 100);
}

/// Conformance: 485 — `WSAIoctl` with an undefined control code fails with `WSAEINVAL`.
#[test]
fn undefined_code() {
    let (a, _b) = two_hosts(485);
    let s = new_socket(&a, SOCK_DGRAM);
    assert_wsa_error(
        ioctl(&a, s, 0x4800_00ff, &[], &mut [0; 64]),
        WsaError::WSAEINVAL,
    );
}

/// Conformance: 486 — `WSAIoctl(SIO_GET_BROADCAST_ADDRESS)` on a UDP socket returns a `sockaddr_in` broadcast address usable with `sendto` (with `SO_BROADCAST`).
#[test]
fn broadcast_address() {
    let (a, b) = two_hosts(486);
    let r = udp_bound(&b, at(std::net::Ipv4Addr::UNSPECIFIED, 4860));
    let s = new_socket(&a, SOCK_DGRAM);
    let mut out = [0u8; 16];
    assert_eq!(
        ioctl(&a, s, SIO_GET_BROADCAST_ADDRESS, &[], &mut out),
        Ok(16)
    );
    let mut to = SOCKADDR_IN::from_bytes(&out).unwrap();
    assert_eq!(i32::from(to.sin_family), AF_INET);
    to.sin_port = 4860u16.to_be();
    set_int(&a, s, SOL_SOCKET, SO_BROADCAST, 1).unwrap();
    a.sendto(s, b"all", 0, Some(&to), SOCKADDR_IN_LEN).unwrap();
    let mut buf = [0u8; 8];
    assert_eq!(b.recv(r, &mut buf, 0), Ok(3));
}

/// Conformance: 487 — `WSAIoctl(SIO_GET_BROADCAST_ADDRESS)` with an output buffer smaller than `sockaddr_in` fails with `WSAEFAULT`.
#[test]
fn broadcast_address_short() {
    let (a, _b) = two_hosts(487);
    let s = new_socket(&a, SOCK_DGRAM);
    assert_wsa_error(
        ioctl(&a, s, SIO_GET_BROADCAST_ADDRESS, &[], &mut [0; 15]),
        WsaError::WSAEFAULT,
    );
}

/// The receiver's `SO_RCVBUF`, set before `bind`. smoltcp's datagram buffer is then
/// max(`SO_RCVBUF`, 65,515 + 64) = 65,579 bytes (`dgram_bind`), so it holds about 64 of the
/// 1,000-byte datagrams [`overflow`] sends.
const SMALL_RCVBUF: i32 = 8192;

/// Sends 100 numbered 1,000-byte datagrams to a receiver whose queue holds about 64 and that
/// reads none until all have arrived, then returns the numbers it can read.
fn overflow(seed: u64, circular: bool) -> Vec<u8> {
    let (a, b) = two_hosts(seed);
    let r = new_socket(&b, SOCK_DGRAM);
    set_int(&b, r, SOL_SOCKET, SO_RCVBUF, SMALL_RCVBUF).unwrap();
    bind(&b, r, at(B, 4880)).unwrap();
    if circular {
        ioctl(&b, r, SIO_ENABLE_CIRCULAR_QUEUEING, &[], &mut []).unwrap();
    }
    let s = new_socket(&a, SOCK_DGRAM);
    for i in 0..100u8 {
        sendto(&a, s, &[i; 1000], at(B, 4880)).unwrap();
        thread::sleep(Duration::from_millis(1));
    }
    // Every datagram has reached B's queue (or been dropped) once FIONREAD stops changing.
    let mut last = u32::MAX;
    for _ in 0..50 {
        thread::sleep(Duration::from_millis(40));
        let now = fionread(&b, r);
        if now == last && now > 0 {
            break;
        }
        last = now;
    }
    set_nonblocking(&b, r, true);
    let mut got = Vec::new();
    let mut buf = [0u8; 2000];
    while let Ok(n) = b.recv(r, &mut buf, 0) {
        assert_eq!(n, 1000);
        assert!(
            buf[..1000].iter().all(|&x| x == buf[0]),
            "one datagram's bytes"
        );
        got.push(buf[0]);
    }
    got
}

/// Conformance: 488 — `WSAIoctl(SIO_ENABLE_CIRCULAR_QUEUEING)` on a UDP socket makes a full receive queue drop its oldest datagram when a new one arrives.
#[test]
fn circular_drops_oldest() {
    let got = overflow(488, true);
    assert!(got.len() > 40 && got.len() < 100, "{got:?}");
    assert_eq!(*got.last().unwrap(), 99, "the newest is kept: {got:?}");
    assert!(!got.contains(&0), "the oldest was dropped: {got:?}");
    assert!(got.windows(2).all(|w| w[0] < w[1]), "in order: {got:?}");
    // What survives is the most recent run: only the oldest are dropped, none in between.
    assert!(
        got.windows(2).all(|w| w[1] == w[0] + 1),
        "contiguous: {got:?}"
    );
}

/// Conformance: 489 — Without `SIO_ENABLE_CIRCULAR_QUEUEING`, a full UDP receive queue drops the newly arriving datagram.
#[test]
fn default_drops_newest() {
    let got = overflow(489, false);
    assert!(got.len() > 40 && got.len() < 100, "{got:?}");
    assert_eq!(got[0], 0, "the oldest is kept: {got:?}");
    assert!(!got.contains(&99), "the newest was dropped: {got:?}");
    // What survives is the first run: 0, 1, 2, … up to where the queue filled.
    assert!(
        got.iter().enumerate().all(|(i, &n)| usize::from(n) == i),
        "{got:?}"
    );
}

/// Conformance: 490 — `WSAIoctl(SIO_ENABLE_CIRCULAR_QUEUEING)` on a TCP socket fails (`WSAEINVAL`).
#[test]
fn circular_on_tcp() {
    let (a, _b) = two_hosts(490);
    let s = new_socket(&a, SOCK_STREAM);
    assert_wsa_error(
        ioctl(&a, s, SIO_ENABLE_CIRCULAR_QUEUEING, &[], &mut []),
        WsaError::WSAEINVAL,
    );
}

/// Whether `frame` is an ARP request (Ethernet broadcast) from `sender` asking for `target`.
fn is_arp_request(frame: &[u8], sender: Ipv4Addr, target: Ipv4Addr) -> bool {
    frame.len() >= 14 + 28
        && frame[..6] == [0xff; 6]
        && frame[12..14] == [0x08, 0x06]
        && frame[14 + 6..14 + 8] == [0, 1]
        && frame[14 + 14..14 + 18] == sender.octets()
        && frame[14 + 24..14 + 28] == target.octets()
}

/// Conformance: 492 — `WSAIoctl(SIO_FIND_ROUTE)` with a reachable address invalidates and re-resolves the neighbour entry (an ARP request is emitted).
#[test]
fn find_route_arp() {
    let switch = VirtualSwitch::new(492);
    let (a, b) = two_hosts_on(&switch, config(A), config(B));
    let mut watcher = switch.port();
    let r = udp_bound(&b, at(B, 4920));
    let s = new_socket(&a, SOCK_DGRAM);
    // A learns B's address: one exchange, then the link is quiet.
    sendto(&a, s, b"first", at(B, 4920)).unwrap();
    let mut buf = [0u8; 16];
    assert_eq!(b.recv(r, &mut buf, 0), Ok(5));
    sendto(&a, s, b"again", at(B, 4920)).unwrap();
    assert_eq!(b.recv(r, &mut buf, 0), Ok(5));
    assert!(
        sniff(&mut watcher, Duration::from_secs(5), |f| is_arp_request(
            f, A, B
        ))
        .is_some(),
        "the first datagram made A ask for B"
    );
    let before = watch(&mut watcher, Duration::from_millis(200));
    assert!(
        !before.iter().any(|f| is_arp_request(f, A, B)),
        "with B resolved, A sends no more requests"
    );
    let to = SOCKADDR_IN::new(at(B, 0)).to_bytes();
    assert_eq!(ioctl(&a, s, SIO_FIND_ROUTE, &to, &mut []), Ok(0));
    assert!(
        sniff(&mut watcher, Duration::from_secs(5), |f| is_arp_request(
            f, A, B
        ))
        .is_some(),
        "SIO_FIND_ROUTE sends an ARP request for B"
    );
    // The route still works afterwards.
    sendto(&a, s, b"after", at(B, 4920)).unwrap();
    assert_eq!(b.recv(r, &mut buf, 0), Ok(5));
}

/// Conformance: 493 — `WSAIoctl(SIO_GET_EXTENSION_FUNCTION_POINTER)` with a supported GUID returns a usable function (an identifier to dispatch on) and with an unknown GUID fails (`WSAEINVAL`).
#[test]
fn extension_function_pointer() {
    let (a, _b) = two_hosts(493);
    let s = new_socket(&a, SOCK_STREAM);
    let mut out = [0u8; 8];
    for (g, f) in [
        (WSAID_ACCEPTEX, ExtensionFunction::AcceptEx),
        (
            WSAID_GETACCEPTEXSOCKADDRS,
            ExtensionFunction::GetAcceptExSockaddrs,
        ),
        (WSAID_TRANSMITFILE, ExtensionFunction::TransmitFile),
    ] {
        ioctl(
            &a,
            s,
            SIO_GET_EXTENSION_FUNCTION_POINTER,
            &g.to_bytes(),
            &mut out,
        )
        .unwrap();
        assert_eq!(ExtensionFunction::from_bytes(&out), Some(f));
    }
    let unknown = GUID {
        Data1: 1,
        ..WSAID_ACCEPTEX
    };
    assert_wsa_error(
        ioctl(
            &a,
            s,
            SIO_GET_EXTENSION_FUNCTION_POINTER,
            &unknown.to_bytes(),
            &mut out,
        ),
        WsaError::WSAEINVAL,
    );
}

/// Conformance: 494 — `WSAIoctl(SIO_ASSOCIATE_HANDLE)` and `WSAIoctl(SIO_TRANSLATE_HANDLE)` fail with `WSAENOPROTOOPT` (no companion interface).
#[test]
fn companion_handles() {
    let (a, _b) = two_hosts(494);
    let s = new_socket(&a, SOCK_STREAM);
    for code in [SIO_ASSOCIATE_HANDLE, SIO_TRANSLATE_HANDLE] {
        assert_wsa_error(
            ioctl(&a, s, code, &[0; 8], &mut [0; 8]),
            WsaError::WSAENOPROTOOPT,
        );
    }
}

/// Conformance: 495 — `WSAIoctl` on a non-socket fails with `WSAENOTSOCK`.
#[test]
fn ioctl_non_socket() {
    let (a, _b) = two_hosts(495);
    assert_wsa_error(
        ioctl(&a, 4242, FIONREAD as u32, &[], &mut [0; 4]),
        WsaError::WSAENOTSOCK,
    );
}

/// Conformance: 509 — `WSAHtonl(s, x, &y)` on an IP socket returns 0 and gives `y == htonl(x)`.
#[test]
fn wsa_htonl() {
    let (a, _b) = two_hosts(509);
    let s = new_socket(&a, SOCK_STREAM);
    let mut y = 0;
    a.WSAHtonl(s, 0x0102_0304, Some(&mut y)).unwrap();
    assert_eq!(y, htonl(0x0102_0304));
}

/// Conformance: 510 — `WSAHtons`, `WSANtohl` and `WSANtohs` match `htons`, `ntohl` and `ntohs` on IP sockets.
#[test]
fn wsa_others() {
    let (a, _b) = two_hosts(510);
    let s = new_socket(&a, SOCK_DGRAM);
    let (mut x16, mut x32) = (0u16, 0u32);
    a.WSAHtons(s, 0x0102, Some(&mut x16)).unwrap();
    assert_eq!(x16, htons(0x0102));
    a.WSANtohs(s, 0x0102, Some(&mut x16)).unwrap();
    assert_eq!(x16, ntohs(0x0102));
    a.WSANtohl(s, 0x0102_0304, Some(&mut x32)).unwrap();
    assert_eq!(x32, ntohl(0x0102_0304));
}

/// Conformance: 511 — `WSAHtonl` on a non-socket fails with `WSAENOTSOCK`.
#[test]
fn wsa_htonl_non_socket() {
    let (a, _b) = two_hosts(511);
    let mut y = 0;
    assert_wsa_error(a.WSAHtonl(999, 1, Some(&mut y)), WsaError::WSAENOTSOCK);
}

/// Conformance: 512 — `WSAHtonl` with a NULL output pointer fails with `WSAEFAULT`.
#[test]
fn wsa_htonl_null() {
    let (a, _b) = two_hosts(512);
    let s = new_socket(&a, SOCK_STREAM);
    assert_wsa_error(a.WSAHtonl(s, 1, None), WsaError::WSAEFAULT);
}
