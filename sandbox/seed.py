"""Seeded generator of a realistic sales org (`World`) for the CRM emulators to load.

`generate(deals, seed, now)` draws reps, two or three pipelines, companies, their people (English
and French names and job titles at every seniority, some on several deals), deals at every stage
with their stage history and buying roles, and each deal's calls, emails (To vs Cc), meetings
(past and scheduled), tasks and notes. Each open deal is drawn for a *scenario*: the exact set of
Deal Radar alerts it raises with the default settings as of `now`, and its health grade. Both are
recorded in `world.scenarios` and `world.grades`, so a test can compare them with what the
product says after reading the world back through a CRM (`sandbox.hubspot_seed` loads it into
the HubSpot emulator).

How a deal is drawn. About a third of open deals are healthy (no alert). The others get an
engagement *pattern* that decides the activity-based alerts, plus independent flags for the
field-based ones:

- engaged: recent interactions with several people, every role holder heard from lately;
- role_silent: as engaged, but the holders of one buying role have been quiet for 13+ days;
- single_threaded: every interaction of the last 12+ days involves the same one contact (other
  role holders are then silent too: key_role_silent);
- gone_quiet: no interaction for 10.5+ days (no_activity; key_role_silent when roles are set;
  single_threaded when the last interaction was with one contact alone);
- never_engaged: no interaction at all since creation (no_activity, key_role_silent if roles);
- flags: no meeting scheduled, amount missing, created 50+ days ago, in its stage 12+ days, close
  date passed, or closing within 10 days with (powermap_gap) or without any director-level
  contact ever engaged directly.

Every fact a scenario rests on sits half a day past its threshold when the alert fires and a day
and a half short of it when it does not, so the scenarios hold in any tenant time zone (a day
count there differs from UTC's by at most one). Health grades are steered with done tasks
(which count for health but are not interactions) and recorded as the score actually works out.

Linear in `deals`, deterministic for a seed and `now` (no clock, no hash ordering): 10,000 deals
take a few seconds. `python -m sandbox.seed --help` writes a world as JSON.
"""

from __future__ import annotations

import argparse
import math
import random
import sys
import unicodedata
from bisect import bisect
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from itertools import accumulate
from typing import Any

from sandbox.world import (
    Activity,
    Company,
    Deal,
    DealContact,
    Person,
    Pipeline,
    Rep,
    Stage,
    World,
)

__all__ = ["ALERT_CODES", "ROLE_LABELS", "TITLES", "generate", "main"]

# --- Deal Radar's default settings -------------------------------------------------------------
# Copied from engine/settings.py DEFAULTS and engine/health.py (the sandbox imports nothing of
# the product): if those defaults change, change these and the scenarios follow.

NO_ACTIVITY_DAYS = 10
SINGLE_THREADED_DAYS = 10
KEY_ROLE_SILENT_DAYS = 12
POWERMAP_DAYS_TO_CLOSE = 10
STUCK_IN_STAGE_DAYS = 12
DEAL_TOO_OLD_DAYS = 50
HEALTH_PERIOD_DAYS = 7.0
"""expected_frequency "weekly": activity fades by half every 7 days."""
HEALTH_GOOD_FROM = 60
HEALTH_FAIR_FROM = 40

ALERT_CODES: tuple[str, ...] = (
    "no_activity",
    "no_meeting_scheduled",
    "single_threaded",
    "key_role_silent",
    "powermap_gap",
    "stuck_in_stage",
    "close_date_passed",
    "amount_missing",
    "deal_too_old",
)
"""The nine alerts, in the engine's display order (scenarios list them in this order)."""

ROLE_LABELS: tuple[str, ...] = ("Champion", "Decision maker", "Economic buyer")
"""Buying roles as a HubSpot admin labels them; the engine's defaults match them ignoring case."""

FIRE_MARGIN = 0.5
"""Days past a threshold when an alert is meant to fire."""
CLEAR_MARGIN = 1.5
"""Days short of a threshold when it is meant not to."""

_DAY = 86_400
_HOUR = 3_600

# --- proportions --------------------------------------------------------------------------------

P_OPEN, P_WON = 0.70, 0.18
"""The rest (0.12) are lost."""
P_HEALTHY = 0.34
"""Share of open deals drawn with no alert at all."""
P_NEW_COMPANY = 0.6
"""A deal's company is new with this probability, else one already in the world."""
P_REUSE_PERSON = 0.6
"""A deal's contact of a given seniority is someone already known at the company, if any."""

ENGAGED, ROLE_SILENT, SINGLE, GONE_QUIET, NEVER = (
    "engaged",
    "role_silent",
    "single_threaded",
    "gone_quiet",
    "never_engaged",
)
_PATTERNS = ((ENGAGED, 24), (ROLE_SILENT, 14), (SINGLE, 16), (GONE_QUIET, 38), (NEVER, 8))
"""Engagement patterns of the open deals that are not healthy."""
_P_MEETING = {ENGAGED: 0.45, ROLE_SILENT: 0.4, SINGLE: 0.3, GONE_QUIET: 0.08, NEVER: 0.05}
"""Chance that a troubled deal has a meeting scheduled."""
P_AMOUNT_MISSING = 0.12
P_TOO_OLD = 0.2
P_STUCK, P_STUCK_IF_OLD = 0.35, 0.6
_CLOSE_HEALTHY = (("beyond", 82), ("window", 12), ("none", 6))
_CLOSE_TROUBLED = (("beyond", 58), ("passed", 20), ("window", 16), ("none", 6))
_CLOSE_OLD = (("beyond", 35), ("passed", 50), ("window", 10), ("none", 5))
P_GAP = 0.55
"""Chance that a troubled deal closing within the window has no senior contact engaged."""
P_QUIET_SINGLE = 0.3
"""Chance that a gone-quiet deal's last interaction was with one contact alone."""
_GRADE_TARGET = {
    GONE_QUIET: (("fair", 45), ("poor", 55)),
    NEVER: (("fair", 10), ("poor", 90)),
}
"""Health grades the silent deals are steered to. A deal heard from within the week scores 60
or more with Deal Radar's formula (recency alone gives 50), so the others are all "good"."""
_BANDS = {"good": (HEALTH_GOOD_FROM + 2, 100), "fair": (42, 57), "poor": (0, HEALTH_FAIR_FROM - 3)}
"""Score ranges a target grade is steered into (away from the cut points)."""
_STEER_AGES = {
    "good": (5.0, 4.0, 3.0, 2.0, 1.5, 1.0, 0.5, 0.3, 0.2, 0.1),
    "fair": (20.0, 17.0, 15.0, 13.0, 11.0, 10.0, 9.0, 8.5, 8.0, 7.5, 7.0, 6.0),
    "poor": (),
}
"""Ages (days) of the done tasks tried, oldest first, to lift a score into its band."""
_INTENSITY = {"good": 2.2, "fair": 1.0, "poor": 0.4}
"""Background interactions per week of a deal's life, by target grade."""
_CONTACT_COUNTS = ((2, 24), (3, 30), (4, 22), (5, 14), (6, 10))
_LEVEL_WEIGHTS = (("c_level", 8), ("vp", 10), ("director", 22), ("staff", 52), ("blank", 8))
_JUNIOR_WEIGHTS = (("staff", 88), ("blank", 12))
_SENIOR_WEIGHTS = (("c_level", 25), ("vp", 30), ("director", 45))
SENIOR = frozenset({"c_level", "vp", "director"})
_ROLE_AFFINITY = {
    "Champion": {"c_level": 1, "vp": 2, "director": 4, "staff": 4, "blank": 1},
    "Decision maker": {"c_level": 5, "vp": 5, "director": 4, "staff": 1, "blank": 1},
    "Economic buyer": {"c_level": 8, "vp": 5, "director": 2, "staff": 1, "blank": 1},
}

# --- reference data -------------------------------------------------------------------------------


def _stages(prefix: str, rows: Sequence[tuple[str, str, float]]) -> tuple[Stage, ...]:
    out = [Stage(f"{prefix}_{key}", label, i, p) for i, (key, label, p) in enumerate(rows)]
    n = len(out)
    return (
        *out,
        Stage(f"{prefix}_won", "Closed won", n, 1.0, closed=True, won=True),
        Stage(f"{prefix}_lost", "Closed lost", n + 1, 0.0, closed=True),
    )


PIPELINES: tuple[Pipeline, ...] = (
    Pipeline(
        "sales",
        "Sales pipeline",
        _stages(
            "sales",
            (
                ("discovery", "Discovery", 0.1),
                ("qualified", "Qualified", 0.2),
                ("demo", "Demo done", 0.4),
                ("proposal", "Proposal sent", 0.6),
                ("negotiation", "Negotiation", 0.8),
            ),
        ),
    ),
    Pipeline(
        "renewals",
        "Renewals",
        _stages(
            "renewal",
            (
                ("upcoming", "Renewal upcoming", 0.7),
                ("review", "Account review", 0.75),
                ("quote", "Quote sent", 0.85),
                ("signature", "Awaiting signature", 0.9),
            ),
        ),
    ),
    Pipeline(
        "enterprise",
        "Enterprise",
        _stages(
            "ent",
            (
                ("discovery", "Discovery", 0.05),
                ("solution", "Solution design", 0.2),
                ("poc", "Proof of concept", 0.4),
                ("business_case", "Business case", 0.6),
                ("procurement", "Procurement & legal", 0.8),
            ),
        ),
    ),
)
ENTERPRISE_FROM_DEALS = 200
"""Smaller orgs run two pipelines; from this many deals on, an enterprise pipeline too."""
_PIPELINE_WEIGHTS = {"sales": 65, "renewals": 20, "enterprise": 15}
_OPEN_STAGE_WEIGHTS = {"sales": (30, 25, 20, 15, 10), "renewals": (35, 30, 20, 15)}
_OPEN_STAGE_WEIGHTS["enterprise"] = (30, 25, 20, 15, 10)
_AMOUNT_MEDIAN = {"sales": 18_000, "renewals": 24_000, "enterprise": 140_000}

# Job titles by seniority and language, as (masculine, feminine) when French agrees with the
# person. Levels follow Deal Radar's documented title rules (README, "Title seniority"), which
# is what its default settings read (the initialisms DSI, DAF and DRH are directors there).
_EN = {
    "c_level": (
        "Chief Executive Officer",
        "CEO",
        "Chief Financial Officer",
        "CFO",
        "Chief Operating Officer",
        "COO",
        "Chief Technology Officer",
        "CTO",
        "Chief Information Officer",
        "Chief Revenue Officer",
        "Chief Marketing Officer",
        "Founder & CEO",
        "Co-Founder",
        "President",
    ),
    "vp": (
        "VP of Sales",
        "Vice President of Finance",
        "VP Engineering",
        "SVP Operations",
        "VP of Procurement",
        "Vice President, IT",
        "VP Marketing",
        "EVP Customer Success",
        "Senior Vice President, Finance",
    ),
    "director": (
        "Head of IT",
        "IT Director",
        "Director of Operations",
        "Head of Procurement",
        "Sales Director",
        "Finance Director",
        "Director of Engineering",
        "Head of Customer Success",
        "Marketing Director",
        "Head of Supply Chain",
        "Head of Legal",
        "Managing Director",
    ),
    "staff": (
        "Office Manager",
        "Procurement Manager",
        "Purchasing Manager",
        "IT Manager",
        "Project Manager",
        "Operations Manager",
        "Finance Manager",
        "Business Analyst",
        "Data Analyst",
        "Software Engineer",
        "Solutions Architect",
        "Buyer",
        "Senior Buyer",
        "Legal Counsel",
        "Executive Assistant to the CEO",
        "Account Manager",
        "Supply Chain Manager",
        "Category Manager",
    ),
}
_FR: dict[str, tuple[tuple[str, str], ...]] = {
    "c_level": (
        ("PDG", "PDG"),
        ("Président-directeur général", "Présidente-directrice générale"),
        ("Directeur général", "Directrice générale"),
        ("Directeur général délégué", "Directrice générale déléguée"),
        ("Président", "Présidente"),
        ("Fondateur", "Fondatrice"),
        ("Cofondateur", "Cofondatrice"),
    ),
    "vp": (
        ("Vice-président des ventes", "Vice-présidente des ventes"),
        ("Vice-président exécutif", "Vice-présidente exécutive"),
        ("Vice-président Achats", "Vice-présidente Achats"),
        ("VP Ingénierie", "VP Ingénierie"),
    ),
    "director": (
        ("Directeur commercial", "Directrice commerciale"),
        ("Directeur des achats", "Directrice des achats"),
        ("Directeur des systèmes d'information", "Directrice des systèmes d'information"),
        ("Directeur administratif et financier", "Directrice administrative et financière"),
        ("Directeur des opérations", "Directrice des opérations"),
        ("Directeur technique", "Directrice technique"),
        ("Directeur des ressources humaines", "Directrice des ressources humaines"),
        ("Directeur juridique", "Directrice juridique"),
        ("DSI", "DSI"),
        ("DAF", "DAF"),
        ("DRH", "DRH"),
    ),
    "staff": (
        ("Responsable des achats", "Responsable des achats"),
        ("Acheteur", "Acheteuse"),
        ("Chef de projet", "Cheffe de projet"),
        ("Contrôleur de gestion", "Contrôleuse de gestion"),
        ("Assistant de direction", "Assistante de direction"),
        ("Responsable informatique", "Responsable informatique"),
        ("Ingénieur commercial", "Ingénieure commerciale"),
        ("Comptable", "Comptable"),
        ("Juriste", "Juriste"),
        ("Office Manager", "Office Manager"),
        ("Chargé d'affaires", "Chargée d'affaires"),
        ("Administrateur systèmes", "Administratrice systèmes"),
        ("Responsable logistique", "Responsable logistique"),
        ("Chef de produit", "Cheffe de produit"),
    ),
}
P_ENGLISH_TITLE_IN_FRANCE = 0.2
"""French companies often give English titles ("Head of IT")."""

TITLES: dict[str, tuple[str, ...]] = {
    level: tuple(dict.fromkeys((*_EN[level], *(t for pair in _FR[level] for t in pair))).keys())
    for level in ("c_level", "vp", "director", "staff")
}
"""Every job title the generator writes, by the seniority Deal Radar's rules give it."""

_FIRST = {
    ("en", "f"): (
        "Olivia", "Emma", "Ava", "Sophia", "Isabella", "Mia", "Charlotte", "Amelia", "Harper",
        "Evelyn", "Grace", "Chloe", "Zoe", "Hannah", "Rachel", "Megan", "Aisha", "Mei", "Laura",
        "Emily", "Jessica", "Sarah", "Priya", "Naomi",
    ),
    ("en", "m"): (
        "Liam", "Noah", "Oliver", "James", "William", "Benjamin", "Lucas", "Henry", "Alexander",
        "Daniel", "Michael", "Ethan", "David", "Ryan", "Kevin", "Raj", "Thomas", "Matthew",
        "Andrew", "Christopher", "Samuel", "Jack", "Omar", "Wei",
    ),
    ("fr", "f"): (
        "Camille", "Léa", "Manon", "Chloé", "Inès", "Louise", "Juliette", "Margaux", "Zoé",
        "Anaïs", "Émilie", "Hélène", "Nathalie", "Sophie", "Aurélie", "Céline", "Yasmine",
        "Isabelle", "Claire", "Mathilde", "Élodie", "Sandrine", "Agnès", "Maëlle",
    ),
    ("fr", "m"): (
        "Lucas", "Hugo", "Louis", "Gabriel", "Arthur", "Jules", "Théo", "Mathis", "Nicolas",
        "Julien", "Sébastien", "Jérôme", "François", "Benoît", "Stéphane", "Olivier", "Karim",
        "Antoine", "Thibault", "Guillaume", "Pierre", "Mehdi", "Loïc", "Rémi",
    ),
}  # fmt: skip
_LAST = {
    "en": (
        "Smith", "Johnson", "Williams", "Brown", "Jones", "Miller", "Davis", "Wilson",
        "Anderson", "Taylor", "Thomas", "Moore", "Martin", "Jackson", "Thompson", "White",
        "Harris", "Clark", "Lewis", "Walker", "Hall", "Young", "King", "Wright", "Scott",
        "Green", "Baker", "Adams", "Nelson", "Campbell", "O'Brien", "McCarthy", "Nguyen", "Shah",
        "Patel", "Kowalski", "Murphy", "Bennett", "Hughes", "Foster",
    ),
    "fr": (
        "Martin", "Bernard", "Dubois", "Thomas", "Robert", "Richard", "Petit", "Durand",
        "Leroy", "Moreau", "Simon", "Laurent", "Lefèvre", "Michel", "Garcia", "David",
        "Bertrand", "Roux", "Vincent", "Fournier", "Girard", "Bonnet", "Dupont", "Lambert",
        "Fontaine", "Rousseau", "Mercier", "Blanc", "Guérin", "Faure", "Le Gall", "Benali",
        "Château", "Da Silva", "N'Diaye", "Perrin", "Morel", "Gauthier", "Lemaire", "Chevalier",
    ),
}  # fmt: skip
_COMPANY_HEAD = {
    "en": (
        "Northwind", "Bluefin", "Harbor", "Summit", "Crescent", "Ironbridge", "Oakridge",
        "Pinnacle", "Redwood", "Silverline", "Brightpath", "Keystone", "Ashford", "Meridian",
        "Cobalt", "Evergreen", "Falcon", "Granite", "Highland", "Lakeshore", "Beacon", "Cedar",
        "Driftwood", "Elmstone", "Foxglove", "Goldcrest", "Hawthorne", "Juniper", "Kingsway",
        "Larkspur", "Maplewood", "Newbridge", "Orchard", "Prairie", "Quarry", "Riverside",
    ),
    "fr": (
        "Boréal", "Lumière", "Horizon", "Atlantique", "Rivage", "Vallée", "Mistral", "Granit",
        "Azur", "Saint-Clair", "Cévennes", "Ondine", "Garonne", "Arcadie", "Bastide", "Étoile",
        "Belvédère", "Calanque", "Dauphiné", "Estuaire", "Falaise", "Grésivaudan", "Hêtraie",
        "Iroise", "Jura", "Lavande", "Loire", "Morvan", "Noirmoutier", "Oléron",
    ),
}  # fmt: skip
_COMPANY_TAIL = {
    "en": (
        "Logistics", "Health", "Analytics", "Manufacturing", "Capital", "Foods", "Energy",
        "Retail", "Systems", "Labs", "Insurance", "Media", "Robotics", "Pharma", "Freight",
        "Outdoor", "Hospitality", "Telecom",
    ),
    "fr": (
        "Logistique", "Énergie", "Santé", "Distribution", "Industrie", "Conseil",
        "Assurances", "Transports", "Immobilier", "Agroalimentaire", "Pharma", "Bâtiment",
        "Mutuelle", "Télécom",
    ),
}  # fmt: skip
_LEGAL = {"en": ("", "", "Inc.", "Ltd", "Group", "LLC"), "fr": ("", "", "SAS", "SA", "Groupe")}
_INDUSTRY = {
    "Logistics": "Transportation", "Freight": "Transportation", "Transports": "Transportation",
    "Logistique": "Transportation", "Health": "Healthcare", "Santé": "Healthcare",
    "Pharma": "Pharmaceuticals", "Mutuelle": "Insurance", "Insurance": "Insurance",
    "Assurances": "Insurance", "Energy": "Energy", "Énergie": "Energy", "Foods": "Food",
    "Agroalimentaire": "Food", "Retail": "Retail", "Distribution": "Retail",
    "Capital": "Financial services", "Conseil": "Consulting", "Immobilier": "Real estate",
    "Bâtiment": "Construction", "Media": "Media", "Telecom": "Telecommunications",
    "Télécom": "Telecommunications", "Hospitality": "Hospitality", "Outdoor": "Retail",
}  # fmt: skip
_COUNTRIES = {"en": (("US", 60), ("GB", 28), ("CA", 12)), "fr": (("FR", 85), ("BE", 10), ("CA", 5))}
_TLD = {"US": ".com", "GB": ".co.uk", "CA": ".ca", "FR": ".fr", "BE": ".be"}
_CURRENCY = {"US": "USD", "GB": "GBP", "CA": "CAD", "FR": "EUR", "BE": "EUR"}
_PRODUCTS = {
    ("sales", "en"): ("Platform subscription", "New business", "Pilot", "Expansion", "Starter"),
    ("sales", "fr"): ("Abonnement plateforme", "Nouveau projet", "Pilote", "Extension"),
    ("renewals", "en"): ("Renewal {year}", "Annual renewal {year}", "Renewal + upsell {year}"),
    ("renewals", "fr"): ("Renouvellement {year}", "Renouvellement annuel {year}"),
    ("enterprise", "en"): ("Enterprise licence", "Multi-site rollout", "Global deployment"),
    ("enterprise", "fr"): ("Licence entreprise", "Déploiement multi-sites", "Déploiement groupe"),
}
VENDOR_DOMAIN = "vireo-software.com"
"""The sales org's own domain (its reps' email addresses)."""
_TEAMS = ("North America", "EMEA", "France", "Enterprise", "Mid-Market", "Renewals", "UK & Ireland")

# Activity texts: (subject, body) per (kind, direction, language). Shared strings, not formatted
# per activity, so a 100,000-deal world does not hold a million distinct copies.
_TEXTS: dict[tuple[str, str, str], tuple[tuple[str, str], ...]] = {
    ("email", "outbound", "en"): (
        (
            "Following up on our call",
            "Thanks for your time today. As discussed, a summary and next steps below.",
        ),
        (
            "Proposal and pricing",
            "Please find attached our proposal. Happy to walk you through it.",
        ),
        ("Quick question on your timeline", "Could you confirm when you expect a decision?"),
        ("Security questionnaire", "Attached is our completed security questionnaire."),
        ("Checking in", "Just checking in: any feedback from your team?"),
    ),
    ("email", "inbound", "en"): (
        ("Re: Proposal and pricing", "Thanks, we reviewed it internally and have a few questions."),
        (
            "Re: Following up on our call",
            "Great to talk. Looping in my colleague on the budget side.",
        ),
        ("Contract redlines", "Our legal team has sent back their comments on the MSA."),
        ("Re: Checking in", "Sorry for the delay, we are still aligning internally."),
    ),
    ("email", "outbound", "fr"): (
        (
            "Suite à notre échange",
            "Merci pour votre temps. Voici le résumé et les prochaines étapes.",
        ),
        (
            "Proposition commerciale",
            "Vous trouverez ci-joint notre proposition. Disponible pour en parler.",
        ),
        ("Votre calendrier de décision", "Pouvez-vous me confirmer la date de décision prévue ?"),
        ("Questionnaire sécurité", "Ci-joint notre questionnaire de sécurité complété."),
        (
            "Des nouvelles ?",
            "Je me permets de revenir vers vous : avez-vous un retour de l'équipe ?",
        ),
    ),
    ("email", "inbound", "fr"): (
        (
            "RE: Proposition commerciale",
            "Merci, nous l'avons étudiée en interne, quelques questions.",
        ),
        ("RE: Suite à notre échange", "Je mets en copie mon collègue côté budget."),
        (
            "Retours juridiques",
            "Notre service juridique a renvoyé ses commentaires sur le contrat.",
        ),
    ),
    ("email", "internal", "en"): (
        ("Pricing approval", "Need sign-off on a 12% discount for this one."),
        ("Deal strategy", "Notes ahead of the next customer call."),
    ),
    ("email", "internal", "fr"): (
        ("Validation de remise", "Besoin d'un accord pour une remise de 12 %."),
        ("Stratégie deal", "Notes avant le prochain appel client."),
    ),
    ("call", "outbound", "en"): (
        ("Discovery call", "Discussed current process, pain points and decision criteria."),
        ("Follow-up call", "Went through open questions on the proposal."),
        ("Pricing call", "Walked through pricing options; they will revert after budget review."),
    ),
    ("call", "inbound", "en"): (
        ("Inbound call", "Customer called with questions on implementation timelines."),
        ("Callback", "Returned our call; wants a revised quote."),
    ),
    ("call", "outbound", "fr"): (
        (
            "Appel de découverte",
            "Échange sur le processus actuel, les irritants et les critères de choix.",
        ),
        ("Appel de suivi", "Revue des questions ouvertes sur la proposition."),
    ),
    ("call", "inbound", "fr"): (
        ("Appel entrant", "Le client a appelé au sujet du calendrier de déploiement."),
        ("Rappel client", "Souhaite un devis révisé."),
    ),
    ("meeting", "outbound", "en"): (
        ("Product demo", "Live demo of the platform for the evaluation team."),
        ("Discovery meeting", "Mapped stakeholders and success criteria."),
        ("Proposal review", "Went through the proposal and the rollout plan."),
        ("Executive alignment", "Business case review with the sponsor."),
    ),
    ("meeting", "inbound", "en"): (("Customer workshop", "Workshop organised by the customer."),),
    ("meeting", "outbound", "fr"): (
        ("Démonstration produit", "Démonstration de la plateforme à l'équipe projet."),
        ("Réunion de cadrage", "Cartographie des interlocuteurs et des critères de succès."),
        ("Revue de la proposition", "Revue de la proposition et du plan de déploiement."),
    ),
    ("meeting", "inbound", "fr"): (("Atelier client", "Atelier organisé par le client."),),
    ("meeting", "internal", "en"): (("Deal review", "Forecast review with the sales manager."),),
    ("meeting", "internal", "fr"): (("Revue du deal", "Revue de prévision avec le manager."),),
    ("task", "outbound", "en"): (
        ("Send proposal", ""),
        ("Follow up on pricing", ""),
        ("Book a demo", ""),
        ("Send the contract", ""),
    ),
    ("task", "internal", "en"): (("Update the forecast", ""), ("Prepare the business case", "")),
    ("task", "outbound", "fr"): (("Envoyer la proposition", ""), ("Relancer le client", "")),
    ("task", "internal", "fr"): (
        ("Mettre à jour la prévision", ""),
        ("Préparer le business case", ""),
    ),
    ("note", "internal", "en"): (
        ("", "Budget confirmed for next quarter."),
        ("", "Competitor in the loop; they liked our reporting."),
        ("", "Legal review expected to take two weeks."),
    ),
    ("note", "internal", "fr"): (
        ("", "Budget confirmé pour le trimestre prochain."),
        ("", "Un concurrent est en lice ; notre reporting a plu."),
        ("", "Revue juridique prévue sous deux semaines."),
    ),
}


# --- small helpers -----------------------------------------------------------------------------


def _weighted(rows: Sequence[tuple[Any, float]]) -> tuple[tuple[Any, ...], tuple[float, ...]]:
    return tuple(r[0] for r in rows), tuple(accumulate(r[1] for r in rows))


class _Choice:
    """A weighted choice, prepared once: `pick(rng)`."""

    __slots__ = ("cum", "total", "values")

    def __init__(self, rows: Sequence[tuple[Any, float]]) -> None:
        self.values, self.cum = _weighted(rows)
        self.total = self.cum[-1]

    def pick(self, rng: random.Random) -> Any:
        return self.values[bisect(self.cum, rng.random() * self.total)]


_PATTERN = _Choice(_PATTERNS)
_CLOSE = {
    "healthy": _Choice(_CLOSE_HEALTHY),
    "troubled": _Choice(_CLOSE_TROUBLED),
    "old": _Choice(_CLOSE_OLD),
}
_GRADE = {k: _Choice(v) for k, v in _GRADE_TARGET.items()}
_NCONTACTS = _Choice(_CONTACT_COUNTS)
_LEVEL = _Choice(_LEVEL_WEIGHTS)
_JUNIOR = _Choice(_JUNIOR_WEIGHTS)
_SENIOR_LEVEL = _Choice(_SENIOR_WEIGHTS)
_COUNTRY = {lang: _Choice(rows) for lang, rows in _COUNTRIES.items()}
_INTERACTION_KIND = _Choice((("email", 60), ("call", 26), ("meeting", 14)))


def _ascii(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    kept = "".join(ch for ch in decomposed if not unicodedata.combining(ch)).lower()
    return "".join(ch if ch.isalnum() else "-" for ch in kept).strip("-").replace("--", "-")


@lru_cache(maxsize=4096)
def _email_local(first: str, last: str) -> str:
    return f"{_ascii(first).replace('-', '')}.{_ascii(last).replace('-', '')}"


def _poisson(rng: random.Random, mean: float) -> int:
    """A Poisson draw (Knuth for small means, normal approximation for large ones)."""
    if mean <= 0:
        return 0
    if mean > 30:
        return max(0, int(rng.gauss(mean, math.sqrt(mean)) + 0.5))
    limit, k, p = math.exp(-mean), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1


# An interaction or task while a deal is drawn: (ts, kind, direction, status, participants, cc,
# removable). Removable ones are background that health steering may drop; the others carry a
# scenario's facts.
_Row = tuple[int, str, str, str, tuple[str, ...], tuple[str, ...], bool]


class _Gen:
    """The generator's state for one world; `deal()` draws one deal and everything it needs."""

    def __init__(self, deals: int, seed: int, now: datetime) -> None:
        self.rng = random.Random(seed)
        self.now = now.astimezone(UTC)
        self.now_ts = int(self.now.timestamp())
        self.today = self.now.date()
        self.pipelines = PIPELINES if deals >= ENTERPRISE_FROM_DEALS else PIPELINES[:2]
        self.pipeline_choice = _Choice([(p, _PIPELINE_WEIGHTS[p.id]) for p in self.pipelines])
        self.open_stages = {p.id: p.open_stages for p in self.pipelines}
        self.open_stage_choice = {
            p.id: _Choice(list(zip(p.open_stages, _OPEN_STAGE_WEIGHTS[p.id], strict=True)))
            for p in self.pipelines
        }
        self.reps: list[Rep] = []
        self.companies: list[Company] = []
        self.people: list[Person] = []
        self.deals: list[Deal] = []
        self.activities: list[Activity] = []
        self.scenarios: dict[str, tuple[str, ...]] = {}
        self.grades: dict[str, str] = {}
        self.pool: dict[str, list[tuple[str, str]]] = {}  # company id -> [(person id, level)]
        self.company_emails: dict[str, set[str]] = {}
        self.company_names: set[str] = set()
        self.domains: set[str] = set()
        self._make_reps(max(3, round(deals / 40)))

    # --- reps ----------------------------------------------------------------------------------

    def _make_reps(self, n: int) -> None:
        rng = self.rng
        emails: set[str] = set()
        team_size = 7 if n >= 6 else n
        self.team_of: dict[str, list[str]] = {}
        weights = []
        manager = None
        for i in range(n):
            lang = "fr" if rng.random() < 0.35 else "en"
            first = rng.choice(_FIRST[(lang, rng.choice("fm"))])
            last = rng.choice(_LAST[lang])
            local, k = _email_local(first, last), 1
            while f"{local}@{VENDOR_DOMAIN}" in emails:
                k += 1
                local = f"{_email_local(first, last)}{k}"
            emails.add(f"{local}@{VENDOR_DOMAIN}")
            t = i // team_size
            team = (
                "Sales"
                if n < 6
                else _TEAMS[t % len(_TEAMS)]
                + (f" {t // len(_TEAMS) + 1}" if t >= len(_TEAMS) else "")
            )
            rep_id = f"r{i + 1}"
            if i % team_size == 0:
                manager = rep_id
            self.reps.append(
                Rep(
                    rep_id,
                    first,
                    last,
                    f"{local}@{VENDOR_DOMAIN}",
                    team,
                    None if manager == rep_id else manager,
                )
            )
            self.team_of.setdefault(team, []).append(rep_id)
            # Uneven books: a few top performers, a few new hires.
            weights.append((rep_id, rng.lognormvariate(0.0, 0.45)))
        self.owner_choice = _Choice(weights)
        self.rep_team = {r.id: r.team for r in self.reps}

    def _rep_for_activity(self, owner: str) -> str:
        """Mostly the owner; sometimes a teammate (a sales engineer, the manager)."""
        rng = self.rng
        if rng.random() < 0.85:
            return owner
        team = self.team_of[self.rep_team[owner]]
        return team[int(rng.random() * len(team))]

    # --- companies and people ---------------------------------------------------------------

    def _company(self, pipeline_id: str) -> Company:
        rng = self.rng
        reuse = 0.85 if pipeline_id == "renewals" else 1 - P_NEW_COMPANY
        if self.companies and rng.random() < reuse:
            return self.companies[int(rng.random() * len(self.companies))]
        lang = "fr" if rng.random() < 0.4 else "en"
        country = _COUNTRY[lang].pick(rng)
        tail = rng.choice(_COMPANY_TAIL[lang])
        base = f"{rng.choice(_COMPANY_HEAD[lang])} {tail}"
        legal = rng.choice(_LEGAL[lang])
        name = f"{base} {legal}" if legal else base
        k = 1
        while name in self.company_names:
            k += 1
            name = f"{base} {k}" + (f" {legal}" if legal else "")
        self.company_names.add(name)
        slug = _ascii(base)
        domain, k = f"{slug}{_TLD[country]}", 1
        while domain in self.domains:
            k += 1
            domain = f"{slug}{k}{_TLD[country]}"
        self.domains.add(domain)
        company = Company(
            f"co{len(self.companies) + 1}",
            name,
            domain,
            lang,
            country,
            _INDUSTRY.get(tail, "Technology"),
        )
        self.companies.append(company)
        self.pool[company.id] = []
        self.company_emails[company.id] = set()
        return company

    def _person(self, company: Company, level: str, taken: set[str]) -> str:
        """A person of this seniority at the company: someone known (if any, often) or new."""
        rng = self.rng
        pool = self.pool[company.id]
        if pool and rng.random() < P_REUSE_PERSON:
            known = [pid for pid, lv in pool if lv == level and pid not in taken]
            if known:
                return known[int(rng.random() * len(known))]
        lang = (
            company.language
            if rng.random() < 0.92
            else ("en" if company.language == "fr" else "fr")
        )
        gender = "f" if rng.random() < 0.5 else "m"
        first = rng.choice(_FIRST[(lang, gender)])
        last = rng.choice(_LAST[lang])
        if level == "blank":
            title = ""
        elif lang == "fr" and rng.random() >= P_ENGLISH_TITLE_IN_FRANCE:
            masc, fem = rng.choice(_FR[level])
            title = fem if gender == "f" else masc
        else:
            title = rng.choice(_EN[level])
        emails = self.company_emails[company.id]
        local, k = _email_local(first, last), 1
        while local in emails:
            k += 1
            local = f"{_email_local(first, last)}{k}"
        emails.add(local)
        pid = f"p{len(self.people) + 1}"
        self.people.append(
            Person(pid, first, last, f"{local}@{company.domain}", title, company.id, lang)
        )
        pool.append((pid, level))
        return pid

    # --- time ----------------------------------------------------------------------------------

    def _ts(self, lo: float, hi: float) -> int:
        """An instant between `lo` and `hi` days ago (negative: ahead), in office hours if it can.

        Office hours are 08:00-18:59 UTC on weekdays, on the drawn day or one close to it, as
        long as that stays within the bounds; otherwise the drawn instant itself.
        """
        rng = self.rng
        age = lo + (hi - lo) * rng.random()
        ts = self.now_ts - age * _DAY
        earliest, latest = self.now_ts - hi * _DAY, self.now_ts - lo * _DAY
        day0 = int(ts // _DAY) * _DAY
        minute = int(rng.random() * 660)
        for shift in (0, -1, 1, -2, 2):
            d = day0 + shift * _DAY
            if (d // _DAY + 3) % 7 >= 5:  # 1970-01-01 was a Thursday
                continue
            cand = d + 8 * _HOUR + minute * 60
            if earliest <= cand <= latest:
                return cand
        return min(max(int(ts), math.ceil(earliest)), math.floor(latest))

    def _age(self, ts: int) -> float:
        return (self.now_ts - ts) / _DAY

    def _score(self, times: Sequence[int]) -> int:
        """Deal Radar's health score with default settings (see engine/health.py)."""
        if not times:
            return 0
        now = self.now_ts
        period = HEALTH_PERIOD_DAYS
        age = max(0.0, (now - max(times)) / _DAY)
        fresh = 1.0 if age <= period else 0.5 ** ((age - period) / period)
        rate = 0.6931471805599453 / (period * 86400.0)
        weighted = sum([math.exp((t - now) * rate) for t in times])
        score = 50.0 * fresh + 50.0 * min(1.0, weighted / 1.5)
        return min(100, max(0, int(score + 0.5)))

    # --- deals -----------------------------------------------------------------------------------

    def deal(self, deal_id: str) -> None:
        rng = self.rng
        pipeline = self.pipeline_choice.pick(rng)
        company = self._company(pipeline.id)
        owner = self.owner_choice.pick(rng)
        r = rng.random()
        if r < P_OPEN:
            self._open_deal(deal_id, pipeline, company, owner)
        else:
            self._closed_deal(deal_id, pipeline, company, owner, won=r < P_OPEN + P_WON)

    def _draw_roles(self) -> list[str]:
        rng = self.rng
        if rng.random() < 0.25:
            return []
        roles = [
            label
            for label, p in zip(ROLE_LABELS, (0.85, 0.55, 0.45), strict=True)
            if rng.random() < p
        ]
        return roles or ["Champion"]

    def _holder(self, role: str, candidates: Sequence[int], levels: Sequence[str]) -> int:
        """A slot to hold a role, favouring the seniority the role usually has."""
        affinity = _ROLE_AFFINITY[role]
        weights = list(accumulate(affinity[levels[i]] for i in candidates))
        return candidates[bisect(weights, self.rng.random() * weights[-1])]

    def _open_deal(self, deal_id: str, pipeline: Pipeline, company: Company, owner: str) -> None:
        rng = self.rng
        healthy = rng.random() < P_HEALTHY
        if healthy:
            pattern, meeting = ENGAGED, True
            amount_missing = too_old = stuck = gap = False
            close = _CLOSE["healthy"].pick(rng)
            target = "good"
        else:
            pattern = _PATTERN.pick(rng)
            meeting = rng.random() < _P_MEETING[pattern]
            amount_missing = rng.random() < P_AMOUNT_MISSING
            too_old = rng.random() < P_TOO_OLD
            stuck = rng.random() < (P_STUCK_IF_OLD if too_old else P_STUCK)
            close = _CLOSE["old" if too_old else "troubled"].pick(rng)
            gap = close == "window" and (pattern == NEVER or rng.random() < P_GAP)
            calm = not (amount_missing or too_old or stuck or gap or close == "passed")
            if pattern == ENGAGED and meeting and calm:
                meeting = False  # drawn as troubled: it has at least one alert
            target = _GRADE[pattern].pick(rng) if pattern in _GRADE else "good"

        roles = self._draw_roles()
        if pattern == ROLE_SILENT and not roles:
            roles = ["Champion", "Economic buyer"]

        # --- how old the deal is: the scenario's facts must fit in its life ---
        lo = 1.0
        if pattern in (ROLE_SILENT, SINGLE, NEVER) or stuck:
            lo = 14.0
        elif pattern == GONE_QUIET:
            lo = 14.0 if roles else 11.5
        if close == "passed":
            lo = max(lo, 4.0)
        if too_old:
            oldest = DEAL_TOO_OLD_DAYS + FIRE_MARGIN + min(rng.expovariate(1 / 80), 650.0)
            created_ts = self._ts(DEAL_TOO_OLD_DAYS + FIRE_MARGIN, oldest)
        else:
            created_ts = self._ts(lo, DEAL_TOO_OLD_DAYS - CLEAR_MARGIN)
        created_age = self._age(created_ts)

        # --- contacts: who is ever engaged directly (active) and since when they may be ---
        n = _NCONTACTS.pick(rng)
        if pattern == ROLE_SILENT:
            n = max(n, 3)
        # quiet[i]: the least age (days) at which slot i may take part in an interaction;
        # None: never a direct participant (at most copied).
        quiet: list[float | None] = [None] * n
        silent: list[int] = []  # role_silent: the slots holding the silent role(s)
        streak_age = quiet_age = 0.0
        if pattern == ENGAGED:
            for i in range(n):
                quiet[i] = 0.0 if i < 2 or rng.random() < 0.8 else None
        elif pattern == ROLE_SILENT:
            silent = [n - 1] if n < 4 or rng.random() < 0.8 else [n - 2, n - 1]
            silent_since = KEY_ROLE_SILENT_DAYS + 1 + (created_age - 13.6) * rng.random() ** 1.5
            for i in range(n):
                if i in silent:
                    quiet[i] = silent_since if rng.random() < 0.6 else None
                else:
                    quiet[i] = 0.0 if i < 2 or rng.random() < 0.8 else None
        elif pattern == SINGLE:
            # the streak began (its first interaction) 12+ days ago; the others were last heard
            # from before it, 13+ days ago: past key_role_silent's threshold too
            least = max(SINGLE_THREADED_DAYS + FIRE_MARGIN + 1.0, KEY_ROLE_SILENT_DAYS + 1.0)
            streak_age = least + (min(45.0, created_age - 0.6) - least) * rng.random()
            quiet[0] = 0.0
            for i in range(1, n):
                quiet[i] = streak_age if rng.random() < 0.6 else None
        elif pattern == GONE_QUIET:
            lo_quiet = (KEY_ROLE_SILENT_DAYS + 1.0) if roles else (NO_ACTIVITY_DAYS + FIRE_MARGIN)
            hi_quiet = min(created_age - 0.6, 60.0)
            skew = 2.5 if target == "fair" else 0.8  # the longer the silence, the poorer
            quiet_age = lo_quiet + (hi_quiet - lo_quiet) * rng.random() ** skew
            for i in range(n):
                quiet[i] = quiet_age if i == 0 or rng.random() < 0.75 else None
        active = [i for i in range(n) if quiet[i] is not None]
        quiet_single = pattern == GONE_QUIET and (len(active) < 2 or rng.random() < P_QUIET_SINGLE)

        # --- seniority: no senior engaged when the power map has a gap, one when it must not ---
        levels = [
            _JUNIOR.pick(rng) if (gap and quiet[i] is not None) else _LEVEL.pick(rng)
            for i in range(n)
        ]
        if close == "window" and not gap and not any(levels[i] in SENIOR for i in active):
            levels[active[int(rng.random() * len(active))]] = _SENIOR_LEVEL.pick(rng)

        # --- buying roles ---
        held: list[list[str]] = [[] for _ in range(n)]
        if pattern in (ENGAGED, ROLE_SILENT):
            core = [i for i in active if i not in silent]
            quiet_roles = []
            if pattern == ROLE_SILENT:
                ranked = sorted(roles, key=lambda r: -_ROLE_AFFINITY[r]["c_level"])
                quiet_roles = ranked[: 2 if len(ranked) > 1 and rng.random() < 0.25 else 1]
                for k, role in enumerate(quiet_roles):
                    held[silent[k % len(silent)]].append(role)
            for role in roles:
                if role not in quiet_roles:
                    held[self._holder(role, core, levels)].append(role)
        elif pattern == SINGLE:
            others = list(range(1, n))
            for role in roles:
                if role == "Champion" or (not held[0] and rng.random() < 0.3):
                    held[0].append(role)
                elif rng.random() < 0.65:
                    held[self._holder(role, others, levels)].append(role)
        else:
            for role in roles:
                held[self._holder(role, range(n), levels)].append(role)
        role_slots = [i for i in range(n) if held[i]]

        taken: set[str] = set()
        pids = []
        for i in range(n):
            pid = self._person(company, levels[i], taken)
            taken.add(pid)
            pids.append(pid)

        # --- interactions that carry the scenario (never removed) ---
        rows: list[_Row] = []
        anchored: set[int] = set()
        window_hi = min(NO_ACTIVITY_DAYS - CLEAR_MARGIN, created_age - 0.05)

        def add(lo_age: float, hi_age: float, who: Sequence[int], removable: bool = False) -> None:
            if len(who) < 2:
                kind = _INTERACTION_KIND.pick(rng)
            else:  # several people: an email to them all, or a meeting
                kind = "email" if rng.random() < 0.6 else "meeting"
            direction = "outbound" if kind == "meeting" or rng.random() < 0.6 else "inbound"
            cc: tuple[str, ...] = ()
            if kind == "email" and rng.random() < 0.3 and len(who) < n:
                others = [pids[i] for i in range(n) if i not in who]
                cc = tuple(rng.sample(others, 1 + (len(others) > 1 and rng.random() < 0.3)))
            ts = self._ts(lo_age, hi_age)
            rows.append((ts, kind, direction, "done", tuple(pids[i] for i in who), cc, removable))
            anchored.update(who)

        if pattern in (ENGAGED, ROLE_SILENT):
            core = [i for i in active if i not in silent]
            size = min(len(core), 2 + (rng.random() < 0.4) + (rng.random() < 0.2))
            first = [i for i in core if held[i]][:1]
            group = first + rng.sample([i for i in core if i not in first], size - len(first))
            add(0.05, window_hi, group)
            for i in core:
                if held[i] and i not in group:
                    add(0.05, window_hi, [i])
            for i in silent:
                since = quiet[i]
                if since is not None:
                    add(since, min(since + 2.0, created_age - 0.05), [i])
        elif pattern == SINGLE:
            add(0.05, NO_ACTIVITY_DAYS - CLEAR_MARGIN, [0])
            add(streak_age - 1.0, streak_age, [0])
        elif pattern == GONE_QUIET:
            group = [0] if quiet_single else [0, *rng.sample(active[1:], min(len(active) - 1, 2))]
            add(quiet_age, quiet_age + 0.3, group)
            # everything else is older than this last interaction
            last_ts = rows[-1][0]
            quiet_age = self._age(last_ts) + 0.01
            for i in active:
                quiet[i] = quiet_age
        # everyone active takes part at least once, when they may
        for i in active:
            if i not in anchored:
                since = max(quiet[i] or 0.0, 0.05)
                add(since, max(since, created_age - 0.05), [i])

        # --- background: more interactions, when each person may take part ---
        inner = {
            ENGAGED: 0.05,
            ROLE_SILENT: 0.05,
            SINGLE: 0.05,
            GONE_QUIET: quiet_age,
            NEVER: None,
        }[pattern]
        if inner is not None and created_age > inner:
            span = created_age - inner
            shape = {"good": 1.6, "fair": 1.0, "poor": 0.6}[target]
            for _ in range(min(40, _poisson(rng, _INTENSITY[target] * span / 7.0))):
                age = inner + span * (1.0 - rng.random() ** shape)
                if rng.random() < 0.07:
                    kind = "meeting" if rng.random() < 0.5 else "email"
                    rows.append((self._ts(age, age), kind, "internal", "done", (), (), True))
                    continue
                eligible = [i for i in active if (quiet[i] or 0.0) <= age]
                if not eligible:
                    continue
                want = 1 if rng.random() < 0.7 else 2 + (rng.random() < 0.3)
                who = rng.sample(eligible, min(want, len(eligible)))
                add(age, age, who, removable=True)

        # --- tasks, notes, what is planned ---
        self._tasks_and_plans(rows, pids, created_age, meeting=meeting)
        grade = self._steer(rows, target, created_age)

        # --- the deal's fields ---
        stage_history = self._stage_history(pipeline, created_ts, created_age, stuck=stuck)
        if close == "passed":
            days = 2 + int(rng.random() * max(1.0, min(90.0, created_age - 2.0)))
            close_date: date | None = self.today - timedelta(days=days)
        elif close == "window":
            # within the window in any time zone: 1 .. days_to_close - 1 days ahead in UTC
            ahead = 1 + int(rng.random() * (POWERMAP_DAYS_TO_CLOSE - 1))
            close_date = self.today + timedelta(days=ahead)
        elif close == "beyond":
            close_date = self._future_close()
        else:
            close_date = None

        primary = role_slots[0] if role_slots else (active[0] if active else 0)
        contacts = tuple(
            DealContact(pids[i], tuple(r for r in ROLE_LABELS if r in held[i]), i == primary)
            for i in range(n)
        )
        self._add_deal(
            deal_id,
            pipeline,
            company,
            owner,
            stage_history,
            amount=None if amount_missing else self._amount(pipeline.id),
            close_date=close_date,
            created_ts=created_ts,
            status="open",
            contacts=contacts,
            rows=rows,
        )

        # --- what Deal Radar will say ---
        no_activity = pattern in (GONE_QUIET, NEVER)
        single = pattern == SINGLE or (pattern == GONE_QUIET and quiet_single)
        silent_role = pattern == ROLE_SILENT or (
            pattern == SINGLE and any(held[i] for i in range(1, n))
        )
        if pattern in (GONE_QUIET, NEVER):
            silent_role = bool(roles)
        facts = {
            "no_activity": no_activity,
            "no_meeting_scheduled": not meeting,
            "single_threaded": single,
            "key_role_silent": silent_role,
            "powermap_gap": gap,
            "stuck_in_stage": stuck,
            "close_date_passed": close == "passed",
            "amount_missing": amount_missing,
            "deal_too_old": too_old,
        }
        self.scenarios[deal_id] = tuple(code for code in ALERT_CODES if facts[code])
        self.grades[deal_id] = grade

    def _tasks_and_plans(
        self, rows: list[_Row], pids: Sequence[str], created_age: float, *, meeting: bool
    ) -> None:
        """Done tasks, notes, overdue and future tasks, future meetings (when `meeting`)."""
        rng = self.rng
        for _ in range(_poisson(rng, min(created_age, 120.0) / 12.0)):
            who = (pids[int(rng.random() * len(pids))],) if rng.random() < 0.4 else ()
            ts = self._ts(0.05, created_age - 0.05)
            rows.append((ts, "task", "outbound" if who else "internal", "done", who, (), True))
        for _ in range(_poisson(rng, 1.2)):
            ts = self._ts(0.05, created_age - 0.05)
            rows.append((ts, "note", "internal", "done", (), (), False))
        if rng.random() < 0.15 and created_age > 1.0:  # overdue: never ticked off
            ts = self._ts(0.5, min(20.0, created_age - 0.05))
            rows.append((ts, "task", "outbound", "scheduled", (), (), False))
        if rng.random() < 0.5:
            rows.append((self._ts(-14.0, -0.05), "task", "outbound", "scheduled", (), (), False))
        if rng.random() < 0.04 and created_age > 2.0:
            # A meeting planned and never logged once past counts as held (engine.signals), which
            # the scenario does not allow for: it is drawn (the generator's draws stay as they
            # were, so the world does) and left out.
            _who = (pids[int(rng.random() * len(pids))],)
            _ts = self._ts(1.0, created_age - 0.05)
        if meeting:
            for _ in range(1 + (rng.random() < 0.2)):
                k = min(len(pids), 1 + (rng.random() < 0.5) + (rng.random() < 0.3))
                who = tuple(rng.sample(list(pids), k))
                ts = self._ts(-21.0, -0.05)
                rows.append((ts, "meeting", "outbound", "scheduled", who, (), False))

    def _steer(self, rows: list[_Row], target: str, created_age: float) -> str:
        """Bring the health score into the target grade's band with done tasks; return the grade.

        Too high: drop background activity, latest first. Too low: add done tasks, older ones
        first (the rep working the deal: health counts tasks, the alerts do not). What cannot be
        reached is left as drawn: the grade returned is always the score's.
        """
        lo, hi = _BANDS[target]
        kinds = ("email", "call", "meeting", "task")

        def times() -> list[int]:
            return [r[0] for r in rows if r[3] == "done" and r[1] in kinds]

        score = self._score(times())
        if score > hi:
            for r in sorted((r for r in rows if r[6]), key=lambda r: -r[0]):
                rows.remove(r)
                score = self._score(times())
                if score <= hi:
                    break
        for age in _STEER_AGES[target]:
            if score >= lo:
                break
            if age + 0.1 >= created_age:
                continue
            ts = self._ts(age, min(age + 0.5, created_age - 0.05))
            rows.append((ts, "task", "internal", "done", (), (), True))
            new = self._score(times())
            if new > hi:
                rows.pop()
            else:
                score = new
        if score >= HEALTH_GOOD_FROM:
            return "good"
        return "fair" if score >= HEALTH_FAIR_FROM else "poor"

    def _closed_deal(
        self, deal_id: str, pipeline: Pipeline, company: Company, owner: str, *, won: bool
    ) -> None:
        rng = self.rng
        created_age = 20.0 + min(rng.expovariate(1 / 120), 680.0)
        created_ts = self._ts(created_age - 0.4, created_age)
        created_age = self._age(created_ts)
        closed_age = 1.0 + (created_age - 11.0) * rng.random() ** 1.3
        closed_ts = self._ts(closed_age, closed_age + 0.3)
        closed_age = self._age(closed_ts)

        n = _NCONTACTS.pick(rng)
        levels = [_LEVEL.pick(rng) for _ in range(n)]
        held: list[list[str]] = [[] for _ in range(n)]
        for role in self._draw_roles():
            held[self._holder(role, range(n), levels)].append(role)
        taken: set[str] = set()
        pids = []
        for level in levels:
            pid = self._person(company, level, taken)
            taken.add(pid)
            pids.append(pid)

        rows: list[_Row] = []
        span = created_age - closed_age
        for _ in range(max(1, min(40, _poisson(rng, 1.5 * span / 7.0)))):
            age = closed_age + span * rng.random() ** 1.4
            k = 1 if rng.random() < 0.7 else 2
            who = tuple(rng.sample(pids, min(k, n)))
            if k == 1:
                kind = _INTERACTION_KIND.pick(rng)
            else:
                kind = "email" if rng.random() < 0.6 else "meeting"
            direction = "outbound" if kind == "meeting" or rng.random() < 0.6 else "inbound"
            rows.append((self._ts(age, age), kind, direction, "done", who, (), False))
        for _ in range(_poisson(rng, span / 14.0)):
            ts = self._ts(closed_age, created_age - 0.05)
            rows.append((ts, "task", "internal", "done", (), (), False))
        if rng.random() < 0.6:
            rows.append(
                (self._ts(closed_age, closed_age), "note", "internal", "done", (), (), False)
            )
        if won and rng.random() < 0.2:  # the kick-off with the customer's project team
            who = tuple(rng.sample(pids, min(2, n)))
            rows.append(
                (self._ts(-14.0, -0.05), "meeting", "outbound", "scheduled", who, (), False)
            )

        history = self._stage_history(pipeline, created_ts, created_age, closed_ts=closed_ts)
        end = next(s for s in pipeline.stages if s.closed and s.won == won)
        history = (*history, (end.id, datetime.fromtimestamp(closed_ts, UTC)))
        role_slots = [i for i in range(n) if held[i]]
        primary = role_slots[0] if role_slots else 0
        contacts = tuple(
            DealContact(pids[i], tuple(r for r in ROLE_LABELS if r in held[i]), i == primary)
            for i in range(n)
        )
        amount = self._amount(pipeline.id) if won or rng.random() < 0.85 else None
        self._add_deal(
            deal_id,
            pipeline,
            company,
            owner,
            history,
            amount=amount,
            close_date=datetime.fromtimestamp(closed_ts, UTC).date(),
            created_ts=created_ts,
            status="won" if won else "lost",
            contacts=contacts,
            rows=rows,
        )
        kinds = ("email", "call", "meeting", "task")
        score = self._score([r[0] for r in rows if r[3] == "done" and r[1] in kinds])
        self.scenarios[deal_id] = ()
        self.grades[deal_id] = (
            "good" if score >= HEALTH_GOOD_FROM else "fair" if score >= HEALTH_FAIR_FROM else "poor"
        )

    def _stage_history(
        self,
        pipeline: Pipeline,
        created_ts: int,
        created_age: float,
        *,
        stuck: bool = False,
        closed_ts: int | None = None,
    ) -> tuple[tuple[str, datetime], ...]:
        """The open stages a deal went through, from its creation on.

        Open deals: the current stage was entered 12.5+ days ago when `stuck`, at most 10.5
        days ago otherwise. Closed deals: the open stages before `closed_ts` (the caller adds
        the closed stage). Deals start in the first stage (sometimes a later one) and move
        forward, now and then skipping a stage.
        """
        rng = self.rng
        opens = self.open_stages[pipeline.id]
        if closed_ts is not None:
            k = int(rng.random() * len(opens))
            if k == 0:
                return ((opens[0].id, datetime.fromtimestamp(created_ts, UTC)),)
            entered = created_ts + int((closed_ts - created_ts) * (0.3 + 0.6 * rng.random()))
        else:
            k = opens.index(self.open_stage_choice[pipeline.id].pick(rng))
            clear = STUCK_IN_STAGE_DAYS - CLEAR_MARGIN
            if k == 0 and (stuck or created_age <= clear):
                return ((opens[0].id, datetime.fromtimestamp(created_ts, UTC)),)
            k = max(k, 1)  # it must have moved since its creation
            if stuck:
                fire = STUCK_IN_STAGE_DAYS + FIRE_MARGIN
                age = fire + (created_age - 0.05 - fire) * rng.random() ** 1.5
                entered = self._ts(age, min(age + 0.3, created_age - 0.05))
            else:
                age = min(clear, created_age) * rng.random()
                entered = max(self._ts(max(0.02, age - 0.3), max(0.02, age)), created_ts + 60)
        start = 0 if rng.random() < 0.8 else int(rng.random() * k)
        middle = [i for i in range(start + 1, k) if rng.random() < 0.75]
        span = entered - created_ts
        times = sorted(created_ts + int(span * rng.random()) for _ in middle)
        return tuple(
            (opens[i].id, datetime.fromtimestamp(t, UTC))
            for i, t in zip([start, *middle, k], [created_ts, *times, entered], strict=True)
        )

    def _future_close(self) -> date:
        """A close date past powermap_gap's window in any time zone, often a month's end."""
        rng = self.rng
        ahead = POWERMAP_DAYS_TO_CLOSE + 2 + int(rng.random() * 140)
        day = self.today + timedelta(days=ahead)
        if rng.random() < 0.35:
            month_end = (day.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)
            day = month_end
        return day

    def _amount(self, pipeline_id: str) -> int | float:
        rng = self.rng
        raw = rng.lognormvariate(0.0, 0.7) * _AMOUNT_MEDIAN[pipeline_id]
        # Quotes are round numbers, except the odd price-list total with cents.
        return round(raw, 2) if rng.random() < 0.06 else int(round(raw, -2)) or 100

    def _add_deal(
        self,
        deal_id: str,
        pipeline: Pipeline,
        company: Company,
        owner: str,
        stage_history: tuple[tuple[str, datetime], ...],
        *,
        amount: int | float | None,
        close_date: date | None,
        created_ts: int,
        status: str,
        contacts: tuple[DealContact, ...],
        rows: list[_Row],
    ) -> None:
        rng = self.rng
        lang = company.language
        year = (close_date or self.today).year
        product = rng.choice(_PRODUCTS[(pipeline.id, lang)]).format(year=year)
        currency = _CURRENCY[company.country]
        self.deals.append(
            Deal(
                deal_id,
                f"{company.name} – {product}",
                pipeline.id,
                stage_history[-1][0],
                stage_history,
                amount,
                currency,
                close_date,
                datetime.fromtimestamp(created_ts, UTC),
                owner,
                status,
                company.id,
                contacts,
            )
        )
        # Activities in time order, no two of a deal at the same instant (the engine reads
        # simultaneous interactions with different people as breaking a thread).
        rows.sort(key=lambda r: r[0])
        deal_ids = (deal_id,)
        seen: set[int] = set()
        activities = self.activities
        for ts, kind, direction, status_, who, cc, _ in rows:
            while ts in seen:
                ts += 60
            seen.add(ts)
            texts = _TEXTS.get((kind, direction, lang)) or _TEXTS[(kind, "outbound", lang)]
            subject, body = texts[int(rng.random() * len(texts))]
            at = datetime.fromtimestamp(ts, UTC)
            end = None
            if kind == "meeting":
                end = at + timedelta(minutes=(30, 45, 60, 60, 90)[int(rng.random() * 5)])
            activities.append(
                Activity(
                    f"a{len(activities) + 1}",
                    kind,
                    at,
                    direction,
                    status_,
                    self._rep_for_activity(owner),
                    deal_ids,
                    who,
                    cc,
                    end,
                    subject,
                    body,
                )
            )

    def world(self) -> World:
        return World(
            now=self.now,
            reps=tuple(self.reps),
            pipelines=self.pipelines,
            companies=tuple(self.companies),
            people=tuple(self.people),
            deals=tuple(self.deals),
            activities=tuple(self.activities),
            scenarios=self.scenarios,
            grades=self.grades,
        )


def generate(deals: int, seed: int, now: datetime) -> World:
    """A world of `deals` deals (ids `d1` .. `d<deals>`) as of `now`, the same for the same seed."""
    if deals < 0:
        raise ValueError(f"deals must be >= 0, got {deals}")
    if now.tzinfo is None:
        raise ValueError("now must carry a timezone (an aware datetime)")
    gen = _Gen(deals, seed, now)
    for i in range(1, deals + 1):
        gen.deal(f"d{i}")
    return gen.world()


# --- command line ------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m sandbox.seed",
        description="Generate a realistic sales org (reps, pipelines, companies, contacts, deals, "
        "activities) and the Deal Radar alerts each deal was drawn to raise, as JSON.",
    )
    parser.add_argument("--deals", type=int, default=100, help="number of deals (default 100)")
    parser.add_argument("--seed", type=int, default=7, help="random seed (default 7)")
    parser.add_argument(
        "--now",
        default=None,
        help="the instant the world is drawn for, ISO 8601 with an offset "
        "(default: the current time, to the minute)",
    )
    parser.add_argument("--out", default="-", help="output file (default: standard output)")
    args = parser.parse_args(argv)
    if args.deals < 0:
        parser.error("--deals must be 0 or more")
    if args.now is None:
        now = datetime.now(UTC).replace(second=0, microsecond=0)
    else:
        try:
            now = datetime.fromisoformat(args.now)
        except ValueError:
            parser.error(f"--now: not an ISO 8601 instant: {args.now!r}")
        if now.tzinfo is None:
            parser.error("--now needs an offset, e.g. 2026-11-25T09:00:00+01:00")
    world = generate(args.deals, args.seed, now)
    if args.out == "-":
        world.write_json(sys.stdout)
        sys.stdout.write("\n")
    else:
        with open(args.out, "w", encoding="utf-8") as f:
            world.write_json(f)
            f.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
