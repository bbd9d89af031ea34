//! Validate before observing: what a TCP segment or an ICMP error may do to a connection, decided
//! before any shim acts on it and before smoltcp sees it (issue 13).
//!
//! Read first: RFC 5961 §3 (blind reset: a RST resets only when its sequence number is exactly
//! RCV.NXT; in the window otherwise, a challenge ACK; outside it, dropped), §4 (a SYN on a
//! synchronized connection: a challenge ACK, whatever its sequence number), §7 (challenge ACK
//! throttling); RFC 9293 §3.10.7.4 (segment acceptability); RFC 4987 §3.4-3.6 (SYN floods: a
//! SYN cache that evicts its oldest half-open entries); RFC 5927 §4.1 and RFC 1122 §4.2.3.9
//! (an ICMP error is matched to the connection its quoted header names).
//!
//! - **Segments of a connection in the socket table** (`Engine::tcp_validate`, run by the
//!   `Observe` stage of the ingress pipeline, after `frames::observe` has dropped fragments and
//!   bad checksums). smoltcp 0.14 already drops an out-of-window RST and answers an
//!   out-of-window SYN with a (throttled) challenge ACK, but it takes *any* RST in its receive
//!   window as a reset and drops an in-window SYN silently. So, on a synchronized connection:
//!   a RST whose sequence number is RCV.NXT passes (and the socket is marked reset); one inside
//!   the window is dropped here and answered with a challenge ACK; one outside is dropped. A SYN
//!   is dropped and answered with a challenge ACK (the peer, if it really restarted, answers
//!   with an exact RST). In SYN-SENT a RST counts only if it acknowledges our SYN, as smoltcp
//!   checks. Other segments pass; only acceptable ones (RFC 9293 §3.10.7.4) feed the tail-loss
//!   probe and urgent data.
//! - **RCV.NXT** is what smoltcp acknowledges: the acknowledgment number of our last segment
//!   seen leaving (smoltcp acknowledges at once: `set_ack_delay(None)`), or before we sent any
//!   since `accept`, the count: the peer's initial sequence number + 1 + the bytes the
//!   application consumed (urgent data counts them, `urgent`) + the bytes smoltcp holds + 1
//!   once the peer's FIN was taken. A RST matching either is exact.
//! - **A connection waiting in a listen pool** for `accept` (synchronized, not yet in the
//!   table): a RST resets it only at exactly RCV.NXT (the peer's ISN from its admitted SYN,
//!   plus one, plus the bytes smoltcp holds); any other is dropped, without a challenge ACK (the
//!   engine has not seen the pool socket's segments leave, so it knows no SND.NXT for one).
//! - **The challenge ACK** is smoltcp's own: the engine feeds it one octet 2³⁰ behind RCV.NXT
//!   acknowledging SND.UNA (`frames::stale_octet`, as the tail-loss probe feeds it duplicate
//!   ACKs), which smoltcp answers at once with an ACK carrying its SND.NXT, RCV.NXT and window,
//!   sent to the peer's MAC address from its neighbour cache (never to the forger's). At most
//!   one per connection every 500 ms (Linux's `tcp_invalid_ratelimit`) and 1,000 a second for
//!   the stack (Linux's `tcp_challenge_ack_limit`).
//! - **SYNs to a listener** (`syn_admit`): the pool of listening smoltcp sockets is the
//!   backlog. A SYN that finds no idle pool socket takes the place of the oldest half-open one
//!   (SYN-RECEIVED), which is forgotten silently, as a SYN cache evicts (RFC 4987 §3.5), when
//!   that one is older than [`HALF_OPEN_EVICTABLE`] or the listener is under a flood (more SYNs
//!   found its pool full within a second than its backlog holds while handshakes go
//!   unanswered: one stayed half-open for the initial RTO within the last 10 s; Windows' SYN
//!   attack protection and Linux's SYN cookies also switch on at such a threshold). A burst of
//!   real clients answers its SYN-ACKs, so it is never taken for a flood: its excess SYNs are
//!   refused and no handshake under way is evicted (that would reset a client that already
//!   counts itself connected). Under a flood, a
//!   SYN with nothing left to evict is dropped without an answer (the client retries);
//!   otherwise a full backlog still refuses with a RST (Windows, `WSAECONNREFUSED`). A half-open
//!   pool socket is also forgotten after [`SYN_RECEIVED_TIMEOUT`].
//! - **ICMP port unreachable** (`icmp_port_unreachable`): the checksum is checked in `frames`;
//!   the quoted datagram must be one this stack sent in the last [`UDP_SENT_AGE`] (the quoted
//!   source and destination, ports included, as a flow seen leaving), and the socket it is
//!   charged to must own the quoted source (address and port) and, if connected, be connected to
//!   the quoted destination.

use std::collections::HashMap;
use std::net::SocketAddrV4;
use std::time::{Duration, Instant};

use smoltcp::iface::SocketHandle;
use smoltcp::socket::tcp as stcp;
use smoltcp::wire::IpProtocol;

use super::super::frames::{self, Observed, Segment};
use super::super::socket::{Proto, Sock, SocketId, State};
use super::super::wire::Frame;
use super::super::Engine;
use super::{listen_endpoint, synchronized, v4};

/// How long a pool socket may stay half-open (SYN-RECEIVED): Linux's `tcp_synack_retries` 5
/// gives up after 1 + 2 + 4 + 8 + 16 + 32 = 63 s.
pub(crate) const SYN_RECEIVED_TIMEOUT: Duration = Duration::from_secs(63);
/// Half-open pool sockets tracked at most (listen pools hold at most `max_backlog` each).
const MAX_HALF_OPEN_TRACKED: usize = 16 * 1024;
/// A half-open pool socket this old has not been answered within the first SYN-ACK
/// retransmission time (RFC 6298's initial RTO, 1 s): a new SYN may take its place even when
/// the listener is not flooded.
const HALF_OPEN_EVICTABLE: Duration = Duration::from_secs(1);
/// How long a listener that saw a handshake go unanswered counts as flooded.
const FLOOD_MEMORY: Duration = Duration::from_secs(10);
/// Listeners whose overflows are counted at most (more: the counts start over).
const MAX_LISTENERS_TRACKED: usize = 1024;
/// The least time between two challenge ACKs of one connection (Linux's
/// `tcp_invalid_ratelimit`, 500 ms).
const CHALLENGE_INTERVAL: Duration = Duration::from_millis(500);
/// Challenge ACKs per second for the whole stack (Linux's `tcp_challenge_ack_limit`, 1,000).
const CHALLENGES_PER_SECOND: u32 = 1000;
/// UDP flows (source, destination) remembered for matching ICMP errors, and for how long.
pub(crate) const UDP_SENT_MAX: usize = 1024;
pub(crate) const UDP_SENT_AGE: Duration = Duration::from_secs(30);

/// `a` comes after `b` in sequence space (RFC 9293 §3.4, modulo 2³²).
fn seq_gt(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) > 0
}

/// `seq` lies in the window of `wnd` octets starting at `start` (a zero window holds only
/// `start`).
fn in_window(seq: u32, start: u32, wnd: u32) -> bool {
    seq.wrapping_sub(start) < wnd.max(1)
}

/// Engine-wide state of the validation.
#[derive(Debug)]
pub(crate) struct Guard {
    /// Pool sockets seen half-open (SYN-RECEIVED): since when, and with whom.
    half_open: HashMap<SocketHandle, (Instant, Option<SocketAddrV4>)>,
    /// SYNs let through to each listener since smoltcp last ran (they have not taken their pool
    /// socket yet).
    claims: HashMap<SocketId, usize>,
    /// Per listener: the second its pool last overflowed in, how many SYNs found it full, and
    /// when a half-open pool socket last went unanswered for [`HALF_OPEN_EVICTABLE`].
    overflows: HashMap<SocketId, (Instant, u32, Option<Instant>)>,
    /// UDP flows (source, destination) we sent a datagram on, and when.
    udp_sent: HashMap<(SocketAddrV4, SocketAddrV4), Instant>,
    /// The second the stack-wide challenge ACK count is for, and the count.
    challenge_second: Option<Instant>,
    challenges: u32,
}

impl Guard {
    pub(crate) fn new() -> Guard {
        Guard {
            half_open: HashMap::new(),
            claims: HashMap::new(),
            overflows: HashMap::new(),
            udp_sent: HashMap::new(),
            challenge_second: None,
            challenges: 0,
        }
    }

    /// smoltcp ran: the SYNs let through have taken their pool sockets.
    pub(crate) fn polled(&mut self) {
        self.claims.clear();
    }

    /// Half-open pool sockets tracked (bounded by the listen pools).
    pub(crate) fn half_open(&self) -> usize {
        self.half_open.len()
    }

    /// UDP flows remembered (at most [`UDP_SENT_MAX`]).
    pub(crate) fn udp_flows(&self) -> usize {
        self.udp_sent.len()
    }
}

impl Engine {
    /// The `Observe` stage: notes what smoltcp does not report, once the segment or ICMP error
    /// has passed the checks above. `false`: drop the frame before smoltcp sees it.
    pub(crate) fn tcp_validate(&mut self, frame: &Frame) -> bool {
        match frames::observe(frame) {
            Some(Observed::Tcp { local, remote, seg }) => self.tcp_segment_in(local, remote, seg),
            Some(Observed::PortUnreachable { local, remote }) => {
                self.icmp_port_unreachable(local, remote);
                true
            }
            None => true,
        }
    }

    /// RCV.NXT of the connection `id` on smoltcp socket `h` (see the module docs): what our
    /// last segment acknowledged, else the count.
    fn tcp_rcv_nxt(&mut self, id: SocketId, h: SocketHandle) -> Option<u32> {
        let sent = self.table.get(&id).and_then(|s| s.wire.ack);
        sent.or_else(|| self.tcp_rcv_nxt_counted(id, h))
    }

    /// RCV.NXT counted: the peer's ISN + 1 + bytes consumed + bytes queued (+ 1 after its FIN).
    fn tcp_rcv_nxt_counted(&mut self, id: SocketId, h: SocketHandle) -> Option<u32> {
        let base = self.urg_read_pos(id);
        let s = self.sockets.get::<stcp::Socket>(h);
        let fin = matches!(
            s.state(),
            stcp::State::CloseWait
                | stcp::State::LastAck
                | stcp::State::Closing
                | stcp::State::TimeWait
        );
        base.map(|b| {
            b.wrapping_add(s.recv_queue() as u32)
                .wrapping_add(u32::from(fin))
        })
    }

    /// Whether `seg` is acceptable for connection `id` (RFC 9293 §3.10.7.4): its sequence space
    /// meets the receive window and its acknowledgment does not run past what we sent. `true`
    /// when the connection is not synchronized (smoltcp decides alone).
    pub(crate) fn tcp_accepts(&mut self, id: SocketId, seg: &Segment) -> bool {
        let Some((h, st)) = self.tcp_conn_state(id) else {
            return true;
        };
        if !synchronized(st) {
            return true;
        }
        let Some(rcv_nxt) = self.tcp_rcv_nxt(id, h) else {
            return false;
        };
        let s = self.sockets.get::<stcp::Socket>(h);
        let wnd = (s.recv_capacity() - s.recv_queue()) as u32;
        let seq_ok = if seg.seq_end == seg.seq {
            in_window(seg.seq, rcv_nxt, wnd)
        } else {
            in_window(seg.seq, rcv_nxt, wnd)
                || in_window(seg.seq_end.wrapping_sub(1), rcv_nxt, wnd)
                || (seq_gt(rcv_nxt, seg.seq) && seq_gt(seg.seq_end, rcv_nxt))
        };
        let snd_nxt = self.table.get(&id).and_then(|s| s.wire.snd_nxt);
        let ack_ok = match (seg.ack, snd_nxt) {
            (Some(a), Some(n)) => !seq_gt(a, n),
            _ => true,
        };
        seq_ok && ack_ok
    }

    /// The smoltcp socket and state of table connection `id`.
    fn tcp_conn_state(&self, id: SocketId) -> Option<(SocketHandle, stcp::State)> {
        match self.table.get(&id)?.state {
            State::Connecting(h) | State::Connected(h) => {
                Some((h, self.sockets.get::<stcp::Socket>(h).state()))
            }
            _ => None,
        }
    }

    /// A checked TCP segment from `remote` to `local` (see the module docs).
    fn tcp_segment_in(&mut self, local: SocketAddrV4, remote: SocketAddrV4, seg: Segment) -> bool {
        let Some(&id) = self.streams.conns.get(&(local, remote)) else {
            if seg.syn && seg.ack.is_none() && !seg.rst {
                return self.syn_admit(local, remote, seg.seq);
            }
            if seg.rst {
                return self.pool_rst(local, remote, seg.seq);
            }
            return true;
        };
        let Some((h, st)) = self.tcp_conn_state(id) else {
            return true;
        };
        match st {
            stcp::State::Closed | stcp::State::Listen => return true,
            stcp::State::SynSent | stcp::State::SynReceived => {
                // RFC 9293 §3.10.7.3: in SYN-SENT a RST counts only if it acknowledges our SYN
                // (smoltcp checks the same); the engine does not know our ISN otherwise.
                if seg.rst {
                    let isn = self.urg_our_isn(id);
                    let ours = match (isn, seg.ack) {
                        (Some(i), Some(a)) => a == i.wrapping_add(1),
                        (None, Some(_)) => true,
                        (_, None) => false,
                    };
                    if ours && st == stcp::State::SynSent {
                        if let Some(s) = self.table.get_mut(&id) {
                            s.reset = true;
                        }
                    }
                }
                return true;
            }
            _ => {}
        }
        let rcv_nxt = self.tcp_rcv_nxt(id, h);
        if seg.rst || seg.syn {
            // Exact: what our last segment acknowledged, or (data taken since) the count.
            let exact = seg.rst
                && (rcv_nxt == Some(seg.seq) || self.tcp_rcv_nxt_counted(id, h) == Some(seg.seq));
            let s = self.sockets.get::<stcp::Socket>(h);
            let wnd = (s.recv_capacity() - s.recv_queue()) as u32;
            match rcv_nxt {
                _ if exact => {
                    if let Some(s) = self.table.get_mut(&id) {
                        s.reset = true;
                    }
                    return true;
                }
                // RFC 5961 §3.2: in the window, not exact; §4.2: a SYN, anywhere.
                Some(r) if seg.syn || in_window(seg.seq, r, wnd) => {
                    self.challenge_ack(id, local, remote, r);
                }
                _ => {}
            }
            self.stats.tcp_segments_refused += 1;
            return false;
        }
        if self.tcp_accepts(id, &seg) {
            let now = self.now;
            if let Some(s) = self.table.get_mut(&id) {
                s.acks.observe(seg, now);
            }
        }
        true
    }

    /// Queues a challenge ACK (RFC 5961 §7: throttled) for connection `id` on the link.
    fn challenge_ack(
        &mut self,
        id: SocketId,
        local: SocketAddrV4,
        remote: SocketAddrV4,
        rcv_nxt: u32,
    ) {
        let now = self.now;
        let our_isn = self.urg_our_isn(id);
        let g = &mut self.streams.guard;
        if g.challenge_second
            .is_none_or(|t| now.saturating_duration_since(t) >= Duration::from_secs(1))
        {
            g.challenge_second = Some(now);
            g.challenges = 0;
        }
        if g.challenges >= CHALLENGES_PER_SECOND {
            return;
        }
        let Some(s) = self.table.get_mut(&id) else {
            return;
        };
        let w = &mut s.wire;
        if w.last_challenge
            .is_some_and(|t| now.saturating_duration_since(t) < CHALLENGE_INTERVAL)
        {
            return;
        }
        // SND.UNA: the peer's last acknowledgment seen, else our SYN's (nothing sent since).
        let Some(una) = s.acks.ack.or(our_isn.map(|i| i.wrapping_add(1))) else {
            return;
        };
        w.last_challenge = Some(now);
        let window = s.acks.window;
        self.streams.guard.challenges += 1;
        self.stats.tcp_challenge_acks += 1;
        // 2³⁰ behind RCV.NXT: outside any window, however RCV.NXT moved meanwhile, so smoltcp
        // takes no data from it and answers with its ACK (as the tail-loss probe feeds it).
        let seq = rcv_nxt.wrapping_sub(1 << 30);
        let f = frames::stale_octet(self.mac, local, remote, seq, una, window);
        self.device.rx.push_back(f);
    }

    /// An egress frame: notes what our segments say (`PeerWire`) and the UDP flows we send on.
    pub(crate) fn tcp_egress_note(&mut self, frame: &Frame) {
        match frame.protocol() {
            Some(IpProtocol::Tcp) => {}
            Some(IpProtocol::Udp) => {
                if let (Some(src), Some(dst), true) =
                    (frame.src(), frame.dst(), frame.ports().is_some())
                {
                    self.note_udp_flow(src, dst);
                }
                return;
            }
            _ => return,
        }
        let (Some(seg), Some(src), Some(dst)) = (frame.segment(), frame.src(), frame.dst()) else {
            return;
        };
        if seg.rst {
            return;
        }
        let Some(&id) = self.streams.conns.get(&(src, dst)) else {
            return;
        };
        let Some(s) = self.table.get_mut(&id) else {
            return;
        };
        let w = &mut s.wire;
        if w.snd_nxt.is_none_or(|n| seq_gt(seg.seq_end, n)) {
            w.snd_nxt = Some(seg.seq_end);
        }
        if seg.ack.is_some() {
            w.ack = seg.ack;
        }
    }

    fn note_udp_flow(&mut self, src: SocketAddrV4, dst: SocketAddrV4) {
        let now = self.now;
        let flows = &mut self.streams.guard.udp_sent;
        if flows.len() >= UDP_SENT_MAX && !flows.contains_key(&(src, dst)) {
            flows.retain(|_, t| now.saturating_duration_since(*t) < UDP_SENT_AGE);
            if flows.len() >= UDP_SENT_MAX {
                // Still full of live flows: forget the oldest half.
                let mut ts: Vec<Instant> = flows.values().copied().collect();
                ts.sort_unstable();
                let cut = ts[ts.len() / 2];
                flows.retain(|_, t| *t > cut);
            }
        }
        flows.insert((src, dst), now);
    }

    /// An ICMP port unreachable quoting a UDP datagram from `local` to `remote` (checksum
    /// already checked): `WSAECONNRESET` for the socket that sent it, if any did.
    fn icmp_port_unreachable(&mut self, local: SocketAddrV4, remote: SocketAddrV4) {
        let sent = self
            .streams
            .guard
            .udp_sent
            .get(&(local, remote))
            .is_some_and(|t| self.now.saturating_duration_since(*t) < UDP_SENT_AGE);
        if !sent {
            self.stats.icmp_ignored += 1;
            return;
        }
        let ids: Vec<_> = self.ports.holders(Proto::Udp, local.port()).collect();
        let mut hit = false;
        for id in ids {
            let Some(s) = self.table.get_mut(&id) else {
                continue;
            };
            let name = s.bound.unwrap_or(SocketAddrV4::new([0, 0, 0, 0].into(), 0));
            let addr_ok = name.port() == local.port()
                && (name.ip().is_unspecified() || name.ip() == local.ip());
            let peer_ok = s.peer.is_none_or(|p| p == remote);
            if addr_ok && peer_ok {
                s.icmp_unreachable = true;
                hit = true;
            }
        }
        if !hit {
            self.stats.icmp_ignored += 1;
        }
    }

    /// The listening socket whose pool takes connections to `local`.
    fn listener_for(&self, local: SocketAddrV4) -> Option<SocketId> {
        self.streams.listeners.iter().copied().find(|id| {
            matches!(
                self.table.get(id),
                Some(Sock { state: State::Listening(_), bound: Some(b), .. })
                    if b.port() == local.port() && (b.ip().is_unspecified() || b.ip() == local.ip())
            )
        })
    }

    /// A RST from `remote` to `local` with no connection in the table: for a connection that
    /// completed its handshake and waits in a listen pool for `accept`, RFC 5961 §3.2 as for
    /// any synchronized connection, except that an inexact RST is dropped without a challenge
    /// ACK (the engine has not seen the pool socket's segments leave). `false`: drop it.
    fn pool_rst(&mut self, local: SocketAddrV4, remote: SocketAddrV4, seq: u32) -> bool {
        let Some(lid) = self.listener_for(local) else {
            return true;
        };
        let Some(Sock {
            state: State::Listening(l),
            ..
        }) = self.table.get(&lid)
        else {
            return true;
        };
        let pooled = l.pool.iter().copied().find(|&h| {
            let s = self.sockets.get::<stcp::Socket>(h);
            s.remote_endpoint().map(v4) == Some(remote) && synchronized(s.state())
        });
        let Some(h) = pooled else {
            return true;
        };
        let Some(isn) = self.urg_pre_peer_isn(local, remote) else {
            return true;
        };
        let s = self.sockets.get::<stcp::Socket>(h);
        let fin = matches!(s.state(), stcp::State::CloseWait | stcp::State::LastAck);
        let rcv_nxt = isn
            .wrapping_add(1)
            .wrapping_add(s.recv_queue() as u32)
            .wrapping_add(u32::from(fin));
        if seq == rcv_nxt {
            return true;
        }
        self.stats.tcp_segments_refused += 1;
        false
    }

    /// A SYN from `remote` to `local` with no connection in the table: makes room in the
    /// listener's pool for it (see the module docs). `false`: drop it unanswered.
    fn syn_admit(&mut self, local: SocketAddrV4, remote: SocketAddrV4, isn: u32) -> bool {
        let Some(lid) = self.listener_for(local) else {
            return true;
        };
        let Some(Sock {
            state: State::Listening(l),
            ..
        }) = self.table.get(&lid)
        else {
            return true;
        };
        let (mut free, mut half) = (0usize, Vec::new());
        for &h in &l.pool {
            let s = self.sockets.get::<stcp::Socket>(h);
            match s.state() {
                stcp::State::Listen => free += 1,
                st => {
                    if s.remote_endpoint().map(v4) == Some(remote) {
                        // A retransmitted SYN of a handshake under way: smoltcp answers it.
                        return true;
                    }
                    if st == stcp::State::SynReceived {
                        half.push(h);
                    }
                }
            }
        }
        let claims = self.streams.guard.claims.get(&lid).copied().unwrap_or(0);
        if claims < free {
            self.admitted(lid, local, remote, isn);
            return true;
        }
        // The pool is full: count the overflow.
        let now = self.now;
        let backlog = l.backlog;
        let g = &mut self.streams.guard;
        if g.overflows.len() > MAX_LISTENERS_TRACKED && !g.overflows.contains_key(&lid) {
            g.overflows.clear();
        }
        let o = g.overflows.entry(lid).or_insert((now, 0, None));
        if now.saturating_duration_since(o.0) >= Duration::from_secs(1) {
            (o.0, o.1) = (now, 0);
        }
        o.1 += 1;
        let oldest = half
            .into_iter()
            .map(|h| (g.half_open.get(&h).map_or(now, |e| e.0), h))
            .min_by_key(|e| e.0);
        let unanswered = oldest
            .is_some_and(|(since, _)| now.saturating_duration_since(since) >= HALF_OPEN_EVICTABLE);
        if unanswered {
            o.2 = Some(now);
        }
        // A flood: more SYNs than the backlog found the pool full within a second, *and*
        // handshakes go unanswered (one stayed half-open for the initial RTO in the last
        // `FLOOD_MEMORY`). A burst of real clients completes its handshakes: its excess SYNs
        // are refused as a full backlog is, and no handshake under way is evicted.
        let flood = o.1 as usize > backlog
            && o.2
                .is_some_and(|t| now.saturating_duration_since(t) < FLOOD_MEMORY);
        if let Some((_, h)) = oldest {
            if flood || unanswered {
                self.stats.syn_evicted += 1;
                self.replace_pool_socket(lid, h);
                self.admitted(lid, local, remote, isn);
                return true;
            }
        }
        if flood {
            // No state, no answer: the client retries.
            self.stats.syn_dropped += 1;
            return false;
        }
        // A full backlog of young handshakes and completed connections: smoltcp refuses with a
        // RST (Windows' full backlog, `WSAECONNREFUSED`).
        true
    }

    fn admitted(&mut self, lid: SocketId, local: SocketAddrV4, remote: SocketAddrV4, isn: u32) {
        *self.streams.guard.claims.entry(lid).or_insert(0) += 1;
        self.urg_pre_syn(local, remote, isn);
    }

    /// Forgets pool socket `h` of listener `lid` (no RST: a half-open connection is dropped
    /// silently, as a SYN cache does) and puts an idle listening socket in its place.
    pub(crate) fn replace_pool_socket(&mut self, lid: SocketId, h: SocketHandle) {
        let Some(Sock {
            state: State::Listening(l),
            bound,
            opts,
            ..
        }) = self.table.get_mut(&lid)
        else {
            return;
        };
        let (Some(bound), opts) = (*bound, *opts) else {
            return;
        };
        l.pool.retain(|p| *p != h);
        l.ready.retain(|p| *p != h);
        let s = self.sockets.get::<stcp::Socket>(h);
        if let (Some(a), Some(b)) = (s.local_endpoint(), s.remote_endpoint()) {
            self.urg_pre_forget(v4(a), v4(b));
        }
        self.sockets.remove(h);
        self.streams.guard.half_open.remove(&h);
        let fresh = self.new_tcp_socket(&opts);
        let _ = self.tcp(fresh).listen(listen_endpoint(bound));
        if let Some(Sock {
            state: State::Listening(l),
            ..
        }) = self.table.get_mut(&lid)
        {
            l.pool.push(fresh);
        }
    }

    /// Notes how long pool socket `h` has been half-open; `true` once past
    /// [`SYN_RECEIVED_TIMEOUT`].
    pub(crate) fn half_open_expired(&mut self, h: SocketHandle, half_open: bool) -> bool {
        let remote = self
            .sockets
            .get::<stcp::Socket>(h)
            .remote_endpoint()
            .map(v4);
        let g = &mut self.streams.guard;
        if !half_open {
            g.half_open.remove(&h);
            return false;
        }
        if g.half_open.len() >= MAX_HALF_OPEN_TRACKED && !g.half_open.contains_key(&h) {
            // Handles of pools gone meanwhile: start over (live ones are noted again at once).
            g.half_open.clear();
        }
        let now = self.now;
        let e = g.half_open.entry(h).or_insert((now, remote));
        if e.1 != remote {
            // The handle was reused for another connection.
            *e = (now, remote);
        }
        now.saturating_duration_since(e.0) > SYN_RECEIVED_TIMEOUT
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_wrap() {
        assert!(in_window(5, 5, 0), "a zero window holds RCV.NXT alone");
        assert!(!in_window(6, 5, 0));
        assert!(in_window(3, u32::MAX - 2, 10));
        assert!(!in_window(u32::MAX - 3, u32::MAX - 2, 10));
        assert!(!in_window(5u32.wrapping_add(1 << 30), 5, 65535));
    }
}
