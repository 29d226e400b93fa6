"""Grain and plate-integration benchmark: ms/frame of each operation at HD and 4K, and grain-statistics quality.

Timed cases (``cases(config)``, measured by :mod:`benchmarks.harness`, one process per case), on a
synthetic scene-linear plate (gradients, texture, HDR highlights, film-like grain), a premultiplied RGBA
element with a soft matte and a depth pass:

* ``grain_measure`` (one frame), ``grain_regrain``, ``grain_degrain``, ``grain_match`` (measure the plate
  and regrain the element, as the MatchGrain stage does per frame without pooling);
* ``light_wrap``, ``edge_blend``;
* ``defocus_r8`` (disc), ``defocus_r24_hex`` (hexagonal bokeh), ``depth_defocus`` (12 slices, up to 16 px);
* ``haze``;
* ``lens_remove`` / ``lens_apply`` (per frame, pixel maps cached as in a render) and ``lens_apply_maps``
  (building the inverse maps for a new size or lens: the first frame's extra cost).

Quality figures (``report(config)``):

* ``grain_synthetic``: plates with known grain (white; film-like, luminance dependent, Gaussian
  correlated; coarse with correlated channels). For each: the measurement against the truth (largest
  relative std error over bands and channels, correlation-length error), then a clean element regrained
  with the measured profile and re-measured on the plate's bands — the noise-statistics distance:
  mean and largest ``|log(std_regrained / std_plate)|``, correlation-length ratio, channel-correlation
  difference, and the log-spectral distance (RMS of the dB difference of the radial power spectra);
  degrain: grain left (fraction of the grain's RMS) and error against the clean plate.
* ``grain_eval`` (with ``COMPOSITE_EVAL_DATA``): the Tears of Steel green-screen plate: trusted bands,
  grain level on the screen, correlation length, and the regrain/re-measure distance on a smooth element.

Run by hand::

    .venv/bin/python -m benchmarks --suite integrate [--quick]
    .venv/bin/python benchmarks/suite_integrate.py [--quick] [--json out.json]   # standalone
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import cv2  # noqa: E402

from composite.color import grain as g  # noqa: E402
from composite.integrate import defocus as dfm  # noqa: E402
from composite.integrate import lens as lensm  # noqa: E402
from composite.integrate.edge_blend import edge_blend  # noqa: E402
from composite.integrate.haze import haze  # noqa: E402
from composite.integrate.lightwrap import light_wrap  # noqa: E402


def correlated_noise(rng: np.random.Generator, height: int, width: int, sigma: float, rho: float = 0.0):
    white = rng.standard_normal((height, width, 3)).astype(np.float32)
    if rho:
        cov = np.full((3, 3), rho) + (1 - rho) * np.eye(3)
        white = white @ np.linalg.cholesky(cov).T.astype(np.float32)
    n = cv2.GaussianBlur(white, (0, 0), sigma) if sigma > 0 else white
    return n / n.std(axis=(0, 1))


def synthetic_scene(width: int, height: int, seed: int = 0):
    """(plate RGB with grain, element RGBA premultiplied, depth) float32, ACEScg-like values."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    yy /= height
    xx /= width
    tex = (0.5 + 0.5 * np.sin(40 * xx) * np.cos(25 * yy)).astype(np.float32)
    clean = np.stack([0.03 + 0.5 * xx, 0.05 + 0.3 * (1 - yy) * tex, 0.08 + 0.4 * yy], -1).astype(np.float32)
    clean[: height // 10, width // 2: width // 2 + width // 20] = 20.0            # a highlight
    lum = g.luminance(clean)
    amp = (0.04 * np.maximum(lum, 1e-4) ** 0.6)[..., None] * np.array([1.0, 0.8, 1.3], np.float32)
    plate = (clean + amp * correlated_noise(rng, height, width, 1.0)).astype(np.float32)
    r = np.hypot(xx - 0.5, yy - 0.55)
    alpha = np.clip((0.3 - r) * 40.0, 0.0, 1.0).astype(np.float32)
    elem = np.concatenate([np.stack([0.4 + 0 * xx, 0.3 + 0.1 * yy, 0.2 + 0 * xx], -1) * alpha[..., None],
                           alpha[..., None]], -1).astype(np.float32)
    depth = (2.0 + 50.0 * (1 - yy) ** 2).astype(np.float32)
    return plate, elem, depth


LENS = dict(k1=-0.08, k2=0.01, p1=0.0005)


def _setup(op: str, width: int, height: int):
    plate, elem, depth = synthetic_scene(width, height)
    if op == "grain_measure":
        return lambda i: g.measure_grain(plate)
    profile = g.measure_grain(plate)
    if op == "grain_regrain":
        return lambda i: g.regrain(elem, profile, rng=np.random.default_rng(i))
    if op == "grain_degrain":
        return lambda i: g.degrain(plate, profile)
    if op == "grain_match":
        return lambda i: g.regrain(elem, g.measure_grain(plate), rng=np.random.default_rng(i))
    if op == "light_wrap":
        return lambda i: light_wrap(elem, plate, size=16.0, intensity=0.5)
    if op == "edge_blend":
        return lambda i: edge_blend(elem, plate, size=2.0)
    if op == "defocus_r8":
        return lambda i: dfm.defocus(plate, radius=8.0)
    if op == "defocus_r24_hex":
        return lambda i: dfm.defocus(plate, radius=24.0, blades=6)
    if op == "depth_defocus":
        return lambda i: dfm.depth_defocus(plate, depth, focus=4.0, size=10.0, max_radius=16.0, layers=12)
    if op == "haze":
        return lambda i: haze(plate, depth, density=0.03, color=(0.6, 0.65, 0.7))
    if op == "lens_remove":
        return lambda i: lensm.remove_distortion(plate, **LENS)
    if op == "lens_apply":
        return lambda i: lensm.apply_distortion(plate, **LENS)
    if op == "lens_apply_maps":
        def step(i):
            lensm._maps.cache_clear()
            return lensm.lens_maps(width, height, direction="apply", **LENS)
        return step
    raise KeyError(op)


OPS = ("grain_measure", "grain_regrain", "grain_degrain", "grain_match", "light_wrap", "edge_blend", "defocus_r8",
       "defocus_r24_hex", "depth_defocus", "haze", "lens_remove", "lens_apply", "lens_apply_maps")


def cases(config):
    from benchmarks.harness import op_cases

    return op_cases(OPS, _setup, config.sizes, kind="function", name="{op}_{w}x{h}")


# -- quality ---------------------------------------------------------------------------------------
def _spectral_distance(a: g.GrainProfile, b: g.GrainProfile) -> float:
    """RMS over channels and frequencies up to Nyquist of the dB difference of the radial power spectra."""
    diffs = []
    for c in range(len(a.channels)):
        sa, sb = a.radial_spectrum(c), b.radial_spectrum(c)
        n = min(sa.size, sb.size, a.tile + 1)
        ok = (sa[:n] > 1e-6) & (sb[:n] > 1e-6)
        diffs.append(10 * np.log10(sa[:n][ok] / sb[:n][ok]))
    d = np.concatenate(diffs)
    return float(np.sqrt(np.mean(d ** 2)))


def _grain_case(name: str, sigma: float, rho: float, exponent: float, size: int = 512) -> dict:
    rng = np.random.default_rng(7)
    levels = 2.0 ** np.arange(-6, 2, dtype=np.float32)
    rows = np.repeat(levels, size // levels.size)
    clean = np.broadcast_to(rows[:, None, None] * np.array([1.0, 1.0, 1.0], np.float32), (size, size, 3)).copy()
    clean *= np.linspace(0.95, 1.05, size, dtype=np.float32)[None, :, None]
    lum = g.luminance(clean)
    scale = np.array([1.0, 0.8, 1.3], np.float32)
    truth_fn = lambda L: 0.03 * np.asarray(L, np.float64)[..., None] ** exponent * scale  # noqa: E731
    plate = (clean + truth_fn(lum).astype(np.float32) * correlated_noise(rng, size, size, sigma, rho)).astype(
        np.float32)
    t0 = time.perf_counter()
    prof = g.measure_grain(plate)
    measure_ms = (time.perf_counter() - t0) * 1e3
    truth = truth_fn(2.0 ** np.asarray(prof.band_centers))
    rel = np.abs(np.asarray(prof.std) / truth - 1)
    if sigma > 0:
        k = cv2.getGaussianKernel(int(round(sigma * 8 + 1)) | 1, sigma)[:, 0]
        ac = np.correlate(k, k, "full")
        ac = ac[ac.size // 2:] / ac.max()
        i = int(np.flatnonzero(ac < 0.5)[0])
        true_len = i - 1 + (ac[i - 1] - 0.5) / (ac[i - 1] - ac[i])
    else:
        true_len = 0.5
    element = clean * np.linspace(1.05, 0.95, size, dtype=np.float32)[:, None, None]
    grainy = g.regrain(element, prof, seed=3)
    again = g.measure_grain(grainy, band_edges=prof.band_edges)
    trusted = (np.asarray(prof.counts) > 0) & (np.asarray(again.counts) > 0)
    logr = np.abs(np.log(np.asarray(again.std)[trusted] / np.asarray(prof.std)[trusted]))
    dg = g.degrain(plate, prof)
    grain_rms = float(np.sqrt(((plate - clean) ** 2).mean()))
    return {
        "case": name,
        "measure_ms_512": round(measure_ms, 1),
        "measured_std_max_rel_err": round(float(rel.max()), 4),
        "measured_std_mean_rel_err": round(float(rel.mean()), 4),
        "corr_length_true": round(float(true_len), 3),
        "corr_length_measured": [round(v, 3) for v in prof.correlation_length],
        "channel_corr_measured": round(float(np.mean(np.asarray(prof.channel_correlation)[np.triu_indices(3, 1)])),
                                       3),
        "channel_corr_true": rho,
        "regrain_log_std_dist_mean": round(float(logr.mean()), 4),
        "regrain_log_std_dist_max": round(float(logr.max()), 4),
        "regrain_corr_length_ratio": [round(a / b, 3) for a, b in zip(again.correlation_length,
                                                                      prof.correlation_length)],
        "regrain_channel_corr_diff": round(float(np.abs(np.asarray(again.channel_correlation)
                                                        - np.asarray(prof.channel_correlation)).max()), 4),
        "regrain_log_spectral_distance_db": round(_spectral_distance(again, prof), 3),
        "degrain_grain_left_fraction": round(float(np.sqrt(((dg - clean) ** 2).mean())) / grain_rms, 3),
    }


def grain_synthetic() -> list[dict]:
    return [_grain_case("white", 0.0, 0.0, 0.5), _grain_case("film_sigma1.2", 1.2, 0.0, 0.6),
            _grain_case("coarse_sigma2_rho0.5", 2.0, 0.5, 0.7)]


def grain_eval(folder: Path) -> dict:
    from composite.io.images import read_image, to_working

    plate = np.ascontiguousarray(to_working(read_image(folder / "greenscreen" / "unity_keyer_scientists.png"),
                                            "ACEScg").pixels[..., :3])
    prof = g.measure_grain(plate)
    h, w = plate.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    elem = np.stack([0.05 + 0.4 * xx / w, 0.08 + 0.3 * yy / h, 0.3 - 0.1 * xx / w], -1).astype(np.float32)
    again = g.measure_grain(g.regrain(elem, prof, seed=1), band_edges=prof.band_edges)
    both = (np.asarray(prof.counts) > 0) & (np.asarray(again.counts) > 0)
    logr = np.abs(np.log(np.asarray(again.std)[both] / np.asarray(prof.std)[both])) if both.any() else np.zeros(1)
    return {
        "plate": "greenscreen/unity_keyer_scientists.png (8-bit sRGB, read to ACEScg)",
        "trusted_bands": int((np.asarray(prof.counts) > 0).sum()),
        "tiles_per_band": list(prof.counts),
        "band_luminance": [round(2.0 ** c, 4) for c in prof.band_centers],
        "std_G_per_band": [round(row[1], 5) for row in prof.std],
        "corr_length": [round(v, 2) for v in prof.correlation_length],
        "regrain_log_std_dist_mean": round(float(logr.mean()), 4),
        "regrain_bands_compared": int(both.sum()),
    }


def report(config) -> dict:
    out: dict = {"grain_synthetic": grain_synthetic()}
    root = os.environ.get("COMPOSITE_EVAL_DATA")
    if root and (Path(root) / "greenscreen").is_dir():
        out["grain_eval"] = grain_eval(Path(root))
    else:
        out["grain_eval"] = "skipped: COMPOSITE_EVAL_DATA is not set"
    rows = ["| case | std err max | corr len true / measured | regrain log-std dist mean / max | "
            "spectral dist (dB) | degrain grain left |", "|---|---|---|---|---|---|"]
    for r in out["grain_synthetic"]:
        rows.append(f"| {r['case']} | {r['measured_std_max_rel_err']:.3f} | {r['corr_length_true']:.2f} / "
                    f"{np.mean(r['corr_length_measured']):.2f} | {r['regrain_log_std_dist_mean']:.3f} / "
                    f"{r['regrain_log_std_dist_max']:.3f} | {r['regrain_log_spectral_distance_db']:.2f} | "
                    f"{r['degrain_grain_left_fraction']:.2f} |")
    out["markdown"] = "### Grain statistics (synthetic plates with known grain)\n\n" + "\n".join(rows)
    return out


# -- standalone ----------------------------------------------------------------------------------
def run(quick: bool = False) -> dict:
    """Time every op at HD and 4K (quick: 640x360 and 1280x720) in this process and gather the quality figures."""
    from benchmarks.harness import Config, time_in_process

    config = Config.make(quick=quick)
    timings = {name: round(w, 2) for name, (w, _) in time_in_process(cases(config), config.frames).items()}
    return {"ms_per_frame": timings, "quality": report(config)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--json", help="write the results here")
    args = ap.parse_args(argv)
    res = run(quick=args.quick)
    text = json.dumps(res, indent=2)
    if args.json:
        Path(args.json).write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
