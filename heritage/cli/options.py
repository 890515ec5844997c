"""Command-line options shared by the commands that recover genealogies."""

from __future__ import annotations

import argparse

from heritage.lineage.candidates import DEFAULT_NEIGHBOURS, FamilySearch
from heritage.lineage.clustering import DEFAULT_THRESHOLD, ClusteringMethod
from heritage.lineage.distances import DistanceMetric
from heritage.reading.layers import LayerRole, parse_roles
from heritage.lineage.recovery import DEFAULT_TREE_LIMIT, GenealogyRecovery
from heritage.lineage.trees import DEFAULT_LAMBDA, TreeBuildingMethod


def add_recovery_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("recovery")
    group.add_argument("--metric", choices=[m.value for m in DistanceMetric if m is not DistanceMetric.MOTHER],
                       default=DistanceMetric.AUTO.value, help="tree distance (default: auto)")
    group.add_argument("--clustering", choices=[m.value for m in ClusteringMethod],
                       default=ClusteringMethod.AUTO.value, help="family clustering (default: auto)")
    group.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD,
                       help=f"family threshold, relative weight change (default: {DEFAULT_THRESHOLD})")
    group.add_argument("--tree-method", choices=[m.value for m in TreeBuildingMethod],
                       default=TreeBuildingMethod.MOTHER.value)
    group.add_argument("--layers", type=_roles, default=None, metavar="ROLES",
                       help="comma-separated layer roles to compare: attention (all projections), "
                            "attention_q, attention_k, attention_v, attention_o, attention_qkv, mlp "
                            "(default: each metric's own choice)")
    group.add_argument("--lambda", dest="lam", type=float, default=DEFAULT_LAMBDA,
                       help=f"kurtosis penalty weight (default: {DEFAULT_LAMBDA})")
    group.add_argument("--search", choices=[s.value for s in FamilySearch], default=FamilySearch.SPARSE.value,
                       help="families from nearest-neighbour candidates (sparse, default) or from every "
                            "pairwise distance (exact: quadratic, for checks)")
    group.add_argument("--neighbours", type=int, default=DEFAULT_NEIGHBOURS, metavar="K",
                       help=f"candidate neighbours per model in the sparse search (default: {DEFAULT_NEIGHBOURS})")
    group.add_argument("--tree-limit", type=int, default=DEFAULT_TREE_LIMIT, metavar="N",
                       help="families of more models get their tree on candidate edges "
                            f"(default: {DEFAULT_TREE_LIMIT}; 0: every tree dense)")


def _roles(text: str) -> frozenset[LayerRole]:
    try:
        return parse_roles(text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"unknown layer role in {text!r}") from None


def recovery_from_args(args: argparse.Namespace) -> GenealogyRecovery:
    from heritage.cli import CLIError

    try:
        return GenealogyRecovery(metric=args.metric, clustering=args.clustering,
                                 threshold=args.threshold, tree_method=args.tree_method, lam=args.lam,
                                 roles=args.layers, search=args.search, neighbours=args.neighbours,
                                 tree_limit=args.tree_limit or None)
    except ValueError as exc:
        raise CLIError(str(exc), exit_code=2) from None
