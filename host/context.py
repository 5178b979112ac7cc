"""
The per-host context every section uses: validated settings and the distro profile,
computed once per host and cached, so sections can also be run alone by dotted path
(``pyinfra INVENTORY operations.nginx.nginx``).
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass
from functools import cached_property

from pyinfra import host
from pyinfra.api.exceptions import PyinfraError
from pyinfra.context import ctx_state

from model.distro_profile import APT_RELEASES, RPM_RELEASES, DistroProfile, build_profile
from model.features import Contribution, combined
from model.omero_install import OmeroInstall
from model.settings import Settings, ValidationError, validate
from model.tier import Tier, TierHost, build_tier, everyone, roles, tier_problems
from host.facts import HostInventory, ResolvedAddresses

#: Per pyinfra run (State), per host name: the context, computed once.
_CONTEXTS: "weakref.WeakKeyDictionary[object, dict[str, Context]]" = weakref.WeakKeyDictionary()


@dataclass(frozen=True)
class Context:
    settings: Settings
    profile: DistroProfile
    #: "web" (OMERO.web is deployed), "omero_server" (OMERO.server-side settings), "balancer",
    #: "redis" (the shared Redis): see ``model.tier.roles``.
    roles: frozenset = frozenset({"web"})
    #: The inventory's web tier (empty on one machine).
    tier: Tier = Tier()
    #: A node behind balancers: their addresses as this host resolves them (NGINX allows only them).
    balancer_ips: tuple[str, ...] = ()

    @cached_property
    def install(self) -> OmeroInstall:
        """This host's OMERO.web: its venv, OMERODIR, account and the paths derived from them."""
        return OmeroInstall(self.settings.venv, self.settings.omerodir, self.settings.user)

    @cached_property
    def server(self) -> OmeroInstall:
        """The OMERO.server install on an OMERO.server host (``omero_web_omero_server_*``)."""
        s = self.settings
        return OmeroInstall(s.omero_server_venv, s.omero_server_omerodir, s.omero_server_user)

    @cached_property
    def pip_specs(self) -> tuple[str, ...]:
        """What pip installs in the venv: OMERO.web, omero-py when pinned, WhiteNoise, the features' packages."""
        s = self.settings
        return (s.version_spec, *filter(None, [s.omero_py_spec]), s.whitenoise_spec, *self.features.pip)

    @cached_property
    def features(self) -> Contribution:
        """What the optional features add to the shared steps (``model.features``), computed once."""
        return combined(self.settings, self.profile, self.tier if "web" in self.roles else Tier(), self.balancer_ips)

    def selected(self, *section_tags: str, also: tuple[str, ...] = ()) -> bool:
        """Whether a section with these tags runs under omero_web_tags / omero_web_skip_tags;
        ``also``: tags that select it too, without skipping it when they are skipped."""
        tags, skip = self.settings.tags, self.settings.skip_tags
        if any(tag in skip for tag in section_tags):
            return False
        return not tags or any(tag in tags for tag in (*section_tags, *also))


def validate_inventory(inventory) -> None:
    """Validate the data of every host, then the tier they make; one error lists every problem."""
    problems, hosts = [], []
    for each in inventory:
        try:
            hosts.append(TierHost(each.name, frozenset(each.groups), validate(each.data.dict(), each.name)))
        except ValidationError as exc:
            problems.append(str(exc))
    if not problems:
        problems = [f"omeroweb-deploy: {p}" for p in tier_problems(hosts)]
    if problems:
        raise PyinfraError("\n".join(problems))


def inventory_tier() -> tuple[Tier, frozenset]:
    """The tier of the current run's inventory and the groups every host is in, computed once per run."""
    registry = run_registry("tier")
    if "tier" not in registry:
        inventory = ctx_state.get().inventory
        hosts = [TierHost(h.name, frozenset(h.groups), validate(h.data.dict(), h.name)) for h in inventory]
        registry["tier"] = (build_tier(hosts), everyone(hosts))
    return registry["tier"]


def settings_for_current_host() -> Settings:
    return validate(host.data.dict(), host.name)


def current() -> Context:
    """The context of the host being deployed (validates data and reads facts once)."""
    contexts = _CONTEXTS.setdefault(ctx_state.get(), {})
    if host.name not in contexts:
        settings = settings_for_current_host()
        pythons = {r.python for r in (*APT_RELEASES.values(), *RPM_RELEASES.values())}
        if settings.python:
            pythons.add(settings.python)
        facts = host.get_fact(HostInventory, pythons=sorted(pythons))
        tier, common = inventory_tier()
        host_roles = roles(host.groups, settings, common)
        balancer_ips: tuple[str, ...] = ()
        if "web" in host_roles and tier.balanced:
            resolved = host.get_fact(ResolvedAddresses, names=list(tier.balancers))
            missing = [name for name in tier.balancers if not resolved.get(name)]
            if missing:
                raise PyinfraError(f"omeroweb-deploy: {host.name} cannot resolve the balancer address "
                                   f"{', '.join(missing)}: set omero_web_backend_address for the balancer")
            balancer_ips = tuple(sorted({ip for name in tier.balancers for ip in resolved[name]}))
        contexts[host.name] = Context(settings, build_profile(facts, settings), host_roles, tier, balancer_ips)
    return contexts[host.name]


def run_registry(name: str) -> dict:
    """A dict shared by all hosts of the current pyinfra run (e.g. which host builds Ice)."""
    return _REGISTRIES.setdefault(ctx_state.get(), {}).setdefault(name, {})


_REGISTRIES: "weakref.WeakKeyDictionary[object, dict[str, dict]]" = weakref.WeakKeyDictionary()
