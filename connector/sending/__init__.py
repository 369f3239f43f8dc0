"""Sending: how one request reaches an API, whoever asks for it.

- :mod:`~connector.sending.http`: building a request from an operation and its parameters, the
  transports, redaction of secrets in what is shown;
- :mod:`~connector.sending.auth`: the credentials a request carries;
- :mod:`~connector.sending.caller`: one call made once: checkpointed attempts, retries, the rate
  budget, the journal of writes;
- :mod:`~connector.sending.retry`: the retry policy and what a response says about waiting;
- :mod:`~connector.sending.throttle`: waiting for the rate budget shared by every process;
- :mod:`~connector.sending.paging`: the paging styles, as request/response generators;
- :mod:`~connector.sending.checkpoints`: the protocol of the units a call is checkpointed in.
"""
