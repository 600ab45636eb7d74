"""Plain torch modules: the temporal encoder, heads and the gradient reversal layer."""

from s4aqa.models.encoder import TemporalEncoder
from s4aqa.models.grl import reverse_gradient
from s4aqa.models.heads import Discriminator, RecoveryDecoder, Regressor, mlp

__all__ = ["TemporalEncoder", "reverse_gradient", "Discriminator",
           "RecoveryDecoder", "Regressor", "mlp"]
