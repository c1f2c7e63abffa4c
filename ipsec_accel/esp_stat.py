"""ESP statistics and drop reasons: FreeBSD's ``struct espstat``
(``sys/netipsec/esp_var.h``) and one exception per way ``xform_esp.c``
refuses a packet.

Split out of :mod:`ipsec_accel.xform_esp` because these are what the rest of
the stack consumes without touching a transform: the IP layer and drivers
catch :class:`EspError` subclasses, :mod:`ipsec_accel.ipsecstat` sums
:class:`EspStat` per thread for ``netstat -s -p esp``.  Each exception names
the espstat counters FreeBSD bumps on its code path (the first is the drop
reason) and the errno it returns (DESIGN.md §5: errors carry errno).
:mod:`ipsec_accel.xform_esp` re-exports every name here.
"""

from __future__ import annotations

import errno as _errno
from typing import ClassVar, Final

ESPSTAT_FIELDS: Final = (
    "esps_hdrops", "esps_nopf", "esps_notdb", "esps_badkcr", "esps_qfull", "esps_noxform",
    "esps_badilen", "esps_wrap", "esps_badenc", "esps_badauth", "esps_replay", "esps_input",
    "esps_output", "esps_invalid", "esps_ibytes", "esps_obytes", "esps_toobig",
    "esps_pdrops", "esps_crypto", "esps_tunnel",
)


class EspStat:
    """``struct espstat`` (netipsec/esp_var.h): what ``netstat -s -p esp`` prints.

    One per host (FreeBSD: per VNET); pass it to every EspState of the host.
    ``esps_hist`` counts packets per SADB_EALG id.
    """

    __slots__ = ESPSTAT_FIELDS + ("esps_hist",)

    # The counters, one per ESPSTAT_FIELDS name (reset() sets them; the
    # annotations make no class attributes, so __slots__ stays what it is).
    esps_hdrops: int
    esps_nopf: int
    esps_notdb: int
    esps_badkcr: int
    esps_qfull: int
    esps_noxform: int
    esps_badilen: int
    esps_wrap: int
    esps_badenc: int
    esps_badauth: int
    esps_replay: int
    esps_input: int
    esps_output: int
    esps_invalid: int
    esps_ibytes: int
    esps_obytes: int
    esps_toobig: int
    esps_pdrops: int
    esps_crypto: int
    esps_tunnel: int
    esps_hist: list[int]

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        for name in ESPSTAT_FIELDS:
            setattr(self, name, 0)
        self.esps_hist = [0] * 256

    def count(self, exc: EspError) -> None:
        """Add a drop to the counters its FreeBSD code path increments."""
        for name in exc.counters:
            setattr(self, name, getattr(self, name) + 1)

    def as_dict(self) -> dict[str, int]:
        """Non-zero counters by FreeBSD field name (histogram as esps_hist[alg])."""
        out = {n: getattr(self, n) for n in ESPSTAT_FIELDS if getattr(self, n)}
        out.update({f"esps_hist[{i}]": v for i, v in enumerate(self.esps_hist) if v})
        return out


class EspError(OSError):
    """A packet ESP refused.  ``counters`` are the espstat fields FreeBSD bumps
    on this path (first one = the drop reason), ``errno`` what it returns."""

    counters: ClassVar[tuple[str, ...]] = ()
    default_errno: ClassVar[int] = _errno.EINVAL

    def __init__(self, message: str, *, seq: int | None = None) -> None:
        super().__init__(self.default_errno, message)
        self.seq = seq

    @property
    def reason(self) -> str:
        return self.counters[0] if self.counters else "silent"


class EspHdrops(EspError):
    """Shorter than the ESP header (ipsec_common_input / m_pullup)."""
    counters = ("esps_hdrops",)
    default_errno = _errno.ENOBUFS


class EspNotDb(EspError):
    """The SPI is not this SA's (the SAD lookup would have failed)."""
    counters = ("esps_notdb",)
    default_errno = _errno.ENOENT


class EspBadIlen(EspError):
    """Misaligned packet, payload not a multiple of the block, or a pad length
    beyond the payload (esp_input, esp_input_cb)."""
    counters = ("esps_badilen",)


class EspReplay(EspError):
    """Duplicate, too old, or sequence 0 (ipsec_chkreplay / ipsec_updatereplay)."""
    # Declared again: EspReplayWrap overrides with two names, and mypy would
    # otherwise infer tuple[str] here from the one-name literal.
    counters: ClassVar[tuple[str, ...]] = ("esps_replay",)
    default_errno = _errno.EACCES


class EspReplayWrap(EspReplay):
    """The 32-bit (or 64-bit ESN) sequence space is used up without CYCSEQ:
    ipsec_chkreplay bumps esps_wrap and esp_input then esps_replay."""
    counters = ("esps_wrap", "esps_replay")


class EspBadAuth(EspError):
    """ICV mismatch (esp_input_cb: EBADMSG from the crypto layer)."""
    counters = ("esps_badauth",)
    default_errno = _errno.EACCES


class EspBadEnc(EspError):
    """The last pad byte does not equal the pad length (esp_input_cb)."""
    counters = ("esps_badenc",)


class EspTooBig(EspError):
    """The ESP packet would exceed IP_MAXPACKET (esp_output)."""
    counters = ("esps_toobig",)
    default_errno = _errno.EMSGSIZE


class EspSeqWrap(EspError):
    """Output refused: the sequence counter would cycle (RFC 4303 §3.3.3)."""
    counters = ("esps_wrap",)
    default_errno = _errno.EACCES


class EspDummy(EspError):
    """Next header 59: a dummy packet, dropped without counting (RFC 4303 §2.6)."""
    counters = ()
    default_errno = 0


__all__ = [
    "ESPSTAT_FIELDS", "EspStat", "EspError", "EspHdrops", "EspNotDb", "EspBadIlen",
    "EspReplay", "EspReplayWrap", "EspBadAuth", "EspBadEnc", "EspTooBig", "EspSeqWrap",
    "EspDummy",
]
