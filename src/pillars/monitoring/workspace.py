"""The monitor of this workspace: its logs and feedback against its packaged model and training reference
(the monitor stage and `make retrain` share it)."""

from pathlib import Path
from typing import Any

from pillars.bento.archive import packaged_model
from pillars.core import layout
from pillars.core.io import read_parquet
from pillars.core.params import Params
from pillars.monitoring.analysis import monitor
from pillars.monitoring.logs import Monitored, read_monitored


def monitor_workspace(
    logs: Path, feedback: Path, params: Params
) -> tuple[dict[str, Any], dict[str, dict[str, Any]], Monitored]:
    """Logs and feedback against this workspace's packaged model and reference: the report, the binned
    distributions of its plots, and the monitored rows."""
    serving = packaged_model(layout.SERVICE_ARCHIVE)
    monitored = read_monitored(logs, feedback, serving, params.dataset.target)
    report, distributions = monitor(
        monitored,
        read_parquet(layout.curated_split("train")),
        read_parquet(layout.TEST_PREDICTIONS),
        serving,
        params,
    )
    return report, distributions, monitored
