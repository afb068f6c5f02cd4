"""What model training is made of: the feature pipeline, the candidate model families and the slices
models are judged on. Imports core."""
