"""``born_again``: generations of the student's architecture, each taught by the one before
(Furlanello et al., ICML 2018).

Generation 1 distils from the task's teacher with the strategy; generation g from generation
g-1, frozen, with the same strategy, its layer pairs matching the same layer of the previous
generation. Generation g trains with seed ``recipe.seed + GENERATION_SEED_STEP * (g - 1)`` (a
fresh start each time). Every generation but the last is cached (:mod:`autokd.training.stage_cache`),
so a run that repeats them does not train them twice (its cost still counts their steps). The
result is the last generation, or with ``ensemble`` all generations' averaged logits.
"""

from __future__ import annotations

from dataclasses import replace

from autokd.config.strategy import Strategy
from autokd.training.fit import accuracy
from autokd.training.schemes.base import SchemeJob, counting_cost
from autokd.training.stage_cache import StageCache, stage_key
from autokd.training.students import LogitEnsemble, Trained, build_distiller, build_student, distill

GENERATION_SEED_STEP = 1_000_003
MAX_SEED = 2**32 - 1


def generation_seed(seed: int, generation: int) -> int:
    return (seed + GENERATION_SEED_STEP * (generation - 1)) % (MAX_SEED + 1)


def self_pairs(strategy: Strategy) -> Strategy:
    """The strategy for a teacher of the student's own architecture: each pair matches the same layer."""
    return replace(strategy, pairs=[replace(p, teacher=p.student) for p in strategy.pairs])


def check(prepared, strategy: Strategy) -> None:
    build_distiller(prepared, strategy, seed=0).close()
    if strategy.scheme.generations > 1:
        build_distiller(prepared, self_pairs(strategy), seed=0,
                        teacher=build_student(prepared, 0, strategy=strategy)).close()


def train(job: SchemeJob) -> Trained:
    prepared, generations = job.prepared, job.strategy.scheme.generations
    stages = StageCache(prepared.cache_root)
    teacher, cache, members, steps = None, job.teacher_cache, [], 0
    for g in range(1, generations + 1):
        strategy = job.strategy if g == 1 else self_pairs(job.strategy)
        recipe = replace(job.recipe, seed=generation_seed(job.recipe.seed, g))
        source = "the teacher" if g == 1 else f"generation {g - 1}"
        if g == generations:
            trained = distill(prepared, strategy, recipe, teacher, cache, counting_cost(job.on_epoch, steps),
                              job.validate_at)
        else:
            key = stage_key(prepared, job.strategy, job.recipe, f"born_again/{g}")
            model = build_student(prepared, recipe.seed, strategy=job.strategy)
            cached = stages.load(key, model)
            if cached is not None:
                job.say(f"born-again generation {g}/{generations}: from the cache")
                trained = Trained(model.to(prepared.device), float("nan"), steps=cached)
            else:
                job.say(f"born-again generation {g}/{generations}: distilling from {source}")
                trained = distill(prepared, strategy, recipe, teacher, cache, validate_at=())
                stages.save(key, trained.model, trained.steps)
        steps += trained.steps
        members.append(trained.model)
        teacher, cache = trained.model.eval(), None
    if not job.strategy.scheme.ensemble:
        return Trained(trained.model, trained.val_acc, trained.history, steps)
    ensemble = LogitEnsemble(members)
    return Trained(ensemble, accuracy(ensemble, prepared.data, "val", prepared.device), trained.history, steps)
