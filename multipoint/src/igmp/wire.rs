//! The IGMP codec, and the IPv4 header IGMP messages travel in.
//!
//! Heads up! Before working on this file read RFC 1112 Appendix I (the IGMPv1 message), RFC 2236
//! §2 (the IGMPv2 message), RFC 3376 §4 (the IGMPv3 query, §4.1, with the Max Resp Code and QQIC
//! floating-point encodings of §4.1.1 and §4.1.7; the report and its group records, §4.2), §7.1
//! (telling query versions apart by length), RFC 2113 (the Router Alert option), RFC 791 §3.1
//! (the IPv4 header) and RFC 1071 (the Internet checksum).
//!
//! Layout, as smoltcp's `wire`: [`Packet`] is a view of an IGMP message over any buffer (its
//! fields in a private `field` module, the Type as a [`MessageType`] code point), and
//! [`GroupRecordPacket`] one of a v3 report's group records; [`Message`] is the representation
//! (`parse`, `buffer_len`, `emit`). The IPv4 header is read and written through smoltcp's
//! `Ipv4Packet`, and every checksum is smoltcp's `wire::checksum` (RFC 1071), the one Internet
//! checksum of the workspace ([`checksum`] only calls it).
//!
//! Contract (as smoltcp's `wire`): parsing never panics on any input and returns [`Error`] for
//! anything malformed; after `check_len` no getter of [`Packet`] or [`GroupRecordPacket`]
//! panics (fields a message may lack are `Option`s); [`Message::emit`] never panics on a buffer
//! of exactly [`Message::buffer_len`] bytes.
//!
//! Choices:
//! - A query of 9 to 11 octets is malformed (RFC 3376 §7.1: "MUST be silently ignored").
//! - Octets beyond the described fields of a v3 query are covered by the checksum and otherwise
//!   ignored (RFC 3376 §4.1.10); the same goes for v1/v2 messages longer than 8 octets (RFC 2236
//!   §2.5), and the octets after a v3 report's last record (RFC 3376 §4.2.11). Aux data of
//!   group records is skipped.
//! - Unknown message types parse as [`Message::Unknown`] (RFC 2236 §2.1: ignored, not an error);
//!   unknown group record types parse and are kept (RFC 3376 §4.2.12 says to ignore them).
//! - IPv4: fragments are rejected (IGMP messages are never fragmented); the header checksum must
//!   be right; bytes after the IP total length (Ethernet padding) are ignored.

use std::fmt;
use std::net::Ipv4Addr;
use std::time::Duration;

use smoltcp::wire::{IpProtocol, Ipv4Packet, IPV4_HEADER_LEN};

/// The all-systems group, 224.0.0.1: general queries go here; it is never reported.
pub const ALL_SYSTEMS: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 1);
/// The all-routers group, 224.0.0.2: IGMPv2 Leave Group messages go here (RFC 2236 §3).
pub const ALL_ROUTERS: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 2);
/// The all-IGMPv3-capable-routers group, 224.0.0.22: v3 reports go here (RFC 3376 §4.2.14).
pub const ALL_V3_ROUTERS: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 22);

/// The IP protocol number of IGMP.
pub const PROTOCOL_IGMP: u8 = 2;
/// The Router Alert option as we send it (RFC 2113 §2.1: type 148, length 4, value 0).
pub const ROUTER_ALERT: [u8; 4] = [0x94, 0x04, 0x00, 0x00];
/// The length of the IPv4 header we emit: 20 octets plus the Router Alert option.
pub const IP_HEADER_LEN: usize = 24;
/// The TOS octet we emit (internetwork control, as Linux sends IGMP).
pub const TOS_INTERNETWORK_CONTROL: u8 = 0xc0;

/// IGMP message type codes (RFC 3376 §4, RFC 2236 §2.1, RFC 1112 Appendix I).
pub mod msg_type {
    /// Membership Query (all versions).
    pub const QUERY: u8 = 0x11;
    /// Version 1 Membership Report.
    pub const V1_REPORT: u8 = 0x12;
    /// Version 2 Membership Report.
    pub const V2_REPORT: u8 = 0x16;
    /// Version 2 Leave Group.
    pub const LEAVE: u8 = 0x17;
    /// Version 3 Membership Report.
    pub const V3_REPORT: u8 = 0x22;
}

/// Declares a one-octet code-point enum: a variant per known code and `Unknown(u8)` for every
/// other, with `From` both ways, so any octet converts and converts back (the shape of
/// smoltcp's `enum_with_unknown!`, written for this crate).
macro_rules! code_points {
    (
        $(#[$attr:meta])*
        pub enum $name:ident {
            $( $(#[$vattr:meta])* $variant:ident = $code:expr, )+
        }
    ) => {
        $(#[$attr])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum $name {
            $( $(#[$vattr])* $variant, )+
            /// A code with no variant of its own, kept as it is.
            Unknown(u8),
        }

        impl From<u8> for $name {
            fn from(code: u8) -> $name {
                $( if code == $code { return $name::$variant; } )+
                $name::Unknown(code)
            }
        }

        impl From<$name> for u8 {
            fn from(value: $name) -> u8 {
                match value {
                    $( $name::$variant => $code, )+
                    $name::Unknown(code) => code,
                }
            }
        }
    };
}

code_points! {
    /// The Type octet of an IGMP message (RFC 3376 §4, RFC 2236 §2.1, RFC 1112 Appendix I).
    /// Unknown types still parse as a [`Packet`] and print; [`Message::parse`] keeps them as
    /// [`Message::Unknown`] (RFC 2236 §2.1: ignored, not an error).
    pub enum MessageType {
        /// Membership Query, any version (0x11).
        MembershipQuery = msg_type::QUERY,
        /// Version 1 Membership Report (0x12).
        V1MembershipReport = msg_type::V1_REPORT,
        /// Version 2 Membership Report (0x16).
        V2MembershipReport = msg_type::V2_REPORT,
        /// Version 2 Leave Group (0x17).
        LeaveGroup = msg_type::LEAVE,
        /// Version 3 Membership Report (0x22).
        V3MembershipReport = msg_type::V3_REPORT,
    }
}

impl fmt::Display for MessageType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MessageType::MembershipQuery => f.write_str("membership query"),
            MessageType::V1MembershipReport => f.write_str("version 1 membership report"),
            MessageType::V2MembershipReport => f.write_str("version 2 membership report"),
            MessageType::LeaveGroup => f.write_str("leave group"),
            MessageType::V3MembershipReport => f.write_str("version 3 membership report"),
            MessageType::Unknown(code) => write!(f, "unknown type {code:#04x}"),
        }
    }
}

/// Why a packet did not parse.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    /// Shorter than its fixed fields or its own length fields say.
    Truncated,
    /// The IGMP or IPv4 header checksum is wrong.
    Checksum,
    /// A length that no message of this type may have (e.g. a 10-octet query).
    Length,
    /// Not IPv4, a bad IHL or total length, or a malformed IP option.
    IpHeader,
    /// A fragment: IGMP messages are never fragmented.
    Fragment,
    /// The IP protocol is not IGMP.
    NotIgmp,
    /// A group field that is neither 0.0.0.0 (where allowed) nor in 224.0.0.0/4.
    Group,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = match self {
            Error::Truncated => "truncated message",
            Error::Checksum => "bad checksum",
            Error::Length => "invalid message length",
            Error::IpHeader => "malformed IPv4 header",
            Error::Fragment => "IPv4 fragment",
            Error::NotIgmp => "not an IGMP datagram",
            Error::Group => "invalid group address",
        };
        f.write_str(text)
    }
}

impl std::error::Error for Error {}

/// The Internet checksum (RFC 1071) of `data`: smoltcp's `wire::checksum`, complemented (0 over
/// a block whose checksum field is right).
pub fn checksum(data: &[u8]) -> u16 {
    !smoltcp::wire::checksum::data(data)
}

mod field {
    #![allow(non_snake_case)]

    pub(super) type Field = core::ops::Range<usize>;

    pub(super) const TYPE: usize = 0;
    /// Max Resp Code (queries); reserved in reports and leaves.
    pub(super) const MAX_RESP_CODE: usize = 1;
    pub(super) const CHECKSUM: Field = 2..4;
    /// Group Address (queries, v1/v2 reports, leaves).
    pub(super) const GROUP_ADDRESS: Field = 4..8;
    /// v3 report: Number of Group Records (after two reserved octets).
    pub(super) const NUMBER_OF_RECORDS: Field = 6..8;
    /// v3 report: the group records.
    pub(super) const RECORDS: usize = 8;
    /// v3 query: Resv (4 bits), S (1), QRV (3).
    pub(super) const S_QRV: usize = 8;
    /// v3 query: Querier's Query Interval Code.
    pub(super) const QQIC: usize = 9;
    /// v3 query: Number of Sources.
    pub(super) const NUMBER_OF_SOURCES: Field = 10..12;

    /// v3 query: Source Address `i`.
    pub(super) const fn SOURCE_ADDRESS(i: usize) -> Field {
        NUMBER_OF_SOURCES.end + 4 * i..NUMBER_OF_SOURCES.end + 4 * (i + 1)
    }

    /// Fields of one group record (RFC 3376 §4.2.4), from the record's start.
    pub(super) mod record {
        use super::Field;

        pub(in super::super) const RECORD_TYPE: usize = 0;
        /// Aux Data Len, in 32-bit words.
        pub(in super::super) const AUX_DATA_LEN: usize = 1;
        pub(in super::super) const NUMBER_OF_SOURCES: Field = 2..4;
        pub(in super::super) const MULTICAST_ADDRESS: Field = 4..8;

        /// Source Address `i`.
        pub(in super::super) const fn SOURCE_ADDRESS(i: usize) -> Field {
            MULTICAST_ADDRESS.end + 4 * i..MULTICAST_ADDRESS.end + 4 * (i + 1)
        }
    }
}

/// The fixed part every IGMP message has: Type, Max Resp Code, Checksum, Group Address.
pub const HEADER_LEN: usize = field::GROUP_ADDRESS.end;
/// The fixed part of an IGMPv3 query (before its source addresses).
pub const V3_QUERY_HEADER_LEN: usize = field::NUMBER_OF_SOURCES.end;
/// The fixed part of a group record (before its source addresses and aux data).
pub const RECORD_HEADER_LEN: usize = field::record::MULTICAST_ADDRESS.end;

fn ipv4_at(data: &[u8], at: core::ops::Range<usize>) -> Option<Ipv4Addr> {
    let o: [u8; 4] = data.get(at)?.try_into().ok()?;
    Some(Ipv4Addr::from(o))
}

fn u16_in(data: &[u8], at: core::ops::Range<usize>) -> u16 {
    u16::from_be_bytes([data[at.start], data[at.start + 1]])
}

/// A view of an IGMP message (the IP payload) over any buffer: v1, v2 and v3 messages
/// (RFC 1112 Appendix I, RFC 2236 §2, RFC 3376 §4.1 and §4.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// A view over `buffer` without checking its length.
    pub const fn new_unchecked(buffer: T) -> Packet<T> {
        Packet { buffer }
    }

    /// A view over `buffer`, checked with [`check_len`](Packet::check_len).
    pub fn new_checked(buffer: T) -> Result<Packet<T>, Error> {
        let packet = Packet::new_unchecked(buffer);
        packet.check_len()?;
        Ok(packet)
    }

    /// Checks that no getter will panic: the eight fixed octets are there, and a query longer
    /// than eight octets is a whole v3 query — `Length` for 9 to 11 octets (RFC 3376 §7.1),
    /// `Truncated` when its Number of Sources says more than is there.
    pub fn check_len(&self) -> Result<(), Error> {
        let len = self.buffer.as_ref().len();
        if len < HEADER_LEN {
            return Err(Error::Truncated);
        }
        if self.msg_type() != MessageType::MembershipQuery || len == HEADER_LEN {
            return Ok(());
        }
        if len < V3_QUERY_HEADER_LEN {
            return Err(Error::Length);
        }
        let n = usize::from(u16_in(self.buffer.as_ref(), field::NUMBER_OF_SOURCES));
        if len < field::SOURCE_ADDRESS(n).start {
            return Err(Error::Truncated);
        }
        Ok(())
    }

    /// The buffer back.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// The Type field.
    pub fn msg_type(&self) -> MessageType {
        MessageType::from(self.buffer.as_ref()[field::TYPE])
    }

    /// The Max Resp Code field (v2: Max Response Time; v1 queries and all reports: 0).
    pub fn max_resp_code(&self) -> u8 {
        self.buffer.as_ref()[field::MAX_RESP_CODE]
    }

    /// The Checksum field.
    pub fn checksum(&self) -> u16 {
        u16_in(self.buffer.as_ref(), field::CHECKSUM)
    }

    /// The Group Address field (reserved in a v3 report).
    pub fn group_addr(&self) -> Ipv4Addr {
        ipv4_at(self.buffer.as_ref(), field::GROUP_ADDRESS).unwrap_or(Ipv4Addr::UNSPECIFIED)
    }

    /// Whether this is an IGMPv3 query: a query of twelve octets or more (RFC 3376 §7.1).
    pub fn is_v3_query(&self) -> bool {
        self.msg_type() == MessageType::MembershipQuery
            && self.buffer.as_ref().len() >= V3_QUERY_HEADER_LEN
    }

    fn v3_query(&self) -> Option<&[u8]> {
        self.is_v3_query().then(|| self.buffer.as_ref())
    }

    /// A v3 query's S Flag (suppress router-side processing); `None` for any other message.
    pub fn s_flag(&self) -> Option<bool> {
        self.v3_query().map(|d| d[field::S_QRV] & 0x08 != 0)
    }

    /// A v3 query's Querier's Robustness Variable; `None` for any other message.
    pub fn qrv(&self) -> Option<u8> {
        self.v3_query().map(|d| d[field::S_QRV] & 0x07)
    }

    /// A v3 query's Querier's Query Interval Code; `None` for any other message.
    pub fn qqic(&self) -> Option<u8> {
        self.v3_query().map(|d| d[field::QQIC])
    }

    /// A v3 query's Number of Sources; `None` for any other message.
    pub fn number_of_sources(&self) -> Option<u16> {
        self.v3_query().map(|d| u16_in(d, field::NUMBER_OF_SOURCES))
    }

    /// A v3 query's Source Address `i`; `None` for any other message or past the octets there.
    pub fn source_addr(&self, i: usize) -> Option<Ipv4Addr> {
        ipv4_at(self.v3_query()?, field::SOURCE_ADDRESS(i))
    }

    /// A v3 report's Number of Group Records (octets 6 and 7 of any message).
    pub fn number_of_records(&self) -> u16 {
        u16_in(self.buffer.as_ref(), field::NUMBER_OF_RECORDS)
    }

    /// Whether the checksum over the whole message is right (RFC 1071).
    pub fn verify_checksum(&self) -> bool {
        smoltcp::wire::checksum::data(self.buffer.as_ref()) == !0
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> Packet<&'a T> {
    /// A v3 report's group records: the octets after the eight fixed ones.
    pub fn records(&self) -> &'a [u8] {
        &self.buffer.as_ref()[field::RECORDS..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Sets the Type field.
    pub fn set_msg_type(&mut self, value: MessageType) {
        self.buffer.as_mut()[field::TYPE] = value.into();
    }

    /// Sets the Max Resp Code field.
    pub fn set_max_resp_code(&mut self, value: u8) {
        self.buffer.as_mut()[field::MAX_RESP_CODE] = value;
    }

    /// Sets the Checksum field.
    pub fn set_checksum(&mut self, value: u16) {
        self.buffer.as_mut()[field::CHECKSUM].copy_from_slice(&value.to_be_bytes());
    }

    /// Sets the Group Address field.
    pub fn set_group_addr(&mut self, value: Ipv4Addr) {
        self.buffer.as_mut()[field::GROUP_ADDRESS].copy_from_slice(&value.octets());
    }

    /// Sets a v3 query's S Flag.
    pub fn set_s_flag(&mut self, value: bool) {
        let b = &mut self.buffer.as_mut()[field::S_QRV];
        *b = (*b & !0x08) | (u8::from(value) << 3);
    }

    /// Sets a v3 query's QRV (its low three bits).
    pub fn set_qrv(&mut self, value: u8) {
        let b = &mut self.buffer.as_mut()[field::S_QRV];
        *b = (*b & !0x07) | (value & 0x07);
    }

    /// Sets a v3 query's QQIC.
    pub fn set_qqic(&mut self, value: u8) {
        self.buffer.as_mut()[field::QQIC] = value;
    }

    /// Sets a v3 query's Number of Sources.
    pub fn set_number_of_sources(&mut self, value: u16) {
        self.buffer.as_mut()[field::NUMBER_OF_SOURCES].copy_from_slice(&value.to_be_bytes());
    }

    /// Sets a v3 query's Source Address `i`.
    pub fn set_source_addr(&mut self, i: usize, value: Ipv4Addr) {
        self.buffer.as_mut()[field::SOURCE_ADDRESS(i)].copy_from_slice(&value.octets());
    }

    /// Sets a v3 report's Number of Group Records.
    pub fn set_number_of_records(&mut self, value: u16) {
        self.buffer.as_mut()[field::NUMBER_OF_RECORDS].copy_from_slice(&value.to_be_bytes());
    }

    /// A v3 report's group records, writable.
    pub fn records_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[field::RECORDS..]
    }

    /// Computes the checksum over the whole message and writes it (RFC 1071).
    pub fn fill_checksum(&mut self) {
        self.set_checksum(0);
        let sum = !smoltcp::wire::checksum::data(self.buffer.as_ref());
        self.set_checksum(sum);
    }
}

/// A view of one group record of a v3 report (RFC 3376 §4.2.4), from its first octet; the
/// buffer may run on past the record (the records after it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupRecordPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> GroupRecordPacket<T> {
    /// A view over `buffer` without checking its length.
    pub const fn new_unchecked(buffer: T) -> GroupRecordPacket<T> {
        GroupRecordPacket { buffer }
    }

    /// A view over `buffer`, checked with [`check_len`](GroupRecordPacket::check_len).
    pub fn new_checked(buffer: T) -> Result<GroupRecordPacket<T>, Error> {
        let record = GroupRecordPacket::new_unchecked(buffer);
        record.check_len()?;
        Ok(record)
    }

    /// Checks that the record's fixed octets, sources and aux data are all there.
    pub fn check_len(&self) -> Result<(), Error> {
        let len = self.buffer.as_ref().len();
        if len < RECORD_HEADER_LEN || len < self.record_len() {
            Err(Error::Truncated)
        } else {
            Ok(())
        }
    }

    /// The buffer back.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// The octets this record takes, by its own fields (0 when its fixed octets are missing).
    pub fn record_len(&self) -> usize {
        let d = self.buffer.as_ref();
        if d.len() < RECORD_HEADER_LEN {
            return 0;
        }
        RECORD_HEADER_LEN
            + 4 * usize::from(u16_in(d, field::record::NUMBER_OF_SOURCES))
            + 4 * usize::from(d[field::record::AUX_DATA_LEN])
    }

    /// The Record Type field.
    pub fn record_type(&self) -> RecordType {
        RecordType(self.buffer.as_ref()[field::record::RECORD_TYPE])
    }

    /// The Aux Data Len field, in 32-bit words.
    pub fn aux_data_len(&self) -> u8 {
        self.buffer.as_ref()[field::record::AUX_DATA_LEN]
    }

    /// The Number of Sources field.
    pub fn number_of_sources(&self) -> u16 {
        u16_in(self.buffer.as_ref(), field::record::NUMBER_OF_SOURCES)
    }

    /// The Multicast Address field.
    pub fn multicast_addr(&self) -> Ipv4Addr {
        ipv4_at(self.buffer.as_ref(), field::record::MULTICAST_ADDRESS)
            .unwrap_or(Ipv4Addr::UNSPECIFIED)
    }

    /// Source Address `i`; `None` past the octets there.
    pub fn source_addr(&self, i: usize) -> Option<Ipv4Addr> {
        ipv4_at(self.buffer.as_ref(), field::record::SOURCE_ADDRESS(i))
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> GroupRecordPacket<T> {
    /// Sets the Record Type field.
    pub fn set_record_type(&mut self, value: RecordType) {
        self.buffer.as_mut()[field::record::RECORD_TYPE] = value.0;
    }

    /// Sets the Aux Data Len field.
    pub fn set_aux_data_len(&mut self, value: u8) {
        self.buffer.as_mut()[field::record::AUX_DATA_LEN] = value;
    }

    /// Sets the Number of Sources field.
    pub fn set_number_of_sources(&mut self, value: u16) {
        self.buffer.as_mut()[field::record::NUMBER_OF_SOURCES]
            .copy_from_slice(&value.to_be_bytes());
    }

    /// Sets the Multicast Address field.
    pub fn set_multicast_addr(&mut self, value: Ipv4Addr) {
        self.buffer.as_mut()[field::record::MULTICAST_ADDRESS].copy_from_slice(&value.octets());
    }

    /// Sets Source Address `i`.
    pub fn set_source_addr(&mut self, i: usize, value: Ipv4Addr) {
        self.buffer.as_mut()[field::record::SOURCE_ADDRESS(i)].copy_from_slice(&value.octets());
    }
}

/// Decodes a Max Resp Code (units of 1/10 s) or a QQIC (seconds): values below 128 are literal,
/// others are `1 | exp(3) | mant(4)` meaning `(mant | 0x10) << (exp + 3)` (RFC 3376 §4.1.1,
/// §4.1.7).
pub fn decode_float(code: u8) -> u32 {
    if code < 128 {
        u32::from(code)
    } else {
        let mant = u32::from(code & 0x0f);
        let exp = u32::from((code >> 4) & 0x07);
        (mant | 0x10) << (exp + 3)
    }
}

/// Encodes `value` as a Max Resp Code or QQIC: exact below 128, otherwise the largest
/// representable value not above `value` (at most 31744).
pub fn encode_float(value: u32) -> u8 {
    if value < 128 {
        return value as u8;
    }
    let mut best = 0x80u8;
    for code in 0x80u8..=0xff {
        if decode_float(code) <= value {
            best = code;
        }
    }
    best
}

/// A Membership Query, any version (RFC 3376 §4.1; RFC 2236 §2; RFC 1112 Appendix I).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Query {
    /// Max Resp Code (v2: Max Response Time; v1: unused, 0).
    pub max_resp_code: u8,
    /// Group Address: 0.0.0.0 for a general query.
    pub group: Ipv4Addr,
    /// The IGMPv3 fields; `None` for an 8-octet (v1 or v2) query.
    pub v3: Option<QueryV3>,
}

/// The fields only an IGMPv3 query has (RFC 3376 §4.1.5 to §4.1.9).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueryV3 {
    /// S Flag: suppress router-side processing (hosts ignore it).
    pub s_flag: bool,
    /// Querier's Robustness Variable (0 to 7; 0 = unset).
    pub qrv: u8,
    /// Querier's Query Interval Code.
    pub qqic: u8,
    /// Source addresses (group-and-source-specific query when non-empty).
    pub sources: Vec<Ipv4Addr>,
}

impl Query {
    /// The query's IGMP version by RFC 3376 §7.1: 8 octets with Max Resp Code 0 is v1, 8 octets
    /// otherwise is v2, 12 or more is v3.
    pub fn version(&self) -> super::Version {
        match (&self.v3, self.max_resp_code) {
            (Some(_), _) => super::Version::V3,
            (None, 0) => super::Version::V1,
            (None, _) => super::Version::V2,
        }
    }

    /// The Max Response Time: 10 s for a v1 query (RFC 2236 §4), the code in tenths of a second
    /// for v2, the decoded float for v3.
    pub fn max_resp_time(&self) -> Duration {
        match self.version() {
            super::Version::V1 => Duration::from_secs(10),
            super::Version::V2 => Duration::from_millis(100 * u64::from(self.max_resp_code)),
            super::Version::V3 => {
                Duration::from_millis(100 * u64::from(decode_float(self.max_resp_code)))
            }
        }
    }

    /// The Querier's Query Interval, if the query says (v3 with a non-zero QQIC).
    pub fn query_interval(&self) -> Option<Duration> {
        let v3 = self.v3.as_ref()?;
        match decode_float(v3.qqic) {
            0 => None,
            secs => Some(Duration::from_secs(u64::from(secs))),
        }
    }

    /// Whether this is a general query (group 0.0.0.0).
    pub fn is_general(&self) -> bool {
        self.group.is_unspecified()
    }

    /// The queried sources (empty for anything but a group-and-source-specific query).
    pub fn sources(&self) -> &[Ipv4Addr] {
        self.v3.as_ref().map_or(&[], |v3| &v3.sources)
    }
}

/// A group record type code (RFC 3376 §4.2.12); unknown values are kept as they are.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RecordType(pub u8);

impl RecordType {
    /// MODE_IS_INCLUDE (current state).
    pub const MODE_IS_INCLUDE: RecordType = RecordType(1);
    /// MODE_IS_EXCLUDE (current state).
    pub const MODE_IS_EXCLUDE: RecordType = RecordType(2);
    /// CHANGE_TO_INCLUDE_MODE (filter-mode change).
    pub const CHANGE_TO_INCLUDE: RecordType = RecordType(3);
    /// CHANGE_TO_EXCLUDE_MODE (filter-mode change).
    pub const CHANGE_TO_EXCLUDE: RecordType = RecordType(4);
    /// ALLOW_NEW_SOURCES (source-list change).
    pub const ALLOW_NEW_SOURCES: RecordType = RecordType(5);
    /// BLOCK_OLD_SOURCES (source-list change).
    pub const BLOCK_OLD_SOURCES: RecordType = RecordType(6);

    /// Whether a record of this type that is too long is truncated rather than split
    /// (RFC 3376 §4.2.16: MODE_IS_EXCLUDE and CHANGE_TO_EXCLUDE_MODE).
    pub fn truncates(self) -> bool {
        self == RecordType::MODE_IS_EXCLUDE || self == RecordType::CHANGE_TO_EXCLUDE
    }
}

/// One group record of a v3 report (RFC 3376 §4.2.4). Aux data is skipped when parsing and
/// never emitted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupRecord {
    /// Record Type.
    pub record_type: RecordType,
    /// Multicast Address.
    pub group: Ipv4Addr,
    /// Source Addresses.
    pub sources: Vec<Ipv4Addr>,
}

impl GroupRecord {
    /// Octets this record takes when emitted.
    pub fn buffer_len(&self) -> usize {
        8 + 4 * self.sources.len()
    }
}

/// One IGMP message, any version.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Message {
    /// Membership Query (type 0x11).
    Query(Query),
    /// Version 1 Membership Report (0x12).
    V1Report {
        /// Group Address.
        group: Ipv4Addr,
    },
    /// Version 2 Membership Report (0x16).
    V2Report {
        /// Group Address.
        group: Ipv4Addr,
    },
    /// Version 2 Leave Group (0x17).
    Leave {
        /// Group Address.
        group: Ipv4Addr,
    },
    /// Version 3 Membership Report (0x22).
    V3Report {
        /// The group records.
        records: Vec<GroupRecord>,
    },
    /// A type this codec does not know (checksum verified, otherwise uninterpreted).
    Unknown {
        /// The Type octet.
        msg_type: u8,
    },
}

/// Whether `a` is in 224.0.0.0/4.
pub fn is_multicast(a: Ipv4Addr) -> bool {
    a.is_multicast()
}

fn group_or_zero(a: Ipv4Addr) -> Result<Ipv4Addr, Error> {
    if a.is_unspecified() || a.is_multicast() {
        Ok(a)
    } else {
        Err(Error::Group)
    }
}

impl Message {
    /// Parses an IGMP message (the IP payload), verifying its checksum over all of `igmp`.
    pub fn parse(igmp: &[u8]) -> Result<Message, Error> {
        let packet = Packet::new_unchecked(igmp);
        if igmp.len() < HEADER_LEN {
            return Err(Error::Truncated);
        }
        if !packet.verify_checksum() {
            return Err(Error::Checksum);
        }
        Message::parse_packet(&packet)
    }

    /// Reads the message a [`Packet`] holds (its checksum is not looked at: see
    /// [`Message::parse`]). The group is checked before the rest of the length, so a malformed
    /// message gets the same error either way.
    pub fn parse_packet<T: AsRef<[u8]> + ?Sized>(packet: &Packet<&T>) -> Result<Message, Error> {
        if packet.buffer.as_ref().len() < HEADER_LEN {
            return Err(Error::Truncated);
        }
        let group = packet.group_addr();
        match packet.msg_type() {
            MessageType::MembershipQuery => {
                // RFC 3376 §7.1: the length tells the versions apart.
                let group = group_or_zero(group)?;
                packet.check_len()?;
                let v3 = match (packet.s_flag(), packet.qrv(), packet.qqic()) {
                    (Some(s_flag), Some(qrv), Some(qqic)) => {
                        let n = usize::from(packet.number_of_sources().unwrap_or(0));
                        let sources = (0..n)
                            .map(|i| packet.source_addr(i).ok_or(Error::Truncated))
                            .collect::<Result<_, _>>()?;
                        Some(QueryV3 {
                            s_flag,
                            qrv,
                            qqic,
                            sources,
                        })
                    }
                    _ => None,
                };
                Ok(Message::Query(Query {
                    max_resp_code: packet.max_resp_code(),
                    group,
                    v3,
                }))
            }
            MessageType::V1MembershipReport => Ok(Message::V1Report {
                group: group_or_zero(group)?,
            }),
            MessageType::V2MembershipReport => Ok(Message::V2Report {
                group: group_or_zero(group)?,
            }),
            MessageType::LeaveGroup => Ok(Message::Leave {
                group: group_or_zero(group)?,
            }),
            MessageType::V3MembershipReport => {
                let n = usize::from(packet.number_of_records());
                let data = packet.records();
                let mut at = 0;
                let mut records = Vec::with_capacity(n.min(data.len() / RECORD_HEADER_LEN));
                for _ in 0..n {
                    let record = GroupRecordPacket::new_unchecked(&data[at..]);
                    if data.len() - at < RECORD_HEADER_LEN {
                        return Err(Error::Truncated);
                    }
                    let group = record.multicast_addr();
                    if !group.is_multicast() {
                        return Err(Error::Group);
                    }
                    record.check_len()?;
                    let sources = (0..usize::from(record.number_of_sources()))
                        .map(|i| record.source_addr(i).ok_or(Error::Truncated))
                        .collect::<Result<_, _>>()?;
                    // Aux data is skipped (RFC 3376 §4.2.10).
                    records.push(GroupRecord {
                        record_type: record.record_type(),
                        group,
                        sources,
                    });
                    at += record.record_len();
                }
                // Octets after the last record: checksummed, otherwise ignored (RFC 3376 §4.2.11).
                Ok(Message::V3Report { records })
            }
            MessageType::Unknown(code) => Ok(Message::Unknown { msg_type: code }),
        }
    }

    /// Octets [`emit`](Message::emit) writes.
    pub fn buffer_len(&self) -> usize {
        match self {
            Message::Query(Query { v3: Some(v3), .. }) => 12 + 4 * v3.sources.len(),
            Message::V3Report { records } => {
                8 + records.iter().map(GroupRecord::buffer_len).sum::<usize>()
            }
            _ => 8,
        }
    }

    /// Writes the message with its checksum into `buf`, which must hold at least
    /// [`buffer_len`](Message::buffer_len) octets; returns the octets written. Source and record
    /// counts above 65535 are truncated to fit the 16-bit count fields.
    pub fn emit(&self, buf: &mut [u8]) -> usize {
        let len = self.buffer_len();
        let Some(buf) = buf.get_mut(..len) else {
            return 0;
        };
        buf.fill(0);
        let mut packet = Packet::new_unchecked(buf);
        match self {
            Message::Query(q) => {
                packet.set_msg_type(MessageType::MembershipQuery);
                packet.set_max_resp_code(q.max_resp_code);
                packet.set_group_addr(q.group);
                if let Some(v3) = &q.v3 {
                    packet.set_s_flag(v3.s_flag);
                    packet.set_qrv(v3.qrv);
                    packet.set_qqic(v3.qqic);
                    let n = v3.sources.len().min(usize::from(u16::MAX));
                    packet.set_number_of_sources(n as u16);
                    for (i, s) in v3.sources.iter().take(n).enumerate() {
                        packet.set_source_addr(i, *s);
                    }
                }
            }
            Message::V1Report { group } => {
                packet.set_msg_type(MessageType::V1MembershipReport);
                packet.set_group_addr(*group);
            }
            Message::V2Report { group } => {
                packet.set_msg_type(MessageType::V2MembershipReport);
                packet.set_group_addr(*group);
            }
            Message::Leave { group } => {
                packet.set_msg_type(MessageType::LeaveGroup);
                packet.set_group_addr(*group);
            }
            Message::V3Report { records } => {
                packet.set_msg_type(MessageType::V3MembershipReport);
                let n = records.len().min(usize::from(u16::MAX));
                packet.set_number_of_records(n as u16);
                let mut at = 0;
                for r in records.iter().take(n) {
                    let mut record =
                        GroupRecordPacket::new_unchecked(&mut packet.records_mut()[at..]);
                    record.set_record_type(r.record_type);
                    let sn = r.sources.len().min(usize::from(u16::MAX));
                    record.set_number_of_sources(sn as u16);
                    record.set_multicast_addr(r.group);
                    for (i, s) in r.sources.iter().take(sn).enumerate() {
                        record.set_source_addr(i, *s);
                    }
                    at += r.buffer_len();
                }
            }
            Message::Unknown { msg_type } => packet.set_msg_type(MessageType::from(*msg_type)),
        }
        packet.fill_checksum();
        len
    }

    /// The message as a freshly allocated buffer.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut buf = vec![0; self.buffer_len()];
        self.emit(&mut buf);
        buf
    }
}

/// What IGMP processing needs from a received IPv4 header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ipv4Info {
    /// Source address.
    pub src: Ipv4Addr,
    /// Destination address.
    pub dst: Ipv4Addr,
    /// Time to live.
    pub ttl: u8,
    /// Whether the header carries a Router Alert option (RFC 2113).
    pub router_alert: bool,
}

/// Parses an IPv4 datagram carrying IGMP: checks version, IHL, total length, header checksum,
/// options, fragmentation and protocol; returns the header facts and the IGMP message octets
/// (up to the IP total length).
pub fn parse_ipv4(packet: &[u8]) -> Result<(Ipv4Info, &[u8]), Error> {
    if packet.len() < IPV4_HEADER_LEN {
        return Err(Error::Truncated);
    }
    let ip = Ipv4Packet::new_unchecked(packet);
    let ihl = usize::from(ip.header_len());
    let total = usize::from(ip.total_len());
    if ip.version() != 4 || ihl < IPV4_HEADER_LEN || total < ihl {
        return Err(Error::IpHeader);
    }
    if total > packet.len() {
        return Err(Error::Truncated);
    }
    // Ipv4Packet::check_len holds from here: every getter below is safe.
    if !ip.verify_checksum() {
        return Err(Error::Checksum);
    }
    if ip.more_frags() || ip.frag_offset() != 0 {
        return Err(Error::Fragment);
    }
    if ip.next_header() != IpProtocol::Igmp {
        return Err(Error::NotIgmp);
    }
    // RFC 791 §3.1 options: EOL (0), NOP (1), else type, length (>= 2), value.
    let mut router_alert = false;
    let mut opts = &packet[IPV4_HEADER_LEN..ihl];
    while let Some(&kind) = opts.first() {
        match kind {
            0 => break,
            1 => opts = &opts[1..],
            _ => {
                let len = usize::from(*opts.get(1).ok_or(Error::IpHeader)?);
                if len < 2 || len > opts.len() {
                    return Err(Error::IpHeader);
                }
                if kind == ROUTER_ALERT[0] && len == 4 {
                    router_alert = true;
                }
                opts = &opts[len..];
            }
        }
    }
    let info = Ipv4Info {
        src: ip.src_addr(),
        dst: ip.dst_addr(),
        ttl: ip.hop_limit(),
        router_alert,
    };
    Ok((info, ip.payload()))
}

/// Builds the IPv4 datagram for an IGMP message: IHL 6 with the Router Alert option
/// (RFC 2113; RFC 3376 §4, RFC 2236 §2), TOS 0xc0, TTL 1, DF clear, the given identification,
/// header checksum filled.
pub fn build_ipv4(src: Ipv4Addr, dst: Ipv4Addr, ident: u16, igmp: &[u8]) -> Vec<u8> {
    let total = IP_HEADER_LEN + igmp.len();
    let mut p = vec![0u8; total];
    p[IPV4_HEADER_LEN..IP_HEADER_LEN].copy_from_slice(&ROUTER_ALERT);
    p[IP_HEADER_LEN..].copy_from_slice(igmp);
    let mut ip = Ipv4Packet::new_unchecked(&mut p[..]);
    ip.set_version(4);
    ip.set_header_len(IP_HEADER_LEN as u8);
    ip.set_dscp(TOS_INTERNETWORK_CONTROL >> 2);
    ip.set_ecn(TOS_INTERNETWORK_CONTROL & 0x03);
    ip.set_total_len(total.min(usize::from(u16::MAX)) as u16);
    ip.set_ident(ident);
    // Flags and fragment offset stay 0: DF clear, never fragmented.
    ip.set_hop_limit(1); // TTL 1: link-local (RFC 3376 §4, RFC 2236 §2)
    ip.set_next_header(IpProtocol::Igmp);
    ip.set_src_addr(src);
    ip.set_dst_addr(dst);
    ip.fill_checksum();
    p
}

/// Packs group records into as few report payloads as fit `max_payload` octets of IGMP each
/// (RFC 3376 §4.2.16): records are never split across reports unless one alone does not fit;
/// then a MODE_IS_EXCLUDE or CHANGE_TO_EXCLUDE record is truncated to the sources that fit and
/// any other type is split into several records of the same type.
pub fn pack_records(records: Vec<GroupRecord>, max_payload: usize) -> Vec<Vec<GroupRecord>> {
    // Room for the report header and at least one source in any record.
    let room = max_payload.max(8 + 8 + 4) - 8;
    let per_record_sources = (room - 8) / 4;
    let mut packets: Vec<Vec<GroupRecord>> = Vec::new();
    let mut current: Vec<GroupRecord> = Vec::new();
    let mut used = 0;
    let mut push =
        |r: GroupRecord, packets: &mut Vec<Vec<GroupRecord>>, current: &mut Vec<GroupRecord>| {
            if used + r.buffer_len() > room || current.len() == usize::from(u16::MAX) {
                packets.push(std::mem::take(current));
                used = 0;
            }
            used += r.buffer_len();
            current.push(r);
        };
    for mut r in records {
        if r.buffer_len() <= room {
            push(r, &mut packets, &mut current);
        } else if r.record_type.truncates() {
            r.sources.truncate(per_record_sources);
            push(r, &mut packets, &mut current);
        } else {
            for chunk in r.sources.chunks(per_record_sources) {
                let part = GroupRecord {
                    record_type: r.record_type,
                    group: r.group,
                    sources: chunk.to_vec(),
                };
                push(part, &mut packets, &mut current);
            }
        }
    }
    if !current.is_empty() {
        packets.push(current);
    }
    packets
}

#[cfg(test)]
mod test {
    use super::*;
    use proptest::prelude::*;

    /// A v3 general query laid out as a Linux bridge querier without an address sends it
    /// (`mcast_querier 1`, IP source 0.0.0.0, DF set, Router Alert): Max Resp Code 100, QRV 2,
    /// QQIC 125. Written by hand from RFC 3376 §4.1, not captured; the IP checksum is filled in
    /// by the test.
    static BRIDGE_QUERY: [u8; 36] = [
        0x46, 0xc0, 0x00, 0x24, 0x00, 0x00, 0x40, 0x00, 0x01, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0xe0, 0x00, 0x00, 0x01, 0x94, 0x04, 0x00, 0x00, 0x11, 0x64, 0xec, 0x1e, 0x00, 0x00,
        0x00, 0x00, 0x02, 0x7d, 0x00, 0x00,
    ];

    fn fixed_ip_checksum(mut p: Vec<u8>) -> Vec<u8> {
        p[10] = 0;
        p[11] = 0;
        let ihl = usize::from(p[0] & 0xf) * 4;
        let s = checksum(&p[..ihl]);
        p[10..12].copy_from_slice(&s.to_be_bytes());
        p
    }

    #[test]
    fn deconstruct_bridge_query() {
        let p = fixed_ip_checksum(BRIDGE_QUERY.to_vec());
        let (info, igmp) = parse_ipv4(&p).unwrap();
        assert_eq!(info.src, Ipv4Addr::UNSPECIFIED);
        assert_eq!(info.dst, ALL_SYSTEMS);
        assert!(info.router_alert);
        assert_eq!(info.ttl, 1);
        let Message::Query(q) = Message::parse(igmp).unwrap() else {
            panic!()
        };
        assert_eq!(q.version(), crate::igmp::Version::V3);
        assert!(q.is_general());
        assert_eq!(q.max_resp_time(), Duration::from_secs(10));
        assert_eq!(q.query_interval(), Some(Duration::from_secs(125)));
        assert_eq!(q.v3.as_ref().unwrap().qrv, 2);
    }

    #[test]
    fn construct_matches_hand_built_sample() {
        let q = Message::Query(Query {
            max_resp_code: 100,
            group: Ipv4Addr::UNSPECIFIED,
            v3: Some(QueryV3 {
                s_flag: false,
                qrv: 2,
                qqic: 125,
                sources: vec![],
            }),
        });
        let igmp = q.to_bytes();
        assert_eq!(&igmp[..], &BRIDGE_QUERY[24..]);
        let p = build_ipv4(Ipv4Addr::UNSPECIFIED, ALL_SYSTEMS, 0, &igmp);
        assert_eq!(p[0], 0x46);
        assert_eq!(p[8], 1);
        assert_eq!(&p[20..24], &ROUTER_ALERT);
        assert_eq!(checksum(&p[..24]), 0);
        assert_eq!(parse_ipv4(&p).unwrap().1, &igmp[..]);
    }

    #[test]
    fn message_type_codes_exhaustive() {
        let known = [
            (0x11, MessageType::MembershipQuery),
            (0x12, MessageType::V1MembershipReport),
            (0x16, MessageType::V2MembershipReport),
            (0x17, MessageType::LeaveGroup),
            (0x22, MessageType::V3MembershipReport),
        ];
        for code in 0..=255u8 {
            let t = MessageType::from(code);
            assert_eq!(u8::from(t), code, "code {code:#04x} round-trips");
            match known.iter().find(|(c, _)| *c == code) {
                Some((_, want)) => assert_eq!(t, *want),
                None => assert_eq!(t, MessageType::Unknown(code)),
            }
            assert!(!t.to_string().is_empty());
        }
        assert_eq!(u8::from(MessageType::MembershipQuery), msg_type::QUERY);
        assert_eq!(MessageType::Unknown(0x30).to_string(), "unknown type 0x30");
    }

    #[test]
    fn packet_deconstruct() {
        // The bridge's v3 general query, field by field.
        let p = Packet::new_checked(&BRIDGE_QUERY[24..]).unwrap();
        assert_eq!(p.msg_type(), MessageType::MembershipQuery);
        assert_eq!(p.max_resp_code(), 100);
        assert_eq!(p.checksum(), 0xec1e);
        assert!(p.verify_checksum());
        assert_eq!(p.group_addr(), Ipv4Addr::UNSPECIFIED);
        assert!(p.is_v3_query());
        assert_eq!(p.s_flag(), Some(false));
        assert_eq!(p.qrv(), Some(2));
        assert_eq!(p.qqic(), Some(125));
        assert_eq!(p.number_of_sources(), Some(0));
        assert_eq!(p.source_addr(0), None);
        // An 8-octet query has none of the v3 fields.
        let v2 = Message::Query(Query {
            max_resp_code: 100,
            group: Ipv4Addr::new(239, 1, 1, 1),
            v3: None,
        })
        .to_bytes();
        let p = Packet::new_checked(&v2[..]).unwrap();
        assert!(!p.is_v3_query());
        assert_eq!((p.qrv(), p.number_of_sources()), (None, None));
        assert_eq!(p.group_addr(), Ipv4Addr::new(239, 1, 1, 1));
    }

    #[test]
    fn packet_construct() {
        let mut buf = [0u8; 12];
        let mut p = Packet::new_unchecked(&mut buf[..]);
        p.set_msg_type(MessageType::MembershipQuery);
        p.set_max_resp_code(100);
        p.set_group_addr(Ipv4Addr::UNSPECIFIED);
        p.set_s_flag(false);
        p.set_qrv(2);
        p.set_qqic(125);
        p.set_number_of_sources(0);
        p.fill_checksum();
        assert_eq!(&buf[..], &BRIDGE_QUERY[24..]);
    }

    #[test]
    fn group_record_view() {
        // MODE_IS_EXCLUDE 239.0.0.1, one aux word, one source, then the next record's octets.
        let bytes = [
            2, 1, 0, 1, 239, 0, 0, 1, 10, 0, 0, 1, 0xaa, 0xbb, 0xcc, 0xdd, 5, 0, 0, 0,
        ];
        let r = GroupRecordPacket::new_checked(&bytes[..]).unwrap();
        assert_eq!(r.record_type(), RecordType::MODE_IS_EXCLUDE);
        assert_eq!(r.aux_data_len(), 1);
        assert_eq!(r.number_of_sources(), 1);
        assert_eq!(r.multicast_addr(), Ipv4Addr::new(239, 0, 0, 1));
        assert_eq!(r.source_addr(0), Some(Ipv4Addr::new(10, 0, 0, 1)));
        assert_eq!(r.record_len(), 16);
        assert_eq!(
            GroupRecordPacket::new_checked(&bytes[..15]),
            Err(Error::Truncated)
        );
        let mut out = [0u8; 16];
        let mut w = GroupRecordPacket::new_unchecked(&mut out[..]);
        w.set_record_type(RecordType::MODE_IS_EXCLUDE);
        w.set_aux_data_len(1);
        w.set_number_of_sources(1);
        w.set_multicast_addr(Ipv4Addr::new(239, 0, 0, 1));
        w.set_source_addr(0, Ipv4Addr::new(10, 0, 0, 1));
        assert_eq!(&out[..12], &bytes[..12]);
    }

    #[test]
    fn query_versions_by_length() {
        let mut v2 = Message::Query(Query {
            max_resp_code: 0,
            group: Ipv4Addr::UNSPECIFIED,
            v3: None,
        })
        .to_bytes();
        let Message::Query(q) = Message::parse(&v2).unwrap() else {
            panic!()
        };
        assert_eq!(q.version(), crate::igmp::Version::V1);
        assert_eq!(q.max_resp_time(), Duration::from_secs(10));
        v2[1] = 50;
        v2[2] = 0;
        v2[3] = 0;
        let s = checksum(&v2);
        v2[2..4].copy_from_slice(&s.to_be_bytes());
        let Message::Query(q) = Message::parse(&v2).unwrap() else {
            panic!()
        };
        assert_eq!(q.version(), crate::igmp::Version::V2);
        assert_eq!(q.max_resp_time(), Duration::from_secs(5));
        // 10 octets: silently ignored (RFC 3376 §7.1).
        let mut ten = v2.clone();
        ten.extend_from_slice(&[0, 0]);
        ten[2] = 0;
        ten[3] = 0;
        let s = checksum(&ten);
        ten[2..4].copy_from_slice(&s.to_be_bytes());
        assert_eq!(Message::parse(&ten), Err(Error::Length));
    }

    #[test]
    fn float_codes_exhaustive() {
        for code in 0..=255u8 {
            assert_eq!(encode_float(decode_float(code)), code, "code {code}");
        }
        assert_eq!(decode_float(0xff), 31744);
        assert_eq!(decode_float(0x80), 128);
        assert_eq!(encode_float(u32::MAX), 0xff);
        assert_eq!(decode_float(encode_float(1000)), 992);
    }

    #[test]
    fn bad_checksum_and_truncation() {
        let mut igmp = BRIDGE_QUERY[24..].to_vec();
        igmp[5] ^= 1;
        assert_eq!(Message::parse(&igmp), Err(Error::Checksum));
        assert_eq!(Message::parse(&igmp[..4]), Err(Error::Truncated));
        let p = fixed_ip_checksum(BRIDGE_QUERY.to_vec());
        assert_eq!(parse_ipv4(&p[..30]), Err(Error::Truncated));
        let mut frag = p.clone();
        frag[6] = 0x20;
        assert_eq!(parse_ipv4(&fixed_ip_checksum(frag)), Err(Error::Fragment));
    }

    #[test]
    fn report_aux_data_and_trailing_octets_are_skipped() {
        let mut igmp = vec![0x22, 0, 0, 0, 0, 0, 0, 2];
        // MODE_IS_EXCLUDE 239.0.0.1, one aux word, one source
        igmp.extend_from_slice(&[
            2, 1, 0, 1, 239, 0, 0, 1, 10, 0, 0, 1, 0xaa, 0xbb, 0xcc, 0xdd,
        ]);
        // ALLOW 239.0.0.2, no sources
        igmp.extend_from_slice(&[5, 0, 0, 0, 239, 0, 0, 2]);
        igmp.extend_from_slice(&[1, 2, 3, 4]); // additional data
        let sum = checksum(&igmp);
        igmp[2..4].copy_from_slice(&sum.to_be_bytes());
        let Message::V3Report { records } = Message::parse(&igmp).unwrap() else {
            panic!()
        };
        assert_eq!(
            records,
            vec![
                GroupRecord {
                    record_type: RecordType::MODE_IS_EXCLUDE,
                    group: Ipv4Addr::new(239, 0, 0, 1),
                    sources: vec![Ipv4Addr::new(10, 0, 0, 1)],
                },
                GroupRecord {
                    record_type: RecordType::ALLOW_NEW_SOURCES,
                    group: Ipv4Addr::new(239, 0, 0, 2),
                    sources: vec![],
                },
            ]
        );
        // A record count beyond the octets present is truncated.
        igmp[7] = 3;
        igmp[2..4].copy_from_slice(&[0, 0]);
        let sum = checksum(&igmp);
        igmp[2..4].copy_from_slice(&sum.to_be_bytes());
        assert_eq!(Message::parse(&igmp), Err(Error::Truncated));
    }

    #[test]
    fn pack_splits_and_truncates() {
        let g = Ipv4Addr::new(232, 1, 1, 1);
        let many: Vec<_> = (0..1000u32)
            .map(|i| Ipv4Addr::from(0x0a00_0000 + i))
            .collect();
        let recs = vec![
            GroupRecord {
                record_type: RecordType::ALLOW_NEW_SOURCES,
                group: g,
                sources: many.clone(),
            },
            GroupRecord {
                record_type: RecordType::CHANGE_TO_EXCLUDE,
                group: g,
                sources: many.clone(),
            },
        ];
        let packets = pack_records(recs, 1500 - 24);
        let mut allowed = 0;
        for p in &packets {
            let m = Message::V3Report { records: p.clone() };
            assert!(m.buffer_len() <= 1476);
            for r in p {
                if r.record_type == RecordType::ALLOW_NEW_SOURCES {
                    allowed += r.sources.len();
                } else {
                    assert_eq!(r.sources.len(), (1476 - 16) / 4);
                }
            }
        }
        assert_eq!(allowed, 1000);
    }

    fn record_strategy() -> impl Strategy<Value = GroupRecord> {
        (
            1u8..=6,
            224u8..240,
            any::<[u8; 3]>(),
            proptest::collection::vec(any::<u32>(), 0..20),
        )
            .prop_map(|(t, a, b, s)| GroupRecord {
                record_type: RecordType(t),
                group: Ipv4Addr::new(a, b[0], b[1], b[2]),
                sources: s.into_iter().map(Ipv4Addr::from).collect(),
            })
    }

    fn group_strategy() -> impl Strategy<Value = Ipv4Addr> {
        prop_oneof![
            Just(Ipv4Addr::UNSPECIFIED),
            (224u8..240, any::<[u8; 3]>()).prop_map(|(a, b)| Ipv4Addr::new(a, b[0], b[1], b[2]))
        ]
    }

    fn message_strategy() -> impl Strategy<Value = Message> {
        prop_oneof![
            (any::<u8>(), group_strategy()).prop_map(|(c, g)| Message::Query(Query {
                max_resp_code: c,
                group: g,
                v3: None
            })),
            (
                any::<u8>(),
                group_strategy(),
                any::<bool>(),
                0u8..8,
                any::<u8>(),
                proptest::collection::vec(any::<u32>(), 0..20)
            )
                .prop_map(|(c, g, s, qrv, qqic, src)| Message::Query(Query {
                    max_resp_code: c,
                    group: g,
                    v3: Some(QueryV3 {
                        s_flag: s,
                        qrv,
                        qqic,
                        sources: src.into_iter().map(Ipv4Addr::from).collect()
                    }),
                })),
            group_strategy().prop_map(|group| Message::V1Report { group }),
            group_strategy().prop_map(|group| Message::V2Report { group }),
            group_strategy().prop_map(|group| Message::Leave { group }),
            proptest::collection::vec(record_strategy(), 0..10)
                .prop_map(|records| Message::V3Report { records }),
        ]
    }

    proptest! {
        #[test]
        fn round_trip(m in message_strategy(), src in any::<u32>(), dst in any::<u32>(), id in any::<u16>()) {
            let igmp = m.to_bytes();
            prop_assert_eq!(Message::parse(&igmp), Ok(m));
            let p = build_ipv4(Ipv4Addr::from(src), Ipv4Addr::from(dst), id, &igmp);
            let (info, payload) = parse_ipv4(&p).unwrap();
            prop_assert_eq!(payload, &igmp[..]);
            prop_assert!(info.router_alert);
        }

        #[test]
        fn parse_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = Message::parse(&bytes);
            let _ = Message::parse_packet(&Packet::new_unchecked(&bytes[..]));
            let _ = parse_ipv4(&bytes);
            if let Ok(p) = Packet::new_checked(&bytes[..]) {
                let _ = (p.msg_type(), p.max_resp_code(), p.checksum(), p.group_addr());
                let _ = (p.s_flag(), p.qrv(), p.qqic(), p.number_of_sources());
                let _ = (p.source_addr(0), p.source_addr(70), p.number_of_records(), p.records());
                let _ = p.msg_type().to_string();
            }
            if let Ok(r) = GroupRecordPacket::new_checked(&bytes[..]) {
                let _ = (r.record_type(), r.aux_data_len(), r.multicast_addr(), r.source_addr(3));
            }
        }

        #[test]
        fn pack_fits(records in proptest::collection::vec(record_strategy(), 0..40), mtu in 0usize..400) {
            let total: usize = records.iter().map(|r| r.sources.len()).sum();
            let packets = pack_records(records, mtu);
            let room = mtu.max(20);
            let mut seen = 0;
            for p in &packets {
                prop_assert!(!p.is_empty());
                let m = Message::V3Report { records: p.clone() };
                prop_assert!(m.buffer_len() <= room);
                seen += p.iter().map(|r| r.sources.len()).sum::<usize>();
            }
            prop_assert!(seen <= total);
        }
    }
}
