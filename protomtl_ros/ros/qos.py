"""QoS profiles of the node's topics and logging of incompatible-QoS events."""

from rclpy.event_handler import PublisherEventCallbacks, SubscriptionEventCallbacks
from rclpy.qos import (
    DurabilityPolicy,
    HistoryPolicy,
    QoSPolicyKind,
    QoSProfile,
    ReliabilityPolicy,
    qos_profile_sensor_data,
)

INPUT_RELIABILITY_CHOICES = ("best_effort", "reliable")


def input_qos(reliability: str, depth: int) -> QoSProfile:
    """Return the QoS of the image and camera_info subscriptions.

    "best_effort" is the sensor-data profile, which matches both reliable and best-effort
    camera drivers. "reliable" matches reliable publishers only.
    """
    if reliability not in INPUT_RELIABILITY_CHOICES:
        raise ValueError(
            f"input reliability '{reliability}' is invalid; use one of "
            f"{', '.join(INPUT_RELIABILITY_CHOICES)}"
        )
    if depth < 1:
        raise ValueError(f"input queue depth {depth} is invalid; use 1 or more")

    if reliability == "best_effort":
        profile = QoSProfile(
            history=qos_profile_sensor_data.history,
            depth=depth,
            reliability=qos_profile_sensor_data.reliability,
            durability=qos_profile_sensor_data.durability,
        )
    else:
        profile = QoSProfile(
            history=HistoryPolicy.KEEP_LAST,
            depth=depth,
            reliability=ReliabilityPolicy.RELIABLE,
            durability=DurabilityPolicy.VOLATILE,
        )
    return profile


def output_qos(depth: int) -> QoSProfile:
    """Return the QoS of the outputs: reliable and volatile, which default subscribers match."""
    return QoSProfile(
        history=HistoryPolicy.KEEP_LAST,
        depth=depth,
        reliability=ReliabilityPolicy.RELIABLE,
        durability=DurabilityPolicy.VOLATILE,
    )


def _policy_name(policy_kind) -> str:
    try:
        return QoSPolicyKind(policy_kind).name
    except ValueError:
        return str(policy_kind)


class IncompatibleQosReporter:
    """Log each topic's first incompatible-QoS event, with the change that fixes it."""

    def __init__(self, logger):
        self._logger = logger
        self._reported_topics = set()

    def subscription_callbacks(self, topic: str) -> SubscriptionEventCallbacks:
        def on_incompatible(info):
            self._report_once(
                topic,
                f"a publisher on '{topic}' offers QoS incompatible with this node's "
                f"subscription (policy {_policy_name(info.last_policy_kind)}, "
                f"{info.total_count} publisher(s) so far), so its messages are not received. "
                "If the camera publishes best-effort, set the parameter "
                "input_reliability:=best_effort.",
            )

        return SubscriptionEventCallbacks(incompatible_qos=on_incompatible)

    def publisher_callbacks(self, topic: str) -> PublisherEventCallbacks:
        def on_incompatible(info):
            self._report_once(
                topic,
                f"a subscriber of '{topic}' requests QoS this node does not offer (policy "
                f"{_policy_name(info.last_policy_kind)}, {info.total_count} subscriber(s) so "
                "far), so it receives nothing. Outputs are reliable and volatile: subscribe "
                "with volatile durability, or override the publisher with the parameter "
                f"qos_overrides.{topic}.publisher.<policy>.",
            )

        return PublisherEventCallbacks(incompatible_qos=on_incompatible)

    def _report_once(self, topic: str, message: str) -> None:
        if topic in self._reported_topics:
            return
        self._reported_topics.add(topic)
        self._logger.warning(message)
