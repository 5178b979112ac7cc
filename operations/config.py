"""
Walkthrough "Configuring OMERO.web" and "Configuring Gunicorn": one data dict of
``omero.*`` properties applied with ``omero config`` semantics.

Rules (also in the README):
- ``omero_web_config`` values are set as given (``None`` unsets the property); unchanged
  values change nothing (compared by hash: secrets are never read back in clear).
- ``omero_web_config_append`` items are added to list properties with ``omero config
  append --set`` (from OMERO.web's default list when the property is unset), never twice.
- The deploy records, in ``OMERODIR/etc/omeroweb-deploy-managed.json`` (names only), the
  properties and list items it manages. A property or item removed from the data is
  removed from the configuration on the next run; properties set by hand are left alone.
- Values holding secrets are written to an owner-only file and loaded with ``omero config
  load``: they never appear on a command line or in pyinfra's output.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any, Mapping

from pyinfra import host
from pyinfra.api import deploy, operation

from .context import Context, current
from .appends import appended
from .facts import OmeroWebConfig, managed_state_path, omero_cmd, q
from .prerequisites import staging_dir
from .secrets import Secrets, is_secret_name, secret_names, url_password
from .uploads import remove_as, write_as

TAGS = ("config", "gunicorn", "cors", "redis", "apps", "https", "sessions", "customization", "publishing")
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


def desired_config(ctx: Context) -> tuple[dict[str, str | None], dict[str, list]]:
    """The properties to set (None: unset) and the list items to append, from the data."""
    settings = ctx.settings
    features = ctx.features
    to_set: dict[str, Any] = {
        "omero.web.server_list": [list(server) for server in settings.servers]
        if settings.servers else [[settings.server_host, settings.server_port, settings.server_name]],
    }
    if settings.application_server_port:
        to_set["omero.web.application_server.port"] = settings.application_server_port
    if settings.prefix:
        to_set["omero.web.prefix"] = settings.prefix
        to_set["omero.web.static_url"] = f"{settings.prefix}/static/"
    to_set.update(features.set)
    to_set.update(settings.config)  # validation keeps these apart from the dedicated keys
    to_set[NGINX_EXTRA] = nginx_server_extra_config(to_set, features.nginx)
    # one definition with validation, which refuses a property both set here and appended to
    to_append = appended(settings)
    return {k: serialise(v) for k, v in to_set.items()}, to_append


def secret_keys(ctx: Context, keys) -> list[str]:
    """Properties whose values are never shown: by name, the data's list, the features' own."""
    return secret_names(keys, {*ctx.settings.secret_config_keys, *ctx.features.secrets})


def secret_values(ctx: Context) -> Secrets:
    """Every secret value the data holds (masked verbatim in anything collected from a host)."""
    s = ctx.settings
    to_set, _ = desired_config(ctx)
    values = [v for k, v in to_set.items() if v is not None and k in secret_keys(ctx, to_set)]
    values += [s.public_password, s.omero_server_admin_password,
               *(url_password(url) for url in (s.redis_url, s.pip_index_url, *s.pip_extra_index_urls))]
    values += [serialise(v) for k, v in s.omero_server_config.items() if is_secret_name(k, s.secret_config_keys)]
    return Secrets(v for v in values if v)


def sha256(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


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
    set_now = {k: v for k, v in to_set.items() if v is not None and current_config.get(k, {}).get("sha256") != sha256(v)}
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


def corrupted_record_failure(path: str, why: str) -> str:
    """The command that fails the run on a corrupted managed-names record, saying how to recover."""
    message = (
        f"omeroweb-deploy: {path} is corrupted ({why}); OMERO.web's configuration was not changed. "
        "This record names the properties and list items the deploy manages, so that removing them from the "
        f"data removes them from the host. To recover: restore the file, or remove it (rm {path}) and run again: "
        "the deploy then manages only what the data says, and properties or items it set earlier that have "
        "since left the data stay as they are (check them with `omero config get`)."
    )
    return f"printf '%s\\n' {q(message)} >&2; exit 1"


@operation()
def omero_config(to_set: dict, to_append: dict, secrets: list[str]):
    """
    Apply OMERO.web configuration idempotently (see the module docstring for the rules).

    + to_set: property -> value as stored (None unsets)
    + to_append: list property -> items to ensure
    + secrets: property names whose values must never be shown
    """
    ctx = current()
    settings = ctx.settings
    # pyinfra prints facts' arguments from -v on: Settings' repr shows paths only, never the data's values
    fact = host.get_fact(OmeroWebConfig, settings=settings, secret_keys=secrets)
    if fact is None:
        from pyinfra import state

        if state.is_executing:
            yield (
                f"echo 'OMERO.web is not installed in {settings.venv}: run the venv, ice and omeroweb "
                "sections first' >&2; exit 1"
            )
        fact = {"config": {}, "managed": None}
    # issue 12 (6): never a traceback, never a plan built on a record that cannot be read
    why = fact.get("managed_error") or record_problem(fact["managed"])
    if why:
        yield corrupted_record_failure(managed_state_path(settings), why)
        return
    changes = plan_changes(fact["config"], fact["managed"], to_set, to_append)
    if not (changes["set"] or changes["unset"] or changes["append"] or changes["remove"] or changes["record_changed"]):
        return
    staging = staging_dir(ctx)
    if changes["set"]:
        # written as the OMERO.web user into its owner-only folder: root never writes there
        staged = f"{staging}/config.properties"
        body = "".join(f"{k}={v}\n" for k, v in sorted(changes["set"].items()))
        yield from write_as(settings.user, body, staged, "600")
        yield f"{omero_cmd(settings, 'config', 'load', '-q', staged)} && {remove_as(settings.user, staged)}"
    for key in changes["unset"]:
        yield omero_cmd(settings, "config", "set", key)
    for key, item in changes["append"]:
        yield omero_cmd(settings, "config", "append", "--set", key, json.dumps(item))
    for key, item in changes["remove"]:
        yield omero_cmd(settings, "config", "remove", key, json.dumps(item))
    record = json.dumps(changes["record"], indent=1, sort_keys=True) + "\n"
    yield from write_as(settings.user, record, managed_state_path(settings), "600")


@deploy("OMERO.web configuration")
def config(ctx: Context | None = None) -> list:
    """Configuration properties, Gunicorn settings included. Returns change markers."""
    ctx = ctx or current()
    if not ctx.selected(*TAGS):
        return []
    to_set, to_append = desired_config(ctx)
    applied = omero_config(
        name="Apply OMERO.web configuration",
        to_set=to_set,
        to_append=to_append,
        secrets=secret_keys(ctx, to_set),
    )
    return [applied]
