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
- A run's ``omero config`` commands are the lines of one ``omero load`` (one ``omero``
  start instead of one per command: ``OmeroInstall.omero_commands``).

Where each piece lives: the desired configuration, what is appended and the diff
(``model.web_config``), each optional feature's properties (``model.features``), what counts
as a secret (``model.secrecy``), what the host has (``host.facts.OmeroConfig``), and applying
the diff (``omero_config`` below).
"""

from __future__ import annotations

import json

from pyinfra import host, state
from pyinfra.api import deploy, operation

from model.features import CONFIG_TAGS
from model.omero_install import HOST_SECRET_TOKEN, OmeroInstall, untrusted_failure
from model.secrecy import HiddenStdin
from model.web_config import corrupted_record_failure, desired_config, plan_changes, record_problem, secret_keys
from host.context import Context, current
from host.facts import OmeroConfig, wanted_secrets
from host.uploads import remove_as, write_as

TAGS = CONFIG_TAGS


@operation()
def omero_config(install: OmeroInstall, to_set: dict, to_append: dict, secrets: list[str],
                 host_secret_file: str | None = None):
    """
    Apply OMERO.web configuration idempotently (see the module docstring for the rules).

    + install: the OMERO.web install
    + to_set: property -> value as stored (None unsets)
    + to_append: list property -> items to ensure
    + secrets: property names whose values must never be shown (compared on the host)
    + host_secret_file: root-only file whose ``requirepass`` replaces ``HOST_SECRET_TOKEN`` in
      the values, on the host (a password made there, e.g. the local Redis's)

    **Examples:**

    .. code:: python

        omero_config(
            name="Apply OMERO.web configuration",
            install=OmeroInstall("/opt/omero/web/venv3", "/opt/omero/web/omero-web", "omero-web"),
            to_set={
                "omero.web.public.enabled": "true",
                "omero.web.public.user": "public-user",
                "omero.web.public.password": "CHANGEME",
            },
            to_append={"omero.web.apps": ["omero_figure"]},
            secrets=["omero.web.public.password"],
        )
    """
    # pyinfra prints facts' arguments from -v on: an OmeroInstall's repr shows paths only
    # secrets are compared on the host: their wanted values travel on the command's standard input
    fact = host.get_fact(OmeroConfig, install=install, record=install.managed_record, secret_keys=secrets,
                         host_secret_file=host_secret_file, _stdin=HiddenStdin(wanted_secrets(to_set, secrets)),
                         _get_pty=False)
    if fact and fact.get("untrusted"):
        yield untrusted_failure(install.venv, fact["untrusted"])
        return
    if fact is None:
        if state.is_executing:
            yield (
                f"echo 'OMERO.web is not installed in {install.venv}: run the venv, ice and omeroweb "
                "sections first' >&2; exit 1"
            )
        fact = {"config": {}, "managed": None}
    # issue 12 (6): never a traceback, never a plan built on a record that cannot be read
    why = fact.get("managed_error") or record_problem(fact["managed"])
    if why:
        yield corrupted_record_failure(install.managed_record, why)
        return
    changes = plan_changes(fact["config"], fact["managed"], to_set, to_append)
    if not (changes["set"] or changes["unset"] or changes["append"] or changes["remove"] or changes["record_changed"]):
        return
    commands, then = [], None
    if changes["set"]:
        # the venv checked before secrets are staged (a refusal later would leave them there)
        yield install.trusted("true")
        # written as the OMERO.web user into its owner-only folder: root never writes there
        staged = f"{install.staging}/config.properties"
        body = "".join(f"{k}={v}\n" for k, v in sorted(changes["set"].items()))
        uses_host_secret = host_secret_file and any(HOST_SECRET_TOKEN in v for v in changes["set"].values())
        yield from write_as(install.user, body, staged, "600", host_secret=host_secret_file if uses_host_secret else None)
        commands.append(["config", "load", "-q", staged])
        then = remove_as(install.user, staged)
    commands += [["config", "set", key] for key in changes["unset"]]
    commands += [["config", "append", "--set", key, json.dumps(item)] for key, item in changes["append"]]
    commands += [["config", "remove", key, json.dumps(item)] for key, item in changes["remove"]]
    if commands:
        yield install.omero_commands(commands, then=then)  # one omero process
    record = json.dumps(changes["record"], indent=1, sort_keys=True) + "\n"
    yield from write_as(install.user, record, install.managed_record, "600")


@deploy("OMERO.web configuration")
def config(ctx: Context | None = None) -> list:
    """Configuration properties, Gunicorn settings included. Returns change markers."""
    ctx = ctx or current()
    if not ctx.selected(*TAGS):
        return []
    to_set, to_append = desired_config(ctx)
    applied = omero_config(
        name="Apply OMERO.web configuration",
        install=ctx.install,
        to_set=to_set,
        to_append=to_append,
        secrets=secret_keys(ctx, to_set),
        host_secret_file=ctx.features.host_secret_file,
    )
    return [applied]
