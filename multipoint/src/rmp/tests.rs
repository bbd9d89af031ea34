//! Tests for docs/rmp.md §2–§9: the codec (§2–§3), the connection machine (§4–§8) and the
//! root's fan-out (§9), on simulated time: `Instant::now()` only picks an epoch; every later
//! instant is that epoch plus a chosen offset.

#![allow(clippy::disallowed_methods)] // Instant::now() picks the simulated epoch

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::{Duration, Instant};

use proptest::prelude::*;

use super::conn::SUPPORTED_VERSIONS;
use super::wire::{
    encode, parse_body, Header, MessageType, TooLarge, HEADER_LEN, MAX_BODY_LEN, MAX_PAYLOAD,
    MAX_QOS, MAX_USER_DATA,
};
use super::*;

// ---------------------------------------------------------------- helpers

fn enc(msgs: &[Message]) -> Vec<u8> {
    let mut out = Vec::new();
    for m in msgs {
        encode(m, &mut out).unwrap();
    }
    out
}

fn decode_all(bytes: &[u8], chunk: usize) -> Result<Vec<Message>, DecodeError> {
    let mut dec = Decoder::new();
    let mut got = Vec::new();
    for piece in bytes.chunks(chunk.max(1)) {
        let mut input = piece;
        while !input.is_empty() {
            if let Some(m) = dec.decode(&mut input)? {
                got.push(m);
            }
        }
    }
    dec.finish()?;
    Ok(got)
}

fn hello(side: Side, plane: DataPlane) -> Message {
    Message::Hello {
        min_version: 1,
        max_version: 1,
        side,
        plane,
    }
}

fn sample_join() -> Join {
    Join {
        initiator: Initiator::LeafRequest,
        flags: JoinFlags::Both,
        caller_data: b"caller".to_vec(),
        sqos: Some(vec![1, 2, 3]),
        gqos: None,
    }
}

fn every_message() -> Vec<Message> {
    vec![
        hello(Side::Root, DataPlane::Rooted),
        hello(Side::Leaf, DataPlane::NonRooted),
        Message::Join(sample_join()),
        Message::Join(Join {
            initiator: Initiator::RootInvite,
            flags: JoinFlags::ReceiverOnly,
            caller_data: vec![],
            sqos: None,
            gqos: Some(vec![9; 40]),
        }),
        Message::Accept {
            callee_data: b"callee".to_vec(),
        },
        Message::Reject {
            reason: RejectReason::Version,
        },
        Message::Data(b"payload".to_vec()),
        Message::Data(vec![]),
        Message::Relayed {
            origin: LeafId(7),
            addr: Some(SocketAddr::from((Ipv4Addr::new(10, 0, 0, 7), 5000))),
            data: b"relayed".to_vec(),
        },
        Message::Relayed {
            origin: LeafId(u32::MAX),
            addr: Some(SocketAddr::from((Ipv6Addr::LOCALHOST, 1))),
            data: vec![],
        },
        Message::Relayed {
            origin: LeafId(0),
            addr: None,
            data: vec![0xAA],
        },
        Message::Disconnect {
            data: b"bye".to_vec(),
        },
        Message::End,
        Message::Ping,
        Message::Pong,
    ]
}

/// Moves `from`'s pending bytes into `to`; returns how many moved.
fn shuttle(from: &mut Connection, to: &mut Connection, now: Instant) -> usize {
    let mut bytes = Vec::new();
    let n = from.transmit(&mut bytes);
    to.receive(now, &bytes);
    n
}

/// Shuttles both ways until quiet (at most 100 rounds: a livelock is a failure).
fn drive(a: &mut Connection, b: &mut Connection, now: Instant) {
    for _ in 0..100 {
        if shuttle(a, b, now) + shuttle(b, a, now) == 0 {
            return;
        }
    }
    panic!("livelock");
}

fn events(c: &mut Connection) -> Vec<Event> {
    std::iter::from_fn(|| c.poll_event()).collect()
}

fn sent(c: &mut Connection) -> Vec<Message> {
    let mut bytes = Vec::new();
    c.transmit(&mut bytes);
    decode_all(&bytes, bytes.len()).unwrap()
}

/// An established (root, leaf) pair; the leaf joined with `flags`.
fn established(
    plane: DataPlane,
    initiator: Side,
    flags: JoinFlags,
    now: Instant,
) -> (Connection, Connection) {
    let mut root = Connection::new(Side::Root, initiator == Side::Root, plane, now);
    let mut leaf = Connection::new(Side::Leaf, initiator == Side::Leaf, plane, now);
    let (init, acc) = match initiator {
        Side::Root => (&mut root, &mut leaf),
        Side::Leaf => (&mut leaf, &mut root),
    };
    init.join(now, flags, b"", None, None).unwrap();
    drive(init, acc, now);
    assert!(matches!(acc.poll_event(), Some(Event::JoinRequest { .. })));
    acc.accept(now, b"").unwrap();
    drive(init, acc, now);
    assert!(matches!(init.poll_event(), Some(Event::Joined { .. })));
    assert_eq!(root.state(), State::Established);
    assert_eq!(leaf.state(), State::Established);
    (root, leaf)
}

/// A connection that has had the peer's HELLO (and, for `established_as`, a whole handshake fed
/// by hand), its own output discarded: a target for crafted bytes.
fn after_hello(side: Side, initiator: bool, plane: DataPlane, now: Instant) -> Connection {
    let peer = match side {
        Side::Root => Side::Leaf,
        Side::Leaf => Side::Root,
    };
    let mut c = Connection::new(side, initiator, plane, now);
    c.receive(now, &enc(&[hello(peer, plane)]));
    sent(&mut c);
    c
}

fn assert_protocol_error(c: &mut Connection, want: ProtocolError, reason: RejectReason) {
    assert_eq!(events(c), [Event::ProtocolError(want)]);
    assert!(c.is_closed());
    assert_eq!(sent(c), [Message::Reject { reason }]);
}

// ---------------------------------------------------------------- wire (§2, §3)

#[test]
fn header_bytes_are_exact() {
    assert_eq!(enc(&[Message::Ping]), b"RM\x01\x09\x00\x00\x00\x00\x00\x00");
    assert_eq!(
        enc(&[hello(Side::Leaf, DataPlane::NonRooted)]),
        b"RM\x01\x01\x00\x00\x00\x00\x00\x04\x01\x01\x02\x02"
    );
    assert_eq!(
        enc(&[Message::Data(vec![0xDE, 0xAD])]),
        b"RM\x01\x05\x00\x00\x00\x00\x00\x02\xDE\xAD"
    );
}

#[test]
fn join_bytes_are_exact() {
    let bytes = enc(&[Message::Join(sample_join())]);
    let mut want = b"RM\x01\x02\x00\x00\x00\x00\x00\x10".to_vec();
    want.extend_from_slice(b"\x02\x04\x01\x00\x06caller\x00\x03\x01\x02\x03");
    assert_eq!(bytes, want);
    assert_eq!(
        decode_all(&bytes, 1).unwrap(),
        [Message::Join(sample_join())]
    );
}

#[test]
fn relayed_bytes_are_exact() {
    let bytes = enc(&[Message::Relayed {
        origin: LeafId(0x0102_0304),
        addr: Some(SocketAddr::from((Ipv4Addr::new(10, 0, 0, 7), 0x1388))),
        data: b"x".to_vec(),
    }]);
    assert_eq!(
        &bytes[HEADER_LEN..],
        b"\x01\x02\x03\x04\x04\x0A\x00\x00\x07\x13\x88x"
    );
}

#[test]
fn every_message_round_trips_in_every_chunking() {
    let all = every_message();
    let bytes = enc(&all);
    for chunk in [1, 2, 3, 7, 10, 11, 64, bytes.len()] {
        assert_eq!(decode_all(&bytes, chunk).unwrap(), all, "chunk {chunk}");
    }
}

#[test]
fn maximum_sizes_round_trip() {
    let big = vec![
        Message::Data(vec![7; MAX_PAYLOAD]),
        Message::Relayed {
            origin: LeafId(1),
            addr: Some(SocketAddr::from((Ipv6Addr::LOCALHOST, 9))),
            data: vec![8; MAX_PAYLOAD],
        },
        Message::Join(Join {
            initiator: Initiator::RootInvite,
            flags: JoinFlags::SenderOnly,
            caller_data: vec![1; MAX_USER_DATA],
            sqos: Some(vec![2; MAX_QOS]),
            gqos: Some(vec![3; MAX_QOS]),
        }),
        Message::Accept {
            callee_data: vec![4; MAX_USER_DATA],
        },
        Message::Disconnect {
            data: vec![5; MAX_USER_DATA],
        },
    ];
    let bytes = enc(&big);
    assert_eq!(decode_all(&bytes, 1000).unwrap(), big);
    // The RELAYED with an IPv6 origin is the largest message there is.
    assert_eq!(
        Header::parse(
            &bytes[MAX_PAYLOAD + HEADER_LEN..][..HEADER_LEN]
                .try_into()
                .unwrap()
        )
        .unwrap()
        .len,
        MAX_BODY_LEN
    );
}

#[test]
fn encode_refuses_oversized_fields_and_appends_nothing() {
    let mut out = vec![0xFF];
    let too_big = [
        Message::Data(vec![0; MAX_PAYLOAD + 1]),
        Message::Accept {
            callee_data: vec![0; MAX_USER_DATA + 1],
        },
        Message::Disconnect {
            data: vec![0; MAX_USER_DATA + 1],
        },
        Message::Join(Join {
            sqos: Some(vec![0; MAX_QOS + 1]),
            ..sample_join()
        }),
    ];
    for m in &too_big {
        assert_eq!(encode(m, &mut out), Err(TooLarge));
    }
    assert_eq!(out, [0xFF]);
}

#[test]
fn truncated_at_every_byte_boundary() {
    for m in every_message() {
        let bytes = enc(std::slice::from_ref(&m));
        for cut in 0..bytes.len() {
            let mut dec = Decoder::new();
            // Byte by byte up to the cut: never a message, never an error.
            for b in &bytes[..cut] {
                let mut input = std::slice::from_ref(b);
                assert_eq!(dec.decode(&mut input), Ok(None));
            }
            let want = if cut == 0 {
                Ok(())
            } else {
                Err(DecodeError::Truncated)
            };
            assert_eq!(dec.finish(), want, "{m:?} cut at {cut}");
            // The rest completes it.
            let mut rest = &bytes[cut..];
            let mut got = None;
            while !rest.is_empty() {
                got = dec.decode(&mut rest).unwrap().or(got);
            }
            assert_eq!(got.as_ref(), Some(&m));
        }
    }
}

#[test]
fn oversized_length_is_refused_before_buffering() {
    for (ty, max) in [
        (5u8, MAX_PAYLOAD),
        (1, 4),
        (4, 1),
        (8, 0),
        (6, MAX_BODY_LEN),
        (7, MAX_USER_DATA),
    ] {
        let mut bytes = b"RM\x01".to_vec();
        bytes.push(ty);
        bytes.extend_from_slice(&[0, 0]);
        bytes.extend_from_slice(&u32::try_from(max + 1).unwrap().to_be_bytes());
        let mut dec = Decoder::new();
        let mut input = &bytes[..];
        let err = dec.decode(&mut input).unwrap_err();
        assert!(matches!(err, DecodeError::Oversized { len, .. } if len as usize == max + 1));
        assert_eq!(dec.buffered(), HEADER_LEN);
    }
    let mut dec = Decoder::new();
    let mut input: &[u8] = b"RM\x01\x05\x00\x00\xFF\xFF\xFF\xFF";
    assert_eq!(
        dec.decode(&mut input),
        Err(DecodeError::Oversized {
            ty: MessageType::Data,
            len: u32::MAX
        })
    );
}

#[test]
fn bad_headers() {
    let cases: [(&[u8], DecodeError); 6] = [
        (b"XM\x01\x09\x00\x00\x00\x00\x00\x00", DecodeError::BadMagic),
        (
            b"RM\x02\x09\x00\x00\x00\x00\x00\x00",
            DecodeError::BadFramingVersion(2),
        ),
        (
            b"RM\x01\x00\x00\x00\x00\x00\x00\x00",
            DecodeError::UnknownType(0),
        ),
        (
            b"RM\x01\x0B\x00\x00\x00\x00\x00\x00",
            DecodeError::UnknownType(11),
        ),
        (
            b"RM\x01\xFF\x00\x00\x00\x00\x00\x00",
            DecodeError::UnknownType(255),
        ),
        (
            b"RM\x01\x09\x80\x01\x00\x00\x00\x00",
            DecodeError::BadFlags(0x8001),
        ),
    ];
    for (bytes, want) in cases {
        assert_eq!(decode_all(bytes, 1), Err(want));
        assert_eq!(decode_all(bytes, bytes.len()), Err(want));
    }
}

#[test]
fn malformed_bodies() {
    use MessageType as T;
    let cases: [(MessageType, &[u8]); 14] = [
        (T::Hello, b"\x01\x01\x03\x01"),               // role 3
        (T::Hello, b"\x01\x01\x01\x00"),               // plane 0
        (T::Hello, b"\x01\x01\x01"),                   // short
        (T::Join, b"\x03\x04\x00\x00\x00"),            // initiator 3
        (T::Join, b"\x01\x03\x00\x00\x00"),            // JL_SENDER_ONLY | JL_RECEIVER_ONLY
        (T::Join, b"\x01\x00\x00\x00\x00"),            // no JL flag
        (T::Join, b"\x01\x04\x04\x00\x00"),            // unknown presence bit
        (T::Join, b"\x01\x04\x00\x00\x05abc"),         // caller data runs past the body
        (T::Join, b"\x01\x04\x01\x00\x00"),            // SQOS announced, missing
        (T::Join, b"\x01\x04\x00\x10\x01"),            // caller data length 4097
        (T::Accept, b"\x00\x01ab"),                    // trailing byte
        (T::Relayed, b"\x00\x00\x00\x01\x05"),         // family 5
        (T::Relayed, b"\x00\x00\x00\x01\x04\x0A\x00"), // IPv4 address cut short
        (T::Relayed, b"\x00\x00\x00"),                 // origin cut short
    ];
    for (ty, body) in cases {
        assert_eq!(
            parse_body(ty, body),
            Err(DecodeError::Malformed(ty)),
            "{body:?}"
        );
        let mut bytes = b"RM\x01".to_vec();
        bytes.push(ty.code());
        bytes.extend_from_slice(&[0, 0]);
        bytes.extend_from_slice(&u32::try_from(body.len()).unwrap().to_be_bytes());
        bytes.extend_from_slice(body);
        assert_eq!(decode_all(&bytes, 1), Err(DecodeError::Malformed(ty)));
    }
    // END, PING, PONG with a body are oversized (their maximum is 0).
    assert!(matches!(
        decode_all(b"RM\x01\x08\x00\x00\x00\x00\x00\x01x", 1),
        Err(DecodeError::Oversized { .. })
    ));
}

#[test]
fn decoder_stays_failed() {
    let mut dec = Decoder::new();
    let mut input: &[u8] = b"XXXXXXXXXX";
    assert_eq!(dec.decode(&mut input), Err(DecodeError::BadMagic));
    let good = enc(&[Message::Ping]);
    let mut input = &good[..];
    assert_eq!(dec.decode(&mut input), Err(DecodeError::BadMagic));
    assert_eq!(dec.finish(), Err(DecodeError::BadMagic));
}

#[test]
fn code_spaces_are_checked_exhaustively() {
    for code in 0..=255u8 {
        assert_eq!(RejectReason::from_code(code).code(), code);
        if let Some(t) = MessageType::from_code(code) {
            assert_eq!(t.code(), code);
        }
        if let Some(f) = JoinFlags::from_bits(code) {
            assert_eq!(f.bits(), code);
            assert_eq!(code.count_ones(), 1);
        }
    }
    assert_eq!((1..=255).filter_map(MessageType::from_code).count(), 10);
    assert!(!JoinFlags::SenderOnly.receives() && JoinFlags::SenderOnly.sends());
    assert!(JoinFlags::ReceiverOnly.receives() && !JoinFlags::ReceiverOnly.sends());
}

// ---------------------------------------------------------------- version negotiation (§4)

fn with_versions(side: Side, initiator: bool, min: u8, max: u8, now: Instant) -> Connection {
    let config = Config {
        min_version: min,
        max_version: max,
        ..Config::default()
    };
    Connection::with_config(side, initiator, DataPlane::Rooted, config, now)
}

#[test]
fn hello_negotiates_the_highest_common_version() {
    let now = Instant::now();
    let mut root = with_versions(Side::Root, false, 1, 3, now);
    let mut leaf = with_versions(Side::Leaf, true, 2, 5, now);
    drive(&mut root, &mut leaf, now);
    assert_eq!((root.version(), leaf.version()), (Some(3), Some(3)));
    assert_eq!(root.state(), State::ExpectJoin);
    assert_eq!(leaf.state(), State::Ready);
    assert_eq!(SUPPORTED_VERSIONS, (1, 1));
}

#[test]
fn no_common_version_rejects_and_closes_both_ends() {
    let now = Instant::now();
    let mut root = with_versions(Side::Root, false, 1, 1, now);
    let mut leaf = with_versions(Side::Leaf, true, 2, 3, now);
    leaf.join(now, JoinFlags::Both, b"", None, None).unwrap();
    drive(&mut root, &mut leaf, now);
    let want = ProtocolError::NoCommonVersion {
        ours: (1, 1),
        theirs: (2, 3),
    };
    assert_eq!(events(&mut root), [Event::ProtocolError(want)]);
    assert_eq!(
        events(&mut leaf),
        [Event::ProtocolError(ProtocolError::NoCommonVersion {
            ours: (2, 3),
            theirs: (1, 1)
        })]
    );
    assert!(root.is_closed() && leaf.is_closed());
    assert_eq!(want.reject_reason(), RejectReason::Version);
}

#[test]
fn one_sided_version_failure_is_heard_as_reject() {
    // The peer speaks 1..=9 but we send it a HELLO it cannot accept (min 10): the peer's REJECT
    // reaches a connection still waiting for HELLO.
    let now = Instant::now();
    let mut leaf = with_versions(Side::Leaf, true, 1, 1, now);
    let mut peer_bytes = enc(&[Message::Reject {
        reason: RejectReason::Version,
    }]);
    leaf.receive(now, &peer_bytes);
    assert_eq!(events(&mut leaf), [Event::Rejected(RejectReason::Version)]);
    assert!(leaf.is_closed());
    // Anything after is ignored.
    peer_bytes = enc(&[Message::Ping]);
    leaf.receive(now, &peer_bytes);
    assert_eq!(events(&mut leaf), []);
}

#[test]
fn role_and_plane_mismatch() {
    let now = Instant::now();
    let mut a = Connection::new(Side::Root, false, DataPlane::Rooted, now);
    let mut b = Connection::new(Side::Root, true, DataPlane::Rooted, now);
    drive(&mut a, &mut b, now);
    assert_eq!(
        events(&mut a),
        [Event::ProtocolError(ProtocolError::RoleMismatch)]
    );
    let mut a = Connection::new(Side::Root, false, DataPlane::Rooted, now);
    let mut b = Connection::new(Side::Leaf, true, DataPlane::NonRooted, now);
    drive(&mut a, &mut b, now);
    assert_eq!(
        events(&mut a),
        [Event::ProtocolError(ProtocolError::PlaneMismatch)]
    );
    assert_eq!(
        events(&mut b),
        [Event::ProtocolError(ProtocolError::PlaneMismatch)]
    );
    assert_eq!(
        ProtocolError::PlaneMismatch.reject_reason(),
        RejectReason::Mismatch
    );
}

// ---------------------------------------------------------------- joining (§5)

#[test]
fn leaf_request_with_caller_and_callee_data_and_flowspecs() {
    let now = Instant::now();
    let mut root = Connection::new(Side::Root, false, DataPlane::Rooted, now);
    let mut leaf = Connection::new(Side::Leaf, true, DataPlane::Rooted, now);
    // Q 424: leaf-initiated, asked before the root's HELLO arrived: queued.
    leaf.join(
        now,
        JoinFlags::Both,
        b"please",
        Some(b"SQOS"),
        Some(b"GQOS"),
    )
    .unwrap();
    assert_eq!(leaf.state(), State::ExpectHello);
    assert_eq!(
        leaf.join(now, JoinFlags::Both, b"", None, None),
        Err(CommandError::AlreadyJoining)
    );
    drive(&mut root, &mut leaf, now);
    assert_eq!(leaf.state(), State::ExpectAccept);
    assert_eq!(root.state(), State::JoinPending);
    // Q 425, 436: the condition function's inputs.
    assert_eq!(
        events(&mut root),
        [Event::JoinRequest {
            initiator: Initiator::LeafRequest,
            flags: JoinFlags::Both,
            caller_data: b"please".to_vec(),
            sqos: Some(b"SQOS".to_vec()),
            gqos: Some(b"GQOS".to_vec()),
        }]
    );
    root.accept(now, b"welcome").unwrap();
    drive(&mut root, &mut leaf, now);
    // Q 426, 436: FD_CONNECT with the callee data.
    assert_eq!(
        events(&mut leaf),
        [Event::Joined {
            callee_data: b"welcome".to_vec()
        }]
    );
    assert_eq!(root.state(), State::Established);
    assert_eq!(leaf.state(), State::Established);
    assert_eq!(root.leaf_flags(), Some(JoinFlags::Both));
    assert_eq!(
        leaf.join(now, JoinFlags::Both, b"", None, None),
        Err(CommandError::AlreadyJoining)
    );
}

#[test]
fn root_invite_handshake() {
    let now = Instant::now();
    let mut root = Connection::new(Side::Root, true, DataPlane::NonRooted, now);
    let mut leaf = Connection::new(Side::Leaf, false, DataPlane::NonRooted, now);
    drive(&mut root, &mut leaf, now);
    assert_eq!(root.state(), State::Ready);
    // Q 417, 418: the root invites; the leaf's listening socket sees the request.
    root.join(now, JoinFlags::ReceiverOnly, b"join us", Some(b"q"), None)
        .unwrap();
    assert_eq!(root.state(), State::ExpectAccept);
    drive(&mut root, &mut leaf, now);
    assert_eq!(
        events(&mut leaf),
        [Event::JoinRequest {
            initiator: Initiator::RootInvite,
            flags: JoinFlags::ReceiverOnly,
            caller_data: b"join us".to_vec(),
            sqos: Some(b"q".to_vec()),
            gqos: None,
        }]
    );
    leaf.accept(now, b"ok").unwrap();
    drive(&mut root, &mut leaf, now);
    // Q 419: FD_CONNECT at the root.
    assert_eq!(
        events(&mut root),
        [Event::Joined {
            callee_data: b"ok".to_vec()
        }]
    );
    assert_eq!(leaf.leaf_flags(), Some(JoinFlags::ReceiverOnly));
}

#[test]
fn command_misuse_is_refused_and_sends_nothing() {
    let now = Instant::now();
    let mut root = Connection::new(Side::Root, false, DataPlane::Rooted, now);
    sent(&mut root);
    assert_eq!(
        root.join(now, JoinFlags::Both, b"", None, None),
        Err(CommandError::WrongSide)
    );
    assert_eq!(
        root.send_data(now, b"x"),
        Err(CommandError::WrongState(State::ExpectHello))
    );
    assert_eq!(
        root.accept(now, b""),
        Err(CommandError::WrongState(State::ExpectHello))
    );
    assert_eq!(
        root.reject(now),
        Err(CommandError::WrongState(State::ExpectHello))
    );
    assert_eq!(
        root.disconnect(now, b""),
        Err(CommandError::WrongState(State::ExpectHello))
    );
    let mut leaf = Connection::new(Side::Leaf, true, DataPlane::Rooted, now);
    sent(&mut leaf);
    assert_eq!(leaf.accept(now, b""), Err(CommandError::WrongSide));
    assert_eq!(leaf.reject(now), Err(CommandError::WrongSide));
    assert_eq!(leaf.end_session(now), Err(CommandError::WrongSide));
    assert_eq!(
        leaf.relay(now, LeafId(1), None, b""),
        Err(CommandError::WrongSide)
    );
    assert_eq!(
        leaf.join(now, JoinFlags::Both, &[0; MAX_USER_DATA + 1], None, None),
        Err(CommandError::TooLarge)
    );
    assert_eq!(
        leaf.join(now, JoinFlags::Both, b"", None, Some(&[0; MAX_QOS + 1])),
        Err(CommandError::TooLarge)
    );
    assert_eq!(root.pending_transmit() + leaf.pending_transmit(), 0);
}

#[test]
fn cf_reject_refuses_the_join() {
    let now = Instant::now();
    for initiator in [Side::Root, Side::Leaf] {
        let mut root = Connection::new(Side::Root, initiator == Side::Root, DataPlane::Rooted, now);
        let mut leaf = Connection::new(Side::Leaf, initiator == Side::Leaf, DataPlane::Rooted, now);
        let (init, acc) = match initiator {
            Side::Root => (&mut root, &mut leaf),
            Side::Leaf => (&mut leaf, &mut root),
        };
        init.join(now, JoinFlags::Both, b"", None, None).unwrap();
        drive(init, acc, now);
        assert!(matches!(
            events(acc).as_slice(),
            [Event::JoinRequest { .. }]
        ));
        acc.reject(now).unwrap();
        assert!(acc.is_closed());
        drive(init, acc, now);
        // Q 420: WSAECONNREFUSED at the initiator.
        assert_eq!(events(init), [Event::Rejected(RejectReason::Refused)]);
        assert!(init.is_closed());
    }
}

#[test]
fn cf_defer_keeps_the_join_pending_alive_until_answered() {
    let t0 = Instant::now();
    let mut root = Connection::new(Side::Root, false, DataPlane::Rooted, t0);
    let mut leaf = Connection::new(Side::Leaf, true, DataPlane::Rooted, t0);
    leaf.join(t0, JoinFlags::SenderOnly, b"", None, None)
        .unwrap();
    drive(&mut root, &mut leaf, t0);
    assert!(matches!(
        events(&mut root).as_slice(),
        [Event::JoinRequest { .. }]
    ));
    // CF_DEFER: no answer for 20 s; keepalive keeps both alive.
    let mut now = t0;
    for _ in 0..200 {
        now += Duration::from_millis(100);
        root.on_timer(now);
        leaf.on_timer(now);
        drive(&mut root, &mut leaf, now);
    }
    assert_eq!(events(&mut root), []);
    assert_eq!(events(&mut leaf), []);
    assert_eq!(root.state(), State::JoinPending);
    root.accept(now, b"late").unwrap();
    drive(&mut root, &mut leaf, now);
    assert_eq!(
        events(&mut leaf),
        [Event::Joined {
            callee_data: b"late".to_vec()
        }]
    );
}

#[test]
fn unanswered_join_times_out() {
    let t0 = Instant::now();
    let mut root = Connection::new(Side::Root, false, DataPlane::Rooted, t0);
    let mut leaf = Connection::new(Side::Leaf, true, DataPlane::Rooted, t0);
    leaf.join(t0, JoinFlags::Both, b"", None, None).unwrap();
    let mut now = t0;
    while !leaf.is_closed() {
        now = leaf.poll_at().unwrap();
        assert!(now <= t0 + Duration::from_secs(30));
        root.on_timer(now);
        leaf.on_timer(now);
        drive(&mut root, &mut leaf, now);
    }
    assert_eq!(now, t0 + Duration::from_secs(30));
    assert_eq!(events(&mut leaf), [Event::JoinTimedOut]);
    assert!(!root.is_closed());
}

// ---------------------------------------------------------------- data (§6)

#[test]
fn data_flows_both_ways() {
    let now = Instant::now();
    for plane in [DataPlane::Rooted, DataPlane::NonRooted] {
        for initiator in [Side::Root, Side::Leaf] {
            let (mut root, mut leaf) = established(plane, initiator, JoinFlags::Both, now);
            root.send_data(now, b"down").unwrap();
            root.send_data(now, b"").unwrap();
            root.send_data(now, &vec![1; MAX_PAYLOAD]).unwrap();
            leaf.send_data(now, b"up").unwrap();
            drive(&mut root, &mut leaf, now);
            assert_eq!(
                events(&mut leaf),
                [
                    Event::Data(b"down".to_vec()),
                    Event::Data(vec![]),
                    Event::Data(vec![1; MAX_PAYLOAD])
                ]
            );
            assert_eq!(events(&mut root), [Event::Data(b"up".to_vec())]);
            assert_eq!(
                root.send_data(now, &vec![0; MAX_PAYLOAD + 1]),
                Err(CommandError::TooLarge)
            );
        }
    }
}

#[test]
fn relay_only_by_the_root_on_the_non_rooted_plane() {
    let now = Instant::now();
    let (mut root, mut leaf) = established(DataPlane::NonRooted, Side::Leaf, JoinFlags::Both, now);
    let addr = SocketAddr::from((Ipv4Addr::new(10, 0, 0, 9), 7000));
    root.relay(now, LeafId(9), Some(addr), b"from nine")
        .unwrap();
    drive(&mut root, &mut leaf, now);
    assert_eq!(
        events(&mut leaf),
        [Event::Relayed {
            origin: LeafId(9),
            addr: Some(addr),
            data: b"from nine".to_vec()
        }]
    );
    let (mut root, _) = established(DataPlane::Rooted, Side::Leaf, JoinFlags::Both, now);
    assert_eq!(
        root.relay(now, LeafId(9), None, b"x"),
        Err(CommandError::RootedPlane)
    );
}

#[test]
fn relayed_on_the_rooted_plane_is_refused_by_the_leaf() {
    let now = Instant::now();
    let (_, mut leaf) = established(DataPlane::Rooted, Side::Leaf, JoinFlags::Both, now);
    let relayed = Message::Relayed {
        origin: LeafId(2),
        addr: None,
        data: b"sneaky".to_vec(),
    };
    leaf.receive(now, &enc(&[relayed]));
    assert_protocol_error(
        &mut leaf,
        ProtocolError::NotAllowed(MessageType::Relayed),
        RejectReason::NotAllowed,
    );
}

#[test]
fn relayed_from_a_leaf_is_refused_by_the_root() {
    let now = Instant::now();
    let (mut root, _) = established(DataPlane::NonRooted, Side::Leaf, JoinFlags::Both, now);
    let relayed = Message::Relayed {
        origin: LeafId(2),
        addr: None,
        data: b"to the others".to_vec(),
    };
    root.receive(now, &enc(&[relayed]));
    assert_protocol_error(
        &mut root,
        ProtocolError::NotAllowed(MessageType::Relayed),
        RejectReason::NotAllowed,
    );
}

#[test]
fn jl_flags_limit_who_sends() {
    let now = Instant::now();
    // A receiver-only leaf may not send; the root refuses DATA from it.
    let (mut root, mut leaf) =
        established(DataPlane::Rooted, Side::Leaf, JoinFlags::ReceiverOnly, now);
    assert_eq!(leaf.send_data(now, b"x"), Err(CommandError::NotAllowed));
    root.send_data(now, b"ok").unwrap();
    sent(&mut root);
    root.receive(now, &enc(&[Message::Data(b"x".to_vec())]));
    assert_protocol_error(
        &mut root,
        ProtocolError::NotAllowed(MessageType::Data),
        RejectReason::NotAllowed,
    );
    // A sender-only leaf receives nothing; DATA to it is refused.
    let (mut root, mut leaf) =
        established(DataPlane::Rooted, Side::Root, JoinFlags::SenderOnly, now);
    assert_eq!(root.send_data(now, b"x"), Err(CommandError::NotAllowed));
    leaf.send_data(now, b"ok").unwrap();
    sent(&mut leaf);
    leaf.receive(now, &enc(&[Message::Data(b"x".to_vec())]));
    assert_protocol_error(
        &mut leaf,
        ProtocolError::NotAllowed(MessageType::Data),
        RejectReason::NotAllowed,
    );
}

// ---------------------------------------------------------------- out of order (§8)

#[test]
fn out_of_order_messages_are_protocol_errors() {
    let now = Instant::now();
    let p = DataPlane::Rooted;
    let data = || Message::Data(b"x".to_vec());
    let unexpected = |got, state| ProtocolError::Unexpected { got, state };
    // First message not HELLO.
    let mut c = Connection::new(Side::Root, false, p, now);
    sent(&mut c);
    c.receive(now, &enc(&[data()]));
    assert_protocol_error(
        &mut c,
        unexpected(MessageType::Data, State::ExpectHello),
        RejectReason::BadMessage,
    );
    // A second HELLO.
    let mut c = after_hello(Side::Root, false, p, now);
    c.receive(now, &enc(&[hello(Side::Leaf, p)]));
    assert_protocol_error(
        &mut c,
        unexpected(MessageType::Hello, State::ExpectJoin),
        RejectReason::BadMessage,
    );
    // DATA before JOIN, and before ACCEPT.
    let mut c = after_hello(Side::Root, false, p, now);
    c.receive(now, &enc(&[data()]));
    assert_protocol_error(
        &mut c,
        unexpected(MessageType::Data, State::ExpectJoin),
        RejectReason::BadMessage,
    );
    let mut c = after_hello(Side::Root, false, p, now);
    c.receive(now, &enc(&[Message::Join(sample_join()), data()]));
    assert!(matches!(c.poll_event(), Some(Event::JoinRequest { .. })));
    assert_protocol_error(
        &mut c,
        unexpected(MessageType::Data, State::JoinPending),
        RejectReason::BadMessage,
    );
    // A second JOIN.
    let mut c = after_hello(Side::Root, false, p, now);
    c.receive(
        now,
        &enc(&[Message::Join(sample_join()), Message::Join(sample_join())]),
    );
    assert!(matches!(c.poll_event(), Some(Event::JoinRequest { .. })));
    assert_protocol_error(
        &mut c,
        unexpected(MessageType::Join, State::JoinPending),
        RejectReason::BadMessage,
    );
    // JOIN at the initiator, ACCEPT at the acceptor.
    let mut c = after_hello(Side::Leaf, true, p, now);
    c.receive(now, &enc(&[Message::Join(sample_join())]));
    assert_protocol_error(
        &mut c,
        unexpected(MessageType::Join, State::Ready),
        RejectReason::BadMessage,
    );
    let mut c = after_hello(Side::Root, false, p, now);
    c.receive(
        now,
        &enc(&[Message::Accept {
            callee_data: vec![],
        }]),
    );
    assert_protocol_error(
        &mut c,
        unexpected(MessageType::Accept, State::ExpectJoin),
        RejectReason::BadMessage,
    );
    // A JOIN claiming root-invite from a leaf.
    let mut c = after_hello(Side::Root, false, p, now);
    let join = Join {
        initiator: Initiator::RootInvite,
        ..sample_join()
    };
    c.receive(now, &enc(&[Message::Join(join)]));
    assert_protocol_error(
        &mut c,
        ProtocolError::WrongInitiator,
        RejectReason::BadMessage,
    );
    // END from a leaf.
    let (mut root, _) = established(p, Side::Leaf, JoinFlags::Both, now);
    root.receive(now, &enc(&[Message::End]));
    assert_protocol_error(
        &mut root,
        ProtocolError::NotAllowed(MessageType::End),
        RejectReason::NotAllowed,
    );
    // DISCONNECT twice; DATA after DISCONNECT.
    let (mut root, _) = established(p, Side::Leaf, JoinFlags::Both, now);
    let bye = Message::Disconnect { data: vec![] };
    root.receive(now, &enc(&[bye.clone(), bye]));
    assert_eq!(
        root.poll_event(),
        Some(Event::PeerDisconnected { data: vec![] })
    );
    assert_protocol_error(
        &mut root,
        unexpected(MessageType::Disconnect, State::Established),
        RejectReason::BadMessage,
    );
    let (mut root, _) = established(p, Side::Leaf, JoinFlags::Both, now);
    root.receive(now, &enc(&[Message::Disconnect { data: vec![] }, data()]));
    assert_eq!(
        root.poll_event(),
        Some(Event::PeerDisconnected { data: vec![] })
    );
    assert_protocol_error(
        &mut root,
        unexpected(MessageType::Data, State::Established),
        RejectReason::BadMessage,
    );
}

#[test]
fn malformed_bytes_close_the_connection_with_reject() {
    let now = Instant::now();
    let (mut root, _) = established(DataPlane::Rooted, Side::Leaf, JoinFlags::Both, now);
    let mut bytes = enc(&[Message::Data(b"fine".to_vec())]);
    bytes.extend_from_slice(b"RM\x01\x2A\x00\x00\x00\x00\x00\x00");
    bytes.extend_from_slice(&enc(&[Message::Data(b"ignored".to_vec())]));
    for b in &bytes {
        root.receive(now, std::slice::from_ref(b));
    }
    assert_eq!(root.poll_event(), Some(Event::Data(b"fine".to_vec())));
    assert_protocol_error(
        &mut root,
        ProtocolError::Decode(DecodeError::UnknownType(42)),
        RejectReason::BadMessage,
    );
}

#[test]
fn a_listening_leaf_refuses_a_plain_tcp_client() {
    // Q 427: only RMP joins are accepted on a listening c_leaf.
    let now = Instant::now();
    let mut leaf = Connection::new(Side::Leaf, false, DataPlane::Rooted, now);
    sent(&mut leaf);
    leaf.receive(now, b"GET / HTTP/1.1\r\n\r\n");
    assert_protocol_error(
        &mut leaf,
        ProtocolError::Decode(DecodeError::BadMagic),
        RejectReason::BadMessage,
    );
}

// ---------------------------------------------------------------- keepalive (§7)

#[test]
fn keepalive_keeps_a_quiet_session_alive() {
    let t0 = Instant::now();
    let (mut root, mut leaf) = established(DataPlane::Rooted, Side::Leaf, JoinFlags::Both, t0);
    let mut now = t0;
    let mut pings = 0;
    for _ in 0..1000 {
        now += Duration::from_millis(10);
        root.on_timer(now);
        leaf.on_timer(now);
        let mut bytes = Vec::new();
        root.transmit(&mut bytes);
        pings += decode_all(&bytes, bytes.len())
            .unwrap()
            .iter()
            .filter(|m| **m == Message::Ping)
            .count();
        leaf.receive(now, &bytes);
        drive(&mut root, &mut leaf, now);
    }
    assert_eq!(events(&mut root), []);
    assert_eq!(events(&mut leaf), []);
    assert!(pings >= 9, "{pings} pings in 10 s");
    assert!(root.poll_at().unwrap() <= now + Duration::from_secs(1));
}

#[test]
fn silent_peer_is_dead_within_the_dead_interval() {
    let t0 = Instant::now();
    for side in [Side::Root, Side::Leaf] {
        let (mut root, mut leaf) = established(DataPlane::Rooted, Side::Leaf, JoinFlags::Both, t0);
        let me = if side == Side::Root {
            &mut root
        } else {
            &mut leaf
        };
        // The peer crashed at t0: nothing arrives any more. Follow poll_at.
        let mut now = t0;
        while !me.is_closed() {
            let next = me.poll_at().unwrap();
            assert!(next >= now);
            now = next;
            me.on_timer(now);
            sent(me);
        }
        assert_eq!(now, t0 + Duration::from_secs(3));
        assert_eq!(events(me), [Event::PeerDead]);
        assert_eq!(me.poll_at(), None);
    }
}

#[test]
fn time_going_backwards_does_not_panic() {
    let t0 = Instant::now() + Duration::from_secs(100);
    let (mut root, mut leaf) = established(DataPlane::Rooted, Side::Leaf, JoinFlags::Both, t0);
    let earlier = t0 - Duration::from_secs(50);
    root.on_timer(earlier);
    root.send_data(earlier, b"x").unwrap();
    leaf.receive(earlier, &{
        let mut b = Vec::new();
        root.transmit(&mut b);
        b
    });
    leaf.on_timer(earlier);
    assert_eq!(events(&mut leaf), [Event::Data(b"x".to_vec())]);
    assert!(!leaf.is_closed());
    leaf.on_timer(t0);
    assert!(!leaf.is_closed());
}

// ---------------------------------------------------------------- teardown (§6)

#[test]
fn disconnect_carries_data_and_half_closes() {
    let now = Instant::now();
    let (mut root, mut leaf) = established(DataPlane::Rooted, Side::Leaf, JoinFlags::Both, now);
    leaf.disconnect(now, b"goodbye").unwrap(); // WSASendDisconnect
    assert_eq!(leaf.send_data(now, b"x"), Err(CommandError::Disconnected));
    assert_eq!(leaf.disconnect(now, b""), Err(CommandError::Disconnected));
    drive(&mut root, &mut leaf, now);
    assert_eq!(
        events(&mut root),
        [Event::PeerDisconnected {
            data: b"goodbye".to_vec()
        }]
    );
    assert!(root.got_disconnect() && leaf.sent_disconnect());
    // The other direction still works.
    root.send_data(now, b"still here").unwrap();
    drive(&mut root, &mut leaf, now);
    assert_eq!(events(&mut leaf), [Event::Data(b"still here".to_vec())]);
    root.disconnect(now, b"").unwrap();
    assert!(root.is_closed());
    drive(&mut root, &mut leaf, now);
    assert_eq!(
        events(&mut leaf),
        [Event::PeerDisconnected { data: vec![] }]
    );
    assert!(leaf.is_closed());
}

#[test]
fn tcp_eof_clean_abrupt_and_truncated() {
    let now = Instant::now();
    // closesocket at a leaf: DISCONNECT then FIN (Q 435).
    let (mut root, mut leaf) = established(DataPlane::Rooted, Side::Leaf, JoinFlags::Both, now);
    leaf.disconnect(now, b"").unwrap();
    drive(&mut root, &mut leaf, now);
    root.receive_eof(now);
    assert_eq!(
        events(&mut root),
        [
            Event::PeerDisconnected { data: vec![] },
            Event::PeerClosed { clean: true }
        ]
    );
    assert!(root.is_closed());
    // A FIN without DISCONNECT: abortive.
    let (mut root, _) = established(DataPlane::Rooted, Side::Leaf, JoinFlags::Both, now);
    root.receive_eof(now);
    assert_eq!(events(&mut root), [Event::PeerClosed { clean: false }]);
    // A FIN inside a message: truncated.
    let (mut root, _) = established(DataPlane::Rooted, Side::Leaf, JoinFlags::Both, now);
    root.receive(now, &enc(&[Message::Data(b"abc".to_vec())])[..12]);
    root.receive_eof(now);
    assert_eq!(
        events(&mut root),
        [Event::ProtocolError(ProtocolError::Decode(
            DecodeError::Truncated
        ))]
    );
}

#[test]
fn end_session_reaches_leaves_in_every_state() {
    let now = Instant::now();
    // Established leaf (Q 432, 433).
    let (mut root, mut leaf) = established(DataPlane::Rooted, Side::Root, JoinFlags::Both, now);
    root.end_session(now).unwrap();
    assert!(root.is_closed());
    assert_eq!(
        root.end_session(now),
        Err(CommandError::WrongState(State::Closed))
    );
    drive(&mut root, &mut leaf, now);
    assert_eq!(events(&mut leaf), [Event::SessionEnded]);
    assert!(leaf.is_closed());
    // A leaf's deferred request: REJECT(refused), the join fails WSAECONNREFUSED.
    let mut root = Connection::new(Side::Root, false, DataPlane::Rooted, now);
    let mut leaf = Connection::new(Side::Leaf, true, DataPlane::Rooted, now);
    leaf.join(now, JoinFlags::Both, b"", None, None).unwrap();
    drive(&mut root, &mut leaf, now);
    assert_eq!(root.state(), State::JoinPending);
    root.end_session(now).unwrap();
    drive(&mut root, &mut leaf, now);
    assert_eq!(events(&mut leaf), [Event::Rejected(RejectReason::Refused)]);
    // An invitation not answered yet: END.
    let mut root = Connection::new(Side::Root, true, DataPlane::Rooted, now);
    let mut leaf = Connection::new(Side::Leaf, false, DataPlane::Rooted, now);
    root.join(now, JoinFlags::Both, b"", None, None).unwrap();
    drive(&mut root, &mut leaf, now);
    assert!(matches!(
        events(&mut leaf).as_slice(),
        [Event::JoinRequest { .. }]
    ));
    root.end_session(now).unwrap();
    drive(&mut root, &mut leaf, now);
    assert_eq!(events(&mut leaf), [Event::SessionEnded]);
}

// ---------------------------------------------------------------- fan-out (§9)

#[test]
fn fan_out_rooted_plane() {
    let mut s = RootSession::new(DataPlane::Rooted);
    let a = s.add_leaf(JoinFlags::Both).unwrap();
    let b = s.add_leaf(JoinFlags::SenderOnly).unwrap();
    let c = s.add_leaf(JoinFlags::ReceiverOnly).unwrap();
    // Q 430: root data to every receiving leaf.
    assert_eq!(
        s.fan_out(Origin::Root).unwrap(),
        FanOut {
            root_receives: false,
            leaves: vec![(a, Delivery::Data), (c, Delivery::Data)]
        }
    );
    // Q 431: leaf data to the root only.
    for from in [a, b] {
        assert_eq!(
            s.fan_out(Origin::Leaf(from)).unwrap(),
            FanOut {
                root_receives: true,
                leaves: vec![]
            }
        );
    }
    assert_eq!(
        s.fan_out(Origin::Leaf(c)),
        Err(FanOutError::LeafMayNotSend(c))
    );
    assert_eq!(
        s.fan_out(Origin::Leaf(LeafId(99))),
        Err(FanOutError::UnknownLeaf(LeafId(99)))
    );
}

#[test]
fn fan_out_non_rooted_plane_relays_to_the_other_receivers() {
    let mut s = RootSession::new(DataPlane::NonRooted);
    let a = s.add_leaf(JoinFlags::Both).unwrap();
    let b = s.add_leaf(JoinFlags::SenderOnly).unwrap();
    let c = s.add_leaf(JoinFlags::ReceiverOnly).unwrap();
    let d = s.add_leaf(JoinFlags::Both).unwrap();
    let relayed = |origin| Delivery::Relayed { origin };
    assert_eq!(
        s.fan_out(Origin::Leaf(a)).unwrap(),
        FanOut {
            root_receives: true,
            leaves: vec![(c, relayed(a)), (d, relayed(a))]
        }
    );
    assert_eq!(
        s.fan_out(Origin::Leaf(b)).unwrap().leaves,
        [(a, relayed(b)), (c, relayed(b)), (d, relayed(b))]
    );
    // Q 435: a leaf leaves, the others stay; ids are not reused.
    assert_eq!(s.remove_leaf(c), Some(JoinFlags::ReceiverOnly));
    assert_eq!(
        s.fan_out(Origin::Leaf(a)).unwrap().leaves,
        [(d, relayed(a))]
    );
    let e = s.add_leaf(JoinFlags::Both).unwrap();
    assert_eq!(e, LeafId(5));
    assert_eq!(s.len(), 4);
}

#[test]
fn a_misbehaving_leaf_drops_only_itself() {
    // 256 leaves, one breaks the protocol; the root drops it and the rest keep receiving.
    let now = Instant::now();
    let mut session = RootSession::new(DataPlane::NonRooted);
    let mut pairs = Vec::new();
    for _ in 0..256 {
        let (root, leaf) = established(DataPlane::NonRooted, Side::Leaf, JoinFlags::Both, now);
        let id = session.add_leaf(JoinFlags::Both).unwrap();
        pairs.push((id, root, leaf));
    }
    let bad = pairs[17].0;
    pairs[17].1.receive(now, b"garbage!!!!");
    assert!(pairs[17].1.is_closed());
    for (id, root, _) in &mut pairs {
        for e in events(root) {
            assert!(matches!(e, Event::ProtocolError(_)));
            session.remove_leaf(*id);
        }
    }
    assert_eq!(session.len(), 255);
    assert_eq!(session.flags(bad), None);
    let out = session.fan_out(Origin::Root).unwrap();
    for (id, delivery) in &out.leaves {
        assert_eq!(*delivery, Delivery::Data);
        let (_, root, leaf) = pairs.iter_mut().find(|(i, ..)| i == id).unwrap();
        root.send_data(now, b"all").unwrap();
        shuttle(root, leaf, now);
        assert_eq!(events(leaf), [Event::Data(b"all".to_vec())]);
    }
    assert_eq!(out.leaves.len(), 255);
}

// ---------------------------------------------------------------- properties

fn blob(max: usize) -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 0..=max)
}

fn arb_message() -> impl Strategy<Value = Message> {
    let side = prop_oneof![Just(Side::Root), Just(Side::Leaf)];
    let plane = prop_oneof![Just(DataPlane::Rooted), Just(DataPlane::NonRooted)];
    let flags = prop_oneof![
        Just(JoinFlags::SenderOnly),
        Just(JoinFlags::ReceiverOnly),
        Just(JoinFlags::Both)
    ];
    let initiator = prop_oneof![Just(Initiator::RootInvite), Just(Initiator::LeafRequest)];
    let addr = prop_oneof![
        Just(None),
        (any::<[u8; 4]>(), any::<u16>()).prop_map(|(ip, p)| Some(SocketAddr::from((ip, p)))),
        (any::<[u8; 16]>(), any::<u16>()).prop_map(|(ip, p)| Some(SocketAddr::from((ip, p)))),
    ];
    prop_oneof![
        (any::<u8>(), any::<u8>(), side, plane).prop_map(|(a, b, side, plane)| Message::Hello {
            min_version: a,
            max_version: b,
            side,
            plane
        }),
        (
            initiator,
            flags,
            blob(64),
            prop::option::of(blob(64)),
            prop::option::of(blob(64))
        )
            .prop_map(
                |(initiator, flags, caller_data, sqos, gqos)| Message::Join(Join {
                    initiator,
                    flags,
                    caller_data,
                    sqos,
                    gqos
                })
            ),
        blob(64).prop_map(|callee_data| Message::Accept { callee_data }),
        any::<u8>().prop_map(|c| Message::Reject {
            reason: RejectReason::from_code(c)
        }),
        blob(300).prop_map(Message::Data),
        (any::<u32>(), addr, blob(300)).prop_map(|(o, addr, data)| Message::Relayed {
            origin: LeafId(o),
            addr,
            data
        }),
        blob(64).prop_map(|data| Message::Disconnect { data }),
        Just(Message::End),
        Just(Message::Ping),
        Just(Message::Pong),
    ]
}

fn all_roles(now: Instant) -> Vec<Connection> {
    let mut v = Vec::new();
    for side in [Side::Root, Side::Leaf] {
        for initiator in [false, true] {
            for plane in [DataPlane::Rooted, DataPlane::NonRooted] {
                let mut c = Connection::new(side, initiator, plane, now);
                if initiator {
                    c.join(now, JoinFlags::Both, b"", None, None).unwrap();
                }
                v.push(c);
            }
        }
    }
    v
}

proptest! {
    #[test]
    fn encode_decode_round_trip(msgs in prop::collection::vec(arb_message(), 1..8), chunk in 1usize..40) {
        let bytes = enc(&msgs);
        prop_assert_eq!(decode_all(&bytes, chunk).unwrap(), msgs);
    }

    #[test]
    fn arbitrary_bytes_never_panic_the_decoder(
        bytes in prop::collection::vec(any::<u8>(), 0..2000),
        chunk in 1usize..64,
        valid_header in any::<bool>(),
    ) {
        let mut input = bytes.clone();
        if valid_header && input.len() >= 4 {
            input[..3].copy_from_slice(b"RM\x01");
            input[3] = 1 + input[3] % 10;
        }
        let mut dec = Decoder::new();
        for piece in input.chunks(chunk) {
            let mut rest = piece;
            while !rest.is_empty() {
                if dec.decode(&mut rest).is_err() {
                    break;
                }
                prop_assert!(dec.buffered() <= HEADER_LEN + MAX_BODY_LEN);
            }
        }
        let _ = dec.finish();
    }

    #[test]
    fn arbitrary_bytes_never_panic_a_connection(
        bytes in prop::collection::vec(any::<u8>(), 0..2000),
        chunk in 1usize..64,
        step_ms in 0u64..2000,
    ) {
        let t0 = Instant::now();
        for mut c in all_roles(t0) {
            let mut now = t0;
            for piece in bytes.chunks(chunk) {
                now += Duration::from_millis(step_ms);
                c.receive(now, piece);
                c.on_timer(now);
            }
            c.receive_eof(now);
            prop_assert!(c.is_closed());
            let mut out = Vec::new();
            c.transmit(&mut out);
            prop_assert!(decode_all(&out, out.len()).is_ok());
        }
    }

    #[test]
    fn arbitrary_messages_never_panic_a_connection(
        msgs in prop::collection::vec(arb_message(), 0..20),
        with_hello in any::<bool>(),
    ) {
        let t0 = Instant::now();
        for mut c in all_roles(t0) {
            let peer = if c.side() == Side::Root { Side::Leaf } else { Side::Root };
            let mut bytes = if with_hello { enc(&[hello(peer, c.plane())]) } else { vec![] };
            bytes.extend_from_slice(&enc(&msgs));
            c.receive(t0, &bytes);
            // Commands at any state return errors, never panic.
            let _ = c.accept(t0, b"");
            let _ = c.send_data(t0, b"x");
            let _ = c.relay(t0, LeafId(1), None, b"x");
            let _ = c.disconnect(t0, b"");
            let _ = c.end_session(t0);
            let mut out = Vec::new();
            c.transmit(&mut out);
            prop_assert!(decode_all(&out, 7).is_ok());
            while c.poll_event().is_some() {}
        }
    }
}

#[test]
fn a_silent_client_is_dropped_after_the_dead_interval() {
    let t0 = Instant::now();
    let mut leaf = Connection::new(Side::Leaf, false, DataPlane::Rooted, t0);
    let mut now = t0;
    while !leaf.is_closed() {
        now = leaf.poll_at().unwrap();
        leaf.on_timer(now);
    }
    assert_eq!(now, t0 + Duration::from_secs(3));
    assert_eq!(events(&mut leaf), [Event::PeerDead]);
}

#[test]
fn every_type_accepts_its_maximum_length_and_no_more() {
    for code in 1..=10u8 {
        let ty = MessageType::from_code(code).unwrap();
        let mut header = *b"RM\x01\x00\x00\x00\x00\x00\x00\x00";
        header[3] = code;
        let max = u32::try_from(ty.max_body_len()).unwrap();
        header[6..].copy_from_slice(&max.to_be_bytes());
        assert_eq!(
            Header::parse(&header),
            Ok(Header {
                ty,
                len: ty.max_body_len()
            })
        );
        header[6..].copy_from_slice(&(max + 1).to_be_bytes());
        assert_eq!(
            Header::parse(&header),
            Err(DecodeError::Oversized { ty, len: max + 1 })
        );
    }
}

#[test]
fn reject_in_an_established_session_closes_it() {
    let now = Instant::now();
    let (mut root, mut leaf) = established(DataPlane::Rooted, Side::Leaf, JoinFlags::Both, now);
    root.receive(
        now,
        &enc(&[Message::Reject {
            reason: RejectReason::Other(200),
        }]),
    );
    assert_eq!(
        events(&mut root),
        [Event::Rejected(RejectReason::Other(200))]
    );
    assert!(root.is_closed());
    assert_eq!(
        root.send_data(now, b"x"),
        Err(CommandError::WrongState(State::Closed))
    );
    assert_eq!(root.pending_transmit(), 0);
    assert!(!leaf.is_closed());
    leaf.receive_eof(now);
    assert_eq!(events(&mut leaf), [Event::PeerClosed { clean: false }]);
}

#[test]
fn poll_at_is_the_earliest_timer() {
    let t0 = Instant::now();
    let config = Config {
        join_timeout: Some(Duration::from_millis(500)),
        ..Config::default()
    };
    let mut leaf = Connection::with_config(Side::Leaf, true, DataPlane::Rooted, config, t0);
    assert_eq!(leaf.poll_at(), Some(t0 + Duration::from_secs(1)));
    leaf.join(t0, JoinFlags::Both, b"", None, None).unwrap();
    assert_eq!(leaf.poll_at(), Some(t0 + Duration::from_millis(500)));
    leaf.on_timer(t0 + Duration::from_millis(499));
    assert!(!leaf.is_closed());
    leaf.on_timer(t0 + Duration::from_millis(500));
    assert_eq!(events(&mut leaf), [Event::JoinTimedOut]);
}

// ---------------------------------------------------------------- bounded state (§12)

/// An established (root, leaf) pair, leaf-initiated, the root's end with `root_config`.
fn established_with(root_config: Config, now: Instant) -> (Connection, Connection) {
    let mut root = Connection::with_config(Side::Root, false, DataPlane::Rooted, root_config, now);
    let mut leaf = Connection::new(Side::Leaf, true, DataPlane::Rooted, now);
    leaf.join(now, JoinFlags::Both, b"", None, None).unwrap();
    drive(&mut leaf, &mut root, now);
    assert!(matches!(root.poll_event(), Some(Event::JoinRequest { .. })));
    root.accept(now, b"").unwrap();
    drive(&mut leaf, &mut root, now);
    assert!(matches!(leaf.poll_event(), Some(Event::Joined { .. })));
    (root, leaf)
}

const PING_BYTES: [u8; 10] = [0x52, 0x4D, 1, 9, 0, 0, 0, 0, 0, 0];

#[test]
fn acceptor_drops_a_peer_that_never_sends_join() {
    // docs/rmp.md §12: a peer that says HELLO and keeps the connection alive with PINGs but
    // never sends JOIN is closed at the join timeout (30 s), nothing sent.
    let t0 = Instant::now();
    let mut root = Connection::new(Side::Root, false, DataPlane::Rooted, t0);
    let mut peer = Connection::new(Side::Leaf, true, DataPlane::Rooted, t0);
    drive(&mut root, &mut peer, t0);
    assert_eq!(root.state(), State::ExpectJoin);
    let mut now = t0;
    for _ in 0..29 {
        now += Duration::from_secs(1);
        peer.on_timer(now);
        root.on_timer(now);
        drive(&mut root, &mut peer, now);
        assert!(!root.is_closed(), "closed early at {:?}", now - t0);
    }
    assert_eq!(root.poll_at(), Some(t0 + Duration::from_secs(30)));
    root.on_timer(t0 + Duration::from_secs(30));
    assert_eq!(events(&mut root), [Event::JoinMissing]);
    assert!(root.is_closed());
    assert_eq!(root.pending_transmit(), 0, "nothing is sent");
}

#[test]
fn a_deferred_join_has_no_deadline() {
    // docs/rmp.md §5.2: once JOIN is in, CF_DEFER may last as long as the application likes.
    let t0 = Instant::now();
    let mut root = Connection::new(Side::Root, false, DataPlane::Rooted, t0);
    let mut leaf = Connection::new(Side::Leaf, true, DataPlane::Rooted, t0);
    leaf.join(t0, JoinFlags::Both, b"", None, None).unwrap();
    drive(&mut leaf, &mut root, t0);
    assert!(matches!(root.poll_event(), Some(Event::JoinRequest { .. })));
    let mut now = t0;
    for _ in 0..25 {
        now += Duration::from_secs(1);
        // The leaf's own join timeout (30 s) is not under test here.
        leaf.on_timer(now);
        root.on_timer(now);
        drive(&mut root, &mut leaf, now);
    }
    let now = t0 + Duration::from_secs(60);
    root.receive(now, &PING_BYTES);
    root.on_timer(now);
    assert_eq!(root.state(), State::JoinPending);
    assert_eq!(events(&mut root), []);
}

#[test]
fn unread_pongs_coalesce_into_one() {
    // docs/rmp.md §12: 20 MB of PINGs whose PONGs TCP never takes queue one PONG, not 2 M.
    let now = Instant::now();
    let (mut root, _leaf) = established(DataPlane::Rooted, Side::Leaf, JoinFlags::Both, now);
    let pings: Vec<u8> = PING_BYTES.repeat(100_000);
    for _ in 0..20 {
        root.receive(now, &pings);
    }
    assert!(!root.is_closed());
    assert_eq!(root.queued(), enc(&[Message::Pong]).as_slice());
    // Once TCP takes it, the next PING is answered again.
    let n = root.queued().len();
    root.transmitted(now, n);
    root.receive(now, &PING_BYTES);
    root.receive(now, &PING_BYTES);
    assert_eq!(sent(&mut root), [Message::Pong]);
}

#[test]
fn a_pong_waits_behind_data_but_is_not_repeated() {
    let now = Instant::now();
    let (mut root, mut leaf) = established(DataPlane::Rooted, Side::Leaf, JoinFlags::Both, now);
    root.send_data(now, b"first").unwrap();
    root.receive(now, &PING_BYTES.repeat(3));
    root.send_data(now, b"second").unwrap();
    root.receive(now, &PING_BYTES);
    // TCP takes part of the queue only: the PONG is not taken yet, so no second one.
    root.transmitted(now, 3);
    root.receive(now, &PING_BYTES);
    let mut bytes = enc(&[Message::Data(b"first".to_vec())])[..3].to_vec();
    root.transmit(&mut bytes);
    leaf.receive(now, &bytes);
    assert_eq!(
        events(&mut leaf),
        [
            Event::Data(b"first".to_vec()),
            Event::Data(b"second".to_vec())
        ]
    );
    let msgs = decode_all(&bytes, bytes.len()).unwrap();
    assert_eq!(msgs.iter().filter(|m| **m == Message::Pong).count(), 1);
}

#[test]
fn own_pings_do_not_pile_up_while_tcp_takes_nothing() {
    // docs/rmp.md §12: one PING of ours waits at most; the peer stays alive by its own PINGs.
    let t0 = Instant::now();
    let (mut leaf, _root) = {
        let (root, leaf) = established(DataPlane::Rooted, Side::Leaf, JoinFlags::Both, t0);
        (leaf, root)
    };
    let mut now = t0;
    for _ in 0..1000 {
        now += Duration::from_millis(500);
        leaf.receive(now, &PING_BYTES);
        leaf.on_timer(now);
    }
    assert!(!leaf.is_closed());
    let msgs = decode_all(leaf.queued(), leaf.queued().len()).unwrap();
    assert_eq!(msgs, [Message::Pong, Message::Ping]);
    assert!(leaf.poll_at().is_some_and(|t| t > now));
}

fn slow_root(limit: SlowPeerLimit, now: Instant) -> (Connection, Connection) {
    established_with(
        Config {
            slow_peer: Some(limit),
            ..Config::default()
        },
        now,
    )
}

#[test]
fn a_peer_that_lets_the_queue_grow_past_the_limit_is_dropped() {
    // docs/rmp.md §12: a message that would queue more than `max_queued` drops the peer.
    let now = Instant::now();
    let limit = SlowPeerLimit {
        max_queued: 1000,
        max_stall: Duration::from_secs(10),
    };
    let (mut root, _leaf) = slow_root(limit, now);
    for _ in 0..9 {
        root.send_data(now, &[7; 100]).unwrap();
    }
    assert!(!root.is_closed());
    assert_eq!(root.pending_transmit(), 9 * 110);
    root.send_data(now, &[7; 100]).unwrap();
    assert_eq!(
        events(&mut root),
        [Event::PeerTooSlow(SlowPeer::QueueFull {
            queued: 1100,
            limit: 1000
        })]
    );
    assert!(root.is_closed());
    assert_eq!(root.pending_transmit(), 0, "the queue is dropped");
    assert_eq!(
        root.send_data(now, b"x"),
        Err(CommandError::WrongState(State::Closed))
    );
}

#[test]
fn a_peer_that_takes_nothing_for_the_stall_time_is_dropped() {
    // docs/rmp.md §12: alive (it PINGs) but TCP takes none of our bytes for `max_stall`.
    let t0 = Instant::now();
    let limit = SlowPeerLimit {
        max_queued: 1 << 20,
        max_stall: Duration::from_secs(10),
    };
    let (mut root, _leaf) = slow_root(limit, t0);
    root.send_data(t0, &[1; 500]).unwrap();
    // Progress (TCP took a few bytes at 5 s) restarts the clock.
    for i in 1..=14 {
        let now = t0 + Duration::from_secs(i);
        root.receive(now, &PING_BYTES);
        if i == 5 {
            root.transmitted(now, 10);
        }
        root.on_timer(now);
        assert!(!root.is_closed(), "dropped at {i} s");
    }
    assert_eq!(root.poll_at(), Some(t0 + Duration::from_secs(15)));
    let now = t0 + Duration::from_secs(15);
    root.receive(now, &PING_BYTES);
    root.on_timer(now);
    assert_eq!(
        events(&mut root),
        [Event::PeerTooSlow(SlowPeer::NoProgress {
            waited: Duration::from_secs(10)
        })]
    );
    assert!(root.is_closed());
    assert_eq!(root.pending_transmit(), 0);
}

#[test]
fn bytes_held_back_in_tcp_keep_the_peer_alive() {
    // docs/rmp.md §7: the engine holds the peer's bytes back while our application reads
    // slowly; their presence proves the peer alive.
    let t0 = Instant::now();
    let (_root, mut leaf) = established(DataPlane::Rooted, Side::Leaf, JoinFlags::Both, t0);
    for s in 1..=10 {
        let now = t0 + Duration::from_secs(s);
        leaf.peer_alive(now);
        leaf.on_timer(now);
        sent(&mut leaf);
    }
    assert!(!leaf.is_closed());
    assert_eq!(events(&mut leaf), []);
    leaf.on_timer(t0 + Duration::from_secs(13));
    assert_eq!(events(&mut leaf), [Event::PeerDead]);
}

#[test]
fn without_a_limit_a_peer_that_does_not_read_is_kept() {
    // docs/rmp.md §12: the limit is the root's; by default (and at a leaf) the connection
    // waits like TCP, as long as the peer is alive.
    let t0 = Instant::now();
    let (mut root, _leaf) = established(DataPlane::Rooted, Side::Leaf, JoinFlags::Both, t0);
    for _ in 0..100 {
        root.send_data(t0, &[0; 60_000]).unwrap();
    }
    let mut now = t0;
    for _ in 0..120 {
        now += Duration::from_secs(1);
        root.receive(now, &PING_BYTES);
        root.on_timer(now);
    }
    assert!(!root.is_closed());
    assert_eq!(events(&mut root), []);
}

proptest! {
    /// docs/rmp.md §12: whatever mix of PING bursts, partial TCP takes and timer ticks, a
    /// joined end that sends no data holds at most one PONG and one PING (plus the rest of a
    /// message TCP took part of): never one answer per PING.
    #[test]
    fn keepalive_queue_stays_bounded(
        ops in proptest::collection::vec((0u8..3, 0usize..5_000), 1..200),
    ) {
        let t0 = Instant::now();
        let (mut root, _leaf) = established(DataPlane::Rooted, Side::Leaf, JoinFlags::Both, t0);
        let mut now = t0;
        for (op, n) in ops {
            match op {
                0 => root.receive(now, &PING_BYTES.repeat(n)),
                1 => root.transmitted(now, n % 16),
                _ => {
                    now += Duration::from_millis(500);
                    root.receive(now, &PING_BYTES);
                    root.on_timer(now);
                }
            }
            prop_assert!(!root.is_closed());
            prop_assert!(root.pending_transmit() <= 30, "{} bytes", root.pending_transmit());
        }
    }
}
