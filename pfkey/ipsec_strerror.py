"""libipsec's error codes and texts: ``lib/libipsec/ipsec_strerror.[ch]``.

One table for the policy parser (``pfkey.policy``), the dump printer
(``pfkey.pfkey_dump``) and setkey.  The texts are FreeBSD's exactly, including
its misspelling of code 17 ("Invalid direciton").
"""

from __future__ import annotations

import enum
from typing import Optional


class EIPSEC(enum.IntEnum):
    """``ipsec_strerror.h`` error codes (``__ipsec_errcode``)."""

    NO_ERROR = 0
    NOT_SUPPORTED = 1
    INVAL_ARGUMENT = 2
    INVAL_SADBMSG = 3
    INVAL_VERSION = 4
    INVAL_POLICY = 5
    INVAL_ADDRESS = 6
    INVAL_PROTO = 7
    INVAL_MODE = 8
    INVAL_LEVEL = 9
    INVAL_SATYPE = 10
    INVAL_MSGTYPE = 11
    INVAL_EXTTYPE = 12
    INVAL_ALGS = 13
    INVAL_KEYLEN = 14
    INVAL_FAMILY = 15
    INVAL_PREFIXLEN = 16
    INVAL_DIR = 17
    INVAL_SPI = 18
    NO_PROTO = 19
    NO_ALGS = 20
    NO_BUFS = 21
    DO_GET_SUPP_LIST = 22
    PROTO_MISMATCH = 23
    FAMILY_MISMATCH = 24
    FEW_ARGUMENTS = 25
    SYSTEM_ERROR = 26
    MAX = 27


# ipsec_strerror.c's table, FreeBSD's exact texts (17 is misspelt there).
# Entry 26 is NULL in the table: __ipsec_set_strerror() plugs in the text of
# the failing library call (here: gai_strerror) at run time.
IPSEC_ERRMSG: tuple[Optional[str], ...] = (
    "Success",
    "Not supported",
    "Invalid argument",
    "Invalid sadb message",
    "Invalid version",
    "Invalid security policy",
    "Invalid address specification",
    "Invalid ipsec protocol",
    "Invalid ipsec mode",
    "Invalid ipsec level",
    "Invalid SA type",
    "Invalid message type",
    "Invalid extension type",
    "Invalid algorithm type",
    "Invalid key length",
    "Invalid address family",
    "Invalid prefix length",
    "Invalid direciton",
    "SPI range violation",
    "No protocol specified",
    "No algorithm specified",
    "No buffers available",
    "Must get supported algorithms list first",
    "Protocol mismatch",
    "Family mismatch",
    "Too few arguments",
    None,
    "Unknown error",
)


def ipsec_strerror(code: int, system_text: Optional[str] = None) -> str:
    """``ipsec_strerror()``: the text for an error code.

    Out-of-range codes read as EIPSEC_MAX ("Unknown error").  Code 26 prints
    ``system_text`` (what __ipsec_set_strerror stored); with none, FreeBSD's
    printf would show the NULL entry as "(null)".
    """
    if code < 0 or code > EIPSEC.MAX:
        code = EIPSEC.MAX
    if code == EIPSEC.SYSTEM_ERROR:
        return system_text if system_text is not None else "(null)"
    text = IPSEC_ERRMSG[code]
    assert text is not None
    return text


__all__ = ["EIPSEC", "IPSEC_ERRMSG", "ipsec_strerror"]
