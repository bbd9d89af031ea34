//! `ws2 root` and `ws2 leaf`: a rooted multipoint session over RMP (docs/rmp.md), the Winsock
//! way (CHECKLIST §1.10.3–§1.10.4, Part 2 group Q).
//!
//! - `ws2 root` makes a c_root (`WSASocket(AF_INET, SOCK_RDM, IPPROTO_RMP, …,
//!   WSA_FLAG_MULTIPOINT_C_ROOT | WSA_FLAG_MULTIPOINT_D_ROOT)`, or with `--plane relay`
//!   `IPPROTO_RMP_RELAY` and `D_LEAF`: the non-rooted data plane). With `--listen PORT` it
//!   `bind`s and `listen`s and admits every leaf that asks with `WSAAccept` (the condition
//!   function prints the caller data and answers with `--caller-data` as callee data); with
//!   `--invite IP:PORT` it calls `WSAJoinLeaf` on the c_root for that leaf (root-initiated:
//!   a new c_leaf socket per leaf). It sends sequence-numbered messages to the session from the
//!   first join until `--duration` is up, counts with `recvfrom` what each leaf sent it, then
//!   `closesocket`s the c_root: the session ends for every leaf.
//! - `ws2 leaf` makes a c_leaf/d_leaf socket. With `--listen PORT` it waits for an invitation
//!   and admits it with `WSAAccept`; with `--join IP:PORT` it calls `WSAJoinLeaf` itself
//!   (leaf-initiated, `--flags` as `JL_*`). It counts what arrives, by sender (the root, and on
//!   the relay plane the other leaves), with gaps and order, until the root ends the session or
//!   `--duration` is up; with `--send-rate` (or `--flags send`) it also sends.
//!
//! Messages carry the 20-byte header of `ws2 mcast` ([`stamp`]): a sequence number from 0 and
//! the sender's wall-clock time. A leaf that joins late starts at a later sequence number;
//! that is not a loss.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

use clap::{Args, ValueEnum};
use ws2_multipoint::rmp::wire::{MAX_PAYLOAD, MAX_USER_DATA};
use ws2_stack::winsock::*;

use super::mcast::{jl_name, read_stamp, setsockopt_int, stamp, wall_ns, winsock, Track};
use super::LinkArgs;

const ROOT_EXAMPLE: &str = "The root sends from the first join until --duration is up, then \
closes its c_root: every leaf's session ends (recv returns 0).

Example, a root-initiated and a leaf-initiated leaf on one `ws2 switch`:
  ws2 switch --socket /tmp/lan.sock &
  ws2 leaf --link unix:/tmp/lan.sock --addr 10.9.7.2/24 --listen 6000 --duration 30 &
  ws2 leaf --link unix:/tmp/lan.sock --addr 10.9.7.3/24 --join 10.9.7.1:5800 --caller-data bob --duration 30 &
  ws2 root --link unix:/tmp/lan.sock --addr 10.9.7.1/24 --listen 5800 --invite 10.9.7.2:6000 --duration 10";

const LEAF_EXAMPLE: &str = "With --listen the leaf waits for a root's invitation (the root \
decides its role); with --join it asks the root for admittance with --flags.

Example:
  ws2 leaf --link unix:/tmp/lan.sock --addr 10.9.7.3/24 --join 10.9.7.1:5800 --flags both --send-rate 10000 --duration 30 --json";

/// Payload bytes/s a sender offers when no rate is given.
const DEFAULT_RATE: u64 = 100_000;
/// How long the root keeps reading after its last message, before it ends the session.
const LINGER: Duration = Duration::from_millis(200);
/// How often a receiver looks at its deadline and stop flag.
const POLL_MS: i32 = 100;
/// Bytes of the message header ([`stamp`]).
const HEADER_LEN: usize = super::mcast::HEADER_LEN;

/// Which RMP catalog entry: rooted data (ATM / ST-II) or non-rooted data (T.120 relay).
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Plane {
    /// `IPPROTO_RMP`: a leaf's data goes to the root only.
    Rooted,
    /// `IPPROTO_RMP_RELAY`: the root relays a leaf's data to every other leaf.
    Relay,
}

impl Plane {
    fn protocol(self) -> i32 {
        match self {
            Plane::Rooted => IPPROTO_RMP,
            Plane::Relay => IPPROTO_RMP_RELAY,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Plane::Rooted => "rooted",
            Plane::Relay => "relay",
        }
    }
}

/// A leaf's role: `JL_BOTH`, `JL_SENDER_ONLY` or `JL_RECEIVER_ONLY`.
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    Both,
    Send,
    Recv,
}

impl Role {
    pub(crate) fn jl(self) -> u32 {
        match self {
            Role::Both => JL_BOTH,
            Role::Send => JL_SENDER_ONLY,
            Role::Recv => JL_RECEIVER_ONLY,
        }
    }
}

#[derive(Args, Debug)]
#[command(after_help = ROOT_EXAMPLE)]
pub(crate) struct RootArgs {
    #[command(flatten)]
    link: LinkArgs,
    /// Admit leaves that ask to join on this port (bind + listen + WSAAccept).
    #[arg(long, value_name = "PORT", value_parser = parse_port)]
    listen: Option<u16>,
    /// Invite the leaf listening at IP:PORT (WSAJoinLeaf on the c_root); may be repeated.
    #[arg(long, value_name = "IP:PORT", value_parser = parse_peer)]
    invite: Vec<SocketAddrV4>,
    /// The role invitations grant the leaves.
    #[arg(long, value_enum, default_value = "both")]
    invite_flags: Role,
    /// The data plane: rooted (IPPROTO_RMP) or relay (IPPROTO_RMP_RELAY, non-rooted data).
    #[arg(long, value_enum, default_value = "rooted")]
    plane: Plane,
    /// The root's user data in a join: caller data of its invitations, callee data of the
    /// requests it admits (at most 4096 bytes).
    #[arg(long, default_value = "ws2 root", value_parser = parse_user_data)]
    caller_data: String,
    /// Payload bytes per second sent to the session (0: as fast as send returns).
    #[arg(long, value_name = "B/S", default_value_t = DEFAULT_RATE)]
    send_rate: u64,
    /// Bytes per message (20 to 65536; the first 20 are the sequence header).
    #[arg(long, default_value_t = 1000, value_parser = parse_message)]
    datagram: usize,
    /// Seconds the session runs; then the root closes its c_root.
    #[arg(long, allow_negative_numbers = true, value_parser = crate::ranges::duration)]
    duration: f64,
    /// Print the summary as one JSON object.
    #[arg(long)]
    json: bool,
}

#[derive(Args, Debug)]
#[command(after_help = LEAF_EXAMPLE)]
pub(crate) struct LeafArgs {
    #[command(flatten)]
    link: LinkArgs,
    /// Wait on this port for a root's invitation (bind + listen + WSAAccept).
    #[arg(long, value_name = "PORT", value_parser = parse_port,
          required_unless_present = "join", conflicts_with = "join")]
    listen: Option<u16>,
    /// Ask the root listening at IP:PORT for admittance (WSAJoinLeaf on this c_leaf).
    #[arg(long, value_name = "IP:PORT", value_parser = parse_peer)]
    join: Option<SocketAddrV4>,
    /// The data plane; must be the root's.
    #[arg(long, value_enum, default_value = "rooted")]
    plane: Plane,
    /// The role asked for with --join (JL_BOTH, JL_SENDER_ONLY, JL_RECEIVER_ONLY); with
    /// --listen the root's invitation decides, and `recv` only keeps this leaf from sending.
    #[arg(long, value_enum, default_value = "both")]
    flags: Role,
    /// The leaf's user data in the join: caller data with --join, callee data with --listen
    /// (at most 4096 bytes).
    #[arg(long, default_value = "ws2 leaf", value_parser = parse_user_data)]
    caller_data: String,
    /// Payload bytes per second this leaf sends (0: unpaced). Without it the leaf only
    /// listens, unless --flags send (then 100000).
    #[arg(long, value_name = "B/S")]
    send_rate: Option<u64>,
    /// Bytes per message sent (20 to 65536).
    #[arg(long, default_value_t = 1000, value_parser = parse_message)]
    datagram: usize,
    /// Seconds from start (waiting for an invitation included) after which the leaf leaves,
    /// unless the root ended the session first.
    #[arg(long, allow_negative_numbers = true, value_parser = crate::ranges::duration)]
    duration: f64,
    /// Print the summary as one JSON object.
    #[arg(long)]
    json: bool,
}

// ---- argument parsers ----------------------------------------------------------------------

fn parse_port(s: &str) -> Result<u16, String> {
    s.parse::<u16>()
        .ok()
        .filter(|p| *p != 0)
        .ok_or_else(|| format!("{s:?} is not a port (1 to 65535)"))
}

/// `IP:PORT` of a unicast peer.
pub(crate) fn parse_peer(s: &str) -> Result<SocketAddrV4, String> {
    let (ip, port) = s
        .split_once(':')
        .ok_or_else(|| format!("{s:?}: expected IP:PORT, e.g. 10.9.7.1:5800"))?;
    let ip: Ipv4Addr = ip
        .parse()
        .map_err(|_| format!("{ip:?} is not an IPv4 address (IP:PORT)"))?;
    let port = parse_port(port)?;
    if ip.is_unspecified() || ip.is_multicast() || ip.is_broadcast() {
        return Err(format!(
            "{ip} cannot be a root or a leaf: RMP runs over TCP to a unicast address"
        ));
    }
    Ok(SocketAddrV4::new(ip, port))
}

fn parse_user_data(s: &str) -> Result<String, String> {
    if s.len() > MAX_USER_DATA {
        return Err(format!(
            "{} bytes of user data: a join carries at most {MAX_USER_DATA}",
            s.len()
        ));
    }
    Ok(s.to_string())
}

fn parse_message(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if (HEADER_LEN..=MAX_PAYLOAD).contains(&n) => Ok(n),
        _ => Err(format!(
            "{s:?}: a message carries {HEADER_LEN} to {MAX_PAYLOAD} bytes (the first \
             {HEADER_LEN} are the sequence header)"
        )),
    }
}

// ---- pieces the demo and the bench share ---------------------------------------------------

/// A c_root: `WSASocket(AF_INET, SOCK_RDM, …)` with `C_ROOT | D_ROOT` on the rooted plane and
/// `C_ROOT | D_LEAF` on the relay plane (its catalog entry has no rooted data plane).
pub(crate) fn root_socket(ws: &Winsock, plane: Plane) -> Result<SOCKET, String> {
    let data = match plane {
        Plane::Rooted => WSA_FLAG_MULTIPOINT_D_ROOT,
        Plane::Relay => WSA_FLAG_MULTIPOINT_D_LEAF,
    };
    ws.WSASocket(
        AF_INET,
        SOCK_RDM,
        plane.protocol(),
        None,
        0,
        WSA_FLAG_MULTIPOINT_C_ROOT | data | WSA_FLAG_OVERLAPPED,
    )
    .map_err(|e| format!("WSASocket(SOCK_RDM, c_root): {e}"))
}

/// A c_leaf/d_leaf RMP socket.
pub(crate) fn leaf_socket(ws: &Winsock, plane: Plane) -> Result<SOCKET, String> {
    ws.WSASocket(
        AF_INET,
        SOCK_RDM,
        plane.protocol(),
        None,
        0,
        WSA_FLAG_MULTIPOINT_C_LEAF | WSA_FLAG_MULTIPOINT_D_LEAF | WSA_FLAG_OVERLAPPED,
    )
    .map_err(|e| format!("WSASocket(SOCK_RDM, c_leaf): {e}"))
}

/// `bind(addr)` then `listen(backlog)`.
pub(crate) fn bind_listen(
    ws: &Winsock,
    s: SOCKET,
    addr: SocketAddrV4,
    backlog: i32,
) -> Result<(), String> {
    ws.bind(s, Some(&SOCKADDR_IN::new(addr)), SOCKADDR_IN_LEN)
        .map_err(|e| format!("bind {addr}: {e}"))?;
    ws.listen(s, backlog)
        .map_err(|e| format!("listen on {addr}: {e}"))
}

/// A completed join: the session socket, the peer, the peer's user data and how long it took.
#[derive(Debug)]
pub(crate) struct Joined {
    pub(crate) socket: SOCKET,
    pub(crate) peer: SocketAddrV4,
    pub(crate) data: Vec<u8>,
    pub(crate) took: Duration,
}

/// `WSAJoinLeaf(s, to, caller, …, flags)`, blocking: at a c_root a new c_leaf socket for the
/// invited leaf, at a leaf `s` itself; the peer's callee data comes back in `data`.
pub(crate) fn join(
    ws: &Winsock,
    s: SOCKET,
    to: SocketAddrV4,
    caller: &[u8],
    flags: u32,
) -> Result<Joined, WsaError> {
    let caller = WSABUF::new(caller.to_vec());
    let mut callee = WSABUF::zeroed(MAX_USER_DATA);
    let t = Instant::now();
    let socket = ws.WSAJoinLeaf(
        s,
        Some(&SOCKADDR_IN::new(to)),
        SOCKADDR_IN_LEN,
        Some(&caller),
        Some(&mut callee),
        None,
        None,
        flags,
    )?;
    Ok(Joined {
        socket,
        peer: to,
        data: callee.data().to_vec(),
        took: t.elapsed(),
    })
}

/// A leaf's `WSAJoinLeaf(s, to, …)` given up at `until`: the socket is made non-blocking
/// (`FIONBIO`), the join completes when `select` finds it writable (joined) or in `exceptfds`
/// (failed, `SO_ERROR` says why), and the callee data comes from `rmp_callee_data`; the socket
/// is blocking again afterwards. `Ok(None)` when `until` passed first (a silent root), so a
/// leaf keeps its `--duration` however long TCP would retry the connect.
pub(crate) fn join_until(
    ws: &Winsock,
    s: SOCKET,
    to: SocketAddrV4,
    caller: &[u8],
    flags: u32,
    until: Instant,
) -> Result<Option<Joined>, WsaError> {
    let caller = WSABUF::new(caller.to_vec());
    ws.ioctlsocket(s, FIONBIO, Some(&mut 1))?;
    let t = Instant::now();
    match ws.WSAJoinLeaf(
        s,
        Some(&SOCKADDR_IN::new(to)),
        SOCKADDR_IN_LEN,
        Some(&caller),
        None,
        None,
        None,
        flags,
    ) {
        Ok(_) | Err(WsaError::WSAEWOULDBLOCK) => {}
        Err(e) => return Err(e),
    }
    if !joined_by(ws, s, until)? {
        return Ok(None);
    }
    let took = t.elapsed();
    let mut callee = WSABUF::zeroed(MAX_USER_DATA);
    ws.rmp_callee_data(s, &mut callee)?;
    ws.ioctlsocket(s, FIONBIO, Some(&mut 0))?;
    Ok(Some(Joined {
        socket: s,
        peer: to,
        data: callee.data().to_vec(),
        took,
    }))
}

/// A root's invitation `WSAJoinLeaf(c_root, to, …)` given up at `until`, as [`join_until`]:
/// the c_root is non-blocking only for the call itself (the acceptor and the receiver, which
/// share it, retry a `WSAEWOULDBLOCK` they meet meanwhile); the invitation's own socket is
/// waited for, and closed when `until` passes first (`Ok(None)`).
pub(crate) fn invite_until(
    ws: &Winsock,
    s: SOCKET,
    to: SocketAddrV4,
    caller: &[u8],
    flags: u32,
    until: Instant,
) -> Result<Option<Joined>, WsaError> {
    let caller = WSABUF::new(caller.to_vec());
    ws.ioctlsocket(s, FIONBIO, Some(&mut 1))?;
    let t = Instant::now();
    let r = ws.WSAJoinLeaf(
        s,
        Some(&SOCKADDR_IN::new(to)),
        SOCKADDR_IN_LEN,
        Some(&caller),
        None,
        None,
        None,
        flags,
    );
    ws.ioctlsocket(s, FIONBIO, Some(&mut 0))?;
    let invitation = r?;
    if !joined_by(ws, invitation, until)? {
        let _ = ws.closesocket(invitation);
        return Ok(None);
    }
    let took = t.elapsed();
    let mut callee = WSABUF::zeroed(MAX_USER_DATA);
    ws.rmp_callee_data(invitation, &mut callee)?;
    Ok(Some(Joined {
        socket: invitation,
        peer: to,
        data: callee.data().to_vec(),
        took,
    }))
}

/// Waits (`select`) until the non-blocking join on `s` completes — `Ok(true)` — or fails (its
/// `SO_ERROR`), or `until` passes (`Ok(false)`).
fn joined_by(ws: &Winsock, s: SOCKET, until: Instant) -> Result<bool, WsaError> {
    loop {
        let Some(left) = until.checked_duration_since(Instant::now()) else {
            return Ok(false);
        };
        let ms = left.as_millis().clamp(1, POLL_MS as u128) as i32;
        let (mut w, mut x) = (FD_SET::default(), FD_SET::default());
        FD_SET(s, &mut w);
        FD_SET(s, &mut x);
        let timeout = TIMEVAL {
            tv_sec: 0,
            tv_usec: ms * 1000,
        };
        if ws.select(0, None, Some(&mut w), Some(&mut x), Some(&timeout))? == 0 {
            continue;
        }
        if FD_ISSET(s, &x) {
            let mut code = [0u8; 4];
            let mut len = 4;
            ws.getsockopt(s, SOL_SOCKET, SO_ERROR, Some(&mut code), &mut len)?;
            return Err(match i32::from_ne_bytes(code) {
                0 => WsaError::WSAECONNREFUSED,
                e => WsaError(e),
            });
        }
        if FD_ISSET(s, &w) {
            return Ok(true);
        }
    }
}

/// Admits the oldest join request at the listening `s` with `WSAAccept`: the condition function
/// keeps the caller data and answers `CF_ACCEPT` with `callee` as callee data. Blocks until a
/// request comes (or `s` is closed). `took` is the time spent in the call.
pub(crate) fn admit(ws: &Winsock, s: SOCKET, callee: &[u8]) -> Result<Joined, WsaError> {
    let mut caller = Vec::new();
    let mut condition = |_caller_id: Option<&WSABUF>,
                         caller_data: Option<&WSABUF>,
                         _sqos: Option<&mut QOS>,
                         _gqos: Option<&mut QOS>,
                         _callee_id: Option<&WSABUF>,
                         callee_data: Option<&mut WSABUF>,
                         _g: &mut u32,
                         _cb: usize|
     -> i32 {
        caller = caller_data.map(|d| d.data().to_vec()).unwrap_or_default();
        if let Some(out) = callee_data {
            let n = callee.len().min(out.buf.len());
            out.buf[..n].copy_from_slice(&callee[..n]);
            out.len = n as u32;
        }
        CF_ACCEPT
    };
    let mut from = SOCKADDR_IN::default();
    let mut fromlen = SOCKADDR_IN_LEN;
    let t = Instant::now();
    let socket = ws.WSAAccept(
        s,
        Some(&mut from),
        Some(&mut fromlen),
        Some(&mut condition),
        0,
    )?;
    Ok(Joined {
        socket,
        peer: from.to_socket_addr(),
        data: caller,
        took: t.elapsed(),
    })
}

/// Whether `s` turns readable within `ms` (`select`): a listener with a join request waiting.
pub(crate) fn readable_within(ws: &Winsock, s: SOCKET, ms: i32) -> Result<bool, String> {
    let mut set = FD_SET::default();
    FD_SET(s, &mut set);
    let timeout = TIMEVAL {
        tv_sec: ms / 1000,
        tv_usec: (ms % 1000) * 1000,
    };
    ws.select(0, Some(&mut set), None, None, Some(&timeout))
        .map(|n| n > 0)
        .map_err(|e| format!("select: {e}"))
}

/// Sleeps until `t` (not at all if it has passed).
pub(crate) fn sleep_until(t: Instant) {
    if let Some(wait) = t.checked_duration_since(Instant::now()) {
        thread::sleep(wait);
    }
}

/// What a sender did: messages and payload bytes sent, the time it spent, and why it stopped
/// early (the session ended, the role forbids sending).
#[derive(Debug, Default, Clone)]
pub(crate) struct Sent {
    pub(crate) messages: u64,
    pub(crate) bytes: u64,
    pub(crate) took: Duration,
    pub(crate) stopped: Option<String>,
}

/// Sends stamped messages of `size` bytes on `s` (`send`) until `until` or `stop`, paced to
/// `rate` payload bytes/s from the first message that goes (0: unpaced). While no session
/// exists yet (`WSAENOTCONN`) it waits without spending a sequence number; any other error
/// ends it, named in `stopped`.
pub(crate) fn send_stamped(
    ws: &Winsock,
    s: SOCKET,
    size: usize,
    rate: u64,
    until: Instant,
    stop: &AtomicBool,
) -> Sent {
    let mut buf = vec![0u8; size];
    super::transfer::pattern(0, &mut buf);
    let mut out = Sent::default();
    let mut first: Option<Instant> = None;
    // A send held back (a full session queue) waits in steps, so `until` and `stop` are kept.
    if let Err(e) = setsockopt_int(ws, s, SOL_SOCKET, SO_SNDTIMEO, "SO_SNDTIMEO", POLL_MS) {
        out.stopped = Some(e);
        return out;
    }
    while Instant::now() < until && !stop.load(Ordering::Relaxed) {
        if let (Some(start), true) = (first, rate > 0) {
            let due =
                start + Duration::from_secs_f64(out.messages as f64 * size as f64 / rate as f64);
            if due >= until {
                break;
            }
            sleep_until(due);
        }
        stamp(&mut buf, out.messages, wall_ns());
        match ws.send(s, &buf, 0) {
            Ok(n) => {
                first.get_or_insert_with(Instant::now);
                out.messages += 1;
                out.bytes += n as u64;
            }
            Err(WsaError::WSAENOTCONN) if first.is_none() => {
                thread::sleep(Duration::from_millis(10));
            }
            Err(WsaError::WSAETIMEDOUT) => {}
            Err(e) => {
                out.stopped = Some(format!("send: {e}"));
                break;
            }
        }
    }
    out.took = first.map_or(Duration::ZERO, |t| t.elapsed());
    out
}

/// How a receiver's session ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Ending {
    /// Still in the session at the deadline (or when told to stop).
    Deadline,
    /// `recv` returned 0: the root ended the session (or dropped this leaf).
    SessionEnded,
    /// The connection failed (reset, aborted, the peer stopped answering).
    Failed(String),
}

impl Ending {
    fn name(&self) -> String {
        match self {
            Ending::Deadline => "deadline".into(),
            Ending::SessionEnded => "session ended by the root".into(),
            Ending::Failed(e) => format!("failed: {e}"),
        }
    }
}

/// What a receiver saw: a [`Track`] per sender, and how it ended.
#[derive(Debug)]
pub(crate) struct Heard {
    pub(crate) senders: BTreeMap<SocketAddrV4, Track>,
    pub(crate) ending: Ending,
}

impl Heard {
    /// (messages, bytes, lost, reordered) over all senders.
    pub(crate) fn totals(&self) -> (u64, u64, u64, u64) {
        self.senders.values().fold((0, 0, 0, 0), |(m, b, l, r), t| {
            (m + t.datagrams, b + t.bytes, l + t.lost(), r + t.reordered)
        })
    }

    /// Every sender's messages came in order with no gap.
    pub(crate) fn in_order(&self) -> bool {
        self.senders
            .values()
            .all(|t| t.lost() == 0 && t.reordered == 0)
    }
}

/// Receives on `s` (`recvfrom`, which names the sender) until `until`, `stop`, or the end of
/// the session. Delays are receive time minus the stamp, in ms, through `clock_ns`.
pub(crate) fn receive(
    ws: &Winsock,
    s: SOCKET,
    until: Instant,
    stop: &AtomicBool,
    clock_ns: impl Fn() -> u64,
) -> Result<Heard, String> {
    setsockopt_int(ws, s, SOL_SOCKET, SO_RCVTIMEO, "SO_RCVTIMEO", POLL_MS)?;
    let mut senders: BTreeMap<SocketAddrV4, Track> = BTreeMap::new();
    let mut buf = vec![0u8; MAX_PAYLOAD];
    let ending = loop {
        if Instant::now() >= until || stop.load(Ordering::Relaxed) {
            break Ending::Deadline;
        }
        let mut from = SOCKADDR_IN::default();
        let mut fromlen = SOCKADDR_IN_LEN;
        match ws.recvfrom(s, &mut buf, 0, Some(&mut from), Some(&mut fromlen)) {
            Ok(0) => break Ending::SessionEnded,
            Ok(n) => {
                let n = n as usize;
                let now = clock_ns();
                let track = senders.entry(from.to_socket_addr()).or_default();
                match read_stamp(&buf[..n]) {
                    Some((seq, sent)) => track.add(seq, n, (now as f64 - sent as f64) / 1e6),
                    None => {
                        track.datagrams += 1;
                        track.bytes += n as u64;
                    }
                }
            }
            // WSAEWOULDBLOCK: the root's c_root is non-blocking for an invitation's call.
            Err(WsaError::WSAETIMEDOUT | WsaError::WSAEWOULDBLOCK) => {}
            Err(e) => break Ending::Failed(e.to_string()),
        }
    };
    Ok(Heard { senders, ending })
}

/// A figure for JSON: finite numbers rounded to µs, NaN as null.
fn ms_json(v: f64) -> serde_json::Value {
    if v.is_finite() {
        serde_json::json!((v * 1000.0).round() / 1000.0)
    } else {
        serde_json::Value::Null
    }
}

fn text(data: &[u8]) -> String {
    String::from_utf8_lossy(data).into_owned()
}

fn heard_json(h: &Heard, key: &str) -> serde_json::Value {
    let (messages, bytes, lost, reordered) = h.totals();
    let list: Vec<_> = h
        .senders
        .iter()
        .map(|(addr, t)| {
            let (p50, p99) = t.delay_percentiles();
            serde_json::json!({
                "addr": addr.to_string(),
                "messages": t.datagrams,
                "bytes": t.bytes,
                "lost": t.lost(),
                "reordered": t.reordered,
                "first_seq": t.first_seq,
                "last_seq": t.max_seq,
                "delay_p50_ms": ms_json(p50),
                "delay_p99_ms": ms_json(p99),
            })
        })
        .collect();
    serde_json::json!({
        "messages": messages,
        "bytes": bytes,
        "lost": lost,
        "reordered": reordered,
        "in_order": h.in_order(),
        "ending": h.ending.name(),
        key: list,
    })
}

fn sent_json(s: &Sent) -> serde_json::Value {
    serde_json::json!({
        "messages": s.messages,
        "bytes": s.bytes,
        "seconds": ms_json(s.took.as_secs_f64()),
        "stopped": s.stopped,
    })
}

fn print_heard(h: &Heard, who: &str) {
    let (messages, bytes, lost, reordered) = h.totals();
    println!(
        "received {messages} messages, {bytes} bytes from {} {who}(s): {lost} lost, \
         {reordered} reordered, in order: {}; {}",
        h.senders.len(),
        if h.in_order() { "yes" } else { "NO" },
        h.ending.name()
    );
    if h.senders.is_empty() {
        return;
    }
    println!(
        "{:<22} {:>9} {:>12} {:>13} {:>6} {:>9} {:>8} {:>8}",
        who, "messages", "bytes", "seqs", "lost", "reordered", "p50 ms", "p99 ms"
    );
    for (addr, t) in &h.senders {
        let (p50, p99) = t.delay_percentiles();
        println!(
            "{:<22} {:>9} {:>12} {:>13} {:>6} {:>9} {:>8.3} {:>8.3}",
            addr.to_string(),
            t.datagrams,
            t.bytes,
            format!("{}-{}", t.first_seq, t.max_seq),
            t.lost(),
            t.reordered,
            p50,
            p99
        );
    }
}

fn print_sent(s: &Sent, to: &str) {
    let secs = s.took.as_secs_f64().max(1e-9);
    println!(
        "sent {} messages, {} bytes to {to} in {:.2} s ({:.0} B/s payload){}",
        s.messages,
        s.bytes,
        s.took.as_secs_f64(),
        s.bytes as f64 / secs,
        s.stopped
            .as_ref()
            .map_or(String::new(), |e| format!("; stopped by {e}"))
    );
}

// ---- ws2 root ------------------------------------------------------------------------------

/// A leaf in the root's session.
struct Member {
    leaf: SocketAddrV4,
    /// "request" (it asked) or "invite" (the root asked).
    how: &'static str,
    /// The leaf's user data: caller data of a request, callee data of an invitation.
    data: Vec<u8>,
    /// How long the root's `WSAJoinLeaf` blocked (invitations only).
    took: Option<Duration>,
    /// Since the root started.
    at: Duration,
}

pub(crate) fn run_root(args: &RootArgs) -> Result<(), String> {
    if args.listen.is_none() && args.invite.is_empty() {
        return Err(
            "a root needs leaves: give --listen PORT (leaves ask to join) and/or \
             --invite IP:PORT (the root invites them)"
                .into(),
        );
    }
    let local = args.link.addr.addr;
    if let Some(me) = args.invite.iter().find(|a| *a.ip() == local) {
        return Err(format!(
            "--invite {me}: that is this root's own address; invite a leaf on another stack"
        ));
    }
    let stack = args.link.start()?;
    let ws = winsock(&stack)?;
    let s = root_socket(&ws, args.plane)?;
    if let Some(port) = args.listen {
        bind_listen(&ws, s, SocketAddrV4::new(local, port), 64)?;
    }
    eprintln!(
        "ws2 root: c_root on {local} ({} data plane){}",
        args.plane.name(),
        args.listen
            .map_or(String::new(), |p| format!(", listening on port {p}"))
    );
    let start = Instant::now();
    let until = start + Duration::from_secs_f64(args.duration);
    let members: Mutex<Vec<Member>> = Mutex::new(Vec::new());
    let mut failed: Vec<(SocketAddrV4, String)> = Vec::new();
    let stop = AtomicBool::new(false);
    let callee = args.caller_data.as_bytes();
    let record = |m: Member| {
        eprintln!(
            "ws2 root: leaf {} joined ({}, {} data {:?}){}",
            m.leaf,
            m.how,
            if m.how == "request" {
                "caller"
            } else {
                "callee"
            },
            text(&m.data),
            m.took.map_or(String::new(), |d| format!(
                ": WSAJoinLeaf took {:.2} ms",
                d.as_secs_f64() * 1e3
            ))
        );
        members.lock().expect("members lock").push(m);
    };
    let (sent, heard) = thread::scope(|scope| {
        let acceptor = args.listen.map(|_| {
            let (ws, record) = (&ws, &record);
            scope.spawn(move || {
                // Ends when the c_root is closed (WSAEINTR) or fails.
                loop {
                    match admit(ws, s, callee) {
                        Ok(j) => record(Member {
                            leaf: j.peer,
                            how: "request",
                            data: j.data,
                            took: None,
                            at: start.elapsed(),
                        }),
                        // The c_root is non-blocking for an invitation's call: try again.
                        Err(WsaError::WSAEWOULDBLOCK) => thread::sleep(Duration::from_millis(5)),
                        Err(_) => break,
                    }
                }
            })
        });
        let receiver = scope.spawn(|| receive(&ws, s, until + LINGER, &stop, wall_ns));
        for &to in &args.invite {
            match invite_until(&ws, s, to, callee, args.invite_flags.jl(), until) {
                Ok(None) => {
                    let e = format!("no answer within --duration {} s", args.duration);
                    eprintln!(
                        "ws2 root: inviting {to} ({}) failed: {e}",
                        jl_name(args.invite_flags.jl())
                    );
                    failed.push((to, e));
                }
                Ok(Some(j)) => record(Member {
                    leaf: j.peer,
                    how: "invite",
                    data: j.data,
                    took: Some(j.took),
                    at: start.elapsed(),
                }),
                Err(e) => {
                    eprintln!(
                        "ws2 root: inviting {to} ({}) failed: {e}",
                        jl_name(args.invite_flags.jl())
                    );
                    failed.push((to, e.to_string()));
                }
            }
        }
        let sent = send_stamped(&ws, s, args.datagram, args.send_rate, until, &stop);
        // The leaves' last messages are in flight: a moment to hear them.
        sleep_until(until + LINGER);
        stop.store(true, Ordering::Relaxed);
        let heard = receiver
            .join()
            .unwrap_or_else(|_| Err("the receiving thread panicked".into()));
        // Ends the session for every leaf, and the acceptor's WSAAccept.
        let _ = ws.closesocket(s);
        if let Some(a) = acceptor {
            let _ = a.join();
        }
        (sent, heard)
    });
    let _ = ws.WSACleanup();
    let heard = heard?;
    let members = members.into_inner().expect("members lock");
    if args.json {
        let joins: Vec<_> = members
            .iter()
            .map(|m| {
                serde_json::json!({
                    "leaf": m.leaf.to_string(),
                    "how": m.how,
                    "data": text(&m.data),
                    "join_ms": m.took.map(|d| ms_json(d.as_secs_f64() * 1e3)),
                    "at_s": ms_json(m.at.as_secs_f64()),
                })
            })
            .collect();
        let failed: Vec<_> = failed
            .iter()
            .map(|(to, e)| serde_json::json!({"leaf": to.to_string(), "error": e}))
            .collect();
        let obj = serde_json::json!({
            "role": "root",
            "addr": local.to_string(),
            "plane": args.plane.name(),
            "listen": args.listen,
            "joins": joins,
            "invites_failed": failed,
            "sent": sent_json(&sent),
            "received": heard_json(&heard, "leaves"),
        });
        println!("{obj}");
    } else {
        println!(
            "{} leaf/leaves joined, {} invitation(s) failed",
            members.len(),
            failed.len()
        );
        if !members.is_empty() {
            println!(
                "{:<22} {:<8} {:>8} {:>9} {:<30}",
                "leaf", "how", "at s", "join ms", "its data"
            );
            for m in &members {
                println!(
                    "{:<22} {:<8} {:>8.2} {:>9} {:<30?}",
                    m.leaf.to_string(),
                    m.how,
                    m.at.as_secs_f64(),
                    m.took
                        .map_or("-".into(), |d| format!("{:.2}", d.as_secs_f64() * 1e3)),
                    text(&m.data)
                );
            }
        }
        print_sent(&sent, "the session");
        print_heard(&heard, "leaf");
    }
    if members.is_empty() {
        return Err("no leaf joined the session".into());
    }
    Ok(())
}

// ---- ws2 leaf ------------------------------------------------------------------------------

pub(crate) fn run_leaf(args: &LeafArgs) -> Result<(), String> {
    let local = args.link.addr.addr;
    if args.join.is_some_and(|r| *r.ip() == local) {
        return Err(format!(
            "--join {}: that is this leaf's own address; the root is another stack",
            args.join.expect("checked")
        ));
    }
    let start = Instant::now();
    let until = start + Duration::from_secs_f64(args.duration);
    let stack = args.link.start()?;
    let ws = winsock(&stack)?;
    let s = leaf_socket(&ws, args.plane)?;
    let mine = args.caller_data.as_bytes();
    let (joined, how) = match (args.listen, args.join) {
        (Some(port), _) => {
            let addr = SocketAddrV4::new(local, port);
            bind_listen(&ws, s, addr, 4)?;
            eprintln!("ws2 leaf: listening on {addr} for an invitation");
            loop {
                if Instant::now() >= until {
                    let _ = ws.closesocket(s);
                    return Err(format!("no root invited {addr} within {} s", args.duration));
                }
                if readable_within(&ws, s, POLL_MS)? {
                    break;
                }
            }
            let j = admit(&ws, s, mine).map_err(|e| format!("WSAAccept on {addr}: {e}"))?;
            // One session per leaf: no more invitations.
            let _ = ws.closesocket(s);
            (j, "invited")
        }
        (None, Some(root)) => {
            let jl = jl_name(args.flags.jl());
            let j = join_until(&ws, s, root, mine, args.flags.jl(), until)
                .map_err(|e| format!("WSAJoinLeaf({root}, {jl}): {e}"))?;
            let Some(j) = j else {
                let _ = ws.closesocket(s);
                return Err(format!(
                    "WSAJoinLeaf({root}, {jl}): no answer within --duration {} s",
                    args.duration
                ));
            };
            (j, "joined")
        }
        (None, None) => return Err("give --listen PORT or --join IP:PORT".into()),
    };
    let data_kind = if how == "invited" { "caller" } else { "callee" };
    // Only a leaf that called WSAJoinLeaf has a join time to report.
    let join_ms = (how == "joined").then_some(joined.took.as_secs_f64() * 1e3);
    eprintln!(
        "ws2 leaf: {how} the session of {} ({} data {:?}){}",
        joined.peer,
        data_kind,
        text(&joined.data),
        join_ms.map_or(String::new(), |ms| format!(": WSAJoinLeaf took {ms:.2} ms"))
    );
    let c = joined.socket;
    let sending =
        args.flags != Role::Recv && (args.send_rate.is_some() || args.flags == Role::Send);
    let rate = args.send_rate.unwrap_or(DEFAULT_RATE);
    let receiving = args.flags != Role::Send;
    let stop = AtomicBool::new(false);
    let (sent, heard) = thread::scope(|scope| {
        let sender = sending.then(|| {
            let (ws, stop) = (&ws, &stop);
            scope.spawn(move || send_stamped(ws, c, args.datagram, rate, until, stop))
        });
        let heard = if receiving {
            Some(receive(&ws, c, until, &stop, wall_ns))
        } else {
            None
        };
        stop.store(true, Ordering::Relaxed);
        let sent = sender.map(|j| j.join().unwrap_or_default());
        (sent, heard.transpose())
    });
    // Leaving (DISCONNECT), unless the root ended the session already.
    let _ = ws.closesocket(c);
    let _ = ws.WSACleanup();
    let heard = heard?;
    if args.json {
        let mut obj = serde_json::json!({
            "role": "leaf",
            "addr": local.to_string(),
            "plane": args.plane.name(),
            "root": joined.peer.to_string(),
            "how": how,
            "flags": jl_name(args.flags.jl()),
            "peer_data": text(&joined.data),
            "join_ms": join_ms.map(ms_json),
            "duration_s": ms_json(start.elapsed().as_secs_f64()),
        });
        if let Some(h) = &heard {
            obj["received"] = heard_json(h, "senders");
        }
        if let Some(s) = &sent {
            obj["sent"] = sent_json(s);
        }
        println!("{obj}");
    } else {
        if let Some(h) = &heard {
            print_heard(h, "sender");
        }
        if let Some(s) = &sent {
            print_sent(s, "the session");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peers_parse_and_reject() {
        assert_eq!(
            parse_peer("10.9.7.1:5800"),
            Ok("10.9.7.1:5800".parse().unwrap())
        );
        for bad in [
            "10.9.7.1",
            "10.9.7.1:0",
            "10.9.7.1:x",
            "0.0.0.0:5800",
            "239.1.2.3:5800",
            "x:1",
            "",
        ] {
            assert!(parse_peer(bad).is_err(), "{bad}");
        }
        assert!(parse_message("19").is_err());
        assert!(parse_message("65537").is_err());
        assert!(parse_user_data(&"x".repeat(4097)).is_err());
    }
}
