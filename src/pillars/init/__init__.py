"""`make init`: a first params.yaml and schema for your own data, from a look at it. Profiles the columns
(task, placeholders, identifiers, free text, leakage, dates), proposes the settings that follow, and writes
them for a person to review. Imports core."""
