//! A minimal DNS client message codec: one question out, A/CNAME/PTR answers in.
//!
//! Read first: RFC 1035 §4.1 (message format), §4.1.4 (compression), §3.4.1 (A), §3.3.1
//! (CNAME), §3.3.12 (PTR); RFC 1034 §3.1 (name syntax). Sans-IO: no clock, no socket; the
//! transport lives in `getxbyy.rs`. Every read is bounds-checked and malformed input is a
//! [`DnsError`] value, never a panic; compression pointers must point strictly backwards
//! (RFC 1035 §4.1.4 only allows prior occurrences), which also rules out loops.

use std::net::Ipv4Addr;

/// `TYPE` A (RFC 1035 §3.2.2).
pub const TYPE_A: u16 = 1;
/// `TYPE` CNAME.
pub const TYPE_CNAME: u16 = 5;
/// `TYPE` PTR.
pub const TYPE_PTR: u16 = 12;
/// `CLASS` IN.
pub const CLASS_IN: u16 = 1;

/// `RCODE` values (RFC 1035 §4.1.1).
pub const RCODE_NOERROR: u8 = 0;
/// Format error: the server could not read the query.
pub const RCODE_FORMERR: u8 = 1;
/// Server failure.
pub const RCODE_SERVFAIL: u8 = 2;
/// Name error: the name does not exist (meaningful from an authoritative server).
pub const RCODE_NXDOMAIN: u8 = 3;

/// Why a datagram is not a usable answer to our query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DnsError {
    /// Shorter than its header or than a length it announces.
    Truncated,
    /// Not an answer to our query: another id, QR clear, or another question.
    NotOurs,
    /// A label or compression pointer that RFC 1035 does not allow.
    BadName,
    /// A name we cannot ask for (empty label, label over 63 or name over 253 bytes).
    BadQueryName,
}

/// One answer record we understand.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record {
    /// `name` has address `addr`.
    A {
        /// The owner name.
        name: String,
        /// The address.
        addr: Ipv4Addr,
    },
    /// `name` is an alias of `target`.
    Cname {
        /// The alias.
        name: String,
        /// The canonical name.
        target: String,
    },
    /// `name` points at `target`.
    Ptr {
        /// The `in-addr.arpa` name.
        name: String,
        /// The host name.
        target: String,
    },
}

/// A parsed response to our query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// `AA`.
    pub authoritative: bool,
    /// `TC`: the answer did not fit in the datagram.
    pub truncated: bool,
    /// `RCODE`.
    pub rcode: u8,
    /// Answer records of the types above; others are skipped.
    pub answers: Vec<Record>,
}

/// A recursive query for `name` of `qtype` with id `id`.
pub fn encode_query(id: u16, name: &str, qtype: u16) -> Result<Vec<u8>, DnsError> {
    let name = name.strip_suffix('.').unwrap_or(name);
    if name.is_empty() || name.len() > 253 {
        return Err(DnsError::BadQueryName);
    }
    let mut m = Vec::with_capacity(18 + name.len());
    m.extend_from_slice(&id.to_be_bytes());
    m.extend_from_slice(&[0x01, 0x00]); // RD
    m.extend_from_slice(&[0, 1, 0, 0, 0, 0, 0, 0]); // QDCOUNT 1
    for label in name.split('.') {
        if label.is_empty() || label.len() > 63 {
            return Err(DnsError::BadQueryName);
        }
        m.push(label.len() as u8);
        m.extend_from_slice(label.as_bytes());
    }
    m.push(0);
    m.extend_from_slice(&qtype.to_be_bytes());
    m.extend_from_slice(&CLASS_IN.to_be_bytes());
    Ok(m)
}

/// The `in-addr.arpa` name of `addr` (RFC 1035 §3.5).
pub fn reverse_name(addr: Ipv4Addr) -> String {
    let [a, b, c, d] = addr.octets();
    format!("{d}.{c}.{b}.{a}.in-addr.arpa")
}

struct Msg<'a>(&'a [u8]);

impl Msg<'_> {
    fn u8(&self, at: usize) -> Result<u8, DnsError> {
        self.0.get(at).copied().ok_or(DnsError::Truncated)
    }

    fn u16(&self, at: usize) -> Result<u16, DnsError> {
        Ok(u16::from_be_bytes([self.u8(at)?, self.u8(at + 1)?]))
    }

    /// The name at `at` and the offset after it (after the first pointer, if any).
    fn name(&self, at: usize) -> Result<(String, usize), DnsError> {
        let mut labels: Vec<String> = Vec::new();
        let mut pos = at;
        let mut end = None;
        let mut total = 0usize;
        loop {
            let len = self.u8(pos)?;
            match len & 0xC0 {
                0x00 if len == 0 => {
                    let end = end.unwrap_or(pos + 1);
                    return Ok((labels.join("."), end));
                }
                0x00 => {
                    let len = usize::from(len);
                    let label = self
                        .0
                        .get(pos + 1..pos + 1 + len)
                        .ok_or(DnsError::Truncated)?;
                    total += len + 1;
                    if total > 255 {
                        return Err(DnsError::BadName);
                    }
                    labels.push(String::from_utf8_lossy(label).into_owned());
                    pos += 1 + len;
                }
                0xC0 => {
                    let target = usize::from(self.u16(pos)? & 0x3FFF);
                    // Only earlier occurrences (RFC 1035 §4.1.4): strictly backwards.
                    if target >= pos {
                        return Err(DnsError::BadName);
                    }
                    end.get_or_insert(pos + 2);
                    pos = target;
                }
                _ => return Err(DnsError::BadName),
            }
        }
    }
}

/// Parses `msg` as the answer to the query `id` for (`qname`, `qtype`).
pub fn parse_response(msg: &[u8], id: u16, qname: &str, qtype: u16) -> Result<Response, DnsError> {
    let m = Msg(msg);
    if msg.len() < 12 {
        return Err(DnsError::Truncated);
    }
    let flags = m.u16(2)?;
    if m.u16(0)? != id || flags & 0x8000 == 0 {
        return Err(DnsError::NotOurs);
    }
    let qdcount = m.u16(4)?;
    let ancount = m.u16(6)?;
    let mut pos = 12;
    let qname = qname.strip_suffix('.').unwrap_or(qname);
    // A response repeats the question (RFC 1035 §4.1.2); some servers omit it on errors.
    for i in 0..qdcount {
        let (name, after) = m.name(pos)?;
        let (t, class) = (m.u16(after)?, m.u16(after + 2)?);
        if i == 0 && (!name.eq_ignore_ascii_case(qname) || t != qtype || class != CLASS_IN) {
            return Err(DnsError::NotOurs);
        }
        pos = after + 4;
    }
    let mut answers = Vec::new();
    for _ in 0..ancount {
        let (name, after) = m.name(pos)?;
        let rtype = m.u16(after)?;
        let class = m.u16(after + 2)?;
        let rdlen = usize::from(m.u16(after + 8)?);
        let rdata = after + 10;
        if msg.len() < rdata + rdlen {
            return Err(DnsError::Truncated);
        }
        if class == CLASS_IN {
            match rtype {
                TYPE_A if rdlen == 4 => answers.push(Record::A {
                    name,
                    addr: Ipv4Addr::new(msg[rdata], msg[rdata + 1], msg[rdata + 2], msg[rdata + 3]),
                }),
                TYPE_A => return Err(DnsError::Truncated),
                TYPE_CNAME | TYPE_PTR => {
                    let (target, tend) = m.name(rdata)?;
                    if tend > rdata + rdlen {
                        return Err(DnsError::Truncated);
                    }
                    answers.push(if rtype == TYPE_CNAME {
                        Record::Cname { name, target }
                    } else {
                        Record::Ptr { name, target }
                    });
                }
                _ => {}
            }
        }
        pos = rdata + rdlen;
    }
    Ok(Response {
        authoritative: flags & 0x0400 != 0,
        truncated: flags & 0x0200 != 0,
        rcode: (flags & 0x000F) as u8,
        answers,
    })
}

/// The canonical name, the aliases and the addresses an A answer gives for `qname`: follows
/// the CNAME chain (at most 16 links) and keeps the A records of its end.
pub fn addresses(r: &Response, qname: &str) -> (String, Vec<String>, Vec<Ipv4Addr>) {
    let mut name = qname.strip_suffix('.').unwrap_or(qname).to_string();
    let mut aliases = Vec::new();
    for _ in 0..16 {
        let next = r.answers.iter().find_map(|a| match a {
            Record::Cname { name: n, target } if n.eq_ignore_ascii_case(&name) => {
                Some(target.clone())
            }
            _ => None,
        });
        match next {
            Some(t) => aliases.push(std::mem::replace(&mut name, t)),
            None => break,
        }
    }
    let addrs = r
        .answers
        .iter()
        .filter_map(|a| match a {
            Record::A { name: n, addr } if n.eq_ignore_ascii_case(&name) => Some(*addr),
            _ => None,
        })
        .collect();
    (name, aliases, addrs)
}

/// The first PTR target of an answer.
pub fn pointer(r: &Response) -> Option<String> {
    r.answers.iter().find_map(|a| match a {
        Record::Ptr { target, .. } => Some(target.clone()),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// dig-style answer for `mcast-demo.ws2.test A` (hand-assembled from RFC 1035 §4.1).
    fn answer() -> Vec<u8> {
        let mut m = encode_query(0x1234, "www.ws2.test", TYPE_A).unwrap();
        m[2] = 0x85; // QR AA RD
        m[3] = 0x80; // RA
        m[7] = 2; // ANCOUNT
                  // www CNAME host.ws2.test (host + pointer to "ws2.test" at offset 16)
        m.extend_from_slice(&[0xC0, 12, 0, 5, 0, 1, 0, 0, 0, 60, 0, 7]);
        m.extend_from_slice(&[4, b'h', b'o', b's', b't', 0xC0, 16]);
        let host = m.len() - 7;
        m.extend_from_slice(&[
            0xC0, host as u8, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 10, 77, 60, 9,
        ]);
        m
    }

    #[test]
    fn query_layout() {
        let q = encode_query(0xBEEF, "a.bc", TYPE_A).unwrap();
        assert_eq!(
            q,
            [0xBE, 0xEF, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 1, b'a', 2, b'b', b'c', 0, 0, 1, 0, 1]
        );
        assert_eq!(encode_query(1, "a..b", TYPE_A), Err(DnsError::BadQueryName));
        assert_eq!(
            encode_query(1, &"x".repeat(64), TYPE_A),
            Err(DnsError::BadQueryName)
        );
    }

    #[test]
    fn cname_chain() {
        let r = parse_response(&answer(), 0x1234, "www.ws2.test", TYPE_A).unwrap();
        assert!(r.authoritative);
        let (name, aliases, addrs) = addresses(&r, "www.ws2.test");
        assert_eq!(name, "host.ws2.test");
        assert_eq!(aliases, ["www.ws2.test"]);
        assert_eq!(addrs, [Ipv4Addr::new(10, 77, 60, 9)]);
        assert_eq!(
            parse_response(&answer(), 0x1235, "www.ws2.test", TYPE_A),
            Err(DnsError::NotOurs)
        );
    }

    #[test]
    fn every_truncation_and_corruption_is_an_error_not_a_panic() {
        let a = answer();
        for n in 0..a.len() {
            assert!(parse_response(&a[..n], 0x1234, "www.ws2.test", TYPE_A).is_err());
        }
        for i in 0..a.len() {
            for v in [0u8, 1, 0x3F, 0x40, 0xC0, 0xFF] {
                let mut b = a.clone();
                b[i] = v;
                let _ = parse_response(&b, 0x1234, "www.ws2.test", TYPE_A);
            }
        }
        // A pointer to itself.
        let mut l = encode_query(7, "a", TYPE_A).unwrap();
        l[2] = 0x80;
        l[7] = 1;
        let at = l.len() as u8;
        l.extend_from_slice(&[0xC0, at, 0, 1, 0, 1, 0, 0, 0, 0, 0, 4, 1, 2, 3, 4]);
        assert_eq!(parse_response(&l, 7, "a", TYPE_A), Err(DnsError::BadName));
    }

    #[test]
    fn pseudo_random_garbage() {
        let mut x = 0x2545_F491_4F6C_DD1Du64;
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let len = (x % 80) as usize;
            let mut b: Vec<u8> = (0..len)
                .map(|i| (x.rotate_left(i as u32 * 5) & 0xFF) as u8)
                .collect();
            if b.len() >= 4 {
                b[0] = 0;
                b[1] = 9;
                b[2] |= 0x80;
            }
            let _ = parse_response(&b, 9, "a", TYPE_A);
        }
    }
}
