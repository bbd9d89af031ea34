//! `TcpListener` and `TcpStream`, shaped like `std::net`.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, ToSocketAddrs};
use std::time::Duration;

use super::{first_v4, CancelHandle, Handle};
use crate::winsock as ws;
use crate::Stack;

/// A TCP stream between a local and a remote socket, on a [`Stack`].
///
/// # Examples
/// ```
/// use std::io::{Read, Write};
/// use ws2_stack::net::{TcpListener, TcpStream};
/// use ws2_stack::{Stack, StackConfig};
/// use ws2_tap::VirtualSwitch;
///
/// let switch = VirtualSwitch::new(1);
/// let a = Stack::new(StackConfig::new("10.0.0.1/24".parse()?), switch.port())?;
/// let b = Stack::new(StackConfig::new("10.0.0.2/24".parse()?), switch.port())?;
/// let listener = TcpListener::bind(&b, "10.0.0.2:7")?;
/// let mut client = TcpStream::connect(&a, "10.0.0.2:7")?;
/// let (mut server, _) = listener.accept()?;
/// client.write_all(b"hello")?;
/// let mut buf = [0u8; 5];
/// server.read_exact(&mut buf)?;
/// assert_eq!(&buf, b"hello");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct TcpStream {
    h: Handle,
}

impl TcpStream {
    /// Opens a TCP connection to `addr` from `stack` (Winsock `connect`).
    pub fn connect(stack: &Stack, addr: impl ToSocketAddrs) -> io::Result<TcpStream> {
        let addr = first_v4(addr)?;
        let h = Handle::new(stack, ws::SOCK_STREAM)?;
        h.ws.connect(h.s, Some(&ws::SOCKADDR_IN::new(addr)), ws::SOCKADDR_IN_LEN)?;
        Ok(TcpStream { h })
    }

    /// The remote address (`getpeername`).
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.h.peer_addr()
    }

    /// The local address (`getsockname`).
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.h.local_addr()
    }

    /// Shuts down the read, write or both halves (`shutdown` with `SD_RECEIVE`, `SD_SEND`,
    /// `SD_BOTH`).
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        let how = match how {
            Shutdown::Read => ws::SD_RECEIVE,
            Shutdown::Write => ws::SD_SEND,
            Shutdown::Both => ws::SD_BOTH,
        };
        Ok(self.h.ws.shutdown(self.h.s, how)?)
    }

    /// Reads without removing the data from the queue (`recv` with `MSG_PEEK`).
    pub fn peek(&self, buf: &mut [u8]) -> io::Result<usize> {
        Ok(self.h.ws.recv(self.h.s, buf, ws::MSG_PEEK)? as usize)
    }

    /// Sets the value of the `TCP_NODELAY` option.
    pub fn set_nodelay(&self, nodelay: bool) -> io::Result<()> {
        self.h
            .set_int(ws::IPPROTO_TCP, ws::TCP_NODELAY, i32::from(nodelay))
    }

    /// Gets the value of the `TCP_NODELAY` option.
    pub fn nodelay(&self) -> io::Result<bool> {
        Ok(self.h.get_int(ws::IPPROTO_TCP, ws::TCP_NODELAY)? != 0)
    }

    /// Sets the read timeout (`SO_RCVTIMEO`); `None` blocks indefinitely, zero is an error.
    pub fn set_read_timeout(&self, dur: Option<Duration>) -> io::Result<()> {
        self.h.set_timeout(ws::SO_RCVTIMEO, dur)
    }

    /// The read timeout (`SO_RCVTIMEO`).
    pub fn read_timeout(&self) -> io::Result<Option<Duration>> {
        self.h.timeout(ws::SO_RCVTIMEO)
    }

    /// Sets the write timeout (`SO_SNDTIMEO`); `None` blocks indefinitely, zero is an error.
    pub fn set_write_timeout(&self, dur: Option<Duration>) -> io::Result<()> {
        self.h.set_timeout(ws::SO_SNDTIMEO, dur)
    }

    /// The write timeout (`SO_SNDTIMEO`).
    pub fn write_timeout(&self) -> io::Result<Option<Duration>> {
        self.h.timeout(ws::SO_SNDTIMEO)
    }

    /// Sets `SO_LINGER`: `Some(d)` lingers up to `d` (whole seconds) on drop, `Some(0)` resets.
    pub fn set_linger(&self, linger: Option<Duration>) -> io::Result<()> {
        let l = linger.map_or(ws::LINGER::default(), |d| ws::LINGER {
            l_onoff: 1,
            l_linger: d.as_secs().min(u64::from(u16::MAX)) as u16,
        });
        let bytes = [l.l_onoff.to_ne_bytes(), l.l_linger.to_ne_bytes()].concat();
        Ok(self
            .h
            .ws
            .setsockopt(self.h.s, ws::SOL_SOCKET, ws::SO_LINGER, Some(&bytes), 4)?)
    }

    /// Moves the socket in or out of non-blocking mode (`ioctlsocket(FIONBIO)`).
    pub fn set_nonblocking(&self, nonblocking: bool) -> io::Result<()> {
        self.h.set_nonblocking(nonblocking)
    }

    /// Takes the pending `SO_ERROR`.
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.h.take_error()
    }

    /// The Winsock handle underneath, for calls the Rust face does not wrap.
    pub fn as_socket(&self) -> (&ws::Winsock, ws::SOCKET) {
        (&self.h.ws, self.h.s)
    }

    /// A handle that interrupts this stream's blocked `read`s and `write`s from another thread
    /// (they return [`io::ErrorKind::Interrupted`]; see [`CancelHandle`]).
    pub fn cancel_handle(&self) -> CancelHandle {
        self.h.cancel_handle()
    }
}

impl Read for &TcpStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        Ok(self.h.ws.recv(self.h.s, buf, 0)? as usize)
    }
}

impl Write for &TcpStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        Ok(self.h.ws.send(self.h.s, buf, 0)? as usize)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Read for TcpStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        (&*self).read(buf)
    }
}

impl Write for TcpStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        (&*self).write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A TCP socket server, listening for connections, on a [`Stack`].
#[derive(Debug)]
pub struct TcpListener {
    h: Handle,
}

impl TcpListener {
    /// Binds to `addr` and listens with the largest backlog (`bind`, `listen(SOMAXCONN)`).
    pub fn bind(stack: &Stack, addr: impl ToSocketAddrs) -> io::Result<TcpListener> {
        let addr = first_v4(addr)?;
        let h = Handle::new(stack, ws::SOCK_STREAM)?;
        h.bind(addr)?;
        h.ws.listen(h.s, ws::SOMAXCONN)?;
        Ok(TcpListener { h })
    }

    /// Accepts a new connection (`accept`).
    pub fn accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
        let mut name = ws::SOCKADDR_IN::default();
        let mut len = ws::SOCKADDR_IN_LEN;
        let s = self
            .h
            .ws
            .accept(self.h.s, Some(&mut name), Some(&mut len))?;
        Ok((
            TcpStream { h: self.h.adopt(s) },
            SocketAddr::V4(name.to_socket_addr()),
        ))
    }

    /// An iterator over accepted connections.
    pub fn incoming(&self) -> Incoming<'_> {
        Incoming { listener: self }
    }

    /// The local address (`getsockname`).
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.h.local_addr()
    }

    /// Moves the socket in or out of non-blocking mode (`ioctlsocket(FIONBIO)`).
    pub fn set_nonblocking(&self, nonblocking: bool) -> io::Result<()> {
        self.h.set_nonblocking(nonblocking)
    }

    /// Takes the pending `SO_ERROR`.
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.h.take_error()
    }

    /// A handle that interrupts a blocked `accept` from another thread (it returns
    /// [`io::ErrorKind::Interrupted`]; see [`CancelHandle`]).
    pub fn cancel_handle(&self) -> CancelHandle {
        self.h.cancel_handle()
    }
}

/// Iterator over connections accepted by a [`TcpListener`].
#[derive(Debug)]
pub struct Incoming<'a> {
    listener: &'a TcpListener,
}

impl Iterator for Incoming<'_> {
    type Item = io::Result<TcpStream>;

    fn next(&mut self) -> Option<io::Result<TcpStream>> {
        Some(self.listener.accept().map(|(s, _)| s))
    }
}
