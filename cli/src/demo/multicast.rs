//! The multicast conference of `ws2 demo`: four hosts on one in-process `VirtualSwitch`, each
//! with a c_leaf/d_leaf UDP socket joined to one group with `WSAJoinLeaf` (CHECKLIST §1.10), and
//! a table of what every member received from every sender.
//!
//! - 10.0.2.1 and 10.0.2.2 speak: `JL_BOTH`, each a 172-byte RTP-sized datagram every 20 ms
//!   (G.711) under the `G711` flowspec of `WSAGetQOSByName` — the first hands it to
//!   `WSAJoinLeaf` as `lpSQOS`, the second sets it after joining with `WSAIoctl(SIO_SET_QOS)`.
//!   Both turn `SIO_MULTIPOINT_LOOPBACK` off, so neither hears itself.
//! - 10.0.2.3 listens (`JL_RECEIVER_ONLY`) from the start and leaves half-way with
//!   `closesocket` (the stack's last member: an IGMP leave).
//! - 10.0.2.4 listens too but joins late, at 30% of the run.
//!
//! Every datagram carries a sequence number and a timestamp (both ends are in this process, so
//! they share one clock): the table shows datagrams, the sequence range each member saw, losses
//! inside that range, and p50/p99 one-way delay. The outcome checked is deterministic — every
//! member hears every other speaker with no gap while it is a member, the late joiner missed
//! the start, the early leaver missed the end, and the leaver's stack has left the group — only
//! the counts and delays vary a little with scheduling.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::thread;
use std::time::{Duration, Instant};

use ws2_stack::winsock::*;
use ws2_stack::{Stack, StackConfig};
use ws2_tap::VirtualSwitch;

use super::super::mcast::{
    ioctl_int, jl_name, join_leaf, leaf_socket, read_stamp, setsockopt_int, stamp, winsock, Track,
};
use super::Row;

const GROUP: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(239, 255, 42, 1), 6200);
/// 160 bytes of 20 ms G.711 + the 12-byte RTP header.
const PAYLOAD: usize = 172;
const PERIOD: Duration = Duration::from_millis(20);
/// How long members keep listening after the senders stop.
const GRACE: Duration = Duration::from_millis(300);

/// One host of the conference.
struct Member {
    addr: Ipv4Addr,
    /// Sends (`JL_BOTH`) or only listens (`JL_RECEIVER_ONLY`).
    speaks: bool,
    /// Fraction of the run at which it joins (0 = before the senders start).
    joins_at: f64,
    /// Fraction of the run at which it closes its socket (`None`: stays to the end).
    leaves_at: Option<f64>,
    /// How a speaker gets its flowspec: `WSAJoinLeaf`'s lpSQOS, or SIO_SET_QOS after.
    qos_on_join: bool,
}

const MEMBERS: [Member; 4] = [
    Member {
        addr: Ipv4Addr::new(10, 0, 2, 1),
        speaks: true,
        joins_at: 0.0,
        leaves_at: None,
        qos_on_join: true,
    },
    Member {
        addr: Ipv4Addr::new(10, 0, 2, 2),
        speaks: true,
        joins_at: 0.0,
        leaves_at: None,
        qos_on_join: false,
    },
    Member {
        addr: Ipv4Addr::new(10, 0, 2, 3),
        speaks: false,
        joins_at: 0.0,
        leaves_at: Some(0.5),
        qos_on_join: false,
    },
    Member {
        addr: Ipv4Addr::new(10, 0, 2, 4),
        speaks: false,
        joins_at: 0.3,
        leaves_at: None,
        qos_on_join: false,
    },
];

impl Member {
    fn role(&self) -> String {
        let mut r = if self.speaks {
            format!(
                "speaks, {}, G711 {}",
                jl_name(JL_BOTH),
                if self.qos_on_join {
                    "lpSQOS"
                } else {
                    "SIO_SET_QOS"
                }
            )
        } else {
            format!("listens, {}", jl_name(JL_RECEIVER_ONLY))
        };
        if self.joins_at > 0.0 {
            r += &format!(", joins at {:.0}%", self.joins_at * 100.0);
        }
        if let Some(l) = self.leaves_at {
            r += &format!(", leaves at {:.0}%", l * 100.0);
        }
        r
    }
}

/// What one member's receiver saw, by sender address.
type Heard = BTreeMap<Ipv4Addr, Track>;

/// What one member reports: what it heard, and whether its stack listed the group just before
/// and just after its `closesocket`.
struct Report {
    heard: Heard,
    member_before_close: bool,
    member_after_close: bool,
}

/// Runs the conference for `secs` seconds; returns the demo's summary row and the table.
pub(crate) fn run(seed: u64, secs: f64) -> (Row, Vec<String>) {
    let row = |detail: String, ok| Row {
        host: "4 hosts".into(),
        test: "multicast",
        detail,
        ok,
    };
    match conference(seed, secs) {
        Ok((detail, ok, table)) => (row(detail, ok), table),
        Err(e) => (row(format!("failed: {e}"), false), Vec::new()),
    }
}

fn conference(seed: u64, secs: f64) -> Result<(String, bool, Vec<String>), String> {
    let switch = VirtualSwitch::new(seed);
    let stacks = MEMBERS
        .iter()
        .map(|m| {
            let cidr = format!("{}/24", m.addr)
                .parse()
                .map_err(|e| format!("{e}"))?;
            Stack::from_box(StackConfig::new(cidr), Box::new(switch.port()))
                .map_err(|e| e.to_string())
        })
        .collect::<Result<Vec<_>, String>>()?;
    let run_for = Duration::from_secs_f64(secs);
    let epoch = Instant::now();
    // The senders start a little after the members that join at once have joined.
    let start = epoch + Duration::from_millis(100);

    let results = thread::scope(|scope| {
        let jobs: Vec<_> = MEMBERS
            .iter()
            .zip(&stacks)
            .map(|(m, stack)| scope.spawn(move || member(m, stack, epoch, start, run_for)))
            .collect();
        jobs.into_iter()
            .map(|j| {
                j.join()
                    .unwrap_or_else(|_| Err("a member thread panicked".into()))
            })
            .collect::<Vec<_>>()
    });
    let mut reports = Vec::new();
    for r in results {
        reports.push(r?);
    }
    let sent_total = (secs / PERIOD.as_secs_f64()).ceil() as u64;

    let mut out = vec![
        String::new(),
        format!(
            "multicast: group {GROUP}, {} hosts on one switch, speakers send {PAYLOAD} B every \
             {} ms under G711 for {secs:.1} s (about {sent_total} datagrams each)",
            MEMBERS.len(),
            PERIOD.as_millis()
        ),
        format!(
            "{:<9} {:<44} {:<9} {:>9} {:>9} {:>5} {:>7} {:>7} {:<3}",
            "member", "role", "from", "datagrams", "seqs", "lost", "p50 ms", "p99 ms", "ok"
        ),
        "-".repeat(112),
    ];
    let mut all_ok = true;
    let (mut pairs, mut lost_total) = (0, 0);
    let mut notes = Vec::new();
    for (m, r) in MEMBERS.iter().zip(&reports) {
        let h = &r.heard;
        let mut seqs = Vec::new();
        let speakers = MEMBERS.iter().filter(|s| s.speaks && s.addr != m.addr);
        for s in speakers {
            let t = h.get(&s.addr).cloned().unwrap_or_default();
            let (p50, p99) = t.delay_percentiles();
            let mut ok = t.datagrams > 0 && t.lost() == 0 && t.reordered == 0;
            if m.joins_at > 0.0 {
                // The late joiner missed the start.
                ok &= t.first_seq > 0;
                seqs.push(t.first_seq);
            }
            if m.leaves_at.is_some() {
                // The leaver missed the end.
                ok &= t.max_seq + 2 < sent_total;
                seqs.push(t.max_seq);
            }
            all_ok &= ok;
            pairs += 1;
            lost_total += t.lost();
            out.push(format!(
                "{:<9} {:<44} {:<9} {:>9} {:>9} {:>5} {:>7.2} {:>7.2} {:<3}",
                m.addr.to_string(),
                m.role(),
                s.addr.to_string(),
                t.datagrams,
                if t.datagrams > 0 {
                    format!("{}-{}", t.first_seq, t.max_seq)
                } else {
                    "-".into()
                },
                t.lost(),
                p50,
                p99,
                if ok { "yes" } else { "NO" }
            ));
        }
        let heard_self = h.get(&m.addr).map_or(0, |t| t.datagrams);
        if heard_self > 0 {
            all_ok = false;
            out.push(format!(
                "{}: heard {heard_self} of its own datagrams with SIO_MULTIPOINT_LOOPBACK off",
                m.addr
            ));
        }
        let seqs: Vec<String> = seqs.iter().map(u64::to_string).collect();
        if m.joins_at > 0.0 {
            notes.push(format!("{} joined late at seq {}", m.addr, seqs.join("/")));
        }
        if m.leaves_at.is_some() {
            notes.push(format!("{} left after seq {}", m.addr, seqs.join("/")));
        }
    }
    // Each stack has one member socket: its interface is in the group until the close.
    let membership_ok = reports
        .iter()
        .all(|r| r.member_before_close && !r.member_after_close);
    all_ok &= membership_ok;
    let igmp: Vec<String> = stacks
        .iter()
        .zip(&MEMBERS)
        .map(|(s, m)| format!("{} {}", m.addr, s.stats().igmp_sent))
        .collect();
    out.push(format!(
        "IGMP messages sent: {}; each interface in the group until its closesocket, out after: {}",
        igmp.join(", "),
        if membership_ok { "yes" } else { "NO" },
    ));
    Ok((
        format!(
            "{pairs} member/speaker pairs, {lost_total} lost; {}",
            notes.join(", ")
        ),
        all_ok,
        out,
    ))
}

/// One host: joins (now or late), speaks if it is a speaker, listens until it leaves or the
/// run ends, then closes its socket. What it heard, by sender.
fn member(
    m: &Member,
    stack: &Stack,
    epoch: Instant,
    start: Instant,
    run_for: Duration,
) -> Result<Report, String> {
    let ws = winsock(stack)?;
    let at = |f: f64| start + run_for.mul_f64(f);
    if m.joins_at > 0.0 {
        sleep_until(at(m.joins_at));
    }
    let s = leaf_socket(&ws)?;
    let result = (|| {
        let mut qos = None;
        if m.speaks {
            ioctl_int(
                &ws,
                s,
                SIO_MULTIPOINT_LOOPBACK,
                "SIO_MULTIPOINT_LOOPBACK",
                0,
            )?;
            let mut q = QOS::default();
            let mut name = WSABUF::new(b"G711".to_vec());
            ws.WSAGetQOSByName(s, Some(&mut name), Some(&mut q))
                .map_err(|e| format!("WSAGetQOSByName(G711): {e}"))?;
            qos = Some(q);
        }
        let flags = if m.speaks { JL_BOTH } else { JL_RECEIVER_ONLY };
        let on_join = qos.as_ref().filter(|_| m.qos_on_join);
        join_leaf(&ws, s, GROUP, flags, on_join)?;
        if let (Some(q), false) = (&qos, m.qos_on_join) {
            let mut returned = 0u32;
            ws.WSAIoctl(
                s,
                SIO_SET_QOS,
                &q.to_bytes(),
                &mut [],
                Some(&mut returned),
                None,
                None,
            )
            .map_err(|e| format!("SIO_SET_QOS: {e}"))?;
        }
        setsockopt_int(&ws, s, SOL_SOCKET, SO_RCVTIMEO, "SO_RCVTIMEO", 50)?;
        let until = m.leaves_at.map_or(start + run_for + GRACE, at);
        thread::scope(|scope| {
            let speaker = m
                .speaks
                .then(|| scope.spawn(|| speak(&ws, s, epoch, start, run_for)));
            let heard = listen(&ws, s, epoch, until);
            if let Some(job) = speaker {
                job.join()
                    .unwrap_or_else(|_| Err("a speaker panicked".into()))?;
            }
            heard
        })
    })();
    // Leaving: the early leaver's close is the point of its row; the others close at the end.
    let member_before_close = stack.multicast_groups().contains(GROUP.ip());
    let closed = ws.closesocket(s).map_err(|e| format!("closesocket: {e}"));
    let member_after_close = stack.multicast_groups().contains(GROUP.ip());
    let _ = ws.WSACleanup();
    let heard = result?;
    closed?;
    Ok(Report {
        heard,
        member_before_close,
        member_after_close,
    })
}

/// One stamped datagram every `PERIOD` from `start` for `run_for`.
fn speak(
    ws: &Winsock,
    s: SOCKET,
    epoch: Instant,
    start: Instant,
    run_for: Duration,
) -> Result<(), String> {
    let to = SOCKADDR_IN::new(GROUP);
    let mut buf = [0x5au8; PAYLOAD];
    let mut seq = 0u64;
    loop {
        let due = start + PERIOD * seq as u32;
        if due >= start + run_for {
            return Ok(());
        }
        sleep_until(due);
        stamp(&mut buf, seq, epoch.elapsed().as_nanos() as u64);
        ws.sendto(s, &buf, 0, Some(&to), SOCKADDR_IN_LEN)
            .map_err(|e| format!("sendto {GROUP}: {e}"))?;
        seq += 1;
    }
}

/// Receives until `until`, by sender.
fn listen(ws: &Winsock, s: SOCKET, epoch: Instant, until: Instant) -> Result<Heard, String> {
    let mut heard = Heard::new();
    let mut buf = [0u8; 2048];
    while Instant::now() < until {
        let mut from = SOCKADDR_IN::default();
        let mut fromlen = SOCKADDR_IN_LEN;
        match ws.recvfrom(s, &mut buf, 0, Some(&mut from), Some(&mut fromlen)) {
            Ok(n) => {
                let now = epoch.elapsed().as_nanos() as f64;
                let n = n as usize;
                if let Some((seq, sent)) = read_stamp(&buf[..n]) {
                    let t = heard.entry(*from.to_socket_addr().ip()).or_default();
                    t.add(seq, n, (now - sent as f64) / 1e6);
                }
            }
            Err(WsaError::WSAETIMEDOUT) => {}
            Err(e) => return Err(format!("recvfrom: {e}")),
        }
    }
    Ok(heard)
}

fn sleep_until(t: Instant) {
    if let Some(wait) = t.checked_duration_since(Instant::now()) {
        thread::sleep(wait);
    }
}
