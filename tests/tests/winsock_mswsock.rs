//! CHECKLIST Part 2 group Y and 193/194: the Microsoft extensions `AcceptEx`,
//! `GetAcceptExSockaddrs`, `TransmitFile`, `SO_UPDATE_ACCEPT_CONTEXT` and `WSARecvEx`
//! (Part 1 §1.3, §1.4, §1.6.6, §1.13.2; Part 3 #9, #10).
//!
//! `AcceptEx`'s output buffer moves into the operation and comes back through the
//! `WSAOVERLAPPED` (`take_buffers`); `TransmitFile` reads a `std::fs::File` from the offset in
//! its `OVERLAPPED`. Files are temporary, under `std::env::temp_dir()`, removed by a guard.

use std::fs::File;
use std::io::{Seek, SeekFrom, Write};
use std::path::PathBuf;
use std::time::Duration;

use ws2_stack::winsock::*;
use ws2_stack::WsaError;
use ws2_tests::*;

const LONG: Duration = Duration::from_secs(5);
const QUIET: Duration = Duration::from_millis(300);
/// Address slot length: sizeof(sockaddr_in) + 16, the least `AcceptEx` takes.
const SLOT: u32 = 32;

/// A temporary file removed on drop.
struct TempFile {
    path: PathBuf,
    file: File,
}

impl TempFile {
    fn with(name: &str, content: &[u8]) -> TempFile {
        let path = std::env::temp_dir().join(format!("ws2-mswsock-{}-{name}", std::process::id()));
        let mut file = File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .expect("temp file");
        file.write_all(content).expect("write temp file");
        file.seek(SeekFrom::Start(0)).expect("rewind");
        TempFile { path, file }
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// `n` bytes of a pattern that shows misplaced offsets.
fn pattern(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 7 + i / 251) as u8).collect()
}

/// An `AcceptEx` of `recv_len` bytes of first data on `l` into `acc`, signalling `ev`:
/// the call's result and the buffer's length.
fn post_accept_ex(
    ws: &Winsock,
    l: SOCKET,
    acc: SOCKET,
    recv_len: u32,
    ov: &WSAOVERLAPPED,
) -> Result<u32, WsaError> {
    let mut buf = vec![0u8; recv_len as usize + 2 * SLOT as usize];
    let mut n = 0;
    ws.AcceptEx(
        l,
        acc,
        &mut buf,
        recv_len,
        SLOT,
        SLOT,
        Some(&mut n),
        Some(ov),
    )
    .map(|()| n)
}

/// Waits for `ov`'s event and returns the operation's byte count.
#[track_caller]
fn completed(ws: &Winsock, s: SOCKET, ov: &WSAOVERLAPPED) -> u32 {
    assert_eq!(
        ws.WSAWaitForMultipleEvents(&[ov.hEvent], false, LONG.as_millis() as u32, false),
        Ok(WSA_WAIT_EVENT_0),
        "the operation completes"
    );
    let (mut n, mut flags) = (0, 0);
    ws.WSAGetOverlappedResult(s, ov, &mut n, false, &mut flags)
        .expect("completed successfully");
    n
}

/// A listener on B at `port`, a fresh accept socket on B, and an event for the operation.
fn server(b: &Winsock, port: u16) -> (SOCKET, SOCKET, WSAOVERLAPPED) {
    let l = listener(b, at(B, port), 4);
    let acc = new_socket(b, SOCK_STREAM);
    let ov = WSAOVERLAPPED::new(b.WSACreateEvent().expect("event"));
    (l, acc, ov)
}

/// Conformance: 572 — AcceptEx with dwReceiveDataLength 0 completes as soon as a client
/// connects, and the accept socket is then a connected socket.
#[test]
fn accept_ex_without_data_completes_on_connect() {
    let (a, b) = two_hosts(5720);
    let (l, acc, ov) = server(&b, 5720);
    assert_wsa_error(post_accept_ex(&b, l, acc, 0, &ov), WsaError::WSA_IO_PENDING);
    assert_eq!(
        b.WSAWaitForMultipleEvents(&[ov.hEvent], false, QUIET.as_millis() as u32, false),
        Ok(WSA_WAIT_TIMEOUT),
        "nothing to accept yet"
    );
    let c = new_socket(&a, SOCK_STREAM);
    connect(&a, c, at(B, 5720)).expect("connect");
    assert_eq!(completed(&b, l, &ov), 0, "no data asked for");
    send_all(&a, c, b"ping");
    assert_eq!(recv_exact(&b, acc, 4), b"ping");
    send_all(&b, acc, b"pong");
    assert_eq!(recv_exact(&a, c, 4), b"pong");
}

/// Conformance: 573 — with dwReceiveDataLength > 0 AcceptEx completes only after the first
/// data, which lies at offset 0 of the output buffer.
#[test]
fn accept_ex_waits_for_first_data() {
    let (a, b) = two_hosts(5730);
    let (l, acc, ov) = server(&b, 5730);
    assert_wsa_error(
        post_accept_ex(&b, l, acc, 100, &ov),
        WsaError::WSA_IO_PENDING,
    );
    let c = new_socket(&a, SOCK_STREAM);
    connect(&a, c, at(B, 5730)).expect("connect");
    assert_eq!(
        b.WSAWaitForMultipleEvents(&[ov.hEvent], false, QUIET.as_millis() as u32, false),
        Ok(WSA_WAIT_TIMEOUT),
        "connected, but no data yet"
    );
    send_all(&a, c, b"first block");
    assert_eq!(completed(&b, l, &ov), 11);
    let buf = ov.take_buffers().remove(0).buf;
    assert_eq!(&buf[..11], b"first block");
    assert_eq!(
        buf.len(),
        100 + 2 * SLOT as usize,
        "the whole buffer comes back"
    );
}

/// Conformance: 574 — GetAcceptExSockaddrs gives getsockname and getpeername of the accepted
/// socket.
#[test]
fn sockaddrs_are_getsockname_and_getpeername() {
    let (a, b) = two_hosts(5740);
    let (l, acc, ov) = server(&b, 5740);
    let c = new_socket(&a, SOCK_STREAM);
    connect(&a, c, at(B, 5740)).expect("connect");
    match post_accept_ex(&b, l, acc, 0, &ov) {
        Ok(0) => {}
        Err(WsaError::WSA_IO_PENDING) => assert_eq!(completed(&b, l, &ov), 0),
        r => panic!("AcceptEx: {r:?}"),
    }
    let buf = ov.take_buffers().remove(0).buf;
    let (mut local, mut remote) = (SOCKADDR_IN::default(), SOCKADDR_IN::default());
    let (mut llen, mut rlen) = (0, 0);
    GetAcceptExSockaddrs(
        &buf,
        0,
        SLOT,
        SLOT,
        &mut local,
        &mut llen,
        &mut remote,
        &mut rlen,
    );
    assert_eq!((llen, rlen), (SOCKADDR_IN_LEN, SOCKADDR_IN_LEN));
    assert_eq!(local.to_socket_addr(), local_name(&b, acc).unwrap());
    assert_eq!(remote.to_socket_addr(), peer_name(&b, acc).unwrap());
    assert_eq!(remote.to_socket_addr(), local_name(&a, c).unwrap());
    assert_eq!(local.to_socket_addr(), at(B, 5740));
}

/// A connection already in the backlog completes AcceptEx synchronously: `Ok`, the event is
/// set and `*lpdwBytesReceived` is the first data's length.
#[test]
fn accept_ex_completes_at_once_from_the_backlog() {
    let (a, b) = two_hosts(5721);
    let (l, acc, ov) = server(&b, 5721);
    let c = new_socket(&a, SOCK_STREAM);
    connect(&a, c, at(B, 5721)).expect("connect");
    send_all(&a, c, b"abc");
    // Wait until B holds the connection and its data.
    assert!(wait_until(LONG, || poll_one(&b, l, 0).0));
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(post_accept_ex(&b, l, acc, 16, &ov), Ok(3));
    assert_eq!(
        b.WSAWaitForMultipleEvents(&[ov.hEvent], false, 0, false),
        Ok(WSA_WAIT_EVENT_0),
        "the indication was given before the call returned"
    );
    assert_eq!(&ov.take_buffers()[0].buf[..3], b"abc");
}

/// Conformance: 575 — address lengths under the maximum address length + 16 are WSAEINVAL.
#[test]
fn short_address_slots_are_invalid() {
    let (_a, b) = two_hosts(5750);
    let (l, acc, ov) = server(&b, 5750);
    let mut buf = vec![0u8; 256];
    for (local, remote) in [(SLOT - 1, SLOT), (SLOT, SLOT - 1), (16, 16), (0, 0)] {
        assert_wsa_error(
            b.AcceptEx(l, acc, &mut buf, 0, local, remote, None, Some(&ov)),
            WsaError::WSAEINVAL,
        );
        assert_eq!(buf.len(), 256, "a refused call keeps the caller's buffer");
    }
    assert_wsa_error(
        b.AcceptEx(l, acc, &mut vec![0u8; 63], 0, SLOT, SLOT, None, Some(&ov)),
        WsaError::WSAEFAULT,
    );
    assert!(!ov.is_pending(), "nothing started");
}

/// Conformance: 576 — an accept socket that is bound, connected, or already waited for by
/// another AcceptEx is WSAEINVAL.
#[test]
fn bound_or_connected_accept_socket_is_invalid() {
    let (a, b) = two_hosts(5760);
    let (l, _, ov) = server(&b, 5760);
    let bound = new_socket(&b, SOCK_STREAM);
    bind(&b, bound, at(B, 0)).expect("bind");
    assert_wsa_error(post_accept_ex(&b, l, bound, 0, &ov), WsaError::WSAEINVAL);
    let (_c, connected) = tcp_pair(&a, &b, 5761);
    assert_wsa_error(
        post_accept_ex(&b, l, connected, 0, &ov),
        WsaError::WSAEINVAL,
    );
    let fresh = new_socket(&b, SOCK_STREAM);
    assert_wsa_error(
        post_accept_ex(&b, l, fresh, 0, &ov),
        WsaError::WSA_IO_PENDING,
    );
    let ov2 = WSAOVERLAPPED::new(b.WSACreateEvent().unwrap());
    assert_wsa_error(post_accept_ex(&b, l, fresh, 0, &ov2), WsaError::WSAEINVAL);
    assert_wsa_error(post_accept_ex(&b, l, l, 0, &ov2), WsaError::WSAEINVAL);
    let not_listening = new_socket(&b, SOCK_STREAM);
    let other = new_socket(&b, SOCK_STREAM);
    assert_wsa_error(
        post_accept_ex(&b, not_listening, other, 0, &ov2),
        WsaError::WSAEINVAL,
    );
    let udp = udp_bound(&b, at(B, 5762));
    assert_wsa_error(
        post_accept_ex(&b, udp, other, 0, &ov2),
        WsaError::WSAEOPNOTSUPP,
    );
}

/// Conformance: 577 — AcceptEx without lpOverlapped is WSAEINVAL.
#[test]
fn accept_ex_needs_overlapped() {
    let (_a, b) = two_hosts(5770);
    let (l, acc, _) = server(&b, 5770);
    let mut buf = vec![0u8; 64];
    let mut n = 0;
    assert_wsa_error(
        b.AcceptEx(l, acc, &mut buf, 0, SLOT, SLOT, Some(&mut n), None),
        WsaError::WSAEINVAL,
    );
}

/// Several AcceptEx on one listener take connections in the order they were posted; closing
/// the accept socket of a pending one aborts it without an indication (D-10) and leaves the
/// connection for the next.
#[test]
fn accept_ex_order_and_abort() {
    let (a, b) = two_hosts(5722);
    let l = listener(&b, at(B, 5722), 8);
    let ovs: Vec<WSAOVERLAPPED> = (0..3)
        .map(|_| WSAOVERLAPPED::new(b.WSACreateEvent().unwrap()))
        .collect();
    let accs: Vec<SOCKET> = (0..3).map(|_| new_socket(&b, SOCK_STREAM)).collect();
    for (acc, ov) in accs.iter().zip(&ovs) {
        assert_wsa_error(post_accept_ex(&b, l, *acc, 0, ov), WsaError::WSA_IO_PENDING);
    }
    b.closesocket(accs[0])
        .expect("close the first accept socket");
    // The close wakes the stack, whose next pass ends the operation.
    assert!(wait_until(LONG, || !ovs[0].is_pending()));
    assert_eq!(ovs[0].Internal(), WsaError::WSA_OPERATION_ABORTED.0);
    let c1 = new_socket(&a, SOCK_STREAM);
    connect(&a, c1, at(B, 5722)).expect("connect");
    assert_eq!(completed(&b, l, &ovs[1]), 0);
    assert!(ovs[2].is_pending(), "one connection, one AcceptEx");
    assert_eq!(peer_name(&b, accs[1]).unwrap(), local_name(&a, c1).unwrap());
    assert_eq!(
        b.WSAWaitForMultipleEvents(&[ovs[0].hEvent], false, 0, false),
        Ok(WSA_WAIT_TIMEOUT),
        "the aborted operation gave no indication"
    );
    let c2 = new_socket(&a, SOCK_STREAM);
    connect(&a, c2, at(B, 5722)).expect("connect");
    assert_eq!(completed(&b, l, &ovs[2]), 0);
    b.closesocket(l).expect("close listener");
}

/// Conformance: 578 — after SO_UPDATE_ACCEPT_CONTEXT the AcceptEx socket has the listening
/// socket's WSAAsyncSelect registration; before, it has none.
#[test]
fn update_accept_context_inherits_the_registration() {
    let (a, b) = two_hosts(5780);
    let (l, acc, ov) = server(&b, 5780);
    let queue = MessageQueue::new();
    b.WSAAsyncSelect(l, queue.hwnd(), 0x400, FD_ACCEPT | FD_READ | FD_WRITE)
        .expect("WSAAsyncSelect");
    assert_wsa_error(post_accept_ex(&b, l, acc, 0, &ov), WsaError::WSA_IO_PENDING);
    let c = new_socket(&a, SOCK_STREAM);
    connect(&a, c, at(B, 5780)).expect("connect");
    completed(&b, l, &ov);
    std::thread::sleep(QUIET);
    while let Some(m) = queue.PeekMessage() {
        assert_ne!(
            m.wParam, acc,
            "no registration before SO_UPDATE_ACCEPT_CONTEXT"
        );
    }
    let lb = l.to_ne_bytes();
    b.setsockopt(
        acc,
        SOL_SOCKET,
        SO_UPDATE_ACCEPT_CONTEXT,
        Some(&lb),
        lb.len() as i32,
    )
    .expect("SO_UPDATE_ACCEPT_CONTEXT");
    let m = queue
        .GetMessage(Some(LONG))
        .expect("FD_WRITE for the accepted socket");
    assert_eq!((m.wParam, m.message), (acc, 0x400));
    assert_eq!(WSAGETSELECTEVENT(m.lParam), FD_WRITE as u16);
    send_all(&a, c, b"x");
    let m = queue.GetMessage(Some(LONG)).expect("FD_READ");
    assert_eq!(
        (m.wParam, WSAGETSELECTEVENT(m.lParam)),
        (acc, FD_READ as u16)
    );
}

/// Conformance: 580 — nNumberOfBytesToWrite 0 with head and tail sends the head, the whole
/// file, then the tail; the overlapped result counts all three.
#[test]
fn transmit_file_head_file_tail() {
    let (a, b) = two_hosts(5800);
    let (c, s) = tcp_pair(&a, &b, 5800);
    let body = pattern(300_000);
    let f = TempFile::with("head-tail", &body);
    let buffers = TRANSMIT_FILE_BUFFERS::new(b"HEAD:".to_vec(), b":TAIL".to_vec());
    let ov = OVERLAPPED::new(a.WSACreateEvent().unwrap(), 0);
    assert_wsa_error(
        a.TransmitFile(c, &f.file, 0, 0, Some(&ov), Some(&buffers), 0),
        WsaError::WSA_IO_PENDING,
    );
    let want = [b"HEAD:".as_slice(), &body, b":TAIL"].concat();
    assert_eq!(recv_exact(&b, s, want.len()), want);
    assert_eq!(completed(&a, c, &ov), want.len() as u32);
}

/// Conformance: 581 — lpOverlapped->Offset = k starts at file offset k; nNumberOfBytesToWrite
/// limits the file part; without lpOverlapped the file's position is the start and moves past
/// what was sent.
#[test]
fn transmit_file_offsets() {
    let (a, b) = two_hosts(5810);
    let (c, s) = tcp_pair(&a, &b, 5810);
    let body = pattern(100_000);
    let f = TempFile::with("offset", &body);
    let ov = OVERLAPPED::new(a.WSACreateEvent().unwrap(), 12_345);
    assert_wsa_error(
        a.TransmitFile(c, &f.file, 0, 1000, Some(&ov), None, 0),
        WsaError::WSA_IO_PENDING,
    );
    assert_eq!(recv_exact(&b, s, body.len() - 12_345), &body[12_345..]);
    assert_eq!(completed(&a, c, &ov), (body.len() - 12_345) as u32);

    let ov = OVERLAPPED::new(a.WSACreateEvent().unwrap(), (1u64 << 32) + 5);
    assert_eq!((ov.Offset, ov.OffsetHigh), (5, 1));
    assert_wsa_error(
        a.TransmitFile(c, &f.file, 0, 0, Some(&ov), None, 0),
        WsaError::WSA_IO_PENDING,
    );
    assert_eq!(
        completed(&a, c, &ov),
        0,
        "an offset past the end sends nothing"
    );

    let mut file = &f.file;
    file.seek(SeekFrom::Start(500)).unwrap();
    a.TransmitFile(c, &f.file, 700, 0, None, None, 0)
        .expect("synchronous TransmitFile");
    assert_eq!(recv_exact(&b, s, 700), &body[500..1200]);
    assert_eq!(
        file.stream_position().unwrap(),
        1200,
        "the file position moved"
    );
}

/// Conformance: 582 — TF_DISCONNECT | TF_REUSE_SOCKET leaves the socket unbound and unconnected,
/// and it can be AcceptEx's accept socket again; the peer gets all data and the end of the
/// stream.
#[test]
fn reused_socket_goes_back_to_accept_ex() {
    let (a, b) = two_hosts(5820);
    let (l, acc, ov) = server(&b, 5820);
    assert_wsa_error(post_accept_ex(&b, l, acc, 0, &ov), WsaError::WSA_IO_PENDING);
    let c1 = new_socket(&a, SOCK_STREAM);
    connect(&a, c1, at(B, 5820)).expect("connect");
    completed(&b, l, &ov);
    let body = pattern(50_000);
    let f = TempFile::with("reuse", &body);
    let tov = OVERLAPPED::new(b.WSACreateEvent().unwrap(), 0);
    assert_wsa_error(
        b.TransmitFile(
            acc,
            &f.file,
            0,
            0,
            Some(&tov),
            None,
            TF_DISCONNECT | TF_REUSE_SOCKET,
        ),
        WsaError::WSA_IO_PENDING,
    );
    assert_eq!(completed(&b, acc, &tov), body.len() as u32);
    let got = recv_exact(&a, c1, body.len() + 1);
    assert_eq!(got, body, "all data, then the end of the stream");
    assert_wsa_error(local_name(&b, acc), WsaError::WSAEINVAL);
    assert_wsa_error(peer_name(&b, acc), WsaError::WSAENOTCONN);

    assert_wsa_error(post_accept_ex(&b, l, acc, 0, &ov), WsaError::WSA_IO_PENDING);
    let c2 = new_socket(&a, SOCK_STREAM);
    connect(&a, c2, at(B, 5820)).expect("connect again");
    completed(&b, l, &ov);
    assert_eq!(peer_name(&b, acc).unwrap(), local_name(&a, c2).unwrap());
    send_all(&b, acc, b"second life");
    assert_eq!(recv_exact(&a, c2, 11), b"second life");
}

/// Conformance: 583 — TF_REUSE_SOCKET without TF_DISCONNECT is WSAEINVAL; so are
/// TF_WRITE_BEHIND with TF_DISCONNECT and unknown flags, while the TF_USE_* flags are accepted.
#[test]
fn transmit_file_flag_rules() {
    let (a, b) = two_hosts(5830);
    let (c, s) = tcp_pair(&a, &b, 5830);
    let f = TempFile::with("flags", b"0123456789");
    for flags in [
        TF_REUSE_SOCKET,
        TF_WRITE_BEHIND | TF_DISCONNECT,
        TF_WRITE_BEHIND | TF_DISCONNECT | TF_REUSE_SOCKET,
        0x100,
    ] {
        assert_wsa_error(
            a.TransmitFile(c, &f.file, 0, 0, None, None, flags),
            WsaError::WSAEINVAL,
        );
    }
    a.TransmitFile(
        c,
        &f.file,
        0,
        0,
        None,
        None,
        TF_USE_DEFAULT_WORKER | TF_USE_SYSTEM_THREAD | TF_USE_KERNEL_APC,
    )
    .expect("TF_USE_* are no-ops");
    assert_eq!(recv_exact(&b, s, 10), b"0123456789");
}

/// Conformance: 584 — TransmitFile on a UDP socket is WSAEOPNOTSUPP.
#[test]
fn transmit_file_on_udp_is_not_supported() {
    let (a, _b) = two_hosts(5840);
    let u = udp_bound(&a, at(A, 5840));
    connect(&a, u, at(B, 5840)).expect("connect");
    let f = TempFile::with("udp", b"datagram?");
    assert_wsa_error(
        a.TransmitFile(u, &f.file, 0, 0, None, None, 0),
        WsaError::WSAEOPNOTSUPP,
    );
}

/// TransmitFile's other refusals: an unconnected socket, head/tail lengths beyond their
/// buffers, lpOverlapped on a socket without the overlapped attribute (D-9).
#[test]
fn transmit_file_refusals() {
    let (a, b) = two_hosts(5841);
    let f = TempFile::with("refusals", b"x");
    let idle = new_socket(&a, SOCK_STREAM);
    assert_wsa_error(
        a.TransmitFile(idle, &f.file, 0, 0, None, None, 0),
        WsaError::WSAENOTCONN,
    );
    let (c, _s) = tcp_pair(&a, &b, 5841);
    let bad = TRANSMIT_FILE_BUFFERS {
        Head: b"ab".to_vec(),
        HeadLength: 3,
        ..Default::default()
    };
    assert_wsa_error(
        a.TransmitFile(c, &f.file, 0, 0, None, Some(&bad), 0),
        WsaError::WSAEFAULT,
    );
    let plain = a
        .WSASocket(AF_INET, SOCK_STREAM, 0, None, 0, 0)
        .expect("socket without WSA_FLAG_OVERLAPPED");
    let l = listener(&b, at(B, 5842), 1);
    connect(&a, plain, at(B, 5842)).expect("connect");
    let _s2 = b.accept(l, None, None).expect("accept");
    let ov = OVERLAPPED::new(0, 0);
    assert_wsa_error(
        a.TransmitFile(plain, &f.file, 0, 0, Some(&ov), None, 0),
        WsaError::WSAEINVAL,
    );
}

/// TF_WRITE_BEHIND returns at once and the data still arrives; TF_DISCONNECT ends the stream.
#[test]
fn transmit_file_write_behind_and_disconnect() {
    let (a, b) = two_hosts(5842);
    let (c, s) = tcp_pair(&a, &b, 5843);
    let body = pattern(200_000);
    let f = TempFile::with("behind", &body);
    a.TransmitFile(c, &f.file, 0, 0, None, None, TF_WRITE_BEHIND)
        .expect("write-behind returns TRUE");
    assert_eq!(recv_exact(&b, s, body.len()), body);
    let f2 = TempFile::with("disconnect", b"last words");
    a.TransmitFile(c, &f2.file, 0, 0, None, None, TF_DISCONNECT)
        .expect("TransmitFile + TF_DISCONNECT");
    assert_eq!(
        recv_exact(&b, s, 11),
        b"last words",
        "then the end of the stream"
    );
}

/// Conformance: 585, 194 — WSARecvEx on TCP returns what recv returns and never sets
/// MSG_PARTIAL, even when the buffer is smaller than what is queued.
#[test]
fn recv_ex_on_tcp_is_recv() {
    let (a, b) = two_hosts(5850);
    let (c, s) = tcp_pair(&a, &b, 5850);
    send_all(&a, c, b"0123456789");
    assert!(wait_until(LONG, || fionread(&b, s) == 10));
    let mut buf = [0u8; 4];
    let mut flags = MSG_PARTIAL;
    assert_eq!(b.WSARecvEx(s, &mut buf, &mut flags), Ok(4));
    assert_eq!((&buf, flags), (b"0123", 0));
    let mut flags = MSG_PEEK;
    assert_eq!(b.WSARecvEx(s, &mut buf, &mut flags), Ok(4));
    assert_eq!((&buf, flags), (b"4567", MSG_PEEK), "in-flags are recv's");
    let mut rest = [0u8; 16];
    let mut flags = 0;
    assert_eq!(b.WSARecvEx(s, &mut rest, &mut flags), Ok(6));
    assert_eq!((&rest[..6], flags), (b"456789".as_slice(), 0));
    a.shutdown(c, SD_SEND).unwrap();
    assert_eq!(
        b.WSARecvEx(s, &mut rest, &mut flags),
        Ok(0),
        "end of stream"
    );
}

/// Conformance: 193 — WSARecvEx on UDP with a buffer smaller than the datagram returns the
/// first part with MSG_PARTIAL; a datagram that fits clears it.
#[test]
fn recv_ex_on_udp_marks_partial() {
    let (a, b) = two_hosts(1930);
    let ua = udp_bound(&a, at(A, 1930));
    let ub = udp_bound(&b, at(B, 1930));
    sendto(&a, ua, b"a long datagram", at(B, 1930)).unwrap();
    sendto(&a, ua, b"short", at(B, 1930)).unwrap();
    assert!(wait_readable(&b, ub, 5000));
    let mut buf = [0u8; 6];
    let mut flags = 0;
    assert_eq!(b.WSARecvEx(ub, &mut buf, &mut flags), Ok(6));
    assert_eq!((&buf, flags), (b"a long", MSG_PARTIAL));
    assert!(wait_readable(&b, ub, 5000));
    let mut flags = MSG_PARTIAL;
    assert_eq!(b.WSARecvEx(ub, &mut buf, &mut flags), Ok(5));
    assert_eq!((&buf[..5], flags), (b"short".as_slice(), 0));
}

/// GetAcceptExSockaddrs on a buffer that holds no addresses yields zeroed addresses of length 0.
#[test]
fn sockaddrs_of_garbage_are_empty() {
    let (mut local, mut remote) = (SOCKADDR_IN::new(at(A, 1)), SOCKADDR_IN::new(at(A, 2)));
    let (mut llen, mut rlen) = (-1, -1);
    for buf in [vec![], vec![0xAB; 10], vec![0u8; 64]] {
        GetAcceptExSockaddrs(
            &buf,
            0,
            SLOT,
            SLOT,
            &mut local,
            &mut llen,
            &mut remote,
            &mut rlen,
        );
        assert_eq!((llen, rlen), (0, 0));
        assert_eq!((local, remote), Default::default());
    }
}

/// Conformance: 579 — `getsockopt(SO_CONNECT_TIME)` returns 0xFFFFFFFF on an unconnected socket and the number of seconds connected otherwise.
#[test]
fn connect_time() {
    let (a, b) = two_hosts(579);
    let fresh = new_socket(&a, SOCK_STREAM);
    assert_eq!(get_int(&a, fresh, SOL_SOCKET, SO_CONNECT_TIME), Ok(-1));
    let (c, s) = tcp_pair(&a, &b, 5790);
    assert_eq!(get_int(&a, c, SOL_SOCKET, SO_CONNECT_TIME), Ok(0));
    assert_eq!(get_int(&b, s, SOL_SOCKET, SO_CONNECT_TIME), Ok(0));
    std::thread::sleep(std::time::Duration::from_millis(1100));
    // The engine's clock moves with its passes; a ping-pong makes one.
    send_all(&a, c, b"x");
    recv_exact(&b, s, 1);
    assert_eq!(get_int(&a, c, SOL_SOCKET, SO_CONNECT_TIME), Ok(1));
    assert_eq!(get_int(&b, s, SOL_SOCKET, SO_CONNECT_TIME), Ok(1));
}
