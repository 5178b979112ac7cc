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
from .prerequisites import staging_dir

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
    user = q(settings.user)
    export = f"{staging}/migrated.properties"
    # `omero config` rewrites the config.xml it opens (a new timestamp at least): export
    # from a copy, so the old OMERODIR stays exactly as it was.
    copy = f"{staging}/old-omerodir"
    yield (f"umask 077 && rm -rf {q(copy)} && mkdir -p {q(copy + '/etc/grid')} "
           f"&& cp -p {q(old_config)} {q(copy + '/etc/grid/config.xml')} && chown -R {user}:{user} {q(copy)} "
           f"&& {omero_cmd(settings.replace(omerodir=copy), 'config', 'get', '--show-password')} > {q(export)} "
           f"&& chown {user}:{user} {q(export)} && rm -rf {q(copy)}")
    yield f"{omero_cmd(old, 'web', 'stop')} || true"  # frees the port for the service in its new place
    yield f"{omero_cmd(settings, 'config', 'load', export)} && rm -f {q(export)}"
    for record in (managed_state_path(old), record_path(old_omerodir)):
        new = settings.omerodir + record[len(old_omerodir):]
        yield f"if [ -f {q(record)} ]; then cp -p {q(record)} {q(new)}; fi"
    yield f"echo {q(old_omerodir)} > {q(marker)} && chown {user}:{user} {q(marker)}"


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
