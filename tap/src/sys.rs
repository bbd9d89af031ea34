//! Every OS call the links make, wrapped as safe functions over owned or borrowed descriptors.
//!
//! This is the only module of the crate allowed `unsafe`. Each libc call goes through
//! [`syscall!`], which turns the C convention (`-1` and `errno`) into an [`io::Error`]; each call
//! site says in a `// SAFETY:` line why its pointers and lengths are valid. Descriptors are
//! returned as [`OwnedFd`] (close-on-exec, closed on drop) and taken as [`BorrowedFd`], so no
//! function here can touch a descriptor it was not lent.

use std::ffi::c_void;
use std::io;
use std::mem;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::time::Duration;

/// Calls `libc::$fn(args…)` and maps a `-1` result to [`io::Error::last_os_error`].
///
/// The `unsafe` block is inside the macro; every invocation carries the `// SAFETY:` comment that
/// justifies its arguments.
macro_rules! syscall {
    ($fn:ident ( $($arg:expr),* $(,)? )) => {{
        // SAFETY: see the comment at the invocation; libc's function has the C signature.
        let res = unsafe { libc::$fn($($arg),*) };
        if res == -1 {
            Err(io::Error::last_os_error())
        } else {
            Ok(res)
        }
    }};
}

/// Takes ownership of a descriptor a syscall just returned.
///
/// # Safety
/// `fd` must be a descriptor that is open and owned by nobody else (fresh from `socket`,
/// `eventfd`, …).
unsafe fn owned(fd: libc::c_int) -> OwnedFd {
    // SAFETY: guaranteed by the caller.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

/// An interface name as the kernel wants it: at most `IFNAMSIZ - 1` bytes, NUL-terminated.
fn ifname(name: &str) -> io::Result<[libc::c_char; libc::IFNAMSIZ]> {
    if name.len() >= libc::IFNAMSIZ || name.bytes().any(|b| b == 0 || b == b'/') {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("bad interface name {name:?}: at most 15 bytes, no NUL or '/'"),
        ));
    }
    let mut out = [0 as libc::c_char; libc::IFNAMSIZ];
    for (o, b) in out.iter_mut().zip(name.bytes()) {
        *o = b as libc::c_char;
    }
    Ok(out)
}

/// An all-zero `ifreq` with `name` filled in.
fn ifreq(name: &str) -> io::Result<libc::ifreq> {
    // SAFETY: `ifreq` is plain old data (byte arrays, integers, a raw pointer in a union); the
    // all-zero pattern is a valid value of every field.
    let mut req: libc::ifreq = unsafe { mem::zeroed() };
    req.ifr_name = ifname(name)?;
    Ok(req)
}

/// `TUNSETIFF` with `IFF_TAP | IFF_NO_PI` on an open `/dev/net/tun` descriptor: attaches it to
/// the TAP interface `name` (created if absent; an empty name lets the kernel pick `tapN`).
/// Returns the interface's name.
pub(crate) fn tun_set_tap(fd: BorrowedFd<'_>, name: &str) -> io::Result<String> {
    let mut req = ifreq(name)?;
    req.ifr_ifru.ifru_flags = (libc::IFF_TAP | libc::IFF_NO_PI) as libc::c_short;
    // SAFETY: `req` is a live, initialised `ifreq`, which is what TUNSETIFF reads and writes.
    syscall!(ioctl(
        fd.as_raw_fd(),
        libc::TUNSETIFF as _,
        &mut req as *mut libc::ifreq
    ))?;
    let name = req
        .ifr_name
        .iter()
        .take_while(|&&c| c != 0)
        .map(|&c| c as u8)
        .collect();
    String::from_utf8(name).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

/// The MTU of interface `name` (`SIOCGIFMTU`), asked through any socket `sock` of the interface's
/// network namespace.
pub(crate) fn if_mtu(sock: BorrowedFd<'_>, name: &str) -> io::Result<usize> {
    let mut req = ifreq(name)?;
    // SAFETY: `req` is a live `ifreq`; SIOCGIFMTU reads the name and writes `ifru_mtu`.
    syscall!(ioctl(
        sock.as_raw_fd(),
        libc::SIOCGIFMTU as _,
        &mut req as *mut libc::ifreq
    ))?;
    // SAFETY: the kernel just wrote the `ifru_mtu` member, and every bit pattern is a valid c_int.
    let mtu = unsafe { req.ifr_ifru.ifru_mtu };
    usize::try_from(mtu).map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "negative MTU"))
}

/// Whether interface `name` is up and has carrier (`SIOCGIFFLAGS`: `IFF_UP` and
/// `IFF_RUNNING`), asked through a socket `sock` of the interface's network namespace.
pub(crate) fn if_running(sock: BorrowedFd<'_>, name: &str) -> io::Result<bool> {
    let mut req = ifreq(name)?;
    // SAFETY: `req` is a live `ifreq`; SIOCGIFFLAGS reads the name and writes `ifru_flags`.
    syscall!(ioctl(
        sock.as_raw_fd(),
        libc::SIOCGIFFLAGS as _,
        &mut req as *mut libc::ifreq
    ))?;
    // SAFETY: the kernel just wrote the `ifru_flags` member; every bit pattern is a valid short.
    let flags = i32::from(unsafe { req.ifr_ifru.ifru_flags });
    let wanted = libc::IFF_UP | libc::IFF_RUNNING;
    Ok(flags & wanted == wanted)
}

/// An `AF_INET` datagram socket, used only as a handle for interface ioctls.
pub(crate) fn inet_dgram_socket() -> io::Result<OwnedFd> {
    // SAFETY: no pointers.
    let fd = syscall!(socket(
        libc::AF_INET,
        libc::SOCK_DGRAM | libc::SOCK_CLOEXEC,
        0
    ))?;
    // SAFETY: a fresh descriptor from socket().
    Ok(unsafe { owned(fd) })
}

/// Reads one datagram-like record (a TAP frame) into `buf`, letting anything beyond `buf` spill
/// into `overflow`. Returns the record's full length (up to `buf.len() + overflow.len()`), so a
/// result above `buf.len()` means "did not fit".
pub(crate) fn read_split(
    fd: BorrowedFd<'_>,
    buf: &mut [u8],
    overflow: &mut [u8],
) -> io::Result<usize> {
    let iov = [
        libc::iovec {
            iov_base: buf.as_mut_ptr().cast::<c_void>(),
            iov_len: buf.len(),
        },
        libc::iovec {
            iov_base: overflow.as_mut_ptr().cast::<c_void>(),
            iov_len: overflow.len(),
        },
    ];
    // SAFETY: both iovecs describe live, writable, exclusively borrowed slices of the stated
    // lengths, and `iov` outlives the call.
    syscall!(readv(fd.as_raw_fd(), iov.as_ptr(), 2)).map(|n| n as usize)
}

/// `write(2)`.
pub(crate) fn write(fd: BorrowedFd<'_>, buf: &[u8]) -> io::Result<usize> {
    // SAFETY: `buf` is live and readable for `buf.len()` bytes.
    syscall!(write(
        fd.as_raw_fd(),
        buf.as_ptr().cast::<c_void>(),
        buf.len()
    ))
    .map(|n| n as usize)
}

/// `send(2)` with no flags on a connected or bound socket.
pub(crate) fn send(fd: BorrowedFd<'_>, buf: &[u8]) -> io::Result<usize> {
    // SAFETY: `buf` is live and readable for `buf.len()` bytes.
    syscall!(send(
        fd.as_raw_fd(),
        buf.as_ptr().cast::<c_void>(),
        buf.len(),
        libc::MSG_NOSIGNAL
    ))
    .map(|n| n as usize)
}

/// `recv(2)` with `MSG_TRUNC`: returns the datagram's real length even when it was longer than
/// `buf` (and was truncated).
pub(crate) fn recv_trunc(fd: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<usize> {
    // SAFETY: `buf` is live and writable for `buf.len()` bytes.
    syscall!(recv(
        fd.as_raw_fd(),
        buf.as_mut_ptr().cast::<c_void>(),
        buf.len(),
        libc::MSG_TRUNC
    ))
    .map(|n| n as usize)
}

/// The index of interface `name` in the calling thread's network namespace.
fn if_index(name: &str) -> io::Result<libc::c_int> {
    let name = ifname(name)?;
    // SAFETY: `name` is a NUL-terminated C string (ifname leaves at least one trailing NUL).
    let index = unsafe { libc::if_nametoindex(name.as_ptr()) };
    if index == 0 {
        return Err(io::Error::last_os_error());
    }
    libc::c_int::try_from(index)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "interface index out of range"))
}

/// A non-blocking `AF_PACKET`/`SOCK_RAW` socket bound to interface `name` for every protocol
/// (`ETH_P_ALL`), with the interface in promiscuous mode for as long as the socket lives.
///
/// The socket is created with protocol 0, which receives nothing, and only `bind` turns on
/// `ETH_P_ALL` for the one interface: so no frame of another interface is ever queued on it.
pub(crate) fn packet_socket(name: &str) -> io::Result<OwnedFd> {
    let index = if_index(name)?;
    let flags = libc::SOCK_RAW | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC;
    // SAFETY: no pointers.
    let fd = syscall!(socket(libc::AF_PACKET, flags, 0))?;
    // SAFETY: a fresh descriptor from socket().
    let fd = unsafe { owned(fd) };
    let addr = libc::sockaddr_ll {
        sll_family: libc::AF_PACKET as libc::c_ushort,
        sll_protocol: (libc::ETH_P_ALL as u16).to_be(),
        sll_ifindex: index,
        sll_hatype: 0,
        sll_pkttype: 0,
        sll_halen: 0,
        sll_addr: [0; 8],
    };
    // SAFETY: `addr` is a live sockaddr_ll and the length passed is its size.
    syscall!(bind(
        fd.as_raw_fd(),
        (&addr as *const libc::sockaddr_ll).cast::<libc::sockaddr>(),
        mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
    ))?;
    let mreq = libc::packet_mreq {
        mr_ifindex: index,
        mr_type: libc::PACKET_MR_PROMISC as libc::c_ushort,
        mr_alen: 0,
        mr_address: [0; 8],
    };
    // SAFETY: `mreq` is a live packet_mreq and the length passed is its size.
    syscall!(setsockopt(
        fd.as_raw_fd(),
        libc::SOL_PACKET,
        libc::PACKET_ADD_MEMBERSHIP,
        (&mreq as *const libc::packet_mreq).cast::<c_void>(),
        mem::size_of::<libc::packet_mreq>() as libc::socklen_t,
    ))?;
    Ok(fd)
}

/// `recvfrom(2)` with `MSG_TRUNC` on a packet socket: the frame's real length and its
/// `sll_pkttype` (`PACKET_HOST`, `PACKET_OUTGOING`, …).
pub(crate) fn recv_packet(fd: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<(usize, u8)> {
    let mut addr = libc::sockaddr_ll {
        sll_family: 0,
        sll_protocol: 0,
        sll_ifindex: 0,
        sll_hatype: 0,
        sll_pkttype: 0,
        sll_halen: 0,
        sll_addr: [0; 8],
    };
    let mut len = mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t;
    // SAFETY: `buf` is live and writable for `buf.len()` bytes; `addr` is a live sockaddr_ll
    // whose size is in `len`, which the kernel may lower.
    let n = syscall!(recvfrom(
        fd.as_raw_fd(),
        buf.as_mut_ptr().cast::<c_void>(),
        buf.len(),
        libc::MSG_TRUNC,
        (&mut addr as *mut libc::sockaddr_ll).cast::<libc::sockaddr>(),
        &mut len,
    ))?;
    Ok((n as usize, addr.sll_pkttype))
}

/// A Unix datagram socket bound by the kernel to a fresh abstract address (Linux "autobind": a
/// `bind` whose address is only the family), so a peer it sends to can answer.
pub(crate) fn unix_dgram_autobind() -> io::Result<OwnedFd> {
    let flags = libc::SOCK_DGRAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC;
    // SAFETY: no pointers.
    let fd = syscall!(socket(libc::AF_UNIX, flags, 0))?;
    // SAFETY: a fresh descriptor from socket().
    let fd = unsafe { owned(fd) };
    let family = libc::AF_UNIX as libc::sa_family_t;
    // SAFETY: the kernel reads exactly `size_of::<sa_family_t>()` bytes from `&family`, which is
    // live; that length is what asks for autobind.
    syscall!(bind(
        fd.as_raw_fd(),
        (&family as *const libc::sa_family_t).cast::<libc::sockaddr>(),
        mem::size_of::<libc::sa_family_t>() as libc::socklen_t,
    ))?;
    Ok(fd)
}

/// A non-blocking, close-on-exec eventfd with counter 0.
pub(crate) fn eventfd() -> io::Result<OwnedFd> {
    // SAFETY: no pointers.
    let fd = syscall!(eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC))?;
    // SAFETY: a fresh descriptor from eventfd().
    Ok(unsafe { owned(fd) })
}

/// Adds one to an eventfd's counter, making it readable. A counter already at its maximum is
/// readable anyway, so `EAGAIN` is not an error here.
pub(crate) fn eventfd_signal(fd: BorrowedFd<'_>) {
    let _ = write(fd, &1u64.to_ne_bytes());
}

/// Resets an eventfd's counter to 0 (it is then not readable until signalled again).
pub(crate) fn eventfd_drain(fd: BorrowedFd<'_>) {
    let mut buf = [0u8; 8];
    // SAFETY: `buf` is live and writable for 8 bytes. EAGAIN (already 0) is the expected error.
    let _ = syscall!(read(
        fd.as_raw_fd(),
        buf.as_mut_ptr().cast::<c_void>(),
        buf.len()
    ));
}

/// Waits up to `timeout` for `fd` to become readable. `EINTR` counts as "not yet".
pub(crate) fn poll_readable(fd: BorrowedFd<'_>, timeout: Duration) -> io::Result<bool> {
    let mut pfd = libc::pollfd {
        fd: fd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    let ms = libc::c_int::try_from(timeout.as_millis()).unwrap_or(libc::c_int::MAX);
    // SAFETY: `pfd` is one live pollfd and the count passed is 1.
    match syscall!(poll(&mut pfd, 1, ms)) {
        Ok(n) => Ok(n > 0 && pfd.revents & (libc::POLLIN | libc::POLLERR | libc::POLLHUP) != 0),
        Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(false),
        Err(e) => Err(e),
    }
}

/// Moves the calling thread into the network namespace `ns` refers to (`setns(CLONE_NEWNET)`).
pub(crate) fn setns_net(ns: BorrowedFd<'_>) -> io::Result<()> {
    // SAFETY: no pointers; `ns` is an open descriptor for the call's duration.
    syscall!(setns(ns.as_raw_fd(), libc::CLONE_NEWNET)).map(drop)
}
