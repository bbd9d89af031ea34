//! The network namespaces a bench makes, removed whatever way the bench ends (issue 13):
//! - on every normal return or error, by the [`Namespace`] guard's `Drop`;
//! - on SIGINT or SIGTERM, by [`remove_on_interrupt`]'s watcher, which deletes every namespace
//!   still registered, says so in one line and ends the process with status 130.
//!
//! Deleting a namespace deletes what lives in it: the veth pair and TAPs the benches make
//! exist only inside their namespaces (never in the root one), and their addresses with them.
//! Only namespaces made through [`Namespace::add`] are ever deleted.

use std::process::Command;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::thread;
use std::time::Duration;

use crate::interrupt::Interrupts;

/// Names of the namespaces this process made and has not deleted yet. Held across `ip netns
/// add` and across the watcher's deletion, so a namespace is never made after the watcher
/// looked (it exits holding the lock).
static MADE: Mutex<Vec<String>> = Mutex::new(Vec::new());

fn made() -> MutexGuard<'static, Vec<String>> {
    MADE.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The exit status of a bench ended by SIGINT or SIGTERM (128 + SIGINT, as shells report).
pub(crate) const INTERRUPTED_STATUS: i32 = 130;

/// A network namespace made by `ip netns add`, deleted on drop.
#[derive(Debug)]
pub(crate) struct Namespace {
    name: String,
}

impl Namespace {
    /// `ip netns add NAME`, registered for deletion on drop or interruption.
    pub(crate) fn add(name: String) -> Result<Namespace, String> {
        let mut made = made();
        let out = Command::new("ip")
            .args(["netns", "add", &name])
            .output()
            .map_err(|e| format!("ip: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "ip netns add {name}: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        made.push(name.clone());
        Ok(Namespace { name })
    }

    /// The namespace's name.
    pub(crate) fn name(&self) -> &str {
        &self.name
    }
}

impl Drop for Namespace {
    fn drop(&mut self) {
        let mut made = made();
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
        made.retain(|n| *n != self.name);
    }
}

/// Watches `interrupts` from a thread of its own: on the first SIGINT or SIGTERM it deletes
/// every namespace still registered, prints one line and exits with [`INTERRUPTED_STATUS`]
/// (whatever the bench's threads were doing; nothing of a bench is worth keeping half-done).
pub(crate) fn remove_on_interrupt(interrupts: Interrupts) {
    thread::spawn(move || loop {
        if interrupts.first() {
            let mut made = made();
            for name in made.iter() {
                let _ = Command::new("ip").args(["netns", "del", name]).status();
            }
            let removed = if made.is_empty() {
                "no network namespace to remove".to_string()
            } else {
                format!("removed network namespaces {}", made.join(", "))
            };
            made.clear();
            eprintln!("ws2 bench: interrupted (SIGINT or SIGTERM); {removed}");
            std::process::exit(INTERRUPTED_STATUS);
        }
        thread::sleep(Duration::from_millis(20));
    });
}
