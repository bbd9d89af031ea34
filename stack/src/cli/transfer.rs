//! `ws2 send` and `ws2 recv`: bulk TCP or UDP between two stacks, with a SHA-256 of what went
//! over so two processes can prove the bytes matched. Issue 4 adds flowspecs to these.

use std::io::{Read, Write};
use std::net::SocketAddrV4;
use std::time::{Duration, Instant};

use clap::{Args, ValueEnum};
use sha2::{Digest, Sha256};
use ws2_stack::net::{TcpListener, TcpStream, UdpSocket};

use super::LinkArgs;

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
    /// How many bytes to send.
    #[arg(long, default_value_t = 10 * 1024 * 1024)]
    bytes: u64,
    /// Datagram size for UDP.
    #[arg(long, default_value_t = 1024)]
    datagram: usize,
    /// Keep retrying the TCP connect this long (the receiver may still be starting).
    #[arg(long, default_value_t = 10)]
    connect_wait: u64,
}

#[derive(Args, Debug)]
pub(crate) struct RecvArgs {
    #[command(flatten)]
    link: LinkArgs,
    /// Port to listen on.
    #[arg(long)]
    port: u16,
    #[arg(long, value_enum, default_value = "tcp")]
    proto: Proto,
    /// Stop after this many bytes (TCP also stops at end of stream).
    #[arg(long)]
    bytes: Option<u64>,
    /// UDP: stop after this many seconds without a datagram.
    #[arg(long, default_value_t = 3)]
    idle: u64,
}

/// The deterministic test pattern: byte i = (i·7 + 3) mod 251.
pub(crate) fn pattern(offset: u64, buf: &mut [u8]) {
    for (i, b) in buf.iter_mut().enumerate() {
        *b = (((offset + i as u64) * 7 + 3) % 251) as u8;
    }
}

pub(crate) fn send(args: &SendArgs) -> Result<(), String> {
    let stack = args.link.start()?;
    let mut hash = Sha256::new();
    let start = Instant::now();
    let mut sent = 0u64;
    match args.proto {
        Proto::Tcp => {
            let deadline = Instant::now() + Duration::from_secs(args.connect_wait);
            let mut stream = loop {
                match TcpStream::connect(&stack, args.to) {
                    Ok(s) => break s,
                    Err(e) if Instant::now() < deadline => {
                        let _ = e;
                        std::thread::sleep(Duration::from_millis(200));
                    }
                    Err(e) => return Err(format!("connect {}: {e}", args.to)),
                }
            };
            let mut buf = vec![0u8; 64 * 1024];
            while sent < args.bytes {
                let n = (args.bytes - sent).min(buf.len() as u64) as usize;
                pattern(sent, &mut buf[..n]);
                stream
                    .write_all(&buf[..n])
                    .map_err(|e| format!("send: {e}"))?;
                hash.update(&buf[..n]);
                sent += n as u64;
            }
            stream
                .shutdown(std::net::Shutdown::Write)
                .map_err(|e| format!("shutdown: {e}"))?;
            // Wait (bounded) for the receiver to close, so every byte is acknowledged before we
            // exit.
            stream
                .set_read_timeout(Some(Duration::from_secs(10)))
                .map_err(|e| e.to_string())?;
            let mut sink = [0u8; 64];
            while matches!(stream.read(&mut sink), Ok(n) if n > 0) {}
        }
        Proto::Udp => {
            let sock = UdpSocket::bind(&stack, "0.0.0.0:0").map_err(|e| format!("bind: {e}"))?;
            let mut buf = vec![0u8; args.datagram];
            while sent < args.bytes {
                let n = (args.bytes - sent).min(buf.len() as u64) as usize;
                pattern(sent, &mut buf[..n]);
                sock.send_to(&buf[..n], args.to)
                    .map_err(|e| format!("sendto: {e}"))?;
                hash.update(&buf[..n]);
                sent += n as u64;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    report("sent", sent, start, hash);
    Ok(())
}

pub(crate) fn recv(args: &RecvArgs) -> Result<(), String> {
    let stack = args.link.start()?;
    let limit = args.bytes.unwrap_or(u64::MAX);
    let mut hash = Sha256::new();
    let mut got = 0u64;
    let mut buf = vec![0u8; 64 * 1024];
    let start;
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
            }
        }
        Proto::Udp => {
            let sock = UdpSocket::bind(&stack, ("0.0.0.0", args.port))
                .map_err(|e| format!("bind: {e}"))?;
            sock.set_read_timeout(Some(Duration::from_secs(args.idle.max(1))))
                .map_err(|e| e.to_string())?;
            start = Instant::now();
            while got < limit {
                match sock.recv_from(&mut buf) {
                    Ok((n, _)) => {
                        hash.update(&buf[..n]);
                        got += n as u64;
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::TimedOut => break,
                    Err(e) => return Err(format!("recvfrom: {e}")),
                }
            }
        }
    }
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
