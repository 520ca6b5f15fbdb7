import pytest

from engine.titles import LEVELS, level_rank, normalize, seniority

C, VP, DIR, NONE = "c_level", "vp", "director", None

TITLES: list[tuple[str, str | None]] = [
    # --- c_level: CxO acronyms ---
    ("CEO", C),
    ("ceo", C),
    ("CFO", C),
    ("COO", C),
    ("CTO", C),
    ("CIO", C),
    ("CMO", C),
    ("CRO", C),
    ("CHRO", C),
    ("CISO", C),
    ("CDAO", C),
    ("Group CEO", C),
    ("CEO & Founder", C),
    ("Co-Founder & CEO", C),
    ("Founder/CEO", C),
    ("CEO, Acme France", C),
    ("Deputy CEO", C),
    # --- c_level: Chief ... Officer ---
    ("Chief Executive Officer", C),
    ("Chief Revenue Officer", C),
    ("Chief Information Security Officer", C),
    ("Chief Diversity & Inclusion Officer", C),
    ("Chief Product and Technology Officer", C),
    ("chief operating officer (COO)", C),
    ("Chief Executive", C),
    ("Chief Technology Officer & Co-founder", C),
    # --- c_level: founders ---
    ("Founder", C),
    ("Co-Founder", C),
    ("Cofounder", C),
    ("co founder", C),
    ("Fondateur", C),
    ("Fondatrice", C),
    ("Cofondateur", C),
    ("Co-fondatrice", C),
    ("Fondateur & Président", C),
    # --- c_level: presidents and chairs ---
    ("President", C),
    ("Président", C),
    ("Présidente", C),
    ("President of the Board", C),
    ("Président du Directoire", C),
    ("Présidente du Conseil d'Administration", C),
    ("Chairman", C),
    ("Chairman of the Board", C),
    ("Chairwoman", C),
    ("Chairperson", C),
    ("Chair of the Board", C),
    # --- c_level: French general management ---
    ("PDG", C),
    ("pdg", C),
    ("P-DG", C),
    ("DG", C),
    ("DG adjoint", C),
    ("Président-directeur général", C),
    ("President Directeur General", C),
    ("Présidente-Directrice Générale", C),
    ("Directeur Général", C),
    ("Directrice Générale", C),
    ("DIRECTRICE GÉNÉRALE", C),
    ("directrice generale", C),
    ("Directeur Général Délégué", C),
    ("Directeur général adjoint", C),
    ("Directrice Générale Adjointe en charge des Finances", C),
    # --- vp ---
    ("VP", VP),
    ("VP, Sales", VP),
    ("VP of Sales", VP),
    ("vp engineering", VP),
    ("V.P. Marketing", VP),
    ("C.E.O.", C),
    ("C.F.O. & co-founder", C),
    ("C-T-O", C),
    ("P.-D.G.", C),
    ("Assistante du P.D.G.", None),
    ("Vice President", VP),
    ("Vice-President", VP),
    ("Vice President, Sales", VP),
    ("Vicepresident Operations", VP),
    ("Vice-Président", VP),
    ("Vice-Présidente Ventes EMEA", VP),
    ("vice presidente ventes", VP),
    ("Vice Président Exécutif", VP),
    ("Senior Vice President", VP),
    ("Executive Vice President, Finance", VP),
    ("Regional Vice President", VP),
    ("Associate Vice President", VP),
    ("Assistant Vice President", VP),
    ("SVP Global Sales", VP),
    ("EVP & General Counsel", VP),
    ("AVP, Claims", VP),
    ("RVP West", VP),
    ("GVP Cloud", VP),
    ("Vice President to the CEO", VP),
    ("Vice-Président du Conseil", VP),
    ("Vice Chairman", VP),
    # --- director ---
    ("Director", DIR),
    ("Sr. Director", DIR),
    ("Senior Director, Procurement", DIR),
    ("Associate Director", DIR),
    ("Assistant Director of Admissions", DIR),
    ("Executive Director", DIR),
    ("Managing Director", DIR),
    ("Director of Engineering", DIR),
    ("Art Director", DIR),
    ("Non-Executive Director", DIR),
    ("DSI", DIR),
    ("DSI adjoint", DIR),
    ("DAF", DIR),
    ("DAF Groupe", DIR),
    ("DRH France", DIR),
    ("DCG", DIR),
    ("Assistante du DAF", NONE),
    ("Chef de projet auprès du DSI", NONE),
    ("IT Director", DIR),
    ("Head of IT", DIR),
    ("Head of Sales", DIR),
    ("head of R&D", DIR),
    ("Global Head of Procurement", DIR),
    ("Head of the CEO Office", DIR),
    ("Directeur", DIR),
    ("Directeur Commercial", DIR),
    ("Directeur des Achats", DIR),
    ("Directeur Administratif et Financier", DIR),
    ("Directrice Marketing & Communication", DIR),
    ("directrice des ressources humaines", DIR),
    ("Directeur de cabinet du Président", DIR),
    ("Directeur Associé", DIR),
    ("Directeur d'usine", DIR),
    ("Director, Office of the CFO", DIR),
    # --- None: not senior enough, or not a level at all ---
    ("Chief of Staff", NONE),
    ("Chief Architect", NONE),
    ("Chief of Police", NONE),
    ("Product Owner", NONE),
    ("Project Manager", NONE),
    ("Chef de projet", NONE),
    ("Responsable commercial", NONE),
    ("Account Executive", NONE),
    ("Sales Manager", NONE),
    ("General Manager", NONE),
    ("Founding Engineer", NONE),
    ("Directory Services Engineer", NONE),
    ("Board Member", NONE),
    ("Membre du Directoire", NONE),
    ("Member of the Board of Directors", NONE),
    ("Partner", NONE),
    ("Gérant", NONE),
    ("Managing Partner", NONE),
    ("Executive", NONE),
    ("Head Chef", NONE),
    ("Vice Principal", NONE),
    ("Direction des achats", NONE),
    ("Office Manager", NONE),
    ("Procurement Specialist", NONE),
    ("Cargo Coordinator", NONE),
    ("Cosmo Editor", NONE),
    ("Software Engineer", NONE),
    ("Ingénieur commercial", NONE),
    # --- None: support roles and trainees ---
    ("Executive Assistant to the CEO", NONE),
    ("Executive Assistant", NONE),
    ("Assistant to the Director", NONE),
    ("Assistante de direction", NONE),
    ("Assistant de Direction", NONE),
    ("Secrétaire du PDG", NONE),
    ("Secretary to the Chairman", NONE),
    ("Marketing Intern", NONE),
    ("Stagiaire Direction Financière", NONE),
    ("Alternant Contrôle de gestion", NONE),
    ("Apprentie RH", NONE),
    # --- None: references to someone else ---
    ("Office of the CEO", NONE),
    ("Advisor to the President", NONE),
    ("Chargée de mission auprès du PDG", NONE),
    ("Conseiller spécial du Président", NONE),
    ("Chef de cabinet du DG", NONE),
    ("Adjoint au Directeur Général", NONE),
    ("Conseiller du Président-Directeur Général", NONE),
    ("Conseillère de la Présidente-Directrice Générale", NONE),
    ("Chief of Staff to the CEO", NONE),
    ("Chief of Staff to the Founder & CEO", NONE),
    ("Chief of Staff to the Founder/CEO", NONE),
    ("Chief of Staff, Office of the Chief Operating Officer", NONE),
    ("Advisor to the Group CEO", NONE),
    ("Advisor to the Vice President", NONE),
    ("Rattachée à la Présidente", NONE),
    # --- None: someone else's, written possessively or named after the job ---
    ("CEO's Chief of Staff", NONE),
    ("The CEO’s Chief of Staff", NONE),
    ("Founder & CEO's Chief of Staff", NONE),
    ("Group CEO's Executive Assistant", NONE),
    ("CEO's Office", NONE),
    ("CEO'S OFFICE MANAGER", NONE),
    ("VP Sales, CEO's Office", VP),
    ("Director, CEO's Office", DIR),
    ("Women's Health Director", DIR),
    ("Chief of Staff, CEO", NONE),
    ("Chief of Staff - CEO Office", NONE),
    ("Chief of Staff, VP Operations", NONE),
    ("Chief of Staff & CFO", C),
    ("CEO Office Manager", NONE),
    ("CEO Office", NONE),
    ("CFO Office Director", DIR),
    ("CEO, Office Depot France", C),
    ("Chargé de mission DG", NONE),
    ("Chargée de mission Président", NONE),
    ("Chef de cabinet PDG", NONE),
    # --- None: former roles ---
    ("Former CEO", NONE),
    ("Ancien DG", NONE),
    ("Ex-DG", NONE),
    ("Retired Vice President", NONE),
    ("Ancienne Directrice Générale", NONE),
    # --- a former-marker later in the title is about the past employer, not the role ---
    ("VP Sales (ex-Google)", "vp"),
    ("Head of Growth, ex Criteo", "director"),
    # --- a past job later in the title is gone: today's job decides ---
    ("Head of Sales (former CEO)", DIR),
    ("VP Sales, ex-CEO of Foo", VP),
    ("VP Sales, Ex CEO, Board Advisor", VP),
    ("Directeur commercial, ancien PDG de X", DIR),
    ("Directrice marketing (ancienne DG)", DIR),
    ("Advisor, previously Founder & CEO of Foo", NONE),
    ("Account Executive | Formerly VP Sales", NONE),
    ("Board Advisor (retired CEO)", NONE),
    ("Founder & CEO (former Executive Assistant)", C),
    ("CEO (ex-intern)", C),
    ("Directeur Général, ancien stagiaire", C),
    ("Founder/ex-CEO", C),
    ("VP Sales (ex-CEO) & Founder", C),
    ("CX/EX Director", DIR),
    ("Technicien CAO", NONE),
]


@pytest.mark.parametrize(("title", "expected"), [pytest.param(t, e, id=t) for t, e in TITLES])
def test_builtin_titles(title: str, expected: str | None) -> None:
    assert seniority(title) == expected


def test_table_is_large_and_has_no_duplicates() -> None:
    assert len(TITLES) >= 100
    titles = [t for t, _ in TITLES]
    assert len(titles) == len(set(titles))


@pytest.mark.parametrize("title", [None, "", "   ", "---", "()"])
def test_missing_or_blank_title_is_none(title: str | None) -> None:
    assert seniority(title) is None


@pytest.mark.parametrize(
    "title",
    ["DIRECTRICE GÉNÉRALE", "directrice generale", "Directrice générale", "dIrEcTrIcE gEnErAlE"],
)
def test_case_and_accent_insensitive(title: str) -> None:
    assert seniority(title) == C


# --- extra phrases ---


def test_extra_adds_gerant_to_c_level() -> None:
    extra = {"c_level": ["Gérant"]}
    assert seniority("Gérant", extra) == C
    assert seniority("GERANT de la SARL Dupont", extra) == C
    assert seniority("gérante", extra) is None  # whole words only


def test_extra_adds_managing_partner_to_c_level() -> None:
    extra = {"c_level": ["Gérant", "Managing Partner"]}
    assert seniority("Managing Partner", extra) == C
    assert seniority("Managing Partner, EMEA", extra) == C
    assert seniority("Partner", extra) is None


def test_extra_lifts_managing_director() -> None:
    assert seniority("Managing Director") == DIR
    assert seniority("Managing Director", {"c_level": ["managing director"]}) == C


def test_extra_never_lowers_builtin_level() -> None:
    assert seniority("Managing Partner, VP", {"director": ["managing partner"]}) == VP
    assert seniority("CEO", {"director": ["ceo"]}) == C
    assert seniority("Vice President", {"director": ["vice president"]}) == VP


def test_extra_is_literal_not_regex() -> None:
    extra = {"vp": ["V.P.+ (Ops)"]}  # normalizes to "v p ops"
    assert seniority("v p ops lead", {"director": ["a.c"]}) == VP
    assert seniority("Lead, V.P. Ops", extra) == VP
    assert seniority("abc", {"director": ["a.c"]}) is None
    assert seniority("a c", {"director": ["a.c"]}) == DIR


def test_extra_single_string_is_one_phrase() -> None:
    assert seniority("Gérant", {"c_level": "Gérant"}) == C
    assert seniority("G", {"c_level": "Gérant"}) is None


def test_extra_reference_to_someone_else_does_not_count() -> None:
    extra = {"c_level": ["Gérant"]}
    assert seniority("Assistante du Gérant", extra) is None
    assert seniority("Conseiller du Gérant", extra) is None


def test_extra_possessive_reference_does_not_count() -> None:
    extra = {"c_level": ["Gérant"]}
    assert seniority("Gérant's Assistant", extra) is None
    assert seniority("Gérant's Chief of Staff", extra) is None
    assert seniority("Gérant, Dupont's", extra) == C


def test_extra_phrase_is_exempt_from_support_demotion() -> None:
    assert seniority("Secrétaire Général") is None
    extra = {"c_level": ["Secrétaire général"]}
    assert seniority("Secrétaire Général", extra) == C
    assert seniority("Ancien Secrétaire Général", extra) is None
    assert seniority("Secrétaire général, ex-DG", extra) == C  # ex- qualifies the DG part


def test_extra_absent_from_title_gives_builtin_result() -> None:
    extra = {"c_level": ["Maître de chai"]}
    for title, expected in TITLES:
        assert seniority(title, extra) == expected, title


def test_empty_extra_is_ignored() -> None:
    assert seniority("VP Sales", {}) == VP
    assert seniority("VP Sales", {"c_level": []}) == VP
    assert seniority("VP Sales", {"c_level": ["", "  ", "!!"]}) == VP


@pytest.mark.parametrize("bad", ["ceo", "C_LEVEL", "manager", ""])
def test_unknown_extra_level_raises(bad: str) -> None:
    with pytest.raises(ValueError, match="unknown seniority level"):
        seniority("CEO", {bad: ["Gérant"]})


def test_unknown_extra_level_raises_even_for_empty_title() -> None:
    with pytest.raises(ValueError):
        seniority(None, {"boss": ["Gérant"]})
    with pytest.raises(ValueError):
        seniority("CEO", {"c_level": ["Gérant"], "boss": []})


def test_same_extra_mapping_is_compiled_once() -> None:
    from engine import titles

    titles._compile_extra.cache_clear()
    extra = {"c_level": ["Gérant", "Managing Partner"], "director": ["DAF"]}
    for _ in range(50):
        seniority("DAF", extra)
        seniority("Gérant", dict(extra))
    info = titles._compile_extra.cache_info()
    assert info.misses == 1
    assert info.hits == 99


# --- normalize / level_rank ---


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Directrice Générale", "directrice generale"),
        ("  VP,   Sales  ", "vp sales"),
        ("Co-Founder & CEO", "co founder & ceo"),
        ("Sr. Director (EMEA)", "sr director emea"),
        ("Président-directeur général", "president directeur general"),
        ("Chargée de mission auprès du PDG", "chargee de mission aupres du pdg"),
        ("R&D / QA", "r&d qa"),
        ("Directeur d'usine", "directeur d usine"),
        ("Cœur de métier", "coeur de metier"),
        ("ÉTÉ\tÀ\nÇA", "ete a ca"),
        ("", ""),
        ("!!!", ""),
    ],
)
def test_normalize(raw: str, expected: str) -> None:
    assert normalize(raw) == expected


def test_level_rank_ordering() -> None:
    assert level_rank(None) == 0
    assert [level_rank(level) for level in LEVELS] == [1, 2, 3]
    assert level_rank("director") < level_rank("vp") < level_rank("c_level")
    assert LEVELS == ("director", "vp", "c_level")


def test_level_rank_unknown_raises() -> None:
    with pytest.raises(ValueError):
        level_rank("boss")
