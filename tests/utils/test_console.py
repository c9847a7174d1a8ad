from loopwise.utils.console import null_console
from loopwise.watch.progress import ProgressBar


def test_a_bar_on_the_null_console_runs_and_shows_nothing(capsys) -> None:
    stream = null_console()
    assert not stream.isatty()
    bar = ProgressBar("quiet", 3, file=stream)
    for step in (1, 2, 3):
        bar.update(step, {"loss": 0.5})
    bar.finish()
    assert stream.write("text") == 4
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""
