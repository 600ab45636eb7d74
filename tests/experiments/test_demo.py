from markdown_text import squash

from s4aqa.cli import main


def test_demo_prints_a_table(capsys):
    assert main(["demo", "--seeds", "2"]) == 0
    out = capsys.readouterr().out
    out = squash(out)
    assert "| aa |" in out and "| s4aqa |" in out and "±" in out
    assert "[" in out  # the paired interval against aa
