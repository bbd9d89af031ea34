//! The `events` scenario: how fast the Winsock notification models tell an application that a
//! datagram arrived, and what a wait over 64 events costs, each beside Linux epoll on kernel
//! sockets measured in the same run.
//!
//! - `event_latency_*`: stack A sends a UDP datagram over an in-process `VirtualSwitch` to
//!   stack B, whose socket is registered with `WSAEventSelect(FD_READ)`; the time from just
//!   before A's `sendto` to B's thread returning from `WSAWaitForMultipleEvents` (B then takes
//!   the record with `WSAEnumNetworkEvents` and re-arms with `recv`, outside the measurement).
//! - `routine_latency_*`: the same, but B has an overlapped `WSARecvFrom` posted with a
//!   completion routine and waits alertably; the time until the routine runs.
//! - The anchor for both: a kernel UDP socket pair on 127.0.0.1, the time from `sendto` to the
//!   receiving thread's `epoll_wait` returning.
//! - `wait64_ns`: one `WSAWaitForMultipleEvents` over 64 events with the last signaled, time-out
//!   0; the anchor is `epoll_wait` with time-out 0 over 64 eventfds with the last readable.
//!
//! The three latencies are sampled in turn (a different one first in each round), with a short
//! pause before each sample, so all three see the same machine. Per run, p50 and p99 are taken
//! over `SAMPLES` samples of each; the figure is the median over runs. Lower is better
//! throughout. Only loopback and the in-process switch are used.

use std::net::SocketAddrV4;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use ws2_stack::winsock::*;
use ws2_stack::{Stack, StackConfig};
use ws2_tap::VirtualSwitch;

use super::tcp::{cidr, err, winsock};
use super::{median, Figure};

/// Latency samples of each kind per run (after the warm-up).
const SAMPLES: usize = 3000;
/// Samples of each kind taken and thrown away before the first run (ARP, first-touch costs).
const WARMUP: usize = 300;
/// The pause before every sample, so each one starts from idle waiters.
const PAUSE: Duration = Duration::from_micros(200);
/// Calls per `wait64` measurement.
const WAIT_CALLS: u32 = 100_000;
/// How long a receiver's wait lasts before it looks at the stop flag (ms).
const IDLE_MS: u32 = 50;
/// How long the sender waits for a receiver to report a wake-up.
const REPORT_TIMEOUT: Duration = Duration::from_secs(5);

const A_ADDR: &str = "10.0.0.1:7000";
const B_EVENT: &str = "10.0.0.2:7001";
const B_ROUTINE: &str = "10.0.0.2:7002";
const PAYLOAD: [u8; 32] = [0x5a; 32];
const EPOLL_BASELINE: &str = "kernel UDP lo, epoll_wait";

type Wake = mpsc::Sender<Instant>;
type ThreadResult = Result<(), String>;

pub(crate) fn run(runs: usize) -> Result<Vec<Figure>, String> {
    let mut latency = Latency::start()?;
    let measured = latency.measure(runs);
    let stopped = latency.stop();
    let (event, routine, epoll) = measured?;
    stopped?;
    let (mut ours64, mut base64) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        ours64.push(wait64_ours()?);
        base64.push(kernel::wait64()?);
    }
    let fig = |metric: &str, value, unit, baseline, baseline_value| Figure {
        scenario: "events",
        metric: metric.into(),
        value,
        unit,
        baseline,
        baseline_value,
    };
    let routine_baseline = "epoll_wait (same as event_*)";
    Ok(vec![
        fig("event_latency_p50", event.0, "µs", EPOLL_BASELINE, epoll.0),
        fig("event_latency_p99", event.1, "µs", EPOLL_BASELINE, epoll.1),
        fig(
            "routine_latency_p50",
            routine.0,
            "µs",
            routine_baseline,
            epoll.0,
        ),
        fig(
            "routine_latency_p99",
            routine.1,
            "µs",
            routine_baseline,
            epoll.1,
        ),
        fig(
            "wait64_ns",
            median(ours64),
            "ns",
            "epoll_wait, 64 eventfds, t/o 0",
            median(base64),
        ),
    ])
}

// ---- latency -------------------------------------------------------------------------------

/// One way of being told a datagram arrived: how to send it, and the receiving thread that
/// reports the instant it woke.
struct Probe {
    send: Box<dyn FnMut() -> Result<(), String>>,
    woke: mpsc::Receiver<Instant>,
    thread: Option<JoinHandle<ThreadResult>>,
}

impl Probe {
    /// Microseconds from just before the send to the receiver's wake-up.
    fn sample(&mut self) -> Result<f64, String> {
        let start = Instant::now();
        (self.send)()?;
        match self.woke.recv_timeout(REPORT_TIMEOUT) {
            Ok(end) => Ok(end.saturating_duration_since(start).as_secs_f64() * 1e6),
            Err(RecvTimeoutError::Timeout) => Err("no wake-up reported within 5 s".into()),
            Err(RecvTimeoutError::Disconnected) => Err(self.join()),
        }
    }

    /// Waits for the receiver to end; its error, if it had one.
    fn join(&mut self) -> String {
        match self.thread.take().map(JoinHandle::join) {
            Some(Ok(Err(e))) => e,
            Some(Err(_)) => "a receiver panicked".into(),
            _ => "the receiver stopped".into(),
        }
    }
}

/// The three probes, their stacks and the flag that stops their receivers.
struct Latency {
    probes: [Probe; 3],
    stop: Arc<AtomicBool>,
    _stacks: (Stack, Stack),
}

/// p50 and p99 in µs.
type Percentiles = (f64, f64);

impl Latency {
    fn start() -> Result<Latency, String> {
        let stop = Arc::new(AtomicBool::new(false));
        let switch = VirtualSwitch::new(1);
        let a = Stack::new(StackConfig::new(cidr("10.0.0.1/24")), switch.port())
            .map_err(|e| e.to_string())?;
        let b = Stack::new(StackConfig::new(cidr("10.0.0.2/24")), switch.port())
            .map_err(|e| e.to_string())?;
        let (wa, wb) = (winsock(&a)?, winsock(&b)?);
        let sender = udp_bound(&wa, A_ADDR)?;
        let event = udp_bound(&wb, B_EVENT)?;
        let routine = udp_bound(&wb, B_ROUTINE)?;
        let probes = [
            ours_probe(&wa, sender, B_EVENT, {
                let (ws, stop) = (wb.clone(), stop.clone());
                move |tx| event_receiver(&ws, event, &stop, &tx)
            })?,
            ours_probe(&wa, sender, B_ROUTINE, {
                let (ws, stop) = (wb.clone(), stop.clone());
                move |tx| routine_receiver(&ws, routine, &stop, &tx)
            })?,
            kernel::epoll_probe(stop.clone())?,
        ];
        Ok(Latency {
            probes,
            stop,
            _stacks: (a, b),
        })
    }

    /// Per-run percentiles of each probe, medians over `runs`: (event, routine, epoll).
    fn measure(&mut self, runs: usize) -> Result<(Percentiles, Percentiles, Percentiles), String> {
        self.rounds(WARMUP)?;
        let mut per_run: [Vec<Percentiles>; 3] = Default::default();
        for _ in 0..runs {
            let samples = self.rounds(SAMPLES)?;
            for (out, s) in per_run.iter_mut().zip(samples) {
                out.push(percentiles(s));
            }
        }
        let med = |v: &[Percentiles]| {
            (
                median(v.iter().map(|p| p.0).collect()),
                median(v.iter().map(|p| p.1).collect()),
            )
        };
        Ok((med(&per_run[0]), med(&per_run[1]), med(&per_run[2])))
    }

    /// `n` samples of every probe, taken in turn.
    fn rounds(&mut self, n: usize) -> Result<[Vec<f64>; 3], String> {
        let mut out: [Vec<f64>; 3] = Default::default();
        for i in 0..n {
            for k in 0..3 {
                let which = (i + k) % 3;
                thread::sleep(PAUSE);
                out[which].push(self.probes[which].sample()?);
            }
        }
        Ok(out)
    }

    /// Stops the receivers; the first error any of them had.
    fn stop(mut self) -> Result<(), String> {
        self.stop.store(true, Ordering::SeqCst);
        let mut first = Ok(());
        for p in &mut self.probes {
            if let Some(t) = p.thread.take() {
                let r = t
                    .join()
                    .unwrap_or_else(|_| Err("a receiver panicked".into()));
                if first.is_ok() {
                    first = r;
                }
            }
        }
        first
    }
}

/// Nearest-rank p50 and p99.
fn percentiles(mut xs: Vec<f64>) -> Percentiles {
    xs.sort_by(|a, b| a.total_cmp(b));
    let at = |p: f64| {
        let rank = ((p * xs.len() as f64).ceil() as usize).max(1);
        xs.get(rank - 1).copied().unwrap_or(0.0)
    };
    (at(0.50), at(0.99))
}

fn addr(s: &str) -> SocketAddrV4 {
    s.parse().expect("literal address")
}

fn udp_bound(ws: &Winsock, at: &str) -> Result<SOCKET, String> {
    let s = ws.socket(AF_INET, SOCK_DGRAM, 0).map_err(err("socket"))?;
    ws.bind(s, Some(&SOCKADDR_IN::new(addr(at))), SOCKADDR_IN_LEN)
        .map_err(err("bind"))?;
    Ok(s)
}

/// A probe whose datagrams go from `sender` on `wa` to `to`, received by `receiver` on its own
/// thread.
fn ours_probe(
    wa: &Winsock,
    sender: SOCKET,
    to: &str,
    receiver: impl FnOnce(Wake) -> ThreadResult + Send + 'static,
) -> Result<Probe, String> {
    let (tx, woke) = mpsc::channel();
    let thread = thread::Builder::new()
        .name("bench-receiver".into())
        .spawn(move || receiver(tx))
        .map_err(|e| e.to_string())?;
    let (ws, to) = (wa.clone(), SOCKADDR_IN::new(addr(to)));
    let send = move || {
        ws.sendto(sender, &PAYLOAD, 0, Some(&to), SOCKADDR_IN_LEN)
            .map(drop)
            .map_err(err("sendto"))
    };
    Ok(Probe {
        send: Box::new(send),
        woke,
        thread: Some(thread),
    })
}

/// `WSAEventSelect(FD_READ)` and `WSAWaitForMultipleEvents`; the wake-up is when the wait
/// returns. `WSAEnumNetworkEvents` and `recv` re-arm before the report.
fn event_receiver(ws: &Winsock, s: SOCKET, stop: &AtomicBool, tx: &Wake) -> ThreadResult {
    let ev = ws.WSACreateEvent().map_err(err("WSACreateEvent"))?;
    ws.WSAEventSelect(s, ev, FD_READ)
        .map_err(err("WSAEventSelect"))?;
    let mut buf = [0u8; 64];
    while !stop.load(Ordering::SeqCst) {
        let r = ws
            .WSAWaitForMultipleEvents(&[ev], false, IDLE_MS, false)
            .map_err(err("WSAWaitForMultipleEvents"))?;
        let woke = Instant::now();
        if r != WSA_WAIT_EVENT_0 {
            continue;
        }
        let mut ne = WSANETWORKEVENTS::default();
        ws.WSAEnumNetworkEvents(s, ev, Some(&mut ne))
            .map_err(err("WSAEnumNetworkEvents"))?;
        if ne.lNetworkEvents & FD_READ == 0 {
            continue;
        }
        ws.recv(s, &mut buf, 0).map_err(err("recv"))?;
        if tx.send(woke).is_err() {
            break;
        }
    }
    ws.closesocket(s).map_err(err("closesocket"))
}

/// An overlapped `WSARecvFrom` with a completion routine, run by an alertable
/// `WSAWaitForMultipleEvents` on an event nobody sets; the wake-up is when the routine runs.
/// The next receive is posted before the report.
fn routine_receiver(ws: &Winsock, s: SOCKET, stop: &AtomicBool, tx: &Wake) -> ThreadResult {
    let idle = ws.WSACreateEvent().map_err(err("WSACreateEvent"))?;
    let ov = WSAOVERLAPPED::new(0);
    let ran: Arc<Mutex<Option<(Instant, u32)>>> = Arc::default();
    let post = || -> ThreadResult {
        let ran = ran.clone();
        let mut bufs = [WSABUF::zeroed(64)];
        let mut flags = 0;
        let r = ws.WSARecvFrom(
            s,
            &mut bufs,
            None,
            Some(&mut flags),
            None,
            None,
            Some(&ov),
            Some(Box::new(move |error, _n, _ov: &WSAOVERLAPPED, _flags| {
                let now = Instant::now();
                *ran.lock().unwrap_or_else(|e| e.into_inner()) = Some((now, error));
            })),
        );
        match r {
            // Pending, or done at once with the routine queued all the same.
            Err(WsaError::WSA_IO_PENDING) | Ok(()) => Ok(()),
            Err(e) => Err(format!("WSARecvFrom: {e}")),
        }
    };
    post()?;
    while !stop.load(Ordering::SeqCst) {
        let r = ws
            .WSAWaitForMultipleEvents(&[idle], false, IDLE_MS, true)
            .map_err(err("WSAWaitForMultipleEvents"))?;
        if r != WSA_WAIT_IO_COMPLETION {
            continue;
        }
        let Some((woke, error)) = ran.lock().unwrap_or_else(|e| e.into_inner()).take() else {
            continue;
        };
        if error != 0 {
            return Err(format!(
                "overlapped WSARecvFrom completed with error {error}"
            ));
        }
        drop(ov.take_received());
        post()?;
        if tx.send(woke).is_err() {
            break;
        }
    }
    ws.closesocket(s).map_err(err("closesocket"))
}

// ---- wait64 --------------------------------------------------------------------------------

/// Nanoseconds per `WSAWaitForMultipleEvents` over 64 events, the last signaled, time-out 0.
fn wait64_ours() -> Result<f64, String> {
    let switch = VirtualSwitch::new(1);
    let stack = Stack::new(StackConfig::new(cidr("10.0.0.1/24")), switch.port())
        .map_err(|e| e.to_string())?;
    let ws = winsock(&stack)?;
    let events = (0..WSA_MAXIMUM_WAIT_EVENTS)
        .map(|_| ws.WSACreateEvent())
        .collect::<Result<Vec<_>, _>>()
        .map_err(err("WSACreateEvent"))?;
    let last = events.len() - 1;
    ws.WSASetEvent(events[last]).map_err(err("WSASetEvent"))?;
    let expected = Ok(WSA_WAIT_EVENT_0 + last as u32);
    let once = || {
        let r = ws.WSAWaitForMultipleEvents(&events, false, 0, false);
        if r != expected {
            return Err(format!("WSAWaitForMultipleEvents gave {r:?}"));
        }
        Ok(())
    };
    for _ in 0..WAIT_CALLS / 10 {
        once()?;
    }
    let start = Instant::now();
    for _ in 0..WAIT_CALLS {
        once()?;
    }
    let ns = start.elapsed().as_nanos() as f64 / f64::from(WAIT_CALLS);
    for e in events {
        ws.WSACloseEvent(e).map_err(err("WSACloseEvent"))?;
    }
    Ok(ns)
}

// ---- the anchor: epoll on kernel sockets ---------------------------------------------------

// The anchor calls libc directly (epoll and eventfd); each unsafe block has its SAFETY line.
#[allow(unsafe_code)]
mod kernel {
    //! Linux epoll over kernel UDP sockets on 127.0.0.1 and eventfds.

    use std::io;
    use std::net::UdpSocket;
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

    use super::*;

    /// An epoll instance.
    struct Epoll(OwnedFd);

    impl Epoll {
        fn new() -> io::Result<Epoll> {
            // SAFETY: no pointers; the result is checked before use.
            let fd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
            if fd < 0 {
                return Err(io::Error::last_os_error());
            }
            // SAFETY: `fd` is a new descriptor that nothing else owns.
            Ok(Epoll(unsafe { OwnedFd::from_raw_fd(fd) }))
        }

        /// Watches `fd` for readability (level-triggered).
        fn add(&self, fd: &impl AsRawFd, token: u64) -> io::Result<()> {
            let mut ev = libc::epoll_event {
                events: libc::EPOLLIN as u32,
                u64: token,
            };
            // SAFETY: both descriptors are open for the call; `ev` is a live epoll_event.
            let r = unsafe {
                libc::epoll_ctl(
                    self.0.as_raw_fd(),
                    libc::EPOLL_CTL_ADD,
                    fd.as_raw_fd(),
                    &mut ev,
                )
            };
            if r < 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        }

        /// Ready descriptors (0 on time-out or an interrupted wait).
        fn wait(&self, events: &mut [libc::epoll_event], timeout_ms: i32) -> io::Result<usize> {
            // SAFETY: `events` is a live, writable array of `events.len()` entries.
            let n = unsafe {
                libc::epoll_wait(
                    self.0.as_raw_fd(),
                    events.as_mut_ptr(),
                    events.len() as libc::c_int,
                    timeout_ms,
                )
            };
            if n < 0 {
                let e = io::Error::last_os_error();
                return match e.kind() {
                    io::ErrorKind::Interrupted => Ok(0),
                    _ => Err(e),
                };
            }
            Ok(n as usize)
        }
    }

    fn no_events() -> libc::epoll_event {
        libc::epoll_event { events: 0, u64: 0 }
    }

    fn eventfd() -> io::Result<OwnedFd> {
        // SAFETY: no pointers; the result is checked before use.
        let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` is a new descriptor that nothing else owns.
        Ok(unsafe { OwnedFd::from_raw_fd(fd) })
    }

    fn eventfd_signal(fd: &OwnedFd) -> io::Result<()> {
        let one = 1u64.to_ne_bytes();
        // SAFETY: `fd` is open; `one` is 8 readable bytes.
        let n = unsafe { libc::write(fd.as_raw_fd(), one.as_ptr().cast(), one.len()) };
        if n != 8 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    fn io_err(what: &'static str) -> impl Fn(io::Error) -> String {
        move |e| format!("{what}: {e}")
    }

    /// The anchor probe: a kernel UDP socket pair on 127.0.0.1; the receiving thread's
    /// `epoll_wait` returning is the wake-up, and it reads the datagram before the report.
    pub(super) fn epoll_probe(stop: Arc<AtomicBool>) -> Result<Probe, String> {
        let rx = UdpSocket::bind("127.0.0.1:0").map_err(io_err("bind"))?;
        rx.set_nonblocking(true).map_err(io_err("nonblocking"))?;
        let to = rx.local_addr().map_err(io_err("local_addr"))?;
        let sender = UdpSocket::bind("127.0.0.1:0").map_err(io_err("bind"))?;
        let ep = Epoll::new().map_err(io_err("epoll_create1"))?;
        ep.add(&rx, 0).map_err(io_err("epoll_ctl"))?;
        let (tx, woke) = mpsc::channel::<Instant>();
        let thread = thread::Builder::new()
            .name("bench-epoll".into())
            .spawn(move || -> ThreadResult {
                let mut events = [no_events(); 1];
                let mut buf = [0u8; 64];
                while !stop.load(Ordering::SeqCst) {
                    let n = ep
                        .wait(&mut events, IDLE_MS as i32)
                        .map_err(io_err("epoll_wait"))?;
                    let woke = Instant::now();
                    if n == 0 {
                        continue;
                    }
                    rx.recv(&mut buf).map_err(io_err("recv"))?;
                    if tx.send(woke).is_err() {
                        break;
                    }
                }
                Ok(())
            })
            .map_err(|e| e.to_string())?;
        let send = move || {
            sender
                .send_to(&PAYLOAD, to)
                .map(drop)
                .map_err(io_err("sendto"))
        };
        Ok(Probe {
            send: Box::new(send),
            woke,
            thread: Some(thread),
        })
    }

    /// Nanoseconds per `epoll_wait` (time-out 0) over 64 eventfds, the last readable.
    pub(super) fn wait64() -> Result<f64, String> {
        let ep = Epoll::new().map_err(io_err("epoll_create1"))?;
        let fds = (0..WSA_MAXIMUM_WAIT_EVENTS)
            .map(|_| eventfd())
            .collect::<io::Result<Vec<_>>>()
            .map_err(io_err("eventfd"))?;
        for (i, fd) in fds.iter().enumerate() {
            ep.add(fd, i as u64).map_err(io_err("epoll_ctl"))?;
        }
        let last = fds.len() - 1;
        eventfd_signal(&fds[last]).map_err(io_err("eventfd write"))?;
        let mut events = [no_events(); WSA_MAXIMUM_WAIT_EVENTS];
        let mut once = || {
            let n = ep.wait(&mut events, 0).map_err(io_err("epoll_wait"))?;
            let token = events[0].u64;
            if n != 1 || token != last as u64 {
                return Err(format!("epoll_wait gave {n} ready (first token {token})"));
            }
            Ok(())
        };
        for _ in 0..WAIT_CALLS / 10 {
            once()?;
        }
        let start = Instant::now();
        for _ in 0..WAIT_CALLS {
            once()?;
        }
        Ok(start.elapsed().as_nanos() as f64 / f64::from(WAIT_CALLS))
    }
}
