"""Stages, plates and certificates used by the provenance tests."""

from __future__ import annotations

import datetime
from pathlib import Path

import numpy as np

from composite.core import Image
from composite.core.coverage import mark_generated
from composite.extend.generator import GeneratorRecord, attach_record
from composite.graph import Param, Stage, register
from composite.io.exr import write_exr

H, W = 16, 24
#: The shipped SAM ViT-B card's published digest (a record naming it with this digest is "verified").
SAM_B_SHA256 = "ec2df62732614e57411cdcf32a23ffdf28910380d03139ee0f4fcbe91eb8c912"


@register
class ProvTestElement(Stage):
    """A generated element: a rectangle of colour ``color`` and alpha ``alpha`` at ``box`` (x, y, w, h),
    every pixel generated (coverage = alpha), with a generator record naming ``card``."""

    type_name = "ProvTestElement"
    is_source = True
    params = {
        "box": Param(list, [6, 4, 12, 8], item=int, length=4),
        "alpha": Param(float, 1.0, range=(0.0, 1.0)),
        "color": Param(list, [0.2, 0.3, 0.4], item=float, length=3),
        "card": Param(str, "sam_vit_b"),
        "sha256": Param(str, SAM_B_SHA256),
        "generated": Param(bool, True),
        "trained": Param(bool, True),
        "prompt": Param(str, "an army on a hill"),
        "seed": Param(int, 7, range=(0, 2**31 - 1)),
        "width": Param(int, W),
        "height": Param(int, H),
    }

    def process(self, t, **_):
        x, y, w, h = self.p.box
        px = np.zeros((self.p.height, self.p.width, 4), np.float32)
        a = np.float32(self.p.alpha)
        px[y:y + h, x:x + w, :3] = np.asarray(self.p.color, np.float32) * a
        px[y:y + h, x:x + w, 3] = a
        img = Image(px, time=self.time(t))
        img = mark_generated(img) if self.p.generated else img
        model = {"card": self.p.card, "sha256": self.p.sha256} if self.p.card else {}
        params = {} if self.p.trained else {"trained": False}
        rec = GeneratorRecord("test_generator", generated=self.p.generated, model=model, prompt=self.p.prompt,
                              seed=self.p.seed, params=params)
        return attach_record(img, rec)


def write_plates(folder: Path, name: str = "plate", frames=range(1001, 1005), *, value=None,
                 metadata=None) -> str:
    """Opaque RGBA EXR plates whose colour changes with the frame; returns the pattern."""
    folder.mkdir(parents=True, exist_ok=True)
    for t in frames:
        v = np.float32(0.1 * (t - 1000)) if value is None else np.float32(value)
        px = np.empty((H, W, 4), np.float32)
        px[..., 0], px[..., 1], px[..., 2], px[..., 3] = v, v * 0.5, v * 0.25, 1.0
        px[..., 0] += np.linspace(0, 0.1, W, dtype=np.float32)[None, :]
        write_exr(folder / f"{name}.{t}.exr", Image(px), pixel_type="float", metadata=metadata)
    return str(folder / f"{name}.####.exr")


def comp_recipe(plate: str, out: str, *, element: dict | None = None, frames: str = "1001-1004",
                metadata: dict | None = None, extra: dict | None = None) -> dict:
    """plate reader, a generated element moved by 2 px, merged over the plate, written to ``out``."""
    stages = {
        "plate": {"type": "ReadImage", "params": {"path": plate}},
        "gen": {"type": "ProvTestElement", "params": element or {}},
        "move": {"type": "Transform", "inputs": {"image": "gen"}, "params": {"translate": [2.0, 0.0]}},
        "comp": {"type": "Merge", "inputs": {"a": "move", "b": "plate"}},
        "write": {"type": "WriteImage", "inputs": {"image": "comp"}, "params": {"path": out, "pixel_type": "float"}},
    }
    stages.update(extra or {})
    recipe = {"schema": "composite.pipeline/1", "name": "sh010", "frames": frames, "stages": stages}
    if metadata:
        recipe["metadata"] = metadata
    return recipe


def make_certificates(folder: Path) -> dict[str, Path]:
    """A throwaway root CA and an end-entity signing certificate it issued (EC P-256), as C2PA wants:
    the leaf has digitalSignature key usage and the emailProtection extended key usage. Returns paths of
    ``chain`` (leaf then CA), ``key`` (leaf private key), ``ca`` and ``self_signed`` (a bare self-signed
    certificate for the leaf key, which validators refuse)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    folder.mkdir(parents=True, exist_ok=True)
    start = datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc)
    end = start + datetime.timedelta(days=3650)

    def name(cn):
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn),
                          x509.NameAttribute(NameOID.ORGANIZATION_NAME, "composite test studio")])

    def usage(**on):
        flags = dict(digital_signature=False, content_commitment=False, key_encipherment=False,
                     data_encipherment=False, key_agreement=False, key_cert_sign=False, crl_sign=False,
                     encipher_only=False, decipher_only=False)
        flags.update(on)
        return x509.KeyUsage(**flags)

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (x509.CertificateBuilder().subject_name(name("Test Root CA")).issuer_name(name("Test Root CA"))
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(start).not_valid_after(end)
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .add_extension(usage(key_cert_sign=True, crl_sign=True), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())

    def leaf_builder(issuer):
        return (x509.CertificateBuilder().subject_name(name("Test Signer")).issuer_name(issuer)
                .public_key(key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(start).not_valid_after(end)
                .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                .add_extension(usage(digital_signature=True), critical=True)
                .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False)
                .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False))

    leaf = (leaf_builder(name("Test Root CA"))
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    self_signed = leaf_builder(name("Test Signer")).sign(key, hashes.SHA256())
    pem = serialization.Encoding.PEM
    paths = {"chain": folder / "chain.pem", "key": folder / "signer.key", "ca": folder / "ca.pem",
             "self_signed": folder / "self_signed.pem"}
    paths["chain"].write_bytes(leaf.public_bytes(pem) + ca.public_bytes(pem))
    paths["ca"].write_bytes(ca.public_bytes(pem))
    paths["self_signed"].write_bytes(self_signed.public_bytes(pem))
    paths["key"].write_bytes(key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    return paths


# -- helper sources --------------------------------------------------------------------------------

@register
class ConstantImage(Stage):
    """A source returning a fixed Image (tests only)."""

    type_name = "ProvTestConstantImage"
    is_source = True
    params = {"image": Param(dict, {}, doc="not serialisable: set in Python")}

    def __init__(self, image=None, **kw):
        super().__init__(**kw)
        self.image_ = image

    def process(self, t, **_):
        return self.image_


@register
class SequenceImages(Stage):
    """A source returning fixed Images per frame (tests only)."""

    type_name = "ProvTestSequenceImages"
    is_source = True
    params = {"frames": Param(dict, {}, doc="set in Python")}

    def __init__(self, frames=None, **kw):
        super().__init__(**kw)
        self.frames_ = frames or {}

    def frame_range(self):
        return (min(self.frames_), max(self.frames_)) if self.frames_ else None

    def process(self, t, **_):
        return self.frames_[t]
