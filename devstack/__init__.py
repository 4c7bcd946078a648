"""The local stack behind `make run`: the embedded MongoDB, moto, the OCM stand-in, the event
pump, the schedule and `chalice local`, all on 127.0.0.1."""
