from .aft_vit import AFTViT
from .cb_vit import CBViT

__all__ = ['AFTViT', 'CBViT']
