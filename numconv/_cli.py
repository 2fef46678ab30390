"""Argument types for ``python -m numconv`` (``demo``, ``bench``): bad values end
in argparse's usage message and exit status 2, before any work starts, rather
than in a traceback (or, for an output path, after minutes of measuring)."""
import argparse
import os


def positive_int(text):
    """An int >= 1."""
    return _int_at_least(text, 1)


def non_negative_int(text):
    """An int >= 0."""
    return _int_at_least(text, 0)


def _int_at_least(text, low):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if value < low:
        raise argparse.ArgumentTypeError(f"must be >= {low}, got {value}")
    return value


def thread_count(text):
    """An int between 1 and the threads Numba can run (``NUMBA_NUM_THREADS``)."""
    import numba

    value = positive_int(text)
    top = numba.config.NUMBA_NUM_THREADS
    if value > top:
        raise argparse.ArgumentTypeError(f"must be at most {top} (NUMBA_NUM_THREADS, the cores Numba saw); "
                                         f"got {value}")
    return value


def output_file(text):
    """A path whose directory exists and that can be opened for writing (the file
    is written at the end). It is opened for appending, so an existing file keeps
    its content until then; a file this check creates is removed again."""
    folder = os.path.dirname(os.path.abspath(text)) or "."
    if not text or os.path.isdir(text):
        raise argparse.ArgumentTypeError(f"expected a file name, got {text!r}")
    if not os.path.isdir(folder):
        raise argparse.ArgumentTypeError(f"the folder {folder!r} does not exist")
    if not os.access(folder, os.W_OK):
        raise argparse.ArgumentTypeError(f"the folder {folder!r} is not writable")
    existed = os.path.lexists(text)
    try:
        with open(text, "a"):
            pass
    except OSError as e:
        raise argparse.ArgumentTypeError(f"cannot write {text!r}: {e.strerror or e}") from None
    if not existed:
        try:
            os.remove(text)
        except OSError:
            pass
    return text


def plot_file(text):
    """``output_file`` whose extension matplotlib can write (checked only where
    matplotlib is installed: without it the command stops with a clear message
    naming its flag before any work). No extension means matplotlib's default (png)."""
    text = output_file(text)
    ext = os.path.splitext(text)[1][1:].lower()
    if not ext:
        return text
    try:
        from matplotlib.backend_bases import FigureCanvasBase
    except ImportError:
        return text
    formats = FigureCanvasBase.get_supported_filetypes()
    if ext not in formats:
        raise argparse.ArgumentTypeError(f"matplotlib cannot write a .{ext} file; got {text!r}. Use one of the "
                                         f"extensions {', '.join('.' + f for f in sorted(formats))} "
                                         f"(e.g. {os.path.splitext(text)[0]}.png)")
    return text


def name_list(text):
    """A non-empty comma-separated list (checked against the case tables later)."""
    if not [part for part in text.split(",") if part.strip()]:
        raise argparse.ArgumentTypeError(f"expected one or more names, got {text!r}")
    return text


def plain_help(doc):
    """A docstring as ``--help`` text: without reStructuredText's double backticks."""
    return doc.replace("``", "")
