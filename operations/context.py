"""
The per-host context every section uses: validated settings and the distro profile,
computed once per host and cached, so sections can also be run alone by dotted path
(``pyinfra INVENTORY operations.nginx.nginx``).
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass

from pyinfra import host
from pyinfra.api.exceptions import PyinfraError
from pyinfra.context import ctx_state

from .facts import HostInventory
from .profile import APT_RELEASES, RPM_RELEASES, DistroProfile, build_profile
from .settings import Settings, ValidationError, validate

#: Per pyinfra run (State), per host name: the context, computed once.
_CONTEXTS: "weakref.WeakKeyDictionary[object, dict[str, Context]]" = weakref.WeakKeyDictionary()


@dataclass(frozen=True)
class Context:
    settings: Settings
    profile: DistroProfile

    def selected(self, *section_tags: str) -> bool:
        """Whether a section with these tags runs under omero_web_tags / omero_web_skip_tags."""
        tags, skip = self.settings.tags, self.settings.skip_tags
        if any(tag in skip for tag in section_tags):
            return False
        return not tags or any(tag in tags for tag in section_tags)


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
        contexts[host.name] = Context(settings, build_profile(facts, settings))
    return contexts[host.name]


def run_registry(name: str) -> dict:
    """A dict shared by all hosts of the current pyinfra run (e.g. which host builds Ice)."""
    return _REGISTRIES.setdefault(ctx_state.get(), {}).setdefault(name, {})


_REGISTRIES: "weakref.WeakKeyDictionary[object, dict[str, dict]]" = weakref.WeakKeyDictionary()
