"""Steps of the iris reference workflow: ``train_and_promote`` and ``do_predictions``."""

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
) -> Tuple[
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


@step(enable_cache=False)
def promote(accuracy: float, threshold: float = 0.9) -> Annotated[str, "promotion"]:
    """Promote this run's model version to production if its accuracy reaches the threshold.

    Not cached: promotion is an effect on the registry, decided anew for every version.
    """
    version = get_step_context().model_version
    if accuracy >= threshold:
        version.set_stage("production", force=True)
        return f"{version.name} v{version.number} promoted to production (accuracy {accuracy:.3f} >= {threshold})"
    return (
        f"{version.name} v{version.number} not promoted: accuracy {accuracy:.3f} < threshold "
        f"{threshold}; production is unchanged"
    )


@step
def load_inference_data(n_samples: int = 30, seed: int = 0) -> Annotated[pd.DataFrame, "inference_data"]:
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
