//! The host, service and protocol databases and their structures (CHECKLIST §1.17.1, Part 3
//! #12, D-33, D-37).
//!
//! Three sources, searched in this order, first match wins: names added to the application
//! ([`super::super::Winsock::add_host`]) and the stack's own name, the tables embedded from
//! `stack/data/{hosts,services,protocols}`, then `/etc/hosts`, `/etc/services` and
//! `/etc/protocols` when they exist and are readable. The system files are read once per process.
//! Every parser skips a line it cannot read (wrong field count, a bad number, a bad address, a
//! port above 65535, non-UTF-8 text) and never panics.
//!
//! `HOSTENT`, `SERVENT` and `PROTOENT` are owned Rust values (D-33); [`HOSTENT::to_blob`] and
//! friends lay them out as the spec's C structures with every pointer replaced by an offset from
//! the start of the buffer (the RnR blob format, §1.17.3), which is also what the
//! `WSAAsyncGetXByY` calls write into the caller's buffer.

use std::net::Ipv4Addr;
use std::sync::LazyLock;

use crate::winsock::types::AF_INET;

/// `struct hostent`, owned.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HOSTENT {
    /// Official name of the host.
    pub h_name: String,
    /// Other names.
    pub h_aliases: Vec<String>,
    /// `AF_INET`.
    pub h_addrtype: i16,
    /// 4, the length of each address.
    pub h_length: i16,
    /// The addresses, each in network order (`[a, b, c, d]`).
    pub h_addr_list: Vec<[u8; 4]>,
}

/// `struct servent`, owned.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SERVENT {
    /// Official name of the service.
    pub s_name: String,
    /// Other names.
    pub s_aliases: Vec<String>,
    /// The port in **network order** (`htons(21)` for ftp).
    pub s_port: u16,
    /// The protocol ("tcp", "udp").
    pub s_proto: String,
}

/// `struct protoent`, owned.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PROTOENT {
    /// Official name of the protocol.
    pub p_name: String,
    /// Other names.
    pub p_aliases: Vec<String>,
    /// The protocol number in host order.
    pub p_proto: i16,
}

impl HOSTENT {
    /// An `AF_INET` entry.
    pub fn new(name: &str, aliases: Vec<String>, addrs: &[Ipv4Addr]) -> HOSTENT {
        HOSTENT {
            h_name: name.to_string(),
            h_aliases: aliases,
            h_addrtype: AF_INET as i16,
            h_length: 4,
            h_addr_list: addrs.iter().map(|a| a.octets()).collect(),
        }
    }

    /// The addresses as Rust values.
    pub fn addrs(&self) -> Vec<Ipv4Addr> {
        self.h_addr_list
            .iter()
            .map(|&a| Ipv4Addr::from(a))
            .collect()
    }

    /// The 32-bit C layout with offsets for pointers: `h_name`@0, `h_aliases`@4,
    /// `h_addrtype`@8, `h_length`@10, `h_addr_list`@12 (16 bytes), then the pointer arrays
    /// (NULL-terminated), the addresses and the NUL-terminated strings.
    pub fn to_blob(&self) -> Vec<u8> {
        let mut w = Blob::new(16);
        let aliases = w.ptr_array(self.h_aliases.len());
        let addrs = w.ptr_array(self.h_addr_list.len());
        for (i, a) in self.h_addr_list.iter().enumerate() {
            let at = w.bytes(a);
            w.put_u32(addrs + 4 * i, at);
        }
        let name = w.string(&self.h_name);
        for (i, a) in self.h_aliases.iter().enumerate() {
            let at = w.string(a);
            w.put_u32(aliases + 4 * i, at);
        }
        w.put_u32(0, name);
        w.put_u32(4, aliases as u32);
        w.buf[8..10].copy_from_slice(&self.h_addrtype.to_ne_bytes());
        w.buf[10..12].copy_from_slice(&self.h_length.to_ne_bytes());
        w.put_u32(12, addrs as u32);
        w.buf
    }

    /// Reads [`HOSTENT::to_blob`]'s layout; `None` if anything points outside `b`.
    pub fn from_blob(b: &[u8]) -> Option<HOSTENT> {
        let r = Reader(b);
        let len = r.i16(10)?;
        Some(HOSTENT {
            h_name: r.string(r.u32(0)?)?,
            h_aliases: r.strings(r.u32(4)?)?,
            h_addrtype: r.i16(8)?,
            h_length: len,
            h_addr_list: r
                .ptrs(r.u32(12)?)?
                .into_iter()
                .map(|p| r.get(p, 4).map(|a| [a[0], a[1], a[2], a[3]]))
                .collect::<Option<_>>()?,
        })
    }
}

impl SERVENT {
    /// The port in host order.
    pub fn port(&self) -> u16 {
        u16::from_be(self.s_port)
    }

    /// The 32-bit C layout with offsets for pointers: `s_name`@0, `s_aliases`@4, `s_port`@8
    /// (network order), `s_proto`@12 (16 bytes), then the alias array and the strings.
    pub fn to_blob(&self) -> Vec<u8> {
        let mut w = Blob::new(16);
        let aliases = w.ptr_array(self.s_aliases.len());
        let name = w.string(&self.s_name);
        for (i, a) in self.s_aliases.iter().enumerate() {
            let at = w.string(a);
            w.put_u32(aliases + 4 * i, at);
        }
        let proto = w.string(&self.s_proto);
        w.put_u32(0, name);
        w.put_u32(4, aliases as u32);
        w.buf[8..10].copy_from_slice(&self.s_port.to_ne_bytes());
        w.put_u32(12, proto);
        w.buf
    }

    /// Reads [`SERVENT::to_blob`]'s layout; `None` if anything points outside `b`.
    pub fn from_blob(b: &[u8]) -> Option<SERVENT> {
        let r = Reader(b);
        let port = r.get(8, 2)?;
        Some(SERVENT {
            s_name: r.string(r.u32(0)?)?,
            s_aliases: r.strings(r.u32(4)?)?,
            s_port: u16::from_ne_bytes([port[0], port[1]]),
            s_proto: r.string(r.u32(12)?)?,
        })
    }
}

impl PROTOENT {
    /// The 32-bit C layout with offsets for pointers: `p_name`@0, `p_aliases`@4, `p_proto`@8
    /// (12 bytes), then the alias array and the strings.
    pub fn to_blob(&self) -> Vec<u8> {
        let mut w = Blob::new(12);
        let aliases = w.ptr_array(self.p_aliases.len());
        let name = w.string(&self.p_name);
        for (i, a) in self.p_aliases.iter().enumerate() {
            let at = w.string(a);
            w.put_u32(aliases + 4 * i, at);
        }
        w.put_u32(0, name);
        w.put_u32(4, aliases as u32);
        w.buf[8..10].copy_from_slice(&self.p_proto.to_ne_bytes());
        w.buf
    }

    /// Reads [`PROTOENT::to_blob`]'s layout; `None` if anything points outside `b`.
    pub fn from_blob(b: &[u8]) -> Option<PROTOENT> {
        let r = Reader(b);
        Some(PROTOENT {
            p_name: r.string(r.u32(0)?)?,
            p_aliases: r.strings(r.u32(4)?)?,
            p_proto: r.i16(8)?,
        })
    }
}

/// Builds a blob: a fixed head, then variable data appended, 4-byte aligned pointer arrays.
struct Blob {
    buf: Vec<u8>,
}

impl Blob {
    fn new(head: usize) -> Blob {
        Blob { buf: vec![0; head] }
    }

    fn put_u32(&mut self, at: usize, v: u32) {
        self.buf[at..at + 4].copy_from_slice(&v.to_ne_bytes());
    }

    /// Room for `n` pointers and the terminating NULL; returns its offset.
    fn ptr_array(&mut self, n: usize) -> usize {
        while !self.buf.len().is_multiple_of(4) {
            self.buf.push(0);
        }
        let at = self.buf.len();
        self.buf.resize(at + 4 * (n + 1), 0);
        at
    }

    fn bytes(&mut self, b: &[u8]) -> u32 {
        let at = self.buf.len();
        self.buf.extend_from_slice(b);
        at as u32
    }

    fn string(&mut self, s: &str) -> u32 {
        let at = self.bytes(s.as_bytes());
        self.buf.push(0);
        at
    }
}

/// Reads a blob without trusting it.
struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn get(&self, at: usize, n: usize) -> Option<&[u8]> {
        self.0.get(at..at.checked_add(n)?)
    }

    fn u32(&self, at: usize) -> Option<usize> {
        let b = self.get(at, 4)?;
        Some(u32::from_ne_bytes([b[0], b[1], b[2], b[3]]) as usize)
    }

    fn i16(&self, at: usize) -> Option<i16> {
        let b = self.get(at, 2)?;
        Some(i16::from_ne_bytes([b[0], b[1]]))
    }

    /// The string at `at`; offset 0 (the structure itself) is a NULL pointer.
    fn string(&self, at: usize) -> Option<String> {
        if at == 0 {
            return None;
        }
        let rest = self.0.get(at..)?;
        let end = rest.iter().position(|&c| c == 0)?;
        String::from_utf8(rest[..end].to_vec()).ok()
    }

    fn ptrs(&self, mut at: usize) -> Option<Vec<usize>> {
        if at == 0 {
            return None;
        }
        let mut out = Vec::new();
        loop {
            let p = self.u32(at)?;
            if p == 0 {
                return Some(out);
            }
            out.push(p);
            at += 4;
        }
    }

    fn strings(&self, at: usize) -> Option<Vec<String>> {
        self.ptrs(at)?.into_iter().map(|p| self.string(p)).collect()
    }
}

// ---- parsers ----------------------------------------------------------------------------

/// Fields of a database line, comments (`#` to the end of the line) removed.
fn fields(line: &str) -> Vec<&str> {
    line.split('#')
        .next()
        .unwrap_or("")
        .split_ascii_whitespace()
        .collect()
}

/// Parses a hosts file (`address name aliases…`); IPv6 and unreadable lines are skipped.
pub fn parse_hosts(text: &str) -> Vec<HOSTENT> {
    text.lines()
        .filter_map(|line| {
            let f = fields(line);
            let (addr, name) = (f.first()?, f.get(1)?);
            let addr: Ipv4Addr = addr.parse().ok()?;
            Some(HOSTENT::new(
                name,
                f[2..].iter().map(|s| s.to_string()).collect(),
                &[addr],
            ))
        })
        .collect()
}

/// Parses a services file (`name port/proto aliases…`); unreadable lines are skipped.
pub fn parse_services(text: &str) -> Vec<SERVENT> {
    text.lines()
        .filter_map(|line| {
            let f = fields(line);
            let (name, pp) = (f.first()?, f.get(1)?);
            let (port, proto) = pp.split_once('/')?;
            let port: u16 = port.parse().ok()?;
            if proto.is_empty() || !proto.chars().all(|c| c.is_ascii_alphanumeric()) {
                return None;
            }
            Some(SERVENT {
                s_name: name.to_string(),
                s_aliases: f[2..].iter().map(|s| s.to_string()).collect(),
                s_port: port.to_be(),
                s_proto: proto.to_string(),
            })
        })
        .collect()
}

/// Parses a protocols file (`name number aliases…`); unreadable lines are skipped.
pub fn parse_protocols(text: &str) -> Vec<PROTOENT> {
    text.lines()
        .filter_map(|line| {
            let f = fields(line);
            let (name, num) = (f.first()?, f.get(1)?);
            let num: u8 = num.parse().ok()?;
            Some(PROTOENT {
                p_name: name.to_string(),
                p_aliases: f[2..].iter().map(|s| s.to_string()).collect(),
                p_proto: i16::from(num),
            })
        })
        .collect()
}

/// Reads a system file as text; unreadable or non-UTF-8 content counts as absent (lossy
/// conversion keeps the readable lines of a partly broken file).
fn system(path: &str) -> String {
    std::fs::read(path)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default()
}

/// The process-wide tables: embedded first, then the system files.
pub(crate) struct Tables {
    pub(crate) hosts: Vec<HOSTENT>,
    pub(crate) services: Vec<SERVENT>,
    pub(crate) protocols: Vec<PROTOENT>,
}

pub(crate) static TABLES: LazyLock<Tables> = LazyLock::new(|| {
    let mut hosts = parse_hosts(include_str!("../../../data/hosts"));
    hosts.extend(parse_hosts(&system("/etc/hosts")));
    let mut services = parse_services(include_str!("../../../data/services"));
    services.extend(parse_services(&system("/etc/services")));
    let mut protocols = parse_protocols(include_str!("../../../data/protocols"));
    protocols.extend(parse_protocols(&system("/etc/protocols")));
    Tables {
        hosts,
        services,
        protocols,
    }
});

fn is(a: &str, b: &str) -> bool {
    a.eq_ignore_ascii_case(b)
}

/// The first host among `hosts` named `name` (official name or alias, ignoring case).
pub(crate) fn host_by_name<'a>(
    hosts: impl IntoIterator<Item = &'a HOSTENT>,
    name: &str,
) -> Option<HOSTENT> {
    let name = name.strip_suffix('.').unwrap_or(name);
    hosts
        .into_iter()
        .find(|h| is(&h.h_name, name) || h.h_aliases.iter().any(|a| is(a, name)))
        .cloned()
}

/// The first host among `hosts` with address `addr`.
pub(crate) fn host_by_addr<'a>(
    hosts: impl IntoIterator<Item = &'a HOSTENT>,
    addr: [u8; 4],
) -> Option<HOSTENT> {
    hosts
        .into_iter()
        .find(|h| h.h_addr_list.contains(&addr))
        .cloned()
}

/// `getservbyname`'s match: name or alias (ignoring case), and the protocol if given.
pub(crate) fn service_by_name(name: &str, proto: Option<&str>) -> Option<SERVENT> {
    TABLES
        .services
        .iter()
        .find(|s| {
            (is(&s.s_name, name) || s.s_aliases.iter().any(|a| is(a, name)))
                && proto.is_none_or(|p| is(&s.s_proto, p))
        })
        .cloned()
}

/// `getservbyport`'s match; `port` in network order.
pub(crate) fn service_by_port(port: u16, proto: Option<&str>) -> Option<SERVENT> {
    TABLES
        .services
        .iter()
        .find(|s| s.s_port == port && proto.is_none_or(|p| is(&s.s_proto, p)))
        .cloned()
}

/// `getprotobyname`'s match (name or alias, ignoring case).
pub(crate) fn protocol_by_name(name: &str) -> Option<PROTOENT> {
    TABLES
        .protocols
        .iter()
        .find(|p| is(&p.p_name, name) || p.p_aliases.iter().any(|a| is(a, name)))
        .cloned()
}

/// `getprotobynumber`'s match.
pub(crate) fn protocol_by_number(number: i32) -> Option<PROTOENT> {
    TABLES
        .protocols
        .iter()
        .find(|p| i32::from(p.p_proto) == number)
        .cloned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blobs_round_trip() {
        let h = HOSTENT::new(
            "a.example",
            vec!["b".into(), "c".into()],
            &[Ipv4Addr::new(1, 2, 3, 4), Ipv4Addr::new(5, 6, 7, 8)],
        );
        assert_eq!(HOSTENT::from_blob(&h.to_blob()), Some(h));
        let s = service_by_name("ftp", Some("tcp")).unwrap();
        assert_eq!(SERVENT::from_blob(&s.to_blob()), Some(s));
        let p = protocol_by_name("udp").unwrap();
        assert_eq!(PROTOENT::from_blob(&p.to_blob()), Some(p));
    }

    #[test]
    fn truncated_blobs_are_none() {
        let h = HOSTENT::new("x", vec![], &[Ipv4Addr::LOCALHOST]).to_blob();
        for n in 0..h.len() {
            let _ = HOSTENT::from_blob(&h[..n]);
        }
        assert_eq!(HOSTENT::from_blob(&h[..10]), None);
        assert_eq!(HOSTENT::from_blob(&[0; 64]), None, "NULL pointers");
    }

    #[test]
    fn embedded_tables_parse_completely() {
        let text = include_str!("../../../data/services");
        let lines = text
            .lines()
            .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
            .count();
        assert_eq!(parse_services(text).len(), lines);
        assert!(parse_protocols(include_str!("../../../data/protocols")).len() > 10);
        assert_eq!(parse_hosts(include_str!("../../../data/hosts")).len(), 1);
    }
}
