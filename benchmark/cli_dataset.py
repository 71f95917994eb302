"""``benchmark dataset export|check``: PercePiano in the generic format, and what the harness sees in a description.

``export --format generic DIR`` writes PercePiano as a described dataset
(:func:`benchmark.dataset_export.export_generic`); ``check PATH`` validates a
``dataset.toml`` against its tables and media, and prints the items, targets,
groups with their counts, media found and missing, raters, and the splits and
models the dataset can run. A bad description is one ``error:`` line and exit 2.
"""

from __future__ import annotations

import argparse

import numpy as np

from benchmark.dataset_export import export_generic
from benchmark.description import load_described, media_inventory, read_description
from benchmark.errors import DataError
from benchmark.raters import rating_match_report
from features.decode import check_file
from features.sets import FEATURE_SETS, unavailable_sets
from models import MODELS
from splits import SPLIT_FAMILIES, SPLITS, split_problem


def cmd_dataset(args: argparse.Namespace) -> int:
    if args.action == "export":
        out = export_generic(args.out_dir, args.data_dir, raters=not args.no_raters)
        raters = f", {out['n_rater_rows']} rater rows" if out["n_rater_rows"] else ""
        print(f"wrote {out['description']} ({out['n_items']} items{raters}); run it with: "
              f"benchmark run --dataset {args.out_dir} --models ridge,rf")
        return 0
    return _check(args)


def _counts(values) -> str:
    _, n = np.unique(np.asarray(values, dtype=str), return_counts=True)
    return f"{len(n)} values, {int(n.min())}-{int(n.max())} items each (median {float(np.median(n)):g})"


def _check(args: argparse.Namespace) -> int:
    desc = read_description(args.path)
    print(f"dataset {desc.name!r}: {desc.path} (sha256 {desc.sha256[:12]})")
    inventory = media_inventory(desc)
    for kind, (found, empty, missing) in inventory.items():
        line = f"media {kind}: {found} found"
        line += f", {empty} item(s) without one" if empty else ""
        line += f", {len(missing)} MISSING (e.g. {missing[0][0]!r}: {missing[0][1]!r})" if missing else ""
        print(line)
    ds = load_described(desc)  # every check; a problem is one error line (exit 2)
    ref = int(ds.meta["reference"].sum())
    print(f"items: {ds.n_samples}" + (f" ({ref} reference items: one unit under lopo, dropped by --exclude-score)"
                                      if ref else ""))
    for j, (name, (lo, hi)) in enumerate(zip(ds.target_names, ds.target_ranges, strict=True)):
        y = ds.y[:, j]
        print(f"target {name}: range [{lo:g}, {hi:g}], observed {y.min():g}..{y.max():g}, mean {y.mean():.3g}, "
              f"sd {y.std():.3g}")
    roles = {v: k for k, v in desc.roles.items()}
    for column in desc.group_columns():
        role = f" ({roles[column]})" if column in roles else ""
        print(f"group {column}{role}: {_counts(ds.meta[column])}")
    if args.media:
        _audio_headers(ds)
    if desc.raters is None:
        print("raters: none ([raters] absent): the noise ceiling is unavailable")
    else:
        m = rating_match_report(desc)
        print(f"raters: {m['n_rows']} answers from {m['n_raters']} raters on {m['n_label_segments_rated']} of "
              f"{m['n_label_segments']} items ({m['n_sheets']} sheets; {m['n_rated_unlabelled']} rated ids are no "
              f"item); largest |ratings table - rater mean / {desc.raters.scale:g}| = {m['max_abs_diff']:.3g}")
    ok, blocked = [], []
    for spec in SPLITS:
        problem = split_problem(spec.name, ds.meta, ds.group_columns)
        (blocked if problem else ok).append(spec.name)
    print(f"splits: {', '.join(ok) or 'none of the registered ones'}; over any group column: "
          + ", ".join(f"{f}:COLUMN" for f in SPLIT_FAMILIES) + f" with COLUMN in {', '.join(ds.group_columns)}")
    if blocked:
        print(f"splits unavailable (columns or MIDI they need are absent): {', '.join(blocked)}")
    no_midi = int((~ds.has_media("midi")).sum())
    if no_midi:
        sets = [spec.name for spec in FEATURE_SETS if unavailable_sets([spec.name], {"audio"})]
        models = [spec.name for spec in MODELS if unavailable_sets([i for i in spec.inputs if i in FEATURE_SETS],
                                                                   {"audio"})]
        print(f"models unavailable ({no_midi} items have no MIDI; feature sets {', '.join(sets)} read the notes): "
              f"{len(models)} of {len(MODELS)}, e.g. {', '.join(models[:5])}; "
              f"'benchmark list models --dataset {args.path}' marks them")
        print("near-duplicate check: not possible without MIDI (it compares notes)")
    else:
        print("models: all (every item has MIDI); near-duplicate check: runs with every run")
    return 0


def _audio_headers(ds) -> None:
    """Open every audio file's header: durations, sample rates, and the bad files by name (a run skips them)."""
    paths = [p for p in ds.meta["audio_path"] if isinstance(p, str) and p]
    if not paths:
        print("audio headers: no audio files")
        return
    rates, durations, bad = [], [], []
    for p in paths:
        try:
            sr, _, dur = check_file(p)
        except DataError as exc:
            bad.append(str(exc))
            continue
        rates.append(sr)
        durations.append(dur)
    if durations:
        print(f"audio headers: {len(durations)} readable, {min(durations):.1f}-{max(durations):.1f} s, "
              f"sample rates {', '.join(map(str, sorted(set(rates))))} Hz")
    for line in bad:
        print(f"audio BAD (a run skips the item): {line}")
