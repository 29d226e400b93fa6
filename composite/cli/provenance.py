"""``composite provenance``: verify signed media and sidecars, report a show, assemble and sign manifests.

::

    composite provenance verify PATH... [--json] [--require-trusted]
    composite provenance report TIMELINE_OR_DIR [--json] [--markdown OUT.md] [--sheet OUT.png]
                                [--annotate OUT.otio] [--rate FPS] [--no-checksums]
    composite provenance merge OUTPUT_OR_SIDECAR...
    composite provenance sign FILE [-o OUT] [--manifest SIDECAR] [--source-type TERM]
                                [--ingredient PATH ...] [--generated-ingredient PATH ...]

Exit codes: 0 everything checks out; 2 a file failed verification, a manifest has errors (checksum
mismatches, unknown model cards), the signing configuration is missing, or the input is bad.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from ..core.errors import InputError


def register(sub) -> None:
    prov = sub.add_parser("provenance", help="verify, report and sign AI provenance (C2PA, manifests)",
                          description="AI provenance: C2PA Content Credentials of review media, sidecar manifests "
                                      "of EXR renders, per-show reports of generated pixels.")
    psub = prov.add_subparsers(dest="provenance_command", metavar="ACTION")
    psub.required = True

    v = psub.add_parser("verify", help="validate a signed file, an EXR against its sidecar, or a manifest",
                        description="Validate C2PA manifests of review media (PNG, JPEG, MP4, MOV) and print their "
                                    "assertions; check EXR frames and manifests against the checksums recorded "
                                    "in their sidecar manifests. Exit code 2 when anything fails.")
    v.add_argument("paths", nargs="+", metavar="PATH", help="file, manifest, sidecar folder, or folder of renders")
    v.add_argument("--json", action="store_true", help="print the results as JSON")
    v.add_argument("--require-trusted", action="store_true",
                   help="fail unless the signer chains to a configured trust anchor (COMPOSITE_C2PA_TRUST_ANCHORS)")
    v.set_defaults(func=cmd_verify)

    r = psub.add_parser("report", help="summarise a show: generated pixels per shot, models, coverage",
                        description="Summarise the provenance of every render under a folder, or of every clip "
                                    "of a timeline: shots with generated pixels, frames, mean and peak AI "
                                    "coverage, models. Checksums are verified on the way.")
    r.add_argument("location", metavar="TIMELINE_OR_DIR")
    r.add_argument("--json", action="store_true", help="print the report as JSON on stdout")
    r.add_argument("--markdown", metavar="OUT.md", help="write a Markdown report")
    r.add_argument("--sheet", metavar="OUT.png", help="write a thumbnail sheet (frame beside its coverage matte)")
    r.add_argument("--annotate", metavar="OUT.otio",
                   help="timeline input: write a copy whose clips carry their provenance summary")
    r.add_argument("--rate", type=float, default=None, help="frame rate of an EDL")
    r.add_argument("--no-checksums", dest="checksums", action="store_false",
                   help="compare output file sizes instead of their sha256 (fast look at a large show)")
    r.set_defaults(func=cmd_report)

    m = psub.add_parser("merge", help="assemble the shot manifest of an output from its chunk parts",
                        description="Merge the manifest parts that render chunks wrote (<stem>.<ext>.provenance/) "
                                    "into <stem>.<ext>.provenance.json, checking the output files.")
    m.add_argument("outputs", nargs="+", metavar="OUTPUT_OR_SIDECAR",
                   help="output path or pattern (renders/sh010.####.exr), or its sidecar folder")
    m.set_defaults(func=cmd_merge)

    s = psub.add_parser("sign", help="sign a review file (PNG, JPEG, MP4, MOV) with C2PA Content Credentials",
                        description="Embed a signed C2PA manifest: actions, digital source type, ingredients and a "
                                    "training-and-data-mining assertion set to notAllowed. The key and certificate "
                                    "come from COMPOSITE_C2PA_CERT / COMPOSITE_C2PA_KEY or ~/.config/composite/c2pa.toml.")
    s.add_argument("file")
    s.add_argument("-o", "--output", help="signed copy (default: sign in place)")
    s.add_argument("--manifest", help="provenance manifest (or sidecar folder, or EXR render pattern) the file was "
                                      "made from: its digital source type, plates and generators become the "
                                      "file's assertions and ingredients")
    s.add_argument("--source-type", help="IPTC digital source type (e.g. compositeWithTrainedAlgorithmicMedia) when "
                                         "no manifest is given")
    s.add_argument("--ingredient", action="append", default=[], help="a captured input (repeatable)")
    s.add_argument("--generated-ingredient", action="append", default=[], help="a generated input (repeatable)")
    s.set_defaults(func=cmd_sign)


def cmd_verify(args: argparse.Namespace) -> int:
    from ..provenance.verify import verify_path

    results = []
    for path in args.paths:
        results += verify_path(path, require_trusted=args.require_trusted)
    if args.json:
        json.dump([r.as_dict() for r in results], sys.stdout, indent=2, default=str)
        print()
    else:
        for r in results:
            print(r.text())
    return 0 if all(r.ok for r in results) else InputError.exit_code


def cmd_report(args: argparse.Namespace) -> int:
    from ..provenance import report as rp

    loc = args.location
    timeline = None
    if os.path.isfile(loc) and os.path.splitext(loc)[1].lower() in rp.TIMELINE_EXTENSIONS:
        rep, timeline, by_clip = rp.collect_timeline(loc, rate=args.rate, checksums=args.checksums)
    else:
        if args.annotate:
            raise InputError("--annotate needs a timeline (.otio, .edl ...) as input")
        rep = rp.collect(loc, rate=args.rate, checksums=args.checksums)
    if args.markdown:
        from ..io.atomic import write_text_atomic

        write_text_atomic(args.markdown, rp.to_markdown(rep))
        print(f"composite: wrote {args.markdown}", file=sys.stderr)
    if args.sheet:
        rp.thumbnail_sheet(rep, args.sheet)
        print(f"composite: wrote {args.sheet}", file=sys.stderr)
    if args.annotate and timeline is not None:
        import opentimelineio as otio

        from ..io.atomic import atomic_output

        n = rp.annotate_timeline(timeline, by_clip)
        with atomic_output(args.annotate) as tmp:
            otio.adapters.write_to_file(timeline, str(tmp))
        print(f"composite: wrote {args.annotate} ({n} clip(s) annotated)", file=sys.stderr)
    if args.json:
        sys.stdout.write(rp.to_json(rep))
    elif not args.markdown:
        sys.stdout.write(rp.to_markdown(rep))
    if not rep.ok:
        print(f"composite: error: {rep.totals['errors']} provenance error(s); see the report", file=sys.stderr)
        return InputError.exit_code
    return 0


def cmd_merge(args: argparse.Namespace) -> int:
    from ..provenance import manifest as mf

    bad = 0
    for out in args.outputs:
        data = mf.assemble(out, write=True)
        folder = mf.locate(out)
        where = folder.with_name(folder.name + ".json")
        errs = mf.errors(data)
        s = data.get("summary") or {}
        print(f"{where}: {s.get('frames', 0)} frame(s), {s.get('generated_frames', 0)} with generated pixels, "
              f"{len(errs)} error(s)")
        for e in errs:
            print(f"  error: {e.get('message')}")
        bad += bool(errs)
    return InputError.exit_code if bad else 0


def cmd_sign(args: argparse.Namespace) -> int:
    from ..provenance import c2pa_sign as cs
    from ..provenance import iptc
    from ..provenance import manifest as mf

    config = cs.SigningConfig.load().require()
    ingredients = [cs.Ingredient(label=f"input:{i}", title=os.path.basename(p), format=cs.format_of(p))
                   for i, p in enumerate(args.ingredient)]
    ingredients += [cs.Ingredient(label=f"generated:{i}", title=os.path.basename(p), format=cs.format_of(p),
                                  generated=True) for i, p in enumerate(args.generated_ingredient)]
    provenance = None
    operations: list[str] = []
    term = iptc.normalise(args.source_type) if args.source_type else None
    if args.manifest:
        data = mf.assemble(args.manifest, check=True)
        errs = mf.errors(data)
        if errs:
            raise InputError(f"{args.manifest}: the provenance manifest has errors ({errs[0].get('message')}); "
                             "fix them before signing media made from it")
        term = term or data.get("digital_source_type")
        for node, info in sorted((data.get("inputs") or {}).items()):
            ingredients.append(cs.Ingredient(label=f"plate:{node}", title=os.path.basename(info.get("path", node)),
                                             format=cs.format_of(info.get("path", "")),
                                             description=f"input {node} ({len(info.get('files') or {})} file(s))"))
        for gid, g in sorted((data.get("generators") or {}).items()):
            rec = g.get("record") or {}
            if rec.get("generated"):
                card = (g.get("card") or {}).get("name")
                ingredients.append(cs.Ingredient(label=f"generator:{gid}", generated=True,
                                                 trained=bool(g.get("trained", True)),
                                                 title=f"{rec.get('backend')}" + (f" ({card})" if card else "")))
        provenance = {"schema": mf.SCHEMA, "manifest_id": data.get("manifest_id"), "shot": data.get("shot"),
                      "ai_coverage": data.get("summary"), "models": (data.get("summary") or {}).get("models"),
                      "manifest_sha256": mf.content_digest(data)}
    if term is None:
        raise InputError("give --manifest (the render the file was made from) or --source-type "
                         "(e.g. compositeWithTrainedAlgorithmicMedia, compositeCapture, digitalCapture)")
    title = os.path.basename(args.output or args.file)
    definition = cs.build_definition(title=title, format=cs.mime_type(args.file), digital_source_type=term,
                                     ingredients=ingredients, operations=operations, provenance=provenance)
    out = cs.sign_file(args.file, definition, config=config, dest=args.output)
    print(f"composite: signed {out} ({iptc.short_name(term)}, {len(ingredients)} ingredient(s))", file=sys.stderr)
    return 0
