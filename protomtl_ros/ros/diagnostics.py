"""Frame counters of the perception node and their diagnostic_msgs/DiagnosticArray report."""

from dataclasses import dataclass
import threading
import time

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue


@dataclass
class CounterSnapshot:
    """Counter values at one instant (monotonic time in seconds)."""

    time_s: float
    received: int = 0
    published: int = 0
    dropped: int = 0
    rejected: int = 0
    failed: int = 0
    camera_info_rejected: int = 0


class FrameCounters:
    """Thread-safe counts of what happened to each input frame.

    Every received frame ends up in exactly one of: published, dropped (replaced by a newer
    frame before inference started), rejected (unusable input message), failed (inference
    error or non-finite output), or still pending. camera_info_rejected counts camera_info
    messages that could not be scaled to a published frame; that frame is still published.
    """

    def __init__(self):
        self._lock = threading.Lock()
        self._counts = CounterSnapshot(time_s=time.monotonic())
        self._inference_ms_total = 0.0
        self._inference_ms_last = float("nan")
        self._forward_ms_total = 0.0
        self._forward_ms_last = float("nan")
        self._forward_count = 0
        self._last_error = ""

    def add(self, field: str, error: str = "") -> int:
        """Increment the counter ``field`` and return its new value."""
        with self._lock:
            value = getattr(self._counts, field) + 1
            setattr(self._counts, field, value)
            if error:
                self._last_error = error
        return value

    def add_inference_time(self, milliseconds: float) -> None:
        """Record one frame's time from the image to checked outputs."""
        with self._lock:
            self._inference_ms_last = milliseconds
            self._inference_ms_total += milliseconds

    def add_forward_time(self, milliseconds: float) -> None:
        """Record one frame's network forward time, a part of its inference time."""
        with self._lock:
            self._forward_ms_last = milliseconds
            self._forward_ms_total += milliseconds
            self._forward_count += 1

    def snapshot(self) -> CounterSnapshot:
        with self._lock:
            counts = self._counts
            return CounterSnapshot(
                time_s=time.monotonic(),
                received=counts.received,
                published=counts.published,
                dropped=counts.dropped,
                rejected=counts.rejected,
                failed=counts.failed,
                camera_info_rejected=counts.camera_info_rejected,
            )

    @property
    def last_inference_ms(self) -> float:
        return self._inference_ms_last

    @property
    def mean_inference_ms(self) -> float:
        with self._lock:
            published = self._counts.published + self._counts.failed
            return self._inference_ms_total / published if published else float("nan")

    @property
    def last_forward_ms(self) -> float:
        return self._forward_ms_last

    @property
    def mean_forward_ms(self) -> float:
        with self._lock:
            count = self._forward_count
            return self._forward_ms_total / count if count else float("nan")

    @property
    def last_error(self) -> str:
        return self._last_error


class DiagnosticsReporter:
    """Build one DiagnosticStatus per period from the counters and the period's rates."""

    def __init__(self, counters: FrameCounters, name: str, hardware_id: str, backend: str,
                 device: str):
        self._counters = counters
        self._name = name
        self._hardware_id = hardware_id
        self._backend = backend
        self._device = device
        self._previous = counters.snapshot()

    def build(self, stamp) -> DiagnosticArray:
        """Return the report for the period since the previous call, stamped ``stamp``."""
        current = self._counters.snapshot()
        previous, self._previous = self._previous, current
        elapsed_s = max(current.time_s - previous.time_s, 1e-9)
        input_rate_hz = (current.received - previous.received) / elapsed_s
        output_rate_hz = (current.published - previous.published) / elapsed_s

        status = DiagnosticStatus()
        status.name = self._name
        status.hardware_id = self._hardware_id
        status.level, status.message = self._level_and_message(previous, current)
        values = {
            "input_rate_hz": f"{input_rate_hz:.2f}",
            "output_rate_hz": f"{output_rate_hz:.2f}",
            "inference_time_ms": f"{self._counters.last_inference_ms:.1f}",
            "inference_time_mean_ms": f"{self._counters.mean_inference_ms:.1f}",
            "forward_time_ms": f"{self._counters.last_forward_ms:.1f}",
            "forward_time_mean_ms": f"{self._counters.mean_forward_ms:.1f}",
            "frames_received": str(current.received),
            "frames_published": str(current.published),
            "frames_dropped": str(current.dropped),
            "frames_rejected": str(current.rejected),
            "frames_failed": str(current.failed),
            "camera_info_rejected": str(current.camera_info_rejected),
            "backend": self._backend,
            "device": self._device,
            "last_error": self._counters.last_error,
        }
        status.values = [KeyValue(key=key, value=value) for key, value in values.items()]

        report = DiagnosticArray()
        report.header.stamp = stamp
        report.status = [status]
        return report

    @staticmethod
    def _level_and_message(previous: CounterSnapshot, current: CounterSnapshot):
        new_rejected = current.rejected - previous.rejected
        new_failed = current.failed - previous.failed
        if new_rejected or new_failed:
            return (
                DiagnosticStatus.WARN,
                f"{new_rejected} frame(s) rejected and {new_failed} failed in the last period",
            )
        new_info_rejected = current.camera_info_rejected - previous.camera_info_rejected
        if new_info_rejected:
            return (
                DiagnosticStatus.WARN,
                f"{new_info_rejected} frame(s) published without depth camera_info in the last "
                "period: the camera_info is unusable",
            )
        if current.received == previous.received:
            return DiagnosticStatus.OK, "waiting for images"
        return DiagnosticStatus.OK, "running"
