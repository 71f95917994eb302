"""``benchmark pretrain``: build the corpus, pre-train an SSAST encoder, store the checkpoint in the cache.

The steps: load PercePiano (every labelled segment, so rated performances and
their near-copies are recognised and left out), list the corpus
(:func:`features.corpus.build_corpus`; the manifest keeps its exclusions),
render its inputs through the cache stages, pool them as the fine-tuning model
does, pre-train (:func:`models.ssast.pretrain_arrays`) and store the encoder
under its key (:func:`models.ssast.checkpoint_key`). A checkpoint already in the
cache under the same key is reused, not trained again (``force`` retrains).

This module imports torch (through :mod:`models.ssast`); the CLI reaches it
through :func:`models.pretrain`.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from benchmark import dataset as data
from benchmark.errors import ConfigError
from benchmark.workers import check_jobs
from features import corpus as corpora
from features.cache import Cache, resolve_cache_dir
from features.corpus import CorpusSpec
from models.checkpoints import read_checkpoint_arrays, write_pointer

logger = logging.getLogger(__name__)

#: The registered model whose encoder each input pre-trains by default.
DEFAULT_MODEL = {"mel": "ast_tiny", "roll": "ast_tiny_roll"}


def _pool(settings: dict):
    from models.training import pool_mel, pool_roll

    kind, fp, tp = settings["input"], settings["freq_pool"], settings["time_pool"]
    if kind == "mel":
        return lambda a: pool_mel(a, fp, tp)
    return lambda a: pool_roll(a, tp)


def run_pretrain(*, input: str = "mel", model: str | None = None, data_dir=None, cache_dir=None,
                 soundfont: str | None = None, jobs: int = 1, threads: int = 1, device: str = "auto",
                 force: bool = False,
                 progress: bool = True, corpus: dict | None = None, **settings: Any) -> dict[str, Any]:
    """Pre-train (or find in the cache) the SSAST checkpoint these settings describe.

    Parameters
    ----------
    input : {"mel", "roll"}
    model : str, optional
        Registered model whose encoder is pre-trained (default ``ast_tiny`` / ``ast_tiny_roll``).
    data_dir, cache_dir, soundfont, jobs :
        As for ``benchmark run``.
    threads : int
        torch threads of the training (1 is fastest on a shared 2-core machine).
    device : {"auto", "cpu", "cuda"}
    force : bool
        Train again even when the checkpoint exists.
    corpus : dict, optional
        Fields of :class:`features.corpus.CorpusSpec` (``n_synthetic``, ``transductive``, ``maestro_dir``...).
    **settings
        Fields of :class:`models.ssast.PretrainConfig` (``mask_ratio``, ``epochs``, ``batch_size``, ``lr``, ``seed``...).

    Returns
    -------
    dict
        ``key``, ``path``, ``cached`` (found, not trained), ``default`` (the checkpoint
        ``init="default"`` now loads), and the manifest.

    Raises
    ------
    ConfigError, DataError
        Bad settings, no data, an unreadable MAESTRO folder, an empty corpus.
    """

    # Every setting is checked here, before torch, the data or the corpus is touched.
    model = model or DEFAULT_MODEL.get(input)
    if model is None:
        raise ConfigError(f"input={input!r}; use mel or roll")
    check_jobs(jobs)
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise ConfigError(f"--threads {threads!r}: use a positive number of torch threads (default 1)")
    try:
        spec = CorpusSpec(**{k: v for k, v in (corpus or {}).items() if v is not None})
    except TypeError as exc:
        raise ConfigError(f"bad corpus option: {exc}") from None
    import torch

    from models import ssast
    from models.training import provenance, resolve_device

    unknown = set(settings) - set(ssast.PretrainConfig.__dataclass_fields__)
    if unknown:
        raise ConfigError(f"unknown pre-training setting(s) {sorted(unknown)}")
    pcfg = ssast.PretrainConfig(input=input, model=model, **{k: v for k, v in settings.items() if v is not None})
    pcfg.check()
    enc = ssast.encoder_settings(model, input)
    ssast.check_mask(pcfg, enc)
    dev = resolve_device(device)
    maestro = corpora.load_maestro(spec.maestro_dir, spec.maestro_splits, spec.maestro_limit) if spec.maestro_dir else None
    cache = Cache(resolve_cache_dir(cache_dir))
    # Through the modules: a test replaces these to prove no work starts before the checks.
    dataset = data.load_dataset(data_dir, include_score=True)
    t0 = time.perf_counter()
    corp = corpora.build_corpus(dataset, cache, spec, maestro=maestro)
    key = ssast.checkpoint_key(corp.fingerprint, enc, pcfg)
    is_default = spec == CorpusSpec() and pcfg == ssast.PretrainConfig(input=input, model=DEFAULT_MODEL[input])
    path = cache.path(ssast.STAGE, key)
    cached = path.is_file() and not force
    if not cached:
        torch.set_num_threads(threads)
        arrays, failed = corpora.corpus_arrays(corp, cache, input, soundfont=soundfont, n_jobs=jobs, transform=_pool(enc),
                                       progress=progress)
        t_inputs = time.perf_counter() - t0
        net, info = ssast.pretrain_arrays(arrays, enc, pcfg, device=dev)
        manifest = {"key": key, "corpus": corp.summary(), "exclusions": corp.exclusion_records(),
                    "encoder": enc, "pretrain": asdict(pcfg),
                    "failed_items": failed, "n_used": len(arrays), "history": info["history"],
                    "train_seconds": info["seconds"], "inputs_seconds": round(t_inputs, 1),
                    "runtime": provenance(device), "threads": torch.get_num_threads(),
                    "data_dir": str(Path(dataset.root).resolve()), "data_hash": dataset.content_hash()}
        ssast.save_checkpoint(cache, key, net.encoder, info["norm"], manifest)
    _, _, manifest = read_checkpoint_arrays(path)
    if is_default:
        write_pointer(cache.root, input, key, manifest["corpus"]["fingerprint"])
    return {"key": key, "path": str(path), "cached": cached, "default": is_default, "manifest": manifest}
