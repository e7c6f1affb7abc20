"""The documentation holds together: every relative link and `#anchor` in README.md and
docs/**/*.md resolves (the file exists; the anchor is one of the target's headings, as GitHub
makes its id), every guide docs/*.md is linked from the README, and the README stays a front
door of at most 250 lines. Run by `make lint`."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote

import pytest

ROOT = Path(__file__).resolve().parents[2]
README_MAX_LINES = 250

FENCE = re.compile(r"^\s{0,3}(```|~~~)")
HEADING = re.compile(r"^\s{0,3}(#{1,6})\s+(.*?)(?:\s+#+)?\s*$")
CODE_SPAN = re.compile(r"(`+)(.+?)\1")
COMMENT = re.compile(r"<!--.*?-->", re.DOTALL)
# [text](target) and ![alt](target), with an optional title; the text may hold one level of [].
INLINE_LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\[\]]*\])*\]\(\s*<?([^\s)>]*)>?(?:\s+\"[^\"]*\")?\s*\)")
# [label]: target
DEFINITION = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+\"[^\"]*\")?\s*$")
SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")


def prose_lines(text: str) -> list[str]:
    """The lines of a Markdown text, with fenced code blocks and HTML comments blank and code spans
    masked (so neither a `# comment` in a shell block nor a link shown as code counts)."""
    out, fence = [], False
    for line in without_comments(text).split("\n"):
        if FENCE.match(line):
            fence = not fence
            out.append("")
        else:
            out.append("" if fence else CODE_SPAN.sub(lambda m: "x" * len(m.group(2)), line))
    return out


def without_comments(text: str) -> str:
    """The text with HTML comments blanked, lines kept (so line numbers stay right)."""
    return COMMENT.sub(lambda m: "\n" * m.group(0).count("\n"), text)


def github_slug(heading: str) -> str:
    """The id GitHub gives a heading: its text without markup, lower case, every character that
    is not a letter, digit, `_`, `-` or space dropped, spaces made hyphens."""
    text = CODE_SPAN.sub(lambda m: m.group(2), heading)
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", text)
    text = re.sub(r"<[^>]+>", "", text)
    text = re.sub(r"[^\w\- ]", "", text.strip().lower())
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """The ids of a Markdown file's headings; a repeated id gets `-1`, `-2`, ... as on GitHub."""
    seen: dict[str, int] = {}
    out: set[str] = set()
    fence = False
    for line in without_comments(path.read_text()).split("\n"):
        if FENCE.match(line):
            fence = not fence
            continue
        match = HEADING.match(line)
        if fence or not match:
            continue
        slug = github_slug(match.group(2))
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        out.add(slug if count == 0 else f"{slug}-{count}")
    return out


def links(path: Path) -> list[tuple[int, str]]:
    """Every link target of a Markdown file, with its line number (outside code)."""
    lines = prose_lines(path.read_text())
    text = "\n".join(lines)  # a link's text may wrap onto the next line
    found = [(text.count("\n", 0, m.start()) + 1, m.group(1)) for m in INLINE_LINK.finditer(text)]
    for number, line in enumerate(lines, 1):
        definition = DEFINITION.match(line)
        if definition:
            found.append((number, definition.group(1)))
    return sorted(found, key=lambda link: link[0])


def resolve(root: Path, source: Path, target: str) -> tuple[Path, str]:
    """The file a relative link points to and its anchor ("" if none)."""
    path_part, _, anchor = target.partition("#")
    path_part = unquote(path_part)
    if not path_part:
        return source, anchor
    base = root if path_part.startswith("/") else source.parent
    return (base / path_part.lstrip("/")).resolve(), anchor


def broken_links(root: Path, source: Path) -> list[str]:
    """What is wrong with the relative links of one Markdown file, one line each."""
    problems = []
    for number, target in links(source):
        where = f"{source.relative_to(root)}:{number}: ({target})"
        if not target:
            problems.append(f"{where} empty link")
            continue
        if SCHEME.match(target):
            continue  # https:, mailto:, ...: not checked here
        path, anchor = resolve(root, source, target)
        if not path.is_relative_to(root.resolve()):
            problems.append(f"{where} points outside the repository")
        elif not path.exists():
            problems.append(f"{where} no such file {path.relative_to(root.resolve())}")
        elif anchor and path.suffix == ".md" and anchor not in anchors(path):
            problems.append(f"{where} no heading with the id #{anchor} in {path.relative_to(root.resolve())}")
        elif anchor and path.suffix != ".md" and not re.fullmatch(r"L\d+(-L\d+)?", anchor):
            problems.append(f"{where} #{anchor} on a file that is not Markdown")
    return problems


def documents(root: Path) -> list[Path]:
    return [root / "README.md", *sorted((root / "docs").rglob("*.md"))]


def guides_not_linked(root: Path) -> list[str]:
    readme = root / "README.md"
    linked = {resolve(root, readme, target)[0] for _, target in links(readme) if not SCHEME.match(target)}
    return [str(g.relative_to(root)) for g in sorted((root / "docs").glob("*.md")) if g.resolve() not in linked]


@pytest.mark.parametrize("doc", documents(ROOT), ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_and_anchors_resolve(doc: Path) -> None:
    problems = broken_links(ROOT, doc)
    assert not problems, "broken links:\n" + "\n".join(problems)


def test_every_guide_is_linked_from_the_readme() -> None:
    assert (ROOT / "docs").is_dir()
    missing = guides_not_linked(ROOT)
    assert not missing, f"README.md links to none of {missing}"


def test_readme_is_a_front_door() -> None:
    lines = (ROOT / "README.md").read_text().count("\n")
    assert lines <= README_MAX_LINES, f"README.md has {lines} lines, at most {README_MAX_LINES}: move the rest to docs/"


def test_github_slugs() -> None:
    assert github_slug("3. Deploy: target, then source (what `relayctl pair up` does underneath)") == (
        "3-deploy-target-then-source-what-relayctl-pair-up-does-underneath"
    )
    assert github_slug("Warm throughput (`bench/throughput.py`, the second half of `make bench`)") == (
        "warm-throughput-benchthroughputpy-the-second-half-of-make-bench"
    )
    assert github_slug("A slow target in the local run (`make soak SLOW_TARGET_MS`)") == (
        "a-slow-target-in-the-local-run-make-soak-slow_target_ms"
    )
    assert github_slug("See [the guide](docs/x.md) – now") == "see-the-guide--now"


def test_the_checks_find_what_is_broken(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "guide.md").write_text(
        "# Guide\n\n## Twice\n\n## Twice\n\n```sh\n# not a heading\n[not a link](nowhere.md)\n```\n"
        "[ok](#twice-1) [bad anchor](#not-a-heading) [shown as code: `[x](missing.md)`]\n"
        "[escapes](../../outside.md) [web](https://example.com/none) [a link that\nwraps](#wrapped)\n"
    )
    (tmp_path / "docs" / "orphan.md").write_text("# Orphan\n")
    (tmp_path / "Makefile").write_text("all:\n")
    (tmp_path / "README.md").write_text(
        "# Project\n\n[guide](docs/guide.md#twice) [missing](docs/missing.md)\n"
        "[bad anchor](docs/guide.md#nope) [a line](Makefile#L1) [no such id](Makefile#all)\n\n[ref]: docs/gone.md\n"
    )
    readme = [p.split(": ", 1)[1] for p in broken_links(tmp_path, tmp_path / "README.md")]
    assert readme == [
        "(docs/missing.md) no such file docs/missing.md",
        "(docs/guide.md#nope) no heading with the id #nope in docs/guide.md",
        "(Makefile#all) #all on a file that is not Markdown",
        "(docs/gone.md) no such file docs/gone.md",
    ]
    guide = [p.split(": ", 1)[1] for p in broken_links(tmp_path, tmp_path / "docs" / "guide.md")]
    assert guide == [
        "(#not-a-heading) no heading with the id #not-a-heading in docs/guide.md",
        "(../../outside.md) points outside the repository",
        "(#wrapped) no heading with the id #wrapped in docs/guide.md",
    ]
    assert guides_not_linked(tmp_path) == ["docs/orphan.md"]
