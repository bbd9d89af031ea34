//! `UdpSocket`, shaped like `std::net`.

use std::io;
use std::net::{Ipv4Addr, SocketAddr, ToSocketAddrs};
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

    /// Joins `group` on the interface with address `interface` (0.0.0.0 = the default), for
    /// datagrams from any source (`IP_ADD_MEMBERSHIP`). The socket then receives what is sent to
    /// the group at its port; the stack reports the membership with IGMP.
    pub fn join_multicast_v4(&self, group: &Ipv4Addr, interface: &Ipv4Addr) -> io::Result<()> {
        let m = ws::IP_MREQ::new(*group, *interface);
        self.set_bytes(ws::IP_ADD_MEMBERSHIP, &m.as_bytes())
    }

    /// Leaves `group` (`IP_DROP_MEMBERSHIP`); the stack sends a leave if no other local socket
    /// is a member.
    pub fn leave_multicast_v4(&self, group: &Ipv4Addr, interface: &Ipv4Addr) -> io::Result<()> {
        let m = ws::IP_MREQ::new(*group, *interface);
        self.set_bytes(ws::IP_DROP_MEMBERSHIP, &m.as_bytes())
    }

    /// Receives `group` from `source` (`IP_ADD_SOURCE_MEMBERSHIP`, a source-specific join:
    /// IGMPv3 INCLUDE). Repeat it to add sources.
    pub fn join_source_multicast_v4(
        &self,
        group: &Ipv4Addr,
        source: &Ipv4Addr,
        interface: &Ipv4Addr,
    ) -> io::Result<()> {
        let m = ws::IP_MREQ_SOURCE::new(*group, *source, *interface);
        self.set_bytes(ws::IP_ADD_SOURCE_MEMBERSHIP, &m.as_bytes())
    }

    /// Stops receiving `group` from `source` (`IP_DROP_SOURCE_MEMBERSHIP`); dropping the last
    /// source leaves the group.
    pub fn leave_source_multicast_v4(
        &self,
        group: &Ipv4Addr,
        source: &Ipv4Addr,
        interface: &Ipv4Addr,
    ) -> io::Result<()> {
        let m = ws::IP_MREQ_SOURCE::new(*group, *source, *interface);
        self.set_bytes(ws::IP_DROP_SOURCE_MEMBERSHIP, &m.as_bytes())
    }

    /// Joins `group` (any source, default interface) for as long as the returned guard lives.
    ///
    /// ```
    /// # use ws2_stack::{net::UdpSocket, Stack, StackConfig};
    /// # let stack = Stack::new(StackConfig::new("10.0.0.1/24".parse()?), ws2_tap::VirtualSwitch::new(1).port())?;
    /// let socket = UdpSocket::bind(&stack, "0.0.0.0:5004")?;
    /// let group = "239.1.2.3".parse()?;
    /// {
    ///     let _member = socket.membership(group)?;
    ///     assert_eq!(stack.multicast_groups(), vec![group]);
    /// }
    /// assert!(stack.multicast_groups().is_empty());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn membership(&self, group: Ipv4Addr) -> io::Result<MulticastMembership<'_>> {
        self.join_multicast_v4(&group, &Ipv4Addr::UNSPECIFIED)?;
        Ok(MulticastMembership {
            socket: self,
            group,
        })
    }

    /// Sets the TTL of multicast datagrams (`IP_MULTICAST_TTL`; 0 = this host only, default 1).
    pub fn set_multicast_ttl_v4(&self, ttl: u32) -> io::Result<()> {
        let ttl = i32::try_from(ttl).unwrap_or(i32::MAX);
        self.h.set_int(ws::IPPROTO_IP, ws::IP_MULTICAST_TTL, ttl)
    }

    /// The TTL of multicast datagrams (`IP_MULTICAST_TTL`).
    pub fn multicast_ttl_v4(&self) -> io::Result<u32> {
        Ok(self.h.get_int(ws::IPPROTO_IP, ws::IP_MULTICAST_TTL)? as u32)
    }

    /// Sets whether this socket receives its own multicast datagrams (`IP_MULTICAST_LOOP`,
    /// default on); other member sockets of this host receive them either way.
    pub fn set_multicast_loop_v4(&self, on: bool) -> io::Result<()> {
        self.h
            .set_int(ws::IPPROTO_IP, ws::IP_MULTICAST_LOOP, i32::from(on))
    }

    /// Whether this socket receives its own multicast datagrams (`IP_MULTICAST_LOOP`).
    pub fn multicast_loop_v4(&self) -> io::Result<bool> {
        Ok(self.h.get_int(ws::IPPROTO_IP, ws::IP_MULTICAST_LOOP)? != 0)
    }

    fn set_bytes(&self, opt: i32, v: &[u8]) -> io::Result<()> {
        Ok(self
            .h
            .ws
            .setsockopt(self.h.s, ws::IPPROTO_IP, opt, Some(v), v.len() as i32)?)
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

/// A multicast group membership of a [`UdpSocket`] ([`UdpSocket::membership`]); dropping it
/// leaves the group.
#[derive(Debug)]
#[must_use = "dropping the guard leaves the group at once"]
pub struct MulticastMembership<'a> {
    socket: &'a UdpSocket,
    group: Ipv4Addr,
}

impl MulticastMembership<'_> {
    /// The group.
    pub fn group(&self) -> Ipv4Addr {
        self.group
    }
}

impl Drop for MulticastMembership<'_> {
    fn drop(&mut self) {
        let _ = self
            .socket
            .leave_multicast_v4(&self.group, &Ipv4Addr::UNSPECIFIED);
    }
}
