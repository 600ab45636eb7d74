"""Reading the report's markdown in tests."""

import re


def squash(text: str) -> str:
    """A markdown table's text without the padding that aligns its columns."""
    return re.sub(r" {2,}", " ", text)
