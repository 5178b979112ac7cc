"""
Walkthrough "OMERO.web upgrade", moving to a new OMERODIR: the configuration is exported
from the old location (``omero config get --show-password``) and loaded into the new one
(``omero config load``), as the walkthrough describes, once. Set
``omero_web_migrate_from_omerodir`` to the old OMERODIR and ``omero_web_omerodir`` (and,
if it moves too, ``omero_web_venv``) to the new places.

- The old OMERODIR is only read: nothing there is changed or removed (delete it yourself
  once the new site is healthy). OMERO.web running from it is stopped, so the service can
  start from the new place on the same port.
- The deploy's own records (managed property names, deployed apps) move along, so data
  removed later is still unset / uninstalled.
- The export is written owner-only into the private staging folder and deleted once
  loaded; the new OMERODIR records where it was migrated from, so re-runs do nothing.
"""

from __future__ import annotations

from pyinfra import host, state
from pyinfra.api import deploy, operation

from .apps import record_path
from .context import Context, current
from .facts import PathExists, managed_state_path, omero_cmd, q
from .ownership import as_user
from .prerequisites import staging_dir
from .uploads import remove_as, save_as, save_output_as

# Scripts run as the OMERO.web user (argv after the script); a link in a written place is refused.
_COPY_CONFIG = ('cd / && umask 077 && rm -rf -- "$2" && mkdir -p "$2/etc/grid" '
                '&& [ -f "$1" ] && [ ! -L "$1" ] && cp -- "$1" "$2/etc/grid/config.xml"')
_RMTREE = 'cd / && rm -rf -- "$1"'
_COPY_RECORD = ('cd / && if [ -f "$1" ] && [ ! -L "$1" ]; then [ ! -L "$2" ] && umask 077 '
                '&& cp -- "$1" "$2.new" && mv -f -- "$2.new" "$2"; fi')

TAGS = ("config", "omeroweb")


def marker_path(omerodir: str) -> str:
    return f"{omerodir}/etc/omeroweb-deploy-migrated-from"


@operation()
def migrate_configuration(old_omerodir: str, staging: str):
    """
    Load the configuration of ``old_omerodir`` into the current OMERODIR, once.

    + old_omerodir: OMERODIR to migrate from (only read)
    + staging: owner-only folder for the exported configuration

    **Example:** ``migrate_configuration(old_omerodir="/opt/omero/web/omero-web",
    staging="/srv/omero-web/etc/.omeroweb-deploy")``
    """
    settings = current().settings
    marker = marker_path(settings.omerodir)
    old_config = f"{old_omerodir}/etc/grid/config.xml"
    found = host.get_fact(PathExists, paths=[marker, old_config])
    if marker in found:
        return
    if old_config not in found:
        if state.is_executing:
            yield (f"echo {q(f'omero_web_migrate_from_omerodir: no OMERO.web configuration at {old_config}')} >&2; "
                   "exit 1")
        return
    old = settings.replace(omerodir=old_omerodir)
    user = settings.user
    export = f"{staging}/migrated.properties"
    # `omero config` rewrites the config.xml it opens (a new timestamp at least): export
    # from a copy, so the old OMERODIR stays exactly as it was. Both OMERODIRs are the
    # OMERO.web user's: every file here is copied and written by that user, never by root.
    copy = f"{staging}/old-omerodir"
    yield as_user(user, _COPY_CONFIG, old_config, copy)
    yield (save_output_as(user, omero_cmd(settings.replace(omerodir=copy), "config", "get", "--show-password"), export)
           + f" && {as_user(user, _RMTREE, copy)}")
    yield f"{omero_cmd(old, 'web', 'stop')} || true"  # frees the port for the service in its new place
    yield f"{omero_cmd(settings, 'config', 'load', export)} && {remove_as(user, export)}"
    for record in (managed_state_path(old), record_path(old_omerodir)):
        new = settings.omerodir + record[len(old_omerodir):]
        yield as_user(user, _COPY_RECORD, record, new)
    yield f"printf '%s\\n' {q(old_omerodir)} | {save_as(user, marker)}"


@deploy("OMERO.web migration to a new OMERODIR")
def migration(ctx: Context | None = None) -> list:
    """The old OMERODIR's configuration loaded into the new one (with ``omero_web_migrate_from_omerodir``)."""
    ctx = ctx or current()
    settings = ctx.settings
    if not (settings.migrate_from_omerodir and ctx.selected(*TAGS)):
        return []
    migrated = migrate_configuration(
        name=f"Load the configuration of {settings.migrate_from_omerodir} into {settings.omerodir}",
        old_omerodir=settings.migrate_from_omerodir,
        staging=staging_dir(ctx),
    )
    return [migrated]
