//! `shaping`: how closely ws2's egress shaper holds a UDP flow to its flowspec, beside Linux
//! `tc tbf` at the same rate and bucket, and what the scheduler costs per packet.
//!
//! Per case (`TokenRate` R, `TokenBucketSize` B), each side gets the same offered load: a UDP
//! sender pacing 1,000-byte datagrams at 2·R (in Ethernet-frame bytes: payload + 42), so the
//! shaper is always backlogged. The receiver timestamps every datagram and reports:
//! - **rate error**: (measured − R) / R in %, the measured rate being the frame bytes after the
//!   first arrival of the steady window (1 s after the first datagram to the end of sending)
//!   over that window's span;
//! - **burst excess**: the largest count of frame bytes arriving in any 1-second window, less
//!   R·1 s + B (a conforming flow never exceeds it; 0 = conformant);
//! - **loss**: datagrams sent (accepted by the socket) but never received, in %.
//!
//! Ours: two stacks on a `VirtualSwitch`, the sender's socket shaped with
//! `WSAIoctl(SIO_SET_QOS)` (GuaranteedService, rate R, bucket B, no peak). The anchor: two
//! network namespaces made by the bench joined by a veth pair, `tc qdisc add dev <veth> root tbf
//! rate R burst B latency 50ms` on the sending end, kernel UDP sockets on both ends. Addresses
//! live only inside those namespaces; they are deleted at the end, error or not. Without root
//! (or without `tc`) the anchor is skipped with a line on stderr and ours is still reported.
//!
//! TCP (the "tbf … drops and forces TCP retransmissions at low rates — report both"):
//! a bulk TCP transfer for the same time at each R/B, the sender writing as fast as the socket
//! takes data. Reported: **tcp retransmissions** — ours counted at the receiver from a pcap of
//! every frame its link delivered (data segments whose sequence range was seen before), the
//! anchor's from the kernel sender's `RetransSegs` (`/proc/net/snmp` in its namespace) — and
//! **tcp goodput error**, the payload rate at the receiver against R·1460/1514 (full segments).
//!
//! `scheduler_ns_per_packet`: `ws2_qos::shaping_workload(1000, 1_000_000, now)` (1,000 flows of
//! mixed classes and groups, 1 Mpps of simulated time) timed, per packet; the anchor is the
//! cheapest possible queue, a `VecDeque` FIFO pushing and popping the same number of packets —
//! a floor, not a competing shaper.

use std::net::SocketAddrV4;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use smoltcp::wire::{EthernetFrame, EthernetProtocol, IpProtocol, Ipv4Packet, TcpPacket};
use ws2_qos::{Flowspec, Guarantee, Qos};
use ws2_stack::net::UdpSocket;
use ws2_stack::{Stack, StackConfig};
use ws2_tap::VirtualSwitch;

use super::super::flow_socket::FlowSocket;
use super::super::transfer::UDP_FRAME_OVERHEAD;
use super::cleanup::Namespace;
use super::tcp::cidr;
use super::{median, Figure};

/// (TokenRate B/s, TokenBucketSize B): 1, 10 and 100 Mbit/s.
const CASES: [(u64, u64); 3] = [
    (125_000, 12_500),
    (1_250_000, 62_500),
    (12_500_000, 125_000),
];
/// UDP payload per datagram.
const PAYLOAD: usize = 1000;
const FRAME: u64 = PAYLOAD as u64 + UDP_FRAME_OVERHEAD;
/// Offered load as a multiple of the token rate.
const OFFER: u64 = 2;
const PORT: u16 = 7000;

/// What one measurement found.
#[derive(Debug, Clone, Copy, Default)]
struct Shaped {
    rate_error_pct: f64,
    burst_excess: f64,
    loss_pct: f64,
}

/// Arrivals (time, frame bytes) at a receiver → the figures, for rate `r` and bucket `b`.
fn analyse(arrivals: &[(Instant, u64)], sent: u64, r: u64, b: u64, secs: f64) -> Shaped {
    let loss_pct = if sent == 0 {
        100.0
    } else {
        (sent.saturating_sub(arrivals.len() as u64)) as f64 * 100.0 / sent as f64
    };
    let Some(&(t0, _)) = arrivals.first() else {
        return Shaped {
            rate_error_pct: -100.0,
            burst_excess: 0.0,
            loss_pct,
        };
    };
    let (from, to) = (
        t0 + Duration::from_secs(1),
        t0 + Duration::from_secs_f64(secs),
    );
    let window: Vec<_> = arrivals
        .iter()
        .filter(|(t, _)| *t >= from && *t <= to)
        .collect();
    let rate = match (window.first(), window.last()) {
        (Some(a), Some(z)) if z.0 > a.0 => {
            let bytes: u64 = window.iter().skip(1).map(|(_, n)| n).sum();
            bytes as f64 / (z.0 - a.0).as_secs_f64()
        }
        _ => 0.0,
    };
    let mut most = 0u64;
    let (mut j, mut sum) = (0usize, 0u64);
    for i in 0..arrivals.len() {
        while j < arrivals.len() && arrivals[j].0 < arrivals[i].0 + Duration::from_secs(1) {
            sum += arrivals[j].1;
            j += 1;
        }
        most = most.max(sum);
        sum -= arrivals[i].1;
    }
    Shaped {
        rate_error_pct: (rate - r as f64) * 100.0 / r as f64,
        burst_excess: most.saturating_sub(r + b) as f64,
        loss_pct,
    }
}

/// Offers datagrams at `OFFER`·`r` frame bytes/s for `secs` through `send` (which may block);
/// returns how many it accepted.
fn offer(r: u64, secs: f64, mut send: impl FnMut(&[u8]) -> bool) -> u64 {
    let buf = vec![0x77u8; PAYLOAD];
    let start = Instant::now();
    let (mut k, mut ok) = (0u64, 0u64);
    loop {
        let elapsed = start.elapsed().as_secs_f64();
        if elapsed >= secs {
            return ok;
        }
        let due = (elapsed * (OFFER * r) as f64 / FRAME as f64) as u64;
        while k < due && start.elapsed().as_secs_f64() < secs {
            if send(&buf) {
                ok += 1;
            }
            k += 1;
        }
        thread::sleep(Duration::from_micros(500));
    }
}

/// Records arrivals from `recv` until `done` is set and nothing came for 300 ms (or 15 s more).
fn record(
    done: &AtomicBool,
    mut recv: impl FnMut(&mut [u8]) -> Option<usize>,
) -> Vec<(Instant, u64)> {
    let mut out = Vec::with_capacity(1 << 16);
    let mut buf = vec![0u8; 2048];
    let mut last = Instant::now();
    let mut done_at = None;
    loop {
        if let Some(n) = recv(&mut buf) {
            last = Instant::now();
            out.push((last, n as u64 + UDP_FRAME_OVERHEAD));
            continue;
        }
        if done.load(Ordering::Relaxed) {
            let d = *done_at.get_or_insert_with(Instant::now);
            if last.elapsed() > Duration::from_millis(300) || d.elapsed() > Duration::from_secs(15)
            {
                return out;
            }
        }
    }
}

/// Ours: a shaped ws2 UDP socket on a virtual switch.
fn ours(r: u64, b: u64, secs: f64) -> Result<Shaped, String> {
    let switch = VirtualSwitch::new(7);
    let tx = Stack::new(StackConfig::new(cidr("10.0.2.1/24")), switch.port())
        .map_err(|e| e.to_string())?;
    let rx = Stack::new(StackConfig::new(cidr("10.0.2.2/24")), switch.port())
        .map_err(|e| e.to_string())?;
    let sink = UdpSocket::bind(&rx, ("10.0.2.2", PORT)).map_err(|e| format!("bind: {e}"))?;
    sink.set_read_timeout(Some(Duration::from_millis(50)))
        .map_err(|e| e.to_string())?;
    let sock = FlowSocket::open(&tx, false, None, None)?;
    sock.bind("10.0.2.1:0".parse().expect("literal"))?;
    let qos = Qos {
        SendingFlowspec: Flowspec {
            TokenRate: i32::try_from(r).map_err(|_| "rate too large")?,
            TokenBucketSize: i32::try_from(b).map_err(|_| "bucket too large")?,
            LevelOfGuarantee: Guarantee::GuaranteedService,
            ..Flowspec::DEFAULT
        },
        ..Qos::default()
    };
    sock.set_qos(&qos)?;
    let to: SocketAddrV4 = format!("10.0.2.2:{PORT}").parse().expect("literal");
    let done = Arc::new(AtomicBool::new(false));
    let d = done.clone();
    let receiver =
        thread::spawn(move || record(&d, |buf| sink.recv_from(buf).ok().map(|(n, _)| n)));
    let sent = offer(r, secs, |buf| sock.send_to(buf, to).is_ok());
    done.store(true, Ordering::Relaxed);
    let arrivals = receiver
        .join()
        .map_err(|_| "receiver panicked".to_string())?;
    // Closed only now: frames still queued in the shaper would leave unshaped.
    drop(sock);
    Ok(analyse(&arrivals, sent, r, b, secs))
}

// ---- the anchor: tc tbf on a veth pair between two namespaces ------------------------------

/// Two namespaces joined by a veth pair, deleted (with the pair) on drop or interruption.
struct VethPair {
    tx: String,
    rx: String,
    /// Deleting the namespaces deletes the pair and its addresses.
    _namespaces: [Namespace; 2],
}

const TX_DEV: &str = "ws2shp0";
const RX_DEV: &str = "ws2shp1";
const TX_ADDR: &str = "10.79.0.1";
const RX_ADDR: &str = "10.79.0.2";

fn run(cmd: &str, args: &[&str]) -> Result<(), String> {
    let out = Command::new(cmd)
        .args(args)
        .output()
        .map_err(|e| format!("{cmd}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{cmd} {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

impl VethPair {
    fn new() -> Result<VethPair, String> {
        let pid = std::process::id();
        let tx = format!("ws2shp-tx-{pid}");
        let rx = format!("ws2shp-rx-{pid}");
        let tx_ns = Namespace::add(tx.clone())?;
        let rx_ns = Namespace::add(rx.clone())?;
        let pair = VethPair {
            tx,
            rx,
            _namespaces: [tx_ns, rx_ns],
        };
        let (tx, rx) = (pair.tx.as_str(), pair.rx.as_str());
        // Made inside the sending namespace, its peer moved straight into the receiving one:
        // neither end ever exists in the root namespace.
        run(
            "ip",
            &[
                "-n", tx, "link", "add", TX_DEV, "type", "veth", "peer", "name", RX_DEV, "netns",
                rx,
            ],
        )?;
        for (ns, dev, addr) in [(tx, TX_DEV, TX_ADDR), (rx, RX_DEV, RX_ADDR)] {
            run(
                "ip",
                &["-n", ns, "addr", "add", &format!("{addr}/24"), "dev", dev],
            )?;
            run("ip", &["-n", ns, "link", "set", dev, "up"])?;
            run("ip", &["-n", ns, "link", "set", "lo", "up"])?;
        }
        Ok(pair)
    }
}

/// Why the anchor cannot run here, if it cannot.
#[allow(unsafe_code)]
fn anchor_unavailable() -> Option<String> {
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        return Some("not root".into());
    }
    for tool in ["tc", "ip"] {
        if Command::new(tool).arg("-V").output().is_err() {
            return Some(format!("`{tool}` not found"));
        }
    }
    None
}

/// The anchor: kernel UDP through `tc tbf rate R burst B latency 50ms`.
fn tbf(pair: &VethPair, r: u64, b: u64, secs: f64) -> Result<Shaped, String> {
    run(
        "tc",
        &[
            "-n",
            &pair.tx,
            "qdisc",
            "replace",
            "dev",
            TX_DEV,
            "root",
            "tbf",
            "rate",
            &format!("{}bit", r * 8),
            "burst",
            &b.to_string(),
            "latency",
            "50ms",
        ],
    )?;
    let sink = ws2_tap::in_namespace(&pair.rx, || {
        let s = std::net::UdpSocket::bind(("0.0.0.0", PORT))?;
        s.set_read_timeout(Some(Duration::from_millis(50)))?;
        Ok(s)
    })
    .map_err(|e| format!("kernel receiver: {e}"))?;
    let src = ws2_tap::in_namespace(&pair.tx, || {
        let s = std::net::UdpSocket::bind(("0.0.0.0", 0))?;
        s.connect((RX_ADDR, PORT))?;
        Ok(s)
    })
    .map_err(|e| format!("kernel sender: {e}"))?;
    // Resolve the neighbour first so the first datagrams do not wait on ARP.
    let _ = src.send(&[0u8; 1]);
    let mut b1 = [0u8; 16];
    let _ = sink.recv(&mut b1);
    thread::sleep(Duration::from_millis(100));
    let done = Arc::new(AtomicBool::new(false));
    let d = done.clone();
    let receiver = thread::spawn(move || record(&d, |buf| sink.recv(buf).ok()));
    let sent = offer(r, secs, |buf| src.send(buf).is_ok());
    done.store(true, Ordering::Relaxed);
    let arrivals = receiver
        .join()
        .map_err(|_| "receiver panicked".to_string())?;
    Ok(analyse(&arrivals, sent, r, b, secs))
}

// ---- TCP ------------------------------------------------------------------------------------

/// What one TCP run found.
#[derive(Debug, Clone, Copy, Default)]
struct TcpShaped {
    goodput_error_pct: f64,
    retransmissions: f64,
}

/// Payload the token rate carries in full-size segments (1460 of every 1514 frame bytes).
fn tcp_goodput_target(r: u64) -> f64 {
    r as f64 * 1460.0 / 1514.0
}

/// Reads a stream to its end, timing the first and last bytes: (bytes, span in seconds).
fn drain(mut read: impl FnMut(&mut [u8]) -> std::io::Result<usize>) -> (u64, f64) {
    let mut buf = vec![0u8; 64 * 1024];
    let (mut total, mut first, mut last) = (0u64, None, Instant::now());
    while let Ok(n) = read(&mut buf) {
        if n == 0 {
            break;
        }
        let now = Instant::now();
        // Time from the end of the first read: its bytes may be the initial bucket's burst.
        if first.is_none() {
            first = Some(now);
        } else {
            total += n as u64;
        }
        last = now;
    }
    (
        total,
        first.map_or(0.0, |f| last.duration_since(f).as_secs_f64()),
    )
}

/// TCP data segments in a pcap file whose sequence range was (partly) seen before.
fn pcap_retransmissions(path: &std::path::Path) -> Result<u64, String> {
    let b = std::fs::read(path).map_err(|e| format!("pcap: {e}"))?;
    let mut at = 24;
    let mut high: std::collections::HashMap<(u32, u16), u32> = Default::default();
    let mut count = 0;
    while at + 16 <= b.len() {
        let incl = u32::from_le_bytes([b[at + 8], b[at + 9], b[at + 10], b[at + 11]]) as usize;
        let f = &b[at + 16..(at + 16 + incl).min(b.len())];
        at += 16 + incl;
        let Some((key, seq, len)) = tcp_data(f) else {
            continue;
        };
        let end = seq.wrapping_add(len);
        match high.get(&key) {
            Some(&h) if (seq.wrapping_sub(h) as i32) < 0 => count += 1,
            _ => {}
        }
        if high
            .get(&key)
            .is_none_or(|&h| (end.wrapping_sub(h) as i32) > 0)
        {
            high.insert(key, end);
        }
    }
    Ok(count)
}

/// For a frame holding a TCP segment with data: (source address, source port), its sequence
/// number and its data length (read with smoltcp's wire types).
fn tcp_data(frame: &[u8]) -> Option<((u32, u16), u32, u32)> {
    let eth = EthernetFrame::new_checked(frame).ok()?;
    if eth.ethertype() != EthernetProtocol::Ipv4 {
        return None;
    }
    let ip = Ipv4Packet::new_checked(eth.payload()).ok()?;
    if ip.next_header() != IpProtocol::Tcp {
        return None;
    }
    let tcp = TcpPacket::new_checked(ip.payload()).ok()?;
    let len = tcp.payload().len() as u32;
    (len > 0).then(|| {
        let key = (u32::from(ip.src_addr()), tcp.src_port());
        (key, tcp.seq_number().0 as u32, len)
    })
}

/// Ours: a shaped ws2 TCP connection on a virtual switch, the receiver's frames in a pcap.
fn ours_tcp(r: u64, b: u64, secs: f64) -> Result<TcpShaped, String> {
    let switch = VirtualSwitch::new(8);
    let pcap = std::env::temp_dir().join(format!("ws2-bench-shaping-{}.pcap", std::process::id()));
    let tx = Stack::new(StackConfig::new(cidr("10.0.3.1/24")), switch.port())
        .map_err(|e| e.to_string())?;
    let rx_link = ws2_tap::PcapTee::new(switch.port(), &pcap).map_err(|e| format!("pcap: {e}"))?;
    let rx =
        Stack::new(StackConfig::new(cidr("10.0.3.2/24")), rx_link).map_err(|e| e.to_string())?;
    let listener = ws2_stack::net::TcpListener::bind(&rx, ("10.0.3.2", PORT))
        .map_err(|e| format!("listen: {e}"))?;
    let receiver = thread::spawn(move || {
        let (conn, _) = listener.accept()?;
        Ok::<_, std::io::Error>(drain(|buf| std::io::Read::read(&mut &conn, buf)))
    });
    let sock = FlowSocket::open(&tx, true, None, None)?;
    let qos = Qos {
        SendingFlowspec: Flowspec {
            TokenRate: i32::try_from(r).map_err(|_| "rate too large")?,
            TokenBucketSize: i32::try_from(b).map_err(|_| "bucket too large")?,
            LevelOfGuarantee: Guarantee::GuaranteedService,
            ..Flowspec::DEFAULT
        },
        ..Qos::default()
    };
    let to: SocketAddrV4 = format!("10.0.3.2:{PORT}").parse().expect("literal");
    sock.connect(to, Some(&qos))
        .map_err(|e| format!("WSAConnect: {e}"))?;
    let chunk = vec![0x55u8; 16 * 1024];
    let start = Instant::now();
    while start.elapsed().as_secs_f64() < secs {
        sock.send_all(&chunk)?;
    }
    let _ = sock.ws.shutdown(sock.s, ws2_stack::winsock::SD_SEND);
    let (bytes, span) = receiver
        .join()
        .map_err(|_| "receiver panicked".to_string())?
        .map_err(|e| format!("receiver: {e}"))?;
    drop(sock);
    drop((tx, rx));
    let retransmissions = pcap_retransmissions(&pcap);
    let _ = std::fs::remove_file(&pcap);
    let goodput = bytes as f64 / span.max(1e-9);
    Ok(TcpShaped {
        goodput_error_pct: (goodput - tcp_goodput_target(r)) * 100.0 / tcp_goodput_target(r),
        retransmissions: retransmissions? as f64,
    })
}

/// The kernel sender's `Tcp: RetransSegs` in namespace `ns`.
fn retrans_segs(ns: &str) -> Result<u64, String> {
    let out = Command::new("ip")
        .args(["netns", "exec", ns, "cat", "/proc/net/snmp"])
        .output()
        .map_err(|e| format!("ip netns exec: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    let mut tcp = text.lines().filter(|l| l.starts_with("Tcp:"));
    let (names, values) = (tcp.next().unwrap_or(""), tcp.next().unwrap_or(""));
    names
        .split_whitespace()
        .zip(values.split_whitespace())
        .find(|(n, _)| *n == "RetransSegs")
        .and_then(|(_, v)| v.parse().ok())
        .ok_or_else(|| "no RetransSegs in /proc/net/snmp".into())
}

/// The anchor: kernel TCP through the same `tc tbf` (set by [`tbf`] before).
fn tbf_tcp(pair: &VethPair, r: u64, secs: f64) -> Result<TcpShaped, String> {
    let listener =
        ws2_tap::in_namespace(&pair.rx, || std::net::TcpListener::bind(("0.0.0.0", PORT)))
            .map_err(|e| format!("kernel listener: {e}"))?;
    let receiver = thread::spawn(move || {
        let (mut conn, _) = listener.accept()?;
        Ok::<_, std::io::Error>(drain(|buf| std::io::Read::read(&mut conn, buf)))
    });
    let before = retrans_segs(&pair.tx)?;
    let mut conn =
        ws2_tap::in_namespace(&pair.tx, || std::net::TcpStream::connect((RX_ADDR, PORT)))
            .map_err(|e| format!("kernel sender: {e}"))?;
    let chunk = vec![0x55u8; 16 * 1024];
    let start = Instant::now();
    while start.elapsed().as_secs_f64() < secs {
        std::io::Write::write_all(&mut conn, &chunk).map_err(|e| format!("kernel send: {e}"))?;
    }
    let _ = conn.shutdown(std::net::Shutdown::Write);
    let (bytes, span) = receiver
        .join()
        .map_err(|_| "receiver panicked".to_string())?
        .map_err(|e| format!("kernel receiver: {e}"))?;
    let after = retrans_segs(&pair.tx)?;
    let goodput = bytes as f64 / span.max(1e-9);
    Ok(TcpShaped {
        goodput_error_pct: (goodput - tcp_goodput_target(r)) * 100.0 / tcp_goodput_target(r),
        retransmissions: after.saturating_sub(before) as f64,
    })
}

// ---- the scheduler's cost -------------------------------------------------------------------

const FLOWS: usize = 1000;
const PACKETS: usize = 1_000_000;

fn scheduler_ns() -> f64 {
    let t = Instant::now();
    let report = std::hint::black_box(ws2_qos::shaping_workload(FLOWS, PACKETS, Instant::now()));
    let ns = t.elapsed().as_nanos() as f64 / PACKETS as f64;
    std::hint::black_box(report);
    ns
}

/// The floor: one FIFO, the same packets (same generator and lengths), pushed and popped.
fn fifo_ns() -> f64 {
    let t = Instant::now();
    let mut q = std::collections::VecDeque::new();
    let mut rng: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut out = 0u64;
    for k in 0..PACKETS as u64 {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        let len = 64 + ((rng >> 32) % 1451) as usize;
        q.push_back(std::hint::black_box((rng % FLOWS as u64, len, k as u32)));
        while let Some(p) = q.pop_front() {
            out = out.wrapping_add(p.1 as u64);
        }
    }
    std::hint::black_box(out);
    t.elapsed().as_nanos() as f64 / PACKETS as f64
}

/// The median of one figure over runs; 0 when there were none (the anchor skipped).
fn median_of<T>(runs: &[T], figure: fn(&T) -> f64) -> f64 {
    if runs.is_empty() {
        0.0
    } else {
        median(runs.iter().map(figure).collect())
    }
}

pub(crate) fn shaping(runs: usize, secs: f64) -> Result<Vec<Figure>, String> {
    let secs = secs.clamp(2.0, 60.0);
    let anchor = match anchor_unavailable() {
        Some(why) => Err(why),
        None => VethPair::new().map_err(|e| format!("veth setup failed: {e}")),
    };
    if let Err(why) = &anchor {
        eprintln!(
            "ws2 bench shaping: SKIP the tc tbf anchor ({why}); ws2's figures are reported \
             with baseline_value 0"
        );
    }
    let baseline: &'static str = if anchor.is_ok() {
        "tc tbf on veth, kernel UDP"
    } else {
        "tc tbf (skipped)"
    };
    let mut figures = Vec::new();
    for (r, b) in CASES {
        let (mut o, mut k) = (Vec::new(), Vec::new());
        let (mut ot, mut kt) = (Vec::new(), Vec::new());
        for _ in 0..runs {
            o.push(ours(r, b, secs)?);
            ot.push(ours_tcp(r, b, secs)?);
            if let Ok(pair) = &anchor {
                k.push(tbf(pair, r, b, secs)?);
                kt.push(tbf_tcp(pair, r, secs)?);
            }
        }
        for (metric, unit, f) in [
            (
                "udp rate error",
                "%",
                (|s: &Shaped| s.rate_error_pct) as fn(&Shaped) -> f64,
            ),
            ("udp 1s excess over R+B", "bytes", |s: &Shaped| {
                s.burst_excess
            }),
            ("udp loss", "%", |s: &Shaped| s.loss_pct),
        ] {
            figures.push(Figure {
                scenario: "shaping",
                metric: format!("{metric} R={r} B={b}"),
                value: median_of(&o, f),
                unit,
                baseline,
                baseline_value: median_of(&k, f),
            });
        }
        for (metric, unit, f) in [
            (
                "tcp goodput error",
                "%",
                (|s: &TcpShaped| s.goodput_error_pct) as fn(&TcpShaped) -> f64,
            ),
            ("tcp retransmissions", "segments", |s: &TcpShaped| {
                s.retransmissions
            }),
        ] {
            figures.push(Figure {
                scenario: "shaping",
                metric: format!("{metric} R={r} B={b}"),
                value: median_of(&ot, f),
                unit,
                baseline: if anchor.is_ok() {
                    "tc tbf on veth, kernel TCP"
                } else {
                    "tc tbf (skipped)"
                },
                baseline_value: median_of(&kt, f),
            });
        }
    }
    let (mut ours_ns, mut fifo) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        ours_ns.push(scheduler_ns());
        fifo.push(fifo_ns());
    }
    figures.push(Figure {
        scenario: "shaping",
        metric: "scheduler_ns_per_packet".into(),
        value: median(ours_ns),
        unit: "ns",
        baseline: "VecDeque FIFO push+pop (floor)",
        baseline_value: median(fifo),
    });
    drop(anchor);
    Ok(figures)
}

#[cfg(test)]
mod tests {
    use super::*;
    use smoltcp::phy::ChecksumCapabilities;
    use smoltcp::wire::{
        EthernetAddress, EthernetRepr, Ipv4Repr, TcpControl, TcpRepr, TcpSeqNumber,
    };

    /// A TCP segment 10.0.3.1:5000 → 10.0.3.2:9 with `data`, sequence number 77, padded to
    /// `pad` octets as a short Ethernet frame is.
    fn segment(data: &[u8], pad: usize) -> Vec<u8> {
        let tcp = TcpRepr {
            src_port: 5000,
            dst_port: 9,
            control: TcpControl::None,
            seq_number: TcpSeqNumber(77),
            ack_number: Some(TcpSeqNumber(1)),
            window_len: 1000,
            window_scale: None,
            max_seg_size: None,
            sack_permitted: false,
            sack_ranges: [None; 3],
            timestamp: None,
            payload: data,
        };
        let ip = Ipv4Repr {
            src_addr: "10.0.3.1".parse().unwrap(),
            dst_addr: "10.0.3.2".parse().unwrap(),
            next_header: IpProtocol::Tcp,
            payload_len: tcp.buffer_len(),
            hop_limit: 64,
        };
        let eth = EthernetRepr {
            src_addr: EthernetAddress([2, 0, 0, 0, 0, 1]),
            dst_addr: EthernetAddress([2, 0, 0, 0, 0, 2]),
            ethertype: EthernetProtocol::Ipv4,
        };
        let len = eth.buffer_len() + ip.buffer_len() + tcp.buffer_len();
        let mut f = vec![0u8; len.max(pad)];
        let mut frame = EthernetFrame::new_unchecked(&mut f[..]);
        eth.emit(&mut frame);
        let caps = ChecksumCapabilities::default();
        let mut packet = Ipv4Packet::new_unchecked(frame.payload_mut());
        ip.emit(&mut packet, &caps);
        tcp.emit(
            &mut TcpPacket::new_unchecked(packet.payload_mut()),
            &ip.src_addr.into(),
            &ip.dst_addr.into(),
            &caps,
        );
        f
    }

    #[test]
    fn tcp_data_reads_a_segment_and_ignores_padding() {
        let key = (u32::from(std::net::Ipv4Addr::new(10, 0, 3, 1)), 5000);
        assert_eq!(tcp_data(&segment(b"abc", 0)), Some((key, 77, 3)));
        assert_eq!(tcp_data(&segment(b"a", 60)), Some((key, 77, 1)));
        assert_eq!(tcp_data(&segment(b"", 60)), None, "no data");
        assert_eq!(tcp_data(&segment(b"abc", 0)[..40]), None, "cut short");
    }
}
