"""clean_prompt on what a model writes when asked for a persona's request (SAO §3.1).

SAO asks for the prompt in the persona's own words, so first-person openings are ordinary
prompts; only a model declining the task is a refusal. Cases marked "old" are the ones the issue
quotes: the previous code dropped or mangled each of them.
"""

import pytest

from selfpref.pipelines.parsing import clean_prompt

KEPT = [
    # --- the cases (old: refusal, refusal, "based indexing: ...") ---
    ("I can't sleep at night, what should I do?", "I can't sleep at night, what should I do?"),
    ("Unfortunately, I lost my passport abroad. What are the steps to get a new one quickly?",
     "Unfortunately, I lost my passport abroad. What are the steps to get a new one quickly?"),
    ("Query-based indexing: how does it differ from full-text indexing in Postgres?",
     "Query-based indexing: how does it differ from full-text indexing in Postgres?"),
    # --- more first-person requests in a persona's words ---
    ("I'm sorry to bother you, but could you help me write an apology letter to my neighbour?",
     "I'm sorry to bother you, but could you help me write an apology letter to my neighbour?"),
    ("I cannot figure out why my sourdough starter smells like acetone. Any ideas?",
     "I cannot figure out why my sourdough starter smells like acetone. Any ideas?"),
    ("I can't help but wonder: why do bees dance?", "I can't help but wonder: why do bees dance?"),
    ("I can't help my son with his algebra homework. How do I explain factoring?",
     "I can't help my son with his algebra homework. How do I explain factoring?"),
    ("I won't be able to attend my sister's wedding. How do I tell her kindly?",
     "I won't be able to attend my sister's wedding. How do I tell her kindly?"),
    ("I can't write a cover letter to save my life. Can you draft one for a nursing job?",
     "I can't write a cover letter to save my life. Can you draft one for a nursing job?"),
    ("As an AI ethics researcher, I want to know how bias audits are done.",
     "As an AI ethics researcher, I want to know how bias audits are done."),
    ("Sorry, quick question: is it safe to feed bees sugar syrup in winter?",
     "Sorry, quick question: is it safe to feed bees sugar syrup in winter?"),
    ("Task-oriented dialogue systems: what are the main evaluation metrics?",
     "Task-oriented dialogue systems: what are the main evaluation metrics?"),
    ("Request-response patterns in microservices - when should I use them?",
     "Request-response patterns in microservices - when should I use them?"),
    # --- label prefixes that must still go (existing behaviour) ---
    ("User prompt: How do I keep bees calm?", "How do I keep bees calm?"),
    ("Prompt: What flowers feed bees?", "What flowers feed bees?"),
    ("User prompt: How do I bake bread?", "How do I bake bread?"),
    ("**Prompt:** What is a black hole?", "What is a black hole?"),
    ("Prompt:\nExplain tides.", "Explain tides."),
    ("Request - Plan a three-day trip to Lisbon on a budget.",
     "Plan a three-day trip to Lisbon on a budget."),
    ("Question 1: What causes the northern lights?", "What causes the northern lights?"),
    ("**User request:** Can you review my lease agreement?", "Can you review my lease agreement?"),
    ("Query – best practices for indexing JSON columns?",
     "best practices for indexing JSON columns?"),
    ('"Can you plan a trip to Rome?"', "Can you plan a trip to Rome?"),
    ("How do vaccines work?", "How do vaccines work?"),
]

DROPPED = [
    ("", "empty_prompt"),
    (None, "empty_prompt"),
    ("   \n", "empty_prompt"),
    ("User prompt:", "empty_prompt"),
    ("**Prompt:**", "empty_prompt"),
    # --- a model declining the task ---
    ("I'm sorry, I can't do that.", "refusal"),
    ("I'm sorry, but I can't help with that.", "refusal"),
    ("As an AI, I cannot write that.", "refusal"),
    ("As an AI language model, I cannot pretend to be a real person.", "refusal"),
    ("As an AI language model, I don't have personal experiences or a persona.", "refusal"),
    ("I cannot create content that promotes violence against any group.", "refusal"),
    ("I can't help with that. Is there anything else I can help you with?", "refusal"),
    ("I’m sorry, but I can’t assist with this request.", "refusal"),
    ("Sorry, I cannot fulfill this request.", "refusal"),
    ("Unfortunately, I am unable to generate a prompt for this persona.", "refusal"),
    ("I apologize, but I must decline to write this.", "refusal"),
    ("I'm not able to provide information on making weapons.", "refusal"),
    ("I won't write that kind of content.", "refusal"),
    ("I'm sorry, but this request goes against my guidelines.", "refusal"),
    ("User prompt: I'm sorry, but I can't help with that.", "refusal"),
]


@pytest.mark.parametrize("raw,expected", KEPT)
def test_clean_prompt_keeps(raw, expected):
    assert clean_prompt(raw) == (expected, None)


@pytest.mark.parametrize("raw,reason", DROPPED)
def test_clean_prompt_drops(raw, reason):
    assert clean_prompt(raw) == (None, reason)
