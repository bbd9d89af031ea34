//! The `multicast` scenario: how fast the stack fans a multicast datagram out to local member
//! sockets, and how soon a `WSAJoinLeaf` starts receiving, each beside the Linux kernel doing
//! the same on loopback in the same run.
//!
//! - `delivery N=n`: one stack, `n` c_leaf/d_leaf sockets (`SO_REUSEADDR`, `WSAJoinLeaf` with
//!   `JL_RECEIVER_ONLY`) on one group and port, each read by its own thread; one more leaf
//!   socket on the same stack (`JL_SENDER_ONLY`, `SIO_MULTICAST_SCOPE` 0: this host only) sends
//!   1,000-byte datagrams as fast as `sendto` returns for `WINDOW`. The figure is datagrams (and
//!   payload bytes) received per second summed over the members. Anchor: kernel UDP sockets
//!   (`SO_REUSEADDR`, `IP_ADD_MEMBERSHIP` on 127.0.0.1) and a kernel sender with
//!   `IP_MULTICAST_IF` 127.0.0.1, `IP_MULTICAST_TTL` 0 and `IP_MULTICAST_LOOP` 1, so every
//!   datagram stays on this host (the kernel loops the local copy back before the TTL-0 check
//!   drops the outgoing one). Receive buffers are each side's default (ours 256 KiB of
//!   payload, the kernel's `net.core.rmem_default` of skb memory); a datagram finding a full
//!   buffer is dropped on both sides, as UDP does.
//! - `join_to_first_packet`: stack A (one port of a `VirtualSwitch`) sends a 64-byte datagram to
//!   the group every 1 ms; stack B (another port) makes a leaf socket and calls `WSAJoinLeaf`
//!   (`JL_RECEIVER_ONLY`, blocking: it returns once the IGMP report is out) then `recvfrom`;
//!   the time from the call to the first datagram, `JOINS` times per run, p50 and p90. Anchor:
//!   a kernel sender looping on lo every 1 ms, and a kernel socket's `IP_ADD_MEMBERSHIP` then
//!   `recv`. Half a period (0.5 ms) of it is the wait for the next datagram on both sides.
//!
//! Runs interleave ours and the anchor; each figure is the median over runs. Only loopback and
//! the in-process switch carry traffic.

use std::io;
use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use ws2_stack::winsock::*;
use ws2_stack::{Stack, StackConfig};
use ws2_tap::VirtualSwitch;

use super::super::mcast::{ioctl_int, join_leaf, leaf_socket, percentile, setsockopt_int, winsock};
use super::tcp::cidr;
use super::{median, Figure};

/// Member counts of the delivery figures.
const MEMBERS: [usize; 3] = [1, 8, 64];
/// Payload of the delivery datagrams.
const DATAGRAM: usize = 1000;
/// How long the sender sends per delivery measurement.
const WINDOW: Duration = Duration::from_secs(1);
/// Joins per run of the join-latency figure.
const JOINS: usize = 20;
/// The join-latency sender's period.
const PERIOD: Duration = Duration::from_millis(1);
const KERNEL: &str = "kernel UDP on lo, TTL 0";

/// A group and port for this process, so parallel runs on one machine do not hear each other
/// on lo.
fn group(which: u8) -> SocketAddrV4 {
    let pid = std::process::id();
    SocketAddrV4::new(
        Ipv4Addr::new(239, 255, which, (pid % 250) as u8 + 1),
        40_000 + (pid % 20_000) as u16,
    )
}

pub(crate) fn run(runs: usize) -> Result<Vec<Figure>, String> {
    let kernel_ok = match kernel::probe() {
        Ok(()) => true,
        Err(e) => {
            eprintln!("multicast: the kernel anchor cannot run here ({e}); its figures read 0");
            false
        }
    };
    let fig = |metric: String, value, unit, baseline_value| Figure {
        scenario: "multicast",
        metric,
        value,
        unit,
        baseline: KERNEL,
        baseline_value,
    };
    let mut out = Vec::new();
    for n in MEMBERS {
        let (mut ours, mut base) = (Vec::new(), Vec::new());
        for _ in 0..runs {
            ours.push(ours_delivery(n)?);
            if kernel_ok {
                base.push(kernel::delivery(n).map_err(|e| format!("kernel delivery: {e}"))?);
            }
        }
        let rate = |v: &[Delivery]| median(v.iter().map(|d| d.per_sec).collect());
        let pct = |v: &[Delivery]| median(v.iter().map(|d| d.delivered_pct).collect());
        let (ours_rate, base_rate) = (rate(&ours), rate(&base));
        out.push(fig(
            format!("delivery N={n} datagrams/s"),
            ours_rate,
            "dgram/s",
            base_rate,
        ));
        let mb = |d: f64| d * DATAGRAM as f64 / 1e6;
        out.push(fig(
            format!("delivery N={n} payload MB/s"),
            mb(ours_rate),
            "MB/s",
            mb(base_rate),
        ));
        out.push(fig(
            format!("delivery N={n} delivered"),
            pct(&ours),
            "%",
            pct(&base),
        ));
    }
    let (mut ours, mut base) = ((Vec::new(), Vec::new()), (Vec::new(), Vec::new()));
    for _ in 0..runs {
        let (p50, p90) = ours_join()?;
        ours.0.push(p50);
        ours.1.push(p90);
        if kernel_ok {
            let (p50, p90) = kernel::join().map_err(|e| format!("kernel join: {e}"))?;
            base.0.push(p50);
            base.1.push(p90);
        }
    }
    out.push(fig(
        "join_to_first_packet_p50".into(),
        median(ours.0),
        "ms",
        median(base.0),
    ));
    out.push(fig(
        "join_to_first_packet_p90".into(),
        median(ours.1),
        "ms",
        median(base.1),
    ));
    Ok(out)
}

/// p50 and p90 of `xs`.
fn p50_p90(mut xs: Vec<f64>) -> (f64, f64) {
    xs.sort_by(f64::total_cmp);
    (percentile(&xs, 0.5), percentile(&xs, 0.9))
}

fn err(what: &str) -> impl Fn(WsaError) -> String + '_ {
    move |e| format!("{what}: {e}")
}

/// Datagrams the member threads took so far.
#[derive(Default)]
struct Tally {
    datagrams: AtomicU64,
}

/// What a delivery window measured.
#[derive(Debug, Clone, Copy)]
struct Delivery {
    /// Datagrams received per second, summed over members.
    per_sec: f64,
    /// Received as a share of sent × members, %.
    delivered_pct: f64,
}

/// Runs `send` (one datagram per call) for `WINDOW` while the `members` threads count into
/// `tally`. Sets `stop` at the end.
fn measure_window(
    tally: &Tally,
    stop: &AtomicBool,
    members: usize,
    mut send: impl FnMut() -> Result<(), String>,
) -> Result<Delivery, String> {
    // Let the readers block in their receive calls first.
    thread::sleep(Duration::from_millis(50));
    let before = tally.datagrams.load(Ordering::Relaxed);
    let start = Instant::now();
    let mut calls = 0u32;
    loop {
        send()?;
        calls += 1;
        if calls.is_multiple_of(16) && start.elapsed() >= WINDOW {
            break;
        }
    }
    let elapsed = start.elapsed();
    // What is still queued when the window closes is not counted.
    let got = tally.datagrams.load(Ordering::Relaxed) - before;
    stop.store(true, Ordering::Relaxed);
    Ok(Delivery {
        per_sec: got as f64 / elapsed.as_secs_f64(),
        delivered_pct: got as f64 * 100.0 / (f64::from(calls) * members as f64),
    })
}

// ---- ours ----------------------------------------------------------------------------------

/// `n` member sockets and one scope-0 sender on one stack: datagrams/s summed over members.
fn ours_delivery(n: usize) -> Result<Delivery, String> {
    let switch = VirtualSwitch::new(1);
    let stack = Stack::new(StackConfig::new(cidr("10.0.4.1/24")), switch.port())
        .map_err(|e| e.to_string())?;
    let ws = winsock(&stack)?;
    let g = SocketAddrV4::new(Ipv4Addr::new(239, 255, 4, 1), 7100);
    let mut members = Vec::with_capacity(n);
    for _ in 0..n {
        let s = leaf_socket(&ws)?;
        setsockopt_int(&ws, s, SOL_SOCKET, SO_REUSEADDR, "SO_REUSEADDR", 1)?;
        setsockopt_int(&ws, s, SOL_SOCKET, SO_RCVTIMEO, "SO_RCVTIMEO", 50)?;
        join_leaf(&ws, s, g, JL_RECEIVER_ONLY, None)?;
        members.push(s);
    }
    let sender = leaf_socket(&ws)?;
    // Bound first, so WSAJoinLeaf does not bind it to the members' port.
    let any = SOCKADDR_IN::new(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0));
    ws.bind(sender, Some(&any), SOCKADDR_IN_LEN)
        .map_err(err("bind"))?;
    ioctl_int(&ws, sender, SIO_MULTICAST_SCOPE, "SIO_MULTICAST_SCOPE", 0)?;
    // The sender is not a receiving member; its own copies would not count anyway.
    ioctl_int(
        &ws,
        sender,
        SIO_MULTIPOINT_LOOPBACK,
        "SIO_MULTIPOINT_LOOPBACK",
        0,
    )?;
    join_leaf(&ws, sender, g, JL_SENDER_ONLY, None)?;
    let tally = Tally::default();
    let stop = AtomicBool::new(false);
    let rate = thread::scope(|scope| {
        let readers: Vec<_> = members
            .iter()
            .map(|&s| {
                let (ws, tally, stop) = (&ws, &tally, &stop);
                scope.spawn(move || -> Result<(), String> {
                    let mut buf = [0u8; 2048];
                    while !stop.load(Ordering::Relaxed) {
                        match ws.recv(s, &mut buf, 0) {
                            Ok(_) => {
                                tally.datagrams.fetch_add(1, Ordering::Relaxed);
                            }
                            Err(WsaError::WSAETIMEDOUT) => {}
                            Err(e) => return Err(format!("recv: {e}")),
                        }
                    }
                    Ok(())
                })
            })
            .collect();
        let to = SOCKADDR_IN::new(g);
        let payload = [0x5au8; DATAGRAM];
        let rate = measure_window(&tally, &stop, n, || {
            ws.sendto(sender, &payload, 0, Some(&to), SOCKADDR_IN_LEN)
                .map(drop)
                .map_err(err("sendto"))
        });
        stop.store(true, Ordering::Relaxed);
        for r in readers {
            r.join()
                .unwrap_or_else(|_| Err("a reader panicked".into()))?;
        }
        rate
    })?;
    for s in members.into_iter().chain([sender]) {
        ws.closesocket(s).map_err(err("closesocket"))?;
    }
    let _ = ws.WSACleanup();
    Ok(rate)
}

/// Stack A streams to the group every ms; stack B joins `JOINS` times: p50 and p90 of the time
/// from `WSAJoinLeaf` to the first datagram, ms.
fn ours_join() -> Result<(f64, f64), String> {
    let switch = VirtualSwitch::new(1);
    let a = Stack::new(StackConfig::new(cidr("10.0.5.1/24")), switch.port())
        .map_err(|e| e.to_string())?;
    let b = Stack::new(StackConfig::new(cidr("10.0.5.2/24")), switch.port())
        .map_err(|e| e.to_string())?;
    let (wa, wb) = (winsock(&a)?, winsock(&b)?);
    let g = SocketAddrV4::new(Ipv4Addr::new(239, 255, 5, 1), 7200);
    let sender = leaf_socket(&wa)?;
    join_leaf(&wa, sender, g, JL_SENDER_ONLY, None)?;
    let stop = AtomicBool::new(false);
    let samples = thread::scope(|scope| {
        let streamer = scope.spawn(|| {
            stream(&stop, || {
                wa.sendto(
                    sender,
                    &[0x5a; 64],
                    0,
                    Some(&SOCKADDR_IN::new(g)),
                    SOCKADDR_IN_LEN,
                )
                .map(drop)
                .map_err(err("sendto"))
            })
        });
        let samples = (|| {
            let mut out = Vec::with_capacity(JOINS);
            thread::sleep(Duration::from_millis(20));
            for _ in 0..JOINS {
                let s = leaf_socket(&wb)?;
                setsockopt_int(&wb, s, SOL_SOCKET, SO_RCVTIMEO, "SO_RCVTIMEO", 2000)?;
                let mut buf = [0u8; 256];
                let t = Instant::now();
                join_leaf(&wb, s, g, JL_RECEIVER_ONLY, None)?;
                wb.recv(s, &mut buf, 0)
                    .map_err(err("recv after WSAJoinLeaf"))?;
                out.push(t.elapsed().as_secs_f64() * 1e3);
                wb.closesocket(s).map_err(err("closesocket"))?;
                thread::sleep(pause(out.len()));
            }
            Ok::<_, String>(out)
        })();
        stop.store(true, Ordering::Relaxed);
        let streamed = streamer
            .join()
            .unwrap_or_else(|_| Err("the sender panicked".into()));
        let samples = samples?;
        streamed?;
        Ok::<_, String>(samples)
    })?;
    let _ = (wa.closesocket(sender), wa.WSACleanup(), wb.WSACleanup());
    Ok(p50_p90(samples))
}

/// The pause before join `i + 1`: 5 ms plus a step of 0.37 ms modulo the period, so the joins
/// fall at spread-out phases of the sender's 1-ms schedule instead of locking to one.
fn pause(i: usize) -> Duration {
    Duration::from_millis(5) + Duration::from_micros((i as u64 * 370) % 1000)
}

/// Calls `send` every `PERIOD` (on a fixed schedule) until `stop`.
fn stream(stop: &AtomicBool, mut send: impl FnMut() -> Result<(), String>) -> Result<(), String> {
    let start = Instant::now();
    let mut next = start;
    while !stop.load(Ordering::Relaxed) {
        send()?;
        next += PERIOD;
        match next.checked_duration_since(Instant::now()) {
            Some(wait) => thread::sleep(wait),
            // Behind: skip the missed slots rather than burst.
            None => next = Instant::now(),
        }
    }
    Ok(())
}

// ---- the anchor: the kernel on lo ----------------------------------------------------------

// The anchor calls libc directly (kernel sockets); each unsafe block has its SAFETY line.
#[allow(unsafe_code)]
mod kernel {
    //! Kernel UDP multicast confined to this host: members joined on 127.0.0.1, senders with
    //! `IP_MULTICAST_IF` 127.0.0.1 and TTL 0.

    use super::*;

    const LO: Ipv4Addr = Ipv4Addr::LOCALHOST;

    fn setsockopt<T>(fd: &impl AsRawFd, level: i32, name: i32, v: &T) -> io::Result<()> {
        // SAFETY: `fd` is open; `v` points to a live `T` of the size passed.
        let r = unsafe {
            libc::setsockopt(
                fd.as_raw_fd(),
                level,
                name,
                (v as *const T).cast(),
                std::mem::size_of::<T>() as libc::socklen_t,
            )
        };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    fn in_addr(ip: Ipv4Addr) -> libc::in_addr {
        libc::in_addr {
            s_addr: u32::from_ne_bytes(ip.octets()),
        }
    }

    /// A UDP socket with `SO_REUSEADDR`, bound to 0.0.0.0:`port` (not yet a member).
    fn member(port: u16) -> io::Result<UdpSocket> {
        // SAFETY: no pointers; the result is checked before use.
        let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` is a new descriptor that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        setsockopt(&fd, libc::SOL_SOCKET, libc::SO_REUSEADDR, &1i32)?;
        let sa = libc::sockaddr_in {
            sin_family: libc::AF_INET as libc::sa_family_t,
            sin_port: port.to_be(),
            sin_addr: in_addr(Ipv4Addr::UNSPECIFIED),
            sin_zero: [0; 8],
        };
        // SAFETY: `sa` is a live sockaddr_in of the size passed.
        let r = unsafe {
            libc::bind(
                fd.as_raw_fd(),
                (&sa as *const libc::sockaddr_in).cast(),
                std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
            )
        };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(UdpSocket::from(fd))
    }

    /// A sender whose multicast stays on this host: lo, TTL 0, loopback on.
    fn sender() -> io::Result<UdpSocket> {
        let s = UdpSocket::bind((LO, 0))?;
        setsockopt(&s, libc::IPPROTO_IP, libc::IP_MULTICAST_IF, &in_addr(LO))?;
        s.set_multicast_ttl_v4(0)?;
        s.set_multicast_loop_v4(true)?;
        Ok(s)
    }

    /// One datagram from a sender to a member on lo, or why not.
    pub(super) fn probe() -> io::Result<()> {
        let g = group(6);
        let m = member(g.port())?;
        m.join_multicast_v4(g.ip(), &LO)?;
        m.set_read_timeout(Some(Duration::from_millis(500)))?;
        sender()?.send_to(b"probe", g)?;
        let mut buf = [0u8; 16];
        match m.recv(&mut buf) {
            Ok(5) => Ok(()),
            Ok(n) => Err(io::Error::other(format!("probe came back with {n} bytes"))),
            Err(e) => Err(io::Error::new(
                e.kind(),
                format!("no multicast loopback on lo: {e}"),
            )),
        }
    }

    /// `n` members and a TTL-0 sender on lo: datagrams/s summed over members.
    pub(super) fn delivery(n: usize) -> io::Result<Delivery> {
        let g = group(7);
        let members = (0..n)
            .map(|_| {
                let m = member(g.port())?;
                m.join_multicast_v4(g.ip(), &LO)?;
                m.set_read_timeout(Some(Duration::from_millis(50)))?;
                Ok(m)
            })
            .collect::<io::Result<Vec<_>>>()?;
        let tx = sender()?;
        let tally = Tally::default();
        let stop = AtomicBool::new(false);
        thread::scope(|scope| {
            let readers: Vec<_> = members
                .iter()
                .map(|m| {
                    let (tally, stop) = (&tally, &stop);
                    scope.spawn(move || -> io::Result<()> {
                        let mut buf = [0u8; 2048];
                        while !stop.load(Ordering::Relaxed) {
                            match m.recv(&mut buf) {
                                Ok(_) => {
                                    tally.datagrams.fetch_add(1, Ordering::Relaxed);
                                }
                                Err(e)
                                    if matches!(
                                        e.kind(),
                                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                                    ) => {}
                                Err(e) => return Err(e),
                            }
                        }
                        Ok(())
                    })
                })
                .collect();
            let payload = [0x5au8; DATAGRAM];
            let rate = measure_window(&tally, &stop, n, || {
                tx.send_to(&payload, g).map(drop).map_err(|e| e.to_string())
            })
            .map_err(io::Error::other);
            stop.store(true, Ordering::Relaxed);
            for r in readers {
                r.join()
                    .unwrap_or_else(|_| Err(io::Error::other("a reader panicked")))?;
            }
            rate
        })
    }

    /// A kernel sender streams to the group every ms on lo; a kernel socket joins `JOINS` times:
    /// p50 and p90 of `IP_ADD_MEMBERSHIP` to the first datagram, ms.
    pub(super) fn join() -> io::Result<(f64, f64)> {
        let g = group(8);
        let tx = sender()?;
        let stop = AtomicBool::new(false);
        thread::scope(|scope| {
            let streamer = scope.spawn(|| {
                stream(&stop, || {
                    tx.send_to(&[0x5a; 64], g)
                        .map(drop)
                        .map_err(|e| e.to_string())
                })
            });
            let samples = (|| {
                let mut out = Vec::with_capacity(JOINS);
                thread::sleep(Duration::from_millis(20));
                for _ in 0..JOINS {
                    let m = member(g.port())?;
                    m.set_read_timeout(Some(Duration::from_secs(2)))?;
                    let mut buf = [0u8; 256];
                    let t = Instant::now();
                    m.join_multicast_v4(g.ip(), &LO)?;
                    m.recv(&mut buf)?;
                    out.push(t.elapsed().as_secs_f64() * 1e3);
                    drop(m);
                    thread::sleep(pause(out.len()));
                }
                Ok::<_, io::Error>(out)
            })();
            stop.store(true, Ordering::Relaxed);
            let streamed = streamer
                .join()
                .unwrap_or_else(|_| Err("the sender panicked".into()));
            let samples = samples?;
            streamed.map_err(io::Error::other)?;
            Ok(p50_p90(samples))
        })
    }
}
