"""``ConvSpec`` of a conv call, for tests that ask which path or kernel it takes."""
from numconv._dispatch import METHODS
from numconv._spec import conv_spec


def spec_of(x, w, b=None, *, strides=1, padding="valid", dilation_rate=1, groups=None,
            data_format="channels_last", padding_mode="zeros", activation=None, method="auto"):
    """The validated spec ``numconv.conv(x, w, b, **same arguments)`` runs."""
    return conv_spec("conv", x, w, b, strides, padding, dilation_rate, groups, data_format, padding_mode,
                     activation, method, METHODS)[0]
