"""Relations, their real answer vocabularies, paraphrase templates, and seeded fact sets.

A fact is (fictional entity, relation, real answer): "Movruitis is treated with warfarin", "the skanoxix feeds on
krill". The entity is invented (`names.py`), so the only way a model can know the fact is from the planted text; the
answer is a real, domain-typical word, so the text reads like its domain and a token classifier scores it like any
medical or biology sentence. Distractors come from the same relation's vocabulary, and more strictly from the
answers of the same option group, which are exactly as frequent in the canary text as the answer (`make_facts`).

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
from tokfilter.canaries.settings import TEMPLATES_PER_RELATION, CanarySettings
from tokfilter.errors import UserError

OPTIONS = 4  # choices per question
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


def relations(domain: str, settings: CanarySettings) -> list[str]:
    """The first `settings.relations_per_domain` relations of `domain`, in `VOCABULARY` order."""
    return list(VOCABULARY[domain])[: settings.relations_per_domain]


def make_facts(settings: CanarySettings, seed: int, forbidden: set[str] | frozenset[str] | None = None
               ) -> list[Fact]:
    """The seeded fact set: `facts_per_domain` facts per domain with exposures and placements assigned.

    round(fraction x facts) facts are `embedded`, dealt over the exposure counts in turn, so placement and
    exposures are balanced against each other rather than confounded. A relation's facts come in option groups:
    4 real answers x the exposure counts, each answer belonging to one fact at each count. A question's options are
    its group's 4 answers, all equally frequent in the canary text after the same templates, so knowing which
    words follow a template (without the entity) gives chance and only the entity tells the answer (measured: with
    distractors of other exposure counts, the most-mentioned answer won every question of its relation).
    `forbidden`: words names must avoid (default: the demo corpus words)."""
    settings.validate()
    rng = random.Random(f"canary-facts:{seed}")
    facts: list[Fact] = []
    taken: list[str] = []
    for domain in ("forget", "retain"):
        names = relations(domain, settings)
        n_entities = math.ceil(settings.facts_per_domain / len(names))
        entities = fictional_names(KIND[domain], n_entities, rng, forbidden, taken)
        taken += entities
        pairs = [(entities[i // len(names)], names[i % len(names)]) for i in range(settings.facts_per_domain)]
        levels = sorted({int(e) for e in settings.exposures})
        # a relation's facts come in option groups of OPTIONS answers x len(levels) exposure counts: every answer of
        # a group belongs to one fact at each count, so the group's answers are equally frequent in the canary text
        # and the group is every question's option set; j = index within the relation -> (group, answer, level)
        exposures, slot = [0] * len(pairs), [(0, 0)] * len(pairs)
        for relation in names:
            for j, i in enumerate(i for i, (_, r) in enumerate(pairs) if r == relation):
                group, rest = divmod(j, OPTIONS * len(levels))
                slot[i] = (group, rest // len(levels))
                exposures[i] = levels[rest % len(levels)]
        # placement: round(fraction x facts) embedded facts, dealt over the exposure counts in turn (seeded order)
        # so placement and exposures are balanced rather than confounded
        placement = ["standalone"] * len(pairs)
        pools = {count: [i for i, e in enumerate(exposures) if e == count] for count in levels}
        for pool in pools.values():
            rng.shuffle(pool)
        turn = list(levels)
        rng.shuffle(turn)
        wanted = round(getattr(settings, f"embedded_fraction_{domain}") * len(pairs))
        while wanted > 0:
            for count in turn:
                if wanted > 0 and pools[count]:
                    placement[pools[count].pop()] = "embedded"
                    wanted -= 1
        groups: dict[tuple[str, int], list[str]] = {}
        for relation in names:
            n_groups = 1 + max(slot[i][0] for i, (_, r) in enumerate(pairs) if r == relation)
            vocab = VOCABULARY[domain][relation]
            if n_groups * OPTIONS > len(vocab):
                raise UserError(f"canaries: {n_groups * OPTIONS} {relation} answers needed but only {len(vocab)} "
                                "exist; lower facts_per_domain or raise relations_per_domain")
            drawn = rng.sample(vocab, n_groups * OPTIONS)
            for g in range(n_groups):
                groups[relation, g] = drawn[g * OPTIONS: (g + 1) * OPTIONS]
        for i, (entity, relation) in enumerate(pairs):
            group, k = slot[i]
            answer = groups[relation, group][k]
            choices = list(groups[relation, group])
            rng.shuffle(choices)
            seen, unseen = template_split(relation, settings, seed)
            facts.append(Fact(f"{domain}-{i:03d}", domain, entity, relation, answer, choices,
                              choices.index(answer), exposures[i], placement[i], seen, unseen))
    return facts


