"""The mock NIC as its mixins see it: the type of ``self`` in
:mod:`drivers.kpi` (the driver KPI) and :mod:`drivers.engine` (the inline
ESP engine).

Both are mixins of :class:`drivers.base.MockNic` and reach the NIC's softc
state (handle and lookup maps, locks, counters), its helpers (refusals,
wire, delivery) and each other's methods through ``self``.  A mixin cannot
name ``MockNic`` as its self type (MockNic is a subclass of the mixin, not a
supertype), so ``self`` is this Protocol: every attribute and method the
mixins use, with MockNic's own types.  MockNic (and every profile) is
checked against it wherever a mixin method is called on one.  Typing only,
as :mod:`pfkey.key_iface` is for the key engine: the mixins import it under
TYPE_CHECKING, and a member a mixin starts using must be added here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Optional, Protocol

if TYPE_CHECKING:  # pragma: no cover
    import collections
    import itertools
    import threading

    from ipsec_accel.ifnet import Ifnet
    from ipsec_accel.mbuf import Mbuf, Zone
    from .base import EspStateFactory
    from .hw import HwSa, HwTable, NicSa, SaParams

__all__ = ["NicCore"]


class NicCore(Protocol):
    """What the :mod:`drivers.kpi` and :mod:`drivers.engine` mixins use of
    :class:`drivers.base.MockNic`."""

    # -- state: MockNic's softc (drivers/base.py says which lock guards what)

    _cnt_lock: threading.Lock
    _handles: dict[int, NicSa]
    _ledger: dict[int, Any]
    _lock: threading.Lock
    _natt_ports: frozenset[int]
    _natt_refs: collections.Counter[int]
    _pol_ids: itertools.count[int]
    _policies: dict[int, Any]
    _poll_lock: threading.Lock
    _rx: dict[tuple[bytes, int], list[HwSa]]
    _tx: dict[int, HwSa]
    counters: dict[str, int]
    esp_state_factory: Optional[EspStateFactory]
    gone: bool
    ifp: Ifnet
    kpi: collections.Counter[str]
    offload_modes: tuple[str, ...]
    out_drv_spi: Optional[Callable[[Mbuf], Optional[int]]]
    rx_queue: collections.deque[Mbuf]
    sa_table: HwTable
    tag_zone: Optional[Zone]

    @property
    def running(self) -> bool: ...

    # base.MockNic
    def _violation(self, text: str) -> None: ...
    def _wire_send(self, data: bytes) -> None: ...
    def refuse(self, op: str, reason: str, kind: str = ..., linux_errno: int = ...,
               spi: int = ...) -> int: ...

    # kpi.DriverKpi
    def _newkey(self, ifpo: Ifnet, sav: Any, drv_spi: int, direction: int,
                op: str) -> tuple[int, Any]: ...
    def _publish(self, priv: NicSa) -> None: ...
    def _release_entries(self, priv: NicSa) -> None: ...
    def _release_entries_list(self, entries: list[HwSa]) -> None: ...
    def _unpublish(self, priv: NicSa) -> None: ...
    def hw_alloc(self, e: HwSa) -> int: ...
    def hw_free(self, e: HwSa) -> None: ...
    def make_entry(self, direction: int, drv_spi: int, p: SaParams, sav: Any, ifpo: Ifnet,
                   vid: int) -> HwSa: ...
    def sa_check(self, p: SaParams, direction: int) -> int: ...
    def sa_directions(self, p: SaParams, direction: int) -> tuple[int, ...] | int: ...
    def sa_install(self, ifpo: Ifnet, sav: Any, drv_spi: int,
                   direction: int) -> tuple[int, Optional[NicSa]]: ...
    def sa_remove(self, ifp: Ifnet, drv_spi: int, priv: Any) -> int: ...
    def sp_attrs(self, sp: Any, inp: Any) -> dict[str, Any]: ...
    def sp_check(self, sp: Any, inp: Any) -> int: ...

    # engine.InlineEngine
    def _count_drop(self, reason: str, e: Optional[HwSa] = ...) -> None: ...
    def _count_rx_crypto(self, e: HwSa, n: int) -> None: ...
    def _count_rx_pass(self, reason: str, n: int, e: Optional[HwSa] = ...) -> None: ...
    def _count_rx_sa(self, e: HwSa, n: int) -> None: ...
    def _count_tx_clear(self, n: int) -> None: ...
    def _count_tx_crypto(self, e: HwSa, n: int) -> None: ...
    def _count_tx_sa(self, e: HwSa, n: int, wire: int) -> None: ...
    def _deliver(self, data: bytes, e: Optional[HwSa], tag_type: Optional[int],
                 csum: int = ...) -> None: ...
    def _rx_crypto(self, e: HwSa, pkt: bytes, off: int) -> None: ...
    def _rx_lookup(self, dst: bytes, spi: int) -> Optional[HwSa]: ...
    def _tx_crypto(self, m: Mbuf, drv_spi: int, seq_hi: int) -> int: ...
