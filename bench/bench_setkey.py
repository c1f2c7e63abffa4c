"""setkey throughput: a 10,000-line ``add`` script, embedded and through the daemon.

Run: ``.venv/bin/python -m pytest bench/bench_setkey.py --benchmark-enable -q -s``
or ``.venv/bin/python bench/bench_setkey.py`` (prints both figures).

* ``test_setkey_script_embedded`` -- ``setkey -f script`` with the in-process
  host (tools/setkey.py ``main``): REGISTER, then per line the grammar, the
  encode, ``send`` into key_parse (key_add with the offload hooks), and the
  reply read back by sendkeymsg.
* ``test_setkey_script_socket`` -- the same script through a real daemon
  *process* (``tools/pfkeyd.py``: the default topology, mock NICs that
  install every AES-GCM SA) on a temporary Unix socket: every message and
  every RESULT crosses the socket.  Target: at least 5,000 lines/s.
* ``test_setkey_script_socket_nonic`` -- the same through ``python -m
  ipsec_accel.server`` (offload layer, no NICs), to separate the socket path
  from the NICs' install work (which shares the daemon's GIL).

Both report lines per second (``extra_info["lines_per_s"]``) and print them
side by side.  The host startup (embedded) and connection (socket) are
inside the measurement; interpreter startup is not (``main`` runs in
process, with the GC thresholds the CLI sets, ``tune_gc``).  With benchmarks disabled (the normal test run) the script has
1,000 lines so the suite stays quick; ``SETKEY_BENCH_LINES`` overrides.
"""

from __future__ import annotations

import gc
import io
import os
import select
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from ipsec_accel.host import tune_gc  # noqa: E402
from tools import setkey  # noqa: E402

FULL_LINES = 10_000
TARGET_SOCKET = 5_000
_report: dict[str, float] = {}


def make_script(lines: int) -> str:
    """``lines`` distinct ESP transport SAs, AES-GCM-16 (offloadable)."""
    out = []
    for i in range(lines):
        out.append(f"add 10.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255} 10.255.0.1 esp "
                   f"{0x10000 + i:#x} -m transport "
                   f"-E aes-gcm-16 0x{(i & 0xFFFFFFFF):08x}0102030405060708090a0b0c0d0e0f10 ;")
    return "\n".join(out) + "\n"


def _lines(benchmark: Any) -> int:
    env = os.environ.get("SETKEY_BENCH_LINES")
    if env:
        return int(env)
    return 1_000 if getattr(benchmark, "disabled", False) else FULL_LINES


def _run(args: list[str]) -> float:
    out, err = io.StringIO(), io.StringIO()
    # What ``python tools/setkey.py`` does first (ipsec_accel.host.tune_gc).
    old = tune_gc()
    try:
        t0 = time.perf_counter()
        rc = setkey.main(args, stdout=out, stderr=err, environ={})
        dt = time.perf_counter() - t0
    finally:
        gc.set_threshold(*old)
    assert rc == 0 and out.getvalue() == "" and err.getvalue() == "", (rc, out.getvalue()[:200],
                                                                        err.getvalue()[:200])
    return dt


class _Daemon:
    def __init__(self, path: Path, *cmd: str) -> None:
        self.proc = subprocess.Popen([sys.executable, *(cmd or ("tools/pfkeyd.py",)),
                                      "--socket", str(path)],
                                     cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        assert self.proc.stdout is not None
        r, _, _ = select.select([self.proc.stdout], [], [], 30)
        assert r, "pfkeyd did not start"
        self.proc.stdout.readline()
        self.path = path

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        self.proc.communicate(timeout=30)


def _report_rate(name: str, benchmark: Any, lines: int, seconds: float) -> float:
    rate = lines / seconds
    benchmark.extra_info["lines"] = lines
    benchmark.extra_info["lines_per_s"] = round(rate)
    _report[name] = round(rate)
    print(f"\nsetkey -f ({lines} add lines), {name}: {rate:,.0f} lines/s")
    return rate


def _bench(benchmark: Any, fn: Callable[[], float], setup: Callable[[], None]) -> float:
    times: list[float] = []

    def once() -> None:
        times.append(fn())

    rounds = 1 if getattr(benchmark, "disabled", False) else 3
    benchmark.pedantic(once, setup=setup, rounds=rounds, iterations=1)
    return min(times)


def test_setkey_script_embedded(benchmark: Any, tmp_path: Path) -> None:
    lines = _lines(benchmark)
    script = tmp_path / "adds.conf"
    script.write_text(make_script(lines))
    best = _bench(benchmark, lambda: _run(["--embedded", "-f", str(script)]), lambda: None)
    _report_rate("embedded", benchmark, lines, best)


def _socket_bench(benchmark: Any, tmp_path: Path, name: str, *cmd: str) -> float:
    lines = _lines(benchmark)
    script = tmp_path / "adds.conf"
    script.write_text(make_script(lines))
    sock = tmp_path / "pfkeyd.sock"
    d = _Daemon(sock, *cmd)
    try:
        def flush() -> None:
            _run(["--socket", str(sock), "-F"])
            _run(["--socket", str(sock), "-FP"])

        best = _bench(benchmark, lambda: _run(["--socket", str(sock), "-f", str(script)]), flush)
    finally:
        d.stop()
    rate = _report_rate(name, benchmark, lines, best)
    if lines >= FULL_LINES:
        print(f"target >= {TARGET_SOCKET:,} lines/s over the socket: "
              f"{'met' if rate >= TARGET_SOCKET else 'NOT met'}")
    return rate


def test_setkey_script_socket(benchmark: Any, tmp_path: Path) -> None:
    _socket_bench(benchmark, tmp_path, "daemon socket, default topology")


def test_setkey_script_socket_nonic(benchmark: Any, tmp_path: Path) -> None:
    _socket_bench(benchmark, tmp_path, "daemon socket, no NICs", "-m", "ipsec_accel.server")


def main() -> int:
    lines = int(os.environ.get("SETKEY_BENCH_LINES", FULL_LINES))

    class _B:
        disabled = True
        extra_info: dict[str, Any] = {}

        def pedantic(self, fn: Callable[[], None], setup: Callable[[], None], rounds: int,
                     iterations: int) -> None:
            for _ in range(rounds):
                setup()
                fn()

    os.environ["SETKEY_BENCH_LINES"] = str(lines)
    with tempfile.TemporaryDirectory() as d:
        test_setkey_script_embedded(_B(), Path(d))
        test_setkey_script_socket(_B(), Path(d))
        test_setkey_script_socket_nonic(_B(), Path(d))
    return 0


if __name__ == "__main__":
    sys.exit(main())
