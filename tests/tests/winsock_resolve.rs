//! CHECKLIST Part 2 group X (name resolution, 514–571), 13 (the final `WSACleanup` cancels
//! async lookups) and 351 (a 1.1 blocking `gethostbyname` is cancellable): the database
//! functions on the embedded tables, address conversions, `WSAAsyncGetXByY` on a
//! `MessageQueue`, RnR, and DNS over the stack's own UDP to a resolver played by a second
//! stack on the same virtual switch (answers, NXDOMAIN, SERVFAIL, silence, garbage).

use std::cell::Cell;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use ws2_stack::winsock::*;
use ws2_stack::WsaError;
use ws2_tap::VirtualSwitch;
use ws2_tests::*;

/// How long anything here waits for something that should happen at once.
const PATIENCE: Duration = Duration::from_secs(10);

fn host() -> Winsock {
    let switch = VirtualSwitch::new(71);
    started(&stack_on(&switch, config(A)))
}

fn cstr(b: &[u8]) -> String {
    let end = b.iter().position(|&c| c == 0).expect("NUL");
    String::from_utf8(b[..end].to_vec()).unwrap()
}

fn host_name(ws: &Winsock) -> String {
    let mut buf = [0u8; 256];
    ws.gethostname(&mut buf).expect("gethostname");
    cstr(&buf)
}

// ---- the fake resolver --------------------------------------------------------------------

/// How the resolver on host B answers.
#[derive(Debug, Clone, Copy)]
enum Mode {
    /// An A (or PTR) answer: `www.ws2.test` is a CNAME of `host.ws2.test` = 10.0.0.9; every
    /// PTR question gets `host.ws2.test`.
    Answer,
    /// RCODE 0 and no answer: the name exists without an address.
    NoData,
    /// RCODE 3 to everything.
    NxDomain,
    /// RCODE 2 to everything.
    ServFail,
    /// Our id, then bytes that are no DNS message.
    Garbage,
    /// Short junk without a header.
    Junk,
}

/// A resolver on B:53; stops when the returned flag is set.
fn resolver(b: &Winsock, mode: Mode) -> (Arc<AtomicBool>, JoinHandle<()>) {
    let s = udp_bound(b, at(B, 53));
    let stop = Arc::new(AtomicBool::new(false));
    let (ws, flag) = (b.clone(), stop.clone());
    let t = thread::spawn(move || {
        let mut buf = [0u8; 1500];
        while !flag.load(Ordering::SeqCst) {
            if !wait_readable(&ws, s, 50) {
                continue;
            }
            let Ok((n, from)) = recvfrom(&ws, s, &mut buf, 0) else {
                continue;
            };
            let reply = answer(&buf[..n as usize], mode);
            sendto(&ws, s, &reply, from).expect("resolver sendto");
        }
        ws.closesocket(s).unwrap();
    });
    (stop, t)
}

/// The reply of `mode` to query `q` (hand-assembled from RFC 1035 §4.1, independently of the
/// stack's encoder).
fn answer(q: &[u8], mode: Mode) -> Vec<u8> {
    match mode {
        Mode::Junk => return vec![0xde, 0xad],
        Mode::Garbage => {
            return [&q[..2], &[0x81, 0x80, 0xff, 0xff, 0, 9][..], &[0xC0; 30]].concat()
        }
        _ => {}
    }
    let mut r = q.to_vec();
    r[2] = 0x85; // QR, AA, RD
    r[3] = 0x80
        | match mode {
            Mode::NxDomain => 3,
            Mode::ServFail => 2,
            _ => 0,
        };
    if !matches!(mode, Mode::Answer) {
        return r;
    }
    let qtype = u16::from_be_bytes([q[q.len() - 4], q[q.len() - 3]]);
    let host: &[u8] = b"\x04host\x03ws2\x04test\x00";
    if qtype == 12 {
        r[7] = 1;
        r.extend_from_slice(&[0xC0, 12, 0, 12, 0, 1, 0, 0, 0, 60, 0, host.len() as u8]);
        r.extend_from_slice(host);
        return r;
    }
    let www = b"\x03www\x03ws2\x04test\x00";
    if q[12..].starts_with(www) {
        r[7] = 2;
        r.extend_from_slice(&[0xC0, 12, 0, 5, 0, 1, 0, 0, 0, 60, 0, host.len() as u8]);
        let at = r.len();
        r.extend_from_slice(host);
        r.extend_from_slice(&[0xC0, at as u8, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 10, 0, 0, 9]);
    } else {
        r[7] = 1;
        r.extend_from_slice(&[0xC0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 10, 0, 0, 9]);
    }
    r
}

/// A and B on one switch, A using B:53 as its resolver in `mode`.
fn with_resolver(seed: u64, mode: Mode) -> (Winsock, Winsock, Arc<AtomicBool>, JoinHandle<()>) {
    let (a, b) = two_hosts(seed);
    let (stop, t) = resolver(&b, mode);
    a.set_dns_server(at(B, 53));
    a.set_dns_timeouts(Duration::from_millis(300), 2);
    (a, b, stop, t)
}

fn stop(flag: Arc<AtomicBool>, t: JoinHandle<()>) {
    flag.store(true, Ordering::SeqCst);
    t.join().unwrap();
}

/// A's resolver is an address where nobody answers, with a long wait.
fn silent_resolver(ws: &Winsock) {
    ws.set_dns_server(at(SILENT, 53));
    ws.set_dns_timeouts(Duration::from_secs(30), 1);
}

// ---- inet_addr / inet_ntoa ----------------------------------------------------------------

/// Conformance: 514 — `inet_addr("1.2.3.4")` returns the address whose in-memory bytes are 1, 2, 3, 4.
#[test]
fn inet_addr_four_parts() {
    assert_eq!(inet_addr("1.2.3.4").to_ne_bytes(), [1, 2, 3, 4]);
}

/// Conformance: 515, 516, 517 — the three-, two- and one-part forms.
#[test]
fn inet_addr_short_forms() {
    assert_eq!(inet_addr("1.2.3"), inet_addr("1.2.0.3"));
    assert_eq!(inet_addr("1.2"), inet_addr("1.0.0.2"));
    assert_eq!(inet_addr("16909060"), inet_addr("1.2.3.4"));
    assert_eq!(inet_addr("1.2.772"), inet_addr("1.2.3.4"));
}

/// Conformance: 518, 519 — a part over 255 and a non-number are `INADDR_NONE`.
#[test]
fn inet_addr_invalid() {
    assert_eq!(inet_addr("256.1.1.1"), INADDR_NONE);
    assert_eq!(inet_addr("abc"), INADDR_NONE);
    assert_eq!(inet_addr("1.2.3.4.5"), INADDR_NONE);
    assert_eq!(inet_addr(""), INADDR_NONE);
}

/// Conformance: 520, 521 — `inet_ntoa` of 10.0.0.1 is "10.0.0.1"; the thread's copy stays until
/// its next call and other threads do not overwrite it.
#[test]
fn inet_ntoa_per_thread() {
    let ten = IN_ADDR {
        S_addr: inet_addr("10.0.0.1"),
    };
    assert_eq!(inet_ntoa(ten), "10.0.0.1");
    thread::spawn(|| {
        let other = IN_ADDR {
            S_addr: inet_addr("192.168.1.2"),
        };
        assert_eq!(inet_ntoa(other), "192.168.1.2");
        assert_eq!(thread_inet_ntoa().as_deref(), Some("192.168.1.2"));
    })
    .join()
    .unwrap();
    assert_eq!(thread_inet_ntoa().as_deref(), Some("10.0.0.1"));
}

// ---- host database ------------------------------------------------------------------------

/// Conformance: 522 — `gethostbyname("10.0.0.1")` fails `WSAHOST_NOT_FOUND`, even when it is the
/// host's own address.
#[test]
fn dotted_names_are_not_resolved() {
    let ws = host();
    assert_wsa_error(ws.gethostbyname("10.0.0.1"), WsaError::WSAHOST_NOT_FOUND);
    assert_eq!(WSAGetLastError(), WsaError::WSAHOST_NOT_FOUND.0);
    assert_wsa_error(ws.gethostbyname("127.0.0.1"), WsaError::WSAHOST_NOT_FOUND);
}

/// Conformance: 523, 525 — the token name `gethostname` gives (no host name is configured)
/// resolves, by `gethostbyname` and by `WSAAsyncGetHostByName`, to the stack's address.
#[test]
fn gethostname_resolves() {
    let ws = host();
    let name = host_name(&ws);
    assert_eq!(name, "ws2-10-0-0-1");
    let h = ws.gethostbyname(&name).expect("own name");
    assert_eq!(h.h_name, name);
    assert_eq!(h.addrs(), [A]);
    let q = MessageQueue::new();
    let buf = AsyncBuffer::new(MAXGETHOSTSTRUCT);
    let t = ws
        .WSAAsyncGetHostByName(q.hwnd(), 0x401, &name.to_uppercase(), &buf)
        .unwrap();
    let m = q.GetMessage(Some(PATIENCE)).expect("completion");
    assert_eq!((m.wParam, WSAGETASYNCERROR(m.lParam)), (t, 0));
    assert_eq!(buf.hostent().unwrap().addrs(), [A]);
}

/// Conformance: 524 — a buffer one byte shorter than the name and its NUL is `WSAEFAULT`.
#[test]
fn gethostname_short_buffer() {
    let ws = host();
    let len = host_name(&ws).len();
    let mut exact = vec![0u8; len + 1];
    ws.gethostname(&mut exact).expect("exact fit");
    let mut short = vec![0u8; len];
    assert_wsa_error(ws.gethostname(&mut short), WsaError::WSAEFAULT);
}

/// Conformance: 526, 527 — a hosts-database name gives `AF_INET`, length 4 and the address in
/// network order; an unknown name is `WSAHOST_NOT_FOUND`.
#[test]
fn gethostbyname_hosts_database() {
    let ws = host();
    let h = ws.gethostbyname("localhost").expect("localhost");
    assert_eq!((h.h_addrtype, h.h_length), (AF_INET as i16, 4));
    assert_eq!(h.h_addr_list[0], [127, 0, 0, 1]);
    ws.add_host("printer.lan", &["lp"], &[Ipv4Addr::new(10, 0, 0, 50)]);
    let p = ws.gethostbyname("LP").expect("alias, any case");
    assert_eq!(
        (p.h_name.as_str(), p.h_addr_list[0]),
        ("printer.lan", [10, 0, 0, 50])
    );
    assert_wsa_error(
        ws.gethostbyname("no-such-host.invalid"),
        WsaError::WSAHOST_NOT_FOUND,
    );
}

/// Conformance: 528, 529, 530 — `gethostbyaddr`: another family is `WSAEAFNOSUPPORT`, `len` < 4
/// is `WSAEFAULT`, a known address gives its name.
#[test]
fn gethostbyaddr_rules() {
    let ws = host();
    let lo = [127, 0, 0, 1];
    assert_wsa_error(
        ws.gethostbyaddr(Some(&lo), 4, AF_INET6),
        WsaError::WSAEAFNOSUPPORT,
    );
    assert_wsa_error(ws.gethostbyaddr(Some(&lo), 3, AF_INET), WsaError::WSAEFAULT);
    assert_wsa_error(ws.gethostbyaddr(None, 4, AF_INET), WsaError::WSAEFAULT);
    assert_eq!(
        ws.gethostbyaddr(Some(&lo), 4, AF_INET).unwrap().h_name,
        "localhost"
    );
    let own = ws.gethostbyaddr(Some(&A.octets()), 4, AF_INET).unwrap();
    assert_eq!(own.h_name, host_name(&ws));
    assert_wsa_error(
        ws.gethostbyaddr(Some(&[10, 9, 9, 9]), 4, AF_INET),
        WsaError::WSAHOST_NOT_FOUND,
    );
}

/// Conformance: 536 — the thread's hostent is replaced by its next lookup, not by other
/// threads' lookups.
#[test]
fn hostent_per_thread() {
    let ws = host();
    ws.gethostbyname("localhost").unwrap();
    let other = ws.clone();
    let name = host_name(&ws);
    thread::spawn(move || {
        other.gethostbyname(&name).unwrap();
        assert_eq!(thread_hostent().unwrap().h_name, name);
    })
    .join()
    .unwrap();
    assert_eq!(thread_hostent().unwrap().h_name, "localhost");
    ws.gethostbyaddr(Some(&A.octets()), 4, AF_INET).unwrap();
    assert_eq!(thread_hostent().unwrap().h_name, host_name(&ws));
}

// ---- services and protocols ---------------------------------------------------------------

/// Conformance: 531, 532, 533, 534 — ftp/tcp is port htons(21); aliases match with a NULL
/// protocol; htons(21)/tcp is ftp; an unknown service is `WSAHOST_NOT_FOUND`.
#[test]
fn services() {
    let ws = host();
    let ftp = ws.getservbyname("ftp", Some("tcp")).unwrap();
    assert_eq!((ftp.s_port, ftp.s_proto.as_str()), (htons(21), "tcp"));
    let www = ws.getservbyname("www", None).expect("alias of http");
    assert_eq!((www.s_name.as_str(), www.port()), ("http", 80));
    assert_eq!(
        ws.getservbyport(htons(21), Some("tcp")).unwrap().s_name,
        "ftp"
    );
    assert_eq!(
        ws.getservbyport(htons(53), Some("udp")).unwrap().s_name,
        "domain"
    );
    assert_wsa_error(
        ws.getservbyname("no-such-service", None),
        WsaError::WSAHOST_NOT_FOUND,
    );
    assert_wsa_error(
        ws.getservbyname("ftp", Some("udp")),
        WsaError::WSAHOST_NOT_FOUND,
    );
    assert_eq!(thread_servent().unwrap().s_name, "domain");
}

/// Conformance: 535 — udp is 17 in host order and 6 is "tcp".
#[test]
fn protocols() {
    let ws = host();
    assert_eq!(ws.getprotobyname("udp").unwrap().p_proto, 17);
    assert_eq!(ws.getprotobynumber(6).unwrap().p_name, "tcp");
    assert_eq!(ws.getprotobyname("ICMP").unwrap().p_proto, 1);
    assert_wsa_error(ws.getprotobynumber(254), WsaError::WSAHOST_NOT_FOUND);
}

/// Conformance: 1 — the database functions need `WSAStartup`.
#[test]
fn database_needs_startup() {
    let switch = VirtualSwitch::new(72);
    let ws = Winsock::new(stack_on(&switch, config(A)));
    assert_wsa_error(ws.gethostbyname("localhost"), WsaError::WSANOTINITIALISED);
    assert_wsa_error(ws.getservbyname("ftp", None), WsaError::WSANOTINITIALISED);
}

/// The parsers skip what they cannot read and never panic.
#[test]
fn garbage_database_files() {
    let text = "127.0.0.1 ok\n\n#c\n300.1.1.1 bad\n::1 v6\n10.0.0.1\n\u{0}\u{ff}x 1/\n\
                ftp 21/tcp f\nbad 70000/tcp\nx y/tcp\nz 5/\ns 7/t*p\np 6 P\nq 300 Q\n";
    assert_eq!(parse_hosts(text).len(), 1);
    assert_eq!(parse_services(text).len(), 1);
    assert_eq!(parse_protocols(text).len(), 1);
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    for _ in 0..2000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let junk: String = (0..64)
            .map(|i| {
                char::from(b" \t\n#./0123456789abcdef:tcpudp"[((x >> (i % 60)) % 29) as usize])
            })
            .collect();
        let _ = (
            parse_hosts(&junk),
            parse_services(&junk),
            parse_protocols(&junk),
        );
    }
}

// ---- async lookups ------------------------------------------------------------------------

/// Conformance: 537 — a nonzero handle at once, then `wMsg` with that handle, error 0 and a
/// hostent in `buf`.
#[test]
fn async_host_by_name() {
    let ws = host();
    let q = MessageQueue::new();
    let buf = AsyncBuffer::new(MAXGETHOSTSTRUCT);
    let h = ws
        .WSAAsyncGetHostByName(q.hwnd(), 0x500, "localhost", &buf)
        .unwrap();
    assert_ne!(h, 0);
    let m = q.GetMessage(Some(PATIENCE)).expect("completion");
    assert_eq!((m.hwnd, m.message, m.wParam), (q.hwnd(), 0x500, h));
    assert_eq!(WSAGETASYNCERROR(m.lParam), 0);
    let he = buf.hostent().expect("hostent in buf");
    assert_eq!(
        (he.h_name.as_str(), he.h_addr_list[0]),
        ("localhost", [127, 0, 0, 1])
    );
    assert!(usize::from(WSAGETASYNCBUFLEN(m.lParam)) <= MAXGETHOSTSTRUCT);
}

/// Conformance: 538 — too small a buffer completes `WSAENOBUFS` with the size needed.
#[test]
fn async_buffer_too_small() {
    let ws = host();
    let q = MessageQueue::new();
    let small = AsyncBuffer::new(8);
    ws.WSAAsyncGetHostByName(q.hwnd(), 1, "localhost", &small)
        .unwrap();
    let m = q.GetMessage(Some(PATIENCE)).unwrap();
    assert_eq!(WSAGETASYNCERROR(m.lParam) as i32, WsaError::WSAENOBUFS.0);
    let needed = usize::from(WSAGETASYNCBUFLEN(m.lParam));
    assert_eq!(
        needed,
        ws.gethostbyname("localhost").unwrap().to_blob().len()
    );
    let exact = AsyncBuffer::new(needed);
    ws.WSAAsyncGetHostByName(q.hwnd(), 1, "localhost", &exact)
        .unwrap();
    let m = q.GetMessage(Some(PATIENCE)).unwrap();
    assert_eq!(WSAGETASYNCERROR(m.lParam), 0);
}

/// Conformance: 539 — an unknown name completes `WSAHOST_NOT_FOUND`.
#[test]
fn async_unknown_host() {
    let ws = host();
    let q = MessageQueue::new();
    let buf = AsyncBuffer::new(MAXGETHOSTSTRUCT);
    ws.WSAAsyncGetHostByName(q.hwnd(), 1, "nobody.invalid", &buf)
        .unwrap();
    let m = q.GetMessage(Some(PATIENCE)).unwrap();
    assert_eq!(
        WSAGETASYNCERROR(m.lParam) as i32,
        WsaError::WSAHOST_NOT_FOUND.0
    );
}

/// Conformance: 540 — every variant fills `buf` and posts exactly one message.
#[test]
fn async_every_variant() {
    let ws = host();
    let q = MessageQueue::new();
    let bufs: Vec<AsyncBuffer> = (0..5).map(|_| AsyncBuffer::new(MAXGETHOSTSTRUCT)).collect();
    let h = [
        ws.WSAAsyncGetHostByAddr(q.hwnd(), 2, &[127, 0, 0, 1], 4, AF_INET, &bufs[0])
            .unwrap(),
        ws.WSAAsyncGetProtoByName(q.hwnd(), 2, "tcp", &bufs[1])
            .unwrap(),
        ws.WSAAsyncGetProtoByNumber(q.hwnd(), 2, 17, &bufs[2])
            .unwrap(),
        ws.WSAAsyncGetServByName(q.hwnd(), 2, "smtp", Some("tcp"), &bufs[3])
            .unwrap(),
        ws.WSAAsyncGetServByPort(q.hwnd(), 2, htons(443), None, &bufs[4])
            .unwrap(),
    ];
    let mut seen = Vec::new();
    for _ in 0..5 {
        let m = q
            .GetMessage(Some(PATIENCE))
            .expect("one message per request");
        assert_eq!(WSAGETASYNCERROR(m.lParam), 0);
        seen.push(m.wParam);
    }
    seen.sort();
    let mut want = h.to_vec();
    want.sort();
    assert_eq!(seen, want);
    assert!(q.GetMessage(Some(Duration::from_millis(200))).is_none());
    assert_eq!(bufs[0].hostent().unwrap().h_name, "localhost");
    assert_eq!(bufs[1].protoent().unwrap().p_proto, 6);
    assert_eq!(bufs[2].protoent().unwrap().p_name, "udp");
    assert_eq!(bufs[3].servent().unwrap().s_port, htons(25));
    assert_eq!(bufs[4].servent().unwrap().s_name, "https");
    assert_wsa_error(
        ws.WSAAsyncGetHostByAddr(q.hwnd(), 2, &[1, 2, 3, 4], 4, AF_INET6, &bufs[0]),
        WsaError::WSAEAFNOSUPPORT,
    );
    assert_wsa_error(
        ws.WSAAsyncGetHostByName(usize::MAX, 2, "localhost", &bufs[0]),
        WsaError::WSAEINVAL,
    );
}

/// Conformance: 541, 544 — cancelling a pending request succeeds and no message ever comes;
/// cancelling it again is `WSAEALREADY`.
#[test]
fn cancel_pending_request() {
    let ws = host();
    silent_resolver(&ws);
    let q = MessageQueue::new();
    let buf = AsyncBuffer::new(MAXGETHOSTSTRUCT);
    let h = ws
        .WSAAsyncGetHostByName(q.hwnd(), 3, "slow.example", &buf)
        .unwrap();
    thread::sleep(Duration::from_millis(100));
    ws.WSACancelAsyncRequest(h).expect("pending: cancelled");
    assert!(q.GetMessage(Some(Duration::from_millis(500))).is_none());
    assert_wsa_error(ws.WSACancelAsyncRequest(h), WsaError::WSAEALREADY);
}

/// Conformance: 542 — cancelling a request whose message is queued, or consumed, is
/// `WSAEALREADY`.
#[test]
fn cancel_finished_request() {
    let ws = host();
    let q = MessageQueue::new();
    let buf = AsyncBuffer::new(MAXGETHOSTSTRUCT);
    let h = ws.WSAAsyncGetProtoByName(q.hwnd(), 4, "udp", &buf).unwrap();
    // The buffer is filled in the same step that posts the message.
    assert!(wait_until(PATIENCE, || buf.protoent().is_some()));
    assert_wsa_error(ws.WSACancelAsyncRequest(h), WsaError::WSAEALREADY);
    assert!(q.PeekMessage().is_some(), "the message stays queued");
    assert_wsa_error(ws.WSACancelAsyncRequest(h), WsaError::WSAEALREADY);
}

/// Conformance: 543 — handle 0 (and a handle never issued) is `WSAEINVAL`.
#[test]
fn cancel_invalid_handle() {
    let ws = host();
    assert_wsa_error(ws.WSACancelAsyncRequest(0), WsaError::WSAEINVAL);
    assert_wsa_error(ws.WSACancelAsyncRequest(usize::MAX), WsaError::WSAEINVAL);
}

/// Conformance: 13 — the final `WSACleanup` cancels a pending lookup: no message follows.
#[test]
fn cleanup_cancels_async_lookups() {
    let ws = host();
    silent_resolver(&ws);
    let q = MessageQueue::new();
    let buf = AsyncBuffer::new(MAXGETHOSTSTRUCT);
    ws.WSAAsyncGetHostByName(q.hwnd(), 5, "slow.example", &buf)
        .unwrap();
    thread::sleep(Duration::from_millis(100));
    ws.WSACleanup().unwrap();
    assert!(q.GetMessage(Some(Duration::from_millis(500))).is_none());
}

// ---- address strings ----------------------------------------------------------------------

fn string_to(ws: &Winsock, s: &str) -> Result<SOCKADDR_IN, WsaError> {
    let mut sa = SOCKADDR_IN::default();
    let mut len = SOCKADDR_IN_LEN;
    ws.WSAStringToAddress(s, AF_INET, None, &mut sa, &mut len)?;
    Ok(sa)
}

/// Conformance: 545, 546, 547, 548 — with and without a port, unparsable, short length.
#[test]
fn string_to_address() {
    let ws = host();
    let sa = string_to(&ws, "10.0.0.1:80").unwrap();
    assert_eq!(sa.sin_addr.S_addr.to_ne_bytes(), [10, 0, 0, 1]);
    assert_eq!(sa.sin_port, htons(80));
    assert_eq!(string_to(&ws, "10.0.0.1").unwrap().sin_port, 0);
    for bad in ["", "ten.0.0.1", "10.0.0.1:", "10.0.0.1:70000", "300.0.0.1"] {
        assert_wsa_error(string_to(&ws, bad), WsaError::WSAEINVAL);
    }
    let mut sa = SOCKADDR_IN::default();
    let mut len = SOCKADDR_IN_LEN - 1;
    assert_wsa_error(
        ws.WSAStringToAddress("10.0.0.1", AF_INET, None, &mut sa, &mut len),
        WsaError::WSAEFAULT,
    );
    assert_eq!(len, SOCKADDR_IN_LEN);
}

/// Conformance: 549, 550, 551 — round trip, too small a buffer, unsupported family.
#[test]
fn address_to_string() {
    let ws = host();
    for addr in ["10.0.0.1:80", "192.168.7.9:65535", "1.2.3.4:0"] {
        let sa = SOCKADDR_IN::new(addr.parse().unwrap());
        let (mut s, mut len) = (String::new(), 64u32);
        ws.WSAAddressToString(Some(&sa), 16, None, &mut s, &mut len)
            .unwrap();
        assert_eq!(len as usize, s.len() + 1);
        assert_eq!(string_to(&ws, &s).unwrap(), sa, "{s}");
    }
    let sa = SOCKADDR_IN::new("10.0.0.1:80".parse().unwrap());
    let (mut s, mut len) = (String::new(), 5u32);
    assert_wsa_error(
        ws.WSAAddressToString(Some(&sa), 16, None, &mut s, &mut len),
        WsaError::WSAEFAULT,
    );
    assert_eq!(len as usize, "10.0.0.1:80".len() + 1);
    let mut v6 = sa;
    v6.sin_family = AF_INET6 as i16;
    let mut len = 64;
    assert_wsa_error(
        ws.WSAAddressToString(Some(&v6), 16, None, &mut s, &mut len),
        WsaError::WSAEINVAL,
    );
}

// ---- RnR ----------------------------------------------------------------------------------

fn query(class: GUID, name: Option<&str>) -> WSAQUERYSET {
    WSAQUERYSET {
        lpServiceClassId: Some(class),
        lpszServiceInstanceName: name.map(str::to_string),
        ..WSAQUERYSET::default()
    }
}

/// Every result of a lookup, with a large buffer.
fn all_results(ws: &Winsock, h: HANDLE) -> Vec<WSAQUERYSET> {
    let mut out = Vec::new();
    loop {
        let mut r = WSAQUERYSET::default();
        let mut len = 1 << 16;
        match ws.WSALookupServiceNext(h, 0, &mut len, &mut r) {
            Ok(()) => out.push(r),
            Err(WsaError::WSA_E_NO_MORE) => return out,
            Err(e) => panic!("WSALookupServiceNext: {e:?}"),
        }
    }
}

/// Conformance: 552, 553 — one active provider; too small a buffer reports the size.
#[test]
fn name_space_providers() {
    let ws = host();
    let mut out = Vec::new();
    let mut len = 0;
    assert_wsa_error(
        ws.WSAEnumNameSpaceProviders(&mut len, &mut out),
        WsaError::WSAEFAULT,
    );
    assert!(len > 32);
    assert_eq!(ws.WSAEnumNameSpaceProviders(&mut len, &mut out), Ok(1));
    assert!(out[0].fActive);
    assert_eq!(
        (out[0].dwNameSpace, out[0].NSProviderId),
        (NS_DNS, NSPROVIDER_ID)
    );
}

/// Conformance: 554, 555 — host addresses by name carry port 0; then `WSA_E_NO_MORE`.
#[test]
fn lookup_host_addresses() {
    let ws = host();
    let name = host_name(&ws);
    let h = ws
        .WSALookupServiceBegin(
            &query(SVCID_INET_HOSTADDRBYNAME, Some(&name)),
            LUP_RETURN_ADDR | LUP_RETURN_NAME | LUP_RETURN_BLOB,
        )
        .unwrap();
    let results = all_results(&ws, h);
    assert_eq!(results.len(), 1);
    let r = &results[0];
    assert_eq!(r.lpszServiceInstanceName.as_deref(), Some(name.as_str()));
    assert_eq!(r.lpcsaBuffer.len(), 1);
    let remote = r.lpcsaBuffer[0].RemoteAddr.lpSockaddr.to_socket_addr();
    assert_eq!(remote, at(A, 0));
    assert_eq!(
        HOSTENT::from_blob(r.lpBlob.as_ref().unwrap())
            .unwrap()
            .addrs(),
        [A]
    );
    ws.WSALookupServiceEnd(h).unwrap();
}

/// Conformance: 556, 557 — too small a buffer reports the size; `LUP_FLUSHPREVIOUS` skips
/// that result.
#[test]
fn lookup_buffer_too_small() {
    let ws = host();
    ws.add_host("multi.lan", &["m1", "m2"], &[Ipv4Addr::new(10, 0, 0, 60)]);
    let h = ws
        .WSALookupServiceBegin(
            &query(SVCID_INET_HOSTADDRBYNAME, Some("multi.lan")),
            LUP_RETURN_ALL | LUP_RETURN_ALIASES,
        )
        .unwrap();
    let mut r = WSAQUERYSET::default();
    let mut len = 10;
    assert_wsa_error(
        ws.WSALookupServiceNext(h, 0, &mut len, &mut r),
        WsaError::WSAEFAULT,
    );
    assert!(len > WSAQUERYSET_LEN);
    let mut again = len;
    ws.WSALookupServiceNext(h, 0, &mut again, &mut r).unwrap();
    assert_eq!(r.lpszServiceInstanceName.as_deref(), Some("multi.lan"));
    let mut small = 10;
    assert_wsa_error(
        ws.WSALookupServiceNext(h, 0, &mut small, &mut r),
        WsaError::WSAEFAULT,
    );
    let mut big = 4096;
    ws.WSALookupServiceNext(h, LUP_FLUSHPREVIOUS, &mut big, &mut r)
        .unwrap();
    assert_eq!(
        r.lpszServiceInstanceName.as_deref(),
        Some("m2"),
        "m1 was skipped"
    );
    ws.WSALookupServiceEnd(h).unwrap();
}

/// Conformance: 558 — `WSALookupServiceEnd` from another thread ends a blocked Next with
/// `WSA_E_CANCELLED`.
#[test]
fn end_cancels_blocked_next() {
    let ws = host();
    silent_resolver(&ws);
    let h = ws
        .WSALookupServiceBegin(
            &query(SVCID_INET_HOSTADDRBYNAME, Some("far.example")),
            LUP_RETURN_ADDR,
        )
        .expect("deferred to DNS");
    let w = ws.clone();
    let blocked = thread::spawn(move || {
        let mut r = WSAQUERYSET::default();
        let mut len = 4096;
        let t = Instant::now();
        let r = w.WSALookupServiceNext(h, 0, &mut len, &mut r);
        (r, WSAGetLastError(), t.elapsed())
    });
    thread::sleep(Duration::from_millis(300));
    ws.WSALookupServiceEnd(h).unwrap();
    let (r, last, took) = blocked.join().unwrap();
    assert_eq!(r, Err(WsaError::WSA_E_CANCELLED));
    assert_eq!(last, WsaError::WSA_E_CANCELLED.0);
    assert!(
        took < Duration::from_secs(5),
        "ended at once, not by the 30 s timeout"
    );
}

/// Conformance: 559 — Next and End with an invalid handle are `WSA_INVALID_HANDLE`.
#[test]
fn lookup_invalid_handle() {
    let ws = host();
    let mut r = WSAQUERYSET::default();
    let mut len = 4096;
    assert_wsa_error(
        ws.WSALookupServiceNext(12345, 0, &mut len, &mut r),
        WsaError::WSA_INVALID_HANDLE,
    );
    assert_wsa_error(ws.WSALookupServiceEnd(12345), WsaError::WSA_INVALID_HANDLE);
    let h = ws
        .WSALookupServiceBegin(&query(SVCID_HOSTNAME, None), LUP_RETURN_NAME)
        .unwrap();
    ws.WSALookupServiceEnd(h).unwrap();
    assert_wsa_error(ws.WSALookupServiceEnd(h), WsaError::WSA_INVALID_HANDLE);
}

/// Conformance: 560, 561 — `LUP_CONTAINERS` is `WSANO_DATA`; an unknown service or host is
/// `WSASERVICE_NOT_FOUND`.
#[test]
fn lookup_begin_errors() {
    let ws = host();
    assert_wsa_error(
        ws.WSALookupServiceBegin(&query(SVCID_HOSTNAME, None), LUP_CONTAINERS),
        WsaError::WSANO_DATA,
    );
    assert_wsa_error(
        ws.WSALookupServiceBegin(&query(SVCID_INET_SERVICEBYNAME, Some("nosuch/tcp")), 0),
        WsaError::WSASERVICE_NOT_FOUND,
    );
    assert_wsa_error(
        ws.WSALookupServiceBegin(&query(SVCID_INET_HOSTADDRBYNAME, Some("nobody.invalid")), 0),
        WsaError::WSASERVICE_NOT_FOUND,
    );
    let mut no_class = query(SVCID_HOSTNAME, None);
    no_class.lpServiceClassId = None;
    assert_wsa_error(ws.WSALookupServiceBegin(&no_class, 0), WsaError::WSAEINVAL);
}

/// Conformance: 562 — with `LUP_RETURN_ALIASES` the aliases come as later results flagged
/// `RESULT_IS_ALIAS`.
#[test]
fn lookup_aliases() {
    let ws = host();
    let h = ws
        .WSALookupServiceBegin(
            &query(SVCID_INET_HOSTADDRBYNAME, Some("localhost")),
            LUP_RETURN_NAME | LUP_RETURN_ALIASES,
        )
        .unwrap();
    let r = all_results(&ws, h);
    assert_eq!(r[0].dwOutputFlags & RESULT_IS_ALIAS, 0);
    assert_eq!(r[0].lpszServiceInstanceName.as_deref(), Some("localhost"));
    assert!(r.len() > 1);
    for alias in &r[1..] {
        assert_eq!(alias.dwOutputFlags & RESULT_IS_ALIAS, RESULT_IS_ALIAS);
    }
    assert_eq!(r[1].lpszServiceInstanceName.as_deref(), Some("loopback"));
}

/// Conformance: 563, 564 — "ftp/tcp" with `LUP_RETURN_BLOB` gives a servent with offsets;
/// "FTP/TCP" and "21/tcp" resolve alike; `LUP_RETURN_TYPE` gives `SVCID_TCP(21)`.
#[test]
fn lookup_service_by_name() {
    let ws = host();
    let mut blobs = Vec::new();
    for q in ["ftp/tcp", "FTP/TCP", "21/tcp"] {
        let h = ws
            .WSALookupServiceBegin(
                &query(SVCID_INET_SERVICEBYNAME, Some(q)),
                LUP_RETURN_BLOB | LUP_RETURN_NAME | LUP_RETURN_TYPE,
            )
            .unwrap();
        let r = all_results(&ws, h);
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].lpszServiceInstanceName.as_deref(), Some("ftp"), "{q}");
        assert_eq!(r[0].lpServiceClassId, Some(SVCID_TCP(21)));
        blobs.push(r[0].lpBlob.clone().unwrap());
    }
    assert!(blobs.iter().all(|b| *b == blobs[0]));
    let b = &blobs[0];
    let name_off = u32::from_ne_bytes(b[0..4].try_into().unwrap()) as usize;
    assert!(
        name_off >= 16 && name_off < b.len(),
        "an offset into the blob"
    );
    assert_eq!(&b[name_off..name_off + 4], b"ftp\0");
    assert_eq!(u16::from_ne_bytes([b[8], b[9]]), htons(21));
    assert_eq!(SERVENT::from_blob(b).unwrap().s_proto, "tcp");
    assert!(IS_SVCID_TCP(&SVCID_TCP(21)) && !IS_SVCID_UDP(&SVCID_TCP(21)));
    assert_eq!(PORT_FROM_SVCID_UDP(&SVCID_UDP(53)), 53);
}

/// `SVCID_HOSTNAME` with a service in the query string gives full transport addresses.
#[test]
fn lookup_hostname_with_service() {
    let ws = host();
    let mut q = query(SVCID_HOSTNAME, None);
    q.lpszQueryString = Some("ftp".into());
    let h = ws
        .WSALookupServiceBegin(&q, LUP_RETURN_ADDR | LUP_RETURN_NAME)
        .unwrap();
    let r = all_results(&ws, h);
    assert_eq!(
        r[0].lpszServiceInstanceName.as_deref(),
        Some(host_name(&ws).as_str())
    );
    assert_eq!(
        r[0].lpcsaBuffer[0].RemoteAddr.lpSockaddr.to_socket_addr(),
        at(A, 21)
    );
}

fn class(id: u32, name: &str) -> WSASERVICECLASSINFO {
    WSASERVICECLASSINFO {
        lpServiceClassId: GUID {
            Data1: id,
            Data2: 7,
            Data3: 7,
            Data4: *b"ws2test!",
        },
        lpszServiceClassName: name.into(),
        lpClassInfos: vec![WSANSCLASSINFO {
            lpszName: "SapId".into(),
            dwNameSpace: NS_DNS,
            dwValueType: 4,
            lpValue: vec![1, 0, 0, 0],
        }],
    }
}

/// Conformance: 565, 566, 567 — install then name by id; twice is `WSAEALREADY`; removing an
/// unknown class is `WSATYPE_NOT_FOUND`.
#[test]
fn service_classes() {
    let ws = host();
    let c = class(1, "EchoClass");
    ws.WSAInstallServiceClass(&c).unwrap();
    let (mut name, mut len) = (String::new(), 64);
    ws.WSAGetServiceClassNameByServiceClassId(&c.lpServiceClassId, &mut name, &mut len)
        .unwrap();
    assert_eq!(name, "EchoClass");
    assert_wsa_error(ws.WSAInstallServiceClass(&c), WsaError::WSAEALREADY);
    ws.WSARemoveServiceClass(Some(&c.lpServiceClassId)).unwrap();
    assert_wsa_error(
        ws.WSARemoveServiceClass(Some(&c.lpServiceClassId)),
        WsaError::WSATYPE_NOT_FOUND,
    );
    ws.set_registration_allowed(false);
    assert_wsa_error(ws.WSAInstallServiceClass(&c), WsaError::WSAEACCES);
}

/// Conformance: 568, 569 — too small a buffer reports the size; unknown class or provider is
/// `WSA_INVALID_PARAMETER`.
#[test]
fn service_class_info() {
    let ws = host();
    let c = class(2, "Info");
    ws.WSAInstallServiceClass(&c).unwrap();
    let mut out = WSASERVICECLASSINFO::default();
    let mut len = 8;
    assert_wsa_error(
        ws.WSAGetServiceClassInfo(&NSPROVIDER_ID, &c.lpServiceClassId, &mut len, &mut out),
        WsaError::WSAEFAULT,
    );
    assert_eq!(len, c.buffer_len());
    ws.WSAGetServiceClassInfo(&NSPROVIDER_ID, &c.lpServiceClassId, &mut len, &mut out)
        .unwrap();
    assert_eq!(out, c);
    let other = class(3, "Other").lpServiceClassId;
    assert_wsa_error(
        ws.WSAGetServiceClassInfo(&NSPROVIDER_ID, &other, &mut len, &mut out),
        WsaError::WSA_INVALID_PARAMETER,
    );
    assert_wsa_error(
        ws.WSAGetServiceClassInfo(&other, &c.lpServiceClassId, &mut len, &mut out),
        WsaError::WSA_INVALID_PARAMETER,
    );
}

fn registration(c: GUID, addrs: &[&str]) -> WSAQUERYSET {
    WSAQUERYSET {
        lpcsaBuffer: addrs
            .iter()
            .map(|a| CSADDR_INFO::new(a.parse().unwrap(), IPPROTO_TCP))
            .collect(),
        ..query(c, Some("echo-1"))
    }
}

fn discover(ws: &Winsock, c: GUID) -> Result<Vec<SocketAddrV4>, WsaError> {
    let h = ws.WSALookupServiceBegin(&query(c, Some("ECHO-1")), LUP_RETURN_ADDR)?;
    let r = all_results(ws, h);
    ws.WSALookupServiceEnd(h).unwrap();
    Ok(r[0]
        .lpcsaBuffer
        .iter()
        .map(|c| c.RemoteAddr.lpSockaddr.to_socket_addr())
        .collect())
}

/// Conformance: 570 — REGISTER makes the instance discoverable, DEREGISTER undiscoverable.
#[test]
fn set_service_register_deregister() {
    let ws = host();
    let c = class(4, "Echo").lpServiceClassId;
    assert_wsa_error(discover(&ws, c), WsaError::WSASERVICE_NOT_FOUND);
    ws.WSASetService(&registration(c, &["10.0.0.1:7"]), RNRSERVICE_REGISTER, 0)
        .unwrap();
    assert_eq!(discover(&ws, c).unwrap(), [at(A, 7)]);
    ws.WSASetService(&registration(c, &[]), RNRSERVICE_DEREGISTER, 0)
        .unwrap();
    assert_wsa_error(discover(&ws, c), WsaError::WSASERVICE_NOT_FOUND);
    ws.set_registration_allowed(false);
    assert_wsa_error(
        ws.WSASetService(&registration(c, &["10.0.0.1:7"]), RNRSERVICE_REGISTER, 0),
        WsaError::WSAEACCES,
    );
}

/// Conformance: 571 — DELETE with `SERVICE_MULTIPLE` removes only the matching address.
#[test]
fn set_service_delete_one_address() {
    let ws = host();
    let c = class(5, "Multi").lpServiceClassId;
    for a in ["10.0.0.1:7", "10.0.0.1:8", "10.0.0.1:9"] {
        ws.WSASetService(
            &registration(c, &[a]),
            RNRSERVICE_REGISTER,
            SERVICE_MULTIPLE,
        )
        .unwrap();
    }
    ws.WSASetService(
        &registration(c, &["10.0.0.1:8"]),
        RNRSERVICE_DELETE,
        SERVICE_MULTIPLE,
    )
    .unwrap();
    assert_eq!(discover(&ws, c).unwrap(), [at(A, 7), at(A, 9)]);
}

// ---- DNS over the stack's UDP -------------------------------------------------------------

/// A name only the resolver knows, through a CNAME; its address back by PTR; by every path.
#[test]
fn dns_answers() {
    let (a, _b, flag, t) = with_resolver(80, Mode::Answer);
    let h = a.gethostbyname("www.ws2.test").expect("DNS answer");
    assert_eq!(h.h_name, "host.ws2.test");
    assert_eq!(h.h_aliases, ["www.ws2.test"]);
    assert_eq!(h.addrs(), [Ipv4Addr::new(10, 0, 0, 9)]);
    let r = a.gethostbyaddr(Some(&[10, 0, 0, 9]), 4, AF_INET).unwrap();
    assert_eq!(r.h_name, "host.ws2.test");
    let q = MessageQueue::new();
    let buf = AsyncBuffer::new(MAXGETHOSTSTRUCT);
    a.WSAAsyncGetHostByName(q.hwnd(), 9, "other.ws2.test", &buf)
        .unwrap();
    let m = q.GetMessage(Some(PATIENCE)).unwrap();
    assert_eq!(WSAGETASYNCERROR(m.lParam), 0);
    assert_eq!(buf.hostent().unwrap().addrs(), [Ipv4Addr::new(10, 0, 0, 9)]);
    let lh = a
        .WSALookupServiceBegin(
            &query(SVCID_INET_HOSTADDRBYNAME, Some("www.ws2.test")),
            LUP_RETURN_ADDR | LUP_RETURN_NAME,
        )
        .unwrap();
    let r = all_results(&a, lh);
    assert_eq!(
        r[0].lpszServiceInstanceName.as_deref(),
        Some("host.ws2.test")
    );
    assert_eq!(
        r[0].lpcsaBuffer[0].RemoteAddr.lpSockaddr.to_socket_addr(),
        at(Ipv4Addr::new(10, 0, 0, 9), 0)
    );
    WSASetLastError(0);
    a.gethostbyname("x.ws2.test").unwrap();
    assert_eq!(
        WSAGetLastError(),
        0,
        "a successful lookup leaves the last error alone"
    );
    stop(flag, t);
}

/// Conformance: 561 — a name that exists without the data asked for is `WSANO_DATA` (here
/// from DNS, through RnR).
#[test]
fn lookup_no_data() {
    let (a, _b, flag, t) = with_resolver(87, Mode::NoData);
    let h = a
        .WSALookupServiceBegin(
            &query(SVCID_INET_HOSTADDRBYNAME, Some("empty.ws2.test")),
            LUP_RETURN_ADDR,
        )
        .unwrap();
    let mut r = WSAQUERYSET::default();
    let mut len = 4096;
    assert_wsa_error(
        a.WSALookupServiceNext(h, 0, &mut len, &mut r),
        WsaError::WSANO_DATA,
    );
    stop(flag, t);
}

/// The spec's error table for DNS outcomes (D-37).
#[test]
fn dns_errors() {
    for (seed, mode, want) in [
        (81, Mode::NxDomain, WsaError::WSAHOST_NOT_FOUND),
        (86, Mode::NoData, WsaError::WSANO_DATA),
        (82, Mode::ServFail, WsaError::WSATRY_AGAIN),
        (83, Mode::Garbage, WsaError::WSANO_RECOVERY),
        (84, Mode::Junk, WsaError::WSANO_RECOVERY),
    ] {
        let (a, _b, flag, t) = with_resolver(seed, mode);
        assert_wsa_error(a.gethostbyname("any.ws2.test"), want);
        stop(flag, t);
    }
    let ws = host();
    ws.set_dns_server(at(SILENT, 53));
    ws.set_dns_timeouts(Duration::from_millis(200), 2);
    let t = Instant::now();
    assert_wsa_error(ws.gethostbyname("any.ws2.test"), WsaError::WSATRY_AGAIN);
    assert!(t.elapsed() >= Duration::from_millis(400) && t.elapsed() < PATIENCE);
}

/// Conformance: 351 — in 1.1 mode a blocking `gethostbyname` runs the blocking hook and
/// `WSACancelBlockingCall` ends it with `WSAEINTR`.
#[test]
fn gethostbyname_cancelled_in_v11() {
    let switch = VirtualSwitch::new(85);
    let ws = started_version(&stack_on(&switch, config(A)), MAKEWORD(1, 1));
    silent_resolver(&ws);
    let calls = Rc::new(Cell::new(0u32));
    let (w, c) = (ws.clone(), calls.clone());
    ws.WSASetBlockingHook(Box::new(move || {
        c.set(c.get() + 1);
        assert!(w.WSAIsBlocking().unwrap());
        w.WSACancelBlockingCall().unwrap();
        false
    }))
    .unwrap();
    let t = Instant::now();
    assert_wsa_error(ws.gethostbyname("slow.example"), WsaError::WSAEINTR);
    assert!(calls.get() >= 1);
    assert!(t.elapsed() < PATIENCE);
    assert_eq!(ws.gethostbyname("localhost").unwrap().h_name, "localhost");
}
