"""Model families: numpy families batched over replicates; see ``base`` for the protocol."""

from .base import BatchedModel, GenerativeModel, PerReplicate

__all__ = ["BatchedModel", "GenerativeModel", "PerReplicate"]
