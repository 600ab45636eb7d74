"""A tiny valid dataset of every registered format, written by the tests themselves: the
reader tests start from these, and the reader contract test needs one per registered reader
(a new reader without an example fails it)."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np


def save(path: Path, array: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as handle:  # np.save(path) would append .npy to odd names
        np.save(handle, array)
    return path


def dump(path: Path, value) -> Path:
    path.write_bytes(pickle.dumps(value))
    return path


def features(count: int, dim: int, lengths: tuple[int, int], seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.standard_normal((int(rng.integers(lengths[0], lengths[1] + 1)), dim)).astype(np.float32)
            for _ in range(count)]


def folder(root: Path) -> Path:
    """Six videos of (6, 4) features in two groups, four for training."""
    for video_id, array in zip("abcdef", features(6, 4, (6, 6))):
        save(root / f"{video_id}.npy", array)
    (root / "scores.csv").write_text("id,score,split,group\na,1.5,train,ball\nb,2,train,hoop\n"
                                     "c,3,test,ball\nd,4,test,hoop\ne,5,train,ball\nf,6,train,hoop\n")
    return root


def fisv(root: Path) -> Path:
    """Fis-V layout with ids 1..6 (4 train, 2 test) and 40..60 clips of dimension 8."""
    for video_id, array in zip(range(1, 7), features(6, 8, (40, 60))):
        save(root / "swintx_avg_fps25_clip32" / f"{video_id}.npy", array.astype(np.float16))
    (root / "train.txt").write_text("1 20.5 25.1 0\n3 30 28 1\n\n5 12 19 2\n6 15.5 20 0\n")
    (root / "test.txt").write_text("2 22.0 26.0 0\n4 31 30\n")
    return root


RG_HEADER = "Video_Name\tDifficulty_Score    Execution_Score Total_Score\tPenalty\tVideo_length\n"


def rg(root: Path) -> Path:
    names = ["Ball_001", "Ball_002", "Hoop_001", "Hoop_002", "Ball_003", "Hoop_003"]
    for name, array in zip(names, features(6, 4, (50, 90))):
        save(root / f"{name}.npy", array)
    (root / "train.txt").write_text(
        RG_HEADER + "Ball_001\t10.50\t8.30\t18.80\t0.00\t92\nBall_002 7.2 4.2 10.8 0.6 93\n"
        "Hoop_001  9 8 17 0 90\r\nHoop_002\t9\t7\t16\t0\t91\n")
    (root / "test.txt").write_text(RG_HEADER + "Ball_003\t9.1\t7.6\t16.7\t0.00\t91\n"
                                               "Hoop_003 5 6 11 0 90\n")
    return root


def mtl_aqa_entry(score, difficulty=2.0, **overrides):
    entry = {"primary_view": 0, "start_frame": 0, "end_frame": 100, "position": 1,
             "difficulty": difficulty, "armstand": 0, "rotation_type": 2, "ss_no": 3, "tw_no": 1,
             "final_score": score}
    entry.update(overrides)
    return entry


def mtl_aqa(root: Path) -> Path:
    annotations = {(1, 1): mtl_aqa_entry(50.0), (1, 2): mtl_aqa_entry(60.0, 3.0),
                   (2, 10): mtl_aqa_entry(70.5), (3, 4): mtl_aqa_entry(80.0, tw_no=4)}
    dump(root / "final_annotations_dict.pkl", annotations)
    dump(root / "train_split_0.pkl", [(1, 1), (2, 10), (3, 4)])
    dump(root / "test_split_0.pkl", [(1, 2)])
    rng = np.random.default_rng(0)
    for video, clip in annotations:
        save(root / "features" / f"{video:02d}_{clip:02d}.npy", rng.standard_normal((10, 4)))
    return root


def finediving_entry(score, action="107b", difficulty=3.0, **overrides):
    entry = {"action_type": action, "start_frame": 0, "end_frame": 90, "dive_score": score,
             "difficulty": difficulty, "judge_scores": [8.0, 8.5, 8.0]}
    entry.update(overrides)
    return entry


def finediving(root: Path) -> Path:
    annotations = {("Event_A", 1): finediving_entry(60.0, "407c"),
                   ("Event_A", 2): finediving_entry(70.0),
                   ("Event_B", 1): finediving_entry(80.5, "205b", 2.0),
                   ("Event_B", 7): finediving_entry(90.0, "5253b")}
    dump(root / "FineDiving_coarse_annotation.pkl", annotations)
    dump(root / "train_split.pkl", [("Event_A", 1), ("Event_B", 1), ("Event_A", 2)])
    dump(root / "test_split.pkl", [("Event_B", 7)])
    rng = np.random.default_rng(0)
    for event, index in annotations:
        save(root / "features" / f"{event}_{index}.npy", rng.standard_normal((6, 4)))
    return root


JIGSAWS_TRIALS = [("Suturing_B001", "N", 13), ("Suturing_B002", "N", 17),
                  ("Suturing_C001", "I", 20), ("Suturing_D001", "E", 25),
                  ("Suturing_E001", "E", 24), ("Suturing_F001", "I", 18),
                  ("Suturing_G001", "N", 9), ("Suturing_H001", "E", 28),
                  ("Suturing_I001", "N", 11)]


def jigsaws_meta_line(trial, skill, total):
    items = [total // 6 + (1 if k < total % 6 else 0) for k in range(6)]
    return "\t".join([trial, "", skill, str(total), ""] + [str(v) for v in items]) + "\r\n"


def jigsaws(root: Path) -> Path:
    """Suturing with 9 trials of 20..40 frames; Suturing_I001 has no kinematics."""
    task = root / "Suturing"
    (task / "kinematics" / "AllGestures").mkdir(parents=True, exist_ok=True)
    (task / "meta_file_Suturing.txt").write_text(
        "".join(jigsaws_meta_line(*t) for t in JIGSAWS_TRIALS) + "\r\n")
    rng = np.random.default_rng(0)
    for trial, _, _ in JIGSAWS_TRIALS[:-1]:
        frames = rng.standard_normal((int(rng.integers(20, 41)), 76))
        np.savetxt(task / "kinematics" / "AllGestures" / f"{trial}.txt", frames, fmt="%.6f",
                   delimiter="     ")
    return root


# reader name -> writer of its example folder (None: the reader generates its data)
EXAMPLES = {"folder": folder, "fisv": fisv, "rg": rg, "mtl_aqa": mtl_aqa,
            "finediving": finediving, "jigsaws": jigsaws, "synthetic": None,
            "synthetic_shift": None}
