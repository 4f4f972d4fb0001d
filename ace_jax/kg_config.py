"""A knowledge-graph run's settings, without JAX: the command line builds its parser from them."""

import dataclasses
from typing import ClassVar

from ace_jax.errors import check, one_of

MODELS = ("transe", "transd", "distmult", "complex", "rotate")  # kg train's; "order" is the hypernym runs'
# Each model's tables (scorers.kg): "entity…" tables have a row per entity, "relation…" tables one per relation.
TABLES = {
    "transe": ("entity", "relation"),
    "transd": ("entity", "entity_proj", "relation", "relation_proj"),
    "distmult": ("entity", "relation"),
    "complex": ("entity", "entity_im", "relation", "relation_im"),
    "rotate": ("entity", "entity_im", "relation_phase"),
    "order": ("entity",),
}
SAMPLERS = ("uniform", "bernoulli", "self-adv", "self-adv-pool", "kbgan", "ace")
GENERATORS = ("exact", "pool", "kbgan")
LOSSES = ("margin", "logistic", "contrastive")
REWARDS = ("loss", "score")
GEN_BETAS = ("shared", "relation")
# The generator form a sampler gets unless told otherwise, (generator, gen_tables): KBGAN's own DistMult choosing
# among 20 uniform candidates for kbgan; for ace the form that learns with the margin loss (results/kg-tuning.md),
# the discriminator's detached tables over a pool of 1,024; self-adv-pool draws from that form's softmax, not learned.
SAMPLER_GENERATORS = {"kbgan": ("kbgan", "own"), "ace": ("pool", "discriminator"),
                      "self-adv-pool": ("pool", "discriminator")}
REGULARISERS = ("none", "l2", "n3")
OPTIMIZERS = ("sgd", "adagrad", "adam")  # sparse_optim's row optimisers
ENTITY_NORMS = ("ball", "sphere")  # TransE's entities: norm at most 1, or exactly 1 (its paper's)


@dataclasses.dataclass(frozen=True)
class KgRunConfig:
    """A knowledge-graph run.

    data: fb15k-237, wn18rr, wn18 or a folder (data.triples.load_kg). Each epoch visits the training triples
    once in a fresh order, `batch` a step, each against `negatives` corruptions of its head or tail: sides half
    and half, or Bernoulli by relation (sampler bernoulli, or sides bernoulli with any sampler); self-adv
    weighs uniform corruptions by K · softmax(α s) (Sun et al. 2019); self-adv-pool draws each negative from that
    distribution, p ∝ exp(α s_D), over the candidates of the generator's form (ace's pool of 1,024 by default)
    instead of weighing K uniform ones, mixed with uniform noise by λ as ace: ace's generator with β = α fixed, no
    bias and no learning, so the two differ only in what REINFORCE adds; kbgan draws every negative from the
    generator (λ = 0, Cai & Wang 2018), ace a λ-mixture of uniform noise and the generator (Bose et al. 2018).
    The generator (families.kg.KgGenerator; its form by sampler unless given, SAMPLER_GENERATORS): a softmax over
    every entity (exact), over `candidates` uniform draws shared by the batch (pool) or each triple's own (kbgan;
    candidates 0 takes 1024 and 20), on its own DistMult or ComplEx tables (gen_tables own) or reading the
    discriminator's (discriminator: β · s_D + c, with one β, or with gen_beta relation one per relation and
    corrupted side, so REINFORCE can make the generator sharper on some relations than on others).
    loss: margin, max(0, margin − s+ + s-) per corruption; logistic, RotatE's −log σ(γ + s+) − Σ w log σ(−γ − s-),
    with s the model's score; or contrastive, −s+ + Σ w max(0, margin + s-) (order embeddings', s = −E).
    init, gen_init: a finished kg run on the same graph whose tables start the discriminator (its model and dim
    this run's) or the generator's own tables (gen_model, gen_dim): KBGAN's pretraining. Its epochs are not this
    run's: add them to its budget when comparing samplers.
    average_negatives, subsampling, free_entities, init_range, lr_drop_epoch: RotatE's code's TransE (Sun et al.
    2019's repository): the negatives' terms weighted to sum to 1 (its eq. 5; ours otherwise sum to K, so that
    α → 0 is word2vec's loss), each triple's terms weighted by 1 / √(#(h, r) + #(r, t) + 6) in a weighted mean
    over the batch (families.kg.subsampling_weights), entities not kept in the unit ball, every table uniform on
    ±(γ + 2)/d, and after half the steps the learning rate / 10 with a fresh Adam (its moments and bias
    correction started again; the discriminator's only).
    entity_norm: TransE's entities kept at norm at most 1 (ball) or exactly 1 (sphere, TransE's paper): every row
    put there at the start, and each row a step reads after the step.
    The valid split is ranked every `eval_every` epochs; after `patience` evaluations without a better valid
    MRR training stops (0: never), and the outputs are the best evaluation's parameters.
    """

    models: ClassVar[tuple[str, ...]] = MODELS
    samplers: ClassVar[tuple[str, ...]] = SAMPLERS

    data: str = "wn18rr"
    model: str = "transe"
    norm: int = 1
    dim: int = 50
    sampler: str = "uniform"
    sides: str = "uniform"
    negatives: int = 10
    loss: str = "margin"
    margin: float = 3.0  # the ACE authors' TransD code
    gamma: float = 9.0  # the logistic loss only (RotatE's FB15k-237 setting)
    self_adv_temperature: float = 1.0  # α: self-adv's and self-adv-pool's
    lam: float = 0.5  # ace and self-adv-pool: the probability a negative is uniform noise
    generator: str = ""  # "": the sampler's (SAMPLER_GENERATORS)
    gen_tables: str = ""  # "": the sampler's
    gen_model: str = "distmult"
    gen_dim: int = 50
    gen_lr: float = 1e-3  # Adam
    gen_temperature: float = 1.0  # gen_tables discriminator: β starts at 1 / T
    gen_beta: str = "shared"  # gen_tables discriminator: one β, or one per (relation, corrupted side)
    candidates: int = 0
    entropy_weight: float = 0.1
    entropy_target: float = 2.0  # nats: max(0, target − H(g)) is penalised
    reward: str = "loss"  # the generator's: the discriminator's loss on its negative, or the negative's score
    mask_known: bool = False  # the generator's draws that are training triples get probability 0 (pool, kbgan)
    false_negative_penalty: float = 1.0  # a generator draw that is a training triple earns −penalty as its reward
    regulariser: str = "none"
    reg_weight: float = 0.0
    average_negatives: bool = False  # the negatives' terms averaged (RotatE's loss), not summed (word2vec's)
    subsampling: bool = False  # each triple weighted by 1 / √(#(h, r) + #(r, t) + 6), RotatE's code's
    free_entities: bool = False  # TransE's and TransD's entities not kept in the unit ball (RotatE's TransE)
    entity_norm: str = "ball"  # TransE's entities at norm at most 1, or exactly 1 (sphere: TransE's paper)
    init_range: float = 0.0  # r > 0: every table starts uniform on [−r, r] (RotatE's code: (γ + 2) / d); 0: the model's
    optimizer: str = "adam"
    lr: float = 1e-3
    lr_drop_epoch: int = 0  # from this epoch on, lr / 10 and a fresh optimiser (RotatE's: half the steps); 0: never
    batch: int = 1024
    epochs: int = 100
    eval_every: int = 10  # epochs
    patience: int = 0
    eval_batch: int = 256
    seed: int = 0
    log_every: int = 100
    init: str = ""
    gen_init: str = ""

    def __post_init__(self):
        generator, gen_tables = SAMPLER_GENERATORS.get(self.sampler, SAMPLER_GENERATORS["kbgan"])
        object.__setattr__(self, "generator", self.generator or generator)
        object.__setattr__(self, "gen_tables", self.gen_tables or gen_tables)
        positive = "{name} must be positive, not {value}"
        at_least_1 = "{name} must be at least 1, not {value}"
        check([
            (self.model in self.models, "model", self.model, one_of(self.models)),
            (self.norm in (1, 2), "norm", self.norm, "{name} must be 1 or 2, not {value}"),
            (self.sampler in self.samplers, "sampler", self.sampler, one_of(self.samplers)),
            (self.sides in ("uniform", "bernoulli"), "sides", self.sides, one_of(("uniform", "bernoulli"))),
            (self.loss in LOSSES, "loss", self.loss, one_of(LOSSES)),
            (self.generator in GENERATORS, "generator", self.generator, one_of(GENERATORS)),
            (self.gen_tables in ("own", "discriminator"), "gen_tables", self.gen_tables,
             one_of(("own", "discriminator"))),
            (self.gen_model in ("distmult", "complex"), "gen_model", self.gen_model, one_of(("distmult", "complex"))),
            (0.0 <= self.lam <= 1.0, "lam", self.lam, "{name} must lie in [0, 1], not {value}"),
            (self.gen_dim >= 1, "gen_dim", self.gen_dim, at_least_1),
            (self.gen_lr > 0, "gen_lr", self.gen_lr, positive),
            (self.reward in REWARDS, "reward", self.reward, one_of(REWARDS)),
            (self.gen_temperature > 0, "gen_temperature", self.gen_temperature, positive),
            (self.gen_beta in GEN_BETAS, "gen_beta", self.gen_beta, one_of(GEN_BETAS)),
            (self.gen_beta == "shared" or (self.learns_generator and self.gen_tables == "discriminator"), "gen_beta",
             self.gen_beta, "{name} relation learns β per relation: it needs --sampler ace or kbgan and "
             "--gen-tables discriminator"),
            (self.candidates >= 0, "candidates", self.candidates, "{name} must be at least 0 (0: the form's), not "
             "{value}"),
            (self.false_negative_penalty >= 0, "false_negative_penalty", self.false_negative_penalty,
             "{name} must be at least 0, not {value}"),
            (self.false_negative_penalty == 1.0 or self.learns_generator, "false_negative_penalty",
             self.false_negative_penalty, "{name} is a learned generator's reward: it needs --sampler ace or kbgan"),
            (self.entropy_weight >= 0, "entropy_weight", self.entropy_weight, "{name} must be at least 0, not {value}"),
            (self.regulariser in REGULARISERS, "regulariser", self.regulariser, one_of(REGULARISERS)),
            (self.optimizer in OPTIMIZERS, "optimizer", self.optimizer, one_of(OPTIMIZERS)),
            (self.dim >= 1, "dim", self.dim, at_least_1),
            (self.negatives >= 1, "negatives", self.negatives, at_least_1),
            (self.batch >= 1, "batch", self.batch, at_least_1),
            (self.epochs >= 0, "epochs", self.epochs, "{name} must be at least 0, not {value}"),
            (self.eval_every >= 1, "eval_every", self.eval_every, at_least_1),
            (self.patience >= 0, "patience", self.patience, "{name} must be at least 0 (0: never), not {value}"),
            (self.eval_batch >= 1, "eval_batch", self.eval_batch, at_least_1),
            (self.log_every >= 1, "log_every", self.log_every, at_least_1),
            (self.lr > 0, "lr", self.lr, positive),
            (0 <= self.lr_drop_epoch < max(self.epochs, 1), "lr_drop_epoch", self.lr_drop_epoch,
             f"{{name}} must lie in [0, --epochs {self.epochs}) (0: never), not {{value}}"),
            (self.init_range >= 0, "init_range", self.init_range, "{name} must be at least 0 (0: the model's), not "
             "{value}"),
            (self.init_range == 0 or self.model != "rotate", "init_range", self.init_range,
             "{name} sets real tables: RotatE's phases have their own init (--model rotate)"),
            (self.init_range == 0 or not self.init, "init_range", self.init_range,
             "{name} draws the starting tables: not with --init, which takes a finished run's"),
            (not self.free_entities or self.model in ("transe", "transd"), "free_entities", self.free_entities,
             "{name} frees TransE's and TransD's entities from the unit ball: it needs --model transe or transd"),
            (self.entity_norm in ENTITY_NORMS, "entity_norm", self.entity_norm, one_of(ENTITY_NORMS)),
            (self.entity_norm == "ball" or (self.model == "transe" and not self.free_entities), "entity_norm",
             self.entity_norm, "{name} sphere keeps TransE's entities at norm 1: it needs --model transe, and not "
             "--free-entities"),
            (not self.gen_init or (self.learns_generator and self.gen_tables == "own"), "gen_init", self.gen_init,
             "{name} starts the generator's own tables: it needs --sampler kbgan or ace and --gen-tables own"),
            (self.sampler != "self-adv-pool" or self.gen_tables == "discriminator", "gen_tables", self.gen_tables,
             "{name} must be discriminator with --sampler self-adv-pool: it draws from the discriminator's scores"),
            (self.self_adv_temperature > 0, "self_adv_temperature", self.self_adv_temperature, positive),
            (not self.mask_known or (self.uses_generator and self.generator != "exact"), "mask_known",
             self.mask_known, "{name} masks the draws of a generator: it needs --sampler kbgan, ace or self-adv-pool "
             "and --generator pool or kbgan"),
            (self.margin >= 0, "margin", self.margin, "{name} must be at least 0, not {value}"),
            (self.reg_weight >= 0, "reg_weight", self.reg_weight, "{name} must be at least 0, not {value}"),
        ])

    @property
    def uses_generator(self) -> bool:
        """Whether negatives come from a generator's softmax (learned or not)."""
        return self.sampler in ("kbgan", "ace", "self-adv-pool")

    @property
    def learns_generator(self) -> bool:
        return self.sampler in ("kbgan", "ace")

    @property
    def num_candidates(self) -> int | None:
        """The generator's softmax: None over every entity, else over this many draws."""
        if self.generator == "exact":
            return None
        return self.candidates or {"pool": 1024, "kbgan": 20}[self.generator]

    def to_json(self) -> dict:
        # The arrays a finished run writes, by table: anyone can load them without reading this code.
        return {**dataclasses.asdict(self), "arrays": {name: f"{name}_embeddings.npy" for name in TABLES[self.model]}}

    @classmethod
    def from_json(cls, data: dict) -> "KgRunConfig":
        return cls(**{k: v for k, v in data.items() if k != "arrays"})
