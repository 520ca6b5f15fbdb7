"""Salesforce: the adapter (`adapter`), its client (`client`: simple-salesforce over HTTPS),
OAuth with PKCE (`oauth`), Deal Radar's custom fields (`fields`), provisioning (`provision`),
the mapping to the engine's model (`mapping`), write-back (`writeback`), tasks and notes
(`actions`), and Outbound Message and Flow shapes (`schemas`) and parsing (`events`)."""
