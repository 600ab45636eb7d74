"""The README's own-data section works as written: its scores.csv (a few scores, some empty)
and its train command (on generated features in place of extracted ones) train on the scores
given, with the unscored videos as unlabeled ones, and the run says so as the README shows;
every link of the README and the docs pages leads to a file that exists."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import numpy as np

from s4aqa.cli import main

README = Path(__file__).resolve().parents[1] / "README.md"


def _section(title: str) -> str:
    text = README.read_text()
    start = text.index(f"## {title}")
    end = text.find("\n## ", start + 1)
    return text[start:end if end > 0 else None]


def test_the_scores_csv_and_train_command_of_the_readme_work_as_written(tmp_path, capsys):
    section = _section("Your own videos")
    table = re.search(r"```csv\n(.*?)```", section, re.S).group(1)
    train = next(line for line in section.splitlines() if line.startswith("s4aqa train "))
    said = re.search(r"```\n(s4aqa: videos: .*?)\n```", section, re.S).group(1)
    feats = tmp_path / "feats"
    feats.mkdir()
    (feats / "scores.csv").write_text(table)
    rng = np.random.default_rng(0)
    for line in table.splitlines()[1:]:
        np.save(feats / f"{line.split(',')[0]}.npy", rng.normal(size=(10, 8)).astype("float32"))
    argv = shlex.split(train.split("#")[0])[1:]
    argv = [str(tmp_path / a) if a in ("feats/", "run/") else a for a in argv]
    assert argv[argv.index("--root") + 1] == str(feats)
    assert main(argv + ["--quiet", "--set", "steps=4", "--set", "members=1"]) == 0
    assert (tmp_path / "run" / "metrics.json").is_file()
    assert said in capsys.readouterr().err


def test_every_link_leads_to_a_file():
    root = README.parent
    pages = [README, *sorted((root / "docs").glob("*.md"))]
    broken = []
    for page in pages:
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", page.read_text()):
            if "://" not in target and not (page.parent / target).exists():
                broken.append(f"{page.relative_to(root)}: {target}")
    assert broken == []
