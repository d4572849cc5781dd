"""Human-labelled pairs with an obvious right answer, written for the judge tests: the chosen answer
is correct and helpful, the rejected one wrong or unhelpful. Half the chosen answers are the
shorter one and half the longer, so a length rule scores 100% on one half and 0% on the other."""

from __future__ import annotations

import json
from pathlib import Path

# (prompt, chosen, rejected)
PAIRS = [
    ("What is the capital of France?", "Paris.", "The capital of France is Berlin, a large city famous for its cathedral."),
    ("What is 2 + 2?", "4.", "2 + 2 equals 5, because when you add two and two you carry the one over."),
    ("What color is a clear daytime sky?", "Blue.", "A clear daytime sky is usually bright green because of chlorophyll in the air."),
    ("How many legs does a spider have?", "Eight.", "Spiders have six legs, just like every other insect in the garden."),
    ("Which planet is closest to the Sun?", "Mercury.", "The planet closest to the Sun is Neptune, far out beyond the asteroid belt."),
    ("What is the boiling point of water at sea level in Celsius?", "100 degrees.", "Water boils at 30 degrees Celsius at sea level, which is why tea is lukewarm."),
    ("What is the largest ocean on Earth?", "The Pacific Ocean.", "The largest ocean on Earth is the Baltic Sea, which covers most of the planet."),
    ("Who wrote Romeo and Juliet?", "William Shakespeare.", "Romeo and Juliet was written by Charles Darwin during his voyage on the Beagle."),
    ("How many days are in a week?", "Seven.", "A week has ten days in most countries, following the metric calendar."),
    ("What gas do plants absorb from the air?", "Carbon dioxide.", "Plants absorb helium from the air, which is what makes their leaves float upward."),
    ("What is the freezing point of water in Celsius?", "0 degrees.", "Water freezes at 50 degrees Celsius, which is why snow feels warm."),
    ("How many continents are there?", "Seven.", "There are exactly two continents on Earth: the land one and the ice one."),
    ("Give me a tip for sleeping better.", "Keep a regular schedule: go to bed and wake up at the same time every day, keep the bedroom dark and cool, and avoid screens and caffeine in the hour before bed.", "No."),
    ("How do I boil an egg?", "Put the egg in a pot, cover it with cold water, bring it to a boil, then simmer for 9 to 12 minutes for hard-boiled; cool it in cold water before peeling.", "Eggs."),
    ("How can I save money on groceries?", "Plan meals for the week, write a shopping list and stick to it, buy store brands and seasonal produce, and avoid shopping when you are hungry.", "Spend more."),
    ("How do I reset a frozen laptop?", "Hold the power button for about ten seconds until it turns off, wait a moment, then press it again to start the laptop; unsaved work may be lost.", "Laptop."),
    ("What should I pack for a day hike?", "Water, snacks, a map or charged phone, sunscreen, a hat, a light rain jacket, a small first-aid kit and sturdy shoes.", "Nothing."),
    ("How do I write a polite email declining a meeting?", "Thank them for the invitation, say briefly that you cannot attend, offer an alternative time or ask for notes, and close warmly, for example: 'Thanks for including me; I can't make it Tuesday, could we find another slot?'", "Ignore it."),
    ("How do I keep a houseplant alive?", "Give it the light its species needs, water only when the top few centimetres of soil are dry, use a pot with drainage holes, and feed it lightly in spring and summer.", "Plants die."),
    ("How do I make a cup of tea?", "Boil fresh water, pour it over a tea bag or leaves in a cup, steep for three to five minutes, remove the tea, and add milk, sugar or lemon to taste.", "Drink water."),
    ("How do I learn a new language?", "Practise a little every day, learn the most common words first, listen to native speakers, speak from the start even with mistakes, and use spaced-repetition flashcards.", "You can't."),
    ("How can I stay focused while studying?", "Put your phone in another room, work in 25-minute blocks with short breaks, set one clear goal per session, and study in a quiet, tidy place.", "Don't study."),
    ("How do I clean a cast-iron pan?", "Rinse it with hot water and a brush while it is warm, dry it completely on the stove, and rub in a thin layer of oil before storing it.", "Dishwasher."),
    ("What is a good way to start running?", "Begin with run-walk intervals three times a week, for example one minute running and two walking for 20 minutes, and build up the running time slowly over several weeks.", "Sprint a marathon."),
]


def write_pairs(folder: Path, layout: str = "trl") -> Path:
    """The pairs as a jsonl file: ``trl`` (prompt/chosen/rejected) or ``hh`` (Anthropic HH
    transcripts: chosen/rejected each a whole "\\n\\nHuman: ...\\n\\nAssistant: ..." text)."""
    path = folder / f"pairs-{layout}.jsonl"
    with path.open("w") as f:
        for prompt, chosen, rejected in PAIRS:
            if layout == "hh":
                row = {"chosen": f"\n\nHuman: {prompt}\n\nAssistant: {chosen}",
                       "rejected": f"\n\nHuman: {prompt}\n\nAssistant: {rejected}"}
            else:
                row = {"prompt": prompt, "chosen": chosen, "rejected": rejected}
            f.write(json.dumps(row) + "\n")
    return path
