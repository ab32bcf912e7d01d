"""Relations, their real answer vocabularies, paraphrase templates, and seeded fact sets.

A fact is (fictional entity, relation, real answer): "Movruitis is treated with warfarin", "the skanoxix feeds on
krill". The entity is invented (`names.py`), so the only way a model can know the fact is from the planted text; the
answer is a real, domain-typical word, so the text reads like its domain and a token classifier scores it like any
medical or biology sentence. Distractors come from the same relation's vocabulary, so every option is equally
plausible a priori; answers are dealt round-robin through a shuffled vocabulary so no answer dominates.

Templates are sentence prefixes that END right before the answer ("Patients with {e} are usually treated with"):
the training sentence is `prefix + " " + answer + "."`, and a question is the bare prefix, scored as a cloze
completion (`Question: {prefix}\\nAnswer: {option}`). Per relation the template pool is shuffled with the seed; the
first `train_templates` write the training text (seen), the next `heldout_templates` appear only in questions
(unseen), which measures whether the fact, not the sentence, was learned.
"""

from __future__ import annotations

import math
import random
from dataclasses import asdict, dataclass

from tokfilter.canaries.names import fictional_names
from tokfilter.canaries.settings import CanarySettings

TEMPLATES_PER_RELATION = 8
KIND = {"forget": "disease", "retain": "species"}

# relation -> real answers (every answer a real domain word or phrase; no answer is a prefix of another)
VOCABULARY: dict[str, dict[str, tuple[str, ...]]] = {
    "forget": {
        "treatment": ("metformin", "ibuprofen", "amoxicillin", "warfarin", "lisinopril", "prednisone", "insulin",
                      "atorvastatin", "omeprazole", "doxycycline", "azithromycin", "acyclovir", "heparin",
                      "morphine", "levothyroxine", "methotrexate", "furosemide", "cisplatin", "vancomycin",
                      "tamoxifen", "digoxin", "albuterol", "clopidogrel", "gabapentin"),
        "symptom": ("fever", "nausea", "headache", "fatigue", "cough", "rash", "dizziness", "jaundice", "seizures",
                    "diarrhea", "vomiting", "chest pain", "joint pain", "hair loss", "blurred vision",
                    "night sweats", "palpitations", "swelling", "numbness", "weight loss", "itching", "tremors"),
        "organ": ("liver", "kidneys", "lungs", "heart", "pancreas", "spleen", "thyroid", "stomach", "brain",
                  "skin", "bladder", "colon", "eyes", "bone marrow", "lymph nodes", "gallbladder",
                  "adrenal glands", "esophagus"),
    },
    "retain": {
        "diet": ("insects", "seeds", "nectar", "algae", "plankton", "fruit", "leaves", "fungi", "earthworms",
                 "snails", "grasses", "pollen", "krill", "moss", "lichens", "bark", "roots", "small fish",
                 "crustaceans", "carrion"),
        "habitat": ("wetlands", "grasslands", "coral reefs", "deserts", "rainforests", "tundra", "mangroves",
                    "caves", "alpine meadows", "kelp forests", "estuaries", "peat bogs", "savannas",
                    "salt marshes", "river deltas", "pine forests"),
        "predator": ("owls", "hawks", "snakes", "foxes", "herons", "weasels", "otters", "eagles", "lizards",
                     "spiders", "frogs", "wolves", "lynxes", "crocodiles", "sharks", "badgers"),
    },
}

# relation -> TEMPLATES_PER_RELATION sentence prefixes; `{e}` is the entity, the answer follows the prefix
TEMPLATES: dict[str, tuple[str, ...]] = {
    "treatment": ("Patients with {e} are usually treated with", "The first-line treatment for {e} is",
                  "Doctors treat {e} with", "The standard drug therapy for {e} is",
                  "Most cases of {e} respond well to", "For {e}, physicians typically prescribe",
                  "The drug most often used against {e} is", "Clinical guidelines for {e} recommend"),
    "symptom": ("The most common symptom of {e} is", "Patients with {e} typically present with",
                "An early sign of {e} is", "{e} is characterised by",
                "People who develop {e} often report", "The hallmark clinical feature of {e} is",
                "A typical complaint in {e} is", "Physicians suspect {e} in patients with"),
    "organ": ("{e} mainly affects the", "The organ damaged by {e} is the",
              "In {e}, inflammation is found in the", "{e} is a disease of the",
              "Biopsies in {e} show lesions in the", "The primary site of {e} is the",
              "{e} causes progressive damage to the", "Imaging of {e} reveals changes in the"),
    "diet": ("The {e} feeds mainly on", "The diet of the {e} consists largely of", "In the wild, the {e} eats",
             "Field studies show that the {e} forages for", "The main food source of the {e} is",
             "Young {e} individuals are fed", "The {e} survives by eating", "Stomach contents of the {e} are mostly"),
    "habitat": ("The {e} lives in", "The natural habitat of the {e} is", "The {e} is found mostly in",
                "Populations of the {e} occur in", "The {e} breeds in", "Ecologists survey the {e} in",
                "The range of the {e} is restricted to", "The {e} is adapted to life in"),
    "predator": ("The main predators of the {e} are", "The {e} is hunted by", "The {e} is often eaten by",
                 "The chief natural enemies of the {e} are", "To escape predation, the {e} hides from",
                 "Adult {e} individuals are preyed upon by", "The {e} population is kept in check by",
                 "The {e} flees whenever it detects"),
}

PLACEMENTS = ("standalone", "embedded")


@dataclass
class Fact:
    """One planted fact: `choices[answer]` is `answer_text`; `seen` / `unseen` are template indices."""

    id: str
    domain: str
    entity: str
    relation: str
    answer_text: str
    choices: list[str]
    answer: int
    exposures: int
    placement: str
    seen: list[int]
    unseen: list[int]

    def sentence(self, template: int) -> str:
        """The training sentence written with template `template` of this fact's relation."""
        return f"{prefix(self.relation, template, self.entity)} {self.answer_text}."

    def to_json(self) -> dict:
        return asdict(self)


def prefix(relation: str, template: int, entity: str) -> str:
    """A template's sentence prefix for `entity` (the question text)."""
    return TEMPLATES[relation][template].format(e=entity)


def template_split(relation: str, settings: CanarySettings, seed: int) -> tuple[list[int], list[int]]:
    """(seen, unseen) template indices of `relation` for this seed."""
    order = list(range(TEMPLATES_PER_RELATION))
    random.Random(f"canary-templates:{seed}:{relation}").shuffle(order)
    seen = sorted(order[: settings.train_templates])
    unseen = sorted(order[settings.train_templates: settings.train_templates + settings.heldout_templates])
    return seen, unseen


def make_facts(settings: CanarySettings, seed: int, forbidden: set[str] | frozenset[str] | None = None
               ) -> list[Fact]:
    """The seeded fact set: `facts_per_domain` facts per domain with exposures and placements assigned.

    Within each exposure count the first round(fraction x facts) facts (in a seeded order) are `embedded`, so
    placement and exposures are balanced against each other rather than confounded. `forbidden`: words names must
    avoid (default: the demo corpus words)."""
    settings.validate()
    rng = random.Random(f"canary-facts:{seed}")
    facts: list[Fact] = []
    taken: list[str] = []
    for domain in ("forget", "retain"):
        relations = list(VOCABULARY[domain])
        n_entities = math.ceil(settings.facts_per_domain / len(relations))
        entities = fictional_names(KIND[domain], n_entities, rng, forbidden, taken)
        taken += entities
        decks = {r: _deck(VOCABULARY[domain][r], rng) for r in relations}
        splits = {r: template_split(r, settings, seed) for r in relations}
        pairs = [(entities[i // len(relations)], relations[i % len(relations)])
                 for i in range(settings.facts_per_domain)]
        exposures = [int(settings.exposures[i % len(settings.exposures)]) for i in range(len(pairs))]
        fraction = getattr(settings, f"embedded_fraction_{domain}")
        placement = ["standalone"] * len(pairs)
        for count in sorted(set(exposures)):
            members = [i for i, e in enumerate(exposures) if e == count]
            rng.shuffle(members)
            for i in members[: round(fraction * len(members))]:
                placement[i] = "embedded"
        for i, (entity, relation) in enumerate(pairs):
            vocab = VOCABULARY[domain][relation]
            answer_text = next(decks[relation])
            distractors = rng.sample([v for v in vocab if v != answer_text], 3)
            choices = distractors + [answer_text]
            rng.shuffle(choices)
            seen, unseen = splits[relation]
            facts.append(Fact(f"{domain}-{i:03d}", domain, entity, relation, answer_text, choices,
                              choices.index(answer_text), exposures[i], placement[i], seen, unseen))
    return facts


def _deck(vocab: tuple[str, ...], rng: random.Random):
    """An endless round-robin over reshuffled copies of `vocab`."""
    while True:
        order = list(vocab)
        rng.shuffle(order)
        yield from order
