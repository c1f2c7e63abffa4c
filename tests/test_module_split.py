"""The split modules stay one API: ``ipsec_accel.xform_esp`` and
``pfkey.extensions`` re-export what moved out of them (DESIGN.md §5:
public API by explicit re-export), and the xform_esp <-> xform_esp_kinds
import cycle works whichever module a program imports first."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# entry point -> the modules split out of it
SPLITS: dict[str, tuple[str, ...]] = {
    "ipsec_accel.xform_esp": (
        "ipsec_accel.esp_stat", "ipsec_accel.esp_replay", "ipsec_accel.esp_trailer",
        "ipsec_accel.xform_esp_kinds"),
    "pfkey.extensions": (
        "pfkey.sockaddr", "pfkey.ext_codec", "pfkey.ext_fixed", "pfkey.ext_var",
        "pfkey.ext_policy"),
}


@pytest.mark.parametrize("entry", sorted(SPLITS))
def test_entry_point_reexports_the_same_objects(entry: str) -> None:
    """Every name the entry point lists in __all__ that a split module also
    lists is the very same object (a re-export, not a copy)."""
    top = importlib.import_module(entry)
    for name in SPLITS[entry]:
        mod = importlib.import_module(name)
        for n in set(mod.__all__) & set(top.__all__):
            assert getattr(top, n) is getattr(mod, n), (entry, name, n)


def test_private_names_other_modules_import() -> None:
    """pfkey.message takes _value from pfkey.extensions; ipsec_output takes M32
    from xform_esp; tests patch xform_esp.os."""
    from ipsec_accel import xform_esp
    from pfkey import ext_codec, extensions
    assert extensions._value is ext_codec._value
    assert xform_esp.M32 == 0xFFFFFFFF and getattr(xform_esp, "os") is os


@pytest.mark.parametrize("first", [
    "ipsec_accel.xform_esp_kinds", "ipsec_accel.xform_esp", "ipsec_accel.esp_replay",
    "ipsec_accel.esp_trailer", "ipsec_accel.esp_stat", "pfkey.ext_policy",
    "pfkey.sockaddr"])
def test_import_order(first: str) -> None:
    """A fresh interpreter that imports ``first`` before anything else still
    gets the factory tables filled: EspState(...) picks each algorithm's class."""
    code = (
        f"import {first}\n"
        "from ipsec_accel.xform_esp import EspState\n"
        "from pfkey.extensions import EXT_CLASSES, SadbXPolicy\n"
        "from pfkey.pfkeyv2 import SADB_EALG, SADB_EXT\n"
        "assert EXT_CLASSES[SADB_EXT.X_POLICY] is SadbXPolicy\n"
        "for alg, key, cls in ((SADB_EALG.X_AESGCM16, 20, '_EspAead'),\n"
        "                      (SADB_EALG.X_AESGMAC, 20, '_EspGmac'),\n"
        "                      (SADB_EALG.X_AESCBC, 16, '_EspCipherAuth')):\n"
        "    assert type(EspState(1, alg, bytes(key))).__name__ == cls, alg\n")
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
