"""Real benchmarks and training sets as canonical ``Item``s, their official scoring, and decontamination.

Importing the package registers every converter (see ``grm.benchmarks.registry``).
"""

from grm.benchmarks import (  # noqa: F401  (imported to register)
    gsm8k,
    helpsteer2,
    judgebench,
    math_pairs,
    offsetbias,
    ppe,
    realmistake,
    rewardbench,
    rewardbench2,
    rmb,
    rmbench,
    skywork,
    ultrafeedback,
)
from grm.benchmarks.registry import (
    BenchmarkSpec,
    HubSource,
    available,
    convert_rows,
    get_benchmark,
    load_benchmark,
    load_hub,
    register,
    resolve_benchdata,
)

__all__ = [
    "BenchmarkSpec",
    "HubSource",
    "available",
    "convert_rows",
    "get_benchmark",
    "load_benchmark",
    "load_hub",
    "register",
    "resolve_benchdata",
]
