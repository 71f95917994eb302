"""``benchmark pretrain`` and ``benchmark explain``: the self-supervised and interpretability commands.

Both reach torch only when they run (:func:`models.pretrain`,
:func:`benchmark.explain.explain_segment`), so building the parser and
``--help`` import nothing heavy.
"""

from __future__ import annotations

import argparse

from benchmark.errors import ConfigError

CORPUS_SOURCES = ("score", "unlabelled", "synthetic", "maestro")
DEFAULT_CORPUS = "score,unlabelled,synthetic"


def add_commands(sub, add_data_options) -> None:
    """Add the ``pretrain`` and ``explain`` sub-commands to ``benchmark``'s parser."""
    pre = sub.add_parser("pretrain", help="self-supervised pre-training (SSAST masked patch modelling) of an AST "
                                          "encoder on performances nobody rated; the checkpoint goes in the cache")
    pre.add_argument("--input", choices=("mel", "roll"), default="mel", help="log-mel or piano roll (default mel)")
    pre.add_argument("--model", help="registered model whose encoder is pre-trained (default ast_tiny for mel, "
                                     "ast_tiny_roll for roll)")
    pre.add_argument("--corpus", default=DEFAULT_CORPUS,
                     help=f"comma-separated sources: {','.join(CORPUS_SOURCES)} (default {DEFAULT_CORPUS}; "
                          "maestro needs --maestro-dir)")
    pre.add_argument("--n-synthetic", type=int, default=None,
                     help="random performances (tempo, timing, velocity, pedal) per score MIDI (default 3)")
    pre.add_argument("--corpus-seed", type=int, default=None, help="seed of the synthetic performances (default 0)")
    pre.add_argument("--maestro-dir", help="an unpacked MAESTRO v3 folder (with maestro-v3.0.0.csv); adds its "
                                           "train split, cut into 30 s excerpts")
    pre.add_argument("--maestro-limit", type=int, default=None, help="use at most this many MAESTRO performances")
    pre.add_argument("--transductive", action="store_true",
                     help="also pre-train on every PercePiano segment's input (never its labels): the encoder "
                          "sees the test folds' audio; the checkpoint records it")
    pre.add_argument("--mask-ratio", type=float, default=None, help="share of patches masked (default 0.4)")
    pre.add_argument("--epochs", type=int, default=None, help="epochs over the corpus (default 60)")
    pre.add_argument("--batch-size", type=int, default=None, help="crops per step (default 32)")
    pre.add_argument("--lr", type=float, default=None, help="peak AdamW learning rate (default 1e-3)")
    pre.add_argument("--seed", type=int, default=None, help="seed of masks, crops and initial weights (default 0)")
    pre.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    pre.add_argument("--threads", type=int, default=1, help="torch threads for training (default 1)")
    pre.add_argument("--force", action="store_true", help="train again even if the checkpoint is cached")
    pre.add_argument("--no-progress", action="store_true", help="hide progress bars")
    add_data_options(pre)

    exp = sub.add_parser("explain", help="attention rollout of a fitted neural model over one segment's "
                                         "spectrogram or piano roll (PNG), and the hybrid's feature attributions")
    exp.add_argument("run_dir")
    exp.add_argument("segment_id")
    exp.add_argument("--model", help="which neural model of the run (default: the first one)")
    exp.add_argument("--seed", type=int, default=None, help="split seed (default: the run's first)")
    exp.add_argument("-o", "--output", help="PNG to write (default RUN_DIR/explain/MODEL__SEGMENT.png)")
    exp.add_argument("--top", type=int, default=15, help="hybrid: how many features to show (default 15)")
    exp.add_argument("--target", metavar="RATING", help="hybrid: attribute this rating's prediction (e.g. "
                                                        "timing_stable) instead of the mean of all ratings")


def with_init(models: list[str], variants: dict, init: str) -> dict:
    """``--init``: every model of the run whose factory takes ``init`` starts from that checkpoint.

    The run keeps its model names; each becomes a variant with ``init`` set, so the
    manifest records it.

    Raises
    ------
    ConfigError
        No model of the run takes a checkpoint.
    """
    import inspect
    from pathlib import Path

    from benchmark.jobs import resolve_model
    from models import MODELS

    if init != "default" and Path(init).expanduser().suffix == ".npz":
        init = str(Path(init).expanduser().resolve())
    out = dict(variants)
    hit = []
    for name in models:
        ref = resolve_model(name, variants)
        if "init" in inspect.signature(MODELS.get(ref.base).factory).parameters:
            out[name] = {"model": ref.base, "params": {**ref.params, "init": init}}
            hit.append(name)
    if not hit:
        raise ConfigError(f"--init applies to neural models (ast_*, hybrid*); none of {', '.join(models)} takes a "
                          "pre-trained checkpoint")
    return out


def _corpus_options(args: argparse.Namespace) -> dict:
    sources = [s.strip() for s in args.corpus.split(",") if s.strip()]
    bad = [s for s in sources if s not in CORPUS_SOURCES]
    if bad or not sources:
        raise ConfigError(f"--corpus {args.corpus!r}: use any of {','.join(CORPUS_SOURCES)}")
    if "maestro" in sources and not args.maestro_dir:
        raise ConfigError("--corpus includes maestro: pass --maestro-dir DIR (an unpacked MAESTRO v3 folder)")
    if args.maestro_dir and "maestro" not in sources:
        sources.append("maestro")
    return {"scores": "score" in sources, "unlabelled": "unlabelled" in sources,
            "n_synthetic": args.n_synthetic if "synthetic" in sources else 0, "seed": args.corpus_seed,
            "transductive": args.transductive, "maestro_dir": args.maestro_dir if "maestro" in sources else None,
            "maestro_limit": args.maestro_limit}


def cmd_pretrain(args: argparse.Namespace) -> int:
    import models

    out = models.pretrain(input=args.input, model=args.model, data_dir=args.data_dir, cache_dir=args.cache_dir,
                          soundfont=args.soundfont, jobs=1 if args.jobs is None else args.jobs,
                          threads=args.threads,
                          device=args.device, force=args.force,
                          progress=not args.no_progress, corpus=_corpus_options(args), mask_ratio=args.mask_ratio,
                          epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, seed=args.seed)
    m = out["manifest"]
    counts = ", ".join(f"{k} {v}" for k, v in m["corpus"]["counts"].items() if v)
    hist = m["history"]
    print(f"checkpoint {out['key']} ({'found in the cache' if out['cached'] else 'trained'}): {out['path']}")
    print(f"corpus {m['corpus']['fingerprint'][:12]}: {m['n_used']} items ({counts}); "
          f"transductive={m['corpus']['transductive']}")
    print(_exclusion_line(m["corpus"]))
    print(f"{len(hist)} epochs, {m['train_seconds']:.0f}s training ({m['train_seconds'] / len(hist):.1f}s/epoch), "
          f"{m['inputs_seconds']:.0f}s corpus inputs; first/last epoch: gen {hist[0]['gen']:.3f} -> "
          f"{hist[-1]['gen']:.3f}, disc {hist[0]['disc']:.3f} -> {hist[-1]['disc']:.3f} (acc {hist[-1]['acc']:.2f})")
    if out["default"]:
        print(f"default checkpoint for {args.input} input: ast_tiny{'' if args.input == 'mel' else '_roll'}_ssast "
              f"and the '{'ssast' if args.input == 'mel' else 'ssast_roll'}' features use it")
    else:
        # The checkpoint loads only into the encoder it was made for: the pre-trained model's.
        print(f"fine-tune from it with: benchmark run --models {m['pretrain']['model']} --init {out['path']}")
    return 0


def _exclusion_line(corpus: dict) -> str:
    """What the corpus left out, from a checkpoint manifest's corpus summary."""
    left = corpus.get("excluded", {})
    by_source = ", ".join(f"{k} {v}" for k, v in left.items() if v) or "none"
    unreadable = corpus.get("unreadable", [])
    twice = sum(corpus.get("duplicates", {}).values())
    return (f"left out as near-copies of {corpus.get('n_rated_matched', 0)} rated segments (>= 80 % shared note "
            f"or onset bigrams, either way; the checkpoint's manifest lists each pair): {by_source}"
            + (f"; {len(unreadable)} unreadable" if unreadable else "")
            + (f"; {twice} byte-identical duplicates dropped" if twice else ""))


def cmd_explain(args: argparse.Namespace) -> int:
    from benchmark.explain import explain_segment

    out = explain_segment(args.run_dir, args.segment_id, model=args.model, seed=args.seed, output=args.output,
                          top=args.top, target=args.target)
    print(f"{out['model']} (fold {out['fold']}, seed {out['seed']}) on {out['segment_id']}: attention rollout "
          f"{out['grid'][0]}x{out['grid'][1]} patches over {out['input']} -> {out['png']}")
    pred, rating = [float(v) for v in out["prediction"]], [float(v) for v in out["rating"]]
    line = (f"prediction vs rating: mean |error| {sum(abs(p - r) for p, r in zip(pred, rating, strict=True)) / len(pred):.3f}"
            f" over {len(pred)} ratings")
    if out["target"]:
        j = out["targets"].index(out["target"])
        line += f"; {out['target']}: predicted {pred[j]:.3f}, rated {rating[j]:.3f}"
    print(line)
    if out.get("features"):
        print(f"features by gradient x input ({'rating ' + out['target'] if out['target'] else 'mean of the ratings'}):")
    for name, value in out.get("features", [])[:args.top]:
        print(f"  {name:<48} {value:+.4f}")
    return 0


HANDLERS = {"pretrain": cmd_pretrain, "explain": cmd_explain}
