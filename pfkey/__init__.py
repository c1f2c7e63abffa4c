"""A faithful model of FreeBSD's PF_KEY v2: the wire codec (pfkeyv2.h), the
key engine (key.c, keysock.c) and setkey's grammar and dump format.

Sans-I/O: nothing in this package opens a socket, starts a thread or reads the
wall clock; time is injected and sockets are queues.  ``pfkey`` never imports
``ipsec_accel``: offload is reached through a hooks object.
"""

from . import (
    clock, errors, extensions, hooks, ipsec, ipsec_strerror, key_debug, keydb, message,
    pfkey_dump,
    pfkeyv2, policy, spd,
)
from .clock import FakeClock, SystemClock
from .errors import Delivery, PfkeyError
from .extensions import (
    IpsecRequest, RawExtension, SadbAddress, SadbAlg, SadbComb, SadbIdent, SadbKey,
    SadbLifetime, SadbProp, SadbSa, SadbSens, SadbSpirange, SadbSupported, SadbXIfHwOffl,
    SadbXNatTFrag, SadbXNatTPort, SadbXNatTType, SadbXPolicy, SadbXSa2, SadbXSaReplay,
    Sockaddr,
)
from .hooks import AccelHooks
from .key import Key
from .keysock import KEY_SENDUP_ALL, KEY_SENDUP_ONE, KEY_SENDUP_REGISTERED, KeySocket
from .message import Message, decode

__all__ = [
    "clock", "errors", "extensions", "hooks", "ipsec", "ipsec_strerror", "key_debug", "keydb",
    "message",
    "pfkey_dump", "pfkeyv2", "policy", "spd",
    "FakeClock", "SystemClock", "AccelHooks", "Key", "KeySocket", "KEY_SENDUP_ONE",
    "KEY_SENDUP_ALL", "KEY_SENDUP_REGISTERED",
    "Delivery", "PfkeyError", "Message", "decode",
    "IpsecRequest", "RawExtension", "SadbAddress", "SadbAlg", "SadbComb", "SadbIdent",
    "SadbKey", "SadbLifetime", "SadbProp", "SadbSa", "SadbSens", "SadbSpirange",
    "SadbSupported", "SadbXIfHwOffl", "SadbXNatTFrag", "SadbXNatTPort", "SadbXNatTType",
    "SadbXPolicy", "SadbXSa2", "SadbXSaReplay", "Sockaddr",
]
