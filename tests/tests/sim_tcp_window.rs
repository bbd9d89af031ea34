//! Virtual time (`ws2_tests::sim`): a TCP transfer on a LAN with no delay keeps moving after the
//! receiver has emptied a full window. Regression: the simulation used to move time on after an
//! application call whose frames moved at the same instant, so the reader never saw the next
//! window and the run jumped to its limit with one window delivered.

use std::time::Duration;

use ws2_tests::sim::Sim;
use ws2_tests::{at, config, pattern, A, B};

#[test]
fn a_full_window_is_reopened_without_delay() {
    let mut sim = Sim::new(1);
    let a = sim.host(config(A));
    let b = sim.host(config(B));
    let (wa, wb) = (sim.winsock(&a), sim.winsock(&b));
    let (c, s) = sim.tcp_pair(&wa, &wb, at(B, 80));
    let data = pattern(1_000_000, 1);
    let got = sim.transfer((&wa, c), (&wb, s), &data, Duration::from_secs(60));
    assert_eq!(
        got.len(),
        data.len(),
        "bytes delivered after {:?}",
        sim.elapsed()
    );
    assert_eq!(got, data);
}
