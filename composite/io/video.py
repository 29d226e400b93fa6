"""Movies through PyAV (FFmpeg): frame-accurate reading by frame number, review-movie writing.

Reading
-------
:class:`MovieReader` opens a movie once, indexes the presentation timestamps of its video packets
(demuxing only, no decoding), and returns frame ``i`` (0-based, in presentation order) by seeking to
the nearest earlier keyframe and decoding forward; reading the next frame continues the decode without
seeking. Readers are cached per process (:func:`movie_reader`), so a render reads each movie through
one open decoder.

Pixels: Y'CbCr → R'G'B' with the stream's own matrix and range (BT.709 when the stream does not say
and the frame is at least 720 lines high, BT.601 below, as players do), decoded to 16 bits per channel
and normalised to float32 in [0, 1]. VP8/VP9 streams with an alpha channel (WebM ``alpha_mode``) are
decoded with libvpx so the alpha comes through (straight alpha). The colour space defaults to
``Gamma 2.4 Encoded Rec.709`` (BT.1886-encoded Rec.709, what video is graded for).

Writing
-------
:func:`write_movie` encodes display-referred frames as H.264 (libx264, yuv420p, BT.709 tags) or
ProRes (prores_ks, 422 HQ 10-bit or 4444 with alpha) into a temporary file, renamed into place when
complete. Odd frame sizes are padded by repeating the last row/column (H.264 4:2:0 needs even sizes).
"""

from __future__ import annotations

import bisect
import collections
import json
import logging
import os
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np

from ..core.errors import InputError
from ..core.image import Image
from ..core.state import AlphaState

log = logging.getLogger(__name__)

MOVIE_EXTENSIONS = (".mov", ".mp4", ".m4v", ".mkv", ".webm", ".avi", ".mxf", ".mpg", ".mpeg", ".ts", ".mts",
                    ".gif")
#: Colour space of decoded video when the caller does not say.
VIDEO_SPACE = "Gamma 2.4 Encoded Rec.709"
METADATA_KEY = "comment"
_ALPHA_DECODERS = {"vp9": "libvpx-vp9", "vp8": "libvpx"}


def is_movie(path: str | os.PathLike) -> bool:
    return os.path.splitext(os.fspath(path))[1].lower() in MOVIE_EXTENSIONS


@dataclass(frozen=True)
class MovieInfo:
    """What a movie file holds (video stream 0)."""

    path: str
    container: str
    codec: str
    width: int
    height: int
    rate: Fraction
    frame_count: int
    duration_s: float
    pix_fmt: str
    has_alpha: bool
    bit_depth: int
    timecode: str | None = None
    color: dict = field(default_factory=dict)
    metadata: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {"path": self.path, "container": self.container, "codec": self.codec, "width": self.width,
                "height": self.height, "rate": f"{self.rate.numerator}/{self.rate.denominator}",
                "fps": round(float(self.rate), 6), "frame_count": self.frame_count,
                "duration_s": round(self.duration_s, 6), "pix_fmt": self.pix_fmt, "has_alpha": self.has_alpha,
                "bit_depth": self.bit_depth, "timecode": self.timecode, "color": self.color,
                "metadata": self.metadata}


def _open_container(path: str):
    if not os.path.isfile(path):
        raise InputError(f"{path}: movie not found" if not os.path.exists(path) else f"{path}: not a file")
    try:
        container = av.open(path)
    except Exception as exc:
        raise InputError(f"{path}: cannot open movie ({exc}); the file may be truncated or not a movie") from None
    if not container.streams.video:
        container.close()
        raise InputError(f"{path}: has no video stream")
    return container


def _format_has_alpha(pix_fmt: str) -> bool:
    return pix_fmt.startswith(("yuva", "rgba", "bgra", "argb", "abgr", "gbrap", "ya", "rgba64", "bgra64"))


_COLOR_NAMES = {
    "colorspace": {0: "rgb", 1: "bt709", 2: "unspecified", 4: "fcc", 5: "bt470bg", 6: "smpte170m", 7: "smpte240m",
                   8: "ycgco", 9: "bt2020nc", 10: "bt2020c"},
    "color_range": {0: "unspecified", 1: "tv (limited)", 2: "pc (full)"},
    "color_primaries": {1: "bt709", 2: "unspecified", 4: "bt470m", 5: "bt470bg", 6: "smpte170m", 7: "smpte240m",
                        9: "bt2020", 11: "smpte431 (DCI-P3)", 12: "smpte432 (P3-D65)"},
    "color_trc": {1: "bt709", 2: "unspecified", 4: "gamma22", 5: "gamma28", 6: "smpte170m", 8: "linear",
                  13: "iec61966-2-1 (sRGB)", 14: "bt2020-10", 15: "bt2020-12", 16: "smpte2084 (PQ)",
                  18: "arib-std-b67 (HLG)"},
}


def _color_name(kind: str, value) -> str | None:
    if value is None:
        return None
    try:
        code = int(value)
    except (TypeError, ValueError):
        return str(getattr(value, "name", value))
    return _COLOR_NAMES[kind].get(code, str(code))


class MovieReader:
    """Frame-accurate random access to the video frames of one movie file.

    Parameters
    ----------
    path : path
    threads : int
        Decoder threads (0: FFmpeg's choice).

    Example
    -------
    >>> reader = MovieReader("plate.mov")  # doctest: +SKIP
    >>> rgb = reader.read(41)  # (H, W, 3) float32, frame 41 (0-based)  # doctest: +SKIP
    """

    def __init__(self, path: str | os.PathLike, *, threads: int = 0):
        self.path = os.fspath(path)
        self._lock = threading.Lock()
        self._threads = threads
        container = _open_container(self.path)
        try:
            stream = container.streams.video[0]
            self.codec = stream.codec_context.name
            meta = {**dict(container.metadata), **dict(stream.metadata)}
            alpha_mode = str(meta.get("alpha_mode", meta.get("ALPHA_MODE", "0")))
            self.has_alpha = alpha_mode == "1" or _format_has_alpha(stream.codec_context.pix_fmt or "")
            self.time_base = stream.time_base
            rate = stream.average_rate or stream.guessed_rate or stream.base_rate
            self.rate = Fraction(rate.numerator, rate.denominator) if rate else Fraction(24)
            self.width, self.height = stream.codec_context.width, stream.codec_context.height
            self.pix_fmt = stream.codec_context.pix_fmt or ""
            pts = []
            for packet in container.demux(stream):
                if packet.pts is not None and packet.size > 0:
                    pts.append(int(packet.pts))
        except InputError:
            raise
        except Exception as exc:
            raise InputError(f"{self.path}: cannot read movie packets ({exc}); the file may be corrupt") from None
        finally:
            container.close()
        if not pts:
            raise InputError(f"{self.path}: the video stream has no frames")
        self.pts = sorted(set(pts))
        self.frame_count = len(self.pts)
        self.metadata = {str(k): str(v) for k, v in meta.items()}
        self.timecode = self.metadata.get("timecode")
        self._container = None
        self._decoder = None
        self._frames = None
        self._next_index: int | None = None

    # -- decoding ---------------------------------------------------------------------------------
    def _start(self, target_pts: int) -> None:
        if self._container is None:
            self._container = _open_container(self.path)
            self._stream = self._container.streams.video[0]
            if self._threads:
                self._stream.codec_context.thread_count = self._threads
            self._stream.thread_type = "AUTO"
            self._decoder = None
            if self.has_alpha and self.codec in _ALPHA_DECODERS:
                self._decoder = av.CodecContext.create(_ALPHA_DECODERS[self.codec], "r")
        self._container.seek(target_pts, stream=self._stream, backward=True, any_frame=False)
        if self._decoder is not None:
            self._decoder.flush_buffers()
            self._frames = self._decode_with(self._decoder)
        else:
            self._stream.codec_context.flush_buffers()
            self._frames = self._container.decode(self._stream)

    def _decode_with(self, decoder):
        for packet in self._container.demux(self._stream):
            yield from decoder.decode(packet)
        yield from decoder.decode(None)

    def _frame_pts(self, frame) -> int | None:
        return frame.pts if frame.pts is not None else getattr(frame, "best_effort_timestamp", None)

    def read_frame(self, index: int):
        """The decoded ``av.VideoFrame`` of frame ``index`` (0-based)."""
        if not 0 <= index < self.frame_count:
            raise InputError(f"{self.path}: frame index {index} is outside the movie (0-{self.frame_count - 1})")
        target = self.pts[index]
        with self._lock:
            if self._next_index != index:
                self._start(target)
            try:
                for frame in self._frames:
                    pts = self._frame_pts(frame)
                    if pts is None:
                        continue
                    if pts >= target:
                        if pts != target:  # the decoder skipped the frame we need; fall back to exact search
                            pos = bisect.bisect_left(self.pts, pts)
                            raise InputError(f"{self.path}: frame {index} (pts {target}) could not be decoded; "
                                             f"the decoder went on at frame {pos}")
                        self._next_index = index + 1
                        return frame
            except InputError:
                self._next_index = None
                raise
            except Exception as exc:
                self._next_index = None
                raise InputError(f"{self.path}: cannot decode frame {index} ({exc}); the file may be corrupt") from None
            self._next_index = None
            raise InputError(f"{self.path}: frame {index} is missing from the stream (truncated file?)")

    def read(self, index: int) -> np.ndarray:
        """Frame ``index`` (0-based) as ``(H, W, 3)`` or ``(H, W, 4)`` float32 R'G'B'(A) in [0, 1]."""
        frame = self.read_frame(index)
        return frame_to_array(frame, alpha=self.has_alpha)

    def info(self) -> MovieInfo:
        bit_depth = 10 if "10" in self.pix_fmt else 12 if "12" in self.pix_fmt else 16 if "16" in self.pix_fmt else 8
        container = _open_container(self.path)
        try:
            cc = container.streams.video[0].codec_context
            color = {k: _color_name(k, getattr(cc, k, None))
                     for k in ("colorspace", "color_range", "color_primaries", "color_trc")}
            fmt = container.format.name
        finally:
            container.close()
        return MovieInfo(self.path, fmt, self.codec, self.width, self.height, self.rate, self.frame_count,
                         float(self.frame_count / self.rate) if self.rate else 0.0, self.pix_fmt, self.has_alpha,
                         bit_depth, self.timecode, color, self.metadata)

    def close(self) -> None:
        with self._lock:
            if self._container is not None:
                self._container.close()
            self._container = None
            self._frames = None
            self._next_index = None


def frame_to_array(frame, *, alpha: bool = False) -> np.ndarray:
    """A decoded frame → float32 R'G'B'(A) in [0, 1] using the stream's matrix and range."""
    h = frame.height
    cs = int(getattr(frame, "colorspace", 2) or 2)
    if cs in (0, 2, 3):  # RGB, unspecified, reserved
        cs = 1 if h >= 720 else 5
    elif cs not in (1, 4, 5, 6, 7, 9, 10):
        cs = 1
    if cs == 6:  # SMPTE 170M = BT.601
        cs = 5
    if cs == 10:
        cs = 9
    rng = int(getattr(frame, "color_range", 0) or 0)
    src_range = 2 if rng == 2 else 1
    is_rgb = frame.format.name.startswith(("rgb", "bgr", "gbr", "argb", "abgr"))
    has_a = alpha and _format_has_alpha(frame.format.name)
    fmt = "rgba64le" if has_a else "rgb48le"
    from av.video.reformatter import Interpolation

    if is_rgb:
        out = frame.reformat(format=fmt)
    else:
        out = frame.reformat(format=fmt, src_colorspace=cs, dst_colorspace=cs, src_color_range=src_range,
                             dst_color_range=2, interpolation=Interpolation.BILINEAR | Interpolation.ACCURATE_RND)
    arr = out.to_ndarray()
    rgb = arr.astype(np.float32) * np.float32(1.0 / 65535.0)
    if has_a:  # the alpha code of the source, k / (2**bits - 1): swscale shifts it rather than scaling
        name = frame.format.name
        bits = 16 if "16" in name else 12 if "12" in name else 10 if "10" in name else 8
        codes = arr[..., 3] >> np.uint16(16 - bits)
        rgb[..., 3] = codes.astype(np.float32) * np.float32(1.0 / ((1 << bits) - 1))
    return rgb


_readers: collections.OrderedDict[tuple, MovieReader] = collections.OrderedDict()
_readers_lock = threading.Lock()
MAX_OPEN_READERS = 4


def movie_reader(path: str | os.PathLike) -> MovieReader:
    """A cached :class:`MovieReader` for ``path`` (re-opened when the file changes)."""
    path = os.path.abspath(os.fspath(path))
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise InputError(f"{path}: movie not found") from None
    key = (path, st.st_size, st.st_mtime_ns)
    with _readers_lock:
        reader = _readers.get(key)
        if reader is not None:
            _readers.move_to_end(key)
            return reader
    reader = MovieReader(path)
    with _readers_lock:
        _readers[key] = reader
        while len(_readers) > MAX_OPEN_READERS:
            _, old = _readers.popitem(last=False)
            old.close()
    return reader


def probe_movie(path: str | os.PathLike) -> MovieInfo:
    """Codec, size, rate, frame count, pixel format, timecode and colour tags of a movie."""
    return movie_reader(path).info()


def read_movie_frame(path: str | os.PathLike, index: int, *, colorspace: str | None = None) -> Image:
    """Frame ``index`` (0-based) of a movie as an Image (straight alpha when the movie has alpha).

    ``colorspace``: the movie's colour space (default :data:`VIDEO_SPACE`).
    """
    reader = movie_reader(path)
    pixels = reader.read(index)
    channels = ("R", "G", "B", "A") if pixels.shape[2] == 4 else ("R", "G", "B")
    meta = {"file": os.fspath(path), "video:frame_index": index, "video:codec": reader.codec,
            "video:pix_fmt": reader.pix_fmt, "video:rate": f"{reader.rate.numerator}/{reader.rate.denominator}",
            "colorspace_source": "given" if colorspace else "default for video (BT.1886 Rec.709)"}
    if reader.timecode:
        meta["video:timecode"] = reader.timecode
    return Image(np.ascontiguousarray(pixels), channels, colorspace=colorspace or VIDEO_SPACE,
                 alpha=AlphaState.STRAIGHT if len(channels) == 4 else AlphaState.OPAQUE, metadata=meta)


# -- writing -------------------------------------------------------------------------------------

CODECS = ("h264", "prores")


def prores_available() -> bool:
    return "prores_ks" in av.codecs_available


def _pad_even(arr: np.ndarray) -> np.ndarray:
    h, w = arr.shape[:2]
    if h % 2:
        arr = np.concatenate([arr, arr[-1:]], axis=0)
    if w % 2:
        arr = np.concatenate([arr, arr[:, -1:]], axis=1)
    return arr


class MovieWriter:
    """Encode display-referred frames one at a time into a review movie; the file appears, complete,
    under its final name only when :meth:`close` succeeds (a temporary name until then).

    Parameters
    ----------
    path : path
        ``.mp4``/``.mov`` (H.264) or ``.mov`` (ProRes).
    rate : float or Fraction
        Frames per second (23.976 → 24000/1001).
    codec : {"h264", "prores"}
        H.264 (libx264, yuv420p, crf ``crf``) or ProRes (prores_ks; profile 3 = 422 HQ, 4 = 4444, used
        automatically for frames with alpha).
    metadata : mapping
        Container metadata (e.g. the frames' fingerprints in the ``comment`` tag).

    Frames: ``(H, W, 3)`` (or ``(H, W, 4)``, alpha kept by ProRes 4444 only) float32 in [0, 1]
    (clipped) or uint8/uint16, display-referred R'G'B', all the same size.
    """

    def __init__(self, path: str | os.PathLike, *, rate: float | Fraction = 24, codec: str = "h264", crf: int = 18,
                 preset: str = "medium", prores_profile: int = 3, metadata: Mapping[str, str] | None = None,
                 timecode: str | None = None):
        if codec not in CODECS:
            raise InputError(f"unknown movie codec {codec!r}; allowed: {', '.join(CODECS)}")
        if codec == "prores" and not prores_available():
            raise InputError("this FFmpeg build has no ProRes encoder (prores_ks); write codec h264")
        self.path = Path(path)
        ext = self.path.suffix.lower()
        if codec == "prores" and ext not in (".mov", ".mkv"):
            raise InputError(f"{path}: ProRes goes in a .mov file")
        if ext not in (".mov", ".mp4", ".m4v", ".mkv"):
            raise InputError(f"{path}: review movies are written as .mp4 or .mov")
        self.rate = rate if isinstance(rate, Fraction) else Fraction(rate).limit_denominator(1001)
        self.codec, self.crf, self.preset, self.prores_profile = codec, int(crf), preset, int(prores_profile)
        self.metadata = dict(metadata or {})
        if timecode:
            self.metadata["timecode"] = timecode
        self.count = 0
        self._stream = None
        self._size: tuple[int, int] | None = None
        self.path.parent.mkdir(parents=True, exist_ok=True)
        from .atomic import temp_path_for

        self._tmp = temp_path_for(self.path)
        try:
            self._container = av.open(str(self._tmp), mode="w")
            for k, v in self.metadata.items():
                self._container.metadata[k] = str(v)
        except Exception as exc:
            self._cleanup()
            raise InputError(f"{path}: cannot create movie ({exc})") from None

    def _open_stream(self, arr16: np.ndarray) -> None:
        alpha = arr16.shape[2] == 4
        if self.codec == "h264":
            stream = self._container.add_stream("libx264", rate=self.rate)
            stream.pix_fmt = "yuv420p"
            stream.options = {"crf": str(self.crf), "preset": self.preset,
                              "x264-params": "colorprim=bt709:transfer=bt709:colormatrix=bt709"}
        else:
            stream = self._container.add_stream("prores_ks", rate=self.rate)
            profile = 4 if alpha else self.prores_profile
            stream.pix_fmt = "yuva444p10le" if alpha else ("yuv444p10le" if profile >= 4 else "yuv422p10le")
            stream.options = {"profile": str(profile), "vendor": "apl0"}
        stream.width, stream.height = arr16.shape[1], arr16.shape[0]
        cc = stream.codec_context
        for attr in ("color_primaries", "color_trc", "colorspace"):
            try:
                setattr(cc, attr, 1)  # BT.709
            except Exception:  # pragma: no cover - older PyAV
                pass
        try:
            cc.color_range = 1  # limited (MPEG) range
        except Exception:  # pragma: no cover
            pass
        self._stream = stream
        self._size = arr16.shape[:2]

    def add(self, frame: np.ndarray) -> None:
        """Encode the next frame."""
        arr = np.asarray(frame)
        if arr.ndim != 3 or arr.shape[2] not in (3, 4):
            raise InputError(f"{self.path}: frames must be (H, W, 3) or (H, W, 4), got {arr.shape}")
        if arr.dtype == np.uint8:
            arr16 = arr.astype(np.uint16) * np.uint16(257)
        elif arr.dtype == np.uint16:
            arr16 = arr
        else:
            arr16 = np.round(np.clip(arr, 0.0, 1.0) * 65535.0).astype(np.uint16)
        if self.codec == "h264" and arr16.shape[2] == 4:
            arr16 = arr16[..., :3]
        arr16 = np.ascontiguousarray(_pad_even(arr16))
        try:
            if self._stream is None:
                self._open_stream(arr16)
            if arr16.shape[:2] != self._size:
                raise InputError(f"{self.path}: frame {self.count} is {arr16.shape[1]}x{arr16.shape[0]}, "
                                 f"the movie is {self._size[1]}x{self._size[0]}")
            alpha = arr16.shape[2] == 4
            vf = av.VideoFrame.from_ndarray(arr16, format="rgba64le" if alpha else "rgb48le")
            vf = vf.reformat(format=self._stream.pix_fmt, src_colorspace=1, dst_colorspace=1, dst_color_range=1)
            vf.pts = self.count
            vf.time_base = Fraction(1) / self.rate
            for packet in self._stream.encode(vf):
                self._container.mux(packet)
        except InputError:
            self.abort()
            raise
        except Exception as exc:
            self.abort()
            raise InputError(f"{self.path}: cannot encode frame {self.count} ({exc})") from None
        self.count += 1

    def set_metadata(self, key: str, value: str) -> None:
        """Set a container tag; MP4/MOV write their tags at the end, so this works until :meth:`close`."""
        self.metadata[key] = str(value)
        self._container.metadata[key] = str(value)

    def close(self) -> Path:
        """Flush the encoder and move the movie into place."""
        if self._container is None:
            raise InputError(f"{self.path}: the movie writer is closed")
        try:
            if self._stream is None:
                raise InputError(f"{self.path}: no frames to write")
            for packet in self._stream.encode():
                self._container.mux(packet)
            self._container.close()
            self._container = None
            os.replace(self._tmp, self.path)
        except InputError:
            self.abort()
            raise
        except Exception as exc:
            self.abort()
            raise InputError(f"{self.path}: cannot finish movie ({exc})") from None
        return self.path

    def abort(self) -> None:
        """Drop the partial movie (the final name is left untouched)."""
        if self._container is not None:
            try:
                self._container.close()
            except Exception:  # pragma: no cover - closing a broken encoder
                pass
            self._container = None
        self._cleanup()

    def _cleanup(self) -> None:
        try:
            os.unlink(self._tmp)
        except FileNotFoundError:
            pass

    def __enter__(self) -> MovieWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def write_movie(path: str | os.PathLike, frames: Iterable[np.ndarray], *, rate: float | Fraction = 24,
                codec: str = "h264", crf: int = 18, preset: str = "medium", prores_profile: int = 3,
                metadata: Mapping[str, str] | None = None, timecode: str | None = None) -> Path:
    """Encode display-referred frames into a review movie, atomically (see :class:`MovieWriter`)."""
    writer = MovieWriter(path, rate=rate, codec=codec, crf=crf, preset=preset, prores_profile=prores_profile,
                         metadata=metadata, timecode=timecode)
    try:
        for frame in frames:
            writer.add(frame)
    except BaseException:
        writer.abort()
        raise
    return writer.close()


def read_movie_metadata(path: str | os.PathLike) -> dict[str, str]:
    """Container metadata of a movie ({} when it cannot be opened)."""
    try:
        container = av.open(os.fspath(path))
    except Exception:
        return {}
    try:
        return {str(k): str(v) for k, v in container.metadata.items()}
    finally:
        container.close()


def encode_fingerprints(fingerprints: Mapping[int, str]) -> str:
    """The frames' fingerprints as recorded in a movie's ``comment`` tag (JSON)."""
    from .sequence import format_frame_list

    frames = sorted(fingerprints)
    return json.dumps({"composite:frames": format_frame_list(frames),
                       "composite:fingerprints": [fingerprints[f] for f in frames]}, separators=(",", ":"))


def decode_fingerprints(text: str | None) -> dict[int, str]:
    """Inverse of :func:`encode_fingerprints` ({} for anything else)."""
    if not text:
        return {}
    try:
        import fileseq

        data: dict[str, Any] = json.loads(text)
        frames = [int(f) for f in fileseq.FrameSet(data["composite:frames"])]
        fps = [str(v) for v in data["composite:fingerprints"]]
        if len(frames) != len(fps):
            return {}
        return dict(zip(frames, fps))
    except (ValueError, KeyError, TypeError, AttributeError):
        return {}
    except Exception:  # fileseq parse errors
        return {}
