"""The split modules import cleanly whichever one a program imports first.

``ipsec_accel.ifnet`` re-exports names from modules that import it
(``if_clone``, ``ifnet_registry``; ``if_vlan`` sits between them), and
``ipsec_accel.mbuf`` re-exports ``uma`` and ``mbuf_sndtag``.  A cycle there
shows up only when a program's *first* import is the "wrong" module, which a
test session (everything already imported by conftest) never sees; so each
case runs in a fresh interpreter.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# Each case: modules imported in this order by a fresh interpreter, then
# every name of ifnet's and mbuf's __all__ (and the names ifnet serves for
# modules that moved out) must resolve.
CASES = [
    ["ipsec_accel.ifnet"],
    ["ipsec_accel.if_clone"],
    ["ipsec_accel.ifnet_registry"],
    ["ipsec_accel.if_vlan"],
    ["ipsec_accel.ifconfig"],
    ["ipsec_accel.ifnet", "ipsec_accel.if_vlan"],      # registry not loaded yet
    ["ipsec_accel.mbuf"],
    ["ipsec_accel.uma"],
    ["ipsec_accel.mbuf_sndtag"],
]

CHECK = """
import importlib, sys
for name in sys.argv[1:]:
    importlib.import_module(name)
ifnet = importlib.import_module("ipsec_accel.ifnet")
mbuf = importlib.import_module("ipsec_accel.mbuf")
names = [*ifnet.__all__, *ifnet._MOVED]
missing = [n for n in names if not hasattr(ifnet, n)]
missing += [n for n in mbuf.__all__ if not hasattr(mbuf, n)]
assert not missing, missing
from ipsec_accel.ifnet import IfClone, IfnetRegistry
from ipsec_accel.if_clone import IfClone as C
from ipsec_accel.ifnet_registry import IfnetRegistry as R
assert IfClone is C and IfnetRegistry is R
reg = IfnetRegistry()
assert reg.if_clone_create("vlan5")[0] == 0 and reg.if_clone_create("lo")[0] == 0
"""


@pytest.mark.parametrize("first", CASES, ids=lambda c: "+".join(m.split(".")[-1] for m in c))
def test_first_import(first: list[str]) -> None:
    proc = subprocess.run([sys.executable, "-c", CHECK, *first], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
