//! Capturing frames, to check what went on the wire rather than what the stack says it sent:
//!
//! - tier 3: [`Capture`] runs `tcpdump` on an interface of a test namespace and [`read_pcap`]
//!   reads the file it writes ([`Tcpdump`] sets snap length, buffer and file name);
//! - tier 2: a bare [`SwitchPort`] (the "watcher"), to which a [`ws2_tap::VirtualSwitch`]
//!   floods every multicast frame; [`drain`], [`watch`] and [`sniff`] read it.
//!
//! What is in the frames is read by [`crate::wire`].

use std::fs;
use std::io::{self, BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Child, ChildStderr, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use ws2_tap::{Link, SwitchPort};

use crate::netns::{Netns, REQUIRE_ENV};

/// `tcpdump` on one interface of a namespace, writing a pcap file; stopped (and its file
/// removed) on drop, also when the test fails. Needs `tcpdump` (see [`require_tcpdump`]).
#[derive(Debug)]
pub struct Capture {
    child: Option<Child>,
    stderr: Option<BufReader<ChildStderr>>,
    path: PathBuf,
}

/// One captured frame.
#[derive(Clone, Debug)]
pub struct Frame {
    /// The kernel's capture timestamp, nanoseconds of the realtime clock.
    pub at: u64,
    /// The frame's length on the wire without FCS (pcap `orig_len`).
    pub len: usize,
    /// Its first bytes, up to the snap length (Ethernet header first).
    pub data: Vec<u8>,
}

/// The settings of a [`Capture`]: interface, filter, and the `tcpdump` options that differ
/// between tests. Always `-n -Z root --immediate-mode --time-stamp-precision=nano`.
#[derive(Clone, Debug)]
pub struct Tcpdump {
    dev: String,
    filter: String,
    snap_len: u32,
    buffer_kib: u32,
    file: Option<String>,
}

impl Tcpdump {
    /// `tcpdump -i dev filter` with a snap length of 2048 (whole frames at a 1500-byte MTU), a
    /// buffer of 8 MiB, and a file of its own in the temporary directory.
    pub fn new(dev: &str, filter: &str) -> Tcpdump {
        Tcpdump {
            dev: dev.to_owned(),
            filter: filter.to_owned(),
            snap_len: 2048,
            buffer_kib: 8192,
            file: None,
        }
    }

    /// Keeps only the first `bytes` of each frame (`-s`); [`Frame::len`] still says how long
    /// the frame was.
    pub fn snap_len(self, bytes: u32) -> Tcpdump {
        Tcpdump {
            snap_len: bytes,
            ..self
        }
    }

    /// The kernel buffer, KiB (`-B`).
    pub fn buffer_kib(self, kib: u32) -> Tcpdump {
        Tcpdump {
            buffer_kib: kib,
            ..self
        }
    }

    /// Names the pcap file (in the temporary directory) instead of
    /// `ws2-capture-<pid>-<counter>.pcap`.
    pub fn file(self, name: &str) -> Tcpdump {
        Tcpdump {
            file: Some(name.to_owned()),
            ..self
        }
    }

    /// Starts `tcpdump` in `ns` and returns once it listens.
    ///
    /// # Panics
    /// If `tcpdump` cannot start or exits before listening.
    pub fn start(self, ns: &Netns) -> Capture {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let name = self.file.unwrap_or_else(|| {
            format!(
                "ws2-capture-{}-{}.pcap",
                std::process::id(),
                COUNTER.fetch_add(1, Ordering::Relaxed)
            )
        });
        let path = std::env::temp_dir().join(name);
        let _ = fs::remove_file(&path);
        let path_arg = path.display().to_string();
        let (snap, buffer) = (self.snap_len.to_string(), self.buffer_kib.to_string());
        let mut child = ns
            .command(&[
                "tcpdump",
                "-i",
                &self.dev,
                "-n",
                "-Z",
                "root",
                "-s",
                &snap,
                "-B",
                &buffer,
                "--immediate-mode",
                "--time-stamp-precision=nano",
                "-w",
                &path_arg,
                &self.filter,
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run tcpdump in the namespace");
        let mut stderr = BufReader::new(child.stderr.take().expect("piped stderr"));
        let mut cap = Capture {
            child: Some(child),
            stderr: None,
            path,
        };
        let mut line = String::new();
        loop {
            line.clear();
            let n = stderr.read_line(&mut line).expect("read tcpdump's stderr");
            assert!(n > 0, "tcpdump exited before listening");
            if line.contains("listening on") {
                break;
            }
        }
        cap.stderr = Some(stderr);
        cap
    }
}

impl Capture {
    /// Starts `tcpdump -i dev filter` in `ns` with [`Tcpdump::new`]'s settings and returns
    /// once it listens.
    ///
    /// # Panics
    /// If `tcpdump` cannot start or exits before listening.
    pub fn start(ns: &Netns, dev: &str, filter: &str) -> Capture {
        Tcpdump::new(dev, filter).start(ns)
    }

    /// Stops `tcpdump` (SIGINT, so that it flushes its file) and returns the frames it wrote.
    ///
    /// # Panics
    /// If the kernel dropped frames (the capture would not be complete) or the file is not a
    /// pcap file.
    pub fn finish(mut self) -> Vec<Frame> {
        // Frames already written to the interface reach tcpdump's buffer at once; a short
        // pause lets the last ones through before the interrupt.
        thread::sleep(Duration::from_millis(50));
        let summary = self.stop();
        eprintln!("tcpdump: {}", summary.trim().replace('\n', "; "));
        let dropped = summary
            .lines()
            .find_map(|l| l.strip_suffix(" packets dropped by kernel"))
            .and_then(|n| n.trim().parse::<u64>().ok());
        assert_eq!(
            dropped,
            Some(0),
            "the capture must be complete; tcpdump said: {summary}"
        );
        let bytes = fs::read(&self.path).expect("read the capture");
        read_pcap(&bytes).expect("tcpdump writes pcap")
    }

    /// Interrupts `tcpdump`, waits for it and returns the rest of its stderr.
    fn stop(&mut self) -> String {
        let Some(mut child) = self.child.take() else {
            return String::new();
        };
        let pid = libc::pid_t::try_from(child.id()).expect("pid fits pid_t");
        // SAFETY: kill has no memory-safety preconditions; `pid` is our own child, not yet
        // reaped, so the id cannot have been reused.
        #[allow(unsafe_code)]
        unsafe {
            libc::kill(pid, libc::SIGINT);
        }
        let mut rest = String::new();
        if let Some(mut e) = self.stderr.take() {
            let _ = e.read_to_string(&mut rest);
        }
        let _ = child.wait();
        rest
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        self.stop();
        let _ = fs::remove_file(&self.path);
    }
}

/// `None` when `tcpdump` runs here; otherwise prints `SKIP: <test>: needs tcpdump` and answers
/// `Some(())` (a failure instead with `WS2_REQUIRE_NETNS=1`), like
/// [`require_netns`](crate::netns::require_netns).
pub fn require_tcpdump() -> Option<()> {
    let ok = Command::new("tcpdump")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if ok {
        return None;
    }
    let test = thread::current()
        .name()
        .unwrap_or("<unnamed test>")
        .to_owned();
    if std::env::var(REQUIRE_ENV).is_ok_and(|v| v == "1") {
        panic!("{test}: needs tcpdump (and {REQUIRE_ENV}=1 forbids skipping)");
    }
    eprintln!("SKIP: {test}: needs tcpdump");
    Some(())
}

/// The records of a pcap file (link type Ethernet, either byte order, micro- or nanosecond
/// timestamps); a record cut short at the end (tcpdump interrupted mid-write) is left out.
///
/// # Errors
/// `InvalidData` for a file that is not pcap or not Ethernet.
pub fn read_pcap(b: &[u8]) -> io::Result<Vec<Frame>> {
    let bad = |what: String| io::Error::new(io::ErrorKind::InvalidData, what);
    if b.len() < 24 {
        return Err(bad(format!("pcap file of {} bytes", b.len())));
    }
    let magic = [b[0], b[1], b[2], b[3]];
    let (le, nanos) = match magic {
        [0xd4, 0xc3, 0xb2, 0xa1] => (true, false),
        [0x4d, 0x3c, 0xb2, 0xa1] => (true, true),
        [0xa1, 0xb2, 0xc3, 0xd4] => (false, false),
        [0xa1, 0xb2, 0x3c, 0x4d] => (false, true),
        _ => return Err(bad(format!("not a pcap file: magic {magic:02x?}"))),
    };
    let u32_at = |i: usize| {
        let w = [b[i], b[i + 1], b[i + 2], b[i + 3]];
        if le {
            u32::from_le_bytes(w)
        } else {
            u32::from_be_bytes(w)
        }
    };
    if u32_at(20) != 1 {
        return Err(bad(format!("link type {}, not Ethernet", u32_at(20))));
    }
    let mut out = Vec::new();
    let mut i = 24;
    while i + 16 <= b.len() {
        let (sec, frac) = (u64::from(u32_at(i)), u64::from(u32_at(i + 4)));
        let incl = u32_at(i + 8) as usize;
        let orig = u32_at(i + 12) as usize;
        if i + 16 + incl > b.len() {
            break;
        }
        out.push(Frame {
            at: sec * 1_000_000_000 + if nanos { frac } else { frac * 1000 },
            len: orig,
            data: b[i + 16..i + 16 + incl].to_vec(),
        });
        i += 16 + incl;
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// The watcher: a bare port of a virtual switch.

/// Every frame the watcher has queued now.
pub fn drain(port: &mut SwitchPort) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut buf = vec![0u8; 65536];
    while let Ok(Some(n)) = port.recv(&mut buf, Instant::now()) {
        out.push(buf[..n].to_vec());
    }
    out
}

/// Every frame arriving at the watcher within `limit`.
pub fn watch(port: &mut SwitchPort, limit: Duration) -> Vec<Vec<u8>> {
    let end = Instant::now() + limit;
    let mut out = Vec::new();
    while Instant::now() < end {
        let got = drain(port);
        if got.is_empty() {
            thread::sleep(Duration::from_millis(1));
        }
        out.extend(got);
    }
    out.extend(drain(port));
    out
}

/// The first frame within `limit` that `want` accepts.
pub fn sniff(
    port: &mut SwitchPort,
    limit: Duration,
    want: impl Fn(&[u8]) -> bool,
) -> Option<Vec<u8>> {
    let end = Instant::now() + limit;
    loop {
        if let Some(f) = drain(port).into_iter().find(|f| want(f)) {
            return Some(f);
        }
        if Instant::now() >= end {
            return None;
        }
        thread::sleep(Duration::from_millis(1));
    }
}
