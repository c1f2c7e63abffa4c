"""The model daemon (ipsec_accel.server) and its client (ipsec_accel.pfkey_client),
end to end through real processes on a temporary socket.

What is modelled (keysock.c; pfkey_setkey_reference.md §C): every connection
is one PF_KEY socket, so ALL / REGISTERED routing and promiscuous copies cross
processes; key_attach refuses unprivileged peers (EPERM); send(2) failures
reach the sender (the RESULT control packet); nothing a client does stops the
daemon.  Every wait here is bounded.
"""

from __future__ import annotations

import errno
import os
import select
import signal
import socket
import stat
import struct
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Iterator, Optional

import pytest

from ipsec_accel.host import Host
from ipsec_accel.pfkey_client import (
    CTRL_HELLO, CTRL_RESULT, PfkeyClientSocket, ctrl_packet, is_ctrl, parse_ctrl,
)
from ipsec_accel.server import SB_MAX_ADJ, PfkeyServer
from ipsec_accel.taskqueue import TqMode
from pfkey import FakeClock, PfkeyError, decode
from pfkey.errors import FREEBSD_ERRNO
from pfkey.key_testing import add_msg, hdr_msg
from pfkey.pfkeyv2 import SADB, SADB_SATYPE
from thread_helpers import run_threads

ROOT = Path(__file__).resolve().parents[1]
W = FREEBSD_ERRNO
TIMEOUT = 10.0
KEY = "0x00112233445566778899aabbccddeeff"


# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------

class Daemon:
    """``python tools/pfkeyd.py --socket PATH`` as a child process."""

    def __init__(self, path: Path, *extra: str, module: bool = False) -> None:
        self.path = path
        cmd = [sys.executable, "-m", "ipsec_accel.server"] if module else \
            [sys.executable, "tools/pfkeyd.py"]
        self.proc = subprocess.Popen([*cmd, "--socket", str(path), *extra], cwd=ROOT,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.banner = self.readline(TIMEOUT)

    def readline(self, timeout: float) -> str:
        assert self.proc.stdout is not None
        r, _, _ = select.select([self.proc.stdout], [], [], timeout)
        if not r:
            raise TimeoutError("daemon printed nothing")
        return self.proc.stdout.readline()

    def stop(self, sig: int = signal.SIGTERM) -> tuple[int, str, str]:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        out, err = self.proc.communicate(timeout=TIMEOUT)
        return self.proc.returncode, out, err

    def alive(self) -> bool:
        return self.proc.poll() is None


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    d = Daemon(tmp_path_factory.mktemp("pfkeyd") / "pfkeyd.sock")
    yield d
    d.stop()


@pytest.fixture
def clean(daemon: Daemon) -> Iterator[Daemon]:
    """The shared daemon with empty SAD and SPD before and after the test."""
    def flush() -> None:
        with PfkeyClientSocket(daemon.path) as so:
            for mtype in (SADB.FLUSH, SADB.X_SPDFLUSH):
                so.send(hdr_msg(mtype).encode())
                so.recv(TIMEOUT)
    flush()
    yield daemon
    flush()
    assert daemon.alive()


def setkey(*args: str, stdin: Optional[str] = None, env: Optional[dict[str, str]] = None,
           timeout: float = 30) -> subprocess.CompletedProcess[str]:
    e = dict(os.environ)
    e.pop("PFKEY_SOCKET", None)
    e["TZ"] = "UTC"
    e.update(env or {})
    return subprocess.run([sys.executable, "tools/setkey.py", *args], cwd=ROOT, env=e,
                          input=stdin, capture_output=True, text=True, timeout=timeout)


def raw_connect(path: Path) -> socket.socket:
    """A bare SOCK_SEQPACKET connection; returns after the HELLO."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    s.settimeout(TIMEOUT)
    s.connect(str(path))
    kind, value, _ = parse_ctrl(s.recv(4096))
    assert (kind, value) == (CTRL_HELLO, 0)
    return s


def raw_exchange(s: socket.socket, packet: bytes) -> tuple[int, list[bytes]]:
    """Send one packet; (RESULT value, PF_KEY messages that came before it)."""
    s.send(packet)
    msgs = []
    while True:
        data = s.recv(1 << 20)
        if is_ctrl(data):
            kind, value, _ = parse_ctrl(data)
            assert kind == CTRL_RESULT
            return value, msgs
        msgs.append(data)


def add(spi: int, dst: str = "10.0.0.2") -> bytes:
    return add_msg(spi, dst=dst).encode()


# ---------------------------------------------------------------------------
# startup, socket file, shutdown
# ---------------------------------------------------------------------------

def test_startup_line_and_socket_mode(daemon: Daemon) -> None:
    """One clear line on stdout; the socket file is a socket, mode 0600, ours."""
    assert daemon.banner.startswith(f"pfkeyd: serving PF_KEY v2 on {daemon.path} "
                                    "(SOCK_SEQPACKET, mode 0600, pid ")
    assert "interfaces:" in daemon.banner and "offload:" in daemon.banner
    st = os.lstat(daemon.path)
    assert stat.S_ISSOCK(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o600
    assert st.st_uid == os.geteuid()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_shuts_down_cleanly(tmp_path: Path, sig: int) -> None:
    """SIGTERM / SIGINT: connections closed, socket file removed, exit 0."""
    d = Daemon(tmp_path / "s.sock", module=True)
    client = PfkeyClientSocket(d.path)
    rc, out, err = d.stop(sig)
    assert rc == 0 and out.strip().endswith("pfkeyd: stopped") and "Traceback" not in err
    assert not d.path.exists()
    with pytest.raises(ConnectionResetError):
        client.recv(TIMEOUT)
    client.close()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_to_any_thread_shuts_down(tmp_path: Path, sig: int) -> None:
    """A process-directed signal may be delivered to any thread that does not
    block it; the daemon has several (taskqueue, NIC counter polls).  Sent to
    a non-main thread, it must still stop the socket loop, which sleeps in
    select() with no timeout (signal.set_wakeup_fd wakes it)."""
    import ctypes
    d = Daemon(tmp_path / "t.sock")
    libc = ctypes.CDLL(None, use_errno=True)
    others = [int(t) for t in os.listdir(f"/proc/{d.proc.pid}/task") if int(t) != d.proc.pid]
    assert others, "the daemon has worker threads"
    assert libc.tgkill(d.proc.pid, others[0], int(sig)) == 0, ctypes.get_errno()
    try:
        out, err = d.proc.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        d.proc.kill()
        d.proc.communicate()
        pytest.fail("the daemon ignored a signal delivered to a worker thread")
    assert d.proc.returncode == 0 and out.strip().endswith("pfkeyd: stopped"), (out, err)
    assert not d.path.exists()


def test_monitor_exits_when_the_daemon_goes(tmp_path: Path) -> None:
    """setkey -x: a recv error is ``err(1, "recv")`` -> one line, exit 1."""
    d = Daemon(tmp_path / "m.sock")
    env = dict(os.environ, PFKEY_SOCKET=str(d.path))
    mon = subprocess.Popen([sys.executable, "tools/setkey.py", "-xx"], cwd=ROOT, env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert mon.stdout is not None
        r, _, _ = select.select([mon.stdout], [], [], TIMEOUT)
        assert r and mon.stdout.readline().rstrip().replace(".", "").isdigit()  # -xx: sec.usec
    finally:
        d.stop()
    out, err = mon.communicate(timeout=TIMEOUT)
    assert mon.returncode == 1 and err == "setkey: recv: Connection reset by peer\n"


def test_restart_gives_a_fresh_kernel(tmp_path: Path) -> None:
    """Daemon restart on the same path: the old state is gone, clients reconnect."""
    path = tmp_path / "r.sock"
    d = Daemon(path)
    assert setkey("--socket", str(path), "-e",
                  f"add 10.0.0.1 10.0.0.2 esp 0x1000 -E aes-cbc {KEY};").returncode == 0
    assert "spi=4096(0x00001000)" in setkey("--socket", str(path), "-D").stdout
    assert d.stop()[0] == 0
    d2 = Daemon(path)
    try:
        r = setkey("--socket", str(path), "-D")
        assert (r.returncode, r.stdout, r.stderr) == (0, "No SAD entries.\n", "")
    finally:
        d2.stop()


def test_stale_socket_after_kill_is_replaced(tmp_path: Path) -> None:
    """A daemon killed with SIGKILL leaves its file; the next one replaces it."""
    path = tmp_path / "k.sock"
    d = Daemon(path)
    d.stop(signal.SIGKILL)
    assert path.exists()
    d2 = Daemon(path)
    try:
        assert d2.banner.startswith("pfkeyd: serving")
        assert setkey("--socket", str(path), "-D").stdout == "No SAD entries.\n"
    finally:
        d2.stop()


def test_second_daemon_on_a_live_socket_is_refused(daemon: Daemon) -> None:
    p = subprocess.run([sys.executable, "tools/pfkeyd.py", "--socket", str(daemon.path)],
                       cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert p.returncode == 1 and p.stdout == ""
    assert p.stderr == f"pfkeyd: {daemon.path}: a daemon is already serving {daemon.path}\n"
    assert daemon.alive() and daemon.path.exists()


def test_not_a_socket_is_never_removed(tmp_path: Path) -> None:
    f = tmp_path / "file"
    f.write_text("keep me")
    p = subprocess.run([sys.executable, "-m", "ipsec_accel.server", "--socket", str(f)],
                       cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert p.returncode == 1 and "is not a socket" in p.stderr
    assert f.read_text() == "keep me"


# ---------------------------------------------------------------------------
# several clients: routing across processes
# ---------------------------------------------------------------------------

def test_two_clients_all_routing(clean: Daemon) -> None:
    """key_add's reply goes to ALL sockets, keys stripped; a dump from the
    other client sees the SA (with its keys: DUMP carries them)."""
    with PfkeyClientSocket(clean.path) as a, PfkeyClientSocket(clean.path) as b:
        a.send(add(0x1000))
        mine = decode(a.recv(TIMEOUT))
        theirs = decode(b.recv(TIMEOUT))
        assert mine == theirs and mine.type == SADB.ADD and mine.errno == 0
        assert mine.key_auth is None and mine.key_encrypt is None
        b.send(hdr_msg(SADB.DUMP).encode())
        dump = decode(b.recv(TIMEOUT))
        assert dump.type == SADB.DUMP and dump.sa is not None and dump.sa.spi == 0x1000
        assert dump.key_encrypt is not None
        with pytest.raises(BlockingIOError):
            a.recv(0)                        # DUMP replies are ONE: not for a


def test_registered_routing_across_clients(clean: Daemon) -> None:
    """key_register: the REGISTER reply goes to every registered socket and
    to the sender; closing a socket drops its registration (key_detach)."""
    esp = int(SADB_SATYPE.ESP)
    with PfkeyClientSocket(clean.path) as a, PfkeyClientSocket(clean.path) as c:
        a.send(hdr_msg(SADB.REGISTER, esp).encode())
        assert decode(a.recv(TIMEOUT)).type == SADB.REGISTER
        with PfkeyClientSocket(clean.path) as b:
            b.send(hdr_msg(SADB.REGISTER, esp, pid=77).encode())
            assert decode(b.recv(TIMEOUT)).pid == 77
            got = decode(a.recv(TIMEOUT))
            assert got.type == SADB.REGISTER and got.pid == 77
            with pytest.raises(TimeoutError):
                c.recv(0.2)                  # c never registered
            # A second REGISTER of the same socket and satype: EEXIST.
            b.send(hdr_msg(SADB.REGISTER, esp, pid=77).encode())
            assert decode(b.recv(TIMEOUT)).errno == W["EEXIST"]


def test_setkey_processes_share_the_daemon(clean: Daemon) -> None:
    """setkey -f in one process, setkey -D / -DP (PFKEY_SOCKET) in others."""
    script = (f"add 10.0.0.1 10.0.0.2 esp 0x1000 -m transport -E aes-cbc {KEY};\n"
              f"add 10.0.0.1 10.0.0.2 esp 0x1000 -E aes-cbc {KEY};\n"
              "spdadd 10.0.0.1 10.0.0.2 any -P out ipsec esp/transport//require;\n")
    r = setkey("--socket", str(clean.path), "-c", stdin=script)
    assert (r.returncode, r.stdout, r.stderr) == (0, "The result of line 2: File exists.\n", "")
    env = {"PFKEY_SOCKET": str(clean.path)}
    d = setkey("-D", env=env)
    assert d.returncode == 0 and d.stdout.startswith(
        "10.0.0.1 10.0.0.2\n\tesp mode=transport spi=4096(0x00001000) reqid=0(0x00000000)\n")
    p = setkey("-DP", env=env)
    assert p.stdout.startswith("10.0.0.1[any] 10.0.0.2[any] any\n\tout ipsec\n"
                               "\tesp/transport//require\n\tspid=")
    # --embedded overrides the variable: a fresh kernel
    assert setkey("--embedded", "-D", env=env).stdout == "No SAD entries.\n"


def test_monitor_sees_what_another_process_does(clean: Daemon) -> None:
    """setkey -x in one process prints (kdebug_sadb) the messages caused by
    another: its own X_PROMISC echo first, then each ADD twice -- the
    promiscuous copy and the ALL copy (keysock.c key_sendup_mbuf)."""
    env = dict(os.environ, PFKEY_SOCKET=str(clean.path), TZ="UTC")
    mon = subprocess.Popen([sys.executable, "tools/setkey.py", "-x"], cwd=ROOT, env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert mon.stdout is not None
        fd = mon.stdout.fileno()
        buf = bytearray()

        def read_until(needle: str, count: int = 1) -> None:
            # os.read on the pipe: select() knows nothing of a Python buffer.
            deadline = time.monotonic() + TIMEOUT
            while buf.decode("latin-1").count(needle) < count:
                left = deadline - time.monotonic()
                r, _, _ = select.select([fd], [], [], max(0.0, left))
                assert r, f"monitor did not print {needle!r}: {buf.decode('latin-1')}"
                chunk = os.read(fd, 65536)
                assert chunk, "monitor exited"
                buf.extend(chunk)

        read_until("type=11(X_PROMISC)")
        r = setkey("--socket", str(clean.path), "-e",
                   f"add 10.0.0.1 10.0.0.2 esp 0x1234 -E aes-cbc {KEY};")
        assert r.returncode == 0
        read_until("type=3(ADD)", 2)
        text = buf.decode("latin-1")
        assert "type=7(REGISTER)" in text               # setkey's REGISTER reply
        assert "sadb_sa{ spi=4660 replay=0 state=0" in text
        assert "sadb_ext{ len=" in text and "KEY_ENCRYPT" not in text   # keys stripped
    finally:
        mon.send_signal(signal.SIGTERM)
        mon.communicate(timeout=TIMEOUT)


def test_many_clients_at_once(clean: Daemon) -> None:
    """Twelve clients in threads, each adding its own SAs concurrently."""
    errors: list[BaseException] = []

    def worker(n: int) -> None:
        try:
            with PfkeyClientSocket(clean.path, recvspace=1 << 20) as so:
                for i in range(25):
                    so.send(add(0x10000 + n * 100 + i, dst=f"10.1.{n}.1"))
                    while True:
                        m = decode(so.recv(TIMEOUT))
                        if m.pid == 100 and m.sa is not None and \
                                m.sa.spi == 0x10000 + n * 100 + i:
                            assert m.errno == 0
                            break
        except BaseException as exc:   # noqa: BLE001
            errors.append(exc)

    run_threads(worker, [(n,) for n in range(12)], TIMEOUT * 3)
    assert not errors, errors
    r = setkey("--socket", str(clean.path), "-D")
    assert r.stdout.count("sadb_seq=") == 300


# ---------------------------------------------------------------------------
# privilege
# ---------------------------------------------------------------------------

def _child_connect(path: Path, uid: int) -> int:
    """fork; the child drops to ``uid`` and connects; returns the errno it saw
    (0 = accepted) via its exit status."""
    pid = os.fork()
    if pid == 0:   # pragma: no cover -- child
        code = 99
        try:
            os.setgroups([])
            os.setgid(uid)
            os.setuid(uid)
            s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
            s.settimeout(5)
            try:
                s.connect(str(path))
                data = s.recv(4096)
                code = parse_ctrl(data)[1] if is_ctrl(data) else 98
            except OSError as exc:
                code = 100 + (exc.errno or 0)
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to setuid() a child")
def test_unprivileged_peer_is_refused() -> None:
    """key_attach needs PRIV_NET_RAW: uid 65534 cannot even connect to the
    0600 socket (EACCES); with the file opened up, SO_PEERCRED refuses it
    (HELLO EPERM, the FreeBSD errno 1) and the daemon goes on."""
    import shutil
    import tempfile
    top = Path(tempfile.mkdtemp(prefix="pfkeyd-perm-", dir="/tmp"))
    os.chmod(top, 0o755)                 # let uid 65534 reach the socket file
    d = Daemon(top / "p.sock")
    try:
        assert _child_connect(d.path, 65534) == 100 + errno.EACCES
        os.chmod(d.path, 0o666)
        assert _child_connect(d.path, 65534) == W["EPERM"]
        assert d.alive()
        assert setkey("--socket", str(d.path), "-D").stdout == "No SAD entries.\n"
    finally:
        d.stop()
        shutil.rmtree(top, ignore_errors=True)


@pytest.fixture
def inproc(tmp_path: Path) -> Iterator[Any]:
    """An in-process daemon whose allowed uids the test chooses."""
    servers: list[PfkeyServer] = []

    def make(allowed: Optional[set[int]] = None) -> PfkeyServer:
        h = Host(clock=FakeClock(), offload=False, taskqueue_mode=TqMode.INLINE)
        srv = PfkeyServer(h, tmp_path / f"in{len(servers)}.sock", allowed_uids=allowed,
                          own_host=True).start()
        servers.append(srv)
        return srv

    yield make
    for srv in servers:
        srv.close()
        assert srv.wait(TIMEOUT)


def test_allowed_uids_are_injectable(inproc: Any) -> None:
    """A peer uid outside the allowed set: socket() fails with EPERM, and
    setkey says so in one line (pfkey_open, exit 1)."""
    srv = inproc({12345})
    with pytest.raises(PermissionError) as ei:
        PfkeyClientSocket(srv.path)
    assert ei.value.errno == errno.EPERM
    r = setkey("--socket", str(srv.path), "-D")
    assert (r.returncode, r.stdout) == (1, "")
    assert r.stderr == f"pfkey_open: {srv.path}: Operation not permitted\n"
    assert srv.stats["refused"] == 2 and srv.clients == 0


def test_client_refuses_an_untrusted_daemon(inproc: Any) -> None:
    """The client checks the daemon too: its uid must be root or ours."""
    srv = inproc()
    with pytest.raises(PermissionError):
        PfkeyClientSocket(srv.path, trusted_uids={12345})
    with PfkeyClientSocket(srv.path, trusted_uids={12345}, check_peer=False):
        pass


# ---------------------------------------------------------------------------
# garbage, truncation, disconnects: the errno path, never a dead daemon
# ---------------------------------------------------------------------------

def test_garbage_and_truncated_messages(clean: Daemon) -> None:
    """keysock.c key_output / key.c: send() fails with EINVAL for a message
    shorter than a header or whose length field lies, ENOBUFS above 2048
    bytes, EMSGSIZE above the send buffer; a bad version is answered by an
    echo with errno EINVAL (key_senderror) and send() succeeds."""
    s = raw_connect(clean.path)
    try:
        assert raw_exchange(s, b"garbage") == (-W["EINVAL"], [])
        assert raw_exchange(s, b"x" * 12) == (-W["EINVAL"], [])          # 4 mod 8, no magic
        assert raw_exchange(s, ctrl_packet(999)) == (-W["EINVAL"], [])   # unknown control
        hdr = struct.pack("<BBBBHHII", 2, SADB.DUMP, 0, 0, 4, 0, 0, 1)  # claims 32 bytes
        assert raw_exchange(s, hdr) == (-W["EINVAL"], [])
        big = struct.pack("<BBBBHHII", 2, SADB.DUMP, 0, 0, 4096 // 8, 0, 0, 1) + bytes(4080)
        assert raw_exchange(s, big) == (-W["ENOBUFS"], [])
        huge = struct.pack("<BBBBHHII", 2, SADB.DUMP, 0, 0, 9000 // 8, 0, 0, 1) + bytes(8984)
        assert raw_exchange(s, huge) == (-W["EMSGSIZE"], [])
        v3 = struct.pack("<BBBBHHII", 3, SADB.FLUSH, 0, 0, 2, 0, 0, 1)
        value, msgs = raw_exchange(s, v3)
        assert value == 16 and msgs == [v3[:2] + bytes([W["EINVAL"]]) + v3[3:]]
        half = add(0x2000)[:40]
        assert raw_exchange(s, half) == (-W["EINVAL"], [])
    finally:
        s.close()
    assert clean.alive()


def test_client_api_errors(clean: Daemon) -> None:
    """PfkeyClientSocket raises what KeySocket raises: PfkeyError with the
    host errno for a failed send, BlockingIOError / TimeoutError on recv,
    EBADF after close."""
    so = PfkeyClientSocket(clean.path)
    with pytest.raises(PfkeyError) as ei:
        so.send(b"\x02\x0a\x00\x00\x04\x00\x00\x00" + bytes(8))
    assert ei.value.errno == errno.EINVAL and ei.value.wire_errno == W["EINVAL"]
    with pytest.raises(BlockingIOError):
        so.recv(0)
    with pytest.raises(TimeoutError):
        so.recv(0.05)
    assert so.recv_all() == [] and so.pending() == 0
    # libipsec pfkey_open: 2 MiB is above sb_max_adj (ENOBUFS), 1 MiB works
    with pytest.raises(OSError) as ei2:
        so.setsockopt_rcvbuf(2 * 1024 * 1024)
    assert ei2.value.errno == errno.ENOBUFS and SB_MAX_ADJ < 2 * 1024 * 1024
    assert so.setsockopt_rcvbuf(1024 * 1024) == 1024 * 1024
    so.close()
    with pytest.raises(OSError) as ei3:
        so.send(add(0x1000))
    assert ei3.value.errno == errno.EBADF


def test_disconnects_at_any_point(clean: Daemon) -> None:
    """A client that goes away before its HELLO, right after sending, or
    half way (shutdown) only loses its own socket."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    s.connect(str(clean.path))
    s.close()                                          # before reading HELLO
    s = raw_connect(clean.path)
    s.send(add(0x3000))
    s.close()                                          # before the reply
    s = raw_connect(clean.path)
    s.send(add(0x3001)[:30])
    s.shutdown(socket.SHUT_WR)                         # mid-conversation
    # The ADD of the previous client is broadcast to ALL sockets (key_add's
    # KEY_SENDUP_ALL) and may reach this one first: skip PF_KEY messages
    # (multiples of 8 bytes) until the control packet (4 mod 8).
    pkt = s.recv(4096)
    while len(pkt) % 8 == 0 and pkt:
        pkt = s.recv(4096)
    assert parse_ctrl(pkt)[1] == -W["EINVAL"]
    assert s.recv(4096) == b""                         # daemon closed on EOF
    s.close()
    assert clean.alive()
    r = setkey("--socket", str(clean.path), "-D")
    assert "spi=12288(0x00003000)" in r.stdout        # the ADD was applied
    assert "0x00003001" not in r.stdout


def test_a_client_that_never_reads_does_not_stall_others(clean: Daemon) -> None:
    """A peer that sends without reading stops being read (a blocking send);
    a peer that never reads loses broadcasts in its own buffer; others
    proceed and the daemon stays up."""
    stalled = raw_connect(clean.path)
    stalled.setblocking(False)
    register = struct.pack("<BBBBHHII", 2, SADB.REGISTER, 0, 0, 2, 0, 0, 5)
    sent = 0
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        try:
            stalled.send(register)
            sent += 1
        except BlockingIOError:
            break
    assert sent > 100
    deaf = raw_connect(clean.path)
    with PfkeyClientSocket(clean.path, recvspace=1 << 20) as so:
        for i in range(600):
            so.send(add(0x5000 + i))
            so.recv(TIMEOUT)
    assert clean.alive()
    # The stalled peer catches up: every one of its sends is answered.
    stalled.setblocking(True)
    stalled.settimeout(TIMEOUT)
    results = 0
    while results < sent:
        data = stalled.recv(1 << 20)
        if is_ctrl(data):
            results += 1
    stalled.close()
    # The deaf peer got fewer of the 600 ADD broadcasts than were sent: the
    # rest were dropped when its socket buffer was full (soroverflow).
    deaf.settimeout(0.5)
    got = 0
    try:
        while True:
            if not is_ctrl(deaf.recv(1 << 20)):
                got += 1
    except (TimeoutError, socket.timeout):
        pass
    deaf.close()
    assert 0 < got < 600
    assert clean.alive()
