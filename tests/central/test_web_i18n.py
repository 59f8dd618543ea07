"""The pages' message catalogue: complete in both languages, and covering every key and enum.

A key the pages name (``{{t:key}}`` in HTML, ``fsv.t("key")`` / ``fsv.label("group", ...)``
in scripts, ``"page.*"`` in Python) or a value of an enum the system produces (alert kinds,
stations, states, actions, roles, levels, severities) without a message fails here.
"""

from __future__ import annotations

import re
import typing
from pathlib import Path

import pytest
import yaml

from central.alerts.workflow import Action, State
from central.regulation.audit import AUDITED_ACTIONS
from central.regulation.capability import SUB_LANE_STATES
from central.regulation.inspections import RATINGS, RESULTS
from central.regulation.org import ENTERPRISE_TYPES, LEVELS
from central.regulation.roles import Role
from central.web import NAV, i18n
from edge_agent.mqtt.retention_alerts import SEVERITY as RETENTION_KINDS
from fsv_contract.payloads import KNOWN_KINDS, EventPayload

ROOT = Path(__file__).resolve().parents[2]
WEB = ROOT / "central" / "web"
SCRIPTS = sorted((WEB / "static").glob("*.js"))
FRAGMENTS = sorted(WEB.glob("*.html"))
PYTHON_PAGES = [
    WEB / "__init__.py",
    WEB / "report_print.py",
    ROOT / "central" / "video" / "pages.py",
    ROOT / "central" / "api" / "public_routes.py",
    ROOT / "central" / "web" / "public_page.py",
    ROOT / "central" / "api" / "audit_routes.py",
    WEB / "poster.py",
]
KEY_SHAPE = re.compile(r"^[a-z0-9_]+(\.[a-z0-9_]+)+$")
PARAM = re.compile(r"\{(\w+)\}")


def _groups() -> set[str]:
    return {key.split(".")[0] for key in i18n.catalogue(i18n.DEFAULT_LANG)}


def keys_named_in_pages() -> set[str]:
    """Every literal message key in the pages' HTML, scripts and Python page handlers."""
    keys: set[str] = set()
    for path in FRAGMENTS:
        keys |= set(i18n.PLACEHOLDER.findall(path.read_text("utf-8")))
    groups = _groups()
    literal = re.compile(r"""["'`]([a-z0-9_]+(?:\.[a-z0-9_]+)+)["'`]""")
    for path in [*SCRIPTS, *PYTHON_PAGES]:
        for key in literal.findall(path.read_text("utf-8")):
            # Only strings shaped like a key of a known group ("err.push"), not file names.
            if key.split(".")[0] in groups and not key.endswith((".js", ".css", ".html")):
                keys.add(key)
    return keys


def label_groups_in_scripts() -> set[str]:
    """The enum groups scripts translate with fsv.label("group", value)."""
    found: set[str] = set()
    for path in SCRIPTS:
        found |= set(re.findall(r"""fsv\.label\(\s*["']([a-z_]+)["']""", path.read_text("utf-8")))
    return found


def enum_values() -> dict[str, set[str]]:
    """Every value the system can put in front of a user, by catalogue group."""
    stations = {
        yaml.safe_load(p.read_text("utf-8"))["station"]
        for p in (ROOT / "models" / "stations").glob("*.yaml")
    }
    severities = set(typing.get_args(EventPayload.model_fields["severity"].annotation))
    return {
        "kind": set(KNOWN_KINDS) | set(RETENTION_KINDS),
        "station": stations,
        "state": {s.value for s in State},
        "action": {a.value for a in Action},
        "history": {a.value for a in Action},
        "role": {r.value for r in Role},
        "level": set(LEVELS),
        "etype": set(ENTERPRISE_TYPES),
        "severity": severities,
        "export": {"requested", "receiving", "done", "failed"},
        "camera": {"online", "offline", "unknown"},
        "sub_lane": set(SUB_LANE_STATES),
        "result": set(RESULTS),  # inspections, on the public kitchen page
        "rating": set(RATINGS),
        "audit_action": set(AUDITED_ACTIONS),
    }


@pytest.mark.parametrize("lang", i18n.LANGS)
def test_both_languages_hold_the_same_keys_and_parameters(lang: str) -> None:
    reference = i18n.catalogue(i18n.DEFAULT_LANG)
    messages = i18n.catalogue(lang)
    assert set(messages) == set(reference)
    for key, text in messages.items():
        assert KEY_SHAPE.match(key), key
        assert text.strip(), f"{lang}: {key} is empty"
        assert set(PARAM.findall(text)) == set(PARAM.findall(reference[key])), (lang, key)


def test_every_key_the_pages_name_is_in_the_catalogue() -> None:
    named = keys_named_in_pages()
    assert len(named) > 100  # the scan found the pages' keys, not nothing
    missing = sorted(named - set(i18n.catalogue(i18n.DEFAULT_LANG)))
    assert missing == [], f"untranslated keys: {missing}"


def test_every_enum_value_has_a_message() -> None:
    messages = i18n.catalogue(i18n.DEFAULT_LANG)
    assert label_groups_in_scripts() <= set(enum_values()), "a label group is not checked here"
    missing = sorted(
        f"{group}.{value}"
        for group, values in enum_values().items()
        for value in values
        if f"{group}.{value}" not in messages
    )
    assert missing == [], f"enum values without a message: {missing}"
    # Chinese first: the default catalogue says it in Chinese, not in identifiers.
    assert messages["kind.after_hours_activity"] == "非工作时间作业"
    assert re.search(r"[\u4e00-\u9fff]", messages["station.harmless_disposal"])


def test_menu_and_titles_are_translated() -> None:
    messages = i18n.catalogue(i18n.DEFAULT_LANG)
    assert all(key in messages for _href, key, _perm in NAV)


def test_fill_escapes_and_refuses_an_unknown_key() -> None:
    assert i18n.fill("zh-CN", "<b>{{t:nav.inbox}}</b>") == "<b>预警</b>"
    assert i18n.fill("en", "<b>{{t:nav.inbox}}</b>") == "<b>Alerts</b>"
    assert i18n.t("en", "inbox.count", n=3) == "3 alerts"
    with pytest.raises(KeyError):
        i18n.fill("zh-CN", "{{t:no.such_key}}")


def test_times_are_shown_in_the_site_zone_in_one_format() -> None:
    # 2026-12-02 00:30 UTC is 08:30 the same day in Beijing.
    ts = 1796171400.0
    assert i18n.local_time(ts, "Asia/Shanghai") == "2026-12-02 08:30:00"
    assert i18n.local_time(ts, "UTC") == "2026-12-02 00:30:00"


def test_script_carries_the_catalogue_zone_and_enum_lists() -> None:
    body = i18n.script("zh-CN", "Asia/Shanghai")
    assert body.startswith("window.FSV_I18N = ")
    assert '"timezone": "Asia/Shanghai"' in body and "非工作时间作业" in body
    assert '"kind": [' in body
