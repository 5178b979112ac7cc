"""
Walkthrough "Configuring OMERO.web", session engine: cache and sessions in Redis. The
distro's Redis server is installed, enabled and started when the URL points at this host
(``omero_web_redis_url`` on 127.0.0.1 / localhost); ``django-redis`` is installed in the
version that works with the installed Django (pip resolves it with omero-web pinned: the
walkthrough's ``<4.9`` pin is stale); ``omero.web.caches`` and ``omero.web.session_engine``
are set. A password in the URL makes ``omero.web.caches`` a secret property.
"""

from __future__ import annotations

from pyinfra.api import deploy

from .context import Context, current
from .features import is_local
from .service_manager import ensure_service

TAGS = ("redis",)


@deploy("Redis for OMERO.web")
def redis(ctx: Context | None = None) -> None:
    """The local Redis server enabled at boot and running (its package comes with the prerequisites)."""
    ctx = ctx or current()
    settings = ctx.settings
    if not (settings.redis and is_local(settings.redis_url) and ctx.selected(*TAGS)):
        return
    ensure_service(ctx.profile, ctx.profile.redis_service)
