"""
What the deploy appends to OMERO.web's list properties, from the data alone: the one
definition the config section (``appended``) and validation (a property both set whole and
appended to would change on every run, so it is refused) share. Pure: it takes the data's
values (``Settings``) and imports only pure helpers (``install`` for the templates folder).
"""

from __future__ import annotations

from typing import Any

from .install import OmeroInstall

#: WhiteNoise serves the static files: the config section always adds its middleware entry.
WHITENOISE = {"index": 0, "class": "whitenoise.middleware.WhiteNoiseMiddleware"}
#: django-cors-headers' middleware, as the walkthrough places it.
CORS_MIDDLEWARE = (
    {"index": 0.5, "class": "corsheaders.middleware.CorsMiddleware"},
    {"index": 10, "class": "corsheaders.middleware.CorsPostCsrfMiddleware"},
)
#: An app's list fields and the properties they append to.
APP_LIST_PROPERTIES = {
    "top_links": "omero.web.ui.top_links",
    "open_with": "omero.web.open_with",
    "right_plugins": "omero.web.ui.right_plugins",
    "center_plugins": "omero.web.ui.center_plugins",
}


def merge_items(into: dict, more) -> dict:
    """Add ``more``'s list items to ``into`` (property -> items), each item once, in order."""
    for key, items in more.items():
        merged = into.setdefault(key, [])
        merged.extend(item for item in items if item not in merged)
    return into


def cors_appends(v: Any) -> list[tuple[str, dict]]:
    """The CORS middleware, when CORS is on."""
    if not (v.cors_origins or v.cors_allow_all):
        return []
    key = "omero_web_cors_allow_all" if v.cors_allow_all else "omero_web_cors_origins"
    return [(f"{key} (CORS middleware)", {"omero.web.middleware": list(CORS_MIDDLEWARE)})]


def app_appends(v: Any) -> list[tuple[str, dict]]:
    """Per app: its label in ``omero.web.apps``, its list fields."""
    sources = []
    for app in v.apps:
        sources.append((f"omero_web_apps ({app['app']})", {"omero.web.apps": [app["app"]]}))
        sources += [(f"omero_web_apps ({app['app']}'s {field_name})", {prop: list(app[field_name])})
                    for field_name, prop in APP_LIST_PROPERTIES.items() if app[field_name]]
    return sources


def customization_appends(v: Any) -> list[tuple[str, dict]]:
    """The templates folder, top links, "Open with" items."""
    sources = []
    if v.templates:
        # (where the customization section copies them)
        custom = OmeroInstall(v.venv, v.omerodir, v.user).custom_templates
        sources.append(("omero_web_templates", {"omero.web.template_dirs": [custom]}))
    if v.top_links:
        sources.append(("omero_web_top_links", {"omero.web.ui.top_links": list(v.top_links)}))
    if v.open_with:
        sources.append(("omero_web_open_with", {"omero.web.open_with": list(v.open_with)}))
    return sources


def append_sources(v: Any) -> list[tuple[str, dict]]:
    """
    Every list item the deploy appends, as (data key, {property: items}), in the order the
    config section appends them: WhiteNoise's middleware entry (always), the features' items
    (CORS middleware, apps, templates folder, top links, "Open with"), then
    ``omero_web_config_append``.
    """
    sources = [("the WhiteNoise middleware entry the deploy always adds", {"omero.web.middleware": [WHITENOISE]})]
    for feature in (cors_appends, app_appends, customization_appends):
        sources.extend(feature(v))
    sources.append(("omero_web_config_append", dict(v.config_append)))
    return sources


def appended_from(sources: list[tuple[str, dict]]) -> dict[str, list]:
    """Property -> the items of these sources, each once (a feature's ``Contribution.append``)."""
    to_append: dict = {}
    for _, part in sources:
        merge_items(to_append, part)
    return to_append


def appended(v: Any) -> dict[str, list]:
    """Property -> every item the deploy ensures in it, each once (``append_sources``)."""
    return appended_from(append_sources(v))
