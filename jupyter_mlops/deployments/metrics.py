"""A deployment's scoring metrics, scraped now: what ``api/v1/deployments/<name>/metrics``
answers.

Every scoring process serves ``/metrics`` in Prometheus' text format
(:mod:`jupyter_mlops.registry.metrics`). A target says which processes serve which version
(:class:`ServingSet`: one per version / replica set, with its share of the traffic and the
texts scraped from its processes); :func:`summarize` adds up the processes of each set into
request and error counters and one latency histogram (all scoring endpoints together). The
counters are the processes' own, so they start over when a process does: the client computes
rates from consecutive scrapes and treats a decrease as a restart (Prometheus' ``rate``
semantics).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from ..registry.metrics import PREFIX


@dataclass
class ServingSet:
    """The processes serving one version of a deployment."""

    version: str | None
    model_uri: str | None
    #: Share of the deployment's requests routed to this set (0-100).
    traffic_percent: int
    #: How many processes (replicas, pods) serve it.
    replicas: int
    #: The ``/metrics`` text of each process that answered the scrape.
    texts: list[str] = field(default_factory=list)


def _empty() -> dict[str, Any]:
    return {"requests_total": 0, "errors_total": 0, "buckets": {}, "sum": 0.0, "count": 0}


def parse(text: str) -> dict[str, Any]:
    """One process' counters: requests, errors, latency buckets ``{le: cumulative}`` (finite
    bounds), sum and count; all scoring endpoints added up. Unknown series are ignored; a
    text that is not Prometheus' format raises ValueError."""
    out = _empty()
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == f"{PREFIX}_requests_total":
                out["requests_total"] += int(s.value)
            elif s.name == f"{PREFIX}_errors_total":
                out["errors_total"] += int(s.value)
            elif s.name == f"{PREFIX}_request_duration_seconds_bucket":
                le = float(s.labels.get("le", "inf"))
                if math.isfinite(le):
                    out["buckets"][le] = out["buckets"].get(le, 0) + int(s.value)
            elif s.name == f"{PREFIX}_request_duration_seconds_sum":
                out["sum"] += float(s.value)
            elif s.name == f"{PREFIX}_request_duration_seconds_count":
                out["count"] += int(s.value)
    return out


def summarize(sets: Iterable[ServingSet]) -> list[dict[str, Any]]:
    """The JSON of each serving set: its processes' counters added up. ``latency_seconds``'
    ``buckets`` are ``[upper bound, cumulative count]`` pairs in ascending order (finite
    bounds; ``count`` is the ``+Inf`` bucket). Texts that do not parse count as not
    scraped."""
    out = []
    for s in sets:
        total = _empty()
        scraped = 0
        for text in s.texts:
            try:
                one = parse(text)
            except ValueError:
                continue
            scraped += 1
            for key in ("requests_total", "errors_total", "sum", "count"):
                total[key] += one[key]
            for le, n in one["buckets"].items():
                total["buckets"][le] = total["buckets"].get(le, 0) + n
        out.append(
            {
                "version": s.version,
                "model_uri": s.model_uri,
                "traffic_percent": s.traffic_percent,
                "replicas": s.replicas,
                "scraped_replicas": scraped,
                "requests_total": total["requests_total"],
                "errors_total": total["errors_total"],
                "latency_seconds": {
                    "buckets": [[le, n] for le, n in sorted(total["buckets"].items())],
                    "sum": round(total["sum"], 6),
                    "count": total["count"],
                },
            }
        )
    return out


async def scrape(urls: Iterable[str], timeout: float = 5.0) -> list[str]:
    """The ``/metrics`` texts of the processes at ``urls`` (base URLs) that answer, fetched
    together; one that does not answer is left out."""
    import asyncio

    from tornado.httpclient import AsyncHTTPClient, HTTPRequest

    async def one(url: str) -> str | None:
        req = HTTPRequest(
            url.rstrip("/") + "/metrics", request_timeout=timeout, connect_timeout=timeout
        )
        try:
            r = await AsyncHTTPClient().fetch(req, raise_error=False)
        except Exception:  # noqa: BLE001 - a process that does not answer is not scraped
            return None
        return r.body.decode("utf-8", "replace") if r.code == 200 else None

    texts = await asyncio.gather(*(one(u) for u in urls))
    return [t for t in texts if t is not None]
