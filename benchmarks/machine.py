"""The machine and the libraries a run's figures depend on (the header of every report)."""

import os
import platform

import numpy as np

from .common import load_torch, torch_error


def machine_info():
    """A dict describing the machine and the libraries the figures depend on."""
    info = {"python": platform.python_version(), "platform": platform.platform()}
    cpu = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    info["cpu"] = cpu
    info["logical_cpus"] = os.cpu_count()
    try:
        info["usable_cpus"] = len(os.sched_getaffinity(0))
    except AttributeError:
        info["usable_cpus"] = os.cpu_count()
    try:
        info["load_average"] = " ".join(f"{v:.2f}" for v in os.getloadavg())
    except OSError:
        pass
    info["minidl"] = _minidl_version()
    info["numpy"] = np.__version__
    info["blas"] = _blas_description()
    info["cpu_kind"] = cpu_kind()
    info["threadpools"] = _threadpools()
    torch = load_torch()
    info["torch"] = (f"{torch.__version__} ({torch.get_num_threads()} threads)" if torch is not None
                     else f"not available ({torch_error()})")
    return info


def _minidl_version():
    """minidl's version and, in a git checkout, the commit and whether minidl/ has uncommitted changes."""
    import subprocess

    import minidl

    text = minidl.__version__
    root = os.path.dirname(os.path.dirname(os.path.abspath(minidl.__file__)))
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True,
                              timeout=10)
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "minidl"], cwd=root, capture_output=True,
                               text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return text
    if head.returncode == 0:
        text += f" (commit {head.stdout.strip()}{', minidl/ modified' if dirty.stdout.strip() else ''})"
    return text


def cpu_kind():
    """``"AVX-512"``, ``"AVX2"`` or ``"other"``: the widest vector kernels numpy dispatches here (its
    X86_V4 group, AVX-512, unless disabled by ``NPY_DISABLE_CPU_FEATURES``), with OpenBLAS's core
    (``OPENBLAS_CORETYPE`` can force another) in brackets."""
    try:
        from numpy._core._multiarray_umath import __cpu_features__ as features
    except ImportError:  # numpy < 2
        from numpy.core._multiarray_umath import __cpu_features__ as features
    if features.get("X86_V4", features.get("AVX512_SKX")):
        kind = "AVX-512"
    elif features.get("AVX2"):
        kind = "AVX2"
    else:
        kind = "other"
    core = _openblas_core()
    return f"{kind} (numpy's kernels; OpenBLAS core {core})" if core else f"{kind} (numpy's kernels)"


def _openblas_core():
    """The kernel family numpy's OpenBLAS runs (``SkylakeX``, ``Haswell``, ...), or None."""
    import ctypes
    import glob

    for lib in glob.glob(os.path.join(os.path.dirname(np.__file__) + ".libs", "*openblas*")):
        try:
            dll = ctypes.CDLL(lib)
        except OSError:
            continue
        for name in ("scipy_openblas_get_corename64_", "scipy_openblas_get_corename", "openblas_get_corename"):
            fn = getattr(dll, name, None)
            if fn is not None:
                fn.restype = ctypes.c_char_p
                return fn().decode()
    return None


def _blas_description():
    try:
        config = np.show_config(mode="dicts")
        blas = config["Build Dependencies"]["blas"]
        text = f"{blas.get('name', '?')} {blas.get('version', '')}".strip()
        detail = blas.get("openblas configuration")
        return f"{text} ({detail.strip()})" if detail else text
    except Exception:  # older numpy: show_config has no mode
        return "unknown"


def _threadpools():
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        names = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_CORETYPE")
        env = {k: os.environ[k] for k in names if k in os.environ}
        return f"threadpoolctl not installed; thread env: {env or 'unset (BLAS default: one thread per core)'}"
    pools = threadpool_info()
    return "; ".join(
        f"{p.get('internal_api')} {p.get('version')} {p.get('num_threads')} threads"
        + (f", kernel {p['architecture']}" if p.get("architecture") else "")
        for p in pools
    )
