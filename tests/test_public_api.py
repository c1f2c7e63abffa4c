"""The public API is what ``__all__`` says, and every name in it exists."""

from __future__ import annotations

import importlib
import pkgutil

import pytest

import drivers
import ipsec_accel
import pfkey

MODULES = sorted(
    m.name for m in pkgutil.walk_packages(pfkey.__path__, "pfkey.")
)
ALL_MODULES = ["pfkey", *MODULES, "ipsec_accel", "drivers"] + sorted(
    m.name for pkg, prefix in ((ipsec_accel, "ipsec_accel."), (drivers, "drivers."))
    for m in pkgutil.walk_packages(pkg.__path__, prefix))


@pytest.mark.parametrize("name", ALL_MODULES)
def test_all_names_exist(name: str) -> None:
    """Every module declares __all__ and every listed name resolves."""
    mod = importlib.import_module(name)
    assert hasattr(mod, "__all__"), f"{name} has no __all__"
    missing = [n for n in mod.__all__ if not hasattr(mod, n)]
    assert not missing, f"{name}.__all__ lists missing names {missing}"
    assert len(set(mod.__all__)) == len(mod.__all__), f"{name}.__all__ has duplicates"


def test_pfkey_never_imports_ipsec_accel() -> None:
    """DESIGN §2: pfkey reaches offload only through the hooks object."""
    import sys
    for name in ["pfkey", *MODULES]:
        importlib.import_module(name)
    for name in MODULES:
        src = importlib.import_module(name).__file__
        assert src is not None
        text = open(src, encoding="utf-8").read()
        assert "import ipsec_accel" not in text and "from ipsec_accel" not in text, name
    assert all(not m.startswith("drivers") for m in sys.modules if m.startswith("pfkey"))


def test_ipsec_accel_never_imports_drivers() -> None:
    """DESIGN §2: imports point down only; ipsec_accel reaches NICs through
    the ifnet's if_ipsec_accel_methods, never by importing drivers."""
    import ast
    for m in pkgutil.walk_packages(ipsec_accel.__path__, "ipsec_accel."):
        src = importlib.import_module(m.name).__file__
        assert src is not None
        tree = ast.parse(open(src, encoding="utf-8").read())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                assert not any(a.name.split(".")[0] == "drivers" for a in node.names), m.name
            elif isinstance(node, ast.ImportFrom):
                assert (node.module or "").split(".")[0] != "drivers" or node.level, m.name
