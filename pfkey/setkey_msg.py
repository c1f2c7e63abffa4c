"""setkey's message builders and key-length check: the C half of FreeBSD
``sbin/setkey/parse.y`` (``parse_init``, ``setkeymsg0``, ``setkeymsg_add``,
``setkeymsg_addr``, ``setkeymsg_spdaddr``, ``setkeymsg_plen``) and libipsec's
``ipsec_check_keylen`` / ``pfkey_set_supported`` (``lib/libipsec/pfkey.c``).

The grammar (:mod:`pfkey.setkey_parse`) fills a :class:`SetkeyParams` -- the
``p_*`` globals parse.y's actions set -- and calls a builder when a statement
is complete.  Builders return one message per src x dst pair of the same
family (an empty list is parse.y's ``n == 0``: the statement fails without a
message).  Extension order is FreeBSD's (reference §D.2):

* add: [KEY_ENCRYPT (not for IPComp)] [KEY_AUTH] [LIFETIME_HARD]
  [LIFETIME_SOFT] SA SA2 [SA_REPLAY] [NAT_T_TYPE NAT_T_OAI NAT_T_SPORT
  NAT_T_OAR NAT_T_DPORT [NAT_T_FRAG]] SRC DST [IF_HW_OFFL];
* get / delete: SA SA2 [SA_REPLAY] SRC DST; deleteall: SRC DST;
* spdadd / spddelete: X_POLICY [IF_HW_OFFL] SRC DST.

Values are truncated the way the C assignments truncate them (u8 replay
capped at 255, key bits in a u16, SA_REPLAY = bytes << 3 in a u32, NAT-T
ports and fraglen in a u16, the interface name strlcpy'd into 32 bytes).

Quirk (freebsd_ipsec_offload.md §18): FreeBSD's setkeymsg_add appends
IF_HW_OFFL *after* sending, so the kernel never sees it; by default the model
sends it (after DST), ``hwif_add_quirk=True`` leaves it out as FreeBSD does.
"""

from __future__ import annotations

from typing import Iterator, NamedTuple, Optional, Sequence

from .extensions import (
    ExtensionT, SadbAddress, SadbAlg, SadbKey, SadbLifetime, SadbSa, SadbXIfHwOffl,
    SadbXNatTFrag, SadbXNatTPort, SadbXNatTType, SadbXPolicy, SadbXSa2, SadbXSaReplay,
    Sockaddr,
)
from .ipsec import IPSEC_ULPROTO_ANY
from .ipsec_strerror import EIPSEC
from .message import Message
from .pfkeyv2 import (
    AF_INET, AF_INET6, SADB, SADB_EXT, SADB_SAFLAGS, SADB_SATYPE, SADB_X_IF_HW_OFFL_NAMESIZE,
)

_U32 = 0xFFFFFFFF


class Supported(NamedTuple):
    """The algorithm lists setkey fetched with SADB_REGISTER (libipsec's
    ``ipsec_supported``); None for a list it does not have."""

    auth: Optional[tuple[SadbAlg, ...]]
    encrypt: Optional[tuple[SadbAlg, ...]]

    @classmethod
    def from_register(cls, reply: Message) -> "Supported":
        """libipsec ``pfkey_set_supported``: the lists of a REGISTER reply."""
        auth = encrypt = None
        for ext in reply.exts:
            if ext.exttype == SADB_EXT.SUPPORTED_AUTH:
                auth = tuple(ext.algs)  # type: ignore[union-attr]
            elif ext.exttype == SADB_EXT.SUPPORTED_ENCRYPT:
                encrypt = tuple(ext.algs)  # type: ignore[union-attr]
        return cls(auth, encrypt)


#: The FreeBSD kernel's REGISTER lists (reference §B.2): id, ivlen, min, max bits.
FREEBSD_SUPPORTED = Supported(
    auth=(SadbAlg(3, 0, 160, 160), SadbAlg(5, 0, 256, 256), SadbAlg(6, 0, 384, 384),
          SadbAlg(7, 0, 512, 512), SadbAlg(11, 0, 128, 128), SadbAlg(12, 0, 128, 128),
          SadbAlg(13, 0, 128, 128), SadbAlg(14, 0, 128, 128), SadbAlg(251, 0, 8, 2048)),
    encrypt=(SadbAlg(11, 0, 0, 2048), SadbAlg(12, 16, 128, 256), SadbAlg(13, 16, 128, 256),
             SadbAlg(15, 12, 256, 256), SadbAlg(20, 12, 128, 256), SadbAlg(23, 12, 128, 256)),
)


def ipsec_check_keylen(supported: Optional[Supported], auth: bool, alg_id: int,
                       bits: int) -> EIPSEC:
    """libipsec ``ipsec_check_keylen``: NO_ERROR, DO_GET_SUPP_LIST (no list),
    NOT_SUPPORTED (id not listed) or INVAL_KEYLEN (bits outside min..max)."""
    algs = None if supported is None else (supported.auth if auth else supported.encrypt)
    if algs is None:
        return EIPSEC.DO_GET_SUPP_LIST
    for alg in algs:
        if alg.id == alg_id:
            if alg.minbits <= bits <= alg.maxbits:
                return EIPSEC.NO_ERROR
            return EIPSEC.INVAL_KEYLEN
    return EIPSEC.NOT_SUPPORTED


class SetkeyParams:
    """parse.y's p_* globals, as parse_init() resets them before every statement."""

    __slots__ = ("spi", "ext", "alg_enc", "alg_auth", "mode", "reqid", "replay", "key_enc",
                 "key_auth", "lt_hard", "lt_soft", "family", "numeric", "natt_type",
                 "natt_oai", "natt_oar", "natt_sport", "natt_dport", "natt_fraglen", "hwif")

    def __init__(self) -> None:
        self.spi = 0
        self.ext = int(SADB_SAFLAGS.X_EXT_CYCSEQ)  # setkey sets CYCSEQ by default
        self.alg_enc = 0
        self.alg_auth = 0
        self.mode = 0
        self.reqid = 0
        self.replay = 0
        self.key_enc: Optional[bytes] = None
        self.key_auth: Optional[bytes] = None
        self.lt_hard = 0
        self.lt_soft = 0
        self.family = 0           # p_aifamily (-4 / -6)
        self.numeric = False      # p_aiflags AI_NUMERICHOST (-n)
        self.natt_type = 0
        self.natt_oai: Optional[Sockaddr] = None
        self.natt_oar: Optional[Sockaddr] = None
        self.natt_sport = 0
        self.natt_dport = 0
        self.natt_fraglen = -1    # -1: no -natt_mtu
        self.hwif: Optional[str] = None


def setkeymsg_plen(sa: Sockaddr) -> int:
    """32 / 128, -1 for a family setkey does not know."""
    return 32 if sa.family == AF_INET else 128 if sa.family == AF_INET6 else -1


def setkeymsg0(mtype: int, satype: int, pid: int, exts: Sequence[ExtensionT] = ()) -> Message:
    """Version 2, errno 0, reserved 0, seq 0, pid = getpid()."""
    return Message(mtype, satype, 0, pid & _U32, 0, 0, tuple(exts))


def pairs(srcs: Sequence[Sockaddr], dsts: Sequence[Sockaddr]
          ) -> Iterator[tuple[Sockaddr, Sockaddr]]:
    """Every src x dst pair of one family setkeymsg_plen knows, src outer."""
    for s in srcs:
        for d in dsts:
            if s.family == d.family and setkeymsg_plen(s) >= 0:
                yield s, d


def if_hw_offl(name: str) -> SadbXIfHwOffl:
    """strlcpy into the 32-byte field: at most 31 bytes and the NUL."""
    raw = name.encode("latin-1", "replace")[:SADB_X_IF_HW_OFFL_NAMESIZE - 1]
    return SadbXIfHwOffl(raw.decode("latin-1"))


def _sa_exts(p: SetkeyParams) -> list[ExtensionT]:
    exts: list[ExtensionT] = [
        SadbSa(p.spi, min(p.replay, 255), 0, p.alg_auth & 0xFF, p.alg_enc & 0xFF, p.ext & _U32),
        SadbXSa2(mode=p.mode, reqid=p.reqid)]
    if p.replay > 255:
        exts.append(SadbXSaReplay((p.replay << 3) & _U32))
    return exts


def _addr_exts(s: Sockaddr, d: Sockaddr) -> list[ExtensionT]:
    plen = setkeymsg_plen(s)
    return [SadbAddress(SADB_EXT.ADDRESS_SRC, s, plen, IPSEC_ULPROTO_ANY),
            SadbAddress(SADB_EXT.ADDRESS_DST, d, plen, IPSEC_ULPROTO_ANY)]


def setkeymsg_addr(p: SetkeyParams, pid: int, mtype: int, satype: int,
                   srcs: Sequence[Sockaddr], dsts: Sequence[Sockaddr],
                   no_spi: bool) -> list[Message]:
    """get, delete ([SA SA2 [SA_REPLAY]] SRC DST) and deleteall (no_spi)."""
    head = [] if no_spi else _sa_exts(p)
    return [setkeymsg0(mtype, satype, pid, head + _addr_exts(s, d)) for s, d in pairs(srcs, dsts)]


def setkeymsg_add(p: SetkeyParams, pid: int, satype: int, srcs: Sequence[Sockaddr],
                  dsts: Sequence[Sockaddr], *, hwif_add_quirk: bool = False) -> list[Message]:
    """add, in FreeBSD's extension order (module doc)."""
    head: list[ExtensionT] = []
    if satype != SADB_SATYPE.X_IPCOMP and p.key_enc is not None:
        head.append(SadbKey(SADB_EXT.KEY_ENCRYPT, p.key_enc, (len(p.key_enc) * 8) & 0xFFFF))
    if p.key_auth is not None:
        head.append(SadbKey(SADB_EXT.KEY_AUTH, p.key_auth, (len(p.key_auth) * 8) & 0xFFFF))
    if p.lt_hard:
        head.append(SadbLifetime(SADB_EXT.LIFETIME_HARD, addtime=p.lt_hard))
    if p.lt_soft:
        head.append(SadbLifetime(SADB_EXT.LIFETIME_SOFT, addtime=p.lt_soft))
    head += _sa_exts(p)
    if p.natt_type and p.natt_oai is not None and p.natt_oar is not None:
        # OAI/OAR: memset to 0, so proto 0; prefix from setkeymsg_plen.
        head += [SadbXNatTType(p.natt_type),
                 SadbAddress(SADB_EXT.X_NAT_T_OAI, p.natt_oai,
                             setkeymsg_plen(p.natt_oai) & 0xFF, 0),
                 SadbXNatTPort(SADB_EXT.X_NAT_T_SPORT, p.natt_sport & 0xFFFF),
                 SadbAddress(SADB_EXT.X_NAT_T_OAR, p.natt_oar,
                             setkeymsg_plen(p.natt_oar) & 0xFF, 0),
                 SadbXNatTPort(SADB_EXT.X_NAT_T_DPORT, p.natt_dport & 0xFFFF)]
        if p.natt_fraglen != -1:
            head.append(SadbXNatTFrag(p.natt_fraglen & 0xFFFF))
    # Model fix: IF_HW_OFFL belongs to the message that is sent.
    tail: list[ExtensionT] = []
    if p.hwif is not None and not hwif_add_quirk:
        tail.append(if_hw_offl(p.hwif))
    return [setkeymsg0(SADB.ADD, satype, pid, head + _addr_exts(s, d) + tail)
            for s, d in pairs(srcs, dsts)]


def setkeymsg_spdaddr(p: SetkeyParams, pid: int, mtype: int, upper: int, policy: SadbXPolicy,
                      srcs: Sequence[Sockaddr], splen: int, dsts: Sequence[Sockaddr],
                      dplen: int) -> list[Message]:
    """spdadd / spddelete: X_POLICY [IF_HW_OFFL] SRC DST, satype 0; the
    upper-layer protocol in both addresses; a prefix of -1 means full length."""
    head: list[ExtensionT] = [policy]
    if p.hwif is not None:
        head.append(if_hw_offl(p.hwif))
    out = []
    for s, d in pairs(srcs, dsts):
        plen = setkeymsg_plen(s)
        out.append(setkeymsg0(mtype, 0, pid, head + [
            SadbAddress(SADB_EXT.ADDRESS_SRC, s, (splen if splen >= 0 else plen) & 0xFF,
                        upper & 0xFF),
            SadbAddress(SADB_EXT.ADDRESS_DST, d, (dplen if dplen >= 0 else plen) & 0xFF,
                        upper & 0xFF)]))
    return out


__all__ = [
    "Supported", "FREEBSD_SUPPORTED", "ipsec_check_keylen", "SetkeyParams", "setkeymsg0",
    "setkeymsg_plen", "setkeymsg_add", "setkeymsg_addr", "setkeymsg_spdaddr", "pairs",
    "if_hw_offl",
]
