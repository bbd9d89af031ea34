//! The engine's side of the asynchronous models: readiness diffing for FD_ network events and
//! the progress of overlapped operations (CHECKLIST §1.6.4–§1.6.6).
//!
//! Sockets with a `WSAAsyncSelect`/`WSAEventSelect` registration or queued overlapped
//! operations are *watched*. After every pass of the owner thread, and inside every call that
//! re-enables an event or queues an operation, [`Engine::fd_update`] moves the socket's
//! overlapped operations forward (receives take data in the order they were posted, sends feed
//! smoltcp in the order they were issued) and then compares what holds for the socket with what
//! its registration may raise ([`crate::notify::fd`]). Sockets nobody watches cost nothing.

use std::collections::VecDeque;
use std::net::SocketAddrV4;
use std::sync::atomic::Ordering;

use smoltcp::socket::tcp as stcp;

use super::lifecycle::{Proto, SocketId, State};
use super::Engine;
use crate::error::WsaError;
use crate::notify::fd::{Conditions, Registration, Target, FD_CONNECT};
use crate::notify::overlapped::{Completion, Outcome};

/// The sockets the pass checks for notifications and overlapped completions.
#[derive(Debug, Default)]
pub(crate) struct Watched {
    /// Sockets with a notification registration or overlapped operations.
    pub(super) sockets: std::collections::BTreeSet<SocketId>,
    /// `sockets.len()`, readable without the lock (calls skip re-arming when it is 0).
    pub(super) count: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

/// Most overlapped operations one socket may have outstanding per direction; more is
/// `WSAEWOULDBLOCK` (CHECKLIST §1.6.6).
pub(crate) const MAX_OVERLAPPED: usize = 1024;

/// `MSG_PARTIAL`, as receive flags carry it.
const MSG_PARTIAL: u32 = 0x8000;

/// One queued overlapped operation: a send, a receive, or an accept onto an existing socket.
/// The engine holds plain bytes; the face's buffer shapes (`WSABUF` lengths, `AcceptEx`
/// address slots) wait in the [`Completion`], which restores them when the operation ends.
#[derive(Debug)]
pub(crate) struct OvOp {
    /// One `Vec` per buffer: a send's bytes, or a receive's room (its whole length).
    buffers: Vec<Vec<u8>>,
    /// A datagram send's destination.
    to: Option<SocketAddrV4>,
    /// Bytes of a stream send already handed to smoltcp.
    sent: usize,
    /// An accept queued on a listening socket's receive queue (boxed: rare, and it would grow
    /// every send and receive).
    accept: Option<Box<AcceptOp>>,
    completion: Completion,
}

impl OvOp {
    /// A send of `buffers` (to `to` on a datagram socket), or a receive into them.
    pub(crate) fn new(
        buffers: Vec<Vec<u8>>,
        to: Option<SocketAddrV4>,
        completion: Completion,
    ) -> OvOp {
        OvOp {
            buffers,
            to,
            sent: 0,
            accept: None,
            completion,
        }
    }

    /// An accept of the listener's next connection onto `socket`, then (if `first_data` is
    /// not empty) a receive of the first data into it.
    pub(crate) fn accept(first_data: Vec<u8>, socket: SocketId, completion: Completion) -> OvOp {
        OvOp {
            buffers: vec![first_data],
            to: None,
            sent: 0,
            accept: Some(Box::new(AcceptOp {
                socket,
                connected: false,
                names: None,
            })),
            completion,
        }
    }

    /// The buffers and the indication of an operation that did not start (the caller keeps
    /// them).
    pub(crate) fn into_parts(self) -> (Vec<Vec<u8>>, Completion) {
        (self.buffers, self.completion)
    }

    fn total(&self) -> usize {
        self.buffers.iter().map(Vec::len).sum()
    }

    /// The connection's names, for an accept that took one.
    fn accepted(&self) -> Option<(SocketAddrV4, SocketAddrV4)> {
        self.accept.as_ref().and_then(|a| a.names)
    }

    fn complete(self, error: Option<WsaError>, bytes: usize, flags: u32) {
        let accepted = self.accepted();
        self.completion.complete(Outcome {
            error: error.map_or(0, |e| e.0),
            bytes: bytes as u32,
            flags,
            buffers: self.buffers,
            from: None,
            accepted,
        });
    }

    /// Ends the operation `WSA_OPERATION_ABORTED` without an indication (D-10).
    fn abort(self) {
        let accepted = self.accepted();
        self.completion.abort(self.buffers, accepted);
    }
}

// ---- AcceptEx ----------------------------------------------------------------------------

/// An overlapped accept onto an existing socket (`AcceptEx`, CHECKLIST §1.3): it waits in its
/// listening socket's `ov_recv` queue, takes the oldest completed connection onto `socket`
/// and, if its buffer is not empty, waits there for the first data.
#[derive(Debug)]
struct AcceptOp {
    /// An open TCP socket, neither bound nor connected, that becomes the connection.
    socket: SocketId,
    /// The connection is on `socket`; what is left is the first data.
    connected: bool,
    /// The connection's (local, remote) names, once `connected`.
    names: Option<(SocketAddrV4, SocketAddrV4)>,
}

/// Copies `data` into the buffers in order (scatter).
fn scatter(buffers: &mut [Vec<u8>], mut data: &[u8]) {
    for b in buffers {
        if data.is_empty() {
            break;
        }
        let n = b.len().min(data.len());
        b[..n].copy_from_slice(&data[..n]);
        data = &data[n..];
    }
}

/// The buffers' bytes, concatenated (gather).
fn gather(buffers: &[Vec<u8>]) -> Vec<u8> {
    buffers.concat()
}

impl Engine {
    /// Installs (or with `mask == 0` removes) a socket's registration; the socket becomes
    /// non-blocking, and events whose condition holds now are raised at once.
    pub(crate) fn fd_register(
        &mut self,
        id: SocketId,
        target: Option<(Target, i32)>,
    ) -> Result<(), WsaError> {
        let sock = self.sock(id)?;
        sock.nonblocking = true;
        let connecting = match (sock.proto, &sock.state) {
            (Proto::Tcp, State::Connecting(_) | State::Connected(_)) => true,
            (Proto::Tcp, _) => false,
            _ => sock.peer.is_some() || sock.mcast.joined,
        };
        sock.select = target.map(|(t, mask)| Box::new(Registration::new(t, mask, connecting)));
        self.watch(id);
        self.fd_update(id);
        Ok(())
    }

    /// Arms `events` of a socket's registration (a re-enabling call) and raises what holds.
    pub(crate) fn fd_arm(&mut self, id: SocketId, events: i32) {
        let Some(reg) = self.table.get_mut(&id).and_then(|s| s.select.as_mut()) else {
            return;
        };
        reg.arm(events);
        self.fd_update(id);
    }

    /// Starts or stops watching a socket, as its registration and operations say.
    fn watch(&mut self, id: SocketId) {
        let watched = self
            .table
            .get(&id)
            .is_some_and(|s| s.select.is_some() || !s.ov_recv.is_empty() || !s.ov_send.is_empty());
        if watched {
            self.watch.sockets.insert(id);
        } else {
            self.watch.sockets.remove(&id);
        }
        self.watch
            .count
            .store(self.watch.sockets.len(), Ordering::Relaxed);
    }

    /// Every watched socket, after a pass.
    pub(crate) fn update_watched(&mut self) {
        let ids: Vec<SocketId> = self.watch.sockets.iter().copied().collect();
        for id in ids {
            self.fd_update(id);
        }
    }

    /// Moves the socket's overlapped operations forward, then raises the FD_ events that are
    /// armed and hold.
    pub(crate) fn fd_update(&mut self, id: SocketId) {
        self.ov_progress(id);
        self.watch(id);
        let live = self
            .table
            .get(&id)
            .and_then(|s| s.select.as_ref())
            .is_some_and(|r| r.live());
        if !live {
            return;
        }
        let c = self.fd_conditions(id);
        if let Some(reg) = self.table.get_mut(&id).and_then(|s| s.select.as_mut()) {
            let raised = reg.evaluate(&c);
            reg.deliver(id, &raised);
        }
    }

    /// What holds for a socket now, as the FD_ events see it.
    pub(crate) fn fd_conditions(&mut self, id: SocketId) -> Conditions {
        let mut c = Conditions::default();
        let Some(sock) = self.table.get(&id) else {
            return c;
        };
        c.qos = sock.qos_changed;
        c.group_qos = sock.group_qos_changed;
        if sock.rmp.is_some() {
            self.rmp_conditions(id, &mut c);
            return c;
        }
        match sock.state {
            State::Idle if sock.proto == Proto::Tcp => {
                c.connect = sock.connect_failed.map(|e| e.0);
            }
            State::Idle => c.write = true,
            State::Listening(_) => {
                self.maintain_listener(id);
                c.accept = matches!(
                    self.table.get(&id).map(|s| &s.state),
                    Some(State::Listening(l)) if !l.ready.is_empty()
                );
            }
            State::Connecting(_) => {
                if self.tcp_connect_poll(id).is_some() {
                    return self.fd_conditions(id);
                }
            }
            State::Connected(h) => {
                let (reset, shut_send) = (sock.reset, sock.shut_send);
                // Out-of-line urgent data raises FD_OOB, not FD_READ (281, 282).
                c.oob = self.urg_oob_ready(id);
                let s = self.sockets.get::<stcp::Socket>(h);
                c.connect = Some(0);
                c.read = s.recv_queue() > 0;
                c.write = !shut_send
                    && s.can_send()
                    && self.qos_tcp_admit(id, s.send_queue(), usize::MAX) > 0;
                c.close = if reset {
                    Some(WsaError::WSAECONNRESET.0)
                } else if self.tcp_timed_out(id) {
                    Some(WsaError::WSAECONNABORTED.0)
                } else if !s.may_recv() && s.recv_queue() == 0 {
                    Some(0)
                } else {
                    None
                };
            }
            State::Datagram(_) => {
                let connected = sock.peer.is_some() || sock.mcast.joined;
                let (r, w) = self.dgram_readiness(id);
                c.read = r;
                c.write = w;
                c.connect = connected.then_some(0);
            }
        }
        c
    }

    /// A `connect` was issued: it arms `FD_CONNECT` and, for the established connection,
    /// `FD_WRITE`.
    pub(crate) fn fd_connect_issued(&mut self, id: SocketId) {
        self.fd_arm(id, FD_CONNECT | crate::notify::fd::FD_WRITE);
    }

    // ---- overlapped operations ---------------------------------------------------------

    /// Queues an overlapped receive (`recv = true`) or send and moves the socket's queue
    /// forward; errors that prevent the start are returned and give no indication.
    pub(crate) fn ov_submit(
        &mut self,
        id: SocketId,
        recv: bool,
        op: OvOp,
    ) -> Result<(), (WsaError, Box<OvOp>)> {
        let sock = match self.table.get_mut(&id) {
            Some(s) => s,
            None => return Err((WsaError::WSAENOTSOCK, Box::new(op))),
        };
        let queue = if recv {
            &mut sock.ov_recv
        } else {
            &mut sock.ov_send
        };
        if queue.len() >= MAX_OVERLAPPED {
            return Err((WsaError::WSAEWOULDBLOCK, Box::new(op)));
        }
        queue.push_back(op);
        self.watch(id);
        self.fd_update(id);
        Ok(())
    }

    /// `SIO_FLUSH`: queued overlapped sends end with `WSA_OPERATION_ABORTED`, with their
    /// indications.
    pub(crate) fn ov_flush_sends(&mut self, id: SocketId) {
        let Some(sock) = self.table.get_mut(&id) else {
            return;
        };
        let datagram = sock.proto != Proto::Tcp;
        for op in std::mem::take(&mut sock.ov_send) {
            op.complete(Some(WsaError::WSA_OPERATION_ABORTED), 0, 0);
        }
        self.watch(id);
        // A shaped datagram socket's datagrams still waiting for their turn never reach the
        // peer (CHECKLIST 491): those in smoltcp reach the shaper on the next pass, which then
        // drops the flow's queue. A TCP stream cannot lose bytes smoltcp numbered already.
        if datagram && self.qos.shaper.contains_flow(id) {
            self.qos.flush.push(id);
            self.wake = true;
        }
    }

    /// Drops what the sockets flushed by `SIO_FLUSH` still have in the shaper.
    pub(crate) fn qos_flush_pending(&mut self) {
        for id in std::mem::take(&mut self.qos.flush) {
            if let Some(frames) = self.qos.shaper.remove_flow(id) {
                for f in frames {
                    self.device.recycle(f.into_inner());
                }
                self.qos_refresh_flow(id);
            }
        }
    }

    /// Aborts every operation of a socket being removed (D-10: no indication).
    pub(crate) fn ov_abort(recv: VecDeque<OvOp>, send: VecDeque<OvOp>) {
        for op in recv.into_iter().chain(send) {
            op.abort();
        }
    }

    fn ov_progress(&mut self, id: SocketId) {
        let Some(sock) = self.table.get(&id) else {
            return;
        };
        if sock.ov_recv.is_empty() && sock.ov_send.is_empty() {
            return;
        }
        if matches!(sock.state, State::Listening(_)) {
            self.ov_accept(id);
            return;
        }
        let (proto, connecting) = (sock.proto, matches!(sock.state, State::Connecting(_)));
        if proto == Proto::Tcp && connecting && self.tcp_connect_poll(id).is_none() {
            return;
        }
        match proto {
            Proto::Tcp => {
                self.ov_tcp_recv(id);
                self.ov_tcp_send(id);
            }
            _ => {
                self.ov_dgram_recv(id);
                self.ov_dgram_send(id);
            }
        }
    }

    fn pop_recv(&mut self, id: SocketId) -> Option<OvOp> {
        self.table.get_mut(&id)?.ov_recv.pop_front()
    }

    fn unpop_recv(&mut self, id: SocketId, op: OvOp) {
        if let Some(s) = self.table.get_mut(&id) {
            s.ov_recv.push_front(op);
        }
    }

    /// Stream receives complete as soon as data is there, whether or not their buffers are full
    /// (§1.6.6); end of stream completes them with 0 bytes, errors with the error.
    fn ov_tcp_recv(&mut self, id: SocketId) {
        while let Some(mut op) = self.pop_recv(id) {
            let mut got = 0;
            let mut end: Result<Option<usize>, WsaError> = Ok(None);
            for b in op.buffers.iter_mut() {
                let room = b.len();
                if room == 0 {
                    continue;
                }
                end = self.tcp_recv(id, b, false);
                match end {
                    Ok(Some(n)) if n > 0 => {
                        got += n;
                        if n < room {
                            break;
                        }
                    }
                    _ => break,
                }
            }
            if got > 0 {
                op.complete(None, got, 0);
                continue;
            }
            match end {
                Ok(Some(_)) => op.complete(None, 0, 0),
                Ok(None) => {
                    self.unpop_recv(id, op);
                    return;
                }
                Err(e) => op.complete(Some(e), 0, 0),
            }
        }
    }

    /// Stream sends feed smoltcp in the order they were issued and complete when all their bytes
    /// are in its send buffer ("consumed by the transport").
    fn ov_tcp_send(&mut self, id: SocketId) {
        loop {
            let Some(mut op) = self.table.get_mut(&id).and_then(|s| s.ov_send.pop_front()) else {
                return;
            };
            let total = op.total();
            let mut result = Ok(());
            let mut skip = op.sent;
            for b in &op.buffers {
                let data = &b[..];
                if skip >= data.len() {
                    skip -= data.len();
                    continue;
                }
                match self.tcp_send(id, &data[skip..]) {
                    Ok(n) => {
                        op.sent += n;
                        if n < data.len() - skip {
                            break;
                        }
                        skip = 0;
                    }
                    Err(e) => {
                        result = Err(e);
                        break;
                    }
                }
            }
            match result {
                Err(e) => {
                    let sent = op.sent;
                    op.complete(Some(e), sent, 0);
                }
                Ok(()) if op.sent == total => op.complete(None, total, 0),
                Ok(()) => {
                    if let Some(s) = self.table.get_mut(&id) {
                        s.ov_send.push_front(op);
                    }
                    return;
                }
            }
        }
    }

    /// One datagram per receive; a datagram longer than the buffers fills them and completes
    /// with `WSAEMSGSIZE` and `MSG_PARTIAL` (the rest is lost).
    fn ov_dgram_recv(&mut self, id: SocketId) {
        while let Some(mut op) = self.pop_recv(id) {
            let room = op.total();
            let mut tmp = vec![0u8; room];
            match self.dgram_recv(id, &mut tmp, false) {
                Ok(None) => {
                    self.unpop_recv(id, op);
                    return;
                }
                Ok(Some(got)) => {
                    scatter(&mut op.buffers, &tmp[..got.len]);
                    let (error, flags) = if got.truncated {
                        (WsaError::WSAEMSGSIZE.0, MSG_PARTIAL)
                    } else {
                        (0, 0)
                    };
                    op.completion.complete(Outcome {
                        error,
                        bytes: got.len as u32,
                        flags,
                        buffers: op.buffers,
                        from: Some(got.from),
                        accepted: None,
                    });
                }
                Err(e) => op.complete(Some(e), 0, 0),
            }
        }
    }

    fn ov_dgram_send(&mut self, id: SocketId) {
        loop {
            let Some(sock) = self.table.get_mut(&id) else {
                return;
            };
            let Some(op) = sock.ov_send.front() else {
                return;
            };
            let Some(to) = op.to.or(sock.peer).or(sock.mcast.session) else {
                let op = sock.ov_send.pop_front().expect("front exists");
                op.complete(Some(WsaError::WSAENOTCONN), 0, 0);
                continue;
            };
            let data = gather(&op.buffers);
            match self.dgram_send(id, to, &data) {
                Ok(None) => return,
                r => {
                    let Some(op) = self.table.get_mut(&id).and_then(|s| s.ov_send.pop_front())
                    else {
                        return;
                    };
                    match r {
                        Ok(_) => op.complete(None, data.len(), 0),
                        Err(e) => op.complete(Some(e), 0, 0),
                    }
                }
            }
        }
    }

    // ---- AcceptEx and TransmitFile's socket reuse ----------------------------------------

    /// Whether a pending `AcceptEx` on any listener names `socket` as its `sAcceptSocket`.
    pub(crate) fn ov_accept_target(&self, socket: SocketId) -> bool {
        self.table.values().any(|s| {
            s.ov_recv
                .iter()
                .any(|op| op.accept.as_ref().is_some_and(|a| a.socket == socket))
        })
    }

    /// Moves a listener's `AcceptEx` operations forward: each takes the oldest completed
    /// connection in the order they were posted, then (with `recv_len > 0`) completes when its
    /// connection's first data arrives, with 0 bytes when the client closed without sending.
    /// An operation whose accept socket was closed, bound or connected meanwhile ends
    /// `WSA_OPERATION_ABORTED` (no indication, D-10) or `WSAEINVAL`, leaving the connection in
    /// the backlog for the next one.
    fn ov_accept(&mut self, id: SocketId) {
        let Some(sock) = self.table.get_mut(&id) else {
            return;
        };
        let ops = std::mem::take(&mut sock.ov_recv);
        let mut waiting = VecDeque::new();
        for mut op in ops {
            let Some(acc) = op.accept.as_mut() else {
                op.complete(Some(WsaError::WSAENOTCONN), 0, 0);
                continue;
            };
            let target = acc.socket;
            if !acc.connected {
                match self.table.get(&target) {
                    None => {
                        op.abort();
                        continue;
                    }
                    Some(t) if !matches!(t.state, State::Idle) || t.bound.is_some() => {
                        op.complete(Some(WsaError::WSAEINVAL), 0, 0);
                        continue;
                    }
                    Some(_) => {}
                }
                // The connection goes to the AcceptEx socket, which does not inherit the
                // listener's registration: keep tcp_accept from raising events for the socket
                // it makes on the way.
                let select = self.table.get_mut(&id).and_then(|l| l.select.take());
                let accepted = self.tcp_accept(id);
                if let Some(l) = self.table.get_mut(&id) {
                    l.select = select;
                }
                match accepted {
                    Ok(None) => {
                        waiting.push_back(op);
                        continue;
                    }
                    Err(e) => {
                        op.complete(Some(e), 0, 0);
                        continue;
                    }
                    Ok(Some((new, _))) => {
                        let Some(acc) = op.accept.as_mut() else {
                            continue;
                        };
                        acc.connected = true;
                        acc.names = self.ov_move_connection(new, target);
                    }
                }
            }
            let Some(b) = op.buffers.first_mut().filter(|b| !b.is_empty()) else {
                op.complete(None, 0, 0);
                continue;
            };
            match self.tcp_recv(target, b, false) {
                Ok(Some(n)) => op.complete(None, n, 0),
                Ok(None) => waiting.push_back(op),
                Err(WsaError::WSAENOTSOCK) => op.abort(),
                Err(e) => op.complete(Some(e), 0, 0),
            }
        }
        if let Some(sock) = self.table.get_mut(&id) {
            sock.ov_recv = waiting;
        }
    }

    /// Puts the connection `tcp_accept` made as socket `from` onto the `AcceptEx` socket `to`,
    /// which keeps its own attributes (overlapped, blocking mode, its own registration) and
    /// does not inherit the listener's until `SO_UPDATE_ACCEPT_CONTEXT`. Returns the
    /// connection's (local, remote) names.
    fn ov_move_connection(
        &mut self,
        from: SocketId,
        to: SocketId,
    ) -> Option<(SocketAddrV4, SocketAddrV4)> {
        let mut conn = self.table.remove(&from)?;
        self.watch(from);
        let Some(target) = self.table.get_mut(&to) else {
            self.table.insert(from, conn);
            self.remove(from, true);
            return None;
        };
        conn.overlapped = target.overlapped;
        conn.nonblocking = target.nonblocking;
        conn.select = target.select.take();
        let (local, remote) = (conn.local?, conn.peer?);
        *target = conn;
        self.streams.conns.insert((local, remote), to);
        self.watch(to);
        Some((local, remote))
    }

    /// `TransmitFile(TF_DISCONNECT | TF_REUSE_SOCKET)`: the connection closes gracefully in the
    /// background (queued data, then FIN) and the socket becomes a fresh TCP socket, neither
    /// bound nor connected, that keeps its options, attributes and registration and can be
    /// passed to `AcceptEx` again. Other overlapped operations still queued on it end
    /// `WSA_OPERATION_ABORTED` with their indications.
    pub(crate) fn ov_reuse_socket(&mut self, id: SocketId) -> Result<(), WsaError> {
        let mut fresh = super::new_sock(Proto::Tcp, self);
        let sock = self.table.get_mut(&id).ok_or(WsaError::WSAENOTSOCK)?;
        fresh.opts = sock.opts;
        fresh.overlapped = sock.overlapped;
        fresh.nonblocking = sock.nonblocking;
        fresh.select = sock.select.as_ref().map(|r| Box::new(r.inherited()));
        let old = std::mem::replace(sock, fresh);
        for op in old.ov_recv.into_iter().chain(old.ov_send) {
            op.complete(Some(WsaError::WSA_OPERATION_ABORTED), 0, 0);
        }
        self.streams.recv_shut.remove(&id);
        if let (Some(l), Some(r)) = (old.local, old.peer) {
            if self.streams.conns.get(&(l, r)) == Some(&id) {
                self.streams.conns.remove(&(l, r));
            }
        }
        let port = old
            .bound
            .filter(|_| old.holds_port)
            .map(|b| (old.proto, b.port(), id));
        match old.state {
            State::Connected(h) | State::Connecting(h) => {
                let s = self.tcp(h);
                if old.reset {
                    s.abort();
                } else {
                    s.close();
                }
                // As in `Engine::remove`: `ORPHAN_LIFETIME` bounds the close, not smoltcp's
                // timeout (which would drop a connection idle for a minute unclosed).
                s.set_timeout(None);
                self.orphan(h, port);
            }
            _ => {
                if let Some((p, port, id)) = port {
                    self.ports.release(p, port, id);
                }
            }
        }
        self.wake = true;
        self.watch(id);
        Ok(())
    }
}
