"""
Walkthrough "Setting up CORS": django-cors-headers in the version the installed omero-web
accepts (pip resolves the spec against it; the walkthrough's ``<3.3`` pin is stale),
``CorsMiddleware`` at index 0.5 and ``CorsPostCsrfMiddleware`` at index 10, and either an
origin whitelist or allow-all (validation rejects both at once). Off unless
``omero_web_cors_origins`` or ``omero_web_cors_allow_all`` is set; turning it off removes
the middleware and properties again (the config section's managed-names rule).
"""

from __future__ import annotations

from .appends import appended_from, cors_appends
from .context import Context, Contribution

TAGS = ("cors", "config")


def contribution(ctx: Context) -> Contribution:
    settings = ctx.settings
    if not (settings.cors_origins or settings.cors_allow_all):
        return Contribution()
    if settings.cors_allow_all:
        to_set = {"omero.web.cors_origin_allow_all": True}
    else:
        to_set = {"omero.web.cors_origin_whitelist": list(settings.cors_origins)}
    return Contribution(
        set=to_set,
        append=appended_from(cors_appends(settings)),
        pip=(settings.cors_headers_spec,),
    )
