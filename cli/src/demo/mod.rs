//! `ws2 demo`: three hosts on an in-process virtual LAN exchanging TCP, UDP and ICMP, then a
//! `WSAEventSelect` echo server and a completion-routine echo server each serving a swarm of
//! concurrent clients, then a conference (audio, video and bulk in one socket group over a
//! shaped link, [`conference`]), then a multicast conference (four hosts in one group with
//! `WSAJoinLeaf`, [`multicast`]), then an ATM-style rooted multipoint session (a root and four
//! leaves over RMP, [`rooted`]), with summary tables. Needs no privileges.

mod conference;
mod multicast;
mod rooted;

use std::io::{Read, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use clap::Args;
use sha2::{Digest, Sha256};
use smoltcp::phy::ChecksumCapabilities;
use smoltcp::wire::{Icmpv4Message, Icmpv4Packet, Icmpv4Repr, Ipv4Packet};
use ws2_stack::echo;
use ws2_stack::net::{TcpListener, TcpStream, UdpSocket};
use ws2_stack::winsock::*;
use ws2_stack::{Stack, StackConfig};
use ws2_tap::{Impairments, Link, PcapTee, VirtualSwitch};

use super::transfer::pattern;

#[derive(Args, Debug)]
pub(crate) struct DemoArgs {
    /// Bytes each client sends through the TCP echo server.
    #[arg(long, default_value_t = 8 * 1024 * 1024, value_parser = crate::ranges::bytes)]
    bytes: u64,
    /// Loss probability on the second client's switch port (shows recovery; 0 to 1).
    #[arg(long, default_value_t = 0.01, allow_negative_numbers = true, value_parser = crate::ranges::probability)]
    loss: f64,
    /// Seed of the switch's impairments.
    #[arg(long, default_value_t = 2026)]
    seed: u64,
    /// Clients of the event-select and completion-routine echo servers.
    #[arg(long, default_value_t = 200, value_parser = crate::ranges::clients)]
    async_clients: usize,
    /// Write the first client's frames to this pcap file.
    #[arg(long)]
    pcap: Option<PathBuf>,
    /// Seconds of the QoS conference (audio, video and bulk in one group on a shaped link);
    /// 0 skips it; at most 600.
    #[arg(long, default_value_t = 3.0, allow_negative_numbers = true, value_parser = crate::ranges::demo_part_secs)]
    conference_secs: f64,
    /// Seconds of the multicast conference (four hosts, one group, WSAJoinLeaf); 0 skips it;
    /// at most 600.
    #[arg(long, default_value_t = 2.0, allow_negative_numbers = true, value_parser = crate::ranges::demo_part_secs)]
    multicast_secs: f64,
    /// Seconds of the rooted multipoint session (a root and four leaves over RMP, two invited,
    /// one joining late, one leaving early); 0 skips it; at most 600.
    #[arg(long, default_value_t = 2.0, allow_negative_numbers = true, value_parser = crate::ranges::demo_part_secs)]
    rooted_secs: f64,
}

pub(super) struct Row {
    host: String,
    test: &'static str,
    detail: String,
    ok: bool,
}

fn host(
    switch: &VirtualSwitch,
    addr: &str,
    loss: f64,
    pcap: Option<&PathBuf>,
) -> Result<Stack, String> {
    let port = switch.port_with(Impairments {
        loss,
        ..Impairments::default()
    });
    let link: Box<dyn Link> = match pcap {
        Some(p) => {
            Box::new(PcapTee::new(port, p).map_err(|e| format!("pcap {}: {e}", p.display()))?)
        }
        None => Box::new(port),
    };
    let config = StackConfig::new(addr.parse().map_err(|e| format!("{e}"))?);
    Stack::from_box(config, link).map_err(|e| e.to_string())
}

pub(crate) fn run(args: &DemoArgs) -> Result<(), String> {
    let switch = VirtualSwitch::new(args.seed);
    let server = host(&switch, "10.0.0.1/24", 0.0, None)?;
    let clients = [
        (
            "10.0.0.2",
            host(&switch, "10.0.0.2/24", 0.0, args.pcap.as_ref())?,
        ),
        ("10.0.0.3", host(&switch, "10.0.0.3/24", args.loss, None)?),
    ];
    println!(
        "ws2 demo: 3 hosts on a virtual switch (seed {}), {:.1}% loss on 10.0.0.3",
        args.seed,
        args.loss * 100.0
    );

    let listener = TcpListener::bind(&server, "10.0.0.1:7").map_err(|e| format!("listen: {e}"))?;
    let udp_echo = UdpSocket::bind(&server, "10.0.0.1:7").map_err(|e| format!("udp bind: {e}"))?;
    let tcp_server = thread::spawn(move || {
        let mut workers = Vec::new();
        for _ in 0..2 {
            let Ok((stream, _)) = listener.accept() else {
                break;
            };
            workers.push(thread::spawn(move || {
                let mut buf = vec![0u8; 64 * 1024];
                loop {
                    match (&stream).read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            if (&stream).write_all(&buf[..n]).is_err() {
                                break;
                            }
                        }
                    }
                }
                let _ = stream.shutdown(std::net::Shutdown::Write);
            }));
        }
        for w in workers {
            let _ = w.join();
        }
    });
    udp_echo
        .set_read_timeout(Some(Duration::from_secs(5)))
        .map_err(|e| e.to_string())?;
    let udp_server = thread::spawn(move || {
        let mut buf = [0u8; 2048];
        while let Ok((n, from)) = udp_echo.recv_from(&mut buf) {
            let _ = udp_echo.send_to(&buf[..n], from);
        }
    });

    let bytes = args.bytes;
    let jobs: Vec<_> = clients
        .iter()
        .map(|(name, stack)| {
            let (name, stack) = (name.to_string(), stack.clone());
            thread::spawn(move || client(&name, &stack, bytes))
        })
        .collect();
    let mut rows = Vec::new();
    for j in jobs {
        rows.extend(
            j.join()
                .map_err(|_| "a client thread panicked".to_string())?,
        );
    }
    let _ = tcp_server.join();
    drop(udp_server);
    let async_client = &clients[0];
    rows.push(async_echo(
        &server,
        async_client,
        args.async_clients,
        "event select",
        echo::serve_event_select,
    ));
    rows.push(async_echo(
        &server,
        async_client,
        args.async_clients,
        "completion",
        echo::serve_completion_routines,
    ));
    let mut conference_table = Vec::new();
    if args.conference_secs > 0.0 && args.conference_secs.is_finite() {
        let (row, table) = conference::run(args.seed, args.conference_secs.min(600.0));
        rows.push(row);
        conference_table = table;
    }
    if args.multicast_secs > 0.0 && args.multicast_secs.is_finite() {
        let (row, table) = multicast::run(args.seed, args.multicast_secs.min(600.0));
        rows.push(row);
        conference_table.extend(table);
    }
    if args.rooted_secs > 0.0 && args.rooted_secs.is_finite() {
        let (row, table) = rooted::run(args.seed, args.rooted_secs.min(600.0));
        rows.push(row);
        conference_table.extend(table);
    }

    println!();
    println!("{:<10} {:<12} {:<58} ok", "host", "test", "result");
    println!("{}", "-".repeat(86));
    for r in &rows {
        println!(
            "{:<10} {:<12} {:<58} {}",
            r.host,
            r.test,
            r.detail,
            if r.ok { "yes" } else { "NO" }
        );
    }
    let stats = switch.stats();
    println!();
    println!(
        "switch: {} frames forwarded, {} dropped by loss, {} dropped by full queues",
        stats.forwarded, stats.dropped_loss, stats.dropped_queue_full
    );
    for line in &conference_table {
        println!("{line}");
    }
    if rows.iter().all(|r| r.ok) {
        println!("demo: all checks passed");
        Ok(())
    } else {
        Err("demo: some checks failed".into())
    }
}

type EchoServer = fn(&Winsock, SOCKET, &AtomicBool) -> Result<echo::ServerStats, WsaError>;

/// An echo server of `ws2_stack::echo` on `server` (one of the asynchronous models) and a swarm
/// of `clients` concurrent clients on `client`, every byte checked.
fn async_echo(
    server: &Stack,
    (name, client): &(&str, Stack),
    clients: usize,
    test: &'static str,
    serve: EchoServer,
) -> Row {
    let row = |detail: String, ok| Row {
        host: name.to_string(),
        test,
        detail,
        ok,
    };
    let (srv, cli) = (Winsock::new(server.clone()), Winsock::new(client.clone()));
    let mut data = WSADATA::default();
    for ws in [&srv, &cli] {
        if ws.WSAStartup(MAKEWORD(2, 2), Some(&mut data)) != 0 {
            return row("WSAStartup failed".into(), false);
        }
    }
    let addr = "10.0.0.1:8".parse().expect("literal address");
    let listener = match echo::echo_listener(&srv, addr, 8 * 1024) {
        Ok(l) => l,
        Err(e) => return row(format!("listen failed: {e:?}"), false),
    };
    let stop = Arc::new(AtomicBool::new(false));
    let (ws, st) = (srv.clone(), stop.clone());
    let job = thread::spawn(move || serve(&ws, listener, &st));
    let report = echo::run_clients(&cli, addr, clients, 4096, Duration::from_secs(120));
    stop.store(true, Ordering::Relaxed);
    let stats = job.join().ok().and_then(Result::ok).unwrap_or_default();
    let _ = (srv.WSACleanup(), cli.WSACleanup());
    match report {
        Ok(r) => row(
            format!(
                "{}/{clients} clients verified, {} open at once, {} KiB in {:.2} s",
                r.verified,
                stats.max_open,
                stats.echoed >> 10,
                r.elapsed.as_secs_f64()
            ),
            r.verified == clients && r.corrupted == 0 && stats.max_open == clients,
        ),
        Err(e) => row(format!("swarm failed: {e:?}"), false),
    }
}

fn client(name: &str, stack: &Stack, bytes: u64) -> Vec<Row> {
    let mut rows = vec![tcp_echo(name, stack, bytes), udp_echo(name, stack)];
    rows.push(icmp_ping(name, stack));
    rows
}

fn tcp_echo(name: &str, stack: &Stack, bytes: u64) -> Row {
    let row = |detail: String, ok| Row {
        host: name.into(),
        test: "tcp echo",
        detail,
        ok,
    };
    let start = Instant::now();
    let stream = match TcpStream::connect(stack, "10.0.0.1:7") {
        Ok(s) => s,
        Err(e) => return row(format!("connect failed: {e}"), false),
    };
    let writer = {
        let stream_ref = &stream;
        thread::scope(|scope| {
            let w = scope.spawn(move || {
                let mut sent = Sha256::new();
                let mut buf = vec![0u8; 32 * 1024];
                let mut off = 0;
                while off < bytes {
                    let n = (bytes - off).min(buf.len() as u64) as usize;
                    pattern(off, &mut buf[..n]);
                    if (&*stream_ref).write_all(&buf[..n]).is_err() {
                        return None;
                    }
                    sent.update(&buf[..n]);
                    off += n as u64;
                }
                let _ = stream_ref.shutdown(std::net::Shutdown::Write);
                Some(sent.finalize())
            });
            let mut got = Sha256::new();
            let mut total = 0u64;
            let mut buf = vec![0u8; 64 * 1024];
            while let Ok(n) = (&*stream_ref).read(&mut buf) {
                if n == 0 {
                    break;
                }
                got.update(&buf[..n]);
                total += n as u64;
            }
            (w.join().ok().flatten(), got.finalize(), total)
        })
    };
    let (sent, got, total) = writer;
    let secs = start.elapsed().as_secs_f64();
    let ok = sent.is_some_and(|s| s == got) && total == bytes;
    row(
        format!(
            "{} MiB each way in {secs:.2} s, {:.0} Mbit/s, sha256 {}",
            bytes >> 20,
            (2 * bytes) as f64 * 8.0 / secs / 1e6,
            if ok { "match" } else { "MISMATCH" }
        ),
        ok,
    )
}

fn udp_echo(name: &str, stack: &Stack) -> Row {
    let row = |detail: String, ok| Row {
        host: name.into(),
        test: "udp echo",
        detail,
        ok,
    };
    let Ok(sock) = UdpSocket::bind(stack, "0.0.0.0:0") else {
        return row("bind failed".into(), false);
    };
    let _ = sock.set_read_timeout(Some(Duration::from_millis(300)));
    let mut rtts = Vec::new();
    let mut buf = [0u8; 256];
    for i in 0..200u32 {
        let t = Instant::now();
        let msg = i.to_be_bytes();
        if sock.send_to(&msg, "10.0.0.1:7").is_err() {
            continue;
        }
        if let Ok((n, _)) = sock.recv_from(&mut buf) {
            if buf[..n] == msg {
                rtts.push(t.elapsed());
            }
        }
    }
    rtts.sort();
    let pct = |p: f64| {
        rtts.get(((rtts.len() as f64 - 1.0) * p) as usize)
            .map_or(0.0, |d| d.as_secs_f64() * 1e6)
    };
    row(
        format!(
            "{}/200 answered, rtt p50 {:.0} us, p99 {:.0} us",
            rtts.len(),
            pct(0.5),
            pct(0.99)
        ),
        rtts.len() >= 150,
    )
}

/// Five ICMP echoes through the Winsock face: `socket(AF_INET, SOCK_RAW, IPPROTO_ICMP)`.
fn icmp_ping(name: &str, stack: &Stack) -> Row {
    let row = |detail: String, ok| Row {
        host: name.into(),
        test: "icmp ping",
        detail,
        ok,
    };
    let ws = Winsock::new(stack.clone());
    let mut data = WSADATA::default();
    if ws.WSAStartup(MAKEWORD(2, 2), Some(&mut data)) != 0 {
        return row("WSAStartup failed".into(), false);
    }
    let result = (|| -> Result<(usize, f64), WsaError> {
        let s = ws.socket(AF_INET, SOCK_RAW, IPPROTO_ICMP)?;
        ws.setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, Some(&500i32.to_ne_bytes()), 4)?;
        let to = SOCKADDR_IN::new("10.0.0.1:0".parse().expect("literal address"));
        let mut answered = 0;
        let mut total = 0.0;
        for seq in 0..5u16 {
            // RFC 792 echo request, built (checksum included) by smoltcp's wire code.
            let mut echo = [0u8; 12];
            Icmpv4Repr::EchoRequest {
                ident: ECHO_IDENT,
                seq_no: seq,
                data: b"ws2!",
            }
            .emit(
                &mut Icmpv4Packet::new_unchecked(&mut echo[..]),
                &ChecksumCapabilities::default(),
            );
            let t = Instant::now();
            ws.sendto(s, &echo, 0, Some(&to), SOCKADDR_IN_LEN)?;
            let mut buf = [0u8; 128];
            loop {
                match ws.recv(s, &mut buf, 0) {
                    // An IPv4 datagram holding the ICMP echo reply with our id and seq.
                    Ok(n) if is_echo_reply(buf.get(..n as usize).unwrap_or_default(), seq) => {
                        answered += 1;
                        total += t.elapsed().as_secs_f64() * 1e6;
                        break;
                    }
                    Ok(_) => continue,
                    Err(_) => break,
                }
            }
        }
        ws.closesocket(s)?;
        Ok((answered, total / answered.max(1) as f64))
    })();
    let _ = ws.WSACleanup();
    match result {
        Ok((n, avg)) => row(
            format!("{n}/5 echo replies, average {avg:.0} us (Winsock SOCK_RAW)"),
            n >= 4,
        ),
        Err(e) => row(format!("failed: {e:?}"), false),
    }
}

/// The Identifier of the demo's echo requests ("W2").
const ECHO_IDENT: u16 = 0x5732;

/// Whether `datagram` (IPv4, as a raw socket returns it) is an ICMP echo reply (RFC 792) to the
/// demo's echo request `seq_no`.
fn is_echo_reply(datagram: &[u8], seq_no: u16) -> bool {
    let Ok(ip) = Ipv4Packet::new_checked(datagram) else {
        return false;
    };
    Icmpv4Packet::new_checked(ip.payload()).is_ok_and(|icmp| {
        icmp.msg_type() == Icmpv4Message::EchoReply
            && icmp.echo_ident() == ECHO_IDENT
            && icmp.echo_seq_no() == seq_no
    })
}
