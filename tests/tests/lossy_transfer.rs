//! 100 MiB over a lossy in-process LAN arrives intact.
//!
//! Both switch ports drop 5% of the frames they deliver, duplicate 1% and hold back 1% (so
//! later frames overtake them). A non-blocking TCP socket on host A writes 100 MiB of seeded
//! pseudo-random data to one accepted on host B, on virtual time (`ws2_tests::sim`): the
//! retransmission timeouts the loss causes cost no wall time. Both sides hash what they saw
//! with SHA-256 and the digests, the byte counts and the switch's impairment counters are
//! checked. Set `WS2_LOSSY_MIB` to run a smaller transfer while investigating, and
//! `WS2_SIM_SEED` to replay a failed run.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::thread;
use std::time::{Duration, Instant};

use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sha2::{Digest, Sha256};
use ws2_stack::winsock::*;
use ws2_stack::WsaError;
use ws2_tap::{Impairments, Link, SwitchPort, VirtualSwitch};
use ws2_tests::sim::Sim;
use ws2_tests::*;

const CHUNK: usize = 256 * 1024;

fn size() -> usize {
    let mib = std::env::var("WS2_LOSSY_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100usize);
    mib << 20
}

/// 100 MiB through 5% loss, 1% duplication and 1% reordering, SHA-256 identical at both ends.
#[test]
fn hundred_mib_through_loss_duplication_and_reordering() {
    let total = size();
    let mut sim = Sim::new(0x105e);
    let lossy = Impairments {
        loss: 0.05,
        duplicate: 0.01,
        reorder: 0.01,
        ..Impairments::default()
    };
    let a = sim.host_with(config(A), lossy.clone(), None);
    let b = sim.host_with(config(B), lossy, None);
    let (wa, wb) = (sim.winsock(&a), sim.winsock(&b));
    let l = new_socket(&wb, SOCK_STREAM);
    bind(&wb, l, at(B, 5001)).expect("bind");
    wb.listen(l, 4).expect("listen");
    set_nonblocking(&wb, l, true);
    let c = new_socket(&wa, SOCK_STREAM);
    set_nonblocking(&wa, c, true);
    assert_eq!(connect(&wa, c, at(B, 5001)), Err(WsaError::WSAEWOULDBLOCK));
    assert!(
        sim.run_until(Duration::from_secs(60), |_| poll_one(&wa, c, 0).1),
        "connect"
    );
    let mut server = None;
    assert!(
        sim.run_until(Duration::from_secs(60), |_| {
            server = wb.accept(l, None, None).ok();
            server.is_some()
        }),
        "accept"
    );
    let s = server.expect("accepted");
    set_nonblocking(&wb, s, true);
    let started = sim.elapsed();

    // Sender: seeded chunks, hashed as they are generated, written as far as the window takes
    // them; the FIN follows the last byte. Receiver: reads and hashes until the FIN.
    let mut rng = ChaCha8Rng::seed_from_u64(0x105e);
    let mut sent_hash = Sha256::new();
    let mut chunk = vec![0u8; CHUNK];
    let (mut generated, mut chunk_len, mut chunk_off) = (0usize, 0usize, 0usize);
    let mut fin_sent = false;
    let mut got_hash = Sha256::new();
    let mut buf = vec![0u8; CHUNK];
    let (mut got, mut eof) = (0usize, false);
    let done = sim.run_until(Duration::from_secs(3600), |_| {
        loop {
            if chunk_off == chunk_len && generated < total {
                let n = CHUNK.min(total - generated);
                rng.fill_bytes(&mut chunk[..n]);
                sent_hash.update(&chunk[..n]);
                generated += n;
                (chunk_len, chunk_off) = (n, 0);
            }
            if chunk_off == chunk_len {
                if !fin_sent {
                    wa.shutdown(c, SD_SEND).expect("shutdown");
                    fin_sent = true;
                }
                break;
            }
            match wa.send(c, &chunk[chunk_off..chunk_len], 0) {
                Ok(n) => chunk_off += n as usize,
                Err(WsaError::WSAEWOULDBLOCK) => break,
                Err(e) => panic!("send: {e:?}"),
            }
        }
        while !eof {
            match wb.recv(s, &mut buf, 0) {
                Ok(0) => eof = true,
                Ok(n) => {
                    got_hash.update(&buf[..n as usize]);
                    got += n as usize;
                }
                Err(WsaError::WSAEWOULDBLOCK) => break,
                Err(e) => panic!("recv: {e:?}"),
            }
        }
        eof
    });
    let took = sim.elapsed() - started;
    let stats = sim.switch_stats();
    eprintln!(
        "lossy_transfer: {} MiB in {:.1} s of virtual time ({:.1} Mbit/s); switch {:?}; A {:?}; B {:?}",
        total >> 20,
        took.as_secs_f64(),
        total as f64 * 8.0 / took.as_secs_f64() / 1e6,
        stats,
        a.stats(),
        b.stats(),
    );
    assert!(
        done,
        "the FIN arrived within an hour ({got} of {total} bytes)"
    );
    assert_eq!(got, total, "byte count");
    assert_eq!(
        got_hash.finalize(),
        sent_hash.finalize(),
        "SHA-256 of what arrived"
    );
    // The impairments really happened.
    assert!(
        stats.dropped_loss > 0 && stats.duplicated > 0 && stats.reordered > 0,
        "{stats:?}"
    );
    wa.closesocket(c).expect("close");
    assert!(took < Duration::from_secs(3600));
}

/// A hand-driven TCP peer on a raw switch port: just enough to put a stack's connection into
/// an exact state.
struct FakePeer {
    port: SwitchPort,
    mac: [u8; 6],
    ip: Ipv4Addr,
}

/// A TCP segment as the fake peer saw it.
#[derive(Debug, Clone, Copy)]
struct Seen {
    src_port: u16,
    seq: u32,
    flags: u8,
    len: usize,
}

const FIN: u8 = 0x01;
const SYN: u8 = 0x02;
const ACK: u8 = 0x10;

fn sum16(mut sum: u32, data: &[u8]) -> u32 {
    for pair in data.chunks(2) {
        sum += u32::from(u16::from_be_bytes([pair[0], *pair.get(1).unwrap_or(&0)]));
    }
    sum
}

fn fold(mut sum: u32) -> [u8; 2] {
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    (!(sum as u16)).to_be_bytes()
}

impl FakePeer {
    fn send(&mut self, frame: &[u8], now: Instant) {
        self.port
            .send(frame, now)
            .expect("switch port takes the frame");
    }

    /// Answers the ARP requests for our address that have arrived by `now`; returns the first
    /// TCP segment among them, if any.
    fn poll_segment(&mut self, now: Instant) -> Option<Seen> {
        let mut buf = vec![0u8; 2048];
        while let Ok(Some(n)) = self.port.recv(&mut buf, now) {
            let f = &buf[..n];
            if f.len() >= 42
                && f[12..14] == [0x08, 0x06]
                && f[21] == 1
                && f[38..42] == self.ip.octets()
            {
                let mut reply = Vec::with_capacity(42);
                reply.extend_from_slice(&f[6..12]);
                reply.extend_from_slice(&self.mac);
                reply.extend_from_slice(&[0x08, 0x06, 0, 1, 8, 0, 6, 4, 0, 2]);
                reply.extend_from_slice(&self.mac);
                reply.extend_from_slice(&self.ip.octets());
                reply.extend_from_slice(&f[22..32]);
                self.send(&reply, now);
                continue;
            }
            if f.len() >= 54 && f[12..14] == [0x08, 0x00] && f[23] == 6 {
                let ihl = usize::from(f[14] & 0x0f) * 4;
                let total = usize::from(u16::from_be_bytes([f[16], f[17]]));
                let tcp = &f[14 + ihl..14 + total];
                let off = usize::from(tcp[12] >> 4) * 4;
                return Some(Seen {
                    src_port: u16::from_be_bytes([tcp[0], tcp[1]]),
                    seq: u32::from_be_bytes([tcp[4], tcp[5], tcp[6], tcp[7]]),
                    flags: tcp[13],
                    len: tcp.len() - off,
                });
            }
        }
        None
    }

    /// On the real clock: answers ARP requests; returns the next TCP segment within `limit`.
    fn wait_segment(&mut self, limit: Duration) -> Option<Seen> {
        let end = Instant::now() + limit;
        while Instant::now() < end {
            if let Some(s) = self.poll_segment(Instant::now()) {
                return Some(s);
            }
            thread::sleep(Duration::from_millis(1));
        }
        None
    }

    /// On virtual time: runs `sim` until a TCP segment for which `want` holds arrives, up to
    /// `limit`.
    fn next_segment(
        &mut self,
        sim: &mut Sim,
        limit: Duration,
        mut want: impl FnMut(&Seen) -> bool,
    ) -> Option<Seen> {
        let mut found = None;
        sim.run_until(limit, |sim| {
            while let Some(s) = self.poll_segment(sim.now()) {
                if want(&s) {
                    found = Some(s);
                    return true;
                }
            }
            false
        });
        found
    }

    /// Sends a TCP segment without payload from our address to `to`.
    fn segment(
        &mut self,
        now: Instant,
        to: SocketAddrV4,
        from_port: u16,
        seq: u32,
        ack: u32,
        flags: u8,
    ) {
        let mut tcp = vec![0u8; 20];
        tcp[0..2].copy_from_slice(&from_port.to_be_bytes());
        tcp[2..4].copy_from_slice(&to.port().to_be_bytes());
        tcp[4..8].copy_from_slice(&seq.to_be_bytes());
        tcp[8..12].copy_from_slice(&ack.to_be_bytes());
        tcp[12] = 5 << 4;
        tcp[13] = flags;
        tcp[14..16].copy_from_slice(&65535u16.to_be_bytes());
        let mut pseudo = Vec::new();
        pseudo.extend_from_slice(&self.ip.octets());
        pseudo.extend_from_slice(&to.ip().octets());
        pseudo.extend_from_slice(&[0, 6, 0, 20]);
        let c = fold(sum16(sum16(0, &pseudo), &tcp));
        tcp[16..18].copy_from_slice(&c);
        let mut ip = vec![0x45, 0, 0, 40, 0, 0, 0x40, 0, 64, 6, 0, 0];
        ip.extend_from_slice(&self.ip.octets());
        ip.extend_from_slice(&to.ip().octets());
        let c = fold(sum16(0, &ip));
        ip[10..12].copy_from_slice(&c);
        let mut f = Vec::with_capacity(54);
        f.extend_from_slice(&mac_of(*to.ip()));
        f.extend_from_slice(&self.mac);
        f.extend_from_slice(&[0x08, 0x00]);
        f.extend_from_slice(&ip);
        f.extend_from_slice(&tcp);
        self.send(&f, now);
    }
}

/// Regression (found by the 100 MiB test): when only the FIN is left unacknowledged and three
/// duplicate ACKs arrive, smoltcp's fast retransmit has no data to resend and leaves its
/// retransmission timer idle; the FIN must still be sent again (here within one RTO), or the
/// peer never sees the end of the stream.
#[test]
fn lone_fin_is_retransmitted_after_duplicate_acks() {
    let switch = VirtualSwitch::new(0xf1);
    let a = started(&stack_on(&switch, config(A)));
    let peer_ip = Ipv4Addr::new(10, 0, 0, 9);
    let mut peer = FakePeer {
        port: switch.port(),
        mac: [0x06, 0, 0, 0, 0, 9],
        ip: peer_ip,
    };
    let c = new_socket(&a, SOCK_STREAM);
    set_nonblocking(&a, c, true);
    assert_would_block(connect(&a, c, at(peer_ip, 80)));
    let syn = peer.wait_segment(Duration::from_secs(5)).expect("SYN");
    assert_eq!(syn.flags & SYN, SYN);
    let a_end = at(A, syn.src_port);
    let isn = 7_000_000u32;
    peer.segment(
        Instant::now(),
        a_end,
        80,
        isn,
        syn.seq.wrapping_add(1),
        SYN | ACK,
    );
    assert!(
        wait_until(Duration::from_secs(5), || poll_one(&a, c, 0).1),
        "connected"
    );
    assert_eq!(a.send(c, b"hello", 0), Ok(5));
    a.shutdown(c, SD_SEND).expect("shutdown");
    // Collect A's data and FIN.
    let data_end = syn.seq.wrapping_add(1 + 5);
    let end = Instant::now() + Duration::from_secs(5);
    let mut fin_seen = false;
    while !fin_seen && Instant::now() < end {
        if let Some(s) = peer.wait_segment(Duration::from_millis(100)) {
            fin_seen = s.flags & FIN != 0;
        }
    }
    assert!(fin_seen, "A sent its FIN");
    // Acknowledge the data but not the FIN, then three duplicates of that ACK.
    for _ in 0..4 {
        peer.segment(
            Instant::now(),
            a_end,
            80,
            isn.wrapping_add(1),
            data_end,
            ACK,
        );
    }
    // A must send its FIN again (at the FIN's own sequence number) within a few RTOs.
    let end = Instant::now() + Duration::from_secs(6);
    let mut resent = false;
    while !resent && Instant::now() < end {
        if let Some(s) = peer.wait_segment(Duration::from_millis(100)) {
            resent = s.flags & FIN != 0 && s.seq == data_end && s.len == 0;
        }
    }
    assert!(resent, "the lone FIN was never retransmitted");
}

/// The same on virtual time, with the hand-driven peer on a bare port of the simulation's
/// switch. Regression: the engine re-armed a lone FIN only in its connection scan and gave its
/// driver no deadline for it, so a stepped driver (`Stack::with_driver`) never sent the FIN
/// again; the threaded driver on the real clock hid it by waking at least every 500 ms.
#[test]
fn lone_fin_is_retransmitted_after_duplicate_acks_on_virtual_time() {
    let mut sim = Sim::new(0xf1);
    let a = sim.host(config(A));
    let a = sim.winsock(&a);
    let peer_ip = Ipv4Addr::new(10, 0, 0, 9);
    let mut peer = FakePeer {
        port: sim.port(),
        mac: [0x06, 0, 0, 0, 0, 9],
        ip: peer_ip,
    };
    let c = new_socket(&a, SOCK_STREAM);
    set_nonblocking(&a, c, true);
    assert_would_block(connect(&a, c, at(peer_ip, 80)));
    let syn = peer
        .next_segment(&mut sim, Duration::from_secs(5), |_| true)
        .expect("SYN");
    assert_eq!(syn.flags & SYN, SYN);
    let a_end = at(A, syn.src_port);
    let isn = 7_000_000u32;
    peer.segment(
        sim.now(),
        a_end,
        80,
        isn,
        syn.seq.wrapping_add(1),
        SYN | ACK,
    );
    assert!(
        sim.run_until(Duration::from_secs(5), |_| poll_one(&a, c, 0).1),
        "connected"
    );
    assert_eq!(a.send(c, b"hello", 0), Ok(5));
    a.shutdown(c, SD_SEND).expect("shutdown");
    // Collect A's data and FIN.
    let data_end = syn.seq.wrapping_add(1 + 5);
    let fin = peer.next_segment(&mut sim, Duration::from_secs(5), |s| s.flags & FIN != 0);
    assert!(fin.is_some(), "A sent its FIN");
    // Acknowledge the data but not the FIN, then three duplicates of that ACK.
    for _ in 0..4 {
        peer.segment(sim.now(), a_end, 80, isn.wrapping_add(1), data_end, ACK);
    }
    // A must send its FIN again (at the FIN's own sequence number) within a few RTOs.
    let resent = peer.next_segment(&mut sim, Duration::from_secs(6), |s| {
        s.flags & FIN != 0 && s.seq == data_end && s.len == 0
    });
    assert!(resent.is_some(), "the lone FIN was never retransmitted");
}
