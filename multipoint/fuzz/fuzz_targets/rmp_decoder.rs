//! Fuzz target for the RMP decoder and connection machine: docs/rmp.md §2–§3 (framing, message
//! types) and §8 (errors); how to run it is in §10.
//!
//! The first input byte picks the piece size and the connection role; the rest is fed as TCP
//! bytes to a bare `Decoder` and to a `Connection`, once as is and once behind a valid HELLO so
//! that the fuzzer reaches the handshake and data states. Invariants: nothing panics, the
//! decoder never holds more than one maximum message, and whatever a connection transmits
//! decodes cleanly.
#![no_main]

use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use ws2_multipoint::rmp::wire::{encode, HEADER_LEN, MAX_BODY_LEN};
use ws2_multipoint::rmp::{Connection, DataPlane, Decoder, JoinFlags, Message, Side};

fuzz_target!(|data: &[u8]| {
    let Some((&knobs, rest)) = data.split_first() else {
        return;
    };
    let chunk = usize::from(knobs & 0x1F) + 1;
    let side = if knobs & 0x20 == 0 { Side::Root } else { Side::Leaf };
    let initiator = knobs & 0x40 != 0;
    let plane = if knobs & 0x80 == 0 {
        DataPlane::Rooted
    } else {
        DataPlane::NonRooted
    };

    let mut dec = Decoder::new();
    'outer: for piece in rest.chunks(chunk) {
        let mut input = piece;
        while !input.is_empty() {
            if dec.decode(&mut input).is_err() {
                break 'outer;
            }
            assert!(dec.buffered() <= HEADER_LEN + MAX_BODY_LEN);
        }
    }
    let _ = dec.finish();

    let peer = match side {
        Side::Root => Side::Leaf,
        Side::Leaf => Side::Root,
    };
    let mut prefixed = Vec::new();
    let hello = Message::Hello {
        min_version: 1,
        max_version: 1,
        side: peer,
        plane,
    };
    encode(&hello, &mut prefixed).expect("HELLO fits");
    prefixed.extend_from_slice(rest);
    for input in [rest, &prefixed[..]] {
        // The epoch is arbitrary; the machine never reads a clock itself.
        let t0 = Instant::now();
        let mut conn = Connection::new(side, initiator, plane, t0);
        if initiator {
            let _ = conn.join(t0, JoinFlags::Both, b"fuzz", None, None);
        }
        let mut now = t0;
        for piece in input.chunks(chunk) {
            now += Duration::from_millis(u64::from(knobs));
            conn.receive(now, piece);
            conn.on_timer(now);
            while conn.poll_event().is_some() {}
            if conn.state() == ws2_multipoint::rmp::State::JoinPending {
                let _ = conn.accept(now, b"ok");
            }
            let _ = conn.send_data(now, b"x");
        }
        conn.receive_eof(now);
        let mut out = Vec::new();
        conn.transmit(&mut out);
        let mut check = Decoder::new();
        let mut bytes = &out[..];
        while !bytes.is_empty() {
            check.decode(&mut bytes).expect("our own output decodes");
        }
        check.finish().expect("our own output is whole messages");
    }
});
