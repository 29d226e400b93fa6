"""Recipe files (YAML or JSON) ⇄ :class:`~composite.graph.pipeline.Pipeline`.

Schema ``composite.pipeline/1``::

    schema: composite.pipeline/1
    name: sh010
    rate: 24
    frames: 1001-1100          # default range for `composite render`
    working_space: ACEScg
    nonfinite: error           # or repair
    stages:
      plate: {type: ReadImage, params: {path: plates/sh010.####.exr, colorspace: ACEScg}}
      key:   {type: ColorDifferenceKey, inputs: {image: plate}, params: {screen: green}}
      write: {type: WriteImage, inputs: {image: key}, params: {path: renders/sh010.####.exr}}

Inputs name a stage (its main output) or ``stage.output``. String parameters may use ``$VAR`` /
``${VAR}`` environment variables and ``${RECIPE_DIR}`` (the recipe file's folder); other relative paths
are relative to the working directory.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from ..core.errors import RecipeError
from .pipeline import Pipeline
from .registry import get_stage_type

SCHEMA = "composite.pipeline/1"
_TOP_KEYS = {"schema", "name", "rate", "frames", "working_space", "nonfinite", "stages", "metadata"}
_STAGE_KEYS = {"type", "inputs", "params", "doc"}

#: Upgrade functions from older schema versions: {old_schema: fn(dict) -> dict at the next version}.
UPGRADES: dict[str, Any] = {}


def _expand(value: Any, recipe_dir: str | None) -> Any:
    if isinstance(value, str):
        if recipe_dir is not None:
            value = value.replace("${RECIPE_DIR}", recipe_dir)
        if "$" in value:
            value = os.path.expandvars(value)
        return value
    if isinstance(value, list):
        return [_expand(v, recipe_dir) for v in value]
    if isinstance(value, Mapping):
        return {k: _expand(v, recipe_dir) for k, v in value.items()}
    return value


def read_recipe_file(path: str | os.PathLike) -> dict[str, Any]:
    """Parse a recipe file (YAML or JSON) into a dict; errors name the file."""
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise RecipeError("recipe file not found", source=str(path)) from None
    except OSError as exc:
        raise RecipeError(f"cannot read recipe: {exc}", source=str(path)) from None
    try:
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (yaml.YAMLError, json.JSONDecodeError) as exc:
        raise RecipeError(f"not valid YAML/JSON: {exc}", source=str(path)) from None
    if not isinstance(data, dict):
        raise RecipeError("a recipe must be a mapping with a 'stages' key", source=str(path))
    return data


def upgrade(data: dict[str, Any], source: str) -> dict[str, Any]:
    schema = data.get("schema", SCHEMA)
    seen = set()
    while schema != SCHEMA:
        if schema in seen or schema not in UPGRADES:
            raise RecipeError(f"unknown schema {schema!r}; this composite reads {SCHEMA}", key="schema", source=source)
        seen.add(schema)
        data = UPGRADES[schema](data)
        schema = data.get("schema", SCHEMA)
    return data


def parse_overrides(items: list[str] | None) -> list[tuple[str, str, Any]]:
    """``["key.screen=blue", "write.path=out.####.exr"]`` → ``[(node, param, value), ...]``.

    Values are parsed as YAML scalars/lists (``1.5`` → float, ``[1, 2]`` → list, ``true`` → bool);
    anything that does not parse stays a string.
    """
    out = []
    for item in items or []:
        m = re.fullmatch(r"([^.=\s]+)\.([^=\s]+)=(.*)", item, flags=re.S)
        if not m:
            raise RecipeError(f"--set expects STAGE.PARAM=VALUE, got {item!r}", key="--set")
        node, param, raw = m.groups()
        try:
            value = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError:
            value = raw
        if value is None and raw.strip() not in ("null", "~", "None"):
            value = raw
        if isinstance(value, (int, float)) and not isinstance(value, bool) and re.search(r"[#%@]", raw):
            value = raw
        out.append((node, param, value))
    return out


def pipeline_from_recipe(data: Mapping[str, Any], *, source: str = "<recipe>", recipe_dir: str | None = None,
                         overrides: list[tuple[str, str, Any]] | None = None) -> Pipeline:
    """Build and validate a pipeline from a recipe mapping."""
    data = upgrade(dict(data), source)
    unknown = sorted(set(data) - _TOP_KEYS)
    if unknown:
        raise RecipeError(f"unknown key {unknown[0]!r}; allowed: {', '.join(sorted(_TOP_KEYS))}",
                          key=unknown[0], source=source)
    stages = data.get("stages")
    if not isinstance(stages, Mapping) or not stages:
        raise RecipeError("'stages' must be a non-empty mapping of name: {type, inputs, params}",
                          key="stages", source=source)
    try:
        pipeline = Pipeline(str(data.get("name", Path(source).stem if source != "<recipe>" else "pipeline")),
                            rate=float(data.get("rate", 24.0)),
                            working_space=str(data.get("working_space", "ACEScg")),
                            nonfinite=str(data.get("nonfinite", "error")),
                            frames=None if data.get("frames") is None else str(data.get("frames")),
                            metadata=data.get("metadata") or {})
    except RecipeError as exc:
        raise RecipeError(str(exc), source=source) from None
    except (TypeError, ValueError) as exc:
        raise RecipeError(f"bad top-level value: {exc}", source=source) from None
    pipeline.source = source
    overrides = list(overrides or [])
    by_node: dict[str, dict[str, Any]] = {}
    for node, param, value in overrides:
        if node not in stages:
            raise RecipeError(f"--set names unknown stage {node!r}; stages: {', '.join(stages)}",
                              key=f"{node}.{param}", source=source)
        by_node.setdefault(node, {})[param] = value
    for name, spec in stages.items():
        key = f"stages.{name}"
        if not isinstance(spec, Mapping):
            raise RecipeError("a stage must be a mapping with 'type'", key=key, source=source)
        bad = sorted(set(spec) - _STAGE_KEYS)
        if bad:
            raise RecipeError(f"unknown key {bad[0]!r}; allowed: {', '.join(sorted(_STAGE_KEYS))}",
                              key=f"{key}.{bad[0]}", source=source)
        if "type" not in spec:
            raise RecipeError("missing 'type'", key=f"{key}.type", source=source)
        cls = get_stage_type(str(spec["type"]), key=f"{key}.type", source=source)
        params = spec.get("params") or {}
        if not isinstance(params, Mapping):
            raise RecipeError("'params' must be a mapping", key=f"{key}.params", source=source)
        params = _expand(dict(params), recipe_dir)
        for p, v in by_node.get(name, {}).items():
            if p not in cls.params:
                allowed = ", ".join(sorted(cls.params)) or "(none)"
                raise RecipeError(f"{cls.type_name} has no parameter {p!r}; parameters: {allowed}",
                                  key=f"{key}.params.{p}", source=f"{source} (--set)")
            params[p] = _expand(v, None)
        try:
            stage = cls(**params)
        except RecipeError as exc:
            raise RecipeError(str(exc).split(": ", 1)[-1] if exc.key else str(exc),
                              key=f"{key}.{exc.key}" if exc.key else key, source=source) from None
        inputs = spec.get("inputs") or {}
        if not isinstance(inputs, Mapping):
            raise RecipeError("'inputs' must be a mapping of input: stage", key=f"{key}.inputs", source=source)
        pipeline.add(name, stage, **{k: v for k, v in inputs.items()})
    pipeline.validate()
    return pipeline


def resolve_recipe_path(name_or_path: str | os.PathLike) -> Path:
    """A recipe path, or the name of a recipe shipped in ``pipelines/`` (with or without ``.yaml``)."""
    p = Path(name_or_path)
    if p.exists():
        return p
    from ..resources import find_pipeline

    found = find_pipeline(str(name_or_path))
    if found is None:
        from ..resources import list_pipelines

        names = ", ".join(list_pipelines()) or "(none)"
        raise RecipeError(f"no recipe file {str(name_or_path)!r} and no shipped recipe of that name; shipped: {names}",
                          source=str(name_or_path))
    return found


def load_recipe(name_or_path: str | os.PathLike, *, overrides: list[tuple[str, str, Any]] | None = None) -> Pipeline:
    """Load a recipe file (or shipped recipe name) into a validated pipeline."""
    path = resolve_recipe_path(name_or_path)
    data = read_recipe_file(path)
    return pipeline_from_recipe(data, source=str(path), recipe_dir=str(path.resolve().parent), overrides=overrides)


def pipeline_to_recipe(pipeline: Pipeline) -> dict[str, Any]:
    """A recipe mapping that rebuilds the same graph (parameters equal to defaults are omitted)."""
    stages: dict[str, Any] = {}
    for name, node in pipeline.nodes.items():
        entry: dict[str, Any] = {"type": node.stage.type_name}
        if node.inputs:
            entry["inputs"] = {k: str(v) for k, v in node.inputs.items()}
        params = {}
        for k, v in node.stage.param_dict().items():
            spec = node.stage.params[k]
            default = spec.validate(spec.default, key=k) if spec.default is not None or spec.optional else None
            from .params import thaw

            if v != thaw(default):
                params[k] = v
        if params:
            entry["params"] = params
        stages[name] = entry
    recipe: dict[str, Any] = {"schema": SCHEMA, "name": pipeline.name, "rate": pipeline.rate}
    if pipeline.frames:
        recipe["frames"] = pipeline.frames
    if pipeline.working_space != "ACEScg":
        recipe["working_space"] = pipeline.working_space
    if pipeline.nonfinite != "error":
        recipe["nonfinite"] = pipeline.nonfinite
    if pipeline.metadata:
        recipe["metadata"] = dict(pipeline.metadata)
    recipe["stages"] = stages
    return recipe


def dump_recipe(pipeline: Pipeline) -> str:
    return yaml.safe_dump(pipeline_to_recipe(pipeline), sort_keys=False)
