import pytest
import torch

from semrec.errors import ConfigError
from semrec.models.towers import AttentionTower, MeanTower, TransformerTower, build_tower


def _batch(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(3, 5, 4, generator=g)  # (B, T, d)
    valid = torch.tensor([[0, 0, 1, 1, 1], [1, 1, 1, 1, 1], [0, 0, 0, 0, 1]], dtype=torch.bool)  # left-padded
    return x, valid


def test_mean_tower_against_a_loop():
    x, valid = _batch()
    tower = MeanTower(4)
    with torch.no_grad():
        tower.proj.weight.copy_(torch.eye(4) * 2)  # u = 2 · mean, easy to check
        causal, left_out, pooled = tower.causal(x, valid), tower.leave_out(x, valid), tower.pooled(x, valid)
    for b in range(3):
        idx = [j for j in range(5) if valid[b, j]]
        torch.testing.assert_close(pooled[b], 2 * x[b, idx].mean(0))
        for t in idx:
            torch.testing.assert_close(causal[b, t], 2 * x[b, [j for j in idx if j <= t]].mean(0))
            others = [j for j in idx if j != t]
            want = 2 * x[b, others].mean(0) if others else torch.zeros(4)
            torch.testing.assert_close(left_out[b, t], want)


def test_attention_tower_is_a_softmax_weighted_mean_over_the_allowed_items():
    x, valid = _batch(1)
    tower = AttentionTower(4, max_len=5)
    with torch.no_grad():
        tower.w.normal_()
        tower.recency.copy_(torch.tensor([0.0, -1.0, -2.0, -3.0, -4.0]))
        tower.proj.weight.copy_(torch.eye(4))
        causal, pooled = tower.causal(x, valid), tower.pooled(x, valid)
        content = torch.tanh(tower.content(x)) @ tower.w  # (B, T)
        qk = tower.query(x) @ tower.key(x).transpose(1, 2) / 2.0  # sqrt(d) = 2
    b, t = 1, 3  # full row, a middle position: items 0..3 with recency t − j
    logits = torch.stack([content[b, j] + tower.recency[t - j] + qk[b, t, j] for j in range(4)])
    torch.testing.assert_close(causal[b, t], torch.softmax(logits, 0) @ x[b, :4], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(pooled[2], x[2, 4])  # one item: all the weight is on it
    # padding never leaks: changing padded vectors changes no valid output
    x2 = x.clone()
    x2[~valid] = 100.0
    with torch.no_grad():
        torch.testing.assert_close(tower.causal(x2, valid)[valid], causal[valid])


@pytest.mark.parametrize("name", ["mean", "attention", "transformer"])
def test_causal_outputs_see_only_the_past_and_ignore_padding(name):
    torch.manual_seed(0)
    tower = build_tower(name, dim=4, max_len=5, blocks=1, heads=2, dropout=0.0).eval()
    x, valid = _batch(2)
    with torch.no_grad():
        out = tower.causal(x, valid)
        later = x.clone()
        later[:, 4] = torch.randn(3, 4)  # the newest item changes
        out_later = tower.causal(later, valid)
        padded = x.clone()
        padded[~valid] = -7.0
        out_padded = tower.causal(padded, valid)
    torch.testing.assert_close(out[:, :4], out_later[:, :4])  # positions before it did not move
    assert not torch.allclose(out[:, 4], out_later[:, 4])
    torch.testing.assert_close(out[valid], out_padded[valid], atol=1e-5, rtol=1e-5)
    assert torch.isfinite(out).all()


def test_transformer_is_causal_only():
    tower = TransformerTower(4, 5, 1, 2, 0.0)
    x, valid = _batch()
    with pytest.raises(ConfigError, match="ordered histories"):
        tower.pooled(x, valid)
    with pytest.raises(ConfigError, match="must divide"):
        TransformerTower(6, 5, 1, 4, 0.0)
    with pytest.raises(ConfigError, match="user_tower"):
        build_tower("gru", 4, 5, 1, 2, 0.0)
