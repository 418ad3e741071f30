"""``import reparam`` stays cheap: it does not pull in torch's compiler stack (torch._dynamo
costs about a second and probes every optional package on import)."""

from __future__ import annotations

import subprocess
import sys


def test_import_does_not_load_the_compiler() -> None:
    code = "import sys, reparam; print('torch._dynamo' in sys.modules, 'torch._inductor' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["False", "False"], done.stdout
