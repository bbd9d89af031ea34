//! Fuzz harness for the ws2 stack (issue 13, docs/reliability.md "Fuzzing").
//!
//! [`run`] turns fuzz input into a script over the LAN of [`lan`]: frames built from a
//! target's templates ([`templates`], [`rmp`]) with fields the input picks, then byte edits,
//! optionally repaired lengths and checksums, repeated with a walking index (fragments,
//! sequence numbers, a flood from many hosts), interleaved with steps of virtual time and
//! application calls. Every run asserts, whatever the input:
//!
//! 1. **no panic** anywhere in the stacks (a panic is the fuzzer's crash);
//! 2. **bounded memory**: the LAN's heap never grows more than [`MEMORY_CAP`] above what it
//!    held once set up (counted by [`alloc::Counting`] when the binary installs it);
//! 3. **liveness**: the reference connection A ↔ C (and for `rmp`, leaf C in A's session)
//!    still moves data both ways within [`LIVENESS`] after the fuzz frames.
//!
//! The cargo-fuzz targets in `fuzz/fuzz_targets/` call [`run`]; `tests/corpus.rs` replays
//! `fuzz/corpus/<target>/` through it on the stable toolchain.

pub mod alloc;
pub mod lan;
pub mod packet;
pub mod rmp;
pub mod templates;

use std::time::Duration;

use arbitrary::{Arbitrary, Unstructured};

use lan::Lan;
use packet::Fix;
use templates::{ArpTpl, Ctx, IcmpTpl, IgmpTpl, Ipv4Tpl, TcpTpl};

/// The fuzz targets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// ARP requests and replies (spoofed, gratuitous, floods from many hosts) and the SYNs
    /// and datagrams that make A resolve addresses itself.
    Arp,
    /// IPv4 with options and fragments (overlapping, reversed, never completed).
    Ipv4,
    /// TCP on the target connection, A's listener and closed ports: any flags, URG pointers,
    /// odd options, sequence numbers near and far.
    Tcp,
    /// ICMP errors quoting A's own datagrams, forged quotes, queries.
    Icmp,
    /// IGMP v1/v2/v3 queries and reports, large source lists, lying counts.
    Igmp,
    /// RMP messages from a leaf over an established TCP connection to A's c_root.
    Rmp,
}

impl Target {
    /// Every target, in the order the corpus directories are listed.
    pub const ALL: [Target; 6] = [
        Target::Arp,
        Target::Ipv4,
        Target::Tcp,
        Target::Icmp,
        Target::Igmp,
        Target::Rmp,
    ];

    /// The target's name (its cargo-fuzz binary and corpus directory).
    pub fn name(self) -> &'static str {
        match self {
            Target::Arp => "arp",
            Target::Ipv4 => "ipv4",
            Target::Tcp => "tcp",
            Target::Icmp => "icmp",
            Target::Igmp => "igmp",
            Target::Rmp => "rmp",
        }
    }
}

/// The seed of every run's LAN: a run depends on its input alone.
pub const SEED: u64 = 0x5732_f022;
/// Most steps one input runs.
pub const MAX_STEPS: usize = 128;
/// Most frames one input sends (repeats included).
pub const MAX_FRAMES: usize = 4096;
/// Most virtual time one input's waits add up to.
pub const MAX_WAIT: Duration = Duration::from_secs(300);
/// How long the reference connection has to move its data after the fuzz frames. Generous
/// on purpose: a retransmission backoff or an ARP retry after the frames is not a failure,
/// a connection that no longer moves is.
pub const LIVENESS: Duration = Duration::from_secs(60);
/// How much the LAN's heap may grow above its size once set up. The inputs send at most
/// [`MAX_FRAMES`] frames (6 MiB); every stack bounds what a peer can add (socket buffers,
/// reassembly, RMP queues: docs/reliability.md), so growth past this is state without a bound.
pub const MEMORY_CAP: isize = 32 << 20;
/// Most bytes the harness holds for B's raw RMP connection.
const MAX_RMP_PENDING: usize = 256 * 1024;

/// One byte edit on a frame, after the Ethernet header.
#[derive(Arbitrary, Debug)]
pub enum Edit {
    Set { at: u16, value: u8 },
    Flip { at: u16, bit: u8 },
    Add { at: u16, delta: u8 },
    Truncate(u16),
    Insert { at: u16, bytes: Vec<u8> },
    Remove { at: u16, len: u8 },
}

fn apply(frame: &mut Vec<u8>, edits: &[Edit]) {
    const HEAD: usize = packet::ETH_LEN;
    let body = |at: u16, len: usize| HEAD + usize::from(at) % (len - HEAD).max(1);
    for e in edits {
        let len = frame.len().max(HEAD + 1);
        if frame.len() < len {
            frame.resize(len, 0);
        }
        match e {
            Edit::Set { at, value } => frame[body(*at, len)] = *value,
            Edit::Flip { at, bit } => frame[body(*at, len)] ^= 1 << (bit % 8),
            Edit::Add { at, delta } => {
                let i = body(*at, len);
                frame[i] = frame[i].wrapping_add(*delta);
            }
            Edit::Truncate(to) => frame.truncate(HEAD + usize::from(*to)),
            Edit::Insert { at, bytes } => {
                let i = body(*at, len);
                frame.splice(i..i, bytes.iter().copied());
            }
            Edit::Remove { at, len: n } => {
                let i = body(*at, len).min(frame.len());
                let end = (i + usize::from(*n)).min(frame.len());
                frame.drain(i..end);
            }
        }
    }
}

/// How the frames of a step are repaired after their edits.
#[derive(Arbitrary, Clone, Copy, Debug)]
pub enum Repair {
    /// Lengths and checksums recomputed (the usual case: the edit gets past them).
    Lengths,
    Checksums,
    /// Sent as edited.
    Nothing,
}

impl From<Repair> for Fix {
    fn from(r: Repair) -> Fix {
        match r {
            Repair::Lengths => Fix::Lengths,
            Repair::Checksums => Fix::Checksums,
            Repair::Nothing => Fix::None,
        }
    }
}

/// A step of virtual time.
#[derive(Arbitrary, Clone, Copy, Debug)]
pub enum Wait {
    Micros(u16),
    Millis(u16),
    Secs(u8),
}

impl Wait {
    fn duration(self) -> Duration {
        match self {
            Wait::Micros(n) => Duration::from_micros(u64::from(n)),
            Wait::Millis(n) => Duration::from_millis(u64::from(n)),
            Wait::Secs(n) => Duration::from_secs(u64::from(n % 31)),
        }
    }
}

/// What A's application does between frames.
#[derive(Arbitrary, Clone, Copy, Debug)]
pub enum AppOp {
    /// `send` on the target connection (with `MSG_OOB` if `oob`).
    SendTarget { len: u16, oob: bool },
    /// A datagram on A's connected UDP socket (to B's closed port).
    SendUdp,
}

/// One step of a frame target's script.
#[derive(Arbitrary, Debug)]
pub enum Step<T> {
    Frame {
        template: T,
        edits: Vec<Edit>,
        repair: Repair,
        /// The template is sent `1 + repeat` times, with index 0, 1, …
        repeat: u8,
        /// Multiplies `repeat` by 16 (a flood).
        flood: bool,
    },
    Wait(Wait),
    App(AppOp),
}

/// One step of the RMP target's script.
#[derive(Arbitrary, Debug)]
pub enum RmpStep {
    Send {
        msg: rmp::RmpMsg,
        edits: Vec<Edit>,
        repeat: u8,
    },
    Wait(Wait),
    /// The root sends a message to its leaves.
    RootSends {
        len: u16,
    },
    /// B closes its raw connection and opens a new one to the root.
    Reconnect,
}

/// A template of some target.
trait Template {
    fn build(&self, ctx: &Ctx, i: u32) -> Vec<u8>;
}

macro_rules! template {
    ($($t:ty),*) => {$(
        impl Template for $t {
            fn build(&self, ctx: &Ctx, i: u32) -> Vec<u8> {
                <$t>::build(self, ctx, i)
            }
        }
    )*};
}
template!(ArpTpl, Ipv4Tpl, TcpTpl, IcmpTpl, IgmpTpl);

/// Runs `data` as a script of `target` and asserts what the crate documentation says.
pub fn run(target: Target, data: &[u8]) {
    if let Err(e) = check(target, data) {
        panic!("{e}");
    }
}

/// What one run measured.
#[derive(Clone, Copy, Debug, Default)]
pub struct Report {
    /// Heap the LAN held once set up, bytes (0 without the counting allocator).
    pub setup: isize,
    /// The most the heap grew above that during the run, bytes.
    pub grew: isize,
    /// Frames (or RMP messages) the script sent.
    pub sent: usize,
    /// Virtual time the run took, fuzz steps and liveness check together.
    pub elapsed: Duration,
}

/// Runs `data` as a script of `target`: `Err` names the broken property (liveness or
/// memory); a panic in a stack propagates.
pub fn check(target: Target, data: &[u8]) -> Result<Report, String> {
    let mut u = Unstructured::new(data);
    let rmp_protocol = match target {
        Target::Rmp => Some(if u.arbitrary::<bool>().unwrap_or(false) {
            ws2_stack::winsock::IPPROTO_RMP_RELAY
        } else {
            ws2_stack::winsock::IPPROTO_RMP
        }),
        _ => None,
    };
    let mut lan = Lan::new(SEED, rmp_protocol);
    let counted = alloc::installed();
    let setup = alloc::live();
    alloc::reset_peak();
    let sent = match target {
        Target::Arp => frames::<ArpTpl>(&mut lan, &mut u),
        Target::Ipv4 => frames::<Ipv4Tpl>(&mut lan, &mut u),
        Target::Tcp => frames::<TcpTpl>(&mut lan, &mut u),
        Target::Icmp => frames::<IcmpTpl>(&mut lan, &mut u),
        Target::Igmp => frames::<IgmpTpl>(&mut lan, &mut u),
        Target::Rmp => rmp_script(&mut lan, &mut u),
    };
    if let Err(e) = lan.reference_is_alive(LIVENESS) {
        return Err(format!(
            "liveness: {e} after the fuzz frames ({} of virtual time)",
            fmt(lan.sim.elapsed())
        ));
    }
    let report = Report {
        setup: if counted { setup } else { 0 },
        grew: if counted { alloc::peak() - setup } else { 0 },
        sent,
        elapsed: lan.sim.elapsed(),
    };
    if report.grew > MEMORY_CAP {
        return Err(format!(
            "memory: the LAN grew by {} KiB over its {} KiB once set up (cap {} KiB)",
            report.grew >> 10,
            setup >> 10,
            MEMORY_CAP >> 10
        ));
    }
    Ok(report)
}

fn fmt(d: Duration) -> String {
    format!("{:.3} s", d.as_secs_f64())
}

/// The script `data` stands for, one step a line, as `target` reads it.
pub fn describe(target: Target, data: &[u8]) -> String {
    fn steps<S: for<'a> Arbitrary<'a> + std::fmt::Debug>(u: &mut Unstructured<'_>) -> String {
        let mut out = String::new();
        for _ in 0..MAX_STEPS {
            if u.is_empty() {
                break;
            }
            let Ok(step) = S::arbitrary(u) else {
                break;
            };
            out += &format!("{step:?}\n");
        }
        out
    }
    let mut u = Unstructured::new(data);
    match target {
        Target::Arp => steps::<Step<ArpTpl>>(&mut u),
        Target::Ipv4 => steps::<Step<Ipv4Tpl>>(&mut u),
        Target::Tcp => steps::<Step<TcpTpl>>(&mut u),
        Target::Icmp => steps::<Step<IcmpTpl>>(&mut u),
        Target::Igmp => steps::<Step<IgmpTpl>>(&mut u),
        Target::Rmp => {
            let relay = u.arbitrary::<bool>().unwrap_or(false);
            format!("non-rooted plane: {relay}\n") + &steps::<RmpStep>(&mut u)
        }
    }
}

/// Runs the steps of a frame target.
fn frames<T: Template + for<'a> Arbitrary<'a>>(lan: &mut Lan, u: &mut Unstructured<'_>) -> usize {
    let (mut sent, mut waited) = (0usize, Duration::ZERO);
    for _ in 0..MAX_STEPS {
        if u.is_empty() {
            break;
        }
        let Ok(step) = Step::<T>::arbitrary(u) else {
            break;
        };
        match step {
            Step::Frame {
                template,
                edits,
                repair,
                repeat,
                flood,
            } => {
                let times = (1 + usize::from(repeat)) * if flood { 16 } else { 1 };
                for i in 0..times.min(MAX_FRAMES - sent) {
                    let ctx = {
                        let s = lan.shared();
                        Ctx {
                            seq: s.seq.unwrap_or_default(),
                            sent: s.sent.iter().cloned().collect(),
                        }
                    };
                    let mut f = template.build(&ctx, i as u32);
                    apply(&mut f, &edits);
                    packet::fix(&mut f, repair.into());
                    lan.inject(f);
                    sent += 1;
                }
                lan.apps();
            }
            Step::Wait(w) => {
                let d = w.duration().min(MAX_WAIT.saturating_sub(waited));
                waited += d;
                lan.wait(d);
            }
            Step::App(op) => {
                match op {
                    AppOp::SendTarget { len, oob } => {
                        lan.a_sends_target(usize::from(len) % 4096, oob)
                    }
                    AppOp::SendUdp => {
                        let _ = lan.a.send(lan.a_udp, b"ws2-fuzz udp", 0);
                    }
                }
                lan.wait(Duration::ZERO);
            }
        }
        if sent >= MAX_FRAMES {
            break;
        }
    }
    sent
}

/// Runs the steps of the RMP target.
fn rmp_script(lan: &mut Lan, u: &mut Unstructured<'_>) -> usize {
    let (mut sent, mut waited) = (0usize, Duration::ZERO);
    for _ in 0..MAX_STEPS {
        if u.is_empty() {
            break;
        }
        let Ok(step) = RmpStep::arbitrary(u) else {
            break;
        };
        match step {
            RmpStep::Send { msg, edits, repeat } => {
                let mut bytes = msg.encode();
                // Edits address the message from its first byte: prefix a fake Ethernet
                // header so `apply` can be shared, and take it off again.
                let mut framed = vec![0u8; packet::ETH_LEN];
                framed.append(&mut bytes);
                apply(&mut framed, &edits);
                let bytes = &framed[packet::ETH_LEN..];
                let r = lan.rmp.as_mut().expect("the rmp target has a session");
                for _ in 0..=repeat {
                    if r.b_out.len() + bytes.len() > MAX_RMP_PENDING || sent >= MAX_FRAMES {
                        break;
                    }
                    r.b_out.extend_from_slice(bytes);
                    sent += 1;
                }
                lan.wait(Duration::ZERO);
            }
            RmpStep::Wait(w) => {
                let d = w.duration().min(MAX_WAIT.saturating_sub(waited));
                waited += d;
                lan.wait(d);
            }
            RmpStep::RootSends { len } => {
                let r = lan.rmp.as_ref().expect("the rmp target has a session").root;
                let _ = lan.a.send(r, &vec![0x42; usize::from(len) % 8192], 0);
                lan.wait(Duration::ZERO);
            }
            RmpStep::Reconnect => {
                let r = lan.rmp.as_mut().expect("the rmp target has a session");
                let _ = lan.b.closesocket(r.b_raw);
                r.b_out.clear();
                let s = ws2_tests::new_socket(&lan.b, ws2_stack::winsock::SOCK_STREAM);
                ws2_tests::set_nonblocking(&lan.b, s, true);
                let _ = ws2_tests::connect(&lan.b, s, ws2_tests::at(lan::A, lan::RMP_PORT));
                r.b_raw = s;
                lan.wait(Duration::from_millis(10));
            }
        }
    }
    sent
}
