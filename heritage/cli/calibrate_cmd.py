"""``heritage calibrate``: refit the edge-confidence calibration on ground truth."""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from heritage.cli import CLIError
from heritage.evaluation.calibration import DEFAULT_SYNTHETIC_FAMILIES, DEFAULT_ZOO_WEIGHT


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "calibrate",
        help="fit the edge-confidence calibration on zoos and hard synthetic families (held-out report)",
        description="Recovers every zoo given and N hard synthetic families per split, fits a logistic "
        "calibration of edge confidence on --zoo folders plus the fitting families, and reports its "
        "expected calibration error and AUROC on --held-out folders plus other families, never on "
        "the data it was fitted on. The package ships such a fit in "
        "heritage/lineage/data/calibration.json; --out rewrites it (or writes elsewhere).",
    )
    parser.add_argument("--zoo", type=Path, action="append", default=[], metavar="ZOO",
                        help="a zoo (models/ + truth.json) to fit on; repeatable")
    parser.add_argument("--held-out", type=Path, action="append", default=[], metavar="ZOO",
                        help="a zoo to report on only; repeatable")
    parser.add_argument("--synthetic", type=int, default=DEFAULT_SYNTHETIC_FAMILIES, metavar="N",
                        help=f"synthetic families in each split (default {DEFAULT_SYNTHETIC_FAMILIES})")
    parser.add_argument("--zoo-weight", type=float, default=DEFAULT_ZOO_WEIGHT, metavar="W",
                        help=f"weight of one zoo edge against one synthetic edge (default {DEFAULT_ZOO_WEIGHT:g})")
    parser.add_argument("--regularisation", type=float, default=1.0, metavar="C",
                        help="inverse L2 strength of the logistic fit (default 1.0)")
    parser.add_argument("--out", type=Path, required=True, help="where to write the fitted calibration JSON")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from heritage.evaluation.calibration import calibrate

    for zoo in [*args.zoo, *args.held_out]:
        if not (zoo / "truth.json").is_file() or not (zoo / "models").is_dir():
            raise CLIError(f"{zoo}: expected a zoo folder with models/ and truth.json", exit_code=2)
    if args.synthetic < 0:
        raise CLIError("--synthetic must be >= 0", exit_code=2)
    if not args.zoo_weight > 0:
        raise CLIError("--zoo-weight must be > 0", exit_code=2)
    try:
        fit = calibrate(args.zoo, args.held_out, args.synthetic, regularisation=args.regularisation,
                        zoo_weight=args.zoo_weight)
    except ValueError as exc:
        raise CLIError(str(exc)) from None
    fit.calibrator.save(args.out)
    for part in ("train", "held_out"):
        f = fit.report[part]
        print(f"{part:<9} edges {f['edges']:>4} (wrong {f['wrong']:>3})  ECE {_fmt(f['ece'])}  AUROC {_fmt(f['auroc'])}"
              f"   raw margin: ECE {_fmt(f['raw_margin_ece'])}  AUROC {_fmt(f['raw_margin_auroc'])}")
    for source, f in fit.report["held_out_by_source"].items():
        print(f"  held out {source}: edges {f['edges']} (wrong {f['wrong']})  ECE {_fmt(f['ece'])}  "
              f"AUROC {_fmt(f['auroc'])}")
    for zoo, f in fit.report["leave_one_zoo_out"].items():
        print(f"  {zoo} (fitted without it): edges {f['edges']} (wrong {f['wrong']})  ECE {_fmt(f['ece'])}  "
              f"AUROC {_fmt(f['auroc'])}")
    print(f"wrote {args.out}")
    return 0


def _fmt(value: float | None) -> str:
    return "n/a" if value is None or not math.isfinite(value) else f"{value:.3f}"
