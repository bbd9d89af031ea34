//! `ws2 soak`: the soak of issue 13 (point 4) as a command. Several hosts on one in-process
//! `VirtualSwitch` run the seeded cycles of [`workload`] — TCP connections opened, loaded and
//! closed every way, UDP flows, shaped flows, multicast joins and leaves, RMP sessions — for
//! `--duration`, printing the engines' figures (sockets, smoltcp sockets, bindings, orphans,
//! queued frames), the live heap and the RSS as it goes; at the end everything is closed and
//! settled and the verdict is "flat" (exit 0) or "not flat" (exit 1).
//! SIGINT or SIGTERM ends the run at the next cycle boundary (still settled and judged); a second
//! one cuts the settling short.
//!
//! Real time by default: every stack has its own driver thread on the system clock, as an
//! application's would. `--virtual` runs the same workload on a virtual clock (no threads, the
//! clock jumps to the next deadline), so hours of it take minutes; `tests/tests/soak.rs` is the
//! same workload under `cargo test`.
//!
//! The heap gauge is a counting global allocator ([`workload::Counting`]) installed for the
//! whole `ws2` binary: two relaxed atomic additions per allocation, nothing else.

mod workload;

use std::io::Write;
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Args;
use ws2_stack::winsock::*;
use ws2_stack::{Clock, Driver, Ipv4Cidr, Stack, StackConfig, VirtualClock};
use ws2_tap::{Impairments, VirtualSwitch};

use crate::interrupt::Interrupts;
use workload::{Env, Figures, Reference, Shape, Workload};

#[global_allocator]
static ALLOC: workload::Counting = workload::Counting;

/// `ws2 soak` options.
#[derive(Args, Debug)]
pub(crate) struct SoakArgs {
    /// How long to run: e.g. 90s, 30m, 3h (virtual time with --virtual, wall time otherwise).
    #[arg(long, default_value = "30m", value_parser = parse_duration)]
    duration: Duration,
    /// Run on a virtual clock (no driver threads; hours take minutes).
    #[arg(long = "virtual")]
    virtual_time: bool,
    /// Hosts on the switch (2–16).
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u8).range(2..=16))]
    hosts: u8,
    /// Seed of the workload, the switch and the stacks.
    #[arg(long, default_value_t = 13)]
    seed: u64,
    /// Cycles before the heap's reference figure is taken (1–1000).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=1000))]
    warmup: u64,
    /// How many bytes the live heap may exceed its figure after the warm-up at the end.
    #[arg(long, default_value_t = 256 * 1024)]
    slack: u64,
    /// Fraction of frames the switch loses on the way to each host (0–0.2): datagrams may be
    /// lost then (what arrives is still checked), TCP and RMP must still deliver everything.
    #[arg(long, default_value_t = 0.0, value_parser = parse_loss)]
    loss: f64,
    /// Print the figures every this many cycles (1–100000).
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    every: u64,
}

/// `90s`, `30m`, `3h`, `1h30m`, or plain seconds; between 1 s and 7 days.
fn parse_duration(s: &str) -> Result<Duration, String> {
    let mut total = 0u64;
    let mut num = String::new();
    for ch in s.trim().chars() {
        if ch.is_ascii_digit() {
            num.push(ch);
            continue;
        }
        let unit = match ch {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            _ => return Err(format!("{s:?}: expected e.g. 90s, 30m, 3h")),
        };
        let n: u64 = num
            .parse()
            .map_err(|_| format!("{s:?}: a number must come before '{ch}'"))?;
        total = total.saturating_add(n.saturating_mul(unit));
        num.clear();
    }
    if !num.is_empty() {
        total = total.saturating_add(num.parse::<u64>().map_err(|e| format!("{s:?}: {e}"))?);
    }
    if !(1..=7 * 86_400).contains(&total) {
        return Err(format!("{s:?}: the duration must be between 1s and 7d"));
    }
    Ok(Duration::from_secs(total))
}

/// A loss fraction between 0 and 0.2.
fn parse_loss(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(p) if (0.0..=0.2).contains(&p) => Ok(p),
        _ => Err(format!(
            "{s:?}: the loss must be a fraction between 0 and 0.2"
        )),
    }
}

/// Real time: stacks on their own driver threads, an in-process switch.
struct RealEnv {
    switch: VirtualSwitch,
    start: Instant,
}

impl Env for RealEnv {
    fn run_until(&mut self, limit: Duration, done: &mut dyn FnMut() -> bool) -> bool {
        let end = Instant::now() + limit;
        loop {
            if done() {
                return true;
            }
            if Instant::now() >= end {
                return false;
            }
            std::thread::sleep(Duration::from_micros(500));
        }
    }

    fn elapsed(&self) -> Duration {
        self.start.elapsed()
    }

    fn frames(&self) -> u64 {
        self.switch.stats().forwarded
    }
}

/// Cycles after the warm-up whose quiet moments make the heap's reference.
const REFERENCE_WINDOW: u64 = 20;

/// Rounds of driver steps at one instant before the virtual run calls it a livelock.
const MAX_ROUNDS: usize = 10_000;

/// Virtual time: every driver stepped in turn on one clock that jumps to the next deadline
/// (as `ws2_tests::sim::Sim` does).
struct VirtualEnv {
    clock: VirtualClock,
    switch: VirtualSwitch,
    drivers: Vec<(Driver, Option<Instant>)>,
}

impl VirtualEnv {
    /// Steps every driver at the current instant until none wants to run now and no frame
    /// moved; whether any frame moved.
    fn settle(&mut self) -> bool {
        let now = self.clock.now();
        let start = self.switch.stats().forwarded;
        for _ in 0..MAX_ROUNDS {
            let before = self.switch.stats().forwarded;
            let mut again = false;
            for (d, next) in &mut self.drivers {
                *next = d.step();
                again |= next.is_some_and(|t| t <= now);
            }
            let after = self.switch.stats().forwarded;
            if !again && after == before {
                return after != start;
            }
        }
        panic!("livelock at {:?} of virtual time", self.clock.elapsed());
    }
}

impl Env for VirtualEnv {
    fn run_until(&mut self, limit: Duration, done: &mut dyn FnMut() -> bool) -> bool {
        let end = self.clock.now() + limit;
        let mut checks_now = 0;
        loop {
            self.settle();
            if done() {
                return true;
            }
            let moved = self.settle();
            let now = self.clock.now();
            if now >= end {
                return false;
            }
            checks_now += 1;
            if moved && checks_now < MAX_ROUNDS {
                continue;
            }
            checks_now = 0;
            let next = self
                .drivers
                .iter()
                .filter_map(|(_, t)| *t)
                .min()
                .map_or(end, |t| t.clamp(now, end));
            self.clock
                .advance_to(next.max(now + Duration::from_micros(1)).min(end));
        }
    }

    fn elapsed(&self) -> Duration {
        self.clock.elapsed()
    }

    fn frames(&self) -> u64 {
        self.switch.stats().forwarded
    }
}

/// The soak hosts' configuration: address `i`, a 1 s drain, a seed of its own.
fn host_config(i: usize, seed: u64) -> StackConfig {
    let cidr = Ipv4Cidr::new(workload::host_addr(i), 24).expect("prefix 24 is valid");
    let mut c = StackConfig::new(cidr);
    c.drain_timeout = Duration::from_secs(1);
    c.seed = Some(ws2_stack::split_seed(seed, 1000 + i as u64));
    c
}

/// A started Winsock 2.2 application on `stack`.
fn winsock(stack: &Stack) -> Result<Winsock, String> {
    let ws = Winsock::new(stack.clone());
    let mut data = WSADATA::default();
    match ws.WSAStartup(MAKEWORD(2, 2), Some(&mut data)) {
        0 => Ok(ws),
        e => Err(format!("WSAStartup failed: {e}")),
    }
}

/// Resident set size in KiB, from /proc/self/status (0 if unreadable).
fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            let line = s.lines().find(|l| l.starts_with("VmRSS:"))?;
            line.split_whitespace().nth(1)?.parse().ok()
        })
        .unwrap_or(0)
}

/// `ws2 soak`.
pub(crate) fn run(args: &SoakArgs) -> Result<(), String> {
    let interrupts =
        Interrupts::install().map_err(|e| format!("cannot handle SIGINT and SIGTERM: {e}"))?;
    let switch = VirtualSwitch::new(args.seed);
    let n = usize::from(args.hosts);
    let imp = Impairments {
        loss: args.loss,
        ..Impairments::default()
    };
    let mut stacks = Vec::new();
    let mut env: Box<dyn Env> = if args.virtual_time {
        let clock = VirtualClock::new();
        let mut drivers = Vec::new();
        for i in 0..n {
            let c: Arc<dyn Clock> = Arc::new(clock.clone());
            let (stack, driver) = Stack::with_driver(
                host_config(i, args.seed),
                Box::new(switch.port_with(imp.clone())),
                c,
            )
            .map_err(|e| format!("cannot start a stack: {e}"))?;
            let now = clock.now();
            drivers.push((driver, Some(now)));
            stacks.push(stack);
        }
        Box::new(VirtualEnv {
            clock,
            switch: switch.clone(),
            drivers,
        })
    } else {
        for i in 0..n {
            let stack = Stack::new(host_config(i, args.seed), switch.port_with(imp.clone()))
                .map_err(|e| format!("cannot start a stack: {e}"))?;
            stacks.push(stack);
        }
        Box::new(RealEnv {
            switch: switch.clone(),
            start: Instant::now(),
        })
    };
    let hosts = stacks
        .iter()
        .enumerate()
        .map(|(i, s)| Ok((winsock(s)?, workload::host_addr(i))))
        .collect::<Result<Vec<(Winsock, Ipv4Addr)>, String>>()?;
    let shape = if args.virtual_time {
        // Long idle gaps: TIME-WAIT, IGMP and RMP timers all run between cycles.
        Shape {
            idle: (Duration::from_secs(5), Duration::from_secs(40)),
            max_stream: 128 * 1024,
            leak_bytes: 0,
            leak_socket: false,
            lossy: args.loss > 0.0,
        }
    } else {
        Shape {
            idle: (Duration::from_millis(200), Duration::from_secs(2)),
            max_stream: 128 * 1024,
            leak_bytes: 0,
            leak_socket: false,
            lossy: args.loss > 0.0,
        }
    };
    let clock = if args.virtual_time { "virtual" } else { "real" };
    let mut soak = Workload::new(hosts, args.seed, shape)?;
    let settle_limit = Duration::from_secs(150);
    // The baseline: the listeners open, nothing else.
    let start = soak.figures();
    let wall = Instant::now();
    println!(
        "ws2 soak: {n} hosts, {clock} time, {:?}, seed {}, loss {}; start: {start}, RSS {} KiB",
        args.duration,
        args.seed,
        args.loss,
        rss_kib()
    );
    let mut reference = Reference::new(start, args.warmup, REFERENCE_WINDOW);
    let mut outcome = Ok(());
    while env.elapsed() < args.duration && !interrupts.first() {
        if let Err(e) = soak.cycle(env.as_mut()) {
            outcome = Err(format!("cycle {}: {e}", soak.totals.cycles + 1));
            break;
        }
        let c = soak.totals.cycles;
        if reference.warmup_ends(c) {
            // At least one quiet moment for the reference: settled as the end will be.
            soak.settle(env.as_mut(), &start, settle_limit, &|| {
                interrupts.count() >= 2
            });
            println!(
                "  warm-up done after {c} cycles: {}, RSS {} KiB",
                soak.figures(),
                rss_kib()
            );
        }
        reference.sample(c, &soak.figures());
        if c % args.every == 0 {
            let f = soak.figures();
            println!(
                "{:>9.1} s {clock} ({:>7.1} s wall) cycle {c:>6}: {f}, RSS {} KiB, frames {}",
                env.elapsed().as_secs_f64(),
                wall.elapsed().as_secs_f64(),
                rss_kib(),
                env.frames()
            );
            let _ = std::io::stdout().flush();
        }
    }
    let interrupted = interrupts.first();
    // The end figure: every cycle's sockets closed and their background closes finished, the
    // listeners still open as at the start (their pools are part of both figures).
    let settled = soak.settle(env.as_mut(), &start, settle_limit, &|| {
        interrupts.count() >= 2
    });
    let end = soak.figures();
    // Then the listeners too: nothing may be left.
    soak.close_listeners()?;
    let empty = soak.settle(env.as_mut(), &Figures::default(), settle_limit, &|| {
        interrupts.count() >= 2
    });
    let closed = soak.figures();
    let t = soak.totals;
    println!(
        "ws2 soak: {} cycles in {:.1} s {clock} ({:.1} s wall){}",
        t.cycles,
        env.elapsed().as_secs_f64(),
        wall.elapsed().as_secs_f64(),
        if interrupted { ", interrupted" } else { "" }
    );
    println!(
        "  TCP {} opened, {} closed ({} abortive, {} shaped), {} bytes checked; UDP {} datagrams ({} shaped); {} datagrams lost",
        t.tcp_opened, t.tcp_closed, t.tcp_aborted, t.tcp_shaped, t.tcp_bytes, t.udp_datagrams, t.shaped_datagrams, t.datagrams_lost
    );
    println!(
        "  multicast {} joins, {} leaves, {} datagrams; RMP {} sessions, {} leaves, {} messages, {} invitations failed; frames {}",
        t.joins, t.leaves, t.mcast_datagrams, t.rmp_sessions, t.rmp_leaves, t.rmp_messages, t.rmp_invites_failed, env.frames()
    );
    println!("  start (listeners open): {start}");
    if let Some(live) = reference.live {
        println!(
            "  reference heap (cycles {}-{}, highest of {} quiet moments): {:.1} KiB",
            args.warmup,
            args.warmup + REFERENCE_WINDOW,
            reference.samples,
            live as f64 / 1024.0
        );
    }
    println!("  end (settled: {settled}): {end}, RSS {} KiB", rss_kib());
    println!("  listeners closed too (settled: {empty}): {closed}");
    outcome?;
    workload::judge(&start, &reference, &end, args.slack as i64)
        .map_err(|e| format!("not flat: {e}"))?;
    if closed.counts() != Figures::default().counts() {
        return Err(format!("not flat: with the listeners closed too: {closed}"));
    }
    println!(
        "ws2 soak: flat (counts back to the start, live heap {:+} bytes over the reference, slack {})",
        reference.end_live(&end) - reference.live.unwrap_or(end.live),
        args.slack
    );
    drop(soak);
    drop(env);
    Ok(())
}
