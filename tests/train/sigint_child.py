"""A training process for the Ctrl-C tests (run as a script by test_fit.py).

argv: root name marker_step weights_out [seconds]. At training step ``marker_step`` the model
writes ``<root>/<name>.marker`` and from then on each step sleeps ``seconds`` (0.05), so the test
can send SIGINT while the loop runs. On the end of training the final weights go to ``weights_out``.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader, TensorDataset

from loopwise.train.callbacks import Callback, LoopState
from loopwise.train.fit.config import TrainingConfig
from loopwise.train.fit.entry import fit


class Net(torch.nn.Module):
    def __init__(self, marker: Path | None, at: int, seconds: float = 0.05) -> None:
        super().__init__()
        self.body = torch.nn.Sequential(torch.nn.Linear(4, 16), torch.nn.ReLU(),
                                        torch.nn.Linear(16, 1))
        self.marker, self.at, self.calls, self.seconds = marker, at, 0, seconds

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            self.calls += 1
            if self.marker is not None and self.calls >= self.at:
                self.marker.touch()
                time.sleep(self.seconds)
        out: torch.Tensor = self.body(x)
        return out


class SaveFinal(Callback):
    def __init__(self, path: str) -> None:
        self.path = path

    def on_train_end(self, state: LoopState) -> None:
        torch.save(state.model.state_dict(), self.path)


def main() -> None:
    root, name, at, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    torch.manual_seed(0)
    x = torch.randn(96, 4)
    y = x.sum(dim=1, keepdim=True)
    loader = DataLoader(TensorDataset(x, y), batch_size=8, shuffle=True,
                        generator=torch.Generator().manual_seed(1))
    seconds = float(sys.argv[5]) if len(sys.argv) > 5 else 0.05
    model = Net(Path(root) / f"{name}.marker" if at >= 0 else None, at, seconds)
    cfg = TrainingConfig(epochs=3, patience=0, lr_patience=0, checkpoint_every=1,
                         model_name="net", device="cpu")
    try:
        result = fit(model, loader, loss_fn=torch.nn.MSELoss(), val_loader=loader, config=cfg,
                     root=root, name=name, callbacks=[SaveFinal(out)], plots=False,
                     progress=False, system=False)
    except KeyboardInterrupt as exc:
        print(f"KeyboardInterrupt: {exc}", flush=True)
        sys.exit(130)
    print(f"status={result.status} epochs={result.epochs}", flush=True)


if __name__ == "__main__":
    main()
