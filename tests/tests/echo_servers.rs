//! Issue 3 acceptance: a non-blocking echo server on `WSAEventSelect` and one on completion
//! routines each serve 1,000 concurrent TCP clients on an in-process network, every byte echoed
//! correctly. The servers and the client swarm are `ws2_stack::echo`, the programs `ws2 demo`
//! runs.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use ws2_stack::echo::{self, ServerStats};
use ws2_stack::winsock::Winsock;
use ws2_tests::*;

const CLIENTS: usize = 1000;
const BYTES: usize = 4096;

fn serve(
    seed: u64,
    port: u16,
    server: fn(
        &Winsock,
        ws2_stack::winsock::SOCKET,
        &AtomicBool,
    ) -> Result<ServerStats, ws2_stack::WsaError>,
) {
    let (a, b) = two_hosts(seed);
    let listener = echo::echo_listener(&b, at(B, port), 8 * 1024).expect("listener");
    let stop = Arc::new(AtomicBool::new(false));
    let (bs, st) = (b.clone(), stop.clone());
    let srv = thread::spawn(move || server(&bs, listener, &st));
    let report = echo::run_clients(&a, at(B, port), CLIENTS, BYTES, Duration::from_secs(240))
        .expect("the swarm finishes");
    stop.store(true, Ordering::Relaxed);
    let stats = srv.join().expect("server thread").expect("server runs");
    assert_eq!(report.corrupted, 0, "no echo differs from what was sent");
    assert_eq!(report.verified, CLIENTS, "every client got its bytes back");
    assert_eq!(
        report.max_connected, CLIENTS,
        "all clients were connected at once"
    );
    assert_eq!(
        stats.accepted, CLIENTS,
        "refused attempts were never accepted"
    );
    assert_eq!(
        stats.max_open, CLIENTS,
        "the server held every connection at once"
    );
    assert_eq!(stats.echoed, (CLIENTS * BYTES) as u64);
}

/// Issue 3 acceptance: 1,000 concurrent clients on a `WSAEventSelect` echo server.
#[test]
fn event_select_server_serves_1000_clients() {
    serve(3001, 30010, echo::serve_event_select);
}

/// Issue 3 acceptance: 1,000 concurrent clients on a completion-routine echo server.
#[test]
fn completion_routine_server_serves_1000_clients() {
    serve(3002, 30020, echo::serve_completion_routines);
}
