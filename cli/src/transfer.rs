//! `ws2 send` and `ws2 recv`: bulk TCP or UDP between two stacks, with a SHA-256 of what went
//! over so two processes can prove the bytes matched. `ws2 send` can ask for a flowspec
//! (`--qos`), make or join a socket group (`--group`, `--priority`) and send for a time
//! (`--duration`); both sides print one line per second of the rate against `TokenRate`.

use std::io::Read;
use std::net::SocketAddrV4;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use clap::{Args, ValueEnum};
use sha2::{Digest, Sha256};
use ws2_stack::net::{TcpListener, UdpSocket};
use ws2_stack::winsock::{WsaError, SD_SEND, SOL_SOCKET, SO_RCVTIMEO};

use super::ending;
use super::flow_socket::FlowSocket;
use super::interrupt::Interrupts;
use super::qos_arg::{self, GroupArg, QosArg};
use super::{ranges, LinkArgs};

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Proto {
    Tcp,
    Udp,
}

#[derive(Args, Debug)]
pub(crate) struct SendArgs {
    #[command(flatten)]
    link: LinkArgs,
    /// Where to send, IP:PORT.
    #[arg(long)]
    to: SocketAddrV4,
    #[arg(long, value_enum, default_value = "tcp")]
    proto: Proto,
    /// How many bytes to send (ignored with --duration).
    #[arg(long, default_value_t = 10 * 1024 * 1024)]
    bytes: u64,
    /// Send for this many seconds instead of --bytes.
    #[arg(long, allow_negative_numbers = true, value_parser = ranges::duration)]
    duration: Option<f64>,
    /// Datagram size for UDP (1 to 65507 bytes).
    #[arg(long, default_value_t = 1024, value_parser = ranges::udp_payload)]
    datagram: usize,
    /// Keep retrying the TCP connect this many seconds (1 to 3600; the receiver may still be
    /// starting).
    #[arg(long, default_value_t = 10, value_parser = ranges::connect_wait)]
    connect_wait: u64,
    /// The sending flowspec: a WSAGetQOSByName template (G711, G723.1, G729, GSM6.10,
    /// H261QCIF, H261CIF, H263QCIF, H263CIF) or
    /// rate=R,bucket=B,peak=P,service=best|controlled|predictive|guaranteed (bytes/s, bytes).
    /// UDP: WSAIoctl(SIO_SET_QOS); TCP: WSAConnect's lpSQOS.
    #[arg(long, value_parser = qos_arg::parse_qos)]
    qos: Option<QosArg>,
    /// Make the socket with WSASocket(g): `new` creates an unconstrained group
    /// (SG_UNCONSTRAINED_GROUP), a number joins that group of this stack.
    #[arg(long)]
    group: Option<GroupArg>,
    /// SO_GROUP_PRIORITY of the socket in its group (0 is served first).
    #[arg(long, requires = "group")]
    priority: Option<i32>,
}

#[derive(Args, Debug)]
pub(crate) struct RecvArgs {
    #[command(flatten)]
    link: LinkArgs,
    /// Port to listen on.
    #[arg(long, value_parser = ranges::port)]
    port: u16,
    #[arg(long, value_enum, default_value = "tcp")]
    proto: Proto,
    /// Stop after this many bytes (TCP also stops at end of stream).
    #[arg(long)]
    bytes: Option<u64>,
    /// UDP: stop after this many seconds without a datagram (1 to 86400).
    #[arg(long, default_value_t = 3, value_parser = ranges::idle)]
    idle: u64,
}

/// The deterministic test pattern: byte i = (i·7 + 3) mod 251.
pub(crate) fn pattern(offset: u64, buf: &mut [u8]) {
    for (i, b) in buf.iter_mut().enumerate() {
        *b = (((offset + i as u64) * 7 + 3) % 251) as u8;
    }
}

/// Longest one blocking send waits before the loop looks at its deadline and signals again.
const SEND_POLL_MS: i32 = 100;

/// Counters a [`RateTicker`] reads: payload bytes and datagrams (UDP) so far.
#[derive(Default)]
pub(crate) struct Counters {
    bytes: AtomicU64,
    datagrams: AtomicU64,
}

impl Counters {
    pub(crate) fn add(&self, bytes: usize, datagram: bool) {
        self.bytes.fetch_add(bytes as u64, Ordering::Relaxed);
        if datagram {
            self.datagrams.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Prints one line per second of what `counters` gained: payload bytes/s, and for UDP the
/// Ethernet-frame bytes/s a shaper counts (payload + 8 UDP + 20 IPv4 + 14 Ethernet per
/// datagram), against `TokenRate` when there is one.
pub(crate) struct RateTicker {
    stop: Arc<AtomicBool>,
    job: Option<thread::JoinHandle<()>>,
}

/// UDP + IPv4 + Ethernet header bytes per datagram, as the shaper and tc count frames.
pub(crate) const UDP_FRAME_OVERHEAD: u64 = 8 + 20 + 14;

impl RateTicker {
    pub(crate) fn start(
        verb: &'static str,
        counters: Arc<Counters>,
        udp: bool,
        token_rate: Option<u64>,
    ) -> RateTicker {
        let stop = Arc::new(AtomicBool::new(false));
        let st = stop.clone();
        let job = thread::spawn(move || {
            let start = Instant::now();
            let (mut last_bytes, mut last_dgrams) = (0u64, 0u64);
            for sec in 1u64.. {
                let due = start + Duration::from_secs(sec);
                while Instant::now() < due {
                    if st.load(Ordering::Relaxed) {
                        return;
                    }
                    thread::sleep((due - Instant::now()).min(Duration::from_millis(50)));
                }
                let bytes = counters.bytes.load(Ordering::Relaxed);
                let dgrams = counters.datagrams.load(Ordering::Relaxed);
                let (b, d) = (bytes - last_bytes, dgrams - last_dgrams);
                (last_bytes, last_dgrams) = (bytes, dgrams);
                let mut line = format!("t={sec}s {verb} {b} B/s");
                // What the flowspec counts: frames for UDP, payload for TCP (headers vary).
                let counted = if udp {
                    let frames = b + d * UDP_FRAME_OVERHEAD;
                    line += &format!(" ({d} datagrams, {frames} B/s in frames)");
                    frames
                } else {
                    b
                };
                if let Some(rate) = token_rate.filter(|r| *r > 0) {
                    line += &format!(
                        ", TokenRate {rate} B/s: {:.1}%",
                        counted as f64 * 100.0 / rate as f64
                    );
                }
                println!("{line}");
            }
        });
        RateTicker {
            stop,
            job: Some(job),
        }
    }
}

impl Drop for RateTicker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(j) = self.job.take() {
            let _ = j.join();
        }
    }
}

pub(crate) fn send(args: &SendArgs) -> Result<(), String> {
    let stack = args.link.start()?;
    // A first Ctrl-C (or SIGTERM) ends the sending; what was handed over still drains.
    let interrupts = Interrupts::install().map_err(|e| format!("signal handlers: {e}"))?;
    let qos = args.qos.as_ref();
    if let Some(q) = qos {
        println!("flowspec: {q}");
    }
    let counters = Arc::new(Counters::default());
    let deadline = args.duration.map(Duration::from_secs_f64);
    let mut hash = Sha256::new();
    let mut sent = 0u64;
    let more = |sent: u64, start: Instant| {
        !interrupts.first()
            && match deadline {
                Some(d) => start.elapsed() < d,
                None => sent < args.bytes,
            }
    };
    // Bytes to offer in the next call: shaped TCP gets small calls so the per-second lines
    // follow the shaper rather than 64 KiB steps.
    let want = |sent: u64, cap: usize| match deadline {
        Some(_) => cap,
        None => (args.bytes - sent).min(cap as u64) as usize,
    };
    let start;
    let ticker;
    match args.proto {
        Proto::Tcp => {
            let wait = Instant::now() + Duration::from_secs(args.connect_wait);
            let sock = loop {
                let sock = FlowSocket::open(&stack, true, args.group, args.priority)?;
                match sock.connect_until(args.to, qos.map(|q| &q.qos), wait) {
                    Ok(()) => break sock,
                    Err(e @ (WsaError::WSAEINVAL | WsaError::WSAEOPNOTSUPP)) => {
                        return Err(format!("WSAConnect with the flowspec: {e}"))
                    }
                    Err(_) if Instant::now() < wait => {
                        std::thread::sleep(Duration::from_millis(200))
                    }
                    Err(e) => return Err(format!("connect {}: {e}", args.to)),
                }
            };
            report_group(&sock, args.group)?;
            sock.send_timeout(SEND_POLL_MS)?;
            let cap = match qos.and_then(QosArg::token_rate) {
                Some(rate) => (rate / 20).clamp(1024, 64 * 1024) as usize,
                None => 64 * 1024,
            };
            let mut buf = vec![0u8; cap];
            start = Instant::now();
            ticker = RateTicker::start(
                "sent",
                counters.clone(),
                false,
                qos.and_then(QosArg::token_rate),
            );
            while more(sent, start) {
                let n = want(sent, cap);
                pattern(sent, &mut buf[..n]);
                let n = match sock.ws.send(sock.s, &buf[..n], 0) {
                    Ok(n) => n as usize,
                    // The flowspec holds it back: look at the deadline and signals again.
                    Err(WsaError::WSAETIMEDOUT) => continue,
                    Err(e) => return Err(format!("send: {e}")),
                };
                hash.update(&buf[..n]);
                sent += n as u64;
                counters.add(n, false);
            }
            sock.ws
                .shutdown(sock.s, SD_SEND)
                .map_err(|e| format!("shutdown: {e}"))?;
            // Wait (bounded) for the receiver to close, so every byte is acknowledged before we
            // exit.
            let ms = 10_000i32.to_ne_bytes();
            let _ = sock
                .ws
                .setsockopt(sock.s, SOL_SOCKET, SO_RCVTIMEO, Some(&ms), 4);
            let mut sink = [0u8; 64];
            while matches!(sock.ws.recv(sock.s, &mut sink, 0), Ok(n) if n > 0) {}
        }
        Proto::Udp => {
            let sock = FlowSocket::open(&stack, false, args.group, args.priority)?;
            sock.bind(SocketAddrV4::new(std::net::Ipv4Addr::UNSPECIFIED, 0))?;
            if let Some(q) = qos {
                sock.set_qos(&q.qos)?;
            }
            report_group(&sock, args.group)?;
            sock.send_timeout(SEND_POLL_MS)?;
            let mut buf = vec![0u8; args.datagram];
            start = Instant::now();
            ticker = RateTicker::start(
                "sent",
                counters.clone(),
                true,
                qos.and_then(QosArg::token_rate),
            );
            while more(sent, start) {
                let n = want(sent, buf.len());
                pattern(sent, &mut buf[..n]);
                if !sock.try_send_to(&buf[..n], args.to)? {
                    continue;
                }
                hash.update(&buf[..n]);
                sent += n as u64;
                counters.add(n, true);
            }
        }
    }
    drop(ticker);
    report("sent", sent, start, hash);
    // The socket is closed: its datagrams still in the shaper leave at the flow's rate.
    ending::finish(stack, Some(&interrupts));
    Ok(())
}

/// Prints the group a socket made or joined.
fn report_group(sock: &FlowSocket, group: Option<GroupArg>) -> Result<(), String> {
    if group.is_some() {
        println!("group: {} (SO_GROUP_ID)", sock.group_id()?);
    }
    Ok(())
}

pub(crate) fn recv(args: &RecvArgs) -> Result<(), String> {
    let stack = args.link.start()?;
    let limit = args.bytes.unwrap_or(u64::MAX);
    let mut hash = Sha256::new();
    let mut got = 0u64;
    let mut buf = vec![0u8; 64 * 1024];
    let counters = Arc::new(Counters::default());
    let start;
    let ticker;
    match args.proto {
        Proto::Tcp => {
            let listener = TcpListener::bind(&stack, ("0.0.0.0", args.port))
                .map_err(|e| format!("listen: {e}"))?;
            eprintln!(
                "ws2 recv: listening on {}:{}",
                args.link.addr.addr, args.port
            );
            let (mut stream, peer) = listener.accept().map_err(|e| format!("accept: {e}"))?;
            eprintln!("ws2 recv: connection from {peer}");
            start = Instant::now();
            ticker = RateTicker::start("received", counters.clone(), false, None);
            while got < limit {
                let want = (limit - got).min(buf.len() as u64) as usize;
                let n = stream
                    .read(&mut buf[..want])
                    .map_err(|e| format!("recv: {e}"))?;
                if n == 0 {
                    break;
                }
                hash.update(&buf[..n]);
                got += n as u64;
                counters.add(n, false);
            }
        }
        Proto::Udp => {
            let sock = UdpSocket::bind(&stack, ("0.0.0.0", args.port))
                .map_err(|e| format!("bind: {e}"))?;
            sock.set_read_timeout(Some(Duration::from_secs(args.idle.max(1))))
                .map_err(|e| e.to_string())?;
            start = Instant::now();
            ticker = RateTicker::start("received", counters.clone(), true, None);
            while got < limit {
                match sock.recv_from(&mut buf) {
                    Ok((n, _)) => {
                        hash.update(&buf[..n]);
                        got += n as u64;
                        counters.add(n, true);
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::TimedOut => break,
                    Err(e) => return Err(format!("recvfrom: {e}")),
                }
            }
        }
    }
    drop(ticker);
    report("received", got, start, hash);
    Ok(())
}

fn report(what: &str, bytes: u64, start: Instant, hash: Sha256) {
    let secs = start.elapsed().as_secs_f64().max(1e-9);
    eprintln!(
        "ws2: {what} {bytes} bytes in {secs:.3} s ({:.1} Mbit/s)",
        bytes as f64 * 8.0 / secs / 1e6
    );
    println!("{what} {bytes} bytes sha256 {:x}", hash.finalize());
}
