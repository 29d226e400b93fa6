"""C2PA Content Credentials on review media: signing in renders and on the command line, reading back,
tamper detection, missing or unusable signing configuration."""

from __future__ import annotations

import json
import os
import shutil

import cv2
import numpy as np
import pytest

from composite.cli.app import run as main
from composite.core.errors import InputError
from composite.graph.recipe import pipeline_from_recipe
from composite.provenance import c2pa_sign as cs
from composite.provenance import iptc
from composite.provenance import manifest as mf
from composite.provenance.verify import verify_path

from .helpers import comp_recipe, write_plates

pytest.importorskip("c2pa", reason="C2PA signing needs the c2pa-python package (pip install composite[provenance])")

FORBIDDEN = {"cawg.ai_generative_training": "notAllowed", "cawg.ai_training": "notAllowed",
             "cawg.data_mining": "notAllowed"}


def _review_recipe(tmp_path, out, **kw):
    plate = write_plates(tmp_path / "plates")
    recipe = comp_recipe(plate, out, element={"alpha": 0.5}, **kw)
    if out.endswith((".mp4", ".mov")):
        recipe["stages"]["write"] = {"type": "WriteMovie", "inputs": {"image": "comp"}, "params": {"path": out}}
    else:
        recipe["stages"]["write"]["params"] = {"path": out, "display": "sRGB - Display"}
    return recipe


def _flip(path, marker: bytes, offset: int):
    data = bytearray(open(path, "rb").read())
    i = data.rfind(marker)  # the last one: the picture itself, not the C2PA thumbnail
    assert i > 0
    data[i + offset] ^= 0xFF
    open(path, "wb").write(bytes(data))


def test_png_review_frames_are_signed_with_assertions_and_tampering_fails(tmp_path, signing):
    out = str(tmp_path / "review" / "sh010.####.png")
    recipe = _review_recipe(tmp_path, out)
    pipeline_from_recipe(recipe).render("1001-1002", progress=False)
    frame = tmp_path / "review" / "sh010.1001.png"
    results = verify_path(frame)
    assert [r.kind for r in results] == ["c2pa", "sidecar"] and all(r.ok for r in results), \
        [r.text() for r in results]
    c2pa_res = results[0]
    assert c2pa_res.state == "Valid"  # signature and hashes good; the test CA is not a trust anchor
    d = c2pa_res.details
    assert d["digital_source_type"] == iptc.COMPOSITE_WITH_TRAINED
    assert [a["action"] for a in d["actions"]] == ["c2pa.created", "c2pa.placed", "c2pa.placed", "c2pa.edited"]
    assert d["actions"][2]["digitalSourceType"] == iptc.TRAINED_ALGORITHMIC_MEDIA
    assert d["training_mining"] == FORBIDDEN
    assert sorted(i["title"] for i in d["ingredients"]) == ["plate.####.exr", "test_generator (sam_vit_b)"]
    assert d["signer"].startswith("Test Signer")
    part = mf.assemble(tmp_path / "review" / "sh010.png.provenance")
    assert d["ai_coverage"] == part["frames"]["1001"]["ai_coverage"] == {"mean": 0.125, "max": 0.5, "area": 0.25}
    assert d["manifest_id"] == part["manifest_id"]
    assert part["files"]["sh010.1001.png"]["c2pa"] == "signed"
    assert "Edited" not in c2pa_res.text() and "cawg.ai_training=notAllowed" in c2pa_res.text()
    # the signed PNG still carries the render fingerprint: a re-render skips it
    p = pipeline_from_recipe(recipe)
    assert p.render("1001-1002", progress=False).skipped == [1001, 1002]
    assert main(["provenance", "verify", str(frame)]) == 0
    # flip a byte of the compressed pixels
    _flip(frame, b"IDAT", 6)
    (bad, side) = verify_path(frame)
    assert not bad.ok and bad.state == "Invalid" and any("dataHash.mismatch" in p for p in bad.problems), bad.problems
    assert not side.ok and side.state == "checksum mismatch"
    assert main(["provenance", "verify", str(frame)]) == 2


def test_review_movie_is_signed_and_keeps_its_frame_fingerprints(tmp_path, signing, capsys):
    out = str(tmp_path / "review" / "sh010.mp4")
    recipe = _review_recipe(tmp_path, out)
    p = pipeline_from_recipe(recipe)
    report = p.render("1001-1004", chunk_size=2, progress=False)  # the second chunk rewrites the movie
    assert out in report.written
    (res, side) = verify_path(out)
    assert res.ok and side.ok, [res.text(), side.text()]
    assert res.details["digital_source_type"] == iptc.COMPOSITE_WITH_TRAINED
    assert res.details["training_mining"] == FORBIDDEN
    assert res.details["ai_coverage"] == {"frames": 4, "generated_frames": 4, "ai_coverage_mean": 0.125,
                                          "ai_coverage_peak": 0.5}
    again = pipeline_from_recipe(recipe).render("1001-1004", progress=False)
    assert again.skipped == [1001, 1002, 1003, 1004]  # the fingerprints survived signing
    assert verify_path(out)[0].ok
    _flip(out, b"mdat", 64)
    (bad, side) = verify_path(out)
    assert not bad.ok and any("bmffHash.mismatch" in p for p in bad.problems)
    assert not side.ok
    assert main(["provenance", "verify", "--json", out]) == 2
    printed = json.loads(capsys.readouterr().out)
    assert printed[0]["ok"] is False and printed[0]["kind"] == "c2pa"


def test_missing_signing_configuration_stops_the_render_before_writing(tmp_path):
    out = str(tmp_path / "review" / "sh010.####.png")
    p = pipeline_from_recipe(_review_recipe(tmp_path, out))
    with pytest.raises(cs.SigningConfigError, match="COMPOSITE_C2PA_CERT.*COMPOSITE_C2PA_KEY") as err:
        p.render("1001-1002", progress=False)
    assert "COMPOSITE_C2PA=unsigned" in str(err.value) and "provenance.c2pa: unsigned" in str(err.value)
    assert not (tmp_path / "review").exists() or os.listdir(tmp_path / "review") == []
    # the CLI says the same and exits 2
    assert main(["provenance", "sign", "--source-type", "digitalCapture", str(tmp_path / "plates" / "x.png")]) == 2


def test_unsigned_review_media_only_when_asked_for(tmp_path, monkeypatch):
    out = str(tmp_path / "review" / "sh010.####.png")
    recipe = _review_recipe(tmp_path, out, metadata={"provenance": {"c2pa": "unsigned"}})
    pipeline_from_recipe(recipe).render("1001", progress=False)
    part = mf.assemble(tmp_path / "review" / "sh010.png.provenance")
    assert part["files"]["sh010.1001.png"]["c2pa"] == "unsigned (requested)"
    assert part["c2pa"]["policy"] == "unsigned"
    assert [i["code"] for i in part["issues"]] == ["unsigned_review_media"]
    (res, side) = verify_path(tmp_path / "review" / "sh010.1001.png")
    assert not res.ok and res.state == "no manifest" and side.ok
    # the environment can ask too
    monkeypatch.setenv("COMPOSITE_C2PA", "unsigned")
    out2 = str(tmp_path / "review2" / "s.####.png")
    pipeline_from_recipe(_review_recipe(tmp_path, out2)).render("1001", progress=False)
    assert (tmp_path / "review2" / "s.1001.png").is_file()


def test_cli_sign_a_jpeg_from_an_exr_render_manifest(tmp_path, signing, capsys):
    plate = write_plates(tmp_path / "plates")
    pipeline_from_recipe(comp_recipe(plate, str(tmp_path / "r" / "s.####.exr"))).render("1001-1002", progress=False)
    jpg = tmp_path / "still.jpg"
    cv2.imwrite(str(jpg), (np.random.default_rng(0).random((32, 48, 3)) * 255).astype(np.uint8))
    code = main(["provenance", "sign", str(jpg), "-o", str(tmp_path / "signed.jpg"),
                 "--manifest", str(tmp_path / "r" / "s.####.exr")])
    assert code == 0
    (res,) = verify_path(tmp_path / "signed.jpg")
    assert res.ok and res.details["digital_source_type"] == iptc.COMPOSITE_WITH_TRAINED
    assert sorted(i["title"] for i in res.details["ingredients"]) == ["plate.####.exr", "test_generator (sam_vit_b)"]
    assert res.details["ai_coverage"]["generated_frames"] == 2
    assert not cs.has_manifest(jpg)  # -o leaves the source unsigned
    capsys.readouterr()
    assert main(["provenance", "verify", str(tmp_path / "signed.jpg")]) == 0
    text = capsys.readouterr().out
    assert "digital source type: compositeWithTrainedAlgorithmicMedia" in text
    assert "action: c2pa.created" in text and "training and data mining:" in text
    # without a manifest the source type must be given
    assert main(["provenance", "sign", str(jpg)]) == 2


def test_self_signed_certificates_and_untrusted_signers(tmp_path, certs, monkeypatch):
    png = tmp_path / "a.png"
    cv2.imwrite(str(png), np.zeros((8, 8, 3), np.uint8))
    definition = cs.build_definition(title="a.png", format="image/png", digital_source_type="digitalCapture")
    bad = cs.SigningConfig(cert=certs["self_signed"], key=certs["key"])
    with pytest.raises(cs.SigningConfigError, match="issued by a CA"):
        cs.sign_file(png, definition, config=bad)
    assert not cs.has_manifest(png)  # nothing half-written
    good = cs.SigningConfig(cert=certs["chain"], key=certs["key"])
    cs.sign_file(png, definition, config=good)
    (res,) = verify_path(png)
    assert res.ok and res.state == "Valid" and any("trust list" in w for w in res.warnings)
    assert not verify_path(png, require_trusted=True)[0].ok
    monkeypatch.setenv("COMPOSITE_C2PA_TRUST_ANCHORS", str(certs["ca"]))
    (trusted,) = verify_path(png, require_trusted=True)
    assert trusted.ok and trusted.state == "Trusted"


def test_configuration_file_and_its_errors(tmp_path, certs, monkeypatch):
    home = tmp_path / "home" / ".config" / "composite"
    home.mkdir(parents=True)
    shutil.copy(certs["chain"], home / "chain.pem")
    shutil.copy(certs["key"], home / "key.pem")
    (home / "c2pa.toml").write_text('[c2pa]\ncert = "chain.pem"\nkey = "key.pem"\n')
    cfg = cs.SigningConfig.load()
    assert cfg.cert == home / "chain.pem" and cfg.require() is cfg and cfg.algorithm() == "es256"
    monkeypatch.setenv("COMPOSITE_C2PA_KEY", str(tmp_path / "nope.key"))  # the environment wins
    with pytest.raises(cs.SigningConfigError, match="nope.key.*does not exist"):
        cs.SigningConfig.load().require()
    (home / "c2pa.toml").write_text('[c2pa]\ncertificate = "chain.pem"\n')
    with pytest.raises(cs.SigningConfigError, match="unknown key 'certificate'"):
        cs.SigningConfig.load()
    (home / "c2pa.toml").unlink()
    with pytest.raises(InputError, match="must be sign or unsigned"):
        cs.SigningConfig.load({"COMPOSITE_C2PA": "maybe"})
