import numpy as np

from composite.graph import Pipeline
from composite.graph.builtin import Constant, Noise
from composite.io.contact_sheet import WriteContactSheet, contact_sheet
from composite.io.formats import read_oiio


def test_layout():
    thumbs = [np.full((10, 20, 3), v, np.float32) for v in (0.2, 0.5, 0.8)]
    sheet = contact_sheet(thumbs, columns=2, gap=4)
    assert sheet.shape == (2 * (10 + 4) + 4, 2 * (20 + 4) + 4, 3)
    assert sheet[4, 4, 0] == np.float32(0.2) and sheet[4, 28, 0] == np.float32(0.5)
    assert sheet[18, 4, 0] == np.float32(0.8) and sheet[18, 28, 0] == np.float32(0.1)  # empty cell


def build(path):
    p = Pipeline("sheet", frames="1-4")
    c = p.add("c", Constant(width=64, height=36, color=[0.18, 0.18, 0.18, 1.0]))
    n = p.add("n", Noise(amount=0.05, seed=1), image=c)
    p.add("sheet", WriteContactSheet(path=str(path), width=32, columns=2), image=n)
    return p


def test_chunked_renders_make_the_same_sheet(tmp_path):
    whole = tmp_path / "a" / "sheet.png"
    build(whole).render(progress=False)
    chunked = tmp_path / "b" / "sheet.png"
    for chunk in ("1-2", "3-4"):
        build(chunked).render(chunk, progress=False)
    a, b = read_oiio(whole).pixels, read_oiio(chunked).pixels
    assert a.shape == (2 * (18 + 4 + 14) + 4, 2 * (32 + 4) + 4, 3)
    np.testing.assert_array_equal(a, b)
    assert build(chunked).render(progress=False).skipped == [1, 2, 3, 4]  # thumbnails carry fingerprints


def test_review_movie_is_complete_after_concurrent_chunks(tmp_path):
    from composite.io.stages import WriteMovie
    from composite.io.video import METADATA_KEY, decode_fingerprints, read_movie_metadata

    p = Pipeline("movie", frames="1-6", metadata={"provenance": {"c2pa": "unsigned"}})  # no signing key in tests
    c = p.add("c", Constant(width=64, height=36, color=[0.18, 0.18, 0.18, 1.0], first=1, last=6))
    n = p.add("n", Noise(amount=0.05, seed=1), image=c)
    p.add("review", WriteMovie(path=str(tmp_path / "r.mp4")), image=n)
    p.render(chunk_size=3, workers=2, progress=False)
    recorded = decode_fingerprints(read_movie_metadata(tmp_path / "r.mp4").get(METADATA_KEY))
    assert sorted(recorded) == [1, 2, 3, 4, 5, 6]
