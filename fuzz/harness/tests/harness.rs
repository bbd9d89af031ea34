//! The harness's own checks: frames it injects reach host A and act there, so a clean corpus
//! replay means something. RFC 9293 §3.10.7.4 / RFC 5961 §3.2: a RST whose sequence number is
//! exactly RCV.NXT resets the connection; RFC 3376 §7.2.1 and RFC 2236 §3: a v2 general query
//! makes a member report in version 2.

use std::time::Duration;

use ws2_fuzz::lan::{Lan, GROUP};
use ws2_fuzz::templates::{Addr, Conn, Ctx, IgmpMsg, IgmpTpl, Num, TcpTpl};
use ws2_fuzz::{packet, SEED};
use ws2_stack::WsaError;

fn ctx(lan: &Lan) -> Ctx {
    let s = lan.shared();
    Ctx {
        seq: s.seq.expect("A has sent on the target connection"),
        sent: s.sent.iter().cloned().collect(),
    }
}

/// An exact-match RST forged from B resets A's end of the target connection, and the
/// reference connection to C is untouched.
#[test]
fn forged_rst_with_exact_sequence_resets_target() {
    let mut lan = Lan::new(SEED, None);
    let rst = TcpTpl {
        conn: Conn::Target,
        flags: packet::RST | packet::ACK,
        seq: Num::Near(0),
        ack: Num::Near(0),
        window: 0,
        urgent: 0,
        options: Vec::new(),
        len: 0,
        advance: false,
    };
    let f = rst.build(&ctx(&lan), 0);
    lan.inject(f);
    lan.wait(Duration::from_millis(10));
    let mut buf = [0u8; 64];
    assert_eq!(
        lan.a.recv(lan.a_target, &mut buf, 0),
        Err(WsaError::WSAECONNRESET)
    );
    lan.reference_is_alive(Duration::from_secs(10))
        .expect("the reference connection is alive");
}

/// A forged IGMPv2 general query makes A report its group (A's datagrams are observed).
#[test]
fn forged_query_is_answered() {
    let mut lan = Lan::new(SEED, None);
    lan.shared().sent.clear();
    let q = IgmpTpl {
        msg: IgmpMsg::V2Query {
            max_resp: 10,
            group: ws2_fuzz::templates::Group::Zero,
        },
        src: Addr::Host(200),
        dst: None,
        router_alert: true,
        ttl_one: true,
    };
    let f = q.build(&ctx(&lan), 0);
    lan.inject(f);
    lan.wait(Duration::from_secs(2));
    let reported = lan.shared().sent.iter().any(|d| {
        let hl = usize::from(d[0] & 0x0f) * 4;
        d[9] == 2 && d.get(hl) == Some(&0x16) && d[16..20] == GROUP.octets()
    });
    // 0x16: a version 2 report, which only the v2 query calls for (the join sent v3 reports).
    assert!(reported, "A sent no IGMPv2 report for {GROUP}");
}
