"""The AST encoder alone: shapes for every registered size, parameter counts, masking, patchify."""

import numpy as np
import pytest
import torch

from benchmark.errors import ConfigError
from models.ast import ASTConfig, ASTEncoder, count_params
from models.ast_config import SIZES

torch.set_num_threads(1)  # the test machine is shared; one thread avoids OpenMP spinning

COMPACT = {"mel": {"in_chans": 1, "n_bands": 64, "n_frames": 256, "patch": (16, 16), "stride": (16, 16)},
           "roll": {"in_chans": 4, "n_bands": 88, "n_frames": 256, "patch": (22, 16), "stride": (22, 16)}}


@pytest.mark.parametrize("size", [s for s in SIZES if s != "base"])
@pytest.mark.parametrize("input", ["mel", "roll"])
def test_encoder_shapes_and_parameter_count(size, input):
    cfg = ASTConfig(**COMPACT[input], **SIZES[size])
    enc = ASTEncoder(cfg)
    assert enc.n_params() == count_params(cfg)
    x = torch.randn(2, cfg.in_chans, cfg.n_bands, cfg.n_frames)
    out, maps = enc.encode(enc.patch_tokens(x), return_attention=True)
    assert out.shape == (2, 1 + cfg.n_patches, cfg.dim)
    assert len(maps) == cfg.depth and maps[0].shape == (2, cfg.heads, 1 + cfg.n_patches, 1 + cfg.n_patches)
    torch.testing.assert_close(maps[0].sum(-1), torch.ones(2, cfg.heads, 1 + cfg.n_patches))
    enc.eval()
    torch.testing.assert_close(enc(x), enc.encode(enc.patch_tokens(x)))


def test_base_size_is_the_original_86m_ast():
    cfg = ASTConfig(in_chans=1, n_bands=128, n_frames=1024, patch=(16, 16), stride=(10, 10), **SIZES["base"])
    assert cfg.grid == (12, 101)  # 1212 patches, as in Gong et al. 2021
    assert 85.5e6 < count_params(cfg) < 87.0e6
    assert ASTEncoder(cfg).n_params() == count_params(cfg)


def test_grid_with_overlapping_stride():
    cfg = ASTConfig(in_chans=1, n_bands=32, n_frames=50, patch=(8, 10), stride=(4, 5), dim=16, depth=1, heads=2)
    assert cfg.grid == ((32 - 8) // 4 + 1, (50 - 10) // 5 + 1) == (7, 9)
    assert ASTEncoder(cfg)(torch.randn(1, 1, 32, 50)).shape == (1, 1 + 63, 16)


def test_mask_replaces_exactly_the_masked_patches():
    cfg = ASTConfig(in_chans=2, n_bands=16, n_frames=32, patch=(8, 8), stride=(8, 8), dim=16, depth=1, heads=2)
    enc = ASTEncoder(cfg)
    x = torch.randn(2, 2, 16, 32)
    mask = torch.zeros(2, 8, dtype=torch.bool)
    mask[0, [1, 5]] = True
    plain, masked = enc.patch_tokens(x), enc.patch_tokens(x, mask)
    torch.testing.assert_close(masked[~mask], plain[~mask])
    torch.testing.assert_close(masked[0, 1], enc.mask_token[0, 0] + enc.pos_embed[0, 1])
    with pytest.raises(ValueError, match="mask must have shape"):
        enc.patch_tokens(x, mask[:, :3])


def test_patchify_matches_the_patch_grid_by_hand():
    cfg = ASTConfig(in_chans=1, n_bands=4, n_frames=6, patch=(2, 3), stride=(2, 3), dim=8, depth=1, heads=2)
    x = torch.arange(24, dtype=torch.float32).reshape(1, 1, 4, 6)
    p = ASTEncoder(cfg).patchify(x)
    assert p.shape == (1, 4, 6)
    # Patch 1 is frequency row 0, time column 1 (frequency-major order, as in patch_tokens).
    np.testing.assert_array_equal(p[0, 1].numpy(), [3, 4, 5, 9, 10, 11])
    np.testing.assert_array_equal(p[0, 2].numpy(), [12, 13, 14, 18, 19, 20])


def test_bad_configs_raise():
    with pytest.raises(ConfigError, match="not divisible"):
        ASTConfig(dim=10, heads=3)
    with pytest.raises(ConfigError, match="larger than the input"):
        ASTConfig(n_bands=8, patch=(16, 16))
    with pytest.raises(ValueError, match="expected input"):
        ASTEncoder(ASTConfig())(torch.randn(1, 1, 10, 10))
