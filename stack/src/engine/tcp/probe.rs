//! The tail-loss probe: TCP loss recovery above smoltcp.
//!
//! Read first: RFC 5681 §3.2 (fast retransmit on three duplicate ACKs), RFC 6298 (the RTO and
//! its one-second minimum), RFC 8985 §7 (RACK-TLP's probe timeout, the model). The probe feeds
//! smoltcp duplicates of the peer's last ACK; it never sends anything itself.

use std::time::Duration;

use smoltcp::socket::tcp as stcp;

use super::super::frames;
use super::super::lifecycle::State;
use super::super::Engine;

/// Probes per stall before the engine leaves recovery to smoltcp's RTO.
const MAX_PROBES: u8 = 32;
/// The longest a probe waits (Linux's minimum RTO).
const MAX_PROBE_WAIT: Duration = Duration::from_millis(200);

impl Engine {
    /// The tail-loss probe (DESIGN: loss recovery above smoltcp). smoltcp follows RFC 6298's
    /// one-second minimum RTO, and without SACK a loss it cannot fast-retransmit — the last
    /// segments of a burst, or a second hole in one window — stalls the connection for that
    /// second. When a connection has data in flight and no acknowledgment has advanced for
    /// `StackConfig::tail_probe` (doubling per probe, up to 200 ms), the engine repeats the
    /// peer's last ACK to smoltcp (see the loop below for why four times),
    /// which then retransmits its oldest unacknowledged segment (RFC 5681 §3.2), much as RACK-TLP
    /// (RFC 8985 §7) probes after a probe timeout. At most 32 probes per stall; the RTO
    /// remains the fallback. Returns whether it fed smoltcp anything.
    pub(in crate::engine) fn probe_stalled(&mut self) -> bool {
        let Some(pto) = self.config.tail_probe else {
            return false;
        };
        self.streams.in_flight = false;
        let mut probes = Vec::new();
        for (&(local, remote), &id) in &self.streams.conns {
            let shaped = self.qos.shaper.contains_flow(id);
            let Some(sock) = self.table.get_mut(&id) else {
                continue;
            };
            let State::Connected(h) = sock.state else {
                continue;
            };
            let s = self.sockets.get::<stcp::Socket>(h);
            // A zero window is flow control, not loss: smoltcp's zero-window probe handles it.
            // A shaped socket's segments wait in the shaper by design: no probe for them.
            let busy = !shaped
                && s.send_queue() > 0
                && sock.acks.window > 0
                && matches!(s.state(), stcp::State::Established | stcp::State::CloseWait);
            let acks = &mut sock.acks;
            if !busy {
                acks.stall_since = self.now;
                acks.probes = 0;
                continue;
            }
            self.streams.in_flight = true;
            let (Some(ack), Some(seq)) = (acks.ack, acks.seq_end) else {
                continue;
            };
            // Each probe of one stall waits twice as long as the one before.
            let wait = (pto * (1u32 << acks.probes.min(8))).min(MAX_PROBE_WAIT);
            if acks.probes < MAX_PROBES
                && self.now.saturating_duration_since(acks.stall_since) >= wait
            {
                acks.probes += 1;
                acks.stall_since = self.now;
                probes.push((local, remote, seq, ack, acks.window));
            }
        }
        for &(local, remote, seq, ack, window) in &probes {
            self.stats.tail_probes += 1;
            // smoltcp fast-retransmits when its duplicate count reaches exactly three, and only
            // a non-duplicate resets the count — so after a lost retransmission more duplicates
            // would never trigger again. The first ACK carries a window one unit smaller (a
            // window update to smoltcp: the count restarts), the three after it repeat it.
            let window = window.saturating_sub(1).max(1);
            for _ in 0..4 {
                self.device
                    .rx
                    .push_back(frames::dup_ack(self.mac, local, remote, seq, ack, window));
            }
        }
        !probes.is_empty()
    }
}
