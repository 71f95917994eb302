"""Common checks run over every registered model (timm/sklearn style)."""

import numpy as np
import pytest
from sklearn.exceptions import NotFittedError

from features.sets import is_array_stage
from models import MODELS, Estimator
from tests.models.neural_inputs import make_segment_inputs, quick_params


@pytest.fixture(autouse=True)
def _one_torch_thread(monkeypatch):
    # The machine is shared: a neural fit takes the threads the runner would give one job (OMP_NUM_THREADS,
    # read by models.training.set_threads); two OpenMP threads on a loaded machine cost tenfold here.
    monkeypatch.setenv("OMP_NUM_THREADS", "1")


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(120, 8))
    X[rng.random(X.shape) < 0.05] = np.nan  # imputation happens inside the model
    w = rng.normal(size=(8, 19))
    y = np.nan_to_num(X) @ w * 0.1 + rng.normal(0, 0.05, (120, 19))
    groups = np.repeat(np.arange(12), 10)
    return X, y, groups


@pytest.fixture(scope="module")
def member_data(data):
    """What an ensemble consumes: three members' predictions, shape (n_samples, n_members, n_targets)."""
    _, y, groups = data
    rng = np.random.default_rng(1)
    X = np.stack([y + rng.normal(0, s, y.shape) for s in (0.05, 0.2, 1.0)], axis=1)
    return X, y, groups


@pytest.fixture(scope="module")
def segment_data(data, tmp_path_factory):
    """What a model with an array stage consumes: a lazy view with fake spectrograms, rolls and the table."""
    X, y, groups = data
    return make_segment_inputs(tmp_path_factory.mktemp("cache"), y, X), y, groups


@pytest.fixture()
def inputs(data, member_data, segment_data):
    """The right kind of input for each registered model (registry metadata says which)."""
    def pick(name):
        spec = MODELS.get(name)
        if "member_predictions" in spec.inputs:
            return member_data
        if "imported_predictions" in spec.inputs:  # a file's predictions of the same segments
            X, y, groups = member_data
            return X[:, 0, :], y, groups
        return segment_data if any(is_array_stage(i) for i in spec.inputs) else data
    return pick


def build(name, **params):
    """A registered model; neural ones with test-sized settings (:data:`QUICK`)."""
    spec = MODELS.get(name)
    if "neural" in spec.tags:
        params = {**quick_params(spec), **params}
    return MODELS.build(name, **params)


@pytest.mark.parametrize("name", MODELS.names())
def test_protocol_shapes_and_no_nan(name, inputs):
    X, y, groups = inputs(name)
    est = build(name, random_state=0)
    assert isinstance(est, Estimator)
    assert est.fit(X[:100], y[:100], groups=groups[:100]) is est
    pred = est.predict(X[100:])
    assert pred.shape == (20, 19) and np.isfinite(pred).all()
    assert "random_state" in est.get_params()


@pytest.mark.parametrize("name", MODELS.names())
def test_predict_before_fit_raises(name, inputs):
    with pytest.raises(NotFittedError, match="not fitted"):
        build(name, random_state=0).predict(inputs(name)[0])


@pytest.mark.parametrize("name", MODELS.names())
def test_fit_is_idempotent_and_seeded(name, inputs):
    X, y, groups = inputs(name)
    a = build(name, random_state=1).fit(X, y, groups=groups).predict(X)
    est = build(name, random_state=1)
    est.fit(X[:50], y[:50])  # state from an earlier fit must not leak into the next
    b = est.fit(X, y, groups=groups).predict(X)
    np.testing.assert_allclose(a, b)


def test_mean_baseline_predicts_training_mean(data):
    X, y, _ = data
    pred = MODELS.build("mean").fit(X[:60], y[:60]).predict(X[60:])
    np.testing.assert_allclose(pred, np.tile(y[:60].mean(axis=0), (60, 1)))


def test_learners_beat_the_mean_on_a_learnable_signal(data):
    X, y, groups = data
    base = np.mean((MODELS.build("mean").fit(X[:90], y[:90]).predict(X[90:]) - y[90:]) ** 2)
    for name in ("ridge", "rf", "lgbm", "xgb"):
        mse = np.mean((MODELS.build(name, random_state=0).fit(X[:90], y[:90], groups=groups[:90])
                       .predict(X[90:]) - y[90:]) ** 2)
        assert mse < base, name


def test_ridge_inner_cv_is_grouped_and_sees_training_fold_only(data, monkeypatch):
    X, y, groups = data
    seen = {}
    from sklearn.model_selection import GroupKFold

    orig = GroupKFold.split

    def spy(self, X_, y_=None, groups=None):
        seen["n"] = len(X_)
        seen["groups"] = set(np.asarray(groups))
        return orig(self, X_, y_, groups)

    monkeypatch.setattr(GroupKFold, "split", spy)
    est = MODELS.build("ridge").fit(X[:80], y[:80], groups=groups[:80])
    assert seen == {"n": 80, "groups": set(groups[:80])}
    assert est.estimator_.best_params_["ridge__alpha"] in est.alphas


def test_ensemble_mean_is_the_members_average(member_data):
    X, y, _ = member_data
    pred = MODELS.build("ensemble_mean").fit(X, y).predict(X)
    np.testing.assert_array_equal(pred, X.mean(axis=1))


def test_stacker_weights_are_scipy_nnls_per_target_and_favour_the_accurate_member(member_data):
    from scipy.optimize import nnls

    X, y, _ = member_data
    est = MODELS.build("stack").fit(X, y)
    for j in range(y.shape[1]):
        np.testing.assert_allclose(est.weights_[:, j], nnls(X[:, :, j], y[:, j])[0], rtol=0, atol=1e-12)
    assert (est.weights_ >= 0).all()
    # the least noisy member (sd 0.05) carries most of the weight in every target
    assert (est.weights_.argmax(axis=0) == 0).all() and (est.weights_[0] > 0.8).all()
    np.testing.assert_allclose(est.predict(X), np.einsum("nmt,mt->nt", X, est.weights_))
