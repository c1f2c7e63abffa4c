"""PF_KEY socket endpoints: FreeBSD's ``sys/netipsec/keysock.c``.

A :class:`KeySocket` is one ``socket(PF_KEY, SOCK_RAW, PF_KEY_V2)`` attached
to a kernel (``pfkey.key.Key``).  It is sans-I/O: the "socket" is a bounded
queue of whole messages; ``pfkey`` starts no thread.  It is thread-safe:
several threads may send, receive and close concurrently.

Rules (reference pfkey_setkey_reference.md §A.1, §C; keysock.c):

* ``send(data)`` is ``key_send`` + ``key_parse``: a message larger than the
  send buffer fails with EMSGSIZE (sosend); the keysock / key_align checks
  fail ``send()`` (``PfkeyError`` with ``delivery`` SEND); everything else is
  answered by messages in receive queues, and ``send()`` returns the length.
  If the *sender's own* copy of the answer cannot be queued (its receive
  buffer is full) ``send()`` fails with ENOBUFS even though the kernel did
  the work -- FreeBSD returns key_sendup_mbuf's error from key_output.
* ``key_sendup_mbuf(so, data, target)`` delivers kernel messages: walk the
  socket list (newest socket first, LIST_INSERT_HEAD); every promiscuous
  socket first gets a copy wrapped in a 16-byte SADB_X_PROMISC header; then
  every socket but the sender gets a copy if the target is ALL, or
  REGISTERED and the socket has registered for any SA type; finally the
  sender (when there is one) gets its copy whatever the target.
* Receive buffers are bounded (``net.key.recvspace``, 8192 bytes).  A
  message costs its length plus the 2-byte ``key_src`` sockaddr
  (sbappendaddr); one that does not fit is dropped, the socket's overflow
  counter goes up, and the kernel never blocks.  With ``so_rerror`` set
  (SO_RERROR) the next ``recv`` fails once with ENOBUFS, as soroverflow does.
  Deliberate simplification: only bytes are counted, not mbuf storage
  (``sb_mbmax``).
* ``close()`` is key_detach: the socket's registrations are freed and it
  leaves the list.

Locks: ``KeySockList.lock`` is keysock.c's ``keysock_mtx`` (the pcb list);
each socket's ``_cond`` is its receive sockbuf lock.  Order: key.c locks ->
keysock_mtx -> sockbuf.
"""

from __future__ import annotations

import errno as _errno
import struct
import threading
import time
from collections import deque
from typing import TYPE_CHECKING, Callable, Optional

from .errors import Delivery, PfkeyError
from .pfkeyv2 import PF_KEY_V2, SADB

if TYPE_CHECKING:  # pragma: no cover
    from .key import Key

KEY_SENDUP_ONE = 0
KEY_SENDUP_ALL = 1
KEY_SENDUP_REGISTERED = 2

#: sizeof(key_src): the sockaddr sbappendaddr stores with every record.
KEY_SRC_LEN = 2

_PROMISC_HDR = struct.Struct("<BBBBHHII")


def _promisc_wrap(data: bytes) -> bytes:
    """key_sendup0(promisc=1): a zeroed sadb_msg of type X_PROMISC in front."""
    total = 16 + len(data)
    return _PROMISC_HDR.pack(PF_KEY_V2, SADB.X_PROMISC, 0, 0, (total >> 3) & 0xFFFF,
                             0, 0, 0) + data


class KeySockList:
    """V_keycb_list and keysock_mtx: every open PF_KEY socket of one kernel."""

    def __init__(self) -> None:
        self.lock = threading.Lock()        # keysock_mtx
        self.sockets: list[KeySocket] = []  # head first

    def attach(self, so: "KeySocket") -> None:
        with self.lock:
            self.sockets.insert(0, so)

    def detach(self, so: "KeySocket") -> None:
        with self.lock:
            try:
                self.sockets.remove(so)
            except ValueError:
                pass

    def key_sendup_mbuf(self, so: Optional["KeySocket"], data: bytes, target: int) -> int:
        """keysock.c key_sendup_mbuf; returns 0 or ENOBUFS (the sender's copy)."""
        with self.lock:
            for kp in self.sockets:
                if kp.kp_promisc:
                    kp._sbappend(_promisc_wrap(data))
                if kp is so:
                    continue
                if target == KEY_SENDUP_ONE or \
                        (target == KEY_SENDUP_REGISTERED and kp.kp_registered == 0):
                    continue
                kp._sbappend(data)
            if so is not None:
                return 0 if so._sbappend(data) else _errno.ENOBUFS
            return 0


class KeySocket:
    """One PF_KEY socket attached to a :class:`pfkey.key.Key`.

    ``recvspace`` / ``sendspace`` default to the kernel's ``net.key.recvspace``
    / ``net.key.sendspace``; set :attr:`rcvbuf` to model SO_RCVBUF (setkey
    and IKE daemons raise it).
    """

    def __init__(self, kernel: "Key", *, recvspace: Optional[int] = None,
                 sendspace: Optional[int] = None, so_rerror: bool = False,
                 upcall: Optional[Callable[[], None]] = None) -> None:
        self.kernel = kernel
        #: soupcall_set(SO_RCV): called after a record is queued (set before
        #: the socket attaches, so no broadcast is missed).
        self._upcall = upcall
        self.rcvbuf = kernel.recvspace if recvspace is None else int(recvspace)
        self.sndbuf = kernel.sendspace if sendspace is None else int(sendspace)
        self.so_rerror = so_rerror
        self.kp_promisc = 0
        self.kp_registered = 0
        self.overflow = 0                  # records dropped (soroverflow count)
        self._rerror = 0
        self._queue: deque[bytes] = deque()
        self._cc = 0                       # sb_ccc: bytes queued incl. key_src
        self._cond = threading.Condition(threading.Lock())
        self._closed = False
        kernel.keysock.attach(self)        # key_attach

    # -- kernel side -------------------------------------------------------

    def _sbappend(self, data: bytes) -> bool:
        """sbappendaddr: queue one record, or drop it and flag overflow."""
        need = len(data) + KEY_SRC_LEN
        with self._cond:
            if self._closed:
                return False
            if need > self.rcvbuf - self._cc:
                self.overflow += 1
                if self.so_rerror:
                    self._rerror = _errno.ENOBUFS
                    self._cond.notify_all()
                return False
            self._queue.append(data)
            self._cc += need
            self._cond.notify()
        up = self._upcall
        if up is not None:
            # sorwakeup's upcall; FreeBSD calls it with the sockbuf lock
            # held, the model just after (the callback must be quick and
            # must not call back into the kernel).
            up()
        return True

    def soupcall_set(self, fn: Optional[Callable[[], None]]) -> None:
        """soupcall_set(so, SO_RCV, fn) / soupcall_clear (``None``)."""
        self._upcall = fn

    # -- user side ---------------------------------------------------------

    def send(self, data: bytes | bytearray | memoryview) -> int:
        """write(2)/send(2) of one PF_KEY message; returns its length."""
        if self._closed:
            raise OSError(_errno.EBADF, "PF_KEY socket is closed")
        if not isinstance(data, bytes):
            data = bytes(data)
        if len(data) > self.sndbuf:
            raise PfkeyError(f"message of {len(data)} bytes exceeds the send buffer "
                             f"({self.sndbuf})", errno=_errno.EMSGSIZE,
                             delivery=Delivery.SEND)
        err = self.kernel.key_parse(self, data)
        if err:
            raise PfkeyError("the reply could not be queued on the sender's socket",
                             errno=err, delivery=Delivery.SEND)
        return len(data)

    sendall = send

    def recv(self, timeout: Optional[float] = None) -> bytes:
        """One whole message.  ``timeout=None`` blocks; 0 raises
        BlockingIOError when empty; a positive timeout raises TimeoutError."""
        with self._cond:
            if timeout is None:
                while not self._queue and not self._closed and not self._rerror:
                    self._cond.wait()
            elif timeout <= 0:
                pass
            else:
                deadline = time.monotonic() + timeout
                while not self._queue and not self._closed and not self._rerror:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        break
                    self._cond.wait(left)
            if self._rerror:
                err, self._rerror = self._rerror, 0
                raise OSError(err, "receive buffer overflowed (SO_RERROR)")
            if self._queue:
                data = self._queue.popleft()
                self._cc -= len(data) + KEY_SRC_LEN
                return data
            if self._closed:
                raise OSError(_errno.EBADF, "PF_KEY socket is closed")
            if timeout is not None and timeout <= 0:
                raise BlockingIOError(_errno.EAGAIN, "no PF_KEY message queued")
            raise TimeoutError(_errno.ETIMEDOUT, "timed out waiting for a PF_KEY message")

    def recv_nowait(self) -> bytes:
        """recv(MSG_DONTWAIT)."""
        return self.recv(0)

    def recv_all(self) -> list[bytes]:
        """Every queued message, without blocking (possibly none)."""
        with self._cond:
            out = list(self._queue)
            self._queue.clear()
            self._cc = 0
            if self._rerror:
                self._rerror = 0
            return out

    def pending(self) -> int:
        """Messages queued for receive."""
        with self._cond:
            return len(self._queue)

    @property
    def rcv_cc(self) -> int:
        """Bytes the receive buffer holds (records + key_src sockaddrs)."""
        return self._cc

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        """close(2): key_detach -- free registrations, leave the list."""
        if self._closed:
            return
        self.kernel.key_freereg(self)
        self.kernel.keysock.detach(self)
        with self._cond:
            self._closed = True
            self._queue.clear()
            self._cc = 0
            self._cond.notify_all()

    def __enter__(self) -> "KeySocket":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return (f"<KeySocket promisc={self.kp_promisc} registered={self.kp_registered} "
                f"queued={len(self._queue)} overflow={self.overflow}"
                f"{' closed' if self._closed else ''}>")


__all__ = ["KeySocket", "KeySockList", "KEY_SENDUP_ONE", "KEY_SENDUP_ALL",
           "KEY_SENDUP_REGISTERED"]
