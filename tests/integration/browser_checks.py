"""What a real browser must see of a deployed OMERO.web page (see ``testbed/browser.py``).

Each assertion names what was wrong (the list of failed requests, console errors, ...) and
adds the browser's whole report of the visit: every request with its answer.
"""

from __future__ import annotations

from testbed.browser import Browser, Visit

LOGIN_TITLE = "OMERO.web - Login"
LOGIN_FORM = ("input[name=username]", "input[name=password]", "input[type=submit]")
MAINTENANCE = "OMERO.web is down for maintenance"
#: What the login page's script asks for, from every visitor's browser, unless
#: omero_web_show_client_downloads is false (the OMERO.insight download links).
GITHUB_TAGS = "https://api.github.com/repos/ome/omero-insight/tags"


def without_query(urls: list[str]) -> list[str]:
    return [url.split("?", 1)[0] for url in urls]


def assert_page_complete(visit: Visit, outside: tuple[str, ...] = ()) -> None:
    """Every stylesheet, script, image and font of the site answered 2xx/3xx, no console error,
    no mixed content, and exactly the ``outside`` requests (URLs without query) blocked."""
    problems = []
    if visit.failed_resources:
        problems.append(f"resources not answered 2xx/3xx: {visit.failed_resources}")
    if visit.console_errors:
        problems.append(f"console errors: {visit.console_errors}")
    if visit.mixed_content:
        problems.append(f"mixed content: {visit.mixed_content}")
    if without_query(visit.outside) != list(outside):
        problems.append(f"requests outside the site (blocked): {visit.outside}, expected {list(outside)}")
    assert not problems, "\n".join(problems) + "\n" + visit.report()


def visit_login(browser: Browser, url: str, visible: tuple[str, ...] = (), **options) -> Visit:
    """Open a login page, recording whether its form (and ``visible``) is on the first screen."""
    visit = browser.visit(url, visible=LOGIN_FORM + visible, **options)
    print(f"{url}: {visit.status} {visit.title!r}, {len(visit.requests)} requests, blocked {visit.outside}, "
          f"{visit.seconds:.1f}s")
    return visit


def assert_login_page(visit: Visit, outside: tuple[str, ...] = ()) -> None:
    assert visit.status == 200 and visit.title == LOGIN_TITLE, visit.report()
    hidden = [selector for selector, shown in visit.visible.items() if not shown]
    assert not hidden, f"not on the first screen: {hidden}\n{visit.report()}"
    assert_page_complete(visit, outside)


def assert_maintenance_page(visit: Visit) -> None:
    assert visit.status == 502 and MAINTENANCE in visit.text, visit.report()
    assert_page_complete(visit)
