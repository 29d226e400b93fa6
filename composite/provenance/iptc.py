"""IPTC digital source types (NewsCodes) and how composite chooses one for a frame or a shot.

The vocabulary is IPTC's *Digital Source Type* (``http://cv.iptc.org/newscodes/digitalsourcetype/``),
which C2PA actions and XMP (``Iptc4xmpExt:DigitalSourceType``) use. composite labels its outputs with:

``compositeWithTrainedAlgorithmicMedia``
    the frame (or shot) contains pixels that came from a generator (``ai_coverage`` above zero, or a
    generator record marked ``generated`` reached the output, or an input file is itself labelled as
    generated). A generator is taken to be trained unless its record says ``"trained": false``:
    over-disclosure is the safe error.
``compositeSynthetic``
    generated pixels all come from generators whose records declare ``"trained": false`` (a purely
    procedural element).
``compositeCapture``
    no generated pixels and more than one captured source merged (a comp of several plates). IPTC
    defines it as "a mix or composite of several elements that are all captures of real life", which
    describes a live-action comp better than ``digitalCapture``.
``digitalCapture``
    no generated pixels and a single captured source (a graded or reformatted plate).

Example
-------
>>> classify(generated=True, trained=True, captured_sources=1)
'http://cv.iptc.org/newscodes/digitalsourcetype/compositeWithTrainedAlgorithmicMedia'
>>> short_name(classify(generated=False, trained=False, captured_sources=2))
'compositeCapture'
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

NEWSCODES = "http://cv.iptc.org/newscodes/digitalsourcetype/"

DIGITAL_CAPTURE = NEWSCODES + "digitalCapture"
COMPOSITE_CAPTURE = NEWSCODES + "compositeCapture"
COMPOSITE_SYNTHETIC = NEWSCODES + "compositeSynthetic"
COMPOSITE_WITH_TRAINED = NEWSCODES + "compositeWithTrainedAlgorithmicMedia"
TRAINED_ALGORITHMIC_MEDIA = NEWSCODES + "trainedAlgorithmicMedia"
ALGORITHMIC_MEDIA = NEWSCODES + "algorithmicMedia"

#: Terms meaning "contains generated pixels".
GENERATED_TERMS = frozenset({COMPOSITE_WITH_TRAINED, TRAINED_ALGORITHMIC_MEDIA, COMPOSITE_SYNTHETIC,
                             ALGORITHMIC_MEDIA})
#: Terms meaning "contains pixels from a trained model".
TRAINED_TERMS = frozenset({COMPOSITE_WITH_TRAINED, TRAINED_ALGORITHMIC_MEDIA})

#: EXR header attribute (the XMP property name) holding the term's URI.
HEADER_KEY = "Iptc4xmpExt:DigitalSourceType"


def short_name(uri: str | None) -> str | None:
    """``http://cv.iptc.org/newscodes/digitalsourcetype/compositeCapture`` → ``compositeCapture``."""
    if uri is None:
        return None
    return uri[len(NEWSCODES):] if uri.startswith(NEWSCODES) else uri


def normalise(term: str | None) -> str | None:
    """A term given as a short name, an ``https`` URI or a full URI → the full ``http`` NewsCodes URI."""
    if not term:
        return None
    term = str(term).strip()
    for prefix in (NEWSCODES, NEWSCODES.replace("http://", "https://")):
        if term.startswith(prefix):
            return NEWSCODES + term[len(prefix):]
    if "/" not in term:
        return NEWSCODES + term
    return term


def record_is_generated(record: Mapping[str, Any]) -> bool:
    return bool(record.get("generated"))


def record_is_trained(record: Mapping[str, Any]) -> bool:
    """A generator counts as trained unless its record (or its params) says ``trained: false``."""
    for where in (record, record.get("params") or {}):
        if isinstance(where, Mapping) and where.get("trained") is False:
            return False
    return True


def classify(*, generated: bool, trained: bool, captured_sources: int) -> str:
    """The NewsCodes URI for an output: see the module docstring for the rules."""
    if generated:
        return COMPOSITE_WITH_TRAINED if trained else COMPOSITE_SYNTHETIC
    return COMPOSITE_CAPTURE if captured_sources > 1 else DIGITAL_CAPTURE


def classify_frame(*, coverage_max: float, records: Iterable[Mapping[str, Any]], captured_sources: int,
                   input_terms: Iterable[str | None] = ()) -> str:
    """Classify one frame from its coverage, the generator records that reached it and the digital
    source types its input files declare."""
    records = list(records)
    generating = [r for r in records if record_is_generated(r)]
    terms = {normalise(t) for t in input_terms if t}
    generated = coverage_max > 0.0 or bool(generating) or bool(terms & GENERATED_TERMS)
    trained = any(record_is_trained(r) for r in generating) or bool(terms & TRAINED_TERMS) or \
        (coverage_max > 0.0 and not generating)
    return classify(generated=generated, trained=trained, captured_sources=captured_sources)


def combine(terms: Iterable[str | None], *, captured_sources: int = 1) -> str:
    """The shot-level term from the frames' terms (the most disclosing one wins)."""
    terms = {normalise(t) for t in terms if t}
    if terms & TRAINED_TERMS:
        return COMPOSITE_WITH_TRAINED
    if terms & GENERATED_TERMS:
        return COMPOSITE_SYNTHETIC
    if COMPOSITE_CAPTURE in terms or captured_sources > 1:
        return COMPOSITE_CAPTURE
    return DIGITAL_CAPTURE if terms <= {DIGITAL_CAPTURE} else sorted(terms)[0]
