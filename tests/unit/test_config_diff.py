"""The configuration diff: idempotent, no duplicate list items, removed data does not linger."""

import json

from operations.config import WHITENOISE, plan_changes, serialise, sha256


def cfg(**values):
    """A config fact as OmeroWebConfig reports it (clear values)."""
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
