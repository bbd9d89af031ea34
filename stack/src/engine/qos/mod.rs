//! QoS in the engine: each socket's flowspecs, admission against the link's reservable capacity,
//! and the egress shaper every frame of a shaped socket passes (CHECKLIST §1.8, §1.9, D-13,
//! D-14; DESIGN.md "qos: flowspecs and shaping").
//!
//! Shaping is egress, per flow, at packet level: a frame smoltcp emits for the link is classified
//! to its socket by its 5-tuple; frames of sockets with a flow wait in the `ws2_qos::Scheduler`
//! until their buckets (and their group's) conform, and leave in strict-priority/DRR order with
//! the class's DSCP written into the IP header. Frames of other sockets pass straight through.
//!
//! Backpressure instead of loss: a shaped TCP socket may hold only a little more in smoltcp
//! than the shaper can release soon ([`Engine::qos_tcp_allowance`]), so segments never wait in the
//! shaper long enough for smoltcp to retransmit them; a shaped datagram socket refuses a
//! datagram while its queue is full (the send blocks or fails `WSAEWOULDBLOCK`), and one larger
//! than its bucket fails `WSAEMSGSIZE`.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use smoltcp::wire::IpProtocol;
use ws2_qos::{Admission, Class, FlowConfig, Guarantee, Qos, Scheduler, Shape};

use super::lifecycle::{Proto, SocketId};
use super::wire::Frame;
use super::Engine;
use crate::error::WsaError;

/// How long a shaped TCP socket's data may take to leave the shaper at its token rate (at
/// least one full frame): what it may hold in smoltcp beyond that waits in the socket, so
/// segments never wait in the shaper anywhere near smoltcp's minimum RTO.
const TCP_QUEUE_TIME: Duration = Duration::from_millis(100);

/// The shaper and the admission state of one stack.
pub(crate) struct QosEngine {
    /// Frames wait here as parsed (the DSCP rewrite on release reads no header again).
    pub(crate) shaper: Scheduler<Frame>,
    pub(crate) admission: Admission,
    /// Group flowspecs set with `SIO_SET_GROUP_QOS` (or `WSAConnect`'s `lpGQOS`).
    pub(crate) group_qos: HashMap<u32, Qos>,
    /// Flows of IP datagrams being fragmented, by IP identification (later fragments carry no
    /// ports).
    fragments: HashMap<u16, SocketId>,
    /// The largest frame the link carries (Ethernet header included).
    max_frame: usize,
    /// Whether the link is usable (`NetworkAvailability`).
    available: bool,
    /// Flows of closed sockets that still have frames queued.
    draining: Vec<SocketId>,
    /// The DSCP each flow's frames carry (its class's).
    dscp: HashMap<SocketId, u8>,
    /// Frames of flows that were removed, leaving unshaped on the next pass.
    pub(super) bypass: Vec<Vec<u8>>,
    /// Queued frames that could never conform after a renegotiation, dropped.
    pub(super) dropped: u64,
    /// Shaped datagram sockets flushed by `SIO_FLUSH`, whose shaper queue the pass drops.
    pub(super) flush: Vec<SocketId>,
}

impl std::fmt::Debug for QosEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QosEngine")
            .field("flows", &self.shaper.flow_count())
            .field("reserved", &self.admission.reserved())
            .finish_non_exhaustive()
    }
}

impl QosEngine {
    pub(crate) fn new(mtu: usize, capacity: u64, link_rate: Option<u64>, now: Instant) -> Self {
        let max_frame = mtu + 14;
        let mut shaper = Scheduler::new(max_frame);
        shaper.set_link_rate(link_rate, now);
        QosEngine {
            shaper,
            admission: Admission::new(capacity),
            group_qos: HashMap::new(),
            fragments: HashMap::new(),
            max_frame,
            available: true,
            draining: Vec::new(),
            dscp: HashMap::new(),
            bypass: Vec::new(),
            dropped: 0,
            flush: Vec::new(),
        }
    }
}

/// The admission-control id of a group's reservation: above every socket id.
fn group_flow(group: u32) -> u64 {
    (1 << 63) | u64::from(group)
}

/// The scheduler's class for a service type.
pub(crate) fn class_of(g: Guarantee) -> Class {
    match g {
        Guarantee::GuaranteedService => Class::Guaranteed,
        Guarantee::PredictiveService => Class::Predictive,
        Guarantee::ControlledLoadService => Class::ControlledLoad,
        _ => Class::BestEffort,
    }
}

impl Engine {
    /// The socket's QoS as `SIO_GET_QOS` reports it: what was granted (the defaults when none was
    /// asked for), with `NetworkAvailability` from the link.
    pub(crate) fn qos_get(&mut self, id: SocketId) -> Result<Qos, WsaError> {
        let sock = self.sock(id)?;
        sock.qos_changed = false;
        let mut qos = sock.qos.as_deref().cloned().unwrap_or_default();
        qos.set_network_availability(self.qos.available);
        Ok(qos)
    }

    /// `SIO_SET_QOS` / `WSAConnect`'s `lpSQOS`: validates (`WSAEINVAL`), admits a non-best-effort
    /// sending flowspec against the link's reservable capacity (`WSAEOPNOTSUPP` when it does not
    /// fit; the previous grant stays), then reshapes the socket's flow.
    pub(crate) fn qos_set(&mut self, id: SocketId, qos: Qos) -> Result<(), WsaError> {
        self.sock(id)?;
        qos.validate().map_err(|_| WsaError::WSAEINVAL)?;
        let send = qos.SendingFlowspec;
        let class = class_of(send.LevelOfGuarantee);
        let rate = u64::try_from(send.TokenRate).ok();
        self.qos
            .admission
            .reserve(id, class, rate)
            .map_err(|_| WsaError::WSAEOPNOTSUPP)?;
        self.sock(id)?.qos = Some(Box::new(qos));
        self.qos_refresh_flow(id);
        self.rmp_sync_qos(id);
        Ok(())
    }

    /// The group QoS of the socket's group (`SIO_GET_GROUP_QOS`): zeroed flowspecs outside a
    /// group (D-12), the defaults for a group without one.
    pub(crate) fn group_qos_get(&mut self, id: SocketId) -> Result<Qos, WsaError> {
        self.sock(id)?;
        let Some(g) = self.groups.group_of(id) else {
            return Ok(Qos::zeroed());
        };
        let mut qos = self
            .qos
            .group_qos
            .get(&g.get())
            .cloned()
            .unwrap_or_default();
        qos.set_network_availability(self.qos.available);
        Ok(qos)
    }

    /// `SIO_SET_GROUP_QOS`: only the group's creator may set it (`WSAENOPROTOOPT` otherwise, and
    /// for sockets outside a group); an aggregate bucket over the members.
    pub(crate) fn group_qos_set(&mut self, id: SocketId, qos: Qos) -> Result<(), WsaError> {
        self.sock(id)?;
        let Some(g) = self.groups.group_of(id) else {
            return Err(WsaError::WSAENOPROTOOPT);
        };
        if !self.groups.is_creator(id) {
            return Err(WsaError::WSAENOPROTOOPT);
        }
        qos.validate().map_err(|_| WsaError::WSAEINVAL)?;
        let send = qos.SendingFlowspec;
        // The group's reservation is admitted like a socket's (D-14), under a flow id of its own.
        self.qos
            .admission
            .reserve(
                group_flow(g.get()),
                class_of(send.LevelOfGuarantee),
                u64::try_from(send.TokenRate).ok(),
            )
            .map_err(|_| WsaError::WSAEOPNOTSUPP)?;
        let shape = Shape::from_flowspec(send.TokenRate, send.TokenBucketSize, send.PeakBandwidth);
        self.qos.group_qos.insert(g.get(), qos);
        let members: Vec<SocketId> = self.groups.members(g).into_iter().map(|m| m.0).collect();
        for m in members {
            self.qos_refresh_flow(m);
            // The other members' group QoS changed under them.
            if m != id {
                if let Some(s) = self.table.get_mut(&m) {
                    s.group_qos_changed = true;
                }
            }
        }
        let now = self.now;
        let shape = (!shape.is_unlimited()).then_some(shape);
        self.qos
            .shaper
            .set_group_shape(u64::from(g.get()), shape, now);
        Ok(())
    }

    /// A group's last member left: its flowspec, aggregate bucket and reservation go with it.
    pub(crate) fn qos_group_dissolved(&mut self, group: u32) {
        if self.qos.group_qos.remove(&group).is_some() {
            let now = self.now;
            self.qos.shaper.set_group_shape(u64::from(group), None, now);
            self.qos.admission.release(group_flow(group));
        }
    }

    /// Changes the bandwidth reservations may use (D-14): grants that no longer fit are
    /// revoked — those sockets fall back to best effort — and their owners see `FD_QOS`.
    pub(crate) fn qos_set_capacity(&mut self, capacity: u64) {
        let revoked = self.qos.admission.set_capacity(capacity);
        for id in revoked {
            let Some(sock) = self.table.get_mut(&id) else {
                continue;
            };
            if let Some(q) = sock.qos.as_mut() {
                q.SendingFlowspec.LevelOfGuarantee = Guarantee::BestEffortService;
            }
            sock.qos_changed = true;
            self.qos_refresh_flow(id);
        }
    }

    /// The link became usable or unusable: `NetworkAvailability` changes in every socket's
    /// flowspecs (and groups'), so every socket sees `FD_QOS` (and group members
    /// `FD_GROUP_QOS`).
    pub(crate) fn qos_set_available(&mut self, available: bool) {
        if self.qos.available == available {
            return;
        }
        self.qos.available = available;
        let grouped: Vec<SocketId> = self.groups.memberships().map(|m| m.0).collect();
        for sock in self.table.values_mut() {
            sock.qos_changed = true;
        }
        for id in grouped {
            if let Some(s) = self.table.get_mut(&id) {
                s.group_qos_changed = true;
            }
        }
    }

    /// (Re)creates or removes the socket's shaper flow from its QoS and its group: a socket is
    /// shaped when it asked for QoS or belongs to a group with a group QoS.
    pub(crate) fn qos_refresh_flow(&mut self, id: SocketId) {
        let now = self.now;
        let Some(sock) = self.table.get(&id) else {
            return;
        };
        let group = self.groups.group_of(id);
        let grouped = group.is_some_and(|g| self.qos.group_qos.contains_key(&g.get()));
        let Some(send) = sock
            .qos
            .as_ref()
            .map(|q| q.SendingFlowspec)
            .or(grouped.then(Default::default))
        else {
            if let Some(frames) = self.qos.shaper.remove_flow(id) {
                // Frames already queued still go out, unshaped, in order.
                self.qos
                    .bypass
                    .extend(frames.into_iter().map(Frame::into_inner));
            }
            self.qos.dscp.remove(&id);
            return;
        };
        let cfg = FlowConfig {
            class: class_of(send.LevelOfGuarantee),
            shape: Shape::from_flowspec(send.TokenRate, send.TokenBucketSize, send.PeakBandwidth),
            group: group.map(|g| u64::from(g.get())),
            group_priority: self.groups.priority(id).map_or(0, |p| p.max(0) as u32),
        };
        self.qos.dscp.insert(id, cfg.class.dscp());
        if self.qos.shaper.contains_flow(id) {
            if let Ok(dropped) = self.qos.shaper.update_flow(id, cfg, now) {
                // Frames that can never conform under the new flowspec (larger than the bucket).
                self.qos.dropped += dropped.len() as u64;
            }
        } else {
            let _ = self.qos.shaper.add_flow(id, cfg, now);
        }
    }

    /// Forgets a closed socket's grant; its flow stays until the frames it queued have left,
    /// shaped as before (closing early does not break the flowspec).
    pub(crate) fn qos_forget(&mut self, id: SocketId) {
        self.qos.admission.release(id);
        if self.qos.shaper.queued_packets(id).unwrap_or(0) > 0 {
            self.qos.draining.push(id);
        } else {
            self.qos.shaper.remove_flow(id);
            self.qos.dscp.remove(&id);
        }
    }

    /// Drops what the flows of closed sockets still queue (a drain past its deadline).
    pub(crate) fn qos_drop_all(&mut self) {
        for id in std::mem::take(&mut self.qos.draining) {
            self.qos.shaper.remove_flow(id);
            self.qos.dscp.remove(&id);
        }
    }

    /// The socket whose flow an egress frame belongs to, if that socket is shaped: by its
    /// 5-tuple, or for a later fragment (no ports) by the IP identification its first fragment
    /// was seen with.
    fn qos_classify(&mut self, frame: &Frame) -> Option<SocketId> {
        if self.qos.shaper.flow_count() == 0 {
            return None;
        }
        let (src, dst, fragment) = (frame.src()?, frame.dst()?, frame.fragment());
        let id = match fragment {
            Some(f) if f.offset != 0 => return self.qos.fragments.get(&f.ident).copied(),
            _ => match frame.protocol()? {
                IpProtocol::Tcp => self.streams.conns.get(&(src, dst)).copied()?,
                IpProtocol::Udp => self
                    .ports
                    .holders(Proto::Udp, src.port())
                    .find(|h| self.qos.shaper.contains_flow(*h))?,
                _ => return None,
            },
        };
        if !self.qos.shaper.contains_flow(id) {
            return None;
        }
        if let Some(f) = fragment {
            if self.qos.fragments.len() > 1024 {
                self.qos.fragments.clear();
            }
            self.qos.fragments.insert(f.ident, id);
        }
        Some(id)
    }

    /// The shaper stage of the egress pipeline: a frame of a shaped socket is queued (and
    /// leaves through [`Engine::qos_release`]); any other frame is handed back, for the link.
    pub(crate) fn qos_egress(&mut self, frame: Frame) -> Option<Frame> {
        let Some(id) = self.qos_classify(&frame) else {
            return Some(frame);
        };
        let len = frame.as_bytes().len();
        let now = self.now;
        // Larger than the bucket: the send path refuses such datagrams (WSAEMSGSIZE), so this
        // is a TCP segment after a renegotiation; it goes out unshaped rather than lost.
        self.qos
            .shaper
            .enqueue(id, len, frame, now)
            .err()
            .map(|rejected| rejected.packet)
    }

    /// Releases every frame that conforms now, with its class's DSCP (the last stage of the
    /// egress pipeline: RFC 2474 §3, the header checksum fixed), and returns when the next one
    /// will.
    pub(crate) fn qos_release(&mut self, out: &mut VecDeque<Vec<u8>>) -> Option<Instant> {
        out.extend(self.qos.bypass.drain(..));
        let now = self.now;
        while let Some((id, mut frame)) = self.qos.shaper.dequeue(now) {
            let dscp = self.qos.dscp.get(&id).copied().unwrap_or(0);
            frame.set_dscp(dscp);
            out.push_back(frame.into_inner());
        }
        let (shaper, dscp) = (&mut self.qos.shaper, &mut self.qos.dscp);
        self.qos.draining.retain(|&id| {
            let busy = shaper.queued_packets(id).unwrap_or(0) > 0;
            if !busy {
                shaper.remove_flow(id);
                dscp.remove(&id);
            }
            busy
        });
        self.qos.shaper.next_release(now)
    }

    /// How many more bytes a shaped TCP socket may hand to smoltcp now, given `in_smoltcp`
    /// bytes already there (sent or not): about `TCP_QUEUE_TIME` of its token rate, at least
    /// two full frames. `usize::MAX` for unshaped sockets.
    pub(crate) fn qos_tcp_allowance(&self, id: SocketId, in_smoltcp: usize) -> usize {
        let Some(rate) = self.qos_send_rate(id) else {
            return usize::MAX;
        };
        let budget = (rate as f64 * TCP_QUEUE_TIME.as_secs_f64()) as usize;
        let queued = self.qos.shaper.queued_bytes(id).unwrap_or(0) as usize;
        budget
            .max(self.qos.max_frame)
            .saturating_sub(in_smoltcp + queued)
    }

    /// The sending flowspec that shapes a socket: its own, else its group's.
    fn qos_send_spec(&self, id: SocketId) -> Option<ws2_qos::Flowspec> {
        if let Some(q) = self.table.get(&id).and_then(|s| s.qos.as_ref()) {
            return Some(q.SendingFlowspec);
        }
        let g = self.groups.group_of(id)?;
        self.qos.group_qos.get(&g.get()).map(|q| q.SendingFlowspec)
    }

    /// The rate a shaped socket's frames leave at, at most: its own or its group's `TokenRate`,
    /// else the paced link's rate; `None` for a socket nothing limits.
    fn qos_send_rate(&self, id: SocketId) -> Option<u64> {
        if !self.qos.shaper.contains_flow(id) {
            return None;
        }
        self.qos_send_spec(id)
            .and_then(|f| u64::try_from(f.TokenRate).ok())
            .or(self.config.link_rate)
    }

    /// How many of `len` bytes a shaped TCP socket hands smoltcp now: whole segments only
    /// (dribbling a few bytes at a time makes small segments, whose headers eat the token
    /// rate), or all of a short write.
    pub(crate) fn qos_tcp_admit(&self, id: SocketId, in_smoltcp: usize, len: usize) -> usize {
        let allowance = self.qos_tcp_allowance(id, in_smoltcp);
        let segment = self.qos.max_frame - 54;
        if allowance < len.min(segment) {
            0
        } else {
            allowance.min(len)
        }
    }

    /// Whether a shaped datagram socket may queue a datagram of `len` payload bytes now:
    /// `Err(WSAEMSGSIZE)` if its frames could never conform, `Ok(false)` while its shaper queue
    /// is full.
    pub(crate) fn qos_dgram_room(&self, id: SocketId, len: usize) -> Result<bool, WsaError> {
        if !self.qos.shaper.contains_flow(id) {
            return Ok(true);
        }
        let send = self.qos_send_spec(id).unwrap_or_default();
        let max_frame = self.qos.max_frame;
        // The largest frame this datagram makes: the whole of it when it fits one frame.
        let frame = (len + 8 + 20 + 14).min(max_frame);
        if let Some(bucket) = send.shaping_bucket_size(max_frame as u32) {
            if frame > bucket as usize {
                return Err(WsaError::WSAEMSGSIZE);
            }
        }
        // What waits in smoltcp's send buffer reaches the shaper on the next pass: count it too.
        let in_smoltcp = match self.table.get(&id).map(|s| &s.state) {
            Some(super::lifecycle::State::Datagram(h)) if self.table[&id].proto == Proto::Udp => {
                self.sockets
                    .get::<smoltcp::socket::udp::Socket>(*h)
                    .send_queue()
            }
            _ => 0,
        };
        // So does what waits for ARP: it left smoltcp but has not reached the shaper yet.
        let for_arp = self
            .table
            .get(&id)
            .and_then(|s| s.bound)
            .map_or(0, |b| self.device.neigh.queued_from_udp_port(b.port()));
        let queued = self.qos.shaper.queued_bytes(id).unwrap_or(0) as usize + in_smoltcp + for_arp;
        let limit = send
            .shaping_bucket_size(max_frame as u32)
            .map_or(64 * 1024, |b| (b as usize).max(4 * max_frame));
        Ok(queued < limit)
    }
}
