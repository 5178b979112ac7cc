"""
Walkthrough "Automatically running OMERO.web": the documented ``omero-web.service`` unit
when systemd is PID 1, otherwise the documented init.d script registered with
update-rc.d / chkconfig. Enabled at boot, restarted only when something it runs changed.

The service manager comes from the distro profile (facts: what PID 1 is), never from
pyinfra's ``server.service``, which picks systemd whenever ``systemctl`` exists.

The unit keeps the walkthrough's lines and adds a sandbox and a restart policy
(``model/units.py``, for the host's ``systemctl --version``). The init.d script has no
supervisor: a crashed OMERO.web stays down until restarted.
"""

from __future__ import annotations

from pyinfra import host
from pyinfra.api import deploy

from host.context import Context, current
from host.facts import PathExists
from host.health import site_url, wait_command
from host.service_manager import ensure_service, restart_command
from model.units import (SERVICE, TEMPLATES, clearsessions_job_file, initd_variables, unit_variables,
                         writable_paths)
from host.upgrade import failure_command
from host.uploads import directories_as, root_template

TAGS = ("service", "config")  # a configuration change is applied by a restart
#: The maintenance section's tags: its clearsessions job decides whether sessions are kept
SESSIONS_TAGS = ("sessions",)


def keeps_sessions(ctx: Context) -> bool:
    """Whether OMERO.web starts with ``--keep-sessions``: only where the daily clearsessions job
    purges expired sessions, as the data makes it when this run installs it (sessions
    selected), else as the host has it (a run that leaves the job alone)."""
    if ctx.selected(*SESSIONS_TAGS):
        return ctx.settings.clearsessions
    return bool(host.get_fact(PathExists, paths=[clearsessions_job_file(ctx.profile.service_manager)]))


@deploy("OMERO.web service")
def service(ctx: Context | None = None, app_changes: list | None = None) -> list:
    """The unit or init.d script, enabled, running, restarted when ``app_changes`` changed."""
    ctx = ctx or current()
    # omero_web_clearsessions sets the start command too (keeps_sessions): a run for the
    # sessions tag brings the unit along; skipping that tag leaves this section in
    if not ctx.selected(*TAGS, also=SESSIONS_TAGS):
        return []
    settings, profile = ctx.settings, ctx.profile
    keep_sessions = keeps_sessions(ctx)
    # ReadWritePaths= must exist (else the start fails with 226/NAMESPACE) and, under
    # ProtectSystem=strict, the service cannot make them: made here, as the account. The
    # owner-only TMPDIR (file sessions, named after their keys) for the init.d script too.
    directories_as(name="Create OMERO.web's writable folders", user=settings.user,
                   paths={**{path: "755" for path in writable_paths(ctx.install)}, ctx.install.tmpdir: "700"})
    if profile.service_manager == "systemd":
        variables = unit_variables(ctx.install, ctx.profile.systemd_version, keep_sessions=keep_sessions)
        script = root_template(
            name="Install the omero-web systemd unit",
            src=str(TEMPLATES / "omero-web.service.j2"),
            dest=f"/etc/systemd/system/{SERVICE}.service",
            mode="644",
            **variables,
        )
    else:
        script = root_template(
            name="Install the omero-web init.d script",
            src=str(TEMPLATES / "omero-web.init.j2"),
            dest=f"/etc/init.d/{SERVICE}",
            mode="755",
            **initd_variables(ctx.install, keep_sessions=keep_sessions),
        )
    # after an upgrade in this run, OMERO.web not restarting is rolled back at once
    rollback = failure_command(ctx.install, restart_command(profile.service_manager, reset_failed=True),
                               "OMERO.web did not restart after the upgrade (see above).")
    # behind a balancer, one node at a time, each serving again before the next restarts: the
    # balancer sends the requests of the one restarting to the others. It skips a node that
    # failed for fail_timeout seconds: the next node stops only once this one is back in its
    # rotation (else, both skipped, the balancer would have no node to send a request to)
    rolling = ctx.tier.balanced
    back = (wait_command(site_url(settings) + "/webclient/login/", settings.healthcheck_timeout, profile.python)
            + f" && sleep {int(ctx.tier.fail_timeout) + 1}")
    ensure_service(profile, SERVICE, restart_when=[script, *(app_changes or [])], on_restart_failure=rollback,
                   units_changed=[script], checked=ctx.install.trusted, serial=rolling,
                   after_restart=back if rolling else None)
    return [script]
