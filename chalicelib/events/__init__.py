"""Publishing domain events to the EventBridge bus."""

from chalicelib.events.publisher import EventBridgePublisher, OutgoingEvent, Publisher, PublishError, RecordingPublisher

__all__ = ["EventBridgePublisher", "OutgoingEvent", "PublishError", "Publisher", "RecordingPublisher"]
