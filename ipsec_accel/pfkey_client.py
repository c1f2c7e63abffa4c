"""PF_KEY v2 over a Unix socket: the client side, and the framing both sides use.

FreeBSD's PF_KEY socket is ``socket(PF_KEY, SOCK_RAW, PF_KEY_V2)``
(``sys/netipsec/keysock.c``); a process on the same machine as the kernel talks
to it directly.  The model's kernel lives in a daemon
(:mod:`ipsec_accel.server`), so a PF_KEY socket becomes an ``AF_UNIX``
``SOCK_SEQPACKET`` connection to it, and :class:`PfkeyClientSocket` has the
same interface as :class:`pfkey.keysock.KeySocket` (``send``, ``recv(timeout)``,
``recv_nowait``, ``recv_all``, ``pending``, ``close``), with the same errors.

The framing ("pfkeyd protocol 1")
----------------------------------
* **One PF_KEY message per packet, exact bytes, both directions.**  SOCK_SEQPACKET
  keeps record boundaries, so nothing is added to or removed from a PF_KEY
  message, and a client can send any bytes at all (garbage included): the
  daemon hands them to ``key_parse`` unchanged.
* **Control packets** carry what a PF_KEY socket reports outside messages:
  the result of ``send(2)`` and the refusal of ``socket(2)``.  A control
  packet is a 12-byte header ``<4sHHi``: magic ``b"PFKd"``, ``kind`` (u16),
  ``flags`` (u16, 0), ``value`` (i32), then an optional payload, NUL-padded so
  the **packet length is 4 modulo 8**.  Every PF_KEY message the kernel
  delivers (replies, echoes of bad requests, broadcasts, promiscuous copies,
  the payload of an X_PROMISC broadcast) is a whole number of 8-byte units,
  so the two can never be confused, whatever the first bytes say.
* Daemon -> client:

  - ``HELLO`` (1), once, first: ``value`` 0 = the socket is open; otherwise
    a FreeBSD errno (EPERM for a peer whose uid is not allowed, as key_attach
    refuses an unprivileged process) and the daemon closes the connection.
  - ``RESULT`` (2), exactly one per client packet, in order: ``value`` >= 0
    is what ``send(2)`` returned (the length), < 0 is ``-errno`` (FreeBSD
    numbering) -- the failures keysock.c / key_align report from ``send()``.
    Every message the kernel queued for this socket before the send returned
    (its reply, an error echo) is delivered *before* the RESULT, so a
    ``recv_nowait()`` right after ``send()`` sees the reply, as on FreeBSD.
* Client -> daemon: a packet whose length is 4 modulo 8 and which starts
  with the magic is a control request (any such packet would fail ``send()``
  with EINVAL on FreeBSD -- its length is not a multiple of 8 -- and an
  unknown kind does exactly that): ``SETOPT_RCVBUF`` (16) / ``SETOPT_SNDBUF``
  (17) with the size in ``value`` (setsockopt SO_RCVBUF / SO_SNDBUF, as
  libipsec's ``pfkey_open`` does; a negative size only reads the current
  value; the RESULT carries the size in effect), ``GET_IFNAMES`` (18), answered by a
  RESULT whose payload is ``"<index> <name>\\n"`` lines (the daemon host's
  ``if_indextoname`` table, which setkey needs for ``%scope`` and
  ``ifname=``).  Every request is answered by one RESULT.

Buffers: the daemon's per-connection :class:`pfkey.keysock.KeySocket` is the
socket's receive buffer (``net.key.recvspace`` or SO_RCVBUF; overflow drops
messages and counts them, as FreeBSD does).  Messages this client has already
read off the Unix socket while waiting for a RESULT are held locally against
the same byte budget (message + 2 bytes of ``key_src``); what does not fit is
dropped and counted in :attr:`PfkeyClientSocket.overflow`.

Overlap: ``send(data, while_waiting=fn)`` calls ``fn`` once the message has
left and before waiting for the RESULT -- setkey parses its next statement
there, so the two processes work in parallel without changing what is sent
or printed.

Trust: PF_KEY carries keys, so the client checks the daemon too: the peer
(SO_PEERCRED) must run as root or as the client's own uid, or the connection
is refused with EPERM -- a socket file planted by another user gets nothing.
"""

from __future__ import annotations

import errno as _errno
import os
import socket
import struct
import threading
import time
from collections import deque
from typing import Callable, Iterable, NamedTuple, Optional

from pfkey.errors import Delivery, PfkeyError, from_wire, to_wire
from pfkey.keysock import KEY_SRC_LEN

__all__ = [
    "PfkeyClientSocket", "PeerCred", "peercred", "CTRL_MAGIC", "CTRL_HDR", "CTRL_HELLO",
    "CTRL_RESULT", "CTRL_SETOPT_RCVBUF", "CTRL_SETOPT_SNDBUF", "CTRL_GET_IFNAMES",
    "ctrl_packet", "parse_ctrl", "is_ctrl", "MAX_PACKET", "SOCKET_ENV", "wire_errno_of",
]

#: Environment variable naming the daemon's socket (setkey and other clients).
SOCKET_ENV = "PFKEY_SOCKET"

CTRL_MAGIC = b"PFKd"
CTRL_HDR = struct.Struct("<4sHHi")
CTRL_HELLO = 1
CTRL_RESULT = 2
CTRL_SETOPT_RCVBUF = 16
CTRL_SETOPT_SNDBUF = 17
CTRL_GET_IFNAMES = 18

#: Largest packet either side reads: a PF_KEY message is at most 65535 units.
MAX_PACKET = 65535 * 8 + 64

_PEERCRED = struct.Struct("3i")
_TIMEVAL = struct.Struct("@ll")


def ctrl_packet(kind: int, value: int = 0, payload: bytes = b"") -> bytes:
    """A control packet: header + payload, padded to a length of 4 mod 8."""
    body = CTRL_HDR.pack(CTRL_MAGIC, kind, 0, value) + payload
    pad = (4 - len(body)) % 8
    return body + b"\0" * pad


def is_ctrl(data: bytes | bytearray | memoryview) -> bool:
    """True for a control packet (length 4 mod 8 and the magic)."""
    return len(data) % 8 == 4 and len(data) >= CTRL_HDR.size and \
        bytes(data[:4]) == CTRL_MAGIC


def parse_ctrl(data: bytes | bytearray | memoryview) -> tuple[int, int, bytes]:
    """(kind, value, payload without the padding) of a control packet."""
    _, kind, _, value = CTRL_HDR.unpack_from(data)
    return kind, value, bytes(data[CTRL_HDR.size:]).rstrip(b"\0")


class PeerCred(NamedTuple):
    pid: int
    uid: int
    gid: int


def peercred(sock: socket.socket) -> PeerCred:
    """SO_PEERCRED of a connected Unix socket (Linux)."""
    raw = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _PEERCRED.size)
    return PeerCred(*_PEERCRED.unpack(raw))


class PfkeyClientSocket:
    """A PF_KEY socket whose kernel is a daemon (see the module docstring).

    ``path`` is the daemon's socket.  Opening fails as ``socket(2)`` would:
    OSError ENOENT / ECONNREFUSED / EACCES from ``connect``, PermissionError
    (EPERM) when the daemon refuses us or is not trusted (``trusted_uids``,
    default root and our own uid; ``check_peer=False`` skips that check).
    ``recvspace`` / ``sendspace`` set SO_RCVBUF / SO_SNDBUF on the daemon's
    side.  ``reply_timeout`` bounds the wait for a send's RESULT (a daemon that
    stops answering gives TimeoutError rather than a hang).
    """

    def __init__(self, path: str | os.PathLike[str], *, recvspace: Optional[int] = None,
                 sendspace: Optional[int] = None, connect_timeout: float = 5.0,
                 reply_timeout: float = 30.0, check_peer: bool = True,
                 trusted_uids: Optional[Iterable[int]] = None) -> None:
        self.path = os.fspath(path)
        self.reply_timeout = reply_timeout
        self.rcvbuf = 8192                 # until the daemon says otherwise
        self.overflow = 0
        self._queue: deque[bytes] = deque()
        self._cc = 0
        self._results: deque[tuple[int, bytes]] = deque()
        self._lock = threading.RLock()
        self._closed = False
        self._eof = False
        self._buf = bytearray(MAX_PACKET)
        self._view = memoryview(self._buf)
        self._rcvtimeo: Optional[float] = None
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            sock.settimeout(connect_timeout)
            sock.connect(self.path)
            # Blocking from here on: waits are bounded with select().
            sock.settimeout(None)
            self.peer = peercred(sock)
            trusted = {0, os.geteuid()} if trusted_uids is None else set(trusted_uids)
            if check_peer and self.peer.uid not in trusted:
                raise PermissionError(_errno.EPERM, f"PF_KEY daemon on {self.path} runs as "
                                      f"uid {self.peer.uid}, which is not trusted")
            self._sock = sock
            kind, value, payload = self._wait_ctrl(CTRL_HELLO, connect_timeout)
            if value != 0:
                host = from_wire(value)
                exc_type = PermissionError if host in (_errno.EPERM, _errno.EACCES) else OSError
                raise exc_type(host, os.strerror(host))
            self.banner = payload.decode("ascii", "replace")
            if recvspace is not None:
                self.setsockopt_rcvbuf(recvspace)
            else:
                self.rcvbuf = self._query_rcvbuf_default()
            if sendspace is not None:
                self.setsockopt_sndbuf(sendspace)
        except BaseException:
            sock.close()
            self._closed = True
            raise

    # -- low level -----------------------------------------------------------------

    def _set_rcvtimeo(self, timeout: Optional[float]) -> None:
        """SO_RCVTIMEO on the Unix socket (None: block forever); cached, so
        the usual fixed reply timeout costs one setsockopt per socket."""
        if timeout == self._rcvtimeo:
            return
        t = 0.0 if timeout is None else max(timeout, 1e-6)
        sec = int(t)
        usec = int((t - sec) * 1_000_000)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO,
                              _TIMEVAL.pack(sec, usec))
        self._rcvtimeo = timeout

    def _read_packet(self, timeout: Optional[float]) -> Optional[bytes]:
        """One packet off the Unix socket, or None when ``timeout`` expires
        (0: do not wait at all; None: wait for ever)."""
        if self._eof:
            raise ConnectionResetError(_errno.ECONNRESET, "PF_KEY daemon closed the connection")
        try:
            if timeout is not None and timeout <= 0:
                n = self._sock.recv_into(self._buf, 0, socket.MSG_DONTWAIT)
            else:
                # One blocking recv bounded by SO_RCVTIMEO: a single system
                # call per packet on the request/answer path.
                self._set_rcvtimeo(timeout)
                n = self._sock.recv_into(self._buf)
        except (BlockingIOError, InterruptedError):
            return None
        except ConnectionResetError:
            self._eof = True
            raise
        if n == 0:
            self._eof = True
            raise ConnectionResetError(_errno.ECONNRESET, "PF_KEY daemon closed the connection")
        return bytes(self._view[:n])

    def _absorb(self, data: bytes) -> Optional[tuple[int, int, bytes]]:
        """File one packet: a PF_KEY message joins the receive queue (or is
        dropped when the buffer is full); a control packet is returned."""
        if is_ctrl(data):
            return parse_ctrl(data)
        need = len(data) + KEY_SRC_LEN
        if need > self.rcvbuf - self._cc:
            self.overflow += 1          # soroverflow: the record is lost
            return None
        self._queue.append(data)
        self._cc += need
        return None

    def _wait_ctrl(self, kind: int, timeout: Optional[float]) -> tuple[int, int, bytes]:
        """Read until the next control packet of ``kind`` (queueing messages)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                raise TimeoutError(_errno.ETIMEDOUT, "PF_KEY daemon did not answer")
            # A fixed per-read bound (one setsockopt per socket); the overall
            # deadline is checked above between packets.
            data = self._read_packet(timeout)
            if data is None:
                continue
            ctrl = self._absorb(data)
            if ctrl is None:
                continue
            if ctrl[0] == kind:
                return ctrl
            # A control packet of another kind is out of protocol: ignore it.

    def _request(self, packet: bytes,
                 while_waiting: Optional[Callable[[], None]] = None) -> tuple[int, bytes]:
        """Send one packet and wait for its RESULT: (value, payload).
        ``while_waiting`` runs after the packet is out, before the wait."""
        with self._lock:
            self._check_open()
            try:
                self._sock.sendall(packet)
            except BrokenPipeError:
                self._eof = True
                if while_waiting is not None:
                    while_waiting()
                raise ConnectionResetError(_errno.ECONNRESET,
                                           "PF_KEY daemon closed the connection") from None
            if while_waiting is not None:
                try:
                    while_waiting()
                except BaseException:
                    # Keep the protocol in step: collect our RESULT, then re-raise.
                    self._wait_ctrl(CTRL_RESULT, self.reply_timeout)
                    raise
            _, value, payload = self._wait_ctrl(CTRL_RESULT, self.reply_timeout)
            return value, payload

    def _check_open(self) -> None:
        if self._closed:
            raise OSError(_errno.EBADF, "PF_KEY socket is closed")

    def _query_rcvbuf_default(self) -> int:
        # SETOPT with a negative size reads the current value without changing it.
        value, _ = self._request(ctrl_packet(CTRL_SETOPT_RCVBUF, -1))
        return value if value > 0 else 8192

    # -- setsockopt / interface table ---------------------------------------------------

    def setsockopt_rcvbuf(self, size: int) -> int:
        """setsockopt(SO_RCVBUF): the daemon-side buffer and the local budget."""
        value, _ = self._request(ctrl_packet(CTRL_SETOPT_RCVBUF, int(size)))
        if value < 0:
            raise OSError(from_wire(-value), os.strerror(from_wire(-value)))
        self.rcvbuf = value
        return value

    def setsockopt_sndbuf(self, size: int) -> int:
        """setsockopt(SO_SNDBUF): larger messages fail send() with EMSGSIZE."""
        value, _ = self._request(ctrl_packet(CTRL_SETOPT_SNDBUF, int(size)))
        if value < 0:
            raise OSError(from_wire(-value), os.strerror(from_wire(-value)))
        return value

    def if_names(self) -> dict[int, str]:
        """The daemon host's interfaces: index -> name."""
        value, payload = self._request(ctrl_packet(CTRL_GET_IFNAMES))
        out: dict[int, str] = {}
        if value < 0:
            return out
        for line in payload.decode("latin-1").splitlines():
            idx, _, name = line.partition(" ")
            if idx.isdigit() and name:
                out[int(idx)] = name
        return out

    # -- the KeySocket interface ------------------------------------------------------------

    def send(self, data: bytes | bytearray | memoryview, *,
             while_waiting: Optional[Callable[[], None]] = None) -> int:
        """send(2) of one PF_KEY message; returns its length or raises the
        PfkeyError (delivery SEND) FreeBSD's send() would fail with.

        ``while_waiting``, if given, is called once, after the message has left
        and while the daemon works on it (setkey parses its next statement
        there); the result of send() is unaffected."""
        data = bytes(data)
        if is_ctrl(data):
            # Would be read as a control request; FreeBSD fails it anyway
            # (length not a multiple of 8), so fail it here, identically.
            if while_waiting is not None:
                while_waiting()
            raise PfkeyError("message length is not a multiple of 8", errno=_errno.EINVAL,
                             delivery=Delivery.SEND)
        try:
            value, _ = self._request(data, while_waiting)
        except OSError as exc:
            if exc.errno == _errno.EMSGSIZE:
                # The Unix socket itself refused a packet this large.
                raise PfkeyError(f"message of {len(data)} bytes is too large",
                                 errno=_errno.EMSGSIZE, delivery=Delivery.SEND) from None
            raise
        if value < 0:
            host = from_wire(-value)
            raise PfkeyError(f"send failed: {os.strerror(host)}", errno=host,
                             delivery=Delivery.SEND)
        return value

    sendall = send

    def recv(self, timeout: Optional[float] = None) -> bytes:
        """One whole message.  ``timeout=None`` blocks; 0 raises
        BlockingIOError when nothing is queued; a positive timeout raises
        TimeoutError.  A vanished daemon raises ConnectionResetError."""
        with self._lock:
            self._check_open()
            deadline = None if timeout is None else time.monotonic() + max(0.0, timeout)
            while not self._queue:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    # Pick up anything already sitting in the Unix socket.
                    data = self._read_packet(0.0) if not self._eof else None
                    if data is not None:
                        self._absorb(data)
                        continue
                    if timeout is not None and timeout <= 0:
                        raise BlockingIOError(_errno.EAGAIN, "no PF_KEY message queued")
                    raise TimeoutError(_errno.ETIMEDOUT,
                                       "timed out waiting for a PF_KEY message")
                data = self._read_packet(left)
                if data is not None:
                    self._absorb(data)
            data = self._queue.popleft()
            self._cc -= len(data) + KEY_SRC_LEN
            return data

    def recv_nowait(self) -> bytes:
        """recv(MSG_DONTWAIT)."""
        return self.recv(0)

    def recv_all(self) -> list[bytes]:
        """Every message already received, without blocking (possibly none)."""
        with self._lock:
            self._check_open()
            while not self._eof:
                data = self._read_packet(0.0)
                if data is None:
                    break
                self._absorb(data)
            out = list(self._queue)
            self._queue.clear()
            self._cc = 0
            return out

    def pending(self) -> int:
        """Messages already received and not yet read."""
        with self._lock:
            return len(self._queue)

    def fileno(self) -> int:
        return self._sock.fileno()

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        """close(2): the daemon detaches the socket (registrations freed)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            try:
                self._sock.close()
            finally:
                self._queue.clear()
                self._cc = 0

    def __enter__(self) -> "PfkeyClientSocket":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return (f"<PfkeyClientSocket {self.path} queued={len(self._queue)} "
                f"overflow={self.overflow}{' closed' if self._closed else ''}>")


def wire_errno_of(exc: BaseException) -> int:
    """FreeBSD errno of an exception (PfkeyError's own, else from .errno)."""
    wire = getattr(exc, "wire_errno", None)
    if isinstance(wire, int):
        return wire
    code = getattr(exc, "errno", None)
    return to_wire(code) if isinstance(code, int) and code else to_wire(_errno.EINVAL)
