"""Watching the model in production: reading prediction logs, drift statistics, the analysis and its HTML
report, and the replay demo. Imports core, serve and bento."""
