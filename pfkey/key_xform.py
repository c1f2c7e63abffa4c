"""The kernel's algorithm tables and transform initialisation checks.

Models what key.c consults through ``supported_ealgs`` / ``supported_aalgs``
/ ``supported_calgs`` (``enc_algorithm_lookup`` ...) and the parts of
``xform_init`` (xform_esp.c ``esp_init``, xform_ah.c ``ah_init0``,
xform_ipcomp.c ``ipcomp_init``, xform_tcp.c ``tcpsignature_init``) that can
refuse an SA.  Every refusal is EINVAL.  Also ``key_getsizes_ah``, the
SADB_REGISTER supported lists and the SADB_ACQUIRE proposal combinations
(key_getcomb_ealg / _ah / _ipcomp, key_getcomb_setlifetime).

Sizes come from opencrypto's transform descriptors (bytes): ``minkey`` /
``maxkey`` / ``ivsize`` for ciphers, ``keysize`` / ``hashsize`` for hashes
(reference pfkey_setkey_reference.md §A.6, §B.2 REGISTER and key_setsaval).
"""

from __future__ import annotations

import errno as _errno
from typing import Callable, NamedTuple, Optional

from .extensions import SadbAlg, SadbComb
from .ipsec import IPPROTO_AH, IPPROTO_ESP, IPPROTO_IPCOMP
from .keydb import secasvar
from .pfkeyv2 import SADB_AALG, SADB_EALG, SADB_SAFLAGS, SADB_SATYPE, SADB_X_CALG


class enc_xform(NamedTuple):
    name: str
    ivsize: int
    minkey: int
    maxkey: int


class auth_hash(NamedTuple):
    name: str
    keysize: int
    hashsize: int


#: supported_ealgs (key.c) with opencrypto's enc_xform sizes.
ENC_XFORMS: dict[int, enc_xform] = {
    SADB_EALG.NULL: enc_xform("NULL", 0, 0, 256),
    SADB_EALG.X_AESCBC: enc_xform("AES-CBC", 16, 16, 32),
    SADB_EALG.X_AESCTR: enc_xform("AES-ICM", 16, 16, 32),
    SADB_EALG.X_CHACHA20POLY1305: enc_xform("ChaCha20-Poly1305", 12, 32, 32),
    SADB_EALG.X_AESGCM16: enc_xform("AES-GCM", 12, 16, 32),
    SADB_EALG.X_AESGMAC: enc_xform("AES-GMAC", 12, 16, 32),
}

#: supported_aalgs (key.c) with opencrypto's auth_hash sizes.
AUTH_HASHES: dict[int, auth_hash] = {
    SADB_AALG.SHA1HMAC: auth_hash("HMAC-SHA1", 64, 20),
    SADB_AALG.X_SHA2_256: auth_hash("HMAC-SHA2-256", 64, 32),
    SADB_AALG.X_SHA2_384: auth_hash("HMAC-SHA2-384", 128, 48),
    SADB_AALG.X_SHA2_512: auth_hash("HMAC-SHA2-512", 128, 64),
    SADB_AALG.X_AES128GMAC: auth_hash("GMAC-AES-128", 16, 16),
    SADB_AALG.X_AES192GMAC: auth_hash("GMAC-AES-192", 24, 16),
    SADB_AALG.X_AES256GMAC: auth_hash("GMAC-AES-256", 32, 16),
    SADB_AALG.X_CHACHA20POLY1305: auth_hash("Poly-1305", 32, 16),
    SADB_AALG.X_NULL: auth_hash("NULL-HMAC", 0, 16),
}

#: supported_calgs (key.c).
COMP_ALGOS: dict[int, str] = {SADB_X_CALG.DEFLATE: "deflate"}

TCP_KEYLEN_MIN = 1
TCP_KEYLEN_MAX = 80

_GCM = frozenset({int(SADB_EALG.X_AESGCM8), int(SADB_EALG.X_AESGCM12),
                  int(SADB_EALG.X_AESGCM16)})
_F_OLD = int(SADB_SAFLAGS.X_EXT_OLD)
_F_IV4B = int(SADB_SAFLAGS.X_EXT_IV4B)
_F_OLD_IV4B = _F_OLD | _F_IV4B
_EALG_AESCTR = int(SADB_EALG.X_AESCTR)
_EALG_CHACHA = int(SADB_EALG.X_CHACHA20POLY1305)
_EALG_GCM16 = int(SADB_EALG.X_AESGCM16)
_GMAC_BY_KEYLEN = {16: SADB_AALG.X_AES128GMAC, 24: SADB_AALG.X_AES192GMAC,
                   32: SADB_AALG.X_AES256GMAC}


def enc_algorithm_lookup(alg: int) -> Optional[enc_xform]:
    return ENC_XFORMS.get(alg)


def auth_algorithm_lookup(alg: int) -> Optional[auth_hash]:
    return AUTH_HASHES.get(alg)


def key_getsizes_ah(alg: int, ah: auth_hash) -> tuple[int, int]:
    """(min, max) key size in bytes advertised for an auth algorithm."""
    lo = hi = ah.hashsize
    if ah.keysize == 0:
        if alg == SADB_AALG.X_NULL:
            lo, hi = 1, 256
        elif alg == SADB_AALG.X_SHA2_256:
            lo = hi = 32
        elif alg == SADB_AALG.X_SHA2_384:
            lo = hi = 48
        elif alg == SADB_AALG.X_SHA2_512:
            lo = hi = 64
    return lo, hi


# ---------------------------------------------------------------------------
# xform_init
# ---------------------------------------------------------------------------

def ah_init0(sav: secasvar) -> int:
    """xform_ah.c ah_init0: the auth half of AH and ESP."""
    thash = AUTH_HASHES.get(sav.alg_auth)
    if thash is None:
        return _errno.EINVAL
    # The replay block must exist exactly when the SA is not "old" style.
    if ((sav.flags & _F_OLD) == 0) ^ (sav.replay is not None):
        return _errno.EINVAL
    if sav.key_auth is None:
        return _errno.EINVAL
    # FreeBSD main accepts keys up to the hash's key size (HMAC keys may be
    # shorter than a block); keysize 0 (NULL) accepts any length.
    if thash.keysize != 0 and sav.key_auth.keylen > thash.keysize:
        return _errno.EINVAL
    return 0


def esp_init(sav: secasvar) -> int:
    """xform_esp.c esp_init: cipher key length, optional auth, AEAD auth id."""
    txform = ENC_XFORMS.get(sav.alg_enc)
    if txform is None:
        return _errno.EINVAL
    if sav.key_enc is None:
        return _errno.EINVAL
    if (sav.flags & _F_OLD_IV4B) == _F_IV4B:
        return _errno.EINVAL
    ctr_or_gcm = sav.alg_enc == _EALG_AESCTR or sav.alg_enc in _GCM
    chacha = sav.alg_enc == _EALG_CHACHA
    # RFC 4106 / 3686 / 7634: the last 4 bytes of the key are the salt.
    keylen = sav.key_enc.keylen - 4 * ctr_or_gcm - 4 * chacha
    if keylen < txform.minkey or keylen > txform.maxkey:
        return _errno.EINVAL
    sav.ivlen = 8 if (ctr_or_gcm or chacha) else txform.ivsize
    if sav.alg_auth != 0:
        err = ah_init0(sav)
        if err:
            return err
    if sav.alg_enc == _EALG_GCM16:
        gmac = _GMAC_BY_KEYLEN.get(keylen)
        if gmac is None:
            return _errno.EINVAL
        sav.alg_auth = int(gmac)
    elif chacha:
        sav.alg_auth = int(SADB_AALG.X_CHACHA20POLY1305)
    return 0


def ipcomp_init(sav: secasvar) -> int:
    """xform_ipcomp.c ipcomp_init: the "encryption" id names the compressor."""
    if sav.alg_enc not in COMP_ALGOS:
        return _errno.EINVAL
    sav.alg_comp = sav.alg_enc
    return 0


def tcpsignature_init(sav: secasvar) -> int:
    """xform_tcp.c tcpsignature_init: TCP-MD5 with a 1..80 byte key."""
    if sav.alg_auth != SADB_AALG.X_TCP_MD5:
        return _errno.EINVAL
    if sav.key_auth is None:
        return _errno.EINVAL
    n = sav.key_auth.keylen
    if n < TCP_KEYLEN_MIN or n > TCP_KEYLEN_MAX:
        return _errno.EINVAL
    return 0


_XFORM_INIT: dict[int, tuple[str, Callable[[secasvar], int]]] = {
    SADB_SATYPE.AH: ("ah", ah_init0),
    SADB_SATYPE.ESP: ("esp", esp_init),
    SADB_SATYPE.X_IPCOMP: ("ipcomp", ipcomp_init),
    SADB_SATYPE.X_TCPSIGNATURE: ("tcp-md5", tcpsignature_init),
}


def xform_init(sav: secasvar, satype: int) -> int:
    """xform_init: run the transform's init; on success record it."""
    entry = _XFORM_INIT.get(satype)
    if entry is None:
        return _errno.EINVAL
    name, init = entry
    err = init(sav)
    if err == 0:
        sav.tdb_xform = name
    return err


# ---------------------------------------------------------------------------
# SADB_REGISTER and SADB_ACQUIRE contents
# ---------------------------------------------------------------------------

def supported_auth() -> tuple[SadbAlg, ...]:
    """SUPPORTED_AUTH of key_register: id ascending, sizes in bits."""
    out = []
    for alg in sorted(AUTH_HASHES):
        lo, hi = key_getsizes_ah(alg, AUTH_HASHES[alg])
        out.append(SadbAlg(int(alg), 0, lo << 3, hi << 3))
    return tuple(out)


def supported_encrypt() -> tuple[SadbAlg, ...]:
    """SUPPORTED_ENCRYPT of key_register: id ascending, ivlen, sizes in bits."""
    return tuple(SadbAlg(int(alg), x.ivsize, x.minkey << 3, x.maxkey << 3)
                 for alg, x in sorted(ENC_XFORMS.items()))


def _comb(**fields: int) -> SadbComb:
    # key_getcomb_setlifetime: soft_addtime and hard_usetime are computed
    # from themselves (80% of 0) and come out as 0.
    return SadbComb(soft_allocations=1, hard_allocations=1, hard_addtime=86400,
                    soft_usetime=28800, **fields)


def key_getcomb_ah(ah_keymin: int) -> list[SadbComb]:
    """HMAC algorithms only, each prepended (so descending ids)."""
    out: list[SadbComb] = []
    for alg in (SADB_AALG.SHA1HMAC, SADB_AALG.X_SHA2_256, SADB_AALG.X_SHA2_384,
                SADB_AALG.X_SHA2_512):
        ah = AUTH_HASHES.get(alg)
        if ah is None:
            continue
        lo, hi = key_getsizes_ah(alg, ah)
        if (lo << 3) < ah_keymin:
            continue
        out.insert(0, _comb(auth=int(alg), auth_minbits=lo << 3, auth_maxbits=hi << 3))
    return out


def key_getcomb_ealg(esp_keymin: int, esp_auth: int, ah_keymin: int) -> list[SadbComb]:
    """Every cipher whose largest key reaches ``esp_keymin`` bits."""
    out: list[SadbComb] = []
    for alg in sorted(ENC_XFORMS):
        x = ENC_XFORMS[alg]
        if (x.maxkey << 3) < esp_keymin:
            continue
        encmin = max(x.minkey << 3, esp_keymin)
        n = len(key_getcomb_ah(ah_keymin)) if esp_auth else 1
        # With esp_auth the AH combinations are reused but zeroed before the
        # cipher is written into them (key.c bzero()s each comb), so they
        # lose their auth fields: n identical combinations.
        out.extend(_comb(encrypt=int(alg), encrypt_minbits=encmin,
                         encrypt_maxbits=x.maxkey << 3) for _ in range(n))
    return out


def key_getcomb_ipcomp() -> list[SadbComb]:
    out: list[SadbComb] = []
    for alg in range(1, SADB_X_CALG.LZS + 2):
        if alg in COMP_ALGOS:
            out.insert(0, _comb(encrypt=alg))
    return out


def key_getprop_combs(proto: int, esp_keymin: int, esp_auth: int,
                      ah_keymin: int) -> Optional[list[SadbComb]]:
    """key_getprop's combinations, or None when no proposal is attached."""
    if proto == IPPROTO_ESP:
        combs = key_getcomb_ealg(esp_keymin, esp_auth, ah_keymin)
    elif proto == IPPROTO_AH:
        combs = key_getcomb_ah(ah_keymin)
    elif proto == IPPROTO_IPCOMP:
        combs = key_getcomb_ipcomp()
    else:
        return None
    return combs or None


__all__ = [
    "enc_xform", "auth_hash", "ENC_XFORMS", "AUTH_HASHES", "COMP_ALGOS",
    "enc_algorithm_lookup", "auth_algorithm_lookup", "key_getsizes_ah", "ah_init0",
    "esp_init", "ipcomp_init", "tcpsignature_init", "xform_init", "supported_auth",
    "supported_encrypt", "key_getcomb_ah", "key_getcomb_ealg", "key_getcomb_ipcomp",
    "key_getprop_combs",
]
