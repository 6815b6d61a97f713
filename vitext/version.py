__version__ = '0.1.0'

# The oldest PyTorch vitext runs on: safe checkpoint loading allow-lists mmengine's types with
# torch.serialization.add_safe_globals, new in torch 2.4. setup.py states it as the floor of
# install_requires; ``import vitext`` checks it.
TORCH_MIN_VERSION = '2.4'
