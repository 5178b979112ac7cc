"""
Walkthrough "OMERO.web UI customization" (web side): templates shipped from the control
machine (``omero_web_templates``, copied to ``OMERODIR/etc/templates/custom`` and added to
``omero.web.template_dirs``), an index page (``omero.web.index_template``), a template
included in every page (``omero.web.base_include_template``), the login logo, login
redirection, top links and "Open with" items. The settings that OMERO.server serves to
its clients (dropdown labels, orphans, scripts, download policy) are in
``omero_server.py``.
"""

from __future__ import annotations

from pyinfra.api import deploy

from host.context import Context, current
from host.uploads import synced_as

TAGS = ("customization",)


@deploy("OMERO.web UI customization")
def customization(ctx: Context | None = None) -> list:
    """The custom templates folder, in sync with ``omero_web_templates`` (files removed there are removed)."""
    ctx = ctx or current()
    settings = ctx.settings
    if not (settings.templates and ctx.selected(*TAGS)):
        return []
    # in OMERODIR, the OMERO.web user's: written as that user, never as root
    synced = synced_as(
        name="Copy the custom OMERO.web templates",
        user=settings.user,
        src=settings.templates,
        dest=ctx.install.custom_templates,
        mode="644",
        dir_mode="755",
    )
    return [synced]
