"""A CRM's own contact-role labels and Deal Radar's roles, for every adapter. Pure.

CRMs name the part a contact plays on a deal in their own words: HubSpot association labels,
Salesforce OpportunityContactRole picklist values. At install an adapter reads the account's
labels and `match_labels` maps each to the configured role it spells; the tenant's
`role_labels` setting is laid over that mapping; `roles_for_labels` then reads a contact's
labels through it on every pull.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from engine.model import role_key


def match_labels(labels: Iterable[str], roles: Sequence[str]) -> dict[str, str]:
    """{label: role}: the configured role a label spells (case, accents and spaces aside,
    "Decision maker" -> "Decision Maker"), else the label itself, as `roles_for_labels` reads
    a label nobody mapped; what an admin edits (`role_labels`)."""
    by_key = {role_key(role): role for role in roles}
    return {label: by_key.get(role_key(label), label) for label in labels if label}


def roles_for_labels(
    labels: Iterable[str | None], label_roles: Mapping[str, str | None]
) -> tuple[str, ...]:
    """A contact's roles on a deal from its labels there.

    Each label gives `label_roles[label]`, the tenant's canonical role for that label text:
    looked up exactly, then as `role_key` compares roles (case, accents, spaces), then against
    the canonical roles themselves, so that a label spelled like a role gets the role's
    spelling. A label the tenant did not map is kept as it is; one mapped to "" or None is
    dropped; an empty label says nothing. Sorted, one per role as the engine compares them."""
    by_key = {role_key(label): role for label, role in label_roles.items()}
    canonical = {role_key(role): role for role in label_roles.values() if role}
    roles: dict[str, str] = {}
    for raw in labels:
        label = (raw or "").strip()
        if not label:
            continue
        key = role_key(label)
        role = label_roles.get(label, by_key.get(key, canonical.get(key, label)))
        if role:
            roles.setdefault(role_key(role), role)
    return tuple(sorted(roles.values(), key=lambda r: (role_key(r), r)))
