"""Roto shapes: exact coverage, Bézier, keyframes, feather, modes, files."""

import json
import math

import numpy as np
import pytest

from composite.core.errors import InputError
from composite.matte.roto import Shape, flatten_bezier, load_shapes, rasterize, rasterize_polygon, save_shapes

SQUARE = [[2, 2], [6, 2], [6, 6], [2, 6]]


def test_polygon_coverage_is_exact_on_pixel_and_half_pixel_edges():
    m = rasterize([Shape(points=SQUARE)], 8, 8)
    expected = np.zeros((8, 8), np.float32)
    expected[2:6, 2:6] = 1
    np.testing.assert_array_equal(m, expected)
    m = rasterize([Shape(points=[[2.25, 2.5], [6, 2.5], [6, 6], [2.25, 6]])], 8, 8)
    assert float(m.sum()) == pytest.approx(3.75 * 3.5)
    assert m[2, 3] == pytest.approx(0.5) and m[3, 2] == pytest.approx(0.75) and m[2, 2] == pytest.approx(0.375)
    # Winding order does not matter; shapes are clipped to the frame.
    assert float(rasterize_polygon(np.array(SQUARE[::-1]), 8, 8).sum()) == 16.0
    assert float(rasterize([Shape(points=[[-5, -5], [3, -5], [3, 3], [-5, 3]])], 8, 8).sum()) == 9.0


def test_circle_area_and_bezier():
    circle = [[16 + 10 * math.cos(t), 16 + 10 * math.sin(t)] for t in np.linspace(0, 2 * np.pi, 400, endpoint=False)]
    assert float(rasterize([Shape(points=circle)], 32, 32).sum()) == pytest.approx(math.pi * 100, rel=2e-3)
    # A Bézier "circle" of four arcs with the usual handle length 0.5523 r has area pi r^2 within 0.1 %.
    r, k = 10.0, 0.5523 * 10.0
    verts = [[16 + r, 16, 0, -k, 0, k], [16, 16 + r, k, 0, -k, 0], [16 - r, 16, 0, k, 0, -k], [16, 16 - r, -k, 0, k, 0]]
    m = rasterize([Shape(type="bezier", points=verts)], 32, 32)
    assert float(m.sum()) == pytest.approx(math.pi * r * r, rel=1e-3)
    # Zero handles make a Bézier shape the polygon of its vertices.
    poly = flatten_bezier(np.array([[2, 2, 0, 0, 0, 0], [6, 2, 0, 0, 0, 0], [6, 6, 0, 0, 0, 0], [2, 6, 0, 0, 0, 0]]))
    assert float(rasterize_polygon(poly, 8, 8).sum()) == 16.0


def test_keyframes_interpolate_and_hold():
    k = Shape(keyframes={1001: [[0, 0], [4, 0], [4, 4]], 1011: [[0, 0], [8, 0], [8, 8]]})
    areas = [float(rasterize([k], 10, 10, frame=f).sum()) for f in (990, 1001, 1006, 1011, 1100)]
    assert areas == pytest.approx([8.0, 8.0, 18.0, 32.0, 32.0])


def test_feather_invert_opacity_and_modes():
    sq = Shape(points=[[8, 8], [24, 8], [24, 24], [8, 24]])
    soft = rasterize([Shape(points=sq.points, feather=6.0)], 32, 32)
    assert float(soft.sum()) == pytest.approx(256.0, rel=1e-3)  # symmetric feather keeps the area
    assert soft[16, 7] + soft[16, 8] == pytest.approx(1.0, abs=1e-3)  # the outline (x = 8) stays at 0.5
    assert soft[16, 16] == pytest.approx(1.0, abs=1e-3)
    assert 0.01 < soft[16, 6] < 0.3
    inv = rasterize([sq], 32, 32, invert=True)
    assert float(inv.sum()) == 32 * 32 - 256
    hole = Shape(points=[[12, 12], [20, 12], [20, 20], [12, 20]], mode="subtract")
    assert float(rasterize([sq, hole], 32, 32).sum()) == 256 - 64
    inter = Shape(points=[[16, 0], [32, 0], [32, 32], [16, 32]], mode="intersect")
    assert float(rasterize([sq, inter], 32, 32).sum()) == 128
    half = Shape(points=sq.points, opacity=0.5)
    assert float(rasterize([half], 32, 32).max()) == 0.5
    assert float(rasterize([], 4, 4).sum()) == 0 and float(rasterize([], 4, 4, invert=True).sum()) == 16


def test_json_and_yaml_round_trip(tmp_path):
    shapes = [Shape(points=SQUARE, feather=2.0, name="a"),
              Shape(type="bezier", keyframes={1: [[1, 1], [5, 1], [5, 5]], 5: [[1, 1], [7, 1], [7, 7]]},
                    mode="subtract")]
    for ext in ("json", "yaml"):
        path = tmp_path / f"roto.{ext}"
        save_shapes(path, shapes, invert=True)
        loaded, invert = load_shapes(path)
        assert invert is True
        assert [s.to_dict() for s in loaded] == [s.to_dict() for s in shapes]
        np.testing.assert_array_equal(rasterize(loaded, 8, 8, frame=3), rasterize(shapes, 8, 8, frame=3))
    normalized = Shape(points=[[0.25, 0.25], [0.75, 0.25], [0.75, 0.75], [0.25, 0.75]], normalized=True)
    assert float(rasterize([normalized], 8, 4).sum()) == 8.0


def test_bad_shapes_are_clear_errors(tmp_path):
    with pytest.raises(InputError, match="at least 3 points"):
        Shape(points=[[0, 0], [1, 1]])
    with pytest.raises(InputError, match="same number of points"):
        Shape(keyframes={1: SQUARE, 2: SQUARE[:3]})
    with pytest.raises(InputError, match="either 'points' or 'keyframes'"):
        Shape()
    with pytest.raises(InputError, match="unknown mode"):
        Shape(points=SQUARE, mode="xor")
    with pytest.raises(InputError, match="finite"):
        Shape(points=[[0, 0], [1, float("nan")], [2, 2]])
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"schema": "composite.roto/1", "shapes": [{"points": SQUARE, "colour": 1}]}))
    with pytest.raises(InputError, match="unknown key 'colour'"):
        load_shapes(bad)
    with pytest.raises(InputError, match="not found"):
        load_shapes(tmp_path / "missing.json")
    bad.write_text("{not json")
    with pytest.raises(InputError, match="cannot parse"):
        load_shapes(bad)
