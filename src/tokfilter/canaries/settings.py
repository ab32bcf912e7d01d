"""`CanarySettings`: the typed `[canaries]` section of an experiment file, with documented defaults.

Defaults are the quick demo's (docs/canaries.md "Calibration", measured through the pipeline): a 0.2M model
reading 300k tokens learns facts mentioned 512 and 1024 times (0.88 / 0.72 unfiltered) and none at 256 / 512, so 8
facts per domain (one relation, one option group per mention count) at 512 and 1024 mentions: 6,144 canary
sentences per domain, 37% of the quick demo's pretraining tokens. The full demo's 0.4M model learns 256 / 512
mentions (0.96 / 1.00): its experiment file plants 16 facts per domain there (17% of its tokens).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from tokfilter.errors import UserError

DOMAINS = ("forget", "retain")


TEMPLATES_PER_RELATION = 8  # sentence templates written per relation (facts.py); train + held-out <= this


@dataclass
class CanarySettings:
    """What to plant and how. `seed` < 0 follows the experiment seed; >= 0 pins the canary set across seeds.

    enabled                 the pipeline plants canaries only when True (an experiment opts in)
    facts_per_domain        facts per domain (forget = fictional diseases, retain = fictional species); a multiple
                            of relations_per_domain x 4 x len(exposures) (option groups, see facts.make_facts); each
                            entity carries one fact per relation
    relations_per_domain    how many relations each domain uses (forget: treatment, symptom, organ; retain: diet,
                            habitat, predator; the first N)
    exposures               distinct mention counts per fact; every option group has one fact per answer and count,
                            so one run gives accuracy against exposures
    embedded_fraction_forget  share of medical facts that appear ONLY as single sentences inside biology / general
                            documents (below a document filter's threshold); the rest get short medical documents;
                            embedded facts are dealt over the exposure counts in turn
    embedded_fraction_retain  share of biology facts that appear ONLY inside medical documents
    train_templates         paraphrase templates per relation used in the training text (seen question templates)
    heldout_templates       further templates per relation used only in questions (unseen question templates)
    sentences_per_document  canary sentences per standalone canary document
    """

    enabled: bool = False
    seed: int = -1
    facts_per_domain: int = 8
    relations_per_domain: int = 1
    exposures: list[int] = field(default_factory=lambda: [512, 1024])
    embedded_fraction_forget: float = 0.25
    embedded_fraction_retain: float = 0.25
    train_templates: int = 5
    heldout_templates: int = 2
    sentences_per_document: int = 4

    def validate(self) -> CanarySettings:
        """Raise `UserError` on values that cannot produce a canary set; returns self."""
        if self.facts_per_domain < 1:
            raise UserError(f"canaries.facts_per_domain must be >= 1, not {self.facts_per_domain}")
        if not self.exposures or any(int(e) < 1 for e in self.exposures):
            raise UserError(f"canaries.exposures must be a non-empty list of counts >= 1, not {self.exposures}")
        if not 1 <= self.relations_per_domain <= 3:
            raise UserError(f"canaries.relations_per_domain must be 1, 2 or 3, not {self.relations_per_domain}")
        if len(set(self.exposures)) != len(self.exposures):
            raise UserError(f"canaries.exposures must be distinct counts, not {self.exposures}")
        unit = self.relations_per_domain * 4 * len(self.exposures)
        if self.facts_per_domain % unit:
            raise UserError(f"canaries.facts_per_domain must be a multiple of relations_per_domain x 4 options x "
                            f"len(exposures) = {unit} (option groups of equally frequent answers), not "
                            f"{self.facts_per_domain}")
        for name in ("embedded_fraction_forget", "embedded_fraction_retain"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise UserError(f"canaries.{name} must be in [0, 1], not {value}")
        if self.train_templates < 1 or self.heldout_templates < 0:
            raise UserError("canaries.train_templates must be >= 1 and canaries.heldout_templates >= 0")
        if self.train_templates + self.heldout_templates > TEMPLATES_PER_RELATION:
            raise UserError(f"canaries.train_templates + heldout_templates must be <= {TEMPLATES_PER_RELATION} "
                            "(templates written per relation)")
        if self.sentences_per_document < 1:
            raise UserError("canaries.sentences_per_document must be >= 1")
        return self

    def resolved_seed(self, seed: int) -> int:
        """The seed the canary set is drawn from: `self.seed` when pinned (>= 0), else the experiment `seed`."""
        return self.seed if self.seed >= 0 else int(seed)
