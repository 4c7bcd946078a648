"""Deploy step: attaches AppSync, the bus, queues, alarms to what `chalice deploy` made."""
