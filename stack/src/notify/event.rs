//! Manual-reset event objects and the waits on them (CHECKLIST §1.0.3, §1.6.8; Part 3 #2).
//!
//! An [`EventTable`] is the handle table of one Winsock application: `WSAEVENT` values are
//! numbers from a process-wide counter, never reused, so a closed or foreign handle is detectable
//! (`WSA_INVALID_HANDLE`). Waiting threads register themselves on every event they wait for and
//! park; `set` unparks them. Waits also wake for the waiting thread's completion routines
//! ([`super::apc`]) when they are alertable. No polling: a wait sleeps until a set, a queued
//! routine or its deadline.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::Thread;
use std::time::Instant;

use super::apc;
use crate::error::WsaError;

/// Handles come from one counter for the whole process, starting at 1 (0 is
/// `WSA_INVALID_EVENT`).
static NEXT_HANDLE: AtomicUsize = AtomicUsize::new(1);

#[derive(Debug, Default)]
struct Slot {
    signaled: bool,
    /// Threads waiting on this event right now.
    waiters: Vec<Thread>,
}

/// What a wait ended with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WaitResult {
    /// Wait-any: the lowest signaled index (D-31); wait-all: 0.
    Signaled(usize),
    /// Completion routines ran (alertable waits only).
    IoCompletion,
    /// The deadline passed.
    Timeout,
}

/// The event objects of one application.
#[derive(Debug, Default)]
pub(crate) struct EventTable {
    slots: Mutex<HashMap<usize, Slot>>,
}

impl EventTable {
    /// A new, empty table.
    pub(crate) fn new() -> Arc<EventTable> {
        Arc::default()
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<usize, Slot>> {
        self.slots.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A new manual-reset event, initially nonsignaled.
    pub(crate) fn create(&self) -> usize {
        let h = NEXT_HANDLE.fetch_add(1, Ordering::Relaxed);
        self.lock().insert(h, Slot::default());
        h
    }

    /// Closes `h`; threads waiting on it wake and see an invalid handle.
    pub(crate) fn close(&self, h: usize) -> Result<(), WsaError> {
        let slot = self.lock().remove(&h).ok_or(WsaError::WSA_INVALID_HANDLE)?;
        slot.waiters.iter().for_each(Thread::unpark);
        Ok(())
    }

    /// Signals `h` and wakes its waiters.
    pub(crate) fn set(&self, h: usize) -> Result<(), WsaError> {
        let mut slots = self.lock();
        let slot = slots.get_mut(&h).ok_or(WsaError::WSA_INVALID_HANDLE)?;
        slot.signaled = true;
        slot.waiters.iter().for_each(Thread::unpark);
        Ok(())
    }

    /// Makes `h` nonsignaled.
    pub(crate) fn reset(&self, h: usize) -> Result<(), WsaError> {
        let mut slots = self.lock();
        slots
            .get_mut(&h)
            .ok_or(WsaError::WSA_INVALID_HANDLE)?
            .signaled = false;
        Ok(())
    }

    /// Whether `h` is a live event of this table.
    pub(crate) fn contains(&self, h: usize) -> bool {
        self.lock().contains_key(&h)
    }

    /// Whether `h` is signaled (`WSA_INVALID_HANDLE` if it is not an event).
    #[cfg(test)]
    pub(crate) fn is_set(&self, h: usize) -> Result<bool, WsaError> {
        self.lock()
            .get(&h)
            .map(|s| s.signaled)
            .ok_or(WsaError::WSA_INVALID_HANDLE)
    }

    /// Waits until one of `handles` (or all of them at once, with `all`) is signaled, or, when
    /// `alertable`, until completion routines are queued for this thread (they run before the
    /// wait returns), or until `deadline`. States are not changed (manual-reset events). Any
    /// handle that is not a live event, now or while waiting, fails with `WSA_INVALID_HANDLE`.
    pub(crate) fn wait(
        &self,
        handles: &[usize],
        all: bool,
        deadline: Option<Instant>,
        alertable: bool,
    ) -> Result<WaitResult, WsaError> {
        // The thread handle is needed only once the wait has to sleep.
        let mut me: Option<Thread> = None;
        let mut registered = false;
        let result = loop {
            {
                let mut slots = self.lock();
                let mut first = None;
                let mut count = 0;
                for (i, h) in handles.iter().enumerate() {
                    let Some(slot) = slots.get(h) else {
                        drop(slots);
                        if let (true, Some(me)) = (registered, &me) {
                            self.unregister(handles, me);
                        }
                        return Err(WsaError::WSA_INVALID_HANDLE);
                    };
                    if slot.signaled {
                        count += 1;
                        first.get_or_insert(i);
                    }
                }
                match first {
                    Some(i) if !all => break Ok(WaitResult::Signaled(i)),
                    Some(_) if count == handles.len() => break Ok(WaitResult::Signaled(0)),
                    _ => {}
                }
                if !registered {
                    let me = me.get_or_insert_with(std::thread::current);
                    for h in handles {
                        if let Some(slot) = slots.get_mut(h) {
                            slot.waiters.push(me.clone());
                        }
                    }
                    registered = true;
                    // Re-check with the registration in place: a set from now on unparks us.
                    continue;
                }
            }
            // As in Win32, a signaled event wins over queued completion routines.
            if alertable && apc::run_queued() {
                break Ok(WaitResult::IoCompletion);
            }
            match deadline {
                None => std::thread::park(),
                Some(d) => {
                    let now = Instant::now();
                    if now >= d {
                        break Ok(WaitResult::Timeout);
                    }
                    std::thread::park_timeout(d - now);
                }
            }
        };
        if let (true, Some(me)) = (registered, &me) {
            self.unregister(handles, me);
        }
        result
    }

    fn unregister(&self, handles: &[usize], me: &Thread) {
        let mut slots = self.lock();
        for h in handles {
            if let Some(slot) = slots.get_mut(h) {
                if let Some(i) = slot.waiters.iter().position(|t| t.id() == me.id()) {
                    slot.waiters.swap_remove(i);
                }
            }
        }
    }
}

/// One event of a table, as a completion target (an overlapped operation's `hEvent`, a
/// `WSAEventSelect` registration).
#[derive(Debug, Clone)]
pub(crate) struct EventRef {
    pub(crate) table: Arc<EventTable>,
    pub(crate) handle: usize,
}

impl EventRef {
    /// Signals the event; an event closed meanwhile is ignored.
    pub(crate) fn set(&self) {
        let _ = self.table.set(self.handle);
    }

    /// Makes the event nonsignaled; an event closed meanwhile is ignored.
    pub(crate) fn reset(&self) {
        let _ = self.table.reset(self.handle);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// Conformance: 297, 298 — new events are nonsignaled; a set event stays set until reset.
    #[test]
    fn manual_reset() {
        let t = EventTable::new();
        let e = t.create();
        let soon = || Some(Instant::now());
        assert_eq!(t.wait(&[e], false, soon(), false), Ok(WaitResult::Timeout));
        t.set(e).unwrap();
        for _ in 0..3 {
            assert_eq!(
                t.wait(&[e], false, soon(), false),
                Ok(WaitResult::Signaled(0))
            );
        }
        t.reset(e).unwrap();
        assert_eq!(t.wait(&[e], false, soon(), false), Ok(WaitResult::Timeout));
    }

    /// Conformance: 300, 301 — wait-any gives the lowest signaled index; wait-all needs all.
    #[test]
    fn any_and_all() {
        let t = EventTable::new();
        let e: Vec<usize> = (0..4).map(|_| t.create()).collect();
        t.set(e[3]).unwrap();
        t.set(e[1]).unwrap();
        let soon = Some(Instant::now() + Duration::from_millis(20));
        assert_eq!(t.wait(&e, false, soon, false), Ok(WaitResult::Signaled(1)));
        assert_eq!(t.wait(&e, true, soon, false), Ok(WaitResult::Timeout));
        t.set(e[0]).unwrap();
        t.set(e[2]).unwrap();
        assert_eq!(t.wait(&e, true, None, false), Ok(WaitResult::Signaled(0)));
        assert!(t.is_set(e[0]).unwrap(), "waiting changes no state");
    }

    /// Conformance: 306 — an infinite wait returns when another thread sets the event.
    #[test]
    fn set_from_another_thread() {
        let t = EventTable::new();
        let e = t.create();
        let t2 = t.clone();
        let h = std::thread::spawn(move || t2.wait(&[e], false, None, false));
        std::thread::sleep(Duration::from_millis(30));
        t.set(e).unwrap();
        assert_eq!(h.join().unwrap(), Ok(WaitResult::Signaled(0)));
    }

    /// Conformance: 299 — a closed handle is WSA_INVALID_HANDLE everywhere, also for a waiter.
    #[test]
    fn closed_handles() {
        let t = EventTable::new();
        let e = t.create();
        let t2 = t.clone();
        let h = std::thread::spawn(move || t2.wait(&[e], false, None, false));
        std::thread::sleep(Duration::from_millis(30));
        t.close(e).unwrap();
        assert_eq!(h.join().unwrap(), Err(WsaError::WSA_INVALID_HANDLE));
        assert_eq!(t.set(e), Err(WsaError::WSA_INVALID_HANDLE));
        assert_eq!(t.reset(e), Err(WsaError::WSA_INVALID_HANDLE));
        assert_eq!(t.close(e), Err(WsaError::WSA_INVALID_HANDLE));
    }
}
