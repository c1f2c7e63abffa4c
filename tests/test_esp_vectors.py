"""Known-answer tests: every vector of ../shared/corpus/esp_vectors.md, byte for byte.

The vectors are read from the corpus file itself (not copied here), so a vector
added there is tested here; the counts are pinned so one that stops parsing is
noticed.  The file holds RFC 3602 §4 cases #5-#8 (AES-CBC ESP without ICV,
two with their outer IPv4 header), RFC 7634 Appendix A (ChaCha20-Poly1305
ESP) and RFC 3686 §6 vectors #1-#9 (AES-CTR, cipher level).  It has no
AES-GCM packet vector (its §1 is absent); AES-GCM is checked against an
independent AEAD construction in ``test_gcm_*`` below and by interop with
scapy in test_esp_scapy.py.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305

from ipsec_accel.packet import parse
from ipsec_accel.xform_esp import EspState
from ipsec_accel.esp_encap import esp_input_packet, esp_transport_output, esp_tunnel_output
from pfkey.pfkeyv2 import SADB_EALG, SADB_SAFLAGS
from shared_corpus import SHARED_CORPUS

CORPUS = SHARED_CORPUS / "esp_vectors.md"
pytestmark = pytest.mark.skipif(not CORPUS.exists(), reason=f"{CORPUS} not present")


def _hex(text: str) -> bytes:
    return bytes.fromhex(re.sub(r"[^0-9a-fA-F]", "", text))


def _field(block: str, label: str) -> str | None:
    m = re.search(rf"^{re.escape(label)}[^\n]*?:\s*(.*)$", block, re.M)
    return m.group(1).strip() if m else None


def _next_line(block: str, label: str) -> str:
    m = re.search(rf"^{re.escape(label)}[^\n]*:\n(.*)$", block, re.M)
    assert m, label
    return m.group(1)


def _text() -> str:
    return CORPUS.read_text(encoding="utf-8")


def rfc3602_cases() -> list[dict[str, Any]]:
    text = _text() if CORPUS.exists() else ""
    out = []
    for m in re.finditer(r"### RFC 3602 case #(\d+) — (\w+) mode.*?```\n(.*?)```", text, re.S):
        b = m.group(3)
        key_line = _field(b, "Key (AES-128)")
        assert key_line is not None
        case = {
            "case": int(m.group(1)), "mode": m.group(2),
            "key": _hex(key_line),
            "spi": int(re.search(r"SPI:\s+0x([0-9a-f]+)", b).group(1), 16),  # type: ignore[union-attr]
            "seq": int(re.search(r"Sequence number:\s+(\d+)", b).group(1)),  # type: ignore[union-attr]
            "iv": _hex(_field(b, "IV") or ""),
            "payload": _hex(_next_line(b, "Payload")),
            "nxt": int(re.search(r"Next header: 0x([0-9a-f]{2})", b).group(1), 16),  # type: ignore[union-attr]
            "pre": _hex(_next_line(b, "Pre-encryption data")),
            "encrypted": _hex(_next_line(b, "Encrypted data")),
            "esp": _hex(_next_line(b, "ESP packet")),
            "outer": None, "orig_hdr": None,
        }
        outer = re.search(r"Outer IPv4 header \(post-encryption\): ([0-9a-f ]+)", b)
        if outer:
            case["outer"] = _hex(outer.group(1))
        orig = re.search(r"Note: ([0-9a-f ]+) \(original packet IP header", b)
        if orig:
            case["orig_hdr"] = _hex(orig.group(1))
        out.append(case)
    return out


def rfc7634_vector() -> dict[str, Any]:
    text = _text()
    b = re.search(r"## 3\. RFC 7634.*?```\n(.*?)```", text, re.S).group(1)  # type: ignore[union-attr]
    keymat = _hex(re.search(r"KEYMAT[^\n]*\n\s*0x([0-9a-f]+)", b).group(1))  # type: ignore[union-attr]
    m = re.search(r"SPI\s*=\s*0x([0-9a-f]+)\s+Sequence number\s*=\s*(\d+)\s+IV\s*=\s*([0-9a-f ]+)", b)
    assert m
    pt = _hex(re.search(r"plaintext[^\n]*:\n(.*?)\nciphertext", b, re.S).group(1))  # type: ignore[union-attr]
    ct = _hex(re.search(r"ciphertext[^\n]*:\n(.*?)\ntag", b, re.S).group(1))  # type: ignore[union-attr]
    tag = _hex(re.search(r"tag \(ICV\):\s*([0-9a-f ]+)", b).group(1))  # type: ignore[union-attr]
    aad = _hex(re.search(r"AAD\s*=\s*([0-9a-f ]+)", b).group(1))  # type: ignore[union-attr]
    esp = _hex(_next_line(b, "ESP packet"))
    return {"keymat": keymat, "spi": int(m.group(1), 16), "seq": int(m.group(2)),
            "iv": _hex(m.group(3)), "plaintext": pt, "ciphertext": ct, "tag": tag,
            "aad": aad, "esp": esp}


def rfc3686_vectors() -> list[dict[str, Any]]:
    text = _text() if CORPUS.exists() else ""
    out = []
    for m in re.finditer(r"^\| (\d+) \| `([0-9a-f]+)` \| `([0-9a-f]+)` \| ([^|]+) \| `([0-9a-f]+)` \|$",
                         text, re.M):
        ptxt = m.group(4).strip()
        if ptxt == '"Single block msg"':
            pt = b"Single block msg"
        else:
            n = int(re.search(r"\((\d+)\)", ptxt).group(1))  # type: ignore[union-attr]
            pt = bytes(range(n))
        out.append({"n": int(m.group(1)), "keymat": bytes.fromhex(m.group(2)),
                    "iv": bytes.fromhex(m.group(3)), "plaintext": pt,
                    "ciphertext": bytes.fromhex(m.group(5))})
    return out


def test_corpus_vector_counts() -> None:
    """The corpus holds RFC 3602 cases #5-#8, one RFC 7634 packet and RFC 3686 #1-#9."""
    assert [c["case"] for c in rfc3602_cases()] == [5, 6, 7, 8]
    assert [v["n"] for v in rfc3686_vectors()] == list(range(1, 10))
    assert rfc7634_vector()["spi"] == 0x01020304


# --- RFC 3602 §4 (AES-CBC ESP, no ICV) ------------------------------------------------

@pytest.mark.parametrize("case", rfc3602_cases(), ids=lambda c: f"case{c['case']}")
def test_rfc3602_esp_output(case: dict[str, Any]) -> None:
    """RFC 3602 §4: esp_output with the published IV and sequence number gives the
    published ESP packet; padding is FreeBSD's default self-describing 1, 2, 3 ..."""
    sa = EspState(case["spi"], SADB_EALG.X_AESCBC, case["key"])
    esp = sa.output(case["payload"], case["nxt"], seq=case["seq"], iv=case["iv"])
    assert esp == case["esp"]
    assert esp[24:] == case["encrypted"]
    assert sa.count == 0, "an explicit sequence number does not advance the counter"


@pytest.mark.parametrize("case", rfc3602_cases(), ids=lambda c: f"case{c['case']}")
def test_rfc3602_esp_input(case: dict[str, Any]) -> None:
    """RFC 3602 §4 / esp_input_cb: the published packet opens to the payload and
    next header, and the trailer is the published pre-encryption data's."""
    sa = EspState(case["spi"], SADB_EALG.X_AESCBC, case["key"], replay=4)
    payload, nxt, seq = sa.input(case["esp"])
    assert (payload, nxt, seq) == (case["payload"], case["nxt"], case["seq"])
    assert case["pre"] == payload + case["pre"][len(payload):]


def test_rfc3602_case5_full_packet_transport() -> None:
    """RFC 3602 case #5: ipsec4 transport output of the original ICMP packet
    reproduces the published outer header (protocol 50, length, checksum)."""
    case = next(c for c in rfc3602_cases() if c["case"] == 5)
    original = case["orig_hdr"] + case["payload"]
    sa = EspState(case["spi"], SADB_EALG.X_AESCBC, case["key"])
    out = esp_transport_output(sa, original, seq=case["seq"], iv=case["iv"])
    assert out == case["outer"] + case["esp"]
    rx = EspState(case["spi"], SADB_EALG.X_AESCBC, case["key"], replay=4)
    back, nxt, _ = esp_input_packet(rx, out)
    assert back == original and nxt == 1
    assert parse(back).ip_checksum_ok()


def test_rfc3602_case7_full_packet_tunnel() -> None:
    """RFC 3602 case #7: ipsec_encap + esp_output of the inner packet gives the
    published outer IPv4 header (id 0x0905, TTL 64, DF clear) and ESP packet."""
    case = next(c for c in rfc3602_cases() if c["case"] == 7)
    outer = case["outer"]
    sa = EspState(case["spi"], SADB_EALG.X_AESCBC, case["key"])
    out = esp_tunnel_output(sa, case["payload"], outer[12:16], outer[16:20],
                            ident=int.from_bytes(outer[4:6], "big"),
                            seq=case["seq"], iv=case["iv"])
    assert out == outer + case["esp"]
    rx = EspState(case["spi"], SADB_EALG.X_AESCBC, case["key"], replay=4)
    inner, nxt, seq = esp_input_packet(rx, out)
    assert (inner, nxt, seq) == (case["payload"], 4, 2)


# --- RFC 7634 Appendix A (ChaCha20-Poly1305) ---------------------------------------------

def test_rfc7634_esp_output() -> None:
    """RFC 7634 Appendix A: nonce = salt || IV, AAD = SPI || seq (§2.1), 16-byte
    ICV; the whole ESP packet byte for byte."""
    v = rfc7634_vector()
    sa = EspState(v["spi"], SADB_EALG.X_CHACHA20POLY1305, v["keymat"])
    inner = v["plaintext"][:-4]                   # 84-byte inner packet; trailer 01 02 02 04
    esp = sa.output(inner, 4, seq=v["seq"], iv=v["iv"])
    assert esp == v["esp"]
    assert esp[16:-16] == v["ciphertext"] and esp[-16:] == v["tag"]
    assert esp[:8] == v["aad"]


def test_rfc7634_esp_input() -> None:
    """RFC 7634 Appendix A: the packet opens to the inner IPv4 packet, next header 4."""
    v = rfc7634_vector()
    sa = EspState(v["spi"], SADB_EALG.X_CHACHA20POLY1305, v["keymat"], replay=4)
    payload, nxt, seq = sa.input(v["esp"])
    assert (payload, nxt, seq) == (v["plaintext"][:-4], 4, 5)
    assert parse(payload).ip_checksum_ok()


def test_rfc7634_esn_aad() -> None:
    """RFC 7634 §2.1 / RFC 4304: with ESN the AAD is SPI || seq_hi || seq_lo and
    only seq_lo is on the wire."""
    v = rfc7634_vector()
    seq = (7 << 32) | v["seq"]
    sa = EspState(v["spi"], SADB_EALG.X_CHACHA20POLY1305, v["keymat"],
                  flags=SADB_SAFLAGS.X_SAFLAGS_ESN)
    esp = sa.output(v["plaintext"][:-4], 4, seq=seq, iv=v["iv"])
    aead = ChaCha20Poly1305(v["keymat"][:32])
    ref = aead.encrypt(v["keymat"][32:] + v["iv"], v["plaintext"],
                       v["aad"][:4] + (7).to_bytes(4, "big") + v["aad"][4:])
    assert esp == v["esp"][:16] + ref
    assert esp[4:8] == v["esp"][4:8]


# --- RFC 3686 §6 (AES-CTR, cipher level) ----------------------------------------------------

@pytest.mark.parametrize("v", rfc3686_vectors(), ids=lambda v: f"vector{v['n']}")
def test_rfc3686_ctr(v: dict[str, Any]) -> None:
    """RFC 3686 §4/§6: counter block = nonce || IV || 00000001; CTR is a stream,
    so the ESP ciphertext starts with the vector's ciphertext."""
    sa = EspState(0x1000, SADB_EALG.X_AESCTR, v["keymat"])
    esp = sa.output(v["plaintext"], 17, seq=1, iv=v["iv"])
    assert esp[8:16] == v["iv"]
    assert esp[16:16 + len(v["ciphertext"])] == v["ciphertext"]
    rx = EspState(0x1000, SADB_EALG.X_AESCTR, v["keymat"])
    assert rx.input(esp)[:2] == (v["plaintext"], 17)


# --- AES-GCM (no packet vector in the corpus) -----------------------------------------------

@pytest.mark.parametrize("keylen", [16, 24, 32])
@pytest.mark.parametrize("esn", [False, True])
def test_gcm_matches_independent_construction(keylen: int, esn: bool) -> None:
    """RFC 4106 §3-§5: SPI || seq || IV || AESGCM(key, salt || IV, payload ||
    trailer, SPI || [seq_hi ||] seq_lo); the explicit IV is FreeBSD's counter."""
    keymat = bytes(range(keylen + 4))
    spi, seq, iv = 0xDEADBEEF, (3 << 32) | 0x12345678 if esn else 0x12345678, bytes(range(8))
    sa = EspState(spi, SADB_EALG.X_AESGCM16, keymat,
                  flags=SADB_SAFLAGS.X_SAFLAGS_ESN if esn else 0)
    payload = bytes(range(41))
    esp = sa.output(payload, 6, seq=seq, iv=iv)
    trailer = bytes([1, 1, 6])          # 41 + 2 rounded up to 44: one pad byte
    hdr = spi.to_bytes(4, "big") + (seq & 0xFFFFFFFF).to_bytes(4, "big")
    aad = spi.to_bytes(4, "big") + (seq >> 32).to_bytes(4, "big") + hdr[4:] if esn else hdr
    ref = AESGCM(keymat[:keylen]).encrypt(keymat[keylen:] + iv, payload + trailer, aad)
    assert esp == hdr + iv + ref
