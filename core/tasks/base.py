"""The `Task` interface: everything the workbench needs to know about one kind of task.

A task module (`core/tasks/<name>.py`) defines a subclass and a module-level `TASK` instance; the
registry (`core.tasks`) finds it. Nothing outside the task modules branches on a task's name.
Importing this module is cheap: evaluation imports torch only inside `evaluate`.
"""

from __future__ import annotations

import json
import math
import re
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import yaml

if TYPE_CHECKING:
    from core.spec import SourceSpec

# SourceSpec fields beyond `columns` that only some tasks use; a task lists the ones it reads.
SOURCE_OPTIONS = ("label_names", "label_map", "answer_extraction")


@dataclass(frozen=True)
class EvalSettings:
    """What evaluation needs besides the model and the rows (from the study and its training settings)."""

    labels: list[str] | None = None
    answer_extraction: str = "none"
    batch_size: int = 64
    max_new_tokens: int = 32
    max_len: int = 256
    device: str = "cpu"

    @property
    def batching(self) -> dict[str, Any]:
        """The keyword arguments every scorer and generator in core.evaluation takes."""
        return {"batch_size": self.batch_size, "max_len": self.max_len, "device": self.device}


class Task(ABC):
    """One task: its row schema, normalization, prompt layout, evaluation, metrics and form hints."""

    name: ClassVar[str]
    position: ClassVar[int]  # order in lists and forms
    summary: ClassVar[str]  # one line for the form's help, e.g. "text → label"
    fields: ClassVar[tuple[str, ...]]  # required fields of a normalized row (what `columns` maps)
    optional_fields: ClassVar[tuple[str, ...]] = ()
    # Source columns tried, in order, when a field is neither mapped nor present under its own name.
    aliases: ClassVar[dict[str, tuple[str, ...]]] = {}
    field_help: ClassVar[dict[str, str]] = {}
    # Added to the "no column for field" error, per field.
    missing_help: ClassVar[dict[str, str]] = {}
    # Metric name -> higher is better; the first is the default primary metric.
    metrics: ClassVar[dict[str, bool]]
    # A metric that moves before the discrete ones do (DataDecide, Signal and Noise): every study
    # evaluates it, whatever metrics it asked for (core.spec adds it).
    continuous_metric: ClassVar[str] = "loss"
    source_options: ClassVar[tuple[str, ...]] = ()  # which of SOURCE_OPTIONS apply
    # Whether an encoder (BERT-like, core/encoder.py) can be trained for it; causal LMs serve every task.
    encoder_trains: ClassVar[bool] = False
    options: ClassVar[dict[str, str]] = {}  # task options (SourceSpec.options keys) -> what each does

    @property
    def known_fields(self) -> tuple[str, ...]:
        return self.fields + self.optional_fields

    @property
    def metric_names(self) -> tuple[str, ...]:
        return tuple(self.metrics)

    def default_metrics(self, math: bool = False) -> tuple[str, ...]:
        """The metrics a study measures when it names none (`math`: its benchmark is a math set)."""
        return self.metric_names

    def check_options(self, options: dict[str, Any]) -> None:
        """Raise ValueError saying what to fix when `options` (SourceSpec.options) do not fit this task."""
        unknown = [k for k in options if k not in self.options]
        if unknown:
            known = f"its options are {list(self.options)}" if self.options else "it takes none"
            raise ValueError(f"options {unknown} do not apply to task '{self.name}'; {known}")

    def missing_fields(self, mapping: dict[str, str], rows: list[dict], src: SourceSpec) -> list[str]:
        """Required fields without a column (a task may supply some fields another way)."""
        return [f for f in self.fields if f not in mapping]

    @abstractmethod
    def normalize_rows(
        self,
        name: str,
        rows: list[dict],
        mapping: dict[str, str],
        src: SourceSpec,
        loaded: Any,
        labels: list[str] | None,
        notes: list[str],
    ) -> tuple[list[dict], list[int]]:
        """Rows in this task's schema and the positions of the rows dropped; raises DataError with the fix."""

    def labels(self, rows: list[dict]) -> list[str] | None:
        """The sorted label set of normalized rows, for tasks that have one."""
        return None

    @abstractmethod
    def text(self, row: dict) -> str:
        """A normalized row's input text: what contamination compares against the benchmark."""

    @abstractmethod
    def prompt(self, row: dict, tokenizer=None) -> str:
        """The text the model continues (training and evaluation use the same layout)."""

    @abstractmethod
    def completion(self, row: dict, tokenizer=None) -> str:
        """The training target; the model is scored on the same layout."""

    @abstractmethod
    def evaluate(
        self, model, tokenizer, rows: list[dict], metrics: list[str], settings: EvalSettings
    ) -> tuple[dict[str, float], list]:
        """The requested metrics on the benchmark rows, and the model's prediction for each row."""

    def turns(self, row: dict, tokenizer=None) -> list[tuple[str, bool]] | None:
        """The row's training text as (segment, trained?) pairs when it holds more than one answer to
        learn (a multi-turn chat); None: the prompt, then the completion, as usual."""
        return None

    def metric_inputs(self, predictions: list, references: list, labels: list | None) -> tuple[list, list, list | None]:
        """Predictions, references and labels in the form the shipped `evaluate` modules take."""
        return predictions, references, labels


def parse_options(text: str) -> dict[str, Any]:
    """Task options as a form writes them: `name=value`, one per line or `;`-separated, each value read as
    YAML (`choices=[no, yes]`, `choice_columns=[sol1, sol2]`); ValueError saying what to fix."""
    out: dict[str, Any] = {}
    for part in [p.strip() for p in (text or "").replace(";", "\n").splitlines() if p.strip()]:
        name, eq, value = (s.strip() for s in part.partition("="))
        if not eq or not name or not value:
            raise ValueError(f"task option '{part}' is not name=value (e.g. choice_columns=[sol1, sol2])")
        try:
            out[name] = yaml.load(value, Loader=_OptionLoader)
        except yaml.YAMLError:
            raise ValueError(f"task option '{name}': '{value}' is not a value; write e.g. [a, b], 3 or text") from None
    return out


class _OptionLoader(yaml.SafeLoader):
    """YAML's safe loader with YAML 1.2 booleans: `[no, yes]` stays two words (YAML 1.1 reads False, True)."""


_BOOL_TAG = "tag:yaml.org,2002:bool"
_OptionLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != _BOOL_TAG]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_OptionLoader.add_implicit_resolver(_BOOL_TAG, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF"))


def format_options(options: dict[str, Any]) -> str:
    """The text `parse_options` reads back: `name=value; ...` with JSON values (valid YAML)."""
    return "; ".join(f"{k}={json.dumps(v, ensure_ascii=False)}" for k, v in options.items())


def gold_probability(log_likelihoods: list[float], gold: int) -> float:
    """The gold option's probability, normalized over the options' summed log-likelihoods (a softmax)."""
    top = max(log_likelihoods)
    return math.exp(log_likelihoods[gold] - top) / sum(math.exp(s - top) for s in log_likelihoods)
