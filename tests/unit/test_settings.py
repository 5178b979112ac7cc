"""Validation of inventory data: defaults, normalisation, and errors naming key, value and fix."""

from pathlib import Path

import pytest

from model import settings
from model.settings import KEYS, ValidationError, validate
from tools.readme_table import key_index

ROOT = Path(__file__).resolve().parents[2]


def test_defaults_validate():
    s = validate({})
    assert s.venv == "/opt/omero/web/venv3"
    assert s.omerodir == "/opt/omero/web/omero-web"
    assert s.version_spec == "omero-web>=5.6.1"
    assert s.nginx_port == 80
    assert s.tags == () and s.skip_tags == ()
    assert dict(s.config) == {}


def test_every_key_is_prefixed_documented_and_defaulted():
    for key in KEYS:
        assert key.name.startswith("omero_web_")
        assert key.doc.strip()
        key.check(key.default)  # every default passes its own check


def test_comma_separated_lists_from_cli_data():
    s = validate({"omero_web_tags": "nginx, config"})
    assert s.tags == ("nginx", "config")


def test_trailing_slash_removed_from_paths():
    assert validate({"omero_web_venv": "/srv/venv/"}).venv == "/srv/venv"


@pytest.mark.parametrize(
    "data, fragment",
    [
        ({"omero_web_nginx_port": 0}, "omero_web_nginx_port = 0: expected a whole number from 1 to 65535"),
        ({"omero_web_nginx_port": "80"}, "omero_web_nginx_port = '80'"),
        ({"omero_web_venv": "opt/venv"}, "expected an absolute path"),
        ({"omero_web_tags": "nginx,bogus"}, "unknown tag(s) bogus; valid tags:"),
        ({"omero_web_ngnix_port": 8080}, "unknown key; did you mean omero_web_nginx_port?"),
        ({"omero_web_config": {"web.debug": True}}, "expected property names like"),
        ({"omero_web_config": ["omero.web.debug"]}, "expected a mapping"),
        ({"omero_web_config": {"omero.web.x": "a\nb"}}, "single-line value"),
        ({"omero_web_config_append": {"omero.web.apps": "x"}}, "expected a list of items"),
        ({"omero_web_ice_source": "wheel"}, "needs omero_web_ice_wheel"),
        ({"omero_web_ice_source": "wheel", "omero_web_ice_wheel": "/nonexistent/x.whl"}, "does not exist"),
        ({"omero_web_ice_wheel": "https://example.org/zeroc_ice.whl"}, "only used with omero_web_ice_source"),
        ({"omero_web_extra_ca_certificates": ["/nonexistent.pem"]}, "not found: /nonexistent.pem"),
        ({"omero_web_version_spec": "omero-web; rm -rf /"}, "expected a pip requirement"),
        ({"omero_web_tags": "nginx", "omero_web_skip_tags": "nginx"}, "both name nginx"),
        ({"omero_web_omerodir": "/opt/venv/etc", "omero_web_venv": "/opt/venv"}, "must not be the virtualenv"),
        ({"omero_web_user": "Root User"}, "expected a system user name"),
        ({"omero_web_service_manager": "upstart"}, "expected one of: auto, systemd, initd"),
        ({"omero_web_wsgi_workers": True}, "expected a whole number"),
        ({"omero_web_pip_index_url": "pypi.example.org"}, "expected an http://"),
        ({"omero_web_nginx_server_name": "a;b"}, "host names"),
        ({"omero_web_healthcheck_timeout": 0}, "omero_web_healthcheck_timeout = 0: expected a whole number from 5"),
        ({"omero_web_server_port": "4064x"}, "omero_web_server_port = '4064x'"),
        ({"omero_web_ice_source": "pip"}, "expected one of: auto, build, wheel"),
        ({"omero_web_pip_extra_index_urls": ["ftp://mirror"]}, "expected an http://, https:// or file:// URL"),
        ({"omero_web_wsgi_worker_class": "eventlet"}, "expected one of: sync, gevent"),
        ({"omero_web_config": {"omero.web.x": {1, 2}}}, "expected a string, number, boolean, list or mapping"),
        ({"omero_web_python": "python3"}, "omero_web_python = 'python3': expected an absolute path"),
        ({"omero_web_ice_source": "wheel", "omero_web_ice_wheel": "https://example.org/ice.tar.gz"}, "ending in .whl"),
        ({"omero_web_omerodir": "/opt/omero web"}, "without spaces"),
        # optional features: bad values, and conflicting or incomplete combinations
        ({"omero_web_prefix": "omero"}, "omero_web_prefix = 'omero': expected a URL path with a leading slash"),
        ({"omero_web_prefix": "/omero/"}, "no trailing slash"),
        ({"omero_web_cors_origins": ["https://a.org"], "omero_web_cors_allow_all": True}, "exclude each other"),
        ({"omero_web_cors_origins": ["a.org/path"]}, "expected origins like 'https://example.org'"),
        ({"omero_web_wsgi_worker_connections": 500}, "set omero_web_wsgi_worker_class = 'gevent'"),
        ({"omero_web_wsgi_threads": 4, "omero_web_wsgi_worker_class": "gevent"}, "only applies to sync workers"),
        ({"omero_web_public_enabled": True, "omero_web_public_user": "pub", "omero_web_public_url_filter": "^/x"},
         "needs omero_web_public_password"),
        ({"omero_web_public_password": "pw"}, "omero_web_public_password set but omero_web_public_enabled is False"),
        ({"omero_web_public_enabled": True, "omero_web_public_user": "p", "omero_web_public_password": "x",
          "omero_web_public_url_filter": "^/(webgateway"}, "expected a regular expression"),
        ({"omero_web_https": True}, "needs both omero_web_tls_certificate and omero_web_tls_key"),
        ({"omero_web_https": True, "omero_web_tls_self_signed": True, "omero_web_https_port": 80},
         "both 80: HTTP must redirect"),
        ({"omero_web_tls_self_signed": True}, "only used with omero_web_https = True"),
        ({"omero_web_tls_key": "/nonexistent/key.pem"}, "expected an existing file on the control machine"),
        ({"omero_web_index_template": "mysite/index.html"}, "needs omero_web_templates"),
        ({"omero_web_templates": "/nonexistent-templates"}, "expected an existing folder"),
        ({"omero_web_clearsessions_time": "3am"}, "expected a time of day as HH:MM"),
        ({"omero_web_apps": [{"spec": "omero-figure"}]}, "expected both 'spec' (pip requirement) and 'app'"),
        ({"omero_web_apps": [{"spec": "omero-figure", "app": "omero_figure", "toplinks": []}]},
         "unknown field(s) toplinks"),
        ({"omero_web_apps": "omero-figure"}, "expected a list of apps"),
        ({"omero_web_publications": {"paper 1": "project-1"}}, "publication identifier 'paper 1'"),
        ({"omero_web_publications": {"paper-1": "project 1"}}, "expected 'project-<id>'"),
        ({"omero_web_config": {"omero.web.prefix": "/omero"}}, "which omero_web_prefix manages: set it there only"),
        ({"omero_web_redis_url": "127.0.0.1:6379"}, "expected a redis:// URL"),
        ({"omero_web_omero_server_config": {"omero.web.debug": True}}, "belong in omero_web_config"),
        ({"omero_web_omero_server_group_config": {"staff": {"omero.policy.binary_access": "-read"}}},
         "expected a numeric OMERO group id"),
        ({"omero_web_omero_server_group_config": {15: {"omero.policy.binary_access": "-read"}}},
         "needs omero_web_omero_server_admin_password"),
        ({"omero_web_top_links": ["Figure"]}, "expected a list of lists or mappings"),
    ],
)
def test_bad_input_names_key_value_and_expectation(data, fragment):
    with pytest.raises(ValidationError) as err:
        validate(data, host="web1")
    message = str(err.value)
    assert "web1" in message
    assert fragment in message


def test_all_problems_reported_at_once():
    with pytest.raises(ValidationError) as err:
        validate({"omero_web_nginx_port": -1, "omero_web_venv": "x"})
    assert len(err.value.problems) == 2


def test_docs_document_every_key():
    with open(ROOT / "docs" / "configuration.md") as doc:
        text = doc.read()
    assert settings.markdown_table() in text, "docs/configuration.md data table is stale: run `python -m tools.readme_table`"


def test_readme_indexes_every_key_and_tag():
    with open(ROOT / "README.md") as readme:
        text = readme.read()
    assert key_index() in text, "README key index is stale: run `python -m tools.readme_table`"
    index = text[text.index("<!-- key-index"):text.index("<!-- end key-index -->")]
    for key in KEYS:
        assert f"`{key.name}`" in index
    tags = text[text.index("## Tags"):]
    tags = tags[:tags.index("\n## ")]
    for tag in settings.TAGS:
        assert f"`{tag}`" in tags, f"README's Tags section does not list the tag {tag}"
