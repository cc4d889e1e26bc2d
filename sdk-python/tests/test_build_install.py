"""`pip install ./sdk-python` works offline into a fresh virtual environment, and the installed
package imports and is typed.

The venv is made without a pip of its own (``--without-pip``) and the running interpreter's pip
installs into it (``pip --python``, pip >= 22.3): the same pip, the same build (build isolation,
the in-tree backend, nothing to download), about 6 s faster than seeding the venv with ensurepip.
README.md's command (``python3 -m venv .venv && .venv/bin/pip install ./sdk-python``) differs
only in which copy of pip runs."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import unittest

from support import SDK_ROOT


class TestInstall(unittest.TestCase):
    def test_pip_install_offline_into_a_fresh_venv(self) -> None:
        version = subprocess.run([sys.executable, "-m", "pip", "--version"], capture_output=True, text=True, timeout=60)
        if version.returncode != 0:
            self.skipTest("this interpreter has no pip")
        if tuple(int(x) for x in version.stdout.split()[1].split(".")[:2]) < (22, 3):
            self.skipTest("pip --python needs pip 22.3 or later")
        venv = tempfile.mkdtemp(prefix="panopticon-venv-")
        self.addCleanup(shutil.rmtree, venv, True)
        build = tempfile.mkdtemp(prefix="panopticon-src-")
        self.addCleanup(shutil.rmtree, build, True)
        # A copy, so the build cannot write into the repository and a stale build dir cannot help.
        src = os.path.join(build, "sdk-python")
        shutil.copytree(SDK_ROOT, src, ignore=shutil.ignore_patterns("__pycache__", "tests"))
        subprocess.run([sys.executable, "-m", "venv", "--without-pip", venv], check=True, timeout=120)
        bindir = "Scripts" if os.name == "nt" else "bin"
        python = os.path.join(venv, bindir, "python")
        env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
        env["PIP_CONFIG_FILE"] = os.devnull  # no index, no find-links, no cache from the machine's pip.conf
        out = subprocess.run([sys.executable, "-m", "pip", "--python", python, "install", "--no-index", "--no-cache-dir", src],
                             capture_output=True, text=True, timeout=180, env=env, cwd=build)
        self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
        probe = ("import importlib.metadata as md, os, panopticon, sys; "
                 "assert md.version('panopticon-sdk') == '0.1.0' and not md.requires('panopticon-sdk'); "
                 "assert os.path.exists(os.path.join(os.path.dirname(panopticon.__file__), 'py.typed')); "
                 "assert os.path.commonpath([panopticon.__file__, sys.prefix]) == sys.prefix; "
                 "p = panopticon.Panopticon('http://127.0.0.1:9', 'pano_pak_x', 'logi_000000000000', flush_at_exit=False); "
                 "print(panopticon.__version__, p.check('t', scope='s').source)")
        check = subprocess.run([python, "-c", probe], capture_output=True, text=True, timeout=60, cwd=venv)
        self.assertEqual(check.returncode, 0, check.stderr)
        self.assertEqual(check.stdout.split(), ["0.1.0", "fail_closed"])
