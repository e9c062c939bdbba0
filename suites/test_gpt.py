"""gpt: the components composed into a small GPT (and BERT) that trains (spec: docs/spec/gpt.md; reference:
reference/gpt.py).

Two kinds of checks. The pieces only a GPT has (the embedding, the block, the losses, the schedule, AdamW,
clipping, BERT's masking) against formulas written out here or torch's own in float64. Then the
composition: the reference model built with every piece the candidate has (attention, flash, posenc,
layers, checkpoint, lora, bpe, gpt) in place of the reference's, trained on the debug slice of
tiny-shakespeare and judged against the reference's own run with the same seed and data; the pieces
used are recorded in each test's metrics, and a piece that breaks the composition fails the test naming
it, the step and the tensor.
"""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
import torch
import torch.nn.functional as F
from hypothesis import example, given
from hypothesis import strategies as st

from fmspec.reference import gpt
from fmspec.suites import _gpt_helpers as gh
from fmspec.suites import asserts as ah
from fmspec.suites import strategies as ss

pytestmark = pytest.mark.component("gpt")
EMBED, BLOCK, LM_LOSS, LR = "gpt.embed", "gpt.Block", "gpt.lm_loss", "gpt.lr_schedule"
ADAMW, CLIP, MASK, MLM_LOSS = "gpt.AdamW", "gpt.clip_grad_norm", "gpt.mask_tokens", "gpt.masked_lm_loss"
DTYPES = [pytest.param(torch.float32, id="float32"), pytest.param(torch.float64, id="float64")]
# BERT's specials in the masking tests: ordinary ids 0..V-5, then [PAD] [CLS] [SEP] [MASK]
ORDINARY = 60
PAD, CLS, SEP, MASK_ID = ORDINARY, ORDINARY + 1, ORDINARY + 2, ORDINARY + 3
SPECIAL_IDS = [PAD, CLS, SEP, MASK_ID]
VOCAB = ORDINARY + 4


# ------------------------------------------------------------------------------------------- embedding
@pytest.mark.smoke
@pytest.mark.needs(EMBED)
def test_embed_worked_example(candidate):
    """E = [[0, 0], [1, 0], [0, 1]], P = [[10, 0], [0, 10]], ids [[2, 1]]: x = [[[10, 1], [1, 10]]]."""
    E = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]], dtype=torch.float64)
    P = torch.tensor([[10.0, 0.0], [0.0, 10.0]], dtype=torch.float64)
    out = ah.call(candidate.gpt.embed, EMBED, torch.tensor([[2, 1]]), E, P)
    ah.assert_close(out, torch.tensor([[[10.0, 1.0], [1.0, 10.0]]], dtype=torch.float64), name="x",
                    where=ah.snippet(EMBED, "[[2, 1]]", E, P))


@pytest.mark.needs(EMBED)
@pytest.mark.parametrize("dtype", DTYPES)
@given(B=ss.sizes(1, 3), T=ss.sizes(1, 9), extra=ss.sizes(0, 4), V=ss.sizes(1, 12), d=ss.sizes(1, 8), seed=ss.seeds())
@example(B=2, T=5, extra=0, V=7, d=4, seed=0)
@example(B=3, T=2, extra=0, V=1, d=1, seed=1)  # one token: its row sums all six positions' gradients
def test_embed_adds_token_and_position_rows(candidate, dtype, B, T, extra, V, d, seed):
    """Oracle: x[b, t] = E[ids[b, t]] + P[t] for a table of T + extra rows, and its gradients: a token's
    row collects the gradient of every position holding it, a position's row the gradient of every batch."""
    gen = torch.Generator().manual_seed(seed)
    ids = torch.randint(V, (B, T), generator=gen)
    E = ss.randn((V, d), seed + 1, dtype).requires_grad_()
    P = ss.randn((T + extra, d), seed + 2, dtype).requires_grad_()
    g = ss.randn((B, T, d), seed + 3, dtype)
    E64, P64 = E.detach().double().requires_grad_(), P.detach().double().requires_grad_()
    expected = E64[ids] + P64[:T]
    (expected * g.double()).sum().backward()
    where = ah.snippet(EMBED, ids, E, P)
    terms = gh.embed_terms(ids, E, P, g)
    out = ah.call(candidate.gpt.embed, EMBED, ids, E, P)
    ah.assert_close(out, expected.detach(), dtype=dtype, n=2, scale=terms["x"], name="x", where=where)
    (out * g).sum().backward()
    ah.assert_close(E.grad, E64.grad, dtype=dtype, n=B * T, scale=terms["dL/dE"], name="dL/dE", where=where)
    ah.assert_close(P.grad, P64.grad, dtype=dtype, n=B, scale=terms["dL/dP"], name="dL/dP", where=where)


# case -> what the message must name: the positional table (position_table, or in words), ids, a table
EMBED_BAD = {"context-longer-than-table": r"position", "id-too-large": r"\bids\b", "negative-id": r"\bids\b",
             "width-mismatch": r"\b(position|token)_table\b"}


@pytest.mark.needs(EMBED)
@pytest.mark.parametrize("case", list(EMBED_BAD))
def test_embed_bad_arguments_raise_value_error(candidate, case):
    """A context longer than the positional table, an id outside the vocabulary, tables of different widths:
    ValueError naming the argument, never a silent broadcast, a wrapped negative index or an IndexError."""
    ids, E, P = torch.tensor([[1, 2, 3]]), ss.randn((5, 4), 0), ss.randn((3, 4), 1)
    if case == "context-longer-than-table":
        P = P[:2]
    elif case == "id-too-large":
        ids = torch.tensor([[1, 5, 3]])
    elif case == "negative-id":
        ids = torch.tensor([[1, -1, 3]])
    else:
        P = ss.randn((3, 5), 1)
    with pytest.raises(ValueError, match=EMBED_BAD[case]):
        candidate.gpt.embed(ids, E, P)


# ---------------------------------------------------------------------------------------------- block
def make_block(candidate, d: int, H: int, causal: bool, seed: int, attention=None, layer_norm=None):
    """The candidate's Block with the contract's parameters set from ``seed`` (float64); its values."""
    from fmspec.reference.attention import scaled_dot_product

    where = ah.snippet(BLOCK, d, H, causal=causal)
    block = candidate.gpt.Block(d, H, causal=causal, attention=attention or scaled_dot_product,
                                layer_norm=layer_norm or (lambda x, w, b: F.layer_norm(x, (d,), w, b, gpt.LN_EPS)),
                                dropout=0.0).to(torch.float64)
    shapes = {n: tuple(p.shape) for n, p in block.named_parameters()}
    assert shapes == gh.block_shapes(d), (f"the block's parameters are {shapes}, expected the contract's "
                                          f"{gh.block_shapes(d)} [{where}]")
    w = gh.block_weights(d, seed)
    with torch.no_grad():
        for name, p in block.named_parameters():
            p.copy_(w[name])
    return block, w, where


@pytest.mark.smoke
@pytest.mark.needs(BLOCK)
@given(B=ss.sizes(1, 3), T=ss.sizes(1, 7), H=ss.sizes(1, 3), dh=st.sampled_from([1, 2, 4]), causal=st.booleans(),
       seed=ss.seeds())
@example(B=2, T=5, H=2, dh=4, causal=True, seed=0)
@example(B=1, T=1, H=3, dh=1, causal=True, seed=1)  # one position, three heads of width 1
@example(B=2, T=7, H=3, dh=2, causal=False, seed=2)  # the encoder, heads not a power of two
def test_block_matches_formula(candidate, B, T, H, dh, causal, seed):
    """Oracle: x + W_o attn(LN_1 x), then x + W_proj GELU(W_fc LN_2 x), the block written out with torch's
    layer norm, SDPA and exact GELU in float64 (causal for the decoder, bidirectional for the encoder)."""
    d = H * dh
    block, w, where = make_block(candidate, d, H, causal, seed)
    x = ss.randn((B, T, d), seed + 99)
    expected = gh.block_oracle(x, w, H, causal)
    ah.assert_close(ah.call(block, BLOCK, x), expected, n=4 * d, name="block(x)", where=where)


@pytest.mark.needs(BLOCK)
@pytest.mark.parametrize("causal", [True, False], ids=["decoder", "encoder"])
def test_block_calls_the_attention_and_layer_norm_it_is_given(candidate, causal):
    """The block's attention core is the ``attention`` it was given (that is how the suite plugs in the
    candidate's attention or flash kernel), called once a forward pass on (B, H, T, d/H) with the block's
    ``causal``; its two layer norms are the ``layer_norm`` it was given."""
    from fmspec.reference.attention import scaled_dot_product

    calls = {"attention": [], "layer_norm": 0}

    def attention(q, k, v, causal=False):
        calls["attention"].append((tuple(q.shape), causal))
        return scaled_dot_product(q, k, v, causal=causal)

    def layer_norm(x, w, b):
        calls["layer_norm"] += 1
        return F.layer_norm(x, (x.shape[-1],), w, b, gpt.LN_EPS)

    block, _, where = make_block(candidate, 8, 2, causal, 0, attention=attention, layer_norm=layer_norm)
    block(ss.randn((3, 5, 8), 1))
    assert calls["attention"] == [((3, 2, 5, 4), causal)], (
        f"attention calls (q.shape, causal): {calls['attention']}, expected [((3, 2, 5, 4), {causal})] [{where}]")
    assert calls["layer_norm"] == 2, f"layer_norm called {calls['layer_norm']} times, expected 2 [{where}]"


# --------------------------------------------------------------------------------------------- losses
@pytest.mark.smoke
@pytest.mark.needs(LM_LOSS)
def test_lm_loss_worked_example(candidate):
    """Logits [[0, 0], [5, -5]] for ids [0, 1]: only position 0 predicts (ids[1] = 1, uniform: log 2); the
    last position's logits predict nothing. All-zero logits over V = 7 give log 7 whatever the ids."""
    logits = torch.tensor([[[0.0, 0.0], [5.0, -5.0]]], dtype=torch.float64)
    where = ah.snippet(LM_LOSS, logits, "[[0, 1]]")
    loss = ah.call(candidate.gpt.lm_loss, LM_LOSS, logits, torch.tensor([[0, 1]]))
    ah.assert_close(loss, torch.tensor(math.log(2), dtype=torch.float64), name="loss", where=where)
    zeros, ids = torch.zeros(2, 6, 7, dtype=torch.float64), torch.tensor([[3] * 6, [1] * 6])
    loss = ah.call(candidate.gpt.lm_loss, LM_LOSS, zeros, ids)
    ah.assert_close(loss, torch.tensor(math.log(7), dtype=torch.float64), name="loss of zero logits", where=where)


@pytest.mark.needs(LM_LOSS)
@pytest.mark.parametrize("dtype", DTYPES)
@given(B=ss.sizes(1, 3), T=ss.sizes(2, 9), V=ss.sizes(2, 11), seed=ss.seeds())
@example(B=2, T=5, V=7, seed=0)
@example(B=1, T=2, V=2, seed=1)  # one prediction
def test_lm_loss_is_shifted_cross_entropy(candidate, dtype, B, T, V, seed):
    """Oracle: the mean over B (T - 1) predictions of -log softmax(logits[:, t])[ids[:, t + 1]]; the last
    position's logits get a zero gradient (they predict nothing)."""
    ids = torch.randint(V, (B, T), generator=torch.Generator().manual_seed(seed))
    logits = ss.randn((B, T, V), seed + 1, dtype).requires_grad_()
    expected = F.cross_entropy(logits.detach().double()[:, :-1].reshape(-1, V), ids[:, 1:].reshape(-1))
    where = ah.snippet(LM_LOSS, logits, ids)
    loss = ah.call(candidate.gpt.lm_loss, LM_LOSS, logits, ids)
    ah.assert_close(loss, expected, dtype=dtype, n=B * T * V, name="loss", where=where,
                    scale=gh.cross_entropy_terms(logits[:, :-1].reshape(-1, V), ids[:, 1:].reshape(-1)))
    loss.backward()
    ah.assert_equal(logits.grad[:, -1], torch.zeros(B, V, dtype=dtype), name="dL/dlogits at the last position",
                    where=where)


@pytest.mark.needs(MLM_LOSS)
@pytest.mark.parametrize("dtype", DTYPES)
@given(B=ss.sizes(1, 3), T=ss.sizes(1, 9), V=ss.sizes(2, 11), seed=ss.seeds())
@example(B=2, T=5, V=7, seed=0)
@example(B=1, T=1, V=2, seed=1)  # one position, chosen
def test_masked_lm_loss_only_on_chosen_positions(candidate, dtype, B, T, V, seed):
    """Oracle: the mean cross-entropy over the chosen positions. Unchosen positions are ignored exactly:
    other logits there (even 1e4) leave the loss bit for bit the same, and their gradient is 0."""
    gen = torch.Generator().manual_seed(seed)
    ids = torch.randint(V, (B, T), generator=gen)
    chosen = torch.rand(B, T, generator=gen) < 0.3
    chosen[0, 0] = True
    logits = ss.randn((B, T, V), seed + 1, dtype).requires_grad_()
    where = ah.snippet(MLM_LOSS, logits, ids, chosen)
    expected = F.cross_entropy(logits.detach().double()[chosen], ids[chosen])
    loss = ah.call(candidate.gpt.masked_lm_loss, MLM_LOSS, logits, ids, chosen)
    ah.assert_close(loss, expected, dtype=dtype, n=B * T * V, scale=gh.cross_entropy_terms(logits[chosen], ids[chosen]),
                    name="loss", where=where)
    loss.backward()
    ah.assert_equal(logits.grad[~chosen], torch.zeros(int((~chosen).sum()), V, dtype=dtype),
                    name="dL/dlogits at unchosen positions", where=where)
    other = logits.detach().clone()
    other[~chosen] = 1e4 * ss.randn(tuple(other[~chosen].shape), seed + 2, dtype)
    ah.assert_equal(candidate.gpt.masked_lm_loss(other, ids, chosen).detach(), loss.detach(),
                    name="loss with other logits at unchosen positions", where=where)


@pytest.mark.needs(MLM_LOSS)
def test_masked_lm_loss_with_nothing_chosen_is_zero(candidate):
    """A batch where no position was chosen contributes a loss of 0 and a zero gradient, not the NaN of a
    mean over nothing (which would end the run)."""
    logits = ss.randn((2, 4, 5), 0).requires_grad_()
    where = ah.snippet(MLM_LOSS, logits, "ids", "chosen=zeros")
    loss = ah.call(candidate.gpt.masked_lm_loss, MLM_LOSS, logits, torch.zeros(2, 4, dtype=torch.int64),
                   torch.zeros(2, 4, dtype=torch.bool))
    ah.assert_equal(loss.detach(), torch.tensor(0.0, dtype=torch.float64), name="loss", where=where)
    loss.backward()
    assert logits.grad is None or bool((logits.grad == 0).all()), f"a non-zero gradient [{where}]"


# ----------------------------------------------------------------------------------- schedule and AdamW
@pytest.mark.smoke
@pytest.mark.needs(LR)
def test_lr_schedule_worked_example(candidate):
    """max_lr 1, min_lr 0.1, warmup 2, total 6: 0.5, 1 (warmup), then 0.1 + 0.45 (1 + cos(pi s / 4)) for
    s = 0..3 (1, 0.868, 0.55, 0.232), then 0.1 from step 6 on."""
    expected = [0.5, 1.0, 1.0, 0.1 + 0.45 * (1 + math.cos(math.pi / 4)), 0.55,
                0.1 + 0.45 * (1 + math.cos(3 * math.pi / 4)), 0.1, 0.1]
    got = [candidate.gpt.lr_schedule(s, max_lr=1.0, warmup=2, total=6, min_lr=0.1) for s in range(8)]
    ah.assert_close(torch.tensor(got, dtype=torch.float64), torch.tensor(expected, dtype=torch.float64), name="lr",
                    where=ah.snippet(LR, "s", max_lr=1.0, warmup=2, total=6, min_lr=0.1))


@pytest.mark.needs(LR)
@given(warmup=st.integers(0, 20), decay=st.integers(1, 40), max_lr=st.floats(1e-5, 1.0), frac=st.floats(0.0, 1.0))
@example(warmup=2, decay=4, max_lr=1.0, frac=0.1)
@example(warmup=0, decay=1, max_lr=1.0, frac=0.0)  # no warmup (no division by it), one decay step
@example(warmup=3, decay=5, max_lr=0.5, frac=1.0)  # min_lr = max_lr: flat after warmup
def test_lr_schedule_warmup_then_cosine(candidate, warmup, decay, max_lr, frac):
    """Every step: max_lr (s + 1) / warmup during warmup, then min_lr + (max_lr - min_lr)(1 + cos(pi p)) / 2
    with p = (s - warmup) / (total - warmup), min_lr from total on. So the rate rises to max_lr, never
    exceeds it, and falls to min_lr."""
    total, min_lr = warmup + decay, frac * max_lr
    got = [candidate.gpt.lr_schedule(s, max_lr=max_lr, warmup=warmup, total=total, min_lr=min_lr)
           for s in range(total + 3)]
    expected = [max_lr * (s + 1) / warmup if s < warmup else
                min_lr + (max_lr - min_lr) * 0.5 * (1 + math.cos(math.pi * (s - warmup) / (total - warmup)))
                if s < total else min_lr for s in range(total + 3)]
    ah.assert_close(torch.tensor(got, dtype=torch.float64), torch.tensor(expected, dtype=torch.float64), n=4,
                    name="lr", where=ah.snippet(LR, "s", max_lr=max_lr, warmup=warmup, total=total, min_lr=min_lr))


@pytest.mark.needs(ADAMW)
@given(seed=ss.seeds(), wd=st.sampled_from([0.0, 0.1, 0.5]), betas=st.sampled_from([(0.9, 0.95), (0.8, 0.999)]))
@example(seed=0, wd=0.1, betas=(0.9, 0.95))
def test_adamw_matches_torch(candidate, seed, wd, betas):
    """Oracle: torch.optim.AdamW in float64 over five steps, two parameter groups (decay and no decay), the
    learning rate changed between steps through ``param_groups`` (as the schedule does), and a parameter
    that never gets a gradient (frozen): it must not move, weight decay included."""
    shapes = [(3, 4), (5,), (2, 2)]

    def groups():
        ps = [ss.randn(s, seed + i).requires_grad_() for i, s in enumerate(shapes)]
        return ps, [{"params": [ps[0], ps[2]], "weight_decay": wd}, {"params": [ps[1]], "weight_decay": 0.0}]

    ours, our_groups = groups()
    theirs, their_groups = groups()
    opt = candidate.gpt.AdamW(our_groups, lr=0.1, betas=betas, eps=1e-8, weight_decay=wd)
    ref = torch.optim.AdamW(their_groups, lr=0.1, betas=betas, eps=1e-8, weight_decay=wd, foreach=False)
    where = ah.snippet(ADAMW, "groups", lr=0.1, betas=betas, eps=1e-8, weight_decay=wd)
    for step in range(5):
        for p, q, i in zip(ours[:2], theirs[:2], range(2)):
            p.grad, q.grad = (ss.randn(tuple(p.shape), seed + 10 * step + i + 100) for _ in range(2))
        before = [q.detach().clone() for q in theirs]
        for o in (opt, ref):
            for group in o.param_groups:
                group["lr"] = 0.1 / (step + 1)
            o.step()
        for i, (p, q, q0) in enumerate(zip(ours, theirs, before)):
            terms = (q0.abs() + (q.detach() - q0).abs()).max().item()  # p (1 - lr wd) - lr u: |p| + the update's size
            ah.assert_close(p.detach(), q.detach(), n=step + 1, scale=terms, name=f"parameter {i} after step {step}",
                            where=where)


@pytest.mark.needs(CLIP)
@given(seed=ss.seeds(), n=ss.sizes(1, 4), ratio=st.sampled_from([0.1, 0.5, 0.99, 2.0, 10.0]))
@example(seed=0, n=3, ratio=0.5)
@example(seed=1, n=1, ratio=2.0)  # one tensor, below max_norm: left as it is
def test_clip_grad_norm_is_global(candidate, seed, n, ratio):
    """One norm over all gradients together, sqrt(sum_p |g_p|^2), returned as measured before clipping;
    every gradient scaled by min(1, max_norm / (norm + 1e-6)), the same factor for all (so their
    directions and ratios are kept; clipping each tensor to its own norm is another update)."""
    params = [torch.zeros(k + 2, 3, dtype=torch.float64, requires_grad=True) for k in range(n)]
    grads = [ss.randn(tuple(p.shape), seed + k, scale=float(k + 1)) for k, p in enumerate(params)]
    for p, g in zip(params, grads):
        p.grad = g.clone()
    norm = math.sqrt(sum(float((g ** 2).sum()) for g in grads))
    max_norm = ratio * norm
    where = ah.snippet(CLIP, f"<{n} params>", max_norm)
    got = candidate.gpt.clip_grad_norm(params, max_norm)
    ah.assert_close(torch.as_tensor(got, dtype=torch.float64), torch.tensor(norm, dtype=torch.float64), n=100,
                    name="returned norm", where=where)
    factor = min(1.0, max_norm / (norm + 1e-6))
    for k, (p, g) in enumerate(zip(params, grads)):
        ah.assert_close(p.grad, g * factor, n=100, name=f"gradient {k} after clipping", where=where)


# --------------------------------------------------------------------------------------------- masking
def masking_case(B: int, T: int, seed: int) -> torch.Tensor:
    """BERT-like rows: [CLS] ids ... [SEP] then [PAD] to the end, ordinary ids uniform in [0, ORDINARY)."""
    gen = torch.Generator().manual_seed(seed)
    ids = torch.randint(ORDINARY, (B, T), generator=gen)
    ids[:, 0], ids[:, -1] = CLS, PAD
    ends = torch.randint(T // 2, T - 1, (B,), generator=gen)
    for b, e in enumerate(ends.tolist()):
        ids[b, e] = SEP
        ids[b, e + 1:] = PAD
    return ids


def masked(candidate, ids, seed, p=0.15):
    where = ah.snippet(MASK, ids, mask_id=MASK_ID, vocab_size=VOCAB, special_ids=SPECIAL_IDS, generator=seed, p=p)
    inputs, chosen = ah.call(candidate.gpt.mask_tokens, MASK, ids, mask_id=MASK_ID, vocab_size=VOCAB,
                             special_ids=SPECIAL_IDS, generator=torch.Generator().manual_seed(seed), p=p)
    ah.assert_tensor(inputs, tuple(ids.shape), ids.dtype, name="inputs", where=where)
    ah.assert_tensor(chosen, tuple(ids.shape), torch.bool, name="chosen", where=where)
    return inputs, chosen, where


@pytest.mark.needs(MASK)
@given(B=st.integers(2, 8), T=st.integers(64, 512), seed=ss.seeds())
@example(B=4, T=256, seed=0)
@example(B=2, T=64, seed=1)  # the fewest positions
def test_mask_tokens_statistics(candidate, B, T, seed):
    """BERT's masking as counts: of n ordinary positions, Binomial(n, 0.15) are chosen; of the c chosen,
    Binomial(c, 0.8) become [MASK], Binomial(c, 0.1 (K - 1) / K) another ordinary token and the rest keep
    their id (0.1 + 0.1 / K: a random draw may give the id back), K = the number of ordinary ids; each count
    within 5 standard deviations (+1) of its mean. Unchosen positions are unchanged and a random replacement
    is never a special id."""
    ids = masking_case(B, T, seed)
    inputs, chosen, where = masked(candidate, ids, seed)
    ordinary = ids < ORDINARY
    n, c = int(ordinary.sum()), int(chosen.sum())
    ah.assert_equal(inputs[~chosen], ids[~chosen], name="inputs at unchosen positions", where=where)
    K = ORDINARY
    counts = {"chosen of the ordinary positions": (c, n, 0.15),
              "[MASK] of the chosen": (int((chosen & (inputs == MASK_ID)).sum()), c, 0.8),
              "replaced by another token of the chosen": (int((chosen & (inputs != MASK_ID) & (inputs != ids)).sum()),
                                                           c, 0.1 * (K - 1) / K),
              "kept of the chosen": (int((chosen & (inputs == ids)).sum()), c, 0.1 + 0.1 / K)}
    for what, (k, total, p) in counts.items():
        lo, hi = gh.binomial_bound(k, total, p)
        assert lo <= k <= hi, (f"{k} {what} ({total}), expected {total * p:.1f} (between {lo:.1f} and {hi:.1f}) "
                               f"[{where}]")
    replaced = chosen & (inputs != MASK_ID) & (inputs != ids)
    assert bool((inputs[replaced] < ORDINARY).all()), f"a random replacement is a special id [{where}]"


@pytest.mark.needs(MASK)
@given(B=st.integers(1, 4), T=st.integers(4, 64), seed=ss.seeds(), p=st.sampled_from([0.15, 0.5, 1.0]))
@example(B=2, T=16, seed=0, p=1.0)
@example(B=1, T=4, seed=1, p=0.15)  # [CLS] x [SEP] [PAD]: one ordinary position
def test_mask_tokens_never_chooses_specials(candidate, B, T, seed, p):
    """[CLS], [SEP] and [PAD] are never chosen and never changed; with p = 1 every ordinary position is chosen."""
    ids = masking_case(B, T, seed)
    inputs, chosen, where = masked(candidate, ids, seed, p)
    special = ids >= ORDINARY
    assert not bool((chosen & special).any()), (f"{int((chosen & special).sum())} special positions chosen, e.g. "
                                                f"{tuple(int(i) for i in (chosen & special).nonzero()[0])} [{where}]")
    ah.assert_equal(inputs[special], ids[special], name="inputs at special positions", where=where)
    if p == 1.0:
        ah.assert_equal(chosen, ~special, name="chosen with p = 1", where=where)


@pytest.mark.needs(MASK)
def test_mask_tokens_is_seeded(candidate):
    """Every draw comes from the generator: the same seed gives the same masking, another seed another."""
    ids = masking_case(4, 128, 0)
    a, b, c = (masked(candidate, ids, s)[:2] for s in (5, 5, 6))
    ah.assert_equal(b[0], a[0], name="inputs, same seed")
    ah.assert_equal(b[1], a[1], name="chosen, same seed")
    assert not torch.equal(a[1], c[1]), "seeds 5 and 6 chose the same positions: the generator is not used"


MASK_BAD = {"vocab-not-above-specials": r"\bvocab_size\b", "mask-id-not-special": r"\bmask_id\b",
            "p-above-one": r"\bp\b", "id-out-of-range": r"\bids\b"}  # case -> the argument the message names


@pytest.mark.needs(MASK)
@pytest.mark.parametrize("case", list(MASK_BAD))
def test_mask_tokens_bad_arguments_raise_value_error(candidate, case):
    """A vocabulary with no ordinary token beside the specials (nothing to draw a replacement from), a mask
    id that is not special, p outside [0, 1], an id outside the vocabulary: ValueError naming the argument."""
    kw = dict(mask_id=MASK_ID, vocab_size=VOCAB, special_ids=SPECIAL_IDS, generator=torch.Generator().manual_seed(0),
              p=0.15)
    ids = masking_case(2, 16, 0)
    if case == "vocab-not-above-specials":
        kw.update(vocab_size=4, special_ids=[0, 1, 2, 3], mask_id=3)
        ids = torch.zeros(2, 16, dtype=torch.int64)
    elif case == "mask-id-not-special":
        kw.update(mask_id=5)
    elif case == "p-above-one":
        kw.update(p=1.5)
    else:
        ids[0, 3] = VOCAB
    with pytest.raises(ValueError, match=MASK_BAD[case]):
        candidate.gpt.mask_tokens(ids, **kw)


# ---------------------------------------------------------------------------------- the composed model
def test_debug_run_trains_like_the_reference(candidate, fmspec_metrics):
    """The debug mode (tiny-shakespeare's first 40 KB, the BPE of the pieces at V = 512, 0.28M parameters,
    100 steps of 8 x 64 tokens): finite at every step, and the mean loss of the last 20 steps within
    [-20%, +5%] of the reference's (same seed, data and batches; its cached run where one under the fingerprint
    of the installed reference, torch, CPU and ids exists, else computed). Below means the model sees its labels."""
    got, ref = gh.debug_runs(candidate, fmspec_metrics, gh.DEBUG.model)
    gh.assert_curve_near_reference(got.losses, ref.losses, where=f"debug run, pieces {got.pieces}")


def test_encoder_debug_run_masked_lm_loss_falls(candidate, fmspec_metrics):
    """The encoder (BERT: no causal mask, [CLS] ... [SEP] rows, 15% masked) in the debug mode: its
    masked-LM loss falls, finite at every step, its last 20 steps within [-20%, +5%] of the reference's."""
    got, ref = gh.debug_runs(candidate, fmspec_metrics, replace(gh.DEBUG.model, objective="mlm"))
    gh.assert_curve_near_reference(got.losses, ref.losses, where=f"encoder debug run, pieces {got.pieces}")
    assert gh.tail(got.losses) < got.losses[0] - 0.5, (
        f"the masked-LM loss went from {got.losses[0]:.3f} to {gh.tail(got.losses):.3f}: it did not fall")


@pytest.mark.parametrize("objective", ["lm", "mlm"], ids=["decoder", "encoder"])
def test_information_flows_only_where_allowed(candidate, objective, fmspec_metrics):
    """Decoder: changing the tokens after position t leaves the logits at positions 0..t unchanged (no
    information from the future: a missing causal mask is a model that reads its labels). Encoder: the same
    change does reach positions 0..t (it sees both directions). Float64, the composed model at init."""
    parts, data = gh.composition(candidate, fmspec_metrics, replace(gh.SMALL, objective=objective), torch.float64)
    with gh.reported(fmspec_metrics):
        model = gh.small_model(parts, data, objective=objective).eval()
        ids = gpt.lm_batch(data.train, 2, gh.SMALL.context, torch.Generator().manual_seed(0))
        for t in (0, 7, gh.SMALL.context - 2):
            other = ids.clone()
            other[:, t + 1:] = (other[:, t + 1:] + 1) % 256  # other (byte) tokens after t
            with torch.no_grad():
                a, b = model(ids), model(other)
            where = f"tokens after position {t} changed, pieces {parts.used(model.cfg)}"
            if objective == "lm":
                ah.assert_close(b[:, :t + 1], a[:, :t + 1], n=gh.SMALL.d * gh.SMALL.context, name="logits up to t",
                                where=where)
            else:
                change = (b[:, :t + 1] - a[:, :t + 1]).abs().max().item()
                assert change > 1e-6 * a.abs().max().item(), f"the logits up to t did not change [{where}]"


def test_every_parameter_gets_a_gradient(candidate, fmspec_metrics):
    """One forward and backward of the composed model (learned positions, untied unembedding): every
    parameter gets a finite gradient that is not all zero (a piece that skips a layer norm or detaches a
    table leaves its parameters without one)."""
    cfg = replace(gh.SMALL, positions="learned", tied=False, dropout=0.0)
    parts, data = gh.composition(candidate, fmspec_metrics, cfg, torch.float64)
    with gh.reported(fmspec_metrics):
        model = gh.small_model(parts, data, positions="learned", tied=False, dropout=0.0)
        ids = gpt.lm_batch(data.train, 4, cfg.context, torch.Generator().manual_seed(0))
        parts["gpt.lm_loss"](model(ids), ids).backward()
    none = [n for n, p in model.named_parameters() if p.grad is None]
    assert not none, f"no gradient reached {none} [pieces {parts.used(cfg)}]"
    bad = [n for n, p in model.named_parameters() if not bool(torch.isfinite(p.grad).all())]
    assert not bad, f"non-finite gradients of {bad} [pieces {parts.used(cfg)}]"
    zero = [n for n, p in model.named_parameters() if not bool((p.grad != 0).any())]
    assert not zero, f"all-zero gradients of {zero} [pieces {parts.used(cfg)}]"


def test_checkpointing_gives_the_same_loss_curve(candidate, fmspec_metrics):
    """Five float64 steps of the small model (three blocks, dropout 0.1, sinusoidal positions) with the
    blocks checkpointed in two segments and without: the same loss curve, to rounding (the recomputation
    replays the dropout masks)."""
    gh.assert_same_small_curve(candidate, fmspec_metrics, replace(gh.SMALL, checkpoint_segments=2),
                               ("plain", "checkpointed"), "checkpointing")


def test_flash_in_place_of_dense_gives_the_same_curve(candidate, fmspec_metrics):
    """Five float64 steps of the small model with the blocks' attention from ``flash.flash_attention`` and
    from ``attention.scaled_dot_product``: the same loss curve, to rounding."""
    gh.assert_same_small_curve(candidate, fmspec_metrics, replace(gh.SMALL, attention="flash"), ("dense", "flash"),
                               "flash attention")


def lora_finetune(candidate, metrics: dict):
    """The small model (float64) wrapped by ``lora.apply_lora`` on q and v (r = 4, alpha = 8) and trained
    five steps; returns the model, the parts, the data and the parameters before (by identity)."""
    parts, data = gh.composition(candidate, metrics, gh.SMALL, torch.float64, lora=True)
    with gh.reported(metrics):
        model = gh.small_model(parts, data, dropout=0.0)
        before = {id(p): (n, p.detach().clone()) for n, p in model.named_parameters()}
        result = gpt.finetune_lora(model, data, replace(gh.SMALL_TRAIN, max_lr=1e-2, warmup=0), parts)
    metrics["losses"] = result.losses
    return model, parts, data, before, result


def test_lora_finetune_trains_only_a_and_b(candidate, fmspec_metrics):
    """After LoRA fine-tuning, the only parameters that require a gradient are the A and B of the wrapped q
    and v (r (d + d) each); every other parameter, frozen, is bit for bit what it was (weight decay
    included); A and B moved."""
    model, parts, data, before, result = lora_finetune(candidate, fmspec_metrics)
    layers = gpt.lora_layers(model)
    assert len(layers) == 2 * gh.SMALL.n_layers, f"{len(layers)} LoRA layers, expected q and v of each block"
    ab = {id(m.A) for m in layers} | {id(m.B) for m in layers}
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert {id(p) for p in model.parameters() if p.requires_grad} == ab, (
        f"trainable parameters: {trainable}, expected only the LoRA A and B")
    count = sum(p.numel() for p in model.parameters() if p.requires_grad)
    ah.assert_equal(count, 2 * gh.SMALL.n_layers * 4 * 2 * gh.SMALL.d, name="trainable count")
    moved = [name for i, (name, old) in before.items() if not torch.equal(dict(
        (id(p), p) for p in model.parameters())[i].detach(), old)]
    assert not moved, f"frozen parameters changed during fine-tuning: {moved}"
    assert all(bool((m.B != 0).any()) for m in layers), "some B is still zero: A and B did not train"


def test_lora_merged_model_gives_the_same_loss(candidate, fmspec_metrics):
    """After fine-tuning, ``merge()`` of every LoRA layer folds the update into the base weights: the loss
    on a fixed batch (eval mode) is the same as the unmerged model's, to float64 rounding."""
    model, parts, data, _, _ = lora_finetune(candidate, fmspec_metrics)
    model.eval()
    ids = gpt.lm_batch(data.val, 4, gh.SMALL.context, torch.Generator().manual_seed(1))
    with torch.no_grad():
        unmerged = parts["gpt.lm_loss"](model(ids), ids)
        assert gpt.merge_lora(model) == 2 * gh.SMALL.n_layers, "no LoRA layer to merge"
        merged = parts["gpt.lm_loss"](model(ids), ids)
    ah.assert_close(merged, unmerged, n=4 * gh.SMALL.d * gh.SMALL.context, name="loss after merge()",
                    where=f"pieces {parts.used(model.cfg, lora=True)}")


def _poisoned(fn, model: dict, phase: str):
    """``fn`` whose output (forward) or the gradient it returns for q (backward) is NaN from step 2 on
    (``model["model"].trace`` says the step)."""

    class NaNGrad(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x.view_as(x)

        @staticmethod
        def backward(ctx, g):
            return g * float("nan")

    def poisoned(q, k, v, causal=False):
        armed = model["model"].trace.step in (2, 3, 4)
        if armed and phase == "backward":
            q = NaNGrad.apply(q)
        out = fn(q, k, v, causal=causal)
        return out * float("nan") if armed and phase == "forward" else out

    return poisoned


@pytest.mark.parametrize("phase", ["forward", "backward"])
def test_broken_piece_is_named_with_step_and_tensor(candidate, phase, fmspec_metrics):
    """A piece that turns NaN at step 2 (here the candidate's attention, poisoned by the test in its output
    or in the gradient it returns for q) stops the run with an error that names that piece, step 2, the
    phase and the tensor, not a NaN curve or a crash elsewhere. The block must call the attention it is
    given for the poison to be seen."""
    feature = "attention.scaled_dot_product"
    parts, data = gh.composition(candidate, fmspec_metrics, gh.SMALL, torch.float64)
    holder: dict = {}
    parts.pieces[feature] = _poisoned(parts[feature], holder, phase)
    cfg = replace(gh.SMALL, vocab_size=data.vocab_size)
    with pytest.raises(gpt.CompositionError) as info:
        holder["model"] = gpt.GPT(cfg, parts)
        gpt.train(cfg, gh.SMALL_TRAIN, data, parts, model=holder["model"])
    fmspec_metrics["broken"] = info.value.info()
    e = info.value
    assert (e.feature, e.step, e.phase) == (feature, 2, phase), (
        f"the error names {e.feature} at step {e.step} ({e.phase}), expected {feature} at step 2 ({phase}): {e}")
    assert ("output" if phase == "forward" else "argument 0") in e.tensor and "not finite" in e.problem, str(e)


@pytest.mark.parametrize("case", ["empty-file", "corrupt-file", "vocab-below-specials", "context-above-positions"])
def test_bad_input_is_rejected_before_training(candidate, case, tmp_path, fmspec_metrics):
    """An empty data file, a corrupt one (bytes that are not UTF-8 text), a vocabulary too small for the 256
    bytes and the special tokens, a context longer than the positional table: a ValueError (or TypeError)
    that says so, before the first update."""
    parts, _ = gh.composition(candidate, fmspec_metrics, gh.SMALL, torch.float64)  # which accept the good corpus
    path, vocab, cfg = tmp_path / "corpus.txt", 300, replace(gh.SMALL, dropout=0.0)
    path.write_text(gh.debug_text()[:6000], encoding="utf-8")
    match = {"empty-file": "empty", "corrupt-file": "corrupt|UTF-8", "vocab-below-specials": "vocab",
             "context-above-positions": "context|position"}[case]
    if case == "empty-file":
        path.write_bytes(b"")
    elif case == "corrupt-file":
        path.write_bytes(b"First Citizen:\n\xff\xfe\x00\x81 garbage")
    elif case == "vocab-below-specials":
        vocab = 256 + len(gpt.SPECIALS) - 1
    else:
        cfg = replace(cfg, context=48, max_positions=32)
    steps = []
    with pytest.raises((ValueError, TypeError), match=match):
        data = gpt.tokenize(gpt.read_corpus(path), vocab, parts)
        gpt.train(replace(cfg, vocab_size=data.vocab_size), replace(gh.SMALL_TRAIN, steps=2), data, parts,
                  on_step=lambda step, loss: steps.append(step))
    assert not steps, f"{len(steps)} training steps ran before the error"
