"""The foundations every other package stands on: params, schema, I/O, layout, errors, metrics, row rules,
lineage and running other programs. Imports nothing else of ours."""
