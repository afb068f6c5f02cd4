"""Glue for GitHub Actions and the GitHub CLI: pull-request reports, the CI remote, the container smoke test,
alerts, and the check that dvc.yaml declares each stage's code. Imports anything but stages."""
