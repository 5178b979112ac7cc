#!/usr/bin/env bash
# The OMERO.web installation walkthrough (Debian 10 section, adapted to Debian 12 "bookworm"
# and systemd) as one plain shell script, run as root on the target. It is the baseline that
# `tools/dev.sh bench` times the deploy against: the walkthrough's commands, in its order,
# with the same Ice wheel and the same packages, and nothing the deploy adds on top
# (no idempotence checks, no facts, no maintenance page, no pip upgrade).
#
# Parameters (environment):
#   ICE_WHEEL       path of the zeroc_ice-3.6.5 wheel on this host (required; the walkthrough
#                   installs the prebuilt wheel of its distro by URL)
#   OMERODIR        default /opt/omero/web/omero-web
#   VENV            default /opt/omero/web/venv3
#   OMERO_WEB_SPEC  default "omero-web>=5.6.1"
#   WEBPORT         default 80
#   WEBSERVER_NAME  default localhost
#   WEB_USER        default omero-web
#   WORKERS         omero.web.wsgi_workers, default (2 x cores) + 1 as the walkthrough advises
#   EXTRA_CA_DIR    folder of extra CA certificates (*.crt) to trust, for pip behind a
#                   TLS-intercepting proxy (the deploy's omero_web_extra_ca_certificates)
#   CHECK_TIMEOUT   seconds to wait for the login page at the end, default 120
set -euo pipefail

: "${ICE_WHEEL:?set ICE_WHEEL to the path of the zeroc_ice-3.6.5 wheel on this host}"
OMERODIR=${OMERODIR:-/opt/omero/web/omero-web}
VENV=${VENV:-/opt/omero/web/venv3}
OMERO_WEB_SPEC=${OMERO_WEB_SPEC:-omero-web>=5.6.1}
WEBPORT=${WEBPORT:-80}
WEBSERVER_NAME=${WEBSERVER_NAME:-localhost}
WEB_USER=${WEB_USER:-omero-web}
WORKERS=${WORKERS:-$(( 2 * $(nproc) + 1 ))}
CHECK_TIMEOUT=${CHECK_TIMEOUT:-120}
export DEBIAN_FRONTEND=noninteractive

step() { printf '== %s: %s\n' "$(date +%T.%3N)" "$*"; }

# As the omero-web system user, with the walkthrough's environment.
as_web() {
    runuser -u "$WEB_USER" -- env HOME="/home/$WEB_USER" OMERODIR="$OMERODIR" \
        PATH="$VENV/bin:/usr/local/bin:/usr/bin:/bin" "$@"
}

step "user and OMERODIR"
id -u "$WEB_USER" >/dev/null 2>&1 || useradd -m "$WEB_USER"
mkdir -p "$OMERODIR/etc/grid"
chown -R "$WEB_USER" "$OMERODIR"

if [ -n "${EXTRA_CA_DIR:-}" ] && ls "$EXTRA_CA_DIR"/*.crt >/dev/null 2>&1; then
    step "extra CA certificates"
    cp "$EXTRA_CA_DIR"/*.crt /usr/local/share/ca-certificates/
    update-ca-certificates >/dev/null
    export PIP_CERT=/etc/ssl/certs/ca-certificates.crt
fi

step "Installing prerequisites"
apt-get update
apt-get -y install unzip
apt-get -y install python3
apt-get -y install python3-venv
apt-get -y install nginx

step "Creating a virtual environment"
python3 -mvenv "$VENV"

step "Install ZeroC IcePy 3.6"
"$VENV/bin/pip" install --upgrade "$ICE_WHEEL"

step "Install OMERO.web"
"$VENV/bin/pip" install "$OMERO_WEB_SPEC"

step "Configuring OMERO.web and Gunicorn"
as_web omero config set omero.web.server_list '[["localhost", 4064, "omero"]]'
as_web omero config set omero.web.wsgi_workers "$WORKERS"
as_web omero web config nginx --http "$WEBPORT" --servername "$WEBSERVER_NAME" > "$OMERODIR/nginx.conf.tmp"

step "Configuring NGINX"
sed -i.bak -re 's/( default_server.*)/; #\1/' /etc/nginx/nginx.conf
rm -f /etc/nginx/sites-enabled/default
cp "$OMERODIR/nginx.conf.tmp" /etc/nginx/conf.d/omeroweb.conf
# The walkthrough says `service nginx start`; Debian's package already started NGINX, so
# only a reload makes it read the new site.
service nginx reload

step "Running OMERO.web: WhiteNoise"
"$VENV/bin/pip" install --upgrade whitenoise
as_web omero config append -- omero.web.middleware '{"index": 0, "class": "whitenoise.middleware.WhiteNoiseMiddleware"}'

step "Automatically running OMERO.web (systemd unit)"
cat > /etc/systemd/system/omero-web.service <<EOF
[Unit]
Description=OMERO.web
Requires=nginx.service
After=network.target nginx.service

[Service]
User=$WEB_USER
Type=forking
PIDFile=$OMERODIR/var/django.pid
Restart=no
RestartSec=10
Environment="PATH=$VENV/bin:/usr/local/bin:/usr/bin:/bin:/usr/local/sbin:/usr/sbin"
Environment="OMERODIR=$OMERODIR"
ExecStart=$VENV/bin/omero web start
ExecStop=$VENV/bin/omero web stop

[Install]
WantedBy=multi-user.target
EOF
systemctl daemon-reload
systemctl enable omero-web.service
systemctl restart omero-web.service

step "Test installation: the login page through NGINX"
"$VENV/bin/python" - "http://127.0.0.1:$WEBPORT/" "$CHECK_TIMEOUT" <<'EOF'
import sys, time, urllib.request
url, deadline, last = sys.argv[1], time.time() + int(sys.argv[2]), ""
while time.time() < deadline:
    try:
        body = urllib.request.urlopen(url, timeout=10).read().decode("utf-8", "replace")
        if "OMERO.web - Login" in body:
            print("login page OK")
            sys.exit(0)
        last = "no login page in the answer"
    except Exception as exc:
        last = repr(exc)
    time.sleep(0.5)
sys.exit(f"FAILED: GET {url}: {last}")
EOF
step "done"
