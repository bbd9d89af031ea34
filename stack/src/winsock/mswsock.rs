//! The Microsoft extensions (MSWSOCK): `AcceptEx`, `GetAcceptExSockaddrs`, `TransmitFile`,
//! `SO_UPDATE_ACCEPT_CONTEXT` and `WSARecvEx` (CHECKLIST §1.3 `AcceptEx` and
//! `GetAcceptExSockaddrs`, §1.4 `WSARecvEx` and `TransmitFile`, §1.6.6, §1.13.2; Part 2 group Y,
//! 193, 194; Part 3 #4, #9, #10).
//!
//! The Rust shapes of the Win32 pieces:
//! - `lpOutputBuffer` of `AcceptEx` is a `Vec<u8>` that *moves* into the operation, like an
//!   overlapped `WSARecv`'s buffers: it comes back through `lpOverlapped` once the operation
//!   completed ([`WSAOVERLAPPED::take_buffers`], one `WSABUF`), whether at once or later. Its
//!   layout is our own (Part 3 #10): the first data at offset 0, then a local and a remote
//!   address slot, each a little-endian `u16` length (16), the `sockaddr_in` and zeros to the
//!   slot's end; [`GetAcceptExSockaddrs`] reads it back.
//! - `HANDLE hFile` of `TransmitFile` is a `&std::fs::File`, read with positioned reads
//!   (`FileExt::read_at`) from a duplicate of its descriptor, so the transfer can outlive the
//!   call. `LPOVERLAPPED` is [`OVERLAPPED`]: the `WSAOVERLAPPED` plus the `Offset`/`OffsetHigh`
//!   file position (Win32's `OVERLAPPED` and `WSAOVERLAPPED` are one structure; here only
//!   `TransmitFile` reads the offset, so only it takes the wider type).
//! - `TRANSMIT_FILE_BUFFERS` holds owned head and tail buffers.
//! - Completion: the `hEvent` event, or `WSAGetOverlappedResult` (on `sListenSocket` for
//!   `AcceptEx`, on `hSocket` for `TransmitFile`); neither call has a completion routine in
//!   Win32, nor here. Completion ports do not exist (Part 3 #4).
//!
//! `TransmitFile` runs on a thread of its own (overlapped) or the calling thread: it reads the
//! file in blocks of `nNumberOfBytesPerSend` (default [`TRANSMIT_FILE_BLOCK`]) and hands them to
//! the engine as internal overlapped sends, a few blocks ahead, so the engine never reads a
//! file and the caller never holds the stack while reading. Sends issued on the socket during a
//! `TransmitFile` may interleave with it between blocks (Win32 leaves this undefined too).

#![allow(non_camel_case_types)]

use std::collections::VecDeque;
use std::fs::File;
use std::io::{Seek, SeekFrom};
use std::ops::Deref;
use std::os::unix::fs::FileExt;

use super::{record, types::*, Winsock};
use crate::engine::{OvKind, OvOp, Proto, SocketId};
use crate::error::WsaError;
use crate::notify::fd::{FD_OOB, FD_READ};
use crate::notify::overlapped::{acceptex_address, Completion, Outcome, WSAOVERLAPPED};
use crate::Stack;

/// The size of one address slot's content: the `u16` length and a `sockaddr_in`. `AcceptEx`
/// asks for the maximum address length + 16 per slot, as Win32 does: 32 bytes.
const ACCEPTEX_MIN_SLOT: u32 = SOCKADDR_IN_LEN as u32 + 16;

/// `TransmitFile`'s block size when `nNumberOfBytesPerSend` is 0.
pub const TRANSMIT_FILE_BLOCK: usize = 64 * 1024;

/// Blocks of one `TransmitFile` handed to the engine and not yet consumed by TCP.
const TRANSMIT_FILE_AHEAD: usize = 8;

/// `OVERLAPPED` as `TransmitFile` reads it: the operation's [`WSAOVERLAPPED`] (dereferenced
/// to, so `WSAGetOverlappedResult(s, &ov, …)` works) and the file offset to start at.
#[derive(Debug, Clone, Default)]
pub struct OVERLAPPED {
    /// Low 32 bits of the starting file offset.
    pub Offset: u32,
    /// High 32 bits of the starting file offset.
    pub OffsetHigh: u32,
    /// The completion slot and its `hEvent`.
    pub overlapped: WSAOVERLAPPED,
}

impl OVERLAPPED {
    /// An operation slot signalling `hEvent` (0: none), starting at file offset `offset`.
    pub fn new(hEvent: usize, offset: u64) -> OVERLAPPED {
        OVERLAPPED {
            Offset: offset as u32,
            OffsetHigh: (offset >> 32) as u32,
            overlapped: WSAOVERLAPPED::new(hEvent),
        }
    }

    /// `Offset | OffsetHigh << 32`.
    pub fn offset(&self) -> u64 {
        u64::from(self.Offset) | u64::from(self.OffsetHigh) << 32
    }
}

impl Deref for OVERLAPPED {
    type Target = WSAOVERLAPPED;

    fn deref(&self) -> &WSAOVERLAPPED {
        &self.overlapped
    }
}

/// `TRANSMIT_FILE_BUFFERS`: `HeadLength` bytes of `Head` go before the file, `TailLength`
/// bytes of `Tail` after it (a length beyond its buffer is `WSAEFAULT`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TRANSMIT_FILE_BUFFERS {
    /// Data sent before the file.
    pub Head: Vec<u8>,
    /// Bytes of `Head` to send.
    pub HeadLength: u32,
    /// Data sent after the file.
    pub Tail: Vec<u8>,
    /// Bytes of `Tail` to send.
    pub TailLength: u32,
}

impl TRANSMIT_FILE_BUFFERS {
    /// Head and tail sent whole.
    pub fn new(head: Vec<u8>, tail: Vec<u8>) -> TRANSMIT_FILE_BUFFERS {
        TRANSMIT_FILE_BUFFERS {
            HeadLength: head.len() as u32,
            Head: head,
            TailLength: tail.len() as u32,
            Tail: tail,
        }
    }
}

/// `GetAcceptExSockaddrs` (§1.3): the local and remote addresses of a completed `AcceptEx`
/// buffer, with the three lengths given to `AcceptEx`. Win32 returns pointers into the buffer;
/// here the addresses are copied into `LocalSockaddr`/`RemoteSockaddr` and their lengths set
/// to 16. No return value: a buffer that holds no address there yields zeroed addresses of
/// length 0.
#[allow(clippy::too_many_arguments)]
pub fn GetAcceptExSockaddrs(
    lpOutputBuffer: &[u8],
    dwReceiveDataLength: u32,
    dwLocalAddressLength: u32,
    dwRemoteAddressLength: u32,
    LocalSockaddr: &mut SOCKADDR,
    LocalSockaddrLength: &mut i32,
    RemoteSockaddr: &mut SOCKADDR,
    RemoteSockaddrLength: &mut i32,
) {
    let r = dwReceiveDataLength as usize;
    let l = dwLocalAddressLength as usize;
    let rl = dwRemoteAddressLength as usize;
    let slot = |from: usize, len: usize| {
        lpOutputBuffer
            .get(from..from.saturating_add(len))
            .and_then(acceptex_address)
            .and_then(|b| SOCKADDR_IN::from_bytes(&b))
    };
    for (found, addr, len) in [
        (slot(r, l), LocalSockaddr, LocalSockaddrLength),
        (
            slot(r.saturating_add(l), rl),
            RemoteSockaddr,
            RemoteSockaddrLength,
        ),
    ] {
        *addr = found.unwrap_or_default();
        *len = if found.is_some() { SOCKADDR_IN_LEN } else { 0 };
    }
}

impl Winsock {
    /// `AcceptEx` (§1.3): accepts a connection on `sListenSocket` onto `sAcceptSocket` (open,
    /// TCP, neither bound nor connected), writes both addresses into `lpOutputBuffer` and, with
    /// `dwReceiveDataLength > 0`, completes only once the first data is there, at offset 0
    /// (0 bytes if the client closed first). Always overlapped: `lpOverlapped` `None` is
    /// `WSAEINVAL`, as are address lengths under 32 (the address length + 16), a bound or
    /// connected accept socket or one another `AcceptEx` already waits for, and a listener
    /// that is not listening. A buffer shorter than the three lengths is `WSAEFAULT`.
    ///
    /// `Ok` means it completed at once (the event is set already; `*lpdwBytesReceived` is the
    /// data's length), `WSA_IO_PENDING` that it goes on. Either way the buffer comes back
    /// through `lpOverlapped.take_buffers()`; `WSAGetOverlappedResult(sListenSocket, …)` gives
    /// the count. The accepted socket keeps its own attributes until
    /// `setsockopt(SO_UPDATE_ACCEPT_CONTEXT)`; nothing stops other calls on it meanwhile.
    /// Closing `sAcceptSocket` or `sListenSocket` ends the operation `WSA_OPERATION_ABORTED`
    /// without an indication (D-10): at once for the listener, at the stack's next pass (which
    /// the close starts) for the accept socket.
    #[allow(clippy::too_many_arguments)]
    pub fn AcceptEx(
        &self,
        sListenSocket: SOCKET,
        sAcceptSocket: SOCKET,
        lpOutputBuffer: &mut Vec<u8>,
        dwReceiveDataLength: u32,
        dwLocalAddressLength: u32,
        dwRemoteAddressLength: u32,
        lpdwBytesReceived: Option<&mut u32>,
        lpOverlapped: Option<&WSAOVERLAPPED>,
    ) -> Result<(), WsaError> {
        let listen = record(self.check(sListenSocket))?;
        let accept = record(self.check(sAcceptSocket))?;
        let Some(ov) = lpOverlapped else {
            return record(Err(WsaError::WSAEINVAL));
        };
        if dwLocalAddressLength < ACCEPTEX_MIN_SLOT || dwRemoteAddressLength < ACCEPTEX_MIN_SLOT {
            return record(Err(WsaError::WSAEINVAL));
        }
        let lengths = (
            dwReceiveDataLength as usize,
            dwLocalAddressLength as usize,
            dwRemoteAddressLength as usize,
        );
        if lpOutputBuffer.len() < lengths.0 + lengths.1 + lengths.2 {
            return record(Err(WsaError::WSAEFAULT));
        }
        let started = self.stack.with_quiet(|core| {
            core.ov_start(listen, OvKind::Accept(accept), || {
                let mut completion = self.ov_completion(listen, ov)?;
                ov.begin(listen)?;
                let first_data = completion.hold_accept(std::mem::take(lpOutputBuffer), lengths);
                Ok(OvOp::accept(first_data, accept, completion))
            })
        });
        if let Err(refused) = started {
            if let Some(op) = refused.op {
                let (held, completion) = op.into_parts();
                *lpOutputBuffer = completion
                    .restore(held)
                    .into_iter()
                    .next()
                    .map(|b| b.buf)
                    .unwrap_or_default();
                ov.cancel_begin(Vec::new());
            }
            return record(Err(refused.error));
        }
        match ov.result(false, None) {
            None => record(Err(WsaError::WSA_IO_PENDING)),
            Some((0, bytes, _)) => {
                if let Some(n) = lpdwBytesReceived {
                    *n = bytes;
                }
                Ok(())
            }
            Some((e, _, _)) => record(Err(WsaError(e))),
        }
    }

    /// `TransmitFile` (§1.4) on a connected TCP socket: `lpTransmitBuffers.Head`, then
    /// `nNumberOfBytesToWrite` bytes of `hFile` (0: to its end) from `lpOverlapped.offset()`
    /// (without `lpOverlapped`: from the file's current position, which then moves past what
    /// was sent), then `Tail`, in blocks of `nNumberOfBytesPerSend` (0: 64 KiB).
    ///
    /// Without `lpOverlapped` the call returns when every byte is in the transport's send
    /// buffer (a blocking send, also on a non-blocking socket). With it the call returns
    /// `WSA_IO_PENDING` and the `hEvent` event is set at completion; the count of bytes sent
    /// (head + file + tail, saturated to `u32`) comes from `WSAGetOverlappedResult`. Flags:
    /// `TF_DISCONNECT` closes the connection gracefully after the data; with
    /// `TF_REUSE_SOCKET` the socket is then neither bound nor connected and can be passed to
    /// `AcceptEx` (the old connection finishes in the background); `TF_WRITE_BEHIND` returns
    /// at once with the transfer under way and no indication; `TF_USE_*` have no effect.
    ///
    /// Errors: `WSAEOPNOTSUPP` on a socket that is not TCP (the datagram protocols, and RMP,
    /// whose messages go through its own send path); `WSAEINVAL` for `TF_REUSE_SOCKET` without
    /// `TF_DISCONNECT`, `TF_WRITE_BEHIND` with either, unknown flags, `lpOverlapped` on a
    /// socket without the overlapped attribute (D-9) or a file handle that cannot be
    /// duplicated; `WSAEFAULT` for head/tail lengths beyond their buffers, or a file that
    /// cannot be read (also as an overlapped result); `WSAENOTCONN`, `WSAESHUTDOWN`; a
    /// connection error ends the operation with that error.
    #[allow(clippy::too_many_arguments)]
    pub fn TransmitFile(
        &self,
        hSocket: SOCKET,
        hFile: &File,
        nNumberOfBytesToWrite: u32,
        nNumberOfBytesPerSend: u32,
        lpOverlapped: Option<&OVERLAPPED>,
        lpTransmitBuffers: Option<&TRANSMIT_FILE_BUFFERS>,
        dwFlags: u32,
    ) -> Result<(), WsaError> {
        let id = record(self.check(hSocket))?;
        let known = TF_DISCONNECT
            | TF_REUSE_SOCKET
            | TF_WRITE_BEHIND
            | TF_USE_SYSTEM_THREAD
            | TF_USE_KERNEL_APC;
        let disconnect = dwFlags & TF_DISCONNECT != 0;
        let reuse = dwFlags & TF_REUSE_SOCKET != 0;
        let write_behind = dwFlags & TF_WRITE_BEHIND != 0;
        if dwFlags & !known != 0 || (reuse && !disconnect) || (write_behind && disconnect) {
            return record(Err(WsaError::WSAEINVAL));
        }
        let overlapped_attr = record(self.stack.with_quiet(|core| core.transmit_file_check(id)))?;
        if lpOverlapped.is_some() && !overlapped_attr {
            return record(Err(WsaError::WSAEINVAL));
        }
        let (head, tail) = match lpTransmitBuffers {
            None => (Vec::new(), Vec::new()),
            Some(b) => (
                record(
                    b.Head
                        .get(..b.HeadLength as usize)
                        .ok_or(WsaError::WSAEFAULT),
                )?
                .to_vec(),
                record(
                    b.Tail
                        .get(..b.TailLength as usize)
                        .ok_or(WsaError::WSAEFAULT),
                )?
                .to_vec(),
            ),
        };
        let file = record(hFile.try_clone().map_err(|_| WsaError::WSAEINVAL))?;
        let start = match lpOverlapped {
            Some(ov) => ov.offset(),
            None => record((&file).stream_position().map_err(|_| WsaError::WSAEINVAL))?,
        };
        let job = Transmit {
            stack: self.stack.clone(),
            id,
            file,
            start,
            count: (nNumberOfBytesToWrite > 0).then_some(u64::from(nNumberOfBytesToWrite)),
            block: match nNumberOfBytesPerSend {
                0 => TRANSMIT_FILE_BLOCK,
                n => n as usize,
            },
            head,
            tail,
            disconnect,
            reuse,
        };
        if write_behind {
            let spawned = std::thread::Builder::new()
                .name("ws2-transmitfile".into())
                .spawn(move || {
                    let _ = job.run();
                });
            return record(spawned.map(|_| ()).map_err(|_| WsaError::WSAENOBUFS));
        }
        let Some(ov) = lpOverlapped else {
            let (r, file_bytes) = job.run_in_place();
            let _ = (&*hFile).seek(SeekFrom::Start(start.saturating_add(file_bytes)));
            return record(r.map(|_| ()).map_err(|(e, _)| e));
        };
        let completion = record(self.ov_completion(id, ov))?;
        record(ov.begin(id))?;
        let spawned = std::thread::Builder::new()
            .name("ws2-transmitfile".into())
            .spawn(move || {
                let (error, bytes) = match job.run() {
                    Ok(n) => (0, n),
                    Err((e, n)) => (e.0, n),
                };
                completion.complete(Outcome {
                    error,
                    bytes: bytes.min(u64::from(u32::MAX)) as u32,
                    ..Outcome::default()
                });
            });
        if spawned.is_err() {
            ov.cancel_begin(Vec::new());
            return record(Err(WsaError::WSAENOBUFS));
        }
        record(Err(WsaError::WSA_IO_PENDING))
    }

    /// `WSARecvEx` (§1.4): `recv` whose `*flags` is in/out. On a message socket (UDP, raw,
    /// RMP) a message longer than `buf` fills it and returns its length with `MSG_PARTIAL`
    /// set in `*flags` instead of failing `WSAEMSGSIZE` (on UDP the rest of the datagram is
    /// lost, as with `recv`); a whole message clears `MSG_PARTIAL`. On TCP it is `recv`
    /// exactly and never sets `MSG_PARTIAL`. The other bits of `*flags` are `recv`'s flags and
    /// are left as they were.
    pub fn WSARecvEx(&self, s: SOCKET, buf: &mut [u8], flags: &mut i32) -> Result<i32, WsaError> {
        let id = record(self.check(s))?;
        let in_flags = *flags & !MSG_PARTIAL;
        let r = self
            .stack
            .with(|core| core.recv_ex_check(id))
            .and_then(|proto| match self.recv_inner(id, buf, in_flags) {
                Ok((n, _)) => Ok((n, 0)),
                Err(WsaError::WSAEMSGSIZE) if proto != Proto::Tcp => {
                    Ok((buf.len() as i32, MSG_PARTIAL))
                }
                Err(e) => Err(e),
            });
        // Any receive call re-enables FD_READ and FD_OOB (§1.6.5).
        self.rearm(s, FD_READ | FD_OOB);
        let (n, partial) = record(r)?;
        *flags = in_flags | partial;
        Ok(n)
    }

    /// `setsockopt(s, SOL_SOCKET, SO_UPDATE_ACCEPT_CONTEXT, &sListenSocket,
    /// sizeof(SOCKET))` (§1.13.2): the `AcceptEx` socket `s` takes the listening socket's
    /// properties, as `accept` would have given them: its options, blocking mode and
    /// `WSAAsyncSelect`/`WSAEventSelect` registration (re-armed as for a new connection).
    /// `optval` holds the `SOCKET` in native byte order; shorter is `WSAEFAULT`, a handle that
    /// is not one of this application's sockets `WSAENOTSOCK`, one that is not listening, or
    /// an `s` that is not a connected TCP socket, `WSAEINVAL`. `setsockopt` calls this for
    /// that option.
    pub(super) fn update_accept_context(
        &self,
        s: SocketId,
        optval: Option<&[u8]>,
        optlen: i32,
    ) -> Result<(), WsaError> {
        const LEN: usize = std::mem::size_of::<SOCKET>();
        let v = optval.ok_or(WsaError::WSAEFAULT)?;
        if optlen < LEN as i32 || v.len() < LEN {
            return Err(WsaError::WSAEFAULT);
        }
        let mut raw = [0u8; LEN];
        raw.copy_from_slice(&v[..LEN]);
        let listen = self.check(SOCKET::from_ne_bytes(raw))?;
        self.stack
            .with(|core| core.update_accept_context(s, listen))
    }

    /// The indication of an `AcceptEx`/`TransmitFile` on `id`: `ov`'s event, reset now (a
    /// pending operation leaves it nonsignaled until completion). A slot that carries an
    /// operation is `WSA_INVALID_PARAMETER`, before anything changes.
    fn ov_completion(&self, id: SocketId, ov: &WSAOVERLAPPED) -> Result<Completion, WsaError> {
        if ov.is_pending() {
            return Err(WsaError::WSA_INVALID_PARAMETER);
        }
        let event = if ov.hEvent != 0 {
            let e = self.event_ref(ov.hEvent)?;
            e.reset();
            Some(e)
        } else {
            None
        };
        Ok(Completion::new(id, ov.clone(), event, None))
    }
}

/// One `TransmitFile`'s work.
struct Transmit {
    stack: Stack,
    id: SocketId,
    file: File,
    start: u64,
    /// Bytes of the file to send; `None`: to its end.
    count: Option<u64>,
    block: usize,
    head: Vec<u8>,
    tail: Vec<u8>,
    disconnect: bool,
    reuse: bool,
}

impl Transmit {
    /// Sends everything, then disconnects as asked: `Ok(bytes sent)` or the error with the
    /// bytes consumed before it.
    fn run(self) -> Result<u64, (WsaError, u64)> {
        self.run_in_place().0
    }

    /// [`Transmit::run`], also giving the bytes of the file that were sent.
    fn run_in_place(self) -> (Result<u64, (WsaError, u64)>, u64) {
        let mut pump = Pump {
            stack: self.stack.clone(),
            id: self.id,
            ahead: VecDeque::new(),
            spare: Vec::new(),
            sent: 0,
        };
        let mut file_bytes = 0u64;
        let r = (|| {
            if !self.head.is_empty() {
                pump.send(self.head.clone())?;
            }
            let mut offset = self.start;
            loop {
                let left = self.count.map_or(u64::MAX, |c| c - file_bytes);
                if left == 0 {
                    break;
                }
                let want = (self.block as u64).min(left) as usize;
                let mut buf = pump.buffer(want);
                let n = read_full(&self.file, &mut buf, offset).map_err(|_| WsaError::WSAEFAULT)?;
                if n == 0 {
                    break;
                }
                buf.truncate(n);
                pump.send(buf)?;
                offset += n as u64;
                file_bytes += n as u64;
            }
            if !self.tail.is_empty() {
                pump.send(self.tail.clone())?;
            }
            pump.drain()?;
            if self.reuse {
                self.stack.with(|core| core.ov_reuse_socket(self.id))?;
            } else if self.disconnect {
                self.stack.with(|core| core.tcp_close_gracefully(self.id));
            }
            Ok(())
        })();
        let sent = pump.sent;
        let r = match r {
            Ok(()) => Ok(sent),
            Err(e) => {
                // Let the blocks already handed over finish (or fail) before reporting.
                let _ = pump.drain();
                Err((e, pump.sent))
            }
        };
        (r, file_bytes)
    }
}

/// Reads up to `buf.len()` bytes at `offset`, fewer only at the end of the file.
fn read_full(file: &File, buf: &mut [u8], offset: u64) -> std::io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match file.read_at(&mut buf[got..], offset + got as u64) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

/// Internal overlapped sends on one socket, [`TRANSMIT_FILE_AHEAD`] blocks ahead of TCP.
struct Pump {
    stack: Stack,
    id: SocketId,
    ahead: VecDeque<WSAOVERLAPPED>,
    spare: Vec<Vec<u8>>,
    /// Bytes consumed by the transport so far.
    sent: u64,
}

impl Pump {
    /// A buffer of `len` bytes, recycled from a finished block when there is one.
    fn buffer(&mut self, len: usize) -> Vec<u8> {
        let mut b = self.spare.pop().unwrap_or_default();
        b.resize(len, 0);
        b
    }

    /// Hands `data` to the engine as an overlapped send, first waiting for the oldest block
    /// when enough are under way.
    fn send(&mut self, data: Vec<u8>) -> Result<(), WsaError> {
        while self.ahead.len() >= TRANSMIT_FILE_AHEAD {
            self.wait_oldest()?;
        }
        let ov = WSAOVERLAPPED::new(0);
        ov.begin(self.id)?;
        let completion = Completion::new(self.id, ov.clone(), None, None);
        let op = OvOp::new(vec![data], None, completion);
        self.stack
            .with(|core| core.ov_submit(self.id, false, op))
            .map_err(|(e, _)| e)?;
        self.ahead.push_back(ov);
        Ok(())
    }

    fn wait_oldest(&mut self) -> Result<(), WsaError> {
        let Some(ov) = self.ahead.pop_front() else {
            return Ok(());
        };
        let (error, bytes, _) =
            ov.result(true, None)
                .unwrap_or((WsaError::WSA_OPERATION_ABORTED.0, 0, 0));
        self.sent += u64::from(bytes);
        if let Some(b) = ov.take_buffers().pop() {
            self.spare.push(b.buf);
        }
        if error != 0 {
            return Err(WsaError(error));
        }
        Ok(())
    }

    /// Waits for every block under way; the first error wins.
    fn drain(&mut self) -> Result<(), WsaError> {
        let mut first = Ok(());
        while !self.ahead.is_empty() {
            let r = self.wait_oldest();
            if first.is_ok() {
                first = r;
            }
        }
        first
    }
}
