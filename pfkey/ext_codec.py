"""What every PF_KEY v2 extension value class shares (``sys/net/pfkeyv2.h``):
the 8-byte alignment (``PFKEY_ALIGN8``), lengths in 64-bit units
(``sadb_ext_len``, ``PFKEY_UNIT64``), the exttype check on encode, and
``@_value``, which makes a ``typing.NamedTuple`` a type-aware value.

A value class that also carries class constants (``exttype``,
``ALLOWED_TYPES``, ``SIZE``) is written as a ``_<Name>Fields`` NamedTuple
holding only the fields plus a slotted (``__slots__ = ()``) subclass holding
the constants and methods: type checkers read every assignment in a
NamedTuple body as a field, so the constants cannot live there.

Split out of :mod:`pfkey.extensions` so that every module holding value
classes shares one copy without importing the others.  Internal: nothing
here is public API (``pfkey.message`` takes ``_value`` from
:mod:`pfkey.extensions`, which re-exports it).
"""

from __future__ import annotations

from typing import Any, TypeVar

from .errors import EncodeError

_ZEROS = bytes(64)

# tuple.__new__ builds a NamedTuple in one C call, skipping the generated
# __new__ (the decoder's hot path; see pfkey.extensions).
_tnew = tuple.__new__

_C = TypeVar("_C", bound=type)


def _value(cls: _C) -> _C:
    """Type-aware equality and hashing for a NamedTuple value class."""

    def __eq__(self: tuple[Any, ...], other: object) -> bool:
        return type(self) is type(other) and tuple.__eq__(self, other)

    def __ne__(self: tuple[Any, ...], other: object) -> bool:
        return not __eq__(self, other)

    def __hash__(self: tuple[Any, ...]) -> int:
        return hash((type(self).__name__, tuple.__hash__(self)))

    # Patching methods onto a class object, and adding ``replace``, is not
    # something a type checker can follow; the functions match tuple's slots.
    cls.__eq__ = __eq__  # type: ignore[assignment]
    cls.__ne__ = __ne__  # type: ignore[assignment]
    cls.__hash__ = __hash__  # type: ignore[assignment]
    cls.replace = cls._replace  # type: ignore[attr-defined]
    return cls


def _pad8(b: bytes) -> bytes:
    r = len(b) & 7
    return b + _ZEROS[: 8 - r] if r else b


def _units(n: int) -> int:
    if n > 0xFFFF * 8:
        raise EncodeError(f"extension of {n} bytes does not fit sadb_ext_len")
    return n >> 3


def _check_type(obj: Any, allowed: frozenset[int]) -> None:
    if obj.exttype not in allowed:
        raise EncodeError(f"{type(obj).__name__} cannot carry extension type {obj.exttype}")


__all__: list[str] = []
