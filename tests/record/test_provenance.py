import os
import subprocess
from pathlib import Path

from loopwise.record.provenance import git_commit, iso, new_run_info, process_identity


def test_new_run_info_has_the_provenance_fields() -> None:
    info = new_run_info("exp", 1_700_000_000.5)
    assert info["name"] == "exp" and info["status"] == "running"
    assert info["pid"] == os.getpid() and info["pid_start"] is not None
    assert info["started_at"].endswith(".500") and len(info["id"]) == 32
    assert info["loopwise"] is not None and info["torch"] is not None


def test_git_commit_inside_and_outside_a_repo(tmp_path: Path) -> None:
    assert git_commit(tmp_path) is None
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    subprocess.run(["git", "-C", str(tmp_path), "-c", "user.email=a@b", "-c", "user.name=a",
                    "commit", "-q", "--allow-empty", "-m", "x"], check=True)
    commit = git_commit(tmp_path)
    assert commit is not None and len(commit) == 40


def test_identity_and_iso() -> None:
    assert process_identity()["pid"] == os.getpid()
    assert iso(0.25)[-4:] == ".250"
