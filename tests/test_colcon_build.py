"""Build the package with colcon, as in a ROS 2 workspace, and run the installed node.

colcon comes from PyPI here; a ROS 2 distribution is not needed to build an ament_python
package, only to launch it with `ros2 launch`.
"""

import importlib.util
import os
from pathlib import Path
import shutil
import subprocess
import sys

import pytest

from ros_helpers import REPO_ROOT, ros_environment

DOMAIN_ID = 61
BUILD_TIMEOUT_S = 300


def repository_files() -> list[str]:
    """Files git tracks, or everything but the virtual environment outside a git checkout."""
    try:
        listed = subprocess.run(
            ["git", "-C", str(REPO_ROOT), "ls-files", "-z"], capture_output=True, check=True
        ).stdout.decode().split("\0")
        return [name for name in listed if name and (REPO_ROOT / name).is_file()]
    except (OSError, subprocess.CalledProcessError):
        skipped = {".venv", ".git", "build", "install", "log", "demo_output", "runs"}
        return [
            str(path.relative_to(REPO_ROOT)) for path in REPO_ROOT.rglob("*")
            if path.is_file() and path.relative_to(REPO_ROOT).parts[0] not in skipped
        ]


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> Path:
    if importlib.util.find_spec("colcon_core") is None:
        pytest.skip("colcon is not installed (pip install colcon-common-extensions)")

    root = tmp_path_factory.mktemp("ros_ws")
    source = root / "src" / "protomtl_ros"
    for name in repository_files():
        target = source / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO_ROOT / name, target)

    result = subprocess.run(
        [sys.executable, "-m", "colcon", "build", "--packages-select", "protomtl_ros"],
        cwd=root, capture_output=True, text=True, timeout=BUILD_TIMEOUT_S,
        env=ros_environment(DOMAIN_ID),
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return root


def installed_python_path(workspace: Path) -> Path:
    folder = workspace / "install" / "protomtl_ros" / "lib"
    matches = sorted(folder.glob("python3*/site-packages"))
    assert matches, f"no site-packages under {folder}"
    return matches[0]


def test_colcon_install_layout(workspace):
    prefix = workspace / "install" / "protomtl_ros"
    share = prefix / "share" / "protomtl_ros"

    assert (prefix / "share" / "ament_index" / "resource_index" / "packages"
            / "protomtl_ros").is_file()
    for name in ("package.xml", "launch/perception.launch.py", "config/perception.yaml",
                 "config/fastdds_shm.xml", "config/targets/cpu.yaml",
                 "config/targets/jetson_orin.yaml", "config/targets/desktop_gpu.yaml"):
        assert (share / name).is_file(), name

    executable = prefix / "lib" / "protomtl_ros" / "perception_node"
    assert executable.is_file()
    assert os.access(executable, os.X_OK)

    site_packages = installed_python_path(workspace)
    for module in ("network/model.py", "runtime/engine.py", "ros/perception_node.py"):
        assert (site_packages / "protomtl_ros" / module).is_file(), module


def test_installed_node_uses_installed_package(workspace, tmp_path):
    site_packages = installed_python_path(workspace)
    env = ros_environment(DOMAIN_ID)
    # Only the workspace's copy of the package, as after `source install/setup.bash`.
    env["PYTHONPATH"] = str(site_packages)
    missing = tmp_path / "missing.pt2"
    executable = workspace / "install" / "protomtl_ros" / "lib" / "protomtl_ros" / "perception_node"

    result = subprocess.run(
        [str(executable), "--ros-args", "-p", f"model_path:={missing}"],
        capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path,
    )

    # The node reports the model it cannot load and exits non-zero, without a traceback.
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert str(missing) in output
    assert "Traceback" not in output

    located = subprocess.run(
        [sys.executable, "-c", "import protomtl_ros; print(protomtl_ros.__file__)"],
        capture_output=True, text=True, timeout=60, env=env, cwd=tmp_path,
    )
    assert Path(located.stdout.strip()).is_relative_to(site_packages), located.stdout
