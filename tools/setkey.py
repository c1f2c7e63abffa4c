#!/usr/bin/env python3
"""setkey(8) on the model: FreeBSD ``sbin/setkey/setkey.c`` (main 2024-10, as
vendored by RTEMS libbsd) over the model's PF_KEY sockets.

Glue only: the grammar is :mod:`pfkey.setkey_parse`, the dump text
:mod:`pfkey.pfkey_dump`, the ``-v``/``-x`` text :mod:`pfkey.key_debug`, the
kernel a :class:`ipsec_accel.host.Host` or the daemon
(:mod:`ipsec_accel.server`, reached with :class:`ipsec_accel.pfkey_client.PfkeyClientSocket`).
This module is setkey.c itself: its options, ``sendkeymsg``, ``postproc``,
``promisc``, ``get_supported``, messages and exit codes.

Command line (getopt ``acde:f:ghltvxDFP``, BSD getopt: options stop at the
first operand, clusters like ``-DP`` and ``-xx`` work)::

    usage: setkey [-v] -c
           setkey [-v] -f filename
           setkey [-v] -e "<script>"
           setkey [-Pagltv] -D
           setkey [-Pv] -F
           setkey [-h] -x

This is FreeBSD main's setkey (2024), the one with ``-e`` and ``-hwif``;
FreeBSD 14's has the same code without ``-e`` (getopt ``acdf:ghltvxDFP``, a
five-line usage -- pfkey_setkey_reference.md §D.1).

``-c`` script on stdin, ``-f`` from a file, ``-e`` from the argument (an empty
one fails as FreeBSD's ``fmemopen`` does: ``setkey: fmemopen: Invalid
argument``, 255; a second ``-f``/``-e`` without a ``-c`` between them is
``err(-1, "only one -f/-e option is accepted")``); script
mode sends SADB_REGISTER (UNSPEC) first and checks keys against the lists it
returns.  ``-D`` dumps the SAD (``-P`` the SPD; ``-g``/``-t`` OR the global /
ifnet scope bits into SPDDUMP's satype), ``-F`` flushes, ``-a`` also shows DEAD
SAs, ``-l`` loops once a second with the short format, ``-x`` is promiscuous
mode (``-xx``: ``sec.usec`` timestamps), ``-h`` hex dumps, ``-v`` prints every
message sent and received as kdebug_sadb text.  ``-d`` is accepted by getopt
and handled by nobody: usage.

Exit codes and messages are FreeBSD's: usage -> 1 (on stdout); an unknown
option or missing argument -> getopt's line on stderr, usage, 1; ``fopen``
failure -> ``setkey: fopen: <strerror>`` and 255; REGISTER failing -> 255;
a parse error -> ``line N: <msg> at [<token>]`` + ``parse failed, line N.``
(stdout) and 1.  A kernel error prints ``The result of line N: <strerror>.``
(without the prefix outside script mode) and does **not** change the exit
status -- setkey goes on with the next statement and exits 0, as FreeBSD's
does.  Replies are read with a 1 s receive timeout (``recv: Resource
temporarily unavailable``) until one has errno 0 and seq 0.

Reaching a kernel (options of the model, spelled as long options so they can
never clash with FreeBSD's letters; they are removed before getopt runs):

* embedded (default): a fresh in-process host -- ``drivers.topology``'s
  default mock-NIC topology when that module exists, else a host without
  NICs.  Each invocation is a new kernel, so put ``dump;`` / ``spddump;`` in
  the script to see what it did.  ``--topology FILE`` picks a topology file
  (environment ``PFKEY_TOPOLOGY``).
* daemon: ``--socket PATH`` or the environment variable ``PFKEY_SOCKET``
  (``--embedded`` overrides the variable).  Start the daemon with
  ``python tools/pfkeyd.py --socket PATH``.

Model switches (environment ``SETKEY_QUIRKS``, comma-separated; FreeBSD bugs
reproduced on request, off by default): ``hwif_add`` (add never sends
``-hwif``), ``hwif_spd`` (``-hwif`` after ``-P`` swallowed by the policy
scanner), ``kdebug_offl`` (kdebug_sadb stops at the first offload
extension), ``verbose_trailing`` (``-v`` decodes the bytes after each DUMP /
SPDDUMP reply -- stale receive-buffer contents in FreeBSD, modelled as
zeros; without it nothing is printed there).

pfkey_open is libipsec's: SO_SNDBUF raised to 128 KiB, SO_RCVBUF asked for
2 MiB and halved until the kernel accepts (1 MiB: sb_max_adj).

Deliberate departures: ``-c`` reads stdin to EOF before parsing (FreeBSD's
flex reads as it parses; the messages and output are the same for a pipe);
over the daemon socket the next statement is parsed while the kernel works on
the current one (its echo, warnings or parse error are held until the current
statement's replies are printed, so output, messages and the applied
statements are FreeBSD's -- only the two processes overlap);
``-x`` skips a message shorter than a sadb_msg instead of spinning on it
forever as FreeBSD's MSG_PEEK loop does; in embedded mode and by default in
the daemon, a DUMP/GET/SPDDUMP waits for the offload taskqueue first so the
``hw offl`` lines are reproducible.
"""

from __future__ import annotations

import errno as _errno
import io
import os
import struct
import sys
import time
from datetime import timedelta, timezone, tzinfo
from typing import (
    Any, BinaryIO, Callable, Iterator, Mapping, NamedTuple, NoReturn, Optional, Sequence, TextIO,
)

if __package__ in (None, ""):
    # Run as "python tools/setkey.py": make the repository importable.
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from pfkey.clock import Clock, SystemClock  # noqa: E402
from pfkey.errors import freebsd_strerror, to_wire  # noqa: E402
from pfkey.ipsec_strerror import EIPSEC, ipsec_strerror  # noqa: E402
from pfkey.key_debug import gmt2local, kdebug_sadb, promisc_text, sendkeymsg_text  # noqa: E402
from pfkey.message import decode  # noqa: E402
from pfkey.pfkey_dump import (  # noqa: E402
    IfNameResolver, pfkey_sadump, pfkey_spdump, postproc_errmsg, shortdump, shortdump_hdr,
)
from pfkey.pfkeyv2 import PF_KEY_V2, SADB  # noqa: E402
from pfkey.setkey_msg import Supported  # noqa: E402
from pfkey.setkey_netdb import Resolver  # noqa: E402
from pfkey.setkey_parse import SetkeyParseError, SetkeyParser, Statement  # noqa: E402

__all__ = ["main", "USAGE", "OPTSTRING", "QUIRKS", "Setkey", "getopt", "local_tz",
           "TOPOLOGY_ENV", "QUIRKS_ENV"]

PROG = "setkey"
OPTSTRING = "acde:f:ghltvxDFP"
USAGE = ('usage: setkey [-v] -c\n'
         '       setkey [-v] -f filename\n'
         '       setkey [-v] -e "<script>"\n'
         '       setkey [-Pagltv] -D\n'
         '       setkey [-Pv] -F\n'
         '       setkey [-h] -x\n')

SOCKET_ENV = "PFKEY_SOCKET"
TOPOLOGY_ENV = "PFKEY_TOPOLOGY"
QUIRKS_ENV = "SETKEY_QUIRKS"
QUIRKS = frozenset({"hwif_add", "hwif_spd", "kdebug_offl", "verbose_trailing"})

MODE_SCRIPT = 1
MODE_CMDDUMP = 2
MODE_CMDFLUSH = 3
MODE_PROMISC = 4

IPSEC_POLICYSCOPE_GLOBAL = 1
IPSEC_POLICYSCOPE_IFNET = 2

#: setkey.c's SO_RCVTIMEO in sendkeymsg.
RECV_TIMEOUT = 1.0
#: libipsec pfkey_open: SO_SNDBUF 128 KiB, SO_RCVBUF "at least 2 MiB" halving
#: until the kernel accepts (sb_max_adj: 1 MiB with the default maxsockbuf).
PFKEY_SNDBUF = 128 * 1024
PFKEY_RCVBUF_WANTED = 2 * 1024 * 1024
SB_MAX_ADJ = 2097152 * 2048 // (256 + 2048)

_MSGHDR = struct.Struct("<BBBBHHII")
_EXTHDR = struct.Struct("<HH")
_SADB_SASTATE_DEAD = 3
_ALIGN_TYPES = frozenset(range(1, 17)) | frozenset(range(18, 32))
_IF_HW_OFFL = 31


class _Exit(Exception):
    """exit(status) from deep inside (err(), errx(), yyfatal)."""

    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


# ---------------------------------------------------------------------------
# getopt(3), FreeBSD lib/libc/stdlib/getopt.c
# ---------------------------------------------------------------------------

def getopt(args: Sequence[str], optstring: str,
           error: Callable[[str], None]) -> Iterator[tuple[str, Optional[str]]]:
    """BSD getopt over ``args`` (no program name), lazily: each option in
    order; an unknown letter or a missing argument prints getopt's message
    when it is reached and yields ``("?", None)`` (setkey then calls usage()).
    Options end at the first operand, at ``-`` alone and after ``--``."""
    i = 0
    while i < len(args):
        arg = args[i]
        if not arg.startswith("-") or arg == "-" or arg == "--":
            return
        pos = 1
        while pos < len(arg):
            c = arg[pos]
            pos += 1
            k = optstring.find(c)
            if c == ":" or k < 0:
                error(f"{PROG}: illegal option -- {c}")
                yield ("?", None)
                return
            if k + 1 < len(optstring) and optstring[k + 1] == ":":
                if pos < len(arg):
                    yield (c, arg[pos:])
                elif i + 1 < len(args):
                    i += 1
                    yield (c, args[i])
                else:
                    error(f"{PROG}: option requires an argument -- {c}")
                    yield ("?", None)
                    return
                break
            yield (c, None)
        i += 1


# ---------------------------------------------------------------------------
# Local time
# ---------------------------------------------------------------------------

def local_tz(environ: Optional[Mapping[str, str]] = None) -> tzinfo:
    """The local time zone as localtime(3) sees it: $TZ, else /etc/localtime,
    else the current UTC offset."""
    env = os.environ if environ is None else environ
    name = env.get("TZ")
    try:
        from zoneinfo import ZoneInfo
        if name:
            key = name.lstrip(":")
            if key in ("UTC", "UTC0", "GMT", "GMT0", "Etc/UTC"):
                return timezone.utc
            return ZoneInfo(key)
        with open("/etc/localtime", "rb") as f:
            return ZoneInfo.from_file(f, key="localtime")
    except Exception:   # noqa: BLE001 -- any failure: fall back to the offset
        return timezone(timedelta(seconds=time.localtime().tm_gmtoff))


# ---------------------------------------------------------------------------
# The kernel connection: an embedded host or the daemon
# ---------------------------------------------------------------------------

class Kernel:
    """What pfkey_open() gave setkey: a PF_KEY socket and what goes with it."""

    def __init__(self, so: Any, *, if_names: Optional[IfNameResolver],
                 interfaces: Mapping[str, int], settle: Callable[[bytes], None],
                 now: Callable[[], int], close: Callable[[], None],
                 overlap: bool = False) -> None:
        self.so = so
        self.overlap = overlap        # send() takes while_waiting=
        self.if_names = if_names
        self.interfaces = dict(interfaces)
        self.settle = settle
        self.now = now
        self._close = close

    def close(self) -> None:
        try:
            self.so.close()
        finally:
            self._close()


def _pfkey_open_buffers(setrcv: Callable[[int], bool], setsnd: Callable[[int], bool],
                        rcv_current: int, snd_current: int) -> None:
    """libipsec pfkey_open: SO_SNDBUF up to 128 KiB, SO_RCVBUF 2 MiB halving."""
    if snd_current < PFKEY_SNDBUF:
        setsnd(PFKEY_SNDBUF)
    wanted = PFKEY_RCVBUF_WANTED
    while wanted > rcv_current:
        if setrcv(wanted):
            break
        wanted //= 2


def _embedded_host(topology: Optional[str]) -> Any:
    """A fresh host from drivers.topology: the default topology (mce0, ix0)
    or the ``topology`` file.  build_host stops its NICs with the host."""
    from drivers.topology import build_host
    return build_host(topology) if topology else build_host()


def open_embedded(host: Any, *, own: bool, rcvbuf: Optional[int] = None) -> Kernel:
    host.start()
    so = host.socket()

    def setrcv(n: int) -> bool:
        if n > SB_MAX_ADJ:
            return False
        so.rcvbuf = n
        return True

    def setsnd(n: int) -> bool:
        so.sndbuf = n
        return True

    _pfkey_open_buffers(setrcv, setsnd, so.rcvbuf, so.sndbuf)
    if rcvbuf is not None:
        so.rcvbuf = rcvbuf
    return Kernel(so, if_names=host.if_indextoname, interfaces=host.interfaces(),
                  settle=host.settle_for, now=host.clock.now,
                  close=host.stop if own else (lambda: None))


def _setsockopt_ok(setsockopt: Callable[[int], object]) -> Callable[[int], bool]:
    """A buffer setter for _pfkey_open_buffers: True if setsockopt took the
    size, False if it failed (OSError)."""

    def set_size(n: int) -> bool:
        try:
            setsockopt(n)
            return True
        except OSError:
            return False
    return set_size


def open_daemon(path: str, *, clock: Clock, rcvbuf: Optional[int] = None) -> Kernel:
    from ipsec_accel.pfkey_client import PfkeyClientSocket
    so = PfkeyClientSocket(path)
    try:
        _pfkey_open_buffers(_setsockopt_ok(so.setsockopt_rcvbuf),
                            _setsockopt_ok(so.setsockopt_sndbuf), so.rcvbuf, 0)
        if rcvbuf is not None:
            so.setsockopt_rcvbuf(rcvbuf)
        names = so.if_names()
    except BaseException:
        so.close()
        raise
    return Kernel(so, if_names=names, interfaces={v: k for k, v in names.items()},
                  settle=lambda data: None, now=clock.now, close=lambda: None, overlap=True)


# ---------------------------------------------------------------------------
# setkey.c
# ---------------------------------------------------------------------------

def _hdr(data: bytes) -> tuple[int, int, int, int, int, int, int, int]:
    """The sadb_msg header of what recv() returned (zeros past the end)."""
    head = data[:16]
    if len(head) < 16:
        head += bytes(16 - len(head))
    return _MSGHDR.unpack(head)


def _sa_state(data: bytes) -> Optional[int]:
    """postproc's DEAD filter: pfkey_align + pfkey_check, then the SA
    extension's state.  Errors are ignored as setkey ignores them (the SA
    pointer stays whatever pfkey_align set before the error)."""
    end = min(len(data), _hdr(data)[4] * 8)
    off, seen, sa = 16, set(), None
    while off < end:
        if end - off < 4:
            break
        units, etype = _EXTHDR.unpack_from(data, off)
        elen = units * 8
        if elen < 4 or off + elen > end:
            break
        if etype in seen and etype != _IF_HW_OFFL:
            break
        if etype not in _ALIGN_TYPES:
            break
        seen.add(etype)
        if etype == 1 and off + 16 <= end:
            sa = off
        off += elen
    return None if sa is None else data[sa + 9]


class Setkey:
    """setkey.c's globals and its send/receive/print functions, over one
    PF_KEY socket (a KeySocket or a PfkeyClientSocket: same interface)."""

    def __init__(self, kernel: Kernel, out: TextIO, err: TextIO, *, pid: int,
                 tz: tzinfo, thiszone: int, quirks: frozenset[str] = frozenset(),
                 sleep: Callable[[float], None] = time.sleep,
                 wallclock: Callable[[], float] = time.time,
                 recv_timeout: float = RECV_TIMEOUT) -> None:
        self.k = kernel
        self.so = kernel.so
        self.out = out
        self.err = err
        self.pid = pid & 0xFFFFFFFF
        self.tz = tz
        self.thiszone = thiszone
        self.quirks = quirks
        self.sleep = sleep
        self.wallclock = wallclock
        self.recv_timeout = recv_timeout
        self.f_forever = False
        self.f_all = False
        self.f_verbose = False
        self.f_mode = 0
        self.f_policy = False
        self.f_hexdump = False
        self.f_tflag = 0
        self.f_scope = 0
        self.lineno = 0
        self._echo: list[str] = []

    # -- output helpers ---------------------------------------------------------------

    def printf(self, text: str) -> None:
        self.out.write(text)

    def _stderr(self, line: str) -> None:
        # stdio: what setkey printed before is flushed first on a terminal;
        # flushing here keeps the two streams in program order everywhere.
        self.out.flush()
        self.err.write(line + "\n")
        self.err.flush()

    def perror(self, what: str, exc: BaseException) -> None:
        self._stderr(f"{what}: {_strerror(exc)}")

    def warnx(self, text: str) -> None:
        self._stderr(f"{PROG}: {text}")

    def err_exit(self, status: int, what: str, exc: BaseException) -> NoReturn:
        self._stderr(f"{PROG}: {what}: {_strerror(exc)}")
        raise _Exit(status)

    # -- messages -----------------------------------------------------------------------

    def header(self, mtype: int, satype: int) -> bytes:
        """A bare sadb_msg (sendkeyshort, promisc, pfkey_send_x3): seq 0, our pid."""
        return _MSGHDR.pack(PF_KEY_V2, mtype, 0, satype, 2, 0, 0, self.pid)

    def sendkeyshort(self, mtype: int, satype: int) -> None:
        self.sendkeymsg(self.header(mtype, satype))

    def sendkeymsg(self, buf: bytes,
                   while_waiting: Optional[Callable[[], None]] = None) -> None:
        """setkey.c sendkeymsg: print (-v, -h), send, read replies until one
        has errno 0 and seq 0 (1 s receive timeout), loop once a second with -l.
        ``while_waiting`` goes to the socket's send (see run_script)."""
        if self.f_forever:
            self.printf(shortdump_hdr())
        while True:
            if self.f_verbose or self.f_hexdump:
                self.printf(sendkeymsg_text(buf, verbose=self.f_verbose, hexdump=self.f_hexdump,
                                            quirk_kdebug_offl="kdebug_offl" in self.quirks))
            self.k.settle(buf)
            try:
                if while_waiting is not None and self.k.overlap:
                    self.so.send(buf, while_waiting=while_waiting)
                else:
                    self.so.send(buf)
            except OSError as exc:
                self.perror("send", exc)
                return
            while True:
                try:
                    data = self.so.recv(self.recv_timeout)
                except TimeoutError:
                    self._stderr("recv: " + freebsd_strerror(to_wire(_errno.EAGAIN)))
                    return
                except OSError as exc:
                    self.perror("recv", exc)
                    return
                hdr = _hdr(data)
                if hdr[4] * 8 != len(data):
                    self.warnx("invalid keymsg length")
                    break
                if self.f_verbose:
                    self.printf(kdebug_sadb(data, quirk_kdebug_offl="kdebug_offl"
                                            in self.quirks) + "\n")
                if self.postproc(data) < 0:
                    break
                if not (hdr[2] or hdr[6]):
                    break
            if not self.f_forever:
                return
            self.out.flush()
            self.sleep(1)

    def _verbose_trailing(self) -> None:
        # postproc's -v quirk: kdebug_sadb of the bytes after the message in
        # setkey's receive buffer (stale data in FreeBSD; zeros here).
        if self.f_verbose and "verbose_trailing" in self.quirks:
            self.printf(kdebug_sadb(bytes(16)) + "\n")

    def postproc(self, data: bytes) -> int:
        """setkey.c postproc: print an error, a GET/DUMP SA, or an SPDDUMP policy."""
        _, mtype, errno_, _, _, _, seq, _ = _hdr(data)
        if errno_ != 0:
            self.printf(postproc_errmsg(mtype, errno_, lineno=self.lineno
                                        if self.f_mode == MODE_SCRIPT else None))
            return -1
        if mtype == SADB.GET:
            self.printf(pfkey_sadump(data, now=self.k.now(), tz=self.tz,
                                     if_indextoname=self.k.if_names))
        elif mtype == SADB.DUMP:
            if not self.f_all and _sa_state(data) == _SADB_SASTATE_DEAD:
                return 0
            if self.f_forever:
                self.printf(shortdump(data, now=self.k.now(), if_indextoname=self.k.if_names))
            else:
                self.printf(pfkey_sadump(data, now=self.k.now(), tz=self.tz,
                                         if_indextoname=self.k.if_names))
            self._verbose_trailing()
        elif mtype == SADB.X_SPDDUMP:
            self.printf(pfkey_spdump(data, tz=self.tz, if_indextoname=self.k.if_names))
            if seq != 0:
                self._verbose_trailing()
        return 0

    # -- promiscuous mode -------------------------------------------------------------------

    def promisc(self) -> int:
        """setkey -x: X_PROMISC on, then print every message forever."""
        try:
            self.so.send(self.header(SADB.X_PROMISC, 1))
        except OSError as exc:
            self.err_exit(1, "send", exc)
        while True:
            try:
                data = self.so.recv(None)
            except OSError as exc:
                self.err_exit(1, "recv", exc)
            if len(data) < 16:
                # FreeBSD peeks a short record forever; the model drops it.
                continue
            claimed = _hdr(data)[4] * 8
            if claimed < len(data):
                data = data[:claimed]       # recv() of the length the header claims
            now = self.wallclock()
            sec = int(now)
            usec = int(round((now - sec) * 1_000_000)) % 1_000_000
            self.printf(promisc_text(data, sec=sec, usec=usec, tflag=self.f_tflag,
                                     hexdump=self.f_hexdump, thiszone=self.thiszone,
                                     quirk_kdebug_offl="kdebug_offl" in self.quirks))
            self.out.flush()

    # -- script mode ------------------------------------------------------------------------

    def get_supported(self) -> Supported:
        """pfkey_send_register(UNSPEC) + pfkey_recv_register: the algorithm
        lists, from the first REGISTER reply carrying our pid (no timeout:
        SO_RCVTIMEO is not set yet)."""
        try:
            self.so.send(self.header(SADB.REGISTER, 0))
            while True:
                data = self.so.recv(None)
                hdr = _hdr(data)
                if hdr[4] * 8 != len(data):
                    raise _LibipsecError(ipsec_strerror(EIPSEC.SYSTEM_ERROR))
                if hdr[1] == SADB.REGISTER and hdr[7] == self.pid:
                    break
        except OSError as exc:
            raise _LibipsecError(_strerror(exc)) from None
        try:
            return Supported.from_register(decode(data, strict=False))
        except Exception:   # noqa: BLE001 -- pfkey_set_supported's format check
            raise _LibipsecError(ipsec_strerror(EIPSEC.INVAL_SATYPE)) from None

    def policy_echo(self, text: str) -> None:
        """libipsec's scanner ECHO: held with the statement being parsed."""
        self._echo.append(text)

    def run_script(self, script: bytes, parser: SetkeyParser) -> int:
        """parse(): each statement's messages go out as its ``;`` is read, so
        statements before a failing one stay applied.

        While the kernel works on a statement's last message, the next
        statement is parsed (over the daemon socket that overlaps the two
        processes); its output -- policy-scanner echo, warnings, a parse error
        -- is held until the current statement's replies are printed, so what
        is printed, sent and applied is exactly what FreeBSD's one-at-a-time
        parse gives."""
        it = parser.parse(script)

        def pull() -> tuple[Optional[Statement], str, Optional[SetkeyParseError]]:
            try:
                stmt: Optional[Statement] = next(it)
                exc = None
            except StopIteration:
                stmt, exc = None, None
            except SetkeyParseError as e:
                stmt, exc = None, e
            echo = "".join(self._echo)
            self._echo.clear()
            return stmt, echo, exc

        cur = pull()
        while True:
            stmt, echo, exc = cur
            if echo:
                self.printf(echo)
            if exc is not None:
                for w in exc.warnings:
                    self.printf(w.text + "\n")
                pe = exc.policy_error
                if pe is not None and pe.diagnostic:
                    self._stderr(pe.diagnostic)
                for line in exc.lines:
                    self.printf(line + "\n")
                return 1
            if stmt is None:
                return 0
            for w in stmt.warnings:
                self.printf(w.text + "\n")
            self.lineno = stmt.lineno
            ahead: list[tuple[Optional[Statement], str, Optional[SetkeyParseError]]] = []

            def prefetch() -> None:
                if not ahead:
                    ahead.append(pull())

            last = len(stmt.messages) - 1
            for i, m in enumerate(stmt.messages):
                self.sendkeymsg(m.encode(), while_waiting=prefetch if i == last else None)
            prefetch()
            cur = ahead[0]

class _LibipsecError(Exception):
    """get_supported() < 0: errx(-1, "%s", ipsec_strerror())."""


def _strerror(exc: BaseException) -> str:
    """FreeBSD's strerror text for an exception's errno."""
    code = getattr(exc, "wire_errno", None)
    if not isinstance(code, int):
        host = getattr(exc, "errno", None)
        if isinstance(exc, TimeoutError) and not host:
            host = _errno.ETIMEDOUT
        code = to_wire(host) if isinstance(host, int) and host else to_wire(_errno.EIO)
    return freebsd_strerror(code)


# ---------------------------------------------------------------------------
# main()
# ---------------------------------------------------------------------------

class _ModelOptions(NamedTuple):
    socket: Optional[str]
    embedded: bool
    topology: Optional[str]
    args: list[str]
    error: Optional[str]


def _model_options(argv: Sequence[str]) -> _ModelOptions:
    """Take the model's long options out of argv (before a ``--``)."""
    sock: Optional[str] = None
    embedded = False
    topology: Optional[str] = None
    rest: list[str] = []
    i = 0
    while i < len(argv):
        a = argv[i]
        if a == "--":
            rest.extend(argv[i:])
            break
        name, eq, value = a.partition("=")
        if name in ("--socket", "--topology"):
            if not eq:
                if i + 1 >= len(argv):
                    return _ModelOptions(None, False, None, [],
                                         f"{PROG}: option {name} requires an argument")
                i += 1
                value = argv[i]
            if name == "--socket":
                sock, embedded = value, False
            else:
                topology = value
        elif a == "--embedded":
            sock, embedded = None, True
        else:
            rest.append(a)
        i += 1
    return _ModelOptions(sock, embedded, topology, rest, None)


def _text_stream(stream: Optional[TextIO],
                 fallback: TextIO) -> tuple[TextIO, Optional[io.TextIOWrapper]]:
    """Our output: bytes as FreeBSD writes them (latin-1 for non-ASCII).
    Returns the stream and, when it is a wrapper of ours, the wrapper again
    (to detach)."""
    if stream is not None:
        return stream, None
    buf = getattr(fallback, "buffer", None)
    if buf is None:
        return fallback, None
    fallback.flush()
    w = io.TextIOWrapper(buf, encoding="latin-1", errors="replace", newline="\n",
                         write_through=False)
    return w, w


def main(argv: Optional[Sequence[str]] = None, *, stdin: Optional[BinaryIO] = None,
         stdout: Optional[TextIO] = None, stderr: Optional[TextIO] = None,
         environ: Optional[Mapping[str, str]] = None, host: Any = None,
         pid: Optional[int] = None, clock: Optional[Clock] = None,
         tz: Optional[tzinfo] = None, sleep: Callable[[float], None] = time.sleep,
         wallclock: Callable[[], float] = time.time, rcvbuf: Optional[int] = None,
         recv_timeout: float = RECV_TIMEOUT, resolver: Optional[Resolver] = None) -> int:
    """setkey's main(); returns the exit status.

    ``argv`` excludes the program name (default ``sys.argv[1:]``).  The
    keywords are for tests and embedding: ``host`` (use this host, embedded
    mode, not stopped at exit), ``pid`` (getpid()), ``clock`` (time(0) for
    dumps), ``tz`` (the local zone), ``sleep`` (-l's sleep(1)), ``wallclock``
    (gettimeofday for -x), ``rcvbuf`` (SO_RCVBUF after pfkey_open),
    ``recv_timeout`` (SO_RCVTIMEO), ``resolver`` (getaddrinfo for the
    grammar; default: numeric addresses, the system's resolver for names and
    the kernel host's interface names for ``%scope``).
    """
    args = list(sys.argv[1:] if argv is None else argv)
    env = os.environ if environ is None else environ
    out, wrapper = _text_stream(stdout, sys.stdout)
    err = stderr if stderr is not None else sys.stderr
    try:
        return _main(args, env, out, err, stdin, host, pid, clock, tz, sleep, wallclock,
                     rcvbuf, recv_timeout, resolver)
    except _Exit as exc:
        return exc.status
    except KeyboardInterrupt:
        return 130                   # killed by SIGINT, as -x / -l end
    except BrokenPipeError:
        # setkey ... | head: FreeBSD dies of SIGPIPE, silently.  Point stdout
        # at /dev/null so the interpreter's final flush stays quiet too.
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            os.close(devnull)
        except (OSError, ValueError):
            pass
        return 141
    finally:
        try:
            out.flush()
        except (OSError, ValueError):
            pass
        if wrapper is not None:
            try:
                wrapper.detach()        # leave sys.stdout's buffer open
            except (OSError, ValueError):
                pass


def _main(args: list[str], env: Mapping[str, str], out: TextIO, err: TextIO,
          stdin: Optional[BinaryIO], host: Any, pid: Optional[int], clock: Optional[Clock],
          tz: Optional[tzinfo], sleep: Callable[[float], None], wallclock: Callable[[], float],
          rcvbuf: Optional[int], recv_timeout: float, resolver: Optional[Resolver]) -> int:
    def stderr_line(line: str) -> None:
        out.flush()
        err.write(line + "\n")
        err.flush()

    def usage() -> int:
        out.write(USAGE)
        return 1

    mo = _model_options(args)
    if mo.error:
        stderr_line(mo.error)
        return usage()
    quirks = frozenset(q.strip() for q in env.get(QUIRKS_ENV, "").split(",") if q.strip())
    if quirks - QUIRKS:
        stderr_line(f"{PROG}: unknown {QUIRKS_ENV} value(s): {', '.join(sorted(quirks - QUIRKS))}"
                    f" (known: {', '.join(sorted(QUIRKS))})")
        return 1
    args = mo.args
    if not args:
        return usage()

    tz = tz if tz is not None else local_tz(env)
    the_clock: Clock = clock if clock is not None else (host.clock if host is not None
                                                        else SystemClock())
    thiszone = gmt2local(int(wallclock()), tz)

    # -- options (side effects in order, as setkey.c's switch) -------------------------
    f: dict[str, Any] = {"mode": 0, "forever": False, "all": False, "hexdump": False,
                         "tflag": 0, "policy": False, "scope": 0, "verbose": False}
    script: Any = None               # None = stdin; bytes; or ("dir", path)
    from_stdin = True
    for c, optarg in getopt(args, OPTSTRING, stderr_line):
        if c == "c":
            f["mode"] = MODE_SCRIPT
            script, from_stdin = None, True
        elif c in ("e", "f"):
            if not from_stdin:
                stderr_line(f"{PROG}: only one -f/-e option is accepted: {freebsd_strerror(0)}")
                return 255
            f["mode"] = MODE_SCRIPT
            from_stdin = False
            assert optarg is not None
            if c == "e":
                script = os.fsencode(optarg)
                if not script:
                    # setkey.c hands optarg to fmemopen(3) with its strlen;
                    # FreeBSD's fmemopen refuses a size of 0 with EINVAL
                    # (lib/libc/stdio/fmemopen.c), and setkey err()s out.
                    stderr_line(f"{PROG}: fmemopen: {freebsd_strerror(_errno.EINVAL)}")
                    return 255
            elif os.path.isdir(optarg):
                script = ("dir", optarg)   # fopen(dir, "r") succeeds; reading fails
            else:
                try:
                    with open(optarg, "rb") as fp:
                        script = fp.read()
                except OSError as exc:
                    stderr_line(f"{PROG}: fopen: {_strerror(exc)}")
                    return 255
        elif c == "D":
            f["mode"] = MODE_CMDDUMP
        elif c == "F":
            f["mode"] = MODE_CMDFLUSH
        elif c == "a":
            f["all"] = True
        elif c == "l":
            f["forever"] = True
        elif c == "h":
            f["hexdump"] = True
        elif c == "x":
            f["mode"] = MODE_PROMISC
            f["tflag"] += 1
        elif c == "P":
            f["policy"] = True
        elif c == "g":
            f["scope"] |= IPSEC_POLICYSCOPE_GLOBAL
        elif c == "t":
            f["scope"] |= IPSEC_POLICYSCOPE_IFNET
        elif c == "v":
            f["verbose"] = True
        else:                        # '?', and 'd' which nobody handles
            return usage()

    # -- pfkey_open ----------------------------------------------------------------------
    sock_path = None if (mo.embedded or host is not None) else (mo.socket or env.get(SOCKET_ENV)
                                                                or None)
    try:
        if sock_path:
            kernel = open_daemon(sock_path, clock=the_clock, rcvbuf=rcvbuf)
        elif host is not None:
            kernel = open_embedded(host, own=False, rcvbuf=rcvbuf)
        else:
            kernel = open_embedded(_embedded_host(mo.topology or env.get(TOPOLOGY_ENV) or None),
                                   own=True, rcvbuf=rcvbuf)
    except OSError as exc:
        where = sock_path or getattr(exc, "filename", None)
        stderr_line(f"pfkey_open: {where + ': ' if where else ''}{_strerror(exc)}")
        return 1
    except Exception as exc:   # noqa: BLE001 -- a topology file that does not load
        stderr_line(f"pfkey_open: {exc}")
        return 1

    sk = Setkey(kernel, out, err, pid=os.getpid() if pid is None else pid, tz=tz,
                thiszone=thiszone, quirks=quirks, sleep=sleep, wallclock=wallclock,
                recv_timeout=recv_timeout)
    sk.f_mode, sk.f_forever, sk.f_all = f["mode"], f["forever"], f["all"]
    sk.f_hexdump, sk.f_tflag, sk.f_policy = f["hexdump"], f["tflag"], f["policy"]
    sk.f_scope, sk.f_verbose = f["scope"], f["verbose"]
    try:
        if sk.f_mode == MODE_CMDDUMP:
            sk.sendkeyshort(SADB.X_SPDDUMP if sk.f_policy else SADB.DUMP,
                            sk.f_scope if sk.f_policy else 0)
        elif sk.f_mode == MODE_CMDFLUSH:
            sk.sendkeyshort(SADB.X_SPDFLUSH if sk.f_policy else SADB.FLUSH, 0)
        elif sk.f_mode == MODE_SCRIPT:
            try:
                supported = sk.get_supported()
            except _LibipsecError as exc:
                stderr_line(f"{PROG}: {exc}")
                return 255
            if isinstance(script, tuple):
                # flex's YY_INPUT: fread() of a directory fails.
                stderr_line("input in flex scanner failed")
                return 2
            if script is None:
                src = stdin if stdin is not None else sys.stdin.buffer
                script = src.read()
            parser = SetkeyParser(
                pid=sk.pid, supported=supported,
                resolver=resolver if resolver is not None else
                Resolver(system=True, interfaces=kernel.interfaces),
                policy_echo=sk.policy_echo, hwif_add_quirk="hwif_add" in quirks,
                hwif_spd_quirk="hwif_spd" in quirks)
            if sk.run_script(script, parser):
                return 1
        elif sk.f_mode == MODE_PROMISC:
            return sk.promisc()
        else:
            return usage()
        return 0
    finally:
        out.flush()
        kernel.close()


if __name__ == "__main__":
    from ipsec_accel.host import tune_gc
    tune_gc()
    sys.exit(main())
