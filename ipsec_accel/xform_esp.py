"""ESP as FreeBSD's ``sys/netipsec/xform_esp.c`` does it, on real bytes.

One :class:`EspState` per SA (``struct secasvar`` after ``esp_init``), built
once with its cipher objects, salt, header structs and replay state; per packet
:meth:`EspState.output` and :meth:`EspState.input` work on bytes with plain ints.
The software datapath and the mock NICs' inline engines share it, so for the
same SA, IV and sequence number every path puts the same bytes on the wire.

Rules modelled (RFC 4303 unless said otherwise):

* Header: SPI, 32-bit sequence number (the low half with ESN), IV of
  ``sav->ivlen`` bytes.  Trailer: padding, pad length, next header, then ICV.
* Padding (esp_output): ``blks = max(4, blocksize)``, or ``max(4,
  native_blocksize)`` for AES-CTR while net.inet.esp.ctr_compatibility is on;
  ``padding = ((blks - (rlen + 2) % blks) % blks) + 2`` including the two
  trailer bytes.  Contents by ``flags & SADB_X_EXT_PMASK``: PSEQ 1, 2, 3 ...
  (default), PZERO zeros, PRAND random.
* IV: a per-SA 64-bit counter (``sav->cntr``, starting at 0) for AES-CTR
  (RFC 3686), AES-GCM (RFC 4106), ChaCha20-Poly1305 (RFC 7634) and AES-GMAC
  (RFC 4543); random for AES-CBC (RFC 3602).  Nonce = 4-byte salt || IV
  (CTR: || 00000001).
* Sequence number: 64-bit ``replay->count``, incremented per packet; the wire
  carries the low 32 bits.  With SADB_X_SAFLAGS_ESN (RFC 4304) the high 32
  bits enter the ICV: AEAD AAD = SPI || seq_hi || seq_lo (RFC 4106 §5,
  RFC 7634 §2.1), HMAC over the packet followed by seq_hi (RFC 4303 §2.2.1,
  FreeBSD's ``crp_esn``), GMAC AAD = SPI || seq_hi || seq_lo || IV || payload
  (RFC 4543 §3.2).
* Input order (ipsec_common_input, esp_input, esp_input_cb): header too short
  (esps_hdrops), SPI not this SA (esps_notdb), length not a multiple of 4 or
  payload not a multiple of the cipher block (esps_badilen), replay check
  before the ICV (``ipsec_chkreplay``, only with an auth algorithm and a
  window; esps_replay, esps_wrap), ICV (esps_badauth), replay update after it
  (``ipsec_updatereplay``; esps_replay), pad length beyond the payload
  (esps_badilen), last pad byte not equal to the pad length unless PRAND or a
  zero pad length (esps_badenc), next header 59 dropped silently (RFC 4303 §2.6).
* Anti-replay window: RFC 4303 §3.4.3 / Appendix A with RFC 6479 blocks,
  exactly as ipsec.c ``ipsec_chkreplay`` / ``ipsec_updatereplay``; see
  :mod:`ipsec_accel.esp_replay`.
* Output sequence wrap: FreeBSD's esp_output never refuses (the counter is 64
  bits and the wire silently wraps to 0); RFC 4303 §3.3.3 says the sender must
  not cycle.  By default this model refuses (esps_wrap, EACCES, as xform_ah.c
  does for AH) when a non-ESN counter would pass 2**32-1, or an ESN counter
  2**64-1, unless CYCSEQ is set (setkey sets it by default, so setkey SAs cycle
  as FreeBSD's do); ``freebsd_output_wrap=True`` reproduces FreeBSD exactly.

Deliberate differences from FreeBSD (each also noted where it happens):
AES-GMAC works per RFC 4543 (FreeBSD lists it but cannot run it); an ESN SA
with a zero replay window authenticates with seq_hi 0 (FreeBSD's AEAD path
then uses an 8-byte AAD and fails every packet); the output wrap rule above;
SADB_X_EXT_OLD (RFC 1827 ESP) is refused at construction.

Threads: sequence number and IV counter come from ``itertools.count`` (one C
call, atomic under the GIL), so AEAD output takes no lock; the replay window,
the CBC cipher contexts and the random pool are guarded by the SA's lock
(FreeBSD's SECREPLAY lock).

Speed: AEAD output has an inlined common path (DESIGN.md §6 budget: about 2x
the raw AEAD call) and falls back to ``_output_full`` for explicit sequence
numbers or IVs, ESN, accounting, random padding, counter wrap and sizes near
IP_MAXPACKET.  Whole-packet transport/tunnel/NAT-T helpers live in :mod:`esp_encap`.

Modules (split by concept; this one stays the entry point and re-exports
every public name, so ``from ipsec_accel.xform_esp import ...`` is all a
user needs):

* this module: wire constants, the size helpers (``esp_hdrsiz``,
  ``esp_exact_size``) and :class:`EspState`, what every SA shares
  (esp_init, counters, header/trailer checks) plus the factory that picks
  the per-algorithm subclass;
* :mod:`ipsec_accel.xform_esp_kinds`: the subclasses, i.e. the per-packet
  AEAD / AES-GMAC / cipher-then-HMAC code;
* :mod:`ipsec_accel.esp_replay`: ``struct secreplay`` and the ipsec.c
  replay functions EspState inherits;
* :mod:`ipsec_accel.esp_trailer`: the shared padding/trailer tables;
* :mod:`ipsec_accel.esp_stat`: ``struct espstat`` and the drop exceptions.
"""

from __future__ import annotations

import itertools
import os
import struct
import threading
from typing import TYPE_CHECKING, Final, NoReturn

from pfkey.ipsec import IPSEC_MODE
from pfkey.pfkeyv2 import AF_INET, AF_INET6, SADB_AALG, SADB_SAFLAGS, SADB_X_EXT_PMASK

from .esp_replay import IpsecReplay, SecReplay
from .esp_stat import (
    ESPSTAT_FIELDS, EspBadAuth, EspBadEnc, EspBadIlen, EspDummy, EspError, EspHdrops,
    EspNotDb, EspReplay, EspReplayWrap, EspSeqWrap, EspStat, EspTooBig,
)
from .esp_trailer import trailer_table
from .xform import (
    EALG_MAX_BLOCK_LEN, KIND_CTR, KIND_NULL, AuthHash, EncXform, XformInitError,
    esp_init_algorithms,
)

if TYPE_CHECKING:
    import hmac

    from cryptography.hazmat.primitives.ciphers import CipherContext, algorithms
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305

ESP_HDRLEN: Final = 8          # struct newesp: SPI + sequence number
ESP_OLD_HDRLEN: Final = 4      # struct esp (RFC 1827): SPI only
IP_MAXPACKET: Final = 65535
IPPROTO_NONE: Final = 59
M32: Final = 0xFFFFFFFF
M64: Final = 0xFFFFFFFFFFFFFFFF
_EXT_OLD: Final = int(SADB_SAFLAGS.X_EXT_OLD)
_EXT_IV4B: Final = int(SADB_SAFLAGS.X_EXT_IV4B)
_EXT_CYCSEQ: Final = int(SADB_SAFLAGS.X_EXT_CYCSEQ)
_EXT_PRAND: Final = int(SADB_SAFLAGS.X_EXT_PRAND)
_SAFLAGS_ESN: Final = int(SADB_SAFLAGS.X_SAFLAGS_ESN)

_HDR = struct.Struct("!II")        # SPI, seq_lo


# --- sizes (freebsd_ipsec_offload.md §8) ------------------------------------------------

def esp_pad_block(enc: EncXform, ctr_compatibility: bool = True) -> int:
    """``blks``: the alignment esp_output pads the payload + 2 trailer bytes to."""
    if enc.kind == KIND_CTR and ctr_compatibility:
        return max(4, enc.native_blocksize)
    return max(4, enc.blocksize)


def esp_exact_size(enc: EncXform, auth: AuthHash | None, pktlen: int, skip: int, *,
                   flags: int = 0, ctr_compatibility: bool = True,
                   icvlen: int | None = None) -> int:
    """Length of a packet of ``pktlen`` bytes after esp_output with ``skip``
    bytes of IP header kept in front: skip + hlen + rlen + padding + alen.

    This is the computation ipsec_accel_output uses for its MTU check.
    ``icvlen`` overrides xform_ah_authsize(auth) (AES-GMAC carries its own).
    """
    rlen = pktlen - skip
    hlen = (ESP_OLD_HDRLEN if flags & _EXT_OLD else ESP_HDRLEN) + enc.esp_ivlen
    blks = esp_pad_block(enc, ctr_compatibility)
    padding = ((blks - ((rlen + 2) % blks)) % blks) + 2
    alen = icvlen if icvlen is not None else (0 if auth is None else auth.icvlen)
    return skip + hlen + rlen + padding + alen


def ah_hdrsiz(auth: AuthHash, flags: int = 0, af: int = AF_INET) -> int:
    """xform_ah.c ah_hdrsiz for an SA: AH header + ICV rounded to 4 (8 for IPv6)."""
    rplen = 8 if flags & _EXT_OLD else 12      # HDRSIZE: struct ah [+ sequence]
    align = 8 if af == AF_INET6 else 4
    n = rplen + auth.icvlen
    return (n + align - 1) // align * align


def esp_hdrsiz(sa: EspState | None) -> int:
    """xform_esp.c esp_hdrsiz: the worst-case ESP overhead ip_output reserves.

    For an SA: header + cipher blocksize + 9 (max pad + 2 trailer bytes) +
    ah_hdrsiz when it authenticates (FreeBSD's own over-estimate, kept).
    Without one: 8 + EALG_MAX_BLOCK_LEN + 9 + 16.
    """
    if sa is None:
        return ESP_HDRLEN + EALG_MAX_BLOCK_LEN + 9 + 16
    size = (ESP_OLD_HDRLEN if sa.flags & _EXT_OLD else ESP_HDRLEN) + sa.enc.blocksize + 9
    if sa.auth is not None:
        size += ah_hdrsiz(sa.auth, sa.flags, sa.af)
    return size


# --- the SA ------------------------------------------------------------------------------

class EspState(IpsecReplay):
    """One ESP SA's transform state (``secasvar`` after esp_init).

    Build once per SA::

        sa = EspState(0x1000, SADB_EALG.X_AESGCM16, key_and_salt, replay=4)
        esp = sa.output(inner_payload, IPPROTO_TCP)          # SPI..ICV bytes
        payload, nxt, seq = peer.input(esp)                  # or raises EspError

    ``replay`` is the window in bytes (``sadb_sa_replay``); ``flags`` the
    ``sadb_sa_flags`` (padding mode, CYCSEQ, ESN); ``stats`` an optional
    :class:`EspStat` to count into.  Algorithm or key errors raise
    :class:`ipsec_accel.xform.XformInitError` (EINVAL), as esp_init does.
    """

    __slots__ = (
        "spi", "enc", "auth", "alg_enc", "alg_auth", "flags", "mode", "af", "esn", "cycseq",
        "pmask", "hlen", "ivlen", "icvlen", "blks", "blkmask", "in_blkmask", "replay",
        "_stats", "freebsd_output_wrap", "_seqgen", "_cntrgen", "_seqlimit",
        "_lock", "_salt", "_aead", "_aes", "_cbc_enc", "_cbc_dec", "_hmac", "_trailers",
        "_pool", "_poolpos", "_chk", "_ovh", "_maxbody", "_fast", "__weakref__",
    )

    def __new__(cls, *args: object, **kwargs: object) -> EspState:
        if cls is EspState:
            enc_alg = args[1] if len(args) > 1 else kwargs.get("enc_alg")
            # enc_alg is whatever the caller passed (an object here); dict.get
            # hashes any key, and anything not an SADB_EALG id simply misses,
            # which mypy's dict[int, str].get cannot express.
            kind: str | None = _KIND_OF.get(enc_alg)  # type: ignore[call-overload]
            # An unknown algorithm gets the NULL/CBC/CTR class, whose __init__
            # (esp_init_algorithms) then refuses it with EINVAL.  (kind None
            # is such a miss too: _IMPL's keys are KIND_* strings.)
            cls = _IMPL.get(kind, _IMPL[KIND_NULL])  # type: ignore[arg-type]
        return object.__new__(cls)

    def __init__(self, spi: int, enc_alg: int, enc_key: bytes, auth_alg: int = SADB_AALG.NONE,
                 auth_key: bytes = b"", *, flags: int = 0, replay: int = 0,
                 mode: int = IPSEC_MODE.ANY, af: int = AF_INET, stats: EspStat | None = None,
                 ctr_compatibility: bool = True, freebsd_output_wrap: bool = False) -> None:
        if not 0 <= spi <= M32:
            raise XformInitError(f"SPI {spi:#x} does not fit 32 bits")
        if flags & _EXT_OLD:
            raise XformInitError("old (RFC 1827) ESP, SADB_X_EXT_OLD, is not modelled")
        if (flags & (_EXT_OLD | _EXT_IV4B)) == _EXT_IV4B:
            raise XformInitError("4-byte IV not supported with protocol")
        if not 0 <= replay <= M32 // 8:
            raise XformInitError(f"replay window of {replay} bytes")
        algs = esp_init_algorithms(enc_alg, enc_key, auth_alg, auth_key)
        self.spi = spi
        self.enc = algs.enc
        self.auth = algs.auth
        self.alg_enc = int(algs.enc.sadb_alg)
        self.alg_auth = int(algs.alg_auth)
        self.flags = flags
        self.mode = mode
        self.af = af
        self.esn = bool(flags & _SAFLAGS_ESN)
        self.cycseq = bool(flags & _EXT_CYCSEQ)
        self.pmask = flags & SADB_X_EXT_PMASK
        self.hlen = ESP_HDRLEN + algs.enc.esp_ivlen
        self.ivlen = algs.enc.esp_ivlen
        self.icvlen = algs.icvlen
        self.blks = esp_pad_block(algs.enc, ctr_compatibility)
        self.blkmask = self.blks - 1
        self.in_blkmask = algs.enc.blocksize - 1
        self.replay = SecReplay(replay)
        self._stats = stats
        self.freebsd_output_wrap = freebsd_output_wrap
        self._seqgen = itertools.count(1)
        self._cntrgen = itertools.count(0)
        self._seqlimit = self._compute_seqlimit()
        self._lock = threading.Lock()
        self._salt = algs.salt
        self._trailers = trailer_table(self.pmask, self.blks)
        self._pool = b""
        self._poolpos = 0
        self._ovh = self.hlen + self.icvlen
        self._maxbody = IP_MAXPACKET - self.hlen - 2 - self.icvlen
        # esp_input: ipsec_chkreplay runs only with an authenticator and a window.
        # (esph != NULL): every SA with an ICV, AES-GMAC's included.
        self._chk = self.icvlen != 0 and replay != 0
        self._aead: AESGCM | ChaCha20Poly1305 | None = None
        self._aes: algorithms.AES | None = None
        self._cbc_enc: CipherContext | None = None
        self._cbc_dec: CipherContext | None = None
        self._hmac: hmac.HMAC | None = None
        self._setup(algs.cipher_key, algs.auth_key)

    def _setup(self, cipher_key: bytes, auth_key: bytes) -> None:
        raise NotImplementedError

    # -- counters ------------------------------------------------------------------

    def _compute_seqlimit(self) -> int:
        """Above this the counter has left its space: _wrap decides what happens."""
        return M64 if self.esn else M32

    @property
    def count(self) -> int:
        """``replay->count``: last sequence number sent (64-bit), plus packets
        accepted on input (ipsec_updatereplay counts there too).

        The counter is an ``itertools.count`` (the next value); its repr,
        ``count(N)``, is the one way to read it without consuming a value.
        """
        return int(repr(self._seqgen)[6:-1]) - 1

    @count.setter
    def count(self, value: int) -> None:
        self._seqgen = itertools.count(value + 1)

    @property
    def stats(self) -> EspStat | None:
        """The EspStat this SA counts into (None: no accounting)."""
        return self._stats

    @stats.setter
    def stats(self, value: EspStat | None) -> None:
        self._stats = value
        self._build_fast()

    def _build_fast(self) -> None:
        """Refresh the constants the inlined output path reads in one load."""

    @property
    def cntr(self) -> int:
        """``sav->cntr``: the next counter IV (CTR/GCM/ChaCha/GMAC)."""
        v = next(self._cntrgen)
        self._cntrgen = itertools.count(v)
        return v

    @cntr.setter
    def cntr(self, value: int) -> None:
        self._cntrgen = itertools.count(value)

    def _next_seq(self) -> int:
        seq = next(self._seqgen)
        if seq > self._seqlimit:
            seq = self._wrap(seq)
        return seq

    def _wrap(self, seq: int) -> int:
        """The counter passed the 32-bit (non-ESN) or 64-bit (ESN) space."""
        if self.freebsd_output_wrap or self.cycseq:
            if seq > M64:                       # 64-bit count wraps to 0 in C
                seq &= M64
                self._seqgen = itertools.count(seq + 1)
            return seq
        # Keep refusing from now on: the next call draws the same number again.
        self._seqgen = itertools.count(seq)
        st = self.stats
        if st is not None:
            st.esps_wrap += 1
        raise EspSeqWrap(f"SA {self.spi:#010x}: sequence number would cycle", seq=seq)

    def _random(self, n: int) -> bytes:
        """n bytes from a per-SA pool refilled from os.urandom (caller holds the lock)."""
        pos = self._poolpos
        if pos + n > len(self._pool):
            self._pool = os.urandom(max(256, n))
            pos = 0
        self._poolpos = pos + n
        return self._pool[pos:pos + n]

    def _trailer(self, padlen: int, nxt: int) -> bytes:
        """Padding || pad length || next header."""
        return self._trailers[padlen << 8 | nxt]

    # -- sizes -------------------------------------------------------------------------

    def output_size(self, pktlen: int, skip: int) -> int:
        """esp_exact_size for this SA (freebsd_ipsec_offload.md §8)."""
        rlen = pktlen - skip
        return skip + self.hlen + rlen + ((-(rlen + 2)) & self.blkmask) + 2 + self.icvlen

    # -- per packet ----------------------------------------------------------------------

    def output(self, payload: bytes | bytearray, nxt: int, *, seq: int | None = None,
               iv: bytes | None = None, skip: int = 20) -> bytes:
        """ESP-protect ``payload`` (the bytes after the kept IP header, or the
        whole inner packet in tunnel mode) whose protocol is ``nxt``.

        Returns SPI || seq || IV || ciphertext || ICV.  ``seq`` (64-bit) and
        ``iv`` (``ivlen`` bytes) override the SA's counters without advancing
        them, for known-answer tests and for paths that must agree on bytes.
        ``skip`` is the IP header length kept in front, used only for the
        IP_MAXPACKET check.
        """
        raise NotImplementedError

    def input(self, esp: bytes | bytearray) -> tuple[bytes, int, int]:
        """Check and open one ESP packet (SPI .. ICV).  Returns ``(payload,
        next_header, seq)`` with the 64-bit sequence number; raises an
        :class:`EspError` subclass naming the espstat counter."""
        raise NotImplementedError

    def _prologue(self, rlen: int, skip: int, padlen: int) -> None:
        """esps_output, the IP_MAXPACKET check and esps_obytes."""
        st = self.stats
        if st is not None:
            st.esps_output += 1
        if skip + self.hlen + rlen + padlen + 2 + self.icvlen > IP_MAXPACKET:
            if st is not None:
                st.esps_toobig += 1
            raise EspTooBig(f"packet in SA {self.spi:#010x} got too big "
                            f"({skip + self.hlen + rlen + padlen + 2 + self.icvlen} bytes)")
        if st is not None:
            st.esps_obytes += rlen
            st.esps_hist[self.alg_enc] += 1

    def _drop(self, exc: EspError) -> EspError:
        st = self.stats
        if st is not None:
            st.count(exc)
        return exc

    def _header_error(self, esp: bytes | bytearray) -> EspError | None:
        """ipsec_common_input + esp_input length checks, in FreeBSD's order:
        esps_hdrops, esps_notdb, esps_badilen.  None when the header is fine."""
        n = len(esp)
        if n < ESP_HDRLEN:
            return EspHdrops(f"ESP packet of {n} bytes")
        spi, seq = _HDR.unpack_from(esp)
        if spi != self.spi:
            return EspNotDb(f"SPI {spi:#010x} is not SA {self.spi:#010x}", seq=seq)
        plen = n - self._ovh
        if n & 3 or plen & self.in_blkmask or plen <= 0:
            return EspBadIlen(f"payload of {plen} octets not a multiple of "
                              f"{self.in_blkmask + 1} octets in SA {self.spi:#010x}", seq=seq)
        return None

    def _bad_header(self, esp: bytes | bytearray) -> EspError:
        """The counted drop for a header the inlined fast path refused."""
        exc = self._header_error(esp)
        assert exc is not None
        return self._drop(exc)

    def _check_header(self, esp: bytes | bytearray) -> tuple[int, int]:
        """Count esps_input and check the header; returns (seq_lo, plen)."""
        st = self.stats
        if st is not None:
            st.esps_input += 1
        exc = self._header_error(esp)
        if exc is not None:
            raise self._drop(exc)
        seq: int = _HDR.unpack_from(esp)[1]
        return seq, len(esp) - self._ovh

    def _replay_check(self, seq: int) -> int:
        lock = self._lock
        lock.acquire()
        seqh = self.ipsec_chkreplay(seq)
        lock.release()
        if seqh < 0:
            self._replay_fail(seqh, seq)
        return seqh

    def _replay_fail(self, code: int, seq: int) -> NoReturn:
        """Raise (and count) the drop for a failed replay check or update."""
        if code == -2:
            raise self._drop(EspReplayWrap(
                f"sequence number wrapped in SA {self.spi:#010x}", seq=seq))
        raise self._drop(EspReplay(f"packet replay check for SA {self.spi:#010x}", seq=seq))

    def _replay_update(self, seq: int) -> None:
        lock = self._lock
        lock.acquire()
        bad = self.ipsec_updatereplay(seq)
        lock.release()
        if bad:
            self._replay_fail(-1, seq)

    def _trailer_check(self, pt: bytes, seq: int) -> tuple[bytes, int]:
        """esp_input_cb's pad length and padding checks; returns (payload, nxt)."""
        n = len(pt)
        padlen = pt[n - 2]
        if padlen + 2 > n:
            raise self._drop(EspBadIlen(
                f"invalid padding length {padlen} for {n} byte packet in SA "
                f"{self.spi:#010x}", seq=seq))
        if self.pmask != _EXT_PRAND and padlen != 0 and pt[n - 3] != padlen:
            raise self._drop(EspBadEnc(f"decryption failed for packet in SA {self.spi:#010x}",
                                       seq=seq))
        nxt = pt[n - 1]
        if nxt == IPPROTO_NONE:
            raise EspDummy("next header 59: dummy packet", seq=seq)
        return pt[:n - 2 - padlen], nxt

    def __repr__(self) -> str:
        auth = self.auth.name if self.auth is not None else "none"
        return (f"<{type(self).__name__} spi={self.spi:#010x} {self.enc.name}/{auth} "
                f"flags={self.flags:#x} replay={self.replay.wsize} esn={self.esn} "
                f"count={self.count}>")


# The factory's tables: SADB_EALG id -> KIND_*, and KIND_* -> the subclass
# that runs it.  xform_esp_kinds fills both when imported; it must come after
# EspState (its classes derive from it), hence the import at the very end.
# Taking no names from it keeps the cycle safe whichever module is imported
# first.
_KIND_OF: Final[dict[int, str]] = {}
_IMPL: Final[dict[str, type[EspState]]] = {}

from . import xform_esp_kinds  # noqa: E402  (registers the subclasses)

del xform_esp_kinds

__all__ = [
    "ESP_HDRLEN", "ESP_OLD_HDRLEN", "IP_MAXPACKET", "ESPSTAT_FIELDS", "EspStat",
    "EspError", "EspHdrops", "EspNotDb", "EspBadIlen", "EspReplay", "EspReplayWrap",
    "EspBadAuth", "EspBadEnc", "EspTooBig", "EspSeqWrap", "EspDummy",
    "esp_pad_block", "esp_exact_size", "ah_hdrsiz", "esp_hdrsiz", "SecReplay", "EspState",
]
