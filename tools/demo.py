"""
The main job on an embedded default: build a local Debian 12 target running systemd and
sshd (a container reached over SSH on 127.0.0.1, as a real server would be), deploy
OMERO.web to it with ``pyinfra inventories/demo.py deploy.py``, and print its URL; where
Debian's Chromium is installed (the test suite installs it), also take a screenshot of the
login page in it and print where it is.

    tools/dev.sh demo            # build (or reuse) the target and deploy
    tools/dev.sh demo --remove   # remove the target
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

from testbed.cache import cache_dir
from testbed.engine import ensure_docker_engine
from testbed.images import ensure_image
from testbed.targets import host_ca_certificates, start_systemd_target

ROOT = Path(__file__).resolve().parent.parent
CONTAINER = "omeroweb-deploy-demo"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--remove", action="store_true", help="remove the demo target and exit")
    args = parser.parse_args()

    client = ensure_docker_engine()
    for old in client.containers.list(all=True, filters={"name": f"^{CONTAINER}$"}):
        old.remove(force=True, v=True)
    if args.remove:
        print(f"removed {CONTAINER}")
        return 0

    target = start_systemd_target(ensure_image("bookworm"), name=CONTAINER, ports=(80,), exact_name=True)
    name, data = target.pyinfra_host()
    data["omero_web_extra_ca_certificates"] = host_ca_certificates()
    target_file = cache_dir() / "demo" / "target.json"
    target_file.parent.mkdir(parents=True, exist_ok=True)
    target_file.write_text(json.dumps({"host": name, "data": data}, indent=1))

    command = [str(Path(sys.executable).parent / "pyinfra"), "-y", "inventories/demo.py", "deploy.py"]
    print("running:", " ".join(command), flush=True)
    result = subprocess.run(command, cwd=ROOT)
    if result.returncode != 0:
        print(f"deploy failed (exit {result.returncode}); the target {CONTAINER} is left running to inspect",
              file=sys.stderr)
        return result.returncode
    url = target.url(80, "/")
    print(f"\nOMERO.web answers at {url}  (remove the target: tools/dev.sh demo --remove)")
    screenshot(url, cache_dir() / "demo" / "login.png")
    return 0


def screenshot(url: str, path: Path) -> None:
    """The login page in a headless Chromium, if one is installed; a failure here is only reported."""
    from testbed.browser import CHROMIUM

    if not os.path.exists(CHROMIUM):
        print(f"(no screenshot: {CHROMIUM} is not installed; `apt-get install chromium` for one)")
        return
    try:
        from testbed.browser import Browser

        browser = Browser(CHROMIUM)
        try:
            visit = browser.visit(url, screenshot=path)
        finally:
            browser.close()
    except Exception as exc:  # noqa: BLE001 - the deploy worked; the picture is a bonus
        print(f"(no screenshot: {exc})", file=sys.stderr)
        return
    blocked = f"; blocked requests to other hosts: {', '.join(visit.outside)}" if visit.outside else ""
    print(f"screenshot of {visit.final_url} ({visit.status} {visit.title!r}): {path}{blocked}")


if __name__ == "__main__":
    sys.exit(main())
