"""MLflow traces on the shared (multi-user) tracking service: each trace call checked
against its caller.

A trace lives in an experiment (visible to all, as experiments are) and belongs to the
user who created it: tag ``mlops.owner``, set by the service from the caller's identity,
never from the request. The rules are the runs' (:class:`.access.AccessPolicy`,
``can_read_trace``/``can_write_trace``):

- its owner reads and changes it (ending it, tags, assessments, deletion, run links);
- the owner's teammates (a hub group shared) read it, and change it only with
  ``AccessPolicy.team_can_write``; tag ``mlops.visibility=private`` keeps it to its owner
  (only the owner sets that tag);
- admins read and change everything;
- a trace the caller may not read answers 403 ``PERMISSION_DENIED`` (as a registered
  model does; trace ids are random); searches leave such traces out in SQL, so pages stay
  full; deleting by time deletes only the caller's own (changeable) traces;
- a trace naming a run (metadata ``mlflow.sourceRun``, ``link-to-run``) needs the right
  to change that run;
- aggregates over an experiment's traces (trace metrics, filter correlation) count only the
  traces the caller may read.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ..tracking.errors import PERMISSION_DENIED, RESOURCE_DOES_NOT_EXIST, TrackingError
from ..tracking.traces import OWNER_TAG, VISIBILITY_TAG

if TYPE_CHECKING:
    from ..tracking.traces import TraceInfo

#: MLflow's trace metadata naming the run a trace was made in.
SOURCE_RUN = "mlflow.sourceRun"
#: Traces per page while collecting the caller's traces for a delete by time.
_PAGE = 500


def denied(message: str) -> TrackingError:
    return TrackingError(message, PERMISSION_DENIED)


class TraceGuard:
    """MLflow's tracing calls of :class:`.access.GuardedStore` (a mixin: the module's rules
    over the guarded store's caller, policy and run checks)."""

    # provided by GuardedStore
    _store: Any
    caller: Any
    policy: Any

    if TYPE_CHECKING:

        def _writable(self, run_id: str) -> Any: ...

    # -- checks ------------------------------------------------------------------
    def trace_info(self, trace_id: str, write: bool = False) -> TraceInfo:
        info = self._store.get_trace_info(trace_id)
        owner = info.tags.get(OWNER_TAG)
        if not self.policy.can_read_trace(self.caller, owner, info.tags):
            whose = f"of user '{owner}'" if owner else "without an owner"
            raise denied(f"User '{self.caller.name}' may not read trace {trace_id} {whose}.")
        if write and not self.policy.can_write_trace(self.caller, owner, info.tags):
            raise denied(
                f"User '{self.caller.name}' may not change trace {trace_id} of user '{owner}'."
            )
        return info

    def _existing(self, trace_id: str) -> TraceInfo | None:
        try:
            return self._store.get_trace_info(trace_id)
        except TrackingError as e:
            if e.error_code != RESOURCE_DOES_NOT_EXIST:
                raise
            return None

    def _check_trace_tag(self, trace_id: str, key: str, owner: str | None) -> None:
        if self.caller.admin:
            return
        if key == OWNER_TAG:
            raise denied(f"Tag '{key}' is set by the tracking service from your identity.")
        if key == VISIBILITY_TAG and owner != self.caller.name:
            raise denied(f"Only the owner of trace {trace_id} sets its tag '{key}'.")

    def _source_run(self, metadata: Mapping[str, str]) -> None:
        run_id = metadata.get(SOURCE_RUN)
        if run_id:
            self._run_changeable(run_id)

    def _run_changeable(self, run_id: str) -> None:
        """403 unless the caller may change the run (one it may not see, or none at all,
        alike: a trace route reveals no run)."""
        try:
            self._writable(run_id)
        except TrackingError as e:
            if e.error_code != RESOURCE_DOES_NOT_EXIST:
                raise
            raise denied(
                f"User '{self.caller.name}' may not link traces to run {run_id}."
            ) from None

    def _claim(self, info: TraceInfo) -> None:
        """Before ``info`` is written: a trace that exists must be the caller's to change
        (it keeps its owner); a new one becomes the caller's."""
        existing = self._existing(info.trace_id) if info.trace_id else None
        if existing is None:
            owner: str | None = self.caller.name
        else:
            self.trace_info(info.trace_id, write=True)
            owner = existing.tags.get(OWNER_TAG)
        if VISIBILITY_TAG in info.tags:
            self._check_trace_tag(info.trace_id, VISIBILITY_TAG, owner)
        info.tags.pop(OWNER_TAG, None)
        if owner:
            info.tags[OWNER_TAG] = owner
        self._source_run(info.trace_metadata)

    # -- writes ------------------------------------------------------------------
    def start_trace(self, info: TraceInfo) -> TraceInfo:
        self._claim(info)
        return self._store.start_trace(info)

    def start_trace_v2(
        self,
        experiment_id: str,
        timestamp_ms: int,
        metadata: Mapping[str, str],
        tags: Mapping[str, str],
    ) -> TraceInfo:
        self._source_run(metadata)
        tags = {k: v for k, v in tags.items() if k != OWNER_TAG}
        tags[OWNER_TAG] = self.caller.name
        return self._store.start_trace_v2(experiment_id, timestamp_ms, metadata, tags)

    def end_trace_v2(
        self,
        trace_id: str,
        timestamp_ms: int,
        state: str,
        metadata: Mapping[str, str],
        tags: Mapping[str, str],
    ) -> TraceInfo:
        info = self.trace_info(trace_id, write=True)
        for key in tags:
            self._check_trace_tag(trace_id, key, info.tags.get(OWNER_TAG))
        self._source_run(metadata)
        return self._store.end_trace_v2(trace_id, timestamp_ms, state, metadata, tags)

    def log_traces(self, records: Sequence[tuple[TraceInfo, Sequence[dict[str, Any]]]]) -> None:
        for info, _spans in records:
            self._claim(info)
        self._store.log_traces(records)

    def log_spans(
        self,
        experiment_id: str,
        by_trace: Mapping[str, list[dict[str, Any]]],
        new_tags: Mapping[str, str] | None = None,
    ) -> int:
        from ..tracking.traces import trace_id_from_otel

        for otel_hex in by_trace:
            trace_id = trace_id_from_otel(otel_hex)
            if self._existing(trace_id) is not None:
                self.trace_info(trace_id, write=True)
        return self._store.log_spans(experiment_id, by_trace, {OWNER_TAG: self.caller.name})

    def set_trace_tag(self, trace_id: str, key: str, value: str) -> None:
        info = self.trace_info(trace_id, write=True)
        self._check_trace_tag(trace_id, key, info.tags.get(OWNER_TAG))
        self._store.set_trace_tag(trace_id, key, value)

    def delete_trace_tag(self, trace_id: str, key: str) -> None:
        info = self.trace_info(trace_id, write=True)
        self._check_trace_tag(trace_id, key, info.tags.get(OWNER_TAG))
        self._store.delete_trace_tag(trace_id, key)

    def link_traces_to_run(self, trace_ids: Sequence[str], run_id: str) -> None:
        for trace_id in trace_ids:
            # a trace still being exported may be linked first (as MLflow's store allows)
            if self._existing(trace_id) is not None:
                self.trace_info(trace_id, write=True)
        self._run_changeable(run_id)
        self._store.link_traces_to_run(trace_ids, run_id)

    def delete_traces(
        self,
        experiment_id: str,
        max_timestamp_millis: int | None = None,
        max_traces: int | None = None,
        trace_ids: Sequence[str] | None = None,
    ) -> int:
        if self.caller.admin:
            return self._store.delete_traces(
                experiment_id, max_timestamp_millis, max_traces, trace_ids
            )
        if trace_ids and max_timestamp_millis is None:
            for trace_id in trace_ids:
                if self._existing(trace_id) is not None:
                    self.trace_info(trace_id, write=True)
        elif max_timestamp_millis is not None and not trace_ids:
            # by time: the caller's changeable traces of that age only
            mine = self._changeable_before(experiment_id, int(max_timestamp_millis), max_traces)
            if not mine:
                return 0
            return self._store.delete_traces(experiment_id, None, None, mine)
        # (neither or both: the store answers with its message)
        return self._store.delete_traces(experiment_id, max_timestamp_millis, max_traces, trace_ids)

    def _changeable_before(self, experiment_id: str, ts: int, limit: int | None) -> list[str]:
        owners = [self.caller.name]
        if self.policy.team_can_write:
            owners = self.policy.visible_user_ids(self.caller) or owners
        out: list[str] = []
        token = None
        while limit is None or len(out) < limit:
            infos, token = self._store.search_traces(
                [experiment_id],
                filter_string=f"trace.timestamp_ms <= {ts}",
                max_results=_PAGE,
                order_by=["timestamp_ms ASC"],
                page_token=token,
                visible_owners=owners,
                viewer=self.caller.name,
            )
            out += [i.trace_id for i in infos]
            if not token:
                break
        return out if limit is None else out[:limit]

    # -- reads -------------------------------------------------------------------
    def get_trace_info(self, trace_id: str) -> TraceInfo:
        return self.trace_info(trace_id)

    def get_trace_spans(self, trace_id: str) -> list[dict[str, Any]]:
        self.trace_info(trace_id)
        return self._store.get_trace_spans(trace_id)

    def search_traces(self, experiment_ids: Sequence[str], **kwargs: Any) -> Any:
        return self._store.search_traces(experiment_ids, **kwargs, **self._visible())

    def _visible(self) -> dict[str, Any]:
        return {
            "visible_owners": self.policy.visible_user_ids(self.caller),
            "viewer": self.caller.name,
        }

    # aggregates count only the traces the caller may read
    def trace_metrics(self, q: Any) -> Any:
        import dataclasses

        return self._store.trace_metrics(dataclasses.replace(q, **self._visible()))

    def trace_correlation(self, *args: Any, **kwargs: Any) -> Any:
        return self._store.trace_correlation(*args, **kwargs, **self._visible())

    def trace_counts(self, *args: Any, **kwargs: Any) -> Any:
        return self._store.trace_counts(*args, **kwargs, **self._visible())

    # -- assessments: read with the trace, changed by who may change it -----------
    def create_assessment(self, trace_id: str, assessment: dict[str, Any]) -> dict[str, Any]:
        self.trace_info(trace_id, write=True)
        return self._store.create_assessment(trace_id, assessment)

    def get_assessment(self, trace_id: str, assessment_id: str) -> dict[str, Any]:
        self.trace_info(trace_id)
        return self._store.get_assessment(trace_id, assessment_id)

    def update_assessment(
        self, trace_id: str, assessment_id: str, changes: dict[str, Any], mask: Sequence[str]
    ) -> dict[str, Any]:
        self.trace_info(trace_id, write=True)
        return self._store.update_assessment(trace_id, assessment_id, changes, mask)

    def delete_assessment(self, trace_id: str, assessment_id: str) -> None:
        self.trace_info(trace_id, write=True)
        self._store.delete_assessment(trace_id, assessment_id)
