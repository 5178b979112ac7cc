"""
Shared fixtures. Integration tests need a Docker engine: the suite installs and starts one
when it runs as root on a machine with apt-get; with CI=true they never skip.
"""

from __future__ import annotations

import os

import pytest

CI = os.environ.get("CI", "").lower() == "true"


@pytest.fixture(scope="session")
def docker_engine():
    from tests.infra.engine import ensure_docker_engine
    from tests.infra.targets import cleanup_stale

    try:
        client = ensure_docker_engine()
    except Exception as exc:  # noqa: BLE001 - any failure to get an engine
        if CI:
            raise
        pytest.skip(f"integration tests need a Docker engine: {exc}")
    cleanup_stale()
    return client
