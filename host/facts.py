"""
Custom facts. pyinfra 3 re-reads facts each time they are asked for, so an operation that
reads one inside its generator sees the host as it is when the operation executes (after
the operations before it), not as it was when the deploy was planned.

No fact prints a secret: configuration values are reported as hashes (and in clear only
for keys that are not secret), and commands never carry secret values.

Every fact is in this one module: their host-side scripts share the quoting, the secret rule,
the config reader and the root-only venv check (``trusted_venv``).
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import re
import shlex
from typing import Any, Optional

from pyinfra.api import FactBase

from model.distro_profile import HostFacts
from model.omero_install import HOST_SECRET_TOKEN, OmeroInstall, host_secret_line
from model.secrecy import SECRET_NAME
from host.ownership import as_user, trusted_venv

q = shlex.quote


class HostInventory(FactBase[HostFacts]):
    """
    Everything the distro profile needs, in one round trip.

    + pythons: interpreters whose ``major.minor`` is read when they exist and run

    .. code:: python

        HostFacts(
            os_release={"ID": "debian", "VERSION_ID": "12", "PRETTY_NAME": "Debian GNU/Linux 12 (bookworm)"},
            arch="x86_64",
            pid1="systemd",
            cpus=4,
            binaries=frozenset({"apt-get", "systemctl", "update-rc.d"}),
            selinux=None,
            python_versions={"/usr/bin/python3": (3, 11)},
            systemd_version=252,
            openssl_version=(3, 0),
        )
    """

    def command(self, pythons=()):
        probes = " ".join(q(p) for p in pythons)
        return (
            "echo '[os-release]'; cat /etc/os-release 2>/dev/null; echo '[facts]'; "
            'echo "arch=$(uname -m)"; echo "pid1=$(cat /proc/1/comm 2>/dev/null)"; '
            'echo "cpus=$(nproc 2>/dev/null || getconf _NPROCESSORS_ONLN)"; '
            "for b in apt-get dnf yum systemctl update-rc.d chkconfig getenforce semanage; do "
            'command -v "$b" >/dev/null 2>&1 && echo "binary=$b"; done; '
            'command -v getenforce >/dev/null 2>&1 && echo "selinux=$(getenforce)"; '
            # the release number decides the unit's sandbox (units.py): read here, once
            'command -v systemctl >/dev/null 2>&1 && echo "systemd=$(systemctl --version 2>/dev/null | head -n 1)"; '
            # the OpenSSL NGINX uses decides the TLS curves (features.https): NGINX's own
            # report when it is installed, else the libssl libraries present
            "command -v nginx >/dev/null 2>&1 && echo \"nginx=$(nginx -V 2>&1 | grep 'built with')\"; "
            "for f in /lib*/libssl.so.* /usr/lib*/libssl.so.* /lib/*/libssl.so.* /usr/lib/*/libssl.so.*; do "
            '[ -e "$f" ] && echo "libssl=${f##*/libssl.so.}"; done; '
            f"for p in {probes}; do [ -x \"$p\" ] && "
            "echo \"python=$p $(\"$p\" -c 'import sys; print(\"%d.%d\" % sys.version_info[:2])' 2>/dev/null)\"; "
            "done; true"
        )

    def process(self, output) -> HostFacts:
        os_release: dict[str, str] = {}
        values: dict[str, Any] = {"binaries": set(), "pythons": {}}
        section = None
        for line in output:
            if line in ("[os-release]", "[facts]"):
                section = line
                continue
            if "=" not in line:
                continue
            key, _, value = line.partition("=")
            if section == "[os-release]":
                os_release[key] = value.strip().strip('"')
            elif key == "binary":
                values["binaries"].add(value)
            elif key == "libssl":
                values.setdefault("libssl", set()).add(value)
            elif key == "python":
                path, _, version = value.partition(" ")
                if version.count(".") == 1:
                    values["pythons"][path] = tuple(int(v) for v in version.split("."))
            else:
                values[key] = value
        return HostFacts(
            os_release=os_release,
            arch=values.get("arch", ""),
            pid1=values.get("pid1", ""),
            cpus=int(values.get("cpus") or 1),
            binaries=frozenset(values["binaries"]),
            selinux=values.get("selinux"),
            python_versions=values["pythons"],
            systemd_version=_systemd_release(values.get("systemd", "")),
            openssl_version=openssl_release(values.get("nginx", ""), values.get("libssl", ())),
        )


def _systemd_release(line: str) -> Optional[int]:
    """``systemd 252 (252.33-1~deb12u1)`` -> 252 (the first line of ``systemctl --version``)."""
    match = re.match(r"systemd (\d+)", line.strip())
    return int(match.group(1)) if match else None


def openssl_release(nginx_built_with: str, libssl_sonames=()) -> Optional[tuple[int, int]]:
    """
    The OpenSSL release NGINX uses, as (major, minor): from ``nginx -V``'s ``built with OpenSSL
    1.0.2k-fips ...`` line (its ``running with`` release when it says one), else the newest of
    the libssl sonames found (``3``, ``1.1``, ``1.0.2k``; ``10`` is RHEL's soname for 1.0.x),
    else None (NGINX and libssl not installed yet).
    """
    found = re.findall(r"OpenSSL (\d+)\.(\d+)", nginx_built_with)
    if found:
        return int(found[-1][0]), int(found[-1][1])
    releases = []
    for soname in libssl_sonames:
        if soname == "10":
            releases.append((1, 0))
        elif match := re.match(r"(\d+)(?:\.(\d+))?", soname):
            releases.append((int(match.group(1)), int(match.group(2) or 0)))
    return max(releases, default=None)


_CAT_OR_NULL = 'cat -- "$1" 2>/dev/null || echo null'

# Run by the venv's python: prints "@ice VERSION" when IcePy imports, then per requirement
# (argv) the requirement when the venv does not satisfy it, else "=name==installed version".
_VENV_PROBE = r"""
import os, re, sys
try:
    import Ice
    print("@ice %s" % Ice.stringVersion())
except Exception:
    pass
try:
    from packaging.requirements import Requirement
except ImportError:
    from pip._vendor.packaging.requirements import Requirement
try:
    from importlib import metadata
except ImportError:  # Python 3.6 and 3.7: read the installed distributions' metadata files
    metadata = None

def key(name):
    return re.sub(r"[-_.]+", "-", name).lower()

def scanned():
    found = {}
    for entry in sys.path:
        try:
            names = os.listdir(entry or ".")
        except OSError:
            continue
        for name in names:
            path = os.path.join(entry, name)
            if name.endswith(".dist-info"):
                path = os.path.join(path, "METADATA")
            elif name.endswith(".egg-info") and os.path.isdir(path):
                path = os.path.join(path, "PKG-INFO")
            elif not name.endswith(".egg-info"):
                continue
            fields = {}
            try:
                with open(path, encoding="utf-8", errors="replace") as handle:
                    for line in handle:
                        if not line.strip():
                            break
                        field, _, value = line.partition(":")
                        fields.setdefault(field, value.strip())
            except OSError:
                continue
            if "Name" in fields and "Version" in fields:
                found.setdefault(key(fields["Name"]), fields["Version"])  # the first on sys.path
    return found

if metadata is None:
    versions = scanned()
    def version(name):
        return versions.get(key(name))
else:
    def version(name):
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            return None

for spec in sys.argv[1:]:
    req = Requirement(spec)
    installed = version(req.name)
    if installed is None or not req.specifier.contains(installed, prereleases=True):
        print(spec)
    else:
        print("=%s==%s" % (req.name, installed))
"""


class VenvReport(FactBase[dict[str, Any]]):
    """
    What the venv, Ice, OMERO.web and upgrade steps check of the virtualenv, in one command:
    ``{"state": "ready" (bin/python runs) | "absent" | "empty" | "partial" (this deploy was
    creating it: its marker is there) | "link" | "foreign" (anything else), "ice": the IcePy
    version importable or None, "unsatisfied": the requirements it does not satisfy (all of
    them unless it is ready and root's throughout), "pins": name==version of the others}``.
    The venv's python runs (as root) only in a venv only root can change.

    + install: the OMERO.web install (its venv, its python, the marker of a venv being created)
    + specs: the pip requirements checked

    .. code:: python

        {
            "state": "ready",
            "ice": "3.6.5",
            "unsatisfied": ["omero-web>=5.29.0"],
            "pins": ["whitenoise==6.9.0"],
        }
    """

    default = staticmethod(lambda: {"state": "absent", "ice": None, "unsatisfied": [], "pins": []})

    def command(self, install: OmeroInstall, specs=()):
        p, python, args = q(install.venv), q(install.python), " ".join(q(s) for s in specs)
        return (f"if [ -L {p} ]; then s=link; elif [ -x {python} ]; then s=ready; elif [ ! -e {p} ]; then s=absent; "
                f"elif [ -e {q(install.creating_marker)} ]; then s=partial; "
                f"elif [ -d {p} ] && [ -z \"$(ls -A {p})\" ]; then s=empty; else s=foreign; fi; echo \"@state $s\"; "
                f"if [ \"$s\" = ready ] && {trusted_venv(install.venv)}; then {python} -c {q(_VENV_PROBE)} {args}; "
                f"else printf '%s\\n' {args}; fi")

    def process(self, output) -> dict:
        report = {"state": "absent", "ice": None, "unsatisfied": [], "pins": []}
        for line in (line.strip() for line in output):
            if line.startswith("@state "):
                report["state"] = line[len("@state "):]
            elif line.startswith("@ice "):
                report["ice"] = line[len("@ice "):]
            elif line.startswith("="):
                report["pins"].append(line[1:])
            elif line:
                report["unsatisfied"].append(line)
        return report


def site_inputs(install: OmeroInstall, generate: str) -> str:
    """
    Shell command printing the sha256 of what the NGINX site ``generate`` prints depends on:
    the command itself (the data's properties, port, server name, OMERODIR, TLS), the
    generator's code and templates in the venv (``omero/plugins/web.py``, ``omeroweb/settings.py``,
    ``omeroweb/templates/nginx*.conf.template``) and every installed distribution's version.
    Run as root in a trusted (root-only) venv.
    """
    packages = f"{q(install.venv)}/lib/python3*/site-packages"
    code = " ".join(f"{packages}/{path}" for path in (
        "omero/plugins/web.py", "omeroweb/settings.py", "omeroweb/templates/nginx*.conf.template"))
    command = hashlib.sha256(generate.encode()).hexdigest()
    return (f"{{ echo {command}; cat {code} 2>/dev/null; ls -d {packages}/*.dist-info; }} "
            "| sha256sum | cut -d' ' -f1")


_SHA256 = re.compile(r"[0-9a-f]{64}")


class NginxSite(FactBase[dict[str, Any]]):
    """
    What decides whether the OMERO.web NGINX site must be (re)generated, as sha256 hashes:
    ``installed`` (the site file), ``inputs`` (``site_inputs``: None while OMERO.web is missing
    or its venv is not root's alone) and ``generated`` (what ``generate`` prints now). The
    generator (``omero web config nginx``, about a second) runs only when the site is installed
    and the root-only ``record`` has no line "INPUTS SITE" for these inputs and this site
    (``recorded``: it has, ``generated`` is then the installed hash; the generator's output
    depends on its inputs only, so every line stays true).

    + install: the OMERO.web install (its venv holds the generator)
    + site: the NGINX site file
    + generate: shell command printing the site
    + record: root-only record of the inputs each installed site was generated from

    .. code:: python

        {
            "installed": "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824",
            "inputs": "b5bea41b6c623f7c09f1bf24dcae58ebab3c0cdd90ad966bc43a45b44867e12b",
            "generated": "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824",
            "recorded": True,
        }
    """

    default = staticmethod(lambda: {"generated": None, "installed": None, "inputs": None, "recorded": False})

    def command(self, install: OmeroInstall, site: str, generate: str, record: str):
        return (
            f'installed=; [ -f {q(site)} ] && installed=$(sha256sum < {q(site)} | cut -d" " -f1) && echo "installed=$installed"; '
            f"if [ -x {q(install.omero)} ] && {trusted_venv(install.venv)}; then "
            f"inputs=$({site_inputs(install, generate)}) && echo \"inputs=$inputs\"; "
            f'if [ -n "$installed" ] && grep -qxF -- "$inputs $installed" {q(record)} 2>/dev/null; then '
            'echo "recorded=yes"; echo "generated=$installed"; '
            f'elif [ -n "$installed" ]; then echo "generated=$({generate} | sha256sum | cut -d" " -f1)"; fi; '
            "fi; true"
        )

    def process(self, output) -> dict:
        result = self.default()
        for line in output:
            key, _, value = line.partition("=")
            if key == "recorded":
                result["recorded"] = value == "yes"
            elif key in result and _SHA256.fullmatch(value):  # host output: hashes only
                result[key] = value
        return result


class ResolvedAddresses(FactBase[dict[str, list[str]]]):
    """
    The addresses each name resolves to on the host (``getent ahosts``: DNS, /etc/hosts); an IP
    address resolves to itself. A name that does not resolve maps to an empty list.

    + names: host names or addresses

    .. code:: python

        {"balancer1.example.org": ["192.0.2.10"], "192.0.2.11": ["192.0.2.11"]}
    """

    default = dict

    def command(self, names=()):
        return " ; ".join(f"getent ahosts {q(n)} | awk -v n={q(n)} '{{print n, $1}}'" for n in names) + " ; true"

    def process(self, output):
        found: dict[str, list[str]] = {}
        for line in output:
            name, _, address = line.strip().partition(" ")
            found.setdefault(name, [])
            try:  # what the host (and its DNS) answers lands in NGINX's and Redis's files: IP addresses only
                address = str(ipaddress.ip_address(address))
            except ValueError:
                continue
            if address not in found[name]:
                found[name].append(address)
        return found


class PathExists(FactBase[list[str]]):
    """
    Which of the given paths exist.

    + paths: the paths looked for

    .. code:: python

        ["/opt/omero/web/venv3/bin/omero"]
    """

    default = list

    def command(self, paths=()):
        return "for p in " + " ".join(q(p) for p in paths) + '; do [ -e "$p" ] && echo "$p"; done; true'

    def process(self, output) -> list[str]:
        return list(output)


class TlsCertificate(FactBase[dict[str, Any]]):
    """
    A certificate and its key as ``openssl`` reads them: whether both files exist, the
    certificate self-signed (its signature checked with its own key: a CA's certificate
    naming the same subject is not), its lifetime in days (notAfter - notBefore), and
    whether it ends within ``seconds`` (``-checkend``, or unreadable).

    + certificate: the certificate's path
    + key: the private key's path
    + seconds: how soon an end counts as ending

    .. code:: python

        {
            "certificate": True,
            "key": True,
            "self_signed": True,
            "lifetime_days": 365.0,
            "ending": False,
        }
    """

    def command(self, certificate: str, key: str, seconds: int):
        c = q(certificate)
        return (
            f"[ -f {q(key)} ] && echo key=yes; [ -f {c} ] || exit 0; echo certificate=yes; "
            f"openssl x509 -in {c} -noout -startdate -enddate 2>/dev/null; "
            f"openssl verify -no_check_time -check_ss_sig -CAfile {c} {c} >/dev/null 2>&1 && echo self_signed=yes; "
            f"openssl x509 -in {c} -noout -checkend {int(seconds)} >/dev/null 2>&1 && echo ending=no || echo ending=yes"
        )

    def default(self) -> dict:
        return self.process([])

    def process(self, output) -> dict:
        values = dict((k.strip(), v.strip()) for k, _, v in (line.partition("=") for line in output))
        lifetime = None
        if values.get("notBefore") and values.get("notAfter"):
            start, end = (_certificate_time(values[k]) for k in ("notBefore", "notAfter"))
            lifetime = (end - start).total_seconds() / 86400
        return {
            "certificate": values.get("certificate") == "yes",
            "key": values.get("key") == "yes",
            "self_signed": values.get("self_signed") == "yes",
            "lifetime_days": lifetime,
            "ending": values.get("ending") != "no",
        }


def _certificate_time(text: str):
    """``Dec  7 16:51:53 2026 GMT`` (``openssl x509 -startdate``) as a datetime."""
    from datetime import datetime

    return datetime.strptime(" ".join(text.split()), "%b %d %H:%M:%S %Y %Z")


_TAIL = 'tail -n 20 -- "$1"'


#: Polls a URL (argv: URL, timeout in seconds) until it answers with OMERO.web's login page:
#: prints "ok", or "FAILED: GET <url>: <the last error>".
LOGIN_PROBE = (
    "import ssl, sys, time, urllib.request\n"
    "url, deadline, last = sys.argv[1], time.time() + int(sys.argv[2]), ''\n"
    "while time.time() < deadline:\n"
    "    try:\n"
    # local check of the host's own site: its certificate may be self-signed
    "        ctx = ssl._create_unverified_context()\n"
    "        body = urllib.request.urlopen(url, timeout=10, context=ctx).read().decode('utf-8', 'replace')\n"
    "        if 'OMERO.web - Login' in body:\n"
    "            print('ok'); sys.exit(0)\n"
    "        last = 'answered without the login page: ' + body[:200].replace(chr(10), ' ')\n"
    "    except Exception as exc:\n"
    "        last = repr(exc)\n"
    "    time.sleep(1)\n"
    "print('FAILED: GET %s: %s' % (url, last))\n"
)


class LoginPage(FactBase[str]):
    """
    Polls the login page through NGINX until it answers or the timeout passes: ``"ok"``, or
    the failure with the tails of the OMERO.web and NGINX logs.

    + url: URL fetched on the host
    + timeout: seconds to wait
    + python: the host's own interpreter that fetches the URL
    + logs: (log file, account that reads it or "" for root) pairs whose tails are shown on failure

    .. code:: python

        "ok"
        # or, failing (then, one per line, "--- LOG" and the log's last 20 lines):
        "FAILED: GET http://127.0.0.1:80/webclient/login/: URLError(ConnectionRefusedError(111, ...))"
    """

    default = str

    def command(self, url: str, timeout: int, python: str, logs=()):
        probe = LOGIN_PROBE
        # (log, user): a log in a folder an account owns is read as that account, never as root
        tails = "; ".join(
            f"echo {q('--- ' + log)}; " + (as_user(user, _TAIL, log) if user else f"tail -n 20 -- {q(log)}") + " 2>&1"
            for log, user in logs
        ) or ":"
        return (
            f"out=$({q(python)} -c {q(probe)} {q(url)} {int(timeout)} 2>&1); echo \"$out\"; "
            f'case "$out" in ok) ;; *) {tails};; esac; true'
        )

    def process(self, output) -> str:
        return "\n".join(output)


class CommandReport(FactBase[list[str]]):
    """
    stdout and stderr of a read-only command, then ``[exit status N]``; never fails.

    + command: the shell command (read-only)

    .. code:: python

        [
            "Traceback (most recent call last):",
            '  File "<string>", line 1, in <module>',
            "ModuleNotFoundError: No module named 'omeroweb'",
            "[exit status 1]",
        ]
    """

    default = list

    def command(self, command: str):
        return f'{{ {command} ; }} 2>&1; echo "[exit status $?]"'

    def process(self, output) -> list[str]:
        return list(output)


# Run as the install's account by the venv's python (-I: nothing from the account's HOME or
# environment): reads config.xml (argv[1]) as `omero config get` shows it (omero/config.py,
# ConfigXml: the profile named by "omero.config.profile" in "__ACTIVE__", else "default";
# "omero.config.*" left out) without starting the CLI (0.6 s). argv[2], JSON: "name" (the
# secret-name regex), "declared" (keys declared secret) and "clear" (null: every value in clear
# but the secrets'; a list: only those keys' values, the others as a hash). Standard input:
# line 1, JSON {key: wanted value} for the secret keys (from the control machine, never on a
# command line); line 2, the host's own secret (HOST_SECRET_TOKEN in a wanted value stands for
# it); then the install's defaults as "key=value" lines (`omero config parse --defaults
# --no-web`, for an OMERO.server). A secret's value leaves the host neither in clear nor as a
# digest (a digest of a weak password can be guessed offline from a saved log): it is compared
# here with the wanted value, {"same": true|false}. Prints {"config": {key: {"sha256", "value"}
# or {"same"}}, "defaults": {key: clear default}}.
CONFIG_READER = r"""# omeroweb-deploy: config.xml reader
import hashlib, json, os, re, sys
from xml.etree.ElementTree import parse
path, rule = sys.argv[1], json.loads(sys.argv[2])
name, declared, clear = re.compile(rule["name"], re.I), set(rule["declared"]), rule["clear"]
secret = lambda key: key in declared or bool(name.search(key))
shown = (lambda key: not secret(key)) if clear is None else (lambda key: key in clear and not secret(key))
lines = sys.stdin.read().split("\n")
wanted = json.loads(lines[0]) if lines[0].strip() else {}
host_secret = lines[1] if len(lines) > 1 else ""
resolve = lambda value: value.replace(@TOKEN@, host_secret) if host_secret else value
def values(element):
    return {p.get("name"): p.get("value", "") for p in element.findall("./property") if "name" in p.attrib}
stored = {}
if os.path.isfile(path) and os.path.getsize(path):
    profiles = {p.get("id"): p for p in parse(path).getroot().findall("./properties")}
    active = profiles.get("__ACTIVE__")
    profile = values(active).get("omero.config.profile", "default") if active is not None else "default"
    if profile in profiles:
        stored = values(profiles[profile])
config = {}
for key, value in stored.items():
    if key in ("omero.config.version", "omero.config.profile"):
        continue
    if secret(key) or key in wanted:
        config[key] = {"same": key in wanted and resolve(wanted[key]) == value}
    else:
        config[key] = {"sha256": hashlib.sha256(value.encode()).hexdigest(), "value": value if shown(key) else None}
defaults = {}
for line in lines[2:]:
    key, sep, value = line.partition("=")
    if sep and shown(key):
        defaults[key] = value
print(json.dumps({"config": config, "defaults": defaults}))
"""
CONFIG_READER = CONFIG_READER.replace("@TOKEN@", repr(HOST_SECRET_TOKEN))


UNTRUSTED = "@@untrusted-venv"


class OmeroConfig(FactBase[Optional[dict[str, Any]]]):
    """
    The configuration of an OMERO install (OMERO.web's, or an OMERO.server's) and the deploy's
    record of what it manages there: ``{"config": {key: {"sha256", "value"} or {"same"}},
    "defaults": {...}, "managed": the record's content or None}``, plus ``"managed_error"`` when
    the record is cut short, empty or not JSON. Secrets (names matching the secret rule, and
    ``secret_keys``) are compared on the host with the wanted values the caller sends on
    standard input (``host.get_fact(..., _stdin=wanted_secrets(...))``): ``{"same": bool}``, no
    value, no digest. With ``clear_keys`` (OMERO.server) only those values and their defaults are
    in clear, the others hashed. ``host_secret_file``: where the host's own secret is
    (``HOST_SECRET_TOKEN``). ``None`` when ``VENV/bin/omero`` is missing; ``{"untrusted": path}``
    when the venv holds ``path``, which another account owns or can change. config.xml is read
    by ``CONFIG_READER`` as the install's account.

    + install: the OMERO install (OMERO.web's, or an OMERO.server's)
    + record: the deploy's record of what it manages there (in OMERODIR)
    + secret_keys: keys whose values are secret, besides those the secret rule names
    + clear_keys: None: every value in clear but the secrets'; else only these keys' (and their defaults)
    + host_secret_file: the root-only file holding the host's own secret

    .. code:: python

        {
            "config": {
                "omero.web.public.enabled": {
                    "sha256": "b5bea41b6c623f7c09f1bf24dcae58ebab3c0cdd90ad966bc43a45b44867e12b",
                    "value": "true",
                },
                "omero.web.public.password": {"same": True},
            },
            "defaults": {},
            "managed": {"set": ["omero.web.public.enabled", "omero.web.public.password"], "append": {}},
        }
    """

    def command(self, install: OmeroInstall, record: str, secret_keys=(), clear_keys=None,
                host_secret_file: str | None = None):
        rule = json.dumps({"name": SECRET_NAME, "declared": sorted(secret_keys),
                           "clear": None if clear_keys is None else sorted(clear_keys)}, sort_keys=True)
        reader = install.python_cmd("-I", "-c", CONFIG_READER, install.config_xml, rule)
        defaults = f"{install.omero_cmd('config', 'parse', '--defaults', '--no-web')}; " if clear_keys is not None else ""
        # line 1 from the control machine (pyinfra's stdin), line 2 read by root: printf and
        # read are shell builtins, so neither reaches a command line
        stdin = f"{{ IFS= read -r wanted; printf '%s\\n' \"$wanted\"; {host_secret_line(host_secret_file) if host_secret_file else 'echo'}; {defaults}}}"
        body = (f"{{ {stdin} | {reader}; }} || exit 1; "
                # the record is in OMERODIR, the account's: read as that account, never as root
                f"echo '---'; {as_user(install.user, _CAT_OR_NULL, record)}")
        return (f"if [ -x {q(install.omero)} ]; then "
                + install.trusted(body, refuse=f'printf \'%s %s\\n\' {UNTRUSTED} "$untrusted"') + "; fi")

    def process(self, output) -> Optional[dict]:
        text = "\n".join(output)
        if text.startswith(UNTRUSTED + " "):
            return {"untrusted": text[len(UNTRUSTED) + 1:].strip()}
        if not text.strip():
            return None
        # issue 12 (6): a record cut short, empty or not JSON (disk full, a hand edit) is reported
        # as "managed_error" (the section fails naming the file), never raised here
        lines = text.split("\n")
        cut = lines.index("---") if "---" in lines else len(lines)
        config, managed = json.loads("\n".join(lines[:cut])), "\n".join(lines[cut + 1:])
        if not managed.strip():
            return {**config, "managed": None, "managed_error": "empty file"}
        try:
            return {**config, "managed": json.loads(managed)}
        except ValueError as exc:
            return {**config, "managed": None, "managed_error": f"not JSON: {exc}"}


def wanted_secrets(to_set, secret_keys) -> str:
    """``OmeroConfig``'s standard input: the wanted values of the secret keys, one JSON line."""
    return json.dumps({k: v for k, v in sorted(to_set.items()) if k in set(secret_keys) and v is not None}) + "\n"


_CAT = 'cat -- "$1"'


class JsonFile(FactBase[Any]):
    """
    A JSON file's content, or None when it is missing or not JSON (e.g. cut short). With
    ``user``, read as that account (a file in a folder it owns: a link there is not followed
    as root).

    + path: the JSON file
    + user: the account that reads it (None: root)

    .. code:: python

        {"set": ["omero.client.ui.tree.type_order"], "append": {}}
    """

    def command(self, path: str, user: str | None = None):
        if user:
            return as_user(user, _CAT, path) + " 2>/dev/null || true"
        return f"cat {q(path)} 2>/dev/null || true"

    def process(self, output) -> Any:
        text = "\n".join(output).strip()
        try:
            return json.loads(text) if text else None
        except ValueError:
            return None
