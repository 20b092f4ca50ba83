"""The evaluation half of the tracking store: GenAI evaluation datasets and registered
scorers. :class:`EvaluationStore` is the interface (:class:`~.store.TrackingStore`
extends it), :class:`SqlEvaluationStore` its SQL implementation (a mixin of
:class:`~.sqlstore.SqlTrackingStore`); tables and queries are :mod:`.evaluation`'s.

Dataset search takes ``name`` (``= != LIKE ILIKE``), ``created_time`` /
``last_update_time`` (numeric) and ``tags.<key>`` in filters, the same grammar as runs
(:mod:`.search`), and orders by those attributes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from . import evaluation as ev
from .clock import now_ms
from .errors import invalid, not_found
from .paging import decode_page_token, encode_page_token
from .search import (
    ATTRIBUTE,
    NUMERIC_COMPARATORS,
    STRING_COMPARATORS,
    TAG,
    Comparison,
    _compare,
    _conjunction,
    _null_test,
    _Parser,
    _symbol,
    parse_order_by,
)
from .validation import experiment_int_ids

if TYPE_CHECKING:
    from .entities import Experiment

_NOT = "This tracking store does not keep evaluation datasets or scorers."
DATASET_ATTRIBUTES = {"name": False, "created_time": True, "last_update_time": True}


class EvaluationStore:
    """Evaluation datasets (records, tags, experiments) and scorers."""

    def create_eval_dataset(
        self, name: str, experiment_ids: Sequence[str], tags: dict[str, str]
    ) -> dict[str, Any]:
        raise NotImplementedError(_NOT)

    def get_eval_dataset(self, dataset_id: str) -> dict[str, Any]:
        raise NotImplementedError(_NOT)

    def delete_eval_dataset(self, dataset_id: str) -> None:
        raise NotImplementedError(_NOT)

    def search_eval_datasets(
        self,
        experiment_ids: Sequence[str],
        filter_string: str | None,
        max_results: int,
        order_by: Sequence[str] | None,
        page_token: str | None,
    ) -> tuple[list[dict[str, Any]], str | None]:
        raise NotImplementedError(_NOT)

    def set_eval_dataset_tags(self, dataset_id: str, tags: dict[str, str]) -> None:
        raise NotImplementedError(_NOT)

    def delete_eval_dataset_tag(self, dataset_id: str, key: str) -> None:
        raise NotImplementedError(_NOT)

    def eval_dataset_experiments(
        self, dataset_id: str, add: Sequence[str] = (), remove: Sequence[str] = ()
    ) -> dict[str, Any]:
        raise NotImplementedError(_NOT)

    def upsert_eval_records(
        self, dataset_id: str, records: Sequence[dict[str, Any]]
    ) -> tuple[int, int]:
        raise NotImplementedError(_NOT)

    def get_eval_records(
        self, dataset_id: str, max_results: int, page_token: str | None
    ) -> tuple[list[dict[str, Any]], str | None]:
        raise NotImplementedError(_NOT)

    def delete_eval_records(self, dataset_id: str, record_ids: Sequence[str]) -> int:
        raise NotImplementedError(_NOT)

    def register_scorer(self, experiment_id: str, name: str, serialized: str) -> dict[str, Any]:
        raise NotImplementedError(_NOT)

    def list_scorers(self, experiment_id: str, name: str | None = None) -> list[dict[str, Any]]:
        """The latest version of each scorer, or every version of ``name``."""
        raise NotImplementedError(_NOT)

    def get_scorer(self, experiment_id: str, name: str, version: int | None) -> dict[str, Any]:
        raise NotImplementedError(_NOT)

    def delete_scorer(self, experiment_id: str, name: str, version: int | None) -> None:
        raise NotImplementedError(_NOT)


def _dataset_clause(p: _Parser) -> Comparison:
    p.skip_ws()
    entity, key, start = p.identifier()
    if entity not in (ATTRIBUTE, TAG):
        raise p.error(f"Invalid entity type '{entity}' for datasets", start)
    if entity == ATTRIBUTE and key not in DATASET_ATTRIBUTES:
        raise p.error(f"Invalid attribute key '{key}': one of {sorted(DATASET_ATTRIBUTES)}", start)
    p.skip_ws()
    op = _symbol(p)
    if op is None:
        kw = p.keyword("LIKE", "ILIKE", "IS")
        if kw is None:
            raise p.unexpected()
        op = _null_test(p) if kw == "IS" else kw
    value: Any = None
    vpos = p.pos
    if op not in ("IS_NULL", "IS_NOT_NULL"):
        value, vpos = p.value()
    numeric = entity == ATTRIBUTE and DATASET_ATTRIBUTES[key]
    if numeric and (op not in NUMERIC_COMPARATORS or not isinstance(value, float)):
        raise p.error(f"'{key}' takes a numeric comparison", vpos)
    if (
        not numeric
        and op not in ("IS_NULL", "IS_NOT_NULL")
        and (op not in STRING_COMPARATORS or not isinstance(value, str))
    ):
        raise p.error(f"'{key}' takes a quoted string and one of {STRING_COMPARATORS}", vpos)
    return Comparison(entity, key, op, value, start)


class SqlEvaluationStore(EvaluationStore):
    """:class:`EvaluationStore` over the SQL store's connections."""

    _write: Any
    _read: Any

    if TYPE_CHECKING:

        def get_experiment(self, experiment_id: str) -> Experiment: ...

    def _checked_exps(self, experiment_ids: Sequence[str]) -> list[int]:
        ids = experiment_int_ids(experiment_ids)
        for e in experiment_ids:
            if int(e) not in ids:
                raise not_found(f"No Experiment with id={e} exists")
            self.get_experiment(str(e))  # RESOURCE_DOES_NOT_EXIST for an unknown one
        return ids

    def create_eval_dataset(
        self, name: str, experiment_ids: Sequence[str], tags: dict[str, str]
    ) -> dict[str, Any]:
        exps = self._checked_exps(experiment_ids)
        with self._write() as conn:
            return ev.create_dataset(conn, name, exps, tags, now_ms())

    def get_eval_dataset(self, dataset_id: str) -> dict[str, Any]:
        with self._read() as conn:
            return ev.dataset_dict(conn, ev.dataset_row(conn, dataset_id))

    def delete_eval_dataset(self, dataset_id: str) -> None:
        with self._write() as conn:
            ev.delete_dataset(conn, dataset_id)

    def search_eval_datasets(
        self,
        experiment_ids: Sequence[str],
        filter_string: str | None,
        max_results: int,
        order_by: Sequence[str] | None,
        page_token: str | None,
    ) -> tuple[list[dict[str, Any]], str | None]:
        d = ev.eval_datasets
        where: list[Any] = []
        if experiment_ids:
            x = ev.eval_dataset_experiments
            where.append(
                d.c.dataset_id.in_(
                    sa.select(x.c.dataset_id).where(
                        x.c.experiment_id.in_(experiment_int_ids(experiment_ids))
                    )
                )
            )
        if filter_string and filter_string.strip():
            for c in _conjunction(_Parser(filter_string), _dataset_clause):
                if c.entity == TAG:
                    t = ev.eval_dataset_tags
                    cond = [t.c.key == c.key]
                    if c.op == "IS_NULL":
                        where.append(d.c.dataset_id.not_in(sa.select(t.c.dataset_id).where(*cond)))
                        continue
                    if c.op != "IS_NOT_NULL":
                        cond.append(_compare(t.c.value, c.op, c.value))
                    where.append(d.c.dataset_id.in_(sa.select(t.c.dataset_id).where(*cond)))
                else:
                    value = int(c.value) if DATASET_ATTRIBUTES[c.key] else c.value
                    where.append(_compare(d.c[c.key], c.op, value))
        order: list[Any] = []
        for o in parse_order_by(order_by):
            if o.entity != ATTRIBUTE or o.key not in DATASET_ATTRIBUTES:
                raise invalid(
                    f"Invalid order_by key '{o.key}': one of {sorted(DATASET_ATTRIBUTES)}"
                )
            order.append(d.c[o.key].asc() if o.ascending else d.c[o.key].desc())
        order += [d.c.created_time.desc(), d.c.dataset_id]
        offset = decode_page_token(page_token)
        with self._read() as conn:
            rows = list(
                conn.execute(
                    sa.select(d)
                    .where(*where)
                    .order_by(*order)
                    .offset(offset)
                    .limit(max_results + 1)
                )
            )
            out = [ev.dataset_dict(conn, r) for r in rows[:max_results]]
        more = len(rows) > max_results
        return out, encode_page_token(offset + max_results) if more else None

    def set_eval_dataset_tags(self, dataset_id: str, tags: dict[str, str]) -> None:
        with self._write() as conn:
            ev.dataset_row(conn, dataset_id)
            ev.set_tags(conn, dataset_id, tags)

    def delete_eval_dataset_tag(self, dataset_id: str, key: str) -> None:
        t = ev.eval_dataset_tags
        with self._write() as conn:
            ev.dataset_row(conn, dataset_id)
            conn.execute(t.delete().where(t.c.dataset_id == dataset_id, t.c.key == key))

    def eval_dataset_experiments(
        self, dataset_id: str, add: Sequence[str] = (), remove: Sequence[str] = ()
    ) -> dict[str, Any]:
        adds = self._checked_exps(add)
        with self._write() as conn:
            row = ev.dataset_row(conn, dataset_id)
            ev.add_experiments(conn, dataset_id, adds)
            ev.remove_experiments(conn, dataset_id, experiment_int_ids(remove))
            return ev.dataset_dict(conn, row)

    def upsert_eval_records(
        self, dataset_id: str, records: Sequence[dict[str, Any]]
    ) -> tuple[int, int]:
        with self._write() as conn:
            return ev.upsert_records(conn, dataset_id, records, now_ms())

    def get_eval_records(
        self, dataset_id: str, max_results: int, page_token: str | None
    ) -> tuple[list[dict[str, Any]], str | None]:
        offset = decode_page_token(page_token)
        with self._read() as conn:
            recs, more = ev.get_records(conn, dataset_id, offset, max_results)
        return recs, encode_page_token(offset + max_results) if more else None

    def delete_eval_records(self, dataset_id: str, record_ids: Sequence[str]) -> int:
        with self._write() as conn:
            return ev.delete_records(conn, dataset_id, record_ids)

    def register_scorer(self, experiment_id: str, name: str, serialized: str) -> dict[str, Any]:
        (exp,) = self._checked_exps([experiment_id])
        with self._write() as conn:
            return ev.register_scorer(conn, exp, name, serialized, now_ms())

    def list_scorers(self, experiment_id: str, name: str | None = None) -> list[dict[str, Any]]:
        exp = _one_experiment(experiment_id)
        with self._read() as conn:
            return [ev.scorer_dict(r) for r in ev.list_scorers(conn, exp, name)]

    def get_scorer(self, experiment_id: str, name: str, version: int | None) -> dict[str, Any]:
        exp = _one_experiment(experiment_id)
        with self._read() as conn:
            return ev.scorer_dict(ev.get_scorer(conn, exp, name, version))

    def delete_scorer(self, experiment_id: str, name: str, version: int | None) -> None:
        exp = _one_experiment(experiment_id)
        with self._write() as conn:
            ev.delete_scorer(conn, exp, name, version)


def _one_experiment(experiment_id: str) -> int:
    ids = experiment_int_ids([experiment_id])
    if not ids:
        raise not_found(f"No Experiment with id={experiment_id} exists")
    return ids[0]
