"""The documentation is one web: every ``docs/*.md`` is linked from README.md or another doc, and every relative
link (a file, a folder, an image) in README.md and docs/ resolves."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
LINK = re.compile(r"\]\(([^)\s]+)\)")
FENCE = re.compile(r"^```.*?^```", re.MULTILINE | re.DOTALL)


def _pages() -> list[Path]:
    return [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]


def _links(page: Path) -> list[str]:
    text = FENCE.sub("", page.read_text(encoding="utf-8"))  # code blocks hold no links
    return [t for t in LINK.findall(text) if not re.match(r"[a-z]+:", t) and not t.startswith("#")]


def _target(page: Path, link: str) -> Path:
    return (page.parent / link.split("#")[0]).resolve()


def test_every_relative_link_resolves() -> None:
    broken = [
        f"{p.relative_to(REPO)}: {link}" for p in _pages() for link in _links(p) if not _target(p, link).exists()
    ]
    assert not broken, "links to nothing:\n" + "\n".join(broken)


def test_every_doc_is_linked_from_the_readme_or_another_doc() -> None:
    linked = {_target(p, link) for p in _pages() for link in _links(p) if _target(p, link) != p.resolve()}
    orphans = [
        p.relative_to(REPO).as_posix() for p in sorted((REPO / "docs").glob("*.md")) if p.resolve() not in linked
    ]
    assert not orphans, f"docs no page links to (add a line to README.md's Documentation table): {orphans}"


def test_the_readme_stays_a_map() -> None:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    assert len(text.splitlines()) <= 200, "README.md is a map: move long references and measurements to docs/"
    first_block = re.search(r"```bash\n(.*?)```", text, re.DOTALL)
    assert first_block is not None
    commands = [line.split("#")[0].strip() for line in first_block.group(1).splitlines()]
    assert commands == ["make run", "make test"]
