//! Issue 7 acceptance: an `AcceptEx`-based server and a `TransmitFile` sender move 1 GiB
//! between two stacks on an in-process `VirtualSwitch`, with matching SHA-256 digests.
//!
//! Host A writes a temporary file of seeded ChaCha8 bytes (hashing it on the way) and sends it
//! with one overlapped `TransmitFile(TF_DISCONNECT)`; host B accepts with an overlapped
//! `AcceptEx` that also takes the first block, then reads the rest with overlapped `WSARecv`s,
//! all completions through events, hashing what arrives until the end of the stream. Set
//! `WS2_TRANSFER_MIB` to move another size (default 1024 MiB).

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::thread;
use std::time::{Duration, Instant};

use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sha2::{Digest, Sha256};
use ws2_stack::winsock::*;
use ws2_stack::WsaError;
use ws2_tests::*;

const PORT: u16 = 7007;
/// AcceptEx's first block and each overlapped receive.
const RECV: usize = 256 * 1024;
/// Address slot length for AcceptEx: sizeof(sockaddr_in) + 16.
const SLOT: u32 = 32;
/// The longest any single completion may take.
const STALL: Duration = Duration::from_secs(60);

fn size() -> u64 {
    let mib = std::env::var("WS2_TRANSFER_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1024u64);
    mib << 20
}

/// The file to send, removed on drop.
struct Source {
    path: PathBuf,
}

impl Drop for Source {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Writes `len` seeded pseudo-random bytes to a temporary file; returns it and their SHA-256.
fn make_source(len: u64) -> (Source, [u8; 32]) {
    let path = std::env::temp_dir().join(format!("ws2-transfer-{}.bin", std::process::id()));
    let source = Source { path };
    let mut out = BufWriter::with_capacity(1 << 20, File::create(&source.path).expect("create"));
    let mut rng = ChaCha8Rng::seed_from_u64(0x7007_1618);
    let mut hash = Sha256::new();
    let mut block = vec![0u8; 1 << 20];
    let mut left = len;
    while left > 0 {
        let n = left.min(block.len() as u64) as usize;
        rng.fill_bytes(&mut block[..n]);
        hash.update(&block[..n]);
        out.write_all(&block[..n]).expect("write");
        left -= n as u64;
    }
    out.flush().expect("flush");
    (source, hash.finalize().into())
}

/// Waits for `ov`'s event (at most [`STALL`]) and returns the operation's byte count.
#[track_caller]
fn wait(ws: &Winsock, s: SOCKET, ov: &WSAOVERLAPPED) -> Result<u32, WsaError> {
    let r = ws.WSAWaitForMultipleEvents(&[ov.hEvent], false, STALL.as_millis() as u32, false);
    assert_eq!(r, Ok(WSA_WAIT_EVENT_0), "a completion within {STALL:?}");
    let (mut n, mut flags) = (0, 0);
    ws.WSAGetOverlappedResult(s, ov, &mut n, false, &mut flags)
        .map(|()| n)
}

/// The receiving side: AcceptEx, then overlapped WSARecv to the end of the stream. Returns
/// the byte count and SHA-256 of what arrived.
fn serve(b: &Winsock, l: SOCKET) -> (u64, [u8; 32]) {
    let acc = new_socket(b, SOCK_STREAM);
    let ov = WSAOVERLAPPED::new(b.WSACreateEvent().expect("event"));
    let mut buf = vec![0u8; RECV + 2 * SLOT as usize];
    let first = match b.AcceptEx(l, acc, &mut buf, RECV as u32, SLOT, SLOT, None, Some(&ov)) {
        Ok(()) => ov.InternalHigh(),
        Err(WsaError::WSA_IO_PENDING) => wait(b, l, &ov).expect("AcceptEx"),
        Err(e) => panic!("AcceptEx: {e:?}"),
    };
    let buf = ov.take_buffers().remove(0).buf;
    let (mut local, mut remote) = (SOCKADDR_IN::default(), SOCKADDR_IN::default());
    let (mut llen, mut rlen) = (0, 0);
    GetAcceptExSockaddrs(
        &buf,
        RECV as u32,
        SLOT,
        SLOT,
        &mut local,
        &mut llen,
        &mut remote,
        &mut rlen,
    );
    assert_eq!(local.to_socket_addr(), at(B, PORT));
    assert_eq!(*remote.to_socket_addr().ip(), A);

    let mut hash = Sha256::new();
    hash.update(&buf[..first as usize]);
    let mut got = u64::from(first);
    let mut bufs = [WSABUF::zeroed(RECV)];
    // A first block of 0 bytes is already the end of the stream.
    let mut ended = first == 0;
    while !ended {
        let (mut n, mut flags) = (0, 0);
        let r = b.WSARecv(
            acc,
            &mut bufs,
            Some(&mut n),
            Some(&mut flags),
            Some(&ov),
            None,
        );
        let n = match r {
            Ok(()) => n,
            Err(WsaError::WSA_IO_PENDING) => wait(b, acc, &ov).expect("WSARecv"),
            Err(e) => panic!("WSARecv: {e:?}"),
        };
        bufs = [ov.take_buffers().remove(0)];
        bufs[0].len = RECV as u32;
        ended = n == 0;
        hash.update(&bufs[0].buf[..n as usize]);
        got += u64::from(n);
    }
    b.closesocket(acc).expect("close");
    (got, hash.finalize().into())
}

/// 1 GiB (or `WS2_TRANSFER_MIB`) from TransmitFile to an AcceptEx server, SHA-256 identical.
#[test]
fn accept_ex_server_and_transmit_file_move_a_gibibyte() {
    let total = size();
    let made = Instant::now();
    let (source, sent_digest) = make_source(total);
    let made = made.elapsed();

    let (a, b) = two_hosts(0x1_61b);
    let l = listener(&b, at(B, PORT), 4);
    let started = Instant::now();
    let server = {
        let b = b.clone();
        thread::spawn(move || serve(&b, l))
    };

    let c = new_socket(&a, SOCK_STREAM);
    connect(&a, c, at(B, PORT)).expect("connect");
    let file = File::open(&source.path).expect("open source");
    let ov = OVERLAPPED::new(a.WSACreateEvent().expect("event"), 0);
    match a.TransmitFile(c, &file, 0, 0, Some(&ov), None, TF_DISCONNECT) {
        Err(WsaError::WSA_IO_PENDING) => {}
        r => panic!("TransmitFile should pend, got {r:?}"),
    }
    let r = a.WSAWaitForMultipleEvents(&[ov.hEvent], false, WSA_INFINITE, false);
    assert_eq!(r, Ok(WSA_WAIT_EVENT_0));
    let (mut sent, mut flags) = (0, 0);
    a.WSAGetOverlappedResult(c, &ov, &mut sent, false, &mut flags)
        .expect("TransmitFile completed");
    let sender_done = started.elapsed();

    let (got, got_digest) = server.join().expect("server thread");
    let elapsed = started.elapsed();
    let mib = total as f64 / f64::from(1 << 20);
    println!(
        "{mib:.0} MiB: file made and hashed in {made:.2?}; TransmitFile done after \
         {sender_done:.2?}; received and hashed in {elapsed:.2?} ({:.1} MiB/s, {:.0} Mbit/s)",
        mib / elapsed.as_secs_f64(),
        total as f64 * 8.0 / elapsed.as_secs_f64() / 1e6,
    );
    assert_eq!(
        u64::from(sent),
        total.min(u64::from(u32::MAX)),
        "bytes sent"
    );
    assert_eq!(got, total, "bytes received");
    assert_eq!(
        got_digest, sent_digest,
        "SHA-256 of the file and of what arrived"
    );
    a.closesocket(c).expect("close");
}
