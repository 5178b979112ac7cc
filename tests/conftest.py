"""
Shared fixtures. Integration tests need a Docker engine: the suite installs and starts one
when it runs as root on a machine with apt-get; with CI=true they never skip.
"""

from __future__ import annotations

# pyinfra's CLI package, which the unit tests import, monkey-patches the standard library
# with gevent on import. Patching after ssl has been imported breaks HTTPS in this process
# (RecursionError inside requests), so patch first, as gevent asks, before anything
# imports ssl.
from gevent import monkey

monkey.patch_all()

import os  # noqa: E402

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
