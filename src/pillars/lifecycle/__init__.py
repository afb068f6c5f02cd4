"""The model over time: the Git-tag registry (GTO), sweeps as DVC experiments, retraining on what
monitoring learnt. Imports core, serve, bento and monitoring."""
