"""The ESP transform: algorithms and keys (xform.py), esp_output / esp_input,
padding, the anti-replay window with ESN, sequence wrap, sizes, transport,
tunnel and NAT-T helpers (xform_esp.py).

Each test's docstring names the RFC section or FreeBSD function it checks.
"""

from __future__ import annotations

import errno
import os
import threading
from typing import Any

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from hypothesis import given, settings
from hypothesis import strategies as st

from ipsec_accel import packet as P
from ipsec_accel import xform as X
from ipsec_accel import esp_encap as EN
from ipsec_accel import xform_esp as XE
from ipsec_accel.xform_esp import EspState, EspStat
from pfkey.errors import ReplyError
from pfkey.ipsec import IPSEC_MODE
from pfkey.pfkeyv2 import AF_INET6, SADB_AALG, SADB_EALG, SADB_SAFLAGS

ESN = int(SADB_SAFLAGS.X_SAFLAGS_ESN)
CYCSEQ = int(SADB_SAFLAGS.X_EXT_CYCSEQ)
PRAND = int(SADB_SAFLAGS.X_EXT_PRAND)
PZERO = int(SADB_SAFLAGS.X_EXT_PZERO)
SPI = 0x12345678
GCM_KEY = bytes(range(16)) + b"salt"

# (enc, enc key, auth, auth key) for every supported combination family.
SUITES: dict[str, tuple[int, bytes, int, bytes]] = {
    "null-sha256": (SADB_EALG.NULL, b"", SADB_AALG.X_SHA2_256, bytes(32)),
    "null-nullauth": (SADB_EALG.NULL, b"", SADB_AALG.X_NULL, b""),
    "cbc128": (SADB_EALG.X_AESCBC, bytes(range(16)), SADB_AALG.NONE, b""),
    "cbc128-sha1": (SADB_EALG.X_AESCBC, bytes(range(16)), SADB_AALG.SHA1HMAC, bytes(20)),
    "cbc256-sha256": (SADB_EALG.X_AESCBC, bytes(range(32)), SADB_AALG.X_SHA2_256,
                      bytes(range(32))),
    "cbc192-sha384": (SADB_EALG.X_AESCBC, bytes(range(24)), SADB_AALG.X_SHA2_384, bytes(48)),
    "cbc128-sha512": (SADB_EALG.X_AESCBC, bytes(range(16)), SADB_AALG.X_SHA2_512, bytes(64)),
    "ctr128-sha256": (SADB_EALG.X_AESCTR, bytes(range(20)), SADB_AALG.X_SHA2_256, bytes(32)),
    "ctr256": (SADB_EALG.X_AESCTR, bytes(range(36)), SADB_AALG.NONE, b""),
    "gcm128": (SADB_EALG.X_AESGCM16, bytes(range(20)), SADB_AALG.NONE, b""),
    "gcm192": (SADB_EALG.X_AESGCM16, bytes(range(28)), SADB_AALG.NONE, b""),
    "gcm256": (SADB_EALG.X_AESGCM16, bytes(range(36)), SADB_AALG.NONE, b""),
    "gmac128": (SADB_EALG.X_AESGMAC, bytes(range(20)), SADB_AALG.NONE, b""),
    "gmac256": (SADB_EALG.X_AESGMAC, bytes(range(36)), SADB_AALG.NONE, b""),
    "chacha": (SADB_EALG.X_CHACHA20POLY1305, bytes(range(36)), SADB_AALG.NONE, b""),
}


def pair(suite: str = "gcm128", *, flags: int = 0, replay: int = 4,
         **kw: Any) -> tuple[EspState, EspState]:
    """A sender and a receiver for one SA."""
    enc, ek, auth, ak = SUITES[suite]
    tx = EspState(SPI, enc, ek, auth, ak, flags=flags, **kw)
    rx = EspState(SPI, enc, ek, auth, ak, flags=flags, replay=replay, **kw)
    return tx, rx


def gcm(flags: int = 0, replay: int = 4, stats: EspStat | None = None) -> EspState:
    return EspState(SPI, SADB_EALG.X_AESGCM16, GCM_KEY, flags=flags, replay=replay, stats=stats)


def gcm_plaintext(esp: bytes) -> bytes:
    """Open a non-ESN GCM packet by hand (independent of EspState.input)."""
    return AESGCM(GCM_KEY[:16]).decrypt(GCM_KEY[16:] + esp[8:16], esp[16:], esp[:8])


# --- algorithms and keys (xform.py) -----------------------------------------------------------

@pytest.mark.parametrize("enc,good,bad", [
    (SADB_EALG.X_AESCBC, [16, 24, 32], [0, 15, 20, 33]),
    (SADB_EALG.X_AESCTR, [20, 28, 36], [16, 19, 40]),
    (SADB_EALG.X_AESGCM16, [20, 28, 36], [16, 21, 30, 40]),
    (SADB_EALG.X_AESGMAC, [20, 28, 36], [16, 25]),
    (SADB_EALG.X_CHACHA20POLY1305, [36], [32, 20, 40]),
    (SADB_EALG.NULL, [0, 1, 256], [257]),
])
def test_enc_key_lengths(enc: int, good: list[int], bad: list[int]) -> None:
    """esp_init: key length minus the 4-byte salt (RFC 3686 §5.1, RFC 4106 §8.1,
    RFC 7634 §2) must lie in [minkey, maxkey]; AES-GCM needs 16/24/32."""
    for n in good:
        EspState(1, enc, bytes(n))
    for n in bad:
        with pytest.raises(X.XformInitError) as ei:
            EspState(1, enc, bytes(n))
        assert ei.value.errno == errno.EINVAL and isinstance(ei.value, ReplyError)


def test_unsupported_algorithms() -> None:
    """key.c supported_ealgs/aalgs: DES, 3DES, Blowfish, MD5 ... are not there;
    GMAC and Poly1305 exist only as the implied halves of AEAD ciphers."""
    for alg in (SADB_EALG.DESCBC, SADB_EALG._3DESCBC, SADB_EALG.X_BLOWFISHCBC, 99):
        with pytest.raises(X.XformInitError):
            EspState(1, alg, bytes(16))
    for aalg in (SADB_AALG.MD5HMAC, SADB_AALG.X_RIPEMD160HMAC, SADB_AALG.X_AES128GMAC):
        with pytest.raises(X.XformInitError):
            EspState(1, SADB_EALG.X_AESCBC, bytes(16), aalg, bytes(16))


def test_aead_implies_auth() -> None:
    """esp_init: AES-GCM-16 sets alg_auth to AES{128,192,256}GMAC by key size,
    ChaCha20-Poly1305 to SADB_X_AALG_CHACHA20POLY1305; another auth is refused."""
    assert EspState(1, SADB_EALG.X_AESGCM16, bytes(20)).alg_auth == SADB_AALG.X_AES128GMAC
    assert EspState(1, SADB_EALG.X_AESGCM16, bytes(28)).alg_auth == SADB_AALG.X_AES192GMAC
    assert EspState(1, SADB_EALG.X_AESGCM16, bytes(36)).alg_auth == SADB_AALG.X_AES256GMAC
    assert (EspState(1, SADB_EALG.X_CHACHA20POLY1305, bytes(36)).alg_auth
            == SADB_AALG.X_CHACHA20POLY1305)
    with pytest.raises(X.XformInitError):
        EspState(1, SADB_EALG.X_AESGCM16, bytes(20), SADB_AALG.SHA1HMAC, bytes(20))
    with pytest.raises(X.XformInitError):
        EspState(1, SADB_EALG.X_CHACHA20POLY1305, bytes(36), SADB_AALG.X_SHA2_256, bytes(32))


def test_auth_keys() -> None:
    """ah_init0: an HMAC key may not exceed the hash's keysize (its block: 64 for
    SHA-1/SHA-256, 128 for SHA-384/512); a key is required; NULL takes any."""
    EspState(1, SADB_EALG.X_AESCBC, bytes(16), SADB_AALG.SHA1HMAC, bytes(64))
    EspState(1, SADB_EALG.X_AESCBC, bytes(16), SADB_AALG.X_SHA2_512, bytes(128))
    for aalg, n in ((SADB_AALG.SHA1HMAC, 65), (SADB_AALG.X_SHA2_256, 65),
                    (SADB_AALG.X_SHA2_384, 129), (SADB_AALG.SHA1HMAC, 0)):
        with pytest.raises(X.XformInitError):
            EspState(1, SADB_EALG.X_AESCBC, bytes(16), aalg, bytes(n))
    EspState(1, SADB_EALG.NULL, b"", SADB_AALG.X_NULL, bytes(300))


@pytest.mark.parametrize("suite,icv,ivlen", [
    ("null-sha256", 16, 0), ("null-nullauth", 12, 0), ("cbc128", 0, 16),
    ("cbc128-sha1", 12, 16), ("cbc192-sha384", 24, 16), ("cbc128-sha512", 32, 16),
    ("ctr128-sha256", 16, 8), ("gcm256", 16, 8), ("gmac128", 16, 8), ("chacha", 16, 8),
])
def test_icv_and_iv_lengths(suite: str, icv: int, ivlen: int) -> None:
    """xform_ah_authsize (HMAC-SHA1-96 RFC 2404, HMAC-SHA2 half the hash RFC 4868
    §2.3, GMAC/Poly1305 16, NULL 12) and sav->ivlen (8 for counter modes)."""
    tx, _ = pair(suite)
    assert (tx.icvlen, tx.ivlen) == (icv, ivlen)


def test_flags_refused() -> None:
    """esp_init: IV4B without OLD is EINVAL; old (RFC 1827) ESP is not modelled."""
    with pytest.raises(X.XformInitError):
        EspState(1, SADB_EALG.X_AESCBC, bytes(16), flags=int(SADB_SAFLAGS.X_EXT_IV4B))
    with pytest.raises(X.XformInitError):
        EspState(1, SADB_EALG.X_AESCBC, bytes(16), flags=int(SADB_SAFLAGS.X_EXT_OLD))
    with pytest.raises(X.XformInitError):
        EspState(1 << 32, SADB_EALG.X_AESCBC, bytes(16))


def test_descriptors() -> None:
    """opencrypto enc_xform facts: blocksize 1 and native 16 for CTR/GCM, 64 for
    ChaCha, NULL blocksize 4 (ESP alignment), CBC 16."""
    assert (X.ENC_AES_CTR.blocksize, X.ENC_AES_CTR.native_blocksize) == (1, 16)
    assert (X.ENC_AES_GCM16.blocksize, X.ENC_AES_GCM16.ivsize) == (1, 12)
    assert X.ENC_CHACHA20_POLY1305.native_blocksize == 64
    assert (X.ENC_NULL.blocksize, X.ENC_AES_CBC.blocksize) == (4, 16)
    assert X.enc_algorithm_lookup(SADB_EALG.X_AESGCM16) is X.ENC_AES_GCM16
    assert X.auth_algorithm_lookup(SADB_AALG.X_SHA2_256) is X.AUTH_HMAC_SHA2_256
    assert X.xform_ah_authsize(None) == 0
    assert type(EspState(1, SADB_EALG.X_AESGCM16, bytes(20))).__name__ == "_EspAead"
    assert "aes-gcm-16" in repr(EspState(1, SADB_EALG.X_AESGCM16, bytes(20)))


# --- round trips --------------------------------------------------------------------------------

@pytest.mark.parametrize("suite", sorted(SUITES))
@pytest.mark.parametrize("esn", [False, True])
def test_round_trip(suite: str, esn: bool) -> None:
    """esp_output then esp_input for every algorithm, with and without ESN
    (RFC 4304), payloads of every residue and up to a full packet."""
    tx, rx = pair(suite, flags=ESN if esn else 0)
    for n in (0, 1, 2, 3, 4, 15, 16, 17, 63, 64, 100, 1380):
        payload = os.urandom(n)
        esp = tx.output(payload, 6)
        assert len(esp) % 4 == 0                      # RFC 4303 §2.4
        assert len(esp) == tx.output_size(n + 20, 20) - 20
        assert rx.input(esp) == (payload, 6, tx.count)
    assert rx.count == tx.count == 12


def test_input_accepts_buffers() -> None:
    """Payloads and packets may be bytes, bytearray or memoryview."""
    tx, rx = pair("cbc128-sha1")
    esp = tx.output(bytearray(b"abc"), 17)
    assert rx.input(memoryview(esp))[0] == b"abc"
    tx2, rx2 = pair("gcm128")
    esp2 = tx2.output(memoryview(b"xyz"), 17)
    assert rx2.input(bytearray(esp2))[0] == b"xyz"


def test_counters_and_explicit_values() -> None:
    """esp_output: replay->count++ and sav->cntr++ per packet (the first GCM
    packet is seq 1 with IV 0); explicit seq/IV leave both untouched."""
    sa = gcm()
    first = sa.output(b"x", 17)
    assert first[4:8] == (1).to_bytes(4, "big") and first[8:16] == bytes(8)
    second = sa.output(b"x", 17)
    assert second[4:8] == (2).to_bytes(4, "big") and second[8:16] == (1).to_bytes(8, "big")
    sa.output(b"x", 17, seq=99, iv=b"\xee" * 8)
    assert (sa.count, sa.cntr) == (2, 2)
    sa.count, sa.cntr = 41, 7
    third = sa.output(b"x", 17)
    assert third[4:8] == (42).to_bytes(4, "big") and third[8:16] == (7).to_bytes(8, "big")
    with pytest.raises(ValueError):
        sa.output(b"x", 17, iv=b"short")


def test_cbc_iv_random_and_unique() -> None:
    """RFC 3602 §2.1: CBC IVs are unpredictable; each packet carries a new one."""
    tx, rx = pair("cbc128-sha1")
    ivs = {tx.output(b"same", 17)[8:24] for _ in range(200)}
    assert len(ivs) == 200


# --- padding (esp_output, esp_input_cb) -----------------------------------------------------------

@pytest.mark.parametrize("n", range(8))
def test_padding_self_describing(n: int) -> None:
    """RFC 4303 §2.4 / esp_output SADB_X_EXT_PSEQ (default): padding 1, 2, 3 ...
    to a 4-byte multiple for GCM, then pad length and next header."""
    pt = gcm_plaintext(gcm().output(bytes(n), 17))
    padlen = (4 - (n + 2) % 4) % 4
    assert pt == bytes(n) + bytes(range(1, padlen + 1)) + bytes((padlen, 17))


@pytest.mark.parametrize("suite,blks", [
    ("gcm128", 4), ("chacha", 4), ("gmac128", 4), ("null-sha256", 4), ("cbc128", 16),
    ("ctr256", 16),
])
def test_padding_block(suite: str, blks: int) -> None:
    """esp_output: blks = max(4, blocksize), max(4, native_blocksize) for AES-CTR
    with net.inet.esp.ctr_compatibility (default 1)."""
    tx, _ = pair(suite)
    assert tx.blks == blks
    for n in range(40):
        body = len(tx.output(bytes(n), 17)) - 8 - tx.ivlen - tx.icvlen
        assert body % blks == 0 and body - n - 2 < blks


def test_ctr_without_compatibility_pads_to_four() -> None:
    """net.inet.esp.ctr_compatibility=0: AES-CTR pads only to 4 bytes (RFC 3686 §3.2)."""
    tx, rx = pair("ctr256", ctr_compatibility=False)
    esp = tx.output(bytes(5), 17)
    assert len(esp) == 8 + 8 + 8
    assert rx.input(esp)[0] == bytes(5)


def test_padding_zero() -> None:
    """SADB_X_EXT_PZERO pads with zeros; FreeBSD's esp_input_cb then drops it as
    esps_badenc unless the receiving SA is PRAND or the pad length is 0."""
    tx = gcm(flags=PZERO)
    esp = tx.output(b"abc", 17)                   # 3 + 2 -> 3 pad bytes
    assert gcm_plaintext(esp) == b"abc" + bytes(3) + b"\x03\x11"
    with pytest.raises(XE.EspBadEnc):
        gcm(flags=PZERO).input(esp)
    assert gcm(flags=PRAND).input(esp)[0] == b"abc"
    assert gcm(flags=PZERO).input(tx.output(b"ab", 17))[0] == b"ab"   # pad length 0


def test_padding_random(monkeypatch: pytest.MonkeyPatch) -> None:
    """SADB_X_EXT_PRAND: arc4random_buf padding; only a PRAND receiver skips the
    last-pad-byte check."""
    monkeypatch.setattr(XE.os, "urandom", lambda n: b"\xaa" * n)
    tx = gcm(flags=PRAND)
    esp = tx.output(b"a", 17)                     # 1 + 2 -> 1 pad byte
    assert gcm_plaintext(esp) == b"a\xaa\x01\x11"
    with pytest.raises(XE.EspBadEnc) as ei:
        gcm().input(esp)
    assert ei.value.errno == errno.EINVAL and ei.value.reason == "esps_badenc"
    assert gcm(flags=PRAND).input(esp)[0] == b"a"


def test_pad_length_beyond_payload() -> None:
    """esp_input_cb: pad length + 2 beyond the decrypted payload is esps_badilen."""
    sa = EspState(SPI, SADB_EALG.NULL, b"")
    bogus = SPI.to_bytes(4, "big") + (1).to_bytes(4, "big") + b"ab" + bytes((200, 17))
    with pytest.raises(XE.EspBadIlen):
        sa.input(bogus)


def test_dummy_packet_dropped_silently() -> None:
    """RFC 4303 §2.6 / esp_input_cb: next header 59 is dropped without a counter."""
    stats = EspStat()
    tx, rx = gcm(), gcm(stats=stats)
    with pytest.raises(XE.EspDummy) as ei:
        rx.input(tx.output(b"chaff", 59))
    assert ei.value.counters == () and ei.value.reason == "silent"
    assert stats.as_dict() == {"esps_input": 1, "esps_ibytes": 8}


# --- header checks and counters ---------------------------------------------------------------------

def test_input_header_checks_in_freebsd_order() -> None:
    """ipsec_common_input + esp_input: too short (esps_hdrops, ENOBUFS), wrong SPI
    (esps_notdb), length not a multiple of 4 or of the cipher block, or no
    payload (esps_badilen)."""
    stats = EspStat()
    tx, rx = pair("cbc128-sha1", stats=stats)
    good = tx.output(b"hello", 17)
    cases = [
        (good[:7], XE.EspHdrops, errno.ENOBUFS),
        (b"\0\0\0\1" + good[4:], XE.EspNotDb, errno.ENOENT),
        (good + b"\0\0", XE.EspBadIlen, errno.EINVAL),             # misaligned
        (good[:8 + 16 + 20] + good[-12:], XE.EspBadIlen, errno.EINVAL),   # 20 % 16
        (good[:8 + 16] + good[-12:], XE.EspBadIlen, errno.EINVAL),   # no payload
    ]
    for data, exc, code in cases:
        with pytest.raises(exc) as ei:
            rx.input(data)
        assert ei.value.errno == code
    assert stats.esps_hdrops == 1 and stats.esps_notdb == 1 and stats.esps_badilen == 3
    assert stats.esps_input == 5


@pytest.mark.parametrize("suite", sorted(SUITES))
def test_tampering_detected(suite: str) -> None:
    """esp_input_cb: any bit flipped in an authenticated packet is esps_badauth
    (EACCES); the NULL-auth ICV is 12 zero bytes."""
    tx, rx = pair(suite, replay=0)
    esp = tx.output(b"payload!", 17)
    if tx.auth is None and tx.enc.kind not in (X.KIND_GCM, X.KIND_CHACHA, X.KIND_GMAC):
        pytest.skip("no integrity")
    positions = [5, 9, len(esp) - 1, len(esp) // 2]
    if tx.alg_auth == SADB_AALG.X_NULL:
        # auth_hash_null authenticates nothing: only its 12 zero bytes are checked.
        assert esp[-12:] == bytes(12)
        positions = [len(esp) - 1, len(esp) - 12]
    for pos in positions:
        bad = bytearray(esp)
        bad[pos] ^= 0x01
        with pytest.raises(XE.EspBadAuth) as ei:
            rx.input(bytes(bad))
        assert ei.value.errno == errno.EACCES


def test_stats_counting() -> None:
    """struct espstat: esps_output, esps_obytes (payload bytes), esps_input,
    esps_ibytes (encrypted payload bytes), esps_hist[alg]; netstat names."""
    stats = EspStat()
    tx, rx = gcm(stats=stats), gcm(stats=stats)
    for _ in range(3):
        rx.input(tx.output(bytes(10), 17))
    d = stats.as_dict()
    assert d["esps_output"] == 3 and d["esps_obytes"] == 30
    assert d["esps_input"] == 3 and d["esps_ibytes"] == 3 * 12
    assert d[f"esps_hist[{SADB_EALG.X_AESGCM16}]"] == 3
    with pytest.raises(XE.EspReplay):
        rx.input(tx.output(bytes(10), 17, seq=1))
    assert stats.esps_replay == 1
    stats.reset()
    assert stats.as_dict() == {}


def test_toobig() -> None:
    """esp_output: skip + hlen + rlen + padding + alen > IP_MAXPACKET is
    esps_toobig / EMSGSIZE, before a sequence number is used."""
    stats = EspStat()
    sa = gcm(stats=stats)
    limit = 65478                               # 20 + 16 + 65478 + 2 + 16 = 65532
    assert len(sa.output(bytes(limit), 17)) == limit + 2 + 32
    with pytest.raises(XE.EspTooBig) as ei:
        sa.output(bytes(limit + 1), 17)
    assert ei.value.errno == errno.EMSGSIZE
    assert (stats.esps_toobig, stats.esps_output, sa.count) == (1, 2, 1)
    fast = gcm()
    with pytest.raises(XE.EspTooBig):
        fast.output(bytes(limit + 1), 17)


# --- anti-replay window (ipsec_chkreplay / ipsec_updatereplay) -------------------------------------

def send(tx: EspState, seq: int) -> bytes:
    return tx.output(b"p", 17, seq=seq)


def test_replay_window_zero_disables_checks() -> None:
    """ipsec_chkreplay/updatereplay: wsize 0 accepts everything, duplicates too."""
    tx, rx = pair(replay=0)
    for seq in (5, 5, 1, 5, 0):
        assert rx.input(send(tx, seq))[2] == seq


@pytest.mark.parametrize("wsize", [4, 8, 16, 32, 128])
def test_replay_window_edges(wsize: int) -> None:
    """RFC 4303 §3.4.3: window of wsize*8 packets; a packet window-1 behind the
    top is accepted once, one exactly window behind is dropped; duplicates are
    dropped; the top moves with new higher numbers."""
    window = wsize * 8
    tx, rx = pair(replay=wsize)
    top = window + 100
    rx.input(send(tx, top))
    rx.input(send(tx, top - (window - 1)))                  # oldest still inside
    with pytest.raises(XE.EspReplay):
        rx.input(send(tx, top - (window - 1)))              # duplicate
    with pytest.raises(XE.EspReplay):
        rx.input(send(tx, top - window))                    # just outside
    with pytest.raises(XE.EspReplay):
        rx.input(send(tx, top))
    for seq in range(top - 5, top):                         # out of order, inside
        rx.input(send(tx, seq))
    rx.input(send(tx, top + 3 * window))                    # far jump clears the bitmap
    with pytest.raises(XE.EspReplay):
        rx.input(send(tx, top))
    rx.input(send(tx, top + 3 * window - 1))
    assert rx.replay.last == top + 3 * window
    assert rx.replay.bitmap_size * 4 >= wsize + 4           # RFC 6479 redundant block


def test_replay_bitmap_size() -> None:
    """key_setsaval: bitmap of next_pow2(wsize + 4) bytes, in 32-bit blocks."""
    assert [XE.SecReplay(w).bitmap_size for w in (0, 1, 4, 8, 12, 16, 32, 255)] == \
        [0, 2, 2, 4, 4, 8, 16, 128]


def test_replay_sequence_zero() -> None:
    """ipsec_chkreplay: sequence 0 is refused while nothing was received; once the
    window is non-empty FreeBSD's check lets a 0 in the low subspace through
    (modelled as FreeBSD does; a conforming sender never sends 0)."""
    tx, rx = pair()
    with pytest.raises(XE.EspReplay):
        rx.input(send(tx, 0))
    rx.input(send(tx, 3))
    assert rx.input(send(tx, 0))[2] == 0
    with pytest.raises(XE.EspReplay):
        rx.input(send(tx, 0))


def test_replay_checked_before_icv() -> None:
    """esp_input: ipsec_chkreplay runs before the ICV, so a replayed packet with a
    broken ICV counts as esps_replay, not esps_badauth."""
    stats = EspStat()
    tx, rx = pair(stats=stats)
    esp = send(tx, 7)
    rx.input(esp)
    broken = esp[:-1] + bytes((esp[-1] ^ 1,))
    with pytest.raises(XE.EspReplay):
        rx.input(broken)
    assert (stats.esps_replay, stats.esps_badauth) == (1, 0)


def test_too_old_non_esn_checked_after_icv() -> None:
    """ipsec_chkreplay (non-ESN): a number below the window infers the next
    subspace and passes; ipsec_updatereplay then drops it after the ICV, so a
    forged too-old packet counts as esps_badauth, a genuine one as esps_replay."""
    stats = EspStat()
    tx, rx = pair(stats=stats)
    rx.input(send(tx, 100))
    old = send(tx, 10)
    with pytest.raises(XE.EspBadAuth):
        rx.input(old[:-1] + bytes((old[-1] ^ 1,)))
    with pytest.raises(XE.EspReplay):
        rx.input(old)
    assert (stats.esps_badauth, stats.esps_replay) == (1, 1)


def test_no_auth_sa_replay_after_decrypt() -> None:
    """esp_input: without an authenticator ipsec_chkreplay is skipped, but
    esp_input_cb still calls ipsec_updatereplay: duplicates die after decryption."""
    tx, rx = pair("cbc128")
    esp = send(tx, 1)
    rx.input(esp)
    with pytest.raises(XE.EspReplay):
        rx.input(esp)


def test_esn_high_bits_inferred() -> None:
    """RFC 4303 Appendix A2.2 / ipsec_chkreplay: seq_hi is inferred from the
    window (same, previous or next subspace) and enters the ICV (RFC 4304)."""
    tx, rx = pair(flags=ESN, replay=4)
    rx.replay.last = (1 << 32) | 100                           # case A
    assert rx.input(send(tx, (1 << 32) | 90))[2] == (1 << 32) | 90
    assert rx.input(send(tx, (1 << 32) | 200))[2] == (1 << 32) | 200
    # Window near the top of the subspace: a low number is in the next one.
    rx2 = pair(flags=ESN, replay=4)[1]
    rx2.replay.last = (1 << 32) | 0xFFFFFFF0
    assert rx2.input(send(tx, (2 << 32) | 3))[2] == (2 << 32) | 3
    assert rx2.replay.last == (2 << 32) | 3
    # Case B: a late packet from the previous subspace, then its duplicate.
    assert rx2.input(send(tx, (1 << 32) | 0xFFFFFFF5))[2] == (1 << 32) | 0xFFFFFFF5
    with pytest.raises(XE.EspReplay):
        rx2.input(send(tx, (1 << 32) | 0xFFFFFFF5))
    assert rx2.input(send(tx, (2 << 32) | 1))[2] == (2 << 32) | 1


def test_esn_wrong_subspace_fails_icv() -> None:
    """RFC 4303 A2.2: a packet far below the window is taken for the next
    subspace; its ICV (computed with the other seq_hi) fails: esps_badauth."""
    tx, rx = pair(flags=ESN, replay=4)
    rx.replay.last = (1 << 32) | 100
    with pytest.raises(XE.EspBadAuth):
        rx.input(send(tx, (1 << 32) | 50))


def test_esn_previous_subspace_at_start() -> None:
    """ipsec_chkreplay: a number in the "previous subspace" while seq_hi is 0 is refused."""
    tx, rx = pair(flags=ESN, replay=4)
    rx.input(send(tx, 5))
    with pytest.raises(XE.EspReplay):
        rx.input(send(tx, 0xFFFFFFF0))


def test_esn_high_half_wrap_refused() -> None:
    """ipsec_chkreplay: seq_hi may not wrap past 2**32-1 (esps_wrap) without CYCSEQ."""
    stats = EspStat()
    tx, rx = pair(flags=ESN, replay=4, stats=stats)
    rx.replay.last = (0xFFFFFFFF << 32) | 0xFFFFFFF0
    with pytest.raises(XE.EspReplayWrap) as ei:
        rx.input(send(tx, 1))
    assert ei.value.counters == ("esps_wrap", "esps_replay")
    assert (stats.esps_wrap, stats.esps_replay, rx.replay.overflow) == (1, 1, 1)


def test_input_wrap_non_esn() -> None:
    """ipsec_chkreplay: without ESN, once 0xffffffff was received a wrapped
    number is esps_wrap (+ esps_replay) unless CYCSEQ; with CYCSEQ the overflow
    is counted and ipsec_updatereplay refuses it anyway (esps_replay)."""
    stats = EspStat()
    tx, rx = pair(stats=stats)
    rx.replay.last = 0xFFFFFFFF
    with pytest.raises(XE.EspReplayWrap):
        rx.input(send(tx, 1))
    assert (stats.esps_wrap, stats.esps_replay) == (1, 1)
    txc, rxc = pair(flags=CYCSEQ, stats=stats)
    rxc.replay.last = 0xFFFFFFFF
    with pytest.raises(XE.EspReplay) as ei:
        rxc.input(send(txc, 1))
    assert type(ei.value) is XE.EspReplay
    assert (stats.esps_wrap, stats.esps_replay, rxc.replay.overflow) == (1, 2, 1)


# --- output sequence wrap ------------------------------------------------------------------------------

def test_output_wrap_refused_without_cycseq() -> None:
    """RFC 4303 §3.3.3: the sender must not cycle; without CYCSEQ the model
    refuses (esps_wrap, EACCES, like xform_ah.c's ahs_wrap) and keeps refusing."""
    stats = EspStat()
    sa = gcm(stats=stats)
    sa.count = 0xFFFFFFFE
    assert sa.output(b"x", 17)[4:8] == b"\xff\xff\xff\xff"
    for _ in range(2):
        with pytest.raises(XE.EspSeqWrap) as ei:
            sa.output(b"x", 17)
        assert ei.value.errno == errno.EACCES
    assert (stats.esps_wrap, sa.count) == (2, 0xFFFFFFFF)
    cbc = pair("cbc128-sha1")[0]
    cbc.count = 0xFFFFFFFF
    with pytest.raises(XE.EspSeqWrap):
        cbc.output(b"x", 17)


@pytest.mark.parametrize("flags,quirk", [(CYCSEQ, False), (0, True)])
def test_output_wrap_cycles(flags: int, quirk: bool) -> None:
    """esp_output with CYCSEQ (setkey's default), or FreeBSD's own esp_output
    (``freebsd_output_wrap``, which never checks): the 64-bit counter goes on and
    the wire carries its low half, 0 after 0xffffffff."""
    sa = EspState(SPI, SADB_EALG.X_AESGCM16, GCM_KEY, flags=flags, freebsd_output_wrap=quirk)
    sa.count = 0xFFFFFFFF
    assert sa.output(b"x", 17)[4:8] == bytes(4)
    assert sa.output(b"x", 17)[4:8] == (1).to_bytes(4, "big")
    assert sa.count == (1 << 32) | 1


def test_output_esn_crosses_subspace() -> None:
    """RFC 4304: with ESN the counter is 64 bits; after 2**32-1 the wire shows 0
    and the receiver infers seq_hi 1 for the ICV."""
    tx, rx = pair(flags=ESN)
    tx.count = 0xFFFFFFFE
    rx.replay.last = 0xFFFFFFF0
    rx.input(tx.output(b"a", 17))
    esp = tx.output(b"b", 17)
    assert esp[4:8] == bytes(4)
    assert rx.input(esp) == (b"b", 17, 1 << 32)
    tx.count = (1 << 64) - 2
    tx.output(b"c", 17)
    with pytest.raises(XE.EspSeqWrap):
        tx.output(b"d", 17)


# --- sizes (freebsd_ipsec_offload.md §8, esp_hdrsiz) ---------------------------------------------

def test_exact_size_examples() -> None:
    """§8: 1400-byte IPv4 packet, aes-gcm-16: 20 + 16 + 1380 + 4 + 16 = 1436; CBC +
    SHA1 pads to 16; IPv6 skip is 40."""
    assert XE.esp_exact_size(X.ENC_AES_GCM16, X.AUTH_AES128_GMAC, 1400, 20) == 1436
    assert XE.esp_exact_size(X.ENC_AES_CBC, X.AUTH_HMAC_SHA1, 1400, 20) == 20 + 24 + 1392 + 12
    assert XE.esp_exact_size(X.ENC_AES_CTR, None, 98, 40) == 40 + 16 + 64
    assert XE.esp_exact_size(X.ENC_AES_CTR, None, 98, 40, ctr_compatibility=False) == 40 + 16 + 60
    assert XE.esp_exact_size(X.ENC_AES_GCM16, None, 100, 20,
                             flags=int(SADB_SAFLAGS.X_EXT_OLD)) == 20 + 12 + 80 + 4


@settings(max_examples=60)
@given(st.sampled_from(sorted(SUITES)), st.integers(0, 1500), st.sampled_from([20, 24, 40, 60]))
def test_exact_size_matches_output(suite: str, rlen: int, skip: int) -> None:
    """§8's formula is what esp_output produces, for every algorithm."""
    tx, _ = pair(suite)
    expected = XE.esp_exact_size(tx.enc, tx.auth, skip + rlen, skip, icvlen=tx.icvlen)
    assert expected == tx.output_size(skip + rlen, skip) == skip + len(tx.output(bytes(rlen), 6))


def test_esp_hdrsiz() -> None:
    """xform_esp.c esp_hdrsiz: 8 + blocksize + 9 + ah_hdrsiz (AH header 12 + ICV,
    rounded to 4, or 8 for IPv6); 49 without an SA."""
    assert XE.esp_hdrsiz(None) == 8 + 16 + 9 + 16
    assert XE.esp_hdrsiz(pair("gcm128")[0]) == 8 + 1 + 9 + 28
    assert XE.esp_hdrsiz(pair("cbc128-sha1")[0]) == 8 + 16 + 9 + 24
    assert XE.esp_hdrsiz(pair("cbc128")[0]) == 8 + 16 + 9
    assert XE.esp_hdrsiz(EspState(1, SADB_EALG.X_AESCBC, bytes(16), SADB_AALG.SHA1HMAC,
                                  bytes(20), af=AF_INET6)) == 8 + 16 + 9 + 24
    assert XE.esp_hdrsiz(EspState(1, SADB_EALG.X_AESCBC, bytes(16), SADB_AALG.X_SHA2_384,
                                  bytes(48), af=AF_INET6)) == 8 + 16 + 9 + 40
    assert XE.ah_hdrsiz(X.AUTH_HMAC_SHA2_256, af=AF_INET6) == 32


# --- threads -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("suite", ["gcm128", "cbc128-sha1"])
def test_concurrent_output_unique(suite: str) -> None:
    """SECREPLAY lock semantics: concurrent esp_output never reuses a sequence
    number or a counter IV, and every packet opens."""
    tx, rx = pair(suite, replay=255)
    out: list[bytes] = []
    lock = threading.Lock()

    def worker() -> None:
        mine = [tx.output(b"data", 17) for _ in range(300)]
        with lock:
            out.extend(mine)
    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seqs = {p[4:8] for p in out}
    assert len(seqs) == 1200 and tx.count == 1200
    if suite == "gcm128":
        assert len({p[8:16] for p in out}) == 1200
    out.sort(key=lambda p: p[4:8])
    assert all(rx.input(p)[0] == b"data" for p in out)


# --- transport, tunnel, NAT-T helpers -------------------------------------------------------------------

V4A, V4B = "10.0.0.1", "10.0.0.2"
V6A, V6B = "2001:db8::a", "2001:db8::b"


@pytest.mark.parametrize("v6", [False, True])
@pytest.mark.parametrize("proto", ["udp", "tcp", "icmp"])
def test_transport_round_trip(v6: bool, proto: str) -> None:
    """ipsec4/6 transport: ESP after the IP header, protocol 50, lengths and
    IPv4 checksum fixed; input restores the original packet exactly."""
    src, dst = (V6A, V6B) if v6 else (V4A, V4B)
    tx, rx = pair("cbc128-sha1", mode=IPSEC_MODE.TRANSPORT)
    pkt = P.make_packet(src, dst, 300, proto)
    out = EN.esp_transport_output(tx, pkt)
    p = P.parse(out)
    assert p.proto == 50 and p.ip_checksum_ok() and len(out) == tx.output_size(len(pkt),
                                                                              40 if v6 else 20)
    back, seq = EN.esp_transport_input(rx, out)
    assert (back, seq) == (pkt, 1)


def test_transport_ipv4_options_kept() -> None:
    """ipsec4_perform_request: skip = ip_hl << 2, options stay in front of ESP."""
    tx, rx = pair()
    hdr = P.IPv4Header(P.addr_bytes(V4A), P.addr_bytes(V4B), 17, 24 + 12,
                       options=b"\x01\x01\x01\x00")
    pkt = hdr.pack() + P.UDPHeader(1, 2, 12, 0).pack() + b"abcd"
    out = EN.esp_transport_output(tx, pkt)
    assert out[20:24] == b"\x01\x01\x01\x00" and out[9] == 50
    assert EN.esp_input_packet(rx, out)[0] == pkt


def test_transport_ipv6_extension_headers() -> None:
    """ipsec6: ESP is put after the fixed header (extension headers are
    encrypted); on input ESP is found behind extension headers and the next
    header is restored at protoff."""
    tx, rx = pair()
    inner = P.UDPHeader(7, 8, 8, 0).pack()
    dstopt = bytes((17, 0)) + bytes(6)
    pkt = P.IPv6Header(P.addr_bytes(V6A), P.addr_bytes(V6B), 60, len(dstopt + inner)).pack() \
        + dstopt + inner
    out = EN.esp_transport_output(tx, pkt)
    assert out[6] == 50 and out[40:44] == SPI.to_bytes(4, "big")
    assert EN.esp_input_packet(rx, out)[0] == pkt
    # ESP behind a hop-by-hop header, as a peer may send it.
    esp = tx.output(inner, 17)
    hbh = bytes((50, 0)) + bytes(6)
    wire = P.IPv6Header(P.addr_bytes(V6A), P.addr_bytes(V6B), 0, 8 + len(esp)).pack() + hbh + esp
    back, nxt, _ = EN.esp_input_packet(rx, wire)
    assert nxt == 17 and back[40] == 17 and back[48:] == inner
    assert int.from_bytes(back[4:6], "big") == 8 + len(inner)


@pytest.mark.parametrize("inner_v6,outer_v6", [(False, False), (False, True), (True, False),
                                               (True, True)])
def test_tunnel_round_trip(inner_v6: bool, outer_v6: bool) -> None:
    """ipsec_encap: outer header from the SA endpoints, next header 4 or 41,
    TTL/hop limit 64, flow label 0; input returns the inner packet unchanged."""
    tx, rx = pair("chacha", mode=IPSEC_MODE.TUNNEL)
    inner = P.make_packet(*((V6A, V6B) if inner_v6 else (V4A, V4B)), 200, "tcp")
    osrc, odst = ("2001:db8:1::1", "2001:db8:2::1") if outer_v6 else ("192.0.2.1", "192.0.2.2")
    out = EN.esp_tunnel_output(tx, inner, osrc, odst, ident=7)
    p = P.parse(out)
    assert p.proto == 50 and P.addr_text(p.src) == osrc and p.ip_checksum_ok()
    assert (p.ip.hlim if outer_v6 else p.ip.ttl) == 64  # type: ignore[union-attr]
    inner_back, nxt, seq = EN.esp_input_packet(rx, out)
    assert (inner_back, nxt, seq) == (inner, 41 if inner_v6 else 4, 1)
    assert EN.esp_tunnel_input(rx, EN.esp_tunnel_output(tx, inner, osrc, odst)) == (inner, 2)
    with pytest.raises(P.PacketError):
        EN.esp_tunnel_input(rx, EN.esp_transport_output(tx, inner))
    rx_transport = pair("chacha", mode=IPSEC_MODE.TRANSPORT)[1]
    with pytest.raises(P.PacketError):
        EN.esp_transport_input(rx_transport, EN.esp_tunnel_output(tx, inner, osrc, odst))


def test_tunnel_df_and_ecn() -> None:
    """ipsec_encap: net.inet.ipsec.dfbit 0 clears, 1 sets, 2 copies DF;
    ip_ecn_ingress ECN_FORBIDDEN (default) clears the outer ECN bits, keeps DSCP."""
    tx, _ = pair()
    inner = P.udp_packet(V4A, V4B, 1, 2, b"x", df=True, tos=0xB8 | 0x02)
    for dfbit, df in ((0, 0), (1, P.IP_DF), (2, P.IP_DF)):
        o = P.parse(EN.esp_tunnel_output(tx, inner, "192.0.2.1", "192.0.2.2", dfbit=dfbit))
        assert o.ip.flags_off == df and o.ip.tos == 0xB8  # type: ignore[union-attr]
    nodf = P.udp_packet(V4A, V4B, 1, 2, b"x")
    o = P.parse(EN.esp_tunnel_output(tx, nodf, "192.0.2.1", "192.0.2.2", dfbit=2))
    assert o.ip.flags_off == 0  # type: ignore[union-attr]


def test_ecn_functions() -> None:
    """ip_ecn.c: ingress ALLOWED turns CE into ECT(0) outside, FORBIDDEN clears,
    NOCARE copies; egress ALLOWED propagates CE, drops CE over not-ECT."""
    assert EN.ip_ecn_ingress(EN.ECN_ALLOWED, 0x03) == 0x02
    assert EN.ip_ecn_ingress(EN.ECN_ALLOWED, 0x01) == 0x01
    assert EN.ip_ecn_ingress(EN.ECN_FORBIDDEN, 0xBB) == 0xB8
    assert EN.ip_ecn_ingress(EN.ECN_NOCARE, 0xBB) == 0xBB
    assert EN.ip_ecn_egress(EN.ECN_ALLOWED, 0x03, 0x02) == 0x03
    assert EN.ip_ecn_egress(EN.ECN_ALLOWED, 0x03, 0x00) is None
    assert EN.ip_ecn_egress(EN.ECN_FORBIDDEN, 0x03, 0x00) == 0x00


def test_tunnel_ecn_egress() -> None:
    """ipsec4_common_input_cb: with ECN_ALLOWED a CE outer mark reaches an ECT
    inner header (checksum fixed) and a not-ECT inner packet is dropped."""
    tx, rx = pair(replay=0)
    for itos, ok in ((0x02, True), (0x00, False)):
        inner = P.udp_packet(V4A, V4B, 1, 2, b"x", tos=itos)
        out = bytearray(EN.esp_tunnel_output(tx, inner, "192.0.2.1", "192.0.2.2",
                                             ecn=EN.ECN_NOCARE))
        out[1] |= 0x03                               # a router marks CE
        out[:20] = P.ipv4_header_with(bytes(out[:20]))
        if ok:
            back = EN.esp_tunnel_input(rx, bytes(out), ecn=EN.ECN_ALLOWED)[0]
            assert back[1] == 0x03 and P.parse(back).ip_checksum_ok()
        else:
            with pytest.raises(XE.EspError):
                EN.esp_tunnel_input(rx, bytes(out), ecn=EN.ECN_ALLOWED)


@pytest.mark.parametrize("v6", [False, True])
def test_natt_encap_decap(v6: bool) -> None:
    """RFC 3948 §2.1 / udp_ipsec_output: UDP 4500 between IP and ESP, checksum 0
    over IPv4 (computed over IPv6); udp_ipsec_input restores plain ESP."""
    tx, rx = pair()
    src, dst = (V6A, V6B) if v6 else (V4A, V4B)
    esp_pkt = EN.esp_transport_output(tx, P.make_packet(src, dst, 100, "udp"))
    enc = EN.udp_encap(esp_pkt, 4500, 4501)
    p = P.parse(enc)
    assert p.proto == 17 and isinstance(p.l4, P.UDPHeader)
    assert (p.l4.sport, p.l4.dport, p.l4.length) == (4500, 4501, len(esp_pkt) - p.l4_off + 8)
    assert p.l4.checksum == 0 if not v6 else p.l4_checksum_ok()
    assert p.ip_checksum_ok() and p.data[:4] == SPI.to_bytes(4, "big")
    assert EN.udp_decap(enc) == esp_pkt
    assert EN.esp_input_packet(rx, EN.udp_decap(enc) or b"")[1] == 17


def test_natt_classify() -> None:
    """RFC 3948 §2.2-§2.3: keepalive 0xff, non-ESP marker (IKE), ESP."""
    assert EN.natt_classify(b"\xff") == EN.NATT_KEEPALIVE
    assert EN.natt_classify(bytes(4) + b"ike") == EN.NATT_IKE
    assert EN.natt_classify(b"\x00\x00\x10\x00rest") == EN.NATT_ESP
    ka = P.udp_packet(V4A, V4B, 4500, 4500, b"\xff")
    ike = P.udp_packet(V4A, V4B, 4500, 4500, bytes(4) + b"isakmp")
    assert EN.udp_decap(ka) is None and EN.udp_decap(ike) is None
    with pytest.raises(P.PacketError):
        EN.udp_decap(P.tcp_packet(V4A, V4B, 1, 2))


@pytest.mark.parametrize("proto", ["tcp", "udp"])
def test_natt_transport_checksum_fixup(proto: str) -> None:
    """RFC 3948 §3.1.2 / udp_ipsec_adjust_cksum: after NAT changed the outer
    address the inner TCP/UDP checksum is fixed from NAT-OA (incrementally) or
    recomputed; it then verifies again."""
    tx, rx = pair()
    pkt = P.make_packet("10.1.1.1", "198.51.100.9", 120, proto)
    wire = bytearray(EN.udp_encap(EN.esp_transport_output(tx, pkt)))
    wire[12:16] = P.addr_bytes("203.0.113.5")            # the NAT rewrites the source
    wire[:20] = P.ipv4_header_with(bytes(wire[:20]))
    plain = EN.esp_input_packet(rx, EN.udp_decap(bytes(wire)) or b"")[0]
    assert not P.parse(plain).l4_checksum_ok()
    fixed = EN.natt_fix_l4_checksum(plain, "10.1.1.1", "198.51.100.9")
    assert P.parse(fixed).l4_checksum_ok()
    assert P.parse(EN.natt_fix_l4_checksum(plain)).l4_checksum_ok()
    nocsum = P.udp_packet(V4A, V4B, 1, 2, b"x", l4_cksum=False)
    assert EN.natt_fix_l4_checksum(nocsum, "10.9.9.9", V4B) == nocsum


def test_esn_without_icv_reports_sequence() -> None:
    """An ESN SA without an ICV (aes-cbc alone) skips ipsec_chkreplay, but the
    window still places each number: the 64-bit sequence reported is right."""
    tx, rx = pair("cbc128", flags=ESN)
    rx.replay.last = (2 << 32) | 5
    assert rx.input(send(tx, (1 << 32) | 0xFFFFFFF9))[2] == (1 << 32) | 0xFFFFFFF9
    assert rx.input(send(tx, (2 << 32) | 9))[2] == (2 << 32) | 9
    assert rx.input(send(tx, (2 << 32) | 7))[2] == (2 << 32) | 7


def _reference_window(seqs: list[int], window: int) -> list[bool]:
    """RFC 4303 §3.4.3 stated plainly: accept a number above the top, or one
    inside the window not seen before; the top moves up."""
    top, seen, out = 0, set(), []
    for s in seqs:
        ok = s > top or (top - s < window and s not in seen)
        if ok:
            seen.add(s)
            top = max(top, s)
        out.append(ok)
    return out


@settings(max_examples=80, deadline=None)
@given(st.sampled_from([4, 8, 12, 32]),
       st.lists(st.integers(1, 600), min_size=1, max_size=120))
def test_replay_matches_rfc4303(wsize: int, seqs: list[int]) -> None:
    """ipsec_chkreplay + ipsec_updatereplay (RFC 6479 blocks) accept exactly what
    RFC 4303 §3.4.3's window accepts, for any arrival order (non-ESN)."""
    tx, rx = pair(replay=wsize)
    got = []
    for s in seqs:
        try:
            rx.input(send(tx, s))
            got.append(True)
        except XE.EspReplay:
            got.append(False)
    assert got == _reference_window(seqs, wsize * 8)


@settings(max_examples=60, deadline=None)
@given(st.sampled_from([4, 8]), st.integers(-300, 300),
       st.lists(st.integers(-700, 700), min_size=1, max_size=60))
def test_esn_replay_matches_rfc4303(wsize: int, start: int, deltas: list[int]) -> None:
    """RFC 4303 §3.4.3 + Appendix A2 with ESN around a 2**32 boundary: every
    packet the 64-bit window accepts is accepted with its full sequence number;
    every other is dropped (replay, or ICV failure when seq_hi is inferred for
    a number below the window)."""
    base = (5 << 32) + start
    tx, rx = pair(flags=ESN, replay=wsize)
    r = rx.replay
    r.last = base                                # as if `base` had just arrived
    r.bitmap[(base >> 5) & (r.bitmap_size - 1)] |= 1 << (base & 31)
    seqs = [base + d for d in deltas]
    # The reference starts from the same window: only `base` seen.
    ref = _reference_window([base] + seqs, wsize * 8)[1:]
    for s, ok in zip(seqs, ref):
        if ok:
            assert rx.input(send(tx, s))[2] == s
        else:
            with pytest.raises((XE.EspReplay, XE.EspBadAuth)):
                rx.input(send(tx, s))


def test_espstat_type_annotations_cover_exactly_its_counters() -> None:
    """struct espstat (netipsec/esp_var.h): EspStat's slots come from
    ESPSTAT_FIELDS; its annotations (what mypy --strict checks counter
    updates against) must name the same counters, in the same order, plus
    the per-algorithm histogram -- a counter added to one list only would
    be invisible to the type checker or missing at run time."""
    from typing import get_type_hints

    from ipsec_accel.esp_stat import ESPSTAT_FIELDS, EspStat
    hints = get_type_hints(EspStat)
    assert tuple(hints) == ESPSTAT_FIELDS + ("esps_hist",)
    assert all(hints[n] is int for n in ESPSTAT_FIELDS)
    assert EspStat.__slots__ == ESPSTAT_FIELDS + ("esps_hist",)
