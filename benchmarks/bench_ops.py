"""Issue-5 ops of the case table: separable and transposed convolution, the two
gradients of the resnet layer, and max pooling - numconv against torch (NCHW and
channels_last; ``torch.nn.grad.conv2d_input`` / ``conv2d_weight`` for the
gradients, the same ``convolution_backward`` autograd runs). Depthwise is
``Depthwise.depthwise2d`` in ``bench_depthwise``."""
from .bench_conv import _ConvSuite
from .common import case_names, IMPLS


class Ops(_ConvSuite):
    """separable2d (8x56x56x128 3x3 -> 128), transpose2d (8x28x28x64 -> 64 3x3 /2),
    backprop_input / backprop_kernel (resnet 8x56x56x64 3x3 same), maxpool2d
    (8x112x112x64 3x3 /2)."""

    params = [case_names("ops"), list(IMPLS)]
