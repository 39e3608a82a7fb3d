"""grm: generalist reward models trained with Self-Principled Critique Tuning (DeepSeek-GRM).

Importing the package sets one process default before torch runs a kernel: ``MKL_CBWR=AUTO,STRICT`` (unless the
environment sets ``MKL_CBWR``), MKL's strict conditional numerical reproducibility. Without it MKL splits the
reduction of a large-K matmul (a weight gradient summed over every token of a batch) across threads on AVX-512
Xeons, so 1 and 2 threads give different last bits, and a stage's result would follow the thread count the
parallel-stage schedule gave it (``tasks.workers``). With it, measured on a 2-core AVX-512 Xeon, RFT, meta-RM and
GRPO steps give bitwise the same weights on 1 and 2 threads (``tests/integration/test_thread_count.py``) at a
cost of 3-5% per training step (``bench/train_speed.py`` side by side). Non-MKL builds ignore the variable.
"""

import os as _os

_os.environ.setdefault("MKL_CBWR", "AUTO,STRICT")
