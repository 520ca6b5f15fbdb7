"""HubSpot emulator: in-memory portal state (``HubSpotState``); the HTTP app follows.

World-building API (stable, used by ``sandbox/seed.py``)::

    from sandbox.hubspot import HubSpotState

    state = HubSpotState(portal_id=62515, clock=lambda: now)
    owner = state.add_owner("sarah@example.com", "Sarah", "Mitchell")
    state.add_pipeline("sales", "Sales", [("s1", "Discovery", 0.2, False),
                                          ("won", "Won", 1.0, True), ("lost", "Lost", 0.0, True)])
    champion = state.define_association_label("deals", "contacts", "Champion")
    deal = state.create_object("deals", {"dealname": "Acme", "pipeline": "sales",
                                         "dealstage": "s1", "hubspot_owner_id": owner},
                               created_at=t0, history={"dealstage": [("s1", t0)]})
    contact = state.create_object("contacts", {"firstname": "Ann", "jobtitle": "CFO"})
    state.associate("deals", deal, "contacts", contact, labels=["Champion"])
"""

from sandbox.hubspot_state import Change, HubSpotError, HubSpotState, Source

__all__ = ["Change", "HubSpotError", "HubSpotState", "Source"]
