//! SIGINT and SIGTERM as a request to end: the first asks for a graceful end, a second one for
//! an immediate one.
//!
//! [`Interrupts::install`] takes both signals over (with `signal-hook`) for as long as the value
//! lives; the command then looks at [`first`](Interrupts::first) where it can finish gracefully
//! (drain, leave groups, close connections, remove files) and at
//! [`second`](Interrupts::second) inside that drain, to give up on it. Nothing happens by
//! itself: a command that never looks is not interrupted at all, so install it only around code
//! that looks at least every few hundred milliseconds.
//!
//! When no `Interrupts` is live any more, SIGINT and SIGTERM get their default action back (the
//! process ends) — `signal-hook` cannot uninstall its handler, so a fallback action registered
//! with the first `install` does what the default would.
//!
//! ```ignore
//! let interrupts = Interrupts::install()?;
//! while !interrupts.first() {
//!     work();
//! }
//! while !interrupts.second() && !drained() {
//!     drain();
//! }
//! ```

use std::io;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::{flag, low_level, SigId};

/// The signals that ask the command to end.
const SIGNALS: [libc::c_int; 2] = [SIGINT, SIGTERM];

/// What the signal handlers of one [`Interrupts`] write: only atomics, so the handlers are
/// async-signal-safe.
#[derive(Debug, Default)]
struct Received {
    /// SIGINT and SIGTERM received since `install`, both counted alike.
    count: AtomicUsize,
    /// `count >= 1`, as a flag for APIs that poll one.
    first: AtomicBool,
}

impl Received {
    /// Runs inside the signal handler: no allocation, no lock, no panic.
    fn note(&self) {
        self.count.fetch_add(1, Ordering::SeqCst);
        self.first.store(true, Ordering::SeqCst);
    }
}

/// Book-keeping shared by every `Interrupts` of the process (signal dispositions are
/// per process).
#[derive(Debug)]
struct Registry {
    /// How many `Interrupts` are live.
    live: usize,
    /// Whether the fallback actions are registered.
    fallback: bool,
}

static REGISTRY: Mutex<Registry> = Mutex::new(Registry {
    live: 0,
    fallback: false,
});

/// Read by the fallback actions: true when no `Interrupts` is live, so SIGINT and SIGTERM do
/// what their default action does (end the process).
static DEFAULT_ACTION: AtomicBool = AtomicBool::new(true);

/// SIGINT and SIGTERM, counted from the moment of [`install`](Self::install) until the value is
/// dropped. See the module docs.
#[derive(Debug)]
pub(crate) struct Interrupts {
    received: Arc<Received>,
    ids: Vec<SigId>,
}

impl Interrupts {
    /// Starts counting SIGINT and SIGTERM; they no longer end the process until this value is
    /// dropped. Several may be live at once: each counts every signal.
    ///
    /// # Errors
    /// Installing a signal handler failed (`sigaction`).
    pub(crate) fn install() -> io::Result<Interrupts> {
        let mut registry = REGISTRY.lock().unwrap_or_else(PoisonError::into_inner);
        if !registry.fallback {
            // Registered before any counter, so the fallback runs first; it does nothing while
            // an `Interrupts` is live.
            for signal in SIGNALS {
                flag::register_conditional_default(signal, &DEFAULT_ACTION)?;
            }
            registry.fallback = true;
        }
        let received = Arc::new(Received::default());
        let mut ids = Vec::with_capacity(SIGNALS.len());
        for signal in SIGNALS {
            let received = Arc::clone(&received);
            // SAFETY: the action only does two atomic operations on memory its own `Arc` keeps
            // alive: it allocates nothing, takes no lock and cannot panic, so it is
            // async-signal-safe as `register` requires.
            #[allow(unsafe_code)]
            let id = unsafe { low_level::register(signal, move || received.note()) };
            match id {
                Ok(id) => ids.push(id),
                Err(e) => {
                    for id in ids {
                        low_level::unregister(id);
                    }
                    return Err(e);
                }
            }
        }
        registry.live += 1;
        DEFAULT_ACTION.store(false, Ordering::SeqCst);
        Ok(Interrupts { received, ids })
    }

    /// A first SIGINT or SIGTERM arrived: finish gracefully.
    pub(crate) fn first(&self) -> bool {
        self.received.first.load(Ordering::SeqCst)
    }

    /// A second one arrived (SIGINT and SIGTERM count alike): stop at once, drop what is left.
    #[cfg_attr(
        not(test),
        expect(
            dead_code,
            reason = "for the graceful end of send and mcast, once Stack::shutdown exists"
        )
    )]
    pub(crate) fn second(&self) -> bool {
        self.received.count.load(Ordering::SeqCst) >= 2
    }

    /// SIGINT and SIGTERM received so far (both count alike).
    pub(crate) fn count(&self) -> usize {
        self.received.count.load(Ordering::SeqCst)
    }

    /// The flag behind [`first`](Self::first), for APIs that poll an `AtomicBool`
    /// (`UnixSwitch::run`).
    pub(crate) fn first_flag(&self) -> &AtomicBool {
        &self.received.first
    }
}

impl Drop for Interrupts {
    fn drop(&mut self) {
        let mut registry = REGISTRY.lock().unwrap_or_else(PoisonError::into_inner);
        registry.live -= 1;
        if registry.live == 0 {
            DEFAULT_ACTION.store(true, Ordering::SeqCst);
        }
        for id in self.ids.drain(..) {
            low_level::unregister(id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The tests raise real signals in this process: one at a time, or a test would count
    /// another's.
    static SERIAL: Mutex<()> = Mutex::new(());

    /// Sends `signal` to this thread; its handlers have run when this returns.
    fn raise(signal: libc::c_int) {
        low_level::raise(signal).expect("raise");
    }

    #[test]
    fn first_then_second() {
        let _serial = SERIAL.lock().unwrap_or_else(PoisonError::into_inner);
        let interrupts = Interrupts::install().expect("install");
        assert!(!interrupts.first() && !interrupts.second());
        assert!(!interrupts.first_flag().load(Ordering::SeqCst));

        raise(SIGTERM);
        assert!(interrupts.first(), "a SIGTERM is a first interrupt");
        assert!(interrupts.first_flag().load(Ordering::SeqCst));
        assert!(!interrupts.second());

        raise(SIGINT);
        assert!(interrupts.second(), "SIGINT after SIGTERM is the second");
        raise(SIGINT);
        assert!(
            interrupts.first() && interrupts.second(),
            "a third changes nothing"
        );
    }

    #[test]
    fn two_sigints_are_first_and_second() {
        let _serial = SERIAL.lock().unwrap_or_else(PoisonError::into_inner);
        let interrupts = Interrupts::install().expect("install");
        raise(SIGINT);
        assert!(interrupts.first() && !interrupts.second());
        raise(SIGINT);
        assert!(interrupts.second());
    }

    #[test]
    fn a_new_install_counts_from_zero_and_every_live_one_counts() {
        let _serial = SERIAL.lock().unwrap_or_else(PoisonError::into_inner);
        let old = Interrupts::install().expect("install");
        raise(SIGTERM);
        raise(SIGTERM);
        assert!(old.second());

        let new = Interrupts::install().expect("install");
        assert!(!new.first(), "signals before install do not count");
        raise(SIGINT);
        assert!(new.first() && !new.second());
        drop(old);
        raise(SIGINT);
        assert!(new.second(), "the remaining one still counts");
    }

    #[test]
    fn the_default_action_returns_when_none_is_live() {
        let _serial = SERIAL.lock().unwrap_or_else(PoisonError::into_inner);
        let a = Interrupts::install().expect("install");
        let b = Interrupts::install().expect("install");
        assert!(!DEFAULT_ACTION.load(Ordering::SeqCst));
        drop(a);
        assert!(!DEFAULT_ACTION.load(Ordering::SeqCst), "b is still live");
        drop(b);
        // Not raised here: the default action would end the test process.
        assert!(DEFAULT_ACTION.load(Ordering::SeqCst));
    }
}
