"""``benchmark list``, ``splits``, ``features``, ``render`` and ``cache``: the data, the registries and the cache.

Each takes ``--dataset PATH`` (a described dataset) besides PercePiano's ``--data-dir``; ``list --dataset``
marks what that dataset cannot run.

``list`` prints a registry (models, splits, feature sets); ``splits check|passages`` looks for
near-duplicates across a split's folds; ``features build|info|docs`` fills and inspects the feature
cache; ``render`` writes one segment's rendered audio; ``cache clear`` removes the cache's entries.
"""

from __future__ import annotations

import argparse
import difflib
import time

import models  # noqa: F401  (registers the feature sets computed by models: ssast)
from benchmark.description import open_dataset
from benchmark.errors import ConfigError
from benchmark.workers import check_jobs
from features.build import build_array_stage, build_features
from features.cache import Cache, resolve_cache_dir
from features.sets import FEATURE_SETS, is_array_stage, unavailable_sets
from features.soundfonts import split_soundfonts
from features.stages import AudioParams, check_soundfont_use, has_audio_file, item_audio
from models import MODELS
from splits import (
    SPLITS,
    excerpt_overlaps,
    leakage_summary,
    leakage_table,
    passage_groups,
    shared_note_matrix,
    split_problem,
)
from splits.overlap import BIGRAM_STAGE, note_cache


def say(line: str) -> None:
    """A phase of a long command (the plan, data, features, leakage check), as it starts."""
    print(line, flush=True)


def _unavailable(what: str, dataset) -> dict[str, str]:
    """Registry entries ``dataset`` cannot run, with the reason (one phrase each)."""
    out: dict[str, str] = {}
    if what == "splits":
        for spec in SPLITS:
            problem = split_problem(spec.name, dataset.meta, dataset.group_columns)
            if problem is not None:
                out[spec.name] = problem
        return out
    if not (~dataset.has_media("midi")).any():
        return out
    for spec in (MODELS if what == "models" else FEATURE_SETS):
        sets = [i for i in spec.inputs if i in FEATURE_SETS] if what == "models" else [spec.name]
        blocked = unavailable_sets(sets, {"audio"})
        if blocked:
            out[spec.name] = f"reads MIDI ({', '.join(blocked)})"
    return out


def cmd_list(args: argparse.Namespace) -> int:
    dataset = open_dataset(args.dataset) if getattr(args, "dataset", None) else None
    unavailable = _unavailable(args.what, dataset) if dataset is not None else {}
    if args.what == "models":
        return _list_models(args, dataset, unavailable)
    if getattr(args, "study", None) or getattr(args, "predictions", None):
        raise ConfigError(f"--study and --predictions add models; 'benchmark list {args.what}' lists {args.what}")
    reg = {"splits": SPLITS}.get(args.what, FEATURE_SETS)
    for spec in reg:
        extra = f"  [inputs: {','.join(spec.inputs)}]" if spec.inputs else ""
        if args.what == "splits":
            extra = ("  [LEAKS: can put a same-player near-duplicate of a test segment in training]"
                     if spec.extra.get("leaks") else "  [no same-player near-duplicates across folds]")
        describe = spec.extra.get("describe")  # registry metadata, e.g. a neural model's size and input
        if describe is not None:
            extra += f"  [{describe(spec)}]"
        if spec.name in unavailable:
            extra += "  [UNAVAILABLE for this dataset]"
        print(f"{spec.name:<24} {spec.description}{extra}")
    if args.what == "splits":
        if dataset is not None:
            columns = ", ".join(dataset.group_columns)
            print(f"\nOver any group column of dataset {dataset.name!r} ({columns}): group:COLUMN (leave one value "
                  "out), kfold_grouped:COLUMN (grouped K-fold)")
        print("\nCheck any split on the data: benchmark splits check SPLIT")
    _print_unavailable(args.what, dataset, unavailable)
    return 0


def _print_unavailable(what: str, dataset, unavailable: dict[str, str]) -> None:
    """One line: what this dataset cannot run, and why."""
    if not unavailable:
        return
    reasons = sorted(set(unavailable.values()))
    why = reasons[0] if len(reasons) == 1 else "; ".join(f"{n}: {r}" for n, r in unavailable.items())
    print(f"\nunavailable for dataset {dataset.name!r} ({int((~dataset.has_media('midi')).sum())} of "
          f"{dataset.n_samples} items have no MIDI): {', '.join(unavailable)}"
          + (f" ({why})" if what != "splits" else ""), flush=True)


def _list_models(args: argparse.Namespace, dataset=None, unavailable: dict[str, str] | None = None) -> int:
    """Every model with where it comes from: built-in, plugin:<dist>, class_path, imported; with ``--dataset``,
    the models that dataset cannot run marked."""
    unavailable = unavailable or {}
    MODELS.check_plugins()
    rows = []
    for spec in MODELS:
        extra = f"  [inputs: {','.join(spec.inputs)}]" if spec.inputs else ""
        describe = spec.extra.get("describe")
        if describe is not None:
            extra += f"  [{describe(spec)}]"
        if spec.name in unavailable:
            extra += "  [UNAVAILABLE for this dataset]"
        rows.append((spec.name, spec.description, extra, spec.source))
    variants = {}
    if getattr(args, "study", None):
        from benchmark.study import load_study

        variants.update(load_study(args.study)["variants"])
    if getattr(args, "predictions", None):
        from benchmark.imported import add_imports, parse_assignments

        _, imports = add_imports([], {}, parse_assignments(args.predictions))
        variants.update(imports)
    for name, v in variants.items():
        spec = MODELS.get(v["model"])
        if spec.name == "imported":
            rows.append((name, f"predictions from {v['params']['path']}", "", "imported"))
        elif spec.source == "class_path":
            rows.append((name, spec.description, f"  [inputs: {','.join(spec.inputs)}]",
                         f"class_path {spec.name}"))
        else:
            rows.append((name, f"variant of {spec.name}: {spec.description}", "", spec.source))
    for name, description, extra, source in rows:
        print(f"{name:<24} {description}{extra}  [source: {source}]")
    _print_unavailable("models", dataset, unavailable)
    return 0


def cmd_splits(args: argparse.Namespace) -> int:
    if not 0 < args.threshold <= 1:
        raise ConfigError(f"--threshold {args.threshold}: use a shared-note fraction in (0, 1]")
    ds = open_dataset(getattr(args, "dataset", None), args.data_dir,
                      include_score=not getattr(args, "exclude_score", False))
    if (~ds.has_media("midi")).any():
        raise ConfigError(f"dataset {ds.name!r}: {int((~ds.has_media('midi')).sum())} items have no MIDI; the "
                          "near-duplicate check compares notes and cannot run on them")
    with note_cache(Cache(resolve_cache_dir(args.cache_dir))):
        shared = shared_note_matrix(ds.meta)
    if args.action == "passages":
        links = excerpt_overlaps(ds.meta, shared, threshold=args.threshold)
        print(links.to_string(index=False, float_format=lambda x: f"{x:.3f}"))
        passages = passage_groups(ds.meta, shared, threshold=args.threshold)
        print(f"\n{ds.meta['excerpt'].nunique()} excerpts form {len(set(passages))} passages "
              f"(excerpts linked when a player's segments of both share >= {args.threshold:g} of their notes)")
        return 0
    table = leakage_table(args.split, ds.meta, seeds=args.seeds, n_splits=args.n_splits, threshold=args.threshold,
                          shared=shared)
    per_fold = table[table["fold"] >= 0]
    print(per_fold.to_string(index=False))
    print("\n" + leakage_summary(table, args.threshold))
    return 0


def cmd_features(args: argparse.Namespace) -> int:
    if args.action == "docs":
        return _feature_docs(args.features)
    cache = Cache(resolve_cache_dir(getattr(args, "cache_dir", None)))
    if args.action == "info":
        rows = cache.info()
        if not rows:
            print(f"cache {cache.root} is empty")
        for r in rows:
            print(f"{r['stage']:<12} {r['entries']:>6} entries {r['bytes'] / 1e6:>10.1f} MB")
        return 0


    names = FEATURE_SETS.parse_list(args.features)
    tables = [n for n in names if not is_array_stage(n)]
    check_jobs(args.jobs)
    check_soundfont_use(args.soundfont, names)
    ds = open_dataset(args.dataset, args.data_dir)
    if (~ds.has_media("midi")).any() and unavailable_sets(names, {"audio"}):
        raise ConfigError(f"--features {','.join(unavailable_sets(names, {'audio'}))} read MIDI, and "
                          f"{int((~ds.has_media('midi')).sum())} items of dataset {ds.name!r} have audio only")
    t0 = time.perf_counter()

    fonts = split_soundfonts(args.soundfont) or [None]
    for font in fonts:  # several SoundFonts (--soundfont A,B): the tables once per font
        if not tables:
            break
        fm = build_features(ds.meta, tables, cache, n_jobs=args.jobs or 1, on_bad_input=args.on_bad_input,
                            soundfont=font, notify=say)
        print(f"{','.join(tables)}{f' ({font})' if len(fonts) > 1 else ''}: {len(fm.X)} segments x "
              f"{fm.X.shape[1]} features ({fm.n_cached} cached, {fm.n_computed} computed, {len(fm.skipped)} skipped)")
    for name in [n for n in names if is_array_stage(n)]:
        if name == "mel" and len(fonts) > 1:
            raise ConfigError("mel spectrograms take one --soundfont; several work for the audio feature set only")
        stage = FEATURE_SETS.build(name, **({"soundfont": args.soundfont} if name == "mel" else {}))
        keys, bad, hits = build_array_stage(stage, ds.meta, cache, n_jobs=args.jobs or 1, notify=say)
        print(f"{name}: {len(keys)} arrays cached ({hits} already, {len(keys) - hits} computed), {len(bad)} failed"
              + (f" ({', '.join(sorted(bad))})" if bad else ""))
    print(f"done in {time.perf_counter() - t0:.1f}s; cache {cache.root}")
    return 0


def _feature_docs(names: str) -> int:
    for name in FEATURE_SETS.parse_list(names):
        spec = FEATURE_SETS.get(name)
        if spec.extra.get("kind") == "array":
            continue
        fs = spec.build()
        print(f"## `{name}`: {spec.description}\n\nExtractor version {fs.version}.\n")
        print("| feature | what it measures |\n|---|---|")
        for feat in fs.feature_names:
            print(f"| `{feat}` | {fs.docs[feat]} |")
        print()
    return 0


def cmd_render(args: argparse.Namespace) -> int:
    import soundfile


    ds = open_dataset(args.dataset, args.data_dir)
    rows = ds.meta[ds.meta["sample_id"] == args.segment_id.strip()]
    if rows.empty:
        close = difflib.get_close_matches(args.segment_id, list(ds.meta["sample_id"]), n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise ConfigError(f"unknown segment {args.segment_id!r}{hint}")
    if args.soundfont and "," in args.soundfont:
        raise ConfigError(f"render takes one --soundfont, got {args.soundfont!r}")
    params = AudioParams(soundfont=args.soundfont)
    row = rows.iloc[0].to_dict()
    if has_audio_file(row) and args.soundfont:
        raise ConfigError(f"segment {args.segment_id!r} is a recording ({row['audio_path']}); it is not rendered, "
                          "so --soundfont does not apply")
    # A recording is written as the audio stages read it (decoded, mono, resampled); MIDI as rendered.
    y = item_audio(row, Cache(resolve_cache_dir(args.cache_dir)), params)
    try:
        soundfile.write(args.output, y, params.sr, subtype="FLOAT")
    except (OSError, RuntimeError) as exc:
        raise ConfigError(f"cannot write {args.output!r}: {exc}") from None
    print(f"wrote {args.output} ({len(y) / params.sr:.2f} s, {params.sr} Hz, peak {abs(y).max():.3f})")
    return 0


def cache_stages() -> list[str]:
    """Every stage the harness writes to the cache: the feature sets' (a set may name its own, and
    others it writes, e.g. ``ssast``: ``ssast_emb`` and the checkpoints' ``ssast_ckpt``), the rendered audio
    and the note bigrams of the split groups and the leakage check."""

    return sorted({s for spec in FEATURE_SETS for s in spec.extra.get("stages", (spec.name,))}
                  | {"render", "decode", BIGRAM_STAGE})


def cmd_cache(args: argparse.Namespace) -> int:
    cache = Cache(resolve_cache_dir(args.cache_dir))
    if args.stage is not None:
        known = cache_stages()
        if args.stage not in known:
            close = difflib.get_close_matches(args.stage, known, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ConfigError(f"unknown cache stage {args.stage!r}{hint} (stages: {', '.join(known)})")
        stages = [args.stage]
    else:
        stages = sorted(set(cache_stages()) | set(cache.stages()))
    n = cache.clear(stages)
    print(f"removed {n} entries from {cache.root}")
    return 0
