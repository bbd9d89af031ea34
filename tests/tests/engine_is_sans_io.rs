//! Issue 12 acceptance: the engine reads no clock and makes no thread or process call outside
//! the driver (DESIGN.md "stack: the engine and its driver"). Every source file under
//! `stack/src/engine/` is read up to its test module and searched for the calls that would
//! make a run depend on when or where it happens.

use std::path::{Path, PathBuf};

/// Calls the engine must not make (the driver and the `Stack` handle may).
const FORBIDDEN: [&str; 7] = [
    "Instant::now",
    "SystemTime::now",
    "process::id",
    "thread::spawn",
    "thread::sleep",
    "thread_rng",
    "from_entropy",
];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read engine dir") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn the_engine_reads_no_clock_and_spawns_nothing() {
    let engine = Path::new(env!("CARGO_MANIFEST_DIR")).join("../stack/src/engine");
    let mut files = Vec::new();
    rust_files(&engine, &mut files);
    assert!(files.len() >= 10, "found the engine's files: {files:?}");
    let mut found = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).expect("read source");
        // Unit tests may use the real clock to make instants; the code under test may not.
        let code = text.split("#[cfg(test)]").next().unwrap_or("");
        for (n, line) in code.lines().enumerate() {
            let line = line.split("//").next().unwrap_or("");
            for call in FORBIDDEN {
                if line.contains(call) {
                    found.push(format!("{}:{}: {call}", file.display(), n + 1));
                }
            }
        }
    }
    assert!(
        found.is_empty(),
        "the engine must take `now` and a seed:\n{}",
        found.join("\n")
    );
}
