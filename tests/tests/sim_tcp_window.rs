//! Virtual time (`ws2_tests::sim`): a TCP transfer on a LAN with no delay keeps moving after the
//! receiver has emptied a full window. Regression: the simulation used to move time on after an
//! application call whose frames moved at the same instant, so the reader never saw the next
//! window and the run jumped to its limit with one window delivered.

use std::time::Duration;

use ws2_stack::winsock::*;
use ws2_stack::WsaError;
use ws2_tests::sim::Sim;
use ws2_tests::{at, bind, config, connect, new_socket, pattern, poll_one, set_nonblocking, A, B};

#[test]
fn a_full_window_is_reopened_without_delay() {
    let mut sim = Sim::new(1);
    let a = sim.host(config(A));
    let b = sim.host(config(B));
    let (wa, wb) = (sim.winsock(&a), sim.winsock(&b));
    let l = new_socket(&wb, SOCK_STREAM);
    bind(&wb, l, at(B, 80)).expect("bind");
    wb.listen(l, 4).expect("listen");
    set_nonblocking(&wb, l, true);
    let c = new_socket(&wa, SOCK_STREAM);
    set_nonblocking(&wa, c, true);
    assert_eq!(connect(&wa, c, at(B, 80)), Err(WsaError::WSAEWOULDBLOCK));
    assert!(sim.run_until(Duration::from_secs(10), |_| poll_one(&wa, c, 0).1));
    let mut server = None;
    assert!(sim.run_until(Duration::from_secs(1), |_| {
        server = wb.accept(l, None, None).ok();
        server.is_some()
    }));
    let s = server.unwrap();
    set_nonblocking(&wb, s, true);
    let data = pattern(1_000_000, 1);
    let (mut sent, mut got) = (0, Vec::new());
    let mut buf = vec![0u8; 64 * 1024];
    let done = sim.run_until(Duration::from_secs(60), |_| {
        while sent < data.len() {
            match wa.send(c, &data[sent..], 0) {
                Ok(n) => sent += n as usize,
                Err(_) => break,
            }
        }
        while let Ok(n) = wb.recv(s, &mut buf, 0) {
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n as usize]);
        }
        got.len() == data.len()
    });
    assert!(
        done,
        "{} of {} bytes after {:?}",
        got.len(),
        data.len(),
        sim.elapsed()
    );
    assert_eq!(got, data);
}
