"""The pre-training corpus of the SSAST encoders: performances nobody rated.

The default corpus holds no rated performance at all:

* ``score``: the dataset's score MIDIs (``virtuoso/data/score_midi``), except
  those whose notes equal a labelled segment's (the dataset's labelled
  ``Score`` / ``Score2`` players are such renderings; they were rated);
* ``unlabelled``: the performance MIDIs without labels (13 upstream);
* ``synthetic``: ``n_synthetic`` random performances of every score MIDI
  (:mod:`features.perturb`: tempo, timing, velocity and pedal), seeded;
* ``maestro``: with ``maestro_dir``, excerpts of a MAESTRO v3 folder's
  performances (:func:`load_maestro`).

``transductive=True`` adds every labelled PercePiano segment's *input* (never
its ratings): the encoder then sees the test folds' audio, as a transductive
setting does, and the checkpoint's manifest says so.

Generated MIDI files (synthetic performances, MAESTRO excerpts) are written
under ``CACHE/corpus_midi`` with a name that holds their source's digest, and
every item's arrays go through the same cache stages as the segments
(:mod:`features.stages`), so the corpus is rendered once. The corpus
``fingerprint`` is a sha256 over the sorted (source kind, file sha256) pairs and
the spec: it keys the checkpoints pre-trained on it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from benchmark.errors import ConfigError, DataError
from benchmark.hashing import file_sha256
from features.cache import Cache
from features.perturb import VERSION as PERTURB_VERSION
from features.perturb import PerturbParams, synthetic_performance, write_performance

logger = logging.getLogger(__name__)

VERSION = "1"
SOURCES = ("score", "unlabelled", "synthetic", "maestro", "labelled")
MIDI_SUBDIR = "corpus_midi"
#: Columns MAESTRO v3's metadata holds (maestro-v3.0.0.csv / .json).
MAESTRO_COLUMNS = ("canonical_composer", "canonical_title", "split", "year", "midi_filename", "audio_filename",
                   "duration")
MAESTRO_SPLITS = ("train", "validation", "test")


@dataclass(frozen=True)
class CorpusSpec:
    """What goes into a pre-training corpus; every field is part of its fingerprint.

    Attributes
    ----------
    scores, unlabelled : bool
        Include the score MIDIs (minus rated ones) / the unlabelled segments.
    n_synthetic : int
        Random performances per score MIDI.
    seed : int
        Seed of the synthetic performances.
    perturb : PerturbParams
    transductive : bool
        Add every labelled segment's input (never its labels).
    maestro_dir : str, optional
        A MAESTRO v3 folder.
    maestro_splits : tuple of str
        Which of its splits to use.
    maestro_limit : int, optional
        At most this many MAESTRO performances (the first, in metadata order).
    excerpt_s : float
        MAESTRO performances are cut into excerpts this long (PercePiano's segments last seconds, not minutes).
    excerpts_per_piece : int
        At most this many excerpts per MAESTRO performance, evenly spaced.
    """

    scores: bool = True
    unlabelled: bool = True
    n_synthetic: int = 3
    seed: int = 0
    perturb: PerturbParams = field(default_factory=PerturbParams)
    transductive: bool = False
    maestro_dir: str | None = None
    maestro_splits: tuple[str, ...] = ("train",)
    maestro_limit: int | None = None
    excerpt_s: float = 30.0
    excerpts_per_piece: int = 4

    def __post_init__(self) -> None:
        if self.n_synthetic < 0:
            raise ConfigError(f"n_synthetic={self.n_synthetic} must be >= 0")
        bad = [s for s in self.maestro_splits if s not in MAESTRO_SPLITS]
        if bad:
            raise ConfigError(f"maestro_splits {bad} unknown; use any of {', '.join(MAESTRO_SPLITS)}")
        if self.excerpt_s <= 0 or self.excerpts_per_piece < 1:
            raise ConfigError("excerpt_s must be > 0 and excerpts_per_piece >= 1")

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["perturb"] = self.perturb.as_dict()
        d["maestro_splits"] = list(self.maestro_splits)
        # The MAESTRO folder enters the fingerprint through its files' bytes, not its path.
        d.pop("maestro_dir")
        d["maestro"] = self.maestro_dir is not None
        return d


@dataclass
class Corpus:
    """The items of a corpus and its fingerprint.

    Attributes
    ----------
    items : DataFrame
        One row per performance: ``name``, ``source`` (see :data:`SOURCES`),
        ``midi_path``, ``sha256``.
    fingerprint : str
        sha256 of the spec and the sorted (source, file sha256) pairs.
    spec : CorpusSpec
    excluded : list of str
        Score MIDIs left out because their notes equal a labelled segment's.
    """

    items: pd.DataFrame
    fingerprint: str
    spec: CorpusSpec
    excluded: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.items)

    def summary(self) -> dict[str, Any]:
        """What a checkpoint's manifest records about the corpus it saw."""
        counts = self.items["source"].value_counts()
        return {"fingerprint": self.fingerprint, "n_items": len(self), "version": VERSION,
                "counts": {s: int(counts.get(s, 0)) for s in SOURCES},
                "transductive": self.spec.transductive, "spec": self.spec.as_dict(),
                "maestro_dir": self.spec.maestro_dir,
                "n_excluded_rated_scores": len(self.excluded)}


def notes_digest(path: str | os.PathLike) -> str | None:
    """sha256 of a MIDI file's notes (onset and offset to the millisecond, pitch, velocity); None if unreadable.

    Two files with the same notes are the same performance whatever their bytes.
    """
    from features.midi_io import read_performance

    try:
        p = read_performance(path)
    except DataError:
        return None
    arr = np.stack([np.round(p.onset * 1000), np.round(p.offset * 1000), p.pitch, p.velocity]).astype(np.int64)
    return hashlib.sha256(arr.tobytes()).hexdigest()


def load_maestro(root: str | os.PathLike, splits: tuple[str, ...] = ("train",),
                 limit: int | None = None) -> pd.DataFrame:
    """Read a MAESTRO v3 folder's metadata (``maestro-v3.0.0.csv``, else ``.json``).

    Parameters
    ----------
    root : path
        The folder holding ``maestro-v*.csv`` / ``.json`` and the year folders.
    splits : tuple of str
        Keep these splits (``train``, ``validation``, ``test``).
    limit : int, optional
        Keep the first ``limit`` performances (metadata order).

    Returns
    -------
    DataFrame
        MAESTRO's columns plus ``midi_path`` (absolute), one row per performance.

    Raises
    ------
    DataError
        No metadata file, a column missing, or a listed MIDI file absent.
    """
    root = Path(root).expanduser()
    if not root.is_dir():
        raise DataError(f"MAESTRO folder {str(root)!r} does not exist; pass the folder of an unpacked "
                        "maestro-v3.0.0 (with maestro-v3.0.0.csv)")
    csvs = sorted(root.glob("maestro-v*.csv"))
    jsons = sorted(root.glob("maestro-v*.json"))
    if csvs:
        meta = pd.read_csv(csvs[-1])
        src = csvs[-1]
    elif jsons:
        try:
            raw = json.loads(jsons[-1].read_text())
        except json.JSONDecodeError as exc:
            raise DataError(f"{jsons[-1]} is not valid JSON: {exc}") from None
        # v3's JSON is column-oriented: {column: {row index: value}}.
        meta = pd.DataFrame(raw) if isinstance(raw, list) else pd.DataFrame({k: pd.Series(v) for k, v in raw.items()})
        meta = meta.sort_index(key=lambda ix: ix.astype(int)) if not isinstance(raw, list) else meta
        src = jsons[-1]
    else:
        raise DataError(f"no maestro-v*.csv or maestro-v*.json in {str(root)!r}; is it a MAESTRO v3 folder?")
    missing = [c for c in ("split", "midi_filename") if c not in meta.columns]
    if missing:
        raise DataError(f"{src} lacks column(s) {missing}; MAESTRO v3 lists {', '.join(MAESTRO_COLUMNS)}")
    meta = meta[meta["split"].isin(splits)].reset_index(drop=True)
    if limit is not None:
        meta = meta.head(int(limit))
    meta["midi_path"] = [str((root / f).resolve()) for f in meta["midi_filename"]]
    absent = [p for p in meta["midi_path"] if not Path(p).is_file()]
    if absent:
        raise DataError(f"{len(absent)} MIDI file(s) listed in {src.name} are missing, e.g. {absent[0]}")
    return meta


def _maestro_excerpts(meta: pd.DataFrame, out_dir: Path, spec: CorpusSpec) -> list[dict]:
    from features.midi_io import Performance, read_performance

    rows = []
    for path in meta["midi_path"]:
        try:
            perf = read_performance(path)
        except DataError as exc:
            logger.warning("MAESTRO file %s skipped: %s", path, exc)
            continue
        digest = file_sha256(path)
        end = float(perf.offset.max())
        n = max(1, min(spec.excerpts_per_piece, int(end // spec.excerpt_s)))
        starts = np.linspace(0.0, max(0.0, end - spec.excerpt_s), n)
        for k, s in enumerate(starts):
            keep = (perf.onset >= s) & (perf.onset < s + spec.excerpt_s)
            if not keep.any():
                continue
            sus = (perf.sustain_times >= s) & (perf.sustain_times < s + spec.excerpt_s)
            soft = (perf.soft_times >= s) & (perf.soft_times < s + spec.excerpt_s)
            part = Performance(path=perf.path, onset=perf.onset[keep] - s, offset=perf.offset[keep] - s,
                               pitch=perf.pitch[keep], velocity=perf.velocity[keep],
                               sustain_times=perf.sustain_times[sus] - s, sustain_values=perf.sustain_values[sus],
                               soft_times=perf.soft_times[soft] - s, soft_values=perf.soft_values[soft])
            out = out_dir / f"maestro-{digest[:16]}-{k}-{int(spec.excerpt_s)}s.mid"
            if not out.is_file():
                write_performance(part, out)
            rows.append({"name": f"{Path(path).stem}#{k}", "source": "maestro", "midi_path": str(out)})
    return rows


def build_corpus(dataset, cache: Cache, spec: CorpusSpec = CorpusSpec()) -> Corpus:
    """List (and write the generated MIDI of) the corpus ``spec`` describes.

    Parameters
    ----------
    dataset : benchmark.dataset.Dataset
        PercePiano, loaded with its score renderings (``include_score=True``) so every rated performance is known.
    cache : Cache
        Generated MIDI goes under ``cache.root / "corpus_midi"``.
    spec : CorpusSpec

    Returns
    -------
    Corpus

    Raises
    ------
    DataError
        The corpus would be empty, or a MAESTRO folder is unreadable.
    """
    from benchmark.dataset import MIDI_DIR, SCORE_MIDI_DIR

    root = Path(dataset.root)
    out_dir = cache.root / MIDI_SUBDIR
    rows: list[dict] = []
    labelled_paths = list(dataset.meta["midi_path"])
    rated = {d for d in (notes_digest(p) for p in labelled_paths) if d is not None}
    excluded: list[str] = []
    score_files = sorted((root / SCORE_MIDI_DIR).glob("*.mid")) if (root / SCORE_MIDI_DIR).is_dir() else []
    if spec.scores:
        for p in score_files:
            d = notes_digest(p)
            if d is None:
                continue
            if d in rated:
                excluded.append(p.stem)
                continue
            rows.append({"name": p.stem, "source": "score", "midi_path": str(p)})
    if spec.unlabelled:
        files = {p.stem.strip(): p for p in (root / MIDI_DIR).glob("*.mid")}
        for name in dataset.unlabelled:
            p = files.get(name)
            if p is not None and notes_digest(p) not in rated:
                rows.append({"name": name, "source": "unlabelled", "midi_path": str(p)})
    for p in score_files if spec.n_synthetic else []:
        digest = file_sha256(p)
        for k in range(spec.n_synthetic):
            out = out_dir / f"synth-{digest[:16]}-s{spec.seed}-{k}-v{PERTURB_VERSION}-{_params_tag(spec)}.mid"
            if not out.is_file():
                try:
                    synthetic_performance(p, out, index=k, seed=spec.seed, source_digest=digest, params=spec.perturb)
                except DataError as exc:
                    logger.warning("no synthetic performance of %s: %s", p.name, exc)
                    break
            rows.append({"name": f"{p.stem}~{k}", "source": "synthetic", "midi_path": str(out)})
    if spec.maestro_dir:
        meta = load_maestro(spec.maestro_dir, spec.maestro_splits, spec.maestro_limit)
        rows += _maestro_excerpts(meta, out_dir, spec)
    if spec.transductive:
        rows += [{"name": sid, "source": "labelled", "midi_path": str(p)}
                 for sid, p in zip(dataset.meta["sample_id"], labelled_paths, strict=True)]
    if not rows:
        raise DataError("the pre-training corpus is empty; enable score MIDIs, synthetic performances or MAESTRO")
    items = pd.DataFrame(rows, columns=["name", "source", "midi_path"])
    items["sha256"] = [file_sha256(p) for p in items["midi_path"]]
    h = hashlib.sha256(json.dumps({"version": VERSION, "spec": spec.as_dict()}, sort_keys=True).encode())
    for src, sha in sorted(zip(items["source"], items["sha256"], strict=True)):
        h.update(f"{src}:{sha}".encode())
    logger.info("corpus: %d items (%s); %d rated score MIDIs left out", len(items),
                dict(items["source"].value_counts()), len(excluded))
    return Corpus(items=items, fingerprint=h.hexdigest(), spec=spec, excluded=excluded)


def _params_tag(spec: CorpusSpec) -> str:
    blob = json.dumps(spec.perturb.as_dict(), sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()[:8]


def _ensure_one(row: dict, cache: Cache, kind: str, soundfont: str | None) -> tuple[str, str | None]:
    from features.stages import AudioParams, MelParams, RollParams, logmel_for, pianoroll_for

    try:
        if kind == "mel":
            logmel_for(row, cache, AudioParams(soundfont=soundfont), MelParams())
        else:
            pianoroll_for(row, cache, RollParams.like(AudioParams(), MelParams()))
    except DataError as exc:
        return row["name"], str(exc)
    return row["name"], None


def corpus_arrays(corpus: Corpus, cache: Cache, kind: str, *, soundfont: str | None = None, n_jobs: int = 1,
                  transform=None, progress: bool = True) -> tuple[list[np.ndarray], list[str]]:
    """Every item's input array (``mel``: log-mel, ``roll``: piano roll), through the cache stages.

    Parameters
    ----------
    corpus : Corpus
    cache : Cache
    kind : {"mel", "roll"}
    soundfont : path, optional
        For the mel stage (default: as :class:`features.stages.AudioParams`).
    n_jobs : int
        Parallel workers that render what the cache lacks.
    transform : callable, optional
        Applied to each array as it is read (e.g. pooling), so the whole corpus never sits in memory unpooled.

    Returns
    -------
    arrays : list of ndarray
        Log-mel float16 (n_mels, T) or roll uint8 (4, 88, T), transformed; items that failed are left out.
    failed : list of str
        Names of the items whose MIDI could not be rendered.

    Raises
    ------
    ConfigError
        Unknown ``kind``.
    """
    from joblib import Parallel, delayed
    from tqdm.auto import tqdm

    from features.stages import AudioParams, MelParams, RollParams, logmel_for, pianoroll_for

    if kind not in ("mel", "roll"):
        raise ConfigError(f"input={kind!r}; use mel or roll")
    rows = corpus.items.to_dict("records")
    jobs = (delayed(_ensure_one)(r, cache, kind, soundfont) for r in rows)
    failed = [name for name, err in tqdm(Parallel(n_jobs=n_jobs, return_as="generator_unordered")(jobs),
                                         total=len(rows), desc=f"corpus:{kind}", disable=not progress)
              if err is not None]
    bad = set(failed)
    arrays = []
    for r in rows:
        if r["name"] in bad:
            continue
        if kind == "mel":
            a = logmel_for(r, cache, AudioParams(soundfont=soundfont), MelParams())[0]
        else:
            from features.roll import assemble

            a = assemble(pianoroll_for(r, cache, RollParams.like(AudioParams(), MelParams())))
        arrays.append(transform(a) if transform is not None else a)
    if failed:
        logger.warning("%d corpus item(s) could not be rendered: %s", len(failed), ", ".join(sorted(failed)[:5]))
    return arrays, sorted(failed)
