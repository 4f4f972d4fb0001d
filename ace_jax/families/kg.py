"""Knowledge-graph embeddings in the ACE game: each training triple's head or tail corrupted K times, scored by a
scorers.kg model, the corruptions that are themselves training triples left out as false negatives.

The side to corrupt is drawn per triple when its batch is made: half and half, or Bernoulli by relation (Wang
et al. 2014: the head with probability tph / (tph + hpt), so a one-to-many relation's head is corrupted more
often than its many tails). The negatives are entity ids for that side, from the game's noise (uniform over
entities) and any generator."""

import dataclasses

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np

from ace_jax import game, generator
from ace_jax.scorers.kg import KgScorer


class KnownTriples(flax.struct.PyTreeNode):
    """The training triples, indexed from both sides for an exact membership test inside a step: sorted pairs
    (key, value), key = side · E · R + entity · R + relation and value the other entity, side 0 giving a head's
    tails and side 1 a tail's heads (the keys fit in int32 where 2 · E · R < 2³¹). A query finds its key's group
    by binary search, then its value inside the group in `rounds` halvings (the largest group's bit length), so
    a step asking about many candidates of one kept entity reads one short stretch of the index."""

    key: jax.Array  # [2N] int32
    value: jax.Array  # [2N] int32
    num_entities: int = flax.struct.field(pytree_node=False)
    num_relations: int = flax.struct.field(pytree_node=False)
    rounds: int = flax.struct.field(pytree_node=False)

    @classmethod
    def build(cls, triples: np.ndarray, num_entities: int, num_relations: int) -> "KnownTriples":
        if 2 * num_entities * num_relations >= 2**31:
            raise ValueError(f"{num_entities} entities × {num_relations} relations do not fit the int32 key")
        triples = np.unique(np.asarray(triples, np.int64).reshape(-1, 3), axis=0)
        heads, relations, tails = triples.T
        key = np.concatenate([heads * num_relations + relations,
                              num_entities * num_relations + tails * num_relations + relations])
        value = np.concatenate([tails, heads])
        order = np.lexsort((value, key))
        largest = int(np.unique(key, return_counts=True)[1].max(initial=0))
        return cls(jnp.asarray(key[order], jnp.int32), jnp.asarray(value[order], jnp.int32), num_entities,
                   num_relations, largest.bit_length())

    def contains_corruptions(self, kept: jax.Array, relations: jax.Array, corrupt_head: jax.Array,
                             entities: jax.Array) -> jax.Array:
        """Which corruptions are known: kept entities, relations and sides [B] (corrupt_head: `entities` are
        heads, else tails) against entities [B, n] or [n] -> [B, n]."""
        side = corrupt_head.astype(jnp.int32) * (self.num_entities * self.num_relations)
        key = (side + kept * self.num_relations + relations)[:, None]
        return self._member(key, entities if entities.ndim == 2 else entities[None])

    def _member(self, key: jax.Array, value: jax.Array) -> jax.Array:
        n, shape = self.key.shape[0], jnp.broadcast_shapes(key.shape, value.shape)
        if n == 0:
            return jnp.zeros(shape, bool)
        # each key's group [lo, end), found once per key before broadcasting against its candidates
        lo = jnp.searchsorted(self.key, key, side="left").astype(jnp.int32)
        end = jnp.searchsorted(self.key, key, side="right").astype(jnp.int32)
        lo, end, value = (jnp.broadcast_to(x, shape) for x in (lo, end, value))

        def halve(_, bounds):  # towards the lower bound of value in [lo, end)
            lo, hi = bounds
            mid = jnp.minimum((lo + hi) // 2, n - 1)
            below = self.value[mid] < value
            open_ = lo < hi
            return jnp.where(open_ & below, mid + 1, lo), jnp.where(open_ & ~below, mid, hi)

        # a loop, not unrolled: XLA on CPU fused the unrolled halvings of a [B, n] query into one 6× slower kernel
        lo, _ = jax.lax.fori_loop(0, self.rounds, halve, (lo, end))
        return (lo < end) & (self.value[jnp.minimum(lo, n - 1)] == value)


class TripleBatch(flax.struct.PyTreeNode):
    """B training triples and the side of each to corrupt.

    heads, relations, tails: [B] int32. corrupt_head: [B] bool (False: the tail). mask: [B] bool, the real
    triples (a last batch is padded). known: the training triples, for the false-negative rule.
    weights: `subsampling_weights` of the triples, read by a family that subsamples.
    """

    heads: jax.Array
    relations: jax.Array
    tails: jax.Array
    corrupt_head: jax.Array
    mask: jax.Array
    known: KnownTriples
    weights: jax.Array | None = None  # [B] float: each triple's weight where the family subsamples (None: 1 each)


def bernoulli_head_probs(train: np.ndarray, num_relations: int) -> np.ndarray:
    """[R] float32: tph / (tph + hpt) of each relation, the mean tails per head and heads per tail in its
    training triples; 0.5 for a relation with no training triple."""
    train = np.unique(np.asarray(train).reshape(-1, 3), axis=0)
    probs = np.full(num_relations, 0.5, np.float32)
    for r in range(num_relations):
        rows = train[train[:, 1] == r]
        if len(rows):
            tph = len(rows) / len(np.unique(rows[:, 0]))
            hpt = len(rows) / len(np.unique(rows[:, 2]))
            probs[r] = tph / (tph + hpt)
    return probs


def subsampling_weights(train: np.ndarray, num_entities: int, num_relations: int) -> np.ndarray:
    """[N] float32: each training triple's 1 / √(#(h, r) + #(r, t) + 6), #(h, r) the training triples with its head
    and relation, #(r, t) with its relation and tail: RotatE's code's word2vec-like subsampling (its counts start
    at 4 for the first occurrence, so each count is 3 more than the triples)."""
    h, r, t = (train[:, i].astype(np.int64) for i in range(3))
    counts = 6.0
    for key in (h * num_relations + r, t * num_relations + r):
        _, inverse, count = np.unique(key, return_inverse=True, return_counts=True)
        counts = counts + count[inverse]
    return (1.0 / np.sqrt(counts)).astype(np.float32)


def make_batch(triples: jax.Array, head_probs: jax.Array, known: KnownTriples, key: jax.Array, mask=None,
               weights=None) -> TripleBatch:
    """A batch of [B, 3] (head, relation, tail) triples, each to be corrupted at its head with probability
    head_probs[relation] (all 0.5: uniform sides; `bernoulli_head_probs`: Wang et al.'s)."""
    triples = jnp.asarray(triples, jnp.int32)
    heads, relations, tails = triples[:, 0], triples[:, 1], triples[:, 2]
    corrupt_head = jax.random.uniform(key, heads.shape) < head_probs[relations]
    mask = jnp.ones(heads.shape, bool) if mask is None else mask
    return TripleBatch(heads, relations, tails, corrupt_head, mask, known, weights)


@dataclasses.dataclass(frozen=True)
class Triples:
    """The family: a positive triple against its K corruptions, logits [B, 1, 1 + K] = scorer's score + gamma
    (RotatE's margin inside the logistic loss: σ(γ − d); 0 for the margin ranking loss, whose margin is the
    loss's own). An L2 or N3 regulariser of the rows read joins the discriminator's loss. A corruption is false
    when it is a training triple (the discriminator leaves it out, a generator gets the penalty); one equal to the
    positive itself is such a triple. free_entities: the scorer's entity set is not kept (TransE's and TransD's
    rows left outside the unit ball, as RotatE's code trains TransE). subsampling: each triple's terms weighted by
    the batch's `weights`, the loss their weighted mean (RotatE's code's subsampling)."""

    scorer: KgScorer = KgScorer()
    gamma: float = 0.0
    regulariser: str = "none"  # none, l2 (Σ x²) or n3 (Σ |x|³, a complex coordinate's modulus; Lacroix et al.)
    reg_weight: float = 0.0  # times the regulariser of the rows a step reads, over its real triples
    free_entities: bool = False
    subsampling: bool = False

    @property
    def constrained(self) -> bool:
        return self.scorer.constrained and not self.free_entities

    def constrain(self, params: dict, ids: dict) -> dict:
        """The game's hook: only the rows the step read can have moved, so only they are put back in the
        scorer's set (TransE's unit ball, order embeddings' orthant; a repeated id gets the same value each
        time)."""
        if not self.constrained:
            return params
        rows = ids["entity"]
        return {**params, "entity": params["entity"].at[rows].set(self.scorer.project(params["entity"][rows]))}

    def init(self, key: jax.Array, num_entities: int, num_relations: int, dim: int) -> dict:
        return self.scorer.init(key, num_entities, num_relations, dim)

    def layout(self, batch: TripleBatch) -> game.Layout:
        given = 1.0 if batch.weights is None else batch.weights
        weights = jnp.where(batch.mask, given, 0.0)[:, None] if self.subsampling else None
        return game.Layout(pairs=batch.mask[:, None], slots=batch.mask[:, None], weights=weights)

    def candidates(self, batch: TripleBatch, negatives: jax.Array) -> jax.Array:
        """[B, 1, 1 + K]: the corrupted side's true entity, then the negatives."""
        true = jnp.where(batch.corrupt_head, batch.heads, batch.tails)
        return jnp.concatenate([true[:, None, None], negatives], axis=-1)

    def rows(self, batch: TripleBatch, negatives: jax.Array) -> dict:
        kept = jnp.where(batch.corrupt_head, batch.tails, batch.heads)
        entities = jnp.concatenate([kept[:, None], self.candidates(batch, negatives)[:, 0]], axis=-1)  # [B, 2 + K]
        return {name: entities if name.startswith("entity") else batch.relations for name in self.scorer.tables}

    def score(self, rows: dict, batch: TripleBatch, negatives: jax.Array) -> jax.Array:
        entity = {name: rows[name] for name in rows if name.startswith("entity")}  # [B, 2 + K, d]
        kept = {name: value[:, :1] for name, value in entity.items()}  # [B, 1, d]
        cands = {name: value[:, 1:] for name, value in entity.items()}  # [B, 1 + K, d]
        relation = {name: rows[name][:, None] for name in rows if name.startswith("relation")}
        side = batch.corrupt_head[:, None, None]
        heads = {name: jnp.where(side, cands[name], kept[name]) for name in entity}
        tails = {name: jnp.where(side, kept[name], cands[name]) for name in entity}
        return (self.scorer.score(heads, relation, tails) + self.gamma)[:, None, :]  # [B, 1, 1 + K]

    def is_false(self, batch: TripleBatch, negatives: jax.Array) -> jax.Array:
        """[B, 1, K]: which negatives make a training triple, looked up from the kept side (one key a triple)."""
        kept = jnp.where(batch.corrupt_head, batch.tails, batch.heads)
        known = batch.known.contains_corruptions(kept, batch.relations, batch.corrupt_head,
                                                 negatives.reshape(negatives.shape[0], -1))
        return known.reshape(negatives.shape)

    def extra_loss(self, rows: dict, batch: TripleBatch) -> dict:
        """{"regulariser": weight × the mean over real triples of Σ x² (l2) or Σ |x|³ (n3) over the rows read,
        a complex coordinate counted by its modulus; TransD's projections and RotatE's phases are left out."""
        if self.regulariser == "none" or not self.reg_weight:
            return {}
        real = batch.mask.astype(jnp.float32)
        total = 0.0
        for name in ("entity", "relation"):
            if name not in rows:
                continue
            squares = rows[name] ** 2 + (rows[f"{name}_im"] ** 2 if f"{name}_im" in rows else 0.0)
            per_row = squares.sum(-1) if self.regulariser == "l2" else (squares ** 1.5).sum(-1)
            per_triple = per_row.reshape(real.shape[0], -1).sum(-1)  # entity rows: [B, 2 + K]; relation: [B]
            total = total + (per_triple * real).sum()
        return {"regulariser": self.reg_weight * total / jnp.maximum(real.sum(), 1.0)}


KNOWN_LOGIT = -1e30  # a masked draw's logit: probability 0, entropy term 0 · (−1e30) = 0, no NaN


@dataclasses.dataclass(frozen=True)
class KgGenerator:
    """g(y | kept entity, relation, side): the learned sampler of the corrupted side's entity.

    scorer: the generator's own model on its own tables (DistMult or ComplEx, as KBGAN's), logits s_G(h, r, y);
      None: it reads the discriminator's detached tables (as the ACE authors' KG code with share_D_embedding),
      logits β · s_D(h, r, y) + c_y with β = exp(log_beta) and a bias c [E] its only parameters; with
      relation_beta, log_beta is [R, 2], one β per relation and corrupted side (column 1: the head).
    candidates: None, a softmax over every entity (both sides are scored, [B, E] each, and each row keeps its
      own); n, over n noise draws shared by the batch (per_query False, the pool form) or each triple's own
      (True, KBGAN's form, n = 20 there), minus log q, as generator.Pool.
    mask_known: the candidate forms only: a draw that would make a training triple gets probability 0 (logit
      KNOWN_LOGIT), so the generator never proposes a false negative instead of learning to avoid them through
      the penalty (where the hardest candidates are mostly true, as hyponyms of an upper synset, the penalty
      teaches it to flatten). A row whose draws are all known stays uniform over them.
    """

    scorer: KgScorer | None = None
    disc_scorer: KgScorer = KgScorer()
    candidates: int | None = None
    per_query: bool = False
    mask_known: bool = False
    relation_beta: bool = False

    def __post_init__(self):
        if self.mask_known and self.candidates is None:
            raise ValueError("mask_known needs the pool or KBGAN-style form (candidates), not the exact softmax")
        if self.relation_beta and self.scorer is not None:
            raise ValueError("relation_beta tilts the discriminator's scores: it needs scorer None")

    def init(self, key: jax.Array, num_entities: int, num_relations: int, dim: int, temperature: float = 1.0) -> dict:
        if self.scorer is None:
            params = generator.tied_init(jnp.zeros(num_entities), temperature)
            if self.relation_beta:
                params["log_beta"] = jnp.full((num_relations, 2), params["log_beta"])
            return params
        return self.scorer.init(key, num_entities, num_relations, dim)

    def logits_of(self, params: dict, disc: dict, batch: TripleBatch, draws: jax.Array | None) -> jax.Array:
        """[B, E] or [B, n] logits over every entity or the draws, as the corrupted side of each triple."""
        scorer, tables = (self.disc_scorer, jax.lax.stop_gradient(disc)) if self.scorer is None else (self.scorer,
                                                                                                      params)
        kept = jnp.where(batch.corrupt_head, batch.tails, batch.heads)
        if draws is None:
            as_head = scorer.score_all(tables, kept, batch.relations, "head")
            as_tail = scorer.score_all(tables, kept, batch.relations, "tail")
            scores = jnp.where(batch.corrupt_head[:, None], as_head, as_tail)
        else:
            kept_rows = {k: v[:, None] for k, v in scorer.entity_rows(tables, kept).items()}  # [B, 1, d]
            relation = {k: v[:, None] for k, v in scorer.relation_rows(tables, batch.relations).items()}
            cands = scorer.entity_rows(tables, draws if draws.ndim == 2 else draws[None])  # [B or 1, n, d]
            scores = scorer.score_corruptions(kept_rows, relation, cands, batch.corrupt_head)  # [B, n]
        if self.scorer is not None:
            return scores
        bias = params["bias"] if draws is None else params["bias"][draws]
        log_beta = params["log_beta"]
        if log_beta.ndim:  # [R, 2]: each triple's relation and side
            log_beta = log_beta[batch.relations, batch.corrupt_head.astype(jnp.int32)][:, None]
        return jnp.exp(log_beta) * scores + (bias if bias.ndim == 2 else bias[None, :])

    def propose(self, params, batch: TripleBatch, noise_data, key, *, family, game, sparse: bool, disc=None
                ) -> generator.Proposal:
        if sparse:
            raise ValueError("the knowledge-graph generator updates whole tables: give it an optax transform")
        draws, offset = None, 0.0
        if self.candidates is not None:
            shape = (batch.heads.shape[0], self.candidates) if self.per_query else (self.candidates,)
            draws = game.noise.sample(noise_data, key, batch, shape)
            log_q = game.noise.log_prob(noise_data, draws)
            offset = -(log_q if log_q.ndim == 2 else log_q[None, :])  # a softmax over draws from q, unbiased
        known = self.known_draws(batch, draws) if self.mask_known else None

        def logits_of(p):
            logits = self.logits_of(p, disc, batch, draws) + offset
            return logits if known is None else jnp.where(known, KNOWN_LOGIT, logits)

        logits, vjp = jax.vjp(logits_of, params)
        return generator.Proposal(logits, vjp, draws)

    @staticmethod
    def known_draws(batch: TripleBatch, draws: jax.Array) -> jax.Array:
        """[B, n]: which draws ([n] shared or [B, n] per triple), as the corrupted side, make a training triple."""
        kept = jnp.where(batch.corrupt_head, batch.tails, batch.heads)
        return batch.known.contains_corruptions(kept, batch.relations, batch.corrupt_head, draws)
