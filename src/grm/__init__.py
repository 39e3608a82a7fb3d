"""grm: generalist reward models trained with Self-Principled Critique Tuning (DeepSeek-GRM).

Importing the package changes nothing in the process: MKL's strict reproducibility mode (``MKL_CBWR``) is set where
a build starts (``grm.threads.strict_math``: every ``set_torch_threads`` call, the CLI, a pipeline run).
"""
