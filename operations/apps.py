"""
Walkthrough "Installing OMERO.web apps": apps (omero-figure, omero-iviewer, omero-parade,
omero-mapr, ...) are pip packages in the OMERO.web venv plus settings: the Django app in
``omero.web.apps``, and optional ``omero.web.ui.top_links``, ``omero.web.open_with`` and
plugin panes (``omero.web.ui.right_plugins`` / ``center_plugins``) and properties of their
own. They can be added "at any time": a later run installs them, sets their properties and
restarts OMERO.web once.

Updates follow the same rules as OMERO.web: a spec the venv no longer satisfies is
upgraded (with the configuration backed up first, see ``upgrade.py``). An app removed from
``omero_web_apps`` is uninstalled with pip and its items leave the settings (the config
section's managed-names rule); apps installed by hand are never touched.

Root decides from a record what to uninstall: the apps the deploy installed, kept by root
(0600) in the root-only state folder, one per venv (``OmeroInstall.apps_record``), never in
OMERODIR, which the OMERO.web account can write (earlier releases kept it there: that copy
is never read, only removed; the first run makes the root record from the data, so an app
dropped from the data before that run stays installed).
"""

from __future__ import annotations

import json
import re
from typing import Any

from packaging.utils import canonicalize_name
from pyinfra import host
from pyinfra.api import FactBase, deploy, operation

from model.omero_install import trusted
from host.context import Context, current
from host.facts import q
from host.snapshot import absent, file_matches, want
from host.uploads import REFUSED, install_staged, remove_as, stage

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


class AppsRecord(FactBase[dict[str, Any]]):
    """
    Root's record of the deployed apps (``OmeroInstall.apps_record``, in the root-only state
    folder): ``{"apps": [...]}``, ``{"apps": []}`` when there is none, ``{"not_a_file": True}``
    for anything but a regular file, or ``{"error": why}`` when it is empty, cut short, not
    JSON or not a record (issue 12: reported, never raised).

    + path: the record's path, in the root-only state folder

    .. code:: python

        {
            "apps": [
                {"app": "omero_figure", "distribution": "omero-figure"},
                {"app": "omero_iviewer", "distribution": "omero-iviewer"},
            ],
        }
    """

    def command(self, path: str):
        return "sh -c " + q(_READ_RECORD) + " sh " + q(path) + " 2>/dev/null"

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
            record = json.loads(text)
        except ValueError as exc:
            return {"error": f"not JSON: {exc}"}
        if not isinstance(record, dict) or not isinstance(record.get("apps"), list):
            return {"error": "expected {\"venv\": ..., \"apps\": [...]}"}
        return {"apps": record["apps"]}


def record_content(venv: str, apps: list[dict]) -> str:
    """The text of the apps record: the venv it is about (for whoever reads it) and its apps."""
    return json.dumps({"venv": venv, "apps": apps}, indent=1) + "\n"


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
def uninstall_removed_apps(venv: str, record: str, apps: list[dict], protected: list[str] = ()):
    """
    Uninstall the apps this deploy installed earlier (root's record says which) that are no
    longer listed.

    + venv: the OMERO.web virtualenv
    + record: root's JSON record of the deployed apps (``{"venv", "apps": [{"app", "distribution"}]}``,
      ``record_content``), in a root-only folder; kept current by ``recorded_apps``
    + apps: the apps in the data now (same shape as the record's)
    + protected: distributions never uninstalled whatever the record says (OMERO.web itself,
      WhiteNoise, Ice, the features' requirements)

    **Examples:**

    .. code:: python

        uninstall_removed_apps(
            name="Uninstall OMERO.web apps removed from the data",
            venv="/opt/omero/web/venv3",
            record="/var/lib/omeroweb-deploy/apps-5011186fad501cbb.json",
            apps=[{"app": "omero_figure", "distribution": "omero-figure"}],
            protected=["omero-web", "whitenoise"],
        )
    """
    if file_matches(record, record_content(venv, apps), "600", "root", "root") or absent(record):
        return  # recorded as the data has it (nothing dropped since), or nothing recorded yet
    read = host.get_fact(AppsRecord, path=record) or {"apps": []}  # no output: no record
    if read.get("not_a_file"):
        message = (f"{REFUSED} to use {record}: it is a symbolic link or not a regular file, which this deploy "
                   "never makes: remove it, then run again")
        yield f"echo {q(message)} >&2; exit 1"
        return
    if "error" in read:
        yield corrupted_record_failure(record, read["error"], venv)
        return
    wanted = {canonicalize_name(app["distribution"]) for app in apps}
    keep = wanted | {canonicalize_name(name) for name in (*protected, *ALWAYS_KEPT)}
    removed = sorted({
        app["distribution"] for app in read["apps"]
        if isinstance(app, dict) and isinstance(app.get("distribution"), str)
        and DISTRIBUTION.fullmatch(app["distribution"]) and canonicalize_name(app["distribution"]) not in keep
    })
    if removed:
        yield trusted(venv, f"{q(venv + '/bin/python')} -m pip uninstall --yes {' '.join(q(d) for d in removed)}")


@operation()
def recorded_apps(record: str, content: str, owner: str, legacy_record: str):
    """
    Root's record of the deployed apps with this content (root's, 0600, staged in the root-only
    folder then renamed into place). When it is first made, the record earlier releases kept
    in OMERODIR is removed as the account (never read: that account can write it, and would
    choose what root uninstalls).

    + record: the record's path, in the root-only state folder
    + content: its text (``record_content``)
    + owner: the OMERO.web account (owner of ``legacy_record``)
    + legacy_record: ``OMERODIR/etc/omeroweb-deploy-apps.json``

    **Examples:**

    .. code:: python

        recorded_apps(
            name="Record the deployed OMERO.web apps (root's)",
            record="/var/lib/omeroweb-deploy/apps-5011186fad501cbb.json",
            content=record_content("/opt/omero/web/venv3", [{"app": "omero_figure", "distribution": "omero-figure"}]),
            owner="omero-web",
            legacy_record="/opt/omero/web/omero-web/etc/omeroweb-deploy-apps.json",
        )
    """
    if file_matches(record, content, "600", "root", "root"):
        return
    if absent(record):
        yield remove_as(owner, legacy_record)
    yield from stage(content, record)
    yield install_staged(record, "root", "root", "600")


@deploy("OMERO.web apps")
def apps(ctx: Context | None = None) -> list:
    """Apps removed from the data uninstalled (installation is part of the omeroweb section's pip step)."""
    ctx = ctx or current()
    if not ctx.selected(*TAGS):
        return []
    settings = ctx.settings
    listed = [{"app": app["app"], "distribution": distribution(app["spec"])} for app in settings.apps]
    record = ctx.install.apps_record
    want(files=[record])  # (read with the host's other root-owned paths)
    changed = uninstall_removed_apps(
        name="Uninstall OMERO.web apps removed from the data",
        venv=settings.venv,
        record=record,
        apps=listed,
        protected=[distribution(spec) for spec in ctx.pip_specs],
    )
    # (not a change OMERO.web needs a restart for)
    recorded_apps(name="Record the deployed OMERO.web apps (root's)", record=record,
                  content=record_content(settings.venv, listed), owner=settings.user,
                  legacy_record=ctx.install.legacy_apps_record)
    return [changed]
