//! `ws2 bench <scenario>`: the benchmark contract of DESIGN.md.
//!
//! Every scenario measures its anchor in the same run and prints a readable table, or with
//! `--json` one object per line: `{"scenario", "metric", "value", "unit", "baseline",
//! "baseline_value", "ratio"}`. Only ratios are stable on these noisy machines; each figure is
//! the median of `--runs` runs, ours and the anchor's interleaved. A bench interrupted by SIGINT
//! or SIGTERM deletes the network namespaces it made (with their veths, TAPs and addresses),
//! says so in one line and exits 130 (`cleanup`).
//!
//! Scenarios:
//! - `tcp-virtual`: bulk TCP through the Winsock face between two stacks on a `VirtualSwitch`,
//!   against raw smoltcp (two interfaces, one thread each) on the same kind of link.
//! - `tcp-tap`: bulk TCP through the Winsock face on a TAP against the Linux kernel in a network
//!   namespace, against raw smoltcp on the same TAP against the same kernel peer. Needs root.
//! - `events`: notification latency of `WSAEventSelect` and of completion routines, and the
//!   cost of a 64-event `WSAWaitForMultipleEvents`, against Linux epoll on kernel sockets.
//! - `shaping`: UDP rate error, 1-second burst excess and loss of a shaped flow at 1, 10 and
//!   100 Mbit/s against `tc tbf` on a veth pair (root; skipped otherwise), and the scheduler's
//!   cost per packet at 1 Mpps with 1,000 flows against a plain FIFO.
//! - `multicast`: datagrams/s delivered to 1, 8 and 64 local member sockets of one group, and
//!   the time from `WSAJoinLeaf` to the first datagram, against the kernel on lo (TTL 0).
//! - `rooted`: RMP fan-out from one root to 1, 16 and 256 leaves, and `WSAJoinLeaf` latency,
//!   against the same done by hand over plain TCP connections of the engine.

mod cleanup;
mod events;
mod multicast;
mod raw_smoltcp;
mod rooted;
mod shaping;
mod tcp;

use clap::{Args, ValueEnum};

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scenario {
    /// Bulk TCP on the in-process virtual switch, vs raw smoltcp.
    TcpVirtual,
    /// Bulk TCP on a TAP with the Linux kernel as peer, vs raw smoltcp (root).
    TcpTap,
    /// Event and completion-routine latency, 64-event waits, vs Linux epoll (lower is better).
    Events,
    /// Shaped UDP rate error, burst excess and loss vs tc tbf on veth (root), and the
    /// scheduler's cost per packet vs a FIFO (closer to 0 / lower is better).
    Shaping,
    /// Multicast delivery to 1/8/64 local members and join-to-first-packet latency, vs the
    /// kernel on lo with TTL 0.
    Multicast,
    /// RMP fan-out to 1/16/256 leaves and WSAJoinLeaf latency, vs plain TCP by hand.
    Rooted,
}

#[derive(Args, Debug)]
pub(crate) struct BenchArgs {
    #[arg(value_enum)]
    scenario: Scenario,
    /// One JSON object per line instead of a table.
    #[arg(long)]
    json: bool,
    /// Bytes per transfer (tcp scenarios; at least 1).
    #[arg(long, default_value_t = 128 * 1024 * 1024, value_parser = crate::ranges::bytes)]
    bytes: u64,
    /// Runs per measurement (the median is reported; 1 to 100).
    #[arg(long, default_value_t = 3, value_parser = crate::ranges::runs)]
    runs: usize,
    /// Seconds each shaped flow is offered (shaping; 2 to 60).
    #[arg(long, default_value_t = 4.0, allow_negative_numbers = true, value_parser = crate::ranges::bench_secs)]
    secs: f64,
}

/// One measured figure beside its anchor.
#[derive(Debug, Clone)]
pub(crate) struct Figure {
    pub(crate) scenario: &'static str,
    pub(crate) metric: String,
    pub(crate) value: f64,
    pub(crate) unit: &'static str,
    pub(crate) baseline: &'static str,
    pub(crate) baseline_value: f64,
}

impl Figure {
    fn ratio(&self) -> f64 {
        if self.baseline_value > 0.0 {
            self.value / self.baseline_value
        } else {
            0.0
        }
    }
}

pub(crate) fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(|a, b| a.total_cmp(b));
    xs.get(xs.len() / 2).copied().unwrap_or(0.0)
}

pub(crate) fn run(args: &BenchArgs) -> Result<(), String> {
    // Before any namespace exists: an interruption at any point removes what was made.
    let interrupts = crate::interrupt::Interrupts::install()
        .map_err(|e| format!("cannot handle SIGINT and SIGTERM: {e}"))?;
    cleanup::remove_on_interrupt(interrupts);
    let runs = args.runs;
    let figures = match args.scenario {
        Scenario::TcpVirtual => tcp::virtual_switch(args.bytes, runs)?,
        Scenario::TcpTap => tcp::tap(args.bytes, runs)?,
        Scenario::Events => events::run(runs)?,
        Scenario::Shaping => shaping::shaping(runs, args.secs)?,
        Scenario::Multicast => multicast::run(runs)?,
        Scenario::Rooted => rooted::run(runs)?,
    };
    if args.json {
        for f in &figures {
            let obj = serde_json::json!({
                "scenario": f.scenario,
                "metric": f.metric,
                "value": round(f.value),
                "unit": f.unit,
                "baseline": f.baseline,
                "baseline_value": round(f.baseline_value),
                "ratio": round(f.ratio()),
            });
            println!("{obj}");
        }
    } else {
        println!(
            "{:<14} {:<40} {:>12} {:<8} {:<30} {:>12} {:>7}",
            "scenario", "metric", "value", "unit", "baseline", "baseline", "ratio"
        );
        for f in &figures {
            println!(
                "{:<14} {:<40} {:>12.1} {:<8} {:<30} {:>12.1} {:>7.3}",
                f.scenario,
                f.metric,
                f.value,
                f.unit,
                f.baseline,
                f.baseline_value,
                f.ratio()
            );
        }
        println!("ratio = value / baseline; {}", better(args.scenario));
    }
    Ok(())
}

/// Which way is better for a scenario's figures, for the table.
fn better(s: Scenario) -> &'static str {
    match s {
        Scenario::TcpVirtual | Scenario::TcpTap => "higher is better",
        Scenario::Events => "lower is better (latency, time per call)",
        Scenario::Shaping => "rate error: closer to 0 is better; excess, loss, ns: lower is better",
        Scenario::Multicast => "delivery: higher is better; join latency: lower is better",
        Scenario::Rooted => "fan-out: higher is better; join latency: lower is better",
    }
}

fn round(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}
