//! [`VirtualSwitch`]: an in-process learning Ethernet switch whose ports ([`SwitchPort`]) are
//! [`Link`]s, with seeded, per-port [`Impairments`].
//!
//! Contract in short (in full on [`VirtualSwitch`] and [`SwitchPort`]): switching happens inside
//! the sender's `send`; a port's eventfd is readable whenever a frame was queued since its last
//! `Ok(None)`, and `poll_at` says when a held-back frame comes due; impairment drops and queue
//! overflows (4096 frames) are counted in [`SwitchStats`], frames too long for the caller's
//! buffer in the port's `rx_dropped`.

mod impairments;
mod mac_table;

pub use impairments::Impairments;
pub(crate) use mac_table::MacTable;

use std::collections::VecDeque;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use impairments::Egress;

use crate::{sys, Link, LinkStats};

/// Most frames one port's receive queue holds; more are dropped and counted.
const QUEUE_LIMIT_FRAMES: usize = 4096;
/// Most bytes one port's receive queue holds; a frame that would pass it is dropped and
/// counted. The kernel's analogue is a device's `txqueuelen` of 1000 frames (1.5 MB of
/// 1500-byte frames); 4 MiB holds 2,800 such frames or 64 of the largest (65,535 bytes).
const QUEUE_LIMIT_BYTES: usize = 4 << 20;
/// Shortest frame a port takes: an Ethernet header.
const MIN_FRAME_LEN: usize = 14;
/// Longest frame a port takes.
const MAX_FRAME_LEN: usize = 65535;

/// Counters of a [`VirtualSwitch`], over all ports since it was made.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SwitchStats {
    /// Frame copies queued to a receiving port (a frame flooded to three ports counts three
    /// times, a duplicated frame twice).
    pub forwarded: u64,
    /// Frames dropped by the `loss` impairment.
    pub dropped_loss: u64,
    /// Frames delivered twice by the `duplicate` impairment.
    pub duplicated: u64,
    /// Frames held back by the `reorder` impairment.
    pub reordered: u64,
    /// Frames with a bit flipped by the `corrupt` impairment.
    pub corrupted: u64,
    /// Frames tail-dropped because the port's rate-limited backlog passed `queue_limit_bytes`,
    /// or its receive queue already held 4096 frames or would pass 4 MiB.
    pub dropped_queue_full: u64,
    /// Frames whose unicast source MAC was not learned because the MAC table was full (4096
    /// entries); the frames themselves were forwarded.
    pub macs_not_learned: u64,
}

/// An in-process learning switch; any number of [`SwitchPort`]s plug in.
///
/// # Switching
/// Switching happens synchronously inside the sender's [`Link::send`]; there is no switch thread.
/// The switch learns `source MAC -> port` from every frame with a unicast source. A unicast frame
/// to a learned MAC goes to that port only; every other frame (broadcast, multicast, unknown
/// unicast, or a destination learned on the sender's own port) is flooded to all other ports.
/// Dropping a [`SwitchPort`] removes it and the MACs learned on it.
///
/// # Bounds
/// The MAC table ages an entry out 300 s after its MAC was last a source (the Linux bridge's
/// `ageing_time`) and holds at most 4096 entries: when full, a new source is not learned (its
/// frame is still forwarded, frames to it are flooded; counted in
/// [`SwitchStats::macs_not_learned`]). A port's receive queue holds at most 4096 frames and
/// 4 MiB; past either, frames are tail-dropped (`dropped_queue_full`).
///
/// All time comes from the `now` passed to `send` and `recv`, so a test can drive the switch on
/// virtual time. The handle is cheap to clone; all clones and ports share one switch.
///
/// ```
/// use std::time::Instant;
/// use ws2_tap::{Link, VirtualSwitch};
///
/// let switch = VirtualSwitch::new(7);
/// let (mut a, mut b) = (switch.port(), switch.port());
/// let mut frame = [0u8; 60];
/// frame[..6].copy_from_slice(&[0xff; 6]); // broadcast
/// frame[6..12].copy_from_slice(&[2, 0, 0, 0, 0, 1]);
/// let now = Instant::now();
/// a.send(&frame, now)?;
/// let mut buf = [0u8; 1518];
/// assert_eq!(b.recv(&mut buf, now)?, Some(60));
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone)]
pub struct VirtualSwitch {
    shared: Arc<Shared>,
}

struct Shared {
    seed: u64,
    state: Mutex<State>,
}

/// Everything `send` changes, under one lock (lock order: `State`, then a port's queue).
struct State {
    ports: Vec<PortEntry>,
    macs: MacTable<usize>,
    next_index: usize,
    stats: SwitchStats,
}

/// The switch's side of a port: its impairments and where its frames go.
struct PortEntry {
    index: usize,
    egress: Egress,
    rx: Arc<RxQueue>,
}

/// A port's receive queue, sorted by delivery time, and the eventfd that signals it.
struct RxQueue {
    frames: Mutex<Frames>,
    event: OwnedFd,
}

/// The frames of an [`RxQueue`] and their total length.
#[derive(Default)]
struct Frames {
    queue: VecDeque<(Instant, Vec<u8>)>,
    bytes: usize,
}

/// Locks `m`, ignoring poison: every critical section here leaves its data consistent.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl VirtualSwitch {
    /// A switch with no ports. `seed` seeds every port's impairment RNG (port `i` uses
    /// `seed ^ i`, ports numbered from 0 in order of creation).
    pub fn new(seed: u64) -> VirtualSwitch {
        let state = State {
            ports: Vec::new(),
            macs: MacTable::new(),
            next_index: 0,
            stats: SwitchStats::default(),
        };
        VirtualSwitch {
            shared: Arc::new(Shared {
                seed,
                state: Mutex::new(state),
            }),
        }
    }

    /// A new port without impairments.
    ///
    /// # Panics
    /// If the eventfd cannot be made (the process is out of descriptors); use
    /// [`try_port_with`](Self::try_port_with) to get the error instead.
    pub fn port(&self) -> SwitchPort {
        self.port_with(Impairments::default())
    }

    /// A new port whose received frames suffer `impairments`.
    ///
    /// # Panics
    /// As [`port`](Self::port).
    pub fn port_with(&self, impairments: Impairments) -> SwitchPort {
        match self.try_port_with(impairments) {
            Ok(port) => port,
            Err(e) => panic!("VirtualSwitch: cannot make a port's eventfd: {e}"),
        }
    }

    /// A new port whose received frames suffer `impairments`, or the error of making its eventfd.
    pub fn try_port_with(&self, impairments: Impairments) -> io::Result<SwitchPort> {
        let rx = Arc::new(RxQueue {
            frames: Mutex::new(Frames::default()),
            event: sys::eventfd()?,
        });
        let mut state = lock(&self.shared.state);
        let index = state.next_index;
        state.next_index += 1;
        let egress = Egress::new(impairments, self.shared.seed ^ index as u64);
        state.ports.push(PortEntry {
            index,
            egress,
            rx: rx.clone(),
        });
        Ok(SwitchPort {
            shared: self.shared.clone(),
            index,
            rx,
            stats: LinkStats::default(),
        })
    }

    /// The switch's counters.
    pub fn stats(&self) -> SwitchStats {
        lock(&self.shared.state).stats
    }

    /// How many ports are plugged in.
    pub fn port_count(&self) -> usize {
        lock(&self.shared.state).ports.len()
    }

    /// How many MACs the switch has learned (aged entries not yet swept included); never more
    /// than 4096.
    pub fn mac_count(&self) -> usize {
        lock(&self.shared.state).macs.len()
    }

    /// How many entries the MAC table has allocated room for: it stays near the cap however
    /// many sources are seen.
    pub fn mac_capacity(&self) -> usize {
        lock(&self.shared.state).macs.capacity()
    }
}

impl std::fmt::Debug for VirtualSwitch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = lock(&self.shared.state);
        f.debug_struct("VirtualSwitch")
            .field("seed", &self.shared.seed)
            .field("ports", &state.ports.len())
            .field("macs", &state.macs.len())
            .field("stats", &state.stats)
            .finish()
    }
}

impl RxQueue {
    /// Queues `frame` for delivery at `at`, after every frame due no later. False if full.
    fn push(&self, at: Instant, frame: Vec<u8>) -> bool {
        let mut frames = lock(&self.frames);
        if frames.queue.len() >= QUEUE_LIMIT_FRAMES
            || frames.bytes + frame.len() > QUEUE_LIMIT_BYTES
        {
            return false;
        }
        frames.bytes += frame.len();
        let pos = frames.queue.partition_point(|(t, _)| *t <= at);
        frames.queue.insert(pos, (at, frame));
        sys::eventfd_signal(self.event.as_fd());
        true
    }
}

/// One port of a [`VirtualSwitch`]; a [`Link`]. Dropping it unplugs it.
///
/// # Contract
/// - **Readiness.** Each port has a receive queue, ordered by delivery time, and an eventfd that
///   is signalled whenever a frame is queued. `recv(buf, now)` returns the first frame whose
///   delivery time is `<= now`. When it has nothing to return it drains the eventfd and looks at
///   the queue once more, so a frame queued meanwhile is never missed: the descriptor is
///   readable whenever a frame was queued since the last `Ok(None)`. A frame held back by delay,
///   rate or reordering makes no readiness of its own when it comes due: [`Link::poll_at`] says
///   when that is.
/// - **Sending.** `send` takes any frame of 14 to 65535 bytes and returns `Ok` even when an
///   impairment then drops it; anything shorter or longer is an `InvalidInput` error.
/// - **Dropped, and counted.** In [`SwitchStats`]: frames lost or tail-dropped by impairments,
///   and frames arriving at a queue that already holds 4096 frames or would pass 4 MiB
///   (`dropped_queue_full`). In the
///   port's [`LinkStats::rx_dropped`]: frames longer than the buffer given to `recv`.
///
/// All time comes from the `now` passed to `send` and `recv`, so a test can drive the switch on
/// virtual time. The handle is cheap to clone; all clones and ports share one switch.
pub struct SwitchPort {
    shared: Arc<Shared>,
    index: usize,
    rx: Arc<RxQueue>,
    stats: LinkStats,
}

impl SwitchPort {
    /// The port's number on its switch (0 for the first port made); its RNG seed is
    /// `seed ^ index`.
    pub fn index(&self) -> usize {
        self.index
    }

    /// Replaces the port's impairments from now on; frames already queued keep their times.
    pub fn set_impairments(&self, impairments: Impairments) {
        let mut state = lock(&self.shared.state);
        if let Some(entry) = state.ports.iter_mut().find(|p| p.index == self.index) {
            entry.egress.impairments = impairments;
        }
    }

    /// The port's impairments.
    pub fn impairments(&self) -> Impairments {
        let state = lock(&self.shared.state);
        state
            .ports
            .iter()
            .find(|p| p.index == self.index)
            .map(|p| p.egress.impairments.clone())
            .unwrap_or_default()
    }

    /// Pops the first frame due at `now` into `buf`, dropping (and counting) those too long.
    fn take(&mut self, buf: &mut [u8], now: Instant) -> Option<usize> {
        let mut frames = lock(&self.rx.frames);
        while frames.queue.front().is_some_and(|(at, _)| *at <= now) {
            let (_, frame) = frames.queue.pop_front()?;
            frames.bytes -= frame.len();
            if frame.len() > buf.len() {
                self.stats.rx_dropped += 1;
                continue;
            }
            buf[..frame.len()].copy_from_slice(&frame);
            self.stats.rx_frames += 1;
            self.stats.rx_bytes += frame.len() as u64;
            return Some(frame.len());
        }
        None
    }
}

impl Link for SwitchPort {
    fn recv(&mut self, buf: &mut [u8], now: Instant) -> io::Result<Option<usize>> {
        if let Some(n) = self.take(buf, now) {
            return Ok(Some(n));
        }
        // Drain first, then look again: a frame queued after the first look either is seen
        // now or signals the eventfd after the drain.
        sys::eventfd_drain(self.rx.event.as_fd());
        Ok(self.take(buf, now))
    }

    fn send(&mut self, frame: &[u8], now: Instant) -> io::Result<()> {
        if !(MIN_FRAME_LEN..=MAX_FRAME_LEN).contains(&frame.len()) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "frame of {} bytes; a switch port takes 14..=65535",
                    frame.len()
                ),
            ));
        }
        let mut dst = [0u8; 6];
        let mut src = [0u8; 6];
        dst.copy_from_slice(&frame[..6]);
        src.copy_from_slice(&frame[6..12]);
        let mut guard = lock(&self.shared.state);
        let State {
            ports, macs, stats, ..
        } = &mut *guard;
        let refused = macs.not_learned;
        macs.learn(src, &self.index, now);
        stats.macs_not_learned += macs.not_learned - refused;
        let learned = macs.lookup(&dst, now);
        let target = learned.filter(|&p| p != self.index);
        for entry in ports.iter_mut() {
            let wanted = match target {
                Some(p) => entry.index == p,
                None => entry.index != self.index,
            };
            if !wanted {
                continue;
            }
            let rx = &entry.rx;
            entry
                .egress
                .schedule(frame, now, stats, |at, data| rx.push(at, data));
        }
        drop(guard);
        self.stats.tx_frames += 1;
        self.stats.tx_bytes += frame.len() as u64;
        Ok(())
    }

    fn poll_at(&self) -> Option<Instant> {
        lock(&self.rx.frames).queue.front().map(|(at, _)| *at)
    }

    fn stats(&self) -> LinkStats {
        self.stats
    }
}

impl Drop for SwitchPort {
    fn drop(&mut self) {
        let mut state = lock(&self.shared.state);
        state.ports.retain(|p| p.index != self.index);
        state.macs.forget_port(&self.index);
    }
}

impl AsRawFd for SwitchPort {
    fn as_raw_fd(&self) -> RawFd {
        self.rx.event.as_raw_fd()
    }
}

impl AsFd for SwitchPort {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.rx.event.as_fd()
    }
}

impl std::fmt::Debug for SwitchPort {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SwitchPort")
            .field("index", &self.index)
            .field("queued", &lock(&self.rx.frames).queue.len())
            .field("stats", &self.stats)
            .finish()
    }
}

#[cfg(test)]
mod tests;
