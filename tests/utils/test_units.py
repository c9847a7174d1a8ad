from loopwise.utils.units import GIB, MIB, format_mib, mib


def test_one_memory_unit_mib() -> None:
    assert MIB == 2**20 and GIB == 2**30
    assert mib(3 * 2**20) == 3.0
    assert format_mib(1536 * 2**20) == "1,536.0 MiB"
