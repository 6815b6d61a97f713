"""The compiled CPU kernel is built once per machine and source content, safely under concurrent
first uses and kills, verified before it is imported, and replaced by the PyTorch path with one
warning where nothing can be compiled.

One test module compiles the kernel for real, once (about 1-2 minutes on two cores), from two
byte-identical copies of the sources in different folders at the same time; the other tests use
that build or no compiler at all. Processes load a copied ``cpu_kernels.py`` by path: a vitext
that lives in another folder (a wheel, a clone)."""
import hashlib
import json
import os
import os.path as osp
import shutil
import signal
import subprocess
import sys
import threading
import time
import warnings

import pytest
import torch

from vitext.ops import cpu_kernels, slide_attention_qkv
from vitext.ops.cpu_kernels import build_key, library_problem, load_kernel

NAME = 'slide_attention'

# Runs in a fresh process: loads cpu_kernels.py from argv[1], asks for the kernel, and prints
# each warning, and the kernel's output sum or FALLBACK.
KERNEL_SCRIPT = r'''
import importlib.util, sys, warnings
spec = importlib.util.spec_from_file_location('cpu_kernels', sys.argv[1])
kernels = importlib.util.module_from_spec(spec)
spec.loader.exec_module(kernels)
import torch
torch.manual_seed(0)
ks, nh, d = 3, 2, 3
qkv = torch.randn(1, 5, 6, 3, nh, d, dtype=torch.float64)
weight = torch.randn(d * ks * ks, 1, ks, ks, dtype=torch.float64)
bias = torch.randn(d * ks * ks, dtype=torch.float64)
rel = torch.randn(nh, ks * ks, dtype=torch.float64)
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter('always')
    module = kernels.cpu_kernel('slide_attention')
for warning in caught:
    print('WARNING', warning.message)
if module is None:
    print('FALLBACK')
else:
    print('SUM', repr(float(module.forward(qkv, weight, bias, rel, ks, 0.5).sum())))
'''


def copy_kernel_sources(folder):
    """``folder/ops/cpu_kernels.py`` and ``folder/ops/csrc``: byte-identical copies of vitext's;
    returns the copied module's path."""
    ops = folder / 'ops'
    shutil.copytree(cpu_kernels.CSRC, ops / 'csrc')
    shutil.copy(cpu_kernels.__file__, ops / 'cpu_kernels.py')
    return str(ops / 'cpu_kernels.py')


def kernel_process(module_path, root, **env):
    """Start KERNEL_SCRIPT with ``module_path`` and builds under ``root``."""
    full_env = dict(os.environ, TORCH_EXTENSIONS_DIR=str(root), OMP_NUM_THREADS='2', **env)
    full_env.pop('VITEXT_CPU_KERNELS', None)
    return subprocess.Popen([sys.executable, '-c', KERNEL_SCRIPT, module_path], env=full_env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)


def finish(proc, timeout):
    """(returncode, stdout, stderr) of ``proc``, killed if it runs past ``timeout`` seconds."""
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        pytest.fail(f'still running after {timeout} s:\n{out}\n{err}')
    return proc.returncode, out, err


def build_dirs(root):
    return sorted(e for e in os.listdir(root) if e.startswith(f'vitext_{NAME}_')
                  and not e.endswith('.lock'))


@pytest.fixture(scope='module')
def shared_build(tmp_path_factory):
    """One real build: two processes whose sources lie in different folders ask for the kernel
    at the same time. Returns (builds root, copied module paths, [(rc, stdout, stderr)])."""
    if shutil.which(os.environ.get('CXX', 'c++')) is None:
        pytest.skip('no C++ compiler here')
    base = tmp_path_factory.mktemp('kernel')
    modules = [copy_kernel_sources(base / name) for name in ('a', 'b', 'c')]
    root = base / 'extensions'
    procs = [kernel_process(module, root) for module in modules[:2]]
    results = [finish(proc, timeout=900) for proc in procs]
    return root, modules, results


def test_one_build_serves_concurrent_first_uses_from_other_folders(shared_build):
    root, modules, results = shared_build
    for rc, out, err in results:
        assert rc == 0 and 'SUM' in out and 'WARNING' not in out, (rc, out, err)
    (_, out_a, err_a), (_, out_b, err_b) = results
    assert out_a == out_b
    both = err_a + err_b
    assert both.count('compiling the C++ kernel') == 1, both
    assert both.count('waiting for process') == 1, both  # the other waited, then imported
    build, = build_dirs(root)
    assert library_problem(str(root / build)) is None
    library = root / build / json.loads((root / build / 'manifest.json').read_text())['library']
    built_at = library.stat().st_mtime_ns
    # A third folder, later: imported from the cache, nothing compiled.
    start = time.time()
    rc, out, err = finish(kernel_process(modules[2], root), timeout=120)
    assert rc == 0 and out == out_a and 'compiling' not in err, (out, err)
    assert build_dirs(root) == [build] and library.stat().st_mtime_ns == built_at
    assert time.time() - start < 60


def test_truncated_library_is_not_imported(shared_build, tmp_path):
    """A library cut to half its size (a kill while copying, a full disk) used to be imported
    and kill the process with SIGBUS; it is now refused, and rebuilt where a compiler is (here
    none is, so the PyTorch path serves after one warning)."""
    root, modules, _ = shared_build
    copy = tmp_path / 'extensions'
    shutil.copytree(root, copy)
    build, = build_dirs(copy)
    manifest = json.loads((copy / build / 'manifest.json').read_text())
    library = copy / build / manifest['library']
    os.truncate(library, manifest['size'] // 2)
    rc, out, err = finish(kernel_process(modules[0], copy, CXX='/nonexistent/c++'), timeout=120)
    assert rc == 0, (rc, out, err)  # -7 / 135 was SIGBUS
    assert f'bytes, its manifest says {manifest["size"]}' in err, err
    assert out.count('WARNING') == 1 and 'no C++ compiler' in out and 'FALLBACK' in out, out


def test_build_killed_midway_does_not_block_later_runs(tmp_path, monkeypatch):
    """A build killed with SIGKILL leaves its lock file and temporary folder behind; the next
    build neither waits on the lock nor keeps the half-built folder (here it then finds no
    compiler and says so)."""
    started = tmp_path / 'compiler-started'
    compiler = tmp_path / 'slow-c++'
    compiler.write_text(f'#!/bin/sh\ntouch {started}\nexec sleep 600\n')
    compiler.chmod(0o755)
    root = tmp_path / 'extensions'
    proc = kernel_process(cpu_kernels.__file__, root, CXX=str(compiler))
    deadline = time.time() + 120
    while not started.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.2)
    assert started.exists(), proc.communicate()
    os.killpg(proc.pid, signal.SIGKILL)  # the build process and its compiler
    proc.communicate()
    assert any(e.endswith('.lock') for e in os.listdir(root))
    assert any('.tmp-' in e for e in os.listdir(root))
    monkeypatch.setenv('CXX', '/nonexistent/c++')
    outcome = []

    def build():
        try:
            load_kernel(NAME, root=str(root))
        except RuntimeError as exc:
            outcome.append(str(exc))

    thread = threading.Thread(target=build, daemon=True)  # a hang must not hang the tests
    thread.start()
    thread.join(timeout=30)
    assert not thread.is_alive(), 'waited on the lock of the killed build'
    assert outcome and outcome[0].startswith('no C++ compiler'), outcome
    assert not any('.tmp-' in e for e in os.listdir(root)), os.listdir(root)


def test_build_key_follows_content_not_folder(tmp_path, monkeypatch):
    copies = [osp.dirname(copy_kernel_sources(tmp_path / name)) for name in ('a', 'b')]
    key = build_key(NAME)
    assert build_key(NAME, osp.join(copies[0], 'csrc')) == key
    source = osp.join(copies[1], 'csrc', NAME + '.cpp')
    with open(source, 'a') as f:
        f.write('\n// one more line\n')
    assert build_key(NAME, osp.join(copies[1], 'csrc')) != key
    monkeypatch.setattr(torch, '__version__', '0.0.1')
    assert build_key(NAME) != key


def test_library_problem_checks_size_and_content(tmp_path):
    build = tmp_path / 'build'
    build.mkdir()
    (build / 'k.so').write_bytes(b'\x7fELF' + bytes(60))
    assert 'no complete manifest' in library_problem(str(build))
    digest = hashlib.sha256((build / 'k.so').read_bytes()).hexdigest()
    (build / 'manifest.json').write_text(json.dumps(dict(module='k', library='k.so', size=64,
                                                         sha256=digest)))
    assert library_problem(str(build)) is None
    (build / 'k.so').write_bytes(b'\x7fELF' + bytes(59) + b'\1')
    assert 'differs from the SHA-256' in library_problem(str(build))
    os.truncate(build / 'k.so', 32)
    assert 'is 32 bytes, its manifest says 64' in library_problem(str(build))
    (build / 'manifest.json').write_text(json.dumps(dict(module='k', library='../k.so',
                                                         size=64, sha256=digest)))
    assert 'not a file of the build' in library_problem(str(build))


@pytest.fixture
def no_compiler(tmp_path, monkeypatch):
    """No C++ compiler and an empty builds folder for cpu_kernel(), whose cache is cleared
    before and after."""
    monkeypatch.setenv('CXX', '/nonexistent/c++')
    monkeypatch.setenv('TORCH_EXTENSIONS_DIR', str(tmp_path / 'extensions'))
    monkeypatch.delenv('VITEXT_CPU_KERNELS', raising=False)
    cpu_kernels.cpu_kernel.cache_clear()
    yield
    cpu_kernels.cpu_kernel.cache_clear()


def test_no_compiler_warns_once_and_pytorch_path_gives_the_kernels_numbers(shared_build,
                                                                          no_compiler):
    root, modules, _ = shared_build
    torch.manual_seed(0)
    ks, nh, d = 3, 2, 4
    qkv = torch.randn(2, 5, 4, 3, nh, d, dtype=torch.float64)
    weight = torch.randn(d * ks * ks, 1, ks, ks, dtype=torch.float64)
    bias = torch.randn(d * ks * ks, dtype=torch.float64)
    rel = torch.randn(nh, ks * ks, dtype=torch.float64)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        outputs = [slide_attention_qkv(qkv, weight, bias, rel, ks, 0.5) for _ in range(2)]
    assert len(caught) == 1, [str(w.message) for w in caught]
    assert "C++ kernel 'slide_attention' unavailable (RuntimeError: no C++ compiler: " \
        "'/nonexistent/c++'" in str(caught[0].message)
    kernel = load_kernel(NAME, osp.join(osp.dirname(modules[0]), 'csrc'), str(root))
    expected = kernel.forward(qkv, weight, bias, rel, ks, 0.5)
    for output in outputs:
        torch.testing.assert_close(output, expected, rtol=1e-10, atol=1e-10)
