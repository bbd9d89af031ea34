//! Issue 12, "Bad input": a stack whose link fails ends with a clear error, not a hang. Two
//! stacks talk TCP through an in-process `UnixSwitch`; the switch goes away; the sender's link
//! then fails every send (`ECONNREFUSED`), and within a few seconds its calls fail
//! `WSAENETDOWN` ("the network subsystem has failed", CHECKLIST Appendix D) and the stack's
//! report names the link's error.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ws2_stack::winsock::*;
use ws2_stack::{Stack, WsaError};
use ws2_tap::{UnixLink, UnixSwitch};
use ws2_tests::{config, started, tcp_pair, A, B};

#[test]
fn a_failed_link_ends_the_stack_with_wsaenetdown() {
    let path = std::env::temp_dir().join(format!("ws2-linkfail-{}.sock", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let switch = UnixSwitch::bind(&path).expect("switch");
    let stop = Arc::new(AtomicBool::new(false));
    let runner = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let _ = switch.run(&stop);
            drop(switch); // removes the socket file: the LAN is gone
        })
    };
    let a = Stack::new(config(A), UnixLink::connect(&path).expect("link A")).expect("A");
    let b = Stack::new(config(B), UnixLink::connect(&path).expect("link B")).expect("B");
    let (wa, wb) = (started(&a), started(&b));
    let (c, _s) = tcp_pair(&wa, &wb, 7000);
    assert_eq!(wa.send(c, b"before", 0), Ok(6));

    stop.store(true, Ordering::SeqCst);
    runner.join().expect("switch thread");

    // Sends now fail on the link; the stack must notice and end, not hang its callers.
    let start = Instant::now();
    let failed = loop {
        match wa.send(c, &[0u8; 1000], 0) {
            Ok(_) if start.elapsed() < Duration::from_secs(10) => {
                std::thread::sleep(Duration::from_millis(50))
            }
            other => break other,
        }
    };
    assert_eq!(
        failed,
        Err(WsaError::WSAENETDOWN),
        "after {:?}",
        start.elapsed()
    );
    let report = a.drain_report().expect("the stack has ended");
    let why = report.link_error.clone().expect("a link error");
    assert!(!report.complete);
    assert!(
        report.to_string().contains("link failed"),
        "one clear line: {report}"
    );
    eprintln!("{report} ({why})");
    assert_eq!(
        wa.socket(AF_INET, SOCK_STREAM, 0).map(drop),
        Err(WsaError::WSAENETDOWN),
        "no new sockets on a failed stack"
    );
}
