"""Task 7's measures and the data readers, on hand-made cases."""

import numpy as np
import pytest

from paperlab.toys_torch import textstats
from paperlab.toys_torch.data import load_dialogues, load_plays, load_sonnets, turns

SONNET_18 = """Shall I compare thee to a summer's day?
Thou art more lovely and more temperate:
Rough winds do shake the darling buds of May,
And summer's lease hath all too short a date:"""


def test_syllables_and_rhyme_from_cmudict():
    lines = SONNET_18.splitlines()
    assert textstats.line_syllables(lines[0]) == 10
    assert textstats.line_syllables("Zxqv blorp") is None  # unknown words: the line is not counted
    assert textstats.rhymes(lines[0], lines[2])  # day / May
    assert not textstats.rhymes(lines[0], lines[1])  # day / temperate
    assert not textstats.rhymes("the day", "the day")  # the same word is no rhyme


def test_rhyme_rate_follows_the_sonnet_scheme():
    a, b = (
        ["I saw the light of day", "She went along her way"],
        ["The bird flew through the night", "A star was shining bright"],
    )
    abab = [a[0], b[0], a[1], b[1]] * 3 + ["We sing a happy tune", "Beneath the silver moon"]
    aabb = [a[0], a[1], b[0], b[1]] * 3 + ["We sing a happy tune", "The dog is in the house"]
    assert textstats.metre_rhyme(["\n".join(abab)])["end_rhyme_rate"] == 1.0
    assert textstats.metre_rhyme(["\n".join(aabb)])["end_rhyme_rate"] == 0.0


def test_novelty_catches_copying():
    corpus = ["from fairest creatures we desire increase that thereby beauty's rose might never die"]
    index = textstats.NgramIndex(corpus)
    assert index.longest_shared_run(corpus[0]) == len(textstats.words(corpus[0]))
    assert index.overlap(corpus[0]) == 1.0
    assert index.longest_shared_run("a cat sat on the mat quietly") == 0
    mixed = "the cat desire increase that thereby beauty's dog"
    assert index.longest_shared_run(mixed) == 5
    assert 0 < index.overlap(mixed) < 1


def test_style_classifier_separates_two_styles():
    rng = np.random.default_rng(0)
    poem = ["thee thou doth fair love sweet", "beauty's rose and summer's day", "thine eyes and thy heart"]
    play = ["my lord the king is come", "draw your sword and fight sir", "what news from the army"]
    make = lambda pool: ["\n".join(rng.choice(pool, 4)) for _ in range(60)]  # noqa: E731
    clf = textstats.fit_style_classifier(make(poem), make(play))
    assert textstats.sonnet_score(clf, ["\n".join(poem + poem[:1])]) > 0.8
    assert textstats.sonnet_score(clf, ["\n".join(play + play[:1])]) < 0.2


def test_sonnets_split_held_out_and_crlf(data_files):
    train, held = load_sonnets(data_files["sonnets"], n_heldout=3)
    assert len(train) == 27 and len(held) == 3 and not set(train) & set(held)
    assert all(len(s.splitlines()) == 14 and "\r" not in s and not s.startswith(" ") for s in train + held)


def test_missing_files_name_where_to_get_them(tmp_path):
    with pytest.raises(FileNotFoundError, match="tinyshakespeare"):
        load_plays(tmp_path / "none.txt")
    with pytest.raises(FileNotFoundError, match="hh-rlhf"):
        load_dialogues(tmp_path / "none.jsonl.gz")


def test_hh_transcripts_split_into_turns(data_files):
    rows = load_dialogues(data_files["dialogues"])
    t = turns(rows[0]["rejected"])
    assert [who for who, _ in t] == ["Human", "Assistant"] and t[1][1].endswith("damn fool.")
