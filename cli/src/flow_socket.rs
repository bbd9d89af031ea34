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

    /// `send` until all of `buf` is taken.
    pub(crate) fn send_all(&self, mut buf: &[u8]) -> Result<(), String> {
        while !buf.is_empty() {
            let n = self.ws.send(self.s, buf, 0).map_err(fail("send"))?;
            buf = &buf[n as usize..];
        }
        Ok(())
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
