"""TRS: the moving-average teacher, the reference against exemplars, the confidence memory,
warm-up, the unlabeled switch and resuming."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from s4aqa.data.splits import make_split
from s4aqa.data.synthetic import make_staged_actions
from s4aqa.errors import S4AQAError
from s4aqa.methods.registry import create
from s4aqa.methods.trs import TRS, ConfidenceMemory
from s4aqa.training.loop import Trainer
from s4aqa.training.metrics import spearman
from s4aqa.training.resume import Checkpoint


def test_the_memory_keeps_the_more_confident_label():
    memory = ConfidenceMemory(4)
    index = torch.tensor([0, 1, 2])
    kept = memory.keep(index, torch.tensor([1.0, 2.0, 3.0]), torch.tensor([-0.5, -0.1, -0.9]))
    torch.testing.assert_close(kept, torch.tensor([1.0, 2.0, 3.0]))  # empty: anything is kept
    kept = memory.keep(torch.tensor([0, 1, 3]), torch.tensor([10.0, 20.0, 40.0]),
                       torch.tensor([-0.2, -0.3, -1.0]))
    # video 0: more confident now; video 1: the stored one was; video 3: first label
    torch.testing.assert_close(kept, torch.tensor([10.0, 2.0, 40.0]))
    torch.testing.assert_close(memory.label, torch.tensor([10.0, 2.0, 3.0, 40.0]))
    torch.testing.assert_close(memory.confidence, torch.tensor([-0.2, -0.1, -0.9, -1.0]))
    latest = memory.keep(torch.tensor([1]), torch.tensor([7.0]), torch.tensor([-5.0]), always=True)
    assert latest.item() == 7.0 and memory.confidence[1].item() == -5.0


def test_fused_pseudo_label_and_its_confidence(fit, tiny):
    method = create("trs", tiny("trs"))
    direct = torch.tensor([0.0, 1.0])
    reference = torch.tensor([[0.4, 0.6], [1.0, 1.0]])
    label, confidence = method.fuse(direct, reference)
    torch.testing.assert_close(label, torch.tensor([0.25, 1.0]))
    torch.testing.assert_close(confidence, torch.tensor([-0.5, 0.0]))
    spread = create("trs", {**tiny("trs"), "confidence": "spread"})
    _, confidence = spread.fuse(direct, reference)
    expected = -torch.tensor([np.std([0.0, 0.4, 0.6]), 0.0], dtype=torch.float32)
    torch.testing.assert_close(confidence, expected)


def _begun(staged, options, validation=None):
    method = create("trs", options)
    unlabeled = method.unlabeled_for(staged["unlabeled"])
    method.begin(staged["labeled"], unlabeled, validation)
    return method, unlabeled


def test_the_teacher_is_a_frozen_moving_average_of_the_whole_student(staged, tiny):
    method, _ = _begun(staged, {**tiny("trs"), "core": "plain"})
    teacher = method.modules["teacher"]
    assert set(teacher) == {"encoder", "regressor", "pair", "bank"}
    assert not any(p.requires_grad for p in teacher.parameters())
    pairs, decay = method.moving_average()
    assert decay == 0.99
    student = {n for n, _ in method.modules.named_parameters() if not n.startswith("teacher.")}
    assert set(pairs.values()) == student
    # the teacher starts as the student, its exemplars included
    torch.testing.assert_close(teacher["bank"].pooled, method.modules["bank"].pooled)
    for name, tracked in pairs.items():
        torch.testing.assert_close(method.modules.get_parameter(name),
                                   method.modules.get_parameter(tracked))


def test_pseudo_labels_start_after_the_warmup_and_fill_the_memory(staged, tiny):
    method, unlabeled = _begun(staged, {**tiny("trs"), "core": "plain", "warmup": 0.5})
    labeled = method.labeled_tensors(staged["labeled"])
    pool = method.unlabeled_tensors(unlabeled)
    memory = method.modules["memory"]
    batch_l = {k: v[:8] for k, v in labeled.items()}
    batch_l["x"] = method.standardise(batch_l["x"])
    batch_u = {k: v[:6] for k, v in pool.items()}
    batch_u["x"] = method.standardise(batch_u["x"])
    _, parts = method.loss(batch_l, batch_u, 0.25)
    assert "pseudo" not in parts and torch.all(torch.isinf(memory.confidence))
    assert int(memory.refreshed) == -1
    _, parts = method.loss(batch_l, batch_u, 0.5)
    assert {"reg", "pairs", "pseudo"} <= set(parts)
    assert torch.all(torch.isfinite(memory.confidence[:6]))
    assert torch.all(torch.isinf(memory.confidence[6:]))
    assert int(memory.refreshed) == round(0.5 * method.schedule.steps)


@pytest.mark.parametrize("keep_best", [True, False])
def test_the_memory_holds_the_most_confident_label_seen_during_training(staged, tiny, keep_best,
                                                                       monkeypatch):
    """Every pseudo-label the teacher and reference made is recorded; at the end of training
    each video's stored label is the one of highest confidence (memory on), or the last."""
    seen: dict[int, list[tuple[float, float]]] = {}
    fuse = TRS.fuse

    def recording(self, direct, reference):
        label, confidence = fuse(self, direct, reference)
        recording.batch = (label, confidence)
        return label, confidence

    keep = ConfidenceMemory.keep

    def watched_keep(self, index, label, confidence, always=False):
        for i, l, c in zip(index.tolist(), label.tolist(), confidence.tolist()):
            seen.setdefault(i, []).append((c, l))
        return keep(self, index, label, confidence, always)

    monkeypatch.setattr(TRS, "fuse", recording)
    monkeypatch.setattr(ConfidenceMemory, "keep", watched_keep)
    method, unlabeled = _begun(staged, {**tiny("trs"), "core": "plain", "steps": 30,
                                        "memory": keep_best})
    method.train(Trainer(), staged["labeled"], unlabeled, None)
    memory = method.modules["memory"]
    assert len(seen) > 10
    for video, history in seen.items():
        confidence, label = max(history) if keep_best else history[-1]
        assert memory.confidence[video].item() == pytest.approx(confidence, abs=1e-6)
        assert memory.label[video].item() == pytest.approx(label, abs=1e-6)
    if keep_best:  # the teacher changed its mind: the memory did keep older labels
        assert any(max(h)[1] != h[-1][1] for h in seen.values() if len(h) > 1)
    method.end(staged["labeled"], unlabeled)
    assert "memory" not in method.modules  # training state, not part of the model


def test_the_reference_scores_unlabeled_videos_against_the_teachers_exemplars(staged, tiny):
    method, unlabeled = _begun(staged, {**tiny("trs"), "core": "plain"})
    method.labeled_tensors(staged["labeled"])
    method.unlabeled_tensors(unlabeled)
    x = method.to_input(unlabeled.features[:5])
    direct, reference = method.teacher_view(x, None, step=0)
    assert direct.shape == (5,) and reference.shape == (5, 10)
    teacher = method.modules["teacher"]
    # at step 0 the teacher is the student: its exemplars are the student's encodings of them
    method.modules.eval()
    torch.testing.assert_close(teacher["bank"].embeddings, method.bank_embeddings())


def test_unlabeled_off_ignores_the_pool_and_builds_no_teacher(fit, staged, tiny):
    off = {**tiny("trs"), "unlabeled": False}
    method = fit("trs", off, unlabeled=None)
    assert not method.uses_unlabeled and "teacher" not in method.modules
    assert all("pseudo" not in record for record in method.history)
    with_pool = create("trs", off)
    with_pool.fit(staged["labeled"], staged["unlabeled"], staged["validation"])
    np.testing.assert_array_equal(with_pool.predict(staged["test"]),
                                  method.predict(staged["test"]))
    on = fit("trs")
    assert "pseudo" in on.history[-1]
    assert np.abs(on.predict(staged["test"]) - method.predict(staged["test"])).max() > 1e-3


def test_prediction_by_both_heads_averages_them(fit, staged, tiny):
    method = fit("trs", {**tiny("trs"), "core": "plain", "predict_by": "both", "steps": 20})
    x = method.to_input(staged["test"].features)
    with torch.no_grad():
        method.modules.eval()
        direct = method.modules["regressor"](method.modules["encoder"](x))
        relative = method.relative_score(x)
    expected = ((direct + relative) / 2).numpy() * method.score_std + method.score_mean
    np.testing.assert_allclose(method.predict(staged["test"]), expected, rtol=1e-5)


class _Killed(Exception):
    pass


def test_resume_matches_uninterrupted(fit, staged, tiny, tmp_path, monkeypatch):
    reference = fit("trs")
    saved, calls = Checkpoint.save, {"n": 0}

    def save_then_die(*args, **kwargs):
        saved(*args, **kwargs)
        calls["n"] += 1
        if calls["n"] == 2:  # after step 40: memory, teacher and its exemplars in the state
            raise _Killed

    def run():
        method, unlabeled = _begun(staged, tiny("trs"), staged["validation"])
        checkpoint = Checkpoint(tmp_path, {"settings": "run", "data": "data"}, every=20)
        method.train(Trainer([checkpoint]), staged["labeled"], unlabeled, staged["validation"])
        method.end(staged["labeled"], unlabeled)
        return method

    monkeypatch.setattr(Checkpoint, "save", save_then_die)
    with pytest.raises(_Killed):
        run()
    monkeypatch.setattr(Checkpoint, "save", saved)
    resumed = run()
    np.testing.assert_array_equal(resumed.predict(staged["test"]),
                                  reference.predict(staged["test"]))


def test_trains_on_the_built_in_synthetic_data(deep_tiny):
    data = make_staged_actions(n_train=80, n_test=40, dim=16, seed=3)
    split = make_split(data, 0.5, seed=0)
    method = create("trs", {**deep_tiny, "steps": 120})
    method.fit(data.select_ids(split.labeled), data.select_ids(split.unlabeled))
    assert spearman(method.predict(data.test()), data.test().scores) > 0.1


@pytest.mark.shared_data
def test_trains_and_predicts_on_the_jigsaws_sample(shared_data, deep_tiny):
    from s4aqa.data.formats import jigsaws
    data = jigsaws.read(shared_data / "jigsaws_sample", segments=4)
    labeled, unlabeled = data.subset([0, 1, 2, 3]), data.subset([4, 5])
    method = create("trs", {**deep_tiny, "steps": 8, "batch_labeled": 4, "batch_unlabeled": 2})
    method.fit(labeled, unlabeled)
    predicted = method.predict(data)
    assert predicted.shape == (len(data),) and np.all(np.isfinite(predicted))


def test_option_checks():
    with pytest.raises(S4AQAError, match="warmup"):
        create("trs", {"warmup": 1.0})
    with pytest.raises(S4AQAError, match="ema_decay"):
        create("trs", {"ema_decay": 1.0})
    with pytest.raises(S4AQAError, match="refresh"):
        create("trs", {"refresh": 0})


def test_trains_on_a_cuda_device(cuda_device, staged, tiny):
    method = create("trs", {**tiny("trs"), "steps": 5}, device=str(cuda_device))
    method.fit(staged["labeled"], staged["unlabeled"] if method.uses_unlabeled else None)
    assert np.all(np.isfinite(method.predict(staged["test"])))
