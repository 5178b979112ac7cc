"""
Walkthrough "Publishing data using OMERO.web": the public user (auto-login with
``omero.web.public.*``: enabled, user, password — a secret, never shown and stored
owner-only — URL filter, GET-only, server id) and its page cache, and publication
redirects in NGINX: ``/pub/<identifier>`` (and paths below it) answers 307 to ``/webclient/?show=project-<id>``
(the Dundee pattern). The walkthrough's "separate public web server" is an inventory
group with its own data (see ``inventories/example.py``).
"""

from __future__ import annotations

from .context import Context, Contribution

TAGS = ("publishing", "config")


def redirect_target(prefix: str, target: str) -> str:
    return target if target.startswith("/") else f"{prefix}/webclient/?show={target}"


def contribution(ctx: Context) -> Contribution:
    s = ctx.settings
    to_set: dict = {}
    if s.public_enabled:
        to_set.update({
            "omero.web.public.enabled": True,
            "omero.web.public.user": s.public_user,
            "omero.web.public.password": s.public_password,
            "omero.web.public.url_filter": s.public_url_filter,
            "omero.web.public.get_only": s.public_get_only,
            "omero.web.public.server_id": s.public_server_id,
        })
        if s.public_cache_enabled:
            to_set["omero.web.public.cache.enabled"] = True
            if s.public_cache_timeout:
                to_set["omero.web.public.cache.timeout"] = s.public_cache_timeout
    prefix = s.prefix or ""
    nginx = tuple(
        # a prefix location, as the walkthrough's: /pub/<id>/ and deeper paths redirect too
        f"location {prefix}/pub/{ident} {{ return 307 {redirect_target(prefix, target)}; }}"
        for ident, target in sorted(s.publications.items())
    )
    return Contribution(set=to_set, nginx=nginx, secrets=("omero.web.public.password",) if s.public_enabled else ())
