"""The promotion step of ``train_and_promote``, kept apart from the heavy steps on purpose.

``promote`` is not cached (promoting is an effect on the registry, decided anew for every
version), so it runs on every ``train_and_promote``. This module imports nothing but mlops, so a
fully cached run imports neither pandas nor scikit-learn.
"""

from __future__ import annotations

from typing import Annotated

from mlops import get_step_context, step


@step(enable_cache=False)
def promote(accuracy: float, threshold: float = 0.9) -> Annotated[str, "promotion"]:
    """Promote this run's model version to production if its accuracy reaches the threshold.

    Not cached: promotion is an effect on the registry, decided anew for every version.
    """
    version = get_step_context().model_version
    if accuracy >= threshold:
        version.set_stage("production", force=True)
        return (
            f"{version.name} v{version.number} promoted to production "
            f"(accuracy {accuracy:.3f} >= {threshold})"
        )
    return (
        f"{version.name} v{version.number} not promoted: accuracy {accuracy:.3f} < threshold "
        f"{threshold}; production is unchanged"
    )
