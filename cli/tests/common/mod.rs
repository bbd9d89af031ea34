//! What the CLI tests share: a private temporary directory, `ws2` child processes that are
//! killed on drop, and a `ws2 switch` to put them on (the standard `tests/common/mod.rs`
//! pattern: a module of each test crate, not a test of its own).

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// The `ws2` binary cargo built for this test.
pub const WS2: &str = env!("CARGO_BIN_EXE_ws2");

/// A private directory for the switch socket and the processes' logs, removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("ws2-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create temp dir");
        TempDir(dir)
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A child process killed (and reaped) on drop, whether the test passed or not; its stdout
/// and stderr go to files named after it.
pub struct Proc {
    name: &'static str,
    child: Child,
    stdout: PathBuf,
    stderr: PathBuf,
}

impl Proc {
    /// Runs `ws2 args…` with its output going to `dir/<name>.out` and `dir/<name>.err`.
    pub fn spawn(dir: &TempDir, name: &'static str, args: &[&str]) -> Proc {
        let stdout = dir.path(&format!("{name}.out"));
        let stderr = dir.path(&format!("{name}.err"));
        let child = Command::new(WS2)
            .args(args)
            .stdin(Stdio::null())
            .stdout(File::create(&stdout).expect("stdout file"))
            .stderr(File::create(&stderr).expect("stderr file"))
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {WS2} {name}: {e}"));
        Proc {
            name,
            child,
            stdout,
            stderr,
        }
    }

    /// Sends `signal` (`libc::SIGTERM`, …) to the process. Only while [`poll`](Self::poll)
    /// has not seen it exit: once reaped, its pid may be another process's.
    #[allow(
        dead_code,
        reason = "each test crate compiles its own copy of this module; not all send signals"
    )]
    pub fn signal(&self, signal: libc::c_int) {
        let pid = libc::pid_t::try_from(self.child.id()).expect("pid fits pid_t");
        // SAFETY: kill takes no pointers.
        let r = unsafe { libc::kill(pid, signal) };
        assert_eq!(r, 0, "kill {pid}: {}", std::io::Error::last_os_error());
    }

    /// The process id.
    #[allow(
        dead_code,
        reason = "each test crate compiles its own copy of this module; not all need the pid"
    )]
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// The exit status, if the process has exited.
    #[allow(
        dead_code,
        reason = "each test crate compiles its own copy of this module; not all wait for exits"
    )]
    pub fn poll(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().expect("try_wait")
    }

    /// Waits for the process to exit, up to `limit`; `None` if it is still running.
    #[allow(
        dead_code,
        reason = "each test crate compiles its own copy of this module; not all wait for exits"
    )]
    pub fn wait_for(&mut self, limit: Duration) -> Option<ExitStatus> {
        let end = Instant::now() + limit;
        loop {
            if let Some(status) = self.poll() {
                return Some(status);
            }
            if Instant::now() >= end {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// What the process printed (stdout, stderr), for assertions and failure messages.
    pub fn output(&self) -> (String, String) {
        let read = |p: &Path| std::fs::read_to_string(p).unwrap_or_default();
        (read(&self.stdout), read(&self.stderr))
    }

    /// Both outputs, labelled, for a failure message.
    pub fn describe(&self) -> String {
        let (out, err) = self.output();
        format!(
            "--- {} stdout:\n{out}--- {} stderr:\n{err}",
            self.name, self.name
        )
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits until `cond` holds, up to `limit`, panicking with `what` otherwise.
pub fn wait_until(limit: Duration, what: impl Fn() -> String, cond: impl Fn() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < limit, "{}", what());
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Starts `ws2 switch --socket dir/switch.sock` and waits (up to 10 s) until it has bound
/// the socket; the process and the `--link` argument that reaches the switch.
#[allow(
    dead_code,
    reason = "each test crate compiles its own copy of this module; not all need a switch"
)]
pub fn start_switch(dir: &TempDir) -> (Proc, String) {
    let socket = dir.path("switch.sock");
    let switch = Proc::spawn(
        dir,
        "switch",
        &["switch", "--socket", socket.to_str().expect("utf-8 path")],
    );
    wait_until(
        Duration::from_secs(10),
        || format!("the switch never bound its socket\n{}", switch.describe()),
        || socket.exists(),
    );
    (switch, format!("unix:{}", socket.display()))
}
