//! The driver: what moves a sans-IO engine — the link, the clock, the waker and (on the system
//! clock) the owner thread — and the [`Stack`] handle applications hold.
//!
//! Read first: DESIGN.md "stack: the engine and its driver". The engine (`crate::engine`) takes
//! frames and `now` and answers frames and when to be called next; it reads no clock, opens no
//! descriptor and starts no thread. The [`Driver`] does all three:
//!
//! 1. reads a bounded batch of frames from the link (`RX_BATCH`);
//! 2. runs one engine pass at the clock's `now`, then hands the engine's frames to the link — a
//!    frame the link refuses is kept and offered again, never dropped;
//! 3. wakes the application threads waiting on the stack and says when it next wants to run:
//!    the earliest of the engine's deadline and the link's own `poll_at`.
//!
//! On the [`SystemClock`] a thread (`ws2-stack`) owns the driver and sleeps on the link's
//! descriptor, the waker and that deadline. On a [`VirtualClock`] there is no thread: a test
//! holds the `Driver` (from [`Stack::with_driver`]) and calls [`Driver::step`], moving the clock
//! to the earliest deadline of all its drivers (`ws2_tests::sim`).
//!
//! # The graceful end
//! Dropping the last `Stack` handle or calling [`Stack::shutdown`] ends the node gracefully
//! (`engine::drain`): every socket closes as `closesocket` closes it, and the driver keeps
//! running until shaped datagrams have left at their rate, IGMP leaves are out and TCP closes
//! are acknowledged — or until the deadline (`StackConfig::drain_timeout`, or the one given to
//! `shutdown`) or [`Stack::cut_short`] ends it at once. [`DrainReport`] says which, and what was
//! dropped.

mod clock;
mod sys;

pub use clock::{Clock, SystemClock, VirtualClock};

use std::collections::VecDeque;
use std::io;
use std::net::Ipv4Addr;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use ws2_tap::{Link, LinkStats};

use crate::config::StackConfig;
use crate::engine::{split_seed, Dropped, Engine, EngineStats};

/// Frames read from the link in one pass before the engine runs (bounded work per pass).
const RX_BATCH: usize = 128;
/// How long the driver naps when the engine asks for an immediate pass that achieves nothing.
const IDLE_NAP: Duration = Duration::from_micros(500);
/// How often the driver asks the link whether it has carrier (`NetworkAvailability`).
const CARRIER_CHECK: Duration = Duration::from_millis(250);
/// The longest the owner thread sleeps without a deadline.
const MAX_SLEEP: Duration = Duration::from_millis(500);
/// How often a driver whose link refused frames offers them again.
const LINK_RETRY: Duration = Duration::from_millis(1);
/// How long a link may fail every receive and send (no success between) before the node ends
/// with its error: a TAP that was deleted, a `ws2 switch` that went away.
const LINK_FAILURE_TIME: Duration = Duration::from_secs(1);

/// How a stack's graceful end went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DrainReport {
    /// Whether everything applications handed over left before the deadline.
    pub complete: bool,
    /// How long the drain took.
    pub elapsed: Duration,
    /// What was dropped when the deadline (or a second interruption) cut the drain short, or
    /// the link failed.
    pub dropped: Dropped,
    /// Why the node ended by itself: its link failed (the error it kept returning). Calls on
    /// the stack then fail `WSAENETDOWN`.
    pub link_error: Option<String>,
}

impl std::fmt::Display for DrainReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let secs = self.elapsed.as_secs_f64();
        if let Some(e) = &self.link_error {
            return write!(f, "stack ended: its link failed ({e}); {}", self.dropped);
        }
        if self.complete {
            write!(f, "stack drained in {secs:.3} s")
        } else {
            write!(
                f,
                "stack drain cut short after {secs:.3} s: {}",
                self.dropped
            )
        }
    }
}

/// What the driver, the handles and the waiting application threads share.
struct Inner {
    core: Mutex<Engine>,
    /// The core's count of watched sockets.
    watched: Arc<AtomicUsize>,
    /// Notified after every pass of the driver.
    changed: Condvar,
    waker: sys::Waker,
    clock: Arc<dyn Clock>,
    /// The seed all of the node's randomness comes from.
    seed: u64,
    /// The node is to end: its last handle went, or `shutdown` was called.
    ending: AtomicBool,
    /// The drain's deadline, when `shutdown` gave one.
    deadline: Mutex<Option<Instant>>,
    /// End at once, dropping what has not left.
    cut: AtomicBool,
    /// How the end went, once the driver finished.
    report: Mutex<Option<DrainReport>>,
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, Engine> {
        // A panic while holding the lock is a bug already reported; keep serving.
        self.core.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn finished(&self) -> bool {
        lock(&self.report).is_some()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Ends the node when the last `Stack` clone goes away: starts the drain and, on the system
/// clock, waits for the owner thread to finish it.
struct Owner {
    inner: Arc<Inner>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Drop for Owner {
    fn drop(&mut self) {
        self.inner.ending.store(true, Ordering::SeqCst);
        self.inner.waker.wake();
        if let Some(t) = lock(&self.thread).take() {
            let _ = t.join();
        }
    }
}

/// One network node: a link, addresses, smoltcp and the socket table, run by one driver.
///
/// `Stack` is a cheap handle; clones share the node, and the node ends gracefully when the
/// last clone is dropped (see [`Stack::shutdown`]).
///
/// # Examples
/// ```
/// use ws2_stack::{Stack, StackConfig};
/// use ws2_tap::VirtualSwitch;
///
/// let switch = VirtualSwitch::new(1);
/// let stack = Stack::new(StackConfig::new("10.0.0.1/24".parse()?), switch.port())?;
/// assert_eq!(stack.config().addrs[0].to_string(), "10.0.0.1/24");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct Stack {
    inner: Arc<Inner>,
    owner: Arc<Owner>,
}

impl std::fmt::Debug for Stack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stack")
            .field("addrs", &self.config().addrs)
            .field("seed", &self.inner.seed)
            .finish_non_exhaustive()
    }
}

/// A seed for a stack whose configuration has none: the wall clock, the process id and a
/// per-process counter, mixed (two stacks of one process never share a seed).
fn fresh_seed() -> u64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let wall = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    split_seed(wall ^ (u64::from(std::process::id()) << 32), n)
}

impl Stack {
    /// Starts a node on `link` with `config`, on the system clock, driven by its own thread.
    /// Fails if `config` has no address or the waker cannot be made.
    pub fn new(config: StackConfig, link: impl Link + 'static) -> io::Result<Stack> {
        Stack::from_box(config, Box::new(link))
    }

    /// [`Stack::new`] for a link chosen at run time.
    pub fn from_box(config: StackConfig, link: Box<dyn Link>) -> io::Result<Stack> {
        let (stack, driver) = Stack::build(config, link, Arc::new(SystemClock))?;
        let thread = std::thread::Builder::new()
            .name("ws2-stack".into())
            .spawn(move || driver.run())?;
        *lock(&stack.owner.thread) = Some(thread);
        Ok(stack)
    }

    /// A node with no thread of its own: the caller moves it by calling [`Driver::step`]. This
    /// is how a test runs stacks on a [`VirtualClock`] (blocking calls then cannot complete:
    /// use non-blocking sockets and step the drivers).
    pub fn with_driver(
        config: StackConfig,
        link: Box<dyn Link>,
        clock: Arc<dyn Clock>,
    ) -> io::Result<(Stack, Driver)> {
        Stack::build(config, link, clock)
    }

    fn build(
        mut config: StackConfig,
        link: Box<dyn Link>,
        clock: Arc<dyn Clock>,
    ) -> io::Result<(Stack, Driver)> {
        if config.addrs.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "a stack needs an address",
            ));
        }
        let seed = *config.seed.get_or_insert_with(fresh_seed);
        let now = clock.now();
        let core = Engine::new(config, seed, now);
        let joins_waiting = core.mcast_joins_waiting();
        let inner = Arc::new(Inner {
            watched: core.watched_count(),
            core: Mutex::new(core),
            changed: Condvar::new(),
            waker: sys::Waker::new()?,
            clock,
            seed,
            ending: AtomicBool::new(false),
            deadline: Mutex::new(None),
            cut: AtomicBool::new(false),
            report: Mutex::new(None),
        });
        let driver = Driver {
            inner: inner.clone(),
            link,
            rx: Vec::with_capacity(RX_BATCH),
            out: VecDeque::new(),
            spare: Vec::new(),
            moved: 0,
            errors: 0,
            carrier: None,
            carrier_checked: now,
            link_sent: 0,
            joins_waiting,
            drain: None,
            failing: None,
        };
        let owner = Arc::new(Owner {
            inner: inner.clone(),
            thread: Mutex::new(None),
        });
        Ok((Stack { inner, owner }, driver))
    }

    /// The configuration the stack runs with (its `seed` filled in).
    pub fn config(&self) -> StackConfig {
        self.lock().config().clone()
    }

    /// The seed all of this node's randomness (ephemeral ports, TCP initial sequence numbers,
    /// IGMP delays) comes from: `StackConfig::seed`, or the one drawn when it had none. The
    /// same seed on the same input replays a run.
    pub fn seed(&self) -> u64 {
        self.inner.seed
    }

    /// The clock the node runs on.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.inner.clock
    }

    /// Engine counters.
    pub fn stats(&self) -> EngineStats {
        self.lock().stats()
    }

    /// The link's counters.
    pub fn link_stats(&self) -> LinkStats {
        self.lock().link_stats()
    }

    /// The multicast groups the interface is a member of (the merged state of every socket's
    /// memberships, RFC 3376 §3.2).
    pub fn multicast_groups(&self) -> Vec<Ipv4Addr> {
        self.lock().mcast_groups()
    }

    /// Ends the node gracefully and waits for it: every socket is closed as `closesocket`
    /// closes it, and what applications handed over still leaves — shaped datagrams at their
    /// flow's rate, IGMP leaves and state changes, TCP data and FIN per `SO_LINGER` — for at
    /// most `timeout`, after which the rest is dropped (RST for unfinished connections). Another
    /// thread may end it at once with [`Stack::cut_short`] (a second Ctrl-C).
    ///
    /// Dropping the last handle does the same with `StackConfig::drain_timeout`. Calls on the
    /// stack afterwards move nothing; blocking calls return as timed out.
    ///
    /// # Errors
    /// On a stack from [`Stack::with_driver`] this only starts the drain (the caller steps the
    /// driver to its end and reads [`Driver::report`]) and fails `WouldBlock` while it runs.
    pub fn shutdown(&self, timeout: Duration) -> io::Result<DrainReport> {
        self.begin_shutdown(timeout);
        if let Some(t) = lock(&self.owner.thread).take() {
            let _ = t.join();
        }
        let mut report = lock(&self.inner.report);
        if self.inner.clock.is_virtual() {
            return report.clone().ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::WouldBlock,
                    "the stack is draining: step its driver",
                )
            });
        }
        // Another thread joined the owner thread: wait for its report.
        loop {
            if let Some(r) = report.as_ref() {
                return Ok(r.clone());
            }
            report = match self.inner.changed.wait_timeout(report, MAX_SLEEP) {
                Ok((g, _)) => g,
                Err(e) => e.into_inner().0,
            };
        }
    }

    /// Starts the graceful end (see [`Stack::shutdown`]) without waiting for it.
    pub fn begin_shutdown(&self, timeout: Duration) {
        {
            let mut deadline = lock(&self.inner.deadline);
            if deadline.is_none() {
                *deadline = Some(self.inner.clock.now() + timeout);
            }
        }
        self.inner.ending.store(true, Ordering::SeqCst);
        self.inner.waker.wake();
    }

    /// Ends a drain at once: what has not left is dropped (and said in the [`DrainReport`]).
    pub fn cut_short(&self) {
        self.inner.cut.store(true, Ordering::SeqCst);
        self.inner.ending.store(true, Ordering::SeqCst);
        self.inner.waker.wake();
    }

    /// How the graceful end went, once it is over.
    pub fn drain_report(&self) -> Option<DrainReport> {
        lock(&self.inner.report).clone()
    }

    fn lock(&self) -> MutexGuard<'_, Engine> {
        self.inner.lock()
    }

    /// Runs `f` on the core at the clock's `now` and wakes the driver to act on what it
    /// changed.
    pub(crate) fn with<R>(&self, f: impl FnOnce(&mut Engine) -> R) -> R {
        let mut core = self.lock();
        core.enter(self.inner.clock.now(), true);
        let r = f(&mut core);
        core.take_wake();
        drop(core);
        self.inner.waker.wake();
        r
    }

    /// Sets the bandwidth QoS reservations may use on the link, in bytes/s (D-14). Grants that
    /// no longer fit are revoked (those sockets fall back to best effort) and their owners get
    /// `FD_QOS`.
    pub fn set_qos_capacity(&self, bytes_per_second: u64) {
        self.with(|core| core.qos_set_capacity(bytes_per_second));
    }

    /// Declares the link usable or not (carrier up or down): `NetworkAvailability` in every
    /// flowspec follows, and every socket gets `FD_QOS` (group members `FD_GROUP_QOS`).
    pub fn set_link_available(&self, available: bool) {
        self.with(|core| core.qos_set_available(available));
    }

    /// Whether any socket has a notification registration or overlapped operations.
    pub(crate) fn any_watched(&self) -> bool {
        self.inner.watched.load(Ordering::Relaxed) > 0
    }

    /// Runs `f` on the core without waking the driver (for calls that only read, or act on
    /// the socket table alone).
    pub(crate) fn with_quiet<R>(&self, f: impl FnOnce(&mut Engine) -> R) -> R {
        let mut core = self.lock();
        core.enter(self.inner.clock.now(), false);
        let r = f(&mut core);
        let wake = core.take_wake();
        drop(core);
        if wake {
            self.inner.waker.wake();
        }
        r
    }

    /// Runs `f` until it returns `Some`, waiting for the driver between tries; `None` if
    /// `deadline` passes first, or the node has ended.
    pub(crate) fn block_on<R>(
        &self,
        deadline: Option<Instant>,
        mut f: impl FnMut(&mut Engine) -> Option<R>,
    ) -> Option<R> {
        let mut core = self.lock();
        loop {
            core.enter(self.inner.clock.now(), false);
            let done = f(&mut core);
            if core.take_wake() {
                self.inner.waker.wake();
            }
            if let Some(r) = done {
                return Some(r);
            }
            if self.inner.finished() {
                return None;
            }
            let wait = match deadline {
                Some(d) => {
                    let left = d.saturating_duration_since(self.inner.clock.now());
                    if left.is_zero() {
                        return None;
                    }
                    left.min(Duration::from_millis(200))
                }
                None => Duration::from_millis(200),
            };
            core = match self.inner.changed.wait_timeout(core, wait) {
                Ok((g, _)) => g,
                Err(e) => e.into_inner().0,
            };
        }
    }
}

/// What moves one node: its link, and the frames between the link and the engine.
///
/// On the system clock a `Stack` owns its driver on a thread; [`Stack::with_driver`] hands it to
/// the caller instead, who calls [`step`](Driver::step) whenever its time comes.
pub struct Driver {
    inner: Arc<Inner>,
    link: Box<dyn Link>,
    /// Frames read from the link, for the next pass.
    rx: Vec<Vec<u8>>,
    /// Frames for the link, in order; a refused frame stays at the front.
    out: VecDeque<Vec<u8>>,
    spare: Vec<Vec<u8>>,
    /// Frames moved and link errors since the engine's counters were last updated.
    moved: u64,
    errors: u64,
    /// The link's carrier, checked every CARRIER_CHECK: NetworkAvailability follows it.
    carrier: Option<bool>,
    carrier_checked: Instant,
    /// Frames the link accepted in all, and whether a multicast join waits to hear of them.
    link_sent: u64,
    joins_waiting: Arc<AtomicBool>,
    /// When the drain began, and its deadline.
    drain: Option<(Instant, Instant)>,
    /// Since when every link operation failed, and the last error.
    failing: Option<(Instant, String)>,
}

impl std::fmt::Debug for Driver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Driver")
            .field("seed", &self.inner.seed)
            .field("tx_backlog", &self.out.len())
            .field("finished", &self.is_finished())
            .finish_non_exhaustive()
    }
}

impl Driver {
    /// Whether the node has ended (its drain is over).
    pub fn is_finished(&self) -> bool {
        self.inner.finished()
    }

    /// How the graceful end went, once it is over.
    pub fn report(&self) -> Option<DrainReport> {
        lock(&self.inner.report).clone()
    }

    /// The link, e.g. to read a `PcapTee`'s counters.
    pub fn link(&self) -> &dyn Link {
        &*self.link
    }

    /// One pass at the clock's `now`: frames from the link into the engine, the engine's
    /// frames to the link. Returns when the driver wants to run again (at or before `now`:
    /// at once), `None` for "only when a frame arrives or an application acts".
    pub fn step(&mut self) -> Option<Instant> {
        if self.is_finished() {
            return None;
        }
        let now = self.inner.clock.now();
        if self.inner.ending.load(Ordering::SeqCst) && self.drain_step(now) {
            return None;
        }
        let mtu = self.link.mtu();
        for _ in 0..RX_BATCH {
            let mut buf = self.spare.pop().unwrap_or_default();
            buf.resize(mtu + 32, 0);
            match self.link.recv(&mut buf, now) {
                Ok(Some(n)) => {
                    buf.truncate(n);
                    self.rx.push(buf);
                    self.failing = None;
                }
                Ok(None) => {
                    self.spare.push(buf);
                    break;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => {
                    self.errors += 1;
                    self.link_failed(now, &e);
                    break;
                }
            }
        }
        if now.saturating_duration_since(self.carrier_checked) >= CARRIER_CHECK {
            self.carrier_checked = now;
            let up = self.link.carrier();
            if up.is_some() && up != self.carrier {
                self.carrier = up;
                self.inner.lock().qos_set_available(up.unwrap_or(true));
            }
        }
        let read = self.rx.len() as u64;
        let (mut delay, probed) = {
            let mut core = self.inner.lock();
            core.note_link(
                self.moved + read,
                self.errors,
                self.out.len() as u64,
                self.link.stats(),
            );
            (self.moved, self.errors) = (0, 0);
            core.pass(now, &mut self.rx, &mut self.out)
        };
        self.inner.changed.notify_all();
        let sent = self.send_out(now);
        self.moved += sent;
        if self.end_if_link_failed(now) {
            return None;
        }
        if self.joins_waiting.load(Ordering::Relaxed) {
            self.inner.lock().mcast_link_progress(self.link_sent);
            self.inner.changed.notify_all();
        }
        if let Some(at) = self.link.poll_at() {
            let d = at.saturating_duration_since(now);
            delay = Some(delay.map_or(d, |x| x.min(d)));
        }
        if delay == Some(Duration::ZERO) && read + sent == 0 && !probed {
            // The engine asked to run at once but this pass moved no frame: a socket that
            // believes it can send while its dispatch declines would make this a busy loop.
            // Application calls wake the driver anyway, so a short nap loses nothing.
            self.inner.lock().note_idle_nap();
            delay = Some(IDLE_NAP);
        }
        if !self.out.is_empty() {
            // The link refused frames: try again soon rather than wait for ingress.
            delay = Some(delay.map_or(LINK_RETRY, |x| x.min(LINK_RETRY)));
        }
        if self.drain.is_some() && self.out.is_empty() && self.inner.lock().drained() {
            // This pass finished the drain: end now, not after the next wake-up.
            return Some(now);
        }
        delay.map(|d| now + d)
    }

    /// Offers the engine's frames to the link in order; returns how many it took.
    fn send_out(&mut self, now: Instant) -> u64 {
        let mut sent = 0u64;
        while let Some(frame) = self.out.pop_front() {
            match self.link.send(&frame, now) {
                Ok(()) => {
                    sent += 1;
                    self.failing = None;
                    if self.spare.len() < 256 {
                        self.spare.push(frame);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.out.push_front(frame);
                    break;
                }
                // A frame the link failed on (too long, device gone) would fail again.
                Err(e) => {
                    self.errors += 1;
                    // A frame too long for the link is that frame's fault, not the link's.
                    if !matches!(e.raw_os_error(), Some(libc::EMSGSIZE | libc::EINVAL)) {
                        self.link_failed(now, &e);
                    }
                }
            }
        }
        self.link_sent += sent;
        sent
    }

    /// Notes a failed link operation at `now`.
    fn link_failed(&mut self, now: Instant, e: &io::Error) {
        let since = self.failing.as_ref().map_or(now, |(t, _)| *t);
        self.failing = Some((since, e.to_string()));
    }

    /// Ends the node if its link has failed for `LINK_FAILURE_TIME`: everything is dropped,
    /// calls fail `WSAENETDOWN` from now on, and the report says why. Returns whether it ended.
    fn end_if_link_failed(&mut self, now: Instant) -> bool {
        let Some((since, error)) = &self.failing else {
            return false;
        };
        if now.saturating_duration_since(*since) < LINK_FAILURE_TIME {
            return false;
        }
        if self.link.carrier() == Some(false) {
            // A link without carrier (a TAP set down) is down, not gone: the node keeps
            // running, and NetworkAvailability already says 0.
            self.failing = None;
            return false;
        }
        let error = error.clone();
        let dropped = {
            let mut core = self.inner.lock();
            core.enter(now, false);
            let mut dropped = core.fail(&error);
            dropped.frames += self.out.len() as u64;
            dropped
        };
        self.out.clear();
        *lock(&self.inner.report) = Some(DrainReport {
            complete: false,
            elapsed: Duration::ZERO,
            dropped,
            link_error: Some(error),
        });
        self.inner.changed.notify_all();
        true
    }

    /// The graceful end, checked before every pass once the node is ending. Returns whether
    /// the node has finished.
    fn drain_step(&mut self, now: Instant) -> bool {
        let mut core = self.inner.lock();
        let (began, deadline) = *self.drain.get_or_insert_with(|| {
            core.enter(now, false);
            core.begin_drain();
            let deadline =
                lock(&self.inner.deadline).unwrap_or_else(|| now + core.config().drain_timeout);
            (now, deadline)
        });
        let (complete, dropped) = if core.drained() && self.out.is_empty() {
            (true, Dropped::default())
        } else if now >= deadline || self.inner.cut.load(Ordering::SeqCst) {
            // Out of time: drop what is left and send the resets, in one last pass.
            core.enter(now, false);
            let mut dropped = core.abort_drain();
            dropped.frames += self.out.len() as u64;
            self.out.clear();
            core.pass(now, &mut self.rx, &mut self.out);
            drop(core);
            self.send_out(now);
            (false, dropped)
        } else {
            return false;
        };
        *lock(&self.inner.report) = Some(DrainReport {
            complete,
            elapsed: now.saturating_duration_since(began),
            dropped,
            link_error: None,
        });
        self.inner.changed.notify_all();
        true
    }

    /// The owner thread: steps the driver and sleeps on the link's descriptor, the waker and
    /// the next deadline until the node has ended. Link I/O happens outside the core's lock,
    /// so application threads copy data while frames move.
    fn run(mut self) {
        // Shaped frames leave on deadlines tens of microseconds apart: wake on time.
        sys::set_timer_slack(1_000);
        let fds = [self.link.as_raw_fd(), self.inner.waker.as_raw_fd()];
        loop {
            let next = self.step();
            if self.is_finished() {
                return;
            }
            let now = self.inner.clock.now();
            let timeout = next.map_or(MAX_SLEEP, |t| t.saturating_duration_since(now));
            if timeout.is_zero() {
                continue;
            }
            match sys::wait_readable(&fds, Some(timeout.min(MAX_SLEEP))) {
                Ok([_, woken]) => {
                    if woken {
                        self.inner.waker.drain();
                    }
                }
                Err(_) => std::thread::sleep(LINK_RETRY),
            }
        }
    }
}
