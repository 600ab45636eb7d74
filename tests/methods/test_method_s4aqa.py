import numpy as np
import pytest
import torch

from s4aqa.data.splits import make_split
from s4aqa.data.synthetic import make_staged_actions
from s4aqa.errors import S4AQAError
from s4aqa.methods.registry import create
from s4aqa.methods.s4aqa import masked_count, span_mask
from s4aqa.training.hooks import update_moving_average
from s4aqa.training.metrics import spearman

FAST = {"steps": 40, "hidden": 16, "feedforward": 32, "heads": 2, "eval_every": 20}


@pytest.fixture(scope="module")
def data():
    return make_staged_actions(n_train=120, n_test=60, dim=16, seed=2, appearance=0.5)


def _parts(data, ratio=0.3, seed=0):
    split = make_split(data, ratio, seed)
    return (data.select_ids(split.labeled), data.select_ids(split.unlabeled),
            data.select_ids(split.validation), data.select_ids(split.test))


def test_presets_switch_the_modules():
    for name, modules in [("aa", set()), ("aa+rda", {"discriminator"}),
                          ("aa+msfr", {"decoder"}), ("aa+msfr+rda", {"decoder", "discriminator"}),
                          ("aa+cons", {"teacher"}),
                          ("s4aqa", {"decoder", "discriminator", "teacher"})]:
        method = create(name, FAST)
        method.setup(*_tiny())
        assert modules == set(method.modules) - {"encoder", "regressor", "feature_mean", "feature_std"}


def _tiny():
    data = make_staged_actions(n_train=20, n_test=4, dim=4, seed=0)
    return data.train(), []


def recover(method, x, mask_and_positions=None):
    """Mask a span of each video, encode the rest and recover it: the path of the loss."""
    mask, positions = mask_and_positions or method.draw_mask(x)
    return method.recovered(method.modules["encoder"].tokens(x, mask), x, positions)


def test_recovery_target_is_the_original_feature_of_masked_positions():
    method = create("aa+msfr", {**FAST, "mask_span": 3})
    method.setup(*_tiny())
    x = torch.randn(5, 16, 4)
    recovery = recover(method, x)
    assert recovery.positions.shape == (5, 3)
    for b in range(5):
        torch.testing.assert_close(recovery.target[b], x[b, recovery.positions[b]])
        # the span is contiguous
        assert torch.all(torch.diff(recovery.positions[b]) == 1)
    assert recovery.recovered.shape == recovery.target.shape


@pytest.mark.parametrize("recover_from", ["pooled", "token"])
def test_recover_from_decides_what_the_decoder_reads(recover_from):
    """``token``: Φ reads the masked position's own output token; ``pooled``: the video's
    pooled representation (plus the position's embedding). A change of another position's
    token moves a pooled recovery and leaves a token recovery alone."""
    method = create("s4aqa", {**FAST, "recover_from": recover_from, "mask_span": 2})
    method.setup(*_tiny())
    method.modules.eval()
    x = torch.randn(2, 16, 4)
    positions = torch.tensor([[3, 4], [9, 10]])
    tokens = method.modules["encoder"].tokens(x)
    moved = tokens.clone()
    moved[:, 0] += 1.0  # position 0 is masked in neither video
    first = method.recovered(tokens, x, positions).recovered
    second = method.recovered(moved, x, positions).recovered
    assert torch.equal(first, second) == (recover_from == "token")


@pytest.mark.parametrize("mask_value", ["zero", "token"])
def test_mask_value_decides_what_hides_a_segment(mask_value):
    """``zero``: the masked input is zeroed (a learned token does not exist); ``token``: the
    hidden vector is the learned mask token, whatever the input was. Either way the masked
    segment's content cannot reach the tokens."""
    method = create("s4aqa", {**FAST, "mask_value": mask_value})
    method.setup(*_tiny())
    encoder = method.modules["encoder"].eval()
    assert (encoder.mask_token is not None) == (mask_value == "token")
    x = torch.randn(1, 16, 4)
    mask = torch.zeros(1, 16, dtype=torch.bool)
    mask[0, 5] = True
    changed = x.clone()
    changed[0, 5] = 100.0
    torch.testing.assert_close(encoder.tokens(x, mask), encoder.tokens(changed, mask))
    if mask_value == "token":  # what the masked segment reads is the learned token
        before = encoder.tokens(x, mask)
        with torch.no_grad():
            encoder.mask_token += 1.0
        assert not torch.allclose(before, encoder.tokens(x, mask))


def test_span_mask_and_count():
    mask, positions = span_mask(4, 10, 3, None, torch.device("cpu"))
    assert mask.sum(1).tolist() == [3, 3, 3, 3]
    assert masked_count(0.25, 32) == 8 and masked_count(2, 32) == 2 and masked_count(100, 8) == 7


def test_s4aqa_trains_beats_constant_and_is_deterministic(data):
    labeled, unlabeled, validation, test = _parts(data)
    first = create("s4aqa", FAST, seed=5).fit(labeled, unlabeled, validation)
    second = create("s4aqa", FAST, seed=5).fit(labeled, unlabeled, validation)
    np.testing.assert_array_equal(first.predict(test), second.predict(test))
    assert spearman(first.predict(test), test.scores) > 0.2
    assert {"reg", "rcvr", "adv", "cons"} <= set(first.history[-1])


def test_s4aqa_reads_the_unlabeled_set(data):
    labeled, unlabeled, validation, test = _parts(data)
    base = create("s4aqa", FAST, seed=1).fit(labeled, unlabeled, validation).predict(test)
    noise = unlabeled.subset(np.arange(len(unlabeled)))
    noise.features = np.random.default_rng(0).normal(size=noise.features.shape).astype(np.float32)
    other = create("s4aqa", FAST, seed=1).fit(labeled, noise, validation).predict(test)
    assert not np.allclose(base, other)
    with pytest.raises(S4AQAError, match="unlabeled"):
        create("s4aqa", FAST).fit(labeled, None, validation)


def test_aa_ignores_the_unlabeled_set(data):
    labeled, unlabeled, validation, test = _parts(data)
    a = create("aa", FAST, seed=1).fit(labeled, unlabeled, validation).predict(test)
    b = create("aa", FAST, seed=1).fit(labeled, None, validation).predict(test)
    np.testing.assert_array_equal(a, b)


def test_option_errors_are_clear():
    with pytest.raises(S4AQAError, match="unknown option.*lambda_x"):
        create("s4aqa", {"lambda_x": 1})
    with pytest.raises(S4AQAError, match="not a valid int"):
        create("s4aqa", {"steps": "many"})
    with pytest.raises(S4AQAError, match="must be one of"):
        create("s4aqa", {"recover_from": "elsewhere"})
    with pytest.raises(S4AQAError, match="unknown method"):
        create("nope")
    assert create("s4aqa", {"msfr": "false", "lambda_rcvr": "0.5"}).options.lambda_rcvr == 0.5


def test_teacher_is_a_moving_average_of_the_student():
    method = create("aa", {**FAST, "predict_with": "teacher", "ema_decay": 0.9})
    method.setup(*_tiny())
    teacher, student = method.modules["teacher"], method.modules
    assert not any(p.requires_grad for p in teacher.parameters())
    before = [p.clone() for p in teacher["encoder"].parameters()]
    with torch.no_grad():
        for p in student["encoder"].parameters():
            p.add_(1.0)
    update_moving_average(dict(method.modules.named_parameters()), method.moving_average())
    for old, new, mine in zip(before, teacher["encoder"].parameters(),
                              student["encoder"].parameters()):
        torch.testing.assert_close(new, 0.9 * old + 0.1 * mine)


def test_consistency_reads_the_unlabeled_set_and_teacher_predicts(data):
    labeled, unlabeled, validation, test = _parts(data)
    options = {**FAST, "msfr": False, "rda": False, "lambda_cons": 1.0}
    method = create("s4aqa", options, seed=1)
    assert method.uses_unlabeled
    base = method.fit(labeled, unlabeled, validation)
    assert "cons" in base.history[-1]
    noise = unlabeled.subset(np.arange(len(unlabeled)))
    noise.features = np.random.default_rng(0).normal(size=noise.features.shape).astype(np.float32)
    other = create("s4aqa", options, seed=1).fit(labeled, noise, validation)
    assert not np.allclose(base.predict(test), other.predict(test))
    # predicting with the teacher reads the teacher's weights, not the student's
    teacher = create("s4aqa", {**options, "predict_with": "teacher"}, seed=1)
    teacher.fit(labeled, unlabeled, validation)
    before = teacher.predict(test)
    with torch.no_grad():
        for p in teacher.modules["encoder"].parameters():
            p.zero_()
    np.testing.assert_array_equal(teacher.predict(test), before)


def test_recovery_target_can_be_the_teachers_tokens_of_the_whole_video():
    method = create("aa+msfr", {**FAST, "mask_span": 3, "recover_target": "teacher"})
    method.setup(*_tiny())
    assert "teacher" in method.modules and method.moving_average() is not None
    x = torch.randn(5, 16, 4)
    recovery = recover(method, x)
    teacher = method.modules["teacher"].eval()["encoder"]
    with torch.no_grad():
        expected = torch.nn.functional.layer_norm(teacher.tokens(x), (FAST["hidden"],))
    for b in range(5):
        torch.testing.assert_close(recovery.target[b], expected[b, recovery.positions[b]])
    assert recovery.recovered.shape == (5, 3, FAST["hidden"])


def test_confidence_filter_keeps_the_videos_whose_teacher_score_moves_least():
    method = create("aa+cons", {**FAST, "cons_keep": 0.5})
    method.setup(*_tiny())
    teacher = method.modules["teacher"].eval()
    x = torch.randn(6, 16, 4)
    mask, _ = method.draw_mask(x)
    with torch.no_grad():
        whole = teacher["regressor"](teacher["encoder"](x))
        moved = (teacher["regressor"](teacher["encoder"](x, mask)) - whole).abs()
    kept = method.confident(x, mask, whole)
    assert kept.sum() == 3
    assert moved[kept.bool()].max() < moved[~kept.bool()].min()


def test_confidence_filter_trains_and_checks_its_range(data):
    labeled, unlabeled, validation, _ = _parts(data)
    method = create("aa+cons", {**FAST, "cons_keep": 0.25}, seed=1).fit(labeled, unlabeled, validation)
    assert "cons" in method.history[-1]
    for keep in (0, 1.5):
        with pytest.raises(S4AQAError, match="cons_keep"):
            create("s4aqa", {"cons_keep": keep})


def test_recovered_segments_for_explain(data):
    labeled, unlabeled, _, test = _parts(data)
    method = create("aa+msfr", {**FAST, "members": 2}).fit(labeled, unlabeled)
    recovered = method.recovered_segments(test.features[:3])
    assert recovered.shape == test.features[:3].shape and np.isfinite(recovered).all()
    # in feature units, not standardised ones: after 40 steps about as far from the true
    # segments as the labeled mean segment is
    near = np.abs(recovered - test.features[:3]).mean()
    far = np.abs(labeled.features.mean(axis=0) - test.features[:3]).mean()
    assert 0.5 * far < near < 1.5 * far
    assert create("aa", FAST).fit(labeled).recovered_segments(test.features[:3]) is None
    teacher = create("aa+msfr", {**FAST, "steps": 2, "recover_target": "teacher"})
    assert teacher.fit(labeled, unlabeled).recovered_segments(test.features[:1]) is None
