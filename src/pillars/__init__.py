"""pillars: a Git + DVC template that takes tabular data through the ML lifecycle, one stage per pillar."""
