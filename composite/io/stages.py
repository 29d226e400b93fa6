"""Reader and writer stages: ``ReadImage`` (files, sequences and movies), ``WriteImage`` and
``WriteMovie`` (review media).

Example
-------
>>> from composite.graph import Pipeline
>>> p = Pipeline("sh010")
>>> plate = p.add("plate", ReadImage(path="plates/sh010.####.exr", colorspace="ACES2065-1"))
>>> _ = p.add("write", WriteImage(path="renders/sh010.####.exr"), image=plate)
>>> _ = p.add("review", WriteMovie(path="review/sh010.mp4"), image=plate)
"""

from __future__ import annotations

import logging
import os

import numpy as np

from ..color import ocio
from ..core.errors import InputError, MissingFrameError, RecipeError
from ..core.image import Image
from ..graph.params import Param
from ..graph.registry import register
from ..graph.stage import ANY_ALPHA, Input, OutputStage, Stage
from ..provenance import recorder as provenance
from . import exr, images, video
from .sequence import SequencePattern, format_frame_list

log = logging.getLogger(__name__)

MISSING_POLICIES = ("error", "hold", "black")
_signature_cache: dict[tuple, dict] = {}


def _check_colorspace(name: str, config: str | None, key: str) -> None:
    try:
        ocio.resolve_colorspace(name, config)
    except RecipeError:
        raise
    except InputError as exc:
        raise RecipeError(str(exc), key=key) from None


def _check_display(display: str, view: str, config: str | None) -> None:
    try:
        ocio._check_display_view(ocio.get_config(config), display, view)
    except InputError as exc:
        key = "params.view" if "view" in str(exc).split(";")[0] else "params.display"
        raise RecipeError(str(exc), key=key) from None


def _file_key(path: str) -> tuple:
    st = os.stat(path)
    return (os.path.abspath(path), st.st_size, st.st_mtime_ns)


@register
class ReadImage(Stage):
    """Read an image file, sequence or movie and convert it to the working state (colour space,
    premultiplied alpha).

    ``path`` is a file, a pattern (``plate.####.exr``, ``plate.%04d.exr``, ``plate.1001-1100#.exr``) or a
    movie (``.mov``, ``.mp4``, ``.webm`` ...; its frame 0 is frame number ``start_frame``).
    ``colorspace`` is the file's colour space (empty: the file's own metadata where reliable, else
    scene-linear for EXR, ADX10 for log DPX, Rec.709 (BT.1886) for video and sRGB for other formats).
    ``missing`` says what a missing frame does: ``error``, ``hold`` (the nearest earlier frame, else the
    nearest later one) or ``black``. A frame whose resolution, channels or bit depth differ from the
    sequence's first frame stops the render with an error naming that frame (``check_format``).
    """

    is_source = True
    version = 2
    params = {
        "path": Param(str, "", path=True, doc="file, sequence pattern or movie"),
        "colorspace": Param(str, "", doc="colour space of the file (empty: from the file)"),
        "alpha": Param(str, "auto", choices=("auto", "straight", "premultiplied", "ignore"),
                       doc="how to interpret the file's A channel"),
        "missing": Param(str, "error", choices=MISSING_POLICIES, doc="missing-frame policy"),
        "first": Param(int, None, optional=True, doc="first frame (default: from the pattern, disk or movie)"),
        "last": Param(int, None, optional=True, doc="last frame (default: from the pattern, disk or movie)"),
        "part": Param(str, "", doc="EXR part index or name (empty: the first part of the view)"),
        "view": Param(str, "", doc="EXR view of a stereo file (empty: the default view)"),
        "start_frame": Param(int, 1001, doc="frame number of a movie's first frame"),
        "check_format": Param(bool, True, doc="stop when resolution, channels or bit depth change mid-sequence"),
        "ocio_config": Param(str, "", path=True, doc="OCIO config (empty: $OCIO, else the built-in ACES config)"),
    }

    def check_params(self):
        if not self.p.path:
            raise RecipeError("a path is required (e.g. --set plate.path=plates/sh010.####.exr)", key="params.path")
        self.is_movie = images.is_movie(self.p.path)
        self.pattern = SequencePattern.parse(self.p.path)
        if self.is_movie and self.pattern.is_sequence:
            raise RecipeError(f"{self.p.path}: a movie path cannot be a frame pattern", key="params.path")
        if self.p.colorspace:
            _check_colorspace(self.p.colorspace, self.p.ocio_config or None, "params.colorspace")
        self._disk: list[int] | None = None
        self._extra: str | None = None
        self._black: Image | None = None

    @property
    def _config(self) -> str | None:
        return self.p.ocio_config or None

    # -- frames ---------------------------------------------------------------------------------
    def _frames_on_disk(self) -> list[int]:
        if self._disk is None:
            self._disk = self.pattern.scan()
        return self._disk

    def _movie_range(self) -> tuple[int, int]:
        reader = video.movie_reader(self.p.path)
        return (self.p.start_frame, self.p.start_frame + reader.frame_count - 1)

    def frame_range(self):
        if self.is_movie:
            lo, hi = self._movie_range()
            return (self.p.first if self.p.first is not None else lo, self.p.last if self.p.last is not None else hi)
        if not self.pattern.is_sequence:
            return None
        if self.p.first is not None and self.p.last is not None:
            return (self.p.first, self.p.last)
        rng = self.pattern.frame_range()
        if rng is None:
            raise InputError(f"{self.pattern}: no frames of this sequence exist on disk")
        first = self.p.first if self.p.first is not None else rng[0]
        last = self.p.last if self.p.last is not None else rng[1]
        return (first, last)

    def _resolve(self, t: int) -> str | None:
        path = self.pattern.path(t)
        if os.path.exists(path):
            return path
        if self.p.missing == "error":
            gaps = self.pattern.gaps() if self.pattern.is_sequence else []
            hint = f" (gaps in the sequence: {format_frame_list(gaps)})" if gaps else ""
            raise MissingFrameError(f"{path}: frame {t} is missing{hint}; set {self.node_name}.missing to "
                                    "hold or black to render through gaps")
        if self.p.missing == "hold":
            frames = self._frames_on_disk()
            if not frames:
                raise MissingFrameError(f"{self.pattern}: no frames on disk to hold")
            earlier = [f for f in frames if f < t]
            return self.pattern.path(earlier[-1] if earlier else frames[0])
        return None

    def _movie_index(self, t: int) -> int | None:
        lo, hi = self._movie_range()
        if lo <= t <= hi:
            return t - lo
        if self.p.missing == "error":
            raise MissingFrameError(f"{self.p.path}: frame {t} is outside the movie's frames {lo}-{hi}; "
                                    f"set {self.node_name}.start_frame or {self.node_name}.missing (hold, black)")
        if self.p.missing == "hold":
            return 0 if t < lo else hi - lo
        return None

    # -- fingerprints ---------------------------------------------------------------------------
    def source_identity(self, t: int) -> str:
        if self.is_movie:
            try:
                index = self._movie_index(t)
            except MissingFrameError:
                return f"missing:{self.p.path}@{t}"
            key = _file_key(self.p.path) if os.path.exists(self.p.path) else (self.p.path,)
            return f"movie:{'|'.join(map(str, key))}|index:{index}"
        try:
            path = self._resolve(t)
        except MissingFrameError:
            return f"missing:{self.pattern.path(t)}"
        if path is None:
            return f"black:{self.pattern.path(t)}"
        return "|".join(map(str, _file_key(path)))

    def fingerprint_extra(self) -> str:
        if self._extra is None:
            parts = [f"config:{ocio.config_id(self._config)}", f"working:{self.working_space}"]
            if self.p.colorspace:
                parts.append(ocio.processor_id(self.p.colorspace, self.working_space, self._config))
            self._extra = "|".join(parts)
        return self._extra

    # -- reading --------------------------------------------------------------------------------
    def _read(self, path: str, index: int | None = None) -> Image:
        return images.read_image(path, colorspace=self.p.colorspace or None, part=self.p.part or None,
                                 view=self.p.view or None, frame_index=index)

    def _reference_signature(self, t: int, img: Image) -> dict | None:
        """Signature of the sequence's first frame on disk (read once per process)."""
        frames = self._frames_on_disk()
        if not frames:
            return None
        ref_frame = frames[0]
        ref_path = self.pattern.path(ref_frame)
        key = (_file_key(ref_path), self.p.part, self.p.view)
        sig = _signature_cache.get(key)
        if sig is None:
            sig = images.image_signature(img if t == ref_frame else self._read(ref_path))
            sig["frame"] = ref_frame
            _signature_cache[key] = sig
        return sig

    def _check_format(self, t: int, path: str, img: Image) -> None:
        if not (self.p.check_format and self.pattern.is_sequence):
            return
        ref = self._reference_signature(t, img)
        if ref is None:
            return
        change = images.signature_change(ref, images.image_signature(img))
        if change:
            raise InputError(f"{path}: frame {t} differs from the sequence's first frame {ref['frame']}: {change}; "
                             f"fix the plate or set {self.node_name}.check_format to false")

    def process(self, t, **_):
        try:
            img = self._read_frame(t)
        except MissingFrameError:
            raise
        except InputError as exc:
            if f"frame {t}" in str(exc):
                raise
            raise type(exc)(f"{self.node_name} frame {t}: {exc}") from None
        img = images.to_working(img, self.working_space, alpha=self.p.alpha, config=self._config)
        return img.replace(time=self.time(t))

    def _read_frame(self, t: int) -> Image:
        if self.is_movie:
            index = self._movie_index(t)
            if index is None:
                img = self._read(self.p.path, 0)
                img = img.replace(pixels=np.zeros_like(img.pixels))
            else:
                img = self._read(self.p.path, index)
        else:
            path = self._resolve(t)
            if path is None:  # black frame: the size and channels of the sequence's first frame
                frames = self._frames_on_disk()
                if not frames:
                    raise MissingFrameError(f"{self.pattern}: no frames on disk")
                if self._black is None:
                    ref = self._read(self.pattern.path(frames[0]))
                    self._black = ref.replace(pixels=np.zeros_like(ref.pixels), layers={},
                                              metadata={**ref.metadata, "composite:black_frame": True})
                img = self._black
            else:
                img = self._read(path)
                self._check_format(t, path, img)
        return img


_EXR_COMPRESSIONS = tuple(exr.COMPRESSIONS)


@register
class WriteImage(OutputStage):
    """Write frames to a file or sequence (EXR, DPX, TIFF, PNG, JPEG ...), atomically, with the fingerprint.

    ``colorspace``: output colour space (empty: the working space for EXR, sRGB for other formats).
    ``display``/``view``: apply an OCIO display view instead (previews, review media).
    ``alpha``: ``premultiplied`` (EXR default) or ``straight`` (``auto``: straight for other formats).
    EXR files keep every layer (``layers``), with ``pixel_type`` for the main channels and
    ``layer_types`` per layer, and the plate's header metadata (timecode, owner ...).
    """

    version = 2
    inputs = {"image": Input("image to write", alpha=ANY_ALPHA)}
    params = {
        "path": Param(str, "", path=True, doc="output file or sequence pattern"),
        "colorspace": Param(str, "", doc="output colour space (empty: working space for EXR, sRGB otherwise)"),
        "display": Param(str, "", doc="OCIO display for a display-referred output (empty: none)"),
        "view": Param(str, ocio.DEFAULT_VIEW, doc="OCIO view with display"),
        "alpha": Param(str, "auto", choices=("auto", "premultiplied", "straight")),
        "compression": Param(str, "zip", choices=_EXR_COMPRESSIONS, doc="EXR compression"),
        "pixel_type": Param(str, "half", choices=("half", "float"), doc="EXR main channels"),
        "layer_types": Param(dict, {}, doc="EXR pixel type per layer, e.g. {depth: float}"),
        "layers": Param(bool, True, doc="write the image's layers (EXR)"),
        "bits": Param(str, "uint8", choices=("uint8", "uint10", "uint12", "uint16", "half", "float"),
                      doc="non-EXR bit depth (uint10/uint12: DPX)"),
        "metadata": Param(dict, {}, doc="extra header attributes"),
        "ocio_config": Param(str, "", path=True, doc="OCIO config (empty: $OCIO, else the built-in ACES config)"),
    }

    def check_params(self):
        if not self.p.path:
            raise RecipeError("a path is required (e.g. --set write.path=renders/sh010.####.exr)", key="params.path")
        if images.is_movie(self.p.path):
            raise RecipeError(f"{self.p.path}: movies are written by WriteMovie", key="params.path")
        self.pattern = SequencePattern.parse(self.p.path)
        cfg = self.p.ocio_config or None
        if self.p.colorspace:
            _check_colorspace(self.p.colorspace, cfg, "params.colorspace")
        if self.p.display:
            _check_display(self.p.display, self.p.view, cfg)
        for name, kind in self.p.layer_types.items():
            if kind not in ("half", "float"):
                raise RecipeError(f"layer {name!r}: pixel type must be half or float, got {kind!r}",
                                  key=f"params.layer_types.{name}")

    def fingerprint_extra(self) -> str:
        return f"config:{ocio.config_id(self.p.ocio_config or None)}"

    def output_paths(self, t):
        return [self.pattern.path(t)]

    def existing_fingerprint(self, t):
        return images.read_fingerprint(self.pattern.path(t))

    def prepare(self, image: Image) -> Image:
        exr_out = images.is_exr(self.p.path)
        cs = self.p.colorspace or (image.colorspace if exr_out else images.DISPLAY_FILE_SPACE)
        alpha = self.p.alpha if self.p.alpha != "auto" else ("premultiplied" if exr_out else "straight")
        out = images.from_working(image, cs, alpha=alpha, display=self.p.display or None, view=self.p.view,
                                  config=self.p.ocio_config or None)
        if not self.p.layers and out.layers:
            out = out.replace(layers={})
        return out

    def begin(self, frames):
        provenance.begin(self, frames)

    def write(self, t, *, fingerprint, image):
        path = self.pattern.path(t)
        out = self.prepare(image)
        meta = {k: v for k, v in self.p.metadata.items()}
        meta.update(provenance.header(self, t, image, fingerprint))  # coverage summary, IPTC source type
        images.write_image(path, out, fingerprint=fingerprint, metadata=meta, compression=self.p.compression,
                           pixel_type=self.p.pixel_type, bits=self.p.bits, layer_types=dict(self.p.layer_types),
                           keep_metadata=True)
        provenance.written(self, t, path)  # checksum; C2PA signature of PNG/JPEG review stills
        return [path]

    def finish(self, frames):
        return provenance.finish(self, frames)  # the manifest part of this render (or chunk)


@register
class WriteMovie(OutputStage):
    """Write a review movie (H.264 MP4, or ProRes MOV) of the rendered frames through an OCIO display view.

    The movie is encoded as frames arrive and appears under its name, complete, when the render (or
    chunk) finishes; the frames' fingerprints are recorded in the movie, so frames already in it are
    taken from it when a later render skips them. When chunks render concurrently (worker processes, Ray),
    each writes its own frames and the executor then completes the movie in one pass; on a farm, give the
    movie a single-chunk step.
    """

    whole_range = True
    inputs = {"image": Input("image to encode", alpha=ANY_ALPHA)}
    params = {
        "path": Param(str, "", path=True, doc="output movie (.mp4 or .mov)"),
        "codec": Param(str, "h264", choices=video.CODECS, doc="h264, or prores (MOV) when the encoder exists"),
        "display": Param(str, "Rec.1886 Rec.709 - Display", doc="OCIO display (empty: use colorspace)"),
        "view": Param(str, ocio.DEFAULT_VIEW, doc="OCIO view with display"),
        "colorspace": Param(str, "", doc="output colour space when display is empty (e.g. Gamma 2.4 Encoded Rec.709)"),
        "rate": Param(float, 0.0, range=(0.0, 1000.0), doc="frames per second (0: the pipeline's rate)"),
        "crf": Param(int, 18, range=(0, 51), doc="H.264 quality (lower is better)"),
        "prores_profile": Param(int, 3, range=(0, 4), doc="ProRes profile (3: 422 HQ, 4: 4444)"),
        "ocio_config": Param(str, "", path=True, doc="OCIO config (empty: $OCIO, else the built-in ACES config)"),
    }

    def check_params(self):
        if not self.p.path:
            raise RecipeError("a path is required (e.g. --set review.path=review/sh010.mp4)", key="params.path")
        ext = os.path.splitext(self.p.path)[1].lower()
        if ext not in (".mp4", ".mov", ".m4v", ".mkv"):
            raise RecipeError(f"{self.p.path}: review movies are .mp4 or .mov files", key="params.path")
        if self.p.codec == "prores" and ext != ".mov":
            raise RecipeError(f"{self.p.path}: ProRes goes in a .mov file", key="params.path")
        cfg = self.p.ocio_config or None
        if self.p.display:
            _check_display(self.p.display, self.p.view, cfg)
        elif not self.p.colorspace:
            raise RecipeError("give a display (and view) or a colorspace for the movie", key="params.display")
        else:
            _check_colorspace(self.p.colorspace, cfg, "params.colorspace")
        self._writer: video.MovieWriter | None = None
        self._old: dict[int, str] = {}
        self._fps: dict[int, str] = {}
        self._targets: list[int] = []
        self._next = 0
        self._old_reader: video.MovieReader | None = None
        self._old_frames: list[int] = []

    def fingerprint_extra(self) -> str:
        return f"config:{ocio.config_id(self.p.ocio_config or None)}"

    def output_paths(self, t):
        return [self.p.path]

    def _recorded(self) -> dict[int, str]:
        meta = video.read_movie_metadata(self.p.path) if os.path.exists(self.p.path) else {}
        return video.decode_fingerprints(meta.get(video.METADATA_KEY))

    def existing_fingerprint(self, t):
        if not self._old and os.path.exists(self.p.path):
            self._old = self._recorded()
        return self._old.get(t)

    def begin(self, frames):
        provenance.begin(self, frames)
        self._old = self._recorded()
        self._fps = {}
        self._targets = sorted(set(frames) | set(self._old))
        self._next = 0
        self._writer = None
        self._old_reader = None

    def _display_pixels(self, image: Image) -> np.ndarray:
        out = images.from_working(image, self.p.colorspace or image.colorspace, alpha="straight",
                                  display=self.p.display or None, view=self.p.view,
                                  config=self.p.ocio_config or None)
        if out.channels[:3] != ("R", "G", "B"):
            raise InputError(f"{self.node_name}: a movie needs R, G, B channels, got {out.channels}")
        n = 4 if out.channels[3:4] == ("A",) and self.p.codec == "prores" else 3
        return out.pixels[..., :n]

    def _add_old(self, t: int) -> None:
        if t not in self._old:
            raise InputError(f"{self.p.path}: frame {t} is neither rendered nor in the existing movie; "
                             "render the whole range (or use --force)")
        if self._old_reader is None:
            self._old_reader = video.MovieReader(self.p.path)
            self._old_frames = sorted(self._old)
        if self._old_reader.frame_count != len(self._old_frames):
            raise InputError(f"{self.p.path}: the existing movie has {self._old_reader.frame_count} frames but records "
                             f"{len(self._old_frames)}; render the whole range with --force")
        self._writer.add(self._old_reader.read(self._old_frames.index(t)))
        self._fps[t] = self._old[t]

    def write(self, t, *, fingerprint, image):
        pixels = self._display_pixels(image)
        if self._writer is None:
            rate = self.p.rate or self.rate
            self._writer = video.MovieWriter(self.p.path, rate=rate, codec=self.p.codec, crf=self.p.crf,
                                             prores_profile=self.p.prores_profile)
        while self._next < len(self._targets) and self._targets[self._next] < t:
            self._add_old(self._targets[self._next])
            self._next += 1
        self._writer.add(pixels)
        self._fps[t] = fingerprint
        provenance.header(self, t, image, fingerprint)
        while self._next < len(self._targets) and self._targets[self._next] <= t:
            self._next += 1
        return []

    def finish(self, frames):
        if self._writer is None:
            return provenance.finish(self, frames)
        try:
            while self._next < len(self._targets):
                self._add_old(self._targets[self._next])
                self._next += 1
            order = sorted(self._fps)
            if order != list(range(order[0], order[-1] + 1)):
                log.warning("%s: the movie's frames %s are not contiguous", self.p.path, format_frame_list(order))
            self._writer.set_metadata(video.METADATA_KEY, video.encode_fingerprints(self._fps))
            path = self._writer.close()
        except BaseException:
            self._writer.abort()
            self._writer = None
            raise
        finally:
            if self._old_reader is not None:
                self._old_reader.close()
                self._old_reader = None
        self._writer = None
        self._old = {}
        return [str(path)] + provenance.finish(self, frames, [str(path)])  # signs the movie, writes the manifest
