"""Attention rollout, the hybrid's attributions, the explain figure and the command's errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from benchmark.errors import DataError  # noqa: E402
from features.mel import band_frequencies  # noqa: E402
from models.ast import ASTConfig, ASTEncoder  # noqa: E402
from models.attribution import explain_input, rollout, spread  # noqa: E402
from reports.plots import plot_explanation, save_figures  # noqa: E402


def test_rollout_of_self_attention_is_uniform_over_patches():
    n = 1 + 6
    maps = [torch.eye(n).expand(2, 3, n, n).clone() for _ in range(4)]
    rel = rollout(maps, "mean")
    assert rel.shape == (2, 6)
    torch.testing.assert_close(rel, torch.full((2, 6), 1 / 6))
    torch.testing.assert_close(rollout(maps, "cls"), torch.zeros(2, 6))  # CLS attends to itself only


def test_rollout_follows_attention_to_one_patch():
    n = 1 + 4
    a = torch.zeros(1, 2, n, n)
    a[..., 3] = 1.0  # every token attends to patch 2 (token 3)
    rel = rollout([a], "cls")
    # 0.5 * attention + 0.5 * identity: CLS keeps half on itself, gives half to patch 2.
    torch.testing.assert_close(rel, torch.tensor([[0.0, 0.0, 0.5, 0.0]]))


def test_rollout_of_an_encoder_has_the_grid_shape():
    cfg = ASTConfig(n_bands=64, n_frames=128, patch=(16, 8), stride=(16, 8), dim=32, depth=2, heads=2)
    enc = ASTEncoder(cfg).eval()
    with torch.no_grad():
        _, maps = enc.encode(enc.patch_tokens(torch.randn(3, 1, 64, 128)), return_attention=True)
    rel = rollout(maps).reshape(3, *cfg.grid)
    assert rel.shape == (3, 4, 16)
    assert torch.all(rel >= 0) and torch.all(rel.sum(dim=(1, 2)) <= 1 + 1e-5)
    spread_map = spread(rel.numpy(), cfg, 200, [0, 64, 72])
    assert spread_map.shape == (64, 200)


def test_spread_puts_each_patch_weight_on_its_frames():
    cfg = ASTConfig(n_bands=4, n_frames=4, patch=(2, 2), stride=(2, 2), dim=8, depth=1, heads=1)
    w = np.arange(4, dtype=float).reshape(1, 2, 2)
    m = spread(w, cfg, 4, [0])
    np.testing.assert_array_equal(m, [[0, 0, 1, 1], [0, 0, 1, 1], [2, 2, 3, 3], [2, 2, 3, 3]])


TARGETS = [f"rating_{j}" for j in range(19)]


def _result(kind="mel", features=None):
    bands = band_frequencies(22050, 128, pool=2) if kind == "mel" else np.arange(21, 109)
    channels = 1 if kind == "mel" else 4
    rng = np.random.default_rng(0)
    return {"input": rng.normal(size=(channels, len(bands), 50)), "map": rng.random((len(bands), 50)),
            "kind": kind, "frame_rate": 12.5, "bands": bands, "targets": TARGETS,
            "prediction": np.full(19, 0.5), "rating": np.linspace(0.4, 0.7, 19), "target": "rating_3",
            "features": features or [], "attribution_of": "rating: rating_3"}


def test_explain_figure_has_seconds_hz_colour_bars_prediction_and_rating(tmp_path):
    fig = plot_explanation(_result(features=[("au_rms_mean", 0.2), ("mi_velocity_mean", -0.1)]), title="t")
    ax = fig.axes[0]
    assert ax.get_xlabel() == "time (s)" and ax.get_xlim() == pytest.approx((0.0, 50 / 12.5))
    assert ax.get_ylabel() == "frequency (Hz, mel scale)"
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert {"200", "1k", "4k"} <= set(labels) and "100" not in labels  # 100 Hz would sit on 200 Hz's label
    assert np.diff(ax.get_yticks()).min() >= 0.04 * 64
    # 1 kHz sits at the band whose centre is 1 kHz (interpolated between band centres).
    bands = band_frequencies(22050, 128, pool=2)
    assert ax.get_yticks()[labels.index("1k")] == pytest.approx(np.interp(1000, bands, np.arange(len(bands))))
    bars = [a for a in fig.axes if getattr(a, "_colorbar", None) is not None]
    assert {b.get_ylabel() for b in bars} == {"attention rollout (share of the maximum)", "log-mel (dB)"}
    panel = fig.axes[1]
    assert "predicted 0.500, rated 0.450" in panel.get_title()  # rating_3 = 0.4 + 3 * 0.3 / 18
    assert [t.get_text() for t in panel.get_xticklabels()][3] == "rating 3"
    assert "gradient x input (rating: rating_3)" in fig.axes[2].get_xlabel()
    png = save_figures({"x": (fig, "")}, tmp_path)[0][0]
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_explain_figure_of_a_roll_names_the_pitches():
    fig = plot_explanation(_result("roll"), title="t")
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels == [f"C{o}" for o in range(1, 9)] and ax.get_yticks()[labels.index("C4")] == 60 - 21
    assert ax.get_ylabel() == "pitch"
    assert "sounding notes (share of the frame)" in {a.get_ylabel() for a in fig.axes
                                                     if getattr(a, "_colorbar", None) is not None}


@pytest.fixture(scope="module")
def hybrid(tmp_path_factory):
    """A tiny hybrid fitted once on synthetic inputs: (estimator, inputs, ratings)."""
    from neural_inputs import QUICK, make_segment_inputs

    from models import MODELS

    rng = np.random.default_rng(0)
    y = rng.normal(size=(24, 19))
    X = make_segment_inputs(tmp_path_factory.mktemp("hybrid") / "cache", y, rng.normal(size=(24, 5)))
    est = MODELS.build("hybrid", **{**QUICK, "epochs": 1}, size="ultratiny", random_state=0).fit(X[:20], y[:20])
    return est, X, y


def test_hybrid_attributions_of_one_rating_are_that_outputs_gradient_x_input(hybrid):
    from models.training import windows

    est, X, _ = hybrid
    one, mean = explain_input(est, X[[22]], target=4), explain_input(est, X[[22]])
    # By hand: the standardised table repeated over the test windows, d output 4 / d input, times input.
    a = est._load(X[[22]])[0]
    w = windows(a, int(est.crop), max(1, int(est.crop) // 2), est.input).astype(np.float32)
    x = torch.from_numpy((w - est.norm_[0]) / est.norm_[1])
    tb = torch.from_numpy(np.repeat(est._table(X[[22]]).astype(np.float32), len(w), axis=0)).requires_grad_(True)
    est.net_(x, tb)[:, 4].sum().backward()
    want = (tb.grad * tb).mean(dim=0).detach().numpy()
    got = dict(one["features"])
    np.testing.assert_allclose([got[f"f{j}"] for j in range(5)], want, rtol=1e-5, atol=1e-7)
    assert not np.allclose([got[f"f{j}"] for j in range(5)], [dict(mean["features"])[f"f{j}"] for j in range(5)])
    np.testing.assert_allclose(one["prediction"], mean["prediction"])


def _neural_job(tmp_path, est):
    """A run directory with one finished hybrid job (its params and fitted weights)."""
    from benchmark.store import JobKey, RunStore

    store = RunStore(tmp_path / "run")
    store.create()
    key = JobKey("hybrid", 0, 0)
    (store.jobs_dir / f"{key.name}.params.json").write_text(
        json.dumps({"model": "hybrid", "base": "hybrid", "params": est.get_params()}))
    np.savez(store.jobs_dir / f"{key.name}.state.npz", **est.export_state())
    return store, key


@pytest.mark.parametrize("damage", ["params_garbage", "params_not_a_model", "state_truncated", "state_wrong_shape"])
def test_explain_on_damaged_job_files_is_one_clear_error(tmp_path, hybrid, damage):
    """A damaged params.json or state.npz gives a DataError naming the job and the resume command (the CLI
    prints it as one line), never a traceback of json, zipfile or torch."""
    from benchmark.explain import _estimator

    est, X, _ = hybrid
    store, key = _neural_job(tmp_path, est)
    np.testing.assert_array_equal(_estimator(store, key).predict(X[20:]), est.predict(X[20:]))  # intact: it comes back
    params = store.jobs_dir / f"{key.name}.params.json"
    state = store.jobs_dir / f"{key.name}.state.npz"
    if damage == "params_garbage":
        params.write_bytes(b"\xff{not json")
    elif damage == "params_not_a_model":
        params.write_text(json.dumps({"model": "hybrid", "params": {"epochs": 2}}))
    elif damage == "state_truncated":
        state.write_bytes(state.read_bytes()[:200])
    else:
        arrays = dict(np.load(state))
        name = next(k for k in arrays if k.startswith("net/") and arrays[k].ndim == 2)
        arrays[name] = np.zeros((3, 3), dtype=arrays[name].dtype)
        np.savez(state, **arrays)
    with pytest.raises(DataError, match=rf"job {key.name}: .*benchmark run --resume"):
        _estimator(store, key)
