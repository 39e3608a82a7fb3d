"""``grm data pull``'s choice of one version: by date (the newest on or before the end of that day, UTC), by md5
prefix, by run; anything else is a ``UserError`` listing the versions that exist."""

from __future__ import annotations

import pytest

from grm.errors import UserError
from tasks.data_versions import VersionInfo, parse_day_end, resolve

A = VersionInfo("a" * 32 + ".dir", "2026-11-02T10:00:00+00:00", runs=["r1"])
B = VersionInfo("ab" + "0" * 30 + ".dir", "2026-11-09T23:00:00+00:00", runs=["r2", "r3"])
C = VersionInfo("c" * 32 + ".dir", "2026-12-01T00:00:01+00:00")
KNOWN = [A, B, C]  # oldest first, as list_versions returns them


@pytest.mark.parametrize(
    ("as_of", "want"),
    [
        ("2026-11-02", A),  # published that day
        ("2026-11-09", B),  # 23:00 that day counts: the day ends at 23:59:59 UTC
        ("2026-11-30", B),  # the newest before
        ("2026-12-07", C),
        ("2026-11-09T12:00:00", A),  # a time, not a day: B came later that day
    ],
)
def test_as_of_picks_the_newest_version_published_by_then(as_of: str, want: VersionInfo) -> None:
    assert resolve(KNOWN, as_of=as_of) is want


def test_version_takes_a_unique_prefix_with_or_without_dir() -> None:
    assert resolve(KNOWN, version="ab") is B
    assert resolve(KNOWN, version="c" * 32 + ".dir") is C
    assert resolve(KNOWN, version="d" * 32).md5 == "d" * 32 + ".dir"  # a full md5 not listed: the remote decides


def test_run_finds_the_version_a_run_used() -> None:
    assert resolve(KNOWN, run="r3") is B
    assert resolve(KNOWN, run="r9", run_tags={"grm.data.dvc_md5": C.md5}) is C


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"as_of": "2026-01-01"}, "no data version was published on or before 2026-01-01"),
        ({"as_of": "last week"}, "is not a date"),
        ({"version": "a"}, "2 data version(s) match 'a'"),
        ({"version": "ff"}, "no data version(s) match 'ff'"),
        ({"run": "nope"}, "no run 'nope'"),
        ({}, "give exactly one of"),
        ({"run": "r1", "version": "ab"}, "give exactly one of"),
    ],
)
def test_an_unknown_or_ambiguous_choice_is_a_user_error_listing_the_versions(kwargs: dict, message: str) -> None:
    with pytest.raises(UserError) as err:
        resolve(KNOWN, **kwargs)
    assert message in str(err.value)
    if "exactly one" not in message and "not a date" not in message:
        assert A.md5 in str(err.value) or B.md5 in str(err.value)


def test_parse_day_end_reads_days_and_times_in_utc() -> None:
    assert parse_day_end("2026-11-09") == "2026-11-09T23:59:59+00:00"
    assert parse_day_end("2026-11-09T01:00:00+02:00") == "2026-11-08T23:00:00+00:00"
