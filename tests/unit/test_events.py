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
