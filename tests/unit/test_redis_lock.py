"""
The Redis the deploy installs answers OMERO.web only: its password (the URL's, or one made on
the host that never leaves it), what OMERO.web is given, and what the plan does with it.
The real Redis is checked by tests/integration/test_features.py and test_security.py.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from model import features
from model.omero_install import HOST_SECRET_TOKEN, REDIS_AUTH_CONF, ROOT_STAGING
from operations.redis import FROM_DATA, GENERATED, auth_conf_from_data
from model.settings import ValidationError, validate
from host.uploads import write_as
from tests.unit.simulate import SimulatedHost, simulate

REDIS = {"omero_web_redis": True}


def contribution(**data):
    settings = validate({**REDIS, **data})
    profile = type("Profile", (), {"redis_package": "redis-server"})()
    return features.redis(settings, profile)


def location(part) -> str:
    return part.set["omero.web.caches"]["default"]["LOCATION"]


def test_a_local_redis_without_a_password_in_the_url_gets_one_made_on_the_host():
    part = contribution()
    assert location(part) == f"redis://:{HOST_SECRET_TOKEN}@127.0.0.1:6379/0"
    assert part.host_secret_file == REDIS_AUTH_CONF
    assert "omero.web.caches" in part.secrets and part.packages == ("redis-server",)


def test_the_urls_password_is_the_one_redis_requires():
    part = contribution(omero_web_redis_url="redis://:s3cret-Pass@localhost:6379/1")
    assert location(part) == "redis://:s3cret-Pass@localhost:6379/1"
    assert part.host_secret_file is None and "omero.web.caches" in part.secrets
    # written for Redis as redis-py reads the URL (unquoted), quoted for Redis's configuration
    assert auth_conf_from_data("redis://:a%22b%5Cc%40d-long@127.0.0.1/0") == \
        f'{FROM_DATA}\nrequirepass "a\\"b\\\\c@d-long"\n'


def test_a_redis_elsewhere_is_left_to_its_owner():
    part = contribution(omero_web_redis_url="redis://cache.example.org:6379/0")
    assert location(part) == "redis://cache.example.org:6379/0"
    assert part.host_secret_file is None and part.packages == () and part.secrets == ()


@pytest.mark.parametrize("url, message", [
    ("redis://bob:s3cret-Pass@127.0.0.1:6379/0", "leave the user name .* out"),
    ("redis://:short@127.0.0.1:6379/0", "8 or more printable ASCII"),
    ("redis://:with%20space-inside@localhost/0", "8 or more printable ASCII"),
    ("redis://:new%0Aline-inside@localhost/0", "8 or more printable ASCII"),
])
def test_a_local_url_redis_could_not_require_is_refused_before_connecting(url, message):
    with pytest.raises(ValidationError, match=message) as refused:
        validate({**REDIS, "omero_web_redis_url": url})
    assert urlsplit(url).password not in str(refused.value)  # the message never shows the password
    validate({**REDIS, "omero_web_redis_url": "redis://default:s3cret-Pass@127.0.0.1:6379/0"})


def test_the_plan_makes_the_password_on_the_host_and_never_carries_it():
    sim = simulate(SimulatedHost("debian", "12"), REDIS)
    made = sim.find(r"od -An -v -N32 -tx1 /dev/urandom")
    assert len(made) == 1 and "printf" in made[0] and GENERATED in made[0]
    assert f"mv -fTZ {ROOT_STAGING}/" in made[0] and f"chown root:redis" in made[0]
    # Redis's own configuration includes it, written as Redis's account where that account owns it
    (include,) = [c for c in sim.find(re.escape(f"include {REDIS_AUTH_CONF}")) if "printf" in c]
    assert "runuser -u redis" in include and "/etc/redis/redis.conf" in include
    # OMERO.web's cache location: the token in what leaves the control machine, the host's
    # password put in its place on the host (awk reads it from the root-only file)
    staged = [content for content in sim.uploads.values() if "omero.web.caches=" in content]
    assert staged and all(HOST_SECRET_TOKEN in content for content in staged)
    (write,) = sim.find(r"awk .*requirepass.*ENVIRON")
    assert REDIS_AUTH_CONF in write
    assert sim.find(r"systemctl restart redis-server")


def test_the_plan_with_the_urls_password_writes_it_root_s_and_redis_s_only():
    sim = simulate(SimulatedHost("debian", "12"), {**REDIS, "omero_web_redis_url": "redis://:s3cret-Pass@127.0.0.1/0"})
    # neither the password generator nor the host-secret writer (the Ice build has an awk of its own)
    assert not sim.find(r"od -An -v -N32 -tx1 /dev/urandom|awk .*requirepass")
    assert sim.uploads[REDIS_AUTH_CONF] == f'{FROM_DATA}\nrequirepass "s3cret-Pass"\n'
    (moved,) = sim.find(r"mv -fTZ \S+ " + re.escape(REDIS_AUTH_CONF))
    assert "chown root:redis" in moved and "chmod 640" in moved
    assert not [c for c in sim.commands if "s3cret-Pass" in c]  # never on a command line


@pytest.mark.skipif(os.geteuid() != 0, reason="runs the write as an account, as root does")
def test_the_hosts_password_is_put_in_place_on_the_host(tmp_path, monkeypatch):
    """``write_as`` with ``host_secret``, run by a real sh (the account's write as root here)."""
    from host import uploads

    monkeypatch.setattr(uploads, "stage", lambda content, dest: iter(()))  # (the upload: written here)
    secret_file, dest = tmp_path / "auth.conf", tmp_path / "out.properties"
    content = f"omero.web.caches={json.dumps({'LOCATION': f'redis://:{HOST_SECRET_TOKEN}@127.0.0.1/0'})}\n"
    commands = list(write_as("root", content, str(dest), "600", host_secret=str(secret_file)))
    write = commands[-1].replace(ROOT_STAGING, str(tmp_path))
    staged = uploads.staged_path(str(dest))
    password = "f00dcafe" * 8
    for held, status in ((f"{GENERATED}\nrequirepass {password}\n", 0), (f"{GENERATED}\n", 3),
                         (f'{FROM_DATA}\nrequirepass "the-datas-own"\n', 3), (None, 3)):
        (tmp_path / os.path.basename(staged)).write_text(content)
        secret_file.unlink(missing_ok=True)
        if held is not None:
            secret_file.write_text(held)
        done = subprocess.run(["sh", "-c", write], capture_output=True, text=True)
        assert done.returncode == status, done.stderr
        if status == 0:
            assert dest.read_text() == content.replace(HOST_SECRET_TOKEN, password)
        else:  # only a password made on the host is taken, never the data's (quoted) one
            assert "holds no password made on this host: run the redis section" in done.stderr
            assert not (tmp_path / os.path.basename(staged)).exists()
        assert not list(tmp_path.glob("*.resolved"))  # the resolved copy never stays


def test_secrets_sent_on_standard_input_are_delivered_and_never_printed(tmp_path):
    """A real pyinfra run (``@local``, at ``-vvv`` and ``--debug``, which print facts' arguments):
    what the deploy sends on a fact's standard input (a secret file's content as hex, the run's
    digest key) reaches the command and appears nowhere in the output."""
    import sys

    root = Path(__file__).resolve().parents[2]
    secret = "S3cret-" + os.urandom(8).hex()
    (tmp_path / "secret.txt").write_text(secret + "\n")
    (tmp_path / "probe.py").write_text(
        "from pyinfra import host\n"
        "from host.snapshot import HostState\n"
        "from host.ownership import SameContent\n"
        "from model.secrecy import HiddenStdin\n"
        f"same = host.get_fact(SameContent, path={str(tmp_path / 'secret.txt')!r}, "
        f"_stdin=HiddenStdin(SameContent.stdin({secret + chr(10)!r})), _get_pty=False)\n"
        f"other = host.get_fact(SameContent, path={str(tmp_path / 'secret.txt')!r}, "
        "_stdin=HiddenStdin(SameContent.stdin('another')), _get_pty=False)\n"
        f"state = host.get_fact(HostState, files=[{str(tmp_path / 'secret.txt')!r}], "
        f"_stdin=HiddenStdin({secret!r}), _get_pty=False)\n"
        "digest = state['files'][next(iter(state['files']))]['sha256']\n"
        "print('RESULT', same, other, digest)\n")
    pyinfra = Path(sys.executable).parent / "pyinfra"
    done = subprocess.run([str(pyinfra), "-y", "-vvv", "--debug", "@local", "probe.py"], cwd=tmp_path,
                          env={**os.environ, "PYTHONPATH": str(root)}, capture_output=True, text=True, timeout=120)
    output = done.stdout + done.stderr
    import hashlib

    keyed = hashlib.sha256((secret + secret + "\n").encode()).hexdigest()
    assert f"RESULT True False {keyed}" in output, output[-3000:]  # delivered: compared and keyed on the host
    assert "<stdin hidden>" in output  # pyinfra did print the facts' arguments
    for form in (secret, (secret + "\n").encode().hex(), secret.encode().hex()):
        assert form not in output.replace(f"RESULT True False {keyed}", "")
