"""The per-algorithm halves of ``xform_esp.c`` ``esp_output`` / ``esp_input``:
one :class:`ipsec_accel.xform_esp.EspState` subclass per way the transform
uses its cipher (FreeBSD makes the same choice once per SA, when esp_init
picks the opencrypto session mode: CSP_MODE_AEAD, CSP_MODE_ETA or
CSP_MODE_CIPHER).

* :class:`_EspAead`: AES-GCM-16 (RFC 4106) and ChaCha20-Poly1305 (RFC 7634),
  with the inlined output path of DESIGN.md §6;
* :class:`_EspGmac`: ENCR_NULL_AUTH_AES_GMAC (RFC 4543), which FreeBSD
  lists but cannot run (the model runs it, per the RFC);
* :class:`_EspCipherAuth`: NULL, AES-CBC (RFC 3602) or AES-CTR (RFC 3686),
  then an optional HMAC (RFC 2404, RFC 4868).

Split out of :mod:`ipsec_accel.xform_esp`, which keeps what every SA shares
(construction, counters, sizes, header and trailer checks) and the factory:
``EspState(...)`` picks the subclass from ``_IMPL[_KIND_OF[enc_alg]]``.
This module fills both tables when it is imported, and xform_esp imports it
at its end, after EspState exists; registering (rather than xform_esp
importing these names) is what lets either module be imported first.  The
code moved unchanged: the constants the per-packet paths read are this
module's globals, so a lookup costs what it cost before the split.
"""

from __future__ import annotations

import hashlib
import hmac
import struct
from typing import Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305

from .esp_stat import EspBadAuth
from .esp_trailer import residue_table
from .xform import AUTH_HMAC, KIND_CBC, KIND_CHACHA, KIND_CTR, KIND_GCM, KIND_GMAC, KIND_NULL
from .xform_esp import _EXT_PRAND, _IMPL, _KIND_OF, M32, EspState

# The wire structs of the per-packet paths.  _HDR repeats xform_esp's rather
# than importing it: CPython (seen on 3.11.7) compiles ``name.method()`` on a
# module-level name bound by ``import`` as an attribute load + call, not
# LOAD_METHOD, and that made _EspAead.input 3-5% slower per packet.
_HDR = struct.Struct("!II")        # SPI, seq_lo
_HDR_IV = struct.Struct("!IIQ")    # SPI, seq_lo, 64-bit counter IV
_AAD_ESN = struct.Struct("!III")   # SPI, seq_hi, seq_lo
_NONCE = struct.Struct("!4sQ")     # salt, counter IV
_U32 = struct.Struct("!I")
_ZERO_ICV12: Final = bytes(12)


class _EspAead(EspState):
    """AES-GCM-16 (RFC 4106) and ChaCha20-Poly1305 (RFC 7634): the AEAD encrypts
    the payload and trailer; AAD = SPI || [seq_hi ||] seq_lo."""

    __slots__ = ()

    def _setup(self, cipher_key: bytes, auth_key: bytes) -> None:
        self._aead = (ChaCha20Poly1305(cipher_key) if self.enc.kind == KIND_CHACHA
                      else AESGCM(cipher_key))
        self._build_fast()

    def _build_fast(self) -> None:
        # Everything the common case of output() needs, fetched with one load.
        # ``maxfast`` bounds rlen + skip so that no padding can pass
        # IP_MAXPACKET; -1 sends every packet to the full path (accounting,
        # ESN or random padding on).
        assert self._aead is not None
        slow = self._stats is not None or self.esn or self.pmask == _EXT_PRAND
        self._fast = (self.spi, self._salt, self._aead.encrypt, self.blkmask,
                      -1 if slow else self._maxbody - self.blkmask,
                      residue_table(self.pmask, self.blks), _HDR_IV.pack, _NONCE.pack)

    def output(self, payload: bytes | bytearray, nxt: int, *, seq: int | None = None,
               iv: bytes | None = None, skip: int = 20) -> bytes:
        # The hot path of the software datapath (DESIGN.md §6: at most ~2x the
        # raw AEAD call).  Every bytecode counts here: constants come from one
        # tuple, counters from C iterators, the trailer from a shared table
        # indexed by the payload length's residue; anything unusual (explicit
        # seq/IV, ESN, accounting, PRAND, near IP_MAXPACKET, counter wrap)
        # takes _output_full, which follows esp_output step by step.
        spi, salt, encrypt, blkmask, maxfast, by_residue, hdriv, noncepack = self._fast
        rlen = len(payload)
        if seq is not None or iv is not None or rlen + skip > maxfast:
            return self._output_full(payload, nxt, seq, iv, skip)
        seq = next(self._seqgen)
        if seq > self._seqlimit:
            return self._output_full(payload, nxt, self._wrap(seq), None, skip)
        cntr = next(self._cntrgen)
        hi = hdriv(spi, seq, cntr)
        tr = by_residue[(rlen & blkmask) << 8 | nxt]
        try:
            pt = payload + tr
        except TypeError:                       # a memoryview
            pt = b"".join((payload, tr))
        return hi + encrypt(noncepack(salt, cntr), pt, hi[:8])

    def _output_full(self, payload: bytes | bytearray, nxt: int, seq: int | None,
                     iv: bytes | None, skip: int) -> bytes:
        rlen = len(payload)
        padlen = -(rlen + 2) & self.blkmask
        self._prologue(rlen, skip, padlen)
        if seq is None:
            seq = self._next_seq()
        tr = self._trailer(padlen, nxt)
        aead = self._aead
        assert aead is not None
        if iv is None:
            cntr = next(self._cntrgen)
            hi = _HDR_IV.pack(self.spi, seq & M32, cntr)
            nonce = _NONCE.pack(self._salt, cntr)
        else:
            if len(iv) != 8:
                raise ValueError("the explicit IV is 8 bytes")
            hi = _HDR.pack(self.spi, seq & M32) + iv
            nonce = self._salt + iv
        pt = b"".join((payload, tr))
        if self.esn:
            return hi + aead.encrypt(nonce, pt, _AAD_ESN.pack(self.spi, seq >> 32, seq & M32))
        return hi + aead.encrypt(nonce, pt, hi[:8])

    def input(self, esp: bytes | bytearray) -> tuple[bytes, int, int]:
        if type(esp) is not bytes:
            esp = bytes(esp)
        st = self.stats
        if st is not None:
            st.esps_input += 1
        n = len(esp)
        if n < 8:
            raise self._bad_header(esp)
        spi, seq = _HDR.unpack_from(esp)
        plen = n - self._ovh
        if spi != self.spi or n & 3 or plen < 1:     # AEAD blocksize is 1
            raise self._bad_header(esp)
        if self._chk:
            # ipsec_chkreplay under the SA lock, inlined (no wrapper call).
            lock = self._lock
            lock.acquire()
            seqh = self.ipsec_chkreplay(seq)
            lock.release()
            if seqh < 0:
                self._replay_fail(seqh, seq)
        else:
            seqh = 0
        if st is not None:
            st.esps_ibytes += plen
        try:
            # _setup set _aead (never None for this class); the per-packet
            # path takes no assert, hence the two union-attr ignores.
            if self.esn:
                pt = self._aead.decrypt(  # type: ignore[union-attr]
                    self._salt + esp[8:16], esp[16:], _AAD_ESN.pack(spi, seqh, seq))
            else:
                pt = self._aead.decrypt(  # type: ignore[union-attr]
                    self._salt + esp[8:16], esp[16:], esp[:8])
        except InvalidTag:
            raise self._drop(EspBadAuth(
                f"authentication hash mismatch for packet in SA {self.spi:#010x}",
                seq=seq)) from None
        if self.replay.wsize:
            lock = self._lock
            lock.acquire()
            bad = self.ipsec_updatereplay(seq)
            lock.release()
            if bad:
                self._replay_fail(-1, seq)
        padlen = pt[-2]
        nxt = pt[-1]
        if padlen + 2 > len(pt) or nxt == 59 or (
                padlen and pt[-3] != padlen and self.pmask != _EXT_PRAND):
            payload, nxt = self._trailer_check(pt, seq)
        else:
            payload = pt[:-2 - padlen]
        return payload, nxt, (seqh << 32 | seq) if self.esn else seq


class _EspGmac(EspState):
    """ENCR_NULL_AUTH_AES_GMAC (RFC 4543): payload in clear, ICV = GCM tag over
    AAD = SPI || [seq_hi ||] seq_lo || IV || payload || trailer."""

    __slots__ = ()

    def _setup(self, cipher_key: bytes, auth_key: bytes) -> None:
        self._aead = AESGCM(cipher_key)

    def output(self, payload: bytes | bytearray, nxt: int, *, seq: int | None = None,
               iv: bytes | None = None, skip: int = 20) -> bytes:
        rlen = len(payload)
        padlen = (-(rlen + 2)) & self.blkmask
        self._prologue(rlen, skip, padlen)
        if seq is None:
            seq = self._next_seq()
        if iv is None:
            iv = next(self._cntrgen).to_bytes(8, "big")
        elif len(iv) != 8:
            raise ValueError("the explicit IV is 8 bytes")
        hdr = _HDR.pack(self.spi, seq & M32)
        body = b"".join((iv, payload, self._trailer(padlen, nxt)))
        aad = (_AAD_ESN.pack(self.spi, seq >> 32, seq & M32) if self.esn else hdr) + body
        aead = self._aead
        assert aead is not None
        return hdr + body + aead.encrypt(self._salt + iv, b"", aad)

    def input(self, esp: bytes | bytearray) -> tuple[bytes, int, int]:
        if type(esp) is not bytes:
            esp = bytes(esp)
        seq, plen = self._check_header(esp)
        seqh = self._replay_check(seq) if self._chk else 0
        st = self.stats
        if st is not None:
            st.esps_ibytes += plen
        n = len(esp)
        body = esp[8:n - 16]
        aad = (_AAD_ESN.pack(self.spi, seqh, seq) if self.esn else esp[:8]) + body
        aead = self._aead
        assert aead is not None
        try:
            aead.decrypt(self._salt + esp[8:16], esp[n - 16:], aad)
        except InvalidTag:
            raise self._drop(EspBadAuth(
                f"authentication hash mismatch for packet in SA {self.spi:#010x}",
                seq=seq)) from None
        if self.replay.wsize:
            self._replay_update(seq)
        payload, nxt = self._trailer_check(bytes(body[8:]), seq)
        return payload, nxt, (seqh << 32 | seq) if self.esn else seq


class _EspCipherAuth(EspState):
    """NULL, AES-CBC (RFC 3602) or AES-CTR (RFC 3686) encryption, then an
    optional HMAC (RFC 2404, RFC 4868) or NULL authenticator over the whole
    ESP packet (encrypt-then-authenticate, FreeBSD's CSP_MODE_ETA).

    AES-CBC keeps one encryptor and one decryptor per SA instead of building
    a cipher context per packet (2.5 us each).  Output feeds a fresh random
    block ahead of the payload: its ciphertext E(R xor C_prev) is uniformly
    random and unpredictable, so it serves as the packet's IV (the NIST
    SP 800-38A Appendix C "encrypt a nonce" construction) and the bytes that
    follow are exactly CBC under that IV.  Input feeds IV || ciphertext and
    discards the first block.  Both run under the SA lock.
    """

    __slots__ = ()

    def _setup(self, cipher_key: bytes, auth_key: bytes) -> None:
        kind = self.enc.kind
        if kind in (KIND_CBC, KIND_CTR):
            aes = self._aes = algorithms.AES(cipher_key)
            if kind == KIND_CBC:
                zero = bytes(16)
                self._cbc_enc = Cipher(aes, modes.CBC(zero)).encryptor()
                self._cbc_dec = Cipher(aes, modes.CBC(zero)).decryptor()
        auth = self.auth
        if auth is not None and auth.kind == AUTH_HMAC:
            self._hmac = hmac.new(auth_key, digestmod=getattr(hashlib, auth.hash_name))

    def _encrypt(self, pt: bytes | bytearray, iv: bytes | None) -> bytes | bytearray:
        """IV || ciphertext (NULL: ``pt`` itself, a bytearray if it is one)."""
        kind = self.enc.kind
        if kind == KIND_NULL:
            return pt
        aes = self._aes
        assert aes is not None
        if kind == KIND_CTR:
            if iv is None:
                iv = next(self._cntrgen).to_bytes(8, "big")
            elif len(iv) != 8:
                raise ValueError("the explicit IV is 8 bytes")
            ctr = Cipher(aes, modes.CTR(self._salt + iv + b"\0\0\0\1")).encryptor()
            return iv + ctr.update(pt)
        if iv is not None:
            if len(iv) != 16:
                raise ValueError("the explicit IV is 16 bytes")
            return iv + Cipher(aes, modes.CBC(iv)).encryptor().update(pt)
        lock = self._lock
        lock.acquire()
        try:
            # Only CBC gets here, and _setup built _cbc_enc for every CBC SA.
            return self._cbc_enc.update(self._random(16) + pt)  # type: ignore[union-attr]
        finally:
            lock.release()

    def _decrypt(self, body: bytes | bytearray) -> bytes:
        """body = IV || ciphertext -> plaintext."""
        kind = self.enc.kind
        if kind == KIND_NULL:
            return bytes(body)
        aes = self._aes
        assert aes is not None
        if kind == KIND_CTR:
            ctr = Cipher(aes, modes.CTR(self._salt + bytes(body[:8]) + b"\0\0\0\1")).decryptor()
            return ctr.update(body[8:])
        lock = self._lock
        lock.acquire()
        try:
            # Only CBC gets here, and _setup built _cbc_dec for every CBC SA.
            return self._cbc_dec.update(body)[16:]  # type: ignore[union-attr]
        finally:
            lock.release()

    def _icv(self, data: bytes | bytearray, seqh: int) -> bytes:
        h = self._hmac
        if h is None:                    # NULL auth: auth_hash_null's 12 zeros
            return _ZERO_ICV12
        h = h.copy()
        h.update(data)
        if self.esn:
            h.update(_U32.pack(seqh))    # RFC 4303 §2.2.1: seq_hi after the payload
        return h.digest()[:self.icvlen]

    def output(self, payload: bytes | bytearray, nxt: int, *, seq: int | None = None,
               iv: bytes | None = None, skip: int = 20) -> bytes:
        rlen = len(payload)
        padlen = (-(rlen + 2)) & self.blkmask
        self._prologue(rlen, skip, padlen)
        if seq is None:
            seq = self._next_seq()
        try:
            pt = payload + self._trailer(padlen, nxt)
        except TypeError:
            pt = b"".join((payload, self._trailer(padlen, nxt)))
        out = _HDR.pack(self.spi, seq & M32) + self._encrypt(pt, iv)
        if self.auth is None:
            return out
        return out + self._icv(out, seq >> 32)

    def input(self, esp: bytes | bytearray) -> tuple[bytes, int, int]:
        if type(esp) is not bytes:
            esp = bytes(esp)
        seq, plen = self._check_header(esp)
        seqh = self._replay_check(seq) if self._chk else 0
        st = self.stats
        if st is not None:
            st.esps_ibytes += plen
        n = len(esp)
        alen = self.icvlen
        if self.auth is not None:
            icv = self._icv(esp[:n - alen], seqh)
            if not hmac.compare_digest(icv, esp[n - alen:]):
                raise self._drop(EspBadAuth(
                    f"authentication hash mismatch for packet in SA {self.spi:#010x}",
                    seq=seq))
        if self.replay.wsize:
            self._replay_update(seq)
        pt = self._decrypt(esp[8:n - alen])
        payload, nxt = self._trailer_check(pt, seq)
        if not self.esn:
            return payload, nxt, seq
        if not self._chk and self.replay.wsize:
            seqh = self._seqh_seen(seq)
        return payload, nxt, seqh << 32 | seq


_IMPL.update({
    KIND_GCM: _EspAead, KIND_CHACHA: _EspAead, KIND_GMAC: _EspGmac,
    KIND_CBC: _EspCipherAuth, KIND_CTR: _EspCipherAuth, KIND_NULL: _EspCipherAuth,
})


def _init_kinds() -> None:
    from .xform import SUPPORTED_EALGS
    for alg, x in SUPPORTED_EALGS.items():
        _KIND_OF[int(alg)] = x.kind


_init_kinds()

# The subclasses are reached through EspState(...), never by name.
__all__: list[str] = []
