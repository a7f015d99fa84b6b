"""check_int: the one int validation every edgelab argument goes through."""

from __future__ import annotations

import numpy as np
import pytest

from edgelab.errors import ConfigError, check_int


def test_ints_and_numpy_ints_come_back_as_plain_ints():
    assert check_int("n", 3) == 3
    value = check_int("n", np.int64(7))
    assert value == 7 and type(value) is int
    assert check_int("seed", 0, minimum=0) == 0
    assert check_int("v", 14, minimum=10, maximum=14) == 14
    assert check_int("n", None, allow_none=True) is None


@pytest.mark.parametrize("value", [0, -2, True, np.bool_(True), 1.0, "3", None])
def test_a_non_positive_int_is_refused_and_echoed(value):
    with pytest.raises(ConfigError) as info:
        check_int("top_k", value)
    assert str(info.value) == f"Expected top_k to be a positive int. Received: top_k={value!r}"


@pytest.mark.parametrize(
    "kwargs, value, expected",
    [
        ({"minimum": 0}, -1, "an int >= 0"),
        ({"minimum": 10, "maximum": 14}, 15, "an int from 10 to 14"),
        ({"minimum": None, "maximum": 3}, 4, "an int <= 3"),
        ({"minimum": None}, 2.5, "an int"),
        ({"allow_none": True}, 0, "a positive int or None"),
    ],
)
def test_the_message_names_the_range(kwargs, value, expected):
    with pytest.raises(ConfigError, match=rf"^Expected x to be {expected}\. Received: x={value!r}$"):
        check_int("x", value, **kwargs)


def test_every_edgelab_warning_category_derives_from_edgelabwarning():
    """One filter (``warnings.simplefilter("ignore", EdgelabWarning)``) silences or surfaces them all."""
    import edgelab
    from edgelab.data.skips import DatasetWarning
    from edgelab.diagnose.calibration import CalibrationWarning
    from edgelab.errors import EdgelabWarning, EdgeTPUWarning

    assert edgelab.EdgelabWarning is EdgelabWarning
    for category in (EdgeTPUWarning, DatasetWarning, CalibrationWarning):
        assert issubclass(category, EdgelabWarning), category
        assert issubclass(category, UserWarning), category  # shown by Python's default filters


def test_the_command_line_shows_an_edgelab_warning_as_one_line_and_others_unchanged():
    import subprocess
    import sys

    script = (
        "import warnings\n"
        "from edgelab._cli.args import one_line_warnings\n"
        "from edgelab.errors import SanityWarning\n"
        "one_line_warnings()\n"
        "warnings.warn(SanityWarning('accuracy is at chance'))\n"
        "warnings.warn(UserWarning('from another package'))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    lines = done.stderr.splitlines()
    assert lines[0] == "edgelab: warning: accuracy is at chance"
    assert "UserWarning: from another package" in lines[1]  # Python's own form, with its source
