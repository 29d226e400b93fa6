"""SAM roto with tiny randomly initialised models of the real architecture (no download anywhere):
import hygiene, checkpoint loading, pre/post-processing against SAM's own forward pass, prompts files,
propagation (with a stand-in segmenter whose answers are known), the SamRoto stage and the shipped recipe."""

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

torch = pytest.importorskip("torch")
if importlib.util.find_spec("segment_anything") is None:  # never import its package: it pulls torchvision
    pytest.skip("segment-anything is not installed", allow_module_level=True)

from composite.core import Image  # noqa: E402
from composite.core.errors import ChecksumError, InputError  # noqa: E402
from composite.graph import Param, Pipeline, Stage, register  # noqa: E402
from composite.matte.refine_stages import SamRoto  # noqa: E402
from composite.matte.sam import (  # noqa: E402
    SamConfig,
    SamSegmenter,
    SamTracker,
    build_sam,
    load_prompts,
    load_sam,
    parse_prompts,
)
from composite.matte.sam.model import clear_model_cache  # noqa: E402
from composite.matte.sam.predictor import Prediction, preprocess_shape  # noqa: E402
from composite.matte.sam.propagate import interior_point, mask_box  # noqa: E402
from composite.models import file_sha256  # noqa: E402

TINY = dict(encoder_embed_dim=32, encoder_depth=2, encoder_num_heads=2, encoder_global_attn_indexes=[1],
            image_size=64, window_size=2, prompt_embed_dim=32, mask_in_chans=4, decoder_mlp_dim=64,
            decoder_num_heads=2, iou_head_hidden_dim=32)
H, W = 48, 64


def _write_tiny(folder: Path, seed: int, name: str = "tiny") -> tuple[Path, Path]:
    torch.manual_seed(seed)
    model = build_sam(SamConfig().replace(**TINY))
    ckpt = folder / f"{name}.pth"
    torch.save(model.state_dict(), ckpt)
    card = folder / f"{name}.json"
    card.write_text(json.dumps({
        "schema": "composite.model/1", "name": name, "architecture": "sam_vit_b", "file_name": ckpt.name,
        "url": "https://example.org/tiny.pth", "sha256": file_sha256(ckpt), "size": ckpt.stat().st_size,
        "licence": "test", "config": TINY}))
    return card, ckpt


@pytest.fixture(scope="module", autouse=True)
def _one_torch_thread():
    # tiny models run fastest on one thread; shared CI cores make more threads much slower
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    folder = tmp_path_factory.mktemp("sam")
    return _write_tiny(folder, 0)


_TEXTURE = np.random.default_rng(7).random((H, W)).astype(np.float32)


def _square_frame(f: int, *, speed: int = 3, x0: int = 8, size: int = 14) -> np.ndarray:
    """A textured bright square moving ``speed`` px per frame over a textured dark plate."""
    img = np.repeat((0.02 + 0.08 * _TEXTURE)[..., None], 3, axis=2)
    x = x0 + speed * (f - 1001)
    lo, hi = max(0, x), min(W, x + size)
    if hi > lo:
        img[16:16 + size, lo:hi] = (0.6 + 0.4 * _TEXTURE[:size, lo - x:hi - x])[..., None]
    return img.astype(np.float32)


def _truth(f: int, **kw) -> np.ndarray:
    return _square_frame(f, **kw)[..., 0] > 0.5


# -- imports and loading ---------------------------------------------------------------------------

def test_modeling_import_avoids_torchvision_and_package_init():
    code = ("import sys; from composite.matte.sam.model import sam_modeling; m = sam_modeling(); "
            "assert m.__name__ == 'segment_anything.modeling'; "
            "assert 'torchvision' not in sys.modules, 'torchvision imported'; "
            "assert 'segment_anything' not in sys.modules, 'package __init__ ran'; "
            "import composite.matte.refine_stages; print('ok')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr


def test_load_checks_sha256_and_explains_missing_files(tiny, tmp_path, monkeypatch):
    card, ckpt = tiny
    clear_model_cache()
    sam = load_sam(card, str(ckpt), device="cpu")
    assert sam.sha256 == file_sha256(ckpt) and sam.config.image_size == 64 and sam.precision == "float32"
    assert load_sam(card, str(ckpt), device="cpu") is sam                  # shared within the process
    data = json.loads(Path(card).read_text())
    data["sha256"] = "1" * 64
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(data))
    with pytest.raises(ChecksumError, match="download it again from https://example.org/tiny.pth"):
        load_sam(bad, str(ckpt), device="cpu")
    monkeypatch.delenv("COMPOSITE_MODELS", raising=False)
    with pytest.raises(InputError, match="Download it from https://example.org/tiny.pth"):
        load_sam(card, device="cpu")
    monkeypatch.setenv("COMPOSITE_MODELS", str(ckpt.parent))
    assert load_sam(card, device="cpu").checkpoint == ckpt
    # a checkpoint of another shape is refused with the card named
    data = json.loads(Path(card).read_text())
    data["config"] = dict(TINY, encoder_embed_dim=48)
    other = tmp_path / "other.json"
    other.write_text(json.dumps(data))
    with pytest.raises(InputError, match="does not fit architecture"):
        load_sam(other, str(ckpt), device="cpu")
    with pytest.raises(InputError, match="float16"):
        load_sam(card, str(ckpt), device="cpu", precision="float16")


# -- pre/post-processing against SAM's own forward pass ---------------------------------------------

def test_predict_matches_sam_forward(tiny, rng):
    card, ckpt = tiny
    sam = load_sam(card, str(ckpt), device="cpu")
    seg = SamSegmenter(sam)
    img = rng.random((H, W, 3)).astype(np.float32)
    pts = np.array([[20.0, 30.0], [50.0, 10.0]])
    labels = np.array([1, 0])
    box = np.array([5.0, 6.0, 40.0, 44.0])
    emb = seg.embed(img)
    ours = seg.predict(emb, points=pts, labels=labels, box=box, multimask=True)

    nh, nw = preprocess_shape(H, W, 64)
    assert (nh, nw) == (48, 64)
    resized = cv2.resize(img * 255.0, (nw, nh), interpolation=cv2.INTER_LINEAR)
    scale = np.array([nw / W, nh / H])
    batched = [{"image": torch.from_numpy(resized.transpose(2, 0, 1).copy()), "original_size": (H, W),
                "point_coords": torch.tensor(pts * scale, dtype=torch.float32)[None],
                "point_labels": torch.tensor(labels)[None],
                "boxes": torch.tensor((box.reshape(2, 2) * scale).reshape(1, 4), dtype=torch.float32)}]
    with torch.no_grad():
        ref = sam.model(batched, multimask_output=True)[0]
        ref_logits = sam.model.postprocess_masks(ref["low_res_logits"], (nh, nw), (H, W))[0].numpy()
    np.testing.assert_allclose(ours.low_res, ref["low_res_logits"][0].numpy(), atol=1e-5)
    np.testing.assert_allclose(ours.iou, ref["iou_predictions"][0].numpy(), atol=1e-6)
    np.testing.assert_allclose(ours.logits, ref_logits, atol=1e-4)
    assert ours.logits.shape == (3, H, W) and ours.low_res.shape == (3, 16, 16)


def test_embeddings_cached_per_image(tiny, rng):
    card, ckpt = tiny
    seg = SamSegmenter(load_sam(card, str(ckpt), device="cpu"), cache_size=2)
    a, b, c = (rng.random((H, W, 3)).astype(np.float32) for _ in range(3))
    ea = seg.embed(a)
    assert seg.embed(a.copy()) is ea and seg.encoder_runs == 1
    seg.embed(b)
    seg.embed(c)                                      # evicts a
    seg.embed(a)
    assert seg.encoder_runs == 4
    low = seg.mask_to_low_res(ea, (np.arange(W)[None, :] < 32).repeat(H, 0).astype(np.float32))
    want = np.full((16, 16), -8.0, np.float32)      # 48 of 64 padded rows are image: low-res rows 0..11
    want[:12, :8] = 8.0
    np.testing.assert_array_equal(low, want)
    with pytest.raises(InputError, match="at least one prompt"):
        seg.predict(ea)
    with pytest.raises(InputError, match="mask hint is 10x10"):
        seg.mask_to_low_res(ea, np.zeros((10, 10)))


# -- prompts files -----------------------------------------------------------------------------------

def test_prompts_yaml_json_and_errors(tmp_path):
    cv2.imwrite(str(tmp_path / "hint.png"), (_truth(1005) * 255).astype(np.uint8))
    (tmp_path / "p.yaml").write_text(
        "schema: composite.prompts/1\nkeyframes:\n"
        "  1001: {positive: [[10, 20], [12, 22]], negative: [[40, 5]], box: [0, 0, 30, 40]}\n"
        "  1005: {mask: hint.png}\n")
    kf = load_prompts(tmp_path / "p.yaml")
    assert list(kf) == [1001, 1005]
    np.testing.assert_array_equal(kf[1001].points, [[10, 20], [12, 22], [40, 5]])
    np.testing.assert_array_equal(kf[1001].labels, [1, 1, 0])
    assert kf[1005].mask == tmp_path / "hint.png"
    (tmp_path / "p.json").write_text(json.dumps({"keyframes": {"1001": {"box": [1, 2, 3, 4]}}}))
    assert load_prompts(tmp_path / "p.json")[1001].box.tolist() == [1, 2, 3, 4]
    bad = [({"keyframes": {}}, "non-empty"),
           ({"keyframes": {1001: {"negative": [[1, 2]]}}}, "at least one positive"),
           ({"keyframes": {1001: {"box": [5, 5, 2, 9]}}}, "x1 must exceed x0"),
           ({"keyframes": {1001: {"points": [[1, 2]]}}}, "unknown key 'points'"),
           ({"keyframes": {"first": {"box": [0, 0, 1, 1]}}}, "not a frame number"),
           ({"keyframes": {1001: {"positive": [[1, "a"]]}}}, "numbers")]
    for data, match in bad:
        with pytest.raises(InputError, match=match):
            parse_prompts(data)
    with pytest.raises(InputError, match="not found"):
        load_prompts(tmp_path / "missing.yaml")
    with pytest.raises(InputError, match="outside"):
        parse_prompts({"keyframes": {1001: {"positive": [[100, 10]]}}})[1001].check_bounds(W, H)


def test_mask_helpers():
    m = np.zeros((20, 30), np.float32)
    m[5:15, 10:20] = 1
    np.testing.assert_array_equal(mask_box(m), [8, 3, 22, 17])        # grown by at least 2 px
    np.testing.assert_array_equal(mask_box(m, margin=0.5), [5, 0, 25, 20])
    assert mask_box(np.zeros((4, 4))) is None
    assert interior_point(m).tolist() in ([14.0, 9.0], [15.0, 10.0], [14.0, 10.0], [15.0, 9.0])


# -- propagation with a stand-in segmenter -----------------------------------------------------------

class Oracle:
    """Answers like a perfect SAM: the bright pixels inside the box. ``iou``/``multi_iou`` set the scores."""

    def __init__(self, iou=0.95, multi_iou=0.95):
        self.iou, self.multi_iou = iou, multi_iou
        self.embeds = self.predicts = 0

    def embed(self, rgb01):
        self.embeds += 1
        return rgb01

    def mask_to_low_res(self, emb, mask):
        return np.zeros((16, 16), np.float32)

    def predict(self, emb, *, points=None, labels=None, box=None, mask_logits=None, multimask=False):
        self.predicts += 1
        bright = emb.mean(axis=2) > 0.5
        m = np.zeros_like(bright)
        x0, y0, x1, y1 = np.rint(box).astype(int)
        m[y0:y1, x0:x1] = bright[y0:y1, x0:x1]
        n = 3 if multimask else 1
        score = self.multi_iou if multimask else self.iou
        logits = np.where(m, 10.0, -10.0).astype(np.float32)
        return Prediction(np.repeat(logits[None], n, 0), np.full(n, score, np.float32), np.zeros((n, 16, 16)))


def _frames(first=1001, last=1012, **kw):
    return {f: _square_frame(f, **kw) for f in range(first, last + 1)}


def _kf(frame=1001, **kw):
    x = 8 + 3 * (frame - 1001)
    return parse_prompts({"keyframes": {frame: {"box": [x - 2, 14, x + 16, 32], "positive": [[x + 7, 23]],
                                                "negative": [[60, 5]]}}})


def test_flow_propagation_follows_the_subject():
    oracle = Oracle()
    frames = _frames()
    tr = SamTracker(oracle, _kf(), max_distance=12, flow_scale=1.0)
    results = [tr.result(f, frames) for f in range(1001, 1013)]
    assert [r.source for r in results] == ["keyframe"] + ["propagated"] * 11
    for r in results:
        np.testing.assert_array_equal(r.mask >= 0.5, _truth(r.frame))
    # the positive point rides along at 3 px per frame; the negative one stays off the subject
    pos = [r.points[r.labels == 1] for r in results]
    assert all(len(p) == 1 for p in pos)
    np.testing.assert_allclose([p[0, 0] for p in pos], 15 + 3 * np.arange(12), atol=0.75)
    assert all((r.labels == 0).sum() == 1 for r in results)
    assert oracle.embeds == 12 and oracle.predicts == 12              # one chain walk for a sequential pass


def test_results_do_not_depend_on_render_order():
    frames = _frames()
    a = SamTracker(Oracle(), _kf(), max_distance=12)
    seq = {f: a.result(f, frames) for f in range(1001, 1013)}
    b = SamTracker(Oracle(), _kf(), max_distance=12)
    for f in (1012, 1006, 1009):                      # a farm chunk starting anywhere
        r = b.result(f, frames)
        np.testing.assert_array_equal(r.mask, seq[f].mask)
        np.testing.assert_array_equal(r.points, seq[f].points)


def test_backward_propagation_and_keyframe_choice():
    frames = _frames()
    tr = SamTracker(Oracle(), {**_kf(1001), **_kf(1011)}, max_distance=6)
    assert [tr.keyframe_for(f, frames) for f in (1001, 1006, 1007, 1010)] == [1001, 1001, 1011, 1011]
    r = tr.result(1007, frames)
    assert r.keyframe == 1011
    np.testing.assert_array_equal(r.mask >= 0.5, _truth(1007))
    far = SamTracker(Oracle(), _kf(1001), max_distance=3)
    with pytest.raises(InputError, match="more than 3 frames from every keyframe"):
        far.result(1006, frames)
    none = SamTracker(Oracle(), _kf(1001), propagation="none")
    with pytest.raises(InputError, match="propagation is 'none'"):
        none.result(1002, frames)


def test_reprompt_fallback_and_lost():
    frames = _frames()
    re = SamTracker(Oracle(iou=0.5, multi_iou=0.9), _kf(), iou_threshold=0.75)
    r = re.result(1004, frames)
    assert r.source == "reprompted" and r.iou == pytest.approx(0.9)
    np.testing.assert_array_equal(r.mask >= 0.5, _truth(1004))
    fb = SamTracker(Oracle(iou=0.3, multi_iou=0.3), _kf(), iou_threshold=0.75, flow_scale=1.0, max_fallbacks=5)
    r = fb.result(1004, frames)
    assert r.source == "fallback"
    inter = np.count_nonzero((r.mask >= 0.5) & _truth(1004))
    union = np.count_nonzero((r.mask >= 0.5) | _truth(1004))
    assert inter / union > 0.85                       # the flow-carried mask still covers the subject
    # the subject leaves the frame to the right: the matte empties and stays empty
    exits = {f: _square_frame(f, speed=9, x0=30) for f in range(1001, 1008)}
    lost = SamTracker(Oracle(), parse_prompts({"keyframes": {1001: {"box": [28, 14, 46, 32]}}}), flow_scale=1.0,
                      max_fallbacks=2)
    sources = [lost.result(f, exits).source for f in range(1001, 1008)]
    # half out at 1004 (SAM's half mask disagrees with the carried one), gone from 1005: the carried mask
    # stands in for two frames, then SAM's empty answer is believed
    assert sources == ["keyframe", "propagated", "propagated", "fallback", "fallback", "lost", "lost"]
    assert not lost.result(1007, exits).mask.any()


class LeakyOracle(Oracle):
    """Right on the keyframe, then answers with the whole box, as a segmenter leaking onto the background."""

    def predict(self, emb, *, points=None, labels=None, box=None, mask_logits=None, multimask=False):
        pred = super().predict(emb, points=points, labels=labels, box=box, multimask=multimask)
        if self.predicts == 1:
            return pred
        m = np.full(pred.logits.shape[1:], -10.0, np.float32)
        x0, y0, x1, y1 = np.rint(box).astype(int)
        m[y0:y1, x0:x1] = 10.0
        return Prediction(np.repeat(m[None], len(pred.iou), 0), pred.iou, pred.low_res)


def test_gate_keeps_leaks_near_the_carried_mask():
    frames = _frames()
    carried = _truth(1002)
    gated = SamTracker(LeakyOracle(), _kf(), gate=0.1, min_consistency=0.0, flow_scale=1.0,
                       box_margin=0.5).result(1002, frames)
    dist = cv2.distanceTransform((~carried).astype(np.uint8), cv2.DIST_L2, 5)
    radius = max(4.0, 0.1 * float(np.hypot(*(gated.box[2:] - gated.box[:2]))))
    assert (gated.mask >= 0.5).any() and dist[gated.mask >= 0.5].max() <= radius + 1.5   # + flow error
    open_ = SamTracker(LeakyOracle(), _kf(), gate=0.0, min_consistency=0.0, flow_scale=1.0,
                       box_margin=0.5).result(1002, frames)
    x0, y0, x1, y1 = np.rint(open_.box).astype(int)
    assert int((open_.mask >= 0.5).sum()) == (x1 - x0) * (y1 - y0) > int((gated.mask >= 0.5).sum())
    # with the consistency check on, the leak is refused and the carried mask stands in
    checked = SamTracker(LeakyOracle(), _kf(), flow_scale=1.0, box_margin=0.5).result(1002, frames)
    assert checked.source == "fallback"
    np.testing.assert_array_equal(checked.mask >= 0.5, carried)


def test_box_tracking_needs_no_flow():
    frames = _frames(speed=2)
    tr = SamTracker(Oracle(), _kf(), propagation="box", box_margin=0.5)
    for f in range(1001, 1009):
        np.testing.assert_array_equal(tr.result(f, frames).mask >= 0.5, _truth(f, speed=2))
    assert len(tr.result(1005, frames).points) == 0


# -- the stage and the recipe -----------------------------------------------------------------------

@register
class MovingSquarePlate(Stage):
    """Test source: a bright square moving 3 px per frame over a dark plate."""

    is_source = True
    params = {"first": Param(int, 1001), "last": Param(int, 1006)}

    def frame_range(self):
        return (self.p.first, self.p.last)

    def source_identity(self, t):
        return f"square:{t}"

    def process(self, t, **_):
        return Image(_square_frame(t), ("R", "G", "B"), time=self.time(t))


def _prompts_file(tmp_path: Path, box=(6, 14, 24, 32)) -> Path:
    p = tmp_path / "prompts.yaml"
    p.write_text(f"keyframes:\n  1001: {{box: {list(box)}, positive: [[15, 23]]}}\n")
    return p


def _sam_pipeline(tiny, prompts, **params):
    card, ckpt = tiny
    p = Pipeline("sam")
    plate = p.add("plate", MovingSquarePlate())
    p.add("sam", SamRoto(prompts=str(prompts), model=str(card), checkpoint=str(ckpt), device="cpu",
                         max_distance=6, **params), image=plate)
    return p


def test_stage_runs_and_is_chunk_independent(tiny, tmp_path):
    prompts = _prompts_file(tmp_path)
    p = _sam_pipeline(tiny, prompts)
    outs = {f: p.evaluate("sam", f, "matte") for f in range(1001, 1007)}
    for out in outs.values():
        assert out.channels == ("A",) and out.colorspace == "Raw" and out.pixels.shape == (H, W, 1)
        assert np.all(np.isfinite(out.pixels)) and out.pixels.min() >= 0 and out.pixels.max() <= 1
        assert out.metadata["composite:sam_keyframe"] == 1001
    assert outs[1001].metadata["composite:sam_source"] == "keyframe"
    assert {o.metadata["composite:sam_source"] for f, o in outs.items() if f > 1001} <= \
        {"propagated", "reprompted", "fallback", "lost"}
    fresh = _sam_pipeline(tiny, prompts)
    np.testing.assert_array_equal(fresh.evaluate("sam", 1005, "matte").pixels, outs[1005].pixels)
    binary = _sam_pipeline(tiny, prompts, output="mask").evaluate("sam", 1003, "matte").pixels
    np.testing.assert_array_equal(binary, (outs[1003].pixels >= 0.5).astype(np.float32))


def test_stage_fingerprint_follows_prompts_weights_and_params(tiny, tmp_path):
    prompts = _prompts_file(tmp_path)
    p = _sam_pipeline(tiny, prompts)
    fp = p.fingerprint("sam", 1003)
    assert fp == _sam_pipeline(tiny, prompts).fingerprint("sam", 1003)
    _prompts_file(tmp_path, box=(6, 14, 25, 32))
    assert _sam_pipeline(tiny, prompts).fingerprint("sam", 1003) != fp
    _prompts_file(tmp_path)
    assert _sam_pipeline(tiny, prompts, iou_threshold=0.5).fingerprint("sam", 1003) != fp
    other = _write_tiny(tmp_path, seed=1, name="tiny2")
    assert _sam_pipeline(other, prompts).fingerprint("sam", 1003) != fp
    missing = (tiny[0], tmp_path / "nowhere.pth")
    with pytest.raises(InputError, match="not found"):
        _sam_pipeline(missing, prompts).fingerprint("sam", 1003)


def test_stage_recipe_roundtrip_and_param_checks(tiny, tmp_path):
    p = _sam_pipeline(tiny, _prompts_file(tmp_path), propagation="box", flow_preset="fast", output="mask")
    assert Pipeline.from_recipe(p.to_recipe()).to_recipe() == p.to_recipe()
    with pytest.raises(InputError, match="prompts file is required"):
        SamRoto()
    with pytest.raises(InputError, match="device"):
        SamRoto(prompts="p.yaml", device="tpu")
    with pytest.raises(InputError, match="CUDA only"):
        SamRoto(prompts="p.yaml", device="cpu", precision="float16")


def test_shipped_recipe_renders_with_a_tiny_model(tiny, tmp_path):
    from composite.graph.recipe import load_recipe, parse_overrides

    card, ckpt = tiny
    plates = tmp_path / "plates"
    plates.mkdir()
    for f in range(1001, 1004):
        srgb = np.where(_square_frame(f) <= 0.0031308, 12.92 * _square_frame(f),
                        1.055 * _square_frame(f) ** (1 / 2.4) - 0.055)
        cv2.imwrite(str(plates / f"plate.{f}.png"), np.rint(srgb[..., ::-1] * 255).astype(np.uint8))
    prompts = _prompts_file(tmp_path)
    out = tmp_path / "out"
    overrides = parse_overrides([f"plate.path={plates}/plate.####.png", "plate.colorspace=sRGB Encoded Rec.709 (sRGB)",
                                 f"sam.prompts={prompts}", f"sam.model={card}", f"sam.checkpoint={ckpt}",
                                 "sam.device=cpu", f"write.path={out}/roto.####.exr", "trimap.erode=2",
                                 "trimap.dilate=3"])
    p = load_recipe("roto_sam", overrides=overrides)
    assert {"plate", "write"} <= set(p.nodes)
    report = p.render("1001-1003", progress=False)
    assert report.rendered == [1001, 1002, 1003]
    written = sorted(out.glob("roto.*.exr"))
    assert len(written) == 3
    fg = p.evaluate("fg", 1002)
    assert fg.channels == ("R", "G", "B", "A") and np.all(np.isfinite(fg.pixels))
    a = fg.pixels[..., 3]
    assert np.all(fg.pixels[..., :3] <= a[..., None] * 1.01 + 1e-6)        # premultiplied


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_half_precision_agrees_with_cpu(tiny, rng):
    card, ckpt = tiny
    cpu = SamSegmenter(load_sam(card, str(ckpt), device="cpu"))
    gpu = SamSegmenter(load_sam(card, str(ckpt), device="cuda"))
    assert gpu.sam.precision == "float16"
    img = rng.random((H, W, 3)).astype(np.float32)
    box = np.array([5.0, 6.0, 40.0, 44.0])
    a = cpu.predict(cpu.embed(img), box=box)
    b = gpu.predict(gpu.embed(img), box=box)
    np.testing.assert_allclose(b.low_res, a.low_res, atol=0.05 * float(np.abs(a.low_res).max()) + 1e-3)
    assert np.mean((a.logits > 0) == (b.logits > 0)) > 0.98
