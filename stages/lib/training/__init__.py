"""Training machinery: batches, schedules, devices and precision, distributed runs, resume state."""
