"""Study and run specifications: validated, hashable, the contract between every layer.

A study spec is what a user writes (YAML or JSON) or the dashboard fills in. It is validated here,
once, with messages that name the field and say what to fix, so that nothing downstream has to
second-guess its input.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator, model_validator

from core import tasks
from core.decontamination import DEFAULT_THRESHOLD
from core.hashing import stable_hash
from core.models import BUILTIN_PREFIX, MINILM, TINY_LM, builtin_problem, is_random_init
from core.tasks.generative import AnswerExtraction

TASKS = tasks.names()
TASK_METRICS = {t.name: t.metric_names for t in tasks.all_tasks()}
# Metrics where lower is better; every other metric is a score in [0, 1].
LOSS_METRICS = tasks.lower_is_better()
MAX_SIZE = 10_000_000
MAX_TARGET_SIZE = 10_000_000_000
# A study is (candidates + baseline) x sizes x seeds runs, each a fine-tuning job: past these
# counts a spec is a typo (seeds: range(10**6)), not a study, and submitting it would flood the queue.
MAX_SIZES = 50
MAX_SEEDS = 1000
MAX_RUNS = 20_000
SPEC_FILE_MAX_BYTES = 1024**2  # a study spec is a few hundred bytes

# A Hub repo id: "name" or "owner/name", letters, digits, '-', '_', '.', as huggingface_hub
# validates it (no '--' or '..', at most 96 characters per part). Anything else never reaches the Hub.
_HUB_ID_RE = re.compile(r"^(?:[\w\-.]+/)?[\w\-.]{1,96}$", re.ASCII)


def hub_id_problem(value: str, what: str = "dataset") -> str | None:
    """Why `value` is not a Hub repo id, or None when it is one."""
    if (
        not _HUB_ID_RE.fullmatch(value)
        or "--" in value
        or ".." in value
        or any(part[:1] in "-." or part[-1:] in "-." for part in value.split("/"))
        or value.endswith(".git")
    ):
        example = "rajpurkar/squad" if what == "dataset" else "Qwen/Qwen2.5-0.5B"
        return (
            f"'{_shown(value)}' is not a Hub {what} id: write owner/name (e.g. {example}) with letters, digits, "
            "'-', '_' or '.' only"
        )
    return None


def _shown(value: str, limit: int = 80) -> str:
    text = "".join(ch if ch.isprintable() else "?" for ch in str(value))
    return text if len(text) <= limit else text[: limit // 2 - 1] + "…" + text[-(limit // 2) :]


class SpecError(ValueError):
    """A study spec that cannot be run, with one line per problem, each naming field and fix."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("invalid study spec:\n" + "\n".join(f"  - {p}" for p in problems))


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SourceSpec(_Model):
    """Where a dataset comes from and how its columns map onto the task's fields.

    Exactly one of `path` (a local file or a folder laid out like a Hub dataset repo), `hub_id`
    (a Hugging Face Hub dataset id) or `catalog` (an id in catalog/candidates.json) is set.
    """

    name: str | None = Field(None, description="display name; defaults to the catalog id, hub id or file name")
    path: str | None = None
    hub_id: str | None = None
    catalog: str | None = None
    config: str | None = None
    split: str = "train"
    columns: dict[str, str] = Field(default_factory=dict, description="task field -> source column")
    label_names: list[str] | None = Field(None, description="names for integer labels, in index order")
    label_map: dict[str, str] = Field(default_factory=dict, description="source label -> study label")
    answer_extraction: AnswerExtraction = "none"
    options: dict[str, Any] = Field(default_factory=dict, description="the task's own source options (see core.tasks)")
    max_rows: int | None = Field(None, gt=0, description="cap on rows read; large Hub sets are sampled by streaming")
    revision: str | None = None

    @field_validator("hub_id")
    @classmethod
    def _hub_id(cls, v: str | None) -> str | None:
        problem = hub_id_problem(v) if v else None
        if problem:  # "../x" or "a/b/c" would otherwise be tried as a local path or sent to the Hub
            raise ValueError(problem + "; for local data give 'path' instead")
        return v

    @model_validator(mode="after")
    def _one_location(self) -> SourceSpec:
        given = [k for k in ("path", "hub_id", "catalog") if getattr(self, k)]
        if len(given) != 1:
            raise ValueError(
                "give exactly one of 'path' (local file or folder), 'hub_id' (Hub dataset id) "
                f"or 'catalog' (catalog id); got {given or 'none'}"
            )
        return self

    @property
    def display_name(self) -> str:
        if self.name:
            return self.name
        if self.catalog:
            return self.catalog
        if self.hub_id:
            return self.hub_id + (f":{self.config}" if self.config else "")
        return Path(self.path or "").stem or str(self.path)


class TrainingSettings(_Model):
    """How one run trains. One dataclass-like record, as in TRL's examples.

    The dashboard draws one input per field, labelled with its title (else its name) and its description as help.
    """

    method: Literal["auto", "lora", "qlora", "full"] = Field(
        "auto",
        description="auto: LoRA for pretrained models, full fine-tuning for the random-init builtin:tiny-lm; "
        "qlora needs CUDA",
    )
    epochs: float = Field(1.0, gt=0, le=100, description="passes over the mixture, so the budget grows with the data")
    max_steps: int | None = Field(None, gt=0, description="fixed step budget; overrides epochs")
    min_steps: int = Field(0, ge=0, description="floor of optimizer steps (a random-init model needs one)")
    learning_rate: float = Field(2e-4, gt=0, lt=1, description="e.g. 2e-4 (LoRA), 1e-3 (built-in model)")
    lr_scheduler: Literal["linear", "cosine", "constant"] = Field(
        "linear", title="LR scheduler", description="how the learning rate decays after warmup"
    )
    warmup_ratio: float = Field(0.0, ge=0, lt=1, description="share of the steps spent warming the learning rate up")
    weight_decay: float = Field(0.0, ge=0, lt=1, description="AdamW weight decay")
    batch_size: int = Field(8, gt=0, le=4096, description="examples per device per optimizer step")
    grad_accum: int = Field(1, gt=0, le=1024, title="Gradient accumulation", description="batches per optimizer step")
    max_seq_length: int = Field(
        256,
        ge=8,
        le=131072,
        title="Max sequence length",
        description="longer examples are truncated to this many tokens",
    )
    lora_r: int = Field(16, gt=0, le=1024, title="LoRA r", description="rank of the LoRA update")
    lora_alpha: int = Field(32, gt=0, le=4096, title="LoRA alpha", description="LoRA scaling (alpha / r)")
    lora_dropout: float = Field(0.05, ge=0, lt=1, title="LoRA dropout", description="dropout on the LoRA layers")
    lora_target_modules: list[str] | Literal["all-linear"] = Field(
        "all-linear", title="LoRA target modules", description="all-linear, or module names such as q_proj, v_proj"
    )
    bf16: Literal["auto", "on", "off"] = Field("auto", title="bf16", description="auto: bf16 where the GPU supports it")
    batching: Literal["padded", "padding_free"] = Field(
        "padded",
        description="padded: shuffled batches padded to their longest row; padding_free: the same batches "
        "concatenated with no padding (TRL; a causal LM with FlashAttention 2 or 3 on a CUDA GPU)",
    )
    eval_batch_size: int = Field(64, gt=0, le=4096, description="examples per evaluation batch")
    max_new_tokens: int = Field(32, gt=0, le=4096, description="longest generated answer (generative tasks)")


class StudySpec(_Model):
    name: str = Field(..., min_length=1, max_length=200)
    model: str = Field(..., min_length=1, description="Hub id, local folder, builtin:tiny-lm or builtin:minilm")
    task: tasks.TaskName
    d0: SourceSpec
    benchmark: SourceSpec | None = None
    benchmark_holdout: int | None = Field(
        None, gt=0, description="take this many rows out of D0 as the benchmark (when no benchmark source)"
    )
    candidates: list[SourceSpec] = Field(..., min_length=1)
    sizes: list[int] = Field(..., min_length=1)
    d0_share: float = Field(0.3, ge=0, le=1)
    seeds: list[int] = Field(default_factory=lambda: [0], min_length=1)
    target_size: int
    metrics: list[str] | None = None
    primary_metric: str | None = None
    training: TrainingSettings = Field(default_factory=TrainingSettings)
    output_dir: str | None = None
    trust_remote_code: bool = False
    bootstrap: int = Field(200, ge=0, le=5000, description="bootstrap replicates for intervals")
    refine: Literal["manual", "auto"] = Field(
        "manual", description="auto: when the decision is inconclusive, the study adds the proposed runs itself"
    )
    refine_budget: int = Field(8, ge=0, le=10_000, description="the most runs automatic refinement may add")
    near_duplicate_threshold: float | None = Field(
        DEFAULT_THRESHOLD,
        ge=0.5,
        le=1.0,
        description="candidate rows whose MiniLM cosine to a benchmark row is at least this are removed as "
        "near-copies; null: exact duplicates only",
    )

    @field_validator("model")
    @classmethod
    def _model(cls, v: str, info: ValidationInfo) -> str:
        fix = f"give a Hub model id (owner/name), a local folder saved with save_pretrained, {TINY_LM} or {MINILM}"
        if v.startswith(BUILTIN_PREFIX):
            problem = builtin_problem(v)
            if problem:
                raise ValueError(problem.replace(v, _shown(v)))
            return v
        if "\x00" in v:
            raise ValueError(f"'{_shown(v)}' contains a NUL byte; {fix}")
        folder = Path(v).expanduser()
        if v.startswith(("/", "./", "../", "~", "\\")) or folder.is_dir():
            # A stored spec (a worker's ranking, reindex) was checked at submit, on the machine that
            # submitted it; the folder need not exist on every box that reads the spec again.
            if not folder.is_dir() and not (info.context or {}).get("stored"):
                raise ValueError(f"'{_shown(v)}' is a path, but there is no such folder here; {fix}")
            return v
        problem = hub_id_problem(v, "model")
        if problem:
            raise ValueError(f"{problem}; or give a local folder, {TINY_LM} or {MINILM}")
        return v

    @field_validator("sizes")
    @classmethod
    def _sizes(cls, v: list[int]) -> list[int]:
        if len(v) > MAX_SIZES:
            raise ValueError(f"{len(v):,} sizes is too many (at most {MAX_SIZES}); three to five sizes make a curve")
        bad = [s for s in v if s <= 0 or s > MAX_SIZE]
        if bad:
            raise ValueError(f"sizes must be between 1 and {MAX_SIZE:,}; fix {bad[:10]}")
        if len(set(v)) != len(v):
            raise ValueError(f"sizes must be distinct; got {v}")
        return sorted(v)

    @field_validator("seeds")
    @classmethod
    def _seeds(cls, v: list[int]) -> list[int]:
        if len(v) > MAX_SEEDS:
            raise ValueError(
                f"{len(v):,} seeds is too many (at most {MAX_SEEDS}); two or three seeds give the intervals"
            )
        if len(set(v)) != len(v):
            raise ValueError(f"seeds must be distinct; got {v}")
        if any(s < 0 or s > 2**31 - 1 for s in v):
            raise ValueError("seeds must be between 0 and 2147483647")
        return v

    @model_validator(mode="after")
    def _consistency(self) -> StudySpec:
        # Every cross-field problem is collected, one "field.path: what to fix" line each, so a
        # user sees them all at once (_format_errors splits the lines back into problems).
        problems: list[str] = []
        allowed = TASK_METRICS[self.task]
        metrics = list(self.metrics or tasks.get(self.task).default_metrics(_math_benchmark(self)))
        unknown = [m for m in metrics if m not in allowed]
        if unknown:
            problems.append(f"metrics: {unknown} are not available for task '{self.task}'; choose from {list(allowed)}")
        elif len(set(metrics)) != len(metrics):
            problems.append(f"metrics: must be distinct; got {metrics}")
        else:
            primary = self.primary_metric or metrics[0]
            if primary not in metrics:
                problems.append(f"primary_metric: '{primary}' must be one of the study's metrics {metrics}")
            continuous = tasks.get(self.task).continuous_metric  # always measured: its signal-to-noise is compared
            if continuous not in metrics:
                metrics.append(continuous)
            object.__setattr__(self, "metrics", metrics)
            object.__setattr__(self, "primary_metric", primary)
        problems += _option_problems(self)
        if self.benchmark is None and self.benchmark_holdout is None:
            problems.append(
                "benchmark: give a 'benchmark' source, or 'benchmark_holdout' (rows of D0 kept out for evaluation)"
            )
        if self.benchmark is not None and self.benchmark_holdout is not None:
            problems.append("benchmark_holdout: give either 'benchmark' or 'benchmark_holdout', not both")
        if self.target_size <= 0 or self.target_size > MAX_TARGET_SIZE:
            problems.append(f"target_size: must be between 1 and {MAX_TARGET_SIZE:,}")
        elif self.target_size < max(self.sizes):
            problems.append(
                f"target_size: {self.target_size} must be at least the largest size ({max(self.sizes)}): "
                "it is the size the study predicts"
            )
        names = [c.display_name for c in self.candidates]
        d0_name = self.d0.display_name
        for i, n in enumerate(names):
            if n in names[:i]:
                problems.append(
                    f"candidates.{i}: name '{n}' is already used by candidates.{names.index(n)}; set a distinct 'name'"
                )
            elif n == "baseline":
                problems.append(
                    f"candidates.{i}: the name 'baseline' is reserved for the D0-only runs; set another 'name'"
                )
            elif n == d0_name:
                problems.append(
                    f"candidates.{i}: name '{n}' is also D0's name, so provenance could not tell them apart; "
                    "set a distinct 'name'"
                )
        runs = (len(self.candidates) + 1) * len(self.sizes) * len(self.seeds)
        if runs > MAX_RUNS:
            problems.append(
                f"sizes: (candidates + baseline) x sizes x seeds = {len(self.candidates) + 1} x {len(self.sizes)} x "
                f"{len(self.seeds)} = {runs:,} runs, above the limit of {MAX_RUNS:,}; use fewer sizes, seeds "
                "or candidates"
            )
        if self.training.method in ("qlora", "lora") and is_random_init(self.model):
            problems.append(
                f"training.method: '{self.training.method}' cannot train {self.model}: its weights are random, and "
                "LoRA only adapts trained ones; use method 'full' (or 'auto'), or a pretrained model such as "
                f"{MINILM}"
            )
        if problems:
            raise ValueError("\n".join(problems))
        return self

    @property
    def is_loss_primary(self) -> bool:
        return self.primary_metric in LOSS_METRICS

    def candidate_names(self) -> list[str]:
        return [c.display_name for c in self.candidates]

    def study_id(self) -> str:
        """Content hash of the spec (the output_dir does not change what is computed)."""
        data = self.model_dump(exclude={"output_dir"})
        if data["training"]["batching"] == "padded":  # ids from before the field stay valid
            del data["training"]["batching"]
        if data["refine"] == "manual":  # what the study computes does not depend on them: ids stay as they were
            del data["refine"], data["refine_budget"]
        if data["near_duplicate_threshold"] == DEFAULT_THRESHOLD:  # ids from before the field stay valid
            del data["near_duplicate_threshold"]
        for src in (data["d0"], data["benchmark"], *data["candidates"]):
            if src is not None and not src["options"]:
                del src["options"]  # specs without task options keep the ids they had before options existed
        return "st-" + stable_hash(data)[:12]


def _math_benchmark(spec: StudySpec) -> bool:
    """Whether the study is judged on math answers: its benchmark (or D0, when held out) extracts a
    final answer, or is a catalog entry that does or is tagged `math`."""
    src = spec.benchmark or spec.d0
    if src.answer_extraction != "none":
        return True
    if src.catalog is None:
        return False
    from core.catalog import is_math_entry  # core.catalog imports this module

    return is_math_entry(src.catalog)


def _option_problems(spec: StudySpec) -> list[str]:
    """Each source's task options checked by the task, one "field: fix" line per problem."""
    task = tasks.get(spec.task)
    sources = [("d0", spec.d0), ("benchmark", spec.benchmark)]
    sources += [(f"candidates.{i}", c) for i, c in enumerate(spec.candidates)]
    problems = []
    for where, src in sources:
        if src is not None and src.options:
            try:
                task.check_options(src.options)
            except ValueError as err:
                problems.append(f"{where}.options: {err}")
    return problems


def _format_errors(err: ValidationError) -> list[str]:
    problems = []
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"]) or "spec"
        msg = e["msg"].removeprefix("Value error, ")
        if not e["loc"] and e["type"] == "value_error":  # cross-field lines already name their fields
            problems.extend(msg.split("\n"))
            continue
        if e["type"] == "extra_forbidden":
            msg = "unknown field; remove it or check its spelling"
        elif e["type"] == "missing":
            msg = "required field is missing; add it"
        problems.append(f"{loc}: {msg}")
    return problems


def parse_spec(data: Any, *, stored: bool = False) -> StudySpec:
    """Validate a mapping into a StudySpec, raising SpecError with one line per problem.

    `stored`: the spec of a submitted study, read back (its local model folder was checked at submit).
    """
    if not isinstance(data, dict):
        raise SpecError([f"spec: expected a mapping of fields, got {type(data).__name__}"])
    try:
        return StudySpec.model_validate(data, context={"stored": stored})
    except ValidationError as err:
        raise SpecError(_format_errors(err)) from None


def load_spec(path: str | Path) -> StudySpec:
    """Read a YAML or JSON study spec file. Relative local paths resolve against the file's folder."""
    path = Path(path)
    if not path.is_file():
        raise SpecError([f"spec file '{path}' does not exist; give the path to a .yaml or .json file"])
    try:
        size = path.stat().st_size
        if size > SPEC_FILE_MAX_BYTES:
            raise SpecError(
                [
                    f"{path.name}: {size:,} bytes is too large for a study spec (limit "
                    f"{SPEC_FILE_MAX_BYTES:,}); is it the right file?"
                ]
            )
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as err:
        raise SpecError(
            [
                f"{path.name}: not UTF-8 text (byte 0x{err.object[err.start : err.start + 1].hex()} at offset "
                f"{err.start:,}); save the spec as UTF-8"
            ]
        ) from None
    except OSError as err:
        raise SpecError([f"spec file '{path}' cannot be read ({err.strerror or err}); check its permissions"]) from None
    try:
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as err:
        raise SpecError(
            [
                f"{path.name}: not valid "
                f"{'JSON' if path.suffix == '.json' else 'YAML'}{syntax_error_detail(err)}; fix the syntax"
            ]
        ) from None
    spec = parse_spec(data)
    return resolve_paths(spec, path.parent)


def syntax_error_detail(err: Exception) -> str:
    """ " at line L, column C (problem)" for a YAML or JSON syntax error, on one line."""
    where = ""
    mark = getattr(err, "problem_mark", None)
    if mark is not None:
        where = f" at line {mark.line + 1}, column {mark.column + 1}"
    elif isinstance(err, json.JSONDecodeError):
        where = f" at line {err.lineno}, column {err.colno}"
    problem = getattr(err, "problem", None) or getattr(err, "msg", None) or str(err)
    return f"{where} ({' '.join(str(problem).split())})"


def resolve_paths(spec: StudySpec, base: Path) -> StudySpec:
    """Make relative local source paths absolute against `base` (the spec file's folder)."""

    def fix(src: SourceSpec | None) -> SourceSpec | None:
        if src is None or not src.path or Path(src.path).is_absolute():
            return src
        return src.model_copy(update={"path": str((base / src.path).resolve())})

    return spec.model_copy(
        update={"d0": fix(spec.d0), "benchmark": fix(spec.benchmark), "candidates": [fix(c) for c in spec.candidates]}
    )


def dump_spec(spec: StudySpec) -> str:
    """YAML text of a spec, so the CLI and the dashboard share studies."""
    data = spec.model_dump(exclude_none=True)
    # Sources keep only what the user set: a written-out default (split: train) would otherwise
    # override the catalog entry's own value (split: train_sft) when the YAML is read back.
    for key in ("d0", "benchmark"):
        src = getattr(spec, key)
        if src is not None:
            data[key] = src.model_dump(exclude_unset=True, exclude_none=True)
    data["candidates"] = [c.model_dump(exclude_unset=True, exclude_none=True) for c in spec.candidates]
    return yaml.safe_dump(data, sort_keys=False)
