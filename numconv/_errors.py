"""Message builders, so every error numconv raises reads the same way:
``<function>: <argument> <what was expected>; got <what was received>. <fix>``."""


def shape_str(shape):
    """``(1, 56)`` style, also for 1-tuples and with the batch shown as given."""
    return "(" + ", ".join(str(s) for s in shape) + ("," if len(shape) == 1 else "") + ")"


def x_axes(x_shape, data_format):
    """``for the 2 spatial axes of x (shape (2, 28, 28, 3), data_format="channels_last")``:
    what an argument of another rank (a kernel, a pool_size) is checked against."""
    r = len(x_shape) - 2
    return (f"for the {r} spatial {'axis' if r == 1 else 'axes'} of x (shape {shape_str(x_shape)}, "
            f"data_format=\"{data_format}\")")


def value_error(fn, arg, expected, got, fix=None):
    return ValueError(_message(fn, arg, expected, got, fix))


def type_error(fn, arg, expected, got, fix=None):
    return TypeError(_message(fn, arg, expected, got, fix))


def _message(fn, arg, expected, got, fix):
    msg = f"{fn}: {arg} {expected}; got {got}."
    return f"{msg} {fix}" if fix else msg


def unknown_option(fn, arg, got, options):
    listed = ", ".join(repr(o) for o in options)
    return ValueError(f"{fn}: unknown {arg} {got!r}; expected one of {listed}.")
