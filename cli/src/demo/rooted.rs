//! The ATM-style rooted multipoint session of `ws2 demo`: a root and four leaves, each on its
//! own stack on one in-process `VirtualSwitch`, over RMP (docs/rmp.md, CHECKLIST §1.10.3 and
//! Part 2 group Q), with a table of what each leaf received.
//!
//! - 10.0.3.1 is the root: a c_root/d_root socket (`IPPROTO_RMP`, rooted data) bound and
//!   listening on port 5800. It invites two leaves with `WSAJoinLeaf` (root-initiated, a new
//!   c_leaf socket for each), admits the others with `WSAAccept` (the condition function sees
//!   their caller data and answers with callee data), sends a 200-byte sequence-numbered
//!   message to the session every 10 ms, hears every leaf with `recvfrom` (which names it),
//!   and at the end `closesocket`s the c_root: the session ends for every leaf (`recv` 0).
//! - 10.0.3.2 and 10.0.3.3 listen (c_leaf, `listen`) and are invited; 10.0.3.3 leaves early
//!   (`closesocket` at 60%).
//! - 10.0.3.4 asks the root for admittance itself (leaf-initiated `WSAJoinLeaf`) at once;
//!   10.0.3.5 does the same but late, at 30%.
//! - Every leaf (`JL_BOTH`) sends the root a 100-byte message every 100 ms; on the rooted data
//!   plane no other leaf hears it.
//!
//! The outcome checked is deterministic (RMP runs over TCP, nothing is lost): every leaf hears
//! every root message from its first to its last with no gap and in order; those in from the
//! start begin at 0, the late joiner later; the leaver stops early; the others hear the last
//! one and then the end of the session; the root hears every message every leaf sent. Only
//! the counts and delays vary a little with scheduling.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::atomic::AtomicBool;
use std::sync::{Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use ws2_stack::winsock::*;
use ws2_stack::{Stack, StackConfig};
use ws2_tap::VirtualSwitch;

use super::super::mcast::{wall_ns, winsock};
use super::super::rmp::{
    admit, bind_listen, join, leaf_socket, receive, root_socket, send_stamped, sleep_until, Ending,
    Heard, Joined, Plane, Sent,
};
use super::Row;

const ROOT: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(10, 0, 3, 1), 5800);
/// The port invited leaves listen on.
const LEAF_PORT: u16 = 6000;
/// The root's message, and its period.
const MESSAGE: usize = 200;
const PERIOD: Duration = Duration::from_millis(10);
/// A leaf's message to the root, and its period.
const LEAF_MESSAGE: usize = 100;
const LEAF_PERIOD: Duration = Duration::from_millis(100);
/// How long the root waits for the leaves that join at once before it starts anyway.
const JOIN_WAIT: Duration = Duration::from_secs(5);
/// How long the root listens after its last message before it ends the session.
const GRACE: Duration = Duration::from_millis(300);

/// One leaf of the session.
struct Leaf {
    addr: Ipv4Addr,
    /// Invited by the root (listens), or asks to join itself.
    invited: bool,
    /// Fraction of the run at which it asks to join (leaf-initiated only).
    joins_at: f64,
    /// Fraction of the run at which it closes its socket (`None`: stays to the end).
    leaves_at: Option<f64>,
    /// Its user data in the join.
    data: &'static str,
}

const LEAVES: [Leaf; 4] = [
    Leaf {
        addr: Ipv4Addr::new(10, 0, 3, 2),
        invited: true,
        joins_at: 0.0,
        leaves_at: None,
        data: "leaf A",
    },
    Leaf {
        addr: Ipv4Addr::new(10, 0, 3, 3),
        invited: true,
        joins_at: 0.0,
        leaves_at: Some(0.6),
        data: "leaf B",
    },
    Leaf {
        addr: Ipv4Addr::new(10, 0, 3, 4),
        invited: false,
        joins_at: 0.0,
        leaves_at: None,
        data: "leaf C",
    },
    Leaf {
        addr: Ipv4Addr::new(10, 0, 3, 5),
        invited: false,
        joins_at: 0.3,
        leaves_at: None,
        data: "leaf D",
    },
];

impl Leaf {
    fn role(&self) -> String {
        let mut r = if self.invited {
            "invited by the root".to_string()
        } else {
            "asks to join".to_string()
        };
        if self.joins_at > 0.0 {
            r += &format!(" at {:.0}%", self.joins_at * 100.0);
        }
        if let Some(l) = self.leaves_at {
            r += &format!(", leaves at {:.0}%", l * 100.0);
        }
        r
    }
}

/// What a leaf reports: the root's data in its join, what it heard, what it sent.
struct LeafReport {
    root_data: Vec<u8>,
    heard: Heard,
    sent: Sent,
}

/// What the root reports: the joins it saw (leaf address → the leaf's data), what it sent and
/// what it heard.
struct RootReport {
    joins: BTreeMap<Ipv4Addr, Vec<u8>>,
    sent: Sent,
    heard: Heard,
}

/// Runs the session for `secs` seconds; the demo's summary row and the table.
pub(crate) fn run(seed: u64, secs: f64) -> (Row, Vec<String>) {
    let row = |detail: String, ok| Row {
        host: "5 hosts".into(),
        test: "rooted",
        detail,
        ok,
    };
    match session(seed, secs) {
        Ok((detail, ok, table)) => (row(detail, ok), table),
        Err(e) => (row(format!("failed: {e}"), false), Vec::new()),
    }
}

fn stack_on(switch: &VirtualSwitch, addr: Ipv4Addr) -> Result<Stack, String> {
    let cidr = format!("{addr}/24").parse().map_err(|e| format!("{e}"))?;
    Stack::from_box(StackConfig::new(cidr), Box::new(switch.port())).map_err(|e| e.to_string())
}

fn session(seed: u64, secs: f64) -> Result<(String, bool, Vec<String>), String> {
    let switch = VirtualSwitch::new(seed);
    let root_stack = stack_on(&switch, *ROOT.ip())?;
    let leaf_stacks = LEAVES
        .iter()
        .map(|l| stack_on(&switch, l.addr))
        .collect::<Result<Vec<_>, _>>()?;
    let run_for = Duration::from_secs_f64(secs);
    // Set by the root when the leaves that join at once are in; the schedule counts from it.
    let start = OnceLock::new();

    // Listening sockets first, so every join finds its listener.
    let root_ws = winsock(&root_stack)?;
    let c_root = root_socket(&root_ws, Plane::Rooted)?;
    bind_listen(&root_ws, c_root, ROOT, 8)?;
    let mut leaf_ws = Vec::new();
    for (l, stack) in LEAVES.iter().zip(&leaf_stacks) {
        let ws = winsock(stack)?;
        let s = leaf_socket(&ws, Plane::Rooted)?;
        if l.invited {
            bind_listen(&ws, s, SocketAddrV4::new(l.addr, LEAF_PORT), 1)?;
        }
        leaf_ws.push((ws, s));
    }
    // One datagram from every leaf to the root first, so the root usually knows every leaf's
    // MAC address: smoltcp sends at most one ARP request a second per interface, and an
    // invitation to a host it has not resolved waits that second for its SYN. The schedule
    // does not depend on it: it starts when the root has its first leaves.
    for (ws, _) in &leaf_ws {
        hello(ws)?;
    }
    thread::sleep(Duration::from_millis(20));

    let (root, leaves) = thread::scope(|scope| {
        let leaf_jobs: Vec<_> = LEAVES
            .iter()
            .zip(&leaf_ws)
            .map(|(l, (ws, s))| {
                let start = &start;
                scope.spawn(move || leaf(l, ws, *s, start, run_for))
            })
            .collect();
        let root = root(&root_ws, c_root, &start, run_for);
        let leaves: Vec<_> = leaf_jobs
            .into_iter()
            .map(|j| {
                j.join()
                    .unwrap_or_else(|_| Err("a leaf thread panicked".into()))
            })
            .collect();
        (root, leaves)
    });
    for (ws, _) in &leaf_ws {
        let _ = ws.WSACleanup();
    }
    let _ = root_ws.WSACleanup();
    let root = root?;
    let leaves = leaves.into_iter().collect::<Result<Vec<_>, _>>()?;
    Ok(table(secs, &root, &leaves))
}

/// A UDP datagram to the root's discard port.
fn hello(ws: &Winsock) -> Result<(), String> {
    let s = ws
        .socket(AF_INET, SOCK_DGRAM, IPPROTO_UDP)
        .map_err(|e| format!("socket: {e}"))?;
    let to = SOCKADDR_IN::new(SocketAddrV4::new(*ROOT.ip(), 9));
    let sent = ws.sendto(s, b"hello", 0, Some(&to), SOCKADDR_IN_LEN);
    let _ = ws.closesocket(s);
    sent.map(drop)
        .map_err(|e| format!("sendto {}: {e}", *ROOT.ip()))
}

/// Waits for the root to set the start of the schedule.
fn started(start: &OnceLock<Instant>) -> Instant {
    loop {
        if let Some(t) = start.get() {
            return *t;
        }
        thread::sleep(Duration::from_millis(1));
    }
}

/// The root: invites the listening leaves, admits the others, and once every leaf that joins
/// at once is in sets `start` and sends for `run_for`, hears the leaves, then ends the session.
fn root(
    ws: &Winsock,
    c_root: SOCKET,
    start: &OnceLock<Instant>,
    run_for: Duration,
) -> Result<RootReport, String> {
    let joins = Mutex::new(BTreeMap::new());
    let stop = AtomicBool::new(false);
    let (sent, heard) = thread::scope(|scope| {
        let acceptor = scope.spawn(|| {
            // Ends when the c_root is closed.
            while let Ok(j) = admit(ws, c_root, b"root: welcome") {
                joins.lock().expect("joins").insert(*j.peer.ip(), j.data);
            }
        });
        // Until the root's receiver is told to stop.
        let receiver =
            scope.spawn(|| receive(ws, c_root, Instant::now() + run_for * 10, &stop, wall_ns));
        let mut invited = Ok(());
        for l in LEAVES.iter().filter(|l| l.invited) {
            let to = SocketAddrV4::new(l.addr, LEAF_PORT);
            match join(ws, c_root, to, b"root: you are invited", JL_BOTH) {
                Ok(j) => {
                    joins.lock().expect("joins").insert(l.addr, j.data);
                }
                Err(e) => invited = Err(format!("WSAJoinLeaf(invite {to}): {e}")),
            }
        }
        let at_once = LEAVES.iter().filter(|l| l.joins_at == 0.0).count();
        let waiting = Instant::now();
        while joins.lock().expect("joins").len() < at_once && waiting.elapsed() < JOIN_WAIT {
            thread::sleep(Duration::from_millis(1));
        }
        let begin = *start.get_or_init(Instant::now);
        let end = begin + run_for;
        let rate = (MESSAGE as f64 / PERIOD.as_secs_f64()) as u64;
        let sent = send_stamped(ws, c_root, MESSAGE, rate, end, &stop);
        sleep_until(end + GRACE);
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let heard = receiver
            .join()
            .unwrap_or_else(|_| Err("the root's receiver panicked".into()));
        // The end of the session for every leaf (and of the acceptor's WSAAccept).
        let closed = ws.closesocket(c_root);
        let _ = acceptor.join();
        invited?;
        closed.map_err(|e| format!("closesocket(c_root): {e}"))?;
        Ok::<_, String>((sent, heard?))
    })?;
    Ok(RootReport {
        joins: joins.into_inner().expect("joins"),
        sent,
        heard,
    })
}

/// A leaf: is invited (admits with `WSAAccept`) or asks (`WSAJoinLeaf`), sends to the root and
/// hears it until it leaves or the session ends.
fn leaf(
    l: &Leaf,
    ws: &Winsock,
    s: SOCKET,
    start: &OnceLock<Instant>,
    run_for: Duration,
) -> Result<LeafReport, String> {
    let at = |f: f64| started(start) + run_for.mul_f64(f);
    let joined: Joined = if l.invited {
        let j =
            admit(ws, s, l.data.as_bytes()).map_err(|e| format!("{}: WSAAccept: {e}", l.addr))?;
        let _ = ws.closesocket(s);
        j
    } else {
        if l.joins_at > 0.0 {
            sleep_until(at(l.joins_at));
        }
        join(ws, s, ROOT, l.data.as_bytes(), JL_BOTH)
            .map_err(|e| format!("{}: WSAJoinLeaf({ROOT}): {e}", l.addr))?
    };
    let c = joined.socket;
    // Stays: hears the end of the session well before this; leaves: closes then.
    let end = at(1.0);
    let until = l.leaves_at.map_or(end + GRACE * 4, at);
    let stop = AtomicBool::new(false);
    let rate = (LEAF_MESSAGE as f64 / LEAF_PERIOD.as_secs_f64()) as u64;
    let (sent, heard) = thread::scope(|scope| {
        let sender = scope.spawn(|| send_stamped(ws, c, LEAF_MESSAGE, rate, until.min(end), &stop));
        let heard = receive(ws, c, until, &stop, wall_ns);
        let sent = sender.join().unwrap_or_default();
        (sent, heard)
    });
    let _ = ws.closesocket(c);
    Ok(LeafReport {
        root_data: joined.data,
        heard: heard?,
        sent,
    })
}

fn table(secs: f64, root: &RootReport, leaves: &[LeafReport]) -> (String, bool, Vec<String>) {
    let total = root.sent.messages;
    let mut out = vec![
        String::new(),
        format!(
            "rooted: root {} (RMP, rooted data), 4 leaves on one switch; the root sends \
             {MESSAGE} B every {} ms for {secs:.1} s ({total} messages), each leaf {LEAF_MESSAGE} \
             B every {} ms to the root",
            ROOT,
            PERIOD.as_millis(),
            LEAF_PERIOD.as_millis()
        ),
        format!(
            "{:<9} {:<36} {:<36} {:>9} {:>7} {:>4} {:>5} {:<14} {:>9} {:<3}",
            "leaf",
            "role",
            "data: leaf / root",
            "from root",
            "seqs",
            "lost",
            "order",
            "end",
            "root got",
            "ok"
        ),
        "-".repeat(145),
    ];
    let mut all_ok = true;
    let mut notes = Vec::new();
    let mut received = 0;
    for (l, r) in LEAVES.iter().zip(leaves) {
        let t = r.heard.senders.values().next().cloned().unwrap_or_default();
        let from_root = r.heard.senders.len() <= 1;
        let in_order = r.heard.in_order();
        let mut ok = from_root && t.datagrams > 0 && in_order;
        if l.joins_at > 0.0 {
            ok &= t.first_seq > 0;
            notes.push(format!("{} joined late at seq {}", l.addr, t.first_seq));
        } else {
            ok &= t.first_seq == 0;
        }
        match l.leaves_at {
            Some(_) => {
                ok &= r.heard.ending == Ending::Deadline && t.max_seq + 2 < total;
                notes.push(format!("{} left after seq {}", l.addr, t.max_seq));
            }
            None => ok &= r.heard.ending == Ending::SessionEnded && t.max_seq + 1 == total,
        }
        // The root heard every message this leaf sent, in order, and nobody else did.
        let at_root = root
            .heard
            .senders
            .iter()
            .filter(|(a, _)| *a.ip() == l.addr)
            .fold((0, true), |(n, o), (_, t)| {
                (n + t.datagrams, o && t.lost() == 0 && t.reordered == 0)
            });
        ok &= at_root.0 == r.sent.messages && at_root.1 && r.sent.messages > 0;
        let leaf_data = root.joins.get(&l.addr).map(|d| String::from_utf8_lossy(d));
        ok &= leaf_data.as_deref() == Some(l.data);
        all_ok &= ok;
        received += t.datagrams;
        let end = match &r.heard.ending {
            Ending::Deadline => "left".to_string(),
            Ending::SessionEnded => "session ended".to_string(),
            Ending::Failed(e) => e.clone(),
        };
        out.push(format!(
            "{:<9} {:<36} {:<36} {:>9} {:>7} {:>4} {:>5} {:<14} {:>9} {:<3}",
            l.addr.to_string(),
            l.role(),
            format!(
                "{:?} / {:?}",
                leaf_data.as_deref().unwrap_or("-"),
                String::from_utf8_lossy(&r.root_data)
            ),
            t.datagrams,
            if t.datagrams > 0 {
                format!("{}-{}", t.first_seq, t.max_seq)
            } else {
                "-".into()
            },
            t.lost(),
            if in_order { "yes" } else { "NO" },
            end,
            format!("{}/{}", at_root.0, r.sent.messages),
            if ok { "yes" } else { "NO" }
        ));
    }
    out.push(
        "(data: the leaf's caller or callee data as the root's condition function or \
         WSAJoinLeaf saw it / the root's as the leaf saw it; root got: the leaf's messages the \
         root's recvfrom named it for / messages it sent)"
            .into(),
    );
    (
        format!(
            "{received} root messages delivered to 4 leaves in order; {}",
            notes.join(", ")
        ),
        all_ok,
        out,
    )
}
