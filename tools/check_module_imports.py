"""No Rust module imports from a module above it, and module references form no cycle.

Run by `make lint` over every crate of the Cargo workspace (or over the workspaces and crate
directories given as arguments). The definition it enforces:

Modules. Each crate root (src/lib.rs and src/main.rs, each its own crate) is parsed into its
module tree: `mod x;` / `pub mod x;` is x.rs or x/mod.rs in the declaring module's directory,
and an inline `mod x { ... }` is a module too. A module, or any other item, under
`#[cfg(test)]` is test code and is skipped with everything inside it (a `#[cfg(test)] mod
tests;` file is never read): test code may refer to anything in its crate. Comments, string
and character literals are blanked before anything is read, so a path in doc text or in a
message does not count. `#[path]` attributes are not supported (the file is not found).

References. Every path a non-test module writes counts: `use` declarations, groups included
(`use crate::{a, b::c}`; `self` in a group names the group's prefix), `pub use` re-exports,
and paths in expressions, types and macros that start with `crate::`, `super::` or `self::`,
or with the name of a child module or of a module the module imported (`use crate::names;`
then `names::RELAY`). A path is resolved to the longest prefix of it that is a module of the
crate (`crate::names::RELAY` is module `names`, `crate::render` is the crate root); a `use`
that binds a module under a name (`pub use template as model;`) is followed when a later path
goes through that name. Paths into other crates are not this checker's business.

Violations.
- Importing from above: module M refers to an ancestor of M, e.g. `source::alarms` using
  `crate::source::X`, or `super::X` where super is `source`. The crate root is an ancestor
  of every module and gets no exception: an item a submodule needs does not belong in
  lib.rs/main.rs, whose job is to declare and re-export the modules (`pub use x::Item` there
  is root -> child, which is fine). A parent referring to its descendants is fine, and so is
  a module referring to a sibling or any module outside its own line of ancestors.
- A cycle: A refers to B and B, directly or through other modules, refers back to A. The
  graph is every non-test reference except those to an ancestor (each of those is already
  reported above, and including them would report every one a second time, as a cycle
  through its parent). One cycle is printed per strongly connected set of modules, with the
  line of each step.

Output: one line per violation (`file:line: module a::b refers to a (its ancestor) via
crate::a::X`, or `file:line: cycle: a -> b -> a (...)`), exit status 1; otherwise a one-line
summary and exit status 0. Exit status 2: a crate could not be read.
"""

from __future__ import annotations

import argparse
import itertools
import re
import sys
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

Path_ = tuple[str, ...]  # a module's path from its crate root; () is the root


class CheckError(Exception):
    """A crate that cannot be read (a declared module's file is missing)."""


# ---- lexing -------------------------------------------------------------------------------

_CHAR_LITERAL = re.compile(r"'(?:\\(?:x[0-9a-fA-F]{2}|u\{[0-9a-fA-F_]{1,6}\}|.)|[^\\'\n])'")
_RAW_STRING = re.compile(r'(?:br|cr|r)(#*)"')


def strip_comments_and_strings(text: str) -> str:
    """The source with comments, string literals and char literals blanked: every character
    but a newline in them becomes a space (a string keeps its quotes), so lines and columns
    stay where they were."""
    out: list[str] = []
    i, n = 0, len(text)

    def blank(j: int, k: int) -> None:
        out.append("".join("\n" if c == "\n" else " " for c in text[j:k]))

    while i < n:
        c = text[i]
        if text.startswith("//", i):
            end = text.find("\n", i)
            end = n if end < 0 else end
            blank(i, end)
            i = end
        elif text.startswith("/*", i):
            depth, j = 1, i + 2
            while j < n and depth:
                if text.startswith("/*", j):
                    depth, j = depth + 1, j + 2
                elif text.startswith("*/", j):
                    depth, j = depth - 1, j + 2
                else:
                    j += 1
            blank(i, j)
            i = j
        elif c in "brc" and (i == 0 or not _is_ident_char(text[i - 1])) and (m := _RAW_STRING.match(text, i)):
            closing = '"' + m.group(1)
            end = text.find(closing, m.end())
            end = n if end < 0 else end + len(closing)
            out.append(text[i : m.end() - 1] + '"')
            blank(m.end(), max(m.end(), end - len(closing)))
            out.append(closing if end <= n and text.endswith(closing, 0, end) else "")
            i = end
        elif c == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            out.append('"')
            blank(i + 1, min(j, n))
            out.append('"' if j < n else "")
            i = j + 1
        elif c == "'":
            m = _CHAR_LITERAL.match(text, i)
            if m:  # a char literal; otherwise a lifetime or a label, kept
                out.append("'")
                blank(i + 1, m.end() - 1)
                out.append("'")
                i = m.end()
            else:
                out.append(c)
                i += 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


def _is_ident_char(c: str) -> bool:
    return c.isalnum() or c == "_"


@dataclass(frozen=True)
class Token:
    text: str
    line: int


_TOKEN = re.compile(r"\s+|(?P<tok>::|[A-Za-z_][A-Za-z0-9_]*|r#[A-Za-z_][A-Za-z0-9_]*|\S)")


def tokenize(stripped: str) -> list[Token]:
    tokens: list[Token] = []
    line = 1
    for m in _TOKEN.finditer(stripped):
        tok = m.group("tok")
        if tok is None:
            line += m.group(0).count("\n")
        else:
            tokens.append(Token(tok.removeprefix("r#"), line))
    return tokens


def _is_ident(tok: str) -> bool:
    return tok[0].isalpha() or tok[0] == "_"


_CLOSING = {"(": ")", "[": "]", "{": "}"}


def _matching(tokens: list[Token], i: int) -> int:
    """The index of the bracket that closes tokens[i] (or the end, if it never closes)."""
    stack = [_CLOSING[tokens[i].text]]
    j = i + 1
    while j < len(tokens) and stack:
        t = tokens[j].text
        if t in _CLOSING:
            stack.append(_CLOSING[t])
        elif t == stack[-1]:
            stack.pop()
        j += 1
    return j - 1


def _is_test_cfg(attribute: list[Token]) -> bool:
    """`#[cfg(test)]`, or a cfg that needs `test` (`all(test, ...)`), not `not(test)`."""
    words = [t.text for t in attribute]
    return words[:2] == ["cfg", "("] and "test" in words and "not" not in words and "any" not in words


# ---- the module tree and its raw references --------------------------------------------


@dataclass
class RawRef:
    """A path as a module wrote it, before resolution."""

    segments: Path_  # as written: starts with crate, super, self or a plain name
    line: int


@dataclass
class Module:
    path: Path_
    file: Path
    child_dir: Path  # where `mod x;` in it looks for x.rs and x/mod.rs
    children: dict[str, Module] = field(default_factory=dict)
    refs: list[RawRef] = field(default_factory=list)
    # names a `use` binds in this module to a path (followed when a path goes through them)
    bindings: dict[str, Path_] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return "::".join(self.path) or "crate"


def _parse_use_tree(tokens: list[Token], i: int, end: int, prefix: Path_) -> Iterator[tuple[Path_, str | None, int]]:
    """(path, bound name or None, line) for each leaf of the use tree in tokens[i:end]."""
    segments = list(prefix)
    line = tokens[i].line if i < end else 0
    while i < end:
        t = tokens[i].text
        if t == "{":
            close = _matching(tokens, i)
            j = i + 1
            while j < close:  # items of the group, split at top-level commas
                k = j
                while k < close and tokens[k].text != ",":
                    k = _matching(tokens, k) + 1 if tokens[k].text in _CLOSING else k + 1
                if k > j:
                    yield from _parse_use_tree(tokens, j, k, tuple(segments))
                j = k + 1
            return
        if t == "*":
            yield tuple(segments), None, tokens[i].line
            return
        if t == "::":
            if not segments:
                segments.append("::")  # a path into another crate
            i += 1
            continue
        if t == "as":
            alias = tokens[i + 1].text if i + 1 < end else "_"
            yield _leaf(segments), alias, line
            return
        if _is_ident(t):
            segments.append(t)
            line = tokens[i].line
            i += 1
            continue
        i += 1
    if segments:
        leaf = _leaf(segments)
        yield leaf, leaf[-1] if leaf else None, line


def _leaf(segments: list[str]) -> Path_:
    """`a::b::self` (from `use a::b::{self}`) is `a::b`."""
    if len(segments) > 1 and segments[-1] == "self":
        return tuple(segments[:-1])
    return tuple(segments)


_MAX_DEPTH = 8  # use bindings followed through at most this many others
_ITEM_KEYWORDS_ENDING_AT_SEMICOLON = {"use", "const", "static", "type", "let", "extern"}


class CrateParser:
    def __init__(self, root_file: Path) -> None:
        self.root = Module((), root_file, root_file.parent)
        self.modules: list[Module] = []

    def parse(self) -> Module:
        self._parse_file(self.root)  # a crate root under #![cfg(test)] is left with no modules
        return self.root

    def _parse_file(self, module: Module) -> bool:
        """Parses a file module; False when it turns out to be test code (`#![cfg(test)]`)."""
        tokens = tokenize(strip_comments_and_strings(module.file.read_text()))
        return self._parse_module(module, tokens, 0, len(tokens))

    def _parse_module(self, module: Module, tokens: list[Token], i: int, end: int) -> bool:
        self.modules.append(module)
        if self._parse_items(module, tokens, i, end):
            return True
        self.modules.remove(module)
        return False

    def _parse_items(self, module: Module, tokens: list[Token], i: int, end: int) -> bool:
        attributes: list[list[Token]] = []
        while i < end:
            t = tokens[i].text
            if t == "#" and i + 1 < end and tokens[i + 1].text in ("[", "!"):
                inner = tokens[i + 1].text == "!"
                open_ = i + 2 if inner else i + 1
                if open_ >= end or tokens[open_].text != "[":
                    i += 1
                    continue
                close = _matching(tokens, open_)
                attribute = tokens[open_ + 1 : close]
                if inner and _is_test_cfg(attribute):  # #![cfg(test)]: the whole module is test code
                    return False
                if not inner:
                    attributes.append(attribute)
                i = close + 1
                continue
            if t == "pub":  # visibility: pub, pub(crate), pub(super), pub(in path); the attributes stay
                i += 1
                if i < end and tokens[i].text == "(":
                    i = _matching(tokens, i) + 1
                continue
            is_test = any(_is_test_cfg(a) for a in attributes)
            attributes = []
            if t == "mod" and i + 2 < end and _is_ident(tokens[i + 1].text) and tokens[i + 2].text in (";", "{"):
                name, line = tokens[i + 1].text, tokens[i + 1].line
                if tokens[i + 2].text == ";":
                    if not is_test:
                        self._file_module(module, name, line)
                    i += 3
                else:
                    close = _matching(tokens, i + 2)
                    if not is_test:
                        child = Module((*module.path, name), module.file, module.child_dir / name)
                        if self._parse_module(child, tokens, i + 3, close):
                            module.children[name] = child
                    i = close + 1
                continue
            if is_test:
                i = self._skip_item(tokens, i, end)
                continue
            if t == "use":
                semi = i + 1
                while semi < end and tokens[semi].text != ";":
                    semi = _matching(tokens, semi) + 1 if tokens[semi].text in _CLOSING else semi + 1
                for path, bound, line in _parse_use_tree(tokens, i + 1, semi, ()):
                    if path and path[0] != "::":
                        module.refs.append(RawRef(path, line))
                        if bound and bound != "_" and path[-1] != "*":
                            module.bindings[bound] = path
                i = semi + 1
                continue
            before = tokens[i - 1].text if i > 0 else ""
            if (
                _is_ident(t)
                and before not in ("::", ".")
                and i + 2 < end
                and tokens[i + 1].text == "::"
                and _is_ident(tokens[i + 2].text)
            ):
                segments = [t]
                j = i
                while j + 2 < end and tokens[j + 1].text == "::" and _is_ident(tokens[j + 2].text):
                    segments.append(tokens[j + 2].text)
                    j += 2
                module.refs.append(RawRef(tuple(segments), tokens[i].line))
                i = j + 1
                continue
            i += 1
        return True

    @staticmethod
    def _skip_item(tokens: list[Token], i: int, end: int) -> int:
        """The index after the item (or statement) that starts at tokens[i]."""
        ends_at_semicolon = tokens[i].text in _ITEM_KEYWORDS_ENDING_AT_SEMICOLON
        j = i
        while j < end:
            t = tokens[j].text
            if t == ";":
                return j + 1
            if t == "{" and not ends_at_semicolon:
                return _matching(tokens, j) + 1
            j = _matching(tokens, j) + 1 if t in _CLOSING else j + 1
        return end

    def _file_module(self, parent: Module, name: str, line: int) -> None:
        for file, child_dir in (
            (parent.child_dir / f"{name}.rs", parent.child_dir / name),
            (parent.child_dir / name / "mod.rs", parent.child_dir / name),
        ):
            if file.is_file():
                child = Module((*parent.path, name), file, child_dir)
                if self._parse_file(child):
                    parent.children[name] = child
                return
        raise CheckError(
            f"{parent.file}:{line}: mod {name}; but neither {parent.child_dir / name}.rs "
            f"nor {parent.child_dir / name}/mod.rs exists (#[path] is not supported)"
        )


# ---- resolution and the checks ---------------------------------------------------------


@dataclass(frozen=True)
class Reference:
    source: Module
    target: Module
    line: int
    written: str


class Crate:
    def __init__(self, root_file: Path) -> None:
        parser = CrateParser(root_file)
        self.root = parser.parse()
        self.modules = parser.modules
        self.by_path = {m.path: m for m in self.modules}

    def resolve(self, absolute: Path_, depth: int = 0) -> Module:
        """The module of the longest prefix of an absolute path (module-bound `use` names followed)."""
        module = self.root
        for segment in absolute:
            if segment in module.children:
                module = module.children[segment]
                continue
            bound = module.bindings.get(segment)
            if bound is None or depth >= _MAX_DEPTH:
                return module
            bound_absolute = self.absolute(module, bound, depth + 1)
            if bound_absolute is None:
                return module
            target = self.resolve(bound_absolute, depth + 1)
            if target.path != bound_absolute:  # bound to an item, not a module: the path ends here
                return module
            module = target
        return module

    def absolute(self, module: Module, segments: Path_, depth: int = 0) -> Path_ | None:
        """The path from the crate root that segments, written in module, name; None when it
        leads out of the crate (another crate, a type or enum of the module, a local name)."""
        first, rest = segments[0], segments[1:]
        if first == "crate":
            return rest
        if first == "self":
            return module.path + rest
        if first == "super":
            base = module.path
            while segments and segments[0] == "super":
                if not base:
                    return None
                base, segments = base[:-1], segments[1:]
            return base + segments
        if first in module.children:
            return module.path + segments
        bound = module.bindings.get(first)
        if bound is not None and bound[0] != first and depth < _MAX_DEPTH:
            bound_absolute = self.absolute(module, bound, depth + 1)
            return None if bound_absolute is None else bound_absolute + rest
        return None

    def references(self) -> list[Reference]:
        found: list[Reference] = []
        for module in self.modules:
            for ref in module.refs:
                absolute = self.absolute(module, ref.segments)
                if absolute is None:
                    continue
                target = self.resolve(absolute)
                if target is not module:
                    found.append(Reference(module, target, ref.line, "::".join(ref.segments)))
        return found


def _is_ancestor(a: Path_, b: Path_) -> bool:
    """a is a proper ancestor of b."""
    return len(a) < len(b) and b[: len(a)] == a


def _display(path: Path, base: Path) -> str:
    try:
        return str(path.resolve().relative_to(base.resolve()))
    except ValueError:
        return str(path)


def _strongly_connected(nodes: list[Path_], edges: dict[Path_, dict[Path_, Reference]]) -> list[list[Path_]]:
    """Tarjan's strongly connected components, iteratively."""
    index: dict[Path_, int] = {}
    low: dict[Path_, int] = {}
    on_stack: set[Path_] = set()
    stack: list[Path_] = []
    components: list[list[Path_]] = []
    counter = 0
    for start in nodes:
        if start in index:
            continue
        work: list[tuple[Path_, Iterator[Path_]]] = []
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        work.append((start, iter(sorted(edges.get(start, {})))))
        while work:
            node, successors = work[-1]
            advanced = False
            for succ in successors:
                if succ not in index:
                    index[succ] = low[succ] = counter
                    counter += 1
                    stack.append(succ)
                    on_stack.add(succ)
                    work.append((succ, iter(sorted(edges.get(succ, {})))))
                    advanced = True
                    break
                if succ in on_stack:
                    low[node] = min(low[node], index[succ])
            if advanced:
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                components.append(sorted(component))
    return components


def _shortest_cycle(start: Path_, members: set[Path_], edges: dict[Path_, dict[Path_, Reference]]) -> list[Path_]:
    """The shortest path start -> ... -> start inside one strongly connected component."""
    previous: dict[Path_, Path_] = {}
    frontier = [start]
    while frontier:
        following: list[Path_] = []
        for node in frontier:
            for succ in sorted(edges.get(node, {})):
                if succ not in members:
                    continue
                if succ == start:
                    cycle = [node]
                    while cycle[-1] != start:
                        cycle.append(previous[cycle[-1]])
                    return [start, *reversed(cycle[:-1]), start] if node != start else [start, start]
                if succ not in previous:
                    previous[succ] = node
                    following.append(succ)
        frontier = following
    return [start, start]


@dataclass
class Result:
    violations: list[str]
    crates: int
    modules: int
    references: int


def check_crate(root_file: Path, base: Path) -> tuple[list[str], int, int]:
    crate = Crate(root_file)
    violations: list[str] = []
    edges: dict[Path_, dict[Path_, Reference]] = {}
    references = crate.references()
    for ref in references:
        where = f"{_display(ref.source.file, base)}:{ref.line}"
        if _is_ancestor(ref.target.path, ref.source.path):
            violations.append(
                f"{where}: module {ref.source.name} refers to {ref.target.name} (its ancestor) via {ref.written}"
            )
        else:
            edges.setdefault(ref.source.path, {}).setdefault(ref.target.path, ref)
    for component in _strongly_connected([m.path for m in crate.modules], edges):
        if len(component) < 2:
            continue
        cycle = _shortest_cycle(component[0], set(component), edges)
        steps = [edges[a][b] for a, b in itertools.pairwise(cycle)]
        first = steps[0]
        names = " -> ".join(crate.by_path[p].name for p in cycle)
        detail = ", ".join(f"{_display(s.source.file, base)}:{s.line} {s.written}" for s in steps)
        others = sorted(set(component) - set(cycle))
        also = f"; in the same cycle: {', '.join(crate.by_path[p].name for p in others)}" if others else ""
        violations.append(f"{_display(first.source.file, base)}:{first.line}: cycle: {names} ({detail}){also}")
    return violations, len(crate.modules), len(references)


def crate_dirs(paths: list[Path]) -> list[Path]:
    """The crate directories of the workspaces and crates given (a workspace's members, globs
    expanded; a directory with src/lib.rs or src/main.rs is a crate)."""
    found: list[Path] = []
    for path in paths:
        manifest = path / "Cargo.toml"
        members: list[str] = []
        if manifest.is_file():
            members = tomllib.loads(manifest.read_text()).get("workspace", {}).get("members", [])
        for member in members:
            found.extend(sorted(p for p in path.glob(member) if p.is_dir()))
        if (path / "src/lib.rs").is_file() or (path / "src/main.rs").is_file():
            found.append(path)
        if not members and not found:
            raise CheckError(f"{path}: neither a workspace with members nor a crate with src/lib.rs or src/main.rs")
    return list(dict.fromkeys(found))


def check(paths: list[Path], base: Path) -> Result:
    violations: list[str] = []
    crates = modules = references = 0
    for crate in crate_dirs(paths):
        roots = [r for r in (crate / "src/lib.rs", crate / "src/main.rs") if r.is_file()]
        if not roots:
            raise CheckError(f"{crate}: no src/lib.rs or src/main.rs")
        crates += 1
        for root in roots:
            v, m, r = check_crate(root, base)
            violations += v
            modules += m
            references += r
    return Result(violations, crates, modules, references)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument(
        "paths", nargs="*", type=Path, help="workspaces or crate directories (default: this repository's workspace)"
    )
    args = parser.parse_args(argv)
    paths: list[Path] = args.paths or [REPO]
    base = Path.cwd()
    try:
        result = check(paths, base)
    except CheckError as e:
        print(f"check_module_imports: {e}", file=sys.stderr)
        return 2
    for line in result.violations:
        print(line)
    if result.violations:
        print(
            f"check_module_imports: {len(result.violations)} violation(s): a module may not refer to its "
            "ancestors, and module references may not form a cycle (see tools/check_module_imports.py)",
            file=sys.stderr,
        )
        return 1
    print(
        f"check_module_imports: {result.crates} crates, {result.modules} modules, {result.references} references "
        "checked: none refers to a module above it, no cycles"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
