"""``python -m chainer_dcgan COMMAND [ARGS]``: see :mod:`chainer_dcgan.commands`."""
import sys

from chainer_dcgan.commands import main

sys.exit(main())
