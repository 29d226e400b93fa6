"""A pinhole camera over a flat ground plane: where things stand and how tall they look.

Ground coordinates: ``X`` metres to the right of the camera axis, ``Z`` metres in front of the camera.
With the horizon at image row ``horizon_y``, the camera ``height`` metres above the ground and a focal
length of ``focal_px`` pixels, a ground point projects to::

    x = cx + focal_px * X / Z
    y = horizon_y + focal_px * height / Z

and a person ``h`` metres tall standing there is ``focal_px * h / Z`` pixels tall.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..core.errors import InputError


@dataclass(frozen=True)
class GroundCamera:
    """Pinhole camera looking level over a ground plane (image y grows downwards)."""

    horizon_y: float
    height: float
    focal_px: float
    cx: float

    def __post_init__(self):
        if self.height <= 0:
            raise InputError(f"camera height must be positive (metres above the ground), got {self.height}")
        if self.focal_px <= 0:
            raise InputError(f"focal length must be positive (pixels), got {self.focal_px}")

    @classmethod
    def from_reference(cls, *, horizon_y: float, foot_y: float, pixel_height: float, focal_px: float, cx: float,
                       person_height: float = 1.75) -> GroundCamera:
        """Solve the camera height from a person in the plate.

        A person ``person_height`` metres tall whose feet are at row ``foot_y`` and who is ``pixel_height``
        pixels tall fixes the camera height: ``height = person_height * (foot_y - horizon_y) / pixel_height``
        (the focal length cancels; it only sets the depth scale in metres).
        """
        if foot_y <= horizon_y:
            raise InputError(f"the reference foot (row {foot_y}) must be below the horizon (row {horizon_y}); "
                             "the camera would be looking above the horizon")
        if pixel_height <= 0:
            raise InputError(f"the reference pixel height must be positive, got {pixel_height}")
        return cls(horizon_y=horizon_y, height=person_height * (foot_y - horizon_y) / pixel_height,
                   focal_px=focal_px, cx=cx)

    def project(self, X: np.ndarray, Z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Image position of ground points (arrays of the same shape)."""
        Z = np.asarray(Z, np.float64)
        return self.cx + self.focal_px * np.asarray(X, np.float64) / Z, self.horizon_y + self.focal_px * self.height / Z

    def depth_at_row(self, y: np.ndarray) -> np.ndarray:
        """Ground depth Z seen at image row(s) ``y`` (rows must be below the horizon)."""
        y = np.asarray(y, np.float64)
        if np.any(y <= self.horizon_y):
            raise InputError(f"row(s) at or above the horizon (row {self.horizon_y}) do not see the ground")
        return self.focal_px * self.height / (y - self.horizon_y)

    def pixel_height(self, size_m: np.ndarray, Z: np.ndarray) -> np.ndarray:
        return self.focal_px * np.asarray(size_m, np.float64) / np.asarray(Z, np.float64)

    def ground_extent(self, Z: np.ndarray, width: int, margin: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
        """Lateral range [X0, X1] visible across ``width`` pixels (plus a margin) at depth Z."""
        Z = np.asarray(Z, np.float64)
        pad = margin * width
        return (-pad - self.cx) * Z / self.focal_px, (width + pad - self.cx) * Z / self.focal_px
