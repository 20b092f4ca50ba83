"""A trace filter the grammar does not allow is refused before any SQL runs: MLflow's
INVALID_PARAMETER_VALUE with the position, on SQLite and PostgreSQL alike (an unquoted
number against a span's text column was a database error on PostgreSQL)."""

from __future__ import annotations

import pytest

from jupyter_mlops.tracking.errors import TrackingError
from jupyter_mlops.tracking.traces import TraceInfo

BAD = [
    ("span.name = 5", "Expected a quoted string value for 'span.name' at position 12"),
    ("span.status != 1", "Expected a quoted string value for 'span.status'"),
    ("span.attributes.model LIKE 3", "Expected a quoted string value for 'span.attributes.model'"),
    ("span.type ILIKE 2.5", "Expected a quoted string value for 'span.type'"),
    ("tags.env = 5", "Expected a quoted string value for 'env'"),
    ("trace.name = 5", "Expected a quoted string value for 'name'"),
    ("trace.execution_time_ms = 'slow'", "'execution_time_ms' takes a numeric comparison"),
    ("span.name > 'a'", "comparator '>' is not valid for span.name"),
    ("span.content = 'x'", "span.content takes LIKE or ILIKE"),
    ("span.bogus = 'x'", "Invalid span key 'bogus'"),
]


@pytest.mark.parametrize(("flt", "message"), BAD, ids=[f for f, _ in BAD])
def test_a_bad_filter_is_refused_with_its_position(store, flt, message):
    eid = store.create_experiment("filters")
    store.start_trace(TraceInfo(trace_id="tr-1", experiment_id=eid, request_time=1))
    with pytest.raises(TrackingError) as e:
        store.search_traces([eid], flt)
    assert e.value.error_code == "INVALID_PARAMETER_VALUE"
    assert message in e.value.message
    assert [t.trace_id for t in store.search_traces([eid], "span.name = '5'")[0]] == []
