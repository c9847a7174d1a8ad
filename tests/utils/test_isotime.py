from datetime import datetime

from loopwise.utils.isotime import iso, iso_stamps


def test_iso_is_datetime_isoformat_to_the_millisecond() -> None:
    for ts in (0.25, 1_700_000_000.0, 1_700_000_000.1234, 1_700_000_000.9996, 1_700_000_061.5):
        assert iso(ts) == datetime.fromtimestamp(ts).isoformat(timespec="milliseconds")
    assert iso(1_700_000_000.9996).endswith(".999")  # truncated, never the next second


def test_iso_stamps_is_iso_of_each() -> None:
    walls = [1.0, 1.5, 2.0009]
    assert iso_stamps(walls) == [iso(w) for w in walls]
