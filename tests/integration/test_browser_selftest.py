"""
The browser checks can fail, and the browser sends nothing outside the machine: pages with
known faults served on 127.0.0.1 (a plain HTTP and an HTTPS server in a child process),
opened by the same headless Chromium as the deploy tests (``testbed/browser.py``).
"""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.browser_checks import assert_page_complete, without_query

pytestmark = pytest.mark.integration

# Only TEST-NET addresses and the .invalid domain: even a leak would reach no one.
OUTSIDE_SCRIPT = "http://198.51.100.7/tracker.js"
OUTSIDE_REDIRECT = "http://logo.example.invalid/logo.png"

SERVER = r'''
import http.server, ssl, sys, threading
PAGES = {
    "/ok.html": ("text/html", '<html><head><title>ok</title><link rel="stylesheet" href="/ok.css">'
                 '<script src="/ok.js"></script></head><body><img src="/ok.svg"><p>fine</p>'
                 '<div id="above" style="position: absolute; bottom: 100%">off the top</div></body></html>'),
    "/bad.html": ("text/html", '<html><head><title>bad</title><link rel="stylesheet" href="/missing.css">'
                  '<script src="OUTSIDE_SCRIPT"></script></head><body><img src="/away">'
                  '<script>console.error("boom"); fetch("https://api.github.com/repos/ome/omero-insight/tags").catch(() => 0);'
                  ' throw new Error("kaboom");</script></body></html>'),
    "/mixed.html": ("text/html", '<html><head><title>mixed</title><script src="http://127.0.0.1:HTTP_PORT/ok.js">'
                    '</script></head><body><img src="http://127.0.0.1:HTTP_PORT/ok.svg"></body></html>'),
    "/ok.css": ("text/css", "body { color: #333 }"),
    "/ok.js": ("text/javascript", "window.ok = 1;"),
    "/ok.svg": ("image/svg+xml", '<svg xmlns="http://www.w3.org/2000/svg" width="8" height="8"/>'),
}
class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path == "/away":
            self.send_response(302); self.send_header("Location", "OUTSIDE_REDIRECT"); self.end_headers(); return
        kind, body = PAGES.get(self.path, ("text/plain", None))
        self.send_response(200 if body else 404)
        self.send_header("Content-Type", kind); self.end_headers()
        self.wfile.write((body or "not found").replace("HTTP_PORT", str(plain.server_port)).encode())
    def log_message(self, *args):
        pass
plain = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
secure = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
context.load_cert_chain(sys.argv[1], sys.argv[2])
secure.socket = context.wrap_socket(secure.socket, server_side=True)
for server in (plain, secure):
    threading.Thread(target=server.serve_forever, daemon=True).start()
print(plain.server_port, secure.server_port, flush=True)
sys.stdin.read()  # until the test closes our standard input
'''.replace("OUTSIDE_SCRIPT", OUTSIDE_SCRIPT).replace("OUTSIDE_REDIRECT", OUTSIDE_REDIRECT)


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    from tests.integration.test_features import make_test_ca

    tls = make_test_ca(tmp_path_factory.mktemp("browser-selftest"))
    server = subprocess.Popen([sys.executable, "-c", SERVER, str(tls["cert"]), str(tls["key"])],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        plain, secure = server.stdout.readline().split()
        yield {"http": f"http://127.0.0.1:{plain}", "https": f"https://127.0.0.1:{secure}"}
    finally:
        server.stdin.close()
        server.wait(timeout=10)


def test_a_whole_page_passes(site, browser, tmp_path):
    visit = browser.visit(site["http"] + "/ok.html", screenshot=tmp_path / "ok.png", visible=("p", "#above"))
    assert_page_complete(visit)
    assert [r.kind for r in visit.requests] == ["document", "stylesheet", "script", "image"], visit.report()
    assert visit.visible == {"p": True, "#above": False}, visit.visible  # shown, but not on the screen
    assert visit.text.startswith("fine")
    assert Path(tmp_path / "ok.png").read_bytes().startswith(b"\x89PNG")


def test_faults_are_reported_and_outside_requests_never_sent(site, browser):
    visit = browser.visit(site["http"] + "/bad.html")
    assert visit.failed_resources == [f"stylesheet {site['http']}/missing.css -> 404 net::ERR_ABORTED"], visit.report()
    # blocked by the request routing, or (a redirect hop, which routing does not see) stopped
    # at the closed loopback proxy: none got an answer (Browser.visit asserts it too)
    assert sorted(without_query(visit.outside)) == sorted(
        [OUTSIDE_SCRIPT, OUTSIDE_REDIRECT, "https://api.github.com/repos/ome/omero-insight/tags"]), visit.report()
    outside = [r for r in visit.requests if r.url in visit.outside]
    assert outside and all(r.status is None and r.failure for r in outside), visit.report()
    assert sorted(e.split(" (")[0] for e in visit.console_errors) == [
        "Failed to load resource: the server responded with a status of 404", "boom", "uncaught: kaboom"], visit.report()
    with pytest.raises(AssertionError, match="resources not answered 2xx/3xx"):
        assert_page_complete(visit)


def test_mixed_content_is_reported(site, browser):
    visit = browser.visit(site["https"] + "/mixed.html", ignore_https_errors=True)
    assert visit.final_url.startswith("https://")
    # (Chromium lets an https page load scripts from http://127.0.0.1, a "trustworthy" origin:
    # only the request list shows them)
    assert any("ok.js" in entry for entry in visit.mixed_content), visit.report()
    with pytest.raises(AssertionError, match="mixed content"):
        assert_page_complete(visit)


def test_only_the_machine_itself_is_visited(browser):
    with pytest.raises(ValueError, match="only visits 127.0.0.1"):
        browser.visit("http://example.invalid/")


def test_a_browser_with_ports_sees_a_target_at_its_real_ports(site, chromium):
    from testbed.browser import Browser

    published = int(site["http"].rsplit(":", 1)[1])
    visitor = Browser(chromium, ports={80: published})
    try:
        for url in ("http://127.0.0.1/ok.html", "http://localhost/ok.html"):
            visit = visitor.visit(url)
            assert visit.status == 200 and visit.final_url == url, visit.report()
            assert_page_complete(visit)
        with socket.socket() as probe:  # a port nothing listens on
            probe.bind(("127.0.0.1", 0))
            closed = probe.getsockname()[1]
        with pytest.raises(Exception, match="ERR_CONNECTION_REFUSED"):
            visitor.visit(f"http://127.0.0.1:{closed}/")  # other ports stay as they are
    finally:
        visitor.close()
