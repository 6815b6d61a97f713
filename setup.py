import os.path as osp

from setuptools import find_packages, setup


def read_requirements(name):
    """Requirements of requirements/<name>.txt, without comments; mmcv is built by
    tools/setup_env.sh and torch/torchvision come from the registry, so neither is forced
    here beyond what requirements/runtime.txt pins."""
    path = osp.join(osp.dirname(__file__), 'requirements', name)
    with open(path) as f:
        lines = [line.split('#')[0].strip() for line in f]
    return [line for line in lines if line]


def read_version():
    scope = {}
    with open(osp.join(osp.dirname(__file__), 'vitext', 'version.py')) as f:
        exec(f.read(), scope)
    return scope['__version__']


setup(
    name='vitext',
    version=read_version(),
    description='Efficient vision-transformer backbones (AFT, Slide-Transformer, Context '
    'Broadcasting) for OpenMMLab dense prediction',
    long_description=open('README.md').read() if osp.exists('README.md') else '',
    long_description_content_type='text/markdown',
    packages=find_packages(exclude=('tests', 'tests.*', 'configs', 'tools', 'benchmarks')),
    package_data={'vitext.ops': ['csrc/*.cpp']},  # optional CPU kernels, built on first use
    python_requires='>=3.10',
    install_requires=read_requirements('runtime.txt') + ['mmcv==2.1.0'],
    extras_require={'tests': read_requirements('tests.txt')},
    zip_safe=False,
)
