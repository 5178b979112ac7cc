"""The configuration diff: idempotent, no duplicate list items, removed data does not linger."""

import json
from pathlib import Path

from model.web_config import WHITENOISE
from model.web_config import plan_changes, serialise, sha256


def cfg(**values):
    """A config fact as OmeroConfig reports OMERO.web's (clear values)."""
    return {k.replace("__", "."): {"sha256": sha256(v), "value": v} for k, v in values.items()}


def test_serialise():
    assert serialise(True) == "true"
    assert serialise(5) == "5"
    assert serialise([["localhost", 4064, "omero"]]) == '[["localhost", 4064, "omero"]]'
    assert serialise(None) is None


def test_fresh_host_sets_everything_and_appends():
    changes = plan_changes({}, None, {"omero.web.debug": "true"}, {"omero.web.middleware": [WHITENOISE]})
    assert changes["set"] == {"omero.web.debug": "true"}
    assert changes["append"] == [("omero.web.middleware", WHITENOISE)]
    assert changes["record"] == {"set": ["omero.web.debug"], "append": {"omero.web.middleware": [WHITENOISE]}}


def test_unchanged_config_is_a_noop():
    middleware = json.dumps([{"index": 1, "class": "x"}, WHITENOISE])
    current = cfg(omero__web__debug="true", omero__web__middleware=middleware)
    record = {"set": ["omero.web.debug"], "append": {"omero.web.middleware": [WHITENOISE]}}
    changes = plan_changes(current, record, {"omero.web.debug": "true"}, {"omero.web.middleware": [WHITENOISE]})
    assert not (changes["set"] or changes["unset"] or changes["append"] or changes["remove"])
    assert not changes["record_changed"]


def test_list_items_never_duplicated():
    middleware = json.dumps([WHITENOISE])
    changes = plan_changes(cfg(omero__web__middleware=middleware), None, {}, {"omero.web.middleware": [WHITENOISE]})
    assert changes["append"] == []


def test_removed_property_is_unset_but_hand_set_ones_stay():
    current = cfg(omero__web__debug="true", omero__web__hand="x")
    record = {"set": ["omero.web.debug"], "append": {}}
    changes = plan_changes(current, record, {}, {})
    assert changes["unset"] == ["omero.web.debug"]


def test_none_value_unsets():
    changes = plan_changes(cfg(omero__web__x="1"), None, {"omero.web.x": None}, {})
    assert changes["unset"] == ["omero.web.x"]
    assert "omero.web.x" not in changes["record"]["set"]


def test_removed_list_item_is_removed():
    cors = {"index": 0.5, "class": "corsheaders.middleware.CorsMiddleware"}
    current = cfg(omero__web__middleware=json.dumps([WHITENOISE, cors]))
    record = {"set": [], "append": {"omero.web.middleware": [WHITENOISE, cors]}}
    changes = plan_changes(current, record, {}, {"omero.web.middleware": [WHITENOISE]})
    assert changes["remove"] == [("omero.web.middleware", cors)]


def test_changed_secret_detected_by_hash_without_clear_value():
    current = {"omero.web.public.password": {"sha256": sha256("old"), "value": None}}
    changes = plan_changes(current, None, {"omero.web.public.password": "new"}, {})
    assert changes["set"] == {"omero.web.public.password": "new"}
    same = plan_changes(current, {"set": ["omero.web.public.password"], "append": {}},
                        {"omero.web.public.password": "old"}, {})
    assert same["set"] == {}


# issue 12 (4): a property set whole and appended to never converges; validation refuses it

import re  # noqa: E402
from types import SimpleNamespace  # noqa: E402

import pytest  # noqa: E402

from model.web_config import desired_config  # noqa: E402
from host.context import Context  # noqa: E402
from host.facts import OmeroConfig  # noqa: E402
from model.web_config import append_sources, appended  # noqa: E402
from model.settings import ValidationError, validate  # noqa: E402
from tests.unit.simulate import SimulatedHost, simulate  # noqa: E402

RICH = {
    "omero_web_cors_origins": ["https://a.example.org"],
    "omero_web_templates": "templates",
    "omero_web_top_links": [["A", "https://a.example.org/"]],
    "omero_web_open_with": [["B", "https://b.example.org/"]],
    "omero_web_apps": [{"spec": "omero-figure", "app": "omero_figure", "top_links": [["F", "figure_index"]],
                        "open_with": [["O", "x"]], "right_plugins": [["R", "r.js", "r"]],
                        "center_plugins": [["C", "c.js", "c"]]}],
    "omero_web_config_append": {"omero.web.ui.metadata_panes": [{"name": "tag", "label": "Tags"}]},
}


def apply(store: dict, changes: dict) -> dict:
    """What ``omero config`` does with a plan: set, unset, append (from [] when unset), remove."""
    store = dict(store)
    store.update(changes["set"])
    for key in changes["unset"]:
        store.pop(key, None)
    for key, item in changes["append"]:
        items = json.loads(store.get(key, "[]"))
        store[key] = json.dumps(items + [item] if item not in items else items)
    for key, item in changes["remove"]:
        store[key] = json.dumps([i for i in json.loads(store[key]) if i != item])
    return store


def converge(to_set, to_append, runs=3) -> list[bool]:
    """Run the plan ``runs`` times against a simulated host; whether each run changed anything."""
    store, record, changed = {}, None, []
    for _ in range(runs):
        current = {k: {"sha256": sha256(v), "value": v} for k, v in store.items()}
        changes = plan_changes(current, record, to_set, to_append)
        changed.append(bool(changes["set"] or changes["unset"] or changes["append"] or changes["remove"]
                            or changes["record_changed"]))
        store, record = apply(store, changes), changes["record"]
    return changed


def test_set_and_appended_property_flip_flops_without_the_check():
    # what validation now refuses: the set value drops the item, the next run appends it again
    flips = converge({"omero.web.ui.top_links": "[]"}, {"omero.web.ui.top_links": [["A", "a"]]}, runs=5)
    assert flips == [True] * 5


def test_validated_data_converges_in_one_run_and_stays(tmp_path):
    (tmp_path / "templates").mkdir()
    data = {**RICH, "omero_web_templates": str(tmp_path / "templates"),
            "omero_web_config": {"omero.web.page_size": 120, "omero.web.debug": False}}
    ctx = Context(validate(data), SimpleNamespace(cpus=2, service_manager="systemd", redis_package="redis-server",
                                                  cron_package="cron"))
    to_set, to_append = desired_config(ctx)
    assert converge(to_set, to_append) == [True, False, False]


@pytest.mark.parametrize("prop", ["omero.web.middleware", "omero.web.apps", "omero.web.template_dirs",
                                  "omero.web.ui.top_links", "omero.web.open_with", "omero.web.ui.right_plugins",
                                  "omero.web.ui.center_plugins", "omero.web.ui.metadata_panes"])
def test_a_property_set_whole_and_appended_to_is_refused(tmp_path, prop):
    (tmp_path / "templates").mkdir()
    data = {**RICH, "omero_web_templates": str(tmp_path / "templates")}
    for where in ("omero_web_config", "app"):
        bad = dict(data)
        if where == "omero_web_config":
            bad["omero_web_config"] = {prop: []}
        else:
            bad["omero_web_apps"] = [{**data["omero_web_apps"][0], "config": {prop: []}}]
        with pytest.raises(ValidationError) as refused:
            validate(bad, "web1")
        setter = "omero_web_config" if where == "omero_web_config" else "omero_web_apps (omero_figure's config)"
        assert re.search(rf"{re.escape(setter)} sets {re.escape(prop)} whole and .+ appends to it", str(refused.value))


def test_whitenoise_and_deploy_owned_properties_are_named():
    with pytest.raises(ValidationError) as refused:
        validate({"omero_web_config": {"omero.web.middleware": []},
                  "omero_web_config_append": {"omero.web.server_list": [["h", 1, "n"]],
                                              "omero.web.nginx_server_extra_config": ["gzip on;"]}}, "web1")
    text = str(refused.value)
    assert "omero_web_config sets omero.web.middleware whole and the WhiteNoise middleware entry" in text
    assert "omero_web_server_host/_port/_name sets omero.web.server_list whole and omero_web_config_append" in text
    assert "omero.web.nginx_server_extra_config whole and omero_web_config_append appends" in text


def test_validation_and_the_config_section_share_one_list_of_appends(tmp_path):
    """What validation checks against (features.append_sources) is what the config section appends."""
    (tmp_path / "templates").mkdir()
    for data in ({}, {**RICH, "omero_web_templates": str(tmp_path / "templates")},
                 {"omero_web_cors_allow_all": True}):
        settings = validate(data)
        ctx = Context(settings, SimpleNamespace(cpus=2, service_manager="systemd", redis_package="redis-server",
                                                cron_package="cron"))
        _, to_append = desired_config(ctx)
        assert to_append == appended(settings)
        # and every feature's own append is in it (nothing appended outside the shared definition)
        for prop, items in ctx.features.append.items():
            assert all(item in to_append[prop] for item in items), prop
        for prop in to_append:  # each one is refused when also set whole
            with pytest.raises(ValidationError, match=re.escape(f"sets {prop} whole")):
                validate({**data, "omero_web_config": {prop: []}})
        assert {p for _, part in append_sources(settings) for p in part} == set(to_append)


# issue 12 (6): a corrupted managed-names record fails the run naming the file, no traceback

RECORD = "/opt/omero/web/omero-web/etc/omeroweb-deploy-managed.json"


@pytest.mark.parametrize("record, why", [
    (['{"set": ["omero.web.deb'], "not JSON"),
    ([], "empty file"),
    (["garbage"], "not JSON"),
])
def test_corrupted_record_is_reported_not_raised(record, why):
    hashed = '{"config": {"omero.web.debug": {"sha256": "x", "value": "true"}}, "defaults": {}}'
    fact = OmeroConfig().process([hashed, "---", *record])
    assert fact["config"]["omero.web.debug"]["value"] == "true"
    assert fact["managed"] is None and fact["managed_error"].startswith(why)
    no_record = OmeroConfig().process(['{"config": {}, "defaults": {}}', "---", "null"])
    assert no_record == {"config": {}, "defaults": {}, "managed": None}  # no record yet


@pytest.mark.parametrize("record", [['{"set": ["omero.web.debug"], "append": {"omero'], ['["a list"]'],
                                    ['{"set": "omero.web.debug", "append": {}}']])
def test_simulated_run_with_a_corrupted_record_changes_no_configuration(record):
    host = SimulatedHost("debian", "12", extra_responses={
        re.compile(r"config.xml reader"): ['{"config": {}, "defaults": {}}', "---", *record]})
    sim = simulate(host, {"omero_web_config": {"omero.web.debug": True}})
    failure = sim.find(r"is corrupted")
    assert len(failure) == 1 and failure[0].endswith("exit 1")
    assert RECORD in failure[0] and f"rm {RECORD}" in failure[0]
    assert not sim.find(r"omero config (load|set|append|remove)") and RECORD not in sim.uploads


CONFIG_XML = Path(__file__).parent / "data" / "config-xml"


def read_config(path: Path | str, declared=(), clear=None, wanted=None, host_secret: str = "",
                defaults: str = "") -> dict:
    """The fact's config.xml reader, run here as on a host (by a python of the host's kind),
    its standard input as the fact's command makes it (wanted secrets, host secret, defaults)."""
    import subprocess
    import sys

    from host.facts import CONFIG_READER
    from model.secrecy import SECRET_NAME

    rule = json.dumps({"name": SECRET_NAME, "declared": list(declared), "clear": clear})
    stdin = f"{json.dumps(wanted) if wanted is not None else ''}\n{host_secret}\n{defaults}"
    return json.loads(subprocess.run([sys.executable, "-I", "-c", CONFIG_READER, str(path), rule], input=stdin,
                                     capture_output=True, text=True, check=True).stdout)


@pytest.mark.parametrize("name", ["default-profile", "other-profile-active"])
def test_config_reader_reads_what_omero_config_get_shows(name):
    """
    Files written by omero-py's own `omero config set` / `config def` (tests/unit/data/config-xml):
    the reader finds the values `omero config get` shows (ConfigXml: the active profile, the
    omero.config.* keys left out), values with quotes, '=', '&', '<', non-ASCII and a newline.
    """
    expected = json.loads((CONFIG_XML / "expected.json").read_text())[name]["values"]
    secrets = ("omero.web.public.password", "omero.web.secret_key", "omero.web.server_list")
    # the wanted secrets (the control machine's, on stdin): the first right, the others wrong or not sent
    right = next(k for k in secrets if k in expected)
    wanted = {right: expected[right], "omero.web.secret_key" if right != "omero.web.secret_key" else "x": "other"}
    read = read_config(CONFIG_XML / f"{name}.xml", declared=["omero.web.server_list"], wanted=wanted)
    assert sorted(read["config"]) == sorted(expected) and read["defaults"] == {}
    for key, value in expected.items():
        if key in secrets:  # compared on the host: neither the value nor a digest of it comes back
            assert read["config"][key] == {"same": key == right}, key
        else:
            assert read["config"][key] == {"sha256": sha256(value), "value": value}, key
    for value in (v for k, v in expected.items() if k in secrets):
        assert value not in json.dumps(read) and sha256(value) not in json.dumps(read)


def test_config_reader_puts_the_hosts_own_secret_in_place_of_its_token(tmp_path):
    from model.omero_install import HOST_SECRET_TOKEN

    xml = tmp_path / "config.xml"
    xml.write_text('<icegrid><properties id="default"><property name="omero.web.caches" '
                   'value="redis://:f00d@127.0.0.1:6379/0"/></properties></icegrid>')
    wanted = {"omero.web.caches": f"redis://:{HOST_SECRET_TOKEN}@127.0.0.1:6379/0"}
    declared = ["omero.web.caches"]
    assert read_config(xml, declared, wanted=wanted, host_secret="f00d")["config"]["omero.web.caches"] == {"same": True}
    for other in ("beef", ""):  # another password on the host, or none yet
        assert read_config(xml, declared, wanted=wanted, host_secret=other)["config"]["omero.web.caches"] == {
            "same": False}


def test_config_reader_clear_keys_defaults_and_a_missing_or_empty_file(tmp_path):
    xml = CONFIG_XML / "default-profile.xml"
    server = read_config(xml, clear=["omero.web.prefix", "omero.web.debug"],
                         defaults="omero.web.debug=false\nomero.web.caches=redis://:x@h/0\nnot a property\n")
    assert server["config"]["omero.web.prefix"] == {"sha256": sha256("/omero"), "value": "/omero"}
    assert server["config"]["omero.web.login_view"]["value"] is None
    assert server["defaults"] == {"omero.web.debug": "false"}
    (tmp_path / "empty.xml").write_text("")
    for path in (tmp_path / "missing.xml", tmp_path / "empty.xml"):
        assert read_config(path) == {"config": {}, "defaults": {}}
