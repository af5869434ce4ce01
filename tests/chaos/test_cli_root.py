"""`swoosh chaos --root X` empties X first: only when X is empty, new, or made by an earlier chaos run."""

from __future__ import annotations

import argparse
from pathlib import Path

from swoosh.chaos import cli


def args_for(root: Path) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    return parser.parse_args(["--seed", "1", "--profile", "quick", "--root", str(root)])


def test_chaos_root_refuses_a_folder_it_did_not_make(tmp_path: Path) -> None:
    precious = tmp_path / "home"
    precious.mkdir()
    (precious / "thesis.tex").write_text("years of work")
    assert cli.main(args_for(precious)) == 2
    assert (precious / "thesis.tex").read_text() == "years of work"
    assert not (precious / cli.SENTINEL).exists()


def test_chaos_root_refuses_a_file(tmp_path: Path) -> None:
    target = tmp_path / "notes.txt"
    target.write_text("keep me")
    assert cli.prepare_root(target) is not None
    assert target.read_text() == "keep me"


def test_chaos_root_new_folder_is_made_and_marked(tmp_path: Path) -> None:
    root = tmp_path / "a" / "b"
    assert cli.prepare_root(root) is None
    assert sorted(p.name for p in root.iterdir()) == [cli.SENTINEL]


def test_chaos_root_made_by_an_earlier_run_is_emptied(tmp_path: Path) -> None:
    root = tmp_path / "run"
    assert cli.prepare_root(root) is None
    (root / "logs").mkdir()
    (root / "logs" / "worker.log").write_text("old run")
    assert cli.prepare_root(root) is None
    assert sorted(p.name for p in root.iterdir()) == [cli.SENTINEL]


def test_chaos_root_empty_folder_is_used(tmp_path: Path) -> None:
    root = tmp_path / "empty"
    root.mkdir()
    assert cli.prepare_root(root) is None
    assert (root / cli.SENTINEL).is_file()
