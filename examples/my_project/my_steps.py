"""Steps of a small project of one's own: a diabetes-progression regressor.

The data set ships with scikit-learn, so the example runs offline. ``train_regressor`` registers
a version of ``diabetes_regressor`` and promotes it if its R² is good enough; ``score_batch``
predicts with the production version.
"""

from __future__ import annotations

from typing import Annotated

import pandas as pd
from sklearn.datasets import load_diabetes
from sklearn.linear_model import Ridge
from sklearn.model_selection import train_test_split

from mlops import get_step_context, step


@step
def load() -> Annotated[pd.DataFrame, "patients"]:
    """Ten baseline measurements per patient and `target`, the disease progression a year later."""
    return load_diabetes(as_frame=True).frame


@step
def split(
    data: pd.DataFrame, test_size: float = 0.25, seed: int = 0
) -> tuple[
    Annotated[pd.DataFrame, "train"],
    Annotated[pd.DataFrame, "test"],
]:
    """Hold out `test_size` of the rows."""
    train, test = train_test_split(data, test_size=test_size, random_state=seed)
    return train, test


@step
def fit(train: pd.DataFrame, alpha: float = 1.0) -> Annotated[Ridge, "regressor"]:
    """A ridge regression of `target` on every other column."""
    return Ridge(alpha=alpha).fit(train.drop(columns="target"), train["target"])


@step
def score(regressor: Ridge, test: pd.DataFrame) -> Annotated[float, "r2"]:
    """R² on the held-out rows; recorded in the model version's metadata."""
    return float(regressor.score(test.drop(columns="target"), test["target"]))


@step(enable_cache=False)
def promote(r2: float, min_r2: float = 0.3) -> Annotated[str, "decision"]:
    """Put this run's version in production if its R² reaches `min_r2`."""
    version = get_step_context().model_version
    if r2 >= min_r2:
        version.set_stage("production", force=True)
        return f"v{version.number} promoted to production (R² {r2:.3f} >= {min_r2})"
    return f"v{version.number} kept out of production (R² {r2:.3f} < {min_r2})"


@step
def predict(regressor: Ridge, patients: pd.DataFrame) -> Annotated[pd.Series, "progression"]:
    """Predicted progression for each patient."""
    features = patients.drop(columns="target", errors="ignore")
    return pd.Series(regressor.predict(features), index=patients.index, name="progression")
