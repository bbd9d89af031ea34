//! The Rust face: `std::net`-shaped sockets on a [`Stack`](crate::Stack), built on the Winsock
//! face (each socket is a Winsock `SOCKET` underneath, as `std::net` wraps the OS socket).
//!
//! Every method takes `&self` and returns `io::Result`; errors keep their Windows Sockets code,
//! recoverable with [`WsaError::from_io`](crate::WsaError::from_io).

mod tcp;
mod udp;

use std::io;
use std::net::{SocketAddr, SocketAddrV4, ToSocketAddrs};
use std::time::Duration;

pub use tcp::{Incoming, TcpListener, TcpStream};
pub use udp::{MulticastMembership, UdpSocket};

use crate::winsock::{self as ws, Winsock, SOCKET};
use crate::Stack;

/// The first IPv4 address `addr` resolves to.
fn first_v4(addr: impl ToSocketAddrs) -> io::Result<SocketAddrV4> {
    addr.to_socket_addrs()?
        .find_map(|a| match a {
            SocketAddr::V4(v4) => Some(v4),
            SocketAddr::V6(_) => None,
        })
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no IPv4 address to use"))
}

/// One Winsock socket owned by a Rust-face object; closed (and its session cleaned up) on drop.
#[derive(Debug)]
struct Handle {
    ws: Winsock,
    s: SOCKET,
}

impl Handle {
    fn new(stack: &Stack, r#type: i32) -> io::Result<Handle> {
        let ws = Winsock::new(stack.clone());
        let mut data = ws::WSADATA::default();
        let rc = ws.WSAStartup(ws::MAKEWORD(2, 2), Some(&mut data));
        if rc != 0 {
            return Err(crate::WsaError(rc).into());
        }
        let s = ws.socket(ws::AF_INET, r#type, 0)?;
        Ok(Handle { ws, s })
    }

    fn adopt(&self, s: SOCKET) -> Handle {
        // The session is shared: take a reference for the new handle's drop.
        let mut data = ws::WSADATA::default();
        self.ws.WSAStartup(ws::MAKEWORD(2, 2), Some(&mut data));
        Handle {
            ws: self.ws.clone(),
            s,
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        let mut name = ws::SOCKADDR_IN::default();
        let mut len = ws::SOCKADDR_IN_LEN;
        self.ws
            .getsockname(self.s, Some(&mut name), Some(&mut len))?;
        Ok(SocketAddr::V4(name.to_socket_addr()))
    }

    fn peer_addr(&self) -> io::Result<SocketAddr> {
        let mut name = ws::SOCKADDR_IN::default();
        let mut len = ws::SOCKADDR_IN_LEN;
        self.ws
            .getpeername(self.s, Some(&mut name), Some(&mut len))?;
        Ok(SocketAddr::V4(name.to_socket_addr()))
    }

    fn bind(&self, addr: SocketAddrV4) -> io::Result<()> {
        Ok(self.ws.bind(
            self.s,
            Some(&ws::SOCKADDR_IN::new(addr)),
            ws::SOCKADDR_IN_LEN,
        )?)
    }

    fn get_int(&self, level: i32, opt: i32) -> io::Result<i32> {
        let mut buf = [0u8; 4];
        let mut len = 4;
        self.ws
            .getsockopt(self.s, level, opt, Some(&mut buf), &mut len)?;
        Ok(i32::from_ne_bytes(buf))
    }

    fn set_int(&self, level: i32, opt: i32, v: i32) -> io::Result<()> {
        Ok(self
            .ws
            .setsockopt(self.s, level, opt, Some(&v.to_ne_bytes()), 4)?)
    }

    fn set_timeout(&self, opt: i32, dur: Option<Duration>) -> io::Result<()> {
        let ms = match dur {
            Some(d) if d.is_zero() => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "cannot set a 0 duration timeout",
                ));
            }
            Some(d) => d.as_millis().clamp(1, i32::MAX as u128) as i32,
            None => 0,
        };
        self.set_int(ws::SOL_SOCKET, opt, ms)
    }

    fn timeout(&self, opt: i32) -> io::Result<Option<Duration>> {
        let ms = self.get_int(ws::SOL_SOCKET, opt)?;
        Ok((ms > 0).then(|| Duration::from_millis(ms as u64)))
    }

    fn set_nonblocking(&self, on: bool) -> io::Result<()> {
        let mut arg = u32::from(on);
        Ok(self.ws.ioctlsocket(self.s, ws::FIONBIO, Some(&mut arg))?)
    }

    fn take_error(&self) -> io::Result<Option<io::Error>> {
        let code = self.get_int(ws::SOL_SOCKET, ws::SO_ERROR)?;
        Ok((code != 0).then(|| crate::WsaError(code).into()))
    }

    fn cancel_handle(&self) -> CancelHandle {
        CancelHandle {
            ws: self.ws.clone(),
            s: self.s,
        }
    }
}

/// Cancels the blocking calls in progress on one socket, from any thread: made by
/// [`TcpStream::cancel_handle`], [`TcpListener::cancel_handle`] and
/// [`UdpSocket::cancel_handle`].
///
/// [`cancel`](CancelHandle::cancel) makes every call blocked on the socket *at that moment*
/// (`accept`, `read`, `recv_from`, …) return an error of kind
/// [`Interrupted`](io::ErrorKind::Interrupted) carrying `WSAEINTR`; the socket stays usable and
/// a call made afterwards blocks as usual. A blocked `write` that had already queued part of
/// its buffer returns that count instead, so the stream stays consistent. Built on
/// [`Winsock::interrupt_blocking_calls`].
///
/// A cancel reaches only calls already blocked, so a thread that is about to block may miss
/// it: repeat `cancel` until the call is back (as below), or pair it with a flag of your own.
/// `Read::read_exact`, `Write::write_all` and `io::copy` retry on `Interrupted`, so they keep
/// going after a cancel; loop over `read`/`write` instead to stop at one. The handle keeps the
/// stack running while it lives; once the socket is closed `cancel` fails.
///
/// # Examples
/// ```
/// use std::io::ErrorKind;
/// use std::thread;
/// use std::time::Duration;
/// use ws2_stack::net::TcpListener;
/// use ws2_stack::{Stack, StackConfig};
/// use ws2_tap::VirtualSwitch;
///
/// let switch = VirtualSwitch::new(3);
/// let stack = Stack::new(StackConfig::new("10.0.0.1/24".parse()?), switch.port())?;
/// let listener = TcpListener::bind(&stack, "10.0.0.1:7")?;
/// let cancel = listener.cancel_handle();
/// let accepted = thread::scope(|scope| -> std::io::Result<_> {
///     let acceptor = scope.spawn(|| listener.accept());
///     while !acceptor.is_finished() {
///         cancel.cancel()?;
///         thread::sleep(Duration::from_millis(10));
///     }
///     Ok(acceptor.join().expect("acceptor"))
/// })?;
/// assert_eq!(accepted.unwrap_err().kind(), ErrorKind::Interrupted);
/// // The listener still works.
/// listener.set_nonblocking(true)?;
/// assert_eq!(listener.accept().unwrap_err().kind(), ErrorKind::WouldBlock);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
pub struct CancelHandle {
    ws: Winsock,
    s: SOCKET,
}

impl CancelHandle {
    /// Makes the calls blocked on the socket now return [`io::ErrorKind::Interrupted`]
    /// (`WSAEINTR`); does nothing to later calls. Fails once the socket is closed (the Winsock
    /// error is kept: `WSAENOTSOCK`, or `WSANOTINITIALISED` when it was the session's last).
    pub fn cancel(&self) -> io::Result<()> {
        Ok(self.ws.interrupt_blocking_calls(self.s)?)
    }
}

impl Drop for Handle {
    fn drop(&mut self) {
        let _ = self.ws.closesocket(self.s);
        let _ = self.ws.WSACleanup();
    }
}
