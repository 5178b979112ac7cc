"""Bad data stops the real pyinfra command line before it connects to any host."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PYINFRA = str(Path(sys.executable).parent / "pyinfra")


def test_bad_data_fails_before_connecting(tmp_path):
    inventory = tmp_path / "inventory.py"
    inventory.write_text(
        'web = [("@fake/web1", {"omero_web_nginx_port": 0}), ("@fake/web2", {"omero_web_ngnix_port": 80})]\n'
    )
    result = subprocess.run(
        [PYINFRA, "-y", str(inventory), "deploy.py"], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "Connecting to hosts" not in output
    assert "omero_web_nginx_port = 0: expected a whole number from 1 to 65535" in output
    assert "omero_web_ngnix_port = 80: unknown key; did you mean omero_web_nginx_port?" in output
    assert "@fake/web1" in output and "@fake/web2" in output
