"""
Who may change what on a host, read without trusting the accounts that may: commands run
as an account (``as_user``), what an account sees at paths it owns (links reported, never
followed), and the checks made before root takes install folders or runs a venv's code.
Used by ``host.uploads`` (writing as an account) and the sections.
"""

from __future__ import annotations

import shlex
from typing import Optional

from pyinfra.api import FactBase

from model.omero_install import NOT_ROOTS_ONLY, find_untrusted

q = shlex.quote


def as_user(user: str, script: str, *args: str) -> str:
    """``sh -c SCRIPT ARGS`` run as ``user`` (needs root), every argument quoted: what root
    reads or writes in a folder that account owns goes through the account."""
    return " ".join([f"runuser -u {q(user)} -- sh -c {q(script)} sh", *(q(a) for a in args)])


def trusted_venv(venv: str) -> str:
    """
    Shell test, true when only root can change the venv's code (``install.find_untrusted``: the
    folders above it, the venv, every file in it). The facts that run the venv's python as root
    check it first: pyinfra reads every operation's facts before running any (when it detects
    changes, i.e. without ``-y``, and with ``--dry``), so before the refusal of an unsafe venv runs.
    """
    return f'{{ {find_untrusted(venv)}; [ -z "$untrusted" ]; }}'


class SameContent(FactBase[bool]):
    """
    Whether ``path`` is a regular file holding exactly the content sent on the command's
    standard input (``_stdin=SameContent.stdin(content)``), compared on the host: a secret's
    content never reaches a command line, and neither it nor a digest of it (a weak password
    can be guessed offline from a digest in a saved log) comes back, only ``same``. Read as root.

    + path: the file compared

    .. code:: python

        True
    """

    default = bool

    @staticmethod
    def stdin(content: str | bytes) -> str:
        """The standard input for ``content``: one line of hex (pyinfra ends what it sends with a newline)."""
        return (content.encode() if isinstance(content, str) else content).hex()

    def command(self, path: str):
        # `[` and the variables stay in the shell: nothing compared reaches a command line
        return (f'if [ -f {q(path)} ] && [ ! -L {q(path)} ] && '
                f'[ "$(od -An -v -tx1 {q(path)} | tr -d "[:space:]")" = "$(cat)" ]; then echo same; fi; true')

    def process(self, output) -> bool:
        return list(output)[:1] == ["same"]


# Run as the account: argv = 0|1 (hash regular files), paths; prints type|mode|sha256|path.
_USER_PATHS = r"""cd / || exit 0; hash=$1; shift; for p in "$@"; do
if [ -L "$p" ]; then echo "symbolic link|0|-|$p"
elif [ -e "$p" ]; then h=-
[ "$hash" = 1 ] && [ -f "$p" ] && h=$(sha256sum < "$p" | cut -d' ' -f1)
echo "$(stat -c %F "$p")|$(stat -c %a "$p")|$h|$p"; fi; done"""


class UserPaths(FactBase[dict[str, dict[str, Optional[str]]]]):
    """
    What the account sees at these paths, read as that account (links are reported, never
    followed): ``{path: {"type", "mode", "sha256"}}`` for the paths that exist; type is
    ``directory``, ``regular file``, ``symbolic link``, ...; sha256 only with ``hashes``.

    + user: the account that reads them
    + paths: the paths looked at
    + hashes: also the sha256 of regular files

    .. code:: python

        {
            "/opt/omero/web/omero-web/etc/grid": {"type": "directory", "mode": "700", "sha256": None},
            "/opt/omero/web/omero-web/etc/templates/error/maintainance.html": {
                "type": "regular file",
                "mode": "644",
                "sha256": "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824",
            },
        }
    """

    default = dict

    def command(self, user: str, paths=(), hashes: bool = False):
        return f"{as_user(user, _USER_PATHS, '1' if hashes else '0', *paths)} 2>/dev/null || true"

    def process(self, output) -> dict:
        found = {}
        for line in output:
            kind, mode, digest, path = (line.split("|", 3) + ["", "", ""])[:4]
            if path:
                found[path] = {"type": "regular file" if kind == "regular empty file" else kind,
                               "mode": mode.zfill(3), "sha256": None if digest == "-" else digest}
        return found


# argv: user, account marker (GECOS), OMERODIR, then every install folder (venv, OMERODIR, ...).
# Prints one line per problem; nothing when the paths and the account are safe to take.
_INSTALL_PROBLEMS = r"""
user=$1; marker=$2; omerodir=$3; shift 3
for top in "$@"; do
 # the path as written, then the path it resolves to (a link above it could be pointed elsewhere)
 real=$(readlink -f -- "$top" 2>/dev/null) || real=$top; n=0
 for p in "$top" "$real"; do
  n=$((n + 1)); [ $n -eq 1 ] || [ "$real" != "$top" ] || continue
  while [ "$p" != / ]; do
    p=${p%/*}; [ -n "$p" ] || p=/
    [ -e "$p" ] || continue
    o=$(stat -L -c %u "$p"); m=$(stat -L -c %a "$p")
    if [ "$o" != 0 ]; then
      echo "$p (above $top) belongs to uid $o, not root: that account could swap what the deploy writes below it"
    elif [ $(( 0$m & 022 )) -ne 0 ]; then
      echo "$p (above $top) is writable by group or others (mode $m): any such account could swap what is below it"
    fi
  done
 done
done
# Every install folder but OMERODIR (the venv): root runs what is in it (python, pip), so an
# existing one must be root's through and through, as this deploy makes it.
for top in "$@"; do
  [ "$top" = "$omerodir" ] && continue
  if [ -L "$top" ]; then
    echo "$top is a symbolic link: the deploy installs into a folder of its own, never through a link"
  elif [ -e "$top" ]; then
    bad=$(find "$top" @NOT_ROOTS_ONLY@ -print 2>/dev/null | head -n 1)
    if [ -n "$bad" ]; then
      echo "$bad (in $top) is not root's or is writable by group or others (owner uid $(stat -c %u "$bad"), mode $(stat -c %a "$bad")): root runs what is in $top (python, pip), so another account could run code as root; give it to root (chown -R root:root $top && chmod -R go-w $top) or choose another folder"
    fi
  fi
done
if [ -L "$omerodir" ]; then
  echo "$omerodir (OMERODIR) is a symbolic link: the deploy makes OMERODIR a folder"
elif [ -e "$omerodir" ]; then
  owner=$(stat -c %U "$omerodir")
  if [ ! -d "$omerodir" ]; then
    echo "$omerodir (OMERODIR) exists and is not a folder"
  elif [ "$owner" != "$user" ] && [ -n "$(ls -A "$omerodir")" ]; then
    echo "$omerodir (OMERODIR) belongs to $owner and is not empty: the deploy gives OMERODIR to $user only when it is new, empty or already $user's"
  fi
fi
if entry=$(getent passwd "$user"); then
  uid=$(echo "$entry" | cut -d: -f3); gecos=$(echo "$entry" | cut -d: -f5)
  if [ "$uid" = 0 ]; then
    echo "the account $user has uid 0 (root): OMERO.web never runs as root"
  elif [ "$gecos" != "$marker" ] && [ "$(stat -c %U "$omerodir" 2>/dev/null)" != "$user" ]; then
    echo "the account $user exists and was not created by omeroweb-deploy (its comment is not '$marker' and it does not own $omerodir): the deploy would modify it; choose a new omero_web_user, or hand this account over with: usermod -c '$marker' $user"
  fi
fi
true
"""


_INSTALL_PROBLEMS = _INSTALL_PROBLEMS.replace("@NOT_ROOTS_ONLY@", NOT_ROOTS_ONLY)


class InstallProblems(FactBase[list[str]]):
    """
    Why the install folders or the OMERO.web account must not be taken (empty: safe): a
    folder above them not root's or writable by others, an existing venv (any install
    folder but OMERODIR) that is a link or holds anything not root's or writable by others,
    an OMERODIR that is a link or another account's, an existing account this deploy did
    not create.

    + user: the account that will own OMERODIR and run OMERO.web
    + marker: the comment (GECOS) of the accounts this deploy creates
    + omerodir: OMERODIR
    + folders: every folder the deploy installs into (venv, OMERODIR, ...)

    .. code:: python

        [
            "/opt/omero/web (above /opt/omero/web/venv3) is writable by group or others (mode 775): "
            "any such account could swap what is below it",
        ]
    """

    default = list

    def command(self, user: str, marker: str, omerodir: str, folders=()):
        return "sh -c " + " ".join(q(a) for a in (_INSTALL_PROBLEMS, "sh", user, marker, omerodir, *folders))

    def process(self, output) -> list[str]:
        return [line for line in output if line.strip()]


# Run as the account: argv = folder; prints type|mode|path (relative) of everything below it,
# then "sha256  path" of its regular files. Links are listed, never followed.
_USER_TREE = r"""[ -d "$1" ] && [ ! -L "$1" ] && cd "$1" || exit 0
find . -maxdepth 0 -printf '%y|%m|.\n'; find . -mindepth 1 -printf '%y|%m|%P\n'; echo '--'
find . -mindepth 1 -type f -exec sha256sum {} +"""


class UserTree(FactBase[dict[str, dict[str, Optional[str]]]]):
    """
    A folder the account owns and everything below it, read as that account: ``{relative
    path ("." for the folder): {"type": "d"|"f"|"l"|..., "mode", "sha256"}}`` (empty when the
    folder is missing or a link).

    + user: the account that owns the folder
    + path: the folder

    .. code:: python

        {
            ".": {"type": "d", "mode": "755", "sha256": None},
            "mytemplate": {"type": "d", "mode": "755", "sha256": None},
            "mytemplate/index.html": {
                "type": "f",
                "mode": "644",
                "sha256": "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824",
            },
        }
    """

    default = dict

    def command(self, user: str, path: str):
        return f"{as_user(user, _USER_TREE, path)} 2>/dev/null || true"

    def process(self, output) -> dict:
        tree: dict = {}
        lines = list(output)
        split = lines.index("--") if "--" in lines else len(lines)
        for line in lines[:split]:
            kind, _, rest = line.partition("|")
            mode, _, path = rest.partition("|")
            if path:
                tree[path] = {"type": kind, "mode": mode.zfill(3), "sha256": None}
        for line in lines[split + 1:]:
            digest, _, path = line.partition("  ")
            entry = tree.get(path[2:])  # "./relative path"
            if entry and entry["type"] == "f":
                entry["sha256"] = digest
        return tree
