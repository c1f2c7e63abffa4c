"""The public API is what ``__all__`` says, and every name in it exists."""

from __future__ import annotations

import importlib
import pkgutil

import pytest

import pfkey

MODULES = sorted(
    m.name for m in pkgutil.walk_packages(pfkey.__path__, "pfkey.")
)


@pytest.mark.parametrize("name", ["pfkey", *MODULES])
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
