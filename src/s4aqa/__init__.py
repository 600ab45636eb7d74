"""s4aqa: semi-supervised action quality assessment (S4AQA and its baselines)."""

from s4aqa.errors import S4AQAError

__version__ = "0.1.0"

__all__ = ["S4AQAError", "__version__"]
