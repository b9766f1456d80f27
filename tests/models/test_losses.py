import math

import pytest
import torch

from semrec.models.losses import bce_loss, bpr_loss, info_nce, l2_penalty, mse_loss


def test_bpr_against_hand_values():
    pos = torch.tensor([2.0, 0.0])
    neg = torch.tensor([[1.0], [0.0]])
    # -mean(log σ(1), log σ(0)) = mean(log(1 + e^-1), log 2)
    want = (math.log(1 + math.exp(-1)) + math.log(2)) / 2
    assert bpr_loss(pos, neg).item() == pytest.approx(want, rel=1e-6)
    # a (B,) negative is one negative per row
    assert bpr_loss(pos, neg.squeeze(1)).item() == pytest.approx(want, rel=1e-6)


def test_bpr_averages_over_every_negative():
    pos = torch.tensor([1.0])
    neg = torch.tensor([[1.0, 3.0]])  # differences 0 and -2
    want = (math.log(2) + math.log(1 + math.exp(2))) / 2
    assert bpr_loss(pos, neg).item() == pytest.approx(want, rel=1e-6)


def test_bpr_is_stable_for_large_margins_and_has_gradients():
    pos = torch.tensor([100.0, -100.0], requires_grad=True)
    neg = torch.tensor([[-100.0], [100.0]])
    loss = bpr_loss(pos, neg)
    # mean of -log σ(200) ≈ 0 and -log σ(-200) ≈ 200
    assert torch.isfinite(loss) and loss.item() == pytest.approx(100.0, rel=1e-4)
    loss.backward()
    assert pos.grad[1] < 0 and torch.isfinite(pos.grad).all()


def test_l2_penalty_is_sum_of_squares_over_twice_the_batch():
    a = torch.ones(2, 2)  # ||a||² = 4
    b = torch.tensor([[1.0, 0.0], [0.0, 2.0]])  # ||b||² = 5
    assert l2_penalty(a, b).item() == pytest.approx(9 / (2 * 2))
    # B from the first tensor, whatever the others' shapes: (B, n_neg, d) negatives
    c = torch.ones(2, 3, 2)  # 12
    assert l2_penalty(a, c).item() == pytest.approx(16 / 4)
    assert l2_penalty(a, b, batch_size=3).item() == pytest.approx(9 / 6)
    with pytest.raises(ValueError):
        l2_penalty()


def test_mse_against_hand_values():
    got = mse_loss(torch.tensor([1.0, 2.0, 4.0]), torch.tensor([1.0, 4.0, 1.0]))
    assert got.item() == pytest.approx((0 + 4 + 9) / 3)


def test_bce_against_hand_values():
    logits = torch.tensor([0.0, math.log(3.0)])  # σ = 0.5, 0.75
    targets = torch.tensor([1.0, 0.0])
    want = -(math.log(0.5) + math.log(0.25)) / 2
    assert bce_loss(logits, targets).item() == pytest.approx(want, rel=1e-6)
    assert torch.isfinite(bce_loss(torch.tensor([1e4, -1e4]), torch.tensor([0.0, 1.0])))


def test_info_nce_against_hand_values():
    a = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    b = torch.tensor([[2.0, 0.0], [0.0, 3.0]])  # same directions: cosine ignores the norm
    # S = I / 0.5; each row: -log(e² / (e² + e⁰))
    want = math.log(1 + math.exp(-2))
    assert info_nce(a, b, temperature=0.5).item() == pytest.approx(want, rel=1e-6)


def test_info_nce_matches_a_naive_loop_and_positives_are_the_diagonal():
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(5, 3, generator=g), torch.randn(5, 3, generator=g)
    tau = 0.3
    naive = 0.0
    for i in range(5):
        sims = [torch.dot(a[i], b[j]) / (a[i].norm() * b[j].norm()) / tau for j in range(5)]
        naive += -(sims[i] - torch.logsumexp(torch.stack(sims), 0))
    assert info_nce(a, b, tau).item() == pytest.approx((naive / 5).item(), rel=1e-5)
    # aligned views score better than the same views with rows shuffled
    x = torch.randn(8, 4, generator=g)
    aligned = info_nce(x, x + 0.01 * torch.randn(8, 4, generator=g), 0.2)
    shuffled = info_nce(x, x.roll(1, dims=0), 0.2)
    assert aligned < shuffled


def test_info_nce_gradients_and_bad_input():
    a = torch.randn(4, 3, requires_grad=True)
    b = torch.randn(4, 3, requires_grad=True)
    info_nce(a, b, 0.2).backward()
    assert a.grad.abs().sum() > 0 and b.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="shape"):
        info_nce(torch.randn(4, 3), torch.randn(3, 3))
    with pytest.raises(ValueError, match="temperature"):
        info_nce(torch.randn(4, 3), torch.randn(4, 3), 0.0)


def test_softmax_loss_is_cross_entropy_over_the_catalogue_in_any_chunking():
    from semrec.models.losses import softmax_loss

    g = torch.Generator().manual_seed(0)
    q = torch.randn(7, 4, generator=g, requires_grad=True)
    v = torch.randn(5, 4, generator=g, requires_grad=True)
    y = torch.tensor([0, 4, 2, 2, 1, 3, 0])
    # by hand: -1/N Σ_n log softmax(q_n·V/τ)[y_n]
    logits = q.detach() @ v.detach().T / 0.5
    want = -torch.stack([torch.log_softmax(logits[n], 0)[y[n]] for n in range(7)]).mean()
    whole = softmax_loss(q, v, y, temperature=0.5)
    torch.testing.assert_close(whole, want)
    whole.backward()
    grads = q.grad.clone(), v.grad.clone()
    q.grad = v.grad = None
    chunked = softmax_loss(q, v, y, temperature=0.5, chunk=3)  # 3 + 3 + 1, recomputed in backward
    torch.testing.assert_close(chunked, want)
    chunked.backward()
    torch.testing.assert_close(q.grad, grads[0])
    torch.testing.assert_close(v.grad, grads[1])


def test_sampled_softmax_corrects_by_log_q_and_masks_the_target_among_negatives():
    from semrec.models.losses import sampled_softmax_loss

    q = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    v = torch.tensor([[1.0, 1.0], [2.0, 0.0], [0.0, 1.0]])
    y = torch.tensor([0, 2])
    neg = torch.tensor([1, 2])  # for the second query, item 2 is its own target: masked
    log_q = torch.log(torch.tensor([0.5, 0.25, 0.25]))
    got = sampled_softmax_loss(q, v, y, neg, log_q=log_q)
    # query 0: s+ = 1 − log .5, negatives 2 − log .25 and 0 − log .25
    s0 = torch.tensor([1 - log_q[0], 2 - log_q[1], 0 - log_q[2]])
    # query 1: s+ = 2 − log .25, negative item 1: 0 − log .25 (item 2 masked)
    s1 = torch.tensor([2 - log_q[2], 0 - log_q[1]])
    want = -((s0[0] - torch.logsumexp(s0, 0)) + (s1[0] - torch.logsumexp(s1, 0))) / 2
    torch.testing.assert_close(got, want)
    # uniform sampling: no correction
    plain = sampled_softmax_loss(q, v, y, neg)
    assert plain.item() != pytest.approx(got.item())
