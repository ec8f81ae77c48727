"""The captures' set-up (config/queues.conf and ami-actions.sent.raw) as code, so tests, the
demo and benchmarks build the same queues and members Asterisk had."""

from __future__ import annotations

from .pbx import SimPbx, SimQueueConfig

CAPTURE_QUEUES = [
    SimQueueConfig("sanitation", "rrmemory", 4, 1, 0, 15),
    SimQueueConfig("potholes", "ringall", 4, 1, 0, 15),
    SimQueueConfig("general-311", "linear", 4, 1, 0, 15),
]
CAPTURE_MEMBERS = [
    ("sanitation", "Local/2001@agents/n", "Ana Operator"),
    ("sanitation", "Local/2002@agents/n", "Ben Operator"),
    ("potholes", "Local/2003@agents/n", "Carla Operator"),
    ("potholes", "Local/2004@agents/n", "Dan Operator"),
    ("general-311", "Local/2003@agents/n", "Carla Operator"),
    ("general-311", "Local/2005@agents/n", "Eve Operator"),
]


def capture_queues(pbx: SimPbx) -> None:
    for cfg in CAPTURE_QUEUES:
        pbx.add_queue(SimQueueConfig(**cfg.__dict__))


def capture_members(pbx: SimPbx) -> None:
    for queue, iface, name in CAPTURE_MEMBERS:
        pbx.queue_add(queue, iface, name, 0, iface.rsplit("/", 1)[0])
