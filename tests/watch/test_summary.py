"""loopwise.summary: tree, parameter counts, per-layer shapes, memory estimate, clean-up."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from loopwise.watch.model_summary import format_count, format_mb
from loopwise.watch.summary import SummaryError, summary


class RefCNN(nn.Module):
    """The reference's example model (with a Flatten so it runs)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 32, 3, 1, 1)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(32, 64, 3, 2, 1)
        self.relu2 = nn.ReLU()
        self.flat = nn.Flatten()
        self.fc1 = nn.Linear(64 * 16 * 16, 128)
        self.relu3 = nn.ReLU()
        self.output = nn.Linear(128, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.children():
            x = layer(x)
        return x


def mlp() -> nn.Sequential:
    return nn.Sequential(nn.Linear(10, 20), nn.ReLU(), nn.Linear(20, 5))


def test_reference_model_counts_tree_and_shapes() -> None:
    s = summary(RefCNN(), (2, 3, 32, 32), name="MyCNN")
    expected = 896 + 18_496 + (64 * 16 * 16 * 128 + 128) + 1_290
    assert s.total_params == s.trainable_params == expected
    assert s.non_trainable_params == 0
    assert s.params_bytes == expected * 4
    lines = str(s).splitlines()
    assert lines[:3] == [
        "MyCNN(",
        "  (conv1): Conv2d(3, 32, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1))",
        "  (relu1): ReLU()",
    ]
    assert "  (output): Linear(in_features=128, out_features=10, bias=True)" in lines
    shapes = {layer.name: layer.output_shape for layer in s.layers}
    assert shapes == {
        "MyCNN": "[2, 10]",
        "conv1": "[2, 32, 32, 32]",
        "relu1": "[2, 32, 32, 32]",
        "conv2": "[2, 64, 16, 16]",
        "relu2": "[2, 64, 16, 16]",
        "flat": "[2, 16384]",
        "fc1": "[2, 128]",
        "relu3": "[2, 128]",
        "output": "[2, 10]",
    }
    assert [layer.num_params for layer in s.layers][1:4] == [896, 0, 18_496]
    assert "Total parameters: 2.1M" in lines
    assert "Non-trainable parameters: 0" in lines
    assert any(line.startswith("Estimated Total Size (MB): ") for line in lines)


def test_exact_layout_and_memory_estimate_of_a_small_mlp() -> None:
    s = summary(mlp(), (4, 10))
    # activations: Linear 4x20, ReLU 4x20 (new tensor), Linear 4x5; the model's output is the
    # last Linear's tensor, counted once. x2 for the backward pass.
    assert s.input_bytes == 4 * 10 * 4
    assert s.forward_backward_bytes == 2 * (80 + 80 + 20) * 4
    assert s.params_bytes == (220 + 105) * 4
    assert s.estimated_total_bytes == 160 + 1440 + 1300
    assert str(s) == "\n".join(
        [
            "Sequential(",
            "  (0): Linear(in_features=10, out_features=20, bias=True)",
            "  (1): ReLU()",
            "  (2): Linear(in_features=20, out_features=5, bias=True)",
            ")",
            "",
            "Layer (type)             Output Shape  Param #",
            "==============================================",
            "Sequential (Sequential)  [4, 5]            325",
            "  0 (Linear)             [4, 20]           220",
            "  1 (ReLU)               [4, 20]             0",
            "  2 (Linear)             [4, 5]            105",
            "==============================================",
            "",
            "Total parameters: 325",
            "Trainable parameters: 325",
            "Non-trainable parameters: 0",
            "Input size (MB): 0.000",
            "Forward/backward pass size (MB): 0.001",
            "Params size (MB): 0.001",
            "Estimated Total Size (MB): 0.003",
        ]
    )


def test_inplace_and_view_outputs_are_not_counted_twice() -> None:
    model = nn.Sequential(nn.Linear(10, 20), nn.ReLU(inplace=True), nn.Flatten())
    s = summary(model, (4, 10))
    assert s.forward_backward_bytes == 2 * 4 * 20 * 4


def test_without_input_only_tree_and_counts() -> None:
    s = summary(mlp())
    assert s.layers == ()
    assert s.input_bytes is None and s.estimated_total_bytes is None
    text = str(s)
    assert "Input size" not in text and "Layer (type)" not in text
    assert text.endswith("Non-trainable parameters: 0\nParams size (MB): 0.001")


class Tied(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(100, 16)
        self.decoder = nn.Linear(16, 100, bias=False)
        self.decoder.weight = self.embed.weight

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.embed(idx))


def test_tied_parameters_are_counted_once() -> None:
    s = summary(Tied(), (2, 7), dtypes=[torch.long])
    assert s.total_params == 1600
    assert s.params_bytes == 1600 * 4
    assert {layer.name: layer.output_shape for layer in s.layers}["decoder"] == "[2, 7, 100]"


class Nested(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.blocks = nn.ModuleList([nn.Sequential(nn.Linear(8, 8), nn.Tanh()) for _ in range(2)])
        self.heads = nn.ModuleDict({"a": nn.Linear(8, 3), "b": nn.Linear(8, 1)})

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        for block in self.blocks:
            x = block(x)
        return {name: head(x) for name, head in self.heads.items()}


def test_modulelist_moduledict_dict_output_and_depth() -> None:
    s = summary(Nested(), (2, 8), depth=3)
    assert s.total_params == 2 * 72 + 27 + 9
    assert s.layers[0].output_shape == "{a: [2, 3], b: [2, 1]}"
    assert s.layers[0].output_shapes == ((2, 3), (2, 1))
    names = [layer.name for layer in s.layers]
    assert names == ["Nested", "blocks.0", "blocks.0.0", "blocks.0.1", "blocks.1", "blocks.1.0",
                     "blocks.1.1", "heads.a", "heads.b"]
    assert "      (0): Linear(in_features=8, out_features=8, bias=True)" in s.tree
    shallow = summary(Nested(), (2, 8), depth=1)
    assert shallow.tree.splitlines() == ["Nested(", "  (blocks): ModuleList(...)",
                                         "  (heads): ModuleDict(...)", ")"]
    assert [layer.name for layer in shallow.layers] == ["Nested"]


def test_buffers_and_frozen_layers() -> None:
    model = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.Linear(8, 2))
    for p in model[0].parameters():
        p.requires_grad = False
    s = summary(model, (3, 4))
    assert s.total_params == 40 + 16 + 18
    assert s.non_trainable_params == 40
    assert s.trainable_params == 34
    assert s.num_buffers == 8 + 8 + 1
    assert s.buffers_bytes == 8 * 4 * 2 + 8  # running mean/var float32, num_batches_tracked int64
    assert "Buffers size (MB): 0.000" in str(s)
    assert s.layers[1].trainable_params == 0 and s.layers[1].num_params == 40


def test_lstm_tuple_outputs() -> None:
    s = summary(nn.LSTM(8, 16, batch_first=True), (2, 5, 8))
    assert s.total_params == 4 * 16 * (8 + 16) + 2 * 4 * 16
    assert s.layers[0].output_shape == "([2, 5, 16], ([1, 2, 16], [1, 2, 16]))"
    assert s.layers[0].output_shapes == ((2, 5, 16), (1, 2, 16), (1, 2, 16))


class TwoInputs(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(50, 4)
        self.proj = nn.Linear(6, 4)

    def forward(self, tokens: torch.Tensor, feats: torch.Tensor) -> torch.Tensor:
        return self.embed(tokens).mean(1) + self.proj(feats)


def test_several_inputs_by_size_and_by_data() -> None:
    s = summary(TwoInputs(), [(3, 5), (3, 6)], dtypes=[torch.long, torch.float32])
    assert s.input_shapes == ((3, 5), (3, 6))
    assert s.input_bytes == 3 * 5 * 8 + 3 * 6 * 4
    assert s.layers[0].output_shape == "[3, 4]"
    data = {"tokens": torch.zeros(2, 5, dtype=torch.long), "feats": torch.rand(2, 6)}
    by_kwargs = summary(TwoInputs(), input_data=data)
    assert by_kwargs.layers[0].output_shape == "[2, 4]"
    by_args = summary(TwoInputs(), input_data=[data["tokens"], data["feats"]])
    assert by_args.input_shapes == ((2, 5), (2, 6))


def test_sizes_honour_dtypes() -> None:
    model = mlp().to(torch.float64)
    s = summary(model, (4, 10))  # inputs default to the model's dtype
    assert s.params_bytes == 325 * 8
    assert s.input_bytes == 4 * 10 * 8
    half = summary(mlp().half())
    assert half.params_bytes == 325 * 2


def test_repeated_module_is_marked_recursive() -> None:
    class Twice(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.layer = nn.Linear(4, 4)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.layer(self.layer(x))

    s = summary(Twice(), (1, 4))
    assert [(layer.name, layer.repeated) for layer in s.layers[1:]] == [
        ("layer", False),
        ("layer", True),
    ]
    assert "(recursive)" in str(s)
    assert s.total_params == 20


def _hook_count(model: nn.Module) -> int:
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.modules())


def test_bad_input_names_the_layer_and_shapes_and_cleans_up() -> None:
    model = nn.Sequential(nn.Linear(10, 20), nn.ReLU(), nn.Linear(30, 2))
    model.train()
    model[1].eval()
    with pytest.raises(SummaryError, match=r"layer '2' \(Linear\(in_features=30, out_features=2"):
        summary(model, (4, 10))
    try:
        summary(model, (4, 10))
    except SummaryError as exc:
        text = str(exc)
        assert "with input shape [4, 20]" in text
        assert "parameters: weight [2, 30], bias [2]" in text
        assert "Model input: [4, 10]" in text
        assert "4x20 and 30x2" in text
        assert isinstance(exc, ValueError)
        assert isinstance(exc.__cause__, RuntimeError)
    assert _hook_count(model) == 0
    assert [m.training for m in model.modules()] == [True, True, False, True]


def test_failure_in_the_models_own_forward() -> None:
    class Bad(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(4, 4)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.fc(x).view(-1, 3)

    with pytest.raises(SummaryError, match=r"in the model's own forward \(Bad\).*input: \[1, 4\]"):
        summary(Bad(), (1, 4))


def test_no_side_effects_on_mode_rng_and_running_stats() -> None:
    model = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.Dropout(0.5))
    model.train()
    before_stats = model[1].running_mean.clone()
    rng = torch.get_rng_state()
    summary(model, (16, 4))
    assert torch.equal(torch.get_rng_state(), rng)
    assert torch.equal(model[1].running_mean, before_stats)
    assert int(model[1].num_batches_tracked) == 0
    assert all(m.training for m in model.modules())
    assert _hook_count(model) == 0


def test_device_is_restored() -> None:
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA device to move the model to and back")
    model = mlp()
    s = summary(model, (2, 10), device="cuda")
    assert s.layers[0].output_shape == "[2, 5]"
    assert all(p.device.type == "cpu" for p in model.parameters())
    bad = nn.Sequential(nn.Linear(3, 3))
    with pytest.raises(SummaryError, match="layer '0'"):
        summary(bad, (2, 10), device="cuda")
    assert all(p.device.type == "cpu" for p in bad.parameters())


def test_lazy_modules() -> None:
    with pytest.raises(ValueError, match=r"uninitialized \(lazy\) parameters; pass input_size"):
        summary(nn.Sequential(nn.LazyLinear(3)))
    s = summary(nn.Sequential(nn.LazyLinear(3)), (2, 5))
    assert s.total_params == 18


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"input_size": "3x4"}, ValueError, "input_size must be a shape including the batch"),
        ({"input_size": (2, 0)}, ValueError, r"dimensions must be > 0, got \(2, 0\)"),
        ({"input_size": (2, 10), "input_data": torch.zeros(2, 10)}, ValueError, "not both"),
        ({"input_size": (2, 10), "dtypes": [torch.float32] * 2}, ValueError, "list of 1 torch"),
        ({"input_data": "x"}, TypeError, "input_data must be a tensor"),
        ({"input_data": torch.zeros(2, 10), "dtypes": torch.float64}, ValueError, "dtypes applies"),
        ({"depth": -1}, ValueError, "depth must be an int >= 0"),
        ({"name": ""}, ValueError, "name must be a non-empty string"),
        ({"device": "nonsense"}, ValueError, "device must be a torch device"),
    ],
)
def test_argument_errors(kwargs: dict, error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        summary(mlp(), **kwargs)


def test_not_a_module() -> None:
    with pytest.raises(TypeError, match=r"needs a torch\.nn\.Module, got list"):
        summary([nn.Linear(2, 2)])  # type: ignore[arg-type]


def test_number_formats() -> None:
    assert [format_count(n) for n in (0, 896, 1000, 18_496, 1_069_386, 7_000_000_000)] == [
        "0",
        "896",
        "1.0K",
        "18.5K",
        "1.1M",
        "7.0B",
    ]
    assert [format_mb(n) for n in (12_288, 4_277_544, 0)] == ["0.012", "4.08", "0.000"]  # MiB
