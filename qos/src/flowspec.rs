//! `FLOWSPEC`, `GUARANTEE` and `QOS`: the spec's structs, their defaults, their validation and
//! the byte layout the `SIO_SET_QOS`/`SIO_GET_QOS` ioctl buffers carry.
//!
//! Heads up! Before working on this file read Windows Sockets 2 §"Quality of Service",
//! §"Default Values" and the `flowspec`, `GUARANTEE` and `QOS` reference entries
//! (`shared/spec/003_…`), CHECKLIST §1.8.2 and decisions D-12 and D-13.
//!
//! Field names keep the header's spelling (`TokenRate`, not `token_rate`) so one grep finds the
//! spec, the Winsock face and this file alike. Units are the spec's: bytes/s, bytes, µs.
//!
//! Parsing and checking are separate steps, as in smoltcp's `Packet`/`Repr`: [`Qos::from_bytes`]
//! only needs enough bytes ([`BufferError`], `WSAEFAULT` at the Winsock face) and keeps every
//! value as given; [`Qos::validate`] applies the rules ([`QosError`], `WSAEINVAL`).

use std::fmt;

/// Offsets inside one encoded `FLOWSPEC` (eight `int32`s in the header's order).
mod field {
    pub(super) type Field = core::ops::Range<usize>;
    pub(super) const TOKEN_RATE: Field = 0..4;
    pub(super) const TOKEN_BUCKET_SIZE: Field = 4..8;
    pub(super) const PEAK_BANDWIDTH: Field = 8..12;
    pub(super) const LATENCY: Field = 12..16;
    pub(super) const DELAY_VARIATION: Field = 16..20;
    pub(super) const LEVEL_OF_GUARANTEE: Field = 20..24;
    pub(super) const COST_OF_CALL: Field = 24..28;
    pub(super) const NETWORK_AVAILABILITY: Field = 28..32;
    pub(super) const FLOWSPEC_LEN: usize = NETWORK_AVAILABILITY.end;

    pub(super) const SENDING: Field = 0..FLOWSPEC_LEN;
    pub(super) const RECEIVING: Field = FLOWSPEC_LEN..2 * FLOWSPEC_LEN;
    pub(super) const PROVIDER_SPECIFIC_LEN: Field = RECEIVING.end..RECEIVING.end + 4;
    pub(super) const QOS_HEADER_LEN: usize = PROVIDER_SPECIFIC_LEN.end;
}

/// The `GUARANTEE` enumeration: the level of service a flowspec asks for.
///
/// A newtype over the C enum's `int` (STYLE §5: "service types are a newtype with named
/// consts"), so a value the spec does not define still parses and prints; only
/// [`Flowspec::validate`] rejects it. The values follow the declaration order of the spec's
/// `typedef enum { BestEffortService, ControlledLoadService, PredictiveService,
/// GuaranteedService } GUARANTEE;` (C numbers enumerators from 0), which is also the order of
/// increasing assurance. The consts can be used as patterns:
/// `match g { Guarantee::GuaranteedService => …, _ => … }`.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Guarantee(i32);

#[allow(non_upper_case_globals)]
impl Guarantee {
    /// `BestEffortService` (0): the flowspec is a guideline, no guarantee; always supported and
    /// never refused by admission control (D-14). The default.
    pub const BestEffortService: Self = Self(0);
    /// `ControlledLoadService` (1): behaves like best effort on an unloaded network (IETF
    /// controlled-load service).
    pub const ControlledLoadService: Self = Self(1);
    /// `PredictiveService` (2): `TokenRate` is guaranteed, the delay bound is highly reliable
    /// but not guaranteed; the spec's example is video.
    pub const PredictiveService: Self = Self(2);
    /// `GuaranteedService` (3): `TokenRate` and, while the sender stays within it, latency are
    /// guaranteed.
    pub const GuaranteedService: Self = Self(3);

    /// The four levels the spec defines, in enum order.
    pub const KNOWN: [Self; 4] = [
        Self::BestEffortService,
        Self::ControlledLoadService,
        Self::PredictiveService,
        Self::GuaranteedService,
    ];

    /// Wraps a raw `GUARANTEE` value, known or not.
    pub const fn from_raw(value: i32) -> Self {
        Self(value)
    }

    /// The raw `GUARANTEE` value.
    pub const fn raw(self) -> i32 {
        self.0
    }

    /// Whether the spec defines this value (0 to 3).
    pub const fn is_known(self) -> bool {
        self.0 >= 0 && self.0 <= 3
    }

    /// Whether this level reserves resources: everything except `BestEffortService`. These are
    /// the levels admission control counts (D-14) and that need a `TokenRate`.
    pub const fn is_reserved(self) -> bool {
        self.is_known() && self.0 != 0
    }

    /// The spec's name of a known value.
    pub const fn name(self) -> Option<&'static str> {
        match self.0 {
            0 => Some("BestEffortService"),
            1 => Some("ControlledLoadService"),
            2 => Some("PredictiveService"),
            3 => Some("GuaranteedService"),
            _ => None,
        }
    }
}

impl Default for Guarantee {
    /// `BestEffortService`, as §"Default Values" lists.
    fn default() -> Self {
        Self::BestEffortService
    }
}

impl From<i32> for Guarantee {
    fn from(value: i32) -> Self {
        Self(value)
    }
}

impl From<Guarantee> for i32 {
    fn from(value: Guarantee) -> Self {
        value.0
    }
}

impl fmt::Debug for Guarantee {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => f.write_str(name),
            None => write!(f, "Guarantee({})", self.0),
        }
    }
}

impl fmt::Display for Guarantee {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// One direction's flow specification: the spec's `FLOWSPEC`, field for field.
///
/// `Default` is the spec's default flowspec (§"Default Values"): every rate, size and delay −1
/// ("not specified"), `BestEffortService`, `CostOfCall` 0. `NetworkAvailability` is read-only
/// and set by the provider; the default says 1 (the medium is accessible) because a fresh socket
/// on an up link is, and the stack overwrites it from the link's state
/// ([`Qos::set_network_availability`]).
#[allow(non_snake_case)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Flowspec {
    /// Bytes/s at which send credit accrues; −1 = not specified (with `TokenBucketSize` −1: no
    /// rate limiting).
    pub TokenRate: i32,
    /// Bytes: the largest credit the bucket holds; −1 = not specified.
    pub TokenBucketSize: i32,
    /// Bytes/s: how fast packets may be sent back to back; −1 = not specified.
    pub PeakBandwidth: i32,
    /// µs: the largest acceptable delay from sender to receiver; −1 = not specified.
    pub Latency: i32,
    /// µs: the difference between the largest and the smallest delay a packet may see; −1 =
    /// not specified.
    pub DelayVariation: i32,
    /// The level of service asked for.
    pub LevelOfGuarantee: Guarantee,
    /// Reserved by the spec: must be 0.
    pub CostOfCall: i32,
    /// Read-only, set by the provider: 1 = the medium is accessible, 0 = temporarily not.
    pub NetworkAvailability: i32,
}

impl Flowspec {
    /// −1: the value every rate, size and delay field uses for "not specified".
    pub const NOT_SPECIFIED: i32 = -1;
    /// `NetworkAvailability` when the medium is accessible.
    pub const NETWORK_AVAILABLE: i32 = 1;
    /// `NetworkAvailability` when the medium is temporarily unavailable (link down).
    pub const NETWORK_UNAVAILABLE: i32 = 0;
    /// Bytes of one encoded flowspec: eight `int32`s.
    pub const ENCODED_LEN: usize = field::FLOWSPEC_LEN;

    /// The spec's default flowspec (also `Flowspec::default()`).
    pub const DEFAULT: Self = Self {
        TokenRate: Self::NOT_SPECIFIED,
        TokenBucketSize: Self::NOT_SPECIFIED,
        PeakBandwidth: Self::NOT_SPECIFIED,
        Latency: Self::NOT_SPECIFIED,
        DelayVariation: Self::NOT_SPECIFIED,
        LevelOfGuarantee: Guarantee::BestEffortService,
        CostOfCall: 0,
        NetworkAvailability: Self::NETWORK_AVAILABLE,
    };

    /// Every field 0: what `SIO_GET_GROUP_QOS` reports for a socket outside a group, where the
    /// spec says the flowspecs are "set to NULL" (D-12).
    pub const ZEROED: Self = Self {
        TokenRate: 0,
        TokenBucketSize: 0,
        PeakBandwidth: 0,
        Latency: 0,
        DelayVariation: 0,
        LevelOfGuarantee: Guarantee::BestEffortService,
        CostOfCall: 0,
        NetworkAvailability: 0,
    };

    /// Checks the flowspec against the rules below; the first broken rule is returned, in field
    /// order. The Winsock face answers every one with `WSAEINVAL`.
    ///
    /// Rules (D-13, and decisions recorded in `docs/decisions.md` § "QoS (issue 4)"):
    /// - `TokenRate`, `TokenBucketSize`, `PeakBandwidth`, `Latency`, `DelayVariation`: −1 or
    ///   ≥ 0 ([`FlowspecError::NegativeValue`]). 0 is accepted as given (D-13 says "≥ 0").
    /// - `LevelOfGuarantee` must be one of the four `GUARANTEE` values
    ///   ([`FlowspecError::UnknownGuarantee`]).
    /// - `CostOfCall` must be 0: the spec says it "should always be set to 0"
    ///   ([`FlowspecError::CostOfCallNotZero`]).
    /// - `PeakBandwidth` below `TokenRate`, both given, is contradictory: the long-term rate
    ///   cannot exceed the back-to-back rate (constant-rate flows set them equal, per the spec)
    ///   ([`FlowspecError::PeakBelowTokenRate`]).
    /// - A level other than `BestEffortService` needs a `TokenRate`: Guaranteed and Predictive
    ///   service are defined as carrying data "at the TokenRate", and admission control
    ///   reserves `TokenRate` (D-14) ([`FlowspecError::ReservationWithoutTokenRate`]).
    ///
    /// Accepted on purpose: `TokenBucketSize` without `TokenRate` (no rate, so no limit; the
    /// size is kept and reported back), `TokenRate` without `TokenBucketSize` (D-13 picks the
    /// bucket, see [`Flowspec::shaping_bucket_size`]), `DelayVariation` above `Latency` (one is
    /// a requirement, the other a description; the spec couples neither), and any
    /// `NetworkAvailability`: it is read-only, so a value the application supplies is ignored
    /// and overwritten by the provider's, never rejected (CHECKLIST 360).
    pub fn validate(&self) -> Result<(), FlowspecError> {
        for (field, value) in [
            (FlowspecField::TokenRate, self.TokenRate),
            (FlowspecField::TokenBucketSize, self.TokenBucketSize),
            (FlowspecField::PeakBandwidth, self.PeakBandwidth),
            (FlowspecField::Latency, self.Latency),
            (FlowspecField::DelayVariation, self.DelayVariation),
        ] {
            if value < Self::NOT_SPECIFIED {
                return Err(FlowspecError::NegativeValue { field, value });
            }
        }
        if !self.LevelOfGuarantee.is_known() {
            return Err(FlowspecError::UnknownGuarantee {
                value: self.LevelOfGuarantee.raw(),
            });
        }
        if self.CostOfCall != 0 {
            return Err(FlowspecError::CostOfCallNotZero {
                value: self.CostOfCall,
            });
        }
        if self.TokenRate != Self::NOT_SPECIFIED
            && self.PeakBandwidth != Self::NOT_SPECIFIED
            && self.PeakBandwidth < self.TokenRate
        {
            return Err(FlowspecError::PeakBelowTokenRate {
                token_rate: self.TokenRate,
                peak_bandwidth: self.PeakBandwidth,
            });
        }
        if self.LevelOfGuarantee.is_reserved() && self.TokenRate == Self::NOT_SPECIFIED {
            return Err(FlowspecError::ReservationWithoutTokenRate {
                guarantee: self.LevelOfGuarantee,
            });
        }
        Ok(())
    }

    /// Whether this flowspec limits the rate: `TokenRate` is given. With `TokenRate` −1 there
    /// is no rate limiting, whatever `TokenBucketSize` says.
    pub const fn is_rate_limited(&self) -> bool {
        self.TokenRate >= 0
    }

    /// The bucket size, in bytes, a shaper should use for this flowspec, or `None` when it does
    /// not limit the rate. `TokenBucketSize` when given; with `TokenRate` given and
    /// `TokenBucketSize` −1, D-13's choice: one second of `TokenRate`, but at least
    /// `max_frame` (the largest frame the path carries), so a full-size frame always fits.
    /// Meant for a validated flowspec; a negative size other than −1 is treated as −1.
    pub fn shaping_bucket_size(&self, max_frame: u32) -> Option<u32> {
        let rate = u32::try_from(self.TokenRate).ok()?;
        Some(match u32::try_from(self.TokenBucketSize) {
            Ok(size) => size,
            Err(_) => rate.max(max_frame),
        })
    }

    /// Writes the flowspec into the first [`Flowspec::ENCODED_LEN`] bytes of `buf`: the eight
    /// fields as `int32`s in header order, in native byte order (as a C `FLOWSPEC` lies in
    /// memory, and like the stack's other ioctl buffers).
    pub fn emit(&self, buf: &mut [u8]) -> Result<(), BufferError> {
        let available = buf.len();
        let buf = buf
            .get_mut(..Self::ENCODED_LEN)
            .ok_or(BufferError::TooShort {
                needed: Self::ENCODED_LEN,
                available,
            })?;
        for (range, value) in [
            (field::TOKEN_RATE, self.TokenRate),
            (field::TOKEN_BUCKET_SIZE, self.TokenBucketSize),
            (field::PEAK_BANDWIDTH, self.PeakBandwidth),
            (field::LATENCY, self.Latency),
            (field::DELAY_VARIATION, self.DelayVariation),
            (field::LEVEL_OF_GUARANTEE, self.LevelOfGuarantee.raw()),
            (field::COST_OF_CALL, self.CostOfCall),
            (field::NETWORK_AVAILABILITY, self.NetworkAvailability),
        ] {
            buf[range].copy_from_slice(&value.to_ne_bytes());
        }
        Ok(())
    }

    /// The encoded flowspec (see [`Flowspec::emit`]).
    pub fn to_bytes(&self) -> [u8; Self::ENCODED_LEN] {
        let mut out = [0; Self::ENCODED_LEN];
        // Cannot fail: `out` is exactly `ENCODED_LEN` long.
        let _ = self.emit(&mut out);
        out
    }

    /// Reads a flowspec from the first [`Flowspec::ENCODED_LEN`] bytes of `buf`; later bytes
    /// are ignored. Values are kept as given: check them with [`Flowspec::validate`].
    pub fn from_bytes(buf: &[u8]) -> Result<Self, BufferError> {
        let buf = buf.get(..Self::ENCODED_LEN).ok_or(BufferError::TooShort {
            needed: Self::ENCODED_LEN,
            available: buf.len(),
        })?;
        Ok(Self {
            TokenRate: read_i32(buf, field::TOKEN_RATE),
            TokenBucketSize: read_i32(buf, field::TOKEN_BUCKET_SIZE),
            PeakBandwidth: read_i32(buf, field::PEAK_BANDWIDTH),
            Latency: read_i32(buf, field::LATENCY),
            DelayVariation: read_i32(buf, field::DELAY_VARIATION),
            LevelOfGuarantee: Guarantee(read_i32(buf, field::LEVEL_OF_GUARANTEE)),
            CostOfCall: read_i32(buf, field::COST_OF_CALL),
            NetworkAvailability: read_i32(buf, field::NETWORK_AVAILABILITY),
        })
    }
}

impl Default for Flowspec {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// Reads the native-endian `int32` at `range` of a buffer already checked to hold it.
fn read_i32(buf: &[u8], range: field::Field) -> i32 {
    let mut bytes = [0; 4];
    bytes.copy_from_slice(&buf[range]);
    i32::from_ne_bytes(bytes)
}

/// The spec's `QOS`: a flowspec per direction plus provider-specific bytes.
///
/// `Default` is the default flowspec both ways and no provider-specific part: what a new socket
/// reports (CHECKLIST 352). `ProviderSpecific` is kept and reported back as given; this provider
/// defines no extension and reads none.
///
/// # Byte layout
///
/// The ioctl buffers (`SIO_SET_QOS` in, `SIO_GET_QOS` out, and their group twins) carry:
///
/// | offset | length | content |
/// |---|---|---|
/// | 0 | 32 | `SendingFlowspec` ([`Flowspec::emit`]) |
/// | 32 | 32 | `ReceivingFlowspec` |
/// | 64 | 4 | `ProviderSpecific.len`, `u32`, native byte order |
/// | 68 | len | the `ProviderSpecific` bytes |
///
/// so the smallest QOS is [`Qos::MIN_ENCODED_LEN`] (68) bytes, the stand-in for `sizeof(QOS)`.
/// All integers are native-endian, little-endian on every target the workspace builds for
/// (x86-64, AArch64). The C `WSABUF`'s pointer becomes "the bytes follow", so the layout has
/// no pointers and no padding.
#[allow(non_snake_case)]
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Qos {
    /// The flowspec of the send direction (the one the shaper enforces).
    pub SendingFlowspec: Flowspec,
    /// The flowspec of the receive direction (informational: no receive policing, D-13).
    pub ReceivingFlowspec: Flowspec,
    /// Provider-specific extension bytes; empty when none (`buf = NULL, len = 0`).
    pub ProviderSpecific: Vec<u8>,
}

impl Qos {
    /// Bytes of an encoded QOS without provider-specific bytes: two flowspecs and the length.
    pub const MIN_ENCODED_LEN: usize = field::QOS_HEADER_LEN;

    /// Both flowspecs [`Flowspec::ZEROED`], no provider-specific bytes: `SIO_GET_GROUP_QOS` on
    /// a socket outside a group (D-12).
    pub const fn zeroed() -> Self {
        Self {
            SendingFlowspec: Flowspec::ZEROED,
            ReceivingFlowspec: Flowspec::ZEROED,
            ProviderSpecific: Vec::new(),
        }
    }

    /// Checks both flowspecs ([`Flowspec::validate`]), sending first; the error names the
    /// direction and the field. `ProviderSpecific` is not checked (it is opaque).
    pub fn validate(&self) -> Result<(), QosError> {
        for (direction, flowspec) in [
            (Direction::Sending, &self.SendingFlowspec),
            (Direction::Receiving, &self.ReceivingFlowspec),
        ] {
            flowspec
                .validate()
                .map_err(|error| QosError { direction, error })?;
        }
        Ok(())
    }

    /// Sets `NetworkAvailability` in both flowspecs: the provider's read-only report (1 =
    /// available). Applications' values are overwritten with this (CHECKLIST 360).
    pub fn set_network_availability(&mut self, available: bool) {
        let value = if available {
            Flowspec::NETWORK_AVAILABLE
        } else {
            Flowspec::NETWORK_UNAVAILABLE
        };
        self.SendingFlowspec.NetworkAvailability = value;
        self.ReceivingFlowspec.NetworkAvailability = value;
    }

    /// The provider-specific bytes the encoding carries: all of them, cut at `u32::MAX` bytes,
    /// the most a `WSABUF` length can say (never reached in practice).
    fn provider_specific_encoded(&self) -> &[u8] {
        let max = usize::try_from(u32::MAX).unwrap_or(usize::MAX);
        &self.ProviderSpecific[..self.ProviderSpecific.len().min(max)]
    }

    /// Bytes [`Qos::emit`] writes: [`Qos::MIN_ENCODED_LEN`] plus the provider-specific bytes.
    /// `SIO_GET_QOS` fails with `WSAEFAULT` when the output buffer is smaller (§1.8.3: it must
    /// hold the full QOS, provider-specific part included).
    pub fn encoded_len(&self) -> usize {
        Self::MIN_ENCODED_LEN.saturating_add(self.provider_specific_encoded().len())
    }

    /// Writes the QOS into the start of `buf` (layout in the type's docs) and returns the bytes
    /// written, [`Qos::encoded_len`]. A shorter `buf` is [`BufferError::TooShort`] and is left
    /// untouched.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, BufferError> {
        let needed = self.encoded_len();
        let available = buf.len();
        let buf = buf
            .get_mut(..needed)
            .ok_or(BufferError::TooShort { needed, available })?;
        self.SendingFlowspec.emit(&mut buf[field::SENDING])?;
        self.ReceivingFlowspec.emit(&mut buf[field::RECEIVING])?;
        let extra = self.provider_specific_encoded();
        let len = u32::try_from(extra.len()).unwrap_or(u32::MAX);
        buf[field::PROVIDER_SPECIFIC_LEN].copy_from_slice(&len.to_ne_bytes());
        buf[Self::MIN_ENCODED_LEN..].copy_from_slice(extra);
        Ok(needed)
    }

    /// The encoded QOS (layout in the type's docs).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = vec![0; self.encoded_len()];
        // Cannot fail: `out` is exactly `encoded_len()` long.
        let _ = self.emit(&mut out);
        out
    }

    /// Reads a QOS from the start of `buf`; bytes after the provider-specific part are ignored
    /// (an application may pass a buffer larger than the QOS). Fewer than
    /// [`Qos::MIN_ENCODED_LEN`] bytes, or fewer than the provider-specific length announces, is
    /// [`BufferError::TooShort`] (`WSAEFAULT`). Values are kept as given: check them with
    /// [`Qos::validate`].
    pub fn from_bytes(buf: &[u8]) -> Result<Self, BufferError> {
        let available = buf.len();
        let header = buf
            .get(..Self::MIN_ENCODED_LEN)
            .ok_or(BufferError::TooShort {
                needed: Self::MIN_ENCODED_LEN,
                available,
            })?;
        let mut len = [0; 4];
        len.copy_from_slice(&header[field::PROVIDER_SPECIFIC_LEN]);
        let len = usize::try_from(u32::from_ne_bytes(len)).unwrap_or(usize::MAX);
        let needed = Self::MIN_ENCODED_LEN.saturating_add(len);
        let extra = buf
            .get(Self::MIN_ENCODED_LEN..needed)
            .ok_or(BufferError::TooShort { needed, available })?;
        Ok(Self {
            SendingFlowspec: Flowspec::from_bytes(&header[field::SENDING])?,
            ReceivingFlowspec: Flowspec::from_bytes(&header[field::RECEIVING])?,
            ProviderSpecific: extra.to_vec(),
        })
    }
}

/// An ioctl buffer that cannot hold the QOS it should, read or written. The Winsock face
/// answers `WSAEFAULT`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BufferError {
    /// The buffer is shorter than the encoding needs.
    TooShort {
        /// Bytes the encoding needs (saturated at `usize::MAX`).
        needed: usize,
        /// Bytes the buffer has.
        available: usize,
    },
}

impl BufferError {
    /// Whether the buffer was too short (the only failure today; `WSAEFAULT`).
    pub const fn is_too_short(&self) -> bool {
        matches!(self, Self::TooShort { .. })
    }
}

impl fmt::Display for BufferError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooShort { needed, available } => write!(
                f,
                "buffer too short for a QOS: {needed} bytes needed, {available} given"
            ),
        }
    }
}

impl std::error::Error for BufferError {}

/// A `FLOWSPEC` member a rule is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FlowspecField {
    /// `TokenRate`.
    TokenRate,
    /// `TokenBucketSize`.
    TokenBucketSize,
    /// `PeakBandwidth`.
    PeakBandwidth,
    /// `Latency`.
    Latency,
    /// `DelayVariation`.
    DelayVariation,
    /// `LevelOfGuarantee`.
    LevelOfGuarantee,
    /// `CostOfCall`.
    CostOfCall,
    /// `NetworkAvailability` (never the culprit: it is read-only and ignored on input).
    NetworkAvailability,
}

impl FlowspecField {
    /// The member's name as the header spells it.
    pub const fn name(self) -> &'static str {
        match self {
            Self::TokenRate => "TokenRate",
            Self::TokenBucketSize => "TokenBucketSize",
            Self::PeakBandwidth => "PeakBandwidth",
            Self::Latency => "Latency",
            Self::DelayVariation => "DelayVariation",
            Self::LevelOfGuarantee => "LevelOfGuarantee",
            Self::CostOfCall => "CostOfCall",
            Self::NetworkAvailability => "NetworkAvailability",
        }
    }
}

impl fmt::Display for FlowspecField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A broken flowspec rule, named for the rule ([`Flowspec::validate`] lists them). The Winsock
/// face answers every variant with `WSAEINVAL`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FlowspecError {
    /// A rate, size or delay below −1: such a field is −1 (not specified) or ≥ 0 (D-13).
    NegativeValue {
        /// The field.
        field: FlowspecField,
        /// Its value.
        value: i32,
    },
    /// `LevelOfGuarantee` is none of the four `GUARANTEE` values.
    UnknownGuarantee {
        /// The raw value.
        value: i32,
    },
    /// `CostOfCall` is not 0 (the spec reserves it and says it must be 0).
    CostOfCallNotZero {
        /// Its value.
        value: i32,
    },
    /// `PeakBandwidth` is below `TokenRate`, both given.
    PeakBelowTokenRate {
        /// `TokenRate`.
        token_rate: i32,
        /// `PeakBandwidth`.
        peak_bandwidth: i32,
    },
    /// A level other than `BestEffortService` without a `TokenRate` to reserve.
    ReservationWithoutTokenRate {
        /// The level asked for.
        guarantee: Guarantee,
    },
}

impl FlowspecError {
    /// The field the rule is about (for the two-field peak rule, `PeakBandwidth`; for a level
    /// without a rate, `TokenRate`, the field to fill in).
    pub const fn field(&self) -> FlowspecField {
        match self {
            Self::NegativeValue { field, .. } => *field,
            Self::UnknownGuarantee { .. } => FlowspecField::LevelOfGuarantee,
            Self::CostOfCallNotZero { .. } => FlowspecField::CostOfCall,
            Self::PeakBelowTokenRate { .. } => FlowspecField::PeakBandwidth,
            Self::ReservationWithoutTokenRate { .. } => FlowspecField::TokenRate,
        }
    }
}

impl fmt::Display for FlowspecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NegativeValue { field, value } => write!(
                f,
                "{field} is {value}: it must be -1 (not specified) or at least 0"
            ),
            Self::UnknownGuarantee { value } => {
                write!(
                    f,
                    "LevelOfGuarantee {value} is not a GUARANTEE value (0 to 3)"
                )
            }
            Self::CostOfCallNotZero { value } => {
                write!(f, "CostOfCall is {value}: it is reserved and must be 0")
            }
            Self::PeakBelowTokenRate {
                token_rate,
                peak_bandwidth,
            } => write!(
                f,
                "PeakBandwidth {peak_bandwidth} is below TokenRate {token_rate}"
            ),
            Self::ReservationWithoutTokenRate { guarantee } => {
                write!(f, "{guarantee} needs a TokenRate to reserve, not -1")
            }
        }
    }
}

impl std::error::Error for FlowspecError {}

/// Which flowspec of a `QOS`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Direction {
    /// `SendingFlowspec`.
    Sending,
    /// `ReceivingFlowspec`.
    Receiving,
}

impl Direction {
    /// The `QOS` member's name as the header spells it.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Sending => "SendingFlowspec",
            Self::Receiving => "ReceivingFlowspec",
        }
    }
}

/// A `QOS` whose flowspec in `direction` broke a rule. The Winsock face answers `WSAEINVAL`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct QosError {
    /// The flowspec at fault.
    pub direction: Direction,
    /// The rule it broke.
    pub error: FlowspecError,
}

impl QosError {
    /// The field at fault inside [`QosError::direction`]'s flowspec.
    pub const fn field(&self) -> FlowspecField {
        self.error.field()
    }
}

impl fmt::Display for QosError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.direction.name(), self.error)
    }
}

impl std::error::Error for QosError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A flowspec a voice call might ask for, valid and with no field at its default.
    fn voice() -> Flowspec {
        Flowspec {
            TokenRate: 10_900,
            TokenBucketSize: 436,
            PeakBandwidth: 10_900,
            Latency: 110_000,
            DelayVariation: 20_000,
            LevelOfGuarantee: Guarantee::GuaranteedService,
            CostOfCall: 0,
            NetworkAvailability: 1,
        }
    }

    /// Conformance: 352 — the default flowspec: rates, sizes and delays −1, `BestEffortService`,
    /// `CostOfCall` 0, in both directions of a new QOS, and no provider-specific part.
    #[test]
    fn defaults_are_the_spec_defaults() {
        let f = Flowspec::default();
        for value in [
            f.TokenRate,
            f.TokenBucketSize,
            f.PeakBandwidth,
            f.Latency,
            f.DelayVariation,
        ] {
            assert_eq!(value, -1);
        }
        assert_eq!(f.LevelOfGuarantee, Guarantee::BestEffortService);
        assert_eq!(f.CostOfCall, 0);
        assert_eq!(f.NetworkAvailability, Flowspec::NETWORK_AVAILABLE);
        let q = Qos::default();
        assert_eq!(q.SendingFlowspec, f);
        assert_eq!(q.ReceivingFlowspec, f);
        assert!(q.ProviderSpecific.is_empty());
        assert_eq!(q.validate(), Ok(()));
        assert!(!f.is_rate_limited());
    }

    #[test]
    fn guarantee_follows_the_c_enum_order() {
        assert_eq!(Guarantee::BestEffortService.raw(), 0);
        assert_eq!(Guarantee::ControlledLoadService.raw(), 1);
        assert_eq!(Guarantee::PredictiveService.raw(), 2);
        assert_eq!(Guarantee::GuaranteedService.raw(), 3);
        assert_eq!(Guarantee::default(), Guarantee::BestEffortService);
        assert_eq!(Guarantee::from(3), Guarantee::GuaranteedService);
        assert_eq!(i32::from(Guarantee::PredictiveService), 2);
        assert_eq!(
            format!("{:?}", Guarantee::ControlledLoadService),
            "ControlledLoadService"
        );
        assert_eq!(format!("{:?}", Guarantee::from_raw(9)), "Guarantee(9)");
        assert!(Guarantee::KNOWN.iter().all(|g| g.is_known()));
        assert!(!Guarantee::from_raw(4).is_known() && !Guarantee::from_raw(-1).is_known());
        assert!(!Guarantee::BestEffortService.is_reserved());
        assert!(Guarantee::ControlledLoadService.is_reserved());
        assert!(!Guarantee::from_raw(7).is_reserved());
        // The consts work as patterns.
        let level = match Guarantee::from_raw(2) {
            Guarantee::PredictiveService => "predictive",
            _ => "other",
        };
        assert_eq!(level, "predictive");
    }

    /// Conformance: 359 — a negative value other than −1 in a rate, size or delay field is
    /// rejected (`WSAEINVAL` at the Winsock face); −1 and 0 are accepted.
    #[test]
    fn negative_values_other_than_minus_one_are_rejected() {
        type FieldMut = fn(&mut Flowspec) -> &mut i32;
        let fields: [(FlowspecField, FieldMut); 5] = [
            (FlowspecField::TokenRate, |f| &mut f.TokenRate),
            (FlowspecField::TokenBucketSize, |f| &mut f.TokenBucketSize),
            (FlowspecField::PeakBandwidth, |f| &mut f.PeakBandwidth),
            (FlowspecField::Latency, |f| &mut f.Latency),
            (FlowspecField::DelayVariation, |f| &mut f.DelayVariation),
        ];
        for (field, get) in fields {
            for value in [-2, -1000, i32::MIN] {
                let mut f = Flowspec::default();
                *get(&mut f) = value;
                assert_eq!(
                    f.validate(),
                    Err(FlowspecError::NegativeValue { field, value }),
                    "{field} = {value}"
                );
            }
            for value in [-1, 0, 1, i32::MAX] {
                let mut f = Flowspec::default();
                *get(&mut f) = value;
                assert_eq!(f.validate(), Ok(()), "{field} = {value}");
            }
        }
    }

    /// Conformance: 358 — `CostOfCall` ≠ 0 is rejected (`WSAEINVAL` at the Winsock face).
    #[test]
    fn cost_of_call_must_be_zero() {
        for value in [1, -1, i32::MAX] {
            let f = Flowspec {
                CostOfCall: value,
                ..voice()
            };
            let err = f.validate().unwrap_err();
            assert_eq!(err, FlowspecError::CostOfCallNotZero { value });
            assert_eq!(err.field(), FlowspecField::CostOfCall);
        }
        assert_eq!(voice().validate(), Ok(()));
    }

    #[test]
    fn unknown_guarantee_is_rejected() {
        for value in [-1, 4, 100] {
            let f = Flowspec {
                LevelOfGuarantee: Guarantee::from_raw(value),
                ..voice()
            };
            assert_eq!(f.validate(), Err(FlowspecError::UnknownGuarantee { value }));
        }
    }

    #[test]
    fn peak_below_token_rate_is_rejected_only_when_both_are_given() {
        let f = Flowspec {
            PeakBandwidth: 10_899,
            ..voice()
        };
        assert_eq!(
            f.validate(),
            Err(FlowspecError::PeakBelowTokenRate {
                token_rate: 10_900,
                peak_bandwidth: 10_899
            })
        );
        for (rate, peak) in [(10_900, 10_900), (-1, 5), (5, -1), (0, 0)] {
            let f = Flowspec {
                TokenRate: rate,
                PeakBandwidth: peak,
                ..Flowspec::default()
            };
            assert_eq!(f.validate(), Ok(()), "rate {rate} peak {peak}");
        }
    }

    #[test]
    fn reserved_levels_need_a_token_rate() {
        for g in [
            Guarantee::ControlledLoadService,
            Guarantee::PredictiveService,
            Guarantee::GuaranteedService,
        ] {
            let f = Flowspec {
                LevelOfGuarantee: g,
                ..Flowspec::default()
            };
            assert_eq!(
                f.validate(),
                Err(FlowspecError::ReservationWithoutTokenRate { guarantee: g })
            );
            assert_eq!(f.validate().unwrap_err().field(), FlowspecField::TokenRate);
            let f = Flowspec { TokenRate: 1, ..f };
            assert_eq!(f.validate(), Ok(()));
        }
    }

    /// `NetworkAvailability` is read-only: any value passes validation and the provider's
    /// value replaces it.
    #[test]
    fn network_availability_is_never_rejected_and_is_overwritten() {
        let mut q = Qos {
            SendingFlowspec: Flowspec {
                NetworkAvailability: 77,
                ..voice()
            },
            ReceivingFlowspec: Flowspec {
                NetworkAvailability: -5,
                ..Flowspec::default()
            },
            ProviderSpecific: Vec::new(),
        };
        assert_eq!(q.validate(), Ok(()));
        q.set_network_availability(false);
        assert_eq!(q.SendingFlowspec.NetworkAvailability, 0);
        assert_eq!(q.ReceivingFlowspec.NetworkAvailability, 0);
        q.set_network_availability(true);
        assert_eq!(q.SendingFlowspec.NetworkAvailability, 1);
        assert_eq!(q.ReceivingFlowspec.NetworkAvailability, 1);
    }

    #[test]
    fn qos_error_names_direction_and_field() {
        let q = Qos {
            ReceivingFlowspec: Flowspec {
                TokenBucketSize: -7,
                ..Flowspec::default()
            },
            ..Qos::default()
        };
        let err = q.validate().unwrap_err();
        assert_eq!(err.direction, Direction::Receiving);
        assert_eq!(err.field(), FlowspecField::TokenBucketSize);
        assert_eq!(
            err.to_string(),
            "ReceivingFlowspec: TokenBucketSize is -7: it must be -1 (not specified) or at least 0"
        );
        // The sending flowspec is checked first.
        let q = Qos {
            SendingFlowspec: Flowspec {
                CostOfCall: 1,
                ..Flowspec::default()
            },
            ..q
        };
        assert_eq!(q.validate().unwrap_err().direction, Direction::Sending);
    }

    #[test]
    fn shaping_bucket_size_follows_d13() {
        let max_frame = 1514;
        assert_eq!(Flowspec::default().shaping_bucket_size(max_frame), None);
        // A size without a rate is no limit.
        let f = Flowspec {
            TokenBucketSize: 3000,
            ..Flowspec::default()
        };
        assert_eq!(f.shaping_bucket_size(max_frame), None);
        // Both given: the size as given.
        assert_eq!(voice().shaping_bucket_size(max_frame), Some(436));
        // Rate alone: one second of rate, but at least one full frame.
        let f = Flowspec {
            TokenRate: 125_000,
            ..Flowspec::default()
        };
        assert_eq!(f.shaping_bucket_size(max_frame), Some(125_000));
        let f = Flowspec {
            TokenRate: 1000,
            ..Flowspec::default()
        };
        assert_eq!(f.shaping_bucket_size(max_frame), Some(1514));
    }

    #[test]
    fn flowspec_bytes_are_eight_native_int32s_in_header_order() {
        let f = Flowspec {
            TokenRate: 1,
            TokenBucketSize: 2,
            PeakBandwidth: 3,
            Latency: 4,
            DelayVariation: -1,
            LevelOfGuarantee: Guarantee::PredictiveService,
            CostOfCall: 0,
            NetworkAvailability: 1,
        };
        let bytes = f.to_bytes();
        let expected: Vec<u8> = [1i32, 2, 3, 4, -1, 2, 0, 1]
            .iter()
            .flat_map(|v| v.to_ne_bytes())
            .collect();
        assert_eq!(bytes.as_slice(), expected.as_slice());
        assert_eq!(Flowspec::from_bytes(&bytes), Ok(f));
        // Unknown guarantees and bad values survive parsing; validation judges them.
        let mut odd = bytes;
        odd[20..24].copy_from_slice(&9i32.to_ne_bytes());
        odd[24..28].copy_from_slice(&5i32.to_ne_bytes());
        let parsed = Flowspec::from_bytes(&odd).unwrap();
        assert_eq!(parsed.LevelOfGuarantee, Guarantee::from_raw(9));
        assert_eq!(parsed.CostOfCall, 5);
        assert_eq!(
            Flowspec::from_bytes(&odd[..31]),
            Err(BufferError::TooShort {
                needed: 32,
                available: 31
            })
        );
    }

    #[test]
    fn qos_round_trips_with_provider_specific_bytes() {
        let q = Qos {
            SendingFlowspec: voice(),
            ReceivingFlowspec: Flowspec::default(),
            ProviderSpecific: vec![0xde, 0xad, 0xbe, 0xef, 0x01],
        };
        assert_eq!(q.encoded_len(), 68 + 5);
        let bytes = q.to_bytes();
        assert_eq!(bytes.len(), q.encoded_len());
        assert_eq!(&bytes[..32], &voice().to_bytes());
        assert_eq!(&bytes[32..64], &Flowspec::default().to_bytes());
        assert_eq!(&bytes[64..68], &5u32.to_ne_bytes());
        assert_eq!(&bytes[68..], &[0xde, 0xad, 0xbe, 0xef, 0x01]);
        assert_eq!(Qos::from_bytes(&bytes), Ok(q.clone()));
        // A larger buffer than needed is fine both ways; the tail is not ours.
        let mut big = bytes.clone();
        big.extend_from_slice(&[0xff; 10]);
        assert_eq!(Qos::from_bytes(&big), Ok(q.clone()));
        let mut out = [0xaa; 100];
        assert_eq!(q.emit(&mut out), Ok(73));
        assert_eq!(&out[..73], bytes.as_slice());
        assert_eq!(out[73], 0xaa);
        // The default QOS is exactly the minimum length.
        assert_eq!(Qos::default().encoded_len(), Qos::MIN_ENCODED_LEN);
        assert_eq!(Qos::default().to_bytes().len(), 68);
    }

    /// Short buffers, both ways, are `TooShort` (`WSAEFAULT` at the Winsock face), and a
    /// failed `emit` writes nothing.
    #[test]
    fn short_buffers_are_too_short() {
        let q = Qos {
            ProviderSpecific: vec![7; 3],
            ..Qos::default()
        };
        let bytes = q.to_bytes();
        for cut in [0, 1, 32, 67] {
            let err = Qos::from_bytes(&bytes[..cut]).unwrap_err();
            assert_eq!(
                err,
                BufferError::TooShort {
                    needed: 68,
                    available: cut
                }
            );
            assert!(err.is_too_short());
        }
        // The header is there but the announced provider-specific bytes are not.
        for cut in [68, 70] {
            assert_eq!(
                Qos::from_bytes(&bytes[..cut]),
                Err(BufferError::TooShort {
                    needed: 71,
                    available: cut
                })
            );
        }
        // A length no buffer can satisfy does not overflow.
        let mut huge = Qos::default().to_bytes();
        huge[64..68].copy_from_slice(&u32::MAX.to_ne_bytes());
        assert!(Qos::from_bytes(&huge).unwrap_err().is_too_short());
        let mut out = [0x55; 70];
        assert_eq!(
            q.emit(&mut out),
            Err(BufferError::TooShort {
                needed: 71,
                available: 70
            })
        );
        assert!(out.iter().all(|&b| b == 0x55));
    }

    /// D-12: the zero-filled QOS of `SIO_GET_GROUP_QOS` outside a group.
    #[test]
    fn zeroed_qos_is_all_zero_bytes() {
        let q = Qos::zeroed();
        assert_eq!(q.to_bytes(), vec![0; 68]);
        assert_eq!(
            q.SendingFlowspec.LevelOfGuarantee,
            Guarantee::BestEffortService
        );
        assert_eq!(q.validate(), Ok(()));
    }
}
