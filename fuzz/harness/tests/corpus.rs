//! Replays the committed fuzz corpus (`fuzz/corpus/<target>/`) through the harness on the
//! stable toolchain: every input that the fuzzers kept, and every reproducer of a bug found
//! (named after what it broke),
//! must run without a panic, within the memory cap, with the reference connection alive
//! (docs/reliability.md "Fuzzing"). One test per target, each on its own thread, so the
//! counting allocator's per-thread figures stay apart.

use std::path::PathBuf;

use ws2_fuzz::{alloc, check, Target};

#[global_allocator]
static ALLOC: alloc::Counting = alloc::Counting;

/// Every file of `fuzz/<set>/<target>/`, sorted (none if the directory does not exist).
fn inputs(set: &str, target: Target) -> Vec<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(set)
        .join(target.name());
    if !dir.exists() {
        return Vec::new();
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

fn replay(target: Target) {
    let files = inputs("corpus", target);
    assert!(!files.is_empty(), "the {} corpus is empty", target.name());
    replay_files(target, &files);
}

fn replay_files(target: Target, files: &[PathBuf]) {
    let (mut grew, mut sent) = (0isize, 0usize);
    for f in files {
        let data = std::fs::read(f).expect("corpus file");
        match std::panic::catch_unwind(|| check(target, &data)) {
            Ok(Ok(r)) => {
                grew = grew.max(r.grew);
                sent += r.sent;
            }
            Ok(Err(e)) => panic!("{}: {e}", f.display()),
            Err(p) => {
                let msg = p
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default();
                panic!("{} panicked: {msg}", f.display());
            }
        }
    }
    assert!(alloc::installed(), "the counting allocator is installed");
    eprintln!(
        "{}: {} inputs replayed, {sent} frames; largest heap growth {} KiB (cap {} KiB)",
        target.name(),
        files.len(),
        grew >> 10,
        ws2_fuzz::MEMORY_CAP >> 10
    );
}

#[test]
fn arp() {
    replay(Target::Arp);
}

#[test]
fn ipv4() {
    replay(Target::Ipv4);
}

#[test]
fn tcp() {
    replay(Target::Tcp);
}

#[test]
fn icmp() {
    replay(Target::Icmp);
}

#[test]
fn igmp() {
    replay(Target::Igmp);
}

#[test]
fn rmp() {
    replay(Target::Rmp);
}

/// The harness asserts something: an input that makes the reference connection's peer
/// unreachable must fail liveness. Here no fuzz frame can do that (C is protected), so the
/// check is exercised directly: with C's cable cut, the reference transfer cannot complete.
#[test]
fn liveness_check_can_fail() {
    let mut lan = ws2_fuzz::lan::Lan::new(ws2_fuzz::SEED, None);
    let _ = lan.c.closesocket(lan.c_ref);
    lan.wait(std::time::Duration::from_millis(100));
    assert!(lan
        .reference_is_alive(std::time::Duration::from_secs(5))
        .is_err());
}

/// The memory bound measures what this thread holds: a megabyte held shows in the peak.
#[test]
fn allocator_counts_this_thread() {
    alloc::reset_peak();
    let before = alloc::peak();
    let held = std::hint::black_box(vec![1u8; 1 << 20]);
    assert!(
        alloc::peak() - before >= 1 << 20,
        "peak {}",
        alloc::peak() - before
    );
    drop(held);
    assert!(alloc::live() < before + (1 << 20));
}
