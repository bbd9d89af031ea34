//! Tier 3, DNS: the stack resolves names with its own UDP against a real resolver (dnsmasq)
//! running in a test namespace, and survives a resolver that answers garbage (a kernel UDP
//! socket in the namespace sending malformed replies).
//!
//! Needs root, `/dev/net/tun` (see `ws2_tests::netns::require_netns`) and `dnsmasq`
//! (`apt-get install dnsmasq-base`). Network safety: dnsmasq listens only on the namespace's
//! TAP address (`--bind-interfaces`), has no upstream (`--no-resolv`) and answers only
//! `ws2.test` names from its command line; nothing touches the root namespace. Subnets
//! 10.77.60 and 10.77.61.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::process::{Child, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use ws2_stack::winsock::*;
use ws2_stack::WsaError;
use ws2_tests::netns::{require_netns, KernelPeer};
use ws2_tests::*;

/// The test-only name dnsmasq answers, and its address.
const DEMO: &str = "mcast-demo.ws2.test";
const DEMO_IP: Ipv4Addr = Ipv4Addr::new(10, 77, 60, 42);

/// dnsmasq in the peer's namespace, killed on drop.
struct Dnsmasq(Child);

impl Drop for Dnsmasq {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn dnsmasq(peer: &KernelPeer) -> Option<Dnsmasq> {
    let listen = format!("--listen-address={}", peer.kernel_ip);
    let record = format!("--host-record={DEMO},{DEMO_IP}");
    let child = peer
        .ns
        .command(&[
            "dnsmasq",
            "--keep-in-foreground",
            "--no-resolv",
            "--no-hosts",
            "--no-poll",
            "--conf-file=/dev/null",
            "--pid-file=",
            "--user=root",
            "--bind-interfaces",
            &listen,
            "--local=/ws2.test/",
            "--cname=alias.ws2.test,mcast-demo.ws2.test",
            &record,
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
    match child {
        Ok(c) => Some(Dnsmasq(c)),
        Err(e) => {
            println!("SKIP: kernel_dns: dnsmasq not available: {e}");
            None
        }
    }
}

/// A started Winsock on the peer's stack using `server` as resolver.
fn resolver_client(peer: &KernelPeer, server: SocketAddrV4) -> Winsock {
    let ws = started(&peer.stack);
    ws.set_dns_server(server);
    ws.set_dns_timeouts(Duration::from_millis(500), 3);
    ws
}

/// Names dnsmasq knows resolve (A, CNAME, PTR) through every path; names it does not are
/// `WSAHOST_NOT_FOUND`.
#[test]
fn kernel_dns_dnsmasq() {
    if require_netns().is_some() {
        return;
    }
    let peer = KernelPeer::new("ws2-dns", 60).expect("set up namespace, TAP and stack");
    let Some(_server) = dnsmasq(&peer) else {
        assert!(
            std::env::var("WS2_REQUIRE_NETNS").is_err(),
            "dnsmasq is required in CI"
        );
        return;
    };
    let ws = resolver_client(&peer, SocketAddrV4::new(peer.kernel_ip, 53));
    // dnsmasq takes a moment to bind; the first lookups may see a closed port.
    let t = Instant::now();
    let h = loop {
        match ws.gethostbyname(DEMO) {
            Ok(h) => break h,
            Err(e) if t.elapsed() < Duration::from_secs(10) => {
                let _ = e;
                thread::sleep(Duration::from_millis(100));
            }
            Err(e) => panic!("gethostbyname({DEMO}): {e:?}"),
        }
    };
    assert_eq!(h.h_name, DEMO);
    assert_eq!(h.addrs(), [DEMO_IP]);

    let alias = ws.gethostbyname("alias.ws2.test").expect("CNAME");
    assert_eq!(alias.h_name, DEMO);
    assert_eq!(alias.h_aliases, ["alias.ws2.test"]);
    assert_eq!(alias.addrs(), [DEMO_IP]);

    let back = ws
        .gethostbyaddr(Some(&DEMO_IP.octets()), 4, AF_INET)
        .expect("PTR");
    assert_eq!(back.h_name, DEMO);

    assert_wsa_error(
        ws.gethostbyname("nobody.ws2.test"),
        WsaError::WSAHOST_NOT_FOUND,
    );

    let q = MessageQueue::new();
    let buf = AsyncBuffer::new(MAXGETHOSTSTRUCT);
    let task = ws
        .WSAAsyncGetHostByName(q.hwnd(), 0x7000, DEMO, &buf)
        .unwrap();
    let m = q
        .GetMessage(Some(Duration::from_secs(10)))
        .expect("completion");
    assert_eq!((m.wParam, WSAGETASYNCERROR(m.lParam)), (task, 0));
    assert_eq!(buf.hostent().unwrap().addrs(), [DEMO_IP]);

    let mut query = WSAQUERYSET {
        lpServiceClassId: Some(SVCID_TCP(80)),
        lpszServiceInstanceName: Some(DEMO.into()),
        ..WSAQUERYSET::default()
    };
    let lookup = ws
        .WSALookupServiceBegin(&query, LUP_RETURN_ADDR | LUP_RETURN_NAME)
        .unwrap();
    let mut r = WSAQUERYSET::default();
    let mut len = 4096;
    ws.WSALookupServiceNext(lookup, 0, &mut len, &mut r)
        .expect("DNS through RnR");
    assert_eq!(
        r.lpcsaBuffer[0].RemoteAddr.lpSockaddr.to_socket_addr(),
        SocketAddrV4::new(DEMO_IP, 80)
    );
    ws.WSALookupServiceEnd(lookup).unwrap();
    query.lpszServiceInstanceName = Some("nobody.ws2.test".into());
    let lookup = ws.WSALookupServiceBegin(&query, LUP_RETURN_ADDR).unwrap();
    assert_wsa_error(
        ws.WSALookupServiceNext(lookup, 0, &mut len, &mut r),
        WsaError::WSASERVICE_NOT_FOUND,
    );
}

/// A kernel socket in the namespace answers every query with malformed messages (our id with
/// a broken body, then junk): the lookup fails `WSANO_RECOVERY` promptly, nothing panics, and
/// the stack still resolves local names afterwards.
#[test]
fn kernel_dns_garbage_resolver() {
    if require_netns().is_some() {
        return;
    }
    let peer = KernelPeer::new("ws2-dnsg", 61).expect("set up namespace, TAP and stack");
    let server = SocketAddrV4::new(peer.kernel_ip, 53);
    let sock = peer
        .ns
        .enter_thread(|| std::net::UdpSocket::bind(server))
        .unwrap()
        .expect("kernel bind");
    sock.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let answering = thread::spawn(move || {
        let mut buf = [0u8; 1500];
        let mut seen = 0u32;
        let mut x = 0x1234_5678_9ABC_DEF1u64;
        while !flag.load(Ordering::SeqCst) {
            let Ok((n, from)) = sock.recv_from(&mut buf) else {
                continue;
            };
            seen += 1;
            // Our id, QR set, counts that promise more than is there, pointer soup.
            let mut reply = vec![buf[0], buf[1], 0x81, 0x80, 0, 1, 0xff, 0xff, 0, 0, 0, 0];
            reply.extend(std::iter::repeat_n(0xC0u8, 40));
            sock.send_to(&reply, from).unwrap();
            // Random junk too.
            for _ in 0..3 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let junk: Vec<u8> = (0..(x % 64) as usize)
                    .map(|i| (x >> (i % 56)) as u8)
                    .collect();
                sock.send_to(&junk, from).unwrap();
            }
            let _ = n;
        }
        seen
    });
    let ws = resolver_client(&peer, server);
    let t = Instant::now();
    assert_wsa_error(ws.gethostbyname(DEMO), WsaError::WSANO_RECOVERY);
    assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
    assert_wsa_error(
        ws.gethostbyaddr(Some(&DEMO_IP.octets()), 4, AF_INET),
        WsaError::WSANO_RECOVERY,
    );
    assert_eq!(ws.gethostbyname("localhost").unwrap().h_name, "localhost");
    stop.store(true, Ordering::SeqCst);
    assert!(
        answering.join().unwrap() >= 2,
        "the resolver saw our queries"
    );
}
