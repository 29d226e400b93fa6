"""Explicit image state: alpha association and working colour space."""

from __future__ import annotations

import enum

#: Name of the default working colour space (scene-linear ACEScg, the ``scene_linear`` role of the
#: ACES configs that OpenColorIO ships built in).
WORKING_SPACE = "ACEScg"

#: Luminance weights of ACEScg (AP1 primaries, D60 white): the Y row of the AP1 → XYZ matrix.
AP1_LUMINANCE = (0.2722287168, 0.6740817658, 0.0536895174)

#: Colour-space name used for non-colour data (mattes, depth, motion vectors, coverage).
RAW_SPACE = "Raw"


class AlphaState(str, enum.Enum):
    """How colour relates to alpha in an image.

    ``OPAQUE``: no alpha channel, or alpha is 1 everywhere by construction.
    ``PREMULTIPLIED``: colour is already multiplied by alpha (associated alpha; composite's working state).
    ``STRAIGHT``: colour is not multiplied by alpha (unassociated; PNG/TIFF convention).
    """

    OPAQUE = "opaque"
    PREMULTIPLIED = "premultiplied"
    STRAIGHT = "straight"

    def __str__(self) -> str:  # messages read "premultiplied", not "AlphaState.PREMULTIPLIED"
        return self.value

    @classmethod
    def parse(cls, value: str | AlphaState) -> AlphaState:
        if isinstance(value, AlphaState):
            return value
        try:
            return cls(str(value).lower())
        except ValueError:
            allowed = ", ".join(s.value for s in cls)
            raise ValueError(f"unknown alpha state {value!r}; allowed: {allowed}") from None
