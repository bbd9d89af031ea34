//! The RMP codec: docs/rmp.md §2 (framing) and §3 (message types).
//!
//! Heads up! Before working on this file read docs/rmp.md §2–§3; the byte layout lives there and
//! this file follows it field by field.
//!
//! [`encode`] appends one message to a buffer. [`Decoder`] takes TCP bytes in pieces of any
//! size and yields whole messages. Its guarantees:
//! - it never panics, whatever the bytes;
//! - it checks the header (magic, framing version, type, flags, the type's maximum body length)
//!   as soon as the 10 header bytes are in, before buffering any body, so it never holds more
//!   than [`HEADER_LEN`] + [`MAX_BODY_LEN`] bytes;
//! - after the first error it stays failed (every later call returns that error).

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// The two magic bytes that open every message ("RM").
pub const MAGIC: [u8; 2] = *b"RM";
/// The framing version in every header (docs/rmp.md §2).
pub const FRAMING_VERSION: u8 = 1;
/// Header length: magic 2, framing version 1, type 1, flags 2, length 4.
pub const HEADER_LEN: usize = 10;
/// Largest DATA or RELAYED payload: the catalog entry's `dwMessageSize`.
pub const MAX_PAYLOAD: usize = 65_536;
/// Largest caller, callee or disconnect data.
pub const MAX_USER_DATA: usize = 4_096;
/// Largest flowspec blob (SQOS or GQOS) in a JOIN.
pub const MAX_QOS: usize = 4_096;
/// Largest body of any message (a RELAYED with an IPv6 origin and a full payload).
pub const MAX_BODY_LEN: usize = RELAYED_MAX;

const JOIN_MAX: usize = 3 + 2 + MAX_USER_DATA + 2 * (2 + MAX_QOS);
const ACCEPT_MAX: usize = 2 + MAX_USER_DATA;
const RELAYED_MAX: usize = 4 + 1 + 16 + 2 + MAX_PAYLOAD;

mod field {
    use core::ops::Range;
    pub(super) const MAGIC: Range<usize> = 0..2;
    pub(super) const VERSION: usize = 2;
    pub(super) const TYPE: usize = 3;
    pub(super) const FLAGS: Range<usize> = 4..6;
    pub(super) const LENGTH: Range<usize> = 6..10;
}

/// A message type code (docs/rmp.md §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MessageType {
    /// 1: version range, role and data plane.
    Hello,
    /// 2: a join request or invitation.
    Join,
    /// 3: the join is admitted.
    Accept,
    /// 4: refusal or error, then close.
    Reject,
    /// 5: a data message between root and leaf.
    Data,
    /// 6: a leaf's data relayed by the root (non-rooted data plane).
    Relayed,
    /// 7: no more data from the sender, with disconnect data.
    Disconnect,
    /// 8: the root ends the session.
    End,
    /// 9: keepalive request.
    Ping,
    /// 10: keepalive answer.
    Pong,
}

impl MessageType {
    /// The code on the wire.
    pub fn code(self) -> u8 {
        match self {
            Self::Hello => 1,
            Self::Join => 2,
            Self::Accept => 3,
            Self::Reject => 4,
            Self::Data => 5,
            Self::Relayed => 6,
            Self::Disconnect => 7,
            Self::End => 8,
            Self::Ping => 9,
            Self::Pong => 10,
        }
    }

    /// The type for a code, `None` if unassigned.
    pub fn from_code(code: u8) -> Option<Self> {
        Some(match code {
            1 => Self::Hello,
            2 => Self::Join,
            3 => Self::Accept,
            4 => Self::Reject,
            5 => Self::Data,
            6 => Self::Relayed,
            7 => Self::Disconnect,
            8 => Self::End,
            9 => Self::Ping,
            10 => Self::Pong,
            _ => return None,
        })
    }

    /// The largest body this type may have (docs/rmp.md §3, "Max body").
    pub fn max_body_len(self) -> usize {
        match self {
            Self::Hello => 4,
            Self::Join => JOIN_MAX,
            Self::Accept => ACCEPT_MAX,
            Self::Reject => 1,
            Self::Data => MAX_PAYLOAD,
            Self::Relayed => RELAYED_MAX,
            Self::Disconnect => MAX_USER_DATA,
            Self::End | Self::Ping | Self::Pong => 0,
        }
    }
}

impl fmt::Display for MessageType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            Self::Hello => "HELLO",
            Self::Join => "JOIN",
            Self::Accept => "ACCEPT",
            Self::Reject => "REJECT",
            Self::Data => "DATA",
            Self::Relayed => "RELAYED",
            Self::Disconnect => "DISCONNECT",
            Self::End => "END",
            Self::Ping => "PING",
            Self::Pong => "PONG",
        };
        f.write_str(name)
    }
}

/// Which end of a root↔leaf connection (HELLO's role byte: 1 root, 2 leaf).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Side {
    /// The c_root / d_root end.
    Root,
    /// A c_leaf / d_leaf end.
    Leaf,
}

/// The data plane of the catalog entry (HELLO's plane byte: 1 rooted, 2 non-rooted).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DataPlane {
    /// "RMP rooted data": leaf data goes to the root only.
    Rooted,
    /// "RMP non-rooted data": the root relays each leaf's data to every other receiving leaf.
    NonRooted,
}

/// Who asked for the join (JOIN's initiator kind: 1 root-invite, 2 leaf-request).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Initiator {
    /// `WSAJoinLeaf` on a c_root: the root invites a listening leaf.
    RootInvite,
    /// `WSAJoinLeaf` on a c_leaf: the leaf asks a listening root for admittance.
    LeafRequest,
}

/// The leaf's role in the session: Winsock's `JL_*` flags (exactly one).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JoinFlags {
    /// `JL_SENDER_ONLY` (0x01): the leaf sends, receives nothing.
    SenderOnly,
    /// `JL_RECEIVER_ONLY` (0x02): the leaf receives, may not send.
    ReceiverOnly,
    /// `JL_BOTH` (0x04).
    Both,
}

impl JoinFlags {
    /// The `JL_*` value, also the byte on the wire.
    pub fn bits(self) -> u8 {
        match self {
            Self::SenderOnly => 0x01,
            Self::ReceiverOnly => 0x02,
            Self::Both => 0x04,
        }
    }

    /// The flags for a `JL_*` value; `None` unless exactly one known bit is set.
    pub fn from_bits(bits: u8) -> Option<Self> {
        match bits {
            0x01 => Some(Self::SenderOnly),
            0x02 => Some(Self::ReceiverOnly),
            0x04 => Some(Self::Both),
            _ => None,
        }
    }

    /// May the leaf send data?
    pub fn sends(self) -> bool {
        self != Self::ReceiverOnly
    }

    /// Does the leaf receive data?
    pub fn receives(self) -> bool {
        self != Self::SenderOnly
    }
}

/// REJECT's reason code (docs/rmp.md §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RejectReason {
    /// 1: the application refused the join (`CF_REJECT`, or the c_root went away).
    Refused,
    /// 2: no common protocol version.
    Version,
    /// 3: a malformed, truncated, oversized, unknown or out-of-order message.
    BadMessage,
    /// 4: role or data plane mismatch in HELLO.
    Mismatch,
    /// 5: a well-formed message the sender may not send (DATA from a receiver-only leaf,
    /// RELAYED from a leaf).
    NotAllowed,
    /// Any other code, kept for forward compatibility (never 1..=5).
    Other(u8),
}

impl RejectReason {
    /// The code on the wire.
    pub fn code(self) -> u8 {
        match self {
            Self::Refused => 1,
            Self::Version => 2,
            Self::BadMessage => 3,
            Self::Mismatch => 4,
            Self::NotAllowed => 5,
            Self::Other(c) => c,
        }
    }

    /// The reason for a code (unassigned codes become [`RejectReason::Other`]).
    pub fn from_code(code: u8) -> Self {
        match code {
            1 => Self::Refused,
            2 => Self::Version,
            3 => Self::BadMessage,
            4 => Self::Mismatch,
            5 => Self::NotAllowed,
            c => Self::Other(c),
        }
    }
}

/// A leaf's id, assigned by the root (docs/rmp.md §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LeafId(pub u32);

/// The JOIN body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Join {
    /// Root-invite or leaf-request.
    pub initiator: Initiator,
    /// The leaf's role in the session.
    pub flags: JoinFlags,
    /// `lpCallerData` (≤ [`MAX_USER_DATA`]; empty when none).
    pub caller_data: Vec<u8>,
    /// The sending flowspec (`lpSQOS`) in the engine's byte encoding (≤ [`MAX_QOS`]).
    pub sqos: Option<Vec<u8>>,
    /// The group flowspec (`lpGQOS`) in the engine's byte encoding (≤ [`MAX_QOS`]).
    pub gqos: Option<Vec<u8>>,
}

/// One RMP message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// HELLO: the protocol versions the sender speaks, its role and data plane.
    Hello {
        /// Lowest version spoken.
        min_version: u8,
        /// Highest version spoken.
        max_version: u8,
        /// The sender's role.
        side: Side,
        /// The sender's data plane.
        plane: DataPlane,
    },
    /// JOIN.
    Join(Join),
    /// ACCEPT with callee data (≤ [`MAX_USER_DATA`]).
    Accept {
        /// `lpCalleeData`.
        callee_data: Vec<u8>,
    },
    /// REJECT.
    Reject {
        /// Why.
        reason: RejectReason,
    },
    /// DATA (≤ [`MAX_PAYLOAD`]).
    Data(Vec<u8>),
    /// RELAYED: a leaf's data relayed by the root.
    Relayed {
        /// The originating leaf.
        origin: LeafId,
        /// The originating leaf's address, for `recvfrom`.
        addr: Option<SocketAddr>,
        /// The payload (≤ [`MAX_PAYLOAD`]).
        data: Vec<u8>,
    },
    /// DISCONNECT with disconnect data (≤ [`MAX_USER_DATA`]).
    Disconnect {
        /// The data for `WSARecvDisconnect`.
        data: Vec<u8>,
    },
    /// END: the root ends the session.
    End,
    /// PING.
    Ping,
    /// PONG.
    Pong,
}

impl Message {
    /// This message's type.
    pub fn message_type(&self) -> MessageType {
        match self {
            Self::Hello { .. } => MessageType::Hello,
            Self::Join(_) => MessageType::Join,
            Self::Accept { .. } => MessageType::Accept,
            Self::Reject { .. } => MessageType::Reject,
            Self::Data(_) => MessageType::Data,
            Self::Relayed { .. } => MessageType::Relayed,
            Self::Disconnect { .. } => MessageType::Disconnect,
            Self::End => MessageType::End,
            Self::Ping => MessageType::Ping,
            Self::Pong => MessageType::Pong,
        }
    }
}

/// Why a message could not be encoded: a field is over its limit (docs/rmp.md §2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooLarge;

impl fmt::Display for TooLarge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an RMP message field is over its limit")
    }
}

impl std::error::Error for TooLarge {}

/// Checks every field limit, so that [`encode`] produces only what [`Decoder`] accepts.
pub fn check_limits(msg: &Message) -> Result<(), TooLarge> {
    let ok = match msg {
        Message::Hello { .. } | Message::Reject { .. } => true,
        Message::Join(j) => {
            j.caller_data.len() <= MAX_USER_DATA
                && j.sqos.as_ref().is_none_or(|q| q.len() <= MAX_QOS)
                && j.gqos.as_ref().is_none_or(|q| q.len() <= MAX_QOS)
        }
        Message::Accept { callee_data } => callee_data.len() <= MAX_USER_DATA,
        Message::Data(d) | Message::Relayed { data: d, .. } => d.len() <= MAX_PAYLOAD,
        Message::Disconnect { data } => data.len() <= MAX_USER_DATA,
        Message::End | Message::Ping | Message::Pong => true,
    };
    if ok {
        Ok(())
    } else {
        Err(TooLarge)
    }
}

fn put_blob(out: &mut Vec<u8>, blob: &[u8]) {
    // Callers check limits first; every blob is ≤ 4,096 bytes.
    let len = u16::try_from(blob.len()).unwrap_or(u16::MAX);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(blob);
}

/// Appends `msg`, header and body, to `out` (docs/rmp.md §2–§3).
///
/// Fails with [`TooLarge`], appending nothing, if a field is over its limit.
pub fn encode(msg: &Message, out: &mut Vec<u8>) -> Result<(), TooLarge> {
    check_limits(msg)?;
    let start = out.len();
    out.extend_from_slice(&MAGIC);
    out.push(FRAMING_VERSION);
    out.push(msg.message_type().code());
    out.extend_from_slice(&[0, 0]); // flags: reserved in v1
    out.extend_from_slice(&[0; 4]); // length, filled in below
    let body = out.len();
    match msg {
        Message::Hello {
            min_version,
            max_version,
            side,
            plane,
        } => {
            out.push(*min_version);
            out.push(*max_version);
            out.push(match side {
                Side::Root => 1,
                Side::Leaf => 2,
            });
            out.push(match plane {
                DataPlane::Rooted => 1,
                DataPlane::NonRooted => 2,
            });
        }
        Message::Join(j) => {
            out.push(match j.initiator {
                Initiator::RootInvite => 1,
                Initiator::LeafRequest => 2,
            });
            out.push(j.flags.bits());
            out.push(u8::from(j.sqos.is_some()) | (u8::from(j.gqos.is_some()) << 1));
            put_blob(out, &j.caller_data);
            if let Some(q) = &j.sqos {
                put_blob(out, q);
            }
            if let Some(q) = &j.gqos {
                put_blob(out, q);
            }
        }
        Message::Accept { callee_data } => put_blob(out, callee_data),
        Message::Reject { reason } => out.push(reason.code()),
        Message::Data(d) => out.extend_from_slice(d),
        Message::Relayed { origin, addr, data } => {
            out.extend_from_slice(&origin.0.to_be_bytes());
            match addr {
                None => out.push(0),
                Some(a) => {
                    match a.ip() {
                        IpAddr::V4(ip) => {
                            out.push(4);
                            out.extend_from_slice(&ip.octets());
                        }
                        IpAddr::V6(ip) => {
                            out.push(6);
                            out.extend_from_slice(&ip.octets());
                        }
                    }
                    out.extend_from_slice(&a.port().to_be_bytes());
                }
            }
            out.extend_from_slice(data);
        }
        Message::Disconnect { data } => out.extend_from_slice(data),
        Message::End | Message::Ping | Message::Pong => {}
    }
    // ≤ MAX_BODY_LEN after check_limits, so it fits in u32.
    let len = u32::try_from(out.len() - body).unwrap_or(u32::MAX);
    out[start + field::LENGTH.start..start + field::LENGTH.end].copy_from_slice(&len.to_be_bytes());
    Ok(())
}

/// Why bytes could not be decoded. Every variant is a protocol error (docs/rmp.md §8).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecodeError {
    /// The first two bytes are not "RM".
    BadMagic,
    /// The framing version is not 1.
    BadFramingVersion(u8),
    /// An unassigned message type.
    UnknownType(u8),
    /// Reserved header flags are not zero.
    BadFlags(u16),
    /// The length field exceeds the type's maximum body (refused before buffering).
    Oversized {
        /// The message type.
        ty: MessageType,
        /// The length field.
        len: u32,
    },
    /// The body does not parse: a field runs past the body, an invalid code, or bytes left over.
    Malformed(MessageType),
    /// The stream ended in the middle of a message.
    Truncated,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BadMagic => f.write_str("not an RMP message (bad magic)"),
            Self::BadFramingVersion(v) => write!(f, "unknown RMP framing version {v}"),
            Self::UnknownType(t) => write!(f, "unknown RMP message type {t}"),
            Self::BadFlags(x) => write!(f, "reserved RMP header flags set: {x:#06x}"),
            Self::Oversized { ty, len } => write!(f, "{ty} body of {len} bytes is over its limit"),
            Self::Malformed(ty) => write!(f, "malformed {ty} body"),
            Self::Truncated => f.write_str("the stream ended inside an RMP message"),
        }
    }
}

impl std::error::Error for DecodeError {}

/// A cursor over a body (rustls' `Reader` shape): reads fail instead of panicking.
struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if n > self.buf.len() {
            return None;
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Some(head)
    }

    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }

    fn u16(&mut self) -> Option<u16> {
        self.take(2).map(|b| u16::from_be_bytes([b[0], b[1]]))
    }

    fn u32(&mut self) -> Option<u32> {
        self.take(4)
            .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn blob(&mut self, max: usize) -> Option<Vec<u8>> {
        let len = usize::from(self.u16()?);
        if len > max {
            return None;
        }
        self.take(len).map(<[u8]>::to_vec)
    }

    fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.buf)
    }

    fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }
}

/// Parses one body of type `ty` (the header already checked its length limit).
pub fn parse_body(ty: MessageType, body: &[u8]) -> Result<Message, DecodeError> {
    let mut r = Reader { buf: body };
    let msg = parse_fields(ty, &mut r).ok_or(DecodeError::Malformed(ty))?;
    if !r.is_empty() {
        return Err(DecodeError::Malformed(ty));
    }
    check_limits(&msg).map_err(|_| DecodeError::Malformed(ty))?;
    Ok(msg)
}

fn parse_fields(ty: MessageType, r: &mut Reader<'_>) -> Option<Message> {
    Some(match ty {
        MessageType::Hello => Message::Hello {
            min_version: r.u8()?,
            max_version: r.u8()?,
            side: match r.u8()? {
                1 => Side::Root,
                2 => Side::Leaf,
                _ => return None,
            },
            plane: match r.u8()? {
                1 => DataPlane::Rooted,
                2 => DataPlane::NonRooted,
                _ => return None,
            },
        },
        MessageType::Join => {
            let initiator = match r.u8()? {
                1 => Initiator::RootInvite,
                2 => Initiator::LeafRequest,
                _ => return None,
            };
            let flags = JoinFlags::from_bits(r.u8()?)?;
            let presence = r.u8()?;
            if presence & !0b11 != 0 {
                return None;
            }
            let caller_data = r.blob(MAX_USER_DATA)?;
            let sqos = if presence & 1 != 0 {
                Some(r.blob(MAX_QOS)?)
            } else {
                None
            };
            let gqos = if presence & 2 != 0 {
                Some(r.blob(MAX_QOS)?)
            } else {
                None
            };
            Message::Join(Join {
                initiator,
                flags,
                caller_data,
                sqos,
                gqos,
            })
        }
        MessageType::Accept => Message::Accept {
            callee_data: r.blob(MAX_USER_DATA)?,
        },
        MessageType::Reject => Message::Reject {
            reason: RejectReason::from_code(r.u8()?),
        },
        MessageType::Data => Message::Data(r.rest().to_vec()),
        MessageType::Relayed => {
            let origin = LeafId(r.u32()?);
            let addr = match r.u8()? {
                0 => None,
                4 => {
                    let b = r.take(4)?;
                    let ip = Ipv4Addr::new(b[0], b[1], b[2], b[3]);
                    Some(SocketAddr::new(IpAddr::V4(ip), r.u16()?))
                }
                6 => {
                    let mut octets = [0u8; 16];
                    octets.copy_from_slice(r.take(16)?);
                    Some(SocketAddr::new(
                        IpAddr::V6(Ipv6Addr::from(octets)),
                        r.u16()?,
                    ))
                }
                _ => return None,
            };
            Message::Relayed {
                origin,
                addr,
                data: r.rest().to_vec(),
            }
        }
        MessageType::Disconnect => Message::Disconnect {
            data: r.rest().to_vec(),
        },
        MessageType::End => Message::End,
        MessageType::Ping => Message::Ping,
        MessageType::Pong => Message::Pong,
    })
}

/// A checked header: the type and the body length (≤ the type's maximum).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// The message type.
    pub ty: MessageType,
    /// The body length.
    pub len: usize,
}

impl Header {
    /// Checks the 10 header bytes (docs/rmp.md §2).
    pub fn parse(bytes: &[u8; HEADER_LEN]) -> Result<Self, DecodeError> {
        if bytes[field::MAGIC] != MAGIC {
            return Err(DecodeError::BadMagic);
        }
        let version = bytes[field::VERSION];
        if version != FRAMING_VERSION {
            return Err(DecodeError::BadFramingVersion(version));
        }
        let code = bytes[field::TYPE];
        let ty = MessageType::from_code(code).ok_or(DecodeError::UnknownType(code))?;
        let flags = u16::from_be_bytes([bytes[field::FLAGS.start], bytes[field::FLAGS.start + 1]]);
        if flags != 0 {
            return Err(DecodeError::BadFlags(flags));
        }
        let l = &bytes[field::LENGTH];
        let len = u32::from_be_bytes([l[0], l[1], l[2], l[3]]);
        match usize::try_from(len) {
            Ok(n) if n <= ty.max_body_len() => Ok(Self { ty, len: n }),
            _ => Err(DecodeError::Oversized { ty, len }),
        }
    }
}

/// An incremental decoder: feed TCP bytes in pieces of any size, get whole messages.
///
/// ```
/// use ws2_multipoint::rmp::wire::{encode, Decoder, Message};
/// let mut bytes = Vec::new();
/// encode(&Message::Data(b"hi".to_vec()), &mut bytes).unwrap();
/// encode(&Message::Ping, &mut bytes).unwrap();
/// let mut dec = Decoder::new();
/// let mut got = Vec::new();
/// for piece in bytes.chunks(3) {
///     let mut input = piece;
///     while let Some(msg) = dec.decode(&mut input).unwrap() {
///         got.push(msg);
///     }
/// }
/// assert_eq!(got, [Message::Data(b"hi".to_vec()), Message::Ping]);
/// assert_eq!(dec.finish(), Ok(()));
/// ```
#[derive(Debug, Default)]
pub struct Decoder {
    header: [u8; HEADER_LEN],
    header_len: usize,
    current: Option<Header>,
    body: Vec<u8>,
    failed: Option<DecodeError>,
}

impl Decoder {
    /// A decoder at a message boundary.
    pub fn new() -> Self {
        Self::default()
    }

    /// Consumes bytes from the front of `input` until one message is complete and returns it;
    /// returns `Ok(None)` once `input` is empty with no message complete (the partial message
    /// stays buffered). Call it again while `input` is not empty.
    pub fn decode(&mut self, input: &mut &[u8]) -> Result<Option<Message>, DecodeError> {
        if let Some(e) = self.failed {
            return Err(e);
        }
        let result = self.decode_inner(input);
        if let Err(e) = result {
            self.failed = Some(e);
            self.body = Vec::new();
        }
        result
    }

    fn decode_inner(&mut self, input: &mut &[u8]) -> Result<Option<Message>, DecodeError> {
        let header = match self.current {
            Some(h) => h,
            None => {
                let n = (HEADER_LEN - self.header_len).min(input.len());
                self.header[self.header_len..self.header_len + n].copy_from_slice(&input[..n]);
                self.header_len += n;
                *input = &input[n..];
                if self.header_len < HEADER_LEN {
                    return Ok(None);
                }
                let h = Header::parse(&self.header)?;
                self.current = Some(h);
                self.body.clear();
                self.body.reserve(h.len.min(4096));
                h
            }
        };
        let n = (header.len - self.body.len()).min(input.len());
        self.body.extend_from_slice(&input[..n]);
        *input = &input[n..];
        if self.body.len() < header.len {
            return Ok(None);
        }
        self.current = None;
        self.header_len = 0;
        let msg = parse_body(header.ty, &self.body)?;
        self.body.clear();
        if self.body.capacity() > 2 * 4096 {
            self.body = Vec::new();
        }
        Ok(Some(msg))
    }

    /// Bytes held for the message in progress (never more than `HEADER_LEN + MAX_BODY_LEN`).
    pub fn buffered(&self) -> usize {
        if self.current.is_some() {
            HEADER_LEN + self.body.len()
        } else {
            self.header_len
        }
    }

    /// The stream ended: `Err(Truncated)` if a message was in progress (or the earlier error).
    pub fn finish(&self) -> Result<(), DecodeError> {
        if let Some(e) = self.failed {
            Err(e)
        } else if self.buffered() > 0 {
            Err(DecodeError::Truncated)
        } else {
            Ok(())
        }
    }
}
