//! RMP messages for the `rmp` target (docs/rmp.md §2 framing, §3 message types): what B
//! writes on its TCP connection to A's c_root, a leaf that speaks the protocol badly.

use arbitrary::Arbitrary;

/// One RMP message, valid unless its fields say otherwise.
#[derive(Arbitrary, Debug)]
pub enum RmpMsg {
    /// HELLO then JOIN as a well-behaved leaf on `plane` (1 rooted, 2 non-rooted) would send.
    Handshake {
        plane: u8,
        jl: u8,
    },
    Hello {
        min: u8,
        max: u8,
        side: u8,
        plane: u8,
    },
    /// JOIN: kind, JL flags, presence bits, caller data and flowspec lengths.
    Join {
        kind: u8,
        jl: u8,
        presence: u8,
        caller: u16,
        sqos: u16,
        gqos: u16,
    },
    Accept {
        len: u16,
    },
    Reject {
        reason: u8,
    },
    Data {
        len: u16,
    },
    Relayed {
        leaf: u32,
        family: u8,
        port: u16,
        len: u16,
    },
    Disconnect {
        len: u16,
    },
    End,
    Ping,
    Pong,
    /// A header of type `ty` claiming `len` body bytes, with `body` after it.
    Raw {
        version: u8,
        ty: u8,
        flags: u16,
        len: u32,
        body: Vec<u8>,
    },
}

/// The 10-byte header (docs/rmp.md §2) and `body`.
fn message(ty: u8, body: &[u8]) -> Vec<u8> {
    let mut m = Vec::with_capacity(10 + body.len());
    m.extend_from_slice(b"RM");
    m.push(1);
    m.push(ty);
    m.extend_from_slice(&[0, 0]);
    m.extend_from_slice(&(body.len() as u32).to_be_bytes());
    m.extend_from_slice(body);
    m
}

/// A length-prefixed field of `len` pattern bytes.
fn field(out: &mut Vec<u8>, len: u16) {
    let len = len % 5000;
    out.extend_from_slice(&len.to_be_bytes());
    out.extend((0..len).map(|k| k as u8));
}

fn bytes(len: u16) -> Vec<u8> {
    (0..usize::from(len)).map(|k| (k as u8) ^ 0x3c).collect()
}

impl RmpMsg {
    /// The bytes on the wire.
    pub fn encode(&self) -> Vec<u8> {
        match *self {
            RmpMsg::Handshake { plane, jl } => {
                let plane = 1 + plane % 2;
                let mut m = message(1, &[1, 1, 2, plane]);
                let mut j = vec![2, [1, 2, 4][usize::from(jl % 3)], 0];
                field(&mut j, 0);
                m.extend(message(2, &j));
                m
            }
            RmpMsg::Hello {
                min,
                max,
                side,
                plane,
            } => message(1, &[min, max, side, plane]),
            RmpMsg::Join {
                kind,
                jl,
                presence,
                caller,
                sqos,
                gqos,
            } => {
                let mut j = vec![kind, jl, presence];
                field(&mut j, caller);
                if presence & 1 != 0 {
                    field(&mut j, sqos);
                }
                if presence & 2 != 0 {
                    field(&mut j, gqos);
                }
                message(2, &j)
            }
            RmpMsg::Accept { len } => {
                let mut b = Vec::new();
                field(&mut b, len);
                message(3, &b)
            }
            RmpMsg::Reject { reason } => message(4, &[reason]),
            RmpMsg::Data { len } => message(5, &bytes(len)),
            RmpMsg::Relayed {
                leaf,
                family,
                port,
                len,
            } => {
                let mut b = leaf.to_be_bytes().to_vec();
                b.push(family);
                match family {
                    0 => {}
                    6 => b.extend_from_slice(&[0xfe; 16]),
                    _ => b.extend_from_slice(&[10, 0, 0, 2]),
                }
                if family != 0 {
                    b.extend_from_slice(&port.to_be_bytes());
                }
                b.extend(bytes(len));
                message(6, &b)
            }
            RmpMsg::Disconnect { len } => message(7, &bytes(len % 5000)),
            RmpMsg::End => message(8, &[]),
            RmpMsg::Ping => message(9, &[]),
            RmpMsg::Pong => message(10, &[]),
            RmpMsg::Raw {
                version,
                ty,
                flags,
                len,
                ref body,
            } => {
                let mut m = b"RM".to_vec();
                m.push(version);
                m.push(ty);
                m.extend_from_slice(&flags.to_be_bytes());
                m.extend_from_slice(&len.to_be_bytes());
                m.extend_from_slice(body);
                m
            }
        }
    }
}
