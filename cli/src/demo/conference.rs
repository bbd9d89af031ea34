//! The conference of `ws2 demo`: audio, video and a bulk transfer in one socket group over a
//! shaped 10 Mbit/s link, with a table of each stream's flowspec against what the receiver
//! measured (rate, and one-way delay from timestamps in the payload: both ends are in this
//! process, so they share one clock).
//!
//! - audio: UDP, `WSAGetQOSByName("G711")` (GuaranteedService), `SO_GROUP_PRIORITY` 0, a
//!   172-byte RTP-sized payload every 20 ms;
//! - video: UDP, `H263CIF` (PredictiveService), priority 1, one 1,083-byte picture every
//!   1/15 s;
//! - bulk: TCP, best effort without a rate (`WSAConnect` with a default QOS, so its frames pass
//!   the shaper and wait behind the others), priority 2, as fast as it may.
//!
//! The sender's `StackConfig::link_rate` paces shaped frames to 1,250,000 B/s: on an in-process
//! link nothing else pushes back, and without it priorities would have nothing to order.

use std::net::SocketAddrV4;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use ws2_stack::net::{TcpListener, UdpSocket};
use ws2_stack::winsock::*;
use ws2_stack::{Stack, StackConfig};
use ws2_tap::VirtualSwitch;

use super::super::flow_socket::FlowSocket;
use super::super::qos_arg::{show, GroupArg};
use super::super::transfer::UDP_FRAME_OVERHEAD;
use super::Row;

/// The shaped link's nominal rate: 10 Mbit/s.
const LINK_RATE: u64 = 1_250_000;
const SENDER: &str = "10.0.1.1";
const RECEIVER: &str = "10.0.1.2";

/// One periodic media stream.
struct Media {
    name: &'static str,
    template: &'static str,
    priority: i32,
    port: u16,
    payload: usize,
    period: Duration,
}

const AUDIO: Media = Media {
    name: "audio",
    template: "G711",
    priority: 0,
    port: 6000,
    // 160 bytes of 20 ms G.711 + the 12-byte RTP header.
    payload: 172,
    period: Duration::from_millis(20),
};

const VIDEO: Media = Media {
    name: "video",
    template: "H263CIF",
    priority: 1,
    port: 6001,
    // 128 kbit/s at 15 pictures/s: 1,067 bytes + 12 RTP + 4 payload header.
    payload: 1083,
    period: Duration::from_nanos(1_000_000_000 / 15),
};

const BULK_PORT: u16 = 6002;

/// What the receiver saw of one UDP stream.
#[derive(Default)]
struct Seen {
    datagrams: u64,
    frame_bytes: u64,
    first: Option<Instant>,
    last: Option<Instant>,
    delays_us: Vec<f64>,
}

fn stack(switch: &VirtualSwitch, addr: &str, link_rate: Option<u64>) -> Result<Stack, String> {
    let mut config = StackConfig::new(format!("{addr}/24").parse().map_err(|e| format!("{e}"))?);
    config.link_rate = link_rate;
    Stack::from_box(config, Box::new(switch.port())).map_err(|e| e.to_string())
}

fn addr(ip: &str, port: u16) -> SocketAddrV4 {
    SocketAddrV4::new(ip.parse().expect("literal address"), port)
}

/// Runs the conference for `secs` seconds; returns the demo's summary row and the table of
/// flowspecs against measurements.
pub(crate) fn run(seed: u64, secs: f64) -> (Row, Vec<String>) {
    let row = |detail: String, ok| Row {
        host: SENDER.into(),
        test: "conference",
        detail,
        ok,
    };
    match conference(seed, secs) {
        Ok((detail, ok, table)) => (row(detail, ok), table),
        Err(e) => (row(format!("failed: {e}"), false), Vec::new()),
    }
}

/// The summary row's detail, whether every stream met its flowspec, and the table.
fn conference(seed: u64, secs: f64) -> Result<(String, bool, Vec<String>), String> {
    let switch = VirtualSwitch::new(seed);
    let tx = stack(&switch, SENDER, Some(LINK_RATE))?;
    let rx = stack(&switch, RECEIVER, None)?;
    let epoch = Instant::now();
    let run_for = Duration::from_secs_f64(secs);
    let stop = Arc::new(AtomicBool::new(false));

    // The receiver: two UDP sinks reading timestamps, one TCP sink counting bytes.
    let mut sinks = Vec::new();
    for m in [&AUDIO, &VIDEO] {
        let sock =
            UdpSocket::bind(&rx, addr(RECEIVER, m.port)).map_err(|e| format!("bind: {e}"))?;
        sock.set_read_timeout(Some(Duration::from_millis(100)))
            .map_err(|e| e.to_string())?;
        let seen = Arc::new(Mutex::new(Seen::default()));
        let (st, sn) = (stop.clone(), seen.clone());
        let job = thread::spawn(move || {
            let mut buf = [0u8; 2048];
            while !st.load(Ordering::Relaxed) {
                let Ok((n, _)) = sock.recv_from(&mut buf) else {
                    continue;
                };
                let now = Instant::now();
                let mut s = sn.lock().unwrap_or_else(|p| p.into_inner());
                if n >= 8 {
                    let sent = u64::from_be_bytes(buf[..8].try_into().expect("8 bytes"));
                    let at = now.duration_since(epoch).as_nanos() as f64;
                    s.delays_us.push((at - sent as f64) / 1000.0);
                }
                s.datagrams += 1;
                s.frame_bytes += n as u64 + UDP_FRAME_OVERHEAD;
                s.first.get_or_insert(now);
                s.last = Some(now);
            }
        });
        sinks.push((seen, job));
    }
    let listener =
        TcpListener::bind(&rx, addr(RECEIVER, BULK_PORT)).map_err(|e| format!("listen: {e}"))?;
    let bulk_sink = thread::spawn(move || -> (u64, Duration) {
        let Ok((stream, _)) = listener.accept() else {
            return (0, Duration::ZERO);
        };
        let start = Instant::now();
        let mut got = 0u64;
        let mut buf = vec![0u8; 64 * 1024];
        let mut last = start;
        while let Ok(n) = std::io::Read::read(&mut &stream, &mut buf) {
            if n == 0 {
                break;
            }
            got += n as u64;
            last = Instant::now();
        }
        (got, last - start)
    });

    // The sender: one group, three members.
    let audio = FlowSocket::open(&tx, false, Some(GroupArg::New), Some(AUDIO.priority))?;
    let group = audio.group_id()?;
    let video = FlowSocket::open(
        &tx,
        false,
        Some(GroupArg::Join(group)),
        Some(VIDEO.priority),
    )?;
    let bulk = FlowSocket::open(&tx, true, Some(GroupArg::Join(group)), Some(2))?;
    let mut flowspecs = Vec::new();
    for (m, sock) in [(&AUDIO, &audio), (&VIDEO, &video)] {
        let mut qos = QOS::default();
        let mut name = WSABUF::new(m.template.as_bytes().to_vec());
        sock.ws
            .WSAGetQOSByName(sock.s, Some(&mut name), Some(&mut qos))
            .map_err(|e| format!("WSAGetQOSByName({}): {e}", m.template))?;
        sock.bind(addr(SENDER, 0))?;
        sock.set_qos(&qos)?;
        flowspecs.push(qos.SendingFlowspec);
    }
    let bulk_qos = QOS::default();
    bulk.connect(addr(RECEIVER, BULK_PORT), Some(&bulk_qos))
        .map_err(|e| format!("WSAConnect(bulk): {e}"))?;

    let start = Instant::now();
    let media = |m: &'static Media, sock: &FlowSocket| {
        let to = addr(RECEIVER, m.port);
        let mut buf = vec![0u8; m.payload];
        let mut sent = 0u64;
        let mut next = start;
        while next < start + run_for {
            if let Some(wait) = next.checked_duration_since(Instant::now()) {
                thread::sleep(wait);
            }
            let ts = epoch.elapsed().as_nanos() as u64;
            buf[..8].copy_from_slice(&ts.to_be_bytes());
            if sock.send_to(&buf, to).is_ok() {
                sent += 1;
            }
            next += m.period;
        }
        sent
    };
    let (sent_audio, sent_video, bulk_sent) = thread::scope(|scope| {
        let (media, audio, video) = (&media, &audio, &video);
        let a = scope.spawn(move || media(&AUDIO, audio));
        let v = scope.spawn(move || media(&VIDEO, video));
        let b = scope.spawn(|| {
            let chunk = vec![0x5au8; 16 * 1024];
            let mut sent = 0u64;
            while start.elapsed() < run_for {
                if bulk.send_all(&chunk).is_err() {
                    break;
                }
                sent += chunk.len() as u64;
            }
            let _ = bulk.ws.shutdown(bulk.s, SD_SEND);
            sent
        });
        (
            a.join().unwrap_or(0),
            v.join().unwrap_or(0),
            b.join().unwrap_or(0),
        )
    });
    // Let what is queued arrive, then stop the sinks.
    let (bulk_got, bulk_time) = bulk_sink.join().unwrap_or((0, Duration::ZERO));
    thread::sleep(Duration::from_millis(200));
    stop.store(true, Ordering::Relaxed);
    let mut seen = Vec::new();
    for (s, job) in sinks {
        let _ = job.join();
        seen.push(std::mem::take(
            &mut *s.lock().unwrap_or_else(|p| p.into_inner()),
        ));
    }
    drop((audio, video, bulk));

    let mut out = Vec::new();
    out.push(String::new());
    out.push(format!(
        "conference: group {group} on a {:.0} Mbit/s shaped link (link_rate {LINK_RATE} B/s), \
         {secs:.1} s; rates in Ethernet-frame bytes/s as the shaper counts them, bulk in payload",
        LINK_RATE as f64 * 8.0 / 1e6
    ));
    out.push(format!(
        "{:<6} {:<5} {:>4} {:<22} {:>10} {:>10} {:>9} {:>8} {:>8} {:>9} {:<3}",
        "stream",
        "proto",
        "prio",
        "flowspec",
        "TokenRate",
        "measured",
        "delivered",
        "p50 ms",
        "p99 ms",
        "Latency",
        "ok"
    ));
    out.push("-".repeat(104));
    let mut all_ok = true;
    let mut summary = Vec::new();
    for ((m, spec), (s, sent)) in [&AUDIO, &VIDEO]
        .into_iter()
        .zip(&flowspecs)
        .zip(seen.iter_mut().zip([sent_audio, sent_video]))
    {
        s.delays_us.sort_by(f64::total_cmp);
        let pct = |p: f64| {
            let d = &s.delays_us;
            d.get(((d.len().max(1) - 1) as f64 * p).round() as usize)
                .map_or(f64::NAN, |us| us / 1000.0)
        };
        // Rate over the first arrival to the last: frames after the first over that span.
        let span = match (s.first, s.last) {
            (Some(a), Some(b)) if b > a => (b - a).as_secs_f64(),
            _ => 0.0,
        };
        let per = m.payload as u64 + UDP_FRAME_OVERHEAD;
        let rate = if span > 0.0 {
            (s.frame_bytes.saturating_sub(per)) as f64 / span
        } else {
            0.0
        };
        let latency_ms = f64::from(spec.Latency) / 1000.0;
        let (p50, p99) = (pct(0.5), pct(0.99));
        let delivered = s.datagrams as f64 / sent.max(1) as f64;
        let ok = delivered >= 0.95
            && rate <= spec.TokenRate as f64 * 1.02
            && (spec.Latency < 0 || p99 <= latency_ms);
        all_ok &= ok;
        out.push(format!(
            "{:<6} {:<5} {:>4} {:<22} {:>10} {:>10.0} {:>8.1}% {:>8.2} {:>8.2} {:>9.1} {:<3}",
            m.name,
            "udp",
            m.priority,
            format!("{} {}", m.template, short(spec.LevelOfGuarantee)),
            show(spec.TokenRate),
            rate,
            delivered * 100.0,
            p50,
            p99,
            latency_ms,
            if ok { "yes" } else { "NO" }
        ));
        summary.push(format!("{} p99 {p99:.1} ms", m.name));
    }
    let bulk_rate = bulk_got as f64 / bulk_time.as_secs_f64().max(1e-9);
    // The bulk transfer gets what the link leaves; TCP/IP headers take about 3.6% of it.
    let left = (LINK_RATE - flowspecs.iter().map(|f| f.TokenRate as u64).sum::<u64>()) as f64;
    let bulk_ok = bulk_got == bulk_sent && bulk_rate >= 0.6 * left && bulk_rate <= LINK_RATE as f64;
    all_ok &= bulk_ok;
    out.push(format!(
        "{:<6} {:<5} {:>4} {:<22} {:>10} {:>10.0} {:>8.1}% {:>8} {:>8} {:>9} {:<3}",
        "bulk",
        "tcp",
        2,
        "default best effort",
        "-",
        bulk_rate,
        bulk_got as f64 * 100.0 / bulk_sent.max(1) as f64,
        "-",
        "-",
        "-",
        if bulk_ok { "yes" } else { "NO" }
    ));
    out.push(format!(
        "(the link is {LINK_RATE} B/s; audio and video reserve {:.0}; bulk may use {left:.0})",
        LINK_RATE as f64 - left
    ));
    summary.push(format!("bulk {:.2} Mbit/s", bulk_rate * 8.0 / 1e6));
    Ok((
        format!("group {group}: {}", summary.join(", ")),
        all_ok,
        out,
    ))
}

fn short(g: GUARANTEE) -> &'static str {
    match g {
        GUARANTEE::GuaranteedService => "guaranteed",
        GUARANTEE::PredictiveService => "predictive",
        GUARANTEE::ControlledLoadService => "controlled",
        _ => "best effort",
    }
}
