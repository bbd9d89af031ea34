//! Bulk TCP scenarios: `tcp-virtual` and `tcp-tap`.

use std::io::{Read, Write};
use std::net::SocketAddrV4;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::{Duration, Instant};

use smoltcp::socket::tcp::State;
use ws2_stack::winsock::*;
use ws2_stack::{Ipv4Cidr, Stack, StackConfig};
use ws2_tap::{Link, Tap, VirtualSwitch};

use super::cleanup::Namespace;
use super::raw_smoltcp::Node;
use super::{median, Figure};

const CHUNK: usize = 64 * 1024;
/// TCP buffer size each way on both sides of every comparison (`SO_RCVBUF`/`SO_SNDBUF` on
/// ours), large enough that neither is window-bound on these links.
const BUFFER: usize = 256 * 1024;

/// A TCP socket through the Winsock face with `BUFFER`-byte buffers.
fn tcp_socket(ws: &Winsock) -> Result<SOCKET, String> {
    let s = ws.socket(AF_INET, SOCK_STREAM, 0).map_err(err("socket"))?;
    let size = (BUFFER as i32).to_ne_bytes();
    for opt in [SO_RCVBUF, SO_SNDBUF] {
        ws.setsockopt(s, SOL_SOCKET, opt, Some(&size), 4)
            .map_err(err("setsockopt"))?;
    }
    Ok(s)
}

fn chunk() -> Vec<u8> {
    (0..CHUNK).map(|i| (i * 7 + 3) as u8).collect()
}

fn mbits(bytes: u64, d: Duration) -> f64 {
    bytes as f64 * 8.0 / d.as_secs_f64().max(1e-9) / 1e6
}

pub(super) fn cidr(s: &str) -> Ipv4Cidr {
    s.parse().expect("literal address")
}

pub(super) fn winsock(stack: &Stack) -> Result<Winsock, String> {
    let ws = Winsock::new(stack.clone());
    let mut data = WSADATA::default();
    match ws.WSAStartup(MAKEWORD(2, 2), Some(&mut data)) {
        0 => Ok(ws),
        e => Err(format!("WSAStartup: {e}")),
    }
}

pub(super) fn err(what: &str) -> impl Fn(WsaError) -> String + '_ {
    move |e| format!("{what}: {e}")
}

/// Sends `bytes` through the Winsock face to `to`; returns when all is queued and the time the
/// connection was up.
fn ws_send(ws: &Winsock, to: SocketAddrV4, bytes: u64) -> Result<Instant, String> {
    let s = tcp_socket(ws)?;
    ws.connect(s, Some(&SOCKADDR_IN::new(to)), SOCKADDR_IN_LEN)
        .map_err(err("connect"))?;
    let start = Instant::now();
    let data = chunk();
    let mut sent = 0u64;
    while sent < bytes {
        let n = (bytes - sent).min(CHUNK as u64) as usize;
        sent += ws.send(s, &data[..n], 0).map_err(err("send"))? as u64;
    }
    ws.shutdown(s, SD_SEND).map_err(err("shutdown"))?;
    let mut buf = [0u8; 16];
    while matches!(ws.recv(s, &mut buf, 0), Ok(n) if n > 0) {}
    ws.closesocket(s).map_err(err("closesocket"))?;
    Ok(start)
}

/// Receives until `bytes` arrived through the Winsock face on `s` (connected); returns when.
fn ws_recv_all(ws: &Winsock, s: SOCKET, bytes: u64) -> Result<Instant, String> {
    let mut buf = vec![0u8; CHUNK];
    let mut got = 0u64;
    while got < bytes {
        let n = ws.recv(s, &mut buf, 0).map_err(err("recv"))?;
        if n == 0 {
            return Err(format!("connection closed after {got} of {bytes} bytes"));
        }
        got += n as u64;
    }
    Ok(Instant::now())
}

/// Ours on the virtual switch: Winsock face, one stack each side.
fn ours_virtual(bytes: u64) -> Result<f64, String> {
    let switch = VirtualSwitch::new(1);
    let a = Stack::new(StackConfig::new(cidr("10.0.0.1/24")), switch.port())
        .map_err(|e| e.to_string())?;
    let b = Stack::new(StackConfig::new(cidr("10.0.0.2/24")), switch.port())
        .map_err(|e| e.to_string())?;
    let (wa, wb) = (winsock(&a)?, winsock(&b)?);
    let l = tcp_socket(&wb)?;
    wb.bind(
        l,
        Some(&SOCKADDR_IN::new("10.0.0.2:5001".parse().expect("literal"))),
        SOCKADDR_IN_LEN,
    )
    .map_err(err("bind"))?;
    wb.listen(l, 4).map_err(err("listen"))?;
    let receiver = thread::spawn(move || -> Result<Instant, String> {
        let s = wb.accept(l, None, None).map_err(err("accept"))?;
        let end = ws_recv_all(&wb, s, bytes)?;
        wb.closesocket(s).map_err(err("closesocket"))?;
        Ok(end)
    });
    let start = ws_send(&wa, "10.0.0.2:5001".parse().expect("literal"), bytes)?;
    let end = receiver
        .join()
        .map_err(|_| "receiver panicked".to_string())??;
    Ok(mbits(bytes, end.saturating_duration_since(start)))
}

/// The anchor on the virtual switch: two raw smoltcp interfaces, one thread each.
fn raw_virtual(bytes: u64) -> Result<f64, String> {
    let switch = VirtualSwitch::new(1);
    let (pa, pb) = (switch.port(), switch.port());
    let done = Arc::new(AtomicBool::new(false));
    let done_rx = done.clone();
    let receiver = thread::spawn(move || {
        let mut node = Node::new(Box::new(pb), cidr("10.0.0.2/24"), BUFFER);
        let _ = node.socket().listen(5001);
        let mut buf = vec![0u8; CHUNK];
        let mut got = 0u64;
        while got < bytes {
            let n = node.socket().recv_slice(&mut buf).unwrap_or(0);
            got += n as u64;
            node.poll(n == 0, Duration::from_millis(50));
        }
        let end = Instant::now();
        done_rx.store(true, Ordering::SeqCst);
        for _ in 0..200 {
            node.poll(true, Duration::from_millis(5));
        }
        end
    });
    let mut node = Node::new(Box::new(pa), cidr("10.0.0.1/24"), BUFFER);
    node.connect("10.0.0.2:5001".parse().expect("literal"), 40000);
    let data = chunk();
    let mut start = None;
    let mut sent = 0u64;
    let deadline = Instant::now() + Duration::from_secs(120);
    while !done.load(Ordering::SeqCst) && Instant::now() < deadline {
        let s = node.socket();
        let mut progressed = false;
        if s.state() == State::Established && start.is_none() {
            start = Some(Instant::now());
        }
        if s.can_send() && sent < bytes {
            let n = (bytes - sent).min(CHUNK as u64) as usize;
            let k = s.send_slice(&data[..n]).unwrap_or(0);
            sent += k as u64;
            progressed = k > 0;
        }
        node.poll(!progressed, Duration::from_millis(5));
    }
    let end = receiver
        .join()
        .map_err(|_| "raw receiver panicked".to_string())?;
    let start = start.ok_or("raw smoltcp never connected")?;
    Ok(mbits(bytes, end.saturating_duration_since(start)))
}

pub(crate) fn virtual_switch(bytes: u64, runs: usize) -> Result<Vec<Figure>, String> {
    let mut out = Vec::new();
    // The two directions are the same code on a symmetric switch; each is measured anyway, so a
    // direction-dependent regression would show.
    for dir in ["10.0.0.1->10.0.0.2", "10.0.0.2->10.0.0.1"] {
        let (mut ours, mut base) = (Vec::new(), Vec::new());
        for _ in 0..runs {
            ours.push(ours_virtual(bytes)?);
            base.push(raw_virtual(bytes)?);
        }
        out.push(Figure {
            scenario: "tcp-virtual",
            metric: format!("throughput {dir}"),
            value: median(ours),
            unit: "Mbit/s",
            baseline: "raw smoltcp, same switch",
            baseline_value: median(base),
        });
    }
    Ok(out)
}

// ---- tcp-tap -------------------------------------------------------------------------------

/// A network namespace for the bench, deleted on drop or interruption.
struct Netns(Namespace);

impl Netns {
    fn new() -> Result<Netns, String> {
        let ns = Netns(Namespace::add(format!("ws2bench-{}", std::process::id()))?);
        ip(&["-n", ns.0.name(), "link", "set", "lo", "up"])?;
        Ok(ns)
    }
}

fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("ip: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(())
}

const KERNEL: &str = "10.78.0.1";
const OURS: &str = "10.78.0.2/24";

/// A fresh TAP inside the namespace with the kernel's side configured. Each run gets a new
/// name: the kernel deletes a closed TAP asynchronously, and reattaching to the dying one loses
/// the connection.
fn fresh_tap(ns: &Netns) -> Result<Tap, String> {
    static RUN: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let name = format!("ws2b{}", RUN.fetch_add(1, Ordering::SeqCst));
    let t = ws2_tap::open_in_namespace(ns.0.name(), &name).map_err(|e| format!("tap: {e}"))?;
    ip(&[
        "-n",
        ns.0.name(),
        "addr",
        "add",
        &format!("{KERNEL}/24"),
        "dev",
        &name,
    ])?;
    ip(&["-n", ns.0.name(), "link", "set", &name, "up"])?;
    Ok(t)
}

/// The kernel peer: a sink on :5001 (reports when it has `bytes`) and a source on :5002 (sends
/// `bytes`, then closes).
struct KernelPeer {
    sink_done: mpsc::Receiver<Instant>,
}

fn kernel_peer(ns: &Netns, bytes: u64) -> Result<KernelPeer, String> {
    let (sink, source) = ws2_tap::in_namespace(ns.0.name(), || {
        // Any address of the namespace: the TAP (and its address) is made anew for every run.
        Ok((
            std::net::TcpListener::bind(("0.0.0.0", 5001))?,
            std::net::TcpListener::bind(("0.0.0.0", 5002))?,
        ))
    })
    .map_err(|e| format!("kernel listeners: {e}"))?;
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        for conn in sink.incoming() {
            let Ok(mut c) = conn else { break };
            let mut buf = vec![0u8; CHUNK];
            let mut got = 0u64;
            while got < bytes {
                match c.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => got += n as u64,
                }
            }
            if tx.send(Instant::now()).is_err() {
                break;
            }
        }
    });
    thread::spawn(move || {
        let data = chunk();
        for conn in source.incoming() {
            let Ok(mut c) = conn else { break };
            let mut sent = 0u64;
            while sent < bytes {
                let n = (bytes - sent).min(CHUNK as u64) as usize;
                if c.write_all(&data[..n]).is_err() {
                    break;
                }
                sent += n as u64;
            }
        }
    });
    Ok(KernelPeer { sink_done: rx })
}

fn wait_sink(peer: &KernelPeer) -> Result<Instant, String> {
    peer.sink_done
        .recv_timeout(Duration::from_secs(120))
        .map_err(|_| "the kernel sink never finished".to_string())
}

fn ours_tap(ns: &Netns, peer: &KernelPeer, bytes: u64, upload: bool) -> Result<f64, String> {
    let stack =
        Stack::new(StackConfig::new(cidr(OURS)), fresh_tap(ns)?).map_err(|e| e.to_string())?;
    let ws = winsock(&stack)?;
    if upload {
        let start = ws_send(
            &ws,
            format!("{KERNEL}:5001").parse().expect("literal"),
            bytes,
        )?;
        Ok(mbits(
            bytes,
            wait_sink(peer)?.saturating_duration_since(start),
        ))
    } else {
        let s = tcp_socket(&ws)?;
        ws.connect(
            s,
            Some(&SOCKADDR_IN::new(
                format!("{KERNEL}:5002").parse().expect("literal"),
            )),
            SOCKADDR_IN_LEN,
        )
        .map_err(err("connect"))?;
        let start = Instant::now();
        let end = ws_recv_all(&ws, s, bytes)?;
        ws.closesocket(s).map_err(err("closesocket"))?;
        Ok(mbits(bytes, end.saturating_duration_since(start)))
    }
}

fn raw_tap(ns: &Netns, peer: &KernelPeer, bytes: u64, upload: bool) -> Result<f64, String> {
    let link: Box<dyn Link> = Box::new(fresh_tap(ns)?);
    let mut node = Node::new(link, cidr(OURS), BUFFER);
    let port = if upload { 5001 } else { 5002 };
    node.connect(format!("{KERNEL}:{port}").parse().expect("literal"), 41000);
    let data = chunk();
    let mut buf = vec![0u8; CHUNK];
    let (mut start, mut moved) = (None, 0u64);
    let deadline = Instant::now() + Duration::from_secs(120);
    while Instant::now() < deadline {
        let s = node.socket();
        if s.state() == State::Established && start.is_none() {
            start = Some(Instant::now());
        }
        let k = if upload {
            if moved < bytes && s.can_send() {
                s.send_slice(&data[..(bytes - moved).min(CHUNK as u64) as usize])
                    .unwrap_or(0)
            } else {
                0
            }
        } else {
            s.recv_slice(&mut buf).unwrap_or(0)
        };
        moved += k as u64;
        if moved >= bytes {
            break;
        }
        node.poll(k == 0, Duration::from_millis(5));
    }
    let start = start.ok_or("raw smoltcp never connected")?;
    let end = if upload {
        // Keep the interface running until the kernel has everything.
        loop {
            if let Ok(t) = peer.sink_done.try_recv() {
                break t;
            }
            if Instant::now() > deadline {
                return Err("raw upload never finished".into());
            }
            node.poll(true, Duration::from_millis(2));
        }
    } else {
        Instant::now()
    };
    node.socket().abort();
    node.poll(false, Duration::ZERO);
    Ok(mbits(bytes, end.saturating_duration_since(start)))
}

pub(crate) fn tap(bytes: u64, runs: usize) -> Result<Vec<Figure>, String> {
    if !std::path::Path::new("/dev/net/tun").exists() {
        return Err("tcp-tap needs /dev/net/tun".into());
    }
    let ns =
        Netns::new().map_err(|e| format!("tcp-tap needs root to make a network namespace: {e}"))?;
    let peer = kernel_peer(&ns, bytes)?;
    let mut out = Vec::new();
    for (upload, metric) in [
        (true, "throughput stack->kernel"),
        (false, "throughput kernel->stack"),
    ] {
        let (mut ours, mut base) = (Vec::new(), Vec::new());
        for run in 0..runs {
            eprintln!("tcp-tap: {metric}, run {}", run + 1);
            ours.push(ours_tap(&ns, &peer, bytes, upload)?);
            thread::sleep(Duration::from_millis(100));
            base.push(raw_tap(&ns, &peer, bytes, upload)?);
            thread::sleep(Duration::from_millis(100));
        }
        out.push(Figure {
            scenario: "tcp-tap",
            metric: metric.into(),
            value: median(ours),
            unit: "Mbit/s",
            baseline: "raw smoltcp, same TAP and peer",
            baseline_value: median(base),
        });
    }
    Ok(out)
}
