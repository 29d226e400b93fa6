"""The documentation build (docs/build.py): pages, pictures, and every stage documented."""

from __future__ import annotations

import re
from pathlib import Path

import cv2
import numpy as np
import pytest

from docs import build as docs_build


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    out = tmp_path_factory.mktemp("docs")
    report = docs_build.build(out)
    return out, report


def _pages(out: Path) -> dict[str, str]:
    return {p.name: p.read_text() for p in out.glob("*.md")}


def test_build_is_clean(built):
    out, report = built
    assert report.errors == [], "\n".join(report.errors)


def test_every_family_has_a_page_and_the_index_links_them(built):
    out, _ = built
    pages = _pages(out)
    for fam in docs_build.FAMILIES:
        assert f"{fam.slug}.md" in pages
        assert pages[f"{fam.slug}.md"].startswith(docs_build.GENERATED_NOTE)
        assert f"]({fam.slug}.md)" in pages["index.md"]
    assert "](architecture.md)" in pages["index.md"]


def test_every_registered_stage_is_documented_in_a_section(built):
    out, report = built
    text = "\n".join(_pages(out).values())
    documented = set(re.findall(r"^### (\w+)$", text, flags=re.M))
    missing = sorted(set(docs_build.composite_stage_types()) - documented)
    assert not missing, f"stage types without documentation: {missing}"
    # placed in a section of a family (docs/build.py FAMILIES), not only listed under "Other stages"
    assert report.unplaced == [], (f"add these stage types to a Section in docs/build.py: {report.unplaced}")


def test_stage_reference_lists_every_parameter_and_input(built):
    out, _ = built
    pages = _pages(out)
    for name, cls in docs_build.composite_stage_types().items():
        page = next(t for t in pages.values() if f"\n### {name}\n" in t)
        section = page.split(f"\n### {name}\n", 1)[1].split("\n### ", 1)[0].split("\n## ", 1)[0]
        for param, spec in cls.params.items():
            assert f"| `{param}` | {spec.type_name} |" in section, (name, param)
        for inp in cls.inputs:
            assert f"| `{inp}` |" in section, (name, inp)


def test_pictures_exist_and_show_something(built):
    out, report = built
    expected = {f"{fam.slug}_{ex.name}.png" for fam in docs_build.FAMILIES for ex in fam.examples
                if ex.panels and all(s in docs_build.composite_stage_types() for s in ex.requires)}
    found = {p.name for p in report.images}
    assert expected <= found
    assert {p.name for p in (out / "images").glob("*.png")} == found
    for path in report.images:
        img = cv2.imread(str(path), cv2.IMREAD_COLOR)
        assert img is not None and img.shape[1] >= 600 and img.shape[0] >= 150, path.name
        assert float(img.std()) > 10.0, f"{path.name} is nearly flat"


def test_links_and_images_in_pages_resolve(built):
    out, _ = built
    for name, text in _pages(out).items():
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text):
            if target.startswith("http"):
                continue
            exists = (out / target).exists() or (docs_build.DOCS / target).exists()
            assert exists, f"{name}: broken link {target}"


def test_examples_show_a_recipe_that_loads(built):
    out, _ = built
    import yaml

    from composite.graph import Pipeline

    text = (out / "matte.md").read_text()
    recipes = re.findall(r"```yaml\n(.*?)```", text, flags=re.S)
    assert recipes
    for r in recipes:
        data = yaml.safe_load(r)
        assert data["schema"] == "composite.pipeline/1"
        p = Pipeline.from_recipe(data)
        assert p.to_recipe() == data


def test_cli_only_and_output_folder(tmp_path):
    assert docs_build.main(["--out", str(tmp_path), "--only", "farm"]) == 0
    assert sorted(p.name for p in tmp_path.glob("*.md")) == ["farm.md"]
    text = (tmp_path / "farm.md").read_text()
    assert "### `composite farm export`" in text and "--engine" in text
    with pytest.raises(SystemExit):
        docs_build.main(["--out", str(tmp_path), "--only", "nonsense"])


# -- building blocks ---------------------------------------------------------------------------

def test_rst_to_markdown():
    src = ("Use ``alpha`` with :func:`~composite.matte.ops.erode`.\n\n"
           "Recipe example::\n\n    stages:\n      a: {type: Roto}\n\nAfter.")
    assert docs_build.rst_to_markdown(src) == (
        "Use `alpha` with `composite.matte.ops.erode`.\n\nRecipe example:\n\n```\nstages:\n  a: {type: Roto}\n```"
        "\n\nAfter.")


def test_compose_figure_layout():
    a = np.zeros((360, 640, 3), np.float32)
    b = np.ones((90, 160, 3), np.float32)          # a detail, enlarged to the row height
    sheet = docs_build.compose_figure([("a", a), ("b", b)], width=1400)
    gap, label = docs_build.GAP, docs_build.LABEL_HEIGHT
    h = int((1400 - 3 * gap) / (640 / 360 + 160 / 90))  # both 16:9: the row would be 388 px high
    assert h > 360
    assert sheet.shape == (360 + label + 2 * gap, 640 + 640 + 3 * gap, 3)
    # the enlarged detail is white, nearest-neighbour: no grey from interpolation
    right = sheet[gap + label:gap + label + 360, 640 + 2 * gap:640 + 2 * gap + 640]
    assert right.min() == 1.0
    with pytest.raises(ValueError):
        docs_build.compose_figure([("a", a)], layout=(2,))


def test_display_matte_and_image():
    from composite.core.image import Image

    m = Image(np.array([[[0.0], [0.5]], [[1.0], [2.0]]], np.float32), ("A",), colorspace="Raw")
    grey = docs_build.display_matte(m)
    assert grey.shape == (2, 2, 3)
    assert grey[..., 0].tolist() == [[0.0, 0.5], [1.0, 1.0]]
    # 18 % grey through the ACES SDR view, and opaque black stays black
    img = Image(np.array([[[0.18, 0.18, 0.18], [0.0, 0.0, 0.0]]], np.float32), ("R", "G", "B"))
    d = docs_build.display_image(img)
    assert 0.3 < d[0, 0, 0] < 0.5 and np.allclose(d[0, 0], d[0, 0, 0])
    assert np.allclose(d[0, 1], 0.0, atol=1e-3)


def test_place_stages_falls_back_to_the_package():
    class A:
        __module__ = "composite.matte.stages"

    class B:
        __module__ = "composite.matte.new_stages"

    class C:
        __module__ = "someplugin.stages"

    fam = docs_build.Family(slug="matte", title="t", summary="s", intro="i",
                            sections=(docs_build.Section("x", "", ("A", "Missing")),), packages=("composite.matte",))
    placement, unplaced = docs_build.place_stages([fam], {"A": A, "B": B, "C": C})
    assert placement == {"A": "matte", "B": "matte"}
    assert unplaced == ["B", "C"]


def test_first_sentence_keeps_abbreviations():
    assert docs_build._first_sentence("Bring a layer forward (e.g. ``depth``) as data. Second one.") == \
        "Bring a layer forward (e.g. `depth`) as data."
    assert docs_build._first_sentence("Refine (He et al.): edges snap. More.") == "Refine (He et al.): edges snap."


def test_recipe_problems_names_stages_a_recipe_cannot_load():
    from composite.graph import Pipeline, Stage

    class Unlisted(Stage):  # defined here, so its module is not one the registry imports
        type_name = "DocsTestUnlisted"
        is_source = True

    p = Pipeline("x")
    p.add("odd", Unlisted())
    problems = docs_build.recipe_problems(p)
    assert len(problems) == 1 and "`odd` (DocsTestUnlisted)" in problems[0] and "BUILTIN_MODULES" in problems[0]


def test_a_family_whose_stages_are_absent_gets_a_page_with_notes(tmp_path, monkeypatch):
    ex = docs_build.Example(name="later", title="a future stage", code="p = None\n",
                            panels=(docs_build.view("x"),), caption="", requires=("NoSuchStageYet",))
    fam = docs_build.Family(slug="future", title="Future", summary="Not written yet.", intro="Soon.",
                            sections=(docs_build.Section("Later", "", ("NoSuchStageYet",)),), examples=(ex,))
    monkeypatch.setattr(docs_build, "FAMILIES", (fam,))
    report = docs_build.build(tmp_path, only=["future"])
    text = (tmp_path / "future.md").read_text()
    assert "No stage of this family is registered" in text
    assert "NoSuchStageYet not registered" in text and "`NoSuchStageYet` (not registered)" in text
    assert report.skipped == ["future/later: NoSuchStageYet not registered"]
    assert report.images == [] and not (tmp_path / "images").exists()
