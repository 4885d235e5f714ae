"Bad-input and round-trip tests for nowcast.models (the notebook covers shapes, skip, overfitting)."
import io

import pytest
import torch

from nowcast.models import AdvectionNet, ConvLSTM, ConvLSTM3D_Enhanced, get_model, model_config, count_parameters

SMALL = dict(n_levels=2, n_in=3, n_out=2, hidden=[4, 4])


@pytest.mark.parametrize("name,kw", [("ConvLSTM", {}), ("ConvLSTM3D_Enhanced", {"groups": 2})])
def test_checkpoint_round_trip_rebuilds_the_same_forecast(name, kw):
    torch.manual_seed(0)
    model = get_model(name, **SMALL, **kw, downsample=[2, 2])
    if name == "ConvLSTM3D_Enhanced":
        torch.nn.init.normal_(model.head.weight)  # so the forecast is not plain persistence
    buf = io.BytesIO()
    torch.save({"model": model.state_dict(), "model_config": model_config(model)}, buf)
    buf.seek(0)
    ckpt = torch.load(buf, weights_only=True)
    rebuilt = get_model(ckpt["model_config"]["name"], **ckpt["model_config"]["kwargs"])
    rebuilt.load_state_dict(ckpt["model"])
    x = torch.rand(1, 3, 2, 8, 8)
    with torch.no_grad():
        assert torch.equal(model(x), rebuilt(x))
    assert count_parameters(rebuilt) == count_parameters(model)


@pytest.mark.parametrize("cls", [ConvLSTM, ConvLSTM3D_Enhanced])
@pytest.mark.parametrize("shape,message", [
    ((1, 3, 2, 8), "expected inputs [B, n_in, Z, H, W]"),
    ((1, 4, 2, 8, 8), "n_in=3"),
    ((1, 3, 5, 8, 8), "Z=2"),
])
def test_bad_window_shapes_raise_a_clear_value_error(cls, shape, message):
    model = cls(**SMALL, downsample=[2, 2], **({"groups": 2} if cls is ConvLSTM3D_Enhanced else {}))
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        model(torch.rand(*shape))


@pytest.mark.parametrize("cls", [ConvLSTM, ConvLSTM3D_Enhanced, AdvectionNet])
@pytest.mark.parametrize("hw", [(10, 8), (8, 6), (13, 17)])
def test_any_grid_is_padded_to_the_stride_product_and_cropped_back(cls, hw):
    """A model trained on one radar's crops forecasts on another radar's grid of any size: the grid is padded (no
    echo) to a multiple of the strides' product, and the forecast cropped back to it, the same as padding by hand."""
    from nowcast.models import pad_grid
    torch.manual_seed(0)
    model = cls(**SMALL, downsample=[2, 2], **({"groups": 2} if cls is not ConvLSTM else {})).eval()
    x = torch.rand(1, 3, 2, *hw)
    with torch.no_grad():
        y = model(x)
        assert y.shape == (1, SMALL["n_out"], 2, *hw)
        by_hand = model(pad_grid(x, 4)[0])[..., :hw[0], :hw[1]]
    assert torch.allclose(y, by_hand, atol=1e-6)


def test_unknown_model_and_bad_strides():
    with pytest.raises(ValueError, match="known models: ConvLSTM, ConvLSTM3D_Enhanced"):
        get_model("TrajGRU")
    with pytest.raises(ValueError, match="one stride per stage"):
        ConvLSTM(**SMALL, downsample=[2])
    with pytest.raises(ValueError, match="at least one stage"):
        ConvLSTM3D_Enhanced(n_levels=2, n_in=3, n_out=2, hidden=[])


def test_odd_levels_and_uneven_groups_work():
    # Z = 7 halves to 4 then 2; 6 hidden channels with groups=4 falls back to a divisor (3, 2 or 1)
    model = ConvLSTM3D_Enhanced(n_levels=7, n_in=2, n_out=2, hidden=[6, 6], groups=4)
    with torch.no_grad():
        assert model(torch.rand(1, 2, 7, 8, 8)).shape == (1, 2, 7, 8, 8)


def test_checkpointed_training_step_in_bf16_autocast_on_cpu():
    """Checkpointing over time steps under bf16 autocast (the H100/H200 path, run on the CPU) gives finite gradients;
    repeated with freed memory full of NaN, so that a kernel reading memory it never wrote cannot pass by luck."""
    for _ in range(20):
        torch.manual_seed(0)
        model = ConvLSTM3D_Enhanced(**SMALL, groups=2, checkpoint_steps=True, zero_init_head=False)
        x = torch.rand(2, 3, 2, 8, 8)
        dirty = torch.full((1000, 1000), float("nan")); del dirty
        with torch.autocast("cpu", dtype=torch.bfloat16):
            y = model(x)
        y.float().square().mean().backward()
        grads = [p.grad for p in model.parameters()]
        assert all(g is not None and torch.isfinite(g).all() for g in grads)
