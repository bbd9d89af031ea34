//! TCP urgent data (`MSG_OOB`, `SO_OOBINLINE`, `SIOCATMARK`, `FD_OOB`, exceptfds) above smoltcp.
//!
//! Read first: CHECKLIST §1.15 (out-of-band data), D-21, D-22 and Appendix C; RFC 9293 §3.8.5
//! and RFC 6093 (the urgent mechanism). smoltcp ignores URG and the urgent pointer entirely, so
//! the engine adds them at frame level, where it sees every segment in and out:
//!
//! - **Sequence bookkeeping.** Each connection's initial sequence numbers (ours and the peer's)
//!   are read off the SYNs as they pass (`ingress`/`flush`); SYNs of a connection still in a
//!   listen pool wait in [`Tracker::pre`] until the socket is accepted. `tcp_send` and
//!   `tcp_recv` count the bytes queued and consumed, so the sequence number of the next byte to
//!   send and of the next byte the application reads are always known.
//! - **Interpretation** (D-22): BSD's, as Windows and Linux (`tcp_stdurg` = 0): the urgent
//!   pointer is the offset, from the segment's sequence number, of the byte *after* the urgent
//!   byte. Only the last byte of a `send(MSG_OOB)` is urgent (the OOB block is one byte).
//! - **Send.** `send(MSG_OOB)` queues its bytes in smoltcp like any others and records the
//!   sequence number just past them (`snd_up`). Every outgoing segment of the connection whose
//!   sequence number precedes `snd_up` — first transmissions, retransmissions and pure ACKs
//!   alike, since the rewrite goes by sequence number — leaves with URG set and the pointer
//!   `snd_up - seq` (0xFFFF when farther, as Linux does), its checksum recomputed, until the
//!   peer acknowledges `snd_up`. The rewrite happens in `flush`, before the QoS shaper and
//!   before local delivery.
//! - **Receive.** A segment with URG and a pointer beyond any seen before names a new urgent
//!   byte (retransmissions and the sender's repeated pointers name the same one). What happens
//!   depends on `SO_OOBINLINE` when it arrives:
//!   - *out of line* (the default): the byte is taken from the segment (once one carrying it
//!     passes with a valid checksum) and held for `recv(MSG_OOB)`; its place in the stream is
//!     remembered and the byte is dropped from smoltcp's queue when the read position reaches
//!     it, so plain receives never return it (497). A newer urgent byte replaces an unread one,
//!     which is lost (502, BSD). `FD_OOB` and exceptfds report a held byte (247, 281);
//!   - *inline*: the byte stays in the stream and only the mark matters (503); a plain receive
//!     stops before the mark and returns the urgent byte alone (499, 501); data is simply
//!     readable (248, 282).
//! - **`SIOCATMARK`** (D-21): TRUE unless urgent data is pending — out of line, a byte not yet
//!   read with `MSG_OOB` (or announced and not yet arrived); inline, a mark the read position
//!   has not passed.
//!
//! A connection still in a listen pool has no socket yet: its SYNs and newest urgent pointer
//! (with the byte, when it passes) wait in [`Tracker::pre`] and are taken over on `accept`.
//! Should an announced byte not be seen in a segment, it is read from smoltcp's queue once it
//! is there.
//!
//! Only segments that are acceptable for the connection count (issue 13; RFC 9293 §3.10.7.4,
//! `tcp::validate`): an urgent pointer, or the urgent byte, in a segment outside the receive
//! window (or acknowledging what we never sent) is ignored, so a forged segment cannot move the
//! mark past the next real urgent byte; the peer's ISN comes only from the SYN of a listener's
//! new connection (`tcp::validate` admits it) or from the SYN-ACK acknowledging our SYN, never
//! from a SYN on a synchronized connection (those never get here). At most [`MAX_SKIPS`]
//! urgent bytes are held out of the stream, in sequence order, so a receive looks at the first
//! only; [`Tracker::pre`] holds at most [`MAX_PRE`] connections.
//!
//! Limit: `FIONREAD` counts an out-of-line urgent byte still ahead of the read position.

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::SocketAddrV4;

use smoltcp::socket::tcp as stcp;

use super::lifecycle::{SocketId, State};
use super::wire::Frame;
use super::Engine;
use crate::error::WsaError;

/// Connections in listen pools whose SYNs we saw (they are only needed until `accept`). At the
/// bound, entries of connections no pool holds any more are pruned; if the pools themselves
/// hold more, a new entry is not kept.
pub(crate) const MAX_PRE: usize = 4096;
/// How far past the peer's ISN an urgent pointer of a connection still in a listen pool may
/// point (as large as the largest receive buffer, `SO_RCVBUF` 16 MiB).
const PRE_REACH: u32 = 16 << 20;
/// Out-of-line urgent bytes kept out of the stream at once (issue 13). Past it the oldest is
/// left in the stream, read as ordinary data (Linux keeps one: `tp->urg_seq`).
pub(crate) const MAX_SKIPS: usize = 64;

/// A smoltcp endpoint as an IPv4 socket address.
fn v4(ep: smoltcp::wire::IpEndpoint) -> SocketAddrV4 {
    let smoltcp::wire::IpAddress::Ipv4(a) = ep.addr;
    SocketAddrV4::new(a, ep.port)
}

/// `a` comes after `b` in sequence space (RFC 9293 §3.4, modulo 2³²).
fn seq_gt(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) > 0
}

/// The initial sequence numbers of a connection not yet in the socket table.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Pre {
    peer_isn: Option<u32>,
    our_isn: Option<u32>,
    /// The newest urgent byte's sequence number, announced before `accept`.
    urg: Option<u32>,
    /// That byte, if a segment carrying it passed.
    byte: Option<u8>,
}

/// Engine-wide urgent-data state.
#[derive(Debug, Default)]
pub(crate) struct Tracker {
    /// SYNs of connections the socket table does not know yet, by (local, remote).
    pre: HashMap<(SocketAddrV4, SocketAddrV4), Pre>,
    /// Sockets with an urgent pointer to send (their egress segments are rewritten).
    senders: HashSet<SocketId>,
}

/// One TCP socket's urgent-data state.
#[derive(Debug, Clone, Default)]
pub(crate) struct UrgState {
    /// The peer's initial sequence number.
    peer_isn: Option<u32>,
    /// Our initial sequence number.
    our_isn: Option<u32>,
    /// Bytes the application consumed from the stream (urgent bytes dropped from it included),
    /// modulo 2³².
    consumed: u32,
    /// Bytes queued for sending, modulo 2³².
    queued: u32,
    /// Send: sequence number just past our last urgent byte, until the peer acknowledges it.
    snd_up: Option<u32>,
    /// Receive: the newest urgent byte's sequence number ever seen.
    last_urg: Option<u32>,
    /// Receive: the newest urgent byte's sequence number until the read position passes it.
    mark: Option<u32>,
    /// Whether `mark` arrived with `SO_OOBINLINE` off.
    out_of_line: bool,
    /// Out of line: sequence numbers of urgent bytes to drop from the stream, oldest first.
    skips: VecDeque<u32>,
    /// Out of line: the urgent byte held for `recv(MSG_OOB)`.
    oob: Option<u8>,
    /// Out of line: an urgent pointer arrived whose byte has not (yet).
    awaiting: bool,
}

impl UrgState {
    /// Sequence number of the next byte the application reads.
    fn read_pos(&self) -> Option<u32> {
        self.peer_isn
            .map(|i| i.wrapping_add(1).wrapping_add(self.consumed))
    }

    /// Takes in an urgent byte at `at` announced by the peer; `oobinline` as it is now.
    fn announce(&mut self, at: u32, oobinline: bool) {
        let Some(read) = self.read_pos() else { return };
        let new = !seq_gt(read, at) && self.last_urg.is_none_or(|l| seq_gt(at, l));
        if !new {
            return;
        }
        self.last_urg = Some(at);
        self.mark = Some(at);
        self.out_of_line = !oobinline;
        if !oobinline {
            // An unread urgent byte is replaced (and stays out of the stream). Positions are
            // pushed in sequence order (`at` is newer than any before).
            self.oob = None;
            self.awaiting = true;
            if self.skips.len() >= MAX_SKIPS {
                self.skips.pop_front();
            }
            self.skips.push_back(at);
        }
    }

    /// Whether urgent data is pending (`SIOCATMARK` FALSE).
    fn pending(&self) -> bool {
        if self.out_of_line {
            self.oob.is_some() || self.awaiting
        } else {
            self.mark.is_some()
        }
    }
}

impl Engine {
    /// Takes in an ingress frame; for a TCP segment (`local` ↔ `remote`, with its socket if the
    /// table has one): initial sequence numbers, acknowledgment of our urgent pointer, a new
    /// urgent pointer, the awaited urgent byte.
    pub(crate) fn urg_ingress(&mut self, frame: &Frame) {
        let (Some(seg), Some(local), Some(remote)) = (frame.segment(), frame.dst(), frame.src())
        else {
            return;
        };
        if seg.rst || frame.fragment().is_some() {
            return;
        }
        // SYNs and urgent pointers are rare; a corrupted one (which smoltcp drops) must not
        // count either.
        if (seg.syn || seg.urg.is_some()) && !frame.tcp_checksum_ok() {
            return;
        }
        let id = self.streams.conns.get(&(local, remote)).copied();
        let Some(id) = id else {
            // (A listener's new SYN was noted by `tcp::validate`, which admitted it.)
            if let Some(p) = self.urgent.pre.get_mut(&(local, remote)) {
                // A connection in a listen pool: keep its urgent byte until `accept`. Its
                // window is not known here; the pointer must lie within [`PRE_REACH`] of the
                // peer's ISN and the segment start after it.
                if let (Some(ptr), Some(isn)) = (seg.urg, p.peer_isn) {
                    let at = seg.seq.wrapping_add(u32::from(ptr)).wrapping_sub(1);
                    let near = at.wrapping_sub(isn) <= PRE_REACH && seq_gt(seg.seq, isn);
                    if ptr > 0 && near && seq_gt(at, isn) && p.urg.is_none_or(|l| seq_gt(at, l)) {
                        p.urg = Some(at);
                        p.byte = None;
                    }
                }
                if let (Some(at), None) = (p.urg, p.byte) {
                    p.byte = urgent_byte(frame, at.wrapping_sub(seg.seq) as usize);
                }
            }
            return;
        };
        self.urg_adopt(id);
        let oobinline = match self.table.get(&id) {
            Some(s) => s.opts.oobinline,
            None => return,
        };
        if seg.syn {
            // Only the SYN-ACK that acknowledges our SYN names the peer's ISN (RFC 9293
            // §3.10.7.3); a SYN on a synchronized connection never reaches this stage.
            let Some(u) = self.table.get_mut(&id).map(|s| &mut s.urg) else {
                return;
            };
            if u.peer_isn.is_none()
                && u.our_isn.is_some()
                && seg.ack == u.our_isn.map(|i| i.wrapping_add(1))
            {
                u.peer_isn = Some(seg.seq);
            }
            return;
        }
        if !self.tcp_accepts(id, &seg) {
            return;
        }
        let Some(u) = self.table.get_mut(&id).map(|s| &mut s.urg) else {
            return;
        };
        if let (Some(up), Some(ack)) = (u.snd_up, seg.ack) {
            if !seq_gt(up, ack) {
                u.snd_up = None;
                self.urgent.senders.remove(&id);
            }
        }
        let Some(u) = self.table.get_mut(&id).map(|s| &mut s.urg) else {
            return;
        };
        if u.peer_isn.is_none() {
            return;
        }
        match seg.urg {
            // BSD: the urgent byte precedes seq + pointer; a zero pointer names nothing.
            Some(ptr) if ptr > 0 && !seg.syn => {
                u.announce(
                    seg.seq.wrapping_add(u32::from(ptr)).wrapping_sub(1),
                    oobinline,
                );
            }
            _ => {}
        }
        let u = match self.table.get(&id) {
            Some(s) if s.urg.awaiting => &s.urg,
            _ => return,
        };
        let Some(at) = u.mark else { return };
        let off = at.wrapping_sub(seg.seq) as usize;
        if let Some(b) = urgent_byte(frame, off) {
            if let Some(s) = self.table.get_mut(&id) {
                s.urg.oob = Some(b);
                s.urg.awaiting = false;
            }
        }
    }

    /// Takes in an egress frame: notes our SYN's sequence number and sets URG and the urgent
    /// pointer on segments of connections with urgent data in flight.
    pub(crate) fn urg_egress(&mut self, frame: &mut Frame) {
        let (Some(seg), Some(src), Some(dst)) = (frame.segment(), frame.src(), frame.dst()) else {
            return;
        };
        if seg.rst {
            return;
        }
        let id = self.streams.conns.get(&(src, dst)).copied();
        if seg.syn {
            match id.and_then(|id| self.table.get_mut(&id)) {
                Some(s) => s.urg.our_isn = Some(seg.seq),
                None => {
                    if self.urg_pre_room(src, dst) {
                        self.urgent.pre.entry((src, dst)).or_default().our_isn = Some(seg.seq);
                    }
                }
            }
            return;
        }
        if self.urgent.senders.is_empty() {
            return;
        }
        let Some(id) = id.filter(|id| self.urgent.senders.contains(id)) else {
            return;
        };
        let Some(up) = self.table.get(&id).and_then(|s| s.urg.snd_up) else {
            self.urgent.senders.remove(&id);
            return;
        };
        mark_urgent(frame, up);
    }

    /// Fills a table socket's initial sequence numbers from the SYNs seen before it was
    /// accepted.
    pub(crate) fn urg_adopt(&mut self, id: SocketId) {
        let Some(s) = self.table.get(&id) else { return };
        if s.urg.peer_isn.is_some() && s.urg.our_isn.is_some() {
            return;
        }
        let (Some(l), Some(r)) = (s.local, s.peer) else {
            return;
        };
        let Some(pre) = self.urgent.pre.remove(&(l, r)) else {
            return;
        };
        if let Some(s) = self.table.get_mut(&id) {
            s.urg.peer_isn = s.urg.peer_isn.or(pre.peer_isn);
            s.urg.our_isn = s.urg.our_isn.or(pre.our_isn);
            if let Some(at) = pre.urg {
                s.urg.announce(at, s.opts.oobinline);
                if s.urg.awaiting && s.urg.mark == Some(at) {
                    s.urg.oob = pre.byte;
                    s.urg.awaiting = pre.byte.is_none();
                }
            }
        }
    }

    /// Sequence number of the next byte the application of table socket `id` reads (its
    /// peer's ISN + 1 + what it consumed), once the peer's ISN is known.
    pub(crate) fn urg_read_pos(&mut self, id: SocketId) -> Option<u32> {
        if self
            .table
            .get(&id)
            .is_some_and(|s| s.urg.peer_isn.is_none() || s.urg.our_isn.is_none())
        {
            self.urg_adopt(id);
        }
        self.table.get(&id)?.urg.read_pos()
    }

    /// Our initial sequence number on table socket `id`, if our SYN was seen.
    pub(crate) fn urg_our_isn(&self, id: SocketId) -> Option<u32> {
        self.table.get(&id)?.urg.our_isn
    }

    /// A listener admitted a new connection's SYN (`tcp::validate`): its ISN, until `accept`.
    pub(crate) fn urg_pre_syn(&mut self, local: SocketAddrV4, remote: SocketAddrV4, isn: u32) {
        if self.urg_pre_room(local, remote) {
            self.urgent.pre.insert(
                (local, remote),
                Pre {
                    peer_isn: Some(isn),
                    ..Pre::default()
                },
            );
        }
    }

    /// The peer's ISN of a connection still in a listen pool, if its SYN was admitted.
    pub(crate) fn urg_pre_peer_isn(
        &self,
        local: SocketAddrV4,
        remote: SocketAddrV4,
    ) -> Option<u32> {
        self.urgent.pre.get(&(local, remote))?.peer_isn
    }

    /// A pool connection was forgotten (`tcp::validate`).
    pub(crate) fn urg_pre_forget(&mut self, local: SocketAddrV4, remote: SocketAddrV4) {
        self.urgent.pre.remove(&(local, remote));
    }

    /// Whether [`Tracker::pre`] may hold (`local`, `remote`): at [`MAX_PRE`], entries of
    /// connections no listen pool holds any more are pruned first.
    fn urg_pre_room(&mut self, local: SocketAddrV4, remote: SocketAddrV4) -> bool {
        if self.urgent.pre.len() < MAX_PRE || self.urgent.pre.contains_key(&(local, remote)) {
            return true;
        }
        let mut live = HashSet::new();
        for id in &self.streams.listeners {
            if let Some(State::Listening(l)) = self.table.get(id).map(|s| &s.state) {
                for &h in &l.pool {
                    let s = self.sockets.get::<stcp::Socket>(h);
                    if let (Some(a), Some(b)) = (s.local_endpoint(), s.remote_endpoint()) {
                        live.insert((v4(a), v4(b)));
                    }
                }
            }
        }
        self.urgent.pre.retain(|k, _| live.contains(k));
        self.urgent.pre.len() < MAX_PRE
    }

    /// Entries in [`Tracker::pre`] and out-of-line urgent positions held by all sockets.
    pub(crate) fn urg_sizes(&self) -> (usize, usize) {
        let skips = self.table.values().map(|s| s.urg.skips.len()).sum();
        (self.urgent.pre.len(), skips)
    }

    /// Counts bytes `tcp_send` queued.
    pub(crate) fn urg_queued(&mut self, id: SocketId, n: usize) {
        if let Some(s) = self.table.get_mut(&id) {
            s.urg.queued = s.urg.queued.wrapping_add(n as u32);
        }
    }

    /// `send(MSG_OOB)` queued its bytes: the last byte queued so far is urgent.
    pub(crate) fn urg_mark_sent(&mut self, id: SocketId) -> Result<(), WsaError> {
        self.urg_adopt(id);
        let s = self.sock(id)?;
        let Some(isn) = s.urg.our_isn else {
            // Our SYN was never seen (cannot happen for a connection made by this engine).
            return Err(WsaError::WSAEOPNOTSUPP);
        };
        s.urg.snd_up = Some(isn.wrapping_add(1).wrapping_add(s.urg.queued));
        self.urgent.senders.insert(id);
        self.wake = true;
        Ok(())
    }

    /// Drops out-of-line urgent bytes at the read position from smoltcp's queue (and reads an
    /// awaited urgent byte that reached the queue without passing `urg_ingress`, as before
    /// `accept`).
    fn urg_settle(&mut self, id: SocketId) {
        if self
            .table
            .get(&id)
            .is_some_and(|s| s.urg.peer_isn.is_none())
        {
            self.urg_adopt(id);
        }
        if let Some(s) = self.table.get(&id) {
            if let (State::Connected(h), true, Some(at), Some(read)) =
                (&s.state, s.urg.awaiting, s.urg.mark, s.urg.read_pos())
            {
                let h = *h;
                let dist = at.wrapping_sub(read) as usize;
                let t = self.sockets.get_mut::<stcp::Socket>(h);
                if !seq_gt(read, at) && t.recv_queue() > dist {
                    let mut upto = vec![0u8; dist + 1];
                    if t.peek_slice(&mut upto) == Ok(dist + 1) {
                        if let Some(s) = self.table.get_mut(&id) {
                            s.urg.oob = upto.last().copied();
                            s.urg.awaiting = false;
                        }
                    }
                }
            }
        }
        loop {
            let Some(s) = self.table.get_mut(&id) else {
                return;
            };
            let State::Connected(h) = s.state else { return };
            let Some(read) = s.urg.read_pos() else { return };
            while s.urg.skips.front().is_some_and(|&k| seq_gt(read, k)) {
                s.urg.skips.pop_front();
            }
            if s.urg.skips.front() != Some(&read) {
                return;
            }
            let t = self.sockets.get_mut::<stcp::Socket>(h);
            if t.recv_queue() == 0 || !matches!(t.recv_slice(&mut [0u8; 1]), Ok(1)) {
                return;
            }
            self.wake = true;
            let Some(s) = self.table.get_mut(&id) else {
                return;
            };
            s.urg.consumed = s.urg.consumed.wrapping_add(1);
            s.urg.skips.pop_front();
            if s.urg.mark == Some(read) && s.urg.oob.is_none() && !s.urg.awaiting {
                s.urg.mark = None;
            }
        }
    }

    /// How many bytes a plain receive may return now (`None`: no limit): never across the
    /// mark or an out-of-line urgent byte, and inline the urgent byte alone (499, 501).
    pub(crate) fn urg_recv_limit(&mut self, id: SocketId) -> Option<usize> {
        self.urg_settle(id);
        let u = &self.table.get(&id)?.urg;
        let read = u.read_pos()?;
        // `urg_settle` left no skip behind the read position, and skips are in sequence
        // order: the first is the nearest.
        let stops = u
            .skips
            .front()
            .into_iter()
            .chain(u.mark.iter().filter(|_| !u.out_of_line))
            .map(|&k| k.wrapping_sub(read) as i32)
            .filter(|&d| d >= 0);
        stops.min().map(|d| (d as usize).max(1))
    }

    /// A plain receive consumed `n` bytes.
    pub(crate) fn urg_consumed(&mut self, id: SocketId, n: usize) {
        let Some(s) = self.table.get_mut(&id) else {
            return;
        };
        s.urg.consumed = s.urg.consumed.wrapping_add(n as u32);
        if let (Some(read), Some(mark)) = (s.urg.read_pos(), s.urg.mark) {
            if !s.urg.out_of_line && seq_gt(read, mark) {
                s.urg.mark = None;
            }
        }
        self.urg_settle(id);
    }

    /// `recv(MSG_OOB)`: the held urgent byte (`Ok(None)`: announced, not yet arrived);
    /// `WSAEINVAL` when none is pending (505) or `SO_OOBINLINE` is on (500).
    pub(crate) fn tcp_recv_oob(
        &mut self,
        id: SocketId,
        buf: &mut [u8],
        peek: bool,
    ) -> Result<Option<usize>, WsaError> {
        let s = self.sock(id)?;
        if !matches!(s.state, State::Connected(_)) {
            return Err(WsaError::WSAENOTCONN);
        }
        if s.opts.oobinline {
            return Err(WsaError::WSAEINVAL);
        }
        let u = &mut s.urg;
        match u.oob {
            Some(b) if !buf.is_empty() => {
                buf[0] = b;
                if !peek {
                    u.oob = None;
                    // The mark is the newest urgent byte: the last skip, if still ahead.
                    let passed = u.mark.is_some_and(|m| u.skips.back() != Some(&m));
                    if passed {
                        u.mark = None;
                    }
                }
                Ok(Some(1))
            }
            Some(_) => Err(WsaError::WSAEFAULT),
            None if u.awaiting && s.reset => Err(WsaError::WSAECONNRESET),
            None if u.awaiting => Ok(None),
            None => Err(WsaError::WSAEINVAL),
        }
    }

    /// `SIOCATMARK` (D-21): TRUE unless urgent data is pending.
    pub(crate) fn tcp_at_mark(&mut self, id: SocketId) -> Result<bool, WsaError> {
        self.urg_settle(id);
        Ok(!self.sock(id)?.urg.pending())
    }

    /// Whether an out-of-line urgent byte waits for `recv(MSG_OOB)` (FD_OOB, exceptfds).
    pub(crate) fn urg_oob_ready(&mut self, id: SocketId) -> bool {
        self.urg_settle(id);
        self.table
            .get(&id)
            .is_some_and(|s| s.urg.out_of_line && s.urg.oob.is_some())
    }
}

/// Sets URG and the urgent pointer for `up` (the sequence number just past the urgent byte)
/// on the egress segment in `frame`, if its sequence number precedes `up`; 0xFFFF when `up` is
/// farther than that (as Linux does). Returns whether it did.
fn mark_urgent(frame: &mut Frame, up: u32) -> bool {
    let (Some(seg), Some(src), Some(dst)) = (frame.segment(), frame.src_addr(), frame.dst_addr())
    else {
        return false;
    };
    if !seq_gt(up, seg.seq) || seg.ack.is_none() || seg.syn || seg.rst {
        return false;
    }
    let ptr = up.wrapping_sub(seg.seq).min(0xffff) as u16;
    let Some(mut tcp) = frame.tcp_mut() else {
        return false;
    };
    tcp.set_urg(true);
    tcp.set_urgent_at(ptr);
    tcp.fill_checksum(&src.into(), &dst.into());
    true
}

/// The payload byte at `off` of the TCP segment in `frame`, if the segment has it and its
/// checksum is right (smoltcp drops it otherwise).
fn urgent_byte(frame: &Frame, off: usize) -> Option<u8> {
    let (ip, tcp) = (frame.ipv4()?, frame.tcp()?);
    let b = *tcp.payload().get(off)?;
    tcp.verify_checksum(&ip.src_addr().into(), &ip.dst_addr().into())
        .then_some(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequence_comparison_wraps() {
        assert!(seq_gt(1, 0));
        assert!(seq_gt(3, u32::MAX - 2));
        assert!(!seq_gt(u32::MAX - 2, 3));
        assert!(!seq_gt(5, 5));
    }

    /// A pure ACK from `remote` to `local` with sequence number `seq`, as an egress frame.
    fn segment(seq: u32) -> Vec<u8> {
        let (local, remote) = (
            "10.0.0.2:4000".parse().unwrap(),
            "10.0.0.1:80".parse().unwrap(),
        );
        super::super::frames::dup_ack([2, 0, 0, 0, 0, 2], local, remote, seq, 1000, 512)
    }

    #[test]
    fn egress_rewrite_sets_the_bsd_pointer() {
        for (seq, up, want) in [
            (100u32, 101u32, Some(1u16)),
            (u32::MAX - 1, 3, Some(5)),
            (100, 100, None),
            (100, 99, None),
            (0, 70_000, Some(0xffff)),
        ] {
            let mut f = Frame::parse(segment(seq));
            assert_eq!(f.segment().expect("a TCP segment").seq, seq);
            assert_eq!(mark_urgent(&mut f, up), want.is_some(), "seq {seq} up {up}");
            // Read back from the octets, not the view that wrote them.
            let f = Frame::parse(f.into_inner());
            assert!(f.tcp_checksum_ok());
            assert_eq!(f.segment().unwrap().urg, want);
            // What the receiving side reads back: the urgent byte precedes seq + pointer.
            if let (Some(ptr), true) = (want, up.wrapping_sub(seq) <= 0xffff) {
                assert_eq!(
                    seq.wrapping_add(u32::from(ptr)).wrapping_sub(1),
                    up.wrapping_sub(1)
                );
            }
        }
    }

    #[test]
    fn announce_replaces_out_of_line_and_moves_the_mark_inline() {
        let mut u = UrgState {
            peer_isn: Some(u32::MAX - 10),
            ..UrgState::default()
        };
        let read = u.read_pos().unwrap();
        u.announce(read.wrapping_add(20), false);
        assert!(u.awaiting && u.pending());
        u.oob = Some(b'1');
        u.awaiting = false;
        u.announce(read.wrapping_add(20), false);
        assert_eq!(u.oob, Some(b'1'), "the same pointer again changes nothing");
        u.announce(read.wrapping_add(30), false);
        assert_eq!(u.oob, None, "a newer urgent byte replaces the unread one");
        assert_eq!(u.skips.len(), 2, "both stay out of the stream");
        u.announce(read.wrapping_add(40), true);
        assert_eq!(u.mark, Some(read.wrapping_add(40)));
        assert!(!u.out_of_line && u.pending());
        u.consumed = 60;
        u.announce(read.wrapping_add(50), true);
        assert_eq!(
            u.mark,
            Some(read.wrapping_add(40)),
            "behind the read position: ignored"
        );
    }

    #[test]
    fn read_position_wraps() {
        let u = UrgState {
            peer_isn: Some(u32::MAX - 1),
            consumed: 3,
            ..UrgState::default()
        };
        assert_eq!(u.read_pos(), Some(2));
    }
}
