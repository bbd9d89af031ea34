//! `ws2 soak` as a command (issue 13, point 4; docs/reliability.md "Soak"): a virtual-time run
//! prints its figures and the verdict "flat" with exit 0; a run that cannot be judged exits 1
//! with the reason; out-of-range options get one clear line and a non-zero exit (issue 13,
//! point 5). Everything runs on an in-process switch: nothing touches an interface.

use std::process::{Command, Output};

fn ws2(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ws2"))
        .args(args)
        .output()
        .expect("ws2 runs")
}

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Half an hour of virtual time: every count back to the start, the heap within its slack.
#[test]
fn virtual_soak_is_flat() {
    let out = ws2(&["soak", "--virtual", "--duration", "30m", "--every", "20"]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("ws2 soak: flat"), "{stdout}");
    assert!(
        stdout.contains("listeners closed too (settled: true): sockets 0 smoltcp 0 ports 0"),
        "{stdout}"
    );
    // The periodic figures: one line every 20 cycles.
    assert!(stdout.contains("cycle     20: sockets"), "{stdout}");
}

/// A run that ends before its warm-up has no heap reference: not judged, exit 1.
#[test]
fn a_run_without_reference_is_not_flat() {
    let out = ws2(&["soak", "--virtual", "--duration", "60s", "--warmup", "1000"]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(stderr.contains("not flat: no reference"), "{stderr}");
}

/// Out-of-range options are refused with one clear line.
#[test]
fn bad_options_are_refused() {
    for (args, says) in [
        (&["soak", "--duration", "0s"][..], "between 1s and 7d"),
        (
            &["soak", "--duration", "5x"][..],
            "expected e.g. 90s, 30m, 3h",
        ),
        (
            &["soak", "--duration", "h"][..],
            "a number must come before",
        ),
        (&["soak", "--hosts", "1"][..], "--hosts"),
        (&["soak", "--every", "0"][..], "--every"),
    ] {
        let out = ws2(args);
        let (_, stderr) = text(&out);
        assert!(!out.status.success(), "{args:?} accepted");
        assert!(stderr.contains(says), "{args:?}: {stderr}");
    }
}
