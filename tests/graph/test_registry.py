from composite.graph import Stage, get_stage_type, registry, stage_types


class _EP:
    def __init__(self, name, obj):
        self.name, self._obj = name, obj

    def load(self):
        if isinstance(self._obj, Exception):
            raise self._obj
        return self._obj


def test_entry_point_plugins_extend_the_registry(monkeypatch):
    class PluginGain(Stage):
        """A stage from another package."""

    monkeypatch.setattr(registry, "_loaded", False)
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    monkeypatch.setattr(registry, "entry_points",
                        lambda group: [_EP("gain", PluginGain), _EP("broken", ImportError("no module"))])
    assert get_stage_type("PluginGain") is PluginGain
    assert "Merge" in stage_types()  # built-ins still there; the broken plugin is skipped with a warning
