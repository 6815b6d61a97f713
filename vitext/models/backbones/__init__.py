from .aft_vit import AFTViT
from .cb_vit import CBViT
from .slide_pvt import SlidePVT
from .slide_swin import SlideSwinTransformer

__all__ = ['AFTViT', 'CBViT', 'SlidePVT', 'SlideSwinTransformer']
