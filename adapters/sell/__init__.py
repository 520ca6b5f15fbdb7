"""Zendesk Sell: the Firehose poller, Core API pulls, custom-field write-back, tasks and notes."""
