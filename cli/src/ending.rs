//! The graceful end of a command's stack (issue 12, item 5): after the command's sockets are
//! closed, the stack drains what the command handed over — shaped datagrams at their rate, IGMP
//! leaves, TCP closes — before the process exits. A SIGINT or SIGTERM during the drain (the
//! user's second Ctrl-C when the first ended the command's work) cuts it short; either way one
//! line on stderr says how it went and what, if anything, was dropped.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use ws2_stack::{DrainReport, Stack};

use crate::interrupt::Interrupts;

/// The longest a command's stack drains before it drops what is left.
pub(crate) const DRAIN_LIMIT: Duration = Duration::from_secs(30);

/// Ends `stack` gracefully and says how it went. `interrupts` are the command's own, if it
/// installed them: a first signal already ended its work, so the next one ends the drain; a
/// command without them gets a fresh set for the drain.
pub(crate) fn finish(stack: Stack, interrupts: Option<&Interrupts>) -> DrainReport {
    let fresh;
    let interrupts = match interrupts {
        Some(i) => Some(i),
        None => {
            fresh = Interrupts::install().ok();
            fresh.as_ref()
        }
    };
    let already = interrupts.map_or(0, Interrupts::count);
    let done = Arc::new(AtomicBool::new(false));
    let report = std::thread::scope(|scope| {
        if let Some(i) = interrupts {
            let (stack, done) = (stack.clone(), done.clone());
            scope.spawn(move || {
                while !done.load(Ordering::SeqCst) {
                    if i.count() > already {
                        stack.cut_short();
                        return;
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
            });
        }
        let report = stack.shutdown(DRAIN_LIMIT);
        done.store(true, Ordering::SeqCst);
        report
    });
    let report = report.unwrap_or(DrainReport {
        complete: false,
        elapsed: Duration::ZERO,
        dropped: ws2_stack::Dropped::default(),
        link_error: None,
    });
    eprintln!("ws2: {report}");
    report
}
