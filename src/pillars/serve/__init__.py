"""Exactly what ships inside the Bento: the serving model, the service and its prediction log.
Imports core (metrics and rules only, which ship with it)."""
