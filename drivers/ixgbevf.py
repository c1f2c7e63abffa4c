"""An ixgbevf-like VF and the PF's mailbox: Linux
``drivers/net/ethernet/intel/ixgbevf/ipsec.c`` (VF side) and the VF message
handlers of ``ixgbe_ipsec.c`` / ``ixgbe_sriov.c`` (PF side);
linux_xfrm_offload.md §5 and profile P3; seed 000 (the RFC's security
questions: trust, and the SPI space shared by the PF and every VF).

* **Every request is a mailbox round trip.**  The VF validates the SA as
  its driver does (same rules as the PF), then posts ``IXGBE_VF_IPSEC_ADD``
  (spi, direction, protocol, family, address, key + salt) to the PF's
  :class:`PfMailbox` -- a real queue served by a real PF thread -- and waits
  for the reply: the PF's handle (``pfsa``) or an errno.  Deletes post
  ``IXGBE_VF_IPSEC_DEL`` with the pfsa.  A reply that does not come within
  ``timeout`` is ETIMEDOUT (fault injection: ``drop_next``, ``delay``); a
  late ADD the PF still carries out then leaks a PF entry until a reset, as
  it would on the card.
* **PF rules** for VF requests: the VF must be trusted *and* the PF's
  ``vf-ipsec`` private flag set, else **EACCES** (a hard failure: nothing is
  recorded, the SA stays in software); only RX SAs are accepted, a TX
  request gets **EOPNOTSUPP**; deleting needs trust (EPERM), an index out of
  range is EINVAL, an entry owned by another function ENOENT, an entry
  already cleared (a PF reset) succeeds silently.
* **Shared tables, isolated tenants** (seed 000): VF entries live in the
  PF's tables (one VF can exhaust the shared 1024: ENOSPC); an RX SA whose
  (destination, SPI) another function already programmed is refused with
  **EEXIST**, so two tenants can never both claim a packet; the RX engine of
  a VF only ever matches entries that VF owns, so one tenant never decrypts
  (or counts) another's traffic.  A PF reset silently drops VF entries: the
  VF's later packets are passed up undecrypted (software decrypts them) and
  its deletes succeed as no-ops.
* **Direction**: FreeBSD never tells the driver (§17.13) and a VF can only
  offload inbound SAs, so a direction-less ``if_sa_newkey`` asks the PF for
  both directions, gets EOPNOTSUPP for TX, removes the RX entry again and
  answers EOPNOTSUPP (REJECTED: software).  With the offload layer's
  "sa_direction" extension an INBOUND SA is offloaded.
"""

from __future__ import annotations

import errno as _errno
import logging
import queue
import threading
from typing import Any, ClassVar, Final, Optional

from .base import MockNic
from .hw import (
    DIR_OUT, KIND_COLLISION, KIND_DEVICE, KIND_PERMISSION, KIND_RESOURCE,
    KIND_UNSUPPORTED, MODE_CRYPTO, HwSa, SaParams,
)
from .ixgbe import IXGBE_VF_IPSEC_ADD, IXGBE_VF_IPSEC_DEL, IxgbePf

__all__ = ["IxgbeVf", "PfMailbox", "IXGBE_VF_IPSEC_ADD", "IXGBE_VF_IPSEC_DEL"]

log = logging.getLogger("drivers.ixgbevf")

_KIND_OF_ERRNO: Final = {
    _errno.EACCES: KIND_PERMISSION, _errno.EPERM: KIND_PERMISSION,
    _errno.EOPNOTSUPP: KIND_UNSUPPORTED, _errno.ENOSPC: KIND_RESOURCE,
    _errno.EEXIST: KIND_COLLISION, _errno.ETIMEDOUT: KIND_DEVICE,
}


class _Reply:
    __slots__ = ("event", "result", "abandoned")

    def __init__(self) -> None:
        self.event = threading.Event()
        self.result: tuple[int, Any] = (_errno.EIO, None)
        self.abandoned = False


class PfMailbox:
    """The PF end of the VF mailboxes: one FIFO, one PF thread (the PF's
    mailbox interrupt handler), started on first use, stopped by
    :meth:`stop` or the PF's detach.

    Faults: ``drop_next`` messages are lost (the VF times out);
    ``delay`` seconds pass before each message is handled.
    """

    def __init__(self, pf: IxgbePf, timeout: float = 1.0) -> None:
        self.pf = pf
        self.timeout = timeout
        self.drop_next = 0
        self.delay = 0.0
        self.messages = 0
        self.timeouts = 0
        self.late = 0
        self._q: queue.Queue[Optional[tuple[Any, dict[str, Any], _Reply]]] = queue.Queue()
        self._thread: Optional[threading.Thread] = None
        self._lock = threading.Lock()

    def _ensure(self) -> None:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._serve, daemon=True,
                                                name=f"{self.pf.name}.mbx")
                self._thread.start()

    def request(self, vf: Any, msg: dict[str, Any]) -> tuple[int, Any]:
        """Post ``msg`` from ``vf`` and wait for the PF's answer."""
        self._ensure()
        box = _Reply()
        self._q.put((vf, msg, box))
        if not box.event.wait(self.timeout):
            box.abandoned = True
            with self._lock:
                self.timeouts += 1
            return _errno.ETIMEDOUT, None
        return box.result

    def stop(self) -> None:
        t = self._thread
        if t is not None and t.is_alive():
            self._q.put(None)
            t.join(5.0)
        self._thread = None

    def _serve(self) -> None:
        while True:
            item = self._q.get()
            if item is None:
                return
            vf, msg, box = item
            with self._lock:
                self.messages += 1
                drop = self.drop_next > 0
                if drop:
                    self.drop_next -= 1
            if drop:
                continue
            if self.delay:
                threading.Event().wait(self.delay)
            try:
                res = self.pf.vf_message(vf, msg)
            except Exception as exc:   # noqa: BLE001 - the PF answers, it does not die
                log.exception("PF mailbox handler failed")
                res = (_errno.EIO, repr(exc))
            if box.abandoned:
                with self._lock:
                    self.late += 1
            box.result = res
            box.event.set()


class IxgbeVf(MockNic):
    """A VF of ``pf`` (module docstring).  ``vf_id`` identifies it to the PF;
    ``trust`` (if given) sets the PF's trust bit for it."""

    nonblocking_methods = False     # waits (see MockNic.nonblocking_methods)

    profile: ClassVar[str] = "ixgbevf"
    dname: ClassVar[str] = "ixv"
    default_modes: ClassVar[tuple[str, ...]] = (MODE_CRYPTO,)

    def __init__(self, name: Optional[str] = None, *, pf: IxgbePf, vf_id: int = 0,
                 trust: Optional[bool] = None, **kw: Any) -> None:
        super().__init__(name, **kw)
        if vf_id in pf.vfs:
            raise ValueError(f"{pf.name} already has VF {vf_id}")
        self.pf = pf
        self.vf_id = vf_id
        pf.vfs[vf_id] = self
        if trust is not None:
            pf.set_vf_trust(vf_id, trust)
        self.sa_table = pf.rx_table
        self.mbx_requests = 0

    def sa_check(self, p: SaParams, direction: int) -> int:
        # ixgbevf_ipsec_add_sa runs the same parser as the PF before asking.
        return self.pf.check_params(p, direction != DIR_OUT)

    def hw_alloc(self, e: HwSa) -> int:
        self.mbx_requests += 1
        err, res = self.pf.mailbox.request(self, {
            "op": IXGBE_VF_IPSEC_ADD, "spi": e.params.spi, "dir": e.direction,
            "proto": e.params.proto, "family": e.params.af, "addr": e.params.dst,
            "key": e.params.enc_key, "entry": e})
        if err:
            if err == _errno.ETIMEDOUT:
                reason = "mailbox timeout"
            else:
                reason = str(res) if res else f"PF answered {err}"
            return self.refuse("newkey", reason, _KIND_OF_ERRNO.get(err, KIND_DEVICE), err,
                               e.params.spi)
        e.aux["pfsa"] = res
        return 0

    def hw_free(self, e: HwSa) -> None:
        pfsa = e.aux.get("pfsa")
        if pfsa is None:
            return
        self.mbx_requests += 1
        err, res = self.pf.mailbox.request(self, {"op": IXGBE_VF_IPSEC_DEL, "pfsa": pfsa})
        if err:
            self.refuse("deinstall", str(res) if res else f"PF answered {err}",
                        _KIND_OF_ERRNO.get(err, KIND_DEVICE), err, e.params.spi)
        e.table, e.index = None, -1

    def detach(self) -> None:
        super().detach()
        self.pf.vf_gone(self)
        self.pf.vfs.pop(self.vf_id, None)
