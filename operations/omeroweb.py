"""
Walkthrough "Installing OMERO.web" and "OMERO.web upgrade": OMERO.web and WhiteNoise from
pip version specs in the venv (``venv.py``), after IcePy (``ice.py``). Raising a spec is an
upgrade: the configuration is backed up and the previous venv kept first, and a pip or an
OMERO.web that fails after it is rolled back (``host.upgrade``).
"""

from __future__ import annotations

from pyinfra.api import deploy, operation

from model.omero_install import OmeroInstall
from host.context import Context, current
from host.facts import VenvReport, q
from host.service_manager import restart_command
from host.snapshot import fact_until_change, want_existence
from host.upgrade import before_upgrade, pip_failure_command, verify_upgrade

TAGS = ("omeroweb",)


@operation()
def pip_requirements(install: OmeroInstall, specs: list[str], extra_args: list[str] | None = None,
                     on_failure: str | None = None):
    """
    Install the pip requirements the venv does not satisfy yet (nothing when all are met).

    + install: the OMERO.web install (its venv)
    + specs: requirements such as ``omero-web>=5.6.1``
    + extra_args: extra ``pip install`` arguments
    + on_failure: shell run when pip fails (it must end the command failing), e.g. a rollback

    **Examples:**

    .. code:: python

        install = OmeroInstall("/opt/omero/web/venv3", "/opt/omero/web/omero-web", "omero-web")
        pip_requirements(
            name="Install omero-web>=5.6.1, whitenoise",
            install=install,
            specs=["omero-web>=5.6.1", "whitenoise"],
            on_failure=pip_failure_command(install, restart_command("systemd", reset_failed=True)),
        )
    """
    state = fact_until_change(VenvReport, install=install, specs=specs)
    if state["unsatisfied"]:
        # What is already satisfied stays as installed: pip must fit the new requirements
        # around it (e.g. django-redis for the installed Django), not upgrade it on the way.
        args = " ".join(q(a) for a in (*(extra_args or ()), *state["unsatisfied"], *state["pins"]))
        command = install.pip_install(f"--upgrade {args}")
        # (``pip && compile || on_failure``: a failure of either runs ``on_failure``)
        yield f"{command} || {{ {on_failure}; }}" if on_failure else command


@deploy("OMERO.web")
def omeroweb(ctx: Context | None = None) -> list:
    """OMERO.web and WhiteNoise from their pip specs. Returns change markers."""
    ctx = ctx or current()
    if not ctx.selected(*TAGS):
        return []
    specs = list(ctx.pip_specs)
    want_existence([ctx.install.omero, ctx.install.previous_venv])  # (read once with the other sections' paths)
    before_upgrade(
        name="Before upgrading: back up the configuration, keep the previous virtualenv",
        install=ctx.install,
        specs=specs,
    )
    # (for rollbacks: a crash loop's start limit must not stop one)
    restart = restart_command(ctx.profile.service_manager, reset_failed=True)
    installed = pip_requirements(
        name=f"Install {', '.join(specs)}", install=ctx.install, specs=specs,
        # during an upgrade (a previous venv kept), a pip that fails halfway is rolled back
        on_failure=pip_failure_command(ctx.install, restart),
    )
    verify_upgrade(
        name="After upgrading: OMERO.web imports and runs, else roll back",
        install=ctx.install,
        restart=restart,
    )
    return [installed]
