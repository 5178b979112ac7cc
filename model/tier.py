"""
More than one machine: the OMERO.web nodes of an inventory behind NGINX load balancers, their
sessions in one shared Redis. Which host is what (``roles``), the tier every host's
configuration is computed from (``build_tier``), and what makes an inventory's tier unsound,
reported before any connection (``tier_problems``). Pure: it takes each host's name, groups and
validated ``Settings``.

With no host in the balancer group the tier is empty and every host is deployed as before.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from typing import Iterable
from urllib.parse import unquote, urlsplit

from model.checks import is_local
from model.settings import Settings

#: Told apart from anything else HMAC might derive from the same password.
SECRET_KEY_LABEL = b"omeroweb-deploy: omero.web.secret_key"


@dataclass(frozen=True)
class TierHost:
    """One inventory host as the tier sees it."""

    name: str
    groups: frozenset
    settings: Settings


@dataclass(frozen=True)
class Node:
    """An OMERO.web node as its balancers reach it."""

    name: str
    host: str
    port: int

    @property
    def upstream(self) -> str:
        """``host:port`` for an NGINX ``server`` line (an IPv6 address in brackets)."""
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


@dataclass(frozen=True)
class Tier:
    """The web tier of an inventory; empty (``balanced`` False) on one machine."""

    nodes: tuple[Node, ...] = ()
    #: Each balancer's host name or address as its nodes see it (``omero_web_backend_address``).
    balancers: tuple[str, ...] = ()
    #: HTTPS is terminated at the balancers (their ``omero_web_https``).
    https: bool = False
    #: Seconds a balancer skips a node that failed (the longest of their
    #: ``omero_web_balancer_fail_timeout``): a restarted node is back in their rotation after it.
    fail_timeout: int = 0

    @property
    def balanced(self) -> bool:
        return bool(self.balancers)


def roles(groups: Iterable[str], settings: Settings, everyone: Iterable[str] = ()) -> frozenset:
    """
    What a host is, from its inventory groups: ``web`` (an OMERO.web node), ``omero_server``
    (OMERO.server-side settings), ``balancer``, ``redis``. A host only in the special groups
    is what they say and nothing else; any other host is a web node (and what its special
    groups add). pyinfra's own groups do not count: a connector's (``@docker``, ``@local``) and
    ``everyone``, the groups that hold every host of the inventory (``all``, and the one the
    pyinfra CLI names after the inventory file).
    """
    special = {settings.omero_server_group: "omero_server", settings.balancer_group: "balancer",
               settings.redis_group: "redis"}
    ignored = set(everyone) - set(special)
    groups = {g for g in groups if not g.startswith("@") and g not in ignored}
    found = {special[g] for g in groups if g in special}
    if found and groups <= set(special):
        return frozenset(found)
    return frozenset({"web", *found})


def address(name: str, settings: Settings) -> tuple[str, int | None]:
    """Where the other hosts of the tier reach this host: (host, port or None)."""
    value = settings.backend_address or name
    if value.startswith("["):
        host, _, port = value[1:].partition("]")
        return host, int(port[1:]) if port else None
    host, _, port = value.partition(":")
    return host, int(port) if port else None


def everyone(hosts: Iterable[TierHost]) -> frozenset:
    """The groups every one of these hosts (the whole inventory) is in."""
    hosts = list(hosts)
    return frozenset(set.intersection(*(set(h.groups) for h in hosts))) | {"all"} if hosts else frozenset({"all"})


def build_tier(hosts: Iterable[TierHost]) -> Tier:
    """The tier of these hosts (the whole inventory); empty without a balancer."""
    hosts = list(hosts)
    common = everyone(hosts)
    balancers = [h for h in hosts if "balancer" in roles(h.groups, h.settings, common)]
    if not balancers:
        return Tier()
    nodes = []
    for h in hosts:
        if "web" in roles(h.groups, h.settings, common):
            host, port = address(h.name, h.settings)
            nodes.append(Node(h.name, host, port or h.settings.nginx_port))
    return Tier(nodes=tuple(nodes), balancers=tuple(address(b.name, b.settings)[0] for b in balancers),
                https=any(b.settings.https for b in balancers),
                fail_timeout=max(b.settings.balancer_fail_timeout for b in balancers))


def redis_password(url: str) -> str | None:
    found = urlsplit(url).password
    return unquote(found) if found else None


def shared_secret_key(redis_url: str) -> str:
    """
    The Django secret key every node of a tier shares (sessions and CSRF tokens made on one node
    are valid on the others), when the data sets no ``omero.web.secret_key``: derived from the
    shared Redis's password with HMAC-SHA256, so every run from any control machine gives the
    same key without storing it anywhere, and the key does not give the password away. It grants
    nothing the password does not: whoever has the password can already write any session.
    """
    password = redis_password(redis_url)
    if not password:
        raise ValueError("a tier's shared Redis URL carries its password")
    return hmac.new(password.encode(), SECRET_KEY_LABEL, hashlib.sha256).hexdigest()


def tier_problems(hosts: Iterable[TierHost]) -> list[str]:
    """What makes this inventory's tier unsound, each naming the hosts, keys and the fix."""
    hosts = list(hosts)
    problems = []
    for key in ("balancer_group", "redis_group", "omero_server_group"):
        if len({getattr(h.settings, key) for h in hosts}) > 1:
            problems.append(f"omero_web_{key} differs between hosts: set it once for the whole inventory")
    common = everyone(hosts)
    by_role = {role: [h for h in hosts if role in roles(h.groups, h.settings, common)]
               for role in ("web", "balancer", "redis")}
    redis_hosts, balancers, nodes = by_role["redis"], by_role["balancer"], by_role["web"]
    if len(redis_hosts) > 1:
        problems.append(f"{len(redis_hosts)} hosts in the shared Redis group ({', '.join(h.name for h in redis_hosts)}):"
                        " the deploy installs one shared Redis (for more, run Redis Sentinel yourself)")
    for r in redis_hosts:
        url = r.settings.redis_url
        if is_local(url) or not redis_password(url):
            problems.append(f"{r.name}: omero_web_redis_url = {url!r} must name this shared Redis host (not "
                            "127.0.0.1 or localhost) and carry its password, e.g. redis://:PASSWORD@redis1:6379/0")
    if not balancers:
        return problems
    if not nodes:
        problems.append("the balancer group has hosts but no host is an OMERO.web node: add the nodes to the inventory")
    for b in balancers:
        if "web" in roles(b.groups, b.settings, common):
            problems.append(f"{b.name}: a balancer is not an OMERO.web node too (both serve on the HTTP port): "
                            "put it in the balancer group only")
    if len({b.settings.https for b in balancers}) > 1:
        problems.append("omero_web_https differs between the balancers: HTTPS is terminated at every balancer or none")
    urls = {n.settings.redis_url for n in nodes}
    for n in nodes:
        s = n.settings
        if not s.redis or is_local(s.redis_url) or not redis_password(s.redis_url):
            problems.append(f"{n.name}: behind a balancer, the nodes share their sessions in one Redis: set "
                            "omero_web_redis = True and omero_web_redis_url to the shared Redis with its password "
                            "(redis://:PASSWORD@redis1:6379/0; the group omero_web_redis installs it)")
        if s.https:
            problems.append(f"{n.name}: behind a balancer, HTTPS is terminated at the balancer: set omero_web_https "
                            "for the balancer group only")
        if s.nginx_mode != "site":
            problems.append(f"{n.name}: behind a balancer, a node serves the walkthrough's site "
                            "(omero_web_nginx_mode = 'site')")
    if len(urls) > 1:
        problems.append("omero_web_redis_url differs between the nodes: they share one Redis")
    for r in redis_hosts:
        wanted = urlsplit(r.settings.redis_url).hostname
        for n in nodes:
            if urlsplit(n.settings.redis_url).hostname != wanted:
                problems.append(f"{n.name}: omero_web_redis_url names {urlsplit(n.settings.redis_url).hostname!r}, "
                                f"the shared Redis host {r.name} serves {wanted!r}")
    keys = {str(n.settings.config.get("omero.web.secret_key")) for n in nodes}
    if len(keys) > 1:
        problems.append("omero.web.secret_key differs between the nodes: they must share it (or leave it unset: "
                        "the deploy derives one key for all of them)")
    return problems
