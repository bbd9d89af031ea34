//! `struct sockaddr` arguments in and out of Winsock calls (CHECKLIST §1.0.2): the checks every
//! call that takes a name applies, in one place for all of them.

use std::net::SocketAddrV4;

use super::types::{AF_INET, SOCKADDR, SOCKADDR_IN, SOCKADDR_IN_LEN};
use crate::error::WsaError;

/// Reads a `struct sockaddr` argument: NULL or short is `WSAEFAULT`; another family is
/// `family_err` (`bind` says `WSAEFAULT`, `connect`/`sendto` say `WSAEAFNOSUPPORT`).
pub(super) fn read_name(
    name: Option<&SOCKADDR>,
    namelen: i32,
    family_err: WsaError,
) -> Result<SocketAddrV4, WsaError> {
    let name = name.ok_or(WsaError::WSAEFAULT)?;
    if namelen < SOCKADDR_IN_LEN {
        return Err(WsaError::WSAEFAULT);
    }
    if i32::from(name.sin_family) != AF_INET {
        return Err(family_err);
    }
    Ok(name.to_socket_addr())
}

/// Writes a value-result address; both `None` is allowed and writes nothing.
pub(super) fn write_name(
    addr: SocketAddrV4,
    name: Option<&mut SOCKADDR>,
    namelen: Option<&mut i32>,
) -> Result<(), WsaError> {
    match (name, namelen) {
        (None, None) => Ok(()),
        (Some(name), Some(len)) => {
            if *len < SOCKADDR_IN_LEN {
                return Err(WsaError::WSAEFAULT);
            }
            *name = SOCKADDR_IN::new(addr);
            *len = SOCKADDR_IN_LEN;
            Ok(())
        }
        _ => Err(WsaError::WSAEFAULT),
    }
}
