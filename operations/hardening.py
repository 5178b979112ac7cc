"""
Web-tier hardening of the generated NGINX site, on every deploy (with or without HTTPS):
the response headers of the dev-sec NGINX baseline that do not get in OMERO.web's way,
as server-level directives (``omero.web.nginx_server_extra_config``).

- ``X-Content-Type-Options: nosniff`` and ``Referrer-Policy: same-origin`` on every
  response: the application's, the static files NGINX serves itself, redirects, error and
  maintenance pages (``always``). ``proxy_hide_header`` first drops the copy OMERO.web's
  Django may send, so each header is sent exactly once.
- ``X-Frame-Options`` is left to OMERO.web: its Django middleware sends ``SAMEORIGIN`` on
  every application page (and leaves it out where a view allows framing); NGINX adding it
  would send it twice. Static files (CSS, JS, images) are not framed documents.
- ``server_tokens off`` is set by the config section for every site; the distro's default
  site is disabled by the NGINX section.
- Not taken from the baseline: its 1k body and buffer limits, which would break uploads
  (the generated site sets ``client_max_body_size 0``), and a Content-Security-Policy,
  which OMERO.web's pages and apps (inline scripts, viewers) do not support.

The server-level ``add_header`` lines reach every location of the generated site because
none of its locations sets an ``add_header`` of its own (NGINX would then drop all the
server-level ones there); tests/integration/test_web_hardening.py checks the real responses.
"""

from __future__ import annotations

from .context import Context, Contribution

TAGS = ("nginx", "config")
#: Response headers NGINX sends on every response of the OMERO.web site, exactly once.
HEADERS: tuple[tuple[str, str], ...] = (
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "same-origin"),
)


def header_directives(name: str, value: str) -> tuple[str, str]:
    """Drop the application's copy of a header, then send ours on every response."""
    return (f"proxy_hide_header {name};", f'add_header {name} "{value}" always;')


def contribution(ctx: Context) -> Contribution:
    return Contribution(nginx=tuple(d for name, value in HEADERS for d in header_directives(name, value)))
