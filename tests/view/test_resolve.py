from pathlib import Path

import pytest

from loopwise.view.resolve import resolve_run


def test_a_folder_a_name_and_a_unique_prefix(runs_root: Path) -> None:
    assert resolve_run(runs_root / "beta", root="elsewhere") == runs_root / "beta"
    assert resolve_run("beta", root=runs_root) == runs_root / "beta"
    assert resolve_run("be", root=runs_root) == runs_root / "beta"
    assert resolve_run("alpha-2", root=runs_root) == runs_root / "alpha-2"


def test_an_ambiguous_prefix_lists_the_candidates(runs_root: Path) -> None:
    with pytest.raises(ValueError, match=r"alpha matches 2 runs under .*: alpha-1, alpha-2; "
                                         r"give more of the name"):
        resolve_run("alpha", root=runs_root)


def test_unknown_names_and_folders_that_are_not_runs(runs_root: Path, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no run gamma: not a loopwise run folder, nor "
                                                "a run name or prefix under"):
        resolve_run("gamma", root=runs_root)
    (tmp_path / "plain").mkdir()
    with pytest.raises(FileNotFoundError, match="plain is not a loopwise run folder"):
        resolve_run(tmp_path / "plain", root=runs_root)
    with pytest.raises(TypeError, match="run must be a run name or folder path"):
        resolve_run("", root=runs_root)
    with pytest.raises(FileNotFoundError):
        resolve_run("..", root=runs_root / "beta")
