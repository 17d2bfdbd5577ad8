"""Hydra search-path plugin: the current folder's ``conf/`` comes before mlops' packaged configs.

Hydra searches ``--config-dir`` and ``hydra.searchpath`` *after* the primary config path, so they
cannot shadow a packaged pipeline; prepending here lets a project's
``conf/pipeline/train_and_promote.yaml`` replace the packaged example of that name. It only acts
for mlops' own app (primary config ``pkg://mlops.conf``), never for other Hydra apps.

The packaged configs live in the repository's top-level ``conf/`` (mapped into the package as
``mlops.conf`` by the build), so in a checkout of mlops itself the current folder's ``conf/``
*is* the packaged one; it is then not added a second time.
"""

from __future__ import annotations

import os

from hydra.core.config_search_path import ConfigSearchPath
from hydra.plugins.search_path_plugin import SearchPathPlugin


def _is_packaged_conf(folder: str) -> bool:
    """True if ``folder`` is where the packaged ``mlops.conf`` configs are read from."""
    from importlib.resources import files

    try:
        packaged = str(files("mlops.conf"))
    except (ImportError, TypeError):  # pragma: no cover - mlops.conf missing or not a folder
        return False
    try:
        return os.path.samefile(folder, packaged)
    except OSError:
        return False


class MlopsProjectSearchPath(SearchPathPlugin):
    def manipulate_search_path(self, search_path: ConfigSearchPath) -> None:
        # the public interface has get_path() (find_first_match is on the implementation only)
        main = next((e for e in search_path.get_path() if e.provider == "main"), None)
        if main is None or "mlops" not in str(main.path):
            return
        project = os.path.join(os.getcwd(), "conf")
        if os.path.isdir(project) and not _is_packaged_conf(project):
            search_path.prepend(provider="mlops-project", path=f"file://{project}")
