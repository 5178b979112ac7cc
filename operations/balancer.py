"""
More than one machine: the NGINX load balancer in front of every OMERO.web node of the
inventory (hosts of the ``omero_web_balancer_group`` group). The walkthroughs stop at one
host; this is the tier the Image Data Resource and OMERO.web's Helm chart run: one upstream
listing every node (``omero_web_backend_address``), a node that refuses, times out or answers
502/503/504 skipped for ``omero_web_balancer_fail_timeout`` seconds with an idempotent
request sent on to the next node, and the maintenance page when every node is down. The
nodes share their sessions in one Redis (``operations.redis.shared_redis``), and let only the
balancers connect (``model.features.behind_balancer``). At the end of the run the login page is
checked through the balancer (by the health check section, in the same step as the nodes' own).

    pyinfra inventories/<site>.py operations.balancer.balancer
"""

from __future__ import annotations

from pyinfra.api import deploy
from pyinfra.operations import files, server

from model.features import https as https_feature
from model.omero_install import ETC_DIR
from model.units import MAINTENANCE_PAGE, TEMPLATES
from host.context import Context, current
from host.nginx_server import disable_default_site
from host.packages import install_packages_epel_first
from host.service_manager import ensure_service
from host.snapshot import want_existence
from host.tls import redirect_target, tls_files
from host.uploads import root_file, root_template

TAGS = ("balancer",)
#: The balancer's site, beside the distro's default one (which is disabled).
SITE = "/etc/nginx/conf.d/omeroweb-balancer.conf"
MAINTENANCE_DIR = f"{ETC_DIR}/balancer"


@deploy("OMERO.web load balancer")
def balancer(ctx: Context | None = None) -> list:
    """NGINX installed, the default site off, the balancer's site tested and served (the health check section
    then fetches the login page through it)."""
    ctx = ctx or current()
    if "balancer" not in ctx.roles or not ctx.selected(*TAGS):
        return []
    settings, profile, tier = ctx.settings, ctx.profile, ctx.tier
    # a node's prerequisites (NGINX, and the host's Python for the health check)
    packages = install_packages_epel_first(profile.package_manager,
                                           [*profile.packages, *https_feature(settings, profile).packages],
                                           settings.package_lock_timeout)
    want_existence(path for path, _ in profile.nginx_disable_paths)
    disabled = disable_default_site(name="Disable the default NGINX site", paths=list(profile.nginx_disable_paths))
    files.directory(name=f"Create {MAINTENANCE_DIR}", path=MAINTENANCE_DIR, user="root", group="root", mode="755")
    page = root_file(f"Install the maintenance page in {MAINTENANCE_DIR}", f"{MAINTENANCE_DIR}/omeroweb-maintenance.html",
                     MAINTENANCE_PAGE.read_text(), "644")
    # HTTPS ends here: the TLS files and Mozilla's "intermediate" settings, as on one machine
    tls = tls_files(settings) if settings.https else []
    site = root_template(
        name=f"Install the balancer site {SITE}", src=str(TEMPLATES / "omero-web-balancer.conf.j2"), dest=SITE,
        mode="644", nodes=[node.upstream for node in tier.nodes], fail_timeout=settings.balancer_fail_timeout,
        port=settings.nginx_port, server_name=settings.nginx_server_name, https=settings.https,
        https_port=settings.https_port, tls=list(https_feature(settings, profile).nginx),
        redirect=redirect_target(settings.https_port),
        maintenance_dir=MAINTENANCE_DIR,
    )
    changes = [packages, disabled, page, *tls, site]
    # NGINX keeps serving the configuration it has while a new one fails its test
    server.shell(name="NGINX accepts the balancer's configuration", commands=["nginx -t"],
                 _if=lambda: any(op.did_change() for op in changes))
    ensure_service(profile, "nginx", reload_when=changes)
    return changes
