"""``connector serve``: the intake (signed webhooks, hooks), polls and schedules, on the durable
runtime. Built piece by piece; :mod:`connector.serve.signatures` verifies GoHighLevel's
webhook signatures."""
