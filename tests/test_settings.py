"""The setting a chapter runs in (LFS_SETTING / LFS_SMOKE), read in one place."""

import pytest
import torch

from llm_from_scratch.utils import SETTINGS, current_setting


def test_the_three_settings():
    assert tuple(SETTINGS) == ("smoke", "book", "full")  # the names the team brief fixes


@pytest.mark.parametrize("value", ["smoke", "book", "full"])
def test_lfs_setting_is_read(value):
    assert current_setting({"LFS_SETTING": value}) == value
    assert current_setting({"LFS_SETTING": value.upper()}) == value


def test_lfs_smoke_is_an_alias_of_smoke():
    assert current_setting({"LFS_SMOKE": "1"}) == "smoke"
    assert current_setting({"LFS_SMOKE": "1", "LFS_SETTING": "smoke"}) == "smoke"


def test_default_depends_on_the_hardware():
    expected = "full" if torch.cuda.is_available() else "book"
    assert current_setting({}) == expected
    assert current_setting({"LFS_SMOKE": "0"}) == expected


@pytest.mark.parametrize(
    "env, words",
    [
        ({"LFS_SETTING": "fast"}, "not a setting"),
        ({"LFS_SETTING": "book", "LFS_SMOKE": "1"}, "unset LFS_SMOKE"),
        ({"LFS_SMOKE": "yes"}, "LFS_SMOKE"),
    ],
)
def test_bad_values_are_one_line_errors(env, words):
    with pytest.raises(ValueError) as err:
        current_setting(env)
    message = str(err.value)
    assert words in message and "\n" not in message
