"""The shared page helpers (app.ui) and the training-settings form generated from core.spec."""

from __future__ import annotations

import html
import re

import pytest
from markdown_it import MarkdownIt

from app import ui
from app.training_form import setting_inputs
from core.spec import TrainingSettings

HOSTILE = [
    "**x** [a](javascript:1) <b>$x$</b> :red[y] \\",
    "# heading\n- item\n> quote\n1. one",
    "`code` ~~strike~~ _em_ ![img](http://x/y.png) <script>alert(1)</script>",
    "&amp; &lt;b&gt; :material/delete: :smile: | a | b |\n|---|---|",
    "<https://example.com> www.example.com [ref]: http://x *a*b* \\*",
]


@pytest.mark.parametrize("text", HOSTILE)
def test_md_escape_renders_hostile_text_literally(text):
    rendered = MarkdownIt("commonmark").render(ui.md_escape(text))
    # One paragraph, with exactly the text's characters (line breaks as <br />): no emphasis, link, image,
    # heading, list, code, HTML or entity survives.
    lines = [html.escape(line, quote=False) for line in text.split("\n")]
    assert rendered == "<p>" + "<br />\n".join(lines) + "</p>\n"


@pytest.mark.parametrize("text", HOSTILE)
def test_md_escape_leaves_no_streamlit_markup(text):
    """Streamlit's own Markdown (:red[x], :material/icon:, $math$) is not CommonMark: every mark must be escaped."""
    escaped = ui.md_escape(text)
    unescaped = re.sub(r"\\[!-/:-@\[-`{-~]", "", escaped)
    assert not re.search(r"[!-/:-@\[-`{-~]", unescaped), unescaped
    assert re.sub(r"\\(.)", r"\1", escaped).replace("  \n", "\n") == text


def test_duration_reads_as_time():
    assert [ui.duration(s) for s in (0, 12.4, 59.6, 185, 7325)] == ["0s", "12s", "1m 00s", "3m 05s", "2h 02m"]
    assert ui.duration(None) == "" and ui.duration(float("nan"), unknown="unknown") == "unknown"


def test_the_training_form_has_an_input_per_setting_with_its_description():
    inputs = {i.name: i for i in setting_inputs()}
    assert list(inputs) == list(TrainingSettings.model_fields)
    for name, field in TrainingSettings.model_fields.items():
        assert field.description, f"TrainingSettings.{name} needs a description: it is the form's help"
        assert inputs[name].help.startswith(field.description)
    assert inputs["method"].kind == "select" and inputs["method"].choices == ("auto", "lora", "qlora", "full")
    assert (inputs["batch_size"].kind, inputs["batch_size"].low, inputs["batch_size"].high) == ("int", 1, 4096)
    assert (inputs["lora_dropout"].low, inputs["lora_dropout"].high) == (0.0, 0.99)  # lt=1 moves in by a step
    assert inputs["max_steps"].kind == "optional_int" and inputs["lora_target_modules"].kind == "names"
    assert inputs["learning_rate"].kind == "float_text"  # 2e-4 would show as 0.00 in a number input
    assert inputs["lora_r"].label == "LoRA r" and inputs["warmup_ratio"].label == "Warmup ratio"


def test_the_training_form_gives_back_the_settings_it_was_filled_with():
    settings = TrainingSettings(method="lora", max_steps=50, learning_rate=3e-5, lora_target_modules=["q_proj", "v"])
    inputs = setting_inputs()
    form = {i.name: i.form_value(getattr(settings, i.name)) for i in inputs}
    assert form["max_steps"] == 50 and form["learning_rate"] == "3e-05" and form["lora_target_modules"] == "q_proj, v"
    assert TrainingSettings(**{i.name: i.setting_value(form[i.name]) for i in inputs}) == settings
    defaults = {i.name: i.setting_value(i.form_value(i.default)) for i in inputs}
    assert TrainingSettings(**defaults) == TrainingSettings()


def test_a_training_input_that_does_not_parse_says_what_to_write():
    rate = next(i for i in setting_inputs() if i.name == "learning_rate")
    with pytest.raises(ValueError, match=r"Learning rate 'fast' is not a number \(e\.g\. 0\.0002\)"):
        rate.setting_value("fast")
