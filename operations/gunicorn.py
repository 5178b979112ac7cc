"""
Walkthrough "Configuring Gunicorn" and "Configuring Gunicorn advanced options": worker
count (2 x cores + 1 by default, from the host's facts), extra arguments, sync workers
with threads, or async gevent workers with their connection limit, ``gevent`` installed
and ``omero.web.application_server.max_requests`` set to 0 as the walkthrough requires.
Everything here is configuration; the service section restarts OMERO.web on a change.
"""

from __future__ import annotations

from .context import Context, Contribution

TAGS = ("gunicorn", "config")


def contribution(ctx: Context) -> Contribution:
    settings = ctx.settings
    to_set = {"omero.web.wsgi_workers": settings.wsgi_workers or 2 * ctx.profile.cpus + 1}
    pip: tuple = ()
    if settings.wsgi_worker_class:
        to_set["omero.web.wsgi_worker_class"] = settings.wsgi_worker_class
    if settings.wsgi_args:
        to_set["omero.web.wsgi_args"] = settings.wsgi_args
    if settings.wsgi_threads:
        to_set["omero.web.wsgi_threads"] = settings.wsgi_threads
    if settings.wsgi_worker_class == "gevent":
        pip = (settings.gevent_spec,)
        to_set["omero.web.application_server.max_requests"] = 0
        if settings.wsgi_worker_connections:
            to_set["omero.web.wsgi_worker_connections"] = settings.wsgi_worker_connections
    return Contribution(set=to_set, pip=pip)
