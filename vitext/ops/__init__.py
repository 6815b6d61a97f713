"""Pure-PyTorch operators (no mm imports): usable, testable and benchmarkable on torch alone."""
from .aft import (AFTConv, AFTFull, AFTSimple, aft_conv, aft_full, aft_local, aft_simple,
                  local_window_mask)
from .broadcast import ContextBroadcast, ScaledContextBroadcast, context_broadcast
from .slide import (SlideAttention, shift_kernels, slide_attention, slide_attention_copies,
                    slide_attention_qkv, slide_attention_tokens, slide_attention_unfold)
from .window import WindowAttention

__all__ = ['context_broadcast', 'ContextBroadcast', 'ScaledContextBroadcast', 'aft_full',
           'aft_local', 'aft_simple', 'aft_conv', 'local_window_mask', 'AFTFull', 'AFTSimple',
           'AFTConv', 'SlideAttention', 'shift_kernels', 'slide_attention', 'slide_attention_copies',
           'slide_attention_qkv', 'slide_attention_tokens', 'slide_attention_unfold',
           'WindowAttention']
