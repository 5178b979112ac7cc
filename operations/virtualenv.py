"""
Walkthrough "Creating a virtual environment" and "Installing OMERO.web": the venv, its
pip settings (index, CA bundle), pip upgraded, then OMERO.web and WhiteNoise from pip
version specs. IcePy, installed between the two, lives in ``ice.py``.
"""

from __future__ import annotations

from pyinfra import host
from pyinfra.api import deploy, operation
from pyinfra.operations import files, server

from .context import Context, current
from .facts import PipRequirements, q
from .host_state import absent, fact_until_change, file_matches, want, want_existence
from .ownership import VenvState
from .service_manager import restart_command
from .upgrade import before_upgrade, pip_failure_command, verify_upgrade
from .uploads import private_file

TAGS = ("venv",)


def creating_marker(path: str) -> str:
    """Beside the venv (in its root-owned parent) while this deploy creates it."""
    return path + ".omeroweb-deploy-creating"


@operation()
def virtualenv(path: str, python: str):
    """
    Create a virtual environment with ``python -m venv`` unless a working one exists.

    + path: the venv folder
    + python: interpreter that creates it

    A venv left half-made by an interrupted run of this deploy (its marker beside it) is
    recreated with ``--clear``; any other existing folder without ``bin/python`` (``/usr``,
    a data folder, a venv made by hand and broken) is refused, never cleared.
    """
    marker = creating_marker(path)
    found = host.get_fact(VenvState, path=path, marker=marker)
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


@operation()
def pip_requirements(venv: str, specs: list[str], extra_args: list[str] | None = None, on_failure: str | None = None):
    """
    Install the pip requirements the venv does not satisfy yet (nothing when all are met).

    + venv: the virtual environment
    + specs: requirements such as ``omero-web>=5.6.1``
    + extra_args: extra ``pip install`` arguments
    + on_failure: shell run when pip fails (it must end the command failing), e.g. a rollback

    **Example:** ``pip_requirements(venv="/opt/omero/web/venv3", specs=["whitenoise"])``
    """
    state = fact_until_change(PipRequirements, venv=venv, specs=specs)
    if state["unsatisfied"]:
        # What is already satisfied stays as installed: pip must fit the new requirements
        # around it (e.g. django-redis for the installed Django), not upgrade it on the way.
        args = " ".join(q(a) for a in (*(extra_args or ()), *state["unsatisfied"], *state["pins"]))
        install = f"{q(venv + '/bin/python')} -m pip install --upgrade {args}"
        yield f"{install} || {{ {on_failure}; }}" if on_failure else install


def pip_conf(ctx: Context) -> str | None:
    """The venv's pip.conf, or None when pip's defaults apply."""
    settings = ctx.settings
    lines = []
    if settings.pip_index_url:
        lines.append(f"index-url = {settings.pip_index_url}")
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
    created = virtualenv(name=f"Create the virtualenv {settings.venv}", path=settings.venv, python=ctx.profile.python)
    conf = pip_conf(ctx)
    dest = f"{settings.venv}/pip.conf"
    want(files=[dest])
    if conf:
        # root's only: an index URL may hold credentials (hash-compared, never diffed or shown)
        private_file(name="Configure pip in the virtualenv", dest=dest, content=conf,
                     _if=lambda: not file_matches(dest, conf, "600", "root", "root"))
    else:
        files.file(name="No pip.conf in the virtualenv", path=dest, present=False, _if=lambda: not absent(dest))
    upgraded = server.shell(
        name="Upgrade pip in the new virtualenv",
        commands=[f"{q(settings.venv + '/bin/python')} -m pip install --upgrade pip"],
        # The pip that ensurepip gives Python >= 3.10 handles every wheel and index used here.
        _if=lambda: created.did_change() and ctx.profile.python_version < (3, 10),
    )
    return [created, upgraded]


@deploy("OMERO.web")
def omeroweb(ctx: Context | None = None) -> list:
    """OMERO.web and WhiteNoise from their pip specs. Returns change markers."""
    ctx = ctx or current()
    settings = ctx.settings
    if not ctx.selected("omeroweb"):
        return []
    specs = [settings.version_spec, *filter(None, [settings.omero_py_spec]), settings.whitenoise_spec, *ctx.features.pip]
    want_existence([ctx.install.omero, ctx.install.previous_venv])  # (read once with the other sections' paths)
    before_upgrade(
        name="Before upgrading: back up the configuration, keep the previous virtualenv",
        install=ctx.install,
        specs=specs,
    )
    # (for rollbacks: a crash loop's start limit must not stop one)
    restart = restart_command(ctx.profile.service_manager, reset_failed=True)
    installed = pip_requirements(
        name=f"Install {', '.join(specs)}", venv=settings.venv, specs=specs,
        # during an upgrade (a previous venv kept), a pip that fails halfway is rolled back
        on_failure=pip_failure_command(ctx.install, restart),
    )
    verify_upgrade(
        name="After upgrading: OMERO.web imports and runs, else roll back",
        install=ctx.install,
        restart=restart,
    )
    return [installed]
