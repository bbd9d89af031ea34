//! A Winsock socket set up the way the QoS commands need it: `WSASocket` with a group, then
//! `SO_GROUP_PRIORITY`, then the flowspec through `WSAIoctl(SIO_SET_QOS)` (datagrams) or
//! `WSAConnect`'s `lpSQOS` (streams). Closed, and its session cleaned up, on drop.

use std::net::SocketAddrV4;

use ws2_stack::winsock::*;
use ws2_stack::Stack;

use super::qos_arg::GroupArg;

/// One socket on the Winsock face of a stack.
pub(crate) struct FlowSocket {
    pub(crate) ws: Winsock,
    pub(crate) s: SOCKET,
}

fn fail(what: &'static str) -> impl Fn(WsaError) -> String {
    move |e| format!("{what}: {e}")
}

impl FlowSocket {
    /// `WSASocket(AF_INET, SOCK_STREAM|SOCK_DGRAM, 0, NULL, g, WSA_FLAG_OVERLAPPED)` with `g`
    /// from `group`, then `setsockopt(SO_GROUP_PRIORITY)` if `priority` is given.
    pub(crate) fn open(
        stack: &Stack,
        stream: bool,
        group: Option<GroupArg>,
        priority: Option<i32>,
    ) -> Result<FlowSocket, String> {
        let ws = Winsock::new(stack.clone());
        let mut data = WSADATA::default();
        let rc = ws.WSAStartup(MAKEWORD(2, 2), Some(&mut data));
        if rc != 0 {
            return Err(format!("WSAStartup: {}", WsaError(rc)));
        }
        let ty = if stream { SOCK_STREAM } else { SOCK_DGRAM };
        let g = group.map_or(0, GroupArg::wsasocket_g);
        let s = match ws.WSASocket(AF_INET, ty, 0, None, g, WSA_FLAG_OVERLAPPED) {
            Ok(s) => s,
            Err(e) => {
                let _ = ws.WSACleanup();
                return Err(match (group, e) {
                    (Some(GroupArg::Join(id)), WsaError::WSAEINVAL) => format!(
                        "WSASocket: group {id} is not a live group of this stack (WSAEINVAL); \
                         groups live inside one stack, so use --group new"
                    ),
                    _ => format!("WSASocket: {e}"),
                });
            }
        };
        let sock = FlowSocket { ws, s };
        if let Some(p) = priority {
            if group.is_none() {
                return Err(
                    "--priority needs --group (SO_GROUP_PRIORITY is for group members)".into(),
                );
            }
            sock.ws
                .setsockopt(s, SOL_SOCKET, SO_GROUP_PRIORITY, Some(&p.to_ne_bytes()), 4)
                .map_err(fail("setsockopt(SO_GROUP_PRIORITY)"))?;
        }
        Ok(sock)
    }

    /// `getsockopt(SO_GROUP_ID)`: 0 outside a group.
    pub(crate) fn group_id(&self) -> Result<u32, String> {
        let mut v = [0u8; 4];
        let mut len = 4;
        self.ws
            .getsockopt(self.s, SOL_SOCKET, SO_GROUP_ID, Some(&mut v), &mut len)
            .map_err(fail("getsockopt(SO_GROUP_ID)"))?;
        Ok(u32::from_ne_bytes(v))
    }

    /// `WSAIoctl(SIO_SET_QOS)` with the QOS's documented byte layout.
    pub(crate) fn set_qos(&self, qos: &QOS) -> Result<(), String> {
        let mut returned = 0u32;
        self.ws
            .WSAIoctl(
                self.s,
                SIO_SET_QOS,
                &qos.to_bytes(),
                &mut [],
                Some(&mut returned),
                None,
                None,
            )
            .map_err(|e| match e {
                WsaError::WSAEOPNOTSUPP => {
                    "SIO_SET_QOS: the link cannot reserve that rate (WSAEOPNOTSUPP)".to_string()
                }
                e => format!("SIO_SET_QOS: {e}"),
            })
    }

    /// `bind` to `addr`.
    pub(crate) fn bind(&self, addr: SocketAddrV4) -> Result<(), String> {
        self.ws
            .bind(self.s, Some(&SOCKADDR_IN::new(addr)), SOCKADDR_IN_LEN)
            .map_err(fail("bind"))
    }

    /// `WSAConnect` with `lpSQOS` = `qos`.
    pub(crate) fn connect(&self, to: SocketAddrV4, qos: Option<&QOS>) -> Result<(), WsaError> {
        self.ws.WSAConnect(
            self.s,
            Some(&SOCKADDR_IN::new(to)),
            SOCKADDR_IN_LEN,
            None,
            None,
            qos,
            None,
        )
    }

    /// [`connect`](Self::connect), given up at `deadline` (`WSAETIMEDOUT`): non-blocking
    /// (`FIONBIO`), then `select` until the socket is writable (connected) or in `exceptfds`
    /// (failed: `SO_ERROR`); blocking again once connected. TCP's own connect retries would
    /// outlast a command's `--connect-wait`.
    pub(crate) fn connect_until(
        &self,
        to: SocketAddrV4,
        qos: Option<&QOS>,
        deadline: std::time::Instant,
    ) -> Result<(), WsaError> {
        self.ws.ioctlsocket(self.s, FIONBIO, Some(&mut 1))?;
        match self.connect(to, qos) {
            Ok(()) | Err(WsaError::WSAEWOULDBLOCK) => {}
            Err(e) => return Err(e),
        }
        loop {
            let Some(left) = deadline.checked_duration_since(std::time::Instant::now()) else {
                return Err(WsaError::WSAETIMEDOUT);
            };
            let (mut w, mut x) = (FD_SET::default(), FD_SET::default());
            FD_SET(self.s, &mut w);
            FD_SET(self.s, &mut x);
            let timeout = TIMEVAL {
                tv_sec: 0,
                tv_usec: left.as_micros().clamp(1_000, 100_000) as i32,
            };
            if self
                .ws
                .select(0, None, Some(&mut w), Some(&mut x), Some(&timeout))?
                == 0
            {
                continue;
            }
            if FD_ISSET(self.s, &x) {
                let mut code = [0u8; 4];
                let mut len = 4;
                self.ws
                    .getsockopt(self.s, SOL_SOCKET, SO_ERROR, Some(&mut code), &mut len)?;
                return Err(match i32::from_ne_bytes(code) {
                    0 => WsaError::WSAECONNREFUSED,
                    e => WsaError(e),
                });
            }
            if FD_ISSET(self.s, &w) {
                return self.ws.ioctlsocket(self.s, FIONBIO, Some(&mut 0));
            }
        }
    }

    /// `send` until all of `buf` is taken.
    pub(crate) fn send_all(&self, mut buf: &[u8]) -> Result<(), String> {
        while !buf.is_empty() {
            let n = self.ws.send(self.s, buf, 0).map_err(fail("send"))?;
            buf = &buf[n as usize..];
        }
        Ok(())
    }

    /// A blocking send waits at most `ms` (`SO_SNDTIMEO`), then fails `WSAETIMEDOUT`: a
    /// command's loop looks at its deadline and its signals between tries, however slowly a
    /// flowspec lets it send.
    pub(crate) fn send_timeout(&self, ms: i32) -> Result<(), String> {
        self.ws
            .setsockopt(self.s, SOL_SOCKET, SO_SNDTIMEO, Some(&ms.to_ne_bytes()), 4)
            .map_err(fail("setsockopt(SO_SNDTIMEO)"))
    }

    /// `sendto` one datagram; `Ok(false)` if it timed out (see
    /// [`send_timeout`](Self::send_timeout)) and was not sent.
    pub(crate) fn try_send_to(&self, buf: &[u8], to: SocketAddrV4) -> Result<bool, String> {
        match self
            .ws
            .sendto(self.s, buf, 0, Some(&SOCKADDR_IN::new(to)), SOCKADDR_IN_LEN)
        {
            Ok(_) => Ok(true),
            Err(WsaError::WSAETIMEDOUT) => Ok(false),
            Err(e) => Err(fail("sendto")(e)),
        }
    }

    /// `sendto` one datagram.
    pub(crate) fn send_to(&self, buf: &[u8], to: SocketAddrV4) -> Result<(), String> {
        self.ws
            .sendto(self.s, buf, 0, Some(&SOCKADDR_IN::new(to)), SOCKADDR_IN_LEN)
            .map(drop)
            .map_err(fail("sendto"))
    }
}

impl Drop for FlowSocket {
    fn drop(&mut self) {
        let _ = self.ws.closesocket(self.s);
        let _ = self.ws.WSACleanup();
    }
}
