import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def _blocks(lang):
    return re.findall(rf"```{lang}\n(.*?)```", README.read_text(), flags=re.S)


def test_python_quickstart_runs():
    (code,) = _blocks("python")
    exec(compile(code, "README.md", "exec"), {})


def test_ci_runs_readme_command_2():
    commands = [l for l in _blocks("bash")[0].splitlines() if l and not l.startswith("#")]
    ci = (README.parent / ".ci" / "run").read_text()
    assert commands[1] in ci.splitlines(), "CI must run README command 2 verbatim"
