//! Keeps `docs/conformance.md` true: it is generated from CHECKLIST Part 2 and the
//! `/// Conformance: N, M — …` lines above the tests. Run with `WS2_BLESS=1` to rewrite it.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

/// The behaviours of CHECKLIST Part 2: number → (group letter, text).
fn behaviours(checklist: &str) -> BTreeMap<u32, (char, String)> {
    let mut out = BTreeMap::new();
    let mut group = '?';
    let mut in_part2 = false;
    for line in checklist.lines() {
        if line.starts_with("# Part 2") {
            in_part2 = true;
        } else if line.starts_with("# Part 3") {
            break;
        }
        if !in_part2 {
            continue;
        }
        if let Some(rest) = line.strip_prefix("### ") {
            group = rest.chars().next().unwrap_or('?');
        } else if let Some((num, text)) = line.split_once(". ") {
            if let Ok(n) = num.parse::<u32>() {
                out.insert(n, (group, text.to_string()));
            }
        }
    }
    out
}

/// The folders searched for marker lines: every crate of the workspace.
const CRATE_DIRS: [&str; 7] = [
    "tests",
    "stack",
    "cli",
    "tap",
    "qos",
    "groups",
    "multipoint",
];

/// `file::test` names per behaviour number, from the marker lines in every `.rs` file.
fn covered(root: &Path) -> BTreeMap<u32, Vec<String>> {
    let mut out: BTreeMap<u32, Vec<String>> = BTreeMap::new();
    let mut files = Vec::new();
    for dir in CRATE_DIRS {
        collect(&root.join(dir), &mut files);
    }
    files.sort();
    for file in files {
        let Ok(text) = fs::read_to_string(&file) else {
            continue;
        };
        let lines: Vec<&str> = text.lines().collect();
        let rel = file
            .strip_prefix(root)
            .unwrap_or(&file)
            .display()
            .to_string();
        for (i, line) in lines.iter().enumerate() {
            let Some(rest) = line.trim().strip_prefix("/// Conformance:") else {
                continue;
            };
            // The numbers are the leading run of digits, commas and spaces ("137, 160 — …");
            // anything after ("issue 2 acceptance") is prose.
            let nums: String = rest
                .chars()
                .take_while(|c| c.is_ascii_digit() || *c == ',' || *c == ' ')
                .collect();
            let window = &lines[i + 1..(i + 13).min(lines.len())];
            let fn_at = window.iter().position(|l| l.contains("fn "));
            if window[..fn_at.unwrap_or(window.len())]
                .iter()
                .any(|l| l.contains("#[ignore"))
            {
                continue; // an ignored test covers nothing
            }
            let Some(name) = window.iter().find_map(|l| {
                let l = l.trim();
                let after = l
                    .strip_prefix("fn ")
                    .or_else(|| l.strip_prefix("pub fn "))?;
                after.split(['(', '<']).next().map(str::to_string)
            }) else {
                continue;
            };
            for n in nums
                .split([',', ' '])
                .filter_map(|t| t.trim().parse::<u32>().ok())
            {
                out.entry(n).or_default().push(format!("{rel}::{name}"));
            }
        }
    }
    out
}

fn collect(dir: &Path, files: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() && p.file_name().is_some_and(|n| n != "target") {
            collect(&p, files);
        } else if p.extension().is_some_and(|x| x == "rs") {
            files.push(p);
        }
    }
}

/// Behaviours not claimed, with the reason: `(number, reason, status)` where status is `n/a`
/// (cannot apply to this provider) or `todo` (later work).
const NOT_CLAIMED: &[(u32, &str, &str)] = &[
    (129, "WSAConnect has no connect data to return: TCP carries none (D-19), and RMP sockets connect only through WSAJoinLeaf, whose lpCalleeData after FD_CONNECT is 436", "n/a"),
    (90, "TCP carries no connect data (no XP1_CONNECT_DATA; D-19)", "n/a"),
    (91, "TCP carries no connect data (no XP1_CONNECT_DATA; D-19)", "n/a"),
    (140, "the Rust face's recv takes a slice, whose length cannot be negative (there is no C ABI)", "n/a"),
    (184, "RMP, the only message-oriented entry, lacks XP1_PARTIAL_MESSAGE (docs/rmp.md §1): a message is never split", "n/a"),
    (333, "smoltcp ties the TCP window to its receive buffer, so SO_RCVBUF = 0 cannot mean \"posted buffers only\" (Appendix C)", "n/a"),
    (334, "the UDP receive buffer is smoltcp's; SO_RCVBUF = 0 is raised to the 4 KiB minimum (decisions.md)", "n/a"),
];

/// Where an uncovered behaviour's work lives, by CHECKLIST group.
fn owner(group: char) -> &'static str {
    match group {
        'I' | 'J' | 'K' | 'L' | 'M' => "todo: issue 3 (notification and asynchronous I/O models)",
        'N' | 'O' => "todo: issue 4 (QoS and socket groups)",
        'P' => "todo: issue 5 (IP multicast)",
        'Q' => "todo: issue 6 (rooted multipoint)",
        _ => "todo: issue 7 (the rest of the socket API)",
    }
}

fn render(
    behaviours: &BTreeMap<u32, (char, String)>,
    covered: &BTreeMap<u32, Vec<String>>,
) -> String {
    let tested = behaviours
        .keys()
        .filter(|n| covered.contains_key(n))
        .count();
    let mut md = String::new();
    md.push_str("# Conformance: CHECKLIST Part 2\n\n");
    md.push_str(&format!(
        "**{tested} of {} behaviours covered by a test.** Generated by `tests/tests/conformance_doc.rs` from `../shared/spec/CHECKLIST.md` and the `/// Conformance: N — …` line above each test; regenerate with `WS2_BLESS=1 cargo test -p ws2-tests --test conformance_doc`.\n\n",
        behaviours.len()
    ));
    md.push_str("| number | test (or why not yet) | status |\n| --- | --- | --- |\n");
    for (n, (group, _)) in behaviours {
        match covered.get(n) {
            Some(tests) => md.push_str(&format!("| {n} | {} | tested |\n", tests.join("<br>"))),
            None => match NOT_CLAIMED.iter().find(|(m, _, _)| m == n) {
                Some((_, why, status)) => md.push_str(&format!("| {n} | {why} | {status} |\n")),
                None => md.push_str(&format!("| {n} | {} | todo |\n", owner(*group))),
            },
        }
    }
    md
}

#[test]
fn conformance_doc_is_current() {
    let root = root();
    let Ok(checklist) = fs::read_to_string(root.join("../shared/spec/CHECKLIST.md")) else {
        println!("SKIP: conformance_doc_is_current: ../shared/spec/CHECKLIST.md not found");
        return;
    };
    let behaviours = behaviours(&checklist);
    assert_eq!(
        behaviours.len(),
        585,
        "CHECKLIST Part 2 should number 585 behaviours"
    );
    let md = render(&behaviours, &covered(&root));
    let path = root.join("docs/conformance.md");
    if std::env::var_os("WS2_BLESS").is_some() {
        fs::write(&path, &md).expect("write docs/conformance.md");
        return;
    }
    let current = fs::read_to_string(&path).unwrap_or_default();
    assert!(
        current == md,
        "docs/conformance.md is stale: run `WS2_BLESS=1 cargo test -p ws2-tests --test conformance_doc` and commit it"
    );
}
