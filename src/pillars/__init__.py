"""pillars: the fifteen pillars of the ML lifecycle as one DVC pipeline over your tabular data.

Importing pillars pins the numeric kernels on x86-64 before NumPy loads, so a stage computes the same bits
on every such machine: NumPy's AVX-512 code paths and OpenBLAS's AVX-512 kernels round differently from
their AVX2 ones (a trained model's last bits, then its hashes, would depend on the CPU). Both are pinned to
the AVX2 ones, which every current x86-64 server has; a value already set in the environment wins.
"""

import os
import platform

if platform.machine().lower() in {"x86_64", "amd64"}:
    os.environ.setdefault("NPY_DISABLE_CPU_FEATURES", "X86_V4 AVX512_ICL AVX512_SPR")
    os.environ.setdefault("OPENBLAS_CORETYPE", "Haswell")
