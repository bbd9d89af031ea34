//! Completion routines as asynchronous procedure calls (CHECKLIST §1.6.6; Part 3 #3; spec
//! document `002_…`).
//!
//! Every thread has a queue. An overlapped operation issued with a completion routine captures
//! the issuing thread's queue; when the operation completes, the engine pushes the routine there
//! and unparks the thread. Routines run only when that thread is in an alertable wait
//! ([`run_queued`], called by `WSAWaitForMultipleEvents(fAlertable = TRUE)` and `SleepEx`), in
//! the order they completed, never nested for one socket: a routine queued for a socket whose
//! routine is running on this thread waits until that one has returned. A thread that never
//! waits alertably keeps its routines queued; nothing is lost.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::thread::Thread;
use std::time::Instant;

/// A completion routine bound to its arguments.
pub(crate) type Routine = Box<dyn FnOnce() + Send>;

struct Apc {
    socket: u64,
    run: Routine,
}

/// The completion routines queued for one thread.
pub(crate) struct ApcQueue {
    queue: Mutex<VecDeque<Apc>>,
    thread: Thread,
}

impl std::fmt::Debug for ApcQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApcQueue")
            .field("thread", &self.thread.id())
            .field("queued", &self.len())
            .finish()
    }
}

thread_local! {
    static QUEUE: Arc<ApcQueue> = Arc::new(ApcQueue {
        queue: Mutex::new(VecDeque::new()),
        thread: std::thread::current(),
    });
    /// Sockets whose routine is running on this thread (innermost last).
    static RUNNING: RefCell<Vec<u64>> = const { RefCell::new(Vec::new()) };
}

/// The calling thread's queue.
pub(crate) fn current() -> Arc<ApcQueue> {
    QUEUE.with(Arc::clone)
}

impl ApcQueue {
    /// Queues `run` (a routine for `socket`) and wakes the thread.
    pub(crate) fn push(&self, socket: u64, run: Routine) {
        self.queue
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push_back(Apc { socket, run });
        self.thread.unpark();
    }

    /// Routines waiting to run.
    pub(crate) fn len(&self) -> usize {
        self.queue.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// Takes the oldest routine that may run now (its socket has no routine running).
    fn pop_runnable(&self, running: &[u64]) -> Option<Apc> {
        let mut q = self.queue.lock().unwrap_or_else(|e| e.into_inner());
        let i = q.iter().position(|a| !running.contains(&a.socket))?;
        q.remove(i)
    }
}

/// Runs the calling thread's queued routines (also those queued while they run), except those
/// of sockets whose routine is already running further up this thread's stack. Returns whether
/// any ran.
pub(crate) fn run_queued() -> bool {
    let queue = current();
    let mut ran = false;
    loop {
        let next = RUNNING.with(|r| queue.pop_runnable(&r.borrow()));
        let Some(apc) = next else {
            return ran;
        };
        RUNNING.with(|r| r.borrow_mut().push(apc.socket));
        // Pops the entry even if the routine panics, so the socket is not blocked for good.
        struct Done;
        impl Drop for Done {
            fn drop(&mut self) {
                RUNNING.with(|r| {
                    r.borrow_mut().pop();
                });
            }
        }
        let _done = Done;
        (apc.run)();
        ran = true;
    }
}

/// `SleepEx`: sleeps until `deadline` (`None`: for ever) or, when `alertable`, until completion
/// routines are queued; they run before it returns. Returns whether routines ran.
pub(crate) fn sleep(deadline: Option<Instant>, alertable: bool) -> bool {
    loop {
        if alertable && run_queued() {
            return true;
        }
        match deadline {
            None => std::thread::park(),
            Some(d) => {
                let now = Instant::now();
                if now >= d {
                    return false;
                }
                std::thread::park_timeout(d - now);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Conformance: 321 — routines wait for an alertable wait of the issuing thread.
    #[test]
    fn routines_run_only_in_alertable_waits() {
        let ran = Arc::new(AtomicUsize::new(0));
        let q = current();
        for _ in 0..3 {
            let ran = ran.clone();
            q.push(
                1,
                Box::new(move || {
                    ran.fetch_add(1, Ordering::SeqCst);
                }),
            );
        }
        assert!(!sleep(Some(Instant::now()), false));
        assert_eq!(
            ran.load(Ordering::SeqCst),
            0,
            "a non-alertable sleep runs nothing"
        );
        assert!(sleep(None, true));
        assert_eq!(ran.load(Ordering::SeqCst), 3);
        assert!(!sleep(Some(Instant::now()), true), "nothing left");
    }

    /// Conformance: 327 — a routine that enters an alertable wait does not run another routine of
    /// its own socket, but does run other sockets' routines.
    #[test]
    fn never_nested_per_socket() {
        let log = Arc::new(Mutex::new(Vec::new()));
        let q = current();
        let (l1, l2, l3) = (log.clone(), log.clone(), log.clone());
        q.push(
            7,
            Box::new(move || {
                l1.lock().unwrap().push("a-start");
                let q = current();
                let l2b = l2.clone();
                q.push(7, Box::new(move || l2b.lock().unwrap().push("a2")));
                q.push(8, Box::new(move || l3.lock().unwrap().push("b")));
                run_queued();
                l2.lock().unwrap().push("a-end");
            }),
        );
        assert!(run_queued());
        assert_eq!(*log.lock().unwrap(), ["a-start", "b", "a-end", "a2"]);
    }
}
