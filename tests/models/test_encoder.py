"""The hybrid encoder's shapes, registry and masking (the ConvNeXt branch must not see masked pixels, and
its per-unit crops must line up with the ViT's tokens)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from models import create_encoder, create_mae, get_spec, list_sizes
from models.augment import AugmentConfig, apply_augment, draw_augment
from models.hybrid_encoder import MASK_UNIT, PATCH_SIZE, SmallMapDepthwiseConv2d, unit_crops, unit_token_ids
from models.losses import patchify
from models.masking import draw_unit_mask, token_visibility, visible_unit_ids, visible_units


@pytest.mark.parametrize("in_chans", [1, 3])
def test_forward_features_shapes(in_chans: int) -> None:
    encoder = create_encoder("tiny", in_chans=in_chans).eval()
    features = encoder.forward_features(torch.rand(2, in_chans, 256, 256))
    assert features.embedding.shape == (2, encoder.embed_dim)
    assert features.tokens.shape == (2, 256, encoder.embed_dim)
    assert [tuple(m.shape) for m in features.feature_maps] == [
        (2, c, 256 // s, 256 // s) for c, s in zip(encoder.feature_channels, encoder.feature_strides)
    ]


def test_a_bf16_encoder_runs_in_bf16_under_autocast_too() -> None:
    """Cast to bfloat16 for inference, the encoder gives the same features with or without autocast (autocast
    would run its LayerNorms in float32), close to the float32 encoder's."""
    torch.manual_seed(0)
    full = create_encoder("tiny").eval()
    half = create_encoder("tiny").eval()
    half.load_state_dict(full.state_dict())
    half.to(torch.bfloat16)
    x = torch.rand(2, 1, 256, 256)
    with torch.no_grad():
        plain = half.forward_features(x)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            autocast = half.forward_features(x)
        reference = full.forward_features(x).embedding
    assert autocast.embedding.dtype == torch.bfloat16
    torch.testing.assert_close(autocast.embedding, plain.embedding, rtol=0, atol=0)
    assert F.cosine_similarity(plain.embedding.float(), reference).min() > 0.999


def test_registry() -> None:
    assert {"tiny", "base", "large"} <= set(list_sizes())
    with pytest.raises(KeyError, match="choose one of"):
        get_spec("huge")


def test_masks_have_exact_ratio_and_matching_tokens() -> None:
    g = torch.Generator().manual_seed(0)
    n_visible = visible_units(256, 0.75)
    assert n_visible == 16  # of 8 x 8 units of 32 px
    for blockwise in (0.0, 1.0):
        unit = draw_unit_mask(6, 256, n_visible, blockwise, g, torch.device("cpu"))
        assert unit.shape == (6, 1, 8, 8) and (unit.flatten(1).sum(1) == n_visible).all()
        unit_ids = visible_unit_ids(unit, n_visible)
        assert unit.flatten(1).gather(1, unit_ids).all() and (unit_ids.diff(dim=1) > 0).all()
        token_ids = unit_token_ids(unit_ids, 8)
        assert token_ids.shape == (6, 4 * n_visible) and token_visibility(unit).gather(1, token_ids).all()
        assert (token_ids.sort(dim=1).values.diff(dim=1) > 0).all()  # each visible token exactly once


def test_unit_crops_line_up_with_tokens() -> None:
    """Pixel for pixel, crop k's 16-px patches are the tokens 4k..4k+3 of `unit_token_ids`, so the
    ConvNeXt's per-crop features are added to the right ViT tokens."""
    x = torch.rand(3, 2, 256, 256)
    unit_ids = visible_unit_ids(draw_unit_mask(3, 256, 5, 0.0, torch.Generator().manual_seed(0), x.device), 5)
    crops = unit_crops(x, unit_ids)
    assert crops.shape == (15, 2, MASK_UNIT, MASK_UNIT)
    tokens = patchify(x, PATCH_SIZE).gather(1, unit_token_ids(unit_ids, 8)[..., None].expand(-1, -1, 512))
    torch.testing.assert_close(patchify(crops, PATCH_SIZE).reshape(3, 20, 512), tokens, rtol=0, atol=0)


@pytest.mark.parametrize("size", [(1, 1), (2, 2), (4, 4), (8, 8), (3, 5), (9, 9)])
def test_small_map_depthwise_conv_is_the_convolution(size: tuple[int, int]) -> None:
    """The Toeplitz-product depthwise convolution computes F.conv2d's output and gradients (float64)."""
    conv = nn.Conv2d(6, 6, 7, padding=3, groups=6, dtype=torch.float64)
    fast = SmallMapDepthwiseConv2d.from_conv(conv)
    x = torch.randn(3, 6, *size, dtype=torch.float64).to(memory_format=torch.channels_last).requires_grad_()
    y, ref = fast(x), F.conv2d(x, conv.weight, conv.bias, padding=3, groups=6)
    grad = torch.randn_like(ref)
    torch.testing.assert_close(y, ref)
    for a, b in zip(torch.autograd.grad(y, (x, fast.weight, fast.bias), grad),
                    torch.autograd.grad(ref, (x, conv.weight, conv.bias), grad)):
        torch.testing.assert_close(a, b)
    with pytest.raises(ValueError, match="depthwise"):
        SmallMapDepthwiseConv2d.from_conv(nn.Conv2d(6, 6, 7, padding=3))


def test_masked_pixels_do_not_leak_into_encoding() -> None:
    """Changing only masked pixels must leave visible tokens and the embedding unchanged (no leak through
    the ConvNeXt's convolutions nor the ViT)."""
    torch.manual_seed(0)
    encoder = create_encoder("tiny").eval()
    g = torch.Generator().manual_seed(1)
    n_visible = visible_units(256, 0.5)
    unit = draw_unit_mask(2, 256, n_visible, 0.5, g, torch.device("cpu"))
    unit_ids = visible_unit_ids(unit, n_visible)
    x = torch.rand(2, 1, 256, 256)
    pixel_visible = unit.repeat_interleave(MASK_UNIT, 2).repeat_interleave(MASK_UNIT, 3)
    noise = torch.rand_like(x) * 5
    x_changed = torch.where(pixel_visible, x, noise)
    with torch.no_grad():
        tokens, embedding = encoder.encode_masked(x, unit_ids)
        tokens2, embedding2 = encoder.encode_masked(x_changed, unit_ids)
        tokens3, _ = encoder.encode_masked(torch.where(pixel_visible, noise, x), unit_ids)
    torch.testing.assert_close(tokens2, tokens)
    torch.testing.assert_close(embedding2, embedding)
    assert not torch.allclose(tokens3, tokens)  # the same change made to visible pixels does show


def test_augment_keeps_range_and_identity() -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.rand(4, 1, 64, 64)
    params = draw_augment(4, AugmentConfig(), g, torch.device("cpu"))
    y = apply_augment(x, params)
    assert y.shape == x.shape and y.min() >= 0 and y.max() <= 1 and not torch.allclose(x, y)
    identity = torch.tensor([[0.0, 1.0, 1.0, 1.0]]).repeat(4, 1)
    torch.testing.assert_close(apply_augment(x, identity), x, atol=1e-5, rtol=0)


def test_mae_losses_finite_and_backward() -> None:
    torch.manual_seed(0)
    mae = create_mae("tiny")
    g = torch.Generator().manual_seed(0)
    slices = torch.randint(0, 256, (2, 1, 256, 256), dtype=torch.uint8)
    n_visible = visible_units(256, 0.625)
    unit = draw_unit_mask(4, 256, n_visible, 0.5, g, torch.device("cpu"))
    out = mae(slices, unit, n_visible, draw_augment(4, AugmentConfig(), g, torch.device("cpu")))
    assert all(torch.isfinite(t) for t in out) and out.consistency_loss > 0
    out.loss.backward()
    assert all(p.grad is not None for p in mae.parameters()), "every parameter must get a gradient (DDP)"
