"""Read a pairwise judge's free-text output as a verdict: 'A', 'B', 'tie', or None.

The parser looks for the *verdict* (the part of the output that answers "which is better?"), not
for words that happen to appear in the judge's reasoning. Judges write it in many ways:

- a bare label: "A", "**B**", "(a)", "Output (b)", "A. Response B is neither accurate ...";
- an explicit marker: "[[A]]" (MT-Bench, "[[C]]" is its tie), "[[A>B]]" (Arena-Hard),
  "Verdict: B", "Final answer: **A**", "\\boxed{B}";
- SAO's ranking notation (SAO App. G, Table 13: "Ranking 2 > 1"): "2 > 1", "1 > 2", "A = B";
- a sentence: "Response A is better than Response B", "the better response is B", "I choose A",
  "Therefore, the answer is B", "It's a tie", "Both responses are equally good".

Labels 1/2 and (a)/(b) mean A/B. The evidence comes in three tiers, strongest first, and the
first tier that finds anything decides (a weaker tier never overrules a stronger one):

1. explicit: a marker, a ranking, or a label (or "Tie") standing alone on the first or last line;
2. declared: a sentence that names the winner or a tie ("... is better", "I choose ...");
3. compared: a sentence that says one is better on some quality ("Response A is more accurate").

Within a tier, matches that agree give the verdict. Matches that disagree are settled by the
concluding ones ("Overall, ...", "Therefore, ..."), when those agree; otherwise, and for
contradictory explicit verdicts, the result is None. A sentence is not evidence when it is
negated or hypothetical ("I cannot tell whether Response A is better"). A refusal ("I cannot
determine which response is better") gives None unless an explicit or declared verdict follows.

The function is pure: text in, verdict out, no model and no state.
"""

from __future__ import annotations

import re

OPTIONS = ("A", "B")
"""The option labels a pairwise judge is asked to answer with, first-shown answer first."""
TIE = "tie"

# --- building blocks -------------------------------------------------------------------------
# Labels are case-sensitive: a bare lowercase "a" is the English article, so lowercase letters
# count only in parentheses or brackets ("Output (a)"). Digits count as labels only where nothing
# else could read them as numbers: alone on a line, after a noun ("Response 2"), in markers.
_LETTER = r"(?:\(\s*[ABab]\s*\)|\[\s*[ABab]\s*\](?!\])|(?<![\w/'])[AB](?![\w/]))"
_DIGIT = r"(?:\(\s*[12]\s*\)|\[\s*[12]\s*\](?!\])|(?<![\w/.,'])[12](?![\w/]|[.,]\d))"
_NOUN = r"(?i:response|answer|output|assistant|option|candidate|completion|reply|model|choice)"
# A labelled answer: "Response 2", "Output (a)", "Assistant B", or a bare "B" / "(b)".
_LABEL = rf"(?:{_NOUN}\s*(?P<lab>{_LETTER}|{_DIGIT})|(?P<bare>{_LETTER}))"
# "Assistant A's answer is better" (MT-Bench phrasing): the possessive belongs to the label.
_POSS = r"(?:['’]s(?:\s+(?i:response|answer|output|reply))?)?"
_ADV = (r"(?:(?i:much|far|slightly|somewhat|clearly|significantly|marginally|overall|definitely|"
        r"substantially|considerably|noticeably|obviously|generally|so|a bit|a little|the)\s+)*")
_IS = r"(?i:is|was|seems|appears|would be|remains|looks)\s+(?i:to be\s+)?"
_QUALITY = (r"(?i:accurate|helpful|complete|comprehensive|detailed|relevant|informative|thorough|"
            r"clear|concise|correct|precise|appropriate|useful|engaging|coherent|well-structured|"
            r"well-written|organi[sz]ed|insightful|nuanced|factual|polished|persuasive|readable|"
            r"specific|actionable|effective|faithful|reliable|focused|direct)")
_GOOD = (r"(?i:good|bad|strong|weak|helpful|accurate|valid|acceptable|effective|correct|relevant|"
         r"useful|informative|well-written|matched|poor|fine|appropriate|competent|complete)")


def _option(label: str) -> str:
    """'A' or 'B' from a label token: "B", "(a)", "[2]", "1"."""
    char = label.strip("()[] \t").upper()
    return {"1": "A", "2": "B"}.get(char, char)


def _other(option: str) -> str:
    return "B" if option == "A" else "A"


def _label_of(match: re.Match) -> str:
    return _option(match.group("lab") or match.group("bare"))


# --- normalisation ---------------------------------------------------------------------------
# Markdown emphasis and code marks are noise around a verdict ("**A**", "`B`"); chat-template
# tokens ("</s>", "<|eot_id|>") are noise after it. Line-leading bullets, quote marks and
# heading hashes go too, so "### Verdict: A" and "- **B**" read like "Verdict: A" and "B".
_SPECIAL_TOKENS = re.compile(r"<\|[^|>]*\|>|</?s>")
_EMPHASIS = re.compile(r"[*_`]+")
_LINE_LEAD = re.compile(r"^[ \t]*(?:(?:[-•+][ \t]+)|>[ \t]*|#+[ \t]*)*", re.MULTILINE)


def _normalise(text: str) -> str:
    text = _SPECIAL_TOKENS.sub("", text).replace("’", "'")
    text = _EMPHASIS.sub("", text)
    return _LINE_LEAD.sub("", text)


# --- tier 1: explicit verdicts ---------------------------------------------------------------
# MT-Bench's "[[A]]" / "[[B]]" / "[[C]]" (C is its tie), also with digits or "tie" inside.
_DOUBLE_BRACKET = re.compile(r"\[\[\s*(?P<v>[AB12C]|(?i:tie))\s*\]\]")
# A ranking: SAO's "2 > 1" (Table 13), Arena-Hard's "A>>B", "A=B"; "<" reads the other way.
_RANK = (rf"(?:{_NOUN}\s*)?(?P<left>{_LETTER}|{_DIGIT})\s*(?P<op>>>|>=|>|<<|<=|<|=|≥|≤|≻|≺)\s*"
         rf"(?:{_NOUN}\s*)?(?P<right>{_LETTER}|{_DIGIT})")
_RANK_BRACKET = re.compile(rf"\[\[\s*{_RANK}\s*\]\]")  # Arena-Hard: "[[A>>B]]", "[[A=B]]"
# A ranking alone on a line, optionally after a word that introduces it ("Ranking\t2 > 1").
_RANK_LINE = re.compile(
    rf"^(?:(?i:(?:final\s+)?(?:ranking|rank|order|verdict|answer|result))\s*[:\-–—]?\s*)?"
    rf"{_RANK}\s*[.!]?$")
# Math-style judges (Qwen) box their answer: "The final answer is $\boxed{B}$".
_BOXED = re.compile(
    rf"\\boxed\{{\s*(?:\\text(?:bf)?\{{\s*)?(?:{_NOUN}\s*)?(?P<lab>{_LETTER}|{_DIGIT})\s*\}}?\s*\}}")
# "Verdict: B", "Final answer: A", "Better response - Output (b)", at the start of a line (in
# the middle of prose "answer:" is too often part of the content being judged).
_MARKER = re.compile(
    r"^(?i:(?:(?:my|the|our)\s+)?(?:(?:final|overall)\s+)?"
    r"(?:verdict|answer|decision|judg(?:e)?ment|choice|winner|preference|selection|ranking|"
    r"result|conclusion|evaluation|(?:better|best|preferred|chosen|winning)\s+"
    r"(?:response|answer|output|option))"
    r"(?:\s+is)?)(?:\s*[:\-–—]\s*(?P<value>.*)|\s*)$", re.MULTILINE)
# What may follow a marker: a label that ends there (or is followed by a reason) ...
_VALUE_LABEL = re.compile(
    rf"^(?:{_NOUN}\s*)?\[?(?P<lab>{_LETTER}|{_DIGIT})\]?"
    r"(?=\s*$|\s*[.!,;(\-–—]|\s+(?i:because|since|as)\b)")
# ... or a tie, in words.
_VALUE_TIE = re.compile(
    r"^(?i:tie|tied|draw|a tie|it's a tie|equal|equally good|neither|no preference|"
    rf"both(?:\s+(?:responses|answers|outputs))?\s+are\s+equally\s+{_GOOD})\b")
# A verdict alone on a line: "A", "B.", "(b)", "Output (a)", "Response 2", "Tie".
_WHOLE_LINE_LABEL = re.compile(rf"^(?:{_NOUN}\s*)?(?P<lab>{_LETTER}|{_DIGIT})\s*[.!]?$")
_WHOLE_LINE_TIE = re.compile(
    r"^(?i:(?:it's\s+a\s+|a\s+)?(?:tie|draw)|tied|equal|neither|no preference)\s*[.!]?$")
# A line that opens with a letter label and goes on: "A. Response B is neither ...", "(B) because
# ...", "A - more complete". Letters only: "1. ..." opens a numbered list far more often.
_LEADING_LABEL = re.compile(
    rf"^(?:{_NOUN}\s*)?(?P<lab>{_LETTER})"
    r"(?=\s*[.!),;:\]]|\s+[-–—]|\s+(?i:because|since|as)\b)")
# A line that looks like a section header for one answer ("Response A:", "**B**", "A) ...").
# When both A and B open lines this way, the output is laid out per answer, and a label at the
# start or end of a line is structure, not a verdict.
_HEADER_LIKE = re.compile(
    rf"^(?:{_NOUN}\s*)?(?P<lab>{_LETTER}|{_DIGIT})\s*(?:[:.)!]|$)")


def _rank_value(match: re.Match) -> str | None:
    left, right, op = _option(match.group("left")), _option(match.group("right")), match["op"]
    if left == right:
        return None
    if op == "=":
        return TIE
    return left if op in (">>", ">=", ">", "≥", "≻") else right


def _marker_value(value: str) -> str | None:
    value = value.strip()
    if _DOUBLE_BRACKET.match(value) or _RANK_BRACKET.match(value):
        return None  # the bracket rules read these anywhere; do not count them twice
    if m := _RANK_LINE.match(value):
        return _rank_value(m)
    if m := _VALUE_LABEL.match(value):
        return _option(m.group("lab"))
    if _VALUE_TIE.match(value):
        return TIE
    return None


def _explicit(text: str) -> list[str]:
    """Every explicit verdict in the text (tier 1)."""
    found: list[str] = []
    m: re.Match[str] | None
    for m in _DOUBLE_BRACKET.finditer(text):
        v = m.group("v").upper()
        found.append(TIE if v in ("C", "TIE") else _option(v))
    found += [v for m in _RANK_BRACKET.finditer(text) if (v := _rank_value(m))]
    found += [_option(m.group("lab")) for m in _BOXED.finditer(text)]

    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    for i, line in enumerate(lines):
        if m := _MARKER.match(line):
            value = (m.group("value") or "").strip()
            # "Final verdict:" (or a "### Final Verdict" heading) on a line of its own: the
            # value is on the next line.
            if not value and i + 1 < len(lines):
                value = lines[i + 1]
            if v := _marker_value(value):
                found.append(v)
        elif (m := _RANK_LINE.match(line)) and (v := _rank_value(m)):
            found.append(v)

    # A bare label or "Tie" counts on the first line (answer first, then reasons) or the last
    # (reasons first, then the answer), unless the lines are laid out per answer (see above).
    headers = {_option(m.group("lab")) for ln in lines if (m := _HEADER_LIKE.match(ln))}
    laid_out_per_answer = set(OPTIONS) <= headers
    ends = [lines[0], lines[-1]] if len(lines) > 1 else lines
    for line in ends:
        if _WHOLE_LINE_TIE.match(line):
            found.append(TIE)
        elif laid_out_per_answer:
            continue
        elif (m := _WHOLE_LINE_LABEL.match(line)) or (m := _LEADING_LABEL.match(line)):
            found.append(_option(m.group("lab")))
    return found


# --- tiers 2 and 3: verdicts in sentences ----------------------------------------------------
# Each rule is (pattern, how to read it): "label" for the label it names, "other" for the label
# it names as worse, "tie" for a tie.
_DECLARED_SOURCES = [
    # "Response A is better (than Response B)", "B is the better one", "A is the clear winner"
    ((rf"{_LABEL}{_POSS}\s+{_IS}{_ADV}(?i:better|superior|preferable|preferred|stronger|best|"
     r"winner|clear winner|winning (?:response|answer))\b"), "label"),
    (rf"{_LABEL}{_POSS}\s+(?i:wins|outperforms|beats|does a better job)\b", "label"),
    (rf"{_LABEL}{_POSS}\s+{_IS}{_ADV}(?i:worse|inferior|weaker)\b", "other"),
    # "the better response is B", "My final choice is Response 2", "Therefore, the answer is B"
    ((r"(?i:\b(?:(?:the|my|our)\s+(?:final\s+)?|final\s+)(?:(?:better|best|preferred|superior|"
     r"stronger|winning)(?:\s+(?:response|answer|output|option|choice|one|assistant))?|answer|"
     r"verdict|choice|pick|preference|decision|vote|selection|judg(?:e)?ment|winner)\s+"
     rf"(?:is|would be|goes to|here is)\s*:?\s*){_LABEL}"), "label"),
    # "I choose A", "I'd go with Response 2", "I prefer Output (b)"
    ((r"(?i:\bI(?:\s+would|'d|\s+will|'ll|\s+must|\s+have to)?\s+(?:choose|chose|pick|select|"
     rf"prefer|go with|vote for|opt for|favou?r|side with|say)\s+){_LABEL}"), "label"),
    # "I find Response B to be better", "I would rate Response A higher"
    ((rf"(?i:\b(?:find|consider|rate|rank|judge|deem|score)\s+){_LABEL}{_POSS}"
     r"(?i:\s+(?:to be\s+|as\s+)?(?:the\s+)?(?:better|superior|stronger|preferable|higher|"
     r"best|more helpful))\b"), "label"),
    # Ties, in words. "equally" alone is not a tie ("B is equally long"): it must say equally good.
    ((r"(?i:\b(?:it's|it is|it was|this is|that's|that is|call it|I'd call it|I would call it)\s+"
     r"(?:a\s+)?(?:tie|draw|toss-up)\b)"), "tie"),
    ((r"(?i:\b(?:both|the two|they)(?:\s+(?:responses|answers|outputs|assistants|options|of them))?"
     r"\s+(?:are|were|seem|appear|perform)\s+(?:to be\s+)?(?:about\s+|roughly\s+|essentially\s+)?"
     rf"(?:equally\s+{_GOOD}|of (?:equal|similar|the same|comparable) quality|equivalent|tied|"
     r"equally matched|on par|equal in quality)\b)"), "tie"),
    ((r"(?i:\bneither\s+(?:response|answer|output|one|assistant|option)?\s*(?:is|was)\s+"
     r"(?:clearly\s+|significantly\s+|meaningfully\s+)?(?:better|superior|preferable)\b)"), "tie"),
    ((r"(?i:\bthere(?:'s| is)\s+no\s+(?:clear\s+)?(?:winner|preference|better (?:response|answer|"
     r"one))\b)"), "tie"),
]
_COMPARED_SOURCES = [
    # "Response A is more accurate", "B is much clearer"; weaker than a declared winner.
    (rf"{_LABEL}{_POSS}\s+{_IS}{_ADV}more\s+{_QUALITY}\b", "label"),
    (rf"{_LABEL}{_POSS}\s+{_IS}{_ADV}(?i:clearer|more to the point)\b", "label"),
    ((rf"{_LABEL}{_POSS}\s+(?i:provides|offers|gives|has)\s+(?:a\s+)?{_ADV}"
     rf"(?i:better|clearer|superior|more\s+{_QUALITY})\b"), "label"),
    (rf"{_LABEL}{_POSS}\s+{_IS}{_ADV}less\s+{_QUALITY}\b", "other"),
]
_DECLARED = [(re.compile(p), how) for p, how in _DECLARED_SOURCES]
_COMPARED = [(re.compile(p), how) for p, how in _COMPARED_SOURCES]

# A clause ends at punctuation or a contrast word; a sentence at . ! ? or a line break.
_CLAUSE_END = re.compile(r"[.!?;:,\n]|\b(?i:but|however|although|though|while|whereas)\b")
_SENTENCE_END = re.compile(r"[.!?\n]")
# Negation or doubt in the same clause, before the match: "I cannot tell whether A is better".
_NEGATED = re.compile(
    r"n't\b|\b(?i:not|no|never|cannot|unable|whether|if|unclear|unsure|uncertain|hard to|"
    r"difficult to|impossible)\b")
# Words that mark a conclusion; they settle a tier whose matches disagree.
_CONCLUDING = re.compile(
    r"\b(?i:overall|therefore|thus|hence|so|in conclusion|in summary|to summari[sz]e|ultimately|"
    r"in the end|all things considered|all in all|final|finally|consequently|as a result|"
    r"on balance|on the whole|taken together|in short)\b")
# A refusal to judge; without an explicit or declared verdict, the output is unparseable.
_REFUSAL = re.compile(
    r"\b(?i:I(?:'m| am)? (?:sorry|afraid)\b|as an AI\b|I (?:cannot|can't|can not|am unable to|"
    r"'m unable to|am not able to|won't|will not) (?:determine|decide|choose|judge|say|tell|pick|"
    r"compare|evaluate|assess|make|rank|provide))")


def _clause_start(text: str, pos: int) -> int:
    ends = [m.end() for m in _CLAUSE_END.finditer(text, 0, pos)]
    return ends[-1] if ends else 0


def _sentences_hits(text: str, rules) -> list[tuple[str, bool]]:
    """(verdict, concluding) for each non-negated match of the rules."""
    hits = []
    for pattern, how in rules:
        for m in pattern.finditer(text):
            clause_start = _clause_start(text, m.start())
            if _NEGATED.search(text, clause_start, m.start()):
                continue  # "I can't say that Response A is better", "if A is better, ..."
            nxt = _SENTENCE_END.search(text, m.end())
            if nxt and nxt.group() == "?":
                continue  # a question, not an answer: "So is Response A better?"
            if how == "tie":
                verdict = TIE
            else:
                verdict = _label_of(m) if how == "label" else _other(_label_of(m))
            sentence_ends = [e.end() for e in _SENTENCE_END.finditer(text, 0, m.start())]
            sentence_start = sentence_ends[-1] if sentence_ends else 0
            clause_end = _CLAUSE_END.search(text, m.end())
            context = text[sentence_start:clause_end.start() if clause_end else len(text)]
            hits.append((verdict, bool(_CONCLUDING.search(context))))
    return hits


def _settle(verdicts: list[str], concluding: list[str] | None = None) -> str | None:
    """The verdict the matches agree on; else the one the concluding matches agree on."""
    if len(set(verdicts)) == 1:
        return verdicts[0]
    if concluding and len(set(concluding)) == 1:
        return concluding[0]
    return None  # contradictory


def parse_verdict(text: str | None) -> str | None:
    """'A', 'B', 'tie', or None when no verdict can be read (empty, garbage, refusal,
    contradictory). Labels 1/2 and (a)/(b) mean A/B. See the module docstring for the rules."""
    if text is None or not text.strip():
        return None
    text = _normalise(text)
    if explicit := _explicit(text):
        return _settle(explicit)  # explicit verdicts that disagree are not settled by prose
    refused = bool(_REFUSAL.search(text))
    for rules in (_DECLARED, _COMPARED):
        if refused and rules is _COMPARED:
            return None  # "I can't decide. Response A is more detailed, ...": a refusal
        if hits := _sentences_hits(text, rules):
            return _settle([v for v, _ in hits], [v for v, c in hits if c])
    return None
