"""
Walkthrough "Creating a virtual environment": the venv, its pip settings (index, CA bundle)
and pip upgraded where the distro's is too old. What is installed in it comes next: IcePy
(``ice.py``), then OMERO.web (``omeroweb.py``).
"""

from __future__ import annotations

from pyinfra.api import deploy, operation
from pyinfra.operations import files, server

from model.omero_install import OmeroInstall
from host.context import Context, current
from host.facts import VenvReport, q
from host.snapshot import absent, fact_until_change, file_matches, want
from host.uploads import private_file

TAGS = ("venv",)


@operation()
def virtualenv(install: OmeroInstall, python: str, specs: list[str]):
    """
    Create a virtual environment with ``python -m venv`` unless a working one exists.

    A venv left half-made by an interrupted run of this deploy (its marker beside it) is
    recreated with ``--clear``; any other existing folder without ``bin/python`` (``/usr``,
    a data folder, a venv made by hand and broken) is refused, never cleared.

    + install: the OMERO.web install (its venv)
    + python: interpreter that creates it
    + specs: what pip installs in it (the venv report read here is shared with the later steps)

    **Examples:**

    .. code:: python

        virtualenv(
            name="Create the virtualenv /opt/omero/web/venv3",
            install=OmeroInstall("/opt/omero/web/venv3", "/opt/omero/web/omero-web", "omero-web"),
            python="/usr/bin/python3",
            specs=["omero-web>=5.6.1", "whitenoise"],
        )
    """
    path, marker = install.venv, install.creating_marker
    found = fact_until_change(VenvReport, install=install, specs=specs)["state"]
    if found == "ready":
        return
    if found in ("link", "foreign"):
        message = (f"omeroweb-deploy: refusing to create the virtualenv in {path}: it exists and is not a "
                   "virtualenv this deploy was making (it is a link, or a folder with something else in it); "
                   "choose another omero_web_venv, or remove it yourself")
        yield f"echo {q(message)} >&2; exit 1"
        return
    clear = " --clear" if found == "partial" else ""
    parent = path.rsplit("/", 1)[0] or "/"
    yield f"mkdir -p {q(parent)} && touch {q(marker)} && {q(python)} -m venv{clear} {q(path)} && rm -f {q(marker)}"


#: The oldest pip this deploy installs with: its resolver and manylinux2014 wheels (pip 9, which
#: Python 3.6 venvs start with, builds Pillow from source and fails); Python 3.5's newest is 20.3.4.
PIP_FLOOR = "pip>=20.3"
#: PyPI's index, pip's own default since pip 10.
PYPI_INDEX_URL = "https://pypi.org/simple"
#: Below this Python the distros' venvs start with pip 9 (Debian 9, Ubuntu 18.04, CentOS 7 and 8).
OLD_PIP_BELOW = (3, 7)


def pip_conf(ctx: Context) -> str | None:
    """The venv's pip.conf, or None when pip's defaults apply."""
    settings = ctx.settings
    lines = []
    if settings.pip_index_url:
        lines.append(f"index-url = {settings.pip_index_url}")
    elif ctx.profile.python_version < OLD_PIP_BELOW:
        # the pip these distros' venvs start with (9.0) still names pypi.python.org, which only
        # redirects to PyPI (and is not resolved on some networks): name PyPI itself, as pip 10+ do
        lines.append(f"index-url = {PYPI_INDEX_URL}")
    if settings.pip_extra_index_urls:
        lines.append("extra-index-url = " + " ".join(settings.pip_extra_index_urls))
    if settings.extra_ca_certificates:
        # The trust store now holds the extra CAs; pip's own bundle does not.
        lines.append(f"cert = {ctx.profile.ca_bundle}")
    return "[global]\n" + "\n".join(lines) + "\n" if lines else None


@deploy("OMERO.web virtual environment")
def venv(ctx: Context | None = None) -> list:
    """The venv, its pip.conf and an upgraded pip. Returns change markers."""
    ctx = ctx or current()
    settings = ctx.settings
    if not ctx.selected(*TAGS):
        return []
    created = virtualenv(name=f"Create the virtualenv {settings.venv}", install=ctx.install, python=ctx.profile.python,
                         specs=list(ctx.pip_specs))
    conf = pip_conf(ctx)
    dest = ctx.install.pip_conf
    want(files=[dest])
    if conf:
        # root's only: an index URL may hold credentials (hash-compared, never diffed or shown)
        private_file(name="Configure pip in the virtualenv", dest=dest, content=conf,
                     _if=lambda: not file_matches(dest, conf, "600", "root", "root"))
    else:
        files.file(name="No pip.conf in the virtualenv", path=dest, present=False, _if=lambda: not absent(dest))
    # The pip that ensurepip gives Python >= 3.10 handles every wheel and index used here. Older
    # ones are upgraded when the venv is made, and again while below PIP_FLOOR (an upgrade an
    # earlier run could not make: pip 9 reports success when it cannot reach the index).
    upgraded = server.shell(
        name="Upgrade pip in the virtualenv",
        commands=[ctx.install.pip_install(f"--upgrade {q(PIP_FLOOR)}")],
        _if=lambda: ctx.profile.python_version < (3, 10) and (created.did_change() or bool(
            fact_until_change(VenvReport, install=ctx.install, specs=[PIP_FLOOR])["unsatisfied"])),
    )
    return [created, upgraded]
