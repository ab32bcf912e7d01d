"""The command table: every command is registered by the module the table names, handlers follow one convention,
and light commands start without torch."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys

import pytest

from tokfilter.cli import COMMANDS, _Parser


def _registered(module: str) -> dict:
    parser = _Parser(prog="tokfilter")
    subparsers = parser.add_subparsers(dest="command")
    importlib.import_module(module).register(subparsers)
    return dict(subparsers.choices)


def test_every_command_is_registered_by_its_module_and_nothing_else():
    by_module: dict[str, set[str]] = {}
    for command, module in COMMANDS.items():
        by_module.setdefault(module, set()).add(command)
    assert by_module, "the command table is empty"
    for module, commands in by_module.items():
        assert set(_registered(module)) == commands, module


def _handlers(parser) -> list:
    found = []
    default = parser.get_default("func")
    if default is not None:
        found.append(default)
    for action in parser._actions:
        if hasattr(action, "choices") and isinstance(action.choices, dict):
            for sub in action.choices.values():
                found.extend(_handlers(sub))
    return found


def test_handlers_are_named_run_and_every_leaf_command_has_one():
    handlers = []
    for module in dict.fromkeys(COMMANDS.values()):
        for parser in _registered(module).values():
            handlers.extend(_handlers(parser))
    assert len(handlers) >= len(COMMANDS)
    for handler in handlers:
        assert handler.__name__.startswith("run_"), f"{handler.__module__}.{handler.__name__}"


@pytest.mark.parametrize("command", ["tokenize", "view", "shards", "corpus", "report"])
def test_light_commands_do_not_import_torch(command):
    code = ("import sys, json\nfrom tokfilter.cli import main\ntry:\n    main([" + repr(command) + ", '--help'])\n"
            "except SystemExit:\n    pass\nprint(json.dumps('torch' in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.strip().splitlines()[-1] == "false", f"`tokfilter {command} --help` imported torch"
    assert json.loads(out.stdout.strip().splitlines()[-1]) is False


def test_an_unwritable_output_and_a_closed_stdout_end_without_a_traceback(monkeypatch, capsys):
    import tokfilter.report.cli as report_cli
    from tokfilter.cli import main

    def unwritable(args):
        raise PermissionError(13, "Permission denied", "/ro/report.html")

    monkeypatch.setattr(report_cli, "run_report", unwritable)
    assert main(["report", "somewhere"]) == 2
    assert capsys.readouterr().err == "tokfilter: error: /ro/report.html: Permission denied\n"


def test_a_closed_stdout_ends_quietly(tmp_path):
    # a handler that prints 10 MB into a pipe that `head` closes after 10 bytes
    script = ("import sys, tokfilter.report.cli as r\n"
              "def flood(args):\n    [print('x' * 1000) for _ in range(10000)]\n"
              "r.run_report = flood\nfrom tokfilter.cli import main\nsys.exit(main(['report', 'x']))\n")
    result = subprocess.run(f"{sys.executable} -c \"{script}\" | head -c 10", shell=True, capture_output=True,
                            text=True)
    assert result.stderr == "", result.stderr  # no traceback, no "error: Broken pipe", nothing at exit either
