"""The meta.yaml reader agrees with PyYAML on what MLflow's file store writes.

MLflow writes these files with ``yaml.safe_dump(default_flow_style=False,
allow_unicode=True)``; the importer parses them without PyYAML. PyYAML (a
dependency of the ``mlflow`` test peer) is the oracle here.
"""

from __future__ import annotations

import random

import pytest

from jupyter_mlops.importers.metayaml import MetaYamlError, parse_meta_yaml

yaml = pytest.importorskip("yaml")

NASTY = list("abc xyz:#'\"\\\n\t-_/.,{}[]&*!|>%@`é漢\u2028\u2029\x85\x00\x07") + [
    "  ",
    "\n\n",
    ": ",
    " #",
    "- ",
]


def _random_text(rnd: random.Random, alphabet: list[str]) -> str:
    return "".join(rnd.choice(alphabet) for _ in range(rnd.choice([0, 1, 3, 10, 60, 100, 250])))


@pytest.mark.parametrize("allow_unicode", [True, False])
def test_random_values_round_trip_like_pyyaml(allow_unicode: bool) -> None:
    rnd = random.Random(20261127)
    for _ in range(600):
        data = {
            "name": _random_text(rnd, NASTY),
            "artifact_location": "file:///" + _random_text(rnd, NASTY).replace("\n", ""),
            "creation_time": rnd.randint(0, 2**45),
            "experiment_id": str(rnd.randint(0, 10**18)),
            "lifecycle_stage": "active",
            "tags": rnd.choice([[], {}, None]),
            "x": rnd.choice([1.5, True, False, None, "null", "1", "0.5", "true", "", " ", "~"]),
        }
        text = yaml.safe_dump(data, default_flow_style=False, allow_unicode=allow_unicode)
        assert parse_meta_yaml(text) == yaml.safe_load(text), text


def test_long_plain_values_fold_like_pyyaml() -> None:
    rnd = random.Random(7)
    for _ in range(400):
        s = "".join(rnd.choice("ab cd/:-.\n") for _ in range(rnd.choice([5, 90, 200, 400])))
        data = {
            "artifact_location": s,
            "name": s.replace("\n", " ").strip(),
            "z": s.replace(":", ""),
        }
        text = yaml.safe_dump(
            data, default_flow_style=False, allow_unicode=True, width=rnd.choice([20, 80])
        )
        assert parse_meta_yaml(text) == yaml.safe_load(text), text


def test_what_mlflow_writes() -> None:
    text = (
        "artifact_location: file:///tmp/mlruns/1\n"
        "creation_time: 1795775299301\n"
        "effective_trace_archival_retention: null\n"
        "experiment_id: '195993640444376107'\n"
        "lifecycle_stage: active\n"
        "name: 'exp: colon #hash \u00e9'\n"
        "status: 3\n"
        "tags: []\n"
    )
    assert parse_meta_yaml(text) == {
        "artifact_location": "file:///tmp/mlruns/1",
        "creation_time": 1795775299301,
        "effective_trace_archival_retention": None,
        "experiment_id": "195993640444376107",
        "lifecycle_stage": "active",
        "name": "exp: colon #hash \u00e9",
        "status": 3,
        "tags": [],
    }


@pytest.mark.parametrize(
    "text",
    ["just words\n", "name: 'unterminated\n", 'name: "bad \\q escape"\n', "name: 'a' trailing\n"],
)
def test_malformed_text_is_an_error(text: str) -> None:
    with pytest.raises(MetaYamlError):
        parse_meta_yaml(text)
