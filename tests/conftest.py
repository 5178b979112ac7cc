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

import importlib  # noqa: E402
import os  # noqa: E402

import pytest

CI = os.environ.get("CI", "").lower() == "true"


@pytest.fixture(scope="session")
def docker_engine():
    from testbed.engine import ensure_docker_engine
    from testbed.targets import cleanup_stale

    try:
        client = ensure_docker_engine()
    except Exception as exc:  # noqa: BLE001 - any failure to get an engine
        if CI:
            raise
        pytest.skip(f"integration tests need a Docker engine: {exc}")
    cleanup_stale()
    return client


@pytest.fixture(scope="session")
def chromium() -> str:
    """Debian's Chromium, installed as root if missing, and Playwright to drive it: the path."""
    from testbed.browser import ensure_chromium

    try:
        executable = ensure_chromium()
        importlib.import_module("playwright.sync_api")  # from requirements.txt
    except Exception as exc:  # noqa: BLE001 - any failure to get a browser
        if CI:
            raise
        pytest.skip(f"browser checks need Chromium and Playwright: {exc}")
    return executable


@pytest.fixture(scope="session")
def browser(chromium):
    """A headless Chromium that reaches only 127.0.0.1 (testbed/browser.py)."""
    from testbed.browser import Browser

    started = Browser(chromium)
    print(f"browser: Chromium {started.version} ({chromium})")
    try:
        yield started
    finally:
        started.close()


@pytest.fixture(scope="session")
def screenshots(tmp_path_factory):
    """Where the browser checks save their screenshots: docs/screenshots with
    OMEROWEB_UPDATE_SCREENSHOTS=1 (to refresh the docs' pictures), else a pytest temp folder."""
    from pathlib import Path

    if os.environ.get("OMEROWEB_UPDATE_SCREENSHOTS") == "1":
        folder = Path(__file__).resolve().parent.parent / "docs" / "screenshots"
        folder.mkdir(parents=True, exist_ok=True)
        return folder
    return tmp_path_factory.mktemp("screenshots")


@pytest.fixture
def trusted_tmp():
    """A new folder only root can change, up to ``/`` (``tmp_path`` is below ``/tmp``, which every
    account can write): where a test makes a venv whose code the deploy may run
    (``install.trusted``). Needs root; removed after the test."""
    import shutil
    import tempfile
    from pathlib import Path

    base = Path("/var/cache/omeroweb-deploy-tests")
    base.mkdir(mode=0o755, parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(dir=base))
    folder.chmod(0o755)
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)
