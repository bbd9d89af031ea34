//! Replays one fuzz input on the stable toolchain and says what it does:
//! `cargo run --release -p ws2-fuzz --example replay -- tcp fuzz/artifacts/tcp/crash-…`
//! prints the script the input stands for, then runs it (a panic shows its backtrace).

use ws2_fuzz::{alloc, check, describe, Target};

#[global_allocator]
static ALLOC: alloc::Counting = alloc::Counting;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, name, path] = &args[..] else {
        eprintln!("usage: replay <arp|ipv4|tcp|icmp|igmp|rmp> <input file>");
        std::process::exit(2);
    };
    let Some(target) = Target::ALL.into_iter().find(|t| t.name() == name) else {
        eprintln!("no target {name}");
        std::process::exit(2);
    };
    let data = std::fs::read(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    print!("{}", describe(target, &data));
    match check(target, &data) {
        Ok(r) => println!("ok: {r:?}"),
        Err(e) => {
            println!("FAILED: {e}");
            std::process::exit(1);
        }
    }
}
