"""search_runs: MLflow's filter grammar, comparators per entity, errors with positions,
order_by (NULLs last), paging."""

from __future__ import annotations

import contextlib
import math
import uuid

import pytest
from pgschema import fresh_schema

from jupyter_mlops.tracking import search
from jupyter_mlops.tracking.entities import ALL, DELETED_ONLY, Metric
from jupyter_mlops.tracking.errors import TrackingError
from jupyter_mlops.tracking.sqlstore import SqlTrackingStore


@pytest.fixture
def runs(module_store):
    """Five runs in a fresh experiment with params, tags and metrics (r4 lacks most)."""
    store = module_store
    eid = store.create_experiment(f"search-{uuid.uuid4().hex}")
    ids = {}
    spec = [
        ("r0", {"lr": "0.1", "opt": "adam"}, {"team": "Vision"}, {"acc": 0.5, "loss": 2.0}),
        ("r1", {"lr": "0.01", "opt": "sgd"}, {"team": "vision"}, {"acc": 0.7, "loss": 1.0}),
        ("r2", {"lr": "0.001", "opt": "adam"}, {"team": "nlp"}, {"acc": 0.9, "loss": math.nan}),
        ("r3", {"lr": "0.1", "opt": "adamw"}, {"team": "nlp", "x y": "spaced"}, {"acc": 0.9}),
        ("r4", {}, {}, {}),
    ]
    for i, (name, params, tags, metrics) in enumerate(spec):
        rid = store.create_run(
            eid, start_time=1000 + i, run_name=name, tags=tags, user_id=f"u{i % 2}"
        ).info.run_id
        store.log_batch(
            rid,
            metrics=[Metric(k, v, 5, 1) for k, v in metrics.items()],
            params=list(params.items()),
        )
        ids[name] = rid
    return store, eid, ids


def names(result) -> list[str]:
    return [r.info.run_name for r in result[0]]


@pytest.mark.parametrize(
    "flt, expected",
    [
        (None, ["r4", "r3", "r2", "r1", "r0"]),
        ("", ["r4", "r3", "r2", "r1", "r0"]),
        ("metrics.acc > 0.6", ["r3", "r2", "r1"]),
        ("metrics.acc >= 0.9", ["r3", "r2"]),
        ("metric.acc = 0.5", ["r0"]),
        ("metrics.acc != 0.5", ["r3", "r2", "r1"]),
        ("metrics.loss < 1.5", ["r1"]),
        ("metrics.loss <= 2", ["r1", "r0"]),
        ("metrics.loss IS NULL", ["r4", "r3"]),
        ("metrics.acc > -1e3", ["r3", "r2", "r1", "r0"]),
        ("params.opt = 'adam'", ["r2", "r0"]),
        ("param.opt != 'adam'", ["r3", "r1"]),
        ("params.opt LIKE 'adam%'", ["r3", "r2", "r0"]),
        ("params.opt LIKE 'ADAM%'", []),
        ("params.opt ILIKE 'ADAM%'", ["r3", "r2", "r0"]),
        ("params.lr IS NULL", ["r4"]),
        ("params.lr IS NOT NULL", ["r3", "r2", "r1", "r0"]),
        ("tags.team = 'vision'", ["r1"]),
        ("tags.team LIKE 'v%'", ["r1"]),
        ("tags.team ILIKE 'v%'", ["r1", "r0"]),
        ("tags.`x y` = 'spaced'", ["r3"]),
        ("tags.\"x y\" = 'spaced'", ["r3"]),
        ('tags.team = "nlp"', ["r3", "r2"]),
        ("tags.mlflow.runName = 'r2'", ["r2"]),
        ("metrics.acc>0.6 and params.opt='adam'", ["r2"]),
        ("attributes.run_name = 'r1'", ["r1"]),
        ("run_name = 'r2'", ["r2"]),
        ("attributes.`Run name` LIKE 'r%'", ["r4", "r3", "r2", "r1", "r0"]),
        ("attribute.user_id = 'u1'", ["r3", "r1"]),
        ("attributes.status = 'RUNNING'", ["r4", "r3", "r2", "r1", "r0"]),
        ("attributes.start_time >= 1003", ["r4", "r3"]),
        ("created < 1001", ["r0"]),
        ("metrics.acc > 0.6 AND params.opt = 'adam'", ["r2"]),
        ("metrics.acc > 0.6 and params.opt = 'adam' and tags.team = 'nlp'", ["r2"]),
        ("params.opt = 'adam' AND params.opt = 'sgd'", []),
        ("datasets.name = 'train'", []),
        ("params.opt = 'a''b'", []),
        ("tags.team != 'it''s'", ["r3", "r2", "r1", "r0"]),
        # beyond MLflow: IN for tags and params (the runs table's children of a page)
        ("tags.team IN ('nlp', 'vision')", ["r3", "r2", "r1"]),
        ("params.opt NOT IN ('adam')", ["r3", "r1"]),
    ],
)
def test_filters(runs, flt, expected):
    store, eid, _ = runs
    assert names(store.search_runs([eid], flt)) == expected


def test_run_id_in_and_not_in(runs):
    store, eid, ids = runs
    flt = f"attributes.run_id IN ('{ids['r1']}', '{ids['r3']}')"
    assert names(store.search_runs([eid], flt)) == ["r3", "r1"]
    flt = f"run_id NOT IN ('{ids['r1']}')"
    assert names(store.search_runs([eid], flt)) == ["r4", "r3", "r2", "r0"]


def test_values_are_parameters_not_sql(runs):
    store, eid, _ = runs
    assert names(store.search_runs([eid], "params.opt = 'x'' OR 1=1 --'")) == []
    assert names(store.search_runs([eid], "tags.`k'; DROP TABLE runs; --` = 'v'")) == []
    assert len(store.search_runs([eid])[0]) == 5


@pytest.mark.parametrize(
    "flt, fragment",
    [
        ("metrics.acc >> 1", "unexpected '>>' at position 12"),
        ("metrics.acc > 1 or params.a = 'b'", "'OR' is not supported"),
        ("metrics.acc > 1 AND (params.a = 'b')", "parentheses are not supported at position 20"),
        (
            "metrics.acc > '0.5'",
            "Expected numeric value type for metric. Found '0.5' at position 14",
        ),
        (
            "params.bs = 32",
            "Expected a quoted string value for parameters. Found '32' at position 12",
        ),
        (
            "foo.bar = 'x'",
            "Invalid entity type 'foo'. Valid values are ['metric', 'parameter', 'tag', 'attribute', 'dataset'] at position 0",
        ),
        ("attributes.experiment_id = '1'", "Invalid attribute key 'experiment_id'"),
        ("attributes.run_name IN ('a')", "'IN' is only valid for attribute 'run_id'"),
        ("tags.team IN (1, 2)", "expected a quoted string, found '1' at position 14"),
        ("metrics.acc LIKE 'a%'", "comparator 'LIKE' is not valid for metrics"),
        ("params.a = 'unterminated", "unterminated '-quoted text at position 11"),
        ("metrics.acc >", "expected a value at end of input"),
        ("metrics.acc", "expected a comparator after 'acc' at end of input"),
        ("metrics.acc > 1 AND", "expected an identifier at end of input"),
        ("metrics.acc > 1 params.a = 'b'", "unexpected 'params' at position 16"),
        ("params.a IS 'x'", "unexpected ''' at position 12"),
        ("metrics. = 1", "expected a key after '.'"),
        ("start_time > 'x'", "Expected numeric value type for attribute 'start_time'"),
    ],
)
def test_filter_errors_name_what_and_where(store, flt, fragment):
    with pytest.raises(TrackingError) as e:
        store.search_runs(["0"], flt)
    assert e.value.error_code == "INVALID_PARAMETER_VALUE"
    assert e.value.message.startswith(f"Invalid filter '{flt}'")
    assert fragment in e.value.message


def test_order_by(runs):
    store, eid, _ = runs
    # NULLs (missing metric, NaN) last in both directions, then start_time DESC
    assert names(store.search_runs([eid], order_by=["metrics.acc DESC"])) == [
        "r3",
        "r2",
        "r1",
        "r0",
        "r4",
    ]
    assert names(store.search_runs([eid], order_by=["metrics.acc ASC"])) == [
        "r0",
        "r1",
        "r3",
        "r2",
        "r4",
    ]
    assert names(store.search_runs([eid], order_by=["metrics.loss"])) == [
        "r1",
        "r0",
        "r4",
        "r3",
        "r2",
    ]
    assert names(
        store.search_runs([eid], order_by=["params.lr DESC", "attributes.start_time ASC"])
    ) == ["r0", "r3", "r1", "r2", "r4"]
    # strings sort by code point on every backend ("V" < "n" < "v")
    assert names(store.search_runs([eid], order_by=["tags.team"])) == ["r0", "r3", "r2", "r1", "r4"]
    assert names(store.search_runs([eid], order_by=["start_time ASC"])) == [
        "r0",
        "r1",
        "r2",
        "r3",
        "r4",
    ]
    assert names(store.search_runs([eid], order_by=["attributes.run_name DESC"])) == [
        "r4",
        "r3",
        "r2",
        "r1",
        "r0",
    ]
    assert names(store.search_runs([eid], order_by=["metrics.`acc` DESC"]))[:2] == ["r3", "r2"]
    for bad, msg in [
        (["foo.bar"], "Invalid entity type 'foo'"),
        (["metrics.acc UP"], "unexpected 'UP'"),
        (["attributes.nope"], "Invalid order_by attribute key 'nope'"),
    ]:
        with pytest.raises(TrackingError) as e:
            store.search_runs([eid], order_by=bad)
        assert msg in e.value.message


def test_paging_and_limits(store):
    eid = store.create_experiment("paging")
    for i in range(23):
        store.create_run(eid, start_time=i, run_name=f"p{i:02d}")
    seen, token, pages = [], None, 0
    while True:
        page, token = store.search_runs(
            [eid], max_results=10, page_token=token, order_by=["start_time ASC"]
        )
        seen += [r.info.run_name for r in page]
        pages += 1
        if token is None:
            break
    assert pages == 3 and seen == [f"p{i:02d}" for i in range(23)]
    _, token = store.search_runs([eid], max_results=100)
    assert token is None
    _, token = store.search_runs([eid], max_results=20)
    # MLflow reads it as its offset token (ours also carries a keyset: test_search_keyset)
    assert search.decode_page_token(token) == 20
    assert search.encode_page_token(20) == "eyJvZmZzZXQiOiAyMH0="
    for bad in (0, 50001):
        with pytest.raises(TrackingError):
            store.search_runs([eid], max_results=bad)
    assert len(store.search_runs([eid], max_results=50000)[0]) == 23
    with pytest.raises(TrackingError) as e:
        store.search_runs([eid], page_token="not base64 json!")
    assert "Invalid page token" in e.value.message


def test_view_types_and_experiment_scope(runs):
    store, eid, ids = runs
    other = store.create_experiment("other")
    store.create_run(other, run_name="elsewhere")
    store.delete_run(ids["r0"])
    assert "r0" not in names(store.search_runs([eid]))
    assert names(store.search_runs([eid], run_view_type=DELETED_ONLY)) == ["r0"]
    assert len(store.search_runs([eid], run_view_type=ALL)[0]) == 5
    assert len(store.search_runs([eid, other])[0]) == 5
    assert store.search_runs([]) == ([], None)


def test_search_returns_full_runs(runs):
    store, eid, ids = runs
    run = store.search_runs([eid], "attributes.run_name = 'r1'")[0][0]
    assert run.data.params == {"lr": "0.01", "opt": "sgd"}
    assert run.data.tags["team"] == "vision" and run.data.tags["mlflow.runName"] == "r1"
    assert run.data.metrics["acc"].value == 0.7
    assert run == store.get_run(ids["r1"])


def test_parse_order_by_and_tokens_units():
    ob = search.parse_order_by(["metrics.`a b` DESC", "created", "params.x asc"])
    assert [(o.entity, o.key, o.ascending) for o in ob] == [
        ("metric", "a b", False),
        ("attribute", "start_time", True),
        ("parameter", "x", True),
    ]
    assert search.decode_page_token(search.encode_page_token(100)) == 100
    assert search.encode_page_token(100) == "eyJvZmZzZXQiOiAxMDB9"
    assert search.decode_page_token(None) == 0


def test_long_values_around_the_index_prefix(store):
    """PostgreSQL indexes the first 200 characters of param/tag values: values that share
    them, or are exactly that long, must still match only themselves (both back ends)."""
    eid = store.create_experiment(f"long-{uuid.uuid4().hex}")
    head = "x" * 200
    values = {"short": "x" * 199, "exact": head, "longer": head + "a", "longest": head + "b" * 5000}
    for name, value in values.items():
        rid = store.create_run(eid, run_name=name, tags={"t": value}).info.run_id
        store.log_batch(rid, params=[("p", value)])
    for name, value in values.items():
        for entity in ("params", "tags"):
            found = names(
                store.search_runs(
                    [eid], f"{entity}.{'p' if entity == 'params' else 't'} = '{value}'"
                )
            )
            assert found == [name], (entity, name)
    assert names(store.search_runs([eid], f"params.p = '{head}zz'")) == []
    found = names(store.search_runs([eid], f"params.p != '{head}'", order_by=["run_name"]))
    assert found == ["longer", "longest", "short"]


def test_postgres_search_uses_the_prefix_index(store):
    """On PostgreSQL a param equality with a literal longer than 200 characters reads the
    (key, left(value, 200)) index, not every row of the key: the plan names it (checked
    with sequential scans off, so the plan does not depend on the table's size). Shorter
    literals read the index of whole short values (test_search_metric_walk.py)."""
    if store.dialect != "postgresql":
        pytest.skip(
            "the prefix index exists on PostgreSQL only (this is the SQLite run of the test)"
        )

    from jupyter_mlops.tracking.schema import params as params_table

    eid = store.create_experiment(f"plan-{uuid.uuid4().hex}")
    rid = store.create_run(eid, run_name="r").info.run_id
    long = "adam" * 60
    store.log_batch(rid, params=[("opt", long)])
    clause = search.run_filter_clauses(search.parse_filter(f"params.opt = '{long}'"), "postgresql")[
        0
    ]
    sub = clause.right.element  # runs.run_uuid IN (SELECT ... FROM params WHERE ...)
    assert params_table in sub.froms
    sql = str(sub.compile(store.engine, compile_kwargs={"literal_binds": True}))
    with store.engine.connect() as conn:
        conn.exec_driver_sql("SET enable_seqscan = off")
        plan = "\n".join(r[0] for r in conn.exec_driver_sql("EXPLAIN " + sql))
    assert "ix_params_key_prefix" in plan, plan
    cond = next(line for line in plan.splitlines() if "Index Cond" in line)
    assert f"(value)::text, 200) = '{long[:200]}'" in cond, plan


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def grid(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    """24 runs over a grid of two params, two metrics (one missing on some, NaN on one)
    and a tag, to check filters of several clauses against their meaning: made once, in a
    store of their own, searched as its statistics (taken by the store from
    ``planner_stats.MIN_RUNS`` runs on) have them. (In the module's shared store, whose
    statistics were taken before the grid's keys existed, PostgreSQL planned each key as
    one row, joins nested in loops: one case took 26-98 s on 24 runs.)"""
    with contextlib.ExitStack() as stack:
        tmp = tmp_path_factory.mktemp("grid")
        if request.param == "sqlite":
            url = f"sqlite:///{tmp / 'mlops.db'}"
        else:
            url = stack.enter_context(fresh_schema("t"))
        store = SqlTrackingStore(url, artifact_root=str(tmp / "artifacts"))
        stack.callback(store.close)
        yield _grid(store)


def _grid(store: SqlTrackingStore):
    eid = store.create_experiment(f"grid-{uuid.uuid4().hex}")
    rows = {}
    for i in range(24):
        p = {"a": str(i % 3), "b": "xy"[i % 2]}
        m = {"m": i / 10} | ({} if i % 4 == 0 else {"n": math.nan if i == 5 else float(i % 5)})
        t = {"t": "tv"} if i % 6 else {}
        rid = store.create_run(eid, start_time=i, run_name=f"g{i}", tags=t).info.run_id
        store.log_batch(
            rid, metrics=[Metric(k, v, 0, 0) for k, v in m.items()], params=list(p.items())
        )
        rows[f"g{i}"] = (p, m, t)
    store.statistics.wait()
    return store, eid, rows


@pytest.mark.parametrize(
    "flt, keep",
    [
        ("params.a = '1' and metrics.m > 0.5", lambda p, m, t: p["a"] == "1" and m["m"] > 0.5),
        (
            "metrics.n >= 2 and params.b != 'x' and tags.t = 'tv'",
            lambda p, m, t: m.get("n", -1) >= 2 and p["b"] != "x" and t.get("t") == "tv",
        ),
        (
            "metrics.n IS NOT NULL and params.a LIKE '2%'",
            lambda p, m, t: "n" in m and p["a"] == "2",
        ),
        ("metrics.n IS NULL and params.a = '0'", lambda p, m, t: "n" not in m and p["a"] == "0"),
        (
            "params.a IN ('0', '2') and params.b = 'y'",
            lambda p, m, t: p["a"] != "1" and p["b"] == "y",
        ),
        (
            # more comparisons than are joined into one candidate query
            "params.a = '1' and params.b = 'y' and metrics.m > 0.2 and metrics.m < 2 and "
            "metrics.n > 0 and tags.t = 'tv' and params.a != '0' and metrics.m != 0.7",
            lambda p, m, t: (
                p["a"] == "1"
                and p["b"] == "y"
                and 0.2 < m["m"] < 2
                and m.get("n", -1) > 0
                and t.get("t") == "tv"
                and m["m"] != 0.7
            ),
        ),
    ],
)
def test_filters_of_several_clauses(grid, flt, keep):
    """Several metric/param/tag comparisons are compiled to one join of the key/value
    tables (search.py ``_candidate_runs``): it must keep exactly the runs each clause
    keeps, ordered and paged like any search (NaN compares like MLflow: never true)."""
    store, eid, rows = grid
    expected = {name for name, (p, m, t) in rows.items() if keep(p, m, t)}
    found = names(store.search_runs([eid], flt, max_results=1000))
    assert set(found) == expected and len(found) == len(expected)
    assert 0 < len(expected) < 24
    paged, token = [], None
    while True:
        res, token = store.search_runs(
            [eid], flt, max_results=2, order_by=["metrics.m DESC"], page_token=token
        )
        paged += [r.info.run_name for r in res]
        if token is None:
            break
    assert paged == sorted(expected, key=lambda n: -rows[n][1]["m"])
