"""
Walkthrough "OMERO.web upgrade", moving to a new OMERODIR: the configuration is exported
from the old location (``omero config get --show-password``) and loaded into the new one
(``omero config load``), as the walkthrough describes, once. Set
``omero_web_migrate_from_omerodir`` to the old OMERODIR and ``omero_web_omerodir`` (and,
if it moves too, ``omero_web_venv``) to the new places.

- The old OMERODIR is only read: nothing there is changed or removed (delete it yourself
  once the new site is healthy). OMERO.web running from it is stopped, so the service can
  start from the new place on the same port.
- The deploy's record of managed property names moves along, so properties removed from
  the data later are still unset. Root's record of the deployed apps belongs to the venv
  (in the root-only state folder), not to OMERODIR: it stays when the venv stays.
- The export is written owner-only into the private staging folder and deleted once
  loaded; the new OMERODIR records where it was migrated from, so re-runs do nothing.
"""

from __future__ import annotations

from pyinfra import host, state
from pyinfra.api import deploy, operation

from model.omero_install import OmeroInstall
from host.context import Context, current
from host.facts import PathExists, q
from host.ownership import as_user
from host.uploads import remove_as, save_as, save_output_as

# Scripts run as the OMERO.web user (argv after the script); a link in a written place is refused.
_COPY_CONFIG = ('cd / && umask 077 && rm -rf -- "$2" && mkdir -p "$2/etc/grid" '
                '&& [ -f "$1" ] && [ ! -L "$1" ] && cp -- "$1" "$2/etc/grid/config.xml"')
_RMTREE = 'cd / && rm -rf -- "$1"'
_COPY_RECORD = ('cd / && if [ -f "$1" ] && [ ! -L "$1" ]; then [ ! -L "$2" ] && umask 077 '
                '&& cp -- "$1" "$2.new" && mv -f -- "$2.new" "$2"; fi')

TAGS = ("config", "omeroweb")


@operation()
def migrate_configuration(install: OmeroInstall, old_omerodir: str):
    """
    Load the configuration of ``old_omerodir`` into the install's OMERODIR, once.

    + install: the OMERO.web install (its OMERODIR the new one)
    + old_omerodir: OMERODIR to migrate from (only read)

    **Examples:**

    .. code:: python

        migrate_configuration(
            name="Load the configuration of /opt/omero/web/OMERO.web into /opt/omero/web/omero-web",
            install=OmeroInstall("/opt/omero/web/venv3", "/opt/omero/web/omero-web", "omero-web"),
            old_omerodir="/opt/omero/web/OMERO.web",
        )
    """
    old = OmeroInstall(install.venv, old_omerodir, install.user)
    marker = install.migrated_record
    found = host.get_fact(PathExists, paths=[marker, old.config_xml])
    if marker in found:
        return
    if old.config_xml not in found:
        if state.is_executing:
            yield (f"echo {q(f'omero_web_migrate_from_omerodir: no OMERO.web configuration at {old.config_xml}')} "
                   ">&2; exit 1")
        return
    user = install.user
    export = f"{install.staging}/migrated.properties"
    # `omero config` rewrites the config.xml it opens (a new timestamp at least): export
    # from a copy, so the old OMERODIR stays exactly as it was. Both OMERODIRs are the
    # OMERO.web user's: every file here is copied and written by that user, never by root.
    copy = OmeroInstall(install.venv, f"{install.staging}/old-omerodir", user)
    yield as_user(user, _COPY_CONFIG, old.config_xml, copy.omerodir)
    yield (save_output_as(user, copy.omero_cmd("config", "get", "--show-password"), export)
           + f" && {as_user(user, _RMTREE, copy.omerodir)}")
    yield f"{old.omero_cmd('web', 'stop')} || true"  # frees the port for the service in its new place
    yield f"{install.omero_cmd('config', 'load', export)} && {remove_as(user, export)}"
    # (root's apps record is per venv, in the root-only state folder: a venv kept keeps it, a new
    # one holds only the data's apps)
    yield as_user(user, _COPY_RECORD, old.managed_record, install.managed_record)
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
        install=ctx.install,
        old_omerodir=settings.migrate_from_omerodir,
    )
    return [migrated]
