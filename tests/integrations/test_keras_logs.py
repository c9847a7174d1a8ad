"""keras_logs.BatchLogs: Keras's running means back to per-step values, in batch order, from
hooks that may arrive on several threads and out of order. No Keras needed."""

from __future__ import annotations

import random
import threading

import numpy as np
import pytest
import torch

from loopwise.keras.logs import BatchLogs, to_floats


def _running_means(values: list[float]) -> list[float]:
    return list(np.cumsum(values) / np.arange(1, len(values) + 1))


def test_running_means_become_the_values_of_each_step() -> None:
    losses = [2.0, 1.0, 4.0, 0.5, 3.0]
    logs = BatchLogs()
    for batch, mean in enumerate(_running_means(losses)):
        logs.add(batch, 100.0 + batch, {"loss": mean, "auc": 0.5 + batch / 10})
    columns = logs.take(base_step=10, is_mean=lambda key: key == "loss", final=True)
    steps, walls, values = columns["loss"]
    assert steps == [11, 12, 13, 14, 15]
    assert walls == [100.0, 101.0, 102.0, 103.0, 104.0]
    assert values == pytest.approx(losses)
    assert columns["auc"][2] == pytest.approx([0.5, 0.6, 0.7, 0.8, 0.9])  # not a mean: as given


def test_hand_overs_continue_the_epoch_and_a_new_epoch_starts_over() -> None:
    losses = [1.0, 3.0, 2.0, 6.0]
    means = _running_means(losses)
    logs = BatchLogs()
    logs.add(0, 0.0, {"loss": means[0]})
    logs.add(1, 0.0, {"loss": means[1]})
    first = logs.take(base_step=0, is_mean=lambda key: True, final=True)
    logs.add(3, 0.0, {"loss": means[3]})  # steps_per_execution=2: one log for batches 3 and 4
    second = logs.take(base_step=0, is_mean=lambda key: True, final=True)
    assert first["loss"][2] == pytest.approx([1.0, 3.0])
    assert second["loss"][0] == [4]
    assert second["loss"][2] == pytest.approx([(2.0 + 6.0) / 2])
    assert logs.batches_done == 4
    logs.new_epoch()
    logs.add(0, 0.0, {"loss": 7.0})
    assert logs.take(base_step=4, is_mean=lambda key: True, final=True)["loss"] == (
        [5], [0.0], [7.0])


def test_out_of_order_hooks_from_several_threads_are_put_in_batch_order() -> None:
    losses = [float(i % 7) for i in range(400)]
    items = list(enumerate(_running_means(losses)))
    random.Random(0).shuffle(items)
    logs = BatchLogs()
    advanced: list[int] = []

    def worker(part: list[tuple[int, float]]) -> None:
        for batch, mean in part:
            logs.add(batch, 0.0, {"loss": mean}, advance=advanced.append)

    threads = [threading.Thread(target=worker, args=(items[i::4],)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(advanced) == 400
    steps, _, values = logs.take(base_step=0, is_mean=lambda key: True, final=True)["loss"]
    assert steps == list(range(1, 401))
    assert values == pytest.approx(losses, abs=1e-9)


def test_a_hook_still_running_during_a_hand_over_is_not_lost() -> None:
    # Keras's thread pool: batch 50's hook finishes after 51..59 were added; a hand-over in
    # between keeps the last batches back, so batch 50 is not dropped as "seen twice"
    losses = [float(i % 5) for i in range(60)]
    means = _running_means(losses)
    logs = BatchLogs()
    for batch in [b for b in range(60) if b != 50]:
        logs.add(batch, 0.0, {"loss": means[batch]})
    early = logs.take(base_step=0, is_mean=lambda key: True)  # during the epoch
    logs.add(50, 0.0, {"loss": means[50]})  # the late hook
    late = logs.take(base_step=0, is_mean=lambda key: True, final=True)  # at the epoch's end
    steps = early["loss"][0] + late["loss"][0]
    values = early["loss"][2] + late["loss"][2]
    assert steps == list(range(1, 61))
    assert values == pytest.approx(losses, abs=1e-9)


def test_values_that_are_not_floats_are_converted_in_one_pass() -> None:
    rows = [{"a": 1, "b": np.float32(0.5), "c": torch.tensor(2.5), "d": "text"}]
    to_floats(rows)
    assert rows == [{"a": 1.0, "b": 0.5, "c": 2.5, "d": "text"}]
    assert all(type(rows[0][k]) is float for k in "abc")
