//! The smoltcp `Device` the engine hands to `Interface::poll`: two frame queues.
//!
//! The owner thread fills `rx` from the link (and from local delivery) before each poll and
//! drains `tx` to the link after it. Keeping smoltcp away from the link lets the engine look at
//! every frame on its way in and out (RST and ICMP bookkeeping, local delivery), and hold frames
//! the link refuses instead of dropping them.

use std::collections::VecDeque;

use smoltcp::phy::{self, DeviceCapabilities, Medium};
use smoltcp::time::Instant;

/// Frames waiting for smoltcp (`rx`) and frames smoltcp produced (`tx`).
#[derive(Debug, Default)]
pub(crate) struct QueueDevice {
    pub(crate) rx: VecDeque<Vec<u8>>,
    pub(crate) tx: VecDeque<Vec<u8>>,
    pub(crate) mtu: usize,
    /// Buffers of consumed frames, reused so the hot path does not allocate.
    pub(crate) spare: Vec<Vec<u8>>,
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
        self.device.tx.push_back(buf);
        r
    }
}
