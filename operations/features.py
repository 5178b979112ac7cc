"""
The optional features of the walkthroughs, combined: each feature module says what it adds
to the shared steps (a ``Contribution``: properties, list items, pip requirements, OS
packages, NGINX directives, secret property names); the config, omeroweb, prerequisites
and NGINX sections take the union from here, so each fact has one source.
"""

from __future__ import annotations

from . import apps, cors, customization, gunicorn, hardening, https, maintenance, publishing, redis
from .appends import merge_items
from .context import Context, Contribution

FEATURES = (gunicorn, redis, cors, apps, https, maintenance, customization, publishing, hardening)


def combined(ctx: Context) -> Contribution:
    to_set: dict = {}
    to_append: dict = {}
    pip, packages, nginx, secrets = [], [], [], []
    for feature in FEATURES:
        part = feature.contribution(ctx)
        to_set.update(part.set)
        merge_items(to_append, part.append)
        pip.extend(p for p in part.pip if p not in pip)
        packages.extend(p for p in part.packages if p not in packages)
        nginx.extend(part.nginx)
        secrets.extend(part.secrets)
    return Contribution(to_set, to_append, tuple(pip), tuple(packages), tuple(nginx), tuple(secrets))
