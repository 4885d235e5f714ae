"Bad-input and precision tests for nowcast.losses (the notebook covers the weighting and the curriculum)."
import pytest
import torch

from nowcast.losses import NowcastLoss, nowcast_loss


def _batch(shape=(2, 3, 2, 12, 12), seed=0):
    g = torch.Generator().manual_seed(seed)
    target = torch.rand(shape, generator=g)
    pred = (target + 0.05 * torch.randn(shape, generator=g)).clamp(0, 1)
    valid = torch.rand(shape, generator=g) > 0.2
    return pred, target, valid


def test_bf16_autocast_gives_a_float32_loss_and_finite_gradients():
    pred, target, valid = _batch()
    model_out = pred.clone().requires_grad_()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss, parts = nowcast_loss(model_out.bfloat16(), target.bfloat16(), valid,
                                   high_penalty_weight=100.0, ssim_weight=30.0)
    assert loss.dtype == torch.float32
    loss.backward()
    assert torch.isfinite(model_out.grad).all() and model_out.grad.abs().sum() > 0
    ref, _ = nowcast_loss(pred, target, valid, high_penalty_weight=100.0, ssim_weight=30.0)
    assert abs(loss.item() - ref.item()) < 0.02 * ref.item()  # bf16 inputs: ~3 significant digits
    assert set(parts) == {"huber", "high_share", "ssim", "ssim_term", "total"} and all(isinstance(v, float) for v in parts.values())


def test_all_missing_gives_zero_huber_not_nan():
    pred, target, _ = _batch()
    pred.requires_grad_()
    loss, parts = nowcast_loss(pred, target, torch.zeros_like(target, dtype=torch.bool), ssim_weight=1.0)
    assert parts["huber"] == 0.0 and torch.isfinite(loss)
    loss.backward()
    assert torch.isfinite(pred.grad).all()


def test_shape_mismatch_and_tiny_maps_raise_value_error():
    pred, target, valid = _batch()
    with pytest.raises(ValueError, match="same shape"):
        nowcast_loss(pred, target, valid[:, :1])
    tiny = torch.rand(1, 1, 1, 2, 5)
    with pytest.raises(ValueError, match="at least 3 x 3"):
        nowcast_loss(tiny, tiny, torch.ones_like(tiny, dtype=torch.bool))


def test_module_wrapper_matches_function():
    pred, target, valid = _batch()
    weights = dict(high_penalty_weight=25.0, ssim_weight=30.0, huber_delta_dbz=4.0, dbz_min=-10.0, dbz_max=70.0)
    a, _ = NowcastLoss(**weights)(pred, target, valid)
    b, _ = nowcast_loss(pred, target, valid, **weights)
    assert a.item() == b.item()


def test_threshold_follows_the_normalisation_range():
    # a target of 0.55 is 34 dBZ in [-10, 70] (below 40) but 45 dBZ in [0, 81.8] (above 40)
    target = torch.full((1, 1, 1, 8, 8), 0.55)
    target[..., :4, :] = 0.1  # half light rain, half the 0.55 band
    pred = torch.full_like(target, 0.55)  # exact on the 0.55 band, wrong on the light rain
    pred[..., 4:, :] += 0.01
    valid = torch.ones_like(target, dtype=torch.bool)
    low, _ = nowcast_loss(pred, target, valid, high_penalty_weight=100.0)
    high, _ = nowcast_loss(pred, target, valid, high_penalty_weight=100.0, norm={"dbz_min": 0.0, "dbz_max": 81.8})
    assert high.item() != pytest.approx(low.item())
