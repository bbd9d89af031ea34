//! The `ws2` command line: demo, switch, bench, send and recv.
mod cli;

fn main() {
    std::process::exit(cli::main());
}
