"""``heritage evaluate ZOO``: accuracy of the recovered genealogy against truth.json."""

from __future__ import annotations

import argparse
from pathlib import Path

from heritage.cli import CLIError
from heritage.cli.options import add_recovery_options, recovery_from_args


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "evaluate",
        help="score our recovery against a zoo's truth.json, beside the reference and seed recipes",
    )
    parser.add_argument("zoo", type=Path, metavar="ZOO", help="a folder with models/ and truth.json")
    parser.add_argument("--no-baselines", action="store_true", help="score our method only")
    add_recovery_options(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from heritage.evaluation.scoring import evaluate_zoo, format_scores

    if not (args.zoo / "truth.json").is_file() or not (args.zoo / "models").is_dir():
        raise CLIError(f"{args.zoo}: expected a zoo folder with models/ and truth.json "
                       "(build one with `heritage zoo`)", exit_code=2)
    recovery = recovery_from_args(args)
    scores = evaluate_zoo(args.zoo, recovery, baselines=not args.no_baselines)
    print(format_scores(scores))
    report = recovery.calibrator.report
    if report.get("held_out"):
        held = report["held_out"]
        fitted = ", ".join(report.get("fitted_on", []))
        name = args.zoo.resolve().name
        note = " (this zoo was part of the fit)" if name in report.get("fitted_on", []) else ""
        print(f"edge calibration in use: fitted on {fitted}{note}; on its held-out data "
              f"({held['edges']} edges, {held['wrong']} wrong): ECE {_fmt(held['ece'])}, AUROC {_fmt(held['auroc'])}")
        without = report.get("leave_one_zoo_out", {}).get(name)
        if without:
            print(f"on this zoo, a calibration fitted without it: ECE {_fmt(without['ece'])}, "
                  f"AUROC {_fmt(without['auroc'])}")
    return 0


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"
