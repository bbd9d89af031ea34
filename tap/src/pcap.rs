//! [`PcapTee`]: wraps any [`Link`] and records every frame it carries, both ways, in a classic
//! pcap file that tcpdump and Wireshark read.
//!
//! Contract in short (in full on [`PcapTee`]): readiness, `poll_at` and drops are the inner
//! link's; frames received and frames accepted by `send` are recorded; a failed file write stops
//! recording and is counted, and never breaks the link.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::path::Path;
use std::time::{Instant, SystemTime};

use crate::{Link, LinkStats};

/// Longest part of a frame that is recorded.
const SNAPLEN: u32 = 65535;
/// Link type 1: Ethernet (`LINKTYPE_ETHERNET`).
const LINKTYPE_ETHERNET: u32 = 1;
/// Records buffered before a flush.
const FLUSH_FRAMES: u32 = 64;

/// A [`Link`] that records everything its inner link carries to a pcap file (the libpcap format:
/// magic `0xa1b2c3d4`, version 2.4, microsecond timestamps, snaplen 65535, link type 1 =
/// Ethernet).
///
/// # Contract
/// - **What is recorded.** Every frame `recv` returns and every frame `send` accepted (a refused
///   send is not on the wire and is not recorded), in call order, stamped with the wall clock
///   ([`SystemTime`]; for the record only, the link itself uses the `now` it is given), or — made
///   with [`PcapTee::with_time_origin`] — with the `now` the link is given, counted from an
///   origin, so a run on virtual time writes the same file every time. Frames over 65535 bytes
///   are cut to the snaplen.
/// - **Buffering.** Records are buffered and flushed every 64 frames, whenever `recv` answers
///   `Ok(None)` (the end of the stack's receive batch, so once per pass at most), on
///   [`PcapTee::flush`] and on drop: `tcpdump -r` sees a live file at most one pass behind.
/// - **Errors.** A failed write to the file never breaks the link: recording stops (the rest of
///   the file could not be trusted) and every frame not recorded from then on is counted in
///   [`PcapTee::write_errors`].
/// - Readiness, `poll_at`, MTU and counters are the inner link's.
#[derive(Debug)]
pub struct PcapTee<L: Link> {
    inner: L,
    /// `None` once a write failed.
    out: Option<BufWriter<File>>,
    unflushed: u32,
    write_errors: u64,
    /// Stamps are `now - origin` (from 1970-01-01) instead of the wall clock.
    origin: Option<Instant>,
}

impl<L: Link> PcapTee<L> {
    /// Wraps `inner`, recording to a new file at `path` (truncated if it exists); the global
    /// header is written at once.
    ///
    /// # Errors
    /// Creating the file or writing its header.
    pub fn new(inner: L, path: &Path) -> io::Result<PcapTee<L>> {
        let mut out = BufWriter::new(File::create(path)?);
        let mut header = [0u8; 24];
        header[0..4].copy_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
        header[4..6].copy_from_slice(&2u16.to_le_bytes());
        header[6..8].copy_from_slice(&4u16.to_le_bytes());
        // 8..16: thiszone and sigfigs, both 0.
        header[16..20].copy_from_slice(&SNAPLEN.to_le_bytes());
        header[20..24].copy_from_slice(&LINKTYPE_ETHERNET.to_le_bytes());
        out.write_all(&header)?;
        out.flush()?;
        Ok(PcapTee {
            inner,
            out: Some(out),
            unflushed: 0,
            write_errors: 0,
            origin: None,
        })
    }

    /// Like [`PcapTee::new`], but every record is stamped with the `now` given to `send` or
    /// `recv`, less `origin` (so the first second of a run is 1970-01-01 00:00:00 UTC): on a
    /// virtual clock the same run writes the same bytes.
    ///
    /// # Errors
    /// Creating the file or writing its header.
    pub fn with_time_origin(inner: L, path: &Path, origin: Instant) -> io::Result<PcapTee<L>> {
        let mut tee = PcapTee::new(inner, path)?;
        tee.origin = Some(origin);
        Ok(tee)
    }

    /// The wrapped link.
    pub fn get_ref(&self) -> &L {
        &self.inner
    }

    /// The wrapped link, mutably. Frames moved through it directly are not recorded.
    pub fn get_mut(&mut self) -> &mut L {
        &mut self.inner
    }

    /// Flushes the file and returns the wrapped link.
    pub fn into_inner(mut self) -> L {
        self.flush();
        self.inner
    }

    /// Frames that could not be recorded because writing the file failed.
    pub fn write_errors(&self) -> u64 {
        self.write_errors
    }

    /// Writes buffered records to the file now. A failure stops recording (see
    /// [`write_errors`](Self::write_errors)).
    pub fn flush(&mut self) {
        if let Some(out) = &mut self.out {
            if out.flush().is_err() {
                self.write_errors += u64::from(self.unflushed);
                self.out = None;
            }
        }
        self.unflushed = 0;
    }

    /// Appends one record for `frame` seen at `now`; flushes every [`FLUSH_FRAMES`].
    fn record(&mut self, frame: &[u8], now: Instant) {
        let Some(out) = &mut self.out else {
            self.write_errors += 1;
            return;
        };
        let stamp = match self.origin {
            Some(origin) => now.saturating_duration_since(origin),
            None => SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .unwrap_or_default(),
        };
        let orig_len = u32::try_from(frame.len()).unwrap_or(u32::MAX);
        let incl_len = orig_len.min(SNAPLEN);
        let mut header = [0u8; 16];
        header[0..4].copy_from_slice(&(stamp.as_secs() as u32).to_le_bytes());
        header[4..8].copy_from_slice(&stamp.subsec_micros().to_le_bytes());
        header[8..12].copy_from_slice(&incl_len.to_le_bytes());
        header[12..16].copy_from_slice(&orig_len.to_le_bytes());
        let written = out
            .write_all(&header)
            .and_then(|()| out.write_all(&frame[..incl_len as usize]));
        if written.is_err() {
            self.write_errors += 1 + u64::from(self.unflushed);
            self.out = None;
            return;
        }
        self.unflushed += 1;
        if self.unflushed >= FLUSH_FRAMES {
            self.flush();
        }
    }
}

impl<L: Link> Link for PcapTee<L> {
    fn recv(&mut self, buf: &mut [u8], now: Instant) -> io::Result<Option<usize>> {
        let got = self.inner.recv(buf, now)?;
        match got {
            Some(n) => self.record(&buf[..n.min(buf.len())], now),
            None if self.unflushed > 0 => self.flush(),
            None => {}
        }
        Ok(got)
    }

    fn send(&mut self, frame: &[u8], now: Instant) -> io::Result<()> {
        self.inner.send(frame, now)?;
        self.record(frame, now);
        Ok(())
    }

    fn poll_at(&self) -> Option<Instant> {
        self.inner.poll_at()
    }

    fn mtu(&self) -> usize {
        self.inner.mtu()
    }

    fn carrier(&self) -> Option<bool> {
        self.inner.carrier()
    }

    fn stats(&self) -> LinkStats {
        self.inner.stats()
    }
}

impl<L: Link> AsRawFd for PcapTee<L> {
    fn as_raw_fd(&self) -> RawFd {
        self.inner.as_raw_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::VirtualSwitch;

    fn u32_at(b: &[u8], at: usize) -> u32 {
        u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
    }

    #[test]
    fn records_frames_both_ways() {
        let path = std::env::temp_dir().join(format!("ws2-tap-test-{}.pcap", std::process::id()));
        let switch = VirtualSwitch::new(1);
        let mut peer = switch.port();
        let mut tee = PcapTee::new(switch.port(), &path).unwrap();
        let now = Instant::now();
        let mut frame = vec![0xffu8; 60];
        frame[6..12].copy_from_slice(&[2, 0, 0, 0, 0, 1]);
        tee.send(&frame, now).unwrap();
        tee.send(&frame[..42], now).unwrap();
        assert!(
            tee.send(&frame[..10], now).is_err(),
            "refused, so not recorded"
        );
        frame[6..12].copy_from_slice(&[2, 0, 0, 0, 0, 2]);
        peer.send(&frame, now).unwrap();
        let mut buf = [0u8; 1518];
        assert_eq!(tee.recv(&mut buf, now).unwrap(), Some(60));
        assert_eq!(tee.recv(&mut buf, now).unwrap(), None); // flushes
        assert_eq!(tee.stats().tx_frames, 2);

        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(u32_at(&bytes, 0), 0xa1b2_c3d4);
        assert_eq!(&bytes[4..8], &[2, 0, 4, 0]);
        assert_eq!(u32_at(&bytes, 16), 65535);
        assert_eq!(u32_at(&bytes, 20), 1);
        let mut at = 24;
        let mut lens = Vec::new();
        while at < bytes.len() {
            let (incl, orig) = (u32_at(&bytes, at + 8), u32_at(&bytes, at + 12));
            assert_eq!(incl, orig);
            lens.push(incl);
            at += 16 + incl as usize;
        }
        assert_eq!(at, bytes.len());
        assert_eq!(lens, vec![60, 42, 60]);
        assert_eq!(tee.write_errors(), 0);
        let _port = tee.into_inner();
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn write_errors_are_counted_and_the_link_goes_on() {
        use std::os::unix::fs::OpenOptionsExt;
        // A FIFO whose reader leaves after the header: every later write fails with EPIPE
        // (Rust ignores SIGPIPE).
        let path = std::env::temp_dir().join(format!("ws2-tap-test-{}.fifo", std::process::id()));
        let made = std::process::Command::new("mkfifo").arg(&path).status();
        if !made.is_ok_and(|s| s.success()) {
            println!("SKIP: mkfifo failed");
            return;
        }
        let reader = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(&path)
            .unwrap();
        let switch = VirtualSwitch::new(1);
        let _peer = switch.port();
        let mut tee = PcapTee::new(switch.port(), &path).unwrap();
        drop(reader);
        std::fs::remove_file(&path).unwrap();
        let frame = [0xffu8; 60];
        for _ in 0..100 {
            tee.send(&frame, Instant::now()).unwrap();
        }
        tee.flush();
        assert_eq!(tee.stats().tx_frames, 100);
        assert_eq!(tee.write_errors(), 100);
    }
}
