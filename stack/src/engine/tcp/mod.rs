//! TCP sockets above smoltcp: bind names, the listen pool, connect, send, receive, shutdown.
//!
//! Read first: CHECKLIST §1.3 (bind, listen, accept, connect), §1.4 (send, recv), §1.5
//! (shutdown, closesocket) and Appendix C (what smoltcp lacks: a backlog, receive-side
//! shutdown). RFC 9293 is smoltcp's; this file is the Winsock semantics around it.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::{Duration, Instant};

use smoltcp::iface::SocketHandle;
use smoltcp::socket::tcp::{self as stcp, RecvError};
use smoltcp::wire::{IpEndpoint, IpListenEndpoint};

use super::socket::{Listener, Opts, Proto, Sock, SocketId, State};
use super::Engine;
use crate::error::WsaError;

mod probe;
pub(crate) mod validate;

/// What TCP above smoltcp keeps besides the sockets themselves.
#[derive(Debug)]
pub(crate) struct Streams {
    /// TCP connections by (local, remote), to attribute an observed segment.
    pub(crate) conns: BTreeMap<(SocketAddrV4, SocketAddrV4), SocketId>,
    /// Listening sockets, whose pools the pass maintains.
    pub(super) listeners: BTreeSet<SocketId>,
    /// Sockets after `shutdown(SD_RECEIVE)`, checked every pass (D-35).
    pub(super) recv_shut: BTreeSet<SocketId>,
    /// When the tail-loss probe last scanned the connections.
    pub(super) last_probe_scan: Instant,
    /// Whether the last probe scan saw a connection with data in flight.
    pub(super) in_flight: bool,
    /// Whether a FIN may be waiting for its acknowledgment: set when one is queued, kept by
    /// the scan while one waits (the pass comes back for it: `rearm_lone_fins`).
    pub(super) fins_pending: bool,
    /// Segment and ICMP validation, SYN-flood and half-open bookkeeping (`validate`).
    pub(crate) guard: validate::Guard,
}

impl Streams {
    pub(super) fn new(now: Instant) -> Streams {
        Streams {
            conns: BTreeMap::new(),
            listeners: BTreeSet::new(),
            recv_shut: BTreeSet::new(),
            last_probe_scan: now,
            in_flight: false,
            fins_pending: false,
            guard: validate::Guard::new(),
        }
    }
}

pub(crate) fn v4(ep: IpEndpoint) -> SocketAddrV4 {
    let smoltcp::wire::IpAddress::Ipv4(a) = ep.addr;
    SocketAddrV4::new(a, ep.port)
}

/// Whether a smoltcp state means "the connection was established" (for connect and accept).
fn synchronized(state: stcp::State) -> bool {
    !matches!(
        state,
        stcp::State::Closed | stcp::State::Listen | stcp::State::SynSent | stcp::State::SynReceived
    )
}

impl Engine {
    /// A smoltcp TCP socket with the buffers and options `opts` ask for.
    pub(crate) fn new_tcp_socket(&mut self, opts: &Opts) -> SocketHandle {
        let rx = stcp::SocketBuffer::new(vec![0u8; opts.rcvbuf]);
        let tx = stcp::SocketBuffer::new(vec![0u8; opts.sndbuf]);
        let mut s = stcp::Socket::new(rx, tx);
        apply_tcp_opts(&mut s, opts, self.config.keepalive_time);
        self.sockets.add(s)
    }

    /// Applies changed options to a live smoltcp socket.
    pub(crate) fn refresh_tcp_opts(&mut self, id: SocketId) {
        let keepalive_time = self.config.keepalive_time;
        let Some(sock) = self.table.get(&id) else {
            return;
        };
        let opts = sock.opts;
        if let State::Connected(h) = sock.state {
            apply_tcp_opts(self.tcp(h), &opts, keepalive_time);
        }
    }

    /// `bind` for a TCP or UDP socket that has no name yet.
    pub(crate) fn bind_name(
        &mut self,
        id: SocketId,
        addr: SocketAddrV4,
    ) -> Result<SocketAddrV4, WsaError> {
        let range = self.config.ephemeral_ports;
        if !addr.ip().is_unspecified() && !self.is_own(*addr.ip()) {
            return Err(WsaError::WSAEADDRNOTAVAIL);
        }
        let sock = self.table.get(&id).ok_or(WsaError::WSAENOTSOCK)?;
        if sock.bound.is_some() {
            return Err(WsaError::WSAEINVAL);
        }
        let (proto, reuse) = (sock.proto, sock.opts.reuse_addr);
        let port = self
            .ports
            .bind(proto, *addr.ip(), addr.port(), id, reuse, range)?;
        let name = SocketAddrV4::new(*addr.ip(), port);
        let sock = self.sock(id)?;
        sock.bound = Some(name);
        sock.holds_port = true;
        Ok(name)
    }

    /// `listen`: creates or resizes the pool of listening smoltcp sockets.
    pub(crate) fn tcp_listen(&mut self, id: SocketId, backlog: i32) -> Result<(), WsaError> {
        let max = self.config.max_backlog;
        let backlog = usize::try_from(backlog).unwrap_or(0).clamp(1, max);
        let sock = self.sock(id)?;
        let bound = match (&sock.state, sock.bound) {
            (State::Connected(_) | State::Connecting(_), _) => return Err(WsaError::WSAEISCONN),
            (_, None) => return Err(WsaError::WSAEINVAL),
            (_, Some(b)) => b,
        };
        let endpoint = listen_endpoint(bound);
        let opts = sock.opts;
        let mut listener = match std::mem::replace(&mut sock.state, State::Idle) {
            State::Listening(l) => l,
            _ => Listener {
                backlog,
                pool: Vec::new(),
                ready: VecDeque::new(),
            },
        };
        listener.backlog = backlog;
        // Keep completed connections first (oldest first), then handshakes under way, then
        // idle listeners; what lies beyond the new backlog is reset and dropped.
        let mut ordered: Vec<SocketHandle> = listener.ready.iter().copied().collect();
        let rest: Vec<SocketHandle> = listener
            .pool
            .iter()
            .copied()
            .filter(|h| !ordered.contains(h))
            .collect();
        let (mut busy, idle): (Vec<_>, Vec<_>) =
            rest.into_iter().partition(|h| !self.tcp(*h).is_listening());
        ordered.append(&mut busy);
        ordered.extend(idle);
        for h in ordered.split_off(backlog.min(ordered.len())) {
            listener.ready.retain(|r| *r != h);
            if self.tcp(h).is_listening() {
                self.sockets.remove(h);
            } else {
                self.tcp(h).abort();
                self.orphan(h, None);
            }
        }
        while ordered.len() < backlog {
            let h = self.new_tcp_socket(&opts);
            if self.tcp(h).listen(endpoint).is_err() {
                self.sockets.remove(h);
                return Err(WsaError::WSAEINVAL);
            }
            ordered.push(h);
        }
        listener.pool = ordered;
        self.sock(id)?.state = State::Listening(listener);
        self.streams.listeners.insert(id);
        Ok(())
    }

    /// Notes completed handshakes, re-arms pool sockets whose connection died unaccepted and
    /// forgets those half-open past `validate::SYN_RECEIVED_TIMEOUT` (issue 13).
    pub(crate) fn maintain_listener(&mut self, id: SocketId) {
        let Some(Sock {
            state: State::Listening(l),
            bound: Some(bound),
            ..
        }) = self.table.get_mut(&id)
        else {
            return;
        };
        let endpoint = listen_endpoint(*bound);
        let pool = l.pool.clone();
        for h in pool {
            let state = self.sockets.get::<stcp::Socket>(h).state();
            if self.half_open_expired(h, state == stcp::State::SynReceived) {
                self.replace_pool_socket(id, h);
                continue;
            }
            let Some(Sock {
                state: State::Listening(l),
                ..
            }) = self.table.get_mut(&id)
            else {
                return;
            };
            if synchronized(state) && state != stcp::State::Closed {
                if !l.ready.contains(&h) {
                    l.ready.push_back(h);
                }
            } else if state == stcp::State::Closed {
                l.ready.retain(|r| *r != h);
                let _ = self.tcp(h).listen(endpoint);
            }
        }
    }

    /// The endpoints (local, remote) of the oldest completed connection, without taking it
    /// (`WSAAccept` asks its condition function first). Connections reset meanwhile are
    /// dropped on the way: `Err(WSAEACCES)` says the offered request was withdrawn.
    pub(crate) fn tcp_pending(
        &mut self,
        id: SocketId,
    ) -> Result<Option<(SocketAddrV4, SocketAddrV4)>, WsaError> {
        self.maintain_listener(id);
        let sock = self.sock(id)?;
        let State::Listening(l) = &sock.state else {
            return Err(WsaError::WSAEINVAL);
        };
        let Some(&h) = l.ready.front() else {
            return Ok(None);
        };
        let s = self.sockets.get::<stcp::Socket>(h);
        match (s.local_endpoint(), s.remote_endpoint(), s.state()) {
            (Some(l), Some(r), st) if st != stcp::State::Closed => Ok(Some((v4(l), v4(r)))),
            _ => {
                self.tcp_reject(id);
                Err(WsaError::WSAEACCES)
            }
        }
    }

    /// `WSAAccept`'s `CF_REJECT`: resets the oldest completed connection and frees its place
    /// in the backlog (D-30: the handshake is done, so the caller sees a reset).
    pub(crate) fn tcp_reject(&mut self, id: SocketId) {
        let Some(Sock {
            state: State::Listening(l),
            bound,
            opts,
            ..
        }) = self.table.get_mut(&id)
        else {
            return;
        };
        let Some(h) = l.ready.pop_front() else {
            return;
        };
        l.pool.retain(|p| *p != h);
        let (bound, opts) = (
            bound.unwrap_or(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0)),
            *opts,
        );
        self.tcp(h).abort();
        self.orphan(h, None);
        let fresh = self.new_tcp_socket(&opts);
        let _ = self.tcp(fresh).listen(listen_endpoint(bound));
        if let Some(Sock {
            state: State::Listening(l),
            ..
        }) = self.table.get_mut(&id)
        {
            l.pool.push(fresh);
        }
        self.wake = true;
    }

    /// `accept`: the oldest completed connection as a new socket, or `None` if there is none.
    pub(crate) fn tcp_accept(
        &mut self,
        id: SocketId,
    ) -> Result<Option<(SocketId, SocketAddrV4)>, WsaError> {
        self.maintain_listener(id);
        let sock = self.sock(id)?;
        let State::Listening(l) = &mut sock.state else {
            return Err(WsaError::WSAEINVAL);
        };
        let Some(h) = l.ready.pop_front() else {
            return Ok(None);
        };
        let (opts, nonblocking, overlapped) = (sock.opts, sock.nonblocking, sock.overlapped);
        let select = sock.select.as_ref().map(|r| Box::new(r.inherited()));
        let bound = sock
            .bound
            .unwrap_or(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0));
        // Replace the pool socket that became a connection with a fresh listener.
        let fresh = self.new_tcp_socket(&opts);
        let _ = self.tcp(fresh).listen(listen_endpoint(bound));
        if let Some(Sock {
            state: State::Listening(l),
            ..
        }) = self.table.get_mut(&id)
        {
            l.pool.retain(|p| *p != h);
            l.pool.push(fresh);
        }
        let s = self.tcp(h);
        let (Some(local), Some(remote)) = (s.local_endpoint(), s.remote_endpoint()) else {
            // Reset between the handshake and now: nothing to hand out.
            s.abort();
            self.orphan(h, None);
            return Ok(None);
        };
        let (local, remote) = (v4(local), v4(remote));
        let mut new = Sock::new(Proto::Tcp, opts.rcvbuf, self.now);
        new.opts = opts;
        new.nonblocking = nonblocking;
        new.overlapped = overlapped;
        new.bound = Some(local);
        new.local = Some(local);
        new.peer = Some(remote);
        new.state = State::Connected(h);
        new.connected_at = Some(self.now);
        let inherits = select.is_some();
        new.select = select;
        let new_id = match self.insert(new) {
            Ok(i) => i,
            Err(e) => {
                self.tcp(h).abort();
                self.orphan(h, None);
                return Err(e);
            }
        };
        self.streams.conns.insert((local, remote), new_id);
        // The SYNs seen while it waited in the pool (`urgent`): taken over now, so the tracker
        // holds no entry for an accepted connection.
        self.urg_adopt(new_id);
        if inherits {
            self.fd_update(new_id);
        }
        Ok(Some((new_id, remote)))
    }

    /// Starts a TCP connect (the caller waits for [`Engine::tcp_connect_poll`]).
    pub(crate) fn tcp_connect(
        &mut self,
        id: SocketId,
        remote: SocketAddrV4,
    ) -> Result<(), WsaError> {
        let sock = self.sock(id)?;
        match sock.state {
            State::Listening(_) => return Err(WsaError::WSAEINVAL),
            State::Connecting(_) => return Err(WsaError::WSAEALREADY),
            State::Connected(_) => return Err(WsaError::WSAEISCONN),
            State::Idle | State::Datagram(_) => {}
        }
        if remote.ip().is_unspecified() || remote.port() == 0 {
            return Err(WsaError::WSAEADDRNOTAVAIL);
        }
        if remote.ip().is_broadcast() || remote.ip().is_multicast() {
            return Err(WsaError::WSAEADDRNOTAVAIL);
        }
        if !self.routable(*remote.ip()) {
            return Err(WsaError::WSAENETUNREACH);
        }
        if self.sock(id)?.bound.is_none() {
            self.bind_name(id, SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0))?;
        }
        let sock = self.sock(id)?;
        let bound = sock
            .bound
            .unwrap_or(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0));
        let opts = sock.opts;
        sock.connect_failed = None;
        sock.reset = false;
        sock.peer_fin = false;
        let h = self.new_tcp_socket(&opts);
        let timeout = self.config.connect_timeout;
        let mut cx_local = listen_endpoint(bound);
        if cx_local.addr.is_none() {
            // Pick the source address the way smoltcp would, so the RST lookup knows it.
            cx_local.addr = Some(self.source_for(*remote.ip()).into());
        }
        let cx = self.iface.context();
        let s = self.sockets.get_mut::<stcp::Socket>(h);
        if s.connect(cx, (*remote.ip(), remote.port()), cx_local)
            .is_err()
        {
            self.sockets.remove(h);
            return Err(WsaError::WSAEADDRNOTAVAIL);
        }
        s.set_timeout(Some(smoltcp::time::Duration::from_micros(
            timeout.as_micros() as u64,
        )));
        let local = s.local_endpoint().map(v4).unwrap_or(bound);
        let sock = self.sock(id)?;
        sock.local = Some(local);
        sock.peer = Some(remote);
        sock.state = State::Connecting(h);
        self.streams.conns.insert((local, remote), id);
        Ok(())
    }

    /// Where a connect stands: `None` while under way, then its result (once).
    pub(crate) fn tcp_connect_poll(&mut self, id: SocketId) -> Option<Result<(), WsaError>> {
        let keepalive_time = self.config.keepalive_time;
        let sock = self.table.get(&id)?;
        let State::Connecting(h) = sock.state else {
            return Some(match (&sock.state, sock.connect_failed) {
                (State::Connected(_), _) => Ok(()),
                (_, Some(e)) => Err(e),
                _ => Err(WsaError::WSAENOTCONN),
            });
        };
        let (opts, reset) = (sock.opts, sock.reset);
        let s = self.sockets.get_mut::<stcp::Socket>(h);
        let state = s.state();
        if synchronized(state) {
            apply_tcp_opts(s, &opts, keepalive_time);
            let now = self.now;
            let sock = self.table.get_mut(&id)?;
            sock.state = State::Connected(h);
            sock.connected_at = Some(now);
            return Some(Ok(()));
        }
        if state != stcp::State::Closed {
            return None;
        }
        let err = if reset {
            WsaError::WSAECONNREFUSED
        } else {
            WsaError::WSAETIMEDOUT
        };
        self.sockets.remove(h);
        let sock = self.table.get_mut(&id)?;
        if let (Some(l), Some(r)) = (sock.local.take(), sock.peer.take()) {
            self.streams.conns.remove(&(l, r));
        }
        let sock = self.table.get_mut(&id)?;
        sock.state = State::Idle;
        sock.connect_failed = Some(err);
        sock.so_error = err.0;
        Some(Err(err))
    }

    /// The error a dead connection reports, if it is dead.
    fn tcp_dead(&mut self, id: SocketId, h: SocketHandle) -> Option<WsaError> {
        let closed = self.sockets.get::<stcp::Socket>(h).state() == stcp::State::Closed;
        let sock = self.table.get(&id)?;
        if sock.reset {
            return Some(WsaError::WSAECONNRESET);
        }
        if closed && !sock.peer_fin && !sock.shut_send {
            if !sock.opts.keepalive {
                return Some(WsaError::WSAECONNABORTED);
            }
            // Dropped by keep-alive: the call that learns it fails WSAENETRESET, later calls
            // WSAENOTCONN (CHECKLIST §1.13.2 SO_KEEPALIVE).
            if sock.keepalive_reported {
                return Some(WsaError::WSAENOTCONN);
            }
            self.table.get_mut(&id)?.keepalive_reported = true;
            return Some(WsaError::WSAENETRESET);
        }
        None
    }

    /// Re-arms smoltcp's retransmission of a FIN that is the only thing left unacknowledged.
    ///
    /// smoltcp 0.14 counts duplicate ACKs against a lone FIN too; the third starts a fast
    /// retransmit, which resends only data (there is none) and on the way sets the
    /// retransmission timer to idle — so the FIN is never sent again and the peer never sees
    /// the end of the stream (`tests/lossy_transfer.rs`: every byte delivered, the receiver
    /// waiting for the FIN for good). Winding up the keep-alive timer of such a socket makes
    /// smoltcp send one segment, which starts the retransmission timer again; when that fires
    /// the FIN goes out again. A socket whose retransmission timer runs (the normal case) is
    /// not affected: smoltcp winds the keep-alive only on an idle timer.
    pub(crate) fn rearm_lone_fins(&mut self) {
        self.streams.fins_pending = false;
        let handles: Vec<SocketHandle> = self
            .table
            .values()
            .filter(|s| s.shut_send)
            .filter_map(|s| match s.state {
                State::Connected(h) => Some(h),
                _ => None,
            })
            .chain(self.tcp_orphans())
            .collect();
        for h in handles {
            let s = self.sockets.get_mut::<stcp::Socket>(h);
            let fin_pending = matches!(
                s.state(),
                stcp::State::FinWait1 | stcp::State::Closing | stcp::State::LastAck
            );
            self.streams.fins_pending |= fin_pending;
            if fin_pending && s.send_queue() == 0 {
                let keep_alive = s.keep_alive();
                s.set_keep_alive(Some(smoltcp::time::Duration::from_secs(1)));
                s.set_keep_alive(keep_alive);
            }
        }
    }

    /// Whether a connection died of a time-out (keep-alive or retransmission), as opposed to
    /// a reset or a close: `setsockopt(SO_KEEPALIVE)` then fails `WSAENETRESET` (CHECKLIST 477).
    pub(crate) fn tcp_timed_out(&self, id: SocketId) -> bool {
        let Some(sock) = self.table.get(&id) else {
            return false;
        };
        let State::Connected(h) = sock.state else {
            return false;
        };
        !sock.reset
            && !sock.peer_fin
            && !sock.shut_send
            && self.sockets.get::<stcp::Socket>(h).state() == stcp::State::Closed
    }

    /// `send`: copies what fits into the send buffer; `Ok(0)` for a non-empty `data` means "no
    /// room now".
    pub(crate) fn tcp_send(&mut self, id: SocketId, data: &[u8]) -> Result<usize, WsaError> {
        let sock = self.sock(id)?;
        let h = match sock.state {
            State::Connected(h) => h,
            _ => return Err(WsaError::WSAENOTCONN),
        };
        if sock.shut_send {
            return Err(WsaError::WSAESHUTDOWN);
        }
        if let Some(e) = self.tcp_dead(id, h) {
            return Err(e);
        }
        let s = self.tcp(h);
        if !s.may_send() {
            return Err(if s.state() == stcp::State::Closed {
                WsaError::WSAECONNABORTED
            } else {
                WsaError::WSAESHUTDOWN
            });
        }
        let in_smoltcp = s.send_queue();
        let allowed = self.qos_tcp_admit(id, in_smoltcp, data.len());
        let s = self.tcp(h);
        let n = s
            .send_slice(&data[..allowed])
            .map_err(|_| WsaError::WSAECONNABORTED)?;
        self.wake |= n > 0;
        self.urg_queued(id, n);
        Ok(n)
    }

    /// `recv`: `Ok(None)` when no data is there yet; `Ok(Some(0))` at the peer's graceful close.
    pub(crate) fn tcp_recv(
        &mut self,
        id: SocketId,
        buf: &mut [u8],
        peek: bool,
    ) -> Result<Option<usize>, WsaError> {
        let sock = self.sock(id)?;
        let h = match sock.state {
            State::Connected(h) => h,
            _ => return Err(WsaError::WSAENOTCONN),
        };
        if sock.shut_recv {
            return Err(WsaError::WSAESHUTDOWN);
        }
        if sock.reset {
            return Err(WsaError::WSAECONNRESET);
        }
        // Urgent data: never across the mark, never an out-of-line urgent byte (`urgent`).
        let buf = match self.urg_recv_limit(id) {
            Some(limit) if limit < buf.len() => &mut buf[..limit],
            _ => buf,
        };
        let s = self.tcp(h);
        // Reading only needs the owner thread (for a window update) when the window had
        // shrunk; otherwise the next segment's ACK carries the new window anyway.
        let window_was_small = s.recv_queue() > s.recv_capacity() / 2;
        let got = if peek {
            s.peek_slice(buf)
        } else {
            s.recv_slice(buf)
        };
        match got {
            Ok(0) if !buf.is_empty() => match self.tcp_dead(id, h) {
                Some(e) => Err(e),
                None => Ok(None),
            },
            Ok(n) => {
                self.wake |= n > 0 && !peek && window_was_small;
                if !peek && n > 0 {
                    self.urg_consumed(id, n);
                }
                Ok(Some(n))
            }
            Err(RecvError::Finished) => {
                self.sock(id)?.peer_fin = true;
                Ok(Some(0))
            }
            Err(RecvError::InvalidState) => {
                if self.sock(id)?.peer_fin {
                    return Ok(Some(0));
                }
                Err(self.tcp_dead(id, h).unwrap_or(WsaError::WSAECONNABORTED))
            }
        }
    }

    /// Bytes one `recv` would return now (`FIONREAD`).
    pub(crate) fn tcp_readable_bytes(&mut self, h: SocketHandle) -> usize {
        self.sockets.get::<stcp::Socket>(h).recv_queue()
    }

    /// Resets a connection (a cancelled 1.1 send broke its stream).
    pub(crate) fn tcp_abort(&mut self, id: SocketId) {
        if let Some(h) = self.table.get(&id).and_then(|s| match s.state {
            State::Connected(h) => Some(h),
            _ => None,
        }) {
            self.tcp(h).abort();
        }
    }

    /// `shutdown(SD_SEND)`: FIN after the queued data.
    pub(crate) fn tcp_shutdown_send(&mut self, h: SocketHandle) {
        self.tcp(h).close();
        self.streams.fins_pending = true;
    }

    /// `shutdown(SD_RECEIVE)`: no more receives; unread or later data resets the connection
    /// (D-35), checked here and on every later pass.
    pub(crate) fn tcp_enforce_recv_shutdown(&mut self, id: SocketId) {
        let Some(sock) = self.table.get(&id) else {
            return;
        };
        if !sock.shut_recv {
            return;
        }
        if let State::Connected(h) = sock.state {
            let s = self.sockets.get_mut::<stcp::Socket>(h);
            if s.recv_queue() > 0 {
                s.abort();
            }
        }
    }

    /// Readiness of a TCP socket for `select`: (readable, writable, exceptional).
    pub(crate) fn tcp_readiness(&mut self, id: SocketId) -> (bool, bool, bool) {
        let Some(sock) = self.table.get(&id) else {
            return (false, false, false);
        };
        match &sock.state {
            State::Listening(_) => {
                self.maintain_listener(id);
                let ready = matches!(self.table.get(&id), Some(Sock { state: State::Listening(l), .. }) if !l.ready.is_empty());
                (ready, false, false)
            }
            State::Connecting(_) => match self.tcp_connect_poll(id) {
                Some(Ok(())) => self.tcp_readiness(id),
                Some(Err(_)) => (false, false, true),
                None => (false, false, false),
            },
            State::Connected(h) => {
                let (h, reset, shut_send) = (*h, sock.reset, sock.shut_send);
                // Out-of-line urgent data is exceptional, not readable (247, 248).
                let oob = self.urg_oob_ready(id);
                let s = self.sockets.get::<stcp::Socket>(h);
                let readable = reset || s.can_recv() || !s.may_recv();
                let room = self.qos_tcp_admit(id, s.send_queue(), usize::MAX) > 0;
                let writable = !shut_send && ((s.can_send() && room) || !s.may_send());
                (readable, writable, oob)
            }
            State::Idle => (false, false, sock.connect_failed.is_some()),
            State::Datagram(_) => (false, false, false),
        }
    }

    /// Whether the graceful part of a lingering close is done: all data acknowledged and our
    /// FIN too.
    pub(crate) fn tcp_linger_done(&mut self, id: SocketId) -> bool {
        let Some(State::Connected(h)) = self.table.get(&id).map(|s| &s.state) else {
            return true;
        };
        let s = self.sockets.get::<stcp::Socket>(*h);
        s.send_queue() == 0
            && !matches!(
                s.state(),
                stcp::State::Established
                    | stcp::State::CloseWait
                    | stcp::State::FinWait1
                    | stcp::State::LastAck
            )
    }

    /// Unsent or unacknowledged bytes (for a non-blocking lingering close).
    pub(crate) fn tcp_send_queue(&mut self, id: SocketId) -> usize {
        match self.table.get(&id).map(|s| &s.state) {
            Some(State::Connected(h)) => self.sockets.get::<stcp::Socket>(*h).send_queue(),
            _ => 0,
        }
    }
}

fn listen_endpoint(bound: SocketAddrV4) -> IpListenEndpoint {
    IpListenEndpoint {
        addr: (!bound.ip().is_unspecified()).then(|| (*bound.ip()).into()),
        port: bound.port(),
    }
}

fn apply_tcp_opts(s: &mut stcp::Socket<'static>, opts: &Opts, keepalive_time: Duration) {
    s.set_nagle_enabled(!opts.nodelay);
    s.set_ack_delay(None);
    let ka = smoltcp::time::Duration::from_micros(keepalive_time.as_micros() as u64);
    if opts.keepalive {
        s.set_keep_alive(Some(ka));
        // RFC 1122 §4.2.3.6: give up when the peer stays silent through the probes.
        s.set_timeout(Some(ka + ka));
    } else if s.state() != stcp::State::SynSent {
        s.set_keep_alive(None);
        s.set_timeout(None);
    }
}
