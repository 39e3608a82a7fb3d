"""Every published data version of a project: from the DVC remote and from the MLflow runs that used one.

Two sources, merged by md5, because each may be all a user has:

- the DVC remote, when it is a folder (local, NFS): every ``{md5}.dir`` object in it is a version; the object's
  modification time is when it was first pushed (DVC never rewrites an object);
- the MLflow store: every run tagged ``grm.data.dvc_md5`` (pipeline, prepare_data and evaluate runs) used that
  version; its start time dates it when the remote cannot (a URL remote), and its id is what ``--run`` takes.

A version's date is the earliest of the two; ``--as-of DATE`` picks the newest version dated on or before the
end of that day (UTC): "the data we had on DATE".
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tasks import versioning
from tasks.data_store import DIR_SUFFIX, DataVersionError, hex_md5

RUN_TAG = "grm.data.dvc_md5"


@dataclass
class VersionInfo:
    """One data version: ``md5`` as in ``data.dvc`` (``...dir``), first seen (UTC, ISO), size, runs that used it."""

    md5: str
    date: str | None = None
    size: int | None = None
    nfiles: int | None = None
    in_remote: bool | None = None  # None: the remote is a URL (not listed)
    runs: list[str] = field(default_factory=list)  # oldest first

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _iso(seconds: float) -> str:
    return dt.datetime.fromtimestamp(seconds, dt.UTC).isoformat(timespec="seconds")


def remote_versions(root: str | Path, remote: str | None = None) -> dict[str, VersionInfo] | None:
    """The versions a folder remote holds (None for a URL remote, which is not listed)."""
    url = versioning.remote_config(root, remote)["url"]
    if "://" in url and not url.startswith("file://"):
        return None
    folder = Path(url.removeprefix("file://"))
    found: dict[str, VersionInfo] = {}
    for obj in sorted((folder / "files" / "md5").glob(f"*/*{DIR_SUFFIX}")):
        md5 = obj.parent.name + obj.name
        try:
            entries = json.loads(obj.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        sizes = []
        for e in entries:
            blob = folder / "files" / "md5" / e["md5"][:2] / e["md5"][2:]
            sizes.append(blob.stat().st_size if blob.is_file() else None)
        size = sum(s for s in sizes if s is not None) if all(s is not None for s in sizes) else None
        found[md5] = VersionInfo(md5, _iso(obj.stat().st_mtime), size, len(entries), in_remote=True)
    return found


def run_versions(root: str | Path, tracking_uri: str | None = None) -> dict[str, VersionInfo]:
    """The versions MLflow runs were tagged with, with their run ids and the first run's start as the date."""
    from tasks.mlflow_store import resolve_tracking_uri
    from tasks.tracking import Tracker

    uri = resolve_tracking_uri(tracking_uri, root)
    if uri.startswith("sqlite:///") and not Path(uri.removeprefix("sqlite:///")).exists():
        return {}  # no store yet (a fresh clone): do not create one
    client = Tracker(uri, "").client()
    exp_ids = [e.experiment_id for e in client.search_experiments()]
    found: dict[str, VersionInfo] = {}
    runs: list[Any] = []
    token = None
    while exp_ids:
        page = client.search_runs(exp_ids, f"tags.`{RUN_TAG}` LIKE '%'", max_results=1000, page_token=token)
        runs.extend(page)
        token = page.token
        if not token:
            break
    for run in sorted(runs, key=lambda r: r.info.start_time or 0):
        tags = run.data.tags
        md5 = tags[RUN_TAG]
        info = found.setdefault(md5, VersionInfo(md5, _iso((run.info.start_time or 0) / 1000)))
        info.runs.append(run.info.run_id)
        if info.size is None and tags.get("grm.data.size"):
            info.size = int(tags["grm.data.size"])
        if info.nfiles is None:
            info.nfiles = sum(1 for k in tags if k.startswith("grm.data.md5.")) or None
    return found


def list_versions(root: str | Path, tracking_uri: str | None = None, remote: str | None = None) -> list[VersionInfo]:
    """Every version the remote or the MLflow store knows, oldest first."""
    in_remote = remote_versions(root, remote)
    merged: dict[str, VersionInfo] = dict(in_remote or {})
    for md5, used in run_versions(root, tracking_uri).items():
        have = merged.get(md5)
        if have is None:
            used.in_remote = False if in_remote is not None else None
            merged[md5] = used
            continue
        have.runs = used.runs
        have.date = min(d for d in (have.date, used.date) if d)
        have.size = have.size if have.size is not None else used.size
    return sorted(merged.values(), key=lambda v: (v.date or "", v.md5))


def _known(versions: list[VersionInfo]) -> str:
    if not versions:
        return "no data version is known (no run tagged grm.data.dvc_md5, no .dir object in the remote)"
    return "known versions (date, md5): " + ", ".join(f"{v.date} {v.md5}" for v in versions)


def parse_day_end(text: str) -> str:
    """``2026-12-07`` -> the ISO time of that day's end (UTC); a full ISO time is taken as it is."""
    try:
        if len(text) == 10:
            day = dt.date.fromisoformat(text)
            return dt.datetime.combine(day, dt.time(23, 59, 59), dt.UTC).isoformat(timespec="seconds")
        when = dt.datetime.fromisoformat(text)
    except ValueError:
        raise DataVersionError(f"--as-of {text!r} is not a date", fix="use YYYY-MM-DD or an ISO time") from None
    return (when if when.tzinfo else when.replace(tzinfo=dt.UTC)).astimezone(dt.UTC).isoformat(timespec="seconds")


def resolve(
    versions: list[VersionInfo],
    *,
    run: str | None = None,
    version: str | None = None,
    as_of: str | None = None,
    run_tags: dict[str, str] | None = None,
) -> VersionInfo:
    """The one version ``--run`` / ``--version`` (md5 or unique prefix) / ``--as-of`` names.

    Raises:
        DataVersionError: none or several match; the message lists what exists.
    """
    if sum(x is not None for x in (run, version, as_of)) != 1:
        raise DataVersionError("give exactly one of --as-of DATE, --run RUN_ID, --version MD5")
    if run is not None:
        md5 = (run_tags or {}).get(RUN_TAG)
        hits = [v for v in versions if v.md5 == md5 or run in v.runs]
        if not hits and md5:
            return VersionInfo(md5, runs=[run])
        if not hits:
            raise DataVersionError(f"no run {run!r} with a data version; " + _known(versions))
        return hits[0]
    if version is not None:
        want = hex_md5(version.strip())
        hits = [v for v in versions if hex_md5(v.md5).startswith(want)]
        if len(hits) == 1:
            return hits[0]
        if not hits and len(want) == 32:  # a full md5 the listing does not know: try the remote anyway
            return VersionInfo(want + DIR_SUFFIX)
        what = "no" if not hits else f"{len(hits)}"
        raise DataVersionError(f"{what} data version(s) match {version!r}; " + _known(hits or versions))
    assert as_of is not None
    end = parse_day_end(as_of)
    hits = [v for v in versions if v.date and v.date <= end]
    if not hits:
        raise DataVersionError(f"no data version was published on or before {as_of}; " + _known(versions))
    return hits[-1]
