"""
The main job on an embedded default: build a local Debian 12 target running systemd and
sshd (a container reached over SSH on 127.0.0.1, as a real server would be), deploy
OMERO.web to it with ``pyinfra inventories/demo.py deploy.py``, and print its URL.

    tools/dev.sh demo            # build (or reuse) the target and deploy
    tools/dev.sh demo --remove   # remove the target
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from tests.infra.cache import cache_dir
from tests.infra.engine import ensure_docker_engine
from tests.infra.images import ensure_image
from tests.infra.targets import host_ca_certificates, start_systemd_target

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
    print(f"\nOMERO.web answers at {target.url(80, '/')}  (remove the target: tools/dev.sh demo --remove)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
