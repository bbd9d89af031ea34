//! The anchor: a plain smoltcp interface driven the way smoltcp's own examples drive one — a
//! loop of `Interface::poll`, the application's socket calls, and a wait on the link's
//! descriptor until `poll_delay` — on the same `Link` the stack would use.

use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use smoltcp::iface::{Config, Interface, SocketHandle, SocketSet};
use smoltcp::phy::{self, DeviceCapabilities, Medium};
use smoltcp::socket::tcp;
use smoltcp::wire::{EthernetAddress, HardwareAddress, IpCidr};
use ws2_stack::{Ipv4Cidr, StackConfig};
use ws2_tap::Link;

struct LinkDevice {
    link: Box<dyn Link>,
    mtu: usize,
}

struct Rx(Vec<u8>);
struct Tx<'a>(&'a mut dyn Link);

impl phy::Device for LinkDevice {
    type RxToken<'a> = Rx;
    type TxToken<'a> = Tx<'a>;

    fn receive(&mut self, _t: smoltcp::time::Instant) -> Option<(Rx, Tx<'_>)> {
        let mut buf = vec![0u8; self.mtu + 32];
        match self.link.recv(&mut buf, Instant::now()) {
            Ok(Some(n)) => {
                buf.truncate(n);
                Some((Rx(buf), Tx(&mut *self.link)))
            }
            _ => None,
        }
    }

    fn transmit(&mut self, _t: smoltcp::time::Instant) -> Option<Tx<'_>> {
        Some(Tx(&mut *self.link))
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.medium = Medium::Ethernet;
        caps.max_transmission_unit = self.mtu + 14;
        caps
    }
}

impl phy::RxToken for Rx {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        f(&self.0)
    }
}

impl phy::TxToken for Tx<'_> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let mut buf = vec![0u8; len];
        let r = f(&mut buf);
        let _ = self.0.send(&buf, Instant::now());
        r
    }
}

/// One smoltcp interface on a link, with a single TCP socket.
pub(crate) struct Node {
    iface: Interface,
    sockets: SocketSet<'static>,
    dev: LinkDevice,
    epoch: Instant,
    pub(crate) tcp: SocketHandle,
}

impl Node {
    /// An interface with `addr`, the MAC the stack would derive, and one TCP socket with
    /// `buffer`-byte buffers each way and the stack's TCP options (no delayed ACK).
    pub(crate) fn new(link: Box<dyn Link>, addr: Ipv4Cidr, buffer: usize) -> Node {
        let mac = StackConfig::new(addr).hardware_addr();
        let mut dev = LinkDevice { link, mtu: 1500 };
        let mut iface = Interface::new(
            Config::new(HardwareAddress::Ethernet(EthernetAddress(mac))),
            &mut dev,
            smoltcp::time::Instant::ZERO,
        );
        iface.update_ip_addrs(|a| {
            let _ = a.push(IpCidr::new(addr.addr.into(), addr.prefix));
        });
        let mut sockets = SocketSet::new(Vec::new());
        let mut socket = tcp::Socket::new(
            tcp::SocketBuffer::new(vec![0; buffer]),
            tcp::SocketBuffer::new(vec![0; buffer]),
        );
        // The options the stack sets on its own sockets, so the comparison is the same TCP.
        socket.set_ack_delay(None);
        let tcp = sockets.add(socket);
        Node {
            iface,
            sockets,
            dev,
            epoch: Instant::now(),
            tcp,
        }
    }

    fn now(&self) -> smoltcp::time::Instant {
        smoltcp::time::Instant::from_micros(self.epoch.elapsed().as_micros() as i64)
    }

    pub(crate) fn socket(&mut self) -> &mut tcp::Socket<'static> {
        self.sockets.get_mut::<tcp::Socket>(self.tcp)
    }

    pub(crate) fn connect(&mut self, remote: std::net::SocketAddrV4, local_port: u16) {
        let cx = self.iface.context();
        let s = self.sockets.get_mut::<tcp::Socket>(self.tcp);
        let _ = s.connect(cx, (*remote.ip(), remote.port()), local_port);
    }

    /// One turn of the loop: poll, then wait for the link or smoltcp's next deadline (at most
    /// `max`) when `idle`.
    pub(crate) fn poll(&mut self, idle: bool, max: Duration) {
        let t = self.now();
        self.iface.poll(t, &mut self.dev, &mut self.sockets);
        if !idle {
            return;
        }
        let t = self.now();
        let delay = self
            .iface
            .poll_delay(t, &self.sockets)
            .map_or(max, |d| Duration::from_micros(d.total_micros()).min(max));
        if delay.is_zero() {
            return;
        }
        let mut pfd = libc::pollfd {
            fd: self.dev.link.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let ts = libc::timespec {
            tv_sec: delay.as_secs() as libc::time_t,
            tv_nsec: delay.subsec_nanos() as libc::c_long,
        };
        // SAFETY: one live pollfd, a live timespec, no signal mask.
        #[allow(unsafe_code)]
        unsafe {
            libc::ppoll(&mut pfd, 1, &ts, std::ptr::null());
        }
    }
}
