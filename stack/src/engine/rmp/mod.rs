//! Rooted multipoint sockets: RMP (docs/rmp.md) over the engine's own TCP.
//!
//! Implements the engine side of docs/rmp.md §1 and §5–§7 — which Winsock call sends what, and
//! what an arriving message does to the sockets — around the sans-IO `ws2_multipoint::rmp`
//! machines. Read first: docs/rmp.md, CHECKLIST §1.10.3–§1.10.4 and Part 2 group Q.
//!
//! An RMP socket (`Proto::Rmp`) owns hidden TCP sockets of the engine's table (never handed to
//! the Winsock face): a listener when it `listen`s, and one connection (a [`Link`]) per root↔leaf
//! pair. Which socket owns a link:
//! - at a leaf, the leaf's c_leaf socket (the one that called `WSAJoinLeaf`, or the one
//!   `accept` returned for an invitation);
//! - at the root, the c_leaf socket made for that leaf (returned by the root's `WSAJoinLeaf` or
//!   by `accept` on the c_root); its c_root keeps the session ([`RootSession`]) and receives
//!   the leaves' data.
//!
//! Every pass pumps every link: TCP bytes into the machine, its bytes back into TCP, its
//! events onto the sockets (`FD_CONNECT`, `FD_ACCEPT`, `FD_READ`, `FD_CLOSE`).
//!
//! Bounds (docs/rmp.md §12, docs/decisions.md "RMP limits"): a listener holds at most its
//! `listen` backlog of connections that have not been accepted (the oldest one without a JOIN
//! makes room for a newcomer; with every place holding a JOIN for the application, the
//! newcomer is reset); bytes wait in the machine's queue, never in a copy here; a link over
//! [`LINK_BACKLOG`] is congested — a send to it blocks, and the root's fan-out and relays wait
//! for it while it still reads, but not once TCP has taken nothing from it for
//! [`STALL_GRACE`]; a leaf that falls behind past [`SlowPeerLimit::ROOT`] is reset and dropped
//! from the session.

use std::collections::{HashMap, VecDeque};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::time::{Duration, Instant};

use ws2_multipoint::rmp::wire::MAX_PAYLOAD;
use ws2_multipoint::rmp::{
    Config, Connection, DataPlane, Delivery, Event, JoinFlags, LeafId, Origin, RootSession, Side,
    SlowPeerLimit,
};

use super::lifecycle::{Proto, SocketId};
use super::udp::Received;
use super::Engine;
use crate::error::WsaError;
use crate::notify::fd::{Conditions, FD_CONNECT, FD_WRITE};

mod pump;

/// What the engine keeps for rooted multipoint besides the sockets themselves.
#[derive(Debug, Default)]
pub(crate) struct RmpState {
    /// RMP sockets with a listener or a link, pumped every pass.
    pub(super) socks: std::collections::BTreeSet<SocketId>,
    /// The TCP sockets RMP sockets own (never handed to the Winsock face).
    pub(super) hidden: std::collections::BTreeSet<SocketId>,
    /// The last pump handed bytes to TCP.
    pub(super) moved: bool,
    /// Scratch space the pump reads TCP into.
    pub(super) buf: Vec<u8>,
}

/// Bytes a link may hold beyond what its TCP socket took before a send to it would block (the
/// link is congested; docs/rmp.md §12).
const LINK_BACKLOG: usize = 256 * 1024;

/// The machine's settings for one end: the root's side of a leaf's connection drops a leaf
/// that does not read (docs/rmp.md §12); a leaf, like TCP, waits for its root.
fn conn_config(side: Side) -> Config {
    Config {
        slow_peer: (side == Side::Root).then_some(SlowPeerLimit::ROOT),
        ..Config::default()
    }
}

/// How long a congested leaf may take nothing before the root's sends stop waiting for it
/// (docs/rmp.md §12): a leaf that reads paces the root like TCP's one receiver; one that has
/// stopped is left to the slow-peer limit.
const STALL_GRACE: Duration = Duration::from_secs(1);

/// Whether a link takes no more now: more than [`LINK_BACKLOG`] queued, or its connection
/// closed (a slow leaf dropped a moment ago has an empty queue but no room).
fn congested(link: &Link) -> bool {
    link.conn.is_closed() || link.conn.pending_transmit() > LINK_BACKLOG
}

/// Whether a leaf's link holds the root's sends (or relays to it) back at `now`: congested,
/// still open, and TCP took some of its bytes within [`STALL_GRACE`].
fn holds_back(link: &Link, now: Instant) -> bool {
    !link.conn.is_closed()
        && link.conn.pending_transmit() > LINK_BACKLOG
        && link
            .conn
            .waiting_since()
            .is_none_or(|t| now.saturating_duration_since(t) < STALL_GRACE)
}

/// A join request waiting at a listener for `accept`/`WSAAccept`.
#[derive(Debug, Clone)]
pub(crate) struct Request {
    pub(crate) flags: JoinFlags,
    pub(crate) caller_data: Vec<u8>,
    pub(crate) sqos: Option<Vec<u8>>,
    pub(crate) gqos: Option<Vec<u8>>,
}

/// One root↔leaf TCP connection and its RMP machine.
#[derive(Debug)]
pub(crate) struct Link {
    /// The hidden TCP socket.
    tcp: SocketId,
    conn: Connection,
    /// The other end's address.
    peer: SocketAddrV4,
    /// The TCP connect finished.
    connected: bool,
    /// The TCP connection ended (EOF or error) and the machine was told.
    eof: bool,
    /// Acceptor: the JOIN waiting for `accept`.
    request: Option<Request>,
}

/// How a join of this socket went (`FD_CONNECT`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum JoinState {
    Idle,
    Pending,
    Done(Result<(), WsaError>),
}

/// The root's session: the fan-out rules and the c_leaf socket of every leaf.
#[derive(Debug)]
pub(crate) struct Session {
    rules: RootSession,
    leaves: HashMap<LeafId, SocketId>,
}

/// The RMP side of a socket.
#[derive(Debug)]
pub(crate) struct RmpSock {
    pub(crate) plane: DataPlane,
    /// Created `WSA_FLAG_MULTIPOINT_C_ROOT`.
    pub(crate) c_root: bool,
    /// Created `WSA_FLAG_MULTIPOINT_D_ROOT`.
    pub(crate) d_root: bool,
    /// The hidden TCP listener, after `listen`.
    listener: Option<SocketId>,
    /// `listen`'s backlog, clamped like TCP's: how many connections `offered` may hold.
    backlog: usize,
    /// Connections the listener accepted: handshaking, or with a JOIN waiting for `accept`
    /// (oldest first; at most `backlog`, docs/rmp.md §12).
    offered: VecDeque<Link>,
    /// This socket's own connection (a leaf's to its root; a root-side c_leaf's to its leaf).
    link: Option<Link>,
    /// c_root: the c_leaf socket of an invitation under way (one at a time, `WSAEALREADY`).
    inviting: Option<SocketId>,
    /// c_root: the session, once a leaf joined.
    session: Option<Session>,
    /// Root-side c_leaf: its c_root, and the leaf's id once joined.
    root_of: Option<(SocketId, Option<LeafId>)>,
    /// The flags this socket's leaf joined with.
    flags: Option<JoinFlags>,
    pub(crate) join: JoinState,
    /// `lpCalleeData` of the last join.
    pub(crate) callee_data: Vec<u8>,
    /// Messages to read, with their senders.
    rx: VecDeque<(Vec<u8>, SocketAddrV4)>,
    rx_bytes: usize,
    /// The session or connection is over: `FD_CLOSE` with this error (0 = graceful).
    pub(crate) closed: Option<i32>,
    /// Disconnect data the peer sent (`WSARecvDisconnect`).
    pub(crate) disconnect_data: Option<Vec<u8>>,
    /// The peer sent DISCONNECT: a half close, like TCP's FIN — `FD_CLOSE` and end of data
    /// here, while this end may still send (and a leaf stays in the fan-out).
    peer_done: bool,
    /// `shutdown(SD_SEND)` or `WSASendDisconnect`: no more sends.
    shut_send: bool,
    /// `SIO_MULTIPOINT_LOOPBACK`: the socket also reads what it sends to the session (off by
    /// default on RMP: rooted sessions do not loop back, docs/decisions.md).
    pub(crate) loopback: bool,
}

impl RmpSock {
    pub(crate) fn new(plane: DataPlane, c_root: bool, d_root: bool) -> RmpSock {
        RmpSock {
            plane,
            c_root,
            d_root,
            listener: None,
            backlog: 1,
            offered: VecDeque::new(),
            link: None,
            inviting: None,
            session: None,
            root_of: None,
            flags: None,
            join: JoinState::Idle,
            callee_data: Vec::new(),
            rx: VecDeque::new(),
            rx_bytes: 0,
            closed: None,
            disconnect_data: None,
            peer_done: false,
            shut_send: false,
            loopback: false,
        }
    }

    /// Whether this c_root's sends go to the leaves: as d_root, or as a peer in a non-rooted
    /// data plane (the T.120 style root).
    fn sends_to_leaves(&self) -> bool {
        self.d_root || self.plane == DataPlane::NonRooted
    }

    /// Whether the socket is a member of a session (joined, not over).
    fn joined(&self) -> bool {
        self.join == JoinState::Done(Ok(())) && self.closed.is_none()
    }
}

/// What a join asks for.
#[derive(Debug, Clone)]
pub(crate) struct JoinArgs {
    pub(crate) to: SocketAddrV4,
    pub(crate) flags: JoinFlags,
    pub(crate) caller_data: Vec<u8>,
    pub(crate) sqos: Option<Vec<u8>>,
    pub(crate) gqos: Option<Vec<u8>>,
}

fn v4_of(addr: Option<SocketAddr>) -> Option<SocketAddrV4> {
    match addr {
        Some(SocketAddr::V4(a)) => Some(a),
        _ => None,
    }
}

impl Engine {
    fn rmp(&mut self, id: SocketId) -> Result<&mut RmpSock, WsaError> {
        self.sock(id)?
            .rmp
            .as_deref_mut()
            .ok_or(WsaError::WSAEOPNOTSUPP)
    }

    fn rmp_ref(&self, id: SocketId) -> Option<&RmpSock> {
        self.table.get(&id)?.rmp.as_deref()
    }

    /// A hidden TCP socket for a link or a listener, bound like `id`.
    fn rmp_tcp(&mut self, id: SocketId, bind: Option<SocketAddrV4>) -> Result<SocketId, WsaError> {
        let opts = self.sock(id)?.opts;
        let mut sock = super::new_sock(Proto::Tcp, self);
        sock.opts = opts;
        sock.opts.reuse_addr = true;
        let tcp = self.insert(sock)?;
        if let Some(addr) = bind {
            if let Err(e) = self.bind_name(tcp, addr) {
                self.remove(tcp, true);
                return Err(e);
            }
        }
        self.rmp.hidden.insert(tcp);
        Ok(tcp)
    }

    /// `listen` on a c_root (leaf-initiated joins) or c_leaf (root invitations).
    pub(crate) fn rmp_listen(&mut self, id: SocketId, backlog: i32) -> Result<(), WsaError> {
        // docs/rmp.md §12: the same clamp as TCP's listen pool.
        let places = usize::try_from(backlog)
            .unwrap_or(0)
            .clamp(1, self.config.max_backlog);
        let sock = self.sock(id)?;
        let bound = sock.bound.ok_or(WsaError::WSAEINVAL)?;
        let r = sock.rmp.as_deref().ok_or(WsaError::WSAEOPNOTSUPP)?;
        if r.link.is_some() {
            return Err(WsaError::WSAEISCONN);
        }
        if let Some(l) = r.listener {
            self.tcp_listen(l, backlog)?;
            self.rmp(id)?.backlog = places;
            return Ok(());
        }
        let tcp = self.rmp_tcp(id, None)?;
        // The listener holds the port: the RMP socket's binding moves to it.
        if let Some(s) = self.table.get_mut(&tcp) {
            s.bound = Some(bound);
        }
        if let Err(e) = self.tcp_listen(tcp, backlog) {
            self.remove(tcp, true);
            return Err(e);
        }
        let r = self.rmp(id)?;
        r.listener = Some(tcp);
        r.backlog = places;
        self.rmp.socks.insert(id);
        Ok(())
    }

    /// `WSAJoinLeaf` on an RMP socket: a c_root invites the leaf at `args.to` (a new c_leaf
    /// socket is returned), a c_leaf asks the root at `args.to` for admittance (the same socket
    /// is returned). The join completes in a later pass ([`Engine::rmp_join_result`]).
    pub(crate) fn rmp_join(&mut self, id: SocketId, args: JoinArgs) -> Result<SocketId, WsaError> {
        let now = self.now;
        let r = self.rmp(id)?;
        let (plane, c_root) = (r.plane, r.c_root);
        if c_root {
            if r.inviting.is_some() {
                return Err(WsaError::WSAEALREADY);
            }
        } else {
            if r.join == JoinState::Pending {
                return Err(WsaError::WSAEALREADY);
            }
            if r.link.is_some() || r.join == JoinState::Done(Ok(())) {
                return Err(WsaError::WSAEISCONN);
            }
            if r.listener.is_some() {
                return Err(WsaError::WSAEINVAL);
            }
        }
        if args.to.ip().is_unspecified() || args.to.port() == 0 || args.to.ip().is_multicast() {
            return Err(WsaError::WSAEADDRNOTAVAIL);
        }
        let side = if c_root { Side::Root } else { Side::Leaf };
        let mut conn = Connection::with_config(side, true, plane, conn_config(side), now);
        conn.join(
            now,
            args.flags,
            &args.caller_data,
            args.sqos.as_deref(),
            args.gqos.as_deref(),
        )
        .map_err(|_| WsaError::WSAEINVAL)?;
        // The socket that will own the link: a new c_leaf at the root, `id` at a leaf.
        let owner = if c_root {
            let sock = self.sock(id)?;
            let (opts, nonblocking, overlapped) = (sock.opts, sock.nonblocking, sock.overlapped);
            let select = sock.select.as_ref().map(|r| Box::new(r.inherited()));
            let mut leaf = super::new_sock(Proto::Rmp, self);
            leaf.opts = opts;
            leaf.nonblocking = nonblocking;
            leaf.overlapped = overlapped;
            leaf.select = select;
            let mut rs = RmpSock::new(plane, false, false);
            rs.root_of = Some((id, None));
            leaf.rmp = Some(Box::new(rs));
            self.insert(leaf)?
        } else {
            id
        };
        let tcp = match self.rmp_tcp(id, None) {
            Ok(t) => t,
            Err(e) => {
                if owner != id {
                    self.remove(owner, true);
                }
                return Err(e);
            }
        };
        if let Err(e) = self.tcp_connect(tcp, args.to) {
            self.remove(tcp, true);
            if owner != id {
                self.remove(owner, true);
            }
            return Err(e);
        }
        let local = self.sock(tcp)?.local;
        let link = Link {
            tcp,
            conn,
            peer: args.to,
            connected: false,
            eof: false,
            request: None,
        };
        let o = self.sock(owner)?;
        o.local = local;
        o.bound = o.bound.or(local);
        o.peer = Some(args.to);
        let r = self.rmp(owner)?;
        r.link = Some(link);
        r.flags = Some(args.flags);
        r.join = JoinState::Pending;
        if c_root {
            self.rmp(id)?.inviting = Some(owner);
        }
        self.rmp.socks.insert(owner);
        self.rmp.socks.insert(id);
        self.wake = true;
        if owner != id && self.table.get(&owner).is_some_and(|s| s.select.is_some()) {
            self.fd_update(owner);
        }
        Ok(owner)
    }

    /// Where a join of `id` stands: `None` while under way.
    pub(crate) fn rmp_join_result(&self, id: SocketId) -> Option<Result<(), WsaError>> {
        match self.rmp_ref(id).map(|r| r.join) {
            None => Some(Err(WsaError::WSAEINTR)),
            Some(JoinState::Done(r)) => Some(r),
            Some(JoinState::Idle) => Some(Err(WsaError::WSAENOTCONN)),
            Some(JoinState::Pending) => None,
        }
    }

    /// The oldest join request waiting at a listening RMP socket: its (local, remote) ends and
    /// the request (for `WSAAccept`'s condition function).
    pub(crate) fn rmp_pending(
        &mut self,
        id: SocketId,
    ) -> Result<Option<(SocketAddrV4, SocketAddrV4, Request)>, WsaError> {
        let r = self.rmp(id)?;
        if r.listener.is_none() {
            return Err(WsaError::WSAEINVAL);
        }
        let Some(link) = r.offered.iter().find(|l| l.request.is_some()) else {
            return Ok(None);
        };
        let (tcp, peer, request) = (link.tcp, link.peer, link.request.clone());
        let local = self.table.get(&tcp).and_then(|s| s.local);
        Ok(request.map(|q| {
            (
                local.unwrap_or(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0)),
                peer,
                q,
            )
        }))
    }

    /// Takes the oldest waiting join request out of the listener's queue.
    fn rmp_take_request(&mut self, id: SocketId) -> Result<Option<Link>, WsaError> {
        let r = self.rmp(id)?;
        let Some(i) = r.offered.iter().position(|l| l.request.is_some()) else {
            return Ok(None);
        };
        Ok(r.offered.remove(i))
    }

    /// `accept`/`WSAAccept` with `CF_ACCEPT` on a listening RMP socket: admits the oldest
    /// request (ACCEPT with `callee_data`) and returns its new c_leaf socket.
    pub(crate) fn rmp_accept(
        &mut self,
        id: SocketId,
        callee_data: &[u8],
    ) -> Result<Option<(SocketId, SocketAddrV4)>, WsaError> {
        let now = self.now;
        let Some(mut link) = self.rmp_take_request(id)? else {
            return Ok(None);
        };
        let request = link.request.take();
        if link.conn.accept(now, callee_data).is_err() {
            self.rmp_finish_link(link);
            return Ok(None);
        }
        let flags = request.map(|q| q.flags);
        let sock = self.sock(id)?;
        let (opts, nonblocking, overlapped) = (sock.opts, sock.nonblocking, sock.overlapped);
        let select = sock.select.as_ref().map(|r| Box::new(r.inherited()));
        let r = self.rmp(id)?;
        let (plane, c_root, d_root) = (r.plane, r.c_root, r.d_root);
        let mut new = super::new_sock(Proto::Rmp, self);
        new.opts = opts;
        new.nonblocking = nonblocking;
        new.overlapped = overlapped;
        new.select = select;
        let local = self.table.get(&link.tcp).and_then(|s| s.local);
        new.bound = local;
        new.local = local;
        new.peer = Some(link.peer);
        let peer = link.peer;
        // At a leaf the accepted socket is the leaf's c_leaf/d_leaf (or d_root) socket; at the
        // root it is the c_leaf socket for this leaf.
        let mut rs = RmpSock::new(plane, false, !c_root && d_root);
        rs.flags = flags;
        rs.join = JoinState::Done(Ok(()));
        rs.link = Some(link);
        if c_root {
            let leaf = self.rmp_add_leaf(id, flags.unwrap_or(JoinFlags::Both));
            rs.root_of = Some((id, leaf));
        }
        new.rmp = Some(Box::new(rs));
        let new_id = self.insert(new)?;
        if c_root {
            if let Some(leaf) = self.rmp_ref(new_id).and_then(|r| r.root_of?.1) {
                if let Some(s) = self.rmp(id)?.session.as_mut() {
                    s.leaves.insert(leaf, new_id);
                }
            }
        }
        self.rmp.socks.insert(new_id);
        self.wake = true;
        if self.table.get(&new_id).is_some_and(|s| s.select.is_some()) {
            self.fd_update(new_id);
        }
        Ok(Some((new_id, peer)))
    }

    /// `WSAAccept` with `CF_REJECT`: refuses the oldest request (REJECT, then close).
    pub(crate) fn rmp_reject(&mut self, id: SocketId) {
        let now = self.now;
        if let Ok(Some(mut link)) = self.rmp_take_request(id) {
            let _ = link.conn.reject(now);
            self.rmp_finish_link(link);
        }
    }

    /// An RMP socket's flowspec shapes the TCP connection underneath it (the shaper finds TCP
    /// frames by their connection, which belongs to the hidden socket). Admission stays with
    /// the RMP socket.
    pub(crate) fn rmp_sync_qos(&mut self, id: SocketId) {
        let Some(sock) = self.table.get(&id) else {
            return;
        };
        let (qos, tcp) = (
            sock.qos.clone(),
            sock.rmp
                .as_ref()
                .and_then(|r| r.link.as_ref())
                .map(|l| l.tcp),
        );
        let Some(tcp) = tcp else { return };
        if let Some(t) = self.table.get_mut(&tcp) {
            t.qos = qos;
        }
        self.qos_refresh_flow(tcp);
    }

    /// A new leaf in `root`'s session (made on first use).
    fn rmp_add_leaf(&mut self, root: SocketId, flags: JoinFlags) -> Option<LeafId> {
        let r = self.rmp(root).ok()?;
        let plane = r.plane;
        let s = r.session.get_or_insert_with(|| Session {
            rules: RootSession::new(plane),
            leaves: HashMap::new(),
        });
        s.rules.add_leaf(flags)
    }

    /// The c_leaf sockets of the leaves that receive `root`'s data (docs/rmp.md §9).
    fn rmp_root_targets(&self, root: SocketId) -> Vec<SocketId> {
        let Some(s) = self.rmp_ref(root).and_then(|r| r.session.as_ref()) else {
            return Vec::new();
        };
        s.rules.fan_out(Origin::Root).map_or(Vec::new(), |fan| {
            fan.leaves
                .iter()
                .filter_map(|(leaf, _)| s.leaves.get(leaf).copied())
                .collect()
        })
    }

    /// Whether one of the leaves `targets` holds the root's sends back ([`holds_back`]).
    fn rmp_held_back(&self, targets: &[SocketId]) -> bool {
        targets.iter().any(|t| {
            self.rmp_ref(*t)
                .and_then(|r| r.link.as_ref())
                .is_some_and(|l| holds_back(l, self.now))
        })
    }

    /// Bytes waiting in every RMP machine's transmit queue (`EngineStats::rmp_queued`).
    pub(crate) fn rmp_queued(&self) -> u64 {
        self.table
            .values()
            .filter_map(|s| s.rmp.as_deref())
            .flat_map(|r| r.link.iter().chain(r.offered.iter()))
            .map(|l| l.conn.pending_transmit() as u64)
            .sum()
    }

    /// Sends one message: at a d_root to every receiving leaf, at a leaf to the root, on a
    /// root-side c_leaf to that leaf only ("side chat"). `Ok(None)` = no room now.
    pub(crate) fn rmp_send(
        &mut self,
        id: SocketId,
        data: &[u8],
    ) -> Result<Option<usize>, WsaError> {
        let now = self.now;
        if data.len() > MAX_PAYLOAD {
            return Err(WsaError::WSAEMSGSIZE);
        }
        let r = self.rmp(id)?;
        if r.shut_send {
            return Err(WsaError::WSAESHUTDOWN);
        }
        if let Some(e) = r.closed {
            return Err(if e == 0 {
                WsaError::WSAESHUTDOWN
            } else {
                WsaError(e)
            });
        }
        let (looped, c_root) = (r.loopback, r.c_root);
        let targets: Vec<SocketId> = if c_root {
            if !r.sends_to_leaves() {
                return Err(WsaError::WSAEOPNOTSUPP);
            }
            if r.session.is_none() {
                return Err(WsaError::WSAENOTCONN);
            }
            self.rmp_root_targets(id)
        } else {
            if !r.joined() {
                return Err(WsaError::WSAENOTCONN);
            }
            vec![id]
        };
        // docs/rmp.md §12: a send to one link waits while it is congested. The root's send
        // to the session waits only for congested leaves that still read: one that stopped is
        // the slow-peer limit's business, not the session's.
        let wait = if c_root {
            self.rmp_held_back(&targets)
        } else {
            self.rmp_ref(id)
                .and_then(|x| x.link.as_ref())
                .is_some_and(congested)
        };
        if wait {
            return Ok(None);
        }
        for t in targets {
            if let Some(link) = self.rmp(t).ok().and_then(|r| r.link.as_mut()) {
                if let Err(e) = link.conn.send_data(now, data) {
                    if t == id {
                        return Err(match e {
                            ws2_multipoint::rmp::CommandError::TooLarge => WsaError::WSAEMSGSIZE,
                            ws2_multipoint::rmp::CommandError::NotAllowed => WsaError::WSAESHUTDOWN,
                            _ => WsaError::WSAENOTCONN,
                        });
                    }
                }
            }
        }
        if looped {
            let me = self.sock(id)?;
            let from = me
                .local
                .or(me.bound)
                .unwrap_or(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0));
            self.rmp_deliver(id, data.to_vec(), from);
        }
        self.wake = true;
        Ok(Some(data.len()))
    }

    /// Takes (or peeks at) the next message. `Ok(None)` = nothing yet; a `len` of 0 with
    /// nothing truncated after the session ended = the end (like TCP's graceful close).
    pub(crate) fn rmp_recv(
        &mut self,
        id: SocketId,
        buf: &mut [u8],
        peek: bool,
    ) -> Result<Option<Received>, WsaError> {
        let shut_recv = self.sock(id)?.shut_recv;
        if shut_recv {
            return Err(WsaError::WSAESHUTDOWN);
        }
        let r = self.rmp(id)?;
        let Some((data, from)) = r.rx.front() else {
            let end = r.closed.or(r.peer_done.then_some(0));
            return match end {
                Some(0) => Ok(Some(Received {
                    len: 0,
                    from: SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0),
                    truncated: false,
                })),
                Some(e) => Err(WsaError(e)),
                None if !r.joined() && !r.c_root => Err(WsaError::WSAENOTCONN),
                None => Ok(None),
            };
        };
        let n = data.len().min(buf.len());
        buf[..n].copy_from_slice(&data[..n]);
        let got = Received {
            len: n,
            from: *from,
            truncated: data.len() > buf.len(),
        };
        // A reliable message protocol without partial messages keeps a message that did not
        // fit until a big enough buffer reads it (§1.4.2; `WSAEMSGSIZE` meanwhile, CHECKLIST 185).
        if !peek && !got.truncated {
            if let Some((d, _)) = r.rx.pop_front() {
                r.rx_bytes -= d.len();
            }
            // Room again: the pass reads more from TCP.
            self.wake = true;
        }
        Ok(Some(got))
    }

    /// Size of the next message (`FIONREAD`).
    pub(crate) fn rmp_first_len(&self, id: SocketId) -> usize {
        self.rmp_ref(id)
            .and_then(|r| r.rx.front())
            .map_or(0, |(d, _)| d.len())
    }

    /// What holds for an RMP socket, for FD_ events.
    pub(crate) fn rmp_conditions(&mut self, id: SocketId, c: &mut Conditions) {
        let (_, w, _) = self.rmp_readiness(id);
        let Some(rs) = self.rmp_ref(id) else {
            return;
        };
        c.read = !rs.rx.is_empty();
        c.write = w;
        c.accept = rs.offered.iter().any(|l| l.request.is_some());
        c.connect = match rs.join {
            JoinState::Done(Ok(())) => Some(0),
            JoinState::Done(Err(e)) => Some(e.0),
            _ => None,
        };
        // Like TCP: FD_CLOSE once the last message has been read.
        c.close = rs
            .closed
            .or(rs.peer_done.then_some(0))
            .filter(|_| rs.rx.is_empty());
    }

    /// Readiness for `select`: (readable, writable, exceptional). Join completion is not
    /// signalled through `select` (CHECKLIST 251): a joining socket is neither.
    pub(crate) fn rmp_readiness(&mut self, id: SocketId) -> (bool, bool, bool) {
        let Some(r) = self.rmp_ref(id) else {
            return (false, false, false);
        };
        // The peer's DISCONNECT is a half close: readable, like TCP's FIN (recv returns the end).
        let readable = !r.rx.is_empty()
            || r.closed.is_some()
            || r.peer_done
            || r.offered.iter().any(|l| l.request.is_some());
        let writable = if r.c_root {
            r.sends_to_leaves()
                && r.session.is_some()
                && !self.rmp_held_back(&self.rmp_root_targets(id))
        } else {
            r.joined() && !r.shut_send && r.link.as_ref().is_some_and(|l| !congested(l))
        };
        let failed = matches!(r.join, JoinState::Done(Err(_)));
        (readable, writable, failed)
    }

    /// `shutdown`: `SD_SEND` on a c_root ends the session for every leaf (END); elsewhere it
    /// sends DISCONNECT (no more data from this end).
    pub(crate) fn rmp_shutdown(&mut self, id: SocketId, send: bool) -> Result<(), WsaError> {
        if !send {
            return Ok(());
        }
        if self.rmp(id)?.c_root {
            self.rmp_end_session(id);
            return Ok(());
        }
        self.rmp_send_disconnect(id, &[])
    }

    /// `WSASendDisconnect`: DISCONNECT with `data`; no more sends.
    pub(crate) fn rmp_send_disconnect(
        &mut self,
        id: SocketId,
        data: &[u8],
    ) -> Result<(), WsaError> {
        let now = self.now;
        let r = self.rmp(id)?;
        if r.c_root {
            self.rmp_end_session(id);
            return Ok(());
        }
        if data.len() > ws2_multipoint::rmp::wire::MAX_USER_DATA {
            return Err(WsaError::WSAEFAULT);
        }
        r.shut_send = true;
        let Some(link) = r.link.as_mut() else {
            return Err(WsaError::WSAENOTCONN);
        };
        link.conn
            .disconnect(now, data)
            .map_err(|_| WsaError::WSAENOTCONN)?;
        self.wake = true;
        Ok(())
    }

    /// The c_root ends the session: END to every leaf, `FD_CLOSE` on every c_leaf socket here.
    fn rmp_end_session(&mut self, root: SocketId) {
        let Ok(r) = self.rmp(root) else {
            return;
        };
        r.closed.get_or_insert(0);
        let leaves: Vec<SocketId> = r
            .session
            .take()
            .map(|s| s.leaves.into_values().collect())
            .unwrap_or_default();
        let inviting = r.inviting.take();
        self.rmp_end_leaves(leaves.into_iter().chain(inviting).collect());
        // Deferred requests are refused; the listener stays (a new session may start).
        let offered: Vec<Link> = match self.rmp(root) {
            Ok(r) => r.offered.drain(..).collect(),
            Err(_) => Vec::new(),
        };
        self.rmp_refuse(offered);
        self.wake = true;
    }

    /// END on the links of a c_root's leaves: `FD_CLOSE` on their c_leaf sockets here,
    /// invitations under way fail `WSAECONNABORTED`.
    fn rmp_end_leaves(&mut self, leaves: Vec<SocketId>) {
        let now = self.now;
        for leaf in leaves {
            let Ok(lr) = self.rmp(leaf) else { continue };
            lr.closed.get_or_insert(0);
            lr.root_of = None;
            if lr.join == JoinState::Pending {
                lr.join = JoinState::Done(Err(WsaError::WSAECONNABORTED));
            }
            if let Some(mut link) = lr.link.take() {
                let _ = link.conn.end_session(now);
                self.rmp_finish_link(link);
            }
            self.fd_update(leaf);
        }
    }

    /// Refuses join requests waiting at a listener (REJECT, then close).
    fn rmp_refuse(&mut self, offered: impl IntoIterator<Item = Link>) {
        let now = self.now;
        for mut link in offered {
            let _ = link.conn.reject(now);
            self.rmp_finish_link(link);
        }
    }

    /// `closesocket` of an RMP socket (already out of the table): a c_root ends its session, a
    /// root-side c_leaf drops its leaf, a leaf leaves (DISCONNECT).
    pub(crate) fn rmp_close(&mut self, id: SocketId, mut rs: RmpSock) {
        let now = self.now;
        self.rmp.socks.remove(&id);
        if rs.c_root {
            let leaves: Option<Vec<SocketId>> =
                rs.session.take().map(|s| s.leaves.into_values().collect());
            let inviting = rs.inviting.take();
            self.rmp_end_leaves(
                leaves
                    .unwrap_or_default()
                    .into_iter()
                    .chain(inviting)
                    .collect(),
            );
        }
        if let Some((root, leaf)) = rs.root_of {
            self.rmp_forget_leaf(root, id, leaf);
        }
        if let Some(mut link) = rs.link.take() {
            let _ = link.conn.disconnect(now, &[]);
            self.rmp_finish_link(link);
        }
        self.rmp_refuse(rs.offered.drain(..));
        if let Some(l) = rs.listener {
            self.rmp.hidden.remove(&l);
            self.remove(l, true);
        }
        self.wake = true;
    }

    /// A root-side c_leaf socket is gone or its leaf left: the session forgets the leaf.
    fn rmp_forget_leaf(&mut self, root: SocketId, socket: SocketId, leaf: Option<LeafId>) {
        let Ok(r) = self.rmp(root) else { return };
        if r.inviting == Some(socket) {
            r.inviting = None;
        }
        if let (Some(leaf), Some(s)) = (leaf, r.session.as_mut()) {
            s.rules.remove_leaf(leaf);
            s.leaves.remove(&leaf);
        }
    }

    /// Flushes what a finished link still has to say into its TCP socket and closes that
    /// gracefully (the engine finishes the FIN in the background).
    fn rmp_finish_link(&mut self, link: Link) {
        if link.connected && !link.conn.queued().is_empty() {
            let _ = self.tcp_send(link.tcp, link.conn.queued());
        }
        self.rmp.hidden.remove(&link.tcp);
        self.tcp_close_gracefully(link.tcp);
        self.remove(link.tcp, false);
        self.wake = true;
    }

    /// Resets a link's TCP connection and frees it at once (an evicted handshake, a refused
    /// newcomer, a slow leaf: docs/rmp.md §12). Nothing more is sent.
    fn rmp_abort_link(&mut self, link: Link) {
        self.rmp.hidden.remove(&link.tcp);
        self.remove(link.tcp, true);
        self.wake = true;
    }
}
