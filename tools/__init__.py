"""Command-line tools over the model: ``setkey`` (FreeBSD setkey(8)) and
``pfkeyd`` (the model daemon with the default mock-NIC topology).

Run them as ``python tools/setkey.py ...`` or ``python -m tools.setkey ...``
from the repository root.  Nothing in ``pfkey``, ``ipsec_accel`` or
``drivers`` imports this package.
"""
