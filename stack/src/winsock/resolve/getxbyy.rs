//! The Winsock 1.1 database functions, address conversions and the DNS transport
//! (CHECKLIST §1.17.1, §1.17.3 `WSAStringToAddress`/`WSAAddressToString`).

use std::cell::RefCell;
use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::{Duration, Instant};

use super::db::{self, HOSTENT, PROTOENT, SERVENT};
use super::dns::{self, DnsError};
use super::{quietly, Cancel, DnsConfig};
use crate::engine::SocketId;
use crate::error::WsaError;
use crate::winsock::catalog::WSAPROTOCOL_INFO;
use crate::winsock::types::*;
use crate::winsock::{record, Winsock};

thread_local! {
    static LAST_HOSTENT: RefCell<Option<HOSTENT>> = const { RefCell::new(None) };
    static LAST_SERVENT: RefCell<Option<SERVENT>> = const { RefCell::new(None) };
    static LAST_PROTOENT: RefCell<Option<PROTOENT>> = const { RefCell::new(None) };
    static LAST_NTOA: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// The calling thread's copy of its last `gethostbyname`/`gethostbyaddr` result (D-33): kept
/// until this thread's next host lookup; other threads never change it.
pub fn thread_hostent() -> Option<HOSTENT> {
    LAST_HOSTENT.with(|h| h.borrow().clone())
}

/// The calling thread's copy of its last `getservbyname`/`getservbyport` result (D-33).
pub fn thread_servent() -> Option<SERVENT> {
    LAST_SERVENT.with(|h| h.borrow().clone())
}

/// The calling thread's copy of its last `getprotobyname`/`getprotobynumber` result (D-33).
pub fn thread_protoent() -> Option<PROTOENT> {
    LAST_PROTOENT.with(|h| h.borrow().clone())
}

/// The calling thread's copy of its last `inet_ntoa` string (D-33).
pub fn thread_inet_ntoa() -> Option<String> {
    LAST_NTOA.with(|h| h.borrow().clone())
}

fn keep<T: Clone>(
    slot: &'static std::thread::LocalKey<RefCell<Option<T>>>,
    r: Result<T, WsaError>,
) -> Result<T, WsaError> {
    if let Ok(v) = &r {
        slot.with(|s| *s.borrow_mut() = Some(v.clone()));
    }
    record(r)
}

/// One part of an `inet_addr` string: decimal, `0x` hex or leading-0 octal [bg: BSD].
fn part(s: &str) -> Option<u32> {
    if s.is_empty() {
        return None;
    }
    let (digits, radix) = if let Some(h) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        (h, 16)
    } else if s.len() > 1 && s.starts_with('0') {
        (&s[1..], 8)
    } else {
        (s, 10)
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    u32::from_str_radix(digits, radix).ok()
}

/// The address of an `inet_addr` string in host order, `None` if it is not one.
fn parse_inet(cp: &str) -> Option<u32> {
    let parts: Vec<u32> = cp.split('.').map(part).collect::<Option<Vec<u32>>>()?;
    let byte = |v: u32| (v <= 0xFF).then_some(v);
    match parts[..] {
        [a] => Some(a),
        [a, b] if b <= 0xFF_FFFF => Some(byte(a)? << 24 | b),
        [a, b, c] if c <= 0xFFFF => Some(byte(a)? << 24 | byte(b)? << 16 | c),
        [a, b, c, d] => Some(byte(a)? << 24 | byte(b)? << 16 | byte(c)? << 8 | byte(d)?),
        _ => None,
    }
}

/// `inet_addr` (CHECKLIST §1.17.1): the address in network order (in-memory bytes a, b, c, d)
/// for the forms `a.b.c.d`, `a.b.c` (c: 16 bits), `a.b` (b: 24 bits) and `a` (32 bits); each
/// part decimal, octal (leading 0) or hex (`0x`) [bg]. Anything else, a part too large for its
/// place included, is `INADDR_NONE`.
pub fn inet_addr(cp: &str) -> u32 {
    parse_inet(cp).map_or(INADDR_NONE, |a| u32::from_ne_bytes(a.to_be_bytes()))
}

/// `inet_ntoa` (CHECKLIST §1.17.1): "a.b.c.d". The string is owned (D-33); the thread's copy
/// is also kept for [`thread_inet_ntoa`].
pub fn inet_ntoa(r#in: IN_ADDR) -> String {
    let s = Ipv4Addr::from(r#in.S_addr.to_ne_bytes()).to_string();
    LAST_NTOA.with(|l| *l.borrow_mut() = Some(s.clone()));
    s
}

/// A name made only of digits and dots: never resolved (CHECKLIST 522).
fn dotted(name: &str) -> bool {
    !name.is_empty() && name.chars().all(|c| c.is_ascii_digit() || c == '.')
}

fn random_id() -> u16 {
    let mut h = RandomState::new().build_hasher();
    h.write_u128(Instant::now().elapsed().as_nanos());
    h.finish() as u16
}

impl Winsock {
    /// The stack's host name (see the module docs): `ws2-<first address with dashes>`.
    pub(crate) fn host_name(&self) -> String {
        match self.stack.config().addrs.first() {
            Some(c) => format!("ws2-{}", c.addr.to_string().replace('.', "-")),
            None => "ws2-localhost".to_string(),
        }
    }

    /// The local host's entry: its name and every configured address.
    pub(crate) fn own_host(&self) -> HOSTENT {
        let mut addrs: Vec<Ipv4Addr> = self.stack.config().addrs.iter().map(|c| c.addr).collect();
        if addrs.is_empty() {
            addrs.push(Ipv4Addr::LOCALHOST);
        }
        HOSTENT::new(&self.host_name(), vec![], &addrs)
    }

    /// Adds `name` (and `aliases`) → `addrs` to this application's hosts table, searched before
    /// the embedded and system tables (Part 3 #12: the configurable hosts map).
    pub fn add_host(&self, name: &str, aliases: &[&str], addrs: &[Ipv4Addr]) {
        let entry = HOSTENT::new(name, aliases.iter().map(|s| s.to_string()).collect(), addrs);
        self.resolver().lock().hosts.push(entry);
    }

    /// Sends host names and addresses not found locally to the DNS server `server`, over this
    /// stack's UDP (see the module docs).
    pub fn set_dns_server(&self, server: SocketAddrV4) {
        self.resolver().lock().dns_server = Some(server);
    }

    /// Stops using DNS.
    pub fn clear_dns_server(&self) {
        self.resolver().lock().dns_server = None;
    }

    /// How long each DNS try waits for its answer, and how many tries a lookup makes (at least
    /// one).
    pub fn set_dns_timeouts(&self, per_try: Duration, tries: u32) {
        self.resolver().lock().dns_timeout = Some((per_try, tries.max(1)));
    }

    /// A host by name from the local sources (own name, added hosts, tables).
    pub(crate) fn local_host(&self, name: &str) -> Option<HOSTENT> {
        let own = self.own_host();
        let state = self.resolver();
        let inner = state.lock();
        db::host_by_name(
            std::iter::once(&own)
                .chain(inner.hosts.iter())
                .chain(db::TABLES.hosts.iter()),
            name,
        )
    }

    /// A host by address from the local sources; `h_addr_list` is that address.
    pub(crate) fn local_addr(&self, addr: [u8; 4]) -> Option<HOSTENT> {
        let own = self.own_host();
        let state = self.resolver();
        let inner = state.lock();
        let mut h = db::host_by_addr(
            std::iter::once(&own)
                .chain(inner.hosts.iter())
                .chain(db::TABLES.hosts.iter()),
            addr,
        )?;
        h.h_addr_list = vec![addr];
        Some(h)
    }

    /// A host by name from DNS (`WSAHOST_NOT_FOUND` without a server).
    pub(crate) fn dns_host(
        &self,
        name: &str,
        cancel: Option<&Cancel>,
    ) -> Result<HOSTENT, WsaError> {
        let cfg = self.resolver().lock().dns();
        let cfg = cfg.ok_or(WsaError::WSAHOST_NOT_FOUND)?;
        let r = self.dns_query(cfg, name, dns::TYPE_A, cancel)?;
        let (canonical, aliases, addrs) = dns::addresses(&r, name);
        if addrs.is_empty() {
            return Err(WsaError::WSANO_DATA);
        }
        Ok(HOSTENT::new(&canonical, aliases, &addrs))
    }

    /// A host by address from DNS (a PTR question).
    pub(crate) fn dns_addr(
        &self,
        addr: [u8; 4],
        cancel: Option<&Cancel>,
    ) -> Result<HOSTENT, WsaError> {
        let cfg = self.resolver().lock().dns();
        let cfg = cfg.ok_or(WsaError::WSAHOST_NOT_FOUND)?;
        let ip = Ipv4Addr::from(addr);
        let r = self.dns_query(cfg, &dns::reverse_name(ip), dns::TYPE_PTR, cancel)?;
        match dns::pointer(&r) {
            Some(name) => Ok(HOSTENT::new(&name, vec![], &[ip])),
            None => Err(WsaError::WSANO_DATA),
        }
    }

    /// A host lookup by name from every source; no last error set.
    pub(crate) fn lookup_host(
        &self,
        name: &str,
        cancel: Option<&Cancel>,
    ) -> Result<HOSTENT, WsaError> {
        if name.is_empty() {
            return Ok(self.own_host());
        }
        if dotted(name) {
            return Err(WsaError::WSAHOST_NOT_FOUND);
        }
        match self.local_host(name) {
            Some(h) => Ok(h),
            None => self.dns_host(name, cancel),
        }
    }

    /// A host lookup by address from every source; no last error set.
    pub(crate) fn lookup_addr(
        &self,
        addr: [u8; 4],
        cancel: Option<&Cancel>,
    ) -> Result<HOSTENT, WsaError> {
        match self.local_addr(addr) {
            Some(h) => Ok(h),
            None => self.dns_addr(addr, cancel),
        }
    }

    /// One DNS question over this stack's UDP (see the module docs for the error mapping).
    fn dns_query(
        &self,
        cfg: DnsConfig,
        name: &str,
        qtype: u16,
        cancel: Option<&Cancel>,
    ) -> Result<dns::Response, WsaError> {
        let id = random_id();
        let query = dns::encode_query(id, name, qtype).map_err(|_| WsaError::WSAHOST_NOT_FOUND)?;
        let s = quietly(|| self.socket(AF_INET, SOCK_DGRAM, IPPROTO_UDP))?;
        let any = SOCKADDR_IN::new(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0));
        let armed = cancel.is_none_or(|c| c.arm(s));
        let r = if !armed {
            Err(WsaError::WSA_E_CANCELLED)
        } else {
            quietly(|| self.bind(s, Some(&any), SOCKADDR_IN_LEN))
                .and_then(|()| self.dns_exchange(s, cfg, &query, id, name, qtype))
        };
        let close = cancel.is_none_or(|c| c.disarm());
        if close {
            quietly(|| self.closesocket(s)).ok();
        }
        match r {
            Err(_) if cancel.is_some_and(Cancel::cancelled) => Err(WsaError::WSA_E_CANCELLED),
            r => r,
        }
    }

    fn dns_exchange(
        &self,
        s: SOCKET,
        cfg: DnsConfig,
        query: &[u8],
        id: u16,
        name: &str,
        qtype: u16,
    ) -> Result<dns::Response, WsaError> {
        let server = SOCKADDR_IN::new(cfg.server);
        let sock = s as SocketId;
        let mut unusable = false;
        let mut buf = vec![0u8; 1500];
        for _ in 0..cfg.tries {
            quietly(|| self.sendto(s, query, 0, Some(&server), SOCKADDR_IN_LEN))?;
            let deadline = Instant::now() + cfg.timeout;
            loop {
                let got = self.block(Some(sock), Some(deadline), |core| {
                    core.dgram_recv(sock, &mut buf, false).transpose()
                });
                let got = match got {
                    None => break,
                    // The server's port is closed (ICMP): like no answer.
                    Some(Err(WsaError::WSAECONNRESET)) => continue,
                    Some(Err(e @ (WsaError::WSAEINTR | WsaError::WSAENETDOWN))) => return Err(e),
                    Some(Err(_)) => return Err(WsaError::WSANO_RECOVERY),
                    Some(Ok(got)) => got,
                };
                if got.from != cfg.server {
                    continue;
                }
                if got.truncated {
                    unusable = true;
                    continue;
                }
                match dns::parse_response(&buf[..got.len], id, name, qtype) {
                    Err(DnsError::NotOurs) => unusable = true,
                    Err(_) => {
                        // Our id but unreadable: when even the header is unreadable, keep
                        // waiting for a real answer.
                        if got.len >= 2 && u16::from_be_bytes([buf[0], buf[1]]) == id {
                            return Err(WsaError::WSANO_RECOVERY);
                        }
                        unusable = true;
                    }
                    Ok(r) => {
                        return match r.rcode {
                            _ if r.truncated => Err(WsaError::WSANO_RECOVERY),
                            dns::RCODE_NOERROR => Ok(r),
                            dns::RCODE_NXDOMAIN => Err(WsaError::WSAHOST_NOT_FOUND),
                            dns::RCODE_SERVFAIL => Err(WsaError::WSATRY_AGAIN),
                            _ => Err(WsaError::WSANO_RECOVERY),
                        };
                    }
                }
            }
        }
        Err(if unusable {
            WsaError::WSANO_RECOVERY
        } else {
            WsaError::WSATRY_AGAIN
        })
    }

    /// `gethostbyname` (CHECKLIST §1.17.1): a blocking call. Dotted strings are not resolved
    /// (`WSAHOST_NOT_FOUND`); the name `gethostname` returns always resolves.
    pub fn gethostbyname(&self, name: &str) -> Result<HOSTENT, WsaError> {
        record(self.started())?;
        keep(&LAST_HOSTENT, self.lookup_host(name, None))
    }

    /// `gethostbyaddr` (CHECKLIST §1.17.1): `addr` holds the address in network order; `len`
    /// is its length (less than 4, or more than `addr` holds: `WSAEFAULT`); `type` other than
    /// `AF_INET` is `WSAEAFNOSUPPORT`.
    pub fn gethostbyaddr(
        &self,
        addr: Option<&[u8]>,
        len: i32,
        r#type: i32,
    ) -> Result<HOSTENT, WsaError> {
        record(self.started())?;
        if r#type != AF_INET {
            return record(Err(WsaError::WSAEAFNOSUPPORT));
        }
        let Some(a) = addr.filter(|a| len >= 4 && a.len() >= len as usize) else {
            return record(Err(WsaError::WSAEFAULT));
        };
        keep(
            &LAST_HOSTENT,
            self.lookup_addr([a[0], a[1], a[2], a[3]], None),
        )
    }

    /// `gethostname` (CHECKLIST §1.17.1): writes the NUL-terminated host name into `name`
    /// (whose length is `namelen`); `WSAEFAULT` if it does not fit.
    pub fn gethostname(&self, name: &mut [u8]) -> Result<(), WsaError> {
        record(self.started())?;
        let host = self.host_name();
        if name.len() < host.len() + 1 {
            return record(Err(WsaError::WSAEFAULT));
        }
        name[..host.len()].copy_from_slice(host.as_bytes());
        name[host.len()] = 0;
        Ok(())
    }

    /// `getservbyname` (CHECKLIST §1.17.1): `proto` `None` matches the first entry with that
    /// name or alias. `s_port` is in network order.
    pub fn getservbyname(&self, name: &str, proto: Option<&str>) -> Result<SERVENT, WsaError> {
        record(self.started())?;
        keep(
            &LAST_SERVENT,
            db::service_by_name(name, proto).ok_or(WsaError::WSAHOST_NOT_FOUND),
        )
    }

    /// `getservbyport` (CHECKLIST §1.17.1): `port` in network order (`htons(21)`).
    pub fn getservbyport(&self, port: u16, proto: Option<&str>) -> Result<SERVENT, WsaError> {
        record(self.started())?;
        keep(
            &LAST_SERVENT,
            db::service_by_port(port, proto).ok_or(WsaError::WSAHOST_NOT_FOUND),
        )
    }

    /// `getprotobyname` (CHECKLIST §1.17.1): `p_proto` in host order.
    pub fn getprotobyname(&self, name: &str) -> Result<PROTOENT, WsaError> {
        record(self.started())?;
        keep(
            &LAST_PROTOENT,
            db::protocol_by_name(name).ok_or(WsaError::WSAHOST_NOT_FOUND),
        )
    }

    /// `getprotobynumber` (CHECKLIST §1.17.1): `number` in host order.
    pub fn getprotobynumber(&self, number: i32) -> Result<PROTOENT, WsaError> {
        record(self.started())?;
        keep(
            &LAST_PROTOENT,
            db::protocol_by_number(number).ok_or(WsaError::WSAHOST_NOT_FOUND),
        )
    }

    /// `WSAStringToAddress` (CHECKLIST §1.17.3): `"a.b.c.d[:port]"` (any `inet_addr` form for
    /// the address) → `AF_INET` address; a missing port is 0. `*lpAddressLength` below 16 is
    /// `WSAEFAULT` (and set to 16); another family or an untranslatable string is `WSAEINVAL`.
    pub fn WSAStringToAddress(
        &self,
        AddressString: &str,
        AddressFamily: i32,
        lpProtocolInfo: Option<&WSAPROTOCOL_INFO>,
        lpAddress: &mut SOCKADDR,
        lpAddressLength: &mut i32,
    ) -> Result<(), WsaError> {
        record(self.started())?;
        let family = lpProtocolInfo.map_or(AddressFamily, |p| p.iAddressFamily);
        if family != AF_INET {
            return record(Err(WsaError::WSAEINVAL));
        }
        if *lpAddressLength < SOCKADDR_IN_LEN {
            *lpAddressLength = SOCKADDR_IN_LEN;
            return record(Err(WsaError::WSAEFAULT));
        }
        let (host, port) = match AddressString.split_once(':') {
            Some((h, p)) => (h, p.parse::<u16>().map_err(|_| WsaError::WSAEINVAL)),
            None => (AddressString, Ok(0)),
        };
        let port = record(port)?;
        let addr = record(parse_inet(host).ok_or(WsaError::WSAEINVAL))?;
        *lpAddress = SOCKADDR_IN::new(SocketAddrV4::new(Ipv4Addr::from(addr), port));
        *lpAddressLength = SOCKADDR_IN_LEN;
        Ok(())
    }

    /// `WSAAddressToString` (CHECKLIST §1.17.3): `"a.b.c.d:port"` (`:port` left out when 0).
    /// `lpdwAddressStringLength` is the buffer size in characters with the NUL in, and the
    /// string's length with its NUL out; too small is `WSAEFAULT` with the size needed. A
    /// family other than `AF_INET` is `WSAEINVAL`; `dwAddressLength` below 16 is `WSAEFAULT`.
    pub fn WSAAddressToString(
        &self,
        lpsaAddress: Option<&SOCKADDR>,
        dwAddressLength: u32,
        lpProtocolInfo: Option<&WSAPROTOCOL_INFO>,
        lpszAddressString: &mut String,
        lpdwAddressStringLength: &mut u32,
    ) -> Result<(), WsaError> {
        record(self.started())?;
        let _ = lpProtocolInfo;
        let Some(sa) = lpsaAddress.filter(|_| dwAddressLength >= SOCKADDR_IN_LEN as u32) else {
            return record(Err(WsaError::WSAEFAULT));
        };
        if i32::from(sa.sin_family) != AF_INET {
            return record(Err(WsaError::WSAEINVAL));
        }
        let addr = sa.to_socket_addr();
        let text = if addr.port() == 0 {
            addr.ip().to_string()
        } else {
            addr.to_string()
        };
        let needed = text.len() as u32 + 1;
        if *lpdwAddressStringLength < needed {
            *lpdwAddressStringLength = needed;
            return record(Err(WsaError::WSAEFAULT));
        }
        *lpszAddressString = text;
        *lpdwAddressStringLength = needed;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inet_forms() {
        let a = |s| inet_addr(s).to_ne_bytes();
        assert_eq!(a("1.2.3.4"), [1, 2, 3, 4]);
        assert_eq!(a("0x7f.1"), [127, 0, 0, 1]);
        assert_eq!(a("010.0.0.1"), [8, 0, 0, 1]);
        for bad in [
            "",
            ".",
            "1.",
            "1..2",
            "1.2.3.4.5",
            "4294967296",
            "1.2.65536",
            "08",
            "0x",
        ] {
            assert_eq!(inet_addr(bad), INADDR_NONE, "{bad:?}");
        }
    }
}
