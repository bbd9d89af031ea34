//! CHECKLIST Part 2 group W: byte order (Part 1 §1.16).

use std::net::Ipv4Addr;

use ws2_stack::winsock::*;
use ws2_tests::*;

/// Conformance: 507 — `htonl(0x01020304)` stored in memory yields bytes 01 02 03 04, and `ntohl(htonl(x)) == x`.
#[test]
fn htonl_layout_and_round_trip() {
    assert_eq!(htonl(0x0102_0304).to_ne_bytes(), [1, 2, 3, 4]);
    assert_eq!(ntohl(u32::from_ne_bytes([1, 2, 3, 4])), 0x0102_0304);
    let mut x = 0x9E37_79B9u32;
    for _ in 0..1000 {
        assert_eq!(ntohl(htonl(x)), x);
        assert_eq!(htonl(x).to_ne_bytes(), x.to_be_bytes());
        x = x.wrapping_mul(0x0019_660D).wrapping_add(0x3C6E_F35F);
    }
}

/// Conformance: 508 — `htons(0x0102)` stored in memory yields bytes 01 02, and `ntohs(htons(x)) == x`.
#[test]
fn htons_layout_and_round_trip() {
    assert_eq!(htons(0x0102).to_ne_bytes(), [1, 2]);
    assert_eq!(ntohs(u16::from_ne_bytes([1, 2])), 0x0102);
    for x in 0..=u16::MAX {
        assert_eq!(ntohs(htons(x)), x);
    }
}

/// Conformance: 513 — `bind` with `sin_port = htons(8080)` binds port 8080, and `getsockname` returns `sin_port` in network order with `sin_family` in host order.
#[test]
fn sockaddr_fields_in_network_order() {
    let (a, b) = two_hosts(513);
    let s = new_socket(&a, SOCK_DGRAM);
    let name = SOCKADDR_IN {
        sin_family: AF_INET as i16,
        sin_port: htons(8080),
        sin_addr: IN_ADDR {
            S_addr: htonl(u32::from(A)),
        },
        sin_zero: [0; 8],
    };
    a.bind(s, Some(&name), SOCKADDR_IN_LEN).expect("bind");
    let mut out = SOCKADDR_IN::default();
    let mut len = SOCKADDR_IN_LEN;
    a.getsockname(s, Some(&mut out), Some(&mut len))
        .expect("getsockname");
    assert_eq!(out.sin_family, AF_INET as i16);
    assert_eq!(
        out.sin_family.to_ne_bytes(),
        (AF_INET as i16).to_ne_bytes(),
        "host order"
    );
    assert_eq!(
        out.sin_port.to_ne_bytes(),
        [0x1f, 0x90],
        "8080 in network order"
    );
    assert_eq!(out.sin_addr.S_addr.to_ne_bytes(), [10, 0, 0, 1]);
    // The port really is 8080 on the wire: a peer reaches it there.
    let tx = udp_bound(&b, at(B, 0));
    sendto(&b, tx, b"port 8080", at(A, 8080)).expect("sendto");
    let mut buf = [0u8; 16];
    assert_eq!(recvfrom(&a, s, &mut buf, 0).map(|(n, _)| n), Ok(9));
    assert_eq!(Ipv4Addr::from(ntohl(out.sin_addr.S_addr)), A);
}
