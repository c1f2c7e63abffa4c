"""Mock NIC drivers implementing FreeBSD's ``if_ipsec_accel_methods`` (mlx5,
ixgbe, ixgbevf, netdevsim, chelsio and a faulty driver for race tests).  They
really encrypt: each hardware SA runs the project's ESP transform, so a NIC's
wire bytes equal software ESP's for the same SA, IV and sequence number.

Three lines to a host with NICs::

    from drivers import build_host, nics
    host = build_host()                  # DEFAULT_TOPOLOGY: mce0 (mlx5) + ix0 (ixgbe)
    mce0 = nics(host)["mce0"]

Datapath contract (what ``ipsec_accel`` hands a NIC, without importing it):
TX is ``ifp.if_transmit(ifp, m)`` -- packet offload: plaintext and an OUT
drv_spi (any tag strategy, read with the datapath's one accessor
:func:`ipsec_accel.accel_tag.ipsec_accel_out_drv_spi`);
crypto offload: the ESP-framed packet with a
``PACKET_TAG_IPSEC_OUT_CRYPTO_NEEDED`` tag (drv_spi, or (drv_spi, seq_hi));
no tag or drv_spi 2: clear.  RX: a wire calls ``nic.wire_input(bytes)``;
the NIC calls ``rcvif.if_input(rcvif, m)`` with plaintext and a
``PACKET_TAG_IPSEC_ACCEL_IN`` tag whose ``data`` is the drv_spi (crypto
offload: ``PACKET_TAG_IPSEC_IN_CRYPTO_DONE``), or the packet untouched.  A
NIC's modes are ``ifp.if_softc.offload_modes`` (trunk's softc for a vlan),
preferred first.

What each refusal returns (``errno_style="freebsd"``, the default; the
infrastructure records EOPNOTSUPP as a REJECTED handle -- software fallback,
dump shows zeros -- and records nothing for any other errno, leaking the
drv_spi as FreeBSD does; ``errno_style="linux"`` returns the Linux column):

==========  =========================================  ==========  ==========
profile     refusal                                     FreeBSD     Linux
==========  =========================================  ==========  ==========
all         device gone (detached)                      EOPNOTSUPP  EOPNOTSUPP
all         key the card cannot load                    EOPNOTSUPP  EINVAL
all         drv_spi already installed (kernel bug)      EEXIST      EEXIST
mlx5        any mlx5e_xfrm_validate_state rule          EOPNOTSUPP  EINVAL
mlx5        2**24 objects used                          ENOSPC      ENOSPC
mlx5        any mlx5e_xfrm_validate_policy rule (SP)    EINVAL      EINVAL
ixgbe       cipher/key/mode/ESN/NAT-T/AH/mgmt clash     EOPNOTSUPP  EINVAL
ixgbe       TX with VFs, bridge not VEPA                EOPNOTSUPP  EOPNOTSUPP
ixgbe       RX SA, TX SA or RX IP table full            ENOSPC      ENOSPC
ixgbe(vf)   (dst, SPI) owned by another PF/VF           EEXIST      EEXIST
ixgbevf     VF untrusted or PF vf-ipsec off             EACCES      EACCES
ixgbevf     TX SA, or no direction given                EOPNOTSUPP  EOPNOTSUPP
ixgbevf     mailbox timeout                             ETIMEDOUT   ETIMEDOUT
netdevsim   cipher/ICV/key/AH/ESN/compression           EOPNOTSUPP  EINVAL
netdevsim   33 slots used                               ENOSPC      ENOSPC
chelsio     no direction given (TX-only card)           EOPNOTSUPP  EOPNOTSUPP
chelsio     ULD not loaded                              EOPNOTSUPP  EOPNOTSUPP
chelsio     ULD mutex held (contention)                 EBUSY       EBUSY
chelsio     cipher/key/encap/compression                EOPNOTSUPP  EINVAL
faulty      whatever the test programs                  --          --
==========  =========================================  ==========  ==========

Modules: :mod:`drivers.base` (the NIC: ifnet glue, counters and poll),
:mod:`drivers.kpi` (``if_ipsec_accel_methods``), :mod:`drivers.engine`
(the inline ESP engine: TX/RX), :mod:`drivers.hw`
(tables, hardware SAs, errno policy), one module per profile,
:mod:`drivers.topology` (topology files, the default host) and
:mod:`drivers.testing` (helpers for tests).
"""

from . import (
    base, chelsio, engine, faulty, hw, ixgbe, ixgbevf, kpi, mlx5, netdevsim, testing, topology,
)
from .base import POLL_OFF, POLL_THREAD, MockNic, nic_of
from .chelsio import ChelsioNic
from .engine import default_out_drv_spi, set_out_drv_spi_accessor
from .faulty import Fault, FaultPlan, FaultyNic, InjectedFault
from .hw import (
    DIR_IN, DIR_OUT, DIR_UNKNOWN, ERRNO_FREEBSD, ERRNO_LINUX, MODE_CRYPTO, MODE_PACKET, HwSa,
    HwTable, NicSa, Refusal, SaParams,
)
from .ixgbe import IxgbePf
from .ixgbevf import IxgbeVf, PfMailbox
from .mlx5 import Mlx5Nic
from .netdevsim import NetdevsimNic
from .topology import (
    DEFAULT_TOPOLOGY, DRIVERS, Lab, TopologyError, build_host, build_lab, nics, shutdown,
)

__all__ = [
    "base", "chelsio", "engine", "faulty", "hw", "ixgbe", "ixgbevf", "kpi", "mlx5",
    "netdevsim", "testing", "topology",
    "MockNic", "Mlx5Nic", "IxgbePf", "IxgbeVf", "PfMailbox", "NetdevsimNic", "ChelsioNic",
    "FaultyNic", "Fault", "FaultPlan", "InjectedFault", "nic_of", "POLL_OFF", "POLL_THREAD",
    "default_out_drv_spi", "set_out_drv_spi_accessor",
    "DIR_IN", "DIR_OUT", "DIR_UNKNOWN", "ERRNO_FREEBSD", "ERRNO_LINUX", "MODE_CRYPTO",
    "MODE_PACKET", "HwSa", "HwTable", "NicSa", "Refusal", "SaParams",
    "DEFAULT_TOPOLOGY", "DRIVERS", "Lab", "TopologyError", "build_host", "build_lab", "nics",
    "shutdown",
]
