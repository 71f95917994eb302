"""The pre-training corpus of the SSAST encoders: performances nobody rated.

The default corpus holds no rated performance and no near-copy of one:

* ``score``: the dataset's score MIDIs (``virtuoso/data/score_midi``);
* ``unlabelled``: the performance MIDIs without labels (13 upstream);
* ``synthetic``: ``n_synthetic`` random performances of every *kept* score MIDI
  (:mod:`features.perturb`: tempo, timing, velocity and pedal), seeded;
* ``maestro``: with ``maestro_dir``, excerpts of a MAESTRO v3 folder's
  performances (:func:`load_maestro`).

Every candidate item is compared with every labelled segment (the rated
``Score`` / ``Score2`` renderings included) by the near-duplicate measures of
:func:`features.bigrams.near_copies`: it is left out when it and a rated segment
share at least 80 % of the shorter one's note bigrams (pitch and velocity of
consecutive notes: the leakage check's measure) or onset bigrams (chord, gap,
next chord: the same timing whatever the velocities, which catches two
renderings of a score that differ only in their velocity maps), in either
direction: an item holding a rated segment (a whole-piece rendering, a 16-bar
score MIDI holding a rated 8-bar one) or a rated segment holding an item. A
score MIDI left out is never perturbed, and the synthetic performances pass the
same check. :attr:`Corpus.exclusions` lists every (item, rated segment,
measure, fraction, direction) found; the checkpoint's manifest keeps it.

``transductive=True`` adds every labelled PercePiano segment's *input* (never
its ratings): the encoder then sees the test folds' audio, as a transductive
setting does, and the checkpoint's manifest says so.

Generated MIDI files (synthetic performances, MAESTRO excerpts) are written
under ``CACHE/corpus_midi`` with a name that holds their source's digest, and
every item's arrays go through the same cache stages as the segments
(:mod:`features.stages`), so the corpus is rendered once. An item whose file is
byte-identical to an earlier one's is dropped (counted per source). The corpus
``fingerprint`` is a sha256 over the sorted (source kind, file sha256) pairs, the
spec and the near-copy rule: it keys the checkpoints pre-trained on it.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from benchmark.dataset import MIDI_DIR, SCORE_MIDI_DIR
from benchmark.errors import ConfigError, DataError
from benchmark.hashing import file_sha256, read_regular_bytes
from features.bigrams import (
    BIGRAM_VERSION,
    DEFAULT_THRESHOLD,
    MEASURES,
    ONSET_GAP_S,
    ONSET_VERSION,
    near_copies,
    note_bigrams,
    note_cache,
    onset_bigrams,
)
from features.cache import Cache
from features.midi_io import Performance, read_performance
from features.perturb import VERSION as PERTURB_VERSION
from features.perturb import PerturbParams, synthetic_performance, write_performance
from features.roll import assemble
from features.stages import AudioParams, MelParams, RollParams, logmel_for, pianoroll_for

logger = logging.getLogger(__name__)

#: 2: near-copies of rated segments left out by note and onset bigrams (1: by an exact note digest).
VERSION = "2"
SOURCES = ("score", "unlabelled", "synthetic", "maestro", "labelled")
MIDI_SUBDIR = "corpus_midi"
#: The rule that leaves near-copies of rated segments out (part of the fingerprint).
NEAR_COPY = {"threshold": DEFAULT_THRESHOLD, "measures": list(MEASURES), "onset_gap_s": ONSET_GAP_S,
             "versions": [BIGRAM_VERSION, ONSET_VERSION]}
#: Columns MAESTRO v3's metadata holds (maestro-v3.0.0.csv / .json).
MAESTRO_COLUMNS = ("canonical_composer", "canonical_title", "split", "year", "midi_filename", "audio_filename",
                   "duration")
MAESTRO_SPLITS = ("train", "validation", "test")
#: Largest MAESTRO metadata file read (v3's CSV is 0.3 MB, its JSON 0.6 MB).
MAX_MAESTRO_META_BYTES = 64 * 2**20


@dataclass(frozen=True)
class CorpusSpec:
    """What goes into a pre-training corpus; every field is part of its fingerprint.

    Attributes
    ----------
    scores, unlabelled : bool
        Include the score MIDIs / the unlabelled segments (minus near-copies of rated segments).
    n_synthetic : int
        Random performances per score MIDI that is not a near-copy of a rated segment.
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
        for name, low, option in (("n_synthetic", 0, "--n-synthetic"), ("seed", 0, "--corpus-seed"),
                                  ("excerpts_per_piece", 1, "Python API"), ("maestro_limit", 1, "--maestro-limit")):
            value = getattr(self, name)
            if value is None and name == "maestro_limit":
                continue
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
                raise ConfigError(f"corpus {name}={value!r} must be an integer >= {low} ({option})")
        bad = [s for s in self.maestro_splits if s not in MAESTRO_SPLITS]
        if bad:
            raise ConfigError(f"maestro_splits {bad} unknown; use any of {', '.join(MAESTRO_SPLITS)}")
        if (isinstance(self.excerpt_s, bool) or not isinstance(self.excerpt_s, (int, float, np.number))
                or not math.isfinite(self.excerpt_s) or self.excerpt_s <= 0):
            raise ConfigError(f"corpus excerpt_s={self.excerpt_s!r} must be a finite number of seconds > 0")

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["perturb"] = self.perturb.as_dict()
        d["maestro_splits"] = list(self.maestro_splits)
        # The MAESTRO folder enters the fingerprint through its files' bytes, not its path.
        d.pop("maestro_dir")
        d["maestro"] = self.maestro_dir is not None
        return d


#: Columns of :attr:`Corpus.exclusions`.
EXCLUSION_COLUMNS = ("item", "source", "rated", "measure", "shared", "direction")


@dataclass
class Corpus:
    """The items of a corpus and its fingerprint.

    Attributes
    ----------
    items : DataFrame
        One row per performance: ``name``, ``source`` (see :data:`SOURCES`),
        ``midi_path``, ``sha256``.
    fingerprint : str
        sha256 of the spec, the near-copy rule and the sorted (source, file sha256) pairs.
    spec : CorpusSpec
    exclusions : DataFrame
        The candidates left out as near-copies of rated segments, one row per
        (item, rated segment, measure) at or above the threshold:
        :data:`EXCLUSION_COLUMNS`; ``direction`` is ``item contains rated``,
        ``rated contains item`` or ``equal size`` (which one has fewer bigrams).
    unreadable : list of str
        Candidates whose MIDI holds no readable notes (left out too).
    duplicates : dict of str -> int
        Per source, items dropped as byte-identical to an earlier item.
    """

    items: pd.DataFrame
    fingerprint: str
    spec: CorpusSpec
    exclusions: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=list(EXCLUSION_COLUMNS)))
    unreadable: list[str] = field(default_factory=list)
    duplicates: dict[str, int] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.items)

    @property
    def excluded(self) -> list[str]:
        """Names of the candidates left out as near-copies of rated segments, by source, then name.

        A name may appear twice: an unlabelled segment and a score MIDI can share one.
        """
        pairs = self.exclusions[["source", "item"]].drop_duplicates().sort_values(["source", "item"])
        return list(pairs["item"])

    def summary(self) -> dict[str, Any]:
        """What a checkpoint's manifest records about the corpus it saw (the pairs: :meth:`exclusion_records`)."""
        counts = self.items["source"].value_counts()
        left_out = self.exclusions.drop_duplicates(["source", "item"])["source"].value_counts()
        return {"fingerprint": self.fingerprint, "n_items": len(self), "version": VERSION,
                "counts": {s: int(counts.get(s, 0)) for s in SOURCES},
                "transductive": self.spec.transductive, "spec": self.spec.as_dict(),
                "maestro_dir": self.spec.maestro_dir,
                "excluded": {s: int(left_out.get(s, 0)) for s in SOURCES if s != "labelled"},
                "n_excluded": len(self.excluded),
                "n_rated_matched": int(self.exclusions["rated"].nunique()),
                "unreadable": list(self.unreadable), "near_copy": NEAR_COPY,
                "duplicates": {s: int(self.duplicates.get(s, 0)) for s in SOURCES}}

    def exclusion_records(self) -> list[dict[str, Any]]:
        """:attr:`exclusions` as JSON-ready rows (``shared`` rounded to 4 decimals)."""
        return [{**r, "shared": round(float(r["shared"]), 4)} for r in self.exclusions.to_dict("records")]


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
    if not (csvs or jsons):
        raise DataError(f"no maestro-v*.csv or maestro-v*.json in {str(root)!r}; is it a MAESTRO v3 folder?")
    src = csvs[-1] if csvs else jsons[-1]
    try:
        raw = read_regular_bytes(src, "MAESTRO metadata", MAX_MAESTRO_META_BYTES)  # v3's CSV is 0.3 MB
        meta = pd.read_csv(io.BytesIO(raw)) if csvs else _maestro_json(json.loads(raw.decode("utf-8")))
    except (ValueError, UnicodeDecodeError, TypeError, AttributeError) as exc:
        # pandas' ParserError and EmptyDataError and json's JSONDecodeError are ValueErrors.
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(f"cannot read MAESTRO metadata {src}: {first}; is it MAESTRO v3's "
                        f"{'CSV' if csvs else 'JSON'} file?") from None
    missing = [c for c in ("split", "midi_filename") if c not in meta.columns]
    if missing:
        raise DataError(f"{src} lacks column(s) {missing}; MAESTRO v3 lists {', '.join(MAESTRO_COLUMNS)}")
    meta = meta[meta["split"].isin(splits)].reset_index(drop=True)
    if limit is not None:
        meta = meta.head(int(limit))
    blank = [i for i, f in enumerate(meta["midi_filename"]) if not isinstance(f, str) or not f.strip()]
    if blank:
        raise DataError(f"{len(blank)} row(s) of {src} in the split(s) {', '.join(splits)} have no midi_filename "
                        f"(e.g. row {blank[0] + 1}); fix or remove them")
    meta["midi_path"] = [str((root / f).resolve()) for f in meta["midi_filename"]]
    absent = [p for p in meta["midi_path"] if not Path(p).is_file()]
    if absent:
        raise DataError(f"{len(absent)} MIDI file(s) listed in {src.name} are missing, e.g. {absent[0]}")
    return meta


def _maestro_json(raw) -> pd.DataFrame:
    """MAESTRO's JSON metadata: column-oriented in v3 ({column: {row index: value}}), or a list of rows."""
    if isinstance(raw, list):
        return pd.DataFrame(raw)
    if not isinstance(raw, dict) or not all(isinstance(v, dict) for v in raw.values()):
        raise ValueError("expected {column: {row index: value}} or a list of rows")
    meta = pd.DataFrame({k: pd.Series(v) for k, v in raw.items()})
    return meta.sort_index(key=lambda ix: ix.astype(int))


def _maestro_excerpts(meta: pd.DataFrame, out_dir: Path, spec: CorpusSpec) -> list[dict]:

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


def build_corpus(dataset, cache: Cache, spec: CorpusSpec = CorpusSpec(), *,
                 maestro: pd.DataFrame | None = None) -> Corpus:
    """List (and write the generated MIDI of) the corpus ``spec`` describes, without near-copies of rated segments.

    Parameters
    ----------
    dataset : benchmark.dataset.Dataset
        PercePiano, loaded with its score renderings (``include_score=True``) so every rated performance is known.
    cache : Cache
        Generated MIDI goes under ``cache.root / "corpus_midi"``; the note and onset bigrams of
        every file compared go in its ``note_bigrams`` stage.
    spec : CorpusSpec
    maestro : DataFrame, optional
        :func:`load_maestro` of ``spec.maestro_dir``, when the caller read it already (to check it early).

    Returns
    -------
    Corpus

    Raises
    ------
    DataError
        The corpus would be empty, or a MAESTRO folder is unreadable.
    """

    root = Path(dataset.root)
    out_dir = cache.root / MIDI_SUBDIR
    score_dir = root / SCORE_MIDI_DIR
    score_files = sorted(score_dir.glob("*.mid")) if score_dir.is_dir() else []
    # The score MIDIs are screened whenever they are used: as items, or as the sources of synthetic ones.
    candidates = ([{"name": p.stem, "source": "score", "midi_path": str(p)} for p in score_files]
                  if spec.scores or spec.n_synthetic else [])
    if spec.unlabelled:
        files = {p.stem.strip(): p for p in (root / MIDI_DIR).glob("*.mid")}
        candidates += [{"name": n, "source": "unlabelled", "midi_path": str(files[n])}
                       for n in dataset.unlabelled if n in files]
    if spec.maestro_dir:
        if maestro is None:
            maestro = load_maestro(spec.maestro_dir, spec.maestro_splits, spec.maestro_limit)
        candidates += _maestro_excerpts(maestro, out_dir, spec)
    with note_cache(cache):
        rated, unread_rated = _readable([{"name": sid, "midi_path": p} for sid, p in
                                         zip(dataset.meta["sample_id"], dataset.meta["midi_path"], strict=True)])
        if unread_rated:
            logger.warning("%d labelled segment(s) hold no readable notes, so no corpus item is checked against "
                           "them: %s", len(unread_rated), ", ".join(unread_rated[:5]))
        kept, unreadable, exclusions = _screen(candidates, rated)
        synthetic = [r for p in kept if p["source"] == "score" for r in _synthetic(p, out_dir, spec)]
        synthetic, unreadable_synth, excl_synth = _screen(synthetic, rated)
    rows = [r for r in kept if r["source"] == "score" and spec.scores]
    rows += [r for r in kept if r["source"] == "unlabelled"]
    rows += synthetic + [r for r in kept if r["source"] == "maestro"]
    if spec.transductive:
        rows += [{"name": sid, "source": "labelled", "midi_path": str(p)}
                 for sid, p in zip(dataset.meta["sample_id"], dataset.meta["midi_path"], strict=True)]
    if not rows:
        raise DataError("the pre-training corpus is empty; enable score MIDIs, synthetic performances or MAESTRO")
    items = pd.DataFrame(rows, columns=["name", "source", "midi_path"])
    items["sha256"] = [file_sha256(p) for p in items["midi_path"]]
    # Byte-identical files (the dataset has identical Score/Score2 score MIDIs, hence identical synthetic
    # performances) would weigh one performance twice: keep the first.
    twice = items["sha256"].duplicated()
    duplicates = {s: int(n) for s, n in items.loc[twice, "source"].value_counts().items()}
    items = items[~twice].reset_index(drop=True)
    h = hashlib.sha256(json.dumps({"version": VERSION, "spec": spec.as_dict(), "near_copy": NEAR_COPY},
                                  sort_keys=True).encode())
    for src, sha in sorted(zip(items["source"], items["sha256"], strict=True)):
        h.update(f"{src}:{sha}".encode())
    frames = [e for e in (exclusions, excl_synth) if len(e)]
    corpus = Corpus(items=items, fingerprint=h.hexdigest(), spec=spec,
                    exclusions=pd.concat(frames, ignore_index=True) if frames else exclusions,
                    unreadable=sorted(unreadable + unreadable_synth), duplicates=duplicates)
    summary = corpus.summary()
    logger.info("corpus: %d items (%s); left out as near-copies of %d rated segments: %s; %d unreadable",
                len(items), summary["counts"], summary["n_rated_matched"], summary["excluded"],
                len(corpus.unreadable))
    return corpus


def _readable(rows: list[dict]) -> tuple[list[dict], list[str]]:
    """The rows whose MIDI holds readable notes, and the names of the others (the bigrams are now memoised)."""
    good, bad = [], []
    for r in rows:
        try:
            note_bigrams(r["midi_path"])
            onset_bigrams(r["midi_path"])
        except DataError:
            bad.append(r["name"])
            continue
        good.append(r)
    return good, bad


def _screen(candidates: list[dict], rated: list[dict]) -> tuple[list[dict], list[str], pd.DataFrame]:
    """Split candidates into kept ones, unreadable ones and near-copies of a rated segment (:func:`near_copies`).

    Returns the kept rows, the unreadable names and the exclusion pairs (:data:`EXCLUSION_COLUMNS`).
    """
    readable, unreadable = _readable(candidates)
    pairs = near_copies([r["midi_path"] for r in readable], [r["midi_path"] for r in rated])
    n_item, n_rated = pairs["n_a"].to_numpy(), pairs["n_b"].to_numpy()
    direction = np.where(n_rated < n_item, "item contains rated",
                         np.where(n_item < n_rated, "rated contains item", "equal size"))
    excl = pd.DataFrame({"item": [readable[i]["name"] for i in pairs["a"]],
                         "source": [readable[i]["source"] for i in pairs["a"]],
                         "rated": [rated[j]["name"] for j in pairs["b"]], "measure": pairs["measure"].to_numpy(),
                         "shared": pairs["shared"].to_numpy(dtype=float), "direction": direction},
                        columns=list(EXCLUSION_COLUMNS))
    excl = excl.sort_values(["source", "item", "rated", "measure"], kind="stable").reset_index(drop=True)
    hit = set(pairs["a"].tolist())
    return [r for i, r in enumerate(readable) if i not in hit], unreadable, excl


def _synthetic(score: dict, out_dir: Path, spec: CorpusSpec) -> list[dict]:
    """The ``spec.n_synthetic`` random performances of one score MIDI (written once, then found)."""
    p = Path(score["midi_path"])
    digest = file_sha256(p)
    rows = []
    for k in range(spec.n_synthetic):
        out = out_dir / f"synth-{digest[:16]}-s{spec.seed}-{k}-v{PERTURB_VERSION}-{_params_tag(spec)}.mid"
        if not out.is_file():
            try:
                synthetic_performance(p, out, index=k, seed=spec.seed, source_digest=digest, params=spec.perturb)
            except DataError as exc:
                logger.warning("no synthetic performance of %s: %s", p.name, exc)
                break
        rows.append({"name": f"{p.stem}~{k}", "source": "synthetic", "midi_path": str(out)})
    return rows


def _params_tag(spec: CorpusSpec) -> str:
    blob = json.dumps(spec.perturb.as_dict(), sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()[:8]


def _ensure_one(row: dict, cache: Cache, kind: str, soundfont: str | None) -> tuple[str, str | None]:

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

            a = assemble(pianoroll_for(r, cache, RollParams.like(AudioParams(), MelParams())))
        arrays.append(transform(a) if transform is not None else a)
    if failed:
        logger.warning("%d corpus item(s) could not be rendered: %s", len(failed), ", ".join(sorted(failed)[:5]))
    return arrays, sorted(failed)
