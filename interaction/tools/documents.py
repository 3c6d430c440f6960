"""The default document collection the search tool indexes: the reasoner's "web", written by the project.

Two kinds of article, all deterministic for a seed:
- one per subject of the knowledge base, stating its facts in prose (so search and the knowledge base agree);
- gazetteer articles about invented places and things (lighthouses, rivers, bridges, festivals, ships,
  beetles), each holding one fact that a question can ask and no other source knows, so a right answer
  shows that the reasoner searched and read.

`search_questions` gives the (question, document id, answer) of every gazetteer article; `unanswerable`
gives questions about subjects no document mentions, whose honest answer is "not found".
"""
from __future__ import annotations

import dataclasses
import random
import re
from collections import defaultdict

from interaction.tools import knowledge


@dataclasses.dataclass(frozen=True)
class Document:
    id: str  # lower-case letters, digits and hyphens
    title: str
    body: str


@dataclasses.dataclass(frozen=True)
class SearchQuestion:
    question: str
    doc_id: str
    answer: str  # the fact as it is spoken in an answer


_ONSETS = ("b", "br", "c", "d", "dr", "f", "g", "h", "k", "l", "m", "n", "p", "r", "s", "st", "t", "th", "v", "w")
_VOWELS = ("a", "e", "i", "o", "u", "ae", "ea", "ou")
_CODAS = ("", "n", "r", "l", "s", "th", "m", "ck", "nd", "rn")
_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
           "November", "December")
_GIVEN = ("Ada", "Bram", "Clara", "Dorian", "Edith", "Felix", "Greta", "Hugo", "Ines", "Jonas", "Lena", "Milo",
          "Nora", "Oskar", "Petra", "Rufus", "Selma", "Tobias", "Vera", "Wilhelm")
_PLANTS = ("oak leaves", "willow bark", "nettles", "clover", "pine needles", "heather", "fallen apples",
           "birch sap", "thistles", "moss")
_SHIP_KINDS = ("schooner", "steamship", "paddle steamer", "clipper", "ferry", "research vessel")


def _name(rng: random.Random, syllables: int = 2) -> str:
    return "".join(rng.choice(_ONSETS) + rng.choice(_VOWELS) + rng.choice(_CODAS) for _ in range(syllables)).title()


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


# Each gazetteer kind: (title, body sentences, question, answer) from a name, a place and a random source.
def _lighthouse(n, place, rng):
    year = rng.randrange(1790, 1930)
    return (f"{n} Lighthouse", [f"The {n} Lighthouse stands on the rocks north of {place}.",
                                f"It was first lit in {year} and was worked by keepers until automation.",
                                f"Its lamp shows two white flashes every {rng.randrange(5, 30)} seconds."],
            f"When was the {n} Lighthouse first lit?", str(year))


def _river(n, place, rng):
    km = rng.randrange(40, 900)
    return (f"{n} River", [f"The {n} River rises in the hills above {place}.",
                           f"It is {km} kilometres long and reaches the sea through a wide estuary.",
                           "Its lower reaches are known for salmon and wading birds."],
            f"How long is the {n} River?", f"{km} kilometres")


def _bridge(n, place, rng):
    engineer = f"{rng.choice(_GIVEN)} {_name(rng)}"
    return (f"{n} Bridge", [f"The {n} Bridge carries the old road across the gorge at {place}.",
                            f"It was designed by the engineer {engineer}.",
                            f"Its main arch spans {rng.randrange(30, 300)} metres."],
            f"Who designed the {n} Bridge?", engineer)


def _festival(n, place, rng):
    month = rng.choice(_MONTHS)
    return (f"{n} Festival", [f"The {n} Festival is a gathering of music and lanterns in {place}.",
                              f"It is held every year in {month}.",
                              "Visitors walk the old town with paper lamps after dark."],
            f"In which month is the {n} Festival held?", month)


def _ship(n, place, rng):
    year = rng.randrange(1820, 1990)
    kind = rng.choice(_SHIP_KINDS)
    return (f"{n} (ship)", [f"The {n} was a {kind} built in the yards of {place}.",
                            f"She was launched in {year}.",
                            "She is remembered in a song sung along the coast."],
            f"In what year was the ship {n} launched?", str(year))


def _beetle(n, place, rng):
    plant = rng.choice(_PLANTS)
    return (f"{n} beetle", [f"The {n} beetle is a small insect first described near {place}.",
                            f"It feeds on {plant}.",
                            f"Its wing cases are {rng.choice(('green', 'bronze', 'black'))} with faint stripes."],
            f"What does the {n} beetle feed on?", plant)


_KINDS = (_lighthouse, _river, _bridge, _festival, _ship, _beetle)

# How each gazetteer question is read: (question pattern naming the subject, the sentence of its article that
# holds the answer, the spoken answer), as the rule-based reasoner reads it (`rules.search_and_read`).
READERS = (
    (r"When was the (\w+) Lighthouse first lit\?", r"first lit in (\d+)", "It was first lit in {}."),
    (r"How long is the (\w+) River\?", r"It is (\d+ kilometres) long", "It is {} long."),
    (r"Who designed the (\w+) Bridge\?", r"designed by the engineer ([^.]+)\.", "It was designed by {}."),
    (r"In which month is the (\w+) Festival held\?", r"held every year in (\w+)", "It is held in {}."),
    (r"In what year was the ship (\w+) launched\?", r"launched in (\d+)", "She was launched in {}."),
    (r"What does the (\w+) beetle feed on\?", r"feeds on ([^.]+)\.", "It feeds on {}."),
)
NOT_FOUND = "I could not find anything about {} in the documents."


def read_question(question: str) -> tuple[str, str, str] | None:
    """(subject name, answer pattern, spoken template) for a question of a gazetteer form; None otherwise."""
    for asked, holds, template in READERS:
        if m := re.fullmatch(asked, " ".join(question.split()), re.IGNORECASE):
            return m.group(1), holds, template
    return None


def _knowledge_articles() -> list[Document]:
    by_subject: dict[str, list[knowledge.Fact]] = defaultdict(list)
    for fact in knowledge.FACTS:
        by_subject[fact.subject].append(fact)
    docs = []
    for subject, facts in by_subject.items():
        sentences = [f"The {f.relation} of {subject} is {f.value}." for f in facts]
        title = subject[4:].capitalize() if subject.startswith("the ") else subject[0].upper() + subject[1:]
        docs.append(Document(f"kb-{_slug(subject)}", title, " ".join(sentences)))
    return docs


def gazetteer(seed: int, count: int) -> tuple[list[Document], list[SearchQuestion]]:
    """`count` articles about invented subjects, and the one question each answers."""
    rng = random.Random(seed)
    places = sorted({_name(rng) for _ in range(60)})
    docs, questions, used = [], [], set()
    while len(docs) < count:
        kind = _KINDS[len(docs) % len(_KINDS)]
        name = _name(rng, rng.choice((2, 2, 3)))
        if name in used:
            continue
        used.add(name)
        title, sentences, question, answer = kind(name, rng.choice(places), rng)
        doc_id = f"g-{_slug(title)}"
        docs.append(Document(doc_id, title, " ".join(sentences)))
        questions.append(SearchQuestion(question, doc_id, answer))
    return docs, questions


def default_collection(seed: int = 0, count: int = 360) -> list[Document]:
    """The knowledge base's articles and `count` gazetteer articles."""
    return _knowledge_articles() + gazetteer(seed, count)[0]


def search_questions(seed: int = 0, count: int = 360) -> list[SearchQuestion]:
    """One question per gazetteer article of `default_collection(seed, count)`, answered by that article."""
    return gazetteer(seed, count)[1]


def unanswerable(seed: int = 0, count: int = 360, n: int = 20) -> list[str]:
    """Questions in the gazetteer's forms about names that no document of the collection mentions."""
    known = " ".join(f"{d.title} {d.body}" for d in default_collection(seed, count)).lower()
    rng, out = random.Random(seed + 1), []
    while len(out) < n:
        name = _name(rng, 3)
        if name.lower() not in known:
            question = _KINDS[len(out) % len(_KINDS)](name, "nowhere", rng)[2]
            out.append(question)
    return out
