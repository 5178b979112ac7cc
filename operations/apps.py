"""
Walkthrough "Installing OMERO.web apps": apps (omero-figure, omero-iviewer, omero-parade,
omero-mapr, ...) are pip packages in the OMERO.web venv plus settings: the Django app in
``omero.web.apps``, and optional ``omero.web.ui.top_links``, ``omero.web.open_with`` and
plugin panes (``omero.web.ui.right_plugins`` / ``center_plugins``) and properties of their
own. They can be added "at any time": a later run installs them, sets their properties and
restarts OMERO.web once.

Updates follow the same rules as OMERO.web: a spec the venv no longer satisfies is
upgraded (with the configuration backed up first, see ``upgrade.py``). An app removed from
``omero_web_apps`` is uninstalled with pip (the deploy records the apps it installed in
``OMERODIR/etc/omeroweb-deploy-apps.json``) and its items leave the settings (the config
section's managed-names rule); apps installed by hand are never touched.
"""

from __future__ import annotations

import json
import re

from packaging.utils import canonicalize_name
from pyinfra import host
from pyinfra.api import FactBase, deploy, operation

from .context import Context, current
from .facts import q
from .ownership import as_user
from .uploads import REFUSED, write_as

TAGS = ("apps",)


def distribution(spec: str) -> str:
    """The distribution name of a pip requirement (``omero-figure>=6`` -> ``omero-figure``)."""
    return re.match(r"^[A-Za-z0-9][A-Za-z0-9._\-]*", spec).group(0)


#: A distribution name as pip prints it; what the record names must look like this.
DISTRIBUTION = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
ALWAYS_KEPT = ("omero-web", "omero-py", "zeroc-ice", "whitenoise", "pip", "setuptools", "wheel", "django")


# argv: the record; prints nothing when there is none, else a marker line and its content
_READ_RECORD = ('[ -e "$1" ] || [ -L "$1" ] || exit 0; if [ -L "$1" ] || [ ! -f "$1" ]; then echo "#not-a-file"; exit 0; fi; '
                'echo "#record"; cat -- "$1" || echo "#unreadable"')


class AppsRecord(FactBase):
    """
    The record of the deployed apps, read as the OMERO.web user (it is in OMERODIR):
    ``{"apps": [...]}``, ``{"apps": []}`` when there is none, or ``{"error": why}`` when it is
    empty, cut short, not JSON or not a list (issue 12: reported, never raised).
    """

    def command(self, path: str, user: str):
        return as_user(user, _READ_RECORD, path) + " 2>/dev/null"

    def process(self, output) -> dict:
        lines = [line for line in output]
        if lines and lines[0].strip() == "#not-a-file":
            return {"not_a_file": True}
        if not lines or lines[0].strip() != "#record":
            return {"apps": []}
        text = "\n".join(lines[1:]).strip()
        if not text or text.endswith("#unreadable"):
            return {"error": "empty file" if not text else "unreadable"}
        try:
            apps = json.loads(text)
        except ValueError as exc:
            return {"error": f"not JSON: {exc}"}
        return {"apps": apps} if isinstance(apps, list) else {"error": "expected a list of apps"}


def corrupted_record_failure(path: str, why: str, venv: str) -> str:
    """The command that fails the run on a corrupted apps record: nothing is uninstalled."""
    message = (
        f"omeroweb-deploy: {path} is corrupted ({why}); no app was uninstalled. This record names the apps the "
        "deploy installed, so that apps removed from the data are uninstalled. To recover: restore the file, or "
        f"remove it (rm {path}) and run again: the deploy then records the apps in the data; apps removed from the "
        f"data earlier stay installed (see `{venv}/bin/pip list`, uninstall them by hand)."
    )
    return f"printf '%s\\n' {q(message)} >&2; exit 1"


@operation()
def uninstall_removed_apps(venv: str, record: str, apps: list[dict], owner: str, protected: list[str] = ()):
    """
    Uninstall the apps this deploy installed earlier that are no longer listed, and keep
    the record of the installed ones current.

    + venv: the OMERO.web virtualenv
    + record: JSON file listing ``{"app", "distribution"}`` of the deployed apps
    + apps: the apps in the data now (same shape)
    + owner: user owning the record (it is read and written as that user)
    + protected: distributions never uninstalled whatever the record says (it is in a folder
      the OMERO.web user owns: OMERO.web itself, WhiteNoise, Ice, pip)

    **Example:** ``uninstall_removed_apps(venv=..., record=..., apps=[{"app": "omero_figure",
    "distribution": "omero-figure"}], owner="omero-web")``
    """
    read = host.get_fact(AppsRecord, path=record, user=owner) or {"apps": []}  # no output: no record
    if read.get("not_a_file"):
        # a link (or a folder) planted where the record goes: never followed, as every write there
        message = (f"{REFUSED} to use {record}: it is a symbolic link or not a regular file, which this deploy "
                   "never makes: remove it, then run again")
        yield f"echo {q(message)} >&2; exit 1"
        return
    if "error" in read:
        yield corrupted_record_failure(record, read["error"], venv)
        return
    previous = read["apps"]
    wanted = {canonicalize_name(app["distribution"]) for app in apps}
    keep = wanted | {canonicalize_name(name) for name in (*protected, *ALWAYS_KEPT)}
    removed = sorted({
        app["distribution"] for app in previous
        if isinstance(app, dict) and isinstance(app.get("distribution"), str)
        and DISTRIBUTION.fullmatch(app["distribution"]) and canonicalize_name(app["distribution"]) not in keep
    })
    if removed:
        yield f"{q(venv + '/bin/python')} -m pip uninstall --yes {' '.join(q(d) for d in removed)}"
    if previous != apps:
        yield from write_as(owner, json.dumps(apps, indent=1) + "\n", record, "644")


@deploy("OMERO.web apps")
def apps(ctx: Context | None = None) -> list:
    """Apps removed from the data uninstalled (installation is part of the omeroweb section's pip step)."""
    ctx = ctx or current()
    if not ctx.selected(*TAGS):
        return []
    settings = ctx.settings
    listed = [{"app": app["app"], "distribution": distribution(app["spec"])} for app in settings.apps]
    changed = uninstall_removed_apps(
        name="Uninstall OMERO.web apps removed from the data",
        venv=settings.venv,
        record=ctx.install.apps_record,
        apps=listed,
        owner=settings.user,
        protected=[distribution(spec) for spec in ctx.pip_specs],
    )
    return [changed]
