"""``benchmark folds export``, ``predictions export`` and ``validate-model``: the harness's doors to the outside.

Folds and predictions leave as files with a sidecar (:mod:`benchmark.exchange`); a model from outside is
checked against the estimator protocol before it joins a run (:mod:`benchmark.validate`).
"""

from __future__ import annotations

import argparse
import tomllib

from benchmark.errors import EXIT_ERROR, ConfigError
from benchmark.exchange import export_folds, export_predictions
from benchmark.validate import validate_model


def cmd_folds(args: argparse.Namespace) -> int:
    if args.run is not None:
        side, meta = export_folds(args.output, run_dir=args.run)
    else:
        side, meta = export_folds(args.output, args.split, seeds=args.seeds, n_splits=args.n_splits,
                                  data_dir=args.data_dir, dataset=args.dataset,
                                  include_score=not args.exclude_score)
    n = ", ".join(f"seed {s}: {k} folds" for s, k in meta["n_folds"].items())
    print(f"wrote {args.output} ({meta['split']['name']}; {n}; {meta['n_samples']} segments) and {side}")
    print(f"fold hash {meta['fold_hash']}  data sha256 {meta['data_sha256']}")
    return 0


def cmd_predictions(args: argparse.Namespace) -> int:
    side, meta = export_predictions(args.run_dir, args.model, args.output)
    print(f"wrote {args.output} ({args.model} of run {meta['run_id']}; {meta['split']['name']}, seeds "
          f"{','.join(map(str, meta['seeds']))}) and {side}")
    print(f"fold hash {meta['fold_hash']}  data sha256 {meta['data_sha256']}")
    return 0


def parse_params(items: list[str] | None) -> dict:
    """``["n_estimators=10", "alphas=[1.0, 10.0]"]`` as a dict, each value read as TOML.

    Raises
    ------
    ConfigError
        An item without ``=``, or a value TOML cannot read.
    """
    out = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--param {item!r}: expected KEY=VALUE, e.g. --param n_estimators=10")
        try:
            out[key.strip()] = tomllib.loads(f"v = {value.strip()}")["v"]
        except tomllib.TOMLDecodeError:
            out[key.strip()] = value.strip()  # a bare word: text
    return out


def cmd_validate_model(args: argparse.Namespace) -> int:
    if args.n_segments is not None and args.n_segments < 8:
        raise ConfigError(f"--n-segments {args.n_segments}: use at least 8 (two groups to train on, one to test)")
    features = [f.strip() for f in args.features.split(",") if f.strip()] if args.features else None
    report = validate_model(args.model, params=parse_params(args.param), features=features, data_dir=args.data_dir,
                            cache_dir=args.cache_dir, n_segments=args.n_segments)
    print(f"validate-model {args.model}: {report.describe()}")
    for check in report.checks:
        print(f"  {'PASS' if check.ok else 'FAIL'}  {check.name}" + ("" if check.ok else f": {check.detail}"))
    failed = [c.name for c in report.checks if not c.ok]
    if failed:
        print(f"{len(failed)} of {len(report.checks)} checks failed: {', '.join(failed)}")
        return EXIT_ERROR
    print(f"all {len(report.checks)} checks passed")
    return 0
