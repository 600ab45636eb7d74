"""Plain torch modules: the temporal encoder, heads and the gradient reversal layer."""

from s4aqa.models.encoder import TemporalEncoder
from s4aqa.models.grl import GradientReversal, reverse_gradient
from s4aqa.models.heads import Discriminator, RecoveryDecoder, Regressor, mlp

__all__ = ["TemporalEncoder", "GradientReversal", "reverse_gradient", "Discriminator",
           "RecoveryDecoder", "Regressor", "mlp"]
