//! The `ws2` command line (clap): `demo`, `switch`, `send`, `recv`, `mcast`, `root`, `leaf`,
//! `bench`.
//!
//! A crate of its own (`ws2-cli`), so a library user of `ws2-stack` compiles no command-line
//! code: it reaches the stack only through `ws2_stack`'s public paths.
//!
//! Every command that runs a stack takes the same link options ([`LinkArgs`]):
//! `--link tap:NAME|raw:IFNAME|unix:PATH`, `--addr A.B.C.D/P`, `--gateway`, `--mtu`, `--pcap`.
#![deny(unsafe_code)]
#![warn(missing_docs, unreachable_pub)]
#![deny(missing_debug_implementations)]

mod bench;
mod demo;
mod ending;
mod flow_socket;
mod interrupt;
mod mcast;
mod qos_arg;
mod ranges;
mod rmp;
mod soak;
mod transfer;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use interrupt::Interrupts;
use ws2_stack::{Ipv4Cidr, Stack, StackConfig};
use ws2_tap::{Link, PcapTee, RawSocket, Tap, UnixLink, UnixSwitch};

#[derive(Parser, Debug)]
#[command(
    name = "ws2",
    version,
    about = "Windows Sockets 2 on a userspace TCP/IP stack"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Several hosts on an in-process virtual LAN exchanging TCP and UDP (no root needed).
    Demo(demo::DemoArgs),
    /// A virtual LAN for separate processes: one Ethernet frame per Unix datagram.
    Switch {
        /// Path of the switch's Unix datagram socket.
        #[arg(long)]
        socket: PathBuf,
    },
    /// Send bulk TCP or UDP to a peer and report what went out.
    Send(transfer::SendArgs),
    /// Receive bulk TCP or UDP and report what arrived.
    Recv(transfer::RecvArgs),
    /// Join an IP multicast group (WSAJoinLeaf), send to it and count what arrives.
    Mcast(mcast::McastArgs),
    /// Be the root of a rooted multipoint session (RMP): admit and invite leaves, send to them.
    Root(rmp::RootArgs),
    /// Be a leaf of a rooted multipoint session (RMP): join or be invited, count what arrives.
    Leaf(rmp::LeafArgs),
    /// Measure a scenario against its anchor in the same run (see docs/benchmarks.md).
    Bench(bench::BenchArgs),
    /// Soak: hours of connections, flows, joins and leaves; checks sockets and memory stay flat.
    Soak(soak::SoakArgs),
}

/// How a command attaches its stack to a network.
#[derive(Args, Debug, Clone)]
pub(crate) struct LinkArgs {
    /// The link: tap:NAME (a TAP device), raw:IFNAME (AF_PACKET on an interface) or
    /// unix:PATH (a `ws2 switch`).
    #[arg(long)]
    pub(crate) link: String,
    /// The stack's address with prefix length, e.g. 10.0.0.2/24.
    #[arg(long)]
    pub(crate) addr: Ipv4Cidr,
    /// Default gateway.
    #[arg(long)]
    pub(crate) gateway: Option<std::net::Ipv4Addr>,
    /// IP MTU of the link (68 to 65521).
    #[arg(long, default_value_t = 1500, value_parser = ranges::mtu)]
    pub(crate) mtu: usize,
    /// Write every frame to this pcap file (tcpdump -r reads it).
    #[arg(long)]
    pub(crate) pcap: Option<PathBuf>,
}

impl LinkArgs {
    /// Opens the link and starts the stack.
    pub(crate) fn start(&self) -> Result<Stack, String> {
        let link: Box<dyn Link> = open_link(&self.link)?;
        let link: Box<dyn Link> = match &self.pcap {
            Some(path) => Box::new(
                PcapTee::new(link, path)
                    .map_err(|e| format!("cannot write {}: {e}", path.display()))?,
            ),
            None => link,
        };
        let mut config = StackConfig::new(self.addr);
        config.gateway = self.gateway;
        config.mtu = self.mtu;
        Stack::from_box(config, link).map_err(|e| format!("cannot start the stack: {e}"))
    }
}

/// Opens `tap:NAME`, `raw:IFNAME` or `unix:PATH`.
pub(crate) fn open_link(spec: &str) -> Result<Box<dyn Link>, String> {
    let (kind, arg) = spec
        .split_once(':')
        .ok_or_else(|| format!("--link {spec:?}: expected tap:NAME, raw:IFNAME or unix:PATH"))?;
    if arg.is_empty() {
        return Err(format!(
            "--link {spec:?}: the name after '{kind}:' is missing"
        ));
    }
    let fail = |e: std::io::Error| format!("--link {spec}: {e}");
    Ok(match kind {
        "tap" => Box::new(Tap::open(arg).map_err(fail)?),
        "raw" => Box::new(RawSocket::open(arg).map_err(fail)?),
        "unix" => Box::new(UnixLink::connect(std::path::Path::new(arg)).map_err(fail)?),
        other => {
            return Err(format!(
                "--link {spec:?}: unknown link kind {other:?} (tap, raw, unix)"
            ))
        }
    })
}

fn main() {
    std::process::exit(run());
}

/// Parses the command line and runs the command; the process's exit code.
fn run() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return usage_error(e),
    };
    let result = match cli.command {
        Command::Demo(args) => demo::run(&args),
        Command::Switch { socket } => run_switch(&socket),
        Command::Send(args) => transfer::send(&args),
        Command::Recv(args) => transfer::recv(&args),
        Command::Bench(args) => bench::run(&args),
        Command::Mcast(args) => mcast::run(&args),
        Command::Root(args) => rmp::run_root(&args),
        Command::Leaf(args) => rmp::run_leaf(&args),
        Command::Soak(args) => soak::run(&args),
    };
    match result {
        Ok(()) => 0,
        Err(msg) => {
            eprintln!("ws2: {msg}");
            1
        }
    }
}

/// A command line clap refused: one line, `ws2: invalid value …: why` (clap's first paragraph,
/// without its usage and tips), and status 2. Help and version are clap's own output.
fn usage_error(e: clap::Error) -> i32 {
    use clap::error::ErrorKind;
    match e.kind() {
        ErrorKind::DisplayHelp
        | ErrorKind::DisplayVersion
        | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => e.exit(),
        _ => {
            let text = e.to_string();
            let first: Vec<&str> = text
                .lines()
                .take_while(|l| !l.trim().is_empty())
                .map(str::trim)
                .collect();
            eprintln!("ws2: {}", first.join(" ").trim_start_matches("error: "));
            2
        }
    }
}

/// `ws2 switch`: serves the socket until SIGINT or SIGTERM, then removes the socket file.
fn run_switch(path: &std::path::Path) -> Result<(), String> {
    // Before the socket exists: whoever waits for the file to appear may signal at once.
    let interrupts =
        Interrupts::install().map_err(|e| format!("cannot handle SIGINT and SIGTERM: {e}"))?;
    let switch =
        UnixSwitch::bind(path).map_err(|e| format!("cannot bind {}: {e}", path.display()))?;
    eprintln!("ws2 switch: listening on {}", path.display());
    switch
        .run(interrupts.first_flag())
        .map_err(|e| format!("switch failed: {e}"))?;
    if interrupts.first() {
        eprintln!("ws2 switch: interrupted, removing {}", path.display());
    }
    drop(switch); // removes the socket file
    Ok(())
}
