"""
The omero-web systemd unit and init.d script as values, pure (no pyinfra, no host): the
sandboxing of systemd.exec(5) that OMERO.web runs under (``HARDENING``, measured with
``systemd-analyze security``, see docs/security.md), each directive written only for the
systemd releases that know it (an unknown directive is ignored but an unknown system call
group would leave a near-empty allow list); the restart policy (``Restart=on-failure``
within start-rate limits, unlike the walkthrough's ``Restart=no``); and every value written
into the unit escaped (``systemd_escape``) or into the script quoted for sh.
"""

from __future__ import annotations

import shlex
from pathlib import Path

from model.omero_install import OmeroInstall

q = shlex.quote
TEMPLATES = Path(__file__).resolve().parent.parent / "templates"
#: The maintenance page NGINX serves while OMERO.web is down (a node's site, the balancer).
MAINTENANCE_PAGE = Path(__file__).resolve().parent.parent / "files" / "nginx" / "maintainance.html"
SERVICE = "omero-web"
#: The daily ``omero web clearsessions`` job: a systemd timer and its service where systemd is
#: PID 1, else a cron file (the maintenance section installs it; the service section reads
#: whether it is there: OMERO.web keeps its sessions only where the job purges them).
CLEARSESSIONS_JOB = "omero-web-clearsessions"
CLEARSESSIONS_CRON_FILE = f"/etc/cron.d/{CLEARSESSIONS_JOB}"
SYSTEMD_DIR = "/etc/systemd/system"


def clearsessions_job_file(service_manager: str) -> str:
    """The file whose presence says the daily job is installed: its timer, else its cron file."""
    return f"{SYSTEMD_DIR}/{CLEARSESSIONS_JOB}.timer" if service_manager == "systemd" else CLEARSESSIONS_CRON_FILE
#: The PATH of the walkthrough's unit, after the venv's bin.
SYSTEM_PATH = "/usr/local/bin:/usr/bin:/bin:/usr/local/sbin:/usr/sbin"

#: systemd.exec(5) sandboxing of omero-web.service: (first systemd release that knows the
#: directive, last release it is written for or None, directive). Checked on Debian 11
#: (systemd 247) and 12 (252) with OMERO.web running (tests/integration/test_web_hardening.py).
#: ``{rw}`` is replaced by the folders OMERO.web writes (``writable_paths``), ``{tmpdir}`` by
#: its TMPDIR assignment (``private_tmpdir``).
HARDENING: tuple[tuple[int, int | None, str], ...] = (
    (187, None, "NoNewPrivileges=yes"),
    (0, None, "PrivateTmp=yes"),
    # OMERO.web's default file sessions live in tempfile.gettempdir(): in the private /tmp
    # every restart would log everyone out; TMPDIR keeps them across restarts, owner-only
    # (in the shared /tmp, as in the walkthrough, any local account can list the session keys)
    (0, None, "Environment={tmpdir}"),
    (209, None, "PrivateDevices=yes"),
    (214, None, "ProtectHome=read-only"),  # the venv or OMERODIR may live under /home
    # what used the home folder: the OMERO CLI's lock files (~/omero/tmp, else a warning with
    # a traceback in every process) go to the private /tmp, Gunicorn's control socket
    # (~/.gunicorn/gunicorn.ctl, Gunicorn >= 25.1) to /run/omero-web
    (214, None, 'Environment="OMERO_TMPDIR=/tmp/omero/tmp"'),
    (211, None, f"RuntimeDirectory={SERVICE}"),
    (211, None, "RuntimeDirectoryMode=0700"),
    (211, None, f'Environment="XDG_RUNTIME_DIR=/run/{SERVICE}"'),
    (214, 231, "ProtectSystem=full"),
    (232, None, "ProtectSystem=strict"),
    (231, None, "ReadWritePaths={rw}"),
    (232, None, "ProtectKernelTunables=yes"),
    (232, None, "ProtectKernelModules=yes"),
    (244, None, "ProtectKernelLogs=yes"),
    (232, None, "ProtectControlGroups=yes"),
    (245, None, "ProtectClock=yes"),
    (242, None, "ProtectHostname=yes"),
    (247, None, "ProtectProc=invisible"),
    (247, None, "ProcSubset=pid"),
    (211, None, "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6"),
    (233, None, "RestrictNamespaces=yes"),
    (231, None, "RestrictRealtime=yes"),
    (242, None, "RestrictSUIDSGID=yes"),
    (235, None, "LockPersonality=yes"),
    (231, None, "MemoryDenyWriteExecute=yes"),
    (232, None, "RemoveIPC=yes"),
    (0, None, "CapabilityBoundingSet="),
    (229, None, "AmbientCapabilities="),
    (209, None, "SystemCallArchitectures=native"),
    # groups exist from 231, @system-service from 238; before that an unknown group would
    # be dropped and leave an allow list of almost nothing: written from 239 (RHEL 8) on
    (239, None, "SystemCallFilter=@system-service"),
    (239, None, "SystemCallFilter=~@privileged @resources"),
    (239, None, "SystemCallErrorNumber=EPERM"),
    # not 0027: ``omero web start`` runs collectstatic into OMERODIR/var/static, which NGINX
    # (another user) serves; new folders would be 0750 and every static file a 403
    (0, None, "UMask=0022"),
)

#: Restart after a crash (OOM killer, ``kill -9`` of the Gunicorn master), unlike the
#: walkthrough's ``Restart=no``; a clean exit (``systemctl stop``, ``omero web stop``) is not
#: restarted. Seconds between the crash and the new start.
RESTART_SEC = 5
#: At most START_LIMIT_BURST starts within START_LIMIT_INTERVAL seconds, then systemd gives up
#: (``start request repeated too quickly``): a broken configuration does not loop forever.
#: Manual starts count too; ``systemctl reset-failed omero-web`` clears the count.
START_LIMIT_INTERVAL, START_LIMIT_BURST = 300, 5
#: (first release, last release or None, section, directive): the [Unit] spelling exists from
#: systemd 229; older releases (CentOS 7: 219) read the [Service] one.
START_LIMITS: tuple[tuple[int, int | None, str, str], ...] = (
    (229, None, "Unit", f"StartLimitIntervalSec={START_LIMIT_INTERVAL}"),
    (229, None, "Unit", f"StartLimitBurst={START_LIMIT_BURST}"),
    (0, 228, "Service", f"StartLimitInterval={START_LIMIT_INTERVAL}"),
    (0, 228, "Service", f"StartLimitBurst={START_LIMIT_BURST}"),
)


def systemd_escape(value: str, quote: bool = True, executable: bool = False) -> str:
    """
    ``value`` as a systemd unit file reads it back unchanged: ``%`` doubled (specifiers);
    with ``quote``, in double quotes with ``\\`` and ``"`` escaped (an Environment=
    assignment, a ReadWritePaths= entry, the executable of ExecStart=, whose ``$`` systemd
    does not expand). Without ``quote`` (User=, PIDFile=: taken verbatim) a value systemd
    would alter (whitespace at an end, a trailing backslash that continues the line) is
    refused, and so is, always, a line break or any control character: a unit value cannot
    hold one. An ``executable`` with a quote or a backslash is refused too: systemd reads
    it back right but will not run it ("Executable name contains special characters").
    Checked against systemd 247, 252 and 257.
    """
    if not isinstance(value, str):
        raise TypeError(f"expected a string, got {type(value).__name__}")
    bad = [c for c in value if ord(c) < 0x20 or ord(c) == 0x7F]
    if bad:
        raise ValueError(f"a systemd unit value cannot hold control characters such as {bad[0]!r}: {value!r}")
    if executable and any(c in value for c in "\"'\\"):
        raise ValueError(f"systemd refuses an executable path with quotes or backslashes: {value!r}")
    escaped = value.replace("%", "%%")
    if not quote:
        if value != value.strip() or value.endswith("\\") or not value:
            raise ValueError(f"not representable as a bare systemd unit value: {value!r}")
        return escaped
    escaped = escaped.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def writable_paths(install: OmeroInstall) -> list[str]:
    """What OMERO.web writes under ProtectSystem=strict: PID file, logs, static files, sessions."""
    return [install.var]


def hardening_directives(systemd_version: int | None, install: OmeroInstall) -> list[str]:
    """The ``HARDENING`` lines the host's systemd knows (all when the version is unknown)."""
    values = {
        "{rw}": " ".join(systemd_escape(path) for path in writable_paths(install)),
        # OMERO.web's TMPDIR (file sessions, upload buffers): owner-only, kept across restarts
        "{tmpdir}": systemd_escape(f"TMPDIR={install.tmpdir}"),
    }
    version = 10**6 if systemd_version is None else systemd_version
    lines = [line for since, until, line in HARDENING if since <= version and (until is None or version <= until)]
    for placeholder, value in values.items():
        lines = [line.replace(placeholder, value) for line in lines]
    return lines


def start_limits(systemd_version: int | None, section: str) -> list[str]:
    """The ``START_LIMITS`` lines of ``section`` the host's systemd knows (the newest when unknown)."""
    version = 10**6 if systemd_version is None else systemd_version
    return [line for since, until, where, line in START_LIMITS
            if where == section and since <= version and (until is None or version <= until)]


def start_arguments(keep_sessions: bool) -> str:
    """
    What ``omero web`` is given to start OMERO.web. ``omero web start`` clears expired sessions
    before it starts Gunicorn (about 1.3 s of every start, measured); with the daily
    clearsessions job on (``omero_web_clearsessions``), the job does it, and the service skips
    it with ``--keep-sessions`` (an option of ``omero web start`` since OMERO 5.1).
    """
    return "start --keep-sessions" if keep_sessions else "start"


def initd_variables(install: OmeroInstall, keep_sessions: bool = False) -> dict:
    """The values of templates/omero-web.init.j2, each quoted for sh (the script quotes
    them again, with printf %q, for the command ``su -c`` parses)."""
    return dict(omero_user=q(install.user), omero=q(install.omero), omerodir=q(install.omerodir), venv=q(install.venv),
                tmpdir=q(install.tmpdir), start=start_arguments(keep_sessions))


def unit_variables(install: OmeroInstall, systemd_version: int | None = None, keep_sessions: bool = False) -> dict:
    """The values of templates/omero-web.service.j2, each escaped for systemd."""
    return dict(
        start=start_arguments(keep_sessions),  # constants
        omero_user=systemd_escape(install.user, quote=False),  # User=
        pid_file=systemd_escape(install.pid_file, quote=False),
        path_environment=systemd_escape(f"PATH={install.bin}:{SYSTEM_PATH}"),
        omerodir_environment=systemd_escape(f"OMERODIR={install.omerodir}"),
        omero=systemd_escape(install.omero, executable=True),  # ExecStart='s; its arguments are constants
        hardening=hardening_directives(systemd_version, install),
        restart_sec=RESTART_SEC,
        unit_start_limits=start_limits(systemd_version, "Unit"),
        service_start_limits=start_limits(systemd_version, "Service"),
    )
