"""
Walkthrough "Configuring OMERO.web", session engine: cache and sessions in Redis. The
distro's Redis server is installed, enabled and started when the URL points at this host
(``omero_web_redis_url`` on 127.0.0.1 / localhost); ``django-redis`` is installed in the
version that works with the installed Django (pip resolves it with omero-web pinned: the
walkthrough's ``<4.9`` pin is stale); ``omero.web.caches`` and ``omero.web.session_engine``
are set. A password in the URL makes ``omero.web.caches`` a secret property.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from pyinfra.api import deploy

from .context import Context, Contribution, current
from .service import ensure_service

TAGS = ("redis",)
CACHE_SESSIONS = "django.contrib.sessions.backends.cache"
LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")


def is_local(url: str) -> bool:
    return (urlsplit(url).hostname or "") in LOCAL_HOSTS


def contribution(ctx: Context) -> Contribution:
    settings = ctx.settings
    if not settings.redis:
        return Contribution()
    caches = {"default": {"BACKEND": "django_redis.cache.RedisCache", "LOCATION": settings.redis_url}}
    return Contribution(
        set={"omero.web.caches": caches, "omero.web.session_engine": CACHE_SESSIONS},
        pip=(settings.django_redis_spec,),
        packages=(ctx.profile.redis_package,) if is_local(settings.redis_url) else (),
        secrets=("omero.web.caches",) if urlsplit(settings.redis_url).password else (),
    )


@deploy("Redis for OMERO.web")
def redis(ctx: Context | None = None) -> None:
    """The local Redis server enabled at boot and running (its package comes with the prerequisites)."""
    ctx = ctx or current()
    settings = ctx.settings
    if not (settings.redis and is_local(settings.redis_url) and ctx.selected(*TAGS)):
        return
    ensure_service(ctx, ctx.profile.redis_service)
