"""C2PA Content Credentials for review media (MP4, MOV, PNG, JPEG) through c2pa-python.

A signed file carries a C2PA manifest with:

* ``c2pa.actions.v2``: ``c2pa.created`` with the output's IPTC digital source type and composite as the
  software agent; ``c2pa.placed`` for the captured plates and (with ``trainedAlgorithmicMedia``) for the
  generated elements; ``c2pa.edited`` naming the kinds of operations of the recipe;
* the ingredients: one per plate reader and one per generator that reached the output;
* ``cawg.training-mining`` (the Creator Assertions Working Group's training and data mining assertion,
  which replaced ``c2pa.training-mining`` in C2PA 2.x) with ``cawg.ai_training``,
  ``cawg.ai_generative_training`` and ``cawg.data_mining`` set to ``notAllowed``;
* ``org.composite.provenance``: the compact provenance summary (manifest id, recipe fingerprint, AI
  coverage, generators).

Signing configuration
---------------------
The certificate chain (PEM: the signer's end-entity certificate first, then its intermediate CAs) and
private key come from the environment or a TOML file::

    COMPOSITE_C2PA_CERT=/studio/keys/c2pa_chain.pem
    COMPOSITE_C2PA_KEY=/studio/keys/c2pa_signer.key
    COMPOSITE_C2PA_ALG=es256                 # optional: derived from the key (EC P-256 → es256, RSA → ps256)
    COMPOSITE_C2PA_TSA_URL=http://...        # optional RFC 3161 time-stamp authority
    COMPOSITE_C2PA_TRUST_ANCHORS=/studio/keys/root_ca.pem   # optional, for verification
    COMPOSITE_C2PA=sign | unsigned           # policy for renders (default: sign)
    COMPOSITE_C2PA_CONFIG=~/.config/composite/c2pa.toml     # default location of the file below

    # c2pa.toml
    [c2pa]
    cert = "/studio/keys/c2pa_chain.pem"
    key = "/studio/keys/c2pa_signer.key"
    policy = "sign"

Environment variables win over the file. C2PA validators accept only CA-issued end-entity
certificates with a ``digitalSignature`` key usage and a suitable extended key usage (e.g.
``emailProtection`` or ``documentSigning``), not self-signed ones.

Renders sign their review media unless the recipe's ``metadata: {provenance: {c2pa: unsigned}}``, the
environment (``COMPOSITE_C2PA=unsigned``) or the file's ``policy`` asks for unsigned output. A render
that must sign but finds no usable configuration stops before writing anything, saying what to set.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..core.errors import InputError
from . import iptc

CERT_ENV = "COMPOSITE_C2PA_CERT"
KEY_ENV = "COMPOSITE_C2PA_KEY"
ALG_ENV = "COMPOSITE_C2PA_ALG"
TSA_ENV = "COMPOSITE_C2PA_TSA_URL"
TRUST_ENV = "COMPOSITE_C2PA_TRUST_ANCHORS"
POLICY_ENV = "COMPOSITE_C2PA"
CONFIG_ENV = "COMPOSITE_C2PA_CONFIG"
DEFAULT_CONFIG = "~/.config/composite/c2pa.toml"
POLICIES = ("sign", "unsigned")

#: Review-media extensions C2PA embeds into, with their MIME types.
REVIEW_MEDIA = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".mp4": "video/mp4",
                ".m4v": "video/x-m4v", ".mov": "video/quicktime"}
ALGORITHMS = ("es256", "es384", "es512", "ps256", "ps384", "ps512", "ed25519")

#: The training-and-data-mining uses composite forbids.
TRAINING_MINING_LABEL = "cawg.training-mining"
TRAINING_MINING_USES = ("cawg.ai_generative_training", "cawg.ai_training", "cawg.data_mining")
PROVENANCE_LABEL = "org.composite.provenance"


class SigningConfigError(InputError):
    """The signing key or certificate is missing, unreadable or unusable."""


def is_review_media(path: str | os.PathLike) -> bool:
    return os.path.splitext(os.fspath(path))[1].lower() in REVIEW_MEDIA


def mime_type(path: str | os.PathLike) -> str:
    ext = os.path.splitext(os.fspath(path))[1].lower()
    if ext not in REVIEW_MEDIA:
        raise InputError(f"{path}: C2PA signing covers {', '.join(sorted(REVIEW_MEDIA))} files; EXR sequences get "
                         "sidecar provenance manifests instead")
    return REVIEW_MEDIA[ext]


# -- configuration -------------------------------------------------------------------------------

@dataclass(frozen=True)
class SigningConfig:
    """Where the signing credentials are, and the render policy. ``source`` says where each came from."""

    cert: Path | None = None
    key: Path | None = None
    alg: str | None = None
    tsa_url: str | None = None
    trust_anchors: Path | None = None
    policy: str = "sign"
    thumbnail: bool = True
    source: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def load(cls, env: Mapping[str, str] | None = None, *, config_file: str | os.PathLike | None = None) -> SigningConfig:
        """Read the configuration file (``$COMPOSITE_C2PA_CONFIG`` or ``~/.config/composite/c2pa.toml``)
        and let the environment override it."""
        env = os.environ if env is None else env
        path = Path(os.path.expanduser(str(config_file or env.get(CONFIG_ENV) or DEFAULT_CONFIG)))
        values: dict[str, Any] = {}
        source: dict[str, str] = {}
        explicit = bool(config_file or env.get(CONFIG_ENV))
        if path.is_file():
            try:
                data = _read_toml(path)
            except Exception as exc:
                raise SigningConfigError(f"{path}: cannot read the C2PA signing configuration ({exc})") from None
            section = data.get("c2pa", data)
            if not isinstance(section, Mapping):
                raise SigningConfigError(f"{path}: the [c2pa] section must be a table")
            unknown = sorted(set(section) - {"cert", "key", "alg", "tsa_url", "trust_anchors", "policy", "thumbnail"})
            if unknown:
                raise SigningConfigError(f"{path}: unknown key {unknown[0]!r} in [c2pa]; keys: cert, key, alg, "
                                         "tsa_url, trust_anchors, policy, thumbnail")
            for k, v in section.items():
                values[k] = v
                source[k] = str(path)
            base = path.parent
            for k in ("cert", "key", "trust_anchors"):
                if values.get(k):
                    p = Path(os.path.expanduser(str(values[k])))
                    values[k] = p if p.is_absolute() else base / p
        elif explicit:
            raise SigningConfigError(f"{path}: C2PA signing configuration file not found (named by {CONFIG_ENV})")
        for k, var in (("cert", CERT_ENV), ("key", KEY_ENV), ("alg", ALG_ENV), ("tsa_url", TSA_ENV),
                       ("trust_anchors", TRUST_ENV), ("policy", POLICY_ENV)):
            if env.get(var):
                values[k] = env[var]
                source[k] = f"${var}"
        policy = str(values.get("policy") or "sign").lower()
        if policy not in POLICIES:
            raise SigningConfigError(f"C2PA policy {policy!r} (from {source.get('policy')}) must be sign or unsigned")
        alg = str(values["alg"]).lower() if values.get("alg") else None
        if alg is not None and alg not in ALGORITHMS:
            raise SigningConfigError(f"C2PA signing algorithm {alg!r} (from {source.get('alg')}) must be one of "
                                     f"{', '.join(ALGORITHMS)}")

        def as_path(v):
            return Path(os.path.expanduser(str(v))) if v else None

        return cls(cert=as_path(values.get("cert")), key=as_path(values.get("key")), alg=alg,
                   tsa_url=str(values["tsa_url"]) if values.get("tsa_url") else None,
                   trust_anchors=as_path(values.get("trust_anchors")), policy=policy,
                   thumbnail=bool(values.get("thumbnail", True)), source=source)

    @property
    def configured(self) -> bool:
        return self.cert is not None or self.key is not None

    def require(self) -> SigningConfig:
        """Self when a certificate and key are configured and readable, else :class:`SigningConfigError`
        saying what to set (and how to ask for unsigned output instead)."""
        how = (f"set {CERT_ENV} (PEM certificate chain: signer first, then its CA) and {KEY_ENV} (PEM private "
               f"key), or put cert and key in {DEFAULT_CONFIG} under [c2pa]; to write unsigned review media "
               f"on purpose set {POLICY_ENV}=unsigned, the recipe's metadata provenance.c2pa: unsigned, or pass "
               "--unsigned")
        if self.cert is None and self.key is None:
            raise SigningConfigError(f"review media are signed with C2PA Content Credentials but no signing "
                                     f"configuration was found: {how}")
        for what, p, var in (("certificate", self.cert, CERT_ENV), ("private key", self.key, KEY_ENV)):
            if p is None:
                raise SigningConfigError(f"C2PA signing: the {what} is not configured ({var}); {how}")
            if not p.is_file():
                raise SigningConfigError(f"C2PA signing: the {what} {p} (from {self.source.get('cert' if what[0] == 'c' else 'key', var)}) "
                                         "does not exist")
        return self

    def algorithm(self) -> str:
        """The signing algorithm: configured, else derived from the private key's type."""
        if self.alg:
            return self.alg
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

        try:
            key = serialization.load_pem_private_key(Path(self.key).read_bytes(), password=None)
        except Exception as exc:
            raise SigningConfigError(f"C2PA signing: {self.key} is not an unencrypted PEM private key ({exc})") from None
        if isinstance(key, ec.EllipticCurvePrivateKey):
            by_curve = {"secp256r1": "es256", "secp384r1": "es384", "secp521r1": "es512"}
            alg = by_curve.get(key.curve.name)
            if alg is None:
                raise SigningConfigError(f"C2PA signing: EC curve {key.curve.name} is not supported (use P-256, P-384 "
                                         "or P-521)")
            return alg
        if isinstance(key, rsa.RSAPrivateKey):
            return "ps256"
        if isinstance(key, ed25519.Ed25519PrivateKey):
            return "ed25519"
        raise SigningConfigError(f"C2PA signing: unsupported key type {type(key).__name__} in {self.key}")


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        import tomllib
    except ImportError:  # Python 3.10: c2pa-python depends on the toml package
        import toml

        return toml.loads(path.read_text())
    return tomllib.loads(path.read_text())


def render_policy(recipe_metadata: Mapping[str, Any] | None = None, config: SigningConfig | None = None) -> str:
    """``sign`` or ``unsigned`` for a render: the recipe's ``metadata.provenance.c2pa`` wins over the
    environment and the configuration file."""
    prov = (recipe_metadata or {}).get("provenance") or {}
    if isinstance(prov, Mapping) and prov.get("c2pa"):
        policy = str(prov["c2pa"]).lower()
        if policy not in POLICIES:
            raise InputError(f"recipe metadata provenance.c2pa must be sign or unsigned, got {prov['c2pa']!r}")
        return policy
    return (config or SigningConfig.load()).policy


# -- manifest definitions ------------------------------------------------------------------------

def training_mining_assertion(uses: Sequence[str] = TRAINING_MINING_USES) -> dict[str, Any]:
    """The CAWG training-and-data-mining assertion forbidding ``uses``."""
    return {"label": TRAINING_MINING_LABEL, "data": {"entries": {u: {"use": "notAllowed"} for u in uses}}}


@dataclass(frozen=True)
class Ingredient:
    """A plate or generated element that went into a signed file."""

    label: str
    title: str
    format: str = "application/octet-stream"
    generated: bool = False
    trained: bool = True
    description: str = ""

    def as_dict(self) -> dict[str, Any]:
        out = {"title": self.title, "format": self.format, "relationship": "componentOf", "label": self.label}
        if self.description:
            out["description"] = self.description
        return out


_FORMATS = {".exr": "image/x-exr", ".dpx": "image/x-dpx", ".tif": "image/tiff", ".tiff": "image/tiff",
            **REVIEW_MEDIA}


def format_of(path: str) -> str:
    return _FORMATS.get(os.path.splitext(path)[1].lower(), "application/octet-stream")


def build_definition(*, title: str, format: str, digital_source_type: str, ingredients: Sequence[Ingredient] = (),
                     operations: Sequence[str] = (), provenance: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The manifest definition (c2pa-python's JSON) of a review file. See the module docstring."""
    from .. import __version__

    agent = {"name": "composite", "version": __version__}
    actions: list[dict[str, Any]] = [{"action": "c2pa.created", "softwareAgent": agent,
                                      "digitalSourceType": iptc.normalise(digital_source_type),
                                      "description": "rendered by composite from a compositing recipe"}]
    captured = [i.label for i in ingredients if not i.generated]
    if captured:
        actions.append({"action": "c2pa.placed", "softwareAgent": agent, "parameters": {"ingredientIds": captured},
                        "description": "live-action plates"})
    for trained in (True, False):
        gen = [i.label for i in ingredients if i.generated and i.trained == trained]
        if gen:
            actions.append({"action": "c2pa.placed", "softwareAgent": agent, "parameters": {"ingredientIds": gen},
                            "digitalSourceType": iptc.TRAINED_ALGORITHMIC_MEDIA if trained else iptc.ALGORITHMIC_MEDIA,
                            "description": "generated elements"})
    if operations:
        actions.append({"action": "c2pa.edited", "softwareAgent": agent,
                        "description": "compositing operations: " + ", ".join(operations)})
    assertions = [{"label": "c2pa.actions.v2", "data": {"actions": actions}}, training_mining_assertion()]
    if provenance:
        assertions.append({"label": PROVENANCE_LABEL, "data": dict(provenance)})
    return {"claim_generator_info": [agent], "title": title, "format": format,
            "ingredients": [i.as_dict() for i in ingredients], "assertions": assertions}


# -- signing and reading -------------------------------------------------------------------------

def _c2pa():
    try:
        import c2pa
    except ImportError as exc:  # pragma: no cover - a declared dependency
        raise InputError(f"C2PA needs the c2pa-python package ({exc}); install it with pip install c2pa-python") from None
    return c2pa


def make_signer(config: SigningConfig):
    """A ``c2pa.Signer`` from the configured certificate chain and key."""
    c2pa = _c2pa()
    config.require()
    alg = config.algorithm()
    try:
        info = c2pa.C2paSignerInfo(alg.encode(), Path(config.cert).read_bytes(), Path(config.key).read_bytes(),
                                   config.tsa_url.encode() if config.tsa_url else None)
        return c2pa.Signer.from_info(info)
    except c2pa.C2paError as exc:
        raise SigningConfigError(f"C2PA signing: the certificate {config.cert} and key {config.key} were refused "
                                 f"({exc})") from None


def context(config: SigningConfig | None = None, *, thumbnail: bool | None = None, verify_trust: bool | None = None):
    """A ``c2pa.Context``: trust anchors from the configuration (verification reports ``Trusted``
    signers), thumbnails on or off for signing."""
    c2pa = _c2pa()
    settings: dict[str, Any] = {}
    if thumbnail is not None:
        settings["builder"] = {"thumbnail": {"enabled": bool(thumbnail)}}
    if config is not None and config.trust_anchors is not None:
        if not config.trust_anchors.is_file():
            raise SigningConfigError(f"C2PA trust anchors {config.trust_anchors} (from "
                                     f"{config.source.get('trust_anchors', TRUST_ENV)}) do not exist")
        settings["trust"] = {"trust_anchors": config.trust_anchors.read_text()}
        settings["verify"] = {"verify_trust": True if verify_trust is None else bool(verify_trust)}
    if not settings:
        return c2pa.Context()
    return c2pa.Context(settings=c2pa.Settings.from_dict(settings))


def sign_file(path: str | os.PathLike, definition: Mapping[str, Any], *, config: SigningConfig | None = None,
              dest: str | os.PathLike | None = None) -> Path:
    """Embed a signed C2PA manifest into ``path`` (in place, or into ``dest``), atomically.

    Raises :class:`SigningConfigError` when the configuration is missing or refused and
    :class:`InputError` when the file cannot be signed.
    """
    from ..io.atomic import atomic_output

    c2pa = _c2pa()
    config = (config or SigningConfig.load()).require()
    src = Path(path)
    out = Path(dest) if dest is not None else src
    mime = mime_type(src)
    if not src.is_file():
        raise InputError(f"{src}: no such file to sign")
    signer = make_signer(config)
    try:
        builder = c2pa.Builder(dict(definition), context=context(config, thumbnail=config.thumbnail))
        with atomic_output(out) as tmp:
            with open(src, "rb") as s, open(tmp, "w+b") as d:
                builder.sign(signer, mime, s, d)
    except c2pa.C2paError as exc:
        text = str(exc)
        if "certificate" in text.lower() or "signature" in text.lower():
            raise SigningConfigError(
                f"{src}: C2PA signing refused the certificate {config.cert} ({text}); C2PA needs an end-entity "
                "certificate issued by a CA (not self-signed), with the digitalSignature key usage and an extended "
                "key usage such as emailProtection or documentSigning, followed by its CA chain in the same PEM "
                f"file ({config.source.get('cert', CERT_ENV)})") from None
        raise InputError(f"{src}: C2PA signing failed ({text})") from None
    finally:
        for obj in (locals().get("builder"), signer):
            if obj is not None:
                try:
                    obj.close()
                except Exception:
                    pass
    return out


def read_manifest_store(path: str | os.PathLike, *, config: SigningConfig | None = None) -> dict[str, Any] | None:
    """The C2PA manifest store of a file as a dict (``active_manifest``, ``manifests``,
    ``validation_state`` ...), or None when the file carries no C2PA manifest."""
    import json

    c2pa = _c2pa()
    ctx = context(config)
    try:
        reader = c2pa.Reader(os.fspath(path), context=ctx)
    except c2pa.C2paError.ManifestNotFound:
        return None
    except c2pa.C2paError as exc:
        text = str(exc)
        if "ManifestNotFound" in text or "no JUMBF" in text:
            return None
        return {"validation_state": "Invalid", "error": text}
    try:
        return json.loads(reader.json())
    finally:
        reader.close()


def has_manifest(path: str | os.PathLike) -> bool:
    try:
        return read_manifest_store(path) is not None
    except InputError:
        return False
