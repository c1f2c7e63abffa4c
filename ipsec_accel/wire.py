"""Wires between model hosts, with optional pcap capture.

A :class:`Wire` is a point-to-point cable with two ends, ``wire.a`` and
``wire.b`` (:class:`WirePort`).  Each end is attached to a receiver -- any
callable taking the bytes of one frame, typically a mock NIC's RX entry -- and
``port.send(data)`` delivers ``data`` to the receiver at the other end.

What travels is an IP datagram (the model's NICs have no L2 header).  Capture
writes one pcap per wire covering both directions, ``LINKTYPE_RAW`` by default
(the datagram as is) or ``LINKTYPE_ETHERNET`` with a synthetic Ethernet header
whose MACs identify the sending end (``mac_a``/``mac_b``, locally administered
``02:00:00:00:00:01`` / ``:02`` by default) and whose ethertype follows the IP
version.  Timestamps come from the injectable clock (see :mod:`.pcap`).

Delivery is synchronous in the sender's thread -- deterministic, no hidden
threads -- with one refinement: a frame sent *while a receiver on the same
thread is still running* (a host answering from inside its RX path, on this or
any other wire) is queued and delivered when that receiver returns.  So a
ping-pong of any length runs as a loop, not a recursion, and frames are
delivered in the order they were sent.  An exception raised by a receiver
propagates to the outermost ``send``; frames still queued behind it on that
thread are dropped and counted (``dropped_error``).

``set_link(False)`` unplugs the cable: frames are dropped (and not
captured) until it is plugged back.  A frame sent to an end with no receiver
is captured (it was on the wire) and counted in ``dropped_noreceiver``.

This models no FreeBSD file; it is the lab bench the model hosts sit on.
"""

from __future__ import annotations

import os
import threading
from collections import deque
from typing import Any, Callable, NamedTuple

from .pcap import LINKTYPE_ETHERNET, LINKTYPE_RAW, ClockLike, PcapWriter, _time_fn, ether_frame

__all__ = ["Wire", "WirePort", "WireStats", "Receiver"]

#: A receiver gets the bytes of one frame.
Receiver = Callable[[bytes], Any]
#: A tap sees every frame put on the wire: (sending side 0/1, data, timestamp).
Tap = Callable[[int, bytes, float], Any]


class WireStats(NamedTuple):
    """Per-direction counters; index 0 is a->b, 1 is b->a."""

    packets: tuple[int, int]
    bytes: tuple[int, int]
    delivered: tuple[int, int]
    dropped_link: tuple[int, int]
    dropped_noreceiver: tuple[int, int]
    dropped_error: tuple[int, int]


class WirePort:
    """One end of a wire."""

    __slots__ = ("wire", "side", "receiver", "mac", "label")

    def __init__(self, wire: Wire, side: int, mac: str, label: str) -> None:
        self.wire = wire
        self.side = side
        self.receiver: Receiver | None = None
        self.mac = mac
        self.label = label

    def attach(self, receiver: Receiver | None) -> None:
        """Plug a receiver into this end (None unplugs it)."""
        self.receiver = receiver

    def send(self, data: bytes | bytearray | memoryview) -> bool:
        """Transmit ``data`` towards the other end.  Returns False when the
        frame was dropped because the link is down."""
        return self.wire.transmit(self.side, data)

    @property
    def peer(self) -> WirePort:
        return self.wire.ports[1 - self.side]

    def __repr__(self) -> str:
        return f"<WirePort {self.wire.name}.{self.label}>"


# Per-thread delivery state shared by all wires: the trampoline queue and
# whether this thread is currently inside a receiver.
_tls = threading.local()


class Wire:
    """A cable between two endpoints (see the module docstring).

    >>> got = []
    >>> w = Wire("w0")
    >>> w.b.attach(got.append)
    >>> w.a.send(b"\\x45hello")
    True
    >>> got
    [b'Ehello']
    """

    def __init__(self, name: str = "wire0", *, capture: str | os.PathLike[str] | PcapWriter | None = None,
                 linktype: int = LINKTYPE_RAW, clock: ClockLike | None = None,
                 mac_a: str = "02:00:00:00:00:01", mac_b: str = "02:00:00:00:00:02",
                 receiver_a: Receiver | None = None, receiver_b: Receiver | None = None) -> None:
        if linktype not in (LINKTYPE_RAW, LINKTYPE_ETHERNET):
            raise ValueError("linktype must be LINKTYPE_RAW or LINKTYPE_ETHERNET")
        self.name = name
        self.linktype = linktype
        self._clock = _time_fn(clock)
        self.ports = (WirePort(self, 0, mac_a, "a"), WirePort(self, 1, mac_b, "b"))
        self.a, self.b = self.ports
        self.a.attach(receiver_a)
        self.b.attach(receiver_b)
        self._owns_capture = False
        self.capture: PcapWriter | None = None
        if capture is not None:
            if isinstance(capture, PcapWriter):
                if capture.linktype != linktype:
                    raise ValueError("capture writer link type differs from the wire's")
                self.capture = capture
            else:
                self.capture = PcapWriter(capture, linktype, clock=self._clock)
                self._owns_capture = True
        self.link_up = True
        self._taps: list[Tap] = []
        # Counters are updated under this lock (several threads may send).
        self._lock = threading.Lock()
        self._packets = [0, 0]
        self._bytes = [0, 0]
        self._delivered = [0, 0]
        self._drop_link = [0, 0]
        self._drop_norx = [0, 0]
        self._drop_err = [0, 0]

    # ------------------------------------------------------------------ API

    def connect(self, receiver_a: Receiver | None, receiver_b: Receiver | None) -> Wire:
        self.a.attach(receiver_a)
        self.b.attach(receiver_b)
        return self

    def set_link(self, up: bool) -> None:
        """Plug (True) or unplug (False) the cable."""
        self.link_up = up

    def add_tap(self, tap: Tap) -> None:
        """Observe every frame put on the wire (after the link check)."""
        self._taps.append(tap)

    def transmit(self, side: int, data: bytes | bytearray | memoryview) -> bool:
        """Send ``data`` from end ``side`` (0 = a, 1 = b) to the other end."""
        if not self.link_up:
            with self._lock:
                self._drop_link[side] += 1
            return False
        frame = bytes(data)
        ts = self._clock()
        with self._lock:
            self._packets[side] += 1
            self._bytes[side] += len(frame)
        cap = self.capture
        if cap is not None:
            if self.linktype == LINKTYPE_ETHERNET:
                src = self.ports[side].mac
                dst = self.ports[1 - side].mac
                cap.write(ether_frame(dst, src, frame), ts)
            else:
                cap.write(frame, ts)
        for tap in self._taps:
            tap(side, frame, ts)
        self._deliver(1 - side, frame)
        return True

    @property
    def stats(self) -> WireStats:
        with self._lock:
            return WireStats(tuple(self._packets), tuple(self._bytes),  # type: ignore[arg-type]
                             tuple(self._delivered), tuple(self._drop_link),  # type: ignore[arg-type]
                             tuple(self._drop_norx), tuple(self._drop_err))  # type: ignore[arg-type]

    def close(self) -> None:
        """Close a capture file this wire opened."""
        if self.capture is not None and self._owns_capture:
            self.capture.close()

    def __enter__(self) -> Wire:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<Wire {self.name} link={'up' if self.link_up else 'down'}>"

    # ------------------------------------------------------------ internals

    def _deliver(self, to_side: int, frame: bytes) -> None:
        q: deque[tuple[Wire, int, bytes]] | None = getattr(_tls, "queue", None)
        if q is not None:
            # Inside a receiver on this thread: trampoline.
            q.append((self, to_side, frame))
            return
        q = _tls.queue = deque()
        q.append((self, to_side, frame))
        try:
            while q:
                wire, side, f = q.popleft()
                wire._deliver_now(side, f)
        except BaseException:
            # Account for what will never be delivered, then propagate.
            for wire, side, _ in q:
                with wire._lock:
                    wire._drop_err[1 - side] += 1
            raise
        finally:
            _tls.queue = None

    def _deliver_now(self, to_side: int, frame: bytes) -> None:
        rx = self.ports[to_side].receiver
        if rx is None:
            with self._lock:
                self._drop_norx[1 - to_side] += 1
            return
        with self._lock:
            self._delivered[1 - to_side] += 1
        rx(frame)
