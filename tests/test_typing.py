"""DESIGN.md §5, "Typing: annotate everything; mypy --strict clean is the aim":
the packages stay mypy --strict clean.  mypy is a test dependency (setup.cfg,
extra "test"); the check runs in a subprocess with a fresh cache, so it sees
the tree exactly as a fresh clone does."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("pfkey", "ipsec_accel", "drivers", "tools")


def test_packages_are_mypy_strict_clean(tmp_path: Path) -> None:
    r = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--cache-dir", str(tmp_path / "cache"),
         *PACKAGES],
        cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
