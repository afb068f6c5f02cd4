"""A Dask client for `compute.engine: dask`: of the scheduler at `compute.address`, or of a local cluster of
`compute.workers` processes with `compute.threads_per_worker` threads each, on this machine."""

import logging
from collections.abc import Iterator
from contextlib import contextmanager

from distributed import Client, LocalCluster

from pillars.core.errors import PillarsError
from pillars.core.params import ComputeParams

logger = logging.getLogger(__name__)
CONNECT_TIMEOUT = "20s"


@contextmanager
def dask_client(compute: ComputeParams) -> Iterator[Client]:
    """A connected client, closed (with its local cluster) on leaving."""
    if compute.address:
        try:
            client = Client(compute.address, timeout=CONNECT_TIMEOUT)
        except OSError as error:
            raise PillarsError(
                f"params.yaml: compute.address: no Dask scheduler answers at {compute.address!r} ({error})"
            ) from error
        with client:
            logger.info("compute: Dask scheduler %s, %d workers", compute.address, len(client.nthreads()))
            yield client
        return
    cluster = LocalCluster(
        n_workers=compute.workers,
        threads_per_worker=compute.threads_per_worker,
        processes=True,
        dashboard_address=":0",  # any free port: several clusters may run on one machine
        silence_logs=logging.ERROR,
    )
    with cluster, Client(cluster) as client:
        logger.info("compute: local Dask cluster, %d worker processes", compute.workers)
        yield client


@contextmanager
def engine_client(compute: ComputeParams) -> Iterator[Client | None]:
    """The client of `dask_client` for `engine: dask`; None (work in this process) for `engine: local`."""
    if compute.engine == "local":
        yield None
        return
    with dask_client(compute) as client:
        yield client
