import textwrap

import pytest
import yaml

from composite.core import RecipeError
from composite.graph import Pipeline
from composite.graph.builtin import Constant, Merge, Transform
from composite.graph.recipe import load_recipe, parse_overrides, pipeline_from_recipe


def python_pipeline():
    p = Pipeline("sh010", rate=25, frames="1001-1010")
    bg = p.add("bg", Constant(color=[0.1, 0.2, 0.3, 1.0], width=16, height=8))
    fg = p.add("fg", Constant(color=[0.5, 0.0, 0.0, 0.5], width=16, height=8))
    moved = p.add("move", Transform(translate=[2.0, 1.0], filter="cubic"), image=fg)
    p.add("comp", Merge(operation="over", mix=0.5), a=moved, b=bg)
    return p


def test_python_and_recipe_build_the_same_graph(tmp_path):
    p = python_pipeline()
    recipe = p.to_recipe()
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump(recipe, sort_keys=False))
    q = load_recipe(path)
    assert q.to_recipe() == recipe
    assert q.fingerprint("comp", 1003) == p.fingerprint("comp", 1003)
    assert (q.evaluate("comp", 1003).pixels == p.evaluate("comp", 1003).pixels).all()
    assert q.rate == 25 and q.frames == "1001-1010"


def write(tmp_path, text):
    path = tmp_path / "bad.yaml"
    path.write_text(textwrap.dedent(text))
    return path


@pytest.mark.parametrize("body, message, key", [
    ("""
     stages:
       a: {type: Constnt}
     """, "unknown stage type 'Constnt'; did you mean Constant", "stages.a.type"),
    ("""
     stages:
       a: {type: Constant, params: {colour: [1, 1, 1, 1]}}
     """, "has no parameter 'colour'", "stages.a.params.colour"),
    ("""
     stages:
       a: {type: Constant, params: {width: wide}}
     """, "expected an integer", "stages.a.params.width"),
    ("""
     stages:
       a: {type: Constant}
       m: {type: Merge, params: {operation: overlay}, inputs: {a: a, b: a}}
     """, "allowed: over, under", "stages.m.params.operation"),
    ("""
     stages:
       a: {type: Constant}
       m: {type: Merge, params: {mix: 2}, inputs: {a: a, b: a}}
     """, r"out of range \[0.0, 1.0\]", "stages.m.params.mix"),
    ("""
     stages:
       m1: {type: Merge, inputs: {a: m2, b: m2}}
       m2: {type: Merge, inputs: {a: m1, b: m1}}
     """, "cycle", None),
    ("""
     stages:
       m: {type: Merge, inputs: {a: nowhere}}
     """, "required input 'b'", "stages.m.inputs.b"),
    ("""
     stages:
       a: {type: Constant}
       m: {type: Merge, inputs: {a: a, b: a.matte}}
     """, "has no output 'matte'", "stages.m.inputs.b"),
    ("""
     stagez: {}
     """, "unknown key 'stagez'", "stagez"),
])
def test_validation_names_file_key_and_allowed_values(tmp_path, body, message, key):
    path = write(tmp_path, body)
    with pytest.raises(RecipeError, match=message) as exc:
        load_recipe(path)
    assert str(path) in str(exc.value)
    if key:
        assert exc.value.key == key


def test_overrides():
    ov = parse_overrides(["bg.width=32", "comp.operation=plus", "bg.color=[1, 1, 1, 1]", "w.path=out.####.exr"])
    assert ov == [("bg", "width", 32), ("comp", "operation", "plus"), ("bg", "color", [1, 1, 1, 1]),
                  ("w", "path", "out.####.exr")]
    p = pipeline_from_recipe(python_pipeline().to_recipe(), overrides=ov[:3])
    assert p.nodes["bg"].stage.p.width == 32
    with pytest.raises(RecipeError, match="unknown stage 'w'"):
        pipeline_from_recipe(python_pipeline().to_recipe(), overrides=ov)
    with pytest.raises(RecipeError, match="STAGE.PARAM=VALUE"):
        parse_overrides(["nonsense"])
    with pytest.raises(RecipeError, match="has no parameter 'gain'"):
        pipeline_from_recipe(python_pipeline().to_recipe(), overrides=[("bg", "gain", 1)])


def test_env_and_recipe_dir_expansion(tmp_path, monkeypatch):
    monkeypatch.setenv("SHOW_ROOT", "/shows/abc")
    path = tmp_path / "r.yaml"
    path.write_text(textwrap.dedent("""
        stages:
          plate: {type: ReadImage, params: {path: "$SHOW_ROOT/plate.####.exr"}}
          write: {type: WriteImage, inputs: {image: plate}, params: {path: "${RECIPE_DIR}/out.####.exr"}}
    """))
    p = load_recipe(path)
    assert p.nodes["plate"].stage.p.path == "/shows/abc/plate.####.exr"
    assert p.nodes["write"].stage.p.path == f"{tmp_path}/out.####.exr"
