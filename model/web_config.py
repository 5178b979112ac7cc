"""
OMERO.web's configuration as the data wants it, and the pure diff against what a host has,
in one place: what the deploy appends to OMERO.web's list properties (``appended``: the one
definition the config section and validation share; a property both set whole and appended
to would change on every run, so it is refused), what to set, unset, append and remove, and
the record of the names the deploy manages (the rules are in ``operations/configuration.py``'s
docstring). No pyinfra, no host: the config section applies the diff; the NGINX,
troubleshooting and OMERO.server sections reuse it. ``ctx`` here is anything with
``settings`` and ``features`` (``host.context.Context``).

The other pieces of the configuration: each optional feature's properties
(``model.features``), what counts as a secret (``model.secrecy``), what the host has
(``host.facts.OmeroConfig``), and applying it (``operations.configuration``).
"""

from __future__ import annotations

import hashlib
import json
import re
import shlex
from typing import Any, Mapping

from model.omero_install import OmeroInstall

from model.secrecy import Secrets, is_secret_name, secret_names, url_password

NGINX_EXTRA = "omero.web.nginx_server_extra_config"

# ---- appended to list properties ------------------------------------------------------------

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


# ---- the desired configuration and its diff --------------------------------------------------


def nginx_server_extra_config(config: Mapping[str, Any], feature_directives=()) -> list[str]:
    """
    The generated NGINX site sets ``error_page 502 @maintenance`` in ``location /`` only, so
    it does not apply once a request is handed to ``@proxy_to_app``: with OMERO.web down,
    NGINX answers with its own error page. The same directive at server level (through
    this property, which the generator places in the server block) is inherited there.
    Features add their own server-level directives (TLS, publication redirects).
    """
    extra = config.get(NGINX_EXTRA) or []
    if isinstance(extra, str):
        extra = json.loads(extra)
    prefix = str(config.get("omero.web.prefix") or "").rstrip("/")
    directive = f"error_page 502 @maintenance{'_' + re.sub(r'[^A-Za-z0-9_]+', '', prefix) if prefix else ''};"
    # Hardening: no NGINX version in headers and error pages.
    ours = (directive, "server_tokens off;", *feature_directives)
    return [*extra, *(d for d in ours if d not in extra)]


def serialise(value: Any) -> str | None:
    """A data value as ``omero config`` stores it."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple, dict, Mapping)):
        return json.dumps(value if not isinstance(value, Mapping) else dict(value))
    return str(value)


def desired_config(ctx) -> tuple[dict[str, str | None], dict[str, list]]:
    """The properties to set (None: unset) and the list items to append, from the data."""
    settings = ctx.settings
    features = ctx.features
    to_set: dict[str, Any] = {
        "omero.web.server_list": [list(server) for server in settings.servers]
        if settings.servers else [[settings.server_host, settings.server_port, settings.server_name]],
    }
    if settings.prefix:
        to_set["omero.web.prefix"] = settings.prefix
        to_set["omero.web.static_url"] = f"{settings.prefix}/static/"
    to_set.update(features.set)
    to_set.update(settings.config)  # validation keeps these apart from the dedicated keys
    to_set[NGINX_EXTRA] = nginx_server_extra_config(to_set, features.nginx)
    # one definition with validation, which refuses a property both set here and appended to
    to_append = appended(settings)
    return {k: serialise(v) for k, v in to_set.items()}, to_append


def secret_keys(ctx, keys) -> list[str]:
    """Properties whose values are never shown: by name, the data's list, the features' own."""
    return secret_names(keys, {*ctx.settings.secret_config_keys, *ctx.features.secrets})


def secret_values(ctx) -> Secrets:
    """Every secret value the data holds (masked verbatim in anything collected from a host)."""
    s = ctx.settings
    to_set, _ = desired_config(ctx)
    values = [v for k, v in to_set.items() if v is not None and k in secret_keys(ctx, to_set)]
    values += [s.public_password, s.omero_server_admin_password,
               *(url_password(url) for url in (s.redis_url, s.pip_index_url, *s.pip_extra_index_urls, s.ice_wheel))]
    values += [serialise(v) for k, v in s.omero_server_config.items() if is_secret_name(k, s.secret_config_keys)]
    return Secrets(v for v in values if v)


def sha256(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def differs(current: Mapping[str, Any] | None, value: str) -> bool:
    """Whether a property read from a host (``facts.OmeroConfig``: a secret compared on the host,
    ``{"same"}``, else its hash) differs from ``value``, or is missing."""
    if not current:
        return True
    if "same" in current:
        return not current["same"]
    return current.get("sha256") != sha256(value)


def plan_changes(
    current_config: Mapping[str, dict],
    managed: Mapping[str, Any] | None,
    to_set: Mapping[str, str | None],
    to_append: Mapping[str, list],
) -> dict[str, Any]:
    """
    Pure diff of the current configuration against the data: what to set, unset,
    append and remove, and the new record of managed names.
    """
    managed = managed or {"set": [], "append": {}}
    set_now = {k: v for k, v in to_set.items() if v is not None and differs(current_config.get(k), v)}
    unset = sorted(
        {k for k, v in to_set.items() if v is None and k in current_config}
        | {k for k in managed.get("set", []) if k not in to_set and k in current_config}
    )
    append, remove = [], []
    previous_items = managed.get("append", {})
    for key in sorted(set(to_append) | set(previous_items)):
        wanted = to_append.get(key, [])
        present = current_config.get(key, {}).get("value")
        current_items = json.loads(present) if present else None
        for item in wanted:
            if current_items is None or item not in current_items:
                append.append((key, item))
        for item in previous_items.get(key, []):
            if item not in wanted and current_items and item in current_items:
                remove.append((key, item))
    record = {
        "set": sorted(k for k, v in to_set.items() if v is not None),
        "append": {k: list(v) for k, v in sorted(to_append.items())},
    }
    return {"set": set_now, "unset": unset, "append": append, "remove": remove, "record": record,
            "record_changed": record != managed}


def record_problem(managed: Any) -> str | None:
    """Why a managed-names record read back is unusable (None: usable, or no record)."""
    if managed is None:
        return None
    if not isinstance(managed, dict) or set(managed) - {"set", "append"}:
        return 'expected {"set": [...], "append": {...}}'
    names, items = managed.get("set", []), managed.get("append", {})
    if not (isinstance(names, list) and all(isinstance(n, str) for n in names)
            and isinstance(items, dict) and all(isinstance(v, list) for v in items.values())):
        return 'expected {"set": [names], "append": {name: [items]}}'
    return None


def corrupted_record_failure(path: str, why: str, install_name: str = "OMERO.web") -> str:
    """The command that fails the run on a corrupted managed-names record, saying how to recover."""
    message = (
        f"omeroweb-deploy: {path} is corrupted ({why}); {install_name}'s configuration was not changed. "
        "This record names the properties and list items the deploy manages, so that removing them from the "
        f"data removes them from the host. To recover: restore the file, or remove it (rm {path}) and run again: "
        "the deploy then manages only what the data says, and properties or items it set earlier that have "
        "since left the data stay as they are (check them with `omero config get`)."
    )
    return f"printf '%s\\n' {shlex.quote(message)} >&2; exit 1"
