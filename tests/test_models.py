"""Model cards and checkpoint loading: shipped cards, resolution, sha256 checks, messages, caching."""

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import pytest

from composite import models
from composite.core.errors import ChecksumError, InputError
from composite.models import (
    ModelCard,
    checkpoint_path,
    file_sha256,
    get_card,
    list_cards,
    load_state_dict,
    resolve_checkpoint,
    verify_checkpoint,
)

# Digests recorded for the files at the published URLs (they agree across independent projects).
PUBLISHED = {
    "sam_vit_b": ("sam_vit_b_01ec64.pth", "ec2df62732614e57411cdcf32a23ffdf28910380d03139ee0f4fcbe91eb8c912", 375042383),
    "sam_vit_l": ("sam_vit_l_0b3195.pth", "3adcc4315b642a4d2101128f611684e8734c41232a17c648ed1693702a49a622", 1249524607),
    "sam_vit_h": ("sam_vit_h_4b8939.pth", "a7bf3b02f3ebf1267aba913ff637d9a2d5c33d3173bb679e46d9f338c26f262e", 2564550879),
}


@pytest.fixture(autouse=True)
def _clean(monkeypatch):
    monkeypatch.delenv(models.MODELS_ENV, raising=False)
    models.clear_digest_cache()
    yield
    models.clear_digest_cache()


def _card(tmp_path: Path, payload: bytes, **changes) -> tuple[Path, Path]:
    ckpt = tmp_path / "weights" / "tiny.bin"
    ckpt.parent.mkdir(exist_ok=True)
    ckpt.write_bytes(payload)
    data = {"schema": "composite.model/1", "name": "tiny", "architecture": "tiny_arch", "file_name": "tiny.bin",
            "url": "https://example.org/tiny.bin", "sha256": hashlib.sha256(payload).hexdigest(),
            "size": len(payload), "licence": "CC0-1.0"}
    data.update(changes)
    card = tmp_path / "tiny.json"
    card.write_text(json.dumps(data))
    return card, ckpt


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_shipped_sam_cards(name):
    card = get_card(name)
    file_name, digest, size = PUBLISHED[name]
    assert (card.name, card.architecture, card.file_name, card.sha256, card.size) == (name, name, file_name, digest, size)
    assert card.url == f"https://dl.fbaipublicfiles.com/segment_anything/{file_name}"
    assert card.licence == "Apache-2.0"
    assert name in list_cards()
    assert ModelCard.from_dict(card.to_dict()).to_dict() == card.to_dict()


def test_missing_checkpoint_says_where_to_get_it_and_where_to_put_it(tmp_path, monkeypatch):
    with pytest.raises(InputError) as exc:
        resolve_checkpoint("sam_vit_b")
    msg = str(exc.value)
    assert "https://dl.fbaipublicfiles.com/segment_anything/sam_vit_b_01ec64.pth" in msg
    assert "COMPOSITE_MODELS" in msg and "sam_vit_b_01ec64.pth" in msg and "never downloads" in msg
    monkeypatch.setenv(models.MODELS_ENV, str(tmp_path))
    with pytest.raises(InputError) as exc:
        resolve_checkpoint("sam_vit_h")
    assert f"put it at {tmp_path / 'sam_vit_h_4b8939.pth'}" in str(exc.value)
    assert "2.56 GB" in str(exc.value)
    with pytest.raises(InputError, match="correct the checkpoint path"):
        resolve_checkpoint("sam_vit_l", tmp_path / "nope.pth")


def test_resolution_order(tmp_path, monkeypatch):
    card_file, ckpt = _card(tmp_path, b"weights")
    card = get_card(card_file)
    assert resolve_checkpoint(card, ckpt) == ckpt                 # explicit file
    assert resolve_checkpoint(card, ckpt.parent) == ckpt          # explicit folder + file name
    other = tmp_path / "elsewhere"
    other.mkdir()
    monkeypatch.setenv(models.MODELS_ENV, os.pathsep.join([str(other), str(ckpt.parent)]))
    assert resolve_checkpoint(card) == ckpt                       # second folder of $COMPOSITE_MODELS


def test_sha256_checked(tmp_path):
    payload = bytes(range(256)) * 100
    card_file, ckpt = _card(tmp_path, payload)
    path, digest = checkpoint_path(card_file, ckpt)
    assert path == ckpt and digest == hashlib.sha256(payload).hexdigest()
    bad_card, _ = _card(tmp_path, payload, sha256="0" * 64)
    with pytest.raises(ChecksumError) as exc:
        verify_checkpoint(bad_card, ckpt)
    assert str(ckpt) in str(exc.value) and "0" * 64 in str(exc.value) and digest in str(exc.value)
    assert "https://example.org/tiny.bin" in str(exc.value)
    short_card, _ = _card(tmp_path, payload, size=len(payload) + 1)
    with pytest.raises(ChecksumError, match="bytes"):
        verify_checkpoint(short_card, ckpt)


def test_unconfirmed_digest_warns_but_loads(tmp_path, caplog):
    card_file, ckpt = _card(tmp_path, b"abc", sha256=None)
    with caplog.at_level("WARNING"):
        _, digest = checkpoint_path(card_file, ckpt)
    assert digest == hashlib.sha256(b"abc").hexdigest()
    assert "no confirmed sha256" in caplog.text


def test_digest_cached_per_path_size_mtime(tmp_path):
    f = tmp_path / "w.bin"
    f.write_bytes(b"a" * 1000)
    st = f.stat()
    first = file_sha256(f)
    f.write_bytes(b"b" * 1000)                                    # same size ...
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns))              # ... and same mtime: cache answers
    assert file_sha256(f) == first
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))      # touched: hashed again
    assert file_sha256(f) == hashlib.sha256(b"b" * 1000).hexdigest()


@pytest.mark.parametrize("change, match", [
    ({"sha256": "xyz"}, "64 hex digits"),
    ({"url": ""}, "lacks url"),
    ({"colour": "red"}, "unknown model-card key"),
    ({"schema": "composite.model/9"}, "schema"),
    ({"size": -3}, "positive integer"),
])
def test_bad_cards(tmp_path, change, match):
    card_file, _ = _card(tmp_path, b"x", **change)
    with pytest.raises(InputError, match=match):
        get_card(card_file)


def test_unknown_card_lists_shipped():
    with pytest.raises(InputError, match="sam_vit_b"):
        get_card("sam_vit_q")


def test_load_state_dict(tmp_path):
    torch = pytest.importorskip("torch")
    ckpt = tmp_path / "sd.pth"
    torch.save({"w": torch.arange(6, dtype=torch.float32).reshape(2, 3)}, ckpt)
    card_file, _ = _card(tmp_path, b"", file_name="sd.pth", sha256=file_sha256(ckpt), size=ckpt.stat().st_size)
    state, path, digest = load_state_dict(card_file, ckpt)
    assert path == ckpt and digest == file_sha256(ckpt)
    np.testing.assert_array_equal(state["w"].numpy(), np.arange(6).reshape(2, 3))
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a torch file")
    junk_card, _ = _card(tmp_path, b"", file_name="junk.pth", sha256=file_sha256(junk), size=junk.stat().st_size)
    with pytest.raises(InputError, match="cannot be read by torch"):
        load_state_dict(junk_card, junk)
