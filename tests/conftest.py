"""Shared test configuration.

Under CI (CI=true, as .ci/run sets it) hypothesis runs derandomized so a CI
result is reproducible; locally it explores new examples each run.
"""

from __future__ import annotations

import os
from typing import Iterator

import pytest
from hypothesis import HealthCheck, settings

from ipsec_accel.lab import Lab

#: The offload rig fixtures (offload_rig, make_offload_rig, ...), once for all.
pytest_plugins = ["ipsec_accel.testing"]

settings.register_profile(
    "ci", derandomize=True, deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.register_profile("dev", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("ci" if os.environ.get("CI") == "true" else "dev")


@pytest.fixture
def lab() -> Iterator[Lab]:
    """``Lab.build("generic")`` with install_transport()'s default SA pair and
    policies (test_ipsec_input, test_ipsec_output)."""
    lb = Lab.build("generic")
    lb.install_transport()
    yield lb
    lb.shutdown()
