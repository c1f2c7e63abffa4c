"""pcap capture files and Wireshark's ESP SA table.

* :class:`PcapWriter` writes the classic libpcap format (magic
  ``0xa1b2c3d4``, version 2.4, microsecond timestamps, little-endian as written
  on amd64).  The default link type is ``LINKTYPE_RAW`` (101): every record is
  an IPv4 or IPv6 datagram, exactly what the model's wires carry, and
  Wireshark's ESP dissector (and its decryption) works on it directly.
  ``LINKTYPE_ETHERNET`` (1) is available for tools that want L2: the wire then
  prepends a synthetic Ethernet header (see :func:`ether_frame`).
* :func:`read_pcap` / :func:`iter_pcap` read pcap files back (either byte
  order, micro- or nanosecond magic) for tests.
* :func:`write_esp_sa` writes the ``esp_sa`` UAT file Wireshark reads from its
  profile directory (Preferences > Protocols > ESP > "ESP SAs"), so a capture
  decrypts in Wireshark.  Column layout, from Wireshark's packet-ipsec.c
  (``esp_uat_flds``): Protocol ("IPv4"/"IPv6"/"Any"), Src IP, Dest IP, SPI,
  Encryption (value-string label), Encryption Key, Authentication (label),
  Authentication Key, and in Wireshark 3.x/4.x two more: SN ("32-bit" /
  "64-bit") and ESN High Bits (hex).  Every field is written double-quoted,
  comma-separated, one SA per line; keys as ``0x`` + hex.  ``columns=8``
  writes the older layout.

Timestamps come from an injectable clock: a callable returning seconds as a
float (``time.time`` by default), or any object with such a ``now()``;
:class:`TickClock` gives deterministic captures.
"""

from __future__ import annotations

import ipaddress
import os
import struct
import threading
import time
from typing import IO, Any, BinaryIO, Callable, Iterable, Iterator, NamedTuple, Union

__all__ = [
    "LINKTYPE_NULL", "LINKTYPE_ETHERNET", "LINKTYPE_RAW", "PCAP_MAGIC", "PCAP_MAGIC_NS",
    "PcapWriter", "PcapRecord", "PcapFile", "read_pcap", "iter_pcap", "TickClock",
    "ether_frame", "ethertype_for", "ETHERTYPE_IP", "ETHERTYPE_IPV6", "ETHERTYPE_LOCAL",
    "EspSaEntry", "esp_sa_fields", "esp_sa_line", "write_esp_sa", "read_esp_sa",
    "WS_ENCRYPTION", "WS_AUTHENTICATION", "UnsupportedAlgorithm",
]

LINKTYPE_NULL = 0
LINKTYPE_ETHERNET = 1
LINKTYPE_RAW = 101

PCAP_MAGIC = 0xA1B2C3D4      # microsecond timestamps
PCAP_MAGIC_NS = 0xA1B23C4D   # nanosecond timestamps (read only)
PCAP_VERSION = (2, 4)
DEFAULT_SNAPLEN = 262144

ETHERTYPE_IP = 0x0800
ETHERTYPE_IPV6 = 0x86DD
#: IEEE 802 "local experimental" ethertype, used for non-IP payloads.
ETHERTYPE_LOCAL = 0x88B5

_GHDR = struct.Struct("<IHHiIII")
_RHDR = struct.Struct("<IIII")

ClockLike = Union[Callable[[], float], Any]
FileLike = Union[str, "os.PathLike[str]", BinaryIO]


def _time_fn(clock: ClockLike | None) -> Callable[[], float]:
    if clock is None:
        return time.time
    if callable(clock):
        return clock
    now: Callable[[], float] | None = getattr(clock, "now", None)   # the now() contract
    if callable(now):
        return now
    raise TypeError("clock must be a callable or have now()")


class TickClock:
    """A deterministic packet clock: each call returns ``start + n * step``
    seconds (default: 1 microsecond per packet from 2025-01-05 12:00 UTC)."""

    def __init__(self, start: float = 1_736_078_400.0, step: float = 1e-6) -> None:
        self._start_us = round(start * 1_000_000)
        self._step_us = round(step * 1_000_000)
        self._n = 0
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            us = self._start_us + self._n * self._step_us
            self._n += 1
        return us / 1_000_000


# --------------------------------------------------------------------------
# Writing

class PcapWriter:
    """Append records to a pcap file.  Thread-safe (one lock per file).

    ``file`` is a path (opened, and closed by :meth:`close`) or a binary
    stream (left open).  ``write(data, ts=None)`` timestamps with the clock
    unless ``ts`` (float seconds) is given; data longer than ``snaplen`` is
    truncated with the original length recorded.
    """

    def __init__(self, file: FileLike, linktype: int = LINKTYPE_RAW, *,
                 snaplen: int = DEFAULT_SNAPLEN, clock: ClockLike | None = None,
                 flush: bool = False) -> None:
        if isinstance(file, (str, os.PathLike)):
            self._fh: BinaryIO = open(file, "wb")
            self._owned = True
            self.path: str | None = os.fspath(file)
        else:
            self._fh = file
            self._owned = False
            self.path = None
        self.linktype = linktype
        self.snaplen = snaplen
        self._clock = _time_fn(clock)
        self._flush = flush
        self._lock = threading.Lock()
        self.packets = 0
        self.bytes = 0
        self.closed = False
        self._fh.write(_GHDR.pack(PCAP_MAGIC, PCAP_VERSION[0], PCAP_VERSION[1], 0, 0,
                                  snaplen, linktype))

    def write(self, data: bytes | bytearray | memoryview, ts: float | None = None) -> None:
        t = self._clock() if ts is None else ts
        us = round(t * 1_000_000)
        self.write_us(data, us)

    def write_us(self, data: bytes | bytearray | memoryview, ts_us: int) -> None:
        """Write with an integer microsecond timestamp."""
        sec, usec = divmod(ts_us, 1_000_000)
        orig = len(data)
        incl = orig if orig <= self.snaplen else self.snaplen
        rec = _RHDR.pack(sec, usec, incl, orig)
        with self._lock:
            if self.closed:
                raise ValueError("write to a closed PcapWriter")
            self._fh.write(rec)
            self._fh.write(data if incl == orig else bytes(data[:incl]))
            self.packets += 1
            self.bytes += incl
            if self._flush:
                self._fh.flush()

    def flush(self) -> None:
        with self._lock:
            if not self.closed:
                self._fh.flush()

    def close(self) -> None:
        with self._lock:
            if self.closed:
                return
            self.closed = True
            self._fh.flush()
            if self._owned:
                self._fh.close()

    def __enter__(self) -> PcapWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# --------------------------------------------------------------------------
# Reading

class PcapRecord(NamedTuple):
    ts_sec: int
    ts_frac: int        # microseconds (or nanoseconds when the file says so)
    orig_len: int
    data: bytes
    nanosecond: bool = False

    @property
    def ts(self) -> float:
        return self.ts_sec + self.ts_frac / (1e9 if self.nanosecond else 1e6)

    @property
    def ts_us(self) -> int:
        frac = self.ts_frac // 1000 if self.nanosecond else self.ts_frac
        return self.ts_sec * 1_000_000 + frac


class PcapFile(NamedTuple):
    linktype: int
    snaplen: int
    version: tuple[int, int]
    nanosecond: bool
    byteorder: str
    records: list[PcapRecord]


def _open_read(file: FileLike) -> tuple[BinaryIO, bool]:
    if isinstance(file, (str, os.PathLike)):
        return open(file, "rb"), True
    return file, False


def _read_header(fh: BinaryIO) -> tuple[str, bool, int, int, tuple[int, int]]:
    raw = fh.read(24)
    if len(raw) < 24:
        raise ValueError("not a pcap file: short global header")
    for order in ("<", ">"):
        magic = struct.unpack(order + "I", raw[:4])[0]
        if magic in (PCAP_MAGIC, PCAP_MAGIC_NS):
            _, vmaj, vmin, _, _, snaplen, linktype = struct.unpack(order + "IHHiIII", raw)
            return order, magic == PCAP_MAGIC_NS, snaplen, linktype, (vmaj, vmin)
    raise ValueError(f"not a pcap file: magic {raw[:4].hex()}")


def iter_pcap(file: FileLike) -> Iterator[PcapRecord]:
    """Yield the records of a pcap file (header validated first)."""
    fh, owned = _open_read(file)
    try:
        order, ns, _snaplen, _lt, _v = _read_header(fh)
        rh = struct.Struct(order + "IIII")
        while True:
            raw = fh.read(16)
            if not raw:
                return
            if len(raw) < 16:
                raise ValueError("truncated pcap record header")
            sec, frac, incl, orig = rh.unpack(raw)
            data = fh.read(incl)
            if len(data) < incl:
                raise ValueError("truncated pcap record")
            yield PcapRecord(sec, frac, orig, data, ns)
    finally:
        if owned:
            fh.close()


def read_pcap(file: FileLike) -> PcapFile:
    """Read a whole pcap file."""
    fh, owned = _open_read(file)
    try:
        order, ns, snaplen, linktype, version = _read_header(fh)
        rest = fh.read()
    finally:
        if owned:
            fh.close()
    records = list(_records_from(rest, order, ns))
    return PcapFile(linktype, snaplen, version, ns, "little" if order == "<" else "big",
                    records)


def _records_from(buf: bytes, order: str, ns: bool) -> Iterator[PcapRecord]:
    rh = struct.Struct(order + "IIII")
    off = 0
    n = len(buf)
    while off < n:
        if off + 16 > n:
            raise ValueError("truncated pcap record header")
        sec, frac, incl, orig = rh.unpack_from(buf, off)
        off += 16
        if off + incl > n:
            raise ValueError("truncated pcap record")
        yield PcapRecord(sec, frac, orig, bytes(buf[off:off + incl]), ns)
        off += incl


# --------------------------------------------------------------------------
# Synthetic Ethernet

def ethertype_for(payload: bytes | bytearray | memoryview) -> int:
    """0x0800 for IPv4, 0x86dd for IPv6 (by the version nibble), else the
    local experimental type 0x88b5."""
    if payload:
        v = payload[0] >> 4
        if v == 4:
            return ETHERTYPE_IP
        if v == 6:
            return ETHERTYPE_IPV6
    return ETHERTYPE_LOCAL


def _mac_bytes(mac: str | bytes) -> bytes:
    if isinstance(mac, bytes):
        if len(mac) != 6:
            raise ValueError("MAC must be 6 bytes")
        return mac
    b = bytes(int(x, 16) for x in mac.split(":"))
    if len(b) != 6:
        raise ValueError(f"bad MAC {mac!r}")
    return b


def ether_frame(dst: str | bytes, src: str | bytes,
                payload: bytes | bytearray | memoryview) -> bytes:
    """An Ethernet II frame (no FCS) carrying ``payload``."""
    return (_mac_bytes(dst) + _mac_bytes(src) + ethertype_for(payload).to_bytes(2, "big")
            + bytes(payload))


# --------------------------------------------------------------------------
# Wireshark ESP SA table (esp_sa UAT)

class UnsupportedAlgorithm(ValueError):
    """An SA whose algorithm Wireshark cannot decrypt (e.g. AES-GMAC)."""


#: Wireshark's esp_encryption_type_vals labels (packet-ipsec.c).
WS_ENCRYPTION: dict[str, str] = {
    "null": "NULL",
    "des-cbc": "DES-CBC [RFC2405]",
    "3des-cbc": "TripleDES-CBC [RFC2451]",
    "cast128-cbc": "CAST5-CBC [RFC2144]",
    "blowfish-cbc": "BLOWFISH-CBC [RFC2451]",
    "twofish-cbc": "TWOFISH-CBC",
    "aes-cbc": "AES-CBC [RFC3602]",
    "rijndael-cbc": "AES-CBC [RFC3602]",
    "aes-ctr": "AES-CTR [RFC3686]",
    "aes-gcm-8": "AES-GCM with 8 octet ICV [RFC4106]",
    "aes-gcm-12": "AES-GCM with 12 octet ICV [RFC4106]",
    "aes-gcm-16": "AES-GCM with 16 octet ICV [RFC4106]",
    "chacha20-poly1305": "ChaCha20 with Poly1305 [RFC7634]",
}
#: SADB_EALG ids (pfkeyv2.h) -> setkey names above.
_EALG_IDS = {0: "null", 11: "null", 2: "des-cbc", 3: "3des-cbc", 6: "cast128-cbc",
             7: "blowfish-cbc", 12: "aes-cbc", 13: "aes-ctr", 15: "chacha20-poly1305",
             18: "aes-gcm-8", 19: "aes-gcm-12", 20: "aes-gcm-16", 22: "camellia-cbc",
             23: "aes-gmac"}
#: Encryption algorithms that carry their own ICV: Wireshark wants NULL auth.
_AEAD = {"aes-gcm-8", "aes-gcm-12", "aes-gcm-16", "chacha20-poly1305"}

#: Wireshark's esp_authentication_type_vals labels.
WS_AUTHENTICATION: dict[str, str] = {
    "null": "NULL",
    "none": "NULL",
    "hmac-md5": "HMAC-MD5-96 [RFC2403]",
    "hmac-sha1": "HMAC-SHA-1-96 [RFC2404]",
    "hmac-sha2-256": "HMAC-SHA-256-128 [RFC4868]",
    "hmac-sha2-384": "HMAC-SHA-384-192 [RFC4868]",
    "hmac-sha2-512": "HMAC-SHA-512-256 [RFC4868]",
    "hmac-ripemd160": "MAC-RIPEMD-160-96 [RFC2857]",
}
#: SADB_AALG ids -> setkey names.
_AALG_IDS = {0: "null", 251: "null", 2: "hmac-md5", 3: "hmac-sha1", 5: "hmac-sha2-256",
             6: "hmac-sha2-384", 7: "hmac-sha2-512", 8: "hmac-ripemd160",
             11: "aes-gmac", 12: "aes-gmac", 13: "aes-gmac", 14: "chacha20-poly1305"}


class EspSaEntry(NamedTuple):
    """One SA for the table.  Plain tuples in this field order are accepted
    by :func:`write_esp_sa`.  Algorithms are setkey names (``"aes-gcm-16"``,
    ``"hmac-sha2-256"``), SADB_*ALG ids, or Wireshark labels; keys are the
    PF_KEY key material (for GCM/CTR/ChaCha20 the trailing salt/nonce
    included, which is what Wireshark expects)."""

    src: str
    dst: str
    spi: int | str          # or "*": any SPI (the UAT wildcard)
    enc_alg: str | int
    enc_key: bytes
    auth_alg: str | int | None = None
    auth_key: bytes = b""
    esn: bool = False
    esn_high: int = 0


def _enc_label(alg: str | int) -> tuple[str, bool]:
    name = _EALG_IDS.get(alg, "") if isinstance(alg, int) else alg
    if name in WS_ENCRYPTION.values():
        return name, any(WS_ENCRYPTION[k] == name for k in _AEAD)
    key = name.lower()
    if key not in WS_ENCRYPTION:
        raise UnsupportedAlgorithm(f"Wireshark cannot decrypt ESP encryption {alg!r}")
    return WS_ENCRYPTION[key], key in _AEAD


def _auth_label(alg: str | int | None) -> str:
    if alg is None:
        return "NULL"
    name = _AALG_IDS.get(alg, "") if isinstance(alg, int) else alg
    if name in WS_AUTHENTICATION.values() or name.startswith("ANY "):
        return name
    key = name.lower()
    if key not in WS_AUTHENTICATION:
        raise UnsupportedAlgorithm(f"Wireshark cannot check ESP authentication {alg!r}")
    return WS_AUTHENTICATION[key]


def _protocol(src: str, dst: str) -> str:
    fams = set()
    for a in (src, dst):
        if a in ("*", ""):
            continue
        fams.add(ipaddress.ip_address(a).version)
    if not fams:
        return "Any"
    if len(fams) > 1:
        raise ValueError(f"mixed address families in SA {src} -> {dst}")
    return "IPv4" if fams == {4} else "IPv6"


def esp_sa_fields(entry: EspSaEntry | tuple[Any, ...], columns: int = 10) -> list[str]:
    """The UAT field values for one SA (unquoted)."""
    e = entry if isinstance(entry, EspSaEntry) else EspSaEntry(*entry)
    enc, aead = _enc_label(e.enc_alg)
    if aead:
        auth, auth_key = "NULL", b""   # the ICV belongs to the AEAD
    else:
        auth, auth_key = _auth_label(e.auth_alg), bytes(e.auth_key)
    fields = [
        _protocol(e.src, e.dst),
        e.src, e.dst,
        "*" if e.spi == "*" else f"0x{int(e.spi):08x}",
        enc, "0x" + bytes(e.enc_key).hex() if e.enc_key else "",
        auth, "0x" + auth_key.hex() if auth_key else "",
    ]
    if columns == 10:
        fields += ["64-bit" if e.esn else "32-bit", f"{int(e.esn_high):x}"]
    elif columns != 8:
        raise ValueError("columns must be 8 (old Wireshark) or 10 (3.x/4.x)")
    return fields


def _uat_quote(s: str) -> str:
    # Wireshark's uat_esc: backslash-escape quotes/backslashes, \xNN the rest.
    out = []
    for ch in s:
        o = ord(ch)
        if ch in '"\\':
            out.append("\\" + ch)
        elif o < 0x20 or o > 0x7E:
            out.append(f"\\x{o:02x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def esp_sa_line(entry: EspSaEntry | tuple[Any, ...], columns: int = 10) -> str:
    """One ``esp_sa`` line (no newline)."""
    return ",".join(_uat_quote(f) for f in esp_sa_fields(entry, columns))


def write_esp_sa(file: str | os.PathLike[str] | IO[str],
                 entries: Iterable[EspSaEntry | tuple[Any, ...]], *, columns: int = 10,
                 skip_unsupported: bool = False) -> int:
    """Write Wireshark's ``esp_sa`` file; returns the number of SAs written.
    Unsupported algorithms raise :class:`UnsupportedAlgorithm` unless
    ``skip_unsupported``."""
    lines = ["# This file is automatically generated, DO NOT MODIFY."]
    for e in entries:
        try:
            lines.append(esp_sa_line(e, columns))
        except UnsupportedAlgorithm:
            if not skip_unsupported:
                raise
    text = "\n".join(lines) + "\n"
    if isinstance(file, (str, os.PathLike)):
        with open(file, "w", encoding="ascii") as fh:
            fh.write(text)
    else:
        file.write(text)
    return len(lines) - 1


def read_esp_sa(file: str | os.PathLike[str] | IO[str]) -> list[list[str]]:
    """Parse an ``esp_sa`` file back into its unquoted fields (tests)."""
    if isinstance(file, (str, os.PathLike)):
        with open(file, encoding="ascii") as fh:
            text = fh.read()
    else:
        text = file.read()
    rows = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        rows.append(_uat_split(line))
    return rows


def _uat_split(line: str) -> list[str]:
    fields: list[str] = []
    i, n = 0, len(line)
    while i < n:
        if line[i] != '"':
            raise ValueError(f"unquoted UAT field in {line!r}")
        i += 1
        buf = []
        while i < n and line[i] != '"':
            if line[i] == "\\" and i + 1 < n:
                if line[i + 1] == "x" and i + 3 < n:
                    buf.append(chr(int(line[i + 2:i + 4], 16)))
                    i += 4
                    continue
                buf.append(line[i + 1])
                i += 2
                continue
            buf.append(line[i])
            i += 1
        i += 1  # closing quote
        fields.append("".join(buf))
        if i < n:
            if line[i] != ",":
                raise ValueError(f"bad UAT separator in {line!r}")
            i += 1
    return fields
