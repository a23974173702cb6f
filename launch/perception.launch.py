"""Launch the protomtl_perception node with the shipped parameters and Fast DDS profile.

Example:
    ros2 launch protomtl_ros perception.launch.py model_path:=/models/protomtl.pt2 \\
        image_topic:=/camera/color/image_raw camera_info_topic:=/camera/color/camera_info

The launch file sets FASTDDS_DEFAULT_PROFILES_FILE (launch argument fastdds_profile) so that
camera-sized images fit the shared-memory transport. It leaves ROS_AUTOMATIC_DISCOVERY_RANGE
to the user: a robot usually needs the node visible to other hosts (RViz on a laptop), while
a single-machine setup can export ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST before launching.
"""

import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction, SetEnvironmentVariable
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

PACKAGE = "protomtl_ros"


def generate_launch_description():
    share = get_package_share_directory(PACKAGE)
    default_params = os.path.join(share, "config", "perception.yaml")
    default_profile = os.path.join(share, "config", "fastdds_shm.xml")

    arguments = [
        DeclareLaunchArgument(
            "image_topic", default_value="/camera/image_raw",
            description="Colour image topic the node subscribes to (sensor_msgs/Image).",
        ),
        DeclareLaunchArgument(
            "camera_info_topic", default_value="/camera/camera_info",
            description="CameraInfo topic that matches image_topic.",
        ),
        DeclareLaunchArgument(
            "model_path", default_value="",
            description="Exported model (.pt2) or training checkpoint; when given, it "
                        "overrides model_path from params_file.",
        ),
        DeclareLaunchArgument(
            "params_file", default_value=default_params,
            description="Node parameters (YAML).",
        ),
        DeclareLaunchArgument(
            "namespace", default_value="",
            description="Namespace of the node. Output topics are absolute (/protomtl/...).",
        ),
        DeclareLaunchArgument(
            "fastdds_profile", default_value=default_profile,
            description="Fast DDS XML profile, exported as FASTDDS_DEFAULT_PROFILES_FILE.",
        ),
    ]

    return LaunchDescription(arguments + [
        SetEnvironmentVariable(
            "FASTDDS_DEFAULT_PROFILES_FILE", LaunchConfiguration("fastdds_profile")
        ),
        OpaqueFunction(function=_perception_node),
    ])


def _perception_node(context):
    """Return the node action; model_path overrides params_file only when it is given."""
    parameters = [LaunchConfiguration("params_file").perform(context)]
    model_path = LaunchConfiguration("model_path").perform(context)
    if model_path:
        parameters.append({"model_path": model_path})

    return [
        Node(
            package=PACKAGE,
            executable="perception_node",
            name="protomtl_perception",
            namespace=LaunchConfiguration("namespace"),
            output="screen",
            parameters=parameters,
            remappings=[
                ("image", LaunchConfiguration("image_topic")),
                ("camera_info", LaunchConfiguration("camera_info_topic")),
            ],
        )
    ]
