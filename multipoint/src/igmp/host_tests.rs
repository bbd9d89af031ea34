//! Tests of the IGMP host machine on simulated time.
#![allow(clippy::disallowed_methods)] // tests pick the simulated epoch with Instant::now()

use super::*;

#[test]
fn join_queues_a_report_at_once() {
    let t0 = Instant::now();
    let mut h = Host::new(HostConfig::default(), 1);
    let g = Ipv4Addr::new(239, 1, 2, 3);
    assert_eq!(h.set_filter(t0, 1, g, SourceFilter::any_source()), Ok(true));
    assert_eq!(h.poll_at(), Some(t0));
    assert!(h.poll(t0).is_some());
}
