"""``api/v1/traces/log-bulk`` bodies (server/trace_body.py): read as any JSON body is
(same fields, same refusals), with each trace's spans kept as sent for its data file."""

from __future__ import annotations

import json
from typing import Any

import pytest
import sqlalchemy as sa
from tracebulk import bulk_trace

from jupyter_mlops.server.request import MAX_JSON_DEPTH, parse_json_body
from jupyter_mlops.server.trace_body import parse_log_bulk_body
from jupyter_mlops.tracking import traces as t
from jupyter_mlops.tracking.errors import TrackingError

EXP = "api/2.0/mlflow/experiments/create"


def _item(exp: str, i: int, name: str = "top") -> dict[str, Any]:
    return bulk_trace(
        exp,
        f"{i:032x}",
        i,
        [(name, "CHAIN"), ("child 1", "CHAIN"), ("child 2", "CHAIN")],
        inputs={"q": f"question {i} — ünïcode"},
        events=[{"name": "e", "time_unix_nano": 5, "attributes": {"a": [1, {"b": 2}]}}],
    )


def _parsed_alike(body: str) -> Any:
    """Both readers' answer (or error message) for ``body``, checked equal."""
    try:
        want: Any = parse_json_body(body)
    except TrackingError as e:
        want = ("error", e.error_code, e.message)
    try:
        got: Any = parse_log_bulk_body(body)
    except TrackingError as e:
        got = ("error", e.error_code, e.message)
    assert got == want
    return got


BODIES = [
    json.dumps({"traces": [_item("1", 1), _item("1", 2)]}),
    json.dumps({"traces": [_item("1", 1)]}, separators=(",", ":")),
    json.dumps({"traces": [_item("1", 1)]}, indent=2, ensure_ascii=False),
    '\n\t{ "traces" :[ ] , "x": {"y": [1, 2]} }\r\n',
    json.dumps({"traces": [_item("1", 1)], "other": 1, "traces ": 2}),
    '{"traces": [1, "a", null, {"spans": 5}], "traces": [{"spans": []}]}',  # duplicate key
    '{"traces": [{"sp\\u0061ns": [], "info": {}}]}',  # an escaped key
    '{"tr\\u0061ces": [{"spans": [1]}]}',
    '{"traces": {"a": 1}}',
    "{}",
    "",
    "   ",
    "[]",
    '"{\\"traces\\": []}"',  # double-encoded, as old MLflow clients send
    '{"traces": [{"spans": [1}]}',  # malformed
    '{"traces": [{"spans": [1]}]} trailing',
    '{"traces": [{"spans": [1]}]',
    '{"traces": [{"spans": ["\\ud800"]}]}',  # a lone surrogate
    '{"traces": [{"spans": [{"k": "x\\uDBFF"}]}], "é": 1}',  # another, upper case
    '{"é": "\\uD83D\\uDE00"}',  # a pair, upper case: fine
    '{"traces": [{"spans": ["\\ud83d\\ude00 ok"]}]}',  # a pair: fine
    '{"traces": [{"spans": [NaN]}]}',
    '{"traces": [{"spans": ["a\x01b"]}]}',  # a raw control character
    # the spans nested to the limit (object, traces, item, then theirs), one past it
    DEEPEST := '{"traces": [{"spans": '
    + "[" * (MAX_JSON_DEPTH - 3)
    + "]" * (MAX_JSON_DEPTH - 3)
    + "}]}",
    TOO_DEEP := '{"traces": [{"spans": '
    + "[" * (MAX_JSON_DEPTH - 2)
    + "]" * (MAX_JSON_DEPTH - 2)
    + "}]}",
    '{"traces": [' + "[" * MAX_JSON_DEPTH + "]" * MAX_JSON_DEPTH + "]}",
    '{"x": ' + "[" * (MAX_JSON_DEPTH - 1) + "]" * (MAX_JSON_DEPTH - 1) + "}",
    '{"x": ' + "[" * MAX_JSON_DEPTH + "]" * MAX_JSON_DEPTH + "}",
    '{"traces": [{"info": ' + '{"a": ' * 70 + "1" + "}" * 70 + "}]}",
]


@pytest.mark.parametrize("body", BODIES)
def test_read_as_any_body_is(body: str) -> None:
    _parsed_alike(body)


def test_the_deepest_accepted_and_the_first_refused() -> None:
    ok = _parsed_alike(DEEPEST)
    assert isinstance(ok, dict)
    err = _parsed_alike(TOO_DEEP)
    assert err[0] == "error" and "levels deep" in err[2]


def test_each_traces_spans_keep_their_text_as_sent() -> None:
    spans = [_item("1", 3)["spans"], []]
    texts = [json.dumps(spans[0], separators=(",", ":"), ensure_ascii=False), "[ ]"]
    body = '{"traces": [{"info": {}, "spans": ' + texts[0] + '}, {"spans":' + texts[1]
    body += ' ,"info": 1}]}'
    got = parse_log_bulk_body(body)["traces"]
    assert [g["spans"] for g in got] == spans
    assert [g["spans"].json_text for g in got] == texts


def _data_lines(mlops_app: Any, trace_ids: list[str]) -> dict[str, bytes]:
    """Each trace's bytes in its batch file, by trace id."""
    store = mlops_app.store
    tc = t.traces.c
    with store._read() as conn:
        rows = list(
            conn.execute(
                sa.select(tc.trace_id, tc.data_file, tc.data_offset, tc.data_length).where(
                    tc.trace_id.in_(trace_ids)
                )
            )
        )
    out = {}
    for r in rows:
        head, _, name = r.data_file.rpartition("/")
        with store.artifact_repo(head).open(name) as f:
            whole = f.read()
        out[r.trace_id] = whole[r.data_offset : r.data_offset + r.data_length]
        # one line per trace, whatever the sender's formatting
        assert all(json.loads(line) for line in whole.splitlines())
        assert len(whole.splitlines()) == len(set(whole.splitlines()))
    return out


def test_the_data_file_holds_the_spans_as_sent(api, mlops_app) -> None:
    exp = api("POST", EXP, {"name": "bulk-as-sent"}).json["experiment_id"]
    items = [_item(exp, 11), _item(exp, 12, name="second")]
    texts = [json.dumps(i["spans"], separators=(",", ":"), ensure_ascii=False) for i in items]
    body = (
        '{"traces": ['
        + ",".join(
            '{"info": ' + json.dumps(i["info"]) + ', "spans": ' + text + "}"
            for i, text in zip(items, texts)
        )
        + "]}"
    )
    r = api(
        "POST",
        "api/v1/traces/log-bulk",
        body.encode(),
        headers={"Content-Type": "application/json"},
    )
    assert r.status == 200, r.body
    ids = [i["info"]["trace_id"] for i in items]
    lines = _data_lines(mlops_app, ids)
    for trace_id, text in zip(ids, texts):
        assert lines[trace_id] == ('{"spans": ' + text + "}").encode()
    # and read back as they were sent
    for item in items:
        r = api(
            "GET",
            "ajax-api/2.0/mlflow/get-trace-artifact",
            params={"request_id": item["info"]["trace_id"]},
        )
        assert json.loads(r.body) == {"spans": item["spans"]}


def test_a_pretty_printed_body_still_gives_one_line_per_trace(api, mlops_app) -> None:
    exp = api("POST", EXP, {"name": "bulk-pretty"}).json["experiment_id"]
    items = [_item(exp, 21), _item(exp, 22)]
    body = json.dumps({"traces": items}, indent=2)
    r = api("POST", "api/v1/traces/log-bulk", body, headers={"Content-Type": "application/json"})
    assert r.status == 200, r.body
    lines = _data_lines(mlops_app, [i["info"]["trace_id"] for i in items])
    for item in items:
        assert json.loads(lines[item["info"]["trace_id"]]) == {"spans": item["spans"]}
        assert b"\n" not in lines[item["info"]["trace_id"]]


def test_bad_bulk_bodies_are_refused_as_before(api) -> None:
    exp = api("POST", EXP, {"name": "bulk-bad"}).json["experiment_id"]
    good = json.dumps(_item(exp, 31))
    for body, words in [
        ('{"traces": [' + good + ', {"spans": [1}]}', "not valid JSON"),
        ('{"traces": [' + good + ', {"spans": ["\\udc00"]}]}', "traces[1].spans[0]"),
        ('{"traces": [{"spans": ' + "[" * 70 + "]" * 70 + "}]}", "levels deep"),
        ('{"traces": [' + good + ", 5]}", "traces[1]"),
    ]:
        r = api(
            "POST", "api/v1/traces/log-bulk", body, headers={"Content-Type": "application/json"}
        )
        assert r.status == 400, (body[:80], r.body)
        assert words in r.json["message"], (words, r.json)
    r = api(
        "POST",
        "api/3.0/mlflow/traces/search",
        {"locations": [{"type": "MLFLOW_EXPERIMENT", "mlflow_experiment": {"experiment_id": exp}}]},
    )
    assert r.json.get("traces", []) == []  # nothing of a refused body was stored
