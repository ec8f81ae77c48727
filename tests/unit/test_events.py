from datetime import UTC, datetime

import pytest

from contactcenter.events import (
    AgentRinging,
    CallEnded,
    CallRecord,
    EventDecodeError,
    event_from_json,
)

T0 = datetime(2026, 11, 23, 3, 55, 2, 144794, tzinfo=UTC)


def test_round_trip_keeps_types() -> None:
    record = CallRecord(
        server="pbx1", linkedid="1795406102.0", caller_number="7875550101",
        caller_name="Maria Lopez", started_at=T0, ended_at=T0, outcome="answered",
        queue="sanitation", ivr_seconds=2.2, ivr_path=("lang:en", "1"),
    )
    ended = CallEnded(record=record)
    back = event_from_json(ended.to_json())
    assert back == ended
    assert isinstance(back, CallEnded)
    assert back.record.started_at.tzinfo is not None
    assert back.record.ivr_path == ("lang:en", "1")
    assert back.record.call_id == "pbx1:1795406102.0"


def test_optional_and_tuple_fields() -> None:
    ev = AgentRinging(
        server="s", linkedid="l", queue="q", interface="PJSIP/1001", member_name=None,
        caller_number=None, caller_name="<b>x</b>", at=T0, ivr_path=("1", "2"),
    )
    assert event_from_json(ev.to_json()) == ev


@pytest.mark.parametrize(
    "raw", ["", "[]", "{}", '{"type": "Nope"}', '{"type": "CallEnded"}', "\xff", "null"]
)
def test_garbage_is_a_clear_error(raw: str) -> None:
    with pytest.raises(EventDecodeError):
        event_from_json(raw)


def _sample(tp: object, name: str) -> object:
    """A value of a field's type, for building one of each event."""
    import types
    import typing

    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        return _sample(next(a for a in typing.get_args(tp) if a is not type(None)), name)
    if origin is tuple:
        return (_sample(typing.get_args(tp)[0], name), _sample(typing.get_args(tp)[0], name))
    if tp is datetime:
        return T0
    if tp is CallRecord:
        return CallRecord(server="s", linkedid="l", caller_number="1", caller_name=None,
                          started_at=T0, ended_at=T0, outcome="answered", ivr_path=("1",))
    return {str: f"v-{name}", int: 3, float: 1.5, bool: True}.get(tp, f"v-{name}")  # type: ignore[call-overload]


def test_every_event_type_encodes_like_asdict_and_round_trips() -> None:
    """`to_dict` is a hand-written fast path: it must say what `dataclasses.asdict` says."""
    import dataclasses
    import json
    import typing

    from contactcenter.events import _REGISTRY

    assert len(_REGISTRY) >= 15
    for cls in _REGISTRY.values():
        hints = typing.get_type_hints(cls)
        ev = cls(**{f.name: _sample(hints[f.name], f.name) for f in dataclasses.fields(cls)})
        slow = json.loads(json.dumps(dataclasses.asdict(ev), default=datetime.isoformat))
        assert ev.to_dict() == {"type": cls.__name__, **slow}, cls.__name__
        assert event_from_json(ev.to_json()) == ev, cls.__name__
