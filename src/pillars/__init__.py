"""pillars: the fifteen pillars of the ML lifecycle as one DVC pipeline over your tabular data.

Importing pillars pins the numeric kernels on x86-64 before NumPy loads, so a stage computes the same bits
on every such machine: NumPy's AVX-512 code paths and OpenBLAS's AVX-512 kernels round differently from
their AVX2 ones (a trained model's last bits, then its hashes, would depend on the CPU). Both are pinned to
the AVX2 ones, which every current x86-64 server has.

It also makes OpenMP threads (XGBoost's, LightGBM's, scikit-learn's) sleep rather than spin while they wait:
spinning threads hold a core another process needs, and on a busy 2-core machine a 2-thread XGBoost fit took
3.6x its idle time spinning, 1.45x passive (tests/benchmarks/results/threads.md). Waiting changes no result.
A value already set in the environment wins.
"""

import os
import platform

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

if platform.machine().lower() in {"x86_64", "amd64"}:
    os.environ.setdefault("NPY_DISABLE_CPU_FEATURES", "X86_V4 AVX512_ICL AVX512_SPR")
    os.environ.setdefault("OPENBLAS_CORETYPE", "Haswell")
