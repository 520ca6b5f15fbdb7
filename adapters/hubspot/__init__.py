"""HubSpot: webhook signatures (`signature`), raw shapes (`schemas`), deliveries (`events`)."""
