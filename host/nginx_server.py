"""
NGINX itself on a host, for every section that serves through it (the OMERO.web site on a
node, the load balancer): the distro's default site disabled as the walkthroughs do.
"""

from __future__ import annotations

from pyinfra import host
from pyinfra.api import operation
from pyinfra.facts.files import FindInFile

from host.facts import PathExists, q
from host.snapshot import existing

NGINX_CONF = "/etc/nginx/nginx.conf"
#: An uncommented ``default_server`` (the walkthrough's sed comments it out).
DEFAULT_SERVER = r"^[^#]*[[:space:]]default_server"


@operation()
def disable_default_site(paths: list[tuple[str, str]]):
    """
    Disable the distro's default site: ``remove`` a path or ``rename`` it to ``*.disabled``
    (``conf.d/default.conf`` becomes ``conf.d/default.disabled``), and comment out any
    ``default_server`` in nginx.conf, as the walkthroughs do. Idempotent.

    + paths: (path, action) pairs from the distro profile

    **Examples:**

    .. code:: python

        disable_default_site(
            name="Disable the default NGINX site",
            paths=[("/etc/nginx/conf.d/default.conf", "rename")],
        )
    """
    found = existing(PathExists, [p for p, _ in paths])
    for path, action in paths:
        if path not in found:
            continue
        if action == "remove":
            yield f"rm -f {q(path)}"
        else:
            target = path[: -len(".conf")] if path.endswith(".conf") else path
            yield f"mv {q(path)} {q(target + '.disabled')}"
    if host.get_fact(FindInFile, path=NGINX_CONF, pattern=DEFAULT_SERVER, extended_regex=True):
        yield f"sed -i.bak -re '/{DEFAULT_SERVER}/ s/( default_server.*)/; #\\1/' {NGINX_CONF}"
