"""Note-level families and the training tools every neural family shares: shapes, parameter counts, masking,
hierarchical pooling, losses (ranking, learnt weights) against hand-computed values, learning a toy target,
determinism, test-time augmentation, and the test fold never reaching fit."""

import math

import numpy as np
import pytest
import scipy.stats
import torch

from benchmark.errors import ConfigError
from models import MODELS
from models.note_models import FEATURES, KEYS, ROW, NoteAugment, count_note_params, to_window_layout
from tests.models.neural_inputs import QUICK, QUICK_NOTES, fake_notes, make_segment_inputs

torch.set_num_threads(1)  # the test machine is shared; one thread avoids OpenMP spinning

NOTE_MODELS = [s.name for s in MODELS if "notes" in s.tags]


def _n_table(spec) -> int:
    from models.neural import _n_table_features

    tables = [i for i in spec.inputs if i != "notes"]
    return _n_table_features(tables) if tables else 0


def _window(n: int, pad_to: int, seed: int = 0) -> torch.Tensor:
    a = to_window_layout(fake_notes(np.random.default_rng(seed), n, 0.3))
    out = np.zeros((1, a.shape[1], pad_to), dtype=np.float32)
    out[..., :n] = a
    return torch.from_numpy(out)[None]


def test_the_four_families_are_registered_with_notes_among_their_inputs():
    assert NOTE_MODELS == ["note_bilstm", "note_han", "note_hybrid", "note_transformer"]
    for name in NOTE_MODELS:
        spec = MODELS.get(name)
        assert "notes" in spec.inputs and "neural" in spec.tags
    assert set(MODELS.get("note_hybrid").inputs) == {"notes", "midi", "score", "audio"}


@pytest.mark.parametrize("name", NOTE_MODELS)
def test_registered_sizes_forward_with_the_listed_parameter_count_and_ignore_padding(name):
    from models.note_nets import NoteHybridNet, NoteNet

    spec = MODELS.get(name)
    model = spec.build()
    cfg = model.net_config()
    n_table = _n_table(spec)
    torch.manual_seed(0)
    if name == "note_hybrid":
        net = NoteHybridNet(cfg, n_table, 19, fusion=model.fusion, dense_hidden=model.dense_hidden)
    else:
        net = NoteNet(cfg, 19)
    assert sum(p.numel() for p in net.parameters()) == count_note_params(model, n_table)
    assert sum(p.numel() for p in net.parameters()) < 200_000  # CPU-trainable sizes
    net.eval()
    table = torch.randn(1, n_table) if n_table else None
    with torch.no_grad():
        short = net(_window(40, 40), table)
        padded = net(_window(40, model.crop), table)
        batch = net(torch.cat([_window(40, 64), _window(64, 64, seed=1)]), None if table is None else table.repeat(2, 1))
    assert short.shape == (1, 19) and batch.shape == (2, 19) and torch.isfinite(batch).all()
    # Padding is masked: the same notes give the same output however long the window.
    torch.testing.assert_close(short, padded, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(batch[:1], short, atol=1e-5, rtol=1e-5)


def test_run_ids_number_runs_of_equal_keys():
    from models.note_nets import run_ids

    keys = torch.tensor([[[0, 0], [0, 0], [1, 0], [1, 0], [3, 1], [2, 1], [0, 0], [0, 0]]], dtype=torch.float32)
    mask = torch.tensor([[True] * 6 + [False] * 2])
    ids, n = run_ids(keys, mask)
    assert ids[0, :6].tolist() == [0, 0, 1, 1, 2, 3] and n == 4
    bar_ids, n_bars = run_ids(keys[..., 1:], mask)
    assert bar_ids[0, :6].tolist() == [0, 0, 0, 0, 1, 1] and n_bars == 2


def test_group_attention_pooling_equals_a_softmax_per_group():
    from models.note_nets import AttentionPool

    torch.manual_seed(0)
    pool = AttentionPool(4)
    h = torch.randn(2, 7, 4)
    ids = torch.tensor([[0, 0, 1, 1, 1, 2, 2], [0, 1, 1, 2, 3, 3, 3]])
    mask = torch.tensor([[True] * 5 + [False] * 2, [True] * 7])
    pooled, gmask = pool.groups(h, ids, mask, 4)
    assert gmask.tolist() == [[True, True, False, False], [True, True, True, True]]
    for b in range(2):
        for g in range(4):
            sel = (ids[b] == g) & mask[b]
            if not sel.any():
                assert torch.all(pooled[b, g] == 0)
                continue
            w = torch.softmax(pool.score(h[b, sel]).squeeze(-1), dim=0)
            torch.testing.assert_close(pooled[b, g], (w[:, None] * h[b, sel]).sum(0))


def test_rank_loss_against_a_hand_computed_value():
    from models.training import make_loss, rank_loss

    p = torch.tensor([[0.0, 0.0], [1.0, 1.0], [2.0, 2.0]], dtype=torch.float64)
    t = torch.tensor([[0.0, 1.0], [2.0, 1.0], [1.0, 0.0]], dtype=torch.float64)

    def softplus(x):
        return math.log1p(math.exp(x))

    # Target 0: pairs (1,0) t up, p up 1; (2,0) t up, p up 2; (2,1) t down, p up 1.
    # Target 1: (1,0) tied, left out; (2,0) t down, p up 2; (2,1) t down, p up 1.
    want = (softplus(-1) + softplus(-2) + softplus(1) + softplus(2) + softplus(1)) / 5
    assert rank_loss(p, t).item() == pytest.approx(want, abs=1e-12)
    assert make_loss("rank")(p, t).item() == pytest.approx(want, abs=1e-12)
    assert rank_loss(p, torch.ones_like(t)).item() == 0.0  # all tied: nothing to order
    # A perfect order with large margins costs almost nothing; the reverse order a lot.
    assert rank_loss(10 * t, t).item() < 1e-4 < 5 < rank_loss(-10 * t, t).item()


def test_learned_weights_combine_the_three_losses_as_kendall_et_al():
    from models.training import LearnedWeights, make_loss, rank_loss

    rng = np.random.default_rng(0)
    p, t = rng.normal(size=(12, 3)), rng.normal(size=(12, 3))
    loss = make_loss("learned")
    assert isinstance(loss, LearnedWeights)
    mse = np.mean((p - t) ** 2)
    r = np.mean([scipy.stats.pearsonr(p[:, j], t[:, j]).statistic for j in range(3)])
    rank = rank_loss(torch.tensor(p), torch.tensor(t)).item()
    got = loss(torch.tensor(p, dtype=torch.float32), torch.tensor(t, dtype=torch.float32)).item()
    assert got == pytest.approx(0.5 * (mse + (1 - r) + rank), rel=1e-5)  # log variances start at 0
    with torch.no_grad():
        loss.log_vars.copy_(torch.tensor([math.log(2.0), 0.0, -math.log(4.0)]))
    got = loss(torch.tensor(p, dtype=torch.float32), torch.tensor(t, dtype=torch.float32)).item()
    want = 0.25 * mse + 0.5 * (1 - r) + 2.0 * rank + 0.5 * (math.log(2.0) - math.log(4.0))
    assert got == pytest.approx(want, rel=1e-5)
    assert loss.weights() == {"mse": 0.25, "pearson": 0.5, "rank": 2.0}


def _toy(tmp_path, n=96, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.normal(size=(n, 19))
    y[:, 1:] = y[:, :1] * rng.uniform(0.5, 1, 18) + 0.3 * rng.normal(size=(n, 18))
    return make_segment_inputs(tmp_path / "cache", y, rng.normal(size=(n, 5)), seed=seed), y


@pytest.mark.parametrize("name", ["note_bilstm", "note_han", "note_transformer"])
def test_training_learns_a_learnable_toy_target(name, tmp_path):
    X, y = _toy(tmp_path)
    groups = np.repeat(np.arange(8), 12)
    # 20 epochs of 3 steps: fewer leave a head or two with the wrong sign (the network is fine, the head slow).
    est = MODELS.build(name, **{**QUICK_NOTES, "epochs": 20, "patience": 20, "batch_size": 16}, random_state=0)
    est.fit(X[:72], y[:72], groups=groups[:72])
    hist = est.info_["history"]
    assert hist[-1] > hist[0] and est.info_["best_val_r"] > 0.5
    pred = est.predict(X[72:])
    assert np.corrcoef(pred[:, 0], y[72:, 0])[0, 1] > 0.5
    assert np.mean([np.corrcoef(pred[:, j], y[72:, j])[0, 1] for j in range(19)]) > 0.5


@pytest.mark.parametrize("loss", ["rank", "learned"])
def test_the_new_losses_train_a_note_model_and_an_ast(loss, tmp_path):
    X, y = _toy(tmp_path)
    groups = np.repeat(np.arange(8), 12)
    est = MODELS.build("note_bilstm", **{**QUICK_NOTES, "epochs": 8, "patience": 8, "batch_size": 16},
                       loss=loss, random_state=0).fit(X[:72], y[:72], groups=groups[:72])
    assert est.info_["best_val_r"] > 0.5
    if loss == "learned":  # the weights were trained (they start at 0.5 each)
        assert set(est.info_["loss_weights"]) == {"mse", "pearson", "rank"}
        assert all(w != 0.5 for w in est.info_["loss_weights"].values())
    ast = MODELS.build("ast_ultratiny", **{**QUICK, "epochs": 1}, loss=loss, random_state=0).fit(X[:72], y[:72])
    assert np.isfinite(ast.predict(X[72:])).all()


def test_predictions_are_deterministic_under_a_seed(tmp_path):
    X, y = _toy(tmp_path)
    a = MODELS.build("note_hybrid", **QUICK_NOTES, random_state=3).fit(X[:80], y[:80]).predict(X[80:])
    b = MODELS.build("note_hybrid", **QUICK_NOTES, random_state=3).fit(X[:80], y[:80]).predict(X[80:])
    np.testing.assert_array_equal(a, b)
    c = MODELS.build("note_hybrid", **QUICK_NOTES, random_state=4).fit(X[:80], y[:80]).predict(X[80:])
    assert not np.array_equal(a, c)


@pytest.mark.parametrize("name", ["note_han", "ast_ultratiny", "ast_ultratiny_roll", "hybrid"])
def test_test_time_augmentation_averages_augmented_copies(name, tmp_path):
    from models import training

    X, y = _toy(tmp_path)
    quick = QUICK_NOTES if name.startswith("note") else {**QUICK, "size": "ultratiny"}
    est = MODELS.build(name, **quick, random_state=0).fit(X[:80], y[:80])
    plain = est.predict(X[80:])
    est.tta = 3
    tta = est.predict(X[80:])
    np.testing.assert_array_equal(tta, est.predict(X[80:]))  # a fixed seed: the same copies every time
    assert not np.allclose(tta, plain)
    # By hand: the plain prediction and three copies augmented from the same seeded stream, averaged.
    data = training.Data(est._load(X[80:]), est._table(X[80:]))
    cfg, aug = est._train_config(), est._augment()
    rng = np.random.default_rng([0, 7919])
    total = training.predict(est.net_, data, cfg, est.input, est.norm_, est.device_)
    for _ in range(3):
        copies = [aug.after_crop(aug.before_crop(a, rng), rng) for a in data.arrays]
        total = total + training.predict(est.net_, training.Data(copies, data.table), cfg, est.input, est.norm_,
                                         est.device_)
    np.testing.assert_allclose(tta, total / 4 * est.y_sd_ + est.y_mean_, rtol=1e-6, atol=1e-8)


def test_note_augmentation_by_hand():
    a = np.zeros((1, 1 + len(FEATURES) + len(KEYS), 5), dtype=np.float32)
    a[0, 0, :4] = 1  # the fifth position is padding
    a[0, ROW["pitch"]] = 60
    a[0, ROW["velocity"]] = 100
    a[0, ROW["onset_dev"]] = 0.01
    a[0, ROW["beat"]] = [0, 0, 1, 1, 0]
    aug = NoteAugment(tempo=0.1, velocity=0.5, transpose=2)
    rng = np.random.default_rng(5)
    s, v = rng.uniform(0.9, 1.1), rng.uniform(0.5, 1.5)
    k = int(rng.integers(-2, 3))
    out = aug.after_crop(a, np.random.default_rng(5))
    real = slice(0, 4)
    np.testing.assert_allclose(out[0, ROW["log_duration"], real], np.log2(s), rtol=1e-6)
    np.testing.assert_allclose(out[0, ROW["tempo"], real], np.log2(s), rtol=1e-6)
    np.testing.assert_allclose(out[0, ROW["onset_dev"], real], 0.01 * s, rtol=1e-6)
    np.testing.assert_allclose(out[0, ROW["velocity"], real], min(127, 100 * v), rtol=1e-6)
    np.testing.assert_array_equal(out[0, ROW["pitch"], real], 60 + k)
    np.testing.assert_array_equal(out[:, :, 4], a[:, :, 4])  # padding untouched
    np.testing.assert_array_equal(out[0, ROW["beat"]], a[0, ROW["beat"]])  # score positions untouched
    assert a[0, ROW["pitch"], 0] == 60  # the input is not modified


def test_the_test_fold_never_reaches_fit(tmp_path):
    """Poison the test fold's note arrays and table: the fitted weights must not move."""
    from benchmark.execute import RunInputs, run_job
    from benchmark.jobs import Job
    from benchmark.store import JobKey
    from features.cache import Cache

    X, y = _toy(tmp_path)
    tr, te = np.arange(72), np.arange(72, 96)
    groups = np.repeat(np.arange(8), 12)
    spec = MODELS.get("note_hybrid")
    job = Job(JobKey("note_hybrid", 0, 0), "note_hybrid", tuple(sorted(QUICK_NOTES.items())))

    def fitted(X_):
        ctx = RunInputs(X_.sample_ids, y, groups, {(0, 0): (tr, te)}, {"note_hybrid": X_}, device="cpu")
        out = run_job(job, spec, ctx)
        assert out.ok, out.traceback
        return out.fitted["weights_sha256"], out.pred

    clean_w, clean_pred = fitted(X)
    cache = Cache(tmp_path / "cache")
    for i in te:  # wild but finite notes
        cache.put("notes", X.arrays["notes"].keys[i],
                  {"notes": np.full((30, 18), 1e4, np.float32), "match": np.array([0.0, 0.0])})
    poisoned = X[np.arange(96)]
    poisoned.table[te] = 1e6
    poisoned_w, poisoned_pred = fitted(poisoned)
    assert poisoned_w == clean_w
    assert not np.allclose(poisoned_pred, clean_pred)  # the poison did reach predict: the check has teeth


def test_performance_only_features_leave_out_what_the_alignment_adds(tmp_path):
    from models.note_models import NOTE_FEATURES

    X, y = _toy(tmp_path, n=40)
    est = MODELS.build("note_bilstm", **QUICK_NOTES, note_features="performance", random_state=0)
    assert est.net_config().n_features == len(NOTE_FEATURES["performance"]) == 7
    window = est._load(X[[0]])[0]
    assert window.shape[:2] == (1, 1 + 7 + len(KEYS))
    np.testing.assert_array_equal(window[0, 3], X.notes(0)[:, 3])  # row 3: velocity, the stage's column 3
    assert not {"tempo", "onset_dev", "articulation", "matched"} & set(NOTE_FEATURES["performance"])
    assert np.isfinite(est.fit(X[:32], y[:32]).predict(X[32:])).all()


def test_a_restored_state_predicts_like_the_fitted_model(tmp_path):
    X, y = _toy(tmp_path)
    est = MODELS.build("note_hybrid", **QUICK_NOTES, random_state=0).fit(X[:80], y[:80])
    restored = MODELS.build("note_hybrid", **QUICK_NOTES, random_state=0).load_state(est.export_state())
    np.testing.assert_allclose(restored.predict(X[80:]), est.predict(X[80:]), rtol=1e-6)


def test_bad_parameters_and_inputs_are_clear_errors(tmp_path):
    with pytest.raises(ConfigError, match="encoder='gru'"):
        MODELS.build("note_bilstm", encoder="gru").net_config()
    with pytest.raises(ConfigError, match="hidden=63"):
        MODELS.build("note_bilstm", hidden=63).net_config()
    with pytest.raises(ConfigError, match="divisible by heads"):
        MODELS.build("note_transformer", hidden=66, heads=4).net_config()
    with pytest.raises(ConfigError, match="note_features='score'"):
        MODELS.build("note_han", note_features="score").net_config()
    with pytest.raises(ConfigError, match="pool='max'"):
        MODELS.build("note_han", pool="max").net_config()
    with pytest.raises(ConfigError, match="needs segment inputs with 'notes'"):
        MODELS.build("note_han", **QUICK_NOTES).fit(np.zeros((10, 3)), np.zeros((10, 19)))
    with pytest.raises(ConfigError, match="tta=-1"):
        X, y = _toy(tmp_path, n=40)
        MODELS.build("note_han", **QUICK_NOTES, tta=-1).fit(X, y)
    with pytest.raises(ConfigError, match="no AST configuration"):
        MODELS.build("note_han").ast_config()
