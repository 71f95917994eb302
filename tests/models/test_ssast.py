"""SSAST pre-training: masking ratio, both objectives learn, checkpoints key, store and load."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from benchmark.errors import ConfigError  # noqa: E402
from features.cache import Cache  # noqa: E402
from models.ast import ASTConfig  # noqa: E402
from models.registry import MODELS  # noqa: E402
from models.ssast import (  # noqa: E402
    SSAST,
    STAGE,
    PretrainConfig,
    checkpoint_key,
    encoder_settings,
    load_pretrained,
    pretrain_arrays,
    random_mask,
    read_checkpoint,
    resolve_checkpoint,
    save_checkpoint,
)

TOY = {"config": {"in_chans": 1, "n_bands": 16, "n_frames": 32, "patch": [8, 8], "stride": [8, 8], "dim": 32,
                  "depth": 2, "heads": 2, "mlp_ratio": 2.0},
       "freq_pool": 1, "time_pool": 1, "crop": 32, "input": "mel"}


@pytest.mark.parametrize("ratio", [0.1, 0.25, 0.4, 0.5, 0.75])
def test_mask_hides_exactly_the_ratio(ratio):
    n = 64
    mask = random_mask(8, n, ratio, torch.Generator().manual_seed(0))
    assert mask.dtype == torch.bool and mask.shape == (8, n)
    assert mask.sum(dim=1).tolist() == [round(ratio * n)] * 8
    assert len({tuple(r.tolist()) for r in mask}) > 1  # each crop gets its own mask


def test_masked_positions_get_the_mask_token_and_only_those():
    model = SSAST(ASTConfig(**{**TOY["config"], "patch": (8, 8), "stride": (8, 8)}, dropout=0.0))
    enc = model.encoder
    x = torch.randn(3, 1, 16, 32)
    mask = random_mask(3, enc.n_patches, 0.5, torch.Generator().manual_seed(1))
    tok = enc.patch_tokens(x, mask) - enc.pos_embed
    token = enc.mask_token[0, 0].detach()
    torch.testing.assert_close(tok[mask].detach(), token.expand(int(mask.sum()), -1), rtol=0, atol=1e-6)
    assert not torch.isclose(tok[~mask].detach(), token.expand(int((~mask).sum()), -1)).all(dim=1).any()


def test_mask_ratio_errors():
    with pytest.raises(ConfigError, match="mask_ratio"):
        random_mask(2, 10, 0.0)
    with pytest.raises(ConfigError, match="hides all"):
        random_mask(2, 4, 0.95)
    model = SSAST(ASTConfig(**{**TOY["config"], "patch": (8, 8), "stride": (8, 8)}))
    uneven = torch.zeros(2, 8, dtype=torch.bool)
    uneven[0, :2] = True
    uneven[1, :3] = True
    with pytest.raises(ValueError, match="same"):
        model(torch.randn(2, 1, 16, 32), uneven)


def _toy_corpus(n=96, seed=0):
    """Crops with learnable structure: a masked patch repeats its unmasked neighbours in time.

    Each item holds two steady partials at random bands, each at its own level, over a -60 dB floor.
    """
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        t = int(rng.integers(32, 48))
        a = np.full((1, 16, t), -60.0, dtype=np.float32)
        for band in rng.choice(16, size=2, replace=False):
            a[0, band] = rng.uniform(-40, -10)
        out.append(a + rng.normal(0, 0.5, a.shape).astype(np.float32))
    return out


def test_both_losses_fall_on_a_toy_corpus():
    torch.set_num_threads(1)
    _, info = pretrain_arrays(_toy_corpus(), TOY, PretrainConfig(epochs=20, batch_size=16, mask_ratio=0.5, lr=2e-3),
                              log_every=False)
    h = info["history"]
    first = h[0]
    assert np.mean([r["gen"] for r in h[-3:]]) < 0.85 * first["gen"]
    assert np.mean([r["disc"] for r in h[-3:]]) < first["disc"] - 0.2
    assert len(h) == 20 and all(r["seconds"] > 0 for r in h)


def test_checkpoint_key_changes_with_corpus_and_settings():
    s = encoder_settings("ast_tiny", "mel")
    p = PretrainConfig()
    base = checkpoint_key("a" * 64, s, p)
    assert checkpoint_key("a" * 64, s, p) == base
    others = [checkpoint_key("b" * 64, s, p), checkpoint_key("a" * 64, s, replace(p, mask_ratio=0.5)),
              checkpoint_key("a" * 64, s, replace(p, epochs=3)), checkpoint_key("a" * 64, s, replace(p, seed=1)),
              checkpoint_key("a" * 64, encoder_settings("ast_ultratiny", "mel"), p)]
    assert len({base, *others}) == 1 + len(others)


def test_encoder_settings_follow_the_registered_model():
    s = encoder_settings("ast_tiny_roll", "roll")
    assert s["config"]["in_chans"] == 4 and s["input"] == "roll"
    with pytest.raises(ConfigError, match="not a neural model"):
        encoder_settings("ast_tiny", "roll")
    with pytest.raises(ConfigError, match="not a neural model"):
        encoder_settings("ridge", "mel")


def _checkpoint(tmp_path, model="ast_ultratiny", kind="mel"):
    settings = encoder_settings(model, kind)
    cfg = ASTConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in settings["config"].items()})
    torch.manual_seed(3)
    ssast = SSAST(cfg)
    cache = Cache(tmp_path / "cache")
    manifest = {"key": "k", "corpus": {"fingerprint": "f", "transductive": False}, "encoder": settings,
                "pretrain": {"epochs": 1}}
    path = save_checkpoint(cache, "c" * 64, ssast.encoder, [-40.0, 20.0], manifest)
    return path, ssast


def test_checkpoints_and_embeddings_have_their_own_cache_stages(tmp_path, capsys):
    """An embedding entry under the very key of a checkpoint leaves it intact; clearing one stage keeps the other."""
    from benchmark.cli import main
    from features.sets import FEATURE_SETS

    path, _ = _checkpoint(tmp_path)
    root = tmp_path / "cache"
    cache = Cache(root)
    stages = []
    for name in ("ssast", "ssast_roll"):
        fs = FEATURE_SETS.build(name, cache_root=str(root), init=str(path))
        stages.append(fs.cache_stage)
        cache.put(fs.cache_stage, "c" * 64, {"values": np.arange(3.0)})
    assert STAGE == "ssast_ckpt" and stages == ["ssast_emb", "ssast_roll_emb"]
    assert read_checkpoint(path)[1].tolist() == [-40.0, 20.0]  # not overwritten by either embedding
    legacy = root / "ssast" / path.parent.name / path.name  # a checkpoint of a cache from before the stage split
    legacy.parent.mkdir(parents=True)
    legacy.write_bytes(path.read_bytes())
    assert read_checkpoint(legacy)[1].tolist() == [-40.0, 20.0]
    assert main(["cache", "clear", "--stage", "ssast_emb", "--cache-dir", str(root)]) == 0
    assert "removed 1 entries" in capsys.readouterr().out
    assert cache.get("ssast_emb", "c" * 64) is None and read_checkpoint(path)[1].tolist() == [-40.0, 20.0]
    assert main(["cache", "clear", "--stage", "ssast_ckpt", "--cache-dir", str(root)]) == 0
    assert not path.exists() and cache.get("ssast_roll_emb", "c" * 64)["values"].tolist() == [0.0, 1.0, 2.0]


def test_pretrained_checkpoint_loads_into_the_fine_tuning_model(tmp_path):
    path, ssast = _checkpoint(tmp_path)
    state, norm, manifest = read_checkpoint(path)
    assert norm.tolist() == [-40.0, 20.0] and manifest["corpus"]["fingerprint"] == "f"
    for name in ("ast_ultratiny", "hybrid"):
        est = MODELS.build(name, size="ultratiny", init=str(path))
        net = est._build_net(est.ast_config(), 5)
        info = load_pretrained(net, str(path), est)
        enc = net.encoder if hasattr(net, "encoder") else net.ast.encoder
        for k, v in ssast.encoder.state_dict().items():
            torch.testing.assert_close(enc.state_dict()[k], v, rtol=0, atol=0)
        assert info["init_key"] == "c" * 64 and info["corpus"]["fingerprint"] == "f"
        assert info["init_norm"] == [-40.0, 20.0]  # fine-tuning keeps the pre-training input scale


def test_checkpoint_for_another_encoder_is_refused(tmp_path):
    path, _ = _checkpoint(tmp_path)
    est = MODELS.build("ast_tiny", init=str(path))
    with pytest.raises(ConfigError, match="another encoder.*config.dim"):
        load_pretrained(est._build_net(est.ast_config(), 0), str(path), est)


def test_resolve_checkpoint(tmp_path):
    path, _ = _checkpoint(tmp_path)
    root = tmp_path / "cache"
    assert resolve_checkpoint(str(path), "mel", root) == path
    assert resolve_checkpoint("c" * 64, "mel", root) == path
    with pytest.raises(ConfigError, match="benchmark pretrain --input mel"):
        resolve_checkpoint("default", "mel", root)
    (root / "ssast_ckpt" / "default-mel.json").write_text(json.dumps({"key": "c" * 64}))
    assert resolve_checkpoint("default", "mel", root) == path
    with pytest.raises(ConfigError, match="neither a checkpoint"):
        resolve_checkpoint("nonsense", "mel", root)


def test_checkpoint_in_a_cache_made_before_the_stage_split_still_resolves(tmp_path):
    """Caches made before checkpoints had their own stage kept them (and the default pointer) under 'ssast'."""
    path, ssast = _checkpoint(tmp_path)
    root = tmp_path / "cache"
    legacy = Cache(root).path("ssast", "c" * 64)
    legacy.parent.mkdir(parents=True)
    path.rename(legacy)
    (root / "ssast" / "default-mel.json").write_text(json.dumps({"key": "c" * 64}))
    assert resolve_checkpoint("default", "mel", root) == legacy
    assert resolve_checkpoint("c" * 64, "mel", root) == legacy
    state, norm, _ = read_checkpoint(legacy)
    assert norm.tolist() == [-40.0, 20.0]
    for k, v in ssast.encoder.state_dict().items():
        torch.testing.assert_close(state[k], v, rtol=0, atol=0)
    # An entry of the legacy stage that is not a checkpoint (an old embedding under that key) is not taken for one.
    legacy.unlink()
    Cache(root).put("ssast", "d" * 64, {"X": np.zeros((2, 3))})
    with pytest.raises(ConfigError, match="neither a checkpoint"):
        resolve_checkpoint("d" * 64, "mel", root)


@pytest.mark.parametrize("field, value, needle", [
    ("epochs", 2.5, "epochs=2.5 must be an integer >= 1"),
    ("epochs", "ten", "epochs='ten'"),
    ("batch_size", True, "batch_size=True"),
    ("lr", float("nan"), "lr=nan must be a finite number in (0, inf)"),
    ("lr", "1e-3", "lr='1e-3'"),
    ("weight_decay", -0.1, "weight_decay=-0.1 must be a finite number in [0, inf)"),
    ("warmup", 1.5, "warmup=1.5 must be a finite number in [0, 1]"),
    ("gen_weight", float("inf"), "gen_weight=inf"),
    ("mask_ratio", 1.0, "mask_ratio=1.0 must be a finite number in (0, 1)"),
    ("seed", -1, "seed=-1 must be an integer >= 0 (--seed"),
])
def test_pretrain_config_refuses_bad_values(field, value, needle):
    with pytest.raises(ConfigError) as info:
        replace(PretrainConfig(), **{field: value}).check()
    assert needle in str(info.value)


def test_pretrain_config_accepts_the_range_edges():
    replace(PretrainConfig(), warmup=0.0, weight_decay=0.0, gen_weight=0.0, seed=0, epochs=1, batch_size=2,
            lr=1e-9, mask_ratio=0.01).check()
    replace(PretrainConfig(), warmup=1.0, epochs=np.int64(3)).check()
