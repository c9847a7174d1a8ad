"""TrainingMonitor wraps a tf.data.Dataset like any iterable: len() (the cardinality) when
TensorFlow knows it, no total when it does not (a filter, an infinite repeat)."""

from __future__ import annotations

import pytest

tf = pytest.importorskip("tensorflow", reason="needs tensorflow: pip install 'loopwise[tensorflow]'")

from loopwise.record import RunReader  # noqa: E402
from loopwise.watch.monitor import TrainingMonitor  # noqa: E402


def _dataset(n: int = 100, batch: int = 8) -> tf.data.Dataset:
    x = tf.reshape(tf.range(n, dtype=tf.float32), (n, 1))
    return tf.data.Dataset.from_tensor_slices((x, x * 2.0)).batch(batch)


def test_a_dataset_with_a_cardinality_gives_the_bar_its_total() -> None:
    ds = _dataset()
    monitor = TrainingMonitor(ds, desc="tf", name="tf-known", system=False)
    assert monitor.total == len(ds) == 13 == int(ds.cardinality())
    seen = 0
    for x, y in monitor:
        assert isinstance(x, tf.Tensor) and x.shape[1] == 1
        monitor.log({"loss": float(tf.reduce_mean(y - x).numpy())})
        seen += 1
    assert seen == 13 and monitor.step == 13
    monitor.close()  # the active run stays open for a next monitor until closed
    reader = RunReader(monitor.run.path)
    assert reader.info["status"] == "finished"
    assert list(reader.series("loss").steps) == list(range(1, 14))


def test_a_dataset_of_unknown_or_infinite_length_has_no_total() -> None:
    filtered = _dataset().unbatch().filter(lambda x, y: x[0] % 2 == 0).batch(5)
    assert int(filtered.cardinality()) == int(tf.data.UNKNOWN_CARDINALITY)
    monitor = TrainingMonitor(filtered, name="tf-unknown", system=False)
    assert monitor.total is None
    assert sum(1 for _ in monitor) == 10
    endless = TrainingMonitor(_dataset().repeat(), name="tf-endless", system=False)
    assert endless.total is None
    with endless:
        for step, _ in enumerate(endless, 1):
            endless.log({"loss": 1.0 / step})
            if step == 30:
                break
    assert RunReader(endless.run.path).series("loss").steps[-1] == 30


def test_a_0_dim_tensorflow_tensor_is_logged_as_its_value() -> None:
    with TrainingMonitor(_dataset(), name="tf-tensors", system=False) as monitor:
        for x, y in monitor:
            monitor.log({"loss": tf.reduce_mean(y - x)})
    values = RunReader(monitor.run.path).series("loss").values
    assert values[0] == pytest.approx(3.5)


def test_keras_logs_holding_tensorflow_values_go_through_the_one_converter() -> None:
    from loopwise.keras.logs import to_floats

    rows = [{"loss": tf.constant(0.5), "acc": tf.Variable(0.25), "n": 3}]
    to_floats(rows)
    assert rows == [{"loss": 0.5, "acc": 0.25, "n": 3.0}]
    assert all(type(v) is float for v in rows[0].values())
