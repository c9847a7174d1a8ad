"""The one check of an ``exporters=`` option (record.recorder.check_exporters)."""

from __future__ import annotations

import pytest

from loopwise.record.recorder import check_exporters


class AlmostRecorder:
    """An exporter written before the record held histograms, images and text."""

    def log_scalars(self, values, *, step, wall_time=None): ...
    def log_columns(self, columns): ...
    def log_epoch(self, epoch, values, *, step=None): ...
    def log_event(self, kind, message, *, level="info", data=None): ...
    def log_system(self, values, *, wall_time=None): ...
    def set_config(self, config): ...
    def close(self, status="finished", *, error=None): ...


def test_an_exporter_that_lacks_methods_is_told_which() -> None:
    with pytest.raises(TypeError) as info:
        check_exporters([AlmostRecorder()])
    assert str(info.value) == ("exporters must be loopwise Recorders (e.g. from loopwise.export), "
                               "got AlmostRecorder; it lacks log_histogram, log_image, log_text")


@pytest.mark.parametrize("given", ["tb", {"a": 1}, 3])
def test_something_that_is_no_list_is_refused_naming_it(given: object) -> None:
    with pytest.raises(TypeError, match=f"exporters must be a list of loopwise Recorders .* got "
                                        f"{type(given).__name__}$"):
        check_exporters(given)


def test_an_empty_list_or_iterator_is_no_exporter() -> None:
    assert check_exporters(()) == []
    assert check_exporters(iter([])) == []
