//! [`PcapTee`]: wraps any [`Link`] and records every frame it carries, both ways, in a classic
//! pcap file (the libpcap format: magic `0xa1b2c3d4`, version 2.4, microsecond timestamps,
//! snaplen 65535, link type 1 = Ethernet) that tcpdump and Wireshark read.
//!
//! # Contract
//! - **What is recorded.** Every frame `recv` returns and every frame `send` accepted (a refused
//!   send is not on the wire and is not recorded), in call order, stamped with the wall clock
//!   ([`SystemTime`]; for the record only, the link itself uses the `now` it is given). Frames
//!   over 65535 bytes are cut to the snaplen.
//! - **Buffering.** Records are buffered and flushed at least every 64 frames, at least once a
//!   second of the link's `now` while frames flow, on [`PcapTee::flush`] and on drop, so
//!   `tcpdump -r` can follow a live file.
//! - **Errors.** A failed write to the file never breaks the link: recording stops (the rest of
//!   the file could not be trusted) and every frame not recorded from then on is counted in
//!   [`PcapTee::write_errors`].
//! - Readiness, `poll_at`, MTU and counters are the inner link's.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::path::Path;
use std::time::{Duration, Instant, SystemTime};

use crate::{Link, LinkStats};

/// Longest part of a frame that is recorded.
const SNAPLEN: u32 = 65535;
/// Link type 1: Ethernet (`LINKTYPE_ETHERNET`).
const LINKTYPE_ETHERNET: u32 = 1;
/// Records buffered before a flush.
const FLUSH_FRAMES: u32 = 64;
/// Longest time (by the link's `now`) records stay buffered while frames flow.
const FLUSH_INTERVAL: Duration = Duration::from_secs(1);

/// A [`Link`] that records everything its inner link carries to a pcap file. See the
/// [module docs](self).
#[derive(Debug)]
pub struct PcapTee<L: Link> {
    inner: L,
    /// `None` once a write failed.
    out: Option<BufWriter<File>>,
    unflushed: u32,
    last_flush: Option<Instant>,
    write_errors: u64,
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
        Ok(PcapTee { inner, out: Some(out), unflushed: 0, last_flush: None, write_errors: 0 })
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

    /// Appends one record for `frame`; flushes when due.
    fn record(&mut self, frame: &[u8], now: Instant) {
        let Some(out) = &mut self.out else {
            self.write_errors += 1;
            return;
        };
        let stamp = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
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
        let last = *self.last_flush.get_or_insert(now);
        if self.unflushed >= FLUSH_FRAMES || now.saturating_duration_since(last) >= FLUSH_INTERVAL {
            self.flush();
            self.last_flush = Some(now);
        }
    }
}

impl<L: Link> Link for PcapTee<L> {
    fn recv(&mut self, buf: &mut [u8], now: Instant) -> io::Result<Option<usize>> {
        let got = self.inner.recv(buf, now)?;
        if let Some(n) = got {
            self.record(&buf[..n.min(buf.len())], now);
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

    fn stats(&self) -> LinkStats {
        self.inner.stats()
    }
}

impl<L: Link> AsRawFd for PcapTee<L> {
    fn as_raw_fd(&self) -> RawFd {
        self.inner.as_raw_fd()
    }
}
