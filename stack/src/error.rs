//! `WsaError`: the Windows Sockets error codes, one table, as values.
//!
//! Read first: Windows Sockets 2 §"Error Codes" (`shared/spec/003_…`) and CHECKLIST §1.18. The
//! table below is the only place a code, its name and its meaning are written; the constants,
//! `Debug` and `Display` are generated from it (quinn's `transport_error.rs` pattern).

use std::fmt;
use std::io;

/// A Windows Sockets error code (`WSAGetLastError`'s value), a newtype over the spec's `int`.
///
/// Unknown values round-trip and print as their number.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct WsaError(pub i32);

macro_rules! wsa_errors {
    ($($name:ident = $code:expr, $text:expr;)*) => {
        impl WsaError {
            $(
                #[doc = $text]
                pub const $name: WsaError = WsaError($code);
            )*

            /// The spec's name of this code (`"WSAEWOULDBLOCK"`), if it is one of ours.
            pub fn name(self) -> Option<&'static str> {
                match self.0 {
                    $($code => Some(stringify!($name)),)*
                    _ => None,
                }
            }

            /// The spec's one-line meaning of this code.
            pub fn description(self) -> &'static str {
                match self.0 {
                    $($code => $text,)*
                    _ => "unknown Windows Sockets error",
                }
            }
        }
    };
}

wsa_errors! {
    WSA_INVALID_HANDLE = 6, "Specified event object handle is invalid.";
    WSA_NOT_ENOUGH_MEMORY = 8, "Insufficient memory available.";
    WSA_INVALID_PARAMETER = 87, "One or more parameters are invalid.";
    WSA_OPERATION_ABORTED = 995, "Overlapped operation aborted.";
    WSA_IO_INCOMPLETE = 996, "Overlapped I/O event object not in signaled state.";
    WSA_IO_PENDING = 997, "Overlapped operations will complete later.";
    WSAEINTR = 10004, "Interrupted function call.";
    WSAEBADF = 10009, "File handle is not valid.";
    WSAEACCES = 10013, "Permission denied.";
    WSAEFAULT = 10014, "Bad address.";
    WSAEINVAL = 10022, "Invalid argument.";
    WSAEMFILE = 10024, "Too many open files.";
    WSAEWOULDBLOCK = 10035, "Resource temporarily unavailable.";
    WSAEINPROGRESS = 10036, "Operation now in progress.";
    WSAEALREADY = 10037, "Operation already in progress.";
    WSAENOTSOCK = 10038, "Socket operation on non-socket.";
    WSAEDESTADDRREQ = 10039, "Destination address required.";
    WSAEMSGSIZE = 10040, "Message too long.";
    WSAEPROTOTYPE = 10041, "Protocol wrong type for socket.";
    WSAENOPROTOOPT = 10042, "Bad protocol option.";
    WSAEPROTONOSUPPORT = 10043, "Protocol not supported.";
    WSAESOCKTNOSUPPORT = 10044, "Socket type not supported.";
    WSAEOPNOTSUPP = 10045, "Operation not supported.";
    WSAEPFNOSUPPORT = 10046, "Protocol family not supported.";
    WSAEAFNOSUPPORT = 10047, "Address family not supported by protocol family.";
    WSAEADDRINUSE = 10048, "Address already in use.";
    WSAEADDRNOTAVAIL = 10049, "Cannot assign requested address.";
    WSAENETDOWN = 10050, "Network is down.";
    WSAENETUNREACH = 10051, "Network is unreachable.";
    WSAENETRESET = 10052, "Network dropped connection on reset.";
    WSAECONNABORTED = 10053, "Software caused connection abort.";
    WSAECONNRESET = 10054, "Connection reset by peer.";
    WSAENOBUFS = 10055, "No buffer space available.";
    WSAEISCONN = 10056, "Socket is already connected.";
    WSAENOTCONN = 10057, "Socket is not connected.";
    WSAESHUTDOWN = 10058, "Cannot send after socket shutdown.";
    WSAETIMEDOUT = 10060, "Connection timed out.";
    WSAECONNREFUSED = 10061, "Connection refused.";
    WSAEHOSTDOWN = 10064, "Host is down.";
    WSAEHOSTUNREACH = 10065, "No route to host.";
    WSAEPROCLIM = 10067, "Too many processes.";
    WSASYSNOTREADY = 10091, "Network subsystem is unavailable.";
    WSAVERNOTSUPPORTED = 10092, "WINSOCK.DLL version out of range.";
    WSANOTINITIALISED = 10093, "Successful WSAStartup not yet performed.";
    WSAEDISCON = 10101, "Graceful shutdown in progress.";
    WSAEINVALIDPROCTABLE = 10104, "Invalid procedure table from service provider.";
    WSAEINVALIDPROVIDER = 10105, "Invalid service provider version number.";
    WSAEPROVIDERFAILEDINIT = 10106, "Unable to initialize a service provider.";
    WSASYSCALLFAILURE = 10107, "System call failure.";
    WSASERVICE_NOT_FOUND = 10108, "Service not found.";
    WSATYPE_NOT_FOUND = 10109, "Class type not found.";
    WSA_E_NO_MORE = 10110, "No more results.";
    WSA_E_CANCELLED = 10111, "Call was canceled.";
    WSAHOST_NOT_FOUND = 11001, "Host not found.";
    WSATRY_AGAIN = 11002, "Nonauthoritative host not found.";
    WSANO_RECOVERY = 11003, "This is a nonrecoverable error.";
    WSANO_DATA = 11004, "Valid name, no data record of requested type.";
}

impl fmt::Debug for WsaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => f.write_str(name),
            None => write!(f, "WsaError({})", self.0),
        }
    }
}

impl fmt::Display for WsaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => write!(f, "{name} ({}): {}", self.0, self.description()),
            None => write!(f, "Windows Sockets error {}", self.0),
        }
    }
}

impl std::error::Error for WsaError {}

impl WsaError {
    /// The `io::ErrorKind` closest to this code.
    pub fn kind(self) -> io::ErrorKind {
        use io::ErrorKind as K;
        match self {
            Self::WSAEWOULDBLOCK => K::WouldBlock,
            Self::WSAECONNRESET | Self::WSAENETRESET => K::ConnectionReset,
            Self::WSAECONNREFUSED => K::ConnectionRefused,
            Self::WSAECONNABORTED => K::ConnectionAborted,
            Self::WSAENOTCONN => K::NotConnected,
            Self::WSAEADDRINUSE => K::AddrInUse,
            Self::WSAEADDRNOTAVAIL => K::AddrNotAvailable,
            Self::WSAETIMEDOUT => K::TimedOut,
            Self::WSAEINTR => K::Interrupted,
            Self::WSAESHUTDOWN => K::BrokenPipe,
            Self::WSAEINVAL | Self::WSAEFAULT | Self::WSAEDESTADDRREQ => K::InvalidInput,
            Self::WSAEOPNOTSUPP | Self::WSAEAFNOSUPPORT | Self::WSAEPROTONOSUPPORT => {
                K::Unsupported
            }
            Self::WSAENETUNREACH => K::NetworkUnreachable,
            Self::WSAEHOSTUNREACH => K::HostUnreachable,
            Self::WSAENETDOWN => K::NetworkDown,
            _ => K::Other,
        }
    }

    /// Recovers the code from an `io::Error` made by `From<WsaError>`, if it was one.
    pub fn from_io(err: &io::Error) -> Option<WsaError> {
        err.get_ref()?.downcast_ref::<WsaError>().copied()
    }
}

/// Keeps the raw code recoverable through [`WsaError::from_io`].
impl From<WsaError> for io::Error {
    fn from(err: WsaError) -> io::Error {
        io::Error::new(err.kind(), err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_codes_round_trip() {
        assert_eq!(WsaError::WSAEWOULDBLOCK.0, 10035);
        assert_eq!(WsaError(10035), WsaError::WSAEWOULDBLOCK);
        assert_eq!(format!("{:?}", WsaError::WSAENOTSOCK), "WSAENOTSOCK");
        assert_eq!(format!("{:?}", WsaError(12345)), "WsaError(12345)");
        assert!(WsaError::WSAEDISCON.to_string().contains("10101"));
    }

    #[test]
    fn io_error_keeps_the_code() {
        let io: io::Error = WsaError::WSAECONNRESET.into();
        assert_eq!(io.kind(), io::ErrorKind::ConnectionReset);
        assert_eq!(WsaError::from_io(&io), Some(WsaError::WSAECONNRESET));
    }
}
