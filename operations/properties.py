"""
OMERO.web's properties as the data wants them, and the pure diff against what a host has:
what to set, unset, append and remove, and the record of the names the deploy manages
(the rules are in ``operations/config.py``'s docstring). No pyinfra, no host: the config
section applies the diff; the NGINX, troubleshooting and OMERO.server sections reuse it.
``ctx`` here is anything with ``settings`` and ``features`` (``context.Context``).
"""

from __future__ import annotations

import hashlib
import json
import re
import shlex
from typing import Any, Mapping

from .appends import appended
from .secrets import Secrets, is_secret_name, secret_names, url_password

NGINX_EXTRA = "omero.web.nginx_server_extra_config"


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
