//! The FD_ network events of `WSAAsyncSelect` and `WSAEventSelect`: when each is raised and
//! re-enabled (CHECKLIST §1.6.3–§1.6.5, D-20).
//!
//! Sans-IO: a [`Registration`] holds the selection, which events are *armed* (may be raised),
//! and for `WSAEventSelect` the network-event record. The engine computes what holds for the
//! socket now ([`Conditions`]) after every pass and after every call that re-enables an event;
//! [`Registration::evaluate`] returns the events to raise and disarms them. The rules:
//!
//! - level events (`FD_READ`, `FD_OOB`, `FD_ACCEPT`) are raised whenever armed and their
//!   condition holds; the re-enabling call (`recv`…, `accept`) arms them again, even when it
//!   fails, so data still queued raises them again at once;
//! - `FD_WRITE` is armed by the registration, by connection establishment, by a send that failed
//!   `WSAEWOULDBLOCK` and by `bind` on a datagram socket — a successful send arms nothing;
//! - `FD_CONNECT` and `FD_CLOSE` are one-shot: `FD_CONNECT` is armed by the registration of a
//!   connected or connecting socket and by each `connect`, `FD_CLOSE` by the registration only;
//! - `FD_QOS` and `FD_GROUP_QOS` are edge events: a change of what was granted is pending until
//!   `SIO_GET_QOS`/`SIO_GET_GROUP_QOS` reads it, and that read re-arms them; so each change is
//!   raised once, and one pending at registration is raised then.
//!
//! The order of one evaluation is the order an application needs: `FD_CONNECT` before
//! `FD_WRITE`, data before closure.

use std::sync::mpsc::Sender;

use super::event::EventRef;

/// `FD_READ_BIT` … `FD_GROUP_QOS_BIT`, and the two bits later headers add.
pub const FD_READ_BIT: usize = 0;
/// Bit of `FD_WRITE`.
pub const FD_WRITE_BIT: usize = 1;
/// Bit of `FD_OOB`.
pub const FD_OOB_BIT: usize = 2;
/// Bit of `FD_ACCEPT`.
pub const FD_ACCEPT_BIT: usize = 3;
/// Bit of `FD_CONNECT`.
pub const FD_CONNECT_BIT: usize = 4;
/// Bit of `FD_CLOSE`.
pub const FD_CLOSE_BIT: usize = 5;
/// Bit of `FD_QOS`.
pub const FD_QOS_BIT: usize = 6;
/// Bit of `FD_GROUP_QOS`.
pub const FD_GROUP_QOS_BIT: usize = 7;
/// Bit of `FD_ROUTING_INTERFACE_CHANGE` (never raised here).
pub const FD_ROUTING_INTERFACE_CHANGE_BIT: usize = 8;
/// Bit of `FD_ADDRESS_LIST_CHANGE` (never raised here).
pub const FD_ADDRESS_LIST_CHANGE_BIT: usize = 9;
/// Slots of `WSANETWORKEVENTS::iErrorCode`.
pub const FD_MAX_EVENTS: usize = 10;

/// `FD_READ`: data to read.
pub const FD_READ: i32 = 1 << FD_READ_BIT;
/// `FD_WRITE`: sends possible again.
pub const FD_WRITE: i32 = 1 << FD_WRITE_BIT;
/// `FD_OOB`: urgent data to read.
pub const FD_OOB: i32 = 1 << FD_OOB_BIT;
/// `FD_ACCEPT`: a connection to accept.
pub const FD_ACCEPT: i32 = 1 << FD_ACCEPT_BIT;
/// `FD_CONNECT`: a connect (or join) finished.
pub const FD_CONNECT: i32 = 1 << FD_CONNECT_BIT;
/// `FD_CLOSE`: the connection closed.
pub const FD_CLOSE: i32 = 1 << FD_CLOSE_BIT;
/// `FD_QOS`: the socket's QoS changed.
pub const FD_QOS: i32 = 1 << FD_QOS_BIT;
/// `FD_GROUP_QOS`: the group's QoS changed.
pub const FD_GROUP_QOS: i32 = 1 << FD_GROUP_QOS_BIT;
/// `FD_ROUTING_INTERFACE_CHANGE` (accepted in masks, never raised).
pub const FD_ROUTING_INTERFACE_CHANGE: i32 = 1 << FD_ROUTING_INTERFACE_CHANGE_BIT;
/// `FD_ADDRESS_LIST_CHANGE` (accepted in masks, never raised).
pub const FD_ADDRESS_LIST_CHANGE: i32 = 1 << FD_ADDRESS_LIST_CHANGE_BIT;
/// Every event bit.
pub const FD_ALL_EVENTS: i32 = (1 << FD_MAX_EVENTS) - 1;

/// A window handle: the id of a [`crate::winsock::MessageQueue`].
pub type HWND = usize;

/// A window message as `WSAAsyncSelect` posts it.
#[allow(non_snake_case)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MSG {
    /// The window.
    pub hwnd: HWND,
    /// The `wMsg` of the registration.
    pub message: u32,
    /// The socket.
    pub wParam: usize,
    /// `WSAMAKESELECTREPLY(event, error)`.
    pub lParam: u32,
}

/// `WSAMAKESELECTREPLY`: the event in the low word, the error in the high word.
pub const fn WSAMAKESELECTREPLY(event: u16, error: u16) -> u32 {
    (error as u32) << 16 | event as u32
}

/// `WSAGETSELECTEVENT`: the event of a notification's `lParam` (its low word).
pub const fn WSAGETSELECTEVENT(lParam: u32) -> u16 {
    lParam as u16
}

/// `WSAGETSELECTERROR`: the error of a notification's `lParam` (its high word).
pub const fn WSAGETSELECTERROR(lParam: u32) -> u16 {
    (lParam >> 16) as u16
}

/// Where notifications go.
#[derive(Debug, Clone)]
pub(crate) enum Target {
    /// `WSAEventSelect`: record and signal.
    Event(EventRef),
    /// `WSAAsyncSelect`: one message per event.
    Window {
        hwnd: HWND,
        msg: u32,
        sink: Sender<MSG>,
    },
}

/// What holds for a socket now.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Conditions {
    /// Data (or, with `SO_OOBINLINE`, urgent data) can be read.
    pub(crate) read: bool,
    /// Urgent data can be read with `MSG_OOB`.
    pub(crate) oob: bool,
    /// A connection waits to be accepted.
    pub(crate) accept: bool,
    /// A send would not block.
    pub(crate) write: bool,
    /// A connect finished: `Some(0)` established, `Some(error)` failed.
    pub(crate) connect: Option<i32>,
    /// The connection closed with this error (0 graceful) and no data remains.
    pub(crate) close: Option<i32>,
    /// The socket's QoS changed since `SIO_GET_QOS` last read it.
    pub(crate) qos: bool,
    /// The group's QoS changed since `SIO_GET_GROUP_QOS` last read it.
    pub(crate) group_qos: bool,
}

/// Events a new registration arms (the QoS events are raised at registration only if a change
/// is pending).
const ARMED_AT_START: i32 =
    FD_READ | FD_OOB | FD_ACCEPT | FD_WRITE | FD_CLOSE | FD_QOS | FD_GROUP_QOS;

/// One socket's `WSAAsyncSelect` or `WSAEventSelect` registration.
#[derive(Debug, Clone)]
pub(crate) struct Registration {
    pub(crate) target: Target,
    /// The events asked for.
    pub(crate) mask: i32,
    /// Events that may be raised now.
    armed: i32,
    /// `WSAEventSelect`'s record: events raised since the last `WSAEnumNetworkEvents`.
    pub(crate) record: i32,
    /// The errors of the recorded events, by bit.
    pub(crate) errors: [i32; FD_MAX_EVENTS],
}

impl Registration {
    /// A new registration; `connecting` says whether the socket is connected or connecting
    /// (which arms `FD_CONNECT`).
    pub(crate) fn new(target: Target, mask: i32, connecting: bool) -> Registration {
        Registration {
            target,
            mask,
            armed: ARMED_AT_START | if connecting { FD_CONNECT } else { 0 },
            record: 0,
            errors: [0; FD_MAX_EVENTS],
        }
    }

    /// The registration an accepted socket inherits from its listener: same target and
    /// events, a fresh record, armed as for a new connection (no `FD_CONNECT`).
    pub(crate) fn inherited(&self) -> Registration {
        Registration::new(self.target.clone(), self.mask, false)
    }

    /// Arms `events` (a re-enabling call, a connect, a would-block send, a datagram bind).
    pub(crate) fn arm(&mut self, events: i32) {
        self.armed |= events;
    }

    /// Whether anything the registration asks for may be raised.
    pub(crate) fn live(&self) -> bool {
        self.armed & self.mask != 0
    }

    /// The events to raise now, with their errors, in delivery order; they are disarmed and,
    /// for an event registration, recorded.
    pub(crate) fn evaluate(&mut self, c: &Conditions) -> Vec<(i32, i32)> {
        let candidates = [
            (FD_CONNECT, c.connect),
            (FD_ACCEPT, c.accept.then_some(0)),
            (FD_READ, c.read.then_some(0)),
            (FD_OOB, c.oob.then_some(0)),
            (FD_WRITE, c.write.then_some(0)),
            (FD_CLOSE, c.close),
            (FD_QOS, c.qos.then_some(0)),
            (FD_GROUP_QOS, c.group_qos.then_some(0)),
        ];
        let mut raised = Vec::new();
        for (event, error) in candidates {
            let Some(error) = error else { continue };
            if self.mask & self.armed & event == 0 {
                continue;
            }
            self.armed &= !event;
            if matches!(self.target, Target::Event(_)) {
                self.record |= event;
                self.errors[event.trailing_zeros() as usize] = error;
            }
            raised.push((event, error));
        }
        raised
    }

    /// Delivers raised events for socket `s`: signals the event object or posts one message
    /// per event. A window whose queue is gone loses the message silently (as a destroyed
    /// window would).
    pub(crate) fn deliver(&self, s: u64, raised: &[(i32, i32)]) {
        if raised.is_empty() {
            return;
        }
        match &self.target {
            Target::Event(e) => e.set(),
            Target::Window { hwnd, msg, sink } => {
                for &(event, error) in raised {
                    let _ = sink.send(MSG {
                        hwnd: *hwnd,
                        message: *msg,
                        wParam: s as usize,
                        lParam: WSAMAKESELECTREPLY(event as u16, error as u16),
                    });
                }
            }
        }
    }

    /// `WSAEnumNetworkEvents`: takes the record.
    pub(crate) fn take_record(&mut self) -> (i32, [i32; FD_MAX_EVENTS]) {
        let r = (self.record, self.errors);
        self.record = 0;
        self.errors = [0; FD_MAX_EVENTS];
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc::channel;

    fn window(mask: i32) -> (Registration, std::sync::mpsc::Receiver<MSG>) {
        let (tx, rx) = channel();
        let target = Target::Window {
            hwnd: 1,
            msg: 0x400,
            sink: tx,
        };
        (Registration::new(target, mask, false), rx)
    }

    fn events(r: &[(i32, i32)]) -> Vec<i32> {
        r.iter().map(|e| e.0).collect()
    }

    /// Conformance: 259, 260 — FD_READ once per re-enable while data remains.
    #[test]
    fn read_is_level_triggered_with_reenable() {
        let (mut r, _) = window(FD_READ);
        let data = Conditions {
            read: true,
            ..Default::default()
        };
        assert_eq!(events(&r.evaluate(&data)), [FD_READ]);
        assert!(r.evaluate(&data).is_empty(), "no flood before a recv");
        r.arm(FD_READ | FD_OOB);
        assert_eq!(events(&r.evaluate(&data)), [FD_READ], "data remains");
        r.arm(FD_READ);
        assert!(r.evaluate(&Conditions::default()).is_empty(), "all read");
        assert_eq!(events(&r.evaluate(&data)), [FD_READ], "new data");
    }

    /// Conformance: 264, 268 — FD_WRITE after FD_CONNECT, once; a send does not re-arm it.
    #[test]
    fn connect_then_write_once() {
        let (tx, _rx) = channel();
        let target = Target::Window {
            hwnd: 1,
            msg: 1,
            sink: tx,
        };
        let mut r = Registration::new(target, FD_CONNECT | FD_WRITE | FD_CLOSE, true);
        assert!(r.evaluate(&Conditions::default()).is_empty());
        let up = Conditions {
            write: true,
            connect: Some(0),
            ..Default::default()
        };
        assert_eq!(events(&r.evaluate(&up)), [FD_CONNECT, FD_WRITE]);
        assert!(r.evaluate(&up).is_empty());
        r.arm(FD_WRITE);
        assert_eq!(
            events(&r.evaluate(&up)),
            [FD_WRITE],
            "after a would-block send"
        );
    }

    /// Conformance: 257 — one message per event, socket in wParam, packed lParam.
    #[test]
    fn messages_pack_event_and_error() {
        let (mut r, rx) = window(FD_CLOSE | FD_READ);
        let c = Conditions {
            close: Some(10054),
            ..Default::default()
        };
        let raised = r.evaluate(&c);
        r.deliver(42, &raised);
        let m = rx.try_recv().unwrap();
        assert_eq!((m.hwnd, m.message, m.wParam), (1, 0x400, 42));
        assert_eq!(WSAGETSELECTEVENT(m.lParam) as i32, FD_CLOSE);
        assert_eq!(WSAGETSELECTERROR(m.lParam), 10054);
        assert!(rx.try_recv().is_err());
        assert!(r.evaluate(&c).is_empty(), "FD_CLOSE is one-shot");
    }

    #[test]
    fn unselected_events_are_not_raised() {
        let (mut r, _) = window(FD_ACCEPT);
        let all = Conditions {
            read: true,
            oob: true,
            accept: true,
            write: true,
            connect: Some(0),
            close: Some(0),
            qos: true,
            group_qos: true,
        };
        assert_eq!(events(&r.evaluate(&all)), [FD_ACCEPT]);
    }
}
