"""
Install, configure and run OMERO.web as the walkthroughs describe:

    pyinfra inventories/<site>.py deploy.py

Only composes the sections in ``operations/``; each can also run alone, e.g.
``pyinfra inventories/<site>.py operations.nginx.nginx``, or be chosen by tag with
``--data omero_web_tags=nginx,config`` / ``--data omero_web_skip_tags=healthcheck``.
Hosts only in the ``omero_server`` group (``omero_web_omero_server_group``) are
OMERO.servers: they get the server-side settings for OMERO clients and nothing else. More than
one machine: hosts of the ``omero_web_balancer`` group are NGINX load balancers in front of
every OMERO.web node, the host of the ``omero_web_redis`` group their shared Redis.
"""

from host.context import current
from operations.apps import apps
from operations.balancer import balancer
from operations.configuration import config
from operations.customization import customization
from operations.healthcheck import healthcheck
from operations.ice import ice
from operations.maintenance import sessions
from operations.migration import migration
from operations.nginx import nginx
from operations.omero_server import omero_server_settings
from operations.omeroweb import omeroweb
from operations.prerequisites import prerequisites
from operations.redis import redis, shared_redis
from operations.selinux import selinux
from operations.service import service
from operations.venv import venv

ctx = current()  # validates the data and reads the facts before any operation is planned

if "redis" in ctx.roles:
    shared_redis(ctx)  # first: the nodes' configuration and health check use it

if "web" in ctx.roles:
    package_changes = prerequisites(ctx)
    app_changes = [
        *package_changes,
        *venv(ctx),
        *ice(ctx),
        *omeroweb(ctx),
        *migration(ctx),
        *apps(ctx),
    ]
    redis(ctx)  # before the configuration, which writes the password Redis requires into omero.web.caches
    app_changes += [*config(ctx), *customization(ctx)]
    selinux(ctx)
    nginx(ctx)
    service(ctx, app_changes=app_changes)
    sessions(ctx)

if "balancer" in ctx.roles:
    balancer(ctx)

healthcheck(ctx)  # one step for every host: a balancer checks through its nodes once they are up

if "omero_server" in ctx.roles:
    omero_server_settings(ctx)
