//! The RMP pass: every link of every RMP socket pumped — TCP bytes into the sans-IO machine, its
//! bytes back into TCP, its events onto the sockets (docs/rmp.md §5–§7), within the bounds of
//! docs/rmp.md §12 (the listener's backlog, backpressure on relays, slow leaves reset).

#[allow(clippy::wildcard_imports)]
use super::*;

impl Engine {
    /// Pumps every link of every RMP socket. Returns when a link's timer wants the next pass
    /// (`now` if bytes moved and TCP should run again).
    pub(crate) fn rmp_pass(&mut self) -> Option<Instant> {
        if self.rmp.socks.is_empty() {
            return None;
        }
        let ids: Vec<SocketId> = self.rmp.socks.iter().copied().collect();
        let mut next: Option<Instant> = None;
        let mut at = |t: Option<Instant>| {
            if let Some(t) = t {
                next = Some(next.map_or(t, |n: Instant| n.min(t)));
            }
        };
        for id in ids {
            if !self.table.contains_key(&id) {
                self.rmp.socks.remove(&id);
                continue;
            }
            at(self.rmp_pump_listener(id));
            at(self.rmp_pump_own(id));
        }
        next
    }

    /// Accepts new TCP connections and moves the offered ones forward.
    ///
    /// docs/rmp.md §12: at most `backlog` connections wait here. A newcomer over it takes the
    /// place of the oldest connection that has not sent JOIN (reset; like SYN cookies, a flood
    /// of idle connections cannot lock legitimate leaves out); if every place holds a JOIN
    /// for the application, the newcomer is reset, as TCP resets a connection its full
    /// accept queue cannot take.
    pub(super) fn rmp_pump_listener(&mut self, id: SocketId) -> Option<Instant> {
        let now = self.now;
        let r = self.rmp_ref(id)?;
        let (listener, plane, c_root) = (r.listener?, r.plane, r.c_root);
        while let Ok(Some((tcp, peer))) = self.tcp_accept(listener) {
            self.rmp.hidden.insert(tcp);
            let side = if c_root { Side::Root } else { Side::Leaf };
            let link = Link {
                tcp,
                conn: Connection::with_config(side, false, plane, conn_config(side), now),
                peer,
                connected: true,
                eof: false,
                request: None,
            };
            let Ok(r) = self.rmp(id) else {
                self.rmp_abort_link(link);
                break;
            };
            if r.offered.len() >= r.backlog {
                let oldest_idle = r.offered.iter().position(|l| l.request.is_none());
                match oldest_idle.and_then(|i| r.offered.remove(i)) {
                    Some(evicted) => self.rmp_abort_link(evicted),
                    None => {
                        self.rmp_abort_link(link);
                        continue;
                    }
                }
            }
            if let Ok(r) = self.rmp(id) {
                r.offered.push_back(link);
            }
        }
        let mut offered: Vec<Link> = self.rmp(id).ok()?.offered.drain(..).collect();
        let mut keep = VecDeque::new();
        let mut next = None;
        let mut raised = false;
        for mut link in offered.drain(..) {
            let (events, t) = self.rmp_pump_link(&mut link, None);
            let mut dead = link.conn.is_closed();
            let mut reset = false;
            for ev in events {
                match ev {
                    Event::JoinRequest {
                        flags,
                        caller_data,
                        sqos,
                        gqos,
                        ..
                    } => {
                        link.request = Some(Request {
                            flags,
                            caller_data,
                            sqos,
                            gqos,
                        });
                        raised = true;
                    }
                    Event::PeerClosed { .. }
                    | Event::PeerDead
                    | Event::ProtocolError(_)
                    | Event::Rejected(_) => dead = true,
                    Event::JoinMissing | Event::PeerTooSlow(_) => reset = true,
                    _ => {}
                }
            }
            if reset {
                // docs/rmp.md §12: a connection that never joined is reset, freeing it now.
                self.rmp_abort_link(link);
            } else if dead {
                self.rmp_finish_link(link);
            } else {
                next = min_time(next, t);
                keep.push_back(link);
            }
        }
        if let Ok(r) = self.rmp(id) {
            r.offered = keep;
        }
        if raised {
            self.fd_update(id);
        }
        next
    }

    /// Moves a socket's own link forward and applies its events.
    pub(super) fn rmp_pump_own(&mut self, id: SocketId) -> Option<Instant> {
        let mut link = self.rmp(id).ok()?.link.take()?;
        let (events, next) = self.rmp_pump_link(&mut link, Some(id));
        let (tcp, peer) = (link.tcp, link.peer);
        if link.eof && !link.connected {
            // The TCP connect failed: refused, or timed out.
            let err = self
                .table
                .get(&tcp)
                .and_then(|s| s.connect_failed)
                .unwrap_or(WsaError::WSAECONNREFUSED);
            self.rmp_finish_link(link);
            self.rmp_link_over(id, Some(err), None);
            return None;
        }
        if let Ok(r) = self.rmp(id) {
            r.link = Some(link);
        }
        let changed = !events.is_empty();
        for ev in events {
            self.rmp_event(id, peer, ev);
        }
        if changed {
            self.fd_update(id);
        }
        next
    }

    /// One event of socket `id`'s own link.
    pub(super) fn rmp_event(&mut self, id: SocketId, peer: SocketAddrV4, ev: Event) {
        let now = self.now;
        match ev {
            Event::Joined { callee_data } => {
                let Ok(r) = self.rmp(id) else { return };
                r.callee_data = callee_data;
                r.join = JoinState::Done(Ok(()));
                let root_of = r.root_of;
                let flags = r.flags.unwrap_or(JoinFlags::Both);
                if let Some((root, None)) = root_of {
                    let leaf = self.rmp_add_leaf(root, flags);
                    if let Ok(rr) = self.rmp(root) {
                        rr.inviting = None;
                        if let (Some(leaf), Some(s)) = (leaf, rr.session.as_mut()) {
                            s.leaves.insert(leaf, id);
                        }
                    }
                    if let Ok(r) = self.rmp(id) {
                        r.root_of = Some((root, leaf));
                    }
                }
                self.fd_arm(id, FD_CONNECT | FD_WRITE);
            }
            Event::Rejected(_) => {
                self.rmp_link_over(id, Some(WsaError::WSAECONNREFUSED), Some(0));
            }
            Event::JoinTimedOut => {
                self.rmp_link_over(id, Some(WsaError::WSAETIMEDOUT), Some(0));
            }
            Event::Data(data) => {
                let root_of = self.rmp_ref(id).and_then(|r| r.root_of);
                match root_of {
                    Some((root, Some(leaf))) => self.rmp_from_leaf(root, leaf, peer, data),
                    _ => self.rmp_deliver(id, data, peer),
                }
            }
            Event::Relayed { addr, data, .. } => {
                let from = v4_of(addr).unwrap_or(peer);
                self.rmp_deliver(id, data, from);
            }
            Event::PeerDisconnected { data } => {
                if let Ok(r) = self.rmp(id) {
                    r.disconnect_data = Some(data);
                    r.peer_done = true;
                }
            }
            Event::SessionEnded => self.rmp_link_over(id, None, Some(0)),
            Event::PeerClosed { clean } => {
                let code = if clean { 0 } else { WsaError::WSAECONNRESET.0 };
                self.rmp_link_over(id, Some(WsaError::WSAECONNREFUSED), Some(code));
            }
            // A join the peer cannot take (no common version, the wrong plane or role) is
            // refused; a silent peer timed out.
            Event::ProtocolError(_) => {
                self.rmp_link_over(
                    id,
                    Some(WsaError::WSAECONNREFUSED),
                    Some(WsaError::WSAECONNABORTED.0),
                );
            }
            Event::PeerDead => {
                self.rmp_link_over(
                    id,
                    Some(WsaError::WSAETIMEDOUT),
                    Some(WsaError::WSAECONNABORTED.0),
                );
            }
            // docs/rmp.md §12: a leaf that does not read is reset and leaves the session.
            Event::PeerTooSlow(_) => {
                let Ok(r) = self.rmp(id) else { return };
                if let Some(link) = r.link.take() {
                    self.rmp_abort_link(link);
                }
                self.rmp_link_over(
                    id,
                    Some(WsaError::WSAECONNABORTED),
                    Some(WsaError::WSAECONNABORTED.0),
                );
            }
            Event::JoinRequest { .. } | Event::JoinMissing => {
                // Only acceptors see JOIN (or miss it), and their links live in `offered`.
                let _ = now;
            }
        }
    }

    /// The link of `id` is over: a pending join fails with `join_err`, the socket gets
    /// `FD_CLOSE` with `close` (if given), the link is closed.
    pub(super) fn rmp_link_over(
        &mut self,
        id: SocketId,
        join_err: Option<WsaError>,
        close: Option<i32>,
    ) {
        let Ok(r) = self.rmp(id) else { return };
        let joining = r.join == JoinState::Pending;
        if joining {
            r.join = JoinState::Done(Err(join_err.unwrap_or(WsaError::WSAECONNABORTED)));
        } else if let Some(code) = close {
            r.closed.get_or_insert(code);
        }
        let link = r.link.take();
        let root_of = r.root_of;
        if let Some(link) = link {
            self.rmp_finish_link(link);
        }
        if let Some((root, leaf)) = root_of {
            self.rmp_forget_leaf(root, id, leaf);
        }
        if joining {
            self.fd_arm(id, FD_CONNECT);
        } else {
            self.fd_update(id);
        }
    }

    /// A leaf's message at the root: to the c_root, and on the non-rooted plane relayed to
    /// every other receiving leaf.
    pub(super) fn rmp_from_leaf(
        &mut self,
        root: SocketId,
        leaf: LeafId,
        from: SocketAddrV4,
        data: Vec<u8>,
    ) {
        let now = self.now;
        let fan = match self.rmp_ref(root).and_then(|r| r.session.as_ref()) {
            Some(s) => match s.rules.fan_out(Origin::Leaf(leaf)) {
                Ok(f) => f
                    .leaves
                    .iter()
                    .filter_map(|(l, d)| Some((*s.leaves.get(l)?, *d)))
                    .collect::<Vec<_>>(),
                Err(_) => return,
            },
            None => return,
        };
        for (target, delivery) in fan {
            let Some(link) = self.rmp(target).ok().and_then(|r| r.link.as_mut()) else {
                continue;
            };
            let _ = match delivery {
                Delivery::Relayed { origin } => {
                    link.conn
                        .relay(now, origin, Some(SocketAddr::V4(from)), &data)
                }
                Delivery::Data => link.conn.send_data(now, &data),
            };
        }
        self.rmp_deliver(root, data, from);
    }

    /// Queues a message for `id` to read.
    pub(super) fn rmp_deliver(&mut self, id: SocketId, data: Vec<u8>, from: SocketAddrV4) {
        if let Ok(r) = self.rmp(id) {
            r.rx_bytes += data.len();
            r.rx.push_back((data, from));
        }
        self.fd_update(id);
    }

    /// Whether `id` (or, for a root-side c_leaf, its c_root) has room for more messages; at
    /// the root on the non-rooted plane, also whether the leaves this one's data is relayed to
    /// let it (docs/rmp.md §12: relays wait, like the root's own data, for congested leaves
    /// that still read).
    pub(super) fn rmp_room(&self, id: SocketId) -> bool {
        let Some(r) = self.rmp_ref(id) else {
            return false;
        };
        let target = match r.root_of {
            Some((root, _)) => root,
            None => id,
        };
        let limit = self.table.get(&target).map_or(0, |s| s.opts.rcvbuf);
        let readable = self
            .rmp_ref(target)
            .is_none_or(|t| t.rx_bytes < limit.max(MAX_PAYLOAD));
        readable && self.rmp_relay_room(r)
    }

    /// A root-side c_leaf on the non-rooted plane: whether no leaf its data is relayed to holds
    /// it back.
    fn rmp_relay_room(&self, r: &RmpSock) -> bool {
        let Some((root, Some(leaf))) = r.root_of else {
            return true;
        };
        let Some(s) = self.rmp_ref(root).and_then(|x| x.session.as_ref()) else {
            return true;
        };
        let Ok(fan) = s.rules.fan_out(Origin::Leaf(leaf)) else {
            return true;
        };
        let targets: Vec<SocketId> = fan
            .leaves
            .iter()
            .filter_map(|(l, _)| s.leaves.get(l).copied())
            .collect();
        !self.rmp_held_back(&targets)
    }

    /// Moves one link: TCP connect, bytes in, timers, bytes out. Returns the machine's events
    /// and its next timer.
    pub(super) fn rmp_pump_link(
        &mut self,
        link: &mut Link,
        owner: Option<SocketId>,
    ) -> (Vec<Event>, Option<Instant>) {
        let now = self.now;
        if !link.connected && !link.eof {
            match self.tcp_connect_poll(link.tcp) {
                None => return (Vec::new(), link.conn.poll_at()),
                Some(Ok(())) => {
                    // docs/rmp.md §7: keepalive runs from the connection's first byte; the
                    // SYN-ACK is the peer's first sign of life (SYN retransmissions on a lossy
                    // LAN may take longer than the dead interval).
                    link.connected = true;
                    link.conn.peer_alive(now);
                }
                Some(Err(_)) => {
                    link.eof = true;
                    return (Vec::new(), None);
                }
            }
        }
        let owner_room = owner.is_none_or(|o| self.rmp_room(o));
        if !link.eof && owner_room {
            // One scratch buffer for every link (a fresh 16 KiB per link and pass would be
            // zeroed hundreds of times per pass with many leaves).
            let mut buf = std::mem::take(&mut self.rmp.buf);
            buf.resize(16 * 1024, 0);
            loop {
                match self.tcp_recv(link.tcp, &mut buf, false) {
                    Ok(Some(0)) | Err(_) => {
                        link.eof = true;
                        link.conn.receive_eof(now);
                        break;
                    }
                    Ok(Some(n)) => link.conn.receive(now, &buf[..n]),
                    Ok(None) => break,
                }
                if link.conn.is_closed() {
                    break;
                }
            }
            self.rmp.buf = buf;
        }
        if !link.eof && !owner_room && self.rmp_tcp_unread(link.tcp) {
            // docs/rmp.md §7: the peer's bytes wait in TCP because our reader is slow; that
            // proves it alive (a slow application must not make its root look dead).
            link.conn.peer_alive(now);
        }
        if link.conn.poll_at().is_some_and(|t| t <= now) {
            link.conn.on_timer(now);
        }
        // The bytes stay in the machine until TCP takes them (docs/rmp.md §12: it sees its
        // backlog, coalesces PONGs and times a leaf that does not read).
        if !link.conn.queued().is_empty() && !link.eof {
            match self.tcp_send(link.tcp, link.conn.queued()) {
                Ok(n) => {
                    link.conn.transmitted(now, n);
                    self.rmp.moved |= n > 0;
                }
                Err(_) => {
                    link.eof = true;
                    link.conn.receive_eof(now);
                }
            }
        }
        let mut events = Vec::new();
        while let Some(ev) = link.conn.poll_event() {
            events.push(ev);
        }
        let next = if link.conn.queued().is_empty() || link.conn.is_closed() {
            link.conn.poll_at()
        } else {
            Some(now + std::time::Duration::from_millis(1))
        };
        (events, next)
    }
}

impl Engine {
    /// Whether a hidden TCP connection has bytes the pump has not read.
    fn rmp_tcp_unread(&mut self, tcp: SocketId) -> bool {
        let h = match self.table.get(&tcp).map(|s| &s.state) {
            Some(super::super::lifecycle::State::Connected(h)) => *h,
            _ => return false,
        };
        self.tcp_readable_bytes(h) > 0
    }
}

fn min_time(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.min(y)),
        (x, None) => x,
        (None, y) => y,
    }
}
