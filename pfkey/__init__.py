"""A faithful model of FreeBSD's PF_KEY v2: the wire codec (pfkeyv2.h), the
key engine (key.c, keysock.c) and setkey's grammar and dump format.

Sans-I/O: nothing in this package opens a socket, starts a thread or reads the
wall clock; time is injected and sockets are queues.  ``pfkey`` never imports
``ipsec_accel``: offload is reached through a hooks object.
"""

from . import errors, extensions, ipsec, message, pfkeyv2
from .errors import Delivery, PfkeyError
from .extensions import (
    IpsecRequest, RawExtension, SadbAddress, SadbAlg, SadbComb, SadbIdent, SadbKey,
    SadbLifetime, SadbProp, SadbSa, SadbSens, SadbSpirange, SadbSupported, SadbXIfHwOffl,
    SadbXNatTFrag, SadbXNatTPort, SadbXNatTType, SadbXPolicy, SadbXSa2, SadbXSaReplay,
    Sockaddr,
)
from .message import Message, decode

__all__ = [
    "errors", "extensions", "ipsec", "message", "pfkeyv2",
    "Delivery", "PfkeyError", "Message", "decode",
    "IpsecRequest", "RawExtension", "SadbAddress", "SadbAlg", "SadbComb", "SadbIdent",
    "SadbKey", "SadbLifetime", "SadbProp", "SadbSa", "SadbSens", "SadbSpirange",
    "SadbSupported", "SadbXIfHwOffl", "SadbXNatTFrag", "SadbXNatTPort", "SadbXNatTType",
    "SadbXPolicy", "SadbXSa2", "SadbXSaReplay", "Sockaddr",
]
