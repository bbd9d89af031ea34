//! A counting global allocator: live and peak heap bytes of the current thread.
//!
//! A fuzz run steps every stack of its LAN on the thread that called [`crate::run`] (virtual
//! time, no driver threads), so what that thread allocated and has not freed is the LAN's
//! memory. Counting per thread keeps parallel `cargo test` threads out of each other's figures.
//! A binary opts in with `#[global_allocator] static A: ws2_fuzz::alloc::Counting = Counting;`;
//! without it [`installed`] is false and the harness skips the memory bound.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicBool, Ordering};

/// The system allocator, counting what each thread holds.
#[derive(Debug)]
pub struct Counting;

static INSTALLED: AtomicBool = AtomicBool::new(false);

thread_local! {
    /// Bytes allocated minus bytes freed on this thread.
    static LIVE: Cell<isize> = const { Cell::new(0) };
    /// The highest `LIVE` since the last [`reset_peak`].
    static PEAK: Cell<isize> = const { Cell::new(0) };
}

fn add(delta: isize) {
    // `try_with`: the thread's slots may be gone while it exits; those bytes are not counted.
    let _ = LIVE.try_with(|live| {
        let now = live.get() + delta;
        live.set(now);
        let _ = PEAK.try_with(|peak| {
            if now > peak.get() {
                peak.set(now);
            }
        });
    });
}

// SAFETY: every call is forwarded to `System` unchanged; the counters are plain thread-local
// cells with const initialisers (no allocation, no destructor), so counting cannot recurse.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = System.alloc(layout);
        if !p.is_null() {
            INSTALLED.store(true, Ordering::Relaxed);
            add(layout.size() as isize);
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = System.alloc_zeroed(layout);
        if !p.is_null() {
            INSTALLED.store(true, Ordering::Relaxed);
            add(layout.size() as isize);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout);
        add(-(layout.size() as isize));
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = System.realloc(ptr, layout, new_size);
        if !p.is_null() {
            add(new_size as isize - layout.size() as isize);
        }
        p
    }
}

/// Whether [`Counting`] is this binary's global allocator (it has counted something).
pub fn installed() -> bool {
    INSTALLED.load(Ordering::Relaxed)
}

/// Bytes this thread holds now.
pub fn live() -> isize {
    LIVE.with(Cell::get)
}

/// Starts a new peak at the current live figure.
pub fn reset_peak() {
    let now = live();
    PEAK.with(|p| p.set(now));
}

/// The most this thread held since the last [`reset_peak`].
pub fn peak() -> isize {
    PEAK.with(Cell::get)
}
