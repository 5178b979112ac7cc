"""A real headless Chromium for checking deployed pages as a visitor's browser sees them.

Debian's ``chromium`` package (installed as root by :func:`ensure_chromium`, like the other
host prerequisites in :mod:`testbed.engine`) driven by Playwright for Python with
``executable_path``: Playwright's own browser downloads are never used.

Only the machine itself may receive traffic (the test targets publish their ports on
127.0.0.1). Every request a page makes to another host is aborted before it is sent and
recorded in :attr:`Visit.outside`. Two backstops cover what Playwright's request routing
does not see (redirect hops, Chromium's own background requests): Chromium resolves no
host name but 127.0.0.1 and localhost, and its proxy for every other host is a closed port
on 127.0.0.1. A request that nonetheless got an answer from outside fails the visit.

A browser made with ``ports`` sees one target at its real ports, as a visitor of the server
would: ``Browser(ports={443: 32784})`` sends https://127.0.0.1/ (and localhost) to the port
that Docker published, so absolute redirects (HTTP to HTTPS, ``/pub/<id>``) land where they
say.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from .engine import Log, apt_install

CHROMIUM = "/usr/bin/chromium"
#: Debian packages and a file each installs: the browser, and a font to render text with.
PACKAGES = {"chromium": CHROMIUM, "fonts-dejavu-core": "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"}
LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost"})
#: Resources that must be answered 2xx/3xx for a page to count as complete.
CHECKED_RESOURCES = frozenset({"stylesheet", "script", "image", "font"})
#: A closed port on the loopback interface: the proxy of every host that is not local.
DEAD_PROXY = "http://127.0.0.1:9"
VIEWPORT = {"width": 1024, "height": 640}


def ensure_chromium(log: Log = print) -> str:
    """Return Debian's Chromium, installing it (and a font) with apt-get as root if missing."""
    missing = [package for package, path in PACKAGES.items() if not os.path.exists(path)]
    if missing:
        apt_install(missing, log)
    return CHROMIUM


def is_local(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme in ("http", "https") and parts.hostname in LOCAL_HOSTS


@dataclass
class Request:
    url: str
    kind: str  # Playwright's resource type: document, stylesheet, script, image, xhr, fetch, ...
    status: int | None = None  # of the response; None when it got none
    failure: str | None = None  # Chromium's error when it got none (net::ERR_...)

    def __str__(self) -> str:
        answer = " ".join(str(part) for part in (self.status, self.failure) if part is not None)
        return f"{self.kind} {self.url} -> {answer or 'no answer'}"


@dataclass
class Visit:
    """What the browser did for one page: the requests, the console, where it landed."""

    url: str
    final_url: str = ""
    status: int | None = None  # of the page finally shown
    redirects: list[tuple[int, str]] = field(default_factory=list)  # (status, url) of each hop before it
    title: str = ""
    text: str = ""  # the page's visible text
    requests: list[Request] = field(default_factory=list)
    outside: list[str] = field(default_factory=list)  # requests to other hosts: never sent
    console: list[tuple[str, str, str]] = field(default_factory=list)  # (type, text, source URL)
    page_errors: list[str] = field(default_factory=list)  # uncaught exceptions
    visible: dict[str, bool] = field(default_factory=dict)  # selector -> wholly on the first screen
    screenshot: Path | None = None
    seconds: float = 0.0

    @property
    def failed_resources(self) -> list[str]:
        """Stylesheets, scripts, images and fonts of the site not answered 2xx/3xx."""
        return [str(r) for r in self.requests if r.kind in CHECKED_RESOURCES and is_local(r.url)
                and (r.status is None or not 200 <= r.status < 400)]

    @property
    def console_errors(self) -> list[str]:
        """Console errors and uncaught exceptions, except the failed loads of the requests we blocked
        and the page's own status (a 502 maintenance page is one; :attr:`status` says it)."""
        errors = [f"{text} ({source})" for kind, text, source in self.console
                  if kind == "error" and source not in self.outside
                  and not (source == self.final_url and text.startswith("Failed to load resource"))]
        return errors + [f"uncaught: {error}" for error in self.page_errors]

    @property
    def mixed_content(self) -> list[str]:
        """On an https page: requests over plain http (but the hops that led to the page, such as
        an HTTP to HTTPS redirect), and Chromium's own mixed-content warnings."""
        if not self.final_url.startswith("https:"):
            return []
        hops = {url for _, url in self.redirects}
        found = [str(r) for r in self.requests if r.url.startswith("http:") and r.url not in hops]
        return found + [text for _, text, _ in self.console if "Mixed Content" in text]

    def report(self) -> str:
        """Everything the browser saw, for assertion messages."""
        lines = [f"visit {self.url} -> {self.status} {self.final_url} ({self.seconds:.1f}s) title {self.title!r}"]
        lines += [f"  redirect {status} {url}" for status, url in self.redirects]
        lines += [f"  request {r}" for r in self.requests]
        lines += [f"  blocked (never sent) {url}" for url in self.outside]
        lines += [f"  console {kind}: {text} ({source})" for kind, text, source in self.console]
        lines += [f"  page error: {error}" for error in self.page_errors]
        return "\n".join(lines)


def on_screen(locator) -> bool:
    """Shown, and wholly inside the viewport."""
    box = locator.bounding_box() if locator.is_visible() else None
    return box is not None and box["x"] >= 0 and box["y"] >= 0 and \
        box["x"] + box["width"] <= VIEWPORT["width"] and box["y"] + box["height"] <= VIEWPORT["height"]


class _Driver:
    """Playwright's driver, one per process (its sync API cannot be started twice), shared by
    the browsers open at the same time and stopped with the last of them."""

    playwright = None
    users = 0

    @classmethod
    def take(cls):
        from playwright.sync_api import sync_playwright

        if cls.playwright is None:
            cls.playwright = sync_playwright().start()
        cls.users += 1
        return cls.playwright

    @classmethod
    def give_back(cls) -> None:
        cls.users -= 1
        if cls.users == 0 and cls.playwright is not None:
            playwright, cls.playwright = cls.playwright, None
            playwright.stop()


class Browser:
    """One headless Chromium; :meth:`visit` opens each page in a fresh context (no cookies)."""

    def __init__(self, executable: str = CHROMIUM, ports: dict[int, int] | None = None):
        # first matching rule wins: the real ports of the target, then the local hosts as they
        # are, then every other name resolves to nothing
        rules = [f"MAP {host}:{port} 127.0.0.1:{published}"
                 for port, published in (ports or {}).items() for host in sorted(LOCAL_HOSTS)]
        rules += [f"MAP {host} 127.0.0.1" for host in sorted(LOCAL_HOSTS)] + ["MAP * ~NOTFOUND"]
        playwright = _Driver.take()
        try:
            self._browser = playwright.chromium.launch(
                executable_path=executable,
                headless=True,
                proxy={"server": DEAD_PROXY, "bypass": ",".join(sorted(LOCAL_HOSTS))},
                args=[
                    "--host-resolver-rules=" + ", ".join(rules),
                    "--no-pings",
                    "--dns-prefetch-disable",
                ],
            )
        except BaseException:
            _Driver.give_back()
            raise

    @property
    def version(self) -> str:
        return self._browser.version

    def visit(self, url: str, screenshot: Path | None = None, ignore_https_errors: bool = False,
              visible: tuple[str, ...] = (), settle_ms: int = 250) -> Visit:
        """Open ``url``, wait until the network is idle (the page's own scripts' requests are done).

        ``visible``: CSS selectors to record in :attr:`Visit.visible`: whether the first element
        is shown and wholly inside the viewport (what a visitor sees without scrolling);
        ``ignore_https_errors`` for certificates the browser cannot check (a test CA).
        """
        if not is_local(url):
            raise ValueError(f"{url}: the browser only visits 127.0.0.1 and localhost")
        started = time.monotonic()
        visit = Visit(url)
        by_request: dict[object, Request] = {}
        context = self._browser.new_context(viewport=VIEWPORT, ignore_https_errors=ignore_https_errors,
                                            service_workers="block")
        try:
            page = context.new_page()

            def route(route) -> None:
                if is_local(route.request.url):
                    route.continue_()
                else:
                    route.abort("blockedbyclient")

            def on_request(request) -> None:
                # every request, redirect hops included (which routing does not see)
                by_request[request] = entry = Request(request.url, request.resource_type)
                visit.requests.append(entry)
                if not is_local(request.url):
                    visit.outside.append(request.url)

            def on_response(response) -> None:
                if response.request in by_request:
                    by_request[response.request].status = response.status

            def on_failed(request) -> None:
                # (a response may have come: a 404 stylesheet is then aborted; its status stays)
                if request in by_request:
                    by_request[request].failure = request.failure

            context.route("**/*", route)
            page.on("request", on_request)
            page.on("response", on_response)
            page.on("requestfailed", on_failed)
            page.on("console", lambda message: visit.console.append(
                (message.type, message.text, message.location.get("url", ""))))
            page.on("pageerror", lambda error: visit.page_errors.append(str(error)))

            response = page.goto(url, wait_until="load")
            page.wait_for_load_state("networkidle")
            page.wait_for_timeout(settle_ms)  # late console messages of the scripts
            visit.final_url, visit.title = page.url, page.title()
            visit.status = response.status if response else None
            hop = response.request.redirected_from if response else None
            while hop is not None:
                hop_response = hop.response()
                visit.redirects.insert(0, (hop_response.status if hop_response else 0, hop.url))
                hop = hop.redirected_from
            visit.text = page.inner_text("body")
            visit.visible = {selector: on_screen(page.locator(selector).first) for selector in visible}
            if screenshot is not None:
                screenshot.parent.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(screenshot))
                visit.screenshot = screenshot
            # what left the machine would have an answer: nothing may
            answered = [r for r in visit.requests if not is_local(r.url) and r.status is not None]
            assert not answered, f"requests outside 127.0.0.1 were answered: {answered}\n{visit.report()}"
            visit.seconds = time.monotonic() - started
            return visit
        finally:
            context.close()

    def close(self) -> None:
        try:
            self._browser.close()
        finally:
            _Driver.give_back()
