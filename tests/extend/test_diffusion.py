"""The diffusers backend with a tiny randomly initialised Stable Diffusion inpainting pipeline (no download).

The pipeline is built from a tiny UNet2DConditionModel (9 input channels, as inpainting models have),
AutoencoderKL, CLIPTextModel and a CLIP tokenizer made from a 55-token vocabulary written to a temporary
folder, saved with ``save_pretrained`` and loaded back through composite's own loading path
(model card → folder → file checks → sha256 → ``from_pretrained(local_files_only=True)``).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from composite.core import ChecksumError, InputError, RecipeError
from composite.core.coverage import coverage
from composite.extend import diffusion as dm
from composite.extend.generator import generator_records

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")
pytest.importorskip("transformers")

FILES = ["model_index.json", "unet/config.json", "unet/diffusion_pytorch_model.safetensors", "vae/config.json",
         "text_encoder/config.json", "scheduler/scheduler_config.json"]


def build_tiny_folder(root):
    from diffusers import AutoencoderKL, DDIMScheduler, StableDiffusionInpaintPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    torch.manual_seed(0)
    unet = UNet2DConditionModel(block_out_channels=(16, 32), layers_per_block=1, sample_size=16, in_channels=9,
                                out_channels=4, down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
                                up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"), cross_attention_dim=16,
                                attention_head_dim=4, norm_num_groups=8)
    vae = AutoencoderKL(block_out_channels=[16, 32], in_channels=3, out_channels=3,
                        down_block_types=["DownEncoderBlock2D"] * 2, up_block_types=["UpDecoderBlock2D"] * 2,
                        latent_channels=4, norm_num_groups=8)
    encoder = CLIPTextModel(CLIPTextConfig(bos_token_id=0, eos_token_id=2, pad_token_id=1, hidden_size=16,
                                           intermediate_size=32, num_attention_heads=2, num_hidden_layers=2,
                                           vocab_size=64, max_position_embeddings=77, projection_dim=16))
    vocab = {"<|startoftext|>": 0, "!": 1, "<|endoftext|>": 2}
    for c in "abcdefghijklmnopqrstuvwxyz":
        vocab[c] = len(vocab)
        vocab[c + "</w>"] = len(vocab)
    tok_dir = root / "_vocab"
    tok_dir.mkdir()
    (tok_dir / "vocab.json").write_text(json.dumps(vocab))
    (tok_dir / "merges.txt").write_text("#version: 0.2\n")
    tokenizer = CLIPTokenizer(str(tok_dir / "vocab.json"), str(tok_dir / "merges.txt"), model_max_length=77)
    scheduler = DDIMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", clip_sample=False,
                              set_alpha_to_one=False, steps_offset=1)
    pipe = StableDiffusionInpaintPipeline(vae=vae, text_encoder=encoder, tokenizer=tokenizer, unet=unet,
                                          scheduler=scheduler, safety_checker=None, feature_extractor=None,
                                          requires_safety_checker=False)
    folder = root / "models" / "tiny-sd-inpaint"
    pipe.save_pretrained(str(folder))
    return folder


def write_card(path, *, sha256=None, files=FILES, name="tiny_sd_inpaint"):
    card = {"schema": "composite.model/1", "name": name, "architecture": "sd_inpaint", "file_name": "tiny-sd-inpaint",
            "url": "https://example.org/tiny-sd-inpaint", "licence": "CC0-1.0", "sha256": sha256,
            "notes": "test model, randomly initialised",
            "config": {"format": "diffusers", "repo_id": "example/tiny-sd-inpaint",
                       "weights": "unet/diffusion_pytorch_model.safetensors", "files": list(files)}}
    path.write_text(json.dumps(card))
    return path


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    old = os.environ.get("HF_HUB_OFFLINE")
    os.environ["HF_HUB_OFFLINE"] = "1"  # never reach the network
    root = tmp_path_factory.mktemp("tinysd")
    folder = build_tiny_folder(root)
    digest = hashlib.sha256((folder / "unet" / "diffusion_pytorch_model.safetensors").read_bytes()).hexdigest()
    card = write_card(root / "tiny_sd_inpaint.json", sha256=digest)
    pipe, mf = dm.load_inpaint_pipeline(str(card), str(folder.parent))
    yield {"root": root, "folder": folder, "card": str(card), "pipe": pipe, "folder_info": mf, "digest": digest}
    if old is None:
        os.environ.pop("HF_HUB_OFFLINE", None)
    else:
        os.environ["HF_HUB_OFFLINE"] = old


def test_importing_composite_and_its_stages_never_imports_torch_or_diffusers():
    code = ("import sys, composite, composite.extend.diffusion, composite.extend.gen_stages\n"
            "from composite.graph.registry import stage_types\n"
            "assert 'DiffusionInpaint' in stage_types() and 'SetExtend' in stage_types()\n"
            "bad = [m for m in ('torch', 'diffusers', 'transformers') if m in sys.modules]\n"
            "assert not bad, bad\n")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=str(Path(__file__).resolve().parents[2]))


def test_tile_layout_and_feather_are_what_they_say():
    tiles = dm.tile_layout(1000, 600, tile=512, overlap=64, multiple=8)
    assert tiles == [(0, 0, 512, 512), (448, 0, 512, 512), (488, 0, 512, 512),
                     (0, 88, 512, 512), (448, 88, 512, 512), (488, 88, 512, 512)]
    covered = np.zeros((600, 1000), int)
    for x, y, w, h in tiles:
        covered[y:y + h, x:x + w] += 1
    assert covered.min() >= 1
    assert dm.tile_layout(300, 200, tile=512, overlap=64) == [(0, 0, 300, 200)]
    with pytest.raises(InputError, match="overlap < tile"):
        dm.tile_layout(100, 100, tile=64, overlap=64)
    m = np.zeros((1, 40), bool)
    m[0, :10] = True
    f = dm.feather_mask(m, 8.0)
    x = np.clip(1 - np.arange(1, 31) / 8.0, 0, 1)
    assert f[0, :10].min() == 1.0
    np.testing.assert_allclose(f[0, 10:], x * x * (3 - 2 * x), atol=1e-6)


def test_the_sd2_card_describes_a_diffusers_folder():
    from composite.models import get_card

    card = get_card("sd2_inpainting")
    assert card.url == "https://huggingface.co/stabilityai/stable-diffusion-2-inpainting"
    assert card.licence == "CreativeML-OpenRAIL++-M" and card.sha256 is None and "not confirmed" in card.notes
    assert card.config["weights"] in card.config["files"] and card.file_name == "stable-diffusion-2-inpainting"


def test_missing_or_incomplete_or_wrong_model_folders_say_how_to_get_them(tmp_path, monkeypatch):
    monkeypatch.delenv("COMPOSITE_MODELS", raising=False)
    with pytest.raises(InputError) as exc:
        dm.model_folder("sd2_inpainting")
    msg = str(exc.value)
    assert "hf download stabilityai/stable-diffusion-2-inpainting --local-dir" in msg
    assert "COMPOSITE_MODELS" in msg and "never downloads" in msg and "CreativeML" in msg
    monkeypatch.setenv("COMPOSITE_MODELS", str(tmp_path))
    with pytest.raises(InputError, match=f"local-dir {tmp_path / 'stable-diffusion-2-inpainting'}"):
        dm.model_folder("sd2_inpainting")
    (tmp_path / "stable-diffusion-2-inpainting").mkdir()
    with pytest.raises(InputError, match="lacks model_index.json.*download is incomplete"):
        dm.model_folder("sd2_inpainting")
    folder = tmp_path / "tiny-sd-inpaint" / "unet"
    folder.mkdir(parents=True)
    for f in FILES:
        (tmp_path / "tiny-sd-inpaint" / f).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "tiny-sd-inpaint" / f).write_text("{}")
    card = write_card(tmp_path / "card.json", sha256="0" * 64)
    with pytest.raises(ChecksumError, match="expects 0000"):
        dm.model_folder(str(card))
    from composite.extend.gen_stages import DiffusionInpaint
    from composite.graph import Pipeline
    from composite.graph.builtin import Constant

    p = Pipeline("d")
    p.add("plate", Constant(width=16, height=16))
    p.add("mask", Constant(width=16, height=16))
    p.add("fill", DiffusionInpaint(prompt="x", model="sd2_inpainting", model_path=str(tmp_path / "nope")),
          image="plate", mask="mask")
    with pytest.raises(InputError, match=r"fill \(DiffusionInpaint\): model folder .* not found"):
        p.evaluate("fill", 1)


def scene(h=40, w=56, seed=0):
    rng = np.random.default_rng(seed)
    return rng.uniform(0.05, 0.5, (h, w, 3)).astype(np.float32)


def test_inpainting_is_deterministic_keeps_known_pixels_and_reports_what_it_made(tiny):
    pipe = tiny["pipe"]
    img = scene()
    mask = np.zeros(img.shape[:2], bool)
    mask[10:30, 20:44] = True
    kw = dict(prompt="a field", seed=3, steps=2, tile=32, overlap=8, feather=4)
    out, made = dm.inpaint_diffusion(pipe, img, mask, **kw)
    again, _ = dm.inpaint_diffusion(pipe, img, mask, **kw)
    np.testing.assert_array_equal(out, again)
    other, _ = dm.inpaint_diffusion(pipe, img, mask, **{**kw, "seed": 4})
    assert float(np.abs(other - out)[mask].mean()) > 1e-3
    assert made[mask].min() == 1.0
    untouched = made == 0
    np.testing.assert_array_equal(out[untouched], img[untouched])
    assert untouched.sum() > 0.5 * untouched.size and (made[~mask] > 0).any()  # the feather crosses the edge
    assert np.isfinite(out).all()


def test_single_tile_equals_the_diffusers_pipeline_called_directly(tiny):
    pipe = tiny["pipe"]
    img = scene(32, 32, seed=5)
    mask = np.zeros((32, 32), bool)
    mask[8:24, 8:24] = True
    out, made = dm.inpaint_diffusion(pipe, img, mask, prompt="a wall", seed=11, steps=3, tile=64, feather=0)
    gen = torch.Generator("cpu").manual_seed(dm._seed_for(11, 0, 0))
    disp = dm._to_model(img, 0.0)
    ref = pipe(prompt="a wall", image=disp[None], mask_image=mask[None, :, :, None].astype(np.float32), height=32,
               width=32, num_inference_steps=3, guidance_scale=7.5, strength=1.0, generator=gen,
               output_type="np").images[0]
    want = dm._from_model(np.clip(ref, 0, 1), 0.0)
    np.testing.assert_allclose(out[mask], want[mask], atol=1e-5)
    np.testing.assert_array_equal(out[~mask], img[~mask])
    np.testing.assert_array_equal(made, mask.astype(np.float32))


def test_tiles_skip_empty_regions_and_noise_modes(tiny, monkeypatch):
    pipe = tiny["pipe"]
    calls = []
    real = dm._run_tile

    def spy(p, image, mask, **kw):
        calls.append((image.shape, kw["seed"]))
        return real(p, image, mask, **kw)

    monkeypatch.setattr(dm, "_run_tile", spy)
    img = scene(32, 96, seed=1)
    mask = np.zeros((32, 96), bool)
    mask[:, 76:] = True  # only the right end
    kw = dict(prompt="sky", seed=2, steps=1, tile=32, overlap=8, feather=2)
    a, _ = dm.inpaint_diffusion(pipe, img, mask, frame=1001, **kw)
    n = len(calls)
    assert 0 < n < len(dm.tile_layout(96, 32, tile=32, overlap=8, multiple=4))
    b, _ = dm.inpaint_diffusion(pipe, img, mask, frame=1002, **kw)
    np.testing.assert_array_equal(a, b)  # shared noise: same input, same output at any frame
    c, _ = dm.inpaint_diffusion(pipe, img, mask, frame=1002, noise="per_frame", **kw)
    assert float(np.abs(c - a)[mask].mean()) > 1e-3
    assert {s for _, s in calls[:n]} == {s for _, s in calls[n:2 * n]}


def test_stage_records_coverage_card_sha_prompt_and_seed(tiny):
    from composite.core import Image
    from composite.extend.gen_stages import DiffusionInpaint, SetExtend
    from composite.graph import Pipeline
    from composite.graph.builtin import Constant

    p = Pipeline("gen")
    plate = p.add("plate", Constant(width=40, height=24, color=[0.2, 0.25, 0.3, 1.0]))
    mask = p.add("mask", Constant(width=40, height=24, color=[0.0, 0.0, 0.0, 0.0]))
    p.add("fill", DiffusionInpaint(prompt="a misty valley", seed=9, steps=1, tile=16, tile_overlap=4, tile_feather=2,
                                   model=tiny["card"], model_path=str(tiny["folder"])), image=plate, mask=mask)
    out = p.evaluate("fill", 1001)  # an empty mask: nothing generated
    assert coverage(out).max() == 0
    np.testing.assert_array_equal(out.pixels, p.evaluate("plate", 1001).pixels)
    p.set_param("mask", "color", [0.0, 0.0, 0.0, 1.0])
    out = p.evaluate("fill", 1001)
    np.testing.assert_allclose(coverage(out), 1.0)
    rec = generator_records(out)[0]
    assert rec["backend"] == "diffusers" and rec["generated"] is True
    assert rec["model"]["card"] == "tiny_sd_inpaint" and rec["model"]["sha256"] == tiny["digest"]
    assert (rec["prompt"], rec["seed"]) == ("a misty valley", 9)
    fp = p.fingerprint("fill", 1001)
    q = Pipeline.from_recipe(p.to_recipe())
    assert q.to_recipe() == p.to_recipe() and q.fingerprint("fill", 1001) == fp
    p.set_param("fill", "prompt", "a burning valley")
    assert p.fingerprint("fill", 1001) != fp
    with pytest.raises(RecipeError, match="prompt is required"):
        DiffusionInpaint()
    # set extension with the diffusion backend: the border is generated, the plate is not
    s = Pipeline("ext")
    s.add("plate", Constant(width=32, height=24, color=[0.2, 0.25, 0.3, 1.0]))
    s.add("ext", SetExtend(left=8, right=8, backend="diffusion", prompt="more hills", overlap=4, seed=1, steps=1,
                           tile=16, tile_overlap=4, model=tiny["card"], model_path=str(tiny["folder"])), image="plate")
    ext = s.evaluate("ext", 1)
    cov = coverage(ext)
    assert ext.width == 48 and cov[:, :8].min() == 1.0 and cov[:, 16:32].max() == 0
    assert 0 < cov[12, 9] < 1  # the crossfade band
    assert generator_records(ext)[0]["backend"] == "diffusers"
    assert isinstance(ext, Image)
