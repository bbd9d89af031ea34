//! The graceful end of a node: what applications handed over still leaves before it stops.
//!
//! Read first: DESIGN.md "A graceful end", and CHECKLIST §1.5 (`closesocket` and `SO_LINGER`,
//! `WSACleanup`). When the last handle of a stack goes, `WSACleanup` ends the last application,
//! or `Stack::shutdown` is called, the driver calls [`Engine::begin_drain`] once and then keeps
//! passing until [`Engine::drained`] says everything left, or its deadline passes and
//! [`Engine::abort_drain`] drops the rest and says what it dropped:
//!
//! - every socket is closed as `closesocket` closes it (TCP per `SO_LINGER`: FIN after the
//!   queued data, or RST for a zero linger);
//! - datagrams still in a closed socket's buffer leave, and shaped frames leave the shaper at
//!   their flow's rate (closing does not break a flowspec);
//! - IGMP Leaves (v2) and state-change records (v3, RFC 3376 §5.1, with their robustness
//!   retransmissions) for the groups the closed sockets held go out.

use smoltcp::socket::tcp as stcp;

use super::{Engine, SocketId};

/// What a drain cut short by its deadline dropped.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Dropped {
    /// Frames still waiting in the QoS shaper or for the link.
    pub frames: u64,
    /// Datagrams' bytes still in closed sockets' buffers.
    pub datagram_bytes: u64,
    /// TCP connections whose data or FIN was not yet acknowledged, reset.
    pub connections_reset: u64,
    /// IGMP messages (leaves, state-change retransmissions) not sent.
    pub igmp_messages: u64,
}

impl Dropped {
    /// Whether nothing was dropped.
    pub fn is_empty(&self) -> bool {
        *self == Dropped::default()
    }
}

impl std::fmt::Display for Dropped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.is_empty() {
            return f.write_str("nothing dropped");
        }
        let mut parts = Vec::new();
        if self.frames > 0 {
            parts.push(format!("{} queued frames", self.frames));
        }
        if self.datagram_bytes > 0 {
            parts.push(format!("{} bytes of datagrams", self.datagram_bytes));
        }
        if self.connections_reset > 0 {
            parts.push(format!("{} TCP connections reset", self.connections_reset));
        }
        if self.igmp_messages > 0 {
            parts.push(format!("{} IGMP messages", self.igmp_messages));
        }
        write!(f, "dropped {}", parts.join(", "))
    }
}

impl Engine {
    /// Closes every socket as `closesocket` would, so that their queued data, FINs and IGMP
    /// leaves go out on the next passes. RMP sockets go first: their last words (DISCONNECT,
    /// END) go into the hidden TCP sockets, which close after them.
    pub(crate) fn begin_drain(&mut self) {
        let (hidden, visible): (Vec<SocketId>, Vec<SocketId>) = self
            .table
            .keys()
            .copied()
            .partition(|id| self.rmp.hidden.contains(id));
        for id in visible.into_iter().chain(hidden) {
            self.remove(id, false);
        }
    }

    /// Whether everything handed over has left: background closes delivered, closed datagram
    /// sockets empty, the shaper empty, no IGMP message pending, nothing waiting for the link
    /// inside the engine (nor for ARP: a silent neighbour's packets go when it fails, ≤ 3 s).
    pub(crate) fn drained(&self) -> bool {
        self.closes_delivered()
            && self.device.tx.is_empty()
            && self.device.neigh.queued_bytes() == 0
            && self.qos.bypass.is_empty()
            && self.qos.shaper.total_queued_packets() == 0
            && self.mcast.host.poll_at().is_none()
    }

    /// Ends the node because its link failed with `error`: what has not left is dropped and
    /// every call from now on fails `WSAENETDOWN` (CHECKLIST Appendix D: "the network
    /// subsystem has failed").
    pub(crate) fn fail(&mut self, error: &str) -> Dropped {
        self.down = Some(error.to_owned());
        let dropped = self.abort_drain();
        let ids: Vec<SocketId> = self.table.keys().copied().collect();
        for id in ids {
            self.remove(id, true);
        }
        dropped
    }

    /// Gives up on what has not left: resets the connections still closing, empties the shaper
    /// and the closed datagram sockets, forgets pending IGMP messages. The RSTs go out on the
    /// next pass.
    pub(crate) fn abort_drain(&mut self) -> Dropped {
        let mut dropped = Dropped {
            frames: (self.qos.shaper.total_queued_packets() + self.qos.bypass.len()) as u64,
            ..Dropped::default()
        };
        self.qos.bypass.clear();
        self.qos_drop_all();
        let orphans: Vec<_> = self
            .orphans
            .iter()
            .map(|o| (o.handle, o.datagram))
            .collect();
        for (h, datagram) in orphans {
            match datagram {
                Some(proto) => {
                    dropped.datagram_bytes += self.datagram_send_queue(proto, h) as u64;
                }
                None => {
                    let s = self.tcp(h);
                    let closing = s.send_queue() > 0
                        || !matches!(
                            s.state(),
                            stcp::State::FinWait2 | stcp::State::TimeWait | stcp::State::Closed
                        );
                    if closing {
                        dropped.connections_reset += 1;
                    }
                    s.abort();
                }
            }
        }
        let now = self.now;
        while self.mcast.host.poll(now).is_some() {
            dropped.igmp_messages += 1;
        }
        dropped
    }
}
