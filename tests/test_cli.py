import pytest

from loopwise.cli import build_parser, main


def test_all_subcommands_are_registered(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for name in ("runs", "show", "export", "fit"):
        assert name in out
    assert build_parser().parse_args(["runs"]).root == "runs"


def test_unknown_subcommand_is_an_argparse_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["train"])
    assert exit_info.value.code == 2
    assert "invalid choice: 'train'" in capsys.readouterr().err


def test_help_starts_without_numpy_or_the_reader(tmp_path):
    # start-up (issue 25): the parser of every verb is built without the reader and numpy; the
    # verb that runs imports what it needs (show: the control, which does load them)
    import subprocess
    import sys
    from pathlib import Path

    from loopwise.record import Run

    with Run.create(tmp_path, "one") as run:
        run.log_scalars({"loss": 0.5}, step=1)
    src = str(Path(__file__).resolve().parents[1] / "src")

    def loaded(argv):
        code = ("import sys, contextlib, io\nfrom loopwise.cli import main\n"
                "with contextlib.redirect_stdout(io.StringIO()):\n"
                "    try:\n        main(sys.argv[1:])\n    except SystemExit:\n        pass\n"
                "print(' '.join(sorted(sys.modules)))\n")
        done = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True,
                              text=True, env={"PYTHONPATH": src, "PATH": "/usr/bin"},
                              cwd=tmp_path, timeout=120, check=True)
        return set(done.stdout.split())

    for argv in (["--help"], ["ui", "--help"], ["export", "--help"]):
        modules = loaded(argv)
        assert "numpy" not in modules and "loopwise.record.reader" not in modules, argv
    shown = loaded(["show", str(run.path)])
    assert {"numpy", "loopwise.record.reader"} <= shown
