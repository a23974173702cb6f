"""ROS 2 node that publishes depth, segmentation and surface normals for each camera frame.

Subscribes to ``image`` and ``camera_info`` (relative names, remapped by the launch file).
Inference runs on a worker thread on the newest frame only, so a slow model drops frames
instead of building a queue. Outputs copy the input header exactly.
"""

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
import sys
import threading
import time

import numpy as np
import rclpy
import torch
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node
from rclpy.qos_overriding_options import QoSOverridingOptions
from sensor_msgs.msg import CameraInfo, Image
from diagnostic_msgs.msg import DiagnosticArray

from protomtl_ros.ros.camera_info import scale_camera_info
from protomtl_ros.ros.diagnostics import DiagnosticsReporter, FrameCounters
from protomtl_ros.ros.frame_slot import LatestFrameSlot
from protomtl_ros.ros.image_conversion import (
    class_ids_to_image,
    depth_to_image,
    image_to_rgb,
    normals_to_image,
    rgb_to_image,
)
from protomtl_ros.ros.parameters import NodeSettings, ParameterError, declare_settings
from protomtl_ros.ros.qos import IncompatibleQosReporter, input_qos, output_qos
from protomtl_ros.runtime import InferenceEngine
from protomtl_ros.runtime.errors import (
    InputError, InvalidOutputError, ModelLoadError, ProtoMTLError,
)

NODE_NAME = "protomtl_perception"

DEPTH_TOPIC = "/protomtl/depth/image"
DEPTH_INFO_TOPIC = "/protomtl/depth/camera_info"
SEGMENTATION_TOPIC = "/protomtl/segmentation/image"
SEGMENTATION_COLOR_TOPIC = "/protomtl/segmentation/color"
NORMALS_TOPIC = "/protomtl/normals/image"
NORMALS_COLOR_TOPIC = "/protomtl/normals/color"

# Seconds between repeats of the same per-frame warning.
LOG_THROTTLE_S = 5.0
# Seconds the worker waits for a frame before checking whether the node is shutting down.
WORKER_POLL_S = 0.1


@dataclass
class Frame:
    """A converted input frame waiting for inference."""

    header: object
    rgb: np.ndarray


class PerceptionNode(Node):
    """Run the multi-task network on each newest camera frame and publish its predictions."""

    def __init__(self, **node_options):
        super().__init__(NODE_NAME, **node_options)
        self.settings: NodeSettings = declare_settings(self)

        if self.settings.cpu_threads:
            torch.set_num_threads(self.settings.cpu_threads)
        # Load the model before subscribing, so a node without a model never takes frames.
        self.engine = self._load_engine()
        self._num_classes = len(self.engine.class_names)

        self.counters = FrameCounters()
        self._slot = LatestFrameSlot()
        self._camera_info = None
        self._camera_info_lock = threading.Lock()
        self._warned = set()

        self._qos_reporter = IncompatibleQosReporter(self.get_logger())
        self._create_publishers()
        self._create_subscriptions()

        self._diagnostics = DiagnosticsReporter(
            self.counters,
            name=f"{self.get_name()}: inference",
            hardware_id=self.settings.device,
            backend=self.engine.backend,
            device=self.settings.device,
        )
        self._diagnostics_timer = self.create_timer(
            self.settings.diagnostics_period_s, self._diagnostics_callback
        )

        # A second thread resizes the normals while the inference thread does depth and
        # class ids (numpy and OpenCV release the GIL). For 640x480 frames on a 2-core x86
        # CPU, the time around the forward pass (pre- and post-processing, output checks)
        # went from about 9.4 ms to 7 ms.
        self._helper = ThreadPoolExecutor(max_workers=1, thread_name_prefix="postprocess")
        self._worker = threading.Thread(target=self._worker_loop, name="inference", daemon=True)
        self._worker.start()

        height, width = self.engine.input_size
        self.get_logger().info(
            f"loaded model '{self.settings.model_path}' (backend {self.engine.backend}, device "
            f"{self.settings.device}, network input {height}x{width}, "
            f"{torch.get_num_threads()} CPU threads); subscribed to "
            f"'{self._image_sub.topic_name}' and '{self._info_sub.topic_name}'"
        )

    def _load_engine(self):
        path = self.settings.model_path
        try:
            return InferenceEngine.from_file(
                path,
                device=self.settings.device,
                backend=self.settings.backend,
                warn=self.get_logger().warning,
            )
        except ModelLoadError as error:
            if path in str(error):
                raise
            raise ModelLoadError(f"failed to load model '{path}': {error}") from error
        except Exception as error:  # noqa: BLE001 - report any loader failure without a traceback.
            raise ModelLoadError(
                f"failed to load model '{path}': {type(error).__name__}: {error}"
            ) from error

    def _create_publishers(self):
        qos = output_qos(self.settings.output_depth)
        self._publishers_by_topic = {}
        for topic, message_type in (
            (DEPTH_TOPIC, Image),
            (DEPTH_INFO_TOPIC, CameraInfo),
            (SEGMENTATION_TOPIC, Image),
            (SEGMENTATION_COLOR_TOPIC, Image),
            (NORMALS_TOPIC, Image),
            (NORMALS_COLOR_TOPIC, Image),
        ):
            self._publishers_by_topic[topic] = self.create_publisher(
                message_type,
                topic,
                qos,
                event_callbacks=self._qos_reporter.publisher_callbacks(topic),
                qos_overriding_options=QoSOverridingOptions.with_default_policies(),
            )
        self._diagnostics_publisher = self.create_publisher(DiagnosticArray, "/diagnostics", 10)

    def _create_subscriptions(self):
        qos = input_qos(self.settings.input_reliability, self.settings.input_depth)
        self._image_sub = self.create_subscription(
            Image,
            "image",
            self.image_callback,
            qos,
            event_callbacks=self._qos_reporter.subscription_callbacks("image"),
            qos_overriding_options=QoSOverridingOptions.with_default_policies(),
        )
        self._info_sub = self.create_subscription(
            CameraInfo,
            "camera_info",
            self.camera_info_callback,
            qos,
            event_callbacks=self._qos_reporter.subscription_callbacks("camera_info"),
        )

    def camera_info_callback(self, msg: CameraInfo):
        """Keep the newest camera_info for the scaled depth camera_info."""
        with self._camera_info_lock:
            self._camera_info = msg

    def image_callback(self, msg: Image):
        """Convert the image and hand it to the worker, replacing any frame not yet started."""
        self.counters.add("received")
        self._warn_about_header(msg.header)

        try:
            rgb = image_to_rgb(msg)
        except InputError as error:
            self._count_and_log("rejected", f"rejected image: {error}")
            return
        except Exception as error:  # noqa: BLE001 - a bad message must never stop the node.
            self._count_and_log(
                "rejected", f"rejected image: conversion failed with {type(error).__name__}: "
                f"{error}"
            )
            return

        replaced = self._slot.put(Frame(header=msg.header, rgb=rgb))
        if replaced is not None:
            self.counters.add("dropped")

    def _warn_about_header(self, header):
        if header.stamp.sec == 0 and header.stamp.nanosec == 0:
            self._warn_once(
                "zero_stamp",
                "input image has a zero stamp; outputs copy it, so tools that match messages "
                "by time (message_filters, tf) cannot pair them. Set header.stamp in the "
                "camera driver.",
            )
        if not header.frame_id:
            self._warn_once(
                "empty_frame_id",
                "input image has an empty frame_id; outputs copy it, so their optical frame "
                "is unknown to tf. Set header.frame_id in the camera driver.",
            )

    def _warn_once(self, key: str, message: str):
        if key not in self._warned:
            self._warned.add(key)
            self.get_logger().warning(message)

    def _count_and_log(self, field: str, message: str):
        total = self.counters.add(field, error=message)
        self.get_logger().warning(
            f"{message} ({total} {field} so far)", throttle_duration_sec=LOG_THROTTLE_S
        )

    def _worker_loop(self):
        while not self._slot.closed:
            frame = self._slot.take(WORKER_POLL_S)
            if frame is None:
                continue
            try:
                self._process(frame)
            except Exception as error:  # noqa: BLE001 - the worker must outlive a bad frame.
                self._count_and_log(
                    "failed", f"inference failed with {type(error).__name__}: {error}"
                )

    def _process(self, frame: Frame):
        started = time.monotonic()
        try:
            predictions = self.engine.predict(frame.rgb, executor=self._helper)
            self.counters.add_forward_time(self.engine.forward_ms)
            depth = self._checked_outputs(predictions)
        except ProtoMTLError as error:
            self._count_and_log("failed", f"dropped frame: {error}")
            return
        finally:
            self.counters.add_inference_time((time.monotonic() - started) * 1000.0)

        self._publish(frame.header, predictions, depth)
        self.counters.add("published")

    def _checked_outputs(self, predictions) -> np.ndarray:
        """Raise InvalidOutputError for outputs that must not be published; return depth."""
        # NaN or Inf segmentation logits are rejected earlier, by the runtime's postprocess.
        if not np.isfinite(predictions.normals).all():
            raise InvalidOutputError("the network returned NaN or Inf surface normals")
        if predictions.class_ids.size and int(predictions.class_ids.max()) >= self._num_classes:
            raise InvalidOutputError(
                f"the network returned class id {int(predictions.class_ids.max())}, but the "
                f"model has {self._num_classes} classes"
            )

        # REP 118: NaN marks invalid depth. Inf, negative and beyond-range values are invalid.
        depth = np.asarray(predictions.depth, dtype=np.float32)
        invalid = ~np.isfinite(depth) | (depth < 0.0) | (depth > self.settings.max_depth_m)
        if invalid.any():
            depth = np.where(invalid, np.float32(np.nan), depth)
        return depth

    def _publish(self, header, predictions, depth: np.ndarray):
        publishers = self._publishers_by_topic
        publishers[DEPTH_TOPIC].publish(depth_to_image(depth, header))
        publishers[SEGMENTATION_TOPIC].publish(class_ids_to_image(predictions.class_ids, header))
        publishers[NORMALS_TOPIC].publish(normals_to_image(predictions.normals, header))

        if self._wants_color(SEGMENTATION_COLOR_TOPIC):
            colors = predictions.segmentation_color(self.engine.palette)
            publishers[SEGMENTATION_COLOR_TOPIC].publish(rgb_to_image(colors, header))
        if self._wants_color(NORMALS_COLOR_TOPIC):
            colors = predictions.normals_color()
            publishers[NORMALS_COLOR_TOPIC].publish(rgb_to_image(colors, header))

        self._publish_camera_info(header, width=depth.shape[1], height=depth.shape[0])

    def _wants_color(self, topic: str) -> bool:
        mode = self.settings.publish_color
        if mode == "auto":
            return self._publishers_by_topic[topic].get_subscription_count() > 0
        return mode == "always"

    def _publish_camera_info(self, header, width: int, height: int):
        with self._camera_info_lock:
            info = self._camera_info
        if info is None:
            self._warn_once(
                "no_camera_info",
                f"no camera_info received on '{self._info_sub.topic_name}' yet, so "
                f"{DEPTH_INFO_TOPIC} is not published until one arrives",
            )
            return

        try:
            scaled = scale_camera_info(info, width, height, header)
        except InputError as error:
            self._count_and_log("camera_info_rejected", f"camera_info not published: {error}")
            return
        if info.width * height != info.height * width:
            self._warn_once(
                "camera_info_aspect",
                f"camera_info is {info.width}x{info.height} but images are {width}x{height}, a "
                "different aspect ratio: the scaled intrinsics are only right if the images "
                "were resized without cropping. Check that camera_info belongs to the image "
                "topic.",
            )
        self._publishers_by_topic[DEPTH_INFO_TOPIC].publish(scaled)

    def _diagnostics_callback(self):
        stamp = self.get_clock().now().to_msg()
        self._diagnostics_publisher.publish(self._diagnostics.build(stamp))

    def destroy_node(self):
        """Stop the inference worker, then destroy the node."""
        # The node may be destroyed after a failed start, before the worker exists.
        slot = getattr(self, "_slot", None)
        worker = getattr(self, "_worker", None)
        if slot is not None:
            slot.close()
        if worker is not None and worker.is_alive():
            worker.join(timeout=10.0)
        helper = getattr(self, "_helper", None)
        if helper is not None:
            helper.shutdown(wait=True)
        return super().destroy_node()


def main(args=None) -> int:
    """Run the node until Ctrl-C or an external shutdown; return the process exit code."""
    rclpy.init(args=args)
    logger = rclpy.logging.get_logger(NODE_NAME)

    try:
        node = PerceptionNode()
    except (ParameterError, ModelLoadError) as error:
        logger.fatal(f"cannot start: {error}")
        rclpy.try_shutdown()
        return 1
    except ProtoMTLError as error:
        logger.fatal(f"cannot start: {type(error).__name__}: {error}")
        rclpy.try_shutdown()
        return 1

    try:
        rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())

