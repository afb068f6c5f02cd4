"""Where the work runs: this process, or a Dask cluster (`compute` in params.yaml)."""
