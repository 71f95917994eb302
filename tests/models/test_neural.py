"""Neural families: forward shapes, parameter counts, losses, training, determinism, no test-fold leak."""

import numpy as np
import pytest
import scipy.stats
import torch

from benchmark.errors import ConfigError
from models import MODELS
from models.neural import INPUT_KINDS, NeuralRegressor, count_net_params
from tests.models.neural_inputs import QUICK, make_segment_inputs

torch.set_num_threads(1)  # the test machine is shared; one thread avoids OpenMP spinning

NEURAL = [s.name for s in MODELS if "neural" in s.tags]


def _n_table(spec) -> int:
    from models.neural import _n_table_features

    tables = [i for i in spec.inputs if i not in INPUT_KINDS]
    return _n_table_features(tables) if tables else 0


@pytest.mark.parametrize("name", NEURAL)
def test_every_registered_size_and_input_runs_forward_with_the_listed_parameter_count(name):
    from models.nets import ASTNet, HybridNet

    spec = MODELS.get(name)
    model = spec.build()
    cfg = model.ast_config()
    n_features = _n_table(spec)
    if "hybrid" in spec.tags:
        net = HybridNet(cfg, n_features, 19, fusion=model.fusion, hidden=model.hidden)
        table = torch.randn(2, n_features)
    else:
        net = ASTNet(cfg, 19)
        table = None
    assert sum(p.numel() for p in net.parameters()) == count_net_params(model, n_features)
    net.eval()
    with torch.no_grad():
        out = net(torch.randn(2, cfg.in_chans, cfg.n_bands, cfg.n_frames), table)
    assert out.shape == (2, 19) and torch.isfinite(out).all()
    assert cfg.in_chans == (1 if model.input == "mel" else 4)


def test_ast_base_is_the_86m_configuration():
    model = MODELS.build("ast_base")
    cfg = model.ast_config()
    assert (cfg.depth, cfg.dim) == (12, 768)
    assert 85e6 < count_net_params(model) < 87e6


@pytest.mark.parametrize("fusion", ["concat", "gate", "cross"])
def test_hybrid_fusions_forward_and_count(fusion):
    from models.nets import HybridNet

    model = MODELS.build("hybrid", fusion=fusion, size="ultratiny", crop=32)
    net = HybridNet(model.ast_config(), 7, 19, fusion=fusion, hidden=16)
    model.hidden = 16
    assert sum(p.numel() for p in net.parameters()) == count_net_params(model, 7)
    net.eval()
    out, attn = net(torch.randn(3, 1, 64, 32), torch.randn(3, 7), return_attention=True)
    assert out.shape == (3, 19)
    if fusion == "cross":
        n_patches = model.ast_config().n_patches
        assert attn.shape == (3, 1, n_patches)
        torch.testing.assert_close(attn.sum(-1), torch.ones(3, 1))


def test_pearson_loss_matches_scipy():
    from models.training import make_loss, pearson_r

    rng = np.random.default_rng(0)
    p, t = rng.normal(size=(50, 4)), rng.normal(size=(50, 4))
    t[:, 1] += 2 * p[:, 1]
    r = pearson_r(torch.tensor(p), torch.tensor(t)).numpy()
    expected = [scipy.stats.pearsonr(p[:, j], t[:, j]).statistic for j in range(4)]
    np.testing.assert_allclose(r, expected, atol=1e-9)
    loss = make_loss("pearson")(torch.tensor(p), torch.tensor(t)).item()
    assert loss == pytest.approx(1 - np.mean(expected), abs=1e-9)
    both = make_loss("mse+pearson", 0.25)(torch.tensor(p), torch.tensor(t)).item()
    assert both == pytest.approx(0.25 * np.mean((p - t) ** 2) + 0.75 * (1 - np.mean(expected)), abs=1e-9)
    with pytest.raises(ConfigError, match="loss='huber'"):
        make_loss("huber")


def _toy(tmp_path, n=96, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.normal(size=(n, 19))
    y[:, 1:] = y[:, :1] * rng.uniform(0.5, 1, 18) + 0.3 * rng.normal(size=(n, 18))
    return make_segment_inputs(tmp_path / "cache", y, rng.normal(size=(n, 5)), seed=seed), y


@pytest.mark.parametrize("name", ["ast_ultratiny", "ast_ultratiny_roll"])
def test_training_learns_a_learnable_toy_target(name, tmp_path):
    X, y = _toy(tmp_path)
    groups = np.repeat(np.arange(8), 12)
    est = MODELS.build(name, **{**QUICK, "epochs": 12, "patience": 12, "batch_size": 16}, random_state=0)
    est.fit(X[:72], y[:72], groups=groups[:72])
    hist = est.info_["history"]
    assert hist[-1] > hist[0] and est.info_["best_val_r"] > 0.5
    pred = est.predict(X[72:])
    assert np.corrcoef(pred[:, 0], y[72:, 0])[0, 1] > 0.5


def test_predictions_are_deterministic_under_a_seed(tmp_path):
    X, y = _toy(tmp_path)
    a = MODELS.build("hybrid", **QUICK, size="ultratiny", random_state=3).fit(X[:80], y[:80]).predict(X[80:])
    b = MODELS.build("hybrid", **QUICK, size="ultratiny", random_state=3).fit(X[:80], y[:80]).predict(X[80:])
    np.testing.assert_array_equal(a, b)
    c = MODELS.build("hybrid", **QUICK, size="ultratiny", random_state=4).fit(X[:80], y[:80]).predict(X[80:])
    assert not np.array_equal(a, c)


def test_holdout_is_grouped_and_split_validation_is_used_instead(tmp_path, monkeypatch):
    from models import training

    X, y = _toy(tmp_path)
    groups = np.repeat(np.arange(8), 12)
    seen = []
    orig = training.train

    def spy(net, fit, val, *args, **kwargs):
        seen.append((len(fit), len(val)))
        return orig(net, fit, val, *args, **kwargs)

    monkeypatch.setattr(training, "train", spy)
    est = MODELS.build("ast_ultratiny", **QUICK, random_state=0).fit(X[:72], y[:72], groups=groups[:72])
    n_fit, n_val = seen[-1]
    assert n_fit + n_val == 72 and n_val % 12 == 0  # whole groups held out
    assert est.info_["validation"] == "holdout"
    est.fit(X[:60], y[:60], validation=(X[60:72], y[60:72]))
    assert seen[-1] == (60, 12) and est.info_["validation"] == "split"


def test_the_test_fold_never_reaches_fit(tmp_path):
    """Poison the test fold's cached arrays and table: the fitted weights must not move."""
    from benchmark.execute import RunInputs, run_job
    from benchmark.jobs import Job
    from benchmark.store import JobKey
    from features.cache import Cache

    X, y = _toy(tmp_path)
    tr, te = np.arange(72), np.arange(72, 96)
    groups = np.repeat(np.arange(8), 12)
    spec = MODELS.get("hybrid")
    job = Job(JobKey("hybrid", 0, 0), "hybrid", tuple(sorted({**QUICK, "size": "ultratiny"}.items())))

    def fitted(X_):
        ctx = RunInputs(X_.sample_ids, y, groups, {(0, 0): (tr, te)}, {"hybrid": X_}, device="cpu")
        out = run_job(job, spec, ctx)
        assert out.ok, out.traceback
        return out.fitted["weights_sha256"], out.pred

    clean_w, clean_pred = fitted(X)
    cache = Cache(tmp_path / "cache")
    for i in te:  # garbage spectrograms and rolls, NaN-free but wild
        mel = X.arrays["mel"].keys[i]
        cache.put("mel", mel, {"mel": np.full((128, 50), 1e4, np.float16), "frame_rate": np.asarray(100.0)})
        roll = X.arrays["pianoroll"].keys[i]
        cache.put("roll", roll, {"notes": np.full((2, 88, 50), 255, np.uint8), "pedal": np.zeros((2, 50), np.uint8)})
    poisoned = X[np.arange(96)]
    poisoned.table[te] = 1e6
    poisoned_w, poisoned_pred = fitted(poisoned)
    assert poisoned_w == clean_w
    assert not np.allclose(poisoned_pred, clean_pred)  # the poison did reach predict: the check has teeth


def test_inputs_view_slices_like_an_array_and_pickles_small(tmp_path):
    import pickle

    X, y = _toy(tmp_path, n=20)
    sub = X[np.array([3, 5, 7])]
    assert len(sub) == 3 and sub.shape == (3, 5)
    np.testing.assert_array_equal(sub.mel(1), X.mel(5))
    np.testing.assert_array_equal(sub.pianoroll(2), X.pianoroll(7))
    assert sub.pianoroll(0).dtype == np.uint8 and sub.pianoroll(0).shape[:2] == (4, 88)
    arrays = sum(X.mel(i).nbytes + X.pianoroll(i).nbytes for i in range(len(X)))
    assert len(pickle.dumps(X)) < arrays / 20  # keys, not spectrograms
    with pytest.raises(KeyError, match="no 'chroma' arrays"):
        X.array("chroma", 0)


def test_bad_parameters_and_inputs_are_clear_errors(tmp_path):
    with pytest.raises(ConfigError, match="size='huge'"):
        MODELS.build("ast_tiny", size="huge").ast_config()
    with pytest.raises(ConfigError, match="patch"):
        MODELS.build("ast_tiny", crop=8).ast_config()
    with pytest.raises(ConfigError, match="needs segment inputs"):
        MODELS.build("ast_tiny", **QUICK).fit(np.zeros((10, 3)), np.zeros((10, 19)))
    with pytest.raises(ConfigError, match="device='tpu'"):
        from models.training import resolve_device

        resolve_device("tpu")
    assert isinstance(MODELS.build("ast_tiny"), NeuralRegressor)


def test_declared_losses_and_devices_are_the_trainings():
    """models.neural declares the parameter values without torch; they must be what training accepts."""
    from models import neural, training

    assert neural.LOSSES == training.LOSSES and neural.DEVICES == training.DEVICES
    spec = MODELS.get("ast_tiny")
    assert spec.params["loss"].values == training.LOSSES and spec.params["device"].values == training.DEVICES


def test_every_epoch_logs_its_loss_and_val_r_and_the_end_says_why(tmp_path, caplog, monkeypatch):
    """Issue 17, item 17: one INFO line per epoch with that epoch's numbers (``benchmark -v run`` shows them)."""
    import logging
    import re

    from models import training

    X, y = _toy(tmp_path)
    groups = np.repeat(np.arange(8), 12)
    step_losses = []
    real_step = training.optimiser_step

    def spy(net, loss, *args):
        step_losses.append(float(loss.detach()))
        return real_step(net, loss, *args)

    monkeypatch.setattr(training, "optimiser_step", spy)
    est = MODELS.build("ast_ultratiny", **{**QUICK, "epochs": 3, "patience": 3, "batch_size": 16}, random_state=0)
    with caplog.at_level(logging.INFO, logger="models.training"):
        est.fit(X[:72], y[:72], groups=groups[:72])
    info = est.info_
    lines = [r.getMessage() for r in caplog.records if r.name == "models.training"]
    epochs = [ln for ln in lines if ln.startswith("epoch ")]
    assert len(epochs) == info["epochs_run"] == len(info["train_loss"]) == len(info["history"]) == 3
    steps = info["n_fit"] // 16
    assert len(step_losses) == 3 * steps
    for k, line in enumerate(epochs):
        m = re.fullmatch(r"epoch (\d+)/3: train loss ([\d.]+), val r (-?[\d.]+), best (-?[\d.]+) \(epoch (\d+)\), "
                         r"[\d.]+ s", line)
        assert m is not None, line
        hist = info["history"][: k + 1]
        assert int(m[1]) == k + 1
        # the epoch's train loss is the mean of its steps' losses
        assert float(m[2]) == pytest.approx(np.mean(step_losses[k * steps:(k + 1) * steps]), abs=1e-4)
        assert float(m[2]) == pytest.approx(info["train_loss"][k], abs=1e-4)
        assert float(m[3]) == pytest.approx(hist[-1], abs=1e-4)
        assert float(m[4]) == pytest.approx(max(hist), abs=1e-4)
        assert int(m[5]) == int(np.argmax(hist)) + 1
    # 3 epochs with patience 3 cannot stop early: the cap ended training, and the last line says so
    assert info["hit_epoch_cap"] is True and lines[-1].startswith("hit the epoch cap 3")
    assert f"best val r {info['best_val_r']:.4f} at epoch {info['best_epoch'] + 1}" in lines[-1]
    assert info["cpu_seconds"] > 0


@pytest.mark.parametrize("epochs_run, best_epoch, cap, text", [
    (18, 11, False, "stopped early after epoch 18 (no gain for 6 epochs)"),
    (24, 17, False, "stopped early after epoch 24"),  # the patience ran out on the last epoch
    (24, 23, True, "hit the epoch cap 24 (val r still rising at the last epoch)"),
    (24, 19, True, "hit the epoch cap 24 (best 4 epoch(s) before it)"),
])
def test_stop_reason_tells_the_cap_from_early_stopping(epochs_run, best_epoch, cap, text):
    from models.training import hit_epoch_cap, stop_reason

    assert hit_epoch_cap(epochs_run, 24, best_epoch, 6) is cap
    assert stop_reason(epochs_run, 24, best_epoch, 6).startswith(text)


def test_worker_processes_log_at_the_drivers_level():
    """A fresh process (a loky worker) gets the driver's level; a configured one (the driver) is left alone."""
    import logging
    import subprocess
    import sys

    from benchmark.execute import RunInputs

    root = logging.getLogger()
    old = root.level
    root.setLevel(logging.INFO)
    try:
        ctx = RunInputs(np.array(["a"]), np.zeros((1, 1)), None, {(0, 0): (np.array([0]), np.array([0]))})
    finally:
        root.setLevel(old)
    assert ctx.log_level == logging.INFO

    code = ("import logging; from benchmark.execute import worker_logging; worker_logging({level}); "
            "logging.getLogger('models.training').info('epoch 1/2: hello')")
    out = subprocess.run([sys.executable, "-c", code.format(level=logging.INFO)], capture_output=True, text=True,
                         timeout=60)
    assert "INFO models.training [pid" in out.stderr and "epoch 1/2: hello" in out.stderr, out.stderr
