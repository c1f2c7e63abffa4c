"""Constants of FreeBSD's ``sys/net/pfkeyv2.h`` (FreeBSD main with IPSEC_OFFLOAD).

Every group is an ``IntEnum`` named after the C prefix, and every member is also
exported under its C name (``SADB_ADD``, ``SADB_X_EXT_IF_HW_OFFL`` ...) so that a
kernel developer can grep for the names they know.  Values follow
../shared/reference/pfkey_setkey_reference.md §A.3-§A.6 and
freebsd_ipsec_offload.md §2, §11.

Where FreeBSD has aliases (``SADB_X_EALG_RIJNDAELCBC`` = ``SADB_X_EALG_AESCBC``)
the alias is an enum alias and a module constant.
"""

from __future__ import annotations

import enum

PF_KEY_V2 = 2
PFKEYV2_REVISION = 199806
PF_KEY = 27  # pseudo_AF_KEY on FreeBSD
AF_INET = 2
AF_INET6 = 28  # FreeBSD's value (Linux uses 10)
MCLBYTES = 2048  # the largest message key_parse accepts (ENOBUFS beyond)


class SADB(enum.IntEnum):
    """sadb_msg_type values (SADB_*)."""

    RESERVED = 0
    GETSPI = 1
    UPDATE = 2
    ADD = 3
    DELETE = 4
    GET = 5
    ACQUIRE = 6
    REGISTER = 7
    EXPIRE = 8
    FLUSH = 9
    DUMP = 10
    X_PROMISC = 11
    X_PCHANGE = 12
    X_SPDUPDATE = 13
    X_SPDADD = 14
    X_SPDDELETE = 15
    X_SPDGET = 16
    X_SPDACQUIRE = 17
    X_SPDDUMP = 18
    X_SPDFLUSH = 19
    X_SPDSETIDX = 20
    X_SPDEXPIRE = 21
    X_SPDDELETE2 = 22


SADB_MAX = 22


class SADB_EXT(enum.IntEnum):
    """sadb_ext_type values (SADB_EXT_* and SADB_X_EXT_*)."""

    RESERVED = 0
    SA = 1
    LIFETIME_CURRENT = 2
    LIFETIME_HARD = 3
    LIFETIME_SOFT = 4
    ADDRESS_SRC = 5
    ADDRESS_DST = 6
    ADDRESS_PROXY = 7
    KEY_AUTH = 8
    KEY_ENCRYPT = 9
    IDENTITY_SRC = 10
    IDENTITY_DST = 11
    SENSITIVITY = 12
    PROPOSAL = 13
    SUPPORTED_AUTH = 14
    SUPPORTED_ENCRYPT = 15
    SPIRANGE = 16
    X_KMPRIVATE = 17
    X_POLICY = 18
    X_SA2 = 19
    X_NAT_T_TYPE = 20
    X_NAT_T_SPORT = 21
    X_NAT_T_DPORT = 22
    X_NAT_T_OAI = 23
    X_NAT_T_OAR = 24
    X_NAT_T_FRAG = 25
    X_SA_REPLAY = 26
    X_NEW_ADDRESS_SRC = 27
    X_NEW_ADDRESS_DST = 28
    X_LFT_CUR_SW_OFFL = 29
    X_LFT_CUR_HW_OFFL = 30
    X_IF_HW_OFFL = 31

    X_NAT_T_OA = 23  # deprecated alias of X_NAT_T_OAI


SADB_EXT_MAX = 31


class SADB_SATYPE(enum.IntEnum):
    """sadb_msg_satype values."""

    UNSPEC = 0
    AH = 2
    ESP = 3
    RSVP = 5
    OSPFV2 = 6
    RIPV2 = 7
    MIP = 8
    X_IPCOMP = 9
    X_POLICY = 10  # obsolete
    X_TCPSIGNATURE = 11


SADB_SATYPE_MAX = 12


class SADB_SASTATE(enum.IntEnum):
    """sadb_sa_state values."""

    LARVAL = 0
    MATURE = 1
    DYING = 2
    DEAD = 3


SADB_SASTATE_MAX = 3


class SADB_AALG(enum.IntEnum):
    """Authentication algorithm ids (SADB_AALG_* / SADB_X_AALG_*)."""

    NONE = 0
    MD5HMAC = 2
    SHA1HMAC = 3
    X_SHA2_256 = 5
    X_SHA2_384 = 6
    X_SHA2_512 = 7
    X_RIPEMD160HMAC = 8
    X_AES_XCBC_MAC = 9
    X_AES128GMAC = 11
    X_AES192GMAC = 12
    X_AES256GMAC = 13
    X_CHACHA20POLY1305 = 14
    X_MD5 = 249
    X_SHA = 250
    X_NULL = 251
    X_TCP_MD5 = 252


SADB_AALG_MAX = 252


class SADB_EALG(enum.IntEnum):
    """Encryption algorithm ids (SADB_EALG_* / SADB_X_EALG_*)."""

    NONE = 0
    DESCBC = 2
    _3DESCBC = 3
    X_CAST128CBC = 6
    X_BLOWFISHCBC = 7
    NULL = 11
    X_AESCBC = 12
    X_AESCTR = 13
    X_CHACHA20POLY1305 = 15
    X_AESGCM8 = 18
    X_AESGCM12 = 19
    X_AESGCM16 = 20
    X_CAMELLIACBC = 22
    X_AESGMAC = 23

    X_RIJNDAELCBC = 12
    X_AES = 12


SADB_EALG_MAX = 23


class SADB_X_CALG(enum.IntEnum):
    """Compression algorithm ids."""

    NONE = 0
    OUI = 1
    DEFLATE = 2
    LZS = 3


SADB_X_CALG_MAX = 4


class SADB_IDENTTYPE(enum.IntEnum):
    """sadb_ident_type values."""

    RESERVED = 0
    PREFIX = 1
    FQDN = 2
    USERFQDN = 3
    X_ADDR = 4


class SADB_SAFLAGS(enum.IntFlag):
    """sadb_sa_flags bits (KAME/FreeBSD SADB_X_EXT_* flags)."""

    X_EXT_NONE = 0x0000
    X_EXT_OLD = 0x0001
    X_EXT_IV4B = 0x0010
    X_EXT_DERIV = 0x0020
    X_EXT_CYCSEQ = 0x0040
    X_EXT_RAWCPI = 0x0080
    X_EXT_PRAND = 0x0100
    X_EXT_PZERO = 0x0200
    X_SAFLAGS_ESN = 0x0400


SADB_SAFLAGS_PFS = 0x1
SADB_X_EXT_PSEQ = 0x0000
SADB_X_EXT_PMASK = 0x0300
SADB_KEY_FLAGS_MAX = 0x0FFF
SADB_X_EXT_CLONED = 0x80000000  # internal only, never reported

SADB_X_LIFETIME_ALLOCATIONS = 0
SADB_X_LIFETIME_BYTES = 1
SADB_X_LIFETIME_ADDTIME = 2
SADB_X_LIFETIME_USETIME = 3
PFKEY_SOFT_LIFETIME_RATE = 80

UDP_ENCAP_ESPINUDP = 2  # the only valid sadb_x_nat_t_type value

IF_NAMESIZE = 16
SADB_X_IF_HW_OFFL_NAMESIZE = 32  # room kept in sadb_x_if_hw_offl beyond IF_NAMESIZE


def PFKEY_ALIGN8(n: int) -> int:
    """Round ``n`` up to a multiple of 8 (PFKEY_ALIGN8)."""
    return (n + 7) & ~7


def PFKEY_UNIT64(n: int) -> int:
    """Bytes to 64-bit units (PFKEY_UNIT64)."""
    return n >> 3


def PFKEY_UNUNIT64(n: int) -> int:
    """64-bit units to bytes (PFKEY_UNUNIT64)."""
    return n << 3


def _export_c_names(enum_cls: type[enum.IntEnum], prefix: str,
                    rename: dict[str, str] | None = None) -> dict[str, int]:
    """Build C-named aliases: SADB.ADD -> SADB_ADD, SADB_EXT.X_POLICY -> SADB_X_EXT_POLICY."""
    out: dict[str, int] = {}
    for name, member in enum_cls.__members__.items():
        cname = (rename or {}).get(name)
        if cname is None:
            if name.startswith("X_"):
                head, _, tail = prefix.partition("_")
                cname = f"{head}_X_{tail}_{name[2:]}" if tail else f"{head}_X_{name[2:]}"
            else:
                cname = f"{prefix}_{name.lstrip('_')}"
        out[cname] = member
    return out


_ALIASES: dict[str, int] = {}
_ALIASES.update(_export_c_names(SADB, "SADB"))
_ALIASES.update(_export_c_names(SADB_EXT, "SADB_EXT"))
_ALIASES.update(_export_c_names(SADB_SATYPE, "SADB_SATYPE"))
_ALIASES.update(_export_c_names(SADB_SASTATE, "SADB_SASTATE"))
_ALIASES.update(_export_c_names(SADB_AALG, "SADB_AALG"))
_ALIASES.update(_export_c_names(SADB_EALG, "SADB_EALG", {"_3DESCBC": "SADB_EALG_3DESCBC"}))
_ALIASES.update(_export_c_names(SADB_X_CALG, "SADB_X_CALG",))
_ALIASES.update(_export_c_names(SADB_IDENTTYPE, "SADB_IDENTTYPE"))
_ALIASES.update({
    "SADB_X_EXT_NONE": SADB_SAFLAGS.X_EXT_NONE, "SADB_X_EXT_OLD": SADB_SAFLAGS.X_EXT_OLD,
    "SADB_X_EXT_IV4B": SADB_SAFLAGS.X_EXT_IV4B, "SADB_X_EXT_DERIV": SADB_SAFLAGS.X_EXT_DERIV,
    "SADB_X_EXT_CYCSEQ": SADB_SAFLAGS.X_EXT_CYCSEQ, "SADB_X_EXT_RAWCPI": SADB_SAFLAGS.X_EXT_RAWCPI,
    "SADB_X_EXT_PRAND": SADB_SAFLAGS.X_EXT_PRAND, "SADB_X_EXT_PZERO": SADB_SAFLAGS.X_EXT_PZERO,
    "SADB_X_SAFLAGS_ESN": SADB_SAFLAGS.X_SAFLAGS_ESN,
})
# SADB_X_CALG names are already prefixed with X in C: SADB_X_CALG_DEFLATE.
for _n, _m in SADB_X_CALG.__members__.items():
    _ALIASES[f"SADB_X_CALG_{_n}"] = _m
_ALIASES = {k: v for k, v in _ALIASES.items() if not k.startswith("SADB_X_X_CALG")}
globals().update(_ALIASES)

C_NAMES: dict[str, int] = dict(_ALIASES)
"""Every C-named constant this module exports (name -> value)."""

__all__ = [
    "PF_KEY_V2", "PFKEYV2_REVISION", "PF_KEY", "AF_INET", "AF_INET6", "MCLBYTES",
    "SADB", "SADB_EXT", "SADB_SATYPE", "SADB_SASTATE", "SADB_AALG", "SADB_EALG",
    "SADB_X_CALG", "SADB_IDENTTYPE", "SADB_SAFLAGS",
    "SADB_MAX", "SADB_EXT_MAX", "SADB_SATYPE_MAX", "SADB_SASTATE_MAX", "SADB_AALG_MAX",
    "SADB_EALG_MAX", "SADB_X_CALG_MAX", "SADB_SAFLAGS_PFS", "SADB_X_EXT_PSEQ",
    "SADB_X_EXT_PMASK", "SADB_KEY_FLAGS_MAX", "SADB_X_EXT_CLONED",
    "SADB_X_LIFETIME_ALLOCATIONS", "SADB_X_LIFETIME_BYTES", "SADB_X_LIFETIME_ADDTIME",
    "SADB_X_LIFETIME_USETIME", "PFKEY_SOFT_LIFETIME_RATE", "UDP_ENCAP_ESPINUDP",
    "IF_NAMESIZE", "SADB_X_IF_HW_OFFL_NAMESIZE", "PFKEY_ALIGN8", "PFKEY_UNIT64",
    "PFKEY_UNUNIT64", "C_NAMES",
] + sorted(_ALIASES)
