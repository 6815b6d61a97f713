from .cb_vit import CBViT

__all__ = ['CBViT']
