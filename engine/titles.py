"""Seniority of a free-text job title, in English and French.

``seniority(title)`` answers "c_level", "vp", "director" or None: the HIGHEST level whose
rules match. Titles are first normalized (lowercase, accents dropped, punctuation turned
into spaces), so every rule below is case, accent and punctuation insensitive and matches
whole words only.

* c_level: an explicit list of CxO acronyms (a generic ``c.o`` pattern would catch "cargo"
  or "cosmo"); "Chief ... Officer" and "Chief Executive" (but not "Chief of Staff" or
  "Chief Architect"); founder / co-founder / fondateur / fondatrice / cofondateur(-trice);
  président(e) and chairman / chairwoman / chairperson unless preceded by "vice";
  PDG, DG, directeur général / directrice générale (with adjoint, délégué, ...).
* vp: vice-président(e) in any spelling, VP / SVP / EVP / AVP / RVP / GVP, V.P., vice-chair.
* director: director, directeur, directrice, "head of" ("Head Chef" is not), and the French
  initialisms DSI, DAF, DRH and DCG (heads of IT, finance, HR, management control).
* Demotions. A support or trainee word (assistant, secrétaire, intern, stagiaire, ...) or a
  former-marker opening the title (former, ex, retired, ancien) makes the whole title None.
  A former-marker further on (also formerly, previously, anciennement) removes the past job
  it opens, up to the next comma, bracket, bar, slash or spaced dash, so today's job decides:
  "Head of Sales (former CEO)" is a director, "CEO (ex-intern)" C-level.
  Before matching, "reference phrases" are removed: a preposition, an optional article and a
  level word ("to the CEO", "auprès du PDG", "of the Founder & CEO") name somebody else, so
  "Office of the CEO" is None while "Directeur de cabinet du Président" stays director. So
  does a level word written possessively ("CEO's Chief of Staff": the job after it decides),
  named right after a staff job ("Chief of Staff, CEO", "Chargé de mission DG"), or naming
  an office ("CEO Office Manager"; but "CEO, Office Depot" is the CEO).

``extra`` lets an admin add phrases per level (e.g. "Gérant" as c_level). They are matched
as whole-word literal phrases on the normalized title, can only raise the built-in level,
and are exempt from the support-word demotion (an admin who adds "Secrétaire général"
means it), though the phrase still counts as a reference after "to the", "du", ...

Pure module: no I/O, clock or environment. Both the built-in result (per raw title) and the
compiled form of each distinct ``extra`` are memoized, because this runs in a hot loop.
"""

import re
import unicodedata
from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import NamedTuple

LEVELS: tuple[str, ...] = ("director", "vp", "c_level")  # ascending seniority

_RANK: dict[str, int] = {level: rank for rank, level in enumerate(LEVELS, start=1)}


def level_rank(level: str | None) -> int:
    """0 for None, then 1..3 following LEVELS; an unknown level is a caller bug."""
    if level is None:
        return 0
    try:
        return _RANK[level]
    except KeyError:
        raise ValueError(f"unknown seniority level {level!r}; expected one of {LEVELS}") from None


# NFKD leaves these letters whole, and they do occur in French and German titles.
_LIGATURES = str.maketrans({"œ": "oe", "Œ": "OE", "æ": "ae", "Æ": "AE", "ß": "ss"})
_NON_WORD = re.compile(r"[^a-z0-9&]+")


def normalize(text: str) -> str:
    """Lowercase, strip accents, turn anything outside [a-z0-9&] into single spaces."""
    if not text.isascii():
        decomposed = unicodedata.normalize("NFKD", text.translate(_LIGATURES))
        text = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return _NON_WORD.sub(" ", text.lower()).strip()


# --- Built-in vocabulary, written against normalized text (single spaces, no accents). ---

_CXO = (
    "ceo", "cfo", "coo", "cto", "cio", "cmo", "cro", "cso", "cpo", "cdo", "cco",
    "cbo", "cno", "cxo", "chro", "ciso", "cdao", "caio", "clo", "cgo", "cvo",
)  # fmt: skip
# No "cao": in French it is computer-aided design ("Technicien CAO").

_C_LEVEL_TOKENS = "|".join(
    (
        # Spelled-out PDG is one token so that "du Président-Directeur Général" is removed
        # whole as a reference instead of leaving a dangling "directeur general".
        r"presidente? (?:directeur|directrice) generale?",
        r"(?:directeur|directrice) generale?",
        # At least one word between, so "chief officer" (a ship's mate) does not count;
        # the "of" guard keeps out "Chief of Staff" / "Chief of Police".
        r"chief (?!of )(?:[a-z0-9&]+ ){1,4}?officer",
        r"chief executive",
        r"(?<!vice )presidente?",
        r"(?<!vice )chair(?:man|woman|person)",
        r"chair of the board",
        r"board chair",
        r"(?:co ?)?(?:founder|fondat(?:eur|rice))",
        r"pdg",
        r"dg",
        *_CXO,
        # Written with dots ("C.E.O.", "P.-D.G."), which normalization turns into single letters.
        *(" ".join(acronym) for acronym in (*_CXO, "pdg", "dg")),
    )
)
_VP_TOKENS = "|".join(
    (
        r"vice ?presidente?",
        # A vice-chair deputises for a c-level the way a vice-president does.
        r"vice chair(?:man|woman|person)?",
        r"vp|svp|evp|avp|rvp|gvp",
        r"v p",  # "V.P." after normalization
    )
)
# French initialisms for the heads of a function: DSI (systèmes d'information), DAF
# (administratif et financier), DRH (ressources humaines), DCG (contrôle de gestion).
_DIRECTOR_TOKENS = r"director|directeur|directrice|head of|dsi|daf|drh|dcg"


def _words(alternation: str) -> re.Pattern[str]:
    return re.compile(rf"\b(?:{alternation})\b")


# Highest first: the first hit is the answer.
_LEVEL_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("c_level", _words(_C_LEVEL_TOKENS)),
    ("vp", _words(_VP_TOKENS)),
    ("director", _words(_DIRECTOR_TOKENS)),
)

# "Assistant Vice President" / "Assistant Director" are ranks (AVP is a VP grade),
# not support roles; "Assistant to the Director" still is one.
_DEMOTE = re.compile(
    r"\b(?:assistant(?! (?:vice ?president|vp|director)\b)|assistante|secretary|secretaire"
    r"|intern|stagiaire|alternante?|apprentie?)\b"
    # A former-marker opening a title makes it all the past: "Ex-CEO" was. One further on
    # opens a past job, which _pre_normalize has already removed (see _PAST_JOB).
    r"|^(?:former|ex|retired|ancien(?:ne)?)\b"
)

_PREPOSITION = r"(?:to|for|of|aupres de|aupres du|du|de|des|au|aux|a)"
# Jobs done for somebody, who may be named straight after them: "Chief of Staff, CEO",
# "Chargé de mission DG" (normalization has dropped the comma).
_STAFF = r"(?:chief of staff|chef de cabinet|chargee? de mission)"
# "CEO Office Manager" works in the CEO's office; "CEO, Office Depot" is still the CEO, so
# only these words (or the end of the title) may follow "office".
_OFFICE_JOB = (
    r"(?:manager|coordinator|administrator|assistant|associate|analyst|lead|head|director"
    r"|chief|staff|team|operations)"
)
_POSSESSIVE = "'s"
"""How _pre_normalize writes an English possessive: normalize() never leaves an apostrophe,
so the mark cannot come from the title's own words."""
_ARTICLE = r"(?:the|la|le|les|l)"
# Adjectives that may sit between the article and the person referred to:
# "Advisor to the Group CEO", "Chief of Staff to the Executive Vice President".
_MODIFIER = r"(?:group|groupe|global|company|deputy|acting|interim|senior|executive|regional|new)"


def _reference_pattern(tokens: str) -> re.Pattern[str]:
    """Level words (chained by &/and/et) that name somebody else, in one of four forms.

    * A preposition and an optional article before them ("to the CEO", "du PDG"). The
      preposition is kept (group "lead") so that removing the person leaves phrases like
      "head of" intact: "Head of the CEO Office" is still a director.
    * A job done for somebody just before them ("Chief of Staff, CEO"); the job is kept.
    * A possessive after them ("CEO's Chief of Staff"): the job after it decides.
    * "office" after them, ending the title or followed by a job ("CEO Office Manager").

    Words joined by a bare space are not chained on purpose: after normalization "Advisor to
    the CEO, President of X" has lost its comma, and X's president should keep the title.
    """
    item = rf"(?:{_MODIFIER} ){{0,2}}(?:{tokens})\b"
    chain = rf"{item}(?: (?:&|and|et) (?:{_ARTICLE} )?{item})*"
    return re.compile(
        rf"\b(?P<lead>(?:{_PREPOSITION}|{_STAFF}) (?:{_ARTICLE} )?){chain}"
        rf"|\b{chain} {_POSSESSIVE}(?= |$)"
        rf"|\b{chain}(?= office(?: {_OFFICE_JOB}\b|$))"
    )


_ALL_LEVEL_TOKENS = f"{_C_LEVEL_TOKENS}|{_VP_TOKENS}|{_DIRECTOR_TOKENS}"
_REFERENCE = _reference_pattern(_ALL_LEVEL_TOKENS)


def _strip_references(norm: str, pattern: re.Pattern[str]) -> str:
    # Re-collapse spaces so multi-word rules ("vice president") still see one space, and
    # turn a possessive left standing ("Women's") back into what normalize() makes of it.
    text = pattern.sub(r"\g<lead>", norm).replace(_POSSESSIVE, "s")
    return " ".join(text.split())


_APOSTROPHE_S = re.compile(r"['’]s\b", re.IGNORECASE)

# A former-marker after the first word opens a past job, which runs to the next comma,
# bracket, bar, slash or spaced dash: "VP Sales, ex-CEO of Foo" is a VP today, "CEO
# (ex-intern)" a CEO. Removing what follows a marker even when it is no job ("ex-Google")
# changes nothing, since an employer's name carries no level. A marker opening the title
# is left to _DEMOTE: the whole title is then the past. A marker glued to the word before
# by a slash or "&" is no marker: "CX/EX Director" (employee experience) is a director.
_PAST_JOB = re.compile(
    r"(?<=\w)(?![/&+]\w)(?P<gap>\W+?)\b(?:former(?:ly)?|ex|retired|previously|ancien(?:ne|nement)?)\b"
    r".*?(?=\s[-–—]\s|[,;()\[\]|/·]|$)",
    re.IGNORECASE,
)


def _pre_normalize(title: str) -> str:
    # A slash or plus between roles means "and"; keeping it as "&" lets reference phrases
    # chain through it ("to the Founder/CEO") while normalize() itself stays as specified.
    title = _PAST_JOB.sub(r"\g<gap>", title).replace("/", " & ").replace("+", " & ")
    # normalize() would make "CEO's" the "ceo s" of "Directeur S.I.", so the possessive is
    # marked first, outside the words normalize() can produce.
    parts = (normalize(part) for part in _APOSTROPHE_S.split(title))
    return " ".join(f" {_POSSESSIVE} ".join(parts).split())


def _match_level(text: str) -> str | None:
    for level, pattern in _LEVEL_PATTERNS:
        if pattern.search(text):
            return level
    return None


@lru_cache(maxsize=4096)
def _builtin(title: str) -> tuple[str, str | None, bool]:
    """(normalized title, possessives marked; built-in level ignoring demotion; demoted?)."""
    norm = _pre_normalize(title)
    text = _strip_references(norm, _REFERENCE)
    return norm, _match_level(text), _DEMOTE.search(text) is not None


# --- Admin-supplied phrases. ---

_ExtraKey = tuple[tuple[str, tuple[str, ...]], ...]


class _Extra(NamedTuple):
    any_phrase: re.Pattern[str]  # cheap pre-check, and what gets blanked before demotion
    references: re.Pattern[str]  # built-in and extra words as references to someone else
    by_level: tuple[tuple[str, re.Pattern[str]], ...]  # highest level first


def _phrase_alternation(phrases: Sequence[str]) -> str:
    # Longest first so a phrase is never shadowed by one of its own prefixes.
    escaped = (re.escape(p) for p in sorted(phrases, key=len, reverse=True))
    # Not \b: a phrase may begin or end with "&", where \b means the opposite.
    return rf"(?<![a-z0-9])(?:{'|'.join(escaped)})(?![a-z0-9])"


@lru_cache(maxsize=64)
def _compile_extra(key: _ExtraKey) -> _Extra | None:
    by_level: dict[str, list[str]] = {}
    for level, phrases in key:
        if level not in _RANK:
            raise ValueError(
                f"unknown seniority level {level!r} in extra; expected one of {LEVELS}"
            )
        by_level.setdefault(level, []).extend(n for p in phrases if (n := normalize(p)))
    everything = [p for phrases in by_level.values() for p in phrases]
    if not everything:
        return None
    any_phrase = _phrase_alternation(everything)
    return _Extra(
        any_phrase=re.compile(any_phrase),
        references=_reference_pattern(f"{_ALL_LEVEL_TOKENS}|{any_phrase}"),
        by_level=tuple(
            (level, re.compile(_phrase_alternation(by_level[level])))
            for level in reversed(LEVELS)
            if by_level.get(level)
        ),
    )


def _extra_key(extra: Mapping[str, Sequence[str]]) -> _ExtraKey:
    # A bare string is a Sequence[str] too; treat it as one phrase, not as its letters.
    return tuple(
        (level, (phrases,) if isinstance(phrases, str) else tuple(phrases))
        for level, phrases in extra.items()
    )


def _with_extra(norm: str, builtin_level: str | None, compiled: _Extra) -> str | None:
    text = _strip_references(norm, compiled.references)
    extra_level = next(
        (level for level, pattern in compiled.by_level if pattern.search(text)), None
    )
    if _DEMOTE.search(compiled.any_phrase.sub(" ", text)):
        return None
    if level_rank(extra_level) > level_rank(builtin_level):
        return extra_level
    return builtin_level


def seniority(title: str | None, extra: Mapping[str, Sequence[str]] | None = None) -> str | None:
    """Highest of "c_level" / "vp" / "director" the title reaches, or None.

    ``extra`` maps a level in LEVELS to literal phrases an admin added; it can raise the
    result, never lower it. An unknown level in ``extra`` raises ValueError, even for an
    empty title, so a bad configuration fails on the first call rather than the first
    matching contact.
    """
    compiled = _compile_extra(_extra_key(extra)) if extra else None
    if not title:
        return None
    norm, level, demoted = _builtin(title)
    if compiled is not None and compiled.any_phrase.search(norm):
        return _with_extra(norm, level, compiled)
    return None if demoted else level
