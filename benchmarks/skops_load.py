"""What loading the iris model costs a fresh process: skops's own path against mlops's.

``python benchmarks/skops_load.py [--runs 5]``

Each figure is the median wall time of ``--runs`` fresh ``python -c`` processes (interleaved, so
that both see the same machine load), each of which loads the trained iris model
(``LogisticRegression``, as ``train_and_promote`` stores it) from bytes on disk:

* ``skops``: ``import skops.io``, then ``get_untrusted_types`` and ``loads`` -- the path mlops
  took before 0.2 (and the one every skops user takes): importing ``skops.io`` builds its list
  of trusted types from ``sklearn.utils.all_estimators()``, which imports every estimator module
  of scikit-learn;
* ``mlops``: :class:`mlops.serializers.SklearnSkops` ``loads``, which imports ``skops.io``
  without that list (see :func:`mlops._skops.skops_io`) and trusts what it vets itself;
* ``floor``: ``import sklearn.linear_model, numpy, scipy`` -- what the model needs anyway.

Not part of ``python -m benchmarks`` (it measures one library's import, not mlops's goals).
"""

from __future__ import annotations

import argparse
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SNIPPETS = {
    "floor": "import sklearn.linear_model, numpy, scipy",
    "skops": (
        "import skops.io as sio; data = open({path!r}, 'rb').read(); "
        "sio.loads(data, trusted=sio.get_untrusted_types(data=data))"
    ),
    "mlops": (
        "from mlops.serializers import get_serializer; "
        "get_serializer('skops').loads(open({path!r}, 'rb').read())"
    ),
}


def _model(folder: Path) -> Path:
    code = (
        "import skops.io as sio; from sklearn.datasets import load_iris; "
        "from sklearn.linear_model import LogisticRegression; X, y = load_iris(return_X_y=True); "
        f"open({str(folder / 'model.skops')!r}, 'wb').write("
        "sio.dumps(LogisticRegression(max_iter=500).fit(X, y)))"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
    return folder / "model.skops"


def _time(code: str) -> tuple[float, float]:
    """Wall seconds and CPU seconds (user + system) of one fresh process running ``code``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    wall: dict[str, list[float]] = {name: [] for name in SNIPPETS}
    cpu: dict[str, list[float]] = {name: [] for name in SNIPPETS}
    with tempfile.TemporaryDirectory() as tmp:
        path = str(_model(Path(tmp)))
        for _ in range(args.runs):
            for name, snippet in SNIPPETS.items():
                seconds, used = _time(snippet.format(path=path))
                wall[name].append(seconds)
                cpu[name].append(used)
    # CPU time too: on a shared, busy machine it varies far less than wall time
    for label, figures in (("wall", wall), ("cpu", cpu)):
        medians = {name: statistics.median(ts) for name, ts in figures.items()}
        for name, median in medians.items():
            above = median - medians["floor"]
            runs = " ".join(f"{t:.3f}" for t in figures[name])
            print(
                f"{label:4} {name:5} median {median:.3f} s ({above:+.3f} s above the floor); {runs}"
            )
        saved = medians["skops"] - medians["mlops"]
        print(f"{label:4} mlops saves {saved:.3f} s per process that loads a model")


if __name__ == "__main__":
    main()
