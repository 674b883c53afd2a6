"""Small study specs on the offline demo data, shared by tests."""

from __future__ import annotations

from core.spec import StudySpec, parse_spec

TINY_TRAINING = {"method": "full", "min_steps": 4, "learning_rate": 0.001, "max_seq_length": 64, "eval_batch_size": 256}


def tiny_spec(**over) -> StudySpec:
    data = {
        "name": "small",
        "model": "builtin:tiny-lm",
        "task": "classification",
        "d0": {"catalog": "demo/d0", "name": "d0"},
        "benchmark": {"catalog": "demo/benchmark", "name": "benchmark", "max_rows": 60},
        "candidates": [
            {"catalog": "demo/helpful", "name": "helpful", "max_rows": 400},
            {"catalog": "demo/offdomain", "name": "offdomain", "max_rows": 400},
        ],
        "sizes": [40, 80, 160],
        "seeds": [0],
        "target_size": 1000,
        "bootstrap": 30,
        "training": TINY_TRAINING,
    }
    data.update(over)
    return parse_spec(data)
