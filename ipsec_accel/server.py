"""The model daemon: one long-lived :class:`ipsec_accel.host.Host` whose PF_KEY
sockets are served over a Unix ``SOCK_SEQPACKET`` socket.

FreeBSD's PF_KEY socket layer is ``sys/netipsec/keysock.c``: each
``socket(PF_KEY, SOCK_RAW, PF_KEY_V2)`` gets a keycb on the kernel's list,
``send()`` runs ``key_output``/``key_parse`` in the sender's context, and
``key_sendup_mbuf`` appends replies and broadcasts to receive buffers.  Here
every accepted Unix connection owns exactly one :class:`pfkey.keysock.KeySocket`
on the host's kernel, so REGISTER, promiscuous mode, ALL / REGISTERED routing
and per-socket buffer overflow behave across client processes exactly as across
FreeBSD processes.  The framing (one PF_KEY message per packet, exact bytes;
12-byte control packets for ``send(2)`` results and the ``socket(2)`` refusal)
is specified in :mod:`ipsec_accel.pfkey_client`, which is also the client.

Rules
-----
* **Privilege.** The socket file is created mode 0600 (umask during bind,
  then chmod).  A peer whose SO_PEERCRED uid is not allowed (default: root and
  the daemon's own uid; injectable) gets HELLO(EPERM) and is disconnected --
  key_attach's PRIV_NET_RAW check.
* **Never down.**  Garbage, truncated or oversized packets go to ``key_parse``
  (or fail like ``send()`` fails: EMSGSIZE above the socket's send buffer) and
  the client gets the errno; an exception from the kernel model is logged and
  answered EINVAL; a client that disconnects at any point just loses its
  socket (key_detach).  Nothing a client sends can stop the loop.
* **Ordering.**  Each client packet is answered by one RESULT, after every
  message the kernel queued for that socket before ``send()`` returned.
* **Buffers.**  Messages wait in the connection's KeySocket (its bounded receive
  buffer: a client that stops reading loses messages there, as on FreeBSD)
  until the Unix socket accepts them; the Unix socket's own send buffer is
  kept small (64 KiB, raised for a single larger message) so that little is
  in flight beyond the modelled buffer.  A client that sends without reading
  is not read any further until it catches up (a blocking send).  A client
  that closes or shuts down its side still gets the RESULTs it is owed if it
  can read them; then its socket goes.
* **Settled dumps.**  Before answering GET, DUMP, SPDGET or SPDDUMP the daemon
  waits for the offload taskqueue (``Host.settle_for``), so a dump right after
  an ``add`` shows the hardware install; ``--no-settle`` keeps FreeBSD's race.
* **One thread** runs the socket loop (selectors); ``key_parse`` runs on it.
  Kernel messages raised on other threads (the key timer's EXPIREs, the
  offload taskqueue) wake it through a pipe.
* **Shutdown.**  SIGTERM / SIGINT (or :meth:`PfkeyServer.shutdown`) close every
  connection, remove the socket file (only if it is still ours) and stop the
  host.  A stale socket file left by a killed daemon is detected (nobody
  answers on it) and replaced; a live one is refused (EADDRINUSE).

Command: ``python -m ipsec_accel.server --socket PATH`` (a host without NICs;
``tools/pfkeyd.py`` is the same daemon with the default mock-NIC topology).
"""

from __future__ import annotations

import argparse
import errno as _errno
import importlib
import logging
import os
import selectors
import signal
import socket
import stat
import sys
import threading
from collections import deque
from typing import Any, Callable, Iterable, Optional, Sequence, TextIO

from pfkey.errors import to_wire
from pfkey.keysock import KeySocket

from .host import Host, tune_gc
from .pfkey_client import (
    CTRL_GET_IFNAMES, CTRL_HELLO, CTRL_RESULT, CTRL_SETOPT_RCVBUF, CTRL_SETOPT_SNDBUF,
    MAX_PACKET, SOCKET_ENV, PeerCred, ctrl_packet, is_ctrl, parse_ctrl, peercred,
    wire_errno_of,
)

__all__ = ["PfkeyServer", "main", "DEFAULT_SOCKET", "SB_MAX_ADJ", "HostFactory"]

log = logging.getLogger("ipsec_accel.server")

#: Where the daemon listens when neither --socket nor $PFKEY_SOCKET says.
DEFAULT_SOCKET = "/tmp/pfkeyd.sock"

#: FreeBSD's largest socket buffer: kern.ipc.maxsockbuf (2 MiB) scaled by
#: MCLBYTES / (MSIZE + MCLBYTES) (uipc_sockbuf.c sb_max_adj).  sbreserve()
#: refuses more with ENOBUFS -- which is why libipsec's pfkey_open, asking for
#: 2 MiB, ends up with 1 MiB.
SB_MAX_ADJ = 2097152 * 2048 // (256 + 2048)

#: SO_SNDBUF of an accepted Unix socket: what may be in flight to a client
#: beyond its PF_KEY socket's receive buffer.  Kept small so that a client that
#: stops reading fills its KeySocket and loses messages there, as FreeBSD's
#: receiver does; raised on the spot for a single larger message.
_UNIX_SNDBUF = 64 * 1024

#: Client packets read per connection per loop turn (fairness).
_READ_BATCH = 64
#: Answers a connection may have waiting before we stop reading from it.
_MAX_BACKLOG = 256

HostFactory = Callable[..., Host]


class _Conn:
    """One accepted client: its Unix socket and its PF_KEY socket."""

    __slots__ = ("sock", "ks", "cred", "out", "results", "events", "closed", "closing", "cid")

    def __init__(self, sock: socket.socket, cred: PeerCred, cid: int) -> None:
        self.sock = sock
        self.ks: Optional[KeySocket] = None
        self.cred = cred
        self.out: deque[bytes] = deque()          # packets ready to write, in order
        self.results: deque[list[Any]] = deque()  # [messages still ahead, RESULT packet]
        self.events = 0
        self.closed = False
        self.closing = False          # EOF seen: deliver the answers owed, then close
        self.cid = cid

    def __repr__(self) -> str:
        return f"<conn {self.cid} pid={self.cred.pid} uid={self.cred.uid}>"


class PfkeyServer:
    """Serve ``host``'s kernel on the Unix socket ``path`` (see module docstring).

    ``allowed_uids``: peers accepted (default root and our euid).
    ``settle``: sync the offload taskqueue before dump-like requests.
    ``own_host``: stop the host when the server closes.
    """

    def __init__(self, host: Host, path: str | os.PathLike[str], *,
                 allowed_uids: Optional[Iterable[int]] = None, backlog: int = 128,
                 max_clients: int = 1024, settle: bool = True, own_host: bool = False) -> None:
        self.host = host
        self.path = os.fspath(path)
        self.allowed_uids = frozenset({0, os.geteuid()} if allowed_uids is None
                                      else (int(u) for u in allowed_uids))
        self.backlog = backlog
        self.max_clients = max_clients
        self.settle = settle
        self.own_host = own_host
        self.stats = {"accepted": 0, "refused": 0, "packets": 0, "send_errors": 0,
                      "internal_errors": 0, "disconnects": 0}
        self._listener: Optional[socket.socket] = None
        self._inode: Optional[tuple[int, int]] = None
        self._sel: Optional[selectors.BaseSelector] = None
        self._conns: dict[int, _Conn] = {}
        self._next_cid = 1
        self._wake_r = self._wake_w = -1
        self._dirty: set[_Conn] = set()
        self._dirty_lock = threading.Lock()
        self._wake_pending = False
        self._loop_ident: Optional[int] = None
        self._stop = threading.Event()
        self._done = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self._buf = bytearray(MAX_PACKET)
        self._view = memoryview(self._buf)

    # -- setup ------------------------------------------------------------------------

    def _clear_stale(self) -> None:
        """Remove a socket file nobody answers on; refuse a live one or a non-socket."""
        try:
            st = os.lstat(self.path)
        except FileNotFoundError:
            return
        if not stat.S_ISSOCK(st.st_mode):
            raise FileExistsError(_errno.EEXIST, f"{self.path} exists and is not a socket")
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        probe.settimeout(1.0)
        try:
            probe.connect(self.path)
        except (ConnectionRefusedError, FileNotFoundError):
            os.unlink(self.path)       # a daemon died without cleaning up
            return
        except OSError:
            return                     # let bind() report what is wrong
        finally:
            probe.close()
        raise OSError(_errno.EADDRINUSE, f"a daemon is already serving {self.path}")

    def bind(self) -> None:
        """Create the listening socket (mode 0600) and the loop's selector."""
        if self._listener is not None:
            return
        self._clear_stale()
        lst = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        old = os.umask(0o177)          # the file is born 0600: no window for others
        try:
            lst.bind(self.path)
        except BaseException:
            lst.close()
            raise
        finally:
            os.umask(old)
        os.chmod(self.path, 0o600)
        st = os.lstat(self.path)
        self._inode = (st.st_dev, st.st_ino)
        lst.listen(self.backlog)
        lst.setblocking(False)
        self._listener = lst
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self._sel = selectors.DefaultSelector()
        self._sel.register(lst, selectors.EVENT_READ, "listener")
        self._sel.register(self._wake_r, selectors.EVENT_READ, "wake")

    def start(self) -> "PfkeyServer":
        """Bind and run the loop on a background thread (for tests and embedding)."""
        self.bind()
        self.host.start()
        self._thread = threading.Thread(target=self.serve_forever, name="pfkeyd", daemon=True)
        self._thread.start()
        return self

    # -- the loop -----------------------------------------------------------------------------

    def serve_forever(self) -> None:
        """Run until :meth:`shutdown`; then close everything."""
        self.bind()
        assert self._sel is not None
        self._loop_ident = threading.get_ident()
        try:
            while not self._stop.is_set():
                for key, mask in self._sel.select(timeout=None):
                    tag = key.data
                    try:
                        if tag == "listener":
                            self._accept()
                        elif tag == "wake":
                            self._drain_wake()
                        else:
                            conn: _Conn = tag
                            if mask & selectors.EVENT_READ and not conn.closed:
                                self._on_readable(conn)
                            if mask & selectors.EVENT_WRITE and not conn.closed:
                                self._flush(conn)
                    except Exception:   # noqa: BLE001 -- a bug costs one client, not all
                        self.stats["internal_errors"] += 1
                        log.exception("socket loop error")
                        if isinstance(tag, _Conn):
                            self._drop(tag, "internal error")
                try:
                    self._flush_dirty()
                except Exception:   # noqa: BLE001
                    self.stats["internal_errors"] += 1
                    log.exception("socket loop error while flushing")
        finally:
            self._cleanup()

    def shutdown(self) -> None:
        """Ask the loop to stop (safe from signal handlers and other threads)."""
        self._stop.set()
        self._wake()

    def wait(self, timeout: Optional[float] = None) -> bool:
        """Wait until the loop has stopped and cleaned up."""
        return self._done.wait(timeout)

    def close(self, timeout: float = 5.0) -> None:
        self.shutdown()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)
        elif self._thread is None and not self._done.is_set():
            self._cleanup()

    def __enter__(self) -> "PfkeyServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def clients(self) -> int:
        return len(self._conns)

    # -- wake-ups -------------------------------------------------------------------------------

    @property
    def wakeup_fd(self) -> int:
        """The write end of the loop's wake pipe (after :meth:`bind`), for
        ``signal.set_wakeup_fd``: any byte written there wakes the loop."""
        return self._wake_w

    def _wake(self) -> None:
        if self._wake_w < 0:
            return
        try:
            os.write(self._wake_w, b"x")
        except (BlockingIOError, OSError):
            pass                       # the pipe is full: a wake-up is pending anyway

    def _mark_dirty(self, conn: _Conn) -> None:
        # Called with keysock_mtx held, from any thread: flag, then one byte --
        # except on the loop's own thread, which flushes dirty connections
        # before it next sleeps anyway (a reply to a client it is serving).
        with self._dirty_lock:
            self._dirty.add(conn)
            if self._wake_pending or threading.get_ident() == self._loop_ident:
                return
            self._wake_pending = True
        self._wake()

    def _drain_wake(self) -> None:
        try:
            while os.read(self._wake_r, 4096):
                pass
        except (BlockingIOError, OSError):
            pass

    def _flush_dirty(self) -> None:
        with self._dirty_lock:
            dirty, self._dirty = self._dirty, set()
            self._wake_pending = False
        for conn in dirty:
            if not conn.closed:
                self._flush(conn)

    # -- connections ----------------------------------------------------------------------------

    def _accept(self) -> None:
        assert self._listener is not None and self._sel is not None
        while True:
            try:
                sock, _ = self._listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:     # EMFILE and friends: keep serving the others
                log.warning("accept: %s", exc)
                return
            try:
                cred = peercred(sock)
            except OSError:
                sock.close()
                continue
            sock.setblocking(False)
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, _UNIX_SNDBUF)
            except OSError:
                pass
            refuse = 0
            if cred.uid not in self.allowed_uids:
                refuse = _errno.EPERM            # key_attach: PRIV_NET_RAW
            elif len(self._conns) >= self.max_clients:
                refuse = _errno.ENOBUFS
            if refuse:
                self.stats["refused"] += 1
                log.info("refused pid %d uid %d: %s", cred.pid, cred.uid, os.strerror(refuse))
                try:
                    sock.send(ctrl_packet(CTRL_HELLO, to_wire(refuse)))
                except OSError:
                    pass
                sock.close()
                continue
            conn = _Conn(sock, cred, self._next_cid)
            self._next_cid += 1
            conn.out.append(ctrl_packet(CTRL_HELLO, 0, b"pfkeyd 1"))
            # The kernel queues -> the loop is told (sorwakeup's upcall; it
            # runs in the kernel's thread, so it only flags and writes a byte).
            # (A def rather than a lambda: mypy cannot type a lambda's default.)

            def upcall(c: _Conn = conn) -> None:
                self._mark_dirty(c)

            conn.ks = KeySocket(self.host.key, upcall=upcall)
            self._conns[conn.cid] = conn
            conn.events = selectors.EVENT_READ
            self._sel.register(sock, conn.events, conn)
            self.stats["accepted"] += 1
            log.info("client %d connected: pid %d uid %d", conn.cid, cred.pid, cred.uid)
            self._flush(conn)

    def _drop(self, conn: _Conn, why: str = "") -> None:
        """Close one client: its PF_KEY socket goes (key_detach)."""
        if conn.closed:
            return
        conn.closed = True
        self._conns.pop(conn.cid, None)
        self.stats["disconnects"] += 1
        if self._sel is not None:
            try:
                self._sel.unregister(conn.sock)
            except (KeyError, ValueError):
                pass
        try:
            conn.sock.close()
        except OSError:
            pass
        if conn.ks is not None:
            conn.ks.close()
        conn.out.clear()
        conn.results.clear()
        log.info("client %d gone%s", conn.cid, f" ({why})" if why else "")

    def _set_events(self, conn: _Conn) -> None:
        want = 0
        if len(conn.out) + len(conn.results) < _MAX_BACKLOG and not conn.closing:
            want |= selectors.EVENT_READ
        if conn.out or (conn.results and conn.results[0][0] <= 0) or \
                (conn.ks is not None and conn.ks.pending()):
            want |= selectors.EVENT_WRITE
        if want != conn.events and self._sel is not None and not conn.closed:
            if conn.events == 0:
                self._sel.register(conn.sock, want, conn)
            elif want:
                self._sel.modify(conn.sock, want, conn)
            else:
                self._sel.unregister(conn.sock)
            conn.events = want

    def _on_readable(self, conn: _Conn) -> None:
        for _ in range(_READ_BATCH):
            if conn.closed or len(conn.out) + len(conn.results) >= _MAX_BACKLOG:
                break
            try:
                n, _anc, flags, _addr = conn.sock.recvmsg_into([self._buf])
            except (BlockingIOError, InterruptedError):
                break
            except OSError as exc:
                self._drop(conn, os.strerror(exc.errno or 0))
                return
            if n == 0 and not flags & socket.MSG_TRUNC:
                # EOF (close or shutdown(SHUT_WR)): the peer still gets the
                # RESULTs it is owed if it can read them, then the socket goes.
                conn.closing = True
                break
            self.stats["packets"] += 1
            if flags & socket.MSG_TRUNC:
                # Larger than any PF_KEY message can be: sosend's EMSGSIZE.
                self._post_result(conn, -to_wire(_errno.EMSGSIZE))
                continue
            data = bytes(self._view[:n])
            if is_ctrl(data):
                self._control(conn, data)
            else:
                self._pfkey_send(conn, data)
        if conn.closing:
            self._flush(conn)
        elif not conn.closed:
            # Written by _flush_dirty at the end of this loop turn, together
            # with whatever the kernel queued for other clients meanwhile.
            with self._dirty_lock:
                self._dirty.add(conn)

    def _pfkey_send(self, conn: _Conn, data: bytes) -> None:
        """send(2) on the client's PF_KEY socket: key_output -> key_parse."""
        assert conn.ks is not None
        if self.settle:
            self.host.settle_for(data)
        try:
            value = conn.ks.send(data)
        except OSError as exc:
            self.stats["send_errors"] += 1
            value = -wire_errno_of(exc)
        except Exception:   # noqa: BLE001 -- a model bug must not stop the daemon
            self.stats["internal_errors"] += 1
            log.exception("key_parse raised on a message from client %d", conn.cid)
            value = -to_wire(_errno.EINVAL)
        self._post_result(conn, value)

    def _control(self, conn: _Conn, data: bytes) -> None:
        assert conn.ks is not None
        kind, value, _payload = parse_ctrl(data)
        result, payload = -to_wire(_errno.EINVAL), b""
        if kind in (CTRL_SETOPT_RCVBUF, CTRL_SETOPT_SNDBUF):
            attr = "rcvbuf" if kind == CTRL_SETOPT_RCVBUF else "sndbuf"
            if value < 0:
                result = int(getattr(conn.ks, attr))
            elif value == 0:
                result = -to_wire(_errno.EINVAL)
            elif value > SB_MAX_ADJ:
                result = -to_wire(_errno.ENOBUFS)      # sbreserve() refuses
            else:
                setattr(conn.ks, attr, value)
                result = value
        elif kind == CTRL_GET_IFNAMES:
            result = 0
            payload = "".join(f"{idx} {name}\n" for name, idx in
                              self.host.interfaces().items()).encode("latin-1", "replace")
        else:
            self.stats["send_errors"] += 1
        self._post_result(conn, result, payload)

    def _post_result(self, conn: _Conn, value: int, payload: bytes = b"") -> None:
        # Everything already queued on the PF_KEY socket goes out first.
        ahead = conn.ks.pending() if conn.ks is not None else 0
        conn.results.append([ahead, ctrl_packet(CTRL_RESULT, value, payload)])

    def _flush(self, conn: _Conn) -> None:
        """Write what is ready, pulling messages off the KeySocket in order."""
        ks = conn.ks
        while not conn.closed:
            if conn.out:
                try:
                    conn.sock.send(conn.out[0])
                except (BlockingIOError, InterruptedError):
                    break
                except OSError as exc:
                    if exc.errno == _errno.EMSGSIZE and self._grow_sndbuf(conn, len(conn.out[0])):
                        continue
                    self._drop(conn, os.strerror(exc.errno or 0))
                    return
                conn.out.popleft()
                continue
            if conn.results and conn.results[0][0] <= 0:
                conn.out.append(conn.results.popleft()[1])
                continue
            if conn.closing and not conn.results:
                self._drop(conn, "EOF")
                return
            if ks is None:
                break
            try:
                msg = ks.recv_nowait()
            except BlockingIOError:
                break
            except OSError:
                # SO_RERROR overflow report or a closed socket: nothing to send.
                break
            for entry in conn.results:
                entry[0] -= 1
            conn.out.append(msg)
        if not conn.closed:
            self._set_events(conn)

    @staticmethod
    def _grow_sndbuf(conn: _Conn, size: int) -> bool:
        """A message larger than the Unix socket's send buffer: make room."""
        try:
            cur = conn.sock.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF)
            want = 2 * size + 4096
            if cur >= 2 * want:
                return False
            conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, want)
            return True
        except OSError:
            return False

    def _cleanup(self) -> None:
        if self._done.is_set():
            return
        for conn in list(self._conns.values()):
            self._drop(conn, "shutdown")
        if self._sel is not None:
            self._sel.close()
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        # Remove the socket file only if it is still the one we created.
        try:
            st = os.lstat(self.path)
            if self._inode == (st.st_dev, st.st_ino):
                os.unlink(self.path)
        except OSError:
            pass
        if threading.current_thread() is threading.main_thread() and self._wake_w >= 0:
            # Detach a signal wakeup fd pointing at our pipe before closing it,
            # so a late signal never writes into a closed or reused descriptor.
            old = signal.set_wakeup_fd(-1)
            if old != self._wake_w:
                signal.set_wakeup_fd(old)
        for fd in (self._wake_r, self._wake_w):
            if fd >= 0:
                try:
                    os.close(fd)
                except OSError:
                    pass
        self._wake_r = self._wake_w = -1
        if self.own_host:
            self.host.stop()
        self._done.set()


# ---------------------------------------------------------------------------------------
# python -m ipsec_accel.server
# ---------------------------------------------------------------------------------------

def _load_factory(spec: str) -> HostFactory:
    """``module:function`` -> the function."""
    mod_name, _, fn_name = spec.partition(":")
    if not mod_name or not fn_name:
        raise ValueError(f"--host-factory wants module:function, not {spec!r}")
    fn = getattr(importlib.import_module(mod_name), fn_name)
    if not callable(fn):
        raise ValueError(f"{spec} is not callable")
    return fn  # type: ignore[no-any-return]


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="pfkeyd", description="Serve a modelled FreeBSD kernel's PF_KEY v2 over a "
        "Unix SOCK_SEQPACKET socket (one PF_KEY message per packet).")
    p.add_argument("--socket", metavar="PATH", default=None,
                   help=f"socket file (default ${SOCKET_ENV} or {DEFAULT_SOCKET})")
    p.add_argument("--allow-uid", metavar="UID", type=int, action="append", default=None,
                   help="uid allowed to connect (repeatable; default root and our own uid)")
    p.add_argument("--topology", metavar="FILE", default=None,
                   help="mock-NIC topology file for the host factory")
    p.add_argument("--host-factory", metavar="MODULE:FUNC", default=None,
                   help="callable building the Host (e.g. drivers.topology:build_host)")
    p.add_argument("--no-offload", action="store_true",
                   help="run without the ipsec_offload layer")
    p.add_argument("--no-settle", action="store_true",
                   help="do not wait for the offload taskqueue before dumps")
    p.add_argument("-v", "--verbose", action="store_true", help="log connections to stderr")
    return p


def main(argv: Optional[Sequence[str]] = None, *,
         host_factory: Optional[HostFactory] = None, prog: str = "pfkeyd",
         stdout: Optional[TextIO] = None) -> int:
    """The daemon's command line; returns the exit status."""
    out = stdout if stdout is not None else sys.stdout
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format=f"{prog}: %(message)s", stream=sys.stderr)
    path = args.socket or os.environ.get(SOCKET_ENV) or DEFAULT_SOCKET
    try:
        factory = _load_factory(args.host_factory) if args.host_factory else host_factory
        if factory is not None:
            host = factory(args.topology) if args.topology else factory()
            if args.no_offload:
                host.detach_offload()
        else:
            if args.topology:
                print(f"{prog}: --topology needs a host factory (tools/pfkeyd.py, or "
                      "--host-factory drivers.topology:build_host)", file=sys.stderr)
                return 2
            host = Host(offload=not args.no_offload)
    except Exception as exc:   # noqa: BLE001 -- one clear line, not a traceback
        print(f"{prog}: cannot build the host: {exc}", file=sys.stderr)
        return 1
    server = PfkeyServer(host, path, allowed_uids=args.allow_uid, settle=not args.no_settle,
                         own_host=True)
    try:
        server.bind()
    except OSError as exc:
        print(f"{prog}: {path}: {exc.strerror or exc}", file=sys.stderr)
        host.stop()
        return 1

    def _on_signal(signum: int, _frame: Any) -> None:
        server.shutdown()

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    # The kernel may deliver a process-directed signal to any thread (the
    # taskqueue, NIC polls ...); Python runs the handler only when the main
    # thread next executes bytecode, and the loop sleeps in select() with no
    # timeout.  The wakeup fd makes the C-level handler write a byte into the
    # loop's wake pipe, so select() returns and the handler runs.
    signal.set_wakeup_fd(server.wakeup_fd, warn_on_full_buffer=False)
    tune_gc()
    host.taskqueue.yield_between_tasks = True
    host.start()
    uids = ",".join(str(u) for u in sorted(server.allowed_uids))
    print(f"{prog}: serving PF_KEY v2 on {path} (SOCK_SEQPACKET, mode 0600, pid {os.getpid()}, "
          f"peers uid {uids}); {host.describe()}", file=out, flush=True)
    server.serve_forever()          # its cleanup detaches the wakeup fd
    print(f"{prog}: stopped", file=out, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
