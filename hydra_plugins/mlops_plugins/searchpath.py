"""Hydra search-path plugin: the current folder's ``conf/`` comes before mlops' packaged configs.

Hydra searches ``--config-dir`` and ``hydra.searchpath`` *after* the primary config path, so they
cannot shadow a packaged pipeline; prepending here lets a project's
``conf/pipeline/train_and_promote.yaml`` replace the packaged example of that name. It only acts
for mlops' own app (primary config ``pkg://mlops.conf``), never for other Hydra apps.
"""

from __future__ import annotations

import os

from hydra.core.config_search_path import ConfigSearchPath, SearchPathQuery
from hydra.plugins.search_path_plugin import SearchPathPlugin


class MlopsProjectSearchPath(SearchPathPlugin):
    def manipulate_search_path(self, search_path: ConfigSearchPath) -> None:
        main = search_path.find_first_match(SearchPathQuery(provider="main"))
        if main == -1 or "mlops" not in str(search_path.get_path()[main].path):
            return
        project = os.path.join(os.getcwd(), "conf")
        if os.path.isdir(project):
            search_path.prepend(provider="mlops-project", path=f"file://{project}")
