//! The egress scheduler: per-flow queues shaped by [`TokenBucket`]s, strict priority by service
//! type, `SO_GROUP_PRIORITY` inside a socket group, and deficit round robin among equals — a
//! qdisc in the sense of Linux `tc`, sans-IO.
//!
//! Heads up! Before working on this file read CHECKLIST §1.8.4 (shaping provider), §1.9
//! (`SO_GROUP_PRIORITY`: "the lowest value is serviced first"), D-13 (group QoS is an aggregate
//! bucket drained in priority order), M. Shreedhar and G. Varghese, "Efficient Fair Queueing
//! using Deficit Round Robin", SIGCOMM 1995 (the DRR used at every level here, as in Linux
//! `sch_drr`), and `tc-tbf(8)` / RFC 2697–2698 for the buckets (see [`crate::bucket`]).
//!
//! # Model
//! - A **flow** (one socket's send direction, keyed by an opaque [`FlowId`]) has a FIFO of
//!   frames, a [`TokenBucket`] and a [`Class`]. A frame leaves only when it conforms to its
//!   flow's buckets, and to its group's aggregate bucket if the group has one.
//! - **Strict priority by class**: [`Class::Guaranteed`] before [`Class::Predictive`] before
//!   [`Class::ControlledLoad`] before [`Class::BestEffort`]. A class is served only when no flow
//!   of a better class has a conformant frame. Shaped flows cannot starve the classes below them
//!   for longer than their bucket allows; admission ([`crate::admission`]) keeps unshaped flows
//!   out of the guaranteed classes.
//! - Inside a class, the entities served by **DRR** (quantum = one maximum frame, so one visit
//!   releases at least one frame) are the ungrouped flows and one *lane* per (group, class).
//!   A lane serves its members by **`SO_GROUP_PRIORITY`** (0 first; strictly) and by DRR among
//!   members of equal priority. Group priorities therefore order a group's own members only: a
//!   priority-5 member is not pushed behind unrelated sockets.
//! - A group's **aggregate bucket** is shared by all its lanes. When the best candidate of a
//!   lane lacks group credit, the lane waits for it (lower-priority members may not take the
//!   credit, CHECKLIST 386), and the group's lanes of worse classes wait with it.
//! - Optionally the scheduler models the **link rate** ([`Scheduler::set_link_rate`]): frames
//!   leave no faster than the link takes them, so priorities matter even when the device
//!   itself never pushes back.
//!
//! # Driving it
//! `enqueue` frames as the stack emits them; then `while let Some((flow, frame)) =
//! dequeue(now)` send them; then sleep until [`Scheduler::next_release`]. Flows that are not
//! conformant wait in a timer heap, so a call costs O(log flows) plus the stale entries it
//! skips, not O(flows). Nothing here reads a clock.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::fmt;
use std::time::Instant;

use crate::bucket::{Shape, TokenBucket, DEFAULT_MAX_FRAME};

/// An opaque flow identifier chosen by the engine (e.g. the socket handle).
pub type FlowId = u64;

/// A socket group identifier (`SO_GROUP_ID`).
pub type GroupId = u64;

/// Service type (`LevelOfGuarantee`), in strict-priority order: a lower [`rank`](Self::rank)
/// is served first.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Class {
    /// `GuaranteedService`: served first.
    Guaranteed,
    /// `PredictiveService`: after guaranteed flows.
    Predictive,
    /// `ControlledLoadService`: after predictive flows.
    ControlledLoad,
    /// `BestEffortService` (the default): served last.
    #[default]
    BestEffort,
}

impl Class {
    /// All classes, best first.
    pub const ALL: [Self; 4] = [
        Self::Guaranteed,
        Self::Predictive,
        Self::ControlledLoad,
        Self::BestEffort,
    ];

    /// The strict-priority level: 0 (guaranteed) is served first.
    pub const fn rank(self) -> usize {
        self as usize
    }

    /// The DSCP written into the IP header of this class's frames: Guaranteed → EF (46,
    /// RFC 3246, telephony in RFC 4594), Predictive → AF41 (34, RFC 4594 multimedia
    /// conferencing: adaptive audio/video), ControlledLoad → AF31 (26, RFC 4594 multimedia
    /// streaming), BestEffort → CS0 (0). The TOS byte is `dscp << 2`.
    pub const fn dscp(self) -> u8 {
        match self {
            Self::Guaranteed => 46,
            Self::Predictive => 34,
            Self::ControlledLoad => 26,
            Self::BestEffort => 0,
        }
    }
}

/// How one flow is scheduled.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FlowConfig {
    /// Service type: the strict-priority level.
    pub class: Class,
    /// The flow's send flowspec, in counted frame bytes.
    pub shape: Shape,
    /// The socket group, if any.
    pub group: Option<GroupId>,
    /// `SO_GROUP_PRIORITY` inside `group` (0 highest); ignored without a group.
    pub group_priority: u32,
}

/// Why the scheduler refused a call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SchedulerError {
    /// No flow with this id.
    UnknownFlow,
    /// `add_flow` with an id already present.
    DuplicateFlow,
    /// The frame is longer than the flow's or the group's bucket (or, with a peak, than one
    /// maximum frame), so it could never conform: `WSAEMSGSIZE` (D-13).
    FrameTooLarge,
}

impl fmt::Display for SchedulerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::UnknownFlow => "no such flow",
            Self::DuplicateFlow => "flow already exists",
            Self::FrameTooLarge => "frame larger than the token bucket",
        })
    }
}

impl std::error::Error for SchedulerError {}

/// A frame [`Scheduler::enqueue`] did not take, handed back with the reason.
#[derive(Debug)]
pub struct Rejected<P> {
    /// Why.
    pub error: SchedulerError,
    /// The frame, unchanged.
    pub packet: P,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Node {
    Flow(u32),
    Lane(u32, u8),
}

/// A ring or timer entry; stale when `gen` no longer matches its node (lazy deletion).
#[derive(Clone, Copy, Debug)]
struct Entry {
    node: Node,
    gen: u64,
}

/// Active: exactly one valid ring entry. Waiting: at most one valid timer. Idle: neither.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Idle,
    Active,
    Waiting,
}

#[derive(Debug)]
struct Flow<P> {
    id: FlowId,
    class: Class,
    group: Option<u32>,
    prio: u32,
    bucket: TokenBucket,
    queue: VecDeque<(usize, P)>,
    bytes: u64,
    deficit: u64,
    state: State,
    gen: u64,
}

#[derive(Debug)]
struct Lane {
    /// Member rings by `SO_GROUP_PRIORITY`, sorted ascending.
    levels: Vec<(u32, VecDeque<Entry>)>,
    deficit: u64,
    state: State,
    gen: u64,
}

#[derive(Debug)]
struct Group {
    id: GroupId,
    bucket: Option<TokenBucket>,
    members: usize,
    lanes: [Lane; 4],
    /// A lane of class `.0` waits for group credit until `.1`: worse lanes wait too.
    block: Option<(usize, Instant)>,
}

enum Step {
    Drop,
    Rotate,
    Serve(u32),
}

/// The egress scheduler over frames of type `P` (the engine stores its frame buffers here).
#[derive(Debug)]
pub struct Scheduler<P> {
    max_frame: usize,
    flows: Vec<Option<Flow<P>>>,
    free_flows: Vec<u32>,
    flow_index: HashMap<FlowId, u32>,
    groups: Vec<Option<Group>>,
    free_groups: Vec<u32>,
    group_index: HashMap<GroupId, u32>,
    rings: [VecDeque<Entry>; 4],
    timers: BinaryHeap<Reverse<(Instant, u64, Node)>>,
    link: Option<TokenBucket>,
    next_gen: u64,
    queued_bytes: u64,
    queued_packets: usize,
}

impl<P> Default for Scheduler<P> {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_FRAME)
    }
}

fn park_flow<P>(
    f: &mut Flow<P>,
    i: u32,
    timers: &mut BinaryHeap<Reverse<(Instant, u64, Node)>>,
    len: usize,
    now: Instant,
) {
    f.state = State::Waiting;
    // `None` (a zero rate after the burst) waits for `update_flow`.
    if let Some(at) = f.bucket.next_conformant(len, now) {
        timers.push(Reverse((at, f.gen, Node::Flow(i))));
    }
}

impl<P> Scheduler<P> {
    /// An empty scheduler for a link whose largest counted frame is `max_frame` bytes (the
    /// DRR quantum and the peak-bucket depth; [`DEFAULT_MAX_FRAME`] for a 1500-byte MTU).
    pub fn new(max_frame: usize) -> Self {
        Self {
            max_frame: max_frame.max(1),
            flows: Vec::new(),
            free_flows: Vec::new(),
            flow_index: HashMap::new(),
            groups: Vec::new(),
            free_groups: Vec::new(),
            group_index: HashMap::new(),
            rings: Default::default(),
            timers: BinaryHeap::new(),
            link: None,
            next_gen: 0,
            queued_bytes: 0,
            queued_packets: 0,
        }
    }

    /// The largest counted frame (DRR quantum, peak depth).
    pub fn max_frame(&self) -> usize {
        self.max_frame
    }

    /// Release frames no faster than `rate` bytes/s in total (the link's speed, or the
    /// capacity the shaper may use), or `None` to release every conformant frame at once and
    /// let the device pace them.
    pub fn set_link_rate(&mut self, rate: Option<u64>, now: Instant) {
        self.link = rate.map(|r| {
            // "Credit ≥ 0" as the test: a virtual clock, one frame at a time. One maximum frame
            // of depth lets a release that comes late (timer slack, a busy pass) catch up
            // instead of losing the link time for good.
            let shape = Shape {
                token_rate: Some(r),
                token_bucket_size: Some(self.max_frame as u64),
                peak_bandwidth: None,
            };
            TokenBucket::new(shape, self.max_frame, now)
        });
    }

    fn gen(&mut self) -> u64 {
        self.next_gen += 1;
        self.next_gen
    }

    fn group_slot(&mut self, id: GroupId) -> u32 {
        if let Some(&g) = self.group_index.get(&id) {
            return g;
        }
        let mut lane = || Lane {
            levels: Vec::new(),
            deficit: 0,
            state: State::Idle,
            gen: self.gen(),
        };
        let group = Group {
            id,
            bucket: None,
            members: 0,
            lanes: [lane(), lane(), lane(), lane()],
            block: None,
        };
        let g = match self.free_groups.pop() {
            Some(g) => {
                self.groups[g as usize] = Some(group);
                g
            }
            None => {
                self.groups.push(Some(group));
                (self.groups.len() - 1) as u32
            }
        };
        self.group_index.insert(id, g);
        g
    }

    fn unref_group(&mut self, g: u32) {
        let Some(group) = self.groups[g as usize].as_mut() else {
            return;
        };
        group.members -= 1;
        if group.members == 0 {
            self.group_index.remove(&group.id);
            self.groups[g as usize] = None;
            self.free_groups.push(g);
        }
    }

    /// Add a flow with an empty queue and full buckets.
    pub fn add_flow(
        &mut self,
        flow: FlowId,
        config: FlowConfig,
        now: Instant,
    ) -> Result<(), SchedulerError> {
        if self.flow_index.contains_key(&flow) {
            return Err(SchedulerError::DuplicateFlow);
        }
        let group = config.group.map(|id| self.group_slot(id));
        if let Some(g) = group {
            if let Some(grp) = self.groups[g as usize].as_mut() {
                grp.members += 1;
            }
        }
        let f = Flow {
            id: flow,
            class: config.class,
            group,
            prio: config.group_priority,
            bucket: TokenBucket::new(config.shape, self.max_frame, now),
            queue: VecDeque::new(),
            bytes: 0,
            deficit: 0,
            state: State::Idle,
            gen: self.gen(),
        };
        let i = match self.free_flows.pop() {
            Some(i) => {
                self.flows[i as usize] = Some(f);
                i
            }
            None => {
                self.flows.push(Some(f));
                (self.flows.len() - 1) as u32
            }
        };
        self.flow_index.insert(flow, i);
        Ok(())
    }

    /// Remove a flow; its queued frames come back in order. `None` if unknown.
    pub fn remove_flow(&mut self, flow: FlowId) -> Option<Vec<P>> {
        let i = self.flow_index.remove(&flow)?;
        let f = self.flows[i as usize].take()?;
        self.free_flows.push(i);
        self.queued_bytes -= f.bytes;
        self.queued_packets -= f.queue.len();
        if let Some(g) = f.group {
            self.unref_group(g);
        }
        Some(f.queue.into_iter().map(|(_, p)| p).collect())
    }

    /// Change a flow's class, shape, group or group priority at `now` (renegotiation,
    /// `SO_GROUP_PRIORITY`). Credit is kept (clamped to the new depth); queued frames keep
    /// their order, except those that can no longer ever conform, which are returned.
    pub fn update_flow(
        &mut self,
        flow: FlowId,
        config: FlowConfig,
        now: Instant,
    ) -> Result<Vec<P>, SchedulerError> {
        let i = *self
            .flow_index
            .get(&flow)
            .ok_or(SchedulerError::UnknownFlow)?;
        let new_group = config.group.map(|id| self.group_slot(id));
        let old_group = self.flows[i as usize].as_ref().and_then(|f| f.group);
        if new_group != old_group {
            if let Some(g) = new_group {
                if let Some(grp) = self.groups[g as usize].as_mut() {
                    grp.members += 1;
                }
            }
            if let Some(g) = old_group {
                self.unref_group(g);
            }
        }
        let gen = self.gen();
        let max_frame = self.max_frame;
        let Some(f) = self.flows[i as usize].as_mut() else {
            return Err(SchedulerError::UnknownFlow);
        };
        f.bucket.reconfigure(config.shape, max_frame, now);
        f.class = config.class;
        f.group = new_group;
        f.prio = config.group_priority;
        f.gen = gen;
        f.deficit = 0;
        let dropped = self.drop_unfit(i);
        self.restart_flow(i);
        Ok(dropped)
    }

    /// Remove the frames of flow `i` that can never conform any more.
    fn drop_unfit(&mut self, i: u32) -> Vec<P> {
        let Some(f) = self.flows[i as usize].as_mut() else {
            return Vec::new();
        };
        let group_bucket = f
            .group
            .and_then(|g| self.groups[g as usize].as_ref())
            .and_then(|g| g.bucket.as_ref());
        let fits = |len: usize| f.bucket.fits(len) && group_bucket.is_none_or(|b| b.fits(len));
        if f.queue.iter().all(|(len, _)| fits(*len)) {
            return Vec::new();
        }
        let mut dropped = Vec::new();
        let mut kept = VecDeque::with_capacity(f.queue.len());
        for (len, p) in f.queue.drain(..) {
            if fits(len) {
                kept.push_back((len, p));
            } else {
                f.bytes -= len as u64;
                self.queued_bytes -= len as u64;
                self.queued_packets -= 1;
                dropped.push(p);
            }
        }
        f.queue = kept;
        dropped
    }

    /// Put flow `i` (whose `gen` was just renewed) back in its ring if it has frames.
    fn restart_flow(&mut self, i: u32) {
        if let Some(f) = self.flows[i as usize].as_mut() {
            f.state = State::Idle;
            if !f.queue.is_empty() {
                self.activate_flow(i);
            }
        }
    }

    /// Set (or clear, with `None`) a group's aggregate bucket (`SIO_SET_GROUP_QOS`). Frames of
    /// members that can no longer ever conform are returned with their flow.
    pub fn set_group_shape(
        &mut self,
        group: GroupId,
        shape: Option<Shape>,
        now: Instant,
    ) -> Vec<(FlowId, P)> {
        let g = self.group_slot(group);
        let max_frame = self.max_frame;
        let mut gens = [0; 4];
        for gen in &mut gens {
            *gen = self.gen();
        }
        let Some(grp) = self.groups[g as usize].as_mut() else {
            return Vec::new();
        };
        grp.bucket = match (shape, grp.bucket.take()) {
            (None, _) => None,
            (Some(s), Some(mut b)) => {
                b.reconfigure(s, max_frame, now);
                Some(b)
            }
            (Some(s), None) => Some(TokenBucket::new(s, max_frame, now)),
        };
        grp.block = None;
        // Lanes waiting for the old bucket look again now.
        for (c, (lane, gen)) in grp.lanes.iter_mut().zip(gens).enumerate() {
            if lane.state == State::Waiting {
                lane.gen = gen;
                lane.state = State::Active;
                self.rings[c].push_back(Entry {
                    node: Node::Lane(g, c as u8),
                    gen,
                });
            }
        }
        let members: Vec<u32> = (0..self.flows.len() as u32)
            .filter(|&i| {
                self.flows[i as usize]
                    .as_ref()
                    .is_some_and(|f| f.group == Some(g) && !f.queue.is_empty())
            })
            .collect();
        let mut dropped = Vec::new();
        for i in members {
            let id = self.flows[i as usize].as_ref().map_or(0, |f| f.id);
            let lost = self.drop_unfit(i);
            if !lost.is_empty() {
                let gen = self.gen();
                if let Some(f) = self.flows[i as usize].as_mut() {
                    f.gen = gen;
                }
                self.restart_flow(i);
                dropped.extend(lost.into_iter().map(|p| (id, p)));
            }
        }
        dropped
    }

    /// Queue a frame of `frame_len` counted bytes (see [`crate::bucket::ethernet_frame_len`])
    /// on `flow`. Refused, with the frame handed back, for an unknown flow or a frame that
    /// could never conform ([`SchedulerError::FrameTooLarge`], `WSAEMSGSIZE`). `now` is not
    /// needed today (conformance is judged at `dequeue`); it keeps the sans-IO call shape.
    pub fn enqueue(
        &mut self,
        flow: FlowId,
        frame_len: usize,
        packet: P,
        _now: Instant,
    ) -> Result<(), Rejected<P>> {
        let reject = |error, packet| Err(Rejected { error, packet });
        let Some(&i) = self.flow_index.get(&flow) else {
            return reject(SchedulerError::UnknownFlow, packet);
        };
        let Some(f) = self.flows[i as usize].as_mut() else {
            return reject(SchedulerError::UnknownFlow, packet);
        };
        let group_fits = f
            .group
            .and_then(|g| self.groups[g as usize].as_ref())
            .and_then(|g| g.bucket.as_ref())
            .is_none_or(|b| b.fits(frame_len));
        if !f.bucket.fits(frame_len) || !group_fits {
            return reject(SchedulerError::FrameTooLarge, packet);
        }
        f.queue.push_back((frame_len, packet));
        f.bytes += frame_len as u64;
        self.queued_bytes += frame_len as u64;
        self.queued_packets += 1;
        if f.state == State::Idle {
            self.activate_flow(i);
        }
        Ok(())
    }

    /// Make flow `i` Active and put it in its ring (its class ring, or its group lane). Coming
    /// from Idle it starts with one quantum of deficit, as in Linux `sch_drr`, so a newly
    /// backlogged flow waits at most one round.
    fn activate_flow(&mut self, i: u32) {
        let quantum = self.max_frame as u64;
        let Some(f) = self.flows[i as usize].as_mut() else {
            return;
        };
        if f.state == State::Idle {
            f.deficit = quantum;
        }
        f.state = State::Active;
        let c = f.class.rank();
        let entry = Entry {
            node: Node::Flow(i),
            gen: f.gen,
        };
        let Some(g) = f.group else {
            self.rings[c].push_back(entry);
            return;
        };
        let prio = f.prio;
        let Some(grp) = self.groups[g as usize].as_mut() else {
            return;
        };
        let lane = &mut grp.lanes[c];
        let level = match lane.levels.binary_search_by_key(&prio, |l| l.0) {
            Ok(k) => k,
            Err(k) => {
                lane.levels.insert(k, (prio, VecDeque::new()));
                k
            }
        };
        lane.levels[level].1.push_back(entry);
        if lane.state == State::Idle {
            lane.state = State::Active;
            lane.deficit = quantum;
            self.rings[c].push_back(Entry {
                node: Node::Lane(g, c as u8),
                gen: lane.gen,
            });
        }
    }

    fn fire_timers(&mut self, now: Instant) {
        while let Some(&Reverse((at, gen, node))) = self.timers.peek() {
            if at > now {
                break;
            }
            self.timers.pop();
            match node {
                Node::Flow(i) => {
                    let waiting = self.flows[i as usize]
                        .as_ref()
                        .is_some_and(|f| f.gen == gen && f.state == State::Waiting);
                    if waiting {
                        self.activate_flow(i);
                    }
                }
                Node::Lane(g, c) => {
                    if let Some(grp) = self.groups[g as usize].as_mut() {
                        let lane = &mut grp.lanes[c as usize];
                        if lane.gen == gen && lane.state == State::Waiting {
                            lane.state = State::Active;
                            self.rings[c as usize].push_back(Entry { node, gen });
                        }
                    }
                }
            }
        }
    }

    fn entry_is_live(&self, e: Entry) -> bool {
        match e.node {
            Node::Flow(i) => self.flows[i as usize]
                .as_ref()
                .is_some_and(|f| f.gen == e.gen && f.state == State::Active),
            Node::Lane(g, c) => self.groups[g as usize].as_ref().is_some_and(|grp| {
                let lane = &grp.lanes[c as usize];
                lane.gen == e.gen && lane.state == State::Active
            }),
        }
    }

    fn timer_is_live(&self, gen: u64, node: Node) -> bool {
        match node {
            Node::Flow(i) => self.flows[i as usize]
                .as_ref()
                .is_some_and(|f| f.gen == gen && f.state == State::Waiting),
            Node::Lane(g, c) => self.groups[g as usize].as_ref().is_some_and(|grp| {
                let lane = &grp.lanes[c as usize];
                lane.gen == gen && lane.state == State::Waiting
            }),
        }
    }

    /// When to call [`dequeue`](Self::dequeue) next: `now` (or the link's next free instant)
    /// if a flow may be eligible, else the earliest instant a waiting flow conforms, else
    /// `None` (nothing queued, or only flows that wait for a renegotiation).
    pub fn next_release(&mut self, now: Instant) -> Option<Instant> {
        for c in 0..self.rings.len() {
            while let Some(&e) = self.rings[c].front() {
                if self.entry_is_live(e) {
                    break;
                }
                self.rings[c].pop_front();
            }
        }
        if self.rings.iter().any(|r| !r.is_empty()) {
            let link = self
                .link
                .as_ref()
                .and_then(|l| l.next_conformant(0, now))
                .unwrap_or(now);
            return Some(link.max(now));
        }
        while let Some(&Reverse((at, gen, node))) = self.timers.peek() {
            if self.timer_is_live(gen, node) {
                return Some(at);
            }
            self.timers.pop();
        }
        None
    }

    /// Release the next frame that may leave at `now`, by class, group priority and DRR;
    /// `None` when no queued frame conforms now (or the link is still busy).
    pub fn dequeue(&mut self, now: Instant) -> Option<(FlowId, P)> {
        self.fire_timers(now);
        if self.link.as_ref().is_some_and(|l| !l.conforms(0, now)) {
            return None;
        }
        for c in 0..self.rings.len() {
            while let Some(&entry) = self.rings[c].front() {
                let step = match entry.node {
                    Node::Flow(i) => self.step_flow(i, entry.gen, now),
                    Node::Lane(g, _) => self.step_lane(c, g, entry.gen, now),
                };
                match step {
                    Step::Drop => {
                        self.rings[c].pop_front();
                    }
                    Step::Rotate => {
                        self.rings[c].pop_front();
                        self.rings[c].push_back(entry);
                    }
                    Step::Serve(i) => return self.serve(c, i, now),
                }
            }
        }
        None
    }

    fn step_flow(&mut self, i: u32, gen: u64, now: Instant) -> Step {
        let quantum = self.max_frame as u64;
        let Some(f) = self.flows[i as usize]
            .as_mut()
            .filter(|f| f.gen == gen && f.state == State::Active)
        else {
            return Step::Drop;
        };
        let Some(&(len, _)) = f.queue.front() else {
            f.state = State::Idle;
            return Step::Drop;
        };
        if !f.bucket.conforms(len, now) {
            park_flow(f, i, &mut self.timers, len, now);
            return Step::Drop;
        }
        if f.deficit < len as u64 {
            f.deficit += quantum;
            return Step::Rotate;
        }
        Step::Serve(i)
    }

    fn step_lane(&mut self, c: usize, g: u32, gen: u64, now: Instant) -> Step {
        let quantum = self.max_frame as u64;
        let Some(grp) = self.groups[g as usize].as_mut() else {
            return Step::Drop;
        };
        let lane = &mut grp.lanes[c];
        if lane.gen != gen || lane.state != State::Active {
            return Step::Drop;
        }
        // A better class of this group is waiting for group credit: wait with it.
        if let Some((bc, until)) = grp.block {
            if bc < c && now < until {
                lane.state = State::Waiting;
                self.timers
                    .push(Reverse((until, lane.gen, Node::Lane(g, c as u8))));
                return Step::Drop;
            }
        }
        // The lane's candidate: best priority level first, DRR inside a level.
        let mut candidate = None;
        'levels: for (_, ring) in lane.levels.iter_mut() {
            while let Some(&e) = ring.front() {
                let Node::Flow(i) = e.node else {
                    ring.pop_front();
                    continue;
                };
                let Some(f) = self.flows[i as usize]
                    .as_mut()
                    .filter(|f| f.gen == e.gen && f.state == State::Active)
                else {
                    ring.pop_front();
                    continue;
                };
                let Some(&(len, _)) = f.queue.front() else {
                    f.state = State::Idle;
                    ring.pop_front();
                    continue;
                };
                if !f.bucket.conforms(len, now) {
                    park_flow(f, i, &mut self.timers, len, now);
                    ring.pop_front();
                    continue;
                }
                if f.deficit < len as u64 {
                    f.deficit += quantum;
                    ring.pop_front();
                    ring.push_back(e);
                    continue;
                }
                candidate = Some((i, len));
                break 'levels;
            }
        }
        let Some((i, len)) = candidate else {
            lane.state = State::Idle;
            lane.deficit = 0;
            return Step::Drop;
        };
        if let Some(bucket) = grp.bucket.as_ref() {
            if !bucket.conforms(len, now) {
                lane.state = State::Waiting;
                if let Some(at) = bucket.next_conformant(len, now) {
                    self.timers
                        .push(Reverse((at, lane.gen, Node::Lane(g, c as u8))));
                    let replace = match grp.block {
                        None => true,
                        Some((bc, until)) => c <= bc || until <= now,
                    };
                    if replace {
                        grp.block = Some((c, at));
                    }
                }
                return Step::Drop;
            }
        }
        if lane.deficit < len as u64 {
            lane.deficit += quantum;
            return Step::Rotate;
        }
        Step::Serve(i)
    }

    /// Send the head frame of flow `i`, which `step_*` found conformant and at the front of
    /// its ring (class ring `c`, or its level ring inside its lane at the front of `c`).
    fn serve(&mut self, c: usize, i: u32, now: Instant) -> Option<(FlowId, P)> {
        let f = self.flows[i as usize].as_mut()?;
        let (len, packet) = f.queue.pop_front()?;
        let id = f.id;
        f.bytes -= len as u64;
        f.bucket.consume(len, now);
        f.deficit = f.deficit.saturating_sub(len as u64);
        let emptied = f.queue.is_empty();
        if emptied {
            f.state = State::Idle;
            f.deficit = 0;
        }
        self.queued_bytes -= len as u64;
        self.queued_packets -= 1;
        if let Some(link) = self.link.as_mut() {
            link.consume(len, now);
        }
        match f.group {
            None => {
                if emptied {
                    self.rings[c].pop_front();
                }
            }
            Some(g) => {
                let prio = f.prio;
                if let Some(grp) = self.groups[g as usize].as_mut() {
                    if let Some(b) = grp.bucket.as_mut() {
                        b.consume(len, now);
                    }
                    if grp.block.is_some_and(|(bc, until)| bc == c || until <= now) {
                        grp.block = None;
                    }
                    let lane = &mut grp.lanes[c];
                    lane.deficit = lane.deficit.saturating_sub(len as u64);
                    if emptied {
                        if let Ok(k) = lane.levels.binary_search_by_key(&prio, |l| l.0) {
                            lane.levels[k].1.pop_front();
                        }
                    }
                }
            }
        }
        Some((id, packet))
    }

    /// Bytes queued on `flow` (for backpressure: stop feeding the flow above its limit), or
    /// `None` for an unknown flow.
    pub fn queued_bytes(&self, flow: FlowId) -> Option<u64> {
        let i = *self.flow_index.get(&flow)?;
        self.flows[i as usize].as_ref().map(|f| f.bytes)
    }

    /// Frames queued on `flow`, or `None` for an unknown flow.
    pub fn queued_packets(&self, flow: FlowId) -> Option<usize> {
        let i = *self.flow_index.get(&flow)?;
        self.flows[i as usize].as_ref().map(|f| f.queue.len())
    }

    /// Bytes queued on all flows.
    pub fn total_queued_bytes(&self) -> u64 {
        self.queued_bytes
    }

    /// Frames queued on all flows.
    pub fn total_queued_packets(&self) -> usize {
        self.queued_packets
    }

    /// Whether `flow` exists.
    pub fn contains_flow(&self, flow: FlowId) -> bool {
        self.flow_index.contains_key(&flow)
    }

    /// Number of flows.
    pub fn flow_count(&self) -> usize {
        self.flow_index.len()
    }

    /// Credit in `flow`'s rate bucket at `now` in bytes (for a non-blocking send's
    /// `WSAEWOULDBLOCK` decision), `None` if unknown or unlimited.
    pub fn flow_credit(&self, flow: FlowId, now: Instant) -> Option<u64> {
        let i = *self.flow_index.get(&flow)?;
        self.flows[i as usize].as_ref()?.bucket.credit(now)
    }
}

/// What [`shaping_workload`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WorkloadReport {
    /// Frames enqueued.
    pub enqueued: u64,
    /// Frames released by `dequeue`.
    pub released: u64,
    /// Frames still queued at the end (flows shaped below their offered load).
    pub queued: u64,
}

/// A deterministic scheduler workload for `ws2 bench shaping`: `flows` flows, `packets`
/// frames offered at 1 Mpps of simulated time (one per microsecond from `epoch`), lengths
/// 64–1514 bytes, flows picked pseudo-randomly. A tenth of the flows are guaranteed and
/// shaped 20% above their offered rate, a tenth are controlled-load members of groups of ten
/// (priorities 0–2) with an aggregate bucket, a tenth are best effort shaped 20% *below* their
/// offered rate (they stay backlogged and wait in the timer heap), the rest best effort and
/// unshaped. After every enqueue, every conformant frame is dequeued. The caller times it
/// (this crate reads no clock): cost per frame = elapsed / `packets`.
pub fn shaping_workload(flows: usize, packets: usize, epoch: Instant) -> WorkloadReport {
    let flows = flows.max(1) as u64;
    let mut s: Scheduler<u32> = Scheduler::new(DEFAULT_MAX_FRAME);
    // Mean frame 789 bytes, 1e6 / flows frames per second per flow.
    let offered = 789 * 1_000_000 / flows;
    for id in 0..flows {
        let shaped = |factor_pct: u64| Shape {
            token_rate: Some(offered * factor_pct / 100),
            token_bucket_size: Some(8 * DEFAULT_MAX_FRAME as u64),
            peak_bandwidth: None,
        };
        let config = match id % 10 {
            0 => FlowConfig {
                class: Class::Guaranteed,
                shape: shaped(120),
                ..FlowConfig::default()
            },
            1 => FlowConfig {
                class: Class::ControlledLoad,
                shape: shaped(150),
                group: Some(id / 100),
                group_priority: (id / 10 % 3) as u32,
            },
            2 => FlowConfig {
                shape: shaped(80),
                ..FlowConfig::default()
            },
            _ => FlowConfig::default(),
        };
        // Ids are distinct: cannot fail.
        let _ = s.add_flow(id, config, epoch);
    }
    for g in 0..flows.div_ceil(100) {
        let members = (flows - g * 100).min(100).div_ceil(10);
        let shape = Shape {
            token_rate: Some(offered * members * 120 / 100),
            token_bucket_size: Some(16 * DEFAULT_MAX_FRAME as u64),
            peak_bandwidth: None,
        };
        s.set_group_shape(g, Some(shape), epoch);
    }
    let mut rng: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut report = WorkloadReport::default();
    for k in 0..packets as u64 {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        let now = epoch + std::time::Duration::from_micros(k);
        let flow = rng % flows;
        let len = 64 + ((rng >> 32) % 1451) as usize;
        if s.enqueue(flow, len, k as u32, now).is_ok() {
            report.enqueued += 1;
        }
        while s.dequeue(now).is_some() {
            report.released += 1;
        }
    }
    report.queued = s.total_queued_packets() as u64;
    report
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const M: usize = DEFAULT_MAX_FRAME;
    const NS: u128 = 1_000_000_000;

    /// One frame released: when (ns after t0), by which flow, how long, how long it queued.
    #[derive(Clone, Copy, Debug)]
    struct Rec {
        at: u64,
        flow: FlowId,
        len: usize,
        delay: u64,
    }

    /// A traffic source: bulk (always at least two frames queued) or periodic.
    struct Source {
        flow: FlowId,
        len: usize,
        period: Option<Duration>,
        next: Instant,
    }

    fn bulk(flow: FlowId, len: usize, t0: Instant) -> Source {
        Source {
            flow,
            len,
            period: None,
            next: t0,
        }
    }

    fn periodic(flow: FlowId, len: usize, period: Duration, t0: Instant) -> Source {
        Source {
            flow,
            len,
            period: Some(period),
            next: t0,
        }
    }

    fn shape(rate: u64, bucket: u64, peak: Option<u64>) -> Shape {
        Shape {
            token_rate: Some(rate),
            token_bucket_size: Some(bucket),
            peak_bandwidth: peak,
        }
    }

    type Sched = Scheduler<(Instant, usize)>;

    /// Discrete-event run: the clock jumps to min(next release, next periodic arrival).
    fn simulate(s: &mut Sched, sources: &mut [Source], t0: Instant, dur: Duration) -> Vec<Rec> {
        let end = t0 + dur;
        let mut now = t0;
        let mut log = Vec::new();
        let ns = |t: Instant| t.duration_since(t0).as_nanos() as u64;
        loop {
            for src in sources.iter_mut() {
                if let Some(period) = src.period {
                    while src.next <= now {
                        s.enqueue(src.flow, src.len, (src.next, src.len), now)
                            .unwrap();
                        src.next += period;
                    }
                }
            }
            loop {
                for src in sources.iter().filter(|s| s.period.is_none()) {
                    while s.queued_packets(src.flow).unwrap() < 2 {
                        s.enqueue(src.flow, src.len, (now, src.len), now).unwrap();
                    }
                }
                let Some((flow, (queued, len))) = s.dequeue(now) else {
                    break;
                };
                log.push(Rec {
                    at: ns(now),
                    flow,
                    len,
                    delay: ns(now) - ns(queued),
                });
            }
            let mut next = s.next_release(now);
            for src in sources.iter().filter(|s| s.period.is_some()) {
                next = Some(next.map_or(src.next, |n| n.min(src.next)));
            }
            match next {
                Some(n) if n <= end => {
                    assert!(n > now, "livelock at {:?}", now - t0);
                    now = n;
                }
                _ => break,
            }
        }
        log
    }

    /// The most bytes released in any half-open window `[t, t + w)`, w in ns.
    fn max_window(log: &[Rec], flow: Option<FlowId>, w: u64) -> u64 {
        let recs: Vec<&Rec> = log
            .iter()
            .filter(|r| flow.is_none_or(|f| r.flow == f))
            .collect();
        let (mut j, mut sum, mut best) = (0, 0u64, 0u64);
        for i in 0..recs.len() {
            while j < recs.len() && recs[j].at < recs[i].at + w {
                sum += recs[j].len as u64;
                j += 1;
            }
            best = best.max(sum);
            sum -= recs[i].len as u64;
        }
        best
    }

    fn bytes(log: &[Rec], flow: FlowId) -> u64 {
        log.iter()
            .filter(|r| r.flow == flow)
            .map(|r| r.len as u64)
            .sum()
    }

    /// Checks bytes ≤ rate·w + depth for windows of `w` ns.
    fn assert_window_bound(log: &[Rec], flow: FlowId, w: u64, rate: u64, depth: u64) {
        let got = max_window(log, Some(flow), w) as u128;
        let bound = rate as u128 * w as u128 + depth as u128 * NS;
        assert!(
            got * NS <= bound,
            "flow {flow}: {got} bytes in a {w} ns window, bound {}",
            bound / NS
        );
    }

    #[test]
    fn long_run_rate_within_one_percent() {
        let t0 = Instant::now();
        for rate in [8_000u64, 125_000, 1_250_000, 12_500_000, 125_000_000] {
            let b = 10 * M as u64;
            let secs = (40_000 * M as u64 / rate).max(3);
            let mut s = Sched::default();
            s.add_flow(
                1,
                FlowConfig {
                    class: Class::Predictive,
                    shape: shape(rate, b, None),
                    ..Default::default()
                },
                t0,
            )
            .unwrap();
            let mut src = [bulk(1, M, t0)];
            let log = simulate(&mut s, &mut src, t0, Duration::from_secs(secs));
            let total = bytes(&log, 1);
            // Bucket bound, exact: never more than B + R·T.
            assert!(total <= b + rate * secs, "rate {rate}: {total}");
            let long_run = (total - b) as f64 / secs as f64;
            let err = (long_run - rate as f64).abs() / rate as f64;
            assert!(err < 0.01, "rate {rate}: long-run {long_run} B/s");
            let err_total = (total as f64 / secs as f64 - rate as f64).abs() / rate as f64;
            assert!(err_total < 0.01, "rate {rate}: {total} bytes in {secs} s");
            // No 1-second window above R·1 s + B, nor any 10 ms window above R·10 ms + B.
            assert_window_bound(&log, 1, 1_000_000_000, rate, b);
            assert_window_bound(&log, 1, 10_000_000, rate, b);
        }
    }

    #[test]
    fn peak_bandwidth_bounds_back_to_back_frames() {
        let t0 = Instant::now();
        let (rate, peak, b) = (1_250_000u64, 5_000_000u64, 200_000u64);
        let mut s = Sched::default();
        let config = FlowConfig {
            shape: shape(rate, b, Some(peak)),
            ..Default::default()
        };
        s.add_flow(1, config, t0).unwrap();
        let log = simulate(&mut s, &mut [bulk(1, M, t0)], t0, Duration::from_secs(5));
        // Full frames: no window of one frame's duration at the peak holds more than P·W,
        // i.e. consecutive releases are at least one frame time apart.
        for pair in log.windows(2) {
            let gap = (pair[1].at - pair[0].at) as u128;
            assert!(gap * peak as u128 >= M as u128 * NS, "gap {gap} ns");
        }
        let frame_time = (M as u128 * NS).div_ceil(peak as u128) as u64;
        assert!(max_window(&log, Some(1), frame_time) as usize <= M);
        // The burst left at the peak: the first B bytes took B / P, not 0.
        let first_burst = log.iter().take_while(|r| r.at < frame_time * 10).count();
        assert_eq!(first_burst, 10);
        assert_window_bound(&log, 1, 1_000_000_000, rate, b);
    }

    #[test]
    fn random_traffic_respects_both_buckets() {
        let t0 = Instant::now();
        let mut rng: u64 = 0x2545_F491_4F6C_DD1D;
        let mut next = move || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        let mut s = Sched::default();
        s.set_link_rate(Some(12_500_000), t0);
        let mut shapes = Vec::new();
        let mut sources = Vec::new();
        for flow in 0..6u64 {
            let rate = 20_000 + next() % 2_000_000;
            let b = M as u64 + next() % 50_000;
            let peak = rate * (2 + next() % 4);
            let class = Class::ALL[(next() % 4) as usize];
            let config = FlowConfig {
                class,
                shape: shape(rate, b, Some(peak)),
                ..Default::default()
            };
            s.add_flow(flow, config, t0).unwrap();
            shapes.push((rate, b, peak));
            let len = 64 + (next() % (M as u64 - 63)) as usize;
            sources.push(if flow % 2 == 0 {
                bulk(flow, len, t0)
            } else {
                periodic(flow, len, Duration::from_micros(100 + next() % 5000), t0)
            });
        }
        let log = simulate(&mut s, &mut sources, t0, Duration::from_secs(4));
        for (flow, &(rate, b, peak)) in shapes.iter().enumerate() {
            let flow = flow as u64;
            for w in [1_000u64, 300_000, 10_000_000, 1_000_000_000] {
                assert_window_bound(&log, flow, w, rate, b);
                assert_window_bound(&log, flow, w, peak, M as u64);
            }
        }
        // The link model: never above 12.5 MB/s plus one frame.
        for w in [100_000u64, 1_000_000_000] {
            let got = max_window(&log, None, w) as u128;
            assert!(got * NS <= 12_500_000 * w as u128 + 2 * M as u128 * NS);
        }
    }

    #[test]
    fn bucket_starts_full() {
        let t0 = Instant::now();
        let mut s: Scheduler<usize> = Scheduler::default();
        let config = FlowConfig {
            shape: shape(125_000, 10 * M as u64 + 100, None),
            ..Default::default()
        };
        s.add_flow(9, config, t0).unwrap();
        for k in 0..20 {
            s.enqueue(9, M, k, t0).unwrap();
        }
        let burst: Vec<usize> = std::iter::from_fn(|| s.dequeue(t0).map(|p| p.1)).collect();
        assert_eq!(burst, (0..10).collect::<Vec<_>>());
        assert_eq!(s.queued_bytes(9), Some(10 * M as u64));
        // The 11th needs M − 100 more bytes at 125 kB/s.
        let wait = Duration::from_nanos(((M - 100) as u64 * 1_000_000_000).div_ceil(125_000));
        assert_eq!(s.next_release(t0), Some(t0 + wait));
        assert!(s.dequeue(t0 + wait - Duration::from_nanos(1)).is_none());
        assert_eq!(s.dequeue(t0 + wait), Some((9, 10)));
    }

    #[test]
    fn frame_larger_than_bucket_is_refused() {
        let t0 = Instant::now();
        let mut s: Scheduler<&str> = Scheduler::default();
        let config = FlowConfig {
            shape: shape(1000, 500, None),
            group: Some(3),
            ..Default::default()
        };
        s.add_flow(1, config, t0).unwrap();
        let err = s.enqueue(1, 501, "big", t0).unwrap_err();
        assert_eq!(err.error, SchedulerError::FrameTooLarge);
        assert_eq!(err.packet, "big");
        s.enqueue(1, 500, "ok", t0).unwrap();
        // A group bucket smaller than a queued frame drops it and refuses the next one.
        let dropped = s.set_group_shape(3, Some(shape(1000, 400, None)), t0);
        assert_eq!(dropped, vec![(1, "ok")]);
        assert_eq!(s.queued_bytes(1), Some(0));
        let err = s.enqueue(1, 401, "mid", t0).unwrap_err();
        assert_eq!(err.error, SchedulerError::FrameTooLarge);
        assert_eq!(
            s.enqueue(2, 10, "who", t0).unwrap_err().error,
            SchedulerError::UnknownFlow
        );
        assert_eq!(s.dequeue(t0), None);
        assert_eq!(s.next_release(t0), None);
    }

    /// G.711, 20 ms: 160 bytes of audio + RTP 12 + UDP 8 + IP 20 + Ethernet 14 = 214 bytes,
    /// 50 frames/s = 10 700 B/s.
    const G711_LEN: usize = 214;

    fn voice_and_bulk(voice: Class, bulk_class: Class) -> (Vec<Rec>, u64) {
        let t0 = Instant::now();
        let link = 1_250_000; // 10 Mbit/s
        let mut s = Sched::default();
        s.set_link_rate(Some(link), t0);
        let voice_cfg = FlowConfig {
            class: voice,
            shape: shape(10_700, 2 * G711_LEN as u64, None),
            ..Default::default()
        };
        s.add_flow(1, voice_cfg, t0).unwrap();
        let bulk_cfg = FlowConfig {
            class: bulk_class,
            ..Default::default()
        };
        let mut sources = vec![periodic(1, G711_LEN, Duration::from_millis(20), t0)];
        for flow in 2..5 {
            s.add_flow(flow, bulk_cfg, t0).unwrap();
            sources.push(bulk(flow, M, t0));
        }
        let log = simulate(&mut s, &mut sources, t0, Duration::from_secs(10));
        let worst = log
            .iter()
            .filter(|r| r.flow == 1)
            .map(|r| r.delay)
            .max()
            .unwrap_or(u64::MAX);
        (log, worst)
    }

    #[test]
    fn strict_priority_bounds_voice_delay() {
        let (log, worst) = voice_and_bulk(Class::Guaranteed, Class::BestEffort);
        // All 500 voice frames left, each behind at most the one bulk frame on the wire.
        assert!(log.iter().filter(|r| r.flow == 1).count() >= 500);
        let one_frame = (M as u64 * 1_000_000_000).div_ceil(1_250_000);
        assert!(worst <= one_frame, "worst voice delay {worst} ns");
        // The bulk flows filled the rest of the link.
        let bulk: u64 = (2..5).map(|f| bytes(&log, f)).sum();
        assert!(bulk as f64 >= 0.98 * (1_250_000.0 * 10.0 - 500.0 * G711_LEN as f64));

        // Swapped, the voice flow waits behind bulk traffic: far worse (here: starved).
        let (_, swapped) = voice_and_bulk(Class::BestEffort, Class::Guaranteed);
        assert!(swapped > 100 * worst.max(1), "swapped {swapped} ns");
        // Same class: DRR, bounded by one round of the three bulk flows.
        let (_, equal) = voice_and_bulk(Class::BestEffort, Class::BestEffort);
        assert!(equal > worst && equal <= 4 * one_frame, "equal {equal} ns");
    }

    #[test]
    fn drr_shares_bytes_fairly_among_equals() {
        let t0 = Instant::now();
        let mut s = Sched::default();
        s.set_link_rate(Some(1_250_000), t0);
        let mut sources = Vec::new();
        for (flow, len) in [(1, M), (2, 700), (3, 90)] {
            s.add_flow(flow, FlowConfig::default(), t0).unwrap();
            sources.push(bulk(flow, len, t0));
        }
        let log = simulate(&mut s, &mut sources, t0, Duration::from_secs(20));
        let total: u64 = (1..4).map(|f| bytes(&log, f)).sum();
        for flow in 1..4 {
            let share = bytes(&log, flow) as f64 / total as f64;
            assert!((share - 1.0 / 3.0).abs() < 0.01, "flow {flow}: {share}");
        }
    }

    #[test]
    fn group_bucket_limits_the_sum_of_members() {
        let t0 = Instant::now();
        let (rate, b) = (250_000u64, 5_000u64);
        let mut s = Sched::default();
        let mut sources = Vec::new();
        for (flow, len) in [(1, M), (2, 1000), (3, 500)] {
            let config = FlowConfig {
                group: Some(7),
                ..Default::default()
            };
            s.add_flow(flow, config, t0).unwrap();
            sources.push(bulk(flow, len, t0));
        }
        assert!(s
            .set_group_shape(7, Some(shape(rate, b, None)), t0)
            .is_empty());
        let secs = 20;
        let log = simulate(&mut s, &mut sources, t0, Duration::from_secs(secs));
        let total: u64 = (1..4).map(|f| bytes(&log, f)).sum();
        assert!(total <= b + rate * secs);
        assert!(total as f64 >= 0.99 * (rate * secs) as f64);
        let w = 1_000_000_000u64;
        assert!(
            max_window(&log, None, w) as u128 * NS <= rate as u128 * w as u128 + b as u128 * NS
        );
        // Equal priorities: DRR inside the group.
        for flow in 1..4 {
            let share = bytes(&log, flow) as f64 / total as f64;
            assert!((share - 1.0 / 3.0).abs() < 0.02, "flow {flow}: {share}");
        }
    }

    fn member(group: GroupId, prio: u32, class: Class) -> FlowConfig {
        FlowConfig {
            class,
            group: Some(group),
            group_priority: prio,
            ..Default::default()
        }
    }

    #[test]
    fn group_priority_orders_members() {
        let t0 = Instant::now();
        let rate = 250_000u64;
        let secs = 20;
        // Both backlogged: priority 0 takes the whole aggregate.
        let mut s = Sched::default();
        s.add_flow(1, member(5, 1, Class::BestEffort), t0).unwrap();
        s.add_flow(2, member(5, 0, Class::BestEffort), t0).unwrap();
        s.set_group_shape(5, Some(shape(rate, 3000, None)), t0);
        let mut sources = [bulk(1, M, t0), bulk(2, M, t0)];
        let log = simulate(&mut s, &mut sources, t0, Duration::from_secs(secs));
        assert_eq!(bytes(&log, 1), 0);
        assert!(bytes(&log, 2) as f64 >= 0.99 * (rate * secs) as f64);

        // Priority 0 at 30% of the aggregate is not starved by priority 1's backlog
        // (CHECKLIST 386): all its frames leave, promptly; priority 1 gets the rest.
        let mut s = Sched::default();
        s.add_flow(1, member(5, 1, Class::BestEffort), t0).unwrap();
        s.add_flow(2, member(5, 0, Class::BestEffort), t0).unwrap();
        s.set_group_shape(5, Some(shape(rate, 3000, None)), t0);
        let period = Duration::from_micros(13_333); // 1000 B every 13.3 ms = 75 kB/s
        let mut sources = [bulk(1, M, t0), periodic(2, 1000, period, t0)];
        let log = simulate(&mut s, &mut sources, t0, Duration::from_secs(secs));
        let sent = log.iter().filter(|r| r.flow == 2).count() as u64;
        assert!(sent >= secs * 1_000_000 / 13_333);
        let worst = log.iter().filter(|r| r.flow == 2).map(|r| r.delay).max();
        // At worst it waits for the credit one bulk frame took plus its own.
        let bound = (M as u64 + 1000) * 1_000_000_000 / rate;
        assert!(worst.unwrap() <= bound, "worst {worst:?}");
        let low = bytes(&log, 1) as f64 / secs as f64;
        assert!(
            low >= 0.69 * rate as f64 && low <= 0.71 * rate as f64,
            "{low}"
        );
    }

    #[test]
    fn better_class_in_group_gets_group_credit_first() {
        let t0 = Instant::now();
        let rate = 100_000u64;
        let mut s = Sched::default();
        s.add_flow(1, member(2, 0, Class::BestEffort), t0).unwrap();
        s.add_flow(2, member(2, 3, Class::Guaranteed), t0).unwrap();
        s.set_group_shape(2, Some(shape(rate, 2 * M as u64, None)), t0);
        let mut sources = [
            bulk(1, M, t0),
            periodic(2, G711_LEN, Duration::from_millis(20), t0),
        ];
        let log = simulate(&mut s, &mut sources, t0, Duration::from_secs(10));
        assert!(log.iter().filter(|r| r.flow == 2).count() >= 500);
        let worst = log.iter().filter(|r| r.flow == 2).map(|r| r.delay).max();
        let bound = (M + G711_LEN) as u64 * 1_000_000_000 / rate;
        assert!(worst.unwrap() <= bound, "worst {worst:?}");
    }

    #[test]
    fn group_priority_does_not_leak_outside_the_group() {
        let t0 = Instant::now();
        let mut s = Sched::default();
        s.set_link_rate(Some(1_250_000), t0);
        s.add_flow(1, member(4, 5, Class::BestEffort), t0).unwrap();
        s.add_flow(2, FlowConfig::default(), t0).unwrap();
        let mut sources = [bulk(1, M, t0), bulk(2, M, t0)];
        let log = simulate(&mut s, &mut sources, t0, Duration::from_secs(10));
        let share = bytes(&log, 1) as f64 / (bytes(&log, 1) + bytes(&log, 2)) as f64;
        assert!((share - 0.5).abs() < 0.01, "{share}");
    }

    #[test]
    fn renegotiation_takes_effect_and_remove_returns_frames() {
        let t0 = Instant::now();
        let mut s: Scheduler<u32> = Scheduler::default();
        let slow = FlowConfig {
            shape: shape(1000, M as u64, None),
            ..Default::default()
        };
        s.add_flow(1, slow, t0).unwrap();
        assert_eq!(s.add_flow(1, slow, t0), Err(SchedulerError::DuplicateFlow));
        for k in 0..4 {
            s.enqueue(1, 1000, k, t0).unwrap();
        }
        assert_eq!(s.dequeue(t0), Some((1, 0)));
        assert_eq!(s.dequeue(t0), None);
        assert_eq!(s.next_release(t0), Some(t0 + Duration::from_millis(486)));
        // Faster now: the waiting flow is looked at again at once.
        let fast = FlowConfig {
            shape: shape(1_000_000, 10_000, None),
            ..slow
        };
        assert!(s.update_flow(1, fast, t0).unwrap().is_empty());
        let later = t0 + Duration::from_millis(10);
        assert_eq!(s.dequeue(later), Some((1, 1)));
        // A bucket smaller than the queued frames drops them.
        let tiny = FlowConfig {
            shape: shape(1000, 999, None),
            ..slow
        };
        assert_eq!(s.update_flow(1, tiny, later).unwrap(), vec![2, 3]);
        assert_eq!(s.dequeue(later), None);
        s.enqueue(1, 999, 4, later).unwrap();
        assert_eq!(s.remove_flow(1), Some(vec![4]));
        assert_eq!(s.remove_flow(1), None);
        assert_eq!(s.total_queued_bytes(), 0);
        assert_eq!(s.next_release(later), None);
        assert_eq!(
            s.update_flow(1, slow, later),
            Err(SchedulerError::UnknownFlow)
        );
    }

    #[test]
    fn zero_rate_waits_for_renegotiation() {
        let t0 = Instant::now();
        let mut s: Scheduler<u32> = Scheduler::default();
        let zero = FlowConfig {
            shape: shape(0, M as u64, None),
            ..Default::default()
        };
        s.add_flow(1, zero, t0).unwrap();
        s.enqueue(1, M, 0, t0).unwrap();
        s.enqueue(1, M, 1, t0).unwrap();
        assert_eq!(s.dequeue(t0), Some((1, 0)));
        assert_eq!(s.dequeue(t0 + Duration::from_secs(1000)), None);
        assert_eq!(s.next_release(t0), None);
        s.update_flow(1, FlowConfig::default(), t0).unwrap();
        assert_eq!(s.dequeue(t0), Some((1, 1)));
    }

    #[test]
    fn does_not_panic_on_bad_instant() {
        let t0 = Instant::now() + Duration::from_secs(100);
        let mut s: Scheduler<u32> = Scheduler::default();
        s.set_link_rate(Some(100_000), t0);
        let config = FlowConfig {
            shape: shape(10_000, 3000, Some(20_000)),
            group: Some(1),
            ..Default::default()
        };
        s.add_flow(1, config, t0).unwrap();
        s.set_group_shape(1, Some(shape(5000, 3000, None)), t0);
        for k in 0..10 {
            let now = if k % 2 == 0 {
                t0 - Duration::from_secs(k.into())
            } else {
                t0 + Duration::from_millis(k.into())
            };
            s.enqueue(1, 500, k, now).unwrap();
            while s.dequeue(now).is_some() {}
            let _ = s.next_release(now);
        }
    }

    #[test]
    fn workload_runs() {
        let report = shaping_workload(100, 20_000, Instant::now());
        assert_eq!(report.enqueued, 20_000);
        assert_eq!(report.enqueued, report.released + report.queued);
        assert!(report.released > 15_000);
    }

    /// `cargo test -p ws2-qos --release -- --ignored --nocapture scheduler_cost`
    #[test]
    #[ignore]
    fn scheduler_cost() {
        let packets = 2_000_000;
        for _ in 0..3 {
            let start = Instant::now();
            let report = shaping_workload(1000, packets, Instant::now());
            let ns = start.elapsed().as_nanos() as f64 / packets as f64;
            println!("1000 flows, {packets} frames: {ns:.0} ns per frame (enqueue + dequeue), {report:?}");
        }
    }
}
