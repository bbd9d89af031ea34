//! `select` (CHECKLIST §1.6.2): readiness over arrays of sockets.

use std::time::{Duration, Instant};

use super::{record, types::*, Winsock};
use crate::engine::Engine;
use crate::error::WsaError;

impl Winsock {
    /// `select`: `nfds` is ignored; each non-NULL set keeps only its ready sockets and the
    /// result is the total count. A NULL `timeout` waits for ever, `{0, 0}` polls, and the
    /// `TIMEVAL` is not modified.
    ///
    /// readfds: a pending connection on a listener, data, or a closed/reset connection.
    /// writefds: a completed non-blocking connect, or room to send.
    /// exceptfds: a failed non-blocking connect, or urgent data to read with `MSG_OOB`
    /// (`SO_OOBINLINE` off; with it on, urgent data is simply readable).
    pub fn select(
        &self,
        _nfds: i32,
        readfds: Option<&mut FD_SET>,
        writefds: Option<&mut FD_SET>,
        exceptfds: Option<&mut FD_SET>,
        timeout: Option<&TIMEVAL>,
    ) -> Result<i32, WsaError> {
        record(self.started())?;
        if readfds.is_none() && writefds.is_none() && exceptfds.is_none() {
            return record(Err(WsaError::WSAEINVAL));
        }
        let deadline = match timeout {
            None => None,
            Some(t) if t.tv_sec < 0 || t.tv_usec < 0 || t.tv_usec >= 1_000_000 => {
                return record(Err(WsaError::WSAEINVAL));
            }
            Some(t) => Some(
                Instant::now()
                    + Duration::from_secs(t.tv_sec as u64)
                    + Duration::from_micros(t.tv_usec as u64),
            ),
        };
        let sets: [Vec<SOCKET>; 3] = [
            readfds
                .as_deref()
                .map(|s| s.sockets().to_vec())
                .unwrap_or_default(),
            writefds
                .as_deref()
                .map(|s| s.sockets().to_vec())
                .unwrap_or_default(),
            exceptfds
                .as_deref()
                .map(|s| s.sockets().to_vec())
                .unwrap_or_default(),
        ];
        if sets.iter().all(Vec::is_empty) {
            return record(Err(WsaError::WSAEINVAL));
        }
        let mut ids = Vec::new();
        for set in &sets {
            for &s in set {
                ids.push(record(self.check(s))?);
            }
        }
        let check = |core: &mut Engine| -> Option<[Vec<SOCKET>; 3]> {
            let mut ready: [Vec<SOCKET>; 3] = Default::default();
            // `ids` holds the engine socket of every descriptor, in the sets' order (a
            // duplicated descriptor is not its engine id).
            let mut engine = core.select_readiness(&ids).into_iter();
            for (which, set) in sets.iter().enumerate() {
                for &s in set {
                    let Some(r) = engine.next() else { break };
                    if [r.read, r.write, r.except][which] {
                        ready[which].push(s);
                    }
                }
            }
            ready.iter().any(|r| !r.is_empty()).then_some(ready)
        };
        let ready = match deadline {
            Some(d) if d <= Instant::now() => self.stack.with(check),
            // A cancelled 1.1 select fails WSAEINTR (CHECKLIST §1.7.3, 343).
            _ => record(
                self.block(None, deadline, |core| check(core).map(Ok))
                    .transpose(),
            )?,
        }
        .unwrap_or_default();
        let mut total = 0;
        for (set, ready) in [readfds, writefds, exceptfds].into_iter().zip(&ready) {
            if let Some(set) = set {
                FD_ZERO(set);
                for &s in ready {
                    FD_SET(s, set);
                }
                total += ready.len() as i32;
            }
        }
        Ok(total)
    }
}
