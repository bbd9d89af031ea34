//! Byte-order helpers (CHECKLIST §1.16): host ↔ TCP/IP network order (big-endian).
#![allow(non_snake_case)]

/// `htonl`: host to network order, 32 bits.
pub fn htonl(hostlong: u32) -> u32 {
    hostlong.to_be()
}
/// `htons`: host to network order, 16 bits.
pub fn htons(hostshort: u16) -> u16 {
    hostshort.to_be()
}
/// `ntohl`: network to host order, 32 bits.
pub fn ntohl(netlong: u32) -> u32 {
    u32::from_be(netlong)
}
/// `ntohs`: network to host order, 16 bits.
pub fn ntohs(netshort: u16) -> u16 {
    u16::from_be(netshort)
}

use super::{record, types::SOCKET, Winsock};
use crate::error::WsaError;

impl Winsock {
    /// The conversion a socket's protocol uses: every entry of this provider is `BIGENDIAN`
    /// (CHECKLIST 509, 510), so these are `htonl`/`htons` after the socket and pointer checks
    /// (`WSAENOTSOCK`, then `WSAEFAULT` for a NULL output, 511, 512).
    fn convert<T>(&self, s: SOCKET, out: Option<&mut T>, v: T) -> Result<(), WsaError> {
        record(self.check(s))?;
        let out = record(out.ok_or(WsaError::WSAEFAULT))?;
        *out = v;
        Ok(())
    }

    /// `WSAHtonl` (CHECKLIST §1.16): `hostlong` in the socket's network order.
    pub fn WSAHtonl(
        &self,
        s: SOCKET,
        hostlong: u32,
        lpnetlong: Option<&mut u32>,
    ) -> Result<(), WsaError> {
        self.convert(s, lpnetlong, htonl(hostlong))
    }

    /// `WSAHtons` (CHECKLIST §1.16): `hostshort` in the socket's network order.
    pub fn WSAHtons(
        &self,
        s: SOCKET,
        hostshort: u16,
        lpnetshort: Option<&mut u16>,
    ) -> Result<(), WsaError> {
        self.convert(s, lpnetshort, htons(hostshort))
    }

    /// `WSANtohl` (CHECKLIST §1.16): `netlong` from the socket's network order.
    pub fn WSANtohl(
        &self,
        s: SOCKET,
        netlong: u32,
        lphostlong: Option<&mut u32>,
    ) -> Result<(), WsaError> {
        self.convert(s, lphostlong, ntohl(netlong))
    }

    /// `WSANtohs` (CHECKLIST §1.16): `netshort` from the socket's network order.
    pub fn WSANtohs(
        &self,
        s: SOCKET,
        netshort: u16,
        lphostshort: Option<&mut u16>,
    ) -> Result<(), WsaError> {
        self.convert(s, lphostshort, ntohs(netshort))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Conformance: 507 — htonl(0x01020304) is bytes 01 02 03 04 in memory; ntohl inverts it.
    #[test]
    fn htonl_memory_layout() {
        assert_eq!(htonl(0x0102_0304).to_ne_bytes(), [1, 2, 3, 4]);
        for x in [0u32, 1, 0x0102_0304, u32::MAX, 0xdead_beef] {
            assert_eq!(ntohl(htonl(x)), x);
        }
    }

    /// Conformance: 508 — htons(0x0102) is bytes 01 02 in memory; ntohs inverts it.
    #[test]
    fn htons_memory_layout() {
        assert_eq!(htons(0x0102).to_ne_bytes(), [1, 2]);
        for x in [0u16, 1, 0x0102, u16::MAX] {
            assert_eq!(ntohs(htons(x)), x);
        }
    }
}
