import pytest

from composite.core import RecipeError
from composite.graph import Param


def test_coercion_and_ranges():
    assert Param(float, 1.0, range=(0, 2)).validate(1) == 1.0
    assert Param(int, 1).validate(3.0) == 3
    with pytest.raises(RecipeError, match=r"out of range \[0, 2\]"):
        Param(float, 1.0, range=(0, 2)).validate(2.5, key="stages.k.params.gain")
    with pytest.raises(RecipeError, match="expected a number, got 'x'"):
        Param(float, 1.0).validate("x")
    with pytest.raises(RecipeError, match="expected an integer"):
        Param(int, 1).validate(1.5)
    with pytest.raises(RecipeError, match="expected true or false"):
        Param(bool, False).validate(1)
    with pytest.raises(RecipeError, match="finite"):
        Param(float, 1.0).validate(float("nan"))


def test_choices_lists_and_optional():
    p = Param(str, "green", choices=("green", "blue"))
    with pytest.raises(RecipeError, match="allowed: green, blue"):
        p.validate("red", key="screen")
    v = Param(list, [0, 0], item=float, length=2).validate([1, 2])
    assert v == (1.0, 2.0)
    with pytest.raises(RecipeError, match="expected 2 items"):
        Param(list, [0, 0], item=float, length=2).validate([1])
    assert Param(int, None, optional=True).validate(None) is None
    with pytest.raises(RecipeError, match="a value is required"):
        Param(int, 1).validate(None)


def test_error_carries_key():
    with pytest.raises(RecipeError) as exc:
        Param(float, 1.0, range=(0, 1)).validate(3, key="stages.key.params.gain")
    assert exc.value.key == "stages.key.params.gain"
