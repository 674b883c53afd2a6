"""Scaling-law fits: curve forms (law), the robust fit (optimize), and a study's fits (study_fit).

docs/SCALING.md explains the choices. The names other layers use are re-exported here.
"""

from core.scaling.law import ALPHA_BOUNDS, FORMS, LOG_LINEAR, MIN_ERROR, POWER_LAW, CurveForm, from_error, to_error
from core.scaling.study_fit import (
    BASELINE,
    NO_FIT_NOTE,
    ArmFit,
    Backtest,
    Prediction,
    StudyFit,
    clean_points,
    fit_power_law,
    fit_study,
    json_float,
    trend_direction,
)

__all__ = [
    "ALPHA_BOUNDS",
    "BASELINE",
    "FORMS",
    "LOG_LINEAR",
    "MIN_ERROR",
    "NO_FIT_NOTE",
    "POWER_LAW",
    "Backtest",
    "CurveForm",
    "ArmFit",
    "Prediction",
    "StudyFit",
    "clean_points",
    "fit_power_law",
    "fit_study",
    "from_error",
    "json_float",
    "to_error",
    "trend_direction",
]
