"""Build of the optional C extension; everything else is in pyproject.toml.

``safenpz._pickle._verdict`` is a compiled pre-check of pickle streams (see
``src/safenpz/_pickle/_prescan.py``). It is optional: where it cannot be built
(no compiler, no Python headers) the install still succeeds and safenpz runs
its pure-Python scanner, with the same results, only slower.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "safenpz._pickle._verdict",
            ["src/safenpz/_pickle/_verdict.c"],
            optional=True,
            extra_compile_args=["-O2", "-std=c99", "-Wall", "-Wextra"],
        )
    ]
)
