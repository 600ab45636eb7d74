"""A practitioner's own unscored videos as the unlabeled pool (issue 36): a training video with
an empty score and a feature file with no line in scores.csv are unlabeled videos, the labeled
set is exactly the scores given, and the run says how many of each it read and from where."""

import json

import numpy as np
import pytest

from s4aqa.cli import main
from s4aqa.config import RunConfig
from s4aqa.data.formats import load_dataset
from s4aqa.data.splits import make_split
from s4aqa.data.synthetic import make_staged_actions
from s4aqa.experiments.runner import reproduce

SCORED, EMPTY, UNLISTED, TEST = 40, 200, 60, 12
DEEP = ["--set", "steps=5", "--set", "hidden=16", "--set", "feedforward=32", "--set", "heads=2",
        "--set", "members=1"]


def archive(root, scored=SCORED, empty=EMPTY, unlisted=UNLISTED, test=TEST):
    """The issue's archive: ``scored`` scored training videos, ``empty`` with an empty score,
    ``unlisted`` feature files with no line, ``test`` scored test videos."""
    n = scored + empty + unlisted + test
    data = make_staged_actions(n_train=n - test, n_test=test, dim=16, seed=5)
    root.mkdir()
    rows = ["id,score,split"]
    for i, features in enumerate(data.features):
        vid = f"v{i:03d}"
        np.save(root / f"{vid}.npy", features)
        if i < scored:
            rows.append(f"{vid},{data.scores[i]:.4f},train")
        elif i < scored + empty:
            rows.append(f"{vid},,train")
        elif i >= scored + empty + unlisted:
            rows.append(f"{vid},{data.scores[i]:.4f},test")
    (root / "scores.csv").write_text("\n".join(rows) + "\n")
    return root


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return archive(tmp_path_factory.mktemp("archive") / "feats")


def train(folder, out, method, *flags):
    deep = DEEP if method.startswith("aa") else []
    return main(["train", "--root", str(folder), "--method", method, "--out", str(out), *flags,
                 *deep, "--no-progress"])


def test_the_labeled_set_is_exactly_the_scores_given(folder, tmp_path, capsys):
    assert train(folder, tmp_path / "run", "lap_rls") == 0
    err = capsys.readouterr().err.splitlines()
    assert err[1] == ("s4aqa: videos: 40 labeled (every score given); 260 unlabeled (200 with "
                      "an empty score, 60 feature files with no line in the score table); 12 "
                      "test (the dataset's test split)")
    assert not any("note:" in line for line in err)  # no score was set aside
    split = json.loads((tmp_path / "run" / "split.json").read_text())
    assert split["label_ratio"] == 1.0
    assert len(split["labeled"]) + len(split["validation"]) == SCORED
    assert split["counts"] == {"labeled": 32, "validation": 8, "unlabeled": 260, "test": 12}
    assert split["sources"]["labeled"] == "every score given"
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["videos"]["unlabeled"] == 260 and config["label_ratio"] == 1.0
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert (metrics["n_labeled"], metrics["n_unlabeled"]) == (40, 260)


def test_a_label_ratio_draws_from_the_scored_videos_only(folder):
    data = load_dataset("folder", folder)
    unscored = {vid for vid, s in zip(data.ids, data.scores) if np.isnan(s)}
    assert len(unscored) == EMPTY + UNLISTED
    for seed in range(4):
        for ratio in (0.1, 0.5, 1.0):
            split = make_split(data, ratio, seed, need_validation=False)
            labeled = set(split.labeled) | set(split.validation)
            assert not labeled & unscored
            assert unscored <= set(split.unlabeled)
            assert len(labeled) == max(1, round(ratio * SCORED))


def test_unlisted_files_can_be_kept_out(folder, tmp_path, capsys):
    assert train(folder, tmp_path / "run", "lap_rls", "--unlisted", "ignore") == 0
    assert "; 200 unlabeled (200 with an empty score);" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # argparse refuses the choice, naming both
        main(["train", "--root", str(folder), "--unlisted", "nope", "--out", str(tmp_path)])
    assert "choose from 'unlabeled', 'ignore'" in capsys.readouterr().err


def test_every_method_that_needs_unlabeled_videos_reads_them(folder, tmp_path):
    for method, reads in (("aa", 0), ("svr", 0), ("aa+graph", 260), ("coreg", 260)):
        assert train(folder, tmp_path / method, method) == 0, method
        metrics = json.loads((tmp_path / method / "metrics.json").read_text())
        assert metrics["n_unlabeled"] == reads, method
        assert metrics["n_labeled"] == SCORED, method


def test_a_fully_scored_folder_says_what_the_default_draw_set_aside(tmp_path, capsys):
    root = archive(tmp_path / "feats", scored=60, empty=0, unlisted=0)
    assert train(root, tmp_path / "run", "lap_rls") == 0
    err = capsys.readouterr().err
    assert ("note: --label-ratio not given and every training video is scored: the default "
            "keeps 6 of the 60 scores") in err
    assert "pass --label-ratio 1 to train on every score" in err
    assert train(root, tmp_path / "all", "lap_rls", "--label-ratio", "1") == 0
    assert "note:" not in capsys.readouterr().err


def test_pool_grows_the_unscored_pool(folder, tmp_path):
    summary = reproduce("pool", RunConfig(dataset="folder", root=str(folder)), out=tmp_path,
                        methods=["lap_rls"], seeds=1, progress=False, report=False)
    assert summary.failed == 0
    records = [json.loads(p.read_text()) for p in (tmp_path / "runs").glob("*.json")]
    by_share = {r["spec"]["config"]["unlabeled_share"]: r["metrics"] for r in records}
    assert {m["n_labeled"] for m in by_share.values()} == {SCORED}  # every score, every size
    assert {s: m["n_unlabeled"] for s, m in by_share.items()} == {
        0.0: 0, 0.125: 32, 0.25: 65, 0.5: 130, 1.0: 260}


def test_one_test_video_gives_an_undefined_spearman_not_zero(tmp_path, capsys):
    root = archive(tmp_path / "feats", scored=30, empty=10, unlisted=0, test=1)
    assert train(root, tmp_path / "run", "lap_rls") == 0
    assert "test Spearman undefined" in capsys.readouterr().out
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["test_spearman"] is None and metrics["n_test"] == 1
