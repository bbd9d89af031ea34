//! The smoltcp `Device` the engine hands to `Interface::poll`: two frame queues.
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

use super::wire::Frame;

/// Frames waiting for smoltcp (`rx`) and frames smoltcp produced (`tx`), the latter already
/// parsed for the egress pipeline (`wire`).
#[derive(Debug, Default)]
pub(crate) struct QueueDevice {
    pub(crate) rx: VecDeque<Vec<u8>>,
    pub(crate) tx: VecDeque<Frame>,
    pub(crate) mtu: usize,
    /// Buffers of consumed frames, reused so the hot path does not allocate.
    pub(crate) spare: Vec<Vec<u8>>,
    /// The last IPv4 frame emitted was a fragment with more to come.
    pub(crate) fragmenting: bool,
    /// No transmit tokens until the next poll (see the module docs).
    pub(crate) hold: bool,
}

impl QueueDevice {
    pub(crate) fn new(mtu: usize) -> QueueDevice {
        QueueDevice {
            mtu,
            ..Default::default()
        }
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
        caps.medium = Medium::Ethernet;
        caps.max_transmission_unit = self.mtu + 14;
        caps.max_burst_size = None;
        caps
    }
}

impl phy::RxToken for RxToken {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        f(&self.frame)
    }
}

impl phy::TxToken for TxToken<'_> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let mut buf = self.device.buffer();
        buf.resize(len, 0);
        let r = f(&mut buf);
        // The frame's one parse: the egress pipeline gets this view.
        let frame = Frame::parse(buf);
        if let Some(fragment) = frame.fragment() {
            self.device.fragmenting = fragment.more;
            self.device.hold |= fragment.more;
        }
        self.device.tx.push_back(frame);
        r
    }
}
