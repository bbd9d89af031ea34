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
