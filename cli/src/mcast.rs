//! `ws2 mcast`: join an IP multicast group, send sequence-numbered datagrams to it, and count
//! what arrives (datagrams, bytes, losses as sequence gaps, senders).
//!
//! The socket is made the Winsock way (CHECKLIST §1.10): `WSASocket` with
//! `WSA_FLAG_MULTIPOINT_C_LEAF | WSA_FLAG_MULTIPOINT_D_LEAF`, `SIO_MULTICAST_SCOPE` (`--ttl`),
//! `SIO_MULTIPOINT_LOOPBACK` (`--loopback`), then `WSAJoinLeaf` with `JL_SENDER_ONLY`
//! (`--send`), `JL_RECEIVER_ONLY` (`--recv`) or `JL_BOTH` (neither), and the flowspec of
//! `--qos` as its `lpSQOS`. With `--source S` it is a plain UDP socket bound to the group's port
//! that asks for (S, group) with `setsockopt(IP_ADD_SOURCE_MEMBERSHIP)` (an IGMPv3 INCLUDE
//! record), with `IP_MULTICAST_TTL`/`IP_MULTICAST_LOOP` and `SIO_SET_QOS` instead.
//!
//! Two processes on one `ws2 switch`:
//!
//! ```sh
//! ws2 switch --socket /tmp/lan.sock &
//! ws2 mcast --link unix:/tmp/lan.sock --addr 10.9.0.2/24 --join 239.1.2.3:5000 --recv \
//!     --duration 10 --json
//! ws2 mcast --link unix:/tmp/lan.sock --addr 10.9.0.1/24 --join 239.1.2.3:5000 --send \
//!     --qos G711 --datagram 172 --duration 5
//! ```
//!
//! Every datagram starts with a 20-byte header ([`stamp`]): `WS2M`, a sequence number from 0
//! and the sender's wall-clock time in ns, so the receiver can count gaps per sender (a datagram
//! missing between the first and the highest sequence number it saw is lost; one arriving below
//! the highest is counted as reordered) and, when both ends share a clock (one host), one-way
//! delay. Datagrams sent before the receiver joined are not losses.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use clap::{Args, ValueEnum};
use ws2_stack::winsock::*;

use super::ending;
use super::interrupt::Interrupts;
use super::qos_arg::{self, QosArg};
use super::transfer::{Counters, RateTicker, UDP_FRAME_OVERHEAD};
use super::LinkArgs;

const EXAMPLE: &str = "Without --send or --recv the socket sends and receives (JL_BOTH). The \
receiver's losses are gaps in each sender's sequence numbers.

Example, two processes on one `ws2 switch`:
  ws2 switch --socket /tmp/lan.sock &
  ws2 mcast --link unix:/tmp/lan.sock --addr 10.9.0.2/24 --join 239.1.2.3:5000 --recv --duration 10 --json
  ws2 mcast --link unix:/tmp/lan.sock --addr 10.9.0.1/24 --join 239.1.2.3:5000 --send --qos G711 --datagram 172 --duration 5";

/// Port of `--join GROUP` without one.
pub(crate) const DEFAULT_PORT: u16 = 5000;
/// Bytes of the header every datagram starts with (see [`stamp`]).
pub(crate) const HEADER_LEN: usize = 20;
const MAGIC: [u8; 4] = *b"WS2M";
/// Payload bytes/s when neither `--rate` nor `--qos` is given.
const DEFAULT_RATE: u64 = 100_000;
/// How often a receiver looks at its deadline.
const POLL_MS: i32 = 100;

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OnOff {
    On,
    Off,
}

#[derive(Args, Debug)]
#[command(after_help = EXAMPLE)]
pub(crate) struct McastArgs {
    #[command(flatten)]
    link: LinkArgs,
    /// The group, with its port: A.B.C.D[:PORT], 224.0.0.0 to 239.255.255.255 (port 5000 if
    /// omitted).
    #[arg(long, value_name = "GROUP[:PORT]", value_parser = parse_group)]
    join: SocketAddrV4,
    /// Receive the group only from this source: setsockopt(IP_ADD_SOURCE_MEMBERSHIP) on a plain
    /// UDP socket instead of WSAJoinLeaf.
    #[arg(long, conflicts_with = "send")]
    source: Option<Ipv4Addr>,
    /// Only send (WSAJoinLeaf with JL_SENDER_ONLY: no membership, no IGMP).
    #[arg(long, conflicts_with = "recv")]
    send: bool,
    /// Only receive (JL_RECEIVER_ONLY). Without --send or --recv the socket does both (JL_BOTH).
    #[arg(long)]
    recv: bool,
    /// Scope of what is sent (SIO_MULTICAST_SCOPE / IP_MULTICAST_TTL): 0 = this host only.
    #[arg(long, default_value_t = 1)]
    ttl: u8,
    /// Whether the socket hears its own datagrams (SIO_MULTIPOINT_LOOPBACK / IP_MULTICAST_LOOP).
    #[arg(long, value_enum, default_value = "on")]
    loopback: OnOff,
    /// Payload bytes per second to send (0: as fast as the stack takes them, so a flowspec's
    /// shaper does the pacing). Default: 100000, or with --qos the flowspec's TokenRate less
    /// the UDP/IP/Ethernet headers it counts.
    #[arg(long, value_name = "BYTES/S")]
    rate: Option<u64>,
    /// The sending flowspec, WSAJoinLeaf's lpSQOS: a WSAGetQOSByName template (G711, G723.1,
    /// G729, GSM6.10, H261QCIF, H261CIF, H263QCIF, H263CIF) or
    /// rate=R,bucket=B,peak=P,service=best|controlled|predictive|guaranteed (bytes/s, bytes).
    #[arg(long, value_parser = qos_arg::parse_qos)]
    qos: Option<QosArg>,
    /// Bytes of UDP payload per datagram (20 to 65507).
    #[arg(long, default_value_t = 1000, value_parser = parse_datagram)]
    datagram: usize,
    /// Seconds to send, or to receive after joining.
    #[arg(long, allow_negative_numbers = true, value_parser = crate::ranges::duration)]
    duration: f64,
    /// Print the summary as one JSON object.
    #[arg(long)]
    json: bool,
}

/// `--join`: a multicast address with an optional port.
pub(crate) fn parse_group(s: &str) -> Result<SocketAddrV4, String> {
    let (ip, port) = match s.split_once(':') {
        Some((ip, port)) => (
            ip,
            port.parse::<u16>()
                .ok()
                .filter(|p| *p != 0)
                .ok_or_else(|| format!("{port:?} is not a port (1 to 65535)"))?,
        ),
        None => (s, DEFAULT_PORT),
    };
    let ip: Ipv4Addr = ip
        .parse()
        .map_err(|_| format!("{ip:?} is not an IPv4 address (A.B.C.D[:PORT])"))?;
    if !ip.is_multicast() {
        return Err(format!(
            "{ip} is not a multicast group: groups are 224.0.0.0 to 239.255.255.255"
        ));
    }
    Ok(SocketAddrV4::new(ip, port))
}

fn parse_datagram(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if (HEADER_LEN..=65_507).contains(&n) => Ok(n),
        _ => Err(format!(
            "{s:?}: a datagram carries {HEADER_LEN} to 65507 bytes (the first {HEADER_LEN} \
             are the sequence header)"
        )),
    }
}

// ---- pieces the demo and the bench share ---------------------------------------------------

/// Writes the datagram header: `WS2M`, `seq` and `sent_ns` (both big-endian u64).
pub(crate) fn stamp(buf: &mut [u8], seq: u64, sent_ns: u64) {
    buf[..4].copy_from_slice(&MAGIC);
    buf[4..12].copy_from_slice(&seq.to_be_bytes());
    buf[12..20].copy_from_slice(&sent_ns.to_be_bytes());
}

/// The sequence number and send time of a datagram that starts with a header.
pub(crate) fn read_stamp(buf: &[u8]) -> Option<(u64, u64)> {
    if buf.len() < HEADER_LEN || buf[..4] != MAGIC {
        return None;
    }
    let word = |at: usize| u64::from_be_bytes(buf[at..at + 8].try_into().expect("8 bytes"));
    Some((word(4), word(12)))
}

/// Wall-clock nanoseconds since the Unix epoch (comparable between processes on one host).
pub(crate) fn wall_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// A started Winsock session on `stack`.
pub(crate) fn winsock(stack: &ws2_stack::Stack) -> Result<Winsock, String> {
    let ws = Winsock::new(stack.clone());
    let mut data = WSADATA::default();
    match ws.WSAStartup(MAKEWORD(2, 2), Some(&mut data)) {
        0 => Ok(ws),
        e => Err(format!("WSAStartup: {}", WsaError(e))),
    }
}

/// `WSASocket(AF_INET, SOCK_DGRAM, IPPROTO_UDP, NULL, 0, C_LEAF | D_LEAF | OVERLAPPED)`.
pub(crate) fn leaf_socket(ws: &Winsock) -> Result<SOCKET, String> {
    ws.WSASocket(
        AF_INET,
        SOCK_DGRAM,
        IPPROTO_UDP,
        None,
        0,
        WSA_FLAG_MULTIPOINT_C_LEAF | WSA_FLAG_MULTIPOINT_D_LEAF | WSA_FLAG_OVERLAPPED,
    )
    .map_err(|e| format!("WSASocket(c_leaf | d_leaf): {e}"))
}

/// The name of a `WSAJoinLeaf` flag, for reports.
pub(crate) fn jl_name(flags: u32) -> &'static str {
    match flags {
        JL_SENDER_ONLY => "JL_SENDER_ONLY",
        JL_RECEIVER_ONLY => "JL_RECEIVER_ONLY",
        _ => "JL_BOTH",
    }
}

/// `WSAJoinLeaf(s, group, flags)` with `lpSQOS` = `qos`, blocking until the IGMP report is out.
pub(crate) fn join_leaf(
    ws: &Winsock,
    s: SOCKET,
    group: SocketAddrV4,
    flags: u32,
    qos: Option<&QOS>,
) -> Result<(), String> {
    ws.WSAJoinLeaf(
        s,
        Some(&SOCKADDR_IN::new(group)),
        SOCKADDR_IN_LEN,
        None,
        None,
        qos,
        None,
        flags,
    )
    .map(drop)
    .map_err(|e| match e {
        WsaError::WSAEOPNOTSUPP if qos.is_some() => format!(
            "WSAJoinLeaf({group}, {}) with the flowspec: the link cannot reserve it ({e})",
            jl_name(flags)
        ),
        e => format!("WSAJoinLeaf({group}, {}): {e}", jl_name(flags)),
    })
}

/// A 4-byte integer `WSAIoctl` input (`SIO_MULTICAST_SCOPE`, `SIO_MULTIPOINT_LOOPBACK`).
pub(crate) fn ioctl_int(
    ws: &Winsock,
    s: SOCKET,
    code: u32,
    name: &str,
    v: i32,
) -> Result<(), String> {
    let mut returned = 0u32;
    ws.WSAIoctl(
        s,
        code,
        &v.to_le_bytes(),
        &mut [],
        Some(&mut returned),
        None,
        None,
    )
    .map_err(|e| format!("WSAIoctl({name}, {v}): {e}"))
}

/// An integer `setsockopt`.
pub(crate) fn setsockopt_int(
    ws: &Winsock,
    s: SOCKET,
    level: i32,
    name: i32,
    what: &str,
    v: i32,
) -> Result<(), String> {
    ws.setsockopt(s, level, name, Some(&v.to_ne_bytes()), 4)
        .map_err(|e| format!("setsockopt({what}, {v}): {e}"))
}

/// Nearest-rank percentile `p` (0–1) of sorted values; NaN when there are none.
pub(crate) fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

/// What a receiver saw of one sender.
#[derive(Debug, Default, Clone)]
pub(crate) struct Track {
    pub(crate) datagrams: u64,
    pub(crate) bytes: u64,
    pub(crate) first_seq: u64,
    pub(crate) max_seq: u64,
    /// Datagrams that arrived below the highest sequence number seen so far.
    pub(crate) reordered: u64,
    /// One-way delays in ms (receive time minus the stamped send time).
    pub(crate) delays_ms: Vec<f64>,
}

impl Track {
    /// Counts one datagram of `len` bytes with sequence number `seq`, `delay_ms` after it was
    /// stamped.
    pub(crate) fn add(&mut self, seq: u64, len: usize, delay_ms: f64) {
        if self.datagrams == 0 {
            self.first_seq = seq;
            self.max_seq = seq;
        } else if seq > self.max_seq {
            self.max_seq = seq;
        } else {
            self.reordered += 1;
        }
        self.first_seq = self.first_seq.min(seq);
        self.datagrams += 1;
        self.bytes += len as u64;
        self.delays_ms.push(delay_ms);
    }

    /// Sequence numbers between the first and the highest seen that never arrived.
    pub(crate) fn lost(&self) -> u64 {
        if self.datagrams == 0 {
            return 0;
        }
        (self.max_seq - self.first_seq + 1).saturating_sub(self.datagrams)
    }

    /// p50 and p99 one-way delay, ms.
    pub(crate) fn delay_percentiles(&self) -> (f64, f64) {
        let mut d = self.delays_ms.clone();
        d.sort_by(f64::total_cmp);
        (percentile(&d, 0.5), percentile(&d, 0.99))
    }
}

// ---- the command ---------------------------------------------------------------------------

/// What the run saw, for the summary.
#[derive(Default)]
struct Outcome {
    /// Datagrams, bytes, and how long sending took (without the final wait).
    sent: Option<(u64, u64, Duration)>,
    received: Option<BTreeMap<SocketAddrV4, Track>>,
}

pub(crate) fn run(args: &McastArgs) -> Result<(), String> {
    let group = args.join;
    if let Some(src) = args.source {
        if src.is_multicast() || src.is_unspecified() || src.is_broadcast() {
            return Err(format!(
                "--source {src}: a source is the unicast address of a sender"
            ));
        }
    }
    let stack = args.link.start()?;
    // A first Ctrl-C (or SIGTERM) ends the session early; the leave still goes out.
    let interrupts = Interrupts::install().map_err(|e| format!("signal handlers: {e}"))?;
    let ws = winsock(&stack)?;
    let local = args.link.addr.addr;
    let flags = match (args.send, args.recv) {
        (true, _) => JL_SENDER_ONLY,
        (_, true) => JL_RECEIVER_ONLY,
        _ => JL_BOTH,
    };
    let loopback = i32::from(args.loopback == OnOff::On);
    let (s, how) = match args.source {
        Some(src) => {
            let s = ws
                .socket(AF_INET, SOCK_DGRAM, IPPROTO_UDP)
                .map_err(|e| format!("socket: {e}"))?;
            setsockopt_int(&ws, s, SOL_SOCKET, SO_REUSEADDR, "SO_REUSEADDR", 1)?;
            let any = SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, group.port());
            ws.bind(s, Some(&SOCKADDR_IN::new(any)), SOCKADDR_IN_LEN)
                .map_err(|e| format!("bind {any}: {e}"))?;
            let ttl = i32::from(args.ttl);
            setsockopt_int(
                &ws,
                s,
                IPPROTO_IP,
                IP_MULTICAST_TTL,
                "IP_MULTICAST_TTL",
                ttl,
            )?;
            setsockopt_int(
                &ws,
                s,
                IPPROTO_IP,
                IP_MULTICAST_LOOP,
                "IP_MULTICAST_LOOP",
                loopback,
            )?;
            if let Some(q) = &args.qos {
                let mut returned = 0u32;
                ws.WSAIoctl(
                    s,
                    SIO_SET_QOS,
                    &q.qos.to_bytes(),
                    &mut [],
                    Some(&mut returned),
                    None,
                    None,
                )
                .map_err(|e| format!("SIO_SET_QOS: {e}"))?;
            }
            let mreq = IP_MREQ_SOURCE::new(*group.ip(), src, local);
            let t = Instant::now();
            ws.setsockopt(
                s,
                IPPROTO_IP,
                IP_ADD_SOURCE_MEMBERSHIP,
                Some(&mreq.as_bytes()),
                12,
            )
            .map_err(|e| {
                format!("setsockopt(IP_ADD_SOURCE_MEMBERSHIP, {group} from {src}): {e}")
            })?;
            (
                s,
                (format!("IP_ADD_SOURCE_MEMBERSHIP from {src}"), t.elapsed()),
            )
        }
        None => {
            let s = leaf_socket(&ws)?;
            ioctl_int(
                &ws,
                s,
                SIO_MULTICAST_SCOPE,
                "SIO_MULTICAST_SCOPE",
                i32::from(args.ttl),
            )?;
            ioctl_int(
                &ws,
                s,
                SIO_MULTIPOINT_LOOPBACK,
                "SIO_MULTIPOINT_LOOPBACK",
                loopback,
            )?;
            let t = Instant::now();
            join_leaf(&ws, s, group, flags, args.qos.as_ref().map(|q| &q.qos))?;
            (s, (format!("WSAJoinLeaf({})", jl_name(flags)), t.elapsed()))
        }
    };
    let (how, join_time) = how;
    eprintln!(
        "ws2 mcast: {how} to {group} on {local}: {:.2} ms (ttl {}, loopback {})",
        join_time.as_secs_f64() * 1e3,
        args.ttl,
        if loopback != 0 { "on" } else { "off" }
    );
    if let Some(q) = &args.qos {
        eprintln!("ws2 mcast: flowspec {q}");
    }
    let sending = flags != JL_RECEIVER_ONLY;
    let receiving = flags != JL_SENDER_ONLY;
    let duration = Duration::from_secs_f64(args.duration);
    let rate = match (args.rate, &args.qos) {
        (Some(r), _) => r,
        // The shaper counts whole frames: offer TokenRate's worth of them.
        (None, Some(q)) => q.token_rate().map_or(0, |r| {
            r * args.datagram as u64 / (args.datagram as u64 + UDP_FRAME_OVERHEAD)
        }),
        (None, None) => DEFAULT_RATE,
    };
    let counters = Arc::new(Counters::default());
    let ticker = (!args.json).then(|| {
        let token_rate = args.qos.as_ref().and_then(QosArg::token_rate);
        let verb = if receiving { "received" } else { "sent" };
        RateTicker::start(verb, counters.clone(), true, token_rate)
    });
    let stop = AtomicBool::new(false);
    let start = Instant::now();
    let mut outcome = Outcome::default();
    let result = thread::scope(|scope| -> Result<(), String> {
        let sender = sending.then(|| {
            let (ws, counters, stop, interrupts) = (&ws, &counters, &stop, &interrupts);
            let count = !receiving;
            scope.spawn(move || {
                let r = send_loop(
                    ws,
                    s,
                    group,
                    args.datagram,
                    rate,
                    duration,
                    interrupts,
                    |n| {
                        if count {
                            counters.add(n, true);
                        }
                    },
                );
                stop.store(true, Ordering::Relaxed);
                r
            })
        });
        if receiving {
            let deadline = start + duration;
            outcome.received = Some(recv_loop(&ws, s, deadline, &interrupts, &counters)?);
        }
        if let Some(job) = sender {
            let sent = job
                .join()
                .map_err(|_| "the sending thread panicked".to_string())??;
            outcome.sent = Some(sent);
        }
        Ok(())
    });
    let elapsed = start.elapsed();
    drop(ticker);
    let _ = ws.closesocket(s);
    let _ = ws.WSACleanup();
    // The leave (IGMPv2) or state change (IGMPv3) goes out before the process exits.
    ending::finish(stack, Some(&interrupts));
    result?;
    if args.json {
        println!("{}", json(args, &how, join_time, elapsed, &outcome));
    } else {
        print_summary(args, elapsed, rate, &outcome);
    }
    Ok(())
}

/// Sends stamped datagrams of `size` bytes to `group` for `duration`, paced to `rate` payload
/// bytes/s (0: unpaced), or until interrupted; `(datagrams, bytes, time spent sending)`. What is
/// still queued when the socket closes leaves in the stack's graceful end.
#[allow(clippy::too_many_arguments)]
fn send_loop(
    ws: &Winsock,
    s: SOCKET,
    group: SocketAddrV4,
    size: usize,
    rate: u64,
    duration: Duration,
    interrupts: &Interrupts,
    mut sent_one: impl FnMut(usize),
) -> Result<(u64, u64, Duration), String> {
    let to = SOCKADDR_IN::new(group);
    let mut buf = vec![0u8; size];
    super::transfer::pattern(0, &mut buf);
    // A flowspec may hold a send back for longer than the duration: wait in steps.
    setsockopt_int(ws, s, SOL_SOCKET, SO_SNDTIMEO, "SO_SNDTIMEO", POLL_MS)?;
    let start = Instant::now();
    let (mut seq, mut bytes) = (0u64, 0u64);
    while start.elapsed() < duration && !interrupts.first() {
        if rate > 0 {
            let due = start + Duration::from_secs_f64(seq as f64 * size as f64 / rate as f64);
            if due >= start + duration {
                break;
            }
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                thread::sleep(wait);
            }
        }
        stamp(&mut buf, seq, wall_ns());
        let n = match ws.sendto(s, &buf, 0, Some(&to), SOCKADDR_IN_LEN) {
            Ok(n) => n,
            Err(WsaError::WSAETIMEDOUT) => continue,
            Err(e) => return Err(format!("sendto {group}: {e}")),
        };
        seq += 1;
        bytes += n as u64;
        sent_one(n as usize);
    }
    Ok((seq, bytes, start.elapsed()))
}

/// Receives until `deadline`; what each sender's datagrams looked like.
fn recv_loop(
    ws: &Winsock,
    s: SOCKET,
    deadline: Instant,
    interrupts: &Interrupts,
    counters: &Counters,
) -> Result<BTreeMap<SocketAddrV4, Track>, String> {
    setsockopt_int(ws, s, SOL_SOCKET, SO_RCVTIMEO, "SO_RCVTIMEO", POLL_MS)?;
    let mut senders: BTreeMap<SocketAddrV4, Track> = BTreeMap::new();
    let mut buf = vec![0u8; 65_536];
    while Instant::now() < deadline && !interrupts.first() {
        let mut from = SOCKADDR_IN::default();
        let mut fromlen = SOCKADDR_IN_LEN;
        match ws.recvfrom(s, &mut buf, 0, Some(&mut from), Some(&mut fromlen)) {
            Ok(n) => {
                let n = n as usize;
                counters.add(n, true);
                let now = wall_ns();
                let track = senders.entry(from.to_socket_addr()).or_default();
                match read_stamp(&buf[..n]) {
                    Some((seq, sent)) => {
                        let delay = (now as f64 - sent as f64) / 1e6;
                        track.add(seq, n, delay);
                    }
                    // Not ours: counted, with no sequence to check.
                    None => {
                        track.datagrams += 1;
                        track.bytes += n as u64;
                    }
                }
            }
            Err(WsaError::WSAETIMEDOUT) => {}
            Err(e) => return Err(format!("recvfrom: {e}")),
        }
    }
    Ok(senders)
}

fn totals(senders: &BTreeMap<SocketAddrV4, Track>) -> (u64, u64, u64, u64) {
    senders.values().fold((0, 0, 0, 0), |(d, b, l, r), t| {
        (d + t.datagrams, b + t.bytes, l + t.lost(), r + t.reordered)
    })
}

/// A figure for JSON: finite numbers rounded to µs, NaN as null.
fn ms_json(v: f64) -> serde_json::Value {
    if v.is_finite() {
        serde_json::json!((v * 1000.0).round() / 1000.0)
    } else {
        serde_json::Value::Null
    }
}

fn json(
    args: &McastArgs,
    how: &str,
    join_time: Duration,
    elapsed: Duration,
    outcome: &Outcome,
) -> serde_json::Value {
    let mode = match (args.send, args.recv) {
        (true, _) => "send",
        (_, true) => "recv",
        _ => "both",
    };
    let mut obj = serde_json::json!({
        "group": args.join.to_string(),
        "addr": args.link.addr.addr.to_string(),
        "mode": mode,
        "join": how,
        "join_ms": ms_json(join_time.as_secs_f64() * 1e3),
        "source": args.source.map(|s| s.to_string()),
        "ttl": args.ttl,
        "loopback": args.loopback == OnOff::On,
        "qos": args.qos.as_ref().map(|q| q.label.clone()),
        "duration_s": ms_json(elapsed.as_secs_f64()),
    });
    if let Some((datagrams, bytes, took)) = outcome.sent {
        obj["sent"] = serde_json::json!({
            "datagrams": datagrams,
            "bytes": bytes,
            "seconds": ms_json(took.as_secs_f64()),
        });
    }
    if let Some(senders) = &outcome.received {
        let (datagrams, bytes, lost, reordered) = totals(senders);
        let list: Vec<_> = senders
            .iter()
            .map(|(addr, t)| {
                let (p50, p99) = t.delay_percentiles();
                serde_json::json!({
                    "addr": addr.to_string(),
                    "datagrams": t.datagrams,
                    "bytes": t.bytes,
                    "lost": t.lost(),
                    "reordered": t.reordered,
                    "first_seq": t.first_seq,
                    "last_seq": t.max_seq,
                    "delay_p50_ms": ms_json(p50),
                    "delay_p99_ms": ms_json(p99),
                })
            })
            .collect();
        obj["received"] = serde_json::json!({
            "datagrams": datagrams,
            "bytes": bytes,
            "lost": lost,
            "reordered": reordered,
            "senders": list,
        });
    }
    obj
}

fn print_summary(args: &McastArgs, elapsed: Duration, rate: u64, outcome: &Outcome) {
    let secs = elapsed.as_secs_f64().max(1e-9);
    if let Some((datagrams, bytes, took)) = outcome.sent {
        let secs = took.as_secs_f64().max(1e-9);
        let pace = if rate > 0 {
            format!("paced to {rate} B/s")
        } else if args.qos.is_some() {
            "unpaced: the flowspec's shaper paces".to_string()
        } else {
            "unpaced".to_string()
        };
        println!(
            "sent {datagrams} datagrams, {bytes} bytes to {} in {secs:.2} s ({:.0} B/s payload, {pace})",
            args.join,
            bytes as f64 / secs
        );
    }
    if let Some(senders) = &outcome.received {
        let (datagrams, bytes, lost, reordered) = totals(senders);
        println!(
            "received {datagrams} datagrams, {bytes} bytes from {} sender(s) in {secs:.2} s: \
             {lost} lost, {reordered} reordered",
            senders.len()
        );
        if !senders.is_empty() {
            println!(
                "{:<22} {:>10} {:>12} {:>8} {:>9} {:>8} {:>8}",
                "sender", "datagrams", "bytes", "lost", "reordered", "p50 ms", "p99 ms"
            );
            for (addr, t) in senders {
                let (p50, p99) = t.delay_percentiles();
                println!(
                    "{:<22} {:>10} {:>12} {:>8} {:>9} {:>8.3} {:>8.3}",
                    addr.to_string(),
                    t.datagrams,
                    t.bytes,
                    t.lost(),
                    t.reordered,
                    p50,
                    p99
                );
            }
            println!("(delay: receive time minus the sender's stamp; meaningful on one host)");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_parse_and_reject() {
        assert_eq!(
            parse_group("239.1.2.3:6000"),
            Ok("239.1.2.3:6000".parse().unwrap())
        );
        assert_eq!(
            parse_group("224.0.0.251"),
            Ok(SocketAddrV4::new(
                Ipv4Addr::new(224, 0, 0, 251),
                DEFAULT_PORT
            ))
        );
        for bad in [
            "10.0.0.1",
            "10.0.0.1:5000",
            "239.1.2.3:0",
            "239.1.2.3:x",
            "x",
            "",
        ] {
            assert!(parse_group(bad).is_err(), "{bad}");
        }
        assert!(parse_group("10.0.0.1").unwrap_err().contains("multicast"));
    }

    #[test]
    fn stamps_round_trip_and_gaps_count() {
        let mut buf = [0u8; 32];
        stamp(&mut buf, 7, 123);
        assert_eq!(read_stamp(&buf), Some((7, 123)));
        assert_eq!(read_stamp(&buf[..19]), None);
        let mut t = Track::default();
        for seq in [3, 4, 6, 5, 9] {
            t.add(seq, 100, 0.1);
        }
        assert_eq!((t.first_seq, t.max_seq, t.datagrams), (3, 9, 5));
        assert_eq!((t.lost(), t.reordered), (2, 1));
    }
}
