"""Test-only import shim: `ansible_runner` backed by containerrunner.

tests/integration/test_navigator.py puts this directory first on PYTHONPATH when it runs the
`ansible-navigator` command, so navigator's `from ansible_runner import ...` gets
containerrunner's helpers while the real ansible-runner stays installed beside it (navigator's
package metadata requires it). Nothing here ships in the containerrunner package.

ansible-navigator 26.10.0 imports only top-level names (no submodules): run_command,
run_command_async, get_plugin_docs, get_inventory, get_ansible_config and, for type checking,
Runner. The whole public API is re-exported so other consumers can be tried the same way.
"""

from __future__ import annotations

import containerrunner
from containerrunner import *  # noqa: F403
from containerrunner import Runner, RunnerConfig, __version__  # noqa: F401

__all__ = list(containerrunner.__all__)

# Lets a test prove that this shim, not the real ansible-runner, was imported.
CONTAINERRUNNER_SHIM = True
