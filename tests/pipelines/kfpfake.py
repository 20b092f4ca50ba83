"""A small Kubeflow Pipelines API server for testing the kubeflow target without a cluster.

Real HTTP (``http.server`` in a thread, ephemeral port, under a ``/pipeline`` prefix as behind
Kubeflow's gateway). It speaks the parts of the v2beta1 REST API the target uses, the way KFP
does:

* bearer tokens: none or unknown → 401; a namespace the token's service account is not bound to
  → 403 (KFP's multi-user SubjectAccessReview);
* errors as grpc-gateway JSON ``{"error_message", "code", "message", "details"}``;
* experiments: list with a ``display_name`` EQUALS filter, create (409 when the name exists in
  the namespace);
* runs with an inline ``pipeline_spec`` (or a ``{pipeline_spec, platform_spec}`` pair): the
  upload-time checks (``schemaVersion`` 2.1.0, ``pipelineInfo.name`` pattern, ``root`` present)
  and the ones the backend's compiler makes at run creation (``cannot find component ref``,
  ``executor(label=...) not found``, unknown ``dependentTasks``, runtime parameters not declared
  by ``root``);
* a run state machine the test drives (:meth:`FakeKfp.advance`): tasks go PENDING → RUNNING →
  SUCCEEDED/FAILED in DAG order, dependents of a failure are SKIPPED; ``:terminate`` →
  CANCELING, :meth:`FakeKfp.finish_cancel` → CANCELED;
* task pod logs at ``/apis/v1alpha1/runs/{run_id}/nodes/{pod}/log`` (KFP reads the ``main``
  container of pod ``node_id``; a pod that is gone is a 400, as there);
* ``run_details.task_details`` lists every node of the run's Argo workflow, as KFP's
  persistence agent reports them, in creation order: the workflow's own node (display name
  = the workflow name, ``<pipeline name>-<5 characters>``), ``root-driver`` and the ``root``
  DAG, then per task its ``<task>-driver`` pod, the task's node (its ``child_tasks`` name
  the executor pod) and that pod's node, displayed ``executor``.
"""

from __future__ import annotations

import copy
import json
import re
import threading
import urllib.parse
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

PREFIX = "/pipeline"
NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
#: gRPC codes KFP puts in its error JSON.
GRPC = {400: 3, 401: 16, 403: 7, 404: 5, 409: 6, 500: 13, 503: 14}


def now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class Refusal(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class Task:
    name: str
    display_name: str
    deps: list[str]
    state: str = "PENDING"
    start_time: str | None = None
    end_time: str | None = None
    pod: str | None = None
    error: str | None = None
    started: int = 0  # creation order of its nodes (KFP lists tasks by creation time)
    driver_pod: str | None = None


@dataclass
class Run:
    run_id: str
    namespace: str
    body: dict[str, Any]
    spec: dict[str, Any]
    platform_spec: dict[str, Any] | None
    tasks: dict[str, Task]
    state: str = "PENDING"
    created_at: str = field(default_factory=now)
    finished_at: str | None = None
    error: str | None = None
    #: The Argo workflow's name (``<pipelineInfo.name>-<5 characters>``): its root node's.
    workflow: str = ""
    node_ids: dict[str, str] = field(default_factory=dict)

    def node_id(self, key: str) -> str:
        """A stable task id per node (the same node keeps its id from one GetRun to the next)."""
        return self.node_ids.setdefault(key, uuid.uuid4().hex[:12])


class FakeKfp:
    """The API server; ``tokens`` maps each valid bearer token to its namespace."""

    def __init__(self, tokens: dict[str, str]) -> None:
        self.tokens = dict(tokens)
        self.lock = threading.RLock()
        self.experiments: dict[str, dict[str, Any]] = {}
        self.runs: dict[str, Run] = {}
        self.logs: dict[tuple[str, str], str] = {}
        self.requests: list[tuple[str, str]] = []
        #: The next N requests are answered 503 (KFP's API server restarting).
        self.unavailable = 0
        #: (status, message) to refuse run creation with, after the checks passed.
        self.refuse_runs: tuple[int, str] | None = None
        self._started = 0
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _any(self) -> None:
                fake._handle(self)

            do_GET = do_POST = do_DELETE = _any

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}{PREFIX}"

    def start(self) -> FakeKfp:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    # -- what the test drives ---------------------------------------------------------------
    def run(self, run_id: str | None = None) -> Run:
        """A run by id, or the only/newest one."""
        with self.lock:
            if run_id is not None:
                return self.runs[run_id]
            return list(self.runs.values())[-1]

    def advance(self, run_id: str, fail: dict[str, str] | None = None) -> str:
        """One notch: the run starts, or its running tasks end (those in ``fail`` FAILED
        with that message) and the tasks now ready start; the run ends when no task is left.
        Returns the run's state."""
        fail = fail or {}
        with self.lock:
            run = self.runs[run_id]
            if run.state in ("SUCCEEDED", "FAILED", "CANCELED", "CANCELING"):
                return run.state
            if run.state == "PENDING":
                run.state = "RUNNING"
            else:
                for t in run.tasks.values():
                    if t.state == "RUNNING":
                        t.end_time = now()
                        if t.name in fail:
                            t.state, t.error = "FAILED", fail[t.name]
                            self._log(run, t, f"Error: {fail[t.name]}\n")
                        else:
                            t.state = "SUCCEEDED"
                            self._log(run, t, f"{t.name}: done\n")
            changed = True
            while changed:
                changed = False
                for t in run.tasks.values():
                    if t.state != "PENDING":
                        continue
                    deps = [run.tasks[d].state for d in t.deps]
                    if any(s in ("FAILED", "SKIPPED") for s in deps):
                        t.state, t.end_time, changed = "SKIPPED", now(), True
                    elif all(s == "SUCCEEDED" for s in deps) and not any(
                        run.tasks[d].end_time is None for d in t.deps
                    ):
                        t.state, t.start_time = "RUNNING", now()
                        self._started += 1
                        t.started = self._started
                        # a pod name is a DNS label, whatever the run's display name holds
                        # (a run named "ui-kfp 2026-12-05 23:29" has spaces and colons)
                        t.pod = re.sub(
                            r"[^a-z0-9-]+",
                            "-",
                            f"{run.body.get('display_name', 'run')}-{t.name}-"
                            f"{uuid.uuid4().hex[:5]}".lower(),
                        )
                        t.driver_pod = (
                            f"{run.workflow}-system-container-driver-{uuid.uuid4().int % 10**10}"
                        )
                        self._log(run, t, f"{t.name}: started in {t.pod}\n")
            if all(t.state in ("SUCCEEDED", "FAILED", "SKIPPED") for t in run.tasks.values()):
                failed = [t.name for t in run.tasks.values() if t.state == "FAILED"]
                run.state = "FAILED" if failed else "SUCCEEDED"
                run.error = f"task(s) failed: {', '.join(failed)}" if failed else None
                run.finished_at = now()
            return run.state

    def finish_cancel(self, run_id: str) -> None:
        """What the persistence agent reports once the workflow's pods are gone."""
        with self.lock:
            run = self.runs[run_id]
            assert run.state == "CANCELING", run.state
            for t in run.tasks.values():
                if t.state in ("RUNNING", "CANCELING", "PENDING"):
                    t.state, t.end_time = "CANCELED", now()
            run.state, run.finished_at = "CANCELED", now()

    def append_log(self, run_id: str, task: str, text: str) -> None:
        with self.lock:
            run = self.runs[run_id]
            self._log(run, run.tasks[task], text)

    def forget_logs(self) -> None:
        """Pods recycled: KFP cannot serve their logs any more."""
        with self.lock:
            self.logs.clear()

    def _log(self, run: Run, t: Task, text: str) -> None:
        if t.pod:
            self.logs[(run.run_id, t.pod)] = self.logs.get((run.run_id, t.pod), "") + text

    # -- HTTP -------------------------------------------------------------------------------
    def _handle(self, h: BaseHTTPRequestHandler) -> None:
        url = urllib.parse.urlsplit(h.path)
        path = url.path
        query = {k: v[-1] for k, v in urllib.parse.parse_qs(url.query).items()}
        length = int(h.headers.get("Content-Length") or 0)
        raw = h.rfile.read(length) if length else b""
        with self.lock:
            self.requests.append((h.command, path))
        try:
            if self.unavailable > 0:
                with self.lock:
                    self.unavailable -= 1
                raise Refusal(503, "upstream connect error or disconnect/reset before headers")
            if not path.startswith(PREFIX + "/apis/"):
                raise Refusal(404, "Not Found")
            path = path[len(PREFIX) :]
            if path == "/apis/v2beta1/healthz":
                self._send(h, 200, {"commit_sha": "fake", "tag_name": "2.5.0", "multi_user": True})
                return
            ns = self._namespace_of(h)
            body = json.loads(raw) if raw else {}
            with self.lock:
                status, out = self._route(h.command, path, query, body, ns)
            if isinstance(out, str):
                data = out.encode()
                h.send_response(status)
                h.send_header("Content-Type", "text/plain")
                h.send_header("Content-Length", str(len(data)))
                h.end_headers()
                h.wfile.write(data)
                return
            self._send(h, status, out)
        except Refusal as e:
            self._send(
                h,
                e.status,
                {
                    "error_message": e.message,
                    "code": GRPC.get(e.status, 2),
                    "message": e.message,
                    "details": [],
                },
            )
        except json.JSONDecodeError as e:
            self._send(
                h,
                400,
                {
                    "error_message": f"invalid JSON: {e}",
                    "code": 3,
                    "message": f"invalid JSON: {e}",
                    "details": [],
                },
            )

    def _send(self, h: BaseHTTPRequestHandler, status: int, body: Any) -> None:
        data = json.dumps(body).encode()
        h.send_response(status)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        h.wfile.write(data)

    def _namespace_of(self, h: BaseHTTPRequestHandler) -> str:
        auth = h.headers.get("Authorization") or ""
        if not auth.startswith("Bearer "):
            raise Refusal(
                401, "Unauthenticated: Request header error: there is no user identity header."
            )
        ns = self.tokens.get(auth[len("Bearer ") :].strip())
        if ns is None:
            raise Refusal(401, "Unauthenticated: Failed to authenticate token review")
        return ns

    def _authorize(self, ns: str, wanted: str | None, verb: str, resource: str) -> None:
        if wanted is not None and wanted != ns:
            raise Refusal(
                403,
                f"PermissionDenied: User 'system:serviceaccount:{ns}:default-editor' "
                f"is not authorized with reason:  (request: &ResourceAttributes"
                f"{{Namespace:{wanted},Verb:{verb},Group:pipelines.kubeflow.org,"
                f"Resource:{resource}}})",
            )

    def _route(
        self, method: str, path: str, query: dict[str, str], body: Any, ns: str
    ) -> tuple[int, Any]:
        parts = path.strip("/").split("/")[2:]  # after apis/<version>
        if (
            path.startswith("/apis/v1alpha1/runs/")
            and len(parts) == 5
            and parts[2] == "nodes"
            and parts[4] == "log"
            and method == "GET"
        ):
            run = self._get_run(parts[1], ns)
            log = self.logs.get((run.run_id, parts[3]))
            if log is None:  # KFP asks Kubernetes for pod `node_id`'s "main" container
                raise Refusal(
                    400, f'Failed to read logs for run {run.run_id}: pods "{parts[3]}" not found'
                )
            return 200, log
        if parts == ["experiments"] and method == "GET":
            self._authorize(ns, query.get("namespace", ns), "list", "experiments")
            exps = [
                e for e in self.experiments.values() if e["namespace"] == query.get("namespace", ns)
            ]
            flt = json.loads(query["filter"]) if query.get("filter") else {}
            for p in flt.get("predicates", []):
                if p.get("key") == "display_name" and p.get("operation") == "EQUALS":
                    exps = [e for e in exps if e["display_name"] == p.get("string_value")]
            return 200, ({"experiments": exps, "total_size": len(exps)} if exps else {})
        if parts == ["experiments"] and method == "POST":
            want = body.get("namespace") or ns
            self._authorize(ns, want, "create", "experiments")
            if not body.get("display_name"):
                raise Refusal(400, "Invalid input error: Experiment must have a non-empty name")
            if any(
                e["display_name"] == body["display_name"] and e["namespace"] == want
                for e in self.experiments.values()
            ):
                raise Refusal(
                    409,
                    f"Already exist error: Failed to create a new experiment. The "
                    f"name {body['display_name']} already exists. Please specify a "
                    "new name",
                )
            exp = {
                "experiment_id": str(uuid.uuid4()),
                "display_name": body["display_name"],
                "namespace": want,
                "created_at": now(),
                "storage_state": "AVAILABLE",
            }
            self.experiments[exp["experiment_id"]] = exp
            return 200, exp
        if parts == ["runs"] and method == "POST":
            return 200, self._create_run(body, ns)
        if len(parts) == 2 and parts[0] == "runs" and method == "GET":
            return 200, self._run_json(self._get_run(parts[1], ns))
        if (
            len(parts) == 2
            and parts[0] == "runs"
            and parts[1].endswith(":terminate")
            and method == "POST"
        ):
            run = self._get_run(parts[1][: -len(":terminate")], ns)
            if run.state in ("PENDING", "RUNNING"):
                run.state = "CANCELING"
                for t in run.tasks.values():
                    if t.state == "RUNNING":
                        t.state = "CANCELING"
            return 200, {}
        raise Refusal(404, f"Not Found: {method} {path}")

    def _get_run(self, run_id: str, ns: str) -> Run:
        run = self.runs.get(run_id)
        if run is None:
            raise Refusal(404, f"Failed to get run: ResourceNotFoundError: Run {run_id} not found")
        self._authorize(ns, run.namespace, "get", "runs")
        return run

    def _create_run(self, body: dict[str, Any], ns: str) -> dict[str, Any]:
        exp = self.experiments.get(body.get("experiment_id") or "")
        if exp is None:
            raise Refusal(
                404, f"Failed to create a run: experiment {body.get('experiment_id')} not found"
            )
        self._authorize(ns, exp["namespace"], "create", "runs")
        spec = body.get("pipeline_spec")
        if not isinstance(spec, dict):
            raise Refusal(
                400,
                "Invalid input error: a run needs pipeline_spec (this fake "
                "does not store pipeline versions)",
            )
        platform = None
        if "pipeline_spec" in spec:  # the {pipeline_spec, platform_spec} pair
            spec, platform = spec["pipeline_spec"], spec.get("platform_spec")
        self._check_upload(spec)
        self._check_references(spec, body.get("runtime_config") or {})
        if self.refuse_runs:
            raise Refusal(*self.refuse_runs)
        tasks = {}
        for name, t in spec["root"]["dag"]["tasks"].items():
            tasks[name] = Task(
                name,
                (t.get("taskInfo") or {}).get("name") or name,
                list(t.get("dependentTasks") or []),
            )
        run = Run(
            str(uuid.uuid4()),
            exp["namespace"],
            copy.deepcopy(body),
            spec,
            platform,
            tasks,
            workflow=f"{spec['pipelineInfo']['name']}-{uuid.uuid4().hex[:5]}",
        )
        self.runs[run.run_id] = run
        return self._run_json(run)

    def _check_upload(self, spec: dict[str, Any]) -> None:
        """What KFP checks when a package is uploaded (v2_template.go)."""
        if spec.get("schemaVersion") != "2.1.0":
            raise Refusal(
                400,
                "Invalid input error: KFP only supports schema version 2.1.0, "
                f"but the pipeline spec has version {spec.get('schemaVersion')}",
            )
        name = (spec.get("pipelineInfo") or {}).get("name") or ""
        if not name or not NAME.match(name):
            raise Refusal(
                400,
                f"Invalid input error: pipeline name '{name}' does not match "
                "[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*",
            )
        if not isinstance(spec.get("root"), dict):
            raise Refusal(400, "Invalid input error: pipeline spec is invalid: root is missing")

    def _check_references(self, spec: dict[str, Any], runtime: dict[str, Any]) -> None:
        """What the backend's compiler finds only at run creation (visitor.go, argocompiler)."""
        comps = spec.get("components") or {}
        executors = (spec.get("deploymentSpec") or {}).get("executors") or {}
        tasks = (spec["root"].get("dag") or {}).get("tasks") or {}
        if not tasks:
            raise Refusal(400, "Invalid input error: the root DAG has no tasks")
        for name, t in tasks.items():
            ref = (t.get("componentRef") or {}).get("name")
            if ref not in comps:
                raise Refusal(
                    400, f"Internal error: failed to compile: cannot find component ref name={ref}"
                )
            label = comps[ref].get("executorLabel")
            if label is not None and label not in executors:
                raise Refusal(
                    400,
                    f"Internal error: failed to compile: executor(label={label}) "
                    "not found in deployment config",
                )
            for d in t.get("dependentTasks") or []:
                if d not in tasks:
                    raise Refusal(400, f"Internal error: task {name} depends on unknown task {d}")
        declared = (spec["root"].get("inputDefinitions") or {}).get("parameters") or {}
        for p in runtime.get("parameters") or {}:
            if p not in declared:
                raise Refusal(
                    400, f"Invalid input error: parameter {p} is not declared by the pipeline"
                )

    def _run_json(self, run: Run) -> dict[str, Any]:
        return self._run_body(run, self._task_details(run))

    def _task_details(self, run: Run) -> list[dict[str, Any]]:
        """Every node of the run's workflow, KFP's own among the tasks (see the module doc)."""
        never = "1970-01-01T00:00:00Z"

        def node(
            key: str,
            name: str,
            state: str,
            start: str | None,
            end: str | None,
            pods: list[str],
            error: str | None = None,
        ) -> dict[str, Any]:
            return {
                "run_id": run.run_id,
                "task_id": run.node_id(key),
                "display_name": name,
                "create_time": run.created_at,
                "start_time": start or never,
                "end_time": end or never,
                "state": state,
                **({"error": {"code": 2, "message": error}} if error else {}),
                "child_tasks": [{"pod_name": p} for p in pods],
            }

        if run.state == "PENDING":
            return []
        ended = run.finished_at if run.state in ("SUCCEEDED", "FAILED", "CANCELED") else None
        details = [
            node("workflow", run.workflow, run.state, run.created_at, ended, []),
            node(
                "root-driver",
                "root-driver",
                "SUCCEEDED",
                run.created_at,
                run.created_at,
                [f"{run.workflow}-system-dag-driver-{run.node_id('root-driver-pod')}"],
            ),
            node("root", "root", run.state, run.created_at, ended, []),
        ]
        for t in sorted(
            (t for t in run.tasks.values() if t.state != "PENDING"),
            key=lambda t: (t.started == 0, t.started),
        ):
            pods = [t.pod] if t.pod else []
            if t.driver_pod:
                details.append(
                    node(
                        f"{t.name}/driver",
                        f"{t.name}-driver",
                        "SUCCEEDED",
                        t.start_time,
                        t.start_time,
                        [t.driver_pod],
                    )
                )
            details.append(
                node(t.name, t.display_name, t.state, t.start_time, t.end_time, pods, t.error)
            )
            if t.pod:
                details.append(
                    node(
                        f"{t.name}/executor",
                        "executor",
                        t.state,
                        t.start_time,
                        t.end_time,
                        pods,
                        t.error,
                    )
                )
        return details

    def _run_body(self, run: Run, details: list[dict[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {
            "run_id": run.run_id,
            "display_name": run.body.get("display_name"),
            "experiment_id": run.body.get("experiment_id"),
            "state": run.state,
            "created_at": run.created_at,
            "scheduled_at": run.created_at,
            "finished_at": run.finished_at or "1970-01-01T00:00:00Z",
            "runtime_config": run.body.get("runtime_config") or {},
            "run_details": {"task_details": details},
        }
        if run.error:
            out["error"] = {"code": 2, "message": run.error}
        return out
