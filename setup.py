"""vitext's package metadata.

``install_requires`` and the extras state the ranges vitext works with, so that installing vitext
into an existing OpenMMLab environment keeps its torch, mmcv and friends (``[openmmlab]``/``[det]``
for OpenMMLab's distributions, ``[onedl]``/``[onedl-det]`` for the onedl-* fork's); the exact
versions measured on the project's machines are pinned in requirements/runtime.txt for
tools/setup_env.sh.

The wheel also carries the checkout's ``configs/`` and ``tools/`` under ``vitext/.mim`` (the
OpenMMLab layout; ``vitext::`` config bases are read from there, see vitext/config_scope.py).
"""
import os
import os.path as osp
import shutil

from setuptools import find_packages, setup
from setuptools.command.build_py import build_py

ROOT = osp.dirname(osp.abspath(__file__))
# Checkout folders copied into vitext/.mim of the wheel, without what only serves the checkout.
MIM_FOLDERS = ('configs', 'tools')
MIM_IGNORE = shutil.ignore_patterns('__pycache__', '*.pyc', 'setup_env.sh', 'run_tests.sh',
                                    'demo.sh', 'gpu')


def read_about():
    scope = {}
    with open(osp.join(ROOT, 'vitext', 'version.py')) as f:
        exec(f.read(), scope)
    return scope


ABOUT = read_about()

INSTALL_REQUIRES = [
    f'torch>={ABOUT["TORCH_MIN_VERSION"]}',  # vitext/version.py says why
    'numpy', 'scipy', 'matplotlib',
    'safetensors',  # .safetensors checkpoints
]
# The OpenMMLab stack comes from one of two sets of distributions holding the same modules (mmcv,
# mmengine, mmseg, mmdet): OpenMMLab's own or the maintained onedl-* fork. A plain requirement on
# one set would make pip install it over the other, so each is an extra; `import vitext` names
# what is missing.
OPENMMLAB = [
    # mmseg 1.2.2 and mmdet 3.3.0 refuse mmcv >= 2.2.0; mmcv needs its compiled ops.
    'mmcv>=2.0.0,<2.2.0',
    # before 0.10.6, importing mmengine.optim on torch >= 2.5 with transformers installed fails:
    # torch's and transformers' Adafactor are registered under one name
    'mmengine>=0.10.6,<1.0.0',
    # the mmseg 1.x API vitext registers into; 1.2.2 is the release vitext is measured with
    'mmsegmentation>=1.2.2,<2.0.0',
    'ftfy', 'regex',  # imported by mmseg 1.2.2 unconditionally, not declared by it
    # mmengine 0.10.7 resolves mmseg::/mmdet:: config bases (vitext's configs use them) with
    # pkg_resources, which setuptools 82 removed (the fork's mmengine does not use it)
    'setuptools<82',
]
# floors: the fork's releases vitext's tests ran with; mmpretrain 1.3.6 of the fork refuses
# mmcv >= 2.4.0
ONEDL = ['onedl-mmcv>=2.3.6,<2.4.0', 'onedl-mmengine>=0.10.12,<1.0.0',
         'onedl-mmsegmentation>=1.4.2,<2.0.0']
EXTRAS_REQUIRE = {
    'openmmlab': OPENMMLAB,
    # detection configs (Mask R-CNN, RetinaNet, Cascade)
    'det': OPENMMLAB + ['mmdet>=3.3.0,<4.0.0'],
    'onedl': ONEDL,
    'onedl-det': ONEDL + ['onedl-mmdetection>=3.5.1,<4.0.0'],
    # with [det] or [onedl-det]: the tests exercise detection
    # onnxscript: torch.onnx.export(dynamo=True), the deploy tool's ONNX exporter
    'tests': ['timm>=1.0', 'onnx', 'onnxruntime', 'onnxscript', 'openvino', 'pytest',
              'pytest-timeout', 'pytest-xdist'],
}


class BuildPyWithMim(build_py):
    """build_py that also copies :data:`MIM_FOLDERS` into ``vitext/.mim`` of the build. An
    editable install reads the checkout, whose vitext/.mim holds symlinks to them."""

    def run(self):
        super().run()
        if getattr(self, 'editable_mode', False):
            return
        mim = osp.join(self.build_lib, 'vitext', '.mim')
        for name in MIM_FOLDERS:
            target = osp.join(mim, name)
            if osp.islink(target) or osp.isfile(target):
                os.remove(target)
            elif osp.isdir(target):
                shutil.rmtree(target)
            shutil.copytree(osp.join(ROOT, name), target, ignore=MIM_IGNORE)


setup(
    name='vitext',
    version=ABOUT['__version__'],
    description='Efficient vision-transformer backbones (AFT, Slide-Transformer, Context '
    'Broadcasting) for OpenMMLab dense prediction',
    long_description=open(osp.join(ROOT, 'README.md')).read(),
    long_description_content_type='text/markdown',
    packages=find_packages(include=('vitext', 'vitext.*')),
    cmdclass={'build_py': BuildPyWithMim},
    package_data={'vitext.ops': ['csrc/*.cpp']},  # optional CPU kernels, built on first use
    python_requires='>=3.10',
    install_requires=INSTALL_REQUIRES,
    extras_require=EXTRAS_REQUIRE,
    entry_points={'console_scripts': ['vitext = vitext.cli:main']},  # also python -m vitext
    zip_safe=False,
)
