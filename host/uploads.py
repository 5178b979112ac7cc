"""
How content reaches a host without trusting anybody on it but root. One module, two rules:

- **A secret travels only through owner-only places.** With ``_sudo`` (``_su_user``, ...)
  pyinfra uploads as the SSH user to a temporary file, by default in /tmp and readable by
  everyone while it exists, then copies it as root: here that file lives in a folder only
  the SSH user can enter (``private_upload``), and lands in a root-only folder or file.
- **Root never writes, chowns or chmods inside a folder a less trusted account owns.**
  OMERODIR belongs to the OMERO.web user (an OMERO.server's to its user): a symbolic or hard
  link planted there would redirect a write made as root. Content is staged in a root-only
  folder and written *as that account*, from root's open file (``write_as``), so a planted
  link can only ever point the account at its own files; a link or anything but a regular
  file (a folder) where the deploy writes is refused, with a message, instead of followed.

These are command builders (used inside operations) and the operations built on them.
"""

from __future__ import annotations

import hashlib
import os
import shlex
from io import BytesIO, StringIO
from itertools import groupby
from operator import itemgetter

from pyinfra import host, logger, state
from pyinfra.api import FileUploadCommand, StringCommand, operation
from pyinfra.facts.files import File, FileContents
from pyinfra.operations.util.files import generate_color_diff

from model.omero_install import HOST_SECRET_READER, HOST_SECRET_TOKEN, ROOT_STAGING
from model.secrecy import HiddenStdin
from host.ownership import SameContent, UserPaths, UserTree, as_user
from host.snapshot import file_matches, octal, rendered, sha256, user_paths, want, want_user_paths

q = shlex.quote

REFUSED = "omeroweb-deploy: refusing"

# Run as the account by ``write_as``: argv = destination, mode; content on stdin (opened by root).
_WRITE = (
    'cd / || exit 1; dest=$1; mode=$2; '
    'if [ -L "$dest" ] || { [ -e "$dest" ] && [ ! -f "$dest" ]; }; then '
    f'echo "{REFUSED} to write $dest: it is a symbolic link or not a regular file, which this deploy never makes: '
    'remove it, then run again" >&2; exit 1; fi; '
    'umask 077; tmp="$dest.omeroweb-deploy-new"; rm -f "$tmp" && cat > "$tmp" && chmod "$mode" "$tmp" '
    '&& mv -f "$tmp" "$dest"'
)
# Run as the account by ``directories_as``: argv = mode, folder... (made with parents, then chmod).
_MKDIRS = (
    'cd / || exit 1; mode=$1; shift; for d in "$@"; do '
    'if [ -L "$d" ] || { [ -e "$d" ] && [ ! -d "$d" ]; }; then '
    f'echo "{REFUSED} to use $d: it is a symbolic link or not a folder, which this deploy never makes: '
    'remove it, then run again" >&2; exit 1; fi; '
    'mkdir -p "$d" && chmod "$mode" "$d" || exit 1; done'
)
# Run as the account by ``save_as``: stdin to a new owner-only file (argv: its path); a link there is refused.
_SAVE = 'cd / && umask 077 && [ ! -L "$1" ] && cat > "$1"'
# Run as the account by ``remove_as``: argv = files to remove (links are removed, never followed).
_REMOVE = 'cd / || exit 1; for f in "$@"; do if [ -d "$f" ] && [ ! -L "$f" ]; then rmdir "$f"; else rm -f "$f"; fi || exit 1; done'


#: Global arguments under which pyinfra uploads as the SSH user to a temporary file, then
#: copies it into place (pyinfra/connectors/ssh.py, ``put_file``).
_ESCALATION = ("_sudo", "_su_user", "_doas", "_dzdo")


def private_upload(content: str | bytes, dest: str):
    """
    Commands uploading ``content`` to ``dest`` (in a root-only folder) without it ever being
    readable by others on the way: under ``_sudo`` (or su, doas, dzdo) the temporary file
    lives in a folder only the SSH user can enter, created and removed as that user;
    connected as root, pyinfra writes ``dest`` directly and no folder is needed.
    """
    arguments = host.current_op_global_arguments
    data = BytesIO(content) if isinstance(content, bytes) else StringIO(content)
    if arguments is not None and not any(arguments.get(key) for key in _ESCALATION):
        yield FileUploadCommand(data, dest)
        return
    as_login_user = dict(_sudo=False, _su_user=None, _doas=False, _dzdo=False)
    private = host.get_temp_filename()
    yield StringCommand(f"umask 077 && mkdir -m 700 {q(private)}", **as_login_user)
    yield FileUploadCommand(data, dest, remote_temp_filename=f"{private}/{os.path.basename(dest)}")
    yield StringCommand(f"rm -rf {q(private)}", **as_login_user)


def staged_path(dest: str) -> str:
    """Where the content bound for ``dest`` is staged (root-only)."""
    return f"{ROOT_STAGING}/{hashlib.sha256(dest.encode()).hexdigest()[:20]}"


def stage(content: str | bytes, dest: str):
    """Commands staging the content bound for ``dest`` in the root-only folder (made with the
    run lock), privately."""
    yield from private_upload(content, staged_path(dest))


#: awk program putting the password in the environment's PW in place of HOST_SECRET_TOKEN.
_PUT_HOST_SECRET = '{ gsub(/' + HOST_SECRET_TOKEN + '/, ENVIRON["PW"]); print }'


def write_as(user: str, content: str | bytes, dest: str, mode: str = "600", host_secret: str | None = None):
    """
    Commands writing ``content`` to ``dest`` as ``user``: staged privately in the root-only
    folder, then written by the account from root's open file (temporary name, then rename:
    a link in the way is refused, never written through). ``host_secret``: a root-only file
    whose ``requirepass`` replaces ``HOST_SECRET_TOKEN`` in ``content`` on the host (the
    secret never leaves it); the write fails when that file has none.
    """
    staged = staged_path(dest)
    yield from stage(content, dest)
    if host_secret:
        resolved = f"{staged}.resolved"
        missing = (f"omeroweb-deploy: {host_secret} holds no password made on this host: run the redis section "
                   "(omero_web_tags=redis), which makes it")
        # the password read by root into a shell variable, put in place by awk from its environment
        # (ENVIRON: not a command line), into a root-only copy the account then reads
        yield (f"pw=$(awk {q(HOST_SECRET_READER)} {q(host_secret)} 2>/dev/null); "
               f"if [ -z \"$pw\" ]; then echo {q(missing)} >&2; rm -f {q(staged)}; exit 3; fi; "
               f"(umask 077 && PW=\"$pw\" awk {q(_PUT_HOST_SECRET)} "
               f"{q(staged)} > {q(resolved)}) && {as_user(user, _WRITE, dest, mode)} < {q(resolved)}; rc=$?; "
               f"rm -f {q(staged)} {q(resolved)}; exit $rc")
        return
    yield f"{as_user(user, _WRITE, dest, mode)} < {q(staged)}; rc=$?; rm -f {q(staged)}; exit $rc"


def save_as(user: str, dest: str) -> str:
    """Command saving its standard input (opened by root) to a new owner-only file, as ``user``."""
    return as_user(user, _SAVE, dest)


def save_output_as(user: str, command: str, dest: str) -> str:
    """
    Command saving the output of ``command`` (run by root) to ``dest`` as ``user``: through a
    shell variable, so a failing command fails here rather than hidden by a pipe; printf is a
    shell builtin, so the output (secrets, often) never reaches a command line.
    """
    return f"out=$({command}) && printf '%s\\n' \"$out\" | {save_as(user, dest)}"


def mkdirs_as(user: str, mode: str, *paths: str) -> str:
    """Command making folders (with parents) as ``user`` and setting their mode; refuses links."""
    return as_user(user, _MKDIRS, mode, *paths)


def remove_as(user: str, *paths: str) -> str:
    """Command removing files (and empty folders) as ``user``; a link is removed, not followed."""
    return as_user(user, _REMOVE, *paths)


def directories_as(name: str, user: str, paths: dict[str, str], **kwargs):
    """``directories_as_op``, its paths read with the account's other checked paths (``host_state``)."""
    want_user_paths(user, paths)
    return directories_as_op(name=name, user=user, paths=paths, **kwargs)


def file_as(name: str, user: str, dest: str, content: str, mode: str = "644", **kwargs):
    """``file_as_op``, its path read with the account's other checked paths (``host_state``)."""
    want_user_paths(user, [dest])
    return file_as_op(name=name, user=user, dest=dest, content=content, mode=mode, **kwargs)


@operation()
def directories_as_op(user: str, paths: dict[str, str]):
    """
    Folders owned by ``user`` with the given modes, made and changed as that account (never
    as root): a link or a file in the place of one is refused.

    + user: the account that owns the folders (e.g. OMERODIR's)
    + paths: folder -> octal mode, e.g. ``{"/opt/omero/web/omero-web/etc": "755"}``

    Sections call it through ``directories_as``, which reads its paths with the account's other
    checked paths (``host_state``).

    **Examples:**

    .. code:: python

        directories_as_op(
            name="Create /opt/omero/web/omero-web/etc, etc/grid and the private staging folder",
            user="omero-web",
            paths={
                "/opt/omero/web/omero-web/etc": "755",
                "/opt/omero/web/omero-web/etc/grid": "700",
                "/opt/omero/web/omero-web/etc/.omeroweb-deploy": "700",
            },
        )
    """
    found = user_paths(UserPaths, user, paths)
    missing = [(path, mode) for path, mode in sorted(paths.items())
               if not (found.get(path) and found[path]["type"] == "directory" and found[path]["mode"] == octal(mode))]
    # one command: consecutive folders of one mode made by one shell, in path order (parents first)
    if missing:
        yield " && ".join(mkdirs_as(user, mode, *(path for path, _ in group))
                          for mode, group in groupby(missing, key=itemgetter(1)))


@operation()
def file_as_op(user: str, dest: str, content: str, mode: str = "644"):
    """
    A file owned by ``user`` with this content and mode, written as that account (see the
    module docstring). Compared by hash: nothing is shown, nothing happens when equal.

    + user: the account that owns the file
    + dest: the file's path (in a folder the account owns)
    + content: the file's text
    + mode: octal mode

    Sections call it through ``file_as``, which reads its path with the account's other
    checked paths (``host_state``).

    **Examples:**

    .. code:: python

        file_as_op(
            name="Install the maintenance page",
            user="omero-web",
            dest="/opt/omero/web/omero-web/etc/templates/error/maintainance.html",
            content=Path("files/nginx/maintainance.html").read_text(),
            mode="644",
        )
    """
    info = user_paths(UserPaths, user, [dest]).get(dest)
    if info and info["type"] == "regular file" and info["sha256"] == sha256(content) and info["mode"] == octal(mode):
        return
    yield from write_as(user, content, dest, mode)


@operation()
def private_file(dest: str, content: str, mode: str = "600", user: str = "root", group: str = "root"):
    """
    A root-owned file whose content is a secret (a TLS key, a pip.conf with credentials):
    compared on the host (``SameContent``: neither the content nor a digest of it comes
    back), uploaded only through owner-only places, never diffed or printed. Its folder
    must be root's.

    + dest: the file's path
    + content: the file's text
    + mode: octal mode (default 600)
    + user: owner
    + group: group

    **Examples:**

    .. code:: python

        private_file(
            name="Redis password from omero_web_redis_url",
            dest="/etc/omeroweb-deploy/redis-auth.conf",
            content=auth_conf_from_data("redis://:s3cret@127.0.0.1:6379/0"),
            mode="640",
            group="redis",
        )
    """
    info = host.get_fact(File, path=dest)
    if info is False:  # a link or a folder in its place
        yield f"echo {q(f'{REFUSED} to write {dest}: it is a symbolic link or not a regular file')} >&2; exit 1"
        return
    # compared on the host: the content goes on standard input, only "same" or not comes back
    same = info and host.get_fact(SameContent, path=dest, _stdin=HiddenStdin(SameContent.stdin(content)),
                                  _get_pty=False)
    if same and info["user"] == user and info["group"] == group and octal(info["mode"]) == octal(mode):
        return
    yield from stage(content, dest)
    yield install_staged(dest, user, group, mode)


def install_staged(dest: str, user: str = "root", group: str = "root", mode: str = "644") -> str:
    """
    Command giving the copy staged for ``dest`` (root's, in the root-only folder) its owner and
    mode, then renaming it into place: a link at ``dest`` is replaced, never written through;
    a folder there fails (``mv -T``). ``-Z``: the file takes the SELinux label of where it
    lands, not the staging folder's (``var_lib_t``, which crond and systemd may refuse for a
    cron job or a unit where SELinux enforces); ignored without SELinux (coreutils >= 8.22).
    """
    staged = staged_path(dest)
    return (f"chown {q(user)}:{q(group)} {q(staged)} && chmod {q(mode)} {q(staged)} && mv -fTZ {q(staged)} {q(dest)}"
            f" || {{ rm -f {q(staged)}; exit 1; }}")


def root_file(name: str, dest: str, content: str, mode: str = "644"):
    """
    ``root_file_op``, skipped without reading anything more when the host's state (read once
    for many operations, ``host_state``) shows ``dest`` already with this content and mode,
    owned by root.
    """
    want(files=[dest])
    return root_file_op(name=name, dest=dest, content=content, mode=mode,
                        _if=lambda: not file_matches(dest, content, mode, "root", "root"))


def root_template(name: str, src: str, dest: str, mode: str, **variables):
    """``root_file`` of a jinja2 template rendered as ``files.template`` renders it (``host_state.rendered``)."""
    return root_file(name, dest, rendered(src, variables), mode)


@operation()
def root_file_op(dest: str, content: str, mode: str = "644"):
    """
    A root-owned file with this content and mode, in a folder only root can write to (a
    systemd unit, an init.d script, a cron file, a CA certificate): staged privately in the
    root-only folder, then given its owner and mode and renamed into place in one command,
    where ``files.put`` reads three facts and runs chown and chmod after the upload. Never for
    a secret (``private_file``): at ``--diff`` the change is shown, as ``files.put`` shows it.

    + dest: the file's path
    + content: the file's text
    + mode: octal mode

    Sections call it through ``root_file`` (or ``root_template``), which skips it when the
    host's state already shows the file as wanted.

    **Examples:**

    .. code:: python

        root_file_op(
            name="Install extra CA certificate omeroweb-deploy-example-ca.crt",
            dest="/usr/local/share/ca-certificates/omeroweb-deploy-example-ca.crt",
            content=Path("ca/example-ca.crt").read_text(),
            mode="644",
        )
    """
    if state.config.DIFF:
        current = host.get_fact(FileContents, path=dest)
        host.log(f"Will {'create' if current is None else 'modify'} {dest}", logger.info)
        for line in generate_color_diff([f"{line}\n" for line in current or []], content.splitlines(True)):
            logger.info("  %s", line)
        logger.info("")
    yield from stage(content, dest)
    yield install_staged(dest, "root", "root", mode)


def local_tree(src: str) -> tuple[list[str], dict[str, bytes]]:
    """Folders and files below a control-machine folder, as relative paths (sorted)."""
    folders, found = [], {}
    for top, dirnames, filenames in os.walk(src):
        dirnames.sort()
        rel = os.path.relpath(top, src)
        if rel != ".":
            folders.append(rel)
        for name in sorted(filenames):
            path = os.path.join(top, name)
            with open(path, "rb") as handle:
                found[os.path.normpath(os.path.join(rel, name))] = handle.read()
    return folders, found


@operation()
def synced_as(user: str, src: str, dest: str, mode: str = "644", dir_mode: str = "755"):
    """
    A copy of a control-machine folder, owned by ``user`` and written as that account
    (files removed from ``src`` are removed; anything else in the way, a link included, is
    removed as the account and replaced, never written through).

    + user: the account that owns ``dest``
    + src: local folder
    + dest: folder on the host (in a folder the account owns)
    + mode: files' octal mode
    + dir_mode: folders' octal mode

    **Examples:**

    .. code:: python

        synced_as(
            name="Copy the custom OMERO.web templates",
            user="omero-web",
            src="templates/omero-web",
            dest="/opt/omero/web/omero-web/etc/templates/custom",
            mode="644",
            dir_mode="755",
        )
    """
    folders, files = local_tree(src)
    remote = host.get_fact(UserTree, user=user, path=dest)
    mode, dir_mode = octal(mode), octal(dir_mode)
    wanted = {".": ("d", dir_mode, None), **{d: ("d", dir_mode, None) for d in folders},
              **{f: ("f", mode, sha256(content)) for f, content in files.items()}}
    # entries in the way (not in src, or of another type), deepest first
    extra = sorted((p for p, e in remote.items() if p not in wanted or e["type"] != wanted[p][0]),
                   key=lambda p: p.count("/"), reverse=True)
    extra = [p for p in extra if not any(p.startswith(o + "/") for o in extra)]
    if extra:
        yield as_user(user, 'cd / && for p in "$@"; do rm -rf -- "$p" || exit 1; done',
                      *(f"{dest}/{p}" for p in extra))
    make = [d for d in (".", *folders) if d in extra or remote.get(d, {}).get("mode") != dir_mode]
    if make:
        yield mkdirs_as(user, dir_mode, *(dest if d == "." else f"{dest}/{d}" for d in make))
    for path, content in sorted(files.items()):
        entry = remote.get(path)
        if entry and path not in extra and entry["sha256"] == wanted[path][2] and entry["mode"] == mode:
            continue
        yield from write_as(user, content, f"{dest}/{path}", mode)
