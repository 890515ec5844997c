"""The one part of the build pyproject.toml cannot declare (without setuptools' experimental
``ext-modules`` table): the fingerprint's compiled inner loops.

``heritage/reading/_kernels.c`` is compiled when a C compiler is at hand; ``optional``
lets the installation go on without it, and ``heritage.reading.kernels`` then runs its
NumPy twins. ``-ffp-contract=off`` keeps the float64 power sums the same on every machine
(no fused multiply-add).
"""

import sys

from setuptools import Extension, setup

flags = [] if sys.platform == "win32" else ["-O3", "-ffp-contract=off"]
setup(ext_modules=[Extension("heritage.reading._kernels", sources=["heritage/reading/_kernels.c"],
                             extra_compile_args=flags, optional=True)])
