"""Tests of check_module_imports.py on small synthetic crates: the script is run as `make lint`
runs it, and its exit status and output lines are checked."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

SCRIPT = Path(__file__).resolve().with_name("check_module_imports.py")


def crate(root: Path, files: dict[str, str], name: str = "demo") -> Path:
    """A crate at root: a Cargo.toml and the given files under src/."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "Cargo.toml").write_text(f'[package]\nname = "{name}"\nversion = "0.1.0"\n')
    for path, text in files.items():
        file = root / "src" / path
        file.parent.mkdir(parents=True, exist_ok=True)
        file.write_text(textwrap.dedent(text).lstrip("\n"))
    return root


def run(*paths: Path) -> tuple[int, list[str]]:
    """The checker's exit status and its output lines (stdout), run from the first path."""
    done = subprocess.run(
        [sys.executable, str(SCRIPT), *map(str, paths)],
        cwd=paths[0],
        capture_output=True,
        text=True,
        check=False,
    )
    return done.returncode, done.stdout.splitlines()


# A crate with each kind of reference that is allowed: parent -> child (file, mod.rs and
# inline), sibling -> sibling through crate:: and super::, a group import, a re-export.
CLEAN = {
    "lib.rs": """
        pub mod names;
        pub mod stack;
        pub mod alarms;
        pub use stack::render;
        use alarms::AlarmSpec;
        pub fn entry() -> AlarmSpec { stack::render() }
    """,
    "names.rs": """
        pub const RELAY: &str = "relay";
        pub mod inner { pub const X: u8 = 1; }
        pub fn inner_x() -> u8 { inner::X }
    """,
    "alarms.rs": """
        use crate::names;
        pub struct AlarmSpec;
        pub fn name() -> &'static str { names::RELAY }
    """,
    "stack/mod.rs": """
        pub mod alarms;
        pub mod outputs;
        use crate::{alarms::AlarmSpec, names::RELAY};
        pub fn render() -> AlarmSpec { alarms::declare(RELAY) }
    """,
    "stack/alarms.rs": """
        use super::outputs::OUTPUT;
        pub fn declare(_: &str) -> crate::alarms::AlarmSpec { let _ = OUTPUT; crate::alarms::AlarmSpec }
    """,
    "stack/outputs.rs": """
        pub const OUTPUT: &str = "o";
    """,
}


def test_a_clean_tree_passes(tmp_path: Path) -> None:
    status, out = run(crate(tmp_path / "demo", CLEAN))
    assert status == 0, out
    assert len(out) == 1
    assert out[0].startswith("check_module_imports: 1 crates, 7 modules, ")


def test_super_from_a_child_to_its_parent_fails(tmp_path: Path) -> None:
    files = dict(CLEAN)
    files["stack/alarms.rs"] = """
        use super::render;
        pub fn declare(_: &str) -> crate::alarms::AlarmSpec { crate::alarms::AlarmSpec }
    """
    status, out = run(crate(tmp_path / "demo", files))
    assert status == 1
    assert out == ["src/stack/alarms.rs:1: module stack::alarms refers to stack (its ancestor) via super::render"]


def test_crate_path_to_the_parent_fails(tmp_path: Path) -> None:
    files = dict(CLEAN)
    files["stack/alarms.rs"] = """
        pub fn declare(_: &str) -> crate::alarms::AlarmSpec {
            let _ = crate::stack::outputs::OUTPUT; // a sibling: fine
            crate::stack::render()
        }
    """
    status, out = run(crate(tmp_path / "demo", files))
    assert status == 1
    assert out == [
        "src/stack/alarms.rs:3: module stack::alarms refers to stack (its ancestor) via crate::stack::render"
    ]


def test_the_crate_root_is_an_ancestor_too(tmp_path: Path) -> None:
    files = dict(CLEAN)
    files["alarms.rs"] = """
        pub struct AlarmSpec;
        pub fn again() -> AlarmSpec { crate::entry() }
    """
    status, out = run(crate(tmp_path / "demo", files))
    assert status == 1
    assert out == ["src/alarms.rs:2: module alarms refers to crate (its ancestor) via crate::entry"]


def test_a_two_module_cycle_fails_with_both_names(tmp_path: Path) -> None:
    files = dict(CLEAN)
    # The generic alarms module importing back from the stack that calls it.
    files["alarms.rs"] = """
        use crate::stack::outputs::OUTPUT;
        pub struct AlarmSpec;
    """
    files["stack/outputs.rs"] = """
        pub const OUTPUT: &str = "o";
        pub fn spec() -> crate::alarms::AlarmSpec { crate::alarms::AlarmSpec }
    """
    status, out = run(crate(tmp_path / "demo", files))
    assert status == 1
    assert len(out) == 1, out
    assert out[0].startswith("src/alarms.rs:1: cycle: alarms -> stack::outputs -> alarms (")
    assert "src/stack/outputs.rs:2 crate::alarms::AlarmSpec" in out[0]


def test_a_longer_cycle_is_reported_with_its_path(tmp_path: Path) -> None:
    files = {
        "lib.rs": "mod a;\nmod b;\nmod c;\n",
        "a.rs": "use crate::b::f;\npub fn g() {}\n",
        "b.rs": "pub fn f() { crate::c::h() }\n",
        "c.rs": "pub fn h() { crate::a::g() }\n",
    }
    status, out = run(crate(tmp_path / "demo", files))
    assert status == 1
    assert len(out) == 1
    assert out[0].startswith("src/a.rs:1: cycle: a -> b -> c -> a (")


def test_test_modules_do_not_count(tmp_path: Path) -> None:
    files = dict(CLEAN)
    files["stack/alarms.rs"] = """
        pub fn declare(_: &str) -> crate::alarms::AlarmSpec { crate::alarms::AlarmSpec }

        #[cfg(test)]
        mod tests {
            use super::*;
            use crate::stack::render;
            #[test]
            fn renders() { let _ = render(); }
        }
    """
    files["stack/mod.rs"] = files["stack/mod.rs"] + "\n#[cfg(test)]\nmod tests;\n"
    # never read: declared under #[cfg(test)]
    files["stack/tests.rs"] = "use super::*;\nuse crate::entry;\n"
    files["names.rs"] = """
        pub const RELAY: &str = "relay";
        #[cfg(test)]
        pub(crate) fn only_in_tests() -> &'static str { crate::alarms::name() }
        #[cfg(test)]
        use crate::stack::render;
    """
    status, out = run(crate(tmp_path / "demo", files))
    assert status == 0, out


def test_a_path_in_a_comment_or_a_string_does_not_count(tmp_path: Path) -> None:
    files = dict(CLEAN)
    files["stack/alarms.rs"] = r"""
        //! Declared by [`super`] (see [`crate::stack::render`]); /* nested /* crate::stack::X */ */
        /// Calls `super::render` never.
        pub fn declare(_: &str) -> crate::alarms::AlarmSpec {
            let _ = "use super::render; crate::stack::render()";
            let _ = r#"super::render "quoted" crate::entry()"#;
            let _ = b"super::x";
            let _ = ('"', '\'', "\"super::render\"");
            crate::alarms::AlarmSpec // crate::stack::render()
        }
        fn longest<'a>(x: &'a str) -> &'a str { x }
    """
    status, out = run(crate(tmp_path / "demo", files))
    assert status == 0, out


def test_a_group_import_is_seen(tmp_path: Path) -> None:
    files = dict(CLEAN)
    files["stack/alarms.rs"] = """
        use crate::{
            alarms::AlarmSpec,
            stack::{outputs::OUTPUT, render},
        };
        pub fn declare(_: &str) -> AlarmSpec { let _ = (OUTPUT, render); AlarmSpec }
    """
    status, out = run(crate(tmp_path / "demo", files))
    assert status == 1
    assert out == [
        "src/stack/alarms.rs:3: module stack::alarms refers to stack (its ancestor) via crate::stack::render"
    ]


def test_a_group_self_and_a_module_alias_are_followed(tmp_path: Path) -> None:
    files = dict(CLEAN)
    files["lib.rs"] = CLEAN["lib.rs"] + "pub use stack as model;\n"
    files["alarms.rs"] = """
        use crate::{self as root, names::{self}};
        pub struct AlarmSpec;
        pub fn name() -> &'static str { names::RELAY }
        pub fn out() -> &'static str { crate::model::outputs::OUTPUT }
    """
    files["stack/outputs.rs"] = "pub const OUTPUT: &str = crate::alarms::name();\n"
    status, out = run(crate(tmp_path / "demo", files))
    assert status == 1
    assert out[0] == "src/alarms.rs:1: module alarms refers to crate (its ancestor) via crate"
    assert out[1].startswith("src/alarms.rs:4: cycle: alarms -> stack::outputs -> alarms (")
    assert len(out) == 2


def test_an_inline_module_using_its_parent_fails(tmp_path: Path) -> None:
    files = dict(CLEAN)
    files["names.rs"] = """
        pub const RELAY: &str = "relay";
        pub mod inner {
            use super::RELAY;
            pub const X: &str = RELAY;
        }
    """
    status, out = run(crate(tmp_path / "demo", files))
    assert status == 1
    assert out == ["src/names.rs:3: module names::inner refers to names (its ancestor) via super::RELAY"]


def test_every_member_of_a_workspace_is_checked(tmp_path: Path) -> None:
    (tmp_path / "Cargo.toml").write_text('[workspace]\nmembers = ["crates/*", "tool"]\n')
    crate(tmp_path / "crates/one", CLEAN, "one")
    crate(tmp_path / "crates/two", {"lib.rs": "mod a;\n", "a.rs": "use super::X;\n"}, "two")
    crate(tmp_path / "tool", {"main.rs": "mod cli;\nfn main() {}\n", "cli.rs": "fn f() { crate::main() }\n"}, "tool")
    status, out = run(tmp_path)
    assert status == 1
    assert out == [
        "crates/two/src/a.rs:1: module a refers to crate (its ancestor) via super::X",
        "tool/src/cli.rs:1: module cli refers to crate (its ancestor) via crate::main",
    ]


def test_a_missing_module_file_is_an_error(tmp_path: Path) -> None:
    root = crate(tmp_path / "demo", {"lib.rs": "pub mod gone;\n"})
    done = subprocess.run([sys.executable, str(SCRIPT), str(root)], capture_output=True, text=True, check=False)
    assert done.returncode == 2
    assert "mod gone;" in done.stderr
