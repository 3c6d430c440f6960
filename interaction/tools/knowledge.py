"""A small local knowledge base of stable facts, answered from flexible English queries.

Only facts that do not drift with time are kept (no populations, no leaders, no record holders).
A query matches a fact when it names the fact's subject (or an alias) and its relation (or an alias)
as whole words in any order, so "capital of Peru", "Peru capital" and "What is the capital of Peru?"
all answer "Lima". Where several facts match, the one with the longest subject name wins.
"""
from __future__ import annotations

import dataclasses
import re
import unicodedata
from collections.abc import Iterable, Mapping

from interaction.tools.errors import ToolError


@dataclasses.dataclass(frozen=True)
class Fact:
    subject: str
    relation: str
    value: str
    question: str  # a natural question whose answer is `value`


def _capital(country: str, city: str) -> Fact:
    return Fact(country, "capital", city, f"What is the capital of {country}?")


def _symbol(element: str, symbol: str) -> Fact:
    return Fact(element, "chemical symbol", symbol, f"What is the chemical symbol for {element.lower()}?")


def _mountain(region: str, mountain: str) -> Fact:
    return Fact(region, "highest mountain", mountain, f"What is the highest mountain in {region}?")


def _author(title: str, author: str) -> Fact:
    return Fact(title, "author", author, f"Who wrote {title}?")


def _year(event: str, year: int, question: str) -> Fact:
    return Fact(event, "year", str(year), question)


FACTS: tuple[Fact, ...] = (
    _capital("France", "Paris"),
    _capital("Germany", "Berlin"),
    _capital("Italy", "Rome"),
    _capital("Spain", "Madrid"),
    _capital("Portugal", "Lisbon"),
    _capital("the United Kingdom", "London"),
    _capital("Ireland", "Dublin"),
    _capital("Norway", "Oslo"),
    _capital("Sweden", "Stockholm"),
    _capital("Finland", "Helsinki"),
    _capital("Denmark", "Copenhagen"),
    _capital("Poland", "Warsaw"),
    _capital("Austria", "Vienna"),
    _capital("Greece", "Athens"),
    _capital("Hungary", "Budapest"),
    _capital("the Czech Republic", "Prague"),
    _capital("Russia", "Moscow"),
    _capital("Turkey", "Ankara"),
    _capital("Iran", "Tehran"),
    _capital("Saudi Arabia", "Riyadh"),
    _capital("Japan", "Tokyo"),
    _capital("China", "Beijing"),
    _capital("India", "New Delhi"),
    _capital("South Korea", "Seoul"),
    _capital("Thailand", "Bangkok"),
    _capital("Vietnam", "Hanoi"),
    _capital("the Philippines", "Manila"),
    _capital("Australia", "Canberra"),
    _capital("New Zealand", "Wellington"),
    _capital("Canada", "Ottawa"),
    _capital("the United States", "Washington, D.C."),
    _capital("Mexico", "Mexico City"),
    _capital("Brazil", "Brasília"),
    _capital("Argentina", "Buenos Aires"),
    _capital("Peru", "Lima"),
    _capital("Chile", "Santiago"),
    _capital("Colombia", "Bogotá"),
    _capital("Kenya", "Nairobi"),
    _capital("Nigeria", "Abuja"),
    _capital("Ethiopia", "Addis Ababa"),
    _capital("Morocco", "Rabat"),
    _capital("Ghana", "Accra"),
    _symbol("Hydrogen", "H"),
    _symbol("Helium", "He"),
    _symbol("Carbon", "C"),
    _symbol("Nitrogen", "N"),
    _symbol("Oxygen", "O"),
    _symbol("Sodium", "Na"),
    _symbol("Magnesium", "Mg"),
    _symbol("Aluminium", "Al"),
    _symbol("Silicon", "Si"),
    _symbol("Chlorine", "Cl"),
    _symbol("Potassium", "K"),
    _symbol("Calcium", "Ca"),
    _symbol("Iron", "Fe"),
    _symbol("Copper", "Cu"),
    _symbol("Silver", "Ag"),
    _symbol("Gold", "Au"),
    _symbol("Tin", "Sn"),
    _symbol("Lead", "Pb"),
    _symbol("Mercury", "Hg"),
    _mountain("Asia", "Mount Everest"),
    _mountain("Africa", "Mount Kilimanjaro"),
    _mountain("North America", "Denali"),
    _mountain("South America", "Aconcagua"),
    _mountain("Antarctica", "Mount Vinson"),
    Fact("Earth", "highest mountain", "Mount Everest", "What is the highest mountain on Earth?"),
    _author("Pride and Prejudice", "Jane Austen"),
    _author("Moby-Dick", "Herman Melville"),
    _author("War and Peace", "Leo Tolstoy"),
    _author("Anna Karenina", "Leo Tolstoy"),
    _author("Don Quixote", "Miguel de Cervantes"),
    _author("Hamlet", "William Shakespeare"),
    _author("Nineteen Eighty-Four", "George Orwell"),
    _author("The Great Gatsby", "F. Scott Fitzgerald"),
    _author("Crime and Punishment", "Fyodor Dostoevsky"),
    _author("Frankenstein", "Mary Shelley"),
    _author("Jane Eyre", "Charlotte Brontë"),
    _author("Les Misérables", "Victor Hugo"),
    _author("Dracula", "Bram Stoker"),
    _author("A Tale of Two Cities", "Charles Dickens"),
    _year("Battle of Hastings", 1066, "In what year was the Battle of Hastings?"),
    _year("Magna Carta", 1215, "In what year was the Magna Carta sealed?"),
    _year("Declaration of Independence", 1776, "In what year was the US Declaration of Independence adopted?"),
    _year("storming of the Bastille", 1789, "In what year was the storming of the Bastille?"),
    _year("Battle of Waterloo", 1815, "In what year was the Battle of Waterloo?"),
    _year("Wright brothers' first flight", 1903, "In what year was the Wright brothers' first flight?"),
    _year("sinking of the Titanic", 1912, "In what year did the sinking of the Titanic happen?"),
    _year("launch of Sputnik 1", 1957, "In what year was the launch of Sputnik 1?"),
    _year("first Moon landing", 1969, "In what year was the first Moon landing?"),
    _year("Chernobyl disaster", 1986, "In what year was the Chernobyl disaster?"),
    _year("fall of the Berlin Wall", 1989, "In what year was the fall of the Berlin Wall?"),
    Fact("World War I", "start year", "1914", "In what year did World War I start?"),
    Fact("World War II", "end year", "1945", "In what year did World War II end?"),
    Fact("light", "speed", "299,792,458 m/s", "What is the speed of light in a vacuum?"),
    Fact("water", "boiling point", "100 °C", "What is the boiling point of water at sea level?"),
    Fact("water", "freezing point", "0 °C", "What is the freezing point of water at sea level?"),
    Fact("water", "chemical formula", "H2O", "What is the chemical formula of water?"),
    Fact("adult human body", "number of bones", "206", "How many bones are in the adult human body?"),
    Fact("Earth", "largest ocean", "the Pacific Ocean", "What is the largest ocean on Earth?"),
    Fact("Solar System", "largest planet", "Jupiter", "What is the largest planet in the Solar System?"),
)

SUBJECT_ALIASES: dict[str, tuple[str, ...]] = {
    "the United Kingdom": ("UK", "Britain", "Great Britain", "England"),
    "the United States": ("USA", "US", "U.S.", "United States of America", "America"),
    "the Czech Republic": ("Czechia",),
    "Turkey": ("Türkiye",),
    "Aluminium": ("aluminum",),
    "Nineteen Eighty-Four": ("1984",),
    "Earth": ("world",),
    "adult human body": ("human body", "adult human", "human", "human skeleton"),
    "first Moon landing": ("Moon landing", "Apollo 11"),
    "launch of Sputnik 1": ("Sputnik 1", "Sputnik"),
    "sinking of the Titanic": ("Titanic",),
    "fall of the Berlin Wall": ("Berlin Wall",),
    "storming of the Bastille": ("Bastille",),
    "Wright brothers' first flight": ("Wright brothers",),
    "Declaration of Independence": ("US Declaration of Independence",),
    "World War I": ("World War 1", "WW1", "WWI", "First World War"),
    "World War II": ("World War 2", "WW2", "WWII", "Second World War"),
}

RELATION_ALIASES: dict[str, tuple[str, ...]] = {
    "capital": ("capital", "capital city"),
    "chemical symbol": ("chemical symbol", "symbol", "element symbol"),
    "highest mountain": ("highest mountain", "tallest mountain", "highest peak", "tallest peak"),
    "author": ("author", "wrote", "written", "writer"),
    "year": ("year", "when"),
    "start year": ("start", "started", "begin", "began", "outbreak"),
    "end year": ("end", "ended", "over"),
    "speed": ("speed", "how fast"),
    "boiling point": ("boiling point", "boil", "boils"),
    "freezing point": ("freezing point", "freeze", "freezes"),
    "chemical formula": ("chemical formula", "formula"),
    "number of bones": ("number of bones", "bones"),
    "largest ocean": ("largest ocean", "biggest ocean"),
    "largest planet": ("largest planet", "biggest planet"),
}

_ARTICLES = frozenset({"the", "a", "an"})

Phrase = tuple[str, ...]


def _words(text: str) -> Phrase:
    """Lower-case words without accents, punctuation or articles: 'the Wright brothers'' -> (wright, brothers)."""
    plain = "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))
    return tuple(word for word in re.findall(r"[a-z0-9]+", plain.lower()) if word not in _ARTICLES)


def _contains(words: Phrase, phrase: Phrase) -> bool:
    return any(words[i:i + len(phrase)] == phrase for i in range(len(words) - len(phrase) + 1))


class KnowledgeBase:
    """Looks facts up from queries that name a subject and a relation in any phrasing."""

    def __init__(self, facts: Iterable[Fact],
                 subject_aliases: Mapping[str, tuple[str, ...]] = SUBJECT_ALIASES,
                 relation_aliases: Mapping[str, tuple[str, ...]] = RELATION_ALIASES):
        self.facts = tuple(facts)
        self._index = [
            (tuple(_words(name) for name in (fact.subject, *subject_aliases.get(fact.subject, ()))),
             tuple(_words(name) for name in relation_aliases.get(fact.relation, (fact.relation,))),
             fact)
            for fact in self.facts
        ]

    def lookup(self, query: str) -> str:
        """The value of the one fact the query names; raises ToolError when none or several match."""
        words = _words(query)
        best, answers = 0, set()
        for subjects, relations, fact in self._index:
            if not any(_contains(words, relation) for relation in relations):
                continue
            length = max((len(subject) for subject in subjects if _contains(words, subject)), default=0)
            if length > best:
                best, answers = length, {fact.value}
            elif length == best and length:
                answers.add(fact.value)
        if not answers:
            raise ToolError(f"no entry for {query.strip()!r}")
        if len(answers) > 1:
            raise ToolError(f"ambiguous query {query.strip()!r}: it matches {', '.join(sorted(answers))}")
        return answers.pop()


KNOWLEDGE_BASE = KnowledgeBase(FACTS)
