"""Helpers shared by the test modules."""
import importlib.util
import os.path as osp
from types import ModuleType

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))


def load_tool(name: str) -> ModuleType:
    """``tools/<name>.py`` as a module (tools/ holds scripts, not a package)."""
    spec = importlib.util.spec_from_file_location(f"_tool_{name}", osp.join(ROOT, "tools", f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
