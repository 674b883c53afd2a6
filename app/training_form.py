"""The training-settings form, generated from `core.spec.TrainingSettings.model_fields`.

Each field becomes one input, chosen from its annotation: Literal -> selectbox, bool -> checkbox,
int/float -> number input within the Field's bounds, optional int -> number input where 0 means none,
list[str] | Literal -> text. Labels are the field titles (else the names), help is the description,
so a new setting is one line in core/spec.py.
"""

from __future__ import annotations

import types
import typing
from dataclasses import dataclass
from typing import Any, Literal

import annotated_types
import streamlit as st
from pydantic.fields import FieldInfo

from core.spec import TrainingSettings

COLUMNS = 4  # inputs per row
# A number input shows two decimals: a float whose default is smaller than that (a learning rate) is
# typed as text, in e-notation (2e-4).
SMALLEST_SHOWN = 0.01


@dataclass(frozen=True)
class SettingInput:
    """One setting's input: how it is drawn, and how its value goes between the setting and the form."""

    name: str
    label: str
    help: str
    kind: str  # "select", "checkbox", "int", "float", "optional_int", "float_text" or "names"
    default: Any  # the setting's default
    choices: tuple = ()
    low: float | None = None
    high: float | None = None

    def form_value(self, value: Any) -> Any:
        """A setting's value as its input holds it."""
        if self.kind == "optional_int":
            return int(value or 0)
        if self.kind == "float":
            return float(value)
        if self.kind == "float_text":
            return f"{value:g}"
        if self.kind == "names":
            return value if isinstance(value, str) else ", ".join(value)
        return value

    def setting_value(self, value: Any) -> Any:
        """The input's value as the setting takes it; ValueError saying what to write."""
        if self.kind == "optional_int":
            return int(value) if int(value or 0) > 0 else None
        if self.kind == "float_text":
            try:
                return float(str(value).strip())
            except ValueError:
                raise ValueError(f"{self.label} '{value}' is not a number (e.g. {self.default:g})") from None
        if self.kind == "names":
            text = str(value or "").strip()
            if not text or text in self.choices:
                return text or self.default
            return [n.strip() for n in text.split(",") if n.strip()]
        return value

    def draw(self, where, key: str) -> Any:
        """The input in `where` (a column), bound to the session-state `key`; its value."""
        if self.kind == "select":
            return where.selectbox(self.label, list(self.choices), key=key, help=self.help)
        if self.kind == "checkbox":
            return where.checkbox(self.label, key=key, help=self.help)
        if self.kind in ("float_text", "names"):
            return where.text_input(self.label, key=key, help=self.help)
        if self.kind == "float":
            step = 0.05 if self.high is not None and self.high <= 1 else 0.5
            return where.number_input(
                self.label, min_value=self.low, max_value=self.high, step=step, key=key, help=self.help
            )
        low = 0 if self.kind == "optional_int" else self.low
        return where.number_input(self.label, min_value=low, max_value=self.high, step=1, key=key, help=self.help)


def setting_inputs() -> list[SettingInput]:
    """An input per TrainingSettings field, in the order the fields are declared."""
    return [_setting_input(name, field) for name, field in TrainingSettings.model_fields.items()]


def draw_inputs(inputs: list[SettingInput], key_of) -> dict[str, Any]:
    """The inputs, COLUMNS to a row; `key_of(name)` gives each input's session-state key. Their values by name."""
    values = {}
    for start in range(0, len(inputs), COLUMNS):
        row = inputs[start : start + COLUMNS]
        for column, setting in zip(st.columns(COLUMNS), row):
            values[setting.name] = setting.draw(column, key_of(setting.name))
    return values


def _setting_input(name: str, field: FieldInfo) -> SettingInput:
    label = field.title or name.replace("_", " ").capitalize()
    common = {"name": name, "label": label, "help": field.description or "", "default": field.default}
    annotation = field.annotation
    args = typing.get_args(annotation)
    if typing.get_origin(annotation) is Literal:
        return SettingInput(kind="select", choices=args, **common)
    if annotation is bool:
        return SettingInput(kind="checkbox", **common)
    if annotation in (int, float):
        low, high = _bounds(field, step=1 if annotation is int else SMALLEST_SHOWN)
        if annotation is float and 0 < field.default < SMALLEST_SHOWN:
            return SettingInput(kind="float_text", **common)
        return SettingInput(kind=annotation.__name__, low=low, high=high, **common)
    if _is_union(annotation) and set(args) == {int, type(None)}:
        common["help"] = f"{common['help']}; 0 = none".lstrip("; ")
        return SettingInput(kind="optional_int", **common)
    literal_choices = [c for a in args if typing.get_origin(a) is Literal for c in typing.get_args(a)]
    if _is_union(annotation) and list[str] in args and literal_choices:
        return SettingInput(kind="names", choices=tuple(literal_choices), **common)
    raise TypeError(f"TrainingSettings.{name}: no dashboard input for {annotation}; add one in app/training_form.py")


def _bounds(field: FieldInfo, step: float) -> tuple[float | None, float | None]:
    """The Field's bounds as an input's inclusive limits: an exclusive bound moves in by the input's step."""
    low = high = None
    for rule in field.metadata:
        if isinstance(rule, annotated_types.Ge):
            low = rule.ge
        elif isinstance(rule, annotated_types.Gt):
            low = rule.gt + step
        elif isinstance(rule, annotated_types.Le):
            high = rule.le
        elif isinstance(rule, annotated_types.Lt):
            high = rule.lt - step
    if step != 1:  # a float input wants float limits
        low, high = (None if b is None else float(b) for b in (low, high))
    return low, high


def _is_union(annotation) -> bool:
    return typing.get_origin(annotation) in (typing.Union, types.UnionType)
