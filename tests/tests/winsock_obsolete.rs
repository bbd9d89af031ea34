//! The obsolete Microsoft 1.1 extensions (CHECKLIST §1.11 `EnumProtocols`, §1.17.4):
//! `EnumProtocols`, `GetAddressByName`, `GetTypeByName`, `GetNameByType`, `GetService`,
//! `SetService`. CHECKLIST Part 2 numbers none of them; each test names the layer it checks.

use std::net::{Ipv4Addr, SocketAddrV4};

use ws2_stack::winsock::*;
use ws2_stack::WsaError;
use ws2_tests::*;

fn sockaddr(a: &SOCKET_ADDRESS) -> SocketAddrV4 {
    a.lpSockaddr.to_socket_addr()
}

/// `EnumProtocols` reports the catalog `WSAEnumProtocols` reports, entry for entry, with the
/// `XP_*` flags of each `XP1_*` flag; a short buffer is `ERROR_INSUFFICIENT_BUFFER` with the
/// size needed.
#[test]
fn enum_protocols_matches_wsa_enum_protocols() {
    let (a, _b) = two_hosts(7001);
    let mut need = 0;
    assert_wsa_error(
        a.EnumProtocols(None, None, &mut need),
        ERROR_INSUFFICIENT_BUFFER,
    );
    let mut wsa_len = 0;
    let n = a.WSAEnumProtocols(None, None, &mut wsa_len).unwrap_err();
    assert_eq!(n, WsaError::WSAENOBUFS);
    let count = (wsa_len / WSAPROTOCOL_INFO_LEN) as usize;
    let mut entries = vec![WSAPROTOCOL_INFO::default(); count];
    a.WSAEnumProtocols(None, Some(&mut entries), &mut wsa_len)
        .unwrap();

    let mut buf = vec![PROTOCOL_INFO::default(); count];
    let mut short = need - 1;
    assert_wsa_error(
        a.EnumProtocols(None, Some(&mut buf), &mut short),
        ERROR_INSUFFICIENT_BUFFER,
    );
    assert_eq!(short, need, "the size needed is reported again");
    assert_eq!(buf[0], PROTOCOL_INFO::default(), "the buffer is untouched");
    let mut len = need;
    assert_eq!(
        a.EnumProtocols(None, Some(&mut buf), &mut len),
        Ok(count as i32)
    );
    let expected: u32 = entries
        .iter()
        .map(|e| PROTOCOL_INFO_LEN + e.protocol_name().len() as u32 + 1)
        .sum();
    assert_eq!(len, expected);
    for (p, e) in buf.iter().zip(&entries) {
        assert_eq!(p.iProtocol, e.iProtocol);
        assert_eq!(p.iSocketType, e.iSocketType);
        assert_eq!(p.iAddressFamily, AF_INET);
        assert_eq!(p.lpProtocol, e.protocol_name());
        assert_eq!(p.dwMessageSize, e.dwMessageSize);
    }
    let tcp = buf
        .iter()
        .find(|p| p.iProtocol == IPPROTO_TCP)
        .expect("TCP");
    assert_eq!(
        tcp.dwServiceFlags & (XP_GUARANTEED_DELIVERY | XP_GUARANTEED_ORDER | XP_CONNECTIONLESS),
        XP_GUARANTEED_DELIVERY | XP_GUARANTEED_ORDER
    );
    let udp = buf
        .iter()
        .find(|p| p.iProtocol == IPPROTO_UDP)
        .expect("UDP");
    assert_ne!(udp.dwServiceFlags & XP_CONNECTIONLESS, 0);
    assert_ne!(udp.dwServiceFlags & XP_SUPPORTS_BROADCAST, 0);
}

/// `EnumProtocols` with a NULL-terminated protocol list returns only those protocols; ids with
/// no entry here (IPX, SPX, TP4) match nothing.
#[test]
fn enum_protocols_filter() {
    let (a, _b) = two_hosts(7002);
    let mut buf = vec![PROTOCOL_INFO::default(); 16];
    let mut len = 4096;
    let n = a
        .EnumProtocols(Some(&[IPPROTO_UDP, 0]), Some(&mut buf), &mut len)
        .unwrap();
    assert!(n >= 1);
    assert!(buf[..n as usize].iter().all(|p| p.iProtocol == IPPROTO_UDP));
    let mut len = 4096;
    assert_eq!(
        a.EnumProtocols(
            Some(&[NSPROTO_IPX, NSPROTO_SPX, NSPROTO_SPXII, ISOPROTO_TP4, 0]),
            Some(&mut buf),
            &mut len
        ),
        Ok(0)
    );
    assert_eq!(len, 0);
}

/// `GetTypeByName` and `GetNameByType` translate between a service name and its
/// `SVCID_TCP`/`SVCID_UDP` type through the services database.
#[test]
fn type_and_name() {
    let (a, _b) = two_hosts(7003);
    let mut g = GUID::default();
    a.GetTypeByName("ftp", &mut g).unwrap();
    assert_eq!(g, SVCID_TCP(21));
    a.GetTypeByName("tftp", &mut g).unwrap();
    assert_eq!(g, SVCID_UDP(69), "a UDP-only service");
    a.GetTypeByName("domain/udp", &mut g).unwrap();
    assert_eq!(g, SVCID_UDP(53));
    assert_wsa_error(
        a.GetTypeByName("no-such-service", &mut g),
        ERROR_SERVICE_DOES_NOT_EXIST,
    );

    let mut name = [0xffu8; 16];
    a.GetNameByType(&SVCID_TCP(21), &mut name).unwrap();
    assert_eq!(&name[..4], b"ftp\0");
    a.GetNameByType(&SVCID_UDP(53), &mut name).unwrap();
    assert_eq!(&name[..7], b"domain\0");
    assert_wsa_error(
        a.GetNameByType(&SVCID_TCP(21), &mut [0u8; 3]),
        ERROR_INSUFFICIENT_BUFFER,
    );
    assert_wsa_error(
        a.GetNameByType(&SVCID_HOSTNAME, &mut name),
        ERROR_SERVICE_DOES_NOT_EXIST,
    );
    assert_wsa_error(
        a.GetNameByType(&SVCID_TCP(65_432), &mut name),
        ERROR_SERVICE_DOES_NOT_EXIST,
    );
}

/// `GetAddressByName` resolves a host through `gethostbyname`'s data and builds one
/// `CSADDR_INFO` per address with the port of the `SVCID_TCP` type, and the alias list with the
/// primary name first; sizes are reported and a short buffer fails.
#[test]
fn get_address_by_name() {
    let (a, _b) = two_hosts(7004);
    let ip = Ipv4Addr::new(10, 0, 0, 70);
    a.add_host("svc.lan", &["svc"], &[ip]);
    let mut need = 0;
    assert_wsa_error(
        a.GetAddressByName(
            NS_DEFAULT,
            &SVCID_TCP(8080),
            Some("svc.lan"),
            None,
            0,
            None,
            None,
            &mut need,
            None,
            None,
        ),
        ERROR_INSUFFICIENT_BUFFER,
    );
    assert_eq!(need, CSADDR_INFO_LEN);
    let mut out = [CSADDR_INFO::default(); 4];
    let mut len = 4 * CSADDR_INFO_LEN;
    let mut aliases = [0xffu8; 64];
    let mut alias_len = 64;
    let n = a
        .GetAddressByName(
            NS_DEFAULT,
            &SVCID_TCP(8080),
            Some("svc.lan"),
            None,
            RES_FIND_MULTIPLE,
            None,
            Some(&mut out),
            &mut len,
            Some(&mut aliases),
            Some(&mut alias_len),
        )
        .unwrap();
    assert_eq!(n, 1);
    assert_eq!(len, CSADDR_INFO_LEN);
    assert_eq!(sockaddr(&out[0].RemoteAddr), SocketAddrV4::new(ip, 8080));
    assert_eq!(
        (out[0].iSocketType, out[0].iProtocol),
        (SOCK_STREAM, IPPROTO_TCP)
    );
    assert_eq!(&aliases[..alias_len as usize], b"svc.lan\0svc\0\0");

    // A UDP type, a protocol filter without UDP, a name space that is not installed.
    let mut len = 4 * CSADDR_INFO_LEN;
    let n = a.GetAddressByName(
        NS_TCPIP_HOSTS,
        &SVCID_UDP(53),
        Some("svc.lan"),
        None,
        0,
        None,
        Some(&mut out),
        &mut len,
        None,
        None,
    );
    assert_eq!(n, Ok(1));
    assert_eq!(
        (out[0].iSocketType, out[0].iProtocol),
        (SOCK_DGRAM, IPPROTO_UDP)
    );
    let mut len = 4 * CSADDR_INFO_LEN;
    let none = a.GetAddressByName(
        NS_DEFAULT,
        &SVCID_UDP(53),
        Some("svc.lan"),
        Some(&[IPPROTO_TCP, 0]),
        0,
        None,
        Some(&mut out),
        &mut len,
        None,
        None,
    );
    assert_eq!(none, Ok(0));
    let mut len = 4 * CSADDR_INFO_LEN;
    let sap = a.GetAddressByName(
        NS_SAP,
        &SVCID_TCP(21),
        Some("svc.lan"),
        None,
        0,
        None,
        Some(&mut out),
        &mut len,
        None,
        None,
    );
    assert_eq!(sap, Ok(0));
}

/// `GetAddressByName` with `RES_SERVICE` (or no name) gives the local address to bind, and
/// rejects unknown service types, unknown hosts and a non-NULL `lpServiceAsyncInfo`.
#[test]
fn get_address_by_name_res_service_and_errors() {
    let (a, _b) = two_hosts(7005);
    let mut out = [CSADDR_INFO::default(); 2];
    for (name, res) in [(None, 0), (Some("ignored.lan"), RES_SERVICE)] {
        let mut len = 2 * CSADDR_INFO_LEN;
        let n = a.GetAddressByName(
            NS_DEFAULT,
            &SVCID_TCP(4444),
            name,
            None,
            res,
            None,
            Some(&mut out),
            &mut len,
            None,
            None,
        );
        assert_eq!(n, Ok(1));
        assert_eq!(
            sockaddr(&out[0].LocalAddr),
            SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 4444)
        );
    }
    let mut len = 2 * CSADDR_INFO_LEN;
    assert_wsa_error(
        a.GetAddressByName(
            NS_DEFAULT,
            &SVCID_HOSTNAME,
            Some("x"),
            None,
            0,
            None,
            Some(&mut out),
            &mut len,
            None,
            None,
        ),
        ERROR_SERVICE_DOES_NOT_EXIST,
    );
    assert_wsa_error(
        a.GetAddressByName(
            NS_DEFAULT,
            &SVCID_TCP(1),
            Some("no-such-host.invalid"),
            None,
            0,
            None,
            Some(&mut out),
            &mut len,
            None,
            None,
        ),
        WsaError::WSAHOST_NOT_FOUND,
    );
    assert_wsa_error(
        a.GetAddressByName(
            NS_DEFAULT,
            &SVCID_TCP(1),
            None,
            None,
            0,
            Some(&[0u8; 4]),
            Some(&mut out),
            &mut len,
            None,
            None,
        ),
        ERROR_INVALID_PARAMETER,
    );
}

/// `GetService` finds nothing (`ERROR_SERVICE_NOT_FOUND`) and `SetService` is not supported
/// (`ERROR_NOT_SUPPORTED`): the 1.1 SAP/NDS registration model is not provided.
#[test]
fn get_and_set_service() {
    let (a, _b) = two_hosts(7006);
    let mut buf = [0u8; 64];
    let mut size = 64;
    assert_wsa_error(
        a.GetService(
            NS_DEFAULT,
            &SVCID_TCP(21),
            "ftp",
            PROP_ALL,
            Some(&mut buf),
            &mut size,
            None,
        ),
        ERROR_SERVICE_NOT_FOUND,
    );
    assert_eq!(size, 0);
    let mut status = 7;
    assert_wsa_error(
        a.SetService(
            NS_DEFAULT,
            SERVICE_REGISTER,
            0,
            Some(&[0u8; 16]),
            None,
            Some(&mut status),
        ),
        ERROR_NOT_SUPPORTED,
    );
    assert_eq!(status, 0);
}

/// The obsolete calls need `WSAStartup` like every other.
#[test]
fn not_initialised() {
    let switch = ws2_tap::VirtualSwitch::new(7007);
    let stack = stack_on(&switch, config(A));
    let ws = Winsock::new(stack);
    let mut len = 0;
    assert_wsa_error(
        ws.EnumProtocols(None, None, &mut len),
        WsaError::WSANOTINITIALISED,
    );
    let mut g = GUID::default();
    assert_wsa_error(ws.GetTypeByName("ftp", &mut g), WsaError::WSANOTINITIALISED);
}
