"""Datapath statistics: ``struct ipstat`` (netinet/ip_var.h), ``struct
ipsecstat`` (netipsec/ipsec.h), ``struct espstat`` (netipsec/esp_var.h, the
model's :class:`ipsec_accel.xform_esp.EspStat`) and the model's offload
counters, with ``netstat -s -p ip|ipsec|esp`` style text.

FreeBSD keeps these in counter(9): one slot per CPU, summed when read, so
the datapath never takes a lock to count.  The model does the same with one
slot per *thread* (:class:`Stats`: a ``threading.local`` holding a
:class:`PcpuStats`; readers sum every slot), so counts stay exact when
benchmark workers run the datapath on several threads.

Drop reasons (:meth:`Stats.drops`) are the counter names, one namespace:
``ip.<field>``, ``ipsec.<field>``, ``esp.<field>``, ``accel.<field>``.

The text mimics FreeBSD's netstat (usr.bin/netstat/ipsec.c, inet.c): one
line per counter, ``\\t<n> <what>``, zero counters shown (``-s`` once).
"""

from __future__ import annotations

import threading
from typing import Any, Final, Iterable

from .xform_esp import ESPSTAT_FIELDS, EspStat

__all__ = [
    "IPSTAT_FIELDS", "IPSECSTAT_FIELDS", "ACCELSTAT_FIELDS", "ESPSTAT_FIELDS", "IpStat",
    "IpsecStat", "AccelStat", "EspStat", "PcpuStats", "Stats", "DROP_FIELDS",
    "netstat_ip", "netstat_ipsec", "netstat_esp", "netstat_accel",
]

#: The struct ipstat fields the model counts (names and order of ip_var.h).
IPSTAT_FIELDS: Final = (
    "ips_total", "ips_badsum", "ips_tooshort", "ips_toosmall", "ips_badhlen", "ips_badlen",
    "ips_fragments", "ips_fragdropped", "ips_fragtimeout", "ips_forward", "ips_fastforward",
    "ips_cantforward", "ips_redirectsent", "ips_noproto", "ips_delivered", "ips_localout",
    "ips_odropped", "ips_reassembled", "ips_fragmented", "ips_ofragments", "ips_cantfrag",
    "ips_badoptions", "ips_noroute", "ips_badvers", "ips_rawout", "ips_toolong",
    "ips_notmember", "ips_nogif", "ips_badaddr",
)

#: struct ipsecstat (netipsec/ipsec.h), in its order.
IPSECSTAT_FIELDS: Final = (
    "ips_in_polvio", "ips_in_nomem", "ips_in_inval", "ips_out_polvio", "ips_out_nosa",
    "ips_out_nomem", "ips_out_noroute", "ips_out_inval", "ips_out_bundlesa",
    "ips_spdcache_hits", "ips_spdcache_misses", "ips_clcopied", "ips_mbinserted",
    "ips_input_front", "ips_input_middle", "ips_input_end",
)

#: The model's offload counters (FreeBSD has none: ipsec_offload.c counts
#: nothing per packet).  ``out_*``: how outbound packets went (packet offload,
#: crypto offload, software, BYPASS tag, forwarded), ``in_*``: how inbound ones
#: came (ACCEL_IN tag, CRYPTO_DONE tag, software); the rest are drops.
ACCELSTAT_FIELDS: Final = (
    "out_packet", "out_crypto", "out_sw", "out_bypass", "out_forward_sw",
    "out_tso", "out_too_big", "out_tag_nomem", "out_nofallback", "out_dead_sa",
    "out_noxform", "in_packet", "in_crypto", "in_sw", "in_bad_drv_spi",
    "in_unknown_drv_spi", "in_nofallback", "in_natt",
)

#: Which counters count a dropped packet (the others count traffic or events).
DROP_FIELDS: Final = frozenset(
    ["ip." + f for f in ("ips_badsum", "ips_tooshort", "ips_toosmall", "ips_badhlen",
                         "ips_badlen", "ips_fragdropped", "ips_cantforward", "ips_noproto",
                         "ips_odropped", "ips_cantfrag", "ips_noroute", "ips_badvers",
                         "ips_toolong")]
    + ["ipsec." + f for f in ("ips_in_polvio", "ips_in_nomem", "ips_in_inval",
                              "ips_out_polvio", "ips_out_nosa", "ips_out_nomem",
                              "ips_out_noroute", "ips_out_inval")]
    + ["esp." + f for f in ("esps_hdrops", "esps_nopf", "esps_notdb", "esps_badkcr",
                            "esps_qfull", "esps_noxform", "esps_badilen", "esps_wrap",
                            "esps_badenc", "esps_badauth", "esps_replay", "esps_invalid",
                            "esps_toobig", "esps_pdrops", "esps_crypto", "esps_tunnel")]
    + ["accel." + f for f in ("out_tag_nomem", "out_nofallback", "out_dead_sa",
                              "out_noxform", "in_bad_drv_spi", "in_nofallback")])


def _struct(name: str, fields: tuple[str, ...]) -> type:
    def __init__(self: Any) -> None:
        for f in fields:
            setattr(self, f, 0)

    def as_dict(self: Any) -> dict[str, int]:
        return {f: getattr(self, f) for f in fields}

    return type(name, (), {"__slots__": fields, "__init__": __init__, "as_dict": as_dict,
                           "fields": fields})


#: ``struct ipstat`` (one per-thread slot).
IpStat = _struct("IpStat", IPSTAT_FIELDS)
#: ``struct ipsecstat`` (one per-thread slot).
IpsecStat = _struct("IpsecStat", IPSECSTAT_FIELDS)
#: The model's offload counters (one per-thread slot).
AccelStat = _struct("AccelStat", ACCELSTAT_FIELDS)


class PcpuStats:
    """One thread's slot of every counter (counter(9)'s per-CPU part)."""

    __slots__ = ("ip", "ipsec", "esp", "accel")

    def __init__(self) -> None:
        self.ip = IpStat()
        self.ipsec = IpsecStat()
        self.esp = EspStat()
        self.accel = AccelStat()


class Stats:
    """A host's counters.  The datapath does ``s = stats.pcpu()`` (or reads
    ``stats.tls.s`` directly, catching AttributeError) and increments fields
    of its thread's slot; readers call :meth:`ip`, :meth:`ipsec`,
    :meth:`esp`, :meth:`accel` (sums) or :meth:`drops`."""

    def __init__(self) -> None:
        self.tls = threading.local()
        self._lock = threading.Lock()
        self._slots: list[PcpuStats] = []

    def pcpu(self) -> PcpuStats:
        try:
            return self.tls.s  # type: ignore[no-any-return]
        except AttributeError:
            return self._new()

    def _new(self) -> PcpuStats:
        s = PcpuStats()
        with self._lock:
            self._slots.append(s)
        self.tls.s = s
        return s

    def _sum(self, part: str, fields: Iterable[str]) -> dict[str, int]:
        with self._lock:
            slots = list(self._slots)
        out = dict.fromkeys(fields, 0)
        for s in slots:
            st = getattr(s, part)
            for f in out:
                out[f] += getattr(st, f)
        return out

    def ip(self) -> dict[str, int]:
        return self._sum("ip", IPSTAT_FIELDS)

    def ipsec(self) -> dict[str, int]:
        return self._sum("ipsec", IPSECSTAT_FIELDS)

    def accel(self) -> dict[str, int]:
        return self._sum("accel", ACCELSTAT_FIELDS)

    def esp(self) -> dict[str, int]:
        out = self._sum("esp", ESPSTAT_FIELDS)
        with self._lock:
            slots = list(self._slots)
        hist = [0] * 256
        for s in slots:
            for i, v in enumerate(s.esp.esps_hist):
                if v:
                    hist[i] += v
        out.update({f"esps_hist[{i}]": v for i, v in enumerate(hist) if v})
        return out

    def all(self) -> dict[str, int]:
        """Every counter as ``<struct>.<field>``."""
        out: dict[str, int] = {}
        for part, d in (("ip", self.ip()), ("ipsec", self.ipsec()), ("esp", self.esp()),
                        ("accel", self.accel())):
            out.update({f"{part}.{k}": v for k, v in d.items()})
        return out

    def drops(self) -> dict[str, int]:
        """Non-zero drop counters by reason (``esp.esps_replay`` ...)."""
        return {k: v for k, v in self.all().items() if k in DROP_FIELDS and v}

    def reset(self) -> None:
        with self._lock:
            for s in self._slots:
                s.ip.__init__()
                s.ipsec.__init__()
                s.esp.reset()
                s.accel.__init__()


def _plural(n: int) -> str:
    return "" if n == 1 else "s"


# netstat's sentences (usr.bin/netstat); {s} is the plural suffix.
_IP_TEXT: Final = (
    ("ips_total", "total packet{s} received"),
    ("ips_badsum", "bad header checksum{s}"),
    ("ips_tooshort", "with data size < data length"),
    ("ips_toosmall", "with size smaller than minimum"),
    ("ips_badhlen", "with header length < data size"),
    ("ips_badlen", "with data length < header length"),
    ("ips_badvers", "with incorrect version number"),
    ("ips_fragments", "fragment{s} received"),
    ("ips_fragdropped", "fragment{s} dropped (dup or out of space)"),
    ("ips_reassembled", "packet{s} reassembled ok"),
    ("ips_delivered", "packet{s} for this host"),
    ("ips_noproto", "packet{s} for unknown/unsupported protocol"),
    ("ips_forward", "packet{s} forwarded"),
    ("ips_cantforward", "packet{s} not forwardable"),
    ("ips_localout", "packet{s} sent from this host"),
    ("ips_rawout", "packet{s} sent with fabricated ip header"),
    ("ips_odropped", "output packet{s} dropped due to no bufs, etc."),
    ("ips_noroute", "output packet{s} discarded due to no route"),
    ("ips_fragmented", "output datagram{s} fragmented"),
    ("ips_ofragments", "fragment{s} created"),
    ("ips_cantfrag", "datagram{s} that can't be fragmented"),
)
_IPSEC_TEXT: Final = (
    ("ips_in_polvio", "inbound packet{s} violated process security policy"),
    ("ips_in_nomem", "inbound packet{s} failed due to insufficient memory"),
    ("ips_in_inval", "invalid inbound packet{s}"),
    ("ips_out_polvio", "outbound packet{s} violated process security policy"),
    ("ips_out_nosa", "outbound packet{s} with no SA available"),
    ("ips_out_nomem", "outbound packet{s} failed due to insufficient memory"),
    ("ips_out_noroute", "outbound packet{s} with no route available"),
    ("ips_out_inval", "invalid outbound packet{s}"),
    ("ips_out_bundlesa", "outbound packet{s} with bundled SAs"),
    ("ips_spdcache_hits", "spd cache hit{s}"),
    ("ips_spdcache_misses", "spd cache miss{s}"),
    ("ips_clcopied", "cluster{s} copied during clone"),
    ("ips_mbinserted", "mbuf{s} inserted during makespace"),
)
_ESP_TEXT: Final = (
    ("esps_hdrops", "packet{s} shorter than header shows"),
    ("esps_nopf", "packet{s} dropped; protocol family not supported"),
    ("esps_notdb", "packet{s} dropped; no TDB"),
    ("esps_badkcr", "packet{s} dropped; bad KCR"),
    ("esps_qfull", "packet{s} dropped; queue full"),
    ("esps_noxform", "packet{s} dropped; no transform"),
    ("esps_badilen", "packet{s} dropped; bad ilen"),
    ("esps_wrap", "replay counter wrap{s}"),
    ("esps_badenc", "packet{s} dropped; bad encryption detected"),
    ("esps_badauth", "packet{s} dropped; bad authentication detected"),
    ("esps_replay", "possible replay packet{s} detected"),
    ("esps_input", "packet{s} in"),
    ("esps_output", "packet{s} out"),
    ("esps_invalid", "packet{s} dropped; invalid TDB"),
    ("esps_ibytes", "byte{s} in"),
    ("esps_obytes", "byte{s} out"),
    ("esps_toobig", "packet{s} dropped; larger than IP_MAXPACKET"),
    ("esps_pdrops", "packet{s} blocked due to policy"),
    ("esps_crypto", "crypto processing failure{s}"),
    ("esps_tunnel", "tunnel sanity check failure{s}"),
)
_ACCEL_TEXT: Final = (
    ("out_packet", "outbound packet{s} handed to a NIC in clear (packet offload)"),
    ("out_crypto", "outbound packet{s} framed for NIC encryption (crypto offload)"),
    ("out_sw", "outbound packet{s} protected in software"),
    ("out_bypass", "outbound packet{s} tagged BYPASS (level use, no SA)"),
    ("out_forward_sw", "forwarded packet{s} protected in software (never offloaded)"),
    ("out_tso", "outbound TSO packet{s} offloaded without size checks"),
    ("out_too_big", "outbound packet{s} too big to offload"),
    ("out_tag_nomem", "outbound packet{s} not offloaded: no memory for the tag"),
    ("out_nofallback", "outbound packet{s} dropped: no-fallback SA not offloadable"),
    ("out_dead_sa", "outbound packet{s} dropped: SA died during processing"),
    ("out_noxform", "outbound packet{s} dropped: transform not modelled"),
    ("in_packet", "inbound packet{s} decrypted by a NIC (ACCEL_IN tag)"),
    ("in_crypto", "inbound packet{s} decrypted by a NIC, finished in software"),
    ("in_sw", "inbound packet{s} decrypted in software"),
    ("in_bad_drv_spi", "inbound packet{s} dropped: invalid drv_spi"),
    ("in_unknown_drv_spi", "inbound packet{s} accepted with an unknown drv_spi"),
    ("in_nofallback", "inbound packet{s} dropped: no-fallback SA in software"),
    ("in_natt", "inbound ESP-in-UDP packet{s}"),
)


def _text(title: str, table: tuple[tuple[str, str], ...], d: dict[str, int]) -> str:
    lines = [f"{title}:"]
    for f, what in table:
        n = d.get(f, 0)
        lines.append(f"\t{n} " + what.replace("{s}", _plural(n)))
    return "\n".join(lines) + "\n"


def netstat_ip(d: dict[str, int]) -> str:
    """``netstat -s -p ip`` for an :meth:`Stats.ip` dict."""
    return _text("ip", _IP_TEXT, d)


def netstat_ipsec(d: dict[str, int]) -> str:
    """``netstat -s -p ipsec`` for an :meth:`Stats.ipsec` dict."""
    return _text("ipsec", _IPSEC_TEXT, d)


_EALG_NAMES: Final = {0: "none", 2: "des-cbc", 3: "3des-cbc", 11: "null", 12: "aes-cbc",
                      13: "aes-ctr", 15: "chacha20-poly1305", 18: "aes-gcm-8",
                      19: "aes-gcm-12", 20: "aes-gcm-16", 23: "aes-gmac"}


def netstat_esp(d: dict[str, int]) -> str:
    """``netstat -s -p esp`` for an :meth:`Stats.esp` dict (with the output
    histogram by algorithm)."""
    text = _text("esp", _ESP_TEXT, d)
    hist = [(int(k[10:-1]), v) for k, v in d.items() if k.startswith("esps_hist[") and v]
    if hist:
        text += "\tESP output histogram:\n"
        for alg, v in sorted(hist):
            text += f"\t\t{_EALG_NAMES.get(alg, str(alg))}: {v}\n"
    return text


def netstat_accel(d: dict[str, int]) -> str:
    """The model's offload counters in the same style."""
    return _text("ipsec offload", _ACCEL_TEXT, d)
