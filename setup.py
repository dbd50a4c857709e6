"""The one compiled module: the MNIST-form check on the request path (setuptools runs Cython on it).
Everything else about the package is in pyproject.toml."""

from setuptools import Extension, setup

setup(ext_modules=[Extension("mnist_flask._mnist_form", ["mnist_flask/_mnist_form.pyx"])])
