"""
Walkthrough "Installing prerequisites": the omero-web user, OMERODIR, OS packages through
the package manager the facts select, and extra CA certificates for the trust store.
"""

from __future__ import annotations

import hashlib
import os
import re

from pyinfra import host
from pyinfra.api import deploy, operation
from pyinfra.facts.files import FindFiles
from pyinfra.operations import files, server

from host.context import Context, current
from host.facts import q
from host.ownership import InstallProblems
from host.packages import install_packages_epel_first
from host.snapshot import account_absent, account_matches, directory_matches, listed, want
from host.uploads import directories_as, root_file

TAGS = ("prerequisites",)
CA_PREFIX = "omeroweb-deploy-"
#: The comment (GECOS) of the accounts this deploy creates: an existing account without it is
#: never modified (unless it already owns OMERODIR: an OMERO.web install made by hand).
ACCOUNT_MARKER = "OMERO.web (omeroweb-deploy)"
_PEM = re.compile(r"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", re.S)


def split_certificates(paths) -> dict[str, str]:
    """PEM certificates from local files, keyed by the file name they get on the host."""
    certs = {}
    for path in paths:
        with open(os.path.expanduser(path)) as handle:
            found = _PEM.findall(handle.read())
        if not found:
            raise ValueError(f"omero_web_extra_ca_certificates: {path} holds no PEM certificate")
        for pem in found:
            digest = hashlib.sha256(pem.encode()).hexdigest()[:16]
            certs[f"{CA_PREFIX}{digest}.crt"] = pem + "\n"
    return certs


@operation()
def stale_ca_certificates(ca_dir: str, keep: list[str]):
    """
    Remove CA files this deploy installed earlier that are no longer in the data.

    + ca_dir: trust store source folder
    + keep: file names to keep

    **Examples:**

    .. code:: python

        stale_ca_certificates(
            name="Remove extra CA certificates no longer listed",
            ca_dir="/usr/local/share/ca-certificates",
            keep=["omeroweb-deploy-3f1c2a9b7d4e6f08.crt"],
        )
    """
    for path in host.get_fact(FindFiles, path=ca_dir, maxdepth=1, fname=f"{CA_PREFIX}*.crt"):
        if os.path.basename(path) not in keep:
            yield f"rm -f {q(path)}"


@operation()
def safe_install_paths(user: str, omerodir: str, folders: list[str], marker: str = ACCOUNT_MARKER):
    """
    Fail, before anything is changed, when taking these folders or this account could be
    turned against the host: a folder above them that another account could write to, an
    existing venv another account could change (root runs its python and pip), an OMERODIR
    that is a link or another account's, an existing account this deploy did not create
    (root, www-data, a person's account).

    + user: the account that will own OMERODIR and run OMERO.web
    + omerodir: OMERODIR
    + folders: every folder the deploy installs into (venv, OMERODIR)
    + marker: the comment of accounts this deploy created

    **Examples:**

    .. code:: python

        safe_install_paths(
            name="Install folders and account are safe to take",
            user="omero-web",
            omerodir="/opt/omero/web/omero-web",
            folders=["/opt/omero/web/venv3", "/opt/omero/web/omero-web"],
        )
    """
    problems = host.get_fact(InstallProblems, user=user, marker=marker, omerodir=omerodir, folders=folders)
    if problems:
        message = "omeroweb-deploy: refusing to install:\n" + "\n".join(f"  - {p}" for p in problems)
        yield f"echo {q(message)} >&2; exit 1"


@deploy("OMERO.web prerequisites")
def prerequisites(ctx: Context | None = None) -> list:
    """The omero-web user and OMERODIR, OS packages, extra CA certificates. Returns change markers."""
    ctx = ctx or current()
    settings, profile = ctx.settings, ctx.profile
    lock_timeout = settings.package_lock_timeout
    changes = []

    if ctx.selected(*TAGS):
        safe_install_paths(name="Install folders and account are safe to take", user=settings.user,
                           omerodir=settings.omerodir, folders=[settings.venv, settings.omerodir])

    if ctx.selected(*TAGS, "packages"):
        changes.append(install_packages_epel_first(profile.package_manager,
                                                    [*profile.packages, *ctx.features.packages], lock_timeout))

    if ctx.selected(*TAGS, "ca"):
        certs = split_certificates(settings.extra_ca_certificates)
        dests = {f"{profile.ca_dir}/{filename}": pem for filename, pem in certs.items()}
        want(files=dests, globs=[f"{q(profile.ca_dir)}/{CA_PREFIX}*.crt"])

        puts = [root_file(f"Install extra CA certificate {os.path.basename(dest)}", dest, pem, "644")
                for dest, pem in sorted(dests.items())]
        stale = stale_ca_certificates(
            name="Remove extra CA certificates no longer listed", ca_dir=profile.ca_dir, keep=list(certs),
            _if=lambda: any(os.path.basename(p) not in certs for p in listed()),
        )
        server.shell(
            name="Update the CA trust store",
            commands=[profile.ca_update],
            _if=lambda: any(op.did_change() for op in [*puts, stale]),
        )

    if ctx.selected(*TAGS):
        home = f"/home/{settings.user}"
        want(account=settings.user, files=[home, settings.omerodir])
        # A new account in one command (server.user reads five facts first: every account's
        # lastlog, the groups, the OS twice, where useradd is); the same useradd server.user runs.
        created = server.shell(
            name=f"Create the {settings.user} system user",
            commands=[f"useradd -d {q(home)} -s /bin/bash -r -c {q(ACCOUNT_MARKER)} -m {q(settings.user)}"],
            _if=account_absent,
        )
        # an existing account of this deploy's, as server.user leaves it (safe_install_paths
        # refuses anybody else's); one made just now by that useradd already is
        server.user(
            name=f"The {settings.user} system user as wanted",
            user=settings.user,
            system=True,
            home=home,
            create_home=True,
            shell="/bin/bash",
            comment=ACCOUNT_MARKER,
            _if=lambda: not created.did_change() and not account_matches(settings.user, home, "/bin/bash",
                                                                         ACCOUNT_MARKER),
        )
        # OMERODIR's parent is root's (checked above): made by root. Below it, the folders are
        # the OMERO.web user's: made by that user (a link planted there is refused, not followed).
        files.directory(name=f"Create {settings.omerodir}", path=settings.omerodir, user=settings.user,
                        group=settings.user, mode="755",
                        _if=lambda: not directory_matches(settings.omerodir, settings.user, settings.user, "755"))
        directories_as(
            name=f"Create {settings.omerodir}/etc, etc/grid and the private staging folder",
            user=settings.user,
            paths={
                f"{settings.omerodir}/etc": "755",
                # etc/grid/config.xml holds every value, secrets included, and omero rewrites it
                # with the default umask (0644) each time it opens it: the folder keeps others out.
                f"{settings.omerodir}/etc/grid": "700",
                ctx.install.staging: "700",
            },
        )
    return changes
