"""FLOP counting and model-FLOPs utilisation as the shared reference benchmark counts them
(torch.utils.flop_counter over one forward + backward, against the dense bf16 peak), plus a corrected count.

torch's formula for `convolution_backward` ignores `groups`: for a depthwise convolution it counts the
weight gradient as a dense C x C convolution, C times too many FLOPs (ConvNeXt's 7x7 depthwise layers make
that 40% of an inflated total). `count_flops(fn, grouped_conv_fix=True)` counts each gradient of a grouped
convolution like its forward instead. For models without grouped convolutions both counts agree.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch.utils.flop_counter import FlopCounterMode, conv_flop_count

H100_SXM_BF16_DENSE_FLOPS = 989e12  # FLOP/s, the figure the reference MAE benchmark uses


def _conv_backward_flop(grad_out_shape: list[int], x_shape: list[int], w_shape: list[int], _bias: Any,
                        _stride: Any, _padding: Any, _dilation: Any, transposed: bool, _output_padding: Any,
                        _groups: int, output_mask: list[bool], **kwargs: Any) -> int:
    """convolution_backward: input and weight gradients each cost what the forward convolution costs
    (w_shape already holds in_channels / groups, so grouped convolutions are counted right)."""
    forward = conv_flop_count(x_shape, w_shape, grad_out_shape, transposed)
    return forward * (int(output_mask[0]) + int(output_mask[1]))


def count_flops(fn: Callable[[], Any], grouped_conv_fix: bool = False) -> int:
    """FLOPs that torch's FlopCounterMode sees while running fn() once (run it eagerly); with
    `grouped_conv_fix`, grouped-convolution gradients are counted correctly (see module docstring)."""
    mapping = {torch.ops.aten.convolution_backward: _conv_backward_flop} if grouped_conv_fix else None
    with FlopCounterMode(display=False, custom_mapping=mapping) as counter:
        fn()
    return counter.get_total_flops()


def mfu(flops_per_step: float, seconds_per_step: float, peak_flops: float = H100_SXM_BF16_DENSE_FLOPS) -> float:
    """Model-FLOPs utilisation in [0, 1]."""
    return flops_per_step / seconds_per_step / peak_flops
