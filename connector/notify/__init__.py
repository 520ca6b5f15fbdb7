"""Outbound messages: email (SMTP, or .eml files in an outbox folder), Slack incoming webhooks,
and the SSRF policy every tenant-chosen URL goes through. Transports only: what to send and when
is decided by jobs.notify, jobs.digest and jobs.hooks."""
