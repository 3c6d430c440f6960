"""The words the synthetic conversations are made of: templates and small phrase tables.

Slots in braces are filled from the pools below, so a few dozen templates give thousands of distinct
utterances. Translation pairs are hand-checked sentences, not machine output.
"""
from __future__ import annotations

import numpy as np

FILL = {
    "city": ["Lisbon", "Oslo", "Kyoto", "Lima", "Nairobi", "Toronto", "Vienna", "Dublin", "Seoul", "Perth"],
    "food": ["pasta", "soup", "curry", "pancakes", "salad", "dumplings", "rice", "bread"],
    "activity": ["running", "painting", "gardening", "swimming", "reading", "cycling", "cooking", "chess"],
    "thing": ["bike", "laptop", "garden", "kitchen", "camera", "guitar", "car", "bookshelf"],
    "name": ["Sam", "Maria", "Alex", "Priya", "Tom", "Lena", "Omar", "Kate"],
    "day": ["Monday", "Tuesday", "Friday", "the weekend", "tomorrow", "tonight"],
}

USER_QUESTIONS = [
    ("What should I cook for dinner tonight?", "How about {food}? It is quick and it goes well with a simple salad."),
    ("Can you suggest a good way to start {activity}?", "Start small, maybe twenty minutes a day, and build from there."),
    ("What is {city} like in the spring?", "It is usually mild and green, a lovely time for long walks around {city}."),
    ("Do you have any tips for keeping my {thing} in good shape?", "Clean it often and check it every few weeks, that prevents most problems."),
    ("I am planning a trip to {city}. Any advice?", "Book early, pack light, and try the local {food} while you are there."),
    ("How do I stay focused when I work from home?", "Keep a fixed schedule, take short breaks, and work in one quiet spot."),
    ("Why is {activity} so relaxing?", "It gives your mind one simple thing to follow, and that calms you down."),
    ("What is a nice thing to do on {day}?", "You could go {activity} in the morning and cook {food} in the evening."),
    ("Should I fix my old {thing} or buy a new one?", "If the repair costs less than half the price, fixing it is usually worth it."),
    ("How can I learn a new language faster?", "Practise a little every day and speak from the very first week."),
]

USER_FOLLOWUPS = [
    ("That sounds good. What else?", "You could also invite a friend, it makes it more fun."),
    ("Okay, and how long does that take?", "About an hour, give or take a few minutes."),
    ("Great, thanks. Anything to avoid?", "Try not to rush it, that is the most common mistake."),
    ("Hmm, is that expensive?", "Not really, most of it you probably have at home already."),
]

LONG_TURNS = [  # (the user's request, the model's long answer)
    ("Can you tell me about the history of {city}?",
     "Sure. The history of {city} goes back a long way. It started as a small trading town by the water. "
     "Over the centuries it grew into a busy city with markets, bridges and wide streets."),
    ("How does heating water in a pot actually work?",
     "Let me explain how it works. The water heats up at the bottom and rises to the top. "
     "The cooler water sinks down again, and this slow circle keeps going until everything is warm."),
    ("How would I get started with {activity}?",
     "Good question. Most people start with {activity} because it needs very little equipment. "
     "You learn the basics in a week or two, and then it is mostly about practice and patience."),
    ("What should I think about before starting a new hobby?",
     "Well, there are a few things to think about. First, decide how much time you really have each week. "
     "Then pick one small goal and stick with it for a month. After that you can look back and adjust."),
]

INTERRUPTIONS = [
    ("Wait, sorry, what about {food}?", "Oh, {food} works too, it just takes a bit longer."),
    ("Hold on, can you say that more simply?", "Sure. In short, start small and keep going."),
    ("Sorry to cut in, but is it expensive?", "No, it is actually quite cheap to get started."),
    ("Actually, let us talk about {city} instead.", "Of course. {city} is a wonderful place to visit."),
]

USER_BACKCHANNELS = ["mhm", "yeah", "right", "okay", "uh-huh", "I see"]
MODEL_BACKCHANNELS = ["mhm", "yeah", "right", "uh-huh", "I see"]

USER_STORIES = [
    ["So yesterday I went to the market.", "It was really crowded because of the holiday.",
     "I wanted to buy some {food} but they had run out.", "In the end I just bought bread and went home."],
    ["Last week I started {activity} again.", "I had not done it for almost two years.",
     "The first day was really hard.", "But now I feel much better about it."],
    ["My neighbour has a new dog.", "It barks every morning at six.", "I tried talking to him about it.",
     "He said he would take it for a walk earlier."],
    ["I have been thinking about moving to {city}.", "The rents there are a bit lower.",
     "My sister lives there too.", "But I would miss my friends here."],
]
STORY_REPLIES = ["That sounds like quite a day.", "Good for you, that takes effort.",
                 "That must be frustrating.", "That is a big decision, take your time."]

PAUSED_TURNS = [  # (before the pause, after it, the model's reply)
    ("I was thinking that maybe", "we could go to {city} for the holidays.",
     "That is a lovely idea, {city} is great at that time of year."),
    ("What I really want to know is", "how long it takes to learn {activity}.",
     "It depends, but most people get comfortable with {activity} within a few months."),
    ("Can you remind me", "what I need to buy for the {food}?",
     "For the {food} you need the basics: something fresh, some oil and a little salt."),
    ("So the thing with my {thing} is", "it makes a strange noise in the morning.",
     "That could be a loose part, it is worth having your {thing} checked."),
]

SIDE_TALK = ["Hey {name}, can you close the window please?", "{name}, dinner is ready in five minutes!",
             "Hang on {name}, I am on a call.", "{name}, have you seen my keys anywhere?"]
SIDE_REPLIES = ["Yes, just a second.", "Okay, coming!", "They are on the table."]
RETURNS = ["Sorry about that. Where were we?", "Sorry, I am back. Go on.", "Okay, sorry. Anyway."]
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
IDLE_CHAT = [("Let us just watch for a moment.", "Sure, I am watching."),
             ("Tell me if anything changes on the screen.", "Okay, I will keep an eye on it.")]

NUMBER_WORDS = {5: "five", 6: "six", 7: "seven", 8: "eight", 10: "ten", 12: "twelve", 15: "fifteen", 20: "twenty"}
TIMER_REQUESTS = ["Tell me when {n} seconds have passed.", "Let me know when {n} seconds are up.",
                  "Can you tell me when {n} seconds have gone by?"]
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
WAIT_FILLERS = ["Take your time.", "No rush.", "Okay, I will wait."]


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
