//! Quality of Service on the Winsock face: the QoS ioctls, `WSAGetQOSByName` and `WSAConnect`
//! (CHECKLIST §1.8.3, §1.3 `WSAConnect`, D-12..D-15, D-27).
//!
//! `QOS`/`FLOWSPEC` are `ws2_qos::{Qos, Flowspec}`; in ioctl buffers a QOS is its documented
//! byte layout (`Qos::to_bytes`: the two flowspecs as eight `int32`s each, then the
//! `ProviderSpecific` length and bytes). What a socket is granted shapes its egress
//! (`engine/qos.rs`).

#![allow(non_upper_case_globals)]

use std::collections::HashMap;
use std::net::SocketAddrV4;
use std::sync::{LazyLock, Mutex};

use super::{record, types::*, Winsock, WSABUF};
use crate::engine::api::options::{QosOf, QosRequest};
use crate::error::WsaError;

pub use ws2_qos::{Flowspec as FLOWSPEC, Guarantee as GUARANTEE, Qos as QOS};

/// `BestEffortService`.
pub const BestEffortService: GUARANTEE = GUARANTEE::BestEffortService;
/// `ControlledLoadService`.
pub const ControlledLoadService: GUARANTEE = GUARANTEE::ControlledLoadService;
/// `PredictiveService`.
pub const PredictiveService: GUARANTEE = GUARANTEE::PredictiveService;
/// `GuaranteedService`.
pub const GuaranteedService: GUARANTEE = GUARANTEE::GuaranteedService;

/// `SIO_GET_QOS`.
pub const SIO_GET_QOS: u32 = IOC_INOUT | IOC_WS2 | 7;
/// `SIO_GET_GROUP_QOS`.
pub const SIO_GET_GROUP_QOS: u32 = IOC_INOUT | IOC_WS2 | 8;
/// `SIO_SET_QOS`.
pub const SIO_SET_QOS: u32 = IOC_IN | IOC_WS2 | 11;
/// `SIO_SET_GROUP_QOS`.
pub const SIO_SET_GROUP_QOS: u32 = IOC_IN | IOC_WS2 | 12;

/// Reads a QOS from an ioctl input buffer: a short buffer is `WSAEFAULT`.
fn read_qos(input: &[u8]) -> Result<QOS, WsaError> {
    QOS::from_bytes(input).map_err(|_| WsaError::WSAEFAULT)
}

/// Writes a QOS into an ioctl output buffer: `WSAEFAULT` if it does not fit.
fn write_qos(qos: &QOS, out: &mut [u8]) -> Result<u32, WsaError> {
    qos.emit(out)
        .map(|n| n as u32)
        .map_err(|_| WsaError::WSAEFAULT)
}

impl Winsock {
    /// The QoS ioctls for `WSAIoctl`: `Some(bytes returned)` when `code` is one of them.
    pub(super) fn qos_ioctl(
        &self,
        s: SOCKET,
        code: u32,
        input: &[u8],
        output: &mut [u8],
    ) -> Option<Result<u32, WsaError>> {
        let id = s as crate::engine::SocketId;
        // Reading the QoS re-enables FD_QOS (§1.6.5), even when it fails.
        let rearm = || self.stack.any_watched() && self.session().sockets.contains_key(&s);
        let mut get = |of| {
            let rearm = rearm();
            let r = self
                .stack
                .with_quiet(|core| core.sio_get_qos(id, of, rearm));
            r.and_then(|q| write_qos(&q, output))
        };
        let set = |of| {
            let qos = read_qos(input);
            self.stack
                .with_quiet(|core| core.sio_set_qos(id, of, qos))
                .map(|()| 0)
        };
        Some(match code {
            SIO_SET_QOS => set(QosOf::Socket),
            SIO_SET_GROUP_QOS => set(QosOf::Group),
            SIO_GET_QOS => get(QosOf::Socket),
            SIO_GET_GROUP_QOS => get(QosOf::Group),
            _ => return None,
        })
    }

    /// `WSAGetQOSByName` (§1.8.3, D-15): fills `lpQOS` from the template named in `lpQOSName`
    /// (G711, G723.1, G729, GSM6.10, H261QCIF, H261CIF, H263QCIF, H263CIF; case ignored; a
    /// trailing NUL allowed). An empty name enumerates: the names are written into
    /// `lpQOSName.buf`, each NUL-terminated, with an empty name last (`WSAEFAULT` if they do
    /// not fit). An unknown name is `WSAEINVAL` (D-27).
    pub fn WSAGetQOSByName(
        &self,
        s: SOCKET,
        lpQOSName: Option<&mut WSABUF>,
        lpQOS: Option<&mut QOS>,
    ) -> Result<bool, WsaError> {
        record(self.check(s))?;
        let Some(name) = lpQOSName else {
            return record(Err(WsaError::WSAEFAULT));
        };
        let text = name.data();
        let text = &text[..text.iter().position(|&b| b == 0).unwrap_or(text.len())];
        if text.is_empty() {
            let mut list = Vec::new();
            for n in ws2_qos::template_names() {
                list.extend_from_slice(n.as_bytes());
                list.push(0);
            }
            list.push(0);
            if name.buf.len() < list.len() {
                return record(Err(WsaError::WSAEFAULT));
            }
            name.buf[..list.len()].copy_from_slice(&list);
            name.len = list.len() as u32;
            return Ok(true);
        }
        let Some(out) = lpQOS else {
            return record(Err(WsaError::WSAEFAULT));
        };
        let template = std::str::from_utf8(text).ok().and_then(ws2_qos::template);
        match template {
            Some(q) => {
                *out = q;
                Ok(true)
            }
            None => record(Err(WsaError::WSAEINVAL)),
        }
    }

    /// `WSAConnect` (§1.3): `connect` that first asks for the socket's QoS (`lpSQOS`: refused
    /// with `WSAEOPNOTSUPP` when it cannot be granted, `WSAEINVAL` when malformed) and, from
    /// the group's creator, the group's (`lpGQOS`; ignored for other sockets). TCP carries no
    /// connect data: `lpCallerData` with bytes is `WSAEPROTONOSUPPORT` (CHECKLIST 126), and
    /// `lpCalleeData` comes back empty. Connectionless sockets ignore both (125).
    #[allow(clippy::too_many_arguments)]
    pub fn WSAConnect(
        &self,
        s: SOCKET,
        name: Option<&SOCKADDR>,
        namelen: i32,
        lpCallerData: Option<&WSABUF>,
        lpCalleeData: Option<&mut WSABUF>,
        lpSQOS: Option<&QOS>,
        lpGQOS: Option<&QOS>,
    ) -> Result<(), WsaError> {
        let id = record(self.check(s))?;
        let caller_data = lpCallerData.is_some_and(|d| !d.data().is_empty());
        let qos = QosRequest {
            socket: lpSQOS,
            group: lpGQOS,
        };
        // The callee a listener of this process finds the caller's flowspecs under.
        let remote = super::names::read_name(name, namelen, WsaError::WSAEFAULT).ok();
        let begun = record(
            self.stack
                .with_quiet(|core| core.wsaconnect_begin(id, caller_data, qos, remote)),
        )?;
        if let Some(callee) = lpCalleeData.filter(|_| !begun.connectionless) {
            callee.len = 0;
        }
        if let (Some(local), Some(remote)) = (begun.offer_from, remote) {
            offered().insert((local, remote), (lpSQOS.cloned(), lpGQOS.cloned()));
        }
        self.connect(s, name, namelen)
    }

    /// The flowspecs of `WSAConnect` and `WSAJoinLeaf`: `lpSQOS` for the socket, `lpGQOS` for
    /// its group when the socket created it (ignored otherwise).
    pub(super) fn connect_qos(
        &self,
        id: crate::engine::SocketId,
        sqos: Option<&QOS>,
        gqos: Option<&QOS>,
    ) -> Result<(), WsaError> {
        let qos = QosRequest {
            socket: sqos,
            group: gqos,
        };
        if !qos.any() {
            return Ok(());
        }
        self.stack.with_quiet(|core| core.qos_request(id, qos))
    }
}

/// Flowspecs callers asked for in `WSAConnect`, by (caller, callee) address.
type Offers = HashMap<(SocketAddrV4, SocketAddrV4), (Option<QOS>, Option<QOS>)>;

static OFFERED: LazyLock<Mutex<Offers>> = LazyLock::new(Mutex::default);

fn offered() -> std::sync::MutexGuard<'static, Offers> {
    OFFERED.lock().unwrap_or_else(|e| e.into_inner())
}

/// The flowspecs (socket, group) the caller at `caller` gave `WSAConnect` for `callee`, taken
/// once. TCP carries no QoS on the wire, so only a caller on a ws2 stack of this process — the
/// in-process LAN — can hand its request to the listener's condition function this way; from
/// any other peer `lpSQOS`/`lpGQOS` stay NULL.
pub(super) fn caller_qos(caller: SocketAddrV4, callee: SocketAddrV4) -> (Option<QOS>, Option<QOS>) {
    let mut offers = offered();
    offers
        .remove(&(caller, callee))
        .or_else(|| {
            // The listener may be bound to INADDR_ANY; the caller named a specific address.
            let key = offers
                .keys()
                .find(|(c, d)| *c == caller && d.port() == callee.port())?;
            let key = *key;
            offers.remove(&key)
        })
        .unwrap_or((None, None))
}
