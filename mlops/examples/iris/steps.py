"""Steps of the iris reference workflow: ``train_and_promote`` and ``do_predictions``.

The promotion step lives in :mod:`mlops.examples.iris.promotion`, a module that imports no heavy
library: it runs on every ``train_and_promote`` (it is not cached), and a fully cached run should
not pay for importing pandas and scikit-learn just to decide a promotion.
"""

from __future__ import annotations

from typing import Annotated, Tuple  # noqa: UP035 - the Tuple[...] spelling reads well in docs

import numpy as np
import pandas as pd
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split

from mlops import get_step_context, step

FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]


@step
def load_data() -> Annotated[pd.DataFrame, "iris"]:
    """The iris data set (shipped with scikit-learn): four features and a `target` column."""
    data = load_iris()
    frame = pd.DataFrame(data.data, columns=FEATURES)
    frame["target"] = data.target
    return frame


@step
def split(
    data: pd.DataFrame, test_size: float = 0.3, random_state: int = 42
) -> Tuple[  # noqa: UP006
    Annotated[pd.DataFrame, "X_train"],
    Annotated[pd.DataFrame, "X_test"],
    Annotated[pd.Series, "y_train"],
    Annotated[pd.Series, "y_test"],
]:
    """Stratified train/test split."""
    X_train, X_test, y_train, y_test = train_test_split(
        data[FEATURES],
        data["target"],
        test_size=test_size,
        random_state=random_state,
        stratify=data["target"],
    )
    return X_train, X_test, y_train, y_test


@step
def train(
    X_train: pd.DataFrame, y_train: pd.Series, C: float = 1.0, max_iter: int = 500
) -> Annotated[LogisticRegression, "trained_model"]:
    """A logistic regression classifier."""
    return LogisticRegression(C=C, max_iter=max_iter).fit(X_train, y_train)


@step
def evaluate(
    model: LogisticRegression, X_test: pd.DataFrame, y_test: pd.Series
) -> Annotated[float, "accuracy"]:
    """Accuracy on the held-out split; it is also recorded in the model version's metadata."""
    return float(model.score(X_test, y_test))


@step
def load_inference_data(
    n_samples: int = 30, seed: int = 0
) -> Annotated[pd.DataFrame, "inference_data"]:
    """New measurements to classify: iris rows with a little noise (deterministic per seed)."""
    rng = np.random.default_rng(seed)
    data = load_iris()
    rows = rng.choice(len(data.data), size=n_samples, replace=True)
    noisy = data.data[rows] + rng.normal(0.0, 0.1, size=(n_samples, len(FEATURES)))
    return pd.DataFrame(noisy, columns=FEATURES)


@step
def predict(model: LogisticRegression, data: pd.DataFrame) -> Annotated[pd.Series, "predictions"]:
    """Predicted class of each row, with the model resolved in the pipeline config."""
    return pd.Series(model.predict(data[FEATURES]), index=data.index, name="prediction")


@step
def predict_with_context(data: pd.DataFrame) -> Annotated[pd.Series, "predictions"]:
    """Predicted class of each row, with the model fetched through the step context."""
    model = get_step_context().model_version.get_model_artifact("trained_model")
    return pd.Series(model.predict(data[FEATURES]), index=data.index, name="prediction")
