//! The smoltcp `Device` the engine hands to `Interface::poll`: two frame queues and the link
//! layer between smoltcp's IPv4 packets and the link's Ethernet frames.
//!
//! smoltcp runs on `Medium::Ip` (RFC 894 framing and ARP are the engine's, `neighbor`): an
//! IPv4 packet smoltcp emits gets its next hop's Ethernet header here, or waits in the
//! neighbour table for ARP to resolve it; an ingress frame queued for smoltcp is an Ethernet
//! frame carrying IPv4, handed over without its Ethernet header. So every frame the engine's
//! pipeline sees, either way, is still a whole Ethernet frame.
//!
//! The owner thread fills `rx` from the link (and from local delivery) before each poll and
//! drains `tx` to the link after it. Keeping smoltcp away from the link lets the engine look at
//! every frame on its way in and out (RST and ICMP bookkeeping, local delivery), and hold frames
//! the link refuses instead of dropping them.
//!
//! It also keeps smoltcp's IPv4 fragmenter from losing fragments. smoltcp 0.14 has one
//! fragmenter per interface and sends one fragment per egress round, but a socket's next
//! datagram is dispatched in the same round and, if it needs fragmenting too, overwrites the
//! fragmenter: the rest of the earlier datagram is never sent. So once a fragment with more to
//! come has been emitted, `transmit` refuses tokens until the engine's next `poll`, whose first
//! egress step is the fragmenter's next fragment; the engine polls again at once while a
//! datagram is being fragmented.

use std::collections::VecDeque;

use smoltcp::phy::{self, DeviceCapabilities, Medium};
use smoltcp::time::Instant;
use smoltcp::wire::{Ipv4Packet, ETHERNET_HEADER_LEN};

use super::neighbor::Neighbors;
use super::wire::Frame;

/// Frames waiting for smoltcp (`rx`) and frames smoltcp produced (`tx`), the latter already
/// parsed for the egress pipeline (`wire`).
#[derive(Debug)]
pub(crate) struct QueueDevice {
    /// Ethernet frames carrying IPv4, for smoltcp.
    pub(crate) rx: VecDeque<Vec<u8>>,
    pub(crate) tx: VecDeque<Frame>,
    pub(crate) mtu: usize,
    /// Buffers of consumed frames, reused so the hot path does not allocate.
    pub(crate) spare: Vec<Vec<u8>>,
    /// The last IPv4 frame emitted was a fragment with more to come.
    pub(crate) fragmenting: bool,
    /// No transmit tokens until the next poll (see the module docs).
    pub(crate) hold: bool,
    /// The link layer: next hops, ARP, packets awaiting resolution.
    pub(crate) neigh: Neighbors,
    /// The engine's `now`, set before each poll (the neighbour table's clock).
    pub(crate) now: std::time::Instant,
}

impl QueueDevice {
    pub(crate) fn new(mtu: usize, neigh: Neighbors, now: std::time::Instant) -> QueueDevice {
        QueueDevice {
            rx: VecDeque::new(),
            tx: VecDeque::new(),
            mtu,
            spare: Vec::new(),
            fragmenting: false,
            hold: false,
            neigh,
            now,
        }
    }

    /// Runs the neighbour table's timers: due ARP requests go to `tx`.
    pub(crate) fn poll_neighbors(&mut self) {
        let tx = &mut self.tx;
        self.neigh
            .poll(self.now, &mut |f| tx.push_back(Frame::parse(f)));
    }

    pub(crate) fn buffer(&mut self) -> Vec<u8> {
        self.spare.pop().unwrap_or_default()
    }

    pub(crate) fn recycle(&mut self, mut buf: Vec<u8>) {
        if self.spare.len() < 256 {
            buf.clear();
            self.spare.push(buf);
        }
    }
}

pub(crate) struct RxToken {
    frame: Vec<u8>,
}

pub(crate) struct TxToken<'a> {
    device: &'a mut QueueDevice,
}

impl phy::Device for QueueDevice {
    type RxToken<'a> = RxToken;
    type TxToken<'a> = TxToken<'a>;

    fn receive(&mut self, _now: Instant) -> Option<(RxToken, TxToken<'_>)> {
        let frame = self.rx.pop_front()?;
        Some((RxToken { frame }, TxToken { device: self }))
    }

    fn transmit(&mut self, _now: Instant) -> Option<TxToken<'_>> {
        if self.hold {
            return None;
        }
        Some(TxToken { device: self })
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.medium = Medium::Ip;
        caps.max_transmission_unit = self.mtu;
        caps.max_burst_size = None;
        caps
    }
}

impl phy::RxToken for RxToken {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        // The engine queues only Ethernet frames carrying IPv4; smoltcp gets the packet.
        f(self.frame.get(ETHERNET_HEADER_LEN..).unwrap_or_default())
    }
}

impl phy::TxToken for TxToken<'_> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let mut buf = self.device.buffer();
        buf.resize(ETHERNET_HEADER_LEN + len, 0);
        let r = f(&mut buf[ETHERNET_HEADER_LEN..]);
        let ip = Ipv4Packet::new_checked(&buf[ETHERNET_HEADER_LEN..]).ok();
        if let Some(ip) = ip.filter(|ip| ip.more_frags() || ip.frag_offset() != 0) {
            let more = ip.more_frags();
            self.device.fragmenting = more;
            self.device.hold |= more;
        }
        let device = &mut *self.device;
        let tx = &mut device.tx;
        // The next hop's header, or the packet waits for ARP (requests due go out first).
        if let Some(buf) = device
            .neigh
            .egress(device.now, buf, &mut |f| tx.push_back(Frame::parse(f)))
        {
            // The frame's one parse: the egress pipeline gets this view.
            tx.push_back(Frame::parse(buf));
        }
        r
    }
}
