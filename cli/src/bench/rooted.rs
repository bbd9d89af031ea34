//! The `rooted` scenario: how fast an RMP root fans messages out to its leaves, and how long a
//! `WSAJoinLeaf` takes, each beside the same thing done by hand over plain TCP connections of
//! the same engine, in the same run and the same topology.
//!
//! Topology: one root stack and up to `LEAF_STACKS` leaf stacks on one `VirtualSwitch`; leaf
//! `i` lives on leaf stack `i mod LEAF_STACKS`, so 256 leaves are 64 sockets on each of 4
//! stacks.
//!
//! - `fan-out N=n`: `n` leaves join a listening c_root (leaf-initiated `WSAJoinLeaf`,
//!   `JL_RECEIVER_ONLY`; the root admits them with `WSAAccept`), each read by its own thread;
//!   the root `send`s 1 KiB messages on its c_root/d_root as fast as `send` returns for
//!   `WINDOW` (a blocking send waits while any leaf's link is full). The figure is messages
//!   (and payload MB) received per second, summed over the leaves. Anchor: the root keeps `n`
//!   accepted Winsock TCP sockets, one per leaf, and `send`s each message to each in turn;
//!   each leaf counts 1 KiB per message. Both sides' TCP sockets have 256 KiB buffers each way
//!   (what the engine gives an RMP socket's hidden TCP connections).
//! - `join`: `JOINS` blocking `WSAJoinLeaf` calls, timed from call to return, p50 and p90: the
//!   root inviting a listening leaf (its `WSAAccept` admits in a thread) and a leaf asking a
//!   listening root. Each is TCP's handshake plus RMP's HELLO/JOIN/ACCEPT. Anchor: the same by
//!   hand over TCP: `connect`, a 16-byte request, a 16-byte answer.
//!
//! Runs interleave ours and the anchor; each figure is the median over runs. Only the
//! in-process switch carries traffic.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use ws2_stack::winsock::*;
use ws2_stack::{Stack, StackConfig};
use ws2_tap::VirtualSwitch;

use super::super::mcast::{percentile, setsockopt_int, winsock};
use super::super::rmp::{admit, bind_listen, join, leaf_socket, root_socket, Plane};
use super::tcp::{cidr, err};
use super::{median, Figure};

/// Leaf counts of the fan-out figures.
const LEAVES: [usize; 3] = [1, 16, 256];
/// Stacks the leaves are spread over.
const LEAF_STACKS: usize = 4;
/// Bytes per message.
const MESSAGE: usize = 1024;
/// How long the root sends per fan-out measurement.
const WINDOW: Duration = Duration::from_secs(1);
/// Timed joins per run.
const JOINS: usize = 20;
/// Socket buffers of the anchor's TCP sockets, as the engine gives RMP's hidden ones.
const BUFFER: i32 = 256 * 1024;
const ROOT: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(10, 0, 6, 1), 5900);
const ANCHOR: &str = "plain TCP by hand";

pub(crate) fn run(runs: usize) -> Result<Vec<Figure>, String> {
    let fig = |metric: String, value, unit, baseline_value| Figure {
        scenario: "rooted",
        metric,
        value,
        unit,
        baseline: ANCHOR,
        baseline_value,
    };
    let mut out = Vec::new();
    for n in LEAVES {
        let (mut ours, mut base) = (Vec::new(), Vec::new());
        for _ in 0..runs {
            ours.push(fan_out(n, Way::Rmp)?);
            base.push(fan_out(n, Way::Tcp)?);
        }
        let (ours, base) = (median(ours), median(base));
        out.push(fig(
            format!("fan-out N={n} messages/s"),
            ours,
            "msg/s",
            base,
        ));
        let mb = |m: f64| m * MESSAGE as f64 / 1e6;
        out.push(fig(
            format!("fan-out N={n} MB/s"),
            mb(ours),
            "MB/s",
            mb(base),
        ));
    }
    let mut samples: [[Vec<f64>; 2]; 3] = Default::default();
    for _ in 0..runs {
        for (i, way) in [Join::Invite, Join::Request, Join::ByHand]
            .into_iter()
            .enumerate()
        {
            let (p50, p90) = joins(way)?;
            samples[i][0].push(p50);
            samples[i][1].push(p90);
        }
    }
    let [invite, request, by_hand] = samples;
    for (name, ours) in [("root invites", invite), ("leaf asks", request)] {
        for (q, (o, b)) in ["p50", "p90"].iter().zip(ours.iter().zip(by_hand.iter())) {
            out.push(fig(
                format!("WSAJoinLeaf ({name}) {q}"),
                median(o.clone()),
                "ms",
                median(b.clone()),
            ));
        }
    }
    Ok(out)
}

/// The root, and the stacks its leaves live on.
struct Topology {
    _switch: VirtualSwitch,
    root: Winsock,
    leaves: Vec<Winsock>,
}

impl Topology {
    fn new(leaf_stacks: usize) -> Result<Topology, String> {
        let switch = VirtualSwitch::new(1);
        let stack = |addr: String| {
            Stack::new(StackConfig::new(cidr(&addr)), switch.port()).map_err(|e| e.to_string())
        };
        let root = winsock(&stack(format!("{}/24", ROOT.ip()))?)?;
        let leaves = (0..leaf_stacks)
            .map(|i| winsock(&stack(format!("10.0.6.{}/24", i + 2))?))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Topology {
            _switch: switch,
            root,
            leaves,
        })
    }

    fn close(self) {
        for ws in self.leaves.iter().chain([&self.root]) {
            let _ = ws.WSACleanup();
        }
    }
}

// ---- fan-out -------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Way {
    /// One RMP session, the root's d_root send reaching every leaf.
    Rmp,
    /// `n` TCP connections, the root sending each message on each.
    Tcp,
}

/// A TCP socket with `BUFFER`-byte buffers.
fn tcp_socket(ws: &Winsock) -> Result<SOCKET, String> {
    let s = ws.socket(AF_INET, SOCK_STREAM, 0).map_err(err("socket"))?;
    for (opt, name) in [(SO_RCVBUF, "SO_RCVBUF"), (SO_SNDBUF, "SO_SNDBUF")] {
        setsockopt_int(ws, s, SOL_SOCKET, opt, name, BUFFER)?;
    }
    Ok(s)
}

/// A connected fan-out: the root's listening socket, the per-leaf sockets it accepted, and
/// each leaf's socket with the index of its stack.
struct Session {
    root: SOCKET,
    per_leaf: Vec<SOCKET>,
    leaves: Vec<(usize, SOCKET)>,
}

/// Connects `n` leaves to the root, RMP joins or TCP connections.
fn connect_leaves(t: &Topology, n: usize, way: Way) -> Result<Session, String> {
    let ws = &t.root;
    let root = match way {
        Way::Rmp => root_socket(ws, Plane::Rooted)?,
        Way::Tcp => tcp_socket(ws)?,
    };
    bind_listen(ws, root, ROOT, n as i32)?;
    thread::scope(|scope| {
        let acceptor = scope.spawn(|| {
            (0..n)
                .map(|_| match way {
                    Way::Rmp => admit(ws, root, &[]).map(|j| j.socket),
                    Way::Tcp => ws.accept(root, None, None),
                })
                .collect::<Result<Vec<_>, _>>()
                .map_err(err("accept"))
        });
        let mut leaves = Vec::with_capacity(n);
        let joined = (0..n).try_for_each(|i| {
            let k = i % t.leaves.len();
            let ws = &t.leaves[k];
            let s = match way {
                Way::Rmp => {
                    let s = leaf_socket(ws, Plane::Rooted)?;
                    join(ws, s, ROOT, &[], JL_RECEIVER_ONLY).map_err(err("WSAJoinLeaf"))?;
                    s
                }
                Way::Tcp => {
                    let s = tcp_socket(ws)?;
                    ws.connect(s, Some(&SOCKADDR_IN::new(ROOT)), SOCKADDR_IN_LEN)
                        .map_err(err("connect"))?;
                    s
                }
            };
            setsockopt_int(ws, s, SOL_SOCKET, SO_RCVTIMEO, "SO_RCVTIMEO", 50)?;
            leaves.push((k, s));
            Ok::<_, String>(())
        });
        if let Err(e) = joined {
            // Unblocks the acceptor.
            let _ = ws.closesocket(root);
            let _ = acceptor.join();
            return Err(e);
        }
        let accepted = acceptor
            .join()
            .unwrap_or_else(|_| Err("the acceptor panicked".into()))?;
        Ok(Session {
            root,
            per_leaf: accepted,
            leaves,
        })
    })
}

/// `n` leaves, the root sending 1 KiB messages for `WINDOW`: messages/s received, summed.
fn fan_out(n: usize, way: Way) -> Result<f64, String> {
    let t = Topology::new(LEAF_STACKS.min(n))?;
    let Session {
        root,
        per_leaf,
        leaves,
    } = connect_leaves(&t, n, way)?;
    let bytes = AtomicU64::new(0);
    let stop = AtomicBool::new(false);
    let rate = thread::scope(|scope| {
        let readers: Vec<_> = leaves
            .iter()
            .map(|&(k, s)| {
                let (ws, bytes, stop) = (&t.leaves[k], &bytes, &stop);
                scope.spawn(move || -> Result<(), String> {
                    let mut buf = vec![0u8; 64 * 1024];
                    while !stop.load(Ordering::Relaxed) {
                        match ws.recv(s, &mut buf, 0) {
                            Ok(0) => break,
                            Ok(got) => {
                                bytes.fetch_add(got as u64, Ordering::Relaxed);
                            }
                            Err(WsaError::WSAETIMEDOUT) => {}
                            Err(e) => return Err(format!("recv: {e}")),
                        }
                    }
                    Ok(())
                })
            })
            .collect();
        thread::sleep(Duration::from_millis(50));
        let msg = vec![0x5au8; MESSAGE];
        let ws = &t.root;
        let sent = (|| {
            let before = bytes.load(Ordering::Relaxed);
            let start = Instant::now();
            while start.elapsed() < WINDOW {
                match way {
                    Way::Rmp => {
                        ws.send(root, &msg, 0).map_err(err("send on the c_root"))?;
                    }
                    Way::Tcp => {
                        for &s in &per_leaf {
                            ws.send(s, &msg, 0).map_err(err("send on a TCP socket"))?;
                        }
                    }
                }
            }
            let elapsed = start.elapsed();
            // What is still queued when the window closes is not counted.
            let got = bytes.load(Ordering::Relaxed) - before;
            Ok::<_, String>(got as f64 / MESSAGE as f64 / elapsed.as_secs_f64())
        })();
        stop.store(true, Ordering::Relaxed);
        for r in readers {
            r.join()
                .unwrap_or_else(|_| Err("a reader panicked".into()))?;
        }
        sent
    })?;
    for s in per_leaf.into_iter().chain([root]) {
        let _ = t.root.closesocket(s);
    }
    for (k, s) in leaves {
        let _ = t.leaves[k].closesocket(s);
    }
    t.close();
    Ok(rate)
}

// ---- join latency --------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Join {
    /// The root's `WSAJoinLeaf` to a listening leaf.
    Invite,
    /// A leaf's `WSAJoinLeaf` to a listening root.
    Request,
    /// `connect` + a 16-byte request + a 16-byte answer over TCP.
    ByHand,
}

/// One untimed join, then `JOINS` timed ones: p50 and p90, ms.
fn joins(way: Join) -> Result<(f64, f64), String> {
    let t = Topology::new(1)?;
    let leaf_ws = &t.leaves[0];
    let leaf_at = SocketAddrV4::new(Ipv4Addr::new(10, 0, 6, 2), 6100);
    // The listening side: the leaf for invitations, the root otherwise.
    let (lws, at) = match way {
        Join::Invite => (leaf_ws, leaf_at),
        _ => (&t.root, ROOT),
    };
    let listener = match way {
        Join::Invite => leaf_socket(lws, Plane::Rooted)?,
        Join::Request => root_socket(lws, Plane::Rooted)?,
        Join::ByHand => tcp_socket(lws)?,
    };
    bind_listen(lws, listener, at, 4)?;
    let c_root = match way {
        Join::Invite => Some(root_socket(&t.root, Plane::Rooted)?),
        _ => None,
    };
    let samples = thread::scope(|scope| {
        let acceptor = scope.spawn(|| {
            // Answers until the listener is closed; keeps what it accepted open until then.
            let mut kept = Vec::new();
            loop {
                let s = match way {
                    Join::ByHand => match lws.accept(listener, None, None) {
                        Ok(s) => {
                            let mut req = [0u8; 16];
                            if recv_exact(lws, s, &mut req).is_err()
                                || lws.send(s, &[0xa5; 16], 0).is_err()
                            {
                                break;
                            }
                            s
                        }
                        Err(_) => break,
                    },
                    _ => match admit(lws, listener, &[]) {
                        Ok(j) => j.socket,
                        Err(_) => break,
                    },
                };
                kept.push(s);
            }
            for s in kept {
                let _ = lws.closesocket(s);
            }
        });
        let timed = (|| {
            let mut out = Vec::with_capacity(JOINS);
            for i in 0..=JOINS {
                let took = match way {
                    Join::Invite => {
                        let r = c_root.expect("the invite's c_root");
                        let j = join(&t.root, r, leaf_at, &[], JL_BOTH)
                            .map_err(err("WSAJoinLeaf (invite)"))?;
                        let _ = t.root.closesocket(j.socket);
                        j.took
                    }
                    Join::Request => {
                        let s = leaf_socket(leaf_ws, Plane::Rooted)?;
                        let j = join(leaf_ws, s, ROOT, &[], JL_BOTH)
                            .map_err(err("WSAJoinLeaf (request)"))?;
                        let _ = leaf_ws.closesocket(s);
                        j.took
                    }
                    Join::ByHand => {
                        let s = tcp_socket(leaf_ws)?;
                        let start = Instant::now();
                        leaf_ws
                            .connect(s, Some(&SOCKADDR_IN::new(ROOT)), SOCKADDR_IN_LEN)
                            .map_err(err("connect"))?;
                        leaf_ws
                            .send(s, &[0x5a; 16], 0)
                            .map_err(err("send the request"))?;
                        let mut answer = [0u8; 16];
                        recv_exact(leaf_ws, s, &mut answer)?;
                        let took = start.elapsed();
                        let _ = leaf_ws.closesocket(s);
                        took
                    }
                };
                // The first join resolves addresses and warms up: not counted.
                if i > 0 {
                    out.push(took.as_secs_f64() * 1e3);
                }
            }
            Ok::<_, String>(out)
        })();
        let _ = lws.closesocket(listener);
        let _ = acceptor.join();
        timed
    });
    if let Some(r) = c_root {
        let _ = t.root.closesocket(r);
    }
    t.close();
    let mut xs = samples?;
    xs.sort_by(f64::total_cmp);
    Ok((percentile(&xs, 0.5), percentile(&xs, 0.9)))
}

/// Fills `buf` from a TCP socket.
fn recv_exact(ws: &Winsock, s: SOCKET, buf: &mut [u8]) -> Result<(), String> {
    let mut got = 0;
    while got < buf.len() {
        match ws.recv(s, &mut buf[got..], 0) {
            Ok(0) => return Err("the peer closed".into()),
            Ok(n) => got += n as usize,
            Err(e) => return Err(format!("recv: {e}")),
        }
    }
    Ok(())
}
