"""Pure-PyTorch operators (no mm imports): usable, testable and benchmarkable on torch alone."""
from .broadcast import ContextBroadcast, ScaledContextBroadcast, context_broadcast

__all__ = ['context_broadcast', 'ContextBroadcast', 'ScaledContextBroadcast']
