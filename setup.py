from glob import glob

from setuptools import find_packages, setup

package_name = "protomtl_ros"

setup(
    name=package_name,
    version="0.1.0",
    packages=find_packages(include=[package_name, package_name + ".*"]),
    data_files=[
        ("share/ament_index/resource_index/packages", ["resource/" + package_name]),
        ("share/" + package_name, ["package.xml"]),
        ("share/" + package_name + "/launch", glob("launch/*.launch.py")),
        ("share/" + package_name + "/config", glob("config/*.yaml") + glob("config/*.xml")),
        ("share/" + package_name + "/config/targets", glob("config/targets/*.yaml")),
    ],
    python_requires=">=3.10",
    # Ranges, not pins: Jetson users get torch from NVIDIA's JetPack builds.
    install_requires=[
        "setuptools",
        "numpy>=1.23",
        "torch>=2.5",
        "torchvision>=0.20",
        "opencv-python-headless>=4.8",
        "pyyaml>=6",
    ],
    zip_safe=True,
    maintainer="protomtl_ros developers",
    maintainer_email="protomtl-ros@users.noreply.github.com",
    description="Depth, semantic segmentation and surface normals from one camera, for ROS 2.",
    license="MIT",
    extras_require={"test": ["pytest"]},
    entry_points={
        "console_scripts": [
            "perception_node = protomtl_ros.ros.perception_node:main",
        ],
    },
)
