use std::time::{Duration, Instant};
use ws2_stack::winsock::*;
use ws2_stack::WsaError;
use ws2_tests::*;

#[test]
fn probe_basic() {
    let t = Instant::now();
    let (a, b) = two_hosts(1);
    let (c, s) = tcp_pair(&a, &b, 80);
    send_all(&a, c, b"hello");
    assert_eq!(recv_exact(&b, s, 5), b"hello");
    println!("pair+5 bytes {:?}", t.elapsed());
    // silent host connect timeout
    let switch = ws2_tap::VirtualSwitch::new(3);
    let mut cfg = config(A);
    cfg.connect_timeout = Duration::from_secs(1);
    let ws = started(&stack_on(&switch, cfg));
    let s = new_socket(&ws, SOCK_STREAM);
    let t = Instant::now();
    let r = connect(&ws, s, at(SILENT, 80));
    println!("silent: {:?} after {:?}", r, t.elapsed());
    let _ = WsaError::WSAEINVAL;
}
