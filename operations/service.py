"""
Walkthrough "Automatically running OMERO.web": the documented ``omero-web.service`` unit
when systemd is PID 1, otherwise the documented init.d script registered with
update-rc.d / chkconfig. Enabled at boot, restarted only when something it runs changed.

The service manager comes from the distro profile (facts: what PID 1 is), never from
pyinfra's ``server.service``, which picks systemd whenever ``systemctl`` exists.

The unit keeps the walkthrough's lines and adds the sandboxing of systemd.exec(5) that
OMERO.web runs under (``HARDENING``, measured with ``systemd-analyze security``, see
docs/security.md): each directive is written only for the systemd releases that know it
(the host's ``systemctl --version``), since an unknown directive is ignored but an unknown
system call group would leave a near-empty allow list. Every value written into the unit
goes through ``systemd_escape``. Unlike the walkthrough's (``Restart=no``), the unit restarts
OMERO.web when it crashes (``Restart=on-failure``), within start-rate limits. The init.d
script has no supervisor: a crashed OMERO.web stays down until restarted.
"""

from __future__ import annotations

import re
from pathlib import Path

from pyinfra import host
from pyinfra.api import FactBase, deploy, operation
from pyinfra.facts.files import FindLinks
from pyinfra.operations import files, server, systemd, sysvinit

from .context import Context, current
from .facts import q
from .upgrade import failure_command
from .uploads import directories_as

TAGS = ("service", "config")  # a configuration change is applied by a restart
TEMPLATES = Path(__file__).resolve().parent.parent / "templates"
SERVICE = "omero-web"
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


class SystemdVersion(FactBase):
    """The systemd release number (``systemctl --version``), or None."""

    requires_command = "systemctl"

    def command(self):
        return "systemctl --version"

    def process(self, output) -> int | None:
        match = re.match(r"systemd (\d+)", output[0]) if output else None
        return int(match.group(1)) if match else None


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


def writable_paths(omerodir: str) -> list[str]:
    """What OMERO.web writes under ProtectSystem=strict: PID file, logs, static files, sessions."""
    return [f"{omerodir}/var"]


def private_tmpdir(omerodir: str) -> str:
    """OMERO.web's TMPDIR (file sessions, upload buffers): owner-only, kept across restarts."""
    return f"{omerodir}/var/tmp"


def hardening_directives(systemd_version: int | None, omerodir: str) -> list[str]:
    """The ``HARDENING`` lines the host's systemd knows (all when the version is unknown)."""
    values = {
        "{rw}": " ".join(systemd_escape(path) for path in writable_paths(omerodir)),
        "{tmpdir}": systemd_escape(f"TMPDIR={private_tmpdir(omerodir)}"),
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


def initd_variables(user: str, omerodir: str, venv: str) -> dict:
    """The values of templates/omero-web.init.j2, each quoted for sh (the script quotes
    them again, with printf %q, for the command ``su -c`` parses)."""
    return dict(omero_user=q(user), omero=q(venv + "/bin/omero"), omerodir=q(omerodir), venv=q(venv))


def unit_variables(user: str, omerodir: str, venv: str, systemd_version: int | None = None) -> dict:
    """The values of templates/omero-web.service.j2, each escaped for systemd."""
    omero = f"{venv}/bin/omero"
    return dict(
        omero_user=systemd_escape(user, quote=False),  # not "user": files.template's file owner
        pid_file=systemd_escape(f"{omerodir}/var/django.pid", quote=False),
        path_environment=systemd_escape(f"PATH={venv}/bin:{SYSTEM_PATH}"),
        omerodir_environment=systemd_escape(f"OMERODIR={omerodir}"),
        omero=systemd_escape(omero, executable=True),  # ExecStart='s; its arguments are constants
        hardening=hardening_directives(systemd_version, omerodir),
        restart_sec=RESTART_SEC,
        unit_start_limits=start_limits(systemd_version, "Unit"),
        service_start_limits=start_limits(systemd_version, "Service"),
    )


def restart_command(service_manager: str, service: str = SERVICE, reset_failed: bool = False) -> str:
    """
    The command restarting a service (OMERO.web by default) with the host's service manager;
    ``reset_failed``: under systemd, clear its start-rate count first (START_LIMITS), so that
    a restart on purpose or a rollback after a crash loop is not refused.
    """
    if service_manager == "systemd":
        restart = f"systemctl restart {q(service)}"
        return f"{{ systemctl reset-failed {q(service)} 2>/dev/null; {restart}; }}" if reset_failed else restart
    return f"/etc/init.d/{service} restart"


@operation()
def initd_enabled(service: str, enable_command: list[str]):
    """
    Register an init.d script for boot unless start links exist.

    + service: script name in /etc/init.d
    + enable_command: the distro's registration command (update-rc.d / chkconfig)
    """
    if host.get_fact(FindLinks, path="/etc", path_match=f"/etc/rc*.d/S*{service}"):
        return
    yield " ".join(q(part) for part in enable_command)
    if enable_command[0] == "chkconfig":
        yield f"chkconfig {q(service)} on"


def ensure_service(ctx: Context, service: str, restart_when=(), reload_when=(), on_restart_failure: str | None = None):
    """Service enabled and running; restarted / reloaded when any given operation changed
    (``on_restart_failure``: shell run when the restart fails, ending the command failing)."""
    handler = f" || {{ {on_restart_failure}; }}" if on_restart_failure else ""
    restart_if = lambda: any(op.did_change() for op in restart_when)  # noqa: E731
    reload_if = lambda: any(op.did_change() for op in reload_when)  # noqa: E731
    if ctx.profile.service_manager == "systemd":
        if restart_when:
            # a restart on purpose clears the start-rate count first (START_LIMITS): only a crash
            # loop, not a deploy after a few manual restarts, makes systemd give up
            server.shell(name=f"Restart {service}", _if=restart_if,
                         commands=[restart_command("systemd", service, reset_failed=True) + handler])
        systemd.service(name=f"{service} enabled and running", service=service, running=True, enabled=True)
        if reload_when:
            systemd.service(name=f"Reload {service}", service=service, reloaded=True, _if=reload_if)
        return
    if ctx.profile.initd_tool == "update-rc.d":
        # 98 02: the walkthrough's start/stop priorities for OMERO.web
        enable = ["update-rc.d", service, "defaults", *(("98", "02") if service == SERVICE else ())]
    else:
        enable = ["chkconfig", "--add", service]
    initd_enabled(name=f"{service} enabled at boot", service=service, enable_command=enable)
    if restart_when and handler:
        server.shell(name=f"Restart {service}", _if=restart_if, commands=[f"/etc/init.d/{service} restart{handler}"])
    elif restart_when:
        sysvinit.service(name=f"Restart {service}", service=service, restarted=True, _if=restart_if)
    sysvinit.service(name=f"{service} running", service=service, running=True)
    if reload_when:
        sysvinit.service(name=f"Reload {service}", service=service, reloaded=True, _if=reload_if)


@deploy("OMERO.web service")
def service(ctx: Context | None = None, app_changes: list | None = None) -> list:
    """The unit or init.d script, enabled, running, restarted when ``app_changes`` changed."""
    ctx = ctx or current()
    if not ctx.selected(*TAGS):
        return []
    settings, profile = ctx.settings, ctx.profile
    if profile.service_manager == "systemd":
        # ReadWritePaths= must exist (else the start fails with 226/NAMESPACE) and, under
        # ProtectSystem=strict, the service cannot make them: made here, as the account.
        directories_as(name="Create OMERO.web's writable folders", user=settings.user,
                       paths={**{path: "755" for path in writable_paths(settings.omerodir)},
                              private_tmpdir(settings.omerodir): "700"})
        variables = unit_variables(settings.user, settings.omerodir, settings.venv, host.get_fact(SystemdVersion))
        script = files.template(
            name="Install the omero-web systemd unit",
            src=str(TEMPLATES / "omero-web.service.j2"),
            dest=f"/etc/systemd/system/{SERVICE}.service",
            mode="644",
            **variables,
        )
        systemd.daemon_reload(name="Reload systemd units", _if=script.did_change)
    else:
        script = files.template(
            name="Install the omero-web init.d script",
            src=str(TEMPLATES / "omero-web.init.j2"),
            dest=f"/etc/init.d/{SERVICE}",
            mode="755",
            **initd_variables(settings.user, settings.omerodir, settings.venv),
        )
    # after an upgrade in this run, OMERO.web not restarting is rolled back at once
    rollback = failure_command(settings.venv, settings.omerodir, settings.user,
                               restart_command(profile.service_manager, reset_failed=True),
                               "OMERO.web did not restart after the upgrade (see above).")
    ensure_service(ctx, SERVICE, restart_when=[script, *(app_changes or [])], on_restart_failure=rollback)
    return [script]
