import numpy as np
import opentimelineio as otio
import pytest

from composite.core import AlphaState, Image, InputError, StateError, Window


def test_defaults_and_state():
    img = Image(np.zeros((4, 6, 4), np.float32))
    assert img.alpha is AlphaState.PREMULTIPLIED
    assert img.colorspace == "ACEScg"
    assert img.data_window == Window(0, 0, 5, 3) == img.display_window
    assert (img.width, img.height) == (6, 4)
    rgb = Image(np.zeros((4, 6, 3), np.float32), channels=("R", "G", "B"))
    assert rgb.alpha is AlphaState.OPAQUE
    np.testing.assert_array_equal(rgb.a, np.ones((4, 6), np.float32))


def test_dtype_is_never_rescaled_silently():
    with pytest.raises(StateError, match="float32"):
        Image(np.zeros((2, 2, 4), np.uint8))
    with pytest.raises(StateError, match="float32"):
        Image(np.zeros((2, 2, 4), np.float64))


def test_shape_and_window_checks():
    with pytest.raises(InputError, match="channel names"):
        Image(np.zeros((2, 2, 3), np.float32))  # default RGBA names but 3 planes
    with pytest.raises(InputError, match="data window"):
        Image(np.zeros((2, 2, 4), np.float32), data_window=Window(0, 0, 9, 9))
    with pytest.raises(InputError, match="layer 'depth'"):
        Image(np.zeros((2, 2, 4), np.float32)).with_layer("depth", np.zeros((3, 3, 1), np.float32), ("Z",))


def test_require_names_both_states():
    img = Image(np.zeros((2, 2, 4), np.float32), alpha="straight")
    with pytest.raises(StateError, match="expects alpha premultiplied, got straight"):
        img.require(alpha=AlphaState.PREMULTIPLIED, who="over")
    with pytest.raises(StateError, match="expects colour space ACEScg, got Linear Rec.709"):
        img.replace(colorspace="Linear Rec.709 (sRGB)").require(colorspace="ACEScg")


def test_channels_layers_time_and_immutability():
    px = np.arange(2 * 3 * 4, dtype=np.float32).reshape(2, 3, 4)
    img = Image(px, time=otio.opentime.RationalTime(1001, 24)).with_layer(
        "depth", np.full((2, 3, 1), 7, np.float32), ("Z",))
    assert img.frame == 1001
    np.testing.assert_array_equal(img.channel("G"), px[..., 1])
    assert img.channel("depth.Z")[0, 0] == 7
    assert img.all_channel_names() == ["R", "G", "B", "A", "depth.Z"]
    with pytest.raises(InputError, match="no channel 'Q'"):
        img.channel("Q")
    with pytest.raises(TypeError):
        img.layers["x"] = None  # read-only mapping
    assert img.without_layer("depth").layers == {}


def test_window_arithmetic():
    a, b = Window(0, 0, 9, 9), Window(5, 5, 14, 19)
    assert a.intersect(b) == Window(5, 5, 9, 9)
    assert a.union(b) == Window(0, 0, 14, 19)
    assert Window.from_size(1920, 1080).as_tuple() == (0, 0, 1919, 1079)
    assert Window(10, 0, 5, 5).empty
