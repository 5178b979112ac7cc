"""
Walkthrough "OMERO.web upgrade", as one safe operation. When the pip specs are no longer
satisfied by an existing OMERO.web install (a raised version spec), before pip changes
anything:

- the configuration is exported with ``omero config get --show-password`` to
  ``OMERODIR/etc/backups/config-<UTC time>.properties`` (mode 0600, owner omero-web, in a
  0700 folder) and the installed packages are listed beside it (``packages-<time>.txt``);
- ``etc/grid/config.xml`` and the managed-names record are copied, as the OMERO.web user,
  into ``OMERODIR/etc/backups/rollback/`` (0700); root's apps record, by root, beside it in
  the root-only state folder;
- the virtualenv is copied to ``<venv>.previous``.

Both copies are made only when none exists: after a failed or interrupted upgrade the
existing copy is the good one (it is removed only by a healthy run, or consumed by a
rollback), never overwritten by the venv or configuration the failure left behind.

pip failing after it changed the venv, the new venv not importing OMERO.web or not running
``omero web``, OMERO.web not restarting (``service.py``), or the final health check
failing: the previous venv is put back, the configuration and records restored (as the
OMERO.web user), OMERO.web restarted, and the deploy fails saying so. pip failing before it changed anything restores nothing and
restarts nothing (the copies are dropped). Healthy, both copies are removed.
"""

from __future__ import annotations

import time

from pyinfra import host, state
from pyinfra.api import operation

from model.omero_install import OmeroInstall, trusted, untrusted_message
from host.facts import CommandReport, PathExists, VenvReport, q
from host.ownership import as_user
from host.snapshot import existing, fact_until_change
from host.uploads import mkdirs_as, save_output_as


# Run as the OMERO.web user: argv = snapshot folder, files. Copies the files that exist into a
# new folder, then renames it into place; an existing snapshot is kept (it is the good one).
_SNAPSHOT = (
    'cd / || exit 1; dir=$1; shift; [ -e "$dir" ] && [ ! -L "$dir" ] && exit 0; umask 077; '
    'rm -rf "$dir.new" "$dir" && mkdir "$dir.new" || exit 1; '
    'for f in "$@"; do if [ -f "$f" ] && [ ! -L "$f" ]; then cp -p "$f" "$dir.new/" || exit 1; fi; done; '
    'mv "$dir.new" "$dir"'
)
# Run as the OMERO.web user: argv = snapshot folder, files. Puts each file back as it was in the
# snapshot (one absent from it is removed), then removes the snapshot; no snapshot: nothing.
_RESTORE = (
    'cd / || exit 1; dir=$1; shift; { [ -d "$dir" ] && [ ! -L "$dir" ]; } || exit 0; '
    'for f in "$@"; do b="$dir/${f##*/}"; '
    'if [ -L "$f" ] || { [ -e "$f" ] && [ ! -f "$f" ]; }; then echo "refusing to restore $f: not a regular file" >&2; exit 1; fi; '
    'if [ -f "$b" ]; then cp -p "$b" "$f.omeroweb-deploy-new" && mv -f "$f.omeroweb-deploy-new" "$f" || exit 1; '
    'else rm -f "$f" || exit 1; fi; done; rm -rf "$dir"'
)


def _as_root(script: str, *args: str) -> str:
    """``script`` run by root's sh (for root's own records, in the root-only state folder)."""
    return "sh -c " + " ".join(q(a) for a in (script, "sh", *args))


def snapshot(install: OmeroInstall) -> str:
    """Command keeping the configuration and records for a rollback, unless a copy exists:
    OMERODIR's as the OMERO.web user, root's apps record as root."""
    return (f"{as_user(install.user, _SNAPSHOT, install.rollback_dir, *install.rollback_files)} "
            f"&& {_as_root(_SNAPSHOT, install.apps_rollback, install.apps_record)}")


def restore(install: OmeroInstall) -> str:
    """Command putting the kept configuration and records back (OMERODIR's as the OMERO.web user)."""
    return (f"{as_user(install.user, _RESTORE, install.rollback_dir, *install.rollback_files)} "
            f"&& {_as_root(_RESTORE, install.apps_rollback, install.apps_record)}")


def drop_copies(install: OmeroInstall) -> str:
    """Command removing both copies (the snapshots first: a copy without them is retaken)."""
    remove = as_user(install.user, 'cd / && rm -rf "$1"', install.rollback_dir)
    return f"{remove} && rm -rf {q(install.apps_rollback)} {q(install.previous_venv)}"


@operation()
def before_upgrade(install: OmeroInstall, specs: list[str]):
    """
    Back up the configuration and package list and keep a copy of the venv, when an
    installed OMERO.web is about to be upgraded (nothing on a fresh install or re-run).

    + install: the OMERO.web install
    + specs: the pip requirements about to be installed

    **Examples:**

    .. code:: python

        before_upgrade(
            name="Before upgrading: back up the configuration, keep the previous virtualenv",
            install=ctx.install,
            specs=["omero-web>=5.6.1", "whitenoise"],
        )
    """
    if not existing(PathExists, [install.omero]):
        return  # fresh install: nothing to keep
    # the same read as pip_requirements' next (reused when nothing ran in between)
    if not fact_until_change(VenvReport, install=install, specs=specs)["unsatisfied"]:
        return
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    folder, user = install.backups, install.user
    config, packages = f"{folder}/config-{stamp}.properties", f"{folder}/packages-{stamp}.txt"
    # OMERODIR is the OMERO.web user's: the folder and both files are made by that user
    # (umask 077 there: the export holds secrets), never written by root.
    yield mkdirs_as(user, "700", folder)
    yield save_output_as(user, install.omero_cmd("config", "get", "--show-password"), config)
    yield save_output_as(user, install.root_python("-m", "pip", "freeze"), packages)
    yield snapshot(install)
    # Only when no copy exists (an existing one is the good copy of a failed or interrupted
    # upgrade); made under another name, then renamed: a half-made copy is never taken for one.
    venv, previous = install.venv, install.previous_venv
    new = previous + ".omeroweb-deploy-new"
    yield (f"if [ -e {q(previous)} ]; then echo 'Keeping the existing {previous} (left by a failed or interrupted "
           f"upgrade)'; else rm -rf {q(new)} && cp -a {q(venv)} {q(new)} && mv {q(new)} {q(previous)}; fi")


def rollback_command(install: OmeroInstall, restart: str, reason: str) -> str:
    """
    One command putting the previous venv, the configuration and the records back,
    restarting OMERO.web, and failing with ``reason`` (saying so when the rollback fails).
    """
    venv, previous = install.venv, install.previous_venv
    # (the outcome last: the end-of-run summary shows the last lines)
    done = (f"{reason}\nUpgrade rolled back: the previous virtualenv is restored, with the configuration and "
            "records, and OMERO.web restarted on them.")
    failed = (f"{reason}\nUpgrade failed and its rollback failed too (see above): the previous virtualenv is {previous} "
              f"if it still exists, the previous configuration and records in {install.rollback_dir}.")
    # the venv put back is checked before OMERO.web's code starts from it (refused: the rollback failed)
    checked = trusted(venv, restart, refuse=f"{untrusted_message(venv)} >&2; false")
    return (f"{{ rm -rf {q(venv)} && mv {q(previous)} {q(venv)} && {restore(install)} && {checked} "
            f"&& echo {q(done)} >&2 || echo {q(failed)} >&2; }}; exit 1")


def failure_command(install: OmeroInstall, restart: str, reason: str) -> str:
    """Shell run when a step failed: during an upgrade (``<venv>.previous`` exists) roll back; always fail."""
    return f"if [ -d {q(install.previous_venv)} ]; then {rollback_command(install, restart, reason)}; fi; exit 1"


def pip_failure_command(install: OmeroInstall, restart: str) -> str:
    """
    Shell run when ``pip install`` failed: during an upgrade (``<venv>.previous`` exists),
    roll back when pip changed the venv (its package list differs from the copy's), else
    drop the copies and change nothing (not even a restart); always fail.
    """
    venv, previous = install.venv, install.previous_venv
    freeze = "bin/python -m pip freeze --all 2>/dev/null"
    # (a refused venv is not the same: its status, not an empty output, decides)
    same = (f'now=$({trusted(venv, q(venv) + "/" + freeze)}) && before=$({trusted(previous, q(previous) + "/" + freeze)}) '
            '&& [ "$now" = "$before" ]')
    rollback = rollback_command(install, restart, "pip failed halfway through the upgrade (its error is above).")
    return (f"if [ -d {q(previous)} ]; then if {same}; then {drop_copies(install)} "
            f"&& echo 'pip changed nothing: nothing to roll back, OMERO.web not restarted'; else {rollback}; fi; fi; exit 1")


@operation()
def verify_upgrade(install: OmeroInstall, restart: str):
    """
    After an upgrade in this run, check that the new venv imports OMERO.web and runs
    ``omero web``; otherwise roll back at once (later steps would need both).

    + install: the OMERO.web install
    + restart: command restarting OMERO.web

    **Examples:**

    .. code:: python

        verify_upgrade(
            name="After upgrading: OMERO.web imports and runs, else roll back",
            install=ctx.install,
            restart=restart_command("systemd", reset_failed=True),
        )
    """
    if not state.is_executing:
        return
    if not existing(PathExists, [install.previous_venv]):
        return
    check = f"{install.root_python('-c', 'import omeroweb')} && {install.omero_cmd('web', '-h')} > /dev/null"
    output = host.get_fact(CommandReport, command=check)
    if output[-1:] != ["[exit status 0]"]:
        yield rollback_command(install, restart, "The upgraded OMERO.web does not start:\n" + "\n".join(output))
