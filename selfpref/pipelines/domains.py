"""Broad domains the model writes its own personas from when no persona dataset is given (SAO §3.1)."""

DOMAINS = [
    "cooking and nutrition", "personal finance", "software engineering", "gardening",
    "travel planning", "physical fitness", "mental health and wellbeing", "parenting",
    "small business", "history", "astronomy", "music production", "creative writing",
    "home repair", "law and everyday legal questions", "medicine and health", "education and teaching",
    "climate and environment", "mathematics", "career development", "pets and animal care",
    "photography", "language learning", "sports", "video games", "fashion", "philosophy",
    "data science", "public policy", "agriculture", "automotive maintenance", "art history",
]
