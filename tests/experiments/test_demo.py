import re

from markdown_text import squash

from s4aqa.cli import main

NUMBER = r"([+-]?\d+\.\d+)"


def test_demo_prints_a_table_whose_numbers_agree(capsys):
    """The demo's table: each method's mean ± std over 2 seeds, and s4aqa's paired difference
    against aa with an interval around it. Paired by seed, the mean difference is the
    difference of the means (up to the table's rounding)."""
    assert main(["demo", "--seeds", "2"]) == 0
    out = squash(capsys.readouterr().out)
    assert "2 seed(s)" in out
    aa = re.search(rf"\| aa \| {NUMBER} ± {NUMBER} \|", out)
    s4aqa = re.search(rf"\| s4aqa \| {NUMBER} ± {NUMBER} \| {NUMBER} \[{NUMBER}, {NUMBER}\] \|",
                      out)
    assert aa and s4aqa, out
    aa_mean, s4aqa_mean = float(aa.group(1)), float(s4aqa.group(1))
    difference, low, high = (float(s4aqa.group(i)) for i in (3, 4, 5))
    assert -1 <= aa_mean <= 1 and -1 <= s4aqa_mean <= 1
    assert float(aa.group(2)) >= 0 and float(s4aqa.group(2)) >= 0
    assert abs(difference - (s4aqa_mean - aa_mean)) <= 0.0015
    assert low <= difference <= high and low < high
