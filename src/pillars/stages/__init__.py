"""One entry module per DVC stage (`python -m pillars.stages.<stage>`): a thin edge that reads the deps and
writes the outs, and the core only that stage needs. Never imported by another module."""
