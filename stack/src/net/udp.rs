//! `UdpSocket`, shaped like `std::net`.

use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::time::Duration;

use super::{first_v4, CancelHandle, Handle};
use crate::winsock as ws;
use crate::Stack;

/// A UDP socket on a [`Stack`].
///
/// # Examples
/// ```
/// use ws2_stack::net::UdpSocket;
/// use ws2_stack::{Stack, StackConfig};
/// use ws2_tap::VirtualSwitch;
///
/// let switch = VirtualSwitch::new(2);
/// let a = Stack::new(StackConfig::new("10.0.0.1/24".parse()?), switch.port())?;
/// let b = Stack::new(StackConfig::new("10.0.0.2/24".parse()?), switch.port())?;
/// let rx = UdpSocket::bind(&b, "10.0.0.2:9000")?;
/// let tx = UdpSocket::bind(&a, "0.0.0.0:0")?;
/// tx.send_to(b"ping", "10.0.0.2:9000")?;
/// let mut buf = [0u8; 16];
/// let (n, from) = rx.recv_from(&mut buf)?;
/// assert_eq!(&buf[..n], b"ping");
/// assert_eq!(from.ip().to_string(), "10.0.0.1");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct UdpSocket {
    h: Handle,
}

fn sockaddr(addr: impl ToSocketAddrs) -> io::Result<ws::SOCKADDR_IN> {
    Ok(ws::SOCKADDR_IN::new(first_v4(addr)?))
}

impl UdpSocket {
    /// A UDP socket bound to `addr` (`bind`; port 0 picks one).
    pub fn bind(stack: &Stack, addr: impl ToSocketAddrs) -> io::Result<UdpSocket> {
        let addr = first_v4(addr)?;
        let h = Handle::new(stack, ws::SOCK_DGRAM)?;
        h.bind(addr)?;
        Ok(UdpSocket { h })
    }

    /// Sends one datagram to `addr` (`sendto`).
    pub fn send_to(&self, buf: &[u8], addr: impl ToSocketAddrs) -> io::Result<usize> {
        let to = sockaddr(addr)?;
        Ok(self
            .h
            .ws
            .sendto(self.h.s, buf, 0, Some(&to), ws::SOCKADDR_IN_LEN)? as usize)
    }

    /// Receives one datagram (`recvfrom`). A datagram longer than `buf` fills it and the call
    /// fails with `WSAEMSGSIZE` (the rest is lost).
    pub fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        self.recv_from_flags(buf, 0)
    }

    /// Like `recv_from` without taking the datagram off the queue (`MSG_PEEK`).
    pub fn peek_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        self.recv_from_flags(buf, ws::MSG_PEEK)
    }

    fn recv_from_flags(&self, buf: &mut [u8], flags: i32) -> io::Result<(usize, SocketAddr)> {
        let mut from = ws::SOCKADDR_IN::default();
        let mut len = ws::SOCKADDR_IN_LEN;
        let n = self
            .h
            .ws
            .recvfrom(self.h.s, buf, flags, Some(&mut from), Some(&mut len))?;
        Ok((n as usize, SocketAddr::V4(from.to_socket_addr())))
    }

    /// Sets the default peer and filters arrivals to it (`connect`).
    pub fn connect(&self, addr: impl ToSocketAddrs) -> io::Result<()> {
        let to = sockaddr(addr)?;
        Ok(self
            .h
            .ws
            .connect(self.h.s, Some(&to), ws::SOCKADDR_IN_LEN)?)
    }

    /// Sends to the connected peer (`send`).
    pub fn send(&self, buf: &[u8]) -> io::Result<usize> {
        Ok(self.h.ws.send(self.h.s, buf, 0)? as usize)
    }

    /// Receives from the connected peer (`recv`).
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        Ok(self.h.ws.recv(self.h.s, buf, 0)? as usize)
    }

    /// The local address (`getsockname`).
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.h.local_addr()
    }

    /// The connected peer (`getpeername`).
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.h.peer_addr()
    }

    /// Sets the value of the `SO_BROADCAST` option.
    pub fn set_broadcast(&self, on: bool) -> io::Result<()> {
        self.h
            .set_int(ws::SOL_SOCKET, ws::SO_BROADCAST, i32::from(on))
    }

    /// Gets the value of the `SO_BROADCAST` option.
    pub fn broadcast(&self) -> io::Result<bool> {
        Ok(self.h.get_int(ws::SOL_SOCKET, ws::SO_BROADCAST)? != 0)
    }

    /// Sets the read timeout (`SO_RCVTIMEO`); zero is an error.
    pub fn set_read_timeout(&self, dur: Option<Duration>) -> io::Result<()> {
        self.h.set_timeout(ws::SO_RCVTIMEO, dur)
    }

    /// The read timeout (`SO_RCVTIMEO`).
    pub fn read_timeout(&self) -> io::Result<Option<Duration>> {
        self.h.timeout(ws::SO_RCVTIMEO)
    }

    /// Sets the write timeout (`SO_SNDTIMEO`); zero is an error.
    pub fn set_write_timeout(&self, dur: Option<Duration>) -> io::Result<()> {
        self.h.set_timeout(ws::SO_SNDTIMEO, dur)
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

    /// A handle that interrupts this socket's blocked receives and sends from another thread
    /// (they return [`io::ErrorKind::Interrupted`]; see [`CancelHandle`]).
    pub fn cancel_handle(&self) -> CancelHandle {
        self.h.cancel_handle()
    }
}
