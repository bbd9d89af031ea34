//! Echo servers on the Winsock notification models, and a swarm of clients to load them: the
//! reference programs `ws2 demo` runs and the acceptance tests drive with 1,000 clients.
//!
//! Each is written the way a Winsock application would be (CHECKLIST §1.6.4–§1.6.6):
//! - [`serve_event_select`]: one thread, non-blocking sockets, one event object shared by every
//!   socket (`WSAEventSelect`); after each wake it resets the event and then asks every socket
//!   for its recorded events with `WSAEnumNetworkEvents(s, 0, …)` — resetting first means an
//!   event recorded meanwhile signals again, so nothing is lost;
//! - [`serve_completion_routines`]: one thread that only accepts (an `FD_ACCEPT` event) and
//!   waits alertably; every connection is a chain of overlapped `WSARecv` → `WSASend` → `WSARecv`
//!   whose completion routines run on that thread;
//! - [`run_clients`]: one thread driving many non-blocking clients through a shared event: all
//!   connect first (so they are concurrent), then each sends its own pattern and checks the echo.

use std::collections::HashMap;
use std::net::SocketAddrV4;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::winsock::*;

/// What a server did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ServerStats {
    /// Connections accepted.
    pub accepted: usize,
    /// Most connections open at once.
    pub max_open: usize,
    /// Bytes echoed.
    pub echoed: u64,
}

/// What a client swarm saw.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClientReport {
    /// Clients whose echo came back complete and identical.
    pub verified: usize,
    /// Clients whose echo differed from what they sent.
    pub corrupted: usize,
    /// Connection attempts refused (the listener's backlog was full) and retried.
    pub retries: usize,
    /// Most clients connected at once.
    pub max_connected: usize,
    /// Time from the first connect to the last verified echo.
    pub elapsed: Duration,
}

/// How long the servers wait for events before checking `stop`.
const STOP_CHECK_MS: u32 = 50;

/// A listening TCP socket on `addr` with small buffers (so thousands of connections stay
/// cheap), created with the overlapped attribute.
pub fn echo_listener(ws: &Winsock, addr: SocketAddrV4, buffer: i32) -> Result<SOCKET, WsaError> {
    let s = ws.WSASocket(
        AF_INET,
        SOCK_STREAM,
        IPPROTO_TCP,
        None,
        0,
        WSA_FLAG_OVERLAPPED,
    )?;
    set_buffers(ws, s, buffer)?;
    ws.bind(s, Some(&SOCKADDR_IN::new(addr)), SOCKADDR_IN_LEN)?;
    ws.listen(s, SOMAXCONN)?;
    Ok(s)
}

fn set_buffers(ws: &Winsock, s: SOCKET, bytes: i32) -> Result<(), WsaError> {
    for opt in [SO_RCVBUF, SO_SNDBUF] {
        ws.setsockopt(s, SOL_SOCKET, opt, Some(&bytes.to_ne_bytes()), 4)?;
    }
    Ok(())
}

/// One connection of the event-select server: bytes received and not yet echoed.
#[derive(Default)]
struct Pending {
    data: Vec<u8>,
    closing: bool,
}

/// Echo server on `WSAEventSelect` until `stop` is set (see the module docs).
pub fn serve_event_select(
    ws: &Winsock,
    listener: SOCKET,
    stop: &AtomicBool,
) -> Result<ServerStats, WsaError> {
    let ev = ws.WSACreateEvent()?;
    ws.WSAEventSelect(listener, ev, FD_ACCEPT)?;
    let mut conns: HashMap<SOCKET, Pending> = HashMap::new();
    let mut stats = ServerStats::default();
    let mut buf = vec![0u8; 16 * 1024];
    let mut ne = WSANETWORKEVENTS::default();
    while !stop.load(Ordering::Relaxed) {
        if ws.WSAWaitForMultipleEvents(&[ev], false, STOP_CHECK_MS, false)? == WSA_WAIT_TIMEOUT {
            continue;
        }
        ws.WSAResetEvent(ev)?;
        ws.WSAEnumNetworkEvents(listener, 0, Some(&mut ne))?;
        if ne.lNetworkEvents & FD_ACCEPT != 0 {
            loop {
                match ws.accept(listener, None, None) {
                    Ok(s) => {
                        // Accepted sockets inherit FD_ACCEPT only; ask for what a connection
                        // needs.
                        ws.WSAEventSelect(s, ev, FD_READ | FD_WRITE | FD_CLOSE)?;
                        conns.insert(s, Pending::default());
                        stats.accepted += 1;
                        stats.max_open = stats.max_open.max(conns.len());
                    }
                    Err(WsaError::WSAEWOULDBLOCK) => break,
                    Err(e) => return Err(e),
                }
            }
        }
        let mut closed = Vec::new();
        for (&s, p) in conns.iter_mut() {
            ws.WSAEnumNetworkEvents(s, 0, Some(&mut ne))?;
            let events = ne.lNetworkEvents;
            if events == 0 {
                continue;
            }
            if events & FD_CLOSE != 0 {
                p.closing = true;
            }
            if events & (FD_READ | FD_CLOSE) != 0 {
                loop {
                    match ws.recv(s, &mut buf, 0) {
                        Ok(0) => {
                            p.closing = true;
                            break;
                        }
                        Ok(n) => p.data.extend_from_slice(&buf[..n as usize]),
                        Err(WsaError::WSAEWOULDBLOCK) => break,
                        Err(_) => {
                            p.closing = true;
                            p.data.clear();
                            break;
                        }
                    }
                }
            }
            while !p.data.is_empty() {
                match ws.send(s, &p.data, 0) {
                    Ok(n) => {
                        stats.echoed += n as u64;
                        p.data.drain(..n as usize);
                    }
                    // FD_WRITE comes when there is room again.
                    Err(WsaError::WSAEWOULDBLOCK) => break,
                    Err(_) => {
                        p.data.clear();
                        p.closing = true;
                    }
                }
            }
            if p.closing && p.data.is_empty() {
                closed.push(s);
            }
        }
        for s in closed {
            conns.remove(&s);
            ws.closesocket(s)?;
        }
    }
    for s in conns.into_keys() {
        let _ = ws.closesocket(s);
    }
    ws.WSAEventSelect(listener, 0, 0)?;
    ws.WSACloseEvent(ev)?;
    Ok(stats)
}

/// Counters the completion routines share.
#[derive(Debug, Default)]
struct RoutineStats {
    open: AtomicUsize,
    max_open: AtomicUsize,
    echoed: AtomicU64,
}

/// Bytes one overlapped receive of the completion-routine server asks for.
const ROUTINE_CHUNK: usize = 16 * 1024;

fn post_recv(ws: Winsock, s: SOCKET, stats: Arc<RoutineStats>) {
    let ov = WSAOVERLAPPED::new(0);
    let mut bufs = [WSABUF::zeroed(ROUTINE_CHUNK)];
    let mut flags = 0;
    let ws2 = ws.clone();
    let routine: LPWSAOVERLAPPED_COMPLETION_ROUTINE = Box::new(move |err, n, ov, _flags| {
        if err != 0 || n == 0 {
            finish(&ws2, s, &stats);
            return;
        }
        post_send(ws2, s, ov.take_received(), stats);
    });
    match ws.WSARecv(
        s,
        &mut bufs,
        None,
        Some(&mut flags),
        Some(&ov),
        Some(routine),
    ) {
        // Completed at once or pending: the routine runs either way.
        Ok(()) | Err(WsaError::WSA_IO_PENDING) => {}
        Err(_) => {
            let _ = ws.closesocket(s);
        }
    }
}

fn post_send(ws: Winsock, s: SOCKET, data: Vec<u8>, stats: Arc<RoutineStats>) {
    let ov = WSAOVERLAPPED::new(0);
    let mut bufs = [WSABUF::new(data)];
    let ws2 = ws.clone();
    let routine: LPWSAOVERLAPPED_COMPLETION_ROUTINE = Box::new(move |err, n, _ov, _flags| {
        if err != 0 {
            finish(&ws2, s, &stats);
            return;
        }
        stats.echoed.fetch_add(u64::from(n), Ordering::Relaxed);
        post_recv(ws2, s, stats);
    });
    match ws.WSASend(s, &mut bufs, None, 0, Some(&ov), Some(routine)) {
        Ok(()) | Err(WsaError::WSA_IO_PENDING) => {}
        Err(_) => {
            let _ = ws.closesocket(s);
        }
    }
}

fn finish(ws: &Winsock, s: SOCKET, stats: &RoutineStats) {
    stats.open.fetch_sub(1, Ordering::Relaxed);
    let _ = ws.closesocket(s);
}

/// Echo server on overlapped I/O with completion routines until `stop` is set (see the module
/// docs). `listener` must have the overlapped attribute (accepted sockets inherit it).
pub fn serve_completion_routines(
    ws: &Winsock,
    listener: SOCKET,
    stop: &AtomicBool,
) -> Result<ServerStats, WsaError> {
    let ev = ws.WSACreateEvent()?;
    ws.WSAEventSelect(listener, ev, FD_ACCEPT)?;
    let stats = Arc::new(RoutineStats::default());
    let mut accepted = 0;
    while !stop.load(Ordering::Relaxed) {
        // Alertable: the connections' completion routines run inside this wait.
        let r = ws.WSAWaitForMultipleEvents(&[ev], false, STOP_CHECK_MS, true)?;
        if r != WSA_WAIT_EVENT_0 {
            continue;
        }
        ws.WSAResetEvent(ev)?;
        loop {
            match ws.accept(listener, None, None) {
                Ok(s) => {
                    accepted += 1;
                    let open = stats.open.fetch_add(1, Ordering::Relaxed) + 1;
                    stats.max_open.fetch_max(open, Ordering::Relaxed);
                    post_recv(ws.clone(), s, stats.clone());
                }
                Err(WsaError::WSAEWOULDBLOCK) => break,
                Err(e) => return Err(e),
            }
        }
    }
    ws.WSAEventSelect(listener, 0, 0)?;
    ws.WSACloseEvent(ev)?;
    Ok(ServerStats {
        accepted,
        max_open: stats.max_open.load(Ordering::Relaxed),
        echoed: stats.echoed.load(Ordering::Relaxed),
    })
}

/// One client of the swarm.
struct Client {
    s: SOCKET,
    data: Vec<u8>,
    sent: usize,
    got: usize,
    connected: bool,
}

/// Deterministic payload of client `i`.
pub fn client_payload(i: usize, len: usize) -> Vec<u8> {
    let mut x = (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// Runs `clients` non-blocking clients against `server`: all connect (refused attempts are
/// retried), then each sends `bytes` of its own payload and reads the echo back, checking
/// every byte. Fails with `WSAETIMEDOUT` if the swarm is not done within `limit`.
pub fn run_clients(
    ws: &Winsock,
    server: SocketAddrV4,
    clients: usize,
    bytes: usize,
    limit: Duration,
) -> Result<ClientReport, WsaError> {
    let start = Instant::now();
    let deadline = start + limit;
    let ev = ws.WSACreateEvent()?;
    let mut report = ClientReport::default();
    let mut all: HashMap<SOCKET, Client> = HashMap::new();
    let mut waiting: Vec<usize> = (0..clients).rev().collect();
    let mut ids: HashMap<SOCKET, usize> = HashMap::new();
    let mut connecting = 0;
    let mut ne = WSANETWORKEVENTS::default();
    let mut buf = vec![0u8; 16 * 1024];
    let name = SOCKADDR_IN::new(server);
    // Phase 1: everyone connects (at most 128 handshakes at once, within the backlog).
    while all.values().filter(|c| c.connected).count() < clients {
        if Instant::now() > deadline {
            return Err(WsaError::WSAETIMEDOUT);
        }
        while connecting < 128 {
            let Some(i) = waiting.pop() else { break };
            let s = ws.socket(AF_INET, SOCK_STREAM, IPPROTO_TCP)?;
            set_buffers(ws, s, 8 * 1024)?;
            ws.WSAEventSelect(s, ev, FD_CONNECT | FD_READ | FD_WRITE | FD_CLOSE)?;
            match ws.connect(s, Some(&name), SOCKADDR_IN_LEN) {
                Err(WsaError::WSAEWOULDBLOCK) => {}
                Err(e) => return Err(e),
                Ok(()) => {}
            }
            connecting += 1;
            ids.insert(s, i);
            all.insert(
                s,
                Client {
                    s,
                    data: client_payload(i, bytes),
                    sent: 0,
                    got: 0,
                    connected: false,
                },
            );
        }
        ws.WSAWaitForMultipleEvents(&[ev], false, 100, false)?;
        ws.WSAResetEvent(ev)?;
        let mut refused = Vec::new();
        for c in all.values_mut().filter(|c| !c.connected) {
            ws.WSAEnumNetworkEvents(c.s, 0, Some(&mut ne))?;
            if ne.lNetworkEvents & FD_CONNECT == 0 {
                continue;
            }
            connecting -= 1;
            match ne.iErrorCode[FD_CONNECT_BIT] {
                0 => c.connected = true,
                _ => refused.push(c.s),
            }
        }
        for s in refused {
            all.remove(&s);
            ws.closesocket(s)?;
            waiting.push(ids.remove(&s).unwrap_or(0));
            report.retries += 1;
        }
        report.max_connected = report
            .max_connected
            .max(all.values().filter(|c| c.connected).count());
    }
    // Phase 2: every client sends its payload and reads the echo.
    let mut active: Vec<SOCKET> = all.keys().copied().collect();
    while !active.is_empty() {
        if Instant::now() > deadline {
            return Err(WsaError::WSAETIMEDOUT);
        }
        let mut done = Vec::new();
        for &s in &active {
            let c = all.get_mut(&s).expect("active clients exist");
            while c.sent < c.data.len() {
                match ws.send(s, &c.data[c.sent..], 0) {
                    Ok(n) => c.sent += n as usize,
                    Err(WsaError::WSAEWOULDBLOCK) => break,
                    Err(e) => return Err(e),
                }
            }
            loop {
                match ws.recv(s, &mut buf, 0) {
                    Ok(0) => {
                        done.push(s);
                        break;
                    }
                    Ok(n) => {
                        let n = n as usize;
                        let want = &c.data[c.got..(c.got + n).min(c.data.len())];
                        if want != &buf[..n] {
                            report.corrupted += 1;
                            done.push(s);
                            break;
                        }
                        c.got += n;
                        if c.got == c.data.len() {
                            report.verified += 1;
                            done.push(s);
                            break;
                        }
                    }
                    Err(WsaError::WSAEWOULDBLOCK) => break,
                    Err(e) => return Err(e),
                }
            }
        }
        for s in done {
            active.retain(|x| *x != s);
            ws.closesocket(s)?;
        }
        if !active.is_empty() {
            ws.WSAWaitForMultipleEvents(&[ev], false, 100, false)?;
            ws.WSAResetEvent(ev)?;
        }
    }
    ws.WSACloseEvent(ev)?;
    report.elapsed = start.elapsed();
    Ok(report)
}
