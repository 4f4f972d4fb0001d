"""The named methods ("ns", "ace-pool", "ace-kbgan-step", ...): one registry for the CLI, the experiments and
the benchmarks. A method is a label and settings: its game's (word.GameConfig or s2net.S2NetConfig) and its
run's (embeddings.WordConfig or s2net_run.S2NetRunConfig)."""

import dataclasses
import json


@dataclasses.dataclass(frozen=True)
class Method:
    label: str
    game: dict = dataclasses.field(default_factory=dict)
    run: dict = dataclasses.field(default_factory=dict)

    @property
    def settings(self) -> dict:
        """Game and run settings in one flat dict (their field names never overlap)."""
        return {**self.game, **self.run}


# The cheap generators' entropy is over their draws (at most log n nats), so their targets sit below log n.
POOL, KBGAN = dict(generator="pool", candidates=1024), dict(generator="kbgan", candidates=64, entropy_target=2.0)
STEP = dict(reach="step")  # one window size per step: no step scores empty pair slots
SHARED = dict(sampler="ns", shared_negatives=True)
TIED = dict(sampler="ace", gen_tables="discriminator")  # g ∝ exp(β u_x · v_y + c_y) over D's rows (generator.Tied)

# `ace-jax train`'s method when no flag asks for a sampler or layout: at or above gensim's ρ at 1.4x its words/s on
# the whole enwiki-00 shard (BENCHMARKS.md, README "Defaults"); `--method ns` is word2vec's per-pair form.
DEFAULT_WORD = "ns-shared-step"

WORD = {
    "ns": Method("skip-gram, negative sampling (λ=1)", dict(sampler="ns")),
    "nce": Method("skip-gram, NCE", dict(sampler="nce")),
    "adv": Method("skip-gram, ADV only (λ=0)", dict(sampler="adv")),
    "ace": Method("skip-gram, ACE (λ=0.5)", dict(sampler="ace")),
    "self-adv": Method("skip-gram, self-adversarial NS", dict(sampler="self-adv")),
    "softmax": Method("skip-gram, full softmax", dict(sampler="softmax")),
    "hs": Method("skip-gram, hierarchical softmax", dict(sampler="hs")),
    "ns-shared": Method("skip-gram, negative sampling, negatives shared by a centre's contexts", SHARED),
    "ns-shared-step": Method(
        "skip-gram, negative sampling, negatives shared by a centre's contexts, one reach per step, row clip 50",
        SHARED, dict(**STEP, row_clip=50.0)),
    "ace-pool": Method("skip-gram, ACE, pool generator (1024 shared draws)", dict(sampler="ace", **POOL)),
    "ace-kbgan": Method("skip-gram, ACE, KBGAN-style generator (64 draws per query, H target 2)",
                        dict(sampler="ace", **KBGAN)),
    "ace-pool-step": Method("skip-gram, ACE, pool generator, one reach per step", dict(sampler="ace", **POOL), STEP),
    "ace-kbgan-step": Method("skip-gram, ACE, KBGAN-style generator, one reach per step", dict(sampler="ace", **KBGAN),
                             STEP),
    "ace-tied": Method("skip-gram, ACE, generator reading the discriminator's rows (exact)", TIED),
    "ace-tied-pool": Method("skip-gram, ACE, generator reading the discriminator's rows (pool)", {**TIED, **POOL}),
    "ace-tied-kbgan": Method("skip-gram, ACE, generator reading the discriminator's rows (KBGAN-style)",
                             {**TIED, **KBGAN}),
}

S2NET = {
    "gold": Method("S2Net, gold preferences only (the paper's)", dict(sampler="none")),
    "uniform": Method("S2Net + uniform negatives", dict(sampler="uniform")),
    "in-batch": Method("S2Net + in-batch negatives", dict(sampler="in-batch")),
    "self-adv": Method("S2Net + self-adversarial weighting", dict(sampler="self-adv")),
    "ace": Method("S2Net + ACE (λ=0.5)", dict(sampler="ace")),
}


def word_config(method: str, **fields):
    """An embeddings.WordConfig for a named method: the method's settings, then `fields` (WordConfig's and
    word.GameConfig's, flat) over them."""
    from ace_jax.embeddings import WordConfig
    from ace_jax.families.word import GameConfig

    settings = {**lookup(WORD, method).settings, **fields}
    game_names = {f.name for f in dataclasses.fields(GameConfig)}
    game = {name: settings.pop(name) for name in list(settings) if name in game_names}
    return WordConfig(**settings, game=GameConfig(**game))


def s2net_config(method: str, **fields):
    """An s2net_run.S2NetRunConfig for a named method, `fields` (flat) over its settings."""
    from ace_jax.s2net_run import make_config

    return make_config(**{**lookup(S2NET, method).settings, **fields})


def lookup(registry, method: str) -> Method:
    from ace_jax.errors import SettingError

    if method not in registry:
        raise SettingError("method", method, "{name}: unknown method {value!r}; choose from " + ", ".join(registry))
    return registry[method]


def parse_variant(text: str, registry=None) -> tuple[str, dict]:
    """A named method (of `registry`, the word methods by default) with settings over it:
    'ace-tied:gen_temperature=4;lam=0.3' -> ('ace-tied', {'gen_temperature': 4, 'lam': 0.3}); values are JSON where
    they parse as JSON, else strings."""
    from ace_jax.errors import AceJaxError

    method, _, rest = text.partition(":")
    lookup(WORD if registry is None else registry, method)
    settings = {}
    for item in filter(None, rest.split(";")):
        field, sep, value = item.partition("=")
        if not sep:
            raise AceJaxError(f"{item!r} in {text!r} is not field=value")
        try:
            settings[field.strip()] = json.loads(value)
        except json.JSONDecodeError:
            settings[field.strip()] = value.strip()
    return method, settings


def variant_folder(text: str) -> str:
    """A variant as a folder name: 'ace-tied:gen_temperature=4;lam=0.3' -> 'ace-tied--gen_temperature4-lam0.3'
    (a path's slashes become underscores)."""
    return text.replace(":", "--").replace(";", "-").replace("=", "").replace("/", "_")
