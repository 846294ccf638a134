"""The HA agent: monitors, score, state machine and the ``hectl ha run`` loop."""
