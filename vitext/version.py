__version__ = '0.1.0'

# The oldest PyTorch vitext runs on: safe checkpoint loading allow-lists mmengine's types through
# substitutes registered with torch.serialization.add_safe_globals as (object, 'module.name')
# pairs, which torch accepts from 2.6 (2.4 brought add_safe_globals itself, without pairs).
# setup.py states it as the floor of install_requires; ``import vitext`` checks it.
TORCH_MIN_VERSION = '2.6'
