"""Packaging: the ``composite`` package plus the top-level ``models/`` and ``pipelines/`` folders, which
the wheel carries as ``composite/_data/models`` and ``composite/_data/pipelines`` (see
composite/resources.py)."""

from setuptools import find_packages, setup

setup(
    packages=find_packages(include=["composite", "composite.*"]) + ["composite._data.models",
                                                                   "composite._data.pipelines"],
    package_dir={"composite._data.models": "models", "composite._data.pipelines": "pipelines"},
    package_data={"composite._data.models": ["*.json", "*.md"], "composite._data.pipelines": ["*.yaml"]},
)
