"""
Issue 15: one read of the host's root-owned state, shared by the operations that would each
read a few facts of their own (``files.template``, ``files.put``, ``systemd.service``,
``server.user``, ``apt.packages``: 2 to 4 commands each on a re-run that changes nothing).

Sections declare at planning time what their operations check (``want``: root-owned paths,
systemd units, the account, OS packages). At execution time the first operation that asks
(``snapshot``) reads all of it in one command, the ``HostState`` fact; the next ones reuse
that reading. Each of those operations is then guarded with ``_if``: when the snapshot shows
the host already as wanted the operation does nothing and reads nothing; otherwise the
operation runs (pyinfra's reading its own facts as before). A guard can only skip work that
is provably done, never add any: an answer "done", which skips work, holds only on a reading
taken **after every command run so far on this host** (one that ran since makes the next
such answer read again); an answer "not done" may come from an older reading, since acting
on it only runs an operation that converges whatever it finds (at worst it redoes work an
earlier operation of the run did). A cold deploy then reads the state a few times, not
after every operation.

Read as root, read only: ``stat`` and ``sha256sum`` of root-owned paths (links reported,
never followed), ``systemctl show``, ``getent``, ``dpkg-query``. No secret is printed: file
contents are hashed with a key (``run_key``: random, made on the control machine for each
run, sent on the command's standard input, so never in pyinfra's output): a digest in a saved
log cannot be checked against a guess (a file holding a weak password, e.g. a pip.conf).

Rule for callers: ask for the snapshot before the operation yields any command (``_if``
callables, or the first lines of a generator), since commands the current operation has
run are not known until it completes.
"""

from __future__ import annotations

import hashlib
import secrets
import shlex
import weakref
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

from pyinfra import host
from pyinfra.api import FactBase
from pyinfra.api.util import get_template
from pyinfra.context import ctx_host, ctx_state

from model.secrecy import HiddenStdin

q = shlex.quote

# argv: paths; stdin: the run's key (one line). Per path: F|type|user|group|mode|digest|path
# (links not followed; the digest, sha256 of the key then the content, of regular files only);
# nothing for a missing path. printf is a builtin: the key never reaches a command line.
_FILES = r"""IFS= read -r key || key=
for p in "$@"; do
if [ -L "$p" ]; then echo "F|symbolic link|||000|-|$p"
elif [ -e "$p" ]; then h=-; [ -f "$p" ] && h=$({ printf '%s' "$key"; cat -- "$p"; } | sha256sum | cut -d' ' -f1)
echo "F|$(stat -c '%F|%U|%G|%a' "$p")|$h|$p"; fi; done"""


class HostState(FactBase[dict[str, Any]]):
    """
    ``{"files": {path: {"type", "user", "group", "mode", "sha256" (keyed: ``keyed_sha256``)}}, "units": {unit:
    {"SubState", "UnitFileState", "NeedDaemonReload"}}, "passwd": [fields] | None,
    "packages": {name: status}, "listed": [paths matching the globs]}``.

    + files: root-owned paths (links reported, never followed; regular files hashed with the run's key)
    + units: systemd units
    + account: the account whose passwd entry is read
    + packages: OS packages (``dpkg-query``)
    + globs: shell globs whose existing paths are listed

    .. code:: python

        {
            "files": {
                "/etc/systemd/system/omero-web.service": {
                    "type": "regular file",
                    "user": "root",
                    "group": "root",
                    "mode": "644",
                    "sha256": "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824",
                },
            },
            "units": {
                "omero-web.service": {"SubState": "running", "UnitFileState": "enabled", "NeedDaemonReload": "no"},
            },
            "passwd": ["omero-web", "x", "998", "998", "OMERO.web (omeroweb-deploy)", "/home/omero-web", "/bin/bash"],
            "packages": {"nginx": "installed"},
            "listed": ["/usr/local/share/ca-certificates/omeroweb-deploy-example-ca.crt"],
        }
    """

    default = staticmethod(lambda: {"files": {}, "units": {}, "passwd": None, "packages": {}, "listed": []})

    def command(self, files=(), units=(), account=None, packages=(), globs=()):
        parts = []
        if files:
            parts.append("sh -c " + " ".join(q(a) for a in (_FILES, "sh", *files)))
        if globs:
            parts.append("for p in " + " ".join(globs) + '; do [ -e "$p" ] && echo "L|$p"; done')
        if units:
            parts.append("command -v systemctl >/dev/null 2>&1 && systemctl show -p Id -p SubState -p UnitFileState "
                         "-p NeedDaemonReload " + " ".join(q(u) for u in units) + " 2>/dev/null | sed 's/^/U|/'")
        if account:
            parts.append(f"getent passwd {q(account)} | sed 's/^/A|/'")
        if packages:
            parts.append("command -v dpkg-query >/dev/null 2>&1 && dpkg-query -W -f='P|${Package}|${db:Status-Status}\\n' "
                         + " ".join(q(p) for p in packages) + " 2>/dev/null")
        return "; ".join(parts + ["true"])

    def process(self, output) -> dict:
        result: dict = {"files": {}, "units": {}, "passwd": None, "packages": {}, "listed": []}
        unit = None
        for line in output:
            kind, _, rest = line.partition("|")
            if kind == "F":
                fields = rest.split("|", 5)
                if len(fields) == 6:
                    ftype, user, group, mode, digest, path = fields
                    result["files"][path] = {"type": "regular file" if ftype == "regular empty file" else ftype,
                                             "user": user, "group": group, "mode": mode.zfill(3),
                                             "sha256": None if digest == "-" else digest}
            elif kind == "L":
                result["listed"].append(rest)
            elif kind == "U":
                key, _, value = rest.partition("=")
                if key == "Id":
                    unit = value
                    result["units"][unit] = {}
                elif unit and key:
                    result["units"][unit][key] = value
            elif kind == "A":
                result["passwd"] = rest.split(":")
            elif kind == "P":
                name, _, status = rest.partition("|")
                result["packages"][name] = status
        return result


@dataclass
class _Wanted:
    files: set = field(default_factory=set)
    units: set = field(default_factory=set)
    packages: set = field(default_factory=set)
    globs: set = field(default_factory=set)
    account: Optional[str] = None

    def kwargs(self) -> dict:
        return {"files": sorted(self.files), "units": sorted(self.units), "account": self.account,
                "packages": sorted(self.packages), "globs": sorted(self.globs)}


#: Per pyinfra run (State), per host name: what the sections want read, and the last reading.
_WANTED: "weakref.WeakKeyDictionary[object, dict[str, _Wanted]]" = weakref.WeakKeyDictionary()
_READ: "weakref.WeakKeyDictionary[object, dict[str, tuple]]" = weakref.WeakKeyDictionary()


def want(files=(), units=(), packages=(), globs=(), account: Optional[str] = None) -> None:
    """Declare (at planning time) what this host's snapshot must hold."""
    wanted = _WANTED.setdefault(ctx_state.get(), {}).setdefault(host.name, _Wanted())
    wanted.files.update(files)
    wanted.units.update(units)
    wanted.packages.update(packages)
    wanted.globs.update(globs)
    if account:
        wanted.account = account


def _changes(state) -> tuple:
    """Changes when any operation on this host has run a command (or the stage moves on)."""
    executed = sum(1 for data in state.ops.get(ctx_host.get(), {}).values() if data.operation_meta.executed)
    return state.current_stage, executed


def snapshot(current: bool = True) -> dict:
    """
    The host state (``HostState``). ``current``: as it is now, read again after any operation
    ran a command; False: the last reading however old (for answers that only lead to work,
    ``_done``), read only when there is none.
    """
    state = ctx_state.get()
    kwargs = _WANTED.get(state, {}).get(host.name, _Wanted()).kwargs()
    mark, key = _changes(state), repr(kwargs)
    cached = _READ.setdefault(state, {}).get(host.name)
    if cached and cached[1] == key and (cached[0] == mark or not current):
        return cached[2]
    value = (host.get_fact(HostState, **kwargs, _stdin=HiddenStdin(run_key()), _get_pty=False)
             or HostState.default())  # a failed read: nothing known
    _READ[state][host.name] = (mark, key, value)
    return value


def _done(check: Callable[[dict], bool]) -> bool:
    """
    Whether ``check`` finds the work done: asked of the last reading, however old; when that
    says done (work would be skipped), asked again of a current one.
    """
    return check(snapshot(current=False)) and check(snapshot())


def sha256(content: str | bytes) -> str:
    return hashlib.sha256(content.encode() if isinstance(content, str) else content).hexdigest()


#: Per pyinfra run (State): the key of ``HostState``'s file digests.
_KEYS: "weakref.WeakKeyDictionary[object, str]" = weakref.WeakKeyDictionary()


def run_key() -> str:
    """This run's random key for the digests of file contents (``HostState``), never printed."""
    return _KEYS.setdefault(ctx_state.get(), secrets.token_hex(32))


def keyed_sha256(content: str | bytes) -> str:
    """The digest ``HostState`` reads for a file holding ``content``: sha256 of this run's key, then it."""
    return sha256(run_key().encode() + (content.encode() if isinstance(content, str) else content))


def octal(mode: str | int) -> str:
    """A mode as ``stat -c %a`` prints it: ``"0644"`` and ``644`` -> ``"644"``."""
    return str(mode).lstrip("0").zfill(3)


def _file_matches(reading: dict, path: str, content: str | bytes, mode: str, user: str | None,
                  group: str | None) -> bool:
    found = reading["files"].get(path)
    return bool(found and found["type"] == "regular file" and found["sha256"] == keyed_sha256(content)
                and found["mode"] == octal(mode) and (user is None or found["user"] == user)
                and (group is None or found["group"] == group))


def file_matches(path: str, content: str | bytes, mode: str, user: str | None = None,
                 group: str | None = None) -> bool:
    """Whether ``path`` is a regular file with this content and mode (and owner, group when given)."""
    return _done(lambda reading: _file_matches(reading, path, content, mode, user, group))


def absent(path: str) -> bool:
    """Whether nothing (no file, no link) is at ``path`` (which must have been wanted)."""
    return _done(lambda reading: path not in reading["files"])


def _directory_matches(reading: dict, path: str, user: str, group: str, mode: str | None) -> bool:
    found = reading["files"].get(path)
    return bool(found and found["type"] == "directory" and found["user"] == user and found["group"] == group
                and (mode is None or found["mode"] == octal(mode)))


def directory_matches(path: str, user: str, group: str, mode: str | None = None) -> bool:
    return _done(lambda reading: _directory_matches(reading, path, user, group, mode))


#: Unit states pyinfra's SystemdStatus counts as running, SystemdEnabled as enabled.
RUNNING_STATES = ("running", "waiting", "exited", "listening", "mounted")
ENABLED_STATES = ("enabled", "static")


def _unit(reading: dict, unit: str) -> dict:
    return reading["units"].get(unit) or {}


def unit_running(unit: str) -> bool:
    """Whether a systemd unit is running, as pyinfra's SystemdStatus judges it."""
    return _done(lambda reading: _unit(reading, unit).get("SubState") in RUNNING_STATES)


def unit_enabled(unit: str) -> bool:
    """Whether a systemd unit is enabled at boot, as pyinfra's SystemdEnabled judges it."""
    return _done(lambda reading: _unit(reading, unit).get("UnitFileState") in ENABLED_STATES)


def unit_file_loaded(unit: str) -> bool:
    """Whether systemd has read the unit's file as it is now (no ``NeedDaemonReload``): a run
    stopped between installing a unit and reloading systemd leaves the older one loaded."""
    return _done(lambda reading: _unit(reading, unit).get("NeedDaemonReload") != "yes")


def account_absent() -> bool:
    """Whether the wanted account does not exist (``getent passwd`` found nothing), now: useradd
    fails for an existing account."""
    return not snapshot()["passwd"]


def account_matches(user: str, home: str, shell: str, comment: str) -> bool:
    """Whether the account exists as ``server.user`` would leave it, its home folder its own."""
    def matches(reading: dict) -> bool:
        passwd = reading["passwd"]
        return bool(passwd and len(passwd) >= 7 and passwd[0] == user and passwd[4] == comment
                    and passwd[5] == home and passwd[6] == shell and _directory_matches(reading, home, user, user, None))

    return _done(matches)


def packages_installed(packages) -> bool:
    """Whether dpkg reports every package installed."""
    return _done(lambda reading: all(reading["packages"].get(p) == "installed" for p in packages))


def listed() -> list[str]:
    """Paths matching the wanted globs, now."""
    return list(snapshot()["listed"])


def rendered(src: str, variables: dict) -> str:
    """What ``files.template(src=src, **variables)`` uploads (same jinja2 environment and context)."""
    state = ctx_state.get()
    data = {"host": ctx_host.get(), "state": state, "inventory": state.inventory, **variables}
    return get_template(src).render(data)


_FACTS: "weakref.WeakKeyDictionary[object, dict[str, dict]]" = weakref.WeakKeyDictionary()


def fact_until_change(cls, **kwargs):
    """
    ``host.get_fact(cls, **kwargs)``, reused by later operations asking for the same fact
    while no operation on this host has run a command since it was read (same rule as
    ``snapshot``: ask before the current operation yields anything).
    """
    state = ctx_state.get()
    mark, key = _changes(state), (cls, repr(sorted(kwargs.items())))
    cache = _FACTS.setdefault(state, {}).setdefault(host.name, {})
    hit = cache.get(key)
    if hit and hit[0] == mark:
        return hit[1]
    value = host.get_fact(cls, **kwargs)
    cache[key] = (mark, value)
    return value


#: Per run, per (host, what is read): paths operations check, declared at planning time so that
#: the first operation that asks reads them all in one command.
_DECLARED: "weakref.WeakKeyDictionary[object, dict[tuple, set]]" = weakref.WeakKeyDictionary()


def _declare(what: tuple, paths) -> None:
    _DECLARED.setdefault(ctx_state.get(), {}).setdefault((host.name, *what), set()).update(paths)


def _to_read(what: tuple, paths) -> list[str]:
    """Every path declared for ``what`` when it covers ``paths`` (one shared read), else ``paths``."""
    declared = _DECLARED.get(ctx_state.get(), {}).get((host.name, *what), set())
    return sorted(declared) if declared.issuperset(paths) else sorted(paths)


def want_user_paths(user: str, paths) -> None:
    """Declare (at planning time) paths an account's operations check: read together, as that account."""
    _declare(("user", user), paths)


def user_paths(fact, user: str, paths) -> dict:
    """
    What ``user`` sees at ``paths`` (``fact``: ``ownership.UserPaths``, read as that account, with
    hashes): one read for every path declared for the account, reused until an operation runs a
    command; the paths asked for only when they were not declared.
    """
    return fact_until_change(fact, user=user, paths=_to_read(("user", user), paths), hashes=True)


def want_existence(paths) -> None:
    """Declare (at planning time) paths whose existence this host's operations check: read together."""
    _declare(("exists",), paths)


def existing(fact, paths) -> set[str]:
    """
    Which of ``paths`` exist (``fact``: ``facts.PathExists``): one read for every path declared
    for the host, reused until an operation runs a command; the paths asked for only when they
    were not declared.
    """
    paths = list(paths)
    return set(fact_until_change(fact, paths=_to_read(("exists",), paths))) & set(paths)
