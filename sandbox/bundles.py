"""Seeded generator of realistic deal bundles in Deal Radar's canonical JSON form.

Benchmarks and demos need many bundles that look like real CRM exports: English and French
contacts with messy job titles and role spellings, reps working from UTC and Paris, deals that
rot, stay single-threaded, sit in a stage for months or slip past their close date. Every
bundle is a plain dict ready for ``json.dumps``.

The module deliberately uses the standard library only (no engine/connector/adapters/jobs
import), so the data stays an independent witness of what the product must cope with.

What 10,000 bundles look like (seed 7): ~80% open, 12% won, 8% lost; of the open deals ~29%
rotting (no interaction for 10-60 days, mostly 10-25), ~12% cooling (quiet for 7-9 days),
~20% single-threaded over the last 30 days, ~17% past their close date, ~12% in their stage
for 45+ days; ~10% of all deals have no amount and ~3% are over a year old.

Output depends only on the seed, ``now`` and the requested means: the same arguments give the
same bundles on every run and platform (no wall clock, no system time-zone database).

Example::

    from datetime import UTC, datetime
    from sandbox.bundles import generate

    for bundle in generate(100, seed=7, now=datetime(2026, 11, 25, 8, tzinfo=UTC)):
        ...

or ``python -m sandbox.bundles --count 3 --now 2026-11-25T09:00:00+01:00`` for JSON lines.
"""

import calendar
import random
import unicodedata
from bisect import bisect
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from itertools import accumulate
from operator import itemgetter
from time import gmtime, strftime

__all__ = [
    "CONTACT_TITLES",
    "PIPELINES",
    "REPS",
    "ROLES",
    "generate",
    "make_bundle",
]

_DAY = 86_400
_HOUR = 3_600

# Zones a rep's CRM renders timestamps in; Paris switches between +01:00 and +02:00.
_UTC = 0
_PARIS = 1

# --------------------------------------------------------------------------------------------
# Reference data
# --------------------------------------------------------------------------------------------

# (id, name, email, zone, share of deals owned). Shared by every bundle so that a run looks
# like one sales team; the uneven shares mimic a top performer and a new hire.
_REP_ROWS: tuple[tuple[str, str, str, int, float], ...] = (
    ("u1", "Sarah Mitchell", "sarah.mitchell@vireo-software.com", _UTC, 1.5),
    ("u2", "Thomas Dubois", "thomas.dubois@vireo-software.com", _PARIS, 1.3),
    ("u3", "James O'Connor", "james.oconnor@vireo-software.com", _UTC, 1.1),
    ("u4", "Camille Lefèvre", "camille.lefevre@vireo-software.com", _PARIS, 1.0),
    ("u5", "Priya Patel", "priya.patel@vireo-software.com", _UTC, 0.9),
    ("u6", "Julien Moreau", "julien.moreau@vireo-software.com", _PARIS, 0.9),
    ("u7", "Emily Carter", "emily.carter@vireo-software.com", _UTC, 0.7),
    ("u8", "Élodie Garnier", "elodie.garnier@vireo-software.com", _PARIS, 0.5),
)

#: The sales reps shared by all bundles, as they appear in a bundle's ``users``.
REPS: tuple[dict[str, str], ...] = tuple(
    {"id": uid, "name": name, "email": email} for uid, name, email, _, _ in _REP_ROWS
)

#: Pipeline id -> stages in funnel order (the two closed stages last).
PIPELINES: dict[str, tuple[str, ...]] = {
    "sales": (
        "appointmentscheduled",
        "qualifiedtobuy",
        "presentationscheduled",
        "decisionmakerboughtin",
        "contractsent",
        "closedwon",
        "closedlost",
    ),
    "enterprise": (
        "discovery",
        "solution_design",
        "proposal",
        "negotiation",
        "closedwon",
        "closedlost",
    ),
}

# Early stages hold more open deals than late ones, as in any real funnel.
_OPEN_STAGE_CUM = {
    pipeline: tuple(accumulate(w))
    for pipeline, w in {"sales": (30, 25, 20, 15, 10), "enterprise": (35, 30, 20, 15)}.items()
}

#: Canonical contact roles; bundles sometimes spell them differently (see _ROLE_VARIANTS).
ROLES: tuple[str, ...] = (
    "Champion",
    "Decision Maker",
    "Economic Buyer",
    "Influencer",
    "Technical Evaluator",
    "End User",
)

# Spellings seen in hand-maintained CRM picklists and CSV imports: case, separators, a stray
# accent or surrounding blanks. They all normalise to the canonical role.
_ROLE_VARIANTS: dict[str, tuple[str, ...]] = {
    "Champion": ("champion", "CHAMPION", " Champion"),
    "Decision Maker": ("decision_maker", "Décision maker", "decision maker", "DECISION-MAKER"),
    "Economic Buyer": ("ECONOMIC BUYER", "economic_buyer", "Economic buyer"),
    "Influencer": ("influencer", "INFLUENCER", "Influencer "),
    "Technical Evaluator": ("technical_evaluator", "Technical evaluator", "TECHNICAL EVALUATOR"),
    "End User": ("end_user", "End user", "END USER"),
}

# Job titles by seniority level and language. The non-senior lists contain deliberate traps
# for naive keyword matching ("Executive Assistant to the CEO", "Account Manager",
# "Assistante du PDG", "Office Manager").
_TITLES: dict[str, dict[str, tuple[str, ...]]] = {
    "c": {
        "en": (
            "CEO",
            "Chief Executive Officer",
            "Chief Financial Officer",
            "CFO",
            "COO",
            "Chief Technology Officer",
            "CTO",
            "Chief Information Officer",
            "Chief Revenue Officer",
            "Founder",
            "Co-Founder & CEO",
            "Managing Director",
            "President",
        ),
        "fr": (
            "PDG",
            "Directrice Générale",
            "Directeur Général",
            "Directeur Général Délégué",
            "Directeur Administratif et Financier",
            "Président",
            "Fondateur",
            "Cofondatrice",
        ),
    },
    "vp": {
        "en": (
            "VP Sales",
            "SVP Operations",
            "VP Engineering",
            "VP Finance",
            "VP of Procurement",
            "Vice President, IT",
            "VP Marketing",
            "EVP Customer Success",
        ),
        "fr": (
            "Vice-Président Achats",
            "Vice-Présidente Ventes",
            "Vice-Président Opérations",
            "VP Ingénierie",
        ),
    },
    "dir": {
        "en": (
            "Director of IT",
            "IT Director",
            "Head of Procurement",
            "Director of Operations",
            "Sales Director",
            "Head of Data",
            "Director, Finance",
            "Head of Customer Success",
            "Marketing Director",
        ),
        "fr": (
            "Directrice Marketing",
            "Directeur des Achats",
            "Directeur Commercial",
            "Directrice des Systèmes d'Information",
            "Directeur des Opérations",
            "Directrice Financière",
            "Directeur Technique",
            "Responsable du pôle Data",
            "DAF",
            "DSI",
        ),
    },
    "staff": {
        "en": (
            "Procurement Manager",
            "Account Manager",
            "Analyst",
            "Business Analyst",
            "Data Analyst",
            "Executive Assistant to the CEO",
            "Office Manager",
            "IT Manager",
            "Project Manager",
            "Operations Manager",
            "Finance Manager",
            "Software Engineer",
            "Solutions Architect",
            "Purchasing Officer",
            "Sales Operations Specialist",
            "Legal Counsel",
            "Buyer",
        ),
        "fr": (
            "Chef de projet",
            "Cheffe de projet",
            "Responsable des achats",
            "Ingénieur commercial",
            "Acheteuse",
            "Assistante de direction",
            "Assistante du PDG",
            "Contrôleur de gestion",
            "Juriste",
            "Chargée de mission",
            "Responsable informatique",
            "Développeur",
            "Chef de produit",
            "Comptable",
            "Administrateur systèmes",
            "Responsable RH",
            "Office Manager",
        ),
    },
}

# French titles agree with the person's gender ("Directrice Générale" is never Hugo).
_FEMININE = {
    "Directeur Général": "Directrice Générale",
    "Directeur Général Délégué": "Directrice Générale Déléguée",
    "Directeur Administratif et Financier": "Directrice Administrative et Financière",
    "Président": "Présidente",
    "Fondateur": "Fondatrice",
    "Cofondateur": "Cofondatrice",
    "Vice-Président Achats": "Vice-Présidente Achats",
    "Vice-Président Ventes": "Vice-Présidente Ventes",
    "Vice-Président Opérations": "Vice-Présidente Opérations",
    "Directeur Marketing": "Directrice Marketing",
    "Directeur des Achats": "Directrice des Achats",
    "Directeur Commercial": "Directrice Commerciale",
    "Directeur des Systèmes d'Information": "Directrice des Systèmes d'Information",
    "Directeur des Opérations": "Directrice des Opérations",
    "Directeur Financier": "Directrice Financière",
    "Directeur Technique": "Directrice Technique",
    "Chef de projet": "Cheffe de projet",
    "Chef de produit": "Cheffe de produit",
    "Acheteur": "Acheteuse",
    "Assistant de direction": "Assistante de direction",
    "Assistant du PDG": "Assistante du PDG",
    "Contrôleur de gestion": "Contrôleuse de gestion",
    "Chargé de mission": "Chargée de mission",
    "Ingénieur commercial": "Ingénieure commerciale",
    "Développeur": "Développeuse",
    "Administrateur systèmes": "Administratrice systèmes",
}
_MASCULINE = {f: m for m, f in _FEMININE.items()}

#: Every non-empty job title the generator can emit.
CONTACT_TITLES: tuple[str, ...] = tuple(
    dict.fromkeys(
        [t for by_lang in _TITLES.values() for ts in by_lang.values() for t in ts]
        + [t for pair in _FEMININE.items() for t in pair]
    )
)

# Seniority mix of contacts; "none" is an empty title, common in CRMs fed by email sync.
_LEVELS = ("c", "vp", "dir", "staff", "none")
_LEVEL_CUM = tuple(accumulate((10, 12, 20, 50, 8)))

# Which roles people at each level tend to be tagged with (weights over ROLES).
_ROLE_CUM_BY_LEVEL = {
    level: tuple(accumulate(w))
    for level, w in {
        "c": (1, 4, 5, 1, 0, 0),
        "vp": (2, 4, 2, 2, 0, 0),
        "dir": (3, 3, 1, 3, 2, 0),
        "staff": (3, 0, 0, 3, 3, 4),
        "none": (1, 0, 0, 2, 1, 3),
    }.items()
}

_FIRST = {
    "en": (
        "Olivia",
        "Liam",
        "Emma",
        "Noah",
        "Ava",
        "Oliver",
        "Sophia",
        "James",
        "Isabella",
        "William",
        "Mia",
        "Benjamin",
        "Charlotte",
        "Lucas",
        "Amelia",
        "Henry",
        "Harper",
        "Alexander",
        "Evelyn",
        "Daniel",
        "Grace",
        "Michael",
        "Chloe",
        "Ethan",
        "Zoe",
        "David",
        "Hannah",
        "Ryan",
        "Rachel",
        "Kevin",
        "Megan",
        "Aisha",
        "Raj",
        "Mei",
    ),
    "fr": (
        "Camille",
        "Léa",
        "Manon",
        "Chloé",
        "Inès",
        "Louise",
        "Juliette",
        "Margaux",
        "Zoé",
        "Anaïs",
        "Émilie",
        "Hélène",
        "Nathalie",
        "Sophie",
        "Aurélie",
        "Céline",
        "Lucas",
        "Hugo",
        "Louis",
        "Gabriel",
        "Arthur",
        "Jules",
        "Théo",
        "Mathis",
        "Nicolas",
        "Julien",
        "Sébastien",
        "Jérôme",
        "François",
        "Benoît",
        "Stéphane",
        "Olivier",
        "Karim",
        "Yasmine",
    ),
}
_FR_FEMALE = frozenset((*_FIRST["fr"][:16], "Yasmine"))  # the first 16 are women
_LAST = {
    "en": (
        "Smith",
        "Johnson",
        "Williams",
        "Brown",
        "Jones",
        "Miller",
        "Davis",
        "Wilson",
        "Anderson",
        "Taylor",
        "Thomas",
        "Moore",
        "Martin",
        "Jackson",
        "Thompson",
        "White",
        "Harris",
        "Clark",
        "Lewis",
        "Walker",
        "Hall",
        "Young",
        "King",
        "Wright",
        "Scott",
        "Green",
        "Baker",
        "Adams",
        "Nelson",
        "Campbell",
        "O'Brien",
        "McCarthy",
        "Nguyen",
        "Shah",
    ),
    "fr": (
        "Martin",
        "Bernard",
        "Dubois",
        "Thomas",
        "Robert",
        "Richard",
        "Petit",
        "Durand",
        "Leroy",
        "Moreau",
        "Simon",
        "Laurent",
        "Lefèvre",
        "Michel",
        "Garcia",
        "David",
        "Bertrand",
        "Roux",
        "Vincent",
        "Fournier",
        "Girard",
        "Bonnet",
        "Dupont",
        "Lambert",
        "Fontaine",
        "Rousseau",
        "Mercier",
        "Blanc",
        "Guérin",
        "Faure",
        "Le Gall",
        "Benali",
        "Château",
        "Da Silva",
    ),
}

_COMPANY_HEAD = {
    "en": (
        "Northwind",
        "Bluefin",
        "Harbor",
        "Summit",
        "Crescent",
        "Ironbridge",
        "Oakridge",
        "Pinnacle",
        "Redwood",
        "Silverline",
        "Brightpath",
        "Keystone",
        "Ashford",
        "Meridian",
        "Cobalt",
        "Evergreen",
        "Falcon",
        "Granite",
        "Highland",
        "Lakeshore",
    ),
    "fr": (
        "Boréal",
        "Lumière",
        "Horizon",
        "Atlantique",
        "Rivage",
        "Vallée",
        "Mistral",
        "Granit",
        "Azur",
        "Saint-Clair",
        "Cévennes",
        "Ondine",
        "Garonne",
        "Arcadie",
        "Bastide",
        "Étoile",
    ),
}
_COMPANY_TAIL = {
    "en": (
        "Logistics",
        "Health",
        "Analytics",
        "Manufacturing",
        "Capital",
        "Foods",
        "Energy",
        "Retail",
        "Systems",
        "Labs",
        "Insurance",
        "Media",
    ),
    "fr": (
        "Logistique",
        "Énergie",
        "Santé",
        "Distribution",
        "Industrie",
        "Conseil",
        "Assurances",
        "Transports",
        "Immobilier",
        "Agroalimentaire",
    ),
}
_TLDS = {"en": ("com", "com", "com", "io", "co.uk", "net"), "fr": ("fr", "fr", "fr", "com", "eu")}
_PRODUCTS = {
    "en": (
        "Platform subscription",
        "Enterprise licence",
        "Expansion",
        "Renewal {year}",
        "Pilot",
        "Data migration",
        "Support upgrade",
        "Multi-site rollout",
        "New business",
    ),
    "fr": (
        "Abonnement plateforme",
        "Renouvellement {year}",
        "Extension",
        "Pilote",
        "Migration des données",
        "Déploiement multi-sites",
        "Nouveau projet",
    ),
}

# Activity mix: emails dominate, then calls, tasks, meetings and notes.
_KINDS = ("email", "call", "task", "meeting", "note")
_KIND_CUM = tuple(accumulate((45, 22, 14, 11, 8)))
_DIRECTIONS = ("outbound", "inbound", "internal")
_DIRECTION_CUM = {
    k: tuple(accumulate(w))
    for k, w in {
        "email": (57, 40, 3),
        "call": (80, 20, 0),
        "task": (40, 0, 60),
        "meeting": (75, 15, 10),
        "note": (0, 0, 100),
    }.items()
}
# How many direct participants (1, 2, 3, 4): meetings gather people, calls rarely do.
_PARTICIPANTS_CUM = {
    k: tuple(accumulate(w))
    for k, w in {
        "email": (85, 12, 3, 0),
        "call": (95, 5, 0, 0),
        "task": (100, 0, 0, 0),
        "meeting": (50, 30, 15, 5),
    }.items()
}
_CC_SHARE = {"email": 0.2, "meeting": 0.05}

# Local working hours, heavier mid-morning and mid-afternoon.
_HOURS = tuple(range(8, 20))
_HOUR_CUM = tuple(accumulate((3, 8, 10, 10, 5, 5, 9, 10, 9, 7, 4, 2)))
_HOUR_TOTAL = _HOUR_CUM[-1]

# Deal-level situation rates. Together they spread open deals over every health grade: most
# are healthy, a minority carries one problem, a few pile several.
_P_SALES_PIPELINE = 0.65
_P_WON, _P_LOST = 0.12, 0.08
_P_VERY_OLD = 0.03
_P_ROTTING = 0.35
_P_COOLING = 0.2
_P_SINGLE_THREADED = 0.15
_P_STUCK = 0.18
_P_CLOSE_PASSED = 0.15
_P_CLOSE_NULL = 0.03
_P_AMOUNT_NULL = 0.1
_P_NEXT_STEP = 0.65  # open, active deals with a meeting or task already booked
_P_CLOSING_SOON = 0.2  # future close dates within two weeks
_P_MONTH_END = 0.4  # reps like to forecast on the last day of a month
_P_OVERDUE_TASK = 0.05  # past tasks nobody ticked off
_P_ROLE_VARIANT = 0.15

# Regular deals are 5..200 days old, skewed young (age = 5 + 195 * u**2); the few very old
# ones count as 200 for activity pacing. This is the mean of that capped age, used to keep
# the activity count's mean equal to the requested one (see make_bundle).
_MEAN_CAPPED_AGE = (1 - _P_VERY_OLD) * (5 + 195 / 3) + _P_VERY_OLD * 200
_PACE_OFFSET = 60.0


def _ascii_slug(text: str, sep: str = "") -> str:
    # Emails and domains are ASCII even when the name is "Élodie Le Gall".
    plain = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()
    return sep.join("".join(c for c in word if c.isalnum()) for word in plain.split())


# Precomputed so that the hot path only indexes tuples.
_FIRST_ASCII = {lang: tuple(_ascii_slug(n) for n in names) for lang, names in _FIRST.items()}
_LAST_ASCII = {lang: tuple(_ascii_slug(n) for n in names) for lang, names in _LAST.items()}
_HEAD_ASCII = {lang: tuple(_ascii_slug(n) for n in ns) for lang, ns in _COMPANY_HEAD.items()}
_TAIL_ASCII = {lang: tuple(_ascii_slug(n) for n in ns) for lang, ns in _COMPANY_TAIL.items()}
_REP_CUM = tuple(accumulate(row[4] for row in _REP_ROWS))
_REP_ZONE = {row[0]: row[3] for row in _REP_ROWS}
_REP_BY_ID = {rep["id"]: rep for rep in REPS}


# --------------------------------------------------------------------------------------------
# Time helpers (integer epoch seconds on the hot path; strings only at the edge)
# --------------------------------------------------------------------------------------------

_DST_CACHE: dict[int, tuple[int, int]] = {}


def _last_sunday_0100_utc(year: int, month: int) -> int:
    last = calendar.monthrange(year, month)[1]
    day = last - (calendar.weekday(year, month, last) + 1) % 7
    return calendar.timegm((year, month, day, 1, 0, 0))


def _paris_offset(t: int) -> int:
    # The EU rule (summer time from 01:00 UTC on the last Sunday of March to the last Sunday
    # of October) is computed here instead of asking zoneinfo, so output never depends on the
    # host's tz database. The approximate year is fine: transitions are far from New Year.
    year = 1970 + t // 31_556_952
    bounds = _DST_CACHE.get(year)
    if bounds is None:
        bounds = _DST_CACHE[year] = (
            _last_sunday_0100_utc(year, 3),
            _last_sunday_0100_utc(year, 10),
        )
    return 7_200 if bounds[0] <= t < bounds[1] else 3_600


def _iso(t: int, zone: int) -> str:
    if zone == _UTC:
        return strftime("%Y-%m-%dT%H:%M:%SZ", gmtime(t))
    off = _paris_offset(t)
    return strftime("%Y-%m-%dT%H:%M:%S", gmtime(t + off)) + ("+02:00" if off == 7_200 else "+01:00")


def _iso_date(t: int) -> str:
    return strftime("%Y-%m-%d", gmtime(t))


def _epoch(now: datetime) -> int:
    # A naive ``now`` is read as UTC rather than host-local time, to stay deterministic.
    if now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    return int(now.timestamp())


def _office_time(rng: random.Random, t: int, zone: int, lo: int, hi: int, fine: bool) -> int:
    """Move ``t`` to a plausible working moment of the same local day, staying in [lo, hi].

    ``fine`` keeps the seconds (logged emails and calls); otherwise the time falls on a
    quarter hour as booked meetings and typed notes do.
    """
    rand = rng.random
    off = 0 if zone == _UTC else _paris_offset(t)
    day = (t + off) // _DAY
    weekday = (day + 3) % 7  # 1970-01-01 was a Thursday; Monday == 0
    if weekday >= 5 and rand() < 0.9:
        # Little happens at weekends: move to a random weekday of the same week.
        day += int(rand() * 5) - weekday
    hour = _HOURS[bisect(_HOUR_CUM, rand() * _HOUR_TOTAL)]
    r = rand()
    within = int(r * _HOUR) if fine else int(r * 4) * 900
    moved = day * _DAY + hour * _HOUR + within - off
    # Near the edges of the allowed window the raw time is kept rather than leaving it.
    return moved if lo <= moved <= hi else t


def _pick(cum: Sequence[float], rng: random.Random, base: float = 0.0) -> int:
    """Index drawn from cumulative weights ``cum`` (whose running sum starts after ``base``)."""
    return bisect(cum, base + rng.random() * (cum[-1] - base))


def _draw_activity_count(rng: random.Random, mean: float) -> int:
    if mean <= 0:
        return 0
    # Gamma(3, 1/3) has mean 1, is never negative and skews right like real accounts'
    # engagement. Rounding stochastically (floor of x + U) keeps the mean exact, even for
    # means below one where plain rounding drifts.
    return int(mean * rng.gammavariate(3.0, 1 / 3) + rng.random())


def _draw_contact_count(rng: random.Random, mean: float) -> int:
    if mean <= 0:
        return 0
    if mean <= 1:
        return 1
    hi = round(2 * mean)
    # Triangular over [0.5, hi + 0.5] rounded to integers 1..hi; the mode is chosen so the
    # continuous mean ((a + b + c) / 3) equals the requested one.
    a, b = 0.5, hi + 0.5
    mode = min(max(3 * mean - a - b, a), b)
    return min(max(int(rng.triangular(a, b, mode) + 0.5), 1), hi)


# --------------------------------------------------------------------------------------------
# Bundle generation
# --------------------------------------------------------------------------------------------


def _make_contacts(
    rng: random.Random, index: int, count: int, lang: str, domain: str, email_style: int
) -> list[dict]:
    contacts: list[dict] = []
    seen_emails: set[str] = set()
    for k in range(count):
        # Most people at a French company are French-speaking, but not all of them.
        clang = lang if rng.random() < 0.85 else ("fr" if lang == "en" else "en")
        fi = int(rng.random() * len(_FIRST[clang]))
        li = int(rng.random() * len(_LAST[clang]))
        first, last = _FIRST_ASCII[clang][fi], _LAST_ASCII[clang][li]
        if email_style == 0:
            local = f"{first}.{last}"
        elif email_style == 1:
            local = f"{first[0]}{last}"
        elif email_style == 2:
            local = f"{first}_{last}"
        else:
            local = f"{first}{last[0]}"
        email = f"{local}@{domain}"
        n = 2
        while email in seen_emails:  # namesakes get a digit, as mail admins do
            email = f"{local}{n}@{domain}"
            n += 1
        seen_emails.add(email)

        level = _LEVELS[_pick(_LEVEL_CUM, rng)]
        if level == "none":
            title = ""
        else:
            options = _TITLES[level][clang]
            title = options[int(rng.random() * len(options))]
            if clang == "fr":
                gendered = _FEMININE if _FIRST["fr"][fi] in _FR_FEMALE else _MASCULINE
                title = gendered.get(title, title)

        r = rng.random()
        n_roles = 0 if r < 0.5 else 1 if r < 0.9 else 2
        roles: list[str] = []
        if k == 0 and n_roles and rng.random() < 0.6:
            roles.append("Champion")  # the primary contact is usually the one pushing the deal
        role_cum = _ROLE_CUM_BY_LEVEL[level]
        for _ in range(4):
            if len(roles) >= n_roles:
                break
            role = ROLES[_pick(role_cum, rng)]
            if role not in roles:
                roles.append(role)
        if roles and rng.random() < _P_ROLE_VARIANT:
            variants = _ROLE_VARIANTS[roles[0]]
            roles[0] = variants[int(rng.random() * len(variants))]

        contacts.append(
            {
                "id": f"c{index}-{k + 1}",
                "name": f"{_FIRST[clang][fi]} {_LAST[clang][li]}",
                "email": email,
                "title": title,
                "roles": roles,
                "primary": k == 0,
            }
        )
    return contacts


def make_bundle(
    rng: random.Random,
    now: datetime,
    index: int,
    *,
    activities: int = 40,
    contacts: int = 5,
) -> dict:
    """Build one deal bundle as of ``now``, drawing everything from ``rng``.

    ``index`` makes the deal id (``"d<index>"``) and the contact/activity ids unique across a
    run. ``activities`` and ``contacts`` are mean counts; the actual numbers vary per deal
    (contacts 1..2*mean; activities right-skewed from 0, more for older deals, median about
    0.8*mean). A naive ``now`` is taken as UTC.
    """
    now_ts = _epoch(now)
    now_year = gmtime(now_ts).tm_year

    # --- the deal's story: age, outcome and what is wrong with it ---------------------------
    very_old = rng.random() < _P_VERY_OLD
    # Young deals outnumber old ones in any live pipeline.
    age_days = rng.uniform(365, 1_000) if very_old else 5 + 195 * rng.random() ** 2
    # Older deals have had time for more activity. The factor averages 1 over the age
    # distribution, so the requested mean holds.
    pace = (min(age_days, 200) + _PACE_OFFSET) / (_MEAN_CAPPED_AGE + _PACE_OFFSET)
    owner_id = _REP_ROWS[_pick(_REP_CUM, rng)][0]
    owner_zone = _REP_ZONE[owner_id]
    created = now_ts - int(age_days * _DAY)
    created = _office_time(rng, created, owner_zone, created - _DAY, now_ts - 5 * _DAY, True)
    age_days = (now_ts - created) / _DAY

    pipeline = "sales" if rng.random() < _P_SALES_PIPELINE else "enterprise"
    stages = PIPELINES[pipeline]
    r = rng.random()
    status = "won" if r < _P_WON else "lost" if r < _P_WON + _P_LOST else "open"
    is_open = status == "open"

    rotting = stuck = single_threaded = cooling = False
    if is_open:
        open_stages = stages[:-2]
        # Most rotting deals have only just gone quiet; a tail has been silent for weeks.
        rot_days = 10 + rng.random() ** 2 * max(min(60, age_days - 1) - 10, 0)
        rotting = rng.random() < _P_ROTTING and age_days > 11
        # Cooling deals have been quiet for a week or so, not yet long enough for the usual
        # 10-day no-activity threshold: the grey zone between healthy and rotting.
        cool_days = 7 + 2 * rng.random()
        cooling = not rotting and rng.random() < _P_COOLING and age_days > 10
        quiet_days = rot_days if rotting else cool_days if cooling else 0.0
        end = now_ts - int(quiet_days * _DAY)
        # Zombie deals from last year are usually stuck too.
        stuck = rng.random() < (0.7 if very_old else _P_STUCK) and age_days > 46
        stage_cum = _OPEN_STAGE_CUM[pipeline]
        stage_i = _pick(stage_cum, rng)
        if stage_i == 0 and age_days > 45 and not stuck:
            # A healthy deal does not sit in the first stage for weeks: it has moved on.
            stage_i = 1 + _pick(stage_cum[1:], rng, stage_cum[0])
        stage = open_stages[stage_i]
        if stage_i == 0:
            entered = created  # deals are created in their pipeline's first stage
        elif stuck:
            entered = now_ts - int(rng.uniform(45, min(age_days - 1, 240)) * _DAY)
        else:
            entered = now_ts - int((0.05 + rng.random() ** 1.5 * min(age_days, 21)) * _DAY)
        entered = _office_time(rng, max(entered, created), owner_zone, created, now_ts, True)
        single_threaded = rng.random() < _P_SINGLE_THREADED
    else:
        stage = "closedwon" if status == "won" else "closedlost"
        end = created + int((now_ts - created) * rng.uniform(0.4, 1.0))
        end = _office_time(rng, end, owner_zone, created, now_ts, fine=True)
        entered = end

    # --- company, contacts and the selling team ----------------------------------------------
    lang = "fr" if rng.random() < 0.45 else "en"
    head_i = int(rng.random() * len(_COMPANY_HEAD[lang]))
    ti = int(rng.random() * len(_COMPANY_TAIL[lang]))
    company = f"{_COMPANY_HEAD[lang][head_i]} {_COMPANY_TAIL[lang][ti]}"
    tld = _TLDS[lang][int(rng.random() * len(_TLDS[lang]))]
    sep = "-" if rng.random() < 0.5 else ""
    domain = f"{_HEAD_ASCII[lang][head_i]}{sep}{_TAIL_ASCII[lang][ti]}.{tld}"
    product = _PRODUCTS[lang][int(rng.random() * len(_PRODUCTS[lang]))]
    name = f"{company} - {product.format(year=now_year + (rng.random() < 0.3))}"

    n_contacts = _draw_contact_count(rng, contacts)
    people = _make_contacts(rng, index, n_contacts, lang, domain, int(rng.random() * 4))
    contact_ids = [c["id"] for c in people]
    # Primary contact gets most of the attention; some contacts are barely ever involved.
    contact_cum = tuple(
        accumulate(5.0 if k == 0 else rng.uniform(0.2, 3.0) for k in range(n_contacts))
    )
    # Single-threaded: since some point (often the deal's start) only one person talks to us.
    st_from = None
    if n_contacts and single_threaded:
        st_from = created if rng.random() < 0.4 else now_ts - int(rng.uniform(30, 120) * _DAY)
    lone = contact_ids[0] if contact_ids else None

    helpers = [row[0] for row in _REP_ROWS if row[0] != owner_id]
    team = [owner_id, *rng.sample(helpers, 1 + (rng.random() < 0.3))]

    # --- activities -------------------------------------------------------------------------
    n_acts = _draw_activity_count(rng, activities * pace)
    n_future = 0
    if is_open and not rotting and n_acts >= 2 and rng.random() < _P_NEXT_STEP:
        n_future = min(n_acts - 1, 1 + (rng.random() < 0.35) + (rng.random() < 0.1))
    # One guaranteed interaction fixes when the customer was last heard from: within 8 days
    # (mostly sooner) for active deals, right at the cut-off for rotting and cooling ones, at
    # closing for closed ones. Activities drawn later may well be more recent than it.
    if is_open and not (rotting or cooling):
        anchor_hi = end - int(8 * rng.random() ** 1.5 * _DAY)
        anchor_lo = anchor_hi - _HOUR
    else:
        anchor_hi = end
        anchor_lo = end - (3 * _DAY if not is_open else _DAY)
    # Young deals cannot have been heard from before they existed.
    anchor_hi = max(anchor_hi, created)
    anchor_lo = min(max(created, anchor_lo), anchor_hi)
    span = end - created
    # Where activity concentrates over the deal's life (t = created + span * u**shape): hot
    # deals pick up towards the end, cooling ones thin out, rotting ones fizzled before dying.
    shape = 2.0 if rotting else 1.6 if cooling else 0.75

    rows: list[tuple] = []
    # Local aliases: this loop runs ~40 times per bundle and dominates generation time.
    rand = rng.random
    kind_total = _KIND_CUM[-1]
    contact_total = contact_cum[-1] if n_contacts else 0.0
    n_helpers = len(team) - 1
    for i in range(n_acts):
        user = owner_id if rand() < 0.82 else team[1 + int(rand() * n_helpers)]
        zone = _REP_ZONE[user]
        if i < n_future:
            kind = "meeting" if rand() < 0.6 else "task"
            if kind == "meeting":
                direction = "outbound" if rand() < 0.85 else "inbound"
            else:
                direction = "outbound" if rand() < 0.5 else "internal"
            status_ = "scheduled"
            lo, hi_t = now_ts + 1_800, now_ts + 21 * _DAY
            t = lo + int(rand() * (hi_t - lo))
        else:
            if i == n_future:
                kind = "email" if rand() < 0.6 else "call"
                direction = "outbound" if rand() < 0.5 else "inbound"
                lo, hi_t = anchor_lo, anchor_hi
                t = lo + int(rand() * (hi_t - lo))
            else:
                kind = _KINDS[bisect(_KIND_CUM, rand() * kind_total)]
                cum = _DIRECTION_CUM[kind]
                direction = _DIRECTIONS[bisect(cum, rand() * cum[-1])]
                lo, hi_t = created, end
                t = created + int(span * rand() ** shape)
            status_ = "scheduled" if kind == "task" and rand() < _P_OVERDUE_TASK else "done"
        t = _office_time(rng, t, zone, lo, hi_t, fine=kind == "email" or kind == "call")

        if direction == "internal" or not n_contacts:
            who: list[str] = []
            cc: list[str] = []
        elif st_from is not None and t >= st_from:
            who, cc = [lone], []
        else:
            cum = _PARTICIPANTS_CUM[kind]
            want = bisect(cum, rand() * cum[-1]) + 1
            if want == 1 or n_contacts == 1:
                who = [contact_ids[bisect(contact_cum, rand() * contact_total)]]
            else:
                want = min(want, n_contacts)
                who = []
                for _ in range(3 * want):
                    cid = contact_ids[bisect(contact_cum, rand() * contact_total)]
                    if cid not in who:
                        who.append(cid)
                        if len(who) == want:
                            break
            cc = []
            if kind in _CC_SHARE and rand() < _CC_SHARE[kind] and n_contacts > len(who):
                others = [cid for cid in contact_ids if cid not in who]
                cc = rng.sample(others, min(len(others), 1 + (rand() < 0.3)))
        rows.append((t, kind, zone, direction, status_, who, cc, user))

    rows.sort(key=itemgetter(0))
    activity_dicts = [
        {
            "id": f"a{index}-{k + 1}",
            "kind": kind,
            "at": _iso(t, zone),
            "direction": direction,
            "status": status_,
            "contacts": who,
            "cc": cc,
            "user": user,
        }
        for k, (t, kind, zone, direction, status_, who, cc, user) in enumerate(rows)
    ]

    # --- deal fields ------------------------------------------------------------------------
    if rng.random() < _P_AMOUNT_NULL:
        amount: float | int | None = None
    else:
        median = 15_000 if pipeline == "sales" else 120_000
        raw = rng.lognormvariate(0.0, 0.7) * median
        # Quotes are round numbers, except the odd price-list total with cents.
        amount = round(raw, 2) if rng.random() < 0.1 else int(round(raw, -2))
    if lang == "fr":
        currency = "EUR" if rng.random() < 0.95 else "USD"
    else:
        r = rng.random()
        currency = "USD" if r < 0.6 else "GBP" if r < 0.8 else "EUR"

    if not is_open:
        close_date: str | None = _iso_date(end)
    elif rng.random() < _P_CLOSE_NULL:
        close_date = None
    elif rng.random() < (0.6 if very_old else _P_CLOSE_PASSED):
        overdue_days = rng.uniform(1, min(age_days - 1, 90))
        close_date = _iso_date(now_ts - int(overdue_days * _DAY))
    else:
        ahead = rng.uniform(3, 14) if rng.random() < _P_CLOSING_SOON else rng.uniform(14, 150)
        tm = gmtime(now_ts + int(ahead * _DAY))
        day = tm.tm_mday
        if rng.random() < _P_MONTH_END:
            day = calendar.monthrange(tm.tm_year, tm.tm_mon)[1]
        close_date = f"{tm.tm_year:04d}-{tm.tm_mon:02d}-{day:02d}"

    user_ids = {owner_id}
    user_ids.update(row[7] for row in rows)
    users = [_REP_BY_ID[owner_id], *(_REP_BY_ID[u] for u in sorted(user_ids - {owner_id}))]

    return {
        "version": 1,
        "deal": {
            "id": f"d{index}",
            "name": name,
            "pipeline": pipeline,
            "stage": stage,
            "stage_entered_at": _iso(entered, owner_zone),
            "amount": amount,
            "currency": currency,
            "close_date": close_date,
            "created_at": _iso(created, owner_zone),
            "owner": owner_id,
            "status": status,
        },
        "contacts": people,
        "activities": activity_dicts,
        # Copies, so a caller mutating one bundle cannot corrupt the next.
        "users": [dict(u) for u in users],
    }


def generate(
    count: int,
    *,
    seed: int = 7,
    now: datetime,
    activities: int = 40,
    contacts: int = 5,
) -> Iterator[dict]:
    """Yield ``count`` bundles (deal ids ``d0`` .. ``d<count-1>``), deterministic for ``seed``.

    Bundles are produced lazily, so 100,000 of them never sit in memory at once.
    """
    if count < 0:
        raise ValueError(f"count must be >= 0, got {count}")
    rng = random.Random(seed)
    for index in range(count):
        yield make_bundle(rng, now, index, activities=activities, contacts=contacts)


def _main(argv: Sequence[str] | None = None) -> None:
    import argparse
    import json

    parser = argparse.ArgumentParser(description="Print generated deal bundles as JSON lines.")
    parser.add_argument("--count", type=int, default=3)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--now", default=None, help="ISO 8601 instant (default: current time)")
    parser.add_argument("--activities", type=int, default=40)
    parser.add_argument("--contacts", type=int, default=5)
    args = parser.parse_args(argv)
    now = datetime.fromisoformat(args.now) if args.now else datetime.now(UTC)
    for bundle in generate(
        args.count,
        seed=args.seed,
        now=now,
        activities=args.activities,
        contacts=args.contacts,
    ):
        print(json.dumps(bundle, ensure_ascii=False))


if __name__ == "__main__":
    _main()
