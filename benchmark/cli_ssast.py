"""``benchmark pretrain`` and ``benchmark explain``: the self-supervised and interpretability commands.

Both reach torch only when they run (:func:`models.pretrain`, :func:`benchmark.explain.explain_segment`
import it then). :func:`with_init` is ``--init`` of ``benchmark run``: every neural model of the run starts
from a pre-trained checkpoint.
"""

from __future__ import annotations

import argparse
import inspect
from pathlib import Path

import models
from benchmark.cli import CORPUS_SOURCES
from benchmark.errors import ConfigError
from benchmark.explain import explain_segment
from benchmark.jobs import resolve_model
from models import MODELS


def with_init(models: list[str], variants: dict, init: str) -> dict:
    """``--init``: every model of the run whose factory takes ``init`` starts from that checkpoint.

    The run keeps its model names; each becomes a variant with ``init`` set, so the
    manifest records it.

    Raises
    ------
    ConfigError
        No model of the run takes a checkpoint.
    """
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
