"""Issue 11, bad input: hypothesis on the AGI reply reader and the IVR menu loader. Random,
truncated, oversized and wrongly encoded input gives a clear error (AgiProtocolError, menu
problems), never another exception."""

from __future__ import annotations

import copy
import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from contactcenter.ivr.menu import (
    Menu,
    MenuError,
    default_menu,
    load_menu,
    load_menu_json,
    parse_menu,
    validate,
)
from contactcenter.telephony.agi import AgiProtocolError, AgiReply, parse_reply

REPLIES = st.one_of(
    st.text(max_size=300),
    st.from_regex(r"\A[0-9]{3}[ -]result=-?[0-9]*( \(.*\))?( [a-z]+=[0-9]+)?\Z"),
    st.builds(lambda a, b: a + b, st.sampled_from(["200 result=", "510 Invalid", "520-",
                                                    "200 result=1 (", "511 "]),
              st.text(max_size=50)),
    st.binary(max_size=200).map(lambda b: b.decode("utf-8", "replace")),
)


@settings(max_examples=400, deadline=None)
@given(REPLIES)
def test_agi_reply_reader_never_crashes(line: str) -> None:
    try:
        reply = parse_reply(line)
    except AgiProtocolError as exc:
        assert str(exc)  # a clear message
        return
    assert isinstance(reply, AgiReply) and 100 <= reply.code <= 599


def test_agi_reply_reader_oversized_line() -> None:
    reply = parse_reply("200 result=1 (" + "x" * 100_000 + ")")
    assert reply.data is not None and len(reply.data) == 100_000
    try:
        parse_reply("x" * 100_000)
    except AgiProtocolError as exc:
        assert len(str(exc)) < 200  # the message quotes a bounded prefix
    else:
        raise AssertionError("garbage accepted")


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner,
                                                                 max_size=4),
    max_leaves=20,
)


def _paths(obj: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(obj, dict):
        for k, v in obj.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            out += _paths(v, (*prefix, i))
    return out


BASE = default_menu()
PATHS = [p for p in _paths(BASE) if p]


def _mutate(path: tuple[Any, ...], value: Any) -> Any:
    data = copy.deepcopy(BASE)
    target = data
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return data


def _check_loader(data: Any) -> None:
    menu, problems = parse_menu(data)
    if menu is None:
        assert problems and all(p.message for p in problems)
        try:
            load_menu(data)
        except MenuError:
            pass
        else:
            raise AssertionError("load_menu accepted what parse_menu refused")
    else:
        assert isinstance(menu, Menu)
    found = validate(data, {"sanitation", "potholes", "general-311"},
                     {"missed-pickup", "pothole"})
    assert isinstance(found, list)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(PATHS), JSON)
def test_menu_loader_mutated_default_menu(path: tuple[Any, ...], value: Any) -> None:
    _check_loader(_mutate(path, value))


@settings(max_examples=200, deadline=None)
@given(JSON)
def test_menu_loader_random_documents(data: Any) -> None:
    _check_loader(data)


TEXT = json.dumps(BASE)


@settings(max_examples=200, deadline=None)
@given(st.integers(0, len(TEXT)), st.binary(max_size=20))
def test_menu_json_truncated_or_wrongly_encoded(cut: int, junk: bytes) -> None:
    data, problems = load_menu_json(TEXT.encode()[:cut] + junk)
    if data is None:
        assert problems[0].message
    else:
        _check_loader(data)
