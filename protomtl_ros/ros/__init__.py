"""The ROS 2 adapter: perception node, image message conversion, QoS and diagnostics."""
