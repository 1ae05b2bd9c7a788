import os
import subprocess
import sys

import pytest

SCRIPT = ("from chainer_dcgan.utils import memory; print(memory.reuse_freed_memory(), memory.reuse_freed_memory()); "
          "print(memory.policy())")


def _run(env_value):
    env = dict(os.environ)
    env.pop("CHAINER_DCGAN_MALLOC", None)
    if env_value is not None:
        env["CHAINER_DCGAN_MALLOC"] = env_value
    out = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return out.stdout.splitlines()


@pytest.mark.skipif(not sys.platform.startswith("linux") or os.confstr("CS_GNU_LIBC_VERSION") is None,
                    reason="mallopt is glibc's")
def test_reuse_freed_memory_on_glibc_and_its_switch():
    assert _run(None) == ["True True", "malloc keeps freed memory (M_MMAP_MAX=0, M_TRIM_THRESHOLD=2^31-1)"]
    assert _run("0") == ["False False", "malloc as the C library sets it"]


def test_a_cpu_updater_turns_it_on():
    script = ("import numpy, chainer\n"
              "from chainer_dcgan import DCGANUpdater\n"
              "from chainer_dcgan.training import make_optimizer, seeded_models\n"
              "from chainer_dcgan.utils import memory\n"
              "gen, dis = seeded_models(0)\n"
              "it = chainer.iterators.SerialIterator([numpy.zeros((3, 96, 96), numpy.float32)] * 2, 2)\n"
              "assert '_STATE' in dir(memory) and 'done' not in memory._STATE\n"
              "DCGANUpdater(it, {'gen': make_optimizer(gen), 'dis': make_optimizer(dis)}, device='@numpy')\n"
              "print(memory._STATE.get('done'))\n")
    env = dict(os.environ)
    env.pop("CHAINER_DCGAN_MALLOC", None)
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    glibc = sys.platform.startswith("linux") and os.confstr("CS_GNU_LIBC_VERSION") is not None
    assert out.stdout.strip() == str(glibc)
