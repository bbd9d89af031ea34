//! Running a constructor inside a named network namespace.
//!
//! Linux network namespaces belong to *threads*: `setns(fd, CLONE_NEWNET)` moves only the calling
//! thread. A TAP or packet socket belongs to the namespace of the thread that created it, and its
//! descriptor then works from any thread. [`in_namespace`] uses that: it runs a closure on a
//! short-lived thread that has joined the namespace, and hands back what the closure made. The
//! caller's own thread never changes namespace.

use std::fs::File;
use std::io;
use std::os::fd::AsFd;
use std::path::Path;

use crate::sys;

/// Where `ip netns add NAME` pins a namespace.
const NETNS_DIR: &str = "/var/run/netns";

/// Runs `f` on a new thread inside the network namespace `ns_name` (as made by
/// `ip netns add ns_name`, pinned at `/var/run/netns/<ns_name>`) and returns its result.
///
/// Descriptors `f` creates (a [`Tap`](crate::Tap), a [`RawSocket`](crate::RawSocket)) stay in
/// that namespace and may be used from any thread afterwards. Needs `CAP_SYS_ADMIN`.
///
/// # Errors
/// `InvalidInput` if `ns_name` is empty or contains `/`; the error of opening the namespace file
/// or of `setns`; `f`'s error; `Other` if `f` panicked.
pub fn in_namespace<T, F>(ns_name: &str, f: F) -> io::Result<T>
where
    T: Send,
    F: FnOnce() -> io::Result<T> + Send,
{
    if ns_name.is_empty() || ns_name.contains('/') || ns_name == "." || ns_name == ".." {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("bad network namespace name {ns_name:?}"),
        ));
    }
    let ns = File::open(Path::new(NETNS_DIR).join(ns_name))?;
    std::thread::scope(|scope| {
        let worker = std::thread::Builder::new()
            .name("ws2-netns".into())
            .spawn_scoped(scope, move || {
                sys::setns_net(ns.as_fd())?;
                f()
            })?;
        worker
            .join()
            .unwrap_or_else(|_| Err(io::Error::other("namespace thread panicked")))
    })
}
