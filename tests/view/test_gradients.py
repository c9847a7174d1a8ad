"""``loopwise doctor`` reads the record's gradient histograms: vanishing and exploding
gradients are findings with what to try; healthy ones and weight histograms are not."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from loopwise.cli import main
from loopwise.record import Run, RunReader
from loopwise.view.doctor import diagnose, render_diagnosis
from loopwise.view.gradients import gradient_findings


def _run(root: Path, name: str, scale_at: dict[str, list[float]]) -> Path:
    rng = np.random.default_rng(0)
    with Run.create(root, name) as run:
        for i in range(len(next(iter(scale_at.values())))):
            for hist, scales in scale_at.items():
                run.log_histogram(hist, rng.normal(0, 1, 1000) * scales[i], step=(i + 1) * 10)
    return root / name


def test_vanishing_and_exploding_gradients_are_findings_with_advice(tmp_path: Path,
                                                                     capsys) -> None:
    path = _run(tmp_path, "bad", {
        "grads/deep.weight": [0.1, 0.01, 1e-4, 1e-9, 0.0],  # collapses to zero
        "grads/head.weight": [0.1, 0.5, 3.0, 30.0, 40.0],  # 100x+ by step 40
        "grads/ok.weight": [0.1, 0.12, 0.09, 0.11, 0.1],
        "weights/deep.weight": [1.0, 1e-3, 1e-6, 1e-9, 0.0],  # not a gradient
    })
    found = {f.key: f for f in gradient_findings(RunReader(path))}
    assert set(found) == {"grads/deep.weight", "grads/head.weight"}
    vanish, explode = found["grads/deep.weight"], found["grads/head.weight"]
    assert (vanish.detector, vanish.step) == ("vanishing_gradient", 50)
    assert vanish.message.startswith("gradient grads/deep.weight collapsed to zero: its largest "
                                     "|value| fell from ")
    assert vanish.message.endswith("to 0 (step 50)")
    assert (explode.detector, explode.step) == ("exploding_gradient", 40)
    assert "is exploding: its largest |value| grew to" in explode.message
    text = render_diagnosis(diagnose(RunReader(path)))
    assert "[vanishing_gradient] step 50: gradient grads/deep.weight collapsed" in text
    assert "try: look for saturated activations" in text
    assert "[exploding_gradient] step 40" in text and "clip gradients" in text
    assert text.endswith("verdict: needs attention")
    main(["doctor", str(path)])
    assert "exploding_gradient" in capsys.readouterr().out


def test_non_finite_gradients_explode_and_healthy_ones_pass(tmp_path: Path) -> None:
    with Run.create(tmp_path, "nan") as run:
        run.log_histogram("grads/w", [0.1, -0.1], step=1)
        run.log_histogram("grads/w", [0.1, float("nan")], step=2)
    (finding,) = gradient_findings(RunReader(run.path))
    assert finding.step == 2 and "non-finite values" in finding.message
    ok = _run(tmp_path, "ok", {"grads/w": [0.1, 0.2, 0.15]})
    assert gradient_findings(RunReader(ok)) == []
    assert "gradient histograms" in render_diagnosis(diagnose(RunReader(ok)))
