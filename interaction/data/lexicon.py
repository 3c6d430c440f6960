"""The words the synthetic conversations are made of: templates and small phrase tables.

What the user says is written as a small grammar: `[a|b|c]` is a choice of phrasing, and a template's
forms are every combination of its choices (`forms`). The forms of every template are split, by a stable
hash, between training and the held-out split (`pick_phrasing`), so no held-out user utterance occurs
in training word for word: the held-out scores measure what the model learned to hear, not what it
remembers. Slots in braces are then filled from the pools below. Translation pairs are hand-checked
sentences, not machine output.
"""
from __future__ import annotations

import hashlib
import itertools
import re

import numpy as np

HELDOUT_SHARE = 5  # one form in this many is held out
_CHOICE = re.compile(r"\[([^\[\]]*)\]")

FILL = {
    "city": ["Lisbon", "Oslo", "Kyoto", "Lima", "Nairobi", "Toronto", "Vienna", "Dublin", "Seoul", "Perth"],
    "food": ["pasta", "soup", "curry", "pancakes", "salad", "dumplings", "rice", "bread"],
    "activity": ["running", "painting", "gardening", "swimming", "reading", "cycling", "cooking", "chess"],
    "thing": ["bike", "laptop", "garden", "kitchen", "camera", "guitar", "car", "bookshelf"],
    "name": ["Sam", "Maria", "Alex", "Priya", "Tom", "Lena", "Omar", "Kate"],
    "day": ["Monday", "Tuesday", "Friday", "the weekend", "tomorrow", "tonight"],
}

USER_QUESTIONS = [
    ("[What|So what|Any idea what] should I [cook|make] for dinner [tonight|this evening]?",
     "How about {food}? It is quick and it goes well with a simple salad."),
    ("[Can you suggest|What is|Do you know] a good way to [start|get into] {activity}?",
     "Start small, maybe twenty minutes a day, and build from there."),
    ("What is {city} like in the [spring|summer|autumn]?",
     "It is usually mild and green, a lovely time for long walks around {city}."),
    ("[Do you have any|Got any|Any] tips for keeping my {thing} in [good shape|good condition]?",
     "Clean it often and check it every few weeks, that prevents most problems."),
    ("I am [planning|thinking about] a trip to {city}. [Any advice?|What do you suggest?|Any tips?]",
     "Book early, pack light, and try the local {food} while you are there."),
    ("How do I stay [focused|productive] when I work from home?",
     "Keep a fixed schedule, take short breaks, and work in one quiet spot."),
    ("Why is {activity} so [relaxing|calming]?",
     "It gives your mind one simple thing to follow, and that calms you down."),
    ("What is a [nice|fun|good] thing to do on {day}?",
     "You could go {activity} in the morning and cook {food} in the evening."),
    ("Should I [fix|repair] my old {thing} or [buy|get] a new one?",
     "If the repair costs less than half the price, fixing it is usually worth it."),
    ("How can I learn a new language [faster|more quickly]?",
     "Practise a little every day and speak from the very first week."),
]

USER_FOLLOWUPS = [
    ("[That sounds good|Nice|Sounds great]. What else?", "You could also invite a friend, it makes it more fun."),
    ("[Okay|Right|Alright], and how long does that take?", "About an hour, give or take a few minutes."),
    ("[Great|Good|Perfect], thanks. [Anything to avoid?|What should I avoid?]",
     "Try not to rush it, that is the most common mistake."),
    ("[Hmm|Okay|And], is that [expensive|costly]?", "Not really, most of it you probably have at home already."),
]

LONG_TURNS = [  # (the user's request, the model's long answer)
    ("[Can you tell me|Tell me|I would love to hear] about the history of {city}[?|.]",
     "Sure. The history of {city} goes back a long way. It started as a small trading town by the water. "
     "Over the centuries it grew into a busy city with markets, bridges and wide streets."),
    ("How does heating water in a pot [actually|really] work?",
     "Let me explain how it works. The water heats up at the bottom and rises to the top. "
     "The cooler water sinks down again, and this slow circle keeps going until everything is warm."),
    ("How [would|could|do] I get started with {activity}?",
     "Good question. Most people start with {activity} because it needs very little equipment. "
     "You learn the basics in a week or two, and then it is mostly about practice and patience."),
    ("What should I [think about|consider] before starting a new hobby?",
     "Well, there are a few things to think about. First, decide how much time you really have each week. "
     "Then pick one small goal and stick with it for a month. After that you can look back and adjust."),
]

INTERRUPTIONS = [
    ("[Wait|Hang on|Sorry], [sorry, |]what about {food}?", "Oh, {food} works too, it just takes a bit longer."),
    ("[Hold on|Wait|Stop], can you say that [more simply|in simpler words]?",
     "Sure. In short, start small and keep going."),
    ("[Sorry to cut in|Sorry to interrupt|Quick question], but is it expensive?",
     "No, it is actually quite cheap to get started."),
    ("[Actually|Wait|You know what], let us talk about {city} instead.",
     "Of course. {city} is a wonderful place to visit."),
]

USER_BACKCHANNELS = ["mhm", "yeah", "right", "okay", "uh-huh", "I see"]
MODEL_BACKCHANNELS = ["mhm", "yeah", "right", "uh-huh", "I see"]

# A story told in sentences with a pause after each: every sentence but the last ends unfinished (a comma,
# a connective or a filler: espeak's continuing tune), the last with a full stop, as a turn end sounds.
USER_STORIES = [
    ["So yesterday I went to the [market|shops][,|, and,|, um,]",
     "it was [really|very] crowded because of the holiday[,|, so,|, and,]",
     "I wanted to buy some {food} but they had run out[,|, and,|, so,]",
     "in the end I just [bought|got] bread and went home."],
    ["Last week I started {activity} again[,|, and,|, um,]",
     "I had not done it for almost two years[,|, so,|, and,]",
     "the first day was [really|pretty] hard[,|, but,|, um,]",
     "now I feel much better about it."],
    ["My neighbour has a new dog[,|, and,|, um,]",
     "it barks every morning at six[,|, so,|, and,]",
     "I tried talking to [him|my neighbour] about it[,|, and,|, um,]",
     "he said he would take it for a walk earlier."],
    ["I have been thinking about moving to {city}[,|, because,|, um,]",
     "the rents there are a bit lower[,|, and,|, also,]",
     "my sister lives there too[,|, but,|, um,]",
     "I would miss my friends here."],
]
STORY_REPLIES = ["That sounds like quite a day.", "Good for you, that takes effort.",
                 "That must be frustrating.", "That is a big decision, take your time."]

# Before the pause the user sounds unfinished: a comma or a filler gives espeak's rising, continuing tune
# (a sentence-final fall is what a real turn end has).
PAUSED_TURNS = [  # (before the pause, after it, the model's reply)
    ("[I was thinking that maybe|So I was thinking|You know, maybe][,|, um,|, uh,]",
     "[we could go|we should go|we might go] to {city} for the holidays.",
     "That is a lovely idea, {city} is great at that time of year."),
    ("[What I really want to know is|What I wonder is|The thing I want to know is][,|, um,|, like,]",
     "how long it takes to [learn|get good at] {activity}.",
     "It depends, but most people get comfortable with {activity} within a few months."),
    ("[Can you remind me|Could you tell me|Remind me][,|, um,|, uh,]", "what I need to buy for the {food}?",
     "For the {food} you need the basics: something fresh, some oil and a little salt."),
    ("[So the thing with my {thing} is|The problem with my {thing} is|My {thing}, well,][,|, um,|, uh,]",
     "it makes a [strange|weird] noise in the morning.",
     "That could be a loose part, it is worth having your {thing} checked."),
    ("[And then I also|I also|Oh, and I][,|, um,|, uh,]", "[want|need] to ask about {day}.",
     "Sure, what would you like to know about {day}?"),
    ("[If I go to|Suppose I visit|When I am in] {city}[,|, um,|, uh,]",
     "[where should I eat|what should I eat|what should I try]?",
     "In {city} you should try the {food}, it is a local favourite."),
]
# A hesitation that opens an ordinary turn, before a pause and the question itself.
HESITATIONS = ["[Um|Uh|So|Well|Okay so|Hmm], [|let me think,]", "[So|And|Okay], [um,|uh,|like,]"]

SIDE_TALK = ["[Hey|Oh] {name}, can you close the [window|door] please?",
             "{name}, dinner is ready in [five|ten] minutes!",
             "[Hang on|One second|Just a moment] {name}, I am on a call.",
             "{name}, have you seen my [keys|phone] anywhere?", "[Hey|Oh] {name}, [are you coming?|is that you?]"]
SIDE_REPLIES = ["Yes, just a second.", "Okay, coming!", "They are on the table."]
RETURNS = ["[Sorry about that|Sorry]. Where were we?", "[Sorry|Okay], I am back. [Go on.|Please continue.]",
           "[Okay|Right], sorry. Anyway."]
RETURN_REPLIES = ["No problem. We were talking about your plans.", "No worries, take your time.",
                  "That is fine. Shall we continue?"]

BACKGROUND = ["Did you see the game last night?", "I think the bus is late again.",
              "Can you pass me the salt?", "We should leave around seven.",
              "The meeting got moved to Thursday.", "I really like this song."]

VISUAL_REMARKS = {
    "appear": "Oh, a {colour} {kind} just appeared.",
    "vanish": "The {colour} {kind} is gone now.",
    "recolour": "Look, the {kind} turned {colour}.",
}
IDLE_CHAT = [("Let us just [watch|look] for a moment.", "Sure, I am watching."),
             ("Tell me if anything changes on the [screen|picture].", "Okay, I will keep an eye on it."),
             ("[Can you|Please] watch the screen for me.", "Of course, I am watching.")]

NUMBER_WORDS = {5: "five", 6: "six", 7: "seven", 8: "eight", 10: "ten", 12: "twelve", 15: "fifteen", 20: "twenty"}
TIMER_REQUESTS = ["[Tell me|Let me know] when {n} seconds have passed.",
                  "[Let me know|Tell me] when {n} seconds are up.",
                  "[Can|Could] you tell me when {n} seconds have gone by?", "Set a timer for {n} seconds[, please|]."]
TIMER_ACKS = ["Sure, I will tell you.", "Okay, I am counting.", "Got it."]
TIMER_DONE = ["{N} seconds have passed.", "Time is up, that was {n} seconds.", "Okay, {n} seconds."]

TRANSLATE_ASK = {"es": "Please translate what I say from Spanish into English.",
                 "fr": "Please translate what I say from French into English.",
                 "de": "Please translate what I say from German into English."}
TRANSLATE_ACK = ["Sure, go ahead.", "Of course, I am ready."]
TRANSLATIONS = {
    "es": [("Buenos días, ¿cómo estás?", "Good morning, how are you?"),
           ("Me gustaría reservar una mesa para dos.", "I would like to book a table for two."),
           ("¿Dónde está la estación de tren?", "Where is the train station?"),
           ("Hoy hace mucho calor.", "It is very hot today."),
           ("Mi hermano vive en Madrid.", "My brother lives in Madrid."),
           ("¿Cuánto cuesta este libro?", "How much does this book cost?"),
           ("Vamos a la playa mañana.", "We are going to the beach tomorrow."),
           ("No entiendo la pregunta.", "I do not understand the question.")],
    "fr": [("Bonjour, comment allez-vous?", "Hello, how are you?"),
           ("Je voudrais un café, s'il vous plaît.", "I would like a coffee, please."),
           ("Où est la gare?", "Where is the station?"),
           ("Il fait beau aujourd'hui.", "The weather is nice today."),
           ("Ma sœur habite à Paris.", "My sister lives in Paris."),
           ("Combien coûte ce livre?", "How much does this book cost?"),
           ("Nous allons au cinéma ce soir.", "We are going to the cinema tonight."),
           ("Je ne comprends pas.", "I do not understand.")],
    "de": [("Guten Morgen, wie geht es dir?", "Good morning, how are you?"),
           ("Ich hätte gern ein Glas Wasser.", "I would like a glass of water."),
           ("Wo ist der Bahnhof?", "Where is the train station?"),
           ("Heute regnet es den ganzen Tag.", "It is raining all day today."),
           ("Mein Vater arbeitet in Berlin.", "My father works in Berlin."),
           ("Wie viel kostet das Buch?", "How much does the book cost?"),
           ("Wir fahren morgen in die Berge.", "We are going to the mountains tomorrow."),
           ("Das verstehe ich nicht.", "I do not understand that.")],
}

DELEGATE_ACKS = ["Let me check that.", "One moment, I will look it up.", "Let me find out."]
WAIT_FILLERS = ["[Take your time|No problem].", "No rush[|, really].", "[Okay|Sure], I will wait."]


def forms(template: str) -> list[str]:
    """Every phrasing of a template: one per combination of its `[a|b]` choices, in order."""
    parts = _CHOICE.split(template)  # literal, choice, literal, choice, ...
    options = [p.split("|") if i % 2 else [p] for i, p in enumerate(parts)]
    return ["".join(combo) for combo in itertools.product(*options)]


def heldout_form(form: str) -> bool:
    """Whether a phrasing belongs to the held-out split (a stable hash: the same on every machine)."""
    return int(hashlib.sha256(form.encode()).hexdigest()[:8], 16) % HELDOUT_SHARE == 0


def pick_phrasing(rng: np.random.Generator, item, heldout: bool):
    """A row of a pool (a template, or a tuple of them) with every user template phrased: a form of that
    split drawn at random. A tuple's templates are phrased jointly, so its held-out combinations are
    ones that training never hears. Templates without choices are shared by both splits."""
    row = (item,) if isinstance(item, str) else tuple(item)
    combos = [tuple(c) for c in itertools.product(*(forms(t) for t in row))]
    if len(combos) > 1:
        mine = [c for c in combos if heldout_form(" / ".join(c)) == heldout]
        combos = mine or combos
    picked = combos[int(rng.integers(len(combos)))]
    return picked[0] if isinstance(item, str) else picked


def fill_all(templates, rng: np.random.Generator) -> list[str]:
    """Fills the `{slot}`s of several templates from FILL, one draw per slot shared by all of them, so a
    question and its answer speak of the same city or food."""
    values = {key: str(rng.choice(options)) for key, options in FILL.items()
              if any("{" + key + "}" in t for t in templates)}
    return [t.format(**values) for t in templates]


def fill(template: str, rng: np.random.Generator) -> str:
    return fill_all([template], rng)[0]


def pick(rng: np.random.Generator, items):
    return items[int(rng.integers(len(items)))]
