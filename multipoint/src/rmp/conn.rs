//! One end of one root↔leaf RMP connection: docs/rmp.md §4 (version negotiation), §5 (joining),
//! §6 (data and teardown), §7 (keepalive), §8 (errors) and §12 (bounded state: the acceptor's
//! JOIN deadline, PONG coalescing, the slow-peer limit).
//!
//! Heads up! Before working on this file read docs/rmp.md §4–§8; every rule enforced here is
//! written there first, and the comments cite the section.
//!
//! Sans-IO: a [`Connection`] owns no socket and reads no clock. The engine
//! - feeds bytes read from the TCP connection to [`Connection::receive`] and the peer's FIN to
//!   [`Connection::receive_eof`];
//! - calls the application commands ([`Connection::join`], [`Connection::accept`],
//!   [`Connection::reject`], [`Connection::send_data`], [`Connection::relay`],
//!   [`Connection::disconnect`], [`Connection::end_session`]);
//! - drains [`Connection::poll_event`] after every input;
//! - writes the bytes due on the TCP connection: either all at once with
//!   [`Connection::transmit`], or, with backpressure, what TCP takes of
//!   [`Connection::queued`], reported back with [`Connection::transmitted`] (the rest stays
//!   queued here, where the machine can see it: docs/rmp.md §12);
//! - calls [`Connection::on_timer`] at [`Connection::poll_at`];
//! - closes the TCP connection once [`Connection::is_closed`] and the transmit bytes are flushed
//!   (or resets it at once after [`Event::PeerTooSlow`]: the queue was dropped).
//!
//! Bounded by contract (docs/rmp.md §12): what a peer can make this end queue is at most one
//! maximum message in the decoder, the handshake messages, one PONG not yet taken by TCP
//! however many PINGs arrive, one PING of ours not yet taken, and — with
//! [`Config::slow_peer`] — [`SlowPeerLimit::max_queued`] bytes of our own data.
//!
//! Time is monotonic by contract but never trusted: an `Instant` earlier than a previous one
//! never moves a deadline earlier and never panics.

use std::collections::VecDeque;
use std::fmt;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::wire::{
    encode, DataPlane, DecodeError, Decoder, Initiator, Join, JoinFlags, LeafId, Message,
    MessageType, RejectReason, Side, MAX_PAYLOAD, MAX_QOS, MAX_USER_DATA,
};

/// The protocol versions this implementation speaks (docs/rmp.md §4).
pub const SUPPORTED_VERSIONS: (u8, u8) = (1, 1);

/// Per-connection settings (docs/rmp.md §4, §5, §7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    /// Lowest protocol version offered in HELLO (default 1).
    pub min_version: u8,
    /// Highest protocol version offered in HELLO (default 1).
    pub max_version: u8,
    /// Send PING after this long without sending anything (default 1 s).
    pub ping_interval: Duration,
    /// The peer is dead after this long without receiving anything (default 3 s).
    pub dead_interval: Duration,
    /// The initiator gives up on a join not answered within this time; the acceptor closes a
    /// connection whose JOIN has not arrived this long after the connection began (docs/rmp.md
    /// §5.3, §12). Default 30 s; `None` waits for ever, relying on keepalive alone.
    pub join_timeout: Option<Duration>,
    /// The slow-peer limit on our transmit queue (docs/rmp.md §12); `None` (the default) never
    /// gives up on a peer that is alive but does not read, like TCP. The engine sets it on
    /// the root's side of every leaf's connection.
    pub slow_peer: Option<SlowPeerLimit>,
}

/// When a peer that does not take our bytes is dropped (docs/rmp.md §12).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlowPeerLimit {
    /// Bytes queued for the peer beyond what TCP took; a message that would queue more drops
    /// the peer instead ([`SlowPeer::QueueFull`]).
    pub max_queued: usize,
    /// Time bytes may wait without TCP taking any of them ([`SlowPeer::NoProgress`]).
    pub max_stall: Duration,
}

impl SlowPeerLimit {
    /// The root's limit on each leaf (docs/rmp.md §12): 1 MiB queued, 10 s without progress.
    pub const ROOT: SlowPeerLimit = SlowPeerLimit {
        max_queued: 1024 * 1024,
        max_stall: Duration::from_secs(10),
    };
}

/// Which limit a slow peer passed (docs/rmp.md §12).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlowPeer {
    /// The next message would have queued `queued` bytes, over `limit`.
    QueueFull {
        /// Bytes that would have been queued.
        queued: usize,
        /// [`SlowPeerLimit::max_queued`].
        limit: usize,
    },
    /// TCP took none of the queued bytes for `waited`.
    NoProgress {
        /// How long the bytes waited.
        waited: Duration,
    },
}

impl fmt::Display for SlowPeer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::QueueFull { queued, limit } => write!(
                f,
                "the peer reads too slowly: {queued} bytes would wait for it (limit {limit})"
            ),
            Self::NoProgress { waited } => {
                write!(f, "the peer took none of our bytes for {waited:?}")
            }
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            min_version: SUPPORTED_VERSIONS.0,
            max_version: SUPPORTED_VERSIONS.1,
            ping_interval: Duration::from_secs(1),
            dead_interval: Duration::from_secs(3),
            join_timeout: Some(Duration::from_secs(30)),
            slow_peer: None,
        }
    }
}

/// Where a connection is, named for what it waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum State {
    /// Our HELLO is sent; waiting for the peer's.
    ExpectHello,
    /// Initiator, version agreed, [`Connection::join`] not called yet.
    Ready,
    /// Acceptor, version agreed, waiting for JOIN (no longer than the join timeout from the
    /// connection's start, docs/rmp.md §12).
    ExpectJoin,
    /// Initiator, JOIN sent, waiting for ACCEPT or REJECT.
    ExpectAccept,
    /// Acceptor, JOIN reported as [`Event::JoinRequest`]; waiting for the application's
    /// [`Connection::accept`] or [`Connection::reject`] (`CF_DEFER` = staying here).
    JoinPending,
    /// Joined: data may flow (subject to DISCONNECT and the leaf's `JL_*` flags).
    Established,
    /// Nothing more will be sent or received; flush [`Connection::transmit`] and close TCP.
    Closed,
}

/// What happened, for the engine to turn into FD_ events (docs/rmp.md §5–§8).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Acceptor: a JOIN arrived (`FD_ACCEPT`; the condition function's inputs). Answer with
    /// [`Connection::accept`] or [`Connection::reject`], now or later (`CF_DEFER`).
    JoinRequest {
        /// Root-invite or leaf-request (matches the peer's role).
        initiator: Initiator,
        /// The leaf's role in the session.
        flags: JoinFlags,
        /// `lpCallerData`.
        caller_data: Vec<u8>,
        /// `lpSQOS` bytes.
        sqos: Option<Vec<u8>>,
        /// `lpGQOS` bytes.
        gqos: Option<Vec<u8>>,
    },
    /// Initiator: the peer accepted (`FD_CONNECT`, `lpCalleeData`).
    Joined {
        /// `lpCalleeData`.
        callee_data: Vec<u8>,
    },
    /// The peer sent REJECT; the connection is closed. Before [`Event::Joined`] with
    /// [`RejectReason::Refused`] this is `WSAECONNREFUSED`.
    Rejected(RejectReason),
    /// A DATA message.
    Data(Vec<u8>),
    /// Leaf, non-rooted plane: another leaf's data relayed by the root.
    Relayed {
        /// The originating leaf.
        origin: LeafId,
        /// Its address, for `recvfrom`.
        addr: Option<SocketAddr>,
        /// The payload.
        data: Vec<u8>,
    },
    /// The peer sent DISCONNECT: no more data from it (`FD_CLOSE`; the data is for
    /// `WSARecvDisconnect`).
    PeerDisconnected {
        /// Disconnect data.
        data: Vec<u8>,
    },
    /// Leaf: the root ended the session (END); the connection is closed.
    SessionEnded,
    /// The peer closed TCP. `clean` when it had sent DISCONNECT (or END/REJECT) first;
    /// otherwise an abortive close (`WSAECONNRESET`).
    PeerClosed {
        /// Whether the close was announced.
        clean: bool,
    },
    /// The peer broke the protocol; REJECT is queued and the connection is closed.
    ProtocolError(ProtocolError),
    /// Nothing arrived for the dead interval; the connection is closed, nothing sent.
    PeerDead,
    /// Initiator: no answer to JOIN within the join timeout (`WSAETIMEDOUT`); closed.
    JoinTimedOut,
    /// Acceptor: no JOIN within the join timeout of the connection's start (docs/rmp.md §12);
    /// closed, nothing sent.
    JoinMissing,
    /// The peer is alive but does not take our bytes (docs/rmp.md §12, only with
    /// [`Config::slow_peer`]); the queue is dropped, the connection is closed, nothing more is
    /// sent: the engine resets TCP (`WSAECONNABORTED` here).
    PeerTooSlow(SlowPeer),
}

/// How the peer broke the protocol (docs/rmp.md §8).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProtocolError {
    /// Bytes that do not decode.
    Decode(DecodeError),
    /// HELLO ranges have no version in common (docs/rmp.md §4).
    NoCommonVersion {
        /// Our (min, max).
        ours: (u8, u8),
        /// The peer's (min, max).
        theirs: (u8, u8),
    },
    /// The peer's HELLO claims our role (root to root, leaf to leaf).
    RoleMismatch,
    /// The peer's HELLO names the other data plane.
    PlaneMismatch,
    /// A JOIN whose initiator kind does not match the peer's role.
    WrongInitiator,
    /// A well-formed message at a time it may not come (a second HELLO or JOIN, DATA before
    /// ACCEPT or after DISCONNECT, ACCEPT at the acceptor, ...).
    Unexpected {
        /// The message.
        got: MessageType,
        /// Our state when it came.
        state: State,
    },
    /// A message the peer may not send at all in its role or join flags (RELAYED from a leaf
    /// or on the rooted plane, END from a leaf, DATA from a receiver-only leaf or to a
    /// sender-only one).
    NotAllowed(MessageType),
}

impl ProtocolError {
    /// The REJECT reason sent to the peer.
    pub fn reject_reason(self) -> RejectReason {
        match self {
            Self::Decode(_) | Self::WrongInitiator | Self::Unexpected { .. } => {
                RejectReason::BadMessage
            }
            Self::NoCommonVersion { .. } => RejectReason::Version,
            Self::RoleMismatch | Self::PlaneMismatch => RejectReason::Mismatch,
            Self::NotAllowed(_) => RejectReason::NotAllowed,
        }
    }
}

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Decode(e) => write!(f, "{e}"),
            Self::NoCommonVersion { ours, theirs } => write!(
                f,
                "no common RMP version: ours {}..={}, theirs {}..={}",
                ours.0, ours.1, theirs.0, theirs.1
            ),
            Self::RoleMismatch => f.write_str("the peer claims our role"),
            Self::PlaneMismatch => f.write_str("the peer uses the other data plane"),
            Self::WrongInitiator => f.write_str("JOIN initiator kind does not match the peer"),
            Self::Unexpected { got, state } => write!(f, "{got} unexpected in state {state:?}"),
            Self::NotAllowed(t) => write!(f, "the peer may not send {t}"),
        }
    }
}

impl std::error::Error for ProtocolError {}

/// Why a command was refused; nothing was sent (the caller's mistake, docs/rmp.md §8).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommandError {
    /// The command does not fit the current state (e.g. data before the join completes).
    WrongState(State),
    /// The command is for the other end (a leaf calling `end_session`, the acceptor calling
    /// `join`, the initiator calling `accept`).
    WrongSide,
    /// A join is already outstanding or done on this connection (`WSAEALREADY`/`WSAEISCONN`).
    AlreadyJoining,
    /// The leaf's `JL_*` flags forbid it (sending from a receiver-only leaf, sending to a
    /// sender-only leaf).
    NotAllowed,
    /// `relay` on the rooted data plane.
    RootedPlane,
    /// Data, user data or a flowspec over its limit (`WSAEMSGSIZE`/`WSAEFAULT`).
    TooLarge,
    /// We already sent DISCONNECT (`WSAESHUTDOWN`).
    Disconnected,
}

impl fmt::Display for CommandError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::WrongState(s) => write!(f, "not allowed in state {s:?}"),
            Self::WrongSide => f.write_str("not allowed at this end of the connection"),
            Self::AlreadyJoining => f.write_str("a join is already outstanding or done"),
            Self::NotAllowed => f.write_str("the leaf's JL_ flags forbid it"),
            Self::RootedPlane => f.write_str("relaying exists only on the non-rooted data plane"),
            Self::TooLarge => f.write_str("over the size limit"),
            Self::Disconnected => f.write_str("already disconnected"),
        }
    }
}

impl std::error::Error for CommandError {}

/// One end of one root↔leaf TCP connection (docs/rmp.md §4–§8). See the module docs for the
/// calling contract.
#[derive(Debug)]
pub struct Connection {
    side: Side,
    initiator: bool,
    plane: DataPlane,
    config: Config,
    state: State,
    version: Option<u8>,
    /// A join requested before the peer's HELLO (docs/rmp.md §5.1).
    queued_join: Option<Join>,
    /// The leaf's flags once a JOIN was sent or received.
    leaf_flags: Option<JoinFlags>,
    sent_disconnect: bool,
    got_disconnect: bool,
    decoder: Decoder,
    /// Bytes due on TCP, not taken yet.
    out: Vec<u8>,
    /// Bytes ever queued in `out` / taken from it (positions in our byte stream).
    queued_total: u64,
    taken_total: u64,
    /// Where our last PONG ends in the stream: while TCP has not taken it, a PING arriving
    /// queues no other (docs/rmp.md §12: one PONG waiting at most).
    pong_end: u64,
    /// Where our last PING ends: while TCP has not taken it, no other is queued.
    ping_end: u64,
    /// Since when the bytes in `out` wait without TCP taking any (`None` when empty).
    waiting_since: Option<Instant>,
    events: VecDeque<Event>,
    last_rx: Instant,
    last_tx: Instant,
    join_deadline: Option<Instant>,
}

impl Connection {
    /// A new connection end, with the default [`Config`]; its HELLO is queued at once.
    ///
    /// `initiator` is true at the end that called `WSAJoinLeaf` (it opened the TCP connection),
    /// false at the listening end.
    pub fn new(side: Side, initiator: bool, plane: DataPlane, now: Instant) -> Self {
        Self::with_config(side, initiator, plane, Config::default(), now)
    }

    /// A new connection end with `config`.
    pub fn with_config(
        side: Side,
        initiator: bool,
        plane: DataPlane,
        config: Config,
        now: Instant,
    ) -> Self {
        let mut conn = Self {
            side,
            initiator,
            plane,
            config,
            state: State::ExpectHello,
            version: None,
            queued_join: None,
            leaf_flags: None,
            sent_disconnect: false,
            got_disconnect: false,
            decoder: Decoder::new(),
            out: Vec::new(),
            queued_total: 0,
            taken_total: 0,
            pong_end: 0,
            ping_end: 0,
            waiting_since: None,
            events: VecDeque::new(),
            last_rx: now,
            last_tx: now,
            // docs/rmp.md §12: the acceptor waits for JOIN no longer than an initiator waits
            // for the answer (whose clock started before this connection existed).
            join_deadline: if initiator {
                None
            } else {
                config.join_timeout.and_then(|d| now.checked_add(d))
            },
        };
        // docs/rmp.md §4: both ends send HELLO immediately.
        conn.send(
            &Message::Hello {
                min_version: config.min_version,
                max_version: config.max_version,
                side,
                plane,
            },
            now,
        );
        conn
    }

    // ---- getters ----

    /// Where the connection is.
    pub fn state(&self) -> State {
        self.state
    }

    /// True once nothing more will happen; flush [`Connection::transmit`], then close TCP.
    pub fn is_closed(&self) -> bool {
        self.state == State::Closed
    }

    /// Our end.
    pub fn side(&self) -> Side {
        self.side
    }

    /// Whether we initiated the join.
    pub fn is_initiator(&self) -> bool {
        self.initiator
    }

    /// The data plane.
    pub fn plane(&self) -> DataPlane {
        self.plane
    }

    /// The negotiated protocol version, once both HELLOs are in.
    pub fn version(&self) -> Option<u8> {
        self.version
    }

    /// The leaf's `JL_*` role, once a JOIN was sent or received.
    pub fn leaf_flags(&self) -> Option<JoinFlags> {
        self.leaf_flags
    }

    /// Whether we sent DISCONNECT (no more data from us).
    pub fn sent_disconnect(&self) -> bool {
        self.sent_disconnect
    }

    /// Whether the peer sent DISCONNECT (no more data from it).
    pub fn got_disconnect(&self) -> bool {
        self.got_disconnect
    }

    /// Bytes waiting in [`Connection::transmit`].
    pub fn pending_transmit(&self) -> usize {
        self.out.len()
    }

    /// Since when the queued bytes have waited without TCP taking any of them (the last
    /// progress, or when the queue last filled from empty); `None` when nothing waits.
    pub fn waiting_since(&self) -> Option<Instant> {
        self.waiting_since
    }

    // ---- outputs ----

    /// The next event, oldest first.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// Moves every byte due on the TCP connection to the end of `out`; returns how many.
    pub fn transmit(&mut self, out: &mut Vec<u8>) -> usize {
        let n = self.out.len();
        out.append(&mut self.out);
        self.taken_total += n as u64;
        self.waiting_since = None;
        n
    }

    /// The bytes due on the TCP connection, oldest first, without taking them: write what TCP
    /// accepts, then report it with [`Connection::transmitted`].
    #[must_use]
    pub fn queued(&self) -> &[u8] {
        &self.out
    }

    /// TCP took the first `n` bytes of [`Connection::queued`] at `now` (progress, for the
    /// slow-peer limit). `n` past the queue's end counts as all of it.
    pub fn transmitted(&mut self, now: Instant, n: usize) {
        let n = n.min(self.out.len());
        if n == 0 {
            return;
        }
        self.out.drain(..n);
        self.taken_total += n as u64;
        self.waiting_since = if self.out.is_empty() {
            None
        } else {
            Some(self.waiting_since.map_or(now, |t| t.max(now)))
        };
    }

    /// When [`Connection::on_timer`] is next due; `None` once closed.
    #[must_use]
    pub fn poll_at(&self) -> Option<Instant> {
        if self.is_closed() {
            return None;
        }
        let ping = self.last_tx.checked_add(self.config.ping_interval);
        let stall = self
            .config
            .slow_peer
            .zip(self.waiting_since)
            .and_then(|(l, t)| t.checked_add(l.max_stall));
        [
            ping,
            self.last_rx.checked_add(self.config.dead_interval),
            self.join_deadline,
            stall,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    // ---- inputs ----

    /// Feeds bytes read from the TCP connection, in pieces of any size.
    ///
    /// Each complete message is handled at once; events queue for [`Connection::poll_event`].
    /// After a protocol error (or once closed) the rest is ignored.
    pub fn receive(&mut self, now: Instant, mut bytes: &[u8]) {
        if self.is_closed() || bytes.is_empty() {
            return;
        }
        // docs/rmp.md §7: anything received proves the peer alive. A clock that steps back
        // never moves a deadline earlier.
        self.last_rx = self.last_rx.max(now);
        while !bytes.is_empty() && !self.is_closed() {
            match self.decoder.decode(&mut bytes) {
                Ok(Some(msg)) => self.handle(msg, now),
                Ok(None) => {}
                Err(e) => self.fail(ProtocolError::Decode(e), now),
            }
        }
    }

    /// Bytes from the peer are waiting in TCP that the engine holds back (the application
    /// reads slowly): the peer is alive (docs/rmp.md §7), though nothing was decoded.
    pub fn peer_alive(&mut self, now: Instant) {
        if !self.is_closed() {
            self.last_rx = self.last_rx.max(now);
        }
    }

    /// The peer closed its sending side of TCP (FIN). Closes the connection (docs/rmp.md §6).
    pub fn receive_eof(&mut self, now: Instant) {
        if self.is_closed() {
            return;
        }
        if let Err(e) = self.decoder.finish() {
            self.fail(ProtocolError::Decode(e), now);
            return;
        }
        let clean = self.got_disconnect;
        self.close(Event::PeerClosed { clean });
    }

    /// Runs the keepalive and join timers (docs/rmp.md §5.3, §7).
    pub fn on_timer(&mut self, now: Instant) {
        if self.is_closed() {
            return;
        }
        if self
            .last_rx
            .checked_add(self.config.dead_interval)
            .is_some_and(|t| now >= t)
        {
            self.close(Event::PeerDead);
            return;
        }
        if self.join_deadline.is_some_and(|t| now >= t) {
            self.close(if self.initiator {
                Event::JoinTimedOut
            } else {
                Event::JoinMissing
            });
            return;
        }
        if let (Some(limit), Some(since)) = (self.config.slow_peer, self.waiting_since) {
            if since.checked_add(limit.max_stall).is_some_and(|t| now >= t) {
                let waited = now.saturating_duration_since(since);
                self.too_slow(SlowPeer::NoProgress { waited });
                return;
            }
        }
        if self
            .last_tx
            .checked_add(self.config.ping_interval)
            .is_some_and(|t| now >= t)
        {
            if self.ping_end > self.taken_total {
                // docs/rmp.md §12: our last PING still waits for TCP; another would only
                // queue behind it. The interval starts again.
                self.last_tx = self.last_tx.max(now);
            } else {
                self.send(&Message::Ping, now);
                self.ping_end = self.queued_total;
            }
        }
    }

    // ---- application commands ----

    /// Initiator: sends JOIN (`WSAJoinLeaf`), at once if the peer's HELLO is in, else as soon
    /// as it arrives. `flags` is the leaf's role (docs/rmp.md §3). Starts the join timeout.
    pub fn join(
        &mut self,
        now: Instant,
        flags: JoinFlags,
        caller_data: &[u8],
        sqos: Option<&[u8]>,
        gqos: Option<&[u8]>,
    ) -> Result<(), CommandError> {
        if !self.initiator {
            return Err(CommandError::WrongSide);
        }
        match self.state {
            State::ExpectHello if self.queued_join.is_none() => {}
            State::Ready => {}
            State::ExpectHello | State::ExpectAccept | State::Established => {
                return Err(CommandError::AlreadyJoining)
            }
            s => return Err(CommandError::WrongState(s)),
        }
        if caller_data.len() > MAX_USER_DATA
            || sqos.is_some_and(|q| q.len() > MAX_QOS)
            || gqos.is_some_and(|q| q.len() > MAX_QOS)
        {
            return Err(CommandError::TooLarge);
        }
        let join = Join {
            initiator: match self.side {
                Side::Root => Initiator::RootInvite,
                Side::Leaf => Initiator::LeafRequest,
            },
            flags,
            caller_data: caller_data.to_vec(),
            sqos: sqos.map(<[u8]>::to_vec),
            gqos: gqos.map(<[u8]>::to_vec),
        };
        self.leaf_flags = Some(flags);
        self.join_deadline = self.config.join_timeout.and_then(|d| now.checked_add(d));
        if self.state == State::Ready {
            self.send(&Message::Join(join), now);
            self.state = State::ExpectAccept;
        } else {
            self.queued_join = Some(join);
        }
        Ok(())
    }

    /// Acceptor: admits the pending join (`CF_ACCEPT`), sending ACCEPT with `callee_data`.
    pub fn accept(&mut self, now: Instant, callee_data: &[u8]) -> Result<(), CommandError> {
        if self.initiator {
            return Err(CommandError::WrongSide);
        }
        if self.state != State::JoinPending {
            return Err(CommandError::WrongState(self.state));
        }
        if callee_data.len() > MAX_USER_DATA {
            return Err(CommandError::TooLarge);
        }
        self.send(
            &Message::Accept {
                callee_data: callee_data.to_vec(),
            },
            now,
        );
        self.state = State::Established;
        Ok(())
    }

    /// Acceptor: refuses the pending join (`CF_REJECT`): REJECT(refused), then closed.
    pub fn reject(&mut self, now: Instant) -> Result<(), CommandError> {
        if self.initiator {
            return Err(CommandError::WrongSide);
        }
        if self.state != State::JoinPending {
            return Err(CommandError::WrongState(self.state));
        }
        self.send(
            &Message::Reject {
                reason: RejectReason::Refused,
            },
            now,
        );
        self.state = State::Closed;
        Ok(())
    }

    /// Sends one DATA message (d_root → this leaf, d_leaf → the root, or a side chat).
    ///
    /// Refused before the join completes, after our DISCONNECT, over [`MAX_PAYLOAD`], from a
    /// receiver-only leaf, or to a sender-only leaf (docs/rmp.md §6). With
    /// [`Config::slow_peer`], a message that would queue more than the limit is not sent: the
    /// connection closes with [`Event::PeerTooSlow`] instead (the peer's fault, not the
    /// caller's: the command still returns `Ok`).
    pub fn send_data(&mut self, now: Instant, data: &[u8]) -> Result<(), CommandError> {
        self.check_can_send()?;
        if data.len() > MAX_PAYLOAD {
            return Err(CommandError::TooLarge);
        }
        self.send(&Message::Data(data.to_vec()), now);
        Ok(())
    }

    /// Root, non-rooted plane: relays leaf `origin`'s data (from `addr`) to this leaf.
    pub fn relay(
        &mut self,
        now: Instant,
        origin: LeafId,
        addr: Option<SocketAddr>,
        data: &[u8],
    ) -> Result<(), CommandError> {
        if self.side != Side::Root {
            return Err(CommandError::WrongSide);
        }
        if self.plane != DataPlane::NonRooted {
            return Err(CommandError::RootedPlane);
        }
        self.check_can_send()?;
        if data.len() > MAX_PAYLOAD {
            return Err(CommandError::TooLarge);
        }
        self.send(
            &Message::Relayed {
                origin,
                addr,
                data: data.to_vec(),
            },
            now,
        );
        Ok(())
    }

    /// Sends DISCONNECT with `data` (`WSASendDisconnect`, or empty on `closesocket`): no more
    /// data from us. Closed once both ends have disconnected.
    pub fn disconnect(&mut self, now: Instant, data: &[u8]) -> Result<(), CommandError> {
        if self.state != State::Established {
            return Err(CommandError::WrongState(self.state));
        }
        if self.sent_disconnect {
            return Err(CommandError::Disconnected);
        }
        if data.len() > MAX_USER_DATA {
            return Err(CommandError::TooLarge);
        }
        self.send(
            &Message::Disconnect {
                data: data.to_vec(),
            },
            now,
        );
        self.sent_disconnect = true;
        if self.got_disconnect {
            self.state = State::Closed;
        }
        Ok(())
    }

    /// Root: the c_root is closed or shut down (docs/rmp.md §6). Sends END, or REJECT(refused)
    /// to a join still waiting for our answer, then closed.
    pub fn end_session(&mut self, now: Instant) -> Result<(), CommandError> {
        if self.side != Side::Root {
            return Err(CommandError::WrongSide);
        }
        if self.is_closed() {
            return Err(CommandError::WrongState(self.state));
        }
        let msg = if !self.initiator && matches!(self.state, State::ExpectJoin | State::JoinPending)
        {
            Message::Reject {
                reason: RejectReason::Refused,
            }
        } else {
            Message::End
        };
        self.send(&msg, now);
        self.state = State::Closed;
        Ok(())
    }

    // ---- internals ----

    fn check_can_send(&self) -> Result<(), CommandError> {
        if self.state != State::Established {
            return Err(CommandError::WrongState(self.state));
        }
        if self.sent_disconnect {
            return Err(CommandError::Disconnected);
        }
        let flags = self.leaf_flags.unwrap_or(JoinFlags::Both);
        let allowed = match self.side {
            Side::Root => flags.receives(),
            Side::Leaf => flags.sends(),
        };
        if allowed {
            Ok(())
        } else {
            Err(CommandError::NotAllowed)
        }
    }

    fn send(&mut self, msg: &Message, now: Instant) {
        let before = self.out.len();
        // Every caller checked the limits, so encode cannot fail; if it did, nothing is sent.
        if encode(msg, &mut self.out).is_err() {
            self.out.truncate(before);
            return;
        }
        if let Some(limit) = self.config.slow_peer {
            if self.out.len() > limit.max_queued {
                let queued = self.out.len();
                self.too_slow(SlowPeer::QueueFull {
                    queued,
                    limit: limit.max_queued,
                });
                return;
            }
        }
        self.queued_total += (self.out.len() - before) as u64;
        if before == 0 {
            self.waiting_since = Some(now);
        }
        self.last_tx = self.last_tx.max(now);
    }

    /// docs/rmp.md §12: the peer does not read; drop what waits for it and close.
    fn too_slow(&mut self, why: SlowPeer) {
        self.out.clear();
        self.waiting_since = None;
        self.close(Event::PeerTooSlow(why));
    }

    fn close(&mut self, event: Event) {
        self.state = State::Closed;
        self.events.push_back(event);
    }

    /// docs/rmp.md §8: REJECT, close this connection only.
    fn fail(&mut self, err: ProtocolError, now: Instant) {
        self.send(
            &Message::Reject {
                reason: err.reject_reason(),
            },
            now,
        );
        self.close(Event::ProtocolError(err));
    }

    fn unexpected(&mut self, got: MessageType, now: Instant) {
        let state = self.state;
        self.fail(ProtocolError::Unexpected { got, state }, now);
    }

    fn handle(&mut self, msg: Message, now: Instant) {
        let ty = msg.message_type();
        // docs/rmp.md §4: the first message must be HELLO; REJECT is heard at any time.
        if self.state == State::ExpectHello {
            match msg {
                Message::Hello {
                    min_version,
                    max_version,
                    side,
                    plane,
                } => self.on_hello((min_version, max_version), side, plane, now),
                Message::Reject { reason } => self.close(Event::Rejected(reason)),
                _ => self.unexpected(ty, now),
            }
            return;
        }
        match msg {
            Message::Hello { .. } => self.unexpected(ty, now),
            Message::Reject { reason } => self.close(Event::Rejected(reason)),
            // docs/rmp.md §12: one PONG waiting for TCP answers every PING until it is taken.
            Message::Ping => {
                if self.pong_end <= self.taken_total {
                    self.send(&Message::Pong, now);
                    self.pong_end = self.queued_total;
                }
            }
            Message::Pong => {}
            Message::Join(join) => {
                if self.initiator || self.state != State::ExpectJoin {
                    return self.unexpected(ty, now);
                }
                let expected = match self.side {
                    Side::Root => Initiator::LeafRequest,
                    Side::Leaf => Initiator::RootInvite,
                };
                if join.initiator != expected {
                    return self.fail(ProtocolError::WrongInitiator, now);
                }
                self.leaf_flags = Some(join.flags);
                self.state = State::JoinPending;
                // docs/rmp.md §5.2: the application may defer as long as it likes.
                self.join_deadline = None;
                self.events.push_back(Event::JoinRequest {
                    initiator: join.initiator,
                    flags: join.flags,
                    caller_data: join.caller_data,
                    sqos: join.sqos,
                    gqos: join.gqos,
                });
            }
            Message::Accept { callee_data } => {
                if self.state != State::ExpectAccept {
                    return self.unexpected(ty, now);
                }
                self.state = State::Established;
                self.join_deadline = None;
                self.events.push_back(Event::Joined { callee_data });
            }
            Message::Data(data) => {
                if !self.may_receive(ty, now) {
                    return;
                }
                self.events.push_back(Event::Data(data));
            }
            Message::Relayed { origin, addr, data } => {
                // docs/rmp.md §6: only the root relays, only on the non-rooted plane.
                if self.side == Side::Root || self.plane == DataPlane::Rooted {
                    return self.fail(ProtocolError::NotAllowed(ty), now);
                }
                if !self.may_receive(ty, now) {
                    return;
                }
                self.events.push_back(Event::Relayed { origin, addr, data });
            }
            Message::Disconnect { data } => {
                if self.state != State::Established || self.got_disconnect {
                    return self.unexpected(ty, now);
                }
                self.got_disconnect = true;
                self.events.push_back(Event::PeerDisconnected { data });
                if self.sent_disconnect {
                    self.state = State::Closed;
                }
            }
            Message::End => {
                if self.side == Side::Root {
                    return self.fail(ProtocolError::NotAllowed(ty), now);
                }
                self.close(Event::SessionEnded);
            }
        }
    }

    /// DATA/RELAYED checks (docs/rmp.md §6); on failure the connection is failed.
    fn may_receive(&mut self, ty: MessageType, now: Instant) -> bool {
        if self.state != State::Established || self.got_disconnect {
            self.unexpected(ty, now);
            return false;
        }
        let flags = self.leaf_flags.unwrap_or(JoinFlags::Both);
        let allowed = match self.side {
            Side::Root => flags.sends(),
            Side::Leaf => flags.receives(),
        };
        if !allowed {
            self.fail(ProtocolError::NotAllowed(ty), now);
        }
        allowed
    }

    fn on_hello(&mut self, theirs: (u8, u8), side: Side, plane: DataPlane, now: Instant) {
        if side == self.side {
            return self.fail(ProtocolError::RoleMismatch, now);
        }
        if plane != self.plane {
            return self.fail(ProtocolError::PlaneMismatch, now);
        }
        // docs/rmp.md §4: the highest version in both ranges.
        let ours = (self.config.min_version, self.config.max_version);
        let v = ours.1.min(theirs.1);
        if v < ours.0.max(theirs.0) {
            return self.fail(ProtocolError::NoCommonVersion { ours, theirs }, now);
        }
        self.version = Some(v);
        if !self.initiator {
            self.state = State::ExpectJoin;
        } else if let Some(join) = self.queued_join.take() {
            self.send(&Message::Join(join), now);
            self.state = State::ExpectAccept;
        } else {
            self.state = State::Ready;
        }
    }
}
