"""Rebuild the shipped benchmark archives ``benchdata/<name>.tar.gz`` from a full benchdata copy.

    python benchdata/pack.py /path/to/benchdata   # e.g. ../shared/benchdata

Each archive holds one top folder ``<name>/``: the README and licence files of this folder (``benchdata/<name>/``,
committed in plain text) plus the data files listed in ``DATA`` (exactly what the loaders read), taken unchanged
from the source copy. The archives are reproducible: sorted members, fixed owner/mode/mtime, gzip without a name or
time stamp, so the same inputs give the same bytes (and git stores nothing new). Only benchmarks whose licence
allows redistribution are listed (docs/benchdata.md: RMB has none and is not shipped).
"""

from __future__ import annotations

import gzip
import io
import sys
import tarfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
MTIME = 1767225600  # 2026-01-01T00:00:00Z: a fixed time stamp, so that rebuilding gives identical bytes
DATA = {  # benchmark folder -> data files (relative to it) its loader reads, plus test references
    "rewardbench": [
        "rewardbench_filtered.jsonl",
        "results/RM-R1-DeepSeek-Distilled-Qwen-32B.main_score.json",
        "results/RM-R1-DeepSeek-Distilled-Qwen-32B.per_subset.json",
        "results/readme_example_beaver-7b-v1.0-cost.per_subset.json",
    ],
    "realmistake": ["data.zip"],  # encrypted as published: the authors ask that examples stay out of plain text
    "judgebench": [
        "data/dataset=judgebench,response_model=gpt-4o-2024-05-13.jsonl",
        "data/dataset=judgebench,response_model=claude-3-5-sonnet-20240620.jsonl",
    ],
    "rm-bench": [
        "data/chat_filtered.json",
        "data/code_filtered.json",
        "data/safety-refuse_filtered.json",
        "data/safety-response_filtered.json",
    ],
    "gsm8k": ["example_model_solutions.jsonl"],
}


def members(name: str, source: Path) -> dict[str, Path]:
    """Archive member name -> file: the committed docs of ``benchdata/<name>/`` and the listed data files."""
    docs = {f"{name}/{p.name}": p for p in sorted((HERE / name).iterdir()) if p.is_file()}
    data = {f"{name}/{rel}": source / name / rel for rel in DATA[name]}
    missing = [str(p) for p in data.values() if not p.is_file()]
    if missing:
        raise SystemExit(f"missing in {source}: {', '.join(missing)}; pass a full benchdata folder")
    return docs | data


def pack(name: str, source: Path, out: Path) -> int:
    """Write ``out`` reproducibly; returns its size in bytes."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        dirs = sorted({str(Path(m).parent) for m in members(name, source)} | {name})
        for d in dirs:  # explicit folder entries, so that extraction gives them a sane mode
            info = tarfile.TarInfo(d)
            info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, MTIME
            tar.addfile(info)
        for member, path in sorted(members(name, source).items()):
            data = path.read_bytes()
            info = tarfile.TarInfo(member)
            info.size, info.mode, info.mtime = len(data), 0o644, MTIME
            tar.addfile(info, io.BytesIO(data))
    with open(out, "wb") as fh, gzip.GzipFile(filename="", mode="wb", fileobj=fh, mtime=0, compresslevel=9) as gz:
        gz.write(buf.getvalue())
    return out.stat().st_size


def main(argv: list[str]) -> int:
    if len(argv) != 1 or not Path(argv[0]).is_dir():
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    source = Path(argv[0])
    for name in DATA:
        size = pack(name, source, HERE / f"{name}.tar.gz")
        print(f"benchdata/{name}.tar.gz: {size:,} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
