"""
Inventory of the local throwaway target that ``python -m tools.demo`` builds: a Debian 12
container running systemd and sshd, reached over SSH on 127.0.0.1 like a real server.
The demo writes the target's details to ``$OMEROWEB_DEPLOY_CACHE/demo/target.json``.
"""

import json
import os

_cache = os.environ.get("OMEROWEB_DEPLOY_CACHE", os.path.expanduser("~/.cache/omeroweb-deploy"))
with open(os.path.join(_cache, "demo", "target.json")) as _handle:
    _target = json.load(_handle)

demo = [(_target["host"], _target["data"])]
