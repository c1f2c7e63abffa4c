"""Algorithm descriptors: FreeBSD's opencrypto transforms as netipsec sees them.

Models ``sys/opencrypto/xform_enc.h`` (``struct enc_xform``: blocksize,
native_blocksize, ivsize, minkey, maxkey), ``xform_auth.h`` (``struct
auth_hash``: keysize, hashsize), the instances in ``xform_null.c``,
``xform_aes_cbc.c``, ``xform_aes_icm.c`` (AES-CTR and AES-GCM),
``xform_gmac.c`` and ``xform_chacha20_poly1305.c``, the kernel's algorithm
tables ``supported_ealgs`` / ``supported_aalgs`` in ``sys/netipsec/key.c``,
``xform_ah_authsize`` in ``sys/netipsec/xform_ah.c`` and the key rules of
``esp_init`` (``xform_esp.c``) and ``ah_init0`` (``xform_ah.c``).

Rules kept here, all FreeBSD's:

* ESP key material for AES-CTR (RFC 3686 §5.1), AES-GCM (RFC 4106 §8.1) and
  ChaCha20-Poly1305 (RFC 7634 §2) is cipher key || 4-byte salt; the salt is
  subtracted before the [minkey, maxkey] check.  AES-GMAC (RFC 4543 §3.1) has
  the same layout; FreeBSD does not treat it as salted (see ``EncXform.note``).
* The ESP IV on the wire (``sav->ivlen``) is 8 bytes for CTR/GCM/ChaCha (and
  GMAC), otherwise the cipher's ``ivsize`` (16 for CBC, 0 for NULL).
* AES-GCM-16 needs a 16, 24 or 32 byte key and implies the auth algorithm
  AES{128,192,256}GMAC (esp_init overwrites ``alg_auth``); ChaCha20-Poly1305
  implies SADB_X_AALG_CHACHA20POLY1305.
* ICV length (``xform_ah_authsize``): none 0, HMAC-SHA2-* hashsize/2 (RFC 4868
  §2.3), GMAC and Poly1305 hashsize (16), anything else AH_HMAC_HASHLEN = 12
  (HMAC-SHA1-96, RFC 2404; and the NULL auth hash, whose digest is 12 zeros).
* An HMAC key may not be longer than the hash's ``keysize`` (its block size);
  NULL auth takes any key.

Descriptors are immutable values built once at import; nothing here runs per
packet.  Per-SA cipher objects are built by :mod:`ipsec_accel.xform_esp`.
"""

from __future__ import annotations

import errno as _errno
from typing import Final

import attrs
from cryptography.hazmat.primitives import hashes

from pfkey.errors import ReplyError
from pfkey.pfkeyv2 import SADB_AALG, SADB_EALG

# opencrypto sizes (sys/opencrypto/cryptodev.h) used below.
AES_BLOCK_LEN: Final = 16
AES_GCM_IV_LEN: Final = 12
AES_ICM_BLOCK_LEN: Final = 1
NULL_BLOCK_LEN: Final = 4
CHACHA20_NATIVE_BLOCK_LEN: Final = 64
CHACHA20_POLY1305_IV_LEN: Final = 12
AH_HMAC_HASHLEN: Final = 12          # netipsec/xform.h: 96 bits of authenticator
EALG_MAX_BLOCK_LEN: Final = 16       # opencrypto/cryptodev.h
ESP_SALT_LEN: Final = 4              # RFC 3686 §5.1, RFC 4106 §8.1, RFC 7634 §2

# Transform kinds: how xform_esp builds the per-SA cipher state.
KIND_NULL: Final = "null"
KIND_CBC: Final = "cbc"
KIND_CTR: Final = "ctr"
KIND_GCM: Final = "gcm"
KIND_CHACHA: Final = "chacha"
KIND_GMAC: Final = "gmac"
AUTH_HMAC: Final = "hmac"
AUTH_NULL: Final = "null"
AUTH_GMAC: Final = "gmac"
AUTH_POLY1305: Final = "poly1305"


class XformInitError(ReplyError):
    """The SA's algorithms or keys are not acceptable (esp_init / ah_init0).

    key_setsaval turns any transform initialisation failure into EINVAL in the
    error reply, so this is a :class:`pfkey.errors.ReplyError`.
    """

    default_errno = _errno.EINVAL


@attrs.frozen(slots=True)
class EncXform:
    """One ``struct enc_xform`` plus the ESP-specific facts esp_init derives.

    ``blocksize`` is opencrypto's "required input block size" (1 for stream
    ciphers), ``native_blocksize`` the real block of a stream cipher (used by
    esp_output for AES-CTR when net.inet.esp.ctr_compatibility is set).
    ``ivsize`` is the opencrypto IV length; ``esp_ivlen`` is ``sav->ivlen``,
    the IV bytes carried in each ESP packet.  Key lengths are in bytes and
    exclude the salt.
    """

    sadb_alg: int
    name: str                 # setkey(8) name
    ocf_name: str             # opencrypto .name
    kind: str
    blocksize: int
    native_blocksize: int
    ivsize: int
    esp_ivlen: int
    minkey: int
    maxkey: int
    saltlen: int
    macsize: int = 0          # AEAD tag length
    note: str = ""

    @property
    def is_aead(self) -> bool:
        """GCM and ChaCha20-Poly1305: one primitive encrypts and authenticates."""
        return self.kind in (KIND_GCM, KIND_CHACHA)

    @property
    def is_counter(self) -> bool:
        """SAV_ISCTRORGCM || SAV_ISCHACHA: the explicit IV is the per-SA counter."""
        return self.kind in (KIND_CTR, KIND_GCM, KIND_CHACHA, KIND_GMAC)


@attrs.frozen(slots=True)
class AuthHash:
    """One ``struct auth_hash``: ``keysize`` is the longest key accepted (0 = any),
    ``hashsize`` the full digest; ``icvlen`` is xform_ah_authsize()."""

    sadb_alg: int
    name: str
    ocf_name: str
    kind: str
    keysize: int
    hashsize: int
    icvlen: int
    hash_name: str = ""       # hashlib name for HMACs

    def hash_algorithm(self) -> hashes.HashAlgorithm:
        """The cryptography hash behind an HMAC (for callers that want it)."""
        return {"sha1": hashes.SHA1(), "sha256": hashes.SHA256(),
                "sha384": hashes.SHA384(), "sha512": hashes.SHA512()}[self.hash_name]


# --- supported_ealgs (key.c) -------------------------------------------------

ENC_NULL = EncXform(SADB_EALG.NULL, "null", "NULL", KIND_NULL,
                    blocksize=NULL_BLOCK_LEN, native_blocksize=0, ivsize=0,
                    esp_ivlen=0, minkey=0, maxkey=256, saltlen=0)
ENC_AES_CBC = EncXform(SADB_EALG.X_AESCBC, "aes-cbc", "AES-CBC", KIND_CBC,
                       blocksize=AES_BLOCK_LEN, native_blocksize=0,
                       ivsize=AES_BLOCK_LEN, esp_ivlen=AES_BLOCK_LEN,
                       minkey=16, maxkey=32, saltlen=0)
ENC_AES_CTR = EncXform(SADB_EALG.X_AESCTR, "aes-ctr", "AES-ICM", KIND_CTR,
                       blocksize=AES_ICM_BLOCK_LEN, native_blocksize=AES_BLOCK_LEN,
                       ivsize=AES_BLOCK_LEN, esp_ivlen=8,
                       minkey=16, maxkey=32, saltlen=ESP_SALT_LEN)
ENC_AES_GCM16 = EncXform(SADB_EALG.X_AESGCM16, "aes-gcm-16", "AES-GCM", KIND_GCM,
                         blocksize=AES_ICM_BLOCK_LEN, native_blocksize=AES_BLOCK_LEN,
                         ivsize=AES_GCM_IV_LEN, esp_ivlen=8,
                         minkey=16, maxkey=32, saltlen=ESP_SALT_LEN, macsize=16)
ENC_CHACHA20_POLY1305 = EncXform(
    SADB_EALG.X_CHACHA20POLY1305, "chacha20-poly1305", "ChaCha20-Poly1305",
    KIND_CHACHA, blocksize=1, native_blocksize=CHACHA20_NATIVE_BLOCK_LEN,
    ivsize=CHACHA20_POLY1305_IV_LEN, esp_ivlen=8, minkey=32, maxkey=32,
    saltlen=ESP_SALT_LEN, macsize=16)
ENC_AES_GMAC = EncXform(
    SADB_EALG.X_AESGMAC, "aes-gmac", "AES-GMAC", KIND_GMAC,
    blocksize=AES_ICM_BLOCK_LEN, native_blocksize=0, ivsize=AES_GCM_IV_LEN,
    esp_ivlen=8, minkey=16, maxkey=32, saltlen=ESP_SALT_LEN, macsize=16,
    note=("modelled per RFC 4543 (ENCR_NULL_AUTH_AES_GMAC: key||salt, 8-byte IV, "
          "ICV over SPI, seq, IV and the plaintext); FreeBSD lists it in "
          "supported_ealgs but esp_init neither strips its salt nor builds an "
          "AEAD session for it"))

SUPPORTED_EALGS: Final[dict[int, EncXform]] = {
    x.sadb_alg: x for x in (ENC_AES_CBC, ENC_AES_CTR, ENC_AES_GCM16, ENC_AES_GMAC,
                            ENC_NULL, ENC_CHACHA20_POLY1305)
}

# --- supported_aalgs (key.c) -------------------------------------------------

AUTH_HMAC_SHA1 = AuthHash(SADB_AALG.SHA1HMAC, "hmac-sha1", "HMAC-SHA1", AUTH_HMAC,
                          keysize=64, hashsize=20, icvlen=AH_HMAC_HASHLEN,
                          hash_name="sha1")
AUTH_HMAC_SHA2_256 = AuthHash(SADB_AALG.X_SHA2_256, "hmac-sha2-256", "HMAC-SHA2-256",
                              AUTH_HMAC, keysize=64, hashsize=32, icvlen=16,
                              hash_name="sha256")
AUTH_HMAC_SHA2_384 = AuthHash(SADB_AALG.X_SHA2_384, "hmac-sha2-384", "HMAC-SHA2-384",
                              AUTH_HMAC, keysize=128, hashsize=48, icvlen=24,
                              hash_name="sha384")
AUTH_HMAC_SHA2_512 = AuthHash(SADB_AALG.X_SHA2_512, "hmac-sha2-512", "HMAC-SHA2-512",
                              AUTH_HMAC, keysize=128, hashsize=64, icvlen=32,
                              hash_name="sha512")
AUTH_AES128_GMAC = AuthHash(SADB_AALG.X_AES128GMAC, "aes-128-gmac", "GMAC-AES-128",
                            AUTH_GMAC, keysize=16, hashsize=16, icvlen=16)
AUTH_AES192_GMAC = AuthHash(SADB_AALG.X_AES192GMAC, "aes-192-gmac", "GMAC-AES-192",
                            AUTH_GMAC, keysize=24, hashsize=16, icvlen=16)
AUTH_AES256_GMAC = AuthHash(SADB_AALG.X_AES256GMAC, "aes-256-gmac", "GMAC-AES-256",
                            AUTH_GMAC, keysize=32, hashsize=16, icvlen=16)
AUTH_CHACHA20_POLY1305 = AuthHash(SADB_AALG.X_CHACHA20POLY1305, "chacha20-poly1305",
                                  "ChaCha20-Poly1305", AUTH_POLY1305,
                                  keysize=32, hashsize=16, icvlen=16)
# auth_hash_null: keysize 0 (any key), its Final writes 12 zero bytes and
# xform_ah_authsize gives AH_HMAC_HASHLEN for it.
AUTH_NULL_HMAC = AuthHash(SADB_AALG.X_NULL, "null", "NULL-HMAC", AUTH_NULL,
                          keysize=0, hashsize=16, icvlen=AH_HMAC_HASHLEN)

SUPPORTED_AALGS: Final[dict[int, AuthHash]] = {
    x.sadb_alg: x for x in (AUTH_NULL_HMAC, AUTH_HMAC_SHA1, AUTH_HMAC_SHA2_256,
                            AUTH_HMAC_SHA2_384, AUTH_HMAC_SHA2_512, AUTH_AES128_GMAC,
                            AUTH_AES192_GMAC, AUTH_AES256_GMAC, AUTH_CHACHA20_POLY1305)
}

_GMAC_BY_KEYLEN: Final[dict[int, AuthHash]] = {
    16: AUTH_AES128_GMAC, 24: AUTH_AES192_GMAC, 32: AUTH_AES256_GMAC}


def enc_algorithm_lookup(alg: int) -> EncXform | None:
    """key.c enc_algorithm_lookup: the kernel's transform for an SADB_EALG id."""
    return SUPPORTED_EALGS.get(alg)


def auth_algorithm_lookup(alg: int) -> AuthHash | None:
    """key.c auth_algorithm_lookup: the kernel's hash for an SADB_AALG id."""
    return SUPPORTED_AALGS.get(alg)


def xform_ah_authsize(auth: AuthHash | None) -> int:
    """xform_ah.c xform_ah_authsize: the ICV length an auth hash puts on the wire."""
    return 0 if auth is None else auth.icvlen


@attrs.frozen(slots=True)
class EspAlgorithms:
    """What esp_init settles for one SA: the transforms, the split keys and the
    auth algorithm id the kernel stores (GCM/ChaCha overwrite ``alg_auth``)."""

    enc: EncXform
    auth: AuthHash | None
    cipher_key: bytes
    salt: bytes
    auth_key: bytes
    alg_auth: int

    @property
    def icvlen(self) -> int:
        """ICV bytes per packet (xform_ah_authsize of the effective auth hash)."""
        if self.enc.kind == KIND_GMAC:
            return self.enc.macsize
        return xform_ah_authsize(self.auth)


def esp_init_algorithms(enc_alg: int, enc_key: bytes, auth_alg: int = SADB_AALG.NONE,
                        auth_key: bytes = b"") -> EspAlgorithms:
    """Validate an ESP SA's algorithms and keys the way esp_init/ah_init0 do.

    Raises :class:`XformInitError` (EINVAL) for an unsupported algorithm, a key
    of the wrong length, an auth algorithm given with an AEAD cipher that
    implies its own, or an auth algorithm without a key (NULL excepted).
    """
    enc = enc_algorithm_lookup(enc_alg)
    if enc is None:
        raise XformInitError(f"unsupported encryption algorithm {enc_alg}")
    enc_key = bytes(enc_key)
    keylen = len(enc_key) - enc.saltlen
    if keylen < enc.minkey or keylen > enc.maxkey:
        raise XformInitError(
            f"invalid key length {max(keylen, 0)}, must be in the range "
            f"[{enc.minkey}..{enc.maxkey}] for algorithm {enc.ocf_name}")
    if enc.kind in (KIND_CBC, KIND_CTR, KIND_GCM, KIND_GMAC) and keylen not in (16, 24, 32):
        # In range for esp_init, but the AES key schedule (crypto_newsession ->
        # the driver's setkey) only takes 128, 192 or 256 bits.
        raise XformInitError(f"invalid AES key length {keylen} for {enc.ocf_name}")
    cipher_key = enc_key[:keylen]
    salt = enc_key[keylen:]
    auth: AuthHash | None
    if enc.kind in (KIND_GCM, KIND_GMAC):
        # esp_init: "Whenever AES-GCM is used for encryption, one of the AES
        # authentication algorithms is chosen as well, based on the key size."
        gmac = _GMAC_BY_KEYLEN.get(keylen)
        if gmac is None:
            raise XformInitError(f"invalid key length {keylen} for algorithm {enc.ocf_name}")
        if auth_alg not in (SADB_AALG.NONE, gmac.sadb_alg):
            raise XformInitError(
                f"{enc.name} implies {gmac.ocf_name}; auth algorithm {auth_alg} not allowed")
        auth = None if enc.kind == KIND_GMAC else gmac
        return EspAlgorithms(enc, auth, cipher_key, salt, b"", gmac.sadb_alg)
    if enc.kind == KIND_CHACHA:
        if auth_alg not in (SADB_AALG.NONE, SADB_AALG.X_CHACHA20POLY1305):
            raise XformInitError(
                f"{enc.name} implies Poly1305; auth algorithm {auth_alg} not allowed")
        return EspAlgorithms(enc, AUTH_CHACHA20_POLY1305, cipher_key, salt, b"",
                             SADB_AALG.X_CHACHA20POLY1305)
    if auth_alg == SADB_AALG.NONE:
        return EspAlgorithms(enc, None, cipher_key, salt, b"", SADB_AALG.NONE)
    auth = auth_algorithm_lookup(auth_alg)
    if auth is None or auth.kind not in (AUTH_HMAC, AUTH_NULL):
        # GMAC and Poly1305 exist only as the implied halves of AEAD ciphers.
        raise XformInitError(f"unsupported authentication algorithm {auth_alg}")
    auth_key = bytes(auth_key)
    if auth.kind == AUTH_HMAC and not auth_key:
        raise XformInitError(f"no authentication key for {auth.ocf_name} algorithm")
    if auth.keysize != 0 and len(auth_key) > auth.keysize:
        raise XformInitError(
            f"invalid keylength {len(auth_key)}, algorithm {auth.ocf_name} requires "
            f"keysize less than {auth.keysize}")
    return EspAlgorithms(enc, auth, cipher_key, salt, auth_key, auth.sadb_alg)


__all__ = [
    "AES_BLOCK_LEN", "AES_GCM_IV_LEN", "AH_HMAC_HASHLEN", "EALG_MAX_BLOCK_LEN",
    "ESP_SALT_LEN", "NULL_BLOCK_LEN", "KIND_NULL", "KIND_CBC", "KIND_CTR", "KIND_GCM",
    "KIND_CHACHA", "KIND_GMAC", "AUTH_HMAC", "AUTH_NULL", "AUTH_GMAC", "AUTH_POLY1305",
    "XformInitError", "EncXform", "AuthHash", "EspAlgorithms",
    "ENC_NULL", "ENC_AES_CBC", "ENC_AES_CTR", "ENC_AES_GCM16", "ENC_CHACHA20_POLY1305",
    "ENC_AES_GMAC", "AUTH_HMAC_SHA1", "AUTH_HMAC_SHA2_256", "AUTH_HMAC_SHA2_384",
    "AUTH_HMAC_SHA2_512", "AUTH_AES128_GMAC", "AUTH_AES192_GMAC", "AUTH_AES256_GMAC",
    "AUTH_CHACHA20_POLY1305", "AUTH_NULL_HMAC", "SUPPORTED_EALGS", "SUPPORTED_AALGS",
    "enc_algorithm_lookup", "auth_algorithm_lookup", "xform_ah_authsize",
    "esp_init_algorithms",
]
