"""Salesforce: Outbound Message shapes (`schemas`) and parsing (`events`)."""
