"""
Walkthrough "Troubleshooting": gathers, per host and without changing it, what one looks
at when OMERO.web misbehaves, into local files on the control machine:

    pyinfra inventories/<site>.py operations.troubleshoot.troubleshoot

Each piece goes to ``<dir>/<host name, sanitized>/<piece>.txt``; ``<dir>`` is the data key
``omero_web_troubleshoot_dir`` or ``./troubleshoot-<UTC timestamp>`` (one per run).

Nothing is changed on the host: the pieces are facts read while the operation executes
and the files are written from Python, so the operation yields no command and pyinfra
counts no change. The bundle is meant to be shared (e.g. on the OME forum), so no secret is
written: the configuration comes from ``omero config get`` (never ``--show-password``),
which hides only keys ending in ``pass``/``password``; every secret property (the rule of
``model/secrecy.py``: by name, declared in the data, or by a feature such as a Redis
URL with a password) is masked on the host and again here, and in every piece, URL
credentials and every secret value the data holds are masked as well. Files in OMERODIR
(the OMERO.web log) are read as the OMERO.web user: a link planted there is not followed
by root.
"""

from __future__ import annotations

import os
import re
import time
from typing import Any

from pyinfra import host, state
from pyinfra.api import deploy, operation

from model.omero_install import NGINX_ERROR_LOG, UNTRUSTED_VENV, OmeroInstall
from model.secrecy import MASK, SECRET_NAME, Secrets, mask_config_lines, mask_text
from model.settings import ValidationError
from model.units import SERVICE
from model.web_config import desired_config, secret_keys, secret_values
from host.context import Context, current, run_registry
from host.facts import CommandReport, q
from host.ownership import as_user

DIR_KEY = "omero_web_troubleshoot_dir"
TAIL_LINES = 200
UNSUPPORTED = "unsupported: this omero-web has no 'omero web diagnostics' subcommand"

# Reads `omero config get` on stdin and masks secret values: argv = mask, name regex, secret keys.
_MASK_CONFIG = r"""
import re, sys
mask, pattern, secret = sys.argv[1], re.compile(sys.argv[2], re.I), set(sys.argv[3:])
for line in sys.stdin.read().splitlines():
    key, sep, value = line.partition("=")
    print(key + sep + (mask if sep and value and (key in secret or pattern.search(key)) else value))
"""


def pieces(install: OmeroInstall, service_manager: str, secret_keys=()) -> dict[str, str]:
    """Piece name -> read-only shell command (run as root) that produces it (``secret_keys``:
    property names masked besides those the secret rule names)."""
    omero = install.omero_cmd
    mask = install.root_python("-c", _MASK_CONFIG, MASK, SECRET_NAME, *sorted(set(secret_keys)))
    found: dict[str, str] = {
        "omero-web-status": omero("web", "status"),
        "omero-web-diagnostics": (
            f"if {omero('web', '-h')} 2>&1 | grep -qw diagnostics; "
            f"then {omero('web', 'diagnostics')}; else echo {q(UNSUPPORTED)}; fi"
        ),
        # (every use of the venv's code, the mask's python as root too, only in a venv root alone can change)
        "omero-config": f"{omero('config', 'get')} 2>&1 | {mask}",
    }
    if service_manager == "systemd":
        found["service-status"] = f"systemctl status {SERVICE} --no-pager -l"
        found["service-journal"] = f"journalctl -u {SERVICE} -n {TAIL_LINES} --no-pager"
    else:
        found["service-status"] = f"/etc/init.d/{SERVICE} status"
    found["nginx-test"] = "nginx -t"
    found["omeroweb-log"] = as_user(install.user, f'tail -n {TAIL_LINES} -- "$1"', install.log)
    found["nginx-error-log"] = f"tail -n {TAIL_LINES} {q(NGINX_ERROR_LOG)}"
    return found


def local_dir(value: Any, host_name: str) -> str:
    """The control-machine folder for this run: ``value`` (validated) or ``./troubleshoot-<UTC>``."""
    if value is None:
        stamp = run_registry("troubleshoot").setdefault("stamp", time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()))
        return os.path.abspath(f"troubleshoot-{stamp}")
    if not isinstance(value, str) or not value.strip() or "\n" in value or "\0" in value:
        raise ValidationError(host_name, [f"{DIR_KEY} = {value!r}: expected a folder path on the control machine"])
    path = os.path.abspath(os.path.expanduser(value))
    if os.path.exists(path) and not os.path.isdir(path):
        raise ValidationError(host_name, [f"{DIR_KEY} = {value!r}: exists and is not a folder"])
    return path


def host_folder(base: str, host_name: str) -> str:
    """``base/<host name>`` with every character but letters, digits, ``.``, ``_``, ``-`` as ``_``."""
    return os.path.join(base, re.sub(r"[^A-Za-z0-9._-]+", "_", host_name).strip("._") or "host")


@operation()
def collect(commands: dict[str, str], folder: str, secret_keys: list[str], known: Secrets | None = None):
    """
    Write each command's output to ``folder/<piece>.txt``; changes nothing on the host.

    + commands: piece name -> read-only shell command
    + folder: local folder for this host
    + secret_keys: property names masked in the configuration piece
    + known: secret values masked wherever they appear (its repr never shows them)

    **Examples:**

    .. code:: python

        collect(
            name="Collect OMERO.web troubleshooting data (read only)",
            commands={
                "nginx-test": "nginx -t",
                "service-status": "systemctl status omero-web --no-pager -l",
            },
            folder="/home/deploy/troubleshoot-20250301T101500Z/web1.example.org",
            secret_keys=["omero.web.public.password"],
            known=secret_values(ctx),
        )
    """
    if not state.is_executing:
        return  # read when the operation runs, not when it is planned
    os.makedirs(folder, exist_ok=True)
    refused = []
    for piece, command in commands.items():
        lines = host.get_fact(CommandReport, command=command)
        refused += [line for line in lines if line.startswith(UNTRUSTED_VENV) and line not in refused]
        if piece == "omero-config":
            lines = mask_config_lines(lines, secret_keys, known or ())
        else:
            lines = [mask_text(line, known or ()) for line in lines]
        with open(os.path.join(folder, f"{piece}.txt"), "w", encoding="utf-8") as handle:
            handle.write("\n".join(lines) + "\n")
    host.log(f"troubleshooting data ({len(commands)} files) written to {folder}")
    for refusal in refused:  # the pieces that need the venv's code were not read: the run says why
        yield f"echo {q(refusal)} >&2; exit 1"


@deploy("OMERO.web troubleshooting")
def troubleshoot(ctx: Context | None = None) -> str:
    """Collect status, diagnostics, service state, ``nginx -t`` and log tails; return the local folder."""
    ctx = ctx or current()
    folder = host_folder(local_dir(host.data.get(DIR_KEY), host.name), host.name)
    to_set, _ = desired_config(ctx)
    secret = sorted({*ctx.settings.secret_config_keys, *ctx.features.secrets, *secret_keys(ctx, to_set)})
    collect(
        name="Collect OMERO.web troubleshooting data (read only)",
        commands=pieces(ctx.install, ctx.profile.service_manager, secret),
        folder=folder,
        secret_keys=secret,
        known=secret_values(ctx),
    )
    return folder
