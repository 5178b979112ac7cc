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
from host.facts import HostInventory

#: Per pyinfra run (State), per host name: the context, computed once.
_CONTEXTS: "weakref.WeakKeyDictionary[object, dict[str, Context]]" = weakref.WeakKeyDictionary()


@dataclass(frozen=True)
class Context:
    settings: Settings
    profile: DistroProfile
    #: "web" (OMERO.web is deployed) and/or "omero_server" (OMERO.server-side settings): a host
    #: only in the omero_web_omero_server_group group is an OMERO.server and nothing else.
    roles: frozenset = frozenset({"web"})

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
        return combined(self.settings, self.profile)

    def selected(self, *section_tags: str, also: tuple[str, ...] = ()) -> bool:
        """Whether a section with these tags runs under omero_web_tags / omero_web_skip_tags;
        ``also``: tags that select it too, without skipping it when they are skipped."""
        tags, skip = self.settings.tags, self.settings.skip_tags
        if any(tag in skip for tag in section_tags):
            return False
        return not tags or any(tag in tags for tag in (*section_tags, *also))


def validate_inventory(inventory) -> None:
    """Validate the data of every host; one error lists every bad key of every host."""
    problems = []
    for each in inventory:
        try:
            validate(each.data.dict(), each.name)
        except ValidationError as exc:
            problems.append(str(exc))
    if problems:
        raise PyinfraError("\n".join(problems))


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
        contexts[host.name] = Context(settings, build_profile(facts, settings), host_roles(host.groups, settings))
    return contexts[host.name]


def host_roles(groups, settings: Settings) -> frozenset:
    """What a host is, from its inventory groups (see ``Context.roles``)."""
    groups = set(groups)
    if settings.omero_server_group not in groups:
        return frozenset({"web"})
    return frozenset({"omero_server"}) if groups == {settings.omero_server_group} else frozenset({"web", "omero_server"})


def run_registry(name: str) -> dict:
    """A dict shared by all hosts of the current pyinfra run (e.g. which host builds Ice)."""
    return _REGISTRIES.setdefault(ctx_state.get(), {}).setdefault(name, {})


_REGISTRIES: "weakref.WeakKeyDictionary[object, dict[str, dict]]" = weakref.WeakKeyDictionary()
