"""
The official OMERO.web walkthroughs, step by step, as data (``tests/unit/test_conformance.py``
checks them against the deploy's simulated plan).

The source is ``tests/unit/data/omero-web-install.txt``, the text of the "OMERO.web
installation" documentation: six walkthroughs (4.1 CentOS 7 to 4.6 Debian 10), then the
sections they share (4.7 publishing, 4.8 UI customization, 4.9 upgrade). ``STEPS[distro]``
lists every command, file line and instruction of that distro's walkthrough, and
``STEPS["common"]`` those of the shared sections. Each step is a dict:

- ``id``: unique within its distro; ``section``: the walkthrough's section;
- ``seed``: the walkthrough's own text, which must occur in that distro's part of the
  source (lines wrapped by the PDF, marked ``↪``/``↳``/``↵``/``↔``, are joined first);
- either ``match``: how the deploy's plan for that distro shows the same effect, or
  ``deviation``: the id of a deliberate difference, listed (as ``**<id>**``) in the README's
  "Differences from the walkthroughs (on purpose)";
- optionally ``data``: the inventory data that turns the step on (an optional step is
  matched with it), ``host``: facts of the simulated host that differ for this step
  (``SimulatedHost`` fields), ``role``: ``omero_server`` for a step done on an OMERO.server.

A ``match`` is a dict; all its parts must hold:

- ``commands``: regexes, each found in a planned command; ``absent``: regexes found in none;
- ``packages``: names, each a word of a planned package installation;
- ``config``: ``{property: regex}``: the OMERO.web configuration loaded has the property with
  a value the regex matches in full; ``append``: ``{property: [item]}``: each item (the
  walkthrough's JSON text) appended with ``omero config append``;
- ``lines``: ``{path: [regex]}``: the file written at ``path`` has a line (without its
  indentation) that each regex matches in full; ``upload``: ``{path: [regex]}``: each regex
  found in that file.

``{templates}`` in data is the path of a local templates folder the test provides (with
``mytemplate/index.html`` and ``base_include.html``).
"""

from __future__ import annotations

from model.omero_install import OMERO_COMMANDS_END

STAGED = "/opt/omero/web/omero-web/etc/.omeroweb-deploy/config.properties"
UNIT = "/etc/systemd/system/omero-web.service"
INITD = "/etc/init.d/omero-web"
CRON = "/etc/cron.d/omero-web-clearsessions"
TIMER = "/etc/systemd/system/omero-web-clearsessions.timer"
CLEARSESSIONS_UNIT = "/etc/systemd/system/omero-web-clearsessions.service"
SERVER_STAGED = "/opt/omero/server/OMERO.server/etc/.omeroweb-deploy/server-config.properties"
GROUP_REQUEST = "/opt/omero/server/OMERO.server/etc/.omeroweb-deploy/group-config.json"
GROUP_SCRIPT = "/opt/omero/server/OMERO.server/etc/.omeroweb-deploy/omero_group_config.py"

#: The six walkthroughs and the shared sections: where each starts in the source, and the
#: host it is simulated on (the service manager each walkthrough documents: systemd on
#: CentOS, an init.d script on Ubuntu and Debian; SELinux enforcing on CentOS).
DISTROS = {
    "centos7": {"label": "CentOS 7", "heading": "4.1 OMERO.web installation on CentOS 7",
                "host": {"distro": "centos", "version": "7", "systemd": True, "selinux": "Enforcing"}},
    "centos8": {"label": "CentOS 8", "heading": "4.2 OMERO.web installation on CentOS 8",
                "host": {"distro": "centos", "version": "8", "systemd": True, "selinux": "Enforcing"}},
    "ubuntu1804": {"label": "Ubuntu 18.04", "heading": "4.3 OMERO.web installation on Ubuntu 18.04",
                   "host": {"distro": "ubuntu", "version": "18.04", "systemd": False}},
    "ubuntu2004": {"label": "Ubuntu 20.04", "heading": "4.4 OMERO.web installation on Ubuntu 20.04",
                   "host": {"distro": "ubuntu", "version": "20.04", "systemd": False}},
    "debian9": {"label": "Debian 9", "heading": "4.5 OMERO.web installation on Debian 9",
                "host": {"distro": "debian", "version": "9", "systemd": False}},
    "debian10": {"label": "Debian 10", "heading": "4.6 OMERO.web installation on Debian 10",
                 "host": {"distro": "debian", "version": "10", "systemd": False}},
    "common": {"label": "4.7-4.9 (shared; on Debian 10)", "heading": "4.7 Publishing data using OMERO.web",
               "host": {"distro": "debian", "version": "10", "systemd": False}},
}

# Data that turns optional steps on (each set is simulated on its own)
REDIS = {"omero_web_redis": True}
CORS = {"omero_web_cors_origins": ["https://hostname.example.com"]}
CORS_ALL = {"omero_web_cors_allow_all": True}
PREFIX = {"omero_web_prefix": "/omero"}
WSGI_ARGS = {"omero_web_wsgi_args": "--log-level=DEBUG --error-logfile=/opt/omero/web/omero-web/var/log/error.log"}
SYNC = {"omero_web_wsgi_worker_class": "sync", "omero_web_wsgi_threads": 4}  # 2 x 2 cores
GEVENT = {"omero_web_wsgi_worker_class": "gevent", "omero_web_wsgi_worker_connections": 1000}
SESSIONS = {"omero_web_session_expire_at_browser_close": True, "omero_web_session_cookie_age": 86400}
LOCATION = {"omero_web_nginx_mode": "location"}
NO_SELINUX = {"selinux": "Disabled"}
NO_CLEARSESSIONS = {"omero_web_clearsessions": False}
NO_DEFAULT_SITE = {"existing_paths": ()}


def step(id, section, seed, match=None, deviation=None, data=None, host=None, role=None) -> dict:
    assert (match is None) != (deviation is None), id
    found = {"id": id, "section": section, "seed": seed}
    found.update({"match": match} if match is not None else {"deviation": deviation})
    found.update({k: v for k, v in (("data", data), ("host", host), ("role", role)) if v})
    return found


#: Before an ``omero`` command's arguments: nothing, or ``load`` and the lines of its here-document
#: before it (``OmeroInstall.omero_commands`` runs a section's commands in one ``omero load``).
IN_OMERO_LOAD = rf"(?:load <<'{OMERO_COMMANDS_END}'.*\n(?:.*\n)*?)?"


def omero_run(command: str) -> str:
    """A regex for ``omero COMMAND`` (a regex), run alone or as a line of an ``omero load``."""
    return r"bin/omero " + IN_OMERO_LOAD + command


def run_as_web_user(command: str) -> str:
    """A regex for an ``omero`` command run as omero-web with the walkthrough's OMERODIR and PATH
    (alone or in an ``omero load``)."""
    return (r"runuser -u omero-web -- env .*OMERODIR=/opt/omero/web/omero-web PATH=/opt/omero/web/venv3/bin:\S* "
            r"/opt/omero/web/venv3/" + omero_run(command))


# The NGINX site: `omero web config nginx --http PORT --servername NAME`, installed as conf.d/omeroweb.conf
SITE = (r"(?s)\"omero\", \"web\", \"config\", (\"nginx\"|template), \"--http\", port, \"--servername\", name\]\).*"
        r"site\.properties (nginx )?80 localhost; \}.* > /etc/nginx/conf\.d/omeroweb\.conf")
HEALTHCHECK = r"http://127\.0\.0\.1:80/webclient/login/"


# --- Sections every walkthrough has, with each distro's spelling ----------------------------


def user_steps() -> list[dict]:
    section = "If required, first create a local system user omero-web and create directory"
    return [
        step("useradd", section, "useradd -m omero-web", {"commands": [r"^useradd .*-m omero-web$"]}),
        step("omerodir-mkdir", section, "mkdir -p /opt/omero/web/omero-web/etc/grid",
             {"commands": [r"^mkdir -p /opt/omero/web/omero-web$", r"mkdir -p .* /opt/omero/web/omero-web/etc/grid$"]}),
        step("omerodir-chown", section, "chown -R omero-web /opt/omero/web/omero-web",
             {"commands": [r"^chown omero-web:omero-web /opt/omero/web/omero-web$",
                           r"^runuser -u omero-web -- sh -c .*mkdir -p.* /opt/omero/web/omero-web/etc/grid$"]}),
    ]


def rhel_prerequisites(redis_seed: str) -> list[dict]:
    section = "Installing prerequisites"
    steps = [
        step("epel-release", section, "yum -y install epel-release", {"packages": ["epel-release"]}),
        step("unzip", section, "yum -y install unzip", {"packages": ["unzip"]}),
        step("python3", section, "yum -y install python3", {"packages": ["python3"]}),
        step("nginx", section, "yum -y install nginx", {"packages": ["nginx"]}),
        step("redis-package", section, "yum -y install redis", {"packages": ["redis"]}, data=REDIS),
        step("redis-enable", section, "systemctl enable redis.service",
             {"commands": [r"^systemctl enable redis(\.service)?$"]}, data=REDIS),
        step("redis-start", section, "systemctl start redis.service",
             {"commands": [r"^systemctl start redis(\.service)?$"]}, data=REDIS),
    ]
    if "python3-redis" in redis_seed:
        steps.append(step("redis-python3-redis", section, redis_seed, deviation="redis-client-in-venv", data=REDIS))
    return steps


def deb_prerequisites() -> list[dict]:
    section = "Installing prerequisites"
    return [
        step("apt-update", section, "apt-get update", {"commands": [r"^apt-get update$"]}),
        step("unzip", section, "apt-get -y install unzip", {"packages": ["unzip"]}),
        step("python3", section, "apt-get -y install python3", {"packages": ["python3"]}),
        step("python3-venv", section, "apt-get -y install python3-venv", {"packages": ["python3-venv"]}),
        step("nginx", section, "apt-get -y install nginx", {"packages": ["nginx"]}),
        step("redis-package", section, "apt-get -y install redis-server", {"packages": ["redis-server"]}, data=REDIS),
        step("redis-start", section, "service redis-server start",
             {"commands": [r"^(service redis-server start|/etc/init\.d/redis-server start)$"]}, data=REDIS),
    ]


def venv_steps(ice_url: str) -> list[dict]:
    section = "Creating a virtual environment"
    return [
        step("venv", section, "python3 -mvenv /opt/omero/web/venv3",
             {"commands": [r"/usr/bin/python3 -m venv /opt/omero/web/venv3( |$)"]}),
        step("ice-wheel", section, "/opt/omero/web/venv3/bin/pip install --upgrade " + ice_url,
             # the URL in a root-only file (it may hold credentials), never on a command line
             {"upload": {"/var/cache/omeroweb-deploy/ice/wheel-url.txt": ["^" + ice_url.replace(".", r"\.") + "$"]},
              "commands": [r"/opt/omero/web/venv3/bin/python -m pip download .* -r /var/cache/omeroweb-deploy/ice/"
                           r"wheel-url\.txt ",
                           # alone, or on a fresh install with OMERO.web's requirements (one pip run)
                           r"^/opt/omero/web/venv3/bin/python -m pip install (--no-deps --force-reinstall|--upgrade .*) "
                           r"\S*/zeroc_ice-\*\.whl --no-compile && "]}),
        step("omero-web", section, '/opt/omero/web/venv3/bin/pip install "omero-web>=5.6.1"',
             {"commands": [r"^/opt/omero/web/venv3/bin/python -m pip install --upgrade 'omero-web>=5\.6\.1'"]}),
    ]


def configuring_steps(websession: str, caches_typo: str | None) -> list[dict]:
    section = "Configuring OMERO.web"
    steps = [
        step("websession", section, websession, deviation="websession-variable"),
        step("omerodir-env", section, "export OMERODIR=/opt/omero/web/omero-web",
             {"commands": [run_as_web_user("config load")]}),
        step("maintenance-page", section,
             "the generated NGINX configuration file will automatically display a maintenance page",
             deviation="maintenance-page"),
        step("path-env", section, "export PATH=/opt/omero/web/venv3/bin:$PATH",
             {"commands": [run_as_web_user("config append")]}),
        step("nginx-generate", section,
             'omero web config nginx --http "${WEBPORT}" --servername "${WEBSERVER_NAME}" > '
             "/opt/omero/web/omero-web/nginx.conf.tmp", deviation="nginx-scratch-omerodir"),
        step("redis-caches", section, """omero config set omero.web.caches '{"default": {"BACKEND": "django_redis.""",
             deviation="redis-password", data=REDIS),
        step("redis-session-engine", section,
             "omero config set omero.web.session_engine django.contrib.sessions.backends.cache",
             {"config": {"omero.web.session_engine": r"django\.contrib\.sessions\.backends\.cache"}}, data=REDIS),
        step("prefix", section, "omero config set omero.web.prefix '/omero'",
             {"config": {"omero.web.prefix": "/omero"}}, data=PREFIX),
        step("static-url", section, "omero config set omero.web.static_url '/omero/static/'",
             {"config": {"omero.web.static_url": "/omero/static/"}}, data=PREFIX),
        step("prefix-nginx", section, "and regenerate your webserver configuration.",
             {"commands": [r"(?s)omero\.web\.prefix=/omero\n.*" + SITE[4:]]}, data=PREFIX),
    ]
    if caches_typo:
        steps.append(step("redis-caches-json", section, caches_typo, deviation="walkthrough-typo", data=REDIS))
    return steps


def gunicorn_steps() -> list[dict]:
    section = "Configuring Gunicorn"
    return [
        step("wsgi-workers", section, r"`omero.web.wsgi_workers` to $(2 \times \text{NUM_CORES}) + 1$",
             {"config": {"omero.web.wsgi_workers": "5"}}),  # the simulated host has 2 cores
        step("wsgi-args", section, 'omero config set omero.web.wsgi_args -- "--log-level=DEBUG '
             '--error-logfile=/opt/omero/web/omero-web/var/log/error.log"',
             {"config": {"omero.web.wsgi_args": "--log-level=DEBUG "
                                                "--error-logfile=/opt/omero/web/omero-web/var/log/error.log"}},
             data=WSGI_ARGS),
    ]


def cors_steps(whitelist: str) -> list[dict]:
    section = "Setting up CORS"
    return [
        step("cors-headers", section, "/opt/omero/web/venv3/bin/pip install 'django-cors-headers",
             {"commands": [r"-m pip install --upgrade .*django-cors-headers"]}, data=CORS),
        step("cors-headers-pin", section, "'django-cors-headers<3.3'", deviation="cors-headers-version", data=CORS),
        step("cors-middleware", section, """omero config append omero.web.middleware '{"index": 0.5, "class": """
             """"corsheaders.middleware.CorsMiddleware"}'""",
             {"append": {"omero.web.middleware": ['{"index": 0.5, "class": "corsheaders.middleware.CorsMiddleware"}']}},
             data=CORS),
        step("cors-post-csrf-middleware", section, """omero config append omero.web.middleware '{"index": 10, """
             """"class": "corsheaders.middleware.CorsPostCsrfMiddleware"}'""",
             {"append": {"omero.web.middleware": [
                 '{"index": 10, "class": "corsheaders.middleware.CorsPostCsrfMiddleware"}']}}, data=CORS),
        step("cors-whitelist", section, "omero config set omero.web.cors_origin_whitelist " + whitelist,
             {"config": {"omero.web.cors_origin_whitelist": r'\["https://hostname\.example\.com"\]'}}, data=CORS),
        step("cors-allow-all", section, "omero config set omero.web.cors_origin_allow_all True",
             {"config": {"omero.web.cors_origin_allow_all": "(?i)true"}}, data=CORS_ALL),
    ]


def nginx_steps(family: str, sed_typo: bool = False) -> list[dict]:
    section = "Configuring NGINX"
    sed = "sed -i.bak -re 's/( default_server.*)/; #\\1/' /etc/nginx/nginx.conf"
    if sed_typo:
        steps = [step("default-server-sed", section, "sed -i.bak -re 's/( default_server.*); #\\1/' /etc/nginx/nginx.conf",
                      deviation="walkthrough-typo")]
    else:
        steps = [step("default-server-sed", section, sed,
                      {"commands": [r"^sed -i\.bak -re '.*s/\( default_server\.\*\)/; #\\1/' /etc/nginx/nginx\.conf$"]})]
    if family == "rhel":
        steps += [
            step("default-conf-if", section, "if [ -f /etc/nginx/conf.d/default.conf ]; then",
                 {"absent": [r"^mv /etc/nginx/conf\.d/default\.conf "]}, host=NO_DEFAULT_SITE),
            step("default-conf-mv", section, "mv /etc/nginx/conf.d/default.conf /etc/nginx/conf.d/default.disabled",
                 {"commands": [r"^mv /etc/nginx/conf\.d/default\.conf /etc/nginx/conf\.d/default\.disabled$"]}),
        ]
    elif family == "debian9":
        steps += [
            step("default-site-mv", section,
                 "mv /etc/nginx/sites-available/default /etc/nginx/sites-available/default.disabled",
                 {"commands": [r"^mv /etc/nginx/sites-available/default /etc/nginx/sites-available/default\.disabled$"]}),
            step("default-site-if", section, "if [ -f /etc/nginx/sites-enabled/default ]; then",
                 {"absent": [r"^rm -f /etc/nginx/sites-enabled/default$"]}, host=NO_DEFAULT_SITE),
            step("default-site-rm", section, "rm /etc/nginx/sites-enabled/default",
                 {"commands": [r"^rm -f /etc/nginx/sites-enabled/default$"]}),
        ]
    else:  # Ubuntu and Debian 10: the enabled link removed, the site itself left alone
        steps.append(step("default-site-rm", section, "rm /etc/nginx/sites-enabled/default",
                          {"commands": [r"^rm -f /etc/nginx/sites-enabled/default$"],
                           "absent": [r"^mv /etc/nginx/sites-available/default "]}))
    steps.append(step("site-copy", section, "cp /opt/omero/web/omero-web/nginx.conf.tmp /etc/nginx/conf.d/omeroweb.conf",
                      {"commands": [SITE, r"if ! nginx -t; then"]}))
    if family == "rhel":
        steps += [
            step("nginx-enable", section, "systemctl enable nginx", {"commands": [r"^systemctl enable nginx(\.service)?$"]}),
            step("nginx-start", section, "systemctl start nginx", {"commands": [r"^systemctl start nginx(\.service)?$"]}),
        ]
    else:
        steps.append(step("nginx-start", section, "service nginx start",
                          {"commands": [r"^(service nginx start|/etc/init\.d/nginx start)$"]}))
    steps += [
        step("nginx-location", section, "omero web config nginx-location",
             {"commands": [r"(?s)\"omero\", \"web\", \"config\", template, .*site\.properties nginx-location 80 localhost"]},
             data=LOCATION),
        step("nginx-location-file", section,
             "> /opt/omero/web/omero-web/omero-web-location.include", deviation="nginx-location-include", data=LOCATION),
    ]
    return steps


def running_steps(whitenoise_typo: str | None) -> list[dict]:
    section = "Running OMERO.web"
    steps = [
        step("whitenoise", section, "/opt/omero/web/venv3/bin/pip install --upgrade whitenoise",
             {"commands": [r"^/opt/omero/web/venv3/bin/python -m pip install --upgrade .*\bwhitenoise\b"]}),
        step("django-redis", section, "/opt/omero/web/venv3/bin/pip install 'django-redis",
             {"commands": [r"-m pip install --upgrade .*\bdjango-redis\b"]}, data=REDIS),
        step("django-redis-pin", section, "'django-redis<4.9'", deviation="django-redis-version", data=REDIS),
        step("redis-caches-again", section, """omero config set omero.web.caches '{"default": {"BACKEND": """
             """"django_redis.cache.RedisCache", "LOCATION": "redis://127.0.0.1:6379/0"}}'""",
             deviation="redis-password", data=REDIS),
        step("redis-session-engine-again", section,
             "omero config set omero.web.session_engine 'django.contrib.sessions.backends.cache'",
             {"config": {"omero.web.session_engine": r"django\.contrib\.sessions\.backends\.cache"}}, data=REDIS),
        step("whitenoise-middleware", section, """omero config append -- omero.web.middleware '{"index": 0, "class": """
             """"whitenoise.middleware.WhiteNoiseMiddleware""",
             {"append": {"omero.web.middleware": ['{"index": 0, "class": "whitenoise.middleware.WhiteNoiseMiddleware"}']}}),
    ]
    if whitenoise_typo:
        steps.append(step("whitenoise-middleware-json", section, whitenoise_typo, deviation="walkthrough-typo"))
    steps += [
        step("manual-start", section, "omero web start", deviation="no-manual-start"),
        step("test-installation", section, "# Test installation e.g. curl -sL localhost:4080",
             {"commands": [HEALTHCHECK]}),
        step("manual-stop", section, "omero web stop", deviation="no-manual-start"),
    ]
    return steps


def systemd_unit_steps() -> list[dict]:
    """CentOS 7 shows the unit (CentOS 8 only refers to it)."""
    section = "Automatically running OMERO.web (systemd unit)"
    lines = [
        ("unit-description", "Description=OMERO.web", r"Description=OMERO\.web"),
        ("unit-requires", "Requires=nginx.service", r"Requires=nginx\.service"),
        ("unit-after", "After=network.service", None),
        ("unit-user", "User=omero-web", r"User=omero-web"),
        ("unit-type", "Type=forking", r"Type=forking"),
        ("unit-pidfile", "PIDFile=/opt/omero/web/omero-web/var/django.pid",
         r"PIDFile=/opt/omero/web/omero-web/var/django\.pid"),
        ("unit-restart", "Restart=no", None),
        ("unit-restart-sec", "RestartSec=10", None),
        ("unit-path", 'Environment="PATH=/opt/omero/web/venv3/bin:/usr/local/bin:/usr/bin:/bin:/usr/local/sbin:/usr/sbin"',
         r'Environment="PATH=/opt/omero/web/venv3/bin:/usr/local/bin:/usr/bin:/bin:/usr/local/sbin:/usr/sbin"'),
        ("unit-omerodir", 'Environment="OMERODIR=/opt/omero/web/omero-web"', r'Environment="OMERODIR=/opt/omero/web/omero-web"'),
        ("unit-execstop", "ExecStop=/opt/omero/web/venv3/bin/omero web stop",
         r'ExecStop="?/opt/omero/web/venv3/bin/omero"? web stop'),
        ("unit-wantedby", "WantedBy=multi-user.target", r"WantedBy=multi-user\.target"),
    ]
    deviations = {"unit-after": "unit-after", "unit-restart": "restart-on-failure", "unit-restart-sec": "restart-on-failure"}
    execstart = "ExecStart=/opt/omero/web/venv3/bin/omero web start"
    return [step(id, section, seed, {"lines": {UNIT: [line]}} if line else None, deviations.get(id))
            for id, seed, line in lines] + [
        # the walkthrough's line without the daily clearsessions job; with it, the start skips that work
        step("unit-execstart", section, execstart,
             {"lines": {UNIT: [r'ExecStart="?/opt/omero/web/venv3/bin/omero"? web start']}}, data=NO_CLEARSESSIONS),
        step("unit-execstart-keep-sessions", section, execstart, deviation="keep-sessions"),
    ]


def systemd_service_steps() -> list[dict]:
    section = "Automatically running OMERO.web"
    return [
        step("unit-copy", section, "cp omero-web-systemd.service /etc/systemd/system/omero-web.service",
             deviation="systemd-sandbox"),
        step("daemon-reload", section, "systemctl daemon-reload", deviation="enable-reloads"),
        step("service-enable", section, "systemctl enable omero-web.service",
             {"commands": [r"^systemctl enable omero-web(\.service)?$"]}),
        step("service-stop", section, "systemctl stop omero-web.service",  # stop, then start: a restart
             {"commands": [r"systemctl restart omero-web(\.service)?;"]}),
        step("service-start", section, "systemctl start omero-web.service",  # the restart starts it
             {"commands": [r"systemctl restart omero-web(\.service)?;"]}),
    ]


def initd_steps(v: dict) -> list[dict]:
    """The walkthrough's omero-web-init.d, its installation and the services started."""
    section = "Automatically running OMERO.web (init.d script)"
    lines = [
        ("initd-shebang", "#!/bin/bash", r"#!/bin/bash"),
        ("initd-path-comment", "# /etc/init.d/omero-web", r"# /etc/init\.d/omero-web"),
        ("initd-subsystem", '# Subsystem file for "omero" web', r'# Subsystem file for "omero" web'),
        ("initd-provides", "# Provides:          omero-web", r"# Provides:\s+omero-web"),
        ("initd-required-start", "# Required-Start:    $local_fs $remote_fs $network $time omero postgresql", None),
        ("initd-required-stop", v["required_stop"], None),
        ("initd-default-start", v["default_start"], r"# Default-Start:\s+2 3 4 5"),
        ("initd-default-stop", v["default_stop"], r"# Default-Stop:\s+0 1 6"),
        ("initd-short-description", "# Short-Description: OMERO.web", r"# Short-Description: OMERO\.web"),
        ("initd-chkconfig", "# chkconfig: - 98 02", r"# chkconfig: - 98 02"),
        ("initd-description", "# description: init file for OMERO.web", r"# description: init file for OMERO\.web"),
        ("initd-retval", "RETVAL=0", r"RETVAL=0"),
        ("initd-prog", "prog=omero-web", r"prog=omero-web"),
        ("initd-defaults-file", "[ -r /etc/default/$prog ] && . /etc/default/$prog",
         r"\[ -r /etc/default/\$prog \] && \. /etc/default/\$prog"),
        ("initd-omero-user", "OMERO_USER=${OMERO_USER:-omero-web}", r"OMERO_USER=\$\{OMERO_USER:-omero-web\}"),
        ("initd-omero", "OMERO=/opt/omero/web/venv3/bin/omero", r"OMERO=/opt/omero/web/venv3/bin/omero"),
        ("initd-omerodir", "OMERODIR=/opt/omero/web/omero-web", r"OMERODIR=/opt/omero/web/omero-web"),
        ("initd-venvdir", "VENVDIR=${VENVDIR:-/opt/omero/web/venv3}", r"VENVDIR=\$\{VENVDIR:-/opt/omero/web/venv3\}"),
        ("initd-starting", 'echo -n "Starting $prog:"', r'echo -n "Starting \$prog:"'),
        ("initd-su", 'su - ${OMERO_USER} -c "', None),
        ("initd-sleep", "sleep 5", None),
        ("initd-retval-test", '[ "$RETVAL" = 0 ]', r'\[ "\$RETVAL" = 0 \].*'),
        ("initd-stopping", v["stopping"], r'echo -n \$?"Stopping \$prog:"'),
        ("initd-stop", 'web stop" &> /dev/null', r"run_omero stop &> /dev/null"),
        ("initd-status-echo", v["status"], None),
        ("initd-status", 'web status"', r'out=\$\(run_omero status 2>&1\)'),
        ("initd-case", 'case "$1" in', r'case "\$1" in'),
        ("initd-usage", 'echo $"Usage: $0 {start|stop|restart|status}"', r'echo \$"Usage: \$0 \{start\|stop\|restart\|status\}"'),
        ("initd-exit", "exit $RETVAL", r"exit \$RETVAL"),
    ]
    deviations = {"initd-required-start": "initd-required-start", "initd-required-stop": "initd-required-start",
                  "initd-su": "initd-su-shell", "initd-sleep": "initd-status", "initd-status-echo": "initd-status"}
    steps = [step(id, section, seed, {"lines": {INITD: [line]}} if line else None, deviations.get(id))
             for id, seed, line in lines]
    steps += [
        # the walkthrough's start without the daily clearsessions job; with it, the start skips that work
        step("initd-start", section, 'web start" &> /dev/null', {"lines": {INITD: [r"run_omero start &> /dev/null"]}},
             data=NO_CLEARSESSIONS),
        step("initd-start-keep-sessions", section, 'web start" &> /dev/null', deviation="keep-sessions"),
        step("initd-restart", section, "restart)", {"upload": {INITD: [r"restart\)\s+stop\s+start\s+;;"]}}),
        step("initd-user-command", section, ". ${VENVDIR}/bin/activate;OMERODIR=${OMERODIR} ${OMERO}",
             # (after the TMPDIR of OMERO.web's file sessions: a private folder, not /tmp)
             {"upload": {INITD: [r"su - \"\$\{OMERO_USER\}\" .*-c \"\$\(printf '.*; \. %q/bin/activate; OMERODIR=%q %q web' "
                                 r"\\\n\s+(\S+ )*\"\$\{VENVDIR\}\" \"\$\{OMERODIR\}\" \"\$\{OMERO\}\"; printf ' %q' \"\$@\"\)\""]}}),
    ]
    for n, (typo, text) in enumerate(v["echo"]):
        if typo:
            steps.append(step(f"initd-echo-{n}", section, text, deviation="walkthrough-typo"))
        else:
            steps.append(step(f"initd-echo-{n}", section, text,
                              {"lines": {INITD: [r"\[ \"\$RETVAL\" = 0 \] && echo -n ' OMERO\.web'"]}}))
    section = "Automatically running OMERO.web"
    steps += [
        step("initd-copy", section, "cp omero-web-init.d /etc/init.d/omero-web",
             # staged in root's folder, then renamed into place by root (uploads.install_staged)
             {"commands": [r"^PUT (/var/lib/omeroweb-deploy/staging/\S+)$", r"mv -fTZ \S+ /etc/init\.d/omero-web "],
              "upload": {INITD: [r"\A#!/bin/bash\n"]}}),
        step("initd-chmod", section, "chmod a+x /etc/init.d/omero-web",
             {"commands": [r"chmod 755 (\S+) && mv -fTZ \1 /etc/init\.d/omero-web "]}),
        step("initd-remove", section, "update-rc.d -f omero-web remove", deviation="initd-registration"),
        step("initd-defaults", section, "update-rc.d -f omero-web defaults 98 02",
             {"commands": [r"^update-rc\.d omero-web defaults 98 02$"]}),
        step("start-redis", section, "service redis-server start",
             {"commands": [r"^(service redis-server start|/etc/init\.d/redis-server start)$"]}, data=REDIS),
    ]
    if v["cron"]:
        steps.append(step("start-cron", section, "cron", {"commands": [r"^(service cron start|/etc/init\.d/cron start)$"]}))
    steps += [
        step("start-nginx", section, "service nginx start", {"commands": [r"^(service nginx start|/etc/init\.d/nginx start)$"]}),
        step("restart-omero-web", section, "service omero-web restart", {"commands": [r"^/etc/init\.d/omero-web restart( |$)"]}),
    ]
    return steps


def maintaining_steps(systemd: bool) -> list[dict]:
    section = "Maintaining OMERO.web"
    if systemd:  # a daily timer, the systemd way of a cron job
        daily = {"upload": {TIMER: [r"(?m)^OnCalendar=\*-\*-\* \d\d:\d\d:00$"],
                            CLEARSESSIONS_UNIT: [r"(?m)^User=omero-web$", r'(?m)^ExecStart="?/opt/omero/web/venv3/bin/omero"? '
                                                                          r"web clearsessions$"]},
                 "commands": [r"^systemctl enable omero-web-clearsessions\.timer$"]}
    else:
        # (then OMERO.web's TMPDIR, where its file sessions are, and PATH)
        daily = {"lines": {CRON: [r"\d+ \d+ \* \* \* omero-web OMERODIR=/opt/omero/web/omero-web (\S+ )+"
                                  r"/opt/omero/web/venv3/bin/omero web clearsessions"]}}
    return [
        step("session-expire", section, 'omero config set omero.web.session_expire_at_browser_close "True"',
             {"config": {"omero.web.session_expire_at_browser_close": "(?i)true"}}, data=SESSIONS),
        step("session-cookie-age", section, "omero config set omero.web.session_cookie_age 86400",
             {"config": {"omero.web.session_cookie_age": "86400"}}, data=SESSIONS),
        step("clearsessions", section, "omero web clearsessions", daily),
        step("clearsessions-daily", section, "for example as a daily cron job", daily),
        step("troubleshooting-logs", "Troubleshooting",
             "Then consult `NGINX error.log` and `/opt/omero/web/omero-web/var/log/OMEROweb.log`.",
             {"commands": [r"(?s)" + HEALTHCHECK + r".*tail -n 20 -- \"\$1\"' sh /opt/omero/web/omero-web/var/log/OMEROweb\.log"
                           r".*tail -n 20 -- /var/log/nginx/error\.log"]}),
    ]


def advanced_gunicorn_steps() -> list[dict]:
    section = "Configuring Gunicorn advanced options"
    return [
        step("max-requests-note", section, "Note: `omero.web.application_server.max_requests` should be set to 0",
             {"config": {"omero.web.application_server.max_requests": "0"}}, data=GEVENT),
        step("futures", section, "/opt/omero/web/venv3/bin/pip install futures", deviation="no-futures", data=SYNC),
        step("sync-worker-class", section, "omero config set omero.web.wsgi_worker_class\n",
             {"config": {"omero.web.wsgi_worker_class": "sync"}}, data=SYNC),
        step("sync-threads", section, "omero config set omero.web.wsgi_threads $(2-4 x NUM_CORES)",
             {"config": {"omero.web.wsgi_threads": "4"}}, data=SYNC),
        step("gevent", section, "/opt/omero/web/venv3/bin/pip install 'gevent>=0.13'",
             {"commands": [r"-m pip install --upgrade .*'gevent>=0\.13'"]}, data=GEVENT),
        step("gevent-worker-class", section, "omero config set omero.web.wsgi_worker_class gevent",
             {"config": {"omero.web.wsgi_worker_class": "gevent"}}, data=GEVENT),
        step("gevent-connections", section, "omero config set omero.web.wsgi_worker_connections 1000",
             {"config": {"omero.web.wsgi_worker_connections": "1000"}}, data=GEVENT),
        step("gevent-max-requests", section, "omero config set omero.web.application_server.max_requests 0",
             {"config": {"omero.web.application_server.max_requests": "0"}}, data=GEVENT),
    ]


def selinux_steps(tools_seed: str) -> list[dict]:
    section = "SELinux"
    tools = (step("selinux-tools", section, tools_seed, {"packages": ["policycoreutils-python"]})
             if tools_seed == "yum -y install policycoreutils-python"
             else step("selinux-tools", section, tools_seed, deviation="walkthrough-typo"))
    return [
        step("selinux-if", section, "if [ $(getenforce) != Disabled ]; then",
             {"absent": [r"^(setsebool|semanage) "]}, host=NO_SELINUX),
        tools,
        step("selinux-read-user-content", section, "setsebool -P httpd_read_user_content 1",
             {"commands": [r"^setsebool -P httpd_read_user_content (1|on)$"]}),
        step("selinux-enable-homedirs", section, "setsebool -P httpd_enable_homedirs 1",
             {"commands": [r"^setsebool -P httpd_enable_homedirs (1|on)$"]}),
        step("selinux-port", section, "semanage port -a -t http_port_t -p tcp 4080",
             {"commands": [r"^semanage port -a -t http_port_t -p tcp 4080$"]}),
    ]


def rhel(ice_url: str, redis_seed: str, websession: str, whitelist: str, whitenoise_typo,
         selinux_tools: str, unit_shown: bool) -> list[dict]:
    return [
        *user_steps(), *rhel_prerequisites(redis_seed), *venv_steps(ice_url), *configuring_steps(websession, None),
        *gunicorn_steps(), *cors_steps(whitelist), *nginx_steps("rhel"), *running_steps(whitenoise_typo),
        *(systemd_unit_steps() if unit_shown else []), *systemd_service_steps(), *maintaining_steps(systemd=True),
        *advanced_gunicorn_steps(), *selinux_steps(selinux_tools),
    ]


def deb(family: str, ice_url: str, whitelist: str, whitenoise_typo, initd: dict, caches_typo=None,
        sed_typo=False) -> list[dict]:
    return [
        *user_steps(), *deb_prerequisites(), *venv_steps(ice_url), *configuring_steps("export WEBSESSION=True", caches_typo),
        *gunicorn_steps(), *cors_steps(whitelist), *nginx_steps(family, sed_typo), *running_steps(whitenoise_typo),
        *initd_steps(initd), *maintaining_steps(systemd=False), *advanced_gunicorn_steps(),
    ]


INITD_SPACED = {"required_stop": "# Required-Stop:     $local_fs $remote_fs $network $time omero postgresql",
                "default_start": "# Default-Start:     2 3 4 5", "default_stop": "# Default-Stop:      0 1 6",
                "stopping": 'echo -n "Stopping $prog:"', "status": 'echo -n "Status $prog:"'}
OMEMO = [(True, "&& echo -n ' OMEMO.web'")]  # the walkthrough's misspelt success message
OMERO = [(False, "&& echo -n ' OMERO.web'")]
ICE = "https://github.com/ome/zeroc-ice-"
WHITELIST_QUOTED = """'["https://hostname.example.com"]'"""

STEPS: dict[str, list[dict]] = {
    "centos7": rhel(ICE + "py-centos7/releases/download/0.2.1/zeroc_ice-3.6.5-cp36-cp36m-linux_x86_64.whl",
                    "yum -y install redis", "export WEBSSESSION=True", """['"https://hostname.example.com"]'""", None,
                    "yum -y install policycoreutils-python", unit_shown=True),
    "centos8": rhel(ICE + "centos8/releases/download/0.0.1/zeroc_ice-3.6.5-cp36-cp36m-linux_x86_64.whl",
                    "yum -y install redis python3-redis", "export WEBSESSION=True", WHITELIST_QUOTED,
                    "WhiteNoiseMiddleware} '", "yum -y install polycoreutils-python", unit_shown=False),
    "ubuntu1804": deb("ubuntu", ICE + "ubuntu1804/releases/download/0.2.0/zeroc_ice-3.6.5-cp36-cp36m-linux_x86_64.whl",
                      """['"https://hostname.example.com"']""", "WhiteNoiseMiddleware}'}",
                      {**INITD_SPACED, "echo": OMEMO, "cron": True}),
    "ubuntu2004": deb("ubuntu", ICE + "ubuntu2004/releases/download/0.2.0/zeroc_ice-3.6.5-cp38-cp38-linux_x86_64.whl",
                      """['"https://hostname.example.com"]'""", "WhiteNoiseMiddleware}\n",
                      {**INITD_SPACED, "echo": OMERO, "cron": True}),
    "debian9": deb("debian9", ICE + "py-debian9/releases/download/0.2.0/zeroc_ice-3.6.5-cp35-cp35m-linux_x86_64.whl",
                   WHITELIST_QUOTED, "WhiteNoiseMiddleware}'}", {**INITD_SPACED, "echo": OMEMO, "cron": False}),
    "debian10": deb("debian10", ICE + "debian10/releases/download/0.1.0/zeroc_ice-3.6.5-cp37-cp37m-linux_x86_64.whl",
                    WHITELIST_QUOTED, "WhiteNoiseMiddleware}'\n",
                    {"required_stop": "# Required-Stop:    $local_fs $remote_fs $network $time omero postgresql",
                     "default_start": "# Default-Start:    2 3 4 5", "default_stop": "# Default-Stop:     0 1 6",
                     "stopping": 'echo -n $"Stopping $prog:"', "status": 'echo -n $"Status $prog:"',
                     "echo": [OMERO[0], OMEMO[0]], "cron": False},
                    caches_typo='"LOCATION": "redis://127.0.0.1:6379/0}}\'', sed_typo=True),
}


# --- The shared sections: publishing, UI customization, OMERO.server settings, upgrade ------

PUBLIC = {"omero_web_public_enabled": True, "omero_web_public_user": "public-reader",
          "omero_web_public_password": "Publ1c-reader-pw", "omero_web_public_url_filter": "^/webgateway"}
PUBLICATION = {**PUBLIC, "omero_web_public_url_filter": "^/webclient|^/webgateway|^/api",
               "omero_web_publications": {"schleicher-et-al-2017": "project-27936"}}
SERVERS = {**PUBLIC, "omero_web_public_server_id": 1,
           "omero_web_servers": [["omero.example.org", 4064, "omero"], ["omero2.example.org", 4064, "archive"]]}
TEMPLATES = {"omero_web_templates": "{templates}", "omero_web_index_template": "mytemplate/index.html",
             "omero_web_base_include_template": "base_include.html"}
CUSTOMIZED = {**TEMPLATES, "omero_web_login_logo": "http://www.url/to/image.png",
              "omero_web_login_redirect": {"redirect": ["webindex"], "viewname": "load_template",
                                           "args": ["userdata"], "query_string": "experimenter=-1"},
              "omero_web_top_links": [["Figure", "figure_index", {"title": "Open Figure in new tab", "target": "_blank"}],
                                      ["GRE", "http://lifesci.dundee.ac.uk/gre"]],
              "omero_web_open_with": [["omero_figure", "new_figure", {"supported_objects": ["images"],
                                                                      "target": "_blank", "label": "OMERO.figure"}]]}
#: The walkthrough's 4.8.7 to 4.8.10 (OMERO.server settings for its clients), as data.
CLIENT_CONFIG = {
    "omero.client.ui.menu.dropdown.leaders.label": "Owners",
    "omero.client.ui.menu.dropdown.leaders.enabled": True,
    "omero.client.ui.menu.dropdown.colleagues.label": "Members",
    "omero.client.ui.menu.dropdown.colleagues.enabled": True,
    "omero.client.ui.menu.dropdown.everyone.label": "All Members",
    "omero.client.ui.menu.dropdown.everyone.enabled": False,
    "omero.client.ui.tree.orphans.name": "Orphaned images",
    "omero.policy.binary_access": "+read,+write,+image",
}
CLIENT_SETTINGS = {
    "omero_web_omero_server_config": CLIENT_CONFIG,
    "omero_web_omero_server_config_append": {"omero.client.scripts_to_ignore": ["/my_scripts/script.py"]},
    "omero_web_omero_server_group_config": {15: {"omero.policy.binary_access": "+read,+write,+image"}},
    "omero_web_omero_server_admin_password": "Adm1n-s3cret-pw",
}
INSTALLED = {"existing_paths": ("/opt/omero/web/venv3/bin/omero", "/etc/nginx/sites-enabled/default")}
UPGRADE = {"omero_web_version_spec": "omero-web>=5.29.0"}
OMERO_PY = {**UPGRADE, "omero_web_omero_py_spec": "omero-py>=5.19.0"}
MIGRATION = {"omero_web_migrate_from_omerodir": "/opt/omero/web/omero-web-old"}
MIGRATION_HOST = {"existing_paths": ("/opt/omero/web/omero-web-old/etc/grid/config.xml",)}


def public(id, section, seed, prop, value, data=PUBLIC):
    return step(id, section, seed, {"config": {prop: value}}, data=data)


def server(id, seed, prop, value, section="Group and Users in dropdown menu"):
    return step(id, section, seed, {"upload": {SERVER_STAGED: [rf"(?m)^{prop}={value}$"]}},
                data=CLIENT_SETTINGS, role="omero_server")


_P = "Configuring public user"
_S = "Group and Users in dropdown menu"
STEPS["common"] = [
    public("public-enabled", _P, "$ omero config set omero.web.public.enabled True", "omero.web.public.enabled", "(?i)true"),
    public("public-user", _P, "$ omero config set omero.web.public.user '<username>'", "omero.web.public.user", "public-reader"),
    public("public-password", _P, "$ omero config set omero.web.public.password '<password>'",
           "omero.web.public.password", "Publ1c-reader-pw"),
    public("public-get-only", _P, "$ omero config set omero.web.public.get_only false", "omero.web.public.get_only",
           "(?i)false", {**PUBLIC, "omero_web_public_get_only": False}),
    public("url-filter-webgateway", _P, "$ omero config set omero.web.public.url_filter '^/webgateway'",
           "omero.web.public.url_filter", r"\^/webgateway"),
    public("url-filter-no-download", _P,
           "$ omero config set omero.web.public.url_filter '^/webgateway/(?!archived_files|download_as)'",
           "omero.web.public.url_filter", r"\^/webgateway/\(\?!archived_files\|download_as\)",
           {**PUBLIC, "omero_web_public_url_filter": "^/webgateway/(?!archived_files|download_as)"}),
    public("url-filter-iviewer", _P, "$ omero config set omero.web.public.url_filter '^/iviewer|webgateway|api'",
           "omero.web.public.url_filter", r"\^/iviewer\|webgateway\|api",
           {**PUBLIC, "omero_web_public_url_filter": "^/iviewer|webgateway|api"}),
    step("url-filter-webclient", _P, "$ omero config set omero.web.public.url_filter '^/(webadmin/myphoto/"
         "|webclient/(?!(script_ui|ome_tiff|figure_script)|webgateway/(?!(archived_files|download_as))|viewer|api)'",
         deviation="walkthrough-typo"),
    public("public-server-id", _P, "$ omero config set omero.web.public.server_id 1", "omero.web.public.server_id", "1",
           {**PUBLIC, "omero_web_public_server_id": 1}),
    step("server-list", _P, "(the first server in the `omero.web.server_list`)",
         {"config": {"omero.web.server_list": r'\[\["omero\.example\.org", 4064, "omero"\], '
                                              r'\["omero2\.example\.org", 4064, "archive"\]\]'}}, data=SERVERS),
    step("separate-web-server", "Full example of hosting data for a publication",
         "configured to point at your existing OMERO.server",
         {"config": {"omero.web.server_list": r'\[\["omero\.example\.org", 4064, "omero"\], .*\]'}}, data=SERVERS),
    step("pub-redirect-location", "Configuring URLs", "location /pub/schleicher-et-al-2017 {",
         {"config": {"omero.web.nginx_server_extra_config": r'.*"location /pub/schleicher-et-al-2017 \{ .*\}".*'},
          "commands": [r"(?s)location /pub/schleicher-et-al-2017 \{ return 307 /webclient/\?show=project-27936; \}.*"
                       + SITE[4:]]}, data=PUBLICATION),
    step("pub-redirect-return", "Configuring URLs", "return 307 /webclient/?show=project-27936;",
         {"config": {"omero.web.nginx_server_extra_config":
                     r'.*"location /pub/schleicher-et-al-2017 \{ return 307 /webclient/\?show=project-27936; \}".*'}},
         data=PUBLICATION),
    step("index-template-dirs", "Index page", "$ omero config append omero.web.template_dirs '/your/path/to/templates/'",
         {"append": {"omero.web.template_dirs": ['"/opt/omero/web/omero-web/etc/templates/custom"']},
          "upload": {"/opt/omero/web/omero-web/etc/templates/custom/mytemplate/index.html": [r"."]}}, data=TEMPLATES),
    step("index-template", "Index page", "$ omero config set omero.web.index_template 'mytemplate/index.html'",
         {"config": {"omero.web.index_template": r"mytemplate/index\.html"}}, data=TEMPLATES),
    step("login-logo", "Login page logo", "$ omero config set omero.web.login_logo 'http://www.url/to/image.png'",
         {"config": {"omero.web.login_logo": r"http://www\.url/to/image\.png"}}, data=CUSTOMIZED),
    step("login-redirect", "Login redirection", """$ omero config set omero.web.login_redirect '{"redirect": """
         """["webindex"], "viewname": "load_template", "args": ["userdata"], "query_string": "experimenter=-1"}'""",
         {"config": {"omero.web.login_redirect": r'\{"redirect": \["webindex"\], "viewname": "load_template", '
                                                 r'"args": \["userdata"\], "query_string": "experimenter=-1"\}'}},
         data=CUSTOMIZED),
    step("top-links", "Top links menu", "`omero.web.ui.top_links` adds links to the top header",
         {"append": {"omero.web.ui.top_links": [
             '["Figure", "figure_index", {"title": "Open Figure in new tab", "target": "_blank"}]',
             '["GRE", "http://lifesci.dundee.ac.uk/gre"]']}}, data=CUSTOMIZED),
    step("top-links-figure", "Top links menu", """$ omero config append omero.web.ui.top_links ['Figure', "figure_index", """
         """{"title": "Open Figure in new tab", "target": "_blank"}]""", deviation="walkthrough-typo"),
    step("top-links-gre", "Top links menu", """$ omero config append omero.web.ui.top_links ['GRE', """
         """"http://lifesci.dundee.ac.uk/gre"]'""", deviation="walkthrough-typo"),
    step("open-with", "Open With option", "`omero.web.open_with` adds items to the ‘Open with’ options",
         {"append": {"omero.web.open_with": ['["omero_figure", "new_figure", {"supported_objects": ["images"], '
                                             '"target": "_blank", "label": "OMERO.figure"}]']}}, data=CUSTOMIZED),
    step("base-include-template-dirs", "Include template in every page",
         "Set the following:\n\n```\n$ omero config append omero.web.template_dirs '/your/path/to/templates/'",
         {"append": {"omero.web.template_dirs": ['"/opt/omero/web/omero-web/etc/templates/custom"']},
          "upload": {"/opt/omero/web/omero-web/etc/templates/custom/base_include.html": [r"Hello World"]}}, data=TEMPLATES),
    step("base-include-template", "Include template in every page",
         "$ omero config set omero.web.base_include_template 'base_include.html'",
         {"config": {"omero.web.base_include_template": r"base_include\.html"}}, data=TEMPLATES),
    server("dropdown-leaders-label", '$ omero config set omero.client.ui.menu.dropdown.leaders.label "Owners"',
           r"omero\.client\.ui\.menu\.dropdown\.leaders\.label", "Owners"),
    server("dropdown-leaders-enabled", "$ omero config set omero.client.ui.menu.dropdown.leaders.enabled true",
           r"omero\.client\.ui\.menu\.dropdown\.leaders\.enabled", "true"),
    server("dropdown-colleagues-label", '$ omero config set omero.client.ui.menu.dropdown.colleagues.label "Members"',
           r"omero\.client\.ui\.menu\.dropdown\.colleagues\.label", "Members"),
    server("dropdown-colleagues-enabled", "$ omero config set omero.client.ui.menu.dropdown.colleagues.enabled true",
           r"omero\.client\.ui\.menu\.dropdown\.colleagues\.enabled", "true"),
    server("dropdown-everyone-label", '$ omero config set omero.client.ui.menu.dropdown.everyone.label "All Members"',
           r"omero\.client\.ui\.menu\.dropdown\.everyone\.label", "All Members"),
    server("dropdown-everyone-enabled", "$ omero config set omero.client.ui.menu.dropdown.everyone.enabled false",
           r"omero\.client\.ui\.menu\.dropdown\.everyone\.enabled", "false"),
    server("orphans-name", '$ omero config set omero.client.ui.tree.orphans.name "Orphaned images"',
           r"omero\.client\.ui\.tree\.orphans\.name", "Orphaned images", "Orphaned container"),
    step("scripts-to-ignore", "Disabling scripts",
         '$ omero config append omero.client.scripts_to_ignore "/my_scripts/script.py"',
         deviation="server-list-merge", data=CLIENT_SETTINGS, role="omero_server"),
    server("binary-access", "$ omero config set -- omero.policy.binary_access +read,+write,+image",
           r"omero\.policy\.binary_access", r"\+read,\+write,\+image", "Download restrictions"),
    step("group-info", "Download restrictions", "$ omero group info 15",
         {"upload": {GROUP_SCRIPT: [r'query\.get\("ExperimenterGroup", int\(gid\)', r"No OMERO group with id"]}},
         data=CLIENT_SETTINGS, role="omero_server"),
    step("group-binary-access", "Download restrictions",
         "$ omero obj map-set ExperimenterGroup:15 config -- omero.policy.binary_access +read,+write,+image",
         {"upload": {GROUP_REQUEST: [r'(?s)"groups": \{\s*"15": \{\s*"omero\.policy\.binary_access": '
                                     r'"\+read,\+write,\+image"'],
                     GROUP_SCRIPT: [r"NamedValue\(name, value\)", r"update\.saveAndReturnObject\(group\)"]}},
         data=CLIENT_SETTINGS, role="omero_server"),
    step("upgrade-omero-web", "OMERO.web upgrade", "$ pip install --upgrade omero-web",
         {"commands": [r"^/opt/omero/web/venv3/bin/python -m pip install --upgrade .*'omero-web>=5\.29\.0'"]},
         data=UPGRADE, host=INSTALLED),
    step("upgrade-omero-py", "OMERO.web upgrade", "$ pip install --upgrade omero-py",
         {"commands": [r"^/opt/omero/web/venv3/bin/python -m pip install --upgrade .*'omero-py>=5\.19\.0'"]},
         data=OMERO_PY, host=INSTALLED),
    step("migrate-export", "OMERO.web upgrade",
         "OLD_INSTALLATION/bin/omero config get --show-password > properties.backup",
         {"commands": [r"OMERODIR=\S*/old-omerodir .*/opt/omero/web/venv3/bin/omero config get --show-password"]},
         data=MIGRATION, host=MIGRATION_HOST),
    step("migrate-load", "OMERO.web upgrade", "omero config load properties.backup",
         {"commands": [run_as_web_user(r"config load \S*/migrated\.properties")]}, data=MIGRATION, host=MIGRATION_HOST),
    step("upgrade-nginx", "OMERO.web upgrade", "omero web config nginx > new.config",
         {"commands": [SITE]}, data=UPGRADE, host=INSTALLED),
    step("upgrade-restart", "OMERO.web upgrade", "$ omero web restart",
         {"commands": [r"^/etc/init\.d/omero-web restart( |$)"]}, data=UPGRADE, host=INSTALLED),
]
