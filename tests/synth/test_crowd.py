"""Crowd tile sprites: premultiplied, boxed, footed."""

import numpy as np
import pytest

from composite.core.errors import InputError
from composite.synth import crowd_tile


@pytest.fixture(scope="module")
def tile():
    return crowd_tile(count=10, sprite_height=64, columns=4, seed=1)


def test_sheet_is_premultiplied_rgba(tile):
    px = tile.pixels
    assert px.dtype == np.float32 and px.shape[2] == 4
    a = px[..., 3]
    assert a.min() >= 0 and a.max() <= 1.0 + 1e-6
    assert (px[..., :3] >= 0).all()
    assert np.abs(px[..., :3][a == 0]).max() == 0
    assert (px[..., :3].max(axis=2) <= a + 1e-6).all()  # colours are reflectances < 1, premultiplied
    assert (a > 0.999).sum() > 0 and ((a > 0.01) & (a < 0.99)).sum() > 0  # solid bodies, soft edges


def test_boxes_hold_all_pixels_and_feet_sit_at_the_bottom(tile):
    a = tile.pixels[..., 3].copy()
    assert len(tile.sprites) == 10
    for s in tile.sprites:
        x, y, w, h = s.box
        crop = tile.sprite(s.index)
        assert crop.shape == (h, w, 4)
        assert crop[..., 3].max() > 0.99
        fx, fy = s.foot
        assert x <= fx <= x + w and abs((y + h - 1) - fy) <= 1.5  # feet touch the box bottom
        assert 0.88 * 64 - 1e-9 <= s.height <= 64
        top_of_figure = fy - s.height
        assert y <= top_of_figure + 1  # head (or a spear) reaches the figure height
        a[y:y + h, x:x + w] = 0
    assert a.max() == 0  # nothing outside the boxes


def test_deterministic(tile):
    again = crowd_tile(count=10, sprite_height=64, columns=4, seed=1)
    assert np.array_equal(again.pixels, tile.pixels) and again.sprites == tile.sprites
    assert not np.array_equal(crowd_tile(count=10, sprite_height=64, columns=4, seed=2).pixels, tile.pixels)


def test_json_and_image(tile):
    j = tile.to_json()
    assert len(j["sprites"]) == 10 and j["sprites"][3]["box"] == list(tile.sprites[3].box)
    img = tile.image()
    assert img.channels == ("R", "G", "B", "A") and str(img.alpha) == "premultiplied"


@pytest.mark.parametrize("kwargs", [dict(count=0), dict(sprite_height=4), dict(columns=0)])
def test_bad_parameters(kwargs):
    with pytest.raises(InputError):
        crowd_tile(**kwargs)
