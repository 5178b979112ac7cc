"""
One OMERO install on a host, as one frozen value: its virtualenv, its OMERODIR and the
account that owns OMERODIR, and every on-host path derived from them, so that each path is
written once. The OMERO.web install comes from the data's ``omero_web_venv``,
``omero_web_omerodir`` and ``omero_web_user`` (``Context.install``); an OMERO.server's from
``omero_web_omero_server_*`` (``Context.server``). Pure: no pyinfra, no host.
"""

from __future__ import annotations

import hashlib
import shlex
from collections.abc import Sequence
from dataclasses import dataclass

q = shlex.quote
#: PATH for commands run as the install's account, after the venv's bin.
SYSTEM_PATH = "/usr/local/bin:/usr/bin:/bin"
#: Root-only folder (0700) of the deploy on every host: the run lock, root's staging folder, the
#: scratch OMERODIR of the NGINX site generator and the records of its inputs live there.
STATE_DIR = "/var/lib/omeroweb-deploy"
#: Root-only folder where content is staged before root (or an account, from root's open
#: file) puts it in place; made (and checked) with the run lock, removed when empty with it.
ROOT_STAGING = f"{STATE_DIR}/staging"
#: Ends the here-document of ``omero load`` (``OmeroInstall.omero_commands``): never a command's line.
OMERO_COMMANDS_END = "OMERO_COMMANDS_END"
#: Run by the venv's python right after ``pip install --no-compile``: byte-compiles the venv's
#: packages on every core. pip compiles one file after the other, a third to a half of its
#: install time (Django, omero-py); the ``.pyc`` files are the same, and files that do not
#: compile are passed over as pip does. One process where there is no working process pool
#: (old Pythons).
COMPILE_PACKAGES = (
    "import compileall, sysconfig\n"
    "paths = sorted({sysconfig.get_paths()[key] for key in ('purelib', 'platlib')})\n"
    "def compile_all(workers):\n"
    "    for path in paths:\n"
    "        compileall.compile_dir(path, maxlevels=64, quiet=2, workers=workers)\n"
    "try:\n"
    "    compile_all(0)\n"
    "except (ImportError, NotImplementedError, OSError):\n"
    "    compile_all(1)\n"
)


#: Around a command whose output ``buffered`` holds until it ends (the tests' simulation
#: unwraps it to check the command itself).
BUFFER_START = f"(o=$(mktemp -d {STATE_DIR}/output.XXXXXX) || exit 1; ("
BUFFER_END = '\n) >"$o/out" 2>"$o/err"; rc=$?; cat "$o/out"; cat "$o/err" >&2; rm -rf "$o"; exit $rc)'


#: ``find`` test matching what makes a venv unsafe to run its code: a file of another account,
#: or writable by group or others (links aside: their own mode means nothing).
NOT_ROOTS_ONLY = r"\( ! -uid 0 -o \( ! -type l -perm /022 \) \)"
#: How every refusal to run a venv's code begins.
UNTRUSTED_VENV = "omeroweb-deploy: refusing to run code from"
#: Sets ``$untrusted`` to the first path that lets an account other than root change what runs
#: from the venv (``owd_v``): a folder above it not root's or writable by group or others, both
#: on the path as written and on the path it resolves to (a link above the venv, in a folder
#: of another account, could be pointed elsewhere), the venv itself a link, a file in it of
#: another account or writable by group or others; empty when only root can change it. Plain
#: ``sh`` (dash, busybox), no function, names prefixed.
_FIND_UNTRUSTED = (
    'owd_v=@VENV@; untrusted=; owd_r=$(readlink -f -- "$owd_v" 2>/dev/null) || owd_r=$owd_v; '
    'for owd_p in "$owd_v" "$owd_r"; do '
    'while [ -z "$untrusted" ] && [ "$owd_p" != / ]; do owd_p=${owd_p%/*}; [ -n "$owd_p" ] || owd_p=/; '
    'if [ -e "$owd_p" ] && { [ "$(stat -L -c %u "$owd_p")" != 0 ] '
    '|| [ $(( 0$(stat -L -c %a "$owd_p") & 022 )) -ne 0 ]; }; then untrusted=$owd_p; fi; done; done; '
    'if [ -z "$untrusted" ]; then if [ -L "$owd_v" ]; then untrusted=$owd_v; '
    f'else untrusted=$(find "$owd_r" {NOT_ROOTS_ONLY} -print 2>/dev/null | head -n 1); fi; fi'
)


def find_untrusted(venv: str) -> str:
    """Shell setting ``$untrusted`` to what makes ``venv`` unsafe to run (empty: safe); see ``_FIND_UNTRUSTED``."""
    return _FIND_UNTRUSTED.replace("@VENV@", q(venv))


def untrusted_message(venv: str) -> str:
    """Shell printing (to stdout) why the venv's code is not run, naming ``$untrusted`` with its owner and mode."""
    fix = f"chown -R root:root {venv} && chmod -R go-w {venv}"
    text = ("%s %s: %s (owner uid %s, mode %s) is another account's or writable by group or others, so that "
            f"account could change code that would run; give the virtualenv and the folders above it to root ({fix}), then run again\\n")
    return (f"printf {q(text)} {q(UNTRUSTED_VENV)} {q(venv)} "
            '"$untrusted" "$(stat -c %u "$untrusted")" "$(stat -c %a "$untrusted")"')


def trusted(venv: str, command: str, refuse: str | None = None) -> str:
    """
    ``command``, run only when nothing lets an account other than root change the code it
    runs from ``venv`` (``find_untrusted``); else ``refuse`` (default: the reason on stderr and
    ``exit 1``). The one check in front of every use of a venv's code, whoever runs it (root's
    pip, python and the NGINX site generator; the account's ``omero``; a service start): a
    ``.pth`` file in site-packages runs at every start of its python. One group command:
    ``trusted(...) && b``, ``a | trusted(...)`` and a here-document after it work.
    """
    refuse = refuse or f"{untrusted_message(venv)} >&2; exit 1"
    return f"{{ {find_untrusted(venv)}; if [ -n \"$untrusted\" ]; then {refuse}; else {command}; fi; }}"


#: NGINX's error log on every distro the deploy supports (the health check's and the
#: troubleshooting bundle's).
NGINX_ERROR_LOG = "/var/log/nginx/error.log"

#: Root's own settings for the services the deploy configures (read by those services' accounts).
ETC_DIR = "/etc/omeroweb-deploy"
#: The local Redis's password (``requirepass``; root:redis 0640), included by Redis's own
#: configuration file: given by the data's URL, or made on the host and never leaving it.
REDIS_AUTH_CONF = f"{ETC_DIR}/redis-auth.conf"
#: Stands for the host's own secret (the ``requirepass`` of a file such as ``REDIS_AUTH_CONF``,
#: made on the host) in a property value the control machine plans: replaced on the host when
#: the value is compared (``facts.CONFIG_READER``) and written (``uploads.write_as``).
HOST_SECRET_TOKEN = "@@omeroweb-deploy-host-secret@@"
#: The first line of a password file whose password was made on the host (never rewritten while there).
HOST_SECRET_HEADER = "# omeroweb-deploy: Redis password made on this host; it never leaves it"
#: awk program printing the password made on the host from such a file (its header first, a
#: ``requirepass`` of hex digits): nothing for any other file, e.g. one with the data's password.
HOST_SECRET_READER = (f'FNR == 1 && $0 != "{HOST_SECRET_HEADER}" {{ exit }} '
                      '/^requirepass [0-9a-f]+$/ { print substr($0, 13); exit }')


def host_secret_line(path: str) -> str:
    """Shell printing one line: the password made on the host that ``path`` holds
    (``HOST_SECRET_READER``, read by root; printf is a builtin: it never reaches a command
    line), or an empty line."""
    return f"pw=$(awk {q(HOST_SECRET_READER)} {q(path)} 2>/dev/null); printf '%s\\n' \"$pw\""


def untrusted_failure(venv: str, path: str) -> str:
    """Command failing the run because ``path`` lets another account change the code of ``venv``."""
    message = (f"{UNTRUSTED_VENV} {venv}: {path} is another account's or writable by group or others, so that "
               f"account could change code that would run; give the virtualenv and the folders above it to root "
               f"(chown -R root:root {venv} && chmod -R go-w {venv}), then run again")
    return f"echo {q(message)} >&2; exit 1"


def buffered(command: str) -> str:
    """
    ``command`` (in a subshell) with its output held on the host until it ends, then printed:
    the same standard output and error, the same exit status, shown at the end rather than as
    it comes. All of it is one subshell: ``buffered(a) || b`` and ``buffered(a) && b`` work.
    Issue 15: a long, chatty command streamed (apt-get's and dpkg's progress, pip's) costs the
    control side about 0.3 ms of CPU for every piece it writes, one SSH packet each: 28 ms for
    an apt-get install against 3 ms held. Held in a private folder (0700, under the
    root-only state folder the run lock makes), removed at the end.
    """
    return f"{BUFFER_START}{command}{BUFFER_END}"


@dataclass(frozen=True)
class OmeroInstall:
    venv: str
    omerodir: str
    user: str

    # --- The virtualenv (root's) --------------------------------------------------------------

    @property
    def bin(self) -> str:
        return f"{self.venv}/bin"

    @property
    def python(self) -> str:
        return f"{self.venv}/bin/python"

    def pip_install(self, args: str) -> str:
        """
        ``python -m pip install ARGS`` (``args`` already quoted for the shell), then the venv's
        packages byte-compiled on every core (``COMPILE_PACKAGES``); fails when either fails.
        Its output is held until it ends (``buffered``).
        """
        python = q(self.python)
        return self.trusted(buffered(f"{python} -m pip install {args} --no-compile && {python} -c {q(COMPILE_PACKAGES)}"))

    def trusted(self, command: str, refuse: str | None = None) -> str:
        """``command`` run only while the venv's code is root's alone (``trusted``)."""
        return trusted(self.venv, command, refuse)

    def root_python(self, *args: str) -> str:
        """The venv's ``python ARGS`` run as root (``trusted``: the venv checked first)."""
        return self.trusted(" ".join(q(a) for a in (self.python, *args)))

    @property
    def omero(self) -> str:
        return f"{self.venv}/bin/omero"

    @property
    def pip_conf(self) -> str:
        return f"{self.venv}/pip.conf"

    @property
    def previous_venv(self) -> str:
        """The copy of the venv an upgrade keeps until the new one is healthy."""
        return f"{self.venv}.previous"

    @property
    def creating_marker(self) -> str:
        """Beside the venv (in its root-owned parent) while this deploy creates it."""
        return f"{self.venv}.omeroweb-deploy-creating"

    # --- OMERODIR (the account's) -------------------------------------------------------------

    @property
    def config_xml(self) -> str:
        return f"{self.omerodir}/etc/grid/config.xml"

    @property
    def staging(self) -> str:
        """Owner-only folder where configuration holding secrets is staged before loading."""
        return f"{self.omerodir}/etc/.omeroweb-deploy"

    @property
    def managed_record(self) -> str:
        """Which OMERO.web properties and list items the deploy manages (names only)."""
        return f"{self.omerodir}/etc/omeroweb-deploy-managed.json"

    @property
    def apps_record(self) -> str:
        """
        The apps the deploy installed in the venv (so that one dropped from the data is
        uninstalled): root decides from it what to uninstall, so it is root's (0600) in the
        root-only state folder, one per venv (named after a hash of its path).
        """
        return f"{STATE_DIR}/apps-{hashlib.sha256(self.venv.encode()).hexdigest()[:16]}.json"

    @property
    def apps_rollback(self) -> str:
        """Root-only folder holding the copy of ``apps_record`` an upgrade keeps for its rollback."""
        return self.apps_record[:-len(".json")] + ".rollback"

    @property
    def legacy_apps_record(self) -> str:
        """
        Where earlier releases kept ``apps_record``: in OMERODIR, which the account can write.
        Never read (its names cannot be trusted); removed once the root-only record is made.
        """
        return f"{self.omerodir}/etc/omeroweb-deploy-apps.json"

    @property
    def migrated_record(self) -> str:
        """The OMERODIR whose configuration was carried over into this one."""
        return f"{self.omerodir}/etc/omeroweb-deploy-migrated-from"

    @property
    def backups(self) -> str:
        return f"{self.omerodir}/etc/backups"

    @property
    def rollback_dir(self) -> str:
        """Copies of config.xml and the records, kept while an upgrade runs."""
        return f"{self.backups}/rollback"

    @property
    def rollback_files(self) -> list[str]:
        """What an upgrade copies (as the account) before it changes anything, and puts back
        when it fails; root's ``apps_record`` is kept by root, in ``apps_rollback``."""
        return [self.config_xml, self.managed_record]

    @property
    def templates(self) -> str:
        return f"{self.omerodir}/etc/templates"

    @property
    def error_templates(self) -> str:
        """Where the generated NGINX site looks for the maintenance page."""
        return f"{self.templates}/error"

    @property
    def custom_templates(self) -> str:
        """Where ``omero_web_templates`` is copied (added to ``omero.web.template_dirs``)."""
        return f"{self.templates}/custom"

    @property
    def var(self) -> str:
        return f"{self.omerodir}/var"

    @property
    def tmpdir(self) -> str:
        """OMERO.web's TMPDIR under the sandboxed unit (its file sessions live there)."""
        return f"{self.var}/tmp"

    @property
    def log(self) -> str:
        return f"{self.var}/log/OMEROweb.log"

    @property
    def pid_file(self) -> str:
        return f"{self.var}/django.pid"

    # --- Commands run as the account ----------------------------------------------------------

    def run(self, program: str, *args: str, tmpdir: str | None = None) -> str:
        """
        A shell command running ``program ARGS`` as the account, with OMERODIR set and the
        venv first on PATH (needs root); ``tmpdir``: its TMPDIR.
        """
        home = f'"$(getent passwd {q(self.user)} | cut -d: -f6)"'
        tmp = f"TMPDIR={q(tmpdir)} " if tmpdir else ""
        # the venv checked first (``trusted``): what runs as the account is root's code alone
        return self.trusted(
            f"runuser -u {q(self.user)} -- env {tmp}HOME={home} OMERODIR={q(self.omerodir)} "
            f"PATH={q(self.bin)}:{SYSTEM_PATH} " + " ".join(q(a) for a in (program, *args))
        )

    def omero_cmd(self, *args: str, tmpdir: str | None = None) -> str:
        """``omero ARGS`` as the account (see ``run``)."""
        return self.run(self.omero, *args, tmpdir=tmpdir)

    def omero_commands(self, commands: Sequence[Sequence[str]], then: str | None = None) -> str:
        """
        ``omero ARGS`` for each of ``commands`` in order, as the account, in one ``omero load``
        process reading them from a here-document (one ``omero`` start costs 0.6-0.9 s: Ice and
        the CLI's plugins). ``omero load`` stops at the first command that fails, with its exit
        status. One command: ``omero ARGS`` itself. ``then``: shell run when all succeeded.

        Each command is one line (``shlex``-quoted: ``omero load`` splits lines with ``shlex``);
        values are never secrets (those are in the files ``config load`` reads).
        """
        after = f" && {then}" if then else ""
        if len(commands) == 1:
            return self.omero_cmd(*commands[0]) + after
        lines = []
        for args in commands:
            if any(c in arg for arg in args for c in "\r\n\0"):
                raise ValueError(f"an omero command is one line: {list(args)!r}")
            lines.append(shlex.join(args))
        if not lines or OMERO_COMMANDS_END in lines:
            raise ValueError(f"no omero commands to run: {commands!r}")
        return (f"{self.omero_cmd('load')} <<'{OMERO_COMMANDS_END}'{after}\n" + "\n".join(lines)
                + f"\n{OMERO_COMMANDS_END}")

    def python_cmd(self, *args: str) -> str:
        """The venv's ``python ARGS`` as the account (see ``run``)."""
        return self.run(self.python, *args)
